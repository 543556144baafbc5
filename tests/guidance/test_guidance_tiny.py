"""The tiny priors: real classes at toy sizes, reused once built, loaded through the real path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from method.guidance.tiny import (STAMP, TINY_MVDREAM_IMAGE, build_tiny_priors, tiny_mvdream_config,
                                  tiny_vsd_config, tiny_zeroscope_config)


def test_build_is_idempotent_and_complete(tiny_root):
    stamp = (tiny_root / STAMP).stat().st_mtime_ns
    paths = build_tiny_priors(tiny_root, seed=0)
    assert (tiny_root / STAMP).stat().st_mtime_ns == stamp  # reused, not rebuilt
    for name in ("sd-base", "zeroscope"):
        for sub in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
            assert (paths[name] / sub).is_dir(), (name, sub)
    assert (paths["mvdream"] / "mvdream.json").is_file()
    assert (paths["mvdream-ldm"] / "sd-v2.1-base-4view.pt").is_file()
    assert json.loads((paths["sd-lora"] / "scheduler" / "scheduler_config.json").read_text())[
        "prediction_type"] == "v_prediction"


def test_same_seed_same_weights_other_seed_other_weights(tmp_path, tiny_root):
    from diffusers import UNet2DConditionModel

    other = build_tiny_priors(tmp_path / "seed1", seed=1)
    a = UNet2DConditionModel.from_pretrained(tiny_root / "sd-base", subfolder="unet").conv_in.weight
    b = UNet2DConditionModel.from_pretrained(other["sd-base"], subfolder="unet").conv_in.weight
    assert not torch.equal(a, b)
    again = build_tiny_priors(tmp_path / "seed0", seed=0)
    c = UNet2DConditionModel.from_pretrained(again["sd-base"], subfolder="unet").conv_in.weight
    assert torch.equal(a, c)


def test_tiny_configs_name_tiny_ids_that_resolve_to_the_cache(tiny_root, tmp_path, monkeypatch):
    from method.guidance import ModelNotFoundError, cache_dir, resolve_model
    from method.guidance.tiny import TINY_MODELS, TINY_VIDEO_SIZE, TINY_VSD_RESOLUTION

    mv, vsd, video = tiny_mvdream_config(), tiny_vsd_config(), tiny_zeroscope_config()
    assert (mv.model, mv.text_model) == ("fourdfy-tiny:mvdream", "fourdfy-tiny:sd-base")
    assert (vsd.model, vsd.lora_model, video.model) == ("fourdfy-tiny:sd-base", "fourdfy-tiny:sd-lora",
                                                         "fourdfy-tiny:zeroscope")
    assert mv.image_size == TINY_MVDREAM_IMAGE and vsd.resolution == TINY_VSD_RESOLUTION
    assert (video.height, video.width) == TINY_VIDEO_SIZE
    assert tiny_mvdream_config(loss="sds").loss == "sds"
    assert cache_dir() == tiny_root.parent  # the session's $FOURDFY_CACHE
    for name in TINY_MODELS:
        assert resolve_model(f"fourdfy-tiny:{name}") == str(tiny_root / name)
    assert resolve_model("org/some-model") == "org/some-model"  # other ids pass through
    with pytest.raises(ModelNotFoundError, match="fourdfy-tiny:mvdream") as info:
        resolve_model("fourdfy-tiny:nope", "guidance.3d.model")
    assert "(set in `guidance.3d.model`)" in str(info.value) and info.value.field == "guidance.3d.model"
    # another cache: the build (tested above) is asked for there, at resolve time
    from method.guidance import tiny

    asked = []
    monkeypatch.setattr(tiny, "build_tiny_priors", lambda root: asked.append(root) or {"sd-lora": root / "sd-lora"})
    monkeypatch.setenv("FOURDFY_CACHE", str(tmp_path / "other-cache"))
    assert resolve_model("fourdfy-tiny:sd-lora") == str(tmp_path / "other-cache" / "tiny-priors" / "sd-lora")
    assert asked == [tmp_path / "other-cache" / "tiny-priors"]
    monkeypatch.delenv("FOURDFY_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "fourdfy"


def test_full_size_architectures_have_the_public_parameter_counts():
    """The random-weight full-size builds (benchmarks) use the real models' configs."""
    from diffusers import AutoencoderKL, UNet2DConditionModel, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from method.guidance import architectures as A

    def count(build):
        with torch.device("meta"):
            return sum(p.numel() for p in build().parameters())

    sd_unet = 865_910_724  # Stable Diffusion 2.x UNet
    assert count(lambda: UNet2DConditionModel.from_config(A.SD21_BASE_UNET)) == sd_unet
    assert count(lambda: UNet2DConditionModel.from_config(A.SD21_UNET)) == sd_unet
    camera_mlp = 16 * 1280 + 1280 + 1280 * 1280 + 1280
    assert count(lambda: UNet2DConditionModel.from_config(A.MVDREAM_UNET)) == sd_unet + camera_mlp
    assert count(lambda: AutoencoderKL.from_config(A.SD_VAE)) == 83_653_863
    assert count(lambda: CLIPTextModel(CLIPTextConfig(**A.SD2_TEXT_ENCODER))) == 340_387_840
    assert count(lambda: UNet3DConditionModel.from_config(A.ZEROSCOPE_UNET)) > 1_300_000_000


def test_guidance_accepts_prebuilt_models(tiny_root, make_rgb):
    """The `models=` path (used for random full-size benchmarks) gives the same prior as loading."""
    from diffusers import AutoencoderKL, UNet3DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from method.cameras import cameras_from_spherical
    from method.guidance import ZeroscopeGuidance
    from method.guidance.architectures import ZEROSCOPE_SCHEDULER

    folder = tiny_root / "zeroscope"
    models = {"unet": UNet3DConditionModel.from_pretrained(folder, subfolder="unet"),
              "vae": AutoencoderKL.from_pretrained(folder, subfolder="vae"),
              "tokenizer": CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer"),
              "text_encoder": CLIPTextModel.from_pretrained(folder, subfolder="text_encoder"),
              "scheduler_config": ZEROSCOPE_SCHEDULER}
    cfg = tiny_zeroscope_config()
    a = ZeroscopeGuidance(cfg, models=models)
    b = ZeroscopeGuidance(cfg)
    cams = cameras_from_spherical(torch.zeros(4), 0.0, 2.8, 40.0)
    rgb = make_rgb(4, 16, 24)
    la = a(rgb, cams, "a corgi", 0, generator=torch.Generator().manual_seed(0))["loss_sds_video"]
    lb = b(rgb, cams, "a corgi", 0, generator=torch.Generator().manual_seed(0))["loss_sds_video"]
    torch.testing.assert_close(la, lb)


def test_each_prior_config_names_the_loss_weights_of_the_losses_its_guidance_returns(tiny_root):
    """`PriorConfig.loss_weights` lets the stage-prefix hash leave out the weights of priors a stage never draws
    without building them; it must say what the built guidance returns."""
    from method.guidance.base import PRIOR_LOSS_WEIGHTS
    from method.oracle.prior import OracleConfig

    for spec in (tiny_mvdream_config(), tiny_vsd_config(), tiny_zeroscope_config(), OracleConfig(),
                 OracleConfig(loss_name="sds_video")):
        guidance = spec.build("cpu")
        assert guidance.loss_names == tuple(f"loss_{w}" for w in spec.loss_weights), type(spec).__name__
        assert spec.loss_weights and set(spec.loss_weights) <= set(PRIOR_LOSS_WEIGHTS)

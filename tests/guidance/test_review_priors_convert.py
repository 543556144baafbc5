"""convert-mvdream and MVDream's loader: an fp16 copy of the checkpoint passes the schedule check (compared at its own
precision), a real schedule mismatch names the file, and a checkpoint without MVDream's camera MLP is refused."""

from __future__ import annotations

import pytest
import torch

from method.guidance import ConversionError, build_prior
from method.guidance import mvdream_convert as mc
from method.guidance.architectures import SD21_BASE_SCHEDULER
from method.guidance.ldm_arch import UNET_PREFIX
from method.guidance.tiny import tiny_mvdream_config


@pytest.fixture()
def ldm(tiny_root):
    return torch.load(tiny_root / "mvdream-ldm" / "sd-v2.1-base-4view.pt", weights_only=True)


def test_an_fp16_copy_of_the_checkpoint_converts_and_loads(ldm, tmp_path):
    half = tmp_path / "sd-v2.1-base-4view-fp16.pt"
    torch.save({k: v.half() for k, v in ldm.items()}, half)
    out = mc.convert_file(half, tmp_path / "mv", num_head_channels=8)  # was: "noise schedule ... differs"
    assert (out / "unet" / "config.json").is_file()
    prior = build_prior(tiny_mvdream_config(model=str(half)), where="guidance.3d")
    assert prior.unet.config.class_embed_type == "projection"


def test_a_schedule_mismatch_names_the_file_and_stays_strict_in_fp32(ldm, tmp_path):
    ldm["alphas_cumprod"] = ldm["alphas_cumprod"] + 1e-4  # within fp16's rounding, not within fp32's
    path = tmp_path / "shifted.pt"
    torch.save(ldm, path)
    with pytest.raises(ConversionError, match=f"^{path}: the checkpoint's noise schedule .* differs .*float32"):
        mc.convert_file(path, tmp_path / "mv", num_head_channels=8)
    assert not (tmp_path / "mv").exists()
    with pytest.raises(ConversionError, match="noise schedule"):
        mc.check_schedule({"alphas_cumprod": ldm["alphas_cumprod"].half() * 0.5}, SD21_BASE_SCHEDULER)


def test_a_checkpoint_without_the_camera_embedding_is_refused_naming_the_file(ldm, tmp_path):
    plain = tmp_path / "v2-1_512-ema-pruned.pt"  # a plain SD checkpoint in the same layout
    torch.save({k: v for k, v in ldm.items() if not k.startswith(UNET_PREFIX + "camera_embed.")}, plain)
    with pytest.raises(ConversionError, match=f"^{plain}: the UNet has no camera embedding"):
        mc.convert_file(plain, tmp_path / "mv", num_head_channels=8)  # was: converted, then refused at load
    assert not (tmp_path / "mv").exists() and not list(tmp_path.glob(".mv-*"))
    with pytest.raises(ConversionError, match=f"^{plain}: the UNet has no camera embedding"):
        build_prior(tiny_mvdream_config(model=str(plain)), where="guidance.3d")


def test_the_cli_converts_an_fp16_copy_and_refuses_a_plain_checkpoint_in_one_line(ldm, tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    half, plain = tmp_path / "half.pt", tmp_path / "plain.pt"
    torch.save({k: v.half() for k, v in ldm.items()}, half)
    torch.save({k: v for k, v in ldm.items() if "camera_embed." not in k}, plain)
    ok = CliRunner().invoke(app, ["convert-mvdream", str(half), str(tmp_path / "a"), "--num-head-channels", "8"])
    assert ok.exit_code == 0 and "set the config key guidance.3d.model" in ok.output, ok.output
    refused = CliRunner().invoke(app, ["convert-mvdream", str(plain), str(tmp_path / "b"), "--num-head-channels", "8"])
    lines = refused.output.strip().splitlines()
    assert refused.exit_code == 2 and len(lines) == 1, refused.output
    assert lines[0].startswith(f"error: {plain}: the UNet has no camera embedding") and not (tmp_path / "b").exists()

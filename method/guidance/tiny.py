"""Tiny random-weight priors: the same classes as the real models at toy sizes, saved with
`save_pretrained` and loaded back through the real loading path (tests and the CPU `tiny` profile).

Configs name them by id, `fourdfy-tiny:<folder>` (e.g. `MVDreamConfig(model="fourdfy-tiny:mvdream")`);
the loader (`loading.resolve_model`) builds them on first use under `$FOURDFY_CACHE/tiny-priors`
(default `~/.cache/fourdfy`). `tiny_mvdream_config()` & co. return the configs the `tiny` profile uses.

Layout written under `root` (each a diffusers-style folder, like the hub repositories):
    tokenizer/          CLIP BPE tokenizer built offline from open_clip's bundled vocabulary
    sd-base/            eps-prediction UNet2DConditionModel + VAE + text encoder + tokenizer + DDPM scheduler
    sd-lora/            v-prediction UNet2DConditionModel + DDPM scheduler (the VSD particle model)
    mvdream/            our converted MVDream folder: multi-view UNet (camera class embedding), VAE, scheduler
    mvdream-ldm/        the same MVDream weights in the original LDM checkpoint layout (sd-v2.1-base-4view.pt)
    zeroscope/          UNet3DConditionModel + VAE + text encoder + tokenizer + DDIM scheduler
Sizes: UNets with channels (32, 64), one res block per level, attention on the first level; VAE
(32, 32, 64) = downsampling x4; text encoder 2 layers of width 32. Building takes a few seconds;
it is idempotent (a finished root carries a stamp, with every file's size and SHA-256, and is reused while
its files match it; a damaged one is rebuilt) and safe under parallel builders.
"""

from __future__ import annotations

from pathlib import Path

import torch

from method.backends import seeded
from method.fileio import stamped_build

from .architectures import SCALED_LINEAR
from .ldm_arch import LDMUNetArch, LDMVAEArch
from .loading import TINY_SCHEME, quiet_progress
from .mvdream import MVDreamConfig
from .vsd import VSDConfig
from .zeroscope import ZeroscopeConfig

RECIPE_VERSION = 2
STAMP = "tiny-priors.json"
"""The stamp file of a built root (`method.fileio.stamped_build`)."""
TINY_MODELS = ("tokenizer", "sd-base", "sd-lora", "mvdream", "mvdream-ldm", "zeroscope")
"""The folders under the root, each reachable as the model id `fourdfy-tiny:<name>`."""

TINY_CONTEXT = 32
TINY_UNET_ARCH = LDMUNetArch(model_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(1,),
                             num_head_channels=8, context_dim=TINY_CONTEXT, camera_dim=None)
TINY_MVDREAM_ARCH = LDMUNetArch(model_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(1,),
                                num_head_channels=8, context_dim=TINY_CONTEXT, camera_dim=16)
TINY_VAE_ARCH = LDMVAEArch(ch=32, ch_mult=(1, 1, 2), num_res_blocks=1)
TINY_TEXT = {"vocab_size": 49408, "hidden_size": TINY_CONTEXT, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "max_position_embeddings": 77, "hidden_act": "gelu", "projection_dim": 32,
             "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407}
TINY_UNET3D = {"sample_size": 8, "in_channels": 4, "out_channels": 4,
               "down_block_types": ["CrossAttnDownBlock3D", "DownBlock3D"],
               "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D"], "block_out_channels": [32, 64],
               "layers_per_block": 1, "attention_head_dim": 8, "cross_attention_dim": TINY_CONTEXT,
               "norm_num_groups": 32}

# Resolutions of the tiny priors, chosen for speed (twice these sizes costs about 2-3x per update,
# docs/priors.md). The VAE downsamples x4 and the UNets need latents divisible by 2: latents 4x4
# (MVDream), 8x8 (VSD), 16 frames of 4x6 (Zeroscope). The tiny profile renders the 3D views at 16^2
# (its mv_resolution), the image views at 32^2 and the video at 16x24: exactly these sizes, no resize.
TINY_MVDREAM_IMAGE = 16
TINY_VSD_RESOLUTION = 32
TINY_VIDEO_SIZE = (16, 24)
TINY_ANNEAL_STEPS = 40


def build_tokenizer():
    """The CLIP BPE tokenizer (vocabulary 49408, 77 tokens) from open_clip's bundled vocabulary file."""
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    st = SimpleTokenizer()
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {rename.get(k, k): v for k, v in st.encoder.items()}
    merges = [tuple(m) for m in sorted(st.bpe_ranks, key=st.bpe_ranks.get)]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def _text_encoder(seed: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    with seeded(seed):
        return CLIPTextModel(CLIPTextConfig(**TINY_TEXT))


def _vae(seed: int):
    from diffusers import AutoencoderKL

    with seeded(seed):
        return AutoencoderKL.from_config(TINY_VAE_ARCH.diffusers_config(sample_size=TINY_VSD_RESOLUTION))


def _unet2d(arch: LDMUNetArch, seed: int):
    from diffusers import UNet2DConditionModel

    with seeded(seed):
        return UNet2DConditionModel.from_config(arch.diffusers_config(sample_size=8))


def _scheduler(cls_name: str, prediction_type: str):
    import diffusers

    return getattr(diffusers, cls_name).from_config({**SCALED_LINEAR, "prediction_type": prediction_type})


def _write_text(folder: Path, tokenizer, seed: int) -> None:
    tokenizer.save_pretrained(folder / "tokenizer")
    _text_encoder(seed).save_pretrained(folder / "text_encoder")


def _build(root: Path, seed: int) -> None:
    from diffusers import UNet3DConditionModel

    from .mvdream_convert import diffusers_to_ldm, save_mvdream_folder
    from .mvdream_unet import install_multiview_attention

    tok = build_tokenizer()
    tok.save_pretrained(root / "tokenizer")

    base = root / "sd-base"
    _unet2d(TINY_UNET_ARCH, seed + 1).save_pretrained(base / "unet")
    _vae(seed + 2).save_pretrained(base / "vae")
    _write_text(base, tok, seed + 3)
    _scheduler("DDPMScheduler", "epsilon").save_pretrained(base / "scheduler")

    lora = root / "sd-lora"
    _unet2d(TINY_UNET_ARCH, seed + 4).save_pretrained(lora / "unet")
    _scheduler("DDPMScheduler", "v_prediction").save_pretrained(lora / "scheduler")

    mv_unet = _unet2d(TINY_MVDREAM_ARCH, seed + 5)
    install_multiview_attention(mv_unet)
    mv_vae = _vae(seed + 6)
    sched = dict(_scheduler("DDPMScheduler", "epsilon").config)
    save_mvdream_folder(root / "mvdream", mv_unet, mv_vae, sched, num_views=4, source="tiny random weights")
    # the same weights in the original checkpoint layout, with schedule buffers and a text-tower key,
    # so that the LDM loading path (converter included) is exercised like the real file
    ldm = diffusers_to_ldm(mv_unet.state_dict(), mv_vae.state_dict(), dict(mv_unet.config), dict(mv_vae.config))
    from .common import alphas_cumprod_from_config

    ldm["alphas_cumprod"] = alphas_cumprod_from_config(sched).float()
    ldm["cond_stage_model.model.positional_embedding"] = torch.zeros(77, TINY_CONTEXT)
    (root / "mvdream-ldm").mkdir(parents=True)
    torch.save({k: v.contiguous().clone() for k, v in ldm.items()}, root / "mvdream-ldm" / "sd-v2.1-base-4view.pt")

    video = root / "zeroscope"
    with seeded(seed + 7):
        UNet3DConditionModel.from_config(TINY_UNET3D).save_pretrained(video / "unet")
    _vae(seed + 8).save_pretrained(video / "vae")
    _write_text(video, tok, seed + 9)
    _scheduler("DDIMScheduler", "epsilon").save_pretrained(video / "scheduler")


def build_tiny_priors(root: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write the tiny priors under `root` (reused when already built with the same recipe and seed and intact;
    a damaged cache is rebuilt with a warning: `method.fileio.stamped_build`)."""
    root = Path(root)

    def write(folder: Path) -> None:
        with quiet_progress():
            _build(folder, seed)

    stamped_build(root, {"recipe": RECIPE_VERSION, "seed": seed}, write, "the tiny priors' cache", STAMP)
    return {name: root / name for name in TINY_MODELS}


def tiny_id(name: str) -> str:
    """The model id of one tiny folder, e.g. 'fourdfy-tiny:mvdream'."""
    if name not in TINY_MODELS:
        raise ValueError(f"unknown tiny prior {name!r}; known: {', '.join(TINY_MODELS)}")
    return TINY_SCHEME + name


def tiny_mvdream_config(**overrides) -> MVDreamConfig:
    """MVDreamConfig for the tiny MVDream folder (render resize TINY_MVDREAM_IMAGE, stage-1 ramp over 40 steps)."""
    return _replace(MVDreamConfig(model=tiny_id("mvdream"), text_model=tiny_id("sd-base"), num_head_channels=8,
                                  image_size=TINY_MVDREAM_IMAGE, anneal_steps=TINY_ANNEAL_STEPS), overrides)


def tiny_vsd_config(**overrides) -> VSDConfig:
    """VSDConfig for the tiny eps model and the tiny v-prediction LoRA model (resize TINY_VSD_RESOLUTION)."""
    return _replace(VSDConfig(model=tiny_id("sd-base"), lora_model=tiny_id("sd-lora"), resolution=TINY_VSD_RESOLUTION),
                    overrides)


def tiny_zeroscope_config(**overrides) -> ZeroscopeConfig:
    """ZeroscopeConfig for the tiny video model (frames resized to TINY_VIDEO_SIZE)."""
    return _replace(ZeroscopeConfig(model=tiny_id("zeroscope"), height=TINY_VIDEO_SIZE[0], width=TINY_VIDEO_SIZE[1]),
                    overrides)


def _replace(cfg, overrides: dict):
    import dataclasses

    return dataclasses.replace(cfg, **overrides) if overrides else cfg

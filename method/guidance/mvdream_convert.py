"""Convert MVDream's original checkpoint (LDM layout, `sd-v2.1-base-4view.pt`) to diffusers and back.

The layout itself (key names and shapes per architecture) lives in `ldm_arch`; the command line is
`fourdfy convert-mvdream CKPT OUT` (pipelines/commands/convert.py). Of the original file, the UNet
(`model.diffusion_model.*`, camera MLP included) and the autoencoder (`first_stage_model.*`) are
converted; the text tower (`cond_stage_model.*`, SD 2.1-base's, loaded from `text_model` as the
release does) is skipped and the noise-schedule buffers are checked against the scheduler.

How keys are mapped: the LDM key list (names and shapes) is generated from the architecture
(`LDMUNetArch`, `LDMVAEArch`), pushed through diffusers' own single-file converters
(`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint`; the camera MLP is renamed to the
`label_emb.0` keys those converters map to `class_embedding`), and the result must hit every
parameter of the diffusers model exactly once with a matching shape. The same map, inverted, writes
the LDM layout back, so conversion round-trips losslessly.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from .ldm_arch import SCHEDULE_BUFFERS, TEXT_PREFIX, UNET_PREFIX, VAE_PREFIX, LDMUNetArch, LDMVAEArch
from .loading import ConversionError, _first_line, unreadable_checkpoint

# --- key maps (through diffusers' converters) ----------------------------------------------------

def _meta_shapes(cls, config: dict) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = cls.from_config(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _probe(shapes: dict[str, tuple[int, ...]], prefix: str, rename=lambda k: k) -> dict[str, Tensor]:
    # one scalar per key, broadcast to the key's shape: the value identifies the source key after
    # diffusers' converter has renamed (and possibly sliced) it, at no memory cost
    return {prefix + rename(k): torch.tensor(float(i)).expand(s) for i, (k, s) in enumerate(shapes.items())}


def _build_map(ldm_shapes: dict, converted: dict[str, Tensor], target_shapes: dict,
               what: str) -> dict[str, tuple[str, tuple]]:
    names = list(ldm_shapes)
    hits: dict[int, list[str]] = {}
    for dkey, value in converted.items():
        if value is None:
            continue
        hits.setdefault(int(value[(0,) * value.dim()].item()), []).append(dkey)
    problems = []
    unmapped = [names[i] for i in range(len(names)) if i not in hits]
    multi = {names[i]: d for i, d in hits.items() if len(d) > 1}
    mapped = {d[0]: names[i] for i, d in hits.items()}
    unexpected = sorted(set(mapped) - set(target_shapes))
    missing = sorted(set(target_shapes) - set(mapped))
    for label, items in (("LDM keys mapped to nothing", unmapped), ("LDM keys mapped twice", multi),
                         ("converted keys the model does not have", unexpected),
                         ("model parameters nothing maps to", missing)):
        if items:
            problems.append(f"{len(items)} {label}, e.g. {list(items)[:5]}")
    out, reshaped = {}, []
    for dkey, lkey in mapped.items():
        if dkey in target_shapes:
            ls, ds = ldm_shapes[lkey], target_shapes[dkey]
            if _squeeze(ls) != _squeeze(ds) or torch.Size(ls).numel() != torch.Size(ds).numel():
                reshaped.append(f"{lkey} {ls} != {dkey} {ds}")
            out[lkey] = (dkey, ds)
    if reshaped:
        # summarised: one line per key ran to ~10 kB for a wrong head count and hid the cause
        problems.append(f"{len(reshaped)} keys with another shape in the diffusers model, e.g. "
                        f"{'; '.join(reshaped[:3])} (likely cause: the channels per attention head do not fit "
                        "the layer widths, so the attention layers come out narrower)")
    if problems:
        raise ConversionError(f"{what}: the key map is not one-to-one:\n  " + "\n  ".join(problems))
    return out


def _squeeze(shape) -> tuple:
    s = list(shape)
    while len(s) > 2 and s[-1] == 1:
        s.pop()
    return tuple(s)


def _camera_to_label_emb(key: str) -> str:
    # diffusers' converter maps label_emb.0.0 / label_emb.0.2 to class_embedding.linear_1 / linear_2
    return key.replace("camera_embed.", "label_emb.0.", 1) if key.startswith("camera_embed.") else key


@lru_cache(maxsize=8)
def unet_key_map(arch: LDMUNetArch) -> dict[str, tuple[str, tuple]]:
    """LDM UNet key (no prefix) -> (diffusers key, diffusers shape); one-to-one or ConversionError."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    cfg = arch.diffusers_config()
    ldm = arch.keys()
    converted = convert_ldm_unet_checkpoint(_probe(ldm, UNET_PREFIX, _camera_to_label_emb), cfg)
    return _build_map(ldm, converted, _meta_shapes(UNet2DConditionModel, cfg), "UNet")


@lru_cache(maxsize=8)
def vae_key_map(arch: LDMVAEArch) -> dict[str, tuple[str, tuple]]:
    """LDM autoencoder key (no prefix) -> (diffusers key, diffusers shape)."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    cfg = arch.diffusers_config()
    ldm = arch.keys()
    converted = convert_ldm_vae_checkpoint(_probe(ldm, VAE_PREFIX), cfg)
    return _build_map(ldm, converted, _meta_shapes(AutoencoderKL, cfg), "VAE")


# --- conversion ------------------------------------------------------------------------------------

@dataclass
class ConvertedMVDream:
    """An MVDream checkpoint in diffusers terms."""

    unet: dict[str, Tensor]
    """UNet2DConditionModel state dict (camera MLP as class_embedding)."""
    vae: dict[str, Tensor]
    """AutoencoderKL state dict."""
    unet_config: dict
    """UNet2DConditionModel config (with the projection class embedding)."""
    vae_config: dict
    """AutoencoderKL config."""
    skipped: list[str]
    """Checkpoint keys intentionally not converted (text tower, schedule buffers)."""


def _split(state_dict: dict[str, Tensor]) -> tuple[dict, dict, list[str], list[str]]:
    unet, vae, skipped, unknown = {}, {}, [], []
    for k, v in state_dict.items():
        if k.startswith(UNET_PREFIX):
            unet[k[len(UNET_PREFIX):]] = v
        elif k.startswith(VAE_PREFIX):
            vae[k[len(VAE_PREFIX):]] = v
        elif k.startswith(TEXT_PREFIX) or k in SCHEDULE_BUFFERS:
            skipped.append(k)
        else:
            unknown.append(k)
    return unet, vae, skipped, unknown


def _check_keys(have: dict[str, Tensor], expected: dict[str, tuple], what: str) -> None:
    missing = sorted(set(expected) - set(have))
    unexpected = sorted(set(have) - set(expected))
    wrong = [k for k in set(have) & set(expected) if tuple(have[k].shape) != tuple(expected[k])]
    if missing or unexpected or wrong:
        raise ConversionError(f"{what} does not match the architecture: {len(missing)} missing "
                              f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
                              f"{len(wrong)} with other shapes (e.g. {wrong[:3]})")


def check_schedule(state_dict: dict[str, Tensor], scheduler_config: dict, atol: float = 1e-5,
                   source: str | Path = "") -> None:
    """The checkpoint's alphas_cumprod buffer (if any) must equal the scheduler config's, up to `atol` or to the
    buffer's own precision, whichever is coarser: an fp16 copy of the checkpoint rounds it by up to 2.4e-4 (its
    values lie in (0, 1], where fp16's spacing is at most its epsilon). `source` names the file in the message."""
    if "alphas_cumprod" not in state_dict:
        return
    from .common import alphas_cumprod_from_config

    buffer = state_dict["alphas_cumprod"]
    ours = alphas_cumprod_from_config(scheduler_config)
    theirs = buffer.double().cpu()
    tol = max(atol, torch.finfo(buffer.dtype).eps) if buffer.dtype.is_floating_point else atol
    if theirs.shape != ours.shape or (theirs - ours).abs().max() > tol:
        diff = (f"{len(theirs)} steps against {len(ours)}" if theirs.shape != ours.shape else
                f"by up to {(theirs - ours).abs().max().item():.2g}, beyond the {tol:.2g} its {buffer.dtype} allows")
        where = f"{source}: " if str(source) else ""
        raise ConversionError(f"{where}the checkpoint's noise schedule (alphas_cumprod) differs from the scheduler "
                              f"config ({diff}); MVDream's sd-v2.1-base-4view.pt has SD 2.1-base's schedule")


def check_camera_embedding(state_dict: dict[str, Tensor], source: str | Path = "") -> None:
    """ConversionError unless the UNet has MVDream's camera MLP (`model.diffusion_model.camera_embed.*`): a plain
    Stable Diffusion checkpoint converts as well, into a folder that MVDream then refuses to load. A state dict with
    no UNet at all is left to the layout checks (`ldm_to_diffusers`: keys of no known part)."""
    unet = [k for k in state_dict if k.startswith(UNET_PREFIX)]
    if not unet or any(k.startswith(UNET_PREFIX + "camera_embed.") for k in unet):
        return
    where = f"{source}: " if str(source) else ""
    raise ConversionError(f"{where}the UNet has no camera embedding ({UNET_PREFIX}camera_embed.*), so it is not an "
                          "MVDream checkpoint (a plain Stable Diffusion one?); give MVDream's sd-v2.1-base-4view.pt")


def attention_widths(unet_shapes: dict[str, tuple[int, ...]]) -> list[int]:
    """The distinct widths (channels) of the UNet's attention layers, read from `attn1.to_q` (no prefix)."""
    return sorted({s[0] for k, s in unet_shapes.items() if k.endswith(".attn1.to_q.weight") and s})


def check_head_channels(unet_shapes: dict[str, tuple[int, ...]], num_head_channels: int,
                        option: str = "num_head_channels") -> None:
    """ConversionError unless `num_head_channels` divides every attention width of the UNet.

    The head count is not stored in the weights (it only splits q/k/v), so any common divisor
    converts; one that does not divide a width gives heads of 0 (ZeroDivisionError in diffusers) or
    narrower attention layers (every shape mismatched).
    """
    import math

    widths = attention_widths(unet_shapes)
    bad = [w for w in widths if w % num_head_channels]
    if not bad:
        return
    from .tiny import TINY_MVDREAM_ARCH

    g = math.gcd(*widths)
    fits = [d for d in range(1, g + 1) if g % d == 0]
    raise ConversionError(
        f"{option} {num_head_channels} does not divide the attention width {', '.join(map(str, bad))} of the "
        f"checkpoint (its widths: {', '.join(map(str, widths))}); values that divide all of them: "
        f"{', '.join(map(str, fits))}. The weights do not record the head size, so use the one the model was "
        f"trained with: 64 for MVDream's sd-v2.1-base-4view.pt (SD 2.x), {TINY_MVDREAM_ARCH.num_head_channels} "
        "for fourdfy-tiny:mvdream-ldm")


def ldm_to_diffusers(state_dict: dict[str, Tensor], unet_arch: LDMUNetArch | None = None,
                     vae_arch: LDMVAEArch | None = None, num_head_channels: int = 64,
                     vae_norm_num_groups: int = 32,
                     head_channels_option: str = "guidance.3d.num_head_channels") -> ConvertedMVDream:
    """Convert an MVDream LDM state dict. Architectures default to what the weights imply.

    `head_channels_option` names where the user sets `num_head_channels`, for the error message.
    """
    unet_sd, vae_sd, skipped, unknown = _split(state_dict)
    if unknown:
        raise ConversionError(f"{len(unknown)} keys belong to no known part of an MVDream checkpoint, "
                              f"e.g. {unknown[:5]}")
    shapes = {k: tuple(v.shape) for k, v in unet_sd.items()}
    # before building anything: a head size that does not divide the widths fails deep inside diffusers
    check_head_channels(shapes, unet_arch.num_head_channels if unet_arch else num_head_channels,
                        head_channels_option)
    unet_arch = unet_arch or LDMUNetArch.infer(shapes, num_head_channels)
    vae_arch = vae_arch or LDMVAEArch.infer({k: tuple(v.shape) for k, v in vae_sd.items()}, vae_norm_num_groups)
    _check_keys(unet_sd, unet_arch.keys(), "the UNet (model.diffusion_model.*)")
    _check_keys(vae_sd, vae_arch.keys(), "the autoencoder (first_stage_model.*)")
    umap, vmap = unet_key_map(unet_arch), vae_key_map(vae_arch)
    unet = {umap[k][0]: v.reshape(umap[k][1]) for k, v in unet_sd.items()}
    vae = {vmap[k][0]: v.reshape(vmap[k][1]) for k, v in vae_sd.items()}
    return ConvertedMVDream(unet, vae, unet_arch.diffusers_config(), vae_arch.diffusers_config(), skipped)


def diffusers_to_ldm(unet_sd: dict[str, Tensor], vae_sd: dict[str, Tensor] | None, unet_config: dict,
                     vae_config: dict | None = None) -> dict[str, Tensor]:
    """The inverse: diffusers state dicts -> MVDream LDM layout (UNet and, if given, autoencoder)."""
    unet_arch = LDMUNetArch.from_diffusers_config(unet_config)
    ldm_shapes = unet_arch.keys()
    out = {}
    for lkey, (dkey, _) in unet_key_map(unet_arch).items():
        out[UNET_PREFIX + lkey] = unet_sd[dkey].reshape(ldm_shapes[lkey])
    if vae_sd is not None:
        vae_arch = LDMVAEArch.from_diffusers_config(vae_config)
        vshapes = vae_arch.keys()
        for lkey, (dkey, _) in vae_key_map(vae_arch).items():
            out[VAE_PREFIX + lkey] = vae_sd[dkey].reshape(vshapes[lkey])
    return out


# --- files ------------------------------------------------------------------------------------------

def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """A .safetensors file, or a torch pickle (.pt/.ckpt, memory-mapped, weights only)."""
    path = Path(path)
    if path.is_dir():  # "no such file" would send one looking for a file that is there, as a folder
        from .mvdream_unet import MULTIVIEW_MARKER

        done = (f" ({path} holds {MULTIVIEW_MARKER}: it is a converted folder already, to set as the config key "
                "guidance.3d.model)") if (path / MULTIVIEW_MARKER).is_file() else ""
        raise ConversionError(f"{path} is a folder, not a checkpoint file; give MVDream's original checkpoint file "
                              f"(e.g. sd-v2.1-base-4view.pt){done}")
    if not path.is_file():
        raise ConversionError(f"{path}: no such checkpoint file")
    # checked first: torch's reply to a foreign or cut-short file is advice on how to save it, naming neither
    problem = unreadable_checkpoint(path)
    if problem:
        raise ConversionError(f"{path}: {problem}; expected MVDream's original checkpoint (e.g. "
                              "sd-v2.1-base-4view.pt), a .pt/.ckpt saved by torch.save or a .safetensors file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        # only torch's zip format can be memory-mapped; an older torch.save file is read whole
        sd = torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:  # torch / safetensors raise many types for a truncated or foreign file
        error = f"{path}: not a readable checkpoint ({type(exc).__name__}: {_first_line(exc)})"
    else:
        return sd.get("state_dict", sd) if isinstance(sd, dict) else sd
    raise ConversionError(error)


def build_from_converted(conv: ConvertedMVDream, dtype: torch.dtype = torch.float32):
    """(multi-view UNet, AutoencoderKL) holding the converted weights (built on meta, then assigned)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from .mvdream_unet import install_multiview_attention

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(conv.unet_config)
        vae = AutoencoderKL.from_config(conv.vae_config)
    unet.load_state_dict({k: v.to(dtype) for k, v in conv.unet.items()}, strict=True, assign=True)
    vae.load_state_dict({k: v.to(dtype) for k, v in conv.vae.items()}, strict=True, assign=True)
    for m in (unet, vae):
        if any(t.is_meta for t in list(m.parameters()) + list(m.buffers())):
            raise ConversionError("some tensors were not filled from the checkpoint")
    install_multiview_attention(unet)
    return unet, vae


def save_mvdream_folder(out_dir: str | Path, unet, vae, scheduler_config: dict, num_views: int = 4,
                        source: str = "") -> Path:
    """Write our diffusers-style MVDream folder: unet/, vae/, scheduler/ and mvdream.json."""
    from diffusers import DDPMScheduler

    from .mvdream_unet import MULTIVIEW_MARKER

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    unet.save_pretrained(out / "unet")
    vae.save_pretrained(out / "vae")
    DDPMScheduler.from_config(scheduler_config).save_pretrained(out / "scheduler")
    (out / MULTIVIEW_MARKER).write_text(json.dumps({"num_views": num_views, "converted_from": source}, indent=2))
    return out


def convert_file(ckpt: str | Path, out_dir: str | Path, num_head_channels: int = 64,
                 scheduler_config: dict | None = None, head_channels_option: str = "--num-head-channels") -> Path:
    """Convert `sd-v2.1-base-4view.pt` (or a tiny file in its layout) to our diffusers-style folder.

    `out_dir` must not exist yet; the folder is written beside it and renamed into place when
    complete, so a failed conversion leaves nothing behind.
    """
    from .architectures import SD21_BASE_SCHEDULER

    out = Path(out_dir)
    if out.exists():
        raise ConversionError(f"{out} already exists; remove it or choose another output folder")
    sd = load_state_dict_file(ckpt)
    scheduler_config = scheduler_config or SD21_BASE_SCHEDULER
    check_camera_embedding(sd, ckpt)
    check_schedule(sd, scheduler_config, source=ckpt)
    conv = ldm_to_diffusers(sd, num_head_channels=num_head_channels, head_channels_option=head_channels_option)
    unet, vae = build_from_converted(conv)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        save_mvdream_folder(tmp, unet, vae, scheduler_config, source=Path(ckpt).name)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out

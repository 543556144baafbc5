"""Convert MVDream's original checkpoint (LDM layout, `sd-v2.1-base-4view.pt`) to diffusers and back.

Layout of the original file (the state dict of MVDream's LatentDiffusionInterface):
- `model.diffusion_model.*`: the UNet in the stable-diffusion `openaimodel.py` layout (input_blocks,
  middle_block, output_blocks, time_embed, out) plus `camera_embed.0/.2` (the camera MLP);
- `first_stage_model.*`: the KL autoencoder (encoder.down.*, decoder.up.*, quant_conv, ...);
- `cond_stage_model.*`: the OpenCLIP ViT-H/14 text tower. Not converted: MVDream froze it, so it is
  the text encoder of SD 2.1-base, which the guidance loads from `text_model` (as the release does);
- noise-schedule buffers (betas, alphas_cumprod, ...): checked against the scheduler, not stored.

How keys are mapped: the LDM key list (names and shapes) is generated from the architecture
(`LDMUNetArch`, `LDMVAEArch`), pushed through diffusers' own single-file converters
(`convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint`; the camera MLP is renamed to the
`label_emb.0` keys those converters map to `class_embedding`), and the result must hit every
parameter of the diffusers model exactly once with a matching shape. The same map, inverted, writes
the LDM layout back, so conversion round-trips losslessly.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from .loading import GuidanceError

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model."
SCHEDULE_BUFFERS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                    "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                    "posterior_mean_coef1", "posterior_mean_coef2")


class ConversionError(GuidanceError):
    """The checkpoint does not match the expected MVDream layout."""


# --- architectures ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LDMUNetArch:
    """Hyper-parameters of an openaimodel.py UNet (spatial transformers, no scale-shift norm)."""

    model_channels: int = 320
    """Channels of the first level."""
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    """Channel multiplier per level."""
    num_res_blocks: int = 2
    """Residual blocks per level on the way down (one more on the way up)."""
    attention_resolutions: tuple[int, ...] = (4, 2, 1)
    """Downsampling factors (1, 2, 4, ...) whose levels carry a spatial transformer."""
    num_head_channels: int = 64
    """Channels per attention head (not stored in the weights)."""
    context_dim: int = 1024
    """Width of the text embedding."""
    transformer_depth: int = 1
    """Transformer blocks per spatial transformer."""
    use_linear: bool = True
    """proj_in / proj_out are Linear layers (SD 2.x) rather than 1x1 convolutions."""
    camera_dim: int | None = 16
    """Input size of the camera MLP (None: plain UNet)."""
    in_channels: int = 4
    """Latent channels in."""
    out_channels: int = 4
    """Latent channels out."""

    def levels_with_attention(self) -> list[bool]:
        return [2 ** level in self.attention_resolutions for level in range(len(self.channel_mult))]

    def diffusers_config(self, sample_size: int = 32) -> dict:
        attn = self.levels_with_attention()
        chans = [self.model_channels * m for m in self.channel_mult]
        cfg = {
            "sample_size": sample_size,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attn],
            "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)],
            "block_out_channels": chans,
            "layers_per_block": self.num_res_blocks,
            "attention_head_dim": [c // self.num_head_channels for c in chans],
            "cross_attention_dim": self.context_dim,
            "transformer_layers_per_block": self.transformer_depth,
            "use_linear_projection": self.use_linear,
            "norm_num_groups": 32,
            "flip_sin_to_cos": True,
            "freq_shift": 0,
        }
        if self.camera_dim is not None:
            cfg.update(class_embed_type="projection", projection_class_embeddings_input_dim=self.camera_dim)
        return cfg

    @classmethod
    def from_diffusers_config(cls, cfg: dict) -> "LDMUNetArch":
        chans = list(cfg["block_out_channels"])
        mc = chans[0]
        heads = cfg["attention_head_dim"]
        heads = list(heads) if isinstance(heads, (list, tuple)) else [c // heads for c in chans]
        attn = [t.startswith("CrossAttn") for t in cfg["down_block_types"]]
        depth = cfg.get("transformer_layers_per_block", 1)
        return cls(model_channels=mc, channel_mult=tuple(c // mc for c in chans),
                   num_res_blocks=cfg["layers_per_block"],
                   attention_resolutions=tuple(2 ** i for i, a in enumerate(attn) if a),
                   num_head_channels=chans[0] // heads[0], context_dim=cfg["cross_attention_dim"],
                   transformer_depth=depth if isinstance(depth, int) else depth[0],
                   use_linear=cfg.get("use_linear_projection", False),
                   camera_dim=cfg.get("projection_class_embeddings_input_dim")
                   if cfg.get("class_embed_type") == "projection" else None,
                   in_channels=cfg.get("in_channels", 4), out_channels=cfg.get("out_channels", 4))

    @classmethod
    def infer(cls, shapes: dict[str, tuple[int, ...]], num_head_channels: int = 64) -> "LDMUNetArch":
        """The architecture of an LDM UNet state dict (keys without prefix -> shapes)."""
        try:
            mc, in_ch = shapes["input_blocks.0.0.weight"][:2]
            n_in = 1 + max(int(k.split(".")[1]) for k in shapes if k.startswith("input_blocks."))
            ops = sorted(int(k.split(".")[1]) for k in shapes if k.startswith("input_blocks.") and ".0.op.weight" in k)
            nres = (ops[0] - 1) if ops else n_in - 1
            n_levels = n_in // (nres + 1)
            mult, attn_res = [], []
            for level in range(n_levels):
                first = 1 + level * (nres + 1)
                mult.append(shapes[f"input_blocks.{first}.0.in_layers.2.weight"][0] // mc)
                if any(k.startswith(f"input_blocks.{first}.1.") for k in shapes):
                    attn_res.append(2 ** level)
            tb = {k.split(".")[3] for k in shapes if k.startswith("middle_block.1.transformer_blocks.")}
            ctx = shapes["middle_block.1.transformer_blocks.0.attn2.to_k.weight"][1]
            cam = shapes.get("camera_embed.0.weight")
            return cls(model_channels=mc, channel_mult=tuple(mult), num_res_blocks=nres,
                       attention_resolutions=tuple(attn_res), num_head_channels=num_head_channels, context_dim=ctx,
                       transformer_depth=len(tb), use_linear=len(shapes["middle_block.1.proj_in.weight"]) == 2,
                       camera_dim=cam[1] if cam else None, in_channels=in_ch, out_channels=shapes["out.2.weight"][0])
        except (KeyError, IndexError, ValueError) as exc:
            raise ConversionError(f"not an LDM (openaimodel) UNet state dict: {exc!r}") from exc

    def keys(self) -> dict[str, tuple[int, ...]]:
        """Every parameter name of the LDM UNet (without prefix) with its shape, in module order."""
        out: dict[str, tuple[int, ...]] = {}
        mc = self.model_channels
        temb = 4 * mc

        def lin(name, i, o, bias=True):
            out[f"{name}.weight"] = (o, i)
            if bias:
                out[f"{name}.bias"] = (o,)

        def conv(name, i, o, k):
            out[f"{name}.weight"] = (o, i, k, k)
            out[f"{name}.bias"] = (o,)

        def norm(name, c):
            out[f"{name}.weight"] = (c,)
            out[f"{name}.bias"] = (c,)

        def resblock(name, i, o):
            norm(f"{name}.in_layers.0", i)
            conv(f"{name}.in_layers.2", i, o, 3)
            lin(f"{name}.emb_layers.1", temb, o)
            norm(f"{name}.out_layers.0", o)
            conv(f"{name}.out_layers.3", o, o, 3)
            if i != o:
                conv(f"{name}.skip_connection", i, o, 1)

        def transformer(name, c):
            norm(f"{name}.norm", c)
            (lin if self.use_linear else (lambda n, i, o: conv(n, i, o, 1)))(f"{name}.proj_in", c, c)
            for d in range(self.transformer_depth):
                b = f"{name}.transformer_blocks.{d}"
                for a, ctx in (("attn1", c), ("attn2", self.context_dim)):
                    lin(f"{b}.{a}.to_q", c, c, bias=False)
                    lin(f"{b}.{a}.to_k", ctx, c, bias=False)
                    lin(f"{b}.{a}.to_v", ctx, c, bias=False)
                    lin(f"{b}.{a}.to_out.0", c, c)
                lin(f"{b}.ff.net.0.proj", c, 8 * c)  # GEGLU: two halves of 4c
                lin(f"{b}.ff.net.2", 4 * c, c)
                for n in ("norm1", "norm2", "norm3"):
                    norm(f"{b}.{n}", c)
            (lin if self.use_linear else (lambda n, i, o: conv(n, i, o, 1)))(f"{name}.proj_out", c, c)

        lin("time_embed.0", mc, temb)
        lin("time_embed.2", temb, temb)
        if self.camera_dim is not None:
            lin("camera_embed.0", self.camera_dim, temb)
            lin("camera_embed.2", temb, temb)
        conv("input_blocks.0.0", self.in_channels, mc, 3)
        attn = self.levels_with_attention()
        chans, ch, idx = [mc], mc, 1
        for level, mult in enumerate(self.channel_mult):
            for _ in range(self.num_res_blocks):
                resblock(f"input_blocks.{idx}.0", ch, mult * mc)
                ch = mult * mc
                if attn[level]:
                    transformer(f"input_blocks.{idx}.1", ch)
                chans.append(ch)
                idx += 1
            if level != len(self.channel_mult) - 1:
                conv(f"input_blocks.{idx}.0.op", ch, ch, 3)
                chans.append(ch)
                idx += 1
        resblock("middle_block.0", ch, ch)
        transformer("middle_block.1", ch)
        resblock("middle_block.2", ch, ch)
        idx = 0
        for level, mult in reversed(list(enumerate(self.channel_mult))):
            for i in range(self.num_res_blocks + 1):
                resblock(f"output_blocks.{idx}.0", ch + chans.pop(), mult * mc)
                ch = mult * mc
                sub = 1
                if attn[level]:
                    transformer(f"output_blocks.{idx}.1", ch)
                    sub = 2
                if level and i == self.num_res_blocks:
                    conv(f"output_blocks.{idx}.{sub}.conv", ch, ch, 3)
                idx += 1
        norm("out.0", ch)
        conv("out.2", ch, self.out_channels, 3)
        return out


@dataclass(frozen=True)
class LDMVAEArch:
    """Hyper-parameters of the LDM KL autoencoder (first_stage_model)."""

    ch: int = 128
    """Channels of the first level."""
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    """Channel multiplier per level."""
    num_res_blocks: int = 2
    """Residual blocks per encoder level (decoder: one more)."""
    z_channels: int = 4
    """Latent channels."""
    in_channels: int = 3
    """Image channels."""
    norm_num_groups: int = 32
    """GroupNorm groups (LDM always uses 32; not stored in the weights)."""
    scaling_factor: float = 0.18215
    """Latent scale of Stable Diffusion."""

    def diffusers_config(self, sample_size: int = 256) -> dict:
        n = len(self.ch_mult)
        return {"in_channels": self.in_channels, "out_channels": self.in_channels,
                "down_block_types": ["DownEncoderBlock2D"] * n, "up_block_types": ["UpDecoderBlock2D"] * n,
                "block_out_channels": [self.ch * m for m in self.ch_mult], "layers_per_block": self.num_res_blocks,
                "latent_channels": self.z_channels, "norm_num_groups": self.norm_num_groups,
                "sample_size": sample_size, "scaling_factor": self.scaling_factor}

    @classmethod
    def from_diffusers_config(cls, cfg: dict) -> "LDMVAEArch":
        chans = list(cfg["block_out_channels"])
        return cls(ch=chans[0], ch_mult=tuple(c // chans[0] for c in chans), num_res_blocks=cfg["layers_per_block"],
                   z_channels=cfg["latent_channels"], in_channels=cfg.get("in_channels", 3),
                   norm_num_groups=cfg.get("norm_num_groups", 32), scaling_factor=cfg.get("scaling_factor", 0.18215))

    @classmethod
    def infer(cls, shapes: dict[str, tuple[int, ...]], norm_num_groups: int = 32,
              scaling_factor: float = 0.18215) -> "LDMVAEArch":
        try:
            ch, in_ch = shapes["encoder.conv_in.weight"][:2]
            levels = sorted({int(k.split(".")[2]) for k in shapes if k.startswith("encoder.down.")})
            mult = [shapes[f"encoder.down.{i}.block.0.conv1.weight"][0] // ch for i in levels]
            nres = len({k.split(".")[4] for k in shapes if k.startswith("encoder.down.0.block.")})
            return cls(ch=ch, ch_mult=tuple(mult), num_res_blocks=nres, z_channels=shapes["post_quant_conv.weight"][0],
                       in_channels=in_ch, norm_num_groups=norm_num_groups, scaling_factor=scaling_factor)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConversionError(f"not an LDM autoencoder state dict: {exc!r}") from exc

    def keys(self) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {}

        def conv(name, i, o, k):
            out[f"{name}.weight"] = (o, i, k, k)
            out[f"{name}.bias"] = (o,)

        def norm(name, c):
            out[f"{name}.weight"] = (c,)
            out[f"{name}.bias"] = (c,)

        def resblock(name, i, o):
            norm(f"{name}.norm1", i)
            conv(f"{name}.conv1", i, o, 3)
            norm(f"{name}.norm2", o)
            conv(f"{name}.conv2", o, o, 3)
            if i != o:
                conv(f"{name}.nin_shortcut", i, o, 1)

        def attn(name, c):
            norm(f"{name}.norm", c)
            for n in ("q", "k", "v", "proj_out"):
                conv(f"{name}.{n}", c, c, 1)

        def mid(prefix, c):
            resblock(f"{prefix}.mid.block_1", c, c)
            attn(f"{prefix}.mid.attn_1", c)
            resblock(f"{prefix}.mid.block_2", c, c)

        ch, z, n = self.ch, self.z_channels, len(self.ch_mult)
        conv("encoder.conv_in", self.in_channels, ch, 3)
        block_in = ch
        for level, mult in enumerate(self.ch_mult):
            for j in range(self.num_res_blocks):
                resblock(f"encoder.down.{level}.block.{j}", block_in, ch * mult)
                block_in = ch * mult
            if level != n - 1:
                conv(f"encoder.down.{level}.downsample.conv", block_in, block_in, 3)
        mid("encoder", block_in)
        norm("encoder.norm_out", block_in)
        conv("encoder.conv_out", block_in, 2 * z, 3)
        block_in = ch * self.ch_mult[-1]
        conv("decoder.conv_in", z, block_in, 3)
        mid("decoder", block_in)
        for level in reversed(range(n)):
            for j in range(self.num_res_blocks + 1):
                resblock(f"decoder.up.{level}.block.{j}", block_in, ch * self.ch_mult[level])
                block_in = ch * self.ch_mult[level]
            if level != 0:
                conv(f"decoder.up.{level}.upsample.conv", block_in, block_in, 3)
        norm("decoder.norm_out", block_in)
        conv("decoder.conv_out", block_in, self.in_channels, 3)
        conv("quant_conv", 2 * z, 2 * z, 1)
        conv("post_quant_conv", z, z, 1)
        return out


MVDREAM_SD21_UNET = LDMUNetArch()
SD_VAE_ARCH = LDMVAEArch()


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
    out = {}
    for dkey, lkey in mapped.items():
        if dkey in target_shapes:
            ls, ds = ldm_shapes[lkey], target_shapes[dkey]
            if _squeeze(ls) != _squeeze(ds) or torch.Size(ls).numel() != torch.Size(ds).numel():
                problems.append(f"shape of {lkey} {ls} != {dkey} {ds}")
            out[lkey] = (dkey, ds)
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


def check_schedule(state_dict: dict[str, Tensor], scheduler_config: dict, atol: float = 1e-5) -> None:
    """The checkpoint's alphas_cumprod buffer (if any) must equal the scheduler config's."""
    if "alphas_cumprod" not in state_dict:
        return
    from .common import alphas_cumprod_from_config

    ours = alphas_cumprod_from_config(scheduler_config)
    theirs = state_dict["alphas_cumprod"].double().cpu()
    if theirs.shape != ours.shape or (theirs - ours).abs().max() > atol:
        raise ConversionError("the checkpoint's noise schedule (alphas_cumprod) differs from the scheduler config")


def ldm_to_diffusers(state_dict: dict[str, Tensor], unet_arch: LDMUNetArch | None = None,
                     vae_arch: LDMVAEArch | None = None, num_head_channels: int = 64,
                     vae_norm_num_groups: int = 32) -> ConvertedMVDream:
    """Convert an MVDream LDM state dict. Architectures default to what the weights imply."""
    unet_sd, vae_sd, skipped, unknown = _split(state_dict)
    if unknown:
        raise ConversionError(f"{len(unknown)} keys belong to no known part of an MVDream checkpoint, "
                              f"e.g. {unknown[:5]}")
    shapes = {k: tuple(v.shape) for k, v in unet_sd.items()}
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
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    sd = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    return sd.get("state_dict", sd) if isinstance(sd, dict) else sd


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
                 scheduler_config: dict | None = None) -> Path:
    """Convert `sd-v2.1-base-4view.pt` (or a tiny file in its layout) to our diffusers-style folder."""
    from .architectures import SD21_BASE_SCHEDULER

    sd = load_state_dict_file(ckpt)
    scheduler_config = scheduler_config or SD21_BASE_SCHEDULER
    check_schedule(sd, scheduler_config)
    conv = ldm_to_diffusers(sd, num_head_channels=num_head_channels)
    unet, vae = build_from_converted(conv)
    return save_mvdream_folder(out_dir, unet, vae, scheduler_config, source=Path(ckpt).name)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Convert MVDream's LDM checkpoint to a diffusers-style folder.")
    ap.add_argument("checkpoint", help="path to sd-v2.1-base-4view.pt")
    ap.add_argument("out_dir", help="folder to write (unet/, vae/, scheduler/, mvdream.json)")
    ap.add_argument("--num-head-channels", type=int, default=64, help="channels per attention head (64 for SD 2.x)")
    args = ap.parse_args(argv)
    out = convert_file(args.checkpoint, args.out_dir, args.num_head_channels)
    print(f"wrote {out}; point MVDreamConfig.model at it")


if __name__ == "__main__":
    main()

__all__ = ["LDMUNetArch", "LDMVAEArch", "ConvertedMVDream", "ConversionError", "ldm_to_diffusers",
           "diffusers_to_ldm", "unet_key_map", "vae_key_map", "convert_file", "save_mvdream_folder",
           "build_from_converted", "load_state_dict_file", "check_schedule"]

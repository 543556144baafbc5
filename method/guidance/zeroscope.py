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

import torch
from torch import Tensor

from method.cameras import Cameras

from .base import Guidance, check_choices, check_rgb, encode_images, resize_nchw, view_thresholds
from .common import NoiseSchedule, TimestepRange, cfg_combine, randn, sds_loss
from .loading import place, freeze, load_pretrained, use_sdpa, weights_dtype
from .prompts import PromptProcessor


@dataclass(frozen=True)
class ZeroscopeConfig:
    """Zeroscope video SDS (defaults: the release's stage-3 settings)."""

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
    view_dependent: bool = True
    """View-dependent prompt suffix from the clip's camera (on in the release)."""
    front_threshold: float = 45.0
    """View-dependent prompting: |azimuth| below this is 'front' (threestudio default, used for video)."""
    back_threshold: float = 45.0
    """View-dependent prompting: |azimuth| above 180 - this is 'back'."""
    overhead_threshold: float = 60.0
    """View-dependent prompting: elevation above this is 'overhead'."""
    latent_sample: bool = True
    """Sample the VAE posterior (release) instead of taking its mean."""
    half_precision: bool = True
    """Frozen weights in float16 on CUDA (the release runs Zeroscope in fp16); float32 on CPU."""
    sdpa: bool = True
    """PyTorch scaled-dot-product attention in the UNet."""
    vae_slicing: bool = False
    """Encode frames through the VAE one at a time (lower peak memory, same result)."""
    forward_chunking: bool = False
    """diffusers' feed-forward chunking over frames in the UNet (lower memory, slower)."""


class ZeroscopeGuidance(Guidance):
    """Video SDS on one clip (all frames rendered from one camera)."""

    loss_names = ("loss_sds_video",)

    def __init__(self, cfg: ZeroscopeConfig = ZeroscopeConfig(), device: torch.device | str = "cpu",
                 models: dict | None = None):
        """Loads the weights named by `cfg`; `models` (keys unet, vae, scheduler_config, tokenizer,
        text_encoder) skips loading (random-weight benchmarks)."""
        from diffusers import AutoencoderKL, DDIMScheduler, UNet3DConditionModel

        super().__init__()
        check_choices(cfg)
        self.cfg = cfg
        self.device = torch.device(device)
        self.dtype = weights_dtype(self.device, cfg.half_precision)
        kw = dict(role="Zeroscope", field="ZeroscopeConfig.model", default_id=ZeroscopeConfig.model)
        models = dict(models or {})
        if models:
            unet, vae, sched = models["unet"], models["vae"], models["scheduler_config"]
        else:
            unet = load_pretrained(UNet3DConditionModel, cfg.model, "unet", torch_dtype=self.dtype, **kw)
            vae = load_pretrained(AutoencoderKL, cfg.model, "vae", torch_dtype=self.dtype, **kw)
            sched = load_pretrained(DDIMScheduler, cfg.model, "scheduler", **kw).config
        self.unet = place(freeze(unet), self.device, self.dtype)
        self.vae = place(freeze(vae), self.device, self.dtype)
        self.schedule = NoiseSchedule.from_config(dict(sched))
        if self.schedule.prediction_type != "epsilon":
            raise ValueError("Zeroscope is an epsilon-prediction model")
        if cfg.sdpa:
            use_sdpa(self.unet)
        if cfg.vae_slicing:
            self.vae.enable_slicing()
        if cfg.forward_chunking:
            self.unet.enable_forward_chunking(chunk_size=1, dim=1)
        self.prompts = PromptProcessor(cfg.model, self.device, self.dtype, role="Zeroscope text encoder",
                                       field="ZeroscopeConfig.model", tokenizer=models.get("tokenizer"),
                                       text_encoder=models.get("text_encoder"), default_id=ZeroscopeConfig.model)

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
                 generator: torch.Generator | None = None, stage: str | None = None) -> dict[str, Tensor]:
        """{"loss_sds_video"} for the (F, H, W, 3) frames of one clip; cameras: F identical entries or 1.

        `stage` is accepted for a uniform call and ignored. Draw order: frame choice (grad_frames),
        VAE posterior, t, noise.
        """
        cfg = self.cfg
        check_rgb(rgb, "ZeroscopeGuidance")
        frames = resize_nchw(rgb.to(self.device), (cfg.height, cfg.width))
        latents, mask = self.encode_clip(frames, generator)
        t = TimestepRange(end=tuple(cfg.t_range)).sample(step, 1, self.schedule.num_train_timesteps,
                                                           generator).to(self.device)
        noise = randn(latents.shape, generator, latents)
        cond, uncond = self.prompts.embeddings(
            prompt, cfg.negative_prompt, 1, cameras.azimuth_deg[:1], cameras.elevation_deg[:1], cfg.view_dependent,
            view_thresholds(cfg.front_threshold, cfg.back_threshold, cfg.overhead_threshold))
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

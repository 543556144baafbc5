"""Pieces every score-distillation prior shares, written once and free of model dependencies.

Everything here is plain torch so that synthetic priors (e.g. the oracle prior) reuse the exact
loss form, timestep sampling, weighting and CFG of the real ones. Notation: z the clean latents,
t the integer diffusion step, abar_t the cumulative product of (1 - beta), z_t = sqrt(abar_t) z +
sqrt(1 - abar_t) eps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

CFG_FORMS = ("paper", "release")
WEIGHTINGS = ("sds", "uniform", "fantasia3d", "recon")


# --- the SDS loss form ---------------------------------------------------------------------------

def sds_loss(latents: Tensor, grad: Tensor, batch_size: int | None = None) -> Tensor:
    """0.5 * ||z - stopgrad(z - grad)||^2 / batch_size, whose gradient w.r.t. z is grad / batch_size.

    This is how the release turns a score difference into a loss that autograd can push into the
    renderer. Non-finite entries of `grad` are set to 0 first, so one bad UNet output cannot poison
    the scene (the release's plain nan_to_num maps inf to the largest float, which overflows to inf
    again in the backward pass of the square). `batch_size` defaults to the leading
    dimension of `latents` (images per MVDream/VSD call; 1 for a video clip of shape [1, C, F, H, W]).
    """
    grad = torch.nan_to_num(grad.detach().to(latents.dtype), nan=0.0, posinf=0.0, neginf=0.0)
    target = (latents - grad).detach()
    b = latents.shape[0] if batch_size is None else batch_size
    return 0.5 * ((latents - target) ** 2).sum() / b


# --- noise schedules ---------------------------------------------------------------------------

def scaled_linear_alphas_cumprod(beta_start: float = 0.00085, beta_end: float = 0.012,
                                 num_train_timesteps: int = 1000) -> Tensor:
    """abar_t of the 'scaled_linear' schedule (Stable Diffusion, MVDream, Zeroscope), float64."""
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train_timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def alphas_cumprod_from_config(config: dict) -> Tensor:
    """abar_t from a diffusers scheduler config (dict with beta_schedule, beta_start, ...).

    Built by diffusers' own DDPMScheduler so that every schedule diffusers knows is supported
    (imported lazily: this module stays importable without diffusers).
    """
    from diffusers import DDPMScheduler

    keep = {k: v for k, v in dict(config).items() if not k.startswith("_")}
    return DDPMScheduler.from_config(keep).alphas_cumprod.to(torch.float64)


@dataclass(frozen=True)
class NoiseSchedule:
    """Forward process of one model and the conversions between its parameterisations."""

    alphas_cumprod: Tensor
    """(T,) abar_t for t = 0..T-1."""
    prediction_type: str = "epsilon"
    """What the model predicts: 'epsilon' or 'v_prediction'."""

    @classmethod
    def from_config(cls, config: dict) -> "NoiseSchedule":
        return cls(alphas_cumprod_from_config(config), config.get("prediction_type", "epsilon"))

    @property
    def num_train_timesteps(self) -> int:
        return self.alphas_cumprod.shape[0]

    def _coef(self, t: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
        a = self.alphas_cumprod.to(like.device)[t.to(like.device).long()].to(like.dtype)
        shape = (-1,) + (1,) * (like.dim() - 1)
        return a.sqrt().reshape(shape), (1 - a).sqrt().reshape(shape)

    def add_noise(self, z: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """z_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps (t: one step per leading element, or one in all)."""
        alpha, sigma = self._coef(t.expand(z.shape[0]) if t.numel() == 1 else t, z)
        return alpha * z + sigma * eps

    def velocity(self, z: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """v = sqrt(abar_t) eps - sqrt(1 - abar_t) z (the v-prediction target)."""
        alpha, sigma = self._coef(t.expand(z.shape[0]) if t.numel() == 1 else t, z)
        return alpha * eps - sigma * z

    def to_epsilon(self, model_output: Tensor, z_t: Tensor, t: Tensor) -> Tensor:
        """The model output as a noise prediction (v-pred: eps = sqrt(abar) v + sqrt(1 - abar) z_t)."""
        if self.prediction_type == "epsilon":
            return model_output
        if self.prediction_type == "v_prediction":
            alpha, sigma = self._coef(t.expand(z_t.shape[0]) if t.numel() == 1 else t, z_t)
            return alpha * model_output + sigma * z_t
        raise ValueError(f"unsupported prediction_type {self.prediction_type!r}")

    def x0_from_epsilon(self, z_t: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """x0_hat = (z_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
        alpha, sigma = self._coef(t.expand(z_t.shape[0]) if t.numel() == 1 else t, z_t)
        return (z_t - sigma * eps) / alpha

    def weight(self, t: Tensor, strategy: str, like: Tensor) -> Tensor:
        """w(t) broadcastable against `like` (see `weighting`)."""
        a = self.alphas_cumprod.to(like.device)[t.to(like.device).long()].to(like.dtype)
        return weighting(a, strategy).reshape((-1,) + (1,) * (like.dim() - 1))


def weighting(alphas_cumprod_t: Tensor, strategy: str) -> Tensor:
    """SDS weight w(t) from abar_t.

    sds: 1 - abar_t (DreamFusion / the release); uniform: 1; fantasia3d: sqrt(abar_t)(1 - abar_t);
    recon: sqrt((1 - abar_t)/abar_t), the weight for which SDS equals the x0-reconstruction loss
    without std rescaling (z - x0_hat = sqrt((1-abar)/abar) (eps_hat - eps)).
    """
    a = alphas_cumprod_t
    if strategy == "sds":
        return 1.0 - a
    if strategy == "uniform":
        return torch.ones_like(a)
    if strategy == "fantasia3d":
        return a.sqrt() * (1.0 - a)
    if strategy == "recon":
        return ((1.0 - a) / a).sqrt()
    raise ValueError(f"unknown weighting {strategy!r}; known: {', '.join(WEIGHTINGS)}")


# --- classifier-free guidance ------------------------------------------------------------------

def cfg_combine(eps_uncond: Tensor, eps_cond: Tensor, scale: float, form: str = "paper") -> Tensor:
    """Classifier-free guidance.

    paper:   eps_u + s (eps_c - eps_u)   (the usual reading of a scale: MVDream, VSD, diffusers; Ho & Salimans'
                                          (1 + w) eps_c - w eps_u with s = 1 + w; the `paper` profile's video SDS,
                                          for which the paper writes no formula, docs/fidelity.md)
    release: eps_c + s (eps_c - eps_u)   (the release's Zeroscope guidance: Ho & Salimans' form with w = s)
    """
    if form == "paper":
        return eps_uncond + scale * (eps_cond - eps_uncond)
    if form == "release":
        return eps_cond + scale * (eps_cond - eps_uncond)
    raise ValueError(f"unknown CFG form {form!r}; known: {', '.join(CFG_FORMS)}")


# --- timestep ranges --------------------------------------------------------------------------

@dataclass(frozen=True)
class TimestepRange:
    """Fractions [min, max] of the T training steps that t is drawn from, annealed linearly.

    At stage step s the range is start + clamp(s / steps, 0, 1) * (end - start) for each bound
    (threestudio's [start_iter, start_val, end_val, end_iter] schedule with start_iter = 0);
    steps = 0 means constant `end`. A pure function of the step: nothing is stored between calls.
    """

    end: tuple[float, float] = (0.02, 0.98)
    """(min, max) fractions after the anneal (and always, when steps = 0)."""
    start: tuple[float, float] | None = None
    """(min, max) fractions at step 0; None: same as `end`."""
    steps: int = 0
    """Length of the linear ramp in steps."""

    def __post_init__(self) -> None:
        for lo, hi in [self.end] + ([self.start] if self.start is not None else []):
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(f"timestep fractions must satisfy 0 <= min <= max <= 1, got ({lo}, {hi})")

    def fractions(self, step: int) -> tuple[float, float]:
        if self.start is None or self.steps <= 0:
            return self.end
        f = min(max(step / self.steps, 0.0), 1.0)
        return tuple(s + f * (e - s) for s, e in zip(self.start, self.end))  # type: ignore[return-value]

    def bounds(self, step: int, num_train_timesteps: int = 1000) -> tuple[int, int]:
        """Inclusive integer bounds (int(T * min), int(T * max)), clipped to [0, T - 1]."""
        lo, hi = self.fractions(step)
        lo_i = min(int(num_train_timesteps * lo), num_train_timesteps - 1)
        hi_i = min(int(num_train_timesteps * hi), num_train_timesteps - 1)
        return lo_i, max(lo_i, hi_i)

    def sample(self, step: int, n: int = 1, num_train_timesteps: int = 1000,
               generator: torch.Generator | None = None) -> Tensor:
        """n integer timesteps, uniform on the inclusive bounds at `step` (CPU long tensor)."""
        lo, hi = self.bounds(step, num_train_timesteps)
        return torch.randint(lo, hi + 1, (n,), generator=generator, dtype=torch.long)


# --- random draws ------------------------------------------------------------------------------

def randn(shape, generator: torch.Generator | None, like: Tensor) -> Tensor:
    """Standard normal noise drawn on the generator's device (CPU) and moved to `like`'s device.

    Drawing on the CPU keeps a run's random stream identical on CPU and GPU.
    """
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32).to(like.device, like.dtype)


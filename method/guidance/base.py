"""What the three priors share: the call contract, render -> latents, and the frozen-model options."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from .prompts import ViewThresholds


class PriorConfig:
    """Base of every prior's typed config (MVDream, VSD, Zeroscope, the oracle).

    A subclass is a frozen dataclass with a `kind` field (its discriminator in saved configs) and a
    class attribute `target = "module:Class"` naming the `Guidance` it builds, imported lazily so that
    configs stay cheap to load. `KINDS` maps each kind to its config class, also lazily.
    """

    target: ClassVar[str] = ""
    KINDS: ClassVar[dict[str, str]] = {
        "mvdream": "method.guidance.mvdream:MVDreamConfig",
        "vsd": "method.guidance.vsd:VSDConfig",
        "zeroscope": "method.guidance.zeroscope:ZeroscopeConfig",
        "oracle": "method.oracle.prior:OracleConfig",
    }

    @classmethod
    def config_class(cls, kind: str) -> type:
        if kind not in cls.KINDS:
            raise ValueError(f"unknown prior kind {kind!r}; known: {', '.join(sorted(cls.KINDS))}")
        return load_attr(cls.KINDS[kind])

    @classmethod
    def from_config_dict(cls, data: dict, where: str = "") -> "PriorConfig":
        """The config of the kind named in `data["kind"]` (used by `method.configs.from_dict`)."""
        from method.configs import from_dict

        return from_dict(cls.config_class(data.get("kind", "")), data, where)

    def build(self, device: torch.device | str = "cpu") -> "Guidance":
        """The prior this config describes, with its weights loaded."""
        return load_attr(self.target)(self, device=device)


def load_attr(spec: str):
    """'package.module:attr' -> the attribute (imported on first use)."""
    import importlib

    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


class Guidance:
    """Contract of every prior:
    `__call__(rgb, cameras, prompt, step, generator=None, stage=None) -> {loss_<name>: tensor}`.

    rgb is the renderer's (B, H, W, 3) output in [0, 1] with gradient; the returned losses deliver the
    score-distillation gradient to it by backpropagation. `step` is the step within the current stage
    and every schedule is a pure function of (stage, step); all random draws come from `generator`.
    After a call, `last` holds the draws and intermediate tensors of that call (timesteps, noise,
    latents, predictions, grad) for diagnostics and tests.
    """

    loss_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.last: dict[str, Tensor] = {}

    def update(self, step: int) -> None:
        """Per-step hook. Schedules here are pure functions of `step`, so nothing needs updating."""

    def trainable_parameters(self) -> list[Tensor]:
        return []

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no trainable state, got keys {sorted(state)}")


def resize_nchw(rgb: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, H, W, 3) in [0, 1] -> (B, 3, h, w), bilinearly resized (align_corners=False, as the release)."""
    x = rgb.permute(0, 3, 1, 2)
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    return x


def encode_images(vae, images01: Tensor, sample: bool, generator: torch.Generator | None,
                  dtype: torch.dtype) -> Tensor:
    """VAE latents (scaled by the VAE's scaling_factor, float32) of images in [0, 1], with gradient.

    sample=True draws from the posterior (the release); False uses its mean (deterministic).
    """
    x = (images01 * 2.0 - 1.0).to(dtype)
    dist = vae.encode(x).latent_dist
    z = dist.sample(generator=generator) if sample else dist.mean
    return z.float() * vae.config.scaling_factor


def view_thresholds(front: float, back: float, overhead: float) -> ViewThresholds:
    return ViewThresholds(front=front, back=back, overhead=overhead)


def check_choices(cfg) -> None:
    """Fail at construction, not at the first step, on an unknown CFG form or weighting."""
    from .common import CFG_FORMS, WEIGHTINGS

    for field, known in (("cfg_form", CFG_FORMS), ("weighting", WEIGHTINGS)):
        value = getattr(cfg, field, None)
        if value is not None and value not in known:
            raise ValueError(f"{type(cfg).__name__}.{field} = {value!r}; known: {', '.join(known)}")


def check_rgb(rgb: Tensor, name: str) -> None:
    if rgb.dim() != 4 or rgb.shape[-1] != 3:
        raise ValueError(f"{name} expects rgb of shape (B, H, W, 3), got {tuple(rgb.shape)}")

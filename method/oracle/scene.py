"""A known synthetic 4D scene: coloured Gaussian density blobs, one of them moving with time."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Blob:
    """One Gaussian density blob."""

    center: tuple[float, float, float]
    """Centre at t = 0 (world coordinates, inside the box [-1, 1]^3)."""
    radius: float
    """Standard deviation of the Gaussian."""
    color: tuple[float, float, float]
    """RGB in [0, 1]."""
    motion: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Displacement between t = 0 and t = 1 (linear in t)."""
    peak: float = 40.0
    """Density at the centre."""


@dataclass(frozen=True)
class OracleScene:
    """density(x, t) = sum_i peak_i N(x; c_i + t m_i, r_i); colour = density-weighted blob colours."""

    blobs: tuple[Blob, ...] = (
        Blob((-0.15, -0.15, 0.0), 0.16, (0.9, 0.2, 0.15)),
        Blob((0.2, 0.15, 0.05), 0.13, (0.15, 0.3, 0.9)),
        Blob((0.05, -0.3, -0.15), 0.11, (0.15, 0.8, 0.25), motion=(0.0, 0.55, 0.25)),
    )
    """The blobs; the default has one moving (green) blob."""
    background: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Constant background colour (mid grey: what the background MLP outputs at initialisation)."""

    def moving(self) -> list[int]:
        return [i for i, b in enumerate(self.blobs) if any(m != 0 for m in b.motion)]

    def field(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        t = t.reshape(-1, 1).to(x.dtype).expand(len(x), 1)
        dens, rgb = [], []
        for b in self.blobs:
            c = x.new_tensor(b.center) + t * x.new_tensor(b.motion)
            d = b.peak * torch.exp(-((x - c) ** 2).sum(-1) / (2 * b.radius ** 2))
            dens.append(d)
            rgb.append(x.new_tensor(b.color).expand(len(x), 3))
        dens = torch.stack(dens, -1)  # (N, K)
        total = dens.sum(-1)
        weights = dens / total.clamp_min(1e-12).unsqueeze(-1)
        color = (weights.unsqueeze(-1) * torch.stack(rgb, 1)).sum(1)
        return total, color

    def background_fn(self, dirs: Tensor) -> Tensor:
        return dirs.new_tensor(self.background).expand(len(dirs), 3)

"""A known synthetic 4D scene: coloured Gaussian density blobs, one of them moving with time, and its
exact volume render (closed-form line integrals), independent of the suite's renderer."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from method.cameras import Cameras


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
        Blob((0.0, 0.0, 0.36), 0.1, (0.95, 0.95, 0.95)),
    )
    """The blobs: three around the centre, one of them moving (green), and a small white marker above
    them, away from the motion, that `recolored` scenes change."""
    background: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Constant background colour (mid grey: what the background MLP outputs at initialisation)."""

    def moving(self) -> list[int]:
        return [i for i, b in enumerate(self.blobs) if any(m != 0 for m in b.motion)]

    def recolored(self, index: int, color: tuple[float, float, float]) -> "OracleScene":
        """The same scene with blob `index` in another colour (same density everywhere)."""
        blobs = list(self.blobs)
        blobs[index] = dataclasses.replace(blobs[index], color=color)
        return dataclasses.replace(self, blobs=tuple(blobs))

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

    @torch.no_grad()
    def render_exact(self, cameras: Cameras, times: Tensor, height: int, width: int, nodes: int = 48) -> Tensor:
        """(B, H, W, 3) float32 images: the volume-rendering integral of this scene, evaluated exactly.

        Along a ray o + s d the density of a Gaussian blob is a 1D Gaussian in s, so its optical depth
        is a closed-form erf and the transmittance T(s) = exp(-sum_i tau_i(s)) is exact. The colour
        sum_i c_i int T sigma_i ds is a Gaussian times a smooth T, integrated by Gauss-Legendre with
        `nodes` nodes over the blob's +-8 radii; the background gets T(inf). Float64 throughout, and
        no sample lattice, box clipping or alpha compositing: nothing shared with `method.render`.
        """
        dtype = torch.float64
        origins, dirs = _pixel_rays(cameras, height, width)  # (R, 3) each, float64
        times = torch.as_tensor(times).to(dtype).reshape(-1).repeat_interleave(height * width)
        centers = torch.stack([torch.tensor(b.center, dtype=dtype)
                               + times[:, None] * torch.tensor(b.motion, dtype=dtype) for b in self.blobs], 1)  # (R, K, 3)
        radius = torch.tensor([b.radius for b in self.blobs], dtype=dtype)  # (K,)
        peak = torch.tensor([b.peak for b in self.blobs], dtype=dtype)
        colors = torch.tensor([b.color for b in self.blobs], dtype=dtype)  # (K, 3)
        rel = centers - origins[:, None]
        s_c = (rel * dirs[:, None]).sum(-1)  # (R, K) ray parameter of closest approach
        d2 = ((rel - s_c[..., None] * dirs[:, None]) ** 2).sum(-1)  # squared closest distance
        amp = peak * torch.exp(-d2 / (2 * radius ** 2))  # density at closest approach
        root2r = math.sqrt(2.0) * radius

        def depth(s: Tensor) -> Tensor:
            """Optical depth of every blob from the camera (s = 0) to s: (R, ...) -> (R, ..., K)."""
            s = s[..., None]
            shape = (-1,) + (1,) * (s.dim() - 2) + (len(self.blobs),)
            a, sc = amp.reshape(shape), s_c.reshape(shape)
            return a * radius * math.sqrt(math.pi / 2) * (torch.erf((s - sc) / root2r) + torch.erf(sc / root2r))

        x, w = _gauss_legendre(nodes, dtype)
        half = 8.0 * radius  # (K,)
        lo = (s_c - half).clamp_min(0.0)
        hi = (s_c + half).clamp_min(0.0)
        s = lo[..., None] + (hi - lo)[..., None] * (x + 1) / 2  # (R, K, n) nodes per blob window
        sigma_i = amp[..., None] * torch.exp(-(s - s_c[..., None]) ** 2 / (2 * radius[:, None] ** 2))
        trans = torch.exp(-depth(s).sum(-1))  # (R, K, n)
        weight = ((trans * sigma_i) * w).sum(-1) * (hi - lo) / 2  # (R, K): int T sigma_i ds
        t_inf = torch.exp(-(amp * radius * math.sqrt(math.pi / 2) * (1 + torch.erf(s_c / root2r))).sum(-1))
        rgb = weight @ colors + t_inf[:, None] * torch.tensor(self.background, dtype=dtype)
        return rgb.reshape(len(cameras), height, width, 3).float().to(cameras.device)


def _gauss_legendre(n: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    import numpy as np

    x, w = np.polynomial.legendre.leggauss(n)
    return torch.tensor(x, dtype=dtype), torch.tensor(w, dtype=dtype)


def _pixel_rays(cameras: Cameras, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Unit rays through pixel centres (x right, y up, looking along -z in camera axes; row 0 on top),
    written out here from the convention rather than taken from the renderer's ray code."""
    c2w = cameras.c2w.detach().cpu().to(torch.float64)
    fovy = cameras.fovy.detach().cpu().to(torch.float64)
    focal = 0.5 * height / torch.tan(0.5 * fovy)  # (B,)
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64) + 0.5,
                          torch.arange(width, dtype=torch.float64) + 0.5, indexing="ij")
    cam = torch.stack([(u - width / 2)[None] / focal[:, None, None], -(v - height / 2)[None] / focal[:, None, None],
                       -torch.ones(len(c2w), height, width, dtype=torch.float64)], -1)
    dirs = torch.einsum("bij,bhwj->bhwi", c2w[:, :3, :3], cam)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    origins = c2w[:, None, None, :3, 3].expand_as(dirs)
    return origins.reshape(-1, 3), dirs.reshape(-1, 3)

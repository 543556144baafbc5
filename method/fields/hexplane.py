"""HexPlane space-time features: six multi-scale planes, three spatial (xy, xz, yz) and three
spatio-temporal (xt, yt, zt), sampled bilinearly and fused per scale; scales are concatenated.

Two fusions (`HexPlaneConfig.form`):
- 'hexplane' (default, Cao & Johnson 2023): xy*zt + xz*yt + yz*xt, each spatial plane times the
  spatio-temporal plane of the complementary axis. The time planes start at 1, so while they stay
  frozen (stages 1-2) the field is the static xy + xz + yz and the space planes get full gradients.
- 'split': xy*xz*yz + (xt + yt + zt), a static product plus an additive dynamic part started near
  0 (mirrors the hash grids' static + dynamic sum). This was the suite's earlier form; it is neither
  HexPlane nor K-Planes (product of all six) and is kept for comparison.

The spatial planes are the `static` parameter group, the spatio-temporal ones `dynamic`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import HexPlaneConfig

SPACE_PLANES = ((0, 1), (0, 2), (1, 2))  # xy, xz, yz
TIME_PLANES = ((0, 3), (1, 3), (2, 3))  # xt, yt, zt
HEXPLANE_PAIRS = ((0, 2), (1, 1), (2, 0))  # (space, time) plane indices: xy*zt, xz*yt, yz*xt


def _sample_plane(plane: Tensor, uv: Tensor) -> Tensor:
    """Bilinear lookup of plane (F, H, W) at uv (N, 2) in [0, 1] (u along W, v along H) -> (N, F)."""
    grid = (uv * 2 - 1).view(1, -1, 1, 2).to(plane.dtype)
    out = F.grid_sample(plane.unsqueeze(0), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.view(plane.shape[0], -1).t()


class HexPlaneEncoding(nn.Module):
    """Six multi-scale feature planes; input (N, 4) in [0, 1]^4, output (N, n_scales * F)."""

    def __init__(self, cfg: HexPlaneConfig):
        super().__init__()
        if len(cfg.spatial_resolutions) != len(cfg.time_resolutions):
            raise ValueError("spatial_resolutions and time_resolutions need one entry per scale")
        f = cfg.n_features_per_scale
        self.cfg = cfg
        # space planes as K-Planes (0.1-0.5); time planes neutral for their fusion: 1 where they
        # multiply (hexplane), ~0 where they are added (split)
        self.space = nn.ParameterList(
            nn.Parameter(torch.empty(3, f, r, r).uniform_(0.1, 0.5)) for r in cfg.spatial_resolutions)
        time_init = (lambda p: p.fill_(1.0)) if cfg.form == "hexplane" else (lambda p: p.uniform_(-1e-4, 1e-4))
        self.time = nn.ParameterList(
            nn.Parameter(time_init(torch.empty(3, f, tr, r)))
            for r, tr in zip(cfg.spatial_resolutions, cfg.time_resolutions))

    @property
    def n_output_dims(self) -> int:
        return self.cfg.n_output_dims

    def forward(self, xyz: Tensor, t: Tensor) -> Tensor:
        """Features (N, n_scales * F) of points xyz (N, 3) at times t (N, 1), all in [0, 1]."""
        if self.cfg.form == "split":
            return self.static_features(xyz) + self.dynamic_features(torch.cat([xyz, t], -1))
        xyzt = torch.cat([xyz, t], -1)
        outs = []
        for space, time in zip(self.space, self.time):
            outs.append(sum(_sample_plane(space[i], xyzt[:, list(SPACE_PLANES[i])])
                            * _sample_plane(time[j], xyzt[:, list(TIME_PLANES[j])]) for i, j in HEXPLANE_PAIRS))
        return torch.cat(outs, -1)

    def static_features(self, xyz: Tensor) -> Tensor:
        outs = []
        for planes in self.space:
            feat = None
            for p, (a, b) in zip(planes, SPACE_PLANES):
                v = _sample_plane(p, xyz[:, [a, b]])
                feat = v if feat is None else feat * v
            outs.append(feat)
        return torch.cat(outs, -1)

    def dynamic_features(self, xyzt: Tensor) -> Tensor:
        outs = []
        for planes in self.time:
            outs.append(sum(_sample_plane(p, xyzt[:, [a, b]]) for p, (a, b) in zip(planes, TIME_PLANES)))
        return torch.cat(outs, -1)


def hexplane_param_count(cfg: HexPlaneConfig) -> int:
    """Parameters of the six planes (the same for both fusions)."""
    f = cfg.n_features_per_scale
    return sum(3 * f * r * r + 3 * f * r * tr for r, tr in zip(cfg.spatial_resolutions, cfg.time_resolutions))


def hexplane_matching(n_params: int, n_scales: int = 4, n_features_per_scale: int = 8,
                      time_resolutions: tuple[int, ...] = (16, 32, 64, 64), form: str = "hexplane") -> HexPlaneConfig:
    """A HexPlane config whose parameter count is as close as possible to `n_params`
    (the paper matched HexPlane's capacity to the hash grids' memory). Resolutions double per scale."""
    best = None
    for base in range(4, 4096):
        cfg = HexPlaneConfig(tuple(base * 2 ** s for s in range(n_scales)), time_resolutions[:n_scales],
                             n_features_per_scale, form=form)
        gap = abs(hexplane_param_count(cfg) - n_params)
        if best is not None and gap > best[0]:
            break
        best = (gap, cfg)
    return best[1]

"""HexPlane / K-Planes style space-time features with a static/dynamic split.

static(x)  = prod over (xy, xz, yz) planes          (multiplicative, like K-Planes' space planes)
dynamic(x) = sum over (xt, yt, zt) planes           (additive, initialised near zero)
features   = static + dynamic, scales concatenated.

The additive dynamic part mirrors the hash-grid variant (static + dynamic summed), so the same
staged training (dynamic part frozen at its near-zero init in stages 1-2) applies unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import HexPlaneConfig

SPACE_PLANES = ((0, 1), (0, 2), (1, 2))  # xy, xz, yz
TIME_PLANES = ((0, 3), (1, 3), (2, 3))  # xt, yt, zt


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
        # init as K-Planes: multiplicative space planes around 0.1-0.5; additive time planes ~0.
        self.space = nn.ParameterList(
            nn.Parameter(torch.empty(3, f, r, r).uniform_(0.1, 0.5)) for r in cfg.spatial_resolutions)
        self.time = nn.ParameterList(
            nn.Parameter(torch.empty(3, f, tr, r).uniform_(-1e-4, 1e-4))
            for r, tr in zip(cfg.spatial_resolutions, cfg.time_resolutions))

    @property
    def n_output_dims(self) -> int:
        return self.cfg.n_output_dims

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
    f = cfg.n_features_per_scale
    return sum(3 * f * r * r + 3 * f * r * tr for r, tr in zip(cfg.spatial_resolutions, cfg.time_resolutions))


def hexplane_matching(n_params: int, n_scales: int = 4, n_features_per_scale: int = 8,
                      time_resolutions: tuple[int, ...] = (16, 32, 64, 64)) -> HexPlaneConfig:
    """A HexPlane config whose parameter count is as close as possible to `n_params`
    (the paper matched HexPlane's capacity to the hash grids' memory). Resolutions double per scale."""
    best = None
    for base in range(4, 4096):
        cfg = HexPlaneConfig(tuple(base * 2 ** s for s in range(n_scales)), time_resolutions[:n_scales],
                             n_features_per_scale)
        gap = abs(hexplane_param_count(cfg) - n_params)
        if best is not None and gap > best[0]:
            break
        best = (gap, cfg)
    return best[1]

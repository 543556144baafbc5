"""Space-time feature encoders with a static/dynamic split: the three representations of the paper."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from method.encodings import HashGridEncoding

from .config import FieldConfig, HashGridConfig
from .hexplane import HexPlaneEncoding


def _hash_grid(n_dims: int, cfg: HashGridConfig, backend: str) -> HashGridEncoding:
    return HashGridEncoding(n_dims, cfg.n_levels, cfg.n_features_per_level, cfg.log2_hashmap_size,
                            cfg.base_resolution, cfg.per_level_scale, backend=backend)


class SpaceTimeEncoder(nn.Module):
    """features(xyz, t) from a static (space-only) and a dynamic (time-dependent) parameter group;
    xyz and t in [0, 1]."""

    def static_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def dynamic_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError


class HashGridSpaceTime(SpaceTimeEncoder):
    """4D-fy's representation: a static 3D hash grid plus a dynamic 4D hash grid, summed."""

    def __init__(self, cfg: FieldConfig):
        super().__init__()
        if cfg.static_grid.n_output_dims != cfg.dynamic_grid.n_output_dims:
            raise ValueError("static and dynamic grids are summed: their output sizes must match")
        self.static = _hash_grid(3, cfg.static_grid, cfg.grid_backend)
        self.dynamic = _hash_grid(4, cfg.dynamic_grid, cfg.grid_backend)
        self.n_output_dims = cfg.static_grid.n_output_dims

    def forward(self, xyz: Tensor, t: Tensor) -> Tensor:
        return self.static(xyz) + self.dynamic(torch.cat([xyz, t], -1))

    def static_parameters(self):
        return [self.static.params]

    def dynamic_parameters(self):
        return [self.dynamic.params]


class SingleGridSpaceTime(SpaceTimeEncoder):
    """Ablation: one 4D hash grid, no static/dynamic split (all of it is 'dynamic')."""

    def __init__(self, cfg: FieldConfig):
        super().__init__()
        self.grid = _hash_grid(4, cfg.dynamic_grid, cfg.grid_backend)
        self.n_output_dims = cfg.dynamic_grid.n_output_dims

    def forward(self, xyz: Tensor, t: Tensor) -> Tensor:
        return self.grid(torch.cat([xyz, t], -1))

    def static_parameters(self):
        return []

    def dynamic_parameters(self):
        return [self.grid.params]


class HexPlaneSpaceTime(SpaceTimeEncoder):
    """Ablation: HexPlane planes (static xy/xz/yz, dynamic xt/yt/zt), fused as `cfg.hexplane.form` says."""

    def __init__(self, cfg: FieldConfig):
        super().__init__()
        self.planes = HexPlaneEncoding(cfg.hexplane)
        self.n_output_dims = self.planes.n_output_dims

    def forward(self, xyz: Tensor, t: Tensor) -> Tensor:
        return self.planes(xyz, t)

    def static_parameters(self):
        return list(self.planes.space)

    def dynamic_parameters(self):
        return list(self.planes.time)


REPRESENTATIONS = {"hashgrid": HashGridSpaceTime, "single_grid": SingleGridSpaceTime, "hexplane": HexPlaneSpaceTime}


def build_spacetime(cfg: FieldConfig) -> SpaceTimeEncoder:
    try:
        cls = REPRESENTATIONS[cfg.representation]
    except KeyError:
        raise ValueError(f"unknown representation {cfg.representation!r}; known: {sorted(REPRESENTATIONS)}") from None
    return cls(cfg)

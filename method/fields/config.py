"""Configuration of the 4D scene field (representation, grid sizes, heads)."""

from __future__ import annotations

from dataclasses import dataclass, field

from method.backends import HASH_GRID_BACKENDS
from method.ranges import RangeError, at_least, positive


@dataclass(frozen=True)
class HashGridConfig:
    """One multiresolution hash grid (tiny-cuda-nn `HashGrid` settings)."""

    n_levels: int = 16
    """Number of resolution levels."""
    n_features_per_level: int = 2
    """Features stored per table entry."""
    log2_hashmap_size: int = 19
    """log2 of the table entries per level."""
    base_resolution: int = 16
    """Vertices per dimension at the coarsest level."""
    per_level_scale: float = 1.4472692
    """Resolution growth factor per level (2^(8/15): finest level 4096)."""

    def __post_init__(self) -> None:
        # sizes and counts of the tables: 0 fails inside torch mid-run, after the run folder is made
        for name in ("n_levels", "n_features_per_level", "log2_hashmap_size", "base_resolution"):
            at_least(name, getattr(self, name), 1)
        positive("per_level_scale", self.per_level_scale)

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features_per_level


HEXPLANE_FORMS = ("hexplane", "split")


@dataclass(frozen=True)
class HexPlaneConfig:
    """Multi-scale six-plane factorisation (xy, xz, yz static; xt, yt, zt dynamic)."""

    spatial_resolutions: tuple[int, ...] = (112, 224, 448, 896)
    """Plane resolution along x, y, z per scale (default: `hexplane_matching` of the two hash grids)."""
    time_resolutions: tuple[int, ...] = (16, 32, 64, 64)
    """Plane resolution along t per scale."""
    n_features_per_scale: int = 8
    """Feature channels per plane and scale (outputs of all scales are concatenated)."""
    form: str = "hexplane"
    """'hexplane': the published HexPlane fusion xy*zt + xz*yt + yz*xt (time planes start at 1);
    'split': this suite's earlier form xy*xz*yz + (xt + yt + zt) (time planes start near 0)."""

    def __post_init__(self) -> None:
        if self.form not in HEXPLANE_FORMS:
            raise RangeError("form", f"must be one of ({', '.join(HEXPLANE_FORMS)})", self.form)
        for name in ("spatial_resolutions", "time_resolutions", "n_features_per_scale"):
            at_least(name, getattr(self, name), 1)

    @property
    def n_output_dims(self) -> int:
        return len(self.spatial_resolutions) * self.n_features_per_scale


REPRESENTATION_NAMES = ("hashgrid", "hexplane", "single_grid")
"""The scene representations (`FieldConfig.representation`); `spacetime.REPRESENTATIONS` builds each."""


@dataclass(frozen=True)
class FieldConfig:
    """The scene field: space-time features -> bias-free density and colour heads."""

    representation: str = "hashgrid"
    """'hashgrid' (static 3D + dynamic 4D, summed), 'hexplane', or 'single_grid' (one 4D grid)."""
    static_grid: HashGridConfig = field(default_factory=HashGridConfig)
    """Static 3D hash grid, queried at (x, y, z)."""
    dynamic_grid: HashGridConfig = field(default_factory=HashGridConfig)
    """Dynamic 4D hash grid, queried at (x, y, z, t) (also the one grid of 'single_grid')."""
    hexplane: HexPlaneConfig = field(default_factory=HexPlaneConfig)
    """Plane sizes of the 'hexplane' representation."""
    mlp_hidden: int = 64
    """Hidden units of the density and colour heads (one hidden layer each, no biases)."""
    box_radius: float = 1.0
    """The scene box is [-r, r]^3; points are mapped linearly to [0, 1]^3 for the grids."""
    blob_scale: float = 10.0
    """Density bias amplitude a in softplus(raw + a * (1 - ||x|| / sigma))."""
    grid_backend: str = "auto"
    """Hash-grid backend: 'auto' (tcnn, else Triton on CUDA, else torch), 'torch', 'triton' or 'tcnn' (a name is
    checked when the config is made; whether that backend runs on this machine, when the grid is built)."""

    def __post_init__(self) -> None:
        # checked here, not when the field is built: that is after the run folder is made
        if self.representation not in REPRESENTATION_NAMES:
            raise RangeError("representation", f"must be one of ({', '.join(REPRESENTATION_NAMES)})",
                             self.representation)
        if self.grid_backend not in HASH_GRID_BACKENDS:
            raise RangeError("grid_backend", f"must be one of ({', '.join(HASH_GRID_BACKENDS)})", self.grid_backend)
        at_least("mlp_hidden", self.mlp_hidden, 1)

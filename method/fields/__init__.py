"""The 4D scene field: static 3D + dynamic 4D hash grids (summed), HexPlane and single-grid variants,
bias-free heads, the density blob, and named parameter groups."""

from .config import FieldConfig, HashGridConfig, HexPlaneConfig
from .hexplane import HexPlaneEncoding, hexplane_matching, hexplane_param_count
from .scene import PARAM_GROUPS, SceneField, blob_density
from .spacetime import REPRESENTATIONS, build_spacetime

__all__ = ["FieldConfig", "HashGridConfig", "HexPlaneConfig", "HexPlaneEncoding", "hexplane_matching",
           "hexplane_param_count", "PARAM_GROUPS", "SceneField", "blob_density", "REPRESENTATIONS",
           "build_spacetime"]

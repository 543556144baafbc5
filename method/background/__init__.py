"""Direction-conditioned MLP background (SH degree 3) and per-image / per-clip random colours."""

from .mlp import BackgroundConfig, MLPBackground, draw_random_backgrounds
from .sh import spherical_harmonics

__all__ = ["BackgroundConfig", "MLPBackground", "draw_random_backgrounds", "spherical_harmonics"]

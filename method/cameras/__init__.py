"""Cameras: the convention (z-up, azimuth 0 on +x, camera-to-world 4x4), random training samplers
and evaluation trajectories. See `convention.py` for the axes."""

from .convention import Cameras, cameras_from_spherical, look_at, normalize_camera_translation, spherical_to_position
from .samplers import (
    CameraRanges,
    sample_elevation_deg,
    sample_frame_times,
    sample_multiview_groups,
    sample_single_views,
    sample_video,
)
from .trajectories import OrbitConfig, motion_smooth, orbit, turntable

__all__ = [
    "Cameras", "cameras_from_spherical", "look_at", "normalize_camera_translation", "spherical_to_position",
    "CameraRanges", "sample_elevation_deg", "sample_frame_times", "sample_multiview_groups", "sample_single_views",
    "sample_video", "OrbitConfig", "orbit", "motion_smooth", "turntable",
]

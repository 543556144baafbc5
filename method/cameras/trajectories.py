"""Evaluation camera paths: each returns (Cameras, times) with one time per frame."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .convention import Cameras, cameras_from_spherical


@dataclass(frozen=True)
class OrbitConfig:
    """The MAV3D evaluation protocol: one full azimuth sweep at a fixed elevation while time runs 0 -> 1."""

    n_frames: int = 64
    """Frames in the video (the paper renders 64 after training with 16)."""
    elevation_deg: float = 15.0
    """Fixed camera elevation."""
    distance: float = 3.0
    """Camera distance from the origin."""
    fovy_deg: float = 40.0
    """Vertical field of view."""
    start_azimuth_deg: float = 0.0
    """Azimuth of the first frame."""
    height: int = 256
    """Rendered frame height."""
    width: int = 256
    """Rendered frame width."""
    time_spacing: str = "trained"
    """'trained': t = k/N, inside the trained interval [0, 1) (training clips use t0 + k/16 < 1);
    'closed': t = k/(N-1), the release's `linspace(0, 1, N)`, whose last frame t = 1.0 was never trained."""

    def __post_init__(self) -> None:
        if self.time_spacing not in ("trained", "closed"):
            raise ValueError(f"OrbitConfig.time_spacing = {self.time_spacing!r}; known: trained, closed")


def orbit(cfg: OrbitConfig = OrbitConfig()) -> tuple[Cameras, Tensor]:
    """A 360 deg orbit: azimuth start + 360*k/N (no duplicated end frame) while time runs over
    k/N (default, within the trained [0, 1)) or k/(N-1) (`time_spacing='closed'`)."""
    n = cfg.n_frames
    if n < 2:
        raise ValueError("an orbit needs at least 2 frames")
    k = torch.arange(n, dtype=torch.float32)
    az = cfg.start_azimuth_deg + 360.0 * k / n
    times = k / n if cfg.time_spacing == "trained" else k / (n - 1)
    return cameras_from_spherical(az, cfg.elevation_deg, cfg.distance, cfg.fovy_deg), times


def motion_smooth(n_time_samples: int = 64, elevation_deg: float = 15.0, distance: float = 3.0,
                  fovy_deg: float = 40.0) -> tuple[Cameras, Tensor]:
    """The release's stage-3 test path (`test_traj: motion_smooth`), reproduced frame for frame.

    The camera holds still at 360, 270, 180 and 90 deg (n/8 frames each, n = 2*n_time_samples) and
    rotates by -90 deg between the holds; time loops twice over the first n_time_samples-2 samples of
    linspace(0, 1, n_time_samples). With the default 64 samples this gives 124 frames.
    """
    f = n_time_samples
    if f < 8:
        raise ValueError("motion_smooth needs at least 8 time samples")
    n_az = (2 * f) // 8
    azimuths = []
    for i in range(4):
        start, end = (4 - i) * 90.0, (3 - i) * 90.0
        azimuths.append(torch.full((n_az,), start))
        azimuths.append(torch.linspace(start, end, n_az)[1:])
    az = torch.cat(azimuths)
    times = torch.linspace(0.0, 1.0, f)[: f - 2].repeat(2)
    n = min(len(az), len(times))
    az, times = az[:n], times[:n]
    return cameras_from_spherical(az, elevation_deg, distance, fovy_deg), times


def turntable(n_views: int = 120, elevation_deg: float = 15.0, distance: float = 3.0, fovy_deg: float = 40.0,
              time: float = 0.0) -> tuple[Cameras, Tensor]:
    """A static-scene turntable at one time, without the release's duplicated 0/360 deg frame."""
    az = 360.0 * torch.arange(n_views, dtype=torch.float32) / n_views
    return cameras_from_spherical(az, elevation_deg, distance, fovy_deg), torch.full((n_views,), float(time))

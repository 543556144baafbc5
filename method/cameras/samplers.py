"""Random training cameras with the ranges of the 4D-fy release.

Every sampler takes an explicit `torch.Generator`, so a run that saves and restores the generator
state draws exactly the same cameras after a resume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from method.ranges import RangeError, below, fraction, ordered, positive, within

from .convention import Cameras, cameras_from_spherical


ELEVATION_SAMPLERS = ("sphere_band", "release")


@dataclass(frozen=True)
class CameraRanges:
    """Ranges of the random training cameras (defaults: the release's configs)."""

    distance: tuple[float, float] = (2.5, 3.0)
    """Camera distance from the origin."""
    fovy_deg: tuple[float, float] = (15.0, 60.0)
    """Vertical field of view in degrees."""
    elevation_deg: tuple[float, float] = (0.0, 30.0)
    """Elevation above the xy-plane in degrees."""
    azimuth_deg: tuple[float, float] = (-180.0, 180.0)
    """Azimuth in degrees (0 on +x)."""
    sphere_uniform_prob: float = 0.5
    """Probability that an elevation is drawn from the sphere branch instead of uniformly in degrees."""
    elevation_sampler: str = "sphere_band"
    """'sphere_band': branch per camera, sphere branch uniform on the band (sin el ~ U[sin lo, sin hi]);
    'release': the release's sampler, branch once per batch, sphere branch el = asin(2u - 1) with
    u ~ U[(lo + 90) / 180, (hi + 90) / 180] (for 0-30 deg it tops out at asin(1/3) = 19.47 deg)."""

    def __post_init__(self) -> None:
        positive("distance", self.distance)
        positive("fovy_deg", self.fovy_deg)
        below("fovy_deg", self.fovy_deg, 180, " (degrees)")
        for name in ("distance", "fovy_deg", "elevation_deg", "azimuth_deg"):
            ordered(name, getattr(self, name))
        within("elevation_deg", self.elevation_deg, -90, 90, " (degrees)")
        if self.elevation_sampler not in ELEVATION_SAMPLERS:
            raise RangeError("elevation_sampler", f"must be one of ({', '.join(ELEVATION_SAMPLERS)})",
                             self.elevation_sampler)
        fraction("sphere_uniform_prob", self.sphere_uniform_prob)


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def sample_elevation_deg(n: int, ranges: CameraRanges, generator: torch.Generator | None = None) -> Tensor:
    """n elevations in degrees from `ranges.elevation_sampler` (see `CameraRanges`)."""
    lo, hi = ranges.elevation_deg
    if ranges.elevation_sampler == "release":
        # threestudio's random camera data module: one branch decision for the whole batch, and the
        # "sphere" branch maps the degree range linearly to u before asin(2u - 1), so it is the sphere
        # band only when the range is [-90, 90] (for [0, 30] it covers [0, 19.47] deg).
        use_sphere = torch.rand(1, generator=generator).item() < ranges.sphere_uniform_prob
        if not use_sphere:
            return _uniform(n, lo, hi, generator)
        u = _uniform(n, (lo + 90.0) / 180.0, (hi + 90.0) / 180.0, generator)
        return torch.rad2deg(torch.asin((2.0 * u - 1.0).clamp(-1.0, 1.0)))
    in_degrees = _uniform(n, lo, hi, generator)
    # inverse-CDF sampling of a uniform point on the band: sin(el) is uniform
    s = _uniform(n, math.sin(math.radians(lo)), math.sin(math.radians(hi)), generator)
    on_sphere = torch.rad2deg(torch.asin(s))
    use_sphere = torch.rand(n, generator=generator) < ranges.sphere_uniform_prob
    return torch.where(use_sphere, on_sphere, in_degrees)


def _wrap_deg(a: Tensor) -> Tensor:
    return torch.remainder(a + 180.0, 360.0) - 180.0


def sample_single_views(n: int, ranges: CameraRanges = CameraRanges(),
                        generator: torch.Generator | None = None) -> Cameras:
    """n independent cameras (the VSD / single-view batch)."""
    az = _uniform(n, *ranges.azimuth_deg, generator)
    el = sample_elevation_deg(n, ranges, generator)
    dist = _uniform(n, *ranges.distance, generator)
    fov = _uniform(n, *ranges.fovy_deg, generator)
    return cameras_from_spherical(az, el, dist, fov)


def sample_multiview_groups(n_groups: int, n_views: int = 4, ranges: CameraRanges = CameraRanges(),
                            generator: torch.Generator | None = None) -> Cameras:
    """n_groups groups of n_views cameras (MVDream's batch), laid out group after group.

    The views of a group share distance, field of view and elevation; their azimuths are
    360/n_views degrees apart (90 deg for 4 views), starting at a uniform random azimuth.
    """
    start = _uniform(n_groups, *ranges.azimuth_deg, generator)
    step = 360.0 / n_views
    az = _wrap_deg(start[:, None] + step * torch.arange(n_views, dtype=torch.float32)[None]).reshape(-1)
    el = sample_elevation_deg(n_groups, ranges, generator).repeat_interleave(n_views)
    dist = _uniform(n_groups, *ranges.distance, generator).repeat_interleave(n_views)
    fov = _uniform(n_groups, *ranges.fovy_deg, generator).repeat_interleave(n_views)
    return cameras_from_spherical(az, el, dist, fov)


def sample_frame_times(n_frames: int = 16, generator: torch.Generator | None = None) -> Tensor:
    """Evenly spaced frame times t0 + k/n_frames, k = 0..n_frames-1, with t0 ~ U(0, 1/n_frames).

    The random offset makes the training times cover the whole interval [0, 1).
    """
    t0 = torch.rand(1, generator=generator) / n_frames
    return t0 + torch.arange(n_frames, dtype=torch.float32) / n_frames


def sample_video(n_frames: int = 16, ranges: CameraRanges = CameraRanges(),
                 generator: torch.Generator | None = None) -> tuple[Cameras, Tensor]:
    """One static camera for all frames of a clip, and the clip's frame times (n_frames,)."""
    cam = sample_single_views(1, ranges, generator)
    return cam.repeat(n_frames), sample_frame_times(n_frames, generator)

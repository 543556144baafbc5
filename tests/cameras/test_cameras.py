"""Cameras: the convention, the random samplers' ranges and groups, and the evaluation paths."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import kstest

from method.cameras import (CameraRanges, OrbitConfig, cameras_from_spherical, motion_smooth, orbit,
                            sample_frame_times, sample_multiview_groups, sample_single_views, sample_video,
                            turntable)


def forward_axis(c2w):
    return -c2w[:, :3, 2]


def assert_look_at_origin(cams, atol=1e-5):
    to_origin = torch.nn.functional.normalize(-cams.position, dim=-1)
    torch.testing.assert_close(forward_axis(cams.c2w), to_origin, atol=atol, rtol=0)
    rot = cams.c2w[:, :3, :3]
    torch.testing.assert_close(rot.transpose(1, 2) @ rot, torch.eye(3).expand_as(rot), atol=1e-5, rtol=0)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(len(cams)), atol=1e-5)  # right-handed


def test_convention_azimuth_zero_on_plus_x_and_z_up():
    cam = cameras_from_spherical(0.0, 0.0, 2.0, 40.0)
    torch.testing.assert_close(cam.position[0], torch.tensor([2.0, 0.0, 0.0]))
    torch.testing.assert_close(cam.c2w[0, :3, 1], torch.tensor([0.0, 0.0, 1.0]))  # image up = world z
    cam90 = cameras_from_spherical(90.0, 0.0, 2.0, 40.0)
    torch.testing.assert_close(cam90.position[0], torch.tensor([0.0, 2.0, 0.0]), atol=1e-6, rtol=0)
    top = cameras_from_spherical(0.0, 30.0, 2.0, 40.0)
    assert top.position[0, 2] == pytest.approx(2.0 * math.sin(math.radians(30)), abs=1e-6)


def test_multiview_groups_are_90_degrees_apart_and_share_intrinsics():
    g = torch.Generator().manual_seed(0)
    cams = sample_multiview_groups(64, 4, CameraRanges(), g)
    assert len(cams) == 256
    assert_look_at_origin(cams)
    pos = cams.position.view(64, 4, 3)
    for name in ("distance", "fovy", "elevation_deg"):
        v = getattr(cams, name).view(64, 4)
        assert torch.allclose(v, v[:, :1].expand_as(v))
    # angle between consecutive views' horizontal directions is 90 deg, counter-clockwise about z
    xy = torch.nn.functional.normalize(pos[..., :2], dim=-1)
    for k in range(4):
        a, b = xy[:, k], xy[:, (k + 1) % 4]
        cos = (a * b).sum(-1)
        cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
        assert torch.allclose(cos, torch.zeros(64), atol=1e-5)
        assert torch.all(cross > 0.999)


def test_sampled_ranges_hold():
    r = CameraRanges()
    g = torch.Generator().manual_seed(1)
    cams = sample_single_views(5000, r, g)
    assert_look_at_origin(cams)
    dist = cams.position.norm(dim=-1)
    assert dist.min() >= r.distance[0] - 1e-5 and dist.max() <= r.distance[1] + 1e-5
    fov = torch.rad2deg(cams.fovy)
    assert fov.min() >= r.fovy_deg[0] - 1e-4 and fov.max() <= r.fovy_deg[1] + 1e-4
    el = torch.rad2deg(torch.asin(cams.position[:, 2] / dist))
    assert el.min() >= r.elevation_deg[0] - 1e-3 and el.max() <= r.elevation_deg[1] + 1e-3
    az = torch.rad2deg(torch.atan2(cams.position[:, 1], cams.position[:, 0]))
    assert az.min() < -170 and az.max() > 170  # the full azimuth range is used


# Analytic CDFs of the two elevation samplers for the range [lo, hi] (degrees), written from their
# definitions, independent of the sampler code.
def cdf_sphere_band(e, lo=0.0, hi=30.0, p=0.5):
    """Per camera: with p sin(el) ~ U[sin lo, sin hi], else el ~ U[lo, hi]."""
    e = np.clip(e, lo, hi)
    s = (np.sin(np.radians(e)) - np.sin(np.radians(lo))) / (np.sin(np.radians(hi)) - np.sin(np.radians(lo)))
    return p * s + (1 - p) * (e - lo) / (hi - lo)


def cdf_release(e, lo=0.0, hi=30.0, p=0.5):
    """The release: with p el = asin(2u - 1), u ~ U[(lo+90)/180, (hi+90)/180], else el ~ U[lo, hi]."""
    a, b = (lo + 90) / 180, (hi + 90) / 180
    u = (np.sin(np.radians(e)) + 1) / 2  # el <= e  <=>  u <= (sin e + 1) / 2
    sphere = np.clip((u - a) / (b - a), 0.0, 1.0)
    return p * sphere + (1 - p) * np.clip((e - lo) / (hi - lo), 0.0, 1.0)


def elevations_of(cams):
    return torch.rad2deg(torch.asin(cams.position[:, 2] / cams.position.norm(dim=-1))).double().numpy()


@pytest.mark.parametrize("sampler, own_cdf, other_cdf", [("sphere_band", cdf_sphere_band, cdf_release),
                                                         ("release", cdf_release, cdf_sphere_band)])
def test_elevation_samplers_follow_their_distribution_and_not_the_other(sampler, own_cdf, other_cdf):
    r = CameraRanges(elevation_sampler=sampler)
    g = torch.Generator().manual_seed(3)
    # batches of one camera: the release picks its branch once per batch, so only single-camera
    # batches give independent draws of the marginal distribution
    el = np.concatenate([elevations_of(sample_single_views(1, r, g)) for _ in range(3000)])
    assert kstest(el, own_cdf).pvalue > 1e-3
    assert kstest(el, other_cdf).pvalue < 1e-6


def test_release_sampler_picks_its_branch_once_per_batch():
    r = CameraRanges(elevation_sampler="release")
    g = torch.Generator().manual_seed(4)
    cap = math.degrees(math.asin(1 / 3))  # the release's sphere branch never exceeds this for [0, 30]
    above = np.array([(elevations_of(sample_single_views(200, r, g)) > cap + 1e-4).mean() for _ in range(200)])
    # a whole batch is either the sphere branch (none above the cap) or uniform in degrees (about 1/3
    # above); a per-camera branch would put every batch near 1/6
    sphere = above == 0
    assert 0.35 < sphere.mean() < 0.65
    assert np.all(np.abs(above[~sphere] - (30 - cap) / 30) < 0.12)
    # multi-view groups share one elevation: the batch is the groups
    cams = sample_multiview_groups(50, 4, r, g)
    el = elevations_of(cams).reshape(50, 4)
    assert np.allclose(el, el[:, :1], atol=1e-3)


def test_unknown_elevation_sampler_is_rejected():
    with pytest.raises(ValueError, match="sphere_band, release"):
        CameraRanges(elevation_sampler="uniform")


def test_video_has_one_camera_and_16_evenly_spaced_times():
    g = torch.Generator().manual_seed(2)
    cams, times = sample_video(16, CameraRanges(), g)
    assert len(cams) == 16 and torch.all(cams.c2w == cams.c2w[:1])
    assert 0 <= times[0] < 1 / 16
    torch.testing.assert_close(times.diff(), torch.full((15,), 1 / 16))
    t = torch.stack([sample_frame_times(16, g)[0] for _ in range(500)])
    assert t.min() >= 0 and t.max() < 1 / 16 and t.std() > 0.01


def test_orbit_covers_360_degrees_at_fixed_elevation():
    cfg = OrbitConfig()
    cams, times = orbit(cfg)
    assert len(cams) == cfg.n_frames == 64
    assert_look_at_origin(cams)
    pos = cams.position
    el = torch.rad2deg(torch.asin(pos[:, 2] / pos.norm(dim=-1)))
    torch.testing.assert_close(el, torch.full((64,), 15.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(pos.norm(dim=-1), torch.full((64,), 3.0))
    az = torch.rad2deg(torch.atan2(pos[:, 1], pos[:, 0]))
    steps = torch.remainder(az.diff(), 360.0)
    torch.testing.assert_close(steps, torch.full((63,), 360.0 / 64), atol=1e-3, rtol=0)
    assert steps.sum() + 360.0 / 64 == pytest.approx(360.0, abs=1e-2)  # one full turn, no duplicate frame
    # times stay inside the trained interval [0, 1): k/64, so every 4th frame is a training frame time
    torch.testing.assert_close(times.double(), torch.arange(64, dtype=torch.float64) / 64)
    assert times.max() < 1.0 and set(times[::4].tolist()) == {k / 16 for k in range(16)}
    closed = orbit(OrbitConfig(time_spacing="closed"))[1]  # the release's linspace(0, 1, 64)
    torch.testing.assert_close(closed, torch.linspace(0, 1, 64))
    with pytest.raises(ValueError, match="trained, closed"):
        OrbitConfig(time_spacing="open")


def test_motion_smooth_matches_release_frame_count_and_holds():
    cams, times = motion_smooth(64)
    assert len(cams) == len(times) == 124
    assert_look_at_origin(cams)
    assert times.max() < 1.0 and times.min() == 0.0
    az = torch.remainder(cams.azimuth_deg, 360.0)
    assert az[0] == 0.0 and torch.all(az[:16] == 0.0)  # holds at 360 (= 0) deg first


def test_turntable_has_no_duplicate_frame():
    cams, times = turntable(120)
    assert not torch.allclose(cams.c2w[0], cams.c2w[-1])
    assert torch.all(times == 0)

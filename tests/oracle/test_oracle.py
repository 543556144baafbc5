"""The oracle: its exact target render, its prior's gradient, its config, and the full check (CPU)."""

import json
import math

import numpy as np
import pytest
import torch

from method.cameras import cameras_from_spherical
from method.guidance.base import PriorConfig
from method.oracle import OracleConfig, OracleGuidance, OracleScene
from method.oracle.check import LIMITS, THRESHOLDS, run_oracle
from method.oracle.prior import oracle_scene
from method.render import RenderConfig, render_images


def brute_force_pixel(scene, origin, direction, t, n=200_001, far=6.0):
    """Eq. 1 on a fine uniform grid in float64: C = int T sigma c ds + T(far) bg, written from the definition."""
    s = np.linspace(0.0, far, n)
    x = origin[None] + s[:, None] * direction[None]
    sig, sig_c = np.zeros(n), np.zeros((n, 3))
    for b in scene.blobs:
        c = np.array(b.center) + t * np.array(b.motion)
        d = b.peak * np.exp(-((x - c) ** 2).sum(-1) / (2 * b.radius ** 2))
        sig += d
        sig_c += d[:, None] * np.array(b.color)[None]
    ds = s[1] - s[0]
    tau = np.concatenate([[0.0], np.cumsum((sig[1:] + sig[:-1]) / 2 * ds)])  # trapezoid optical depth
    integrand = np.exp(-tau)[:, None] * sig_c
    color = ((integrand[1:] + integrand[:-1]) / 2 * ds).sum(0)
    return color + np.exp(-tau[-1]) * np.array(scene.background)


def pixel_ray(cam, row, col, h, w):
    c2w = cam.c2w[0].double().numpy()
    f = 0.5 * h / math.tan(0.5 * float(cam.fovy[0]))
    d = c2w[:3, :3] @ np.array([(col + 0.5 - w / 2) / f, -(row + 0.5 - h / 2) / f, -1.0])
    return c2w[:3, 3], d / np.linalg.norm(d)


@pytest.mark.parametrize("scene_name", ["base", "recolored"])
def test_exact_render_matches_a_brute_force_line_integral(scene_name):
    scene = oracle_scene(scene_name)
    cams = cameras_from_spherical(torch.tensor([30.0, 200.0]), torch.tensor([10.0, 25.0]), 2.7, 40.0)
    times = torch.tensor([0.2, 0.9])
    h = w = 12
    img = scene.render_exact(cams, times, h, w).double()
    for i in range(2):
        for row, col in ((6, 6), (4, 7), (7, 5), (0, 0), (2, 6)):  # through the blobs, and the corner (background)
            o, d = pixel_ray(cams[i], row, col, h, w)
            ref = brute_force_pixel(scene, o, d, float(times[i]))
            np.testing.assert_allclose(img[i, row, col].numpy(), ref, atol=2e-5)


def test_our_renderer_converges_to_the_exact_render():
    """An independent check of the renderer: with many samples it reaches the closed form."""
    scene = OracleScene()
    cams = cameras_from_spherical(torch.tensor([10.0, 130.0]), torch.tensor([5.0, 28.0]), 2.7, 40.0)
    times = torch.tensor([0.0, 0.7])
    exact = scene.render_exact(cams, times, 16, 16)
    errs = [(render_images(scene.field, scene.background_fn, cams, times, 16, 16,
                           RenderConfig(num_samples=n, randomized=False))["rgb"] - exact).abs().max().item()
            for n in (64, 1024)]
    assert errs[1] < 2e-4 and errs[1] < errs[0] / 4


def test_scenes_differ_only_in_the_marker_colour():
    a, b = oracle_scene("base"), oracle_scene("recolored")
    diffs = [i for i, (x, y) in enumerate(zip(a.blobs, b.blobs)) if x != y]
    assert len(diffs) == 1 and a.blobs[diffs[0]].center == b.blobs[diffs[0]].center
    assert a.blobs[diffs[0]].color != b.blobs[diffs[0]].color
    with pytest.raises(ValueError, match="base, recolored"):
        oracle_scene("other")


def test_oracle_config_is_a_prior_config_that_builds_its_guidance():
    cfg = PriorConfig.config_class("oracle")(loss_name="vsd", scene="recolored")
    assert isinstance(cfg, OracleConfig) and cfg.kind == "oracle"
    prior = cfg.build("cpu")
    assert isinstance(prior, OracleGuidance) and prior.scene == oracle_scene("recolored")
    # the stage-1 ramp runs only in its stages
    ramp = OracleConfig(t_range=(0.02, 0.5), t_anneal_start=(0.98, 0.98), t_anneal_steps=10)
    assert ramp.timestep_range("stage1").fractions(0) == (0.98, 0.98)
    assert ramp.timestep_range("stage2").fractions(0) == (0.02, 0.5)


def test_oracle_gradient_is_the_weighted_photometric_pull():
    """w(t)(eps_hat - eps) must equal w(t) sqrt(a/(1-a)) (x - x*) in pixel space, x = 2 rgb - 1."""
    prior = OracleGuidance(OracleConfig(loss_name="sds", t_range=(0.02, 0.98)))
    cams = cameras_from_spherical(torch.tensor([10.0, 100.0]), 10.0, 3.0, 40.0)
    times = torch.tensor([0.2, 0.2])
    rgb = torch.rand(2, 6, 6, 3, dtype=torch.float64, requires_grad=True)
    g = torch.Generator().manual_seed(5)
    loss = prior(rgb, cams, "blobs", 0, generator=g, stage="stage2", times=times)["loss_sds"]
    loss.backward()
    g2 = torch.Generator().manual_seed(5)
    t = torch.randint(int(0.02 * 1000), int(0.98 * 1000) + 1, (1,), generator=g2)
    a = prior.alphas_cumprod[t]
    x_star = (OracleScene().render_exact(cams, times, 6, 6) * 2 - 1).double()  # the target is float32
    x = rgb.detach() * 2 - 1
    # d loss / d x = grad / B with B = 2 images, and d x / d rgb = 2: the two factors cancel
    expected = (1 - a) * (a / (1 - a)).sqrt() * (x - x_star)
    torch.testing.assert_close(rgb.grad, expected, rtol=1e-5, atol=1e-7)
    assert prior.draws == [("stage2", 0, int(t))]


@pytest.mark.slow
def test_oracle_passes_every_check(tmp_path):
    metrics = run_oracle(tmp_path, progress=False)
    print(json.dumps(metrics, indent=1))
    assert metrics["passed"] == {k: True for k in {**THRESHOLDS, **LIMITS}}, metrics
    assert metrics["schedule_draws_checked"] == 280 and metrics["eval_size"] == 64
    assert json.loads((tmp_path / "metrics.json").read_text())["passed"] == metrics["passed"]

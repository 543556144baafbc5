"""Acceptance of the whole machinery: exact priors for a known scene must be reproduced (CPU, 64x64 eval)."""

import json

import pytest
import torch

from method.oracle import OracleGuidance, OracleScene
from method.oracle.check import THRESHOLDS, run_oracle
from method.cameras import cameras_from_spherical


def test_oracle_gradient_is_the_weighted_photometric_pull():
    """w(t)(eps_hat - eps) must equal w(t) sqrt(a/(1-a)) (x - x*) in pixel space, x = 2 rgb - 1."""
    prior = OracleGuidance("sds", OracleScene(), target_samples=16)
    cams = cameras_from_spherical(torch.tensor([10.0, 100.0]), 10.0, 3.0, 40.0)
    times = torch.tensor([0.2, 0.2])
    rgb = torch.rand(2, 6, 6, 3, dtype=torch.float64, requires_grad=True)
    g = torch.Generator().manual_seed(5)
    loss = prior(rgb, cams, "blobs", 0, generator=g, times=times)["loss_sds"]
    loss.backward()
    g2 = torch.Generator().manual_seed(5)
    t = torch.randint(int(0.02 * 1000), int(0.98 * 1000) + 1, (1,), generator=g2)
    a = prior.alphas_cumprod[t]
    x_star = (prior.target(cams, times, 6, 6) * 2 - 1).double()  # the prior renders its target in float32
    x = rgb.detach() * 2 - 1
    # d loss / d x = grad / B with B = 2 images, and d x / d rgb = 2: the two factors cancel
    expected = (1 - a) * (a / (1 - a)).sqrt() * (x - x_star)
    torch.testing.assert_close(rgb.grad, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_oracle_reaches_the_psnr_thresholds(tmp_path):
    metrics = run_oracle(tmp_path, progress=False)
    print(json.dumps(metrics, indent=1))
    for key, threshold in THRESHOLDS.items():
        assert metrics[key] >= threshold, (key, metrics)
    assert metrics["eval_size"] == 64
    assert json.loads((tmp_path / "metrics.json").read_text())["passed"] == {k: True for k in THRESHOLDS}

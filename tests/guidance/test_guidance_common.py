"""The model-free pieces: loss form, schedules, weighting, CFG, timestep ranges."""

from __future__ import annotations

import math

import pytest
import torch

from method.guidance.common import (NoiseSchedule, TimestepRange, alphas_cumprod_from_config, cfg_combine,
                                    scaled_linear_alphas_cumprod, sds_loss, weighting)


def test_sds_loss_gradient_is_grad_over_batch_and_value_is_half_squared_norm():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 4, 5, 5, generator=g, requires_grad=True)
    grad = torch.randn(3, 4, 5, 5, generator=g)
    loss = sds_loss(z, grad)
    loss.backward()
    torch.testing.assert_close(z.grad, grad / 3)
    assert math.isclose(loss.item(), 0.5 * grad.pow(2).sum().item() / 3, rel_tol=1e-5)


def test_sds_loss_explicit_batch_size_and_nan_handling():
    z = torch.zeros(1, 2, 3, requires_grad=True)
    grad = torch.tensor([[[1.0, float("nan"), 2.0], [float("inf"), -1.0, 0.5]]])
    loss = sds_loss(z, grad, batch_size=1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    assert z.grad[0, 0, 1] == 0.0 and z.grad[0, 1, 0] == 0.0  # nan and inf entries are dropped
    assert z.grad[0, 0, 0] == 1.0 and z.grad[0, 1, 2] == 0.5 and z.grad[0, 1, 1] == -1.0
    assert math.isclose(loss.item(), 0.5 * (1 + 4 + 1 + 0.25))


def test_scaled_linear_schedule_matches_diffusers_and_closed_form():
    cfg = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}
    ours = scaled_linear_alphas_cumprod()
    from_diffusers = alphas_cumprod_from_config(cfg)
    torch.testing.assert_close(from_diffusers, ours, atol=1e-6, rtol=0)
    # closed form of one entry: abar_0 = 1 - beta_start
    assert math.isclose(ours[0].item(), 1 - 0.00085, rel_tol=1e-9)
    assert 0.004 < ours[-1].item() < 0.005  # SD's well-known abar_999 ~ 0.0047


def test_noise_schedule_conversions_are_consistent():
    g = torch.Generator().manual_seed(1)
    s = NoiseSchedule(scaled_linear_alphas_cumprod(), "v_prediction")
    z = torch.randn(4, 4, 8, 8, generator=g)
    eps = torch.randn(4, 4, 8, 8, generator=g)
    t = torch.tensor([0, 250, 600, 999])
    z_t = s.add_noise(z, eps, t)
    a = scaled_linear_alphas_cumprod()[t].float().view(-1, 1, 1, 1)
    torch.testing.assert_close(z_t, a.sqrt() * z + (1 - a).sqrt() * eps)
    v = s.velocity(z, eps, t)
    torch.testing.assert_close(s.to_epsilon(v, z_t, t), eps, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s.x0_from_epsilon(z_t, eps, t), z, atol=1e-3, rtol=1e-4)


def test_weighting_strategies():
    a = torch.tensor([0.25, 0.81])
    torch.testing.assert_close(weighting(a, "sds"), torch.tensor([0.75, 0.19]))
    torch.testing.assert_close(weighting(a, "uniform"), torch.ones(2))
    torch.testing.assert_close(weighting(a, "fantasia3d"), torch.tensor([0.5 * 0.75, 0.9 * 0.19]))
    torch.testing.assert_close(weighting(a, "recon"), torch.tensor([math.sqrt(3.0), math.sqrt(0.19 / 0.81)]))
    with pytest.raises(ValueError):
        weighting(a, "nope")


def test_cfg_forms_numerically():
    u, c = torch.tensor([1.0, -2.0]), torch.tensor([3.0, 0.0])
    torch.testing.assert_close(cfg_combine(u, c, 100.0, "paper"), torch.tensor([201.0, 198.0]))
    torch.testing.assert_close(cfg_combine(u, c, 100.0, "release"), torch.tensor([203.0, 200.0]))
    with pytest.raises(ValueError):
        cfg_combine(u, c, 1.0, "other")


def test_timestep_range_release_ramp_and_constant():
    ramp = TimestepRange(end=(0.02, 0.5), start=(0.98, 0.98), steps=8000)
    assert ramp.bounds(0) == (980, 980)
    assert ramp.bounds(4000) == (500, 740)
    assert ramp.bounds(8000) == ramp.bounds(20000) == (20, 500)
    assert TimestepRange(end=(0.02, 0.98)).bounds(123) == (20, 980)
    paper = TimestepRange(end=(0.02, 0.5), start=(0.02, 0.98), steps=5000)
    assert paper.bounds(0) == (20, 980) and paper.bounds(2500) == (20, 740)
    g = torch.Generator().manual_seed(0)
    t = ramp.sample(4000, 5000, generator=g)
    assert t.min() >= 500 and t.max() <= 740 and t.dtype == torch.long
    assert t.min() == 500 and t.max() == 740  # inclusive bounds are reached
    assert TimestepRange(end=(0.0, 1.0)).bounds(0) == (0, 999)
    with pytest.raises(ValueError):
        TimestepRange(end=(0.6, 0.5))


def test_timestep_sampling_is_a_pure_function_of_step_and_generator():
    r = TimestepRange(end=(0.02, 0.5), start=(0.98, 0.98), steps=10)
    a = r.sample(3, 8, generator=torch.Generator().manual_seed(5))
    b = r.sample(3, 8, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)

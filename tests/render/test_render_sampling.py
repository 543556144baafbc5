"""Fixed-step samples: release step size, positions against a per-sample Python enumeration, jitter."""

import math

import torch

from method.render import RenderConfig, box_bounds, draw_offsets, lattice_samples, ray_box_intersect, step_size


def enumerate_lattice(o, d, u, step, radius):
    """Midpoints (k + u + 0.5) * step whose point lies in the box, one k at a time."""
    mids = []
    for k in range(int(20 / step)):
        t = (k + u + 0.5) * step
        p = [o[i] + t * d[i] for i in range(3)]
        if all(abs(c) <= radius for c in p):
            mids.append(t)
    return mids


def test_release_step_size():
    assert math.isclose(RenderConfig().step_size, 2 * math.sqrt(3) / 512)
    assert math.isclose(step_size(512, 1.0), 0.0067658, rel_tol=1e-4)
    assert math.isclose(step_size(128, 2.0), 4 * math.sqrt(3) / 128)


def test_samples_match_enumeration_and_span_the_box():
    g = torch.Generator().manual_seed(1)
    n = 12
    o = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1) * 2.7
    d = torch.nn.functional.normalize((torch.rand(n, 3, generator=g, dtype=torch.float64) - 0.5) * 1.6 - o, dim=-1)
    step = step_size(64, 1.0)
    for randomized in (False, True):
        u = draw_offsets(n, randomized, torch.Generator().manual_seed(5), dtype=torch.float64)
        assert (u == 0).all() != randomized
        s = lattice_samples(*ray_box_intersect(o, d, *box_bounds(1.0, o)), step, u)
        for i in range(n):
            expected = enumerate_lattice(o[i].tolist(), d[i].tolist(), float(u[i]), step, 1.0)
            got = s.t_mid[i][s.mask[i]].tolist()
            assert len(got) == len(expected) > 0
            assert max(abs(a - b) for a, b in zip(got, expected)) < 1e-9
        torch.testing.assert_close(s.t_ends - s.t_starts, torch.full_like(s.t_starts, step))


def test_diagonal_ray_gets_num_samples():
    o = torch.tensor([[-2.0, -2.0, -2.0]])
    d = torch.nn.functional.normalize(torch.ones(1, 3), dim=-1)
    s = lattice_samples(*ray_box_intersect(o, d, *box_bounds(1.0, o)), step_size(512, 1.0), torch.zeros(1))
    assert abs(int(s.mask.sum()) - 512) <= 1


def test_missed_rays_have_no_samples():
    o = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 3.0]])
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    s = lattice_samples(*ray_box_intersect(o, d, *box_bounds(1.0, o)), 0.1, torch.zeros(2))
    assert s.mask[0].sum() == 0 and s.mask[1].sum() == 20


def test_jitter_comes_from_the_generator():
    a = draw_offsets(100, True, torch.Generator().manual_seed(3))
    b = draw_offsets(100, True, torch.Generator().manual_seed(3))
    c = draw_offsets(100, True, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a >= 0).all() and (a < 1).all()

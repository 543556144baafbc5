"""Slab ray/box intersection against marching along each ray and testing points for inclusion."""

import torch

from method.render import box_bounds, ray_box_intersect


def brute_force(o, d, radius, t_max=8.0, n=160_001):
    """First and last t in a fine grid whose point lies in the box, float64."""
    t = torch.linspace(0.0, t_max, n, dtype=torch.float64)
    inside = torch.cat([((oc[:, None] + t[None, :, None] * dc[:, None]).abs() <= radius).all(dim=-1)
                        for oc, dc in zip(o.split(20), d.split(20))])
    any_in = inside.any(dim=1)
    first = torch.where(any_in, t[inside.float().argmax(dim=1)], torch.nan)
    last = torch.where(any_in, t[n - 1 - inside.flip(1).float().argmax(dim=1)], torch.nan)
    return any_in, first, last, t_max / (n - 1)


def test_random_rays_match_brute_force():
    g = torch.Generator().manual_seed(0)
    n = 300
    radius = 1.0
    o = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1) * 3.0
    o[:20] = (torch.rand(20, 3, generator=g, dtype=torch.float64) * 2 - 1) * 0.9  # origins inside the box
    target = (torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1) * 1.8  # mixes hits and misses
    d = torch.nn.functional.normalize(target - o, dim=-1)
    t_near, t_far, hit = ray_box_intersect(o, d, *box_bounds(radius, o))
    any_in, first, last, dt = brute_force(o, d, radius)
    assert 50 < int(any_in.sum()) < n - 50  # both cases exercised
    # any point found inside means a hit; a miss means no point inside
    assert hit[any_in].all()
    assert not any_in[~hit].any()
    # a hit with a chord longer than the grid spacing must be seen by the brute force
    assert any_in[hit & (t_far - t_near > 2 * dt)].all()
    m = any_in
    assert (t_near[m] - first[m]).abs().max() <= dt + 1e-9
    assert (t_far[m] - last[m]).abs().max() <= dt + 1e-9
    assert (t_near[:20] == 0).all()  # rays from inside start at their origin
    assert (t_near[~hit] == 0).all() and (t_far[~hit] == 0).all()


def test_axis_aligned_rays_with_zero_components():
    o = torch.tensor([[-3.0, 0.5, 0.2], [0.3, 0.3, 5.0], [-3.0, 1.5, 0.0], [0.0, 0.0, 0.0]])
    d = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    t_near, t_far, hit = ray_box_intersect(o, d, *box_bounds(1.0, o))
    assert hit.tolist() == [True, True, False, True]
    torch.testing.assert_close(t_near, torch.tensor([2.0, 4.0, 0.0, 0.0]))
    torch.testing.assert_close(t_far, torch.tensor([4.0, 6.0, 0.0, 1.0]))


def test_other_box_radius_and_rays_pointing_away():
    o = torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 3.0]])
    d = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]])
    t_near, t_far, hit = ray_box_intersect(o, d, *box_bounds(0.5, o))
    assert hit.tolist() == [True, False]
    torch.testing.assert_close(t_near[0], torch.tensor(2.5))
    torch.testing.assert_close(t_far[0], torch.tensor(3.5))

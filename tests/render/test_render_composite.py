"""Eq. 1 compositing against a float64 Python loop, and the full renderer against the same loop."""

import math

import torch

from method.render import RenderConfig, composite, render_rays


def eq1_loop(t_starts, t_ends, sigmas, colors):
    """C = sum_i w_i c_i, w_i = alpha_i prod_{j<i} (1 - alpha_j), alpha = 1 - exp(-sigma delta)."""
    rgb, opacity, depth, trans = [0.0, 0.0, 0.0], 0.0, 0.0, 1.0
    for a, b, s, c in zip(t_starts, t_ends, sigmas, colors):
        alpha = 1.0 - math.exp(-s * (b - a))
        w = trans * alpha
        rgb = [rgb[k] + w * c[k] for k in range(3)]
        opacity += w
        depth += w * 0.5 * (a + b)
        trans *= 1.0 - alpha
    return rgb, opacity, depth


def test_dense_composite_equals_loop():
    g = torch.Generator().manual_seed(0)
    n_rays, n_samples = 6, 40
    deltas = torch.rand(n_rays, n_samples, generator=g, dtype=torch.float64) * 0.1 + 0.01  # uneven intervals
    t_ends = 1.0 + deltas.cumsum(dim=1)
    t_starts = t_ends - deltas
    sigmas = torch.rand(n_rays, n_samples, generator=g, dtype=torch.float64) * 20
    sigmas[0] = 0.0  # an empty ray
    sigmas[1, 10:] = 0.0  # a ray with trailing padding
    colors = torch.rand(n_rays, n_samples, 3, generator=g, dtype=torch.float64)
    out = composite(t_starts.float(), t_ends.float(), sigmas.float(), colors.float())
    for i in range(n_rays):
        rgb, opacity, depth = eq1_loop(t_starts[i].tolist(), t_ends[i].tolist(), sigmas[i].tolist(),
                                       colors[i].tolist())
        assert max(abs(a - b) for a, b in zip(out.rgb[i].tolist(), rgb)) < 1e-5
        assert abs(out.opacity[i, 0].item() - opacity) < 1e-5
        assert abs(out.depth[i, 0].item() - depth) < 1e-5 * (1 + depth)
    assert out.opacity[0, 0] == 0 and out.depth[0, 0] == 0


def smooth_field(x, t):
    """A lumpy analytic field: density and colour vary with x and t."""
    r2 = (x * x).sum(-1)
    density = 6.0 * torch.exp(-4.0 * r2) * (1.0 + 0.5 * torch.sin(3 * x[:, 0] + 2 * t[:, 0]))
    rgb = torch.sigmoid(torch.stack([x[:, 0] + t[:, 0], x[:, 1] * 2, x[:, 2] - t[:, 0]], dim=-1))
    return density, rgb


def smooth_field_scalar(p, t):
    r2 = sum(c * c for c in p)
    density = 6.0 * math.exp(-4.0 * r2) * (1.0 + 0.5 * math.sin(3 * p[0] + 2 * t))
    sig = lambda v: 1.0 / (1.0 + math.exp(-v))
    return density, [sig(p[0] + t), sig(p[1] * 2), sig(p[2] - t)]


def test_renderer_equals_brute_force_eq1():
    """Rays through the whole renderer vs. samples enumerated one by one and composited in a loop."""
    g = torch.Generator().manual_seed(2)
    n = 10
    o = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=torch.float64), dim=-1) * 2.8
    o[-1] = torch.tensor([0.0, 0.0, 3.0], dtype=torch.float64)
    target = (torch.rand(n, 3, generator=g, dtype=torch.float64) - 0.5) * 1.2
    target[-1] = torch.tensor([0.0, 5.0, 0.0], dtype=torch.float64)  # misses the box
    d = torch.nn.functional.normalize(target - o, dim=-1)
    times = torch.rand(n, 1, generator=g, dtype=torch.float64)
    bg = torch.rand(n, 3, generator=g, dtype=torch.float64)
    cfg = RenderConfig(num_samples=128, randomized=True)
    out = render_rays(smooth_field, lambda dirs: bg, o, d, times, cfg, generator=torch.Generator().manual_seed(9))
    u = torch.rand(n, generator=torch.Generator().manual_seed(9)).tolist()  # the renderer's jitter draw
    step = cfg.step_size
    for i in range(n):
        starts, ends, sig, col = [], [], [], []
        for k in range(int(10 / step)):
            a = (k + u[i]) * step
            m = a + 0.5 * step
            p = [o[i, j].item() + m * d[i, j].item() for j in range(3)]
            if all(abs(c) <= 1.0 for c in p):
                s, c = smooth_field_scalar(p, times[i, 0].item())
                starts.append(a), ends.append(a + step), sig.append(s), col.append(c)
        rgb, opacity, depth = eq1_loop(starts, ends, sig, col)
        rgb = [rgb[k] + bg[i, k].item() * (1 - opacity) for k in range(3)]
        assert max(abs(a - b) for a, b in zip(out["rgb"][i].tolist(), rgb)) < 1e-9
        assert abs(out["opacity"][i, 0].item() - opacity) < 1e-9
        assert abs(out["depth"][i, 0].item() - depth) < 1e-9
    assert out["opacity"][-1, 0] == 0 and torch.equal(out["rgb"][-1], bg[-1])
    assert 0.3 < out["opacity"][:-1].max() < 1.0  # the test field is neither empty nor opaque

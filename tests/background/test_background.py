import math

import torch

from method.background import BackgroundConfig, MLPBackground, draw_random_backgrounds, spherical_harmonics


def test_sh_basis_is_orthonormal_on_the_sphere():
    g = torch.Generator().manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(400_000, 3, generator=g, dtype=torch.float64), dim=-1)
    y = spherical_harmonics(d, 3)
    assert y.shape == (400_000, 9)
    gram = 4 * math.pi * (y.T @ y) / len(d)  # Monte-Carlo estimate of the integral of Y_i Y_j
    torch.testing.assert_close(gram, torch.eye(9, dtype=torch.float64), atol=0.02, rtol=0)


def test_sh_band_one_is_linear_in_direction():
    d = torch.nn.functional.normalize(torch.randn(10, 3), dim=-1)
    y = spherical_harmonics(d, 2)
    c1 = math.sqrt(3 / (4 * math.pi))
    torch.testing.assert_close(y[:, 1:], torch.stack([-d[:, 1], d[:, 2], -d[:, 0]], -1) * c1)


def test_background_mlp_shape_range_and_no_bias():
    bg = MLPBackground(BackgroundConfig())
    assert all(m.bias is None for m in bg.mlp if isinstance(m, torch.nn.Linear))
    assert sum(p.numel() for p in bg.parameters()) == 9 * 16 + 16 * 16 + 16 * 3
    out = bg(torch.randn(100, 3))
    assert out.shape == (100, 3) and torch.all((out > 0) & (out < 1))


def test_random_colours_are_drawn_once_per_clip_not_per_frame():
    g = torch.Generator().manual_seed(0)
    use, colors = draw_random_backgrounds(32, 16, prob=0.5, generator=g)
    for clip in range(2):
        sl = slice(16 * clip, 16 * (clip + 1))
        assert torch.all(use[sl] == use[sl][0]) and torch.all(colors[sl] == colors[sl][0])
    assert not torch.equal(colors[0], colors[16])
    use, _ = draw_random_backgrounds(4000, 1, prob=0.5, generator=g)
    assert abs(use.float().mean().item() - 0.5) < 0.05  # per image, independent draws

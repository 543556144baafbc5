"""The PyTorch hash grid against independent references: tcnn's formulas, brute force, gradcheck."""

import math

import numpy as np
import pytest
import torch

from method import backends
from method.encodings import HashGridEncoding

PRIMES = [1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737]


def tcnn_scale(level, base, pls):
    """tcnn's grid_scale: exp2f(level * log2f(per_level_scale)) * base - 1, every step in float32."""
    f32 = np.float32
    log2s = f32(math.log2(float(f32(pls))))
    return float(np.exp2(f32(level) * log2s, dtype=np.float32) * f32(base) - f32(1.0))


def tcnn_table_sizes(d, n_levels, log2_t, base, pls):
    """tcnn's parameter layout, re-derived here from its formula."""
    out = []
    for level in range(n_levels):
        scale = tcnn_scale(level, base, pls)
        res = math.ceil(scale) + 1
        size = min(-(-res ** d // 8) * 8, 2 ** log2_t)
        out.append((res, size))
    return out


def brute_force(x, params, d, n_levels, f, log2_t, base, pls):
    """One point at a time, one corner at a time, in float64 and Python integers."""
    layout = tcnn_table_sizes(d, n_levels, log2_t, base, pls)
    x = x.double().numpy()
    params = params.double().numpy()
    out = np.zeros((len(x), n_levels * f))
    for i, p in enumerate(x):
        offset = 0
        for level, (res, size) in enumerate(layout):
            scale = tcnn_scale(level, base, pls)
            pos = [scale * v + 0.5 for v in p]
            cell = [math.floor(v) for v in pos]
            frac = [v - c for v, c in zip(pos, cell)]
            dense = res <= {3: 0x659, 4: 0xFF}[d] and size >= res ** d
            for corner in range(2 ** d):
                bits = [(corner >> k) & 1 for k in range(d)]
                coord = [c + b for c, b in zip(cell, bits)]
                w = 1.0
                for fr, b in zip(frac, bits):
                    w *= fr if b else 1 - fr
                if dense:
                    idx = sum(c * res ** k for k, c in enumerate(coord))
                else:
                    idx = 0
                    for k, c in enumerate(coord):
                        idx ^= (c * PRIMES[k]) % 2 ** 32
                idx %= size
                for j in range(f):
                    out[i, level * f + j] += w * params[(offset + idx) * f + j]
            offset += size
    return out


@pytest.mark.parametrize("d,expected", [(3, 12_599_920), (4, 15_474_688)])
def test_paper_parameter_counts_follow_tcnn_formula(d, expected):
    enc = HashGridEncoding(d, backend="torch")
    sizes = tcnn_table_sizes(d, 16, 19, 16, 1.4472692)
    assert enc.params.numel() == 2 * sum(s for _, s in sizes) == expected
    assert [l.resolution for l in enc.levels[:5]] == [16, 24, 34, 49, 71]
    assert enc.levels[-1].resolution == 4096
    # paper settings: 3D dense on levels 0-4, 4D dense on levels 0-1
    assert [l.hashed for l in enc.levels].index(True) == {3: 5, 4: 2}[d]


def test_dense_level_reproduces_a_linear_function():
    enc = HashGridEncoding(3, n_levels=2, n_features_per_level=2, log2_hashmap_size=19, base_resolution=16,
                           per_level_scale=1.5, backend="torch").double()
    lv = enc.levels[0]
    assert not lv.hashed
    a = torch.tensor([[0.3, -1.2, 2.0], [1.5, 0.25, -0.7]], dtype=torch.float64)
    b = torch.tensor([0.1, -0.4], dtype=torch.float64)
    r = lv.resolution
    i, j, k = torch.meshgrid(torch.arange(r), torch.arange(r), torch.arange(r), indexing="ij")
    verts = torch.stack([i, j, k], -1).reshape(-1, 3).double()
    flat = (verts[:, 0] + verts[:, 1] * r + verts[:, 2] * r * r).long()  # dense row of vertex (i,j,k)
    table = enc.params.detach().view(-1, 2).clone()
    table[lv.offset + flat] = verts @ a.T + b
    enc.params.data.copy_(table.view(-1))
    x = torch.rand(500, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.9
    pos = x * lv.scale + 0.5
    got = enc(x)[:, :2]
    torch.testing.assert_close(got, pos @ a.T + b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("d", [3, 4])
def test_matches_brute_force_on_dense_and_hashed_levels(d):
    cfg = dict(n_levels=4, n_features_per_level=2, log2_hashmap_size=8, base_resolution=3, per_level_scale=1.9)
    enc = HashGridEncoding(d, **cfg, backend="torch").double()
    assert any(l.hashed for l in enc.levels) and not all(l.hashed for l in enc.levels)
    g = torch.Generator().manual_seed(d)
    enc.params.data.copy_(torch.randn(enc.params.shape, generator=g, dtype=torch.float64))
    x = torch.rand(40, d, generator=g, dtype=torch.float64)
    x[0] = 1.0  # the +0.5 offset makes the far corner wrap around in dense levels
    x[1] = 0.0
    ref = brute_force(x, enc.params.detach(), d, cfg["n_levels"], 2, cfg["log2_hashmap_size"],
                      cfg["base_resolution"], cfg["per_level_scale"])
    np.testing.assert_allclose(enc(x).detach().numpy(), ref, rtol=0, atol=1e-12)


def test_paper_settings_hashed_levels_match_brute_force():
    enc = HashGridEncoding(4, backend="torch")
    g = torch.Generator().manual_seed(1)
    enc.params.data.copy_(torch.randn(enc.params.shape, generator=g))
    x = torch.rand(6, 4, generator=g, dtype=torch.float64)
    ref = brute_force(x, enc.params.detach(), 4, 16, 2, 19, 16, 1.4472692)
    np.testing.assert_allclose(enc.double()(x).detach().numpy(), ref, rtol=0, atol=1e-10)


def test_gradcheck_float64_params_and_inputs():
    enc = HashGridEncoding(3, n_levels=3, n_features_per_level=2, log2_hashmap_size=6, base_resolution=4,
                           per_level_scale=2.0, backend="torch").double()
    g = torch.Generator().manual_seed(0)
    params = torch.randn(enc.params.shape, generator=g, dtype=torch.float64, requires_grad=True)
    # keep points away from cell boundaries so finite differences do not cross a cell
    x = (torch.rand(8, 3, generator=g, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)

    def fn(p, xx):
        enc.params.data = p.detach()
        rows, w = enc.corner_indices(xx)
        feats = p.view(-1, 2)[rows]
        return (feats * w.unsqueeze(-1)).sum(2)

    assert torch.autograd.gradcheck(fn, (params, x), eps=1e-6, atol=1e-6)
    # and the module's own forward (index_select path) gives the same gradient as autograd above
    enc.params = torch.nn.Parameter(params.detach().clone())
    out = enc(x)
    gp = torch.autograd.grad(out.pow(2).sum(), enc.params)[0]
    gp_ref = torch.autograd.grad(fn(params, x).pow(2).sum(), params)[0]
    torch.testing.assert_close(gp, gp_ref)


def test_checkpoint_holds_only_the_flat_tcnn_vector():
    enc = HashGridEncoding(3, n_levels=4, log2_hashmap_size=10, backend="torch")
    assert list(enc.state_dict()) == ["params"]
    other = HashGridEncoding(3, n_levels=4, log2_hashmap_size=10, backend="torch")
    other.load_state_dict(enc.state_dict())
    x = torch.rand(10, 3)
    torch.testing.assert_close(other(x), enc(x))


def test_wrong_input_width_is_a_clear_error():
    enc = HashGridEncoding(3, n_levels=2, log2_hashmap_size=8, backend="torch")
    with pytest.raises(ValueError, match="3 dims"):
        enc(torch.rand(4, 4))


@pytest.mark.skipif(not backends.tcnn_active(), reason="tinycudann with CUDA not available: parity not tested")
def test_tcnn_parity():
    torch.manual_seed(0)
    enc = HashGridEncoding(4, backend="torch").cuda()
    tc = HashGridEncoding(4, backend="tcnn").cuda()
    tc.load_state_dict(enc.state_dict())
    x = torch.rand(4096, 4, device="cuda")
    torch.testing.assert_close(tc(x), enc(x), rtol=1e-4, atol=1e-5)

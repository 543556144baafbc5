"""The PyTorch hash grid against independent references: tcnn's formulas, brute force, gradcheck."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from method import backends
from method.encodings import HashGridEncoding
from method.encodings.hashgrid import fused_positions

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


def brute_force(x, params, d, n_levels, f, log2_t, base, pls, round_pos=False):
    """One point at a time, one corner at a time, in float64 and Python integers (positions rounded
    to float32 once when round_pos, as tcnn's fmaf does for float32 inputs)."""
    layout = tcnn_table_sizes(d, n_levels, log2_t, base, pls)
    x = x.double().numpy()
    params = params.double().numpy()
    out = np.zeros((len(x), n_levels * f))
    for i, p in enumerate(x):
        offset = 0
        for level, (res, size) in enumerate(layout):
            scale = tcnn_scale(level, base, pls)
            pos = [scale * v + 0.5 for v in p]
            if round_pos:
                pos = [float(np.float32(v)) for v in pos]
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


def _rounding_sensitive_points(levels, d, n):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from triton_cases import rounding_sensitive_points

    return rounding_sensitive_points(levels, d, n)


def test_positions_are_rounded_once_like_fmaf():
    """pos = x * scale + 0.5 must equal the float64 result rounded to float32 once (tcnn's fmaf), on
    points where rounding the product first and the sum second gives another float32."""
    enc = HashGridEncoding(3, backend="torch")
    x = _rounding_sensitive_points(enc.levels, 3, 32)
    scales = np.array([l.scale for l in enc.levels], dtype=np.float32)
    x64 = x.numpy().astype(np.float64)
    ref = (x64[:, None, :] * scales.astype(np.float64)[None, :, None] + 0.5).astype(np.float32)  # (N, L, D)
    twice = (x.numpy()[:, None, :] * scales[None, :, None]).astype(np.float32) + np.float32(0.5)
    assert (twice != ref).any()  # the points do tell the two roundings apart
    np.testing.assert_array_equal(fused_positions(x, enc._scale).numpy(), ref)
    # The fast path's per-level weights use the same positions: corner 0's weight is prod_d (1 - frac_d).
    xt = x.T.contiguous()
    for level, plan in enumerate(enc._plans):
        _, weight = plan.corners(xt, torch.float32)  # (2^D, N)
        frac = ref[:, level, :] - np.floor(ref[:, level, :])
        w0 = (np.float32(1) - frac[:, 0]) * (np.float32(1) - frac[:, 1]) * (np.float32(1) - frac[:, 2])
        np.testing.assert_array_equal(weight[0].numpy(), w0)


def test_float32_output_matches_brute_force_at_rounding_sensitive_points():
    enc = HashGridEncoding(3, n_levels=16, log2_hashmap_size=12, backend="torch")
    g = torch.Generator().manual_seed(3)
    enc.params.data.copy_(torch.randn(enc.params.shape, generator=g))
    x = _rounding_sensitive_points(enc.levels, 3, 20)
    ref = brute_force(x, enc.params.detach(), 3, 16, 2, 12, 16, 1.4472692, round_pos=True)
    np.testing.assert_allclose(enc(x).detach().numpy(), ref, rtol=0, atol=3e-6)


@pytest.mark.parametrize("d,f", [(3, 2), (4, 2), (3, 1), (4, 4)])
def test_fast_path_equals_composite_autograd_path(d, f):
    """The CPU fast path (int32 indices, level loop, scatter-add backward) against the composite
    autograd formulation (int64, all levels at once): same output (bits, for F=2), same gradients."""
    enc = HashGridEncoding(d, n_levels=6, n_features_per_level=f, log2_hashmap_size=10, base_resolution=4,
                           per_level_scale=1.8, backend="torch", chunk_size=700)
    assert any(l.hashed for l in enc.levels) and not all(l.hashed for l in enc.levels)
    g = torch.Generator().manual_seed(d * 10 + f)
    enc.params.data.copy_(torch.randn(enc.params.shape, generator=g))
    x = torch.rand(1500, d, generator=g)
    x[:300] = torch.randint(0, 9, (300, d), generator=g) / 8.0  # cell borders
    x[300:600] = x[:1].expand(300, d)  # duplicates: many scatter-adds into the same entries
    upstream = torch.randn(len(x), enc.n_output_dims, generator=g)
    fast = enc(x)
    assert fast.grad_fn is not None and "TorchHashGrid" in type(fast.grad_fn).__name__
    (g_fast,) = torch.autograd.grad((fast * upstream).sum(), enc.params)
    composite = torch.cat([enc._forward_autograd(c) for c in x.split(700)])
    (g_comp,) = torch.autograd.grad((composite * upstream).sum(), enc.params)
    if f == 2:  # the paper's F: the fast path sums corners in ATen's order for this shape
        assert torch.equal(fast, composite)
    else:  # ATen reduces other widths in other orders: equal up to float32 summation rounding
        torch.testing.assert_close(fast, composite, rtol=1e-6, atol=1e-6)
    # float64 reference for the gradient (summation order of duplicates differs between the two)
    enc64 = HashGridEncoding(d, n_levels=6, n_features_per_level=f, log2_hashmap_size=10, base_resolution=4,
                             per_level_scale=1.8, backend="torch").double()
    enc64.params.data.copy_(enc.params.detach().double())
    ref = enc64._forward_autograd(x.double())  # float64 positions, no rounding at all
    (g_ref,) = torch.autograd.grad((ref * upstream.double()).sum(), enc64.params)
    torch.testing.assert_close(g_fast.double(), g_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_comp, g_fast, rtol=1e-5, atol=1e-5)

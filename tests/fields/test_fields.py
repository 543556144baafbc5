import math

import pytest
import torch

from method.fields import (FieldConfig, HashGridConfig, HexPlaneConfig, HexPlaneEncoding, SceneField, blob_density,
                           hexplane_matching, hexplane_param_count)

SMALL = HashGridConfig(n_levels=4, log2_hashmap_size=10, base_resolution=4, per_level_scale=2.0)


def small_field(rep="hashgrid"):
    form = "split" if rep == "hexplane_split" else "hexplane"
    return SceneField(FieldConfig(representation=rep.removesuffix("_split"), static_grid=SMALL, dynamic_grid=SMALL,
                                  hexplane=HexPlaneConfig((8, 16), (4, 8), 4, form=form), grid_backend="torch"))


def test_static_and_dynamic_outputs_are_summed_with_time_as_argument():
    f = small_field()
    x = torch.rand(50, 3) * 2 - 1
    xn = f.normalize(x)
    t = torch.full((50, 1), 0.3)
    expected = f.encoder.static(xn) + f.encoder.dynamic(torch.cat([xn, t], -1))
    torch.testing.assert_close(f.features(x, t), expected)
    with torch.no_grad():
        f.encoder.dynamic.params.normal_()
    d0, _ = f(x, torch.zeros(50, 1), 0.5)
    d1, _ = f(x, torch.ones(50, 1), 0.5)
    assert not torch.allclose(d0, d1)  # time matters once the dynamic grid is non-trivial


def test_density_blob_bias_formula():
    raw = torch.randn(20, dtype=torch.float64)
    x = torch.randn(20, 3, dtype=torch.float64)
    for sigma in (0.5, 5.0):
        expect = torch.log1p(torch.exp(raw + 10 * (1 - x.norm(dim=-1) / sigma)))
        torch.testing.assert_close(blob_density(raw, x, sigma, 10.0), expect)


def test_heads_are_bias_free_and_paper_sizes():
    f = SceneField(FieldConfig(grid_backend="torch"))
    sizes = f.group_sizes()
    assert sizes["static"] == 12_599_920 and sizes["dynamic"] == 15_474_688
    assert sizes["mlp"] == 2 * 32 * 64 + 64 * 1 + 64 * 3
    assert all(m.bias is None for m in f.modules() if isinstance(m, torch.nn.Linear))


def test_hexplane_capacity_can_match_the_hash_grids():
    target = 12_599_920 + 15_474_688
    cfg = hexplane_matching(target)
    assert cfg.form == "hexplane"
    assert abs(hexplane_param_count(cfg) - target) / target < 0.05
    assert hexplane_param_count(HexPlaneConfig()) == hexplane_param_count(cfg)
    # the count is the planes' true size, and the same for both fusions
    for form in ("hexplane", "split"):
        enc = HexPlaneEncoding(HexPlaneConfig((8, 16), (4, 8), 3, form=form))
        assert sum(p.numel() for p in enc.parameters()) == hexplane_param_count(enc.cfg)


def bilinear64(plane, u, v):
    """Brute-force bilinear lookup (align_corners, border clamp) of plane (F, H, W) at u (along W), v."""
    plane = plane.double()
    _, h, w = plane.shape
    out = []
    for uu, vv in zip(u.tolist(), v.tolist()):
        x, y = min(max(uu, 0.0), 1.0) * (w - 1), min(max(vv, 0.0), 1.0) * (h - 1)
        x0, y0 = min(int(math.floor(x)), w - 2), min(int(math.floor(y)), h - 2)
        fx, fy = x - x0, y - y0
        out.append((1 - fx) * (1 - fy) * plane[:, y0, x0] + fx * (1 - fy) * plane[:, y0, x0 + 1]
                   + (1 - fx) * fy * plane[:, y0 + 1, x0] + fx * fy * plane[:, y0 + 1, x0 + 1])
    return torch.stack(out)


def brute_force_hexplane(enc, xyzt, form):
    """Per scale: HexPlane sums xy*zt + xz*yt + yz*xt; 'split' is xy*xz*yz + xt + yt + zt."""
    x, y, z, t = xyzt.double().unbind(-1)
    feats = []
    for space, time in zip(enc.space, enc.time):
        xy, xz, yz = (bilinear64(space[0], x, y), bilinear64(space[1], x, z), bilinear64(space[2], y, z))
        xt, yt, zt = (bilinear64(time[0], x, t), bilinear64(time[1], y, t), bilinear64(time[2], z, t))
        feats.append(xy * zt + xz * yt + yz * xt if form == "hexplane" else xy * xz * yz + xt + yt + zt)
    return torch.cat(feats, -1)


@pytest.mark.parametrize("form", ["hexplane", "split"])
def test_hexplane_fusions_match_a_brute_force_evaluation(form):
    torch.manual_seed(0)
    enc = HexPlaneEncoding(HexPlaneConfig((5, 9), (3, 4), 2, form=form))
    with torch.no_grad():  # random planes, so that every plane and pairing matters
        for p in enc.parameters():
            p.normal_()
    xyzt = torch.rand(40, 4)
    xyzt[0] = torch.tensor([0.0, 1.0, 0.0, 1.0])  # corners exercise the border handling
    got = enc(xyzt[:, :3], xyzt[:, 3:])
    torch.testing.assert_close(got.double(), brute_force_hexplane(enc, xyzt, form), rtol=1e-5, atol=1e-5)


def test_published_hexplane_starts_static_and_trains_space_planes_only_when_time_is_frozen():
    f = small_field("hexplane")
    assert f.cfg.hexplane.form == "hexplane"
    x = torch.rand(30, 3) * 2 - 1
    # time planes start at 1: before the dynamic stage the field does not depend on t
    torch.testing.assert_close(f.features(x, torch.zeros(30, 1)), f.features(x, torch.full((30, 1), 0.9)))
    enc = f.encoder.planes
    xn = f.normalize(x).double()
    expected = torch.cat([bilinear64(s[0], xn[:, 0], xn[:, 1]) + bilinear64(s[1], xn[:, 0], xn[:, 2])
                          + bilinear64(s[2], xn[:, 1], xn[:, 2]) for s in enc.space], -1)
    torch.testing.assert_close(f.features(x, torch.zeros(30, 1)).double(), expected, rtol=1e-5, atol=1e-6)


def test_hexplane_method_uses_the_published_form_with_matched_capacity():
    from baselines import resolve_config
    from method.encodings import level_layouts

    for profile in ("paper", "tiny"):
        cfg = resolve_config(profile, "hexplane")
        assert cfg.field.representation == "hexplane" and cfg.field.hexplane.form == "hexplane"
        grids = 0
        for g, d in ((cfg.field.static_grid, 3), (cfg.field.dynamic_grid, 4)):
            lv = level_layouts(d, g.n_levels, g.log2_hashmap_size, g.base_resolution, g.per_level_scale)
            grids += (lv[-1].offset + lv[-1].size) * g.n_features_per_level
        assert abs(hexplane_param_count(cfg.field.hexplane) - grids) / grids < 0.05


def test_unknown_hexplane_form_is_rejected():
    with pytest.raises(ValueError, match="hexplane, split"):
        HexPlaneConfig(form="kplanes")


@pytest.mark.parametrize("rep", ["hashgrid", "single_grid", "hexplane", "hexplane_split"])
def test_freezing_a_group_blocks_its_gradient(rep):
    f = small_field(rep)
    f.set_trainable({"static", "mlp", "background"})
    x = torch.rand(64, 3) * 2 - 1
    d, c = f(x, torch.full((64, 1), 0.7), 0.5)
    (d.sum() + c.sum()).backward()
    groups = f.param_groups()
    assert all(p.grad is None for p in groups["dynamic"])
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in groups["static"] + groups["mlp"])
    f.unfreeze("dynamic")
    assert "dynamic" in f.trainable_groups()
    f.freeze("static")
    assert "static" not in f.trainable_groups()
    with pytest.raises(ValueError, match="unknown parameter groups"):
        f.set_trainable({"statik"})


def test_single_grid_has_no_static_group_and_hexplane_splits():
    assert small_field("single_grid").group_sizes()["static"] == 0
    hp = small_field("hexplane").group_sizes()
    assert hp["static"] > 0 and hp["dynamic"] > 0


def test_unknown_representation_lists_known():
    with pytest.raises(ValueError, match="hashgrid"):
        SceneField(FieldConfig(representation="voxels"))

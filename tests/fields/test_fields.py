import pytest
import torch

from method.fields import (FieldConfig, HashGridConfig, HexPlaneConfig, SceneField, blob_density,
                           hexplane_matching, hexplane_param_count)

SMALL = HashGridConfig(n_levels=4, log2_hashmap_size=10, base_resolution=4, per_level_scale=2.0)


def small_field(rep="hashgrid"):
    return SceneField(FieldConfig(representation=rep, static_grid=SMALL, dynamic_grid=SMALL,
                                  hexplane=HexPlaneConfig((8, 16), (4, 8), 4), grid_backend="torch"))


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
    assert abs(hexplane_param_count(cfg) - target) / target < 0.05
    assert hexplane_param_count(HexPlaneConfig()) == hexplane_param_count(cfg)


@pytest.mark.parametrize("rep", ["hashgrid", "single_grid", "hexplane"])
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

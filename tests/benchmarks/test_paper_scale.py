"""benchmarks/paper_scale.py: the reduced-size CPU run of the same code (so it cannot rot), and its
GPU-hour projection against a hand-written sum over the paper profile's stages."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import paper_scale  # noqa: E402


def test_projection_matches_hand_sum_over_paper_stages():
    from baselines import resolve_config

    cfg = resolve_config("paper", "4dfy")
    a, b, c, d, e = 1.0, 2.0, 3.0, 5.0, 7.0
    cost = {("3d", 64, 2): a, ("3d", 64, 1): b, ("3d", 256, 1): c, "img": d, "video": e}
    got = paper_scale.project(cfg, cost)
    # paper: stage 1 (10k, 3D only): 5k steps of 2 groups at 64^2, then 1 group at 256^2;
    # stage 2 (10k, 3D 0.5 / IMG 0.5): 64^2 then 256^2 from 5k; stage 3 (100k): 0.5 / 0.25 / 0.25 at 256^2.
    stage1 = 5000 * a + 5000 * c
    stage2 = 5000 * (0.5 * b + 0.5 * d) + 5000 * (0.5 * c + 0.5 * d)
    stage3 = 100_000 * (0.5 * c + 0.25 * d + 0.25 * e)
    assert got["stages"]["stage1"]["hours"] == pytest.approx(stage1 / 3600)
    assert got["stages"]["stage2"]["hours"] == pytest.approx(stage2 / 3600)
    assert got["stages"]["stage3"]["s_per_it"] == pytest.approx(stage3 / 100_000)
    assert got["gpu_hours"] == pytest.approx((stage1 + stage2 + stage3) / 3600)


@pytest.mark.slow
def test_reduced_size_cpu_run_writes_results(tmp_path):
    out = tmp_path / "ps"
    assert paper_scale.main(["--size", "reduced", "--device", "cpu", "--repeats", "0", "--budget-s", "20",
                             "--scene", "ball", "--ball-radius", "0.5", "--grad-max-samples", "2000",
                             "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["device"].startswith("cpu") and res["size"] == "reduced"
    assert res["options"]["scene"] == "ball" and 0 < res["options"]["occupied_fraction"] < 0.1
    assert res["options"]["grad_max_samples"] == 2000
    assert {u["update"] for u in res["updates"]} == {"3d", "img", "video"}
    assert all(u["s_per_update"] > 0 and u["repeats"] >= 1 for u in res["updates"])
    # the projection is the tiny profile's steps times the measured costs
    from baselines import resolve_config

    cfg = resolve_config("tiny", "4dfy")
    cost = {tuple(u["key"]) if u["update"] == "3d" else u["update"]: u["s_per_update"] for u in res["updates"]}
    expected = paper_scale.project(cfg, cost)["gpu_hours"]
    assert res["projection"]["tiny"]["gpu_hours"] == pytest.approx(expected)
    md = out.with_suffix(".md").read_text()
    assert "cpu" in md and "VID (Zeroscope)" in md


def test_cuda_without_gpu_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.setattr(paper_scale.torch.cuda, "is_available", lambda: False)
    assert paper_scale.main(["--device", "cuda"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_ball_cells_are_the_cells_that_meet_the_ball():
    """Against brute force: a cell meets the ball iff its nearest point to the origin is inside; checked on a
    real nerfacc grid (its buffers are plain tensors on CPU) by sampling each cell densely."""
    import torch
    from nerfacc import OccGridEstimator

    est = OccGridEstimator(roi_aabb=[-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], resolution=6, levels=2)
    radius = 0.7
    got = paper_scale.ball_cells(est.aabbs, est.resolution, radius)
    assert got.shape == est.binaries.shape
    u = torch.linspace(0, 1, 13)
    offsets = torch.stack(torch.meshgrid(u, u, u, indexing="ij"), -1).reshape(-1, 3)
    for lvl in range(2):
        lo, hi = est.aabbs[lvl, :3], est.aabbs[lvl, 3:]
        cell = (hi - lo) / 6
        for i, j, k in torch.cartesian_prod(*[torch.arange(6)] * 3).tolist():
            pts = lo + (torch.tensor([i, j, k]) + offsets) * cell
            nearest = pts.norm(dim=-1).min().item()
            if nearest <= radius:
                assert got[lvl, i, j, k]
            elif nearest > radius + cell.norm().item() / 12:  # clearly outside at this sampling density
                assert not got[lvl, i, j, k]
    assert got[0].float().mean() > got[1].float().mean() > 0  # level 1's box is twice as wide


def test_compact_scene_masks_the_density_and_marks_the_grid():
    import types

    import torch
    from nerfacc import OccGridEstimator

    from method.fields.scene import SceneField

    torch.manual_seed(0)
    field = SceneField()
    est = OccGridEstimator(roi_aabb=[-field.cfg.box_radius] * 3 + [field.cfg.box_radius] * 3, resolution=8,
                           levels=1)
    est.binaries.fill_(True)
    trainer = types.SimpleNamespace(field=field, renderer=types.SimpleNamespace(grid=types.SimpleNamespace(
        estimator=est)))
    x = (torch.rand(4000, 3) * 2 - 1) * field.cfg.box_radius
    t = torch.rand(4000, 1)
    with torch.no_grad():
        before_d, before_rgb = field(x, t, 0.5)
        info = paper_scale.compact_scene(trainer, 0.5)
        after_d, after_rgb = field(x, t, 0.5)
        dens = field.density(x, t, 0.5)
    inside = x.norm(dim=-1) <= info["ball_radius"]
    assert info["ball_radius"] == 0.5 * field.cfg.box_radius
    assert inside.any() and (~inside).any()
    assert torch.equal(after_d[inside], before_d[inside]) and (after_d[~inside] == 0).all()
    assert torch.equal(after_rgb, before_rgb) and torch.equal(dens, after_d)
    assert torch.equal(est.binaries, paper_scale.ball_cells(est.aabbs, est.resolution, info["ball_radius"]))
    assert 0 < info["occupied_fraction"] < 1 and info["occupied_fraction"] == est.binaries.float().mean().item()

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
                             "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["device"].startswith("cpu") and res["size"] == "reduced"
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

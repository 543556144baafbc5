"""benchmarks/paper_scale.py: the reduced-size CPU run of the same code (so it cannot rot), and its
GPU-hour projection against a hand-written sum over the paper profile's stages."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import paper_scale  # noqa: E402


def by_batch(cfg) -> dict:
    """A profile's cost keys by (update, size, groups) / (update, stage): what the hand sums below name."""
    return {k: key for key, update, stage_index, _ in paper_scale.plan(cfg)
            for k in [(update, key[1], key[3] // 4) if update == "3d" else (update,)]}


def test_projection_matches_hand_sum_over_paper_stages():
    from baselines import resolve_config

    cfg = resolve_config("paper", "4dfy")
    keys = by_batch(cfg)
    # five distinct updates: the 256^2 MVDream batch costs the same in stages 1-3, IMG in stages 2 and 3
    assert len(paper_scale.plan(cfg)) == 5
    a, b, c, d, e = 1.0, 2.0, 3.0, 5.0, 7.0
    cost = {keys[("3d", 64, 2)]: a, keys[("3d", 64, 1)]: b, keys[("3d", 256, 1)]: c, keys[("img",)]: d,
            keys[("video",)]: e}
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


def test_lowvram_updates_are_measured_with_their_own_budgets_and_groups():
    """release-lowvram: every update's cost key carries the stage's gradient budget per render call and what
    it trains, so its stage-3 MVDream update (1e5 / 4 samples, dynamic grid only) is measured apart from
    stage 2's (2e6 / 4, static grid), and the projection uses each stage's own."""
    from baselines import resolve_config

    static = ("background", "mlp", "static")
    low = resolve_config("release-lowvram", "4dfy")
    got = [key for key, *_ in paper_scale.plan(low)]
    assert got == [("3d", 64, 64, 8, 250_000, static, None), ("3d", 256, 256, 4, 500_000, static, None),
                   ("3d", 64, 64, 4, 500_000, static, None), ("img", 256, 256, 1, 2_000_000, static, None),
                   ("3d", 256, 256, 4, 25_000, ("dynamic",), None),
                   ("video", 160, 288, 16, 1_600_000, ("dynamic",), 4)]
    cost = {k: float(i + 1) for i, k in enumerate(got)}
    proj = paper_scale.project(low, cost)
    # stage 3: MVDream 0.75 and video 0.25, no VSD
    assert proj["stages"]["stage3"]["s_per_it"] == pytest.approx(0.75 * 5.0 + 0.25 * 6.0)
    # stage 2 (25k): one group at 64^2 until 5k, then 256^2; IMG at 0.5 throughout
    assert proj["stages"]["stage2"]["hours"] == pytest.approx((5000 * (0.5 * 3 + 0.5 * 4) +
                                                               20_000 * (0.5 * 2 + 0.5 * 4)) / 3600)
    # the release shares none of these keys: its updates keep every sample's gradient
    assert not set(got) & {key for key, *_ in paper_scale.plan(resolve_config("release", "4dfy"))}


def test_an_update_that_runs_out_of_memory_drops_only_the_profiles_that_draw_it():
    from baselines import resolve_config

    cfgs = {p: resolve_config(p, "4dfy") for p in ("release", "release-lowvram")}
    results = {k: {"s_per_update": 1.0, "peak_mb": 10.0} for c in cfgs.values() for k, *_ in paper_scale.plan(c)}
    oom = next(k for k, *_ in paper_scale.plan(cfgs["release"]) if k[0] == "video")
    results[oom] = {"s_per_update": None, "peak_mb": 1e6}
    low_video = next(k for k, *_ in paper_scale.plan(cfgs["release-lowvram"]) if k[0] == "video")
    results[low_video]["peak_mb"] = 35.0
    got = paper_scale.project_profiles(cfgs, results)
    assert set(got) == {"release-lowvram"}
    assert got["release-lowvram"]["peak_mb"] == 35.0  # its own largest, not the release video's 1e6


def test_as_profile_swaps_and_restores_and_refuses_other_models_untouched():
    import types

    from baselines import resolve_config
    from method.training.config import replace

    release, low = resolve_config("release", "4dfy"), resolve_config("release-lowvram", "4dfy")
    priors = {u: types.SimpleNamespace(cfg=pc) for u, pc in release.guidance.items()}
    trainer = types.SimpleNamespace(cfg=release, _priors=priors)
    with paper_scale.as_profile(trainer, low):
        assert trainer.cfg is low and priors["video"].cfg.grad_frames == 4
    assert trainer.cfg is release and all(priors[u].cfg is release.guidance[u] for u in priors)
    other = replace(low, **{"guidance.video.model": "another/model"})
    with pytest.raises(ValueError, match="video prior"):
        with paper_scale.as_profile(trainer, other):
            pass
    assert trainer.cfg is release and all(priors[u].cfg is release.guidance[u] for u in priors)


@pytest.mark.slow
def test_reduced_size_cpu_run_writes_results(tmp_path):
    out = tmp_path / "ps"
    assert paper_scale.main(["--size", "reduced", "--device", "cpu", "--repeats", "0", "--budget-s", "20",
                             "--scene", "ball", "--ball-radius", "0.5", "--grad-max-samples", "2000",
                             "--recompute-field", "--vae-checkpointing", "--compile-field", "--phases", "--ops", "4",
                             "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["device"].startswith("cpu") and res["size"] == "reduced"
    assert res["options"]["scene"] == "ball" and 0 < res["options"]["occupied_fraction"] < 0.1
    assert res["options"]["grad_max_samples"] == 2000
    assert res["options"]["recompute_field"] is True and res["options"]["vae_checkpointing"] is True
    assert res["options"]["compile_field"] is True
    assert {u["update"] for u in res["updates"]} == {"3d", "img", "video"}
    assert all(u["s_per_update"] > 0 and u["repeats"] >= 1 for u in res["updates"])
    # the low-VRAM variant's stage-3 updates (dynamic grid only) were measured under it, with its budgets
    low3 = {u["update"]: u for u in res["updates"] if (u["profile"], u["stage"]) == ("tiny-lowvram", "stage3")}
    assert set(low3) == {"3d", "video"} and all(u["key"][5] == ["dynamic"] for u in low3.values())
    assert low3["video"]["key"][4] == 100_000 * 16 and low3["3d"]["key"][4] == 100_000 // 4
    # each projection is its profile's steps times the measured costs
    from baselines import resolve_config
    from method.training.config import replace
    from method.training.profiles import low_vram

    cost = {tuple(tuple(x) if isinstance(x, list) else x for x in u["key"]): u["s_per_update"]
            for u in res["updates"]}
    tiny = replace(resolve_config("tiny", "4dfy"), **{"renderer.grad_max_samples": 2000})
    low = low_vram(tiny, "tiny-lowvram")
    # tiny's own step counts: the release's 200k-step stage 3 at tiny's sizes projected a meaningless total
    low = replace(low, stages=(*low.stages[:2], replace(low.stages[2], steps=tiny.stages[2].steps)))
    for name, cfg in (("tiny", tiny), ("tiny-lowvram", low)):
        assert res["projection"][name]["gpu_hours"] == pytest.approx(paper_scale.project(cfg, cost)["gpu_hours"])
        assert [st["steps"] for st in res["projection"][name]["stages"].values()] == [st.steps for st in tiny.stages]
    md = out.with_suffix(".md").read_text()
    assert "cpu" in md and "VID (Zeroscope)" in md
    assert res["planned_updates"] == len(res["updates"]) and "**Partial**" not in md
    # --phases: every update timed by part; the timed parts fit inside the step (a nested call counted once)
    for u in res["updates"]:
        parts = u["phases"]["parts"]
        assert {"render", "VAE encode", "UNet forward", "backward", "optimizer step"} <= set(parts)
        assert 0 < sum(p["s"] for n, p in parts.items() if n != "other") <= u["phases"]["total_s"]
    assert "| update | first drawn in | samples with gradient | render | VAE encode |" in md
    assert all(u["phases"]["samples_with_grad"] > 0 for u in res["updates"])
    # --ops: one more profiled step per update, its top operators by self time, which fit inside the step
    for u in res["updates"]:
        ops = u["ops"]
        assert ops["time_on"] == "cpu" and len(ops["top"]) == 4
        selfs = [r["self_ms"] for r in ops["top"]]
        assert selfs == sorted(selfs, reverse=True) and selfs[0] > 0
        assert 0 < ops["self_total_s"] <= ops["wall_s"] * 1.05
    assert md.count("under torch.profiler (`--ops`)") == len(res["updates"])


@pytest.mark.slow
def test_every_measured_update_starts_from_one_scene_and_phase_timers_leave_nothing_behind(tmp_path):
    """`snapshot` puts field, occupancy grid and camera generator back, so a repeat computes the same step
    (on CPU bit for bit) while without it the next step differs; `phase_timers` removes its wrappers."""
    import torch

    from method.training.trainer import Trainer

    args = paper_scale.parse_args(["--size", "reduced", "--device", "cpu"])
    device = torch.device("cpu")
    cfg = paper_scale.train_config("tiny", device, args)
    priors = paper_scale.build_priors(cfg, paper_scale.build_prior_models("reduced", device, torch.float32),
                                      device)
    trainer = Trainer(cfg, "a panda dancing", tmp_path, priors=priors, progress=False, quiet=True)
    stage = len(cfg.stages) - 1
    trainer._build_optimizer(stage)
    restore = paper_scale.snapshot(trainer)
    with paper_scale.forced_update("video"):
        first = trainer.train_step(stage, 10)
        drifted = trainer.train_step(stage, 10)
        restore()
        again = trainer.train_step(stage, 10)
    assert again == first and drifted != first
    backward, prior = torch.Tensor.backward, trainer.prior("video")
    found = paper_scale.measure_phases(trainer, "video", stage, 10, device, restore)
    assert found["parts"]["render"]["s"] > 0 and found["parts"]["backward"]["s"] > 0
    # the tiny video render's samples, counted once: the dense CPU path evaluates every in-box lattice sample
    h, w = cfg.render.video_size
    assert 0 < found["samples_with_grad"] <= cfg.render.video_frames * h * w * (cfg.renderer.num_samples + 1)
    assert torch.Tensor.backward is backward and "forward" not in vars(trainer.field)
    assert "render" not in vars(trainer) and "encode" not in vars(prior.vae) and "forward" not in vars(prior.unet)
    assert "step" not in vars(trainer.optimizer)
    # a forward the benchmark itself put on the field (the compact scene's mask) is put back, not removed
    paper_scale.compact_scene(trainer, 0.5)
    masked = vars(trainer.field)["forward"]
    found = paper_scale.measure_phases(trainer, "video", stage, 10, device, restore)
    assert vars(trainer.field)["forward"] is masked and found["samples_with_grad"] > 0


def test_memory_flags_reach_every_profiles_config():
    from method.training import profiles

    for flags in (False, True):
        args = paper_scale.parse_args(["--recompute-field", "--vae-checkpointing"] if flags else [])
        for profile in ("paper", "release-lowvram", "tiny-lowvram"):
            cfg = paper_scale.train_config(profile, "cpu", args)
            assert cfg.renderer.recompute_field is flags
            assert all(g.frozen.vae_gradient_checkpointing is flags for g in cfg.guidance.values())
            # with both flags, everything `fourdfy generate --recompute` sets is set already
            assert (profiles.recompute(cfg) == cfg) is flags


@pytest.mark.parametrize("flags", [["--recompute-chunk", "0", "--recompute-field"], ["--recompute-chunk", "1000"]])
def test_a_recompute_chunk_that_would_change_nothing_is_refused(capsys, flags):
    assert paper_scale.main(["--size", "reduced", "--device", "cpu", *flags]) == 2
    assert "--recompute-chunk" in capsys.readouterr().err


def test_ops_summary_counts_each_kernel_once():
    """On CUDA the busy time sums the kernels only: not the operators that launched them (their self device time
    is those kernels' time again) nor the GPU-side spans of record_function (the optimizer step), which cover
    kernels counted already; the operators are ranked by the kernel time they launched themselves. Spans are no
    operators on the CPU either."""
    from types import SimpleNamespace as Event

    from torch.autograd import DeviceType

    cpu, gpu = DeviceType.CPU, DeviceType.CUDA
    events = [Event(key="aten::mm", device_type=cpu, count=3, self_device_time_total=300.0, self_cpu_time_total=40.0,
                    cpu_time_total=50.0, is_user_annotation=False),
              Event(key="aten::add", device_type=cpu, count=1, self_device_time_total=100.0,
                    self_cpu_time_total=60.0, cpu_time_total=60.0, is_user_annotation=False),
              Event(key="Optimizer.step#AdamW.step", device_type=cpu, count=1, self_device_time_total=0.0,
                    self_cpu_time_total=5.0, cpu_time_total=70.0, is_user_annotation=True),
              Event(key="sm90_gemm", device_type=gpu, count=3, self_device_time_total=300.0,
                    self_cpu_time_total=0.0, cpu_time_total=0.0, is_user_annotation=False),
              Event(key="add_kernel", device_type=gpu, count=1, self_device_time_total=100.0,
                    self_cpu_time_total=0.0, cpu_time_total=0.0, is_user_annotation=False),
              Event(key="Optimizer.step#AdamW.step", device_type=gpu, count=1, self_device_time_total=100.0,
                    self_cpu_time_total=0.0, cpu_time_total=0.0, is_user_annotation=True)]
    on_gpu = paper_scale.ops_summary(events, cuda=True, top=2)
    assert on_gpu["self_total_s"] == pytest.approx(400e-6) and on_gpu["time_on"] == "device"
    assert [r["op"] for r in on_gpu["top"]] == ["aten::mm", "aten::add"] and on_gpu["top"][0]["self_ms"] == 0.3
    on_cpu = paper_scale.ops_summary(events, cuda=False, top=3)  # the span's own time is Python, not an operator
    assert on_cpu["self_total_s"] == pytest.approx(100e-6)
    assert [r["op"] for r in on_cpu["top"]] == ["aten::add", "aten::mm"]


@pytest.mark.parametrize("flag", ["--ops", "--repeats"])
def test_a_negative_count_is_refused(capsys, flag):
    assert paper_scale.main(["--size", "reduced", "--device", "cpu", flag, "-1"]) == 2
    assert f"error: {flag}" in capsys.readouterr().err


def test_compile_takes_all_unets_or_the_named_updates():
    for given, wanted in (([], set()), (["--compile"], {"3d", "img", "video"}), (["--compile", "video"], {"video"}),
                          (["--compile", "3d", "img"], {"3d", "img"})):
        args = paper_scale.parse_args(given)
        assert {u for u in ("3d", "img", "video") if paper_scale.compiles(args, u)} == wanted, given
        assert not any(paper_scale.compiles(args, u, "compile_vae") for u in ("3d", "img", "video"))


def test_speed_flags_are_the_priors_own_options():
    """--precision bf16, --channels-last, --compile and --compile-vae set the run config's `frozen` options (what
    `--set 'guidance.*.frozen...'` gives a run), in every profile; `profile` keeps each prior's precision."""
    from pipelines.generate import build_config, parse_sets

    args = paper_scale.parse_args(["--precision", "bf16", "--channels-last", "--compile", "video", "--compile-vae"])
    for profile in ("paper", "release-lowvram"):
        cfg = paper_scale.train_config(profile, "cpu", args)
        frozen = {u: g.frozen for u, g in cfg.guidance.items()}
        assert all(f.half_precision and f.half_dtype == "bfloat16" and f.channels_last and f.compile_vae_encoder
                   for f in frozen.values())
        assert {u for u, f in frozen.items() if f.compile} == {"video"}
    sets = ["guidance.*.frozen.half_precision=true", "guidance.*.frozen.half_dtype=bfloat16",
            "guidance.*.frozen.channels_last=true", "guidance.video.frozen.compile=true",
            "guidance.*.frozen.compile_vae_encoder=true"]
    run = build_config("paper", "4dfy", sets=parse_sets(sets))
    assert {u: g.frozen for u, g in run.guidance.items()} == {
        u: g.frozen for u, g in paper_scale.train_config("paper", "cpu", args).guidance.items()}
    # --compile-regional: what is compiled, block by block (the run's guidance.*.frozen.compile_regional)
    args = paper_scale.parse_args(["--compile", "video", "--compile-regional"])
    regional = paper_scale.train_config("paper", "cpu", args)
    assert all(g.frozen.compile_regional for g in regional.guidance.values())
    assert {u: g.frozen for u, g in regional.guidance.items()} == {u: g.frozen for u, g in build_config(
        "paper", "4dfy", sets=parse_sets(["guidance.video.frozen.compile=true",
                                          "guidance.*.frozen.compile_regional=true"])).guidance.items()}
    assert not any(g.frozen.compile_regional for g in paper_scale.train_config(
        "paper", "cpu", paper_scale.parse_args(["--compile"])).guidance.values())
    # per update, like --compile: eager MVDream in NCHW beside VSD in channels_last (measured on the H100)
    cfg = paper_scale.train_config("paper", "cpu", paper_scale.parse_args(["--channels-last", "img", "--tf32"]))
    assert {u for u, g in cfg.guidance.items() if g.frozen.channels_last} == {"img"}
    for plain in ([], ["--channels-last", "--no-channels-last"]):  # the last of the two wins
        cfg = paper_scale.train_config("paper", "cpu", paper_scale.parse_args(plain))
        assert {u: g.frozen for u, g in cfg.guidance.items()} == {
            u: g.frozen for u, g in build_config("paper", "4dfy").guidance.items()}


def test_cuda_graph_flag_is_the_priors_cuda_graph_option():
    """--cuda-graph [UPDATE ...] sets guidance.<update>.frozen.cuda_graph, what `--set` gives a run, per update
    like --compile; without the flag no prior is graphed."""
    from pipelines.generate import build_config, parse_sets

    for given, wanted in ((["--cuda-graph"], {"3d", "img", "video"}), (["--cuda-graph", "3d", "video"], {"3d", "video"}),
                          ([], set())):
        cfg = paper_scale.train_config("paper", "cpu", paper_scale.parse_args(given))
        assert {u for u, g in cfg.guidance.items() if g.frozen.cuda_graph} == wanted, given
    cfg = paper_scale.train_config("paper", "cpu", paper_scale.parse_args(["--cuda-graph", "3d", "video"]))
    run = build_config("paper", "4dfy", sets=parse_sets(["guidance.3d.frozen.cuda_graph=true",
                                                         "guidance.video.frozen.cuda_graph=true"]))
    assert {u: g.frozen for u, g in cfg.guidance.items()} == {u: g.frozen for u, g in run.guidance.items()}


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


def test_a_run_cut_short_leaves_what_it_measured(tmp_path, monkeypatch):
    """After each update the results so far are written, marked partial, so a run killed by a time limit (as on
    the lent GPUs) still returns its measurements."""
    calls = []

    def fake_measure(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt  # what a time limit's signal would do
        calls.append(args[1])
        return {"s_per_update": 0.5, "repeats": 1, "peak_mb": None, "warmup_included": False}

    monkeypatch.setattr(paper_scale, "measure", fake_measure)
    out = tmp_path / "ps"
    with pytest.raises(KeyboardInterrupt):
        paper_scale.main(["--size", "reduced", "--device", "cpu", "--repeats", "0", "--out", str(out)])
    res = json.loads(out.with_suffix(".json").read_text())
    assert [u["update"] for u in res["updates"]] == calls and len(calls) == 2
    assert res["planned_updates"] > 2 and res["projection"] == {}  # no profile has all its updates yet
    md = out.with_suffix(".md").read_text()
    assert f"**Partial**: 2 of {res['planned_updates']} updates measured" in md
    assert "is not measured yet" in md and "did not complete" not in md


def test_warm_ups_do_not_take_the_repeats_budget(monkeypatch):
    """A warm-up that compiles for minutes (torch.compile's first call) leaves the update its repeats: the budget
    counts from the warm-up's end, and `run` shares what the timed repeats have not used among the updates left."""
    clock = [0.0]
    steps = []

    def fake_step(trainer, stage_index, step, device, restore):
        took = 100.0 if not steps else 1.0  # the first call compiles
        steps.append(took)
        clock[0] += took
        return took

    monkeypatch.setattr(paper_scale, "timed_step", fake_step)
    monkeypatch.setattr(paper_scale.time, "perf_counter", lambda: clock[0])
    r = paper_scale.measure(None, "3d", 0, 0, paper_scale.torch.device("cpu"), repeats=5, budget_s=3.5)
    # repeats end at 101, 102, 103; a fourth would end at 104, past 100 + 3.5
    assert r["repeats"] == 3 and r["timed_s"] == 3.0 and r["s_per_update"] == 1.0 and len(steps) == 4


def test_run_shares_the_budget_left_by_the_timed_repeats(tmp_path, monkeypatch):
    shares = []

    def fake_measure(trainer, update, stage_index, step, device, repeats, budget_s, restore):
        shares.append(budget_s)
        return {"s_per_update": 0.5, "repeats": 1, "peak_mb": None, "warmup_included": False, "timed_s": 12.0}

    monkeypatch.setattr(paper_scale, "measure", fake_measure)
    out = tmp_path / "ps"
    assert paper_scale.main(["--size", "reduced", "--device", "cpu", "--budget-s", "40", "--out", str(out)]) == 0
    n = json.loads(out.with_suffix(".json").read_text())["planned_updates"]
    # the reduced size's seven updates; each fake update times 12 s of repeats, so the fourth finds 4 s left and
    # the rest none (a share never goes negative)
    assert n == len(shares) == 7
    assert shares == pytest.approx([40 / 7, 28 / 6, 16 / 5, 4 / 4, 0.0, 0.0, 0.0])

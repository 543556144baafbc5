"""The trainer's machinery with oracle priors (no pretrained weights): freezing, LRs, resume, outputs."""

import json
import math

import pytest
import torch

from method.training import checkpoint as ckpt
from method.training.trainer import Trainer

from oracle_setup import oracle_priors, small_oracle_config


def params_of(path):
    return ckpt.load(path)["field"]


def test_dynamic_grid_is_bit_identical_through_stages_1_and_2_then_moves(tmp_path):
    cfg = small_oracle_config()
    tr = Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False)
    init = {k: v.clone() for k, v in tr.field.state_dict().items()}
    tr.run()
    s1, s2, s3 = (params_of(tmp_path / "ckpt" / f"stage{i}.pt") for i in (1, 2, 3))
    key = "encoder.dynamic.params"
    assert torch.equal(s1[key], init[key]) and torch.equal(s2[key], init[key])
    assert not torch.equal(s2["encoder.static.params"], init["encoder.static.params"])
    counts = json.loads((tmp_path / "manifest.json").read_text())["update_counts"]["stage3"]
    assert counts["video"] > 0
    assert not torch.equal(s3[key], s2[key])  # video updates unfreeze it


def test_static_lr_is_1e4_in_stage_3_and_1e2_before(tmp_path):
    cfg = small_oracle_config()
    Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False).run()
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    for rec in lines:
        expected = 1e-4 if rec["stage"] == "stage3" else 1e-2
        assert rec["lr"]["static"] == pytest.approx(expected)
        assert rec["lr"]["dynamic"] == pytest.approx(1e-2)
    assert {r["stage"] for r in lines} == {"stage1", "stage2", "stage3"}


def test_static_updates_in_stage_3_do_not_touch_the_dynamic_grid(tmp_path):
    cfg = small_oracle_config()
    tr = Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False)
    tr._build_optimizer(2)
    before = tr.field.encoder.dynamic.params.detach().clone()
    seen = set()
    for step in range(12):
        dyn = tr.field.encoder.dynamic.params.detach().clone()
        rec = tr.train_step(2, step)
        seen.add(rec["update"])
        changed = not torch.equal(tr.field.encoder.dynamic.params, dyn)
        assert changed == (rec["update"] == "video"), rec
    assert "video" in seen and seen & {"3d", "img"}
    assert not torch.equal(tr.field.encoder.dynamic.params, before)


def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path):
    cfg = small_oracle_config()
    full = tmp_path / "full"
    Trainer(cfg, "blobs", full, priors=oracle_priors(), progress=False).run()
    part = tmp_path / "part"
    # "killed" after 11 steps: the last periodic checkpoint is older, so some work is redone
    out = Trainer(cfg, "blobs", part, priors=oracle_priors(), progress=False).run(stop_after=11)
    assert out == {"stopped": True}
    assert not (part / "manifest.json").exists()
    Trainer(cfg, "blobs", part, priors=oracle_priors(), progress=False).run(resume=True)
    a, b = params_of(full / "ckpt" / "last.pt"), params_of(part / "ckpt" / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ma = json.loads((full / "manifest.json").read_text())
    mb = json.loads((part / "manifest.json").read_text())
    assert ma["update_counts"] == mb["update_counts"] and ma["config_hash"] == mb["config_hash"]


def test_existing_run_needs_resume_and_resume_checks_the_config(tmp_path):
    cfg = small_oracle_config(steps=(2, 2, 2))
    Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False).run()
    with pytest.raises(ckpt.CheckpointError, match="--resume"):
        Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False).run()
    other = small_oracle_config(steps=(2, 2, 3))
    with pytest.raises(ckpt.CheckpointError, match="different run") as err:
        Trainer(other, "blobs", tmp_path, priors=oracle_priors(), progress=False).run(resume=True)
    # the message names what differs, not only the two hashes
    assert "stages.stage3.steps 2 there, 3 here" in str(err.value) and "drop --resume" not in str(err.value)


def test_init_from_a_stage_checkpoint_skips_the_shared_stages(tmp_path):
    cfg = small_oracle_config()
    Trainer(cfg, "blobs", tmp_path / "a", priors=oracle_priors(), progress=False).run()
    stage2 = tmp_path / "a" / "ckpt" / "stage2.pt"
    tr = Trainer(cfg, "blobs", tmp_path / "b", priors=oracle_priors(), progress=False)
    tr.run(init_from=stage2)
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in log} == {"stage3"}
    s3 = params_of(tmp_path / "b" / "ckpt" / "stage3.pt")
    assert not torch.equal(s3["encoder.dynamic.params"], params_of(stage2)["encoder.dynamic.params"])
    with pytest.raises(ckpt.CheckpointError, match="not found"):
        Trainer(cfg, "blobs", tmp_path / "c", priors=oracle_priors(), progress=False).run(init_from=tmp_path / "nope.pt")


def test_outputs_manifest_log_previews(tmp_path):
    cfg = small_oracle_config(steps=(2, 2, 3), preview_every=2, preview_frames=16)
    manifest = Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False).run()
    for rel in manifest["outputs"]:
        assert (tmp_path / rel).is_file(), rel
    assert "preview.mp4" in manifest["outputs"]
    assert {"method", "prompt", "profile", "config", "config_hash", "versions", "timings_s",
            "peak_memory_mb"} <= set(manifest)
    assert str(tmp_path) not in (tmp_path / "manifest.json").read_text()  # no absolute paths
    assert sorted(p.name for p in (tmp_path / "previews").iterdir())[:1] == ["stage1_000002.png"]
    from method.video import decode_video
    frames = decode_video(tmp_path / "preview.mp4")
    assert frames.shape == (16, 8, 8, 3)  # the orbit preview: preview_frames at the preview size


def test_corrupt_video_and_checkpoint_are_clear_errors(tmp_path):
    from method.video import VideoError, decode_video
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(VideoError, match="not a readable video"):
        decode_video(bad)
    with pytest.raises(VideoError, match="file not found"):
        decode_video(tmp_path / "missing.mp4")
    badck = tmp_path / "bad.pt"
    badck.write_bytes(b"garbage")
    with pytest.raises(ckpt.CheckpointError, match="cannot read"):
        ckpt.load(badck)


def test_resume_does_not_repeat_log_lines_and_records_the_resume(tmp_path):
    cfg = small_oracle_config()
    out = tmp_path / "run"
    # "killed" after 12 steps (4 + 4 + 4): the last checkpoint is at stage-3 step 3 (every 3 steps)
    Trainer(cfg, "blobs", out, priors=oracle_priors(), progress=False).run(stop_after=12)
    logged_before_kill = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(logged_before_kill) == 12  # stage-3 step 4 was logged after that checkpoint, then "lost"
    manifest = Trainer(cfg, "blobs", out, priors=oracle_priors(), progress=False).run(resume=True)
    keys = [(r["stage"], r["step"]) for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())]
    assert len(keys) == len(set(keys)) == sum(s.steps for s in cfg.stages)  # log_every=1: each step once
    assert [r["from"] for r in manifest["resumes"]] == ["last.pt"]
    resume = manifest["resumes"][0]
    assert (resume["stage_index"], resume["step"]) == (2, 3)
    assert resume["redone_to"] == ["stage3", 4] and resume["lost_s"] > 0
    assert manifest["timings_lost_s"] == resume["lost_s"]


def test_resume_drops_a_log_line_torn_by_a_kill_and_names_a_damaged_one(tmp_path):
    """A kill -9 while a log line is written leaves it cut short: the resume drops it (its step runs again) instead
    of stopping on a JSON error; a damaged line before the last is an error naming the file and the line."""
    cfg = small_oracle_config()
    out = tmp_path / "run"
    Trainer(cfg, "blobs", out, priors=oracle_priors(), progress=False).run(stop_after=12)
    log = out / "log.jsonl"
    text = log.read_text()
    log.write_text(text + text.splitlines()[-1][:25])  # a 13th line, torn
    Trainer(cfg, "blobs", out, priors=oracle_priors(), progress=False).run(resume=True)
    keys = [(r["stage"], r["step"]) for r in map(json.loads, log.read_text().splitlines())]
    assert len(keys) == len(set(keys)) == sum(s.steps for s in cfg.stages)
    other = tmp_path / "other"
    Trainer(cfg, "blobs", other, priors=oracle_priors(), progress=False).run(stop_after=12)
    lines = (other / "log.jsonl").read_text().splitlines()
    (other / "log.jsonl").write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match=r"log.jsonl: line 2 is not a JSON record"):
        Trainer(cfg, "blobs", other, priors=oracle_priors(), progress=False).run(resume=True)


def test_checkpoints_also_by_wall_time_so_short_stages_resume_mid_stage(tmp_path):
    # checkpoint_every larger than any stage: only the time rule can write a mid-stage checkpoint
    cfg = small_oracle_config(checkpoint_every=1000, checkpoint_every_s=1e-9)
    out = tmp_path / "run"
    Trainer(cfg, "blobs", out, priors=oracle_priors(), progress=False).run(stop_after=6)
    state = ckpt.load(out / "ckpt" / "last.pt")["state"]
    assert (state["stage_index"], state["step"]) == (1, 2)  # 4 steps of stage 1, then 2 of stage 2
    cfg_steps_only = small_oracle_config(checkpoint_every=1000, checkpoint_every_s=0.0)
    Trainer(cfg_steps_only, "blobs", tmp_path / "b", priors=oracle_priors(), progress=False).run(stop_after=6)
    assert ckpt.load(tmp_path / "b" / "ckpt" / "last.pt")["state"]["step"] == 0  # stage-1 end only


def test_damaged_last_checkpoint_names_the_intact_stage_checkpoints_and_resume_from_works(tmp_path):
    cfg = small_oracle_config()
    out = tmp_path / "run"
    Trainer(cfg, "blobs", out, priors=oracle_priors(), progress=False).run(stop_after=9)
    last = out / "ckpt" / "last.pt"
    last.write_bytes(last.read_bytes()[:100])  # truncated
    with pytest.raises(ckpt.CheckpointError) as err:
        Trainer(cfg, "blobs", out, priors=oracle_priors(), progress=False).run(resume=True)
    assert "stage2.pt" in str(err.value) and "--resume-from" in str(err.value)
    manifest = Trainer(cfg, "blobs", out, priors=oracle_priors(), progress=False).run(
        resume_from=out / "ckpt" / "stage2.pt")
    full = tmp_path / "full"
    Trainer(cfg, "blobs", full, priors=oracle_priors(), progress=False).run()
    a, b = params_of(full / "ckpt" / "last.pt"), params_of(out / "ckpt" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert manifest["resumes"][-1]["from"] == "stage2.pt"


def test_a_checkpoint_of_an_older_layout_is_refused_with_a_clear_message(tmp_path):
    cfg = small_oracle_config(steps=(2, 2, 2))
    out = tmp_path / "run"
    Trainer(cfg, "blobs", out, priors=oracle_priors(), progress=False).run(stop_after=3)
    data = ckpt.load(out / "ckpt" / "last.pt")
    del data["schema"]  # what a run made before the config/checkpoint layout change holds
    ckpt.save_atomic(data, out / "ckpt" / "last.pt")
    with pytest.raises(ckpt.CheckpointMismatch, match="older version"):
        Trainer(cfg, "blobs", out, priors=oracle_priors(), progress=False).run(resume=True)


def test_opacity_entropy_clamps_at_the_release_value():
    from method.training.trainer import OPACITY_CLAMP

    cfg = small_oracle_config(**{"weights.opacity_entropy": 1.0, "weights.opacity_entropy_from": 0})
    tr = Trainer(cfg, "blobs", "unused", priors=oracle_priors(), progress=False)
    o = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)
    got = tr._regularisers(o, step=0)["loss_opacity_entropy"]
    c = 1e-3  # the release's clamp, written down independently of the constant
    h = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))  # noqa: E731
    expected = (h(c) + h(1 - c) + h(0.5)) / 3
    assert OPACITY_CLAMP == c and float(got) == pytest.approx(float(expected), rel=1e-12)


@pytest.mark.parametrize("profile", ["paper", "release"])
def test_mvdream_batch_follows_each_stages_own_schedule(profile):
    from baselines import resolve_config
    from method.fields import HashGridConfig
    from method.training.config import replace

    small = HashGridConfig(n_levels=2, log2_hashmap_size=8, base_resolution=4)
    cfg = replace(resolve_config(profile, "4dfy"), device="cpu",
                  **{"field.static_grid": small, "field.dynamic_grid": small})
    tr = Trainer(cfg, "x", "unused", priors={}, progress=False)
    # the release: stage 1 two groups at 64^2 then one at 256^2 from 5k; stage 2 one group, 64^2 then 256^2;
    # stage 3 one group at 256^2 from its first step
    expected = {("stage1", 0): (8, 64), ("stage1", 5000): (4, 256), ("stage2", 0): (4, 64),
                ("stage2", 5000): (4, 256), ("stage3", 0): (4, 256), ("stage3", 5000): (4, 256)}
    for (stage, step), (n_views, size) in expected.items():
        cams, times, h, w = tr.batch("3d", cfg.stage(stage), step)
        assert (len(cams), h, w) == (n_views, size, size), (stage, step)


def test_shared_stages_train_once_and_a_derived_run_is_bit_identical_to_one_from_scratch(tmp_path):
    from method.training.config import replace

    cache = tmp_path / "stage-cache"
    full = small_oracle_config()
    no_hybrid = replace(full, method="wo_hybrid", **{"stages.stage3.p_3d": 0.0, "stages.stage3.p_img": 0.0})
    no_img = replace(full, method="wo_img", **{"stages.stage2.p_3d": 1.0, "stages.stage2.p_img": 0.0,
                                               "stages.stage3.p_img": 0.0})
    Trainer(full, "blobs", tmp_path / "a", priors=oracle_priors(), progress=False, stage_cache=cache).run()
    derived = Trainer(no_hybrid, "blobs", tmp_path / "b", priors=oracle_priors(), progress=False, stage_cache=cache)
    mb = derived.run()
    assert mb["shared_from"]["stage"] == "stage2" and mb["shared_from"]["method"] == "4dfy"
    scratch = tmp_path / "c"
    mc = Trainer(no_hybrid, "blobs", scratch, priors=oracle_priors(), progress=False).run()
    a, b = params_of(scratch / "ckpt" / "last.pt"), params_of(tmp_path / "b" / "ckpt" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert mb["update_counts"] == mc["update_counts"] and mb["config_hash"] == mc["config_hash"]
    def records(path):  # everything but the wall-clock field
        return [{k: v for k, v in json.loads(line).items() if k != "time_s"} for line in path.read_text().splitlines()]

    assert records(tmp_path / "b" / "log.jsonl") == records(scratch / "log.jsonl")
    # a method whose stage 2 differs shares stage 1 only; another prompt shares nothing
    md = Trainer(no_img, "blobs", tmp_path / "d", priors=oracle_priors(), progress=False, stage_cache=cache).run()
    assert md["shared_from"]["stage"] == "stage1"
    me = Trainer(full, "other blobs", tmp_path / "e", priors=oracle_priors(), progress=False, stage_cache=cache).run()
    assert me["shared_from"] is None


def test_a_method_that_changes_only_the_video_prior_shares_stages_1_2_bit_identically(tmp_path):
    """Stages 1-2 draw no video update, so the video prior's config, its loss weight and the clip size do not
    enter their prefix hash: such a variant loads 4dfy's stage 2 and ends bit-identical to training from
    scratch. Its built priors come from its own config (the changed video prior pulls towards another scene)."""
    from method.training.config import replace

    cache = tmp_path / "stage-cache"
    full = small_oracle_config()
    variant = replace(full, method="strong_video", **{"weights.sds_video": 3.0, "render.video_size": (4, 6),
                                                      "guidance.video.scene": "recolored"})
    assert [variant.stage_prefix_hash(n) == full.stage_prefix_hash(n) for n in (1, 2, 3)] == [True, True, False]
    Trainer(full, "blobs", tmp_path / "a", priors=oracle_priors(), progress=False, stage_cache=cache).run()
    shared = Trainer(variant, "blobs", tmp_path / "b", priors=oracle_priors(variant), progress=False,
                     stage_cache=cache).run()
    assert shared["shared_from"]["stage"] == "stage2" and shared["shared_from"]["method"] == "4dfy"
    scratch = Trainer(variant, "blobs", tmp_path / "c", priors=oracle_priors(variant), progress=False).run()
    a, b = params_of(tmp_path / "c" / "ckpt" / "last.pt"), params_of(tmp_path / "b" / "ckpt" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert shared["update_counts"] == scratch["update_counts"] and scratch["update_counts"]["stage3"]["video"] > 0
    full_last = params_of(tmp_path / "a" / "ckpt" / "last.pt")  # and stage 3 did train it differently
    assert not all(torch.equal(full_last[k], b[k]) for k in b)


def test_stage_gradient_budget_follows_the_release_per_render_call():
    """The release's `train_max_nums` N: a call rendering B views at one time keeps N // B samples with
    gradient; a clip is rendered frame by frame, N each; no stage value falls back to the renderer's."""
    from method.training.config import StageConfig

    stage = StageConfig("s", 1, p_3d=1.0, p_img=0.0, allow_video=False, grad_max_samples=100_000)
    assert stage.grad_cap("3d", 4, default=None) == 25_000
    assert stage.grad_cap("3d", 8, default=None) == 12_500
    assert stage.grad_cap("img", 1, default=None) == 100_000
    assert stage.grad_cap("video", 16, default=None) == 1_600_000
    plain = StageConfig("s", 1, p_3d=1.0, p_img=0.0, allow_video=False)
    assert plain.grad_cap("3d", 4, default=7) == 7 and plain.grad_cap("video", 16, default=None) is None
    with pytest.raises(ValueError, match="grad_max_samples"):
        StageConfig("s", 1, p_3d=1.0, p_img=0.0, allow_video=False, grad_max_samples=0)
    with pytest.raises(ValueError, match="trainable"):
        StageConfig("s", 1, p_3d=1.0, p_img=0.0, allow_video=False, trainable=("statc",))


def _one_video_step_grads(cap):
    """Field gradients of one stage-3 video update of the small oracle run with a stage budget."""
    cfg = small_oracle_config(**{"stages.stage3.p_3d": 0.0, "stages.stage3.p_img": 0.0,
                                 "stages.stage3.grad_max_samples": cap, "renderer.num_samples": 48})
    tr = Trainer(cfg, "blobs", "unused", priors=oracle_priors(cfg), progress=False)
    tr._build_optimizer(2)
    grads = {}
    step = tr.optimizer.step
    tr.optimizer.step = lambda: grads.update(  # read the gradients at the moment the optimizer would use them
        {n: p.grad.clone() for n, p in tr.field.named_parameters() if p.grad is not None}) or step()
    assert tr.train_step(2, 0)["update"] == "video"
    return grads


def test_a_stage_budget_limits_which_samples_reach_the_grid():
    full = _one_video_step_grads(None)
    capped = _one_video_step_grads(1)  # one sample per frame keeps its gradient
    key = "encoder.dynamic.params"
    touched_full, touched_capped = int((full[key] != 0).sum()), int((capped[key] != 0).sum())
    # each sample reaches at most 2^4 corners on each level of the 4D grid, times its features
    cfg = small_oracle_config()
    enc = cfg.field.dynamic_grid
    bound = cfg.render.video_frames * 16 * enc.n_levels * enc.n_features_per_level
    assert 0 < touched_capped <= bound < touched_full


def test_a_stage_can_train_the_dynamic_grid_alone(tmp_path):
    """The release's low-VRAM stage 3 (`freeze_static_modules`): every update, 3D ones included, trains only
    the dynamic grid; the static grid, the heads and the background stay as stage 2 left them."""
    cfg = small_oracle_config(**{"stages.stage3.trainable": ("dynamic",)})
    Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(cfg), progress=False).run()
    s2, s3 = (params_of(tmp_path / "ckpt" / f"stage{i}.pt") for i in (2, 3))
    counts = json.loads((tmp_path / "manifest.json").read_text())["update_counts"]["stage3"]
    assert counts["3d"] > 0 and counts["video"] > 0
    moved = {k for k in s3 if not torch.equal(s3[k], s2[k])}
    assert moved and all(k.startswith("encoder.dynamic") for k in moved), moved


def test_missing_weights_of_a_later_stage_fail_before_the_first_step(tmp_path, monkeypatch):
    """Every prior the run will draw is loaded before stage 1: a missing video model is reported at once,
    not after the hours of stages 1-2 (nothing trained, no checkpoint, no log)."""
    from method.guidance.loading import ModelNotFoundError
    from pipelines.generate import build_config

    monkeypatch.setenv("FOURDFY_CACHE", str(tmp_path / "cache"))
    cfg = build_config("tiny", "4dfy", max_steps=2, device="cpu",
                       sets={"guidance.video.model": str(tmp_path / "no-such-zeroscope")})
    tr = Trainer(cfg, "a panda dancing", tmp_path / "run", progress=False)
    with pytest.raises(ModelNotFoundError, match="guidance.video.model"):
        tr.run()
    assert not (tmp_path / "run" / "ckpt").exists() and not (tmp_path / "run" / "log.jsonl").exists()
    assert tr.state.stage_index == 0 and tr.state.step == 0
    # through `generate`, the folder it made for the run is gone again
    from pipelines.generate import generate

    with pytest.raises(ModelNotFoundError):
        generate(cfg, "a panda dancing", tmp_path / "via-generate", quiet=True)
    assert not (tmp_path / "via-generate").exists()


def test_a_run_builds_only_the_priors_its_remaining_stages_draw(tmp_path):
    cfg = small_oracle_config(**{"stages.stage1.steps": 0, "stages.stage2.steps": 0,
                                 "stages.stage3.p_3d": 0.0, "stages.stage3.p_img": 0.0})
    tr = Trainer(cfg, "blobs", tmp_path, priors={}, progress=False)
    assert cfg.update_types_used(tr.state.stage_index) == ["video"]
    tr.run()
    assert set(tr._priors) == {"video"}


def test_stage_checkpoints_hold_only_the_priors_their_stages_drew(tmp_path, monkeypatch):
    """Every prior is built before stage 1, but stage 1's checkpoint (shared through the stage cache with
    methods that never draw VSD, e.g. wo_img) holds neither the LoRA nor a guidance optimizer group."""
    from pipelines.generate import build_config

    monkeypatch.setenv("FOURDFY_CACHE", str(tmp_path / "cache"))
    cfg = build_config("tiny", "4dfy", max_steps=1, device="cpu")
    tr = Trainer(cfg, "a panda dancing", tmp_path / "run", progress=False, quiet=True)
    tr.run()
    s1, s2 = (ckpt.load(tmp_path / "run" / "ckpt" / f"stage{i}.pt") for i in (1, 2))
    assert s1["priors"] == {} and "guidance" not in {g["name"] for g in s1["optimizer"]["param_groups"]}
    assert set(s2["priors"]) == {"img"} and "guidance" in {g["name"] for g in s2["optimizer"]["param_groups"]}


@pytest.mark.parametrize("tf32", [True, False])
def test_a_training_step_runs_with_the_configs_tf32_choice_and_restores_the_flag(tf32):
    """`tf32` turns PyTorch's process-wide TF32 flag for matrix products on during a step only (cuBLAS reads it;
    here it is read back where the field runs); a process already at TF32 keeps it, and after the step the flag
    is what it was."""
    cfg = small_oracle_config(tf32=tf32)
    tr = Trainer(cfg, "blobs", "unused", priors=oracle_priors(cfg), progress=False)
    tr._build_optimizer(0)
    seen = []
    tr.field.register_forward_hook(lambda *_: seen.append(torch.backends.cuda.matmul.allow_tf32))
    matmul = torch.backends.cuda.matmul
    original = matmul.allow_tf32
    try:
        for before in (False, True):
            matmul.allow_tf32 = before
            seen.clear()
            tr.train_step(0, 0)
            assert seen and set(seen) == {tf32 or before}
            assert matmul.allow_tf32 is before and torch.get_float32_matmul_precision() == \
                ("high" if before else "highest")
    finally:
        matmul.allow_tf32 = original


def test_tf32_leaves_lower_precisions_and_per_backend_settings_alone():
    """'medium' (bf16 allowed) is below TF32: a step keeps it. An explicit per-backend 'ieee' comes back after the
    step; a per-backend setting that the legacy flag cannot read back is left alone, with a warning."""
    from method import backends

    original = torch.get_float32_matmul_precision()
    matmul = torch.backends.cuda.matmul
    try:
        torch.set_float32_matmul_precision("medium")
        with backends.matmul_tf32(True):
            assert torch.get_float32_matmul_precision() == "medium"
        assert torch.get_float32_matmul_precision() == "medium"
        torch.set_float32_matmul_precision("highest")
        if hasattr(matmul, "fp32_precision"):  # the per-backend API (torch >= 2.9)
            matmul.fp32_precision = "ieee"
            with backends.matmul_tf32(True):
                assert matmul.allow_tf32
            assert matmul.fp32_precision == "ieee"
            matmul.fp32_precision = "none"
            matmul.fp32_precision = "tf32"  # with the global 'highest': unreadable through the legacy API
            backends._warned.discard("tf32-per-backend")
            with pytest.warns(RuntimeWarning, match="per backend"):
                with backends.matmul_tf32(True):
                    pass
            assert matmul.fp32_precision == "tf32"
    finally:
        if hasattr(matmul, "fp32_precision"):
            matmul.fp32_precision = "none"
        torch.set_float32_matmul_precision(original)


def test_with_priors_built_from_the_config_a_video_variant_is_bit_identical_through_the_stage_cache(tmp_path):
    """As the previous test, but through `generate` on the tiny profile: every prior is built from its config
    before stage 1 (the variant's video prior differs), so building one must not change what stages 1-2 train."""
    from pipelines.generate import build_config, generate, parse_sets

    cache = tmp_path / "cache"
    full = build_config("tiny", "4dfy", max_steps=3)
    variant = build_config("tiny", "4dfy", max_steps=3, sets=parse_sets(
        ["weights.sds_video=0.3", "guidance.video.guidance_scale=50", "render.video_size=[8,12]"]))
    generate(full, "a_panda_dancing", tmp_path / "a", stage_cache=cache, quiet=True)
    shared = generate(variant, "a_panda_dancing", tmp_path / "b", stage_cache=cache, quiet=True)
    assert shared["shared_from"]["stage"] == "stage2"
    generate(variant, "a_panda_dancing", tmp_path / "c", quiet=True)
    a, b = params_of(tmp_path / "c" / "ckpt" / "last.pt"), params_of(tmp_path / "b" / "ckpt" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)

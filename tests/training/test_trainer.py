"""The trainer's machinery with oracle priors (no pretrained weights): freezing, LRs, resume, outputs."""

import json

import pytest
import torch

from method.training import checkpoint as ckpt
from method.training.trainer import Trainer

from oracle_setup import oracle_priors, small_oracle_config


def params_of(path):
    return ckpt.load(path)["field"]


def test_dynamic_grid_is_bit_identical_through_stages_1_and_2_then_moves(tmp_path):
    cfg = small_oracle_config()
    tr = Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False, run_orbit=False)
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
    Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False, run_orbit=False).run()
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    for rec in lines:
        expected = 1e-4 if rec["stage"] == "stage3" else 1e-2
        assert rec["lr"]["static"] == pytest.approx(expected)
        assert rec["lr"]["dynamic"] == pytest.approx(1e-2)
    assert {r["stage"] for r in lines} == {"stage1", "stage2", "stage3"}


def test_static_updates_in_stage_3_do_not_touch_the_dynamic_grid(tmp_path):
    cfg = small_oracle_config()
    tr = Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False, run_orbit=False)
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
    Trainer(cfg, "blobs", full, priors=oracle_priors(), progress=False, run_orbit=False).run()
    part = tmp_path / "part"
    # "killed" after 11 steps: the last periodic checkpoint is older, so some work is redone
    out = Trainer(cfg, "blobs", part, priors=oracle_priors(), progress=False, run_orbit=False).run(stop_after=11)
    assert out == {"stopped": True}
    assert not (part / "manifest.json").exists()
    Trainer(cfg, "blobs", part, priors=oracle_priors(), progress=False, run_orbit=False).run(resume=True)
    a, b = params_of(full / "ckpt" / "last.pt"), params_of(part / "ckpt" / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ma = json.loads((full / "manifest.json").read_text())
    mb = json.loads((part / "manifest.json").read_text())
    assert ma["update_counts"] == mb["update_counts"] and ma["config_hash"] == mb["config_hash"]


def test_existing_run_needs_resume_and_resume_checks_the_config(tmp_path):
    cfg = small_oracle_config(steps=(2, 2, 2))
    Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False, run_orbit=False).run()
    with pytest.raises(ckpt.CheckpointError, match="--resume"):
        Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False, run_orbit=False).run()
    other = small_oracle_config(steps=(2, 2, 3))
    with pytest.raises(ckpt.CheckpointError, match="different run"):
        Trainer(other, "blobs", tmp_path, priors=oracle_priors(), progress=False, run_orbit=False).run(resume=True)


def test_init_from_a_stage_checkpoint_skips_the_shared_stages(tmp_path):
    cfg = small_oracle_config()
    Trainer(cfg, "blobs", tmp_path / "a", priors=oracle_priors(), progress=False, run_orbit=False).run()
    stage2 = tmp_path / "a" / "ckpt" / "stage2.pt"
    tr = Trainer(cfg, "blobs", tmp_path / "b", priors=oracle_priors(), progress=False, run_orbit=False)
    tr.run(init_from=stage2)
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in log} == {"stage3"}
    s3 = params_of(tmp_path / "b" / "ckpt" / "stage3.pt")
    assert not torch.equal(s3["encoder.dynamic.params"], params_of(stage2)["encoder.dynamic.params"])
    with pytest.raises(ckpt.CheckpointError, match="not found"):
        Trainer(cfg, "blobs", tmp_path / "c", priors=oracle_priors(), progress=False,
                run_orbit=False).run(init_from=tmp_path / "nope.pt")


def test_outputs_manifest_log_previews(tmp_path):
    cfg = small_oracle_config(steps=(2, 2, 3), preview_every=2)
    manifest = Trainer(cfg, "blobs", tmp_path, priors=oracle_priors(), progress=False, run_orbit=True).run()
    for rel in manifest["outputs"]:
        assert (tmp_path / rel).is_file(), rel
    assert "orbit.mp4" in manifest["outputs"]
    assert {"method", "prompt", "profile", "config", "config_hash", "versions", "timings_s",
            "peak_memory_mb"} <= set(manifest)
    assert str(tmp_path) not in (tmp_path / "manifest.json").read_text()  # no absolute paths
    assert sorted(p.name for p in (tmp_path / "previews").iterdir())[:1] == ["stage1_000002.png"]
    from method.training.video import read_video
    frames = read_video(tmp_path / "orbit.mp4")
    assert frames.shape == (64, 8, 8, 3)  # the MAV3D-protocol orbit at the eval size


def test_corrupt_video_and_checkpoint_are_clear_errors(tmp_path):
    from method.training.video import VideoError, read_video
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(VideoError, match="cannot decode"):
        read_video(bad)
    badck = tmp_path / "bad.pt"
    badck.write_bytes(b"garbage")
    with pytest.raises(ckpt.CheckpointError, match="cannot read"):
        ckpt.load(badck)

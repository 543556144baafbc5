"""The trainer's side of review findings: a damaged stage-cache entry is a miss (and is replaced), an `--init-from`
run starts after the stages its checkpoint holds finished by that checkpoint's own stage lengths, lists only the
stage checkpoints it wrote, and its start is part of its identity on resume."""

import json

import pytest

from method.training import checkpoint as ckpt
from method.training.trainer import Trainer

from oracle_setup import oracle_priors, small_oracle_config


def _truncate(path):
    path.write_bytes(path.read_bytes()[:1000])


def test_a_damaged_stage_cache_entry_is_a_miss_named_once_and_replaced(tmp_path, capsys):
    from method.training.config import replace

    cache = tmp_path / "stage-cache"
    full = small_oracle_config()
    no_img = replace(full, method="wo_img", **{"stages.stage2.p_3d": 1.0, "stages.stage2.p_img": 0.0,
                                               "stages.stage3.p_img": 0.0})
    Trainer(full, "blobs", tmp_path / "a", priors=oracle_priors(), progress=False, stage_cache=cache).run()
    entry = next(cache.glob("*/stage1.pt"))
    _truncate(entry)
    capsys.readouterr()
    # wo_img shares stage 1 only: its one cache entry cannot be read, so it trains every stage itself
    m = Trainer(no_img, "blobs", tmp_path / "b", priors=oracle_priors(), progress=False, stage_cache=cache).run()
    assert m["shared_from"] is None
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and f"stage cache entry {entry} cannot be used" in notes[0], notes
    # replaced by this run's own stage 1 (atomically), which the next run sharing it reads
    assert entry.read_bytes() == (tmp_path / "b" / "ckpt" / "stage1.pt").read_bytes()
    assert ckpt.load(entry)["state"]["stage_index"] == 0


def test_a_damaged_deeper_entry_falls_back_to_the_shallower_one(tmp_path, capsys):
    from method.training.config import replace

    cache = tmp_path / "stage-cache"
    full = small_oracle_config()
    no_hybrid = replace(full, method="wo_hybrid", **{"stages.stage3.p_3d": 0.0, "stages.stage3.p_img": 0.0})
    Trainer(full, "blobs", tmp_path / "a", priors=oracle_priors(), progress=False, stage_cache=cache).run()
    entry = next(cache.glob("*/stage2.pt"))
    _truncate(entry)
    m = Trainer(no_hybrid, "blobs", tmp_path / "b", priors=oracle_priors(), progress=False, stage_cache=cache).run()
    assert m["shared_from"]["stage"] == "stage1"
    assert ckpt.load(entry)["state"]["stage_index"] == 1
    assert "note: stage cache entry" in capsys.readouterr().err


def test_init_from_starts_after_the_stages_the_checkpoint_finished_by_its_own_lengths(tmp_path):
    short = small_oracle_config(steps=(2, 2, 2))
    Trainer(short, "blobs", tmp_path / "a", priors=oracle_priors(short), progress=False).run()
    stage1 = tmp_path / "a" / "ckpt" / "stage1.pt"
    longer = small_oracle_config(steps=(4, 4, 6))  # its stage 1 is longer than the one the checkpoint finished
    m = Trainer(longer, "blobs", tmp_path / "b", priors=oracle_priors(longer), progress=False).run(init_from=stage1)
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in log} == {"stage2", "stage3"}  # stage 1 was not trained again on top of itself
    assert sum(m["update_counts"]["stage1"].values()) == 2  # the checkpoint's own stage 1, not 2 + 4
    assert sum(m["update_counts"]["stage2"].values()) == 4 and sum(m["update_counts"]["stage3"].values()) == 6
    # only the stage checkpoints this run wrote
    assert m["outputs"] == ["ckpt/last.pt", "ckpt/stage2.pt", "ckpt/stage3.pt", "log.jsonl"]
    assert all((tmp_path / "b" / rel).is_file() for rel in m["outputs"])
    record = m["request"]["init_from"]
    assert record["config_hash"] == short.config_hash() and record["stages_done"] == ["stage1"]
    assert str(tmp_path) not in json.dumps(m)  # no path of the checkpoint


def test_a_resume_of_an_init_from_run_needs_the_same_start(tmp_path):
    cfg = small_oracle_config(steps=(2, 2, 2))
    Trainer(cfg, "blobs", tmp_path / "a", priors=oracle_priors(cfg), progress=False).run()
    stage1 = tmp_path / "a" / "ckpt" / "stage1.pt"
    out = tmp_path / "b"
    Trainer(cfg, "blobs", out, priors=oracle_priors(cfg), progress=False).run(init_from=stage1, stop_after=3)
    assert ckpt.load(out / "ckpt" / "last.pt")["init_from"]["stages_done"] == ["stage1"]
    with pytest.raises(ckpt.CheckpointMismatch, match="started from checkpoint sha256 .* there, from scratch here"):
        Trainer(cfg, "blobs", out, priors=oracle_priors(cfg), progress=False).run(resume=True)
    m = Trainer(cfg, "blobs", out, priors=oracle_priors(cfg), progress=False).run(resume=True, init_from=stage1)
    assert m["request"]["init_from"]["stages_done"] == ["stage1"]
    assert [r["stage"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines())][0] == "stage2"

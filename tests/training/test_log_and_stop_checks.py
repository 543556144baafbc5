"""`log.jsonl` holds each step of the run once, whatever an earlier, stopped run left in the folder; and a run stops
cleanly where `interrupt_check`'s check raises (how `fourdfy generate` stops on a signal whose raise was lost)."""

import json

import pytest

from method.training import checkpoint as ckpt
from method.training.trainer import Trainer, interrupt_check

from oracle_setup import oracle_priors, small_oracle_config


def _keys(run):
    return [(r["stage"], r["step"]) for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())]


def _every_step(cfg):
    return [(s.name, k) for s in cfg.stages for k in range(1, s.steps + 1)]  # log_every=1


def test_a_run_after_one_stopped_before_its_first_checkpoint_logs_each_step_once(tmp_path):
    """Stopped after 2 steps (checkpoints every 3): no checkpoint, so the next run starts anew in the folder; it
    appended to the dead run's lines (stage1 steps 1-2 twice)."""
    cfg = small_oracle_config()
    run = tmp_path / "run"
    Trainer(cfg, "blobs", run, priors=oracle_priors(), progress=False).run(stop_after=2)
    assert _keys(run) == [("stage1", 1), ("stage1", 2)] and not (run / "ckpt" / "last.pt").exists()
    Trainer(cfg, "blobs", run, priors=oracle_priors(), progress=False).run()
    assert _keys(run) == _every_step(cfg)


def test_a_dead_run_then_a_killed_one_then_a_resume_log_each_step_once(tmp_path):
    """The reviewer's sequence: a run dies before its first checkpoint, the next is killed with steps logged past its
    last checkpoint, the resume finishes it."""
    cfg = small_oracle_config()
    run = tmp_path / "run"
    Trainer(cfg, "blobs", run, priors=oracle_priors(), progress=False).run(stop_after=2)
    # 13 steps: stage-3 steps 4-5 are logged after the checkpoint at stage-3 step 3
    Trainer(cfg, "blobs", run, priors=oracle_priors(), progress=False).run(stop_after=13)
    assert ckpt.load(run / "ckpt" / "last.pt")["state"]["step"] == 3 and _keys(run)[-1] == ("stage3", 5)
    manifest = Trainer(cfg, "blobs", run, priors=oracle_priors(), progress=False).run(resume=True)
    assert _keys(run) == _every_step(cfg)
    assert manifest["resumes"][0]["redone_to"] == ["stage3", 5]


def test_a_run_started_from_another_runs_stage_checkpoint_logs_only_its_own_steps(tmp_path):
    """--init-from starts a new run too: a log left in its folder is not this run's."""
    cfg = small_oracle_config()
    Trainer(cfg, "blobs", tmp_path / "a", priors=oracle_priors(), progress=False).run()
    run = tmp_path / "b"
    Trainer(cfg, "blobs", run, priors=oracle_priors(), progress=False).run(stop_after=2)
    Trainer(cfg, "blobs", run, priors=oracle_priors(), progress=False).run(init_from=tmp_path / "a" / "ckpt" / "stage2.pt")
    assert _keys(run) == [k for k in _every_step(cfg) if k[0] == "stage3"]


class Stop(KeyboardInterrupt):
    pass


def test_a_check_that_raises_before_training_stops_the_run_with_nothing_trained(tmp_path):
    """Raised at the first safe point (before anything is loaded): no step, no checkpoint."""
    calls = []

    def check():
        calls.append(1)
        raise Stop

    run = tmp_path / "run"
    with interrupt_check(check), pytest.raises(Stop):
        Trainer(small_oracle_config(), "blobs", run, priors=oracle_priors(), progress=False).run()
    assert calls == [1]
    assert not (run / "ckpt").exists() and not (run / "log.jsonl").exists()


def test_a_check_stops_the_run_before_the_next_step_and_the_run_resumes(tmp_path):
    """The check runs before every step: stopping at step 6 leaves 5 steps logged and the stage-1 checkpoint; the
    check is gone after its block, and a resume ends with the uninterrupted run's parameters."""
    cfg = small_oracle_config()
    run = tmp_path / "run"
    trainer = Trainer(cfg, "blobs", run, priors=oracle_priors(), progress=False)
    real_step, trained = trainer.train_step, []
    trainer.train_step = lambda *args: (trained.append(args), real_step(*args))[1]

    def check():
        if len(trained) == 5:
            raise Stop

    with interrupt_check(check), pytest.raises(Stop):
        trainer.run()
    assert _keys(run) == _every_step(cfg)[:5]
    assert ckpt.load(run / "ckpt" / "last.pt")["state"]["stage_index"] == 1
    Trainer(cfg, "blobs", run, priors=oracle_priors(), progress=False).run(resume=True)
    Trainer(cfg, "blobs", tmp_path / "full", priors=oracle_priors(), progress=False).run()
    a, b = ckpt.load(run / "ckpt" / "last.pt")["field"], ckpt.load(tmp_path / "full" / "ckpt" / "last.pt")["field"]
    assert all((a[k] == b[k]).all() for k in a)

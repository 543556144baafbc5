"""The oracle fails on a wrong trainer: each mutant below (a config change or a monkeypatch, never a
switch in production code) must fail the check that claims to catch it, while the unmutated run at
the same small size passes that check. Small runs: the structural checks are exact at any size."""

import dataclasses

import pytest

from method.oracle import OracleGuidance
from method.oracle.check import oracle_config, run_oracle
from method.training.config import replace

STEPS = (12, 8, 8)
SIZE = 12
EVAL_SIZE = 16


def small_config():
    return oracle_config(STEPS, size=SIZE)


def run(tmp_path, cfg):
    return run_oracle(tmp_path, cfg=cfg, progress=False, eval_size=EVAL_SIZE)


def _static_trains_dynamic(cfg, monkeypatch):
    return replace(cfg, static_groups=("static", "dynamic", "mlp", "background"))


def _stage3_static_lr_kept(cfg, monkeypatch):
    return replace(cfg, **{"stages.stage3.static_lr_scale": 1.0})


def _issue_mutant(cfg, monkeypatch):
    """The mutant that passed the old oracle with better PSNRs: both of the above."""
    return _stage3_static_lr_kept(_static_trains_dynamic(cfg, monkeypatch), monkeypatch)


def _priors_swapped(cfg, monkeypatch):
    """3D draws go to the IMG prior and IMG draws to the 3D prior."""
    return dataclasses.replace(cfg, guidance={**cfg.guidance, "3d": cfg.guidance["img"], "img": cfg.guidance["3d"]})


def _step_not_passed(cfg, monkeypatch):
    """The trainer calls the priors with step 0: the step-dependent schedules never move."""
    call = OracleGuidance.__call__
    monkeypatch.setattr(OracleGuidance, "__call__", lambda self, rgb, cams, prompt, step, **kw:
                        call(self, rgb, cams, prompt, 0, **kw))
    return cfg


def _stage_not_passed(cfg, monkeypatch):
    """The trainer does not tell the priors the stage: the stage-1 ramp runs in every stage."""
    call = OracleGuidance.__call__
    monkeypatch.setattr(OracleGuidance, "__call__", lambda self, rgb, cams, prompt, step, **kw:
                        call(self, rgb, cams, prompt, step, **{**kw, "stage": None}))
    return cfg


def _video_skips_dynamic(cfg, monkeypatch):
    """Video updates do not train the dynamic grid."""
    return replace(cfg, video_groups=("static", "mlp", "background"))


MUTANTS = {  # name: (mutation, the checks that must fail)
    "static updates train the dynamic grid": (_static_trains_dynamic, ("stages12_dynamic_change",)),
    "stage-3 static LR change dropped": (_stage3_static_lr_kept,
                                         ("static_lr_log_errors", "stage3_static_change_ratio")),
    "both (the issue's mutant)": (_issue_mutant, ("stages12_dynamic_change", "static_lr_log_errors")),
    "P_3D / P_IMG priors swapped": (_priors_swapped, ("schedule_violations",)),
    "step not passed to the priors": (_step_not_passed, ("schedule_violations",)),
    "stage not passed to the priors": (_stage_not_passed, ("schedule_violations",)),
    "video updates skip the dynamic grid": (_video_skips_dynamic, ("stage3_dynamic_change",)),
}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    return run(tmp_path_factory.mktemp("baseline"), small_config())


def test_unmutated_small_run_passes_every_check_the_mutants_target(baseline):
    for name, (_, checks) in MUTANTS.items():
        for check in checks:
            assert baseline["passed"][check], (name, check, baseline[check])
    assert baseline["schedule_draws_checked"] == sum(STEPS)


@pytest.mark.parametrize("name", list(MUTANTS))
def test_oracle_fails_on_mutant(name, tmp_path, monkeypatch, baseline):
    mutate, checks = MUTANTS[name]
    metrics = run(tmp_path, mutate(small_config(), monkeypatch))
    for check in checks:
        assert not metrics["passed"][check], (name, check, metrics[check], baseline[check])

"""A method named in a generate block and under `videos:` is refused by the DVC `methods` stage and by `fourdfy sweep
--params` (before any job) with the same words (`pipelines.stages.trained_and_imported`): the fix depends on whether
the method can be trained at all, not on which command found the mistake."""

import pytest
import yaml
from typer.testing import CliRunner

from pipelines import stages
from pipelines.cli import app

runner = CliRunner()
MAV3D_VIDEOS = {"folder": "data/videos/mav3d", "trajectory": "orbit"}


def _params(tmp_path, methods, extra=(), videos=(), overrides=None):
    params = {"seed": 0, "profile": "tiny",
              "generate": {"methods": list(methods), "prompts": ["a_panda_dancing"],
                           "extra": {"methods": list(extra), "prompts": ["a_cat_singing"] if extra else []}},
              "videos": {"mav3d": MAV3D_VIDEOS, **{m: {"folder": f"data/videos/{m}", "trajectory": "orbit"}
                                                   for m in videos}},
              "overrides": {**{str(m): {} for m in [*methods, *extra]}, **(overrides or {})}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _stage_error(params, out, capsys):
    with pytest.raises(SystemExit) as exit_:
        stages.main(["methods", "--params", str(params), "--out", str(out)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1, lines
    return lines[0]


def _sweep_error(params, runs):
    res = runner.invoke(app, ["sweep", "--params", str(params), "--runs", str(runs), "--dry-run"])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert not runs.exists()  # refused before planning a job
    return lines[0]


CASES = {
    # trainable, in each block: keep it in one place
    "trained": dict(methods=["4dfy", "wo_hybrid"], videos=["wo_hybrid"]),
    "extra": dict(methods=["4dfy"], extra=["wo_hybrid"], videos=["wo_hybrid"]),
    # a variant of params.yaml (the sweep checks before registering variants: it must still know it is trainable)
    "variant": dict(methods=["4dfy", "v03"], videos=["v03"],
                    overrides={"v03": {"base": "4dfy", "weights.sds_video": 0.3}}),
    # videos only: registered as such, or a name of its own for imported videos
    "videos_only": dict(methods=["4dfy", "mav3d"]),
    "own_name": dict(methods=["4dfy", "myvid"], videos=["myvid"]),
    "both_blocks": dict(methods=["4dfy", "hexplane"], extra=["mav3d"], videos=["hexplane"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_stage_and_the_sweep_print_the_same_line_for_the_same_params(tmp_path, capsys, registry, case):
    params = _params(tmp_path, **CASES[case])
    swept = _sweep_error(params, tmp_path / "runs")
    staged = _stage_error(params, tmp_path / "methods", capsys)
    assert swept == staged
    assert staged.startswith(f"error: {params}: generate.") and " names " in staged
    assert not (tmp_path / "methods").exists()


def test_the_shared_line_names_the_fix_for_a_trainable_and_a_videos_only_method(tmp_path, capsys, registry):
    line = _stage_error(_params(tmp_path, **CASES["both_blocks"]), tmp_path / "methods", capsys)
    assert ("generate.methods names 1 method the pipeline cannot train: method 'hexplane' is both in "
            "generate.methods (trained) and under `videos:` (imported), which gives it two artifacts per prompt; keep "
            "it in one of the two places: remove it from generate.methods to score its imported videos, or remove "
            "its `videos:` entry to train it") in line
    # MAV3D is under `videos:` already: not "list it under `videos:`", which it is
    assert ("generate.extra.methods names 1 method the pipeline cannot train: method 'mav3d' is a `videos:` method "
            "(videos only) and cannot be trained: remove it from generate.extra.methods") in line
    assert "list it under `videos:`" not in line


def test_a_videos_only_method_without_a_videos_entry_is_still_told_to_get_one(tmp_path, capsys):
    params = _params(tmp_path, ["4dfy", "mav3d"])
    raw = yaml.safe_load(params.read_text())
    del raw["videos"]["mav3d"]
    params.write_text(yaml.safe_dump(raw))
    line = _stage_error(params, tmp_path / "methods", capsys)
    assert "method 'mav3d' cannot be trained here (videos only: list it under `videos:` instead" in line
    assert "fourdfy import-videos SRC --method mav3d --out DIR" in line


def test_the_sweep_checks_nothing_more_than_the_stage_for_valid_params(tmp_path, monkeypatch):
    """No conflict: the shared check lets the sweep plan (dry run) as before."""
    params = _params(tmp_path, ["4dfy"], videos=["other_system"])
    monkeypatch.chdir(tmp_path)  # `videos:` folders are read from the current folder, and must exist (as the stage's)
    for name in ("mav3d", "other_system"):
        (tmp_path / "data" / "videos" / name).mkdir(parents=True)
    res = runner.invoke(app, ["sweep", "--params", str(params), "--runs", str(tmp_path / "runs"), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "4dfy-a_panda_dancing" in res.output

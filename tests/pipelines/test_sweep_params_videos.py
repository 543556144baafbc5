"""`sweep --params` refuses the `videos:` entries the DVC `methods` stage refuses (a folder that does not exist, an
unknown trajectory), in the same words and before submitting anything: the pipeline the sweep feeds stops at them,
and the sweep used to train for hours first. A relative folder is read from the current folder, as the stage reads
it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app

SLUG = "a_panda_dancing"
runner = CliRunner()


def _params(path: Path, videos: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"profile": "tiny", "seed": 0,
                                    "generate": {"methods": ["4dfy"], "prompts": [SLUG]},
                                    "overrides": {"4dfy": {}}, "videos": videos}))
    return path


def _sweep(params, runs, *extra):
    return runner.invoke(app, ["sweep", "--params", str(params), "--runs", str(runs), "--max-steps", "1", *extra])


def test_a_missing_videos_folder_and_an_unknown_trajectory_are_refused_in_the_methods_stages_words(tmp_path,
                                                                                               monkeypatch):
    from pipelines.stages import write_methods

    monkeypatch.chdir(tmp_path)  # as DVC runs the methods stage: in params.yaml's folder
    (tmp_path / "data" / "theirs").mkdir(parents=True)
    params = _params(Path("params.yaml"), {"mine": {"folder": "data/mine", "trajectory": "orbit"},
                                           "theirs": {"folder": "data/theirs", "trajectory": "orbitt"}})
    with pytest.raises(ValueError) as stage:  # what `dvc repro` says of this params.yaml
        write_methods(params, Path("methods"))
    assert not Path("methods").exists()  # refused before anything is written
    assert "videos.mine.folder: data/mine does not exist" in str(stage.value)
    assert "videos.theirs.trajectory: 'orbitt' is not a known camera path (did you mean 'orbit'?)" in str(stage.value)
    for extra in ([], ["--dry-run"]):
        res = _sweep(params, "runs", *extra)
        assert res.exit_code == 2, res.output
        assert res.output.strip() == f"error: {stage.value}"  # one line, the stage's own
    assert not Path("runs").exists()  # nothing planned on disk, nothing submitted

    (tmp_path / "data" / "mine").mkdir()  # as the error says: then both the stage and the sweep take it
    params = _params(params, {"mine": {"folder": "data/mine", "trajectory": "orbit"},
                              "theirs": {"folder": "data/theirs", "trajectory": "orbit"}})
    write_methods(params, Path("methods"))
    res = _sweep(params, "runs", "--dry-run")
    assert res.exit_code == 0 and res.output.splitlines()[1].startswith(f"4dfy-{SLUG}"), res.output

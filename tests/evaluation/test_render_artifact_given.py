"""`fourdfy render` given an evaluation artifact folder (its manifest.json has the run's file name) instead of a run
folder: one error line saying which kind of folder it is and what to give, not which run key its manifest lacks."""

from __future__ import annotations

import pytest
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from evaluation.artifacts import write_artifact
from evaluation.runs import RunError, read_run_manifest
from pipelines.cli import app

runner = CliRunner()
GIVE = ("not a training run folder: give the run folder `fourdfy generate` wrote (manifest.json + ckpt/last.pt, "
        "e.g. runs/x); an artifact's video is what `fourdfy clipscore`, `figure` and `survey build` read")


def test_an_imported_artifact_folder_is_named_as_such(tmp_path):
    art = write_artifact(tmp_path / "imported", "mav3d", "A panda dancing.", make_frames(2, 16, 16),
                         source={"kind": "import", "file": "a_panda_dancing.mp4", "sha256": "0" * 64},
                         trajectory="unknown", fps=15.0)
    res = runner.invoke(app, ["render", str(art.folder), "--out", str(tmp_path / "eval")])
    assert res.exit_code == 2 and error_lines(res) == [
        f"error: {art.folder} is an evaluation artifact folder (video.mp4 + manifest.json, written by "
        f"`fourdfy import-videos`), {GIVE}"]
    assert not (tmp_path / "eval").exists()


def test_a_rendered_artifact_names_its_run(tmp_path):
    art = write_artifact(tmp_path / "artifacts", "4dfy", "A panda dancing.", make_frames(2, 16, 16),
                         source={"kind": "render", "run": "a_panda_dancing",
                                 "run_path": "tiny/4dfy/a_panda_dancing", "config_hash": "abc"},
                         trajectory="orbit", fps=15.0)
    with pytest.raises(RunError) as err:
        read_run_manifest(art.folder)
    assert str(err.value) == (f"{art.folder} is an evaluation artifact folder (video.mp4 + manifest.json, written "
                              f"by `fourdfy render` from run tiny/4dfy/a_panda_dancing), {GIVE}")

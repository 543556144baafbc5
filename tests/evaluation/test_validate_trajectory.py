"""`fourdfy validate-artifacts` flags a manifest whose `trajectory` is no known camera path (an earlier import-videos
recorded any `--trajectory`, `orbitt` included; or an edit), naming the file, the value and the known ones, with the
check `import-videos --trajectory` makes (`importer.trajectory_problem`); it used to call such a folder ok."""

from __future__ import annotations

import json

import pytest
from eval_helpers import make_frames
from typer.testing import CliRunner

from evaluation.artifacts import write_artifact
from evaluation.importer import TRAJECTORIES
from pipelines.cli import app

runner = CliRunner()
SRC = {"kind": "import", "file": "x.mp4", "sha256": "0" * 64}


def _write(root, method, trajectory):
    art = write_artifact(root, method, "A panda dancing.", make_frames(2, 16, 16), source=SRC, trajectory="orbit",
                         fps=15)
    path = art.folder / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "trajectory": trajectory}))  # as recorded then
    return art


def test_an_unknown_trajectory_is_bad_and_named_with_the_known_ones(tmp_path):
    bad = _write(tmp_path, "mav3d", "orbitt")
    other = _write(tmp_path, "4dfy", "spiral")
    good = _write(tmp_path, "hexplane", "unknown")
    res = runner.invoke(app, ["validate-artifacts", str(tmp_path)])
    assert res.exit_code == 1, res.output
    known = "give one of orbit, motion_smooth, unknown (unknown: the videos' camera path is not known)"
    assert res.stdout.splitlines() == [
        f"BAD {other.folder}: manifest.json: trajectory 'spiral' is not a known camera path; {known}",
        f"ok  {good.folder}",
        f"BAD {bad.folder}: manifest.json: trajectory 'orbitt' is not a known camera path (did you mean 'orbit'?); "
        f"{known}"]


@pytest.mark.parametrize("trajectory", TRAJECTORIES)
def test_each_known_trajectory_is_ok(tmp_path, trajectory):
    art = _write(tmp_path, "mav3d", trajectory)
    res = runner.invoke(app, ["validate-artifacts", str(tmp_path)])
    assert res.exit_code == 0 and res.stdout.splitlines() == [f"ok  {art.folder}"], res.output


def test_the_trajectory_is_listed_beside_the_folders_other_problems(tmp_path):
    art = _write(tmp_path, "mav3d", "Orbit")
    (art.folder / "video.mp4").unlink()
    res = runner.invoke(app, ["validate-artifacts", str(tmp_path)])
    assert res.exit_code == 1
    assert res.stdout.splitlines() == [
        f"BAD {art.folder}: video.mp4 is missing; manifest.json: trajectory 'Orbit' is not a known camera path (did "
        "you mean 'orbit'?); give one of orbit, motion_smooth, unknown (unknown: the videos' camera path is not known)"]

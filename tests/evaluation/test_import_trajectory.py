"""import-videos --trajectory: a camera path none of `orbit`, `motion_smooth`, `unknown` (a typo, `orbitt`) is
refused before any file is read, with the known ones listed; it was written into every manifest without a word."""

from __future__ import annotations

import json

import pytest
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from evaluation.importer import TRAJECTORIES, VideoImportError, import_videos
from evaluation.video import encode_video
from pipelines.cli import app

runner = CliRunner()


@pytest.fixture()
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    encode_video(d / "a_panda_dancing.mp4", make_frames(4, 16, 16), fps=15)
    return d


def test_a_mistyped_trajectory_is_refused_before_anything_is_written(src, tmp_path):
    out = tmp_path / "artifacts"
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(out),
                              "--trajectory", "orbitt"])
    assert res.exit_code == 2, res.output
    assert error_lines(res) == ["error: --trajectory 'orbitt' is not a known camera path (did you mean 'orbit'?); "
                                "give one of orbit, motion_smooth, unknown (unknown: the videos' camera path is not "
                                "known)"], res.output
    assert not out.exists()
    with pytest.raises(VideoImportError, match="--trajectory 'Orbit' is not a known camera path"):
        import_videos(src, "mav3d", out, trajectory="Orbit")
    assert not out.exists()


@pytest.mark.parametrize("trajectory", TRAJECTORIES)
def test_each_known_trajectory_is_recorded(src, tmp_path, trajectory):
    out = tmp_path / "artifacts"
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(out),
                              "--trajectory", trajectory])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "mav3d" / "a_panda_dancing" / "manifest.json").read_text())
    assert manifest["trajectory"] == trajectory

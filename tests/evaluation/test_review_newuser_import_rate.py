"""Imported videos are recorded at the renders' frame rate (README's command, the pipeline's `import` stage), and an
interrupted import says that the same command finishes it (not the generic advice to add --overwrite)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import yaml
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

import evaluation.artifacts
from evaluation.video import encode_video
from pipelines.cli import app
from pipelines.commands.evaluate import render
from pipelines.interrupts import Terminated

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _render_fps_default() -> float:
    return inspect.signature(render).parameters["fps"].default.default


def test_the_pipeline_imports_at_the_rate_it_renders():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    # render's own default: passing it changes no render output
    assert params["render"]["fps"] == _render_fps_default() == 15
    for stage in (stages["render"], stages["import"]["do"]):
        assert "--fps ${render.fps}" in " ".join(stage["cmd"].split())
        assert "render.fps" in stage["params"]


def test_the_readmes_import_command_records_the_renders_rate():
    row = next(ln for ln in (ROOT / "README.md").read_text().splitlines() if "fourdfy import-videos DIR" in ln)
    command = re.search(r"`(fourdfy import-videos [^`]*)`", row).group(1).split()
    render_row = next(ln for ln in (ROOT / "README.md").read_text().splitlines() if "`fourdfy render runs/x" in ln)
    assert "--fps" not in render_row  # the renders' rate is render's default
    assert float(command[command.index("--fps") + 1]) == _render_fps_default()
    assert command[command.index("--frames") + 1] == "64" and "--frames 64" in render_row


@pytest.mark.parametrize("interrupt, code, stopped", [(KeyboardInterrupt, 130, "interrupted"),
                                                      (Terminated, 143, "terminated (SIGTERM)")])
def test_an_interrupted_import_says_the_same_command_finishes_it(tmp_path, monkeypatch, interrupt, code, stopped):
    src, out = tmp_path / "src", tmp_path / "art"
    src.mkdir()
    for i, slug in enumerate(("a_dog_riding_a_skateboard", "a_panda_dancing")):
        encode_video(src / f"{slug}.mp4", make_frames(4, 16, 16, seed=i), fps=15)
    # copied as they are (H.264), so each copy is decoded to check it inside its temporary folder
    args = ["import-videos", str(src), "--method", "mav3d", "--out", str(out)]
    real, calls = evaluation.artifacts.decode_video, []

    def stopped_in_the_second(path):  # write_artifact's check of the second video, inside its temporary folder
        calls.append(path)
        if len(calls) == 2:
            raise interrupt()
        return real(path)

    monkeypatch.setattr(evaluation.artifacts, "decode_video", stopped_in_the_second)
    res = runner.invoke(app, args)
    monkeypatch.undo()
    assert res.exit_code == code, res.output
    (line,) = error_lines(res)
    assert line.startswith(f"error: {stopped}; every artifact folder it wrote is whole")
    assert "run the same command again to finish the import" in line and "--overwrite" not in line
    # and so it does: the same command, no --overwrite
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and error_lines(res) == [], res.output
    assert sorted(p.name for p in (out / "mav3d").iterdir()) == ["a_dog_riding_a_skateboard", "a_panda_dancing"]

"""`fourdfy render` on a folder without manifest.json says what the folder is: a run being trained now, a run that
stopped before the end (ckpt/ but no manifest: continue it with --resume), or no run at all. It used to say
"no manifest.json (not a finished run; ...)" for all three."""

from __future__ import annotations

import pytest
from eval_helpers import error_lines, write_fake_run
from typer.testing import CliRunner

from evaluation.runs import RunError, is_being_trained, read_run_manifest
from pipelines.cli import app
from pipelines.generate import RunInUse, run_folder_lock

runner = CliRunner()


def _render(folder, out):
    return runner.invoke(app, ["render", str(folder), "--out", str(out), "--frames", "2", "--size", "8", "--device",
                               "cpu", "--no-progress"])


@pytest.fixture
def unfinished_run(tmp_path):
    """A run folder as `fourdfy generate` leaves it when stopped mid-training: checkpoints, no manifest yet."""
    run = write_fake_run(tmp_path / "runs" / "x")
    (run / "manifest.json").unlink()
    return run


def test_a_stopped_run_is_named_unfinished_with_the_resume_to_continue_it(unfinished_run, tmp_path):
    res = _render(unfinished_run, tmp_path / "art")
    assert res.exit_code == 2
    assert error_lines(res) == [
        f"error: {unfinished_run} is an unfinished run: it has ckpt/last.pt but has no manifest.json (`fourdfy "
        "generate` writes it when the training ends) and no process is training it, so it stopped before the end; "
        f"continue it with the command that started it plus --resume (`fourdfy generate ... --out {unfinished_run} "
        "--resume`), then render it"]
    assert not (tmp_path / "art").exists()
    # the probe took no lasting lock: a generate may resume the run at once
    with run_folder_lock(unfinished_run):
        pass


def test_a_run_being_trained_is_named_so(unfinished_run, tmp_path):
    """The lock `generate` holds while it trains (pipelines.generate.run_folder_lock) is what the render sees."""
    with run_folder_lock(unfinished_run):
        assert is_being_trained(unfinished_run)
        (line,) = error_lines(_render(unfinished_run, tmp_path / "art"))
        assert line == (f"error: {unfinished_run} is still being trained (another process holds the run folder) and "
                        "has no manifest.json yet, which `fourdfy generate` writes when the training ends: render it "
                        "once the run has finished")
        # before its first checkpoint too (stage 1 of a run just started)
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        with run_folder_lock(fresh):
            with pytest.raises(RunError, match="is still being trained"):
                read_run_manifest(fresh)
        # and the probe left the training's lock as it was
        with pytest.raises(RunInUse):
            with run_folder_lock(unfinished_run):
                pass
    assert not is_being_trained(unfinished_run)
    assert "is an unfinished run" in error_lines(_render(unfinished_run, tmp_path / "art"))[0]


def test_a_folder_that_is_no_run_is_named_so(tmp_path):
    for folder in (tmp_path / "empty", tmp_path / "videos"):
        folder.mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(b"\0")
    for folder in (tmp_path / "empty", tmp_path / "videos"):
        (line,) = error_lines(_render(folder, tmp_path / "art"))
        assert line == (f"error: {folder}: no manifest.json and no ckpt/: not a run folder of `fourdfy generate` (a "
                        "finished run holds both); give a run folder, e.g. runs/x")


def test_a_run_stopped_before_its_last_checkpoint_is_unfinished_too(tmp_path):
    """ckpt/ with a stage checkpoint only (last.pt deleted or not yet written): still a run of generate, to resume."""
    run = write_fake_run(tmp_path / "x")
    (run / "manifest.json").unlink()
    (run / "ckpt" / "last.pt").rename(run / "ckpt" / "stage1.pt")
    with pytest.raises(RunError) as err:
        read_run_manifest(run)
    assert str(err.value).startswith(f"{run} is an unfinished run: it has no manifest.json")
    assert f"--out {run} --resume" in str(err.value)

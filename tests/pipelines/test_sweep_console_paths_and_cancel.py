"""A failed sweep job's hint on the console is a command that works from where the sweep was started (its paths
were relative to <runs>/<profile>, as sweep.json keeps them, and `fourdfy generate ...` left the options out), and a
local job a Ctrl-C stopped has its log copied to sweep/<job>.{out,err}, ending in one `error: interrupted` line
instead of a KeyboardInterrupt traceback."""

from __future__ import annotations

import json
import shlex
import signal
from pathlib import Path

from typer.testing import CliRunner

from pipelines.cli import app
from run_helpers import stop_sweep_mid_training

SLUG = "a_panda_dancing"
runner = CliRunner()


def test_a_failed_jobs_resume_hint_is_a_whole_command_usable_from_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["sweep", "--methods", "4dfy", "--prompts", SLUG, "--runs", "sw1", "--max-steps", "1",
            "--set", "preview_frames=0", "--set", "heartbeat_s=0"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    run = Path("sw1") / "tiny" / "4dfy" / SLUG
    (run / "manifest.json").unlink()  # unfinished, its last.pt truncated: the job resumes and fails on it
    last = run / "ckpt" / "last.pt"
    last.write_bytes(last.read_bytes()[:100])
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    stage = sorted(p.name for p in (run / "ckpt").glob("stage*.pt"))[-1]
    command = (f"fourdfy generate --method 4dfy --prompt {SLUG} --profile tiny --out {run} --set preview_frames=0 "
               f"--set heartbeat_s=0 --max-steps 1 --resume-from {run / 'ckpt' / stage}")
    assert f"continue from the latest with `{command}`" in res.stdout, res.stdout
    # sweep.json as before: relative to <runs>/<profile>, no absolute path
    error = json.loads((run.parents[1] / "sweep" / "sweep.json").read_text())["jobs"][0]["error"]
    assert f"`fourdfy generate ... --resume-from 4dfy/{SLUG}/ckpt/{stage}`" in error, error
    assert str(tmp_path) not in error
    again = runner.invoke(app, [*shlex.split(command)[1:], "--no-progress"])
    assert again.exit_code == 0, again.output  # the command does what it says, from here
    assert json.loads((run / "manifest.json").read_text())["method"] == "4dfy"


def test_a_ctrl_c_sweep_copies_the_stopped_jobs_logs_ending_in_one_error_line(tmp_path):
    runs = tmp_path / "runs"
    _, returncode, out, err = stop_sweep_mid_training(runs, SLUG, signal.SIGINT)
    assert returncode == 130, out + err
    assert err.strip().splitlines()[-1].startswith("error: sweep interrupted: its local jobs were stopped"), err
    logs = runs / "tiny" / "sweep"
    assert (logs / f"4dfy-{SLUG}.out").is_file()
    job_err = (logs / f"4dfy-{SLUG}.err").read_text()
    assert "Traceback" not in job_err and "KeyboardInterrupt" not in job_err, job_err[-3000:]
    assert [line for line in job_err.splitlines() if line.startswith("error:")] == [
        "error: interrupted; run the same sweep again to resume the run from its last checkpoint (or to start it, "
        "if it wrote none yet)"], job_err[-3000:]

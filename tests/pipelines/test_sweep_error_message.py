"""A failed sweep job's error in the summary and sweep.json is the error's own line with the rest of its message,
not only the message's last line: a missing prior's closing hint named neither the model nor the key."""

import json

from submitit.core.utils import FailedJobError
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.sweep import _error_line

SLUG = "a_panda_dancing"
RULE = "-" * 22


def test_a_missing_prior_is_named_in_the_sweep_summary(tmp_path):
    runs = tmp_path / "runs"
    res = CliRunner().invoke(app, ["sweep", "--methods", "4dfy", "--prompts", SLUG, "--runs", str(runs),
                                   "--max-steps", "1", "--set", "guidance.video.model=/nope"])
    assert res.exit_code == 2
    job = json.loads((runs / "tiny" / "sweep" / "sweep.json").read_text())["jobs"][0]
    assert job["state"] == "failed"
    assert job["error"].startswith("ModelNotFoundError: ") and "guidance.video.model" in job["error"] \
        and "/nope" in job["error"], job["error"]
    assert "guidance.video.model" in res.output


def test_the_error_line_is_the_exceptions_line_and_what_follows_it():
    trace = (f"job failed\n{RULE}\nTraceback (most recent call last):\n  File \"a.py\", line 1, in f\n"
             "ValueError: inner\n\nThe above exception was the direct cause of the following exception:\n\n"
             "Traceback (most recent call last):\n  File \"b.py\", line 2, in g\n"
             "method.x.ModelNotFoundError: Zeroscope (guidance.video.model): not found.\nNote: give a folder.\n"
             f"With HF_HUB_OFFLINE=1 only local folders are read.\n{RULE}\n")
    assert _error_line(FailedJobError(trace), "FAILED") == (
        "failed", "ModelNotFoundError: Zeroscope (guidance.video.model): not found. Note: give a folder. "
                  "With HF_HUB_OFFLINE=1 only local folders are read.")
    one = f"x\n{RULE}\nTraceback (most recent call last):\npipelines.generate.DamagedManifest: a/b: damaged\n{RULE}"
    assert _error_line(FailedJobError(one), "FAILED") == ("failed", "DamagedManifest: a/b: damaged")

"""One run folder whose manifest.json is damaged (truncated, overwritten) used to stop the whole sweep before any job,
with generate's advice (`--resume`, which a sweep has not). Now that job alone is reported as failed and not
submitted, naming the file, what is wrong with it and how a sweep goes on; every other job runs, and the sweep still
exits with its error."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pipelines.cli import app

SLUG = "a_panda_dancing"
SETS = {"preview_frames": "0", "heartbeat_s": "0"}
runner = CliRunner()


def _args(runs, methods: str) -> list[str]:
    args = ["sweep", "--methods", methods, "--prompts", SLUG, "--runs", str(runs), "--max-steps", "1"]
    for key, value in SETS.items():
        args += ["--set", f"{key}={value}"]
    return args


def _jobs(runs) -> dict[str, dict]:
    summary = json.loads((runs / "tiny" / "sweep" / "sweep.json").read_text())
    return {j["name"]: j for j in summary["jobs"]}


def test_a_truncated_manifest_fails_its_job_alone_and_the_advice_resumes_it(tmp_path):
    """A finished 4dfy run, its manifest cut in half; 4dfy leads wo_hybrid (they share stages). The sweep reports
    4dfy as failed without submitting it, trains wo_hybrid all the same, keeps every file of the damaged run, and
    exits 2; removing the manifest as the error says, the same command resumes the run from its final checkpoint."""
    from pipelines.generate import build_config, generate

    runs = tmp_path / "runs"
    run = runs / "tiny" / "4dfy" / SLUG
    generate(build_config("tiny", "4dfy", sets=SETS, max_steps=1), SLUG, run, resume="auto", progress=False,
             quiet=True)
    manifest = run / "manifest.json"
    manifest.write_text(manifest.read_text()[:200])  # truncated mid-way
    damaged, last = manifest.read_bytes(), (run / "ckpt" / "last.pt").read_bytes()

    dry = runner.invoke(app, [*_args(runs, "4dfy,wo_hybrid"), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    row = next(line for line in dry.output.splitlines() if line.startswith(f"4dfy-{SLUG}"))
    assert row.endswith("manifest.json damaged: not submitted, reported as failed (the sweep says how to go on)"), row

    res = runner.invoke(app, _args(runs, "4dfy,wo_hybrid"))
    assert res.exit_code == 2, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith("sweep: 2 runs (0 already finished, 1 with a damaged manifest.json, not submitted)")
    why = f"4dfy/{SLUG}/manifest.json is damaged (not valid JSON: "
    # the console names the run as the sweep was given it, usable from where it was started; sweep.json relative
    assert lines[1].startswith(f"not submitted 4dfy-{SLUG}: {runs / 'tiny'}/{why}"), lines[1]
    assert f"remove {runs / 'tiny'}/4dfy/{SLUG}/manifest.json and run" in lines[1], lines[1]
    assert [line.split()[1] for line in lines if line.startswith("submitted ")] == [f"wo_hybrid-{SLUG}"]
    jobs = _jobs(runs)
    assert jobs[f"4dfy-{SLUG}"]["state"] == "failed"
    error = jobs[f"4dfy-{SLUG}"]["error"]
    assert error.startswith(f"not submitted: {why}"), error
    assert error.endswith(f"remove 4dfy/{SLUG}/manifest.json and run the same sweep again to continue from "
                          "ckpt/last.pt; the manifest is written again when the run ends (at once if last.pt is the "
                          "final checkpoint)"), error
    assert "--resume" not in error and str(tmp_path) not in error
    assert jobs[f"wo_hybrid-{SLUG}"]["state"] == "done"  # it waited for its leader, then ran
    assert json.loads((runs / "tiny" / "wo_hybrid" / SLUG / "manifest.json").read_text())["method"] == "wo_hybrid"
    assert manifest.read_bytes() == damaged and (run / "ckpt" / "last.pt").read_bytes() == last  # nothing lost
    assert f"error: 1 of 2 jobs did not finish (4dfy-{SLUG}); the table above says why" in res.stderr

    manifest.unlink()  # what the error says to do
    again = runner.invoke(app, _args(runs, "4dfy,wo_hybrid"))
    assert again.exit_code == 0, again.output
    jobs = _jobs(runs)
    assert (jobs[f"4dfy-{SLUG}"]["state"], jobs[f"4dfy-{SLUG}"]["note"]) == ("done", "resumed an unfinished run")
    assert jobs[f"wo_hybrid-{SLUG}"]["note"] == "already finished (not submitted)"
    assert json.loads(manifest.read_text())["prompt"] == "A panda dancing."


def test_a_damaged_manifest_without_a_checkpoint_says_to_move_the_run_away(tmp_path):
    """No ckpt/last.pt beside the damaged manifest (not UTF-8 here): nothing to continue from, and the error says to
    move the folder away and run the sweep again. Nothing is submitted; the summary is written."""
    runs = tmp_path / "runs"
    run = runs / "tiny" / "4dfy" / SLUG
    run.mkdir(parents=True)
    (run / "manifest.json").write_bytes(b"\xff\xfe{")
    res = runner.invoke(app, _args(runs, "4dfy"))
    assert res.exit_code == 2, res.output
    error = _jobs(runs)[f"4dfy-{SLUG}"]["error"]
    assert error == (f"not submitted: 4dfy/{SLUG}/manifest.json is damaged (not UTF-8 text); there is no ckpt/last.pt "
                     f"beside it to continue from: move 4dfy/{SLUG} away and run the same sweep again to train it")
    assert not [line for line in res.stdout.splitlines() if line.startswith("submitted ")]
    assert not list((runs / "tiny" / "sweep" / "submitit").glob("[0-9]*"))  # no job was started
    assert sorted(p.name for p in run.iterdir()) == ["manifest.json"]


def test_the_console_names_the_damaged_run_as_the_sweep_was_given_it(tmp_path, monkeypatch):
    """`--runs runs` from the current folder: the console's advice names runs/tiny/4dfy/<slug>, which works from
    there (sweep.json keeps paths relative to runs/tiny)."""
    monkeypatch.chdir(tmp_path)
    run = Path("runs") / "tiny" / "4dfy" / SLUG
    run.mkdir(parents=True)
    (run / "manifest.json").write_bytes(b"\xff\xfe{")
    res = runner.invoke(app, _args(Path("runs"), "4dfy"))
    assert res.exit_code == 2, res.output
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("not submitted "))
    assert f"move runs/tiny/4dfy/{SLUG} away and run the same sweep again" in line, line
    assert str(tmp_path) not in line
    assert _jobs(Path("runs"))[f"4dfy-{SLUG}"]["error"].endswith(f"move 4dfy/{SLUG} away and run the same sweep "
                                                                 "again to train it")

"""What `fourdfy generate` and `fourdfy oracle` say where the words used to mislead: a finished run that
`--auto-resume` only checks, a `--resume` refused on a locked folder, a damaged `--init-from`, a `--set-from` file
that is not YAML, and an `oracle --metrics`/`--out` that fails only after minutes of training."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
SLUG = "a_panda_dancing"
QUICK = ["--prompt", SLUG, "--max-steps", "1", "--set", "heartbeat_s=0", "--set", "preview_frames=0",
         "--no-progress"]


def _lines(res):
    return [line for line in res.output.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "run"
    res = runner.invoke(app, ["generate", *QUICK, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "stage1 " in _lines(res)[-1]  # a run trained now lists its stage times
    return out


@pytest.mark.parametrize("mode", ["--auto-resume", "--resume"])
def test_a_finished_run_that_is_only_checked_says_nothing_was_trained(finished_run, mode):
    before = (finished_run / "manifest.json").read_bytes()
    res = runner.invoke(app, ["generate", *QUICK, "--out", str(finished_run), mode])
    assert res.exit_code == 0, res.output  # the DVC stage relies on exit 0
    last = _lines(res)[-1]
    config = json.loads(before)["config_hash"]
    assert last == f"done: {finished_run} was already finished (config {config}); nothing was trained", res.output
    assert (finished_run / "manifest.json").read_bytes() == before


def test_a_resume_refused_on_a_locked_folder_prints_the_refusal_alone(tmp_path):
    """A run that has just started has no checkpoint yet: `--resume` used to print `note: nothing to resume ...
    starting a new run there` and then refuse on the lock."""
    from pipelines.generate import run_folder_lock

    out = tmp_path / "run"
    out.mkdir()
    with run_folder_lock(out):
        res = runner.invoke(app, ["generate", *QUICK, "--out", str(out), "--resume"])
    assert res.exit_code == 2, res.output
    lines = _lines(res)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "is being trained by another process" in lines[0]
    assert "nothing to resume" not in res.output
    assert list(out.iterdir()) == []


def test_a_damaged_init_from_suggests_an_init_from_not_a_resume(finished_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(finished_run, other)
    last = other / "ckpt" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    out = tmp_path / "new"
    res = runner.invoke(app, ["generate", *QUICK, "--out", str(out), "--init-from", str(last)])
    assert res.exit_code == 2, res.output
    line = _lines(res)[-1]
    assert line.startswith(f"error: --init-from: cannot read checkpoint {last}"), line
    assert f"start from one of them with --init-from {other / 'ckpt' / 'stage3.pt'}" in line, line
    assert "--resume-from" not in line
    assert not out.exists()  # refused before the run folder is made
    res = runner.invoke(app, ["generate", *QUICK, "--out", str(out), "--init-from", str(tmp_path / "gone.pt")])
    assert res.exit_code == 2 and "--init-from: checkpoint not found" in res.output and "--resume" not in res.output
    res = runner.invoke(app, ["generate", *QUICK, "--out", str(out), "--init-from", str(other / "ckpt" / "stage1.pt")])
    assert res.exit_code == 0, res.output  # the suggested kind of checkpoint works


def test_set_from_a_file_that_is_not_yaml_is_one_line_naming_it(tmp_path):
    broken = tmp_path / "params.yaml"
    broken.write_text("overrides:\n  4dfy: {a: [1, 2\n  b: 3\n")
    binary = tmp_path / "blob.yaml"
    binary.write_bytes(b"\x00\x01\xac\xff" * 8)
    for path, says in ((broken, f"--set-from: {broken} is not valid YAML: line 3, column 4: expected ',' or ']'"),
                       (binary, f"--set-from: {binary} is not a UTF-8 text file (byte 0xac at offset 2)")):
        res = runner.invoke(app, ["generate", *QUICK, "--out", str(tmp_path / "run"),
                                  "--set-from", f"{path}:overrides.4dfy"])
        assert res.exit_code == 2, res.output
        lines = _lines(res)
        assert len(lines) == 1 and lines[0].startswith("error: " + says), lines
        assert "internal error" not in lines[0] and "<unicode string>" not in lines[0]


def test_oracle_checks_metrics_and_out_before_training(tmp_path, monkeypatch):
    """Each refusal used to come after the training (minutes): now before it, so the oracle never runs."""
    import method.oracle.check as check

    monkeypatch.setattr(check, "run_oracle", lambda *a, **k: pytest.fail("the oracle trained before refusing"))
    folder = tmp_path / "folder.json"
    folder.mkdir()
    foreign = tmp_path / "votes.json"
    foreign.write_text('{"not": "oracle metrics"}\n')
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    cases = ((folder, f"--metrics {folder} is a folder; give a file path"),
             (foreign, f"--metrics {foreign} exists and is not a metrics file of `fourdfy oracle`"),
             (blocker / "m.json", f"{blocker} is a file, not a folder"))
    for metrics, says in cases:
        res = runner.invoke(app, ["oracle", "--out", str(tmp_path / "or"), "--metrics", str(metrics)])
        assert res.exit_code == 2, res.output
        lines = _lines(res)
        assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines
    assert foreign.read_text() == '{"not": "oracle metrics"}\n' and not (tmp_path / "or").exists()

    ran = tmp_path / "ran"  # a run stopped or failed there earlier
    (ran / "ckpt").mkdir(parents=True)
    (ran / "ckpt" / "last.pt").write_bytes(b"")
    res = runner.invoke(app, ["oracle", "--out", str(ran)])
    assert res.exit_code == 2, res.output
    line = _lines(res)[-1]
    assert line == (f"error: --out {ran} already holds a run (ckpt/last.pt); the oracle check always trains from "
                    "scratch: choose another --out, or remove that folder to run the check again"), line


def test_oracle_refuses_an_out_folder_of_another_command_before_training(tmp_path, monkeypatch):
    """It writes metrics.json, manifest.json and log.jsonl: an analysis folder or an artifact lost its own files."""
    import method.oracle.check as check

    trained = []
    monkeypatch.setattr(check, "run_oracle", lambda out, **k: trained.append(out) or pytest.fail("trained"))
    tables = tmp_path / "tables"
    tables.mkdir()
    for name, text in (("metrics.json", '{"theirs": 1}\n'), ("report.md", "# report\n"), ("table2.md", "|a|\n")):
        (tables / name).write_text(text)
    res = runner.invoke(app, ["oracle", "--out", str(tables)])
    assert res.exit_code == 2 and not trained
    assert _lines(res) == [f"error: --out {tables} holds files the oracle check did not write (metrics.json, "
                           "report.md, table2.md); it writes metrics.json, manifest.json, log.jsonl and ckpt/ there: "
                           "give a new or empty folder"], res.output
    assert (tables / "metrics.json").read_text() == '{"theirs": 1}\n'
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = runner.invoke(app, ["oracle", "--out", str(afile)])
    assert res.exit_code == 2 and _lines(res) == [f"error: --out {afile} is a file; give a folder (new or empty) "
                                                  "for the oracle check"], res.output
    # what a stopped check leaves (its log, checkpoints before last.pt), or nothing: it trains there
    from pipelines.commands.generate import check_oracle_out

    stopped = tmp_path / "stopped"
    (stopped / "ckpt").mkdir(parents=True)
    (stopped / "log.jsonl").write_text("{}\n")
    for ok in (stopped, tmp_path / "empty", tmp_path / "new"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        check_oracle_out(ok)  # no error


def test_an_earlier_oracle_metrics_file_or_an_empty_one_may_be_replaced(tmp_path):
    from pipelines.commands.generate import check_oracle_metrics_target

    own = tmp_path / "oracle.json"
    own.write_text(json.dumps({"stage3_psnr": 32.5, "passed": {"stage3_psnr": True},
                               "thresholds": {"stage3_psnr": ">= 28.0"}}))
    empty = tmp_path / "empty.json"
    empty.write_text("")
    for path in (own, empty, tmp_path / "new" / "oracle.json"):
        check_oracle_metrics_target(path)  # no error
    assert not (tmp_path / "new").exists()  # checked, nothing made


def test_oracle_metrics_in_a_read_only_folder_is_refused_before_training(read_only_folder):
    """The user's view: a real read-only folder, the real process (as an unprivileged user under root)."""
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: a read-only folder cannot be made")
        drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        probe = subprocess.run([*drop, sys.executable, "-c", "import pipelines.cli"], capture_output=True,
                               cwd=tempfile.gettempdir(), env={**os.environ, "PYTHONPATH": str(REPO)})
        if probe.returncode != 0:
            pytest.skip("running as root and an unprivileged user cannot run this Python/checkout")
    else:
        drop = []
    ro = read_only_folder
    base = ro.parent
    base.chmod(0o777)  # the unprivileged process writes its --out and HOME there
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(base), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([*drop, sys.executable, "-m", "pipelines.cli", "oracle", "--out", str(base / "or"),
                           "--metrics", str(ro / "oracle.json")], capture_output=True, text=True, env=env,
                          cwd=base, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == (f"error: --metrics: cannot write {ro / 'oracle.json'}: {ro} is not "
                                            "writable; choose another output path or make it writable"), lines
    assert not (base / "or").exists()

"""Arguments of `fourdfy survey build | serve | export` that cannot work are refused with one `error:` line
and exit status 2, before anything is written, created or started: an export over its own database, an
export to a folder, a serve port or address that cannot be listened on, an artifacts root that is missing,
a file or holds no artifact folders."""

import os
import shutil
import socket

import pandas as pd
import pytest
import yaml
from survey_helpers import STUDY, answer_two_questions, free_port, one_error_line
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.survey import store
from userstudy.votes import CRITERIA

runner = CliRunner()


_error_line = one_error_line


@pytest.fixture()
def answered_db(bundle, tmp_path):
    """A SQLite survey database (WAL) under tmp_path/study/ holding one rater's answers to two questions."""
    (tmp_path / "study").mkdir()
    db = tmp_path / "study" / "survey.sqlite"
    engine = answer_two_questions(db, bundle)
    yield db  # the engine stays open, as a running server's does: the answers sit in survey.sqlite-wal too
    engine.dispose()


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_export_never_writes_over_its_own_database(answered_db, tmp_path, monkeypatch):
    """The data-loss case: `--out` naming the SQLite database (however spelled, through a link, or its WAL
    file) is refused even with --overwrite, and every answer is still there."""
    monkeypatch.chdir(tmp_path)
    study = answered_db.parent
    before = _files(study)
    assert "survey.sqlite-wal" in before  # the WAL sibling exists, so writing over it would lose answers too
    (tmp_path / "link.sqlite").symlink_to(answered_db)
    url = f"sqlite:///{answered_db}"
    cases = [(url, str(answered_db), ["--overwrite"]),
             (url, str(answered_db), []),  # without --overwrite: no hint to give it
             ("sqlite:///study/survey.sqlite", "study/../study/survey.sqlite", ["--overwrite"]),  # relative URL
             (url, "link.sqlite", ["--overwrite"]),
             (url, str(study / "survey.sqlite-wal"), ["--overwrite"])]
    for db, out, extra in cases:
        res = runner.invoke(app, ["survey", "export", "--db", db, "--out", out, *extra])
        assert res.exit_code == 2, (db, out, res.output)
        line = _error_line(res)
        assert f"--out {out} is the survey database" in line and "--overwrite" not in line, line
        assert _files(study) == before, (db, out)  # database and WAL untouched
    res = runner.invoke(app, ["survey", "export", "--db", url, "--out", "votes.csv"])
    assert res.exit_code == 0 and res.output.startswith(f"{2 * len(CRITERIA)} judgments"), res.output
    assert len(pd.read_csv(tmp_path / "votes.csv")) == 2 * len(CRITERIA)


def test_export_to_a_folder_says_a_file_is_expected(answered_db, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "keep.txt").write_text("kept")
    for extra in ([], ["--overwrite"]):
        res = runner.invoke(app, ["survey", "export", "--db", f"sqlite:///{answered_db}", "--out", str(folder),
                                  *extra])
        assert res.exit_code == 2, res.output
        line = _error_line(res)
        assert f"--out {folder} is a folder" in line and "file" in line and "--overwrite" not in line, line
        assert "cannot read the survey database" not in line
        assert _files(folder) == {"keep.txt": b"kept"}


def test_export_under_a_file_names_the_output_problem(answered_db, tmp_path):
    """An --out that cannot be written is an output error, not reported as an unreadable database."""
    (tmp_path / "afile").write_text("x")
    res = runner.invoke(app, ["survey", "export", "--db", f"sqlite:///{answered_db}", "--out",
                              str(tmp_path / "afile" / "votes.csv")])
    assert res.exit_code == 2, res.output
    line = _error_line(res)
    assert "is a file, not a folder" in line and "database" not in line, line
    assert (tmp_path / "afile").read_text() == "x"


@pytest.fixture()
def no_exec(monkeypatch):
    """`serve` ends by exec-ing Streamlit; here that would replace the test process, so it fails instead."""
    def _exec(*args):
        raise AssertionError(f"serve started the server: {args[1]}")

    monkeypatch.setattr(os, "execve", _exec)


@pytest.mark.parametrize("args, expected", [
    (["--port", "70000"], "--port 70000 is not a TCP port: give one from 1 to 65535"),
    (["--port", "-1"], "--port -1 is not a TCP port"),
    (["--port", "0"], "--port 0 is not a TCP port"),
    (["--address", "not.an.address.invalid"], "--address not.an.address.invalid does not resolve"),
    (["--address", "192.0.2.1"], "--address 192.0.2.1 is not an address of this machine"),  # TEST-NET-1
])
def test_serve_refuses_a_port_or_address_it_cannot_listen_on(bundle, tmp_path, no_exec, args, expected):
    db = tmp_path / "never.sqlite"
    res = runner.invoke(app, ["survey", "serve", str(bundle.root), "--db", f"sqlite:///{db}", *args])
    assert res.exit_code == 2, res.output
    assert expected in _error_line(res)
    assert "survey on" not in res.output and not db.exists()  # nothing announced, no database created


def test_serve_refuses_a_busy_port(bundle, tmp_path, no_exec):
    db = tmp_path / "never.sqlite"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for address in ("127.0.0.1", "0.0.0.0"):
            res = runner.invoke(app, ["survey", "serve", str(bundle.root), "--db", f"sqlite:///{db}", "--port",
                                      str(port), "--address", address])
            assert res.exit_code == 2, res.output
            assert f"--port {port} is already in use on {address}" in _error_line(res)
            assert "survey on" not in res.output and not db.exists()
    # the check closes its socket: a serve that fails after it (on the database) leaves the port free
    port = free_port()
    res = runner.invoke(app, ["survey", "serve", str(bundle.root), "--db", "mysql://x@y/z", "--port", str(port)])
    assert res.exit_code == 2 and "unsupported database 'mysql'" in _error_line(res), res.output
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # raises EADDRINUSE had the check left its socket open


def _build(tmp_path, prompts_dir, roots, *extra):
    design = tmp_path / "design.yaml"
    design.write_text(yaml.safe_dump(STUDY, allow_unicode=True), encoding="utf-8")
    arts = [arg for root in roots for arg in ("--artifacts", str(root))]
    return runner.invoke(app, ["survey", "build", "--design", str(design), *arts, "--prompts-dir", str(prompts_dir),
                               "--out", str(tmp_path / "b"), *extra])


@pytest.mark.parametrize("allow_missing", [[], ["--allow-missing"]])
def test_build_names_an_artifacts_root_that_yields_nothing(study_inputs, tmp_path, allow_missing):
    arts, prompts_dir, _ = study_inputs
    run_folder = tmp_path / "run"  # what a walkthrough passed: a training run's folder, not an artifacts root
    run_folder.mkdir()
    (run_folder / "manifest.json").write_text("{}")
    (run_folder / "ckpt").mkdir()
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [([tmp_path / "nonexist"], "artifacts folder not found: " + str(tmp_path / "nonexist")),
             ([a_file], f"--artifacts {a_file} is a file, not a folder"),
             ([run_folder], f"--artifacts {run_folder} holds manifest.json/video.mp4 itself"),
             ([arts / "4dfy"], f"--artifacts {arts / '4dfy'} holds artifact folders directly"),
             ([empty], f"--artifacts {empty} holds no <method>/<prompt_slug>/ artifact folders")]
    for roots, expected in cases:
        res = _build(tmp_path, prompts_dir, roots, *allow_missing)
        assert res.exit_code == 2, res.output
        assert res.output.startswith("error: ") and expected in res.output, (roots, res.output)
        assert "Traceback" not in res.output and not (tmp_path / "b").exists()
        if roots[0] in (tmp_path / "nonexist", a_file):  # nowhere to look: that line alone, no "missing" per video
            assert "missing (looked in" not in res.output and res.output.count("\n- ") == 1, res.output
    # an empty root next to a complete one is no error (the pipeline's artifacts/imported may be empty)
    res = _build(tmp_path, prompts_dir, [arts, empty], *allow_missing)
    assert res.exit_code == 0 and "5 questions" in res.output, res.output
    shutil.rmtree(tmp_path / "b")


def test_build_lists_a_missing_prompt_set_once(study_inputs, tmp_path):
    """Two sections on one prompt set with no such file: one line for the set (it was listed per section)."""
    arts, _, _ = study_inputs
    shared = {**STUDY, "tables": {"t": {"sections": [{"prompt_set": "set3", "rows": ["4dfy", "mav3d"]},
                                                     {"prompt_set": "set3", "rows": ["4dfy", "wo_3d"]}]}}}
    design = tmp_path / "design.yaml"
    design.write_text(yaml.safe_dump(shared, allow_unicode=True), encoding="utf-8")
    res = CliRunner().invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(arts),
                                   "--prompts-dir", str(tmp_path / "nonexist"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and res.output.count("prompt set 'set3'") == 1, res.output
    assert not (tmp_path / "b").exists()

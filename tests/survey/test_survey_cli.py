"""`fourdfy survey build | serve | export` and the round trip export -> `fourdfy analyze`."""

import json
import os
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import yaml
from survey_helpers import REPO, STUDY, at, free_port
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.survey import load_bundle, store
from userstudy.votes import CRITERIA, COLUMNS

runner = CliRunner()


def _design_file(tmp_path):
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(STUDY, allow_unicode=True), encoding="utf-8")
    return path


def test_build_export_analyze(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    design = _design_file(tmp_path)
    out = tmp_path / "bundle"
    res = runner.invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(arts),
                              "--prompts-dir", str(prompts_dir), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "5 questions (1 attention checks)" in res.output
    bundle = load_bundle(out)

    db = f"sqlite:///{tmp_path / 'votes.sqlite'}"
    engine = store.make_engine(db)
    store.init_db(engine, bundle.bundle_id)
    for seed in range(6):
        r = store.create_rater(engine, bundle.questions, at(0), seed=seed)
        while (item := store.next_assignment(engine, r)[0]) is not None:
            q = bundle.by_id[item.question_id]
            # every rater prefers the primary on every criterion, wherever it is shown
            side = "left" if item.method_left == q.method_a else "right"
            store.submit_answer(engine, r, q, dict.fromkeys(CRITERIA, side), seconds=3, now=at(1))

    votes = tmp_path / "votes.csv"
    votes.write_text("another study's votes\n")
    res = runner.invoke(app, ["survey", "export", "--db", db, "--out", str(votes)])
    assert res.exit_code != 0 and "--overwrite" in res.output  # an existing file is not replaced unasked
    assert votes.read_text() == "another study's votes\n"
    res = runner.invoke(app, ["survey", "export", "--db", db, "--out", str(votes), "--overwrite"])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(votes, dtype=str, keep_default_na=False)
    assert list(frame.columns[:len(COLUMNS)]) == list(COLUMNS)
    assert len(frame) == 6 * 5 * len(bundle.questions)
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out",
                              str(tmp_path / "report"), "--n-boot", "200"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "report" / "table.csv")
    mav = table[table["comparison"] == "mav3d"]
    assert set(mav["criterion"]) == set(CRITERIA)
    assert (mav["n"] == 6 * 3).all() and (mav["pct_primary"] == 100.0).all()
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert json.dumps(metrics)  # written and parseable


def test_build_errors_are_one_line_each(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    res = runner.invoke(app, ["survey", "build", "--design", str(_design_file(tmp_path)), "--artifacts",
                              str(tmp_path / "nowhere"), "--prompts-dir", str(prompts_dir), "--out",
                              str(tmp_path / "b")])
    assert res.exit_code == 2
    assert "error:" in res.output and "artifacts folder not found" in res.output and "Traceback" not in res.output
    assert "4dfy/a_panda_dancing: missing" in res.output and "attention_decoy" in res.output


def test_export_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("FOURDFY_SURVEY_DB", raising=False)
    res = runner.invoke(app, ["survey", "export", "--out", str(tmp_path / "v.csv")])
    assert res.exit_code == 2 and "no database given" in res.output
    res = runner.invoke(app, ["survey", "export", "--db", f"sqlite:///{tmp_path / 'none.sqlite'}",
                              "--out", str(tmp_path / "v.csv")])
    assert res.exit_code == 2 and "does not exist" in res.output and not (tmp_path / "none.sqlite").exists()
    res = runner.invoke(app, ["survey", "export", "--db", "mysql://x@y/z", "--out", str(tmp_path / "v.csv")])
    assert res.exit_code == 2 and "error:" in res.output


def test_serve(bundle, tmp_path):
    bad = subprocess.run([sys.executable, "-m", "pipelines.cli", "survey", "serve", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:") and "not a survey bundle" in bad.stderr
    port = free_port()
    db = tmp_path / "served.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "survey", "serve", str(bundle.root),
                             "--db", f"sqlite:///{db}", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            raise AssertionError("fourdfy survey serve did not answer on its port")
        assert db.is_file()  # the database was created and bound to the bundle before serving
        engine = store.open_existing(f"sqlite:///{db}")
        with engine.connect() as conn:
            assert conn.execute(store.study.select()).mappings().one()["bundle_id"] == bundle.bundle_id
    finally:
        proc.terminate()
        proc.wait(20)

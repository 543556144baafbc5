"""`fourdfy survey build | serve | export` and the round trip export -> `fourdfy analyze`."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
import yaml
from survey_helpers import REPO, STUDY, answer_all, at, free_port
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
    assert "5 questions (1 attention check)" in res.output
    bundle = load_bundle(out)

    db = f"sqlite:///{tmp_path / 'votes.sqlite'}"
    engine = store.make_engine(db)
    store.init_db(engine, bundle.bundle_id)
    for seed in range(6):
        r = store.create_rater(engine, bundle.questions, at(0), seed=seed)
        # every rater prefers the primary on every criterion, wherever it is shown
        answer_all(engine, bundle, r, lambda q, primary: primary, now=at(1))

    votes = tmp_path / "votes.csv"
    earlier = ",".join(COLUMNS) + "\nrater-00009,q,p,a,b,overall,left,false,\n"  # another study's votes
    votes.write_text(earlier)
    res = runner.invoke(app, ["survey", "export", "--db", db, "--out", str(votes)])
    assert res.exit_code != 0 and "give --overwrite" in res.output  # an existing file is not replaced unasked
    assert votes.read_text() == earlier
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
    # with nowhere to look, that line alone: not one "missing" line per video of the design as well
    assert res.output.count("\n- ") == 1 and "missing (looked in" not in res.output, res.output


def test_export_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("FOURDFY_SURVEY_DB", raising=False)
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    res = runner.invoke(app, ["survey", "export", "--out", str(tmp_path / "v.csv")])
    assert res.exit_code == 2 and "no database given" in res.output
    res = runner.invoke(app, ["survey", "export", "--db", f"sqlite:///{tmp_path / 'none.sqlite'}",
                              "--out", str(tmp_path / "v.csv")])
    assert res.exit_code == 2 and "does not exist" in res.output and not (tmp_path / "none.sqlite").exists()
    res = runner.invoke(app, ["survey", "export", "--db", "mysql://x@y/z", "--out", str(tmp_path / "v.csv")])
    assert res.exit_code == 2 and "error:" in res.output


def test_export_reads_db_url_from_streamlit_secrets(bundle, tmp_path, monkeypatch):
    """With no --db and no $FOURDFY_SURVEY_DB, `db_url` in ./.streamlit/secrets.toml (where the app reads
    it) names the database; a file that is not TOML is one error line, and nothing is written."""
    monkeypatch.delenv("FOURDFY_SURVEY_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "study.sqlite"
    engine = store.make_engine(f"sqlite:///{db}")
    store.init_db(engine, bundle.bundle_id)
    r = store.create_rater(engine, bundle.questions, at(0), seed=1)
    item = store.next_assignment(engine, r)[0]
    store.submit_answer(engine, r, bundle.by_id[item.question_id], dict.fromkeys(CRITERIA, "left"), seconds=3,
                        now=at(1))
    (tmp_path / ".streamlit").mkdir()
    secrets_file = tmp_path / ".streamlit" / "secrets.toml"
    secrets_file.write_text(f'admin_password = "x"\ndb_url = "sqlite:///{db}"\n')
    res = runner.invoke(app, ["survey", "export", "--out", "votes.csv"])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "votes.csv")) == len(CRITERIA)
    # ~/.streamlit/secrets.toml counts too, and the folder's own file wins over it (Streamlit's order)
    home = tmp_path / "home"
    (home / ".streamlit").mkdir(parents=True)
    (home / ".streamlit" / "secrets.toml").write_text('db_url = "sqlite:///from-home.sqlite"\n')
    monkeypatch.setenv("HOME", str(home))
    assert store.default_url(None) == f"sqlite:///{db}"
    secrets_file.write_text('admin_password = "x"\n')
    assert store.default_url(None) == "sqlite:///from-home.sqlite"
    secrets_file.write_text('db_url = "sqlite:///unterminated\n')
    res = runner.invoke(app, ["survey", "export", "--out", "again.csv"])
    assert res.exit_code == 2 and f"{secrets_file} is not valid TOML" in res.output, res.output
    assert not (tmp_path / "again.csv").exists()


@pytest.mark.parametrize("given_by", ["--db", "secrets.toml"])
def test_serve(bundle, tmp_path, given_by):
    bad = subprocess.run([sys.executable, "-m", "pipelines.cli", "survey", "serve", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:") and "not a survey bundle" in bad.stderr
    port = free_port()
    db = tmp_path / "served.sqlite"
    args = ["--db", f"sqlite:///{db}"]
    if given_by == "secrets.toml":  # where the docs put it, next to where the server runs
        (tmp_path / ".streamlit").mkdir()
        (tmp_path / ".streamlit" / "secrets.toml").write_text(f'db_url = "sqlite:///{db}"\n')
        args = []
    env = {k: v for k, v in os.environ.items() if k != "FOURDFY_SURVEY_DB"}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "survey", "serve", str(bundle.root), *args,
                             "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
                            env={**env, "PYTHONPATH": str(REPO)})
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
        # docs/survey.md: serve becomes the Streamlit server, which stops on Ctrl-C (SIGINT) or SIGTERM as a
        # server's normal stop, with exit status 0 (not the 130/143 of the other commands)
        proc.send_signal(signal.SIGINT if given_by == "--db" else signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(20)


def test_one_survey_per_table_and_both_exports_analysed_together(study_inputs, tmp_path):
    """The paper ran Table 2's comparisons as one survey: `survey build --tables` keeps a design's named tables,
    and `analyze` takes each survey's export with its own `--votes`. Both surveys number their raters from 1;
    the analysis keeps them apart (5 raters, not 3), and an export given twice is refused."""
    arts, prompts_dir, _ = study_inputs
    two_tables = {**STUDY, "tables": {"t2": {"sections": [STUDY["tables"]["t"]["sections"][0]]},
                                      "t3": {"sections": [STUDY["tables"]["t"]["sections"][1]]}}}
    design = tmp_path / "design.yaml"
    design.write_text(yaml.safe_dump(two_tables, allow_unicode=True), encoding="utf-8")
    res = runner.invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(arts),
                              "--prompts-dir", str(prompts_dir), "--out", str(tmp_path / "b"), "--tables", "t4"])
    assert res.exit_code == 2 and "no table 't4'" in res.output and "t2, t3" in res.output, res.output
    assert not (tmp_path / "b").exists()

    exports = {}
    for table, n_raters, prefer_primary in (("t2", 3, True), ("t3", 2, False)):
        out = tmp_path / f"bundle_{table}"
        res = runner.invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(arts),
                                  "--prompts-dir", str(prompts_dir), "--out", str(out), "--tables", table])
        assert res.exit_code == 0, res.output
        bundle = load_bundle(out)
        compared = {q.method_b for q in bundle.questions if not q.is_attention_check}
        assert compared == ({"mav3d"} if table == "t2" else {"wo_3d"})
        assert sum(q.is_attention_check for q in bundle.questions) == 1  # each survey keeps its attention check
        db = f"sqlite:///{tmp_path / f'{table}.sqlite'}"
        engine = store.make_engine(db)
        store.init_db(engine, bundle.bundle_id)
        for seed in range(n_raters):
            r = store.create_rater(engine, bundle.questions, at(0), seed=seed)
            answer_all(engine, bundle, r, lambda q, primary: primary if prefer_primary or q.is_attention_check
                       else ("right" if primary == "left" else "left"), now=at(1))
        exports[table] = tmp_path / f"votes_{table}.csv"
        res = runner.invoke(app, ["survey", "export", "--db", db, "--out", str(exports[table])])
        assert res.exit_code == 0, res.output
    assert set(pd.read_csv(exports["t2"], dtype=str)["rater_id"]) >= set(pd.read_csv(exports["t3"], dtype=str)["rater_id"])

    res = runner.invoke(app, ["analyze", "--votes", str(exports["t2"]), "--votes", str(exports["t3"]), "--design",
                              str(design), "--out", str(tmp_path / "report"), "--n-boot", "200"])
    assert res.exit_code == 0, res.output
    assert "from 5 raters analysed (0 excluded" in res.output
    table = pd.read_csv(tmp_path / "report" / "table.csv").set_index(["comparison", "criterion"])
    for criterion in CRITERIA:
        assert table.loc[("mav3d", criterion), "n"] == 3 * 3 and table.loc[("mav3d", criterion), "pct_primary"] == 100
        assert table.loc[("wo_3d", criterion), "n"] == 2 and table.loc[("wo_3d", criterion), "pct_primary"] == 0

    res = runner.invoke(app, ["analyze", "--votes", str(exports["t2"]), "--votes", str(exports["t2"]), "--design",
                              str(design), "--out", str(tmp_path / "twice"), "--n-boot", "200"])
    assert res.exit_code == 2 and "given twice" in res.output and not (tmp_path / "twice").exists(), res.output

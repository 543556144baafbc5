"""Findings of a real-data walkthrough of the survey: `build --out` on a served bundle folder names the votes its
database holds and how to export them (a rebuild from the same inputs gets the same bundle id, so the old database
still serves it); two tabs of one rater submitting the same question at once: the second gets the "answered
elsewhere" notice; a database outage keeps the question's choices, offers *Try again* and logs one line per error;
a `db_url` from the secrets file stays out of the server's environment; `export --db` with a file path says the
`sqlite:///` URL to write."""

import os
import shlex

import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from survey_helpers import STUDY, answer_all, app_run as run, app_start as start, app_token as token_of, at, \
    free_port, pg_data_dir, start_pgserver, stop_pgserver_now
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.survey import load_bundle, store
from userstudy.survey.app import ANSWERED_ELSEWHERE, RETRY_KEY, UNAVAILABLE
from userstudy.survey.loadtest import restart_pgserver, wait_gone
from userstudy.survey.texts import CRITERIA_TEXT
from userstudy.votes import CRITERIA

runner = CliRunner()


def _error_line(res) -> str:
    """The one error line of a refused command (no traceback, nothing else printed)."""
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


def _files(folder):
    """The folder's files and their bytes (not SQLite's -shm index, which every reader updates)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.endswith("-shm")}


def _build(study_inputs, tmp_path, out, *extra):
    arts, prompts_dir, _ = study_inputs
    design = tmp_path / "design.yaml"
    design.write_text(yaml.safe_dump(STUDY, allow_unicode=True), encoding="utf-8")
    return runner.invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(arts),
                               "--prompts-dir", str(prompts_dir), "--out", str(out), *extra])


# --- 1. a rebuild never costs the votes of a served bundle ---------------------------------------------------------

def test_build_over_a_served_bundle_names_its_votes_and_the_export(study_inputs, tmp_path, monkeypatch):
    """`serve` keeps the votes in <bundle>/survey.sqlite by default: `build --out` on that folder says how many
    it holds and gives the exact export command (which works), and nothing in the folder changes."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "study"
    assert _build(study_inputs, tmp_path, out).exit_code == 0
    bundle = load_bundle(out)
    db = out / "survey.sqlite"
    engine = store.make_engine(store.default_url(out))  # the database `serve` uses without --db
    store.init_db(engine, bundle.bundle_id)
    answer_all(engine, bundle, store.create_rater(engine, bundle.questions, at(0), seed=1), lambda q, p: p, now=at(1))
    second = store.create_rater(engine, bundle.questions, at(0), seed=2)
    item = store.next_assignment(engine, second)[0]
    store.submit_answer(engine, second, bundle.by_id[item.question_id], dict.fromkeys(CRITERIA, "left"), seconds=2,
                        now=at(2))
    n_judgments = 5 * (len(bundle.questions) + 1)
    before = _files(out)

    line = _error_line(_build(study_inputs, tmp_path, out))  # the server still running: engine open, WAL in use
    assert f"{n_judgments} judgment(s) ({len(bundle.questions) + 1} answered question(s)) of 2 rater(s)" in line
    assert str(db) in line and "new folder" in line and "removing the folder deletes it" in line
    command = line.split("export them first: ", 1)[1]
    assert command.startswith(f"fourdfy survey export --db sqlite:///{db} --out ")
    assert _files(out) == before and {p.name for p in out.iterdir()} == {*before, "media", "survey.sqlite-shm"}
    args = shlex.split(command)[1:]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(args[args.index("--out") + 1])) == n_judgments

    # a folder without a database: the plain refusal, with a new folder to use
    (tmp_path / "empty").mkdir()
    line = _error_line(_build(study_inputs, tmp_path, tmp_path / "empty"))
    assert "already exists" in line and "--out" in line and "judgment" not in line and "export" not in line


def test_a_rebuild_from_the_same_inputs_serves_the_old_database(study_inputs, tmp_path):
    """What docs/survey.md says a rebuild does: the same inputs give the same bundle id (the old database serves
    the new folder), other inputs another one (the old database is refused, naming its raters)."""
    assert _build(study_inputs, tmp_path, tmp_path / "a").exit_code == 0
    assert _build(study_inputs, tmp_path, tmp_path / "b").exit_code == 0
    a, b = load_bundle(tmp_path / "a"), load_bundle(tmp_path / "b")
    assert a.bundle_id == b.bundle_id and _files(a.root) == _files(b.root)
    engine = store.make_engine(f"sqlite:///{tmp_path / 'a' / 'survey.sqlite'}")
    store.init_db(engine, a.bundle_id)
    answer_all(engine, a, store.create_rater(engine, a.questions, at(0), seed=1), lambda q, p: p, now=at(1))
    store.init_db(engine, b.bundle_id)  # accepted
    assert _build(study_inputs, tmp_path, tmp_path / "c", "--tables", "t").exit_code == 0  # same questions
    assert load_bundle(tmp_path / "c").bundle_id == a.bundle_id
    arts, prompts_dir, design = study_inputs
    other = dict(STUDY, name="another study")
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other), encoding="utf-8")
    res = runner.invoke(app, ["survey", "build", "--design", str(tmp_path / "other.yaml"), "--artifacts", str(arts),
                              "--prompts-dir", str(prompts_dir), "--out", str(tmp_path / "d")])
    assert res.exit_code == 0, res.output
    with pytest.raises(store.StoreError, match=r"holds answers of 1 rater\(s\)"):
        store.init_db(engine, load_bundle(tmp_path / "d").bundle_id)


# --- 2. two tabs of one rater submitting the same question at once -------------------------------------------------

def _qkey(at_):
    return next(b.key for b in at_.button if b.key.startswith("submit_")).split("_", 1)[1]


def _pick(at_, side):
    q = _qkey(at_)
    for crit in CRITERIA_TEXT:
        at_.radio(key=f"r_{q}_{crit}").set_value(side)
    return at_.run()


def test_the_losing_tab_of_a_simultaneous_submit_gets_the_notice(app_env, bundle, monkeypatch):
    """Both tabs show question 1 when their Submit arrives; tab A's answer commits between tab B's page and B's
    own store call (the race the walkthrough hit with two real tabs). The first answer stays, and B is told that
    its choices were not recorded, instead of silently moving on."""
    a = start()
    token = token_of(a)
    b = run({"t": token})
    q1 = _qkey(b)
    assert _qkey(a) == q1
    _pick(b, "Right")
    rater = store.get_rater(app_env, token)
    question = bundle.by_id[store.next_assignment(app_env, rater)[0].question_id]
    real_submit = store.submit_answer
    results = []

    def b_submit_after_a(engine, rater_, question_, choices, seconds, now):
        if not results:  # tab A's submit of the same question commits first
            assert real_submit(engine, rater_, question, dict.fromkeys(CRITERIA, "left"), seconds=1, now=now)
        results.append(real_submit(engine, rater_, question_, choices, seconds=seconds, now=now))
        return results[-1]

    monkeypatch.setattr(store, "submit_answer", b_submit_after_a)
    b.button(key=f"submit_{q1}").click().run()
    assert results == [False]  # B's store call really lost the race
    assert b.get("progress")[0].proto.text.startswith("Question 2 of")
    assert [i.value for i in b.info] == [ANSWERED_ELSEWHERE]
    assert all(r.value is None for r in b.radio)
    votes = store.export_votes(app_env)
    assert list(votes["choice"]) == ["left"] * 5 and votes["question_id"].unique().tolist() == [question.question_id]
    # B's next submit is its own again: no notice on question 3
    monkeypatch.setattr(store, "submit_answer", real_submit)
    _pick(b, "Right")
    b.button(key=f"submit_{_qkey(b)}").click().run()
    assert b.get("progress")[0].proto.text.startswith("Question 3 of") and not b.info


# --- 3. a database outage: choices kept, a Try again button, one log line per error --------------------------------

def test_database_outage_keeps_the_choices_and_logs_one_line(bundle, tmp_path, monkeypatch, capfd):
    """PostgreSQL killed while a rater has made five choices and presses Submit: the page says so and offers the
    Try again button it names; after the restart that button brings the question back with the five choices,
    and Submit stores them. The server log gets one `survey: database error:` line per error (a traceback only
    with FOURDFY_VERBOSE=1)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FOURDFY_SURVEY_BUNDLE", str(bundle.root))
    monkeypatch.delenv("FOURDFY_VERBOSE", raising=False)
    with pg_data_dir() as pgdata:
        server = start_pgserver(pgdata)
        try:
            server.psql("CREATE DATABASE outage;")
            url = "postgresql+psycopg://" + server.get_uri("outage").split("://", 1)[1]
            monkeypatch.setenv("FOURDFY_SURVEY_DB", url)
            page = start()
            q = _qkey(page)
            picks = dict(zip(CRITERIA_TEXT, ["Left", "Right", "Left", "Right", "Left"]))
            for crit, side in picks.items():
                page.radio(key=f"r_{q}_{crit}").set_value(side)
            page.run()
            capfd.readouterr()

            def kill():
                pid = server.get_pid()
                os.kill(pid, 9)
                wait_gone(pid)

            kill()
            page.button(key=f"submit_{q}").click().run()
            assert [w.value for w in page.warning] == [UNAVAILABLE] and "Try again" in UNAVAILABLE
            assert page.button(key=RETRY_KEY).label == "Try again"
            log = capfd.readouterr().err.splitlines()
            errors = [ln for ln in log if ln.startswith("survey: database error: ")]
            assert len(errors) == 1 and not [ln for ln in log if "Traceback" in ln], log

            page.button(key=RETRY_KEY).click().run()  # still down: the same page, one more line
            assert [w.value for w in page.warning] == [UNAVAILABLE]
            monkeypatch.setenv("FOURDFY_VERBOSE", "1")
            page.button(key=RETRY_KEY).click().run()
            log = capfd.readouterr().err
            assert log.count("survey: database error: ") == 2 and "Traceback" in log, log
            monkeypatch.delenv("FOURDFY_VERBOSE")

            restart_pgserver(server)
            page.button(key=RETRY_KEY).click().run()
            assert not page.warning and page.get("progress")[0].proto.text.startswith("Question 1 of")
            assert {crit: page.radio(key=f"r_{q}_{crit}").value for crit in CRITERIA_TEXT} == picks
            assert not page.button(key=f"submit_{q}").disabled
            page.button(key=f"submit_{q}").click().run()
            assert page.get("progress")[0].proto.text.startswith("Question 2 of") and not page.info
            assert all(r.value is None for r in page.radio)  # kept choices are the question's own, not carried
            engine = store.make_engine(url)
            assert list(store.export_votes(engine)["choice"]) == [v.lower() for v in picks.values()]
            engine.dispose()
        finally:
            stop_pgserver_now(server)


# --- 4. a URL from the secrets file stays out of the server's environment -----------------------------------------


def test_serve_leaves_a_secrets_file_url_to_the_app(bundle, pg_server, tmp_path, monkeypatch, fake_exec):
    """docs/survey.md: the secrets file keeps the password out of the process list. `serve` does not copy that
    URL into the Streamlit server's environment (/proc/<pid>/environ); the app, given the environment `serve`
    passes, reads the same file and stores its raters there."""
    secret_pw = "Walkthr0ugh-pw"
    name = f"sec{os.getpid()}"
    pg_server.psql(f"CREATE DATABASE {name};")
    url = sa.engine.make_url(pg_server.get_uri(name)).set(drivername="postgresql+psycopg", password=secret_pw)
    url = url.render_as_string(hide_password=False)
    monkeypatch.delenv("FOURDFY_SURVEY_DB", raising=False)
    monkeypatch.delenv("FOURDFY_VERBOSE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(f'db_url = "{url}"\n', encoding="utf-8")
    res = runner.invoke(app, ["survey", "serve", str(bundle.root), "--port", str(free_port())])
    assert res.exit_code == 0, res.output
    env = fake_exec[-1]
    assert "FOURDFY_SURVEY_DB" not in env and not [k for k, v in env.items() if secret_pw in v]
    assert "FOURDFY_VERBOSE" not in env

    for key in set(os.environ) - set(env):  # the app as Streamlit runs it, in the same folder
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    page = start()
    engine = store.make_engine(url)
    assert store.get_rater(engine, token_of(page)) is not None
    engine.dispose()

    # --db (on the command line anyway) and the default SQLite file still reach the app through the environment;
    # `fourdfy --verbose` turns on the database errors' tracebacks in the server log
    db = f"sqlite:///{tmp_path / 'given.sqlite'}"
    res = runner.invoke(app, ["--verbose", "survey", "serve", str(bundle.root), "--db", db, "--port", str(free_port())])
    assert res.exit_code == 0, res.output
    assert fake_exec[-1]["FOURDFY_SURVEY_DB"] == db and fake_exec[-1]["FOURDFY_VERBOSE"] == "1"


# --- 5. export --db with a file path -------------------------------------------------------------------------------

def test_export_with_a_file_path_says_the_sqlite_url(bundle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study").mkdir()
    engine = store.make_engine("sqlite:///study/survey.sqlite")
    store.init_db(engine, bundle.bundle_id)
    answer_all(engine, bundle, store.create_rater(engine, bundle.questions, at(0), seed=1), lambda q, p: p, now=at(1))
    engine.dispose()
    for given, expected in (("study/survey.sqlite", "sqlite:///study/survey.sqlite"),
                            ("study", "sqlite:///study/survey.sqlite"),  # a bundle folder: its default database
                            ("missing/votes.db", "sqlite:///missing/votes.db")):
        line = _error_line(runner.invoke(app, ["survey", "export", "--db", given, "--out", "v.csv"]))
        assert line.endswith(f"write {expected}"), line
    res = runner.invoke(app, ["survey", "export", "--db", "sqlite:///study/survey.sqlite", "--out", "v.csv"])
    assert res.exit_code == 0, res.output
    # something that is no path is never echoed (a URL without its scheme may hold a password)
    line = _error_line(runner.invoke(app, ["survey", "export", "--db", "user:Pw-1234@host/db.db", "--out", "w.csv"]))
    assert "Pw-1234" not in line and "does not parse" in line
    help_text = runner.invoke(app, ["survey", "export", "--help"], env={"COLUMNS": "200"}).output
    assert "sqlite:///<bundle>/survey.sqlite" in " ".join(help_text.split()).replace("│", "").replace("  ", " ")

"""Fixtures of the survey tests: tiny H.264 artifacts, a design and prompt files, bundles, SQLite and a
real PostgreSQL server (pgserver), and a live `streamlit run` server. Plain helpers live in
survey_helpers.py (tests import them from there)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from survey_helpers import APP, PROMPTS, STUDY, free_port, pg_data_dir, start_pgserver, stop_pgserver_now, write_artifact

from userstudy.design import design_from_dict


@pytest.fixture(autouse=True)
def no_operator_secrets(tmp_path_factory, monkeypatch):
    """The survey reads `db_url` from ~/.streamlit/secrets.toml and ./.streamlit/secrets.toml, where an operator
    keeps the real study's: tests (and the servers they start) see an empty home instead."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(autouse=True)
def no_streamlit_magic():
    """AppTest runs the app as `survey serve` (and `live_server` below) does: without Streamlit's "magic", which
    would write any bare expression or string of app.py onto the page. test_app_magic.py turns it back on, as a
    plain `streamlit run userstudy/survey/app.py` has it, to show the app's pages do not depend on it."""
    from streamlit import config

    before = config.get_option("runner.magicEnabled")
    config.set_option("runner.magicEnabled", False)
    yield
    config.set_option("runner.magicEnabled", before)


@pytest.fixture(scope="session")
def study_design():
    return design_from_dict(STUDY)


@pytest.fixture(scope="session")
def study_inputs(tmp_path_factory):
    """(artifacts root, prompts dir, design) for 3 mav3d + 1 wo_3d questions and 1 attention check."""
    root = tmp_path_factory.mktemp("study")
    prompts_dir = root / "prompts"
    prompts_dir.mkdir()
    (prompts_dir / "set3.txt").write_text("\n".join(PROMPTS.values()) + "\n", encoding="utf-8")
    (prompts_dir / "set1.txt").write_text("# one prompt\nA panda dancing.\n", encoding="utf-8")
    arts = root / "artifacts"
    seed = 0
    for method in ("4dfy", "mav3d"):
        for slug, text in PROMPTS.items():
            seed += 1
            write_artifact(arts, method, slug, text, seed)
    write_artifact(arts, "wo_3d", "a_panda_dancing", PROMPTS["a_panda_dancing"], 50)
    write_artifact(arts, "attention_decoy", "a_goat_drinking_beer", PROMPTS["a_goat_drinking_beer"], 60)
    return arts, prompts_dir, design_from_dict(STUDY)


@pytest.fixture(scope="session")
def bundle(study_inputs, tmp_path_factory):
    from userstudy.survey import build_bundle

    arts, prompts_dir, design = study_inputs
    return build_bundle(design, [arts], tmp_path_factory.mktemp("b") / "bundle", prompts_dir=prompts_dir)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real PostgreSQL server from PyPI's pgserver (skipped with the reason when it cannot start)."""
    with pg_data_dir() as pgdata:
        server = start_pgserver(pgdata)
        yield server
        stop_pgserver_now(server)


_DB_COUNTER = iter(range(10**6))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'survey.sqlite'}"
    server = request.getfixturevalue("pg_server")
    name = f"t{os.getpid()}_{next(_DB_COUNTER)}"
    server.psql(f"CREATE DATABASE {name};")
    uri = server.get_uri(name)
    return "postgresql+psycopg://" + uri.split("://", 1)[1]


@pytest.fixture()
def engine(db_url, bundle):
    """An engine on `db_url`, its database bound to the session's bundle."""
    from userstudy.survey import store

    e = store.make_engine(db_url)
    store.init_db(e, bundle.bundle_id)
    yield e
    e.dispose()


@pytest.fixture()
def live_server(bundle, tmp_path):
    """`streamlit run` on the app, on a free localhost port, with a SQLite database; yields (url, db url)."""
    import urllib.request

    port = free_port()
    db = f"sqlite:///{tmp_path / 'live.sqlite'}"
    env = {**os.environ, "FOURDFY_SURVEY_BUNDLE": str(bundle.root), "FOURDFY_SURVEY_DB": db,
           "FOURDFY_SURVEY_COMPLETION_CODE": "C0DE-42"}
    env.pop("FOURDFY_SURVEY_ADMIN_PASSWORD", None)
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--client.showErrorDetails", "none", "--runner.magicEnabled", "false"]
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("streamlit did not start:\n" + (tmp_path / "streamlit.log").read_text())
        time.sleep(0.3)
    yield url, db
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture()
def app_env(bundle, tmp_path, monkeypatch):
    """The environment `fourdfy survey serve` gives the app (bundle, a SQLite database, a completion code, no
    admin password, no secrets.toml); returns the database's engine."""
    from userstudy.survey import store

    db = f"sqlite:///{tmp_path / 'app.sqlite'}"
    monkeypatch.setenv("FOURDFY_SURVEY_BUNDLE", str(bundle.root))
    monkeypatch.setenv("FOURDFY_SURVEY_DB", db)
    monkeypatch.setenv("FOURDFY_SURVEY_COMPLETION_CODE", "CODE-123")
    monkeypatch.delenv("FOURDFY_SURVEY_ADMIN_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    return store.make_engine(db)


@pytest.fixture()
def fake_exec(monkeypatch):
    """`serve` ends by exec-ing Streamlit; record the environment it passes instead of replacing the test
    process."""
    calls = []

    def _exec(path, args, env):
        calls.append(env)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", _exec)
    return calls

"""What `fourdfy survey serve | export` print about a database URL: never its password (shown as `***`,
whether the URL came from --db or $FOURDFY_SURVEY_DB), and a driver that is not installed
(`postgresql+psycopg2://`) named in one line with the psycopg 3 spelling to use instead."""

import os
import sys

import pytest
import sqlalchemy as sa
from survey_helpers import free_port
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.survey import store

runner = CliRunner()
SECRET = "S3cretPW-xyz"


def _error_line(res) -> str:
    """The one error line of a refused command (no traceback, nothing else printed)."""
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return lines[0]


def _new_pg_database(pg_server) -> str:
    """A fresh database on the test PostgreSQL server, as a URL holding a password (the server trusts local
    connections, so the password is accepted and ignored)."""
    name = f"pw{os.getpid()}_{next(_NAMES)}"
    pg_server.psql(f"CREATE DATABASE {name};")
    url = sa.engine.make_url(pg_server.get_uri(name)).set(drivername="postgresql+psycopg", password=SECRET)
    return url.render_as_string(hide_password=False)


_NAMES = iter(range(10**6))


@pytest.fixture()
def pg_url_with_password(pg_server):
    return _new_pg_database(pg_server)



@pytest.mark.parametrize("given_by", ["--db", "env"])
def test_export_of_a_database_without_survey_tables_masks_the_password(pg_url_with_password, tmp_path, monkeypatch,
                                                                        given_by):
    monkeypatch.chdir(tmp_path)
    args = ["--db", pg_url_with_password]
    if given_by == "env":
        monkeypatch.setenv(store.DB_ENV, pg_url_with_password)
        args = []
    else:
        monkeypatch.delenv(store.DB_ENV, raising=False)
    res = runner.invoke(app, ["survey", "export", *args, "--out", str(tmp_path / "votes.csv")])
    assert res.exit_code == 2, res.output
    line = _error_line(res)
    assert "is not a survey database" in line and "postgres:***@" in line, line
    assert SECRET not in res.output
    assert not (tmp_path / "votes.csv").exists()


def test_serve_masks_the_password_in_errors_and_in_its_announcement(bundle, pg_server, pg_url_with_password,
                                                                    monkeypatch, fake_exec):
    monkeypatch.delenv(store.DB_ENV, raising=False)
    # a database bound to another bundle is refused, naming it without the password
    engine = store.make_engine(pg_url_with_password)
    store.init_db(engine, "another-bundle")
    engine.dispose()
    res = runner.invoke(app, ["survey", "serve", str(bundle.root), "--db", pg_url_with_password,
                              "--port", str(free_port())])
    assert res.exit_code == 2, res.output
    line = _error_line(res)
    assert "belongs to bundle another-bundle (no answers yet)" in line and "postgres:***@" in line, line
    assert SECRET not in res.output and fake_exec == []

    # the same password in $FOURDFY_SURVEY_DB, on a fresh database: the server starts, its line names the
    # database masked, and the app still gets the real URL
    fresh_url = _new_pg_database(pg_server)
    monkeypatch.setenv(store.DB_ENV, fresh_url)
    res = runner.invoke(app, ["survey", "serve", str(bundle.root), "--port", str(free_port())])
    assert res.exit_code == 0, res.output
    assert "survey on http://127.0.0.1:" in res.output and "database postgresql+psycopg://postgres:***@" in res.output
    assert SECRET not in res.output
    assert fake_exec and fake_exec[0][store.DB_ENV] == fresh_url


@pytest.mark.parametrize("command", ["export", "serve"])
def test_an_unreachable_server_or_unparsable_url_never_shows_the_password(bundle, tmp_path, monkeypatch, fake_exec,
                                                                          command):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(store.DB_ENV, raising=False)
    nobody = free_port()  # nothing listens there: the connection is refused at once
    cases = [(f"postgresql+psycopg://survey:{SECRET}@127.0.0.1:{nobody}/survey", f"survey:***@127.0.0.1:{nobody}"),
             (f"postgresql://survey:{SECRET}@db.example.org:notaport/survey",
              "the database URL (from --db) does not parse")]
    for url, expected in cases:
        args = [str(bundle.root), "--port", str(free_port())] if command == "serve" else ["--out", "votes.csv"]
        res = runner.invoke(app, ["survey", command, *args, "--db", url])
        assert res.exit_code == 2, res.output
        assert expected in _error_line(res), res.output
        assert SECRET not in res.output
    assert not (tmp_path / "votes.csv").exists() and fake_exec == []


@pytest.mark.parametrize("command", ["export", "serve"])
@pytest.mark.parametrize("given_by", ["env", "secrets"])
def test_an_unparsable_url_not_given_by_db_names_where_it_came_from(bundle, tmp_path, monkeypatch, fake_exec, command,
                                                                    given_by):
    """The URL itself is not echoed (its password could not be masked), so the message says where it was set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(store.DB_ENV, raising=False)
    url = f"postgresql://survey:{SECRET}@db.example.org:notaport/survey"
    secrets = tmp_path / ".streamlit" / "secrets.toml"
    if given_by == "env":
        monkeypatch.setenv(store.DB_ENV, url)
        source = f"${store.DB_ENV}"
    else:
        secrets.parent.mkdir()
        secrets.write_text(f'db_url = "{url}"\n')
        source = f"db_url in {secrets}"
    args = [str(bundle.root), "--port", str(free_port())] if command == "serve" else ["--out", "votes.csv"]
    res = runner.invoke(app, ["survey", command, *args])
    assert res.exit_code == 2, res.output
    assert f"the database URL (from {source}) does not parse" in _error_line(res), res.output
    assert SECRET not in res.output
    assert not (tmp_path / "votes.csv").exists() and fake_exec == []


@pytest.mark.parametrize("command", ["export", "serve"])
def test_a_psycopg2_url_says_the_driver_is_missing_and_what_to_write(bundle, tmp_path, monkeypatch, fake_exec,
                                                                     command):
    pytest.importorskip("psycopg")
    if "psycopg2" in sys.modules or _importable("psycopg2"):
        pytest.skip("psycopg2 is installed here: its absence cannot be shown")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(store.DB_ENV, raising=False)
    url = f"postgresql+psycopg2://survey:{SECRET}@localhost/survey"
    args = [str(bundle.root), "--port", str(free_port())] if command == "serve" else ["--out", "votes.csv"]
    res = runner.invoke(app, ["survey", command, *args, "--db", url])
    assert res.exit_code == 2, res.output
    line = _error_line(res)
    assert "the database driver of postgresql+psycopg2://survey:***@localhost/survey is not installed" in line, line
    assert "no Python module 'psycopg2'" in line and "this project uses psycopg 3" in line, line
    assert "postgresql+psycopg://survey:***@localhost/survey" in line, line
    assert SECRET not in res.output and "No module named" not in res.output
    assert not (tmp_path / "votes.csv").exists() and fake_exec == []


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None

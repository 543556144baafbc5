"""What `fourdfy survey serve` refuses before it starts: an in-memory SQLite database (each of Streamlit's threads
would get its own, empty one), and a secrets file that does not parse even when --db is given; and the app's
completion and admin pages when a secrets file breaks while it runs."""

import pytest
from survey_helpers import answer_all, app_run, at, free_port, one_error_line
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.survey import store

runner = CliRunner()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?cache=shared",
                                 "sqlite:///file:votes?mode=memory&uri=true"])
def test_serve_refuses_an_in_memory_database(bundle, tmp_path, monkeypatch, fake_exec, url):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["survey", "serve", str(bundle.root), "--port", str(free_port()), "--db", url])
    assert res.exit_code == 2, res.output
    line = one_error_line(res)
    assert "in-memory SQLite database" in line and "(from --db)" in line and "sqlite:///PATH" in line, line
    assert fake_exec == []


def test_serve_refuses_an_in_memory_database_from_the_environment(bundle, tmp_path, monkeypatch, fake_exec):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(store.DB_ENV, "sqlite://")
    res = runner.invoke(app, ["survey", "serve", str(bundle.root), "--port", str(free_port())])
    assert res.exit_code == 2 and "(from $FOURDFY_SURVEY_DB)" in one_error_line(res)
    assert fake_exec == []


def test_memory_sqlite_tells_files_from_memory():
    assert store.memory_sqlite("sqlite://") and store.memory_sqlite("sqlite:///:memory:")
    assert not store.memory_sqlite("sqlite:///survey.sqlite") and not store.memory_sqlite("sqlite:////abs/x.db")
    assert not store.memory_sqlite("postgresql+psycopg://u@h/db") and not store.memory_sqlite("not a url")


def test_serve_with_db_still_reads_the_secrets_file(bundle, tmp_path, monkeypatch, fake_exec):
    """--db given: the secrets file is not needed for the URL, but the app reads its completion code from it at the
    end of the survey; a broken one is refused now, in one line naming it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(store.DB_ENV, raising=False)
    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text('completion_code = "C0FFEE\nadmin_password = x\n', encoding="utf-8")
    res = runner.invoke(app, ["survey", "serve", str(bundle.root), "--port", str(free_port()),
                              "--db", f"sqlite:///{tmp_path / 'votes.sqlite'}"])
    assert res.exit_code == 2, res.output
    line = one_error_line(res)
    assert f"{secrets} is not valid TOML" in line, line
    assert fake_exec == [] and not (tmp_path / "votes.sqlite").exists()
    # in the home folder's file as well
    secrets.unlink()
    home = tmp_path / "home"
    (home / ".streamlit").mkdir(parents=True)
    (home / ".streamlit" / "secrets.toml").write_text("admin_password = \n", encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    res = runner.invoke(app, ["survey", "serve", str(bundle.root), "--port", str(free_port()),
                              "--db", f"sqlite:///{tmp_path / 'votes.sqlite'}"])
    assert res.exit_code == 2 and "is not valid TOML" in one_error_line(res)
    # fixed, it serves
    (home / ".streamlit" / "secrets.toml").write_text('admin_password = "pw"\n', encoding="utf-8")
    res = runner.invoke(app, ["survey", "serve", str(bundle.root), "--port", str(free_port()),
                              "--db", f"sqlite:///{tmp_path / 'votes.sqlite'}"])
    assert res.exit_code == 0, res.output
    assert fake_exec


@pytest.fixture()
def broken_secrets(app_env, tmp_path, monkeypatch):
    """The app's environment (a database from $FOURDFY_SURVEY_DB) with no completion code in it and a secrets file
    broken after `serve` checked it."""
    monkeypatch.delenv("FOURDFY_SURVEY_COMPLETION_CODE")
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text("completion_code = [\n", encoding="utf-8")
    return app_env


def test_a_broken_secrets_file_still_shows_the_completion_page(broken_secrets, bundle, capfd):
    store.init_db(broken_secrets, bundle.bundle_id)
    rater = store.create_rater(broken_secrets, bundle.questions, at(0), seed=1)
    answer_all(broken_secrets, bundle, rater, lambda q, p: p, now=at(1))
    page = app_run({"t": rater.token})
    assert not page.exception, page.exception
    assert [t.value for t in page.title] == ["Thank you!"]
    assert "All your answers are saved." in page.success[0].value
    assert "completion code cannot be shown" in page.warning[0].value
    assert any(f"?t={rater.token}" in c.value for c in page.code)
    err = capfd.readouterr().err
    assert "survey: error:" in err and "is not valid TOML" in err and "Traceback" not in err, err


def test_a_broken_secrets_file_leaves_the_completion_code_from_the_environment(broken_secrets, bundle, monkeypatch):
    monkeypatch.setenv("FOURDFY_SURVEY_COMPLETION_CODE", "ENV-CODE")
    store.init_db(broken_secrets, bundle.bundle_id)
    rater = store.create_rater(broken_secrets, bundle.questions, at(0), seed=1)
    answer_all(broken_secrets, bundle, rater, lambda q, p: p, now=at(1))
    page = app_run({"t": rater.token})
    assert not page.exception and [c.value for c in page.code] == ["ENV-CODE"] and not page.warning


def test_a_broken_secrets_file_turns_the_admin_page_off(broken_secrets, tmp_path, capfd):
    page = app_run({"view": "admin"})
    assert not page.exception, page.exception
    assert "admin page is off" in page.error[0].value and "cannot be read" in page.error[0].value
    assert str(tmp_path) not in page.error[0].value  # the path and reason: in the server log only
    assert "is not valid TOML" in capfd.readouterr().err


def test_a_database_url_from_a_broken_secrets_file_is_a_notice(app_env, tmp_path, monkeypatch, capfd):
    """Without $FOURDFY_SURVEY_DB the app reads db_url from the secrets file on every page: broken since `serve`
    started, raters get the "unavailable" note, not an error page."""
    monkeypatch.delenv(store.DB_ENV)
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text("db_url = \n", encoding="utf-8")
    page = app_run()
    assert not page.exception, page.exception
    assert "unavailable for a moment" in page.warning[0].value
    assert "is not valid TOML" in capfd.readouterr().err

"""`fourdfy survey serve --db sqlite:///FOLDER` names the folder as `survey export` does (not the driver's "unable to
open database file"), before Streamlit is started, and says which URL to give."""

from survey_helpers import free_port
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.survey import store

runner = CliRunner()


def _serve(bundle, db):
    return runner.invoke(app, ["survey", "serve", str(bundle.root), "--db", db, "--port", str(free_port())])


def _error_line(res) -> str:
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


def test_serve_with_a_folder_as_database_names_it(bundle, tmp_path, monkeypatch, fake_exec):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(store.DB_ENV, raising=False)
    (tmp_path / "empty").mkdir()
    line = _error_line(_serve(bundle, "sqlite:///empty"))
    assert line == ("error: cannot use the database sqlite:///empty: empty is a folder, not a SQLite file; give the "
                    "database file in the URL, sqlite:///PATH/survey.sqlite (`serve` creates it when new)")
    assert "unable to open" not in line
    assert list((tmp_path / "empty").iterdir()) == [] and fake_exec == []


def test_serve_with_the_folder_of_a_database_names_the_file_and_that_url_serves(bundle, tmp_path, monkeypatch,
                                                                                fake_exec):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(store.DB_ENV, raising=False)
    (tmp_path / "study").mkdir()
    engine = store.make_engine(f"sqlite:///study/{store.DEFAULT_SQLITE}")
    store.init_db(engine, bundle.bundle_id)
    engine.dispose()
    line = _error_line(_serve(bundle, "sqlite:///study"))
    assert "study is a folder, not a SQLite file" in line, line
    assert f"give --db sqlite:///study/{store.DEFAULT_SQLITE}" in line, line
    assert fake_exec == []
    res = _serve(bundle, f"sqlite:///study/{store.DEFAULT_SQLITE}")  # the hint is right: that URL serves
    assert res.exit_code == 0, res.output
    assert fake_exec and fake_exec[-1][store.DB_ENV] == f"sqlite:///study/{store.DEFAULT_SQLITE}"

"""What `fourdfy survey export --out` may replace, and what its `--db` may name. With --overwrite it replaces only
an earlier export (a votes CSV, known by its header) or an empty file, the rule of `simulate-votes`, `power` and
`audit`; a bundle's bundle.json, a config or any other file is refused with one `error:` line saying what the
file seems to be, and stays as it was. A `--db sqlite:///FOLDER` is named as a folder, not as a missing file."""

import shutil

import pandas as pd
import pytest
from survey_helpers import answer_two_questions, one_error_line
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.survey import load_bundle, store
from userstudy.votes import COLUMNS, CRITERIA

runner = CliRunner()


_error_line = one_error_line


@pytest.fixture()
def served(bundle, tmp_path):
    """A copy of the test bundle under tmp_path/study/ with its default database, holding one rater's answers to
    two questions (as after `survey serve`); returns the bundle folder."""
    folder = tmp_path / "study"
    shutil.copytree(bundle.root, folder)
    answer_two_questions(folder / store.DEFAULT_SQLITE, bundle).dispose()
    return folder


def _export(folder, out, *extra):
    return runner.invoke(app, ["survey", "export", "--db", f"sqlite:///{folder / store.DEFAULT_SQLITE}", "--out",
                               str(out), *extra])


def test_a_bundle_json_is_never_replaced(served):
    target = served / "bundle.json"
    before = target.read_bytes()
    bundle_id = load_bundle(served).bundle_id
    for extra in (["--overwrite"], []):
        res = _export(served, target, *extra)
        assert res.exit_code == 2, res.output
        line = _error_line(res)
        assert f"--out {target} exists" in line and "bundle.json" in line and bundle_id in line, line
        assert "never replaced, even with --overwrite" in line, line
        assert target.read_bytes() == before
    assert load_bundle(served).bundle_id == bundle_id  # `survey serve` can still read it
    assert not [p.name for p in served.iterdir() if p.name.startswith(".bundle.json")]  # no temporary left


@pytest.mark.parametrize("name, content, seems", [
    ("params.yaml", "study:\n  votes: data/study/votes.csv\n", "a YAML file"),
    ("table.csv", "comparison,criterion,n\nmav3d,overall,3\n", "a CSV file without the votes columns (no rater_id"),
    ("notes.txt", "another study's votes\n", "a text file"),
    # not empty: a blank first line, then data (the first line alone would look like an empty file's)
    ("votes.csv", "\n" + ",".join(COLUMNS) + "\n", "a CSV file"),
])
def test_a_file_that_is_no_votes_csv_is_refused_even_with_overwrite(served, tmp_path, name, content, seems):
    target = tmp_path / name
    target.write_text(content, encoding="utf-8")
    res = _export(served, target, "--overwrite")
    assert res.exit_code == 2, res.output
    line = _error_line(res)
    assert f"--out {target} exists and seems to be {seems}" in line, line
    assert "not a votes CSV" in line and "never replaced" in line, line
    assert target.read_text(encoding="utf-8") == content


def test_an_earlier_export_is_replaced_with_overwrite_only(served, tmp_path):
    votes = tmp_path / "votes.csv"
    # an earlier export, of fewer answers: the header of the votes format and one row
    votes.write_text(",".join(COLUMNS) + "\nrater-00009,q,p,a,b,overall,left,false,\n", encoding="utf-8")
    before = votes.read_bytes()
    res = _export(served, votes)
    assert res.exit_code == 2, res.output
    line = _error_line(res)
    assert f"--out {votes} already exists (a votes CSV" in line and "give --overwrite" in line, line
    assert votes.read_bytes() == before
    res = _export(served, votes, "--overwrite")
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(votes, dtype=str, keep_default_na=False)
    assert len(frame) == 2 * len(CRITERIA) and set(frame["rater_id"]) == {"rater-00001"}
    assert list(frame.columns) == list(store.VOTES_COLUMNS)
    res = _export(served, votes, "--overwrite")  # and the export itself is replaced by the next one
    assert res.exit_code == 0, res.output


def test_an_empty_file_is_replaced_with_overwrite(served, tmp_path):
    votes = tmp_path / "votes.csv"
    votes.touch()
    res = _export(served, votes, "--overwrite")
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(votes)) == 2 * len(CRITERIA)


def test_db_naming_a_folder_says_it_is_a_folder(served, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["survey", "export", "--db", "sqlite:///study", "--out", "votes.csv"])
    assert res.exit_code == 2, res.output
    line = _error_line(res)
    assert "study is a folder, not a SQLite file" in line and "does not exist" not in line, line
    assert f"give --db sqlite:///study/{store.DEFAULT_SQLITE}" in line, line  # the bundle's own database
    assert not (tmp_path / "votes.csv").exists()
    # the hint is right: that URL exports
    res = runner.invoke(app, ["survey", "export", "--db", f"sqlite:///study/{store.DEFAULT_SQLITE}", "--out",
                              "votes.csv"])
    assert res.exit_code == 0, res.output
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["survey", "export", "--db", "sqlite:///empty", "--out", "votes2.csv"])
    assert res.exit_code == 2, res.output
    line = _error_line(res)
    assert "empty is a folder, not a SQLite file" in line and "sqlite:///PATH" in line, line
    assert not (tmp_path / "votes2.csv").exists() and list((tmp_path / "empty").iterdir()) == []

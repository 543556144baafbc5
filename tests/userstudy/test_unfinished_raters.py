"""`rater_completed` (the survey export's column): raters who did not finish are reported, kept by default and
dropped with --exclude-unfinished; the column is validated like the others."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.design import load_design
from userstudy.votes import VotesError, validate_votes

runner = CliRunner()


@pytest.fixture()
def votes(tmp_path):
    path = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--out", str(path), "--raters", "5", "--comparisons", "mav3d",
                              "--seed", "4"])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    raters = sorted(frame.rater_id.unique())
    frame["rater_completed"] = ["false" if r == raters[0] else "true" for r in frame.rater_id]
    frame.to_csv(path, index=False)
    return path, frame, raters[0]


def test_unfinished_raters_are_reported_kept_by_default_and_dropped_on_request(votes, tmp_path):
    path, frame, quitter = votes
    theirs = int(((frame.rater_id == quitter) & (frame.is_attention_check.str.lower() == "false")).sum())
    res = runner.invoke(app, ["analyze", "--votes", str(path), "--out", str(tmp_path / "kept"), "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    assert "note: 1 rater(s) did not finish the survey; their judgments are analysed (--exclude-unfinished" in res.stderr
    raters = pd.read_csv(tmp_path / "kept" / "raters.csv")
    assert raters.set_index("rater_id").loc[quitter, "completed"] == False  # noqa: E712
    assert "- Raters who did not finish the survey: 1 (analysed;" in (tmp_path / "kept" / "report.md").read_text()
    kept = pd.read_csv(tmp_path / "kept" / "table.csv")

    res = runner.invoke(app, ["analyze", "--votes", str(path), "--out", str(tmp_path / "dropped"), "--n-boot", "100",
                              "--exclude-unfinished"])
    assert res.exit_code == 0, res.output
    assert "did not finish" not in res.stderr
    raters = pd.read_csv(tmp_path / "dropped" / "raters.csv").set_index("rater_id")
    assert raters.loc[quitter, "excluded"] and raters.loc[quitter, "reason"] == "did not finish the survey"
    dropped = pd.read_csv(tmp_path / "dropped" / "table.csv")
    # every cell lost exactly the quitter's judgments of it
    assert int(kept.n.sum() + kept.n_unanswered.sum() - dropped.n.sum() - dropped.n_unanswered.sum()) == theirs
    report = (tmp_path / "dropped" / "report.md").read_text()
    assert "an unfinished survey (rater_completed false)" in report and "1 (excluded)." in report


def test_exclude_unfinished_says_so_when_no_row_tells_whether_its_rater_finished(votes, tmp_path):
    """Simulated votes (and exports of other survey tools) have no rater_completed: the option then excludes nobody,
    which the command says instead of passing over it silently; with the column, no such note."""
    path, frame, _ = votes
    for name, values in (("absent", None), ("empty", "")):
        unknown = frame.drop(columns="rater_completed") if values is None else frame.assign(rater_completed=values)
        unknown.to_csv(tmp_path / f"{name}.csv", index=False)
        res = runner.invoke(app, ["analyze", "--votes", str(tmp_path / f"{name}.csv"), "--out", str(tmp_path / name),
                                  "--n-boot", "100", "--exclude-unfinished"])
        assert res.exit_code == 0, res.output
        assert "note: --exclude-unfinished excluded nobody: no row of the votes says whether its rater finished" \
            in res.stderr, name
    res = runner.invoke(app, ["analyze", "--votes", str(path), "--out", str(tmp_path / "known"), "--n-boot", "100",
                              "--exclude-unfinished"])
    assert res.exit_code == 0, res.output
    assert "excluded nobody" not in res.stderr


def test_rater_completed_is_validated(votes):
    _, frame, quitter = votes
    design = load_design()
    bad = frame.copy()
    bad.loc[0, "rater_completed"] = "maybe"
    with pytest.raises(VotesError, match="rater_completed is not true/false"):
        validate_votes(bad, design)
    mixed = frame.copy()
    mixed.loc[mixed.index[mixed.rater_id == quitter][0], "rater_completed"] = "true"
    with pytest.raises(VotesError, match="marked both as having finished the survey and not"):
        validate_votes(mixed, design)
    unknown = frame.assign(rater_completed="")  # an empty column: unknown, as without it
    assert validate_votes(unknown, design).frame["rater_completed"].isna().all()

"""A comparison whose preferences come from votes on only part of its section's prompt set is marked § in
every table format, with its counts (`pref_n_prompts`/`pref_n_set`) in `<table>.csv` and report.md; a study
that covers every prompt gets no mark and no new text."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.analysis import AnalysisConfig, ExclusionRule, analyze
from userstudy.design import design_from_dict
from userstudy.simulate import simulate_votes
from userstudy.tables import write_outputs
from userstudy.votes import validate_votes
from userstudy_helpers import ideal_panel

runner = CliRunner()
MARK_MD, MARK_TEX = "§", r"$^{\S}$"


def _is(frame: pd.DataFrame, method: str) -> pd.Series:
    return (frame["method_left"] == method) | (frame["method_right"] == method)


def _keep_prompts(raw: pd.DataFrame, method: str, n: int) -> pd.DataFrame:
    """`raw` with `method`'s questions on its first `n` prompts only (a study that ran part of the set)."""
    rows = _is(raw, method) & (raw["is_attention_check"] == "false")
    keep = list(dict.fromkeys(raw.loc[rows, "prompt_id"]))[:n]
    return raw[~rows | raw["prompt_id"].isin(keep)].reset_index(drop=True)


def _write(raw, design, out, **cfg):
    a = analyze(validate_votes(raw, design), design, AnalysisConfig(n_boot=100, **cfg))
    write_outputs(a, out, source="votes.csv")
    return out


@pytest.fixture(scope="module")
def panel(paper_design):
    return simulate_votes(paper_design, ideal_panel(n_raters=3, default_rate=0.7, seed=4))


def test_mav3d_on_5_of_28_prompts_is_marked_everywhere(tmp_path, panel, paper_design):
    out = _write(_keep_prompts(panel, "mav3d", 5), paper_design, tmp_path / "res")
    md = (out / "table2.md").read_text()
    assert f"| MAV3D{MARK_MD} | — |" in md
    assert (f"{MARK_MD} Preferences from votes on only part of the section's prompts (n of N prompts): "
            "MAV3D (mav3d_28): 5 of 28.") in md
    assert md.count(MARK_MD) == 2  # the ablations cover their 5 prompts: no mark
    tex = (out / "table2.tex").read_text()
    assert f"MAV3D{MARK_TEX} & ---" in tex and r"MAV3D (mav3d\_28): 5 of 28." in tex
    table = pd.read_csv(out / "table2.csv").set_index(["section", "method"])
    assert (table.loc[(0, "mav3d"), "pref_n_prompts"], table.loc[(0, "mav3d"), "pref_n_set"]) == (5, 28)
    assert (table.loc[(1, "wo_3d"), "pref_n_prompts"], table.loc[(1, "wo_3d"), "pref_n_set"]) == (5, 5)
    assert table.loc[(0, "4dfy"), ["pref_n_prompts", "pref_n_set"]].isna().all()  # the primary has no preference
    report = (out / "report.md").read_text()
    assert "| table2 | MAV3D | mav3d_28 | 5 | 28 |" in report and f"marked {MARK_MD} in the tables" in report
    assert MARK_MD not in (out / "table3.md").read_text()


def test_a_full_study_has_no_mark_and_no_coverage_text(tmp_path, panel, paper_design):
    out = _write(panel, paper_design, tmp_path / "res")
    for name in ("table2.md", "table2.tex", "table3.md", "table3.tex", "report.md"):
        text = (out / name).read_text()
        assert MARK_MD not in text and r"\S" not in text and "Preferences from votes" not in text, name
    table = pd.read_csv(out / "table2.csv").set_index(["section", "method"])
    assert (table.loc[(0, "mav3d"), "pref_n_prompts"], table.loc[(0, "mav3d"), "pref_n_set"]) == (28, 28)


def test_votes_of_excluded_raters_unanswered_questions_and_checks_do_not_count(tmp_path, paper_design):
    design = paper_design.select_tables(["table2"])
    raw = simulate_votes(design, ideal_panel(n_raters=4, default_rate=0.7, attention_checks=2, seed=5))
    rater_a, rater_b = sorted(raw["rater_id"].unique())[:2]
    mav3d = _is(raw, "mav3d") & (raw["is_attention_check"] == "false")
    prompts = list(dict.fromkeys(raw.loc[mav3d, "prompt_id"]))
    # everyone voted on 5 prompts; rater_a (who fails every check) on all 28; on 3 more, rater_b left every
    # sub-question unanswered
    kept = mav3d & ~raw["prompt_id"].isin(prompts[:5]) & ~(raw["rater_id"] == rater_a)
    kept &= ~((raw["rater_id"] == rater_b) & raw["prompt_id"].isin(prompts[5:8]))
    raw = raw[~kept].copy()
    raw.loc[(raw["rater_id"] == rater_b) & raw["prompt_id"].isin(prompts[5:8]), "choice"] = "none"
    # attention checks on the missing prompts (a survey may show a check with any prompt's videos)
    checks = raw["is_attention_check"] == "true"
    raw.loc[checks, "prompt_id"] = prompts[10]
    fail = checks & (raw["rater_id"] == rater_a)
    raw.loc[fail, "choice"] = raw.loc[fail, "choice"].map({"left": "right", "right": "left"})
    out = _write(raw, paper_design, tmp_path / "res", exclusion=ExclusionRule(max_failed_share=0.2))
    table = pd.read_csv(out / "table2.csv").set_index(["section", "method"])
    assert (table.loc[(0, "mav3d"), "pref_n_prompts"], table.loc[(0, "mav3d"), "pref_n_set"]) == (5, 28)
    assert "MAV3D (mav3d_28): 5 of 28." in (out / "table2.md").read_text()


def test_a_survey_of_one_table_leaves_the_other_unmarked(tmp_path, paper_design):
    """Votes of `survey build --tables table2`, analysed with the paper's design: table3's rows are n/a, not
    'partial'."""
    raw = simulate_votes(paper_design.select_tables(["table2"]), ideal_panel(n_raters=3, seed=6))
    out = _write(raw, paper_design, tmp_path / "res")
    md = (out / "table3.md").read_text()
    assert MARK_MD not in md and "| w/ single-stage | — | n/a |" in md
    table = pd.read_csv(out / "table3.csv").set_index("method")
    assert (table.loc["single_stage", "pref_n_prompts"], table.loc["single_stage", "pref_n_set"]) == (0, 5)
    assert MARK_MD not in (out / "table2.md").read_text() and MARK_MD not in (out / "report.md").read_text()


def test_short_form_designs(tmp_path):
    # without a prompt set the size of the set is unknown: no mark, an empty pref_n_set
    plain = design_from_dict({"primary": "4dfy", "comparisons": ["mav3d", "wo_3d"]})
    raw = _keep_prompts(simulate_votes(plain, ideal_panel(n_raters=2, seed=7)), "mav3d", 3)
    out = _write(raw, plain, tmp_path / "plain")
    assert MARK_MD not in (out / "comparisons.md").read_text()
    table = pd.read_csv(out / "comparisons.csv").set_index("method")
    assert table.loc["mav3d", "pref_n_prompts"] == 3 and pd.isna(table.loc["mav3d", "pref_n_set"])
    # a short form naming its prompt set is held to it
    named = design_from_dict({"primary": "4dfy", "comparisons": ["mav3d", "wo_3d"], "prompt_set": "ablation_5"})
    raw = _keep_prompts(simulate_votes(named, ideal_panel(n_raters=2, seed=7)), "wo_3d", 2)
    md = (_write(raw, named, tmp_path / "named") / "comparisons.md").read_text()
    assert "| mav3d | — |" in md and f"| wo_3d{MARK_MD} | — |" in md and "wo_3d (ablation_5): 2 of 5." in md


def test_the_set_size_is_the_designs_n_prompts_else_the_prompt_files(tmp_path):
    # a study on the first 3 of the 28 MAV3D prompts (n_prompts) that has votes on all 3 is complete
    pilot = design_from_dict({"primary": "4dfy", "comparisons": ["mav3d"], "prompt_set": "mav3d_28", "n_prompts": 3})
    out = _write(simulate_votes(pilot, ideal_panel(n_raters=2, seed=9)), pilot, tmp_path / "pilot")
    assert MARK_MD not in (out / "comparisons.md").read_text()
    assert pd.read_csv(out / "comparisons.csv").set_index("method").loc["mav3d", "pref_n_set"] == 3
    # without n_prompts, the set is its file prompts/mav3d_28.txt
    whole = design_from_dict({"primary": "4dfy", "comparisons": ["mav3d"], "prompt_set": "mav3d_28"})
    raw = _keep_prompts(simulate_votes(whole, ideal_panel(n_raters=2, seed=9)), "mav3d", 3)
    md = (_write(raw, whole, tmp_path / "whole") / "comparisons.md").read_text()
    assert f"| mav3d{MARK_MD} |" in md and "mav3d (mav3d_28): 3 of 28." in md


def test_a_prompt_set_without_a_file_takes_the_designs_n_prompts(tmp_path):
    design = design_from_dict({"primary": "4dfy", "tables": {"mine": {"sections": [
        {"prompt_set": "my_prompts", "n_prompts": 6, "rows": ["4dfy", "mav3d"]}]}}})
    raw = _keep_prompts(simulate_votes(design, ideal_panel(n_raters=2, seed=8)), "mav3d", 4)
    md = (_write(raw, design, tmp_path / "res") / "mine.md").read_text()
    assert f"| mav3d{MARK_MD} |" in md and "mav3d (my_prompts): 4 of 6." in md


def test_analyze_command_marks_partial_preferences(tmp_path):
    votes = tmp_path / "votes.csv"
    assert runner.invoke(app, ["simulate-votes", "--raters", "3", "--out", str(votes)]).exit_code == 0
    raw = pd.read_csv(votes, dtype=str, keep_default_na=False)
    _keep_prompts(raw, "mav3d", 5).to_csv(votes, index=False)
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--out", str(tmp_path / "r"), "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    # the console says so too, as it does for partial CLIP values
    assert (f"note: 1 comparison(s) have votes on only part of their prompt set (marked {MARK_MD}; counts in "
            "report.md): mav3d (mav3d_28: 5 of 28)") in res.stdout, res.stdout
    assert f"| MAV3D{MARK_MD} |" in (tmp_path / "r" / "table2.md").read_text()

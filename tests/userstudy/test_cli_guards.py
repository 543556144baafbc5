"""Guards of `fourdfy analyze | simulate-votes | power`: `--metrics` never replaces an input or a file
analyze did not write, settings are range-checked before any work with the option's name in the
message, a panel whose raters are all excluded is one clear error, and a repeat that matches only
after case folding is not merged away."""

import json
import os

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.analysis import AnalysisConfig, AnalysisError, ExclusionRule, analyze
from userstudy.outputs import METRICS_KEYS
from userstudy.power import PowerConfig, power_table
from userstudy.simulate import PanelConfig, simulate_votes
from userstudy.votes import VotesError, validate_votes
from userstudy_helpers import ideal_panel, one_error_line

runner = CliRunner()


@pytest.fixture(scope="module")
def votes(tmp_path_factory):
    """A small simulated panel (MAV3D only, attention checks that attentive raters pass)."""
    path = tmp_path_factory.mktemp("guards") / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--comparisons", "mav3d", "--raters", "4", "--careless", "0",
                              "--lapse", "0", "--out", str(path)])
    assert res.exit_code == 0, res.output
    return path


def _analyze(votes, out, *extra):
    return runner.invoke(app, ["analyze", "--votes", str(votes), "--out", str(out), "--n-boot", "100", *extra])


# --- 1. --metrics ---------------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--votes", "--clip", "--design"])
def test_metrics_may_not_be_an_input(votes, tmp_path, option):
    """Each input used to be overwritten with the metrics JSON (exit 0)."""
    inputs = {"--votes": tmp_path / "votes.csv", "--clip": tmp_path / "clip.csv", "--design": tmp_path / "d.yaml"}
    inputs["--votes"].write_bytes(votes.read_bytes())
    inputs["--clip"].write_text("method,clip\nmav3d,33.9\n4dfy,34.2\n")
    inputs["--design"].write_text("primary: 4dfy\ncomparisons: [mav3d]\n"
                                  "attention_check: {correct_method: 4dfy, decoys: [attention_decoy]}\n")
    before = {p: p.read_bytes() for p in inputs.values()}
    out = tmp_path / "res"
    args = ["analyze", "--out", str(out), "--n-boot", "100", "--metrics", str(inputs[option])]
    for opt, path in inputs.items():
        args += [opt, str(path)]
    line = one_error_line(runner.invoke(app, args))
    assert line == (f"error: --metrics {inputs[option]} is the {option} file {inputs[option]}; the metrics would "
                    "overwrite it: give --metrics another path")
    assert {p: p.read_bytes() for p in inputs.values()} == before
    assert not out.exists()


def test_metrics_may_not_be_an_input_by_another_name(votes, tmp_path):
    copy = tmp_path / "votes.csv"
    copy.write_bytes(votes.read_bytes())
    link = tmp_path / "link.json"
    link.symlink_to(copy)
    line = one_error_line(_analyze(copy, tmp_path / "res", "--metrics", str(link)))
    assert f"is the --votes file {copy}" in line
    assert copy.read_bytes() == votes.read_bytes() and link.is_symlink()


def test_metrics_replaces_only_an_earlier_metrics_file(votes, tmp_path):
    metrics = tmp_path / "m" / "userstudy.json"
    res = _analyze(votes, tmp_path / "a", "--metrics", str(metrics))
    assert res.exit_code == 0, res.output
    written = json.loads(metrics.read_text())
    # what is_metrics_file looks for is what analyze writes, besides the later `significance` (not required, so a
    # metrics file of an earlier version is still replaced)
    assert set(written) == {*METRICS_KEYS, "significance"}
    metrics.write_text(json.dumps({k: v for k, v in {**written, "synthetic": 7}.items() if k != "significance"}))
    res = _analyze(votes, tmp_path / "a", "--metrics", str(metrics))  # a rerun replaces it
    assert res.exit_code == 0, res.output
    assert json.loads(metrics.read_text())["synthetic"] == 1

    for text in ("rater_id,choice\nr1,left\n", '{"kappa": {}}\n', "[1, 2]\n"):  # data, other JSON
        other = tmp_path / "other.json"
        other.write_text(text)
        line = one_error_line(_analyze(votes, tmp_path / "b", "--metrics", str(other)))
        assert line == (f"error: --metrics {other} exists and is not a metrics file of `fourdfy analyze` (a JSON "
                        "object with the keys synthetic, data, preference, kappa); only such a file is replaced: "
                        "move it or give --metrics another path")
        assert other.read_text() == text and not (tmp_path / "b").exists()


# --- 2., 3. analyze settings and exclusion --------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--alpha", "1.5"], "--alpha must lie strictly between 0 and 1 (e.g. 0.05), got 1.5"),
    (["--alpha", "0"], "--alpha must lie strictly between 0 and 1 (e.g. 0.05), got 0"),
    (["--seed", "-3"], "--seed must be a non-negative integer, got -3"),
    (["--n-boot", "5"], "--n-boot must be at least 100, got 5"),
    (["--max-failed-checks", "-1"], "--max-failed-checks must be 0 or more"),
    (["--max-failed-share", "-1"], "--max-failed-share must lie in [0, 1] (1 = no share rule), got -1"),
    (["--max-failed-share", "1.5"], "--max-failed-share must lie in [0, 1] (1 = no share rule), got 1.5"),
])
def test_analyze_settings_are_checked_first(tmp_path, args, message):
    """Checked before any file is read: a votes file that does not exist is not even looked at."""
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(tmp_path / "missing.csv"), "--out", str(out), *args])
    assert one_error_line(res).startswith(f"error: {message}")
    assert not out.exists()


def test_all_raters_excluded_is_one_clear_error(tmp_path):
    """It used to fail with "operation 'truediv' not supported for dtype 'str' with dtype 'int64'"."""
    votes = tmp_path / "v.csv"
    res = runner.invoke(app, ["simulate-votes", "--comparisons", "mav3d", "--raters", "3", "--careless", "0",
                              "--lapse", "1", "--out", str(votes)])
    assert res.exit_code == 0, res.output
    out, metrics = tmp_path / "res", tmp_path / "metrics.json"
    line = one_error_line(_analyze(votes, out, "--metrics", str(metrics)))
    assert line == ("error: all 3 raters were excluded by the attention-check rule (a failed share of "
                    "attention-check judgments above 0.2); loosen --max-failed-share/--max-failed-checks")
    assert not out.exists() and not metrics.exists()
    line = one_error_line(_analyze(votes, out, "--max-failed-share", "1", "--max-failed-checks", "0"))
    assert "(more than 0 failed attention-check judgments)" in line and not out.exists()
    res = _analyze(votes, out, "--max-failed-share", "1")  # no rule: everybody analysed
    assert res.exit_code == 0, res.output
    assert "from 3 raters analysed (0 excluded" in res.output


def test_votes_of_attention_checks_only_are_one_clear_error(tiny_votes, tmp_path):
    design = tmp_path / "d.yaml"
    design.write_text("primary: 4dfy\ncomparisons: [mav3d, wo_3d]\n"
                      "attention_check: {correct_method: 4dfy, decoys: [broken]}\n")
    votes = tmp_path / "checks.csv"
    tiny_votes[tiny_votes.is_attention_check == "true"].to_csv(votes, index=False)
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out),
                              "--n-boot", "100", "--max-failed-share", "1"])
    assert one_error_line(res) == "error: no judgments to analyse: every row is an attention check"
    assert not out.exists()


def test_library_keeps_its_own_names(paper_design):
    v = validate_votes(simulate_votes(paper_design, ideal_panel(n_raters=2, attention_checks=1, lapse=1.0,
                                                                comparisons=("mav3d",))), paper_design)
    with pytest.raises(AnalysisError, match=r"all 2 raters were excluded .*max_failed_share") as info:
        analyze(v, paper_design, AnalysisConfig(n_boot=100))
    assert info.value.all_excluded == 2
    with pytest.raises(ValueError, match=r"^alpha must lie strictly between 0 and 1"):
        analyze(v, paper_design, AnalysisConfig(alpha=1.5, exclusion=ExclusionRule(max_failed_share=1.0)))
    with pytest.raises(ValueError, match=r"^n_raters must be at least 1, got 0"):
        simulate_votes(paper_design, PanelConfig(n_raters=0))
    with pytest.raises(ValueError, match=r"^unanswered must be below 1"):
        simulate_votes(paper_design, PanelConfig(unanswered=1.0))
    with pytest.raises(ValueError, match=r"^sims must be at least 10, got 5"):
        power_table(PowerConfig(sims=5))


# --- 4., 5. simulate-votes and power name their options --------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--unanswered", "1"], "--unanswered must be below 1 (the probability a sub-question is skipped; 1 leaves "
                            "nothing answered), got 1"),
    (["--raters", "0"], "--raters must be at least 1, got 0"),
    (["--icc", "1"], "--icc must be below 1"),
    (["--careless", "2"], "--careless must lie in [0, 1], got 2"),
    (["--checks", "-1"], "--checks must be 0 or more, got -1"),
    (["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
    (["--rates", "1.5"], "--rates: the rates of mav3d must lie in [0, 1]"),
])
def test_simulate_settings_name_the_option(tmp_path, args, message):
    out = tmp_path / "v.csv"
    res = runner.invoke(app, ["simulate-votes", "--out", str(out), *args])
    assert one_error_line(res).startswith(f"error: {message}")
    assert not out.exists()


def test_simulate_almost_all_unanswered_still_answers_something(tmp_path):
    out = tmp_path / "v.csv"
    res = runner.invoke(app, ["simulate-votes", "--out", str(out), "--unanswered", "0.9", "--comparisons", "mav3d"])
    assert res.exit_code == 0, res.output
    assert (pd.read_csv(out, dtype=str)["choice"] != "none").any()


@pytest.mark.parametrize("args,message", [
    (["--prompts", "0"], "--prompts must be at least 1, got 0"),
    (["--family", "0"], "--family must be at least 1, got 0"),
    (["--sims", "5"], "--sims must be at least 10, got 5"),
    (["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
    (["--max-raters", "1"], "--max-raters must be at least 2"),
    (["--target", "1"], "--target must lie strictly between 0 and 1, got 1"),
    (["--unanswered", "1"], "--unanswered must lie in [0, 1), got 1"),
])
def test_power_settings_name_the_option(tmp_path, args, message):
    out = tmp_path / "power.csv"
    res = runner.invoke(app, ["power", "--out", str(out), *args])
    assert one_error_line(res).startswith(f"error: {message}")
    assert not out.exists()


# --- 6. a repeat that matches only after case folding ---------------------------------------------

def test_a_respelled_repeat_is_not_merged(tiny_votes, small_design):
    """`Appearance` typed where `motion` belongs used to vanish as "1 duplicates merged"."""
    raw = tiny_votes.copy()
    assert (raw.loc[3, ["rater_id", "question_id", "criterion"]] == ["r1", "q1", "motion"]).all()
    raw.loc[3, ["criterion", "choice"]] = ["Appearance", "left"]  # r1's q1 appearance row (line 2) says left
    with pytest.raises(VotesError) as info:
        validate_votes(raw, small_design, source="votes.csv")
    err = info.value
    assert "match only when case is ignored" in str(err)
    assert sorted(err.rows["line"]) == [2, 5]
    assert set(err.rows["criterion"]) == {"appearance", "Appearance"}  # shown as written

    same = pd.concat([tiny_votes, tiny_votes.iloc[[0]]], ignore_index=True)  # truly identical: still merged
    assert validate_votes(same, small_design).duplicates_merged == 1


def test_questions_lacking_a_criterion_are_noted(votes, tmp_path):
    raw = pd.read_csv(votes, dtype=str, keep_default_na=False)
    first = raw.iloc[0]
    drop = (raw.rater_id == first.rater_id) & (raw.question_id == first.question_id) & (raw.criterion == "structure")
    assert drop.sum() == 1
    lacking = tmp_path / "lacking.csv"
    raw[~drop].to_csv(lacking, index=False)
    res = _analyze(lacking, tmp_path / "res")
    assert res.exit_code == 0, res.output
    assert (f"note: 1 question(s) of a rater lack a row for some criterion, e.g. rater {first.rater_id}, question "
            f"{first.question_id} (first row on line 2): no structure;") in res.stderr
    res = _analyze(votes, tmp_path / "res2")
    assert res.exit_code == 0 and "lack a row" not in res.stderr


# --- 7. a folder where a file is expected -----------------------------------------------------------

@pytest.mark.parametrize("option,what", [("--votes", "votes CSV"), ("--clip", "CLIP CSV"),
                                         ("--design", "design YAML/JSON")])
def test_a_folder_for_an_input_is_called_a_folder(votes, tmp_path, option, what):
    folder = tmp_path / "in"
    folder.mkdir()
    out = tmp_path / "res"
    args = ["analyze", "--out", str(out)] + ([] if option == "--votes" else ["--votes", str(votes)])
    line = one_error_line(runner.invoke(app, args + [option, str(folder)]))
    assert line == f"error: {option} {folder} is a folder; give the {what} file"
    assert not out.exists() and os.listdir(folder) == []


def test_votes_whose_judgments_are_all_unanswered_are_one_clear_error(tiny_votes, tmp_path):
    """It used to exit 0 with every cell n/a and no word why."""
    design = tmp_path / "d.yaml"
    design.write_text("primary: 4dfy\ncomparisons: [mav3d, wo_3d]\n"
                      "attention_check: {correct_method: 4dfy, decoys: [broken]}\n")
    votes = tmp_path / "unanswered.csv"
    frame = tiny_votes.copy()
    judgments = frame.is_attention_check != "true"
    frame.loc[judgments, "choice"] = "none"
    frame.to_csv(votes, index=False)
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out),
                              "--n-boot", "100", "--max-failed-share", "1"])
    assert one_error_line(res) == (
        f"error: no judgments to analyse: every judgment is unanswered (choice none in all {int(judgments.sum())} "
        "rows that are not attention checks); check that the votes file holds the raters' answers")
    assert not out.exists()

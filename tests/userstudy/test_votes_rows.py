"""Rows the analysis must not count or misname: a prompt outside its comparison's prompt set (the design's
`prompt_set`), a question without the primary on either side, an `is_attention_check` value other than
true/false."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.design import design_from_dict
from userstudy.votes import VotesError, validate_votes

runner = CliRunner()
STRAY = "a_prompt_nobody_has"


def _question(rater, comparison, prompt, check="false", left=None):
    """The five rows of one question: the primary (4dfy) right, `comparison` left (or `left` if given)."""
    return [(rater, f"{comparison}__{prompt}", prompt, left or comparison, "4dfy", crit, "right", check)
            for crit in ("appearance", "structure", "motion", "text", "overall")]


def _error(frame, design) -> VotesError:
    with pytest.raises(VotesError) as err:
        validate_votes(frame, design)
    return err.value


def test_a_prompt_outside_the_comparisons_prompt_set_is_an_error(make_votes, paper_design):
    ok = _question("r1", "mav3d", "a_panda_dancing") + _question("r1", "wo_3d", "a_goat_drinking_beer")
    validate_votes(make_votes(ok), paper_design)  # prompts of mav3d_28 and ablation_5
    # a_cat_singing is a MAV3D prompt, but not one of the five ablation prompts
    err = _error(make_votes(ok + _question("r1", "mav3d", STRAY) + _question("r1", "wo_3d", "a_cat_singing")),
                 paper_design)
    assert [what for what, _ in err.problems] == [
        "prompt_id not in the prompt set mav3d_28 of its comparison mav3d (prompts/mav3d_28.txt, the design's "
        "prompt_set; a prompt of your own needs a design whose section names its prompt set, or none)",
        "prompt_id not in the prompt set ablation_5 of its comparison wo_3d_img, wo_3d, wo_img, wo_hybrid, hexplane, "
        "single_stage, single_grid (prompts/ablation_5.txt, the design's prompt_set; a prompt of your own needs a "
        "design whose section names its prompt set, or none)"]
    assert list(err.problems[0][1]["line"]) == [12, 13, 14, 15, 16]
    assert set(err.problems[0][1]["prompt_id"]) == {STRAY}
    assert list(err.problems[1][1]["line"]) == [17, 18, 19, 20, 21]


def test_without_a_prompt_set_or_its_file_any_prompt_is_accepted(make_votes):
    rows = _question("r1", "mav3d", STRAY)
    for design in ({"primary": "4dfy", "comparisons": ["mav3d"]},  # no prompt_set (a design of your own)
                   {"primary": "4dfy", "comparisons": ["mav3d"], "prompt_set": "my_own_prompts", "n_prompts": 2}):
        votes = validate_votes(make_votes(rows), design_from_dict(design))
        assert set(votes.frame["prompt_id"]) == {STRAY} and votes.frame["answered"].all()


def test_analyze_refuses_a_stray_prompt_and_writes_nothing(tmp_path):
    votes = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--comparisons", "mav3d", "--raters", "2", "--out", str(votes)])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(votes, dtype=str, keep_default_na=False)
    stray = frame[frame["question_id"] == frame["question_id"].iloc[0]].assign(
        question_id=f"mav3d__{STRAY}", prompt_id=STRAY)
    pd.concat([frame, stray]).to_csv(votes, index=False)
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--out", str(out), "--n-boot", "100"])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: votes.csv: 1 problem(s), nothing was analysed:\n- prompt_id not in the "
                                 "prompt set mav3d_28 of its comparison mav3d")
    assert f"mav3d__{STRAY}" in res.stderr and not out.exists()


def test_a_question_without_the_primary_says_so(make_votes, paper_design):
    rows = _question("r1", "mav3d", "a_panda_dancing")
    neither = [(r, q, p, "wo_3d", "wo_img", c, ch, f) for r, q, p, _, _, c, ch, f in
               _question("r1", "wo_3d", "a_panda_dancing")]
    err = _error(make_votes(rows + neither), paper_design)
    assert len(err.problems) == 1
    what, shown = err.problems[0]
    assert what.startswith("the primary 4dfy is on neither side (a question compares 4dfy with one of its "
                           "comparisons;") and "not in the design" not in what
    assert list(shown["line"]) == [7, 8, 9, 10, 11]
    # a method the design does not know, against the primary: still "not in the design"
    err = _error(make_votes(rows + _question("r1", "my_plugin", "a_panda_dancing")), paper_design)
    assert err.problems[0][0].startswith("method not in the design (primary 4dfy;")


@pytest.mark.parametrize("value", ["yes", "1", "no"])
def test_is_attention_check_holds_only_true_or_false(make_votes, small_design, value):
    rows = _question("r1", "mav3d", "p1") + _question("r2", "mav3d", "p1", check=value)
    err = _error(make_votes(rows), small_design)
    assert [what for what, _ in err.problems] == [
        f"is_attention_check is not true/false (found {value!r}; the column holds only true or false)"]
    assert list(err.problems[0][1]["is_attention_check"]) == [value] * 5  # as the file has it
    assert list(err.problems[0][1]["line"]) == [7, 8, 9, 10, 11]


def test_true_and_false_in_any_case_are_read(make_votes, small_design):
    rows = (_question("r1", "mav3d", "p1", check="FALSE") + _question("r2", "mav3d", "p1", check="False")
            + _question("r1", "check1", "p9", check="True", left="broken"))
    votes = validate_votes(make_votes(rows), small_design)
    assert votes.frame["is_attention_check"].tolist() == [False] * 10 + [True] * 5

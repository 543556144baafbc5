"""The votes check asks what `survey build` asks: a question's prompt must be one of its section's prompts
(`userstudy.design.section_prompts`: the first `n_prompts` of `<prompts dir>/<prompt_set>.txt`), read from the
folder `analyze --prompts-dir` names (default: the project's prompts/)."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from prompts import PROMPT_DIR, load_prompts
from userstudy.design import design_from_dict
from userstudy.votes import VotesError, load_votes, validate_votes
from userstudy_helpers import one_error_line

runner = CliRunner()
ABLATION = list(load_prompts(PROMPT_DIR / "ablation_5.txt"))
MINE = "# my prompts\nA cat jumping.\nA dog running.\nA bird flying.\nA fish swimming.\n"
MINE_SLUGS = ["a_cat_jumping", "a_dog_running", "a_bird_flying", "a_fish_swimming"]


def _question(rater, comparison, prompt):
    """The five rows of one question: the primary (4dfy) right, `comparison` left."""
    return [(rater, f"{comparison}__{prompt}", prompt, comparison, "4dfy", crit, "right")
            for crit in ("appearance", "structure", "motion", "text", "overall")]


def _design(prompt_set, n_prompts=None):
    d = {"primary": "4dfy", "comparisons": ["mav3d"], "prompt_set": prompt_set}
    return design_from_dict(d if n_prompts is None else {**d, "n_prompts": n_prompts})


def _problems(frame, design, **kw) -> list[tuple[str, pd.DataFrame]]:
    with pytest.raises(VotesError) as err:
        validate_votes(frame, design, **kw)
    return err.value.problems


def test_a_prompt_after_the_first_n_prompts_is_refused_like_an_unknown_one(make_votes):
    design = _design("ablation_5", n_prompts=2)
    ok = _question("r1", "mav3d", ABLATION[0]) + _question("r1", "mav3d", ABLATION[1])
    validate_votes(make_votes(ok), design)
    # the third prompt of the file is not asked with n_prompts 2; an unknown one is refused beside it
    problems = _problems(make_votes(ok + _question("r1", "mav3d", ABLATION[2]) + _question("r1", "mav3d", "nope")),
                         design)
    assert [what for what, _ in problems] == [
        "prompt_id not in the prompt set ablation_5 of its comparison mav3d (the first 2 prompts of "
        "prompts/ablation_5.txt, the design's prompt_set and n_prompts; a later prompt of the file needs a larger "
        "n_prompts; a prompt of your own needs a design whose section names its prompt set, or none)"]
    rows = problems[0][1]
    assert list(rows["line"]) == list(range(12, 22)) and set(rows["prompt_id"]) == {ABLATION[2], "nope"}
    # every prompt of the file is asked with n_prompts equal to its size, or none: the message is as before
    for n in (None, len(ABLATION)):
        validate_votes(make_votes(ok + _question("r1", "mav3d", ABLATION[2])), _design("ablation_5", n))
        (what, _), = _problems(make_votes(ok + _question("r1", "mav3d", "nope")), _design("ablation_5", n))
        assert what == ("prompt_id not in the prompt set ablation_5 of its comparison mav3d (prompts/ablation_5.txt, "
                        "the design's prompt_set; a prompt of your own needs a design whose section names its "
                        "prompt set, or none)")


def test_sections_of_one_set_asking_different_prompts_are_told_apart(make_votes):
    design = design_from_dict({"primary": "4dfy", "tables": {"t": {"sections": [
        {"prompt_set": "ablation_5", "n_prompts": 1, "rows": ["4dfy", "mav3d"]},
        {"prompt_set": "ablation_5", "rows": ["4dfy", "wo_3d"]}]}}})
    # the second prompt: asked of wo_3d (every prompt), not of mav3d (the first only)
    rows = _question("r1", "mav3d", ABLATION[1]) + _question("r1", "wo_3d", ABLATION[1])
    (what, shown), = _problems(make_votes(rows), design)
    assert what.startswith("prompt_id not in the prompt set ablation_5 of its comparison mav3d (the first 1 prompts")
    assert set(shown["method_left"]) == {"mav3d"}


def test_votes_are_checked_against_the_given_prompts_folder(make_votes, tmp_path):
    (tmp_path / "mine.txt").write_text(MINE, encoding="utf-8")
    design = _design("mine", n_prompts=3)
    ok = _question("r1", "mav3d", MINE_SLUGS[0]) + _question("r1", "mav3d", MINE_SLUGS[2])
    votes = validate_votes(make_votes(ok), design, prompts_dir=tmp_path)
    assert votes.prompts_dir == tmp_path
    (what, shown), = _problems(make_votes(ok + _question("r1", "mav3d", MINE_SLUGS[3])), design, prompts_dir=tmp_path)
    assert what.startswith(f"prompt_id not in the prompt set mine of its comparison mav3d (the first 3 prompts of "
                           f"{tmp_path / 'mine.txt'}, the design's prompt_set and n_prompts;")
    assert set(shown["prompt_id"]) == {MINE_SLUGS[3]}
    # the project's prompts/ has no mine.txt: without the folder, any prompt is accepted (a set of another folder)
    validate_votes(make_votes(ok + _question("r1", "mav3d", MINE_SLUGS[3])), design)


def test_a_set_of_the_folder_is_read_there_not_in_the_projects_prompts(make_votes, tmp_path):
    """A file of the folder named like one of the project's: the folder's prompts are asked."""
    (tmp_path / "ablation_5.txt").write_text(MINE, encoding="utf-8")
    design = _design("ablation_5")
    mine, paper = _question("r1", "mav3d", MINE_SLUGS[0]), _question("r1", "mav3d", ABLATION[0])
    validate_votes(make_votes(mine), design, prompts_dir=tmp_path)
    assert _problems(make_votes(mine), design)[0][0].startswith("prompt_id not in the prompt set ablation_5")
    (what, shown), = _problems(make_votes(paper), design, prompts_dir=tmp_path)
    assert what.startswith(f"prompt_id not in the prompt set ablation_5 of its comparison mav3d "
                           f"({tmp_path / 'ablation_5.txt'}, the design's prompt_set;")
    # several surveys at once: each file and the whole checked against the folder
    paths = []
    for name, rater in (("a.csv", "r1"), ("b.csv", "r2")):
        paths.append(tmp_path / name)
        make_votes(_question(rater, "mav3d", MINE_SLUGS[1])).to_csv(paths[-1], index=False)
    assert load_votes(paths, design, prompts_dir=tmp_path).frame["prompt_id"].eq(MINE_SLUGS[1]).all()
    with pytest.raises(VotesError, match="^a.csv: 1 problem.*\n- prompt_id not in the prompt set ablation_5"):
        load_votes(paths, design)


def test_n_prompts_beyond_the_folders_file_is_named(make_votes, tmp_path):
    (tmp_path / "mine.txt").write_text(MINE, encoding="utf-8")
    (what, shown), = _problems(make_votes(_question("r1", "mav3d", MINE_SLUGS[0])), _design("mine", 9),
                               prompts_dir=tmp_path)
    assert shown is None
    assert what == ("prompt set 'mine' of mav3d cannot tell which prompts are asked, so its rows cannot be checked: "
                    "n_prompts 9 is more than the 4 prompts of mine.txt: lower the section's n_prompts in the "
                    "design, or add prompts to the file")


def _simulate(votes, design, prompts_dir):
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--rates", "0.7", "--raters", "3",
                              "--checks", "0", "--prompts-dir", str(prompts_dir), "--out", str(votes)])
    assert res.exit_code == 0, res.output


def test_analyze_reads_the_sets_of_its_prompts_dir(tmp_path):
    """`simulate-votes --prompts-dir` votes (those `survey build --prompts-dir` asks) are analysed with the same
    folder; without it they are checked against the project's set of that name and refused."""
    folder = tmp_path / "my_prompts"
    folder.mkdir()
    (folder / "mav3d_28.txt").write_text(MINE, encoding="utf-8")
    design = tmp_path / "design.yaml"
    design.write_text("primary: 4dfy\ncomparisons: [mav3d]\nprompt_set: mav3d_28\nn_prompts: 3\n")
    votes = tmp_path / "votes.csv"
    _simulate(votes, design, folder)
    assert list(dict.fromkeys(pd.read_csv(votes)["prompt_id"])) == MINE_SLUGS[:3]
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out),
                              "--n-boot", "100"])
    assert res.exit_code == 2 and not out.exists()
    assert res.stderr.startswith("error: votes.csv: 1 problem(s), nothing was analysed:\n- prompt_id not in the "
                                 "prompt set mav3d_28 of its comparison mav3d (the first 3 prompts of "
                                 "prompts/mav3d_28.txt,")
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out),
                              "--n-boot", "100", "--prompts-dir", str(folder)])
    assert res.exit_code == 0, res.output
    assert set(pd.read_csv(out / "per_prompt.csv")["prompt_id"]) == set(MINE_SLUGS[:3])


def test_analyze_counts_a_sections_prompts_in_its_prompts_dir(tmp_path):
    """Without n_prompts a section's set is its file: votes on 3 of the folder's 4 prompts are marked 3 of 4 (the
    project's mav3d_28.txt, of 28, is not the set these votes were asked from)."""
    folder = tmp_path / "my_prompts"
    folder.mkdir()
    (folder / "mav3d_28.txt").write_text(MINE, encoding="utf-8")
    design = tmp_path / "design.yaml"
    design.write_text("primary: 4dfy\ncomparisons: [mav3d]\nprompt_set: mav3d_28\n")
    votes = tmp_path / "votes.csv"
    _simulate(votes, design, folder)
    frame = pd.read_csv(votes, dtype=str, keep_default_na=False)
    frame[frame["prompt_id"] != MINE_SLUGS[3]].to_csv(votes, index=False)
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out),
                              "--n-boot", "100", "--prompts-dir", str(folder)])
    assert res.exit_code == 0, res.output
    row = pd.read_csv(out / "comparisons.csv").set_index("method").loc["mav3d"]
    assert (row["pref_n_prompts"], row["pref_n_set"]) == (3, 4)
    assert "comparison(s) have votes on only part of their prompt set" in res.output and "3 of 4" in res.output


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_analyze_refuses_a_prompts_dir_that_is_no_folder(tmp_path, kind):
    path = tmp_path / "nowhere"
    if kind == "file":
        path.write_text("A cat jumping.\n")
    res = runner.invoke(app, ["analyze", "--votes", str(tmp_path / "votes.csv"), "--out", str(tmp_path / "res"),
                              "--prompts-dir", str(path)])
    what = "a file" if kind == "file" else "not found"
    assert one_error_line(res) == (f"error: --prompts-dir {path} is {what}: give the folder that holds the design's "
                                   "<prompt_set>.txt files")


def test_analyze_help_names_prompts_dir_as_survey_build_does():
    res = runner.invoke(app, ["analyze", "--help"], terminal_width=200)
    assert res.exit_code == 0
    text = " ".join(res.output.replace("│", " ").split())
    assert "--prompts-dir" in text and "default: the project's prompts/" in text

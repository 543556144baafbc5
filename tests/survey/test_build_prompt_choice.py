"""A design section without `prompt_set`: `survey build` asks its comparison on every prompt both methods have
videos of, and `simulate-votes --artifacts` simulates answers to exactly those questions (one rule,
`userstudy.design.paired_prompts`), so simulated votes look like the export of that survey."""

import shutil

import pandas as pd
import yaml
from survey_helpers import PROMPTS
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.design import design_from_dict
from userstudy.simulate import PanelConfig, simulate_votes
from userstudy.survey import load_bundle
from userstudy.survey.bundle import artifact_pairs

runner = CliRunner()
# the short form names no prompt_set: the survey's prompts come from the artifacts
OWN = {"name": "own", "primary": "4dfy", "comparisons": ["mav3d", "wo_3d"],
       "attention_check": {"correct_method": "4dfy", "decoys": ["attention_decoy"]}}


def test_simulated_votes_answer_the_questions_the_built_survey_asks(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    own = tmp_path / "arts"
    shutil.copytree(arts, own)
    # mav3d has three prompts, 4D-fy two of them after this, wo_3d one: the survey asks 2 + 1 questions
    dropped = next(s for s in PROMPTS if s not in ("a_panda_dancing", "a_goat_drinking_beer"))
    shutil.rmtree(own / "4dfy" / dropped)
    design = tmp_path / "own.yaml"
    design.write_text(yaml.safe_dump(OWN), encoding="utf-8")

    res = runner.invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(own),
                              "--prompts-dir", str(prompts_dir), "--out", str(tmp_path / "bundle")])
    assert res.exit_code == 0, res.output
    asked = {(q.question_id, q.prompt_id, q.method_b) for q in load_bundle(tmp_path / "bundle").questions
             if not q.is_attention_check}
    assert sorted(asked) == [("mav3d__a_goat_drinking_beer", "a_goat_drinking_beer", "mav3d"),
                             ("mav3d__a_panda_dancing", "a_panda_dancing", "mav3d"),
                             ("wo_3d__a_panda_dancing", "a_panda_dancing", "wo_3d")]

    votes = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--artifacts", str(own), "--raters", "3",
                              "--rates", "0.6", "--out", str(votes)])
    assert res.exit_code == 0, res.output
    assert "no prompt_set" not in res.output  # the note for simulating without the artifacts
    frame = pd.read_csv(votes, dtype=str, keep_default_na=False)
    main = frame[frame.is_attention_check == "false"]
    other = main.method_left.where(main.method_left != "4dfy", main.method_right)
    simulated = set(zip(main.question_id, main.prompt_id, other))
    assert simulated == asked
    assert main.groupby("rater_id").question_id.nunique().eq(len(asked)).all()  # every rater, every question

    # the library call takes the same pairs
    frame = simulate_votes(design_from_dict(OWN), PanelConfig(n_raters=2), artifact_pairs([own]))
    assert set(frame.loc[frame.is_attention_check == "false", "question_id"]) == {q for q, _, _ in asked}


def test_without_the_artifacts_the_note_says_how_to_match_the_survey(tmp_path):
    design = tmp_path / "own.yaml"
    design.write_text(yaml.safe_dump(OWN), encoding="utf-8")
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "2", "--rates", "0.6",
                              "--out", str(tmp_path / "votes.csv")])
    assert res.exit_code == 0, res.output
    assert ("note: mav3d, wo_3d: the design names no prompt_set, so simulated on generic prompt ids (n_prompts) or "
            "the paper's 28; a survey of this design asks about the prompts both methods have videos of: give the "
            "--artifacts of `survey build` to simulate those") in res.stderr


def test_a_comparison_without_a_shared_prompt_is_refused_as_survey_build_refuses_it(study_inputs, tmp_path):
    arts, _, _ = study_inputs
    own = tmp_path / "arts"
    shutil.copytree(arts, own)
    shutil.rmtree(own / "wo_3d")
    shutil.copytree(arts / "wo_3d" / "a_panda_dancing", own / "wo_3d" / "a_cat_alone")  # a prompt 4D-fy lacks
    design = tmp_path / "own.yaml"
    design.write_text(yaml.safe_dump(OWN), encoding="utf-8")
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--artifacts", str(own), "--raters", "2",
                              "--out", str(tmp_path / "votes.csv")])
    assert res.exit_code == 2
    assert "error: wo_3d: no prompt has videos of both 4dfy and wo_3d in the artifacts" in res.stderr
    assert not (tmp_path / "votes.csv").exists()
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--artifacts", str(tmp_path / "nowhere"),
                              "--out", str(tmp_path / "votes.csv")])
    assert res.exit_code == 2
    assert res.stderr.splitlines() == [f"error: artifacts folder not found: {tmp_path / 'nowhere'} (--artifacts names "
                                       "a folder holding <method>/<prompt_slug>/)"]

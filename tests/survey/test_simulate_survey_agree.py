"""`simulate-votes` and `survey build` ask the same questions of one design: a section's `n_prompts` takes the first
prompts of its `prompt_set` in both (`userstudy.design.section_prompts`), both read the sets from `--prompts-dir`,
and both name questions and attention checks by the ids of `userstudy.design`."""

import pandas as pd
import pytest
import yaml
from survey_helpers import PROMPTS, STUDY, one_error_line
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.design import design_from_dict, load_design
from userstudy.simulate import PanelConfig, simulate_votes
from userstudy.survey import load_bundle
from userstudy.survey.bundle import plan_questions

runner = CliRunner()
SLUGS = list(PROMPTS)  # set3.txt's prompts, in file order


def _design(tmp_path, n_prompts):
    """The survey tests' design (set3: 3 prompts vs mav3d, set1: 1 prompt vs wo_3d), set3's section asking
    `n_prompts`."""
    data = yaml.safe_load(yaml.safe_dump(STUDY))
    data["tables"]["t"]["sections"][0]["n_prompts"] = n_prompts
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _simulate(tmp_path, design, prompts_dir, *extra):
    votes = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--prompts-dir", str(prompts_dir),
                              "--raters", "2", "--rates", "0.6", "--out", str(votes), *extra])
    return res, votes


def test_n_prompts_below_the_set_is_the_first_prompts_in_the_survey_and_the_simulation(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    design = _design(tmp_path, 2)
    res = runner.invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(arts),
                              "--prompts-dir", str(prompts_dir), "--out", str(tmp_path / "bundle")])
    assert res.exit_code == 0, res.output
    asked = {(q.question_id, q.prompt_id) for q in load_bundle(tmp_path / "bundle").questions
             if not q.is_attention_check}
    # the first two of set3.txt (the third, not its last two nor all three), and set1's one prompt
    assert asked == {(f"mav3d__{SLUGS[0]}", SLUGS[0]), (f"mav3d__{SLUGS[1]}", SLUGS[1]),
                     ("wo_3d__a_panda_dancing", "a_panda_dancing")}

    res, votes = _simulate(tmp_path, design, prompts_dir)
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(votes, dtype=str, keep_default_na=False)
    main = frame[frame.is_attention_check == "false"]
    assert set(zip(main.question_id, main.prompt_id)) == asked
    assert "generic" not in res.output  # every set was found in --prompts-dir


def test_n_prompts_above_the_set_is_refused_by_both_in_the_same_words(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    design = _design(tmp_path, 4)
    want = ("n_prompts 4 is more than the 3 prompts of set3.txt: lower the section's n_prompts in the design, or "
            "add prompts to the file")
    res = runner.invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(arts),
                              "--prompts-dir", str(prompts_dir), "--out", str(tmp_path / "bundle")])
    assert res.exit_code == 2
    assert f"- prompt set 'set3': {want}" in res.stderr.splitlines()
    assert not (tmp_path / "bundle").exists()
    res, votes = _simulate(tmp_path, design, prompts_dir)
    assert res.exit_code == 2
    assert one_error_line(res) == f"error: {want}"
    assert not votes.exists()


def test_prompts_dir_is_where_simulate_votes_reads_the_sets(study_inputs, tmp_path):
    _, prompts_dir, _ = study_inputs
    design = _design(tmp_path, 3)
    # without the folder, set3 and set1 are not in the project's prompts/: n_prompts generic ids for set3, and set1
    # (no n_prompts) cannot be simulated at all
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--comparisons", "mav3d", "--raters", "2",
                              "--out", str(tmp_path / "generic.csv")])
    assert res.exit_code == 0, res.output
    assert set(pd.read_csv(tmp_path / "generic.csv").query("is_attention_check == False").prompt_id) == {
        "set3_01", "set3_02", "set3_03"}
    assert ("note: mav3d: no file set3.txt in prompts/, so simulated on n_prompts generic prompt ids; `survey build` "
            "needs the file (give the folder that holds it with --prompts-dir)") in res.stderr
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "2",
                              "--out", str(tmp_path / "none.csv")])
    assert res.exit_code == 2
    assert "error: prompt set 'set1' has no prompt file (prompts/set1.txt)" in one_error_line(res)

    res, votes = _simulate(tmp_path, design, prompts_dir)
    assert res.exit_code == 0, res.output
    assert "note:" not in res.stderr
    main = pd.read_csv(votes, dtype=str, keep_default_na=False).query("is_attention_check == 'false'")
    assert sorted(set(main.prompt_id)) == sorted(SLUGS)  # set1's a_panda_dancing is one of set3's

    for bad, what in ((tmp_path / "nowhere", "not found"), (votes, "a file")):
        res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--prompts-dir", str(bad),
                                  "--out", str(tmp_path / "bad.csv")])
        assert res.exit_code == 2
        assert one_error_line(res) == (f"error: --prompts-dir {bad} is {what}: give the folder that holds the "
                                       "design's <prompt_set>.txt files")
        assert not (tmp_path / "bad.csv").exists()


def test_attention_check_ids_have_one_definition(study_inputs, tmp_path, monkeypatch):
    """The prefix of attention checks' ids is defined once (`userstudy.design.CHECK_ID_PREFIX`): changed there, the
    survey's checks and the simulated ones change together; each is `check__<decoy>__<its prompt_id>`."""
    import userstudy.design

    arts, prompts_dir, design = study_inputs
    paper = load_design()  # the same decoy, attention_decoy
    planned = plan_questions(design, [arts], prompts_dir)[0]
    sim = simulate_votes(paper, PanelConfig(n_raters=2, comparisons=("wo_3d",)))
    sim_checks = sim[sim.is_attention_check == "true"]
    assert [(q["question_id"], q["prompt_id"]) for q in planned if q["is_attention_check"]] == [
        ("check__attention_decoy__a_goat_drinking_beer", "a_goat_drinking_beer")]
    # simulated checks do not know the decoy's videos: numbered prompts, the same id scheme
    assert sorted(set(zip(sim_checks.question_id, sim_checks.prompt_id))) == [
        ("check__attention_decoy__attention_check_1", "attention_check_1"),
        ("check__attention_decoy__attention_check_2", "attention_check_2")]

    monkeypatch.setattr(userstudy.design, "CHECK_ID_PREFIX", "probe__")
    planned = plan_questions(design, [arts], prompts_dir)[0]
    sim = simulate_votes(paper, PanelConfig(n_raters=2, comparisons=("wo_3d",)))
    assert {q["question_id"] for q in planned if q["is_attention_check"]} == {
        "probe__attention_decoy__a_goat_drinking_beer"}
    assert set(sim.loc[sim.is_attention_check == "true", "question_id"]) == {
        "probe__attention_decoy__attention_check_1", "probe__attention_decoy__attention_check_2"}


@pytest.mark.parametrize("n_prompts", [None, 3])
def test_a_set_asked_whole_is_unchanged(study_inputs, tmp_path, n_prompts):
    """n_prompts equal to the set, or none (the paper's design: 28 and 5), asks every prompt in both."""
    arts, prompts_dir, _ = study_inputs
    data = yaml.safe_load(yaml.safe_dump(STUDY))
    if n_prompts is not None:
        data["tables"]["t"]["sections"][0]["n_prompts"] = n_prompts
    design = design_from_dict(data)
    planned = plan_questions(design, [arts], prompts_dir)[0]
    sim = simulate_votes(design, PanelConfig(n_raters=1), prompts_dir=prompts_dir)
    asked = {q["question_id"] for q in planned if not q["is_attention_check"]}
    assert asked == {f"mav3d__{s}" for s in SLUGS} | {"wo_3d__a_panda_dancing"}
    assert set(sim.loc[sim.is_attention_check == "false", "question_id"]) == asked

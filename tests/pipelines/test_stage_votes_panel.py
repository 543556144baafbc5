"""One simulated panel: the DVC `votes` stage and `fourdfy simulate-votes` draw the same votes file from the same
seed, rates and raters, their other settings come from one place (`PanelConfig`'s defaults, or params.yaml's
`study.panel` and the matching options), and a `study.panel` key that is not a panel setting is refused."""

import inspect
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipelines import stages
from pipelines.cli import app
from pipelines.commands.userstudy import SIMULATE_OPTIONS
from pipelines.commands.userstudy import simulate_votes as simulate_votes_command
from userstudy.simulate import DEFAULT_ATTENTION_CHECKS, PANEL_KNOBS, PanelConfig

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _params(tmp_path, panel=None, seed=3, raters=4, rates="paper"):
    study = {"design": "userstudy/designs/paper.yaml", "raters": raters, "rates": rates, "votes": ""}
    if panel is not None:
        study["panel"] = panel
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": seed, "generate": {"methods": ["4dfy"]}, "videos": {}, "study": study}))
    return path


def _cli(design, out, *args):
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--out", str(out), *args])
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.parametrize("panel,options", [
    (None, []),  # no study.panel: PanelConfig's defaults on both sides
    ({"rater_icc": 0.2, "careless_share": 0.0, "attention_checks": 1, "layout": "global"},
     ["--icc", "0.2", "--careless", "0", "--checks", "1", "--layout", "global"]),
])
def test_the_votes_stage_and_simulate_votes_draw_the_same_file(tmp_path, panel, options):
    params = _params(tmp_path, panel)
    design = stages.write_design(params, tmp_path / "design.yaml")
    stage = stages.write_votes(params, design, tmp_path / "stage.csv")
    cli = _cli(design, tmp_path / "cli.csv", "--rates", "paper", "--raters", "4", "--seed", "3", *options)
    assert stage.read_bytes() == cli.read_bytes()
    frame = pd.read_csv(stage, dtype=str)
    checks = frame.loc[frame["is_attention_check"] == "true", "question_id"].nunique()
    assert checks == (1 if panel else DEFAULT_ATTENTION_CHECKS)  # the paper's design names a decoy


def test_study_panel_changes_the_stages_panel(tmp_path):
    design = stages.write_design(_params(tmp_path), tmp_path / "design.yaml")
    default = stages.write_votes(_params(tmp_path), design, tmp_path / "default.csv").read_bytes()
    ideal = {"rater_icc": 0, "position_bias": 0, "careless_share": 0, "lapse": 0, "attention_checks": 0,
             "unanswered": 0}
    other = stages.write_votes(_params(tmp_path, ideal), design, tmp_path / "ideal.csv")
    frame = pd.read_csv(other, dtype=str)
    assert other.read_bytes() != default
    assert (frame["is_attention_check"] == "false").all() and (frame["choice"] != "none").all()


@pytest.mark.parametrize("panel,says", [
    ({"icc": 0.1}, "error: study.panel: unknown key icc (valid: " + ", ".join(PANEL_KNOBS) + ")"),
    ({"rater_icc": 1.5}, "error: study.panel.rater_icc must lie in [0, 1], got 1.5"),
    ({"attention_checks": "two"}, "error: study.panel.attention_checks must be a whole number, got 'two'"),
    ({"layout": "random"}, "error: study.panel.layout: unknown layout 'random' (use per_rater or global)"),
    ([0.1], "error: study.panel must be a mapping of panel settings"),
])
def test_a_bad_study_panel_is_one_error_line_and_nothing_is_written(tmp_path, capsys, panel, says):
    design = stages.write_design(_params(tmp_path), tmp_path / "design.yaml")
    params = _params(tmp_path, panel)
    out = tmp_path / "votes.csv"
    with pytest.raises(SystemExit) as exit_:
        stages.main(["votes", "--params", str(params), "--design", str(design), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith(says), err
    assert not out.exists()


def test_an_unknown_panel_key_is_refused_even_when_real_votes_are_named(tmp_path):
    """A misspelt knob does not wait unseen for the next simulated panel."""
    params = _params(tmp_path, {"carless_share": 0.1})
    raw = yaml.safe_load(params.read_text())
    raw["study"]["votes"] = str(tmp_path / "real.csv")
    params.write_text(yaml.safe_dump(raw))
    design = stages.write_design(params, tmp_path / "design.yaml")
    with pytest.raises(ValueError, match="study.panel: unknown key carless_share"):
        stages.write_votes(params, design, tmp_path / "votes.csv")
    assert not (tmp_path / "votes.csv").exists()


def test_the_repositorys_params_and_dvc_yaml_carry_the_panel():
    from userstudy.simulate import panel_config

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    panel_config(params["study"]["panel"])  # valid as shipped
    votes_stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["votes"]
    assert "study.panel" in votes_stage["params"]  # editing the panel reruns the stage


def test_simulate_votes_help_says_panelconfigs_defaults():
    """The options default to None ("PanelConfig's default"), so the help text is where the value shows."""
    option_of = {v: k for k, v in SIMULATE_OPTIONS.items()}
    seen = set()
    for info in inspect.signature(simulate_votes_command).parameters.values():
        field = option_of.get(info.default.param_decls[0]) if info.default.param_decls else None
        if field not in PANEL_KNOBS:
            continue
        seen.add(field)
        assert info.default.default is None, field
        default = getattr(PanelConfig, field)
        if field == "attention_checks":
            said = f"default: {DEFAULT_ATTENTION_CHECKS} when the design names an attention-check decoy, else 0"
        else:
            said = f"default: {default:g})" if isinstance(default, float) else f"default: {default})"
        assert said in info.default.help, (field, info.default.help)
    assert seen == set(PANEL_KNOBS)


# A short-form design naming no prompt_set: `survey build` (the survey_bundle stage, on artifacts/<profile> and
# artifacts/imported) asks each comparison on the prompts both methods have videos of.
OWN = "name: own\nprimary: 4dfy\ncomparisons: [mav3d, wo_3d]\n"


def _own_params(tmp_path, design_text=OWN):
    design = tmp_path / "own.yaml"
    design.write_text(design_text)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 3, "profile": "tiny", "generate": {"methods": ["4dfy"]}, "videos": {},
                                    "study": {"design": str(design), "raters": 4, "rates": "paper", "votes": ""}}))
    return path


def _videos(root, method, *slugs):
    for slug in slugs:
        (root / method / slug).mkdir(parents=True)


def _questions(path):
    frame = pd.read_csv(path, dtype=str)
    main = frame[frame["is_attention_check"] == "false"]
    return {q: sorted(set(main.loc[main.question_id.str.startswith(f"{q}__"), "prompt_id"]))
            for q in ("mav3d", "wo_3d")}


def test_a_section_without_prompt_set_is_simulated_on_the_pipelines_videos(tmp_path, capsys):
    """The stage draws the votes `simulate-votes --artifacts` draws on the folders the pipeline renders and imports
    into: the questions of the survey the pipeline builds (it simulated the paper's 28 prompts instead)."""
    params = _own_params(tmp_path)
    rendered, imported = tmp_path / "artifacts" / "tiny", tmp_path / "artifacts" / "imported"
    _videos(rendered, "4dfy", "a_cat", "a_dog", "a_fox")
    _videos(rendered, "wo_3d", "a_dog", "an_owl")
    _videos(imported, "mav3d", "a_cat", "a_fox", "a_bee")
    design = stages.write_design(params, tmp_path / "design.yaml")
    stage = stages.write_votes(params, design, tmp_path / "stage.csv")
    assert "note:" not in capsys.readouterr().err
    assert _questions(stage) == {"mav3d": ["a_cat", "a_fox"], "wo_3d": ["a_dog"]}
    cli = _cli(design, tmp_path / "cli.csv", "--rates", "paper", "--raters", "4", "--seed", "3",
               "--artifacts", str(rendered), "--artifacts", str(imported))
    assert stage.read_bytes() == cli.read_bytes()


def test_a_comparison_without_videos_of_both_keeps_generic_prompts_with_a_note(tmp_path, capsys):
    """The survey (built with --allow-missing) leaves such a comparison out; the stage still simulates it, on the
    prompts simulate-votes uses without videos, as it simulates sections with a prompt_set whatever videos exist."""
    from prompts import PROMPT_DIR, load_prompts

    params = _own_params(tmp_path)
    design = stages.write_design(params, tmp_path / "design.yaml")
    paper_28 = sorted(load_prompts(PROMPT_DIR / "mav3d_28.txt"))
    stage = stages.write_votes(params, design, tmp_path / "none.csv")  # nothing rendered yet
    assert _questions(stage) == {"mav3d": paper_28, "wo_3d": paper_28}
    assert capsys.readouterr().err.strip().splitlines() == [
        "note: mav3d, wo_3d: no prompt_set in the design and no prompt with videos of both 4dfy and each in "
        "artifacts/tiny or artifacts/imported, so simulated on generic prompt ids (n_prompts) or the paper's 28; the "
        "survey (built with --allow-missing) leaves them out until both have videos"]
    assert stage.read_bytes() == _cli(design, tmp_path / "cli.csv", "--rates", "paper", "--raters", "4",
                                      "--seed", "3").read_bytes()

    _videos(tmp_path / "artifacts" / "tiny", "4dfy", "a_cat", "a_dog")
    _videos(tmp_path / "artifacts" / "tiny", "wo_3d", "a_dog")  # no imported mav3d videos
    stage = stages.write_votes(params, design, tmp_path / "some.csv")
    assert _questions(stage) == {"mav3d": paper_28, "wo_3d": ["a_dog"]}
    assert "note: mav3d: no prompt_set in the design and no prompt with videos of both 4dfy and it in " \
           "artifacts/tiny or artifacts/imported" in capsys.readouterr().err


def test_sections_with_a_prompt_set_never_look_at_the_videos(tmp_path, capsys):
    """The paper's designs name a prompt_set in every section: their panel (and so reports/) is the one drawn
    without videos, whatever lies in artifacts/, even a pair in both folders that would stop `survey build`."""
    params = _params(tmp_path)
    raw = yaml.safe_load(params.read_text())
    params.write_text(yaml.safe_dump({**raw, "profile": "tiny"}))
    for root in ("tiny", "imported"):
        _videos(tmp_path / "artifacts" / root, "mav3d", "a_panda_dancing")
    design = stages.write_design(params, tmp_path / "design.yaml")
    stage = stages.write_votes(params, design, tmp_path / "stage.csv")
    cli = _cli(design, tmp_path / "cli.csv", "--rates", "paper", "--raters", "4", "--seed", "3")
    assert stage.read_bytes() == cli.read_bytes()
    assert "note:" not in capsys.readouterr().err
    # the same design with one section's prompt_set removed reads them, and is stopped as `survey build` would be
    own = tmp_path / "own.yaml"
    own.write_text("primary: 4dfy\ncomparisons: [mav3d]\n")
    params.write_text(yaml.safe_dump({**raw, "profile": "tiny", "study": {**raw["study"], "design": str(own)}}))
    design = stages.write_design(params, tmp_path / "own_design.yaml")
    with pytest.raises(ValueError, match="mav3d/a_panda_dancing: found in two artifact folders"):
        stages.write_votes(params, design, tmp_path / "own.csv")

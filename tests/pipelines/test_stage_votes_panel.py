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

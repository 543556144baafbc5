"""Help texts of `fourdfy sweep --params` and `fourdfy oracle`: every option says what it does, in plain words."""

import re

import typer
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def _help_letters(*args: str) -> str:
    res = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    text = re.sub(r"\x1b\[[0-9;]*m", "", res.output)
    # box drawing out, the help column's lines joined
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_every_option_of_oracle_and_sweep_has_a_description():
    root = typer.main.get_command(app)
    for name in ("oracle", "sweep"):
        undocumented = [p.opts[0] for p in root.commands[name].params if not (getattr(p, "help", "") or "").strip()]
        assert undocumented == [], (name, undocumented)


def test_oracle_help_describes_seed_and_progress():
    text = _help_letters("oracle")
    assert "Seed of the training's random draws" in text and "the scene itself is fixed" in text
    assert "Live bar on a terminal" in text


def test_sweep_params_help_says_what_is_read_and_when():
    text = _help_letters("sweep")
    assert "not given here from this params.yaml" not in text  # the old, garbled sentence
    for part in ("Read the DVC pipeline's params.yaml: its overrides.<method> always apply;",
                 "its profile, seed, generate.methods and generate.prompts are used where --profile, --seed, "
                 "--methods, --prompts are not given.",
                 "With neither --methods nor --prompts the sweep is exactly the runs of its DVC generate stages"):
        assert part in text, part

"""The layout of `fourdfy ... --help` (typer's rich help, as pipelines.cli adjusts it): a flag shows no value
type (typer >= 0.28 printed `<bool>` beside each), an option that takes a value keeps its type, and no option
name is split over two lines at 80 columns."""

import re
import sys
import types

import pytest
import typer
from typer.testing import CliRunner

from pipelines import cli
from pipelines.cli import app

runner = CliRunner()


def _commands(command, path=()):
    """(path, click command) of the root and of every command and group under it."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


ALL = list(_commands(typer.main.get_command(app)))
IDS = [" ".join(path) or "fourdfy" for path, _ in ALL]


def _help(path, columns):
    res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": str(columns)})
    assert res.exit_code == 0, res.output
    return re.sub(r"\x1b\[[0-9;]*m", "", res.output)


def _options(command):
    ctx = typer.main.get_command(app).make_context("fourdfy", ["--help"], resilient_parsing=True)
    return [p for p in command.get_params(ctx) if p.param_type_name == "option" and not p.hidden]


def _names(param):
    return [*param.opts, *param.secondary_opts]


def test_the_walk_covers_every_command_and_the_survey_group():
    paths = {" ".join(path) for path, _ in ALL}
    assert {"", "generate", "analyze", "sweep", "survey", "survey serve", "survey build"} <= paths


@pytest.mark.parametrize("path, command", ALL, ids=IDS)
def test_flags_show_no_value_type_and_value_options_keep_theirs(path, command):
    text = _help(path, 250)  # wide: one row per option
    assert "<bool>" not in text
    lines = text.splitlines()
    for param in _options(command):
        first = param.opts[0]
        row = next((line for line in lines
                    if re.match(rf"│\s*(\*\s+)?{re.escape(first)}(?![\w-])", line)), None)
        assert row is not None, (path, first, text)
        # after the option's names comes its value type (a metavar), else its help
        names = set(_names(param))
        after = [tok for tok in row.strip("│ ").split() if tok != "*" and not set(tok.split(",")) <= names]
        takes_no_value = param.is_flag or param.count
        if takes_no_value:
            assert not after or not after[0].startswith("<"), (path, first, row)
        else:
            assert after and (after[0].startswith("<") or after[0] == param.metavar), (path, first, row)


def test_the_types_users_read_are_there():
    text = _help(["generate"], 250)
    assert re.search(r"--out\s+<path>", text) and re.search(r"--seed\s+<int>", text)
    assert re.search(r"--resume\s+Continue the run", text)  # a flag: its help right after the name
    root = _help([], 250)
    assert re.search(r"--verbose\s+-v\s+Also print", root) and re.search(r"--help\s+Show this message", root)


@pytest.mark.parametrize("path, command", ALL, ids=IDS)
def test_no_option_name_is_split_at_80_columns(path, command):
    text = _help(path, 80)
    assert "…" not in text
    names = {name for _, cmd in ALL for param in _options(cmd) for name in _names(param)}
    own = {name for param in _options(command) for name in _names(param)}
    for name in own:  # each whole, somewhere (its row)
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), (path, name, text)
    # and no piece of one: `--max-failed-check` with `s` on the next line, `--array-parallelism,--parall`
    for token in re.split(r"[\s│,/()\[\];:'`\"]+", text):
        token = token.rstrip(".")
        if token.startswith("-") and token not in names:
            assert not any(name.startswith(token) for name in names), (path, token, text)


def test_a_narrow_terminal_folds_the_names_and_keeps_the_help():
    """Below the width the names need, rich narrows every column: the names fold, never end in an ellipsis,
    and the help column keeps some width."""
    text = _help(["analyze"], 50)
    assert "…" not in text and "--max-fa" in text
    assert re.search(r"--help\s+Show this", text)


def test_the_names_are_kept_whole_while_the_help_column_keeps_its_minimum():
    from rich.console import Console
    from typer import rich_utils

    cli._tune_rich_help()
    name = "--a-rather-long-option-name"

    def render(width):
        table = rich_utils.Table(show_header=False, box=None, pad_edge=False, padding=(0, 1), expand=True)
        table.add_row(rich_utils.highlighter(name), rich_utils.Text("word " * 30))
        console = Console(width=width, file=None, force_terminal=False, color_system=None)
        with console.capture() as out:
            console.print(table)
        return out.get()

    width = len(name) + 2 + cli.HELP_MIN_WIDTH  # the name, the padding between the columns, the help's minimum
    for w in (width, width + 10, 120):
        text = render(w)
        assert name in text and max(map(len, text.splitlines())) <= w, text
    text = render(width - 1)  # less room: rich's own layout, the name wrapped and the help column wider
    assert name not in text and "…" not in text and "word word" in text, text


def test_flags_of_any_typer_app_lose_the_type_and_keep_a_metavar_of_their_own():
    cli._tune_rich_help()
    demo = typer.Typer(add_completion=False)

    @demo.command()
    def main(dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be done."),
             loud: int = typer.Option(0, "--loud", "-l", count=True, help="Louder, per repeat."),
             mode: bool = typer.Option(False, "--mode/--no-mode", metavar="SWITCH", help="A switch."),
             name: str = typer.Option("x", "--name", help="A name.")):
        pass

    res = runner.invoke(demo, ["--help"], env={"COLUMNS": "200"})
    text = re.sub(r"\x1b\[[0-9;]*m", "", res.output)
    assert res.exit_code == 0, text
    assert re.search(r"--dry-run\s+Only say", text) and re.search(r"--loud\s+-l\s+Louder", text)
    assert re.search(r"--help\s+Show this", text) and re.search(r"--name\s+<str>\s+A name", text)
    assert "SWITCH" in text and "<bool>" not in text


def test_the_adjustments_apply_once_and_skip_a_typer_without_their_hooks(monkeypatch):
    from typer import rich_utils

    cli._tune_rich_help()
    hooks = (rich_utils.rich_format_help, rich_utils.Table)
    cli._tune_rich_help()
    assert (rich_utils.rich_format_help, rich_utils.Table) == hooks
    assert [c for c in rich_utils.Table.__mro__ if c is cli._HelpTable] == [cli._HelpTable]
    # another typer's layout: none of these names; nothing is added and nothing fails
    bare = types.ModuleType("typer.rich_utils")
    monkeypatch.setitem(sys.modules, "typer.rich_utils", bare)
    monkeypatch.setattr(typer, "rich_utils", bare)
    cli._tune_rich_help()
    assert not [name for name in vars(bare) if not name.startswith("__")]


def test_serve_help_names_where_the_admin_password_is_read():
    from pathlib import Path

    text = " ".join(_help(["survey", "serve"], 100).split())
    assert "/?view=admin" in text
    assert "$FOURDFY_SURVEY_ADMIN_PASSWORD, else admin_password in .streamlit/secrets.toml" in text
    # the names the survey app reads it by (its environment variable, else the secrets key)
    app_source = (Path(__file__).resolve().parents[2] / "userstudy" / "survey" / "app.py").read_text()
    assert '_setting("FOURDFY_SURVEY_ADMIN_PASSWORD", "admin_password")' in app_source


def test_a_bare_group_shows_the_adjusted_help_in_a_fresh_process():
    """`fourdfy survey` (no arguments) prints the group's help without a `--help` in sight: adjusted too."""
    import os
    import subprocess

    res = subprocess.run([sys.executable, "-c", "from pipelines.cli import main; main()", "survey"],
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"}, timeout=300)
    assert "Commands" in res.stdout and "build" in res.stdout, res.stdout + res.stderr
    assert re.search(r"--help\s+Show this message", res.stdout) and "<bool>" not in res.stdout, res.stdout

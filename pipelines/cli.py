"""The `fourdfy` command. Each package registers its own commands here (heavy imports stay
inside the commands, so `fourdfy --help` is fast)."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="fourdfy",
    help="fourdfy-bench: reproduce and evaluate text-to-4D generation (4D-fy, hybrid SDS).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)



@app.callback()
def _root() -> None:
    """fourdfy-bench: reproduce and evaluate text-to-4D generation (4D-fy, hybrid SDS)."""


# order = order in --help
COMMAND_MODULES = ("pipelines.commands.generate", "pipelines.commands.evaluate",
                   "pipelines.commands.survey", "pipelines.commands.userstudy")

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

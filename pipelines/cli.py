"""The `fourdfy` command. Each module of `pipelines.commands` registers its commands here (heavy
imports stay inside the commands, so `fourdfy --help` is fast).

Errors: every command fails with one line `error: <what is wrong and what to do>` on stderr and exit
code 2; `--verbose` (or FOURDFY_VERBOSE=1) adds the traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
import warnings

import typer
from typer.core import TyperGroup

try:  # typer >= 0.25 runs on its own copy of click; its exceptions are the ones raised
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on the click package
    from click import exceptions as click_exceptions

_STATE = {"verbose": False}


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings of the library (e.g. "tinycudann not installed, using PyTorch") as one line, no source echo."""
    return f"warning: {message}\n"


warnings.formatwarning = _one_line_warning


def _user_error_types() -> tuple[type, ...]:
    """Exceptions that mean bad input or a bad environment (not a bug): shown as one line."""
    return (ValueError, OSError, RuntimeError, KeyError, LookupError, TypeError)


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    if isinstance(err, KeyError) and err.args:
        text = str(err.args[0])
    if isinstance(err, OSError) and err.filename:
        text = f"cannot use {err.filename}: {err.strerror or text}"
    return " ".join(text.split())


class ErrorHandlingGroup(TyperGroup):
    """Turns any exception of a command into `error: ...` (exit 2); the traceback only when verbose."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click_exceptions.ClickException, typer.Exit, typer.Abort):
            raise  # usage errors and exits: click prints them itself
        except Exception as err:  # noqa: BLE001 - the single place that turns errors into one line
            verbose = _STATE["verbose"] or os.environ.get("FOURDFY_VERBOSE") == "1"
            if verbose:
                traceback.print_exc()
            known = isinstance(err, _user_error_types())
            hint = "" if verbose else " (run with --verbose for the traceback)"
            prefix = "" if known else f"internal error ({type(err).__name__}): "
            typer.secho(f"error: {prefix}{_one_line(err)}{hint if not known else ''}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    name="fourdfy",
    cls=ErrorHandlingGroup,
    help="fourdfy-bench: reproduce and evaluate text-to-4D generation (4D-fy, hybrid SDS).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks of errors.")) -> None:
    """fourdfy-bench: reproduce and evaluate text-to-4D generation (4D-fy, hybrid SDS)."""
    _STATE["verbose"] = verbose


# order = order in --help
COMMAND_MODULES = ("pipelines.commands.generate", "pipelines.commands.evaluate", "pipelines.commands.survey",
                   "pipelines.commands.userstudy", "pipelines.commands.sweep", "pipelines.commands.convert")

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _err:  # a command module being added; never hide other import errors
        if _err.name != _name:
            raise
        continue
    _module.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

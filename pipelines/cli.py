"""The `fourdfy` command. Each module of `pipelines.commands` registers its commands here (heavy
imports stay inside the commands, so `fourdfy --help` is fast).

Errors: every command fails with one line `error: <what is wrong and what to do>` on stderr and exit
code 2; `--verbose` (or FOURDFY_VERBOSE=1) adds the Python traceback behind the error where there is one
(a command's own checks of its options raise nothing, so they have none). A closed stdout (`fourdfy info
| head -2`) ends the command quietly with exit code 1, as click does.

Interrupts: SIGTERM (`kill`, a scheduler's limit) is raised in every command as `Terminated`, a KeyboardInterrupt,
so that it unwinds as Ctrl-C does (`finally:` cleanups remove the hidden temporaries) instead of ending the process
where it is. A command that catches it says itself what was kept and how to go on; any other ends with the one line
`INTERRUPTED` (exit 130 for Ctrl-C, 143 for SIGTERM), which typer would otherwise swallow into a silent exit 130.
The handler also notes the signal: a raise that Python discarded (inside a finalizer) is raised again where a long
command checks (`pipelines.commands.generate.raise_pending_interrupt`: `generate` and `oracle` at each training step).

Help wraps long words (dotted config keys) instead of cutting them with "…" at the terminal width.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
import traceback
import warnings

import typer
from typer.core import TyperGroup

# SIGTERM's KeyboardInterrupt (`Terminated`), its handler and the one interrupt report, beside the first command that
# used them (defining them here would give `python -m pipelines.cli` a second copy of the class)
from pipelines.commands.generate import exit_interrupted, sigterm_as_interrupt

try:  # typer >= 0.25 runs on its own copy of click; its exceptions are the ones raised
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on the click package
    from click import exceptions as click_exceptions

_STATE = {"verbose": False}

INTERRUPTED = ("every file it wrote is whole (none is left half-written); run the command again, with --overwrite if "
               "it then refuses a file this run wrote")
"""What the `error:` line of a Ctrl-C or SIGTERM says after `interrupted;` / `terminated (SIGTERM);` when the
command has no message of its own. True of each such command: files are written through temporaries renamed into
place, and a rerun picks up where it stopped (import-videos), replaces its earlier outputs (clipscore, analyze), or
refuses them until --overwrite (survey export, simulate-votes, audit). One whose rerun would be refused otherwise
(oracle), or that has no --overwrite (generate, from its start-up on), has its own line."""


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings of the library (e.g. "tinycudann not installed, using PyTorch") as one line, no source echo."""
    return f"warning: {message}\n"


warnings.formatwarning = _one_line_warning


def _user_error_types() -> tuple[type, ...]:
    """Exceptions that mean bad input or a bad environment (not a bug): shown as one line."""
    return (ValueError, OSError, RuntimeError, KeyError, LookupError, TypeError)


def _one_line_text(text: str) -> str:
    return " ".join(text.split())


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    if isinstance(err, KeyError) and err.args:
        text = str(err.args[0])
    if isinstance(err, OSError) and err.filename:
        text = f"cannot use {err.filename}: {err.strerror or text}"
    return _one_line_text(text)


def _verbose() -> bool:
    return _STATE["verbose"] or os.environ.get("FOURDFY_VERBOSE") == "1"


def _fold_long_words_in_help() -> None:
    """Make rich help fold words longer than the help column (e.g. `guidance.video.guidance_scale=50`).

    Typer puts each help text in a rich table column, whose default overflow cuts such a word with "…";
    a Text's own overflow wins over the column's, so set it on every help text typer builds.
    """
    try:
        from typer import rich_utils
    except ImportError:  # pragma: no cover - no rich: click's plain help wraps by itself
        return
    make = getattr(rich_utils, "_make_rich_text", None)
    if make is None or getattr(make, "_fourdfy_folds", False):  # another typer layout, or done already
        return

    def make_folding(*args, **kwargs):
        text = make(*args, **kwargs)
        if hasattr(text, "overflow"):  # rich Text (Markdown, in markdown mode, wraps by itself)
            text.overflow = "fold"
        return text

    make_folding._fourdfy_folds = True
    rich_utils._make_rich_text = make_folding
    # option names (`--max-failed-checks`) likewise: folded onto a second line where a narrow terminal has no
    # room for them, not cut to `--max-failed-chec…`
    for name in ("highlighter", "negative_highlighter"):
        plain = getattr(rich_utils, name, None)
        if plain is not None:
            setattr(rich_utils, name, _Folding(plain))


class _Folding:
    """A rich highlighter whose texts made from a string (option names) fold rather than end in an ellipsis."""

    def __init__(self, highlighter):
        self.highlighter = highlighter

    def __call__(self, text):
        made = self.highlighter(text)
        if isinstance(text, str) and hasattr(made, "overflow"):
            made.overflow = "fold"
        return made


def _usage_error(err, fallback_name: str) -> None:
    """A usage error as one line, like every other error (typer would draw a box): what is wrong and
    where the help is; exit 2."""
    name = err.ctx.command_path if err.ctx is not None else fallback_name
    typer.secho(f"error: {_one_line_text(err.format_message())} (see `{name} --help`)",
                fg=typer.colors.RED, err=True)
    raise typer.Exit(2) from None


def _interrupted(err: KeyboardInterrupt) -> None:
    """Ctrl-C or SIGTERM that the command did not report itself: one `error:` line, exit 130 or 143 (128 + the
    signal, as a shell reports a process the signal ended)."""
    if _verbose():  # where it was stopped (a command that seemed to hang)
        traceback.print_exception(err)
    exit_interrupted(err, f"; {INTERRUPTED}")


class ErrorHandlingGroup(TyperGroup):
    """Turns any exception of a command into `error: ...` (exit 2), and Ctrl-C or SIGTERM into `error:
    interrupted; ...` (exit 130 / 143); the traceback only when verbose."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:  # the group's own options (`fourdfy --bogus`) are parsed here, before `invoke`
            return super().make_context(info_name, args, parent=parent, **extra)
        except click_exceptions.NoArgsIsHelpError:
            raise
        except click_exceptions.UsageError as err:
            _usage_error(err, info_name or "fourdfy")

    def format_help(self, ctx, formatter):
        _fold_long_words_in_help()  # `fourdfy --help`, and no arguments
        return super().format_help(ctx, formatter)

    def resolve_command(self, ctx, args):
        if "--help" in args:  # the command's help is printed next, as its arguments are parsed
            _fold_long_words_in_help()
        return super().resolve_command(ctx, args)

    def invoke(self, ctx):
        with sigterm_as_interrupt():
            return self._invoke(ctx)

    def _invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as err:  # a BaseException: none of the clauses below sees it
            _interrupted(err)
        except typer.Exit as stop:
            # the `_fail` helpers of commands print their `error:` line and raise Exit(2) while handling the
            # exception they report: with --verbose, show where that exception was raised
            if stop.exit_code == 2 and stop.__context__ is not None and _verbose():
                traceback.print_exception(stop.__context__)
            raise
        except click_exceptions.NoArgsIsHelpError:
            raise  # a group called bare: its help is the answer, not an error
        except click_exceptions.UsageError as err:
            _usage_error(err, ctx.command_path)
        except (click_exceptions.ClickException, typer.Abort):
            raise  # other click exits (e.g. a closed pipe): click handles them itself
        except Exception as err:  # noqa: BLE001 - the single place that turns errors into one line
            if isinstance(err, OSError) and err.errno == errno.EPIPE:
                raise  # the reader closed stdout (`fourdfy info | head -2`): typer's main ends quietly, exit 1
            verbose = _verbose()
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
def _root(verbose: bool = typer.Option(False, "--verbose", "-v",
                                       help="Also print the Python traceback behind an error, where there is one "
                                            "(errors of a command's own option checks have none).")) -> None:
    """fourdfy-bench: reproduce and evaluate text-to-4D generation (4D-fy, hybrid SDS)."""
    _STATE["verbose"] = verbose


# order = order in --help
COMMAND_MODULES = ("pipelines.commands.generate", "pipelines.commands.evaluate", "pipelines.commands.survey",
                   "pipelines.commands.userstudy", "pipelines.commands.sweep", "pipelines.commands.convert")

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

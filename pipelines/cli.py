"""The `fourdfy` command. Each module of `pipelines.commands` registers its commands here (heavy
imports stay inside the commands, so `fourdfy --help` is fast).

Errors: a command fails with a line `error: <what is wrong and what to do>` on stderr and exit code 2 (a few
list details under it, as `survey build` its problems; `validate-artifacts` exits 1 when an artifact is invalid);
`--verbose` (or FOURDFY_VERBOSE=1) adds the Python traceback behind the error where there is one
(a command's own checks of its options raise nothing, so they have none). A closed stdout (`fourdfy info
| head -2`) ends the command quietly with exit code 1, as click does.

Interrupts: SIGTERM (`kill`, a scheduler's limit) is raised in every command as `Terminated`, a KeyboardInterrupt,
so that it unwinds as Ctrl-C does (`finally:` cleanups remove the hidden temporaries) instead of ending the process
where it is. A command that catches it says itself what was kept and how to go on; any other ends with the one line
`INTERRUPTED` (exit 130 for Ctrl-C, 143 for SIGTERM), which typer would otherwise swallow into a silent exit 130.
The handler also notes the signal: a raise that Python discarded (inside a finalizer) is raised again where a long
command checks (`pipelines.interrupts.raise_pending_interrupt`: `generate` and `oracle` at each training step).

Help wraps long words (dotted config keys) instead of cutting them with "…" at the terminal width, keeps option
names whole (at 80 columns too) and shows no value type beside a flag (`_tune_rich_help`).
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

# SIGTERM's KeyboardInterrupt (`Terminated`), its handler and the one interrupt report, shared with `generate` and
# `sweep` (defined outside this module: `python -m pipelines.cli` would otherwise make a second copy of the class)
from pipelines.interrupts import exit_interrupted, sigterm_as_interrupt

try:  # typer >= 0.25 runs on its own copy of click; its exceptions are the ones raised
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on the click package
    from click import exceptions as click_exceptions

_STATE = {"verbose": False}

INTERRUPTED = ("every file it wrote is whole (none is left half-written); run the command again, with --overwrite if "
               "it then refuses a file this run wrote")
"""What the `error:` line of a Ctrl-C or SIGTERM says after `interrupted;` / `terminated (SIGTERM);` when the
command has no message of its own and has an --overwrite option. True of each such command: files are written
through temporaries renamed into place, and a rerun refuses them until --overwrite (survey export, simulate-votes,
audit); import-videos, whose rerun picks up where it stopped, says so instead (`IMPORT_INTERRUPTED`). One whose rerun would be refused otherwise (oracle), or generate
(from its start-up on), has its own line."""

INTERRUPTED_RERUN = "every file it wrote is whole (none is left half-written); run the command again"
"""`INTERRUPTED` for a command without --overwrite: a rerun replaces its earlier outputs (clipscore, analyze)."""


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


def _tune_rich_help() -> None:
    """Adjust typer's rich help where its defaults mislead or mangle (each step once, and only where this typer
    has the hook: another layout is left as it is, and tests/pipelines/test_cli_help_layout.py notices):

    - a flag (`--overwrite`, `--help`) shows no value type: typer >= 0.28 prints `<bool>` beside every flag in
      its rich help (its plain help, and earlier typer, leave it out), which reads as if `--overwrite true`
      were the way to pass it;
    - option names keep their column: only the help column wraps, so `--max-failed-checks` is not split over
      two lines at 80 columns;
    - words longer than their column (`guidance.video.guidance_scale=50`) fold instead of ending in "…".
    """
    try:
        from typer import rich_utils
    except ImportError:  # pragma: no cover - no rich: click's plain help wraps by itself
        return
    table = getattr(rich_utils, "Table", None)
    if isinstance(table, type) and not issubclass(table, _HelpTable):
        rich_utils.Table = type("Table", (_HelpTable, table), {})
    show = getattr(rich_utils, "rich_format_help", None)
    if show is not None and not getattr(show, "_fourdfy_flags", False):
        rich_utils.rich_format_help = _flags_without_type(show)


def _flags_without_type(rich_format_help):
    """`rich_format_help` that first gives each flag of the command an empty metavar, typer's own way to set
    what its type column shows (`typer.Option(metavar=...)`); done here, for the command whose help is shown,
    because the `--help` flag is made by typer's click only then and the other flags are declared in every
    command module. A flag with a metavar of its own keeps it."""

    def show(*args, **kwargs):
        obj, ctx = kwargs.get("obj"), kwargs.get("ctx")
        if obj is not None and ctx is not None:
            for param in obj.get_params(ctx):
                takes_no_value = getattr(param, "is_flag", False) or getattr(param, "count", False)
                if param.param_type_name == "option" and takes_no_value and param.metavar is None:
                    param.metavar = ""
        return rich_format_help(*args, **kwargs)

    show._fourdfy_flags = True
    return show


HELP_MIN_WIDTH = 12
"""The narrowest help column (a word or two a line) for which the option names are kept whole; a terminal with
less room than that beside the names has the names wrapped too, as rich does by itself."""


class _HelpTable:
    """Mixed into the rich Table that typer builds its option and command panels with.

    Rich fits a table to the terminal by shrinking the widest columns alike once the help column is down to the
    width of the names column, so `analyze` (`--max-failed-checks` beside `--unanswered-missing`) had its names
    split at 80 columns (`--max-failed-check` / `s`). Here every column but the last (the help text) is marked
    no_wrap when that leaves the help column at least HELP_MIN_WIDTH: the table is then fitted by wrapping the
    help column alone.

    Each text folds where a word is longer than its column, instead of being cut with the column's default
    "…": the help texts, the `[default: ...]` typer puts beside them (a rich Columns of Texts) and the names.
    """

    def add_row(self, *renderables, **kwargs):
        for cell in renderables:
            for text in getattr(cell, "renderables", None) or [cell]:
                if getattr(text, "overflow", "") is None:  # a rich Text that did not choose
                    text.overflow = "fold"
                if getattr(text, "no_wrap", "") is None:  # may wrap where its column is kept whole (below)
                    text.no_wrap = False
        return super().add_row(*renderables, **kwargs)

    def __rich_console__(self, console, options):
        from rich.measure import Measurement

        names = self.columns[:-1]
        widest = [max((Measurement.get(console, options, cell).maximum for cell in column.cells), default=0)
                  for column in names]
        left, right = self.padding[3], self.padding[1]
        padding = (left + right) * len(self.columns) - (0 if self.pad_edge else left + right)
        borders = ((2 if self.show_edge else 0) + len(self.columns) - 1) if self.box else 0
        if options.max_width - sum(widest) - padding - borders >= HELP_MIN_WIDTH:
            for column in names:
                column.no_wrap = True
        return super().__rich_console__(console, options)


def _usage_error(err, fallback_name: str) -> None:
    """A usage error as one line, like every other error (typer would draw a box): what is wrong and
    where the help is; exit 2."""
    name = err.ctx.command_path if err.ctx is not None else fallback_name
    typer.secho(f"error: {_one_line_text(err.format_message())} (see `{name} --help`)",
                fg=typer.colors.RED, err=True)
    raise typer.Exit(2) from None


def _leaf_command(ctx, args: list[str]):
    """The command that `args` (the words after `fourdfy`) run, below any group (`survey export`), or None: the
    first word that is no option names each level (the groups take only flags)."""
    command, rest = ctx.command, list(args)
    while hasattr(command, "get_command"):
        words = [i for i, a in enumerate(rest) if not a.startswith("-")]
        if not words:
            return None
        command, rest = command.get_command(ctx, rest[words[0]]), rest[words[0] + 1:]
    return command


def _interrupted(err: KeyboardInterrupt, ctx=None) -> None:
    """Ctrl-C or SIGTERM that the command did not report itself: one `error:` line, exit 130 or 143 (128 + the
    signal, as a shell reports a process the signal ended); --overwrite is named only to a command that has it."""
    if _verbose():  # where it was stopped (a command that seemed to hang)
        traceback.print_exception(err)
    command = _leaf_command(ctx, ctx.meta.get("fourdfy.args", [])) if ctx is not None else None
    has_overwrite = command is None or any("--overwrite" in getattr(p, "opts", ()) for p in command.params)
    exit_interrupted(err, f"; {INTERRUPTED if has_overwrite else INTERRUPTED_RERUN}")


class ErrorHandlingGroup(TyperGroup):
    """Turns any exception of a command into `error: ...` (exit 2), and Ctrl-C or SIGTERM into `error:
    interrupted; ...` (exit 130 / 143); the traceback only when verbose."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:  # the group's own options (`fourdfy --bogus`) are parsed here, before `invoke`
            ctx = super().make_context(info_name, list(args), parent=parent, **extra)
            ctx.meta["fourdfy.args"] = list(args)  # which command runs, for an interrupt's line (`_leaf_command`)
            return ctx
        except click_exceptions.NoArgsIsHelpError:
            raise
        except click_exceptions.UsageError as err:
            _usage_error(err, info_name or "fourdfy")

    def format_help(self, ctx, formatter):
        _tune_rich_help()  # `fourdfy --help`, and no arguments
        return super().format_help(ctx, formatter)

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        # the command's help is printed next, as its arguments are parsed: asked for, or a group called bare
        if any(arg in ctx.help_option_names for arg in args) or (not rest and hasattr(command, "commands")):
            _tune_rich_help()
        return name, command, rest

    def invoke(self, ctx):
        with sigterm_as_interrupt():
            return self._invoke(ctx)

    def _invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as err:  # a BaseException: none of the clauses below sees it
            _interrupted(err, ctx)
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

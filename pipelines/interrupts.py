"""Ctrl-C and SIGTERM as KeyboardInterrupt, for every `fourdfy` command and for the sweep's loop: one handler.

- SIGTERM (`kill`, a scheduler's time limit) raises `Terminated`, a KeyboardInterrupt, so that it unwinds as Ctrl-C
  does (Python's default ends the process without a word and without cleanups); `exit_interrupted` is the one report
  of either (exit 130 or 143).
- The handler notes each signal. Python discards the handler's raise when it runs inside a finalizer (`__del__`, run
  wherever an object is freed: e.g. while a tokenizer loads) and prints "Exception ignored in ..."; then the command
  would go on to its end. `raise_pending_interrupt` raises it again where a long command can stop (`generate`,
  `oracle`: at each training step; the sweep: at each turn of its loop), and that report is not printed.
- `held()`: a signal that comes while the block runs is noted and raised when it ends (the sweep, while a job is
  submitted and recorded, so that an interrupted sweep stops that job too). Blocking the signals instead would pass
  the block on to the processes started meanwhile, which then could not be stopped.

Main thread only (only it may set handlers; elsewhere the blocks change nothing). The class lives here, not in
`pipelines.cli`: `python -m pipelines.cli` would make that module's copy of it another class.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a scheduler's time limit) raised where the program is, as Ctrl-C's KeyboardInterrupt is. Every
    command gets it (`pipelines.cli` installs the handler); a command that reports interrupts itself tells it from
    Ctrl-C by this class (exit 143, not 130)."""


def exit_interrupted(err: KeyboardInterrupt, what: str, subject: str = "") -> None:
    """One `error:` line for Ctrl-C or SIGTERM, `error: <subject>interrupted<what>` (`terminated (SIGTERM)` for
    `Terminated`, or an interrupt its raiser marked `terminated`), then exit 130 or 143 (128 + the signal, as a
    shell reports a process the signal ended). Every command's interrupt report ends here."""
    import typer

    terminated = isinstance(err, Terminated) or getattr(err, "terminated", False)
    typer.secho(f"error: {subject}{'terminated (SIGTERM)' if terminated else 'interrupted'}{what}",
                fg=typer.colors.RED, err=True)
    raise typer.Exit(143 if terminated else 130) from None


_PENDING: list[int] = []
"""The signals the handler was called for while the outermost `sigterm_as_interrupt` block runs."""

_HOLDING: list[bool] = []
"""One entry per `held()` block running: while any is, the handler notes the signal without raising it."""


def _interrupt_of(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _raise_interrupt(signum, frame):
    """The handler: note the signal, then raise it where the program is (unless a `held()` block runs)."""
    _PENDING.append(signum)
    if not _HOLDING:
        raise _interrupt_of(signum)


def raise_pending_interrupt() -> None:
    """Raise the interrupt of the first signal that came while `sigterm_as_interrupt` was active, if one did (whether
    or not the handler's own raise got through)."""
    if _PENDING:
        raise _interrupt_of(_PENDING[0])


def sigterm_received() -> bool:
    """Whether one of the signals noted so far is SIGTERM (an interrupted sweep reports it as such, exit 143)."""
    return signal.SIGTERM in _PENDING


@contextlib.contextmanager
def held():
    """While the block runs a signal is noted, not raised; once it has ended, the interrupt is raised (see the
    module's docstring)."""
    _HOLDING.append(True)
    try:
        yield
    finally:
        _HOLDING.pop()
    if not _HOLDING:
        raise_pending_interrupt()


@contextlib.contextmanager
def sigterm_as_interrupt(sigint: bool = False, sigint_always: bool = False):
    """SIGTERM raises `Terminated` (a KeyboardInterrupt) while the block runs, so that it unwinds as Ctrl-C does:
    locks and temporaries are released and the user is told how to go on. `pipelines.cli` wraps every command in
    it; `generate` and the sweep also when called directly. `sigint`: Ctrl-C's KeyboardInterrupt too goes through the
    handler (where Python's own raises it), so that `raise_pending_interrupt` knows it; only over Python's own
    handler, so an ignored SIGINT (a background job) stays ignored. `sigint_always`: over any handler, an ignored
    SIGINT included (the sweep: the processes it starts inherit an ignored SIGINT, not a handler, and it stops its
    local jobs with SIGINT). The signals noted are forgotten when the outermost block ends; the previous handlers
    are restored afterwards."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    outermost = signal.getsignal(signal.SIGTERM) is not _raise_interrupt
    if outermost:  # a signal of an earlier command in this process (tests) is not this one's
        _PENDING.clear()
    before = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_interrupt)}
    if sigint_always or (sigint and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        before[signal.SIGINT] = signal.signal(signal.SIGINT, _raise_interrupt)
    hook = sys.unraisablehook
    if outermost:
        sys.unraisablehook = functools.partial(_unraisable, hook)
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        if outermost:
            sys.unraisablehook = hook
            _PENDING.clear()


def _unraisable(hook, unraisable) -> None:
    """Python's report of an exception it discarded, except the handler's interrupt raised inside a finalizer: the
    program stops at its next check (`raise_pending_interrupt`) with its one `error:` line, not a traceback first."""
    if not (_PENDING and isinstance(unraisable.exc_value, KeyboardInterrupt)):
        hook(unraisable)

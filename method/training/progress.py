"""Progress of a long run: a live bar on a terminal, a plain heartbeat line otherwise (DVC logs, SLURM)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """`update(stage, step, stage_steps, losses)` after every step; `close()` at the end.

    On a TTY this is a tqdm bar. Elsewhere it prints one line at most every `heartbeat_s` seconds
    (and at each stage end) with the stage, step, losses and an ETA, instead of the carriage returns a
    bar writes into a log file. `enabled=False` prints only the heartbeat lines (never nothing for a
    run of a day); `quiet=True` prints nothing.
    """

    def __init__(self, total: int, done: int, heartbeat_s: float, enabled: bool = True, quiet: bool = False,
                 stream: TextIO | None = None, clock=time.monotonic):
        self.stream = stream or sys.stderr
        self.total, self.done, self.start_done = total, done, done
        self.heartbeat_s = heartbeat_s
        self.quiet = quiet
        self.clock = clock
        self.t0 = self.last = clock()
        self.bar = None
        if enabled and not quiet and hasattr(self.stream, "isatty") and self.stream.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, dynamic_ncols=True, unit="step", file=self.stream)

    def eta_s(self) -> float | None:
        steps = self.done - self.start_done
        if steps <= 0:
            return None
        return (self.clock() - self.t0) / steps * (self.total - self.done)

    def update(self, stage: str, step: int, stage_steps: int, record: dict) -> None:
        self.done += 1
        # formatted only when shown: most steps of a non-terminal run print nothing
        losses = lambda: " ".join(f"{k[5:]}={v:.3g}" for k, v in record.items() if k.startswith("loss_"))  # noqa: E731
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_description(f"{stage} {step}/{stage_steps}")
            self.bar.set_postfix_str(f"{record.get('update', '')} {losses()}")
            return
        now = self.clock()
        if self.quiet or (now - self.last < self.heartbeat_s and step != stage_steps):
            return
        self.last = now
        eta = self.eta_s()
        eta_text = "?" if eta is None else duration(eta)
        print(f"[{self.done}/{self.total}] {stage} step {step}/{stage_steps} {record.get('update', '')} {losses()} "
              f"eta {eta_text}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def duration(seconds: float) -> str:
    """`1h05m` or `4m09s`, as the progress lines print a duration."""
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"

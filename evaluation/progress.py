"""Progress of a long evaluation loop (frames rendered, videos scored): a tqdm bar on a terminal when asked, and
otherwise, with `heartbeat_s`, a plain line now and then, so that a log (DVC, SLURM, nohup) shows the work
advancing as `fourdfy generate`'s heartbeat does."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from method.training.progress import duration


class Counter:
    """`update(n)` as units finish, `close()` at the end.

    With `bar` and a terminal: a tqdm bar. Otherwise, when `heartbeat_s` is set: `desc: done/total unit(s), eta`
    at most every `heartbeat_s` seconds, and once at the end. Otherwise nothing.
    """

    def __init__(self, total: int, desc: str, unit: str, bar: bool = False, heartbeat_s: float | None = None,
                 stream: TextIO | None = None, clock=time.monotonic):
        self.stream = stream or sys.stderr
        self.total, self.done, self.desc, self.unit = total, 0, desc, unit
        self.heartbeat_s, self.clock = heartbeat_s, clock
        self.t0 = self.last = clock()
        self.bar = None
        if bar and hasattr(self.stream, "isatty") and self.stream.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit=unit, desc=desc, file=self.stream)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = self.clock()
        if self.heartbeat_s is None or (now - self.last < self.heartbeat_s and self.done < self.total):
            return
        self.last = now
        rate = (now - self.t0) / self.done if self.done else 0.0
        tail = f", eta {duration(rate * (self.total - self.done))}" if self.done < self.total else \
            f", {duration(now - self.t0)}"
        print(f"{self.desc}: {self.done}/{self.total} {self.unit}(s){tail}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def iterate(self, items):
        """`items`, each counted once the loop's body for it has run; closed at the end."""
        try:
            for item in items:
                yield item
                self.update()
        finally:
            self.close()

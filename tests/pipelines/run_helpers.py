"""Helpers of the pipeline tests."""

from method.training.trainer import Trainer


def no_training(monkeypatch) -> None:
    """Make any training fail the test: the command under test must take a finished run as it is."""
    def refuse(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(Trainer, "run", refuse)


def stamp(folder, when: int) -> None:
    """Set every file of `folder` to the time `when` (seconds): a copy made long ago, or touched since."""
    import os
    from pathlib import Path

    for p in Path(folder).rglob("*"):
        if p.is_file():
            os.utime(p, ns=(when * 10**9, when * 10**9))

"""`fourdfy` commands of the user-study analysis (analyze, audit, simulate-votes, power)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to the root `fourdfy` app."""

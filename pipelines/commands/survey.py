"""`fourdfy` commands: survey (being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root `fourdfy` app."""

"""The oracle end-to-end check: exact priors for a known synthetic 4D scene."""

from .scene import Blob, OracleScene

__all__ = ["OracleConfig", "OracleGuidance", "OracleScene", "Blob"]


def __getattr__(name: str):
    # the priors pull in method.guidance; the scene alone stays importable without it
    if name in ("OracleConfig", "OracleGuidance"):
        from . import prior

        return getattr(prior, name)
    raise AttributeError(f"module 'method.oracle' has no attribute {name!r}")

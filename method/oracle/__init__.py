"""The oracle end-to-end check: exact priors for a known synthetic 4D scene."""

from .prior import OracleGuidance
from .scene import Blob, OracleScene

__all__ = ["OracleGuidance", "OracleScene", "Blob"]

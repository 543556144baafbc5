"""Image metrics used by the checks of the trainer (the oracle)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def psnr(a: Tensor, b: Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1] (inf for identical images)."""
    mse = torch.mean((a.float() - b.float()) ** 2).item()
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)

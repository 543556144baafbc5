"""The per-step choice of update type (Algorithm 1, release semantics)."""

from __future__ import annotations

import torch

from .config import StageConfig


def draw_update(stage: StageConfig, generator: torch.Generator) -> str:
    """3D with P_3D; else IMG with P_IMG (stage 3) or always IMG (stages 1-2); else video.

    Two uniforms are drawn at every step whatever the outcome, so the random stream (and a resumed
    run) does not depend on which branch was taken.
    """
    u = torch.rand(2, generator=generator, dtype=torch.float64)
    if u[0] < stage.p_3d:
        return "3d"
    if not stage.allow_video or u[1] < stage.p_img:
        return "img"
    return "video"

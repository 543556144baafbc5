"""Score distillation with the three diffusion priors of 4D-fy (paper Sec. 3.2, Eqs. 3-6).

- `MVDreamGuidance`   3D-aware SDS on 4-view groups -> {"loss_sds"}
- `VSDGuidance`       VSD with SD 2.1 + LoRA          -> {"loss_vsd", "loss_lora"}
- `ZeroscopeGuidance` video SDS on one clip           -> {"loss_sds_video"}

Each is built as `Cls(config, device)` and called as `guidance(rgb, cameras, prompt, step,
generator=None, stage=None)`. Shared, model-free pieces live in `common`; tiny random-weight priors
in `tiny`. Heavy libraries (diffusers, transformers, peft) are imported when a prior is built.
"""

from .common import (NoiseSchedule, TimestepRange, alphas_cumprod_from_config, cfg_combine,
                     scaled_linear_alphas_cumprod, sds_loss, weighting)
from .loading import GuidanceError, ModelNotFoundError
from .mvdream import MVDreamConfig, MVDreamGuidance
from .prompts import DIRECTIONS, PromptProcessor, ViewThresholds, view_directions, view_prompt
from .vsd import VSDConfig, VSDGuidance
from .zeroscope import ZeroscopeConfig, ZeroscopeGuidance

__all__ = [
    "MVDreamConfig", "MVDreamGuidance", "VSDConfig", "VSDGuidance", "ZeroscopeConfig", "ZeroscopeGuidance",
    "ModelNotFoundError", "GuidanceError", "PromptProcessor", "ViewThresholds", "DIRECTIONS", "view_directions",
    "view_prompt", "NoiseSchedule", "TimestepRange", "alphas_cumprod_from_config", "scaled_linear_alphas_cumprod",
    "cfg_combine", "sds_loss", "weighting",
]

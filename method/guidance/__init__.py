"""Score distillation with the three diffusion priors of 4D-fy (paper Sec. 3.2, Eqs. 3-6).

- `MVDreamConfig`   -> `MVDreamGuidance`   3D-aware SDS on 4-view groups -> {"loss_sds"}
- `VSDConfig`       -> `VSDGuidance`       VSD with SD 2.1 + LoRA          -> {"loss_vsd", "loss_lora"}
- `ZeroscopeConfig` -> `ZeroscopeGuidance` video SDS on one clip           -> {"loss_sds_video"}

Configs are typed frozen dataclasses (`PriorConfig`, discriminated by `kind`) with nested option
blocks (`view_prompt: ViewPromptOptions`, `frozen: FrozenModelOptions`); `build_prior(config, device)`
builds the prior a config names. Every prior is called as `guidance(rgb, cameras, prompt, step,
generator=None, stage=None, times=None)`. Model ids are hub ids, folders or `fourdfy-tiny:<name>`
(tiny random-weight priors, `tiny`). Shared model-free pieces live in `common`. Heavy libraries
(diffusers, transformers, peft) are imported when a prior is built. Docs: docs/priors.md.
"""

from .base import FrozenModelOptions, Guidance, PriorConfig, build_prior
from .common import (NoiseSchedule, TimestepRange, alphas_cumprod_from_config, cfg_combine,
                     scaled_linear_alphas_cumprod, sds_loss, weighting)
from .loading import (ConversionError, GuidanceError, ModelMismatchError, ModelNotFoundError, cache_dir,
                      resolve_model)
from .mvdream import MVDreamConfig, MVDreamGuidance
from .prompts import DIRECTIONS, PromptProcessor, ViewPromptOptions, view_directions, view_prompt
from .tiny import tiny_mvdream_config, tiny_vsd_config, tiny_zeroscope_config
from .vsd import VSDConfig, VSDGuidance
from .zeroscope import ZeroscopeConfig, ZeroscopeGuidance

__all__ = [
    "PriorConfig", "Guidance", "build_prior", "FrozenModelOptions", "ViewPromptOptions",
    "MVDreamConfig", "MVDreamGuidance", "VSDConfig", "VSDGuidance", "ZeroscopeConfig", "ZeroscopeGuidance",
    "tiny_mvdream_config", "tiny_vsd_config", "tiny_zeroscope_config", "cache_dir", "resolve_model",
    "ModelNotFoundError", "ModelMismatchError", "GuidanceError", "ConversionError", "PromptProcessor", "DIRECTIONS",
    "view_directions", "view_prompt", "NoiseSchedule", "TimestepRange", "alphas_cumprod_from_config",
    "scaled_linear_alphas_cumprod", "cfg_combine", "sds_loss", "weighting",
]

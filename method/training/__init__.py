"""Hybrid SDS training (Algorithm 1): configs, profiles, the update-type draw and the trainer."""

from .config import UPDATE_TYPES, Anneal, LearningRates, LossWeights, RenderSchedule, StageConfig, TrainConfig, replace
from .profiles import PROFILES, default_stages, load_profile

__all__ = ["UPDATE_TYPES", "Anneal", "LearningRates", "LossWeights", "RenderSchedule", "StageConfig", "TrainConfig",
           "replace", "PROFILES", "default_stages", "load_profile"]

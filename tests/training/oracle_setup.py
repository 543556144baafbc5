import pytest

from method.oracle.check import oracle_config
from method.training.config import replace


def small_oracle_config(steps=(4, 4, 6), **overrides):
    """The oracle run at toy sizes: the trainer's machinery without pretrained weights, in seconds."""
    cfg = oracle_config(steps, size=8)
    cfg = replace(cfg, checkpoint_every=3, log_every=1, preview_frames=0,
                  **{"render.img_resolution": 8, "render.video_size": (6, 6), "render.eval_size": 8,
                     "renderer.num_samples": 12,
                     **{f"stages.{s.name}.mv_resolution": ((0, 8),) for s in cfg.stages},
                     **{f"stages.{s.name}.mv_groups": ((0, 1),) for s in cfg.stages}})
    return replace(cfg, **overrides) if overrides else cfg


def oracle_priors(cfg=None):
    """Fresh oracle priors of the small config (built from their typed configs, as the trainer would)."""
    cfg = cfg or small_oracle_config()
    return {u: spec.build("cpu") for u, spec in cfg.guidance.items()}


@pytest.fixture
def oracle_cfg():
    return small_oracle_config()

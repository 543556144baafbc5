import pytest

from method.oracle import OracleGuidance, OracleScene
from method.oracle.check import oracle_config
from method.training.config import RenderSchedule, replace


def small_oracle_config(steps=(4, 4, 6), **overrides):
    """The oracle run at toy sizes: the trainer's machinery without pretrained weights, in seconds."""
    cfg = oracle_config(steps, size=8)
    cfg = replace(cfg, render=RenderSchedule(mv_resolution=((0, 8),), mv_groups=((0, 1),), img_resolution=8,
                                             video_size=(6, 6), video_frames=16, num_samples=12, eval_size=8),
                  checkpoint_every=3, log_every=1)
    return replace(cfg, **overrides) if overrides else cfg


def oracle_priors():
    scene = OracleScene()
    return {"3d": OracleGuidance("sds", scene, target_samples=16), "img": OracleGuidance("vsd", scene, target_samples=16),
            "video": OracleGuidance("sds_video", scene, target_samples=16)}


@pytest.fixture
def oracle_cfg():
    return small_oracle_config()

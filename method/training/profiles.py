"""Profiles: `paper` (the paper's text), `release` (the authors' configs where they differ from the
text) and `tiny` (CPU: small grids, renders and random-weight tiny priors; minutes per prompt).

Where the paper is silent both profiles follow the release. Differences, each a config field:

| what                         | paper                         | release                            |
|------------------------------|-------------------------------|------------------------------------|
| stage-2 steps                | 10k                           | 25k                                |
| MVDream loss                 | SDS with w(t) (Eq. 3)         | "recon" x0 loss, std rescale 0.5   |
| stage-1 timestep anneal      | [0.02,0.98]->[0.02,0.5], 5k   | min 0.98->0.02, max 0.98->0.5, 8k  |
| video CFG                    | u + s (c - u)                 | c + s (c - u)                      |
| stage-3 draw                 | P, P*P_IMG, 1-P*P_IMG (!= 1)  | sequential 0.5 / 0.25 / 0.25       |

Both profiles use the sequential draw, since the paper's stated probabilities do not sum to 1.
"""

from __future__ import annotations

from method.background import BackgroundConfig
from method.fields import FieldConfig, HashGridConfig

from .config import (Anneal, GuidanceSpec, LearningRates, LossWeights, RenderSchedule, StageConfig,
                     TrainConfig, replace)

PROFILES = ("paper", "release", "tiny")


def _stages(n1: int, n2: int, n3: int, p_3d: float = 0.5, p_img: float = 0.5) -> tuple[StageConfig, ...]:
    return (
        StageConfig("stage1", n1, p_3d=1.0, p_img=0.0, allow_video=False),
        StageConfig("stage2", n2, p_3d=p_3d, p_img=1.0, allow_video=False),
        StageConfig("stage3", n3, p_3d=p_3d, p_img=p_img, allow_video=True, static_lr_scale=0.01,
                    dynamic_time="frame"),
    )


def paper() -> TrainConfig:
    return TrainConfig(
        profile="paper",
        stages=_stages(10_000, 10_000, 100_000),
        blob_sigma={"stage3": Anneal(0.5, 5.0, 50_000)},
        guidance={
            "3d": GuidanceSpec("mvdream", {"loss": "sds", "cfg_form": "paper", "anneal": "paper"}),
            "img": GuidanceSpec("vsd", {}),
            "video": GuidanceSpec("zeroscope", {"cfg_form": "paper"}),
        },
    )


def release() -> TrainConfig:
    """The paper profile with the release's settings where the two differ (table above)."""
    base = paper()
    return replace(base, profile="release", stages=_stages(10_000, 25_000, 100_000), guidance={
        **base.guidance,
        "3d": GuidanceSpec("mvdream", {"loss": "recon", "cfg_form": "paper", "anneal": "release"}),
        "video": GuidanceSpec("zeroscope", {"cfg_form": "release"}),
    })


TINY_GRID = HashGridConfig(n_levels=8, n_features_per_level=2, log2_hashmap_size=14, base_resolution=8,
                           per_level_scale=1.5)


def tiny() -> TrainConfig:
    """CPU profile: the release's structure at toy sizes, with tiny random-weight priors."""
    return TrainConfig(
        profile="tiny",
        stages=_stages(40, 40, 80),
        field=FieldConfig(static_grid=TINY_GRID, dynamic_grid=TINY_GRID, mlp_hidden=32),
        background=BackgroundConfig(),
        render=RenderSchedule(mv_resolution=((0, 32),), mv_groups=((0, 1),), img_resolution=32, img_batch=1,
                              video_size=(16, 24), video_frames=16, num_samples=32, eval_size=48),
        lrs=LearningRates(),
        weights=LossWeights(opacity_entropy_from=100),
        blob_sigma={"stage3": Anneal(0.5, 1.0, 80)},
        guidance={
            "3d": GuidanceSpec("mvdream", {"loss": "recon", "anneal": "release"}),
            "img": GuidanceSpec("vsd", {}),
            "video": GuidanceSpec("zeroscope", {"cfg_form": "release"}),
        },
        checkpoint_every=50,
        preview_every=80,
        log_every=5,
    )


def load_profile(name: str) -> TrainConfig:
    try:
        return {"paper": paper, "release": release, "tiny": tiny}[name]()
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None

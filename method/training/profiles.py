"""Profiles: `paper` (the paper's text), `release` (the authors' configs where they differ from the
text), `release-lowvram` (the authors' low-VRAM configs: `low_vram`) and `tiny` (CPU: small grids,
renders and random-weight tiny priors; about 30 s per prompt on 2 cores, benchmarks/tiny_generate.md).

Where the paper is silent both profiles follow the release, except the elevation sampler (`paper` samples
what the release's code says it does, uniformly on the sphere band; `release` copies its formula) and the video
CFG (the paper writes none; `paper` uses the other priors' u + s (c - u), `release` the form of its Zeroscope
guidance). Differences,
each a config value (docs/fidelity.md has the full list with sources):

| what                         | paper                         | release                            |
|------------------------------|-------------------------------|------------------------------------|
| stage-2 steps                | 10k                           | 25k                                |
| stage-1 MVDream t anneal     | [0.02,0.98]->[0.02,0.5], 5k   | min 0.98->0.02, max 0.98->0.5, 8k  |
| video CFG                    | u + s (c - u)                 | c + s (c - u) = u + (s+1)(c - u)   |
| elevation sampler            | sin(el) uniform on the band   | the release's asin(2u - 1) branch  |
| stage-3 draw                 | sequential 0.5 / 0.25 / 0.25 (the text's P, P*P_IMG, 1-P*P_IMG sums to != 1) | same |

Both profiles use the sequential draw, since the paper's stated probabilities do not sum to 1.
Both use MVDream's x0 "recon" loss with std rescale 0.5: Eq. 3 writes generic SDS with w(t), but
the authors' code, which produced the paper's numbers, uses the recon loss, whose gradient is 2-7x
larger over t in [20, 500]; reproducing the tables needs the loss that made them. Eq. 3 stays one
value away: `--set guidance.3d.loss=sds`. Both read S1's video "total learning rate 0.1" as the release's loss
weight (`weights.sds_video`); the learning-rate reading is `stages.stage3.video_lr_scale` (docs/fidelity.md).
"""

from __future__ import annotations

import dataclasses

from method.background import BackgroundConfig
from method.fields import FieldConfig, HashGridConfig, HexPlaneConfig
from method.guidance import MVDreamConfig, VSDConfig, ZeroscopeConfig
from method.render import RenderConfig

from .config import Anneal, LearningRates, LossWeights, RenderSchedule, StageConfig, TrainConfig, replace

PROFILES = ("paper", "release", "release-lowvram", "tiny")

# The release's MVDream batches per stage: stage 1 starts with 2 groups at 64^2, stage 2 with 1 group
# at 64^2, both switching to 1 group at 256^2 at step 5000; stage 3 uses 256^2 from its first step.
MV_SCHEDULE = {
    "stage1": {"mv_resolution": ((0, 64), (5000, 256)), "mv_groups": ((0, 2), (5000, 1))},
    "stage2": {"mv_resolution": ((0, 64), (5000, 256)), "mv_groups": ((0, 1),)},
    "stage3": {"mv_resolution": ((0, 256),), "mv_groups": ((0, 1),)},
}


def default_stages(n1: int, n2: int, n3: int, p_3d: float = 0.5, p_img: float = 0.5,
                   mv_schedule: dict | None = None) -> tuple[StageConfig, ...]:
    """The three stages of Algorithm 1 with the given step counts (release MVDream schedule by default)."""
    mv = MV_SCHEDULE if mv_schedule is None else mv_schedule
    return (
        StageConfig("stage1", n1, p_3d=1.0, p_img=0.0, allow_video=False, **mv.get("stage1", {})),
        StageConfig("stage2", n2, p_3d=p_3d, p_img=1.0, allow_video=False, **mv.get("stage2", {})),
        StageConfig("stage3", n3, p_3d=p_3d, p_img=p_img, allow_video=True, static_lr_scale=0.01,
                    dynamic_time="frame", **mv.get("stage3", {})),
    )


def paper() -> TrainConfig:
    return TrainConfig(
        profile="paper",
        stages=default_stages(10_000, 10_000, 100_000),
        blob_sigma={"stage3": Anneal(0.5, 5.0, 50_000)},
        guidance={
            "3d": MVDreamConfig(loss="recon", cfg_form="paper", anneal="paper"),
            "img": VSDConfig(),
            "video": ZeroscopeConfig(cfg_form="paper"),
        },
    )


def release() -> TrainConfig:
    """The paper profile with the release's settings where the two differ (table above)."""
    base = paper()
    return replace(base, profile="release", stages=default_stages(10_000, 25_000, 100_000), **{
        "guidance.3d.anneal": "release",
        "guidance.video.cfg_form": "release",
        "cameras.elevation_sampler": "release",
    })


def low_vram(base: TrainConfig, profile: str) -> TrainConfig:
    """`base` with the changes of the release's current low-VRAM configs (`fourdfy_stage_*_low_vram.yaml` at
    its HEAD), made for one smaller GPU: the gradient-subset renderer (`train_max_nums` 2e6 in stages 1-2, 1e5
    in stage 3), no sparsity or opacity-entropy loss in stage 1, a 200k-step stage 3 of MVDream (0.75) and video
    (0.25) updates only (`prob_multi_view` 0.75, `prob_single_view_video` 1) that train the dynamic grid alone
    (`freeze_static_modules`), no blob-sigma anneal, no random background colour, and 4 of the 16 frames
    VAE-encoded with gradient (`low_ram_vae`). A different gradient estimator, not only less memory. Not
    copied: stage 3's `precision: 16-mixed` (the field and trainer run float32; docs/fidelity.md)."""
    s1, s2, s3 = base.stages
    stages = (dataclasses.replace(s1, grad_max_samples=2_000_000, weights={"sparsity": 0.0, "opacity_entropy": 0.0}),
              dataclasses.replace(s2, grad_max_samples=2_000_000),
              dataclasses.replace(s3, steps=200_000, grad_max_samples=100_000, p_3d=0.75, p_img=0.0,
                                  trainable=("dynamic",)))
    return replace(base, profile=profile, stages=stages, blob_sigma={"stage3": Anneal(0.5, 0.5)}, **{
        "background.random_color_prob": 0.0,
        "guidance.video.grad_frames": 4,
    })


def recompute(cfg: TrainConfig) -> TrainConfig:
    """`cfg` with activation checkpointing of the field (`renderer.recompute_field`, in regions of
    `recompute_chunk` samples) and of every prior's VAE encoder (`frozen.vae_gradient_checkpointing`, one
    image at a time): far less memory, one more field and encoder forward per update, the same gradients up
    to float rounding. Execution-only, like the device: the config hash does not change."""
    changes = {"renderer.recompute_field": True}
    # a prior without the option (the oracle, a plug-in without a VAE) has nothing to recompute
    for u, pc in cfg.guidance.items():
        if hasattr(getattr(pc, "frozen", None), "vae_gradient_checkpointing"):
            changes[f"guidance.{u}.frozen.vae_gradient_checkpointing"] = True
    return replace(cfg, **changes)


def release_lowvram() -> TrainConfig:
    """The release profile with the authors' low-VRAM configs (`low_vram`)."""
    return low_vram(release(), "release-lowvram")


TINY_GRID = HashGridConfig(n_levels=8, n_features_per_level=2, log2_hashmap_size=14, base_resolution=8,
                           per_level_scale=1.5)
# renders at the tiny priors' own input sizes (MVDream 16^2, VSD 32^2, Zeroscope 16x24): larger ones are resized away
TINY_MV = {name: {"mv_resolution": ((0, 16),), "mv_groups": ((0, 1),)} for name in ("stage1", "stage2", "stage3")}


def tiny() -> TrainConfig:
    """CPU profile: the release's structure at toy sizes, with tiny random-weight priors."""
    from method.guidance.tiny import tiny_mvdream_config, tiny_vsd_config, tiny_zeroscope_config

    return TrainConfig(
        profile="tiny",
        stages=default_stages(40, 40, 80, mv_schedule=TINY_MV),
        field=FieldConfig(static_grid=TINY_GRID, dynamic_grid=TINY_GRID, mlp_hidden=32,
                          hexplane=HexPlaneConfig(time_resolutions=(4, 8, 16, 16))),
        background=BackgroundConfig(),
        render=RenderSchedule(img_resolution=32, img_batch=1, video_size=(16, 24), video_frames=16, eval_size=48),
        renderer=RenderConfig(num_samples=32),
        lrs=LearningRates(),
        weights=LossWeights(opacity_entropy_from=100),
        blob_sigma={"stage3": Anneal(0.5, 1.0, 80)},
        guidance={
            "3d": tiny_mvdream_config(loss="recon", anneal="release"),
            "img": tiny_vsd_config(),
            "video": tiny_zeroscope_config(cfg_form="release"),
        },
        checkpoint_every=10,
        preview_every=80,
        log_every=5,
    )


def load_profile(name: str) -> TrainConfig:
    try:
        return {"paper": paper, "release": release, "release-lowvram": release_lowvram, "tiny": tiny}[name]()
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None

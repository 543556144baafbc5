"""`fourdfy oracle`: train with exact priors for the known scene and measure PSNR on held-out views.

Checks the whole machinery (cameras, renderer, grids, schedules, freezing, stage hand-over) without
pretrained weights: after stage 2 the static model must match the scene at t = 0; after stage 3 the
model must match it at held-out (view, time) pairs, and beat the stage-2 model where the blob moved.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from method.background import BackgroundConfig
from method.cameras import CameraRanges, cameras_from_spherical
from method.fields import FieldConfig, HashGridConfig, SceneField
from method.training import checkpoint as ckpt
from method.training.config import Anneal, GuidanceSpec, LossWeights, RenderSchedule, TrainConfig
from method.training.profiles import _stages
from method.training.trainer import Trainer, psnr

from .prior import OracleGuidance
from .scene import OracleScene

ORACLE_GRID = HashGridConfig(n_levels=6, n_features_per_level=2, log2_hashmap_size=13, base_resolution=8,
                             per_level_scale=1.6)


def oracle_config(steps: tuple[int, int, int] = (70, 70, 140), size: int = 32, seed: int = 0) -> TrainConfig:
    """The 4dfy method's structure at CPU sizes, every prior replaced by the oracle."""
    return TrainConfig(
        profile="oracle",
        method="4dfy",
        stages=_stages(*steps),
        field=FieldConfig(static_grid=ORACLE_GRID, dynamic_grid=ORACLE_GRID, mlp_hidden=32, grid_backend="torch"),
        # the oracle's target has a fixed background colour, so no random-colour augmentation
        background=BackgroundConfig(random_color_prob=0.0),
        cameras=CameraRanges(fovy_deg=(35.0, 45.0)),
        render=RenderSchedule(mv_resolution=((0, size),), mv_groups=((0, 1),), img_resolution=size, img_batch=1,
                              video_size=(size // 2, size // 2), video_frames=16, num_samples=48, eval_size=64),
        weights=LossWeights(sds_video=1.0, sparsity=0.0, opacity_entropy=0.0),
        blob_sigma={"stage3": Anneal(0.5, 0.5)},
        guidance={"3d": GuidanceSpec("oracle", {"loss_name": "sds"}),
                  "img": GuidanceSpec("oracle", {"loss_name": "vsd"}),
                  "video": GuidanceSpec("oracle", {"loss_name": "sds_video"})},
        checkpoint_every=10_000, preview_every=0, log_every=10, seed=seed, device="cpu",
    )


def heldout_views(n: int = 8):
    """Views between the training azimuth grid's usual spots, at an elevation seen in training."""
    az = torch.arange(n, dtype=torch.float32) * 360.0 / n + 360.0 / (2 * n)
    return cameras_from_spherical(az, 20.0, 2.8, 40.0)


@torch.no_grad()
def _render_field(field: SceneField, cams, times, size: int, sigma: float):
    from method.render import RenderConfig, render_images

    cfg = RenderConfig(num_samples=96, randomized=False)
    return render_images(lambda x, t: field(x, t, sigma), field.background, cams, times, size, size, cfg)["rgb"]


def _load(cfg: TrainConfig, path: Path) -> SceneField:
    f = SceneField(cfg.field, cfg.background)
    f.load_state_dict(ckpt.load(path)["field"])
    return f.eval()


def evaluate(cfg: TrainConfig, out: Path, scene: OracleScene, size: int = 64) -> dict:
    oracle = OracleGuidance(scene=scene)
    views = heldout_views(8)
    n = len(views)
    static = _load(cfg, out / "ckpt" / "stage2.pt")
    final = _load(cfg, out / "ckpt" / "stage3.pt")
    t0 = torch.zeros(n)
    gt0 = oracle.target(views, t0, size, size)
    p_static = psnr(_render_field(static, views, t0, size, 0.5), gt0)
    # held-out (view, time) pairs: each view at a time between the training frame times
    times = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    gt = oracle.target(views, times, size, size)
    sigma3 = cfg.sigma("stage3", cfg.stage("stage3").steps)
    final_imgs = _render_field(final, views, times, size, sigma3)
    static_imgs = _render_field(static, views, times, size, 0.5)
    moved = times >= 0.5  # the moving blob is displaced by more than its radius there
    return {
        "stage2_static_psnr": round(p_static, 3),
        "stage3_psnr": round(psnr(final_imgs, gt), 3),
        "moved_frames": int(moved.sum()),
        "stage3_psnr_moved": round(psnr(final_imgs[moved], gt[moved]), 3),
        "stage2_psnr_moved": round(psnr(static_imgs[moved], gt[moved]), 3),
        "gain_moved_db": round(psnr(final_imgs[moved], gt[moved]) - psnr(static_imgs[moved], gt[moved]), 3),
        "eval_size": size,
    }


THRESHOLDS = {"stage2_static_psnr": 24.0, "stage3_psnr": 22.0, "gain_moved_db": 3.0}


def run_oracle(out: Path | str, steps: tuple[int, int, int] = (70, 70, 140), size: int = 32, seed: int = 0,
               progress: bool = True, resume: bool = False) -> dict:
    out = Path(out)
    cfg = oracle_config(steps, size, seed)
    scene = OracleScene()
    priors = {"3d": OracleGuidance("sds", scene), "img": OracleGuidance("vsd", scene),
              "video": OracleGuidance("sds_video", scene)}
    trainer = Trainer(cfg, "oracle: coloured blobs, one moving", out, priors=priors, progress=progress,
                      run_orbit=False)
    manifest = trainer.run(resume=resume)
    metrics = evaluate(cfg, out, scene)
    metrics["passed"] = {k: metrics[k] >= v for k, v in THRESHOLDS.items()}
    metrics["thresholds"] = THRESHOLDS
    metrics["train_seconds"] = manifest.get("timings_s", {})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


__all__ = ["oracle_config", "run_oracle", "evaluate", "THRESHOLDS"]

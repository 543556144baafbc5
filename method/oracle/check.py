"""`fourdfy oracle`: train the 4dfy method with exact priors for a known blob scene and check it.

Exact priors (`prior.py`) replace MVDream, VSD and the video model; their targets are the scene's
closed-form renders (`OracleScene.render_exact`), not renders by the suite's renderer. The 3D and
video priors pull towards the scene, the IMG prior towards the same scene with its marker recoloured,
so the trained model shows which prior trained it. The checks, each of which a wrong trainer fails
(`tests/oracle/test_oracle_mutants.py` applies such mutants):

- what each stage may change (paper S1 / Algorithm 1): the dynamic grid is exactly its
  initialisation after stages 1 and 2; stage 3 trains it; the static grid's LR in stage 3 is 1/100
  of stages 1-2 (read from the log), and its weights move no more than that LR allows;
- which prior trains when: after stage 1 (3D only) the marker blob has the 3D target's colour, not
  the IMG one's; after stage 2 (3D and IMG, half each) it matches the average of the two targets
  better than either;
- the step-dependent timestep schedules: every drawn t lies in its prior's range at its (stage,
  step), including the 3D prior's stage-1 ramp;
- quality: PSNR of the stage-2 model at t = 0 and of the final model at held-out (view, time) pairs,
  and the gain of stage 3 over the static model where the blob moved.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from method.backends import seeded
from method.background import BackgroundConfig
from method.cameras import CameraRanges, cameras_from_spherical
from method.fields import FieldConfig, HashGridConfig, SceneField
from method.fileio import write_text_atomic
from method.render import RenderConfig, render_images
from method.training import checkpoint as ckpt
from method.training.config import Anneal, LossWeights, RenderSchedule, TrainConfig
from method.training.metrics import psnr
from method.training.profiles import default_stages
from method.training.trainer import Trainer

from .prior import OracleConfig, oracle_scene

ORACLE_GRID = HashGridConfig(n_levels=6, n_features_per_level=2, log2_hashmap_size=13, base_resolution=8,
                             per_level_scale=1.6)
STAGE3_STATIC_LR_SCALE = 0.01
"""Paper S1: the static grid's LR drops from 1e-2 to 1e-4 in stage 3 (checked against this, not the config)."""
ADAM_STEP_BOUND = 2.0
"""An Adam(W) step moves a weight by at most about its LR; allowed factor on steps x LR."""
DEFAULT_STEPS = (70, 70, 140)


def oracle_priors(steps: tuple[int, int, int] = DEFAULT_STEPS) -> dict[str, OracleConfig]:
    """The intended priors: 3D -> the scene, with a stage-1 ramp from [0.5, 0.98] to [0.02, 0.5] over the
    first half of stage 1 (disjoint from the later ranges at its start, so a schedule that does not
    move, or runs in the wrong stage, shows); IMG -> the recoloured scene, [0.02, 0.5]; video -> the
    scene, [0.02, 0.98]."""
    ramp = max(1, round(0.5 * steps[0]))
    return {"3d": OracleConfig(loss_name="sds", scene="base", t_range=(0.02, 0.5), t_anneal_start=(0.5, 0.98),
                               t_anneal_steps=ramp),
            "img": OracleConfig(loss_name="vsd", scene="recolored", t_range=(0.02, 0.5)),
            "video": OracleConfig(loss_name="sds_video", scene="base", t_range=(0.02, 0.98))}


def oracle_config(steps: tuple[int, int, int] = DEFAULT_STEPS, size: int = 32, seed: int = 0) -> TrainConfig:
    """The 4dfy method's structure at CPU sizes, every prior replaced by an oracle."""
    mv = {name: {"mv_resolution": ((0, size),), "mv_groups": ((0, 1),)} for name in ("stage1", "stage2", "stage3")}
    return TrainConfig(
        profile="oracle",
        method="4dfy",
        stages=default_stages(*steps, mv_schedule=mv),
        field=FieldConfig(static_grid=ORACLE_GRID, dynamic_grid=ORACLE_GRID, mlp_hidden=32, grid_backend="torch"),
        # the oracle's target has a fixed background colour, so no random-colour augmentation
        background=BackgroundConfig(random_color_prob=0.0),
        cameras=CameraRanges(fovy_deg=(35.0, 45.0)),
        render=RenderSchedule(img_resolution=size, img_batch=1, video_size=(size // 2, size // 2), video_frames=16,
                              eval_size=64),
        renderer=RenderConfig(num_samples=48),
        weights=LossWeights(sds_video=1.0, sparsity=0.0, opacity_entropy=0.0),
        blob_sigma={"stage3": Anneal(0.5, 0.5)},
        guidance=dict(oracle_priors(steps)),
        checkpoint_every=10_000, preview_every=0, preview_frames=0, log_every=1, seed=seed, device="cpu",
    )


def heldout_views(n: int = 8):
    """Views between the training azimuth grid's usual spots, at an elevation seen in training."""
    az = torch.arange(n, dtype=torch.float32) * 360.0 / n + 360.0 / (2 * n)
    return cameras_from_spherical(az, 20.0, 2.8, 40.0)


@torch.no_grad()
def _render_field(field: SceneField, cams, times, size: int, sigma: float):
    cfg = RenderConfig(num_samples=96, randomized=False)
    return render_images(lambda x, t: field(x, t, sigma), field.background, cams, times, size, size, cfg)["rgb"]


def _load(cfg: TrainConfig, path: Path) -> SceneField:
    f = SceneField(cfg.field, cfg.background)
    f.load_state_dict(ckpt.load(path)["field"])
    return f.eval()


def _initial_field(cfg: TrainConfig) -> SceneField:
    with seeded(cfg.seed):  # as the trainer initialises its field
        return SceneField(cfg.field, cfg.background)


def _group(field: SceneField, name: str) -> torch.Tensor:
    ps = field.param_groups()[name]
    return torch.cat([p.detach().reshape(-1) for p in ps]) if ps else torch.zeros(0)


def _max_change(a: SceneField, b: SceneField, group: str) -> float:
    d = _group(a, group) - _group(b, group)
    return float(d.abs().max()) if d.numel() else 0.0


def masked_psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR over the pixels where `mask` (B, H, W) is True."""
    return psnr(a[mask], b[mask])


def _schedule_bounds(cfg: OracleConfig, stage: str | None, step: int) -> tuple[float, float]:
    """Inclusive t bounds (in steps of 1000) of `cfg`'s schedule, written out as the linear ramp."""
    lo, hi = cfg.t_range
    if cfg.t_anneal_start is not None and (stage is None or stage in cfg.anneal_stages):
        f = min(max(step / cfg.t_anneal_steps, 0.0), 1.0) if cfg.t_anneal_steps > 0 else 1.0
        lo = cfg.t_anneal_start[0] + f * (lo - cfg.t_anneal_start[0])
        hi = cfg.t_anneal_start[1] + f * (hi - cfg.t_anneal_start[1])
    return 1000 * lo, 1000 * hi


def schedule_violations(draws: dict[str, list], steps: tuple[int, int, int], log: Path) -> tuple[int, int]:
    """(violations, draws checked) of the priors' timestep draws against the intended schedules.

    The run's log has one line per step (the oracle logs every step) naming its stage, step and update
    type; the priors' draws, in call order, are matched to the last lines of the log (after a resume
    the draws cover only the steps this process ran). A violation is a step whose prior was told
    another stage or step than the log's, a t outside the intended range at the log's (stage, step)
    (one timestep of slack), or a step without its draw or a draw without its step.
    """
    intended = oracle_priors(steps)
    queues = {u: list(v) for u, v in draws.items()}
    n_draws = sum(len(q) for q in queues.values())
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    records = [r for r in records if "update" in r][-n_draws:] if n_draws else []
    bad = seen = 0
    for rec in records:
        stage, step, update = rec["stage"], rec["step"] - 1, rec["update"]  # the log counts steps done
        if not queues.get(update):
            bad += 1
            continue
        told_stage, told_step, t = queues[update].pop(0)
        lo, hi = _schedule_bounds(intended[update], stage, step)
        seen += 1
        bad += (told_stage, told_step) != (stage, step) or not lo - 1 <= t <= hi + 1
    return bad + sum(len(q) for q in queues.values()), seen


def _static_lr_errors(cfg: TrainConfig, log: Path) -> int:
    """Log lines whose static-grid LR is not the paper's for their stage, plus stages with no line."""
    expected = {"stage1": cfg.lrs.static, "stage2": cfg.lrs.static, "stage3": cfg.lrs.static * STAGE3_STATIC_LR_SCALE}
    seen, errors = set(), 0
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("stage") not in expected:
            continue
        seen.add(rec["stage"])
        lr = rec.get("lr", {}).get("static")
        errors += lr is None or abs(lr - expected[rec["stage"]]) > 1e-9 * expected[rec["stage"]]
    return errors + sum(1 for s in expected if cfg.stage(s).steps > 0 and s not in seen)


# value >= threshold passes
THRESHOLDS = {"stage2_mixture_over_single_db": 2.0, "stage2_static_psnr": 26.0, "stage3_psnr": 28.0,
              "gain_moved_db": 3.0, "stage3_dynamic_change": 1e-3}
# value <= limit passes
LIMITS = {"stages12_dynamic_change": 0.0, "static_lr_log_errors": 0, "stage3_static_change_ratio": ADAM_STEP_BOUND,
          "schedule_violations": 0, "stage1_target_side": -0.15}


def target_side(img: torch.Tensor, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Where `img` lies between targets a and b on the pixels of `mask`, measured along b - a from their
    midpoint: -0.5 is a's colour, +0.5 b's, and a model that learned neither is near 0."""
    d = b - a
    return float((((img - (a + b) / 2) * d).sum(-1)[mask] / (d * d).sum(-1)[mask]).mean())


def evaluate(cfg: TrainConfig, out: Path, draws: dict[str, list] | None = None, size: int = 64) -> dict:
    """The oracle's checks on a finished run folder (`draws`: the priors' (stage, step, t) records)."""
    out = Path(out)
    steps = tuple(cfg.stage(s).steps for s in ("stage1", "stage2", "stage3"))
    init = _initial_field(cfg)
    s1, s2, s3 = (_load(cfg, out / "ckpt" / f"stage{i}.pt") for i in (1, 2, 3))
    base, recolored = oracle_scene("base"), oracle_scene("recolored")
    views = heldout_views(8)
    n = len(views)
    t0 = torch.zeros(n)
    a0, b0 = base.render_exact(views, t0, size, size), recolored.render_exact(views, t0, size, size)
    mix0 = (a0 + b0) / 2  # the expected pull of equally likely 3D and IMG updates
    differ = (a0 - b0).abs().amax(-1) > 0.05  # pixels where the marker blob shows
    r1, r2 = _render_field(s1, views, t0, size, 0.5), _render_field(s2, views, t0, size, 0.5)
    # held-out (view, time) pairs: each view at a time between the training frame times
    times = (torch.arange(n, dtype=torch.float32) + 0.5) / n
    a, b = base.render_exact(views, times, size, size), recolored.render_exact(views, times, size, size)
    agree = (a - b).abs().amax(-1) <= 0.02  # the 3D / video and IMG targets agree there
    sigma3 = cfg.sigma("stage3", cfg.stage("stage3").steps)
    final_imgs = _render_field(s3, views, times, size, sigma3)
    static_imgs = _render_field(s2, views, times, size, 0.5)
    # pixels the motion changed (the same view at t = 0 differs), where both targets agree
    moved = ((a - a0).abs().amax(-1) > 0.05) & agree
    lr3 = cfg.lrs.static * STAGE3_STATIC_LR_SCALE
    bad, seen = schedule_violations(draws, steps, out / "log.jsonl") if draws is not None else (0, 0)
    m = {
        "stages12_dynamic_change": max(_max_change(s1, init, "dynamic"), _max_change(s2, init, "dynamic")),
        "stage3_dynamic_change": _max_change(s3, s2, "dynamic"),
        "static_lr_log_errors": _static_lr_errors(cfg, out / "log.jsonl"),
        "stage3_static_change_ratio": _max_change(s3, s2, "static") / max(steps[2] * lr3, 1e-30),
        "schedule_violations": bad,
        "schedule_draws_checked": seen,
        "stage1_target_side": target_side(r1, a0, b0, differ),
        "stage2_mixture_over_single_db": masked_psnr(r2, mix0, differ) - max(masked_psnr(r2, a0, differ),
                                                                           masked_psnr(r2, b0, differ)),
        "stage2_static_psnr": psnr(r2, mix0),
        "stage3_psnr": masked_psnr(final_imgs, a, agree.expand_as(a[..., 0])),
        "stage3_psnr_moved": masked_psnr(final_imgs, a, moved),
        "stage2_psnr_moved": masked_psnr(static_imgs, a, moved),
    }
    m["gain_moved_db"] = m["stage3_psnr_moved"] - m["stage2_psnr_moved"]
    m = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in m.items()}
    m["passed"] = {**{k: m[k] >= v for k, v in THRESHOLDS.items()}, **{k: m[k] <= v for k, v in LIMITS.items()}}
    if draws is None:
        m["passed"].pop("schedule_violations")
    m["thresholds"] = {**{k: f">= {v}" for k, v in THRESHOLDS.items()}, **{k: f"<= {v}" for k, v in LIMITS.items()}}
    m["eval_size"] = size
    return m


def run_oracle(out: Path | str, steps: tuple[int, int, int] = DEFAULT_STEPS, size: int = 32, seed: int = 0,
               progress: bool = True, resume: bool = False, cfg: TrainConfig | None = None,
               eval_size: int = 64) -> dict:
    """Train with the oracle priors (`cfg`: a modified `oracle_config`, e.g. in mutation tests), check,
    and write metrics.json. The checks always compare against the intended schedules and LRs."""
    out = Path(out)
    cfg = cfg or oracle_config(steps, size, seed)
    steps = tuple(cfg.stage(s).steps for s in ("stage1", "stage2", "stage3"))
    trainer = Trainer(cfg, "oracle: coloured blobs, one moving", out, progress=progress)
    manifest = trainer.run(resume=resume)
    draws = {u: list(trainer.prior(u).draws) for u in ("3d", "img", "video") if u in cfg.update_types_used()}
    metrics = evaluate(cfg, out, draws, eval_size)
    metrics["train_seconds"] = manifest.get("timings_s", {})
    write_text_atomic(Path(out) / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


__all__ = ["oracle_config", "oracle_priors", "run_oracle", "evaluate", "THRESHOLDS", "LIMITS"]

"""Paper-scale cost of one 4D-fy update of each type (3D / IMG / VID): seconds and peak memory, with
full-size random-weight priors, the paper-size field and renderer, and the projected GPU-hours per
prompt of the `paper`, `release` and `release-lowvram` profiles, against the paper's A100 figures.

    .venv/bin/python benchmarks/paper_scale.py --device cuda --out benchmarks/paper_scale_results
    .venv/bin/python benchmarks/paper_scale.py --size reduced --device cpu --out /tmp/ps   # same code, tiny

What runs is the trainer's own `train_step` (render at the profile's sizes -> prior loss ->
regularisers -> backward -> AdamW step), with the update type forced, on priors built in memory:
MVDream (SD 2.1-base UNet + camera class embedding + multi-view attention), SD 2.1-base + SD 2.1
with LoRA and camera MLP (VSD), Zeroscope's UNet3DConditionModel, the SD VAE, SD 2's OpenCLIP-H text
tower, each with random weights from its architecture config (`method.guidance.architectures`).
Random weights cost the same as trained ones; the occupancy grid of a random field is dense, so
renderer figures are an upper bound of a trained scene's (which skips empty space).

Options (one flag each; each changes only what it names): --precision profile|fp32|fp16|bf16 (frozen weights),
--no-sdpa (diffusers' plain attention), --channels-last [3d img] (the 2D UNets: all, or the named updates'),
--compile [3d img video] (torch.compile the
UNets: all, or the named updates'), --compile-vae [3d img video] (the VAE encoders, likewise), --compile-regional
(what those compile, block by block: a fraction of the cold compile time), --cuda-graph [3d img video] (the
frozen UNets' no-gradient forwards replayed as CUDA graphs: all, or the named updates'); these are the
priors' own `frozen` options (`half_dtype`, `channels_last`, `compile`, `compile_vae_encoder`,
`compile_regional`, `cuda_graph`), so a run
gets what is measured with `--set 'guidance.*.frozen.<option>=...'`,
--compile-field (torch.compile the field, dynamic shapes; CUDA graphs do not fit a sample count that
changes every step),
--grad-max-samples N (the release's gradient-subset renderer), --recompute-field [--recompute-chunk N] and
--vae-checkpointing (activation checkpointing of the field and of the VAE encoder: what `fourdfy generate
--recompute` sets), --tf32 (TF32 matrix products, as the trainer's `--set tf32=true`; off by default),
--phases (one more update of each type timed by part, with each part's peak memory), --ops N (one more under
torch.profiler: the N most expensive operators, and the device's busy time against the profiled step and the
unprofiled update), --scene ball (the field's density kept
to a ball of `--ball-radius` x the box radius, and on CUDA the occupancy grid's cells outside it
empty: the renderer's cost on a compact, trained-like scene instead of the dense random field's
upper bound).
Every measured update starts from the scene, occupancy grid and camera draws of the first (`snapshot`): the
steps themselves train the field, which would change the sample count, and with it the cost, from one
repeat, update and option to the next. `--budget-s` bounds the timed repeats: an update's repeats stop when its share of the
budget would be exceeded (at least one timed repeat per update). Warm-ups, where compilation and first use
land, are not counted, so a compiled update gets as many repeats as a plain one. Writes `<out>.json` and `<out>.md`; prints a results block.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from method.fileio import write_text_atomic

PAPER_S_PER_IT = {"stages 1-2": 0.72, "stage 3": 0.68}
"""Seconds per iteration on one A100 (80 GB) reported by the paper (supplement S1)."""
PAPER_GPU_HOURS = 23.0
"""GPU-hours per prompt reported by the paper (about 120k iterations on one A100)."""
GOAL_GPU_HOURS, GOAL_PEAK_GB = 6.0, 40.0
"""Issue 13's target at paper quality on one H100."""


# --- model construction (the one place that knows how priors are built) ------------------------------
def build_prior_models(size: str, device: torch.device, dtype: torch.dtype) -> dict[str, dict]:
    """update type -> the `models=` dict its guidance class accepts, random weights, built on `device`.

    size 'paper': the public architecture configs; 'reduced': the tiny priors' architectures.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from method.guidance import architectures as A
    from method.guidance import tiny as T

    if size == "paper":
        mv_unet, sd_unet, lora_unet = A.MVDREAM_UNET, A.SD21_BASE_UNET, A.SD21_UNET
        vae_cfg, text_cfg, unet3d = A.SD_VAE, A.SD2_TEXT_ENCODER, A.ZEROSCOPE_UNET
    else:
        mv_unet = T.TINY_MVDREAM_ARCH.diffusers_config(sample_size=8)
        sd_unet = lora_unet = T.TINY_UNET_ARCH.diffusers_config(sample_size=8)
        vae_cfg = T.TINY_VAE_ARCH.diffusers_config(sample_size=T.TINY_VSD_RESOLUTION)
        text_cfg, unet3d = T.TINY_TEXT, T.TINY_UNET3D
    tokenizer = T.build_tokenizer()

    def made(fn):
        with torch.device(device):  # initialise directly on the device (full-size UNets: seconds, not minutes)
            module = fn()
        if dtype != torch.float32:
            module = module.to(dtype=dtype)
        return module.eval().requires_grad_(False)

    def text():
        return {"tokenizer": tokenizer, "text_encoder": made(lambda: CLIPTextModel(CLIPTextConfig(**text_cfg)))}

    sd_text = text()  # SD 2.1 and 2.1-base share the text tower, MVDream's is the same one
    return {
        "3d": {"unet": made(lambda: UNet2DConditionModel.from_config(mv_unet)),
               "vae": made(lambda: AutoencoderKL.from_config(vae_cfg)),
               "scheduler_config": dict(A.SD21_BASE_SCHEDULER), **sd_text},
        "img": {"unet": made(lambda: UNet2DConditionModel.from_config(sd_unet)),
                "vae": made(lambda: AutoencoderKL.from_config(vae_cfg)),
                "scheduler_config": dict(A.SD21_BASE_SCHEDULER),
                # the prior casts it like its other frozen parts; its LoRA adapters stay float32, as in a run
                "unet_lora": made(lambda: UNet2DConditionModel.from_config(lora_unet)),
                "lora_scheduler_config": dict(A.SD21_SCHEDULER), **sd_text},
        "video": {"unet": made(lambda: UNet3DConditionModel.from_config(unet3d)),
                  "vae": made(lambda: AutoencoderKL.from_config(vae_cfg)),
                  "scheduler_config": dict(A.ZEROSCOPE_SCHEDULER), **text()},
    }


def train_config(profile: str, device: torch.device, args):
    """The profile's 4dfy TrainConfig on `device` with the benchmark's frozen-model options."""
    from baselines import resolve_config
    from method.training.profiles import low_vram

    # tiny-lowvram (the reduced size's second profile): tiny's sizes and step counts with the low-VRAM changes
    # (low_vram's 200k-step stage 3 is the release's length: at tiny's sizes it projected a meaningless total)
    if profile == "tiny-lowvram":
        tiny = resolve_config("tiny", "4dfy")
        cfg = low_vram(tiny, profile)
        s1, s2, s3 = cfg.stages
        cfg = dataclasses.replace(cfg, stages=(s1, s2, dataclasses.replace(s3, steps=tiny.stages[2].steps)))
    else:
        cfg = resolve_config(profile, "4dfy")
    guidance = {}
    for update, pc in cfg.guidance.items():
        half = pc.frozen.half_precision if args.precision == "profile" else args.precision != "fp32"
        # the product's own options (FrozenModelOptions), so what is measured is what a run can ask for
        frozen = dataclasses.replace(pc.frozen, half_precision=half, sdpa=not args.no_sdpa,
                                     vae_gradient_checkpointing=args.vae_checkpointing,
                                     half_dtype={"bf16": "bfloat16", "fp16": "float16"}.get(args.precision,
                                                                                            pc.frozen.half_dtype),
                                     channels_last=compiles(args, update, "channels_last"),
                                     compile=compiles(args, update),
                                     compile_vae_encoder=compiles(args, update, "compile_vae"),
                                     compile_regional=args.compile_regional,
                                     cuda_graph=compiles(args, update, "cuda_graph"))
        # Models are passed in memory: ids that are neither tiny ids nor folders are never loaded.
        ids = {f: f"random-weights/{f}" for f in ("model", "text_model", "lora_model") if hasattr(pc, f)}
        guidance[update] = dataclasses.replace(pc, frozen=frozen, **ids)
    renderer = dataclasses.replace(cfg.renderer, grad_max_samples=args.grad_max_samples,
                                   recompute_field=args.recompute_field,
                                   **({} if args.recompute_chunk is None
                                      else {"recompute_chunk": args.recompute_chunk}))
    # plain float32 matrix products unless --tf32 (the trainer's `tf32`, off by default)
    return dataclasses.replace(cfg, guidance=guidance, device=str(device), renderer=renderer,
                               tf32=args.tf32)


def compiles(args, update: str, flag: str = "compile") -> bool:
    """Whether `--compile` (or `--compile-vae` / `--channels-last` / `--cuda-graph`, flag "compile_vae" /
    "channels_last" / "cuda_graph") asks for `update`'s UNets (VAE encoder): the flag alone takes all updates,
    `--compile video` one."""
    chosen = getattr(args, flag)
    return chosen is not None and (chosen == [] or update in chosen)


def build_priors(cfg, models: dict[str, dict], device: torch.device) -> dict:
    """The guidance objects of the three update types from in-memory models; each applies its config's
    `frozen` options (precision, attention, layout, compilation, VAE checkpointing) as in a run."""
    from method.guidance.base import load_attr

    priors = {}
    for update, pc in cfg.guidance.items():
        cls = load_attr(type(pc).target)
        priors[update] = cls(pc, str(device), models=models[update])  # applies pc.frozen's options
    return priors


# --- a trained-like scene ---------------------------------------------------------------------------------
def ball_cells(aabbs: torch.Tensor, resolution: torch.Tensor, radius: float) -> torch.Tensor:
    """(levels, rx, ry, rz) bool: the cells of each level's box (nerfacc's layout: level l spans aabbs[l],
    cell i spans [i, i + 1] / resolution of it) that meet the ball |x| <= radius."""
    res = resolution.to(aabbs.dtype)
    idx = torch.stack(torch.meshgrid(*[torch.arange(int(n), device=aabbs.device) for n in resolution],
                                     indexing="ij"), -1).reshape(-1, 3).to(aabbs.dtype)
    lo_box, extent = aabbs[:, None, :3], (aabbs[:, 3:] - aabbs[:, :3])[:, None, :]
    lo, hi = lo_box + idx / res * extent, lo_box + (idx + 1) / res * extent
    closest = torch.maximum(lo, torch.minimum(torch.zeros_like(hi), hi))  # the cell's point nearest the origin
    return (closest.norm(dim=-1) <= radius).reshape(len(aabbs), *[int(n) for n in resolution])


def compact_scene(trainer, radius_fraction: float) -> dict:
    """Make the random field look like a trained scene to the renderer: density zero outside a ball of radius
    `radius_fraction` x the box radius, and on CUDA the occupancy grid's cells that miss the ball empty, as its
    own updates would leave them. A random field fills the whole box, so without this the grid skips nothing
    and the renderer's memory and time are an upper bound. Returns the ball radius and the occupied fraction
    of the grid's finest level (of the box's volume on the dense CPU path)."""
    import math

    field = trainer.field
    radius = radius_fraction * field.cfg.box_radius
    forward, density = field.forward, field.density

    def inside(x: torch.Tensor) -> torch.Tensor:
        return (x.norm(dim=-1) <= radius).to(x.dtype)

    def masked_forward(x, t, blob_sigma):
        d, rgb = forward(x, t, blob_sigma)
        return d * inside(x), rgb

    field.forward = masked_forward  # instance attributes: nn.Module.__call__ and the trainer find these
    field.density = lambda x, t, blob_sigma: density(x, t, blob_sigma) * inside(x)
    occupied = 4 / 3 * math.pi * radius ** 3 / (2 * field.cfg.box_radius) ** 3
    grid = trainer.renderer.grid
    if grid is not None:
        est = grid.estimator
        mask = ball_cells(est.aabbs, est.resolution, radius)
        est.binaries.copy_(mask)
        est.occs.copy_(mask.flatten().to(est.occs.dtype))
        occupied = float(mask[0].float().mean())
    return {"ball_radius": radius, "occupied_fraction": occupied}


# --- measuring -------------------------------------------------------------------------------------------
@contextmanager
def forced_update(update: str):
    """Make the trainer's draw return `update` (the step itself is the trainer's own)."""
    from method.training import trainer as trainer_module

    original = trainer_module.draw_update
    trainer_module.draw_update = lambda stage, generator: update
    try:
        yield
    finally:
        trainer_module.draw_update = original


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def snapshot(trainer):
    """A function that puts the field, the renderer's occupancy grid, the trainer's generator and torch's global
    generators (nerfacc jitters the grid's update points with them) back to their state now. Every measured update
    starts from it: an update's cost depends on how many samples the scene gives, and training steps (random
    priors' gradients are large) would change that from one repeat, update and option to the next. Restored,
    every option is measured on the same scene and the same cameras. The copies are kept on the CPU, so they
    add nothing to the GPU peaks. Not restored: the optimizer's moments and VSD's LoRA, which change values, not
    costs."""
    def copy(module):
        return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}

    from method.training import checkpoint as ckpt

    field, renderer = copy(trainer.field), copy(trainer.renderer)
    rng = ckpt.rng_state(trainer.generator)  # what a checkpoint keeps: the run's and torch's generators

    def restore():
        trainer.field.load_state_dict(field)
        trainer.renderer.load_state_dict(renderer)
        ckpt.restore_rng(trainer.generator, rng)
    return restore


def timed_step(trainer, stage_index: int, step: int, device: torch.device, restore) -> float:
    """Seconds of one `train_step` from the state `restore` puts back, the device synchronised on both sides."""
    restore()
    sync(device)
    t0 = time.perf_counter()
    trainer.train_step(stage_index, step)
    sync(device)
    return time.perf_counter() - t0


def measure(trainer, update: str, stage_index: int, step: int, device: torch.device, repeats: int,
            budget_s: float, restore=lambda: None) -> dict:
    """Warm-up + up to `repeats` timed updates, each from the state `restore` puts back: best seconds, peak MB and
    the seconds the timed repeats took. Repeats stop once the next would run past `budget_s` seconds counted from
    the end of the warm-up (at least one runs): the warm-up pays compilation and first use, and must not take
    the repeats' time."""
    times = []
    with forced_update(update):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        if repeats == 0:  # one call, timed with its warm-up costs (the CPU smoke test)
            times.append(timed_step(trainer, stage_index, step, device, restore))
        else:
            timed_step(trainer, stage_index, step, device, restore)
            deadline = time.perf_counter() + budget_s
            for _ in range(repeats):
                times.append(timed_step(trainer, stage_index, step, device, restore))
                if time.perf_counter() + times[-1] > deadline:
                    break
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None
    return {"s_per_update": min(times), "repeats": len(times), "peak_mb": peak, "warmup_included": repeats == 0,
            "timed_s": sum(times)}


PHASES = ("render", "VAE encode", "UNet forward", "backward", "optimizer step")
"""What `--phases` times inside one update (see `phase_timers`); the rest of the step is "other"."""


@contextmanager
def phase_timers(trainer, prior, device: torch.device):
    """Time the parts of one `train_step` and record the peak memory each reaches: the trainer's render, the
    prior's VAE encoder (gradient and no-gradient encodes), its UNets' forward passes (VSD's LoRA UNet too: its
    loss is part of the step's), the loss's backward and the optimizer step. Only the outermost part is timed
    (a call inside another part counts there), and the device is synchronised at each border, so the parts add
    up to the step. Yields a dict filled with {part: {"s", "peak_mb"}} (peak: CUDA only), and under
    {"render": {"samples"}} the number of field samples the render evaluated with gradient (not the occupancy
    grid's no-gradient pruning, nor backward's recomputation)."""
    found = {}
    active = []

    def timed(name, fn):
        def wrapper(*a, **k):
            if active:  # nested: counted in the outer part
                return fn(*a, **k)
            active.append(name)
            sync(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                sync(device)
                entry = found.setdefault(name, {"s": 0.0, "peak_mb": None})
                entry["s"] += time.perf_counter() - t0
                if device.type == "cuda":
                    peak = torch.cuda.max_memory_allocated(device) / 2 ** 20
                    entry["peak_mb"] = max(entry["peak_mb"] or 0.0, peak)
                active.pop()
        return wrapper

    def counted(fn):  # the samples the render's forward evaluates (not backward's recomputation)
        def wrapper(x, *a, **k):
            if active == ["render"] and torch.is_grad_enabled():
                found["render"]["samples"] = found["render"].get("samples", 0) + x.shape[0]
            return fn(x, *a, **k)
        return wrapper

    # instance attributes shadow the class's methods; removed afterwards
    patched = [(trainer, "render"), (prior.vae, "encode"), (trainer.optimizer, "step")]
    patched += [(m, "forward") for name in ("unet", "unet_lora") if (m := getattr(prior, name, None)) is not None]
    names = {"render": "render", "encode": "VAE encode", "step": "optimizer step", "forward": "UNet forward"}
    saved = [(obj, attr, obj.__dict__.get(attr)) for obj, attr in [*patched, (trainer.field, "forward")]]
    backward = torch.Tensor.backward
    try:
        for obj, attr in patched:
            setattr(obj, attr, timed(names[attr], getattr(obj, attr)))
        found["render"] = {"s": 0.0, "peak_mb": None}
        trainer.field.forward = counted(trainer.field.forward)
        torch.Tensor.backward = timed("backward", backward)
        yield found
    finally:
        torch.Tensor.backward = backward
        for obj, attr, old in saved:
            if old is None:
                vars(obj).pop(attr, None)  # also when patching stopped halfway
            else:
                setattr(obj, attr, old)


def measure_ops(trainer, update: str, stage_index: int, step: int, device: torch.device, top: int,
                restore=lambda: None) -> dict:
    """One more update of `update` under torch.profiler: its `top` operators by self time on the device (CUDA) or
    the CPU, and how busy the device was (the kernels' self time over the step's wall time; a step far from 1 is
    bound by the CPU's launching and Python, not by the GPU's arithmetic)."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    with forced_update(update), profile(activities=[ProfilerActivity.CPU]
                                        + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        wall = timed_step(trainer, stage_index, step, device, restore)
    return {"wall_s": wall, **ops_summary(prof.key_averages(), cuda, top)}


def ops_summary(events, cuda: bool, top: int) -> dict:
    """From a profile's `key_averages()`: the `top` operators by self time on the device (cuda) or the CPU, and
    the total time the device (or the CPU thread) spent in operators, "self_total_s"."""
    from torch.autograd import DeviceType

    def annotation(e):  # a record_function span (optimizer step, compiled region): it covers kernels counted already
        return getattr(e, "is_user_annotation", False)

    # the operators (CPU-side events); on CUDA each one's self time is that of the kernels it launched itself.
    # The kernels are events of their own as well, so the device's busy time sums those alone.
    # The record_function spans are left out on both sides: on the GPU they repeat kernels, on the CPU their own
    # time is Python around operators, not an operator's.
    ops = [e for e in events if e.device_type == DeviceType.CPU and not annotation(e)]
    self_time = (lambda e: e.self_device_time_total) if cuda else (lambda e: e.self_cpu_time_total)
    busy = sum(e.self_device_time_total for e in events if e.device_type != DeviceType.CPU and not annotation(e)) \
        if cuda else sum(e.self_cpu_time_total for e in ops)
    rows = [{"op": e.key, "calls": e.count, "self_ms": self_time(e) / 1e3, "cpu_ms": e.cpu_time_total / 1e3}
            for e in sorted(ops, key=self_time, reverse=True)[:top]]
    return {"time_on": "device" if cuda else "cpu", "self_total_s": busy / 1e6, "top": rows}  # microseconds -> s


def measure_phases(trainer, update: str, stage_index: int, step: int, device: torch.device,
                   restore=lambda: None) -> dict:
    """One more update of `update` with `phase_timers`: {part: {"s", "peak_mb"}}, with "other" the rest."""
    prior = trainer.prior(update)
    with forced_update(update), phase_timers(trainer, prior, device) as found:
        total = timed_step(trainer, stage_index, step, device, restore)
    out = {name: found[name] for name in PHASES if name in found}
    samples = out["render"].pop("samples", 0)
    out["other"] = {"s": max(total - sum(v["s"] for v in out.values()), 0.0), "peak_mb": None}
    return {"total_s": total, "parts": out, "samples_with_grad": samples}


def mv_phases(stage) -> list[tuple[int, int, int, int]]:
    """(from, to, size, groups) step ranges of a stage's MVDream batch schedule."""
    from method.training.config import RenderSchedule

    bounds = sorted({0, *[s for s, _ in stage.mv_resolution], *[s for s, _ in stage.mv_groups]})
    bounds = [b for b in bounds if b < stage.steps] + [stage.steps]
    out = []
    for a, b in zip(bounds, bounds[1:]):
        out.append((a, b, RenderSchedule.at(stage.mv_resolution, a), RenderSchedule.at(stage.mv_groups, a)))
    return out


def cost_key(cfg, stage, update: str, size: int | None = None, groups: int | None = None) -> tuple:
    """What one update's cost depends on, beyond the shared models, field and renderer: (update, render
    height, width, views, samples with gradient, groups it trains, video frames encoded with gradient).
    Updates with equal keys are measured once, across stages and profiles."""
    r = cfg.render
    h, w, views = {"3d": (size, size, 4 * (groups or 0)), "img": (r.img_resolution, r.img_resolution, r.img_batch),
                   "video": (*r.video_size, r.video_frames)}[update]
    cap = stage.grad_cap(update, views, cfg.renderer.grad_max_samples)
    trainable = cfg.trainable_groups(stage, update)
    grad_frames = cfg.guidance["video"].grad_frames if update == "video" else None
    return (update, h, w, views, cap, tuple(sorted(trainable)), grad_frames)


def plan(cfg) -> list[tuple[tuple, str, int, int]]:
    """(cost key, update, stage index, step) of every distinct update a profile draws: one per MVDream batch
    phase, IMG and VID per stage, measured at the phase's first step (IMG / VID: the stage's last)."""
    out, seen = [], set()
    for i, stage in enumerate(cfg.stages):
        if stage.steps <= 0:
            continue
        probs = stage.update_probabilities()
        items = [(cost_key(cfg, stage, "3d", size, groups), "3d", a) for a, _, size, groups in mv_phases(stage)
                 ] if probs["3d"] > 0 else []
        items += [(cost_key(cfg, stage, u), u, stage.steps - 1) for u in ("img", "video") if probs[u] > 0]
        for key, update, step in items:
            if key not in seen:
                seen.add(key)
                out.append((key, update, i, step))
    return out


def project(cfg, cost: dict) -> dict:
    """GPU-hours of the profile's stages from per-update costs: sum over stages and MVDream phases of
    steps * sum_u P(u) * seconds(u), each update's seconds looked up by its `cost_key`."""
    stages, total = {}, 0.0
    for stage in cfg.stages:
        probs = stage.update_probabilities()
        seconds = 0.0
        for a, b, size, groups in mv_phases(stage):
            per_step = sum(probs[u] * cost[cost_key(cfg, stage, u, size, groups)]
                           for u in ("3d", "img", "video") if probs[u] > 0)
            seconds += (b - a) * per_step
        stages[stage.name] = {"steps": stage.steps, "s_per_it": seconds / max(stage.steps, 1),
                              "hours": seconds / 3600, "probabilities": probs}
        total += seconds
    return {"stages": stages, "gpu_hours": total / 3600}


def project_profiles(cfgs: dict, results: dict) -> dict:
    """`project` of each profile whose own updates all completed (an out-of-memory update drops only the
    profiles that draw it), with the largest peak among its updates."""
    costs = {k: v["s_per_update"] for k, v in results.items()}
    out = {}
    for p, c in cfgs.items():
        keys = [k for k, *_ in plan(c)]
        if all(costs.get(k) is not None for k in keys):
            peaks = [results[k]["peak_mb"] for k in keys if results[k]["peak_mb"] is not None]
            out[p] = {**project(c, costs), "peak_mb": max(peaks, default=None)}
    return out


# what the priors are built from: equal across measured profiles, since one set of priors serves them all
_MODEL_FIELDS = ("frozen", "model", "text_model", "lora_model", "lora_rank", "lora_alpha", "seed")


@contextmanager
def as_profile(trainer, cfg):
    """Run the trainer (and its priors) under `cfg`: the models are shared, and what differs between profiles
    (stages, budgets, groups, call-time guidance options such as the video's grad_frames) is read per call."""
    saved = trainer.cfg, {u: p.cfg for u, p in trainer._priors.items()}
    for u, prior in trainer._priors.items():  # checked before anything is swapped
        built, wanted = prior.cfg, cfg.guidance[u]
        if any(getattr(built, f, None) != getattr(wanted, f, None) for f in _MODEL_FIELDS):
            raise ValueError(f"profile {cfg.profile!r} builds its {u} prior differently; measure it on its own")
    try:
        for u, prior in trainer._priors.items():
            prior.cfg = cfg.guidance[u]
        trainer.cfg = cfg
        yield trainer
    finally:
        trainer.cfg = saved[0]
        for u, prior in trainer._priors.items():
            prior.cfg = saved[1][u]


def run(args, on_update=lambda res: None) -> dict:
    """Measure every update the asked profiles draw; `on_update` gets the results so far after each update (so
    a run cut short by a time limit still leaves what it measured)."""
    from method.training.trainer import Trainer

    device = torch.device(args.device)
    # Models are built in float32; each guidance class casts its frozen parts to its own precision.
    dtype = torch.float32
    started = time.perf_counter()
    torch.manual_seed(0)
    # Reduced size runs the tiny profile (its steps and sizes), as is and with the low-VRAM changes;
    # paper size projects each asked profile.
    profiles = args.profiles if args.size == "paper" else ["tiny", "tiny-lowvram"]
    cfgs = {p: train_config(p, device, args) for p in profiles}
    cfg = cfgs[profiles[0]]
    models = build_prior_models(args.size, device, dtype)
    priors = build_priors(cfg, models, device)
    del models
    build_s = time.perf_counter() - started
    out_dir = tempfile.TemporaryDirectory(prefix="paper-scale-")  # the trainer's run folder (unused)
    trainer = Trainer(cfg, "a panda dancing", out_dir.name, priors=priors, progress=False, quiet=True)
    scene = {"scene": "dense"} if args.scene == "dense" else {"scene": "ball", **compact_scene(trainer,
                                                                                              args.ball_radius)}
    if args.compile_field:
        # dynamic shapes: the number of samples changes every render. No CUDA graphs (mode reduce-overhead):
        # they would record a new graph for every sample count.
        trainer.field.forward = torch.compile(trainer.field.forward, dynamic=True)
    restore = snapshot(trainer)
    # every distinct update of every asked profile, measured once (under the first profile that draws it)
    todo, seen = [], set()
    for p, c in cfgs.items():
        for key, update, stage_index, step in plan(c):
            if key not in seen:
                seen.add(key)
                todo.append((p, key, update, stage_index, step))
    results, built_for, timed_s = {}, None, 0.0
    for i, (p, key, update, stage_index, step) in enumerate(todo):
        # the budget bounds the timed repeats only: an update whose warm-up compiled for minutes still gets its
        # share of repeats
        share = max(0.0, args.budget_s - timed_s) / (len(todo) - i)
        with as_profile(trainer, cfgs[p]):
            if built_for != (p, stage_index):  # the stage's own optimizer: its LRs and trained priors
                trainer._build_optimizer(stage_index)
                built_for = (p, stage_index)
            r = out_of_memory_as_error(
                trainer, device, lambda: measure(trainer, update, stage_index, step, device, args.repeats, share,
                                                 restore))
            timed_s += r.get("timed_s", 0.0)
            if "error" in r:  # record it and measure the other updates
                r.update({"s_per_update": None, "repeats": 0,
                          "peak_mb": torch.cuda.max_memory_allocated(device) / 2 ** 20})
            else:  # a failure in these keeps the measurement above
                if args.phases:
                    r["phases"] = out_of_memory_as_error(
                        trainer, device, lambda: measure_phases(trainer, update, stage_index, step, device, restore))
                if args.ops:
                    r["ops"] = out_of_memory_as_error(
                        trainer, device, lambda: measure_ops(trainer, update, stage_index, step, device, args.ops,
                                                             restore))
        r.update({"update": update, "profile": p, "stage": cfgs[p].stages[stage_index].name,
                  "render": f"{key[1]}x{key[2]}", "views": key[3]})
        results[key] = r
        if i + 1 < len(todo):
            on_update(summary(args, device, trainer, cfg, cfgs, scene, build_s, started, results, len(todo)))
    out_dir.cleanup()
    return summary(args, device, trainer, cfg, cfgs, scene, build_s, started, results, len(todo))


def out_of_memory_as_error(trainer, device: torch.device, fn) -> dict:
    """`fn()`, or {"error"} when the GPU ran out of memory, with the step's gradients and cached blocks freed so
    the next measurement starts clean."""
    try:
        return fn()
    except torch.cuda.OutOfMemoryError as err:
        trainer.optimizer.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        return {"error": f"out of memory: {str(err)[:200]}"}


def graph_counts(prior) -> str:
    """How many input shapes the prior's frozen UNets replay as CUDA graphs, and how many failed to capture (those
    ran eagerly: the figures are then not the graphs'), e.g. "2 graphed, 0 failed"; "not graphed" off CUDA."""
    from method.guidance.cuda_graphs import is_graphed

    wrappers = [vars(m)["forward"] for name in ("unet", "unet_lora")
                if (m := getattr(prior, name, None)) is not None and is_graphed(m)]
    if not wrappers:
        return "not graphed"
    return (f"{sum(len(w.graphs) for w in wrappers)} graphed, "
            f"{sum(len(w.failed) for w in wrappers)} failed")


def summary(args, device, trainer, cfg, cfgs, scene, build_s, started, results, planned) -> dict:
    """The results of `run` so far: options (what the trained config `cfg` and the trainer's priors hold), the
    measured updates and the projections they allow."""
    priors = trainer._priors
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "device": gpu or f"cpu ({torch.get_num_threads()} threads, {platform.machine()})",
        "size": args.size, "torch": torch.__version__, "profiles": list(cfgs),
        "options": {"precision": {u: str(p.dtype).replace("torch.", "") for u, p in priors.items()},
                    "sdpa": not args.no_sdpa,
                    "channels_last": [u for u, p in priors.items() if p.cfg.frozen.channels_last] or False,
                    "compile": [u for u, p in priors.items() if p.cfg.frozen.compile] or False,
                    "compile_vae": [u for u, p in priors.items() if p.cfg.frozen.compile_vae_encoder] or False,
                    "compile_regional": any(p.cfg.frozen.compile_regional for p in priors.values()),
                    "cuda_graph": {u: graph_counts(p) for u, p in priors.items() if p.cfg.frozen.cuda_graph} or False,
                    "compile_field": args.compile_field,
                    # what the trained config holds, not the flags that asked for it
                    "grad_max_samples": args.grad_max_samples, "recompute_field": cfg.renderer.recompute_field,
                    "recompute_chunk": cfg.renderer.recompute_chunk if cfg.renderer.recompute_field else None,
                    "vae_checkpointing": all(p.cfg.frozen.vae_gradient_checkpointing for p in priors.values()),
                    "tf32": cfg.tf32, **scene},
        "hash_grid_backend": trainer.field.encoder.static.resolve_backend(device)
        if hasattr(trainer.field.encoder, "static") else "n/a",
        "build_s": build_s, "wall_s": time.perf_counter() - started,
        "updates": [{"key": list(k), **v} for k, v in results.items()],
        "planned_updates": planned,
        "projection": project_profiles(cfgs, results),
    }


def _describe(key: list) -> tuple[str, str, str]:
    """(update name, samples with gradient, trained groups) of a cost key for the table."""
    update, _, _, views, cap, groups, grad_frames = key
    name = {"3d": "3D (MVDream)", "img": "IMG (VSD + LoRA)", "video": "VID (Zeroscope)"}[update]
    if update == "3d":
        name += f", {views // 4} group(s)"
    if grad_frames is not None:
        name += f", {grad_frames} frames encoded with gradient"
    return name, "all" if cap is None else f"{cap:,}", ", ".join(groups)


def markdown(res: dict, command: str) -> str:
    lines = [f"Device: **{res['device']}**, torch {res['torch']}, size `{res['size']}`, options "
             f"{res['options']}, hash grid backend `{res['hash_grid_backend']}`; models built in "
             f"{res['build_s']:.0f} s, whole run {res['wall_s']:.0f} s.", "", f"    {command}", "",
             "| update | first drawn in | render | views | gradient budget per render call | trains | s / update | "
             "peak memory (GiB) | timed repeats |",
             "|---|---|---|---|---|---|---|---|---|"]
    for u in res["updates"]:
        name, cap, groups = _describe(u["key"])
        peak = "n/a (CPU)" if u["peak_mb"] is None else f"{u['peak_mb'] / 1024:.1f}"
        secs = u.get("error", "?") if u["s_per_update"] is None else f"{u['s_per_update']:.3f}"
        repeats = f"{u['repeats']}" if not u.get("warmup_included") else f"{u['repeats']} (warm-up included)"
        lines.append(f"| {name} | {u['profile']} {u['stage']} | {u['render']} | {u['views']} | {cap} | {groups} | "
                     f"{secs} | {peak} | {repeats} |")
    lines += ["", "Each distinct update is measured once, in the profile and stage named under \"first drawn in\"; "
              "the other stages and profiles that draw the same update reuse that cost. The gradient budget is "
              "what the stage allows (samples keeping gradients per render call), not a count: a render with "
              "fewer samples keeps all of them."]
    phased = [u for u in res["updates"] if u.get("phases") and "error" not in u["phases"]]
    if phased:
        lines += ["", "Where one more update of each type spends its time (`--phases`: the device synchronised at "
                  "each border, so the parts add up to a step a little slower than the one above), and the peak "
                  "memory each part reaches:", "",
                  "| update | first drawn in | samples with gradient | " + " | ".join(PHASES) + " | other | total |",
                  "|---|---|---|" + "---|" * (len(PHASES) + 2)]
        for u in phased:
            parts = u["phases"]["parts"]

            def cell(name):
                if name not in parts:
                    return "-"
                part = parts[name]
                peak = "" if part["peak_mb"] is None else f" ({part['peak_mb'] / 1024:.1f} GiB)"
                return f"{part['s']:.3f}{peak}"
            lines.append(f"| {_describe(u['key'])[0]} | {u['profile']} {u['stage']} | "
                         f"{u['phases']['samples_with_grad']:,} | "
                         + " | ".join(cell(n) for n in (*PHASES, "other")) + f" | {u['phases']['total_s']:.3f} |")
    for u in res["updates"]:
        ops = u.get("ops")
        if not ops or "error" in ops:
            continue
        on = "GPU" if ops["time_on"] == "device" else "CPU"
        # the profiler slows the step it records, so its share of the unprofiled update is given too
        lines += ["", f"**{_describe(u['key'])[0]}** ({u['profile']} {u['stage']}) under torch.profiler (`--ops`): "
                  f"one step of {ops['wall_s']:.3f} s, {ops['self_total_s']:.3f} s of it in operators on the {on} "
                  f"({ops['self_total_s'] / max(ops['wall_s'], 1e-12):.0%} of the profiled step, "
                  f"{ops['self_total_s'] / max(u['s_per_update'], 1e-12):.0%} of the unprofiled update's "
                  f"{u['s_per_update']:.3f} s); the top {len(ops['top'])} by self time on the {on}:", "",
                  f"| operator | calls | self ms ({on}) | CPU ms (with children) |", "|---|--:|--:|--:|"]
        lines += [f"| `{r['op'][:80]}` | {r['calls']} | {r['self_ms']:.1f} | {r['cpu_ms']:.1f} |" for r in ops["top"]]
    if len(res["updates"]) < res.get("planned_updates", 0):
        lines += ["", f"**Partial**: {len(res['updates'])} of {res['planned_updates']} updates measured when this "
                  "was written; the run did not finish (a time limit?)."]
    if res["device"].startswith("cpu"):
        lines += ["", "**CPU smoke run**: these figures show that the script works; they are not costs, and the "
                  "A100 comparison and GPU-hours below mean nothing for them."]
    if res["projection"]:
        lines += ["", "| profile | stage | steps | projected s/it | paper A100 s/it | ratio | hours |",
                  "|---|---|---|---|---|---|---|"]
    unprojected = [p for p in res["profiles"] if p not in res["projection"]]
    if unprojected:
        why = "an update it draws is not measured yet" if len(res["updates"]) < res.get("planned_updates", 0) \
            else "an update it draws did not complete (see above)"
        lines += ["", f"No projection for {', '.join(unprojected)}: {why}."]
    for prof, p in res["projection"].items():
        for name, s in p["stages"].items():
            ref = PAPER_S_PER_IT["stage 3" if name == "stage3" else "stages 1-2"]  # A100, paper S1
            lines.append(f"| {prof} | {name} | {s['steps']:,} | {s['s_per_it']:.3f} | {ref} | "
                         f"{s['s_per_it'] / ref:.2f}x | {s['hours']:.2f} |")
        lines.append(f"| {prof} | **total** | | | | | **{p['gpu_hours']:.2f} GPU-h** "
                     f"(paper: ~{PAPER_GPU_HOURS:.0f} on an A100) |")
    for prof, p in res["projection"].items():
        if p.get("peak_mb") is None:
            continue
        peak_gb = p["peak_mb"] * 2 ** 20 / 1e9  # the goal is in GB
        met = p["gpu_hours"] <= GOAL_GPU_HOURS and peak_gb <= GOAL_PEAK_GB
        lines.append(f"\nGoal (issue 13, one H100): <= {GOAL_GPU_HOURS:.0f} GPU-h and <= {GOAL_PEAK_GB:.0f} GB per "
                     f"prompt; `{prof}`: {p['gpu_hours']:.2f} GPU-h, {peak_gb:.1f} GB peak (its own updates) -> "
                     f"{'met' if met else 'not met'} on this device.")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's options, every one with its default (what `train_config` and `run` read)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", choices=("paper", "reduced"), default="paper",
                    help="paper: full-size priors and the paper's renders; reduced: the tiny profile's sizes")
    ap.add_argument("--profiles", nargs="+", default=None, choices=("paper", "release", "release-lowvram"),
                    help="profiles to project (their step counts, draw probabilities, gradient budgets and "
                         "trained groups); an update they share is measured once")
    ap.add_argument("--precision", choices=("profile", "fp32", "fp16", "bf16"), default="profile",
                    help="frozen weights on CUDA: each prior's configured precision (profile: fp32 MVDream, "
                         "fp16 VSD and Zeroscope, as the release), or one for all; CPU is always fp32")
    ap.add_argument("--no-sdpa", action="store_true", help="diffusers' plain attention instead of SDPA")
    ap.add_argument("--channels-last", nargs="*", choices=("3d", "img", "video"), default=None, metavar="UPDATE",
                    help="the 2D UNets in channels_last memory format: all, or those of the updates named (e.g. "
                         "--channels-last img: VSD's only; Zeroscope's UNet3D keeps its layout either way)")
    ap.add_argument("--no-channels-last", dest="channels_last", action="store_const", const=None,
                    help="undo an earlier --channels-last (as in gpu_phases_check.sh's configurations)")
    ap.add_argument("--compile", nargs="*", choices=("3d", "img", "video"), default=None, metavar="UPDATE",
                    help="torch.compile the UNets (adds compile time): all, or those of the updates named "
                         "(e.g. --compile video: Zeroscope's UNet3D only)")
    ap.add_argument("--compile-vae", nargs="*", choices=("3d", "img", "video"), default=None, metavar="UPDATE",
                    help="torch.compile the VAE encoders, forward and backward (adds compile time): all, or those "
                         "of the updates named")
    ap.add_argument("--compile-regional", action="store_true",
                    help="with --compile / --compile-vae: compile block by block (blocks of one shape share a "
                         "graph), a fraction of the cold compile time")
    ap.add_argument("--cuda-graph", nargs="*", choices=("3d", "img", "video"), default=None, metavar="UPDATE",
                    help="replay the frozen UNets' no-gradient forwards as CUDA graphs (one capture per shape; CUDA "
                         "only, VSD's LoRA UNet stays eager): all, or those of the updates named")
    ap.add_argument("--compile-field", action="store_true",
                    help="torch.compile the field (hash grids, MLPs) with dynamic shapes (adds compile time)")
    ap.add_argument("--scene", choices=("dense", "ball"), default="dense",
                    help="dense: the random field as built (the renderer's upper bound); ball: density and "
                         "occupancy kept to a ball, like a trained object")
    ap.add_argument("--ball-radius", type=float, default=0.5, help="--scene ball: radius / box radius")
    ap.add_argument("--grad-max-samples", type=int, default=None,
                    help="renderer.grad_max_samples for every profile: at most N samples per render carry "
                         "gradients where a stage sets no budget of its own (release-lowvram's stages do)")
    ap.add_argument("--recompute-field", action="store_true",
                    help="renderer.recompute_field: recompute the field in backward, in regions (less memory)")
    ap.add_argument("--recompute-chunk", type=int, default=None,
                    help="renderer.recompute_chunk: samples per recomputed region (default: the renderer's)")
    ap.add_argument("--vae-checkpointing", action="store_true",
                    help="frozen.vae_gradient_checkpointing for every prior: the VAE encoder's blocks recomputed in "
                         "backward, one image at a time (less memory)")
    ap.add_argument("--phases", action="store_true",
                    help="one more update of each type, timed by part (render, VAE, UNets, backward, ...) with each "
                         "part's peak memory")
    ap.add_argument("--ops", type=int, default=0, metavar="N",
                    help="one more update of each type under torch.profiler: its N most expensive operators (self "
                         "time on the GPU, or the CPU) and how busy the device was")
    ap.add_argument("--tf32", action="store_true",
                    help="TensorFloat-32 for float32 matrix products on CUDA (the field's MLPs, VSD's LoRA), as the "
                         "trainer's `--set tf32=true`; without it, plain float32 (convolutions use TF32 either way, "
                         "PyTorch's default)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed updates per type after one warm-up (0: a single call, warm-up included)")
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="seconds for the timed repeats of all updates (warm-ups not counted); repeats stop early "
                         "to fit it")
    ap.add_argument("--out", type=Path, default=None,
                    help="write <out>.json and <out>.md, rewritten after every update (marked partial until the end)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.size == "reduced" and args.profiles is not None:
        print("warning: --size reduced always measures tiny and tiny with the low-VRAM changes; --profiles is "
              "for --size paper", file=sys.stderr)
    args.profiles = args.profiles or ["paper", "release", "release-lowvram"]
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is visible; use --device cpu --size reduced", file=sys.stderr)
        return 2
    if args.size == "paper" and not args.device.startswith("cuda"):
        print("warning: paper size on CPU needs ~25 GB of memory and hours; --size reduced is the CPU check",
              file=sys.stderr)
    if args.precision in ("fp16", "bf16") and not args.device.startswith("cuda"):
        print(f"warning: --precision {args.precision} applies on CUDA only, as in a run; the CPU computes in fp32",
              file=sys.stderr)
    if args.ops < 0:
        print("error: --ops takes a number of operators to list (0: none)", file=sys.stderr)
        return 2
    if args.repeats < 0:
        print("error: --repeats takes a number of timed updates (0: one call, its warm-up included)", file=sys.stderr)
        return 2
    if args.recompute_chunk is not None and (args.recompute_chunk < 1 or not args.recompute_field):
        print("error: --recompute-chunk takes a positive number of samples, with --recompute-field", file=sys.stderr)
        return 2
    if args.compile_field and args.recompute_field and args.device.startswith("cuda"):
        # measured on an H100 (torch 2.11, Triton grid): backward then finds no graph ("element 0 of tensors
        # does not require grad"); --compile-field alone was slower than eager there anyway
        print("error: --compile-field with --recompute-field loses the field's gradient on CUDA; use one of them",
              file=sys.stderr)
        return 2
    command = "python benchmarks/paper_scale.py " + " ".join(argv if argv is not None else sys.argv[1:])

    def write(res: dict) -> None:
        if args.out is not None:
            write_text_atomic(args.out.with_suffix(".json"), json.dumps(res, indent=1, default=str))
            write_text_atomic(args.out.with_suffix(".md"), markdown(res, command))

    res = run(args, on_update=write)
    write(res)
    print(markdown(res, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The hybrid-SDS trainer: runs the stages of a `TrainConfig`, one update type per step.

Everything random comes from one `torch.Generator` whose state is checkpointed, so `resume=True`
after a kill ends with the same parameters as an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from method import backends
from method.background import draw_random_backgrounds
from method.cameras import (Cameras, cameras_from_spherical, sample_frame_times, sample_multiview_groups,
                            sample_single_views, sample_video)
from method.fields import SceneField

from . import checkpoint as ckpt
from .config import TrainConfig
from .draw import draw_update
from .priors import build_prior

MANIFEST_PACKAGES = ("fourdfy-bench", "torch", "diffusers", "transformers", "peft", "nerfacc", "tinycudann")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class RunState:
    """Where the run is: index into cfg.stages, step within that stage, update counts per stage."""

    stage_index: int = 0
    step: int = 0
    counts: dict | None = None

    def as_dict(self) -> dict:
        return {"stage_index": self.stage_index, "step": self.step, "counts": self.counts}


class Trainer:
    """Algorithm 1 over a `SceneField`, driven entirely by the config."""

    def __init__(self, cfg: TrainConfig, prompt: str, out_dir: Path | str, priors: dict | None = None,
                 progress: bool = True, run_orbit: bool = True):
        if not prompt.strip():
            raise ValueError("the prompt is empty")
        self.cfg = cfg
        self.prompt = prompt
        self.out = Path(out_dir)
        self.device = resolve_device(cfg.device)
        self.progress = progress
        self.run_orbit = run_orbit
        torch.manual_seed(cfg.seed)  # network initialisation
        self.field = SceneField(cfg.field, cfg.background).to(self.device)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self._priors = dict(priors or {})
        self.state = RunState(counts={s.name: {"3d": 0, "img": 0, "video": 0} for s in cfg.stages})
        self.optimizer: torch.optim.Optimizer | None = None
        self.estimator = None
        self.timings: dict[str, float] = {}

    # --- pieces -------------------------------------------------------------------------------------
    def prior(self, update: str):
        if update not in self._priors:
            spec = self.cfg.guidance.get(update)
            if spec is None:
                raise ValueError(f"method {self.cfg.method!r} draws {update!r} updates but no prior is configured")
            self._priors[update] = build_prior(update, spec, self.cfg, str(self.device))
        return self._priors[update]

    def _build_optimizer(self, stage_index: int) -> None:
        stage = self.cfg.stages[stage_index]
        for update, p in stage.update_probabilities().items():
            if p > 0:
                self.prior(update)  # built now so that its trainable parameters join the optimizer
        lrs = self.cfg.lrs
        groups = self.field.param_groups()
        specs = [("static", groups["static"], lrs.static * stage.static_lr_scale),
                 ("dynamic", groups["dynamic"], lrs.dynamic), ("mlp", groups["mlp"], lrs.mlp),
                 ("background", groups["background"], lrs.background)]
        guidance_params = [p for u in sorted(self._priors) for p in self._priors[u].trainable_parameters()]
        if guidance_params:
            specs.append(("guidance", guidance_params, lrs.guidance))
        param_groups = [{"params": ps, "lr": lr, "name": n} for n, ps, lr in specs if ps]
        self.optimizer = torch.optim.AdamW(param_groups, betas=self.cfg.betas, eps=self.cfg.eps,
                                           weight_decay=self.cfg.weight_decay)

    def learning_rates(self) -> dict[str, float]:
        return {g["name"]: g["lr"] for g in self.optimizer.param_groups} if self.optimizer else {}

    def _render(self, cams: Cameras, times: Tensor, height: int, width: int, sigma: float,
                bg_colors: Tensor | None, training: bool, bg_mask: Tensor | None = None) -> dict:
        from method.render import RenderConfig, render_images

        rcfg = RenderConfig(num_samples=self.cfg.render.num_samples, randomized=training)
        field_fn = lambda x, t: self.field(x, t, sigma)  # noqa: E731
        return render_images(field_fn, self.field.background, cams.to(self.device), times.to(self.device),
                             height, width, rcfg, generator=self.generator if training else None,
                             estimator=self.estimator, bg_colors=bg_colors, bg_mask=bg_mask)

    def _static_times(self, stage, n: int) -> Tensor:
        if stage.dynamic_time == "zero":
            return torch.zeros(n)
        frames = sample_frame_times(self.cfg.render.video_frames, self.generator)
        k = torch.randint(len(frames), (1,), generator=self.generator)
        return frames[k].expand(n).clone()

    def _batch(self, update: str, stage, step: int) -> tuple[Cameras, Tensor, int, int]:
        r, ranges = self.cfg.render, self.cfg.cameras
        if update == "3d":
            groups = r.at(r.mv_groups, step)
            size = r.at(r.mv_resolution, step)
            cams = sample_multiview_groups(groups, 4, ranges, self.generator)
            return cams, self._static_times(stage, len(cams)), size, size
        if update == "img":
            cams = sample_single_views(r.img_batch, ranges, self.generator)
            return cams, self._static_times(stage, len(cams)), r.img_resolution, r.img_resolution
        cams, times = sample_video(r.video_frames, ranges, self.generator)
        return cams, times, r.video_size[0], r.video_size[1]

    def _regularisers(self, opacity: Tensor, step: int) -> dict[str, Tensor]:
        w = self.cfg.weights
        out = {"loss_sparsity": torch.sqrt(opacity ** 2 + 0.01).mean()}
        if w.opacity_entropy > 0 and step >= w.opacity_entropy_from:
            o = opacity.clamp(1e-5, 1 - 1e-5)
            out["loss_opacity_entropy"] = -(o * torch.log(o) + (1 - o) * torch.log(1 - o)).mean()
        return out

    def train_step(self, stage_index: int, step: int) -> dict:
        """One update of Algorithm 1 (the step index is the step within the stage)."""
        cfg, stage = self.cfg, self.cfg.stages[stage_index]
        update = draw_update(stage, self.generator)
        self.field.set_trainable(cfg.video_groups if update == "video" else cfg.static_groups)
        sigma = cfg.sigma(stage.name, step)
        self._update_occupancy(stage, step, sigma)
        cams, times, h, w = self._batch(update, stage, step)
        # one random-colour decision per image, per 4-view group, or per clip (not per frame)
        group = {"3d": 4, "img": 1, "video": len(cams)}[update]
        use, colors = draw_random_backgrounds(len(cams), group, cfg.background.random_color_prob, self.generator)
        out = self._render(cams, times, h, w, sigma, colors, training=True, bg_mask=use)
        prior = self.prior(update)
        kwargs = {"times": times} if getattr(prior, "uses_times", False) else {}
        losses = dict(prior(out["rgb"], cams.to(self.device), self.prompt, step, generator=self.generator,
                            stage=stage.name, **kwargs))
        losses.update(self._regularisers(out["opacity"], step))
        total = sum(getattr(cfg.weights, k[len("loss_"):]) * v for k, v in losses.items())
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if hasattr(prior, "update"):
            prior.update(step)
        self.state.counts[stage.name][update] += 1
        return {"update": update, "sigma": sigma, **{k: float(v.detach()) for k, v in losses.items()}}

    def _update_occupancy(self, stage, step: int, sigma: float) -> None:
        if self.estimator is None:
            return
        self.estimator.update(step, lambda x, t: self.field.density(x, t, sigma),
                              dynamic=stage.dynamic_time == "frame", generator=self.generator)

    def _maybe_build_estimator(self) -> None:
        if not (self.cfg.occupancy_grid and self.device.type == "cuda" and backends.nerfacc_cuda_active()):
            return
        from method.render import OccupancyConfig, OccupancyGrid

        self.estimator = OccupancyGrid(OccupancyConfig(), self.cfg.field.box_radius, self.cfg.render.num_samples,
                                       device=self.device)

    # --- checkpoints --------------------------------------------------------------------------------
    def _checkpoint(self) -> dict:
        return {"config_hash": self.cfg.config_hash(), "method": self.cfg.method, "prompt": self.prompt,
                "state": self.state.as_dict(), "field": self.field.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer else None,
                "priors": {u: p.state_dict() for u, p in self._priors.items() if p.trainable_parameters()},
                "rng": ckpt.rng_state(self.generator), "timings": dict(self.timings),
                "occupancy": self.estimator.state_dict() if self.estimator is not None else None}

    def _save(self, name: str) -> None:
        ckpt.save_atomic(self._checkpoint(), self.out / "ckpt" / f"{name}.pt")

    def _resume_from(self, path: Path) -> None:
        data = ckpt.load(path)
        if data["config_hash"] != self.cfg.config_hash() or data["prompt"] != self.prompt:
            raise ckpt.CheckpointError(
                f"{path} was written by a different run (method {data['method']!r}, prompt {data['prompt']!r}, "
                f"config {data['config_hash']}); use another --out or drop --resume")
        self.field.load_state_dict(data["field"])
        for u, sd in data["priors"].items():
            self.prior(u).load_state_dict(sd)
        s = data["state"]
        self.state = RunState(s["stage_index"], s["step"], s["counts"])
        self.timings = data["timings"]
        if self.state.stage_index < len(self.cfg.stages):
            self._build_optimizer(self.state.stage_index)
            if data["optimizer"] is not None and self.state.step > 0:
                self.optimizer.load_state_dict(data["optimizer"])
        ckpt.restore_rng(self.generator, data["rng"])
        self._maybe_build_estimator()
        if self.estimator is not None and data.get("occupancy") is not None:
            self.estimator.load_state_dict(data["occupancy"])

    def init_from(self, path: Path | str) -> None:
        """Start from another run's stage checkpoint: weights only, continuing with the next stage."""
        data = ckpt.load(Path(path))
        try:
            self.field.load_state_dict(data["field"])
        except RuntimeError as err:
            raise ckpt.CheckpointError(f"{path} does not fit this method's scene representation: {err}") from None
        for u, sd in data.get("priors", {}).items():
            if u in self.cfg.update_types_used():
                self.prior(u).load_state_dict(sd)
        s = data["state"]
        finished = s["stage_index"] + (1 if s["step"] >= self._stage_steps(s["stage_index"]) else 0)
        self.state = RunState(finished, 0, {**self.state.counts, **{k: v for k, v in s["counts"].items()
                                                                      if k in self.state.counts}})

    def _stage_steps(self, index: int) -> int:
        return self.cfg.stages[index].steps if index < len(self.cfg.stages) else 0

    # --- the run ------------------------------------------------------------------------------------
    def run(self, resume: bool = False, init_from: Path | str | None = None, stop_after: int | None = None) -> dict:
        """Train all stages. `stop_after` ends the process-equivalent early after that many steps
        (used to simulate a kill in tests); checkpoints are written as configured."""
        from tqdm.auto import tqdm

        self.out.mkdir(parents=True, exist_ok=True)
        last = self.out / "ckpt" / "last.pt"
        if resume and last.exists():
            self._resume_from(last)
        elif init_from is not None:
            self.init_from(init_from)
        elif last.exists():
            raise ckpt.CheckpointError(f"{self.out} already holds a run; pass --resume to continue it "
                                       "or choose another --out")
        if self.estimator is None:
            self._maybe_build_estimator()
        total = sum(s.steps for s in self.cfg.stages)
        done = sum(s.steps for s in self.cfg.stages[:self.state.stage_index]) + self.state.step
        log = (self.out / "log.jsonl").open("a")
        bar = tqdm(total=total, initial=done, disable=not self.progress, dynamic_ncols=True, unit="step")
        executed = 0
        try:
            while self.state.stage_index < len(self.cfg.stages):
                i = self.state.stage_index
                stage = self.cfg.stages[i]
                if self.state.step == 0 or self.optimizer is None:
                    self._build_optimizer(i)
                t0 = time.perf_counter()
                while self.state.step < stage.steps:
                    if stop_after is not None and executed >= stop_after:
                        return {"stopped": True}
                    rec = self.train_step(i, self.state.step)
                    self.state.step += 1
                    executed += 1
                    bar.update(1)
                    c = self.state.counts[stage.name]
                    bar.set_description(f"{stage.name} {self.state.step}/{stage.steps}")
                    bar.set_postfix_str(f"3d={c['3d']} img={c['img']} vid={c['video']} " + " ".join(
                        f"{k[5:]}={v:.3g}" for k, v in rec.items() if k.startswith("loss_")))
                    if self.state.step % self.cfg.log_every == 0 or self.state.step == stage.steps:
                        log.write(json.dumps({"stage": stage.name, "step": self.state.step, **rec,
                                              "lr": self.learning_rates()}) + "\n")
                        log.flush()
                    if self.cfg.preview_every and self.state.step % self.cfg.preview_every == 0:
                        self.preview(stage.name, self.state.step)
                    self.timings[stage.name] = self.timings.get(stage.name, 0.0) + time.perf_counter() - t0
                    t0 = time.perf_counter()
                    if self.state.step % self.cfg.checkpoint_every == 0 and self.state.step < stage.steps:
                        self._save("last")
                if stage.steps > 0:
                    self._save(stage.name)
                self.state = RunState(i + 1, 0, self.state.counts)
                self.optimizer = None
                self._save("last")
        finally:
            bar.close()
            log.close()
        return self.finish()

    # --- outputs ------------------------------------------------------------------------------------
    @torch.no_grad()
    def preview(self, stage: str, step: int) -> Path:
        import imageio.v3 as iio

        size = self.cfg.render.eval_size
        cams = cameras_from_spherical(torch.tensor([0.0, 90.0, 180.0, 270.0]), 15.0, 3.0, 40.0)
        t = 0.0 if self.cfg.stage(stage).dynamic_time == "zero" else 0.5
        out = self._render(cams, torch.full((4,), t), size, size, self.cfg.sigma(stage, step), None, training=False)
        img = torch.cat(list(out["rgb"].clamp(0, 1)), 1)
        path = self.out / "previews" / f"{stage}_{step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(path, (img.cpu().numpy() * 255).round().astype("uint8"))
        return path

    @torch.no_grad()
    def render_orbit(self, n_frames: int | None = None) -> Path:
        from method.cameras import OrbitConfig, orbit

        from .video import write_video

        size = self.cfg.render.eval_size
        ocfg = OrbitConfig(n_frames=n_frames or (16 if self.cfg.profile == "tiny" else 64), height=size, width=size)
        cams, times = orbit(ocfg)
        last = self.cfg.stages[-1].name
        sigma = self.cfg.sigma(last, self.cfg.stages[-1].steps)
        frames = [self._render(cams[i], times[i:i + 1], size, size, sigma, None, training=False)["rgb"][0]
                  for i in range(len(cams))]
        path = self.out / "orbit.mp4"
        write_video(path, torch.stack(frames), fps=15)
        return path

    def finish(self) -> dict:
        outputs = ["ckpt/last.pt", "log.jsonl"] + [f"ckpt/{s.name}.pt" for s in self.cfg.stages if s.steps > 0]
        if self.run_orbit:
            self.render_orbit()
            outputs.append("orbit.mp4")
        manifest = {
            "method": self.cfg.method, "prompt": self.prompt, "profile": self.cfg.profile, "seed": self.cfg.seed,
            "config_hash": self.cfg.config_hash(), "config": self.cfg.to_dict(),
            "update_counts": self.state.counts,
            "versions": {p: backends.package_version(p) for p in MANIFEST_PACKAGES},
            "device": self.device.type,
            "timings_s": {k: round(v, 2) for k, v in self.timings.items()},
            "peak_memory_mb": peak_memory_mb(self.device),
            "outputs": sorted(outputs),
        }
        (self.out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        return manifest


def peak_memory_mb(device: torch.device) -> dict:
    out = {"host_rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.type == "cuda":
        out["cuda_allocated"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 20, 1)
    return out


def psnr(a: Tensor, b: Tensor) -> float:
    mse = torch.mean((a.float() - b.float()) ** 2).item()
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)

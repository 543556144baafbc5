"""The hybrid-SDS trainer: runs the stages of a `TrainConfig`, one update type per step.

Everything random comes from one `torch.Generator` whose state is checkpointed, so `resume=True`
after a kill ends with the same parameters as an uninterrupted run. Rendering goes through the
run's `VolumeRenderer` (its occupancy grid, on CUDA, is saved with the checkpoints).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from method.backends import matmul_tf32, resolve_device, seeded
from method.fileio import copy_atomic, write_text_atomic
from method.background import draw_random_backgrounds
from method.cameras import Cameras, sample_frame_times, sample_multiview_groups, sample_single_views, sample_video
from method.fields import SceneField
from method.guidance.loading import GuidanceError
from method.render import VolumeRenderer

from . import checkpoint as ckpt
from .config import LossWeights, TrainConfig, execution_changes
from .draw import draw_update
from .outputs import peak_memory_mb, write_manifest, write_preview, write_preview_video
from .progress import Progress

OPACITY_CLAMP = 1e-3
"""Opacity is clamped to [c, 1 - c] in the entropy term, as the release does (log stays finite)."""

_INTERRUPT_CHECKS: list[Callable[[], None]] = []


@contextlib.contextmanager
def interrupt_check(check: Callable[[], None]):
    """While the block runs, every run of this process calls `check()` where it can stop cleanly: before and after
    loading its checkpoint and priors, before each training step and before its final outputs; `check` raises (a
    KeyboardInterrupt) to stop the run there. For a signal whose handler's raise was lost: Python prints and discards
    an exception raised while a finalizer (`__del__`) runs, which can be at any time (a tokenizer loading), and the
    run would train to its end. `fourdfy generate` and `oracle` pass a check of the signals their handler saw."""
    _INTERRUPT_CHECKS.append(check)
    try:
        yield
    finally:
        _INTERRUPT_CHECKS.remove(check)


def _check_interrupt() -> None:
    for check in list(_INTERRUPT_CHECKS):
        check()


@dataclass
class RunState:
    """Where the run is: index into cfg.stages, step within that stage, update counts per stage."""

    stage_index: int = 0
    """Index into cfg.stages of the stage being trained."""
    step: int = 0
    """Steps done within that stage."""
    counts: dict | None = None
    """Updates of each type per stage: {stage: {"3d": n, "img": n, "video": n}}."""

    def as_dict(self) -> dict:
        return {"stage_index": self.stage_index, "step": self.step, "counts": self.counts}


def stage_cache_key(cfg: TrainConfig, prompt: str, n_stages: int, weights: dict | None = None) -> str:
    """The stage cache's folder name for the first `n_stages` stages of `cfg` on `prompt`. `weights`: the digests
    of the local weights the run's priors load (`pipelines.generate.weights_digests`); those of the priors these
    stages draw count (the others are never called), and without any the key is that of the config alone."""
    import hashlib

    drawn = cfg.update_types_used(0, n_stages)
    read = {k: v for k, v in (weights or {}).items() if any(k.startswith(f"guidance.{u}.") for u in drawn)}
    text = f"{cfg.stage_prefix_hash(n_stages)}\n{prompt}"
    if read:
        text += "\n" + json.dumps(read, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _saved_stages(data: dict) -> list[tuple[str, int]] | None:
    """(name, steps) of the stages of a checkpoint's saved config; None for a checkpoint that kept no config."""
    saved = data.get("config", {}).get("stages") if isinstance(data.get("config"), dict) else None
    if not isinstance(saved, list) or not all(isinstance(st, dict) for st in saved):
        return None
    return [(str(st.get("name")), int(st.get("steps", 0))) for st in saved]


def _stages_done(index: int, step: int, lengths: list[int]) -> int:
    return index + (1 if index < len(lengths) and step >= lengths[index] else 0)


def init_stages_done(data: dict, cfg: TrainConfig) -> int:
    """How many stages the checkpoint `data` holds finished, by its own stage lengths (its saved config; `cfg`'s for
    a checkpoint that kept none): where a run started from it with `--init-from` begins. Counted by this run's
    lengths, a 12-step stage 1 taken into a run of 40-step stages would be trained again on top of itself."""
    saved = _saved_stages(data)
    lengths = [steps for _, steps in saved] if saved is not None else [st.steps for st in cfg.stages]
    return min(_stages_done(data["state"]["stage_index"], data["state"]["step"], lengths), len(cfg.stages))


def init_record(path: Path, data: dict, sha256: str | None = None) -> dict:
    """What a run started with `--init-from` records of its checkpoint (`data`, read from `path`), in its checkpoints
    (`init_from`) and its manifest (`request.init_from`), and holds as part of its identity: the checkpoint's SHA-256
    (`sha256`, else hashed here), its config hash and method, and the stages it holds finished (by its own
    config). No path: the same checkpoint moved is the same start."""
    import hashlib

    if sha256 is None:
        with open(path, "rb") as f:
            sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    saved = _saved_stages(data) or []
    done = _stages_done(data["state"]["stage_index"], data["state"]["step"], [steps for _, steps in saved])
    return {"sha256": sha256, "config_hash": data.get("config_hash"), "method": data.get("method"),
            "stages_done": [name for name, _ in saved[:done]]}


def init_sha256(record) -> str | None:
    """The checkpoint digest of an `init_record` as a run saved it (None: a run trained from scratch)."""
    return record.get("sha256") if isinstance(record, dict) else None


def start_matches(saved: dict, here) -> bool:
    """A saved run (checkpoint header or manifest: `init_from`, else a manifest's `request.init_from`) started as
    a request does (`here`: its `init_record`, None from scratch). A run saved with neither key was written before
    runs recorded their start: unknown, which matches either (as such runs were resumed then)."""
    request = saved.get("request")
    if "init_from" in saved:
        there = saved["init_from"]
    elif isinstance(request, dict) and "init_from" in request:
        there = request["init_from"]
    else:
        return True
    return init_sha256(there) == init_sha256(here)


def init_difference(there, here) -> str:
    """How two runs' starts differ (`init_record`s, None for a run from scratch), as a "... there, ... here" phrase
    (the form of `run_differences`); '' when they are the same."""
    if init_sha256(there) == init_sha256(here):
        return ""

    def start(record) -> str:
        if init_sha256(record) is None:
            return "from scratch"
        return f"from checkpoint sha256 {init_sha256(record)[:12]} (--init-from)"

    return f"started {start(there)} there, {start(here)} here"


def cached_stage_path(cfg: TrainConfig, prompt: str, index: int, weights: dict | None = None) -> Path:
    """Where, inside a stage cache, the checkpoint after stage `index` of `cfg` on `prompt` is stored (`weights`
    as for `stage_cache_key`)."""
    return Path(stage_cache_key(cfg, prompt, index + 1, weights)) / f"{cfg.stages[index].name}.pt"


class Trainer:
    """Algorithm 1 over a `SceneField`, driven entirely by the config.

    `priors` may inject ready-built priors per update type (tests); otherwise each is built from
    `cfg.guidance[update]` the first time a stage can draw it. `progress`: live bar on a terminal,
    heartbeat lines otherwise; `quiet` silences both. `notes` are added to the manifest.

    `stage_cache`: a folder shared by runs. At each stage end the stage checkpoint is stored there
    under a key of (the config of every stage so far, prompt); a new run first looks for the deepest
    such checkpoint and continues from it, so methods whose first stages are identical train them once
    (4dfy, wo_hybrid and wo_img share stage 1-2 or stage 1). The continued run is bit-identical to one
    trained from scratch: the checkpoint holds the optimizer and RNG states.

    `weights`: {`guidance.<name>.<field>`: SHA-256} of the local weights the priors load
    (`pipelines.generate.weights_digests`, which `generate` passes), part of the run's identity with its config
    hash: checked on resume, in the stage cache's keys, and recorded as `model_weights` in checkpoints and the
    manifest (left out when empty, so runs on hub or tiny ids are unchanged).

    `init_record`: the `init_record` of the checkpoint `run(init_from=...)` starts from (`generate` passes the one
    it checked the run folder with; else it is made from the file). A run started so records it in its checkpoints
    and manifest (`init_from`; the manifest also under `request.init_from`): it is part of the run's identity,
    checked on resume, and such a run shares no stage through the stage cache (its stages sit on another run's
    weights). A run from scratch records `init_from: null`, so that a checkpoint or manifest without the key is one
    written before runs recorded their start: unknown, which matches either start (`start_matches`).
    """

    def __init__(self, cfg: TrainConfig, prompt: str, out_dir: Path | str, priors: dict | None = None,
                 progress: bool = True, quiet: bool = False, notes: dict | None = None,
                 stage_cache: Path | str | None = None, weights: dict | None = None,
                 init_record: dict | None = None):
        if not prompt.strip():
            raise ValueError("the prompt is empty")
        self.cfg = cfg
        self.prompt = prompt
        self.out = Path(out_dir)
        self.device = resolve_device(cfg.device)
        self.progress = progress
        self.quiet = quiet
        self.notes = dict(notes or {})
        self.stage_cache = None if stage_cache is None else Path(stage_cache)
        self.shared_from: dict | None = None
        self._damaged_cache: set[Path] = set()  # stage cache entries that could not be read: this run replaces them
        self.init_record = dict(init_record) if init_record else None
        # False once this run continues a checkpoint that recorded no start (written before runs recorded one)
        # without an --init-from: its start is unknown, and its checkpoints and manifest keep saying nothing
        self._start_known = True
        self.weights = dict(sorted((weights or {}).items()))
        with seeded(cfg.seed):  # network initialisation, leaving the caller's global RNG as it was
            self.field = SceneField(cfg.field, cfg.background).to(self.device)
            self.renderer = VolumeRenderer(cfg.renderer, self.device)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self._priors = dict(priors or {})
        self.state = RunState(counts={s.name: {"3d": 0, "img": 0, "video": 0} for s in cfg.stages})
        self.optimizer: torch.optim.Optimizer | None = None
        self.timings: dict[str, float] = {}
        self.resumes: list[dict] = []

    # --- pieces -------------------------------------------------------------------------------------
    def prior(self, update: str):
        if update not in self._priors:
            spec = self.cfg.guidance.get(update)
            if spec is None:
                raise ValueError(f"method {self.cfg.method!r} draws {update!r} updates but no prior is configured")
            try:  # missing weights are named by the key a user sets (guidance.<update>.<field>), with its --set
                self._priors[update] = spec.build(str(self.device), where=f"guidance.{update}")
            except GuidanceError as err:
                if getattr(err, "field", None):
                    raise  # its message names the key already
                # a checkpoint that converts to no MVDream model names no field: say which entry holds it
                raise type(err)(f"guidance.{update} ({type(spec).__name__}): {err} Set it with "
                                f"`--set guidance.{update}.model=PATH`.") from None
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
        # the priors drawn so far, not every prior built up front: a stage checkpoint (shared through the
        # stage cache with methods that never draw a later prior) keeps the layout of the stages it holds
        drawn = self._updates_drawn(stage_index)
        guidance_params = [p for u in sorted(drawn) for p in self._priors[u].trainable_parameters()]
        if guidance_params:
            specs.append(("guidance", guidance_params, lrs.guidance))
        param_groups = [{"params": ps, "lr": lr, "name": n} for n, ps, lr in specs if ps]
        self.optimizer = torch.optim.AdamW(param_groups, betas=self.cfg.betas, eps=self.cfg.eps,
                                           weight_decay=self.cfg.weight_decay)

    def learning_rates(self) -> dict[str, float]:
        return {g["name"]: g["lr"] for g in self.optimizer.param_groups} if self.optimizer else {}

    def render(self, cams: Cameras, times: Tensor, height: int, width: int, sigma: float, *,
               training: bool, bg_colors: Tensor | None = None, bg_mask: Tensor | None = None,
               grad_max_samples: int | None | str = "config") -> dict:
        """Render through the run's renderer; training renders jitter samples from the run's generator."""
        field_fn = lambda x, t: self.field(x, t, sigma)  # noqa: E731
        return self.renderer.render_images(field_fn, self.field.background, cams.to(self.device),
                                           times.to(self.device), height, width, randomized=training,
                                           generator=self.generator if training else None,
                                           bg_colors=bg_colors, bg_mask=bg_mask, grad_max_samples=grad_max_samples)

    def _static_times(self, stage, n: int) -> Tensor:
        if stage.dynamic_time == "zero":
            return torch.zeros(n)
        frames = sample_frame_times(self.cfg.render.video_frames, self.generator)
        k = torch.randint(len(frames), (1,), generator=self.generator)
        return frames[k].expand(n).clone()

    def batch(self, update: str, stage, step: int) -> tuple[Cameras, Tensor, int, int]:
        """Cameras, times and render size of one update (MVDream's batch follows the stage's own schedule)."""
        r, ranges = self.cfg.render, self.cfg.cameras
        if update == "3d":
            groups = r.at(stage.mv_groups, step)
            size = r.at(stage.mv_resolution, step)
            cams = sample_multiview_groups(groups, 4, ranges, self.generator)
            return cams, self._static_times(stage, len(cams)), size, size
        if update == "img":
            cams = sample_single_views(r.img_batch, ranges, self.generator)
            return cams, self._static_times(stage, len(cams)), r.img_resolution, r.img_resolution
        cams, times = sample_video(r.video_frames, ranges, self.generator)
        return cams, times, r.video_size[0], r.video_size[1]

    def _regularisers(self, opacity: Tensor, step: int, weights: LossWeights | None = None) -> dict[str, Tensor]:
        w = self.cfg.weights if weights is None else weights
        out = {"loss_sparsity": torch.sqrt(opacity ** 2 + 0.01).mean()}
        if w.opacity_entropy > 0 and step >= w.opacity_entropy_from:
            o = opacity.clamp(OPACITY_CLAMP, 1 - OPACITY_CLAMP)
            out["loss_opacity_entropy"] = -(o * torch.log(o) + (1 - o) * torch.log(1 - o)).mean()
        return out

    def _updates_drawn(self, stage_index: int) -> list[str]:
        """Update types stages 0..stage_index draw (their priors are built)."""
        return [u for u in self.cfg.update_types_used(0, stage_index + 1) if u in self._priors]

    def train_step(self, stage_index: int, step: int) -> dict:
        """One update of Algorithm 1 (the step index is the step within the stage), with TF32 matrix products
        as `cfg.tf32` says."""
        with matmul_tf32(self.cfg.tf32):
            return self._train_step(stage_index, step)

    def _train_step(self, stage_index: int, step: int) -> dict:
        cfg, stage = self.cfg, self.cfg.stages[stage_index]
        update = draw_update(stage, self.generator)
        self.field.set_trainable(cfg.trainable_groups(stage, update))
        sigma = cfg.sigma(stage.name, step)
        self.renderer.update(step, lambda x, t: self.field.density(x, t, sigma),
                             dynamic=stage.dynamic_time == "frame", generator=self.generator)
        cams, times, h, w = self.batch(update, stage, step)
        # one random-colour decision per image, per 4-view group, or per clip (not per frame)
        group = {"3d": 4, "img": 1, "video": len(cams)}[update]
        use, colors = draw_random_backgrounds(len(cams), group, cfg.background.random_color_prob, self.generator)
        cap = stage.grad_cap(update, len(cams), cfg.renderer.grad_max_samples)
        out = self.render(cams, times, h, w, sigma, training=True, bg_colors=colors, bg_mask=use,
                          grad_max_samples=cap)
        prior = self.prior(update)
        losses = dict(prior(out["rgb"], cams.to(self.device), self.prompt, step, generator=self.generator,
                            stage=stage.name, times=times))
        weights = cfg.loss_weights(stage)
        losses.update(self._regularisers(out["opacity"], step, weights))
        total = sum(getattr(weights, k[len("loss_"):]) * v for k, v in losses.items())
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self._optimizer_step(stage.video_lr_scale if update == "video" else 1.0)
        self.optimizer.zero_grad(set_to_none=True)
        prior.update(step)
        self.state.counts[stage.name][update] += 1
        return {"update": update, "sigma": sigma, **{k: float(v.detach()) for k, v in losses.items()}}

    def _optimizer_step(self, lr_scale: float) -> None:
        """One optimizer step with every group's learning rate times `lr_scale` (`StageConfig.video_lr_scale`),
        put back afterwards, so the schedule, the log and the checkpoints keep the configured rates."""
        if lr_scale == 1.0:
            self.optimizer.step()
            return
        rates = [g["lr"] for g in self.optimizer.param_groups]
        for g in self.optimizer.param_groups:
            g["lr"] = g["lr"] * lr_scale
        try:
            self.optimizer.step()
        finally:
            for g, lr in zip(self.optimizer.param_groups, rates):
                g["lr"] = lr

    # --- checkpoints --------------------------------------------------------------------------------
    def _checkpoint(self) -> dict:
        return {"schema": ckpt.SCHEMA, "config_hash": self.cfg.config_hash(), "method": self.cfg.method,
                "config": self.cfg.to_dict(),  # lets a refused resume say which settings differ
                "prompt": self.prompt, "state": self.state.as_dict(), "field": self.field.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer else None,
                "priors": {u: self._priors[u].state_dict() for u in self._updates_drawn(self.state.stage_index)
                           if self._priors[u].trainable_parameters()},
                "rng": ckpt.rng_state(self.generator), "timings": dict(self.timings),
                "renderer": self.renderer.state_dict(), "resumes": list(self.resumes),
                "shared_from": self.shared_from, **self._weights_record(),
                **self._start_record()}

    def _start_record(self) -> dict:
        """How the run started, for checkpoints and the manifest: `init_from` (its `init_record`, null from
        scratch); nothing where it is unknown (a resumed checkpoint from before runs recorded it)."""
        return {"init_from": self.init_record} if self.init_record is not None or self._start_known else {}

    def _weights_record(self) -> dict:
        """The run's `model_weights` for checkpoints and the manifest; none without local weights (their bytes
        stay those of runs made before runs recorded them)."""
        return {"model_weights": dict(self.weights)} if self.weights else {}

    def _save(self, name: str) -> None:
        ckpt.save_atomic(self._checkpoint(), self.out / "ckpt" / f"{name}.pt")
        self._last_save = time.monotonic()

    def _resume_from(self, path: Path) -> None:
        data = ckpt.load(path)
        ckpt.check_compatible(data, path, self.cfg.config_hash(), self.prompt, self.cfg.to_dict(), self.weights)
        self._check_init(data, path)
        self._load_state(data)
        s = data["state"]
        entry = {"stage_index": s["stage_index"], "step": s["step"], "from": path.name}
        if isinstance(data.get("config"), dict):  # the hash leaves these out: say when a resume switched them
            changed = execution_changes(data["config"], self.cfg.to_dict())
            if changed:
                entry["execution_changed"] = changed
        self.resumes = list(data.get("resumes", [])) + [entry]
        self.shared_from = data.get("shared_from")
        self._truncate_log()

    def _check_init(self, data: dict, path: Path) -> None:
        """A checkpoint resumed is of a run started as this one is: from the same `--init-from` checkpoint
        (`init_record`), or from scratch."""
        if "init_from" not in data:  # written before runs recorded their start: either kind continues it
            if self.init_record is None:  # (with one, the request says how it started)
                self._start_known = False
            return
        there = data.get("init_from")
        if init_sha256(there) != init_sha256(self.init_record):
            raise ckpt.CheckpointMismatch(
                f"{path} was written by a different run ({init_difference(there, self.init_record)}); give the "
                "--init-from that run started from (none for a run from scratch), or another --out")

    def _truncate_log(self) -> None:
        """Drop log lines written after the checkpoint being resumed (those steps run again), and record in
        the resume entry how much logged work is redone: `redone_to` (last logged stage, step) and `lost_s`."""
        log = self.out / "log.jsonl"
        if not log.exists():
            return
        names = [s.name for s in self.cfg.stages]
        keep, lost = [], {}
        lines = log.read_text(errors="replace").splitlines()
        for k, line in enumerate(lines):
            try:
                rec = json.loads(line)
            except ValueError:
                if k == len(lines) - 1:  # torn by a kill in mid-write: its step is past the checkpoint, run again
                    continue
                raise ValueError(f"{log}: line {k + 1} is not a JSON record (the log is damaged); remove that line, "
                                 "or the whole log.jsonl (the checkpoint, not the log, is what resumes)") from None
            pos = (names.index(rec["stage"]), rec["step"])
            if pos <= (self.state.stage_index, self.state.step):
                keep.append(line)
            else:
                lost[rec["stage"]] = (pos, rec.get("time_s", 0.0))
        if lost:
            last = max(v[0] for v in lost.values())
            seconds = sum(max(t - self.timings.get(stage, 0.0), 0.0) for stage, (_pos, t) in lost.items())
            self.resumes[-1].update(redone_to=[names[last[0]], last[1]], lost_s=round(seconds, 2))
        log.write_text("".join(f"{line}\n" for line in keep))

    # --- stages shared between runs ----------------------------------------------------------------
    def _cached_stage(self, index: int) -> Path:
        return self.stage_cache / cached_stage_path(self.cfg, self.prompt, index, self.weights)

    def _share_stage(self, index: int) -> None:
        """Store the checkpoint and log of stages [0, index] for runs with the same first stages (called right
        after the stage's own checkpoint is saved: that file is copied, not serialised again)."""
        if self.stage_cache is None or index >= len(self.cfg.stages) - 1 or self.init_record is not None:
            return  # (a run started with --init-from: its stages are not those of a run from scratch of its config)
        if any(r.get("execution_changed") and (r["stage_index"], r["step"]) != (0, 0) for r in self.resumes):
            return  # resumed with other execution options: the stage's weights were computed both ways
        target = self._cached_stage(index)
        if not target.exists() or target in self._damaged_cache:  # an unreadable entry is replaced (atomically)
            # the log first, then the checkpoint: a reader checks for the checkpoint and finds both
            # (parallel jobs may store the same stage at once: same bits, unique temporaries)
            log = self.out / "log.jsonl"
            write_text_atomic(target.with_suffix(".jsonl"), log.read_text() if log.exists() else "")
            copy_atomic(self.out / "ckpt" / f"{self.cfg.stages[index].name}.pt", target)

    def _start_from_cache(self) -> bool:
        """Continue from the deepest cached stage this run shares (no-op without a cache or a match); True when it
        did (the run's log is then that stage's)."""
        if self.stage_cache is None:
            return False
        for index in reversed(range(len(self.cfg.stages) - 1)):
            path = self._cached_stage(index)
            if self.cfg.stages[index].steps > 0 and path.is_file() and path.with_suffix(".jsonl").is_file():
                try:
                    data = ckpt.load(path)
                except ckpt.CheckpointError as err:
                    # a damaged entry (a copy cut short by a full disk, a file edited) is a miss, not an end: this
                    # run trains the stage and stores its own checkpoint there
                    self._damaged_cache.add(path)
                    # the reason, its first sentence (torch's rest is advice about saving)
                    why = (ckpt.unreadable(path) or str(err)).split(". ")[0].splitlines()[0]
                    print(f"note: stage cache entry {path} cannot be used ({why}); training its stages instead, "
                          "and storing them there again", file=sys.stderr, flush=True)
                    continue
                self._load_state(data)
                self.shared_from = {"stage": self.cfg.stages[index].name,
                                    "key": stage_cache_key(self.cfg, self.prompt, index + 1, self.weights),
                                    "method": data["method"]}
                (self.out / "log.jsonl").write_text(path.with_suffix(".jsonl").read_text())
                return True
        return False

    def _load_state(self, data: dict) -> None:
        self.field.load_state_dict(data["field"])
        for u, sd in data["priors"].items():
            self.prior(u).load_state_dict(sd)
        s = data["state"]
        self.state = RunState(s["stage_index"], s["step"], s["counts"])
        self.timings = dict(data["timings"])
        if self.state.stage_index < len(self.cfg.stages) and self.cfg.stages[self.state.stage_index].steps > 0:
            self._build_optimizer(self.state.stage_index)
            if data["optimizer"] is not None and self.state.step > 0:
                self.optimizer.load_state_dict(data["optimizer"])
        ckpt.restore_rng(self.generator, data["rng"])
        self.renderer.load_state_dict(data["renderer"])

    def init_from(self, path: Path | str) -> None:
        """Start from another run's stage checkpoint: weights only, continuing with the stage after the last one it
        holds finished (`init_stages_done`, by its own stage lengths); the update counts of the stages taken from it
        are its own."""
        data = ckpt.load(Path(path))
        if self.init_record is None:
            self.init_record = init_record(Path(path), data)
        try:
            self.field.load_state_dict(data["field"])
        except RuntimeError as err:
            raise ckpt.CheckpointError(f"{path} does not fit this method's scene representation: {err}") from None
        for u, sd in data.get("priors", {}).items():
            if u in self.cfg.update_types_used():
                self.prior(u).load_state_dict(sd)
        done = init_stages_done(data, self.cfg)
        saved = data["state"].get("counts") or {}
        taken = [s.name for s in self.cfg.stages[:done]]
        self.state = RunState(done, 0, {name: dict(saved[name]) if name in taken and name in saved else counts
                                        for name, counts in self.state.counts.items()})

    # --- the run ------------------------------------------------------------------------------------
    def run(self, resume: bool = False, init_from: Path | str | None = None, stop_after: int | None = None,
            resume_from: Path | str | None = None) -> dict:
        """Train all stages.

        resume: continue from `ckpt/last.pt` (or from `resume_from`, e.g. an intact `ckpt/stage2.pt`
        when last.pt is damaged). `stop_after` ends early after that many steps, as a kill would
        (tests); checkpoints are written as configured.
        """
        _check_interrupt()
        self.out.mkdir(parents=True, exist_ok=True)
        last = self.out / "ckpt" / "last.pt"
        continued = True  # the log so far belongs to this run (a resume trims it to the checkpoint's step)
        resuming = resume_from is not None or (resume and last.exists())
        if init_from is not None and self.init_record is None and resuming:
            # a resumed run started from `init_from`: what its checkpoints must have recorded of it
            self.init_record = init_record(Path(init_from), ckpt.load(Path(init_from), mmap=True))
        if resume_from is not None:
            self._resume_from(Path(resume_from))
        elif resume and last.exists():
            self._resume_from(last)
        elif init_from is not None:
            self.init_from(init_from)
            continued = False
        elif last.exists():
            raise ckpt.CheckpointError(f"{self.out} already holds a run; pass --resume to continue it "
                                       "or choose another --out")
        else:
            continued = self._start_from_cache()
        # every prior the remaining stages draw: missing weights fail now, not after hours of earlier stages
        for update in self.cfg.update_types_used(self.state.stage_index):
            self.prior(update)
        _check_interrupt()
        total = sum(s.steps for s in self.cfg.stages)
        done = sum(s.steps for s in self.cfg.stages[:self.state.stage_index]) + self.state.step
        progress = Progress(total, done, self.cfg.heartbeat_s, enabled=self.progress, quiet=self.quiet)
        self._last_save = time.monotonic()
        executed = 0
        # a new run's log starts empty: one stopped before its first checkpoint left lines that are not this run's
        with (self.out / "log.jsonl").open("a" if continued else "w") as log:
            try:
                while self.state.stage_index < len(self.cfg.stages):
                    i = self.state.stage_index
                    stage = self.cfg.stages[i]
                    if stage.steps > 0 and (self.state.step == 0 or self.optimizer is None):
                        self._build_optimizer(i)  # a skipped stage (0 steps) loads no prior of its own
                    t0 = time.perf_counter()
                    while self.state.step < stage.steps:
                        if stop_after is not None and executed >= stop_after:
                            return {"stopped": True}
                        _check_interrupt()
                        rec = self.train_step(i, self.state.step)
                        self.state.step += 1
                        executed += 1
                        progress.update(stage.name, self.state.step, stage.steps, rec)
                        if self.cfg.preview_every and self.state.step % self.cfg.preview_every == 0:
                            self.preview(stage.name, self.state.step)
                        self.timings[stage.name] = self.timings.get(stage.name, 0.0) + time.perf_counter() - t0
                        t0 = time.perf_counter()
                        if self.state.step % self.cfg.log_every == 0 or self.state.step == stage.steps:
                            # time_s: seconds of this stage so far (a resume uses it to count the work lost)
                            log.write(json.dumps({"stage": stage.name, "step": self.state.step, **rec,
                                                  "lr": self.learning_rates(),
                                                  "time_s": round(self.timings[stage.name], 3)}) + "\n")
                            log.flush()
                        if self.state.step < stage.steps and self._checkpoint_due():
                            self._save("last")
                    if stage.steps > 0:
                        self._save(stage.name)
                        self._share_stage(i)
                    self.state = RunState(i + 1, 0, self.state.counts)
                    self.optimizer = None
                    self._save("last")
            finally:
                progress.close()
        _check_interrupt()
        return self.finish()

    def _checkpoint_due(self) -> bool:
        by_steps = self.state.step % self.cfg.checkpoint_every == 0
        by_time = self.cfg.checkpoint_every_s > 0 and time.monotonic() - self._last_save >= self.cfg.checkpoint_every_s
        return by_steps or by_time

    # --- outputs ------------------------------------------------------------------------------------
    def _eval_render_fn(self, stage: str, step: int):
        sigma = self.cfg.sigma(stage, step)
        return lambda cams, times, h, w: self.render(cams, times, h, w, sigma, training=False)["rgb"]

    @torch.no_grad()
    def preview(self, stage: str, step: int) -> Path:
        t = 0.0 if self.cfg.stage(stage).dynamic_time == "zero" else 0.5
        return write_preview(self._eval_render_fn(stage, step), self.out / "previews" / f"{stage}_{step:06d}.png",
                             self.cfg.render.eval_size, t)

    def finish(self) -> dict:
        # the stage checkpoints this run wrote: none for the stages an --init-from run took from its checkpoint
        outputs = ["ckpt/last.pt", "log.jsonl"] + [f"ckpt/{s.name}.pt" for s in self.cfg.stages
                                                   if s.steps > 0 and (self.out / "ckpt" / f"{s.name}.pt").is_file()]
        if self.cfg.preview_frames > 0:
            last = self.cfg.stages[-1]
            write_preview_video(self._eval_render_fn(last.name, last.steps), self.out / "preview.mp4",
                                self.cfg.render.eval_size, self.cfg.preview_frames)
            outputs.append("preview.mp4")
        return write_manifest(self.out, {
            "method": self.cfg.method, "prompt": self.prompt, "profile": self.cfg.profile, "seed": self.cfg.seed,
            "config_hash": self.cfg.config_hash(), "config": self.cfg.to_dict(), **self._weights_record(),
            **self._start_record(), "update_counts": self.state.counts, "device": self.device.type,
            "timings_s": {k: round(v, 2) for k, v in self.timings.items()},
            # work logged before a kill and redone after the resume (not in timings_s, which counts what is kept)
            "timings_lost_s": round(sum(r.get("lost_s", 0.0) for r in self.resumes), 2),
            "resumes": self.resumes, "shared_from": self.shared_from, "peak_memory_mb": peak_memory_mb(self.device), "outputs": sorted(outputs),
            **self._notes_with_init(),
        })

    def _notes_with_init(self) -> dict:
        """The manifest's notes, with the `init_record` of a run started with --init-from under `request` too
        (where runs recorded it first)."""
        if self.init_record is None:
            return self.notes
        request = self.notes.get("request")
        return {**self.notes, "request": {**(request if isinstance(request, dict) else {}),
                                          "init_from": self.init_record}}


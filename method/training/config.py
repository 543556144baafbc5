"""Algorithm 1 as data: stages, update-type probabilities, what each update trains, learning rates,
loss weights and schedules. A method (baselines/) is a set of overrides of a profile's config."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import ClassVar

from method import configs
from method.background import BackgroundConfig
from method.cameras import CameraRanges
from method.fields import PARAM_GROUPS, FieldConfig
from method.guidance.base import FrozenModelOptions, PriorConfig
from method.ranges import RangeError, at_least, positive, within
from method.render import RenderConfig

CONFIG_SCHEMA = 2
"""Version of the config layout; part of the hash, so runs made by an older layout are refused clearly."""

UPDATE_TYPES = ("3d", "img", "video")
"""3d: MVDream multi-view SDS; img: VSD on single views; video: Zeroscope video SDS."""

STAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
"""A stage's name: it names files (`ckpt/NAME.pt` of a run, `NAME.pt` and `NAME.jsonl` in the stage cache), so no
path separator or `..`, and it is a part of dotted keys (`stages.NAME.steps`, `--max-steps`), so no dot; the same
rule as a variant's name (baselines.registry)."""
RESERVED_STAGE_NAMES = {"last": "ckpt/last.pt is the run's latest checkpoint, which resumes and renders it"}
"""Names no stage may take, case ignored (a case-insensitive file system) -> why: the files a stage's name makes
would be those of another (`Trainer._save` writes `ckpt/<stage name>.pt` beside these)."""


@dataclass(frozen=True)
class StageConfig:
    """One stage of Algorithm 1."""

    name: str
    """Stage name used in logs, keys and checkpoint files (stage1, stage2, stage3): letters, digits, '_' and '-',
    starting with a letter or digit, not `last` (`STAGE_NAME`, `RESERVED_STAGE_NAMES`)."""
    steps: int
    """Iterations of this stage (0 skips it)."""
    p_3d: float
    """Probability of a 3D-aware (MVDream) update."""
    p_img: float
    """Probability of an IMG (VSD) update among the non-3D draws (the release's sequential draw)."""
    allow_video: bool
    """Whether the draw falls through to video updates (stage 3); otherwise it falls through to IMG."""
    static_lr_scale: float = 1.0
    """Multiplier of the static grid's LR in this stage (stage 3 drops 1e-2 -> 1e-4: 0.01)."""
    dynamic_time: str = "zero"
    """Time at which static (3D / IMG) updates render: 'zero' (stages 1-2) or 'frame' (a random clip frame time)."""
    mv_resolution: tuple[tuple[int, int], ...] = ((0, 256),)
    """(from step within this stage, square size) milestones of the 4-view MVDream renders."""
    mv_groups: tuple[tuple[int, int], ...] = ((0, 1),)
    """(from step within this stage, number of 4-view groups) milestones of the MVDream batch."""
    grad_max_samples: int | None = None
    """The release's low-VRAM `train_max_nums` N: a render of B views keeps gradients on N // B random samples,
    a video clip on N per frame (the release renders frames one by one); None: `renderer.grad_max_samples`."""
    trainable: tuple[str, ...] | None = None
    """Parameter groups every update of this stage trains once an earlier stage has trained (the release's
    low-VRAM stage 3 freezes all but the dynamic grid: ('dynamic',)); None: the run's `static_groups` /
    `video_groups` by update type (see `TrainConfig.trainable_groups`)."""
    weights: dict[str, float] = dc_field(default_factory=dict)
    """Loss weights of this stage that differ from the run's `weights`, by `LossWeights` field name (the release's
    low-VRAM stage 1: {'sparsity': 0, 'opacity_entropy': 0}); {}: the run's `weights` throughout."""
    video_lr_scale: float = 1.0
    """Multiplier of every group's learning rate for the optimizer step of a video update (S1's "total learning
    rate 0.1" read as a learning rate; 1: the release's reading, `weights.sds_video` 0.1 as a loss weight)."""

    def __post_init__(self) -> None:
        # first, as the name makes the keys of the messages below; a RangeError of `name`, which the key path that
        # set it extends (`stages.stage1.name ...`, the name before the change)
        if not isinstance(self.name, str) or not STAGE_NAME.fullmatch(self.name):
            raise RangeError("name", "must be letters, digits, '_' and '-', starting with a letter or digit (it names "
                             "the stage's checkpoint file ckpt/NAME.pt and its keys stages.NAME.KEY)", self.name)
        if (why := RESERVED_STAGE_NAMES.get(self.name.lower())) is not None:
            raise RangeError("name", f"must not be {self.name.lower()!r} ({why}; a stage's checkpoint would replace "
                             "it)", self.name)
        key = f"stages.{self.name}"  # as `--set` names the fields
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"{key}.steps must be an integer >= 0 (0 skips the stage), got {self.steps!r}")
        for field_name in ("p_3d", "p_img"):
            value = getattr(self, field_name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{key}.{field_name} is a probability, from 0 to 1; got {value!r}")
        if self.dynamic_time not in ("zero", "frame"):
            raise ValueError(f"{key}.dynamic_time must be 'zero' or 'frame', got {self.dynamic_time!r}")
        for field_name in ("mv_resolution", "mv_groups"):
            milestones = getattr(self, field_name)
            starts = [m[0] for m in milestones]
            if (not milestones or starts[0] != 0 or starts != sorted(set(starts))
                    or any(m[1] < 1 for m in milestones)):
                raise ValueError(f"{key}.{field_name} takes [from step, value] pairs, the first from step 0, steps "
                                 f"increasing, values >= 1; got {milestones!r}")
        if self.grad_max_samples is not None and self.grad_max_samples < 1:
            raise ValueError(f"{key}.grad_max_samples must be >= 1 (null: renderer.grad_max_samples), "
                             f"got {self.grad_max_samples!r}")
        if self.trainable is not None:
            unknown = set(self.trainable) - set(PARAM_GROUPS)
            if unknown or not self.trainable:
                raise ValueError(f"{key}.trainable must name some of {', '.join(PARAM_GROUPS)} (null: the run's "
                                 f"static_groups / video_groups), got {list(self.trainable)!r}")
        # floats, as a config read back from a manifest holds them, so the hash does not depend on 0 vs 0.0
        object.__setattr__(self, "weights", {k: float(v) for k, v in self.weights.items()})
        names = [f.name for f in dataclasses.fields(LossWeights)]
        unknown = sorted(set(self.weights) - set(names))
        if unknown:
            raise ValueError(f"{key}.weights names no loss weight {unknown}; valid: {', '.join(names)}")
        start = self.weights.get("opacity_entropy_from", 0)
        if not float(start).is_integer() or start < 0:
            raise ValueError(f"{key}.weights.opacity_entropy_from is a step, an integer >= 0; got {start!r}")
        try:  # `method.ranges` (an infinity refused too), named from the run's config here, as above
            at_least("static_lr_scale", self.static_lr_scale, 0)
            for name, weight in self.weights.items():  # a negative weight would push its loss up
                at_least(f"weights.{name}", weight, 0, " (0: off)")
            at_least("video_lr_scale", self.video_lr_scale, 0)
        except RangeError as err:  # a ValueError: the key path that set the field must not prefix it again
            raise ValueError(str(err.under(key))) from None
        configs.check_links(self)

    def draw_problem(self) -> str | None:
        """Why the stage's update probabilities cannot be drawn from (None: they can)."""
        if not self.allow_video and self.p_img == 0.0 and self.p_3d < 1.0:
            return (f"stages.{self.name}: with no video (allow_video false) and p_img 0 the stage must use only 3D "
                    f"updates (p_3d 1), got p_3d {self.p_3d!r}; set stages.{self.name}.p_3d to 1, p_img above 0 or "
                    "allow_video true")
        return None

    def check_links(self) -> None:
        """The checks between the stage's fields (`method.configs.check_links`: after a batch of dotted keys, so that
        `p_3d`, `p_img` and `allow_video` can be set in any order): its update probabilities must be drawable, so
        that a config that cannot train is refused when it is made (a method's or variant's overrides, `--set`),
        naming the entry, not when its first step draws."""
        if (problem := self.draw_problem()) is not None:
            raise ValueError(problem)

    def grad_cap(self, update: str, n_views: int, default: int | None) -> int | None:
        """Samples of one training render that carry gradients (None: all), the release's low-VRAM budget:
        N // B for B views rendered at one time, N per frame of a clip (`n_views` = frames for video)."""
        n = self.grad_max_samples
        if n is None:
            return default
        return n * n_views if update == "video" else max(n // n_views, 1)

    def update_probabilities(self) -> dict[str, float]:
        """Marginal probabilities of the sequential draw: 3D with p_3d, else IMG with p_img, else the rest.

        The paper states (P_3D, P_3D*P_IMG, 1-P_3D*P_IMG) for stage 3, which does not sum to 1; the
        release draws sequentially, giving (0.5, 0.25, 0.25) at P = 0.5. We implement the release.
        """
        rest = 1.0 - self.p_3d
        if self.allow_video:
            return {"3d": self.p_3d, "img": rest * self.p_img, "video": rest * (1.0 - self.p_img)}
        if (problem := self.draw_problem()) is not None:  # refused when made (`check_links`); kept for safety
            raise ValueError(problem)
        return {"3d": self.p_3d, "img": rest, "video": 0.0}


@dataclass(frozen=True)
class LearningRates:
    """AdamW learning rates per parameter group (before each stage's static-LR scale)."""

    static: float = 1e-2
    """Static hash grid (or HexPlane space planes)."""
    dynamic: float = 1e-2
    """Dynamic hash grid (or HexPlane time planes)."""
    mlp: float = 1e-3
    """Density and colour heads."""
    background: float = 1e-3
    """Background MLP."""
    guidance: float = 1e-4
    """LoRA + camera embedding of the VSD particle model."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # AdamW refuses a negative rate only when a stage builds it
            at_least(f.name, getattr(self, f.name), 0, " (0 leaves the group as it is)")


@dataclass(frozen=True)
class LossWeights:
    """lambda_<name> multiplying each `loss_<name>` term."""

    sds: float = 1.0
    """MVDream 3D-aware SDS."""
    vsd: float = 1.0
    """VSD (reaches the scene)."""
    lora: float = 1.0
    """LoRA diffusion loss (reaches LoRA + camera embedding)."""
    sds_video: float = 0.1
    """Video SDS (paper S1: total learning rate 0.1)."""
    sparsity: float = 10.0
    """mean(sqrt(opacity^2 + 0.01))."""
    opacity_entropy: float = 1000.0
    """Binary entropy of the opacity, active from `opacity_entropy_from` on."""
    opacity_entropy_from: int = 10_000
    """Stage step from which the opacity-entropy term is on."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # a negative weight would push its loss up, not down
            if f.name != "opacity_entropy_from":
                at_least(f.name, getattr(self, f.name), 0, " (0: off)")
        at_least("opacity_entropy_from", self.opacity_entropy_from, 0, " (a stage step)")


@dataclass(frozen=True)
class RenderSchedule:
    """Render sizes and batch sizes per update type (MVDream's are per stage: `StageConfig.mv_*`)."""

    img_resolution: int = 256
    """Square size of VSD single-view renders."""
    img_batch: int = 1
    """Single views per VSD update."""
    video_size: tuple[int, int] = (160, 288)
    """(H, W) of the video frames."""
    video_frames: int = 16
    """Frames per clip."""
    eval_size: int = 256
    """Preview render size."""

    def __post_init__(self) -> None:
        # each is a size or count of a render: 0 fails inside torch mid-run, after checkpoints are written
        for name in ("img_resolution", "img_batch", "video_size", "video_frames", "eval_size"):
            at_least(name, getattr(self, name), 1)

    @staticmethod
    def at(milestones: tuple[tuple[int, int], ...], step: int) -> int:
        value = milestones[0][1]
        for start, v in milestones:
            if step >= start:
                value = v
        return value


@dataclass(frozen=True)
class Anneal:
    """Linear anneal of a positive scalar from `start` to `end` over stage steps [0, steps] (steps=0: constant
    start); the density bias's sigma (`TrainConfig.blob_sigma`), which the bias divides by."""

    start: float
    """Value at step 0."""
    end: float
    """Value at `steps` and after."""
    steps: int = 0
    """Length of the ramp in steps."""

    def __post_init__(self) -> None:
        positive("start", self.start)
        positive("end", self.end)
        at_least("steps", self.steps, 0, " (0: constant start)")

    def __call__(self, step: int) -> float:
        if self.steps <= 0:
            return self.start
        f = min(max(step / self.steps, 0.0), 1.0)
        return self.start + f * (self.end - self.start)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; `config_hash` identifies it in manifests."""

    LABELS: ClassVar[dict[str, str]] = {
        "method": "it names the method the run is filed under (run and artifact folders, tables, survey), not a "
                  "setting; train another method with --method NAME, or define one of your own as data: an "
                  "overrides: entry with base: METHOD in params.yaml (docs/pipeline.md)",
        "profile": "it names the profile the config started from (manifests, tables), not a setting; choose it "
                   "with --profile NAME",
    }
    """Fields that name the config rather than set it: `--set`, `--set-from` and a method's overrides refuse them
    (`method.configs`), since they would only relabel the run; the profile and the registry set them."""

    profile: str = "paper"
    """Profile the config came from: paper, release, release-lowvram or tiny."""
    method: str = "4dfy"
    """Registered method (baselines/) whose overrides were applied."""
    stages: tuple[StageConfig, ...] = ()
    """Stages in order."""
    field: FieldConfig = dc_field(default_factory=FieldConfig)
    """Scene representation."""
    background: BackgroundConfig = dc_field(default_factory=BackgroundConfig)
    """Background MLP and random-colour augmentation."""
    cameras: CameraRanges = dc_field(default_factory=CameraRanges)
    """Random training camera ranges."""
    render: RenderSchedule = dc_field(default_factory=RenderSchedule)
    """Render sizes and batches."""
    renderer: RenderConfig = dc_field(default_factory=RenderConfig)
    """Volume renderer: samples per ray, occupancy grid (CUDA), chunking; its box is the field's box."""
    lrs: LearningRates = dc_field(default_factory=LearningRates)
    """Per-group learning rates."""
    betas: tuple[float, float] = (0.9, 0.99)
    """AdamW betas."""
    eps: float = 1e-15
    """AdamW epsilon."""
    weight_decay: float = 0.01
    """AdamW weight decay (PyTorch default, as the release)."""
    weights: LossWeights = dc_field(default_factory=LossWeights)
    """Loss weights."""
    blob_sigma: dict[str, Anneal] = dc_field(default_factory=dict)
    """Density-bias sigma per stage name, each key a name in `stages` (a stage without one: Anneal(0.5, 0.5))."""
    static_groups: tuple[str, ...] = ("static", "mlp", "background")
    """Groups trained by 3D / IMG updates (the dynamic grid stays frozen); at least one."""
    video_groups: tuple[str, ...] = ("static", "dynamic", "mlp", "background")
    """Groups trained by video updates (release: all; ('dynamic',) freezes the static modules); at least one."""
    guidance: dict[str, PriorConfig] = dc_field(default_factory=dict)
    """Typed config of the prior behind each update type ('3d', 'img', 'video'); built only if drawn. The stages a
    prior names (its `stage_refs()`: the ramp's anneal stages) must be stages of the run."""
    checkpoint_every: int = 1000
    """Steps within a stage between periodic checkpoints (plus one at each stage end)."""
    checkpoint_every_s: float = 600.0
    """Also checkpoint when this many seconds passed since the last one (0: off), so short stages count too."""
    heartbeat_s: float = 30.0
    """When the output is not a terminal, print one progress line at most this often (seconds)."""
    preview_every: int = 1000
    """Steps between preview images (0: off)."""
    log_every: int = 10
    """Steps between JSONL log lines."""
    preview_frames: int = 16
    """Frames of the orbit preview video written at the end of a run (0: none; eval videos: `fourdfy render`)."""
    seed: int = 0
    """Seed of every random draw of the run."""
    device: str = "auto"
    """'auto' (cuda if available), 'cpu' or 'cuda'."""
    tf32: bool = False
    """TensorFloat-32 for float32 matrix products in training steps on CUDA (the field's MLPs, VSD's LoRA, MVDream at
    its float32 default): faster on Ampere and newer; 10-bit mantissas, where the release runs float32.
    Execution-only (not hashed)."""

    def __post_init__(self) -> None:
        names = [s.name for s in self.stages]
        # names key checkpoints, logs, timings and update counts; `Stage1` and `stage1` would be one checkpoint file
        # on a case-insensitive file system (macOS, Windows)
        if len({n.lower() for n in names}) != len(names):
            raise ValueError(f"stage names must differ (case ignored: they name checkpoint files), got {names}")
        configs.check_links(self)
        # torch's generator takes 64-bit seeds: a larger one failed at the trainer's start, not naming the seed
        within("seed", self.seed, 0, 2**63 - 1)
        # what the trainer divides by, or AdamW refuses only when a stage builds it: refused before a run folder
        at_least("checkpoint_every", self.checkpoint_every, 1)
        at_least("log_every", self.log_every, 1)
        at_least("preview_every", self.preview_every, 0, " (0: off)")
        at_least("preview_frames", self.preview_frames, 0, " (0: none)")
        at_least("checkpoint_every_s", self.checkpoint_every_s, 0, " (0: off)")
        at_least("heartbeat_s", self.heartbeat_s, 0)
        if not all(0 <= beta < 1 for beta in self.betas):
            raise ValueError(f"betas are AdamW's (beta1, beta2), each from 0 to below 1; got {list(self.betas)!r}")
        at_least("eps", self.eps, 0)
        at_least("weight_decay", self.weight_decay, 0)
        for name, updates in (("static_groups", "3D and IMG"), ("video_groups", "video")):
            groups = getattr(self, name)
            unknown = [g for g in groups if g not in PARAM_GROUPS]
            if unknown:  # else the trainer refuses them at the first such update
                raise ValueError(f"{name} names unknown parameter groups {unknown}; known: {', '.join(PARAM_GROUPS)}")
            if not groups:  # the stages' updates of that type would train nothing of the scene
                raise ValueError(f"{name} is empty: the {updates} updates of every stage would train none of the "
                                 f"field's parameters; name some of {', '.join(PARAM_GROUPS)} (to freeze groups in "
                                 "one stage: stages.NAME.trainable)")

    def check_links(self) -> None:
        """The checks between fields that may have to change together (`method.configs.check_links`: a batch of
        dotted keys runs them once, after its last key, so that the keys can come in any order)."""
        if self.renderer.box_radius != self.field.box_radius:
            raise ValueError(f"renderer.box_radius {self.renderer.box_radius} differs from field.box_radius "
                             f"{self.field.box_radius}: set both")
        names = [s.name for s in self.stages]
        stray = [key for key in self.blob_sigma if key not in names]
        if stray:  # `sigma` would fall back to the constant default for the stage it was meant for
            keys = ", ".join(f"blob_sigma.{key}" for key in stray)
            raise ValueError(f"{keys} {'names' if len(stray) == 1 else 'name'} no stage of the run (stages: "
                             f"{', '.join(names) or 'none'}), so the anneal would be ignored; key blob_sigma by stage "
                             "name (renaming a stage by --set, set blob_sigma in the same command)")
        # a prior's fields that name stages (its timestep ramp's), which it asks by name at each call: a name of no
        # stage would leave the ramp unused without a word
        stray = {f"guidance.{update}.{key}": bad for update, prior in self.guidance.items()
                 for key, refs in prior.stage_refs().items()
                 if (bad := [name for name in refs if name not in names])}
        if stray:
            says = ", ".join(f"{key} names {', '.join(bad)}" for key, bad in stray.items())
            one = sum(map(len, stray.values())) == 1
            raise ValueError(f"{says}, but the run has no stage of {'that name' if one else 'those names'} (stages: "
                             f"{', '.join(names) or 'none'}), so the prior would ignore {'it' if one else 'them'}; "
                             "name stages of the run (renaming a stage by --set, set "
                             f"{' and '.join(stray)} in the same command)")

    def stage(self, name: str) -> StageConfig:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def loss_weights(self, stage: StageConfig) -> LossWeights:
        """The loss weights of `stage`'s updates: the run's `weights` with the stage's own `weights` applied."""
        if not stage.weights:
            return self.weights
        kinds = {f.name: type(getattr(self.weights, f.name)) for f in dataclasses.fields(LossWeights)}
        return dataclasses.replace(self.weights, **{k: kinds[k](v) for k, v in stage.weights.items()})

    def sigma(self, stage: str, step: int) -> float:
        return self.blob_sigma.get(stage, Anneal(0.5, 0.5))(step)

    def update_types_used(self, start: int = 0, stop: int | None = None) -> list[str]:
        """Update types that stages[start:stop] with steps can draw, in UPDATE_TYPES order."""
        stages = [s for s in self.stages[start:stop] if s.steps > 0]
        return [u for u in UPDATE_TYPES if any(s.update_probabilities()[u] > 0 for s in stages)]

    def trainable_groups(self, stage: StageConfig, update: str) -> tuple[str, ...]:
        """The field's parameter groups an `update` of `stage` trains. A stage's own `trainable` list applies
        only after an earlier stage trained: a run that starts at that stage (single_stage, wo_3d_img)
        trains from scratch, so every group by update type (`static_groups` / `video_groups`)."""
        index = self.stages.index(stage)
        if stage.trainable is not None and any(s.steps > 0 for s in self.stages[:index]):
            return stage.trainable
        return self.video_groups if update == "video" else self.static_groups

    def to_dict(self) -> dict:
        return configs.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """The config saved in a run's manifest (`to_dict` form), typed and checked again."""
        return configs.from_dict(cls, data)

    def stage_prefix_hash(self, n_stages: int) -> str:
        """Hash of what determines the state after the first `n_stages` stages (for sharing them between methods).

        Everything but the later stages, the method's name, the output cadence (previews, logs) and what only
        updates these stages never draw read counts: two configs with equal prefix hashes train bit-identical
        weights through those stages on the same device. What the undrawn updates read: their priors (built
        before training, to fail early on missing weights, but never called, and training draws from no global
        RNG), the weights of those priors' losses (the run's and the stages' own), and for video the clip size and
        the stages' `video_lr_scale`. So a method that changes only the video loss shares stages 1-2 with 4dfy.
        EXECUTION_ONLY options count where they are set in what the stages use (they change float rounding).
        """
        d = self.to_dict()
        d["stages"] = d["stages"][:n_stages]
        for key in ("method", "device", "preview_every", "log_every", "heartbeat_s", "preview_frames"):
            d.pop(key, None)
        drawn = set(self.update_types_used(0, n_stages))
        read = {w for u in drawn if u in self.guidance for w in self.guidance[u].loss_weights}
        for update in set(self.guidance) - drawn:
            for weight in set(self.guidance[update].loss_weights) - read:
                for weights in (d["weights"], *(s.get("weights", {}) for s in d["stages"])):
                    weights.pop(weight, None)
            d["guidance"].pop(update)
        if "video" not in drawn:
            d["render"].pop("video_size", None)
            for s in d["stages"]:
                s.pop("video_lr_scale", None)
        digest = _hash(d)
        execution = execution_options(d, set_only=True)
        if execution:
            text = digest + json.dumps(execution, sort_keys=True, default=str)
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return digest

    def config_hash(self) -> str:
        """Hash of the resolved config, device excluded (it does not change what is trained)."""
        d = self.to_dict()
        d.pop("device", None)
        return _hash(d)


HASH_NEUTRAL = {("renderer", "grad_max_samples"): None, ("stages", "*", "grad_max_samples"): None,
                ("stages", "*", "trainable"): None, ("stages", "*", "weights"): {},
                ("stages", "*", "video_lr_scale"): 1.0, ("guidance", "*", "frozen", "half_dtype"): "float16"}
"""Options added after CONFIG_SCHEMA 2, with the value that changes nothing: left out of the hash while they
hold it, so a run made before the option existed keeps its hash (and resumes). A new option goes here;
'*' stands for every entry of a list or every value of a dict."""


EXECUTION_ONLY = {("renderer", "recompute_field"): RenderConfig.recompute_field,
                  ("renderer", "recompute_chunk"): RenderConfig.recompute_chunk,
                  ("guidance", "*", "frozen", "vae_gradient_checkpointing"):
                      FrozenModelOptions.vae_gradient_checkpointing,
                  ("guidance", "*", "frozen", "channels_last"): FrozenModelOptions.channels_last,
                  ("guidance", "*", "frozen", "compile"): FrozenModelOptions.compile,
                  ("guidance", "*", "frozen", "compile_vae_encoder"): FrozenModelOptions.compile_vae_encoder,
                  ("guidance", "*", "frozen", "compile_regional"): FrozenModelOptions.compile_regional,
                  ("guidance", "*", "frozen", "cuda_graph"): FrozenModelOptions.cuda_graph,
                  ("tf32",): TrainConfig.tf32}
"""Options that change how an update is computed, not what it computes (activation checkpointing, TF32 matrix
products, memory format, compilation, CUDA graphs), with their defaults. Left out of `config_hash` at any value, like the device: a run can resume with them switched, and
continues the same config, though not bit-identically (they change float rounding: the field's regions, the
VAE's per-image encoding). `stage_prefix_hash` keeps the ones that are set (on the priors its stages draw), so
stages are only shared between runs that compute them alike."""

_ANY = object()


def _leaves(node, path: tuple, prefix: str = ""):
    """(dotted key, container, key) of every entry of a config dict that `path` names; '*' stands for every
    entry of a list or every value of a dict."""
    head, *rest = path
    if not rest:
        if isinstance(node, dict) and head in node:
            yield f"{prefix}{head}", node, head
        return
    if head == "*":
        children = enumerate(node) if isinstance(node, list) else node.items() if isinstance(node, dict) else []
    else:
        children = [(head, node[head])] if isinstance(node, dict) and head in node else []
    for key, child in children:
        yield from _leaves(child, tuple(rest), f"{prefix}{key}.")


def _execution_items(d: dict) -> list[tuple[str, object, object]]:
    """(dotted key, value, default) of every EXECUTION_ONLY option present in a config dict."""
    return [(k, node[key], default) for path, default in EXECUTION_ONLY.items()
            for k, node, key in _leaves(d, path)]


def execution_options(d: dict, set_only: bool = False) -> dict:
    """The EXECUTION_ONLY values of a config dict (`TrainConfig.to_dict()`) by dotted key (`set_only`: only
    those that differ from their defaults)."""
    return {k: v for k, v, default in _execution_items(d) if not set_only or v != default}


def execution_changes(there: dict, here: dict) -> dict:
    """{dotted key: [value there, value here]} of the EXECUTION_ONLY options that differ between two config
    dicts; an option missing there (a config saved before it existed) held its default."""
    old = execution_options(there)
    return {k: [old.get(k, default), v] for k, v, default in _execution_items(here) if old.get(k, default) != v}


def _drop_neutral(node, path: tuple, neutral) -> None:
    """Delete the entries at `path` that hold `neutral` (`_ANY`: whatever they hold)."""
    for _, container, key in list(_leaves(node, path)):
        if neutral is _ANY or container[key] == neutral:
            del container[key]


def _hash(d: dict) -> str:
    d = json.loads(json.dumps(d, default=str))  # a deep copy of plain values
    for path, neutral in [*HASH_NEUTRAL.items(), *((p, _ANY) for p in EXECUTION_ONLY)]:
        _drop_neutral(d, path, neutral)
    d = {"schema": CONFIG_SCHEMA, **d}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def replace(obj, **changes):
    """A copy with fields set by dotted keys ('weights.sds_video', 'stages.stage3.steps',
    'guidance.img.guidance_scale'), each checked against the config schema (see `method.configs`). The code API:
    it may set `TrainConfig.LABELS` (the profiles name themselves, the registry names the method it applies)."""
    return configs.set_keys(obj, changes, labels=True)  # the code that builds a config names it (`LABELS`)


def _flat(d, prefix: str = "") -> dict:
    """A config dict as {dotted key: value}; stages by their names, as `--set` writes them."""
    if isinstance(d, list) and d and all(isinstance(x, dict) and "name" in x for x in d):
        d = {x["name"]: x for x in d}
    if not isinstance(d, dict) or not d:  # an empty mapping or list is a value of its own
        return {prefix[:-1]: d}
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}."))
    return out


def config_differences(there: dict, here: dict, limit: int = 4) -> list[str]:
    """The hashed settings that differ between two config dicts (`TrainConfig.to_dict()`, e.g. a checkpoint's
    and this run's), as "key 'there' there, 'here' here" phrases, at most `limit` and then a count."""
    def hashed(d: dict) -> dict:  # an option holding its neutral value counts as absent, as in the hash
        d = json.loads(json.dumps(d, default=str))
        for path, neutral in HASH_NEUTRAL.items():
            _drop_neutral(d, path, neutral)
        return _flat(d)

    a, b = hashed(there), hashed(here)
    ignored = {"device", *execution_options(there), *execution_options(here)}  # not hashed
    keys = [k for k in sorted(set(a) | set(b)) if k not in ignored and a.get(k) != b.get(k)]
    parts = [f"{k} {a.get(k)!r} there, {b.get(k)!r} here" for k in keys[:limit]]
    if len(keys) > limit:
        parts.append(f"and {len(keys) - limit} more setting(s)")
    return parts


def run_differences(saved: dict, config: dict | None, prompt: str, limit: int = 4) -> list[str]:
    """What differs between a saved run (a checkpoint's or manifest's `prompt` and `config`) and this request:
    the prompt, then `config_differences` (none when either config is missing: early checkpoints kept none)."""
    parts = []
    if saved.get("prompt") != prompt:
        parts.append(f"prompt {saved.get('prompt')!r} there, {prompt!r} here")
    if config is not None and isinstance(saved.get("config"), dict):
        parts += config_differences(saved["config"], config, limit)
    return parts

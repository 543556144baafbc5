"""What the three priors share: the typed config base, the call contract, the frozen-model options and
their one loader template, and render -> latents."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from method.ranges import RangeError, one_of, ordered, within

from .loading import HALF_DTYPES, ModelMismatchError, freeze, load_pretrained, place, use_sdpa, weights_dtype
from .prompts import PromptProcessor


PRIOR_LOSS_WEIGHTS = ("sds", "vsd", "lora", "sds_video")
"""The `LossWeights` fields that weight priors' losses (the others weight regularisers)."""


class PriorConfig:
    """Base of every prior's typed config (MVDream, VSD, Zeroscope, the oracle).

    A subclass is a frozen dataclass with a `kind` field (its discriminator in saved configs) and a
    class attribute `target = "module:Class"` naming the `Guidance` it builds, imported lazily so that
    configs stay cheap to load. `KINDS` maps each kind to its config class, also lazily.
    """

    target: ClassVar[str] = ""
    loss_weights: ClassVar[tuple[str, ...]] = ()  # a subset of PRIOR_LOSS_WEIGHTS
    """The `LossWeights` fields of the losses its `Guidance` returns (`loss_<name>`; tested against `loss_names`)."""
    timestep_ranges: ClassVar[tuple[str, ...]] = ("t_range",)
    """Its fields that hold timestep fractions (min, max), checked when the config is made (`check_timestep_ranges`)."""
    KINDS: ClassVar[dict[str, str]] = {
        "mvdream": "method.guidance.mvdream:MVDreamConfig",
        "vsd": "method.guidance.vsd:VSDConfig",
        "zeroscope": "method.guidance.zeroscope:ZeroscopeConfig",
        "oracle": "method.oracle.prior:OracleConfig",
    }

    @classmethod
    def config_class(cls, kind: str, where: str = "") -> type:
        """The config class of `kind`; `where` is the dotted key of the entry (`guidance.img`), for the message."""
        if kind not in cls.KINDS:
            key = f"{where}.kind" if where else "kind"
            raise ValueError(f"{key} = {kind!r} is an unknown prior kind; known: {', '.join(sorted(cls.KINDS))}")
        return load_attr(cls.KINDS[kind])

    @classmethod
    def from_config_dict(cls, data: dict, where: str = "") -> "PriorConfig":
        """The config of the kind named in `data["kind"]` (used by `method.configs.from_dict`)."""
        from method.configs import from_dict

        return from_dict(cls.config_class(data.get("kind", ""), where), data, where)

    def __post_init__(self) -> None:
        # the discriminator must name this class, or a saved config would come back as another kind
        expected = type(self).__dataclass_fields__["kind"].default
        if self.kind != expected:
            # the kind says which prior the entry is: another prior replaces the whole entry
            raise RangeError("kind", f"must be {expected!r} (for another prior, set the entry itself to a mapping "
                                     f"with that kind, e.g. {json.dumps({'kind': self.kind})})", self.kind)
        self.validate()

    def validate(self) -> None:
        """Fail when the config is made, not at the first step, on an unknown choice or a value out of range
        (each prior extends it with the ranges of its own fields). Errors are `RangeError`s naming the field, which
        `method.configs` names by the key `--set` writes (`guidance.img.cfg_form`)."""
        check_choices(self)
        check_timestep_ranges(self)

    def stage_refs(self) -> dict[str, tuple[str, ...]]:
        """{field: the stage names it holds} for `TrainConfig.check_links`, which refuses a name of no stage of the
        run; a prior whose fields name no stages (Zeroscope) keeps this one."""
        return {}

    def build(self, device: torch.device | str = "cpu", where: str = "") -> "Guidance":
        """The prior this config describes, with its weights loaded. `where` is the dotted key of its entry in the
        run's config (`guidance.img`): missing weights are then named by the key a user sets (`guidance.img.model`)
        rather than by this class's field (`VSDConfig.model`)."""
        cls = load_attr(self.target)
        # only the priors that load weights name keys in their messages (the oracle loads none)
        return cls(self, device=device, where=where) if issubclass(cls, FrozenPrior) else cls(self, device=device)


def build_prior(config: PriorConfig, device: torch.device | str = "cpu", where: str = "") -> "Guidance":
    """The one way to turn a prior config into a `Guidance` (imports the prior's module lazily); `where` as in
    `PriorConfig.build`."""
    if not isinstance(config, PriorConfig):
        raise TypeError(f"build_prior needs a PriorConfig (MVDreamConfig, VSDConfig, ...), got {type(config).__name__}")
    return config.build(device, where)


@dataclass(frozen=True)
class FrozenModelOptions:
    """How the frozen pretrained parts (UNets, VAE, text encoder) run: precision, attention, memory."""

    half_precision: bool = True
    """Frozen weights in `half_dtype` on CUDA (always float32 on CPU); trainable LoRA / camera MLP stay float32."""
    half_dtype: str = "float16"
    """The half type on CUDA: float16 (the release) or bfloat16 (float32's exponent range, tensor-core speed)."""
    sdpa: bool = True
    """PyTorch scaled-dot-product attention in the UNets (False: diffusers' plain matmul-softmax attention)."""
    vae_slicing: bool = False
    """Encode the images / frames through the VAE one at a time (lower peak memory; the same result up to float
    rounding, since convolutions round differently per batch size)."""
    vae_gradient_checkpointing: bool = False
    """Recompute the VAE encoder's blocks in backward (diffusers' gradient checkpointing), one image at a time
    (it slices, whatever `vae_slicing` says: a block recomputed for a whole batch would hold nearly what it
    saved): about 1/14 of the encoder's activations held, one more encoder pass; the same gradients up to
    float rounding (per-image convolutions; bit-identical for one image). benchmarks/activation_memory.py."""
    channels_last: bool = False
    """The 2D UNets in channels_last (NHWC) memory format, faster convolutions on tensor-core GPUs; Zeroscope's
    UNet3D keeps its layout (its temporal convolutions are 3D)."""
    compile: bool = False
    """torch.compile the UNets' forward passes: the first updates are slow while it compiles (on CPU it needs a
    C compiler); the same function up to float rounding."""
    compile_vae_encoder: bool = False
    """torch.compile the VAE encoder, which runs with gradient (forward and backward compiled), likewise."""
    compile_regional: bool = False
    """With `compile` / `compile_vae_encoder`: compile each block (ResNet, transformer, temporal layer, resampler)
    instead of the whole module, so blocks of one shape share a graph: a fraction of the cold compile time, at the
    cost of the fusions across block borders (`REGIONAL_BLOCKS`)."""
    cuda_graph: bool = False
    """On CUDA, replay each frozen UNet's forward without gradient as a CUDA graph, one per input shape (the host's
    kernel launches, not the GPU's work, bound small-latent UNets; method/guidance/cuda_graphs.py): the same kernels,
    so the same result, and a few GiB held per shape; ignored on CPU and for a UNet with trained weights (VSD's LoRA)."""

    def __post_init__(self):
        one_of("half_dtype", self.half_dtype, HALF_DTYPES)


def load_attr(spec: str):
    """'package.module:attr' -> the attribute (imported on first use)."""
    import importlib

    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


class Guidance:
    """Contract of every prior:
    `__call__(rgb, cameras, prompt, step, generator=None, stage=None, times=None) -> {loss_<name>: tensor}`.

    rgb is the renderer's (B, H, W, 3) output in [0, 1] with gradient; the returned losses deliver the
    score-distillation gradient to it by backpropagation. `step` is the step within the current stage
    and every schedule is a pure function of (stage, step); all random draws come from `generator`.
    `times` (B,) are the scene times of the renders: the trainer always passes them, priors that do
    not need them ignore them. After a call, `last` holds the draws and intermediate tensors of that
    call (timesteps, noise, latents, predictions, grad) for diagnostics and tests.
    """

    loss_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.last: dict[str, Tensor] = {}

    def __call__(self, rgb: Tensor, cameras, prompt: str, step: int, generator: torch.Generator | None = None,
                 stage: str | None = None, times: Tensor | None = None) -> dict[str, Tensor]:
        raise NotImplementedError(f"{type(self).__name__} does not implement the guidance call")

    def update(self, step: int) -> None:
        """Per-step hook. Schedules here are pure functions of `step`, so nothing needs updating."""

    def trainable_parameters(self) -> list[Tensor]:
        return []

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no trainable state, got keys {sorted(state)}")


class Part(NamedTuple):
    """One pretrained component of a prior, read from the model id in a config field."""

    loader: str
    """'module:Class' with a `from_pretrained` (a diffusers model or scheduler)."""
    field: str
    """Config field holding the folder / hub id / tiny id."""
    subfolder: str
    """Sub-folder of that model (unet, vae, scheduler)."""


class FrozenPrior(Guidance):
    """A prior built on frozen pretrained parts (MVDream, VSD, Zeroscope): the one loader template.

    Subclasses call `super().__init__(cfg, device)`, then `load_parts` and `load_text_encoder`. Every
    part can be passed prebuilt in `models` (random-weight full-size benchmarks); missing weights
    raise one ModelNotFoundError naming the config field (`key`). `where` is the dotted key of the prior's entry in
    the run's config (`guidance.img`, passed by the trainer), '' for a prior built in code.
    """

    label: ClassVar[str] = ""

    def __init__(self, cfg: PriorConfig, device: torch.device | str = "cpu", where: str = ""):
        super().__init__()
        self.cfg = cfg
        self.where = where
        self.device = torch.device(device)
        self.dtype = weights_dtype(self.device, cfg.frozen.half_precision, cfg.frozen.half_dtype)

    def key(self, field: str) -> str:
        """How messages name `field`: the key a user sets (`guidance.img.model`) when the entry is known, else the
        config class's field (`VSDConfig.model`, what code that builds the prior sets)."""
        return f"{self.where}.{field}" if self.where else f"{type(self.cfg).__name__}.{field}"

    def _kw(self, field: str, hint: str = "") -> dict:
        key = self.key(field)
        return dict(role=f"{self.label} ({key if self.where else field})", field=key, hint=hint.replace("{key}", key),
                    default_id=str(getattr(type(self.cfg), field, "")))

    def load_parts(self, parts: dict[str, Part], models: dict, hint: str = "") -> dict:
        """name -> the frozen module on this device and dtype, or the scheduler's config dict."""
        out = {}
        for name, part in parts.items():
            is_scheduler = part.loader.endswith("Scheduler")
            if name in models:
                value = models[name]
            else:
                kwargs = {} if is_scheduler else {"torch_dtype": self.dtype}
                value = load_pretrained(load_attr(part.loader), getattr(self.cfg, part.field), part.subfolder,
                                        **self._kw(part.field, hint), **kwargs)
            # a scheduler is kept as its config dict (NoiseSchedule is built from it)
            out[name] = dict(getattr(value, "config", value)) if is_scheduler else self.frozen(value)
        return out

    def frozen(self, module: torch.nn.Module) -> torch.nn.Module:
        return place(freeze(module), self.device, self.dtype)

    def apply_options(self, unets: list, vae) -> None:
        """The FrozenModelOptions that act on modules: attention kind, VAE slicing and checkpointing, memory
        format, compilation, CUDA graphs."""
        from method.guidance.cuda_graphs import graph_forward

        frozen = self.cfg.frozen
        if (frozen.compile or frozen.compile_vae_encoder) and self.device.type == "cpu":
            check_cpu_compiler(f"{self.label} (frozen.compile / frozen.compile_vae_encoder)")
        compile_module = compile_blocks if frozen.compile_regional else compile_whole
        for unet in unets:
            use_sdpa(unet, frozen.sdpa)
            # channels_last is a rank-4 layout: a module with 3D convolutions cannot take it
            if frozen.channels_last and all(p.dim() != 5 for p in unet.parameters()):
                unet.to(memory_format=torch.channels_last)
            if frozen.compile and not is_compiled(unet):  # not twice (one module shared by two priors)
                compile_module(unet)
            if frozen.cuda_graph and self.device.type == "cuda":
                graph_forward(unet)  # after compiling: a graph replays the compiled kernels
        if frozen.vae_slicing:
            vae.enable_slicing()
        if frozen.vae_gradient_checkpointing:
            vae.enable_gradient_checkpointing()
            vae.enable_slicing()
        if frozen.compile_vae_encoder and not is_compiled(vae.encoder):
            compile_module(vae.encoder)

    def check_text_width(self, unet, unet_field: str, text_field: str) -> None:
        """ModelMismatchError unless the text encoder of `text_field` gives embeddings as wide as the UNet of
        `unet_field` attends to (its `cross_attention_dim`): models of two families load, then fail at the first step
        with a shape error, after the run has started. Parts that do not say their widths (stand-ins) are not
        checked."""
        width = self.prompts.width
        dims = getattr(getattr(unet, "config", None), "cross_attention_dim", None)
        dims = sorted(set(dims)) if isinstance(dims, (list, tuple)) else [dims]
        if width is None or None in dims or dims == [width]:
            return
        text_key, unet_key = self.key(text_field), self.key(unet_field)
        fix = (f"set `{text_key}` to a whole copy of one model" if text_key == unet_key else
               f"set `{text_key}` and `{unet_key}` to models of one family")
        raise ModelMismatchError(
            f"{self.label}: the text encoder of `{text_key}` ({getattr(self.cfg, text_field)!r}) gives embeddings of "
            f"width {width}, but the UNet of `{unet_key}` ({getattr(self.cfg, unet_field)!r}) attends to width "
            f"{', '.join(map(str, dims))} (its cross_attention_dim), so the first step would fail; {fix} (SD 2.x, "
            "MVDream and Zeroscope: 1024; SD 1.x: 768)", text_key if text_field != "model" else unet_key)

    def check_prediction(self, schedule, field: str, fix: str) -> None:
        """ModelMismatchError unless the model of `field` predicts epsilon (its scheduler's `prediction_type`), as the
        score-distillation losses of MVDream, VSD's pretrained model and Zeroscope assume; `fix` says what to set."""
        if schedule.prediction_type == "epsilon":
            return
        key = self.key(field)
        raise ModelMismatchError(
            f"{self.label} ({key}): the model {getattr(self.cfg, field)!r} predicts {schedule.prediction_type!r} (its "
            f"scheduler/scheduler_config.json), and {self.label} needs an epsilon-prediction model here; {fix}", key)

    def load_text_encoder(self, field: str, models: dict) -> PromptProcessor:
        """The frozen CLIP text encoder (tokenizer/ + text_encoder/) of the model in `field`."""
        kw = self._kw(field)
        role = f"{self.label} text encoder ({kw['field'] if self.where else field})"
        return PromptProcessor(getattr(self.cfg, field), self.device, self.dtype, role=role,
                               field=kw["field"], tokenizer=models.get("tokenizer"),
                               text_encoder=models.get("text_encoder"), default_id=kw["default_id"])


COMPILED_GRAPHS_PER_FUNCTION = 64
"""Room for the static graphs of every prior's shapes and gradient modes (PyTorch's default, 8, is near what the
`paper` profile's priors need between them; past it, new shapes would silently run uncompiled)."""


def compiled(fn):
    """`torch.compile(fn)` with a static graph per input shape. Each prior calls its parts with a few fixed shapes
    (per stage and batch), but the priors share diffusers' classes, whose compiled code PyTorch caches per
    function: without `dynamic=False` the second prior's shapes would make the graphs symbolic (slower kernels;
    with torch 2.14 on CPU, the VAE encoder's then fails to compile). All those graphs count against one limit
    per function, which is raised here (process-wide: only when a run asks for compilation)."""
    import torch._dynamo.config as dynamo_config

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, COMPILED_GRAPHS_PER_FUNCTION)
    out = torch.compile(fn, dynamic=False)
    out.fourdfy_compiled = True
    return out


REGIONAL_BLOCKS = frozenset({"ResnetBlock2D", "Transformer2DModel", "TransformerTemporalModel", "TemporalConvLayer",
                             "Downsample2D", "Upsample2D", "Attention"})
"""diffusers' classes that `compile_blocks` compiles one by one (the outermost where they nest: an `Attention`
alone only where no transformer holds it, as in the VAE's middle block). Every UNet and VAE encoder of the three
priors is made of them, and they hold nearly all the compute; what lies between (time embedding, conv_in/out,
skip concatenations) stays eager."""

REGIONAL_GRAPHS_PER_FUNCTION = 512
"""Room for the graphs of one block class's forward in `compile_blocks`: its instances share the function, so every
channel count, resolution, batch and gradient mode of every prior counts against one limit."""


def compile_whole(module: torch.nn.Module) -> None:
    """Compile `module.forward` as one graph (per input shape)."""
    # an instance attribute: the module's call and its state dict stay the module's own
    module.forward = compiled(module.forward)


def compile_blocks(module: torch.nn.Module) -> int:
    """Regional compilation: compile the forward of each of `module`'s outermost `REGIONAL_BLOCKS` (the number
    returned) instead of the whole. Blocks of one class and one shape share a graph (their weights are inputs of
    it), so a UNet with a dozen ResNets of four shapes compiles four; the code between blocks runs eagerly."""
    import torch._dynamo.config as dynamo_config

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, REGIONAL_GRAPHS_PER_FUNCTION)
    dynamo_config.accumulated_recompile_limit = max(dynamo_config.accumulated_recompile_limit,
                                                    8 * REGIONAL_GRAPHS_PER_FUNCTION)
    count, pending = 0, list(module.children())
    while pending:
        child = pending.pop()
        if type(child).__name__ in REGIONAL_BLOCKS:
            if not _forward_compiled(child):
                compile_whole(child)
            count += 1
        else:
            pending.extend(child.children())
    if count == 0:
        raise ValueError(f"frozen.compile_regional: {type(module).__name__} has none of the blocks it compiles "
                         f"({', '.join(sorted(REGIONAL_BLOCKS))}); compile it whole instead")
    return count


def check_cpu_compiler(what: str) -> None:
    """Fail before training when torch.compile cannot build CPU kernels: inductor needs a C++ compiler there,
    and without one it would fail at the first update, inside the run."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # another PyTorch layout: let torch.compile speak for itself
        return
    try:
        get_cpp_compiler()
    except Exception as err:
        raise RuntimeError(f"{what}: torch.compile on the CPU needs a C++ compiler, and none was found "
                           f"({type(err).__name__}); install g++ (or set CXX), or leave the compile options "
                           "off") from None


def _forward_compiled(module) -> bool:
    return getattr(vars(module).get("forward"), "fourdfy_compiled", False)


def is_compiled(module) -> bool:
    """Whether `module.forward`, or the forward of one of its blocks (`compile_blocks`), is already `compiled`
    (another wrapper of forward does not count)."""
    return any(_forward_compiled(m) for m in module.modules())


def resize_nchw(rgb: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, H, W, 3) in [0, 1] -> (B, 3, h, w), bilinearly resized (align_corners=False, as the release)."""
    x = rgb.permute(0, 3, 1, 2)
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    return x


def encode_images(vae, images01: Tensor, sample: bool, generator: torch.Generator | None,
                  dtype: torch.dtype) -> Tensor:
    """VAE latents (scaled by the VAE's scaling_factor, float32) of images in [0, 1], with gradient.

    sample=True draws from the posterior (the release); False uses its mean (deterministic).
    """
    x = (images01 * 2.0 - 1.0).to(dtype)
    dist = vae.encode(x).latent_dist
    z = dist.sample(generator=generator) if sample else dist.mean
    return z.float() * vae.config.scaling_factor


def check_choices(cfg) -> None:
    """Fail on an unknown CFG form or weighting (called when a prior config is made)."""
    from .common import CFG_FORMS, WEIGHTINGS

    for field, known in (("cfg_form", CFG_FORMS), ("weighting", WEIGHTINGS)):
        value = getattr(cfg, field, None)
        if value is not None and value not in known:
            raise RangeError(field, f"must be one of ({', '.join(known)})", value)


def check_timestep_ranges(cfg: PriorConfig) -> None:
    """Fail on timestep fractions (min, max) outside [0, 1] or with min > max, in the fields `cfg.timestep_ranges`
    names, when the config is made (`TimestepRange` would refuse them only at the first call that uses them)."""
    for field in cfg.timestep_ranges:
        value = getattr(cfg, field)
        within(field, value, 0, 1, " (fractions of the diffusion steps)")
        ordered(field, value)


def check_rgb(rgb: Tensor, name: str) -> None:
    if rgb.dim() != 4 or rgb.shape[-1] != 3:
        raise ValueError(f"{name} expects rgb of shape (B, H, W, 3), got {tuple(rgb.shape)}")

"""Every compared method as data: a name, a one-line description and the config changes it makes to a
profile. The trainer reads these; no method has its own code path.

Plug-in points for a new baseline (docs/adding-a-baseline.md):
- call `register(Method(...))` in code imported before `fourdfy generate`, or
- ship it in your own package under the entry-point group `fourdfy.methods` (the entry point names a
  `Method`, or a function returning one or a list of them); `fourdfy methods` discovers it. An entry point is
  known by its distribution and its name (two packages may both have `methods = ...`); one that cannot be
  registered (a broken import, a module that exits while imported, a value that is no `module:attribute`, a
  method refused as `register` refuses it, a `Method` field of the wrong type: `MethodFieldError`) is a
  `RefusedPlugin` naming itself, and a registered name it gives too is refused by `get_method` (the registered
  method would run in its place; `resolve_config` loads the plug-ins first, so `generate` and `sweep` know it). One
  that gives no method registers nothing and says so (a `warning:` line).

Overrides are dotted keys of `method.training.config.TrainConfig` (`"field.representation"`,
`"stages.stage3.p_3d"`, `"guidance.video.guidance_scale"`; a mapping for a part is merged into it,
`method.configs.merges`), checked against the config schema when the method is registered; `transform` is a
function `(TrainConfig) -> TrainConfig` for changes that depend on the profile (it must return the config; an exception in a plug-in's transform is a `MethodTransformError`
naming the method, where it came from and the function, not an internal error of fourdfy). Names are made of
ASCII letters, digits, `_` and `-` (`NAME_RULE`: they name run folders and DVC stages), are unique also when case
is ignored (run folders on a case-insensitive file system) and are not those of the other folders of
`runs/<profile>/` (`RESERVED_NAMES`: `sweep`, `.stage-cache`). A method that cannot be trained here (MAV3D: no
public code) is registered with `trainable=False` and contributes videos only (`fourdfy import-videos`). The
built-ins carry the paper's table labels (`label`, as userstudy/designs/paper.yaml gives them); in the tables a
design's own label wins, and these name the rows of outputs made without one.

Variants as data: an entry of params.yaml's `overrides:` with the reserved key `base:` (`VARIANT_KEYS`) defines
a method of its own, `variant(name, entry)`: the base's overrides, then the entry's dotted keys (a key both set
in the entry's place), then the base's transform, then the entry's keys again (`Method.variant_keys`: they hold
whatever the transform did, as `--set` values on the base do; one that does not is an error naming the entry and the
key); `register_variants` registers those of a whole `overrides:` mapping, with the checks of `register`. A
registered base's own entry of the mapping is no part of it: it changes that method's runs only
(`untaken_base_keys` names what a variant therefore does not take). Every caller (the `methods` stage, `fourdfy
generate --set-from`, `fourdfy sweep --params`, `fourdfy methods --params`) builds them here, so a variant resolves
to the same config everywhere.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from method.configs import ConfigKeyError, expand_merges, get_key, set_key, set_keys, valid_keys
from method.fields import HashGridConfig, hexplane_matching
from method.training.config import TrainConfig, replace
from prompts import method_name_too_long

ENTRY_POINT_GROUP = "fourdfy.methods"
SWEEP_DIR = "sweep"
"""`runs/<profile>/sweep/`: `fourdfy sweep`'s job logs and summary (pipelines.sweep), beside the method folders."""
STAGE_CACHE = ".stage-cache"
"""`runs/<profile>/.stage-cache/`: the first stages shared between methods (the DVC generate stages and the sweep)."""
RESERVED_NAMES = {SWEEP_DIR: "the sweep's job logs and summary (`fourdfy sweep`)",
                  STAGE_CACHE: "the stage cache shared by the methods' runs"}
"""Folders of `runs/<profile>/` beside the method folders -> what they hold: no method may take their names (its runs
would land in them). Here, below the pipeline that makes the folders, so that the registry can refuse them."""


class KeyLayer(NamedTuple):
    """One variant's own config keys, as a `Method` of it sets them again after its base's transform."""

    entry: str
    """Where they come from, as errors name it (`params.yaml: overrides.<name>`)."""
    keys: dict
    """Dotted TrainConfig keys -> typed values, in the entry's order."""


class MethodFieldError(ValueError):
    """A `Method` made with a field of the wrong type (`trainable="no"`, `overrides=[("k", 1)]`, `label=5`); one line
    naming the method and the field. `name`: the method's name as given (for a plug-in's refusal, `RefusedPlugin`)."""

    def __init__(self, text: str, name=None):
        super().__init__(text)
        self.name = name


class MethodTransformError(ValueError):
    """A method's `transform` (a plug-in's code, not fourdfy's) raised or did not return a TrainConfig; one line
    naming the method, where it was registered from, the function and what went wrong."""


@dataclass(frozen=True)
class Method:
    """One row of Table 2 / Table 3."""

    name: str
    """Registry key (also used in votes files, artifact folders and report tables); at most
    `prompts.METHOD_NAME_MAX_BYTES` (32) UTF-8 bytes, so that file names made of it and a slug fit."""
    description: str
    """One line for `fourdfy methods`."""
    overrides: dict = field(default_factory=dict)
    """Dotted TrainConfig keys -> values (checked when registered; None: none). A mapping given for a key whose part
    is one dataclass is merged into it (`method.configs.merges`), as `--set` does."""
    transform: Callable[[TrainConfig], TrainConfig] | None = None
    """Optional function applied after the overrides, for changes that depend on the profile; it must return the
    config. An error in it (not a built-in's) is a `MethodTransformError` naming the method and the function. A
    variant's keys are set again after it (`variant_keys`)."""
    trainable: bool = True
    """False for methods we only have videos of (MAV3D)."""
    source: str = "built-in"
    """Where the method was registered from (built-in, or the entry point's distribution)."""
    label: str = ""
    """Its name in the tables the pipeline makes where the design gives none (the built-ins': the paper's); ""
    shows the name itself."""
    base: str = ""
    """The method a variant was built from (`variant`: an `overrides:` entry with `base:`); "" for the others."""
    variant_keys: tuple[KeyLayer, ...] = ()
    """A variant's own keys and those of the variants it is built on (the first base's first): set again, in turn,
    after the transform, so that they win over it as `--set` values do, then checked; () for the others."""

    def __post_init__(self) -> None:
        # checked where the method is made (a plug-in's module, a function of its entry point), so that a wrong type
        # is one line naming the method and the field rather than a "trainable" string taken as true, or an
        # AttributeError deep inside whatever first reads the field (every command that loads the plug-ins)
        def refuse(field_name: str, must: str, value=None, hint: str = "") -> None:
            value = getattr(self, field_name) if value is None else value
            raise MethodFieldError(f"method {self.name!r}: {field_name} must be {must}, got {value!r} "
                                   f"({type(value).__name__}){hint}", self.name)

        if not isinstance(self.description, str):
            refuse("description", "a string (one line for `fourdfy methods`)")
        overrides = {} if self.overrides is None else self.overrides  # None: no changes, as transform=None
        example = '; e.g. overrides={"weights.sds_video": 0.3}'
        if not isinstance(overrides, Mapping):
            refuse("overrides", "a mapping of dotted config keys to values", hint=example)
        if bad := [k for k in overrides if not isinstance(k, str)]:
            refuse("overrides", "a mapping whose keys are dotted config keys (strings)", bad[0],
                   f" as a key{example}")
        object.__setattr__(self, "overrides", dict(overrides))  # frozen; a dict also where a Mapping was given
        if self.transform is not None and not callable(self.transform):
            refuse("transform", "a function (TrainConfig) -> TrainConfig, or None")
        if not isinstance(self.trainable, bool):
            refuse("trainable", "True or False (False: videos only)")
        for name, must in (("label", 'a string ("": the name itself)'), ("source", "a string"),
                           ("base", "a string")):
            if not isinstance(getattr(self, name), str):
                refuse(name, must)
        if not isinstance(self.variant_keys, tuple):
            refuse("variant_keys", "a tuple of KeyLayer")

    def apply(self, cfg: TrainConfig) -> TrainConfig:
        if not self.trainable:
            raise ValueError(f"method {self.name!r} cannot be trained here: {self.description}; bring its videos "
                             f"in with `fourdfy import-videos SRC --method {self.name} --out DIR`")
        cfg = replace(cfg, method=self.name, **self.overrides)
        if self.transform is None:
            return cfg  # the overrides hold a variant's keys in order (`_after_base`): nothing can undo them
        # the transform sees a variant's keys (hexplane matches its planes to a variant's grid sizes), but may rewrite
        # them (hexplane rebuilds field.hexplane, single_grid sets static_groups): they are set again after it
        cfg = _set_again(self, self._transformed(cfg))
        _check_kept(self, cfg)
        return cfg

    def transform_name(self) -> str:
        """`module:function` of the transform, as errors name it."""
        fn = self.transform
        return f"{getattr(fn, '__module__', None) or '?'}:{getattr(fn, '__qualname__', None) or repr(fn)}"

    def _transformed(self, cfg: TrainConfig) -> TrainConfig:
        fn = self.transform
        name = self.transform_name()
        where = "" if self.source == "built-in" else f" ({self.source})"
        # a bug of the built-in transforms is fourdfy's own (an internal error with its traceback); one in another
        # package's transform must name that package, not look like fourdfy's
        if getattr(fn, "__module__", None) == __name__:
            out = fn(cfg)
        else:
            try:
                out = fn(cfg)
            except Exception as err:  # noqa: BLE001 - any bug of the plug-in, named as its own
                what = " ".join(str(err).split()) or "(no message)"
                raise MethodTransformError(
                    f"method {self.name!r}{where}: its transform {name} failed: {type(err).__name__}: {what} (the "
                    "transform is that package's code, not fourdfy's; --verbose shows its traceback)") from err
        if not isinstance(out, TrainConfig):  # e.g. a forgotten `return`: later errors would name the wrong thing
            raise MethodTransformError(
                f"method {self.name!r}{where}: its transform {name} returned "
                f"{'None' if out is None else 'a ' + type(out).__name__}, not a TrainConfig; "
                "a transform must return the config (e.g. `return replace(cfg, **changes)`, "
                "method.training.config.replace)")
        return out


def _hexplane(cfg: TrainConfig) -> TrainConfig:
    # The paper matched HexPlane's capacity to the hash grids' memory; do the same at every profile.
    from method.encodings import level_layouts

    def count(g: HashGridConfig, d: int) -> int:
        lv = level_layouts(d, g.n_levels, g.log2_hashmap_size, g.base_resolution, g.per_level_scale)
        return (lv[-1].offset + lv[-1].size) * g.n_features_per_level

    target = count(cfg.field.static_grid, 3) + count(cfg.field.dynamic_grid, 4)
    n_feat = cfg.field.static_grid.n_output_dims // 4
    planes = hexplane_matching(target, n_scales=4, n_features_per_scale=n_feat,
                               time_resolutions=cfg.field.hexplane.time_resolutions, form=cfg.field.hexplane.form)
    return replace(cfg, **{"field.representation": "hexplane", "field.hexplane": planes})


def _final_keys(layers: tuple[KeyLayer, ...]) -> list[tuple[str, str, object, list[str]]]:
    """Each key of `layers`, in turn, as (entry, key, value, its parts where the config ends with it): a stage the key
    or a later one renames under its last name (`_renamed`), since each key names the stages as they are when it is
    set, and after the transform they have their last names."""
    flat = [(layer.entry, key, value) for layer in layers for key, value in layer.keys.items()]
    return [(entry, key, value, _renamed(key, [(k, v) for _, k, v in flat[i:]]))
            for i, (entry, key, value) in enumerate(flat)]


def _covers(later: list[str], path: list[str]) -> bool:
    """Whether the key `later` sets all that `path` does (the same field, a group above it, a `*` over it)."""
    return len(later) <= len(path) and all(x == y or x == "*" for x, y in zip(later, path))


def _overlap(a: list[str], b: list[str]) -> bool:
    """Whether keys `a` and `b` set a field in common: one is the other or a group above it (`*`: any entry)."""
    return all(x == y or "*" in (x, y) for x, y in zip(a, b))


def _set_again(method: Method, cfg: TrainConfig) -> TrainConfig:
    """`cfg` (after `method`'s transform) with its variant keys set again, as one `--set` command under the stages'
    last names; a key a later one covers is left out (the later sets all it set, and the keys are one mapping)."""
    keys = _final_keys(method.variant_keys)
    again = {".".join(path): value for i, (_, _, value, path) in enumerate(keys)
             if not any(_covers(later, path) for *_, later in keys[i + 1:])}
    if not again:
        return cfg
    try:
        return set_keys(cfg, again)
    except (ConfigKeyError, ValueError) as err:  # the transform made a config the keys do not fit
        raise ValueError(f"{method.variant_keys[-1].entry}: {err} (its keys, set again after the transform "
                         f"{method.transform_name()} of its base)") from None


def _check_kept(method: Method, cfg: TrainConfig) -> None:
    """The safety net behind `_set_again`: a variant key that does not hold its value in the config `method` builds
    is an error naming the entry and the key, rather than a run training another method under its name. Not checked:
    a key a later one sets too (a `*` key then one prior's, a prior replaced after one of its keys), whose value is
    partly the later one's."""
    keys = _final_keys(method.variant_keys)
    for i, (entry, key, want, path) in enumerate(keys):
        if any(_overlap(path, later) for *_, later in keys[i + 1:]):
            continue
        where = ".".join(path)
        try:
            got = _read(cfg, where)
            if got == want:
                continue
            got = repr(got)
        except ConfigKeyError:  # a stage the transform removed or renamed
            got = "missing"
        at = "" if where == key else f" (now {where})"
        raise ValueError(f"{entry}: {key}{at} is {got} in the config of method {method.name!r}, not {want!r} as "
                         f"the entry sets (changed by its base's transform {method.transform_name()}); refused rather "
                         f"than train another method under this name (a bug of that transform or of fourdfy: please "
                         f"report it; `fourdfy generate --method {method.base} --set {key}=...` sets the key after the "
                         "transform)")


def _vsd_takes_the_3d_ramp(cfg: TrainConfig) -> TrainConfig:
    """`wo_3d`: stage 1 trains from scratch with VSD alone, so VSD takes the timestep ramp the profile gives MVDream
    there (paper: [0.02,0.98] -> [0.02,0.5] over 5k; release: [0.98,0.98] -> over 8k; tiny: over its 40 steps).
    Copied from the config, not written out, so that the ablation differs from 4dfy only by the prior in every
    profile: a fixed 5k ramp never got past its start in tiny's 40-step stage 1."""
    mv, vsd = cfg.guidance.get("3d"), cfg.guidance.get("img")
    if mv is None or not hasattr(mv, "timestep_range") or not hasattr(vsd, "t_anneal_start"):
        return cfg  # another prior in either place (a variant's own): nothing to copy, or nowhere to put it
    # the stages MVDream ramps in, under the names they have now (a variant may have renamed stage 1)
    ramped = [s.name for s in cfg.stages if mv.timestep_range(s.name).start is not None]
    ramp = mv.timestep_range(ramped[0]) if ramped else None
    if ramp is None or ramp.steps <= 0:  # MVDream has no ramp: neither has VSD
        return replace(cfg, **{"guidance.img.t_anneal_start": None, "guidance.img.t_anneal_steps": 0})
    return replace(cfg, **{"guidance.img.t_anneal_start": tuple(ramp.start), "guidance.img.t_anneal_steps": ramp.steps,
                           "guidance.img.t_anneal_stages": tuple(ramped)})


def _single_grid(cfg: TrainConfig) -> TrainConfig:
    # One "large" 4D grid: twice the table size, about the two grids' combined capacity. It is the `dynamic`
    # group, so stages 1-2 train it at t = 0 and stage 3's static-LR drop leaves it at 1e-2 (docs/fidelity.md).
    return replace(cfg, **{"field.representation": "single_grid",
                           "field.dynamic_grid.log2_hashmap_size": cfg.field.dynamic_grid.log2_hashmap_size + 1,
                           # no static part: static updates must train the one grid
                           "static_groups": ("dynamic", "mlp", "background")})


class RefusedPlugin(NamedTuple):
    """An entry point of `fourdfy.methods` that `load_entry_points` could not register."""

    entry_point: str
    """Its name (`strong_video = my_plugin:STRONG` -> strong_video)."""
    dist: str
    """The distribution that declares it (its value where the distribution is not known)."""
    error: str
    """Why, one line naming the entry point and the distribution."""
    claims: tuple[str, ...] = ()
    """The method names it gave (known once it imported and gave methods); () when it gave none."""

    def names(self) -> tuple[str, ...]:
        """The method names it claims, or its entry point's name (usually its method's) when it gave none."""
        return self.claims or (self.entry_point,)


class _PluginLoadError(ValueError):
    """`_load_entry_point`'s error, with the method names the entry point gave (`RefusedPlugin.claims`)."""

    def __init__(self, text: str, claims: tuple[str, ...] = ()):
        super().__init__(text)
        self.claims = claims


METHODS: dict[str, Method] = {}
_LOADED: set[tuple[str, str]] = set()
"""(distribution, entry point name) of the entry points already registered (loading is idempotent). Keyed by both:
two packages may each have an entry point `methods = pkg:all_methods`; only method names must be unique."""
_ERRORS: dict[tuple[str, str], RefusedPlugin] = {}
"""(distribution, entry point name) -> why it could not be registered (see `load_entry_points`)."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
"""A method's name: it names run folders, artifact folders and DVC stages (`generate@<name>-<prompt>`), and is a
key of `--set-from FILE:overrides.<name>`, which splits on dots (so `4dfy_v0_3`, not `4dfy_v0.3`)."""
NAME_RULE = "ASCII letters, digits, '_' and '-', starting with a letter or digit"
"""`_NAME` in words, as errors say it."""


def _name_problem(name: str) -> str | None:
    """Why `name` cannot name a method whatever else is registered (not a string, too long for file names, a
    character other than those of `NAME_RULE`, a folder of `runs/<profile>/` that is no method's: `RESERVED_NAMES`,
    case ignored as a case-insensitive file system does), or None."""
    if not isinstance(name, str):
        return f"method name {name!r} is a {type(name).__name__}, not a string"
    if (why := method_name_too_long(name)) is not None:
        return why
    reserved = {n.lower(): n for n in RESERVED_NAMES}.get(name.lower())
    if reserved is not None:
        return (f"method name {name!r} is reserved: runs/<profile>/{reserved}/ holds {RESERVED_NAMES[reserved]}, "
                f"beside the method folders, so its runs would land there (reserved: "
                f"{', '.join(map(repr, RESERVED_NAMES))}); choose another name")
    if not _NAME.fullmatch(name):  # "my/strong" would train, then its render and report stages fail
        return (f"method name {name!r} is not allowed: it names run folders, artifact folders and DVC stages "
                f"(generate@<name>-<prompt>), and --set-from splits its key on dots; use {NAME_RULE} "
                "(e.g. my_method)")
    return None


def _case_twin(name: str) -> str | None:
    """A registered name that differs from `name` only in case (None if there is none)."""
    return next((n for n in METHODS if n != name and n.lower() == name.lower()), None)


def _case_twin_text(name: str, twin: str) -> str:
    return (f"method {name!r} differs from the registered method {twin!r} ({METHODS[twin].source}) only in case: "
            f"their run folders runs/<profile>/{name}/ and runs/<profile>/{twin}/ are one folder on a case-insensitive "
            "file system (macOS, Windows); choose another name")


def _check(method: Method, overwrite: bool = False) -> None:
    """What `register` refuses: a name too long for file names or reserved (`_name_problem`), a name already taken
    (also one taken in another case), an override key the config schema does not have."""
    if (why := _name_problem(method.name)) is not None:
        raise ValueError(why)
    if (twin := _case_twin(method.name)) is not None:
        raise ValueError(_case_twin_text(method.name, twin))
    if method.name in METHODS and not overwrite:
        raise ValueError(f"method {method.name!r} is already registered (by {METHODS[method.name].source})")
    if method.trainable and method.overrides:
        from method.training.profiles import paper

        try:
            set_keys(paper(), method.overrides)  # the schema with every stage and prior present
        except (ConfigKeyError, ValueError) as err:  # an unknown key, or a value a part refuses (out of range)
            raise ValueError(f"method {method.name!r}: {err}") from None
        except (TypeError, AttributeError) as err:  # a value no check foresaw: still the method's, named
            raise ValueError(f"method {method.name!r}: its overrides cannot be applied: {type(err).__name__}: "
                             f"{err}") from None


def register(method: Method, overwrite: bool = False) -> Method:
    """Add a method to the registry (a name collision raises unless overwrite=True).

    Its overrides are checked against the config schema now, so a typo fails here with the list of
    valid keys rather than deep inside `fourdfy generate`.
    """
    _check(method, overwrite)
    METHODS[method.name] = method
    return method


for _m in (
    # labels: the paper's table labels, exactly as userstudy/designs/paper.yaml gives them (a design's own label wins
    # in the tables; these name the rows of outputs made without one: `fourdfy figure`, a design of your own)
    Method("4dfy", "4D-fy: hybrid SDS, three stages, static 3D + dynamic 4D hash grids", label="4D-fy"),
    Method("mav3d", "MAV3D (Singer et al. 2023): no public code; compared through its released videos",
           trainable=False, label="MAV3D"),
    # the static LR stays at 1e-2 in stage 3 when there is no stage 1-2 geometry to protect
    Method("wo_3d_img", "video SDS only from scratch: stages 1-2 skipped, P_3D = P_IMG = 0",
           overrides={"stages.stage1.steps": 0, "stages.stage2.steps": 0, "stages.stage3.p_3d": 0.0,
                      "stages.stage3.p_img": 0.0, "stages.stage3.static_lr_scale": 1.0}, label="w/o ∇L_3D/IMG"),
    Method("wo_3d", "no 3D-aware prior (P_3D = 0): stages 1-2 use VSD only, stage 3 VSD or video",
           overrides={"stages.stage1.p_3d": 0.0, "stages.stage1.p_img": 1.0, "stages.stage2.p_3d": 0.0,
                      "stages.stage3.p_3d": 0.0},
           transform=_vsd_takes_the_3d_ramp, label="w/o ∇L_3D"),
    Method("wo_img", "no VSD (P_IMG = 0): stage 2 is MVDream only, stage 3 MVDream or video",
           overrides={"stages.stage2.p_3d": 1.0, "stages.stage2.p_img": 0.0, "stages.stage3.p_img": 0.0},
           label="w/o ∇L_IMG"),
    Method("wo_hybrid", "no hybrid SDS in stage 3: video updates only after stages 1-2 (MAV3D-like)",
           overrides={"stages.stage3.p_3d": 0.0, "stages.stage3.p_img": 0.0}, label="w/o hybrid SDS"),
    Method("hexplane", "HexPlane backbone (six multi-scale planes) with capacity matched to the hash grids",
           transform=_hexplane, label="w/ HexPlane"),
    Method("single_stage", "stage 3 only, from scratch, with all three priors (0.5 / 0.25 / 0.25)",
           overrides={"stages.stage1.steps": 0, "stages.stage2.steps": 0, "stages.stage3.static_lr_scale": 1.0},
           label="w/ single-stage"),
    Method("single_grid", "one large 4D hash grid instead of static + dynamic grids", transform=_single_grid,
           label="w/ single hash grid"),
):
    register(_m)
BUILT_INS = tuple(METHODS)
"""The names of the built-in methods (the paper's rows), registered above, before any plug-in."""


def load_entry_points(strict: bool = True) -> list[str]:
    """Register the methods other installed packages declare under `fourdfy.methods`; returns their names.

    Broken entry points raise one error naming each of them (all at once: fixing them one run at a time is
    slow), after the good ones are registered; with `strict=False` they are skipped and kept for `refused_plugins()`
    instead (so that one broken plug-in does not stop work with the other methods). An entry point is known by its
    distribution and its name: two packages may use one entry point name; only method names must be unique.
    """
    names, broken = [], []
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        key = _entry_point_key(ep)
        if key in _LOADED:
            continue
        if key not in _ERRORS:  # a broken one is imported once per process
            try:
                names += _load_entry_point(ep)
                _LOADED.add(key)
                continue
            except _PluginLoadError as err:
                _ERRORS[key] = RefusedPlugin(str(ep.name), key[0], str(err), err.claims)
        broken.append(_ERRORS[key].error)
    if strict and broken:
        raise ValueError(broken[0] if len(broken) == 1 else
                         f"{len(broken)} plug-in entry points cannot be loaded: " + "; ".join(broken))
    return names


def _entry_point_key(ep) -> tuple[str, str]:
    """(distribution, entry point name): an entry point's identity (its value where the distribution is unknown)."""
    dist = getattr(ep, "dist", None)
    return (str(dist.name) if dist is not None else str(ep.value), str(ep.name))


def _load_entry_point(ep) -> list[str]:
    dist = getattr(ep, "dist", None)
    where = f"entry point {ep.name!r} of {dist.name if dist else ep.value}"
    # importlib.metadata's own reading of the value: one it cannot read fails inside `load` with an AttributeError
    # on None, which names nothing
    if not isinstance(ep.value, str) or md.EntryPoint.pattern.match(ep.value) is None:
        raise _PluginLoadError(f"{where}: its value {ep.value!r} is not an object reference; it must be "
                               "`module:attribute` (or `module`), e.g. `my_plugin:STRONG_VIDEO`")
    try:
        obj = _import(ep, where)
        try:
            found = obj() if callable(obj) and not isinstance(obj, Method) else obj
        except SystemExit as err:  # as at import (`_import`): the plug-in is refused, fourdfy goes on
            raise _PluginLoadError(f"{where} ({ep.value}) exited while being called (SystemExit: {err.code}); a "
                                   "plug-in's function must return its methods, not exit") from None
    except _PluginLoadError:
        raise
    except MethodFieldError as err:  # a Method it made with a field of the wrong type: the line says which
        claims = (err.name,) if isinstance(err.name, str) else ()
        raise _PluginLoadError(f"{where} ({ep.value}): {err}", claims) from None
    except Exception as err:  # a broken plug-in must name itself, not crash deep inside
        raise _PluginLoadError(f"{where} ({ep.value}) cannot be loaded: {type(err).__name__}: {err}") from None
    found = found if isinstance(found, (list, tuple)) else [found]
    # the names it claims, for a refusal: a name it gives must not quietly mean another method (`get_method`)
    claims = tuple(dict.fromkeys(m.name for m in found if isinstance(m, Method) and isinstance(m.name, str)))
    bad = [m for m in found if not isinstance(m, Method)]
    if bad:
        raise _PluginLoadError(f"{where} ({ep.value}) gave {type(bad[0]).__name__}, not a baselines.Method", claims)
    if not found:  # nothing to refuse, but a plug-in that registers nothing should not go unnoticed
        print(f"warning: {where} ({ep.value}) gave no methods (an empty {type(found).__name__}), "
              "so it registers none (an entry point names a Method, a list of them or a function returning them)",
              file=sys.stderr)
        return []
    try:
        # all of its methods or none: every one is checked before any is registered (their fields again, as a
        # Method changed after it was made, `object.__setattr__`, is made again here)
        new = [Method(**{**m.__dict__, "source": where}) for m in found]
    except MethodFieldError as err:
        raise _PluginLoadError(f"{where} ({ep.value}): {err}", claims) from None
    except Exception as err:  # noqa: BLE001 - a Method subclass with fields of its own, ...: the plug-in's
        raise _PluginLoadError(f"{where} ({ep.value}) cannot be loaded: {type(err).__name__}: {err}", claims) from None
    names = [m.name for m in new]
    try:
        for m in new:  # first: the checks below compare names as strings
            if (why := _name_problem(m.name)) is not None:
                raise ValueError(why)
        twice = sorted({n for n in names if names.count(n) > 1})
        lowered = [n.lower() for n in names]
        cased = sorted({n for n in names if lowered.count(n.lower()) > 1} - set(twice))
        if twice:
            raise ValueError(f"method(s) {', '.join(map(repr, twice))} given twice")
        if cased:  # one run folder on a case-insensitive file system, as for a registered name (`_case_twin`)
            raise ValueError(f"methods {', '.join(map(repr, cased))} differ only in case: their run folders are one "
                             "folder on a case-insensitive file system (macOS, Windows); choose other names")
        for m in new:
            _check(m)
    except ValueError as err:
        raise _PluginLoadError(f"{where}: {err}", claims) from None
    except Exception as err:  # noqa: BLE001 - a value no check foresaw: still this plug-in's, named, not fourdfy's
        raise _PluginLoadError(f"{where}: {type(err).__name__}: {err}", claims) from None
    for m in new:
        METHODS[m.name] = m
    return names


def _import(ep, where: str):
    """`ep.load()`, where a module that exits while it is imported (a training script's `parse_args()` reading
    fourdfy's own command line, a `sys.exit`) is a refused plug-in rather than the end of fourdfy's process. What it
    prints goes where it goes: held back, a logging handler it set up at import would keep writing to the holder
    for the rest of the run (the error says the lines above it are the plug-in's)."""
    try:
        return ep.load()
    except SystemExit as err:
        raise _PluginLoadError(f"{where} ({ep.value}) exited while importing (SystemExit: {err.code}; any usage "
                               "lines just above are the plug-in's, not fourdfy's); a plug-in's module must not exit "
                               "or parse the command line when it is imported (move that under "
                               "`if __name__ == \"__main__\":`)") from None


def refused_plugins() -> list[RefusedPlugin]:
    """The entry points `load_entry_points(strict=False)` could not register, in the order it met them."""
    return list(_ERRORS.values())


def plugin_errors() -> dict[tuple[str, str], str]:
    """(distribution, entry point name) -> why it could not be loaded, for those `load_entry_points(strict=False)`
    skipped."""
    return {key: refused.error for key, refused in _ERRORS.items()}


class UnknownMethodError(ValueError):
    """No registered method has this name; `head` names it (with a did-you-mean), `tail` lists the known methods
    and any broken plug-in, so that a caller naming several unknown methods can list those once."""

    def __init__(self, head: str, tail: str):
        super().__init__(head + tail)
        self.head = head
        self.tail = tail


def get_method(name: str) -> Method:
    """The registered method `name`. Built-ins need no plug-in loaded; a broken plug-in fails only a request
    that could be for it (an unknown name, or a registered name a refused plug-in gives too), and the error names
    it. The latter is known once the entry points are loaded (by a name that is not registered, `fourdfy methods`,
    the `methods` stage, `resolve_config`: every command that trains): then the registered method would run where
    the user means the plug-in's (its own `4dfy`, the second of two packages giving one name)."""
    if name not in METHODS:
        load_entry_points(strict=False)
    if name in METHODS:
        claimed = next((r for r in _ERRORS.values() if name in r.claims), None)
        if claimed is None:
            return METHODS[name]
        source = METHODS[name].source
        which = "the built-in one" if source == "built-in" else f"the one of {source}"
        raise ValueError(f"method {name!r} is refused: a plug-in that cannot be registered gives a method of this "
                         f"name too, and {which} would run in its place: {claimed.error}; rename that plug-in's "
                         "method or uninstall the plug-in")
    import difflib

    # the plug-in giving this name is installed but refused (by its entry point's name when it gave none)
    broken = next((r for r in _ERRORS.values() if name in r.claims or r.entry_point == name), None)
    if broken is not None:  # the plug-in of this name is installed but broken: not an unknown name
        raise ValueError(f"method {name!r} is a plug-in that cannot be registered: {broken.error}")
    known = ", ".join(sorted(METHODS))
    close = difflib.get_close_matches(name, list(METHODS), n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    errors = "".join(f"; {r.error}" for r in _ERRORS.values())
    raise UnknownMethodError(f"unknown method {name!r}{guess}",
                             f"; known methods: {known}{errors} (a plug-in's method needs its package installed "
                             "in this environment: docs/adding-a-baseline.md)")


VARIANT_KEYS = ("base", "label", "description")
"""Reserved keys of an entry of params.yaml's `overrides:`, next to its dotted config keys: `base:` (a registered
method) makes the entry a variant of its own name, `label:` is a method's name in the tables, `description:` a
variant's line in `fourdfy methods`."""


def config_keys(entry: dict | None) -> dict:
    """The dotted config keys of an `overrides:` entry (its reserved keys left out)."""
    return {str(k): v for k, v in (entry or {}).items() if k not in VARIANT_KEYS}


def _set_text(value) -> str:
    """`value` as `--set KEY=VALUE` reads it from YAML (`--set-from`): a non-string as JSON, a string as it is (parsed
    as JSON where the field is not a string, so YAML's `1e-3`, a string to YAML, is a number)."""
    return value if isinstance(value, str) else json.dumps(value)


def _read(cfg: TrainConfig, key: str):
    """The value at `key` of `cfg`; for a `*` key, the value every entry of the group was set to, read at the first."""
    if "*" in key:
        first = re.compile("^" + re.escape(key).replace(r"\*", r"[^.]+") + r"(?=\.|$)")
        key = next(m.group(0) for k in valid_keys(cfg) if (m := first.match(k)))
    return get_key(cfg, key)


def _renamed(key: str, later: list[tuple[str, object]]) -> list[str]:
    """The parts of `key` where the config holds it once `later` (key, value) pairs are set, `key`'s own first: a
    stage one of them renames (`stages.NAME.name`) is there under its new name."""
    parts = key.split(".")
    for other, value in later:
        group = other.split(".")
        if len(group) == 3 and group[0] == "stages" and group[2] == "name" and group[1] != "*" \
                and parts[:2] == group[:2]:
            parts[1] = str(value)  # a name is a string field
    return parts


def _typed_keys(keys: dict, where: str, schema: TrainConfig | None = None) -> dict:
    """`keys` (dotted config keys -> values) typed as `--set-from` types them, on `schema` (default: the paper
    profile, with every stage and prior). They are applied together, as a method's overrides are, so that keys that
    only hold as a whole (a renamed stage and its `blob_sigma` key or its priors' anneal stages, both box radii)
    pass; an unknown key, a value of the wrong type, one the config refuses (out of range: each part checks its own)
    or a combination it refuses is an error naming `where`. Each key's value is typed by itself where it can be set
    alone, else read back from the config the keys make together (a key that needs another of them)."""
    from method.training.profiles import paper

    schema = paper() if schema is None else schema
    # a mapping merged into a part (`renderer: {recompute_field: true}`) as the keys of its items: each holds one
    # typed value, as a dotted key does, not the whole part as the schema (the paper profile) has it, which would
    # then replace the profile's part where the keys are applied (its sample count, ...)
    texts = {k: _set_text(v) for k, v in expand_merges(schema, {str(k): _set_text(v) for k, v in keys.items()},
                                                       parse=True).items()}
    try:
        together = set_keys(schema, texts, parse=True)
        typed = {}
        for key, text in texts.items():
            try:  # by itself, as `--set` types it: a `*` key holds its own value, not one a later key gave an entry
                typed[key] = _read(set_key(schema, key, text, parse=True), key)
            except (ConfigKeyError, ValueError):
                typed[key] = _read(together, ".".join(_renamed(key, list(texts.items())[list(texts).index(key):])))
        return typed
    except (ConfigKeyError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def _schema(method: str) -> TrainConfig:
    """The paper profile (every stage and prior) with `method`'s overrides, where an entry's keys land; the profile
    alone for a name no trainable method has."""
    from method.training.profiles import paper

    try:
        base = get_method(method)
    except ValueError:  # an unknown or broken name: reported where the entries' names are checked
        return paper()
    return set_keys(paper(), base.overrides) if base.trainable and base.overrides else paper()


def check_entry_keys(name: str, entry: dict | None, source: str = "params.yaml") -> None:
    """The config keys of an `overrides:` entry without `base:` (changes to method `name`'s runs), checked against
    the config schema with `name`'s overrides as a variant's are (together): an unknown key, a bad value or a
    combination the config refuses is an error naming `source: overrides.<name>` (found where the file is read, not
    later in a config that merged them with other values)."""
    _typed_keys(config_keys(entry), f"{source}: overrides.{name}", _schema(name))


def _check_reserved(entry: dict, where: str) -> None:
    for key in VARIANT_KEYS:
        if key in entry and not (isinstance(entry[key], str) and entry[key].strip()):
            raise ValueError(f"{where}: {key}: must be a non-empty string, got {entry[key]!r}")


def _refuse_shadowing(name: str, where: str, source: str) -> None:
    """A variant may not take the name of a method registered elsewhere (built-in, plug-in, another file's
    variant); its own file may define it again (the file read after an edit)."""
    if name not in METHODS:
        load_entry_points(strict=False)  # a plug-in's name counts as taken
    old = METHODS.get(name)
    if old is None or (old.base and old.source == source):
        return
    what = f"variant of {old.base} from {old.source}" if old.base else old.source
    fix = "give the variant another name" + ("" if old.base else
                                             f", or drop base: to change the config of {old.source} {name!r}")
    raise ValueError(f"{where}: base: defines a method {name!r}, but {name!r} is already registered ({what}: "
                     f"{old.description}); {fix}")


def _after_base(base: Method, typed: dict, where: str) -> dict:
    """The overrides of a variant of `base` with the entry's typed keys: the base's, then the entry's, in order (as
    `set_keys` applies them), a key both set at the entry's place, after the entry's earlier keys (`guidance.*.X`
    then `guidance.img.X`; a prior's entry replaced, then one of its keys). One mapping applies such a key once: where
    it names another field for the base than for the entry (the entry renamed stages before it, e.g. swapped two
    names), the base's value would be lost; that is an error naming the fields to set again under their new names."""
    merged = {**{k: v for k, v in base.overrides.items() if k not in typed}, **typed}
    if not any(k in base.overrides for k in typed):
        return merged
    from method.training.profiles import paper

    want = set_keys(set_keys(paper(), base.overrides), typed)  # every stage and prior present
    got = set_keys(paper(), merged)
    if want.to_dict() == got.to_dict():
        return merged
    have = set(valid_keys(got))
    lost = {k: get_key(want, k) for k in valid_keys(want) if k not in have or get_key(got, k) != get_key(want, k)}
    shown = ", ".join(f"{k}: {json.dumps(v, default=str)}" for k, v in list(lost.items())[:4])
    both = [k for k in typed if k in base.overrides]
    one = len(both) == 1
    raise ValueError(f"{where}: {', '.join(both)} {'is' if one else 'are'} set by its base {base.name!r} too, but "
                     f"after the entry's earlier keys (a stage renamed) {'it names' if one else 'they name'} another "
                     f"field, and a method's overrides set a key once: {base.name}'s value would be lost; set it again "
                     f"in the entry under its new name ({shown})")


def variant(name: str, entry: dict, source: str = "params.yaml") -> Method:
    """The method an `overrides:` entry with `base:` defines (not registered: `register_variant`): the base's
    overrides, then the entry's dotted keys (applied in that order: a key both set comes at the entry's place), then
    the base's transform, then the entry's keys again (`Method.variant_keys`, after those of a base that is a variant:
    they win over the transform, as `--set` values do), trainable as the base is. Values are
    read as `--set-from` reads them; an unknown key, or a base no registered method has, is an error naming
    `source` and the entry (a did-you-mean `UnknownMethodError` for the base)."""
    where = f"{source}: overrides.{name}"
    if not isinstance(entry, dict) or "base" not in entry:
        raise ValueError(f"{where}: a variant needs base: (the registered method it changes), e.g. base: 4dfy")
    if not _NAME.fullmatch(name):
        raise ValueError(f"{where}: {name!r} cannot name a method (it names run folders and DVC stages, and "
                         f"--set-from splits its key on dots); use {NAME_RULE} (e.g. 4dfy_video0_3)")
    if (why := _name_problem(name)) is not None:
        raise ValueError(f"{where}: {why}")
    _check_reserved(entry, where)
    try:
        base = get_method(entry["base"])
    except UnknownMethodError as err:
        raise UnknownMethodError(f"{where}: base: {err.head}", err.tail) from None
    if not base.trainable:
        raise ValueError(f"{where}: base: {base.name!r} cannot be trained here (videos only); a variant changes the "
                         "config of a trained method")
    keys = config_keys(entry)
    typed = _typed_keys(keys, where, _schema(base.name))  # on the base's changes, as `apply` makes them
    changes = ", ".join(f"{k}={v}" for k, v in keys.items()) or "no changes"
    return Method(name, entry.get("description") or f"variant of {base.name}: {changes}",
                  overrides=_after_base(base, typed, where), transform=base.transform, trainable=True, source=source,
                  label=entry.get("label") or "", base=base.name,
                  variant_keys=(*base.variant_keys, KeyLayer(where, typed)) if typed else base.variant_keys)


def register_variant(name: str, entry: dict, source: str = "params.yaml") -> Method:
    """`variant(name, entry, source)`, registered. The name of a method registered elsewhere is an error naming
    both; the same file may register it again (a changed definition replaces its own earlier one)."""
    where = f"{source}: overrides.{name}"
    _refuse_shadowing(name, where, source)
    method = variant(name, entry, source)
    if (twin := _case_twin(name)) is not None:  # as `register` refuses it, naming the entry
        raise ValueError(f"{where}: {_case_twin_text(name, twin)}")
    return register(method, overwrite=name in METHODS)


def check_entry(name: str, entry: dict | None, source: str = "params.yaml") -> None:
    """The reserved keys of an `overrides:` entry without `base:`: `label:` may relabel the method (a string),
    `description:` belongs to a variant (the method's own registration describes it)."""
    if not entry:
        return
    where = f"{source}: overrides.{name}"
    _check_reserved(entry, where)
    if "description" in entry:
        if name not in METHODS:
            load_entry_points(strict=False)
        fix = (f"drop it ({name!r} is described where it is registered: `fourdfy methods`), or define a variant "
               f"under a new name with base: {name}" if name in METHODS else
               f"add base: METHOD to define {name!r} as a variant of METHOD")
        raise ValueError(f"{where}: description: belongs to a variant (an entry with base:); {fix}")


def register_variants(overrides: dict | None, source: str = "params.yaml") -> list[str]:
    """Register every variant of an `overrides:` mapping (its entries with `base:`; a variant may be the base of
    another) and check the reserved keys of its other entries; returns the variants' names. Registering the
    same mapping again changes nothing."""
    if not overrides:
        return []
    if not isinstance(overrides, dict):
        raise ValueError(f"{source}: overrides must map a method to a mapping of config keys to values")
    pending = {}
    for name, entry in overrides.items():
        name = str(name)
        if entry is not None and not isinstance(entry, dict):
            raise ValueError(f"{source}: overrides.{name} must be a mapping of config keys to values, got {entry!r}")
        if entry and "base" in entry:
            _refuse_shadowing(name, f"{source}: overrides.{name}", source)
            pending[name] = entry
        else:
            check_entry(name, entry, source)
    done = []
    while pending:
        ready = [n for n, e in pending.items() if str(e["base"]) not in pending]
        if not ready:
            raise ValueError(f"{source}: overrides: the variants {', '.join(map(repr, pending))} are each other's "
                             "base: (a cycle); base one of them on a registered method")
        for name in ready:
            register_variant(name, pending.pop(name), source)
            done.append(name)
    return done


def untaken_base_keys(name: str, overrides: dict | None) -> tuple[str, dict]:
    """For the variant `name` of an `overrides:` mapping: (the method its base chain ends at, one that is no variant
    of the mapping; that method's own entry's config keys that neither `name` nor a variant between them sets).

    A variant is its base's definition (registered, or the base variant's entry) plus its own keys: the entry of a
    registered base (`4dfy: {stages.stage1.steps: 10}`) changes that method's runs only (`--set` values of its
    generate stages), not those of its variants; every caller (`fourdfy generate --set-from`, `fourdfy sweep
    --params`, the `methods` stage) resolves a variant from its own entry alone. These are the keys a user may have
    expected it to take (the `methods` stage names them). ("", {}) for a name that is no variant of `overrides`."""
    entries = overrides if isinstance(overrides, dict) else {}
    entry, seen, own = entries.get(name), {name}, set()
    if not (isinstance(entry, dict) and "base" in entry):
        return "", {}
    from method.training.profiles import paper

    schema = paper()

    def leaves(keys: dict) -> dict:  # a mapping merged into a part as the keys of its items: compared key by key
        return expand_merges(schema, keys, parse=True)

    while isinstance(entry, dict) and "base" in entry:
        own |= set(leaves(config_keys(entry)))
        base = str(entry["base"])
        if base in seen:  # a cycle: `register_variants` refuses it
            return "", {}
        seen.add(base)
        entry = entries.get(base)
    return base, {k: v for k, v in leaves(config_keys(entry if isinstance(entry, dict) else None)).items()
                  if k not in own}


def resolve_config(profile: str, method: str, **overrides) -> TrainConfig:
    """The profile's config with the method's changes (and any extra dotted overrides) applied. The installed
    plug-ins are loaded first (`strict=False`), so that a name a refused plug-in gives too (its own `4dfy`) is
    refused by `get_method` rather than trained as the registered method (`fourdfy generate`, `sweep`, the `methods`
    stage all resolve here)."""
    from method.training.profiles import load_profile

    load_entry_points(strict=False)
    cfg = get_method(method).apply(load_profile(profile))
    return replace(cfg, **overrides) if overrides else cfg

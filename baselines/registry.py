"""Every compared method as data: a name, a one-line description and the config changes it makes to a
profile. The trainer reads these; no method has its own code path.

Plug-in points for a new baseline (docs/adding-a-baseline.md):
- call `register(Method(...))` in code imported before `fourdfy generate`, or
- ship it in your own package under the entry-point group `fourdfy.methods` (the entry point names a
  `Method`, or a function returning one or a list of them); `fourdfy methods` discovers it.

Overrides are dotted keys of `method.training.config.TrainConfig` (`"field.representation"`,
`"stages.stage3.p_3d"`, `"guidance.video.guidance_scale"`), checked against the config schema when the
method is registered; `transform` is a function `(TrainConfig) -> TrainConfig` for changes that depend
on the profile. A method that cannot be trained here (MAV3D: no public code) is registered with
`trainable=False` and contributes videos only (`fourdfy import-videos`). Display labels of the tables
come from the study design (userstudy/designs/), not from here.
"""

from __future__ import annotations

import importlib.metadata as md
from dataclasses import dataclass, field
from typing import Callable

from method.configs import ConfigKeyError, set_keys
from method.fields import HashGridConfig, hexplane_matching
from method.training.config import TrainConfig, replace

ENTRY_POINT_GROUP = "fourdfy.methods"


@dataclass(frozen=True)
class Method:
    """One row of Table 2 / Table 3."""

    name: str
    """Registry key (also used in votes files, artifact folders and report tables)."""
    description: str
    """One line for `fourdfy methods`."""
    overrides: dict = field(default_factory=dict)
    """Dotted TrainConfig keys -> values (checked when registered)."""
    transform: Callable[[TrainConfig], TrainConfig] | None = None
    """Optional function applied after the overrides, for changes that depend on the profile."""
    trainable: bool = True
    """False for methods we only have videos of (MAV3D)."""
    source: str = "built-in"
    """Where the method was registered from (built-in, or the entry point's distribution)."""
    label: str = ""
    """Its name in the tables the pipeline makes (a design's label); "" shows the name itself."""

    def apply(self, cfg: TrainConfig) -> TrainConfig:
        if not self.trainable:
            raise ValueError(f"method {self.name!r} cannot be trained here: {self.description}; bring its videos "
                             f"in with `fourdfy import-videos SRC --method {self.name} --out DIR`")
        cfg = replace(cfg, method=self.name, **self.overrides)
        return self.transform(cfg) if self.transform else cfg


def _hexplane(cfg: TrainConfig) -> TrainConfig:
    # The paper matched HexPlane's capacity to the hash grids' memory; do the same at every profile.
    from method.encodings import level_layouts

    def count(g: HashGridConfig, d: int) -> int:
        lv = level_layouts(d, g.n_levels, g.log2_hashmap_size, g.base_resolution, g.per_level_scale)
        return (lv[-1].offset + lv[-1].size) * g.n_features_per_level

    target = count(cfg.field.static_grid, 3) + count(cfg.field.dynamic_grid, 4)
    n_feat = cfg.field.static_grid.n_output_dims // 4
    planes = hexplane_matching(target, n_scales=4, n_features_per_scale=n_feat,
                               time_resolutions=cfg.field.hexplane.time_resolutions)
    return replace(cfg, **{"field.representation": "hexplane", "field.hexplane": planes})


def _single_grid(cfg: TrainConfig) -> TrainConfig:
    # One "large" 4D grid: twice the table size, about the two grids' combined capacity. It is the `dynamic`
    # group, so stages 1-2 train it at t = 0 and stage 3's static-LR drop leaves it at 1e-2 (docs/fidelity.md).
    return replace(cfg, **{"field.representation": "single_grid",
                           "field.dynamic_grid.log2_hashmap_size": cfg.field.dynamic_grid.log2_hashmap_size + 1,
                           # no static part: static updates must train the one grid
                           "static_groups": ("dynamic", "mlp", "background")})


METHODS: dict[str, Method] = {}
_LOADED: set[str] = set()
"""Entry points already registered (loading is idempotent)."""
_ERRORS: dict[str, str] = {}
"""Entry point name -> its load error (see `load_entry_points`)."""


def _check(method: Method, overwrite: bool = False) -> None:
    """What `register` refuses: a name already taken, an override key the config schema does not have."""
    if method.name in METHODS and not overwrite:
        raise ValueError(f"method {method.name!r} is already registered (by {METHODS[method.name].source})")
    if method.trainable and method.overrides:
        from method.training.profiles import paper

        try:
            set_keys(paper(), method.overrides)  # the schema with every stage and prior present
        except ConfigKeyError as err:
            raise ValueError(f"method {method.name!r}: {err}") from None


def register(method: Method, overwrite: bool = False) -> Method:
    """Add a method to the registry (a name collision raises unless overwrite=True).

    Its overrides are checked against the config schema now, so a typo fails here with the list of
    valid keys rather than deep inside `fourdfy generate`.
    """
    _check(method, overwrite)
    METHODS[method.name] = method
    return method


for _m in (
    Method("4dfy", "4D-fy: hybrid SDS, three stages, static 3D + dynamic 4D hash grids"),
    Method("mav3d", "MAV3D (Singer et al. 2023): no public code; compared through its released videos",
           trainable=False),
    # the static LR stays at 1e-2 in stage 3 when there is no stage 1-2 geometry to protect
    Method("wo_3d_img", "video SDS only from scratch: stages 1-2 skipped, P_3D = P_IMG = 0",
           overrides={"stages.stage1.steps": 0, "stages.stage2.steps": 0, "stages.stage3.p_3d": 0.0,
                      "stages.stage3.p_img": 0.0, "stages.stage3.static_lr_scale": 1.0}),
    Method("wo_3d", "no 3D-aware prior (P_3D = 0): stages 1-2 use VSD only, stage 3 VSD or video",
           overrides={"stages.stage1.p_3d": 0.0, "stages.stage1.p_img": 1.0, "stages.stage2.p_3d": 0.0,
                      "stages.stage3.p_3d": 0.0,
                      # stage 1 trains from scratch with VSD: give it the stage-1 timestep anneal of S1
                      # (VSD runs its ramp only in `t_anneal_stages`, stage 1 by default)
                      "guidance.img.t_anneal_start": (0.02, 0.98), "guidance.img.t_anneal_steps": 5000}),
    Method("wo_img", "no VSD (P_IMG = 0): stage 2 is MVDream only, stage 3 MVDream or video",
           overrides={"stages.stage2.p_3d": 1.0, "stages.stage2.p_img": 0.0, "stages.stage3.p_img": 0.0}),
    Method("wo_hybrid", "no hybrid SDS in stage 3: video updates only after stages 1-2 (MAV3D-like)",
           overrides={"stages.stage3.p_3d": 0.0, "stages.stage3.p_img": 0.0}),
    Method("hexplane", "HexPlane backbone (six multi-scale planes) with capacity matched to the hash grids",
           transform=_hexplane),
    Method("single_stage", "stage 3 only, from scratch, with all three priors (0.5 / 0.25 / 0.25)",
           overrides={"stages.stage1.steps": 0, "stages.stage2.steps": 0, "stages.stage3.static_lr_scale": 1.0}),
    Method("single_grid", "one large 4D hash grid instead of static + dynamic grids", transform=_single_grid),
):
    register(_m)


def load_entry_points(strict: bool = True) -> list[str]:
    """Register the methods other installed packages declare under `fourdfy.methods`; returns their names.

    A broken entry point raises, naming itself; with `strict=False` it is skipped and its error returned by
    `plugin_errors()` instead (so that one broken plug-in does not stop work with the other methods).
    """
    names = []
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _LOADED:
            continue
        if ep.name not in _ERRORS:  # a broken one is imported once per process
            try:
                names += _load_entry_point(ep)
                continue
            except ValueError as err:
                _ERRORS[ep.name] = str(err)
        if strict:
            raise ValueError(_ERRORS[ep.name])
    return names


def _load_entry_point(ep) -> list[str]:
    dist = getattr(ep, "dist", None)
    where = f"entry point {ep.name!r} of {dist.name if dist else ep.value}"
    try:
        obj = ep.load()
        found = obj() if callable(obj) and not isinstance(obj, Method) else obj
    except Exception as err:  # a broken plug-in must name itself, not crash deep inside
        raise ValueError(f"{where} ({ep.value}) cannot be loaded: {type(err).__name__}: {err}") from None
    found = found if isinstance(found, (list, tuple)) else [found]
    bad = [m for m in found if not isinstance(m, Method)]
    if bad:
        raise ValueError(f"{where} ({ep.value}) gave {type(bad[0]).__name__}, not a baselines.Method")
    # all of its methods or none: every one is checked before any is registered
    new = [Method(**{**m.__dict__, "source": where}) for m in found]
    names = [m.name for m in new]
    twice = sorted({n for n in names if names.count(n) > 1})
    try:
        if twice:
            raise ValueError(f"method(s) {', '.join(map(repr, twice))} given twice")
        for m in new:
            _check(m)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    for m in new:
        METHODS[m.name] = m
    _LOADED.add(ep.name)
    return names


def plugin_errors() -> dict[str, str]:
    """Entry point name -> why it could not be loaded, for those `load_entry_points(strict=False)` skipped."""
    return dict(_ERRORS)


class UnknownMethodError(ValueError):
    """No registered method has this name; `head` names it (with a did-you-mean), `tail` lists the known methods
    and any broken plug-in, so that a caller naming several unknown methods can list those once."""

    def __init__(self, head: str, tail: str):
        super().__init__(head + tail)
        self.head = head
        self.tail = tail


def get_method(name: str) -> Method:
    """The registered method `name`. Built-ins need no plug-in loaded; a broken plug-in fails only a request
    that could be for it (an unknown name), and the error names it."""
    if name not in METHODS:
        load_entry_points(strict=False)
    try:
        return METHODS[name]
    except KeyError:
        import difflib

        known = ", ".join(sorted(METHODS))
        close = difflib.get_close_matches(name, list(METHODS), n=1)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        broken = "".join(f"; {err}" for err in plugin_errors().values())
        raise UnknownMethodError(f"unknown method {name!r}{guess}",
                                 f"; known methods: {known}{broken} (a plug-in's method needs its package installed "
                                 "in this environment: docs/adding-a-baseline.md)") from None


def resolve_config(profile: str, method: str, **overrides) -> TrainConfig:
    """The profile's config with the method's changes (and any extra dotted overrides) applied."""
    from method.training.profiles import load_profile

    cfg = get_method(method).apply(load_profile(profile))
    return replace(cfg, **overrides) if overrides else cfg

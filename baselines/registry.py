"""Every compared method as data: a name, a one-line description and the config overrides it applies
to a profile. The trainer reads these; no method has its own code path.

Plug-in point for a new baseline: call `register(Method(...))` (e.g. in your own module imported
before `fourdfy generate`), or add an entry to `METHODS` below. Overrides are flat keys of
`method.training.config.TrainConfig` with dots for nested fields ("field.representation"), or a
callable `(TrainConfig) -> TrainConfig` for anything more. A method that cannot be trained here
(MAV3D: no public code) is registered with `trainable=False` and contributes videos only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

from method.fields import HashGridConfig, hexplane_matching
from method.training.config import TrainConfig, replace


@dataclass(frozen=True)
class Method:
    """One row of Table 2 / Table 3."""

    name: str
    """Registry key (also used in votes files and report tables)."""
    description: str
    """One line for `fourdfy methods`."""
    overrides: dict = field(default_factory=dict)
    """Flat TrainConfig overrides ('a.b' for nested fields)."""
    transform: Callable[[TrainConfig], TrainConfig] | None = None
    """Optional function applied after the overrides, for changes that depend on the profile."""
    trainable: bool = True
    """False for methods we only have videos of (MAV3D)."""
    paper_label: str = ""
    """Row label in the paper's tables."""

    def apply(self, cfg: TrainConfig) -> TrainConfig:
        if not self.trainable:
            raise ValueError(f"method {self.name!r} cannot be trained here: {self.description}")
        cfg = replace(cfg, method=self.name, **self.overrides)
        return self.transform(cfg) if self.transform else cfg


def _set_stage(cfg: TrainConfig, name: str, **changes) -> TrainConfig:
    return dataclasses.replace(cfg, stages=tuple(dataclasses.replace(s, **changes) if s.name == name else s
                                                 for s in cfg.stages))


def _stages(**per_stage: dict) -> Callable[[TrainConfig], TrainConfig]:
    def apply(cfg: TrainConfig) -> TrainConfig:
        for name, changes in per_stage.items():
            cfg = _set_stage(cfg, name, **changes)
        return cfg
    return apply


def _hexplane(cfg: TrainConfig) -> TrainConfig:
    # The paper matched HexPlane's capacity to the hash grids' memory; do the same at every profile.
    from method.encodings import level_layouts

    def count(g: HashGridConfig, d: int) -> int:
        lv = level_layouts(d, g.n_levels, g.log2_hashmap_size, g.base_resolution, g.per_level_scale)
        return (lv[-1].offset + lv[-1].size) * g.n_features_per_level

    target = count(cfg.field.static_grid, 3) + count(cfg.field.dynamic_grid, 4)
    n_feat = cfg.field.static_grid.n_output_dims // 4
    planes = hexplane_matching(target, n_scales=4, n_features_per_scale=n_feat,
                               time_resolutions=(4, 8, 16, 16) if cfg.profile == "tiny" else (16, 32, 64, 64))
    return replace(cfg, **{"field.representation": "hexplane", "field.hexplane": planes})


def _single_grid(cfg: TrainConfig) -> TrainConfig:
    # One "large" 4D grid: twice the table size, about the two grids' combined capacity.
    g = cfg.field.dynamic_grid
    big = dataclasses.replace(g, log2_hashmap_size=g.log2_hashmap_size + 1)
    return replace(cfg, **{"field.representation": "single_grid", "field.dynamic_grid": big,
                           # no static part: static updates must train the one grid
                           "static_groups": ("dynamic", "mlp", "background")})


METHODS: dict[str, Method] = {}


def register(method: Method, overwrite: bool = False) -> Method:
    """Add a method to the registry (a name collision raises unless overwrite=True)."""
    if method.name in METHODS and not overwrite:
        raise ValueError(f"method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


for _m in (
    Method("4dfy", "4D-fy: hybrid SDS, three stages, static 3D + dynamic 4D hash grids", paper_label="4D-fy"),
    Method("mav3d", "MAV3D (Singer et al. 2023): no public code; compared through its released videos",
           trainable=False, paper_label="MAV3D"),
    Method("wo_3d_img", "video SDS only from scratch: stages 1-2 skipped, P_3D = P_IMG = 0",
           transform=_stages(stage1={"steps": 0}, stage2={"steps": 0},
                             stage3={"p_3d": 0.0, "p_img": 0.0, "static_lr_scale": 1.0}),
           paper_label="w/o ∇L_3D/IMG"),
    Method("wo_3d", "no 3D-aware prior (P_3D = 0): stages 1-2 use VSD only, stage 3 VSD or video",
           transform=_stages(stage1={"p_3d": 0.0, "p_img": 1.0}, stage2={"p_3d": 0.0},
                             stage3={"p_3d": 0.0}),
           paper_label="w/o ∇L_3D"),
    Method("wo_img", "no VSD (P_IMG = 0): stage 2 is MVDream only, stage 3 MVDream or video",
           transform=_stages(stage2={"p_3d": 1.0, "p_img": 0.0}, stage3={"p_img": 0.0}),
           paper_label="w/o ∇L_IMG"),
    Method("wo_hybrid", "no hybrid SDS in stage 3: video updates only after stages 1-2 (MAV3D-like)",
           transform=_stages(stage3={"p_3d": 0.0, "p_img": 0.0}), paper_label="w/o hybrid SDS"),
    Method("hexplane", "HexPlane backbone (six multi-scale planes) with capacity matched to the hash grids",
           transform=_hexplane, paper_label="w/ HexPlane"),
    Method("single_stage", "stage 3 only, from scratch, with all three priors (0.5 / 0.25 / 0.25)",
           transform=_stages(stage1={"steps": 0}, stage2={"steps": 0}, stage3={"static_lr_scale": 1.0}),
           paper_label="w/ single-stage"),
    Method("single_grid", "one large 4D hash grid instead of static + dynamic grids",
           transform=_single_grid, paper_label="w/ single hash grid"),
):
    register(_m)


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        known = ", ".join(sorted(METHODS))
        raise ValueError(f"unknown method {name!r}; known methods: {known}") from None


def resolve_config(profile: str, method: str, **overrides) -> TrainConfig:
    """The profile's config with the method's overrides (and any extra flat overrides) applied."""
    from method.training.profiles import load_profile

    cfg = get_method(method).apply(load_profile(profile))
    return replace(cfg, **overrides) if overrides else cfg

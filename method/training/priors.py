"""Build the prior behind each update type from the config (real models, tiny random priors, oracle)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from .config import GuidanceSpec, TrainConfig


def cache_dir() -> Path:
    """Where generated artefacts shared between runs live (the tiny priors): $FOURDFY_CACHE or ~/.cache."""
    return Path(os.environ.get("FOURDFY_CACHE", Path.home() / ".cache" / "fourdfy"))


def _with_options(config, options: dict):
    names = {f.name for f in dataclasses.fields(config)}
    unknown = set(options) - names
    if unknown:
        raise ValueError(f"{type(config).__name__} has no option(s) {sorted(unknown)}; known: {sorted(names)}")
    return dataclasses.replace(config, **options)


def build_prior(kind: str, spec: GuidanceSpec, cfg: TrainConfig, device: str):
    """The guidance object for one update type. Heavy imports happen only here."""
    if spec.kind == "oracle":
        from method.oracle import OracleGuidance

        return OracleGuidance(**spec.options)
    from method import guidance as g

    classes = {"mvdream": (g.MVDreamConfig, g.MVDreamGuidance), "vsd": (g.VSDConfig, g.VSDGuidance),
               "zeroscope": (g.ZeroscopeConfig, g.ZeroscopeGuidance)}
    if spec.kind not in classes:
        raise ValueError(f"unknown prior {spec.kind!r}; known: {sorted(classes) + ['oracle']}")
    config_cls, guidance_cls = classes[spec.kind]
    if cfg.profile == "tiny":
        from method.guidance import tiny

        base = getattr(tiny, f"tiny_{spec.kind}_config")(tiny_priors_root())
    else:
        base = config_cls()
    return guidance_cls(_with_options(base, spec.options), device=device)


def tiny_priors_root() -> Path:
    from method.guidance.tiny import build_tiny_priors

    root = cache_dir() / "tiny-priors"
    build_tiny_priors(root)
    return root

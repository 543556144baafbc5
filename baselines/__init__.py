"""Compared methods as data (4D-fy, its ablations, MAV3D), variants defined in params.yaml, and the plug-in
point for new ones."""

from .registry import (ENTRY_POINT_GROUP, METHODS, RESERVED_NAMES, STAGE_CACHE, SWEEP_DIR, VARIANT_KEYS, Method,
                       MethodTransformError, UnknownMethodError, check_entry, check_entry_keys, config_keys, get_method,
                       load_entry_points, register, register_variant, register_variants, resolve_config,
                       untaken_base_keys, variant)

__all__ = ["ENTRY_POINT_GROUP", "METHODS", "RESERVED_NAMES", "STAGE_CACHE", "SWEEP_DIR", "VARIANT_KEYS", "Method",
           "MethodTransformError", "UnknownMethodError", "check_entry", "check_entry_keys", "config_keys", "get_method",
           "load_entry_points", "register", "register_variant", "register_variants", "resolve_config",
           "untaken_base_keys", "variant"]

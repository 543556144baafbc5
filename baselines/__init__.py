"""Compared methods as data (4D-fy, its ablations, MAV3D), variants defined in params.yaml, and the plug-in
point for new ones."""

from .registry import (ENTRY_POINT_GROUP, METHODS, VARIANT_KEYS, Method, UnknownMethodError, check_entry, config_keys,
                       get_method, load_entry_points, register, register_variant, register_variants, resolve_config,
                       variant)

__all__ = ["ENTRY_POINT_GROUP", "METHODS", "VARIANT_KEYS", "Method", "UnknownMethodError", "check_entry", "config_keys",
           "get_method", "load_entry_points", "register", "register_variant", "register_variants", "resolve_config",
           "variant"]

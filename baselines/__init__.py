"""Compared methods as data (4D-fy, its ablations, MAV3D) and the plug-in point for new ones."""

from .registry import (ENTRY_POINT_GROUP, METHODS, Method, UnknownMethodError, get_method, load_entry_points, register,
                       resolve_config)

__all__ = ["ENTRY_POINT_GROUP", "METHODS", "Method", "UnknownMethodError", "get_method", "load_entry_points",
           "register", "resolve_config"]

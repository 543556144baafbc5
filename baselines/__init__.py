"""Compared methods as data (4D-fy, its ablations, MAV3D) and the plug-in point for new ones."""

from .registry import METHODS, Method, get_method, register, resolve_config

__all__ = ["METHODS", "Method", "get_method", "register", "resolve_config"]

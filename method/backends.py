"""Which optional accelerators are importable and active (tinycudann, nerfacc's CUDA path)."""

from __future__ import annotations

import functools
import importlib
import importlib.metadata as md
import warnings


@functools.lru_cache(maxsize=None)
def tcnn_module():
    """The `tinycudann` module, or None when it is not installed (it is an optional accelerator)."""
    try:
        return importlib.import_module("tinycudann")
    except Exception:  # ImportError, or a build for another CUDA version failing at import
        return None


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def tcnn_active() -> bool:
    """True when tiny-cuda-nn encodings will be used ("auto" backend on a CUDA device)."""
    return cuda_available() and tcnn_module() is not None


def nerfacc_cuda_active() -> bool:
    """True when nerfacc's packed occupancy-grid sampling can run (it needs CUDA)."""
    if not cuda_available():
        return False
    try:
        importlib.import_module("nerfacc")
    except ImportError:
        return False
    return True


_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def package_version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "not installed"

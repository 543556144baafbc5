"""Which optional accelerators are importable and active (tinycudann, Triton, nerfacc's CUDA path)."""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata as md
import os
import warnings


@functools.lru_cache(maxsize=None)
def tcnn_module():
    """The `tinycudann` module, or None when it is not installed (it is an optional accelerator)."""
    try:
        return importlib.import_module("tinycudann")
    except Exception:  # ImportError, or a build for another CUDA version failing at import
        return None


@functools.lru_cache(maxsize=None)
def triton_module():
    """The `triton` module, or None when it is not importable (it ships with PyTorch's Linux wheels)."""
    try:
        return importlib.import_module("triton")
    except Exception:  # not installed, or a broken install: fall back to PyTorch
        return None


def triton_interpreting() -> bool:
    """True when Triton kernels run in its CPU interpreter (TRITON_INTERPRET=1, used by the tests)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


_triton_failure: list[str] = []


def triton_failed(err: BaseException) -> None:
    """Record that the Triton hash grid could not run here (e.g. Triton found no C compiler to build
    its launcher): `auto` picks PyTorch from now on, with one warning."""
    if not _triton_failure:
        _triton_failure.append(f"{type(err).__name__}: {err}")
        warn_once("hashgrid-triton-failed", f"the Triton hash grid failed ({_triton_failure[0][:300]}); "
                  "using the pure-PyTorch hash grid (same function, slower)")


@contextlib.contextmanager
def matmul_tf32(enabled: bool):
    """With `enabled`, TF32 for CUDA float32 matrix products inside (`torch.backends.cuda.matmul.allow_tf32`), put
    back afterwards, so a training step's choice does not leak into what runs next (evaluation, CLIP scores).
    A process already at TF32 or lower ('high' / 'medium' float32 matmul precision) is left as it is, and so is
    one whose precisions were set through PyTorch's per-backend API, which the legacy flag cannot read back.
    CPU matrix products never read the flag."""
    import torch

    if not enabled:
        yield
        return
    try:
        before = torch.get_float32_matmul_precision()
    except RuntimeError:  # precisions set per backend (`fp32_precision`): theirs to keep
        warn_once("tf32-per-backend", "tf32=true left alone: this process sets float32 matmul precision per "
                  "backend (torch.backends.cuda.matmul.fp32_precision)")
        before = None  # the step runs outside this handler, so its own errors do not chain to this one
    if before != "highest":
        yield
        return
    # set and put back through the same (legacy) flag: switching APIs midway leaves a state that PyTorch refuses
    # to read back. Afterwards torch >= 2.9 reports cuBLAS's precision as 'ieee' where it may have said 'none'
    # (follow the global 'highest'): the same full float32.
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False


HASH_GRID_BACKENDS = ("auto", "torch", "triton", "tcnn")
"""The hash-grid backends a config may name (`FieldConfig.grid_backend`, `HashGridEncoding(backend=...)`): unknown
names are refused when the config is made; whether a known one runs on this machine, when the grid is built."""


def hash_grid_backend(device) -> str:
    """The hash-grid backend `backend="auto"` picks on `device`: 'tcnn', 'triton' or 'torch'.

    On CUDA: tinycudann when importable (the reference kernels), else the Triton kernel (no compiler
    needed), else PyTorch. On CPU: PyTorch.
    """
    import torch

    if torch.device(device).type != "cuda":
        return "torch"
    if tcnn_module() is not None:
        return "tcnn"
    if triton_module() is not None and not _triton_failure:
        return "triton"
    return "torch"


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@contextlib.contextmanager
def seeded(seed: int):
    """torch.manual_seed(seed) for the block; the caller's CPU and CUDA RNG states are restored after it
    (manual_seed seeds every CUDA device too, so forking the CPU state alone would leave those changed)."""
    import torch

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def resolve_device(name: str):
    """'auto' -> cuda when available, else cpu; 'cpu', 'cuda', 'cuda:N' -> that device, or a ValueError
    saying what is missing (rather than the driver's message deep inside the first CUDA call)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but no CUDA device is available; use cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) "
                             "are visible")
    return device


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


def saved_for_backward_bytes(fn, *args, **kwargs):
    """(fn(*args, **kwargs), bytes of the distinct tensor storages autograd saved for backward during the call
    and still holds when it returns).

    A device-independent measure of the activation memory an update holds until its backward: parameters
    (resident anyway) are not counted, nor are tensors of graphs freed during the call, nor tensors saved
    inside an activation-checkpointed region (they are recomputed in backward).
    """
    import weakref

    import torch

    saved = []

    def pack(t):
        base = t if t._base is None else t._base
        if not isinstance(base, torch.nn.Parameter):
            saved.append(weakref.ref(t))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*args, **kwargs)
    storages: dict[tuple, int] = {}
    for ref in saved:
        if (t := ref()) is not None:
            s = t.untyped_storage()
            storages[(s.device.type, s.device.index, s.data_ptr())] = s.nbytes()
    return out, sum(storages.values())

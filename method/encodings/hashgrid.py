"""Multiresolution hash-grid encoding that computes exactly tiny-cuda-nn's `HashGrid` function.

All three backends (PyTorch, Triton, tinycudann) read the same flat parameter vector `params`, laid
out as tcnn lays it out: level after level, `params[(offset[level] + index) * F + f]`. A checkpoint
therefore moves between a CUDA machine running tinycudann or Triton and a CPU machine unchanged.

Per level (tcnn's `grid_scale`, `grid_resolution`, `pos_fract`, `grid_index`):

    scale      = exp2(level * log2(per_level_scale)) * base_resolution - 1        (float32)
    resolution = ceil(scale) + 1
    pos        = fmaf(scale, x, 0.5);  cell = floor(pos);  frac = pos - cell  (pos rounded once)
    table size = min(next_multiple(resolution^D, 8), 2^log2_hashmap_size)
    index      = sum_d corner_d * resolution^d            if the table holds the dense grid
               = xor_d (corner_d * prime_d) mod 2^32      otherwise (tcnn's "coherent prime" hash)
    index      = index mod table size
    weight     = prod_d (frac_d if corner bit d else 1 - frac_d), multiplied in dimension order
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from method import backends

BACKENDS = backends.HASH_GRID_BACKENDS
TRITON_MAX_DIMS = 4  # the Triton kernels unroll up to four input dimensions (the paper uses 3 and 4)

# tcnn's coherent_prime_hash factors (the first is 1 so neighbouring x share cache lines).
HASH_PRIMES = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737)
# Largest resolution per dimension count for which tcnn computes a dense index without uint32 overflow.
MAX_DENSE_BASE = {1: 0xFFFFFFFF, 2: 0xFFFF, 3: 0x659, 4: 0xFF, 5: 0x54, 6: 0x28, 7: 0x17}
_UINT32 = 0xFFFFFFFF
INIT_RANGE = 1e-4  # tcnn initialises grid parameters uniformly in [-1e-4, 1e-4]


def _next_multiple(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


@dataclass(frozen=True)
class LevelLayout:
    """Where one level lives in the flat parameter vector and how it is indexed."""

    scale: float
    """tcnn's float32 grid scale (vertices per unit minus one)."""
    resolution: int
    """Grid vertices per dimension."""
    offset: int
    """First table entry of the level (in entries of F features)."""
    size: int
    """Table entries of the level."""
    hashed: bool
    """True when the level is indexed with the spatial hash, False when dense."""


def level_layouts(n_input_dims: int, n_levels: int, log2_hashmap_size: int, base_resolution: int,
                  per_level_scale: float) -> list[LevelLayout]:
    """The per-level table layout exactly as tcnn computes it (host side, float32 arithmetic)."""
    if n_input_dims not in MAX_DENSE_BASE:
        raise ValueError(f"n_input_dims must be 1..7, got {n_input_dims}")
    log2_scale = np.float32(np.log2(np.float32(per_level_scale)))
    max_params = _UINT32 // 2
    layouts, offset = [], 0
    for level in range(n_levels):
        scale = float(np.exp2(np.float32(level) * log2_scale) * np.float32(base_resolution) - np.float32(1.0))
        scale = float(np.float32(scale))
        resolution = int(math.ceil(scale)) + 1
        dense = resolution ** n_input_dims
        size = max_params if float(resolution) ** n_input_dims > max_params else dense
        size = min(_next_multiple(size, 8), 1 << log2_hashmap_size)
        stride = dense if resolution <= MAX_DENSE_BASE[n_input_dims] else _UINT32
        layouts.append(LevelLayout(scale, resolution, offset, size, hashed=size < stride))
        offset += size
    return layouts


def fused_positions(x: Tensor, scale: Tensor) -> Tensor:
    """pos = x * scale + 0.5 for every level, rounded once like tcnn's fmaf: (..., D) -> (..., L, D).

    float32 inputs are computed in float64 and rounded to float32 once; the product of two float32
    numbers is exact in float64, so only the + 0.5 can round there (a float64-then-float32 double
    rounding that differs from fmaf only on exact float32 ties). float64 inputs stay float64.
    """
    pos = x.double().unsqueeze(-2) * scale.double().unsqueeze(-1) + 0.5
    return pos if x.dtype == torch.float64 else pos.float()


def _as_int32(value: int) -> int:
    """A uint32 constant as the int32 with the same bits (int32 products wrap like uint32 ones)."""
    return value - (1 << 32) if value >= 1 << 31 else value


def _sum_corners(feats: Tensor) -> Tensor:
    """feats.sum(0) over the corner axis in the order ATen's CPU sum uses for the composite
    formulation's (N, L, 2^D, 2) tensor (four interleaved accumulators, then added left to right), so
    both give the same bits at F = 2 (other F: ATen's order differs, results agree to rounding)."""
    n_corners = feats.shape[0]
    if n_corners % 4:
        out = feats[0].clone()
        for c in range(1, n_corners):
            out += feats[c]
        return out
    acc = feats.view(n_corners // 4, 4, *feats.shape[1:])
    lanes = acc[0].clone()
    for j in range(1, acc.shape[0]):
        lanes += acc[j]
    return ((lanes[0] + lanes[1]) + lanes[2]) + lanes[3]


class _TorchHashGrid(torch.autograd.Function):
    """CPU-friendly hash grid: int32 indices, one level at a time, scatter-add backward.

    Forward gathers each corner's row from a level's slice of the table (a level's table stays in
    cache while its points are processed: 1.5-2x less CPU time than all levels at once in one
    (corner, level, point) layout, measured) and sums corners in the order of ATen's `sum` (each
    product rounded before the add), so its output has the composite formulation's bits. Backward
    writes w * dL/dout straight into one flat gradient with `index_add_` (F == 2 rows are added as
    one complex number), without materialising per-corner gradients. Levels run on torch's threads
    (`_map_levels`). Gradients flow to `params` only: callers take the composite autograd path when
    x needs a gradient.
    """

    @staticmethod
    def forward(ctx, x: Tensor, params: Tensor, enc: "HashGridEncoding", save: bool) -> Tensor:
        # save: keep rows and weights for backward (False under no_grad: chunks are freed as they go)
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        f = enc.n_features_per_level
        table = params.detach().to(dtype)
        saved, outs = [], []

        def level_forward(plan, xt):
            rows, weight = plan.corners(xt, dtype)
            sl = table[plan.start:plan.stop]
            if f == 2:  # one 8- or 16-byte row per gather
                feats = torch.view_as_real(sl.view(sl.dtype.to_complex()).index_select(0, rows.view(-1)))
            else:
                feats = sl.view(-1, f).index_select(0, rows.view(-1))
            feats = feats.view(rows.shape[0], rows.shape[1], f).mul_(weight.unsqueeze(-1))
            return _sum_corners(feats), rows, weight

        # Chunks bound the temporaries; all chunks share one autograd node and one gradient buffer.
        for chunk in x.detach().split(enc.chunk_size):
            xt = chunk.T.contiguous()  # (D, n): every per-dimension operand is contiguous
            results = _map_levels(lambda plan: level_forward(plan, xt), enc._plans)
            outs.append(torch.stack([r[0] for r in results], 1).view(len(chunk), -1))
            if save:
                saved += [t for r in results for t in r[1:]]
        ctx.save_for_backward(*saved)
        ctx.enc, ctx.param_shape, ctx.param_dtype, ctx.dtype = enc, params.shape, params.dtype, dtype
        return outs[0] if len(outs) == 1 else torch.cat(outs, 0)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        saved = ctx.saved_tensors
        enc, dtype = ctx.enc, ctx.dtype
        f = enc.n_features_per_level
        grad = torch.zeros(ctx.param_shape, dtype=dtype)
        n_levels = len(enc._plans)
        for i, g_chunk in enumerate(grad_out.to(dtype).split(enc.chunk_size)):
            g_levels = g_chunk.view(len(g_chunk), enc.n_levels, f).transpose(0, 1).contiguous()

            def level_backward(level):
                plan = enc._plans[level]
                rows, weight = saved[2 * (i * n_levels + level)], saved[2 * (i * n_levels + level) + 1]
                src = weight.unsqueeze(-1) * g_levels[level].unsqueeze(0)  # (C, n, F)
                sl = grad[plan.start:plan.stop]  # levels own disjoint slices: safe in parallel
                if f == 2:
                    sl.view(dtype.to_complex()).index_add_(0, rows.view(-1), torch.view_as_complex(src.view(-1, 2)))
                else:
                    sl.view(-1, f).index_add_(0, rows.view(-1), src.view(-1, f))

            _map_levels(level_backward, list(range(n_levels)))
        return None, grad.to(ctx.param_dtype), None, None


def _map_levels(fn, items: list) -> list:
    """[fn(item) for item in items], levels spread over torch's CPU threads.

    Each level runs single-threaded in one worker (ATen ops release the GIL): many mid-sized
    operations parallelise better across levels than each inside OpenMP, which stalls at every
    operation when another process holds a core.
    """
    n_threads = torch.get_num_threads()
    if n_threads <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    pool = _pool(n_threads, os.getpid())  # a forked child gets its own pool
    torch.set_num_threads(1)
    try:
        return list(pool.map(fn, items))
    finally:
        torch.set_num_threads(n_threads)


@functools.lru_cache(maxsize=4)
def _pool(n_threads: int, pid: int):
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="hashgrid")


class _LevelPlan:
    """Precomputed constants of one level for the PyTorch backend."""

    def __init__(self, layout: LevelLayout, n_dims: int, n_features: int):
        self.scale = layout.scale
        self.hashed = layout.hashed
        self.size = layout.size
        self.start, self.stop = layout.offset * n_features, (layout.offset + layout.size) * n_features
        if layout.hashed:
            self.factors = [_as_int32(p) for p in HASH_PRIMES[:n_dims]]
        else:
            self.factors = [layout.resolution ** k for k in range(n_dims)]
        # A power-of-two table divides 2^32, so the low bits of the wrapped int32 index are the answer.
        self.mask = layout.size - 1 if layout.size & (layout.size - 1) == 0 else None

    def corners(self, xt: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Level-local table rows (2^D, N) int32 and weights (2^D, N) of all corners; xt is (D, N)."""
        n_dims, n = xt.shape
        n_corners = 1 << n_dims
        if dtype == torch.float64:
            pos = xt.to(torch.float64) * self.scale + 0.5
        else:  # one rounding, see fused_positions
            pos = (xt.to(torch.float64) * self.scale + 0.5).to(torch.float32)
        cell_f = torch.floor(pos)
        frac = pos - cell_f
        cell = cell_f.to(torch.int32)
        rows = torch.empty((n_corners, n), dtype=torch.int32)
        weight = torch.empty((n_corners, n), dtype=dtype)
        # Doubling along one dimension at a time: corner c has bit d = (c >> d) & 1.
        for d in range(n_dims):
            m = 1 << d
            lo = cell[d] * self.factors[d]
            hi = lo + self.factors[d]
            w_hi, w_lo = frac[d], 1 - frac[d]
            if d == 0:
                rows[0], rows[1] = lo, hi
                weight[0], weight[1] = w_lo, w_hi
                continue
            if self.hashed:
                torch.bitwise_xor(rows[:m], hi, out=rows[m:2 * m])
                rows[:m] ^= lo
            else:
                torch.add(rows[:m], hi, out=rows[m:2 * m])
                rows[:m] += lo
            torch.mul(weight[:m], w_hi, out=weight[m:2 * m])
            weight[:m] *= w_lo
        if self.mask is not None and self.hashed:
            rows &= self.mask
        elif self.hashed:  # a non-power-of-two hashed table: reduce the uint32 value
            rows = ((rows.long() & _UINT32) % self.size).int()
        else:
            rows = torch.remainder(rows, self.size)
        return rows, weight


class HashGridEncoding(nn.Module):
    """tcnn-exact multiresolution hash grid over inputs in [0, 1]^D; output (N, n_levels * F).

    backend: 'torch' (any device), 'triton' (CUDA, or CPU under TRITON_INTERPRET=1), 'tcnn' (CUDA with
    tinycudann) or 'auto' (`method.backends.hash_grid_backend`: tcnn, else Triton on CUDA, else torch).
    """

    def __init__(self, n_input_dims: int, n_levels: int = 16, n_features_per_level: int = 2,
                 log2_hashmap_size: int = 19, base_resolution: int = 16, per_level_scale: float = 1.4472692,
                 backend: str = "auto", chunk_size: int = 1 << 16):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.n_input_dims = n_input_dims
        self.n_levels = n_levels
        self.n_features_per_level = n_features_per_level
        self.log2_hashmap_size = log2_hashmap_size
        self.base_resolution = base_resolution
        self.per_level_scale = per_level_scale
        self.requested_backend = backend
        self.chunk_size = chunk_size
        self.levels = level_layouts(n_input_dims, n_levels, log2_hashmap_size, base_resolution, per_level_scale)
        n_entries = self.levels[-1].offset + self.levels[-1].size
        self.params = nn.Parameter(torch.empty(n_entries * n_features_per_level).uniform_(-INIT_RANGE, INIT_RANGE))
        self._register_level_buffers()
        self._plans = [_LevelPlan(lv, n_input_dims, n_features_per_level) for lv in self.levels]
        self._tcnn = None  # built lazily on first CUDA call; shares self.params
        self._triton_tables = {}  # device -> per-level constants for the Triton kernels

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features_per_level

    def tcnn_config(self) -> dict:
        """The tinycudann encoding config computing the same function."""
        return {"otype": "HashGrid", "n_levels": self.n_levels, "n_features_per_level": self.n_features_per_level,
                "log2_hashmap_size": self.log2_hashmap_size, "base_resolution": self.base_resolution,
                "per_level_scale": self.per_level_scale, "interpolation": "Linear"}

    def _register_level_buffers(self) -> None:
        d = self.n_input_dims
        lv = self.levels
        # Buffers (not persistent): derived from the config, so checkpoints hold only `params`.
        self.register_buffer("_scale", torch.tensor([l.scale for l in lv], dtype=torch.float64), persistent=False)
        self.register_buffer("_offset", torch.tensor([l.offset for l in lv], dtype=torch.int64), persistent=False)
        self.register_buffer("_size", torch.tensor([l.size for l in lv], dtype=torch.int64), persistent=False)
        self.register_buffer("_hashed", torch.tensor([l.hashed for l in lv]), persistent=False)
        strides = torch.tensor([[l.resolution ** k for k in range(d)] for l in lv], dtype=torch.int64)
        self.register_buffer("_strides", strides, persistent=False)
        self.register_buffer("_primes", torch.tensor(HASH_PRIMES[:d], dtype=torch.int64), persistent=False)
        hashed = [l.hashed for l in lv]
        self._n_dense = hashed.index(True) if any(hashed) else len(lv)
        if any(not h for h in hashed[self._n_dense:]):
            raise AssertionError("tcnn layouts hash only the finer levels")

    def resolve_backend(self, device: torch.device) -> str:
        """The backend that runs on `device` for this module's requested backend."""
        device = torch.device(device)
        wanted = self.requested_backend
        if wanted == "torch":
            return "torch"
        if wanted == "tcnn":
            if device.type != "cuda" or backends.tcnn_module() is None:
                raise RuntimeError("backend='tcnn' needs tinycudann installed and a CUDA device; "
                                   "use backend='auto' to fall back to Triton or the PyTorch hash grid")
            return "tcnn"
        if wanted == "triton":
            if not self._triton_supported():
                raise ValueError(f"backend='triton' supports 1..{TRITON_MAX_DIMS} input dims and a power-of-two "
                                 f"n_features_per_level (got {self.n_input_dims}, {self.n_features_per_level}); "
                                 "use backend='torch'")
            if backends.triton_module() is None:
                raise RuntimeError("backend='triton' needs the triton package (pip install triton); "
                                   "use backend='auto' or 'torch'")
            if device.type != "cuda" and not backends.triton_interpreting():
                raise RuntimeError(f"backend='triton' runs on CUDA devices (got {device.type}); set "
                                   "TRITON_INTERPRET=1 to run it in Triton's CPU interpreter, or use backend='torch'")
            return "triton"
        chosen = backends.hash_grid_backend(device)
        if chosen == "triton" and not self._triton_supported():
            chosen = "torch"
        if chosen == "torch" and device.type == "cuda":
            backends.warn_once("hashgrid-torch", "neither tinycudann nor triton importable: using the "
                               "pure-PyTorch hash grid (same function, slower)")
        return chosen

    def _triton_supported(self) -> bool:
        f = self.n_features_per_level
        return self.n_input_dims <= TRITON_MAX_DIMS and f & (f - 1) == 0

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, D) in [0, 1]; returns (N, n_levels * F)."""
        if x.ndim != 2 or x.shape[-1] != self.n_input_dims:
            raise ValueError(f"expected inputs of shape (N, {self.n_input_dims}) ({self.n_input_dims} dims), "
                             f"got shape {tuple(x.shape)}")
        backend = self.resolve_backend(x.device)
        if backend == "tcnn":
            return self._forward_tcnn(x)
        if backend == "triton" and not x.requires_grad and self.params.dtype == torch.float32:
            try:
                return self._forward_triton(x)
            except Exception as err:  # compiling or launching failed: auto falls back, explicit raises
                if self.requested_backend == "triton":
                    raise
                backends.triton_failed(err)
        if len(x) == 0:
            return x.new_zeros((0, self.n_output_dims))
        if x.requires_grad or x.device.type != "cpu":
            # Gradients w.r.t. x, or a GPU without tcnn/triton: the composite autograd formulation.
            return torch.cat([self._forward_autograd(c) for c in x.split(self.chunk_size)], 0)
        save = torch.is_grad_enabled() and self.params.requires_grad
        return _TorchHashGrid.apply(x, self.params, self, save)

    def _forward_tcnn(self, x: Tensor) -> Tensor:
        if self._tcnn is None:
            enc = backends.tcnn_module().Encoding(self.n_input_dims, self.tcnn_config(), dtype=torch.float32)
            object.__setattr__(self, "_tcnn", enc)  # not a submodule: `params` stays the one state entry
        self._tcnn.params = self.params
        return self._tcnn(x.float()).to(x.dtype)

    def _forward_triton(self, x: Tensor) -> Tensor:
        from . import triton_hashgrid as tg

        tables = self._triton_tables.get(x.device)
        if tables is None:
            tables = self._triton_tables[x.device] = tg.LevelTables(self.levels, x.device)
        return tg.TritonHashGrid.apply(x.float(), self.params, tables, self.n_features_per_level).to(x.dtype)

    def corner_indices(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Table rows (N, L, 2^D) and multilinear weights (N, L, 2^D) of every corner at every level.

        Corner c has offset bit k = (c >> k) & 1 along dimension k. The per-corner values are built by
        doubling along one dimension at a time, so each dimension costs one pass (levels vectorised).
        Differentiable in x (the weights); used when x needs a gradient and by the tests.
        """
        pos = fused_positions(x, self._scale)  # (N, L, D)
        cell = torch.floor(pos)
        frac = pos - cell
        cell = cell.long()
        n_dense = self._n_dense
        # Coarse levels are dense, fine ones hashed (resolution grows with the level).
        dense = self._combine(cell[:, :n_dense], lambda k, c: c * self._strides[None, :n_dense, k:k + 1],
                              torch.add)
        hashed = self._combine(cell[:, n_dense:], lambda k, c: (c * int(self._primes[k])) & _UINT32,
                               torch.bitwise_xor)
        index = torch.cat([dense, hashed], 1)
        rows = index % self._size[None, :, None] + self._offset[None, :, None]
        weight = None
        for k in range(self.n_input_dims):
            f = frac[:, :, k:k + 1]
            pair = torch.cat([1 - f, f], -1)  # (N, L, 2)
            weight = pair if weight is None else (weight.unsqueeze(-2) * pair.unsqueeze(-1)).flatten(-2)
        return rows, weight

    def _combine(self, cell: Tensor, term, op) -> Tensor:
        """Fold per-dimension corner terms term(k, cell_k + bit) with `op` over all 2^D corners."""
        out = None
        for k in range(self.n_input_dims):
            c = cell[:, :, k:k + 1]
            pair = torch.cat([term(k, c), term(k, c + 1)], -1)  # (N, L', 2): bit 0 / bit 1
            out = pair if out is None else op(out.unsqueeze(-2), pair.unsqueeze(-1)).flatten(-2)
        return out

    def _forward_autograd(self, x: Tensor) -> Tensor:
        rows, weight = self.corner_indices(x)
        n, n_levels, n_corners = rows.shape
        table = self.params.view(-1, self.n_features_per_level).to(weight.dtype)
        feats = table.index_select(0, rows.reshape(-1)).view(n, n_levels, n_corners, self.n_features_per_level)
        return (feats * weight.unsqueeze(-1)).sum(2).reshape(n, n_levels * self.n_features_per_level)

    def extra_repr(self) -> str:
        return (f"D={self.n_input_dims}, levels={self.n_levels}, F={self.n_features_per_level}, "
                f"log2_T={self.log2_hashmap_size}, base={self.base_resolution}, scale={self.per_level_scale}, "
                f"params={self.params.numel():,}")

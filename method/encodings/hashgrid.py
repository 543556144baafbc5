"""Multiresolution hash-grid encoding that computes exactly tiny-cuda-nn's `HashGrid` function.

Both backends read the same flat parameter vector `params`, laid out as tcnn lays it out:
level after level, `params[(offset[level] + index) * F + f]`. A checkpoint therefore moves between
a CUDA machine running tinycudann and a CPU machine running the PyTorch backend unchanged.

Per level (tcnn's `grid_scale`, `grid_resolution`, `pos_fract`, `grid_index`):

    scale      = exp2(level * log2(per_level_scale)) * base_resolution - 1        (float32)
    resolution = ceil(scale) + 1
    pos        = scale * x + 0.5;  cell = floor(pos);  frac = pos - cell
    table size = min(next_multiple(resolution^D, 8), 2^log2_hashmap_size)
    index      = sum_d corner_d * resolution^d            if the table holds the dense grid
               = xor_d (corner_d * prime_d) mod 2^32      otherwise (tcnn's "coherent prime" hash)
    index      = index mod table size
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from method import backends

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


class HashGridEncoding(nn.Module):
    """tcnn-exact multiresolution hash grid over inputs in [0, 1]^D; output (N, n_levels * F)."""

    def __init__(self, n_input_dims: int, n_levels: int = 16, n_features_per_level: int = 2,
                 log2_hashmap_size: int = 19, base_resolution: int = 16, per_level_scale: float = 1.4472692,
                 backend: str = "auto", chunk_size: int = 1 << 16):
        super().__init__()
        if backend not in ("auto", "torch", "tcnn"):
            raise ValueError(f"backend must be 'auto', 'torch' or 'tcnn', got {backend!r}")
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
        self._tcnn = None  # built lazily on first CUDA call; shares self.params

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
        if self.requested_backend == "torch":
            return "torch"
        available = device.type == "cuda" and backends.tcnn_module() is not None
        if self.requested_backend == "tcnn" and not available:
            raise RuntimeError("backend='tcnn' needs tinycudann installed and a CUDA device; "
                               "use backend='auto' to fall back to the PyTorch hash grid")
        if not available:
            backends.warn_once("hashgrid-torch", "tinycudann not active: using the pure-PyTorch hash grid "
                               "(same function, slower)")
            return "torch"
        return "tcnn"

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, D) in [0, 1]; returns (N, n_levels * F)."""
        if x.shape[-1] != self.n_input_dims:
            raise ValueError(f"expected inputs with {self.n_input_dims} dims, got shape {tuple(x.shape)}")
        if self.resolve_backend(x.device) == "tcnn":
            return self._forward_tcnn(x)
        return torch.cat([self._forward_torch(c) for c in x.split(self.chunk_size)], 0) if len(x) else \
            x.new_zeros((0, self.n_output_dims))

    def _forward_tcnn(self, x: Tensor) -> Tensor:
        if self._tcnn is None:
            enc = backends.tcnn_module().Encoding(self.n_input_dims, self.tcnn_config(), dtype=torch.float32)
            object.__setattr__(self, "_tcnn", enc)  # not a submodule: `params` stays the one state entry
        self._tcnn.params = self.params
        return self._tcnn(x.float()).to(x.dtype)

    def corner_indices(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Table rows (N, L, 2^D) and multilinear weights (N, L, 2^D) of every corner at every level.

        Corner c has offset bit k = (c >> k) & 1 along dimension k. The per-corner values are built by
        doubling along one dimension at a time, so each dimension costs one pass (levels vectorised).
        """
        scale = self._scale.to(x.dtype) if x.dtype == torch.float64 else self._scale.float()
        pos = x.unsqueeze(1) * scale[None, :, None] + 0.5  # (N, L, D)
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

    def _forward_torch(self, x: Tensor) -> Tensor:
        rows, weight = self.corner_indices(x)
        n, n_levels, n_corners = rows.shape
        table = self.params.view(-1, self.n_features_per_level).to(x.dtype)
        # index_select + weighted sum: its backward is a scatter-add, much faster on CPU than
        # embedding_bag's sort-based dense backward.
        feats = table.index_select(0, rows.reshape(-1)).view(n, n_levels, n_corners, self.n_features_per_level)
        return (feats * weight.unsqueeze(-1)).sum(2).reshape(n, n_levels * self.n_features_per_level)

    def extra_repr(self) -> str:
        return (f"D={self.n_input_dims}, levels={self.n_levels}, F={self.n_features_per_level}, "
                f"log2_T={self.log2_hashmap_size}, base={self.base_resolution}, scale={self.per_level_scale}, "
                f"params={self.params.numel():,}")

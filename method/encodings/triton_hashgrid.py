"""Triton kernels for the tcnn-exact hash grid (forward, and backward into the flat `params` vector).

Same function and parameter layout as `hashgrid.py` (see its docstring): per level
pos = fmaf(x, scale, 0.5) (computed in float64, rounded once), cell = floor(pos), frac = pos - cell;
corner c takes cell_d + ((c >> d) & 1) and weight prod_d (frac_d or 1 - frac_d) multiplied in
dimension order; the table row is the dense index sum_d corner_d * res^d or the hash
xor_d corner_d * prime_d (uint32 arithmetic), modulo the level's table size. Features accumulate
corner by corner as tcnn does. Inputs up to 4 dimensions, F a power of two, float32.

One program handles BLOCK points of one level (grid = (ceil(N / BLOCK), n_levels)). The backward
scatters w * dL/dout into the parameter gradient with atomic adds, as tcnn does, so points sharing
a table entry (coarse dense levels, hash collisions) are summed in an unspecified order.

Import this module only when Triton is wanted: importing it imports triton. The tests run these
kernels on CPU under Triton's interpreter (TRITON_INTERPRET=1, set before triton is imported).
"""

from __future__ import annotations


import torch
import triton
import triton.language as tl

from method.backends import triton_interpreting

# Points per program. The interpreter runs programs one after another in Python, so it gets fewer,
# larger blocks; the function computed does not depend on the block size.
BLOCK = 512 if triton_interpreting() else 128

# tcnn's coherent_prime_hash factors of dimensions 1..3 (dimension 0's is 1).
_P1: tl.constexpr = tl.constexpr(2654435761)
_P2: tl.constexpr = tl.constexpr(805459861)
_P3: tl.constexpr = tl.constexpr(3674653429)


@triton.jit
def _hashgrid_kernel(x_ptr, params_ptr, out_ptr, grad_out_ptr, grad_params_ptr, scale_ptr, res_ptr, offset_ptr,
                     size_ptr, hashed_ptr, N, L: tl.constexpr, D: tl.constexpr, F: tl.constexpr,
                     BLOCK: tl.constexpr, BACKWARD: tl.constexpr, SEM: tl.constexpr = "relaxed"):
    """Forward (out = grid(x)) or, with BACKWARD, grad_params += dL/dout scattered to the corners.

    Written as one kernel without helper calls: the interpreter pays per call, the compiler inlines.
    `SEM` is the atomic adds' memory order. The sum needs none, so "relaxed" (as inductor's scatter-adds):
    Triton's default, "acq_rel", puts a GPU-wide barrier and an L1 invalidation around every add
    (`tests/encodings/test_hashgrid_triton.py` reads the machine code). `benchmarks/encoding.py` times both.
    """
    level = tl.program_id(1)
    n = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    x_row = x_ptr + n.to(tl.int64) * D
    scale = tl.load(scale_ptr + level).to(tl.float64)
    res = tl.load(res_ptr + level).to(tl.uint32)
    offset = tl.load(offset_ptr + level)
    size = tl.load(size_ptr + level).to(tl.uint32)
    is_hashed = tl.load(hashed_ptr + level) != 0
    # Per coordinate: pos = x * scale + 0.5 rounded to float32 once, as tcnn's fmaf (the float32 product
    # is exact in float64; tl.fma is not exact in the interpreter), cell = floor(pos), frac = pos - cell.
    # Unused coordinates (d >= D) are placeholders copied from coordinate 0.
    p0 = (tl.load(x_row, mask=mask, other=0.0).to(tl.float64) * scale + 0.5).to(tl.float32)
    c0 = tl.floor(p0)
    f0 = p0 - c0
    c0 = c0.to(tl.int32).to(tl.uint32, bitcast=True)
    c1, f1, c2, f2, c3, f3 = c0, f0, c0, f0, c0, f0
    if D > 1:
        p1 = (tl.load(x_row + 1, mask=mask, other=0.0).to(tl.float64) * scale + 0.5).to(tl.float32)
        c1 = tl.floor(p1)
        f1 = p1 - c1
        c1 = c1.to(tl.int32).to(tl.uint32, bitcast=True)
    if D > 2:
        p2 = (tl.load(x_row + 2, mask=mask, other=0.0).to(tl.float64) * scale + 0.5).to(tl.float32)
        c2 = tl.floor(p2)
        f2 = p2 - c2
        c2 = c2.to(tl.int32).to(tl.uint32, bitcast=True)
    if D > 3:
        p3 = (tl.load(x_row + 3, mask=mask, other=0.0).to(tl.float64) * scale + 0.5).to(tl.float32)
        c3 = tl.floor(p3)
        f3 = p3 - c3
        c3 = c3.to(tl.int32).to(tl.uint32, bitcast=True)
    feat = tl.arange(0, F)  # F is a power of two (tcnn allows 1, 2, 4, 8)
    io = n.to(tl.int64)[:, None] * (L * F) + level * F + feat[None, :]
    if BACKWARD:
        g = tl.load(grad_out_ptr + io, mask=mask[:, None], other=0.0)
    else:
        acc = tl.zeros([BLOCK, F], tl.float32)
    for c in tl.static_range(1 << D):
        # Corner c: coordinate d is cell_d + bit d of c; weight multiplied in dimension order (as tcnn).
        if c & 1:
            dense = c0 + 1
            w = f0
        else:
            dense = c0
            w = 1.0 - f0
        hashed = dense
        stride = res
        if D > 1:
            if (c >> 1) & 1:
                k = c1 + 1
                w = w * f1
            else:
                k = c1
                w = w * (1.0 - f1)
            dense = dense + k * stride
            hashed = hashed ^ (k * _P1)
            stride = stride * res
        if D > 2:
            if (c >> 2) & 1:
                k = c2 + 1
                w = w * f2
            else:
                k = c2
                w = w * (1.0 - f2)
            dense = dense + k * stride
            hashed = hashed ^ (k * _P2)
            stride = stride * res
        if D > 3:
            if (c >> 3) & 1:
                k = c3 + 1
                w = w * f3
            else:
                k = c3
                w = w * (1.0 - f3)
            dense = dense + k * stride
            hashed = hashed ^ (k * _P3)
        row = (offset + (tl.where(is_hashed, hashed, dense) % size).to(tl.int64)) * F
        ptr = row[:, None] + feat[None, :]
        if BACKWARD:
            tl.atomic_add(grad_params_ptr + ptr, w[:, None] * g, mask=mask[:, None], sem=SEM)
        else:
            acc = acc + w[:, None] * tl.load(params_ptr + ptr, mask=mask[:, None], other=0.0)
    if not BACKWARD:
        tl.store(out_ptr + io, acc, mask=mask[:, None])


class LevelTables:
    """Per-level constants of one encoding as small device tensors, the kernels' arguments."""

    def __init__(self, levels, device: torch.device):
        self.scale = torch.tensor([lv.scale for lv in levels], dtype=torch.float32, device=device)
        self.res = torch.tensor([lv.resolution for lv in levels], dtype=torch.int64, device=device)
        self.offset = torch.tensor([lv.offset for lv in levels], dtype=torch.int64, device=device)
        self.size = torch.tensor([lv.size for lv in levels], dtype=torch.int64, device=device)
        self.hashed = torch.tensor([int(lv.hashed) for lv in levels], dtype=torch.int32, device=device)
        self.n_levels = len(levels)

    def args(self):
        return self.scale, self.res, self.offset, self.size, self.hashed


# The backward's atomic memory order (the kernel's SEM); benchmarks/encoding.py sets "acq_rel" for its reference.
ATOMIC_SEM = "relaxed"


class TritonHashGrid(torch.autograd.Function):
    """out = grid(x; params) with the Triton kernels; gradient for `params` only (x is treated as data)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, params: torch.Tensor, tables: LevelTables, n_features: int) -> torch.Tensor:
        x = x.contiguous()
        n, d = x.shape
        out = torch.empty((n, tables.n_levels * n_features), dtype=torch.float32, device=x.device)
        if n:
            grid = (triton.cdiv(n, BLOCK), tables.n_levels)
            _hashgrid_kernel[grid](x, params, out, out, params, *tables.args(), n, L=tables.n_levels, D=d,
                                   F=n_features, BLOCK=BLOCK, BACKWARD=False)
        ctx.save_for_backward(x)
        ctx.tables, ctx.n_features, ctx.n_params = tables, n_features, params.numel()
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        tables, n_features = ctx.tables, ctx.n_features
        grad_params = torch.zeros(ctx.n_params, dtype=torch.float32, device=x.device)
        n, d = x.shape
        if n:
            grid = (triton.cdiv(n, BLOCK), tables.n_levels)
            _hashgrid_kernel[grid](x, grad_params, grad_params, grad_out.float().contiguous(), grad_params,
                                   *tables.args(), n, L=tables.n_levels, D=d, F=n_features, BLOCK=BLOCK,
                                   BACKWARD=True, SEM=ATOMIC_SEM)
        return None, grad_params, None, None

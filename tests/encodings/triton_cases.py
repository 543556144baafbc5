"""Triton hash grid against the PyTorch backend: values and parameter gradients, case by case.

Run by tests/encodings/test_hashgrid_triton.py: on CPU in a subprocess with TRITON_INTERPRET=1 (it
must be set before triton is imported), on CUDA in-process.

    TRITON_INTERPRET=1 python tests/encodings/triton_cases.py cpu     # every case; prints one JSON line
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

from method.encodings import HashGridEncoding

TINY = dict(n_levels=4, n_features_per_level=2, log2_hashmap_size=8, base_resolution=3, per_level_scale=1.9)
PAPER = dict(n_levels=16, n_features_per_level=2, log2_hashmap_size=19, base_resolution=16, per_level_scale=1.4472692)


def _points(d: int, n: int, g: torch.Generator) -> torch.Tensor:
    x = torch.rand(n, d, generator=g)
    k = n // 4
    x[:k] = torch.randint(0, 9, (k, d), generator=g) / 8.0  # on cell borders of several levels
    x[k] = 0.0
    x[k + 1] = 1.0  # the +0.5 offset makes the far corner wrap around in dense levels
    return x


def _duplicates(d: int, g: torch.Generator) -> torch.Tensor:
    # Three distinct points, each 70 times, interleaved: many atomic adds on the same entries,
    # within one program and across programs.
    return torch.rand(3, d, generator=g).repeat(70, 1)


def rounding_sensitive_points(levels, d: int, n: int) -> torch.Tensor:
    """float32 points (n, d) where x * scale + 0.5 rounded twice (multiply, then add) differs from the
    single rounding of tcnn's fmaf at some level: near pos = 2^k the second rounding moves pos by an
    ulp of the coarser binade (up to 1e-4 of a cell at the finest levels)."""
    f32 = np.float32
    found = []
    for lv in levels:
        s = f32(lv.scale)
        for k in range(3, 13):
            x0 = f32((2.0 ** k - 0.5) / float(s))
            if not 0 < x0 < 1:
                continue
            for step in range(-24, 25):
                x = f32(x0 + f32(step) * np.spacing(x0))
                if f32(f32(x * s) + f32(0.5)) != f32(np.float64(x) * np.float64(s) + 0.5):
                    found.append(x)
    assert len(found) >= n, "not enough rounding-sensitive coordinates"
    pick = np.asarray(found, dtype=np.float32)[np.linspace(0, len(found) - 1, n * d).astype(int)]
    return torch.from_numpy(pick.reshape(d, n).T.copy())


CASES = {
    "tiny3d": (3, TINY, lambda g: _points(3, 300, g)),
    "tiny4d": (4, TINY, lambda g: _points(4, 300, g)),
    "paper3d": (3, PAPER, lambda g: _points(3, 40, g)),
    "paper4d": (4, PAPER, lambda g: _points(4, 24, g)),
    "duplicates3d": (3, TINY, lambda g: _duplicates(3, g)),
    "duplicates4d": (4, TINY, lambda g: _duplicates(4, g)),
    "fma_rounding3d": (3, PAPER, lambda g: rounding_sensitive_points(
        HashGridEncoding(3, **PAPER, backend="torch").levels, 3, 24)),
    "f1_hashed_only": (3, dict(n_levels=2, n_features_per_level=1, log2_hashmap_size=4, base_resolution=8,
                               per_level_scale=2.0), lambda g: _points(3, 130, g)),
}


def run_case(name: str, device: str) -> None:
    """Raise AssertionError unless the Triton backend equals the PyTorch one on this case."""
    d, cfg, make_x = CASES[name]
    g = torch.Generator().manual_seed(sum(map(ord, name)))
    ref = HashGridEncoding(d, **cfg, backend="torch")
    tri = HashGridEncoding(d, **cfg, backend="triton")
    # Values of order one, so an index or weight error shows as an O(1) difference.
    ref.params.data.copy_(torch.randn(ref.params.shape, generator=g))
    tri.load_state_dict(ref.state_dict())
    tri.to(device)
    assert tri.resolve_backend(torch.device(device)) == "triton"
    x = make_x(g)
    upstream = torch.randn(len(x), ref.n_output_dims, generator=g)

    out_ref = ref(x)
    (grad_ref,) = torch.autograd.grad((out_ref * upstream).sum(), ref.params)
    out_tri = tri(x.to(device))
    (grad_tri,) = torch.autograd.grad((out_tri * upstream.to(device)).sum(), tri.params)

    # Same positions, indices and weights; only the order/fusion of the float32 corner sum differs.
    torch.testing.assert_close(out_tri.cpu(), out_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_tri.cpu(), grad_ref, rtol=1e-5, atol=1e-5)
    hit = grad_ref != 0
    assert hit.any() and torch.equal(grad_tri.cpu() != 0, hit), "Triton touched other table entries"


def _fast_interpreter() -> None:
    """Turn off the interpreter's per-operation integer-overflow bookkeeping (it only feeds device
    asserts, which run in debug mode only; the kernels' uint32 hashing wraps on purpose)."""
    import dataclasses

    from triton.runtime import interpreter

    builder = interpreter.interpreter_builder
    builder.options = dataclasses.replace(builder.options, sanitize_overflow=False)


def main(device: str) -> dict[str, str]:
    """Run every case; map each name to 'ok' or its failure message."""
    results = {}
    for name in CASES:
        try:
            run_case(name, device)
            results[name] = "ok"
        except Exception as exc:  # reported per case by the test
            results[name] = f"{type(exc).__name__}: {exc}"
    return results


if __name__ == "__main__":
    if os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        sys.exit("set TRITON_INTERPRET=1 to run the kernels in Triton's interpreter")
    _fast_interpreter()
    print("RESULTS " + json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "cpu")))

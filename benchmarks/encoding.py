"""Hash-grid encoding throughput (points/s, forward+backward) at paper settings, against the PyTorch
backend as it was before the CPU rewrite (kept here verbatim) measured in the same run, with the
Triton / tcnn backends on CUDA (Triton also with its backward's atomic adds in Triton's default acq_rel order,
`triton_acq_rel`, the reference for the relaxed adds it uses); and the renderer's rays/s for a 256x256 frame at 512 samples
through the real 4D-fy field (static 3D + dynamic 4D grids + heads).

    .venv/bin/python benchmarks/encoding.py [--points 65536] [--repeats 3] [--device cpu|cuda]
                                            [--threads N] [--profile] [--skip-render]

Writes a Markdown table to stdout; `benchmarks/encoding_results.md` holds the figures of record.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from method.encodings import HashGridEncoding  # noqa: E402
from method.fields import FieldConfig, SceneField  # noqa: E402


def reference_forward(enc: HashGridEncoding, x: torch.Tensor, fused: bool = False) -> torch.Tensor:
    """The PyTorch backend as it was before the CPU rewrite (commit 8bbbd1f), kept verbatim as the
    baseline: all levels at once in int64, (N, L, 2^D) rows, index_select + weighted sum, autograd
    backward. With fused=True the position is rounded once (the fmaf fix); otherwise unchanged."""
    def combine(cell, term, op):
        out = None
        for k in range(enc.n_input_dims):
            c = cell[:, :, k:k + 1]
            pair = torch.cat([term(k, c), term(k, c + 1)], -1)
            out = pair if out is None else op(out.unsqueeze(-2), pair.unsqueeze(-1)).flatten(-2)
        return out

    outs = []
    for x in x.split(enc.chunk_size):
        if fused:
            pos = (x.double().unsqueeze(1) * enc._scale[None, :, None] + 0.5).float()
        else:
            scale = enc._scale.to(x.dtype) if x.dtype == torch.float64 else enc._scale.float()
            pos = x.unsqueeze(1) * scale[None, :, None] + 0.5  # (N, L, D)
        cell = torch.floor(pos)
        frac = pos - cell
        cell = cell.long()
        n_dense = enc._n_dense
        dense = combine(cell[:, :n_dense], lambda k, c: c * enc._strides[None, :n_dense, k:k + 1], torch.add)
        hashed = combine(cell[:, n_dense:], lambda k, c: (c * int(enc._primes[k])) & 0xFFFFFFFF,
                         torch.bitwise_xor)
        index = torch.cat([dense, hashed], 1)
        rows = index % enc._size[None, :, None] + enc._offset[None, :, None]
        weight = None
        for k in range(enc.n_input_dims):
            f = frac[:, :, k:k + 1]
            pair = torch.cat([1 - f, f], -1)
            weight = pair if weight is None else (weight.unsqueeze(-2) * pair.unsqueeze(-1)).flatten(-2)
        n, n_levels, n_corners = rows.shape
        table = enc.params.view(-1, enc.n_features_per_level).to(x.dtype)
        feats = table.index_select(0, rows.reshape(-1)).view(n, n_levels, n_corners, enc.n_features_per_level)
        outs.append((feats * weight.unsqueeze(-1)).sum(2).reshape(n, n_levels * enc.n_features_per_level))
    return torch.cat(outs, 0)


def top_costs(fn, rows: int = 6) -> str:
    """The most expensive operators of one call of fn (torch.profiler, self CPU time), as table rows."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    lines = [f"| {e.key} | {e.self_cpu_time_total / 1e3:,.1f} | {e.count} |" for e in events[:rows]]
    return "\n".join(lines + [f"| (all operators) | {total / 1e3:,.1f} | |"])


CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
clock = time.perf_counter


def timed(fn, device, repeats):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = clock()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, clock() - t0)
    return best


def bench_encodings(n_points: int, repeats: int, device: torch.device, profile: bool = False) -> list[dict]:
    rows = []
    for d in (3, 4):
        enc = HashGridEncoding(d, backend="torch").to(device)
        x = torch.rand(n_points, d, device=device)

        def step(forward):
            def run():
                enc.params.grad = None
                forward(x).sum().backward()
            return run

        ours, before = step(enc), step(lambda xx: reference_forward(enc, xx))
        with torch.no_grad():  # same function before timing it
            new_out, ref_fused = enc(x), reference_forward(enc, x, fused=True)
            row = {"bitwise_vs_before_with_fma": bool(torch.equal(new_out, ref_fused)),
                   "max_diff_vs_before": float((new_out - reference_forward(enc, x)).abs().max())}
        t_ours, t_before = timed(ours, device, repeats), timed(before, device, repeats)
        row.update({"encoding": f"{d}D hash grid ({enc.params.numel() / 1e6:.1f}M params)",
                    "ours_pts_s": n_points / t_ours, "before_pts_s": n_points / t_before,
                    "speedup": t_before / t_ours})
        if profile:
            row["profile_before"], row["profile_after"] = top_costs(before), top_costs(ours)
        for backend in ("triton", "tcnn"):
            if device.type != "cuda" or HashGridEncoding(d).resolve_backend(device) == "torch":
                continue
            try:
                other = HashGridEncoding(d, backend=backend).to(device)
            except (RuntimeError, ValueError):
                continue
            other.load_state_dict(enc.state_dict())
            try:
                row[f"{backend}_pts_s"] = n_points / timed(step(other), device, repeats)
            except RuntimeError:  # backend not available on this machine
                continue
            if backend == "triton":  # its reference in the same run: the atomic adds in Triton's default order
                from method.encodings import triton_hashgrid as tg

                tg.ATOMIC_SEM = "acq_rel"
                try:
                    row["triton_acq_rel_pts_s"] = n_points / timed(step(other), device, repeats)
                finally:
                    tg.ATOMIC_SEM = "relaxed"
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=65536)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--render-rays", type=int, default=1024, help="pixels of the 256x256 frame timed on CPU")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--clock", choices=list(CLOCK), default="wall",
                    help="wall time, or this process's CPU time (robust when other jobs share the cores)")
    ap.add_argument("--profile", action="store_true", help="print the top operators before/after")
    ap.add_argument("--skip-render", action="store_true", help="hash grid only")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    global clock
    clock = CLOCK[args.clock]
    torch.manual_seed(0)
    print(f"device: {device} ({torch.get_num_threads()} threads), torch {torch.__version__}, "
          f"{platform.machine()}, {args.clock} clock, load average {os.getloadavg()[0]:.1f}\n")
    print("| encoding | after (points/s, fwd+bwd) | before (same run) | speedup | same output |")
    print("|---|---|---|---|---|")
    results = bench_encodings(args.points, args.repeats, device, args.profile)
    for r in results:
        extra = "".join(f" ({b} {r[b + '_pts_s']:,.0f})" for b in ("triton", "triton_acq_rel", "tcnn")
                        if b + "_pts_s" in r)
        same = ("bit-identical to before + fmaf positions" if r["bitwise_vs_before_with_fma"] else "DIFFERENT") + \
            f"; max diff vs before {r['max_diff_vs_before']:.1e}"
        print(f"| {r['encoding']} | {r['ours_pts_s']:,.0f}{extra} | {r['before_pts_s']:,.0f} | "
              f"{r['speedup']:.1f}x | {same} |")
    for r in results if args.profile else []:
        for when in ("before", "after"):
            print(f"\n{r['encoding']}, top operators {when} (one fwd+bwd call):\n\n"
                  f"| operator | self CPU ms | calls |\n|---|---|---|\n{r['profile_' + when]}")
    if args.skip_render:
        return

    from render import bench_render

    field = SceneField(FieldConfig()).to(device)
    res = bench_render(lambda x, t: field(x, t, 0.5), field.background, device, num_samples=512,
                       max_rays=None if device.type == "cuda" else args.render_rays, repeats=args.repeats)
    print("\nrenderer, 256x256 frame, 512 samples per ray, paper-size 4D-fy field:")
    for k, v in res.items():
        print(f"- {k}: {v:,.1f}" if isinstance(v, float) else f"- {k}: {v}")


if __name__ == "__main__":
    main()

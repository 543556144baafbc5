"""Hash-grid encoding throughput (points/s, forward+backward) at paper settings, against a naive
per-level-loop PyTorch version measured in the same run; and the renderer's rays/s for a 256x256
frame at 512 samples through the real 4D-fy field (static 3D + dynamic 4D grids + heads).

    .venv/bin/python benchmarks/encoding.py [--points 65536] [--repeats 3] [--device cpu|cuda]

Writes a Markdown table to stdout; `benchmarks/encoding_results.md` holds the figures of record.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from method.encodings import HashGridEncoding  # noqa: E402
from method.encodings.hashgrid import HASH_PRIMES  # noqa: E402
from method.fields import FieldConfig, SceneField  # noqa: E402


def naive_forward(enc: HashGridEncoding, x: torch.Tensor) -> torch.Tensor:
    """The textbook implementation: a Python loop over levels and over corners."""
    d, f = enc.n_input_dims, enc.n_features_per_level
    table = enc.params.view(-1, f)
    outs = []
    for lv in enc.levels:
        pos = x * lv.scale + 0.5
        cell = torch.floor(pos).long()
        frac = pos - cell
        acc = 0
        for corner in range(2 ** d):
            idx = torch.zeros(len(x), dtype=torch.long)
            h = torch.zeros(len(x), dtype=torch.long)
            w = torch.ones(len(x), dtype=x.dtype)
            for k in range(d):
                bit = (corner >> k) & 1
                c = cell[:, k] + bit
                idx = idx + c * lv.resolution ** k
                h = h ^ ((c * HASH_PRIMES[k]) & 0xFFFFFFFF)
                w = w * (frac[:, k] if bit else 1 - frac[:, k])
            row = (h if lv.hashed else idx) % lv.size + lv.offset
            acc = acc + table[row] * w[:, None]
        outs.append(acc)
    return torch.cat(outs, -1)


def timed(fn, device, repeats):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_encodings(n_points: int, repeats: int, device: torch.device) -> list[dict]:
    rows = []
    for d in (3, 4):
        enc = HashGridEncoding(d, backend="torch").to(device)
        x = torch.rand(n_points, d, device=device)

        def ours():
            enc.params.grad = None
            enc(x).sum().backward()

        def naive():
            enc.params.grad = None
            naive_forward(enc, x).sum().backward()

        torch.testing.assert_close(enc(x), naive_forward(enc, x))  # same function before timing it
        t_ours, t_naive = timed(ours, device, repeats), timed(naive, device, repeats)
        rows.append({"encoding": f"{d}D hash grid ({enc.params.numel() / 1e6:.1f}M params)",
                     "ours_pts_s": n_points / t_ours, "naive_pts_s": n_points / t_naive,
                     "speedup": t_naive / t_ours})
        if device.type == "cuda" and HashGridEncoding(d).resolve_backend(device) == "tcnn":
            tc = HashGridEncoding(d, backend="tcnn").to(device)
            tc.load_state_dict(enc.state_dict())

            def tcnn_run():
                tc.params.grad = None
                tc(x).sum().backward()

            t_tc = timed(tcnn_run, device, repeats)
            rows[-1]["tcnn_pts_s"] = n_points / t_tc
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=65536)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--render-rays", type=int, default=1024, help="pixels of the 256x256 frame timed on CPU")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device: {device} ({torch.get_num_threads()} threads), torch {torch.__version__}, "
          f"{platform.machine()}\n")
    print("| encoding | ours (points/s, fwd+bwd) | naive per-level loop | speedup |")
    print("|---|---|---|---|")
    for r in bench_encodings(args.points, args.repeats, device):
        extra = f" (tcnn {r['tcnn_pts_s']:,.0f})" if "tcnn_pts_s" in r else ""
        print(f"| {r['encoding']} | {r['ours_pts_s']:,.0f}{extra} | {r['naive_pts_s']:,.0f} | {r['speedup']:.1f}x |")

    from render import bench_render

    field = SceneField(FieldConfig()).to(device)
    res = bench_render(lambda x, t: field(x, t, 0.5), field.background, device, num_samples=512,
                       max_rays=None if device.type == "cuda" else args.render_rays, repeats=args.repeats)
    print("\nrenderer, 256x256 frame, 512 samples per ray, paper-size 4D-fy field:")
    for k, v in res.items():
        print(f"- {k}: {v:,.1f}" if isinstance(v, float) else f"- {k}: {v}")


if __name__ == "__main__":
    main()

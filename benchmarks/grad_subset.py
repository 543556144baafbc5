"""The release's gradient-subset renderer (`RenderConfig.grad_max_samples`): what a training render keeps
for its backward pass, and its time, with and without the cap, on the paper-size field.

One clip of `--frames` frames at `--height` x `--width` from one camera (the video update's layout, at a
size a CPU can run), the paper profile's field (hash grids, MLPs) and renderer (512 samples along the
diagonal, dense path), fwd + bwd of a plain image loss. "Saved" is the bytes autograd keeps for the
backward pass (counted with `torch.autograd.graph.saved_tensors_hooks`): the activation memory a
render adds on any device; it scales with the number of samples that carry gradients.

    python benchmarks/grad_subset.py [--frames 2 --height 40 --width 72] [--caps 100000,20000] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--height", type=int, default=40)
    ap.add_argument("--width", type=int, default=72)
    ap.add_argument("--caps", default="100000,20000", help="grad_max_samples values to compare with no cap")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from method.cameras import cameras_from_spherical
    from method.fields.scene import SceneField
    from method.render import RenderConfig, render_images
    from method.training.profiles import paper

    cfg = paper()
    torch.manual_seed(0)
    field = SceneField(cfg.field, cfg.background)
    cams = cameras_from_spherical(torch.tensor([30.0]), 15.0, 2.8, 40.0).repeat(args.frames)
    times = torch.arange(args.frames) / args.frames
    counted = []

    def field_fn(x, t):
        counted.append(len(x))
        return field(x, t, 0.5)

    rows = []
    reference = None
    for cap in [None] + [int(c) for c in args.caps.split(",")]:
        rcfg = RenderConfig(num_samples=cfg.renderer.num_samples, box_radius=cfg.renderer.box_radius,
                            grad_max_samples=cap, use_occupancy_grid=False)
        field.zero_grad()
        counted.clear()
        saved = 0

        def pack(t):
            nonlocal saved
            saved += t.numel() * t.element_size()
            return t

        t0 = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = render_images(field_fn, field.background, cams, times, args.height, args.width, rcfg,
                                generator=torch.Generator().manual_seed(1))
        out["rgb"].square().mean().backward()
        seconds = time.perf_counter() - t0
        samples = sum(counted)
        diff = 0.0 if reference is None else (out["rgb"] - reference).abs().max().item()
        reference = out["rgb"].detach() if reference is None else reference
        rows.append((cap, samples, saved, seconds, diff))

    n_rays = args.frames * args.height * args.width
    print(f"paper field, {args.frames} frame(s) of {args.height}x{args.width} ({n_rays} rays), "
          f"{rows[0][1]:,} samples, torch threads {torch.get_num_threads()}\n")
    print("| grad_max_samples | samples with gradient | saved for backward (MB) | bytes per ray | "
          "fwd+bwd s | max abs rgb diff to uncapped |\n|---|--:|--:|--:|--:|--:|")
    for cap, samples, saved, seconds, diff in rows:
        with_grad = samples if cap is None else min(cap, samples)
        print(f"| {cap if cap is not None else 'none'} | {with_grad:,} | {saved / 2**20:,.1f} | "
              f"{saved / n_rays:,.0f} | {seconds:.2f} | {diff:.1e} |")
    full = rows[0][2]
    per_sample = (full - rows[-1][2]) / (rows[0][1] - min(int(args.caps.split(",")[-1]), rows[0][1]))
    print(f"\nsaved bytes per sample with gradient: {per_sample:,.0f}; what stays with any cap "
          f"(compositing, per-sample bookkeeping): {(rows[-1][2] - per_sample * min(int(args.caps.split(',')[-1]), rows[0][1])) / n_rays:,.0f} bytes per ray")


if __name__ == "__main__":
    main()

"""What a 4D-fy update keeps for its backward pass (its activation memory), and the options that cut it.

Counted with `method.backends.saved_for_backward_bytes` (distinct storages autograd saves), so the
figures are the same on any device for the same dtype; fp16/bf16 frozen VAEs on a GPU keep about half
of the VAE's fp32 bytes. Three parts, all at the paper profile's sizes:

1. **Render** of the paper field (hash grids, MLPs) with the paper renderer (512 samples along the
   diagonal; the dense path, which keeps every sample), one camera, a `--frames`-frame clip at
   `--height` x `--width` (the video update's layout at a size a CPU runs in seconds), fwd + bwd of
   an image loss: no option, `renderer.recompute_field` (the same gradients), and the release's
   gradient-subset budgets `renderer.grad_max_samples` (a different gradient).
2. **Field alone**, bytes per sample by hash-grid backend (torch; Triton under its interpreter with
   `--triton-points`), plain and recomputed.
3. **VAE encoder** (the SD VAE, random weights) at each prior's input size, one image with gradient,
   plain and with `frozen.vae_gradient_checkpointing` (the same gradients), and what each update type
   encodes per call (MVDream 4 views at 256^2, VSD 1 view at 512^2, Zeroscope 16 frames at 320x576,
   4 with the low-VRAM profile's `grad_frames`).

    .venv/bin/python benchmarks/activation_memory.py [--frames 2 --height 40 --width 72] [--triton-points 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

PRIOR_INPUTS = {"3D (MVDream)": (256, 256, 4), "IMG (VSD)": (512, 512, 1), "VID (Zeroscope)": (320, 576, 16),
                "VID, low-VRAM `grad_frames` 4": (320, 576, 4)}
"""Update -> (height, width, images encoded with gradient per call) of the paper / release profiles."""


def render_rows(args, cfg, torch) -> tuple[list[tuple], int]:
    from method.backends import saved_for_backward_bytes
    from method.cameras import cameras_from_spherical
    from method.fields.scene import SceneField
    from method.render import RenderConfig, render_images

    torch.manual_seed(0)
    field = SceneField(cfg.field, cfg.background)
    cams = cameras_from_spherical(torch.tensor([30.0]), 15.0, 2.8, 40.0).repeat(args.frames)
    times = torch.arange(args.frames) / args.frames
    counted = []

    def field_fn(x, t):
        if torch.is_grad_enabled():
            counted.append(len(x))
        return field(x, t, 0.5)

    rows, reference = [], None
    for name, cap, recompute in (("none", None, False), ("recompute_field", None, True),
                                 *((f"grad_max_samples {c:.0e}", c, False) for c in args.caps),
                                 (f"grad_max_samples {args.caps[0]:.0e} + recompute_field", args.caps[0], True)):
        rcfg = RenderConfig(num_samples=cfg.renderer.num_samples, box_radius=cfg.renderer.box_radius,
                            grad_max_samples=cap, recompute_field=recompute, use_occupancy_grid=False)
        field.zero_grad()
        counted.clear()
        t0 = time.perf_counter()
        out, saved = saved_for_backward_bytes(render_images, field_fn, field.background, cams, times, args.height,
                                              args.width, rcfg, generator=torch.Generator().manual_seed(1))
        with_grad = sum(counted)
        out["rgb"].square().mean().backward()
        seconds = time.perf_counter() - t0
        grads = torch.cat([p.grad.reshape(-1) for p in field.parameters() if p.grad is not None])
        if reference is None:
            reference = (out["rgb"].detach(), grads)
        rgb_diff = (out["rgb"] - reference[0]).abs().max().item()
        grad_diff = (grads - reference[1]).abs().max().item() / reference[1].abs().max().item()
        rows.append((name, with_grad, saved, seconds, rgb_diff, grad_diff))
    return rows, args.frames * args.height * args.width


def field_rows(args, cfg, torch) -> list[tuple]:
    import dataclasses

    from torch.utils.checkpoint import checkpoint

    from method.backends import saved_for_backward_bytes
    from method.fields.scene import SceneField

    rows = []
    for backend, n in (("torch", 100_000), ("triton", args.triton_points)):
        if n <= 0:
            continue
        torch.manual_seed(0)
        field = SceneField(dataclasses.replace(cfg.field, grid_backend=backend), cfg.background)
        x, t = torch.rand(n, 3) * 2 - 1, torch.rand(n, 1)
        for groups in (("static", "dynamic"), ("dynamic",)):
            field.set_trainable(groups)
            _, plain = saved_for_backward_bytes(field, x, t, 0.5)
            _, lean = saved_for_backward_bytes(checkpoint, field, x, t, 0.5, use_reentrant=False)
            rows.append((backend, "+".join(groups), plain / n, lean / n))
    return rows


def vae_rows(torch) -> list[tuple]:
    from diffusers import AutoencoderKL

    from method.backends import saved_for_backward_bytes
    from method.guidance import architectures as A

    torch.manual_seed(0)
    vae = AutoencoderKL.from_config(A.SD_VAE).eval().requires_grad_(False)
    per_image = {}
    for h, w in sorted({(h, w) for h, w, _ in PRIOR_INPUTS.values()}):
        for ckpt in (False, True):
            vae.enable_gradient_checkpointing() if ckpt else vae.disable_gradient_checkpointing()
            x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h * w), requires_grad=True)
            t0 = time.perf_counter()
            z, saved = saved_for_backward_bytes(lambda: vae.encode(x * 2 - 1).latent_dist.mean)
            z.square().sum().backward()
            per_image[(h, w, ckpt)] = (saved, time.perf_counter() - t0, x.grad.clone())
        assert torch.equal(per_image[(h, w, False)][2], per_image[(h, w, True)][2]), "checkpointing changed the grad"
    return [(name, h, w, n, *(per_image[(h, w, c)][:2] for c in (False, True))) for name, (h, w, n)
            in PRIOR_INPUTS.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--height", type=int, default=40)
    ap.add_argument("--width", type=int, default=72)
    ap.add_argument("--caps", default="100000,20000", help="grad_max_samples values compared with no budget")
    ap.add_argument("--triton-points", type=int, default=0,
                    help="also measure the Triton grid's field under TRITON_INTERPRET=1 on this many points")
    ap.add_argument("--skip-vae", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    args.caps = [int(float(c)) for c in args.caps.split(",")]
    if args.triton_points > 0:
        os.environ["TRITON_INTERPRET"] = "1"  # read when the kernels are first defined (imported below)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from method.training.profiles import paper

    cfg = paper()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, `{' '.join(sys.argv[1:])}`\n")

    rows, n_rays = render_rows(args, cfg, torch)
    print(f"## Render: paper field, {args.frames} frame(s) of {args.height}x{args.width} ({n_rays:,} rays), "
          f"{rows[0][1]:,} samples, dense path\n")
    print("| option | samples with gradient | saved for backward (MB) | bytes per ray | fwd+bwd s | "
          "max abs rgb diff | max grad diff (rel.) |\n|---|--:|--:|--:|--:|--:|--:|")
    for name, with_grad, saved, seconds, rgb_diff, grad_diff in rows:
        print(f"| {name} | {with_grad:,} | {saved / 2**20:,.1f} | {saved / n_rays:,.0f} | {seconds:.2f} | "
              f"{rgb_diff:.1e} | {grad_diff:.1e} |")

    print("\n## Field alone: saved bytes per sample with gradient\n")
    print("| hash-grid backend | trained groups | plain | recompute_field |\n|---|---|--:|--:|")
    for backend, groups, plain, lean in field_rows(args, cfg, torch):
        print(f"| {backend} | {groups} | {plain:,.0f} | {lean:,.0f} |")

    if not args.skip_vae:
        print("\n## VAE encoder (SD VAE, fp32): saved for backward per call\n")
        print("| update | input | images with gradient | plain (GB) | vae_gradient_checkpointing (GB) | "
              "fwd+bwd s per image, plain / checkpointed |\n|---|---|--:|--:|--:|--:|")
        for name, h, w, n, (plain, s_plain), (lean, s_lean) in vae_rows(torch):
            print(f"| {name} | {h}x{w} | {n} | {n * plain / 2**30:.2f} | {n * lean / 2**30:.2f} | "
                  f"{s_plain:.1f} / {s_lean:.1f} |")


if __name__ == "__main__":
    main()

"""What a 4D-fy update keeps for its backward pass (its activation memory), and the options that cut it.

Two measures, both at the paper profile's sizes, on any device:
- "held": the bytes autograd keeps for backward when the forward returns (`method.backends.
  saved_for_backward_bytes`; parameters, resident anyway, not counted). The same on any device for the
  same dtype; fp16/bf16 frozen VAEs on a GPU keep about half of the fp32 figures below.
- "peak": the process's peak resident memory above its set-up during the forward and backward, each
  configuration in a fresh process (`resource.getrusage`). It adds what backward recomputes and the
  temporaries of each pass, which "held" leaves out.

Parts:
1. **Render** of the paper field (hash grids, MLPs) with the paper renderer (512 samples along the
   diagonal; the dense path, which keeps every sample), one camera, a `--frames`-frame clip at
   `--height` x `--width` (the video update's layout at a size a CPU runs in seconds), fwd + bwd of
   an image loss: no option, `renderer.recompute_field` (in regions of `recompute_chunk` samples, and
   in one region), and the release's gradient-subset budgets `renderer.grad_max_samples`.
2. **Field alone**, held bytes per sample by hash-grid backend (torch; Triton under its interpreter
   with `--triton-points`), plain and recomputed.
3. **VAE encoder** (the SD VAE, random weights) at each prior's input size, one image with gradient,
   plain and with `frozen.vae_gradient_checkpointing`, and per update call (MVDream 4 or 8 views at
   256^2, VSD 1 view at 512^2, Zeroscope 16 frames at 320x576, 4 with `grad_frames` 4): held bytes
   scale with the images, so a call's figure is the image's times the count. Then a `--vae-batch`
   batch in the video layout with diffusers' block checkpointing, one-image-at-a-time encoding (slicing)
   and both (what `vae_gradient_checkpointing` does): backward recomputes a block for the whole batch
   unless it is sliced.

    .venv/bin/python benchmarks/activation_memory.py [--frames 2 --height 40 --width 72] [--triton-points 2000]

At small sizes the peaks are dominated by the hash tables' gradients and allocator noise, not activations:
read them at the default size or larger.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

PRIOR_INPUTS = {"3D (MVDream), 1 group": (256, 256, 4), "3D (MVDream), 2 groups (stage 1 start)": (256, 256, 8),
                "IMG (VSD)": (512, 512, 1), "VID (Zeroscope)": (320, 576, 16),
                "VID, low-VRAM `grad_frames` 4": (320, 576, 4)}
"""Update -> (height, width, images VAE-encoded with gradient per call) in the paper / release profiles."""


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _in_fresh_process(fn, *args):
    """fn(*args) in a new process, so that its peak memory is its own."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def render_row(size: dict, threads: int, cap: int | None, recompute: bool, chunk: int, save_to: str) -> dict:
    """One render configuration (run in a fresh process): fwd + bwd twice (the second timed), held bytes,
    peak above set-up; the image and the gradients are saved to `save_to` for the diffs."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    from method.backends import saved_for_backward_bytes
    from method.cameras import cameras_from_spherical
    from method.fields.scene import SceneField
    from method.render import RenderConfig, render_images
    from method.training.profiles import paper

    cfg = paper()
    torch.manual_seed(0)
    field = SceneField(cfg.field, cfg.background)
    frames = size["frames"]
    cams = cameras_from_spherical(torch.tensor([30.0]), 15.0, 2.8, 40.0).repeat(frames)
    times = torch.arange(frames) / frames
    counted = []

    def field_fn(x, t):
        if torch.is_grad_enabled():
            counted.append(len(x))
        return field(x, t, 0.5)

    rcfg = RenderConfig(num_samples=cfg.renderer.num_samples, box_radius=cfg.renderer.box_radius,
                        grad_max_samples=cap, recompute_field=recompute, recompute_chunk=chunk,
                        use_occupancy_grid=False)
    setup = _rss_bytes()
    for _ in range(2):  # the first call warms up; the second is timed
        field.zero_grad()
        counted.clear()
        t0 = time.perf_counter()
        out, held = saved_for_backward_bytes(render_images, field_fn, field.background, cams, times,
                                             size["height"], size["width"], rcfg,
                                             generator=torch.Generator().manual_seed(1))
        n_forward = len(counted)
        out["rgb"].square().mean().backward()
        seconds = time.perf_counter() - t0
    grads = [p.grad for p in field.parameters() if p.grad is not None]
    torch.save({"rgb": out["rgb"].detach(), "grads": grads}, save_to)
    return {"with_grad": sum(counted[:n_forward]), "held": held, "seconds": seconds,
            "peak": _peak_bytes() - setup}


def render_rows(args) -> tuple[list[dict], int]:
    import torch

    size = {"frames": args.frames, "height": args.height, "width": args.width}
    big = 1 << 62  # one region
    specs = [("none", None, False, big), (f"recompute_field (regions of {args.chunk:,})", None, True, args.chunk),
             ("recompute_field, one region", None, True, big),
             *((f"grad_max_samples {c:.0e}", c, False, big) for c in args.caps),
             (f"grad_max_samples {args.caps[0]:.0e} + recompute_field", args.caps[0], True, args.chunk)]
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for name, cap, recompute, chunk in specs:
            path = str(Path(tmp) / "out.pt")
            r = _in_fresh_process(render_row, size, args.threads, cap, recompute, chunk, path)
            saved = torch.load(path)
            grads = torch.cat([g.reshape(-1) for g in saved["grads"]])
            reference = reference or (saved["rgb"], grads)
            r["rgb_diff"] = (saved["rgb"] - reference[0]).abs().max().item()
            r["grad_diff"] = ((grads - reference[1]).abs().max() / reference[1].abs().max()).item()
            rows.append({"option": name, **r})
    return rows, args.frames * args.height * args.width


def field_rows(args) -> list[tuple]:
    import dataclasses

    import torch
    from torch.utils.checkpoint import checkpoint

    from method.backends import saved_for_backward_bytes
    from method.fields.scene import SceneField
    from method.training.profiles import paper

    cfg = paper()
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


def vae_image(h: int, w: int, ckpt: bool, threads: int, n: int = 1, slicing: bool = False) -> dict:
    """`n` images through the SD VAE encoder with gradient (run in a fresh process): `ckpt` is diffusers' block
    checkpointing alone, `slicing` its one-image-at-a-time encoding (`vae_gradient_checkpointing` is both)."""
    import torch
    from diffusers import AutoencoderKL

    if threads:
        torch.set_num_threads(threads)
    from method.backends import saved_for_backward_bytes
    from method.guidance import architectures as A

    torch.manual_seed(0)
    vae = AutoencoderKL.from_config(A.SD_VAE).eval().requires_grad_(False)
    if ckpt:
        vae.enable_gradient_checkpointing()
    if slicing:
        vae.enable_slicing()
    x = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(h * w), requires_grad=True)
    setup = _rss_bytes()
    t0 = time.perf_counter()
    z, held = saved_for_backward_bytes(lambda: vae.encode(x * 2 - 1).latent_dist.mean)
    z.square().sum().backward()
    return {"held": held, "peak": _peak_bytes() - setup, "seconds": time.perf_counter() - t0,
            "grad": x.grad.clone()}


def vae_rows(args) -> tuple[dict, list[tuple]]:
    import torch

    per_image = {}
    for h, w in sorted({(h, w) for h, w, _ in PRIOR_INPUTS.values()}):
        for ckpt in (False, True):
            per_image[(h, w, ckpt)] = _in_fresh_process(vae_image, h, w, ckpt, args.threads)
        if not torch.equal(per_image[(h, w, False)]["grad"], per_image[(h, w, True)]["grad"]):
            raise AssertionError(f"checkpointing changed the VAE's input gradient at {h}x{w}")
    calls = [(name, h, w, n, per_image[(h, w, False)]["held"] * n, per_image[(h, w, True)]["held"] * n)
             for name, (h, w, n) in PRIOR_INPUTS.items()]
    h, w, _ = PRIOR_INPUTS["VID (Zeroscope)"]
    batch = {name: _in_fresh_process(vae_image, h, w, ckpt, args.threads, args.vae_batch, slicing)
             for name, ckpt, slicing in (("plain", False, False), ("block checkpointing, batched", True, False),
                                         ("block checkpointing, one image at a time (`vae_gradient_checkpointing`)",
                                          True, True), ("one image at a time only (`vae_slicing`)", False, True))}
    ref = batch["plain"]["grad"]
    for r in batch.values():
        r["grad_diff"] = ((r.pop("grad") - ref).abs().max() / ref.abs().max()).item()
    return per_image, calls, batch


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--height", type=int, default=40)
    ap.add_argument("--width", type=int, default=72)
    ap.add_argument("--chunk", type=int, default=262_144, help="renderer.recompute_chunk of the recompute rows")
    ap.add_argument("--caps", default="100000,20000", help="grad_max_samples values compared with no budget")
    ap.add_argument("--triton-points", type=int, default=0,
                    help="also measure the Triton grid's field under TRITON_INTERPRET=1 on this many points")
    ap.add_argument("--vae-batch", type=int, default=2, help="frames in the video-layout VAE batch")
    ap.add_argument("--skip-vae", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    args.caps = [int(float(c)) for c in args.caps.split(",")]
    if args.triton_points > 0:
        os.environ["TRITON_INTERPRET"] = "1"  # read when the kernels are first defined (imported below)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    gib, mib = 2 ** 30, 2 ** 20
    res = {}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"`{' '.join(argv if argv is not None else sys.argv[1:])}`\n")

    rows, n_rays = render_rows(args)
    res["render"] = rows
    print(f"## Render: paper field, {args.frames} frame(s) of {args.height}x{args.width} ({n_rays:,} rays), "
          f"{rows[0]['with_grad']:,} samples, dense path\n")
    print("| option | samples with gradient | held for backward (MiB) | peak above set-up (MiB) | fwd+bwd s | "
          "max abs rgb diff | max grad diff (rel.) |\n|---|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        print(f"| {r['option']} | {r['with_grad']:,} | {r['held'] / mib:,.1f} | {r['peak'] / mib:,.0f} | "
              f"{r['seconds']:.2f} | {r['rgb_diff']:.1e} | {r['grad_diff']:.1e} |")

    res["field"] = field_rows(args)
    print("\n## Field alone: held bytes per sample with gradient\n")
    print("| hash-grid backend | trained groups | plain | recompute_field |\n|---|---|--:|--:|")
    for backend, groups, plain, lean in res["field"]:
        print(f"| {backend} | {groups} | {plain:,.0f} | {lean:,.0f} |")

    if not args.skip_vae:
        per_image, calls, batch = vae_rows(args)
        res["vae"] = {"per_image": {f"{h}x{w}" + (" checkpointed" if c else ""): {k: v for k, v in r.items()
                                                                                  if k != "grad"}
                                    for (h, w, c), r in per_image.items()}, "calls": calls, "batch": batch}
        print("\n## VAE encoder (SD VAE, fp32), one image with gradient\n")
        print("| input | held, plain / checkpointed (MiB) | peak above set-up, plain / checkpointed (MiB) | "
              "fwd+bwd s, plain / checkpointed |\n|---|--:|--:|--:|")
        for h, w in sorted({(h, w) for h, w, _ in PRIOR_INPUTS.values()}):
            a, b = per_image[(h, w, False)], per_image[(h, w, True)]
            print(f"| {h}x{w} | {a['held'] / mib:,.0f} / {b['held'] / mib:,.0f} | "
                  f"{a['peak'] / mib:,.0f} / {b['peak'] / mib:,.0f} | {a['seconds']:.1f} / {b['seconds']:.1f} |")
        print("\n## VAE encoder per update call (held: the image's times the images with gradient)\n")
        print("| update | input | images with gradient | held, plain (GiB) | held, checkpointed (GiB) |"
              "\n|---|---|--:|--:|--:|")
        for name, h, w, n, plain, lean in calls:
            print(f"| {name} | {h}x{w} | {n} | {plain / gib:.2f} | {lean / gib:.2f} |")
        h, w, _ = PRIOR_INPUTS["VID (Zeroscope)"]
        print(f"\n## VAE encoder, a batch of {args.vae_batch} frames at {h}x{w} (the video update's layout)\n")
        print("| option | held (MiB) | peak above set-up (MiB) | fwd+bwd s | max grad diff (rel.) |"
              "\n|---|--:|--:|--:|--:|")
        for name, r in batch.items():
            print(f"| {name} | {r['held'] / mib:,.0f} | {r['peak'] / mib:,.0f} | {r['seconds']:.1f} | "
                  f"{r['grad_diff']:.1e} |")
    return res


if __name__ == "__main__":
    main()

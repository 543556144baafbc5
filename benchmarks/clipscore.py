"""CLIP-score throughput: full-size ViT-B-32 (random weights, QuickGELU as OpenAI's) on this machine.

Measured in one run:
  roofline   this machine's matrix-multiply rate (fp32 and bf16) at the image tower's MLP shape, the
             tower's FLOPs per frame (torch's FlopCounterMode), hence the most frames/s any fp32 / bf16
             implementation of the tower could reach here
  encoder    the image tower on preprocessed frames, fp32 (open_clip as shipped) and with the bf16
             image tower of `--precision bf16`, at several batch sizes
  stages     on one 64-frame 256x256 H.264 video (the protocol's size): PyAV decode, the model's own
             PIL preprocessing, `score_frames` batched (16, the default) vs the naive one-frame-at-a-time loop, and
             `score_artifacts` end to end on `--videos` artifacts (decode + preprocess + encode)

    python benchmarks/clipscore.py [--videos 4] [--threads N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class Timer:
    """Wall time and this process's CPU time (all its threads) of a block."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        _sync(self.device)
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        _sync(self.device)
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def best_of(fn, repeats: int, device) -> float:
    """Fastest wall time of `repeats` calls after one warm-up (the machine is shared: the best is the least disturbed)."""
    fn()
    times = []
    for _ in range(repeats):
        with Timer(device) as tm:
            fn()
        times.append(tm.wall)
    return min(times)


def matmul_rate(dtype, rows: int, width: int, device) -> float:
    """GFLOP/s of (rows x width) @ (width x 4 width), the tower's MLP up-projection."""
    a = torch.randn(rows, width, device=device).to(dtype)
    b = torch.randn(width, 4 * width, device=device).to(dtype)
    t = best_of(lambda: a @ b, 5, device)
    return 2 * rows * width * 4 * width / t / 1e9


def tower_flops(model) -> float:
    """FLOPs of one frame through the image tower (attention's fused fast path off, so every matmul is counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    size = model.visual.image_size
    x = torch.zeros(1, 3, *(size if isinstance(size, tuple) else (size, size)))
    was = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model.encode_image(x)
    finally:
        torch.backends.mha.set_fastpath_enabled(was)
    return float(counter.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=4, help="artifacts scored end to end")
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batches", default="16,32,64", help="encoder batch sizes to time")
    ap.add_argument("--loop-frames", type=int, default=16, help="frames timed in the one-at-a-time loop")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per encoder row (the best is kept)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import open_clip

    from evaluation.artifacts import find_artifacts, write_artifact
    from evaluation.clip import preprocess_frames, score_artifacts, score_frames
    from evaluation.clip_models import LoadedClip
    from evaluation.video import decode_video

    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None, force_quick_gelu=True,
                                                                 device=args.device)
    model.eval().requires_grad_(False)
    batches = [int(b) for b in args.batches.split(",")]
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.videos} videos x {args.frames} frames "
          f"{args.size}x{args.size}\n")

    # --- roofline --------------------------------------------------------------------------------
    flops = tower_flops(model)
    tokens = (224 // 32) ** 2 + 1
    # the best rate over the batch sizes' row counts: the roofline is what the machine can do at these shapes
    rates = {name: max(matmul_rate(dt, b * tokens, model.visual.transformer.width, args.device) for b in batches)
             for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    print(f"image tower: {flops / 1e9:.2f} GFLOP per frame; 40 frames/s needs {40 * flops / 1e9:.0f} GFLOP/s\n")
    print("| arithmetic | matmul GFLOP/s (measured) | frames/s if the whole tower ran at that rate |\n|---|--:|--:|")
    for name, r in rates.items():
        print(f"| {name} | {r:.0f} | {r * 1e9 / flops:.1f} |")

    # --- encoder variants --------------------------------------------------------------------------
    x = torch.randn(max(batches), 3, 224, 224, device=args.device)
    bf16 = copy.deepcopy(model)
    bf16.visual.to(torch.bfloat16)  # as load_clip does for --precision bf16
    variants = {"fp32 (the default)": (model, torch.float32), "bf16 image tower": (bf16, torch.bfloat16)}
    with torch.no_grad():
        ref = model.encode_image(x[:8]).double()
        ref = ref / ref.norm(dim=-1, keepdim=True)
        print("\n| image tower | batch | frames/s | share of the roofline | min cosine to fp32 |\n|---|--:|--:|--:|--:|")
        for name, (m, dt) in variants.items():
            e = m.encode_image(x[:8].to(dt)).double()
            cos = ((e / e.norm(dim=-1, keepdim=True)) * ref).sum(-1).min().item()
            roof = rates["bf16" if dt == torch.bfloat16 else "fp32"] * 1e9 / flops
            for b in batches:
                xb = x[:b].to(dt)
                fps = b / best_of(lambda: m.encode_image(xb), args.repeats, args.device)
                print(f"| {name} | {b} | {fps:.1f} | {fps / roof:.0%} | {cos:.6f} |", flush=True)

    # --- the scoring stages on real videos -----------------------------------------------------------
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:args.size, 0:args.size]
    for precision, m in (("fp32", model), ("bf16", bf16)):
        clip = LoadedClip(model=m, preprocess=preprocess, tokenizer=open_clip.get_tokenizer("ViT-B-32"),
                          quick_gelu=True, description="ViT-B-32 random weights (QuickGELU)", precision=precision)
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for v in range(args.videos):
                frames = np.empty((args.frames, args.size, args.size, 3), np.uint8)
                for k in range(args.frames):  # a smooth moving pattern plus a little noise, like a render
                    frames[k, ..., 0] = (xx + 3 * k + 17 * v) % 256
                    frames[k, ..., 1] = (yy + 2 * k) % 256
                    frames[k, ..., 2] = 128 + 60 * np.sin((xx + yy + 4 * k) / 20.0)
                frames = np.clip(frames.astype(int) + rng.integers(-8, 9, frames.shape), 0, 255).astype(np.uint8)
                write_artifact(root, "bench", f"A bench prompt number {v}.", frames,
                               source={"kind": "import", "file": "synthetic", "sha256": "0"}, trajectory="orbit",
                               fps=15)
            arts = find_artifacts([root])
            video = next(iter(arts.values())).video_path

            def record(name, n, timer):
                results[name] = (n / timer.wall, n / max(timer.cpu, 1e-9))

            with Timer(args.device) as tm:
                frames = decode_video(video)
            record("decode (PyAV)", len(frames), tm)
            with Timer(args.device) as tm:
                preprocess_frames(frames, preprocess)
            record("preprocess (open_clip's PIL transform)", len(frames), tm)
            n = min(args.loop_frames, len(frames))
            score_frames(clip, frames[:2], "A bench prompt.")  # warm-up
            with Timer(args.device) as tm:
                score_frames(clip, frames[:n], "A bench prompt.", batch_size=16)
            record("score_frames batched (preprocess + encode)", n, tm)
            with Timer(args.device) as tm:
                for f in frames[:n]:  # the naive baseline: one frame per forward pass
                    score_frames(clip, f[None], "A bench prompt.", batch_size=1)
            record("naive one-frame loop (preprocess + encode)", n, tm)
            with Timer(args.device) as tm:
                pf = score_artifacts(arts, clip, batch_size=16)
            record("end to end (decode + preprocess + encode)", len(pf), tm)

        print(f"\n### {precision} image tower\n\n| stage | frames/s (wall) | frames per CPU-second |\n|---|--:|--:|")
        for k, (wall, cpu) in results.items():
            print(f"| {k} | {wall:,.1f} | {cpu:,.1f} |")
        e2e = results["end to end (decode + preprocess + encode)"]
        b, l = results["score_frames batched (preprocess + encode)"], results["naive one-frame loop (preprocess + encode)"]
        print(f"\nbatched / one-frame loop: {b[0] / l[0]:.2f}x wall, {b[1] / l[1]:.2f}x per CPU-second; "
              f"decode {e2e[0] / results['decode (PyAV)'][0]:.1%} of the end-to-end time; "
              f"28 prompts x 64 frames: {28 * 64 / e2e[0]:.0f} s")


if __name__ == "__main__":
    main()

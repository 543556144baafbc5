"""CLIP-score throughput: full-size ViT-B-32 (random weights, QuickGELU as OpenAI's) on this machine.

Measured in one run, on one 64-frame 256x256 H.264 video (the protocol's size):
  decode     PyAV decode to RGB (evaluation.video.decode_video)
  preprocess the model's own PIL transform (resize 224 bicubic, centre crop, normalise)
  batched    image encoder on batches of `--batch` frames (+ normalise, dot, clamp)
  loop       the naive baseline: one frame at a time through preprocess + encoder
  end-to-end evaluation.clip.score_artifacts on `--videos` artifacts (decode + preprocess + encode)

    python benchmarks/clipscore.py [--videos 4] [--batch 64] [--threads N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=4, help="artifacts scored end to end")
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--loop-frames", type=int, default=16, help="frames timed in the one-at-a-time loop")
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
    model.eval()
    clip = LoadedClip(model=model, preprocess=preprocess, tokenizer=open_clip.get_tokenizer("ViT-B-32"),
                      quick_gelu=True, description="ViT-B-32 random weights (QuickGELU)")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:args.size, 0:args.size]
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
                           source={"kind": "import", "file": "synthetic", "sha256": "0"}, trajectory="orbit", fps=15)
        arts = find_artifacts([root])
        video = next(iter(arts.values())).video_path

        def record(name, n, timer):
            results[name] = (n / timer.wall, n / max(timer.cpu, 1e-9))

        with Timer(args.device) as tm:
            frames = decode_video(video)
        record("decode", len(frames), tm)
        with Timer(args.device) as tm:
            x = preprocess_frames(frames, preprocess)
        record("preprocess", len(frames), tm)
        with torch.no_grad():
            model.encode_image(x[:2].to(args.device))  # warm-up
            with Timer(args.device) as tm:
                for s in range(0, len(x), args.batch):
                    model.encode_image(x[s:s + args.batch].to(args.device))
            record("encode (batched)", len(x), tm)
        n = min(args.loop_frames, len(frames))
        with Timer(args.device) as tm:
            score_frames(clip, frames[:n], "A bench prompt.", batch_size=args.batch)
        record("score_frames batched (preprocess + encode)", n, tm)
        with Timer(args.device) as tm:
            for f in frames[:n]:  # the naive baseline: one frame per forward pass
                score_frames(clip, f[None], "A bench prompt.", batch_size=1)
        record("naive one-frame loop (preprocess + encode)", n, tm)
        with Timer(args.device) as tm:
            pf = score_artifacts(arts, clip, batch_size=args.batch)
        record("end to end (decode + preprocess + encode)", len(pf), tm)

    e2e = results["end to end (decode + preprocess + encode)"]
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, {args.videos} videos x {args.frames} "
          f"frames {args.size}x{args.size}, batch {args.batch}, load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs\n")
    print("| stage | frames/s (wall) | frames per CPU-second |\n|---|--:|--:|")
    for k, (wall, cpu) in results.items():
        print(f"| {k} | {wall:,.1f} | {cpu:,.1f} |")
    b, l = results["score_frames batched (preprocess + encode)"], results["naive one-frame loop (preprocess + encode)"]
    print(f"\nbatched / one-frame loop: {b[0] / l[0]:.2f}x wall, {b[1] / l[1]:.2f}x per CPU-second")
    print(f"decode share of end-to-end time: {e2e[0] / results['decode'][0]:.1%} wall")
    print(f"28 prompts x 64 frames: {28 * 64 / e2e[0]:.0f} s at the wall rate, "
          f"{28 * 64 / e2e[1]:.0f} CPU-seconds")

if __name__ == "__main__":
    main()

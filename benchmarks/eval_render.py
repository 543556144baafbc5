"""Eval-render throughput: `fourdfy render`'s frame loop (evaluation.render.render_frames) in ms per frame.

A run folder with a random-init scene field is written to a temp dir and loaded through the real
path (evaluation.runs.load_run). Field sizes: `tiny` (the tiny profile's grids: 8 levels, 2^14
entries) or `paper` (16 levels, 2^19 entries, static 3D + dynamic 4D). On CUDA the dense path and
the occupancy-grid path (grid built from the field at the frame times) are both timed, in one run.

    python benchmarks/eval_render.py --device cpu --field tiny --size 64 --frames 4
    python benchmarks/eval_render.py --device cuda --field paper --size 256 --frames 64   # < 60 s on a GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import torch


def fake_run(folder: Path, field_size: str, num_samples: int) -> Path:
    from method.fields import FieldConfig, SceneField
    from method.training.profiles import TINY_GRID
    from method.training.config import Anneal, StageConfig, TrainConfig

    if field_size == "tiny":
        fcfg = FieldConfig(static_grid=TINY_GRID, dynamic_grid=TINY_GRID, mlp_hidden=32)
    else:
        fcfg = FieldConfig()
    cfg = TrainConfig(profile=field_size, method="4dfy", seed=0, device="cpu",
                      stages=(StageConfig("stage3", 10, 0.5, 0.5, True),), field=fcfg,
                      blob_sigma={"stage3": Anneal(0.5, 0.5)})  # an object of radius ~0.5
    cfg = dataclasses.replace(cfg, renderer=dataclasses.replace(cfg.renderer, num_samples=num_samples))
    torch.manual_seed(0)
    field = SceneField(cfg.field, cfg.background)
    with torch.no_grad():  # an object-like blob with some structure, not the near-empty init
        for p in field.parameters():
            p.add_(0.1 * torch.randn_like(p))
    (folder / "ckpt").mkdir(parents=True)
    torch.save({"config_hash": cfg.config_hash(), "field": field.state_dict()}, folder / "ckpt" / "last.pt")
    (folder / "manifest.json").write_text(json.dumps({"method": "4dfy", "prompt": "A panda dancing.",
                                                      "config_hash": cfg.config_hash(), "config": cfg.to_dict()},
                                                     default=str))
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--field", choices=("tiny", "paper"), default=None, help="default: tiny on cpu, paper on cuda")
    ap.add_argument("--size", type=int, default=None, help="default: 64 on cpu, 256 on cuda")
    ap.add_argument("--frames", type=int, default=None, help="orbit frames (default: 4 on cpu, 64 on cuda)")
    ap.add_argument("--dense-frames", type=int, default=None,
                    help="frames timed on the dense path (default: all on cpu, 4 on cuda, to bound the run time)")
    ap.add_argument("--num-samples", type=int, default=512)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    cuda = args.device == "cuda"
    field_size = args.field or ("paper" if cuda else "tiny")
    size = args.size or (256 if cuda else 64)
    frames = args.frames or (64 if cuda else 4)
    if args.threads:
        torch.set_num_threads(args.threads)

    from method import backends
    from evaluation.render import EvalRenderConfig, render_frames
    from evaluation.runs import load_run

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run = fake_run(Path(tmp) / "run", field_size, args.num_samples)
        cfg, field, _ = load_run(run, device=args.device)
        modes = ["off", "auto"] if cuda else ["off"]
        for mode in modes:
            n = (args.dense_frames or (4 if cuda else frames)) if mode == "off" else frames
            ecfg = EvalRenderConfig(n_frames=n, size=size, device=args.device, grid=mode)
            render_frames(field, cfg, EvalRenderConfig(n_frames=2, size=min(size, 32), device=args.device,
                                                      grid=mode))  # warm-up (CUDA init, kernels)
            if cuda:
                torch.cuda.synchronize()
            t, c = time.perf_counter(), time.process_time()
            out = render_frames(field, cfg, ecfg)
            if cuda:
                torch.cuda.synchronize()
            dt, dc = time.perf_counter() - t, time.process_time() - c
            rows.append((("occupancy grid" if out["grid"] else "dense"), n, dt, dc, out["opacity"].mean()))
    name = torch.cuda.get_device_name(0) if cuda else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device {name}; field {field_size}; orbit frames {size}x{size}; {args.num_samples} samples per ray; "
          f"tinycudann {'active' if backends.tcnn_active() else 'inactive'}; "
          f"nerfacc CUDA {'active' if backends.nerfacc_cuda_active() else 'inactive'}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| path | frames | total s | ms / frame | frames/s | CPU-seconds / frame | mean opacity |\n"
          "|---|--:|--:|--:|--:|--:|--:|")
    for path, n, dt, dc, op in rows:
        print(f"| {path} | {n} | {dt:.2f} | {1000 * dt / n:.1f} | {n / dt:.2f} | {dc / n:.2f} | {op:.3f} |")
    if len(rows) == 2:
        (_, n0, d0, _, _), (_, n1, d1, _, _) = rows
        print(f"\noccupancy grid speed-up over dense (per frame): {(d0 / n0) / (d1 / n1):.1f}x")


if __name__ == "__main__":
    main()

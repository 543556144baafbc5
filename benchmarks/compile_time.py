"""Cold compile time of the priors' UNets, compiled whole (`frozen.compile`) against block by block
(`frozen.compile_regional`), with the steady time per forward+backward and the number of graphs each makes.

The UNets are the real architectures (`method.guidance.architectures`: SD 2.1-base's, which MVDream and VSD use,
and Zeroscope's UNet3D) with every level narrowed to a few channels (`--width`, default 32 per head group), so
the blocks, their kinds and their shapes' pattern, which decide how many graphs and kernels are compiled, are the
real ones at a cost a CPU can pay. Each mode runs in its own process with an empty inductor cache (`cold`), after
an eager reference call in that process; the first compiled forward+backward is timed (tracing, lowering, kernel
compilation and the run), then `--repeats` more.

    .venv/bin/python benchmarks/compile_time.py [--models sd unet3d] [--modes eager whole regional]
                                                [--backend inductor] [--repeats 3] [--out FILE]

On CPU inductor compiles C++ kernels (a compiler is needed); on CUDA, Triton kernels, where the same count of
graphs and kernels decides the time. `--backend eager` (dynamo only) checks the script quickly (tests).
Writes a Markdown table to stdout (and `--out`); `benchmarks/compile_time_results.md` holds the figures of record.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def narrow(config: dict, width: int) -> dict:
    """The architecture with `width` x 1, 2, 4, 4 channels per level (SD: a head per `width` channels; the UNet3D:
    8 heads), the cross-attention width `2 * width`; everything else (blocks, layers, kinds) as it is."""
    levels = len(config["block_out_channels"])
    channels = [width * min(2 ** i, 4) for i in range(levels)]
    out = {**config, "block_out_channels": channels, "norm_num_groups": width, "cross_attention_dim": 2 * width}
    if isinstance(config["attention_head_dim"], int):  # the UNet3D: one head count for all levels
        out["attention_head_dim"] = 8
    else:  # SD's head count per level
        out["attention_head_dim"] = [c // width for c in channels]
    return out


def build(model: str, width: int):
    """(unet, inputs) for one forward: batch 2 at a 16x16 latent (the UNet3D: 4 frames)."""
    import torch
    from diffusers import UNet2DConditionModel, UNet3DConditionModel

    from method.guidance.architectures import SD21_BASE_UNET, ZEROSCOPE_UNET

    torch.manual_seed(0)
    if model == "sd":
        unet = UNet2DConditionModel(**narrow(SD21_BASE_UNET, width))
        x = torch.randn(2, 4, 16, 16)
    else:
        unet = UNet3DConditionModel(**narrow(ZEROSCOPE_UNET, width))
        x = torch.randn(1, 4, 4, 16, 16)
    unet.eval().requires_grad_(False)
    cond = torch.randn(x.shape[0], 7, 2 * width)
    return unet, (x, torch.tensor([500] * x.shape[0]), cond)


def measure(model: str, mode: str, backend: str, repeats: int, width: int) -> dict:
    """One mode in this process: the eager reference, then the compiled (or eager) calls timed."""
    import torch
    from torch._dynamo.utils import counters

    from method.guidance.base import compile_blocks, compile_whole

    torch.manual_seed(0)
    unet, (x, t, cond) = build(model, width)

    def step():
        inp = x.clone().requires_grad_(True)
        out = unet(inp, t, cond).sample
        out.square().mean().backward()  # a gradient to the input, as score distillation takes through the VAE
        return out.detach(), inp.grad

    ref_out, ref_grad = step()
    if mode != "eager":
        import torch._dynamo.config as dynamo_config

        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 512)
        if backend != "inductor":  # the product's wrapping with another backend (this process only)
            torch.compile = functools.partial(torch.compile, backend=backend)
        compile_whole(unet) if mode == "whole" else compile_blocks(unet)
    started = time.perf_counter()
    out, grad = step()
    first = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    scale = float(ref_grad.abs().max())
    return {"model": model, "mode": mode, "backend": backend, "first_s": first,
            "step_s": statistics.median(times), "graphs": int(counters["stats"]["unique_graphs"]),
            "blocks": sum("forward" in vars(m) for m in unet.modules()),
            "max_rel_diff": max(float((out - ref_out).abs().max()) / float(ref_out.abs().max()),
                                float((grad - ref_grad).abs().max()) / scale)}


def run_cold(model: str, mode: str, args) -> dict:
    """`measure` in a fresh process with an empty inductor cache."""
    with tempfile.TemporaryDirectory(prefix="inductor-cold-") as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, __file__, "--child", model, mode, "--backend", args.backend,
               "--repeats", str(args.repeats), "--width", str(args.width)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {model}/{mode} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = ["| model | mode | first call, s (compile + run) | steady step, s | graphs | compiled blocks | "
             "max rel. diff vs eager | first call / whole's |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    whole = {r["model"]: r["first_s"] for r in rows if r["mode"] == "whole"}
    for r in rows:
        ratio = f"{r['first_s'] / whole[r['model']]:.2f}" if r["model"] in whole and r["mode"] != "eager" else ""
        lines.append(f"| {r['model']} | {r['mode']} | {r['first_s']:.1f} | {r['step_s']:.3f} | {r['graphs']} | "
                     f"{r['blocks']} | {r['max_rel_diff']:.1e} | {ratio} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=("sd", "unet3d"), default=["sd", "unet3d"])
    ap.add_argument("--modes", nargs="+", choices=("eager", "whole", "regional"),
                    default=["eager", "whole", "regional"])
    ap.add_argument("--backend", default="inductor", help="torch.compile backend (eager: dynamo only, quick)")
    ap.add_argument("--repeats", type=int, default=3, help="timed steps after the first")
    ap.add_argument("--width", type=int, default=32, help="channels per head group (levels: 1, 2, 4, 4 x it)")
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(*args.child, args.backend, args.repeats, args.width)))
        return 0
    import torch

    rows = []
    for model in args.models:
        for mode in args.modes:
            rows.append(run_cold(model, mode, args))
            print(f"{model}/{mode}: first {rows[-1]['first_s']:.1f} s", file=sys.stderr, flush=True)
    text = (f"device: cpu ({torch.get_num_threads()} threads, {platform.machine()}), torch {torch.__version__}, "
            f"backend {args.backend}, width {args.width}\n\n{table(rows)}\n")
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Cost of one update of each prior: wall time and peak memory of the guidance call plus the backward
pass into the render (the optimizer step and the rendering itself are not included).

    python benchmarks/guidance.py [--size tiny|full] [--device cpu|cuda] [--repeats K] [--threads N]
                                  [--priors mvdream,vsd,zeroscope] [--json PATH]

--size tiny: the tiny random-weight priors (method.guidance.tiny) at the CPU `tiny` profile's render
    sizes (4x16^2, 1x32^2, 16x16x24): what the CPU tests and the tiny profile pay.
--size full: the real architectures (method.guidance.architectures: SD 2.1-base / 2.1 UNets, SD VAE,
    the SD 2.x text encoder, MVDream's camera MLP, Zeroscope's UNet3DConditionModel) with random
    weights, nothing downloaded, at the paper's render sizes (4x256^2, 1x256^2, 16x160x288): the number
    that predicts a real run's per-update cost. Meant for CUDA (fp16 frozen weights, as a real run);
    on CPU it needs tens of GB and minutes per update, Zeroscope at full size does not fit in 24 GB.

Peak memory: on CUDA `torch.cuda.max_memory_allocated` above the memory held before the update; on
CPU the growth of the process's peak resident set (VmHWM, reset through /proc/self/clear_refs)
above the resident set before the update.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from method.cameras import sample_multiview_groups, sample_single_views, sample_video  # noqa: E402

RENDER = {"tiny": {"mvdream": (4, 16, 16), "vsd": (1, 32, 32), "zeroscope": (16, 16, 24)},  # the tiny profile
          "full": {"mvdream": (4, 256, 256), "vsd": (1, 256, 256), "zeroscope": (16, 160, 288)}}


def _status_kb(key: str) -> int:
    return int(re.search(rf"{key}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


class PeakMemory:
    """Peak extra memory (MiB) of the block: CUDA allocator on CUDA, resident set on CPU (Linux)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.mib = float("nan")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
            self._base = _status_kb("VmRSS") * 1024
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = _status_kb("VmHWM") * 1024
        self.mib = (peak - self._base) / 2 ** 20
        return False


def _full_models(kind: str) -> dict:
    """Random-weight full-size components with the real configs (built in fp32, cast by the prior)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from method.guidance import architectures as A
    from method.guidance.tiny import build_tokenizer

    torch.manual_seed(0)
    common = {"vae": AutoencoderKL.from_config(A.SD_VAE), "tokenizer": build_tokenizer(),
              "text_encoder": CLIPTextModel(CLIPTextConfig(**A.SD2_TEXT_ENCODER))}
    if kind == "mvdream":
        return {**common, "unet": UNet2DConditionModel.from_config(A.MVDREAM_UNET),
                "scheduler_config": A.SD21_BASE_SCHEDULER}
    if kind == "vsd":
        return {**common, "unet": UNet2DConditionModel.from_config(A.SD21_BASE_UNET),
                "unet_lora": UNet2DConditionModel.from_config(A.SD21_UNET),
                "scheduler_config": A.SD21_BASE_SCHEDULER, "lora_scheduler_config": A.SD21_SCHEDULER}
    return {**common, "unet": UNet3DConditionModel.from_config(A.ZEROSCOPE_UNET),
            "scheduler_config": A.ZEROSCOPE_SCHEDULER}


def build(kind: str, size: str, device: torch.device):
    from method import guidance as G

    if size == "tiny":  # the tiny priors' ids (fourdfy-tiny:...) are built on first use under $FOURDFY_CACHE
        return G.build_prior(getattr(G, f"tiny_{kind}_config")(), device)
    cfg = {"mvdream": G.MVDreamConfig(), "vsd": G.VSDConfig(), "zeroscope": G.ZeroscopeConfig()}[kind]
    cls = {"mvdream": G.MVDreamGuidance, "vsd": G.VSDGuidance, "zeroscope": G.ZeroscopeGuidance}[kind]
    return cls(cfg, device=device, models=_full_models(kind))


def cameras_for(kind: str, n: int, gen: torch.Generator):
    if kind == "mvdream":
        return sample_multiview_groups(n // 4, generator=gen)
    if kind == "vsd":
        return sample_single_views(n, generator=gen)
    return sample_video(n, generator=gen)[0]


def bench_prior(prior, kind: str, size: str, device: torch.device, repeats: int) -> dict:
    """Median seconds and max peak memory of `repeats` updates after one warm-up update."""
    from method.training.config import LossWeights

    weights = LossWeights()
    n, h, w = RENDER[size][kind]
    gen = torch.Generator().manual_seed(0)
    cams = cameras_for(kind, n, gen).to(device)
    times, peaks = [], []
    for i in range(repeats + 1):
        rgb = torch.rand(n, h, w, 3, generator=gen).to(device).requires_grad_(True)
        with PeakMemory(device) as mem:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            losses = prior(rgb, cams, "a panda dancing", 6000, generator=gen, stage="stage2")
            total = sum(getattr(weights, k[len("loss_"):]) * v for k, v in losses.items())
            total.backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - start
        for p in prior.trainable_parameters():
            p.grad = None
        if i:  # the first update is a warm-up (allocator, kernels, prompt encoding)
            times.append(elapsed)
            peaks.append(mem.mib)
    return {"prior": kind, "size": size, "device": device.type, "render": [n, h, w],
            "latents": list(prior.last["latents"].shape), "seconds_median": sorted(times)[len(times) // 2],
            "seconds_min": min(times), "peak_mib": max(peaks), "repeats": repeats,
            "dtype": str(prior.dtype).replace("torch.", ""), "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=("tiny", "full"), default="tiny")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: leave torch's default)")
    ap.add_argument("--priors", default="mvdream,vsd,zeroscope")
    ap.add_argument("--cache", default="", help="$FOURDFY_CACHE for the tiny priors (default: ~/.cache/fourdfy)")
    ap.add_argument("--json", default="", help="also write the rows to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cache:
        os.environ["FOURDFY_CACHE"] = args.cache
    device = torch.device(args.device)
    rows = []
    for kind in args.priors.split(","):
        prior = build(kind, args.size, device)
        rows.append(bench_prior(prior, kind, args.size, device, args.repeats))
        print(json.dumps(rows[-1]), flush=True)
        del prior
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()

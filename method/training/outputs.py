"""What a run writes besides checkpoints: preview images, a short orbit preview video, the manifest.

The evaluation videos of the paper's protocol are not made here: `fourdfy render RUN` renders them
from the finished run (evaluation/render.py), the same way for every method.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path

import torch

from method import backends
from method.cameras import OrbitConfig, cameras_from_spherical, orbit

from method.fileio import fill_atomic, write_text_atomic

MANIFEST_PACKAGES = ("fourdfy-bench", "torch", "diffusers", "transformers", "peft", "nerfacc", "tinycudann")


@torch.no_grad()
def write_preview(render_fn, path: Path, size: int, time: float) -> Path:
    """Four views 90 deg apart at one time, side by side, as a PNG. `render_fn(cams, times, h, w)`."""
    import imageio.v3 as iio

    cams = cameras_from_spherical(torch.tensor([0.0, 90.0, 180.0, 270.0]), 15.0, 3.0, 40.0)
    rgb = render_fn(cams, torch.full((4,), time), size, size)
    img = torch.cat(list(rgb.clamp(0, 1)), 1)
    pixels = (img.cpu().numpy() * 255).round().astype("uint8")
    # through a temporary, as every file of a run: a stop while writing leaves the previous preview whole
    fill_atomic(path, lambda tmp: iio.imwrite(tmp, pixels, extension=".png"))
    return path


@torch.no_grad()
def write_preview_video(render_fn, path: Path, size: int, n_frames: int) -> Path:
    """A quick look at the result: the evaluation orbit at the preview size, `n_frames` frames."""
    from .video import write_video

    cams, times = orbit(OrbitConfig(n_frames=n_frames, height=size, width=size))
    frames = [render_fn(cams[i], times[i:i + 1], size, size)[0] for i in range(len(cams))]
    write_video(path, torch.stack(frames), fps=15)
    return path


def peak_memory_mb(device: torch.device) -> dict:
    out = {"host_rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.type == "cuda":
        out["cuda_allocated"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 20, 1)
    return out


def write_manifest(out: Path, manifest: dict) -> dict:
    """manifest.json of a finished run (versions added here); written atomically."""
    manifest = {**manifest, "versions": {p: backends.package_version(p) for p in MANIFEST_PACKAGES}}
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest

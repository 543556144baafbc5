"""Renderer throughput: rays/s for a 256x256 frame at 512 samples, forward and forward+backward.

`bench_render(field_fn, background_fn, device)` times any field; run this file to time a small
analytic MLP field. On CPU a random subset of the frame's pixels is timed (the default 2048 rays;
a full frame would take minutes) and the whole-frame time is extrapolated from the rays/s; on CUDA
the whole frame is rendered, through the occupancy grid after its warm-up updates.

    python benchmarks/render.py [--device cpu|cuda] [--rays N] [--repeats K]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Callable

import torch
from torch import Tensor, nn

from method.cameras import cameras_from_spherical
from method.render import RenderConfig, VolumeRenderer, box_bounds, lattice_samples, ray_box_intersect, rays_from_cameras
from method.render.renderer import BackgroundFn, FieldFn


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], None], device: torch.device, repeats: int) -> float:
    """Median wall time of `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def bench_render(field_fn: FieldFn, background_fn: BackgroundFn, device: torch.device | str,
                 height: int = 256, width: int = 256, num_samples: int = 512, max_rays: int | None = None,
                 repeats: int = 3, seed: int = 0) -> dict:
    """Rays/s of `render_rays` on one eval-camera frame (distance 3, FOV 40 deg, elevation 15 deg).

    max_rays: time a random subset of this many pixels (None: the whole frame; CPU default 2048).
    Forward runs under no_grad without jitter; forward+backward runs with jitter and backpropagates
    mean(rgb) + mean(opacity) into whatever parameters `field_fn` and `background_fn` use.
    """
    device = torch.device(device)
    if max_rays is None and device.type == "cpu":
        max_rays = 2048
    cfg = RenderConfig(num_samples=num_samples)
    renderer = VolumeRenderer(cfg, device=device)
    gen = torch.Generator().manual_seed(seed)

    cams = cameras_from_spherical(0.0, 15.0, 3.0, 40.0).to(device)
    origins, dirs = rays_from_cameras(cams, height, width).flatten()
    n_frame = origins.shape[0]
    if max_rays is not None and max_rays < n_frame:
        pick = torch.randperm(n_frame, generator=gen)[:max_rays].to(device)
        origins, dirs = origins[pick], dirs[pick]
    n_rays = origins.shape[0]
    times = torch.full((n_rays, 1), 0.5, device=device)

    if renderer.grid is not None:  # warm the grid up as training would, so empty space is skipped
        density = lambda x, t: field_fn(x, t)[0]
        for step in range(0, cfg.occupancy.warmup_steps, cfg.occupancy.update_every):
            renderer.update(step, density, dynamic=True, generator=gen)

    t_near, t_far, hit = ray_box_intersect(origins, dirs, *box_bounds(cfg.box_radius, origins))
    samples = lattice_samples(t_near, t_far, hit, cfg.step_size, torch.zeros_like(t_near))
    box_samples = int(samples.mask.sum())

    def forward() -> None:
        with torch.no_grad():
            renderer.render_rays(field_fn, background_fn, origins, dirs, times, randomized=False)

    def forward_backward() -> None:
        out = renderer.render_rays(field_fn, background_fn, origins, dirs, times, randomized=True, generator=gen)
        loss = out["rgb"].mean() + out["opacity"].mean()
        if loss.requires_grad:
            loss.backward()

    t_fwd = _timed(forward, device, repeats)
    t_bwd = _timed(forward_backward, device, repeats)
    return {
        "device": str(device),
        "path": "occupancy grid (nerfacc CUDA)" if renderer.grid is not None else "dense (PyTorch)",
        "frame": f"{height}x{width}",
        "num_samples": num_samples,
        "rays_timed": n_rays,
        "subset_of_frame": n_rays < n_frame,
        "box_samples_per_ray": round(box_samples / n_rays, 1),
        "forward_rays_per_s": round(n_rays / t_fwd),
        "forward_backward_rays_per_s": round(n_rays / t_bwd),
        "forward_frame_s": round(n_frame * t_fwd / n_rays, 3),
        "forward_backward_frame_s": round(n_frame * t_bwd / n_rays, 3),
        "torch_threads": torch.get_num_threads(),
    }


class FourierMLP(nn.Module):
    """A stand-in field: sin/cos features of (x, t) -> 2 x 64 ReLU MLP -> density, rgb."""

    def __init__(self, n_freqs: int = 4, hidden: int = 64):
        super().__init__()
        self.register_buffer("freqs", 2.0 ** torch.arange(n_freqs) * math.pi)
        n_in = 4 + 4 * 2 * n_freqs
        self.mlp = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 4))

    def forward(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        p = torch.cat([x, t], dim=-1)
        ang = (p[..., None] * self.freqs).flatten(-2)
        h = self.mlp(torch.cat([p, ang.sin(), ang.cos()], dim=-1))
        # a blob at the origin as in the release, so the frame is not empty
        density = nn.functional.softplus(h[:, 0] + 10.0 * (1 - x.norm(dim=-1) / 0.5))
        return density, torch.sigmoid(h[:, 1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rays", type=int, default=None, help="time a random subset of this many pixels")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    field = FourierMLP().to(args.device)
    background = lambda d: torch.full_like(d, 0.5)
    print(json.dumps(bench_render(field, background, args.device, max_rays=args.rays, repeats=args.repeats),
                     indent=2))


if __name__ == "__main__":
    main()

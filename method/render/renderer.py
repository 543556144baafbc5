"""Volume rendering of Eq. 1 over the background: rgb = sum_i w_i c_i + bg * (1 - opacity).

Two sampling paths give the same fixed-step samples inside the scene box:
- dense (any device, the CPU path): every lattice sample of every ray that hits the box, laid out
  as (rays, samples) and composited with nerfacc's dense functions;
- occupancy grid (CUDA): nerfacc's `OccGridEstimator` skips empty cells and samples whose alpha is
  below `alpha_thre`, then composites packed samples (the release's renderer).

Time, camera, step and random generator are arguments; nothing is stored between calls except
the occupancy grid, which is updated only by an explicit `update(step, ...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from method import backends
from method.cameras import Cameras
from method.ranges import at_least, positive

from .aabb import box_bounds, ray_box_intersect
from .composite import Composited, composite, composite_masked
from .occupancy import DensityFn, OccupancyConfig, OccupancyGrid
from .rays import rays_from_cameras
from .sampling import draw_offsets, lattice_samples, step_size

FieldFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""density (N,) >= 0, rgb (N, 3) in [0, 1] = field_fn(x (N, 3) world, t (N, 1) in [0, 1])."""
BackgroundFn = Callable[[Tensor], Tensor]
"""rgb (R, 3) = background_fn(unit directions (R, 3))."""


@dataclass(frozen=True)
class RenderConfig:
    """Sampling and compositing settings (defaults: the release's `nerf-volume-renderer`)."""

    num_samples: int = 512
    """Samples along the box diagonal: step = 2*sqrt(3)*box_radius/num_samples; shorter chords get fewer."""
    box_radius: float = 1.0
    """Scene box [-r, r]^3: samples start where a ray enters it and stop where it leaves."""
    randomized: bool = True
    """Shift each ray's sample lattice by U[0, 1) * step (training); `for_eval()` turns it off."""
    eval_chunk_rays: int = 160_000
    """Rays rendered per pass when autograd is off (the release's evaluation chunk)."""
    train_chunk_rays: int | None = None
    """Rays per pass when autograd is on (bounds temporaries, not the saved graph); None: one pass."""
    use_occupancy_grid: str | bool = "auto"
    """'auto': nerfacc occupancy grid on CUDA, dense path otherwise; True: require it; False: always dense."""
    alpha_thre: float = 0.01
    """Samples with alpha below this are dropped (grid path; dense path only with `dense_pruning`)."""
    early_stop_eps: float = 1e-4
    """Samples behind transmittance below this are dropped (grid path; dense path only with `dense_pruning`)."""
    dense_pruning: bool = False
    """Apply `alpha_thre` and `early_stop_eps` on the dense path too (off: plain Eq. 1 as in the paper)."""
    occupancy: OccupancyConfig = field(default_factory=OccupancyConfig)
    """Occupancy-grid settings (CUDA path)."""
    grad_max_samples: int | None = None
    """With autograd on, at most this many samples per render call carry gradients (passes share it by their
    rays), a random subset drawn from the render's generator (the release's low-VRAM renderer); the others
    are evaluated without a graph. Same image, less memory, a different (sparser) gradient. None: all."""
    recompute_field: bool = False
    """With autograd on, keep only each sample's position and time for backward and evaluate the field again
    there, `recompute_chunk` samples at a time (activation checkpointing): the same gradients, without holding
    the field's activations (benchmarks/activation_memory.py), for one more field forward per update."""
    recompute_chunk: int = 262_144
    """Samples per recomputed region: backward re-evaluates at most this many at once, which bounds the
    recompute's own peak. A render with more samples than this sums its parameter gradients region by region:
    equal to a plain render's up to float summation order (bit-identical with one region)."""

    def __post_init__(self) -> None:
        if self.use_occupancy_grid not in ("auto", True, False):
            raise ValueError(f"use_occupancy_grid must be 'auto', True or False, got {self.use_occupancy_grid!r}")
        # sizes and counts (None: unset): 0 fails inside torch mid-run, after the run folder is made
        for name in ("num_samples", "eval_chunk_rays", "train_chunk_rays", "grad_max_samples", "recompute_chunk"):
            at_least(name, getattr(self, name), 1)
        positive("box_radius", self.box_radius)
        at_least("alpha_thre", self.alpha_thre, 0)
        at_least("early_stop_eps", self.early_stop_eps, 0)

    @property
    def step_size(self) -> float:
        """Distance between consecutive samples along a ray (world units)."""
        return step_size(self.num_samples, self.box_radius)

    def for_eval(self) -> "RenderConfig":
        """The same settings without sample jitter."""
        return replace(self, randomized=False)


def wants_occupancy_grid(cfg: RenderConfig, device: torch.device | str) -> bool:
    """Whether `cfg` asks for the occupancy grid on `device` ('auto': exactly when it can run)."""
    if cfg.use_occupancy_grid == "auto":
        return torch.device(device).type == "cuda" and backends.nerfacc_cuda_active()
    return bool(cfg.use_occupancy_grid)


# --- foreground -----------------------------------------------------------------------------------

def _recomputed(field_fn: FieldFn, chunk: int, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """field_fn(x, t) with activation checkpointing, one region per `chunk` samples: only x and t are kept,
    and backward evaluates the regions again one after the other (so at most `chunk` samples' activations
    exist at once). The non-reentrant form, which needs no input to require gradients."""
    if x.shape[0] <= chunk:
        return checkpoint(field_fn, x, t, use_reentrant=False)
    parts = [checkpoint(field_fn, x[i:i + chunk], t[i:i + chunk], use_reentrant=False)
             for i in range(0, x.shape[0], chunk)]
    return tuple(torch.cat(outputs) for outputs in zip(*parts))


def _field(field_fn: FieldFn, x: Tensor, t: Tensor, cfg: RenderConfig,
           generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """field_fn at every sample; with autograd on and more than `cfg.grad_max_samples` samples, only a random
    subset of that many keeps its graph (autograd then saves the field's activations for those only)."""
    if not torch.is_grad_enabled():
        return field_fn(x, t)
    graph_fn = partial(_recomputed, field_fn, cfg.recompute_chunk) if cfg.recompute_field else field_fn
    n, cap = x.shape[0], cfg.grad_max_samples
    if cap is None or n <= cap:
        return graph_fn(x, t)
    # one draw from the run's generator seeds a generator where the samples live: the permutation of
    # millions of samples is then made on the GPU, not on the CPU and copied over
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator,
                             device=generator.device if generator is not None else "cpu"))
    order = torch.randperm(n, generator=torch.Generator(device=x.device).manual_seed(seed), device=x.device)
    keep, rest = order[:cap], order[cap:]
    sigma_k, rgb_k = graph_fn(x[keep], t[keep])
    with torch.no_grad():
        sigma_r, rgb_r = field_fn(x[rest], t[rest])
    sigma = sigma_k.new_empty(n).index_copy(0, keep, sigma_k.reshape(-1)).index_copy(0, rest, sigma_r.reshape(-1))
    rgb = rgb_k.new_empty(n, 3).index_copy(0, keep, rgb_k.reshape(-1, 3)).index_copy(0, rest, rgb_r.reshape(-1, 3))
    return sigma, rgb


def _foreground_dense(field_fn: FieldFn, origins: Tensor, dirs: Tensor, times: Tensor, offsets: Tensor,
                      cfg: RenderConfig, generator: torch.Generator | None = None) -> Composited:
    box_min, box_max = box_bounds(cfg.box_radius, origins)
    t_near, t_far, hit = ray_box_intersect(origins, dirs, box_min, box_max)
    samples = lattice_samples(t_near, t_far, hit, cfg.step_size, offsets)
    n_rays, n_max = samples.mask.shape
    index = samples.mask.reshape(-1).nonzero()[:, 0]  # the real samples, row-major
    density = origins.new_zeros(n_rays * n_max)
    rgb = origins.new_zeros(0, 3)
    if index.numel() > 0:  # padding and rays missing the box never reach the field
        ray_idx = torch.div(index, n_max, rounding_mode="floor")
        x = origins[ray_idx] + dirs[ray_idx] * samples.t_mid.reshape(-1)[index, None]
        sigma, rgb = _field(field_fn, x, times[ray_idx], cfg, generator)
        density = density.to(sigma.dtype).index_put((index,), sigma.reshape(-1))
    density = density.reshape(n_rays, n_max)
    t_starts, t_ends = samples.t_starts.to(density.dtype), samples.t_ends.to(density.dtype)
    if cfg.dense_pruning:
        density = density * _visible(t_starts, t_ends, density, cfg)
    return composite_masked(t_starts, t_ends, density, rgb.reshape(-1, 3), index)


@torch.no_grad()
def _visible(t_starts: Tensor, t_ends: Tensor, density: Tensor, cfg: RenderConfig) -> Tensor:
    """The grid path's sample filter on dense samples: alpha >= alpha_thre and T >= early_stop_eps."""
    sigma_dt = density * (t_ends - t_starts)
    alpha = 1.0 - torch.exp(-sigma_dt)
    trans = torch.exp(-(torch.cumsum(sigma_dt, dim=-1) - sigma_dt))
    keep = trans >= cfg.early_stop_eps
    if cfg.alpha_thre > 0:
        keep = keep & (alpha >= cfg.alpha_thre)
    return keep.to(density.dtype)


def _foreground_grid(field_fn: FieldFn, origins: Tensor, dirs: Tensor, times: Tensor, offsets: Tensor,
                     cfg: RenderConfig, grid: OccupancyGrid, generator: torch.Generator | None = None) -> Composited:
    if abs(grid.step_size - cfg.step_size) > 1e-12:
        raise ValueError(f"occupancy grid step {grid.step_size} differs from the config's {cfg.step_size}")

    def sigma_fn(t_starts: Tensor, t_ends: Tensor, ray_indices: Tensor) -> Tensor:
        idx = ray_indices.long()
        x = origins[idx] + dirs[idx] * (0.5 * (t_starts + t_ends))[:, None]
        return field_fn(x, times[idx])[0].reshape(-1)

    prune = cfg.alpha_thre > 0 or cfg.early_stop_eps > 0
    ray_indices, t_starts, t_ends = grid.sample(origins, dirs, offsets, sigma_fn if prune else None,
                                                cfg.alpha_thre, cfg.early_stop_eps)
    n_rays = origins.shape[0]
    if ray_indices.numel() == 0:  # nothing occupied along these rays
        zeros = origins.new_zeros(n_rays, 1)
        return Composited(rgb=origins.new_zeros(n_rays, 3), opacity=zeros, depth=zeros, weights=t_starts.new_zeros(0))
    x = origins[ray_indices] + dirs[ray_indices] * (0.5 * (t_starts + t_ends))[:, None]
    sigma, color = _field(field_fn, x, times[ray_indices], cfg, generator)
    return composite(t_starts, t_ends, sigma.reshape(-1), color.reshape(-1, 3), ray_indices=ray_indices,
                     n_rays=n_rays)


# --- public API -----------------------------------------------------------------------------------

def _background(background_fn: BackgroundFn | None, dirs: Tensor, bg_color: Tensor | None,
                bg_mask: Tensor | None) -> Tensor:
    if bg_color is not None and bg_mask is None:
        return bg_color.to(dirs)
    if background_fn is None:
        raise ValueError("background_fn is None: give bg_color for every ray (and no bg_mask)")
    bg = background_fn(dirs)
    if bg_color is None:
        return bg
    return torch.where(bg_mask.reshape(-1, 1).to(dirs.device), bg_color.to(bg), bg)


def _chunk_size(cfg: RenderConfig, chunk: int | None, n_rays: int) -> int:
    if chunk is None:
        chunk = cfg.train_chunk_rays if torch.is_grad_enabled() else cfg.eval_chunk_rays
    return max(1, min(chunk, n_rays)) if chunk is not None else max(1, n_rays)


def render_rays(field_fn: FieldFn, background_fn: BackgroundFn | None, origins: Tensor, dirs: Tensor,
                times: Tensor, cfg: RenderConfig, generator: torch.Generator | None = None,
                estimator: OccupancyGrid | None = None, bg_color: Tensor | None = None,
                bg_mask: Tensor | None = None, chunk: int | None = None) -> dict[str, Tensor]:
    """Render R rays: rgb = foreground + background * (1 - opacity).

    Args:
        origins, dirs: (R, 3) world rays; dirs are normalised here (t and depth are world distances).
        times: (R, 1) or (R,) the scene time of each ray, in [0, 1].
        generator: draws the per-ray lattice jitter when `cfg.randomized` (None: torch's global one).
        estimator: an `OccupancyGrid` to use nerfacc's CUDA path; None renders densely.
        bg_color: (R, 3) colours replacing the background (random-colour augmentation).
        bg_mask: (R,) bool; if given, only these rays take `bg_color`, the others `background_fn`.
        chunk: rays per pass; None: `cfg.train_chunk_rays` with autograd on, else `cfg.eval_chunk_rays`.
            The jitter is drawn for all rays first, so the result does not depend on the chunking.
    Returns:
        rgb (R, 3), opacity (R, 1) and depth (R, 1): sum_i w_i t_i along the unit ray, not divided by
        the opacity (divide by opacity for the expected depth of the visible surface). Rays missing
        the box have opacity 0, depth 0 and the background colour.
    """
    n_rays = origins.shape[0]
    if estimator is not None and origins.device.type != "cuda":
        raise RuntimeError("the occupancy grid renders CUDA rays only; pass estimator=None on CPU")
    dirs = F.normalize(dirs, dim=-1)
    times = times.reshape(n_rays, 1).to(device=origins.device, dtype=origins.dtype)
    offsets = draw_offsets(n_rays, cfg.randomized, generator, origins.device, origins.dtype)
    size = _chunk_size(cfg, chunk, n_rays)
    parts: dict[str, list[Tensor]] = {"rgb": [], "opacity": [], "depth": []}
    if n_rays == 0:
        return {"rgb": origins.new_zeros(0, 3), "opacity": origins.new_zeros(0, 1), "depth": origins.new_zeros(0, 1)}
    cap = cfg.grad_max_samples
    for start in range(0, n_rays, size):
        s = slice(start, start + size)
        o, d, t, u = origins[s], dirs[s], times[s], offsets[s]
        part = cfg
        if cap is not None and size < n_rays:  # the budget is the call's: passes share it by their rays
            end = min(start + size, n_rays)
            part = replace(cfg, grad_max_samples=max(1, cap * end // n_rays - cap * start // n_rays))
        if estimator is None:
            fg = _foreground_dense(field_fn, o, d, t, u, part, generator)
        else:
            fg = _foreground_grid(field_fn, o, d, t, u, part, estimator, generator)
        bg = _background(background_fn, d, None if bg_color is None else bg_color[s],
                         None if bg_mask is None else bg_mask[s])
        parts["rgb"].append(fg.rgb + bg.to(fg.rgb) * (1.0 - fg.opacity))
        parts["opacity"].append(fg.opacity)
        parts["depth"].append(fg.depth)
    return {k: torch.cat(v, dim=0) for k, v in parts.items()}


def render_images(field_fn: FieldFn, background_fn: BackgroundFn | None, cameras: Cameras, times: Tensor,
                  height: int, width: int, cfg: RenderConfig, generator: torch.Generator | None = None,
                  estimator: OccupancyGrid | None = None, bg_colors: Tensor | None = None,
                  bg_mask: Tensor | None = None, chunk: int | None = None) -> dict[str, Tensor]:
    """Render B images, image b from camera b at time times[b].

    A 4-view batch is 4 cameras with one time; a 16-frame clip is one camera repeated 16 times
    (`cameras.repeat(16)`) with 16 times. bg_colors (B, 3) replace the background of every image,
    or only of the images where bg_mask (B,) is True.
    Returns rgb (B, H, W, 3), opacity (B, H, W, 1), depth (B, H, W, 1) (see `render_rays`).
    """
    n_images = len(cameras)
    times = torch.as_tensor(times, device=cameras.device).reshape(-1)
    if times.numel() != n_images:
        raise ValueError(f"need one time per camera: {n_images} cameras, {times.numel()} times")
    rays = rays_from_cameras(cameras, height, width)
    origins, dirs = rays.flatten()
    per_image = height * width
    ray_times = times.to(origins.dtype).repeat_interleave(per_image)

    def per_ray(x: Tensor | None) -> Tensor | None:
        return None if x is None else x.to(origins.device).repeat_interleave(per_image, dim=0)

    out = render_rays(field_fn, background_fn, origins, dirs, ray_times, cfg, generator=generator,
                      estimator=estimator, bg_color=per_ray(bg_colors), bg_mask=per_ray(bg_mask), chunk=chunk)
    return {k: v.reshape(n_images, height, width, v.shape[-1]) for k, v in out.items()}


class VolumeRenderer(nn.Module):
    """The renderer of one run: its config and, on CUDA, its occupancy grid (saved in state_dict)."""

    def __init__(self, cfg: RenderConfig = RenderConfig(), device: torch.device | str = "cpu"):
        super().__init__()
        self.cfg = cfg
        use_grid = wants_occupancy_grid(cfg, device)
        # OccupancyGrid raises a clear error when the grid is requested (True) but cannot run here
        self.grid = OccupancyGrid(cfg.occupancy, cfg.box_radius, cfg.num_samples, device) if use_grid else None

    def update(self, step: int, density_fn: DensityFn, *, dynamic: bool,
               generator: torch.Generator | None = None) -> bool:
        """Refresh the occupancy grid at `step` (no-op on the dense path); call before rendering."""
        if self.grid is None:
            return False
        return self.grid.update(step, density_fn, dynamic=dynamic, generator=generator)

    def render_rays(self, field_fn: FieldFn, background_fn: BackgroundFn | None, origins: Tensor, dirs: Tensor,
                    times: Tensor, *, randomized: bool | None = None, generator: torch.Generator | None = None,
                    bg_color: Tensor | None = None, bg_mask: Tensor | None = None,
                    chunk: int | None = None) -> dict[str, Tensor]:
        """`render_rays` with this renderer's config and grid; randomized=None keeps `cfg.randomized`."""
        return render_rays(field_fn, background_fn, origins, dirs, times, self._cfg(randomized), generator,
                           self.grid, bg_color, bg_mask, chunk)

    def render_images(self, field_fn: FieldFn, background_fn: BackgroundFn | None, cameras: Cameras,
                      times: Tensor, height: int, width: int, *, randomized: bool | None = None,
                      generator: torch.Generator | None = None, bg_colors: Tensor | None = None,
                      bg_mask: Tensor | None = None, chunk: int | None = None,
                      grad_max_samples: int | None | str = "config") -> dict[str, Tensor]:
        """`render_images` with this renderer's config and grid; randomized=None keeps `cfg.randomized`,
        grad_max_samples='config' keeps `cfg.grad_max_samples` (a stage's own budget replaces it)."""
        cfg = self._cfg(randomized)
        if grad_max_samples != "config":
            cfg = replace(cfg, grad_max_samples=grad_max_samples)
        return render_images(field_fn, background_fn, cameras, times, height, width, cfg,
                             generator, self.grid, bg_colors, bg_mask, chunk)

    def _cfg(self, randomized: bool | None) -> RenderConfig:
        return self.cfg if randomized is None else replace(self.cfg, randomized=randomized)

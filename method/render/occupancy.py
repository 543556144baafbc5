"""nerfacc's occupancy grid (CUDA only): skips empty space and low-alpha samples, as the release does.

The grid holds an EMA of density * step per cell of a 32^3 grid over the box, refreshed every
16 steps (all cells during the first 256 steps of a stage, then a quarter sampled uniformly plus
as many occupied ones). In the dynamic phase the density is read at one random time per update.
nerfacc's marcher and scans are CUDA kernels, so on CPU the renderer uses its dense path instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import nerfacc
import torch
from torch import Tensor, nn

from method import backends
from method.ranges import at_least, fraction

from .sampling import step_size

DensityFn = Callable[[Tensor, Tensor], Tensor]
"""density (N,) = density_fn(x (N, 3) world, t (N, 1) in [0, 1])."""


@dataclass(frozen=True)
class OccupancyConfig:
    """Occupancy grid settings (defaults: the release)."""

    resolution: int = 32
    """Cells per side of the grid over the scene box."""
    levels: int = 1
    """Grid levels (each doubles the box); 1 covers the box only."""
    update_every: int = 16
    """Refresh the grid at steps divisible by this."""
    ema_decay: float = 0.95
    """Old occupancy is multiplied by this before taking the max with the new estimate."""
    occ_thre: float = 0.01
    """A cell is occupied when its value exceeds min(occ_thre, mean occupancy)."""
    warmup_steps: int = 256
    """Before this step every cell is re-evaluated at each update (restarts with each stage)."""
    static_time: float = 0.0
    """Time at which the density is read while the scene is static (the release reads t = 0)."""

    def __post_init__(self) -> None:
        for name in ("resolution", "levels", "update_every"):  # `update_every` divides the step
            at_least(name, getattr(self, name), 1)
        at_least("warmup_steps", self.warmup_steps, 0)
        at_least("occ_thre", self.occ_thre, 0)
        fraction("ema_decay", self.ema_decay)
        fraction("static_time", self.static_time)


def update_grid(estimator, cfg: OccupancyConfig, step_size: float, step: int, density_fn: DensityFn, *,
                dynamic: bool, generator: torch.Generator | None = None) -> bool:
    """Refresh a `nerfacc.OccGridEstimator` if `step` is an update step; returns whether it did.

    Call once per training step before rendering. While `dynamic` the density is read at one
    time t ~ U[0, 1) drawn from `generator`, else at `cfg.static_time`. (nerfacc draws the
    positions inside the cells from torch's global generator; that cannot be redirected.) The update is
    plain torch, so it runs on CPU too (tests); only sampling the grid needs nerfacc's CUDA kernels.
    """
    if step % cfg.update_every != 0:
        return False
    time = float(torch.rand((), generator=generator).item()) if dynamic else cfg.static_time

    def occ_eval_fn(x: Tensor) -> Tensor:
        # density * step is the first-order value of the alpha 1 - exp(-density * step)
        t = x.new_full((x.shape[0], 1), time)
        return density_fn(x, t).reshape(-1, 1) * step_size

    estimator.train()  # nerfacc refuses updates in eval mode
    estimator.update_every_n_steps(step=step, occ_eval_fn=occ_eval_fn, occ_thre=cfg.occ_thre,
                                   ema_decay=cfg.ema_decay, warmup_steps=cfg.warmup_steps, n=cfg.update_every)
    return True


class OccupancyGrid(nn.Module):
    """A `nerfacc.OccGridEstimator` over [-r, r]^3 with explicit step and time for its updates."""

    def __init__(self, cfg: OccupancyConfig, box_radius: float, num_samples: int,
                 device: torch.device | str = "cuda"):
        super().__init__()
        device = torch.device(device)
        if device.type != "cuda" or not backends.nerfacc_cuda_active():
            raise RuntimeError(
                "the occupancy grid needs nerfacc's CUDA kernels and a CUDA device "
                f"(device={device}, CUDA available={backends.cuda_available()}); "
                "use RenderConfig(use_occupancy_grid='auto' or False) for the dense CPU path")
        self.cfg = cfg
        self.step_size = step_size(num_samples, box_radius)
        r = float(box_radius)
        self.estimator = nerfacc.OccGridEstimator(
            roi_aabb=[-r, -r, -r, r, r, r], resolution=cfg.resolution, levels=cfg.levels).to(device)

    def update(self, step: int, density_fn: DensityFn, *, dynamic: bool,
               generator: torch.Generator | None = None) -> bool:
        """Refresh the grid if `step` is an update step; returns whether it did (`update_grid`)."""
        return update_grid(self.estimator, self.cfg, self.step_size, step, density_fn, dynamic=dynamic,
                           generator=generator)

    def fill(self) -> None:
        """Mark every cell occupied (no skipping; used by tests and for a fresh grid at evaluation)."""
        self.estimator.occs.fill_(1.0)
        self.estimator.binaries.fill_(True)

    @torch.no_grad()
    def sample(self, origins: Tensor, dirs: Tensor, offsets: Tensor, sigma_fn: Callable | None,
               alpha_thre: float, early_stop_eps: float) -> tuple[Tensor, Tensor, Tensor]:
        """Packed samples (ray_indices, t_starts, t_ends) in occupied cells on the fixed-step lattice.

        `offsets` (R,) shift each ray's lattice by offsets * step (the stratified jitter, drawn by the
        caller from its own generator rather than nerfacc's global one).
        """
        ray_indices, t_starts, t_ends = self.estimator.sampling(
            origins, dirs, sigma_fn=sigma_fn, near_plane=0.0, t_min=offsets * self.step_size,
            render_step_size=self.step_size, early_stop_eps=early_stop_eps, alpha_thre=alpha_thre,
            stratified=False, cone_angle=0.0)
        return ray_indices.long(), t_starts, t_ends

"""Fixed-step samples inside the scene box, laid out densely as (rays, samples) for the CPU path.

Samples sit on the lattice t_k = (k + u) * step along each ray (t measured from the ray origin in
world units, directions are unit), u in [0, 1) one offset per ray. A sample is kept when its midpoint
lies in [t_near, t_far) of the box. This is exactly where nerfacc's occupancy-grid marcher puts its
samples when every cell is occupied (it marches from the near plane 0, or u * step when jittered),
so the dense CPU path and the CUDA grid path see the same points.

The release's "stratified" sampling is this per-ray shift of the whole lattice (every interval
keeps the length `step`), not an independent jitter per sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def step_size(num_samples: int, box_radius: float) -> float:
    """Step that puts `num_samples` samples along the diagonal of [-r, r]^3 (release: 2*sqrt(3)/512).

    The release writes sqrt(3) as 1.732; the 0.003% difference is ignored.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    return 2.0 * math.sqrt(3.0) * box_radius / num_samples


def draw_offsets(n_rays: int, randomized: bool, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
    """(n_rays,) lattice offsets u: U[0, 1) from `generator` when randomized, else zeros.

    Drawn on the generator's device (CPU by default) and moved, so a CPU generator drives CUDA renders.
    """
    if not randomized:
        return torch.zeros(n_rays, device=device, dtype=dtype)
    gen_device = generator.device if generator is not None else "cpu"
    return torch.rand(n_rays, generator=generator, device=gen_device).to(device=device, dtype=dtype)


@dataclass(frozen=True)
class DenseSamples:
    """Samples of R rays padded to K per ray; `mask` marks the real ones."""

    t_starts: Tensor
    """(R, K) interval starts along each ray."""
    t_ends: Tensor
    """(R, K) interval ends (t_starts + step)."""
    mask: Tensor
    """(R, K) bool: the sample lies in the box (padding and missed rays are False)."""

    @property
    def t_mid(self) -> Tensor:
        """(R, K) interval midpoints, where the field is evaluated."""
        return 0.5 * (self.t_starts + self.t_ends)


def lattice_samples(t_near: Tensor, t_far: Tensor, hit: Tensor, step: float, offsets: Tensor) -> DenseSamples:
    """Dense fixed-step samples between t_near and t_far (all (R,)), shifted by `offsets` (R,) * step.

    K is the largest sample count among the given rays (at least 1), so a chunk of rays that only
    grazes the box stays small.
    """
    u = offsets.to(t_near.dtype)
    # first k with midpoint (k + u + 0.5) * step >= t_near, and the count of midpoints < t_far
    k_first = torch.ceil(t_near / step - u - 0.5)
    k_end = torch.ceil(t_far / step - u - 0.5)
    count = torch.where(hit, (k_end - k_first).clamp(min=0), torch.zeros_like(k_first)).long()
    n_max = max(int(count.max().item()) if count.numel() else 0, 1)
    k = torch.arange(n_max, device=t_near.device, dtype=t_near.dtype)
    t_starts = (k_first[:, None] + k[None, :] + u[:, None]) * step
    mask = k[None, :] < count[:, None]
    return DenseSamples(t_starts=t_starts, t_ends=t_starts + step, mask=mask)

"""Ray / axis-aligned box intersection (slab method)."""

from __future__ import annotations

import torch
from torch import Tensor


def box_bounds(radius: float, like: Tensor) -> tuple[Tensor, Tensor]:
    """Corners (3,) of the cube [-radius, radius]^3 with the dtype and device of `like`."""
    lo = torch.full((3,), -float(radius), dtype=like.dtype, device=like.device)
    return lo, -lo


def ray_box_intersect(origins: Tensor, dirs: Tensor, box_min: Tensor, box_max: Tensor,
                      eps: float = 1e-12) -> tuple[Tensor, Tensor, Tensor]:
    """Where rays enter and leave the box [box_min, box_max].

    Args:
        origins, dirs: (R, 3); dirs need not be unit (t is in units of |dirs|).
    Returns:
        t_near (R,), t_far (R,), hit (R,) bool. The segment starts no earlier than t = 0 (an origin
        inside the box starts at 0); rays that miss, or touch the box in a single point, get
        hit = False and t_near = t_far = 0.
    """
    # Replace zero components by a tiny signed value: the slab then spans (-inf, inf) or is empty,
    # without 0 * inf = nan.
    safe = torch.where(dirs.abs() < eps, torch.where(dirs < 0, -eps, eps), dirs)
    inv = 1.0 / safe
    t0 = (box_min - origins) * inv
    t1 = (box_max - origins) * inv
    t_near = torch.minimum(t0, t1).amax(dim=-1).clamp(min=0.0)
    t_far = torch.maximum(t0, t1).amin(dim=-1)
    hit = t_far > t_near
    zero = torch.zeros_like(t_near)
    return torch.where(hit, t_near, zero), torch.where(hit, t_far, zero), hit

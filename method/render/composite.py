"""Alpha compositing of Eq. 1 with nerfacc's volume-rendering functions.

w_i = T_i * alpha_i,  alpha_i = 1 - exp(-sigma_i * delta_i),  T_i = prod_{j<i} (1 - alpha_j)
(nerfacc evaluates T_i as exp(-sum_{j<i} sigma_j delta_j), the same number).

Dense inputs (R, K) work on any device (nerfacc falls back to torch.cumsum); packed inputs
(N,) with `ray_indices` use nerfacc's CUDA scans. `composite_masked` mixes the two for the CPU path:
transmittance on the dense (R, K) layout, sums over the real samples only.
"""

from __future__ import annotations

from dataclasses import dataclass

import nerfacc
import torch
from torch import Tensor


@dataclass(frozen=True)
class Composited:
    """Per-ray results of compositing (foreground only; the background is added by the renderer)."""

    rgb: Tensor
    """(R, 3) sum_i w_i c_i."""
    opacity: Tensor
    """(R, 1) sum_i w_i."""
    depth: Tensor
    """(R, 1) sum_i w_i t_mid_i, not divided by the opacity (as in threestudio)."""
    weights: Tensor
    """(R, K) or (N,) the w_i."""


def composite(t_starts: Tensor, t_ends: Tensor, density: Tensor, rgb: Tensor,
              ray_indices: Tensor | None = None, n_rays: int | None = None) -> Composited:
    """Composite samples along rays.

    Dense: t_starts, t_ends, density (R, K), rgb (R, K, 3); padding samples must carry density 0.
    Packed: the same as (N,) / (N, 3) with `ray_indices` (N,) sorted by ray, and `n_rays`.
    """
    weights, _, _ = nerfacc.render_weight_from_density(
        t_starts, t_ends, density, ray_indices=ray_indices, n_rays=n_rays)
    t_mid = 0.5 * (t_starts + t_ends)
    opacity = nerfacc.accumulate_along_rays(weights, None, ray_indices=ray_indices, n_rays=n_rays)
    depth = nerfacc.accumulate_along_rays(weights, t_mid[..., None], ray_indices=ray_indices, n_rays=n_rays)
    color = nerfacc.accumulate_along_rays(weights, rgb, ray_indices=ray_indices, n_rays=n_rays)
    return Composited(rgb=color, opacity=opacity, depth=depth, weights=weights)


def composite_masked(t_starts: Tensor, t_ends: Tensor, density: Tensor, rgb: Tensor, sample_index: Tensor) -> Composited:
    """Composite dense samples (R, K) of which only N are real.

    sample_index: (N,) row-major flat indices of the real samples in the (R, K) layout, ascending;
    rgb: (N, 3) their colours. Padding must carry density 0. Summing only the real samples avoids
    (R, K, 3) temporaries, the bulk of the dense path's cost.
    """
    n_rays, n_max = density.shape
    weights, _, _ = nerfacc.render_weight_from_density(t_starts, t_ends, density)
    ray_indices = torch.div(sample_index, n_max, rounding_mode="floor")
    w = weights.reshape(-1)[sample_index]
    t_mid = 0.5 * (t_starts.reshape(-1)[sample_index] + t_ends.reshape(-1)[sample_index])
    opacity = nerfacc.accumulate_along_rays(w, None, ray_indices=ray_indices, n_rays=n_rays)
    depth = nerfacc.accumulate_along_rays(w, t_mid[:, None], ray_indices=ray_indices, n_rays=n_rays)
    color = nerfacc.accumulate_along_rays(w, rgb.to(w.dtype), ray_indices=ray_indices, n_rays=n_rays)
    return Composited(rgb=color, opacity=opacity, depth=depth, weights=weights)

"""Real spherical harmonics up to degree 3 in tiny-cuda-nn's ordering and signs (9 outputs)."""

from __future__ import annotations

import torch
from torch import Tensor

C0 = 0.28209479177387814  # 1 / (2 sqrt(pi))
C1 = 0.48860251190291987  # sqrt(3 / (4 pi))
C2 = (1.0925484305920792, 0.94617469575755997, 0.31539156525251999, 0.54627421529603959)

SH_DEGREE_OUTPUTS = {1: 1, 2: 4, 3: 9}


def spherical_harmonics(d: Tensor, degree: int = 3) -> Tensor:
    """Real SH basis of unit directions d (N, 3); 'degree' counts bands as tcnn does (degree^2 outputs)."""
    if degree not in SH_DEGREE_OUTPUTS:
        raise ValueError(f"degree must be 1, 2 or 3, got {degree}")
    x, y, z = d.unbind(-1)
    out = [torch.full_like(x, C0)]
    if degree >= 2:
        out += [-C1 * y, C1 * z, -C1 * x]
    if degree >= 3:
        out += [C2[0] * x * y, -C2[0] * y * z, C2[1] * z * z - C2[2], -C2[0] * x * z, C2[3] * (x * x - y * y)]
    return torch.stack(out, -1)

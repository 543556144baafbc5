"""Camera rays: one ray per pixel centre, in world coordinates (see `method.cameras.convention`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from method.cameras import Cameras


@dataclass(frozen=True)
class RayBundle:
    """Rays of B images of H x W pixels; row 0 is the top of the image."""

    origins: Tensor
    """(B, H, W, 3) ray origins (the camera centres) in world coordinates."""
    directions: Tensor
    """(B, H, W, 3) unit ray directions in world coordinates."""

    @property
    def shape(self) -> tuple[int, int, int]:
        """(B, H, W)."""
        return tuple(self.origins.shape[:3])

    def flatten(self) -> tuple[Tensor, Tensor]:
        """(B*H*W, 3) origins and directions, image after image, row after row."""
        return self.origins.reshape(-1, 3), self.directions.reshape(-1, 3)


def camera_directions(height: int, width: int, focal: Tensor) -> Tensor:
    """(B, H, W, 3) unnormalised directions in camera axes (x right, y up, looking along -z).

    Pixels are square (one focal length for both axes) and sampled at their centres (+0.5).
    """
    rows = torch.arange(height, dtype=focal.dtype, device=focal.device) + 0.5
    cols = torch.arange(width, dtype=focal.dtype, device=focal.device) + 0.5
    v, u = torch.meshgrid(rows, cols, indexing="ij")
    f = focal.reshape(-1, 1, 1)
    x = (u - 0.5 * width) / f
    y = -(v - 0.5 * height) / f  # image rows grow downwards, camera y points up
    return torch.stack([x, y, -torch.ones_like(x)], dim=-1)


def rays_from_cameras(cameras: Cameras, height: int, width: int) -> RayBundle:
    """One unit-direction ray through every pixel centre of every camera."""
    c2w = cameras.c2w
    dirs_cam = camera_directions(height, width, cameras.focal_length(height).to(c2w.dtype))
    dirs = torch.einsum("bij,bhwj->bhwi", c2w[:, :3, :3], dirs_cam)
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    origins = c2w[:, None, None, :3, 3].expand_as(dirs)
    return RayBundle(origins=origins, directions=dirs)

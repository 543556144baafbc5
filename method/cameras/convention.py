"""The one camera convention of the project.

World: right-handed, **z up**, the scene centred at the origin inside the box [-1, 1]^3.
Spherical camera placement: azimuth 0 deg lies on the +x axis and grows towards +y; elevation is
measured up from the xy-plane; distance from the origin:

    eye = distance * (cos(el) cos(az), cos(el) sin(az), sin(el))

Camera axes (OpenGL / threestudio): x right, y up, the camera looks along its -z axis.
`c2w` is the 4x4 camera-to-world matrix whose columns are [right, up, -forward, eye].
Field of view is vertical (along the image height), in radians inside `Cameras`.

This is the convention of the 4D-fy release's camera data modules, so MVDream receives the
same matrices the release feeds it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

WORLD_UP = (0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Cameras:
    """A batch of B pinhole cameras."""

    c2w: Tensor
    """(B, 4, 4) camera-to-world matrices (see module docstring for the axes)."""
    fovy: Tensor
    """(B,) vertical field of view in radians."""
    azimuth_deg: Tensor
    """(B,) azimuth in degrees (0 on +x, towards +y); used for view-dependent prompts."""
    elevation_deg: Tensor
    """(B,) elevation in degrees above the xy-plane."""
    distance: Tensor
    """(B,) distance of the camera centre from the origin."""

    def __post_init__(self) -> None:
        b = self.c2w.shape[0]
        if self.c2w.shape != (b, 4, 4):
            raise ValueError(f"c2w must be (B, 4, 4), got {tuple(self.c2w.shape)}")
        for name in ("fovy", "azimuth_deg", "elevation_deg", "distance"):
            if getattr(self, name).shape != (b,):
                raise ValueError(f"{name} must be ({b},), got {tuple(getattr(self, name).shape)}")

    def __len__(self) -> int:
        return self.c2w.shape[0]

    @property
    def device(self) -> torch.device:
        return self.c2w.device

    @property
    def position(self) -> Tensor:
        """(B, 3) camera centres in world coordinates."""
        return self.c2w[:, :3, 3]

    def to(self, device: torch.device | str) -> "Cameras":
        return Cameras(**{k: getattr(self, k).to(device) for k in _FIELDS})

    def __getitem__(self, index) -> "Cameras":
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(**{k: getattr(self, k)[index] for k in _FIELDS})

    def repeat(self, n: int) -> "Cameras":
        """Each camera repeated n times in a row (e.g. one camera for every frame of a clip)."""
        return Cameras(**{k: getattr(self, k).repeat_interleave(n, dim=0) for k in _FIELDS})

    @staticmethod
    def cat(items: list["Cameras"]) -> "Cameras":
        return Cameras(**{k: torch.cat([getattr(c, k) for c in items], 0) for k in _FIELDS})

    def focal_length(self, height: int) -> Tensor:
        """(B,) focal length in pixels for an image `height` pixels tall."""
        return 0.5 * height / torch.tan(0.5 * self.fovy)


_FIELDS = ("c2w", "fovy", "azimuth_deg", "elevation_deg", "distance")


def look_at(eye: Tensor, target: Tensor | None = None, up: Tensor | None = None) -> Tensor:
    """Camera-to-world matrices (B, 4, 4) for cameras at `eye` (B, 3) looking at `target`."""
    if target is None:
        target = torch.zeros_like(eye)
    if up is None:
        up = eye.new_tensor(WORLD_UP).expand_as(eye)
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, up, dim=-1), dim=-1)
    true_up = torch.nn.functional.normalize(torch.linalg.cross(right, forward, dim=-1), dim=-1)
    c2w = torch.zeros(eye.shape[0], 4, 4, dtype=eye.dtype, device=eye.device)
    c2w[:, :3, 0] = right
    c2w[:, :3, 1] = true_up
    c2w[:, :3, 2] = -forward
    c2w[:, :3, 3] = eye
    c2w[:, 3, 3] = 1.0
    return c2w


def spherical_to_position(azimuth_deg: Tensor, elevation_deg: Tensor, distance: Tensor) -> Tensor:
    """(B, 3) camera centres for the spherical placement of the module docstring."""
    az = torch.deg2rad(azimuth_deg)
    el = torch.deg2rad(elevation_deg)
    return torch.stack(
        [distance * torch.cos(el) * torch.cos(az), distance * torch.cos(el) * torch.sin(az), distance * torch.sin(el)],
        dim=-1,
    )


def cameras_from_spherical(
    azimuth_deg: Tensor | float,
    elevation_deg: Tensor | float,
    distance: Tensor | float,
    fovy_deg: Tensor | float,
) -> Cameras:
    """Cameras on a sphere around the origin, looking at the origin with +z as up.

    Scalars broadcast against the tensors; the batch size is that of the broadcast result.
    """
    az, el, dist, fov = torch.broadcast_tensors(*(torch.as_tensor(v, dtype=torch.float32) for v in
                                                  (azimuth_deg, elevation_deg, distance, fovy_deg)))
    az, el, dist, fov = (v.reshape(-1).clone() for v in (az, el, dist, fov))
    c2w = look_at(spherical_to_position(az, el, dist))
    return Cameras(c2w=c2w, fovy=torch.deg2rad(fov), azimuth_deg=az, elevation_deg=el, distance=dist)


def normalize_camera_translation(c2w: Tensor, eps: float = 1e-8) -> Tensor:
    """Copy of `c2w` with the translation scaled to unit length (MVDream's camera input)."""
    out = c2w.clone()
    t = out[..., :3, 3]
    out[..., :3, 3] = t / (t.norm(dim=-1, keepdim=True) + eps)
    return out

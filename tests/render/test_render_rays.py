"""Camera rays against the camera convention: look-at centre ray, field of view, image orientation."""

import math

import torch

from method.cameras import cameras_from_spherical
from method.render import rays_from_cameras


def test_centre_ray_looks_at_origin_along_minus_z():
    cams = cameras_from_spherical(torch.tensor([0.0, 37.0, 200.0]), torch.tensor([0.0, 25.0, -10.0]),
                                  torch.tensor([3.0, 2.5, 2.7]), torch.tensor([40.0, 20.0, 55.0]))
    h, w = 9, 13  # odd: one pixel sits on the optical axis
    rays = rays_from_cameras(cams, h, w)
    centre = rays.directions[:, h // 2, w // 2]
    minus_z = -cams.c2w[:, :3, 2]
    to_origin = -cams.position / cams.position.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(centre, minus_z, atol=1e-6, rtol=0)
    torch.testing.assert_close(centre, to_origin, atol=1e-6, rtol=0)
    torch.testing.assert_close(rays.origins, cams.position[:, None, None].expand(-1, h, w, -1))
    torch.testing.assert_close(rays.directions.norm(dim=-1), torch.ones(3, h, w))


def test_edge_rays_span_the_vertical_fov():
    fovy = 50.0
    h, w = 101, 61
    cams = cameras_from_spherical(30.0, 10.0, 2.8, fovy)
    d = rays_from_cameras(cams, h, w).directions[0]
    top, bottom = d[0, w // 2], d[-1, w // 2]
    angle = torch.acos((top * bottom).sum().clamp(-1, 1)).item()
    # pixel centres sit half a pixel inside the image edges
    tan_half = math.tan(math.radians(fovy) / 2)
    expected = 2 * math.atan((1 - 1 / h) * tan_half)
    assert abs(angle - expected) < 1e-5
    # square pixels: the horizontal extent follows from the same focal length
    left, right = d[h // 2, 0], d[h // 2, -1]
    h_angle = torch.acos((left * right).sum().clamp(-1, 1)).item()
    assert abs(h_angle - 2 * math.atan((w - 1) / h * tan_half)) < 1e-5
    # corners: the four corner rays make the same angle with the axis
    axis = -cams.c2w[0, :3, 2]
    corner_cos = torch.stack([d[0, 0], d[0, -1], d[-1, 0], d[-1, -1]]) @ axis
    expected_cos = 1 / math.sqrt(1 + ((1 - 1 / h) * tan_half) ** 2 + ((w - 1) / h * tan_half) ** 2)
    torch.testing.assert_close(corner_cos, torch.full((4,), expected_cos), atol=1e-6, rtol=0)


def test_image_rows_go_down_and_columns_go_right():
    # camera on +x looking at the origin, z up: image up is +z, image right is +y
    cams = cameras_from_spherical(0.0, 0.0, 3.0, 40.0)
    d = rays_from_cameras(cams, 8, 8).directions[0]
    assert (d[0, :, 2] > 0).all() and (d[-1, :, 2] < 0).all()
    assert (d[:, -1, 1] > 0).all() and (d[:, 0, 1] < 0).all()
    assert (d[..., 0] < 0).all()  # everything looks towards -x

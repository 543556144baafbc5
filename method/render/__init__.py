"""Volume rendering (Eq. 1) over the background: camera rays, box intersection, fixed-step samples,
nerfacc compositing; nerfacc's occupancy grid on CUDA, a dense PyTorch sampling path elsewhere."""

from .aabb import box_bounds, ray_box_intersect
from .composite import Composited, composite, composite_masked
from .occupancy import OccupancyConfig, OccupancyGrid
from .rays import RayBundle, camera_directions, rays_from_cameras
from .renderer import (
    BackgroundFn,
    FieldFn,
    RenderConfig,
    VolumeRenderer,
    render_images,
    render_rays,
    wants_occupancy_grid,
)
from .sampling import DenseSamples, draw_offsets, lattice_samples, step_size

__all__ = [
    "box_bounds", "ray_box_intersect", "Composited", "composite", "composite_masked", "OccupancyConfig", "OccupancyGrid",
    "RayBundle", "camera_directions", "rays_from_cameras", "BackgroundFn", "FieldFn", "RenderConfig",
    "VolumeRenderer", "render_images", "render_rays", "wants_occupancy_grid", "DenseSamples", "draw_offsets",
    "lattice_samples", "step_size",
]

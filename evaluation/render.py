"""Evaluation renders of a trained run along MAV3D's protocol, written as an artifact.

`render_run(run_dir, out_root, EvalRenderConfig())` loads the run (`evaluation.runs.load_run`),
renders every frame along the trajectory with the run's own renderer settings, no sample jitter,
the learned background (no random-colour augmentation) and the density-bias sigma the last stage
ended with, then writes `<out>/<method>/<slug>/` (video.mp4, depth.mp4, manifest.json). The manifest's
`source` says which run made it (`evaluation.runs.render_source`: folder, config hash, seed, `--set` values,
`--max-steps`, steps trained per stage).

Deterministic: no random draw enters; the same run gives the same frames (bytes before encoding)
whatever the chunking (tested on CPU; CUDA kernels were not checked for bitwise repeatability here).
The CPU path is dense sampling; the CUDA path skips cells of an occupancy grid built from the field
itself at the frame times, with every grid cell next to an occupied one kept.

Depth video: expected depth of the visible surface d = sum_i w_i t_i / opacity, mapped with a range
that is the same for every frame and method, [distance - sqrt(3) r, distance + sqrt(3) r] (the
nearest and farthest points of the scene box [-r, r]^3), near = bright end of matplotlib's `turbo`
colour map, and faded to black by (1 - opacity) so empty space is black.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from method.backends import resolve_device
from prompts import slugify

from .artifacts import (MANIFEST, RENDERED_TRAJECTORIES, SCHEMA, Artifact, artifact_folder, is_run_folder, refuse_existing,
                        write_artifact)

TRAJECTORIES = RENDERED_TRAJECTORIES
CPU_CHUNK_RAYS = 4096
DENSE_CHUNK_RAYS_CUDA = 32768


@dataclass(frozen=True)
class EvalRenderConfig:
    """What `fourdfy render` renders."""

    trajectory: str = "orbit"
    """'orbit' (MAV3D's evaluation path) or 'motion_smooth' (the release's stage-3 test path)."""
    n_frames: int = 64
    """orbit: frames; motion_smooth: time samples (64 give the release's 124 frames)."""
    size: int = 256
    """Square frame size in pixels (the authors' evaluation used 256)."""
    elevation_deg: float = 15.0
    """Camera elevation."""
    distance: float = 3.0
    """Camera distance from the origin."""
    fovy_deg: float = 40.0
    """Vertical field of view."""
    fps: float = 15.0
    """Frame rate of the written videos."""
    frames_per_chunk: int = 0
    """Frames rendered per renderer call; 0: as many as fit in one chunk of rays."""
    chunk_rays: int = 0
    """Rays per renderer pass; 0: the renderer's eval chunk with the occupancy grid, else 32768 on CUDA
    and 4096 on CPU (the dense path holds every sample of a chunk: about 160 kB per ray at 512 samples)."""
    depth: bool = True
    """Also write depth.mp4."""
    grid: str = "auto"
    """CUDA only: 'auto' skips empty space with an occupancy grid built from the field; 'off': dense."""
    device: str = "auto"
    """'auto' (cuda if available), 'cpu' or 'cuda'."""

    def __post_init__(self) -> None:
        if self.trajectory not in TRAJECTORIES:
            raise ValueError(f"unknown trajectory {self.trajectory!r}; choose one of {', '.join(TRAJECTORIES)}")
        if self.size < 2 or self.size % 2:
            raise ValueError(f"--size must be an even number >= 2 (H.264 yuv420p), got {self.size}")
        least = 2 if self.trajectory == "orbit" else 8
        if self.n_frames < least:
            raise ValueError(f"--frames must be at least {least} for the {self.trajectory} trajectory, got "
                             f"{self.n_frames}")
        if not (math.isfinite(self.fps) and self.fps > 0):  # else known only when the video is written
            raise ValueError(f"--fps must be a positive number, got {self.fps}")
        if self.grid not in ("auto", "off"):
            raise ValueError(f"grid must be 'auto' or 'off', got {self.grid!r}")


def trajectory(cfg: EvalRenderConfig):
    """(Cameras, times) of the configured path."""
    from method.cameras import OrbitConfig, motion_smooth, orbit

    if cfg.trajectory == "orbit":
        return orbit(OrbitConfig(n_frames=cfg.n_frames, elevation_deg=cfg.elevation_deg, distance=cfg.distance,
                                 fovy_deg=cfg.fovy_deg, height=cfg.size, width=cfg.size))
    return motion_smooth(cfg.n_frames, cfg.elevation_deg, cfg.distance, cfg.fovy_deg)


def depth_to_rgb(depth_sum: np.ndarray, opacity: np.ndarray, near: float, far: float) -> np.ndarray:
    """(N, H, W) accumulated depth and opacity -> (N, H, W, 3) uint8 colour-mapped depth (see module doc)."""
    from matplotlib import colormaps

    expected = np.where(opacity > 1e-6, depth_sum / np.maximum(opacity, 1e-6), far)
    v = np.clip((far - expected) / (far - near), 0.0, 1.0)
    rgb = colormaps["turbo"](v)[..., :3] * np.clip(opacity, 0.0, 1.0)[..., None]
    return np.round(rgb * 255.0).astype(np.uint8)


@torch.no_grad()
def build_eval_grid(estimator, density_fn, times: torch.Tensor, step_size: float, occ_thre: float,
                    dilate: int = 1) -> None:
    """Fill a nerfacc `OccGridEstimator` from the density at every cell centre and frame time.

    occ = max over frame times of density * step (nerfacc's alpha estimate); a cell is occupied when
    occ > min(occ_thre, mean occ) (nerfacc's rule), then dilated by `dilate` cells so that surfaces
    lying between cell centres are not cut. No random draws: the grid is a function of the field.
    """
    res = estimator.resolution.to(torch.float32)
    coords = estimator.grid_coords.to(torch.float32)  # (cells, 3) in the order of estimator.occs
    n = coords.shape[0]
    occs = torch.empty(estimator.levels * n, device=coords.device)
    for lvl in range(estimator.levels):
        aabb = estimator.aabbs[lvl]
        x = aabb[:3] + (coords + 0.5) / res * (aabb[3:] - aabb[:3])
        best = torch.zeros(n, device=coords.device)
        for t in times.tolist():
            best = torch.maximum(best, density_fn(x, x.new_full((n, 1), t)).reshape(-1).float() * step_size)
        occs[lvl * n:(lvl + 1) * n] = best
    thre = min(occ_thre, float(occs.mean()))
    binaries = (occs > thre).reshape(estimator.binaries.shape).float()
    if dilate > 0:
        binaries = torch.nn.functional.max_pool3d(binaries[:, None], 2 * dilate + 1, stride=1, padding=dilate)[:, 0]
    estimator.occs.copy_(occs)
    estimator.binaries.copy_(binaries > 0)


@torch.no_grad()
def render_frames(field, run_cfg, cfg: EvalRenderConfig, progress: bool = False,
                  heartbeat_s: float | None = None) -> dict:
    """Render the trajectory: rgb (N, H, W, 3) uint8, depth_sum and opacity (N, H, W) float32,
    c2w (N, 4, 4) and times (N,) as numpy arrays."""
    from evaluation.progress import Counter
    from method.render import VolumeRenderer, wants_occupancy_grid

    from .runs import eval_render_config, final_sigma

    device = resolve_device(cfg.device)
    field = field.to(device)
    rcfg = eval_render_config(run_cfg)
    use_grid = cfg.grid == "auto" and wants_occupancy_grid(rcfg, device)
    rcfg = dataclasses.replace(rcfg, use_occupancy_grid=use_grid)
    renderer = VolumeRenderer(rcfg, device)
    sigma = final_sigma(run_cfg)
    cams, times = trajectory(cfg)
    field_fn = lambda x, t: field(x, t, sigma)  # noqa: E731
    if renderer.grid is not None:
        grid = renderer.grid
        build_eval_grid(grid.estimator, lambda x, t: field.density(x, t, sigma), times.to(device), grid.step_size,
                        grid.cfg.occ_thre)
    size = cfg.size
    dense_chunk = DENSE_CHUNK_RAYS_CUDA if device.type == "cuda" else CPU_CHUNK_RAYS
    chunk = cfg.chunk_rays or (rcfg.eval_chunk_rays if use_grid else dense_chunk)
    per_call = cfg.frames_per_chunk or max(1, chunk // (size * size))
    rgb, depth, opacity = [], [], []
    # the bar only on a terminal and when asked; elsewhere a line every heartbeat_s seconds, if given
    bar = Counter(len(cams), f"render {cfg.trajectory}", "frame", bar=progress, heartbeat_s=heartbeat_s)
    for start in range(0, len(cams), per_call):
        sl = slice(start, start + per_call)
        out = renderer.render_images(field_fn, field.background, cams[sl].to(device), times[sl].to(device),
                                     size, size, chunk=chunk)
        rgb.append(np.round(out["rgb"].clamp(0, 1).cpu().numpy() * 255.0).astype(np.uint8))
        depth.append(out["depth"][..., 0].float().cpu().numpy())
        opacity.append(out["opacity"][..., 0].float().cpu().numpy())
        bar.update(len(cams[sl]))
    bar.close()
    return {"rgb": np.concatenate(rgb), "depth_sum": np.concatenate(depth), "opacity": np.concatenate(opacity),
            "c2w": cams.c2w.cpu().numpy(), "times": times.cpu().numpy(), "grid": use_grid, "sigma": sigma}


SHOWN_FOLDERS = 3
"""How many of the runs or artifacts below a folder `_folder_of_many` names."""


def _folder_of_many(folder: Path, max_depth: int = 3) -> str | None:
    """The error for a folder given to `render` that holds no manifest.json itself but runs or artifacts below it, at
    most `max_depth` levels down (a runs root, `runs/<profile>/<method>/<slug>`, or an artifact root,
    `<method>/<slug>`): which of the two it looks like and a few of them by name; None when neither is found."""
    runs, artifacts = [], []
    for here, dirs, files in os.walk(folder, followlinks=True):  # bounded by depth, so a link loop ends too
        here = Path(here)
        depth = len(here.relative_to(folder).parts)
        dirs[:] = [d for d in dirs if not d.startswith(".")]  # temporaries of an interrupted write
        if depth and MANIFEST in files:
            dirs[:] = []  # a run's or artifact's own subfolders (ckpt/, ...) hold no other
            if is_run_folder(here):
                runs.append(here)
            elif _is_artifact_manifest(here / MANIFEST):
                artifacts.append(here)
        elif depth >= max_depth:
            dirs[:] = []
    found = runs or artifacts
    if not found:
        return None
    found.sort()
    names = ", ".join(p.relative_to(folder).as_posix() for p in found[:SHOWN_FOLDERS])
    more = f" and {len(found) - SHOWN_FOLDERS} more" if len(found) > SHOWN_FOLDERS else ""
    if runs:
        return (f"{folder} holds no manifest.json: it looks like a folder of {len(runs)} training run(s) "
                f"({names}{more}), not one run; give one of them, e.g. `fourdfy render {found[0]} --out ARTIFACTS`")
    return (f"{folder} holds no manifest.json: it looks like a folder of {len(artifacts)} evaluation artifact(s) "
            f"({names}{more}), not a training run; `fourdfy render` reads one run folder of `fourdfy generate` "
            "(manifest.json + ckpt/last.pt, e.g. runs/x); artifacts are what `fourdfy clipscore`, `figure` and "
            "`survey build` read")


def _is_artifact_manifest(path: Path) -> bool:
    """Whether `path` is an artifact's manifest (any version of its schema), read without checking the rest."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and str(manifest.get("schema", "")).startswith(SCHEMA.split("/")[0] + "/")


def render_run(run_dir: Path | str, out_root: Path | str, cfg: EvalRenderConfig = EvalRenderConfig(),
               progress: bool = False, overwrite: bool = False, heartbeat_s: float | None = None) -> Artifact:
    """Render a finished run and write its artifact `<out_root>/<method>/<slug>/`.

    An existing artifact folder is refused before anything is loaded or rendered (unless `overwrite`).
    """
    from .runs import RunError, load_run, read_run_manifest, render_source

    run_dir = Path(run_dir)
    if run_dir.is_dir() and not (run_dir / MANIFEST).exists():
        many = _folder_of_many(run_dir)  # else "no manifest.json", which does not say what to give instead
        if many:
            raise RunError(many)
    manifest = read_run_manifest(run_dir)
    # rendering takes minutes: find out now, not at the write, that the folder is taken
    refuse_existing(artifact_folder(out_root, manifest["method"], slugify(manifest["prompt"])), overwrite)
    device = resolve_device(cfg.device)
    run_cfg, field, manifest = load_run(run_dir, device=str(device))
    out = render_frames(field, run_cfg, cfg, progress=progress, heartbeat_s=heartbeat_s)
    depth_rgb = None
    if cfg.depth:
        r = run_cfg.field.box_radius
        near, far = cfg.distance - math.sqrt(3) * r, cfg.distance + math.sqrt(3) * r
        depth_rgb = depth_to_rgb(out["depth_sum"], out["opacity"], max(near, 1e-3), far)
    settings = {k: v for k, v in dataclasses.asdict(cfg).items()
                if k not in ("device", "frames_per_chunk", "chunk_rays")}
    extra = {"render": settings, "blob_sigma": out["sigma"], "occupancy_grid": out["grid"],
             "profile": manifest.get("profile"), "device": device.type,
             "num_samples": run_cfg.renderer.num_samples}
    return write_artifact(out_root, manifest["method"], manifest["prompt"], out["rgb"],
                          source=render_source(run_dir, manifest),
                          trajectory=cfg.trajectory, fps=cfg.fps, times=out["times"], cameras=out["c2w"],
                          depth_frames=depth_rgb, extra=extra, overwrite=overwrite)

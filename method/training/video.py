"""Writing and reading rendered videos (mp4 through imageio-ffmpeg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class VideoError(RuntimeError):
    """A video cannot be read (missing, corrupt, or not a video)."""


def write_video(path: Path, frames: torch.Tensor, fps: int = 15) -> None:
    """frames (N, H, W, 3) in [0, 1] -> H.264 mp4 (yuv420p, readable everywhere)."""
    import imageio.v2 as imageio

    arr = (frames.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    # macro_block_size=1 keeps odd sizes (tiny renders) instead of silently resizing them
    with imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=1,
                            ffmpeg_log_level="error", output_params=["-pix_fmt", "yuv420p"]) as w:
        for frame in arr:
            w.append_data(frame)


def read_video(path: Path) -> np.ndarray:
    """(N, H, W, 3) uint8 frames; a clear VideoError for a missing or corrupt file."""
    import imageio.v2 as imageio

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"video not found: {path}")
    try:
        with imageio.get_reader(path, format="ffmpeg") as reader:
            frames = np.stack([np.asarray(f) for f in reader])
    except Exception as err:
        raise VideoError(f"cannot decode video {path}: {err}") from None
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise VideoError(f"{path} holds no frames")
    return frames

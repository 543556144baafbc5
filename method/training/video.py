"""The generator's preview video (`preview.mp4` of a run), written with the suite's PyAV encoder (method/video.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from method.fileio import fill_atomic
from method.video import encode_video, pad_even, to_uint8


def write_video(path: Path, frames: torch.Tensor, fps: int = 15) -> None:
    """frames (N, H, W, 3) in [0, 1] -> H.264 yuv420p mp4, the same bytes for the same frames.

    An odd height or width gets one repeated last row / column (yuv420p needs even sizes), so a render at
    an odd size (render.eval_size=33) gives a 34x34 video whose first 33x33 pixels are the render.
    """
    # NaN pixels of a diverged render become black, as they did before: the preview is written after training,
    # just before the manifest, and must not fail the run
    arr = frames.detach().float().clamp(0, 1).nan_to_num(0.0).cpu().numpy()
    frames8 = pad_even(to_uint8(arr))
    # atomic, as every other file of a run: a killed run never leaves half a video (the container is mp4 by name)
    fill_atomic(Path(path), lambda tmp: encode_video(tmp, frames8, fps=fps))

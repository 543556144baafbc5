"""The generator's preview video: the suite's PyAV encoder (method/video.py), same bytes for the same frames,
odd render sizes padded to an even video, diverged (NaN) pixels written black."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from method.training.outputs import write_preview_video
from method.training.video import write_video
from method.video import decode_video, encode_video, probe_video


def smooth_frames(n: int, h: int, w: int) -> torch.Tensor:
    """(n, h, w, 3) in [0, 1]: moving colour gradients (compress well, so decoded values stay close)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([torch.stack([(0.6 * xx + 0.05 * k) % 1, 0.2 + 0.6 * yy, torch.full_like(xx, 0.3 + 0.02 * k)],
                                    -1) for k in range(n)])


def test_same_frames_give_same_bytes_through_the_shared_encoder(tmp_path):
    frames = smooth_frames(8, 16, 24)
    write_video(tmp_path / "a.mp4", frames)
    write_video(tmp_path / "sub" / "b.mp4", frames.clone())  # makes the folder, as the trainer's writer did
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "a.mp4", tmp_path / "sub" / "b.mp4")]
    assert digest[0] == digest[1]
    # one video stack: the preview is exactly what evaluation's encoder writes for the rounded frames
    as_uint8 = np.round(frames.numpy() * 255).astype(np.uint8)
    encode_video(tmp_path / "c.mp4", as_uint8, fps=15)
    assert (tmp_path / "c.mp4").read_bytes() == (tmp_path / "a.mp4").read_bytes()
    info = probe_video(tmp_path / "a.mp4")
    assert (info.codec, info.pix_fmt, info.width, info.height, info.fps, info.frames) == ("h264", "yuv420p", 24, 16,
                                                                                          15.0, 8)
    assert np.abs(decode_video(tmp_path / "a.mp4").astype(int) - as_uint8.astype(int)).mean() < 3.0


def test_an_odd_render_size_gives_a_video_one_pixel_larger(tmp_path):
    """imageio-ffmpeg's writer left a 0-byte preview.mp4 (and no error) for an odd size; now the last row and
    column are repeated once."""
    frames = smooth_frames(4, 33, 33)
    write_video(tmp_path / "odd.mp4", frames)
    back = decode_video(tmp_path / "odd.mp4").astype(int)
    assert back.shape == (4, 34, 34, 3)
    ref = np.round(frames.numpy() * 255).astype(int)
    assert np.abs(back[:, :33, :33] - ref).mean() < 3.0
    assert np.abs(back[:, 33, :33] - ref[:, 32]).mean() < 3.0 and np.abs(back[:, :33, 33] - ref[:, :, 32]).mean() < 3.0


def test_the_run_preview_at_an_odd_size_is_written(tmp_path):
    def render_fn(cams, times, h, w):  # a grey level that follows the time of each orbit frame
        return times.reshape(-1, 1, 1, 1).expand(len(times), h, w, 3).clone()

    path = write_preview_video(render_fn, tmp_path / "run" / "preview.mp4", size=33, n_frames=6)
    frames = decode_video(path)
    assert frames.shape == (6, 34, 34, 3)
    assert frames[-1].mean() > frames[0].mean()  # the orbit's times run forward


def test_nan_pixels_of_a_diverged_render_are_black(tmp_path):
    frames = torch.full((3, 16, 16, 3), 0.8)
    frames[:, :8] = float("nan")
    write_video(tmp_path / "nan.mp4", frames)
    back = decode_video(tmp_path / "nan.mp4").astype(int)
    assert back[:, :6].max() < 12 and np.abs(back[:, 10:] - 204).max() < 12

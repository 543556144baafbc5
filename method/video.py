"""Video encode / decode with PyAV (FFmpeg's libraries from PyPI wheels; no system ffmpeg needed): the suite's one
video stack, used by the generator's preview (method/training/video.py) and by evaluation/ (evaluation/video.py).

Encoding is H.264 (libx264), yuv420p, constant quality, one encoder thread, x264's mbtree off and FFmpeg's
`bitexact` flags, so the same frames give the same bytes on any machine with the same PyAV build.
Decoding returns RGB uint8 frames (N, H, W, 3) and raises `VideoError` with the reason for a
missing, empty, corrupt, truncated (fewer frames than the container declares) or non-video file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np


class VideoError(ValueError):
    """A video cannot be read or written (missing, empty, corrupt, not a video, bad frames)."""


@dataclass(frozen=True)
class EncodeConfig:
    """H.264 settings of every video the suite writes."""

    crf: int = 16
    """x264 constant rate factor (lower = closer to the frames; 16 is visually lossless for renders)."""
    preset: str = "medium"
    """x264 speed/size preset."""
    x264_params: str = "mbtree=0"
    """Extra x264 options. mbtree off: with it, the same frames encoded to different bytes from call to call
    (x264 core 165 through PyAV 18, one thread), so renders were not reproducible; files grow ~1.5x."""


@dataclass(frozen=True)
class VideoInfo:
    """What a decoder reports about a video file."""

    codec: str
    """Codec name (h264, vp9, ...)."""
    pix_fmt: str | None
    """Pixel format of the stream (yuv420p, ...)."""
    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""
    fps: float
    """Average frame rate (0 when the container does not say)."""
    container: str
    """Container format names (e.g. 'mov,mp4,m4a,3gp,3g2,mj2')."""
    frames: int = 0
    """Frame count the container declares (0 when it does not say: mkv, webm)."""


def to_uint8(frames) -> np.ndarray:
    """(N, H, W, 3) float in [0, 1] (numpy or torch) or uint8 -> uint8, rounding to nearest."""
    if hasattr(frames, "detach"):  # torch tensor, without importing torch here
        frames = frames.detach().cpu().numpy()
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise VideoError(f"frames must be (N, H, W, 3), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise VideoError(f"frames must be uint8 or float in [0, 1], got {arr.dtype}")
    if not np.isfinite(arr).all():
        raise VideoError("frames hold NaN or infinite values")
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def pad_even(frames: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: repeat the last row / column once where a size is odd."""
    n, h, w, _ = frames.shape
    if h % 2 == 0 and w % 2 == 0:
        return frames
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _fps_fraction(fps: float) -> Fraction:
    if not fps > 0:
        raise VideoError(f"fps must be > 0, got {fps}")
    return Fraction(fps).limit_denominator(1001)


def encode_video(path: Path | str, frames, fps: float = 15.0, cfg: EncodeConfig = EncodeConfig()) -> None:
    """Write frames (N, H, W, 3) (uint8, or float in [0, 1]) as H.264 yuv420p mp4; H and W must be even."""
    import av

    arr = to_uint8(frames)
    n, h, w, _ = arr.shape
    if n == 0:
        raise VideoError("no frames to encode")
    if h % 2 or w % 2:
        raise VideoError(f"H.264 yuv420p needs an even frame size, got {h}x{w} (pad with `pad_even`)")
    path = Path(path)
    with av.open(str(path), mode="w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=_fps_fraction(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        # one thread: x264's output depends on its thread count, which would depend on the machine
        stream.options = {"crf": str(cfg.crf), "preset": cfg.preset, "threads": "1", "flags": "+bitexact",
                          **({"x264-params": cfg.x264_params} if cfg.x264_params else {})}
        for frame in arr:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _open(path: Path):
    import av

    if not path.exists():
        raise VideoError("file not found")
    if path.is_dir():
        raise VideoError("is a folder, not a video file")
    if os.path.getsize(path) == 0:
        raise VideoError("empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except av.FFmpegError as err:
        raise VideoError(f"not a readable video ({_reason(err)})") from None
    if not container.streams.video:
        container.close()
        raise VideoError("holds no video stream")
    return container


def _reason(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.split(";")[0].strip() or type(err).__name__


def probe_video(path: Path | str) -> VideoInfo:
    """Codec, pixel format, size and fps from the container (frames are not decoded)."""
    path = Path(path)
    container = _open(path)
    try:
        s = container.streams.video[0]
        ctx = s.codec_context
        fps = float(s.average_rate) if s.average_rate else 0.0
        return VideoInfo(codec=ctx.name, pix_fmt=ctx.pix_fmt, width=ctx.width, height=ctx.height, fps=fps,
                         container=container.format.name, frames=s.frames)
    finally:
        container.close()


def sample_counts(path: Path | str) -> tuple[int, int]:
    """(declared, stored): the frame count the container declares (0 where it does not say) and the samples the
    file holds, read without decoding them. stored < declared: the file is cut short."""
    import av

    container = _open(Path(path))
    stream = container.streams.video[0]
    declared = stream.frames  # read while the container is open: closing it frees the stream
    stored = 0
    try:
        for packet in container.demux(stream):
            stored += bool(packet.size)  # the demuxer's last packet is an empty one that flushes the decoder
    except av.FFmpegError as err:
        raise VideoError(f"corrupt video: reading failed after {stored} sample(s) ({_reason(err)})") from None
    finally:
        container.close()
    return declared, stored


def decode_video(path: Path | str) -> np.ndarray:
    """All frames as RGB uint8 (N, H, W, 3); VideoError(reason) for anything that is not a whole video."""
    import av

    path = Path(path)
    container = _open(path)
    frames = []
    stream = container.streams.video[0]
    # the frame count of the container's index (mp4, mov, avi, gif); 0 where the container does not say (mkv, webm)
    declared = stream.frames
    of_declared = f" of the {declared} its container declares" if declared else ""
    packets = 0  # samples the file really holds
    try:
        stream.thread_type = "AUTO"  # frame threads: decoding output is bit-exact whatever the count
        for packet in container.demux(stream):
            packets += bool(packet.size)  # the demuxer's last packet is an empty one that flushes the decoder
            for frame in packet.decode():
                frames.append(frame.to_ndarray(format="rgb24"))
    except av.FFmpegError as err:
        raise VideoError(f"corrupt video: decoding failed after {len(frames)} frame(s){of_declared} "
                         f"({_reason(err)})") from None
    finally:
        container.close()
    if not frames:
        raise VideoError("no decodable frames")
    # A cut file whose index sits at the front (faststart) opens and decodes its first part without any error
    # under frame threads: only the samples missing from the file show it. Samples, not decoded frames: a file
    # trimmed without re-encoding keeps samples its edit list tells the decoder to drop, so it decodes fewer
    # frames than it declares and is still whole.
    if declared and packets < declared:
        raise VideoError(f"truncated video: {packets} of the {declared} frame(s) its container declares are in the "
                         f"file ({len(frames)} decoded); the file is cut short (copy or export it again)")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise VideoError(f"frame size changes inside the video: {sorted(shapes)}")
    return np.stack(frames)

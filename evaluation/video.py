"""Videos of the evaluation: the PyAV encoder / decoder of `method.video` (the suite's one video stack, kept in
method/ so the generator's preview uses the same bit-exact encoder; re-exported here for evaluation's callers), plus
what only evaluation needs: the file endings `import-videos` takes and the frame-resampling map.
"""

from __future__ import annotations

import numpy as np

from method.video import (EncodeConfig, VideoError, VideoInfo, decode_video, encode_video, pad_even, probe_video,
                          sample_counts, to_uint8)

__all__ = ["VIDEO_EXTENSIONS", "EncodeConfig", "VideoError", "VideoInfo", "decode_video", "encode_video", "pad_even",
           "probe_video", "resample_indices", "sample_counts", "to_uint8"]

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".gif")
"""File endings `import-videos` treats as videos."""


def resample_indices(n_source: int, n_target: int) -> np.ndarray:
    """Nearest-frame index map for resampling a clip of n_source frames to n_target frames.

    Frame k of the result is source frame floor(k * n_source / n_target): frames are treated as
    samples at times k/n of one period, the first frame is kept, and nothing is interpolated (a
    blended frame would be a picture no method produced).
    """
    if n_source < 1 or n_target < 1:
        raise VideoError(f"cannot resample {n_source} frames to {n_target}")
    return (np.arange(n_target, dtype=np.int64) * n_source) // n_target

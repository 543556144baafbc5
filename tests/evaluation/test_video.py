"""Video encode/decode through PyAV: round trip, determinism, clear errors, resampling map."""

from __future__ import annotations

import hashlib
import re
from fractions import Fraction

import av
import numpy as np
import pytest

from evaluation.video import (VideoError, decode_video, encode_video, pad_even, probe_video, resample_indices,
                              to_uint8)

from eval_helpers import make_frames, write_cut_faststart_video, write_trimmed_video


def test_round_trip_keeps_count_size_and_pixels(tmp_path):
    frames = make_frames(6, 24, 40)
    encode_video(tmp_path / "v.mp4", frames, fps=15)
    back = decode_video(tmp_path / "v.mp4")
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 3.0  # lossy, but close
    info = probe_video(tmp_path / "v.mp4")
    assert (info.codec, info.pix_fmt, info.width, info.height, info.fps) == ("h264", "yuv420p", 40, 24, 15.0)


def test_same_frames_give_same_bytes(tmp_path):
    frames = make_frames(5, 16, 16, seed=3)
    encode_video(tmp_path / "a.mp4", frames)
    encode_video(tmp_path / "b.mp4", frames.copy())
    digest = [hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.mp4", "b.mp4")]
    assert digest[0] == digest[1]


def test_a_depth_like_clip_encodes_to_the_same_bytes_every_time(tmp_path):
    """A colour-mapped blob moving on black (what depth.mp4 holds): with x264's mbtree on, 10 encodings of
    these frames gave 3 different files, so `dvc repro` rewrote depth videos from unchanged renders."""
    from matplotlib import colormaps

    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    frames = []
    for i in range(32):
        r = np.hypot(xx - 0.5 - 0.3 * np.cos(i / 5), yy - 0.5 - 0.3 * np.sin(i / 5))
        v = np.clip(1 - 2 * r, 0, 1)
        frames.append(colormaps["turbo"](v)[..., :3] * (v > 0.05)[..., None])
    frames = np.round(np.stack(frames) * 255).astype(np.uint8)
    digests = set()
    for _ in range(10):
        encode_video(tmp_path / "d.mp4", frames)
        digests.add(hashlib.sha256((tmp_path / "d.mp4").read_bytes()).hexdigest())
    assert len(digests) == 1


def test_float_frames_round_to_nearest():
    x = np.array([0.0, 0.6 / 255, 0.49 / 255, 1.0, 1.7, -0.2]).reshape(1, 1, 2, 3)
    expected = np.array([0, 1, 0, 255, 255, 0], dtype=np.uint8).reshape(1, 1, 2, 3)  # by hand
    assert np.array_equal(to_uint8(x), expected)
    with pytest.raises(VideoError, match="NaN"):
        to_uint8(np.full((1, 2, 2, 3), np.nan))


def test_odd_sizes_are_refused_and_padding_repeats_the_edge(tmp_path):
    frames = make_frames(2, 5, 7)
    with pytest.raises(VideoError, match="even"):
        encode_video(tmp_path / "odd.mp4", frames)
    padded = pad_even(frames)
    assert padded.shape == (2, 6, 8, 3)
    assert np.array_equal(padded[:, :5, :7], frames)
    assert np.array_equal(padded[:, 5, :7], frames[:, 4]) and np.array_equal(padded[:, :5, 7], frames[:, :, 6])


def test_decode_errors_name_the_reason(tmp_path):
    good = tmp_path / "good.mp4"
    encode_video(good, make_frames(8, 16, 16))
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video at all\n")
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 3])
    for name, reason in [("empty.mp4", "empty file"), ("text.mp4", "not a readable video"),
                         ("cut.mp4", "not a readable video|corrupt"), ("missing.mp4", "not found")]:
        with pytest.raises(VideoError, match=reason):
            decode_video(tmp_path / name)


def test_a_cut_video_with_its_index_in_front_is_truncated_not_short(tmp_path):
    """Cut in half, a faststart file still opens and its first frames decode without an error: only the frame
    count its container declares shows that the rest is missing."""
    declared = write_cut_faststart_video(tmp_path / "cut.mp4")
    with av.open(str(tmp_path / "cut.mp4")) as c:
        assert c.streams.video[0].frames == declared
    with pytest.raises(VideoError) as err:
        decode_video(tmp_path / "cut.mp4")
    m = re.fullmatch(rf"truncated video: (\d+) of the {declared} frame\(s\) its container declares are in the file "
                     rf"\((\d+) decoded\); .*", str(err.value))
    assert m and 0 < int(m.group(2)) <= int(m.group(1)) < declared, str(err.value)


def test_a_file_trimmed_without_reencoding_is_whole(tmp_path):
    """A stream-copy trim (`ffmpeg -ss ... -c copy`) keeps the samples before the cut and marks them to be dropped
    (an edit list): the file declares 30 frames and decodes 25, and it is whole. The check counts the samples in
    the file, not the frames decoded."""
    trimmed = tmp_path / "trimmed.mp4"
    write_trimmed_video(trimmed, n=30, drop=5)
    with av.open(str(trimmed)) as c:
        assert c.streams.video[0].frames == 30
    assert len(decode_video(trimmed)) == 25


@pytest.mark.parametrize("name,codec,pix_fmt", [("v.avi", "mpeg4", "yuv420p"), ("v.mov", "png", "rgb24"),
                                                ("v.mkv", "libx264", "yuv420p"), ("v.gif", "gif", "rgb8")])
def test_whole_videos_of_every_container_decode_the_count_they_declare(tmp_path, name, codec, pix_fmt):
    """No false 'truncated' for whole files, whether the container declares a count (avi, mov, gif) or not (mkv)."""
    frames = make_frames(7, 16, 16)
    with av.open(str(tmp_path / name), "w") as c:
        s = c.add_stream(codec, rate=15)
        s.width, s.height, s.pix_fmt = 16, 16, pix_fmt
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    assert len(decode_video(tmp_path / name)) == 7


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    with pytest.raises(VideoError, match="no video stream"):
        decode_video(path)


@pytest.mark.parametrize("n_src,n_dst", [(124, 64), (10, 4), (4, 10), (64, 64), (7, 1)])
def test_resample_indices_match_the_nearest_earlier_frame(n_src, n_dst):
    got = resample_indices(n_src, n_dst)
    # reference: frame k sits at time k/n_dst of one period; take the last source frame at or before it
    for k in range(n_dst):
        t = Fraction(k, n_dst)
        ref = max(j for j in range(n_src) if Fraction(j, n_src) <= t)
        assert got[k] == ref


def test_evaluation_uses_the_generators_video_stack(tmp_path):
    """One video stack: evaluation's encoder, decoder and error are method.video's, so a VideoError raised below
    evaluation/ is caught by evaluation's callers under the name they import."""
    import evaluation.video as ev
    import method.video as mv

    for name in ("EncodeConfig", "VideoError", "VideoInfo", "decode_video", "encode_video", "pad_even", "probe_video",
                 "sample_counts", "to_uint8"):
        assert getattr(ev, name) is getattr(mv, name), name
    with pytest.raises(VideoError, match="no frames"):
        mv.encode_video(tmp_path / "none.mp4", np.zeros((0, 2, 2, 3), np.uint8))

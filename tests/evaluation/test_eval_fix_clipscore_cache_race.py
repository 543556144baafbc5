"""`fourdfy clipscore` hashes every video for its digest check (and, with --cache, for the cache keys) before the
CLIP model loads, which takes seconds to minutes. A video replaced in that window used to be scored as it is then,
and cached under the key of the bytes checked before: a later run given those bytes back would take the other
file's scores from the cache, and a replacement a manifest's `video_sha256` refuses was scored and reported. Now a
stat of each video before scoring (`clip.file_stamp`: device, inode, size, mtime_ns) tells a change without reading
it: the video is hashed again and checked against its manifest, keyed by what it holds, and a note says so; one
changed while it is decoded is not cached."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

import evaluation.clip as clip_mod
import evaluation.clip_models as clip_models
from evaluation.artifacts import sha256_file, write_artifact
from evaluation.video import encode_video
from pipelines.cli import app

runner = CliRunner()
SRC = {"kind": "import", "file": "x.mp4", "sha256": "0" * 64}
REAL_LOAD = clip_models.load_clip


@pytest.fixture()
def arts(tmp_path):
    """Two artifacts with small real videos (3 frames of 16x16)."""
    root = tmp_path / "art"
    return root, [write_artifact(root, method, "A panda dancing.", make_frames(3, 16, 16, seed=k), source=SRC,
                                 trajectory="orbit", fps=15) for k, method in enumerate(("4dfy", "mav3d"))]


def _without_digest(art) -> None:
    """The manifest as an earlier version wrote it (no `video_sha256`: nothing to check the video by)."""
    path = art.folder / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["video_sha256"]
    path.write_text(json.dumps(manifest))


def _replace(video) -> None:
    """Another video of the same frame count and size put in place by a rename, as a copy tool does."""
    new = video.parent / "incoming.mp4"
    encode_video(new, make_frames(3, 16, 16, seed=40), fps=15)
    os.replace(new, video)


def _replacing_while_loading(monkeypatch, video) -> None:
    def load(cfg):
        _replace(video)  # after the digest check, before any video is scored
        return REAL_LOAD(cfg)

    monkeypatch.setattr(clip_models, "load_clip", load)


def _clipscore(root, out, tiny_clip, *extra):
    return runner.invoke(app, ["clipscore", str(root), "--out", str(out), "--clip-model", str(tiny_clip),
                               "--resamples", "50", "--device", "cpu", "--no-progress", *extra])


def _entry(cache_dir, tiny_clip, video, prompt, digest):
    """The cache file of `video` scored with the digest `digest`, as clipscore keys it (batch size 16, CPU)."""
    cache = clip_mod.ScoreCache(cache_dir, REAL_LOAD(clip_models.ClipConfig(model=str(tiny_clip), device="cpu")))
    return cache._path(cache.key(video, prompt, 16, digest))


def _changes(res) -> list[str]:
    """The stderr lines about videos that changed (the others: the tiny CLIP's note, the progress line)."""
    return [ln for ln in error_lines(res) if "changed" in ln]


def _scores(out, method) -> list[float]:
    table = pd.read_csv(out / "per_frame.csv")
    return table[table.method == method].sort_values("frame").score.tolist()


def test_a_video_replaced_while_the_model_loads_is_keyed_by_its_new_bytes(arts, tmp_path, tiny_clip, monkeypatch):
    root, (_, art) = arts
    _without_digest(art)
    before = sha256_file(art.video_path)
    _replacing_while_loading(monkeypatch, art.video_path)
    res = _clipscore(root, tmp_path / "clip", tiny_clip, "--cache", str(tmp_path / "cache"))
    assert res.exit_code == 0, res.output
    assert _changes(res) == [f"note: {art.video_path} changed after clipscore checked it (while the model "
                                "loaded); read again for its cache key"]
    after = sha256_file(art.video_path)
    assert after != before
    old = _entry(tmp_path / "cache", tiny_clip, art.video_path, art.prompt, before)
    new = _entry(tmp_path / "cache", tiny_clip, art.video_path, art.prompt, after)
    assert not old.exists()  # was there: the new video's scores under the old bytes' key
    # the entry holds the scores of the bytes its key names: those of a run without the cache, of the video as it is
    monkeypatch.setattr(clip_models, "load_clip", REAL_LOAD)
    assert _clipscore(root, tmp_path / "fresh", tiny_clip).exit_code == 0
    # (per_frame.csv rounds to 5 decimals)
    assert json.loads(new.read_text())["scores"] == pytest.approx(_scores(tmp_path / "fresh", "mav3d"), abs=5e-6)
    assert _scores(tmp_path / "clip", "mav3d") == _scores(tmp_path / "fresh", "mav3d")


@pytest.mark.parametrize("cached", [True, False])
def test_a_replacement_the_manifest_refuses_is_refused_after_the_model_loads(arts, tmp_path, tiny_clip,
                                                                            monkeypatch, cached):
    root, (_, art) = arts
    before = sha256_file(art.video_path)
    _replacing_while_loading(monkeypatch, art.video_path)
    cache = ["--cache", str(tmp_path / "cache")] if cached else []
    res = _clipscore(root, tmp_path / "clip", tiny_clip, *cache)
    assert res.exit_code == 2, res.output  # was 0: the replacement scored and reported as the imported video
    assert _changes(res) == [
        f"error: video.mp4 in {art.folder} changed since it was written (its SHA-256 differs from the manifest's "
        "video_sha256: truncated, corrupted or replaced), so it is not the video written there; import x.mp4 again "
        "with `fourdfy import-videos SRC --method mav3d --out ROOT --overwrite` (it changed after clipscore checked "
        "it, before it was scored; nothing was written)"]
    assert not (tmp_path / "clip").exists()
    if cached:
        assert not _entry(tmp_path / "cache", tiny_clip, art.video_path, art.prompt, before).exists()


def test_a_video_changed_while_it_is_decoded_is_scored_but_not_cached(arts, tmp_path, tiny_clip, monkeypatch):
    root, (first, art) = arts
    _without_digest(art)
    before = sha256_file(art.video_path)
    real = clip_mod.decode_video

    def decode(path):
        frames = real(path)
        if path == art.video_path:
            _replace(path)
        return frames

    monkeypatch.setattr(clip_mod, "decode_video", decode)
    res = _clipscore(root, tmp_path / "clip", tiny_clip, "--cache", str(tmp_path / "cache"))
    assert res.exit_code == 0, res.output
    assert _changes(res) == [f"note: {art.video_path} changed while it was decoded; its manifest records no "
                                "video_sha256 to check it by; its scores are not cached"]
    entries = sorted((tmp_path / "cache").rglob("*.json"))
    first_entry = _entry(tmp_path / "cache", tiny_clip, first.video_path, first.prompt, sha256_file(first.video_path))
    assert entries == [first_entry]  # was two: the other under the key of the bytes read before the decode
    assert not _entry(tmp_path / "cache", tiny_clip, art.video_path, art.prompt, before).exists()


def test_unchanged_videos_are_not_read_again_and_get_no_note(arts, tmp_path, tiny_clip):
    root, written = arts
    res = _clipscore(root, tmp_path / "clip", tiny_clip, "--cache", str(tmp_path / "cache"))
    assert res.exit_code == 0 and _changes(res) == [], res.output
    assert len(list((tmp_path / "cache").rglob("*.json"))) == len(written)


def test_the_stamp_tells_a_rename_that_kept_size_and_mtime(tmp_path):
    video = tmp_path / "video.mp4"
    encode_video(video, make_frames(3, 16, 16), fps=15)
    stamp = clip_mod.file_stamp(video)
    copy = tmp_path / "copy.mp4"
    shutil.copyfile(video, copy)
    st = os.stat(video)
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(copy, video)  # same bytes, size and mtime, another file (as `rsync -t` leaves it)
    assert os.stat(video).st_size == stamp[2] and os.stat(video).st_mtime_ns == stamp[3]
    assert clip_mod.file_stamp(video) != stamp
    assert clip_mod.file_stamp(tmp_path / "missing.mp4") is None

"""`fourdfy clipscore --cache` reads each video's bytes for their SHA-256 once per run: the digest check against the
manifest's `video_sha256` and the cache key share the digest (each video used to be hashed twice)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

import evaluation.artifacts as artifacts_mod
import evaluation.clip as clip_mod
from evaluation.artifacts import sha256_file, write_artifact
from evaluation.video import encode_video
from pipelines.cli import app

runner = CliRunner()
SRC = {"kind": "import", "file": "x.mp4", "sha256": "0" * 64}
PROMPTS = ("A panda dancing.", "A goat drinking beer.")


@pytest.fixture()
def arts(tmp_path):
    """Three artifacts (two methods, two prompts) with small real videos."""
    root = tmp_path / "art"
    out = [write_artifact(root, method, prompt, make_frames(3, 16, 16, seed=k), source=SRC, trajectory="orbit", fps=15)
           for k, (method, prompt) in enumerate([("4dfy", PROMPTS[0]), ("4dfy", PROMPTS[1]), ("mav3d", PROMPTS[0])])]
    return root, out


@pytest.fixture()
def hashed(monkeypatch):
    """Counter of the files read by `sha256_file`, by path, wherever clipscore calls it."""
    seen, real = Counter(), sha256_file

    def counting(path):
        seen[str(path)] += 1
        return real(path)

    for module in (artifacts_mod, clip_mod):
        monkeypatch.setattr(module, "sha256_file", counting)
    return seen


def _clipscore(root, out, tiny_clip, *extra):
    return runner.invoke(app, ["clipscore", str(root), "--out", str(out), "--clip-model", str(tiny_clip),
                               "--resamples", "50", "--device", "cpu", "--no-progress", *extra])


def test_with_the_cache_each_video_is_hashed_once_per_run(arts, tmp_path, tiny_clip, hashed):
    root, written = arts
    videos = {str(a.video_path): 1 for a in written}
    cache = ["--cache", str(tmp_path / "cache")]
    res = _clipscore(root, tmp_path / "clip", tiny_clip, *cache)  # every video scored and cached
    assert res.exit_code == 0, res.output
    assert hashed == videos  # was 2 each: the digest check, then the cache key
    first = (tmp_path / "clip" / "per_frame.csv").read_bytes()
    hashed.clear()
    res = _clipscore(root, tmp_path / "clip", tiny_clip, *cache)  # every video from the cache
    assert res.exit_code == 0 and "3 videos (3 from the cache)" in res.stdout, res.output
    assert hashed == videos and (tmp_path / "clip" / "per_frame.csv").read_bytes() == first
    hashed.clear()
    res = _clipscore(root, tmp_path / "clip2", tiny_clip)  # no cache: the digest check alone reads them
    assert res.exit_code == 0, res.output
    assert hashed == videos and (tmp_path / "clip2" / "per_frame.csv").read_bytes() == first


def test_manifests_without_the_digest_are_hashed_once_for_the_key_only(arts, tmp_path, tiny_clip, hashed):
    root, written = arts
    for art in written:  # as an earlier version wrote them
        manifest = json.loads((art.folder / "manifest.json").read_text())
        del manifest["video_sha256"]
        (art.folder / "manifest.json").write_text(json.dumps(manifest))
    res = _clipscore(root, tmp_path / "clip", tiny_clip, "--cache", str(tmp_path / "cache"))
    assert res.exit_code == 0, res.output
    assert hashed == {str(a.video_path): 1 for a in written}
    hashed.clear()
    assert _clipscore(root, tmp_path / "clip2", tiny_clip).exit_code == 0 and hashed == {}  # nothing to check


def test_a_replaced_video_is_still_refused_with_the_cache(arts, tmp_path, tiny_clip, hashed):
    root, written = arts
    cache = ["--cache", str(tmp_path / "cache")]
    assert _clipscore(root, tmp_path / "clip", tiny_clip, *cache).exit_code == 0
    encode_video(written[2].video_path, make_frames(3, 16, 16, seed=40), fps=15)  # same frames and size, other bytes
    res = _clipscore(root, tmp_path / "clip", tiny_clip, *cache)
    assert res.exit_code == 2, res.output
    assert error_lines(res) == [
        f"error: 1 artifact(s) whose video changed since it was written; nothing was scored: video.mp4 in "
        f"{written[2].folder} changed since it was written (its SHA-256 differs from the manifest's video_sha256: "
        "truncated, corrupted or replaced), so it is not the video written there; import x.mp4 again with `fourdfy "
        "import-videos SRC --method mav3d --out ROOT --overwrite`"]


def test_a_key_from_a_given_digest_is_the_key_from_the_file(arts, tiny_clip):
    from evaluation.clip_models import ClipConfig, load_clip

    _, written = arts
    cache = clip_mod.ScoreCache(arts[0] / "cache", load_clip(ClipConfig(model=str(tiny_clip), device="cpu")))
    video = written[0].video_path
    assert cache.key(video, PROMPTS[0], 16, sha256_file(video)) == cache.key(video, PROMPTS[0], 16)
    assert cache.key(video, PROMPTS[0], 16, "0" * 64) != cache.key(video, PROMPTS[0], 16)
    assert clip_mod.video_digests({("4dfy", "x"): written[0]}) == {("4dfy", "x"): sha256_file(video)}
    video.unlink()  # unreadable: left out, for the checks to report
    assert clip_mod.video_digests({("4dfy", "x"): written[0]}) == {}

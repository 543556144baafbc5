"""import-videos run again checks the video it wrote: a folder of the same import whose video.mp4 was truncated or
replaced since is not done but an error asking for --overwrite (it used to be trusted as done); the manifest records
the video's SHA-256 (`video_sha256`), and an older manifest without it still counts as done."""

from __future__ import annotations

import hashlib
import json

import pytest
from eval_helpers import error_lines, make_frames, write_with_codec
from typer.testing import CliRunner

from evaluation.artifacts import validate_artifact
from evaluation.importer import import_videos
from evaluation.video import encode_video
from pipelines.cli import app

runner = CliRunner()
METHOD = "mav3d"
COPIED, ENCODED = "a_panda_dancing", "a_goat_drinking_beer"


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    encode_video(d / f"{COPIED}.mp4", make_frames(6, 16, 16), fps=15)  # H.264: copied byte for byte
    write_with_codec(d / f"{ENCODED}.mov", make_frames(5, 16, 20, seed=3), "png", "rgb24", fps=12)  # re-encoded
    return d


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_manifest_records_the_written_video(src, tmp_path):
    out = tmp_path / "out"
    r = import_videos(src, METHOD, out)
    assert sorted(a.slug for a in r.imported) == [ENCODED, COPIED]
    for art in r.imported:
        assert art.manifest["video_sha256"] == _sha(art.video_path) and validate_artifact(art.folder) == []
    copied = next(a for a in r.imported if a.slug == COPIED)
    assert copied.manifest["video_sha256"] == copied.source["sha256"] == _sha(src / f"{COPIED}.mp4")


def test_a_truncated_video_is_not_done_but_an_error_asking_for_overwrite(src, tmp_path):
    out = tmp_path / "out"
    import_videos(src, METHOD, out)
    for slug in (COPIED, ENCODED):
        _truncate(out / METHOD / slug / "video.mp4")
    before = _snapshot(out)
    r = import_videos(src, METHOD, out)
    assert not r.done and not r.imported and not r.existing
    for name, slug in ((f"{COPIED}.mp4", COPIED), (f"{ENCODED}.mov", ENCODED)):
        assert r.failed[name] == (f"{out / METHOD / slug / 'video.mp4'} is not the video the import wrote there (its "
                                  "SHA-256 differs from the one its manifest records: truncated, corrupted or replaced "
                                  f"since); pass --overwrite to import {name} again")
    assert not {ENCODED, COPIED} & set(r.no_video)  # named by `failed`, with the reason, not again here
    assert _snapshot(out) == before  # never replaced unasked
    # the command: one error line each, exit 2
    res = runner.invoke(app, ["import-videos", str(src), "--method", METHOD, "--out", str(out), "--prompts",
                              str(_prompts(tmp_path))])
    assert res.exit_code == 2, res.output
    assert [ln.split(":")[1].strip() for ln in error_lines(res)] == [f"{ENCODED}.mov", f"{COPIED}.mp4"]
    assert all(ln.endswith("again") and "pass --overwrite" in ln for ln in error_lines(res))
    # --overwrite imports them again, whole; then the same import is done
    r = import_videos(src, METHOD, out, overwrite=True)
    assert len(r.imported) == 2 and all(validate_artifact(a.folder) == [] for a in r.imported)
    assert set(import_videos(src, METHOD, out).done.values()) == {COPIED, ENCODED}


def test_a_replaced_or_missing_video_is_not_done_either(src, tmp_path):
    out = tmp_path / "out"
    import_videos(src, METHOD, out)
    encode_video(out / METHOD / COPIED / "video.mp4", make_frames(6, 16, 16, seed=9), fps=15)  # whole, other frames
    (out / METHOD / ENCODED / "video.mp4").unlink()
    r = import_videos(src, METHOD, out)
    assert not r.done and "is not the video the import wrote there" in r.failed[f"{COPIED}.mp4"]
    assert r.failed[f"{ENCODED}.mov"] == (f"{out / METHOD / ENCODED / 'video.mp4'} is missing (its manifest is "
                                          f"there); pass --overwrite to import {ENCODED}.mov again")


def test_an_older_manifest_without_the_digest_still_counts_as_done(src, tmp_path):
    out = tmp_path / "out"
    import_videos(src, METHOD, out)
    for slug in (COPIED, ENCODED):  # as an earlier version wrote them
        path = out / METHOD / slug / "manifest.json"
        manifest = json.loads(path.read_text())
        del manifest["video_sha256"]
        path.write_text(json.dumps(manifest, indent=2) + "\n")
        assert validate_artifact(path.parent) == []
    assert set(import_videos(src, METHOD, out).done.values()) == {COPIED, ENCODED}
    # a copied video is the source file's bytes, whose SHA-256 the older manifest has: a truncated one is caught
    _truncate(out / METHOD / COPIED / "video.mp4")
    r = import_videos(src, METHOD, out)
    assert "is not the video the import wrote there" in r.failed[f"{COPIED}.mp4"]
    assert r.done == {f"{ENCODED}.mov": ENCODED}


def test_a_malformed_digest_is_a_manifest_problem(src, tmp_path):
    out = tmp_path / "out"
    import_videos(src, METHOD, out)
    path = out / METHOD / COPIED / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["video_sha256"] = "not a digest"
    path.write_text(json.dumps(manifest))
    assert any("'video_sha256' must be 64 lowercase hex digits" in p for p in validate_artifact(path.parent))


def _prompts(tmp_path):
    path = tmp_path / "two.txt"
    path.write_text("A goat drinking beer.\nA panda dancing.\n")
    return path

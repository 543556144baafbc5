"""The artifact contract: write / read / validate / find, atomic writes, one clear error per problem."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import numpy as np
import pytest
from eval_helpers import make_frames

from evaluation import artifacts as art_mod
from evaluation.artifacts import (REQUIRED_KEYS, ArtifactError, find_artifacts, read_artifact, scan_artifacts,
                                  validate_artifact, write_artifact)
from evaluation.video import decode_video, encode_video

SRC = {"kind": "import", "file": "x.mp4", "sha256": "0" * 64}


def _write(root, method="4dfy", prompt="A panda dancing.", n=4, **kw):
    kw.setdefault("source", SRC)
    kw.setdefault("trajectory", "orbit")
    kw.setdefault("fps", 15)
    return write_artifact(root, method, prompt, make_frames(n, 16, 24), **kw)


def test_write_read_validate_round_trip(tmp_path):
    times = np.linspace(0, 1, 4)
    cams = np.tile(np.eye(4), (4, 1, 1))
    cams[:, 0, 3] = np.arange(4)
    depth = make_frames(4, 16, 24, seed=7)
    a = _write(tmp_path, times=times, cameras=cams, depth_frames=depth)
    assert a.folder == tmp_path / "4dfy" / "a_panda_dancing"
    assert sorted(p.name for p in a.folder.iterdir()) == ["depth.mp4", "manifest.json", "video.mp4"]
    m = json.loads((a.folder / "manifest.json").read_text())
    assert set(REQUIRED_KEYS) <= set(m)
    assert (m["method"], m["prompt"], m["slug"], m["n_frames"], m["height"], m["width"], m["fps"]) == \
        ("4dfy", "A panda dancing.", "a_panda_dancing", 4, 16, 24, 15.0)
    assert m["times"] == pytest.approx(times.tolist()) and np.allclose(m["cameras"], cams)
    assert m["depth"] == "depth.mp4" and "torch" in m["versions"]
    assert read_artifact(a.folder).manifest == m
    assert validate_artifact(a.folder) == []
    assert decode_video(a.depth_path).shape == (4, 16, 24, 3)


def test_unicode_and_quotes_survive(tmp_path):
    prompt = 'A "quoted" panda — dancing, naïvely.'
    a = _write(tmp_path, prompt=prompt)
    assert a.slug == "a_quoted_panda_dancing_naively"  # the accent folded, not a gap
    assert read_artifact(a.folder).prompt == prompt


def test_a_crash_while_writing_leaves_nothing(tmp_path, monkeypatch):
    def broken_encode(path, frames, fps=15.0, cfg=None):
        path.write_bytes(b"half a video")
        raise RuntimeError("disk full")

    monkeypatch.setattr(art_mod, "encode_video", broken_encode)
    with pytest.raises(RuntimeError, match="disk full"):
        _write(tmp_path)
    assert list((tmp_path / "4dfy").iterdir()) == []  # no target, no hidden temporary


def test_existing_folder_needs_overwrite(tmp_path):
    _write(tmp_path, n=4)
    with pytest.raises(ArtifactError, match="already exists \\(pass --overwrite"):
        _write(tmp_path, n=6)
    a = _write(tmp_path, n=6, overwrite=True)
    assert a.n_frames == 6 and validate_artifact(a.folder) == []
    assert [p.name for p in (tmp_path / "4dfy").iterdir()] == ["a_panda_dancing"]


def test_copying_a_file_keeps_its_bytes(tmp_path):
    src = tmp_path / "orig.mp4"
    encode_video(src, make_frames(5, 16, 16))
    a = write_artifact(tmp_path / "out", "mav3d", "A cat singing.", video_file=src, source=SRC, trajectory="unknown",
                       fps=15)
    assert a.n_frames == 5 and (a.height, a.width) == (16, 16)
    assert hashlib.sha256(a.video_path.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()


@pytest.mark.parametrize("edit,expected", [
    (lambda m: m.update(n_frames=5), "has 4 frames, the manifest says 5"),
    (lambda m: m.update(width=32), "is 24x16 px, the manifest says 32x16"),  # width x height
    (lambda m: m.update(times=[0.0, 1.0]), "'times' has 2 entries for 4 frames"),
    (lambda m: m.update(slug="other"), "is not the prompt's slug"),
    (lambda m: m.pop("source"), "lacks 'source'"),
    (lambda m: m.update(source={"kind": "render", "run": "r"}), "needs 'run' and 'config_hash'"),
    (lambda m: m.update(cameras=[[1, 2]]), "4x4"),
])
def test_validate_reports_manifest_problems(tmp_path, edit, expected):
    a = _write(tmp_path)
    m = json.loads((a.folder / "manifest.json").read_text())
    edit(m)
    (a.folder / "manifest.json").write_text(json.dumps(m))
    problems = validate_artifact(a.folder)
    assert any(expected in p for p in problems), problems


def test_validate_reports_video_problems(tmp_path):
    a = _write(tmp_path)
    data = a.video_path.read_bytes()
    a.video_path.write_bytes(data[: len(data) // 2])
    assert any("video.mp4" in p for p in validate_artifact(a.folder))
    a.video_path.unlink()
    assert validate_artifact(a.folder) == ["video.mp4 is missing"]
    renamed = a.folder.with_name("elsewhere")
    a.folder.rename(renamed)
    assert any("differs from the slug" in p for p in validate_artifact(renamed))
    assert "no manifest.json" in validate_artifact(tmp_path)[0]


def test_find_artifacts_over_roots(tmp_path):
    a = _write(tmp_path / "r1", method="4dfy")
    b = _write(tmp_path / "r2", method="mav3d")
    (tmp_path / "r1" / "4dfy" / ".a_cat.tmp-x").mkdir()
    (tmp_path / "r1" / "4dfy" / ".a_cat.tmp-x" / "manifest.json").write_text("{half")  # a crashed write
    found = find_artifacts([tmp_path / "r1", tmp_path / "r2"])
    assert list(found) == [("4dfy", "a_panda_dancing"), ("mav3d", "a_panda_dancing")]
    assert found[("mav3d", "a_panda_dancing")].folder == b.folder
    assert list(find_artifacts([a.folder])) == [("4dfy", "a_panda_dancing")]  # a root may be one artifact
    _write(tmp_path / "r3", method="4dfy")
    with pytest.raises(ArtifactError, match="two artifacts for method '4dfy'"):
        find_artifacts([tmp_path / "r1", tmp_path / "r3"])
    (b.folder / "manifest.json").write_text("[]")
    with pytest.raises(ArtifactError, match="JSON object"):
        find_artifacts([tmp_path / "r2"])


@pytest.mark.parametrize("method", ["", "a/b", ".hidden"])
def test_bad_method_names_are_refused(tmp_path, method):
    with pytest.raises(ArtifactError, match="folder name"):
        _write(tmp_path, method=method)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_folder_mode_follows_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        a = _write(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(a.folder.stat().st_mode) == 0o777 & ~umask  # not mkdtemp's 0700
    assert stat.S_IMODE(a.video_path.stat().st_mode) == 0o666 & ~umask


def test_scan_reports_every_artifact_like_folder(tmp_path):
    good = _write(tmp_path / "r", method="4dfy")
    loose = tmp_path / "r" / "mav3d" / "a_cat_singing"
    loose.mkdir(parents=True)
    encode_video(loose / "video.mp4", make_frames(2, 16, 16))  # a video without a manifest
    torn = _write(tmp_path / "r", method="wo_3d")
    (torn.folder / "manifest.json").write_text("{half")
    (tmp_path / "r" / "4dfy" / ".a_cat.tmp-x").mkdir()
    (tmp_path / "r" / "4dfy" / ".a_cat.tmp-x" / "video.mp4").write_bytes(b"")  # hidden temporary: skipped
    twin = _write(tmp_path / "r2", method="4dfy")
    found, broken = scan_artifacts([tmp_path / "r", tmp_path / "r"])  # overlapping roots: each folder once
    assert list(found) == [("4dfy", "a_panda_dancing")] and found[("4dfy", "a_panda_dancing")].folder == good.folder
    assert sorted(broken) == [loose, torn.folder]
    assert broken[loose].startswith("video.mp4 without manifest.json")
    assert broken[torn.folder].startswith("manifest.json: not valid JSON")
    # two folders for one (method, prompt): both named, each pointing at the other; neither is found
    found, broken = scan_artifacts([tmp_path / "r", tmp_path / "r2"])
    assert ("4dfy", "a_panda_dancing") not in found and {good.folder, twin.folder} <= set(broken)
    assert broken[twin.folder] == f"method '4dfy' and prompt 'a_panda_dancing' are also the artifact in {good.folder}"
    assert broken[good.folder].endswith(f"also the artifact in {twin.folder}")
    with pytest.raises(ArtifactError, match="no such folder"):
        scan_artifacts([tmp_path / "nope"])
    # find_artifacts keeps its contract: folders without a manifest are not its business
    found = find_artifacts([tmp_path / "r" / "4dfy", tmp_path / "r" / "mav3d"])
    assert list(found) == [("4dfy", "a_panda_dancing")]


def test_folder_reason_drops_the_folder_a_message_starts_with(tmp_path):
    folder = tmp_path / "4dfy" / "a_cat"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("[1]")
    with pytest.raises(ValueError) as err:
        art_mod.read_json_object(folder / "manifest.json", ValueError)
    assert art_mod.folder_reason(err.value, folder) == "manifest.json: expected a JSON object"
    with pytest.raises(ArtifactError) as err:
        read_artifact(tmp_path)
    assert art_mod.folder_reason(err.value, tmp_path) == "no manifest.json (not an artifact folder)"
    # a message about another path is kept whole
    other = ArtifactError(f"{tmp_path}-old/manifest.json: expected a JSON object")
    assert art_mod.folder_reason(other, tmp_path) == str(other)


def test_linked_method_folders_are_found_and_a_link_loop_ends(tmp_path):
    """A method's artifacts linked in from elsewhere count (rglob skipped them, so clipscore silently dropped the
    method while the survey, which follows links, showed it); a link back up the tree is walked once."""
    elsewhere = _write(tmp_path / "elsewhere", method="mav3d")
    root = tmp_path / "eval"
    _write(root, method="4dfy")
    (root / "mav3d").symlink_to(elsewhere.folder.parent, target_is_directory=True)
    (root / "4dfy" / "loop").symlink_to(root, target_is_directory=True)
    found, broken = scan_artifacts([root])
    assert sorted(found) == [("4dfy", "a_panda_dancing"), ("mav3d", "a_panda_dancing")] and not broken
    assert sorted(find_artifacts([root])) == sorted(found)

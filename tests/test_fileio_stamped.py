"""method.fileio.stamped_build: the stamped, atomic cache folder of the tiny priors and the tiny CLIP, with the stamp
file's name given by its user; a fresh build is hashed once (it used to be hashed again after its move into place)."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter
from pathlib import Path

import pytest

from method import fileio

STAMP = "demo-stamp.json"
FILES = {"weights.bin": bytes(range(256)) * 40, "sub/config.json": b'{"width": 32}\n'}


def _write(folder) -> None:
    for rel, data in FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)


def _refuse(folder) -> None:
    raise AssertionError("rebuilt, though the folder is intact")


@pytest.fixture()
def hashed(monkeypatch):
    """Counter of the files hashed through hashlib.file_digest (by name), and the memo of verified folders emptied,
    as in a new process."""
    seen, real = Counter(), hashlib.file_digest

    def counting(f, *args, **kwargs):
        seen[Path(f.name).name] += 1
        return real(f, *args, **kwargs)

    monkeypatch.setattr(hashlib, "file_digest", counting)
    monkeypatch.setattr(fileio, "_VERIFIED", {})
    return seen


def test_a_fresh_build_hashes_each_file_once_and_its_stamp_is_right(tmp_path, hashed):
    root = tmp_path / "cache" / "seed0"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing was there: no warning
        assert fileio.stamped_build(root, {"recipe": 1, "seed": 0}, _write, "the demo cache", STAMP) == root
    assert hashed == {"weights.bin": 1, "config.json": 1}  # was 2 each: hashed again after the move
    stamp = json.loads((root / STAMP).read_text())
    assert stamp == {"recipe": 1, "seed": 0,
                     "files": {rel: [len(data), hashlib.sha256(data).hexdigest()] for rel, data in FILES.items()}}
    assert sorted(p.name for p in root.parent.iterdir()) == ["seed0"]  # no temporary left beside it
    # this process reuses it reading no file; a new one (empty memo) hashes each file once to check it, then not again
    hashed.clear()
    fileio.stamped_build(root, {"recipe": 1, "seed": 0}, _refuse, "the demo cache", STAMP)
    assert hashed == {}
    fileio._VERIFIED.clear()
    for _ in range(2):
        fileio.stamped_build(root, {"recipe": 1, "seed": 0}, _refuse, "the demo cache", STAMP)
    assert hashed == {"weights.bin": 1, "config.json": 1}


def test_a_file_changed_after_a_fresh_build_is_still_caught(tmp_path, hashed):
    """The fresh build is remembered as verified by its files' sizes and mtimes: a later change is hashed."""
    root = tmp_path / "seed0"
    fileio.stamped_build(root, {"recipe": 1}, _write, "the demo cache", STAMP)
    data = (root / "weights.bin").read_bytes()
    (root / "weights.bin").write_bytes(data[:100] + bytes(8) + data[108:])  # same size, other bytes
    with pytest.warns(RuntimeWarning, match=f"the demo cache {root} is damaged \\(weights.bin differs from the file "
                                            "built\\); rebuilding it"):
        fileio.stamped_build(root, {"recipe": 1}, _write, "the demo cache", STAMP)
    assert (root / "weights.bin").read_bytes() == FILES["weights.bin"]


def test_the_stamp_goes_by_the_name_given_and_another_name_is_a_silent_rebuild(tmp_path, hashed):
    root = tmp_path / "seed0"
    fileio.stamped_build(root, {"recipe": 1}, _write, "the demo cache", "old-name.json")
    assert sorted(p.name for p in root.iterdir()) == ["old-name.json", "sub", "weights.bin"]
    # an earlier version's stamp name: no build of this stamp, so rebuilt, without a warning (nothing is damaged)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fileio.stamped_build(root, {"recipe": 1}, _write, "the demo cache", STAMP)
    assert sorted(p.name for p in root.iterdir()) == [STAMP, "sub", "weights.bin"]
    assert set(json.loads((root / STAMP).read_text())["files"]) == set(FILES)
    fileio.stamped_build(root, {"recipe": 1}, _refuse, "the demo cache", STAMP)


def test_a_build_that_fails_leaves_no_folder_and_keeps_the_old_one(tmp_path):
    root = tmp_path / "seed0"
    fileio.stamped_build(root, {"recipe": 1}, _write, "the demo cache", STAMP)

    def broken(folder):
        (folder / "half.bin").write_bytes(b"x")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        fileio.stamped_build(root, {"recipe": 2}, broken, "the demo cache", STAMP)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed0"]  # its temporary is gone
    assert json.loads((root / STAMP).read_text())["recipe"] == 1

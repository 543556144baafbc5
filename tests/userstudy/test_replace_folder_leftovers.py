"""What `replace_folder` does with the hidden folders a run killed outright (`kill -9`) left beside its output
folder: the kill states are made by hand with the real naming function (`_temp_sibling`), as the killed run
would have left them."""

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from userstudy.outputs import (REPORT, OutputError, _temp_sibling, files_section, replace_folder,
                               temp_sibling_pattern)


def _builder(text: str):
    """A build writing what an analysis writes in miniature: one table and the report listing it."""
    def build(folder: Path) -> list[str]:
        (folder / "table.md").write_text(text)
        names = ["table.md", REPORT]
        (folder / REPORT).write_text("\n".join(["# report", "", *files_section(names)]) + "\n")
        return names
    return build


def _failing(folder: Path) -> list[str]:
    (folder / "table.md").write_text("half")
    raise RuntimeError("the build failed")


def _killed_between_renames(out: Path, text: str) -> Path:
    """The state a run killed between `out -> .old` and `.tmp -> out` leaves: the earlier outputs in the `.old`,
    `out` missing, the built `.tmp` beside it."""
    replace_folder(out, _builder(text))
    old = _temp_sibling(out, "old")
    out.rename(old)
    tmp = _temp_sibling(out, "tmp")
    tmp.mkdir()
    _builder("the killed run's new outputs")(tmp)
    return old


def _hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_a_later_run_removes_the_leftovers_of_its_folder_and_only_those(tmp_path):
    out = tmp_path / "tables"
    _killed_between_renames(out, "earlier")
    stale_tmp = _temp_sibling(out, "tmp")  # an earlier kill during a build: no lock held by anyone
    stale_tmp.mkdir()
    (stale_tmp / "table.md").write_text("half")
    # what belongs to other folders or other writers, all named like temporaries: never touched
    others = [_temp_sibling(tmp_path / "tables2", "old"), _temp_sibling(tmp_path / "tables2", "tmp"),
              _temp_sibling(tmp_path / f"tables.{secrets.token_hex(4)}", "old"),  # of a folder named tables.<hex>
              tmp_path / f".tables.{secrets.token_hex(6)}.tmp",  # method/fileio.py's 12 hex
              tmp_path / f".tables.tmp-{secrets.token_hex(6)}",  # evaluation/artifacts.py
              tmp_path / f".tables.old-{secrets.token_hex(4)}"]
    for other in others:
        other.mkdir()
        (other / "keep.txt").write_text("not yours")
    assert not any(temp_sibling_pattern(out, k).fullmatch(o.name) for o in others for k in ("old", "tmp"))

    names = replace_folder(out, _builder("new"))
    assert names == ["table.md", REPORT] and (out / "table.md").read_text() == "new"
    assert _hidden(tmp_path) == sorted(o.name for o in others)
    assert all((o / "keep.txt").read_text() == "not yours" for o in others)


def test_a_failing_build_after_a_kill_between_the_renames_keeps_the_earlier_outputs(tmp_path):
    out = tmp_path / "tables"
    _killed_between_renames(out, "earlier")
    assert not out.exists()
    with pytest.raises(RuntimeError, match="the build failed"):
        replace_folder(out, _failing)
    assert (out / "table.md").read_text() == "earlier"  # back where they were before the killed run
    assert not any(temp_sibling_pattern(out, "old").fullmatch(n) for n in _hidden(tmp_path))
    # and a later successful run replaces them as it replaces any earlier outputs, leaving nothing hidden
    replace_folder(out, _builder("new"))
    assert (out / "table.md").read_text() == "new" and _hidden(tmp_path) == []


def test_of_several_leftover_olds_the_newest_comes_back(tmp_path):
    """Two kills between the renames (the second after a run that put `out` back, as the old code did without
    removing the first `.old`): the later outputs are those of the newer `.old`."""
    out = tmp_path / "tables"
    olds = []
    for text in ("first", "second"):
        old = _temp_sibling(out, "old")
        old.mkdir()
        _builder(text)(old)
        olds.append(old)
    hour_ago = time.time() - 3600
    os.utime(olds[0], (hour_ago, hour_ago))
    with pytest.raises(RuntimeError):
        replace_folder(out, _failing)
    assert (out / "table.md").read_text() == "second" and _hidden(tmp_path) == [olds[0].name]
    replace_folder(out, _builder("new"))
    assert (out / "table.md").read_text() == "new" and _hidden(tmp_path) == []


def _hold_lock(folder: Path) -> subprocess.Popen:
    """Another live process holding the lock a running `replace_folder` holds on its `.tmp`."""
    code = ("import fcntl, os, sys\n"
            f"fd = os.open({str(folder)!r}, os.O_RDONLY)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_the_tmp_of_a_live_run_is_never_removed(tmp_path):
    out = tmp_path / "tables"
    replace_folder(out, _builder("earlier"))
    live = _temp_sibling(out, "tmp")
    live.mkdir()
    (live / "table.md").write_text("being written")
    proc = _hold_lock(live)
    try:
        replace_folder(out, _builder("new"))
        assert (live / "table.md").read_text() == "being written"
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    replace_folder(out, _builder("newer"))  # its process ended: now a leftover
    assert _hidden(tmp_path) == []


def test_a_run_finishing_while_another_builds_leaves_that_build_alone(tmp_path):
    """Two `replace_folder` on one folder at once (nested here: the second ends during the first's build): the
    first's `.tmp` is held by its lock, so the second's cleanup keeps it and the first then completes."""
    out = tmp_path / "tables"
    replace_folder(out, _builder("earlier"))

    def build_while_another_finishes(folder: Path) -> list[str]:
        (folder / "table.md").write_text("first")
        replace_folder(out, _builder("second"))
        assert folder.is_dir() and (folder / "table.md").read_text() == "first"
        return _builder("first")(folder)

    replace_folder(out, build_while_another_finishes)
    assert (out / "table.md").read_text() == "first" and _hidden(tmp_path) == []


def test_a_folder_in_the_way_still_fails_before_anything_is_restored_or_removed(tmp_path):
    out = tmp_path / "tables"
    out.write_text("a file")
    stray = _temp_sibling(out, "old")
    stray.mkdir()
    with pytest.raises(OutputError, match="is a file"):
        replace_folder(out, _builder("new"))
    assert stray.is_dir() and out.read_text() == "a file"

"""method.fileio: the atomic writer under checkpoints, run manifests, CLIP outputs and sweep summaries."""

from __future__ import annotations

import os
import stat

import pytest

from method import fileio


def _hidden(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        fileio.write_text_atomic(tmp_path / "sub" / "a.json", "{}\n")
        fileio.write_atomic(tmp_path / "b.csv", lambda f: f.write(b"x\n"))
    finally:
        os.umask(old)
    for path in (tmp_path / "sub" / "a.json", tmp_path / "b.csv"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_contents_are_synced_and_replace_the_old_file(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    path = tmp_path / "out" / "café.txt"
    fileio.write_text_atomic(path, "first ✓\n")
    fileio.write_text_atomic(path, "second\n")
    assert path.read_bytes() == b"second\n" and len(synced) == 2
    assert _hidden(path.parent) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "summary.csv"
    path.write_text("old\n")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        fileio.write_atomic(path, fail)
    assert path.read_text() == "old\n" and _hidden(tmp_path) == []


def test_a_taken_temporary_name_is_not_reused(tmp_path, monkeypatch):
    names = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(fileio.secrets, "token_hex", lambda n: next(names))
    (tmp_path / ".x.txt.aaaa.tmp").write_text("another writer's")
    fileio.write_text_atomic(tmp_path / "x.txt", "mine")
    assert (tmp_path / "x.txt").read_text() == "mine"
    assert (tmp_path / ".x.txt.aaaa.tmp").read_text() == "another writer's"


def test_a_ctrl_c_inside_torch_save_is_the_interrupt_not_a_write_error(tmp_path):
    """torch.save turns a KeyboardInterrupt raised in its file's write into `RuntimeError: unexpected pos`; a
    checkpoint write stopped by Ctrl-C (or SIGTERM's subclass) must stop the command as an interrupt, keeping the
    earlier file and leaving no temporary."""
    import torch

    class Terminated(KeyboardInterrupt):
        pass

    class Interrupting:
        def __init__(self, f):
            self.f, self.calls = f, 0

        def write(self, b):
            self.calls += 1
            if self.calls == 3:
                raise Terminated()
            return self.f.write(b)

        def flush(self):
            self.f.flush()

    path = tmp_path / "last.pt"
    path.write_bytes(b"earlier")
    with pytest.raises(Terminated):
        fileio.write_atomic(path, lambda f: torch.save({"x": torch.zeros(10_000)}, Interrupting(f)))
    assert path.read_bytes() == b"earlier" and [p.name for p in tmp_path.iterdir()] == ["last.pt"]

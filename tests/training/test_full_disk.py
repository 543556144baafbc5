"""A full disk while writing a checkpoint (or any atomic file) is an OSError with errno ENOSPC naming the file
written, not torch.save's `[enforce fail at inline_container.cc] unexpected pos` nor the hidden temporary; the
file it replaces is left as it was."""

import errno
import os
import subprocess
from collections import namedtuple

import pytest
import torch

from method import fileio
from method.training import checkpoint as ckpt


def _hidden(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs: room for a log and a small file, not for a checkpoint of a few hundred KiB."""
    folder = tmp_path / "tmpfs"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the monkeypatched tests below cover the same error chain)")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip() or res.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_checkpoint_on_a_full_disk_is_enospc_naming_it(full_disk):
    path = full_disk / "ckpt" / "last.pt"
    ckpt.save_atomic({"step": 1}, path)  # fits
    with pytest.raises(OSError) as info:
        ckpt.save_atomic({"step": 2, "w": torch.zeros(100_000)}, path)  # 400 KB
    err = info.value
    assert (err.errno, err.strerror, err.filename) == (errno.ENOSPC, "No space left on device", str(path))
    assert "inline_container" not in str(err)
    assert isinstance(err.__cause__, RuntimeError)  # torch's own error stays behind it (--verbose shows it)
    assert torch.load(path, weights_only=False) == {"step": 1} and _hidden(path.parent) == []  # the old checkpoint, no temporary


def test_generate_on_a_full_disk_says_so_in_one_line(full_disk):
    from typer.testing import CliRunner

    from pipelines.cli import app

    run = full_disk / "run"
    res = CliRunner().invoke(app, ["generate", "--prompt", "a_panda_dancing", "--profile", "tiny", "--max-steps", "1",
                                   "--out", str(run), "--no-progress", "--quiet"])
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.startswith("error")]
    assert lines == [f"error: cannot use {run / 'ckpt' / 'stage1.pt'}: No space left on device"], res.output
    assert "Traceback" not in res.output and "enforce fail" not in res.output
    assert _hidden(run / "ckpt") == []


def _torch_on_a_full_disk(obj, f):
    """What torch.save raises when a write fails with ENOSPC (seen on a full tmpfs with torch 2.x): the zip writer's
    RuntimeError, raised while the OSError is handled, so the OSError is only its __context__."""
    f.write(b"PK\x03\x04" + bytes(100))
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 9984 vs 9878")  # noqa: B904


def test_torch_s_chained_error_is_enospc(tmp_path, monkeypatch):
    path = tmp_path / "ckpt" / "stage1.pt"
    ckpt.save_atomic({"step": 1}, path)
    monkeypatch.setattr(torch, "save", _torch_on_a_full_disk)
    with pytest.raises(OSError) as info:
        ckpt.save_atomic({"step": 2}, path)
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(path))
    assert str(info.value) == f"[Errno 28] No space left on device: '{path}'"
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"step": 1} and _hidden(path.parent) == []


def test_a_writer_error_with_no_oserror_is_enospc_only_on_a_full_disk(tmp_path, monkeypatch):
    path = tmp_path / "out.pt"
    seen = []
    Usage = namedtuple("Usage", "total used free")

    def usage(folder, free):
        seen.append((folder, _hidden(tmp_path)))  # asked while the temporary still takes its space
        return Usage(10**9, 10**9 - free, free)

    def fail(f):
        f.write(b"half")
        raise RuntimeError("unexpected pos 704 vs 598")

    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda folder: usage(folder, 0))
    with pytest.raises(OSError) as info:
        fileio.write_atomic(path, fail)
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(path))
    assert seen[0][0] == tmp_path and len(seen[0][1]) == 1 and _hidden(tmp_path) == []
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda folder: usage(folder, 10**8))
    with pytest.raises(RuntimeError, match="unexpected pos"):  # space left: not the disk, the error as it is
        fileio.write_atomic(path, fail)

    def interrupted(f):
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda folder: usage(folder, 0))
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C is never a write error
        fileio.write_atomic(path, interrupted)
    assert not path.exists() and _hidden(tmp_path) == []


def test_write_errors_name_the_file_not_its_temporary(tmp_path, monkeypatch):
    path = tmp_path / "votes.csv"
    path.write_text("old\n")

    def refused(tmp):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp))

    with pytest.raises(PermissionError) as info:  # the same type: callers catching PermissionError still do
        fileio.fill_atomic(path, refused)
    assert info.value.filename == str(path) and info.value.strerror == "Permission denied"

    def full(f):
        f.write(b"x")
        raise OSError(errno.ENOSPC, "No space left on device")  # a plain write names no file

    with pytest.raises(OSError) as info:
        fileio.write_atomic(path, full)
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(path))

    source = tmp_path / "missing.mp4"
    with pytest.raises(FileNotFoundError) as info:  # an error about another file keeps its name
        fileio.copy_atomic(source, path)
    assert info.value.filename == str(source)
    with pytest.raises(FileNotFoundError) as info:
        fileio.fill_atomic(path, lambda tmp: source.read_bytes())
    assert info.value.filename == str(source)
    assert path.read_text() == "old\n" and _hidden(tmp_path) == []

    real_open = os.open

    def no_inode(name, flags, mode=0o777):
        if str(name).endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device", name)
        return real_open(name, flags, mode)

    monkeypatch.setattr(fileio.os, "open", no_inode)
    with pytest.raises(OSError) as info:  # the temporary cannot even be made
        fileio.write_text_atomic(path, "new\n")
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(path))
    monkeypatch.undo()
    assert path.read_text() == "old\n" and _hidden(tmp_path) == []

"""`survey build --out` where the bundle cannot be made is refused before any work, naming --out: the build writes
into a hidden temporary folder beside it first, whose name the error used to give instead (`--out /sys/kernel/x`)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def _build(out, artifacts):
    return runner.invoke(app, ["survey", "build", "--artifacts", str(artifacts), "--out", str(out)])


def _error(res) -> str:
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "afile").write_text("x")
    line = _error(_build(tmp_path / "afile" / "bundle", tmp_path))
    out, afile = tmp_path / "afile" / "bundle", tmp_path / "afile"
    assert line == f"error: --out {out} cannot be made: {afile} is a file, not a folder"


def test_a_folder_that_cannot_take_files_is_named(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    real_open = os.open

    def guarded_open(path, flags, *args, **kwargs):  # a read-only mount, as the kernel shows it
        if flags & os.O_CREAT and Path(os.fsdecode(path)).parent.resolve() == ro.resolve():
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    line = _error(_build(ro / "bundle", tmp_path))
    assert line.startswith(f"error: --out {ro / 'bundle'} cannot be made: {ro} is not writable"), line
    assert ".tmp" not in line and list(ro.iterdir()) == []

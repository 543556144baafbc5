"""`userstudy.outputs.atomic_write` / `write_text` go through `method.fileio` (fsynced temporary, one rename):
the file appears whole, a failure leaves the old file and no temporary behind, and an OSError is an OutputError."""

import os

import pytest

from userstudy.outputs import OutputError, atomic_write, write_text


@pytest.fixture()
def fsyncs(monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    return calls


def test_atomic_write_puts_what_fill_wrote_in_place_fsynced(tmp_path, fsyncs):
    out = tmp_path / "sub" / "votes.csv"
    assert atomic_write(out, lambda tmp: tmp.write_text("a,b\n1,2\n")) == out
    assert out.read_text() == "a,b\n1,2\n" and fsyncs
    assert write_text(out, "ü\n") == out and out.read_bytes() == "ü\n".encode() and len(fsyncs) == 2
    assert sorted(p.name for p in out.parent.iterdir()) == ["votes.csv"]  # no scratch or temporary left


def test_a_failing_fill_leaves_the_old_file_and_nothing_else(tmp_path):
    out = tmp_path / "votes.csv"
    out.write_text("old\n")

    def half(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_write(out, half)
    assert out.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["votes.csv"]

    def refused(tmp):
        tmp.write_text("half")
        raise PermissionError(13, "Permission denied")

    with pytest.raises(OutputError, match=f"^cannot write {out}: Permission denied; choose another output path"):
        atomic_write(out, refused)
    assert out.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["votes.csv"]


def test_a_folder_in_the_way_is_an_output_error(tmp_path):
    (tmp_path / "votes.csv").mkdir()
    with pytest.raises(OutputError, match="is a folder; give a file path"):
        write_text(tmp_path / "votes.csv", "x")

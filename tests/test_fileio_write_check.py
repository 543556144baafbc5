"""An existing output folder that cannot be written is found before the work, not when the outputs are written
after it (minutes of CLIP scoring, a bootstrap): `folder_blocker` used to ask `os.access` only of a folder it would
have to make in, and root passes `os.access` anyway. A read-only mount (or `chattr +i`) is simulated here the way
the kernel shows it to a program: creating a file in that folder fails with EROFS."""

from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path

import pytest
from typer.testing import CliRunner

from method import fileio
from method.fileio import folder_blocker
from pipelines.cli import app

runner = CliRunner()


@pytest.fixture
def read_only(monkeypatch):
    """`read_only(folder)`: creating a file directly in `folder` fails as on a read-only mount."""
    folders: set[Path] = set()
    real_open = os.open

    def guarded_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and Path(os.fsdecode(path)).parent.resolve() in folders:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)

    def add(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        folders.add(folder.resolve())
        return folder
    return add


def test_an_existing_folder_is_checked_by_a_real_write(tmp_path, read_only):
    ok = tmp_path / "ok"
    ok.mkdir()
    assert folder_blocker(ok) is None and list(ok.iterdir()) == []  # the probe leaves nothing behind
    ro = read_only(tmp_path / "ro")
    assert os.access(ro, os.W_OK)  # what the old check asked: yes
    assert folder_blocker(ro) == (ro, "not writable")
    assert folder_blocker(ro / "new" / "deeper") == (ro, "not writable")  # made in it: the same answer
    with pytest.raises(OSError):  # the simulation is what the outputs would meet
        fileio.write_text_atomic(ro / "x.txt", "x")


def _as_nobody(fn, *args, reach: Path):
    """`fn(*args)` in a forked child that dropped root for uid/gid 65534 (nobody): the permission bits then bind,
    as for a researcher's own account. The function is already imported: the child needs no file of root's, only
    the folder `reach`. Skips where the drop is not allowed (no CAP_SETUID) or nobody cannot reach `reach` (a
    private TMPDIR); the child's own error is raised here."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            except OSError as err:
                answer = ("skip", f"cannot drop root for nobody here ({err.strerror})")
            else:
                answer = (("ok", fn(*args)) if os.access(reach, os.X_OK)
                          else ("skip", f"nobody cannot reach {reach} (a private TMPDIR?)"))
        except BaseException as err:  # noqa: BLE001 - carried to the parent, which raises it
            answer = ("error", f"{type(err).__name__}: {err}")
        os.write(write, pickle.dumps(answer))
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 1 << 16):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    kind, value = pickle.loads(data)
    if kind == "skip":
        pytest.skip(value)
    assert kind == "ok", f"the child run as nobody failed: {value}"
    return value


def test_a_folder_without_write_permission_is_not_writable(read_only_folder):
    ro = read_only_folder
    # root writes into a 0o555 folder, so as root the check is made as nobody
    blocker = folder_blocker(ro) if os.geteuid() != 0 else _as_nobody(folder_blocker, ro, reach=ro)
    assert blocker == (ro, "not writable")
    assert list(ro.iterdir()) == []
    if os.geteuid() == 0:  # the same folder is writable to root, and the probe says so
        assert folder_blocker(ro) is None


def test_analyze_refuses_a_read_only_out_before_reading_the_votes(tmp_path, read_only, monkeypatch):
    import userstudy.votes

    def reached(*args, **kwargs):
        raise AssertionError("the votes were read before --out was checked")

    monkeypatch.setattr(userstudy.votes, "load_votes", reached)
    out = read_only(tmp_path / "res")
    votes = tmp_path / "votes.csv"
    votes.write_text("rater_id\n")
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--out", str(out), "--n-boot", "100"])
    assert res.exit_code == 2, res.output
    assert [line for line in res.stderr.splitlines() if line.strip()] == [
        f"error: cannot write {out}: {out} is not writable; choose another output path"]


def test_clipscore_refuses_a_read_only_out_before_scoring(tmp_path, read_only):
    out = read_only(tmp_path / "clip")
    arts = tmp_path / "artifacts"
    arts.mkdir()
    res = runner.invoke(app, ["clipscore", str(arts), "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    # (without the check, the error was that the artifacts folder is empty, or after the scoring a write error)
    assert len(lines) == 1 and lines[0].startswith("error: --out: "), lines
    assert f"cannot write into {out}: {out} is not writable" in lines[0], lines

"""Suite-wide settings: one torch thread per test process (the Makefile runs two xdist workers on 2 cores).

OpenMP threads that compete for busy cores wait on each other (one hash-grid step went from 0.2 s to
8-10 s on a loaded 2-core machine), so tests and the `fourdfy` subprocesses they start use one thread.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the CLI subprocesses the tests start

import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture()
def registry():
    """The method registry as it was: methods a test registers (variants, plug-ins) do not reach the next one."""
    from baselines import METHODS

    saved = dict(METHODS)
    yield METHODS
    METHODS.clear()
    METHODS.update(saved)


@pytest.fixture()
def earlier_methods_output(tmp_path):
    """What an earlier successful run of the `methods` stage left in tmp_path/methods, and its bytes: a failing run
    must keep it unchanged."""
    out = tmp_path / "methods"
    (out / "config").mkdir(parents=True)
    (out / "config" / "4dfy.json").write_text("{}\n")
    (out / "labels.json").write_text('{"4dfy": ""}\n')
    return out, {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.fixture()
def read_only_folder():
    """A real 0o555 folder `ro` in a fresh 0o755 temporary folder (its parent, writable to root alone) that an
    unprivileged user can reach: not under tmp_path, whose base pytest makes 0o700. Removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="fourdfy-ro-"))
    base.chmod(0o755)
    ro = base / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        yield ro
    finally:
        ro.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)

"""Resume under a real kill: `fourdfy generate` in a subprocess, SIGKILLed after a checkpoint appears,
then `--resume` ends with the same parameters as an uninterrupted run; a truncated checkpoint gives a
one-line error that names the file and says what to do, and loses nothing else in the run folder."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

SHORT = ["--profile", "tiny", "--prompt", "a panda dancing", "--device", "cpu", "--no-progress",
         "--set", "stages.stage1.steps=4", "--set", "stages.stage2.steps=4", "--set", "stages.stage3.steps=6",
         "--set", "checkpoint_every=2", "--set", "preview_every=0", "--set", "preview_frames=0"]
# one thread: identical floating-point reductions in every process, and no oversubscribed CPU
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CMD = [sys.executable, "-c", "from pipelines.cli import main; main()", "generate"]


def generate(out, *extra, timeout=900):
    return subprocess.run(CMD + SHORT + ["--out", str(out), *extra], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def field_of(path):
    return torch.load(path, map_location="cpu", weights_only=False)["field"]


def digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def kill_after(out, name, timeout=600.0):
    """Start a run, SIGKILL it as soon as ckpt/<name> exists; returns the process's exit status."""
    proc = subprocess.Popen(CMD + SHORT + ["--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=ENV)
    last = out / "ckpt" / name
    deadline = time.monotonic() + timeout
    try:
        while not last.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no checkpoint appeared (exit {proc.returncode}): {proc.stderr.read()[-2000:]}")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    full = root / "full"
    res = generate(full)
    assert res.returncode == 0, res.stderr[-3000:]
    killed = root / "killed"
    status = kill_after(killed, "last.pt")  # the first periodic checkpoint, in stage 1
    assert status == -signal.SIGKILL  # killed mid-run, not finished
    state = torch.load(killed / "ckpt" / "last.pt", map_location="cpu", weights_only=False)["state"]
    damaged = {"killed in stage 1": root / "damaged1", "killed after stage 1": root / "damaged2"}
    shutil.copytree(killed, damaged["killed in stage 1"])  # the killed run's folder, before it is resumed
    assert kill_after(damaged["killed after stage 1"], "stage1.pt") == -signal.SIGKILL
    return full, killed, damaged, state


def test_resume_after_sigkill_ends_with_the_uninterrupted_parameters(runs):
    full, killed, _, state = runs
    assert state["stage_index"] < 3 and not (killed / "manifest.json").exists()  # the kill really cut the run short
    res = generate(killed, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("stage1.pt", "stage2.pt", "stage3.pt"):
        a, b = field_of(full / "ckpt" / name), field_of(killed / "ckpt" / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)


@pytest.mark.parametrize("which", ["killed in stage 1", "killed after stage 1"])
def test_truncated_checkpoint_names_the_file_suggests_a_fix_and_loses_nothing(runs, which):
    folder = runs[2][which]
    last = folder / "ckpt" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])
    before = digest(folder)
    res = generate(folder, "--resume")
    assert res.returncode == 2, res.stdout[-2000:]
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    assert str(last) in lines[0]
    if which == "killed after stage 1":  # what to do: continue from the intact stage checkpoint
        assert f"--resume-from {folder / 'ckpt' / 'stage1.pt'}" in lines[0]
    else:  # no intact checkpoint to continue from
        assert "start the run again in a new --out" in lines[0]
    assert digest(folder) == before  # nothing written, deleted or changed

"""Helpers of the pipeline tests."""

from method.training.trainer import Trainer


def no_training(monkeypatch) -> None:
    """Make any training fail the test: the command under test must take a finished run as it is."""
    def refuse(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(Trainer, "run", refuse)


def stamp(folder, when: int) -> None:
    """Set every file of `folder` to the time `when` (seconds): a copy made long ago, or touched since."""
    import os
    from pathlib import Path

    for p in Path(folder).rglob("*"):
        if p.is_file():
            os.utime(p, ns=(when * 10**9, when * 10**9))


def stop_sweep_mid_training(runs, slug: str, sig: int):
    """Start a real local sweep of 4dfy on `slug` into `runs` (a subprocess of its own session), wait until its job
    has written a checkpoint, send the sweep `sig` and wait for it to end. Returns (the sweep's argv, returncode,
    stdout, stderr); a failed wait leaves no sweep, controller or job behind."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    run = runs / "tiny" / "4dfy" / slug
    args = [sys.executable, "-m", "pipelines.cli", "sweep", "--methods", "4dfy", "--prompts", slug, "--runs", str(runs),
            "--max-steps", "40", "--set", "heartbeat_s=0", "--set", "checkpoint_every=5"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        end = time.monotonic() + 300
        while not (run / "ckpt" / "last.pt").exists():  # training, with a checkpoint to resume from
            assert proc.poll() is None and time.monotonic() < end, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return args, proc.returncode, out, err


def fake_finished_run(out, manifest: dict) -> None:
    """A finished run as far as a sweep checks one, without training it: `manifest` as its manifest.json and a final
    checkpoint that reads (`ckpt.load` asks for a run's `state` and `field`; the generate stage reads last.pt)."""
    import json

    import torch

    (out / "ckpt").mkdir(parents=True, exist_ok=True)
    torch.save({"state": {}, "field": {}}, out / "ckpt" / "last.pt")
    (out / "manifest.json").write_text(json.dumps(manifest))


def params_file(tmp_path, methods, overrides, **sections):
    """A params.yaml of the tiny profile training `methods` on one prompt with these `overrides:` (and other
    top-level `sections`), as the methods stage reads it."""
    import yaml

    params = {"seed": 0, "profile": "tiny", "generate": {"methods": list(methods), "prompts": ["a_panda_dancing"]},
              "overrides": overrides, "videos": {"mav3d": {"folder": "data/videos/mav3d", "trajectory": "orbit"}},
              "study": {"design": "userstudy/designs/paper.yaml"}, **sections}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path

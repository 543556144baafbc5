"""method.backends.resolve_device: the one place a device name becomes a torch.device, with clear errors."""

from __future__ import annotations

import pytest
import torch

from method.backends import resolve_device


def test_auto_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_cuda_names_are_checked_against_what_is_visible(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA device is available"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="only 2 CUDA device"):
        resolve_device("cuda:2")


def test_cpu_and_unknown_names():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_generate_refuses_a_missing_device_before_making_the_run_folder(tmp_path, monkeypatch):
    from pipelines.generate import build_config, generate

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = build_config("tiny", "4dfy", device="cuda")
    with pytest.raises(ValueError, match="no CUDA device"):
        generate(cfg, "a panda dancing", tmp_path / "run")
    assert not (tmp_path / "run").exists()

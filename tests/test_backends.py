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


def test_saved_for_backward_bytes_counts_what_the_graph_still_holds():
    """Hand counts on float32 vectors of 1000 (4000 B each): exp saves its result; sin and cos save their inputs;
    a multiply by a Parameter saves the Parameter too, which is resident anyway and not counted; a graph freed
    inside the call holds nothing; a checkpointed region keeps its input, not its inner activations."""
    import torch
    from torch.utils.checkpoint import checkpoint

    from method.backends import saved_for_backward_bytes

    x = torch.rand(1000, requires_grad=True)
    w = torch.nn.Parameter(torch.rand(1000))

    def with_freed_graph():
        tmp = (x * 2).sin()  # sin saves x * 2, freed with tmp
        del tmp
        return x.exp() * w  # exp's result (shared by the multiply) and w

    assert saved_for_backward_bytes(with_freed_graph)[1] == 4000
    assert saved_for_backward_bytes(lambda: x.exp() * w.t())[1] == 4000  # a view of a Parameter is one too
    chain = lambda a: (a * 3).exp().sin().cos()  # noqa: E731  exp's result (= sin's input) and cos's input
    out, plain = saved_for_backward_bytes(chain, x)
    assert plain == 8000 and torch.equal(out, chain(x))
    assert saved_for_backward_bytes(lambda: checkpoint(chain, x, use_reentrant=False))[1] == 4000  # x itself

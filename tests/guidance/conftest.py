"""Tiny random-weight priors, built once per test session (about a second on CPU)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """The tiny priors' tensors are too small for intra-op threads to pay off; one thread also keeps
    the run fast when other processes load the CPU. Restored after each test."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    from method.guidance.tiny import build_tiny_priors

    root = tmp_path_factory.mktemp("guidance") / "tiny-priors"
    build_tiny_priors(root, seed=0)
    return root


@pytest.fixture(scope="session")
def mvdream(tiny_root):
    from method.guidance import MVDreamGuidance
    from method.guidance.tiny import tiny_mvdream_config

    return MVDreamGuidance(tiny_mvdream_config(tiny_root))


@pytest.fixture(scope="session")
def zeroscope(tiny_root):
    from method.guidance import ZeroscopeGuidance
    from method.guidance.tiny import tiny_zeroscope_config

    return ZeroscopeGuidance(tiny_zeroscope_config(tiny_root))


@pytest.fixture()
def vsd(tiny_root):
    """A fresh VSD prior per test: its LoRA parameters are trained by some tests."""
    from method.guidance import VSDGuidance
    from method.guidance.tiny import tiny_vsd_config

    return VSDGuidance(tiny_vsd_config(tiny_root))


@pytest.fixture()
def make_rgb():
    """make_rgb(b, h, w, seed) -> a (b, h, w, 3) render in [0, 1] that requires grad."""

    def make(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.rand(b, h, w, 3, generator=g).requires_grad_(True)

    return make

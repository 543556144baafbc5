"""Tiny random-weight priors, built once per test session under a private $FOURDFY_CACHE (seconds on CPU)."""

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
def tiny_cache(tmp_path_factory):
    """A $FOURDFY_CACHE of this session with the tiny priors built in it (never the user's cache)."""
    from method.guidance.tiny import build_tiny_priors

    cache = tmp_path_factory.mktemp("fourdfy-cache")
    build_tiny_priors(cache / "tiny-priors", seed=0)
    return cache


@pytest.fixture(scope="session")
def tiny_root(tiny_cache):
    return tiny_cache / "tiny-priors"


@pytest.fixture(autouse=True)
def _tiny_cache_env(request, monkeypatch):
    """Every test resolves `fourdfy-tiny:` ids in the session's cache (restored after the test)."""
    if "tiny_cache" in request.fixturenames or "tiny_root" in request.fixturenames:
        monkeypatch.setenv("FOURDFY_CACHE", str(request.getfixturevalue("tiny_cache")))


def _build(tiny_cache, config):
    from method.guidance import build_prior

    with pytest.MonkeyPatch.context() as mp:  # session fixtures are made before the per-test env
        mp.setenv("FOURDFY_CACHE", str(tiny_cache))
        return build_prior(config, "cpu")


@pytest.fixture(scope="session")
def mvdream(tiny_cache):
    from method.guidance import tiny_mvdream_config

    return _build(tiny_cache, tiny_mvdream_config())


@pytest.fixture(scope="session")
def zeroscope(tiny_cache):
    from method.guidance import tiny_zeroscope_config

    return _build(tiny_cache, tiny_zeroscope_config())


@pytest.fixture()
def vsd(tiny_cache):
    """A fresh VSD prior per test: its LoRA parameters are trained by some tests."""
    from method.guidance import tiny_vsd_config

    return _build(tiny_cache, tiny_vsd_config())


@pytest.fixture()
def make_rgb():
    """make_rgb(b, h, w, seed) -> a (b, h, w, 3) render in [0, 1] that requires grad."""

    def make(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.rand(b, h, w, 3, generator=g).requires_grad_(True)

    return make

"""Fixtures of the evaluation tests: a fake trained run, a tiny CLIP model (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from eval_helpers import write_fake_run


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: intra-op threads do not pay off, and one thread keeps the run fast on a loaded CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def fake_run(tmp_path_factory) -> Path:
    return write_fake_run(tmp_path_factory.mktemp("runs") / "panda")


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A local open_clip folder with random tiny weights, in this session's own cache."""
    from evaluation.clip_models import tiny_clip_folder

    return tiny_clip_folder(tmp_path_factory.mktemp("fourdfy-cache") / "tiny_clip")

"""Suite-wide settings: one torch thread per xdist worker (the Makefile runs two workers on 2 cores)."""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

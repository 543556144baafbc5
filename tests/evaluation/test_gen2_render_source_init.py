"""A render of a run started with `--init-from` says so in its artifact's `source` (the start checkpoint's sha256 and
the stages taken from it, no path); a render of a run from scratch is as before, byte for byte."""

from __future__ import annotations

import json

import torch

from eval_helpers import copy_run

from evaluation.render import EvalRenderConfig, render_run
from evaluation.runs import render_source

TINY = EvalRenderConfig(n_frames=2, size=4, device="cpu", depth=False)
RECORD = {"sha256": "ab" * 32, "config_hash": "0123456789abcdef", "method": "4dfy", "stages_done": ["stage1"]}


def test_a_render_of_an_init_from_run_records_its_start(fake_run, tmp_path):
    torch.set_num_threads(1)
    run = copy_run(fake_run, tmp_path / "runs", init_from=RECORD,
                request={"set": {}, "max_steps": None, "init_from": RECORD})
    art = render_run(run, tmp_path / "art", TINY)
    assert art.source["init_from"] == {"sha256": "ab" * 32, "stages_done": ["stage1"]}
    saved = json.loads((art.folder / "manifest.json").read_text())
    assert saved["source"]["init_from"] == {"sha256": "ab" * 32, "stages_done": ["stage1"]}
    # a run that recorded its start only under `request` (where runs first recorded it) says the same
    manifest = json.loads((fake_run / "manifest.json").read_text())
    first = render_source(fake_run, {**manifest, "request": {"set": {}, "max_steps": None, "init_from": RECORD}})
    assert first["init_from"] == {"sha256": "ab" * 32, "stages_done": ["stage1"]}


def test_a_render_of_a_run_from_scratch_is_unchanged(fake_run, tmp_path):
    torch.set_num_threads(1)
    manifest = json.loads((fake_run / "manifest.json").read_text())
    assert render_source(fake_run, {**manifest, "init_from": None}) == render_source(fake_run, manifest)
    assert "init_from" not in render_source(fake_run, {**manifest, "init_from": None})
    old = render_run(copy_run(fake_run, tmp_path / "a"), tmp_path / "art-a", TINY)
    new = render_run(copy_run(fake_run, tmp_path / "b", init_from=None), tmp_path / "art-b", TINY)
    assert (old.folder / "manifest.json").read_bytes() == (new.folder / "manifest.json").read_bytes()

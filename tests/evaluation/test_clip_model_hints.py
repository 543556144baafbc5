"""`--clip-model`: the tiny CLIP's id (`fourdfy-tiny:clip`, README's value for CPU demos) is named in the help and in
the error for an unknown model, with a did-you-mean against open_clip's names and it; scoring with the tiny CLIP
prints one `note:` line on stderr saying that its scores are meaningless, as `analyze` flags simulated votes."""

from __future__ import annotations

import json

import numpy as np
import open_clip
import pytest
from typer.testing import CliRunner

from evaluation.artifacts import write_artifact
from evaluation.clip_models import TINY_CLIP_ID, ClipConfig, is_random_weights, load_clip
from pipelines.cli import app

runner = CliRunner()
NOTE = "has random weights: its CLIP scores are meaningless"


def test_the_help_names_the_tiny_clip():
    res = runner.invoke(app, ["clipscore", "--help"], terminal_width=200)
    assert res.exit_code == 0
    assert TINY_CLIP_ID in " ".join(res.output.split())  # rich may wrap the option's help anywhere


@pytest.mark.parametrize("typed, meant", [("fourdfy-tiny:clipp", TINY_CLIP_ID), ("ViT-B32", "ViT-B-32"),
                                          ("vit-b-32", "ViT-B-32")])  # case aside, not the nearer-spelt ViT-S-32
def test_a_misspelt_model_is_answered_with_the_closest_names_first(typed, meant):
    assert meant == TINY_CLIP_ID or meant in open_clip.list_models()  # the suggestion is a name that loads
    with pytest.raises(ValueError) as err:
        load_clip(ClipConfig(model=typed, device="cpu"))
    msg = str(err.value)
    assert msg.startswith(f"unknown open_clip model {typed!r} (did you mean {meant!r}"), msg
    assert f"or {TINY_CLIP_ID} (random weights" in msg  # listed among the kinds of value, whatever was typed


def test_a_name_far_from_every_model_gets_no_guess_but_the_list():
    with pytest.raises(ValueError) as err:
        load_clip(ClipConfig(model="zzzz", device="cpu"))
    assert str(err.value).startswith("unknown open_clip model 'zzzz'; e.g. ViT-B-32") and TINY_CLIP_ID in str(err.value)


def test_the_cli_line_for_a_misspelt_tiny_clip(tmp_path):
    _artifact(tmp_path / "art")
    res = runner.invoke(app, ["clipscore", str(tmp_path / "art"), "--clip-model", "fourdfy-tiny:clipp", "--out",
                              str(tmp_path / "clip"), "--device", "cpu", "--no-progress"])
    assert res.exit_code == 2
    assert f"error: unknown open_clip model 'fourdfy-tiny:clipp' (did you mean {TINY_CLIP_ID!r}?)" in res.stderr
    assert NOTE not in res.stderr  # no note for a model that is not the tiny one


def _artifact(root):
    frames = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    write_artifact(root, "4dfy", "A panda dancing.", frames, source={"kind": "import", "file": "x.mp4", "sha256": "0"},
                   trajectory="orbit", fps=15)


def test_is_random_weights_knows_the_tiny_clip_by_id_and_by_folder(tiny_clip, tmp_path):
    assert is_random_weights(TINY_CLIP_ID) and is_random_weights(str(tiny_clip))
    assert not is_random_weights("ViT-B-32") and not is_random_weights(str(tmp_path))  # a folder of no model
    assert load_clip(ClipConfig(model=str(tiny_clip), device="cpu")).random_weights  # the loaded model says the same


@pytest.mark.parametrize("by", ["id", "folder"])
def test_scoring_with_the_tiny_clip_prints_one_note_on_stderr(tmp_path, tiny_clip, monkeypatch, by):
    monkeypatch.setenv("FOURDFY_CACHE", str(tiny_clip.parent.parent))  # the id resolves to this session's model
    _artifact(tmp_path / "art")
    model = TINY_CLIP_ID if by == "id" else str(tiny_clip)
    res = runner.invoke(app, ["clipscore", str(tmp_path / "art"), "--clip-model", model, "--out",
                              str(tmp_path / "clip"), "--device", "cpu", "--no-progress", "--resamples", "50"])
    assert res.exit_code == 0, res.output + res.stderr
    notes = [ln for ln in res.stderr.splitlines() if NOTE in ln]
    assert len(notes) == 1 and notes[0].startswith("note: ") and TINY_CLIP_ID in notes[0], res.stderr
    assert "--clip-model ViT-B-32 --pretrained openai" in notes[0]  # what to use instead
    assert NOTE not in res.stdout  # the scores' lines stay as they were
    assert json.loads((tmp_path / "clip" / "clipscore.json").read_text())["random_weights"] is True  # as recorded


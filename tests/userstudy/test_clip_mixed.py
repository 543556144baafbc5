"""`load_clip_source` takes the model and precision of clipscore.json only for a CLIP file that run wrote (the
sha256 it records); a clipscore run killed before its clipscore.json never leaves one that mislabels new tables.
The end-to-end check with real clipscore runs is tests/evaluation/test_clip_commit.py."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import evaluation.clip as clip_module
from evaluation.clip import META, ScoreConfig, write_outputs
from userstudy.tables import ClipError, ClipSource, load_clip, load_clip_source

CFG = ScoreConfig(n_resamples=50)


def per_frame(shift: float) -> pd.DataFrame:
    return pd.DataFrame([{"method": m, "slug": s, "prompt": s.replace("_", " "), "frame": k, "score": c + k + shift}
                         for m, c in (("4dfy", 20.0), ("mav3d", 25.0))
                         for s in ("a_panda_dancing", "a_cat_singing") for k in (0, 1)])


def killed_before_meta(folder, monkeypatch, **kw):
    """write_outputs interrupted (as by a kill) once every table is renamed into place, before clipscore.json."""
    def killed(path, text):
        raise KeyboardInterrupt

    monkeypatch.setattr(clip_module, "write_text_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(folder, per_frame(1.0), CFG, **kw)
    monkeypatch.undo()


def test_a_run_killed_before_its_clipscore_json_is_refused_beside_the_earlier_one(tmp_path, monkeypatch):
    folder = tmp_path / "clip"
    write_outputs(folder, per_frame(0.0), CFG, "ViT-B-32 / openai (QuickGELU)", precision="fp32")
    assert load_clip_source(folder / "clip.csv") == ClipSource("ViT-B-32 / openai (QuickGELU)", "fp32", False)
    killed_before_meta(folder, monkeypatch, model="ViT-B-32 / openai (QuickGELU), bf16 image tower",
                       precision="bf16")
    assert json.loads((folder / META).read_text())["precision"] == "fp32"  # the earlier record stayed
    load_clip(folder / "clip.csv")  # the table itself is whole: only the pair is wrong
    with pytest.raises(ClipError, match=r"come from different `fourdfy clipscore` runs \(an interrupted run\?\)"):
        load_clip_source(folder / "clip.csv")
    # the same run again commits: the pair is whole
    write_outputs(folder, per_frame(1.0), CFG, "ViT-B-32 / openai (QuickGELU), bf16 image tower", precision="bf16")
    assert load_clip_source(folder / "clip.csv").precision == "bf16"


def test_a_clipscore_json_of_an_earlier_version_is_upgraded_before_any_table_is_replaced(tmp_path, monkeypatch):
    """It records no digests, so it could not tell the new tables from its own: before the first table is replaced
    it is rewritten with the digests of the tables it describes, so a run killed after its tables is refused as a
    mix, and the earlier tables keep their model if it is killed before."""
    folder = tmp_path / "clip"
    write_outputs(folder, per_frame(0.0), CFG, "ViT-B-32 / openai (QuickGELU)")
    meta = json.loads((folder / META).read_text())
    meta.pop("sha256", None)  # (none at all before digests were recorded)
    (folder / META).write_text(json.dumps(meta))
    assert load_clip_source(folder / "clip.csv").model == "ViT-B-32 / openai (QuickGELU)"  # read as before
    calls = []

    def killed_after_upgrade(path, text):  # the upgrade goes through; the run's own record never comes
        calls.append(path)
        if len(calls) > 1:
            raise KeyboardInterrupt
        real(path, text)

    real = clip_module.write_text_atomic
    monkeypatch.setattr(clip_module, "write_text_atomic", killed_after_upgrade)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(folder, per_frame(1.0), CFG, model="fourdfy-tiny:clip (QuickGELU)")
    monkeypatch.undo()
    assert "sha256" in json.loads((folder / META).read_text())  # upgraded in place, model kept
    assert json.loads((folder / META).read_text())["model"] == "ViT-B-32 / openai (QuickGELU)"
    with pytest.raises(ClipError, match=r"come from different `fourdfy clipscore` runs"):
        load_clip_source(folder / "clip.csv")


def test_digests_survive_a_checkout_that_converts_line_endings(tmp_path):
    folder = tmp_path / "clip"
    write_outputs(folder, per_frame(0.0), CFG, "m")
    clip = folder / "clip.csv"
    clip.write_bytes(clip.read_bytes().replace(b"\n", b"\r\n"))  # git's autocrlf on Windows
    assert load_clip_source(clip).model == "m"
    clip.write_bytes(clip.read_bytes().replace(b"20.5", b"20.6"))  # any other change is not the run's file
    with pytest.raises(ClipError, match="different `fourdfy clipscore` runs"):
        load_clip_source(clip)


@pytest.mark.parametrize("digests", [[], {}, {"clip.csv": 1}, "abc"])
def test_a_hand_broken_digest_record_is_one_clear_error(tmp_path, digests):
    folder = tmp_path / "clip"
    write_outputs(folder, per_frame(0.0), CFG, "m")
    meta = json.loads((folder / META).read_text())
    meta["sha256"] = digests
    (folder / META).write_text(json.dumps(meta))
    with pytest.raises(ClipError, match=r'\(beside --clip\): its "sha256" is not a mapping of table names to '
                                        r"digests; .*move clipscore.json away"):
        load_clip_source(folder / "clip.csv")

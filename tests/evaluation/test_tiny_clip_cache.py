"""A damaged tiny-CLIP cache (`fourdfy-tiny:clip`) is rebuilt with a warning naming it, as the tiny priors' is,
instead of being loaded and failing with an error about its contents; an intact one is reused silently."""

from __future__ import annotations

import hashlib
import json
import warnings

import pytest
import torch

from evaluation.clip_models import TINY_CLIP_ID, ClipConfig, load_clip, tiny_clip_folder

WEIGHTS = "open_clip_pytorch_model.bin"
CONFIG = "open_clip_config.json"


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """A private $FOURDFY_CACHE with the tiny CLIP built in it; returns its folder."""
    monkeypatch.setenv("FOURDFY_CACHE", str(tmp_path / "cache"))
    return tiny_clip_folder()


def test_a_truncated_weight_file_is_rebuilt_with_a_warning_and_the_model_loads(cache):
    before = _sha(cache / WEIGHTS)
    size = (cache / WEIGHTS).stat().st_size
    (cache / WEIGHTS).write_bytes((cache / WEIGHTS).read_bytes()[:1000])  # as `truncate -s 1000`
    with pytest.warns(RuntimeWarning) as record:
        clip = load_clip(ClipConfig(model=TINY_CLIP_ID, device="cpu"))
    text = " ".join(str(w.message) for w in record)
    assert (f"the tiny CLIP's cache {cache} is damaged ({WEIGHTS} has 1000 bytes instead of {size}); rebuilding it"
            in text), text
    assert _sha(cache / WEIGHTS) == before  # the same weights as before the damage
    saved = torch.load(cache / WEIGHTS, map_location="cpu")
    got = clip.model.state_dict()
    assert saved.keys() == got.keys() and all(torch.equal(saved[k], got[k]) for k in saved)
    assert clip.random_weights
    assert not list(cache.parent.glob(".*"))  # no temporary folder left beside it


@pytest.mark.parametrize("damage, says", [
    (lambda f: f.unlink(), "is missing"),
    # the same size, other bytes: only the hash tells (this one was read as JSON and failed to parse)
    (lambda f: f.write_bytes(b"[" + f.read_bytes()[1:]), "differs from the file built"),
], ids=["deleted", "same-size-overwrite"])
def test_any_damaged_file_is_rebuilt(cache, damage, says):
    before = _sha(cache / CONFIG)
    assert tiny_clip_folder() == cache  # verified once: this process's memo must not hide the damage
    damage(cache / CONFIG)
    with pytest.warns(RuntimeWarning, match=f"is damaged \\({CONFIG} {says}\\); rebuilding it"):
        assert tiny_clip_folder() == cache
    assert _sha(cache / CONFIG) == before
    load_clip(ClipConfig(model=TINY_CLIP_ID, device="cpu"))


def test_an_intact_cache_is_reused_silently_and_an_unstamped_one_gets_a_stamp(cache):
    stamps = [p for p in cache.iterdir() if p.name not in (WEIGHTS, CONFIG)]
    assert len(stamps) == 1
    files = json.loads(stamps[0].read_text())["files"]
    assert files == {name: [(cache / name).stat().st_size, _sha(cache / name)] for name in (CONFIG, WEIGHTS)}
    mtime = (cache / WEIGHTS).stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tiny_clip_folder() == cache
        assert (cache / WEIGHTS).stat().st_mtime_ns == mtime  # not rewritten
        stamps[0].unlink()  # a cache written before the stamp: rebuilt once, with no warning (nothing is damaged)
        assert tiny_clip_folder() == cache
    assert json.loads(stamps[0].read_text())["files"] == files


def test_the_stamp_is_the_tiny_clips_own_and_an_earlier_versions_is_rebuilt_silently(cache):
    """The stamp was named `tiny-priors.json`, after the tiny priors' cache; a folder stamped so is rebuilt once,
    without a warning (nothing in it is damaged), with the same weights."""
    assert sorted(p.name for p in cache.iterdir()) == [CONFIG, WEIGHTS, "tiny-clip.json"]
    stamp = json.loads((cache / "tiny-clip.json").read_text())
    before = _sha(cache / WEIGHTS)
    (cache / "tiny-clip.json").rename(cache / "tiny-priors.json")  # as an earlier version left it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tiny_clip_folder() == cache
        clip = load_clip(ClipConfig(model=TINY_CLIP_ID, device="cpu"))
    assert sorted(p.name for p in cache.iterdir()) == [CONFIG, WEIGHTS, "tiny-clip.json"]
    assert json.loads((cache / "tiny-clip.json").read_text()) == stamp and _sha(cache / WEIGHTS) == before
    assert clip.random_weights
    assert not list(cache.parent.glob(".*"))  # the earlier folder, moved aside, is gone

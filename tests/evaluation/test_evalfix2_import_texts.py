"""import-videos' text inputs: a --map CSV that is not UTF-8 (a spreadsheet's cp1252 export) is named by file and
line, as a prompt file is; a --prompts file that words a library prompt otherwise keeps its words, with a `note:`
naming the library's text (clipscore needs one text per prompt), as --map notes the text it records instead."""

from __future__ import annotations

import json

import pytest
from eval_helpers import error_lines, panda_and_cat_videos
from typer.testing import CliRunner

from evaluation.importer import VideoImportError, import_videos, read_mapping
from pipelines.cli import app

runner = CliRunner()


@pytest.fixture()
def src(tmp_path):
    return panda_and_cat_videos(tmp_path / "videos", 2)


def test_a_cp1252_map_is_named_by_file_and_line(tmp_path, src):
    excel = tmp_path / "excel.csv"
    # an em dash in Windows-1252 (0x97) on the third line, as Excel's "CSV" export writes it
    excel.write_bytes("file,prompt\na_panda_dancing.mp4,A panda dancing.\na_cat_singing.mp4,A cat \u2014 singing\n"
                      .encode("cp1252"))
    with pytest.raises(VideoImportError) as err:
        read_mapping(excel, src)
    assert str(err.value) == "excel.csv:3: not UTF-8 text (byte 0x97); save the CSV as UTF-8"
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "out"),
                              "--map", str(excel)])
    assert res.exit_code == 2
    assert error_lines(res) == ["error: excel.csv:3: not UTF-8 text (byte 0x97); save the CSV as UTF-8"]
    assert not (tmp_path / "out" / "mav3d").exists()


def test_a_utf8_map_with_a_bom_and_crlf_still_reads(tmp_path, src):
    path = tmp_path / "map.csv"
    path.write_bytes("\ufefffile,prompt\r\na_cat_singing.mp4,A cat \u2014 singing\r\n".encode("utf-8"))
    assert read_mapping(path, src) == {src / "a_cat_singing.mp4": "A cat \u2014 singing"}


def test_a_prompt_file_worded_otherwise_keeps_its_words_with_a_note(tmp_path, src):
    mine = tmp_path / "mine.txt"
    mine.write_text("a panda dancing\nA cat singing.\n")  # the panda worded otherwise, the cat as the library has it
    out = tmp_path / "out"
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(out),
                              "--prompts", str(mine)])
    assert res.exit_code == 0, res.output
    notes = [ln for ln in error_lines(res) if ln.startswith("note:")]
    assert notes == ["note: a_panda_dancing.mp4: recorded 'a panda dancing' as mine.txt words it, not the prompt "
                     "library's 'A panda dancing.' (the same prompt, slug a_panda_dancing): `clipscore` needs one "
                     "text per prompt, so every method's video of it must be made for these words (`--map` records "
                     "the library's words instead)"]
    manifest = json.loads((out / "mav3d" / "a_panda_dancing" / "manifest.json").read_text())
    assert manifest["prompt"] == "a panda dancing"  # the prompt file's own words, as before
    r = import_videos(src, "mav3d", tmp_path / "out2", prompts={"a_panda_dancing": "a panda dancing",
                                                                "a_cat_singing": "A cat singing."})
    assert r.own_texts == {"a_panda_dancing.mp4": ("a panda dancing", "A panda dancing.")}


def test_no_note_without_a_prompt_file(tmp_path, src):
    r = import_videos(src, "mav3d", tmp_path / "out")
    assert not r.own_texts and len(r.imported) == 2

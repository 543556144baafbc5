"""import-videos --map: a mapped text with a library prompt's slug is that prompt, so the library's text is what the
artifact records (survey build compares it with the prompt file, the CLIP score reads it), with one `note:` line per
such file; blanks around a mapped value are dropped; a text of no library prompt is kept as typed."""

from __future__ import annotations

import json

import pytest
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from evaluation.importer import import_videos
from evaluation.video import encode_video
from pipelines.cli import app
from prompts import library, slugify

runner = CliRunner()
PANDA = "a_baby_panda_eating_ice_cream"


@pytest.fixture(scope="module")
def library_panda() -> str:
    (text,) = {t[PANDA] for t in library().values() if PANDA in t}  # the same words in every file that has it
    return text


@pytest.fixture()
def src(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("baby_panda_eating_ice_cream.mp4", "mine.mp4", "small.mp4"):
        encode_video(folder / name, make_frames(2, 16, 16))
    return folder


def _write_map(tmp_path, library_panda) -> object:
    path = tmp_path / "map.csv"
    # as typed by hand: lower case, no full stop, blanks around it; a novel prompt; the library text itself
    path.write_text("file,prompt\n"
                    "baby_panda_eating_ice_cream.mp4, a baby panda eating ice cream \n"
                    "mine.mp4,  My own prompt: no full stop  \n"
                    f"small.mp4,{library_panda.replace('baby', 'small')}\n")
    return path


def _manifest(out, slug):
    return json.loads((out / "mav3d" / slug / "manifest.json").read_text())


def test_the_library_text_is_recorded_for_its_slug(tmp_path, src, library_panda):
    assert library_panda != "a baby panda eating ice cream"  # else the test would prove nothing
    out = tmp_path / "out"
    r = import_videos(src, "mav3d", out, mapping=_write_map(tmp_path, library_panda))
    assert _manifest(out, PANDA)["prompt"] == library_panda  # what survey build's prompt check compares with
    assert r.library_texts == {"baby_panda_eating_ice_cream.mp4": ("a baby panda eating ice cream", library_panda)}
    # a prompt of one's own keeps its words (blanks around it dropped), and so does a near miss of a library prompt
    assert _manifest(out, "my_own_prompt_no_full_stop")["prompt"] == "My own prompt: no full stop"
    small = library_panda.replace("baby", "small")
    assert _manifest(out, slugify(small))["prompt"] == small
    assert set(r.unknown_prompts) == {"mine.mp4", "small.mp4"} and not r.failed


def test_the_cli_prints_one_note_per_replaced_text(tmp_path, src, library_panda):
    out = tmp_path / "out"
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(out),
                              "--map", str(_write_map(tmp_path, library_panda))])
    assert res.exit_code == 0, res.output + res.stderr
    notes = [ln for ln in error_lines(res) if ln.startswith("note:")]
    assert notes == [f"note: baby_panda_eating_ice_cream.mp4: recorded the prompt library's text {library_panda!r} "
                     "instead of 'a baby panda eating ice cream' as mapped (the same prompt, slug "
                     f"{PANDA}: every method is scored and shown with the library's words)"]
    assert _manifest(out, PANDA)["prompt"] == library_panda
    # run again: the folder is what this import writes, so it is done, not an existing folder of other words
    again = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(out),
                                "--map", str(tmp_path / "map.csv")])
    assert again.exit_code == 0 and "already imported from the same files" in again.output, again.output

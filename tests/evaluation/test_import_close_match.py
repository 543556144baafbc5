"""import-videos suggests, per unmatched file, the prompt file name closest to it (`a_goat_drinking_beers.mp4`:
did you mean a_goat_drinking_beer.mp4?) instead of only a generic example (the first prompt); and a --method close
to a registered method's name (a plug-in's, `myt4dd` for `myt4d`) gets the did-you-mean warning, not the note for
a name of one's own that lists only the paper design's methods."""

from __future__ import annotations

import pytest
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from baselines import METHODS, Method
from evaluation.video import encode_video
from pipelines.cli import app

runner = CliRunner()
HINT = "to import one, name it by the slug of a prompt of prompts/*.txt{example} or list it with its prompt in a " \
       "CSV given as --map (columns file,prompt)"


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("v") / "v.mp4"
    encode_video(path, make_frames(2, 16, 16))
    return path.read_bytes()


def _source(tmp_path, video, *names):
    src = tmp_path / "src"
    src.mkdir()
    for name in names:
        (src / name).write_bytes(video)
    return src


def _unmatched_line(res) -> str:
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith("unmatched files")]
    return line


def test_a_misnamed_file_is_told_the_name_it_is_close_to(tmp_path, video):
    src = _source(tmp_path, video, "a_panda_dancing.mp4", "a_goat_drinking_beers.mp4")
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert _unmatched_line(res) == ("unmatched files (1): a_goat_drinking_beers.mp4 (did you mean "
                                    "a_goat_drinking_beer.mp4?); " + HINT.format(example=""))


def test_files_far_from_every_prompt_keep_the_generic_example(tmp_path, video):
    src = _source(tmp_path, video, "a_goat_drinking_beer.mp4", "panda_dance.MP4", "holiday.mp4")
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert _unmatched_line(res) == ("unmatched files (2): holiday.mp4, panda_dance.MP4 (did you mean "
                                    "a_panda_dancing.MP4?); " + HINT.format(example=" (e.g. a_panda_dancing.mp4)"))


def test_no_file_is_told_a_name_whose_prompt_has_its_video(tmp_path, video):
    """A browser's second download beside the imported file: renaming it as suggested would replace the video just
    imported. Nor is a prompt imported by an earlier run suggested."""
    src = _source(tmp_path, video, "a_panda_dancing.mp4", "a_panda_dancing (1).mp4")
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert _unmatched_line(res) == ("unmatched files (1): a_panda_dancing (1).mp4; "
                                    + HINT.format(example=" (e.g. a_panda_dancing.mp4)"))
    (tmp_path / "later").mkdir()
    again = _source(tmp_path / "later", video, "a_goat_drinking_beer.mp4", "panda_dance.mp4")
    res = runner.invoke(app, ["import-videos", str(again), "--method", "mav3d", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "did you mean" not in _unmatched_line(res)


def test_the_suggestion_comes_from_the_prompts_file_given(tmp_path, video):
    prompts = tmp_path / "mine.txt"
    prompts.write_text("A cat singing.\nA goat drinking beer.\n")
    src = _source(tmp_path, video, "a_cat_singing.mp4", "a_goat_drinking_beers.mp4", "clip_02.mp4")
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "o"),
                              "--prompts", str(prompts)])
    assert res.exit_code == 0, res.output
    assert _unmatched_line(res) == (
        "unmatched files (2): a_goat_drinking_beers.mp4 (did you mean a_goat_drinking_beer.mp4?), clip_02.mp4; to "
        "import one, name it by the slug of a prompt of mine.txt (e.g. a_cat_singing.mp4) or list it with its "
        "prompt in a CSV given as --map (columns file,prompt)")


def _import(tmp_path, video, method):
    src = _source(tmp_path, video, "a_panda_dancing.mp4")
    res = runner.invoke(app, ["import-videos", str(src), "--method", method, "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / method / "a_panda_dancing" / "manifest.json").is_file()  # imported as asked
    return error_lines(res)


def test_a_near_miss_of_a_registered_plugin_is_warned(tmp_path, video, monkeypatch):
    monkeypatch.setitem(METHODS, "myt4d", Method("myt4d", "a plug-in's videos", trainable=False))
    assert _import(tmp_path, video, "myt4dd") == [
        "warning: method 'myt4dd' is neither in the paper's design nor a registered method (`fourdfy methods` "
        "lists them); did you mean 'myt4d'? (a new method's name is fine: `fourdfy analyze` needs it in its "
        "design)"]  # and no note for a name of its own after the import


def test_a_registered_plugin_close_to_a_paper_method_is_no_near_miss(tmp_path, video, monkeypatch):
    monkeypatch.setitem(METHODS, "mav3dx", Method("mav3dx", "a plug-in's videos", trainable=False))
    assert _import(tmp_path, video, "mav3dx") == []

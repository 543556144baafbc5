"""`import-videos`' line of unmatched files says how to import them: name them by a prompt's slug, or give --map
(before: `unmatched files (2): ...` and nothing more); with --map, that they are not listed in it."""

from __future__ import annotations

from eval_helpers import make_frames
from typer.testing import CliRunner

from evaluation.video import encode_video
from pipelines.cli import app

runner = CliRunner()


def _unmatched_line(res) -> str:
    return next(ln for ln in res.stdout.splitlines() if ln.startswith("unmatched files"))


def _source(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a_panda_dancing.mp4", "holiday.mp4", "clip_02.mp4"):
        encode_video(src / name, make_frames(2, 16, 16))
    return src


def test_unmatched_files_point_to_slugs_and_to_map(tmp_path):
    src = _source(tmp_path)
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert _unmatched_line(res) == (
        "unmatched files (2): clip_02.mp4, holiday.mp4; to import one, name it by the slug of a prompt of "
        "prompts/*.txt (e.g. a_panda_dancing.mp4) or list it with its prompt in a CSV given as --map (columns "
        "file,prompt)")


def test_with_a_prompt_file_the_example_is_one_of_its_slugs(tmp_path):
    src = _source(tmp_path)
    mine = tmp_path / "mine.txt"
    mine.write_text("A goat drinking beer.\nA panda dancing.\n")
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "o"),
                              "--prompts", str(mine)])
    assert res.exit_code == 0, res.output
    assert "name it by the slug of a prompt of mine.txt (e.g. a_goat_drinking_beer.mp4) or list it with its prompt " \
           "in a CSV given as --map" in _unmatched_line(res)


def test_with_map_the_files_are_said_to_be_missing_from_it(tmp_path):
    src = _source(tmp_path)
    mapping = tmp_path / "map.csv"
    mapping.write_text("file,prompt\nholiday.mp4,A panda dancing.\n")
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "o"),
                              "--map", str(mapping)])
    assert res.exit_code == 0, res.output
    assert _unmatched_line(res) == ("unmatched files (2): a_panda_dancing.mp4, clip_02.mp4; not listed in map.csv: "
                                    "add a row file,prompt for each to import it")
    assert "--map" not in _unmatched_line(res)  # it was given

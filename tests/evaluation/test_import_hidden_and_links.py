"""What a copied or linked video folder holds besides the videos: macOS's AppleDouble `._name.mp4` files, a symlink
whose target is gone, videos in per-prompt subfolders. None may cost a prompt its video silently."""

from __future__ import annotations

import os

from eval_helpers import make_frames
from typer.testing import CliRunner

from evaluation.importer import import_videos
from evaluation.video import encode_video
from pipelines.cli import app

runner = CliRunner()


def test_an_appledouble_file_beside_a_video_is_not_a_second_video_of_its_prompt(tmp_path):
    src = tmp_path / "mac"
    src.mkdir()
    encode_video(src / "a_panda_dancing.mp4", make_frames(3, 16, 16))
    (src / "._a_panda_dancing.mp4").write_bytes(os.urandom(4096))  # resource fork, not a video
    (src / "._notes.mp4").write_bytes(b"\0" * 10)
    r = import_videos(src, "mav3d", tmp_path / "out")
    assert [a.slug for a in r.imported] == ["a_panda_dancing"] and r.failed == {}
    assert r.unmatched_files == []  # hidden files are not listed as unmatched either
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "out2"),
                              "--prompts", str(_prompt_file(tmp_path))])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out2" / "mav3d" / "a_panda_dancing" / "video.mp4").is_file()


def test_a_dangling_symlink_to_a_video_is_an_error_naming_it(tmp_path):
    src = tmp_path / "linked"
    src.mkdir()
    encode_video(src / "a_panda_dancing.mp4", make_frames(3, 16, 16))
    (src / "a_goat_drinking_beer.mp4").symlink_to(tmp_path / "gone.mp4")  # a DVC checkout without its cache
    r = import_videos(src, "mav3d", tmp_path / "out")
    assert [a.slug for a in r.imported] == ["a_panda_dancing"]
    assert list(r.failed) == ["a_goat_drinking_beer.mp4"] and "not found" in r.failed["a_goat_drinking_beer.mp4"]
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "out2")])
    assert res.exit_code == 2 and "error: a_goat_drinking_beer.mp4:" in res.stderr


def test_videos_in_subfolders_are_named_not_silently_left_out(tmp_path):
    src = tmp_path / "by_prompt"
    (src / "panda").mkdir(parents=True)
    (src / ".hidden").mkdir()
    encode_video(src / "panda" / "a_panda_dancing.mp4", make_frames(3, 16, 16))
    encode_video(src / ".hidden" / "a_goat_drinking_beer.mp4", make_frames(3, 16, 16))
    encode_video(src / "a_goat_drinking_beer.mp4", make_frames(3, 16, 16))
    r = import_videos(src, "mav3d", tmp_path / "out")
    assert [a.slug for a in r.imported] == ["a_goat_drinking_beer"] and r.in_subfolders == ["panda/a_panda_dancing.mp4"]
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "out2")])
    assert res.exit_code == 0, res.output
    assert "note: 1 video(s) in subfolders of" in res.stdout and "panda/a_panda_dancing.mp4" in res.stdout
    # --allow-empty (the pipeline's import stage) on a folder of subfolders only: the note says why it is empty
    (src / "a_goat_drinking_beer.mp4").unlink()
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "out3"),
                              "--allow-empty"])
    assert res.exit_code == 0 and "panda/a_panda_dancing.mp4" in res.stdout and "is empty" in res.stdout


def _prompt_file(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("A panda dancing.\n", encoding="utf-8")
    return path

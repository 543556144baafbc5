"""`fourdfy import-videos` names a prompt whose file failed once, by its error line with the reason; "prompts without a
video" lists only the prompts no file was found for (a corrupt file's prompt used to be in both)."""

from __future__ import annotations

from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from evaluation.importer import import_videos
from evaluation.video import encode_video
from pipelines.cli import app

runner = CliRunner()
PROMPTS = "A panda dancing.\nA goat drinking beer.\nA cat singing.\nA dog riding a skateboard.\n"


def _source(tmp_path):
    """Two good videos, one cut in half (its index, at the end of an mp4, is gone), none for the cat."""
    src = tmp_path / "src"
    src.mkdir()
    encode_video(src / "a_panda_dancing.mp4", make_frames(4, 16, 16))
    encode_video(src / "a_dog_riding_a_skateboard.mp4", make_frames(4, 16, 16, seed=5))
    encode_video(src / "a_goat_drinking_beer.mp4", make_frames(8, 16, 16, seed=9))
    data = (src / "a_goat_drinking_beer.mp4").read_bytes()
    (src / "a_goat_drinking_beer.mp4").write_bytes(data[:len(data) // 2])
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(PROMPTS)
    return src, prompts


def test_a_corrupt_file_is_an_error_not_a_prompt_without_a_video(tmp_path):
    src, prompts = _source(tmp_path)
    out = tmp_path / "out"
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(out), "--prompts",
                              str(prompts)])
    assert res.exit_code == 2, res.output
    errors = error_lines(res)
    assert len(errors) == 1 and errors[0].startswith("error: a_goat_drinking_beer.mp4: ")
    missing = [ln for ln in res.stdout.splitlines() if ln.startswith("prompts without a video")]
    assert missing == ["prompts without a video (1): a_cat_singing"]
    assert "a_goat_drinking_beer" not in res.stdout  # named by its error line only
    assert sorted(p.name for p in (out / "mav3d").iterdir()) == ["a_dog_riding_a_skateboard", "a_panda_dancing"]


def test_every_prompt_with_a_file_no_line_of_prompts_without_a_video(tmp_path):
    src, prompts = _source(tmp_path)
    prompts.write_text(PROMPTS.replace("A cat singing.\n", ""))
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "out"),
                              "--prompts", str(prompts)])
    assert res.exit_code == 2, res.output
    assert not any(ln.startswith("prompts without a video") for ln in res.stdout.splitlines())
    assert [ln.split(":")[1].strip() for ln in error_lines(res)] == ["a_goat_drinking_beer.mp4"]


def test_the_report_keeps_failed_files_out_of_no_video(tmp_path):
    src, prompts = _source(tmp_path)
    (src / "A_panda_dancing.mov").write_bytes(b"")  # a second file for the panda: both refused
    table = {"a_panda_dancing": "A panda dancing.", "a_goat_drinking_beer": "A goat drinking beer.",
             "a_cat_singing": "A cat singing.", "a_dog_riding_a_skateboard": "A dog riding a skateboard."}
    r = import_videos(src, "mav3d", tmp_path / "out", prompts=table)
    assert set(r.failed) == {"a_goat_drinking_beer.mp4", "a_panda_dancing.mp4", "A_panda_dancing.mov"}
    assert r.no_video == r.unmatched_prompts == ["a_cat_singing"]
    # --all-or-nothing writes nothing: the dog's good file was not written, so its prompt has no video either
    r = import_videos(src, "mav3d", tmp_path / "none", prompts=table, all_or_nothing=True)
    assert not r.imported and r.no_video == ["a_cat_singing", "a_dog_riding_a_skateboard"]

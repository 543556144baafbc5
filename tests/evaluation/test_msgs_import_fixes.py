"""`fourdfy import-videos`: a long list of prompts without a video is cut to its first names (a wrong --prompts file,
such as a votes CSV, printed one line of megabytes), and a folder given as --map is named as a folder."""

from __future__ import annotations

from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from evaluation.video import encode_video
from pipelines.cli import app
NO_VIDEO_SHOWN = 10  # the names shown; the rest are counted

runner = CliRunner()


def _source(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    encode_video(src / "a_panda_dancing.mp4", make_frames(4, 16, 16))
    return src


def _without(res) -> str:
    return next(ln for ln in res.stdout.splitlines() if ln.startswith("prompts without a video"))


def test_a_long_prompt_file_names_its_first_prompts_without_a_video_and_counts_the_rest(tmp_path):
    src = _source(tmp_path)
    votes = tmp_path / "votes.csv"  # the wrong file: a votes CSV, each row a "prompt" of its own
    votes.write_text("participant,question,choice\n" + "".join(f"p{i:04d},q{i:04d},left\n" for i in range(3000)))
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "out"),
                              "--prompts", str(votes)])
    assert res.exit_code == 2, res.output
    line = _without(res)
    head, names = line.split(": ", 1)
    assert head == "prompts without a video (3001)"
    shown, more = names.split(" ... ")
    assert len(shown.split(", ")) == NO_VIDEO_SHOWN and more == "and 2991 more"
    assert len(line) < 400
    assert error_lines(res) == [f"error: no video of {src} matched a prompt (name files by prompt slug or give --map)"]


def test_a_short_list_of_prompts_without_a_video_is_whole(tmp_path):
    src = _source(tmp_path)
    prompts = tmp_path / "p.txt"
    prompts.write_text("A panda dancing.\n" + "".join(f"A cat number {i}.\n" for i in range(NO_VIDEO_SHOWN)))
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "out"),
                              "--prompts", str(prompts)])
    assert res.exit_code == 0, res.output
    line = _without(res)
    assert line.startswith(f"prompts without a video ({NO_VIDEO_SHOWN}): ") and "more" not in line
    assert len(line.split(": ", 1)[1].split(", ")) == NO_VIDEO_SHOWN


def test_a_prompt_with_commas_is_a_prompt(tmp_path):
    """Commas are legal in a prompt line, so a --prompts file is not refused for them (only the list is cut)."""
    src = tmp_path / "src"
    src.mkdir()
    encode_video(src / "a_dog_running_jumping_and_barking.mp4", make_frames(4, 16, 16))
    prompts = tmp_path / "p.txt"
    prompts.write_text("A dog, running, jumping and barking.\n")
    out = tmp_path / "out"
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(out), "--prompts",
                              str(prompts)])
    assert res.exit_code == 0, res.output
    assert (out / "mav3d" / "a_dog_running_jumping_and_barking" / "video.mp4").is_file()


def test_a_folder_given_as_map_is_named_as_a_folder(tmp_path):
    src = _source(tmp_path)
    folder = tmp_path / "maps"
    folder.mkdir()
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "out"),
                              "--map", str(folder)])
    assert res.exit_code == 2, res.output
    assert error_lines(res) == [f"error: {folder} is a folder, not a mapping file; give --map a CSV file with "
                                "columns file,prompt"]
    assert not (tmp_path / "out").exists()
    # a path that is not there is still "not found"
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "out"),
                              "--map", str(tmp_path / "gone.csv")])
    assert error_lines(res) == [f"error: mapping file not found: {tmp_path / 'gone.csv'}"]


def test_many_unmatched_or_already_imported_files_are_named_first_then_counted(tmp_path):
    src = _source(tmp_path)
    for i in range(NO_VIDEO_SHOWN + 3):  # a camera's folder: files named by no prompt
        encode_video(src / f"clip_{i:02d}.mp4", make_frames(2, 16, 16))
    out = tmp_path / "out"
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(out)])
    assert res.exit_code == 0, res.output
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith("unmatched files")]
    head, rest = line.split(": ", 1)
    assert head == f"unmatched files ({NO_VIDEO_SHOWN + 3})"
    shown, more = rest.split(" ... ")
    assert shown.split(", ") == [f"clip_{i:02d}.mp4" for i in range(NO_VIDEO_SHOWN)]
    assert more.startswith("and 3 more; to import one, name it by the slug of a prompt"), more
    # a short list stays whole
    again = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(out)])
    (done,) = [ln for ln in again.stdout.splitlines() if ln.startswith("already imported")]
    assert done.endswith("(1): a_panda_dancing") and "more" not in done, done

"""import-videos under a name that is no method of the paper's design, no near miss of one and not registered:
imported as asked (a new baseline with videos only), with one line saying so and naming the design's methods;
the authors' example folder names (`ours` ...) are told which method they hold."""

from __future__ import annotations

import pytest
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from baselines import METHODS, Method
from evaluation.importer import AUTHOR_FOLDERS, authors_method
from evaluation.video import encode_video
from pipelines.cli import app
from userstudy.design import load_design

runner = CliRunner()
PAPER_METHODS = "4dfy, mav3d, wo_3d_img, wo_3d, wo_img, wo_hybrid, hexplane, single_stage, single_grid"


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    encode_video(folder / "a_panda_dancing.mp4", make_frames(2, 16, 16))
    return folder


def _import(src, method, out):
    res = runner.invoke(app, ["import-videos", str(src), "--method", method, "--out", str(out)])
    assert res.exit_code == 0, res.output + res.stderr
    assert (out / method / "a_panda_dancing" / "manifest.json").is_file()  # imported as asked, never refused
    return error_lines(res)


def test_the_authors_folder_name_ours_is_told_it_is_4dfy(src, tmp_path):
    lines = _import(src, "ours", tmp_path / "o")
    assert lines == [
        "warning: 'ours' is neither a method of the paper's design nor a registered one: its videos are imported "
        "under a name of its own. It is the authors' example folder name for 4D-fy, which is '4dfy' here: to "
        f"compare these videos as 4D-fy, import them with --method 4dfy and remove {tmp_path / 'o' / 'ours'}, which "
        "`survey build` and the pipeline would take for another method (the paper's design names its methods "
        f"{PAPER_METHODS} (`fourdfy methods` lists them))"]


@pytest.mark.parametrize("folder,method", [("ours_wo_sds", "wo_3d"), ("ours_w_hexplane", "hexplane"),
                                           ("Ours-WO-VSD", "wo_img")])
def test_the_other_authors_folder_names(src, tmp_path, folder, method):
    (line,) = _import(src, folder, tmp_path / "o")
    assert f"which is {method!r} here" in line and f"import them with --method {method} " in line


def test_the_authors_names_are_the_paper_designs_methods():
    """docs/evaluation.md's mapping of the example's folders points at methods the design compares."""
    design = load_design()
    assert set(AUTHOR_FOLDERS.values()) <= {design.primary, *design.comparisons}
    assert authors_method("mav3d") is None and authors_method("OURS") == "4dfy"


def test_a_new_name_gets_a_note_listing_the_designs_names(src, tmp_path):
    lines = _import(src, "my_new_method", tmp_path / "o")
    assert lines == [
        "note: 'my_new_method' is neither a method of the paper's design nor a registered one: its videos are "
        "imported under a name of its own (a new baseline: `survey build` and `fourdfy analyze` need a design that "
        f"lists it); the paper's design names its methods {PAPER_METHODS} (`fourdfy methods` lists them)"]


def test_known_registered_and_near_miss_names_get_no_note(src, tmp_path, monkeypatch):
    assert _import(src, "mav3d", tmp_path / "a") == []
    (line,) = _import(src, "mav3dd", tmp_path / "b")  # the near-miss warning alone
    assert "did you mean 'mav3d'?" in line
    monkeypatch.setitem(METHODS, "my_plugin", Method("my_plugin", "a plug-in's videos", trainable=False))
    assert _import(src, "my_plugin", tmp_path / "c") == []


def test_no_note_when_nothing_was_imported(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["import-videos", str(empty), "--method", "ours", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and len(error_lines(res)) == 1 and "no video file in" in error_lines(res)[0]
    assert not any(line.startswith(("warning:", "note:")) for line in res.output.splitlines()), res.output


def test_a_folder_without_any_video_file_says_so_not_that_names_did_not_match(tmp_path):
    """A fresh clone's data/videos/<method>/ holds only a README: "no video matched a prompt" sent the user to
    rename files that are not there."""
    folder = tmp_path / "mav3d"
    folder.mkdir()
    (folder / "README.txt").write_text("put the videos here\n")
    res = runner.invoke(app, ["import-videos", str(folder), "--method", "mav3d", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and error_lines(res) == [
        f"error: no video file in {folder} (it holds README.txt); import-videos reads .mp4, .mov, .m4v, .mkv, .webm, "
        ".avi, .gif files named by prompt (docs/evaluation.md)"], res.output
    (folder / "README.txt").unlink()
    res = runner.invoke(app, ["import-videos", str(folder), "--method", "mav3d", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and error_lines(res)[0].startswith(f"error: no video file in {folder} (it is empty)")
    # a video under a name that matches no prompt keeps the naming advice
    encode_video(folder / "not_a_prompt_at_all.mp4", make_frames(2, 16, 16))
    res = runner.invoke(app, ["import-videos", str(folder), "--method", "mav3d", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and error_lines(res)[-1] == (
        f"error: no video of {folder} matched a prompt (name files by prompt slug or give --map)"), res.output
    assert not (tmp_path / "o").exists()


# import-videos --method attention_decoy (docs/survey.md has users import the decoy's videos so): a name of the
# paper's design, its attention-check decoy, not a name of one's own; a near miss of it gets the did-you-mean warning
def test_the_designs_decoy_is_named_as_such(src, tmp_path):
    assert load_design().check.decoys == ("attention_decoy",)
    assert _import(src, "attention_decoy", tmp_path / "o") == [
        "note: 'attention_decoy' is the attention-check decoy of the paper's design: `survey build` makes each of its "
        "videos an attention-check question against 4D-fy ('4dfy') on that prompt; it is in no table"]


def test_a_near_miss_of_the_decoy_is_warned_once(src, tmp_path):
    (line,) = _import(src, "attention_decoi", tmp_path / "o")  # the warning, and no own-name note after it
    assert line.startswith("warning: method 'attention_decoi' is not in the paper's design; did you mean "
                           "'attention_decoy'?")

"""clipscore over methods whose videos of a prompt differ in frame count, frame size or camera path (a 16-frame 32x32
orbit render beside a 64-frame import of unknown path): scored as before, outputs unchanged, with one `note:` on the
console naming a few such prompts and counting the rest."""

from __future__ import annotations

import pytest
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from evaluation.artifacts import write_artifact
from pipelines.cli import app

runner = CliRunner()
PROMPTS = ["A panda dancing.", "A cat singing.", "A goat drinking beer.", "A bear driving a car.",
           "A squirrel Djing."]


def _write(root, method, text, n=4, size=16, trajectory="orbit"):
    write_artifact(root, method, text, make_frames(n, size, size), source={"kind": "import", "file": "x", "sha256": "0"},
                   trajectory=trajectory, fps=15)


def _score(tiny_clip, root, out):
    return runner.invoke(app, ["clipscore", str(root), "--out", str(out), "--clip-model", str(tiny_clip),
                               "--device", "cpu", "--no-progress", "--resamples", "50"])


def _unlike(res) -> list[str]:
    return [ln for ln in error_lines(res) if "unlike videos" in ln]


@pytest.fixture(scope="module")
def alike_and_unlike(tmp_path_factory, tiny_clip):
    """(scores of methods on alike videos, of the same with mav3d's panda imported at another frame count, size and
    path: the reviewer's case), each a CLI result and its output folder."""
    base = tmp_path_factory.mktemp("unlike")
    runs = {}
    for case in ("alike", "unlike"):
        root = base / case / "art"
        for text in PROMPTS[:2]:
            _write(root, "4dfy", text)
            _write(root, "hexplane", text)
            odd = case == "unlike" and text == PROMPTS[0]
            _write(root, "mav3d", text, n=8 if odd else 4, size=24 if odd else 16,
                   trajectory="unknown" if odd else "orbit")
        runs[case] = (_score(tiny_clip, root, base / case / "out"), base / case / "out")
    return runs


def test_alike_videos_get_no_note(alike_and_unlike):
    res, _ = alike_and_unlike["alike"]
    assert res.exit_code == 0, res.output
    assert not _unlike(res)


def test_one_note_names_the_prompt_and_how_its_videos_differ(alike_and_unlike):
    res, _ = alike_and_unlike["unlike"]
    assert res.exit_code == 0, res.output
    assert _unlike(res) == [
        "note: 1 prompt of 2 has methods scored on unlike videos (frame count, frame size or camera path differ), so "
        "their scores and paired differences compare unlike videos: a_panda_dancing (4dfy, hexplane: 4 frames 16x16 "
        "orbit vs mav3d: 8 frames 24x24 unknown)"]


def test_the_note_changes_no_output(alike_and_unlike):
    """The outputs' columns and the prompts scored are those of a run without the note (only the scores of the
    videos that differ may differ)."""
    import pandas as pd

    (_, alike), (_, unlike) = alike_and_unlike["alike"], alike_and_unlike["unlike"]
    assert sorted(p.name for p in alike.iterdir()) == sorted(p.name for p in unlike.iterdir())
    for name in ("per_prompt.csv", "summary.csv", "clip.csv"):
        a, b = pd.read_csv(alike / name), pd.read_csv(unlike / name)
        assert list(a.columns) == list(b.columns) and len(a) == len(b), name
    cat = [pd.read_csv(d / "per_prompt.csv").query("slug == 'a_cat_singing'") for d in (alike, unlike)]
    pd.testing.assert_frame_equal(cat[0].reset_index(drop=True), cat[1].reset_index(drop=True))


def test_many_prompts_are_named_three_and_counted(tmp_path, tiny_clip):
    root = tmp_path / "art"
    for i, text in enumerate(PROMPTS):
        _write(root, "4dfy", text, n=2)
        _write(root, "mav3d", text, n=3 if i else 2, size=16 if i else 20)  # the first prompt by size, the rest by count
    res = _score(tiny_clip, root, tmp_path / "out")
    assert res.exit_code == 0, res.output
    (line,) = _unlike(res)
    assert line.startswith("note: 5 prompts of 5 have methods scored on unlike videos"), line
    # sorted by slug: the first three named, the other two counted
    assert line.endswith(": a_bear_driving_a_car (4dfy: 2 frames 16x16 orbit vs mav3d: 3 frames 16x16 orbit); "
                         "a_cat_singing (4dfy: 2 frames 16x16 orbit vs mav3d: 3 frames 16x16 orbit); "
                         "a_goat_drinking_beer (4dfy: 2 frames 16x16 orbit vs mav3d: 3 frames 16x16 orbit); "
                         "and 2 more"), line

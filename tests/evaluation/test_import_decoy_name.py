"""import-videos --method attention_decoy (docs/survey.md has users import the decoy's videos so): a name of the
paper's design, its attention-check decoy, not a name of one's own; a near miss of it gets the did-you-mean warning."""

from __future__ import annotations

import pytest
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from evaluation.video import encode_video
from pipelines.cli import app
from userstudy.design import load_design

runner = CliRunner()


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    encode_video(folder / "a_panda_dancing.mp4", make_frames(2, 16, 16))
    return folder


def _import(src, method, out):
    res = runner.invoke(app, ["import-videos", str(src), "--method", method, "--out", str(out)])
    assert res.exit_code == 0, res.output + res.stderr
    assert (out / method / "a_panda_dancing" / "manifest.json").is_file()
    return error_lines(res)


def test_the_designs_decoy_is_named_as_such(src, tmp_path):
    assert load_design().check.decoys == ("attention_decoy",)
    assert _import(src, "attention_decoy", tmp_path / "o") == [
        "note: 'attention_decoy' is the attention-check decoy of the paper's design: `survey build` makes each of its "
        "videos an attention-check question against 4D-fy ('4dfy') on that prompt; it is in no table"]


def test_a_near_miss_of_the_decoy_is_warned_once(src, tmp_path):
    (line,) = _import(src, "attention_decoi", tmp_path / "o")  # the warning, and no own-name note after it
    assert line.startswith("warning: method 'attention_decoi' is not in the paper's design; did you mean "
                           "'attention_decoy'?")

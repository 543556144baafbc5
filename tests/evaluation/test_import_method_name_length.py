"""`fourdfy import-videos --method NAME` has the limit of a registered method's name (`prompts.METHOD_NAME_MAX_BYTES`
UTF-8 bytes): an imported name ends up where a registered one does (folder and file names beside a prompt slug,
survey question ids). It used to be imported under any length."""

from __future__ import annotations

import pytest
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from evaluation.artifacts import ArtifactError, write_artifact
from evaluation.importer import VideoImportError, import_videos
from evaluation.video import encode_video
from pipelines.cli import app
from prompts import METHOD_NAME_MAX_BYTES

runner = CliRunner()


@pytest.fixture()
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    encode_video(d / "a_panda_dancing.mp4", make_frames(4, 16, 16))
    return d


def _message(name: str, size: int) -> str:
    # the registry's own wording: one limit, one message, whether the name is registered or imported
    return (f"method name {name!r} is {size} bytes long (UTF-8), over the limit of {METHOD_NAME_MAX_BYTES}: with a "
            "prompt slug of up to 200 bytes it names files such as a sweep log's temporary "
            "`.<method>-<slug>.out.<12 hex>.tmp`, which must fit in 255 bytes; choose a shorter name")


def test_a_name_over_the_limit_is_refused_with_nothing_written(src, tmp_path):
    assert METHOD_NAME_MAX_BYTES == 32
    out = tmp_path / "out"
    # 31 ASCII bytes and one two-byte letter: 32 characters, 33 bytes
    name = "m" * 31 + "é"
    assert len(name) == METHOD_NAME_MAX_BYTES and len(name.encode("utf-8")) == 33
    res = runner.invoke(app, ["import-videos", str(src), "--method", name, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert error_lines(res) == [f"error: {_message(name, 33)}"]
    assert not out.exists()
    with pytest.raises(VideoImportError) as err:
        import_videos(src, "x" * 40, out)
    assert str(err.value) == _message("x" * 40, 40)
    with pytest.raises(ArtifactError, match="is 40 bytes long"):  # the artifact contract itself too
        write_artifact(out, "x" * 40, "A panda dancing.", make_frames(2, 16, 16),
                       source={"kind": "import", "file": "x", "sha256": "0" * 64}, trajectory="orbit", fps=15)
    assert not out.exists()


def test_a_name_at_the_limit_is_imported(src, tmp_path):
    name = "m" * 30 + "é"  # 32 bytes
    res = runner.invoke(app, ["import-videos", str(src), "--method", name, "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / name / "a_panda_dancing" / "manifest.json").is_file()

"""`fourdfy power --out` and `fourdfy audit --out` count a file as empty by its size, as `survey export` does
(`is_votes_file`): a file whose first line is blank but which holds more is not theirs, and `--overwrite` never
replaces it; a 0-byte file still is replaced."""

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy_helpers import one_error_line

runner = CliRunner()
# a votes CSV that starts with a blank line (pandas reads it the same): data, whatever its first line
BLANK_FIRST = ("\nrater_id,question_id,prompt_id,method_left,method_right,criterion,choice,is_attention_check,"
               "answered_at\nrater-00001,mav3d__a_panda_dancing,a_panda_dancing,mav3d,4dfy,appearance,right,false,\n")
KINDS = {"power": "a power table of `fourdfy power`", "audit": "an audit report of `fourdfy audit`"}


def _run(command, out, tmp_path):
    if command == "power":
        args = ["power", "--rate", "0.7", "--max-raters", "4", "--sims", "20", "--out", str(out)]
    else:
        args = ["audit", "--out", str(out), "--paper-dir", str(tmp_path / "paper")]
    return runner.invoke(app, [*args, "--overwrite"])


@pytest.mark.parametrize("command", ["power", "audit"])
@pytest.mark.parametrize("content", [BLANK_FIRST, "\r\n\n# my notes\n", "\n"], ids=["votes", "notes", "one-newline"])
def test_a_file_starting_with_a_blank_line_is_not_replaced(tmp_path, command, content):
    out = tmp_path / "file.csv"
    out.write_bytes(content.encode())
    line = one_error_line(_run(command, out, tmp_path))
    assert line == (f"error: --out {out} exists and is not {KINDS[command]}; it is never replaced, even with "
                    "--overwrite: move it or choose another --out")
    assert out.read_bytes() == content.encode()
    assert not (tmp_path / "paper").exists()


@pytest.mark.parametrize("command", ["power", "audit"])
def test_a_zero_byte_file_is_still_replaced(tmp_path, command):
    out = tmp_path / "file.csv"
    out.touch()
    res = _run(command, out, tmp_path)
    assert res.exit_code == 0, res.output
    first = out.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("n_raters,judgments,") if command == "power" else first.startswith("# Audit of")


@pytest.mark.parametrize("content", [BLANK_FIRST, "\n"], ids=["votes", "one-newline"])
def test_audit_paper_dir_keeps_a_file_of_its_names_that_starts_blank(tmp_path, content):
    """`audit --paper-dir` writes the published tables under fixed names; one of those names holding a file that
    starts with a blank line (not 0 bytes) is another file, kept even with --overwrite, as with `--out`."""
    from userstudy.published import REPORTED_P_CSV, check_csv_targets

    paper = tmp_path / "paper"
    paper.mkdir()
    (paper / REPORTED_P_CSV).write_bytes(content.encode())
    res = runner.invoke(app, ["audit", "--out", str(tmp_path / "audit.md"), "--paper-dir", str(paper), "--overwrite"])
    assert res.exit_code != 0 and REPORTED_P_CSV in one_error_line(res)
    assert (paper / REPORTED_P_CSV).read_bytes() == content.encode()
    (paper / REPORTED_P_CSV).write_bytes(b"")  # 0 bytes: empty, so replaced
    assert len(check_csv_targets(paper, overwrite=True)) >= 2

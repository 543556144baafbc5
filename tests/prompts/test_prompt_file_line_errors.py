"""A file that is no prompt file (README.md given to --prompts) fails on its first line without letters or digits:
the error names the file and that line, not only the prompt (before: `error: prompt '```' has no letters or
digits`)."""

import pytest
from typer.testing import CliRunner

from prompts import PromptFileError, load_prompts

README_LIKE = "# fourdfy-bench\n\nReproduction and evaluation suite.\n\n```bash\nmake repro\n```\n"
"""Line 7 is the fence that closes the code block: the first with no letter or digit (the opening one has `bash`)."""


def test_the_error_names_the_file_and_the_line(tmp_path):
    notes = tmp_path / "README.md"
    notes.write_text(README_LIKE)
    with pytest.raises(PromptFileError) as err:
        load_prompts(notes)
    assert str(err.value) == (f"{notes}:7: prompt '```' has no letters or digits (a prompt file has one prompt per "
                              "line; '#' starts a comment)")


def test_lines_are_counted_across_comments_blanks_and_a_byte_order_mark(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_bytes(b"\xef\xbb\xbf# mine\r\n\r\nA cat.\r\n  ...  \r\nA dog.\r\n")
    with pytest.raises(PromptFileError, match=r"mine\.txt:4: prompt '\.\.\.' has no letters or digits"):
        load_prompts(mine)


@pytest.mark.parametrize("command", [["sweep", "--methods", "4dfy", "--runs", "RUNS", "--dry-run",
                                      "--prompts-file", "FILE"],
                                     ["import-videos", "SRC", "--method", "mav3d", "--out", "OUT",
                                      "--prompts", "FILE"]])
def test_the_commands_name_the_file_and_the_line(tmp_path, command):
    from pipelines.cli import app

    notes = tmp_path / "README.md"
    notes.write_text(README_LIKE)
    (tmp_path / "src").mkdir()
    args = [{"FILE": str(notes), "RUNS": str(tmp_path / "runs"), "SRC": str(tmp_path / "src"),
             "OUT": str(tmp_path / "out")}.get(a, a) for a in command]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert res.stderr.strip() == (f"error: {notes}:7: prompt '```' has no letters or digits (a prompt file has one "
                                  "prompt per line; '#' starts a comment)"), res.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("inside", ["\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x1e"])
def test_only_line_ends_split_prompts_not_other_unicode_breaks(tmp_path, inside):
    """One prompt per line, LF or CRLF (or CR): a NEL, line/paragraph separator, vertical tab, form feed or file
    separator inside a line stayed inside one prompt only in the docs; str.splitlines made two prompts of it."""
    from prompts import load_prompts

    path = tmp_path / "mine.txt"
    path.write_bytes(f"A panda waits{inside} then dances.\r\nA cat sings.\nA dog barks.\r".encode())
    table = load_prompts(path)
    assert len(table) == 3
    assert list(table.values())[0] == f"A panda waits{inside} then dances."
    assert list(table.values())[1:] == ["A cat sings.", "A dog barks."]

"""Helpers of the user-study tests (a uniquely named module, as tests/survey/survey_helpers.py explains)."""


def one_error_line(res) -> str:
    """The single `error:` line a refused command printed (exit status 2, nothing else on stderr)."""
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]

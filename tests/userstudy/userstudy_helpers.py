"""Helpers of the user-study tests (a uniquely named module, as tests/survey/survey_helpers.py explains)."""


def one_error_line(res) -> str:
    """The single `error:` line a refused command printed (exit status 2, nothing else on stderr)."""
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


IDEAL_PANEL = {"rater_icc": 0.0, "position_bias": 0.0, "careless_share": 0.0, "lapse": 0.0, "attention_checks": 0,
               "unanswered": 0.0}
"""PanelConfig settings of a panel without the imperfections its defaults simulate (heterogeneous, position-biased,
careless raters, checks, skips): a test that checks one effect starts from this panel and sets only that one."""


def ideal_panel(**settings):
    """A `PanelConfig` of `IDEAL_PANEL` with `settings` on top."""
    from userstudy.simulate import PanelConfig

    return PanelConfig(**{**IDEAL_PANEL, **settings})

"""A broken input file is one `error:` line naming it: a design that is not valid YAML (with the line and column,
not the parser's multi-line quote of the file), an empty or header-only `--rates` CSV."""

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy_helpers import one_error_line

runner = CliRunner()
BROKEN = "primary: 4dfy\ncomparisons: [mav3d, wo_3d\n"  # the bracket is never closed


@pytest.mark.parametrize("command", [["analyze", "--votes", "{votes}", "--out", "{out}"],
                                     ["simulate-votes", "--out", "{out}"],
                                     ["audit", "--out", "{out}"],
                                     ["survey", "build", "--artifacts", "{votes}", "--out", "{out}"]])
def test_a_design_that_is_not_yaml_is_one_line_with_line_and_column(tmp_path, command):
    design = tmp_path / "design.yaml"
    design.write_text(BROKEN)
    votes, out = tmp_path / "votes.csv", tmp_path / "out"
    votes.write_text("rater_id\n")
    args = [a.format(votes=votes, out=out) for a in command]
    line = one_error_line(runner.invoke(app, [*args, "--design", str(design)]))
    assert line == (f"error: {design}: cannot parse as YAML: line 3, column 1: expected ',' or ']', but got "
                    "'<stream end>' (while parsing a flow sequence at line 2, column 14); fix the file "
                    "(docs/userstudy.md, \"Design file\")")
    assert not out.exists()


def test_a_design_that_is_not_json_names_line_and_column(tmp_path):
    design = tmp_path / "design.json"
    design.write_text('{"primary": "4dfy",\n "comparisons": [mav3d]}\n')
    line = one_error_line(runner.invoke(app, ["audit", "--out", str(tmp_path / "a.md"), "--design", str(design)]))
    assert line == (f"error: {design}: cannot parse as JSON at line 2, column 18: Expecting value; fix the file "
                    "(docs/userstudy.md, \"Design file\")")


@pytest.mark.parametrize("content,what", [("", "is empty; give a CSV with the header comparison,rate[,criterion] and "
                                               "one row per comparison (or 'paper', or a number)"),
                                          ("comparison,rate\n", "has no rows (a header only); give a CSV with the "
                                           "header comparison,rate[,criterion] and one row per comparison")])
def test_an_empty_rates_csv_is_named(tmp_path, content, what):
    rates, out = tmp_path / "rates.csv", tmp_path / "votes.csv"
    rates.write_text(content)
    line = one_error_line(runner.invoke(app, ["simulate-votes", "--rates", str(rates), "--raters", "2",
                                              "--out", str(out)]))
    assert line == f"error: --rates {rates} {what}"
    assert not out.exists()

"""The captions, headers and plot title follow --alpha (the daggers and intervals always did), and a percentage
is never rounded to a unanimous-looking 0% or 100% (statistics review)."""

from __future__ import annotations

import math

import pandas as pd
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.stats import wilson
from userstudy.tables import _pct

runner = CliRunner()


def test_captions_and_headers_name_the_level_and_coverage_used(tmp_path):
    votes = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--out", str(votes), "--raters", "4", "--comparisons", "mav3d",
                              "--seed", "3"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "t"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--out", str(out), "--n-boot", "100", "--alpha", "0.2"])
    assert res.exit_code == 0, res.output
    md, tex, report = ((out / n).read_text() for n in ("table2.md", "table2.tex", "report.md"))
    assert "not significant at 0.2 after Holm correction over every comparison and criterion" in md
    assert "0.05" not in md and r"$p<0.2$" in tex and "p<0.05" not in tex
    assert "| Wilson 80% | rater bootstrap (BCa) 80% |" in report and "95%" not in report
    assert "[Wilson 80%]" in res.output
    # the intervals are 80% ones: the table's Wilson bounds are stats.wilson at alpha 0.2
    table = pd.read_csv(out / "table.csv")
    row = table[table.n > 0].iloc[0]
    assert math.isclose(row.ci_low, 100 * float(wilson(int(row.k), int(row.n), alpha=0.2)[0][0]), abs_tol=1e-3)  # table.csv: 4 decimals
    assert not math.isclose(row.ci_low, 100 * float(wilson(int(row.k), int(row.n), alpha=0.05)[0][0]), abs_tol=1e-3)


def test_percentages_at_the_ends_are_not_rounded_to_unanimity():
    assert _pct(100 * 199 / 200, True, "%", "†") == "99%"  # one judgment went the other way
    assert _pct(100 * 1 / 200, False, "%", "†") == "1%†"
    assert _pct(100.0, True, "%", "†") == "100%" and _pct(0.0, True, "%", "†") == "0%"
    assert _pct(100 * 2 / 3, True, "%", "†") == "67%"  # elsewhere, ordinary rounding

"""`fourdfy simulate-votes --tables table2 --comparisons single_stage` names single_stage as a comparison of table3,
outside the selected table2 (it said "not in the design"); one in no table is still "not in the design"."""

from __future__ import annotations

from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def test_simulate_votes_names_the_table_of_a_comparison_outside_the_selection(tmp_path):
    out = tmp_path / "v.csv"
    res = runner.invoke(app, ["simulate-votes", "--out", str(out), "--tables", "table2", "--comparisons",
                              "single_stage"])
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert line.startswith("error: comparison(s) not in the selected table(s) table2: single_stage (in table3); "
                           "select table3 too (--tables)"), line
    assert not out.exists()
    res = runner.invoke(app, ["simulate-votes", "--out", str(out), "--tables", "table2", "--comparisons",
                              "dreamfusion"])
    assert res.exit_code == 2 and "error: comparison(s) not in the design: dreamfusion" in res.output, res.output

"""`fourdfy analyze | audit | simulate-votes | power`: one votes file -> every table; clear errors."""

import json
import subprocess
import sys

import pandas as pd
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def test_commands_are_registered_and_light():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for name in ("analyze", "audit", "simulate-votes", "power"):
        assert name in res.output
    code = "import sys, pipelines.commands.userstudy; print(sorted(m for m in ('pandas', 'scipy', 'matplotlib', 'statsmodels') " \
           "if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_simulate_then_analyze(tmp_path):
    votes = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--out", str(votes), "--raters", "12", "--comparisons",
                              "mav3d,wo_3d", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert "SYNTHETIC" in res.output
    raw = pd.read_csv(votes, dtype=str, keep_default_na=False)
    assert raw.rater_id.str.startswith("synthetic-").all() and set(raw.source) == {"synthetic"}
    clip = tmp_path / "clip.csv"
    # a plug-in method clipscore also scored: no row shows it, so a note, and the tables go on
    clip.write_text("method,clip\nmav3d,33.9\n4dfy,34.2\nmy_plugin,30.0\n")
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--clip", str(clip), "--out", str(out),
                              "--n-boot", "200"])
    assert res.exit_code == 0, res.output
    assert "note: no row of the design shows my_plugin, so their CLIP scores are not in the tables" in res.output
    assert "SYNTHETIC DATA" in res.output and "mav3d" in res.output
    for name in ("table2.md", "table2.tex", "table2.csv", "table3.md", "table.csv", "metrics.json", "report.md",
                 "preference.png", "plot_preference.csv"):
        assert (out / name).is_file(), name
    assert "| MAV3D | 33.9 |" in (out / "table2.md").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["preference"]["wo_3d"]["overall"]["n"] > 0
    assert metrics["preference"]["hexplane"]["overall"]["n"] == 0  # not simulated: listed with n = 0


def test_analyze_bad_votes_fails_with_rows_and_writes_nothing(tmp_path):
    votes = tmp_path / "votes.csv"
    votes.write_text("rater_id,question_id,prompt_id,method_left,method_right,criterion,choice,"
                     "is_attention_check,answered_at\n"
                     "r1,q1,a_panda,4dfy,mav3d,appearance,left,false,\n"
                     "r1,q1,a_panda,4dfy,mav3d,apperance,left,false,\n"
                     "r1,q2,a_goat,4dfy,sora,overall,left,false,\n")
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--out", str(out)])
    assert res.exit_code == 2
    assert "unknown criterion" in res.output and "apperance" in res.output
    assert "method not in the design" in res.output and "sora" in res.output
    assert "a method of your own needs a design that lists it (--design" in res.output
    assert not out.exists()
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(tmp_path / "none.yaml"),
                              "--out", str(out)])
    assert res.exit_code == 2 and "design file not found" in res.output


def test_analyze_an_empty_votes_file_is_one_line_in_our_words(tmp_path):
    votes = tmp_path / "votes.csv"
    votes.write_text("")
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--out", str(out)])
    assert res.exit_code == 2 and not out.exists()
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {votes}: the votes file is empty; it needs a header line "
                                                   "with the columns rater_id,question_id,")
    assert "No columns to parse" not in res.output


def test_audit_command(tmp_path):
    out = tmp_path / "reports" / "audit.md"
    res = runner.invoke(app, ["audit", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "roughly on par" in res.output
    from userstudy.audit import CLAIMS

    shown = [line for line in res.output.splitlines() if line.startswith("contradicted: ")]
    assert shown
    for line in shown:  # a long quote is cut after a whole word, and marked; the report has it whole
        quotes = [line.removeprefix(f"contradicted: {c.where}: ") for c in CLAIMS]
        if not any(text == c.quote for text, c in zip(quotes, CLAIMS)):
            heads = [text.removesuffix(" ...") for text in quotes]
            assert any(head != text and c.quote.startswith(head) and c.quote[len(head)] == " "
                       for head, text, c in zip(heads, quotes, CLAIMS)), line
    assert f"{len(shown)} of {len(CLAIMS)} claims contradicted; each quote in full, and why: {out}" in res.output
    assert "0.3919" in out.read_text()
    assert {p.name for p in (tmp_path / "reports" / "paper").iterdir()} == {
        "cvpr2024_table2.csv", "cvpr2024_table3.csv", "arxiv_v1_table2.csv", "reported_pvalues.csv"}


def test_power_command(tmp_path):
    out = tmp_path / "power.csv"
    res = runner.invoke(app, ["power", "--rate", "0.6", "--prompts", "28", "--max-raters", "20", "--sims", "500",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "paper's chi-square test" in res.output and "rater-robust test" in res.output
    table = pd.read_csv(out)
    assert list(table.n_raters) == list(range(2, 21)) and table.synthetic.all()
    res = runner.invoke(app, ["power", "--rate", "0.5"])
    assert res.exit_code == 2 and "differ from 0.5" in res.output


def test_simulate_rates_from_a_file(tmp_path):
    rates = tmp_path / "rates.csv"
    rates.write_text("comparison,criterion,rate\nmav3d,motion,0.2\nmav3d,,0.9\n")
    votes = tmp_path / "v.csv"
    res = runner.invoke(app, ["simulate-votes", "--out", str(votes), "--rates", str(rates), "--comparisons",
                              "mav3d", "--raters", "40", "--icc", "0", "--careless", "0", "--checks", "0"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "res"
    metrics = tmp_path / "metrics" / "userstudy.json"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--out", str(out), "--n-boot", "100",
                              "--metrics", str(metrics)])
    assert res.exit_code == 0, res.output
    assert metrics.is_file() and not (out / "metrics.json").exists()
    t = pd.read_csv(out / "table.csv").set_index(["comparison", "criterion"])
    assert abs(t.loc[("mav3d", "motion"), "pct_primary"] - 20) < 5  # a row naming the criterion wins
    assert abs(t.loc[("mav3d", "overall"), "pct_primary"] - 90) < 4
    rates.write_text("comparison,rate\nmav3d,high\n")
    res = runner.invoke(app, ["simulate-votes", "--out", str(votes), "--rates", str(rates)])
    assert res.exit_code == 2 and "not a number" in res.output

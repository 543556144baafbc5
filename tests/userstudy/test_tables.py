"""Outputs of one analysis: paper-layout tables (Markdown, LaTeX, CSV), table.csv, metrics.json, plots."""

import json
import re
import shutil
import subprocess

import pandas as pd
import pytest

from userstudy.analysis import AnalysisConfig, analyze
from userstudy.simulate import simulate_votes
from userstudy.tables import ClipError, clip_outside, load_clip, write_outputs
from userstudy.votes import validate_votes
from userstudy_helpers import ideal_panel

REQUIRED = ["comparison", "criterion", "n", "k", "pct_primary", "chi2", "p_chi2", "p_binom", "ci_low", "ci_high",
            "p_holm", "significant"]


@pytest.fixture(scope="module")
def panel(paper_design):
    cfg = ideal_panel(rates={"mav3d": {"motion": 0.45, "text": 0.52}}, default_rate=0.8, rater_icc=0.05,
                      attention_checks=1, unanswered=0.02, seed=3)
    return simulate_votes(paper_design, cfg)


@pytest.fixture(scope="module")
def outputs(panel, paper_design, tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis")
    clip = out / "clip.csv"
    clip.write_text("method,clip,prompt_set\nmav3d,33.9,\n4dfy,34.2,mav3d_28\n4dfy,35.0,ablation_5\n"
                    "wo_3d_img,29.3,\nsingle_grid,25.5,\n")
    a = analyze(validate_votes(panel, paper_design), paper_design, AnalysisConfig(n_boot=300))
    paths = write_outputs(a, out / "res", source="votes.csv", clip=load_clip(clip))
    return a, out / "res", paths


def test_every_output_is_written(outputs):
    _, res, paths = outputs
    names = {p.name for p in paths} | {"report.md"}
    for stem in ("table2", "table3"):
        assert {f"{stem}.md", f"{stem}.tex", f"{stem}.csv"} <= names
    assert {"table.csv", "per_prompt.csv", "raters.csv", "agreement.csv", "metrics.json", "plot_preference.csv",
            "preference.png", "report.md"} <= names
    assert (res / "preference.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_csv_columns_and_values(outputs):
    a, res, _ = outputs
    t = pd.read_csv(res / "table.csv")
    assert set(REQUIRED) <= set(t.columns)
    assert len(t) == 40 and t["synthetic"].all()
    pd.testing.assert_series_equal(t["k"], a.table["k"], check_names=False)
    assert (t["p_holm"] >= t["p_chi2"]).all()


def test_markdown_layout_follows_the_paper(outputs):
    a, res, _ = outputs
    md = (res / "table2.md").read_text()
    assert md.startswith("> **SYNTHETIC DATA**")
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    assert lines[0] == "| Method | CLIP | AQ | SQ | MQ | TA | Overall |"
    labels = [ln.split(" | ")[0][2:] for ln in lines[1:]]
    assert labels == ["MAV3D", "4D-fy", "*Ablation Study*", "4D-fy", "w/o ∇L_3D/IMG", "w/o ∇L_3D", "w/o ∇L_IMG",
                      "w/o hybrid SDS", "w/ HexPlane"]
    cell = a.table[(a.table.comparison == "mav3d") & (a.table.criterion == "appearance")].iloc[0]
    mav3d = lines[1].split(" | ")
    assert mav3d[1] == "33.9" and mav3d[2].rstrip("†") == f"{cell.pct_primary:.0f}%"
    assert lines[2].split(" | ")[1] == "34.2" and lines[4].split(" | ")[1] == "35.0"  # CLIP per prompt set
    assert lines[6].split(" | ")[1] == "—"  # no CLIP given for wo_3d
    # † marks exactly the cells that are not significant after Holm.
    n_dagger = sum(ln.count("†") for ln in lines)
    t2 = a.table[a.table.comparison.isin(["mav3d", "wo_3d_img", "wo_3d", "wo_img", "wo_hybrid", "hexplane"])]
    assert n_dagger == (~t2.significant).sum()


def _latex_rows(tex: str) -> list[str]:
    body = tex[tex.index(r"\midrule"):tex.index(r"\bottomrule")]
    return [ln for ln in body.splitlines() if ln.endswith(r"\\")]


def test_latex_structure_and_compile(outputs, tmp_path):
    _, res, _ = outputs
    for stem in ("table2", "table3"):
        tex = (res / f"{stem}.tex").read_text()
        # Environments nest and close; braces balance; booktabs rules in order.
        stack = []
        for kind, env in re.findall(r"\\(begin|end)\{(\w+)\}", tex):
            if kind == "begin":
                stack.append(env)
            else:
                assert stack.pop() == env
        assert not stack
        unescaped = tex.replace(r"\{", "").replace(r"\}", "")
        assert unescaped.count("{") == unescaped.count("}")
        assert tex.index(r"\toprule") < tex.index(r"\midrule") < tex.index(r"\bottomrule")
        assert r"\begin{tabular}{lcccccc}" in tex
        # Every body row has 7 cells (or one \multicolumn{7}).
        for row in _latex_rows(tex):
            if row.startswith(r"\multicolumn{7}"):
                assert row.count("&") == 0
            else:
                assert row.count("&") - row.count(r"\&") == 6, row
        # No raw % outside comments, no raw _ outside math.
        for line in tex.splitlines():
            if line.startswith("%"):
                continue
            assert re.search(r"(?<!\\)%", line) is None, line
            text_only = re.sub(r"\$[^$]*\$", "", line)
            assert re.search(r"(?<!\\)_", text_only) is None, line
        assert "SYNTHETIC DATA" in tex
    pdflatex = shutil.which("pdflatex")
    if pdflatex:  # compile when a LaTeX engine is installed; the checks above always run
        doc = tmp_path / "doc.tex"
        doc.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                       f"\\input{{{(res / 'table2.tex').as_posix()}}}\n\\input{{{(res / 'table3.tex').as_posix()}}}\n"
                       "\\end{document}\n")
        run = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout[-2000:]
        assert (tmp_path / "doc.pdf").stat().st_size > 0


def test_metrics_json_is_hierarchical_and_plain(outputs):
    a, res, _ = outputs
    text = (res / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    m = json.loads(text)
    assert m["synthetic"] == 1
    cell = a.table[(a.table.comparison == "wo_img") & (a.table.criterion == "motion")].iloc[0]
    got = m["preference"]["wo_img"]["motion"]
    assert got["n"] == cell.n and got["pct_primary"] == pytest.approx(cell.pct_primary, rel=1e-5)
    assert got["significant"] in (0, 1)
    assert set(m["kappa"]) == {"appearance", "structure", "motion", "text", "overall"}
    assert m["data"]["raters_total"] == 26


def test_plot_data_long_format(outputs):
    a, res, _ = outputs
    p = pd.read_csv(res / "plot_preference.csv")
    assert len(p) == 2 * len(a.table) and set(p["interval"]) == {"wilson", "rater_bootstrap"}
    assert ((p["low"] <= p["pct_primary"]) & (p["pct_primary"] <= p["high"])).all()


def test_outputs_are_reproducible_and_path_free(panel, paper_design, outputs, tmp_path):
    a, res, paths = outputs
    again = write_outputs(analyze(validate_votes(panel, paper_design), paper_design, AnalysisConfig(n_boot=300)),
                          tmp_path / "again", source="votes.csv", clip=load_clip(res.parent / "clip.csv"))
    for p, q in zip(sorted(paths), sorted(again)):
        assert p.name == q.name and p.read_bytes() == q.read_bytes(), p.name
    for p in paths:
        if p.suffix != ".png":
            text = p.read_text()
            assert str(res.parent) not in text and "/tmp" not in text
            assert re.search(r"20\d\d-\d\d-\d\dT", text) is None  # no timestamps


def test_real_votes_carry_no_banner(tiny_votes, small_design, tmp_path):
    a = analyze(validate_votes(tiny_votes, small_design), small_design, AnalysisConfig(n_boot=200))
    write_outputs(a, tmp_path, source="votes.csv")
    for name in ("comparisons.md", "comparisons.tex", "report.md"):
        assert "SYNTHETIC" not in (tmp_path / name).read_text()
    assert not json.loads((tmp_path / "metrics.json").read_text())["synthetic"]


def test_clip_file_errors(tmp_path, paper_design):
    bad = tmp_path / "clip.csv"
    bad.write_text("method,clip\nmav3d,abc\nghost,30\nmav3d,31\n")
    with pytest.raises(ClipError) as info:
        load_clip(bad)
    msg = str(info.value)
    assert "clip is not a finite number" in msg and "more than one CLIP value" in msg and "ghost" not in msg
    # an infinity is no CLIP score either (it printed as "inf" in Table 2)
    bad.write_text("method,clip\n4dfy,inf\nmav3d,-Infinity\nwo_3d,31\n")
    with pytest.raises(ClipError) as info:
        load_clip(bad)
    assert "clip is not a finite number" in str(info.value) and "4dfy" in str(info.value) \
        and "mav3d" in str(info.value) and "wo_3d" not in str(info.value)
    # a method the design does not show is no error (clipscore scores every artifact), only not reported
    bad.write_text("method,clip\nmav3d,31\nghost,30\n")
    assert clip_outside(load_clip(bad), paper_design) == ["ghost"]
    bad.write_text("name,score\n")
    with pytest.raises(ClipError, match="missing column"):
        load_clip(bad)
    bad.write_bytes("method,clip\nmav3d,33.9 \u00b10.1\n".encode("latin-1"))
    with pytest.raises(ClipError, match=r"clip\.csv: cannot read as a UTF-8 CSV"):
        load_clip(bad)


def test_plot_of_a_unanimous_cell(outputs, tmp_path):
    """A cell at 100% whose Wilson bound rounds to a hair below 100 (small panels) still plots."""
    import dataclasses

    from userstudy.plots import plot_png

    a, _, _ = outputs
    t = a.table.copy()
    t.loc[0, ["pct_primary", "ci_high", "boot_low", "boot_high"]] = [100.0, 100.0 - 1e-12, 100.0, 100.0]
    png = plot_png(dataclasses.replace(a, table=t), tmp_path / "p.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

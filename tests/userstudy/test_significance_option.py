"""`analyze --significance cluster`: the daggers and Holm on the rater-robust test instead of the paper's
chi-square, which takes every judgment as independent and so over-rejects when raters differ."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.analysis import AnalysisConfig, ExclusionRule, analyze, check_config
from userstudy.simulate import simulate_votes, write_votes
from userstudy.tables import holm_floor_lines, raters_for_holm
from userstudy.votes import validate_votes
from userstudy_helpers import ideal_panel, one_error_line

runner = CliRunner()
KEEP = ExclusionRule(max_failed_share=1.0)


@pytest.fixture(scope="module")
def split_panel(paper_design):
    """Few raters who disagree strongly (icc 0.5): many judgments each, so the chi-square over judgments finds
    significance that the raters, as clusters, do not support."""
    cfg = ideal_panel(n_raters=4, default_rate=0.62, rater_icc=0.5, seed=5, comparisons=("mav3d", "wo_3d"))
    return simulate_votes(paper_design, cfg)


def _analyse(votes, design, test):
    return analyze(validate_votes(votes, design), design,
                   AnalysisConfig(n_boot=200, exclusion=KEEP, significance=test)).table


def _holm(p: pd.Series) -> np.ndarray:
    """statsmodels' Holm over the cells that have a p (NaN cells stay out, as in the analysis)."""
    out = np.full(len(p), np.nan)
    ok = p.notna().to_numpy()
    out[ok] = multipletests(p[ok].to_numpy(), method="holm")[1]
    return out


def test_cluster_adjusts_the_rater_robust_p_and_chi2_the_paper_one(split_panel, paper_design):
    chi = _analyse(split_panel, paper_design, "chi2")
    clu = _analyse(split_panel, paper_design, "cluster")
    np.testing.assert_allclose(chi.p_holm, _holm(chi.p_chi2), rtol=1e-12)
    np.testing.assert_allclose(clu.p_holm, _holm(clu.p_cluster), rtol=1e-12)
    assert (clu.significant == (clu.p_holm < 0.05)).all()
    assert (clu.significant_unadjusted == (clu.p_cluster < 0.05)).all()
    # the same statistics otherwise: only what the daggers rest on changes
    pd.testing.assert_frame_equal(chi.drop(columns=["p_holm", "significant", "significant_unadjusted"]),
                                  clu.drop(columns=["p_holm", "significant", "significant_unadjusted"]))
    # the point of the option: cells the judgment-level test calls significant that the raters do not support
    assert (chi.significant & ~clu.significant).any()


def test_the_tables_name_the_test_they_mark(split_panel, paper_design, tmp_path):
    votes = write_votes(split_panel, tmp_path / "votes.csv")
    for test, words in (("chi2", "chi-square test as in the paper"), ("cluster", "rater-robust test")):
        out = tmp_path / test
        res = runner.invoke(app, ["analyze", "--votes", str(votes), "--out", str(out), "--n-boot", "200",
                                  "--max-failed-share", "1", "--significance", test])
        assert res.exit_code == 0, res.output
        md = (out / "table2.md").read_text()
        assert words in md
        assert ("rater-robust" in md) == (test == "cluster")
        assert ("rater-robust test, exact sign flips over raters" in (out / "table2.tex").read_text()) == (
            test == "cluster")
        report = (out / "report.md").read_text()
        assert ("Holm's correction runs over every cell of this table (the rater-robust p-values"
                in report) == (test == "cluster")
        assert json.loads((out / "metrics.json").read_text())["significance"] == test
        # 4 raters: a p of at least 2 x 0.5^4 never passes Holm, and the cluster report says why
        assert ("No cell can be significant" in report) == (test == "cluster")
        table = pd.read_csv(out / "table.csv")
        expect = _holm(table.p_cluster if test == "cluster" else table.p_chi2)
        np.testing.assert_allclose(table.p_holm, expect, rtol=1e-5)  # table.csv keeps 6 digits
    # the daggers differ where the tests do
    daggers = {test: (tmp_path / test / "table2.md").read_text().count("†") for test in ("chi2", "cluster")}
    assert daggers["chi2"] < daggers["cluster"]


@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.125])
def test_raters_for_holm_against_the_closed_form(alpha):
    for cells in range(1, 80):
        need = raters_for_holm(cells, alpha)
        assert need == math.floor(math.log2(2 * cells / alpha)) + 1
        assert 2 * 0.5**need < alpha / cells <= 2 * 0.5 ** (need - 1)
    assert raters_for_holm(40, 0.05) == 11 and raters_for_holm(5, 0.05) == 8  # the documented figures


def test_the_holm_floor_note_follows_the_raters(split_panel, paper_design):
    """Too few raters for any cell (4): the note, and indeed nothing significant; a panel with raters enough:
    no note, and strong preferences pass."""
    few = analyze(validate_votes(split_panel, paper_design), paper_design,
                  AnalysisConfig(n_boot=100, exclusion=KEEP, significance="cluster"))
    lines = holm_floor_lines(few)
    cells = int(few.table["p_cluster"].notna().sum())
    assert lines and f"needs at least {raters_for_holm(cells, 0.05)} raters; the most any cell has here is 4" in lines[0]
    assert not few.table["significant"].any()
    many = ideal_panel(n_raters=14, default_rate=0.95, seed=6, comparisons=("mav3d", "wo_3d"))
    enough = analyze(validate_votes(simulate_votes(paper_design, many), paper_design), paper_design,
                     AnalysisConfig(n_boot=100, exclusion=KEEP, significance="cluster"))
    assert holm_floor_lines(enough) == [] and enough.table["significant"].any()
    chi2 = analyze(validate_votes(split_panel, paper_design), paper_design, AnalysisConfig(n_boot=100, exclusion=KEEP))
    assert holm_floor_lines(chi2) == []  # the paper's test: reports stay as they were


def test_an_unknown_test_is_refused_before_the_votes_are_read(tmp_path):
    res = runner.invoke(app, ["analyze", "--votes", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"),
                              "--significance", "t-test"])
    line = one_error_line(res)
    assert "--significance must be one of chi2, cluster, got 't-test'" in line
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="significance must be one of"):
        check_config(AnalysisConfig(significance="fisher"))

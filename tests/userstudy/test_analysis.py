"""The analysis on a hand-made panel (counts checked by hand) and on simulated panels."""

import math

import numpy as np
import pandas as pd
import pytest

from userstudy.analysis import AnalysisConfig, ExclusionRule, analyze
from userstudy.simulate import PanelConfig, simulate_votes
from userstudy.votes import CRITERIA, validate_votes
from userstudy_helpers import ideal_panel

KEEP_ALL = AnalysisConfig(n_boot=500, exclusion=ExclusionRule(max_failed_share=1.0))


def _cell(analysis, comp, crit):
    t = analysis.table
    return t[(t.comparison == comp) & (t.criterion == crit)].iloc[0]


def test_counts_by_hand_everyone_kept(tiny_votes, small_design):
    a = analyze(validate_votes(tiny_votes, small_design), small_design, KEEP_ALL)
    app, mot, wo3d = _cell(a, "mav3d", "appearance"), _cell(a, "mav3d", "motion"), _cell(a, "wo_3d", "appearance")
    assert (app.n, app.k, app.raters, app.prompts, app.n_unanswered) == (6, 4, 3, 2, 0)
    assert (mot.n, mot.k, mot.n_unanswered) == (5, 3, 1)  # the skipped sub-question is not in n
    assert (wo3d.n, wo3d.k) == (3, 3)
    assert app.pct_primary == pytest.approx(400 / 6)
    assert app.chi2 == pytest.approx(2 * (4 - 3) ** 2 / 3)
    # The authors' template: unanswered counted in N -> E = 6 / 2 for motion.
    assert mot.chi2_template == pytest.approx(2 * (3 - 3) ** 2 / 3)
    assert app.left_share == pytest.approx(4 / 6)  # r1 q1, r2 q1, r1 q2, r3 q2 chose left
    # Cells without votes are listed, not dropped, and stay out of the Holm family.
    empty = _cell(a, "wo_3d", "motion")
    assert empty.n == 0 and math.isnan(empty.p_chi2) and math.isnan(empty.p_holm) and not empty.significant
    assert a.summary["unanswered"] == 1 and a.summary["raters_excluded"] == 0


def test_failed_attention_check_excludes_the_rater(tiny_votes, small_design):
    a = analyze(validate_votes(tiny_votes, small_design), small_design, AnalysisConfig(n_boot=500))
    r = a.raters.set_index("rater_id")
    assert list(r["excluded"]) == [False, False, True]
    assert "failed 1 of 1" in r.loc["r3", "reason"]
    app = _cell(a, "mav3d", "appearance")
    assert (app.n, app.k, app.raters) == (4, 3, 2)
    assert a.summary["raters_excluded"] == 1 and a.summary["judgments_excluded"] == 5
    # A rule that tolerates one failure keeps r3.
    lenient = AnalysisConfig(n_boot=500, exclusion=ExclusionRule(max_failed=1, max_failed_share=1.0))
    b = analyze(validate_votes(tiny_votes, small_design), small_design, lenient)
    assert not b.raters["excluded"].any()


def test_unanswered_check_counts_only_when_asked(tiny_votes, small_design):
    raw = tiny_votes.copy()
    raw.loc[(raw.rater_id == "r3") & (raw.is_attention_check == "true"), "choice"] = "none"
    v = validate_votes(raw, small_design)
    assert not analyze(v, small_design, AnalysisConfig(n_boot=500)).raters["excluded"].any()
    strict = AnalysisConfig(n_boot=500, exclusion=ExclusionRule(unanswered_fails=True))
    assert analyze(v, small_design, strict).raters["excluded"].sum() == 1


def test_per_prompt_adds_up_and_agreement(tiny_votes, small_design):
    a = analyze(validate_votes(tiny_votes, small_design), small_design, KEEP_ALL)
    pp = a.per_prompt
    sums = pp.groupby(["comparison", "criterion"])[["n", "k", "n_unanswered"]].sum()
    for r in a.table[a.table.n > 0].itertuples():
        assert tuple(sums.loc[(r.comparison, r.criterion)]) == (r.n, r.k, r.n_unanswered)
    # Appearance: q1 (3 for 4D-fy, 0 other), q2 (1, 2), q3 (3, 0); 3 ratings each.
    table = np.array([[3, 0], [1, 2], [3, 0]], dtype=float)
    p_j = table.sum(0) / table.sum()
    p_i = ((table**2).sum(1) - 3) / 6
    want = (p_i.mean() - (p_j**2).sum()) / (1 - (p_j**2).sum())
    ag = a.agreement.set_index("criterion")
    assert ag.loc["appearance", "kappa"] == pytest.approx(want)
    assert ag.loc["appearance", "subjects_used"] == 3
    # Motion: q1 has 2 ratings (one skipped), q2 has 3: only the modal count is used and reported.
    assert ag.loc["motion", "subjects"] == 2 and ag.loc["motion", "subjects_used"] == 1


@pytest.fixture(scope="module")
def simulated(paper_design):
    cfg = PanelConfig(rates={"mav3d": {"motion": 0.41, "text": 0.52, "appearance": 0.92}}, default_rate=0.7,
                      rater_icc=0.05, position_bias=0.15, careless_share=0.1, lapse=0.02, attention_checks=2,
                      unanswered=0.02, seed=11)
    raw = simulate_votes(paper_design, cfg)
    return raw, analyze(validate_votes(raw, paper_design), paper_design, AnalysisConfig(n_boot=400))


def test_chi2_column_equals_the_authors_formula(simulated):
    _, a = simulated
    t = a.table
    assert len(t) == 8 * len(CRITERIA) and (t.n > 0).all()
    for r in t.itertuples():
        e = r.n / 2
        chi2 = 2 * (r.k - e) ** 2 / e
        assert r.chi2 == pytest.approx(chi2, rel=1e-12, abs=1e-12)
        assert r.p_chi2 == pytest.approx(math.erfc(math.sqrt(chi2 / 2)), rel=1e-9, abs=1e-300)
        assert r.ci_low <= r.pct_primary <= r.ci_high and r.boot_low <= r.pct_primary <= r.boot_high


def test_holm_never_rejects_more_than_unadjusted(paper_design):
    for seed in range(4):
        cfg = ideal_panel(n_raters=8, default_rate=0.58, rater_icc=0.05, seed=seed)
        v = validate_votes(simulate_votes(paper_design, cfg), paper_design)
        t = analyze(v, paper_design, AnalysisConfig(n_boot=200)).table
        assert (t.p_holm >= t.p_chi2 - 1e-15).all()
        assert t.significant.sum() <= t.significant_unadjusted.sum()
        assert (t.significant <= t.significant_unadjusted).all()


def test_analysis_is_deterministic_given_the_seed(simulated, paper_design):
    raw, a = simulated
    v = validate_votes(raw, paper_design)
    b = analyze(v, paper_design, AnalysisConfig(n_boot=400))
    pd.testing.assert_frame_equal(a.table, b.table)
    c = analyze(v, paper_design, AnalysisConfig(n_boot=400, seed=1))
    assert not np.allclose(a.table.boot_low, c.table.boot_low)
    pd.testing.assert_frame_equal(a.table.drop(columns=["boot_low", "boot_high"]),
                                  c.table.drop(columns=["boot_low", "boot_high"]))

"""Cells where every rater has the same rate (unanimous cells): the rater bootstrap has nothing to resample, so a
rater-level interval and p stand in, never a zero-width "95%" interval or the independent-judgments binomial p."""

import numpy as np
import pytest
from scipy.stats import binomtest

from userstudy import stats
from userstudy.analysis import AnalysisConfig, analyze
from userstudy.design import design_from_dict
from userstudy.simulate import simulate_votes
from userstudy.tables import report_markdown
from userstudy.votes import validate_votes
from userstudy_helpers import ideal_panel


def exact_interval(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Clopper-Pearson, as scipy computes it (an independent reference)."""
    ci = binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="exact")
    return ci.low, ci.high


@pytest.mark.parametrize("raters", [2, 5, 26])
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_a_unanimous_panel_gets_clopper_pearson_over_its_raters(raters, alpha):
    rng = np.random.default_rng(0)
    n = rng.integers(1, 9, raters)  # raters answered different numbers of judgments: still R agreeing raters
    lo, hi = stats.cluster_bootstrap(n, n, 500, np.random.default_rng(1), alpha=alpha)
    assert (lo, hi) == pytest.approx(exact_interval(raters, raters, alpha), abs=1e-12)
    assert lo < hi  # never a point
    lo, hi = stats.cluster_bootstrap(np.zeros(raters), n, 500, np.random.default_rng(1), alpha=alpha)
    assert (lo, hi) == pytest.approx(exact_interval(0, raters, alpha), abs=1e-12)


def test_26_unanimous_raters_give_the_documented_interval():
    lo, hi = stats.cluster_bootstrap(np.full(26, 5), np.full(26, 5), 2000, np.random.default_rng(0))
    assert round(100 * lo, 1) == 86.8 and hi == 1.0


def test_raters_at_one_rate_between_0_and_1_get_the_wilson_interval_of_their_judgments():
    k, n = np.array([3, 3, 6]), np.array([5, 5, 10])  # every rater at 0.6
    lo, hi = stats.cluster_bootstrap(k, n, 500, np.random.default_rng(0))
    wlo, whi = stats.wilson([12], [20])
    assert (lo, hi) == (wlo[0], whi[0]) and lo < 0.6 < hi


@pytest.mark.parametrize("raters", [2, 3, 10, 26, 60])
def test_the_rater_robust_p_of_a_unanimous_panel_is_the_sign_test_over_raters(raters):
    n = np.full(raters, 5)
    want = binomtest(raters, raters, 0.5).pvalue
    assert stats.signflip_p(n, n) == pytest.approx(want, rel=1e-12)
    assert stats.signflip_p(np.zeros(raters), n) == pytest.approx(want, rel=1e-12)


def test_the_sign_test_counts_the_raters_present_in_each_row():
    # shape (panels, clusters): a rater with n = 0 is absent, so row 0 has 3 raters and row 1 has 4
    k = np.array([[4, 4, 4, 0], [2, 3, 1, 5]])
    n = np.array([[4, 4, 4, 0], [2, 3, 1, 5]])
    assert stats.signflip_p(k, n) == pytest.approx([binomtest(3, 3).pvalue, binomtest(4, 4).pvalue], rel=1e-12)


def test_a_unanimous_cell_of_an_analysis_gets_a_rater_level_interval_and_p():
    """The reproduction: a comparison every simulated rater prefers the primary on (rate 1), 26 raters. Before the
    fix its rater bootstrap interval was 100.0-100.0 and its rater-robust p 2 * 0.5^(judgments)."""
    design = design_from_dict({"primary": "4dfy", "comparisons": ["wo_hybrid", "mav3d"], "n_prompts": 5})
    panel = simulate_votes(design, ideal_panel(rates={"wo_hybrid": 1.0, "mav3d": 0.7}, n_raters=26, seed=1))
    a = analyze(validate_votes(panel, design), design, AnalysisConfig(n_boot=300))
    t = a.table.set_index(["comparison", "criterion"])
    cell = t.loc[("wo_hybrid", "appearance")]
    assert cell["k"] == cell["n"] == 26 * 5 and cell["raters"] == 26
    assert cell["boot_high"] > cell["boot_low"]
    low, high = exact_interval(26, 26)
    assert (cell["boot_low"], cell["boot_high"]) == pytest.approx((100 * low, 100 * high), abs=1e-9)
    assert cell["p_cluster"] == pytest.approx(binomtest(26, 26).pvalue, rel=1e-12)
    assert cell["p_cluster"] > 1e-9 > cell["p_binom"]  # raters, not 130 independent judgments
    # the mixed comparison keeps its bootstrap interval (not the fallback)
    mixed = t.loc[("mav3d", "appearance")]
    assert 0 < mixed["k"] < mixed["n"] and (mixed["boot_low"], mixed["boot_high"]) != (mixed["ci_low"],
                                                                                        mixed["ci_high"])
    # no cell of the table has a zero-width rater interval
    assert (a.table["boot_high"] > a.table["boot_low"]).all()
    report = report_markdown(a, "votes.csv", [])
    line = next(ln for ln in report.splitlines() if ln.startswith("Every rater had the same rate"))
    assert "wo_hybrid appearance" in line and "mav3d" not in line
    assert "| wo_hybrid | appearance | 130 | 130 | 100.0 | " in report
    assert f"| {100 * low:.1f}–100.0 |" in report


def test_a_report_without_such_cells_has_no_such_line():
    design = design_from_dict({"primary": "4dfy", "comparisons": ["mav3d"], "n_prompts": 5})
    panel = simulate_votes(design, ideal_panel(rates={"mav3d": 0.7}, n_raters=8, seed=2))
    a = analyze(validate_votes(panel, design), design, AnalysisConfig(n_boot=300))
    assert "Every rater had the same rate" not in report_markdown(a, "votes.csv", [])

"""Power analysis: simulation against the exact binomial power, and the rater-robust test's level."""

import math

import numpy as np
import pandas as pd
import pytest

from userstudy import stats
from userstudy.power import PowerConfig, power_table, raters_needed
from userstudy.simulate import rater_rates


def exact_power_chi2(rate: float, n: int, alpha: float = 0.05) -> float:
    """P(the paper's chi-square test rejects) when k ~ Binomial(n, rate), summed exactly."""
    total = 0.0
    for k in range(n + 1):
        chi2 = (2 * k - n) ** 2 / n
        if math.erfc(math.sqrt(chi2 / 2)) < alpha:
            log_pmf = (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                       + k * math.log(rate) + (n - k) * math.log(1 - rate))
            total += math.exp(log_pmf)
    return total


def test_simulated_power_matches_exact_power():
    cfg = PowerConfig(rate=0.6, prompts=28, min_raters=3, max_raters=12, sims=3000, seed=1)
    t = power_table(cfg)
    exact = np.array([exact_power_chi2(0.6, 28 * r) for r in t.n_raters])
    assert np.abs(t.power_chi2 - exact).max() < 0.035
    assert np.abs(t.power_approx - exact).max() < 0.06
    want = next(r for r in range(2, 100) if exact_power_chi2(0.6, 28 * r) >= 0.8)
    assert want == 7  # "how many raters does a 60% preference need for 80% power?" (28 prompts, raters alike)
    assert abs(raters_needed(t, "power_chi2", 0.8) - want) <= 1


def test_ablation_sized_cells_need_more_raters():
    t = power_table(PowerConfig(rate=0.6, prompts=5, min_raters=30, max_raters=50, sims=1500, seed=2))
    exact = next(r for r in range(2, 200) if exact_power_chi2(0.6, 5 * r) >= 0.8)
    assert 35 <= exact <= 45
    assert abs(raters_needed(t, "power_chi2", 0.8) - exact) <= 2


def test_heterogeneity_costs_raters_for_the_valid_test():
    base = dict(rate=0.6, prompts=28, min_raters=4, max_raters=40, sims=800, seed=3)
    alike = raters_needed(power_table(PowerConfig(**base)), "power_cluster", 0.8)
    differ = raters_needed(power_table(PowerConfig(**base, rater_icc=0.1)), "power_cluster", 0.8)
    assert alike is not None and differ is not None and differ > alike + 5


def test_cluster_test_keeps_its_level_when_the_chi2_does_not():
    rng = np.random.default_rng(4)
    p_r = rater_rates(rng, 0.5, 0.2, (2000, 26))
    n = np.full((2000, 26), 28)
    k = rng.binomial(n, p_r)
    _, p_chi2 = stats.chisquare_half(k.sum(1), n.sum(1))
    p_cl = stats.signflip_p_many(k, n)
    assert np.mean(p_chi2 < 0.05) > 0.3  # independence assumed: far too many false positives
    assert np.mean(p_cl < 0.05) < 0.075


@pytest.mark.parametrize("raters,per_rater", [(2, 1), (2, 5), (3, 5), (4, 28), (6, 1), (6, 5), (8, 5), (12, 28)])
def test_the_cluster_test_keeps_its_level_in_small_panels(raters, per_rater):
    """Under H0 the rater-level test is exact: it rejects at most alpha of panels, however small (the cluster Wald
    test it replaced rejected about 25% of 2 raters of 5 judgments before its fallbacks), and below 6 raters never
    (its smallest p is 2 x 0.5^raters)."""
    rng = np.random.default_rng(5)
    n = np.full((20000, raters), per_rater)
    k = rng.binomial(n, 0.5)
    rejected = np.mean(stats.signflip_p_many(k, n) < 0.05)
    assert rejected <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / len(k))
    if raters < 6:
        assert rejected == 0
    np.testing.assert_allclose(stats.signflip_p_many(k[:200], n[:200]), stats.signflip_p(k[:200], n[:200]),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("raters,per_rater,rate", [(12, 5, 0.7), (20, 28, 0.6), (25, 200, 0.56)])
def test_signflip_below_decides_as_the_exact_p_does(raters, per_rater, rate):
    """The power simulation's decisions against `signflip_p` itself, with Hoeffding's bound (the shortcut) checked
    to lie above every exact p, on panels from clear to near the level."""
    rng = np.random.default_rng(per_rater)
    n = rng.binomial(per_rater, 0.9, (300, raters))
    k = rng.binomial(n, rater_rates(rng, rate, 0.05, (300, raters)))
    exact = stats.signflip_p(k, n)
    margin = 2 * k - n
    bound = 2 * np.exp(-margin.sum(1).astype(float) ** 2 / (2 * (margin.astype(float) ** 2).sum(1)))
    assert (exact <= bound * (1 + 1e-12)).all()
    for level in (0.05, 0.01, 0.05 / 40):
        np.testing.assert_array_equal(stats.signflip_below(k, n, level), exact < level)
    assert 0 < np.mean(exact < 0.05) < 1  # both kinds of panel are there
    assert (bound < 0.05).any()  # and the shortcut settles some


def test_raters_needed_semantics():
    t = pd.DataFrame({"n_raters": [2, 3, 4, 5, 6], "p": [0.5, 0.81, 0.79, 0.85, 0.9]})
    assert raters_needed(t, "p", 0.8) == 5  # from 5 on it stays above
    assert raters_needed(t, "p", 0.95) is None


@pytest.mark.parametrize("kwargs,message", [
    ({"rate": 0.5}, "differ from 0.5"), ({"min_raters": 1}, "min_raters"), ({"rater_icc": 1.0}, "rater_icc"),
])
def test_bad_power_questions(kwargs, message):
    with pytest.raises(ValueError, match=message):
        power_table(PowerConfig(**kwargs))

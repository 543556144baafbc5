"""Statistics against independent re-implementations (formulas written out here, no scipy/statsmodels)."""

import itertools
import math

import numpy as np
import pytest

from userstudy import stats


def paper_chi2(k: int, n: int) -> tuple[float, float]:
    """The authors' formula: chi2 = 2 (O - E)^2 / E with E = n / 2, df 1; P(chi2_1 > x) = erfc(sqrt(x / 2))."""
    e = n / 2
    chi2 = 2 * (k - e) ** 2 / e
    return chi2, math.erfc(math.sqrt(chi2 / 2))


def wilson_by_formula(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def binom_two_sided(k: int, n: int) -> float:
    pmf = [math.comb(n, i) / 2**n for i in range(n + 1)]
    return min(1.0, sum(q for q in pmf if q <= pmf[k] * (1 + 1e-7)))


CASES = [(0, 1), (1, 2), (3, 4), (23, 26), (300, 728), (379, 728), (669, 728), (196, 442), (230, 442),
         (130, 130), (88, 130), (0, 130)]


@pytest.mark.parametrize("k,n", CASES)
def test_chisquare_is_the_paper_formula(k, n):
    chi2, p = stats.chisquare_half([k], [n])
    want_chi2, want_p = paper_chi2(k, n)
    assert chi2[0] == pytest.approx(want_chi2, rel=1e-12, abs=1e-12)
    assert p[0] == pytest.approx(want_p, rel=1e-9, abs=1e-300)


def test_chisquare_vectorised_and_empty_cells():
    rng = np.random.default_rng(1)
    n = rng.integers(1, 800, size=200)
    k = rng.integers(0, n + 1)
    chi2, p = stats.chisquare_half(k, n)
    for i in range(200):
        assert p[i] == pytest.approx(paper_chi2(int(k[i]), int(n[i]))[1], rel=1e-9, abs=1e-300)
    chi2, p = stats.chisquare_half([0, 5], [0, 10])
    assert np.isnan(chi2[0]) and np.isnan(p[0]) and p[1] == 1.0


@pytest.mark.parametrize("k,n", [(1, 1), (3, 10), (23, 26), (379, 728), (130, 130), (0, 5)])
def test_wilson_by_formula(k, n):
    lo, hi = stats.wilson([k], [n])
    want = wilson_by_formula(k, n)
    assert lo[0] == pytest.approx(want[0], abs=1e-12) and hi[0] == pytest.approx(want[1], abs=1e-12)


@pytest.mark.parametrize("k,n", [(0, 5), (3, 10), (7, 20), (20, 26), (13, 26)])
def test_binomial_exact(k, n):
    assert stats.binom_p([k], [n])[0] == pytest.approx(binom_two_sided(k, n), rel=1e-9)


def holm_by_hand(p):
    p = np.asarray(p, dtype=float)
    order = np.argsort(p)
    m = len(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def test_holm_by_hand_and_never_more_rejections():
    rng = np.random.default_rng(2)
    for _ in range(50):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 40)) ** 2
        adj = stats.holm(p)
        assert np.allclose(adj, holm_by_hand(p))
        assert (adj >= p - 1e-15).all()
        assert (adj < 0.05).sum() <= (p < 0.05).sum()
    adj = stats.holm([0.01, np.nan, 0.04])
    assert np.isnan(adj[1]) and np.allclose(adj[[0, 2]], [0.02, 0.04])


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(5)
    for p in (rng.uniform(0, 1, 40), rng.uniform(0, 0.05, 7), np.array([0.3, 0.01, 0.3, 0.02, 1.0]), [0.5]):
        assert np.allclose(stats.holm(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-15)


def fleiss_by_hand(table):
    table = np.asarray(table, dtype=float)
    n = table.sum(1)[0]
    p_j = table.sum(0) / table.sum()
    p_i = ((table**2).sum(1) - n) / (n * (n - 1))
    pe = (p_j**2).sum()
    return (p_i.mean() - pe) / (1 - pe)


def test_fleiss_kappa():
    table = np.array([[5, 0], [4, 1], [2, 3], [0, 5], [3, 2], [5, 0]])
    assert stats.fleiss(table) == pytest.approx(fleiss_by_hand(table), abs=1e-12)
    assert stats.fleiss([[3, 0], [0, 3], [3, 0]]) == pytest.approx(1.0)
    assert np.isnan(stats.fleiss([[3, 0], [3, 0]]))  # one category only: undefined
    with pytest.raises(ValueError, match="same number of ratings"):
        stats.fleiss([[3, 0], [1, 1]])


def signflip_by_enumeration(k, n) -> float:
    """Fisher's randomization p by brute force: every one of the 2^R sign patterns of the raters' margins."""
    margins = [2 * a - b for a, b in zip(k, n) if b > 0]
    observed = abs(sum(margins))
    hits = sum(abs(sum(s * m for s, m in zip(signs, margins))) >= observed
               for signs in itertools.product((1, -1), repeat=len(margins)))
    return hits / 2 ** len(margins)


def test_signflip_p_against_enumerating_every_sign_pattern():
    rng = np.random.default_rng(0)
    ks, ns, want = [], [], []
    for _ in range(400):
        raters = int(rng.integers(2, 11))
        n = rng.integers(0, 9, raters)  # n = 0: an absent rater
        k = rng.binomial(n, rng.uniform(0.1, 0.95))
        got = stats.signflip_p(k, n)
        if (n > 0).sum() < 2:
            assert np.isnan(got)
            continue
        assert got == pytest.approx(signflip_by_enumeration(k, n), rel=1e-12, abs=1e-15)
        if raters == 6:  # a batch of equal-width panels for the characteristic-function path
            ks.append(k), ns.append(n), want.append(got)
    assert len(want) > 20
    np.testing.assert_allclose(stats.signflip_p_many(np.array(ks), np.array(ns)), want, rtol=0, atol=1e-12)


def test_signflip_p_by_hand():
    # margins 1, 5, -2, 3: |sum| = 7; of the 16 sign patterns (+,+,+,+) 7, (+,+,-,+) 11, (-,+,-,+) 9 and their mirrors
    assert stats.signflip_p([3, 5, 1, 4], [5, 5, 4, 5]) == pytest.approx(6 / 16, rel=1e-12)
    # unanimous: the sign test over the raters (2 of 2^R patterns), not the binomial over their judgments
    assert stats.signflip_p([5, 5], [5, 5]) == pytest.approx(2 * 0.5**2)
    assert stats.signflip_p([0, 0], [1, 1]) == 0.5
    assert stats.signflip_p([2, 2], [4, 4]) == 1.0  # no margin at all
    assert np.isnan(stats.signflip_p([3], [5]))  # one rater
    assert np.isnan(stats.signflip_p([3, 0], [5, 0]))  # a rater with nothing answered is absent
    # shapes: (panels, clusters) -> (panels,)
    assert stats.signflip_p(np.array([[5, 5], [0, 0]]), np.full((2, 2), 5)).shape == (2,)
    with pytest.raises(ValueError, match="panels x clusters"):
        stats.signflip_p_many(np.array([5, 5]), np.array([5, 5]))


def test_signflip_p_refuses_counts_that_are_not_counts():
    for k, n in (([2.5, 3], [5, 5]), ([7, 3], [5, 5]), ([-1, 3], [5, 5]), ([np.nan, 3], [5, 5]), (3, 5),
                 ([3, 3], [5, 5, 5])):
        with pytest.raises(ValueError, match="votes"):
            stats.signflip_p(k, n)
        if np.ndim(k):  # (a scalar made 2-D is one panel of one rater: valid)
            with pytest.raises(ValueError, match="votes"):
                stats.signflip_p_many(np.atleast_2d(k), np.atleast_2d(n))
    assert stats.signflip_p([3.0, 5.0], [5.0, 5.0]) == stats.signflip_p([3, 5], [5, 5])  # whole floats are counts
    assert stats.signflip_p(np.zeros((2, 0)), np.zeros((2, 0))).shape == (2,)  # no raters: NaN per panel


def test_signflip_p_many_lands_on_the_exact_grid():
    """Every null probability is a multiple of 0.5^R': the batched p is put on that grid, so a p of exactly alpha
    (4 unanimous raters: 0.125) is not counted below alpha = 0.125 (it was 0.12499999999999933)."""
    rng = np.random.default_rng(3)
    n = rng.integers(0, 12, (500, 9))
    k = rng.binomial(n, rng.uniform(0.2, 1.0, (500, 1)))
    assert (stats.signflip_p_many(k, n)[(n > 0).sum(1) >= 2] == stats.signflip_p(k, n)[(n > 0).sum(1) >= 2]).all()
    assert stats.signflip_p_many(np.full((1, 4), 5), np.full((1, 4), 5))[0] == 0.125
    # panels in groups: the same p whatever the group size
    np.testing.assert_array_equal(stats.signflip_p_many(k, n, chunk=50), stats.signflip_p_many(k, n))


@pytest.mark.parametrize("raters", [4, 10, 26])
def test_a_unanimous_panel_is_the_most_certain_one_of_its_raters(raters):
    """The p of R raters is smallest when they are unanimous (2 x 0.5^R), and one judgment the other way never
    makes a panel look more certain. (The cluster Wald test this replaced gave 4 raters of 5 judgments p = 0.125
    unanimous but 0.003 with one judgment the other way.)"""
    n = np.full(raters, 5)
    unanimous = stats.signflip_p(n, n)
    assert unanimous == pytest.approx(2 * 0.5**raters, rel=1e-12)
    one_off = n.copy()
    one_off[-1] -= 1
    assert stats.signflip_p(one_off, n) >= unanimous
    rng = np.random.default_rng(raters)
    k = rng.binomial(np.broadcast_to(n, (300, raters)), rng.uniform(0.5, 1.0, (300, 1)))
    assert (stats.signflip_p(k, np.broadcast_to(n, k.shape)) >= unanimous * (1 - 1e-12)).all()


def test_cluster_bootstrap_is_seeded_and_brackets_the_estimate():
    k = np.array([20, 25, 10, 28, 15, 22])
    n = np.full(6, 28)
    a = stats.cluster_bootstrap(k, n, 2000, np.random.default_rng(0))
    b = stats.cluster_bootstrap(k, n, 2000, np.random.default_rng(0))
    assert a == b
    assert a[0] < k.sum() / n.sum() < a[1]
    # Resampling raters is wider than treating the 168 judgments as independent (Wilson).
    wlo, whi = stats.wilson([k.sum()], [n.sum()])
    assert a[1] - a[0] > 1.5 * (whi[0] - wlo[0])
    # Identical raters at 14 of 28: every resample gives the same rate, so the pooled judgments' Wilson interval
    # (not the point (0.5, 0.5)); one rater: no interval.
    wlo, whi = stats.wilson([6 * 14], [6 * 28])
    assert stats.cluster_bootstrap(np.full(6, 14), n, 500, np.random.default_rng(0)) == (wlo[0], whi[0])
    assert all(np.isnan(stats.cluster_bootstrap([3], [5], 500, np.random.default_rng(0))))
    # Raters who answered nothing in the cell are not clusters.
    c = stats.cluster_bootstrap(np.append(k, 0), np.append(n, 0), 2000, np.random.default_rng(0))
    assert c == a


def test_a_p_that_underflowed_prints_as_a_bound_not_as_zero():
    """2 x 0.5^1200 (1200 unanimous raters) is below the smallest float: the report says so rather than "0.00e+00"."""
    from userstudy.tables import _fmt_p

    assert stats.signflip_p(np.full(1200, 3), np.full(1200, 3)) == 0.0
    assert _fmt_p(0.0) == "< 1e-300"
    assert _fmt_p(2 * 0.5**26) == "2.98e-08" and _fmt_p(0.0123) == "0.0123" and _fmt_p(float("nan")) == "n/a"

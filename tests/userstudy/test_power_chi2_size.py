"""`fourdfy power` says, next to the raters it recommends for the paper's chi-square test, how often that test
rejects under no preference (its size), which with heterogeneous raters is far above alpha."""

import re

import numpy as np
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.power import PowerConfig, chi2_size
from userstudy.simulate import rater_rates

runner = CliRunner()
SIZE_LINE = re.compile(r"^    size: it rejects ([0-9.]+)% of (\d+)-rater panels with no preference \(rate 0\.5, "
                       r"icc ([0-9.]+); level 5%\)(.*)$", re.M)


def direct_size(n_raters: int, prompts: int, icc: float, sims: int = 20000, seed: int = 11) -> float:
    """The chi-square test's rejection rate at 0.05 under no preference, simulated judgment by judgment."""
    rng = np.random.default_rng(seed)
    rates = rater_rates(rng, 0.5, icc, (sims, n_raters))
    judgments = rng.random((sims, n_raters, prompts)) < rates[..., None]
    k = judgments.sum((1, 2))
    n = n_raters * prompts
    p = sps.chisquare(np.stack([k, n - k]), axis=0).pvalue
    return float(np.mean(p < 0.05))


def run_power(icc: float) -> tuple[str, re.Match]:
    res = runner.invoke(app, ["power", "--rate", "0.6", "--prompts", "28", "--sims", "2000", "--max-raters", "30",
                              "--icc", str(icc)])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    chi2 = next(i for i, ln in enumerate(lines) if ln.startswith("  paper's chi-square test"))
    match = SIZE_LINE.match(lines[chi2 + 1])  # right under its recommendation
    assert match, res.stdout
    return res.stdout, match


def test_at_the_default_icc_the_size_is_far_above_alpha_and_said_so():
    out, m = run_power(0.05)
    size, panel = float(m.group(1)) / 100, int(m.group(2))
    assert re.search(rf"paper's chi-square test\s+{panel} raters", out)  # the panel it recommends
    assert size > 0.12
    assert size == pytest.approx(direct_size(panel, 28, 0.05), abs=0.035)  # 2000 panels: SE about 0.009
    assert "its power above is optimistic; plan with the rater-robust test" in m.group(4)


def test_with_identical_raters_the_size_is_near_alpha_and_no_caveat():
    _, m = run_power(0.0)
    size, panel = float(m.group(1)) / 100, int(m.group(2))
    assert size == pytest.approx(0.05, abs=0.02)
    assert size == pytest.approx(direct_size(panel, 28, 0.0), abs=0.025)
    assert m.group(4) == ""


def test_chi2_size_is_seeded_and_leaves_the_power_question_alone():
    cfg = PowerConfig(rate=0.6, prompts=28, rater_icc=0.05, sims=1000, seed=4)
    assert chi2_size(cfg, 9) == chi2_size(cfg, 9)
    assert chi2_size(cfg, 9) > 0.12 > chi2_size(PowerConfig(rate=0.6, prompts=28, sims=1000, seed=4), 9)

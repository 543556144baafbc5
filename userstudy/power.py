"""Power analysis on simulated (SYNTHETIC) panels: how many raters does a given true preference need?

For each panel size the simulator (`userstudy.simulate`: rater heterogeneity, unanswered
sub-questions) draws `sims` panels of one cell (comparison x criterion) and counts how often the test
rejects "no preference":
- `chi2`: the paper's pooled chi-square test (treats every judgment as independent; with rater
  heterogeneity it rejects far more often than alpha under no preference, `chi2_size`, so its power is
  optimistic);
- `cluster`: the rater-level test (`stats.signflip_p`, exact sign flips over raters; decided by
  `stats.signflip_below`), valid with heterogeneous raters.
`power_approx` is the normal approximation (Cohen's h, statsmodels) with the design effect
1 + (m - 1) icc of m judgments per rater.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from userstudy import stats
from userstudy.simulate import rater_rates


@dataclass(frozen=True)
class PowerConfig:
    """A power question."""

    rate: float = 0.6
    """True share of judgments preferring the primary method."""
    prompts: int = 28
    """Judgments per rater in the cell (prompts of the comparison: 28 vs MAV3D, 5 per ablation)."""
    target: float = 0.8
    """Wanted power."""
    alpha: float = 0.05
    """Significance level of one test."""
    family: int = 1
    """Tests corrected together (Holm); planned at the conservative alpha / family of Holm's first step."""
    rater_icc: float = 0.0
    """Between-rater share of variance of the preference (see `simulate.PanelConfig`)."""
    unanswered: float = 0.0
    """Probability that a sub-question is left unanswered."""
    min_raters: int = 2
    """Smallest panel size tried."""
    max_raters: int = 100
    """Largest panel size tried."""
    sims: int = 2000
    """Simulated panels per panel size."""
    seed: int = 0
    """Seed of the simulation."""


def check_config(cfg: PowerConfig, names: dict[str, str] | None = None) -> None:
    """Raise ValueError for impossible settings. `names` maps field names (rate, prompts, ...) to
    what the message calls them (the CLI: its options); by default the messages use the field names."""
    def n(field: str) -> str:
        return (names or {}).get(field, field)

    if not 0 < cfg.rate < 1 or cfg.rate == 0.5:
        raise ValueError(f"{n('rate')} must lie in (0, 1) and differ from 0.5, got {cfg.rate:g}")
    for name in ("target", "alpha"):
        if not 0 < getattr(cfg, name) < 1:
            raise ValueError(f"{n(name)} must lie strictly between 0 and 1, got {getattr(cfg, name):g}")
    for name in ("prompts", "family"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{n(name)} must be at least 1, got {getattr(cfg, name)}")
    if cfg.sims < 10:
        raise ValueError(f"{n('sims')} must be at least 10, got {cfg.sims}")
    if cfg.min_raters < 2:
        raise ValueError(f"{n('min_raters')} must be at least 2, got {cfg.min_raters}")
    if cfg.max_raters < cfg.min_raters:
        raise ValueError(f"{n('max_raters')} must be at least {cfg.min_raters} (the smallest panel tried), "
                         f"got {cfg.max_raters}")
    for name in ("rater_icc", "unanswered"):
        if not 0 <= getattr(cfg, name) < 1:
            raise ValueError(f"{n(name)} must lie in [0, 1), got {getattr(cfg, name):g}")
    if cfg.seed < 0:
        raise ValueError(f"{n('seed')} must be a non-negative integer, got {cfg.seed}")


def power_approx(cfg: PowerConfig, n_raters: np.ndarray) -> np.ndarray:
    """Normal-approximation power with the design effect of clustered judgments."""
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    m = cfg.prompts * (1 - cfg.unanswered)
    deff = 1 + (m - 1) * cfg.rater_icc
    n_eff = np.asarray(n_raters, dtype=float) * m / deff
    h = proportion_effectsize(cfg.rate, 0.5)
    return np.array([NormalIndPower().power(h, nobs1=n, alpha=cfg.alpha / cfg.family, ratio=0) for n in n_eff])


def _panels(rng: np.random.Generator, cfg: PowerConfig, rate: float, n_raters: int) -> tuple[np.ndarray, np.ndarray]:
    """Votes for the primary k and answered judgments n, (cfg.sims, n_raters), of panels at a true `rate`: the
    totals of `simulate.simulate_counts`'s model (no careless raters) drawn directly, two draws per rater rather than
    one per judgment (see its docstring)."""
    p_r = rater_rates(rng, rate, cfg.rater_icc, (cfg.sims, n_raters))
    n = rng.binomial(cfg.prompts, 1 - cfg.unanswered, size=(cfg.sims, n_raters))
    return rng.binomial(n, p_r), n


def chi2_size(cfg: PowerConfig, n_raters: int) -> float:
    """The paper's chi-square test's actual size: how often it rejects at alpha / family in `cfg.sims` simulated
    panels of `n_raters` raters with no preference (rate 0.5), the icc and unanswered share of `cfg` (a random
    stream of its own, from cfg.seed). Near alpha with identical raters (icc 0); above it when raters differ, since
    the test counts every judgment as independent (about 0.2 at icc 0.05 with 28 judgments per rater): its power in
    `power_table` is then optimistic."""
    check_config(cfg)
    k, n = _panels(np.random.default_rng([cfg.seed, 1]), cfg, 0.5, n_raters)
    _, p = stats.chisquare_half(k.sum(1), n.sum(1))
    return float(np.mean(np.nan_to_num(p, nan=1.0) < cfg.alpha / cfg.family))


def power_table(cfg: PowerConfig) -> pd.DataFrame:
    """Power per panel size: simulated (chi2, cluster) and approximate."""
    check_config(cfg)
    rng = np.random.default_rng(cfg.seed)
    level = cfg.alpha / cfg.family
    rows = []
    grid = np.arange(cfg.min_raters, cfg.max_raters + 1)
    for r in grid:
        k, n = _panels(rng, cfg, cfg.rate, int(r))
        _, p_chi2 = stats.chisquare_half(k.sum(1), n.sum(1))
        rejects = stats.signflip_below(k, n, level)
        rows.append({"n_raters": int(r), "judgments": int(r * cfg.prompts),
                     "power_chi2": float(np.mean(np.nan_to_num(p_chi2, nan=1.0) < level)),
                     "power_cluster": float(np.mean(rejects))})
    out = pd.DataFrame(rows)
    out["power_approx"] = power_approx(cfg, grid)
    return out


CSV_COLUMNS = ("n_raters", "judgments", "power_chi2", "power_cluster", "power_approx", "synthetic")
"""The columns of the CSV `fourdfy power --out` writes (`csv_frame`), in order: its header identifies the file."""


def csv_frame(table: pd.DataFrame) -> pd.DataFrame:
    """`power_table`'s rows as `fourdfy power --out` writes them: labelled synthetic, columns `CSV_COLUMNS`."""
    return table.assign(synthetic=True)[list(CSV_COLUMNS)]


def is_power_file(path: Path | str) -> bool:
    """True when `path` is a power table `fourdfy power` wrote (its header is `CSV_COLUMNS`) or is empty (0 bytes):
    the only files `power --out --overwrite` replaces."""
    from userstudy.outputs import empty_or_headed

    return empty_or_headed(path, ",".join(CSV_COLUMNS))


def raters_needed(table: pd.DataFrame, column: str, target: float) -> int | None:
    """Smallest panel size from which the power stays at or above target (None: not within the grid)."""
    ok = (table[column] >= target).to_numpy()
    if not ok[-1]:
        return None
    bad = np.flatnonzero(~ok)
    first = bad[-1] + 1 if len(bad) else 0
    return int(table["n_raters"].iloc[first])

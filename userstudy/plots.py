"""Plot data (long format, for `dvc plots`) and a PNG of preference rates with their intervals (1 - alpha)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from userstudy.analysis import Analysis
from userstudy.votes import CRITERIA, CRITERION_ABBR


def plot_data(analysis: Analysis) -> pd.DataFrame:
    """One row per (comparison, criterion, interval kind): estimate and interval in percent."""
    t = analysis.table
    design = analysis.design
    parts = []
    for kind, lo, hi in (("wilson", "ci_low", "ci_high"), ("rater_bootstrap", "boot_low", "boot_high")):
        parts.append(pd.DataFrame({
            "comparison": t["comparison"], "label": [design.label(c) for c in t["comparison"]],
            "criterion": t["criterion"], "interval": kind, "pct_primary": t["pct_primary"],
            "low": t[lo], "high": t[hi], "n": t["n"], "significant": t["significant"],
            "synthetic": analysis.synthetic,
        }))
    return pd.concat(parts, ignore_index=True)


def plot_png(analysis: Analysis, path: Path | str) -> Path:
    """One panel per criterion: % preferring the primary per comparison, Wilson (black) and rater
    bootstrap (grey) intervals at the analysis's coverage (1 - alpha), 50% line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = analysis.table
    design = analysis.design
    comps = [c for c in design.comparisons if (t.loc[t["comparison"] == c, "n"] > 0).any()]
    fig, axes = plt.subplots(1, len(CRITERIA), figsize=(3.0 * len(CRITERIA), 0.45 * max(len(comps), 2) + 1.6),
                             sharey=True)
    y = np.arange(len(comps))
    for ax, crit in zip(axes, CRITERIA):
        cell = t[t["criterion"] == crit].set_index("comparison").reindex(comps)
        pct = cell["pct_primary"].to_numpy(dtype=float)
        for lo, hi, dy, color in (("ci_low", "ci_high", -0.12, "black"), ("boot_low", "boot_high", 0.12, "0.55")):
            err = np.vstack([pct - cell[lo].to_numpy(dtype=float), cell[hi].to_numpy(dtype=float) - pct])
            # Rounding can put a bound a hair inside an estimate of 0% or 100% (matplotlib refuses
            # negative error bars); intervals here contain their estimate, so clip at 0.
            err = np.clip(np.nan_to_num(err), 0.0, None)
            ax.errorbar(pct, y + dy, xerr=err, fmt="o", ms=4, color=color, capsize=2, lw=1)
        ax.axvline(50, color="tab:red", lw=0.8, ls="--")
        ax.set_xlim(0, 100)
        ax.set_title(CRITERION_ABBR[crit])
        ax.set_xlabel(f"% preferring {design.label(design.primary)}")
        ax.grid(axis="x", lw=0.3)
    axes[0].set_yticks(y)
    axes[0].set_yticklabels([design.label(c) for c in comps])
    axes[0].invert_yaxis()
    from userstudy.tables import coverage_text

    title = f"Preference with {coverage_text(analysis.config.alpha)} intervals (black: Wilson, grey: rater bootstrap)"
    if analysis.synthetic:
        title = "SYNTHETIC DATA (simulated raters) - " + title
    fig.suptitle(title, fontsize=10, color="tab:red" if analysis.synthetic else "black")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path

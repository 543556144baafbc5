"""The analysis of a validated votes file: rater exclusion, per-cell statistics (comparison x
criterion), per-prompt breakdown, agreement and position bias."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from userstudy import stats
from userstudy.design import Design
from userstudy.votes import CRITERIA, Votes


@dataclass(frozen=True)
class ExclusionRule:
    """Which raters are dropped for failed attention checks (all exclusions are reported)."""

    max_failed: int | None = None
    """Exclude a rater who failed more than this many attention-check judgments (None = no count rule)."""
    max_failed_share: float = 0.2
    """...or more than this share of their attention-check judgments (1.0 = no share rule)."""
    unanswered_fails: bool = False
    """An unanswered attention-check sub-question counts as failed (else it is only missing)."""
    unfinished: bool = False
    """Also exclude raters the votes mark as not having finished the survey (`rater_completed` false)."""


SIGNIFICANCE_TESTS = {"chi2": "p_chi2", "cluster": "p_cluster"}
"""`AnalysisConfig.significance` -> the column of `Analysis.table` whose p-values Holm adjusts."""


@dataclass(frozen=True)
class AnalysisConfig:
    """Knobs of `analyze`."""

    alpha: float = 0.05
    """Significance level, and 1 - coverage of the intervals."""
    n_boot: int = 2000
    """Rater-clustered bootstrap resamples per cell."""
    seed: int = 0
    """Seed of the bootstrap (each cell derives its own stream from it and its name)."""
    exclusion: ExclusionRule = field(default_factory=ExclusionRule)
    """Attention-check rule."""
    significance: str = "chi2"
    """The test behind `p_holm`, `significant` and the tables' daggers: "chi2", the paper's chi-square over judgments
    (which takes them as independent), or "cluster", the rater-robust test `p_cluster` (exact sign flips over raters)."""


@dataclass
class Analysis:
    """Everything `analyze` found; `tables.write_outputs` turns it into files."""

    design: Design
    """The design the votes were checked against (comparisons, labels, tables)."""
    config: AnalysisConfig
    """The settings the analysis ran with (alpha, bootstrap, seed, exclusion rule)."""
    table: pd.DataFrame
    """One row per (comparison, criterion), in design order."""
    per_prompt: pd.DataFrame
    """One row per (comparison, criterion, prompt)."""
    raters: pd.DataFrame
    """One row per rater: judgments, attention checks, exclusion."""
    agreement: pd.DataFrame
    """Fleiss' kappa per criterion."""
    summary: dict
    """Counts: judgments, unanswered, raters, exclusions, duplicates, layout."""
    synthetic: bool = False
    """The votes contain simulated raters."""
    prompts_dir: Path | None = None
    """The folder of the `<prompt_set>.txt` files the votes were checked against (None: the project's prompts/);
    the tables count a section's prompts in it."""


class AnalysisError(ValueError):
    """Nothing is left to analyse (every rater excluded, or no judgment besides attention checks)."""

    def __init__(self, message: str, all_excluded: int = 0, rule: str = ""):
        super().__init__(message)
        self.all_excluded = all_excluded
        """The number of raters when the attention-check rule excluded every one (else 0)."""
        self.rule = rule
        """That rule, in words (for a message naming the CLI's options)."""


def check_config(config: AnalysisConfig, names: dict[str, str] | None = None) -> None:
    """Raise ValueError for impossible settings (before any work). `names` maps the field names
    (alpha, n_boot, seed, max_failed, max_failed_share) to what the message calls them (the CLI: its
    options); by default the messages use the field names."""
    def n(field: str) -> str:
        return (names or {}).get(field, field)

    rule = config.exclusion
    if not 0.0 < config.alpha < 1.0:  # 0 gives NaN intervals, >= 1 inverted ones and every cell significant
        raise ValueError(f"{n('alpha')} must lie strictly between 0 and 1 (e.g. 0.05), got {config.alpha:g}")
    if config.significance not in SIGNIFICANCE_TESTS:
        raise ValueError(f"{n('significance')} must be one of {', '.join(SIGNIFICANCE_TESTS)}, "
                         f"got {config.significance!r}")
    if config.n_boot < 100:
        raise ValueError(f"{n('n_boot')} must be at least 100, got {config.n_boot}")
    if config.seed < 0:
        raise ValueError(f"{n('seed')} must be a non-negative integer, got {config.seed}")
    if rule.max_failed is not None and rule.max_failed < 0:
        raise ValueError(f"{n('max_failed')} must be 0 or more (failed attention-check judgments tolerated), "
                         f"got {rule.max_failed}")
    if not 0.0 <= rule.max_failed_share <= 1.0:
        raise ValueError(f"{n('max_failed_share')} must lie in [0, 1] (1 = no share rule), "
                         f"got {rule.max_failed_share:g}")


def rater_summary(votes: Votes, rule: ExclusionRule) -> pd.DataFrame:
    """Per rater: judgments, unanswered, attention checks taken and failed, excluded and why."""
    f = votes.frame
    checks = f[f["is_attention_check"]]
    failed = (checks["answered"] & (checks["check_passed"] == 0)) | (~checks["answered"] & rule.unanswered_fails)
    main = f[~f["is_attention_check"]]
    out = pd.DataFrame({
        "judgments": main.groupby("rater_id").size(),
        "unanswered": (~main["answered"]).groupby(main["rater_id"]).sum(),
        "checks": checks.groupby("rater_id").size(),
        "checks_failed": failed.groupby(checks["rater_id"]).sum(),
        "checks_unanswered": (~checks["answered"]).groupby(checks["rater_id"]).sum(),
    }, index=pd.Index(sorted(f["rater_id"].unique()), name="rater_id")).fillna(0).astype(int)
    taken = out["checks"] - (0 if rule.unanswered_fails else out["checks_unanswered"])
    share = (out["checks_failed"] / taken.where(taken > 0)).fillna(0.0)
    by_count = out["checks_failed"] > (rule.max_failed if rule.max_failed is not None else np.inf)
    by_share = share > rule.max_failed_share
    out["failed_share"] = share
    # True / False / None (unknown: votes without rater_completed), one value per rater (validated)
    completed = f.groupby("rater_id")["rater_completed"].agg(lambda s: next((v for v in s if v is not None), None))
    out["completed"] = completed.reindex(out.index)
    by_unfinished = (out["completed"] == False) & rule.unfinished  # noqa: E712 (None stays unknown)
    out["excluded"] = by_count | by_share | by_unfinished
    of = " of " + taken.astype(str) + " attention-check judgments"
    reason = np.where(by_count, "failed " + out["checks_failed"].astype(str) + of
                      + f" (more than {rule.max_failed})", "")
    reason = np.where(~by_count & by_share, "failed " + out["checks_failed"].astype(str) + of
                      + f" (share above {rule.max_failed_share:g})", reason)
    reason = np.where(~by_count & ~by_share & by_unfinished, "did not finish the survey", reason)
    out["reason"] = np.where(out["excluded"], reason, np.where(out["checks"] == 0, "no attention checks", ""))
    return out.reset_index()


def rule_parts(rule: ExclusionRule) -> list[str]:
    """The conditions that exclude a rater, in words (empty: none)."""
    parts = []
    if rule.max_failed is not None:
        parts.append(f"more than {rule.max_failed} failed attention-check judgments")
    if rule.max_failed_share < 1.0:
        parts.append(f"a failed share of attention-check judgments above {rule.max_failed_share:g}")
    if rule.unfinished:
        parts.append("an unfinished survey (rater_completed false)")
    return parts


def rule_text(rule: ExclusionRule) -> str:
    """The rule in one phrase, for messages and the admin tally."""
    return " or ".join(rule_parts(rule)) + (", unanswered checks counted as failed" if rule.unanswered_fails else "")


def _seed_for(seed: int, *names: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32("/".join(names).encode())])


def _cell_rows(main: pd.DataFrame, design: Design, config: AnalysisConfig) -> pd.DataFrame:
    rows = []
    for comp in design.comparisons:
        for crit in CRITERIA:
            cell = main[(main["comparison"] == comp) & (main["criterion"] == crit)]
            ans = cell[cell["answered"]]
            n, k = len(ans), int(ans["chose_primary"].sum())
            per_rater = ans.groupby("rater_id")["chose_primary"].agg(["sum", "size"])
            boot = stats.cluster_bootstrap(per_rater["sum"], per_rater["size"], config.n_boot,
                                           _seed_for(config.seed, comp, crit), alpha=config.alpha)
            left = int((ans["choice"] == "left").sum())
            prim_left = ans[ans["primary_side"] == "left"]
            prim_right = ans[ans["primary_side"] == "right"]
            rows.append({
                "comparison": comp, "criterion": crit, "primary": design.primary,
                "n": n, "n_unanswered": int((~cell["answered"]).sum()),
                "raters": int(ans["rater_id"].nunique()), "prompts": int(ans["prompt_id"].nunique()),
                "k": k, "boot_low": boot[0], "boot_high": boot[1],
                "p_cluster": float(stats.signflip_p(per_rater["sum"].to_numpy(), per_rater["size"].to_numpy()))
                if len(per_rater) else np.nan,
                "left": left,
                "pct_primary_when_left": 100 * prim_left["chose_primary"].mean() if len(prim_left) else np.nan,
                "pct_primary_when_right": 100 * prim_right["chose_primary"].mean() if len(prim_right) else np.nan,
            })
    t = pd.DataFrame(rows)
    n, k = t["n"].to_numpy(), t["k"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        t["pct_primary"] = np.where(n > 0, 100 * k / n, np.nan)
        t["left_share"] = np.where(n > 0, t["left"] / n, np.nan)
    t["chi2"], t["p_chi2"] = stats.chisquare_half(k, n)
    # The authors' template: unanswered sub-questions counted in N (E = N_all / 2).
    n_all = n + t["n_unanswered"].to_numpy()
    t["chi2_template"], t["p_chi2_template"] = stats.chisquare_half(k, n_all)
    t.loc[n == 0, ["chi2_template", "p_chi2_template"]] = np.nan
    t["p_binom"] = stats.binom_p(k, n)
    lo, hi = stats.wilson(k, n, alpha=config.alpha)
    t["ci_low"], t["ci_high"] = 100 * lo, 100 * hi
    t["boot_low"], t["boot_high"] = 100 * t["boot_low"], 100 * t["boot_high"]
    tested = t[SIGNIFICANCE_TESTS[config.significance]]
    t["p_holm"] = stats.holm(tested)
    t["significant"] = t["p_holm"] < config.alpha
    t["significant_unadjusted"] = tested < config.alpha
    t["p_left"] = stats.binom_p(t["left"], n)
    order = ["comparison", "criterion", "primary", "n", "k", "pct_primary", "chi2", "p_chi2", "p_binom",
             "ci_low", "ci_high", "boot_low", "boot_high", "p_cluster", "p_holm", "significant",
             "significant_unadjusted", "raters", "prompts", "n_unanswered", "chi2_template", "p_chi2_template",
             "left_share", "p_left", "pct_primary_when_left", "pct_primary_when_right"]
    return t[order]


def _per_prompt(main: pd.DataFrame, design: Design, alpha: float) -> pd.DataFrame:
    g = main.groupby(["comparison", "criterion", "prompt_id"], sort=False)
    t = pd.DataFrame({
        "n": g["answered"].sum(),
        "n_unanswered": g["answered"].agg(lambda s: int((~s).sum())),
        "k": g["chose_primary"].sum(),
        "left": g["choice"].agg(lambda s: int((s == "left").sum())),
    }).reset_index()
    t[["n", "k"]] = t[["n", "k"]].astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        t["pct_primary"] = np.where(t["n"] > 0, 100 * t["k"] / t["n"], np.nan)
        t["left_share"] = np.where(t["n"] > 0, t["left"] / t["n"], np.nan)
    lo, hi = stats.wilson(t["k"], t["n"], alpha=alpha)
    t["ci_low"], t["ci_high"] = 100 * lo, 100 * hi
    t["comparison"] = pd.Categorical(t["comparison"], categories=design.comparisons, ordered=True)
    t["criterion"] = pd.Categorical(t["criterion"], categories=CRITERIA, ordered=True)
    t = t.sort_values(["comparison", "criterion", "prompt_id"]).reset_index(drop=True)
    t["comparison"] = t["comparison"].astype(str)
    t["criterion"] = t["criterion"].astype(str)
    return t[["comparison", "criterion", "prompt_id", "n", "k", "pct_primary", "ci_low", "ci_high",
              "n_unanswered", "left_share"]]


def _agreement(main: pd.DataFrame) -> pd.DataFrame:
    """Fleiss' kappa per criterion; subjects = questions, categories = primary / other method.

    Fleiss' kappa needs the same number of ratings per subject: questions with the most common
    count are used and the others reported (`subjects_used` of `subjects`)."""
    rows = []
    ans = main[main["answered"]]
    for crit in CRITERIA:
        sub = ans[ans["criterion"] == crit]
        counts = sub.groupby("question_id")["chose_primary"].agg(["sum", "size"])
        if counts.empty:
            rows.append({"criterion": crit, "kappa": np.nan, "subjects": 0, "subjects_used": 0,
                         "ratings_per_subject": 0})
            continue
        m = int(counts["size"].mode().max())
        used = counts[counts["size"] == m]
        table = np.stack([used["sum"].to_numpy(), (used["size"] - used["sum"]).to_numpy()], axis=1)
        rows.append({"criterion": crit, "kappa": stats.fleiss(table), "subjects": len(counts),
                     "subjects_used": len(used), "ratings_per_subject": m})
    return pd.DataFrame(rows)


def analyze(votes: Votes, design: Design, config: AnalysisConfig | None = None) -> Analysis:
    """Run the whole analysis on validated votes."""
    config = config or AnalysisConfig()
    check_config(config)
    f = votes.frame
    raters = rater_summary(votes, config.exclusion)
    excluded = set(raters.loc[raters["excluded"], "rater_id"])
    main = f[~f["is_attention_check"] & ~f["rater_id"].isin(excluded)]
    # checked before the bootstrap: with no judgment left every table would be empty
    if len(raters) and len(excluded) == len(raters):
        rule = rule_text(config.exclusion)
        raise AnalysisError(f"all {len(raters)} raters were excluded by the attention-check rule ({rule}); loosen "
                            "the rule (ExclusionRule max_failed_share, max_failed)", all_excluded=len(raters),
                            rule=rule)
    if main.empty:
        left = f" of the {len(raters) - len(excluded)} raters not excluded" if excluded else ""
        raise AnalysisError(f"no judgments to analyse: every row{left} is an attention check")
    if not main["answered"].any():  # every cell would be n/a, with no word why
        left = f" of the {len(raters) - len(excluded)} raters not excluded" if excluded else ""
        raise AnalysisError(f"no judgments to analyse: every judgment{left} is unanswered (choice none in all "
                            f"{len(main)} rows that are not attention checks); check that the votes file holds the "
                            "raters' answers")
    table = _cell_rows(main, design, config)
    per_prompt = _per_prompt(main, design, config.alpha)
    agreement = _agreement(main)
    sides = main.groupby("question_id")["primary_side"].nunique()
    summary = {
        "rows": int(len(f) + votes.duplicates_merged),
        "duplicates_merged": int(votes.duplicates_merged),
        "judgments": int((~f["is_attention_check"]).sum()),
        "attention_check_judgments": int(f["is_attention_check"].sum()),
        "raters_total": int(len(raters)),
        "raters_excluded": int(len(excluded)),
        "raters_analyzed": int(len(raters) - len(excluded)),
        # None: the votes do not say (not a survey export)
        "raters_unfinished": (int((raters["completed"] == False).sum())  # noqa: E712
                              if raters["completed"].notna().any() else None),
        "judgments_excluded": int((~f["is_attention_check"] & f["rater_id"].isin(excluded)).sum()),
        "judgments_analyzed": int(len(main)),
        "answered": int(main["answered"].sum()),
        "unanswered": int((~main["answered"]).sum()),
        "questions": int(main["question_id"].nunique()),
        "questions_fixed_layout": int((sides == 1).sum()) if main["rater_id"].nunique() > 1 else 0,
    }
    return Analysis(design=design, config=config, table=table, per_prompt=per_prompt, raters=raters,
                    agreement=agreement, summary=summary, synthetic=votes.synthetic,
                    prompts_dir=votes.prompts_dir)

"""Audit of the published user-study numbers: the chi-square statistic and p implied by every printed
percentage and the study size, the reported p-values, the claims of the text the numbers
contradict, and the stage-3 update probabilities of Sec. 3.2 that do not sum to 1.

A printed integer percentage P with N judgments is consistent with every count k such that
|100 k / N - P| <= 0.5; each such k gives a chi-square statistic (2k - N)^2 / N (df 1). The audit
reports the range over those k, so its verdicts do not depend on how the authors rounded.
N = raters x prompts assumes every rater answered every sub-question (the authors' template counted
unanswered sub-questions in N, so that is also the N its test used).

Method names are printed with the labels of the study design (`userstudy/designs/paper.yaml` by
default), the one place labels are defined; a method the given design has no label for is printed with the
paper design's label (`audit_labels`). Which cells a claim is about comes from the published tables, never from the
design: the audit is of the paper's numbers, whatever layout a design gives its own study.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from userstudy import published
from userstudy.design import Design, load_design
from userstudy.stats import chisquare_half
from userstudy.votes import CRITERIA, CRITERION_ABBR

ALPHA = 0.05
PRIMARY = "4dfy"
"""Method id of 4D-fy in the published tables (`published.TABLES`)."""
TITLE = "# Audit of the published user-study numbers (4D-fy)"
"""The first line of the audit report: it identifies a file `fourdfy audit --overwrite` may replace."""


def consistent_counts(pct: float, n: int) -> np.ndarray:
    """Every k in 0..n whose share 100 k / n rounds to the printed integer percentage."""
    k = np.arange(n + 1)
    return k[np.abs(100 * k / n - pct) <= 0.5 + 1e-9]


def implied_stats() -> pd.DataFrame:
    """One row per printed percentage: N, the consistent counts, implied chi-square and p ranges."""
    rows = []
    for t in published.TABLES:
        for r in t.rows:
            if r.pct is None:
                continue
            n = t.n_raters * r.n_prompts
            for crit, pct in zip(CRITERIA, r.pct):
                ks = consistent_counts(pct, n)
                k_primary = ks if t.pct_for == "primary" else n - ks
                chi2, p = chisquare_half(k_primary, np.full(len(ks), n))
                nominal_k = (pct if t.pct_for == "primary" else 100 - pct) * n / 100
                users = np.arange(t.n_raters + 1)
                row = {
                    "version": t.version, "table": t.table, "method": r.method, "criterion": crit,
                    "pct_printed": pct, "pct_for": "4dfy" if t.pct_for == "primary" else "other",
                    "pct_4dfy": pct if t.pct_for == "primary" else 100 - pct,
                    "n_raters": t.n_raters, "n_prompts": r.n_prompts, "n": n,
                    "k_min": int(k_primary.min()) if len(ks) else None,
                    "k_max": int(k_primary.max()) if len(ks) else None,
                    "chi2_nominal": (2 * nominal_k - n) ** 2 / n,
                    "chi2_min": float(chi2.min()) if len(ks) else np.nan,
                    "chi2_max": float(chi2.max()) if len(ks) else np.nan,
                    "p_min": float(p.min()) if len(ks) else np.nan,
                    "p_max": float(p.max()) if len(ks) else np.nan,
                    "possible": bool(len(ks)),
                    "possible_as_share_of_raters": bool((np.abs(100 * users / t.n_raters - pct) <= 0.5 + 1e-9).any()),
                }
                if len(ks):
                    sig = p < ALPHA
                    row["significant"] = "yes" if sig.all() else ("no" if not sig.any() else "depends on rounding")
                    fav = np.sign(2 * k_primary - n)
                    row["favours"] = ("4dfy" if (fav > 0).all() else "other" if (fav < 0).all() else "neither")
                else:
                    row["significant"], row["favours"] = "impossible", ""
                rep = published.REPORTED_P.get((t.version, r.method, crit))
                row["p_reported"] = rep
                if rep is not None:
                    match = [int(k) for k, pk in zip(k_primary, p) if round(float(pk), 4) == rep]
                    row["k_reproducing_p"] = " ".join(map(str, match))
                    row["p_reproduced"] = bool(match)
                rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Claim:
    """A sentence of the paper checked against its own numbers."""

    version: str
    """Paper version the sentence is from."""
    where: str
    """Section of the paper."""
    quote: str
    """The sentence (verbatim, shortened with '...')."""
    expect: str
    """What it asserts about each cell: significant_for_4dfy | not_significant | significant_favours_4dfy |
    s2_exception | share_of_raters."""
    cells: tuple[tuple[str, str], ...] = ()
    """(method, criterion) cells it speaks about (empty = every cell of `table`, or of the version)."""
    table: str = ""
    """The published table it speaks about when `cells` is empty (`table2`: the 53-question survey; the `table` of
    `published.TABLES`); "" = all."""


CLAIMS = (
    Claim("cvpr2024", "Sec. 4.2",
          "Users indicated a statistically significant preference towards 4D-fy compared to MAV3D in terms of "
          "appearance quality, 3D structure quality, text alignment, and overall preference.",
          "significant_for_4dfy",
          (("mav3d", "appearance"), ("mav3d", "structure"), ("mav3d", "text"), ("mav3d", "overall"))),
    Claim("cvpr2024", "Sec. 4.2", "They rated the motion quality roughly on par with MAV3D ...",
          "not_significant", (("mav3d", "motion"),)),
    Claim("cvpr2024", "Supplement S2",
          "... with the exception of comparing motion quality between 4D-fy and MAV3D—all p-values are well "
          "below 0.05.", "s2_exception", table="table2"),
    Claim("cvpr2024", "Supplement S2",
          "All statistically significant results indicated that users preferred videos rendered using 4D-fy "
          "over MAV3D.", "significant_favours_4dfy",
          tuple(("mav3d", c) for c in CRITERIA)),
    Claim("cvpr2024", "Sec. 4.3 (3D-aware guidance)",
          "If we remove the 3D-aware diffusion model ... we can generate scenes with similar motion ...",
          "not_significant", (("wo_3d", "motion"),)),
    Claim("cvpr2024", "Sec. 4.3 (hybrid SDS)",
          "... this approach results in degraded appearance and 3D structure.", "significant_for_4dfy",
          (("wo_hybrid", "appearance"), ("wo_hybrid", "structure"))),
    Claim("cvpr2024", "Sec. 4.3 (backbone)",
          "The HexPlane approach fails to match the appearance quality of the hash-grid-based representation.",
          "significant_for_4dfy", (("hexplane", "appearance"),)),
    Claim("cvpr2024", "Supplement S4",
          "Using a large single dynamic hash grid ... also leads to significantly lower quality results.",
          "significant_for_4dfy", tuple(("single_grid", c) for c in CRITERIA)),
    Claim("cvpr2024", "Table 2 caption (wording)",
          "The numbers reported for human preference are the percentages of users who voted for our method ...",
          "share_of_raters", table="table2"),
)


def _judge(expect: str, cell: pd.Series, design: Design) -> tuple[bool | None, str]:
    """(holds?, why) for one cell; None = depends on rounding."""
    sig, fav = cell["significant"], cell["favours"]
    p = f"p in [{cell['p_min']:.2g}, {cell['p_max']:.2g}]"
    name = design.label(cell["method"])
    primary = design.label(PRIMARY)
    what = f"{name} {CRITERION_ABBR[cell['criterion']]} {cell['pct_4dfy']:g}% for {primary}"
    if expect == "s2_exception":
        expect = "not_significant" if (cell["method"], cell["criterion"]) == ("mav3d", "motion") else "significant"
    if expect == "share_of_raters":
        ok = bool(cell["possible_as_share_of_raters"])
        return ok, f"{what}: {'' if ok else 'not '}a multiple of 1/{cell['n_raters']} raters after rounding"
    if sig == "depends on rounding":
        return None, f"{what}: {p}, depends on rounding"
    if expect == "significant":
        return sig == "yes", f"{what}: {p}"
    if expect == "significant_for_4dfy":
        return sig == "yes" and fav == "4dfy", f"{what}: {p}"
    winner = primary if fav == "4dfy" else name
    if expect == "not_significant":
        return sig == "no", f"{what}: {p}" + (f", significant in favour of {winner}" if sig == "yes" else "")
    if expect == "significant_favours_4dfy":
        return not (sig == "yes" and fav != "4dfy"), f"{what}: {p}" + (
            f", significant in favour of {name}" if sig == "yes" and fav != "4dfy" else "")
    raise ValueError(f"unknown expectation {expect!r}")


def audit_labels(design: Design | None = None) -> Design:
    """The design whose `label` the audit prints: the paper's design with the labels `design` gives (default: the
    paper's own). A design need not label, or even list, every method the paper published (a short-form design of
    one comparison), and the audit speaks of all of them."""
    paper = load_design()
    if design is None:
        return paper
    return dataclasses.replace(paper, labels={**paper.labels, **design.labels})


def check_claims(implied: pd.DataFrame | None = None, design: Design | None = None) -> pd.DataFrame:
    """Every claim x cell with the verdict: holds, contradicted, depends on rounding (labels from
    `design` where it gives them, the paper design's otherwise: `audit_labels`)."""
    implied = implied_stats() if implied is None else implied
    design = audit_labels(design)
    rows = []
    for i, claim in enumerate(CLAIMS):
        cells = implied[implied["version"] == claim.version]
        if claim.cells:
            key = cells["method"] + "/" + cells["criterion"]
            cells = cells[key.isin([f"{m}/{c}" for m, c in claim.cells])]
        elif claim.table:  # S2's survey and Table 2's caption are about Table 2's cells, not the supplement's S4
            cells = cells[cells["table"] == claim.table]
        for _, cell in cells.iterrows():
            ok, why = _judge(claim.expect, cell, design)
            rows.append({"claim": i, "where": claim.where, "method": cell["method"], "criterion": cell["criterion"],
                         "verdict": {True: "holds", False: "contradicted", None: "depends on rounding"}[ok],
                         "detail": why})
    return pd.DataFrame(rows)


def stage3_probabilities(p3d: float = 0.5, pimg: float = 0.5) -> pd.DataFrame:
    """Stage-3 update probabilities (3D, IMG, VID) under the three readings of the paper and release."""
    rows = [
        ("Sec. 3.2 text: P_3D, P_3D*P_IMG, 1 - P_3D*P_IMG", p3d, p3d * pimg, 1 - p3d * pimg),
        ("Algorithm 1 line 13: P_3D, P_3D*P_IMG, otherwise", p3d, p3d * pimg, 1 - p3d - p3d * pimg),
        ("official release: P_3D, else P_IMG of the rest, else video", p3d, (1 - p3d) * pimg,
         (1 - p3d) * (1 - pimg)),
    ]
    frame = pd.DataFrame(rows, columns=["reading", "p_3d", "p_img", "p_vid"])
    frame["sum"] = frame[["p_3d", "p_img", "p_vid"]].sum(axis=1)
    return frame


def _p(x: float) -> str:
    return f"{x:.2e}" if x < 1e-4 else f"{x:.4f}"


def _prange(lo: float, hi: float) -> str:
    return _p(lo) if _p(lo) == _p(hi) else f"{_p(lo)} – {_p(hi)}"


def _crange(lo: float, hi: float) -> str:
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f} – {hi:.2f}"


def audit_markdown(design: Design | None = None) -> str:
    """The audit report; method labels from `design` where it gives them, the paper design's otherwise
    (`audit_labels`)."""
    design = audit_labels(design)
    label = design.label
    imp = implied_stats()
    claims = check_claims(imp, design)
    out = [TITLE, "",
           "Generated by `fourdfy audit` from `userstudy/published.py` (the printed numbers, also exported to "
           "`reports/paper/*.csv`); do not edit.", "",
           "**Method.** A printed integer percentage P of N judgments is consistent with every vote count k "
           "such that |100 k / N − P| ≤ 0.5. Each k gives the paper's test statistic "
           "chi2 = 2 (k − N/2)² / (N/2) "
           "= (2k − N)² / N with df 1 (`scipy.stats.chisquare([k, N − k])`); ranges below run over all "
           "consistent k, so no verdict depends on how the authors rounded. N = raters × prompts (every rater "
           "answered every sub-question; the authors' template counted unanswered sub-questions in N anyway). "
           f"Significance at p < {ALPHA}, as in the paper.", ""]

    v1 = imp[imp["version"] == "arxiv_v1"]
    n1 = int(v1["n"].iloc[0])
    out += ["## First arXiv version: the reported p-values are reproduced", "",
            f"MAV3D comparison on 17 prompts, 26 raters: N = 26 × 17 = {n1} per criterion. Percentages printed "
            "as votes for MAV3D.", "",
            "| criterion | printed % (MAV3D) | % 4D-fy | k (4D-fy) consistent | chi2 | p | reported p "
            "| reproduced by k |",
            "|:--|--:|--:|:--|--:|--:|--:|:--|"]
    for r in v1.itertuples():
        rep = "" if pd.isna(r.p_reported) else f"{r.p_reported:.4f}"
        repro = "" if pd.isna(r.p_reported) else (f"yes: k = {r.k_reproducing_p}" if r.p_reproduced else "**no**")
        out.append(f"| {CRITERION_ABBR[r.criterion]} | {r.pct_printed:g}% | {r.pct_4dfy:g}% | {r.k_min}–{r.k_max} | "
                   f"{_crange(r.chi2_min, r.chi2_max)} | {_prange(r.p_min, r.p_max)} | {rep} | {repro} |")
    out += ["", "Both printed p-values are reproduced by the chi-square test with N = 442 and a count inside the "
            "rounding interval of the printed percentage: that version's table and text agree (motion quality "
            "not significant, text alignment significant).", ""]

    cv = imp[imp["version"] == "cvpr2024"]
    out += ["## CVPR version: implied statistics of Table 2 and Table 3", "",
            "26 raters; N = 26 × 28 = 728 per criterion against MAV3D and 26 × 5 = 130 per criterion against "
            "each ablation. Percentages are votes for 4D-fy.", "",
            "| table | comparison | criterion | printed % | N | k consistent | chi2 | p | significant | favours |",
            "|:--|:--|:--|--:|--:|:--|--:|--:|:--|:--|"]
    for r in cv.itertuples():
        winner = {"4dfy": label(PRIMARY), "other": label(r.method)}.get(r.favours, r.favours)
        out.append(f"| {r.table} | {label(r.method)} | {CRITERION_ABBR[r.criterion]} | "
                   f"{r.pct_printed:g}% | {r.n} | {r.k_min}–{r.k_max} | {_crange(r.chi2_min, r.chi2_max)} | "
                   f"{_prange(r.p_min, r.p_max)} | {r.significant} | "
                   f"{winner} |")

    out += ["", "## Claims of the text checked against the numbers", ""]
    for i, claim in enumerate(CLAIMS):
        c = claims[claims["claim"] == i]
        bad = c[c["verdict"] == "contradicted"]
        unsure = c[c["verdict"] == "depends on rounding"]
        verdict = "**contradicted**" if len(bad) else ("depends on rounding" if len(unsure) else "holds")
        out.append(f"{i + 1}. {claim.where} ({claim.version}): “{claim.quote}” — {verdict}.")
        if claim.expect == "share_of_raters":
            if len(bad):
                out.append(f"   - {len(bad)} of {len(c)} printed percentages cannot be a share of 26 raters "
                           "(e.g. " + "; ".join(bad["detail"].head(3)) + "): they are shares of votes "
                           "(raters × prompts), as the supplement's pooled test implies.")
            continue
        for r in bad.itertuples():
            out.append(f"   - {r.detail}")
        good = c[c["verdict"] == "holds"]
        if len(bad) and len(good):
            names = [f"{label(m)} {CRITERION_ABBR[k]}" for m, k in zip(good["method"], good["criterion"])]
            out.append("   - holds for " + (", ".join(names) if len(names) <= 6 else f"the other {len(names)} cells"))
    def _cell(version: str, crit: str):
        return imp[(imp["version"] == version) & (imp["method"] == "mav3d") & (imp["criterion"] == crit)].iloc[0]

    mq, ta, mq1, ta1 = (_cell("cvpr2024", "motion"), _cell("cvpr2024", "text"), _cell("arxiv_v1", "motion"),
                        _cell("arxiv_v1", "text"))
    held = [i + 1 for i in range(len(CLAIMS)) if not (claims[claims["claim"] == i]["verdict"] != "holds").any()]
    bad = [i + 1 for i in range(len(CLAIMS)) if (claims[claims["claim"] == i]["verdict"] == "contradicted").any()]
    out += ["", f"Contradicted: {', '.join(map(str, bad)) or 'none'}; hold: {', '.join(map(str, held)) or 'none'}. "
            f"In short: against MAV3D, {mq.pct_4dfy:g}% for motion quality is a significant preference for "
            f"MAV3D (p {_prange(mq.p_min, mq.p_max)}), not parity, and {ta.pct_4dfy:g}% for text alignment is "
            f"not significant (p {_prange(ta.p_min, ta.p_max)}); the first arXiv version's numbers "
            f"({mq1.pct_4dfy:g}% and {ta1.pct_4dfy:g}% for 4D-fy, N = {mq1.n}) did support both statements.", ""]

    s3 = stage3_probabilities()
    out += ["## Stage-3 update probabilities do not sum to 1", "",
            "Sec. 3.2 gives the stage-3 probabilities of a 3D, IMG and VID update as P_3D, P_3D·P_IMG and "
            "1 − P_3D·P_IMG. They sum to 1 + P_3D, i.e. 1.5 at the paper's P_3D = P_IMG = 0.5 (Sec. 3.3), and "
            "to 1 only when P_3D = 0.", "",
            "| reading | P(3D) | P(IMG) | P(VID) | sum |", "|:--|--:|--:|--:|--:|"]
    for r in s3.itertuples():
        out.append(f"| {r.reading} | {r.p_3d:.3f} | {r.p_img:.3f} | {r.p_vid:.3f} | {r.sum:.3f} |")
    out += ["", "Algorithm 1 keeps P_3D and P_3D·P_IMG and gives the rest to VID (0.25 at 0.5/0.5); the official "
            "release draws 3D with P_3D, else IMG with P_IMG, else VID, which gives the same 0.5 / 0.25 / 0.25 "
            "at P_3D = P_IMG = 0.5 but differs elsewhere. Stage 2 (\"with probability P_3D and P_IMG\") sums to "
            "1 only because P_3D + P_IMG = 1 at the published values; Algorithm 1 says \"otherwise\".", ""]
    return "\n".join(out) + "\n"


def is_audit_file(path: Path | str) -> bool:
    """True when `path` is an audit report `fourdfy audit` wrote (its first line is `TITLE`) or is empty (0 bytes)."""
    from userstudy.outputs import empty_or_headed

    return empty_or_headed(path, TITLE)


def write_audit(out: Path | str, paper_dir: Path | str | None = None, design: Design | None = None,
                overwrite: bool = False) -> list[Path]:
    """Write the audit Markdown (and the published tables as CSV into paper_dir), each file
    atomically; every target is checked before the first is written. An existing target is replaced only
    with `overwrite`, and only when it is an earlier output of the audit (`is_audit_file`,
    `published.check_csv_targets`); anything else is refused with an OutputError."""
    from userstudy.outputs import OutputError, check_own_file, same_file, write_text

    text = audit_markdown(design)
    check_own_file(out, overwrite, is_audit_file, "an audit report of `fourdfy audit`")
    if paper_dir is not None:
        csvs = published.check_csv_targets(paper_dir, overwrite)
        clash = [p for p in csvs if same_file(Path(out), p)]
        if clash:  # the CSV written second would replace the report
            raise OutputError(f"--out {out} is {clash[0].name} of --paper-dir {paper_dir}; give --out another path")
    paths = [write_text(out, text)]
    if paper_dir is not None:
        paths += published.write_csvs(paper_dir)
    return paths

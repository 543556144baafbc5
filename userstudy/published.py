"""The published user-study numbers of 4D-fy, both paper versions, exactly as printed.

CVPR 2024 (and the current arXiv version): Table 2 and supplement Table 3; percentages are votes
for 4D-fy; 26 raters; 28 prompts against MAV3D, 5 prompts per ablation.
First arXiv version: 17 prompts against MAV3D, 26 raters; percentages are votes for the OTHER
method; the text reports p(TA) = 0.0174 and p(MQ) = 0.3919.

`write_csvs` exports them to `reports/paper/` (one CSV per table, one for reported p-values); `check_csv_targets`
says beforehand whether it may (`fourdfy audit --paper-dir`: an existing file of those names is replaced only with
--overwrite, and only when it is such an export).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from userstudy.outputs import OutputError, atomic_write, check_file_target, check_folder_target, empty_or_headed, ensure_folder
from userstudy.votes import CRITERIA


@dataclass(frozen=True)
class PublishedRow:
    """One printed row."""

    method: str
    """Method id as in the design (`mav3d`, `wo_3d`, ... ; `4dfy` for the CLIP-only rows)."""
    prompt_set: str
    """Prompts the row was evaluated on (`mav3d_28`, `mav3d_17`, `ablation_5`)."""
    n_prompts: int
    """Number of prompts (questions per rater) of the comparison."""
    clip: float | None
    """CLIP score as printed."""
    pct: tuple[float, ...] | None
    """Printed percentages in the order appearance, structure, motion, text, overall (None: CLIP-only row)."""


@dataclass(frozen=True)
class PublishedTable:
    """One printed table."""

    version: str
    """Paper version: `cvpr2024` or `arxiv_v1`."""
    table: str
    """`table2` or `table3`."""
    source: str
    """Where it is printed."""
    pct_for: str
    """Whose votes the percentages count: `primary` (4D-fy) or `other` (the compared method)."""
    n_raters: int
    """Raters in the study."""
    rows: tuple[PublishedRow, ...]
    """Rows in printed order."""

    @property
    def name(self) -> str:
        return f"{self.version}_{self.table}"


TABLES = (
    PublishedTable("cvpr2024", "table2", "CVPR 2024, Table 2", "primary", 26, (
        PublishedRow("mav3d", "mav3d_28", 28, 33.9, (92, 89, 41, 52, 67)),
        PublishedRow("4dfy", "mav3d_28", 28, 34.2, None),
        PublishedRow("4dfy", "ablation_5", 5, 35.0, None),
        PublishedRow("wo_3d_img", "ablation_5", 5, 29.3, (100, 100, 78, 86, 94)),
        PublishedRow("wo_3d", "ablation_5", 5, 35.1, (88, 89, 95, 92, 91)),
        PublishedRow("wo_img", "ablation_5", 5, 34.5, (70, 68, 68, 69, 70)),
        PublishedRow("wo_hybrid", "ablation_5", 5, 33.8, (100, 100, 78, 88, 95)),
        PublishedRow("hexplane", "ablation_5", 5, 34.5, (95, 92, 90, 92, 95)),
    )),
    PublishedTable("cvpr2024", "table3", "CVPR 2024, supplement Table 3", "primary", 26, (
        PublishedRow("4dfy", "ablation_5", 5, 35.0, None),
        PublishedRow("single_stage", "ablation_5", 5, 29.7, (100, 100, 88, 97, 100)),
        PublishedRow("single_grid", "ablation_5", 5, 25.5, (100, 100, 99, 100, 100)),
    )),
    PublishedTable("arxiv_v1", "table2", "first arXiv version, Table 2 (MAV3D comparison)", "other", 26, (
        PublishedRow("mav3d", "mav3d_17", 17, 34.1, (5, 8, 52, 44, 28)),
        PublishedRow("4dfy", "mav3d_17", 17, 34.6, None),
    )),
)

# p-values printed in the text: (version, method, criterion) -> p.
REPORTED_P = {
    ("arxiv_v1", "mav3d", "text"): 0.0174,
    ("arxiv_v1", "mav3d", "motion"): 0.3919,
}

CSV_COLUMNS = ("version", "table", "source", "method", "prompt_set", "n_prompts", "n_raters", "pct_for", "clip",
               *CRITERIA)


def table_frame(t: PublishedTable) -> pd.DataFrame:
    """One published table as a DataFrame (percentages as printed; empty for CLIP-only rows)."""
    rows = []
    for r in t.rows:
        row = {"version": t.version, "table": t.table, "source": t.source, "method": r.method,
               "prompt_set": r.prompt_set, "n_prompts": r.n_prompts, "n_raters": t.n_raters,
               "pct_for": "4dfy" if t.pct_for == "primary" else "other", "clip": r.clip}
        for crit, v in zip(CRITERIA, r.pct or (None,) * len(CRITERIA)):
            row[crit] = v
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
    for crit in CRITERIA:
        frame[crit] = frame[crit].astype("Int64")
    return frame


REPORTED_P_COLUMNS = ("version", "method", "criterion", "p_reported")
"""The columns of `reported_pvalues.csv`."""
REPORTED_P_CSV = "reported_pvalues.csv"


def csv_names() -> dict[str, tuple[str, ...]]:
    """The file names `write_csvs` writes, each with its columns (whose header line identifies the file)."""
    return {**{f"{t.name}.csv": CSV_COLUMNS for t in TABLES}, REPORTED_P_CSV: REPORTED_P_COLUMNS}


def check_csv_targets(out_dir: Path | str, overwrite: bool = False, option: str = "--paper-dir") -> list[Path]:
    """Check (writing nothing) that `write_csvs(out_dir)` may write: each of its files (`csv_names`) is new, or,
    with `overwrite`, an earlier export of the published tables (the same header; an empty file counts). A file of
    one of those names that is anything else is refused even with `overwrite`; other files in `out_dir` are
    never touched. OutputError naming the files."""
    out_dir = check_folder_target(out_dir)
    paths = [check_file_target(Path(out_dir) / name) for name in csv_names()]
    existing = [p for p in paths if p.exists()]
    foreign = [p.name for p in existing if not empty_or_headed(p, ",".join(csv_names()[p.name]))]
    if foreign:
        raise OutputError(f"{option} {out_dir} holds {', '.join(foreign)}, not the published tables `fourdfy audit` "
                          "writes there; such a file is never replaced, even with --overwrite: move it or choose "
                          f"another {option}")
    if existing and not overwrite:
        raise OutputError(f"{option} {out_dir} already holds {', '.join(p.name for p in existing)} (published "
                          f"tables of an earlier `fourdfy audit`); give --overwrite to replace them or choose "
                          f"another {option}")
    return paths


def reported_p_frame() -> pd.DataFrame:
    return pd.DataFrame([dict(zip(REPORTED_P_COLUMNS, (v, m, c, p))) for (v, m, c), p in REPORTED_P.items()],
                        columns=list(REPORTED_P_COLUMNS))


def write_csvs(out_dir: Path | str) -> list[Path]:
    """Write every published table (and the reported p-values) as CSV into out_dir, each atomically."""
    out_dir = ensure_folder(out_dir)
    frames = [(f"{t.name}.csv", table_frame(t)) for t in TABLES] + [(REPORTED_P_CSV, reported_p_frame())]
    paths = []
    for name, frame in frames:
        paths.append(atomic_write(out_dir / name,
                                  lambda tmp, frame=frame: frame.to_csv(tmp, index=False, lineterminator="\n")))
    return paths

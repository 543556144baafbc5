"""The votes format: one row per judgment (one rater, one question, one criterion).

Columns (CSV, header required, extra columns are kept):

    rater_id            who answered (simulated panels use `synthetic-...`)
    question_id         the question (one prompt, two videos); the same id for every rater
    prompt_id           the prompt shown (a slug such as `a_panda_dancing`)
    method_left         method of the left video as this rater saw it
    method_right        method of the right video
    criterion           appearance | structure | motion | text | overall
    choice              left | right | none   (none = sub-question left unanswered)
    is_attention_check  true | false  (also 1/0, yes/no)
    answered_at         ISO 8601 time of the answer (may be empty)
    expected_choice     optional: left | right, the right answer of an attention check
    source              optional: e.g. `survey` or `synthetic`
    rater_completed     optional: true | false (or empty: unknown), whether the rater finished the survey
                        (`fourdfy survey export` writes it); the same for every row of a rater

`validate_votes` checks everything against a `Design` and raises one `VotesError` that lists every
offending row (by its line in the CSV, header = line 1). Nothing is dropped silently: identical
repeated rows are merged and counted; everything else that is wrong is an error, including a repeat
that matches only once criterion and choice are case-folded (`Appearance` where `structure` belongs
must not vanish as a duplicate of the `appearance` row). Questions a rater answered without all five
criteria are listed in `Votes.incomplete` (not an error: a survey may ask fewer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from userstudy.design import Design

COLUMNS = ("rater_id", "question_id", "prompt_id", "method_left", "method_right", "criterion", "choice",
           "is_attention_check", "answered_at")
OPTIONAL_COLUMNS = ("expected_choice", "source", "rater_completed")
CRITERIA = ("appearance", "structure", "motion", "text", "overall")
CRITERION_ABBR = {"appearance": "AQ", "structure": "SQ", "motion": "MQ", "text": "TA", "overall": "Overall"}
CHOICES = ("left", "right", "none")
SYNTHETIC_PREFIX = "synthetic-"
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
_SHOW_ROWS = 20


class VotesError(ValueError):
    """Bad votes: `problems` is a list of (what is wrong, offending rows with their CSV line)."""

    def __init__(self, problems: list[tuple[str, pd.DataFrame]], source: str = "votes"):
        self.problems = problems
        self.source = source
        frames = [rows.assign(problem=what) for what, rows in problems if rows is not None and len(rows)]
        self.rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        super().__init__(self._format())

    def _format(self) -> str:
        if len(self.problems) == 1 and (self.problems[0][1] is None or not len(self.problems[0][1])):
            return f"{self.source}: {self.problems[0][0]}; nothing was analysed"  # one problem, no rows: one line
        lines = [f"{self.source}: {len(self.problems)} problem(s), nothing was analysed:"]
        for what, rows in self.problems:
            if rows is None or not len(rows):
                lines.append(f"- {what}")
                continue
            lines.append(f"- {what}: {len(rows)} row(s)")
            shown = rows.head(_SHOW_ROWS).to_string(index=False)
            lines.extend("    " + ln for ln in shown.splitlines())
            if len(rows) > _SHOW_ROWS:
                lines.append(f"    ... and {len(rows) - _SHOW_ROWS} more")
        return "\n".join(lines)


@dataclass
class Votes:
    """Validated votes plus what validation had to say."""

    frame: pd.DataFrame
    """One row per judgment, typed; adds `line`, `answered`, `comparison`, `primary_side`,
    `chose_primary` (1/0, NaN if unanswered or a check), `expected_choice`, `check_passed`."""
    duplicates_merged: int = 0
    """Identical repeated rows (same rater, question, criterion and choice) counted once."""
    source: str = "votes"
    """Where the votes came from (file name)."""
    incomplete: pd.DataFrame | None = None
    """Questions of a rater without a row for every criterion: rater_id, question_id, `missing`
    (the criteria without a row, comma-separated), `line` (the question's first row); empty if none."""

    @property
    def synthetic(self) -> bool:
        """True when any rater is simulated (`synthetic-` id or a `source` of `synthetic`)."""
        f = self.frame
        flag = f["rater_id"].str.startswith(SYNTHETIC_PREFIX).any()
        if "source" in f:
            flag = flag or f["source"].str.lower().str.contains("synthetic").any()
        return bool(flag)


def read_votes(path: Path | str) -> pd.DataFrame:
    """Read a votes CSV as strings (no value is converted or dropped) with a `line` column."""
    path = Path(path)
    if not path.is_file():
        raise VotesError([("is a folder, not a votes file" if path.is_dir() else "votes file not found", None)],
                         source=str(path))
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, skipinitialspace=True)
    except pd.errors.EmptyDataError as err:  # 0 bytes or blank lines only: pandas says "No columns to parse"
        raise VotesError([(f"the votes file is empty; it needs a header line with the columns {','.join(COLUMNS)} "
                           f"(optional: {','.join(OPTIONAL_COLUMNS)}) and then one row per judgment "
                           "(`fourdfy survey export` or `fourdfy simulate-votes` writes one)", None)],
                         source=str(path)) from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise VotesError([(f"cannot parse as CSV: {err}", None)], source=str(path)) from err
    return raw


def _rows(frame: pd.DataFrame, mask, cols: tuple[str, ...]) -> pd.DataFrame:
    cols = ("line", *[c for c in cols if c in frame.columns])
    return frame.loc[np.asarray(mask, dtype=bool), list(dict.fromkeys(cols))].sort_values("line")


def validate_votes(raw: pd.DataFrame, design: Design, source: str = "votes") -> Votes:
    """Check raw votes (strings) against the design; raise `VotesError` listing every offending row."""
    raw = raw.copy()
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        # one header cell holding the column names: the file was written with another delimiter
        other = next((d for d in (";", "\t", "|") if len(raw.columns) == 1 and d in str(raw.columns[0])), None)
        hint = f"; the header is one cell split by {other!r}: votes files are comma-separated" if other else ""
        raise VotesError([(f"missing column(s) {', '.join(missing)} (required: {', '.join(COLUMNS)}){hint}", None)],
                         source=source)
    if raw.empty:
        raise VotesError([("no judgments (the file has a header only)", None)], source=source)
    df = raw.astype(str).apply(lambda s: s.str.strip())
    if "line" in raw.columns:
        raise VotesError([("a column named 'line' is reserved (it reports CSV line numbers)", None)], source=source)
    df.insert(0, "line", np.arange(len(df)) + 2)
    problems: list[tuple[str, pd.DataFrame]] = []
    row_bad = pd.Series(False, index=df.index)

    def flag(what: str, mask, cols: tuple[str, ...]) -> None:
        nonlocal row_bad
        problems.append((what, _rows(df, mask, cols)))
        row_bad = row_bad | np.asarray(mask, dtype=bool)

    ident = ("rater_id", "question_id", "criterion")

    for col in ("rater_id", "question_id", "prompt_id", "method_left", "method_right"):
        bad = df[col] == ""
        if bad.any():
            flag(f"empty {col}", bad, (*ident, col))
    # case-insensitive, but a bad value is shown as the file has it ('L', not 'l')
    bad = ~df["criterion"].str.lower().isin(CRITERIA)
    if bad.any():
        flag(f"unknown criterion (allowed: {', '.join(CRITERIA)})", bad, ident)
    bad = ~df["choice"].str.lower().isin(CHOICES)
    if bad.any():
        flag(f"unknown choice (allowed: {', '.join(CHOICES)})", bad, (*ident, "choice"))
    # as written: a repeat is identical only when it is spelled the same (see the duplicates below)
    df["_as_written"] = df["criterion"] + "\x1f" + df["choice"]
    df["criterion"] = df["criterion"].str.lower()
    df["choice"] = df["choice"].str.lower()
    is_check = df["is_attention_check"].str.lower()
    bad = ~is_check.isin(_TRUE | _FALSE)
    if bad.any():
        flag("is_attention_check is not true/false", bad, (*ident, "is_attention_check"))
    df["is_attention_check"] = is_check.isin(_TRUE)
    if "rater_completed" in df.columns:
        done = df["rater_completed"].str.strip().str.lower()
        bad = (done != "") & ~done.isin(_TRUE | _FALSE)
        if bad.any():
            flag("rater_completed is not true/false (or empty)", bad, (*ident, "rater_completed"))
        df["rater_completed"] = np.where(done.isin(_TRUE), True, np.where(done.isin(_FALSE), False, None))
    else:
        df["rater_completed"] = None  # unknown: not a survey export
    stamps = pd.to_datetime(df["answered_at"].where(df["answered_at"] != ""), format="ISO8601",
                            errors="coerce", utc=True)
    bad = (df["answered_at"] != "") & stamps.isna()
    if bad.any():
        flag("answered_at is not an ISO 8601 time", bad, (*ident, "answered_at"))

    same = (df["method_left"] == df["method_right"]) & (df["method_left"] != "")
    if same.any():
        flag("the same method on both sides", same, (*ident, "method_left", "method_right"))
    check = df["is_attention_check"]
    left_p = df["method_left"] == design.primary
    right_p = df["method_right"] == design.primary
    other = np.where(left_p, df["method_right"], np.where(right_p, df["method_left"], ""))
    ok_pair = (left_p ^ right_p) & pd.Series(other, index=df.index).isin(design.comparisons)
    known = set(design.methods)
    ok_check = df["method_left"].isin(known) & df["method_right"].isin(known)
    bad = np.where(check, ~ok_check, ~ok_pair) & ~same & (df["method_left"] != "") & (df["method_right"] != "")
    if bad.any():
        flag(f"method not in the design (primary {design.primary}; comparisons "
             f"{', '.join(design.comparisons)}; attention-check decoys {', '.join(design.check.decoys) or '-'}); "
             "a method of your own needs a design that lists it (--design; docs/userstudy.md, \"Design file\")",
             bad, (*ident, "method_left", "method_right", "is_attention_check"))

    # Attention checks: the right answer.
    expected = pd.Series("", index=df.index)
    if "expected_choice" in df.columns:
        given = df["expected_choice"].str.lower()
        bad = check & (given != "") & ~given.isin(("left", "right"))
        if bad.any():
            flag("expected_choice is not left/right", bad, (*ident, "expected_choice"))
        expected = given.where(given.isin(("left", "right")), "")
    correct = design.check.correct_method
    inferred = np.where(df["method_left"] == correct, "left", np.where(df["method_right"] == correct, "right", ""))
    expected = expected.where(expected != "", pd.Series(inferred, index=df.index)).where(check, "")
    bad = check & (expected == "")
    if bad.any():
        flag(f"attention check without a right answer (no expected_choice and neither side is {correct})",
             bad, (*ident, "method_left", "method_right"))
    df["expected_choice"] = expected

    # Checks across rows run on the rows that passed the checks above (no cascades of errors).
    full = df
    df = df.loc[~row_bad]
    # One answer per rater, question and criterion.
    dup = df.duplicated(list(ident), keep=False)
    merged = 0
    if dup.any():
        # what an answer says: the choice AND the sides it refers to ("left" under A|B is a vote for A, under B|A
        # for B) and the prompt; a repeat differing in any of them is a conflict, never merged (answered_at may
        # differ: a form submitted twice)
        content = df["choice"]
        for col in ("method_left", "method_right", "prompt_id", "is_attention_check", "expected_choice"):
            content = content + "\x1f" + df[col].astype(str)
        df = df.assign(_content=content)
        n_contents = df.groupby(list(ident))["_content"].transform("nunique")
        conflict = dup & (n_contents > 1)
        if conflict.any():
            problems.append(("the same rater answered the same sub-question more than once, differently (another "
                             "choice, sides or prompt)",
                             _rows(df, conflict, (*ident, "choice", "method_left", "method_right", "prompt_id",
                                                  "answered_at"))))
        n_spellings = df.groupby(list(ident))["_as_written"].transform("nunique")
        respelled = dup & ~conflict & (n_spellings > 1)
        if respelled.any():  # shown as written, else both rows read `appearance`
            crit, choice = df["_as_written"].str.split("\x1f", n=1, expand=True).T.to_numpy()
            problems.append(("the same rater answered the same sub-question in rows that match only when case is "
                             "ignored (criterion or choice spelled differently); is one of them another criterion?",
                             _rows(df.assign(criterion=crit, choice=choice), respelled,
                                   (*ident, "choice", "answered_at"))))
        exact = df.duplicated([*ident, "_content"], keep="first") & ~conflict & ~respelled
        merged = int(exact.sum())
        df = df.loc[~exact].drop(columns="_content")

    # A question is one prompt and one pair of methods for everybody; one layout per rater.
    pair = np.where(df["method_left"] < df["method_right"], df["method_left"] + " | " + df["method_right"],
                    df["method_right"] + " | " + df["method_left"])
    df = df.assign(_pair=pair)
    for col, what in (("prompt_id", "prompt"), ("_pair", "pair of methods"),
                      ("is_attention_check", "attention-check flag")):
        n = df.groupby("question_id")[col].transform("nunique")
        if (n > 1).any():
            problems.append((f"question_id with more than one {what} across rows",
                             _rows(df, n > 1, ("question_id", "rater_id", "criterion", "prompt_id",
                                               "method_left", "method_right", "is_attention_check"))))
    n = df.groupby("rater_id")["rater_completed"].transform("nunique")  # None is not counted
    if (n > 1).any():
        problems.append(("one rater marked both as having finished the survey and not (rater_completed)",
                         _rows(df, n > 1, ("rater_id", "question_id", "criterion", "rater_completed"))))
    n = df.groupby(["rater_id", "question_id"])["method_left"].transform("nunique")
    if (n > 1).any():
        problems.append(("one rater saw one question with two different left/right layouts",
                         _rows(df, n > 1, ("rater_id", "question_id", "criterion", "method_left", "method_right"))))
    if problems:
        raise VotesError(problems, source=source)
    assert len(full) == len(df) + merged  # nothing else removed

    df = df.drop(columns=["_pair", "_as_written"]).reset_index(drop=True)
    have = df.groupby(["rater_id", "question_id"], sort=False).agg(criteria=("criterion", set), line=("line", "min"))
    lacking = have[have["criteria"].map(len) < len(CRITERIA)]
    incomplete = pd.DataFrame({
        "rater_id": lacking.index.get_level_values(0), "question_id": lacking.index.get_level_values(1),
        "missing": [", ".join(c for c in CRITERIA if c not in got) for got in lacking["criteria"]],
        "line": lacking["line"].to_numpy()}).sort_values("line", ignore_index=True)
    df["answered"] = df["choice"] != "none"
    df["comparison"] = np.where(df["is_attention_check"], "",
                                np.where(df["method_left"] == design.primary, df["method_right"], df["method_left"]))
    df["primary_side"] = np.where(df["is_attention_check"], "",
                                  np.where(df["method_left"] == design.primary, "left", "right"))
    chose = (df["choice"] == df["primary_side"]).astype(float)
    df["chose_primary"] = chose.where(df["answered"] & ~df["is_attention_check"])
    passed = (df["choice"] == df["expected_choice"]).astype(float)
    df["check_passed"] = passed.where(df["is_attention_check"])
    return Votes(frame=df, duplicates_merged=merged, source=source, incomplete=incomplete)


def survey_labels(paths: list[Path]) -> list[str]:
    """What marks each file's raters when several are combined: the file names without `.csv`, or the paths
    as given when two names are the same."""
    stems = [p.stem for p in paths]
    return stems if len(set(stems)) == len(stems) else [str(p) for p in paths]


def combine_surveys(paths: list[Path | str], design: Design) -> pd.DataFrame:
    """Several votes files (one export per survey, e.g. Table 2's and Table 3's) as one raw votes frame.

    Each file is validated on its own first, so its errors name it and its own lines. A survey numbers its
    raters from 1 (`rater-00001`), so every rater id gets `@<label>` (`survey_labels`): the same id in two
    files is two raters, and attention checks and rater-level statistics stay per survey. The same file given
    twice (identical bytes) is an error.
    """
    import hashlib

    paths = [Path(p) for p in paths]
    seen: dict[str, Path] = {}
    frames = []
    for path, label in zip(paths, survey_labels(paths)):
        raw = read_votes(path)
        validate_votes(raw, design, source=path.name)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            raise VotesError([(f"the same votes as {seen[digest]} (a file given twice?)", None)], source=str(path))
        seen[digest] = path
        raw = raw.copy()
        raw.columns = [str(c).strip() for c in raw.columns]
        raw["rater_id"] = raw["rater_id"].str.strip() + f"@{label}"
        frames.append(raw)
    return pd.concat(frames, ignore_index=True).fillna("")


def load_votes(path: Path | str | list[Path | str], design: Design) -> Votes:
    """Read and validate a votes CSV, or several (`combine_surveys`) as one."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            if not path:
                raise VotesError([("no votes file given", None)])
            return validate_votes(combine_surveys(path, design), design,
                                  source=", ".join(Path(p).name for p in path))
        path = path[0]
    path = Path(path)
    return validate_votes(read_votes(path), design, source=path.name)

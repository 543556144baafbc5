"""The votes format: one row per judgment (one rater, one question, one criterion).

Columns (CSV, header required, extra columns are kept):

    rater_id            who answered (simulated panels use `synthetic-...`)
    question_id         the question (one prompt, two videos); the same id for every rater
    prompt_id           the prompt shown (a slug such as `a_panda_dancing`)
    method_left         method of the left video as this rater saw it
    method_right        method of the right video
    criterion           appearance | structure | motion | text | overall
    choice              left | right | none   (none = sub-question left unanswered)
    is_attention_check  true | false  (any case; nothing else: a `yes` or `1` is an error naming it)
    answered_at         ISO 8601 time of the answer (may be empty)
    expected_choice     optional: left | right, the right answer of an attention check
    source              optional: e.g. `survey` or `synthetic`
    rater_completed     optional: true | false (any case, or empty: unknown), whether the rater finished the survey
                        (`fourdfy survey export` writes it); the same for every row of a rater

`validate_votes` checks everything against a `Design` and raises one `VotesError` that lists every
offending row (by its line in the CSV, header = line 1): among others, a question must show the primary on one
side, and its prompt must be one its comparison is asked on (when the design's section names a prompt set whose
file the prompts folder has: the first `n_prompts` of it, `userstudy.design.section_prompts`). Nothing is dropped
silently: identical
repeated rows are merged and counted; everything else that is wrong is an error, including a repeat
that matches only once criterion and choice are case-folded (`Appearance` where `structure` belongs
must not vanish as a duplicate of the `appearance` row). Questions a rater answered without all five
criteria are listed in `Votes.incomplete` (not an error: a survey may ask fewer).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from userstudy.design import Design, DesignError, prompt_file, section_prompts

COLUMNS = ("rater_id", "question_id", "prompt_id", "method_left", "method_right", "criterion", "choice",
           "is_attention_check", "answered_at")
OPTIONAL_COLUMNS = ("expected_choice", "source", "rater_completed")
CRITERIA = ("appearance", "structure", "motion", "text", "overall")
CRITERION_ABBR = {"appearance": "AQ", "structure": "SQ", "motion": "MQ", "text": "TA", "overall": "Overall"}
CHOICES = ("left", "right", "none")
SYNTHETIC_PREFIX = "synthetic-"
# the flags' only values (docs/userstudy.md, "Votes format"; every writer of the suite writes these): a `yes` is
# named as an error rather than read, so that a stray value is never taken for a flag
_TRUE = {"true"}
_FALSE = {"false"}
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
    prompts_dir: Path | None = None
    """The folder of the `<prompt_set>.txt` files the prompts were checked against (None: the project's prompts/)."""

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
    if not isinstance(raw.index, pd.RangeIndex):
        # rows with more fields than the header: pandas makes the first field(s) an index and shifts every column,
        # so the rows would be reported against the wrong columns (an "unknown criterion" for every row)
        extra = raw.index.nlevels
        raise VotesError([(f"its rows have {extra} more field(s) than its header line ({len(raw.columns)} columns), "
                           "e.g. a trailing comma at the end of each row; remove the extra field(s) from the rows, "
                           "or name them in the header", None)], source=str(path))
    records = _records(path)
    if records is not None and len(records) == len(raw):
        raw.attrs["lines"] = [line for line, _ in records]
        # a short row: pandas fills the missing fields with "", which read as wrong values of the last columns
        # (`is_attention_check is not true/false`) rather than as the field left out
        header = [str(c).strip() for c in raw.columns]
        need = max(header.index(c) for c in COLUMNS if c in header) + 1 if set(COLUMNS) & set(header) else 0
        short = [(line, n) for line, n in records if n < need]
        if short:
            shown = ", ".join(f"{line} ({n})" for line, n in short[:10]) + (" ..." if len(short) > 10 else "")
            raise VotesError([(f"{len(short)} row(s) have fewer fields than its header line ({len(header)} columns), "
                               f"e.g. a value left out or a row broken over two lines; line (fields): {shown}",
                               None)], source=str(path))
    return raw


def _records(path: Path) -> list[tuple[int, int]] | None:
    """Per data row of a CSV: the line it starts on and its number of fields, as pandas reads the rows (blank lines
    skipped; a quoted value may span lines, so a row's line is not its index + 2). None if it cannot be read."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, skipinitialspace=True)
            records, start, header = [], 1, False
            for record in reader:
                line, start = start, reader.line_num + 1
                # pandas skips only a line holding nothing but spaces or tabs; `,,,` or `""` is a row (of blanks)
                if not record or (len(record) == 1 and not record[0].strip(" \t")):
                    continue
                if header:
                    records.append((line, len(record)))
                header = True
            return records
    except (csv.Error, UnicodeDecodeError, OSError):
        return None


def _rows(frame: pd.DataFrame, mask, cols: tuple[str, ...]) -> pd.DataFrame:
    cols = ("line", *[c for c in cols if c in frame.columns])
    return frame.loc[np.asarray(mask, dtype=bool), list(dict.fromkeys(cols))].sort_values("line")


_IDENT = ("rater_id", "question_id", "criterion")
"""What names one judgment: a rater's answer to one criterion of one question."""


class _Problems:
    """What validation found so far (what is wrong, the offending rows), and which rows have a problem of their
    own: the checks across rows skip those, so that one bad row does not cascade into more errors."""

    def __init__(self, index: pd.Index):
        self.found: list[tuple[str, pd.DataFrame]] = []
        self.row_bad = pd.Series(False, index=index)

    def flag(self, df: pd.DataFrame, what: str, mask, cols: tuple[str, ...]) -> None:
        """A problem of single rows: shown as the rows read now, and marked bad."""
        self.found.append((what, _rows(df, mask, cols)))
        self.row_bad = self.row_bad | np.asarray(mask, dtype=bool)

    def add(self, what: str, rows: pd.DataFrame) -> None:
        """A problem across rows (the rows are already picked)."""
        self.found.append((what, rows))


def _table(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """The raw table as stripped strings with a `line` column (its CSV line); VotesError when it cannot be
    votes at all (a required column missing, no rows, a column named `line`)."""
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
    lines = raw.attrs.get("lines")  # `read_votes`' line of each row, where it could tell
    df = raw.astype(str).apply(lambda s: s.str.strip())
    if "line" in raw.columns:
        raise VotesError([("a column named 'line' is reserved (it reports CSV line numbers)", None)], source=source)
    df.insert(0, "line", np.asarray(lines) if lines is not None and len(lines) == len(df) else np.arange(len(df)) + 2)
    return df


def _check_values(df: pd.DataFrame, problems: _Problems) -> None:
    """Per row: every field readable. Types the columns in place: criterion and choice lower-cased (as written
    kept in `_as_written`), is_attention_check and rater_completed (None: unknown) booleans."""
    for col in ("rater_id", "question_id", "prompt_id", "method_left", "method_right"):
        bad = df[col] == ""
        if bad.any():
            problems.flag(df, f"empty {col}", bad, (*_IDENT, col))
    # case-insensitive, but a bad value is shown as the file has it ('L', not 'l')
    bad = ~df["criterion"].str.lower().isin(CRITERIA)
    if bad.any():
        problems.flag(df, f"unknown criterion (allowed: {', '.join(CRITERIA)})", bad, _IDENT)
    bad = ~df["choice"].str.lower().isin(CHOICES)
    if bad.any():
        problems.flag(df, f"unknown choice (allowed: {', '.join(CHOICES)})", bad, (*_IDENT, "choice"))
    # as written: a repeat is identical only when it is spelled the same (`_merge_duplicates`)
    df["_as_written"] = df["criterion"] + "\x1f" + df["choice"]
    df["criterion"] = df["criterion"].str.lower()
    df["choice"] = df["choice"].str.lower()
    is_check = df["is_attention_check"].str.lower()
    bad = ~is_check.isin(_TRUE | _FALSE)
    if bad.any():
        problems.flag(df, f"is_attention_check is not true/false (found {_values(df.loc[bad, 'is_attention_check'])};"
                      " the column holds only true or false)", bad, (*_IDENT, "is_attention_check"))
    df["is_attention_check"] = is_check.isin(_TRUE)
    if "rater_completed" in df.columns:
        done = df["rater_completed"].str.strip().str.lower()
        bad = (done != "") & ~done.isin(_TRUE | _FALSE)
        if bad.any():
            problems.flag(df, f"rater_completed is not true/false (or empty) (found "
                          f"{_values(df.loc[bad, 'rater_completed'])})", bad, (*_IDENT, "rater_completed"))
        df["rater_completed"] = np.where(done.isin(_TRUE), True, np.where(done.isin(_FALSE), False, None))
    else:
        df["rater_completed"] = None  # unknown: not a survey export
    stamps = pd.to_datetime(df["answered_at"].where(df["answered_at"] != ""), format="ISO8601",
                            errors="coerce", utc=True)
    bad = (df["answered_at"] != "") & stamps.isna()
    if bad.any():
        problems.flag(df, "answered_at is not an ISO 8601 time", bad, (*_IDENT, "answered_at"))


def _values(column: pd.Series, k: int = 3) -> str:
    """The distinct values of `column` as the file has them, quoted: the first `k`, in file order."""
    seen = list(dict.fromkeys(column))
    return ", ".join(repr(v) for v in seen[:k]) + (f" and {len(seen) - k} more" if len(seen) > k else "")


def _check_methods(df: pd.DataFrame, design: Design, problems: _Problems) -> None:
    """Per row: two different methods, each in the design (a question: the primary against one of its
    comparisons; an attention check: any two methods of the design)."""
    same = (df["method_left"] == df["method_right"]) & (df["method_left"] != "")
    if same.any():
        problems.flag(df, "the same method on both sides", same, (*_IDENT, "method_left", "method_right"))
    check = df["is_attention_check"]
    left_p = df["method_left"] == design.primary
    right_p = df["method_right"] == design.primary
    other = np.where(left_p, df["method_right"], np.where(right_p, df["method_left"], ""))
    ok_pair = (left_p ^ right_p) & pd.Series(other, index=df.index).isin(design.comparisons)
    known = set(design.methods)
    ok_check = df["method_left"].isin(known) & df["method_right"].isin(known)
    bad = np.where(check, ~ok_check, ~ok_pair) & ~same & (df["method_left"] != "") & (df["method_right"] != "")
    # two methods of the design, but the primary on neither side: saying "not in the design" would be wrong
    unpaired = bad & ~check & ~left_p & ~right_p & ok_check
    if unpaired.any():
        problems.flag(df, f"the primary {design.primary} is on neither side (a question compares {design.primary} "
                      "with one of its comparisons; a question between two other methods is not part of the study, "
                      "and an attention check needs is_attention_check=true)",
                      unpaired, (*_IDENT, "method_left", "method_right", "is_attention_check"))
    bad = bad & ~unpaired
    if bad.any():
        problems.flag(df, f"method not in the design (primary {design.primary}; comparisons "
                      f"{', '.join(design.comparisons)}; attention-check decoys "
                      f"{', '.join(design.check.decoys) or '-'}); a method of your own needs a design that lists it "
                      "(--design; docs/userstudy.md, \"Design file\")",
                      bad, (*_IDENT, "method_left", "method_right", "is_attention_check"))


def _check_prompts(df: pd.DataFrame, design: Design, problems: _Problems, prompts_dir: Path | None = None) -> None:
    """Per question row (not a check, no problem of its own): its prompt is one its comparison is asked on, the
    prompts of its section (`section_prompts`: the first `n_prompts` of `<prompts_dir>/<prompt_set>.txt`, as
    `fourdfy survey build` asks them and `simulate-votes` draws them; default folder: the project's prompts/). A
    section without a prompt_set, or whose set has no file in the folder (generic ids of `simulate-votes`, a set of
    another folder), accepts any prompt."""
    from prompts import PromptFileError, load_prompts

    question = ~df["is_attention_check"] & ~problems.row_bad
    comparison = pd.Series(np.where(df["method_left"] == design.primary, df["method_right"], df["method_left"]),
                           index=df.index)
    sections: dict[tuple[str, int | None], list[str]] = {}  # (prompt set, n_prompts) -> comparisons, design order
    for comp in design.comparisons:
        section = design.section_of(comp)[1]
        if section.prompt_set:
            sections.setdefault((section.prompt_set, section.n_prompts), []).append(comp)
    # (prompt set, the prompts asked or why they cannot be told) -> comparisons: one message for the comparisons
    # asked the same prompts (n_prompts equal to the file's size, or none, ask the same)
    asked: dict[tuple[str, tuple[str, ...] | str], list[str]] = {}
    n_file: dict[str, int] = {}  # prompts in each set's file
    for (name, _), comps in sections.items():
        if not (question & comparison.isin(comps)).any() or not prompt_file(name, prompts_dir).is_file():
            continue
        section = design.section_of(comps[0])[1]
        try:
            slugs: tuple[str, ...] | str = tuple(section_prompts(section, prompts_dir))
            n_file[name] = len(load_prompts(prompt_file(name, prompts_dir)))
        except PromptFileError as err:
            slugs = f"cannot be read, so its rows cannot be checked: {err}"
        except DesignError as err:  # n_prompts beyond the file: which prompts are asked is not known
            slugs = f"cannot tell which prompts are asked, so its rows cannot be checked: {err}"
        asked.setdefault((name, slugs), []).extend(comps)
    order = {c: i for i, c in enumerate(design.comparisons)}
    for (name, slugs), comps in asked.items():
        comps = sorted(comps, key=order.get)
        if isinstance(slugs, str):
            problems.add(f"prompt set {name!r} of {', '.join(comps)} {slugs}", None)
            continue
        bad = question & comparison.isin(comps) & ~df["prompt_id"].isin(slugs)
        if not bad.any():
            continue
        where = f"prompts/{name}.txt" if prompts_dir is None else str(prompt_file(name, prompts_dir))
        if len(slugs) < n_file[name]:  # n_prompts asks part of the file: a later prompt of it is not asked either
            where = (f"the first {len(slugs)} prompts of {where}, the design's prompt_set and n_prompts; a later "
                     "prompt of the file needs a larger n_prompts")
        else:
            where += ", the design's prompt_set"
        problems.flag(df, f"prompt_id not in the prompt set {name} of its comparison {', '.join(comps)} "
                      f"({where}; a prompt of your own needs a design whose section names its prompt set, or none)",
                      bad, (*_IDENT, "prompt_id", "method_left", "method_right"))


def _attention_answers(df: pd.DataFrame, design: Design, problems: _Problems) -> None:
    """Per row: the right answer of each attention check, in place as `expected_choice` ("" on other rows): the
    file's own where it gives one, else the side of the design's correct method."""
    check = df["is_attention_check"]
    expected = pd.Series("", index=df.index)
    if "expected_choice" in df.columns:
        given = df["expected_choice"].str.lower()
        bad = check & (given != "") & ~given.isin(("left", "right"))
        if bad.any():
            problems.flag(df, "expected_choice is not left/right", bad, (*_IDENT, "expected_choice"))
        expected = given.where(given.isin(("left", "right")), "")
    correct = design.check.correct_method
    inferred = np.where(df["method_left"] == correct, "left", np.where(df["method_right"] == correct, "right", ""))
    expected = expected.where(expected != "", pd.Series(inferred, index=df.index)).where(check, "")
    bad = check & (expected == "")
    if bad.any():
        problems.flag(df, f"attention check without a right answer (no expected_choice and neither side is {correct})",
                      bad, (*_IDENT, "method_left", "method_right"))
    df["expected_choice"] = expected


def _merge_duplicates(df: pd.DataFrame, problems: _Problems) -> tuple[pd.DataFrame, int]:
    """One answer per rater, question and criterion: identical repeats merged into the first (returned with
    their number); repeats that differ, or match only once case is ignored, are problems."""
    dup = df.duplicated(list(_IDENT), keep=False)
    if not dup.any():
        return df, 0
    # what an answer says: the choice AND the sides it refers to ("left" under A|B is a vote for A, under B|A
    # for B) and the prompt; a repeat differing in any of them is a conflict, never merged (answered_at may
    # differ: a form submitted twice)
    content = df["choice"]
    for col in ("method_left", "method_right", "prompt_id", "is_attention_check", "expected_choice"):
        content = content + "\x1f" + df[col].astype(str)
    df = df.assign(_content=content)
    n_contents = df.groupby(list(_IDENT))["_content"].transform("nunique")
    conflict = dup & (n_contents > 1)
    if conflict.any():
        problems.add("the same rater answered the same sub-question more than once, differently (another "
                     "choice, sides or prompt)",
                     _rows(df, conflict, (*_IDENT, "choice", "method_left", "method_right", "prompt_id",
                                          "answered_at")))
    n_spellings = df.groupby(list(_IDENT))["_as_written"].transform("nunique")
    respelled = dup & ~conflict & (n_spellings > 1)
    if respelled.any():  # shown as written, else both rows read `appearance`
        crit, choice = df["_as_written"].str.split("\x1f", n=1, expand=True).T.to_numpy()
        problems.add("the same rater answered the same sub-question in rows that match only when case is "
                     "ignored (criterion or choice spelled differently); is one of them another criterion?",
                     _rows(df.assign(criterion=crit, choice=choice), respelled, (*_IDENT, "choice", "answered_at")))
    exact = df.duplicated([*_IDENT, "_content"], keep="first") & ~conflict & ~respelled
    return df.loc[~exact].drop(columns="_content"), int(exact.sum())


def _check_consistency(df: pd.DataFrame, problems: _Problems) -> None:
    """Across rows: a question is one prompt and one pair of methods for everybody; a rater finished the survey
    or did not; one layout per rater and question."""
    pair = np.where(df["method_left"] < df["method_right"], df["method_left"] + " | " + df["method_right"],
                    df["method_right"] + " | " + df["method_left"])
    df = df.assign(_pair=pair)
    for col, what in (("prompt_id", "prompt"), ("_pair", "pair of methods"),
                      ("is_attention_check", "attention-check flag")):
        n = df.groupby("question_id")[col].transform("nunique")
        if (n > 1).any():
            problems.add(f"question_id with more than one {what} across rows",
                         _rows(df, n > 1, ("question_id", "rater_id", "criterion", "prompt_id",
                                           "method_left", "method_right", "is_attention_check")))
    n = df.groupby("rater_id")["rater_completed"].transform("nunique")  # None is not counted
    if (n > 1).any():
        problems.add("one rater marked both as having finished the survey and not (rater_completed)",
                     _rows(df, n > 1, ("rater_id", "question_id", "criterion", "rater_completed")))
    n = df.groupby(["rater_id", "question_id"])["method_left"].transform("nunique")
    if (n > 1).any():
        problems.add("one rater saw one question with two different left/right layouts",
                     _rows(df, n > 1, ("rater_id", "question_id", "criterion", "method_left", "method_right")))


def _incomplete(df: pd.DataFrame) -> pd.DataFrame:
    """`Votes.incomplete`: the questions of a rater without a row for every criterion."""
    have = df.groupby(["rater_id", "question_id"], sort=False).agg(criteria=("criterion", set), line=("line", "min"))
    lacking = have[have["criteria"].map(len) < len(CRITERIA)]
    return pd.DataFrame({
        "rater_id": lacking.index.get_level_values(0), "question_id": lacking.index.get_level_values(1),
        "missing": [", ".join(c for c in CRITERIA if c not in got) for got in lacking["criteria"]],
        "line": lacking["line"].to_numpy()}).sort_values("line", ignore_index=True)


def _add_derived(df: pd.DataFrame, design: Design) -> None:
    """The columns the analysis reads, in place: answered, comparison, primary_side, chose_primary (1/0, NaN if
    unanswered or a check), check_passed (1/0 on checks, else NaN)."""
    df["answered"] = df["choice"] != "none"
    df["comparison"] = np.where(df["is_attention_check"], "",
                                np.where(df["method_left"] == design.primary, df["method_right"], df["method_left"]))
    df["primary_side"] = np.where(df["is_attention_check"], "",
                                  np.where(df["method_left"] == design.primary, "left", "right"))
    chose = (df["choice"] == df["primary_side"]).astype(float)
    df["chose_primary"] = chose.where(df["answered"] & ~df["is_attention_check"])
    passed = (df["choice"] == df["expected_choice"]).astype(float)
    df["check_passed"] = passed.where(df["is_attention_check"])


def validate_votes(raw: pd.DataFrame, design: Design, source: str = "votes",
                   prompts_dir: Path | str | None = None) -> Votes:
    """Check raw votes (strings) against the design; raise `VotesError` listing every offending row. `prompts_dir`:
    the folder of the design's `<prompt_set>.txt` files (default: the project's prompts/), as `survey build`'s."""
    prompts_dir = Path(prompts_dir) if prompts_dir is not None else None
    df = _table(raw, source)
    problems = _Problems(df.index)
    _check_values(df, problems)
    _check_methods(df, design, problems)
    _check_prompts(df, design, problems, prompts_dir)
    _attention_answers(df, design, problems)
    # Checks across rows run on the rows that passed the checks above (no cascades of errors).
    full = df
    df, merged = _merge_duplicates(df.loc[~problems.row_bad], problems)
    _check_consistency(df, problems)
    if problems.found:
        raise VotesError(problems.found, source=source)
    assert len(full) == len(df) + merged  # nothing else removed
    df = df.drop(columns=["_as_written"]).reset_index(drop=True)
    incomplete = _incomplete(df)
    _add_derived(df, design)
    return Votes(frame=df, duplicates_merged=merged, source=source, incomplete=incomplete,
                 prompts_dir=prompts_dir)


def survey_labels(paths: list[Path]) -> list[str]:
    """What marks each file's raters when several are combined: the file name without `.csv` (`votes-t2`); files of
    one name get as many of their folders' names as tell them apart (`a/votes`, `b/votes`), never a whole path, so
    that the outputs do not depend on where the files lie or on the folder the command ran in."""
    parts = [Path(os.path.abspath(p)).parts[1:] for p in paths]  # abspath: a symlinked folder keeps its name
    labels = [Path(p).stem for p in paths]
    for stem in {s for s in labels if labels.count(s) > 1}:
        group = [i for i, s in enumerate(labels) if s == stem]
        # the fewest folders that tell the files apart, by name without, then with, its suffix (`votes.csv` and
        # `votes.txt` in one folder differ only there)
        named = None
        for k in range(max(len(parts[i]) for i in group)):
            for full in (False, True):
                tried = {i: "/".join((*parts[i][:-1][max(len(parts[i]) - 1 - k, 0):],
                                      parts[i][-1] if full else stem)) for i in group}
                if len(set(tried.values())) == len(group):
                    named = tried
                    break
            if named is not None:
                break
        if named is None:  # one path twice: `combine_surveys` refuses the same file before labelling
            raise VotesError([("the same votes file is given twice", None)], source=str(paths[group[0]]))
        for i in group:
            labels[i] = named[i]
    return labels


_STAMPED = ("rater_id", "question_id", "criterion", "answered_at")
"""What names one stored answer of a survey database across its exports: the judgment and the time it was stored."""


def _judgment_keys(raw: pd.DataFrame) -> dict[str, set[tuple[str, ...]]]:
    """Per rater id, the `_STAMPED` values of their judgments with an answer time, as strings stripped (the time as
    one UTC spelling: `Z` and `+00:00` are one time). Simulated rows are left out: `simulate-votes` stamps its
    answers from a fixed clock, so two independent panels share rater ids, questions and times."""
    cols = raw[list(_STAMPED)].astype(str).apply(lambda c: c.str.strip())
    keep = cols["answered_at"] != ""
    # validate_votes has already refused a time that does not parse
    stamps = pd.to_datetime(cols["answered_at"].where(keep), format="ISO8601", utc=True, errors="coerce")
    cols["answered_at"] = stamps.map(lambda t: "" if pd.isna(t) else t.isoformat())
    keep &= ~cols["rater_id"].str.startswith(SYNTHETIC_PREFIX)
    if "source" in raw.columns:
        keep &= raw["source"].astype(str).str.strip().str.lower() != "synthetic"
    out: dict[str, set[tuple[str, ...]]] = {}
    for row in cols.loc[keep].itertuples(index=False):
        out.setdefault(row[0], set()).add(tuple(row))
    return out


def _shared_judgments(a: dict[str, set[tuple[str, ...]]], b: dict[str, set[tuple[str, ...]]]) -> tuple[int, int]:
    """The judgments (`_judgment_keys`) two files share of the raters who are one person in both, and those raters'
    number. A survey never changes or deletes a stored answer, so a rater of an earlier export has every judgment
    of theirs, with its time, in a later export of the same database: one file's judgments of the rater all in
    the other's. A few shared judgments alone are not enough: two surveys may ask the same attention check, and
    their raters are numbered from 1 in each (and a test clock gives every answer one time)."""
    n = raters = 0
    for rater in a.keys() & b.keys():
        shared = a[rater] & b[rater]
        if shared and (shared == a[rater] or shared == b[rater]):
            n += len(shared)
            raters += 1
    return n, raters


def combine_surveys(paths: list[Path | str], design: Design, prompts_dir: Path | str | None = None) -> pd.DataFrame:
    """Several votes files (one export per survey, e.g. Table 2's and Table 3's) as one raw votes frame.

    Each file is validated on its own first, so its errors name it and its own lines. A survey numbers its
    raters from 1 (`rater-00001`), so every rater id gets `@<label>` (`survey_labels`): the same id in two
    files is two raters, and attention checks and rater-level statistics stay per survey. The same file given
    twice (identical bytes) is an error, and so are two exports of one survey (an early and a later one): files
    sharing a rater's judgments with their answer times (`_shared_judgments`), which would count each of its
    raters twice. `prompts_dir` as in `validate_votes`.
    """
    import hashlib

    paths = [Path(p) for p in paths]
    seen: dict[str, Path] = {}
    answered: dict[Path, dict[str, set[tuple[str, ...]]]] = {}  # each file's `_judgment_keys`
    frames = []
    for path, label in zip(paths, survey_labels(paths)):
        raw = read_votes(path)
        validate_votes(raw, design, source=path.name, prompts_dir=prompts_dir)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            raise VotesError([(f"the same votes as {seen[digest]} (a file given twice?)", None)], source=str(path))
        seen[digest] = path
        raw = raw.copy()
        raw.columns = [str(c).strip() for c in raw.columns]
        keys = _judgment_keys(raw)
        for other, other_keys in answered.items():
            shared, raters = _shared_judgments(other_keys, keys)
            if shared:
                raise VotesError([(f"shares {shared} judgment(s) of {raters} rater(s) with {other} (the same rater, "
                                   "question, criterion and answered_at): two exports of one survey, e.g. an early "
                                   "and the final one, would count each of its raters twice; pass only the latest "
                                   "export of each survey", None)], source=str(path))
        answered[path] = keys
        raw["rater_id"] = raw["rater_id"].str.strip() + f"@{label}"
        frames.append(raw)
    return pd.concat(frames, ignore_index=True).fillna("")


def load_votes(path: Path | str | list[Path | str], design: Design, prompts_dir: Path | str | None = None) -> Votes:
    """Read and validate a votes CSV, or several (`combine_surveys`) as one; `prompts_dir` as in `validate_votes`."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            if not path:
                raise VotesError([("no votes file given", None)])
            return validate_votes(combine_surveys(path, design, prompts_dir), design,
                                  source=", ".join(Path(p).name for p in path), prompts_dir=prompts_dir)
        path = path[0]
    path = Path(path)
    return validate_votes(read_votes(path), design, source=path.name, prompts_dir=prompts_dir)

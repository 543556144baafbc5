"""Outputs of `fourdfy analyze`: the paper's tables (Markdown, LaTeX/booktabs, CSV), the full
statistics table, per-prompt and per-rater CSVs, `metrics.json` (for `dvc metrics show`) and a
Markdown report. No timestamps or absolute paths are written."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from evaluation.clip import OUTPUT_COLUMNS as CLIPSCORE_COLUMNS
from evaluation.clip import MixedOutputsError, check_recorded, recorded_digests
from userstudy.analysis import Analysis, rule_parts
from userstudy.design import Design, Section, Table, latex_escape, prompt_file
from userstudy.outputs import REPORT, OutputError, check_file_target, files_section, replace_folder, write_text
from userstudy.stats import binom_p
from userstudy.votes import CRITERIA, CRITERION_ABBR

BANNER_MD = "> **SYNTHETIC DATA**: simulated raters (`fourdfy simulate-votes`), not a user study."
BANNER_TEXT = "SYNTHETIC DATA: simulated raters, not a user study."
DASH_MD = "—"
DASH_TEX = "---"
NOT_SIG_MD = "†"
NOT_SIG_TEX = r"$^\dagger$"
# A CLIP value over fewer prompts than its section's set; not the dagger, which marks significance.
PARTIAL_MD = "‡"
PARTIAL_TEX = r"$^\ddagger$"
# A comparison whose preferences come from votes on fewer prompts than its section's set (after the label)
PREF_PARTIAL_MD = "§"
PREF_PARTIAL_TEX = r"$^{\S}$"
TINY_CLIP_MD = "> **RANDOM-WEIGHT TINY CLIP**: the CLIP scores are meaningless, for demos only."
TINY_CLIP_TEXT = "RANDOM-WEIGHT TINY CLIP: the CLIP scores are meaningless, for demos only."
CLIP_META = "clipscore.json"
"""What `fourdfy clipscore` writes beside clip.csv: the model and precision (`evaluation.clip.META`)."""
TINY_CLIP_ID = "fourdfy-tiny:clip"
"""`evaluation.clip_models.TINY_CLIP_ID` (not imported: that module loads torch); the model description of
the random-weight tiny CLIP starts with it, for a clipscore.json written before its `random_weights` key."""


class ClipError(ValueError):
    """A CLIP-score CSV is malformed."""


class ClipScore(NamedTuple):
    """One CLIP value of `load_clip`: the mean and, when the CSV gives them, how many prompts it
    averages (`n_prompts`) out of the prompt set's (`n_set`)."""

    value: float
    n_prompts: int | None = None
    n_set: int | None = None

    @property
    def partial(self) -> bool:
        """True when the mean covers only part of the prompt set."""
        return self.n_prompts is not None and self.n_set is not None and self.n_prompts < self.n_set


COUNT_COLUMNS = ("n_prompts", "n_set")
CLIP_COLUMNS = CLIPSCORE_COLUMNS["clip.csv"]
"""What `load_clip` reads: clip.csv's columns (method and clip required; prompt_set and the counts may be absent,
as in a hand-written file or one of an earlier clipscore)."""
OTHER_CLIPSCORE_TABLES = {
    "summary.csv": "means over every prompt, not per prompt set",
    "per_prompt.csv": "one score per prompt, not a mean per prompt set",
    "per_frame.csv": "one score per video frame, not a mean per prompt set",
}
"""The other tables `fourdfy clipscore` writes beside clip.csv, and what they hold instead of its per-set means.
Given as --clip, their `method` and `clip` columns would pass for clip.csv's rows without a prompt_set, and every
section, whatever its prompt set, would show the one mean over every prompt."""


@dataclass(frozen=True)
class ClipSource:
    """Which CLIP model made the CLIP values, from the clipscore.json beside clip.csv (`load_clip_source`);
    `model` None: not recorded (a hand-written clip.csv)."""

    model: str | None = None
    """The model description clipscore printed (architecture / weights (activation)[, bf16 image tower])."""
    precision: str | None = None
    """'fp32' or 'bf16' (image tower); None when the file does not say."""
    random_weights: bool = False
    """The random-weight tiny CLIP of the demos and tests: its scores mean nothing."""


def load_clip_source(clip_path: Path | str) -> ClipSource:
    """The model and precision of a CLIP file: its folder's clipscore.json, as `fourdfy clipscore` writes
    beside clip.csv; ClipSource() (not recorded) when there is none. ClipError when it cannot be read, or when
    it does not describe the CLIP file (`evaluation.clip.check_recorded`: the file matches none of the sha256 it
    records, as after a clipscore run killed between its renames; one of an earlier version records none, and then
    the file's columns must at least fit one of clipscore's tables, `check_clipscore_columns`)."""
    # beside the path as given, else beside the file a link points to (clipscore wrote both in one folder)
    metas = [Path(clip_path).parent / CLIP_META, Path(clip_path).resolve().parent / CLIP_META]
    meta = next((m for m in metas if m.exists()), None)
    if meta is None:
        return ClipSource()
    fix = (f"give the clip.csv of a `fourdfy clipscore` run, or move {CLIP_META} away (the tables then say the "
           "CLIP source is not recorded)")
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
        raise ClipError(f"{meta} (beside --clip) cannot be read as JSON ({reason}); {fix}") from None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, str) or not model.strip():
        raise ClipError(f"{meta} (beside --clip) names no CLIP model (no \"model\" text); {fix}")
    try:  # else the tables would label these values with another run's model and precision
        check_recorded(clip_path, meta, data)
    except MixedOutputsError as err:
        raise ClipError(str(err)) from None
    except OSError as err:
        raise ClipError(f"{clip_path}: cannot be read ({err.strerror or type(err).__name__})") from None
    except ValueError as err:
        raise ClipError(f"{meta} (beside --clip): {err}; {fix}") from None
    if recorded_digests(data) is None:  # nothing proves the file is one of the run's tables: its columns must fit
        check_clipscore_columns(clip_path, meta)
    precision = data.get("precision")
    precision = precision.strip() if isinstance(precision, str) and precision.strip() else None
    flag = data.get("random_weights")
    # clipscore records the flag; older files only the description, which starts with the tiny model's id
    tiny = flag if isinstance(flag, bool) else model.startswith(TINY_CLIP_ID)
    return ClipSource(model=model.strip(), precision=precision, random_weights=tiny)


SCORED_TABLES = tuple(name for name, cols in CLIPSCORE_COLUMNS.items() if {"method", "clip"} <= set(cols))
"""The tables of `fourdfy clipscore` with a `clip` column (clip.csv, per_prompt.csv, summary.csv): those a CLIP
file, or the summary a plot is drawn from, can be."""


def check_clipscore_columns(path: Path | str, meta: Path | str) -> None:
    """ClipError unless the header of the CSV at `path` fits one of clipscore's tables with scores
    (`SCORED_TABLES`): method and clip present, and every column one of that table's (a subset: a table of an
    earlier version has fewer). For a clipscore.json `meta` that records no sha256 of its tables (an earlier
    version), the one check that the file beside it could be one of them."""
    path, meta = Path(path), Path(meta)
    try:
        columns = [str(c).strip() for c in pd.read_csv(path, nrows=0, dtype=str).columns]
    except pd.errors.EmptyDataError:  # 0 bytes or blank lines: no columns at all
        columns = []
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ClipError(f"{path}: cannot read as a UTF-8 CSV ({' '.join(str(err).split())})") from None
    except OSError as err:
        raise ClipError(f"{path}: cannot be read ({err.strerror or type(err).__name__})") from None
    missing = [c for c in ("method", "clip") if c not in columns]
    if not missing and any(set(columns) <= set(CLIPSCORE_COLUMNS[name]) for name in SCORED_TABLES):
        return
    known = {c for name in SCORED_TABLES for c in CLIPSCORE_COLUMNS[name]}
    foreign = [c for c in columns if c not in known]
    if missing:
        problem = f"missing column(s) {', '.join(missing)}"
    elif foreign:
        problem = f"column(s) {', '.join(foreign)} that none of its tables has"
    else:
        problem = f"columns of more than one of its tables (none has all of {', '.join(columns)})"
    raise ClipError(f"{path} fits none of the tables of `fourdfy clipscore` ({', '.join(SCORED_TABLES)}: method, "
                    f"clip and no column of another table): {problem}; {meta.name} beside it, of an earlier clipscore "
                    "that records no sha256 of its tables, need not describe it: give a table of a `fourdfy "
                    f"clipscore` run, or move {meta.name} away (the CLIP source is then not recorded)")


def clip_source_text(source: ClipSource | None) -> str:
    """One short phrase for the tables' notes: "CLIP: <model>, <precision>." or "CLIP source not recorded"."""
    if source is None or source.model is None:
        return f"CLIP source not recorded (no {CLIP_META} beside the CLIP file)."
    text = f"CLIP: {source.model}"
    if source.precision is None:
        text += ", precision not recorded"
    elif source.precision not in source.model:  # a bf16 description already says "bf16 image tower"
        text += f", {source.precision}"
    if source.precision == "bf16":  # docs/evaluation.md: bf16 scores match fp32 only to about one decimal
        text += " (not to be compared with fp32 scores)"
    return text + "."


def _clip_fix(path: Path) -> str:
    """What to pass instead of `path` to --clip: the clip.csv beside it when there is one, else DIR/clip.csv."""
    beside = path.parent / "clip.csv"
    fix = (f"pass {beside}" if beside.is_file() and beside.name != path.name
           else "pass DIR/clip.csv, DIR being the --out of a `fourdfy clipscore` run")
    return f"--clip takes the clip.csv of `fourdfy clipscore` (one mean per method and prompt set): {fix}"


def check_not_csv(path: Path) -> None:
    """ClipError naming what `path` is when it is plainly no CSV, before pandas reads it (its tokenizer error would
    not say): clipscore's JSON record (clipscore.json, or any file starting with `{`) or a binary file (a NUL byte
    in its first 4 KiB: an image such as clipscore's plot)."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError as err:
        raise ClipError(f"{path}: cannot be read ({err.strerror or type(err).__name__})") from None
    if path.name == CLIP_META:
        raise ClipError(f"{path} is the {CLIP_META} of `fourdfy clipscore` (its record of the run: the model, the "
                        f"precision and the sha256 of its tables), not its clip.csv; {_clip_fix(path)}")
    if head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{"):
        raise ClipError(f"{path} is JSON (it starts with {{), not a CSV: {CLIP_META}, the record `fourdfy clipscore` "
                        f"writes beside clip.csv, has no scores; {_clip_fix(path)}")
    if b"\0" in head:
        raise ClipError(f"{path} is a binary file (NUL bytes: an image, say), not a CSV; {_clip_fix(path)}")


def check_clip_columns(path: Path, columns: list[str]) -> None:
    """ClipError unless `columns` (a CSV's header) are clip.csv's: method, clip and no column clip.csv lacks. One of
    clipscore's other tables (`OTHER_CLIPSCORE_TABLES`, or its columns of an earlier version: a subset) is named."""
    missing = [c for c in ("method", "clip") if c not in columns]
    foreign = [c for c in columns if c not in CLIP_COLUMNS]
    if not missing and not foreign:
        return
    fix = _clip_fix(path)
    # by columns, not name (a renamed copy is the same table); only when they fit just one of the tables
    tables = [name for name in OTHER_CLIPSCORE_TABLES
              if "method" in columns and set(columns) <= set(CLIPSCORE_COLUMNS[name])]
    if len(tables) == 1:
        name = tables[0]
        raise ClipError(f"{path} is the {name} of `fourdfy clipscore` ({OTHER_CLIPSCORE_TABLES[name]}), not its "
                        f"clip.csv; {fix}")
    problems = [f"missing column(s) {', '.join(missing)}"] if missing else []
    problems += [f"column(s) {', '.join(foreign)} that clip.csv does not have"] if foreign else []
    raise ClipError(f"{path}: {' and '.join(problems)} (clip.csv's columns: {','.join(CLIP_COLUMNS)}; method and "
                    f"clip required); {fix}")


def load_clip(path: Path | str) -> dict[tuple[str, str], ClipScore]:
    """Read a `method,clip[,prompt_set,n_prompts,n_set]` CSV (as `fourdfy clipscore` writes) ->
    {(method, prompt_set or ""): ClipScore}. Files without the count columns (or with empty counts)
    load with counts None. ClipError for any other columns, as in clipscore's summary.csv, per_prompt.csv and
    per_frame.csv (`check_clip_columns`)."""
    path = Path(path)
    if not path.is_file():
        raise ClipError(f"{path} is a folder, not a CLIP file (clipscore writes clip.csv in its --out folder)"
                        if path.is_dir() else f"CLIP file not found: {path}")
    check_not_csv(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ClipError(f"{path}: cannot read as a UTF-8 CSV ({' '.join(str(err).split())})") from None
    raw.columns = [c.strip() for c in raw.columns]
    check_clip_columns(path, list(raw.columns))
    raw = raw.apply(lambda s: s.str.strip())
    raw.insert(0, "line", np.arange(len(raw)) + 2)
    for col in ("prompt_set", *COUNT_COLUMNS):
        if col not in raw.columns:
            raw[col] = ""
    value = pd.to_numeric(raw["clip"], errors="coerce")
    problems = []
    bad = ~np.isfinite(value)  # NaN (not a number) and inf: a mean of finite cosines is never infinite
    if bad.any():
        problems.append(("clip is not a finite number", raw[bad]))
    counts = {}
    for col in COUNT_COLUMNS:
        given = raw[col] != ""
        num = pd.to_numeric(raw[col].where(given), errors="coerce")
        bad = given & ~(num.notna() & (num >= 0) & (num == num.round()))
        if bad.any():
            problems.append((f"{col} is not a whole number >= 0", raw[bad]))
        counts[col] = num
    bad = counts["n_prompts"] > counts["n_set"]  # NaN compares False: only rows giving both
    if bad.any():
        problems.append(("n_prompts is larger than n_set", raw[bad]))
    bad = raw.duplicated(["method", "prompt_set"], keep=False)
    if bad.any():
        problems.append(("more than one CLIP value for a method (and prompt_set)", raw[bad]))
    if problems:
        text = "\n".join(f"- {what}:\n" + "\n".join("    " + ln for ln in rows.to_string(index=False).splitlines())
                         for what, rows in problems)
        raise ClipError(f"{path}: bad CLIP rows:\n{text}")

    def _count(x) -> int | None:
        return None if pd.isna(x) else int(x)

    return {(m, s): ClipScore(float(v), _count(n), _count(k))
            for m, s, v, n, k in zip(raw["method"], raw["prompt_set"], value, counts["n_prompts"], counts["n_set"])}


def clip_missing(clip: dict, design: Design) -> list[str]:
    """Methods of the design's tables with no CLIP value at all in `clip` (no video of theirs was scored), in
    table order."""
    have = {m for m, _ in clip}
    return list(dict.fromkeys(m for t in design.tables for s in t.sections for m in s.rows if m not in have))


def clip_outside(clip: dict, design: Design) -> list[str]:
    """Methods with a CLIP value that no row of `design` shows (`clipscore` scores every artifact folder)."""
    known = set(design.comparisons) | {design.primary}
    return sorted({m for m, _ in clip} - known)


ALL_PROMPTS = "all"
"""prompt_set of clip.csv's rows over every prompt a method was scored on (`evaluation.clip.ALL_PROMPTS`)."""


ASKED = ", first "
"""In a key of `with_asked_means`: `<prompt_set>, first <n>`, the mean over the first n prompts of the set."""


def asked_name(prompt_set: str, n_prompts: int) -> str:
    """The prompt_set part of the key of a mean over the first `n_prompts` of `prompt_set` (`with_asked_means`)."""
    return f"{prompt_set}{ASKED}{n_prompts}"


VOTED = ", asked in "
"""In a key of `with_asked_means`: `all, asked in <table>[ section <i>]`, the mean over the prompts the votes ask a
section without prompt_set about (`voted_name`)."""


def voted_name(table: Table, index: int) -> str:
    """The prompt_set part of the key of a mean over the prompts the votes ask section `index` (from 0) of `table`,
    a section without prompt_set, about (`with_asked_means`): one per section, as the primary's row of each section
    averages the prompts of that section's questions."""
    return f"{ALL_PROMPTS}{VOTED}{table.name}" + (f" section {index + 1}" if len(table.sections) > 1 else "")


def _derived_set(prompt_set: str) -> bool:
    """Whether a key's prompt_set part is one `with_asked_means` made (not a prompt set of the CLIP file)."""
    return ASKED in prompt_set or prompt_set.startswith(ALL_PROMPTS + VOTED)


def clip_key(clip: dict, method: str, prompt_set: str, n_prompts: int | None = None,
             voted: str | None = None) -> tuple[str, str] | None:
    """Which value of `clip` a section over `prompt_set` (asking its first `n_prompts`, when given) shows for
    `method` (None: none). First the mean over the prompts the section asks, when `with_asked_means` found one
    (`voted`: the `voted_name` of a section without prompt_set); then a section naming its prompt set takes that
    set's row, one without the row over every prompt scored (`all`); either then a row without prompt_set (a
    hand-written file without the column). Another set's mean is never taken."""
    if prompt_set:
        keys = [(method, asked_name(prompt_set, n_prompts))] if n_prompts else []
    else:
        keys = [(method, voted)] if voted else []
    for key in (*keys, (method, prompt_set or ALL_PROMPTS), (method, "")):
        if key in clip:
            return key
    return None


PER_PROMPT = "per_prompt.csv"
"""The table of `fourdfy clipscore` with one score per (method, prompt): the asked prompts' means come from it."""


def same_run_per_prompt(clip_path: Path | str) -> Path | None:
    """The per_prompt.csv beside a clip.csv when the clipscore.json there records both as tables of one run (its
    sha256 of each); None otherwise (a hand-written clip.csv, an earlier clipscore's folder, a per_prompt.csv of
    another run or none): its scores must be those the clip.csv's means were made from."""
    from evaluation.clip import output_digest

    # beside the path as given, else beside the file a link points to, as `load_clip_source` finds clipscore.json
    for folder in dict.fromkeys((Path(clip_path).parent, Path(clip_path).resolve().parent)):
        path, meta = folder / PER_PROMPT, folder / CLIP_META
        if not (path.is_file() and meta.is_file()):
            continue
        try:
            digests = recorded_digests(json.loads(meta.read_text(encoding="utf-8")))
            if digests and digests.get(PER_PROMPT) == output_digest(path) \
                    and output_digest(clip_path) in digests.values():
                return path
        except (OSError, UnicodeDecodeError, ValueError):
            continue
    return None


def _asks_part(score: ClipScore, section: Section) -> bool:
    """Whether the set's CLIP value need not be the mean over the prompts `section` asks: it asks the first
    n_prompts of its set and the value averages more (`clip_over_asked`) or comes from a set of another size, or
    of unknown size (its prompts then need not be the first n_prompts)."""
    return bool(section.prompt_set and section.n_prompts
                and (clip_over_asked(score, section) or score.n_set != section.n_prompts))


def asked_prompts(votes: pd.DataFrame) -> dict[str, list[str]]:
    """{comparison: the prompts (sorted) of its questions in a validated votes frame (`Votes.frame`)}, any rater's,
    answered or not, attention checks left out: what the raters were asked about it. For a section without
    prompt_set this is what `survey build` asked (`userstudy.design.paired_prompts`), read from the votes as
    everything else `analyze` says about them is (it is not given the artifact folders)."""
    questions = votes[votes["comparison"] != ""]
    return {str(c): sorted(map(str, p.unique())) for c, p in questions.groupby("comparison")["prompt_id"]}


def _voted_rows(design: Design, asked: Mapping[str, list[str]]) -> list[tuple[str, str, list[str]]]:
    """(method, `voted_name`, the prompts its row's CLIP averages) of every row of a section without prompt_set
    whose prompts the votes tell (`asked_prompts`): a comparison's are those of its questions, the primary's those
    of the section's questions together. A section with no question in the votes (a survey of another table) is
    left out, and so is a comparison without questions: nothing says which prompts they are asked about."""
    rows = []
    for table in design.tables:
        for index, section in enumerate(table.sections):
            if section.prompt_set:
                continue
            comps = [m for m in section.rows if m != design.primary and asked.get(m)]
            if not comps:
                continue
            name = voted_name(table, index)
            for m in section.rows:
                if m == design.primary:
                    rows.append((m, name, sorted({p for c in comps for p in asked[c]})))
                elif m in comps:
                    rows.append((m, name, list(asked[m])))
    return rows


def with_asked_means(clip: dict, clip_path: Path | str, design: Design,
                     prompts_dir: Path | str | None = None,
                     asked: Mapping[str, list[str]] | None = None) -> tuple[dict, Path | None]:
    """`clip` and, for every row of a section that asks the first `n_prompts` of a larger set (`_asks_part`), the
    mean over the asked prompts that the run scored, from the per_prompt.csv of the same clipscore run
    (`same_run_per_prompt`): key (method, `asked_name`), ClipScore(mean, asked prompts scored, n_prompts), so a
    value over part of them is marked as any partial mean. A method that scored none of them gets
    ClipScore(nan, 0, n_prompts) (`clip_none_asked`): the set's value, over other prompts, is not shown.

    Likewise every row of a section without prompt_set whose prompts `asked` (`asked_prompts` of the votes) tells
    (`_voted_rows`): key (method, `voted_name`), ClipScore(mean, asked prompts scored, prompts asked) from the
    run's per_prompt.csv; without one, the `all` row's value when it averages at most the asked number (shown as
    clip.csv's values are, marked when over fewer), else ClipScore(nan, its prompts, prompts asked), which
    `clip_over_asked` keeps out of the tables. Also returns the per_prompt.csv used (None: none was found)."""
    from userstudy.design import section_prompts

    wanted = [(m, s) for t in design.tables for s in t.sections for m in s.rows
              if (key := clip_key(clip, m, s.prompt_set)) is not None and _asks_part(clip[key], s)]
    voted = _voted_rows(design, asked or {})
    path = same_run_per_prompt(clip_path) if wanted or voted else None
    if path is None and not voted:
        return clip, None
    out = dict(clip)
    scores = None
    if path is not None:
        try:
            scores = pd.read_csv(path, dtype={"method": str, "slug": str}, keep_default_na=False)
            scores = scores[["method", "slug", "clip"]].astype({"clip": float})
        except (OSError, UnicodeDecodeError, ValueError, KeyError, pd.errors.ParserError) as err:
            raise ClipError(f"{path} (beside --clip): cannot read its method, slug and clip columns "
                            f"({' '.join(str(err).split())})") from None

    def _mean(method: str, prompts: list[str]) -> ClipScore:
        mine = scores[(scores["method"] == method) & scores["slug"].isin(prompts)]
        return ClipScore(float(mine["clip"].mean()) if len(mine) else math.nan, int(mine["slug"].nunique()),
                         len(prompts))

    for method, section in wanted if scores is not None else ():
        try:
            prompts = list(section_prompts(section, prompts_dir))
        except ValueError:  # a missing or short prompt file: the votes check names it
            continue
        out[method, asked_name(section.prompt_set, section.n_prompts)] = _mean(method, prompts)
    for method, name, prompts in voted:
        key = clip_key(clip, method, "")
        if key is None:  # a method never scored: "—", noted as absent from the CLIP file
            continue
        if scores is not None:
            out[method, name] = _mean(method, prompts)
            continue
        if clip[key].n_prompts is None:  # a value without counts (a hand-written file): shown as given
            continue
        score = clip[key]
        out[method, name] = (ClipScore(math.nan, score.n_prompts, len(prompts)) if score.n_prompts > len(prompts)
                             else ClipScore(score.value, score.n_prompts, len(prompts)))
    return out, path


def clip_none_asked(score: ClipScore) -> bool:
    """A value of `with_asked_means` for a method scored on none of the prompts its section asks."""
    return score.n_prompts == 0 and math.isnan(score.value)


def clip_over_asked(score: ClipScore, section: Section) -> bool:
    """Whether `score`, the CLIP value a section would show, averages more prompts than the section asks. A section
    naming a `prompt_set` and `n_prompts` asks the first n_prompts of the set (`design.section_prompts`); a mean over
    more (clipscore's over the whole set, say) holds prompts no rater was asked about there, and clip.csv holds no
    per-prompt scores to average the asked ones only: `with_asked_means` adds that mean from the per_prompt.csv of
    the same run when there is one; without, the tables show no value (a note says why). A value over
    at most n_prompts is shown, marked as ever when it is over fewer than its set (clip.csv does not name its
    prompts); a value without counts (a hand-written file) cannot be told and is shown as given. A section without
    prompt_set asks the prompts of its questions in the votes: `with_asked_means` gives its rows n_set = that many,
    and n_prompts above it when the only value is the `all` row's over more (a CLIP file's rows never have it)."""
    if not section.prompt_set:
        return score.n_prompts is not None and score.n_set is not None and score.n_prompts > score.n_set
    return bool(section.n_prompts and score.n_prompts is not None and score.n_prompts > section.n_prompts)


def asked_count(score: ClipScore, section: Section) -> int | None:
    """How many prompts a section asks, for a note on a CLIP value not shown (`clip_over_asked`,
    `clip_none_asked`): its n_prompts; without prompt_set, the prompts of its questions (`with_asked_means`)."""
    return section.n_prompts if section.prompt_set else score.n_set


def clip_shown(clip: dict, design: Design) -> list[tuple[str, str]]:
    """The keys of `clip` whose values the design's tables show, each once, in table order (a value over more
    prompts than its section asks, `clip_over_asked`, is not shown)."""
    keys = [key for t in design.tables for i, s in enumerate(t.sections) for m in s.rows
            if (key := clip_key(clip, m, s.prompt_set, s.n_prompts, voted_name(t, i))) is not None
            and not clip_over_asked(clip[key], s) and not clip_none_asked(clip[key])]
    return list(dict.fromkeys(keys))


def clip_refused(clip: dict, design: Design) -> list[tuple[str, str, int, int]]:
    """(method, prompt set, prompts the CLIP value averages, prompts the section asks) of every row of the design's
    tables whose CLIP value is not shown because it averages more prompts than its section asks (`clip_over_asked`),
    or because the method was scored on none of them (`clip_none_asked`: 0 prompts), each once, in table order."""
    out = []
    for t in design.tables:
        for i, s in enumerate(t.sections):
            for m in s.rows:
                key = clip_key(clip, m, s.prompt_set, s.n_prompts, voted_name(t, i))
                if key is not None and (clip_over_asked(clip[key], s) or clip_none_asked(clip[key])):
                    out.append((m, s.prompt_set, clip[key].n_prompts, asked_count(clip[key], s)))
    return list(dict.fromkeys(out))


def clip_unmatched(clip: dict, design: Design) -> dict[str, tuple[list[str], list[str]]]:
    """{method: (the prompt sets its sections name, the prompt sets `clip` has for it)} for each method of
    the design's tables with CLIP values of which some section shows none ("" names a section without
    prompt_set, which shows the `all` row)."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for t in design.tables:
        for s in t.sections:
            for m in s.rows:
                have = [ps for mm, ps in clip if mm == m and not _derived_set(ps)]
                if have and clip_key(clip, m, s.prompt_set) is None:
                    wanted = out.setdefault(m, ([], have))[0]
                    if s.prompt_set not in wanted:
                        wanted.append(s.prompt_set)
    return out


def prompt_set_size(section: Section, prompts_dir: Path | str | None = None) -> int | None:
    """How many prompts a section's comparisons are judged on: the design's `n_prompts` when it gives one (a study
    on the first n prompts of its set, as `simulate-votes` draws them), else the prompts of its file
    `<prompts_dir>/<prompt_set>.txt` (default folder: the project's prompts/; what `survey build` asks, votes are
    checked against and clipscore's n_set counts). None for a section without `prompt_set` (any prompt is
    accepted, so no set to fall short of), or one whose size nothing says."""
    from prompts import PromptFileError, load_prompts

    if not section.prompt_set:
        return None
    if section.n_prompts:
        return section.n_prompts
    path = prompt_file(section.prompt_set, prompts_dir)
    if not path.is_file():
        return None
    try:
        return len(load_prompts(path))
    except PromptFileError:  # the votes check names a broken file; the tables only lose the count
        return None


def voted_prompts(analysis: Analysis) -> dict[str, int]:
    """{comparison: distinct prompts with at least one answered judgment, any criterion} among the analysed
    judgments (attention checks and excluded raters left out, as in every statistic)."""
    pp = analysis.per_prompt
    answered = pp[pp["n"] > 0]
    return {str(c): int(n) for c, n in answered.groupby("comparison")["prompt_id"].nunique().items()}


def covers_part(n_voted: int | None, n_set: int | None) -> bool:
    """Whether preferences from votes on `n_voted` prompts cover only part of a set of `n_set` (a comparison
    without votes shows n/a, and a set of unknown size has nothing to fall short of: neither is marked)."""
    return bool(n_voted and n_set is not None and n_voted < n_set)


def partial_preferences(analysis: Analysis) -> list[tuple[str, str, int, int]]:
    """(method, prompt set, prompts with votes, prompts of the set) of every comparison of the design's tables
    whose preferences cover only part of its section's prompts: what the tables mark."""
    design, voted = analysis.design, voted_prompts(analysis)
    return [(m, sec.prompt_set, voted[m], n_set) for t in design.tables for sec in t.sections for m in sec.rows
            if m != design.primary
            and covers_part(voted.get(m, 0), n_set := prompt_set_size(sec, analysis.prompts_dir))]


def layout(analysis: Analysis, table: Table, clip: dict | None = None) -> pd.DataFrame:
    """Rows of one paper table: headings, the primary's CLIP row, one row per comparison. `clip` None: no CLIP
    file was given (then no row is noted as missing from it)."""
    given, clip = clip is not None, clip or {}
    design = analysis.design
    stats = analysis.table.set_index(["comparison", "criterion"])
    voted = voted_prompts(analysis)
    rows = []
    for s_idx, section in enumerate(table.sections):
        if section.heading:
            rows.append({"kind": "heading", "section": s_idx, "method": "", "label": section.heading,
                         "label_latex": latex_escape(section.heading)})
        n_set = prompt_set_size(section, analysis.prompts_dir)
        for method in section.rows:
            key = clip_key(clip, method, section.prompt_set, section.n_prompts, voted_name(table, s_idx))
            score = ClipScore(math.nan) if key is None else clip[key]
            absent = given and key is None
            # a mean over more prompts than the section asks is not its value: none is shown, a note says why
            over_n = score.n_prompts if clip_over_asked(score, section) or clip_none_asked(score) else None
            asked = asked_count(score, section) if over_n is not None else None
            if over_n is not None:
                score = ClipScore(math.nan)
            row = {"kind": "primary" if method == design.primary else "comparison", "section": s_idx,
                   "method": method, "label": design.label(method), "label_latex": design.label(method, latex=True),
                   "clip": score.value, "clip_n_prompts": score.n_prompts, "clip_n_set": score.n_set,
                   "clip_partial": score.partial and not math.isnan(score.value),
                   "clip_over_n": over_n, "clip_asked": asked,
                   "clip_absent": absent,
                   # the mean over the prompts the votes ask a section without prompt set about (`with_asked_means`)
                   "clip_voted": key is not None and not section.prompt_set and _derived_set(key[1]),
                   "heading": section.heading, "prompt_set": section.prompt_set}
            # the prompts the preferences cover, of the section's set; a comparison without votes (a survey of
            # another table) shows n/a and gets no mark, nor does a set of unknown size
            n_voted = voted.get(method, 0) if method != design.primary else None
            row.update(pref_n_prompts=n_voted, pref_n_set=n_set if method != design.primary else None,
                       pref_partial=covers_part(n_voted, n_set))
            if method != design.primary:
                for crit in CRITERIA:
                    cell = stats.loc[(method, crit)]
                    row[crit] = cell["pct_primary"]
                    row[f"{crit}_significant"] = bool(cell["significant"]) if cell["n"] > 0 else None
                    row[f"{crit}_n"] = int(cell["n"])
            rows.append(row)
    return pd.DataFrame(rows)


def _pct(value: float, sig, pct: str, mark: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:.0f}"
    # rounding must not print a unanimous-looking 100% (or 0%) when some judgment went the other way
    if text == "100" and value < 100:
        text = "99"
    elif text == "0" and value > 0:
        text = "1"
    return text + pct + ("" if sig else mark)


def level_text(alpha: float) -> str:
    """The significance level as the captions print it (0.05)."""
    return f"{alpha:g}"


def coverage_text(alpha: float) -> str:
    """The intervals' coverage, 1 - alpha, as a percent (95%)."""
    return f"{100 * (1 - alpha):.10g}%"


TEST_TEXT = {"chi2": "chi-square test as in the paper",
             "cluster": "rater-robust test, exact sign flips over raters; not the paper's chi-square"}
"""The test behind the daggers (`AnalysisConfig.significance`), as the Markdown tables name it."""
HOLM_OVER = {"chi2": "the paper's chi-square p-values",
             "cluster": "the rater-robust p-values, `--significance cluster`; cells with one rater have none"}
"""What the report says Holm's correction adjusted (`AnalysisConfig.significance`)."""
TEST_LATEX = {"chi2": "chi-square test", "cluster": "rater-robust test, exact sign flips over raters"}
"""The same, as the LaTeX captions name it."""


HOLM_FAMILY = "over every comparison and criterion of the analysis, all its tables together"
"""The Holm family, as the captions say it (`analysis._cell_rows`: every cell with judgments)."""


def _clip_text(row, dash: str, partial_mark: str) -> str:
    value = row.get("clip")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return dash
    return f"{value:.1f}" + (partial_mark if row.get("clip_partial") else "")


def _pref_partial(row) -> bool:
    """Whether a `layout` row's preferences cover only part of its section's prompts (headings: False)."""
    flag = row.get("pref_partial")
    return isinstance(flag, (bool, np.bool_)) and bool(flag)


def _label_text(row, latex: bool) -> str:
    """The method label of a row, marked when its preferences cover only part of the section's prompts."""
    if latex:
        return row["label_latex"] + (PREF_PARTIAL_TEX if _pref_partial(row) else "")
    return row["label"] + (PREF_PARTIAL_MD if _pref_partial(row) else "")


def _pref_notes(rows: pd.DataFrame, latex: bool) -> list[str]:
    """'<label> (<prompt set>): n of N' for every comparison whose preferences cover part of its set."""
    notes = []
    for _, r in rows.iterrows():
        if r["kind"] == "heading" or not _pref_partial(r):
            continue
        label = r["label_latex"] if latex else r["label"]
        where = latex_escape(r["prompt_set"]) if latex else r["prompt_set"]
        notes.append(f"{label} ({where}): {int(r['pref_n_prompts'])} of {int(r['pref_n_set'])}")
    return notes


PREF_NOTE = "Preferences from votes on only part of the section's prompts (n of N prompts): "


def _partial_notes(rows: pd.DataFrame, latex: bool) -> list[str]:
    """'<label> (<prompt set>): n of N' for every partial CLIP value, each once (the primary's row in two
    sections over one prompt set is one value)."""
    notes = []
    for _, r in rows.iterrows():
        if r["kind"] == "heading" or not r.get("clip_partial"):
            continue
        where = r["prompt_set"] or r["heading"]  # the set names the N of "n of N"
        label = r["label_latex"] if latex else r["label"]
        if where:
            where = latex_escape(where) if latex else where
            label += f" ({where})"
        note = f"{label}: {int(r['clip_n_prompts'])} of {int(r['clip_n_set'])}"
        if note not in notes:
            notes.append(note)
    return notes


def _over_notes(rows: pd.DataFrame, latex: bool, voted: bool = False) -> list[str]:
    """'<label> (<prompt set>): n prompts, m asked' for every CLIP value not shown because it averages more prompts
    than its section asks (`clip_over_asked`), or '...: none of the m asked prompts scored' (`clip_none_asked`),
    each once: of sections naming a prompt set, or (`voted`) of those without one ('<label> (all): ...')."""
    notes = []
    for _, r in rows.iterrows():
        over = r.get("clip_over_n")
        if r["kind"] == "heading" or over is None or pd.isna(over) or bool(r["prompt_set"]) == voted:
            continue
        label = r["label_latex"] if latex else r["label"]
        where = r["prompt_set"] or ALL_PROMPTS
        where = latex_escape(where) if latex else where
        asked = int(r["clip_asked"])
        note = (f"{label} ({where}): none of the {asked} asked prompts scored" if int(over) == 0
                else f"{label} ({where}): {int(over)} prompts, {asked} asked")
        if note not in notes:
            notes.append(note)
    return notes


def _latex_note(text: str) -> str:
    """A note's Markdown text for LaTeX: escaped, its `code` spans as \\texttt (a backtick would print as a quote)."""
    parts = text.split("`")
    return "".join(latex_escape(part) if i % 2 == 0 else r"\texttt{" + latex_escape(part) + "}"
                   for i, part in enumerate(parts))


def _absent_notes(rows: pd.DataFrame, latex: bool) -> list[str]:
    """'<label> (<prompt set, or all>)' of every row the CLIP file has no value for (`layout`'s clip_absent), each
    once."""
    notes = []
    for _, r in rows.iterrows():
        if r["kind"] == "heading" or not r.get("clip_absent"):
            continue
        where = r["prompt_set"] or ALL_PROMPTS
        note = f"{r['label_latex']} ({latex_escape(where)})" if latex else f"{r['label']} ({where})"
        if note not in notes:
            notes.append(note)
    return notes


ABSENT_NOTE = ("No CLIP value in the CLIP file for the section's prompt set (no video of the method scored there: "
               "`fourdfy clipscore` scores the artifact folders it is given, `fourdfy import-videos` brings in "
               "videos of other methods): ")
"""The note under a table on its rows without a CLIP value (`_absent_notes`)."""


OVER_NOTE = ("CLIP not shown: the CLIP file's mean is over more prompts of the set than the section asks (its first "
             "n_prompts), and no score of those prompts alone was found (the per_prompt.csv of the same `fourdfy "
             "clipscore` run, beside clip.csv), or none of them was scored: ")
VOTED_OVER_NOTE = ("CLIP not shown: the CLIP file's mean over every prompt scored (`all`) is over more prompts than "
                   "the votes ask about (the section names no prompt set), and no score of those prompts alone was "
                   "found (the per_prompt.csv of the same `fourdfy clipscore` run, beside clip.csv), or none of them "
                   "was scored: ")
"""The notes under a table on its CLIP values not shown (`_over_notes`), of sections with and without a prompt set."""


def _over_blocks(rows: pd.DataFrame, latex: bool) -> list[tuple[str, list[str]]]:
    """(the note's lead, its entries) of `_over_notes`, for sections naming a prompt set and for those without,
    each only when it has entries."""
    return [(lead, notes) for lead, voted in ((OVER_NOTE, False), (VOTED_OVER_NOTE, True))
            if (notes := _over_notes(rows, latex, voted))]


def shows_clip(rows: pd.DataFrame) -> bool:
    """Whether a table's rows (`layout`) hold any CLIP value (then its notes name the CLIP source)."""
    return "clip" in rows and bool(rows["clip"].notna().any())


def table_markdown(rows: pd.DataFrame, table: Table, primary_label: str, synthetic: bool,
                   clip_source: ClipSource | None = None, alpha: float = 0.05,
                   significance: str = "chi2") -> str:
    """`clip_source`: the model of the CLIP values, named in the notes when the table shows any."""
    head = ["Method", "CLIP", *(CRITERION_ABBR[c] for c in CRITERIA)]
    out = []
    if synthetic:
        out += [BANNER_MD, ""]
    with_clip = shows_clip(rows)
    if with_clip and clip_source is not None and clip_source.random_weights:
        out += [TINY_CLIP_MD, ""]
    caption = table.caption or f"Human preference for {primary_label}."
    out += [f"**{table.name}.** {caption}", "", "| " + " | ".join(head) + " |",
            "|:--|" + "--:|" * (len(head) - 1)]
    for _, r in rows.iterrows():
        if r["kind"] == "heading":
            out.append(f"| *{r['label']}* |" + " |" * (len(head) - 1))
            continue
        cells = [_label_text(r, latex=False), _clip_text(r, DASH_MD, PARTIAL_MD)]
        for crit in CRITERIA:
            cells.append(DASH_MD if r["kind"] == "primary"
                         else _pct(r[crit], r[f"{crit}_significant"], "%", NOT_SIG_MD))
        out.append("| " + " | ".join(cells) + " |")
    out += ["", f"Percent of answered judgments preferring {primary_label} (never rounded to 0% or 100% unless "
            f"unanimous); {NOT_SIG_MD} = not significant at {level_text(alpha)} after Holm correction {HOLM_FAMILY} "
            f"({TEST_TEXT[significance]}); n, intervals and p-values in `table.csv`."]
    notes = _partial_notes(rows, latex=False)
    if notes:
        out += ["", f"{PARTIAL_MD} CLIP is the mean over only part of the section's prompts (n of N prompts): "
                + "; ".join(notes) + "."]
    for lead, notes in _over_blocks(rows, latex=False):
        out += ["", f"{DASH_MD} {lead}" + "; ".join(notes) + "."]
    notes = _absent_notes(rows, latex=False)
    if notes:
        out += ["", f"{DASH_MD} {ABSENT_NOTE}" + "; ".join(notes) + "."]
    notes = _pref_notes(rows, latex=False)
    if notes:
        out += ["", f"{PREF_PARTIAL_MD} {PREF_NOTE}" + "; ".join(notes) + "."]
    if with_clip:
        out += ["", clip_source_text(clip_source)]
    return "\n".join(out) + "\n"


def table_latex(rows: pd.DataFrame, table: Table, primary_label: str, synthetic: bool, source: str,
                clip_source: ClipSource | None = None, alpha: float = 0.05,
                significance: str = "chi2") -> str:
    ncol = 2 + len(CRITERIA)
    caption = latex_escape(table.caption or f"Human preference for {primary_label}.")
    caption += (f" {NOT_SIG_TEX}: not significant at $p<{level_text(alpha)}$ after Holm correction "
                f"{latex_escape(HOLM_FAMILY)} ({latex_escape(TEST_LATEX[significance])}). Percentages are of answered "
                "judgments.")
    with_clip = shows_clip(rows)
    tiny = with_clip and clip_source is not None and clip_source.random_weights
    if with_clip:
        caption += " " + latex_escape(clip_source_text(clip_source))
    if tiny:
        caption = r"\textbf{" + latex_escape(TINY_CLIP_TEXT) + "} " + caption
    if synthetic:
        caption = r"\textbf{" + latex_escape(BANNER_TEXT) + "} " + caption
    out = [f"% Generated by `fourdfy analyze` from {latex_escape(source)}. Needs \\usepackage{{booktabs}}."]
    if synthetic:
        out.append("% " + BANNER_TEXT)
    if tiny:
        out.append("% " + TINY_CLIP_TEXT)
    out += [r"\begin{table}[t]", r"\centering", r"\caption{" + caption + "}",
            r"\label{tab:" + table.name + "}",
            r"\begin{tabular}{l" + "c" * (ncol - 1) + "}", r"\toprule",
            r"Method & CLIP & \multicolumn{4}{c}{Human Preference} & Overall \\",
            r"\cmidrule(lr){3-6}",
            " & & " + " & ".join(CRITERION_ABBR[c] for c in CRITERIA[:4]) + r" & \\", r"\midrule"]
    first = True
    for _, r in rows.iterrows():
        if r["kind"] == "heading":
            if not first:
                out.append(r"\midrule")
            out.append(r"\multicolumn{" + str(ncol) + r"}{l}{\textit{" + r["label_latex"] + r"}} \\")
            first = False
            continue
        first = False
        cells = [_label_text(r, latex=True), _clip_text(r, DASH_TEX, PARTIAL_TEX)]
        for crit in CRITERIA:
            cells.append(DASH_TEX if r["kind"] == "primary"
                         else _pct(r[crit], r[f"{crit}_significant"], r"\%", NOT_SIG_TEX))
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    notes = _partial_notes(rows, latex=True)
    if notes:
        out += [r"\par\smallskip{\footnotesize " + PARTIAL_TEX + " CLIP is the mean over only part of the "
                "section's prompts (n of N prompts): " + "; ".join(notes) + r".\par}"]
    for lead, notes in _over_blocks(rows, latex=True):
        out += [r"\par\smallskip{\footnotesize " + DASH_TEX + " " + _latex_note(lead) + "; ".join(notes)
                + r".\par}"]
    notes = _absent_notes(rows, latex=True)
    if notes:
        out += [r"\par\smallskip{\footnotesize " + DASH_TEX + " " + _latex_note(ABSENT_NOTE) + "; ".join(notes)
                + r".\par}"]
    notes = _pref_notes(rows, latex=True)
    if notes:
        out += [r"\par\smallskip{\footnotesize " + PREF_PARTIAL_TEX + " " + PREF_NOTE + "; ".join(notes)
                + r".\par}"]
    out += [r"\end{table}"]
    return "\n".join(out) + "\n"


def table_csv(rows: pd.DataFrame, synthetic: bool) -> pd.DataFrame:
    body = rows[rows["kind"] != "heading"].copy()
    out = pd.DataFrame({"section": body["section"], "method": body["method"], "label": body["label"],
                        "clip": body.get("clip")})
    # how many prompts the CLIP mean covers, of the section's set (empty: the CLIP file did not say)
    for col in ("clip_n_prompts", "clip_n_set"):
        out[col] = pd.array(body[col], dtype="Int64") if col in body else pd.NA
    for crit in CRITERIA:
        out[crit] = body[crit].round(1) if crit in body else np.nan
    for crit in CRITERIA:
        out[f"n_{crit}"] = body[f"{crit}_n"].astype("Int64") if f"{crit}_n" in body else pd.NA
    # the prompts a comparison's preferences cover, of its section's set (empty: the primary's row; a set of
    # unknown size, e.g. a section without prompt_set)
    for col in ("pref_n_prompts", "pref_n_set"):
        out[col] = pd.array(body[col], dtype="Int64") if col in body else pd.NA
    out["synthetic"] = synthetic
    return out


def _num(x, digits: int = 6):
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return None
    return float(f"{x:.{digits}g}")


METRIC_FIELDS = ("n", "k", "pct_primary", "ci_low", "ci_high", "boot_low", "boot_high", "chi2", "p_chi2",
                 "p_binom", "p_cluster", "p_holm", "significant", "n_unanswered", "left_share")


def metrics(analysis: Analysis, clip_source: ClipSource | None = None) -> dict:
    """Hierarchical metrics (comparison -> criterion -> value) for `dvc metrics show`; with `clip_source`
    (a --clip was given) also the CLIP model it came from (nulls: not recorded)."""
    pref: dict = {}
    for _, r in analysis.table.iterrows():
        cell = {f: _num(r[f]) for f in METRIC_FIELDS}
        cell["significant"] = int(bool(r["significant"])) if r["n"] > 0 else None
        pref.setdefault(r["comparison"], {})[r["criterion"]] = cell
    out = {
        "synthetic": int(analysis.synthetic),
        # which test `significant` and p_holm rest on (`AnalysisConfig.significance`)
        "significance": analysis.config.significance,
        "data": {k: _num(v) for k, v in analysis.summary.items()},
        "preference": pref,
        "kappa": {r["criterion"]: _num(r["kappa"]) for _, r in analysis.agreement.iterrows()},
    }
    if clip_source is not None:
        recorded = clip_source.model is not None
        out["clip"] = {"model": clip_source.model, "precision": clip_source.precision,
                       "random_weights": int(clip_source.random_weights) if recorded else None}
    return out


def _fmt_p(p) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    if p == 0:  # below the smallest float: an underflow, not certainty
        return "< 1e-300"
    return f"{p:.2e}" if p < 1e-4 else f"{p:.4f}"


def _fmt_ci(lo, hi) -> str:
    if isinstance(lo, float) and math.isnan(lo):
        return "n/a"
    return f"{lo:.1f}–{hi:.1f}"


def exclusion_text(rule) -> str:
    """The rule as the report states it."""
    parts = rule_parts(rule)
    if not parts:
        return "none (no rater is excluded)"
    return ("exclude raters with " + " or ".join(parts)
            + f"; unanswered checks {'count' if rule.unanswered_fails else 'do not count'} as failed")


def _count_text(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else str(int(x))


def clip_section(layouts: dict[str, pd.DataFrame], clip_source: ClipSource | None = None) -> list[str]:
    """The report's `## CLIP` section: the model (`clip_source`), every CLIP value of the tables with the
    prompts it covers, and the values not shown because they average more prompts than their section asks
    (`clip_over_asked`), and the rows the CLIP file has no value for; empty when there are none of these."""
    lines, over, voted_over, absent, voted = [], [], [], [], False
    for name, rows in layouts.items():
        over += [f"{name}: {note}" for note in _over_notes(rows, latex=False)]
        voted_over += [f"{name}: {note}" for note in _over_notes(rows, latex=False, voted=True)]
        absent += [f"{name}: {note}" for note in _absent_notes(rows, latex=False)]
        for _, r in rows.iterrows():
            value = r.get("clip")
            if r["kind"] == "heading" or value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            voted = voted or bool(r.get("clip_voted"))
            n, k = (_count_text(r.get(c)) for c in ("clip_n_prompts", "clip_n_set"))
            lines.append(f"| {name} | {r['heading'] or r['prompt_set'] or '-'} | {r['label']} | {value:.2f} | "
                         f"{n} | {k} | {'yes' if r['clip_partial'] else 'no'} |")
    if not lines and not over and not voted_over and not absent:
        return []
    out = ["## CLIP", "", clip_source_text(clip_source), ""]
    if lines:
        # said only when such a section shows a value, so that the report of a design whose sections all name a
        # prompt set (the paper's) stays as it was
        asked = (" (in a section without prompt set, the prompts the votes ask about: a value there is their mean)"
                 if voted else "")
        out += ["| table | section | method | CLIP | prompts | of the set | partial |", "|:--|:--|:--|--:|--:|--:|:--|",
                *lines, "",
                f"A partial value (marked {PARTIAL_MD} in the tables) is a mean over fewer prompts than the section's "
                f"prompt set{asked}, e.g. a demo run that rendered one prompt; n/a: the CLIP file gives no counts.", ""]
    if over:
        out += [OVER_NOTE + "; ".join(over) + ".", ""]
    if voted_over:
        out += [VOTED_OVER_NOTE + "; ".join(voted_over) + ".", ""]
    if absent:
        out += [ABSENT_NOTE + "; ".join(absent) + ".", ""]
    return out


def no_spread_cells(table: pd.DataFrame) -> list[str]:
    """'<comparison> <criterion>' of the cells whose raters (two or more) all had the same rate, where the rater
    bootstrap has nothing to resample (`stats.cluster_bootstrap`): unanimous cells (k = n or k = 0), and cells
    whose rater interval is the Wilson interval, the fallback for raters all at one rate between 0 and 1."""
    cells = []
    for r in table.itertuples():
        if r.n == 0 or not r.raters >= 2:
            continue
        if r.k in (0, r.n) or (r.boot_low == r.ci_low and r.boot_high == r.ci_high):
            cells.append(f"{r.comparison} {r.criterion}")
    return cells


def no_spread_lines(table: pd.DataFrame) -> list[str]:
    """The report's note on `no_spread_cells` (empty when there are none, so other reports stay as they were)."""
    cells = no_spread_cells(table)
    if not cells:
        return []
    return [f"Every rater had the same rate in {len(cells)} cell(s) ({', '.join(cells)}), so resampling raters "
            "has nothing to vary: there the rater interval is Clopper–Pearson over the raters when the cell is "
            "unanimous (all raters one way: from (alpha/2)^(1/raters) to 100%, or its mirror) and the Wilson interval "
            "otherwise; a unanimous cell's rater-robust p is 2 × 0.5^raters, the smallest its raters can give.", ""]


def raters_for_holm(cells: int, alpha: float) -> int:
    """The fewest raters with which a rater-robust p can pass Holm's first step over `cells` tests: the smallest R
    with 2 x 0.5^R < alpha / cells (the sign-flip p of R raters is at least 2 x 0.5^R, `stats.signflip_p`)."""
    raters = 1
    while 2 * 0.5**raters >= alpha / cells:
        raters += 1
    return raters


def holm_floor_lines(analysis: Analysis) -> list[str]:
    """With `--significance cluster`, the report's note when no cell has raters enough to be significant after Holm
    (empty otherwise, and always with the paper's test, so that other reports stay as they were)."""
    cfg, t = analysis.config, analysis.table
    family = t[t["p_cluster"].notna()]
    if cfg.significance != "cluster" or family.empty:
        return []
    need = raters_for_holm(len(family), cfg.alpha)
    most = int(family["raters"].max())
    if most >= need:
        return []
    return [f"No cell can be significant: Holm over {len(family)} cells needs a p below alpha/{len(family)} "
            f"= {cfg.alpha / len(family):.2g} for any cell to pass, and the rater-robust p of R raters is at least "
            f"2 × 0.5^R, which needs at least {need} raters; the most any cell has here is {most}.", ""]


def pref_coverage_section(layouts: dict[str, pd.DataFrame]) -> list[str]:
    """The report's lines on comparisons whose preferences cover only part of their section's prompts (marked
    in the tables), with the counts; empty when every comparison with votes covers its whole set, so that a
    full study's report stays as it was."""
    lines = [f"| {name} | {r['label']} | {r['prompt_set']} | {int(r['pref_n_prompts'])} | {int(r['pref_n_set'])} |"
             for name, rows in layouts.items() for _, r in rows.iterrows()
             if r["kind"] != "heading" and _pref_partial(r)]
    if not lines:
        return []
    return [f"Preferences from votes on only part of the section's prompt set (marked {PREF_PARTIAL_MD} in the "
            "tables; every comparison's counts are `pref_n_prompts`/`pref_n_set` of `<table>.csv`): these "
            "percentages are not the comparison over the whole set.", "",
            "| table | comparison | prompt set | prompts with votes | of the set |", "|:--|:--|:--|--:|--:|",
            *lines, ""]


def report_markdown(analysis: Analysis, source: str, files: list[str], metrics_outside: bool = False,
                    clip_lines: list[str] | None = None, tiny_clip: bool = False,
                    pref_lines: list[str] | None = None) -> str:
    """The Markdown report; `files` are the names written into the output folder (listed once each,
    and read back by the next run to know what it may replace); `clip_lines` from `clip_section`;
    `pref_lines` from `pref_coverage_section` (under the preference table);
    `tiny_clip`: the tables show scores of the random-weight tiny CLIP (a banner, as for synthetic votes)."""
    a, d, cfg = analysis, analysis.design, analysis.config
    s = a.summary
    rule = cfg.exclusion
    cover = coverage_text(cfg.alpha)
    out = ["# User-study analysis", ""]
    if a.synthetic:
        out += [BANNER_MD, ""]
    if tiny_clip:
        out += [TINY_CLIP_MD, ""]
    out += [f"Votes `{source}`, design `{d.display_name}` (primary `{d.primary}`; comparisons "
            f"{', '.join(f'`{c}`' for c in d.comparisons)}).",
            f"Bootstrap: {cfg.n_boot} rater resamples per cell, seed {cfg.seed}; alpha {cfg.alpha}.", "",
            "## Data", "",
            f"- {s['rows']} rows read; {s['duplicates_merged']} identical repeated rows merged.",
            f"- {s['judgments']} judgments and {s['attention_check_judgments']} attention-check judgments "
            f"from {s['raters_total']} raters.",
            f"- Exclusion rule: {exclusion_text(rule)}.",
            f"- Excluded: {s['raters_excluded']} raters ({s['judgments_excluded']} judgments); "
            f"analysed: {s['raters_analyzed']} raters, {s['judgments_analyzed']} judgments.",
            *([] if not s.get("raters_unfinished") else [
                f"- Raters who did not finish the survey: {s['raters_unfinished']} ("
                + ("excluded" if rule.unfinished else "analysed; `--exclude-unfinished` drops them") + ")."]),
            f"- Unanswered sub-questions: {s['unanswered']}, excluded from n (the authors' template counted "
            "them in N; its p-value is `p_chi2_template` in `table.csv`).",
            f"- Questions where every rater saw the primary on the same side: {s['questions_fixed_layout']} of "
            f"{s['questions']} (there, position and method are confounded)."]
    excl = a.raters[a.raters["excluded"]]
    if len(excl):
        out += ["", "| excluded rater | attention-check judgments | failed | reason |", "|:--|--:|--:|:--|"]
        out += [f"| {r.rater_id} | {r.checks} | {r.checks_failed} | {r.reason} |" for r in excl.itertuples()]
    out += ["", "## Preference for " + d.label(d.primary), "",
            f"| comparison | criterion | n | k | % primary | Wilson {cover} | rater bootstrap (BCa) {cover} | chi2 | p (chi2) "
            "| p (binomial) | p (rater-robust) | p (Holm) | significant | left share | unanswered |",
            "|:--|:--|--:|--:|--:|:--|:--|--:|--:|--:|--:|--:|:--|--:|--:|"]
    for r in a.table.itertuples():
        if r.n == 0:
            out.append(f"| {r.comparison} | {r.criterion} | 0 | | | | | | | | | | no data | | {r.n_unanswered} |")
            continue
        out.append(f"| {r.comparison} | {r.criterion} | {r.n} | {r.k} | {r.pct_primary:.1f} | "
                   f"{_fmt_ci(r.ci_low, r.ci_high)} | {_fmt_ci(r.boot_low, r.boot_high)} | {r.chi2:.2f} | "
                   f"{_fmt_p(r.p_chi2)} | {_fmt_p(r.p_binom)} | {_fmt_p(r.p_cluster)} | {_fmt_p(r.p_holm)} | "
                   f"{'yes' if r.significant else 'no'} | {r.left_share:.2f} | {r.n_unanswered} |")
    out += ["", f"Holm's correction runs over every cell of this table ({HOLM_OVER[cfg.significance]}). "
            "The rater bootstrap and the rater-robust p (an exact sign-flip test over raters) treat each rater's "
            "judgments as one cluster; the "
            "chi-square, binomial and Wilson figures assume independent judgments, as the paper did.", "",
            *no_spread_lines(a.table),
            *holm_floor_lines(a),
            *(pref_lines or []),
            "## Agreement (Fleiss' kappa; subjects = questions, categories = primary / other)", "",
            "| criterion | kappa | questions used | questions | ratings per question |", "|:--|--:|--:|--:|--:|"]
    for r in a.agreement.itertuples():
        k = "n/a" if math.isnan(r.kappa) else f"{r.kappa:.3f}"
        out.append(f"| {r.criterion} | {k} | {r.subjects_used} | {r.subjects} | {r.ratings_per_subject} |")
    out += ["", "Fleiss' kappa needs the same number of ratings per question: questions with the most common "
            "count are used.", "", "## Position bias (share of choices for the left video)", "",
            "| criterion | n | left share | p (binomial vs 0.5) |", "|:--|--:|--:|--:|"]
    for crit in CRITERIA:
        t = a.table[a.table["criterion"] == crit]
        n = int(t["n"].sum())
        left = float((t["left_share"].fillna(0) * t["n"]).sum())
        share = left / n if n else math.nan
        out.append(f"| {crit} | {n} | {share:.3f} | {_fmt_p(float(binom_p(round(left), n)[0]))} |")
    out += [""]
    out += clip_lines or []
    if metrics_outside:
        out += ["`metrics.json` was written to the path given by `--metrics`, outside this folder.", ""]
    out += files_section(files)
    return "\n".join(out) + "\n"


def _metrics_target(out_dir: Path, metrics_path: Path | str | None) -> tuple[str | None, Path | None]:
    """(name inside out_dir, None) or (None, path outside it) for metrics.json."""
    if metrics_path is None:
        return "metrics.json", None
    metrics_path = Path(metrics_path)
    rel = os.path.relpath(os.path.realpath(metrics_path), os.path.realpath(out_dir))
    if rel == os.curdir or rel.startswith(os.pardir):
        if rel == os.curdir:
            raise OutputError(f"--metrics {metrics_path} is the output folder itself; give a file path")
        return None, metrics_path
    return Path(rel).as_posix(), None


def output_names(design) -> set[str]:
    """The files `write_outputs` writes into its folder for `design`, besides metrics.json."""
    per_table = {f"{t.name}.{ext}" for t in design.tables for ext in ("md", "tex", "csv")}
    return {"table.csv", "per_prompt.csv", "raters.csv", "agreement.csv", "plot_preference.csv", "preference.png",
            REPORT} | per_table


def check_metrics_name(out_dir: Path | str, metrics_path: Path | str | None, design) -> None:
    """OutputError, before any work, when `--metrics` would take the place of another output in `out_dir`."""
    name, _ = _metrics_target(Path(out_dir), metrics_path)
    if metrics_path is not None and name in output_names(design):
        raise OutputError(f"--metrics {metrics_path} would replace the output {name}; give another file name")


def write_outputs(analysis: Analysis, out_dir: Path | str, source: str, clip: dict | None = None,
                  metrics_path: Path | str | None = None, clip_source: ClipSource | None = None) -> list[Path]:
    """Write every output of `fourdfy analyze` into a fresh out_dir, replacing an earlier analysis
    there (see `userstudy.outputs.replace_folder`); metrics.json goes into out_dir unless
    metrics_path is given (e.g. to keep DVC metrics outside a DVC-tracked output folder). Returns
    the paths written, each once; report.md lists the same files. `clip_source` (`load_clip_source`)
    names the CLIP model in the notes; with `clip` but no source, they say it is not recorded."""
    from userstudy.plots import plot_data, plot_png

    out_dir = Path(out_dir)
    check_metrics_name(out_dir, metrics_path, analysis.design)  # fail before anything is written
    metrics_name, metrics_outside = _metrics_target(out_dir, metrics_path)
    if metrics_outside is not None:
        check_file_target(metrics_outside)
    syn = analysis.synthetic
    d = analysis.design
    if clip is not None and clip_source is None:
        clip_source = ClipSource()  # values without a clipscore.json: their model is not recorded
    metrics_text = json.dumps(metrics(analysis, clip_source if clip is not None else None), indent=2) + "\n"

    def build(folder: Path) -> list[str]:
        written: list[str] = []

        def _claim(name: str) -> Path:
            if name in written:
                raise OutputError(f"two outputs named {name}")  # the design check prevents this
            written.append(name)
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            return path

        def _csv(frame: pd.DataFrame, name: str) -> None:
            frame.to_csv(_claim(name), index=False, lineterminator="\n", float_format="%.6g")

        def _text(text: str, name: str) -> None:
            _claim(name).write_text(text, encoding="utf-8")

        _csv(analysis.table.assign(synthetic=syn), "table.csv")
        _csv(analysis.per_prompt.assign(synthetic=syn), "per_prompt.csv")
        _csv(analysis.raters, "raters.csv")
        _csv(analysis.agreement, "agreement.csv")
        layouts = {}
        for table in d.tables:
            rows = layouts[table.name] = layout(analysis, table, clip)
            alpha, test = analysis.config.alpha, analysis.config.significance
            _text(table_markdown(rows, table, d.label(d.primary), syn, clip_source, alpha, test), f"{table.name}.md")
            _text(table_latex(rows, table, d.label(d.primary), syn, source, clip_source, alpha, test),
                  f"{table.name}.tex")
            _csv(table_csv(rows, syn), f"{table.name}.csv")
        _csv(plot_data(analysis), "plot_preference.csv")
        plot_png(analysis, _claim("preference.png"))
        if metrics_name is not None:
            _text(metrics_text, metrics_name)
        names = written + [REPORT]
        tiny = (clip_source is not None and clip_source.random_weights
                and any(shows_clip(rows) for rows in layouts.values()))
        _text(report_markdown(analysis, source, names, metrics_outside=metrics_outside is not None,
                              clip_lines=clip_section(layouts, clip_source), tiny_clip=tiny,
                              pref_lines=pref_coverage_section(layouts)), REPORT)
        return names

    names = replace_folder(out_dir, build)
    paths = [out_dir / n for n in names]
    if metrics_outside is not None:
        paths.append(write_text(metrics_outside, metrics_text))
    return paths

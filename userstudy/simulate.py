"""Simulated rater panels (SYNTHETIC data) for demos, tests and power analysis.

Model, per comparison and criterion with true preference rate p for the primary method:
- rater heterogeneity: rater r prefers the primary with p_r ~ Beta(p c, (1-p) c), c = 1/icc - 1, so
  the mean over raters is exactly p and the between-rater variance is icc * p (1-p) (icc = 0: p_r = p);
- position bias b: a rater picks the primary with p_r + b min(p_r, 1-p_r) when it is on the left and
  p_r - b min(p_r, 1-p_r) when it is on the right (a left/right-balanced layout keeps the mean p, and
  the left share becomes 0.5 + b E[min(p_r, 1-p_r)]);
- careless raters answer every sub-question at random (and so fail attention checks half the time);
  attentive raters get an attention check wrong with probability `lapse`;
- each sub-question is left unanswered with probability `unanswered`.

Every simulated row is labelled: rater ids start with `synthetic-` and `source` is `synthetic`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from userstudy.design import (Design, Section, attention_check_id, paired_prompts, prompt_file, question_id,
                              section_prompts)
from userstudy.outputs import OutputError, atomic_write, check_file_target
from userstudy.votes import CRITERIA, SYNTHETIC_PREFIX

LAYOUTS = ("per_rater", "global")


@dataclass(frozen=True)
class PanelConfig:
    """A simulated panel of raters; the defaults are the modestly imperfect panel that both `fourdfy
    simulate-votes` and the pipeline's votes stage simulate unless told otherwise."""

    n_raters: int = 26
    """Raters in the panel (the paper: 26)."""
    rates: dict = field(default_factory=dict)
    """True preference for the primary per comparison: {comparison: rate} or {comparison: {criterion: rate}}."""
    default_rate: float = 0.5
    """True rate of every cell not in `rates`."""
    rater_icc: float = 0.05
    """Between-rater share of variance (0 = identical raters; 0.05 is modest, 0.2 strong)."""
    position_bias: float = 0.1
    """Pull towards the left video, 0..1 (see the module docstring)."""
    careless_share: float = 0.05
    """Expected share of raters answering at random."""
    lapse: float = 0.02
    """Probability that an attentive rater fails an attention-check sub-question."""
    attention_checks: int | None = None
    """Attention-check questions per rater (five sub-questions each); needs a decoy in the design. None:
    `DEFAULT_ATTENTION_CHECKS` when the design names a decoy, else 0 (`checks_per_rater`)."""
    unanswered: float = 0.01
    """Probability that a sub-question is left unanswered."""
    layout: str = "per_rater"
    """Left/right order: `per_rater` (each rater a fresh random order) or `global` (one shuffle for
    everybody, as the authors' template: position is then confounded with method)."""
    comparisons: tuple[str, ...] | None = None
    """Comparisons to simulate (None: all of the design)."""
    seed: int = 0
    """Seed of every draw."""

    def rate(self, comparison: str, criterion: str) -> float:
        r = self.rates.get(comparison, self.default_rate)
        if isinstance(r, dict):
            r = r.get(criterion, self.default_rate)
        return float(r)


DEFAULT_ATTENTION_CHECKS = 2
"""Attention-check questions per rater of a panel that leaves `attention_checks` unset, when the design names
a decoy (the authors' survey has two)."""

PANEL_KNOBS = ("rater_icc", "position_bias", "careless_share", "lapse", "attention_checks", "unanswered", "layout")
"""The fields of `PanelConfig` that params.yaml's `study.panel` may set (the pipeline sets the others from
`study.raters`, `study.rates` and `seed`, and simulates every comparison of the design)."""


def checks_per_rater(cfg: PanelConfig, design: Design) -> int:
    """The attention-check questions per rater `cfg` asks for in `design`: its own number, or when it gives
    none, `DEFAULT_ATTENTION_CHECKS` if the design names an attention-check decoy, else 0."""
    if cfg.attention_checks is not None:
        return cfg.attention_checks
    return DEFAULT_ATTENTION_CHECKS if design.check.decoys else 0


def panel_config(knobs: dict | None, where: str = "study.panel", **given) -> PanelConfig:
    """A `PanelConfig` from a mapping of `PANEL_KNOBS` to values (e.g. params.yaml's `study.panel`; a knob not
    given keeps PanelConfig's default) and the other fields in `given`. ValueError, naming `where` and the key,
    for an unknown key or a value of the wrong type (the ranges are `check_config`'s)."""
    knobs = {} if knobs is None else knobs
    if not isinstance(knobs, dict):
        raise ValueError(f"{where} must be a mapping of panel settings ({', '.join(PANEL_KNOBS)}), got {knobs!r}")
    unknown = [str(k) for k in knobs if k not in PANEL_KNOBS]
    if unknown:
        raise ValueError(f"{where}: unknown key {', '.join(unknown)} (valid: {', '.join(PANEL_KNOBS)})")
    values = {}
    for key, value in knobs.items():
        if key == "layout":
            ok = isinstance(value, str)
        elif key == "attention_checks":  # null: the default rule (`checks_per_rater`)
            ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            want = {"layout": f"one of {', '.join(LAYOUTS)}", "attention_checks": "a whole number"}.get(key, "a number")
            raise ValueError(f"{where}.{key} must be {want}, got {value!r}")
        values[key] = float(value) if key not in ("layout", "attention_checks") else value
    return PanelConfig(**values, **given)


def check_config(cfg: PanelConfig, names: dict[str, str] | None = None) -> None:
    """Raise ValueError for impossible settings. `names` maps field names (n_raters, rater_icc, ...)
    to what the message calls them (the CLI: its options); by default the messages use the field names."""
    def n(field: str) -> str:
        return (names or {}).get(field, field)

    if cfg.n_raters < 1:
        raise ValueError(f"{n('n_raters')} must be at least 1, got {cfg.n_raters}")
    for name in ("rater_icc", "position_bias", "careless_share", "lapse", "unanswered", "default_rate"):
        v = getattr(cfg, name)
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{n(name)} must lie in [0, 1], got {v:g}")
    if cfg.rater_icc >= 1.0:
        raise ValueError(f"{n('rater_icc')} must be below 1 (at 1 every rater always prefers the same method), "
                         f"got {cfg.rater_icc:g}")
    if cfg.unanswered >= 1.0:  # every sub-question skipped: a votes file without one answered judgment
        raise ValueError(f"{n('unanswered')} must be below 1 (the probability a sub-question is skipped; "
                         f"1 leaves nothing answered), got {cfg.unanswered:g}")
    if cfg.layout not in LAYOUTS:
        raise ValueError(f"{n('layout')}: unknown layout {cfg.layout!r} (use {' or '.join(LAYOUTS)})")
    if cfg.attention_checks is not None and cfg.attention_checks < 0:
        raise ValueError(f"{n('attention_checks')} must be 0 or more, got {cfg.attention_checks}")
    if cfg.seed < 0:
        raise ValueError(f"{n('seed')} must be a non-negative integer, got {cfg.seed}")
    for comp, r in cfg.rates.items():
        vals = r.values() if isinstance(r, dict) else [r]
        if isinstance(r, dict):
            bad = sorted(set(r) - set(CRITERIA))
            if bad:
                raise ValueError(f"{n('rates')}: unknown criterion {', '.join(bad)} for {comp} "
                                 f"(allowed: {', '.join(CRITERIA)})")
        if not all(0.0 <= float(v) <= 1.0 for v in vals):
            raise ValueError(f"{n('rates')}: the rates of {comp} must lie in [0, 1]")


def rater_rates(rng: np.random.Generator, p: float, icc: float, size) -> np.ndarray:
    """Per-rater preference rates with mean p and between-rater variance icc * p (1-p)."""
    if icc <= 0 or p <= 0 or p >= 1:
        return np.full(size, p, dtype=float)
    c = 1.0 / icc - 1.0
    return rng.beta(p * c, (1 - p) * c, size=size)


def draw_choices(rng: np.random.Generator, p_rater: np.ndarray, primary_left: np.ndarray,
                 careless: np.ndarray, position_bias: float) -> np.ndarray:
    """True where the primary was chosen. p_rater, careless: (..., raters); primary_left: (..., raters, questions)."""
    p = p_rater[..., None]
    shift = position_bias * np.minimum(p, 1 - p)
    p_primary = np.where(primary_left, p + shift, p - shift)
    p_primary = np.where(careless[..., None], 0.5, p_primary)
    return rng.random(primary_left.shape) < p_primary


def simulate_counts(p: float, n_raters: int, n_prompts: int, cfg: PanelConfig, n_panels: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Votes for the primary and answered judgments per rater, for many panels of one cell.

    The same model as `simulate_votes` without attention checks (careless raters stay in), one draw per
    judgment; returns k, n of shape (n_panels, n_raters). Used by the coverage tests. `power.power_table`
    does not call it: it draws each rater's totals as binomials (n ~ Bin(prompts, 1 - unanswered),
    k ~ Bin(n, p_r)), which is this model's distribution without careless raters (a per-rater left/right
    order leaves a rater's total binomial whatever the position bias) but another random stream, and
    two draws per rater instead of one per judgment (power draws `sims` panels for every panel size)."""
    shape = (n_panels, n_raters)
    p_r = rater_rates(rng, p, cfg.rater_icc, shape)
    careless = rng.random(shape) < cfg.careless_share
    if cfg.layout == "global":
        primary_left = np.broadcast_to(rng.random((n_panels, 1, n_prompts)) < 0.5, (*shape, n_prompts))
    else:
        primary_left = rng.random((*shape, n_prompts)) < 0.5
    chose = draw_choices(rng, p_r, primary_left, careless, cfg.position_bias)
    answered = rng.random((*shape, n_prompts)) >= cfg.unanswered
    return (chose & answered).sum(-1), answered.sum(-1)


DEFAULT_PROMPT_SET = "mav3d_28"
"""Prompts of a comparison whose design names neither a prompt set nor a number of prompts (the
short form `comparisons: [...]`): the paper's 28 MAV3D prompts."""


def prompt_ids(section: Section, prompts_dir: Path | str | None = None) -> list[str]:
    """Prompt slugs a comparison of `section` is simulated on without videos: with a `prompt_set` whose file
    `<prompts_dir>/<prompt_set>.txt` exists (default folder: the project's `prompts/`), the prompts `survey build`
    asks (`userstudy.design.section_prompts`: the first `n_prompts`); else `n_prompts` generic ids; with neither a
    set nor a number, the paper's 28 prompts (`DEFAULT_PROMPT_SET`, always the project's file)."""
    from prompts import PROMPT_DIR, load_prompts

    prompt_set, n_prompts = section.prompt_set, section.n_prompts
    if not prompt_set and not n_prompts:
        return list(load_prompts(PROMPT_DIR / f"{DEFAULT_PROMPT_SET}.txt"))
    if prompt_set and prompt_file(prompt_set, prompts_dir).is_file():
        return list(section_prompts(section, prompts_dir))
    if not n_prompts:
        where = f"prompts/{prompt_set}.txt" if prompts_dir is None else str(prompt_file(prompt_set, prompts_dir))
        raise ValueError(f"prompt set {prompt_set!r} has no prompt file ({where}); give n_prompts beside prompt_set "
                         "in the design (in its section, or at the top of a short-form design), or the folder that "
                         "holds the file (--prompts-dir)")
    return [f"{prompt_set or 'prompt'}_{i:02d}" for i in range(1, n_prompts + 1)]


def generic_sections(design: Design, comparisons: Iterable[str], prompts_dir: Path | str | None = None) -> list[str]:
    """The `comparisons` whose section names a `prompt_set` with no file in `prompts_dir`: simulated on generic ids,
    where `survey build` (which needs the file) would refuse the design."""
    return [c for c in comparisons
            if (ps := design.section_of(c)[1].prompt_set) and not prompt_file(ps, prompts_dir).is_file()]


def _comparisons_elsewhere(comps: Iterable[str], design: Design, whole: Design | None) -> str | None:
    """The error for `comps` not all comparisons of `design`, or None. `whole`: the design `design` was selected
    from (`Design.select_tables`): a comparison of its other tables is named with its table(s) and the selected ones,
    not as one the design lacks."""
    unknown = sorted(set(comps) - set(design.comparisons))
    if not unknown:
        return None
    full = whole if whole is not None else design
    nowhere = [c for c in unknown if c not in full.comparisons]
    if nowhere:
        return f"comparison(s) not in the design: {', '.join(nowhere)} (the design's: {', '.join(full.comparisons)})"
    chosen = [t.name for t in design.tables]
    tables = {c: [t.name for t in full.tables if any(c in s.rows for s in t.sections)] for c in unknown}
    others = list(dict.fromkeys(t for names in tables.values() for t in names))
    where = "; ".join(f"{c} (in {', '.join(names)})" for c, names in tables.items())
    return (f"comparison(s) not in the selected table(s) {', '.join(chosen)}: {where}; select "
            f"{', '.join(others)} too (--tables) or leave them out of the comparisons (those of "
            f"{', '.join(chosen)}: {', '.join(design.comparisons) or 'none'})")


def simulate_votes(design: Design, cfg: PanelConfig, videos: Iterable[tuple[str, str]] | None = None, *,
                   unpaired_ids: bool = False, prompts_dir: Path | str | None = None,
                   whole: Design | None = None) -> pd.DataFrame:
    """A SYNTHETIC votes table in the suite's format (see `userstudy.votes`).

    `videos`: the (method, prompt slug) pairs that have artifacts (`userstudy.survey.bundle.artifact_pairs`). Given,
    a comparison whose section names no `prompt_set` is simulated on the prompts `survey build` asks it on from
    those artifacts (`userstudy.design.paired_prompts`); without, on `prompt_ids`' (generic ids, or the paper's 28
    prompts). Such a comparison with no prompt both methods have videos of is refused, as `survey build` refuses
    it, unless `unpaired_ids` (the pipeline's votes stage, whose survey is built with --allow-missing): it is then
    simulated on `prompt_ids`', as comparisons with a `prompt_set` are whatever videos exist. `prompts_dir`: the folder
    of the `<prompt_set>.txt` files, as `survey build --prompts-dir` (default: the project's prompts/). `whole`: the
    design `design` was selected from by `Design.select_tables` (`--tables`), to name a comparison of its other
    tables as such."""
    check_config(cfg)
    comps = cfg.comparisons or design.comparisons
    problem = _comparisons_elsewhere(comps, design, whole)
    if problem:
        raise ValueError(problem)
    # rates of the tables `--tables` leaves out are not used (as `--rates paper`'s), not refused
    known = (whole or design).comparisons
    unknown = sorted(set(cfg.rates) - set(known))
    if unknown:
        raise ValueError(f"rates given for comparison(s) not in the design: {', '.join(unknown)} (the design's: "
                         f"{', '.join(known)})")
    checks = checks_per_rater(cfg, design)
    if checks and not design.check.decoys:
        raise ValueError("attention checks need a decoy method in the design (attention_check.decoys); "
                         "add one or simulate without checks (--checks 0)")
    rng = np.random.default_rng(cfg.seed)
    R = cfg.n_raters
    raters = np.array([f"{SYNTHETIC_PREFIX}r{i:03d}" for i in range(1, R + 1)])
    careless = rng.random(R) < cfg.careless_share
    # Questions: (comparison, prompt), numbered in design order.
    questions = []
    videos = None if videos is None else set(videos)
    for comp in comps:
        _, section = design.section_of(comp)
        if section.prompt_set or videos is None:
            slugs = prompt_ids(section, prompts_dir)
        else:
            slugs = paired_prompts(design.primary, comp, videos)
            if not slugs and unpaired_ids:
                slugs = prompt_ids(section, prompts_dir)
            elif not slugs:  # as `survey build` refuses it: a comparison with no question
                raise ValueError(f"{comp}: no prompt has videos of both {design.primary} and {comp} in the "
                                 "artifacts (its section names no prompt_set, so it is asked on the prompts both "
                                 "have videos of)")
        questions.extend((comp, slug) for slug in slugs)
    Q = len(questions)
    # the survey bundle's question ids: the same question has the same id in every file, so files simulated per
    # table can be analysed together as survey exports are
    qids = np.array([question_id(comp, slug) for comp, slug in questions])
    if cfg.layout == "global":
        primary_left = np.broadcast_to(rng.random((1, Q)) < 0.5, (R, Q))
    else:
        primary_left = rng.random((R, Q)) < 0.5
    q_comp = np.array([c for c, _ in questions])
    q_prompt = np.array([s for _, s in questions])
    frames = []
    for ci, crit in enumerate(CRITERIA):
        chose = np.zeros((R, Q), dtype=bool)
        for comp in comps:
            cols = q_comp == comp
            p_r = rater_rates(rng, cfg.rate(comp, crit), cfg.rater_icc, R)
            chose[:, cols] = draw_choices(rng, p_r, primary_left[:, cols], careless, cfg.position_bias)
        answered = rng.random((R, Q)) >= cfg.unanswered
        choose_left = chose == primary_left
        choice = np.where(answered, np.where(choose_left, "left", "right"), "none")
        other = np.broadcast_to(q_comp, (R, Q))
        frames.append(pd.DataFrame({
            "rater_id": np.repeat(raters, Q), "question_id": np.tile(qids, R),
            "prompt_id": np.tile(q_prompt, R),
            "method_left": np.where(primary_left, design.primary, other).ravel(),
            "method_right": np.where(primary_left, other, design.primary).ravel(),
            "criterion": crit, "choice": choice.ravel(), "is_attention_check": "false",
            "expected_choice": "", "_q": np.tile(np.arange(Q), R), "_r": np.repeat(np.arange(R), Q), "_c": ci,
        }))
    if checks:
        C = checks
        decoy = design.check.decoys[0]
        correct = design.check.correct_method
        # the decoy's videos, whose prompts a survey's checks are asked on, are unknown here: numbered placeholders
        check_slugs = [f"attention_check_{j}" for j in range(1, C + 1)]
        correct_left = rng.random((R, C)) < 0.5
        for ci, crit in enumerate(CRITERIA):
            right_answer = np.where(careless[:, None], rng.random((R, C)) < 0.5, rng.random((R, C)) >= cfg.lapse)
            answered = rng.random((R, C)) >= cfg.unanswered
            picks_left = right_answer == correct_left
            choice = np.where(answered, np.where(picks_left, "left", "right"), "none")
            frames.append(pd.DataFrame({
                "rater_id": np.repeat(raters, C),
                "question_id": np.tile([attention_check_id(decoy, slug) for slug in check_slugs], R),
                "prompt_id": np.tile(check_slugs, R),
                "method_left": np.where(correct_left, correct, decoy).ravel(),
                "method_right": np.where(correct_left, decoy, correct).ravel(),
                "criterion": crit, "choice": choice.ravel(), "is_attention_check": "true",
                "expected_choice": np.where(correct_left, "left", "right").ravel(),
                "_q": np.tile(Q + np.arange(C), R), "_r": np.repeat(np.arange(R), C), "_c": ci,
            }))
    out = pd.concat(frames, ignore_index=True).sort_values(["_r", "_q", "_c"], kind="stable")
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    secs = out["_r"].to_numpy() * 3600 + out["_q"].to_numpy() * 30 + out["_c"].to_numpy() * 5
    stamps = [(start + timedelta(seconds=int(s))).strftime("%Y-%m-%dT%H:%M:%SZ") for s in secs]
    out["answered_at"] = np.where(out["choice"] == "none", "", stamps)
    out["source"] = "synthetic"
    cols = ["rater_id", "question_id", "prompt_id", "method_left", "method_right", "criterion", "choice",
            "is_attention_check", "answered_at", "expected_choice", "source"]
    return out[cols].reset_index(drop=True)


def _real_votes(path: Path) -> str | None:
    """Why `path` is not a file of simulated votes that may be replaced (None: it is, or it is empty)."""
    if path.stat().st_size == 0:
        return None
    try:
        # index_col=False: a row with a trailing comma must not shift rater_id into another column's values
        with warnings.catch_warnings():  # pandas warns of the extra field it drops: not the user's concern here
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError):
        return "is not a votes CSV (it cannot be read as one)"
    if "rater_id" not in raw.columns:
        return "is not a votes CSV (no rater_id column)"
    real = ~raw["rater_id"].str.startswith(SYNTHETIC_PREFIX)
    if "source" in raw.columns:  # a survey export says source=survey
        real |= raw["source"] != "synthetic"
    if not real.any():
        return None
    raters = raw.loc[real, "rater_id"].unique()
    return (f"holds real votes ({int(real.sum())} judgment(s) of {len(raters)} rater(s) not simulated, "
            f"e.g. {raters[0]!r})")


def check_votes_target(path: Path | str, overwrite: bool = False) -> Path:
    """Check (writing nothing) that SYNTHETIC votes may be written to `path`: a new file or, with
    `overwrite`, a file holding only simulated votes. Anything else, real votes above all, is
    refused with an OutputError: a synthetic file must never take the place of a study's data."""
    path = check_file_target(path)
    if not path.exists():
        return path
    why = _real_votes(path)
    if why is not None:
        raise OutputError(f"{path} {why}; simulated votes never replace it, even with --overwrite: "
                          "choose another output file")
    if not overwrite:
        raise OutputError(f"{path} already exists (simulated votes); give --overwrite to replace it "
                          "or choose another output file")
    return path


def write_votes(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write a votes table as CSV, atomically (creating the folder; OutputError if it cannot)."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n"))


PAPER_PRIMARY = "4dfy"
"""The method whose preference the paper's published rates are (`--rates paper` applies them only for it)."""


def parse_rates(spec: str, design: Design) -> dict:
    """'paper' | a number | a CSV comparison,rate[,criterion] -> PanelConfig.rates (a row with a
    criterion overrides a row without one; criteria not given keep the default rate 0.5; two rows for the same
    comparison and criterion, or both without one, are a ValueError naming their lines)."""
    from userstudy import published

    if spec == "paper":
        rates: dict = {}
        if design.primary != PAPER_PRIMARY:  # the published shares are of raters preferring 4D-fy, no other method
            return rates
        for t in published.TABLES:
            if t.version != "cvpr2024":
                continue
            for r in t.rows:
                if r.pct is not None and r.method in design.comparisons:
                    rates[r.method] = {c: p / 100 for c, p in zip(CRITERIA, r.pct)}
        return rates
    try:
        value = float(spec)
    except ValueError:
        value = None
    if value is not None:
        return {c: value for c in design.comparisons}
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"--rates: {spec!r} is not 'paper', a number, or an existing CSV file")
    want = "a CSV with the header comparison,rate[,criterion] and one row per comparison"
    try:
        # blanks around a field ("fantasia4d, 0.8" as typed by hand) are not part of a name or a rate
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:  # pandas: "No columns to parse from file", which names no file
        raise ValueError(f"--rates {path} is empty; give {want} (or 'paper', or a number)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"--rates {path} cannot be read as CSV ({' '.join(str(err).split())}); give {want}") from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas makes the extra leading fields an index
        raise ValueError(f"--rates {path} has rows with more fields than its header; give {want}")
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.apply(lambda col: col.str.strip())
    if frame.empty:  # a header only would silently simulate every cell at the default rate
        raise ValueError(f"--rates {path} has no rows (a header only); give {want}")
    missing = {"comparison", "rate"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))} (comparison,rate[,criterion])")
    rates: dict = {}
    specific = []
    lines: dict[tuple[str, str], int] = {}  # (comparison, criterion or "") -> the line that gave it
    for i, row in frame.iterrows():
        crit = row.get("criterion", "") or ""
        try:
            rate = float(row["rate"])
        except ValueError:
            raise ValueError(f"{path} line {i + 2}: rate {row['rate']!r} is not a number") from None
        if crit and crit not in CRITERIA:
            raise ValueError(f"{path} line {i + 2}: unknown criterion {crit!r}")
        # a repeat would silently win over the row before it: which rate was meant cannot be told
        first = lines.setdefault((row["comparison"], crit), i + 2)
        if first != i + 2:
            what = f"{row['comparison']!r}" + (f" ({crit})" if crit else " (every criterion)")
            raise ValueError(f"{path}: the rate of {what} is given twice, on lines {first} and {i + 2}; keep one of "
                             "them")
        if crit:
            specific.append((row["comparison"], crit, rate))
        else:  # a row without criterion sets every criterion of the comparison
            rates.setdefault(row["comparison"], {}).update({c: rate for c in CRITERIA})
    for comp, crit, rate in specific:  # rows naming a criterion win over blanket rows
        rates.setdefault(comp, {})[crit] = rate
    return rates

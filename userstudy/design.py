"""The study design: which method is the primary one (4D-fy), what it is compared with, and how the
results are laid out in the paper's tables.

A design file is YAML or JSON. Full form (the paper's, `designs/paper.yaml`)::

    primary: 4dfy
    methods:                      # display labels (Markdown / LaTeX), optional per method
      4dfy: {label: 4D-fy}
      wo_3d: {label: "w/o L_3D", latex: "w/o $\\nabla_\\theta \\mathcal{L}_{3D}$"}
    tables:
      table2:
        caption: ...
        sections:
          - {heading: "", prompt_set: mav3d_28, rows: [mav3d, 4dfy]}
          - {heading: Ablation Study, prompt_set: ablation_5, rows: [4dfy, wo_3d, ...]}
    attention_check: {correct_method: 4dfy, decoys: [attention_decoy]}

Short form: `primary: 4dfy` and `comparisons: [mav3d, wo_3d]` (one table named `comparisons`, one
section), optionally with `prompt_set` and `n_prompts` for that section.
Every method in a table row other than the primary is a comparison; each comparison appears once.
Table names are file stems of `fourdfy analyze`'s outputs: letters, digits, `_` and `-`, and none of
the fixed output names (`RESERVED_OUTPUTS`). Two rows of one table may not have the same label
(`check_table_labels`).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from method.fileio import yaml_error_text
from prompts import PROMPT_DIR, load_prompts

DESIGN_DIR = Path(__file__).resolve().parent / "designs"
PAPER_DESIGN = DESIGN_DIR / "paper.yaml"


SHORT_TABLE = "comparisons"
"""Name of the one table of a short-form design (`comparisons.md`, `.tex`, `.csv`)."""
RESERVED_OUTPUTS = ("table", "per_prompt", "raters", "agreement", "plot_preference", "preference", "metrics",
                    "report")
"""File stems `fourdfy analyze` always writes; a layout table may not take one (it would replace it)."""
_TABLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class DesignError(ValueError):
    """A design file is missing, malformed or inconsistent."""


class DuplicateLabelError(DesignError):
    """Two rows of one table with the same label (`check_table_labels`)."""


@dataclass(frozen=True)
class MethodLabel:
    """How a method is printed in the tables."""

    label: str
    """Plain-text / Markdown label (e.g. `MAV3D`)."""
    latex: str
    """LaTeX label, already escaped (e.g. `w/o $\\nabla_\\theta \\mathcal{L}_{3D}$`)."""


@dataclass(frozen=True)
class Section:
    """A block of rows of one table that share a prompt set (e.g. the ablation block of Table 2)."""

    rows: tuple[str, ...]
    """Methods in row order; the primary may appear (its row shows only CLIP)."""
    heading: str = ""
    """Italic heading row printed above the block ("" = none)."""
    prompt_set: str = ""
    """Name of the prompts the block was evaluated on (selects the CLIP value; e.g. `mav3d_28`); "" = the prompts
    both methods have videos of (`paired_prompts`)."""
    n_prompts: int | None = None
    """How many prompts each comparison of the block is asked on: with `prompt_set`, the first `n_prompts` of its
    file (`section_prompts`; more than the file holds is an error); for `simulate-votes` without a prompt file,
    that many generic prompt ids. None = every prompt of the set."""


@dataclass(frozen=True)
class Table:
    """One output table (Table 2, Table 3) in the paper's layout."""

    name: str
    """File stem of the outputs (`table2` -> table2.md, table2.tex, table2.csv)."""
    sections: tuple[Section, ...]
    """Row blocks, in order."""
    caption: str = ""
    """Caption printed with the table."""


@dataclass(frozen=True)
class AttentionCheck:
    """How attention-check questions are scored."""

    correct_method: str
    """The side showing this method is the right answer (unless a row has `expected_choice`)."""
    decoys: tuple[str, ...] = ()
    """Methods that appear only in attention checks (e.g. a deliberately broken video)."""


@dataclass(frozen=True)
class Design:
    """Primary method, comparisons and table layout of a user study."""

    primary: str
    """The method the study is about (4D-fy: `4dfy`); percentages are votes for it."""
    tables: tuple[Table, ...]
    """Output tables; their rows define the comparisons."""
    labels: dict[str, MethodLabel] = field(default_factory=dict)
    """Display labels per method (defaults to the method name)."""
    attention_check: AttentionCheck | None = None
    """Scoring of attention checks (defaults: correct method = primary, no decoys)."""
    name: str = ""
    """Name of the design (printed in reports and bundle.json; `display_name` when empty)."""

    @property
    def display_name(self) -> str:
        """The name reports and survey bundles give the design: `name`, or "survey" for an unnamed one (part of a
        bundle's id, so bundles built before keep theirs)."""
        return self.name or "survey"

    @property
    def comparisons(self) -> tuple[str, ...]:
        """Compared methods, in table order."""
        out = []
        for table in self.tables:
            for section in table.sections:
                out.extend(m for m in section.rows if m != self.primary)
        return tuple(out)

    @property
    def check(self) -> AttentionCheck:
        return self.attention_check or AttentionCheck(correct_method=self.primary)

    @property
    def methods(self) -> tuple[str, ...]:
        """Every method a votes file may name: primary, comparisons, attention-check decoys."""
        return (self.primary, *self.comparisons, *self.check.decoys)

    def label(self, method: str, latex: bool = False) -> str:
        lab = self.labels.get(method)
        if lab is None:
            return _latex_escape(method) if latex else method
        return lab.latex if latex else lab.label

    def select_tables(self, names: list[str] | tuple[str, ...]) -> "Design":
        """This design with only the tables `names` (in the design's order): one survey per table, as the
        paper ran Table 2's 53 questions as one survey. An unknown name is a `DesignError` listing the tables."""
        known = [t.name for t in self.tables]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise DesignError(f"no table {', '.join(map(repr, unknown))} in design {self.display_name!r}; "
                              f"its tables: {', '.join(known)}")
        chosen = dataclasses.replace(self, tables=tuple(t for t in self.tables if t.name in set(names)))
        # labels of the other tables' methods go too: a design may label only its own methods (a survey bundle
        # stores the selection as a design, which is checked when read back)
        return dataclasses.replace(chosen, labels={m: lab for m, lab in self.labels.items() if m in chosen.methods})

    def section_of(self, method: str) -> tuple[Table, Section]:
        for table in self.tables:
            for section in table.sections:
                if method in section.rows:
                    return table, section
        raise KeyError(method)


def prompt_file(prompt_set: str, prompts_dir: Path | str | None = None) -> Path:
    """The file of a prompt set: `<prompts_dir>/<prompt_set>.txt` (default folder: the project's prompts/)."""
    return Path(prompts_dir if prompts_dir is not None else PROMPT_DIR) / f"{prompt_set}.txt"


def section_prompts(section: Section, prompts_dir: Path | str | None = None) -> dict[str, str]:
    """The prompts (slug -> text, in file order) a comparison of `section`, which names a `prompt_set`, is asked on:
    the first `n_prompts` of `<prompts_dir>/<prompt_set>.txt` (default folder: the project's `prompts/`), every one
    without `n_prompts`. The one rule of `survey build` (its questions) and of `userstudy.simulate.simulate_votes`
    (its simulated answers). `PromptFileError` for a missing or unreadable file, `DesignError` for an `n_prompts`
    larger than the file (both ValueErrors)."""
    if not section.prompt_set:
        raise ValueError("section_prompts: the section names no prompt_set (its prompts are `paired_prompts`)")
    path = prompt_file(section.prompt_set, prompts_dir)
    prompts = load_prompts(path)
    n = section.n_prompts
    if n is not None and n > len(prompts):
        raise DesignError(f"n_prompts {n} is more than the {len(prompts)} prompts of {path.name}: lower the "
                          "section's n_prompts in the design, or add prompts to the file")
    return dict(list(prompts.items())[:n]) if n is not None else prompts


CHECK_ID_PREFIX = "check__"
"""Question ids of attention checks start with this (`attention_check_id`)."""


def question_id(comparison: str, slug: str) -> str:
    """The id of the question comparing the primary with `comparison` on prompt `slug`, `<comparison>__<slug>`: the
    one scheme of `survey build`'s bundles (so of survey exports) and of `simulate-votes`, so that the same question
    has the same id in every votes file."""
    return f"{comparison}__{slug}"


def attention_check_id(decoy: str, slug: str) -> str:
    """The id of the attention check showing `decoy` on prompt `slug`, `check__<decoy>__<slug>`: the one scheme of
    `survey build` (the slug of the decoy's video) and of `simulate-votes` (which, not knowing the decoy's videos,
    numbers its checks `attention_check_<j>`, the `prompt_id` of their rows)."""
    return f"{CHECK_ID_PREFIX}{decoy}__{slug}"


def paired_prompts(primary: str, method: str, videos: Iterable[tuple[str, str]]) -> list[str]:
    """The prompts `primary` is compared with `method` on when their design section names no `prompt_set`: every
    prompt slug both have a video of, sorted. `videos`: the (method, slug) pairs with an artifact folder. The one
    rule of `survey build` (its questions) and of `userstudy.simulate.simulate_votes` given those videos (its
    simulated answers)."""
    have = set(videos)
    return sorted(slug for (m, slug) in have if m == method and (primary, slug) in have)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    """Plain text -> LaTeX text (special characters escaped)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


latex_escape = _latex_escape

_TOP_KEYS = {"name", "primary", "methods", "tables", "comparisons", "attention_check", "prompt_set", "n_prompts"}
_SHORT_ONLY = ("prompt_set", "n_prompts")
_SECTION_KEYS = {"rows", "heading", "prompt_set", "n_prompts"}
_TABLE_KEYS = {"sections", "caption"}


def _unknown(keys, allowed, where: str) -> None:
    extra = sorted(set(keys) - allowed)
    if extra:
        raise DesignError(f"{where}: unknown key(s) {', '.join(extra)} (allowed: {', '.join(sorted(allowed))})")


def _n_prompts(value, where: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise DesignError(f"{where}: 'n_prompts' must be a positive integer")
    return value


def _text(value, key: str, where: str) -> str:
    """A name, label or heading given as text ("" when absent). A number or a date is taken as written
    (`heading: 2024`, `name: 2024-06-01`); a list, a mapping or a YAML true/false is refused, as its text would
    silently be something else (a list as a prompt set named "['mav3d_28']", which has no file and so checks no
    prompt)."""
    if value is None:
        return ""
    if isinstance(value, datetime.date):  # YAML reads `name: 2024-06-01` as a date: the text as written
        return value.isoformat()
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DesignError(f"{where}: '{key}' must be text, got {value!r}"
                          + (" (quote it: YAML reads yes/no/true/false as true or false)"
                             if isinstance(value, bool) else ""))
    return str(value)


def design_from_dict(data: dict, source: str = "design", *, label_origins: Mapping[str, str] | None = None,
                     relabel: str | None = None) -> Design:
    """Build and check a `Design` from parsed YAML/JSON. `label_origins` and `relabel` word the error for a label two
    rows of a table share (`check_table_labels`), for a design put together from other sources (the pipeline's)."""
    if not isinstance(data, dict):
        raise DesignError(f"{source}: expected a mapping at the top level")
    _unknown(data, _TOP_KEYS, source)
    primary = data.get("primary")
    if not primary or not isinstance(primary, str):
        raise DesignError(f"{source}: 'primary' (the method the percentages are for, e.g. 4dfy) is required")
    if ("tables" in data) == ("comparisons" in data):
        raise DesignError(f"{source}: give exactly one of 'tables' (full layout) or 'comparisons' (a list)")
    tables: list[Table] = []
    if "comparisons" in data:
        comps = data["comparisons"]
        if not isinstance(comps, list) or not comps or not all(isinstance(c, str) for c in comps):
            raise DesignError(f"{source}: 'comparisons' must be a non-empty list of method names")
        n_prompts = _n_prompts(data.get("n_prompts"), source)
        tables.append(Table(name=SHORT_TABLE, sections=(Section(rows=(primary, *comps), n_prompts=n_prompts,
                                                                prompt_set=_text(data.get("prompt_set"), "prompt_set", source)),)))
    else:
        misplaced = [k for k in _SHORT_ONLY if k in data]
        if misplaced:
            raise DesignError(f"{source}: top-level {', '.join(misplaced)} belong(s) to the short form "
                              "('comparisons'); with 'tables' give them in each section")
        if not isinstance(data["tables"], dict) or not data["tables"]:
            raise DesignError(f"{source}: 'tables' must map a table name to {{sections: [...]}}")
        for tname, tdata in data["tables"].items():
            where = f"{source}: tables.{tname}"
            if not isinstance(tname, str) or not _TABLE_NAME.fullmatch(tname):
                raise DesignError(f"{where}: a table name is a file stem: letters, digits, '_' and '-'")
            if tname in RESERVED_OUTPUTS:
                raise DesignError(f"{where}: '{tname}' is a fixed output of fourdfy analyze "
                                  f"({', '.join(RESERVED_OUTPUTS)}); rename the table")
            if not isinstance(tdata, dict):
                raise DesignError(f"{where}: expected a mapping with 'sections'")
            _unknown(tdata, _TABLE_KEYS, where)
            secs = []
            sections = tdata.get("sections")
            if sections is not None and not isinstance(sections, list):
                raise DesignError(f"{where}: 'sections' must be a list of {{rows: [...]}}, one per section, got "
                                  f"{sections!r}")
            for i, sdata in enumerate(sections or []):
                swhere = f"{where}.sections[{i}]"
                if not isinstance(sdata, dict):
                    raise DesignError(f"{swhere}: expected a mapping with 'rows'")
                _unknown(sdata, _SECTION_KEYS, swhere)
                rows = sdata.get("rows")
                if not isinstance(rows, list) or not rows or not all(isinstance(r, str) for r in rows):
                    raise DesignError(f"{swhere}: 'rows' must be a non-empty list of method names")
                n_prompts = _n_prompts(sdata.get("n_prompts"), swhere)
                secs.append(Section(rows=tuple(rows), heading=_text(sdata.get("heading"), "heading", swhere),
                                    prompt_set=_text(sdata.get("prompt_set"), "prompt_set", swhere),
                                    n_prompts=n_prompts))
            if not secs:
                raise DesignError(f"{where}: no sections")
            tables.append(Table(name=str(tname), sections=tuple(secs),
                                caption=_text(tdata.get("caption"), "caption", where)))
    labels = {}
    if not isinstance(data.get("methods") or {}, dict):
        raise DesignError(f"{source}: 'methods' must map a method to its label or {{label, latex}}")
    for method, ldata in (data.get("methods") or {}).items():
        if isinstance(ldata, str):
            ldata = {"label": ldata}
        if not isinstance(ldata, dict):
            raise DesignError(f"{source}: methods.{method} must be a label or {{label, latex}}")
        _unknown(ldata, {"label", "latex"}, f"{source}: methods.{method}")
        mwhere = f"{source}: methods.{method}"
        label = _text(ldata.get("label"), "label", mwhere) or str(method)
        labels[str(method)] = MethodLabel(label=label,
                                          latex=_text(ldata.get("latex"), "latex", mwhere) or _latex_escape(label))
    check = None
    if data.get("attention_check") is not None:
        cdata = data["attention_check"]
        if not isinstance(cdata, dict):
            raise DesignError(f"{source}: attention_check must be {{correct_method, decoys}}")
        _unknown(cdata, {"correct_method", "decoys"}, f"{source}: attention_check")
        decoys = cdata.get("decoys") or []
        # a scalar would be split into one-letter decoys (`decoys: attention_decoy` -> a, t, t, ...)
        if not isinstance(decoys, list) or not all(isinstance(d, str) and d for d in decoys):
            raise DesignError(f"{source}: attention_check.decoys must be a list of method names, e.g. "
                              f"decoys: [attention_decoy]; got {decoys!r}")
        check = AttentionCheck(correct_method=_text(cdata.get("correct_method"), "correct_method",
                                                    f"{source}: attention_check") or primary, decoys=tuple(decoys))
    design = Design(primary=primary, tables=tuple(tables), labels=labels, attention_check=check,
                    name=_text(data.get("name"), "name", source))
    _check(design, source)
    check_table_labels(design, source, label_origins, relabel)
    return design


DESIGN_RELABEL = "under methods: in the design (methods.<name>.label)"
"""Where a design file gives a method another label (the end of `check_table_labels`' message)."""


def check_table_labels(design: Design, source: str, origins: Mapping[str, str] | None = None,
                       relabel: str | None = None) -> None:
    """DuplicateLabelError naming both rows where two methods of one table (its sections together; a short-form
    design is one table) have the same label: their rows, CLIP cells and votes could not be told apart in the tables.
    `origins` says where each method's label comes from (default: the design's `methods.<name>.label`; a method
    absent from it is labelled by its name), `relabel` where to give one another (default `DESIGN_RELABEL`)."""
    if origins is None:
        origins = {m: f"methods.{m}.label" for m, lab in design.labels.items() if lab.label != m}
    for table in design.tables:
        seen: dict[str, str] = {}
        for method in dict.fromkeys(m for section in table.sections for m in section.rows):
            label = design.label(method)
            if label in seen:
                other = seen[label]
                raise DuplicateLabelError(
                    f"{source}: {table.name} would have two rows labelled {label!r}: {other!r} "
                    f"({origins.get(other, 'its name')}) and {method!r} ({origins.get(method, 'its name')}); give one "
                    f"of them another label: {relabel or DESIGN_RELABEL}")
            seen[label] = method


def _check(design: Design, source: str) -> None:
    comps = design.comparisons
    if not comps:
        raise DesignError(f"{source}: no comparisons (every table row is the primary {design.primary!r})")
    dup = sorted({c for c in comps if comps.count(c) > 1})
    if dup:
        raise DesignError(f"{source}: comparison(s) listed more than once: {', '.join(dup)}")
    names = [t.name for t in design.tables]
    if len(set(names)) != len(names):
        raise DesignError(f"{source}: duplicate table names")
    check = design.check
    clash = sorted(set(check.decoys) & {design.primary, *comps})
    if clash:
        raise DesignError(f"{source}: attention-check decoys must not be compared methods: {', '.join(clash)}")
    if check.correct_method not in design.methods:
        raise DesignError(f"{source}: attention_check.correct_method {check.correct_method!r} is not in the design")
    unknown_labels = sorted(set(design.labels) - set(design.methods))
    if unknown_labels:
        raise DesignError(f"{source}: labels for methods not in the design: {', '.join(unknown_labels)}")


def _no_duplicate_keys(pairs: list[tuple]) -> dict:
    """json.loads' object_pairs_hook: a dict, or DesignError for a key given twice in one object (json keeps the
    last, silently dropping the first: a copied `table2` block not renamed)."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise DesignError(f"duplicate key {key!r} in one object (only the last would be kept): rename one of them "
                              "or merge the two")
        out[key] = value
    return out


@functools.cache
def _yaml_loader():
    """A yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last, silently dropping
    the first: a copied `table2:` block not renamed), naming the line of both."""
    import yaml

    class NoDuplicatesLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                first: dict = {}
                # the mapping's own keys only: a key overriding one merged in by `<<: *anchor` is YAML's way
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=deep)
                    try:
                        earlier = first.setdefault(key, key_node)
                    except TypeError:  # an unhashable key: SafeLoader's own error names it
                        continue
                    if earlier is not key_node:
                        raise yaml.constructor.ConstructorError(
                            f"key {key!r} first given", earlier.start_mark,
                            f"duplicate key {key!r} (only this one would be kept): rename one of them or merge the "
                            "two", key_node.start_mark)
            return super().construct_mapping(node, deep=deep)

    return NoDuplicatesLoader


def load_design(path: Path | str | None = None) -> Design:
    """Read a design file (YAML or JSON); None = the paper's design (`designs/paper.yaml`)."""
    import yaml

    path = Path(path) if path is not None else PAPER_DESIGN
    if path.is_dir():
        raise DesignError(f"{path} is a folder, not a design file (the paper's is {PAPER_DESIGN.name} in "
                          "userstudy/designs)")
    if not path.is_file():
        raise DesignError(f"design file not found: {path} (the paper's is {PAPER_DESIGN.name} in userstudy/designs)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DesignError(f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        else:
            data = yaml.load(text, Loader=_yaml_loader())  # a SafeLoader
    except DesignError as err:  # a duplicate key of a JSON file
        raise DesignError(f"{path}: {err}") from None
    except json.JSONDecodeError as err:
        raise DesignError(f"{path}: cannot parse as JSON at line {err.lineno}, column {err.colno}: {err.msg}; fix the "
                          "file (docs/userstudy.md, \"Design file\")") from None
    except yaml.YAMLError as err:
        raise DesignError(f"{path}: cannot parse as YAML: {yaml_error_text(err)}; fix the file (docs/userstudy.md, "
                          "\"Design file\")") from None
    return design_from_dict(data, source=path.name)


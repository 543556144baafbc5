"""Where a survey database must not live, and a served bundle should not: inside a DVC stage's output, which
`dvc repro` deletes and rebuilds.

The pipeline's `survey_bundle` stage outputs `build/survey/`; `fourdfy survey serve build/survey` without `--db`
would keep the votes in `build/survey/survey.sqlite`, and the next `dvc repro` after a changed input would delete
them; and the videos of `build/survey/media/` would vanish under the running server (`dvc_bundle_message`: serve a
copy). `dvc_output_stage` reads the dvc.yaml files at and above a folder (no DVC import: plain YAML) and names the
stage whose `outs` hold that folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

DVC_FILE = "dvc.yaml"
PARAMS_FILE = "params.yaml"
EXPORTS_DIR = Path("data") / "study"
"""Where the pipeline's `votes` stage takes real exports from (docs/pipeline.md, "Real votes"): a database kept
next to them survives `dvc repro` and is ignored by git (`*.sqlite`)."""

_VAR = re.compile(r"\$\{\s*([A-Za-z0-9_.-]+)\s*\}")


@dataclass(frozen=True)
class DvcOutput:
    """A DVC stage output that holds a folder."""

    stage: str
    """The stage's name in dvc.yaml."""
    dvc_file: Path
    """The dvc.yaml that declares it (absolute)."""
    out: str
    """The output as dvc.yaml writes it (variables resolved)."""
    exact: bool
    """Whether the output is the folder itself (else a folder holding it)."""

    @property
    def project(self) -> Path:
        """The folder of the dvc.yaml (its paths are relative to it)."""
        return self.dvc_file.parent


def _params(folder: Path) -> dict:
    """params.yaml next to a dvc.yaml ({} when absent or unreadable: its variables then stay unresolved)."""
    try:
        data = yaml.safe_load((folder / PARAMS_FILE).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _resolve(text: str, params: dict) -> str | None:
    """`text` with its `${a.b}` variables replaced by params.yaml's scalar values; None when one cannot be (a
    `${item.x}` of a matrix, a list, a missing key): such an output is taken as not naming the folder."""
    def value(match: re.Match) -> str:
        node = params
        for part in match.group(1).split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(match.group(1))
            node = node[part]
        if isinstance(node, (dict, list)) or node is None:
            raise KeyError(match.group(1))
        return str(node)

    try:
        resolved = _VAR.sub(value, text)
    except KeyError:
        return None
    return None if "${" in resolved else resolved


def _outs(stage: dict) -> list[str]:
    """The output paths of one stage (`outs` of the stage, or of its `do:` for foreach), either spelling: a
    plain path or a one-key mapping `{path: {cache: false, ...}}`."""
    body = stage["do"] if isinstance(stage.get("do"), dict) else stage
    outs = body.get("outs") or []
    paths = []
    for item in outs if isinstance(outs, list) else []:
        if isinstance(item, str):
            paths.append(item)
        elif isinstance(item, dict):
            paths.extend(str(k) for k in item)
    return paths


def _stage_outputs(dvc_file: Path) -> list[tuple[str, str, Path]]:
    """(stage, out as written, absolute path) of every output of a dvc.yaml whose path can be resolved."""
    try:
        data = yaml.safe_load(dvc_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return []  # a dvc.yaml DVC itself could not read declares nothing we can trust
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict):
        return []
    base = dvc_file.parent
    params = _params(base)
    found = []
    for name, stage in stages.items():
        if not isinstance(stage, dict):
            continue
        wdir = _resolve(stage["wdir"], params) if isinstance(stage.get("wdir"), str) else "."
        for out in _outs(stage):
            path = _resolve(out, params)
            if path is not None and wdir is not None:
                found.append((str(name), path, Path(os.path.normpath(base / wdir / path))))
    return found


def dvc_output_stage(folder: Path | str) -> DvcOutput | None:
    """The DVC stage whose output is `folder` or a folder holding it (so `dvc repro` deletes it), from the
    dvc.yaml files at and above `folder` up to the DVC project root (the folder with `.dvc/`); None when no
    stage outputs it."""
    target = Path(folder).resolve()
    for parent in (target, *target.parents):
        dvc_file = parent / DVC_FILE
        if dvc_file.is_file():
            for stage, out, path in _stage_outputs(dvc_file):
                path = path.resolve()
                if target == path or path in target.parents:
                    return DvcOutput(stage=stage, dvc_file=dvc_file, out=out, exact=target == path)
        if (parent / ".dvc").is_dir():  # the project root: dvc.yaml files above it belong to no stage of it
            break
    return None


def _shown(path: Path) -> str:
    """A path as messages show it: relative to the current folder where possible (no absolute paths in
    messages a user may paste into a report)."""
    try:
        return Path(os.path.relpath(path)).as_posix()
    except ValueError:  # another drive (Windows)
        return path.as_posix()


def dvc_database_message(url: str, source: str) -> tuple[bool, str] | None:
    """For a SQLite database inside a DVC stage's output (by default `serve` keeps the votes in the bundle
    folder, and the pipeline's `build/survey/` is one): (refuse, the one line saying so and where to keep the
    votes instead). A database not there yet is refused; one that exists (served before) only warned about, with
    the export command, since refusing it would strand its raters. None for any other database."""
    from userstudy.survey.store import DEFAULT_SOURCE, sqlite_files

    files = sqlite_files(url)
    if not files:  # PostgreSQL, in-memory SQLite
        return None
    db = files[0]
    owner = dvc_output_stage(db.parent)
    if owner is None:
        return None
    folder = db.parent.as_posix()
    inside = "" if owner.exact else f", inside {owner.out}"
    where = f"{folder}{inside}, the output of DVC stage {owner.stage} ({_shown(owner.dvc_file)})"
    given = "the default without --db" if source == DEFAULT_SOURCE else f"from {source}"
    # next to the pipeline's exports; a project without that folder: its root, which no stage outputs
    exports = owner.project / EXPORTS_DIR if (owner.project / EXPORTS_DIR).is_dir() else owner.project
    safe = f"--db sqlite:///{_shown(exports / 'survey.sqlite')}"
    if not db.exists():
        return True, (f"the survey database {db.as_posix()} ({given}) would lie in {where}: "
                      f"`dvc repro` replaces that folder and would delete the votes. Give --db with a database "
                      f"outside it, e.g. {safe}")
    return False, (f"the survey database {db.as_posix()} lies in {where}: the next `dvc repro` "
                   f"replaces that folder and deletes the votes. Export them first (fourdfy survey export --db "
                   f"sqlite:///{db.as_posix()} --out {_shown(exports / 'votes.csv')}) and serve new surveys with a "
                   f"database outside it, e.g. {safe}")


def dvc_bundle_message(root: Path | str, database_inside: bool = False) -> str | None:
    """For a bundle folder that a DVC stage outputs (the pipeline's `build/survey/`): the one line saying that
    `dvc repro` deletes and rebuilds it under a running server (its videos vanish mid-study, and a bundle rebuilt with
    another id is refused on the survey's database at the next start) and which copy to serve instead. Only a warning:
    the study may already run from it, and refusing would strand its raters. `database_inside`: the survey database
    lies in the folder too and `dvc_database_message` already said so; the words that follow its line. None for any
    other folder."""
    root = Path(root)
    owner = dvc_output_stage(root)
    if owner is None:
        return None
    folder = root.as_posix()
    outputs = owner.project / "outputs"  # what git ignores and no stage writes (commands run by hand write there)
    copy = _shown(outputs / root.resolve().name)
    cp = f"cp -r {folder} {copy}" if outputs.is_dir() else f"mkdir -p {_shown(outputs)} && cp -r {folder} {copy}"
    if database_inside:  # the copy takes the database along: the raters' links keep working on it
        return (f"its videos go with that folder too: stop here and serve a copy of the bundle with its votes, "
                f"{cp}, then fourdfy survey serve {copy}")
    inside = "" if owner.exact else f", inside {owner.out}"
    return (f"the bundle {folder} is in the output of DVC stage {owner.stage} ({_shown(owner.dvc_file)}){inside}, "
            f"which `dvc repro` deletes and rebuilds: its videos would vanish under this server (raters get \"video "
            f"unavailable\") and a rebuilt bundle with another id is refused on this database. Serve a copy instead: "
            f"{cp}, then fourdfy survey serve {copy} with the same database (the copy keeps the "
            f"bundle id)")

"""Survey bundles: the questions of a study design and its videos under opaque names.

A bundle is a folder::

    bundle.json        server-side only: design, questions, which opaque video shows which method
    media/<hash>.mp4   the videos of its questions, remuxed without metadata, each named by the first 32 hex
                       characters of the SHA-256 of its bytes

Artifacts follow the evaluation contract: one folder per (method, prompt),
`<root>/<method>/<prompt_slug>/` holding `video.mp4` and `manifest.json` (keys method, prompt, slug,
width, height, n_frames, ...). Questions: the primary method against each comparison on the prompts of
that comparison's section (`prompt_set` names `<prompts_dir>/<prompt_set>.txt`, of which the section's
`n_prompts` take the first: `userstudy.design.section_prompts`; a section without one uses every prompt
for which both methods have artifacts), plus one attention check per decoy
artifact (the design's `attention_check.correct_method` against the decoy, on the same prompt).
The two videos of a question must carry the same prompt text; differences in frame count, size, fps or
trajectory are allowed and summarised per method pair (`Bundle.notes`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from evaluation.artifacts import (MANIFEST, RENDER_HINT, VIDEO, digest_problem, folder_reason, is_run_folder,
                                  read_json_object)
from evaluation.video import VideoError, decode_video, probe_video
from prompts import PROMPT_DIR
# CHECK_ID_PREFIX is also imported from here (it was defined here before the scheme moved to userstudy.design)
from userstudy.design import (CHECK_ID_PREFIX, Design, attention_check_id, design_from_dict,  # noqa: F401
                              paired_prompts, question_id, section_prompts)
from userstudy.outputs import few, new_locked_folder, remove_unlocked

BUNDLE_FILE = "bundle.json"
MEDIA_DIR = "media"
BUNDLE_FORMAT = 1


class BundleError(ValueError):
    """A bundle cannot be built (every missing or mismatched video listed) or read."""


@dataclass(frozen=True)
class Question:
    """One head-to-head question: a prompt and two videos (the server knows which method is which)."""

    question_id: str
    """Stable id, the same for every rater (`<comparison>__<slug>`, `check__<decoy>__<slug>`)."""
    prompt_id: str
    """Slug of the prompt."""
    prompt: str
    """Prompt text shown to the rater."""
    method_a: str
    """Method of video A (the primary, or the correct method of an attention check)."""
    method_b: str
    """Method of video B (the comparison, or the decoy)."""
    video_a: str
    """Opaque file name of video A under `media/`."""
    video_b: str
    """Opaque file name of video B under `media/`."""
    is_attention_check: bool = False
    """True for an attention check (the right answer is the side showing `method_a`)."""


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle."""

    root: Path
    """The bundle folder."""
    bundle_id: str
    """Hash of the questions and videos (a database serves one bundle)."""
    design: Design
    """The study design (primary, comparisons, attention check)."""
    questions: tuple[Question, ...]
    """Questions in design order (raters see their own shuffled order)."""
    left_out: tuple[str, ...] = ()
    """Ids of the design's questions left out by `allow_missing` (a video missing)."""
    notes: tuple[str, ...] = ()
    """Per method pair, how its videos differ (frames, size, fps, trajectory); allowed, but worth knowing. First,
    when there are any, a line naming the artifacts' methods the design has no question for (`unlisted_note`); last,
    what was done with temporaries that earlier builds killed outright left beside the bundle (`build_bundle`)."""

    def video_path(self, name: str) -> Path:
        return self.root / MEDIA_DIR / name

    @property
    def by_id(self) -> dict[str, Question]:
        return {q.question_id: q for q in self.questions}


def _design_data(design: Design) -> dict:
    """The design as bundle.json stores it, in the full form `design_from_dict` reads back (the votes validator and
    the admin tally use it; labels included: the tally names methods as the tables do). Its tables as they are: one
    table of every comparison would give two rows of it one label where two tables of the design share a label,
    which the design allows (`check_table_labels`) but the folded table would not. Sections keep their rows and
    headings, not their `prompt_set` and `n_prompts`: the questions already fix each comparison's prompts, and a
    reader without `--prompts-dir` (the admin tally) would check them against the project's prompts/, not the
    folder the bundle was built from. (Bundles of earlier versions hold the short form, which still loads.)"""
    check = design.check
    tables = {t.name: {"caption": t.caption,
                       "sections": [{"heading": s.heading, "rows": list(s.rows)} for s in t.sections]}
              for t in design.tables}
    return {"name": design.display_name, "primary": design.primary, "tables": tables,
            "attention_check": {"correct_method": check.correct_method, "decoys": list(check.decoys)},
            "methods": {m: {"label": lab.label, "latex": lab.latex} for m, lab in design.labels.items()}}


def _id_design(design: Design) -> dict:
    """The part of the design the bundle id covers: its name, primary, comparisons, labels and attention check, as
    the short form bundle.json held before it stored the tables, so a bundle built again by this version keeps the
    id, hence the database, of one built before (docs/survey.md, "Building again"). The table layout changes
    neither what raters see nor what the tally counts."""
    check = design.check
    return {"name": design.display_name, "primary": design.primary, "comparisons": list(design.comparisons),
            "attention_check": {"correct_method": check.correct_method, "decoys": list(check.decoys)},
            "methods": {m: {"label": lab.label, "latex": lab.latex} for m, lab in design.labels.items()}}


ROOT_LAYOUT = "<method>/<prompt_slug>/"


def _runs_note(root: Path) -> str | None:
    """The training runs under an artifacts root, named (None: none), for the error: a runs folder given for the
    artifacts one otherwise shows up as every video missing. Runs lie at runs/<name>/ (by hand) or
    runs/<profile>/<method>/<slug>/ (the pipeline), so up to three levels down."""
    if not root.is_dir():
        return None
    if is_run_folder(root):
        return f"--artifacts {root} is a training run (`fourdfy generate` wrote it), not evaluation videos: {RENDER_HINT}"
    runs = sorted(p.relative_to(root).as_posix() for pattern in ("*/", "*/*/", "*/*/*/") for p in root.glob(pattern)
                  if is_run_folder(p))
    if not runs:
        return None
    return (f"--artifacts {root} holds training runs (`fourdfy generate` wrote them: {', '.join(runs[:3])}"
            f"{', ...' if len(runs) > 3 else ''}), not evaluation videos: {RENDER_HINT}")


def _empty_root_note(root: Path) -> str:
    """Why an existing artifacts root yields no artifact: named in the error, since a wrong --artifacts
    otherwise only shows up as every video missing."""
    if (root / MANIFEST).is_file() or (root / VIDEO).is_file():
        return (f"--artifacts {root} holds {MANIFEST}/{VIDEO} itself (one artifact or a run folder): give the "
                f"folder that holds {ROOT_LAYOUT} folders")
    if any((p / MANIFEST).is_file() or (p / VIDEO).is_file() for p in root.iterdir() if p.is_dir()):
        return (f"--artifacts {root} holds artifact folders directly (one method's?): give its parent, the folder "
                f"that holds {ROOT_LAYOUT} folders")
    return f"--artifacts {root} holds no {ROOT_LAYOUT} artifact folders"


def _index_artifacts(roots: list[Path], problems: list[str], empty: list[Path] | None = None
                     ) -> dict[tuple[str, str], Path]:
    """(method, slug) -> artifact folder over all roots; the same pair in two roots is a problem.
    Existing roots without any artifact folder are appended to `empty`.

    Keyed by the folder names, not by the manifests as `evaluation.artifacts.scan_artifacts` is: a folder
    whose manifest is wrong, unreadable or missing is reported as that folder's problem (which
    --allow-missing does not skip), not taken for a missing video.
    """
    found: dict[tuple[str, str], Path] = {}
    for root in roots:
        if not root.exists():
            problems.append(f"artifacts folder not found: {root} (--artifacts names a folder holding {ROOT_LAYOUT})")
            continue
        if not root.is_dir():
            problems.append(f"--artifacts {root} is a file, not a folder: give the folder holding {ROOT_LAYOUT}")
            continue
        n_seen = 0
        # hidden folders are temporaries of an interrupted artifact write: never part of a study
        for method_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if is_run_folder(method_dir):  # its ckpt/ is no prompt of a method (_empty_root_note names it)
                continue
            for slug_dir in sorted(p for p in method_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if is_run_folder(slug_dir):  # the pipeline's runs/<profile>: named once by _empty_root_note
                    continue
                n_seen += 1
                key = (method_dir.name, slug_dir.name)
                if key in found and found[key].resolve() == slug_dir.resolve():
                    continue  # the same folder reached through a root given twice (or a link): one artifact
                if key in found:
                    problems.append(f"{key[0]}/{key[1]}: found in two artifact folders ({found[key]} and {slug_dir})")
                    continue
                found[key] = slug_dir
        if empty is not None and not n_seen:
            empty.append(root)
    return found


def artifact_pairs(roots: list[Path | str]) -> set[tuple[str, str]]:
    """The (method, prompt slug) pairs with an artifact folder under `roots`, found as `survey build` finds them
    (`simulate-votes --artifacts`). BundleError, in one line, naming every root that is missing or not a folder and
    every pair found in two roots."""
    problems: list[str] = []
    index = _index_artifacts([Path(r) for r in roots], problems)
    if problems:
        raise BundleError("; ".join(problems))
    return set(index)


def _check_artifact(folder: Path, method: str, slug: str, prompt: str | None, facts: dict | None = None) -> list[str]:
    """Problems of one artifact folder (empty list = usable). `facts`, when given, receives what the
    videos of a question are compared by: the manifest's `prompt` and `trajectory`, and the video's
    `frames`, `size` (WxH) and `fps`.

    Only the manifest keys a bundle relies on are checked (method, slug, prompt, size, frame count), not
    `read_artifact`'s whole schema: a manifest holding just these keys is enough for a survey.
    """
    facts = {} if facts is None else facts
    where = f"{method}/{slug}"
    out = []
    video, manifest_path = folder / VIDEO, folder / MANIFEST
    if not video.is_file():
        out.append(f"{where}: {VIDEO} missing in {folder}")
    manifest = None
    if not manifest_path.is_file():
        out.append(f"{where}: {MANIFEST} missing in {folder}")
    else:
        try:
            manifest = read_json_object(manifest_path, BundleError)
        except BundleError as err:
            out.append(f"{where}: {folder_reason(err, folder)}")
    if manifest is not None:
        for key, want in (("method", method), ("slug", slug)):
            if manifest.get(key) != want:
                out.append(f"{where}: manifest {key} is {manifest.get(key)!r}, the folder says {want!r}")
        if prompt is not None and manifest.get("prompt") != prompt:
            out.append(f"{where}: manifest prompt {manifest.get('prompt')!r} differs from the prompt file's {prompt!r}")
        for key in ("prompt", "trajectory"):
            if isinstance(manifest.get(key), str):
                facts[key] = manifest[key]
    if video.is_file():
        # probed and decoded as validate_artifact does: a stream that fails to decode is unplayable for raters
        try:
            info = probe_video(video)
            n_frames = len(decode_video(video))
        except (VideoError, OSError) as err:
            out.append(f"{where}: {VIDEO} cannot be read ({err})")
        else:
            facts.update(frames=n_frames, size=f"{info.width}x{info.height}", fps=f"{info.fps:g}")
            if (info.codec, info.pix_fmt) != ("h264", "yuv420p"):  # what every browser plays
                out.append(f"{where}: {VIDEO} is {info.codec}/{info.pix_fmt}, the contract is h264/yuv420p")
            if manifest is not None:
                for key, got in (("width", info.width), ("height", info.height), ("n_frames", n_frames)):
                    if key in manifest and manifest[key] != got:
                        out.append(f"{where}: manifest {key} {manifest[key]!r} but {VIDEO} has {got}")
                # raters would judge another video than the one imported or rendered under this name
                if (changed := digest_problem(folder, manifest, video)) is not None:
                    out.append(f"{where}: {changed}")
    return out


def _remux(src: Path, dst: Path) -> None:
    """Copy the video stream into a fresh mp4 without container or stream metadata (titles, comments,
    handler names could name the method) and with the index first so playback starts at once."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4",
                                           options={"movflags": "+faststart"}) as out:
        in_stream = inp.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        out_stream.metadata.clear()
        out.metadata.clear()
        for packet in inp.demux(in_stream):
            if packet.dts is None:  # flush packet
                continue
            packet.stream = out_stream
            out.mux(packet)




def unlisted_note(methods: list[str]) -> str:
    """Why the artifacts of `methods` (sorted, non-empty) are not in the bundle: a user's own method next to
    the paper's design is otherwise dropped without a word."""
    return (f"artifacts of {few(methods, 3)} left out: the design lists no question for "
            f"{'this method' if len(methods) == 1 else 'these methods'}; give --design a design that lists them "
            f"(docs/userstudy.md, \"Design file\")")


ALLOW_MISSING_HINT = ("For a partial demo bundle, rerun with --allow-missing: questions without both videos are "
                      "then left out and listed in bundle.json; the full build needs every video of the design.")


def _relative_root(root: Path, bundle_dir: Path) -> str:
    """`root` as bundle.json names it: relative to the bundle folder, however it was typed (an absolute path, one
    relative to the working folder), so the file names no path of the machine it was built on."""
    return Path(os.path.relpath(os.path.abspath(root), os.path.abspath(bundle_dir))).as_posix()


def plan_questions(design: Design, roots: list[Path], prompts_dir: Path = PROMPT_DIR, allow_missing: bool = False,
                   listed_methods: tuple[str, ...] = (), bundle_dir: Path | None = None
                   ) -> tuple[list[dict], dict[tuple[str, str], Path], list[str], list[str], list[str]]:
    """Questions (method pairs and prompts), the artifact folder of every video they need, what is
    missing, the ids of the questions left out for it, and notes: the artifacts' methods the design lists
    no question for (`unlisted_note`; `listed_methods` also count as listed, e.g. those of the tables
    `--tables` left out), then how the paired videos differ (`pair_notes`). The missing entries (written to
    bundle.json) name the artifacts folders relative to `bundle_dir` when given; error messages name them as given.

    Raises `BundleError` listing every missing or mismatched video (ending with a hint at
    `--allow-missing` when videos are missing). With `allow_missing` (the pipeline's demo runs, which
    train few prompts) questions without both videos are left out and listed instead; a mismatched
    video is still an error.
    """
    problems: list[str] = []
    missing: list[str] = []
    n_absent = 0  # problems that allow_missing would have turned into left-out questions

    def _absent(text: str, entry: str | None = None) -> None:
        nonlocal n_absent
        if allow_missing:
            missing.append(text if entry is None else entry)
        else:
            problems.append(text)
            n_absent += 1

    empty_roots: list[Path] = []
    index = _index_artifacts(roots, problems, empty_roots)
    if roots and not any(r.is_dir() for r in roots):
        # no root to look in: each of its lines says why, and a line per video "missing" would only bury them
        raise BundleError(f"{len(problems)} problem(s) with --artifacts, no bundle written:\n"
                          + "\n".join(f"- {p}" for p in problems))
    listed = {*design.methods, design.check.correct_method, *listed_methods}  # decoys included
    unlisted = sorted({m for (m, _) in index} - listed)
    planned: list[dict] = []
    needed: dict[tuple[str, str], str | None] = {}  # (method, slug) -> expected prompt text
    for table in design.tables:
        for section in table.sections:
            prompts: dict[str, str] | None = None
            if section.prompt_set:
                try:  # the first n_prompts of the set: the one rule of simulate-votes too
                    prompts = section_prompts(section, prompts_dir)
                except ValueError as err:
                    problem = f"prompt set {section.prompt_set!r}: {err}"
                    if problem not in problems:  # several sections share one set: its error is listed once
                        problems.append(problem)
                    continue
            for method in section.rows:
                if method == design.primary:
                    continue
                if prompts is not None:
                    pairs = list(prompts.items())
                else:  # no prompt set: every prompt both methods have (simulate-votes --artifacts asks the same)
                    slugs = paired_prompts(design.primary, method, index)
                    if not slugs:
                        _absent(f"{method}: no prompt has videos of both {design.primary} and {method}")
                    pairs = [(s, None) for s in slugs]
                for slug, text in pairs:
                    planned.append({"question_id": question_id(method, slug), "prompt_id": slug, "prompt": text,
                                    "method_a": design.primary, "method_b": method, "is_attention_check": False})
                    for m in (design.primary, method):
                        if needed.get((m, slug)) is None:
                            needed[(m, slug)] = text
    check = design.check
    for decoy in check.decoys:
        slugs = sorted(s for (m, s) in index if m == decoy)
        if not slugs:
            _absent(f"attention check: no videos of the decoy {decoy!r} in any artifacts folder")
        for slug in slugs:
            planned.append({"question_id": attention_check_id(decoy, slug), "prompt_id": slug, "prompt": None,
                            "method_a": check.correct_method, "method_b": decoy, "is_attention_check": True})
            for m in (check.correct_method, decoy):
                needed.setdefault((m, slug), None)
    facts: dict[tuple[str, str], dict] = {}
    for (method, slug), text in sorted(needed.items()):
        folder = index.get((method, slug))
        if folder is None:
            listed_roots = roots if bundle_dir is None else [_relative_root(r, bundle_dir) for r in roots]
            _absent(f"{method}/{slug}: missing (looked in {', '.join(str(r) for r in roots)})",
                    f"{method}/{slug}: missing (looked in {', '.join(str(r) for r in listed_roots)})")
            continue
        problems.extend(_check_artifact(folder, method, slug, text, facts.setdefault((method, slug), {})))
    problems.extend(_prompt_mismatches(planned, facts))
    left_out: list[str] = []
    if allow_missing:
        complete = [(q["method_a"], q["prompt_id"]) in index and (q["method_b"], q["prompt_id"]) in index
                    for q in planned]
        left_out = [q["question_id"] for q, ok in zip(planned, complete) if not ok]
        planned = [q for q, ok in zip(planned, complete) if ok]
        # only the videos of the questions kept: a left-out question's one video would sit unused in media/
        used = {(q[m], q["prompt_id"]) for q in planned for m in ("method_a", "method_b")}
        needed = {k: v for k, v in needed.items() if k in used}
        # attention checks alone are no survey: they only screen raters of the design's comparisons
        n_checks = sum(q["is_attention_check"] for q in planned)
        if n_checks == len(planned) and not problems:
            kept = (", attention checks aside (checks alone are no survey: they only screen the raters of the other "
                    "questions)" if n_checks else "")
            problems.append(f"no question has videos of both its methods{kept} (looked in "
                            f"{', '.join(str(r) for r in roots)})"
                            + (f"; {unlisted_note(unlisted)}" if unlisted else ""))
    if problems:
        # an existing root that yields nothing is the likely cause of the missing videos: say so
        runs = {r: _runs_note(r) for r in roots}
        hint = "".join(f"\n{runs[r] or _empty_root_note(r)}" for r in roots if runs[r] or r in empty_roots)
        if n_absent:
            hint += "\n" + ALLOW_MISSING_HINT
            if n_absent < len(problems):
                hint += f" The other {len(problems) - n_absent} problem(s) must be fixed either way."
        raise BundleError(f"{len(problems)} problem(s) with the survey's videos or prompts, no bundle written:\n"
                          + "\n".join(f"- {p}" for p in problems) + hint)
    # Prompt text of sections without a prompt set (and of checks) comes from the primary's manifest.
    for q in planned:
        if q["prompt"] is None:
            manifest = read_json_object(index[(q["method_a"], q["prompt_id"])] / MANIFEST, BundleError)
            q["prompt"] = str(manifest.get("prompt") or q["prompt_id"])
    notes = ([unlisted_note(unlisted)] if unlisted else []) + pair_notes(planned, facts)
    return planned, {key: index[key] for key in needed}, missing, left_out, notes


def _prompt_mismatches(planned: list[dict], facts: dict[tuple[str, str], dict]) -> list[str]:
    """A question whose two videos were made for different prompt texts (e.g. "A panda dancing" and "A
    panda dancing."): raters would see one text for both. Questions with a prompt file are left out
    here: each video is compared with the file's text, and a mismatch is listed there."""
    out = []
    for q in planned:
        if q["prompt"] is not None:
            continue
        a = facts.get((q["method_a"], q["prompt_id"]), {}).get("prompt")
        b = facts.get((q["method_b"], q["prompt_id"]), {}).get("prompt")
        if a is not None and b is not None and a != b:
            out.append(f"{q['prompt_id']}: the prompt texts differ, {q['method_a']} has {a!r} and {q['method_b']} "
                       f"has {b!r}: render both for the same text (or fix the manifest's prompt)")
    return out


_COMPARED = ("frames", "size", "fps", "trajectory")


def pair_notes(planned: list[dict], facts: dict[tuple[str, str], dict]) -> list[str]:
    """One line per method pair whose videos differ in frame count, size, fps or trajectory, e.g.
    `mymethod vs myvid: frames 8 vs 124, size 32x32 vs 256x256 (1 question)`. Not an error: the paper
    compared its renders with MAV3D's published videos. Attention checks are left out (their decoy is
    meant to differ)."""
    pairs: dict[tuple[str, str], list[dict]] = {}
    for q in planned:
        if not q["is_attention_check"]:
            pairs.setdefault((q["method_a"], q["method_b"]), []).append(q)
    notes = []
    for (ma, mb), questions in pairs.items():
        seen: dict[str, tuple[set, set]] = {}  # key -> (values of ma, values of mb) where they differ
        n_differ = 0
        for q in questions:
            fa, fb = facts.get((ma, q["prompt_id"]), {}), facts.get((mb, q["prompt_id"]), {})
            differ = [k for k in _COMPARED if k in fa and k in fb and fa[k] != fb[k]]
            n_differ += bool(differ)
            for k in differ:
                va, vb = seen.setdefault(k, (set(), set()))
                va.add(fa[k])
                vb.add(fb[k])
        if not n_differ:
            continue
        parts = [f"{k} {'/'.join(map(str, sorted(seen[k][0])))} vs {'/'.join(map(str, sorted(seen[k][1])))}"
                 for k in _COMPARED if k in seen]
        count = (f"{n_differ} question{'s' if n_differ != 1 else ''}" if n_differ == len(questions)
                 else f"{n_differ} of {len(questions)} questions")
        notes.append(f"{ma} vs {mb}: {', '.join(parts)} ({count})")
    return notes


def _temporary_pattern(out: Path) -> re.Pattern:
    """The names `_new_folder` gives the temporaries of `out`, and only those (not those of a folder `out.x`, nor of
    `evaluation.artifacts` or `userstudy.outputs`, whose names differ)."""
    return re.compile(rf"\.{re.escape(out.name)}\.[0-9a-f]{{12}}\.tmp")


def _new_folder(out: Path) -> tuple[Path, int | None]:
    """A new hidden temporary folder beside `out`, `.<out name>.<12 hex>.tmp` (the name `method.fileio` gives a
    file's temporary, which .dvcignore leaves out of stage hashes should a kill -9 leave it), with the mode a plain
    mkdir gives (0777 less the umask): renamed into the bundle, it must be as readable as its media/
    (tempfile.mkdtemp's 0700 would lock out a web server run by another user).

    Returned with a descriptor holding an flock on it until closed (None where the file system cannot lock
    folders): the kernel drops the lock when the build dies, however it dies, so a later build tells a killed
    build's temporary (unlocked) from a running one's (`_remove_stale`)."""
    return new_locked_folder(lambda: out.parent / f".{out.name}.{secrets.token_hex(6)}.tmp")


def _remove_stale(out: Path) -> list[str]:
    """Remove the temporaries of earlier builds of `out` that were killed outright (kill -9, an out-of-memory kill,
    a power loss: nothing of theirs ran to remove them), so they do not pile up beside it; a build of `out` running
    now holds the lock on its own and keeps it. Returns the note lines saying what was removed, or left and why."""
    pattern = _temporary_pattern(out)
    try:
        entries = list(out.parent.iterdir())
    except OSError:  # a folder one may write but not list: nothing to tell apart
        return []
    removed, unlockable, stuck = remove_unlocked(
        sorted(p for p in entries if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink()))

    def it(names: list[str]) -> str:
        return "it" if len(names) == 1 else "them"

    notes = []
    if removed:
        what = ("the unfinished folder of an earlier build" if len(removed) == 1
                else "unfinished folders of earlier builds")
        notes.append(f"removed {few(removed, 2)} beside {out}: {what} killed outright (kill -9, power loss)")
    if stuck:
        notes.append(f"could not remove {few(stuck, 2)} beside {out}, left by a build killed outright: delete "
                     f"{it(stuck)} by hand")
    if unlockable:
        notes.append(f"left {few(unlockable, 2)} beside {out}: this file system cannot lock folders, so a build "
                     f"still writing {it(unlockable)} cannot be told from one killed outright; delete {it(unlockable)} "
                     f"once no `survey build` of {out} runs")
    return notes


def _rename_new(tmp: Path, out: Path) -> None:
    """Rename the finished build to `out`, which must still not exist: another build may have written it since
    this one checked (a rename would replace an empty folder and fail on a bundle with a raw OSError). Its bundle
    and the votes it may hold are left as they are; this build is discarded."""
    taken = (f"{out} was written by another build while this one ran (a bundle may be in use: choose a new "
             "folder); this build is discarded")
    if os.path.lexists(out):
        raise BundleError(taken)
    try:
        os.rename(tmp, out)
    except OSError as err:
        if err.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
            raise BundleError(taken) from None
        raise


def build_bundle(design: Design, artifact_roots: list[Path | str], out: Path | str,
                 prompts_dir: Path | str = PROMPT_DIR, allow_missing: bool = False,
                 listed_methods: tuple[str, ...] = ()) -> Bundle:
    """Build a bundle folder at `out` (must not exist); written atomically (a temporary folder renamed).
    `listed_methods`: methods not to note as unlisted beyond the design's (see `plan_questions`). Once the videos
    and prompts pass their checks, the temporaries that builds of `out` killed outright left beside it are removed
    (`_remove_stale`; said in `Bundle.notes`)."""
    roots = [Path(r) for r in artifact_roots]
    out = Path(out)
    if out.exists():
        raise BundleError(f"{out} already exists (a bundle may be in use: choose a new folder)")
    planned, folders, missing, left_out, notes = plan_questions(design, roots, Path(prompts_dir), allow_missing,
                                                                 tuple(listed_methods), bundle_dir=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # once the checks have passed (a build that fails them touches nothing): space for this build's videos
    notes.extend(_remove_stale(out))
    tmp, lock = _new_folder(out)
    try:
        media = tmp / MEDIA_DIR
        media.mkdir()
        names: dict[tuple[str, str], str] = {}
        for key, folder in sorted(folders.items()):
            part = media / "part.mp4"
            _remux(folder / VIDEO, part)
            name = hashlib.sha256(part.read_bytes()).hexdigest()[:32] + ".mp4"
            os.replace(part, media / name)  # identical videos share one file
            names[key] = name
        questions = [Question(video_a=names[(q["method_a"], q["prompt_id"])],
                              video_b=names[(q["method_b"], q["prompt_id"])], **q) for q in planned]
        body = {"questions": [asdict(q) for q in questions]}
        bundle_id = _content_id(body["questions"], _id_design(design))
        # outside the bundle id: what was left out does not change what raters see
        data = {"format": BUNDLE_FORMAT, "bundle_id": bundle_id, **body, "design": _design_data(design),
                "missing": missing, "left_out": left_out}
        (tmp / BUNDLE_FILE).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        # read back as `survey serve` will, before the rename: a bundle that cannot be served is never left at `out`
        try:
            built = _read_bundle(tmp, shown=out)
        except BundleError as err:
            raise BundleError(f"the bundle built for {out} would not load, so nothing was written there (a bug of "
                              f"`survey build`: please report it with the design file): {err}") from None
        _rename_new(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            os.close(lock)
    return replace(built, root=out, notes=tuple(notes))


def load_bundle(path: Path | str) -> Bundle:
    """Read a bundle folder written by `build_bundle`."""
    return _read_bundle(Path(path))


def _content_id(questions: list[dict], id_design: dict) -> str:
    """The bundle id: a hash of the questions (as `asdict` gives them) and the design's part of the id
    (`_id_design`). `build_bundle` writes it into bundle.json; `_read_bundle` computes it again from the content."""
    return hashlib.sha256(json.dumps({"questions": questions, "design": id_design}, sort_keys=True).encode()
                          ).hexdigest()[:16]


REBUILD = ("build the bundle again with `fourdfy survey build` (into a new folder) instead of editing "
           f"{BUNDLE_FILE}")
_VIDEO_NAME = re.compile(r"[0-9a-f]{32}\.mp4")  # the names build_bundle gives (never a path out of media/)
_TEXT_FIELDS = ("question_id", "prompt_id", "prompt", "method_a", "method_b", "video_a", "video_b")


def _content_problem(questions: tuple[Question, ...], design: Design) -> str | None:
    """What makes these questions unservable (None: nothing): `survey build` never writes such a bundle, but a
    bundle.json edited by hand may hold it, and raters would meet it as an error page."""
    if not questions:
        return "it holds no questions"
    for q in questions:
        where = f"question {q.question_id!r}"
        bad = [f for f in _TEXT_FIELDS if not isinstance(getattr(q, f), str) or (f != "prompt" and not getattr(q, f))]
        if bad:
            return f"{where}: {', '.join(bad)} must be non-empty text"
        if not isinstance(q.is_attention_check, bool):
            return f"{where}: is_attention_check must be true or false, not {q.is_attention_check!r}"
        for v in (q.video_a, q.video_b):
            if not _VIDEO_NAME.fullmatch(v):
                return f"{where}: video {v!r} is not a name `survey build` gives (<32 hex>.mp4 under {MEDIA_DIR}/)"
        # a question shows the primary against a comparison, or a check's correct method against a decoy
        check = design.check
        if q.is_attention_check:
            (a_name, a), (b_name, b) = ("attention_check.correct_method", check.correct_method), \
                ("attention_check.decoys", check.decoys)
        else:
            (a_name, a), (b_name, b) = ("primary", design.primary), ("comparisons", design.comparisons)
        if q.method_a != a:
            return f"{where}: method_a is {q.method_a!r}, the design's {a_name} is {a!r}"
        if q.method_b not in b:
            return f"{where}: method_b {q.method_b!r} is not among the design's {b_name} ({', '.join(b) or 'none'})"
    ids = [q.question_id for q in questions]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        return f"question id(s) listed more than once: {few(twice, 3)}"
    if all(q.is_attention_check for q in questions):
        return "it holds only attention checks, no question of the design's comparisons"
    return None


def _read_bundle(root: Path, shown: Path | None = None) -> Bundle:
    """Read the bundle folder `root`; messages name it `shown` (default `root`): `build_bundle` reads its temporary
    folder back under the name it is built for. A bundle whose content is not what `build_bundle` wrote (edited by
    hand) is refused: its id would bind it to the database of the bundle it was built as, whose raters would then
    meet questions it no longer holds."""
    shown = root if shown is None else shown
    file, shown_file = root / BUNDLE_FILE, shown / BUNDLE_FILE
    if not file.is_file():
        raise BundleError(f"{shown} is not a survey bundle (no {BUNDLE_FILE}; build one with `fourdfy survey build`)")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise BundleError(f"{shown_file}: not a survey bundle (a JSON object is expected); {REBUILD}")
        if data.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{shown_file}: bundle format {data.get('format')!r}, this version reads {BUNDLE_FORMAT}")
        if not isinstance(data["questions"], list):
            raise TypeError(f"questions must be a list, not {type(data['questions']).__name__}")
        questions = tuple(Question(**q) for q in data["questions"])
        design = design_from_dict(data["design"], source=str(shown_file))
        bundle_id = str(data["bundle_id"])
        left_out = tuple(str(q) for q in data.get("left_out", ()))  # absent in bundles of older versions
    except (ValueError, KeyError, TypeError) as err:
        raise BundleError(f"{shown_file}: cannot read the bundle ({err})") from err
    problem = _content_problem(questions, design)
    if problem:
        raise BundleError(f"{shown_file}: {problem}; {REBUILD}")
    # Bundles of earlier versions hold the design in the short form (no tables), which their id hashed as it is.
    stored = data["design"]
    content = _content_id([asdict(q) for q in questions], _id_design(design) if "tables" in stored else stored)
    if content != bundle_id:
        raise BundleError(f"{shown_file}: its questions or design are not those of bundle {bundle_id} (they hash to "
                          f"{content}), so it was edited after `survey build` and would be served on the database of "
                          f"the bundle it was built as; {REBUILD}")
    missing = sorted({v for q in questions for v in (q.video_a, q.video_b) if not (root / MEDIA_DIR / v).is_file()})
    if missing:
        raise BundleError(f"{shown}: {len(missing)} video(s) missing under {MEDIA_DIR}/: {', '.join(missing)}")
    return Bundle(root=root, bundle_id=bundle_id, design=design, questions=questions, left_out=left_out)


def verify_media(bundle: Bundle) -> None:
    """Refuse (BundleError, one line naming every such file) a bundle whose media/ files are not the bytes their names
    hash: two videos swapped would record raters' answers under the other method, and an emptied or replaced one shows
    another video than the one the bundle id covers. Each file is read once, in blocks (`serve` calls this at start;
    `load_bundle` does not, so the app and the readers that need no video bytes stay as fast)."""
    bad = []
    for name in sorted({v for q in bundle.questions for v in (q.video_a, q.video_b)}):
        try:
            with open(bundle.video_path(name), "rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError as err:
            bad.append(f"{name} ({err.strerror or err})")
            continue
        if digest[:32] != name[:-len(".mp4")]:
            bad.append(name)
    if bad:
        raise BundleError(f"{bundle.root}: {len(bad)} video(s) under {MEDIA_DIR}/ are not the ones `survey build` wrote "
                          f"under those names (their SHA-256 differs: swapped, replaced or emptied since), so raters "
                          f"would judge other videos than {BUNDLE_FILE} says: {', '.join(bad)}; build the bundle again "
                          f"with `fourdfy survey build` (into a new folder)")

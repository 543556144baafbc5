"""Import external videos (MAV3D, any text-to-4D system) into the artifact contract.

Matching a file to a prompt:
- `mapping` (a CSV `file,prompt`): the prompt column is a slug of the project's prompt files or
  the prompt text itself (blanks around it dropped); files are relative to the source folder. A text whose slug is
  a library prompt's is that prompt, and the library's text is recorded (`ImportReport.library_texts`): its
  folder is the library prompt's, so every method of it must be scored and shown with the same words;
- otherwise by file name: the file stem's slug (`prompts.slugify`, so case and punctuation do not
  matter) equal to a prompt's slug; failing that, a conservative fuzzy rule: equal after dropping
  leading articles ("a", "an", "the") from both, and only when exactly one prompt matches
  (`Dog_riding_a_skateboard.mp4` -> "A dog riding a skateboard.",
  `baby_panda_eating_ice_cream.mp4` -> "A baby panda eating ice cream."). The articles are dropped from the
  whole slug before a long one is cut (its hash covers them), so the rule holds for prompts of any length; a
  file named by the cut slug of the prompt with another article than the prompt's matches too. Anything else is
  reported as unmatched, never guessed.

Per file: the target folder is checked first. Without `overwrite` an existing one is left as it is: `done` when
its manifest records this very file (name and sha256) imported with the same settings (method, prompt, trajectory,
frame count and rate, copied or re-encoded), so that importing again would write the same folder (an interrupted
import run again), and its video.mp4 is still the one written (the SHA-256 its manifest records; a video truncated
or replaced since is a failure that asks for `overwrite`); else `existing`, reported apart from the failures. Then
the video is decoded completely and its folder written, before the next file is read (`on_imported` hears of each
as it is in place). A missing, empty, corrupt, truncated (fewer frames than its container declares) or non-video
file is reported with its reason and nothing is written for it; the other files are still imported, unless
`all_or_nothing`, which checks every file first and writes nothing if any fails. An import folder of the method that
no file of this import went to (its file renamed or removed since) is reported (`ImportReport.stale`), never removed.

The video is copied byte for byte when it already is H.264/yuv420p at an even size and no
resampling is asked (raters and the CLIP score then see exactly the original file); otherwise the
decoded frames are re-encoded (`evaluation.video.encode_video`; odd sizes padded by one repeated
row/column). `n_frames` resamples by nearest-frame index mapping (`resample_indices`), keeping the
video's duration (the fps is scaled by n_frames / source frames).
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from prompts import full_slug, library, resolve_prompt, slugify

# TRAJECTORIES and trajectory_problem live with the artifact contract, which write_artifact enforces; named here too
# for the callers of import-videos' check
from .artifacts import (TRAJECTORIES, Artifact, ArtifactError, artifact_folder, check_method_name, check_writable_folder,
                        read_artifact, sha256_file, trajectory_problem, write_artifact)
from .video import VIDEO_EXTENSIONS, VideoError, decode_video, pad_even, probe_video, resample_indices

ARTICLES = ("a", "an", "the")
AUTHOR_FOLDERS = {"ours": "4dfy", "ours_w_hexplane": "hexplane", "ours_wo_hybrid_sds": "wo_hybrid",
                  "ours_wo_sds": "wo_3d", "ours_wo_vsd": "wo_img", "ours_wo_sds_vsd": "wo_3d_img"}
"""Method folders of the authors' example videos (`video-generation-study-example/example/*`, docs/evaluation.md)
-> the registered method each holds; `mav3d` is named alike in both."""


def authors_method(name: str) -> str | None:
    """The registered method an authors' example folder name stands for (`ours` -> `4dfy`; case and `-` for `_`
    ignored), None for any other name."""
    return AUTHOR_FOLDERS.get(name.strip().lower().replace("-", "_"))


class VideoImportError(ValueError):
    """Bad import arguments (source folder, mapping CSV, prompt file)."""


@dataclass
class ImportReport:
    """What an import did."""

    imported: list[Artifact] = field(default_factory=list)
    """Artifacts written."""
    failed: dict[str, str] = field(default_factory=dict)
    """file (`source_name`: its path below the source folder) -> reason it was not imported (a bad file, two files
    for one prompt)."""
    existing: dict[str, str] = field(default_factory=dict)
    """file (`source_name`) -> slug, for files whose artifact folder exists and was left as it is (no `overwrite`),
    other than what this import would write (another file, other settings, or not an import)."""
    done: dict[str, str] = field(default_factory=dict)
    """file (`source_name`) -> slug, for files whose artifact folder already holds this file imported with these
    settings (left as it is: an earlier, perhaps interrupted, run of the same import wrote it)."""
    unmatched_files: list[str] = field(default_factory=list)
    """Video files that match no prompt."""
    unmatched_prompts: list[str] = field(default_factory=list)
    """Slugs of the prompt list that no file matched."""
    no_video: list[str] = field(default_factory=list)
    """Slugs of the prompt list that have no video and no file of `failed` (listed there once, with its reason):
    no file matched them, or (`all_or_nothing` stopped by another file) theirs was not written; not those in
    `existing` or `done`, which have one."""
    fuzzy: dict[str, str] = field(default_factory=dict)
    """file name -> slug for matches made by the article rule."""
    unknown_prompts: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """file name -> (prompt text, closest known prompt or None), for mapped prompts found in none of the project's
    prompt files (imported as given: a prompt of one's own, or a typo that no table row will meet)."""
    library_texts: dict[str, tuple[str, str]] = field(default_factory=dict)
    """file name -> (prompt text as mapped, the library's text recorded instead), for mapped texts with a library
    prompt's slug but other words ('a baby panda eating ice cream' -> 'A baby panda eating ice cream.')."""
    in_subfolders: list[str] = field(default_factory=list)
    """Video files below the source folder's subfolders (paths below it), which an import without a map does not
    read: named so that a folder of per-prompt subfolders is not taken for a folder without videos."""
    own_texts: dict[str, tuple[str, str]] = field(default_factory=dict)
    """file name -> (prompt text of the `prompts` given, recorded as it is; the library's text of the same slug), for
    prompts a given prompt file words otherwise than the prompt library ('a panda dancing' -> 'A panda dancing.'):
    `clipscore` refuses a prompt whose methods' videos were made for different texts."""
    stale: dict[str, tuple[str, str]] = field(default_factory=dict)
    """slug -> (source file its manifest records, why no file of this import went to it), for the folders of
    `out_root/method` that an import made (manifest `source.kind` "import") and that no file of this import matched:
    a video whose file has been renamed or removed since stays there, validated, scored and shown as the method's.
    Reported, never removed (an import from another source folder made them, perhaps)."""


def _listed(name: str) -> bool:
    """Whether a directory entry is a candidate video: not hidden. A hidden file is no video of a method: macOS's
    AppleDouble `._a_panda_dancing.mp4` beside a copied video would otherwise claim its prompt, and an interrupted
    write's temporary is hidden too."""
    return not name.startswith(".")


def _source_videos(src: Path) -> list[Path]:
    """The video files of `src` itself, sorted: a dangling symlink included, so that its import fails naming it
    (`file not found`) rather than its prompt silently having no video."""
    return sorted(f for f in src.iterdir() if _listed(f.name) and f.suffix.lower() in VIDEO_EXTENSIONS
                  and (f.is_file() or (f.is_symlink() and not f.exists())))


def _subfolder_videos(src: Path) -> list[str]:
    """Video files in `src`'s (non-hidden) subfolders, as paths below `src`, sorted."""
    found = []
    for root, dirs, files in os.walk(src, followlinks=False):
        dirs[:] = sorted(d for d in dirs if _listed(d))
        if Path(root) != src:
            found += [Path(root, f).relative_to(src).as_posix() for f in files
                      if _listed(f) and Path(f).suffix.lower() in VIDEO_EXTENSIONS]
    return sorted(found)


def _strip_articles(slug: str) -> str:
    words = slug.split("_")
    while len(words) > 1 and words[0] in ARTICLES:
        words = words[1:]
    return "_".join(words)


def _prompt_loose_keys(text: str) -> set[str]:
    """The slugs under which the article rule finds a prompt: the slug of its words without leading articles, and
    with each article before them. Made from the whole slug (`full_slug`), then cut as `slugify` cuts: the hash that
    ends a long prompt's slug covers its article, so the slug alone cannot be stripped. A file named by the slug of
    the prompt with another article than the prompt's has one of these slugs."""
    bare = _strip_articles(full_slug(text))
    return {slugify(bare), *(slugify(f"{a}_{bare}") for a in ARTICLES)}


def _file_loose_keys(stem: str) -> set[str]:
    """The slugs a file stem may stand for under the article rule: that of its words without leading articles, and
    its own slug (a file named by a cut slug that carries an article of the prompt's words)."""
    whole = full_slug(stem)
    return {slugify(_strip_articles(whole)), slugify(whole)}


def default_prompts() -> dict[str, str]:
    """Every prompt of the project's prompt files (slug -> text)."""
    table: dict[str, str] = {}
    for prompts in library().values():
        table.update(prompts)
    return table


def match_files(files: list[Path], prompts: dict[str, str]) -> tuple[dict[Path, str], dict[str, str], list[str]]:
    """({file: slug}, {file name: slug} of fuzzy matches, unmatched file names)."""
    by_loose: dict[str, set[str]] = {}
    for slug, text in prompts.items():
        for loose in _prompt_loose_keys(text):
            by_loose.setdefault(loose, set()).add(slug)
    matched, fuzzy, unmatched = {}, {}, []
    for f in files:
        try:
            key = slugify(f.stem)
        except ValueError:
            unmatched.append(f.name)
            continue
        if key in prompts:
            matched[f] = key
            continue
        candidates = set().union(*(by_loose.get(k, set()) for k in _file_loose_keys(f.stem)))
        if len(candidates) == 1:
            matched[f] = next(iter(candidates))
            fuzzy[f.name] = matched[f]
        else:
            unmatched.append(f.name)
    return matched, fuzzy, unmatched


def read_mapping(path: Path, src: Path) -> dict[Path, str]:
    """{file: prompt text} from a CSV with columns file,prompt (blanks around each value dropped; a slug of the
    prompt library is its prompt's text, `resolve_prompt`)."""
    if path.is_dir():  # "not found" would send one looking for a file that is there, as a folder
        raise VideoImportError(f"{path} is a folder, not a mapping file; give --map a CSV file with columns "
                               "file,prompt")
    if not path.is_file():
        raise VideoImportError(f"mapping file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise VideoImportError(f"cannot read mapping file {path}: {err.strerror or err}") from None
    if data.startswith(codecs.BOM_UTF8):  # a BOM would hide the "file" column
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:  # a spreadsheet's "CSV" is often cp1252: named by line, as prompt files are
        line = data[:err.start].count(b"\n") + 1
        raise VideoImportError(f"{path.name}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}); save the CSV as "
                               "UTF-8") from None
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in reader.fieldnames or []]
        if "file" not in cols or "prompt" not in cols:
            raise VideoImportError(f"{path.name}: needs columns file,prompt (has {', '.join(cols) or 'none'})")
        out: dict[Path, str] = {}
        for lineno, row in enumerate(reader, 2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            if not row["file"] or not row["prompt"]:
                raise VideoImportError(f"{path.name}:{lineno}: empty file or prompt")
            file = src / row["file"]
            if file in out:
                raise VideoImportError(f"{path.name}:{lineno}: {row['file']} listed twice")
            try:
                out[file] = resolve_prompt(row["prompt"])
            except ValueError as err:
                raise VideoImportError(f"{path.name}:{lineno}: {err}") from None
    return out


def _plan(path: Path, n_src: int, size: tuple[int, int], codec: str, pix_fmt: str | None, file_fps: float,
          n_frames: int | None, fps: float | None) -> dict:
    """How a file of these details is imported with these settings: the recorded fps (`fps` as given, else the
    file's, scaled by the resampling to keep the duration), the resampling (or None),
    whether it is copied, and the manifest's `extra`. Shared by `_load` and `_already_imported`, so that a folder
    counts as done exactly when importing again would write the same manifest."""
    src_fps = fps or file_fps or 15.0
    resample = None
    if n_frames is not None and n_frames != n_src:
        idx = resample_indices(n_src, n_frames)
        if fps is None:  # the file's rate, scaled to keep its duration; a given --fps is the rate to record
            src_fps = src_fps * n_frames / n_src
        resample = {"from": n_src, "to": n_frames, "indices": idx.tolist()}
    copy = (codec == "h264" and pix_fmt == "yuv420p" and size[0] % 2 == 0 and size[1] % 2 == 0
            and resample is None and fps is None and path.suffix.lower() in (".mp4", ".m4v", ".mov"))
    extra = {"source_frames": n_src, "source_codec": codec, "source_pix_fmt": pix_fmt,
             "source_size": list(map(int, size)), "copied": copy}
    if resample is not None:
        extra["resample"] = resample
    return {"fps": src_fps, "resample": resample, "copy": copy, "extra": extra,
            "n_frames": n_frames if resample is not None else n_src,
            "size": (size[0] + size[0] % 2, size[1] + size[1] % 2)}  # re-encoded: padded to even (`pad_even`)


def _load(path: Path, n_frames: int | None, fps: float | None) -> dict:
    """Decode and check one file; what write_artifact needs."""
    info = probe_video(path)
    frames = decode_video(path)
    n_src = len(frames)
    if n_src < 2:  # e.g. a PNG or JPEG renamed .mp4: one picture, which CLIP and the survey would take as a video
        raise VideoError(f"{path.name} holds {n_src} frame ({info.codec} in {info.container.split(',')[0]}): "
                         "a still image, not a video")
    plan = _plan(path, n_src, frames.shape[1:3], info.codec, info.pix_fmt, info.fps, n_frames, fps)
    out = {"copy": None, "frames": None, "fps": plan["fps"], "extra": plan["extra"]}
    if plan["copy"]:
        out["copy"] = path
    else:
        if plan["resample"] is not None:
            frames = frames[np.asarray(plan["resample"]["indices"])]
        out["frames"] = pad_even(np.ascontiguousarray(frames))
    return out


def _already_imported(folder: Path, path: Path, method: str, prompt: str, n_frames: int | None, fps: float | None,
                      trajectory: str, name: str | None = None) -> bool:
    """Whether `folder` holds what importing `path` with these settings writes: its manifest records this file
    (name and sha256) and the same method, prompt, trajectory, frame count, size, rate and `extra` (copied or
    re-encoded, the resampling). The file's own details (frames, codec, size) are taken from the manifest, which
    recorded them from the same bytes, so nothing is decoded; only the container's rate is read again. `name`: the
    file as the manifest records it (`source_name`; default its name; one recorded by its name alone, as imports
    of a mapped file in a subfolder did before, counts too: its SHA-256 must match anyway)."""
    try:
        art = read_artifact(folder)
    except ArtifactError:
        return False
    source, extra = art.manifest.get("source") or {}, art.manifest.get("extra") or {}
    if source.get("file") not in (name or path.name, path.name) or not source.get("sha256"):
        return False
    if (source.get("kind"), art.method, art.prompt, art.trajectory) != ("import", method, prompt, trajectory):
        return False
    try:
        n_src, size = int(extra["source_frames"]), tuple(map(int, extra["source_size"]))
        codec, pix_fmt = extra["source_codec"], extra["source_pix_fmt"]
    except (KeyError, TypeError, ValueError):  # not written by this importer
        return False
    if len(size) != 2:
        return False
    try:
        if sha256_file(path) != source["sha256"]:
            return False
        file_fps = probe_video(path).fps if fps is None else 0.0
    except (OSError, VideoError):  # unreadable now: `_load` reports it
        return False
    plan = _plan(path, n_src, size, codec, pix_fmt, file_fps, n_frames, fps)
    return (art.n_frames, (art.height, art.width), extra) == (plan["n_frames"], plan["size"], plan["extra"]) \
        and math.isclose(art.fps, plan["fps"], rel_tol=1e-9)


def _video_changed(folder: Path, file_name: str) -> str | None:
    """Why the video.mp4 of `folder`, which an import of `file_name` with the same settings wrote
    (`_already_imported`), is not the video it wrote, or None: missing, or bytes other than the SHA-256 its manifest
    records (`video_sha256`; a manifest of an earlier version lacks it, and its copied video is checked against the
    source file's SHA-256, which a copy has; an earlier re-encoded one is trusted)."""
    art = read_artifact(folder)
    path = art.video_path
    again = f"pass --overwrite to import {file_name} again"
    if not path.is_file():
        return f"{path} is missing (its manifest is there); {again}"
    expected = art.manifest.get("video_sha256")
    if expected is None and (art.manifest.get("extra") or {}).get("copied") is True:
        expected = art.source.get("sha256")
    if expected is None:
        return None
    try:
        if sha256_file(path) == expected:
            return None
    except OSError as err:
        return f"{path} cannot be read ({err.strerror or err}); {again}"
    return (f"{path} is not the video the import wrote there (its SHA-256 differs from the one its manifest records: "
            f"truncated, corrupted or replaced since); {again}")


def source_name(f: Path, src: Path) -> str:
    """How the report and the manifest name file `f` of source folder `src`: its path below `src` ('panda/out.mp4',
    as a mapping names it: two mapped files may share a name in different subfolders), else its name."""
    try:
        return f.relative_to(src).as_posix()
    except ValueError:  # a mapping's absolute path outside the folder: its name, never an absolute path
        return f.name


def _stale_imports(src: Path, folder: Path, targeted: set[str], matched: dict[str, str]) -> dict[str, tuple[str, str]]:
    """`ImportReport.stale`: the import folders in `folder` (OUT/METHOD) of no slug in `targeted` (those this import's
    files went to) whose recorded file now matches another prompt, has changed, or is not in `src`, with that file and
    why. `matched`: file (`source_name`) -> slug of this import's files. A folder that is no import's (a render, a
    manifest that cannot be read) is left out: the importer did not make it; so is one whose file is still in `src`
    with the recorded SHA-256 (an import of a subset, `--prompts` or `--map`, leaves the rest as they are)."""
    stale: dict[str, tuple[str, str]] = {}
    if not folder.is_dir():
        return stale
    for sub in sorted(folder.iterdir()):
        if not sub.is_dir() or not _listed(sub.name) or sub.name in targeted:
            continue
        try:
            art = read_artifact(sub)
        except ArtifactError:
            continue
        source = art.source if isinstance(art.source, dict) else {}
        file = source.get("file")
        if source.get("kind") != "import" or not isinstance(file, str) or not file:
            continue
        if file in matched:
            why = f"{file} now matches prompt {matched[file]}"
        elif (src / file).is_file():
            try:  # the same file, left out of this import (a --prompts or --map subset): its video is still right
                if source.get("sha256") and sha256_file(src / file) == source["sha256"]:
                    continue
            except OSError:
                pass
            why = f"{file} in {src} has changed since it was imported"
        else:  # renamed or removed, or never there: an import of another source folder
            why = f"{file} is not in {src}"
        stale[sub.name] = (file, why)
    return stale


def check_trajectory(trajectory: str) -> None:
    """`trajectory_problem` as `import-videos --trajectory`'s VideoImportError."""
    if (problem := trajectory_problem(trajectory)) is not None:
        raise VideoImportError(f"--trajectory {problem}")


def import_videos(src: Path | str, method: str, out_root: Path | str, *, prompts: dict[str, str] | None = None,
                  mapping: Path | str | None = None, n_frames: int | None = None, fps: float | None = None,
                  trajectory: str = "unknown", all_or_nothing: bool = False, overwrite: bool = False,
                  on_matched: Callable[[ImportReport], None] | None = None,
                  on_imported: Callable[[Artifact], None] | None = None) -> ImportReport:
    """Import the videos of `src` (a folder) for `method`; see the module docstring for the rules. `on_matched`
    gets the report once the files are matched to prompts (before any is decoded); `on_imported` each artifact as
    soon as its folder is in place."""
    check_trajectory(trajectory)  # before the source folder: the whole command is mistyped
    src = Path(src)
    if not src.is_dir():
        what = "is a file, not a folder (give the folder that holds the videos)" if src.exists() else "not found"
        raise VideoImportError(f"source folder {src} {what}")
    if n_frames is not None and n_frames < 2:  # one frame would be a still image, which an import refuses
        raise VideoImportError(f"--frames must be at least 2, got {n_frames}")
    if fps is not None and not (math.isfinite(fps) and fps > 0):  # 0 is no "keep the file's": that is leaving it out
        raise VideoImportError(f"--fps must be a positive number, got {fps} (leave it out to keep each file's rate)")
    try:  # once here, not once per file
        check_method_name(method)
        check_writable_folder(Path(out_root) / method)
    except ArtifactError as err:
        raise VideoImportError(str(err)) from None
    report = ImportReport()
    if mapping is not None:
        pairs = read_mapping(Path(mapping), src)
        known = default_prompts()
        texts = {}
        for f, t in pairs.items():
            # same slug, same folder: the library's prompt, which the other methods' artifacts, the survey's
            # prompt check and the CLIP score all use; other words would score this video against other text
            library_text = known.get(slugify(t))
            if library_text is not None and library_text != t:
                report.library_texts[source_name(f, src)] = (t, library_text)
                t = library_text
            texts[f] = t
        targets = {f: slugify(t) for f, t in texts.items()}
        wanted = {slugify(t): t for t in texts.values()}
        for f, t in texts.items():
            if slugify(t) not in known:
                close = difflib.get_close_matches(t, list(known.values()), n=1, cutoff=0.8)
                report.unknown_prompts[source_name(f, src)] = (t, close[0] if close else None)
        listed = set(pairs)
        report.unmatched_files = sorted(f.name for f in src.iterdir()
                                        if _listed(f.name) and f.suffix.lower() in VIDEO_EXTENSIONS and f not in listed)
    else:
        wanted = dict(prompts) if prompts is not None else default_prompts()
        files = _source_videos(src)
        report.in_subfolders = _subfolder_videos(src)
        targets, report.fuzzy, report.unmatched_files = match_files(files, wanted)
        texts = {f: wanted[s] for f, s in targets.items()}
        if prompts is not None:
            # a prompt file's own words are recorded (it is the prompt file), but where the library words the same
            # prompt otherwise the other methods' videos will carry the library's text, which clipscore refuses
            known = default_prompts()
            for f, s in targets.items():
                if known.get(s) is not None and known[s] != texts[f]:
                    report.own_texts[source_name(f, src)] = (texts[f], known[s])
    name = {f: source_name(f, src) for f in targets}
    by_slug: dict[str, list[str]] = {}
    for f, s in targets.items():
        by_slug.setdefault(s, []).append(name[f])
    for s, names in by_slug.items():
        if len(names) > 1:
            for f in [f for f in targets if targets[f] == s]:
                report.failed[name[f]] = f"{len(names)} files match prompt {s!r}: {', '.join(sorted(names))}"
                del texts[f]
    report.unmatched_prompts = sorted(set(wanted) - set(by_slug))
    if on_matched is not None:
        on_matched(report)

    def write(f: Path, data: dict) -> None:
        try:
            art = write_artifact(out_root, method, texts[f], data["frames"], video_file=data["copy"],
                                 source={"kind": "import", "file": name[f], "sha256": sha256_file(f)},
                                 trajectory=trajectory, fps=data["fps"], extra=data["extra"], overwrite=overwrite)
        except ArtifactError as err:
            report.failed[name[f]] = str(err)
            return
        report.imported.append(art)
        if on_imported is not None:
            on_imported(art)

    checked: dict[Path, dict] = {}  # all_or_nothing: written only once every file has passed
    for f in sorted(texts):
        slug = slugify(texts[f])
        # a taken folder is known before decoding, and counts for all_or_nothing like a bad file (the method
        # folder itself was checked writable above); one this very import wrote is simply done
        folder = artifact_folder(out_root, method, slug)
        if folder.exists() and not overwrite:
            if _already_imported(folder, f, method, texts[f], n_frames, fps, trajectory, name[f]):
                # the same import, but its video may have been damaged since: not done, and never replaced unasked
                changed = _video_changed(folder, name[f])
                if changed is None:
                    report.done[name[f]] = slug
                else:
                    report.failed[name[f]] = changed
            else:
                report.existing[name[f]] = slug
            continue
        try:
            data = _load(f, n_frames, fps)
        except (VideoError, ArtifactError) as err:
            report.failed[name[f]] = str(err)
            continue
        if all_or_nothing:
            checked[f] = data
        else:  # one file's frames in memory at a time, and its folder in place before the next is read
            write(f, data)
    if all_or_nothing and not (report.failed or report.existing):  # else nothing is written
        for f, data in checked.items():
            write(f, data)
    failed_slugs = {s for f, s in targets.items() if name[f] in report.failed}  # reported with their reason
    report.no_video = sorted(set(wanted) - {a.slug for a in report.imported} - set(report.existing.values())
                             - set(report.done.values()) - failed_slugs)
    report.stale = _stale_imports(src, Path(out_root) / method, set(targets.values()),
                                  {name[f]: s for f, s in targets.items()})
    return report

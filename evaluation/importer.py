"""Import external videos (MAV3D, any text-to-4D system) into the artifact contract.

Matching a file to a prompt:
- `mapping` (a CSV `file,prompt`): the prompt column is a slug of the project's prompt files or
  the prompt text itself; files are relative to the source folder;
- otherwise by file name: the file stem's slug (`prompts.slugify`, so case and punctuation do not
  matter) equal to a prompt's slug; failing that, a conservative fuzzy rule: equal after dropping
  leading articles ("a", "an", "the") from both, and only when exactly one prompt matches
  (`Dog_riding_a_skateboard.mp4` -> "A dog riding a skateboard.",
  `baby_panda_eating_ice_cream.mp4` -> "A baby panda eating ice cream."). Anything else is
  reported as unmatched, never guessed.

Per file: the target folder is checked first (an existing one is left as it is without `overwrite`,
and reported apart from the failures), then the video is decoded completely. A missing, empty, corrupt,
truncated (fewer frames than its container declares) or non-video file is reported
with its reason and nothing is written for it; the other files are still imported, unless
`all_or_nothing`, which checks every file first and writes nothing if any fails.

The video is copied byte for byte when it already is H.264/yuv420p at an even size and no
resampling is asked (raters and the CLIP score then see exactly the original file); otherwise the
decoded frames are re-encoded (`evaluation.video.encode_video`; odd sizes padded by one repeated
row/column). `n_frames` resamples by nearest-frame index mapping (`resample_indices`), keeping the
video's duration (the fps is scaled by n_frames / source frames).
"""

from __future__ import annotations

import csv
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prompts import library, resolve_prompt, slugify

from .artifacts import (Artifact, ArtifactError, artifact_folder, check_method_name, check_writable_folder,
                        sha256_file, write_artifact)
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
    """file name -> reason it was not imported (a bad file, two files for one prompt)."""
    existing: dict[str, str] = field(default_factory=dict)
    """file name -> slug, for files whose artifact folder exists and was left as it is (no `overwrite`)."""
    unmatched_files: list[str] = field(default_factory=list)
    """Video files that match no prompt."""
    unmatched_prompts: list[str] = field(default_factory=list)
    """Slugs of the prompt list that no file matched."""
    no_video: list[str] = field(default_factory=list)
    """Slugs of the prompt list with no video: no file matched, or the file that did failed (not those in
    `existing`, which have one)."""
    fuzzy: dict[str, str] = field(default_factory=dict)
    """file name -> slug for matches made by the article rule."""
    unknown_prompts: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """file name -> (prompt text, closest known prompt or None), for mapped prompts found in none of the project's
    prompt files (imported as given: a prompt of one's own, or a typo that no table row will meet)."""


def _strip_articles(slug: str) -> str:
    words = slug.split("_")
    while len(words) > 1 and words[0] in ARTICLES:
        words = words[1:]
    return "_".join(words)


def default_prompts() -> dict[str, str]:
    """Every prompt of the project's prompt files (slug -> text)."""
    table: dict[str, str] = {}
    for prompts in library().values():
        table.update(prompts)
    return table


def match_files(files: list[Path], prompts: dict[str, str]) -> tuple[dict[Path, str], dict[str, str], list[str]]:
    """({file: slug}, {file name: slug} of fuzzy matches, unmatched file names)."""
    by_loose: dict[str, list[str]] = {}
    for slug in prompts:
        by_loose.setdefault(_strip_articles(slug), []).append(slug)
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
        candidates = by_loose.get(_strip_articles(key), [])
        if len(candidates) == 1:
            matched[f] = candidates[0]
            fuzzy[f.name] = candidates[0]
        else:
            unmatched.append(f.name)
    return matched, fuzzy, unmatched


def read_mapping(path: Path, src: Path) -> dict[Path, str]:
    """{file: prompt text} from a CSV with columns file,prompt."""
    if not path.is_file():
        raise VideoImportError(f"mapping file not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a BOM would hide the "file" column
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


def _load(path: Path, n_frames: int | None, fps: float | None) -> dict:
    """Decode and check one file; what write_artifact needs."""
    info = probe_video(path)
    frames = decode_video(path)
    src_fps = fps or info.fps or 15.0
    n_src = len(frames)
    if n_src < 2:  # e.g. a PNG or JPEG renamed .mp4: one picture, which CLIP and the survey would take as a video
        raise VideoError(f"{path.name} holds {n_src} frame ({info.codec} in {info.container.split(',')[0]}): "
                         "a still image, not a video")
    out = {"copy": None, "frames": None, "fps": src_fps, "n_source": n_src, "size": frames.shape[1:3],
           "codec": info.codec, "pix_fmt": info.pix_fmt}
    if n_frames is not None and n_frames != n_src:
        idx = resample_indices(n_src, n_frames)
        frames = frames[idx]
        out["fps"] = src_fps * n_frames / n_src
        out["resample"] = {"from": n_src, "to": n_frames, "indices": idx.tolist()}
    copy_ok = (info.codec == "h264" and info.pix_fmt == "yuv420p" and frames.shape[1] % 2 == 0
               and frames.shape[2] % 2 == 0 and "resample" not in out and fps is None
               and path.suffix.lower() in (".mp4", ".m4v", ".mov"))
    if copy_ok:
        out["copy"] = path
    else:
        out["frames"] = pad_even(np.ascontiguousarray(frames))
    return out


def import_videos(src: Path | str, method: str, out_root: Path | str, *, prompts: dict[str, str] | None = None,
                  mapping: Path | str | None = None, n_frames: int | None = None, fps: float | None = None,
                  trajectory: str = "unknown", all_or_nothing: bool = False, overwrite: bool = False) -> ImportReport:
    """Import the videos of `src` (a folder) for `method`; see the module docstring for the rules."""
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
        texts = {f: t for f, t in pairs.items()}
        targets = {f: slugify(t) for f, t in texts.items()}
        wanted = {slugify(t): t for t in texts.values()}
        known = default_prompts()
        for f, t in texts.items():
            if slugify(t) not in known:
                close = difflib.get_close_matches(t, list(known.values()), n=1, cutoff=0.8)
                report.unknown_prompts[f.name] = (t, close[0] if close else None)
        listed = set(pairs)
        report.unmatched_files = sorted(f.name for f in src.iterdir()
                                        if f.suffix.lower() in VIDEO_EXTENSIONS and f not in listed)
    else:
        wanted = dict(prompts) if prompts is not None else default_prompts()
        files = sorted(f for f in src.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS)
        targets, report.fuzzy, report.unmatched_files = match_files(files, wanted)
        texts = {f: wanted[s] for f, s in targets.items()}
    by_slug: dict[str, list[str]] = {}
    for f, s in targets.items():
        by_slug.setdefault(s, []).append(f.name)
    for s, names in by_slug.items():
        if len(names) > 1:
            for f in [f for f in targets if targets[f] == s]:
                report.failed[f.name] = f"{len(names)} files match prompt {s!r}: {', '.join(sorted(names))}"
                del texts[f]
    report.unmatched_prompts = sorted(set(wanted) - set(by_slug))
    loaded: dict[Path, dict] = {}
    for f in sorted(texts):
        slug = slugify(texts[f])
        # a taken folder is known before decoding, and counts for all_or_nothing like a bad file (the method
        # folder itself was checked writable above)
        if artifact_folder(out_root, method, slug).exists() and not overwrite:
            report.existing[f.name] = slug
            continue
        try:
            loaded[f] = _load(f, n_frames, fps)
        except (VideoError, ArtifactError) as err:
            report.failed[f.name] = str(err)
    if all_or_nothing and (report.failed or report.existing):
        loaded = {}  # nothing is written
    for f, data in loaded.items():
        extra = {"source_frames": data["n_source"], "source_codec": data["codec"], "source_pix_fmt": data["pix_fmt"],
                 "source_size": list(map(int, data["size"])), "copied": data["copy"] is not None}
        if "resample" in data:
            extra["resample"] = data["resample"]
        try:
            art = write_artifact(out_root, method, texts[f], data["frames"], video_file=data["copy"],
                                 source={"kind": "import", "file": f.name, "sha256": sha256_file(f)},
                                 trajectory=trajectory, fps=data["fps"], extra=extra, overwrite=overwrite)
        except ArtifactError as err:
            report.failed[f.name] = str(err)
            continue
        report.imported.append(art)
    report.no_video = sorted(set(wanted) - {a.slug for a in report.imported} - set(report.existing.values()))
    return report

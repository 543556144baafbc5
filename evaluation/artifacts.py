"""The evaluation artifact contract: one folder per (method, prompt), shown to raters and scored.

Layout::

    <root>/<method>/<prompt_slug>/
        video.mp4        H.264, yuv420p (64 frames for MAV3D's orbit unless the source says otherwise)
        depth.mp4        optional: colour-mapped depth, same frames and size (see evaluation.render)
        manifest.json    what the folder holds (below)

`manifest.json` keys (all present; null where unknown):

    schema      "fourdfy-artifact/1"
    method      method name (a `baselines` registry name for rendered runs; any name for imports)
    prompt      prompt text
    slug        `prompts.slugify(prompt)`, equal to the folder name
    source      {"kind": "render", "run": <run folder name>, "config_hash": <16 hex>, ...}
                (`fourdfy render` adds run_path, profile, seed, set, max_steps, steps, and init_from for a run
                started with --init-from: `evaluation.runs.render_source`; only kind, run and config_hash are
                required, so older artifacts stay valid)
                or {"kind": "import", "file": <original file name>, "sha256": <of that file>}
    trajectory  "orbit", "motion_smooth", or what an import was told ("unknown" by default)
    n_frames    frames in video.mp4
    height, width   frame size in pixels
    fps         frames per second of video.mp4
    times       per-frame scene times in [0, 1] (rendered) or null
    cameras     per-frame 4x4 camera-to-world matrices (OpenGL axes, world z-up) or null
    depth       "depth.mp4" or null
    versions    package versions of the writer ({name: version})
    extra       free-form details of the writer (render settings, import resampling, ...)
    video_sha256    SHA-256 of video.mp4 as written (not required: manifests of earlier versions lack it), so that
                a video truncated or replaced since is told from the one written (`fourdfy import-videos` run again)

API:
    write_artifact(root, method, prompt, frames, source=..., ...) -> Artifact
        encodes the frames and writes the folder atomically: everything goes to a hidden temporary
        folder beside the target, which is renamed into place last, so a crash never leaves a
        folder with a manifest that looks complete. `video_file=` copies an existing H.264/yuv420p
        file byte for byte instead of encoding.
    read_artifact(folder) -> Artifact         parses and checks the manifest (ArtifactError)
    validate_artifact(folder) -> list[str]    every problem found; [] = valid. Decodes video.mp4
                                              (and depth.mp4) and checks codec, pixel format,
                                              frame count and size against the manifest, and
                                              video.mp4's SHA-256 against `video_sha256` where
                                              the manifest records it.
    digest_problem(folder, manifest, video, digest=None) -> str | None   why video.mp4 is not the file the
                                              manifest's `video_sha256` records (None: it is, or none recorded)
    find_artifacts(roots) -> {(method, slug): Artifact}   artifact folders under the roots
    read_json_object(path, error) -> dict     a JSON object file, or `error` naming the file
    folder_reason(err, folder) -> str         an error's message without the folder path it starts with
    scan_artifacts(roots) -> (found, broken)   every artifact-like folder (manifest.json or
                                              video.mp4): the readable ones and {folder: reason}
    artifact_folder(root, method, slug) -> Path    where write_artifact puts it (names checked)
    refuse_existing(target, overwrite)        the "already exists" error (or a file in the way), for checks
                                              before costly work
    trajectory_problem(trajectory) -> str | None   why a camera path is none of `TRAJECTORIES` (orbit,
                                              motion_smooth, unknown), which write_artifact refuses
    check_writable_folder(folder), check_method_name(method)   the same checks for a whole import (a method name
                                              is at most `prompts.METHOD_NAME_MAX_BYTES` UTF-8 bytes, as a
                                              registered one)
    ArtifactError(ValueError)
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from method.fileio import folder_blocker
from prompts import method_name_too_long, slugify

from .video import VideoError, decode_video, encode_video, probe_video

RENDERED_TRAJECTORIES = ("orbit", "motion_smooth")
"""The camera paths `fourdfy render` draws, as an artifact's manifest records them (`trajectory`); imported videos
may also record `unknown` (`TRAJECTORIES`)."""
TRAJECTORIES = (*RENDERED_TRAJECTORIES, "unknown")
"""Every camera path an artifact may record: one `fourdfy render` draws, or `unknown` (an import that was not told)."""

SCHEMA = "fourdfy-artifact/1"
MANIFEST = "manifest.json"
VIDEO = "video.mp4"
DEPTH = "depth.mp4"
REQUIRED_KEYS = ("schema", "method", "prompt", "slug", "source", "trajectory", "n_frames", "height", "width", "fps",
                 "times", "cameras", "depth", "versions")
VERSION_PACKAGES = ("fourdfy-bench", "torch", "av", "open_clip_torch", "numpy")


class ArtifactError(ValueError):
    """An artifact folder is missing, malformed, or cannot be written."""


@dataclass(frozen=True)
class Artifact:
    """One (method, prompt) artifact folder and its manifest."""

    folder: Path
    """The artifact folder `<root>/<method>/<slug>`."""
    method: str
    """Method name."""
    prompt: str
    """Prompt text."""
    slug: str
    """Prompt slug (folder name)."""
    source: dict
    """Where the video came from (render or import), see the module docstring."""
    trajectory: str
    """Camera path name."""
    n_frames: int
    """Frames in video.mp4."""
    height: int
    """Frame height."""
    width: int
    """Frame width."""
    fps: float
    """Frame rate of video.mp4."""
    times: list[float] | None = None
    """Per-frame scene times, or None."""
    cameras: list | None = None
    """Per-frame 4x4 camera-to-world matrices, or None."""
    depth: str | None = None
    """Depth video file name, or None."""
    versions: dict = field(default_factory=dict)
    """Package versions of the writer."""
    manifest: dict = field(default_factory=dict)
    """The whole manifest as read."""

    @property
    def video_path(self) -> Path:
        return self.folder / VIDEO

    @property
    def depth_path(self) -> Path | None:
        return self.folder / self.depth if self.depth else None


def package_versions(names: Iterable[str] = VERSION_PACKAGES) -> dict[str, str]:
    from method.backends import package_version

    return {n: package_version(n) for n in names}


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_name(kind: str, name: str) -> None:
    if not name or name != name.strip() or "/" in name or "\\" in name or name.startswith(".") or name in ("..",):
        raise ArtifactError(f"{kind} {name!r} cannot be a folder name (no '/', no leading '.', not empty)")


def _plain(value: Any) -> Any:
    """JSON-able copy: tensors / arrays to lists of floats."""
    if value is None:
        return None
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.astype(float).tolist()
    return value


def artifact_folder(root: Path | str, method: str, slug: str) -> Path:
    """`<root>/<method>/<slug>`, the folder write_artifact writes; ArtifactError for unusable names."""
    check_method_name(method)
    _check_name("slug", slug)
    return Path(root) / method / slug


def check_method_name(method: str) -> None:
    """ArtifactError when `method` cannot be the name of a method folder, or is longer than a registered method's
    name may be (`prompts.method_name_too_long`): an imported method's name ends up where a registered one's does
    (folder and file names beside a prompt slug, survey question ids), so it has the same limit."""
    _check_name("method", method)
    if (why := method_name_too_long(method)) is not None:
        raise ArtifactError(why)


def trajectory_problem(trajectory: str) -> str | None:
    """What is wrong with a camera path to record, or None: one that is none of `TRAJECTORIES` (a typo would be
    recorded in every manifest), with a did-you-mean. Shared by `write_artifact`, `import-videos`,
    `validate-artifacts` and params.yaml's `videos:` check."""
    if trajectory in TRAJECTORIES:
        return None
    close = difflib.get_close_matches(trajectory, TRAJECTORIES, n=1) if isinstance(trajectory, str) else []
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    return (f"{trajectory!r} is not a known camera path{guess}; give one of {', '.join(TRAJECTORIES)} (unknown: the "
            "videos' camera path is not known)")


def check_writable_folder(folder: Path | str) -> None:
    """ArtifactError when `folder` (an artifact root or method folder to write into) cannot be made: a file is
    in its place or above it, or the nearest existing folder is not writable. Creates nothing."""
    folder = Path(folder)
    blocked = folder_blocker(folder)
    if blocked is not None and blocked[1] == "file":
        base = blocked[0]
        what = "" if base == folder else f", so {folder} cannot be made"
        raise ArtifactError(f"{base} is a file, not a folder{what}; give --out a folder, new or existing")
    if blocked is not None:
        verb = "write into" if blocked[0] == folder else "create"  # an existing folder that cannot take files
        raise ArtifactError(f"cannot {verb} {folder}: {blocked[0]} is not writable; give --out another folder")


def refuse_existing(target: Path, overwrite: bool) -> None:
    """ArtifactError if `target` exists and may not be replaced, or cannot be made where it is (a file in the
    way); callers check before costly work."""
    if target.exists() and not overwrite:
        raise ArtifactError(f"{target} already exists (pass --overwrite to replace it)")
    check_writable_folder(target.parent)


def write_artifact(root: Path | str, method: str, prompt: str, frames=None, *, source: dict, trajectory: str,
                   fps: float, times=None, cameras=None, depth_frames=None, video_file: Path | str | None = None,
                   extra: dict | None = None, overwrite: bool = False, slug: str | None = None) -> Artifact:
    """Write `<root>/<method>/<slug>/` atomically and return it as read back.

    frames: (N, H, W, 3) uint8 or float in [0, 1], encoded to video.mp4; or `video_file`, an
    existing H.264/yuv420p file copied as is. An existing folder is replaced only with `overwrite`. `trajectory`
    must be one of `TRAJECTORIES` (ArtifactError before anything is written, as `trajectory_problem` says).
    """
    check_method_name(method)
    if not prompt or not prompt.strip():
        raise ArtifactError("the prompt is empty")
    slug = slug or slugify(prompt)
    _check_name("slug", slug)
    if source.get("kind") not in ("render", "import"):
        raise ArtifactError(f"source kind must be 'render' or 'import', got {source.get('kind')!r}")
    # here, not only in `render` and `import-videos`: every writer's manifest is shown and paired by this name
    if (wrong := trajectory_problem(trajectory)) is not None:
        raise ArtifactError(f"trajectory {wrong}")
    if (frames is None) == (video_file is None):
        raise ArtifactError("give exactly one of frames or video_file")
    target = artifact_folder(root, method, slug)
    refuse_existing(target, overwrite)  # again here: another writer may have made it meanwhile
    target.parent.mkdir(parents=True, exist_ok=True)
    # a plain mkdir (mode 0777 & ~umask, like any folder), not mkdtemp: its 0700 would survive the rename
    tmp = target.parent / f".{slug}.tmp-{secrets.token_hex(6)}"
    tmp.mkdir()
    try:
        if video_file is not None:
            info = probe_video(video_file)
            if info.codec != "h264" or info.pix_fmt != "yuv420p":
                raise ArtifactError(f"{video_file}: is {info.codec}/{info.pix_fmt}; copy needs h264/yuv420p")
            shutil.copyfile(video_file, tmp / VIDEO)
            n, h, w = len(decode_video(tmp / VIDEO)), info.height, info.width
        else:
            encode_video(tmp / VIDEO, frames, fps)
            n, h, w = frames.shape[0], frames.shape[1], frames.shape[2]
        if depth_frames is not None:
            if tuple(depth_frames.shape[:3]) != (n, h, w):
                raise ArtifactError(f"depth frames {tuple(depth_frames.shape[:3])} differ from the video's {(n, h, w)}")
            encode_video(tmp / DEPTH, depth_frames, fps)
        times, cameras = _plain(times), _plain(cameras)
        manifest = {
            "schema": SCHEMA, "method": method, "prompt": prompt, "slug": slug, "source": dict(source),
            "trajectory": trajectory, "n_frames": int(n), "height": int(h), "width": int(w), "fps": float(fps),
            "times": times, "cameras": cameras, "depth": DEPTH if depth_frames is not None else None,
            "versions": package_versions(), "extra": extra or {}, "video_sha256": sha256_file(tmp / VIDEO),
        }
        problems = _manifest_problems(manifest)
        if problems:
            raise ArtifactError("; ".join(problems))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if target.exists():  # overwrite: move the old one aside first, drop it once the new one is in place
            old = Path(tempfile.mkdtemp(prefix=f".{slug}.old-", dir=target.parent))
            os.replace(target, old / "a")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except VideoError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ArtifactError(f"{target}: {err}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_artifact(target)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _manifest_problems(m: dict) -> list[str]:
    problems = [f"manifest lacks '{k}'" for k in REQUIRED_KEYS if k not in m]
    if problems:
        return problems
    if m["schema"] != SCHEMA:
        problems.append(f"schema is {m['schema']!r}, expected {SCHEMA!r}")
    for key in ("method", "prompt", "slug", "trajectory"):
        if not isinstance(m[key], str) or not m[key]:
            problems.append(f"'{key}' must be a non-empty string")
    if isinstance(m["prompt"], str) and m["prompt"] and isinstance(m["slug"], str):
        try:
            if slugify(m["prompt"]) != m["slug"]:
                problems.append(f"slug {m['slug']!r} is not the prompt's slug {slugify(m['prompt'])!r}")
        except ValueError as err:
            problems.append(str(err))
    src = m["source"]
    if not isinstance(src, dict) or src.get("kind") not in ("render", "import"):
        problems.append("source must be {'kind': 'render'|'import', ...}")
    elif src["kind"] == "render" and not {"run", "config_hash"} <= set(src):
        problems.append("a render source needs 'run' and 'config_hash'")
    elif src["kind"] == "import" and not {"file", "sha256"} <= set(src):
        problems.append("an import source needs 'file' and 'sha256'")
    for key in ("n_frames", "height", "width"):
        if not isinstance(m[key], int) or isinstance(m[key], bool) or m[key] < 1:
            problems.append(f"'{key}' must be a positive integer")
    if not _is_number(m["fps"]) or m["fps"] <= 0:
        problems.append("'fps' must be a positive number")
    n = m["n_frames"] if isinstance(m["n_frames"], int) else None
    if m["times"] is not None:
        if not isinstance(m["times"], list) or not all(_is_number(t) for t in m["times"]):
            problems.append("'times' must be a list of numbers or null")
        elif n is not None and len(m["times"]) != n:
            problems.append(f"'times' has {len(m['times'])} entries for {n} frames")
    if m["cameras"] is not None:
        arr = np.asarray(m["cameras"], dtype=object)
        ok = isinstance(m["cameras"], list) and arr.ndim == 3 and arr.shape[1:] == (4, 4)
        if not ok:
            problems.append("'cameras' must be a list of 4x4 matrices or null")
        elif n is not None and arr.shape[0] != n:
            problems.append(f"'cameras' has {arr.shape[0]} entries for {n} frames")
    if m["depth"] not in (None, DEPTH):
        problems.append(f"'depth' must be {DEPTH!r} or null")
    if not isinstance(m["versions"], dict):
        problems.append("'versions' must be a mapping")
    digest = m.get("video_sha256")
    if digest is not None and not (isinstance(digest, str) and len(digest) == 64
                                   and all(c in "0123456789abcdef" for c in digest)):
        problems.append("'video_sha256' must be 64 lowercase hex digits (or absent)")
    return problems


def read_json_object(path: Path, error: type[Exception]) -> dict:
    """The JSON object in `path`; `error` naming the file when it is not UTF-8 JSON or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object")
    return data


def read_artifact(folder: Path | str) -> Artifact:
    """The artifact in `folder`; ArtifactError naming the folder and every manifest problem."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{folder}: no {MANIFEST} (not an artifact folder)")
    m = read_json_object(path, ArtifactError)
    problems = _manifest_problems(m)
    if problems:
        raise ArtifactError(f"{path}: " + "; ".join(problems))
    return Artifact(folder=folder, method=m["method"], prompt=m["prompt"], slug=m["slug"], source=m["source"],
                    trajectory=m["trajectory"], n_frames=m["n_frames"], height=m["height"], width=m["width"],
                    fps=float(m["fps"]), times=m["times"], cameras=m["cameras"], depth=m["depth"],
                    versions=m["versions"], manifest=m)


def _video_problems(path: Path, art: Artifact, label: str) -> list[str]:
    if not path.is_file():
        return [f"{label} is missing"]
    try:
        info = probe_video(path)
        frames = decode_video(path)
    except VideoError as err:
        return [f"{label}: {err}"]
    problems = []
    if info.codec != "h264" or info.pix_fmt != "yuv420p":
        problems.append(f"{label} is {info.codec}/{info.pix_fmt}, expected h264/yuv420p")
    n, h, w = frames.shape[:3]
    if n != art.n_frames:
        problems.append(f"{label} has {n} frames, the manifest says {art.n_frames}")
    if (h, w) != (art.height, art.width):
        problems.append(f"{label} is {w}x{h} px, the manifest says {art.width}x{art.height}")
    return problems


def validate_artifact(folder: Path | str) -> list[str]:
    """Every problem of an artifact folder (manifest, names, videos decoded and counted, video.mp4's bytes against
    the manifest's `video_sha256` where it has one); [] = valid."""
    folder = Path(folder)
    try:
        art = read_artifact(folder)
    except ArtifactError as err:
        return [str(err)]
    problems = []
    if folder.name != art.slug:
        problems.append(f"folder name {folder.name!r} differs from the slug {art.slug!r}")
    if folder.parent.name != art.method:
        problems.append(f"parent folder {folder.parent.name!r} differs from the method {art.method!r}")
    problems += _video_problems(art.video_path, art, VIDEO)
    if (changed := digest_problem(art.folder, art.manifest, art.video_path)) is not None:
        problems.append(changed)
    if art.depth_path is not None:
        problems += _video_problems(art.depth_path, art, DEPTH)
    return problems


def digest_problem(folder: Path | str, manifest: dict, video: Path | str, digest: str | None = None) -> str | None:
    """Why `video` (the artifact folder's video.mp4) is not the file its manifest's `video_sha256` records, or None
    (it is, the manifest records none: an earlier version's, or the video is missing: the decoding checks say so).
    A replaced video of the same frame count and size decodes as well as the one written, so only its bytes tell
    it apart. One read of the file, cheaper than decoding it; none with `digest`, the SHA-256 of `video` that the
    caller has read already (`clipscore --cache`, whose keys need it too). Used by validate_artifact, `clipscore`
    (before any scoring) and `survey build`."""
    expected, video = manifest.get("video_sha256"), Path(video)
    if expected is None or not video.is_file():
        return None
    try:
        if (sha256_file(video) if digest is None else digest) == expected:
            return None
    except OSError as err:
        return f"{VIDEO} in {folder} cannot be read ({err.strerror or err})"
    source = manifest.get("source") if isinstance(manifest.get("source"), dict) else {}
    if source.get("kind") == "import":
        fix = (f"import {source.get('file')} again with `fourdfy import-videos SRC --method {manifest.get('method')} "
               "--out ROOT --overwrite`")
    else:
        fix = f"render run {source.get('run')} again with `fourdfy render RUN --out ROOT --overwrite`"
    return (f"{VIDEO} in {folder} changed since it was written (its SHA-256 differs from the manifest's "
            f"video_sha256: truncated, corrupted or replaced), so it is not the video written there; {fix}")


def artifact_folders(root: Path, names: tuple[str, ...]) -> list[Path]:
    """Folders under `root` (itself included) holding a file of `names`, sorted; hidden ones (temporaries of an
    interrupted write) left out. Symlinked folders are followed (a method's videos linked in from elsewhere),
    each real folder once, so a link loop ends."""
    found, visited = [], set()
    for here, dirs, files in os.walk(root, followlinks=True):
        real = Path(here).resolve()
        if real in visited:
            dirs[:] = []
            continue
        visited.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if any(n in files for n in names):
            found.append(Path(here))
    return sorted(found)


def find_artifacts(roots: Iterable[Path | str]) -> dict[tuple[str, str], Artifact]:
    """{(method, slug): Artifact} for every artifact folder under the roots (a root may itself be one).

    Hidden folders (temporaries of an interrupted write) are skipped; the same (method, slug) twice
    is an ArtifactError naming both folders; a malformed manifest is an ArtifactError too.
    """
    found: dict[tuple[str, str], Artifact] = {}
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise ArtifactError(f"{root}: " + ("a file, not a folder of artifacts" if root.exists() else "no such folder"))
        for folder in artifact_folders(root, (MANIFEST,)):
            art = read_artifact(folder)
            key = (art.method, art.slug)
            if key in found and found[key].folder.resolve() != art.folder.resolve():
                raise ArtifactError(f"two artifacts for method {art.method!r}, prompt {art.slug!r}: "
                                    f"{found[key].folder} and {art.folder}")
            found[key] = art
    return dict(sorted(found.items()))


def folder_reason(err: Exception, folder: Path) -> str:
    """The message of `err` (read_artifact's, read_json_object's) without the path of `folder` it starts
    with, for callers that name the folder themselves: '<folder>/manifest.json: not valid JSON (...)' ->
    'manifest.json: not valid JSON (...)'."""
    text = str(err)
    for prefix in (f"{folder}{os.sep}", f"{folder}: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


RENDER_HINT = "render each with `fourdfy render RUN --out ARTIFACTS` and give ARTIFACTS"
"""What to do with training runs given where evaluation videos are expected."""
def nothing_found(roots) -> str:
    """What to say when artifact roots hold no artifact at all."""
    return (f"no artifacts under {', '.join(map(str, roots))}; "
            "make them with `fourdfy render` or `fourdfy import-videos`")


RUN_REASON = f"a training run (`fourdfy generate` wrote it), not an evaluation video: {RENDER_HINT}"
"""What `scan_artifacts` says of a run folder given where artifacts are expected."""


def is_run_folder(folder: Path) -> bool:
    """Whether `folder` is a training run (a manifest with the run's config and hash, no video)."""
    if (folder / VIDEO).exists():
        return False
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "config_hash" in manifest and "schema" not in manifest


def prompt_text_conflicts(arts: dict[tuple[str, str], Artifact]) -> dict[str, str]:
    """{slug: its texts and their methods, e.g. "'A panda dancing.' (4dfy), 'a panda dancing' (mav3d)"} of the
    prompts whose artifacts record more than one text: methods compared by slug would be compared on other words (a
    CLIP score is taken against each video's own text)."""
    texts: dict[str, dict[str, list[str]]] = {}
    for (method, slug), art in sorted(arts.items()):
        texts.setdefault(slug, {}).setdefault(art.prompt, []).append(method)
    return {slug: ", ".join(f"{text!r} ({', '.join(methods)})" for text, methods in by_text.items())
            for slug, by_text in sorted(texts.items()) if len(by_text) > 1}


def scan_artifacts(roots: Iterable[Path | str]) -> tuple[dict[tuple[str, str], Artifact], dict[Path, str]]:
    """Every artifact-like folder under the roots, one with manifest.json or video.mp4 (a root may be one).

    Returns ({(method, slug): Artifact} of the readable ones, {folder: reason} of the others: a
    video.mp4 without manifest.json, a malformed manifest, and every folder of a (method, slug) that
    more than one holds, each naming the others (neither is the right one by being found first).
    Unlike find_artifacts, nothing is skipped silently and one bad folder does not stop the scan;
    hidden folders (temporaries of an interrupted write) are still skipped. A root that is not a
    folder is an ArtifactError. The manifests are read, the videos are not (validate_artifact does).
    """
    found: dict[tuple[str, str], Artifact] = {}
    broken: dict[Path, str] = {}
    claims: dict[tuple[str, str], list[Path]] = {}
    seen: set[Path] = set()  # overlapping roots reach a folder twice
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise ArtifactError(f"{root}: " + ("a file, not a folder of artifacts" if root.exists() else "no such folder"))
        for folder in artifact_folders(root, (MANIFEST, VIDEO)):
            if folder.resolve() in seen:
                continue
            seen.add(folder.resolve())
            if not (folder / MANIFEST).exists():
                broken[folder] = (f"{VIDEO} without {MANIFEST} (not written by `fourdfy render` or "
                                  "`fourdfy import-videos`)")
                continue
            if is_run_folder(folder):
                broken[folder] = RUN_REASON
                continue
            try:
                art = read_artifact(folder)
            except ArtifactError as err:
                broken[folder] = folder_reason(err, folder)
                continue
            claims.setdefault((art.method, art.slug), []).append(folder)
            found[(art.method, art.slug)] = art
    for (method, slug), folders in claims.items():
        if len(folders) > 1:
            del found[(method, slug)]
            for folder in folders:
                others = ", ".join(str(f) for f in folders if f != folder)
                broken[folder] = f"method {method!r} and prompt {slug!r} are also the artifact in {others}"
    return dict(sorted(found.items())), broken

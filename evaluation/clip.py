"""CLIP score of artifacts (paper Sec. 4.1): per frame, per prompt, per method, and Table 2's column.

- Frames are the DECODED video.mp4 of each artifact (what raters see), for every method alike.
- Per frame: 100 * max(cos(image embedding, text embedding), 0), with the model's own eval
  preprocessing (open_clip: resize the shorter side to the model's input size, bicubic, centre
  crop, normalise; a non-square frame therefore loses the sides of its longer dimension).
- Per prompt: mean over the frames. Per method: mean over its prompts, with a bootstrap 95%
  interval over prompts (`scipy.stats.bootstrap`, BCa); and the paired difference (method -
  primary) on the prompts both have, with its bootstrap interval.
- `clip.csv` (`method,clip,prompt_set,n_prompts,n_set`): for every prompt file of the `prompts`
  package and every method with at least one of its prompts, the mean over those prompts; and per
  method one row `all` over every prompt it was scored on (n_set: the prompts scored over all
  methods), for a design that names no prompt set (your own prompts). This is the file
  `fourdfy analyze --clip` reads (it uses method, clip, prompt_set; the counts mark partial means).
- `clipscore.json`, written last, is the commit record of a run: the model, the statistics and the sha256 of
  each table it was written with. A table it does not describe (a run killed between two renames leaves new
  tables beside the earlier clipscore.json) is refused by its readers (`check_recorded`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from method.fileio import write_atomic, write_text_atomic

from .artifacts import Artifact, ArtifactError, check_writable_folder, digest_problem, sha256_file
from .video import VideoError, decode_video, sample_counts


@dataclass(frozen=True)
class ScoreConfig:
    """Statistics of `fourdfy clipscore` (checked when made: before any video is scored)."""

    primary: str = "4dfy"
    """Method the paired differences are taken against."""
    n_resamples: int = 10_000
    """Bootstrap resamples."""
    confidence: float = 0.95
    """Interval level."""
    seed: int = 0
    """Seed of the bootstrap."""

    def __post_init__(self) -> None:
        if self.n_resamples < 2:  # 0 and below fail in scipy, 1 gives no interval (NaN)
            raise ValueError(f"--resamples must be >= 2 (a bootstrap interval needs resamples; default 10000), "
                             f"got {self.n_resamples}")
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0 (numpy's generators take no negative seed), got {self.seed}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")


def preprocess_frames(frames: np.ndarray, preprocess):
    """(N, H, W, 3) uint8 -> (N, 3, S, S) model input, through the model's own PIL transform."""
    import torch
    from PIL import Image

    # one intra-op thread: per-frame tensors are small, and threads only fight over the cores
    # (measured 9x slower with 2 threads on a loaded 2-core machine); the values do not change
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.stack([preprocess(Image.fromarray(f)) for f in frames])
    finally:
        torch.set_num_threads(n)


def text_embedding(clip, prompt: str):
    """Unit text embedding (D,) float64 of one prompt."""
    import torch

    with torch.no_grad():
        device = next(clip.model.parameters()).device
        tokens = clip.tokenizer([prompt]).to(device)
        t = clip.model.encode_text(tokens).double()[0]
    return t / t.norm()


def score_frames(clip, frames: np.ndarray, prompt: str, batch_size: int = 16,
                 text=None) -> np.ndarray:
    """Per-frame CLIP score 100 * max(cos, 0) of (N, H, W, 3) uint8 frames against `prompt`."""
    import torch

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    t = text_embedding(clip, prompt) if text is None else text
    weight = next(clip.model.visual.parameters())
    out = []
    with torch.no_grad():
        for start in range(0, len(frames), batch_size):
            x = preprocess_frames(frames[start:start + batch_size], clip.preprocess).to(weight.device, weight.dtype)
            e = clip.model.encode_image(x).double()
            cos = (e / e.norm(dim=-1, keepdim=True)) @ t
            out.append((100.0 * cos.clamp(min=0.0)).cpu().numpy())
    return np.concatenate(out)


SCORE_VERSION = 1
"""Version of the per-frame score's computation: bump it when that changes, so cached scores are not reused."""


def _device_identity(device) -> list:
    """What besides the weights decides the rounding of a forward pass on `device`."""
    import torch

    if device.type == "cuda":
        try:  # the legacy flags, as keys have always held them
            tf32 = [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32]
        except RuntimeError:  # precisions set per backend, which the legacy flags refuse to read back
            tf32 = [torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision]
        return ["cuda", torch.cuda.get_device_name(device), *tf32]
    return [device.type, torch.backends.cpu.get_cpu_capability()]


class ScoreCache:
    """Per-frame scores of each video on disk, reused while nothing that determines them changes.

    The key of a video hashes its bytes, its prompt, the model (`model_fingerprint`: weights,
    activation, precision, preprocessing, torch and open_clip versions), the batch size, the device
    (`_device_identity`: GPU model and TF32 settings, or the CPU's instruction set, since kernels
    round differently) and SCORE_VERSION; any change is a miss. Entries are written atomically; an
    unreadable entry is a miss (and is rewritten).
    """

    def __init__(self, root: Path | str, clip):
        from .clip_models import model_fingerprint

        self.root = Path(root)
        device = next(clip.model.visual.parameters()).device
        self.base = json.dumps([SCORE_VERSION, model_fingerprint(clip), _device_identity(device)])
        self.hits = self.misses = 0

    def key(self, video: Path, prompt: str, batch_size: int, digest: str | None = None) -> str:
        """The batch size is the one the scores are computed with (`score_artifacts` passes its own); `digest`, the
        video's SHA-256 where the caller has read it already (`video_digests`), else it is read here."""
        digest = sha256_file(video) if digest is None else digest
        return hashlib.sha256(json.dumps([self.base, batch_size, digest, prompt]).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str, n_frames: int) -> np.ndarray | None:
        """The cached per-frame scores, or None (counted as a miss) when absent, unreadable or not n_frames long."""
        try:
            scores = np.asarray(json.loads(self._path(key).read_text())["scores"], dtype=np.float64)
        except (OSError, ValueError, KeyError, TypeError):
            scores = None
        if scores is None or scores.shape != (n_frames,):
            self.misses += 1
            return None
        self.hits += 1
        return scores

    def put(self, key: str, scores: np.ndarray) -> None:
        text = json.dumps({"scores": [float(s) for s in scores]})  # repr floats: exact round trip
        write_text_atomic(self._path(key), text)


def _whole(path: Path) -> bool:
    """Whether the file holds every sample its container declares (False when unreadable: decoding says why)."""
    try:
        declared, stored = sample_counts(path)
    except VideoError:
        return False
    return stored >= declared


def video_digests(artifacts: dict[tuple[str, str], Artifact]) -> dict[tuple[str, str], str]:
    """{(method, slug): SHA-256 of its video.mp4}, each file read once; a video that is missing or cannot be read is
    left out (the digest check and the scoring say why). `clipscore --cache` reads them here for both the digest
    check (`artifacts.digest_problem`) and the cache keys, which would otherwise read every video twice."""
    out = {}
    for key, art in artifacts.items():
        try:
            out[key] = sha256_file(art.video_path)
        except OSError:
            continue
    return out


def file_stamp(path: Path | str) -> tuple[int, int, int, int] | None:
    """(device, inode, size, mtime_ns) of a file, or None when it cannot be stat'ed: what tells, without reading
    it, that a file is no longer the one seen (written in place: size or mtime; replaced by a rename, even one that
    kept its size and mtime as `rsync -t` does: inode)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def video_stamps(artifacts: dict[tuple[str, str], Artifact]) -> dict[tuple[str, str], tuple | None]:
    """{(method, slug): `file_stamp` of its video.mp4}, taken before the videos are hashed for the digest check, so
    that `score_artifacts` can tell, from a stat alone, a video changed since then (while the model loaded)."""
    return {key: file_stamp(art.video_path) for key, art in artifacts.items()}


def _recheck(art: Artifact, keyed: bool) -> tuple[str | None, str]:
    """After `art`'s video.mp4 changed since clipscore's check: its SHA-256 read again (None when neither its manifest
    records one nor a cache key needs it, `keyed`) and what was done, for the note; ArtifactError when it is no longer
    the video its manifest records (`digest_problem`), as the check before scoring would have said."""
    recorded = art.manifest.get("video_sha256") is not None
    if not recorded and not keyed:
        return None, "its manifest records no video_sha256 to check it by"
    try:
        digest = sha256_file(art.video_path)
    except OSError as err:
        raise ArtifactError(f"{art.video_path}: {err.strerror or err}") from None
    if (problem := digest_problem(art.folder, art.manifest, art.video_path, digest)) is not None:
        raise ArtifactError(f"{problem} (it changed after clipscore checked it, before it was scored; nothing was "
                            "written)")
    return digest, ("read again: still the video its manifest records" if recorded
                    else "read again for its cache key")


def score_artifacts(artifacts: dict[tuple[str, str], Artifact], clip, batch_size: int = 16,
                    progress: bool = False, cache: ScoreCache | None = None,
                    heartbeat_s: float | None = None,
                    digests: dict[tuple[str, str], str] | None = None,
                    stamps: dict[tuple[str, str], tuple | None] | None = None,
                    on_note: Callable[[str], None] | None = None) -> pd.DataFrame:
    """per_frame table: method, slug, prompt, frame, score (one row per decoded frame).

    With `cache`, a video whose key is cached is not decoded or encoded again. `digests` (`video_digests`): the
    videos' SHA-256 the caller has read already, for the cache keys; a video not in it is read for its key.
    `stamps` (`video_stamps`, taken before the caller's digest check): a video whose stamp differs now, before its
    key is made and again after it is decoded, was changed since the check (the model loads in between); it is
    hashed again and checked against its manifest (ArtifactError if it is not the video written), keyed by its new
    digest, and told to `on_note`; one changed while it was decoded is checked so too, then scored but not cached
    (the frames may be of either file).
    """
    from evaluation.progress import Counter

    rows = []
    texts: dict[str, object] = {}
    # the bar only on a terminal and when asked; elsewhere a line every heartbeat_s seconds, if given
    counter = Counter(len(artifacts), "clipscore", "video", bar=progress, heartbeat_s=heartbeat_s)
    stamps = stamps or {}
    note = on_note or (lambda text: None)
    for (method, slug), art in counter.iterate(artifacts.items()):
        scores = key = None
        digest = (digests or {}).get((method, slug))
        stamp = stamps.get((method, slug))
        # one stat per video; only a changed one is read again (the check's digest would key another file's scores)
        if (method, slug) in stamps and file_stamp(art.video_path) != stamp:
            stamp = file_stamp(art.video_path)  # before reading: a change during the read shows after decoding
            digest, done = _recheck(art, keyed=cache is not None)
            note(f"{art.video_path} changed after clipscore checked it (while the model loaded); {done}")
        if cache is not None:
            try:
                key = cache.key(art.video_path, art.prompt, batch_size, digest)
            except OSError as err:  # the same one-line error as when decoding finds no video
                raise ArtifactError(f"{art.video_path}: {err.strerror or err}") from None
            # a video cut short (scores cached before decoding checked the count) is decoded, to say so; samples,
            # not the declared count against the manifest: a stream-copy trim declares frames it does not show
            if _whole(art.video_path):
                scores = cache.get(key, art.n_frames)
        if scores is not None:
            rows += [(method, slug, art.prompt, k, float(s)) for k, s in enumerate(scores)]
            continue
        try:
            frames = decode_video(art.video_path)
        except VideoError as err:
            raise ArtifactError(f"{art.video_path}: {err}") from None
        if len(frames) != art.n_frames:
            raise ArtifactError(f"{art.video_path}: {len(frames)} frames, the manifest says {art.n_frames}")
        if art.prompt not in texts:
            texts[art.prompt] = text_embedding(clip, art.prompt)
        changed = (method, slug) in stamps and file_stamp(art.video_path) != stamp
        if changed:  # while it was decoded: the frames may be of either file, so neither keys a cache entry
            _, done = _recheck(art, keyed=False)
            note(f"{art.video_path} changed while it was decoded; {done}"
                 + ("; its scores are not cached" if cache is not None else ""))
        scores = score_frames(clip, frames, art.prompt, batch_size, text=texts[art.prompt])
        if cache is not None and not changed:
            cache.put(key, scores)
        rows += [(method, slug, art.prompt, k, float(s)) for k, s in enumerate(scores)]
    return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS["per_frame.csv"]))


TRACE_COLUMNS = ("config_hash", "width", "height")
"""What per_prompt.csv says of each scored artifact besides its score: the config hash of the run it was rendered
from (empty for an imported video) and its frame size (n_frames is the frame count)."""


def artifact_facts(artifacts: dict[tuple[str, str], Artifact]) -> pd.DataFrame:
    """method, slug, kind, config_hash (None for imports), width, height, n_frames of each artifact, sorted."""
    rows = [{"method": m, "slug": s, "kind": a.source.get("kind"),
             "config_hash": a.source.get("config_hash") if a.source.get("kind") == "render" else None,
             "width": a.width, "height": a.height, "n_frames": a.n_frames}
            for (m, s), a in sorted(artifacts.items())]
    return pd.DataFrame(rows, columns=["method", "slug", "kind", "config_hash", "width", "height", "n_frames"])


def per_prompt(per_frame: pd.DataFrame, facts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Mean score over frames: method, slug, prompt, n_frames, clip, then each artifact's config_hash, width and
    height from `facts` (`artifact_facts`; empty where not given)."""
    g = per_frame.groupby(["method", "slug", "prompt"], sort=True)["score"]
    table = g.agg(n_frames="size", clip="mean").reset_index()
    if facts is None:
        facts = artifact_facts({})
    trace = facts[["method", "slug", *TRACE_COLUMNS]].astype({"width": "Int64", "height": "Int64"})
    table = table.merge(trace, on=["method", "slug"], how="left", validate="one_to_one")
    return table[list(OUTPUT_COLUMNS["per_prompt.csv"])]


def bootstrap_mean_ci(values: np.ndarray, cfg: ScoreConfig) -> tuple[float, float]:
    """BCa bootstrap interval of the mean; NaN for fewer than 2 values; a point for constant values."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan, math.nan
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa warns on tiny samples; the interval is still reported
        res = stats.bootstrap((values,), np.mean, confidence_level=cfg.confidence, n_resamples=cfg.n_resamples,
                              method="BCa", rng=np.random.default_rng(cfg.seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(prompts: pd.DataFrame, cfg: ScoreConfig = ScoreConfig()) -> pd.DataFrame:
    """Per method: n_prompts, clip (mean over prompts) and its interval; paired difference to the primary."""
    rows = []
    primary = prompts[prompts["method"] == cfg.primary].set_index("slug")["clip"]
    for method, g in prompts.groupby("method", sort=True):
        values = g["clip"].to_numpy()
        low, high = bootstrap_mean_ci(values, cfg)
        row = {"method": method, "n_prompts": len(g), "clip": float(values.mean()), "ci_low": low, "ci_high": high,
               "primary": cfg.primary, "n_shared": 0, "diff_vs_primary": math.nan, "diff_ci_low": math.nan,
               "diff_ci_high": math.nan}
        if method != cfg.primary and len(primary):
            mine = g.set_index("slug")["clip"]
            shared = sorted(set(mine.index) & set(primary.index))
            if shared:
                d = mine.loc[shared].to_numpy() - primary.loc[shared].to_numpy()
                dl, dh = bootstrap_mean_ci(d, cfg)
                row.update(n_shared=len(shared), diff_vs_primary=float(d.mean()), diff_ci_low=dl, diff_ci_high=dh)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS["summary.csv"]))


def prompt_sets() -> dict[str, list[str]]:
    """{file stem: [slugs]} of the prompt files in the `prompts` package."""
    from prompts import library

    return {name: list(prompts) for name, prompts in library().items()}


ALL_PROMPTS = "all"
"""prompt_set of the clip.csv rows over every prompt scored (what a design section without prompt_set takes)."""


def clip_table(prompts: pd.DataFrame, sets: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Rows method, clip, prompt_set, n_prompts, n_set for `fourdfy analyze --clip`: one per prompt set and
    method with prompts in it, then one `all` per method over every prompt it has (n_set: the distinct
    prompts scored over all methods), so prompts outside the library still reach the tables."""
    sets = prompt_sets() if sets is None else sets
    rows = []
    for name, slugs in sets.items():
        for method, g in prompts[prompts["slug"].isin(slugs)].groupby("method", sort=True):
            rows.append({"method": method, "clip": float(g["clip"].mean()), "prompt_set": name,
                         "n_prompts": len(g), "n_set": len(slugs)})
    # a prompt file named `all` keeps its name: a design naming `prompt_set: all` means that file
    if ALL_PROMPTS not in sets:
        n_set = prompts["slug"].nunique()
        for method, g in prompts.groupby("method", sort=True):
            rows.append({"method": method, "clip": float(g["clip"].mean()), "prompt_set": ALL_PROMPTS,
                         "n_prompts": g["slug"].nunique(), "n_set": n_set})
    return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS["clip.csv"]))


OUTPUT_COLUMNS = {
    "per_frame.csv": ("method", "slug", "prompt", "frame", "score"),
    "per_prompt.csv": ("method", "slug", "prompt", "n_frames", "clip", *TRACE_COLUMNS),
    "summary.csv": ("method", "n_prompts", "clip", "ci_low", "ci_high", "primary", "n_shared", "diff_vs_primary",
                    "diff_ci_low", "diff_ci_high"),
    "clip.csv": ("method", "clip", "prompt_set", "n_prompts", "n_set"),
}
"""The tables `write_outputs` writes and their columns."""
META = "clipscore.json"
OUTPUT_FILES = (*OUTPUT_COLUMNS, META)
"""Every file `fourdfy clipscore` writes in its --out folder."""
DIGESTS = "sha256"
"""Key of clipscore.json: {table name: `output_digest`} of the four tables the run wrote. Absent from a
clipscore.json of an earlier version, which is read as before (nothing to check)."""


def output_digest(path: Path | str) -> str:
    """sha256 (hex) of a file's bytes with CRLF read as LF: a checkout that converts line endings (git's autocrlf)
    keeps it; any other change does not."""
    return hashlib.sha256(Path(path).read_bytes().replace(b"\r\n", b"\n")).hexdigest()


class MixedOutputsError(ValueError):
    """A clipscore table does not match the clipscore.json beside it: they come from different runs."""


def recorded_digests(meta) -> dict[str, str] | None:
    """{table name: digest} recorded in a clipscore.json (as read); None for one of an earlier version, which
    records none. ValueError when the key is there but not such a mapping (edited by hand)."""
    if not isinstance(meta, dict) or DIGESTS not in meta:
        return None
    digests = meta[DIGESTS]
    if not (isinstance(digests, dict) and digests
            and all(isinstance(k, str) and isinstance(v, str) for k, v in digests.items())):
        raise ValueError(f'its "{DIGESTS}" is not a mapping of table names to digests')
    return digests


def check_recorded(path: Path | str, meta_path: Path | str, meta) -> None:
    """MixedOutputsError unless the file at `path` is one of the tables that the clipscore.json `meta` (read from
    `meta_path`) recorded when it was written; nothing is checked for a clipscore.json of an earlier version.
    By contents, not name: a renamed copy of clip.csv is still the run's clip.csv."""
    digests = recorded_digests(meta)
    if digests is None or output_digest(path) in digests.values():
        return
    path, meta_path = Path(path), Path(meta_path)
    raise MixedOutputsError(
        f"{path} and {meta_path} come from different `fourdfy clipscore` runs (an interrupted run?): {path.name} "
        f"is none of the tables {META} recorded, so its model and precision need not be those of these scores; run "
        f"`fourdfy clipscore` again with --out {meta_path.parent} (for a {path.name} edited by hand: move {META} "
        "away, and the tables say the CLIP source is not recorded)")


def _read_meta(meta_path: Path):
    """A clipscore.json as read, or None when absent or unreadable."""
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def unrecorded_outputs(out_dir: Path | str) -> tuple[str, ...]:
    """The tables in `out_dir` that its clipscore.json does not describe (a run killed between its renames);
    () when it records no digests (absent, unreadable or of an earlier version: nothing to tell)."""
    out = Path(out_dir)
    try:
        digests = recorded_digests(_read_meta(out / META))
    except ValueError:
        return ()
    if digests is None:
        return ()
    stale = []
    for name in OUTPUT_COLUMNS:
        try:
            if (out / name).is_file() and output_digest(out / name) != digests.get(name):
                stale.append(name)
        except OSError:
            stale.append(name)
    return tuple(stale)


class OutputFolderError(ValueError):
    """The --out folder of clipscore cannot take its outputs (a file, or it holds files clipscore did not write)."""


@dataclass(frozen=True)
class EarlierOutputs:
    """What an --out folder held before this run (`check_out_dir`)."""

    files: tuple[str, ...] = ()
    """Outputs of an earlier clipscore run that this run replaces."""
    methods: tuple[str, ...] | None = None
    """Methods of the earlier per-prompt scores (None: none, or not readable)."""
    unrecorded: tuple[str, ...] = ()
    """Earlier tables that the earlier clipscore.json does not describe (`unrecorded_outputs`: a run killed while
    writing); this run replaces them too, and `methods` is not read from them."""


def _written_by_clipscore(path: Path) -> bool:
    """Whether `path` (named like an output) looks like clipscore's: its columns (a subset, for files of
    earlier versions) or, for clipscore.json, a JSON object with 'model' and 'score'. Empty counts (nothing lost)."""
    try:
        if path.stat().st_size == 0:
            return True
        with open(path, encoding="utf-8") as f:
            if path.name == META:
                data = json.loads(f.read(1 << 24))  # ample for the `artifacts` list of thousands of videos
                return isinstance(data, dict) and {"model", "score"} <= set(data)
            header = f.readline().strip().split(",")
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return "method" in header and set(header) <= set(OUTPUT_COLUMNS[path.name])


def _earlier_methods(out: Path, skip: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The methods of the earlier run, from a table it recorded (not one of `skip`: an interrupted run's)."""
    for name in ("per_prompt.csv", "summary.csv", "clip.csv"):
        if name in skip:
            continue
        try:
            methods = pd.read_csv(out / name, usecols=["method"], keep_default_na=False)["method"]
        except (OSError, ValueError, pd.errors.ParserError):
            continue
        return tuple(sorted(set(map(str, methods))))
    return None


def check_out_dir(out_dir: Path | str) -> EarlierOutputs:
    """Check, before any scoring and creating nothing, that the outputs can go to `out_dir`: a folder (or one
    that can be made) holding nothing but outputs of an earlier clipscore run (and hidden files such as DVC's
    .gitignore, left alone). Returns what those earlier outputs were, to report what this run replaces."""
    out = Path(out_dir)
    try:
        check_writable_folder(out)  # a file in its place or above it, or a folder it cannot be made in
    except ArtifactError as err:
        raise OutputFolderError(f"--out: {err}") from None
    if not out.exists():
        return EarlierOutputs()
    try:
        entries = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    except OSError as err:
        raise OutputFolderError(f"--out {out}: cannot read it ({err.strerror}); give another --out") from None
    foreign = [e for e in entries if e not in OUTPUT_FILES or not (out / e).is_file()]
    foreign += [e for e in entries if e not in foreign and not _written_by_clipscore(out / e)]
    if foreign:
        shown = ", ".join(foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
        raise OutputFolderError(f"--out {out} holds files `fourdfy clipscore` did not write ({shown}); its outputs "
                                "would overwrite or sit among them: give a new or empty folder, or the --out of an "
                                "earlier clipscore run")
    unrecorded = unrecorded_outputs(out)
    return EarlierOutputs(files=tuple(e for e in OUTPUT_FILES if e in entries),
                          methods=_earlier_methods(out, skip=unrecorded), unrecorded=unrecorded)


def upgrade_meta(out_dir: Path | str, meta) -> bool:
    """Rewrite (atomically) the clipscore.json `meta` of an earlier version in `out_dir`, which records no digests,
    as one that does: its own keys (model, precision, ...) and the digests of the tables beside it now. False, and
    nothing written, when there is nothing to record: `meta` not such a record, or no table. The tables are taken
    to be the ones it was written with, as readers of an earlier version's record take them (nothing to check)."""
    out = Path(out_dir)
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), str) or DIGESTS in meta:
        return False
    digests = {}
    for name in OUTPUT_COLUMNS:
        try:
            digests[name] = output_digest(out / name)
        except FileNotFoundError:
            continue
    if not digests:
        return False
    write_text_atomic(out / META, json.dumps({**meta, DIGESTS: digests}, indent=2) + "\n")
    return True


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    write_atomic(path, lambda f: df.to_csv(f, index=False, float_format="%.6g"))


def write_outputs(out_dir: Path | str, per_frame: pd.DataFrame, cfg: ScoreConfig, model: str,
                  precision: str = "fp32", random_weights: bool | None = None,
                  artifacts: dict[tuple[str, str], Artifact] | None = None) -> dict[str, Path]:
    """per_frame.csv, per_prompt.csv, summary.csv, clip.csv and clipscore.json in out_dir.

    clipscore.json records `model` (the description, `LoadedClip.description`), `precision` and
    `random_weights` (True for the random-weight tiny CLIP: `fourdfy analyze` then flags its tables); by
    default that is read from the description, which for the tiny model starts with its id. With the scored
    `artifacts`, per_prompt.csv and clipscore.json's `artifacts` list say what each score was made from: the
    config hash (null for an imported video), the frame size and count.

    clipscore.json is written last, with the sha256 of each table (`DIGESTS`): it commits the run. A run killed
    before that leaves the earlier clipscore.json, whose digests the new tables do not match, so readers refuse
    the mix (`check_recorded`); one of an earlier version, which records no digests, is first given those of the
    tables beside it (`upgrade_meta`; removed where it cannot be: no table, or digests edited by hand)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    facts = artifact_facts(artifacts or {})
    pp = per_prompt(per_frame, facts)
    tables = {"per_frame.csv": per_frame, "per_prompt.csv": pp, "summary.csv": summarize(pp, cfg),
              "clip.csv": clip_table(pp)}
    meta_path = out / META
    earlier = _read_meta(meta_path) if meta_path.exists() else None
    try:
        unguarded = meta_path.exists() and recorded_digests(earlier) is None
    except ValueError:  # digests edited by hand: they describe no tables we can name, so the record goes
        unguarded, earlier = True, None
    # it could not tell the tables below from the ones it was written with: it is given their digests first, so that
    # a run stopped from here on leaves the earlier tables still named by their model and precision
    if unguarded and not upgrade_meta(out, earlier):
        meta_path.unlink(missing_ok=True)
    paths = {}
    for name, df in tables.items():
        _write_csv(df, out / name)
        paths[name] = out / name
    if random_weights is None:
        from .clip_models import TINY_CLIP_ID  # loaded already where a model scored the frames

        random_weights = model.startswith(TINY_CLIP_ID)
    meta = {"model": model, "precision": precision, "random_weights": bool(random_weights), "primary": cfg.primary,
            "n_resamples": cfg.n_resamples, "confidence": cfg.confidence, "seed": cfg.seed,
            "score": "100 * max(cos(image, text), 0) per decoded frame; mean over frames, then over prompts",
            # JSON nulls, not NaN: pandas' missing values would make the file invalid JSON
            "artifacts": [{k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                          for row in facts.to_dict("records")],
            # of the files as renamed into place, read back: what a reader will find
            DIGESTS: {name: output_digest(path) for name, path in paths.items()}}
    write_text_atomic(meta_path, json.dumps(meta, indent=2) + "\n")
    paths[META] = meta_path
    return paths

"""The one way into the trainer: `generate(...)`, used by `fourdfy generate`, the DVC stages and sweeps.

Resume rules (the same everywhere):

| the --out folder holds                 | resume="no"         | resume="yes"  | resume="auto" (DVC, sweeps)             |
|----------------------------------------|---------------------|---------------|-----------------------------------------|
| nothing                                | train               | train         | train                                   |
| an unfinished run with this config     | refuse              | resume        | resume                                  |
| a finished run with this config        | refuse              | done (*)      | done (nothing to do) (*)                |
| a run with another config or prompt    | refuse              | refuse        | replace it if the pipeline made it, else refuse |

(*) after checking that its final checkpoint `ckpt/last.pt` (what `fourdfy render` reads) loads; a damaged
one is an error that names the intact stage checkpoint to rewrite it from with `--resume-from`.
`--resume-from` itself continues a run from one of its stage checkpoints; a finished run whose `last.pt` is
intact is refused (it would be trained again and replaced: `--init-from` starts a new run from it instead), and so
is a folder holding files of another run (`check_resume_from_folder`).

"This config" is the run's identity: its config hash, prompt, the content (`weights_digests`) of the local
weights files or folders its priors name (a hub or `fourdfy-tiny:` id adds nothing), so replacing such a file makes
another run, here and in the stage cache (a folder digest recorded before bookkeeping files were left out is the
same weights: `adopt_legacy_weights`), and the checkpoint it started from with `--init-from` (`init_from_record`:
none for a run from scratch; a run that recorded no start, made before runs did, matches either; a run that did
is continued with its recorded start once the checkpoint is gone).

A run made by `resume="auto"` carries a `.pipeline-run` marker; only such runs are ever replaced, so a
run a user trained by hand into a pipeline folder is never deleted.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from baselines import resolve_config
from method.backends import resolve_device
from method.configs import ConfigKeyError, set_keys
from method.fileio import yaml_error_text
from method.training import checkpoint as ckpt
from method.training import profiles
from method.training.config import TrainConfig, run_differences
from prompts import resolve_prompt

PIPELINE_MARKER = ".pipeline-run"
RESUME_MODES = ("no", "yes", "auto")


def parse_sets(items: list[str]) -> dict[str, str]:
    """['a.b=1', ...] -> {'a.b': '1'}; values are parsed against the field types by `build_config`, in this order. A
    key given again takes its latest place (`later_sets`), so it wins over a wildcard given between the two."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigKeyError(f"--set needs KEY=VALUE (e.g. stages.stage3.steps=20), got {item!r}")
        out = later_sets(out, {key.strip(): value})
    return out


def later_sets(*layers: dict) -> dict:
    """`--set` values of several sources, later ones winning (params.yaml overrides, then `--set-from`, then
    `--set`), as one dict in the order they apply: a key given again moves to its latest place. (A plain dict
    merge keeps a key where it was first given, so `--set 'stages.*.steps=2'` given after it would win over its
    later value.)"""
    out: dict = {}
    for layer in layers:
        for key, value in layer.items():
            out.pop(key, None)
            out[key] = value
    return out


def read_yaml(path: Path | str, head: str = ""):
    """The data of a YAML file. A file that cannot be read, is not UTF-8 text or is not valid YAML is a ValueError
    of one line naming it (and the line and column of a YAML error), `head` (e.g. "--set-from: ") before it."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{head}{path} is not a UTF-8 text file (byte 0x{err.object[err.start]:02x} at offset "
                         f"{err.start}); give a YAML file") from None
    except OSError as err:
        raise ValueError(f"{head}cannot read {path} ({err.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{head}{path} is not valid YAML: {yaml_error_text(err)}") from None


def _read_entry(spec: str) -> tuple[str, str, dict, dict]:
    """`FILE:dotted.key` -> (FILE, key, the mapping at that key ({} for an empty one), the mapping holding it)."""
    path, _, key = spec.partition(":")
    data = read_yaml(path, "--set-from: ") or {}
    if not key.strip("."):  # the whole file: params.yaml's top level would read as config keys (generate, ...)
        top = f" (its top-level keys: {', '.join(map(str, data))})" if isinstance(data, dict) and data else ""
        raise ValueError(f"--set-from {spec} names no key: give FILE:dotted.key, the mapping of config keys to read "
                         f"in FILE{top}, e.g. params.yaml:overrides.4dfy as the pipeline's generate stages do")
    node = parent = data
    done: list[str] = []
    for part in filter(None, key.split(".")):
        if not isinstance(node, dict) or part not in node:
            # the keys at the level that lacks it, or the closest of them (a misspelt method of `overrides:`)
            there = [str(k) for k in node] if isinstance(node, dict) else []
            close = difflib.get_close_matches(part, there, n=1, cutoff=0.6)
            where = f"under {'.'.join(done)!r}" if done else "at its top level"
            hint = (f"; did you mean {'.'.join([*done, close[0]])!r}?" if close else
                    f" ({where}: {', '.join(there[:12])}{', ...' if len(there) > 12 else ''})" if there else "")
            raise ValueError(f"--set-from: {path} has no key {key!r}{hint}")
        parent, node = node, node[part]
        done.append(part)
    if node is None:
        return path, key, {}, parent
    if not isinstance(node, dict):
        raise ValueError(f"--set-from: {path}:{key} must be a mapping of config keys to values, got {node!r}")
    return path, key, node, parent


def read_sets(spec: str) -> dict[str, str]:
    """`FILE:dotted.key` -> the mapping at that key of a YAML file, as `--set` values (empty mapping: none). The
    reserved keys of an `overrides:` entry (`base`, `label`, `description`: baselines.VARIANT_KEYS) are not
    config keys and are left out (`read_set_from` is what a run reads: it also defines a variant)."""
    from baselines import config_keys

    entry = config_keys(_read_entry(spec)[2])
    _refuse_labels(spec, entry)
    return as_set_values(entry)


def _refuse_labels(spec: str, keys: dict) -> None:
    """A `--set-from` entry's keys that name the run rather than set it (`TrainConfig.LABELS`), refused naming the
    entry (`build_config` refuses them too, without knowing which file they came from)."""
    for key in map(str, keys):
        if (why := TrainConfig.LABELS.get(key)) is not None:
            raise ConfigKeyError(f"--set-from {spec}: {key!r} cannot be set by key: {why}")


def read_set_from(spec: str, method: str) -> tuple[dict[str, str], dict]:
    """`--set-from FILE:KEY` for a run of `method`: (its `--set` values, the manifest's note of the variant the
    entry defines, else {}).

    An entry with `base:` (an `overrides:` entry of params.yaml, as the generate stages pass it) defines the
    variant named by KEY's last part, which must be `method`: it is registered (`baselines.register_variant`), and
    its dotted keys are then the method's own, applied in the method's order (before its base's transform) and
    not again as `--set` values. Another entry gives its dotted keys as `--set` values (`label:` only names the
    method in the tables)."""
    from baselines import check_entry, config_keys, register_variant

    path, key, entry, parent = _read_entry(spec)
    name = key.rsplit(".", 1)[-1] if key else method
    if "base" not in entry:
        check_entry(name, entry, path)
        _refuse_labels(spec, config_keys(entry))
        return as_set_values(config_keys(entry)), {}
    if name != method:
        raise ValueError(f"--set-from {spec} defines the variant {name!r} (base: {entry['base']}); train it with "
                         f"--method {name}, or give --set-from the entry of {method!r}")
    _register_bases(path, parent, entry)
    register_variant(name, entry, path)
    return {}, variant_note(entry, spec)


def _register_bases(path: str, parent: dict, entry: dict) -> None:
    """Register the variants `entry`'s base chain passes through, from `parent`, the mapping holding `entry` (a
    variant may be the base of another; this process knows only the registered methods). A chain that leaves the
    mapping, or a cycle, ends there and `register_variant` names the problem."""
    from baselines import METHODS, register_variant

    chain, base = [], str(entry["base"])
    while (base not in METHODS and base not in chain and isinstance(parent.get(base), dict)
           and "base" in parent[base]):
        chain.append(base)
        base = str(parent[base]["base"])
    for name in reversed(chain):
        register_variant(name, parent[name], path)


def variant_note(entry: dict, spec: str) -> dict:
    """What a run's manifest records (under `request`) of the variant it trains: its base, its keys as `--set`
    values, and where it was defined (`FILE:overrides.NAME`)."""
    from baselines import config_keys

    return {"base": str(entry["base"]), "set": as_set_values(config_keys(entry)), "from": spec}


def unknown_override_names(overrides: dict | None, skip=()) -> tuple[list[str], str]:
    """The entries of an `overrides:` mapping that name no method, each as the registry says it (with a
    did-you-mean), and the registry's list of known methods ('' when all are known). A variant (an entry with
    `base:`) names its own method and must be registered before (`baselines.register_variants`); names in
    `skip` are not checked (e.g. params.yaml's `videos:`, which a `label:` may name, and names reported
    elsewhere). Without this check such an entry (a typo, `wo_hybird:`) is ignored without a word."""
    from baselines import UnknownMethodError, get_method

    bad, tail = [], ""
    for name in map(str, overrides or {}):
        if name in skip:
            continue
        try:
            get_method(name)
        except UnknownMethodError as err:
            bad.append(err.head)
            tail = err.tail
    return bad, tail


def unknown_overrides_text(bad: list[str]) -> str:
    """The message part for `unknown_override_names`' names (the caller adds the file and the known methods)."""
    return (f"overrides: has {len(bad)} entr{'ies' if len(bad) > 1 else 'y'} of no registered method or variant, "
            f"which would be ignored: {', '.join(bad)}; correct the name, or add base: METHOD to define a variant "
            "of that name (docs/pipeline.md)")


def as_set_values(mapping: dict) -> dict[str, str]:
    """A YAML mapping of config keys as `--set` values: non-strings as JSON, so they take the same typed parsing."""
    import json

    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in mapping.items()}


def build_config(profile: str, method: str, *, seed: int = 0, device: str = "auto", sets: dict | None = None,
                 max_steps: int | None = None, recompute: bool = False) -> TrainConfig:
    """The resolved config of a run: profile, then the method's changes, then `--recompute`, then `--set`
    values, then `--max-steps`.

    `sets` maps dotted keys to values (strings are parsed as JSON when they parse, e.g. numbers and
    lists); `max_steps` caps every stage's steps (a quick try of a method through all its stages).
    Both change the config, so both are in its hash and in the run's manifest. `recompute` switches on
    activation checkpointing (`profiles.recompute`), which the hash leaves out.
    """
    cfg = resolve_config(profile, method)
    if recompute:
        cfg = profiles.recompute(cfg)
    cfg = set_keys(cfg, {"seed": seed, "device": device})
    if sets:
        cfg = set_keys(cfg, sets, parse=True)
    if max_steps is not None:
        if max_steps < 1:
            raise ValueError(f"--max-steps must be >= 1, got {max_steps}")
        cfg = set_keys(cfg, {f"stages.{s.name}.steps": min(s.steps, max_steps) for s in cfg.stages})
    return cfg


def file_sha256(path: Path) -> str:
    """SHA-256 of one file's bytes (the slow part: a ViT-L checkpoint is GBs)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


RACY_NS = 2_000_000_000
"""A file modified less than this before it is hashed is hashed again on the next run: a write within the same tick
of a coarse file-system clock (1-2 s on some) may keep its size and mtime (git's "racy" entries)."""


class DigestCache:
    """SHA-256 of files by their (size, mtime_ns, inode), so that what runs often (the `methods` stage on every
    repro, `generate` on every resume) reads a named file again only when it may have changed. Kept in `path`, a
    JSON file of {absolute path: {"stat": [size, mtime_ns, inode], "sha256": digest}}, never inside an output (it
    holds absolute paths and times). `save` keeps only the files looked up since the cache was read (`merge`: and
    the existing files of the cache as it is then, for a cache that several processes share). A cache that cannot
    be read is ignored (everything is hashed). `read`: how a file missing from the cache is hashed (None:
    `file_sha256`, looked up when a file is read)."""

    def __init__(self, path: Path | None, read=None):
        self.path = path
        self.read = read
        self._old = self._load()
        self._new: dict[str, dict] = {}

    def _load(self) -> dict:
        try:
            old = json.loads(self.path.read_text(encoding="utf-8")) if self.path is not None and self.path.is_file() \
                else {}
        except (OSError, ValueError):
            old = {}
        return old if isinstance(old, dict) else {}

    def sha256(self, file: Path) -> str:
        key = str(file.resolve())
        before = file.stat()
        stamp = [before.st_size, before.st_mtime_ns, before.st_ino]
        entry = self._new.get(key) or self._old.get(key)
        if isinstance(entry, dict) and entry.get("stat") == stamp and isinstance(entry.get("sha256"), str):
            self._new[key] = entry
            return entry["sha256"]
        started = time.time_ns()
        digest = (self.read or file_sha256)(file)
        after = file.stat()
        # a file written while it was read, or so recently that a next write could keep its stamp, is not trusted
        if [after.st_size, after.st_mtime_ns, after.st_ino] == stamp and before.st_mtime_ns < started - RACY_NS:
            self._new[key] = {"stat": stamp, "sha256": digest}
        return digest

    def save(self, merge: bool = False) -> None:
        """Write the cache (only if its content changed)."""
        from userstudy.outputs import atomic_write

        if self.path is None:
            return
        entries = self._new
        if merge:  # what other processes added since this one read it stays, for files that still exist
            entries = {k: v for k, v in self._load().items() if Path(k).is_file()} | self._new
        text = json.dumps(entries, indent=1, sort_keys=True) + "\n"
        if self.path.is_file() and self.path.read_bytes() == text.encode():
            return
        atomic_write(self.path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def content_digest(path: Path, cache: DigestCache | None = None, legacy: bool = False) -> str:
    """SHA-256 of a file; of a folder, of its files' relative paths and digests (so a file renamed counts), leaving
    out the bookkeeping `digest_skips` names. With `cache`, a file whose size, mtime and inode are those it had when
    last hashed is not read again. `legacy`: a folder's digest as runs recorded it before bookkeeping was left out
    (every file; `adopt_legacy_weights`)."""
    if path.is_file():
        return cache.sha256(path) if cache is not None else file_sha256(path)
    lines = [f"{rel.as_posix()}\t{content_digest(p, cache)}\n"
             for p in sorted(folder_files(path)) for rel in [p.relative_to(path)]
             if p.is_file() and (legacy or not digest_skips(rel))]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def folder_files(path: Path) -> list[Path]:
    """Every entry under `path` that is not a folder (files, links to files), descending into linked folders too: a
    model folder often links its parts (`unet/` -> a shared copy), and `Path.rglob` skips what is under a linked
    folder, so weights replaced there would keep the run's identity. A link back to a folder it lies in (a cycle) is
    not followed. For a folder without links, the entries `path.rglob("*")` gives (so its digest is what it was)."""
    out: list[Path] = []
    chains = {str(path): (os.path.realpath(path),)}  # each folder walked -> the real folders it lies in
    for here, dirs, files in os.walk(path, followlinks=True):
        chain = chains.pop(here)
        kept = []
        for name in dirs:
            real = os.path.realpath(os.path.join(here, name))
            if real not in chain:
                chains[os.path.join(here, name)] = chain + (real,)
                kept.append(name)
        dirs[:] = kept
        out += [Path(here, name) for name in files]
    return out


def digest_skips(rel: Path) -> bool:
    """A file of a hashed folder that is bookkeeping, not content: under a hidden part (`.cache/huggingface/`, whose
    `*.metadata` files `hf download --local-dir` rewrites with a new time on every download, unchanged weights or
    not; `.git/`, `.gitattributes`, `.DS_Store`), or a lock file (`*.lock`, left behind by file locks). Without them,
    a folder holding none keeps its digest (and so its runs' identities and dvc.lock records)."""
    return any(part.startswith(".") for part in rel.parts) or rel.name.endswith(".lock")


MODEL_FIELDS = ("model", "text_model", "lora_model")
"""The fields of a prior's config (`guidance.<name>.<field>`) that name its weights: a hub id, a `fourdfy-tiny:` id,
or a local file or folder (`method.guidance.loading`). The config, and so its hash, hold only the name: the content
of a local one is part of a run's identity beside the hash (`weights_digests`)."""


def local_weights(config: dict) -> dict[str, str]:
    """{`guidance.<name>.<field>`: value} of the `MODEL_FIELDS` of a config dict (`TrainConfig.to_dict()`, or the
    `config` a manifest or checkpoint saved) that name an existing local file or folder, read as the loaders read
    them (relative to the current folder, `~` expanded); hub and `fourdfy-tiny:` ids name none."""
    guidance = config.get("guidance") if isinstance(config, dict) else None
    out = {}
    for name, prior in (guidance.items() if isinstance(guidance, dict) else ()):
        for field in MODEL_FIELDS:
            value = prior.get(field) if isinstance(prior, dict) else None
            if isinstance(value, str) and value and Path(value).expanduser().exists():
                out[f"guidance.{name}.{field}"] = value
    return out


def weights_cache_path() -> Path:
    """Where `generate` keeps the `DigestCache` of the local weights runs load and of `--init-from` checkpoints:
    $FOURDFY_CACHE (default ~/.cache/fourdfy)/weights-digests.json, shared by every run on the machine (not in a run
    folder: an output)."""
    from method.guidance.loading import cache_dir

    return cache_dir() / "weights-digests.json"


def weights_digests(config: dict) -> dict[str, str]:
    """{`guidance.<name>.<field>`: SHA-256} of the local weights a run of `config` loads (`local_weights`,
    `content_digest`), part of the run's identity with its config hash and prompt: a replaced weights file makes
    another run. {} for hub and tiny ids, without reading or writing anything (so such runs keep their hash, stage
    cache keys and manifest). A file unchanged since it was last hashed (size, mtime, inode) is not read again
    (`weights_cache_path`)."""
    named = local_weights(config)
    if not named:
        return {}
    cache = DigestCache(weights_cache_path())
    seen: dict[Path, str] = {}  # one folder named by two priors: hashed once
    out = {}
    for key, value in named.items():
        path = Path(value).expanduser().resolve()
        if path not in seen:
            seen[path] = content_digest(path, cache)
        out[key] = seen[path]
    with contextlib.suppress(OSError, ValueError):  # a read-only cache folder only costs hashing again
        cache.save(merge=True)
    return out


def _saved_weights(saved: dict) -> dict[str, str]:
    """The digests a saved run (manifest or checkpoint header) recorded; {} for one that loaded no local weights
    (or was written before runs recorded them)."""
    weights = saved.get("model_weights")
    return weights if isinstance(weights, dict) else {}


def adopt_legacy_weights(saved: dict, weights: dict[str, str], config: dict) -> dict[str, str]:
    """`weights` (this request's `weights_digests` of `config`), with the saved run's digest (`saved`: a manifest or
    checkpoint header) for each folder whose digest differs only because the run recorded it before bookkeeping
    files were left out (`digest_skips`): its `content_digest(legacy=True)` is the saved one. Those are the same
    weights, and the run keeps the digests its checkpoints and stage-cache entries hold, rather than being trained
    again. Nothing is hashed again when the digests agree (the common case)."""
    there = _saved_weights(saved)
    differ = [key for key, digest in weights.items() if key in there and there[key] != digest]
    if not differ:
        return weights
    named = local_weights(config)
    cache = DigestCache(weights_cache_path())  # read only: its large files were just hashed by weights_digests
    out = dict(weights)
    for key in differ:
        path = Path(named[key]).expanduser().resolve() if key in named else None
        if path is not None and path.is_dir() and content_digest(path, cache, legacy=True) == there[key]:
            out[key] = there[key]
    return out


def run_status(out: Path) -> str:
    """'empty', 'finished' or 'unfinished'."""
    if (out / "manifest.json").is_file():
        return "finished"
    if (out / "ckpt" / "last.pt").is_file():
        return "unfinished"
    return "empty"


class DamagedManifest(ckpt.CheckpointError):
    """A run folder's manifest.json is not a JSON object (truncated, overwritten).

    Fields: `path` (the manifest.json), `reason` (what is wrong with it, e.g. 'not UTF-8 text'), `has_last`
    (ckpt/last.pt is beside it, so the run can continue from it). `str()` is the one-line error with the way on in
    `generate`'s words (`--resume`); `message()` words it for another caller (a sweep resumes by being run again),
    `reworded()` is the same error in that caller's words.
    """

    RESUME = "run the command again with --resume (or --auto-resume)"
    """How `generate` continues a run from ckpt/last.pt (once the manifest is removed)."""
    RETRAIN = "train the run again"
    """How `generate` trains a run whose folder was moved away."""

    def __init__(self, path: Path | str, reason: str, has_last: bool, resume_words: str = RESUME,
                 retrain_words: str = RETRAIN):
        self.path, self.reason, self.has_last = Path(path), reason, has_last
        self.resume_words, self.retrain_words = resume_words, retrain_words
        super().__init__(self.message(resume_words, retrain_words))

    @property
    def run(self) -> Path:
        """The run folder holding the manifest."""
        return self.path.parent

    def message(self, resume_words: str = RESUME, retrain_words: str = RETRAIN) -> str:
        """The one-line error, naming the file, what is wrong and the way on in the caller's words: the run's
        checkpoints, not the manifest, are what a run continues from, and the trainer writes the manifest again
        when it ends (at once, when ckpt/last.pt is the final checkpoint)."""
        if self.has_last:
            fix = (f"a run continues from its checkpoints, not its manifest: remove {self.path} and {resume_words} "
                   "to continue from ckpt/last.pt; the manifest is written again when the run ends (at once if "
                   "last.pt is the final checkpoint)")
        else:
            fix = f"there is no ckpt/last.pt beside it to continue from: move {self.run} away and {retrain_words}"
        return f"{self.path} is damaged ({self.reason}); {fix}"

    def reworded(self, resume_words: str, retrain_words: str) -> DamagedManifest:
        """The same error, its `str()` in another caller's words (to raise where that caller reports it)."""
        return DamagedManifest(self.path, self.reason, self.has_last, resume_words=resume_words,
                               retrain_words=retrain_words)

    def __reduce__(self):
        # an exception pickles as cls(*args), and its args hold the text: rebuild it from the fields
        return type(self), (self.path, self.reason, self.has_last, self.resume_words, self.retrain_words)


def read_manifest(out: Path) -> dict:
    """`out`'s manifest.json (a finished run's). A damaged one is a `DamagedManifest` naming it, what is wrong and
    the way on (`DamagedManifest.message`)."""
    path = out / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        why = "not UTF-8 text"
    except json.JSONDecodeError as err:
        why = f"not valid JSON: {err}"
    else:
        if isinstance(data, dict):
            return data
        why = f"a JSON {type(data).__name__}, not an object"
    raise DamagedManifest(path, why, (out / "ckpt" / "last.pt").is_file())


def _saved_init(saved: dict) -> dict | None:
    """The `init_record` a saved run kept of the checkpoint it started from with `--init-from` (its `init_from`, a
    manifest's `request.init_from` where runs recorded it first); None for a run from scratch or of unknown start
    (`_start_known`)."""
    request = saved.get("request")
    record = saved.get("init_from", request.get("init_from") if isinstance(request, dict) else None)
    return record if isinstance(record, dict) else None


def _start_known(saved: dict) -> bool:
    """The saved run says how it started (`init_from`, null from scratch); a run made before runs recorded it does
    not (and matches either start: `start_matches`)."""
    request = saved.get("request")
    return "init_from" in saved or (isinstance(request, dict) and "init_from" in request)


def init_from_record(path: Path) -> dict:
    """The `init_record` of an `--init-from` checkpoint (readable: `check_init_from`): part of the identity of a run
    started from it, so `--resume`, `--auto-resume` and sweeps never take it for a run from scratch of its config
    (nor the other way round). Its SHA-256, not its path: a path may be absolute, and the same bytes moved are the
    same start. A checkpoint unchanged since it was last hashed (size, mtime, inode) is not read again
    (`weights_cache_path`): each resume of a sweep's runs would otherwise read it whole."""
    from method.training.trainer import init_record

    cache = DigestCache(weights_cache_path())
    digest = cache.sha256(path)
    with contextlib.suppress(OSError, ValueError):  # a read-only cache folder only costs hashing again
        cache.save(merge=True)
    return init_record(path, ckpt.load(path, mmap=True), digest)


def finished_manifest(out: Path, config_hash: str, prompt: str, weights: dict | None = None,
                      init: dict | None = None) -> dict | None:
    """The manifest of the finished run of this config hash, prompt, local weights and start in `out`, else None (a
    damaged manifest is a `DamagedManifest`). `weights`: this run's `weights_digests`; None: those of the weights
    the finished run's config names, as they are now (the same paths, since the config hash matches); a folder's
    digest recorded with its bookkeeping files is the same weights (`adopt_legacy_weights`). `init`: the
    `init_from_record` of this run's `--init-from` checkpoint, None for a run from scratch; a run that recorded no
    start (made before runs did) matches either (`start_matches`)."""
    from method.training.trainer import start_matches

    if run_status(out) != "finished":
        return None
    m = read_manifest(out)
    if m.get("config_hash") != config_hash or m.get("prompt") != prompt:
        return None
    if not start_matches(m, init):
        return None
    if weights is None:
        weights = weights_digests(m.get("config"))
    return m if _saved_weights(m) == adopt_legacy_weights(m, weights, m.get("config")) else None


def finished_matches(out: Path, config_hash: str, prompt: str, weights: dict | None = None,
                     init: dict | None = None) -> bool:
    """`out` holds a finished run of this config hash, prompt, local weights and start (`finished_manifest`)."""
    return finished_manifest(out, config_hash, prompt, weights, init) is not None


def other_run(out: Path, config_hash: str, prompt: str, weights: dict | None = None,
              init: dict | None = None) -> str | None:
    """'finished' or 'unfinished' when `out` holds a run of another config, prompt, local weights or start (what
    `--auto-resume` replaces when the pipeline made it), else None (empty, the same run, or a checkpoint
    `generate` itself will report as unreadable). `weights` and `init` as for `finished_manifest`."""
    status = run_status(out)
    if status == "empty":
        return None
    try:
        return None if _same_run(out, status, config_hash, prompt, weights, init) else status
    except ckpt.CheckpointError:
        return None


def _same_run(out: Path, status: str, config_hash: str, prompt: str, weights: dict | None,
              init: dict | None = None) -> bool:
    if status == "finished":
        return finished_matches(out, config_hash, prompt, weights, init)
    return _same_checkpoint(ckpt.load(out / "ckpt" / "last.pt", mmap=True), config_hash, prompt, weights, init)


def _same_checkpoint(data: dict, config_hash: str, prompt: str, weights: dict | None, init: dict | None) -> bool:
    """The checkpoint (its header fields; tensors need not be read) is of the run of this config hash, prompt, local
    weights and start (`weights` None: those its config names, as they are now)."""
    from method.training.trainer import start_matches

    if weights is None and data.get("config_hash") == config_hash:  # else it differs anyway: hash nothing
        weights = weights_digests(data.get("config"))
    if weights and data.get("config_hash") == config_hash:
        weights = adopt_legacy_weights(data, weights, data.get("config"))
    try:
        ckpt.check_compatible(data, Path("ckpt"), config_hash, prompt, weights=weights or {})
    except ckpt.CheckpointMismatch:
        return False
    return start_matches(data, init)


def _differences(saved: dict, cfg: TrainConfig, prompt: str, limit: int, weights: dict | None,
                 init: dict | None) -> list[str]:
    from method.training.trainer import init_difference

    differs = run_differences(saved, cfg.to_dict(), prompt, limit)
    if weights is not None:
        differs += ckpt.weights_differences(_saved_weights(saved), weights)
    return differs + [d for d in [init_difference(_saved_init(saved), init)] if d and _start_known(saved)]


def describe_mismatch(out: Path, status: str, cfg: TrainConfig, prompt: str, limit: int = 4,
                      weights: dict | None = None, init: dict | None = None) -> str:
    """What differs between the run in `out` and this request (`weights`: its `weights_digests`; `init`: the
    `init_from_record` it starts from, None from scratch), for the refusal message ('' if unknown: a checkpoint
    written before checkpoints kept their config)."""
    if status == "finished":
        saved = read_manifest(out)
    else:
        saved = ckpt.load(out / "ckpt" / "last.pt", mmap=True)
    return "; ".join(_differences(saved, cfg, prompt, limit, weights, init))


def _saved_run(out: Path, status: str, resume_from: Path | str | None) -> dict | None:
    """What the run `generate` would continue saved of itself (header fields only): the `resume_from` checkpoint,
    else `out`'s manifest (finished) or `ckpt/last.pt` (unfinished); None when there is none or it cannot be read
    (the checks that follow report that)."""
    path = Path(resume_from) if resume_from is not None else out / "ckpt" / "last.pt"
    try:
        if resume_from is None and status == "finished":
            return read_manifest(out)
        if resume_from is not None or status == "unfinished":
            data = ckpt.load(path, mmap=True)
            return data if isinstance(data, dict) else None
    except ckpt.CheckpointError:
        pass
    return None


def _mismatch_message(out: Path, status: str, cfg: TrainConfig, prompt: str, weights: dict, init: dict | None,
                      what: str) -> str:
    """The refusal of a run in `out` that is not this request's (`what`: why it is kept, or ''): what differs, and
    the way on. When only the start differs, it names the start and the --init-from that continues the run."""
    from method.training.trainer import init_difference, init_sha256

    saved = read_manifest(out) if status == "finished" else ckpt.load(out / "ckpt" / "last.pt", mmap=True)
    there = _saved_init(saved)
    start = init_difference(there, init) if _start_known(saved) else ""
    others = run_differences(saved, cfg.to_dict(), prompt, 4) + ckpt.weights_differences(_saved_weights(saved),
                                                                                           weights)
    away = "move it away or choose another --out"
    if not start or others or saved.get("config_hash") != cfg.config_hash():
        differs = "; ".join(others + [start] if start else others)
        return (f"{out} holds a run with another config{', prompt or local weights' if weights else ' or prompt'}"
                f"{what}{' (' + differs + ')' if differs else ''}; {away}")
    if there is None:
        return (f"{out} holds a run trained from scratch{what} ({start}); leave --init-from out to continue it, "
                f"or {away}")
    which = "another checkpoint" if init is not None else "a checkpoint (--init-from)"
    return (f"{out} holds a run started from {which}{what} ({start}); to continue it, pass the --init-from it "
            f"started from (the checkpoint with sha256 {init_sha256(there)}), or {away}")


def check_resume_from_folder(out: Path, status: str, cfg: TrainConfig, prompt: str, weights: dict,
                             init: dict | None, resume_from: Path | str) -> None:
    """`--resume-from` writes into `out`: a folder that holds files of a run (manifest, checkpoints, log) must hold
    this request's run, as for `--resume`, or its checkpoints and log would be mixed with those of this one (and the
    manifest would count its logged steps as work redone). Every readable checkpoint of `ckpt/` and the manifest are
    checked; a folder holding run files none of which says which run it is, is refused too. An empty or new folder
    is fine."""
    ckpts = sorted((out / "ckpt").glob("*.pt")) if (out / "ckpt").is_dir() else []
    log = out / "log.jsonl"
    held = ckpts + [p for p in (out / "manifest.json", log) if p.is_file() and p.stat().st_size > 0]
    if not held:
        return
    config_hash = cfg.config_hash()
    saved: list[tuple[Path, dict]] = []
    if status == "finished":
        with contextlib.suppress(DamagedManifest):
            saved.append((out / "manifest.json", read_manifest(out)))
    for path in ckpts:
        with contextlib.suppress(ckpt.CheckpointError):
            data = ckpt.load(path, mmap=True)  # headers only: tensors mapped, not read
            if isinstance(data, dict):  # (a foreign file torch reads says nothing either)
                saved.append((path, data))
    for path, data in saved:
        same = (finished_matches(out, config_hash, prompt, weights, init) if path.name == "manifest.json" else
                _same_checkpoint(data, config_hash, prompt, weights, init))
        if not same:
            differs = "; ".join(_differences(data, cfg, prompt, 4, weights, init))
            raise ckpt.CheckpointMismatch(
                f"{out} holds another run (its {path.relative_to(out).as_posix()}"
                f"{': ' + differs if differs else ' is of another config'}): --resume-from {resume_from} would mix "
                "this run's checkpoints and log with that run's; give another --out (an empty or new folder), or "
                f"move {out} away")
    if not saved:
        names = ", ".join(p.relative_to(out).as_posix() for p in held)
        raise ckpt.CheckpointError(
            f"{out} holds files of a run ({names}) but no readable checkpoint or manifest saying which run: "
            f"--resume-from {resume_from} would mix them with this run's; give another --out (an empty or new "
            f"folder), or move {out} away")


def check_final_checkpoint(out: Path) -> None:
    """A finished run is only done if `fourdfy render` can read its `ckpt/last.pt`; else a `ckpt.DamagedLast`
    naming the stage checkpoint that rewrites it (`--resume-from`). Nothing is changed."""
    try:
        ckpt.load(out / "ckpt" / "last.pt", mmap=True)  # every rerun of a finished run pays this: map, not read
    except ckpt.DamagedLast as err:
        raise err.reworded(lead=f"{out} is a finished run, but `fourdfy render` cannot use its final checkpoint: "
                           ) from None


def check_init_from(path: Path) -> None:
    """`--init-from` names a readable checkpoint; else one line saying what fits it: another intact stage
    checkpoint beside it. (`ckpt.load`'s hint for a damaged `last.pt` names `--resume-from`, which continues that
    run in its own folder: not what starting a new run from it means.)"""
    if path.is_file():
        why = ckpt.unreadable(path)
        if why is None:
            return
        what = f"cannot read checkpoint {path} ({why})"
    else:
        what = f"checkpoint not found: {path}" + (" (a folder; give a .pt file in it)" if path.is_dir() else "")
    folder = path if path.is_dir() else path.parent
    if (folder / "ckpt").is_dir():  # a run folder given
        folder = folder / "ckpt"
    # only a run's ckpt/ folder is searched (not every .pt of a folder the file happened to lie in)
    intact = ckpt.intact_checkpoints(folder, leave_out=path)[0] if folder.name == "ckpt" else []
    hint = (f"; intact stage checkpoints of that run: {', '.join(p.name for p in intact)}: start from one of them "
            f"with --init-from {intact[-1]}" if intact else
            "; give another run's stage checkpoint (RUN/ckpt/stageN.pt), or leave --init-from out to train "
            "every stage")
    raise ckpt.CheckpointError(f"--init-from: {what}{hint}")


class RunInUse(ckpt.CheckpointError):
    """Another process is training into the run folder."""


@contextlib.contextmanager
def run_folder_lock(folder: Path):
    """Hold an exclusive lock on `folder` (an existing directory; flock on its inode, so nothing is written into
    it) while the block runs, or raise RunInUse at once when another process holds it. The lock ends with the
    process, so a killed run leaves none behind."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunInUse(f"{folder} is being trained by another process; wait for it to end (then --resume "
                           "continues it if it stopped early) or choose another --out") from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def generate(cfg: TrainConfig, prompt: str, out: Path | str, *, resume: str = "no",
             resume_from: Path | str | None = None, init_from: Path | str | None = None, progress: bool = True,
             quiet: bool = False, notes: dict | None = None, stage_cache: Path | str | None = None) -> dict:
    """Train `prompt` with `cfg` into `out` following the resume rules above; returns the manifest.

    `notes` (e.g. the `--set` values as typed) are stored in the manifest under `request`.
    `stage_cache`: a folder where runs leave their stage checkpoints for runs whose first stages are
    identical (decided from the resolved configs), which then start from them (see `Trainer`).
    The run folder is locked while this runs: a second process on the same folder fails at once (`RunInUse`).
    """
    if resume not in RESUME_MODES:
        raise ValueError(f"resume must be one of {RESUME_MODES}, got {resume!r}")
    prompt = resolve_prompt(prompt)
    out = Path(out)
    init = None
    if init_from is not None and Path(init_from).exists():  # before the run folder is made
        check_init_from(Path(init_from))
        init = init_from_record(Path(init_from))  # part of the run's identity, and recorded in its manifest
    # (a missing one: `_generate` continues the run in `out` with the start it recorded, or says it is missing)
    with contextlib.ExitStack() as held:
        if out.is_dir():  # before its state is read: a run in progress there is neither resumed nor replaced
            held.enter_context(run_folder_lock(out))
        return _generate(cfg, prompt, out, held, resume=resume, resume_from=resume_from, init_from=init_from,
                         init=init, progress=progress, quiet=quiet, notes=notes, stage_cache=stage_cache)


def _generate(cfg: TrainConfig, prompt: str, out: Path, held: contextlib.ExitStack, *, resume, resume_from,
              init_from, init, progress, quiet, notes, stage_cache) -> dict:
    """`generate` with `out`'s lock in `held` when it existed; a folder made here is locked as it is made."""
    from method.training.trainer import Trainer, init_sha256

    status = run_status(out)
    weights = weights_digests(cfg.to_dict())  # part of the run's identity: {} (nothing read) for hub and tiny ids
    saved = _saved_run(out, status, resume_from)
    if saved is not None and cfg.config_hash() == saved.get("config_hash"):
        # a folder digest the run recorded with bookkeeping files in it is the same weights: the run keeps it, so
        # its checkpoints (checked on resume) and stage-cache keys stay its own
        weights = adopt_legacy_weights(saved, weights, cfg.to_dict())
    gone = None  # an --init-from checkpoint that is gone, where the run in `out` recorded it as its start
    if init_from is not None and init is None:
        recorded = _saved_init(saved) if saved is not None and (resume != "no" or resume_from is not None) else None
        if recorded is None:  # nothing to continue: the start is needed
            check_init_from(Path(init_from))
        print(f"note: --init-from {init_from} is gone; continuing the run in {out} with the start it recorded "
              f"(checkpoint sha256 {init_sha256(recorded)[:12]})", file=sys.stderr, flush=True)
        # the trainer checks the run's checkpoints against the record, and reads no file
        gone, init, init_from = Path(init_from), recorded, None
    trainer_resume = False
    if resume_from is not None:
        last = out / "ckpt" / "last.pt"
        if status == "finished" and last.is_file() and ckpt.unreadable(last) is None:
            # --resume-from rewrites a damaged final checkpoint; on an intact finished run it would train its
            # later stages again and replace the result (on CUDA not bit-identically)
            raise ckpt.CheckpointError(
                f"{out} already holds a finished run, and its final checkpoint is intact: --resume-from "
                f"{resume_from} would train it again and replace it; to train from that checkpoint with other "
                f"settings, start a new run: --init-from {resume_from} --out ANOTHER_FOLDER")
        check_resume_from_folder(out, status, cfg, prompt, weights, init, resume_from)
        trainer_resume = True
    elif status != "empty":
        same = _same_run(out, status, cfg.config_hash(), prompt, weights, init)
        if resume == "no":
            raise ckpt.CheckpointError(
                f"{out} already holds an unfinished run; pass --resume to continue it or choose another --out"
                if status == "unfinished" else
                f"{out} already holds a finished run (render it: `fourdfy render {out} --out ARTIFACTS`); choose "
                "another --out, or move it away to train it again")
        if not same:
            if resume == "auto" and (out / PIPELINE_MARKER).is_file():
                if gone is not None:  # a new run would need the checkpoint that is gone: this one stays
                    check_init_from(gone)
                for child in out.iterdir():  # the pipeline's own run, made with other settings; the folder
                    shutil.rmtree(child) if child.is_dir() else child.unlink()  # itself stays, and locked
                status = "empty"
            else:
                # only --auto-resume replaces runs, and only the pipeline's: say why this one stays
                what = " (not made by the pipeline, so it is kept)" if resume == "auto" else ""
                raise ckpt.CheckpointMismatch(_mismatch_message(out, status, cfg, prompt, weights, init, what))
        elif status == "finished":
            check_final_checkpoint(out)
            return read_manifest(out)
        else:
            trainer_resume = True
    resolve_device(cfg.device)  # a device that is not there fails before the run folder is made
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    if created:
        held.enter_context(run_folder_lock(out))
    if resume == "auto" and status == "empty":
        (out / PIPELINE_MARKER).write_text("made by `fourdfy generate --auto-resume`; the pipeline may replace it\n")
    try:
        trainer = Trainer(cfg, prompt, out, progress=progress, quiet=quiet, notes={"request": notes or {}},
                          stage_cache=stage_cache, weights=weights, init_record=init)
        return trainer.run(resume=trainer_resume, init_from=init_from, resume_from=resume_from)
    except BaseException:
        # a run that failed before writing anything (missing weights, out of memory building the field, a
        # Ctrl-C) leaves no folder behind; parent folders that mkdir made stay (they may be shared)
        if created and out.is_dir() and {p.name for p in out.iterdir()} <= {PIPELINE_MARKER}:
            shutil.rmtree(out)
        raise


def quiet_libraries() -> None:
    """Silence the model libraries' own progress bars and info logs (three per run otherwise). Process-wide,
    so the command line and sweep jobs call it, not `generate` (a notebook keeps the libraries' logs)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - a dependency of the project
        pass
    try:
        import diffusers

        diffusers.utils.logging.set_verbosity_error()
        diffusers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass

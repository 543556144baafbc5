"""File helpers, torch-free so every layer (the user study included) can use them.

Atomic writes: a file is written to a temporary sibling of a unique name, fsynced and renamed into place. A failed
write is an OSError naming the file written, not its temporary; a full disk is one with errno ENOSPC, whatever the
writer raised. `yaml_error_text`: a YAML parse error as one line, for every reader of a YAML file. `stamped_build`: a
cache folder built once, atomically, and rebuilt when damaged (the tiny priors, the tiny CLIP)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import warnings
from pathlib import Path

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
"""errnos of a full disk or an exhausted quota."""

_NEARLY_FULL = 1 << 20
"""Bytes free under which a writer's failure with no OSError behind it is taken for a full disk."""


def new_temporary(path: Path) -> tuple[int, Path]:
    """A new empty hidden file of a unique name beside `path`, open for writing. Created with mode 0o666
    like any new file, so the umask applies (mkstemp's fixed 0o600 would survive the rename)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:  # another writer's temporary by chance: draw another name
            continue
        except OSError as err:  # a read-only folder, no inode left: about `path`, the temporary means nothing to a user
            raise OSError(err.errno, err.strerror, str(path)) from err


def _disk_full_cause(err: BaseException) -> OSError | None:
    """The disk-full OSError that `err` was raised over, if any: torch.save's writer, for one, turns ENOSPC into
    `RuntimeError: [enforce fail at inline_container.cc:...] unexpected pos`, with the OSError as its context."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno in _DISK_FULL:
            return err
        err = err.__cause__ or err.__context__
    return None


def _interrupt_behind(err: BaseException) -> BaseException | None:
    """A Ctrl-C or SIGTERM (KeyboardInterrupt) or SystemExit behind `err`: torch.save turns one raised in its file's
    write into `RuntimeError: ... unexpected pos`, with the interrupt only as the context."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if not isinstance(err, Exception):
            return err
        err = err.__cause__ or err.__context__
    return None


def _names(err: OSError, tmp: Path) -> bool:
    """Whether `err` is about the temporary (names it, or no file at all)."""
    return err.filename is None or str(err.filename) == str(tmp)


def write_error(err: BaseException, path: Path, tmp: Path) -> OSError | None:
    """The OSError to raise instead of `err`, raised while writing `path` through `tmp` (still on disk, so a full
    disk still reads full): one naming `path` for an OSError about the temporary, and one with errno ENOSPC for a
    full disk hidden behind another exception; None: `err` as it is."""
    if not isinstance(err, Exception):  # Ctrl-C, SystemExit: not a write error
        return None
    if isinstance(err, OSError):
        return OSError(err.errno, err.strerror, str(path)) if err.errno is not None and _names(err, tmp) else None
    full = _disk_full_cause(err)
    if full is not None:
        return OSError(full.errno, full.strerror, str(path) if _names(full, tmp) else full.filename)
    if not isinstance(err, RuntimeError):  # a writer's own bug (TypeError, ...) is never blamed on the disk
        return None
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return None
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) if free < _NEARLY_FULL else None


def write_atomic(path: Path, write) -> None:
    """`write(binary file)` into a temporary file of a unique name in the same folder, fsync, then rename: a
    killed run never leaves half a file, parallel writers of the same file do not clash, and on any error
    the temporary is removed and `path` is left as it was. The file's mode follows the umask. An error is an
    OSError naming `path` where it is about the file (see `write_error`)."""
    def fill(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            write(f)

    fill_atomic(path, fill)


def fill_atomic(path: Path, fill) -> None:
    """As `write_atomic`, for writers that take a path (pandas, shutil, matplotlib): `fill(temporary path)`
    writes the temporary file, which is then fsynced and renamed over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_temporary(path)
    os.close(fd)
    try:
        fill(tmp)
        with open(tmp, "rb+") as f:  # what `fill` wrote reaches the disk before the rename
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        stop = _interrupt_behind(err)
        mapped = None if stop is not None else write_error(err, path, tmp)
        tmp.unlink(missing_ok=True)
        if stop is not None and stop is not err:  # stopped, as the user asked, not a write error
            raise stop from None
        if mapped is not None:
            raise mapped from err
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """`text` (UTF-8) to `path` atomically."""
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def copy_atomic(src: Path, dst: Path) -> None:
    """A copy of the file `src` at `dst`, atomically."""
    import shutil

    with open(src, "rb") as source:
        write_atomic(dst, lambda f: shutil.copyfileobj(source, f))


def nearest_existing(path: Path | str) -> Path:
    """`path` itself if it exists, else its nearest existing parent (the current folder for a relative path none
    of whose parts exist)."""
    path = Path(path)
    return next((p for p in (path, *path.parents) if p.exists()), Path(os.curdir))


def folder_blocker(folder: Path | str) -> tuple[Path, str] | None:
    """Why `folder` cannot be used or made as a folder: (the nearest existing path, "file") when a file stands in
    its place or above it, (that folder, "not writable") when the folder, or the nearest existing one to make it
    in, cannot be written; None when nothing is in the way. Leaves nothing behind (`can_write` probes with a file it
    removes). Callers word the error for their own option."""
    folder = Path(folder)
    base = nearest_existing(folder)
    if not base.is_dir():
        return base, "file"
    # an existing folder too: its outputs are written after the work (minutes of scoring, a bootstrap)
    if not can_write(base):
        return base, "not writable"
    return None


def can_write(folder: Path) -> bool:
    """Whether a file can be made in the existing folder `folder`. `os.access` first (cheap), then a real try: root
    passes `os.access` whatever the permission bits, and a read-only mount or `chattr +i` shows in none of them."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:  # (tempfile's own names: the writers' `secrets` draws stay theirs)
        fd, probe = tempfile.mkstemp(prefix=".fourdfy-write-check.", dir=folder)
    except OSError:  # EROFS, EPERM (immutable), EACCES, ENOSPC (no inode): outputs could not be written either
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return True


def yaml_error_text(err: Exception) -> str:
    """A YAML parse error in one line, `line L, column C: problem (context at line L', column C')` (1-based), without
    PyYAML's multi-line echo of the source and its `in "<unicode string>"`: the caller names the file."""
    def one_line(text) -> str:
        return " ".join(str(text).split())

    mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None)
    if mark is None or not problem:
        return one_line(str(err).splitlines()[0] if str(err) else type(err).__name__)
    text = f"line {mark.line + 1}, column {mark.column + 1}: {one_line(problem)}"
    context, start = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context:  # e.g. "while parsing a flow sequence" that a bracket opened on another line
        where = f" at line {start.line + 1}, column {start.column + 1}" if start is not None else ""
        text += f" ({one_line(context)}{where})"
    return text


# --- stamped caches (the tiny priors, the tiny CLIP) ------------------------------------------------------


def _manifest(root: Path, stamp_name: str) -> dict[str, list]:
    """{path relative to root: [size, sha256]} of every file of a build (the stamp aside)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != stamp_name:
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            out[path.relative_to(root).as_posix()] = [path.stat().st_size, digest]
    return out


def _stats(root: Path, files, stamp_name: str) -> tuple:
    """(path, size, mtime) of the files listed and the stamp's mtime: what `_VERIFIED` remembers. OSError when one
    is gone. A rename keeps every file's size and mtime, so a build's stats read before it is moved into place
    are those of the folder after the move."""
    stats = tuple((rel, (root / rel).stat().st_size, (root / rel).stat().st_mtime_ns) for rel in sorted(files))
    return stats + (("", (root / stamp_name).stat().st_mtime_ns, 0),)


_VERIFIED: dict[tuple[Path, str], tuple] = {}
"""(root, stamp name) -> `_stats` of its files when their hashes last matched the stamp: a second look in the same
process reads no file again unless one changed (the priors are resolved once per part loaded)."""


def _damage(root: Path, stamp: dict, stamp_name: str) -> str | None:
    """None when `root` holds a finished build of `stamp` whose files are all as built; '' when it holds no such
    build (none, another recipe or seed, or a stamp of another name: an earlier version's); else what is damaged
    (a file missing, cut short or changed)."""
    try:
        saved = json.loads((root / stamp_name).read_text())
        files = saved.pop("files")
    except (OSError, ValueError, KeyError, AttributeError):  # no stamp, or one from before the file list
        return ""
    if saved != stamp or not isinstance(files, dict):
        return ""
    missing = [rel for rel in sorted(files) if not (root / rel).is_file()]
    if missing:
        return f"{missing[0]} is missing"
    try:
        stats = _stats(root, files, stamp_name)
    except OSError:  # replaced by another builder meanwhile: looked at again by the caller
        return ""
    if _VERIFIED.get((root, stamp_name)) == stats:
        return None
    for rel, size, _ in stats[:-1]:
        if size != files[rel][0]:
            return f"{rel} has {size} bytes instead of {files[rel][0]}"
    try:
        now = _manifest(root, stamp_name)
    except OSError as exc:
        return f"a file could not be read ({exc})"
    changed = [rel for rel in sorted(files) if now.get(rel) != files[rel]]
    if changed:
        return f"{changed[0]} differs from the file built"
    _VERIFIED[(root, stamp_name)] = stats
    return None


def stamped_build(root: Path, stamp: dict, write, what: str, stamp_name: str) -> Path:
    """`root`, built by `write(folder)` unless it already holds an intact build of `stamp` (a dict of what the
    build depends on: recipe, seed), which the JSON file `root/stamp_name` records.

    The folder is built beside `root` and moved into place when complete, so a reader never sees a half-written
    folder and concurrent builders do not disturb each other. The stamp lists every file's size and SHA-256: a
    damaged cache (a file cut short, changed or deleted) is rebuilt, with a warning naming `what` (e.g. "the tiny
    priors' cache"), `root` and the damage, rather than failing to load as if it were a user's model. A folder with
    no stamp of that name (another recipe or seed, or an earlier version's stamp name) is rebuilt without a
    warning. A fresh build is hashed once, in its temporary folder. Used by the tiny priors
    (`method.guidance.tiny`) and the tiny CLIP (`evaluation.clip_models`)."""
    root = Path(root)
    damage = _damage(root, stamp, stamp_name)
    if damage is None:
        return root
    if damage:  # '' is no build of this stamp (none, or another recipe or seed): rebuilt without a warning
        warnings.warn(f"{what} {root} is damaged ({damage}); rebuilding it", RuntimeWarning, stacklevel=3)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    old = None
    try:
        write(tmp)
        files = _manifest(tmp, stamp_name)
        (tmp / stamp_name).write_text(json.dumps({**stamp, "files": files}))
        # read before the move, which keeps them: the hashes just taken are of these very files
        built = _stats(tmp, files, stamp_name)
        if _damage(root, stamp, stamp_name) is not None:  # nobody finished meanwhile
            if root.exists():  # an older recipe or seed, or a damaged build: moved aside in one step, then deleted
                old = Path(tempfile.mkdtemp(prefix=f".{root.name}-old-", dir=root.parent))
                os.replace(root, old)
            try:
                os.replace(tmp, root)
                _VERIFIED[(root, stamp_name)] = built
            except OSError:  # another builder moved its copy in first
                pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    # files as built (sizes and mtimes as recorded above) are not hashed again; another builder's are
    if _damage(root, stamp, stamp_name) is not None:
        raise RuntimeError(f"could not build {what} in {root}")
    return root

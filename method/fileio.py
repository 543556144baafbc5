"""Atomic file writes, torch-free so every layer (the user study included) can use them: a file is
written to a temporary sibling of a unique name, fsynced and renamed into place."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _new_temporary(path: Path) -> tuple[int, Path]:
    """A new empty hidden file of a unique name beside `path`, open for writing. Created with mode 0o666
    like any new file, so the umask applies (mkstemp's fixed 0o600 would survive the rename)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:  # another writer's temporary by chance: draw another name
            continue


def write_atomic(path: Path, write) -> None:
    """`write(binary file)` into a temporary file of a unique name in the same folder, fsync, then rename: a
    killed run never leaves half a file, parallel writers of the same file do not clash, and on any error
    the temporary is removed and `path` is left as it was. The file's mode follows the umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fill_atomic(path: Path, fill) -> None:
    """As `write_atomic`, for writers that take a path (pandas, shutil, matplotlib): `fill(temporary path)`
    writes the temporary file, which is then fsynced and renamed over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temporary(path)
    os.close(fd)
    try:
        fill(tmp)
        with open(tmp, "rb+") as f:  # what `fill` wrote reaches the disk before the rename
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """`text` (UTF-8) to `path` atomically."""
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def copy_atomic(src: Path, dst: Path) -> None:
    """A copy of the file `src` at `dst`, atomically."""
    import shutil

    with open(src, "rb") as source:
        write_atomic(dst, lambda f: shutil.copyfileobj(source, f))


def folder_blocker(folder: Path | str) -> tuple[Path, str] | None:
    """Why `folder` cannot be used or made as a folder, creating nothing: (the nearest existing path, "file") when a
    file stands in its place or above it, (that folder, "not writable") when something must be made in a folder
    that cannot be written; None when nothing is in the way. Callers word the error for their own option."""
    folder = Path(folder)
    base = next((p for p in (folder, *folder.parents) if p.exists()), Path(os.curdir))
    if not base.is_dir():
        return base, "file"
    if base != folder and not os.access(base, os.W_OK | os.X_OK):
        return base, "not writable"
    return None

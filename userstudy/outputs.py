"""Writing outputs without half-written files or silent leftovers.

- `atomic_write(path, fill)`: `fill` writes a temporary sibling, which `method.fileio` fsyncs and renames
  into place, so a reader never sees a partial file and a failure leaves the old file as it was.
- `replace_folder(out_dir, build)`: `build` fills a fresh temporary sibling folder, which then takes
  the place of `out_dir`, so files of an earlier run that this run does not write (a `table3.md` of a
  design that no longer has Table 3) do not linger. An existing folder is replaced only when it is
  empty or holds exactly the files listed by the `report.md` of an earlier `fourdfy analyze` run;
  anything else in it is refused, never deleted. What a run killed outright (`kill -9`) between its two
  renames left is dealt with by the next run on the same folder (`replace_folder`).
- `check_metrics_target(path, inputs)`: the `--metrics` file of `analyze` lies outside the folder, so
  it gets its own guard: never one of the input files, and an existing file only when it is an earlier
  metrics file (`is_metrics_file`).
- `check_own_file(path, overwrite, is_own, kind)`: a single output file of a command (`power --out`,
  `audit --out`): a new path is written; an existing file only with `--overwrite`, and only when it is
  this command's own kind of output (`is_own`; an empty file counts, nothing is lost); anything else is
  refused even with `--overwrite` (the rule of `simulate-votes --out`; `survey export --out` replaces only a
  votes CSV).
- Every failure to write (read-only folder, a file where a folder should be, ...) is an
  `OutputError` whose message is one line naming the path and what to do.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Callable

from method import fileio
from method.fileio import folder_blocker

REPORT = "report.md"
"""The report of `fourdfy analyze`; its `## Files` section lists every file the run wrote."""
_FILES_HEADING = "## Files"
_FILE_LINE = re.compile(r"- `([^`]+)`")


class OutputError(ValueError):
    """An output cannot be written: not writable, or a file or folder is in the way."""


def _oserror(path: Path, err: OSError) -> OutputError:
    reason = err.strerror or type(err).__name__
    return OutputError(f"cannot write {path}: {reason}; choose another output path or make it writable")


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: after resolving links and `..` (either may not exist yet), or as hard links
    of one inode."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_folder_target(folder: Path | str) -> Path:
    """Check (leaving nothing behind) that `folder` is a folder or can be made: no file in the way, and the
    folder, or the nearest existing one to make it in, is writable (`fileio.folder_blocker`)."""
    folder = Path(folder)
    blocked = folder_blocker(folder)
    if blocked is not None and blocked[1] == "file":
        raise OutputError(f"{blocked[0]} is a file, not a folder; move it or choose another output path")
    if blocked is not None:
        raise OutputError(f"cannot write {folder}: {blocked[0]} is not writable; choose another output path")
    return folder


def ensure_folder(folder: Path | str) -> Path:
    """Create `folder` (and its parents) or raise OutputError saying which path is in the way."""
    folder = check_folder_target(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _oserror(folder, err) from None
    return folder


def check_file_target(path: Path | str) -> Path:
    """Check (creating nothing) that `path` can become a file: not a folder, its folder can be made, and the
    nearest existing folder can be written (a file is always written there as a new temporary sibling, even
    when it replaces one)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file path")
    blocked = folder_blocker(path.parent)  # one probe: its "not writable" is said of the nearest existing folder
    if blocked is not None and blocked[1] == "file":
        raise OutputError(f"{blocked[0]} is a file, not a folder; move it or choose another output path")
    if blocked is not None:  # said of the file, in its own folder
        raise OutputError(f"cannot write {path}: {blocked[0]} is not writable; choose another output path or make it "
                          "writable")
    return path


def _head(path: Path | str, limit: int) -> bytes | None:
    """At most `limit` bytes from the start of `path` (None: it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(limit)
    except OSError:
        return None


def _line_of(head: bytes) -> str | None:
    # split before decoding: the limit may cut a multi-byte character further on
    try:
        return head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        return None


def first_line(path: Path | str, limit: int = 4096) -> str | None:
    """The first line of a text file without its line end ("" for an empty file; None: not readable as UTF-8
    text). Reads at most `limit` bytes, so a large foreign file is not read whole."""
    head = _head(path, limit)
    return None if head is None else _line_of(head)


def empty_or_headed(path: Path | str, header: str) -> bool:
    """Whether `path` is empty (0 bytes: a file that only starts with a blank line is not) or its first line is
    `header`: how a command recognises its own earlier output, the only kind `--overwrite` replaces. One read
    decides both, so a file replaced between two looks cannot pass as empty."""
    head = _head(path, 4096)
    return head is not None and (head == b"" or _line_of(head) == header)


def check_own_file(path: Path | str, overwrite: bool, is_own: Callable[[Path], bool], kind: str,
                   option: str = "--out", describe: Callable[[Path], str] | None = None) -> Path:
    """Check (writing nothing) that a command may write its output file `path`: a new file, or with
    `overwrite` an existing one for which `is_own(path)` holds (an earlier output of the same command;
    `kind` names it in messages, e.g. "a power table of `fourdfy power`"). A file that is not its own
    kind is refused even with `overwrite`: an output must never take the place of data. `describe(path)`,
    when given, says in the refusal what the file seems to be instead (e.g. "a survey bundle's bundle.json")."""
    path = check_file_target(path)
    if not path.exists():
        return path
    if not is_own(path):
        seems = f"seems to be {describe(path)}, not" if describe is not None else "is not"
        raise OutputError(f"{option} {path} exists and {seems} {kind}; it is never replaced, even with "
                          f"--overwrite: move it or choose another {option}")
    if not overwrite:
        raise OutputError(f"{option} {path} already exists ({kind}); give --overwrite to replace it or choose "
                          f"another {option}")
    return path


METRICS_KEYS = ("synthetic", "data", "preference", "kappa")
"""The top-level keys of the metrics JSON that `fourdfy analyze` writes (`userstudy.tables.metrics`) and
`is_metrics_file` requires; it also writes `significance` (and `clip` with --clip), not required, since a metrics
file of an earlier version lacks it."""
_METRICS_MAX_BYTES = 16 << 20  # far above any design's metrics; a bigger file is not ours (and not read whole)


def is_metrics_file(path: Path | str) -> bool:
    """True when `path` holds what `fourdfy analyze` writes as metrics: a JSON object with the keys
    `METRICS_KEYS` (`data` and `preference` objects). An empty file also counts: nothing is lost."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            return True
        if size > _METRICS_MAX_BYTES:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return (isinstance(data, dict) and all(k in data for k in METRICS_KEYS)
            and isinstance(data["data"], dict) and isinstance(data["preference"], dict))


def check_metrics_target(path: Path | str, inputs: list[tuple[str, Path | str | None]] = (),
                         out_dir: Path | str | None = None) -> Path:
    """Check (writing nothing) that metrics may be written to `path`: a file path that is none of the
    `inputs` ((option, path) pairs, e.g. ("--votes", "votes.csv"); the same file under another name,
    symlink or hard link, counts) and is new, empty or an earlier metrics file (`is_metrics_file`).
    Anything else is refused with an OutputError: a metrics file must never take the place of data.
    Inside `out_dir` the folder's own guard applies instead (`check_replaceable`: only files of an
    earlier analysis are there, and the analysis refuses a name it writes itself)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"--metrics {path} is a folder; give a file path")
    check_file_target(path)
    if not path.exists():
        return path
    for option, given in inputs:
        if given is not None and same_file(path, Path(given)):
            raise OutputError(f"--metrics {path} is the {option} file {given}; the metrics would overwrite it: "
                              "give --metrics another path")
    if out_dir is not None:
        rel = os.path.relpath(os.path.realpath(path), os.path.realpath(out_dir))
        if not rel.startswith(os.pardir):
            return path
    if not is_metrics_file(path):
        raise OutputError(f"--metrics {path} exists and is not a metrics file of `fourdfy analyze` (a JSON object "
                          f"with the keys {', '.join(METRICS_KEYS)}); only such a file is replaced: move it or "
                          "give --metrics another path")
    return path


def _temp_sibling(path: Path, kind: str) -> Path:
    return path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.{kind}"


def temp_sibling_pattern(path: Path, kind: str) -> re.Pattern:
    """The names `_temp_sibling(path, kind)` gives, and only those: not the temporaries of another folder (that of
    `a.12345678` has one more dotted part) nor those of `method.fileio` (12 hex) or `evaluation.artifacts`."""
    return re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{8}}\.{re.escape(kind)}")


def _leftovers(out_dir: Path, kind: str) -> list[Path]:
    """The folders beside `out_dir` named as its `kind` temporaries ("tmp" or "old") are."""
    pattern = temp_sibling_pattern(out_dir, kind)
    try:
        entries = list(out_dir.parent.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if pattern.fullmatch(p.name) and p.is_dir() and not p.is_symlink())


def lock_folder(folder: Path) -> int:
    """An open descriptor of `folder` holding an exclusive flock on it, released when it is closed or the process
    ends (so a killed run holds none). BlockingIOError: another process holds it; another OSError: the folder is
    gone or the file system cannot lock folders. How a build's temporary folder is told from one a killed build
    left (here and in `userstudy.survey.bundle`)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        os.close(fd)
        raise
    return fd


def new_locked_folder(name: Callable[[], Path]) -> tuple[Path, int | None]:
    """A new folder at a fresh `name()` (a hidden temporary beside an output), made with the mode a plain mkdir gives
    and locked for as long as the descriptor returned is open (None: the file system cannot lock folders), so that
    another run's cleanup (`remove_unlocked`) tells it from one a killed run left. Here and in
    `userstudy.survey.bundle`."""
    for _ in range(100):
        tmp = name()
        try:
            tmp.mkdir()
        except FileExistsError:
            continue
        try:
            fd = lock_folder(tmp)
        except (BlockingIOError, FileNotFoundError):
            continue  # another run's cleanup took it for a leftover in the instant before the lock: it removes it
        except OSError:
            return tmp, None  # no folder locks here (some network file systems): cleanups keep every .tmp
        try:
            same = os.path.samestat(os.stat(tmp), os.fstat(fd))
        except OSError:
            same = False
        if same:
            return tmp, fd
        os.close(fd)  # locked after a cleanup had removed it: that folder is gone
    raise FileExistsError(errno.EEXIST, "no free temporary folder name", str(tmp.parent))


def remove_unlocked(folders: list[Path]) -> tuple[list[str], list[str], list[str]]:
    """Remove each of `folders` (temporaries made by `new_locked_folder`) that no live process holds locked: a killed
    run's. Returns the names (removed, left because the file system cannot lock folders, could not be removed); one
    locked, gone meanwhile or renamed meanwhile (a live run's, finished) is none of them."""
    removed, unlockable, stuck = [], [], []
    for tmp in folders:
        try:
            fd = lock_folder(tmp)
        except (BlockingIOError, FileNotFoundError):
            continue  # a running build's (or gone meanwhile)
        except OSError:
            unlockable.append(tmp.name)
            continue
        try:
            try:
                same = os.path.samestat(os.stat(tmp), os.fstat(fd))
            except OSError:
                same = False
            if not same:  # renamed meanwhile (a running build's, finished): not this name's any more
                continue
            shutil.rmtree(tmp, ignore_errors=True)
        finally:
            os.close(fd)
        (stuck if tmp.exists() else removed).append(tmp.name)
    return removed, unlockable, stuck


def _restore_interrupted(out_dir: Path) -> None:
    """Put back the earlier outputs of a run killed between its two renames: `out_dir` missing and its `.old`
    sibling left (the newest, should there be several). Then a failing build leaves them in place as it leaves
    any earlier outputs, and a successful one replaces them as usual. Left as it is where it cannot be renamed
    (a later successful run removes it)."""
    if os.path.lexists(out_dir):
        return
    olds = []
    for old in _leftovers(out_dir, "old"):
        try:
            olds.append((old.stat().st_mtime_ns, old.name, old))
        except OSError:
            continue
    if olds:
        try:
            max(olds)[2].rename(out_dir)
        except OSError:
            pass


def _remove_leftovers(out_dir: Path) -> None:
    """Remove what runs killed outright left beside `out_dir` (this folder's temporaries only). Every `.old`: it
    holds outputs already replaced (a live run's `.old` exists only during its two renames and while it removes it
    itself). A `.tmp` only when no live process holds its lock: it may be a concurrent run's build in progress;
    where folders cannot be locked that cannot be told, so every `.tmp` is kept."""
    for old in _leftovers(out_dir, "old"):
        shutil.rmtree(old, ignore_errors=True)
    remove_unlocked(_leftovers(out_dir, "tmp"))


def atomic_write(path: Path | str, fill: Callable[[Path], None]) -> Path:
    """Write `path` through a temporary sibling that `fill(tmp)` writes (`method.fileio.fill_atomic`: fsynced,
    renamed into place). On any error `path` is left as it was and no file is left behind; an OSError becomes an
    OutputError naming `path`."""
    path = check_file_target(path)
    ensure_folder(path.parent)
    try:
        fileio.fill_atomic(path, fill)
    except OSError as err:
        raise _oserror(path, err) from None
    return path


def write_text(path: Path | str, text: str) -> Path:
    """Atomic UTF-8 text write (`atomic_write`)."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def listed_files(report: Path) -> list[str] | None:
    """Files listed in the `## Files` section of an analysis report (None: not such a report)."""
    try:
        lines = report.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if _FILES_HEADING not in lines:
        return None
    names = []
    for line in lines[lines.index(_FILES_HEADING) + 1:]:
        m = _FILE_LINE.fullmatch(line.strip())
        if m:
            names.append(m.group(1))
        elif line.startswith("#"):
            break
    return names


def files_section(names: list[str]) -> list[str]:
    """The `## Files` section of a report (one line per file, in the order given)."""
    return [_FILES_HEADING, ""] + [f"- `{n}`" for n in names]


def check_replaceable(out_dir: Path | str) -> None:
    """Raise OutputError unless `out_dir` is absent (and could be made), empty, or an earlier
    analysis output folder. Checks only: nothing is created."""
    out_dir = Path(out_dir)
    if not out_dir.exists():
        check_folder_target(out_dir)
        return
    if not out_dir.is_dir():
        raise OutputError(f"{out_dir} is a file, not a folder; give a folder for the outputs")
    check_folder_target(out_dir)  # an existing folder may be read-only too (a mount, `chattr +i`)
    try:
        entries = sorted(p.name for p in out_dir.iterdir())
    except OSError as err:
        raise _oserror(out_dir, err) from None
    if not entries:
        return
    listed = listed_files(out_dir / REPORT)
    if listed is None:
        raise OutputError(f"{out_dir} is not empty and holds no report of an earlier `fourdfy analyze` "
                          f"({few(entries)}); choose a new or empty folder (it would be replaced)")
    ours = {n.split("/")[0] for n in listed}
    foreign = [e for e in entries if e not in ours]
    if foreign:
        raise OutputError(f"{out_dir} holds files an earlier `fourdfy analyze` did not write "
                          f"({few(foreign)}); move them or choose another folder (it would be replaced)")


def few(names: list[str], k: int = 4) -> str:
    """`a, b, c, d and 2 more`: a list named in one line without flooding it."""
    return ", ".join(names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "")


def replace_folder(out_dir: Path | str, build: Callable[[Path], list[str]]) -> list[str]:
    """Fill a fresh folder with `build(tmp)` (returns the names it wrote) and put it in place of
    `out_dir` (see the module docstring for which existing folders may be replaced).

    A run killed outright between its two renames (`out_dir` -> `.<name>.<hex>.old`, then the built
    `.<name>.<hex>.tmp` -> `out_dir`) leaves `out_dir` missing and its earlier outputs in the `.old`: this call
    first renames that `.old` back to `out_dir` (`_restore_interrupted`), so they survive a failing build, and
    once its own folder is in place removes the leftover temporaries of `out_dir` (`_remove_leftovers`)."""
    shown = Path(out_dir)
    out_dir = Path(os.path.realpath(shown))  # a symlinked folder is replaced where it really lives
    _restore_interrupted(out_dir)
    check_replaceable(out_dir)
    ensure_folder(out_dir.parent)
    try:
        tmp, lock = new_locked_folder(lambda: _temp_sibling(out_dir, "tmp"))
    except OSError as err:
        raise _oserror(shown, err) from None
    old = None
    try:
        try:
            names = build(tmp)
            if out_dir.exists():
                old = _temp_sibling(out_dir, "old")
                out_dir.rename(old)
                try:
                    tmp.rename(out_dir)
                except OSError:
                    old.rename(out_dir)  # put the earlier outputs back
                    old = None
                    raise
            else:
                tmp.rename(out_dir)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _oserror(shown, err) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        _remove_leftovers(out_dir)
    finally:
        if lock is not None:
            os.close(lock)
    return names

"""Atomic checkpoints with everything a bit-identical resume needs (weights, optimizer, RNG states)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from method.fileio import write_atomic


SCHEMA = 2
"""Layout version of checkpoints; runs written by an older layout cannot be resumed."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or belongs to another configuration."""


class CheckpointMismatch(CheckpointError):
    """A checkpoint belongs to another run: other config, prompt, or an older version of the suite."""


def weights_differences(there: dict, here: dict) -> list[str]:
    """The local weights (`model_weights`: {`guidance.<name>.<field>`: SHA-256}) that differ between a saved run
    and this one, as "KEY weights sha256 A there, B here" phrases ("none recorded" for a run that recorded none)."""
    def short(d: dict, key: str) -> str:
        return f"sha256 {d[key][:12]}" if key in d else "none recorded"

    return [f"{key} weights {short(there, key)} there, {short(here, key)} here"
            for key in sorted(set(there) | set(here)) if there.get(key) != here.get(key)]


def check_compatible(data: dict, path: Path, config_hash: str, prompt: str, config: dict | None = None,
                     weights: dict | None = None) -> None:
    """Raise `CheckpointMismatch` unless `data` was written by this exact run (config, prompt and `weights`, the
    digests of the local weights its priors load, {} or None for none); with this run's `config` dict, the
    message names the settings that differ."""
    if data.get("schema") != SCHEMA:
        raise CheckpointMismatch(
            f"{path} was written by an older version of fourdfy-bench (checkpoint layout {data.get('schema', 1)}, "
            f"this version reads {SCHEMA}); its config cannot be matched: start a new run in another --out")
    saved = data.get("model_weights") if isinstance(data.get("model_weights"), dict) else {}
    if data["config_hash"] != config_hash or data["prompt"] != prompt or saved != (weights or {}):
        from method.training.config import run_differences

        differs = run_differences(data, config, prompt) + weights_differences(saved, weights or {})
        raise CheckpointMismatch(
            f"{path} was written by a different run (method {data['method']!r}, config {data['config_hash']}, "
            f"this run {config_hash}{': ' + '; '.join(differs) if differs else ''}); give the same settings, "
            "a checkpoint of this run's config, or another --out")


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save `obj` to `path` atomically; a full disk is an OSError with errno ENOSPC naming `path` (torch's
    own error for it, `[enforce fail at inline_container.cc] unexpected pos`, hides the cause: method.fileio)."""
    write_atomic(path, lambda f: torch.save(obj, f))




def load(path: Path, mmap: bool = False) -> dict:
    """The checkpoint's contents on CPU; `mmap`: tensors mapped from the file, not read (a cheap readability check).
    A file torch cannot read, or one holding something other than a run's saved state (a model's state dict, another
    tool's .pt), is a `CheckpointError` saying which."""
    path = Path(path)
    data, why = _read(path, mmap) if path.is_file() else (None, None)
    if data is not None:
        return data
    if path.name == "last.pt":  # the stage checkpoints beside it may be intact
        raise DamagedLast(path, why, *intact_checkpoints(path.parent))
    raise CheckpointError(f"cannot read checkpoint {path} ({why})" if why else f"checkpoint not found: {path}")


CHECKPOINT_KEYS = ("state", "field")
"""Keys every checkpoint of a run holds (`Trainer._checkpoint`), by which a file is told from other torch files."""


def _read(path: Path, mmap: bool = True) -> tuple[dict | None, str | None]:
    """(the checkpoint in `path`, None) or (None, why it is not one)."""
    import os
    import zipfile

    if not path.is_file():  # (a dangling link, a folder)
        return None, "not a file" + (" (a folder)" if path.is_dir() else "")
    if not os.access(path, os.R_OK):
        return None, "not readable by this user (its permissions)"
    try:
        data = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except Exception as err:  # truncated or foreign file
        with contextlib.suppress(OSError):
            if path.stat().st_size == 0:
                return None, "an empty file"
            if not zipfile.is_zipfile(path):  # torch's own words then advise re-saving a file the user never made
                return None, "not a file torch.save wrote, or one cut short"
        return None, f"{type(err).__name__}: {err}"
    if not isinstance(data, dict) or not all(key in data for key in CHECKPOINT_KEYS):
        held = (f"a dict of {', '.join(map(str, list(data)[:4]))}{', ...' if len(data) > 4 else ''}"
                if isinstance(data, dict) else f"a {type(data).__name__}")
        return None, f"not a checkpoint of a fourdfy run: it holds {held}, not a run's saved state"
    return data, None


def unreadable(path: Path) -> str | None:
    """None when `path` is a checkpoint `load` reads (tensors mapped, not read), else why not."""
    return _read(Path(path))[1]


def intact_checkpoints(folder: Path, leave_out: Path | None = None) -> tuple[list[Path], list[Path]]:
    """The stage checkpoints of a run's `ckpt/` folder (every *.pt but last.pt and `leave_out`: stages may be renamed)
    that `load` reads, in the order the run wrote them (by their saved stage and step), and those it cannot read."""
    intact, damaged = [], []
    for path in sorted(Path(folder).glob("*.pt")):
        if path.name == "last.pt" or path == leave_out:
            continue
        data, why = _read(path)
        if why is not None:
            damaged.append(path)
            continue
        state = data["state"] if isinstance(data["state"], dict) else {}
        intact.append(((state.get("stage_index", 0), state.get("step", 0)), path))
    return [p for _, p in sorted(intact, key=lambda item: item[0])], damaged


class DamagedLast(CheckpointError):
    """A run's ckpt/last.pt is missing or cannot be read.

    Fields: `path` (the last.pt), `reason` (why it cannot be read; None: it is not there), `intact` (the stage
    checkpoints beside it that read, in the order the run wrote them), `damaged` (those that do not), `lead` (words
    before the error, naming what needed the file). `str()` is the one-line error with the way on in `generate`'s
    words; `reworded()` is the same error in another caller's (a sweep has no --out, and is run again after).
    """

    START_AGAIN = "start the run again in a new --out"
    """How `generate` goes on when no stage checkpoint reads."""

    def __init__(self, path: Path, reason: str | None, intact: list[Path], damaged: list[Path], lead: str = "",
                 start_again: str = START_AGAIN, then: str = ""):
        self.path, self.reason, self.intact, self.damaged = Path(path), reason, list(intact), list(damaged)
        self.lead, self.start_again, self.then = lead, start_again, then
        super().__init__(self.message())

    def message(self) -> str:
        """The one-line error: what is wrong with last.pt, then the latest intact stage checkpoint to continue from
        (`--resume-from`, then `then`), or, with none, `start_again`."""
        what = (f"checkpoint not found: {self.path}" if self.reason is None else
                f"cannot read checkpoint {self.path} ({self.reason})")
        also = f" ({', '.join(p.name for p in self.damaged)} damaged too)" if self.damaged else ""
        if not self.intact:
            return f"{self.lead}{what}; no intact stage checkpoint beside it{also}: {self.start_again}"
        return (f"{self.lead}{what}; intact stage checkpoints beside it: {', '.join(p.name for p in self.intact)}"
                f"{also} — continue from the latest with `fourdfy generate ... --resume-from {self.intact[-1]}`"
                f"{self.then}")

    def reworded(self, lead: str | None = None, start_again: str | None = None,
                 then: str | None = None) -> DamagedLast:
        """The same error with other words around it (None: keep these)."""
        return DamagedLast(self.path, self.reason, self.intact, self.damaged,
                           self.lead if lead is None else lead,
                           self.start_again if start_again is None else start_again,
                           self.then if then is None else then)


def rng_state(generator: torch.Generator) -> dict:
    state = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(generator: torch.Generator, state: dict) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

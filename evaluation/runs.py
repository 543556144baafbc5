"""Loading a trained run folder for evaluation: the ONE place that knows a run's layout.

A run folder (written by `fourdfy generate`) holds `manifest.json` (key `config`: the resolved
TrainConfig as a dict, `config_hash`; `seed`, `profile`, `update_counts` per stage, and `request`: the
`--set` values and `--max-steps` as given) and `ckpt/last.pt` (key `field`: the SceneField state dict).
`render_source` turns a run into the `source` of the artifact rendered from it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from .artifacts import SCHEMA, read_json_object


class RunError(ValueError):
    """A run folder is missing pieces, or its config does not rebuild into the hash it was saved with."""


def read_run_manifest(run_dir: Path | str) -> dict:
    """The manifest of a finished run, checked for the keys evaluation needs (no checkpoint is read)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        hint = f" ({run_dir.parent})" if run_dir.name == "manifest.json" else ""
        raise RunError(f"{run_dir} is a file; give the run folder{hint}, the one `fourdfy generate` wrote with "
                       "manifest.json and ckpt/ in it")
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run folder")
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise RunError(_no_manifest(run_dir))
    manifest = read_json_object(path, RunError)
    # an artifact's manifest.json has the same name: say which folder was given, not which key it lacks
    if str(manifest.get("schema", "")).startswith(SCHEMA.split("/")[0] + "/"):  # any version of the schema
        raise RunError(_artifact_given(run_dir, manifest))
    for key in ("config", "config_hash", "prompt", "method"):
        if key not in manifest:
            raise RunError(f"{path}: lacks '{key}'")
    return manifest


def _no_manifest(run_dir: Path) -> str:
    """The error for a folder without manifest.json (`fourdfy generate` writes it when the training ends): a run
    being trained now, an unfinished run (ckpt/ but no manifest: it stopped before the end), or no run at all."""
    resume = f"the command that started it plus --resume (`fourdfy generate ... --out {run_dir} --resume`)"
    if is_being_trained(run_dir):
        return (f"{run_dir} is still being trained (another process holds the run folder) and has no manifest.json "
                "yet, which `fourdfy generate` writes when the training ends: render it once the run has finished")
    if (run_dir / "ckpt").is_dir():
        last = " has ckpt/last.pt but" if (run_dir / "ckpt" / "last.pt").is_file() else ""
        return (f"{run_dir} is an unfinished run: it{last} has no manifest.json (`fourdfy generate` writes it when "
                f"the training ends) and no process is training it, so it stopped before the end; continue it with "
                f"{resume}, then render it")
    return (f"{run_dir}: no manifest.json and no ckpt/: not a run folder of `fourdfy generate` (a finished run holds "
            "both); give a run folder, e.g. runs/x")


def is_being_trained(run_dir: Path) -> bool:
    """Whether a process holds the run folder's lock: `pipelines.generate.run_folder_lock`, an exclusive flock on
    the folder itself (evaluation may not import pipelines; tests check the two agree). Probed with a shared lock,
    released at once; a `generate` starting in that instant would be refused as if the folder were in use."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): nothing can be said
        return False
    try:
        fd = os.open(run_dir, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # a file system without flock
        return False
    finally:
        os.close(fd)  # releases the probe's lock
    return False


def _artifact_given(folder: Path, manifest: dict) -> str:
    """The error for an evaluation artifact folder given where a run folder is read."""
    source = manifest.get("source") if isinstance(manifest.get("source"), dict) else {}
    made = {"render": "`fourdfy render`", "import": "`fourdfy import-videos`"}.get(source.get("kind"),
                                                                                 "`fourdfy render` or `import-videos`")
    origin = f" from run {source['run_path']}" if isinstance(source.get("run_path"), str) else ""
    return (f"{folder} is an evaluation artifact folder (video.mp4 + manifest.json, written by {made}{origin}), "
            "not a training run folder: give the run folder `fourdfy generate` wrote (manifest.json + ckpt/last.pt, "
            "e.g. runs/x); an artifact's video is what `fourdfy clipscore`, `figure` and `survey build` read")


def run_path(run_dir: Path | str, manifest: dict) -> str:
    """The run folder described without making it absolute: `<profile>/<method>/<name>` when its two parent
    folders are named after the run's profile and method (the pipeline's and sweeps' `<runs>/<profile>/<method>/
    <prompt slug>` layout, whatever the runs root), else the folder's own name. Always '/'-separated. The names
    are the path's as given (made absolute, not resolved): a runs folder reached through a symbolic link
    (runs/tiny -> /scratch/...) is described by the link's names, so the same run gives the same record."""
    parts = Path(os.path.abspath(run_dir)).parts
    if len(parts) >= 4 and parts[-3] == manifest.get("profile") and parts[-2] == manifest.get("method"):
        return "/".join(parts[-3:])
    return parts[-1]


def _trained_steps(manifest: dict) -> dict[str, int] | None:
    """Steps trained per stage (the sum of the run's update counts), or None when the manifest has no counts."""
    counts = manifest.get("update_counts")
    # anything else (a hand-edited manifest) is not worth an error after minutes of rendering: not recorded
    if not isinstance(counts, dict) or not all(isinstance(c, dict) and all(type(n) is int for n in c.values())
                                               for c in counts.values()):
        return None
    return {stage: sum(c.values()) for stage, c in counts.items()}


def render_source(run_dir: Path | str, manifest: dict) -> dict:
    """The artifact `source` of a render of this run: what made it, with no absolute path and no time.

    `run` stays the folder's own name (what readers of older artifacts know); `run_path` says more
    (`run_path` above). `set` holds the `--set`/`--set-from` values the run was asked for (the pipeline's
    params.yaml overrides included), {} for none; it and `max_steps` are null where the run's manifest
    records no request (`fourdfy oracle`, older runs). `variant`: the base and keys of a method defined in
    params.yaml's overrides, else null. `steps`: per stage, the steps trained, or null. `init_from`, only for a
    run started from another run's checkpoint with `--init-from`: that checkpoint's `sha256` and the
    `stages_done` taken from it (no path); a run from scratch has no such key (its artifact is as before)."""
    request = manifest.get("request")
    recorded = isinstance(request, dict)
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    start = _init_start(manifest)
    return {
        "kind": "render", "run": Path(os.path.abspath(run_dir)).name, "run_path": run_path(run_dir, manifest),
        "config_hash": manifest["config_hash"], "profile": manifest.get("profile", config.get("profile")),
        "seed": manifest.get("seed", config.get("seed")),
        "set": dict(request.get("set") or {}) if recorded else None,
        "max_steps": request.get("max_steps") if recorded else None,
        "variant": _variant(request.get("variant") if recorded else None),
        "steps": _trained_steps(manifest),
        **({"init_from": start} if start is not None else {}),
    }


def _init_start(manifest: dict) -> dict | None:
    """The `--init-from` start a run recorded (`init_from`, or `request.init_from` where runs recorded it first):
    its checkpoint's sha256 and the stages taken from it; None for a run from scratch or one that recorded none."""
    request = manifest.get("request")
    record = manifest.get("init_from", request.get("init_from") if isinstance(request, dict) else None)
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
        return None
    return {"sha256": record["sha256"], "stages_done": record.get("stages_done")}


def _variant(note) -> dict | None:
    """A variant method's base and keys (`request.variant` of a run of a params.yaml `overrides:` entry with
    `base:`), or None. Its `from` is left out: a `--set-from` path may be absolute."""
    if not isinstance(note, dict):
        return None
    return {"base": note.get("base"), "set": note.get("set")}


def load_run(run_dir: Path | str, device: str = "cpu"):
    """(cfg, field, manifest) of a finished run; the field is in eval mode on `device`."""
    from method import configs
    from method.fields import SceneField
    from method.training.checkpoint import CheckpointError, load
    from method.training.config import TrainConfig

    run_dir = Path(run_dir)
    manifest = read_run_manifest(run_dir)
    path = run_dir / "manifest.json"
    try:
        cfg = configs.from_dict(TrainConfig, manifest["config"])
    except (ValueError, TypeError) as err:
        raise RunError(f"{path}: the config does not fit this version's TrainConfig ({err})") from None
    if cfg.config_hash() != manifest["config_hash"]:
        raise RunError(f"{path}: the config rebuilds to hash {cfg.config_hash()}, the manifest says "
                       f"{manifest['config_hash']} (written by another version of the suite?)")
    try:
        ckpt = load(run_dir / "ckpt" / "last.pt")
    except CheckpointError as err:
        raise RunError(str(err)) from None
    if ckpt.get("config_hash", manifest["config_hash"]) != manifest["config_hash"]:
        raise RunError(f"{run_dir}/ckpt/last.pt belongs to config {ckpt['config_hash']}, "
                       f"the manifest to {manifest['config_hash']}")
    field = SceneField(cfg.field, cfg.background)
    try:
        field.load_state_dict(ckpt["field"])
    except (KeyError, RuntimeError) as err:
        raise RunError(f"{run_dir}/ckpt/last.pt does not fit the run's scene field: {err}") from None
    field = field.to(device).eval()
    field.requires_grad_(False)
    return cfg, field, manifest


def eval_render_config(cfg):
    """The run's renderer settings for evaluation: no jitter, the field's box."""
    return dataclasses.replace(cfg.renderer, box_radius=cfg.field.box_radius, randomized=False)


def final_sigma(cfg) -> float:
    """The density-bias sigma at the end of the last stage (what the finished scene was trained with)."""
    last = cfg.stages[-1]
    return cfg.sigma(last.name, last.steps)

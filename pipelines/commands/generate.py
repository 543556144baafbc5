"""`fourdfy` commands of the generator: info, methods, generate, oracle."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import typer

# the one interrupt machinery; pipelines.cli and commands.evaluate still import exit_interrupted (and the CLI
# sigterm_as_interrupt) from here
from pipelines.interrupts import exit_interrupted, raise_pending_interrupt, sigterm_as_interrupt

INFO_PACKAGES = ("fourdfy-bench", "torch", "torchvision", "triton", "diffusers", "transformers", "peft",
                 "open_clip_torch", "nerfacc", "tinycudann", "numpy")


def info() -> None:
    """Print package versions, the compute device and which accelerated backends are active."""
    import torch

    from method import backends

    typer.echo(f"python      {platform.python_version()} ({platform.machine()})")
    for name in INFO_PACKAGES:
        typer.echo(f"{name:<15} {backends.package_version(name)}")
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        device = f"cuda:0 ({props.name}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})"
    else:
        device = f"cpu ({torch.get_num_threads()} threads)"
    typer.echo(f"device      {device}")
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    typer.echo(f"hash grid   {backends.hash_grid_backend(dev)} backend on {dev} (auto: tinycudann, else Triton on "
               "CUDA, else PyTorch)")
    on_off = {True: "active", False: "inactive"}
    typer.echo(f"renderer    nerfacc CUDA occupancy-grid sampling {on_off[backends.nerfacc_cuda_active()]}"
               f" ({'dense PyTorch sampling + nerfacc compositing' if not backends.nerfacc_cuda_active() else 'packed'})")


def methods(
    params: Path = typer.Option(None, "--params", help="Also list the variants this params.yaml defines (entries of "
                                "overrides: with base:), with their base and changes, and the labels it gives."),
) -> None:
    """List the registered methods (Table 2 / Table 3 rows and plug-ins) with one-line descriptions, and the label
    a plug-in gives its row in the tables; with --params, also a params.yaml's variants. A plug-in that cannot be
    registered is an error after the list (which shows what does work), naming each such plug-in."""
    from baselines import METHODS, config_keys, load_entry_points, register_variants
    from baselines.registry import refused_plugins

    load_entry_points(strict=False)
    data = read_params(params) if params is not None else None  # read once for both checks
    entries = read_overrides(data, params) if data is not None else {}
    register_variants(entries, source=str(params))
    if data is not None:
        refuse_unknown_generate_methods(data, params)
    width = max(len(n) for n in METHODS)
    for name, m in METHODS.items():
        entry = entries.get(name) or {}
        note = "" if m.trainable else "  [videos only]"
        label = entry.get("label") or m.label
        label = f"  [label {label!r}]" if label else ""  # the built-ins' labels are the paper design's
        origin = "" if m.source == "built-in" else f"  [{m.source}]"
        if m.base and "description" in entry:  # the default description of a variant already says this
            changes = ", ".join(f"{k}={v}" for k, v in config_keys(entry).items()) or "no changes"
            origin = f"  [variant of {m.base}: {changes}; {m.source}]"
        typer.echo(f"{name:<{width}}  {m.description}{note}{label}{origin}")
    broken = [r.error for r in refused_plugins()]
    if broken:  # the same error a strict load gives, after the list rather than instead of it
        raise ValueError(broken[0] if len(broken) == 1 else
                         f"{len(broken)} plug-in entry points cannot be loaded: " + "; ".join(broken))


def read_params(path: Path) -> dict:
    """A params.yaml as read. A file that cannot be read, or is not a params file (a YAML mapping with `overrides:`
    or `generate:`; e.g. dvc.yaml, a votes.csv, an empty file), is an error: its variants would be missing from the
    list without a word."""
    from pipelines.generate import read_yaml

    data = read_yaml(path, "--params: ")
    if not isinstance(data, dict) or not ({"overrides", "generate"} & set(map(str, data))):
        what = ("is empty" if data is None else f"holds a YAML {type(data).__name__}, not a mapping"
                if not isinstance(data, dict) else "has neither overrides: nor generate:")
        raise ValueError(f"--params: {path} {what}, so it is not a params file of the pipeline; give params.yaml "
                         "(or a copy of it), whose overrides: defines the variants")
    return data


def read_overrides(data: dict, path: Path) -> dict:
    """The `overrides:` mapping of params `data` (`read_params` of `path`): {} where it has none, with a `note:`."""
    overrides = data.get("overrides")
    if overrides is not None and not isinstance(overrides, dict):
        raise ValueError(f"--params: {path}: overrides must map a method to a mapping of config keys to values")
    if not overrides:
        typer.echo(f"note: --params: {path} has no overrides: mapping, so it defines no variants; the list is the "
                   "registered methods only", err=True)
    return overrides or {}


def refuse_unknown_generate_methods(data: dict, path: Path) -> None:
    """A method of the generate blocks of params `data` (`read_params` of `path`) that is neither registered nor one
    of its variants (after
    `register_variants`) is an error naming it, with a did-you-mean: the pipeline would stop at it. A name under
    `videos:` is left to the `methods` stage (videos only, never trained); a refused plug-in's name to the list's
    own error."""
    from baselines import UnknownMethodError, get_method

    gen = data.get("generate") if isinstance(data.get("generate"), dict) else {}
    extra = gen.get("extra") if isinstance(gen.get("extra"), dict) else {}
    videos = {str(m) for m in data.get("videos") or {}} if isinstance(data.get("videos"), dict) else set()
    for key, names in (("generate.methods", gen.get("methods")), ("generate.extra.methods", extra.get("methods"))):
        for name in (map(str, names) if isinstance(names, list) else ()):
            if name in videos:
                continue
            try:
                get_method(name)
            except UnknownMethodError as err:
                raise ValueError(f"--params: {path}: {key}: {err.head}, neither registered nor a variant of its "
                                 f"overrides{err.tail}") from None
            except ValueError:  # a refused plug-in's name: the error after the list names it
                pass


PATH_SUFFIXES = (".txt", ".csv", ".yaml", ".yml", ".json", ".tsv")


def refuse_a_prompt_file(value: str) -> None:
    """Raise a one-line error when `--prompt` names a file (it would be trained on as the literal text).

    Slugs of the prompt library and prompt texts pass; refused: an existing file, or a word without spaces
    ending in a file suffix (`prompts/ablation_6.txt`, a typo of a file name).
    """
    from prompts import PROMPT_DIR, PromptFileError, load_prompts, slugify

    try:
        if slugify(value) == value:  # a slug, looked up in the library (a file of that name does not matter)
            return
    except PromptFileError:
        return  # no letters or digits: resolve_prompt reports it
    path = Path(value).expanduser()
    looks_like_a_path = not any(c.isspace() for c in value) and path.suffix.lower() in PATH_SUFFIXES
    if not (path.is_file() or looks_like_a_path):
        return
    head = f"--prompt takes one prompt (its text, or a slug of prompts/*.txt), not a file: {value}"
    table = None
    if path.is_file() and path.suffix.lower() == ".txt":  # the prompt library's format
        try:
            table = load_prompts(path)
        except PromptFileError:
            pass
    if table is None:
        raise PromptFileError(f"{head}; give the prompt itself, e.g. --prompt \"A panda dancing.\", or a slug "
                              "such as a_panda_dancing")
    slug, text = next(iter(table.items()))
    if path.resolve().parent == PROMPT_DIR:  # the library's own file: its slugs work everywhere
        raise PromptFileError(f"{head}; train one of its prompts by slug, e.g. --prompt {slug}, or all of them "
                              f"with `fourdfy sweep --prompts-file {value}`")
    raise PromptFileError(f"{head}; give one of its prompts as text, e.g. --prompt \"{text}\", or train all of "
                          f"them with `fourdfy sweep --prompts-file {value}`")


def generate(
    prompt: str = typer.Option(..., "--prompt", help="Prompt text, or a slug of the prompt library (prompts/*.txt)."),
    method: str = typer.Option("4dfy", "--method", help="Registered method (see `fourdfy methods`)."),
    profile: str = typer.Option("tiny", "--profile", help="tiny (CPU, toy priors) | paper | release | release-lowvram (the authors' low-VRAM configs)."),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoints, log, previews, manifest."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random draw."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    auto_resume: bool = typer.Option(False, "--auto-resume",
                                     help="What the pipeline does: resume an unfinished run, skip a finished one, "
                                          "replace only a run the pipeline made with other settings."),
    resume_from: Path = typer.Option(None, "--resume-from",
                                     help="Continue from this checkpoint of the run (e.g. RUN/ckpt/stage2.pt when "
                                          "last.pt is damaged)."),
    init_from: Path = typer.Option(None, "--init-from", help="Start from another run's stage checkpoint."),
    sets: list[str] = typer.Option([], "--set", help="Change any config field: KEY=VALUE with a dotted key, e.g. "
                                   "stages.stage3.steps=20 or guidance.video.guidance_scale=50; * for every entry of a "
                                   "group: guidance.*.frozen.channels_last=true (repeatable)."),
    sets_from: str = typer.Option(None, "--set-from", help="Read KEY: VALUE changes from a YAML mapping, "
                                  "FILE:dotted.key (e.g. params.yaml:overrides.wo_hybrid, as the pipeline does); "
                                  "--set wins on the same key. An entry with base: defines the variant --method "
                                  "names (docs/pipeline.md)."),
    max_steps: int = typer.Option(None, "--max-steps", help="Cap every stage at N steps (a quick try of a method)."),
    recompute: bool = typer.Option(False, "--recompute",
                                   help="Recompute the field and the VAE encoders in backward (activation "
                                        "checkpointing): the same gradients up to float rounding, less GPU memory, "
                                        "slower. The config hash stays, so it can be switched on with --resume "
                                        "(docs/performance.md)."),
    stage_cache: Path = typer.Option(None, "--stage-cache",
                                     help="Share identical first stages between methods through this folder."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="Live bar on a terminal (heartbeat lines are printed either way)."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but the final line."),
) -> None:
    """Train one prompt with one method (Algorithm 1) and write checkpoints, log, previews, manifest."""
    from prompts import library_twin, slugify

    started = False  # run_generate was called: before, nothing was trained or written
    try:
        # Ctrl-C too (SIGTERM: already by pipelines.cli), so that one whose raise was lost still stops the run
        with sigterm_as_interrupt(sigint=True):
            # imported here, seconds (torch): an interrupt meanwhile gets this command's line
            from baselines import UnknownMethodError
            from pipelines.generate import build_config, later_sets, parse_sets
            from pipelines.generate import generate as run_generate
            from pipelines.generate import quiet_libraries, read_set_from, run_folder_lock, run_status

            refuse_a_prompt_file(prompt)
            if stage_cache is not None and stage_cache.exists() and not stage_cache.is_dir():
                # found only when stage 1 ends and tries to store its checkpoint there
                raise ValueError(f"--stage-cache {stage_cache} is a file; give a folder (made if missing)")
            if resume and auto_resume:
                raise ValueError("--resume and --auto-resume are two different rules; give one (docs/pipeline.md)")
            # an entry with base: registers the variant `method` names (its keys are then the method's, applied once)
            file_sets, variant = read_set_from(sets_from, method) if sets_from else ({}, {})
            set_values = later_sets(file_sets, parse_sets(sets))
            try:
                cfg = build_config(profile, method, seed=seed, device=device, sets=set_values, max_steps=max_steps,
                                   recompute=recompute)
            except UnknownMethodError as err:
                if sets_from:  # the variant's entry, if any, was read already
                    raise
                raise UnknownMethodError(err.head, f"{err.tail}; a variant of params.yaml's overrides: trains with "
                                         f"--set-from params.yaml:overrides.{method}") from None
            mode = "auto" if auto_resume else "yes" if resume else "no"
            if resume and resume_from is None and run_status(out) == "empty":
                if out.is_dir():  # a run starting there has no checkpoint yet: its refusal alone, not this note first
                    with run_folder_lock(out):
                        pass
                # --resume starts a run where there is none (a resubmitted job's first try); say so, for a mistyped
                # --out
                typer.echo(f"note: nothing to resume in {out}; starting a new run there", err=True)
            # a finished run that `generate` only checks and returns: not trained now, and the done line says so
            before = _finished_manifest_text(out) if mode != "no" and resume_from is None else None
            # before the training (hours on a GPU profile), so that a mistake can be stopped; after the config and
            # resume checks, so that their refusals stay the one line
            near = library_near_miss(prompt)
            if near is not None:
                typer.echo(f"note: --prompt {prompt!r} is not a prompt of the library; did you mean {near!r}? "
                           "(training it as given)", err=True)
            # before the training too: it matters when the runs are paired (`survey build` refuses such a video); once,
            # when the run starts (a resumed run's refusal, e.g. a damaged checkpoint, stays the one line)
            twin = library_twin(prompt) if resume_from is None and run_status(out) == "empty" else None
            if twin is not None:
                typer.echo(f"note: --prompt {prompt!r} has the slug {slugify(prompt)} of the library prompt {twin!r}; "
                           "runs are paired by slug in the survey and CLIP tables, so this one would be compared with "
                           f"that prompt's runs (--prompt {slugify(prompt)} trains the library prompt itself)",
                           err=True)
            idle = cuda_only_switches(cfg)
            if idle:
                takes, does = ("takes", "it does") if len(idle) == 1 else ("take", "they do")
                typer.echo(f"note: {', '.join(idle)} {takes} effect only on CUDA; this run trains on the CPU, where "
                           f"{does} nothing", err=True)
            quiet_libraries()
            from method.training.trainer import interrupt_check

            # the trainer checks at each step too (after loading the priors, where a finalizer may run the handler)
            with interrupt_check(raise_pending_interrupt):
                raise_pending_interrupt()
                started = True
                manifest = run_generate(cfg, prompt, out, resume=mode, resume_from=resume_from, init_from=init_from,
                                        progress=progress, quiet=quiet,
                                        notes={"set": set_values, "max_steps": max_steps,
                                               **({"variant": variant} if variant else {}),
                                               **({"recompute": True} if recompute else {})},
                                        stage_cache=stage_cache)
    except KeyboardInterrupt as err:
        last = out / "ckpt" / "last.pt"
        if not started:  # (the generic line of pipelines.cli names an --overwrite that generate lacks)
            what = "it stopped before training began (nothing was written); run the same command again"
        elif not last.is_file():
            what = "no checkpoint was written yet, so the same command starts it again"
        elif auto_resume:  # the pipeline's command (a DVC stage): it resumes by itself
            what = f"the same command (--auto-resume; in the pipeline, `dvc repro`) continues from {last}"
        else:
            what = f"the same command with --resume continues from {last}"
        exit_interrupted(err, f"; {what}")
    if before is not None and _json_or_none(before) == manifest:
        typer.echo(f"done: {out} was already finished (config {manifest['config_hash']}); nothing was trained")
    else:
        typer.echo(f"done: {out} (config {manifest['config_hash']}, {stage_times(manifest)})")


NEAR_MISS_CUTOFF = 0.9
"""difflib ratio from which free text counts as a near miss of a library prompt (compared as slugs: case, accents
and punctuation aside). 'a_panda_dancin' / 'a_panda_dancing' is 0.97; one word more or another animal is < 0.9."""


def library_near_miss(prompt: str) -> str | None:
    """The library prompt that free text `prompt` nearly spells ('A panda dancin.' -> 'A panda dancing.'), else None.

    None for a slug (resolve_prompt looks it up, with its own did-you-mean), for a library prompt, and for a text
    with a library prompt's slug (`prompts.library_twin` names that one)."""
    import difflib

    from prompts import PromptFileError, library_files, load_prompts, slugify

    try:
        slug = slugify(prompt)
    except PromptFileError:
        return None
    if slug == prompt:
        return None
    texts: dict[str, str] = {}
    for f in library_files():
        try:
            table = load_prompts(f)
        except PromptFileError:  # generate itself does not read the library for free text: no error here either
            continue
        for key, text in table.items():
            texts.setdefault(key, text)
    if slug in texts:
        return None
    close = difflib.get_close_matches(slug, list(texts), n=1, cutoff=NEAR_MISS_CUTOFF)
    return texts[close[0]] if close else None


def cuda_only_switches(cfg) -> list[str]:
    """The keys of `cfg` switched on that act only on CUDA, when its device resolves to the CPU ([] otherwise):
    `tf32`, and per prior `frozen.cuda_graph` and a `frozen.half_dtype` other than float16 (frozen weights are
    float32 on the CPU). A key on for every prior is named once with `*`. An unusable device: [] (the run
    refuses it)."""
    from method.backends import resolve_device

    try:
        if resolve_device(cfg.device).type != "cpu":
            return []
    except ValueError:
        return []
    keys = ["tf32"] if cfg.tf32 else []
    frozen = {name: getattr(prior, "frozen", None) for name, prior in cfg.guidance.items()}
    frozen = {name: f for name, f in frozen.items() if f is not None}
    for field, on in (("cuda_graph", lambda f: f.cuda_graph),
                      ("half_dtype", lambda f: f.half_precision and f.half_dtype != "float16")):
        names = [name for name, f in frozen.items() if on(f)]
        if names and len(names) == len(frozen) > 1:
            keys.append(f"guidance.*.frozen.{field}")
        else:
            keys += [f"guidance.{name}.frozen.{field}" for name in names]
    return keys


def _finished_manifest_text(out: Path) -> str | None:
    """The text of `out`'s manifest.json where a finished run is (None: none, or not readable as text)."""
    try:
        return (out / "manifest.json").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _json_or_none(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def stage_times(manifest: dict) -> str:
    """'stage1 3s, stage2 3s, stage3 37s', stages loaded from the stage cache marked as such (not trained here)."""
    names = [s["name"] for s in manifest["config"]["stages"]]
    shared = manifest.get("shared_from") or {}
    upto = names.index(shared["stage"]) + 1 if shared.get("stage") in names else 0
    return ", ".join(f"{k} {v:.0f}s" + (f" (shared from {shared.get('method')})" if k in names[:upto] else "")
                     for k, v in manifest["timings_s"].items())


def oracle(
    out: Path = typer.Option(..., "--out", help="Folder for checkpoints and metrics.json."),
    seed: int = typer.Option(0, "--seed", help="Seed of the training's random draws (field initialisation, "
                             "cameras, timesteps); the scene itself is fixed."),
    metrics_out: Path = typer.Option(None, "--metrics", help="Also write the metrics to this JSON file (an existing "
                                     "file only when it is an earlier one of `fourdfy oracle`)."),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="Live bar on a terminal (heartbeat lines are printed either way)."),
) -> None:
    """End-to-end check with exact priors for a known 4D scene; writes metrics.json (PSNR per stage)."""
    # both before the training (minutes), which a bad --metrics used to waste. No --resume: the schedule check
    # needs every prior draw of the run, and a resumed run has not seen those before the stop
    if (out / "ckpt" / "last.pt").exists():
        raise ValueError(f"--out {out} already holds a run (ckpt/last.pt); the oracle check always trains from "
                         "scratch: choose another --out, or remove that folder to run the check again")
    check_oracle_out(out)
    if metrics_out is not None:
        check_oracle_metrics_target(metrics_out)
    try:
        # as `generate`: a signal whose raise was lost (in a finalizer) stops the training at its next step
        with sigterm_as_interrupt(sigint=True):
            # imported here, seconds (torch): an interrupt meanwhile gets this command's line too
            from method.fileio import write_text_atomic
            from method.oracle.check import run_oracle
            from method.training.trainer import interrupt_check

            with interrupt_check(raise_pending_interrupt):
                metrics = run_oracle(out, seed=seed, progress=progress)
    except KeyboardInterrupt as err:  # the generic "run the command again" would meet the refusal above
        kept = (f"; remove {out} (its checkpoints) or give another --out, then run it again"
                if (out / "ckpt" / "last.pt").exists() else "; run the command again")
        exit_interrupted(err, f"; the oracle check always trains from scratch{kept}")
    if metrics_out is not None:
        metrics_out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(metrics_out, json.dumps({k: v for k, v in metrics.items() if k != "train_seconds"},
                                                  indent=2) + "\n")
    width = max(map(len, metrics["passed"]), default=0)
    for key, passed in metrics["passed"].items():
        mark = "ok " if passed else "LOW"
        value = metrics.get(key)
        shown = f"{value:7.2f}" if isinstance(value, (int, float)) else str(value)
        typer.echo(f"{mark} {key:<{width}} {shown}  (threshold {metrics['thresholds'].get(key)})")
    if not all(metrics["passed"].values()):
        raise typer.Exit(1)


ORACLE_LEFTOVERS = ("ckpt", "log.jsonl")
"""What a stopped oracle check leaves in its --out before its first `ckpt/last.pt` (where it may train again)."""


def check_oracle_out(out: Path) -> None:
    """The oracle check writes metrics.json, manifest.json, log.jsonl and ckpt/ into --out, replacing files of those
    names: a new or empty folder, or what a stopped check left there (`ORACLE_LEFTOVERS`); any other folder (an
    analysis, an artifact, a run) is refused, before the training, naming what it holds."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder (new or empty) for the oracle check")
    if not out.is_dir():
        return
    other = sorted(p.name for p in out.iterdir() if p.name not in ORACLE_LEFTOVERS)
    if other:
        shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
        raise ValueError(f"--out {out} holds files the oracle check did not write ({shown}); it writes metrics.json, "
                         "manifest.json, log.jsonl and ckpt/ there: give a new or empty folder")


ORACLE_METRICS_KEYS = ("passed", "thresholds")
"""Top-level keys (each a mapping) of the metrics JSON that `fourdfy oracle` writes (`method.oracle.check.evaluate`)."""


def is_oracle_metrics(path: Path) -> bool:
    """`path` holds what `fourdfy oracle --metrics` writes (a JSON object with `ORACLE_METRICS_KEYS` mappings), or
    nothing (an empty file: nothing is lost). A large file is not one of ours and is not read whole."""
    try:
        if path.stat().st_size == 0:
            return True
        if path.stat().st_size > 1 << 20:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: not UTF-8, not JSON
        return False
    return isinstance(data, dict) and all(isinstance(data.get(k), dict) for k in ORACLE_METRICS_KEYS)


def check_oracle_metrics_target(path: Path) -> None:
    """`oracle --metrics`, as `analyze --metrics` is checked (userstudy.outputs.check_metrics_target): a file path
    whose folder can be made and written, and new, empty or an earlier oracle metrics file; anything else is
    refused, never replaced (a metrics file must not take the place of data). Writes nothing."""
    from userstudy.outputs import check_file_target

    if path.is_dir():
        raise ValueError(f"--metrics {path} is a folder; give a file path, e.g. {path / 'oracle.json'}")
    try:
        check_file_target(path)
    except ValueError as err:  # OutputError: a file in the way of its folder, or a folder that is not writable
        raise ValueError(f"--metrics: {err}") from None
    if path.exists() and not is_oracle_metrics(path):
        raise ValueError(f"--metrics {path} exists and is not a metrics file of `fourdfy oracle` (a JSON object with "
                         f"{' and '.join(ORACLE_METRICS_KEYS)} mappings); only such a file is replaced: move it or "
                         "give --metrics another path")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root `fourdfy` app."""
    app.command("info")(info)
    app.command("methods")(methods)
    app.command("generate")(generate)
    app.command("oracle")(oracle)

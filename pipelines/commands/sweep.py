"""`fourdfy sweep`: the generate matrix as submitit jobs (this machine or SLURM), into the run folders DVC expects."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import typer


def sweep(
    methods: list[str] = typer.Option([], "--methods", help="Methods, comma-separated or repeated; 'all' = every "
                                      "trainable method (plug-ins included)."),
    prompts: list[str] = typer.Option([], "--prompts",
                                      help="Prompts, repeated: each a slug of prompts/*.txt or a prompt's text "
                                      "(commas included: --prompts 'A cat, dancing.'); a value whose "
                                      "comma-separated pieces are all slugs is a list of slugs "
                                      "(a_panda_dancing,a_goat_drinking_beer)."),
    prompts_file: Path = typer.Option(None, "--prompts-file", help="Also every prompt of this file (one per line)."),
    params: Path = typer.Option(None, "--params", help="Read the DVC pipeline's params.yaml: its overrides.<method> "
                                "always apply; its profile, seed, generate.methods and generate.prompts are used "
                                "where --profile, --seed, --methods, --prompts are not given. With neither "
                                "--methods nor --prompts the sweep is exactly the runs of its DVC generate stages "
                                "(generate.extra's included). An entry of overrides: with base: defines a variant "
                                "(docs/pipeline.md)."),
    profile: str = typer.Option(None, "--profile", help="tiny | paper | release | release-lowvram (default: --params' or tiny)."),
    executor: str = typer.Option("local", "--executor", help="local (processes here) | slurm (sbatch)."),
    runs: Path = typer.Option(Path("runs"), "--runs", help="Run root: jobs write RUNS/PROFILE/METHOD/SLUG/ (DVC's)."),
    seed: int = typer.Option(None, "--seed", help="Seed of every run (default: --params' or 0)."),
    sets: list[str] = typer.Option([], "--set", help="Change a config field of every run: KEY=VALUE (repeatable)."),
    max_steps: int = typer.Option(None, "--max-steps", help="Cap every stage at N steps (a quick try)."),
    recompute: bool = typer.Option(False, "--recompute", help="Activation checkpointing in every run, as "
                                   "`fourdfy generate --recompute`: less GPU memory, slower."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N."),
    parallel: int = typer.Option(1, "--array-parallelism", "--parallel",
                                 help="At most K jobs submitted and not yet ended at once."),
    timeout_min: int = typer.Option(24 * 60, "--timeout-min",
                                    help="Time limit of one job; at the limit it checkpoints and is requeued."),
    gpus: int = typer.Option(None, "--slurm-gpus", "--gpus", help="GPUs per job (default: 1 on slurm, 0 locally)."),
    partition: str = typer.Option(None, "--slurm-partition", help="SLURM partition."),
    cpus: int = typer.Option(None, "--cpus-per-task", help="CPU cores per job."),
    mem_gb: float = typer.Option(None, "--mem-gb", help="Memory per job (GB)."),
    slurm_args: list[str] = typer.Option([], "--slurm-arg", help="Extra sbatch option KEY=VALUE, e.g. account=lab, "
                                         "qos=high, constraint=a100 (repeatable)."),
    max_requeues: int = typer.Option(3, "--max-requeues", help="Time-outs after which a job is not requeued again."),
    replace: bool = typer.Option(False, "--replace", help="Retrain runs whose folder holds a run of another config "
                                 "(e.g. after changing --set or --max-steps); without it the sweep refuses them."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Print the jobs in order (who waits for whom) and submit nothing."),
) -> None:
    """Train methods x prompts as submitit jobs into RUNS/PROFILE/METHOD/SLUG (then `dvc commit` or `dvc repro`).

    Killed or pre-empted jobs resume from their last checkpoint (run the same command again: finished runs are skipped). Logs: RUNS/PROFILE/sweep/<method>-<slug>.{out,err} once a job has ended (while it runs: the live log printed as it is submitted); summary: RUNS/PROFILE/sweep/sweep.json; guide: docs/cluster.md.
    """
    from baselines import SWEEP_DIR, register_variants
    from pipelines.generate import parse_sets, read_yaml
    from pipelines.stages import check_generate_videos
    from pipelines.sweep import (ExecutorSpec, SweepSpec, expand_methods, plan, plan_table, read_params, run_sweep,
                                 split_list, summary_table)
    from prompts import load_prompts

    # texts, not slugs: a file outside prompts/ has slugs the library does not know
    prompt_list = prompt_values(prompts) + (list(load_prompts(prompts_file).values()) if prompts_file is not None
                                            else [])
    method_list = split_list(methods)
    methods_of_params = params is not None and not method_list  # the generate blocks' methods, as the DVC stages
    method_sets, variants = {}, {}
    extra_methods, extra_prompts = [], []
    raw = None
    if params is not None:
        # a method both trained and under `videos:` is refused in the `methods` stage's own words (read_params'
        # older check of it is not reached)
        raw = read_yaml(params, "--params: ")
        check_generate_videos(raw if isinstance(raw, dict) else {}, params)
        p = read_params(params)
        method_sets, variants = p["overrides"], p["variants"]
        # before --methods all is expanded, which then includes them; a bad entry fails here, naming it
        register_variants(variants, source=str(params))
        if not method_list and not prompt_list:  # exactly the DVC stages' runs: generate.extra's block too
            extra_methods, extra_prompts = p["extra_methods"], p["extra_prompts"]
        method_list = method_list or p["methods"]
        prompt_list = prompt_list or p["prompts"]
        profile = profile if profile is not None else p["profile"]
        seed = seed if seed is not None else p["seed"]
    profile = profile if profile is not None else "tiny"
    seed = seed if seed is not None else 0
    extra = {}
    for item in slurm_args:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--slurm-arg needs KEY=VALUE (e.g. account=mylab), got {item!r}")
        extra[key.strip()] = value
    spec = SweepSpec(methods=tuple(expand_methods(method_list)), prompts=tuple(prompt_list), profile=profile,
                     runs=runs, seed=seed, device=device, sets=parse_sets(sets), max_steps=max_steps,
                     method_sets=method_sets, variants=variants,
                     variants_from=str(params or "params.yaml"), recompute=recompute,
                     extra_methods=tuple(expand_methods(extra_methods)) if extra_methods else (),
                     extra_prompts=tuple(extra_prompts), replace=replace)
    ex = ExecutorSpec(kind=executor, parallel=parallel, timeout_min=timeout_min,
                      gpus=(1 if executor == "slurm" else 0) if gpus is None else gpus, partition=partition,
                      cpus_per_task=cpus, mem_gb=mem_gb, slurm_args=extra, max_requeues=max_requeues)
    if params is None:
        _refuse_unknown_methods(spec.methods)
    notes = partial(planning_notes, spec, ex, params=raw if isinstance(raw, dict) else None,  # called with the plan
                    methods_of_params=methods_of_params)
    if dry_run:
        jobs = plan(spec)
        notes(jobs)
        typer.echo(plan_table(jobs, replace=replace))
        return
    try:
        summary = run_sweep(spec, ex, echo=typer.echo, on_plan=notes)
    except KeyboardInterrupt as err:
        held = getattr(err, "held", [])
        what = ("its local jobs were stopped; run the same command again to resume them" if executor == "local"
                else "its SLURM jobs keep running (squeue --me); run the same command again once they end, or "
                     "after scancel")
        if held:
            what = (f"a process still trains {', '.join(map(str, held))} (its job did not stop); end it before "
                    "running the same command again")
        # a SIGTERM while jobs run marks the sweep's SweepInterrupted `terminated`; one while planning is a
        # `Terminated`: exit_interrupted tells both from Ctrl-C
        from pipelines.interrupts import exit_interrupted

        exit_interrupted(err, f": {what} (finished runs are skipped, stopped ones resume from their last checkpoint)",
                         subject="sweep ")
    typer.echo(summary_table(summary))
    typer.echo(f"summary: {runs / profile / SWEEP_DIR / 'sweep.json'}")
    bad = [j for j in summary["jobs"] if j["state"] != "done"]
    if bad:
        names = ", ".join(j["name"] for j in bad)
        typer.secho(f"error: {len(bad)} of {len(summary['jobs'])} jobs did not finish ({names});"
                    f" the table above says why (logs of the jobs that ran: {runs / profile / SWEEP_DIR}/<job>.err);"
                    " fix the cause and run the same command again "
                    "(finished runs are skipped, unfinished ones resume from their last checkpoint)",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(2)


def planning_notes(spec, ex, jobs, params: dict | None = None, methods_of_params: bool = False) -> None:
    """The notes `fourdfy generate` gives, and the `methods` stage's on variants, once for the whole sweep (its jobs
    call `pipelines.generate.generate`, which gives none), as `note:` lines on stderr: CUDA-only switches of the
    jobs' configs when the jobs train on the CPU (one line per set of such switches, naming its methods), a prompt
    that nearly spells a library prompt or has a library prompt's slug, and with --params a variant that does not
    take its base's `overrides:` keys; `methods_of_params` (the sweep trains the generate blocks' methods, no
    --methods): also a variant of `overrides:` that no generate block lists."""
    from pipelines.commands.generate import cuda_only_switches, library_near_miss
    from pipelines.generate import build_config
    from pipelines.stages import note_unlisted_variants, note_untaken_base_keys
    from prompts import library_twin, slugify

    planned = {j.method for j in jobs}
    methods = [m for m in dict.fromkeys((*spec.methods, *spec.extra_methods)) if m in planned]
    why = jobs_on_cpu(spec.device, ex)
    if why is not None:
        idle: dict[tuple[str, ...], list[str]] = {}
        for m in methods:
            # the config as the job resolves it on the CPU: cuda_only_switches answers for this machine's device
            cfg = build_config(spec.profile, m, seed=spec.seed, device="cpu", sets=spec.sets_for(m),
                               max_steps=spec.max_steps, recompute=spec.recompute)
            if keys := tuple(cuda_only_switches(cfg)):
                idle.setdefault(keys, []).append(m)
        for keys, names in idle.items():
            takes, does = ("takes", "it does") if len(keys) == 1 else ("take", "they do")
            typer.echo(f"note: {', '.join(keys)} {takes} effect only on CUDA; the jobs of {', '.join(names)} train "
                       f"on the CPU ({why}), where {does} nothing", err=True)
    for text in dict.fromkeys(j.prompt for j in jobs):
        near, twin = library_near_miss(text), library_twin(text)
        if near is not None:
            typer.echo(f"note: prompt {text!r} is not a prompt of the library; did you mean {near!r}? (the sweep "
                       "trains it as given)", err=True)
        if twin is not None:  # before the jobs (as generate gives it before training), whose folders it names
            slug = slugify(text)
            typer.echo(f"note: prompt {text!r} has the slug {slug} of the library prompt {twin!r}; its runs take "
                       f"that prompt's run folders (<method>/{slug}) and are paired with its runs by slug in the "
                       f"survey and CLIP tables (--prompts {slug} trains the library prompt itself)", err=True)
    if params is not None:
        note_untaken_base_keys(params, methods)
        if methods_of_params:
            note_unlisted_variants(params)


def jobs_on_cpu(device: str, ex) -> str | None:
    """Why the sweep's jobs train on the CPU, or None where they may not. `--device cpu` anywhere; `auto` on local
    jobs given no GPU (`--gpus 0`, the local default: submitit hides every GPU from them) or on a machine without
    CUDA. On SLURM only `--device cpu`: whether a node shows a job a GPU is the cluster's affair, unknown here."""
    from method.backends import resolve_device

    if device != "auto":
        try:
            return "--device cpu" if resolve_device(device).type == "cpu" else None
        except ValueError:  # a CUDA device this machine lacks: a local job refuses it, a node may have it
            return None
    if ex.kind != "local":
        return None
    if ex.gpus == 0:
        return "a local job sees no GPU without --gpus N"
    return "no CUDA device on this machine" if resolve_device("auto").type == "cpu" else None


def _refuse_unknown_methods(methods) -> None:
    """An unknown name of a sweep without --params, with the hint `generate` gives: a variant of params.yaml's
    `overrides:` is registered only by reading that file (the plan would only say "unknown method")."""
    from baselines import UnknownMethodError, get_method

    for name in methods:
        try:
            get_method(name)
        except UnknownMethodError as err:
            raise UnknownMethodError(err.head, f"{err.tail}; a variant of params.yaml's overrides: is swept with "
                                     "--params params.yaml") from None


def prompt_values(values: list[str]) -> list[str]:
    """The prompts of the --prompts values. A value is split on commas only when every piece is slug-shaped (its own
    slug: 'a_panda_dancing,a_goat_drinking_beer'); any other value is one prompt's text, commas and all ('A cat,
    dancing.'), so a prompt is never cut into pieces that are each trained as a prompt of its own. A value that
    mixes library slugs with text is refused: it is read neither way without guessing."""
    from prompts import PromptFileError, library, slugify

    def slug_shaped(piece: str) -> bool:
        try:
            return slugify(piece) == piece
        except PromptFileError:  # no letters or digits: not a slug
            return False

    out = []
    for value in values:
        pieces = [p.strip() for p in value.split(",") if p.strip()]
        if all(slug_shaped(p) for p in pieces):
            out += pieces
            continue
        if len(pieces) > 1:
            known = {slug for table in library().values() for slug in table}
            mixed = [p for p in pieces if p in known]
            if mixed:
                raise ValueError(f"--prompts {value!r} mixes library slugs ({', '.join(mixed)}) with prompt text, so "
                                 "it is neither a list of slugs nor one prompt's text; give each prompt as its own "
                                 "--prompts (a prompt's text may contain commas: --prompts 'A cat, dancing.')")
        out.append(value.strip())
    return out


def register(app: typer.Typer) -> None:
    """Add `fourdfy sweep` to the root app."""
    app.command("sweep")(sweep)

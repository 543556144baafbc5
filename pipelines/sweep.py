"""Fan the generate matrix (methods x prompts) out to a cluster with submitit, into the run folders DVC expects.

One job per (method, prompt) calls `pipelines.generate.generate(..., resume="auto")` into
`<runs>/<profile>/<method>/<prompt slug>/`, sharing identical first stages through
`<runs>/<profile>/.stage-cache/` -- the same folders and the same code as the DVC `generate` stage, so a
later `dvc commit` / `dvc repro` picks the runs up (docs/cluster.md).

- Requeue-safe: a job is a `submitit.helpers.Checkpointable`; on pre-emption or time-out (SIGUSR2) submitit
  calls `checkpoint()`, which resubmits the same job, and `resume="auto"` continues from the run's last
  checkpoint (`ckpt/last.pt`). A job killed outright (SIGKILL, node loss) is reported; running the same
  sweep again resumes it the same way, and skips finished runs without submitting them. A run folder whose
  manifest.json cannot be read fails its own job, unsubmitted (or, damaged after the sweep checked it, when the job
  runs), with how a sweep goes on; the other jobs run.
- Order: jobs of one prompt whose first stages are identical (decided from the resolved configs, as the
  stage cache does) form a group; its leader (the job sharing the most stages with the others) runs first
  and the others start when it has ended, so they load its stages from the cache instead of training them.
- Every ended job's stdout/stderr is copied to `<runs>/<profile>/sweep/<method>-<slug>.{out,err}` (a local job a
  Ctrl-C stopped too); the summary (one row per job: state, error, resumes, shared stages) is printed, its paths
  as the sweep was given them and a failed job's hint spelling out its `fourdfy generate` command, and written to
  `sweep/sweep.json` with paths relative to `<runs>/<profile>` and no timestamps or job ids.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import submitit
from submitit.core.utils import FailedJobError

# the folders beside the method folders of <runs>/<profile>/ are named in baselines, whose registry refuses them as
# method names
from baselines import STAGE_CACHE, SWEEP_DIR
from method.fileio import write_atomic, write_text_atomic
from method.training.checkpoint import DamagedLast
from pipelines.generate import (PIPELINE_MARKER, DamagedManifest, RunInUse, as_set_values, build_config,
                                check_final_checkpoint, describe_mismatch, finished_manifest, generate, other_run,
                                quiet_libraries, read_yaml, run_folder_lock, run_status, unknown_override_names,
                                unknown_overrides_text, weights_digests)
from pipelines.interrupts import held, raise_pending_interrupt, sigterm_as_interrupt, sigterm_received
from pipelines.stages import check_generate_videos, check_videos_entries
from prompts import resolve_prompt, slugify

EXECUTORS = ("local", "slurm")
BUSY_HOW = ("e.g. a job of an earlier sweep that was killed with SIGKILL: on this machine `ps -ef | grep submitit` "
            "lists it and `kill -INT PID` stops it at its last checkpoint (a job ignores SIGTERM), on SLURM "
            "`squeue --me` and `scancel JOBID`")
"""How to find the process that still trains a run folder (named in the sweep's refusals)."""


@dataclass(frozen=True)
class ExecutorSpec:
    """Where and how the jobs run (submitit executor parameters)."""

    kind: str = "local"
    """'local' (processes on this machine, submitit's LocalExecutor) or 'slurm' (sbatch, SlurmExecutor)."""
    parallel: int = 1
    """At most this many jobs submitted and not yet ended at once (local: running processes)."""
    timeout_min: int = 24 * 60
    """Wall-clock limit of one job in minutes; at the limit the job checkpoints and is requeued."""
    gpus: int = 0
    """GPUs per job (slurm: --gpus-per-node; local: CUDA_VISIBLE_DEVICES of the job)."""
    partition: str | None = None
    """SLURM partition (None: the cluster's default)."""
    cpus_per_task: int | None = None
    """CPU cores per job (None: the scheduler's default)."""
    mem_gb: float | None = None
    """Memory per job in GB (None: the scheduler's default)."""
    signal_delay_s: int = 120
    """Seconds between the pre-emption/time-out signal and the kill (the job exits at once; ample)."""
    max_requeues: int = 3
    """Time-outs after which a job is no longer requeued (pre-emptions do not count)."""
    slurm_args: dict = field(default_factory=dict)
    """Extra sbatch options, e.g. {'account': 'lab', 'qos': 'high', 'constraint': 'a100'}."""
    poll_s: float | None = None
    """Seconds between status checks (None: 1 for local, 30 for slurm)."""

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"unknown executor {self.kind!r}; choose one of {', '.join(EXECUTORS)}")
        if self.parallel < 1:
            raise ValueError(f"--array-parallelism must be >= 1, got {self.parallel}")
        if self.timeout_min < 1:
            raise ValueError(f"--timeout-min must be >= 1, got {self.timeout_min}")

    @property
    def poll_seconds(self) -> float:
        return self.poll_s if self.poll_s is not None else (1.0 if self.kind == "local" else 30.0)


@dataclass(frozen=True)
class SweepSpec:
    """What to train: methods x prompts at one profile and seed, with optional config changes."""

    methods: tuple[str, ...]
    """Registered method names (trainable; `fourdfy methods`)."""
    prompts: tuple[str, ...]
    """Prompt slugs of the prompt library, or prompt texts."""
    profile: str = "tiny"
    """Profile of every run (tiny | paper | release | release-lowvram)."""
    runs: Path = Path("runs")
    """Root of the run folders: jobs write `<runs>/<profile>/<method>/<prompt slug>/`."""
    seed: int = 0
    """Seed of every run."""
    device: str = "auto"
    """Device of the jobs (auto: cuda where the job sees a GPU)."""
    sets: dict = field(default_factory=dict)
    """Dotted config keys -> values as typed (`--set`); recorded in each manifest as `fourdfy generate` does."""
    method_sets: dict = field(default_factory=dict)
    """Per method, dotted keys -> values (params.yaml `overrides:`, as the DVC stages apply them); `sets` wins."""
    variants: dict = field(default_factory=dict)
    """Methods defined as data: name -> its params.yaml `overrides:` entry with `base:` (baselines.variant);
    registered where the sweep is planned and again in each job's process, whose registry starts without them."""
    variants_from: str = "params.yaml"
    """The file `variants` were read from (named in their errors and in each run's manifest)."""
    max_steps: int | None = None
    """Cap every stage at this many steps (quick tries); None: the profile's steps."""
    recompute: bool = False
    """Activation checkpointing in every run (`fourdfy generate --recompute`): less GPU memory, slower."""
    extra_methods: tuple[str, ...] = ()
    """A second block of runs, extra_methods x extra_prompts (params.yaml `generate.extra`; empty: none)."""
    extra_prompts: tuple[str, ...] = ()
    """The second block's prompts (slugs or texts)."""
    replace: bool = False
    """Retrain the pipeline's runs whose folder holds a run of another config; without it the sweep refuses them."""

    def sets_for(self, method: str) -> dict:
        """The `--set` values of one method's runs: its params.yaml overrides, then the sweep's own."""
        from pipelines.generate import later_sets

        return later_sets(self.method_sets.get(method, {}), self.sets)

    def register_variants(self) -> None:
        """Register `variants` (as `fourdfy generate --set-from FILE:overrides.NAME` does for one of them)."""
        from baselines import register_variants

        register_variants(self.variants, source=self.variants_from)

    def notes_for(self, method: str) -> dict:
        """What each run of `method` records in its manifest, as `fourdfy generate` does."""
        from pipelines.generate import variant_note

        notes = {"set": self.sets_for(method), "max_steps": self.max_steps}
        if method in self.variants:
            notes["variant"] = variant_note(self.variants[method], f"{self.variants_from}:overrides.{method}")
        return notes

    @property
    def profile_dir(self) -> Path:
        return Path(self.runs) / self.profile


@dataclass(frozen=True)
class PlannedJob:
    """One (method, prompt) of the sweep, with its resolved config hash and its place in the order."""

    name: str
    """`<method>-<prompt slug>` (as DVC names the matrix stage `generate@<method>-<slug>`)."""
    method: str
    """Registered method."""
    prompt: str
    """Prompt text."""
    slug: str
    """Prompt slug (the run folder's name)."""
    out: Path
    """Run folder."""
    config_hash: str
    """Hash of the resolved config (the job checks it rebuilds the same config)."""
    after: str | None
    """Name of the job this one waits for (the leader of its stage-sharing group), or None."""
    shared_stages: int
    """Stages this job can load from its leader through the stage cache (0: none)."""
    shared_checkpoint: Path | None = None
    """The stage-cache file those stages are loaded from (the leader writes it when it trains them)."""


class GenerateJob(submitit.helpers.Checkpointable):
    """The callable a submitit job runs: one `generate(..., resume="auto")` into the DVC run folder.

    `checkpoint()` (inherited) resubmits this same object when the job is pre-empted or times out;
    nothing needs saving then, because `resume="auto"` continues from the run's own `ckpt/last.pt`
    (lost work: at most the trainer's `checkpoint_every` steps / `checkpoint_every_s` seconds).
    """

    def __init__(self, spec: SweepSpec, method: str, prompt: str, out: Path, stage_cache: Path, config_hash: str):
        self.spec = spec
        self.method = method
        self.prompt = prompt
        self.out = Path(out)
        self.stage_cache = Path(stage_cache)
        self.config_hash = config_hash

    def __call__(self) -> dict:
        try:
            return self._train()
        except KeyboardInterrupt:
            # the sweep cancelled it (Ctrl-C, SIGTERM: SIGINT to the job), or `kill -INT`: one line in the job's log,
            # as `generate` gives, not a traceback; the run resumes from its last checkpoint in the next sweep
            print("error: interrupted; run the same sweep again to resume the run from its last checkpoint (or to "
                  "start it, if it wrote none yet)", file=sys.stderr, flush=True)
            raise SystemExit(130) from None  # 128 + SIGINT, as `generate` exits

    def _train(self) -> dict:
        s = self.spec
        s.register_variants()
        cfg = build_config(s.profile, self.method, seed=s.seed, device=s.device, sets=s.sets_for(self.method),
                           max_steps=s.max_steps, recompute=s.recompute)
        if cfg.config_hash() != self.config_hash:
            raise RuntimeError(f"method {self.method!r} resolves to config {cfg.config_hash()} on this node but to "
                               f"{self.config_hash} where the sweep was planned; install the same versions of "
                               "fourdfy-bench and its plug-ins on every node")
        # a requeued attempt finds the first one's run: the summary reports what the first attempt found
        if "_before" not in self.__dict__:
            before = run_status(self.out)
            if other_run(self.out, self.config_hash, self.prompt) is not None:
                before = f"other-{before}"  # generate replaces it (the sweep checked --replace before submitting)
            self._before = before
        before = self._before
        quiet_libraries()  # a job is its own process: silence the model libraries as the CLI does
        try:
            manifest = generate(cfg, self.prompt, self.out, resume="auto", stage_cache=self.stage_cache,
                                progress=False, notes=s.notes_for(self.method))
        except Exception as err:
            # submitit's pre-emption handler requeued this job and then exits by raising inside whatever runs; a
            # library call (e.g. safetensors reading weights) can turn that into an ordinary error, which would
            # mark the requeued job failed. End as the handler meant to: the resubmission resumes from last.pt.
            if getattr(self, "_preempted", False):
                raise SystemExit(_requeue_exit_code()) from None
            if isinstance(err, RunInUse):  # taken after the sweep checked it: say what fits a sweep (no --out)
                raise RunInUse(f"{self.out} is being trained by another process; wait for it to end or end it "
                               f"({BUSY_HOW}), then run the same sweep again") from None
            if isinstance(err, DamagedManifest):  # damaged after the sweep checked it (e.g. while this job waited)
                raise damaged_in_sweep_words(err) from None
            raise
        return {"before": before, "config_hash": manifest["config_hash"], **run_facts(manifest)}


    def checkpoint(self, *args, **kwargs):
        """submitit calls this on pre-emption or time-out, before it requeues the job."""
        self._preempted = True
        return super().checkpoint(*args, **kwargs)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_preempted", None)  # the resubmitted job starts afresh
        return state


def _requeue_exit_code() -> int:
    """How submitit's handler ends a requeued job: the local executor restarts on its own code, SLURM on any."""
    from submitit.local.local import LOCAL_REQUEUE_RETURN_CODE, LocalJobEnvironment

    return LOCAL_REQUEUE_RETURN_CODE if isinstance(submitit.JobEnvironment(), LocalJobEnvironment) else -1


def _shared_depth(a, b) -> int:
    """Stages b can load from a's stage cache: the longest equal stage prefix ending in a trained stage."""
    depth = 0
    for n in range(1, min(len(a.stages), len(b.stages))):  # the last stage is never cached
        if a.stage_prefix_hash(n) != b.stage_prefix_hash(n):
            break
        if a.stages[n - 1].steps > 0 and b.stages[n - 1].steps > 0:
            depth = n
    return depth


def plan(spec: SweepSpec) -> list[PlannedJob]:
    """Resolve every config (bad methods, keys or prompts fail here, before anything is submitted) and order the jobs.

    Per prompt, the jobs of both blocks (methods x prompts, and extra_methods x extra_prompts) connected by
    shared first stages form a group; its leader is the job sharing the most stages with the others (first
    listed on ties) and every other job of the group waits for it. A run in both blocks is an error, as DVC's
    overlapping outputs are.
    """
    from baselines import get_method

    spec.register_variants()
    if not spec.methods:
        raise ValueError("no methods given: --methods 4dfy,wo_hybrid (or 'all'; see `fourdfy methods`)")
    if not spec.prompts:
        raise ValueError("no prompts given: --prompts a_panda_dancing,... (slugs of prompts/*.txt) or --prompts-file")
    blocks = [(spec.methods, spec.prompts)]
    if spec.extra_methods and spec.extra_prompts:
        blocks.append((spec.extra_methods, spec.extra_prompts))
    texts: dict[str, str] = {}
    methods_of: dict[str, list[str]] = {}  # slug -> its methods, in listed order (main block first)
    for block, (methods, prompts) in enumerate(blocks):
        if len(set(methods)) != len(methods):
            raise ValueError(f"a method is listed twice in --methods {','.join(methods)}")
        slugs = []
        for p in prompts:
            text = resolve_prompt(p)
            slug = slugify(text)  # a library slug is the slug of its text
            if slug in slugs:
                raise ValueError(f"prompt {p!r} is listed twice (slug {slug!r})")
            slugs.append(slug)
            texts[slug] = text
        for slug in slugs:
            listed = methods_of.setdefault(slug, [])
            both = [f"{m}-{slug}" for m in methods if m in listed]
            if both:
                raise ValueError(f"run(s) {', '.join(both)} are in both generate and generate.extra; list each "
                                 "(method, prompt) in one block")
            listed += methods
    order = list(dict.fromkeys(m for methods, _ in blocks for m in methods))
    for name in order:
        if not get_method(name).trainable:
            raise ValueError(f"method {name!r} has no trainer (videos only): bring its videos in with "
                             "`fourdfy import-videos` and leave it out of the sweep")
    configs = {m: build_config(spec.profile, m, seed=spec.seed, device=spec.device, sets=spec.sets_for(m),
                               max_steps=spec.max_steps, recompute=spec.recompute) for m in order}
    depth = {(a, b): _shared_depth(configs[a], configs[b]) for a in order for b in order if a != b}
    from method.training.trainer import cached_stage_path

    cache = spec.profile_dir / STAGE_CACHE
    # the trainer keys its stage cache by the local weights too: the same digests, hashed once per method
    weights = {m: weights_digests(c.to_dict()) for m, c in configs.items()}
    jobs = []
    for slug, methods in methods_of.items():
        leader_of = _leaders(methods, depth)
        # leaders first, so that with parallel=1 the order of submission is the order of need
        for m in sorted(methods, key=lambda x: (leader_of[x] is not None, methods.index(x))):
            lead = leader_of[m]
            jobs.append(PlannedJob(name=f"{m}-{slug}", method=m, prompt=texts[slug], slug=slug,
                                   out=spec.profile_dir / m / slug, config_hash=configs[m].config_hash(),
                                   after=None if lead is None else f"{lead}-{slug}",
                                   shared_stages=0 if lead is None else depth[(lead, m)],
                                   shared_checkpoint=None if lead is None or not depth[(lead, m)] else
                                   cache / cached_stage_path(configs[m], texts[slug], depth[(lead, m)] - 1,
                                                     weights[m])))
    return jobs


def _leaders(order: list[str], depth: dict) -> dict[str, str | None]:
    """Each method's leader among `order` (None: it leads), over the groups connected by shared stages."""
    leader_of: dict[str, str | None] = {}
    seen: set[str] = set()
    for m in order:  # connected components under "shares at least one stage"
        if m in seen:
            continue
        group, todo = [], [m]
        while todo:
            x = todo.pop()
            if x in seen:
                continue
            seen.add(x)
            group.append(x)
            todo += [y for y in order if y != x and depth[(x, y)] > 0 and y not in seen]
        group.sort(key=order.index)
        leader = max(group, key=lambda x: (sum(depth[(x, y)] for y in group if y != x), -order.index(x)))
        for x in group:
            leader_of[x] = None if x == leader else leader
    return leader_of


def check_executor(ex: ExecutorSpec) -> None:
    """The executor can submit here (SLURM: sbatch on PATH); checked before the sweep makes any folder."""
    if ex.kind == "slurm" and shutil.which("sbatch") is None:
        raise RuntimeError("--executor slurm needs SLURM's sbatch on PATH: run the sweep on the cluster's login "
                           "node, or use --executor local")


def make_executor(ex: ExecutorSpec, folder: Path):
    """A submitit executor for `ex.kind` with the job resources set (logs and pickles under `folder/<job id>`)."""
    params: dict = {"timeout_min": ex.timeout_min, "gpus_per_node": ex.gpus, "tasks_per_node": 1, "nodes": 1}
    if ex.kind == "local":
        # LocalExecutor directly: AutoExecutor does not pass the signal delay to local jobs
        executor = submitit.LocalExecutor(folder / "%j", max_num_timeout=ex.max_requeues)
        executor.update_parameters(signal_delay_s=ex.signal_delay_s, **params)
        return executor
    check_executor(ex)
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm", slurm_max_num_timeout=ex.max_requeues)
    if ex.cpus_per_task is not None:
        params["cpus_per_task"] = ex.cpus_per_task
    if ex.mem_gb is not None:
        params["mem_gb"] = ex.mem_gb
    params["slurm_signal_delay_s"] = ex.signal_delay_s
    if ex.partition:
        params["slurm_partition"] = ex.partition
    if ex.slurm_args:
        params["slurm_additional_parameters"] = dict(ex.slurm_args)
    executor.update_parameters(**params)
    return executor


def _released(folder: Path, until: float) -> bool:
    """Whether no process trains `folder` (its run-folder lock is free) by the monotonic time `until`."""
    while True:
        try:
            with run_folder_lock(folder):
                return True
        except RunInUse:
            if time.monotonic() >= until:
                return False
            time.sleep(0.2)
        except FileNotFoundError:
            return True  # never made: nothing trains it


def run_facts(manifest: dict) -> dict:
    """What the summary shows of a run: its resumes, the stage it loaded from the stage cache, its seconds. A field
    of another type than the trainer writes (a manifest edited by hand or written by another tool) is None, unknown,
    and `odd` says what each such field is instead, so that one odd manifest does not stop the whole sweep's summary."""
    odd: dict[str, str] = {}
    resumes = manifest.get("resumes", [])
    if not isinstance(resumes, list):
        odd["resumes"] = f"{_json_kind(resumes)}, not a list"
    shared = manifest.get("shared_from")
    stage = shared.get("stage") if isinstance(shared, dict) else None
    if shared is not None and not isinstance(shared, dict):
        odd["shared_from"] = f"{_json_kind(shared)}, not an object"
    elif stage is not None and not isinstance(stage, str):
        odd["shared_from"] = f"an object whose stage is {_json_kind(stage)}, not a string"
        stage = None
    timings = manifest.get("timings_s", {})
    if not isinstance(timings, dict):
        odd["timings_s"] = f"{_json_kind(timings)}, not an object"
    elif not all(type(v) in (int, float) for v in timings.values()):  # (a boolean is an int, not a time)
        odd["timings_s"] = "an object with a value that is not a number"
    return {"resumes": len(resumes) if "resumes" not in odd else None, "shared_from": stage,
            "seconds": round(sum(timings.values()), 1) if "timings_s" not in odd else None, "odd": odd}


def _json_kind(value) -> str:
    """What a JSON value is, in words ('a list', 'a number')."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _done(note: str, facts: dict) -> dict:
    """A done job's row of the summary from its `run_facts`; an odd manifest's fields are named under
    `odd_manifest` (field -> what it is instead) and shown as unknown."""
    row = {"state": "done", "note": note, **{k: facts[k] for k in ("resumes", "shared_from", "seconds")}}
    if facts.get("odd"):
        row["odd_manifest"] = dict(facts["odd"])
    return row


def _odd_text(odd: dict[str, str]) -> str:
    """An odd manifest's fields in words, e.g. 'resumes is a number, not a list; ...: shown as unknown'."""
    return "; ".join(f"{k} is {v}" for k, v in odd.items()) + ": shown as unknown"


def _odd_line(j: PlannedJob, odd: dict[str, str]) -> str:
    """The sweep's line on a job whose manifest has odd fields (its run path relative, as in sweep.json)."""
    return f"odd manifest {j.name}: {j.method}/{j.slug}/manifest.json: {_odd_text(odd)}"


_EXCEPTION_LINE = re.compile(r"(?:[A-Za-z_]\w*\.)*(?:[A-Z][a-z0-9]*[A-Z]\w*|Exception|Exit)(?::|$)")
"""A traceback's line naming its exception by a CamelCase name (`RunInUse: ...`, `torch.OutOfMemoryError: ...`,
`pipelines.generate.DamagedManifest: ...`); a message's own lines ("Note: ...") have one capital."""


def _error_line(err: BaseException, state: str) -> tuple[str, str]:
    """(state, one-line error) of a job that did not return."""
    if isinstance(err, FailedJobError):
        text = str(err)
        trace = text.split("-" * 22)[1] if text.count("-" * 22) >= 2 else text
        lines = [line.strip() for line in trace.strip().splitlines() if line.strip()]
        # the error's own line ('pkg.ModelNotFoundError: Zeroscope (guidance.video.model): ...') and the lines its
        # message goes on with: the last line alone may be a message's closing hint that names nothing
        start = max((i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)), default=len(lines) - 1)
        last = " ".join(lines[start:]) if lines else "unknown error"
        # 'pkg.module.SomeError: message' -> 'SomeError: message'
        last = re.sub(r"^(?:[a-z_]\w*\.)+(?=[A-Z]\w*:)", "", last)
        return "failed", last
    return "killed", (f"the job ended without a result (scheduler state {state}): killed, out of memory or its "
                      "node was lost; run the same sweep again to resume it from ckpt/last.pt")


SWEEP_RESUME = "run the same sweep again"
"""How a sweep continues a run whose damaged manifest was removed (its jobs resume by themselves; no --resume)."""
SWEEP_RETRAIN = "run the same sweep again to train it"
"""How a sweep trains a run whose folder was moved away."""


def damaged_in_sweep_words(err: DamagedManifest) -> DamagedManifest:
    """A `DamagedManifest` with the way on a sweep has (it has none of `generate`'s options)."""
    return err.reworded(SWEEP_RESUME, SWEEP_RETRAIN)


DAMAGED_MANIFEST, FINAL_UNREADABLE = "manifest.json damaged", "final checkpoint unreadable"
"""The two kinds of damage by which a finished run's job is not submitted (`_finished`), as the plan names them."""


def _finished(j: PlannedJob) -> tuple[dict | None, tuple[str, str] | None]:
    """(the manifest of j's finished run of its config and prompt, else None; where its run folder's manifest.json
    cannot be read, or the finished run's final checkpoint (what `render` and the generate stage read), the kind of
    damage (`DAMAGED_MANIFEST`, `FINAL_UNREADABLE`) and the one-line error naming it, what is wrong and how a sweep
    goes on, else None)."""
    try:
        done = finished_manifest(j.out.resolve(), j.config_hash, j.prompt)
    except DamagedManifest as err:
        return None, (DAMAGED_MANIFEST, str(damaged_in_sweep_words(err)))
    if done is not None:
        try:
            check_final_checkpoint(j.out.resolve())
        except DamagedLast as err:  # its generate stage would fail on it: not done
            # with no stage checkpoint to continue from, a sweep trains it anew once the run is moved away
            err = err.reworded(start_again=f"move {j.out.resolve()} away, then {SWEEP_RETRAIN}",
                               then=f"; then {SWEEP_RESUME}")
            return None, (FINAL_UNREADABLE, str(err))
    return done, None


def _copy_log(src: Path, dst: Path) -> None:
    write_atomic(dst, lambda f: f.write(src.read_bytes() if src.is_file() else b""))


def _relative(text: str, profile_dir: Path) -> str:
    """Error text without this machine's absolute paths: run paths relative to <runs>/<profile>, as in sweep.json."""
    return text.replace(str(profile_dir.resolve()) + os.sep, "")


def _as_given(text: str, profile_dir: Path) -> str:
    """Error text for the console: run paths under <runs>/<profile> as the sweep was given it (usable from where it
    was started), where sweep.json keeps them relative (`_relative`)."""
    return text.replace(str(profile_dir.resolve()) + os.sep, str(profile_dir) + os.sep)


def generate_command(spec: SweepSpec, j: PlannedJob) -> str:
    """The `fourdfy generate` command that resolves job `j`'s config (as its job did) into its run folder, its paths
    as the sweep was given them (usable from where it was started): what a hint's `fourdfy generate ...` means."""
    import shlex

    try:
        prompt = j.slug if resolve_prompt(j.slug) == j.prompt else j.prompt
    except ValueError:  # not a library slug: its text
        prompt = j.prompt
    args = ["fourdfy", "generate", "--method", j.method, "--prompt", prompt, "--profile", spec.profile,
            "--out", str(spec.profile_dir / j.method / j.slug)]
    args += ["--seed", str(spec.seed)] if spec.seed else []
    args += ["--device", spec.device] if spec.device != "auto" else []
    if j.method in spec.variants:
        args += ["--set-from", f"{spec.variants_from}:overrides.{j.method}"]
    for key, value in spec.sets_for(j.method).items():
        args += ["--set", f"{key}={value}"]
    args += ["--max-steps", str(spec.max_steps)] if spec.max_steps is not None else []
    args += ["--recompute"] if spec.recompute else []
    return shlex.join(args)


def _console(text: str, spec: SweepSpec, j: PlannedJob) -> str:
    """A job's error as the console shows it: its paths as the sweep was given them (sweep.json's are relative to
    <runs>/<profile>, which a command run from here would not find) and a hint's `fourdfy generate ...` spelt out
    for this job."""
    return _as_given(text, spec.profile_dir).replace("`fourdfy generate ... ", f"`{generate_command(spec, j)} ")


def run_sweep(spec: SweepSpec, ex: ExecutorSpec, echo: Callable[[str], None] = print,
              on_submit: Callable[[PlannedJob, object], None] | None = None,
              on_plan: Callable[[list[PlannedJob]], None] | None = None) -> dict:
    """Plan, submit in order, wait, collect logs and exit states; returns the summary written to sweep.json.

    `on_submit(job, submitit_job)` is called after each submission (tests use it to interrupt a job); `on_plan(jobs)`
    once when the plan has passed every check, before the first submission (the command's notes on the plan).
    """
    jobs = plan(spec)
    check_executor(ex)
    profile_dir = spec.profile_dir
    sweep_dir = profile_dir / SWEEP_DIR
    sweep_dir.mkdir(parents=True, exist_ok=True)
    # (the lock file stays after the sweep: an flock ends with its process, so a leftover file blocks nothing).
    # Ctrl-C and SIGTERM as KeyboardInterrupt, held while a job is submitted and recorded (pipelines.interrupts);
    # SIGINT whatever its handler was: the sweep stops its local jobs with it, and they inherit an ignored one
    with _sweep_lock(sweep_dir), sigterm_as_interrupt(sigint_always=True):
        try:
            _refuse_busy_runs(jobs)
            stale = _other_runs(jobs)
            _refuse_other_runs(spec, jobs, stale)
            if on_plan is not None:  # after the refusals, so that a refusal stays the one line
                on_plan(jobs)
            return _run(spec, ex, jobs, echo, on_submit, stale=stale)
        finally:
            # submitit's local job controller makes the executor's folder pattern itself, unformatted: a stray empty
            # `%j` (also one an earlier, killed sweep left)
            with contextlib.suppress(OSError):
                (sweep_dir / "submitit" / "%j").rmdir()


def busy_runs(jobs: list[PlannedJob]) -> list[Path]:
    """The run folders of `jobs` another process trains now (their run-folder lock is held)."""
    busy = []
    for j in jobs:
        try:
            with run_folder_lock(j.out):
                pass
        except RunInUse:
            busy.append(j.out)
        except (FileNotFoundError, NotADirectoryError):
            pass  # not made yet: nothing trains it
    return busy


def _refuse_busy_runs(jobs: list[PlannedJob], show: int = 5) -> None:
    """A run folder that a process still trains (a job of an earlier sweep that was killed with SIGKILL keeps
    running) would get a second job, which fails on its lock while the jobs waiting for it start without the
    stages it was to share: refuse the whole sweep before submitting anything."""
    busy = busy_runs(jobs)
    if not busy:
        return
    more = f" and {len(busy) - show} more" if len(busy) > show else ""
    raise RuntimeError(f"{len(busy)} run folder(s) of this sweep are being trained by another process: "
                       f"{', '.join(map(str, busy[:show]))}{more}. Wait for that process to end or end it "
                       f"({BUSY_HOW}), then run the same command again; nothing was submitted")


def _other_runs(jobs: list[PlannedJob]) -> dict[str, tuple[str, bool]]:
    """Jobs whose run folder holds a run of another config: name -> ('finished' | 'unfinished', trained by hand).
    A run trained by hand (no pipeline marker) is never replaced: its job could only fail."""
    return {j.name: (kind, not (j.out / PIPELINE_MARKER).is_file()) for j in jobs
            if (kind := other_run(j.out, j.config_hash, j.prompt)) is not None}


def _refused(stale: dict[str, tuple[str, bool]], replace: bool) -> dict[str, tuple[str, bool]]:
    """The stale runs a sweep refuses: all of them, or with --replace those trained by hand."""
    return {n: (kind, hand) for n, (kind, hand) in stale.items() if hand or not replace}


def _refuse_other_runs(spec: SweepSpec, jobs: list[PlannedJob], stale: dict[str, tuple[str, bool]],
                       show: int = 5) -> None:
    """A run folder holding a run of another config (a changed --set, --max-steps or profile value) would be
    retrained from scratch, and a finished run may have cost GPU-hours: refuse, naming each and what differs,
    unless `spec.replace` (runs trained by hand: either way). Nothing has been submitted yet."""
    refused = _refused(stale, spec.replace)
    if not refused:
        return
    lines = []
    for j in [j for j in jobs if j.name in refused][:show]:
        kind, hand = refused[j.name]
        cfg = build_config(spec.profile, j.method, seed=spec.seed, device=spec.device, sets=spec.sets_for(j.method),
                           max_steps=spec.max_steps, recompute=spec.recompute)
        differs = describe_mismatch(j.out, kind, cfg, j.prompt, limit=3)
        lines.append(f"{j.out} ({'a finished' if kind == 'finished' else 'an unfinished'} run"
                     f"{', trained by hand' if hand else ''}{': ' + differs if differs else ''})")
    more = f" and {len(refused) - show} more" if len(refused) > show else ""
    how = ("Move the runs trained by hand away (the sweep never replaces them) or choose another --runs"
           if any(hand for _, hand in refused.values()) else "Give --replace to retrain them, or choose another --runs")
    raise ValueError(f"{len(refused)} run folder(s) hold a run of another config, which this sweep would train again "
                     f"from scratch: {'; '.join(lines)}{more}. {how}; nothing was submitted")


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM ended the sweep; `held`: run folders a stopped local job's process still trains;
    `terminated`: it was SIGTERM (`kill`, a scheduler), which the command reports as `generate` does (exit 143)."""

    def __init__(self, held: list[Path] | None = None, terminated: bool = False):
        super().__init__()
        self.held = list(held or [])
        self.terminated = terminated


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _controller_output(log: Path, active: bool):
    """A local job's controller process, started inside, inherits `log` as its stdout and stderr: a Ctrl-C
    reaches it as well, and its traceback belongs in a log, not under the sweep's one-line error (the job's own
    output goes to its log files either way). `active` only in the main thread: file descriptors are the
    process's."""
    saved: list[int] = []
    if active:  # the caller's main thread only
        log.parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        with contextlib.suppress(OSError):  # a closed stdout or stderr: nothing to redirect
            saved = [os.dup(1), os.dup(2)]
        if saved:
            with open(log, "ab") as f:
                for fd in (1, 2):
                    os.dup2(f.fileno(), fd)
    try:
        yield
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


@contextlib.contextmanager
def _sweep_lock(sweep_dir: Path):
    """One sweep at a time per <runs>/<profile>: two would submit jobs writing the same run folders."""
    with open(sweep_dir / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another `fourdfy sweep` is running on {sweep_dir.parent}; wait for it to end "
                               "(its jobs write these run folders)") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run(spec: SweepSpec, ex: ExecutorSpec, jobs: list[PlannedJob], echo, on_submit,
         stale: dict | None = None) -> dict:
    profile_dir = spec.profile_dir
    sweep_dir = profile_dir / SWEEP_DIR
    return _run_jobs(spec, ex, jobs, echo, on_submit, stale or {}, (sweep_dir / "submitit").resolve())


def _live_log(sj, sweep_dir: Path, submitit_dir: Path) -> Path:
    """Where a submitted job's stderr (its heartbeat lines) grows while it runs, under the sweep folder as given."""
    err = Path(sj.paths.stderr)
    try:
        return sweep_dir / "submitit" / err.relative_to(submitit_dir)
    except ValueError:  # pragma: no cover - submitit keeps its logs under the executor's folder
        return err


def _run_jobs(spec: SweepSpec, ex: ExecutorSpec, jobs: list[PlannedJob], echo, on_submit, stale: dict,
              submitit_dir: Path) -> dict:
    profile_dir = spec.profile_dir
    sweep_dir = profile_dir / SWEEP_DIR
    executor = make_executor(ex, submitit_dir)
    stage_cache = (profile_dir / STAGE_CACHE).resolve()
    results: dict[str, dict] = {}
    pending, damaged = [], {}
    for j in jobs:
        done, damage = _finished(j)
        if damage is not None:
            kind, why = damage
            # that job's failure, not the sweep's: its job would only fail on it, so it is not submitted, and the
            # jobs waiting for it start as after any failed leader
            damaged[j.name] = (kind, _console(why, spec, j))
            results[j.name] = {"state": "failed", "error": f"not submitted: {_relative(why, profile_dir)}"}
        elif done is not None:  # what it did is in its manifest: the summary keeps showing it
            results[j.name] = _done("already finished (not submitted)", run_facts(done))
        else:
            pending.append(j)
    running: dict[str, tuple[PlannedJob, object]] = {}
    console: dict[str, str] = {}  # a failed job's error as the console shows it (`_console`), not in sweep.json
    resuming = sum(1 for j in pending if j.name not in stale and run_status(j.out) == "unfinished")
    counts = [f"{len(jobs) - len(pending) - len(damaged)} already finished"]
    counts += [f"{resuming} to resume"] if resuming else []
    counts += [f"{len(stale)} replacing a run of another config"] if stale else []
    for what, words in ((DAMAGED_MANIFEST, "a damaged manifest.json"),
                        (FINAL_UNREADABLE, "an unreadable final checkpoint")):
        if bad := sum(1 for kind, _ in damaged.values() if kind == what):
            counts.append(f"{bad} with {words}, not submitted")
    echo(f"sweep: {len(jobs)} run{'' if len(jobs) == 1 else 's'} ({', '.join(counts)}), executor {ex.kind}, "
         f"at most {ex.parallel} at once; logs in {sweep_dir}")
    for name, (_, why) in damaged.items():
        echo(f"not submitted {name}: {why}")
    for j in jobs:
        if "odd_manifest" in results.get(j.name, {}):
            echo(_odd_line(j, results[j.name]["odd_manifest"]))
    try:
        while pending or running:
            raise_pending_interrupt()  # one whose raise a finalizer swallowed
            for j in list(pending):
                if len(running) >= ex.parallel:
                    break
                if j.after is not None and j.after not in results:
                    continue  # its leader has not ended yet: it would train the shared stages again
                executor.update_parameters(name=f"fourdfy-{j.name}")
                with held():  # a signal waits until the job is recorded, so that the sweep stops it too
                    with _controller_output(sweep_dir / "submitit" / "local-controllers.log",
                                            ex.kind == "local" and _in_main_thread()):
                        sj = executor.submit(GenerateJob(spec, j.method, j.prompt, j.out.resolve(), stage_cache,
                                                         j.config_hash))
                    running[j.name] = (j, sj)
                pending.remove(j)
                echo(f"submitted {j.name} (job {sj.job_id}); live log: {_live_log(sj, sweep_dir, submitit_dir)}")
                if on_submit is not None:
                    on_submit(j, sj)
            for name, (j, sj) in list(running.items()):
                if not sj.done():
                    continue
                del running[name]
                _copy_log(Path(sj.paths.stdout), sweep_dir / f"{name}.out")
                _copy_log(Path(sj.paths.stderr), sweep_dir / f"{name}.err")
                err = sj.exception()
                if err is None:
                    r = sj.result()
                    note = {"finished": "already finished", "unfinished": "resumed an unfinished run",
                            "other-finished": "replaced a finished run of another config",
                            "other-unfinished": "replaced an unfinished run of another config"}.get(r["before"], "")
                    results[name] = _done(note, r)
                else:
                    state, line = _error_line(err, sj.state)
                    results[name] = {"state": state, "error": _relative(line, profile_dir)}
                    console[name] = _console(line, spec, j)
                echo(f"ended {name}: {results[name]['state']}")
                if "odd_manifest" in results[name]:
                    echo(_odd_line(j, results[name]["odd_manifest"]))
            if pending or running:
                time.sleep(ex.poll_seconds)
    except KeyboardInterrupt:
        still_held = []
        if ex.kind == "local":
            for _, sj in running.values():
                sj.cancel()  # SIGINT: the job stops at once, its run resumes from its last checkpoint
            # gone before the sweep ends, so that the same command can start again at once: the controllers,
            # then the training processes themselves (a controller interrupted twice may leave its task)
            end = time.monotonic() + 60
            while any(not sj.done() for _, sj in running.values()) and time.monotonic() < end:
                time.sleep(0.2)
            still_held = [j.out for j, _ in running.values() if not _released(j.out, until=end)]
            for name, (_, sj) in running.items():  # the copies every ended job has (docs/cluster.md)
                if sj.done():
                    _copy_log(Path(sj.paths.stdout), sweep_dir / f"{name}.out")
                    _copy_log(Path(sj.paths.stderr), sweep_dir / f"{name}.err")
        raise SweepInterrupted(still_held, terminated=sigterm_received()) from None
    summary = {
        "profile": spec.profile, "seed": spec.seed, "executor": ex.kind, "set": dict(spec.sets),
        "max_steps": spec.max_steps, "recompute": spec.recompute,
        "jobs": [{"name": j.name, "method": j.method, "prompt": j.slug, "run": f"{j.method}/{j.slug}",
                  "after": j.after, "config_hash": j.config_hash, "log": f"{SWEEP_DIR}/{j.name}.out",
                  **{k: v for k, v in results[j.name].items() if k != "seconds"}} for j in jobs],
    }
    write_text_atomic(sweep_dir / "sweep.json", json.dumps(summary, indent=2) + "\n")
    summary["seconds"] = {j.name: results[j.name].get("seconds") for j in jobs}
    summary["console_errors"] = console
    return summary


def plan_table(jobs: list[PlannedJob], replace: bool = False) -> str:
    """The plan as a plain-text table: submission order, who waits for whom, what is already finished."""
    rows = [("job", "waits for", "shared stages", "status")]
    stale = _other_runs(jobs)
    refused = _refused(stale, replace)
    states = {j.name: run_status(j.out) for j in jobs}
    skipped = {n for n, st in states.items() if st == "finished" and n not in stale}
    busy = set(busy_runs(jobs))
    found = {j.name: _finished(j) for j in jobs}
    damaged = {n: damage[0] for n, (_, damage) in found.items() if damage is not None}
    for j in jobs:
        status = {"empty": "to train", "unfinished": "unfinished (resumes)", "finished": "finished (skipped)"}[
            states[j.name]]
        done = found[j.name][0]
        if done is not None and (odd := run_facts(done)["odd"]):  # what the sweep would say of it (`_odd_line`)
            status += f"; odd manifest.json: {_odd_text(odd)}"
        if j.name in damaged:
            status = f"{damaged[j.name]}: not submitted, reported as failed (the sweep says how to go on)"
        if j.out in busy:
            status = "being trained by another process: refused (wait for it or end it)"
        elif j.name in stale:
            kind, hand = stale[j.name]
            status = (f"{kind} with another config, trained by hand: refused (move it away)" if hand else
                      f"{kind} with another config: "
                      + ("refused (--replace retrains it)" if j.name in refused else "replaced (--replace)"))
        shared = str(j.shared_stages) if j.after else ""
        if j.after in skipped and j.shared_checkpoint is not None and not j.shared_checkpoint.is_file():
            # the leader will not run again, and its stages were not cached for this job's key (e.g. the leader
            # trained without --recompute, or the cache was removed)
            shared = "0 (not cached)"
        rows.append((j.name, j.after or "", shared, status))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in rows)


def summary_table(summary: dict) -> str:
    """The summary as a plain-text table (one row per job)."""
    rows = [("job", "state", "resumes", "shared", "time", "note / error")]
    for j in summary["jobs"]:
        secs = summary.get("seconds", {}).get(j["name"])
        odd = j.get("odd_manifest") or {}  # its fields shown as "?"
        note = summary.get("console_errors", {}).get(j["name"]) or j.get("error") or j.get("note") or ""
        if odd:
            note = "; ".join(filter(None, [note, f"odd manifest.json: {_odd_text(odd)}"]))
        rows.append((j["name"], j["state"], "?" if "resumes" in odd else str(j.get("resumes", "")),
                     "?" if "shared_from" in odd else j.get("shared_from") or "",
                     "?" if "timings_s" in odd else "" if secs is None else f"{secs:.0f}s", note))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows)


def expand_methods(names: list[str]) -> list[str]:
    """'all' -> every trainable registered method (plug-ins included), in registry order."""
    if names == ["all"]:
        from baselines import METHODS, load_entry_points

        load_entry_points()
        return [n for n, m in METHODS.items() if m.trainable]
    return names


def read_params(path: Path | str) -> dict:
    """profile, seed, methods and prompts of the DVC pipeline's params.yaml (what its generate stages train), each
    method's `overrides:` as `--set` values, and the variants it defines (`variants`: name -> its entry, whose
    keys are the variant's own, so they are not among its `overrides`). What the DVC `methods` stage refuses is
    refused here, before any job: bad `overrides:` entries, a method both trained and under `videos:`, a `videos:`
    folder that does not exist and an unknown trajectory of a `videos:` entry."""
    from baselines import check_entry, check_entry_keys, config_keys

    path = Path(path)
    data = read_yaml(path, "--params: ") or {}
    gen = data.get("generate") if isinstance(data, dict) else None
    if not (isinstance(gen, dict) and isinstance(gen.get("methods"), list) and isinstance(gen.get("prompts"), list)):
        raise ValueError(f"{path} has no generate.methods / generate.prompts lists (the DVC pipeline's params file)")
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) or v is None for v in overrides.values()):
        raise ValueError(f"{path}: overrides must map a method to a mapping of config keys to values")
    # the same typed parsing as `--set-from params.yaml:overrides.<method>` in the DVC stages
    variants = {str(m): entry for m, entry in overrides.items() if entry and "base" in entry}
    for m, entry in overrides.items():
        if str(m) not in variants:
            check_entry(str(m), entry, str(path))  # `label:` names a method, no config key; `description:` is refused
            # its keys are merged with --set into each run's config: a bad one found there would not name this entry
            check_entry_keys(str(m), entry, str(path))
    method_sets = {str(m): as_set_values(config_keys(sets)) for m, sets in overrides.items() if str(m) not in variants}
    # an entry of no method (a typo, `wo_hybird:`) would be ignored without a word; the methods stage refuses it too
    # (variants name their own method; names of `videos:` may take a label: without being registered)
    videos = data.get("videos") if isinstance(data.get("videos"), dict) else {}
    bad, known = unknown_override_names(overrides, skip={*variants, *map(str, videos)})
    if bad:
        raise ValueError(f"{path}: {unknown_overrides_text(bad)}{known}")
    extra = gen.get("extra") or {}
    if not (isinstance(extra, dict) and all(isinstance(extra.get(k, []), list) for k in ("methods", "prompts"))):
        raise ValueError(f"{path}: generate.extra must have methods / prompts lists")
    # as the DVC methods stage refuses it, in its words, but before the GPU-hours: a method trained here and also
    # imported under `videos:` has two artifacts per prompt, and the pipeline the sweep feeds stops at it
    check_generate_videos(data, path)
    # so are a `videos:` folder that is not there and a trajectory `import-videos` refuses, which stop the pipeline
    # too (its import stages): the methods stage's own check (a relative folder read from here, as the stage reads it)
    problems = check_videos_entries(videos)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return {"profile": data.get("profile"), "seed": data.get("seed"), "methods": [str(m) for m in gen["methods"]],
            "prompts": [str(p) for p in gen["prompts"]], "overrides": method_sets, "variants": variants,
            "extra_methods": [str(m) for m in extra.get("methods", [])],
            "extra_prompts": [str(p) for p in extra.get("prompts", [])]}


def split_list(items: list[str]) -> list[str]:
    """['a,b', 'c'] -> ['a', 'b', 'c'] (comma-separated and/or repeated options)."""
    return [x.strip() for item in items for x in item.split(",") if x.strip()]

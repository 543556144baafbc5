"""What `fourdfy sweep` says and leaves behind: the live log of a running job, the runs it resumes, a run folder a
process still trains (a job of an earlier sweep killed with SIGKILL), a misspelt params.yaml `overrides:` entry, and
no stray `%j` folder or sweep folder after a failure."""

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.generate import build_config, run_folder_lock

SLUG = "a_panda_dancing"
SETS = {"preview_frames": "0", "heartbeat_s": "0", "checkpoint_every": "1"}
runner = CliRunner()


def _sweep_args(runs, *methods):
    args = ["sweep", "--methods", ",".join(methods), "--prompts", SLUG, "--runs", str(runs), "--max-steps", "2"]
    for key, value in SETS.items():
        args += ["--set", f"{key}={value}"]
    return args


def test_a_resumed_sweep_names_the_live_log_and_counts_the_run_it_resumes(tmp_path, monkeypatch):
    """The run folder holds an unfinished run (as a stopped or killed job leaves it). The opening line counts it
    (singular `run`), the submission names where the job's heartbeats grow while it runs, under the run root as the
    user gave it (relative here), the summary says it resumed an unfinished run, and submitit's stray `%j` folder is
    gone."""
    from method.training.trainer import Trainer

    monkeypatch.chdir(tmp_path)
    run = Path("runs") / "tiny" / "4dfy" / SLUG
    cfg = build_config("tiny", "4dfy", sets=SETS, max_steps=2)
    Trainer(cfg, "A panda dancing.", run, progress=False, quiet=True).run(stop_after=1)
    assert (run / "ckpt" / "last.pt").is_file() and not (run / "manifest.json").exists()

    res = runner.invoke(app, _sweep_args("runs", "4dfy"))
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("sweep: 1 run (0 already finished, 1 to resume), executor local"), lines[0]
    submitted = next(line for line in lines if line.startswith("submitted "))
    found = re.fullmatch(rf"submitted 4dfy-{SLUG} \(job (\d+)\); live log: (\S+)", submitted)
    assert found, submitted
    job_id, live = found.groups()
    assert live == f"runs/tiny/sweep/submitit/{job_id}/{job_id}_0_log.err"  # as given: not made absolute
    # the job's own stderr, the file the sweep copies to sweep/<job>.err when the job has ended
    assert Path(live).read_bytes() == Path(f"runs/tiny/sweep/4dfy-{SLUG}.err").read_bytes()
    assert "stage3 step 2/2" in Path(live).read_text()  # its heartbeats
    job = json.loads(Path("runs/tiny/sweep/sweep.json").read_text())["jobs"][0]
    assert (job["state"], job["note"], job["resumes"]) == ("done", "resumed an unfinished run", 1)
    assert sorted(p.name for p in Path("runs/tiny/sweep/submitit").iterdir()) == [job_id, "local-controllers.log"]


def test_a_run_folder_a_process_still_trains_refuses_the_whole_sweep_before_submitting(tmp_path):
    """A sweep killed with SIGKILL leaves its local job training. The same command used to submit a second job on
    its run folder (failing on the lock with generate's `--resume`/`--out` advice) and then start the follower
    without the stages it was to share; now it refuses at once, naming the folder and how to find the process."""
    runs = tmp_path / "runs"
    busy = runs / "tiny" / "4dfy" / SLUG
    busy.mkdir(parents=True)
    (busy / "log.jsonl").write_text("")
    with run_folder_lock(busy):  # as the earlier job's training process holds it
        res = runner.invoke(app, _sweep_args(runs, "4dfy", "wo_hybrid"))
        dry = runner.invoke(app, [*_sweep_args(runs, "4dfy", "wo_hybrid"), "--dry-run"])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: 1 run folder(s) of this sweep are being trained by another process: {busy}. "
                               "Wait for that process to end or end it"), lines[0]
    for hint in ("killed with SIGKILL", "`ps -ef | grep submitit`", "`kill -INT PID`", "`squeue --me`"):
        assert hint in lines[0], hint
    assert lines[0].endswith("then run the same command again; nothing was submitted")
    assert "--out" not in lines[0] and "--resume" not in lines[0]
    assert not (runs / "tiny" / "sweep" / "submitit").exists()  # no job started
    assert sorted(p.name for p in busy.iterdir()) == ["log.jsonl"]
    row = next(line for line in dry.output.splitlines() if line.startswith(f"4dfy-{SLUG}"))
    assert "being trained by another process: refused" in row, dry.output


def test_slurm_without_sbatch_leaves_no_sweep_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    runs = tmp_path / "runs"
    res = runner.invoke(app, [*_sweep_args(runs, "4dfy"), "--executor", "slurm"])
    assert res.exit_code == 2 and "needs SLURM's sbatch on PATH" in res.output, res.output
    assert not runs.exists()  # checked before the sweep folder (and its lock file) is made


def test_a_misspelt_overrides_entry_in_sweep_params_is_refused(tmp_path):
    """`wo_hybird:` was ignored: wo_hybrid trained without its overrides."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "profile": "tiny", "seed": 0, "generate": {"methods": ["4dfy", "wo_hybrid"], "prompts": [SLUG]},
        "overrides": {"4dfy": {}, "wo_hybird": {"weights.sds_video": 0.3}, "video03": {"base": "4dfy"},
                      "my_videos": {"label": "Theirs"}},
        "videos": {"my_videos": {"folder": "data/videos/mine", "trajectory": "orbit"}}}))
    res = runner.invoke(app, ["sweep", "--params", str(params), "--runs", str(tmp_path / "runs"), "--dry-run"])
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert line.startswith(f"error: {params}: overrides: has 1 entry of no registered method or variant, which would "
                           "be ignored: unknown method 'wo_hybird' (did you mean 'wo_hybrid'?)"), line
    head = line.split("known methods")[0]
    assert "video03" not in head and "my_videos" not in head  # a variant and a method of videos: are entries
    assert not (tmp_path / "runs").exists()


def test_a_params_file_that_is_not_yaml_names_its_line_and_column(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("generate:\n  methods: [4dfy\n  prompts: [a_panda_dancing]\n")
    res = runner.invoke(app, ["sweep", "--params", str(params), "--dry-run"])
    assert res.exit_code == 2
    assert res.output.strip() == (f"error: --params: {params} is not valid YAML: line 3, column 10: expected ',' or "
                                  "']', but got ':' (while parsing a flow sequence at line 2, column 12)")


def test_a_stray_pattern_folder_of_an_earlier_killed_sweep_is_removed(tmp_path):
    """A sweep killed with SIGKILL cannot clean up; the next one on the same runs removes the empty `%j` that
    submitit's local controller made (here it is refused, and cleans up all the same)."""
    from pipelines.sweep import ExecutorSpec, SweepSpec, run_sweep

    runs = tmp_path / "runs"
    stray = runs / "tiny" / "sweep" / "submitit" / "%j"
    stray.mkdir(parents=True)
    busy = runs / "tiny" / "4dfy" / SLUG
    busy.mkdir(parents=True)
    with run_folder_lock(busy), pytest.raises(RuntimeError, match="being trained by another process"):
        run_sweep(SweepSpec(methods=("4dfy",), prompts=(SLUG,), runs=runs), ExecutorSpec(), echo=lambda s: None)
    assert not stray.exists()


def test_a_method_both_trained_and_under_videos_is_refused_before_any_job(tmp_path):
    """The DVC methods stage refuses such a params.yaml; `sweep --params` trains the same matrix for it, so it refuses
    it too, before submitting anything (not after the GPU-hours, when the pipeline stops at it)."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "profile": "tiny", "seed": 0,
        "generate": {"methods": ["4dfy", "hexplane"], "prompts": ["a_panda_dancing"],
                     "extra": {"methods": ["wo_hybrid"], "prompts": []}},
        "overrides": {"4dfy": {}, "hexplane": {}, "wo_hybrid": {}},
        "videos": {"hexplane": {"folder": "data/videos/hexplane"}, "wo_hybrid": {"folder": "x"},
                   "mav3d": {"folder": "data/videos/mav3d"}}}))
    res = runner.invoke(app, ["sweep", "--params", str(params), "--runs", str(tmp_path / "runs"), "--dry-run"])
    assert res.exit_code != 0
    assert ("generate.methods names 1 method the pipeline cannot train: method 'hexplane' is both in "
            "generate.methods (trained) and under `videos:` (imported)") in res.output
    assert ("generate.extra.methods names 1 method the pipeline cannot train: method 'wo_hybrid' is both in "
            "generate.extra.methods (trained)") in res.output
    assert "'4dfy'" not in res.output and "'mav3d'" not in res.output
    assert not (tmp_path / "runs").exists()


def test_a_sigterm_while_the_sweep_plans_is_reported_as_sigterm(tmp_path, monkeypatch):
    """SIGTERM before the sweep installs its own handler (reading params, planning: seconds) is raised by the CLI's
    handler as `Terminated`; the sweep reports it as a SIGTERM (143), not as Ctrl-C (130)."""
    import pipelines.sweep
    from pipelines.interrupts import Terminated

    def stopped(*args, **kwargs):
        raise Terminated()

    monkeypatch.setattr(pipelines.sweep, "plan", stopped)
    res = runner.invoke(app, ["sweep", "--methods", "4dfy", "--prompts", "a_panda_dancing", "--profile", "tiny",
                              "--runs", str(tmp_path / "runs")])
    assert res.exit_code == 143, res.output
    assert "error: sweep terminated (SIGTERM)" in res.output


def test_a_sigterm_while_the_sweep_checks_its_run_folders_is_reported_as_sigterm(tmp_path, monkeypatch):
    """Once the sweep has installed its handler (checking the run folders, before any job), SIGTERM was raised as a
    plain KeyboardInterrupt and reported as Ctrl-C (130); the one handler raises `Terminated` (143). The handlers
    the sweep found are back afterwards."""
    import signal

    import pipelines.sweep

    def checking(jobs):
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(pipelines.sweep, "_refuse_busy_runs", checking)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    res = runner.invoke(app, ["sweep", "--methods", "4dfy", "--prompts", SLUG, "--runs", str(tmp_path / "runs")])
    assert res.exit_code == 143, res.output
    assert res.stderr.strip().startswith("error: sweep terminated (SIGTERM): its local jobs were stopped"), res.stderr
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before

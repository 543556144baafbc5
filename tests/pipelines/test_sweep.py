"""`fourdfy sweep` with submitit's local executor: the run folders DVC expects, stage sharing, a job killed
outright and resubmitted, a pre-empted job requeued by submitit, a failing job's error, and the SLURM script.

One scenario (module fixture) trains 4dfy and wo_hybrid on one prompt with 1 step per stage: during the first
sweep the 4dfy job is SIGKILLed after stage 1; the second sweep resubmits it and sends it SIGUSR2 (what SLURM
sends before pre-emption or time-out) after stage 2. Each test checks one consequence.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.sweep import ExecutorSpec, SweepSpec, make_executor, plan, run_sweep
from run_helpers import fake_finished_run, stop_sweep_mid_training

SLUG = "a_panda_dancing"
SETS = {"preview_frames": "0", "heartbeat_s": "0"}


def _task_pid(controller_pid: int, timeout: float = 300.0) -> int:
    """The process running the job: the child of submitit's local controller."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            kids = Path(f"/proc/{controller_pid}/task/{controller_pid}/children").read_text().split()
        except FileNotFoundError:
            kids = []
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    raise AssertionError("the local job's task process never started")


def _stage_index(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["state"]["stage_index"]


def _interrupt_when(run: Path, stage_index: int, sig: int):
    """on_submit hook: once the 4dfy run's ckpt/last.pt is past `stage_index` stages, send `sig` to its task."""
    sent = {}

    def hook(job, sj):
        if job.method != "4dfy":
            return
        pid = _task_pid(int(sj.job_id))

        def watch():
            last, seen = run / "ckpt" / "last.pt", None
            while not sj.done():
                stamp = last.stat().st_mtime_ns if last.exists() else None
                if stamp != seen:  # load only a new checkpoint (written atomically: never half a file)
                    seen = stamp
                    if stamp is not None and _stage_index(last) >= stage_index:
                        os.kill(pid, sig)
                        sent["pid"] = pid
                        return
                time.sleep(0.1)

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        sent["thread"] = t

    return hook, sent


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    runs = tmp_path_factory.mktemp("sweep") / "runs"
    spec = SweepSpec(methods=("4dfy", "wo_hybrid"), prompts=(SLUG,), profile="tiny", runs=runs, max_steps=1, sets=SETS)
    ex = ExecutorSpec(kind="local", parallel=2, poll_s=0.2)
    run = runs / "tiny" / "4dfy" / SLUG
    hook, sent = _interrupt_when(run, 1, signal.SIGKILL)  # killed outright after stage 1
    first = run_sweep(spec, ex, echo=lambda s: None, on_submit=hook)
    sent["thread"].join()
    assert "pid" in sent, "the 4dfy job ended before it could be killed"
    logs_first = {p.name: p.read_text() for p in (runs / "tiny" / "sweep").glob("*.err")}
    hook, sent2 = _interrupt_when(run, 2, signal.SIGUSR2)  # pre-empted after stage 2: submitit requeues it
    second = run_sweep(spec, ex, echo=lambda s: None, on_submit=hook)
    sent2["thread"].join()
    assert "pid" in sent2, "the resumed 4dfy job ended before it could be pre-empted"
    return {"runs": runs, "spec": spec, "first": first, "second": second, "logs_first": logs_first}


def _job(summary, name):
    return next(j for j in summary["jobs"] if j["name"] == name)


def test_plan_orders_stage_sharing_jobs_from_the_resolved_configs():
    spec = SweepSpec(methods=("wo_img", "hexplane", "4dfy", "wo_hybrid"), prompts=(SLUG, "A dog running."))
    jobs = plan(spec)
    by = {j.name: j for j in jobs}
    # 4dfy and wo_hybrid share stages 1-2 and both share stage 1 with wo_img: the leader is the job sharing
    # the most (4dfy, first listed of the two), not the first listed (wo_img)
    assert by[f"4dfy-{SLUG}"].after is None
    assert (by[f"wo_hybrid-{SLUG}"].after, by[f"wo_hybrid-{SLUG}"].shared_stages) == (f"4dfy-{SLUG}", 2)
    assert (by[f"wo_img-{SLUG}"].after, by[f"wo_img-{SLUG}"].shared_stages) == (f"4dfy-{SLUG}", 1)
    assert by[f"hexplane-{SLUG}"].after is None  # another scene representation: nothing shared
    assert by["wo_hybrid-a_dog_running"].after == "4dfy-a_dog_running"  # per prompt
    names = [j.name for j in jobs]
    assert names.index(f"4dfy-{SLUG}") < names.index(f"wo_hybrid-{SLUG}")
    assert by[f"4dfy-{SLUG}"].out == Path("runs") / "tiny" / "4dfy" / SLUG  # the DVC stage's folder


def test_params_overrides_reach_each_methods_jobs_as_in_the_dvc_stages(tmp_path):
    from pipelines.generate import build_config, read_set_from
    from pipelines.sweep import read_params

    params = tmp_path / "params.yaml"
    params.write_text("profile: tiny\nseed: 0\ngenerate: {methods: [4dfy, wo_hybrid], prompts: [a_panda_dancing]}\n"
                      "overrides:\n  4dfy: {}\n  wo_hybrid: {weights.sds_video: 0.3}\n")
    p = read_params(params)
    spec = SweepSpec(methods=tuple(p["methods"]), prompts=tuple(p["prompts"]), method_sets=p["overrides"])
    by = {j.method: j for j in plan(spec)}
    # what `fourdfy generate --set-from params.yaml:overrides.wo_hybrid` reads in the DVC stage
    sets, _ = read_set_from(f"{params}:overrides.wo_hybrid", "wo_hybrid")
    dvc_like = build_config("tiny", "wo_hybrid", sets=sets)
    assert by["wo_hybrid"].config_hash == dvc_like.config_hash() != build_config("tiny", "wo_hybrid").config_hash()
    assert by["4dfy"].config_hash == build_config("tiny", "4dfy").config_hash()


def test_plan_rejects_bad_input_before_submitting_anything():
    with pytest.raises(ValueError, match="unknown method '4dfy_v9'"):
        plan(SweepSpec(methods=("4dfy_v9",), prompts=(SLUG,)))
    with pytest.raises(ValueError, match="videos only"):
        plan(SweepSpec(methods=("mav3d",), prompts=(SLUG,)))
    with pytest.raises(ValueError, match="weights.sds_vide"):
        plan(SweepSpec(methods=("4dfy",), prompts=(SLUG,), sets={"weights.sds_vide": "1"}))
    with pytest.raises(ValueError, match="no prompt with slug"):
        plan(SweepSpec(methods=("4dfy",), prompts=("a_missing_slug",)))


@pytest.mark.slow
def test_the_sweep_writes_the_run_folders_dvc_expects(scenario):
    runs = scenario["runs"]
    for method in ("4dfy", "wo_hybrid"):
        m = json.loads((runs / "tiny" / method / SLUG / "manifest.json").read_text())
        assert m["method"] == method and m["profile"] == "tiny" and m["prompt"] == "A panda dancing."
        assert m["request"] == {"set": SETS, "max_steps": 1}  # recorded as `fourdfy generate` records them
        assert (runs / "tiny" / method / SLUG / ".pipeline-run").is_file()  # DVC's --resume auto may replace it
    assert any((runs / "tiny" / ".stage-cache").iterdir())
    summary = json.loads((runs / "tiny" / "sweep" / "sweep.json").read_text())
    assert [j["state"] for j in summary["jobs"]] == ["done", "done"]
    text = json.dumps(summary)
    assert str(runs) not in text and "/tmp" not in text  # relative paths only


@pytest.mark.slow
def test_the_follower_loads_the_shared_stages_its_leader_trained(scenario):
    first = scenario["first"]
    # 4dfy was killed after stage 1, so wo_hybrid (which waits for it) found stage 1 in the cache
    assert _job(first, f"wo_hybrid-{SLUG}")["after"] == f"4dfy-{SLUG}"
    assert _job(first, f"wo_hybrid-{SLUG}")["state"] == "done"
    assert _job(first, f"wo_hybrid-{SLUG}")["shared_from"] == "stage1"
    m = json.loads((scenario["runs"] / "tiny" / "wo_hybrid" / SLUG / "manifest.json").read_text())
    assert m["shared_from"]["method"] == "4dfy"


@pytest.mark.slow
def test_a_killed_job_is_collected_and_resumes_when_resubmitted(scenario):
    killed = _job(scenario["first"], f"4dfy-{SLUG}")
    assert killed["state"] == "killed" and "resume" in killed["error"]
    assert "stage1 step 1/1" in scenario["logs_first"][f"4dfy-{SLUG}.err"]  # its log was collected
    again = _job(scenario["second"], f"4dfy-{SLUG}")
    assert again["state"] == "done"
    m = json.loads((scenario["runs"] / "tiny" / "4dfy" / SLUG / "manifest.json").read_text())
    # first resume: the resubmitted job from the kill (after stage 1); second: submitit's requeue (after stage 2)
    assert [(r["stage_index"], r["from"]) for r in m["resumes"]] == [(1, "last.pt"), (2, "last.pt")]
    assert m["update_counts"]["stage3"] and sum(m["update_counts"]["stage3"].values()) == 1


@pytest.mark.slow
def test_a_preempted_job_is_requeued_by_submitit_in_the_same_job(scenario):
    logs = scenario["runs"] / "tiny" / "sweep"
    log = (logs / f"4dfy-{SLUG}.out").read_text() + (logs / f"4dfy-{SLUG}.err").read_text()
    assert "Caught signal SIGUSR2" in log and "Requeued job" in log
    assert log.count("Starting with JobEnvironment") == 2  # the same submitit job started twice
    assert _job(scenario["second"], f"4dfy-{SLUG}")["state"] == "done"


@pytest.mark.slow
def test_a_second_sweep_skips_finished_runs(scenario):
    skipped, first = _job(scenario["second"], f"wo_hybrid-{SLUG}"), _job(scenario["first"], f"wo_hybrid-{SLUG}")
    assert skipped["note"] == "already finished (not submitted)"
    # what the run did stays in the summary (read from its manifest), as the sweep that trained it showed it
    assert (skipped["resumes"], skipped["shared_from"]) == (first["resumes"], first["shared_from"])
    assert first["shared_from"] is not None


def test_a_failing_job_is_collected_with_its_error(tmp_path, monkeypatch):
    import pipelines.sweep as sweep_module
    from pipelines.generate import run_folder_lock

    runs = tmp_path / "runs"
    busy = runs / "tiny" / "4dfy" / SLUG  # another process trains into this folder: the job fails on its lock
    busy.mkdir(parents=True)
    # as if that process took the folder after the sweep checked it (the sweep refuses a folder held before)
    monkeypatch.setattr(sweep_module, "busy_runs", lambda jobs: [])
    with run_folder_lock(busy):
        res = CliRunner().invoke(app, ["sweep", "--methods", "4dfy", "--prompts", SLUG, "--runs", str(runs),
                                       "--max-steps", "1"])
    assert res.exit_code == 2
    assert "error: 1 of 1 jobs did not finish (4dfy-a_panda_dancing)" in res.output
    job = json.loads((runs / "tiny" / "sweep" / "sweep.json").read_text())["jobs"][0]
    assert job["state"] == "failed"
    assert job["error"].startswith(f"RunInUse: 4dfy/{SLUG} is being trained by another process")  # relative path
    assert job["error"].endswith("then run the same sweep again") and "--out" not in job["error"]  # a sweep's advice
    assert "RunInUse" in (runs / "tiny" / "sweep" / f"4dfy-{SLUG}.err").read_text()
    assert list(busy.iterdir()) == []  # nothing written into it


def test_a_run_trained_by_hand_is_never_replaced_even_with_replace(tmp_path):
    runs = tmp_path / "runs"
    hand = runs / "tiny" / "4dfy" / SLUG  # a run trained by hand with other settings, no pipeline marker
    hand.mkdir(parents=True)
    (hand / "manifest.json").write_text(json.dumps({"config_hash": "0" * 16, "prompt": "A panda dancing."}))
    base = ["sweep", "--methods", "4dfy", "--prompts", SLUG, "--runs", str(runs), "--max-steps", "1"]
    res = CliRunner().invoke(app, [*base, "--replace", "--dry-run"])
    assert "finished with another config, trained by hand: refused (move it away)" in res.output
    for extra in ([], ["--replace"]):
        res = CliRunner().invoke(app, [*base, *extra])
        assert res.exit_code == 2, res.output
        line = res.output.strip().splitlines()[-1]
        assert "(a finished run, trained by hand" in line and "Move the runs trained by hand away" in line, line
        assert line.endswith("nothing was submitted")
    assert json.loads((hand / "manifest.json").read_text())["config_hash"] == "0" * 16  # kept
    assert not (runs / "tiny" / "sweep" / "sweep.json").exists()


def test_a_finished_run_of_another_config_is_retrained_only_with_replace(tmp_path):
    """Sweeping again with other settings (here --max-steps) would train the pipeline's finished run again from
    scratch, which at paper scale throws away GPU-hours: the sweep refuses before submitting anything, naming the
    run and what differs, and the dry run says so; with --replace it retrains it and its summary says it replaced
    a run."""
    runs = tmp_path / "runs"
    base = ["sweep", "--methods", "4dfy", "--prompts", SLUG, "--runs", str(runs), "--set", "preview_frames=0"]
    res = CliRunner().invoke(app, [*base, "--max-steps", "2"])
    assert res.exit_code == 0, res.output
    manifest = runs / "tiny" / "4dfy" / SLUG / "manifest.json"
    before = manifest.read_bytes()

    res = CliRunner().invoke(app, [*base, "--max-steps", "1", "--dry-run"])
    assert res.exit_code == 0 and "finished with another config: refused (--replace retrains it)" in res.output
    res = CliRunner().invoke(app, [*base, "--max-steps", "1"])
    assert res.exit_code == 2, res.output
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("error: 1 run folder(s) hold a run of another config") and "--replace" in line
    assert f"4dfy/{SLUG} (a finished run: stages.stage1.steps 2 there, 1 here;" in line, line
    assert manifest.read_bytes() == before  # kept, and no job was started
    assert json.loads((runs / "tiny" / "sweep" / "sweep.json").read_text())["max_steps"] == 2

    res = CliRunner().invoke(app, [*base, "--max-steps", "1", "--replace", "--dry-run"])
    assert "finished with another config: replaced (--replace)" in res.output
    res = CliRunner().invoke(app, [*base, "--max-steps", "1", "--replace"])
    assert res.exit_code == 0, res.output
    assert "sweep: 1 run (0 already finished, 1 replacing a run of another config)" in res.output
    job = json.loads((runs / "tiny" / "sweep" / "sweep.json").read_text())["jobs"][0]
    assert (job["state"], job["note"]) == ("done", "replaced a finished run of another config")
    assert json.loads(manifest.read_text())["config"]["stages"][0]["steps"] == 1


def test_slurm_jobs_get_the_requested_resources_and_the_requeue_signal(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sbatch", "srun"):  # stand-ins: only their presence is checked before submitting
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod((bin_dir / tool).stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    ex = ExecutorSpec(kind="slurm", gpus=1, partition="gpu", timeout_min=90, cpus_per_task=8, mem_gb=64,
                      slurm_args={"account": "lab"})
    executor = make_executor(ex, tmp_path / "submitit")
    script = executor._executor._make_submission_file_text("python -m submitit.core._submit x", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --time=90",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --mem=64GB", "#SBATCH --account=lab",
                 "#SBATCH --signal=USR2@120"):
        assert line in script, script


def test_slurm_without_sbatch_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    res = CliRunner().invoke(app, ["sweep", "--methods", "4dfy", "--prompts", SLUG, "--executor", "slurm",
                                   "--runs", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "sbatch" in res.output and "--executor local" in res.output
    assert "Traceback" not in res.output


def test_params_yaml_gives_the_dvc_matrix_and_finished_runs_are_not_submitted(tmp_path):
    from pipelines.generate import build_config

    runs = tmp_path / "runs"
    params = tmp_path / "params.yaml"
    params.write_text(f"profile: tiny\nseed: 3\ngenerate:\n  methods: [4dfy]\n  prompts: [{SLUG}]\n")
    cfg = build_config("tiny", "4dfy", seed=3, max_steps=1)  # what the sweep must resolve from params.yaml
    done = runs / "tiny" / "4dfy" / SLUG
    done.mkdir(parents=True)
    fake_finished_run(done, {"config_hash": cfg.config_hash(), "prompt": "A panda dancing."})
    res = CliRunner().invoke(app, ["sweep", "--params", str(params), "--runs", str(runs), "--max-steps", "1"])
    assert res.exit_code == 0, res.output
    summary = json.loads((runs / "tiny" / "sweep" / "sweep.json").read_text())
    assert (summary["profile"], summary["seed"]) == ("tiny", 3)
    assert [(j["name"], j["state"], j["note"]) for j in summary["jobs"]] == [
        (f"4dfy-{SLUG}", "done", "already finished (not submitted)")]
    assert not list((runs / "tiny" / "sweep" / "submitit").glob("[0-9]*"))  # no job was started
    res = CliRunner().invoke(app, ["sweep", "--params", str(tmp_path / "missing.yaml"), "--runs", str(runs)])
    assert res.exit_code == 2 and "missing.yaml" in res.output


def test_dry_run_prints_the_order_and_submits_nothing(tmp_path):
    runs = tmp_path / "runs"
    res = CliRunner().invoke(app, ["sweep", "--methods", "wo_hybrid,hexplane,4dfy", "--prompts", SLUG,
                                   "--runs", str(runs), "--dry-run"])
    assert res.exit_code == 0, res.output
    rows = [line.split() for line in res.output.strip().splitlines()[1:]]
    assert [r[0] for r in rows] == [f"wo_hybrid-{SLUG}", f"hexplane-{SLUG}", f"4dfy-{SLUG}"]
    assert rows[2][1:3] == [f"wo_hybrid-{SLUG}", "2"]  # tie on shared stages: the first listed leads
    assert not runs.exists()


def test_a_second_sweep_on_the_same_runs_is_refused_while_one_runs(tmp_path):
    import fcntl

    sweep_dir = tmp_path / "runs" / "tiny" / "sweep"
    sweep_dir.mkdir(parents=True)
    with open(sweep_dir / ".lock", "a+") as held:  # what a running sweep holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RuntimeError, match="another `fourdfy sweep` is running"):
            run_sweep(SweepSpec(methods=("4dfy",), prompts=(SLUG,), runs=tmp_path / "runs"), ExecutorSpec(),
                      echo=lambda s: None)
    assert not (sweep_dir / "submitit").exists()


FAKE_SBATCH = r'''#!/usr/bin/env python3
"""sbatch stand-in: runs the submission script at once in the background, as SLURM would on a node."""
import os, subprocess, sys
state = os.environ["FAKE_SLURM_STATE"]
os.makedirs(state, exist_ok=True)
jid = str(len([f for f in os.listdir(state) if f.endswith(".sh")]) + 1000)
script = open(sys.argv[-1]).read()
open(os.path.join(state, jid + ".sh"), "w").write(script)
env = {**os.environ, "SLURM_JOB_ID": jid, "SLURM_NTASKS": "1", "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0",
       "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_JOB_NODELIST": "node1"}
rc = os.path.join(state, jid + ".rc")
subprocess.Popen(["bash", "-c", f'bash "$0"; echo $? > "{rc}"', sys.argv[-1]], env=env, start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"Submitted batch job {jid}")
'''

FAKE_SRUN = r'''#!/usr/bin/env python3
"""srun stand-in: one task, its --output/--error files with %j/%t filled in."""
import os, sys
args, files = sys.argv[1:], {}
while args and args[0].startswith("--"):
    opt = args.pop(0)
    if opt in ("--output", "--error"):
        files[opt] = args.pop(0).replace("%j", os.environ["SLURM_JOB_ID"]).replace("%t", "0")
out = os.open(files["--output"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
err = os.open(files.get("--error", files["--output"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
os.dup2(out, 1)
os.dup2(err, 2)
os.execvp(args[0], args)
'''

FAKE_SACCT = r'''#!/usr/bin/env python3
"""sacct stand-in: RUNNING until the script ended, then COMPLETED or FAILED."""
import os, sys
state = os.environ["FAKE_SLURM_STATE"]
print("JobID|State|NodeList")
ids = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "-j"]
for jid in ids:
    rc = os.path.join(state, jid + ".rc")
    s = "RUNNING" if not os.path.exists(rc) else ("COMPLETED" if open(rc).read().strip() == "0" else "FAILED")
    print(f"{jid}|{s}|node1")
'''


def test_a_slurm_sweep_runs_through_sbatch_and_srun_and_collects_the_error(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("srun", FAKE_SRUN), ("sacct", FAKE_SACCT)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_STATE", str(tmp_path / "slurm"))
    from pipelines.generate import run_folder_lock

    import pipelines.sweep as sweep_module

    runs = tmp_path / "runs"
    busy = runs / "tiny" / "4dfy" / SLUG  # another process trains into it: the job fails at once, no training
    busy.mkdir(parents=True)
    monkeypatch.setattr(sweep_module, "busy_runs", lambda jobs: [])  # taken after the sweep's own check
    spec = SweepSpec(methods=("4dfy",), prompts=(SLUG,), runs=runs, max_steps=1)
    with run_folder_lock(busy):
        summary = run_sweep(spec, ExecutorSpec(kind="slurm", gpus=1, partition="gpu", timeout_min=30, poll_s=0.2),
                            echo=lambda s: None)
    job = summary["jobs"][0]
    logs = runs / "tiny" / "sweep"
    seen = "".join(p.read_text() for p in sorted(logs.glob(f"4dfy-{SLUG}.*")) if p.is_file())
    # (once, under a loaded CI run, this job ended 'killed', with no result: the logs say why if it recurs)
    assert job["state"] == "failed" and job["error"].startswith(f"RunInUse: 4dfy/{SLUG} is being trained"), \
        (job, seen[-3000:])
    script = next((tmp_path / "slurm").glob("*.sh")).read_text()  # what sbatch received
    assert "#SBATCH --partition=gpu" in script and "#SBATCH --signal=USR2@120" in script
    assert "#SBATCH --job-name=fourdfy-4dfy-a_panda_dancing" in script
    log = (runs / "tiny" / "sweep" / f"4dfy-{SLUG}.out").read_text()
    assert "Starting with JobEnvironment(job_id=1000" in log  # submitit's SLURM environment read the sbatch job id


def test_a_prompts_file_outside_the_library_is_swept_by_its_texts(tmp_path):
    own = tmp_path / "mine.txt"
    own.write_text("A red fox jumping.\n# a comment\nA blue whale singing.\n")
    runs = tmp_path / "runs"
    res = CliRunner().invoke(app, ["sweep", "--methods", "4dfy", "--prompts-file", str(own), "--runs", str(runs),
                                   "--dry-run"])
    assert res.exit_code == 0, res.output
    names = [line.split()[0] for line in res.output.strip().splitlines()[1:]]
    assert names == ["4dfy-a_red_fox_jumping", "4dfy-a_blue_whale_singing"]
    assert not runs.exists()


def test_a_preemption_that_a_library_turns_into_an_error_still_requeues(monkeypatch, tmp_path):
    """The pre-emption signal can land inside a library call that converts submitit's exit into an ordinary
    error (seen: safetensors while loading a prior): the job must still end as requeued, not failed."""
    import pickle

    import pipelines.sweep as sweep_module
    from pipelines.sweep import GenerateJob

    spec = SweepSpec(methods=("4dfy",), prompts=(SLUG,), runs=tmp_path / "runs", max_steps=1, sets=SETS)
    job_plan = plan(spec)[0]
    job = GenerateJob(spec, "4dfy", job_plan.prompt, tmp_path / "run", tmp_path / "cache", job_plan.config_hash)

    def interrupted(*args, **kwargs):
        job.checkpoint()  # what submitit's SIGUSR2 handler calls first
        raise OSError("Unable to load weights from checkpoint file")

    monkeypatch.setattr(sweep_module, "generate", interrupted)
    monkeypatch.setattr(sweep_module, "_requeue_exit_code", lambda: 144)
    with pytest.raises(SystemExit) as exit_info:
        job()
    assert exit_info.value.code == 144
    assert not getattr(pickle.loads(pickle.dumps(job)), "_preempted", False)  # the resubmission starts afresh

    fresh = GenerateJob(spec, "4dfy", job_plan.prompt, tmp_path / "run", tmp_path / "cache", job_plan.config_hash)

    def failing(*args, **kwargs):
        raise OSError("a real failure")

    monkeypatch.setattr(sweep_module, "generate", failing)
    with pytest.raises(OSError, match="a real failure"):  # without a pre-emption: an ordinary failure
        fresh()


def test_recompute_reaches_every_jobs_config(monkeypatch, tmp_path):
    """`fourdfy sweep --recompute`: each job trains with activation checkpointing (its config says so), under the
    config hash the plan resolved (the options are execution-only)."""
    import pipelines.sweep as sweep_module
    from pipelines.sweep import GenerateJob

    spec = SweepSpec(methods=("4dfy",), prompts=(SLUG,), runs=tmp_path / "runs", max_steps=1, recompute=True)
    job_plan = plan(spec)[0]
    assert job_plan.config_hash == plan(SweepSpec(methods=("4dfy",), prompts=(SLUG,), runs=tmp_path / "runs",
                                                  max_steps=1))[0].config_hash
    seen = []

    def fake_generate(cfg, *args, **kwargs):
        seen.append(cfg)
        return {"config_hash": cfg.config_hash(), "timings_s": {}}

    monkeypatch.setattr(sweep_module, "generate", fake_generate)
    GenerateJob(spec, "4dfy", job_plan.prompt, tmp_path / "run", tmp_path / "cache", job_plan.config_hash)()
    assert len(seen) == 1 and seen[0].renderer.recompute_field
    assert all(g.frozen.vae_gradient_checkpointing for g in seen[0].guidance.values())


def test_stages_are_shared_only_between_runs_that_compute_them_alike():
    """4dfy and wo_hybrid share stages 1-2; with --recompute on one of them only (per-method overrides) they
    share none, so a run's result never depends on which one finished first."""
    from method.training import profiles
    from pipelines.generate import build_config
    from pipelines.sweep import _shared_depth

    a, b = build_config("tiny", "4dfy"), build_config("tiny", "wo_hybrid")
    assert _shared_depth(a, b) == 2
    assert _shared_depth(profiles.recompute(a), b) == 0 == _shared_depth(a, profiles.recompute(b))
    assert _shared_depth(profiles.recompute(a), profiles.recompute(b)) == 2


def test_dry_run_says_when_a_finished_leaders_stages_are_not_cached_for_a_follower(tmp_path):
    """A leader that will not run again (finished) shares only what the stage cache holds under the follower's
    key: e.g. a leader trained without --recompute leaves nothing for a follower with it."""
    from pipelines.sweep import plan_table

    spec = SweepSpec(methods=("4dfy", "wo_hybrid"), prompts=(SLUG,), runs=tmp_path / "runs", max_steps=1,
                     recompute=True)
    jobs = plan(spec)
    follower = next(j for j in jobs if j.after)
    assert follower.method == "wo_hybrid" and follower.shared_stages == 2
    assert follower.shared_checkpoint.parent.parent == tmp_path / "runs" / "tiny" / ".stage-cache"
    leader = next(j for j in jobs if j.method == "4dfy")  # finished: its manifest, of its config and prompt
    leader.out.mkdir(parents=True)
    fake_finished_run(leader.out, {"config_hash": leader.config_hash, "prompt": leader.prompt})

    def shared_column():
        row = next(line for line in plan_table(jobs).splitlines() if line.startswith(follower.name))
        return row.split("  ")[2:4]

    assert "0 (not cached)" in " ".join(shared_column())
    follower.shared_checkpoint.parent.mkdir(parents=True)
    follower.shared_checkpoint.write_bytes(b"")
    assert "0 (not cached)" not in " ".join(shared_column())


def _dvc_project_with(tmp_path, extra: dict):
    """dvc.yaml and params.yaml of the repository in a project of their own, with `generate.extra` set."""
    import shutil

    import yaml

    root = Path(__file__).resolve().parents[2]
    tmp_path.mkdir(parents=True)
    shutil.copy2(root / "dvc.yaml", tmp_path / "dvc.yaml")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["generate"]["extra"] = extra
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
    return tmp_path


def _dvc(project, *args):
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, capture_output=True, text=True)


def test_the_extra_block_gives_the_same_runs_to_dvc_and_to_sweep_params(tmp_path):
    """params.yaml's generate.extra (the paper: 4dfy on Table 2's other prompts, the ablations on 5) adds
    generate_extra@ and render_extra@ stages with the generate stage's command, and `sweep --params` plans
    exactly the runs of both blocks. A run in both blocks is refused by both."""
    import yaml

    project = _dvc_project_with(tmp_path / "p", {"methods": ["4dfy"], "prompts": ["a_space_shuttle_launching", "a_corgi_playing_with_a_ball"]})
    listed = _dvc(project, "stage", "list", "--name-only")
    assert listed.returncode == 0, listed.stderr
    names = listed.stdout.split()
    assert {"generate_extra@4dfy-a_space_shuttle_launching", "generate_extra@4dfy-a_corgi_playing_with_a_ball",
            "render_extra@4dfy-a_space_shuttle_launching", "render_extra@4dfy-a_corgi_playing_with_a_ball"} <= set(names)
    dvc_yaml = yaml.safe_load((project / "dvc.yaml").read_text())
    assert dvc_yaml["stages"]["generate_extra"]["cmd"] == dvc_yaml["stages"]["generate"]["cmd"]
    assert dvc_yaml["stages"]["render_extra"]["outs"] == dvc_yaml["stages"]["render"]["outs"]
    runs = {n.split("@", 1)[1] for n in names if n.startswith(("generate@", "generate_extra@"))}
    res = CliRunner().invoke(app, ["sweep", "--params", str(project / "params.yaml"), "--runs",
                                   str(tmp_path / "runs"), "--dry-run"])
    assert res.exit_code == 0, res.output
    planned = {line.split()[0] for line in res.output.strip().splitlines()[1:]}
    assert planned == runs and len(runs) == len(yaml.safe_load((project / "params.yaml").read_text())
                                                 ["generate"]["methods"]) + 2

    both = _dvc_project_with(tmp_path / "q", {"methods": ["4dfy"], "prompts": ["a_panda_dancing"]})
    clash = _dvc(both, "dag")  # builds the graph, where DVC checks outputs
    assert clash.returncode != 0 and "generate_extra@4dfy-a_panda_dancing" in clash.stderr, clash.stderr
    res = CliRunner().invoke(app, ["sweep", "--params", str(both / "params.yaml"), "--runs",
                                   str(tmp_path / "runs"), "--dry-run"])
    assert res.exit_code == 2 and "4dfy-a_panda_dancing are in both generate and generate.extra" in res.output


def test_runs_of_both_blocks_on_one_prompt_share_stages():
    """wo_hybrid in the main block and 4dfy in the extra one, on the same prompt: one group, so stages 1-2 are
    trained once (planning the blocks apart made both leaders, training them twice in parallel)."""
    jobs = plan(SweepSpec(methods=("wo_hybrid",), prompts=(SLUG,), extra_methods=("4dfy",), extra_prompts=(SLUG,)))
    by_name = {j.name: j for j in jobs}
    assert set(by_name) == {f"wo_hybrid-{SLUG}", f"4dfy-{SLUG}"}
    assert by_name[f"4dfy-{SLUG}"].after == f"wo_hybrid-{SLUG}" and by_name[f"4dfy-{SLUG}"].shared_stages == 2


def test_a_terminated_local_sweep_stops_its_jobs_and_the_same_command_resumes(tmp_path):
    """`kill` (SIGTERM) on the sweep ends it as Ctrl-C does: one error line, its local job stopped (left running,
    it held its run folder and the next sweep failed on it), and the same command then finishes the run."""
    from pipelines.generate import RunInUse, run_folder_lock

    runs = tmp_path / "runs"
    run = runs / "tiny" / "4dfy" / SLUG
    args, returncode, out, err = stop_sweep_mid_training(runs, SLUG, signal.SIGTERM)
    assert returncode == 143, out + err  # 128 + SIGTERM, as `generate` exits
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("error: sweep terminated (SIGTERM): its local jobs were stopped"), err
    assert "Traceback" not in err
    try:
        with run_folder_lock(run):  # nothing trains it any more
            pass
    except RunInUse:
        raise AssertionError("the sweep's job still trains the run after the sweep ended")
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    m = json.loads((run / "manifest.json").read_text())
    assert m["resumes"], "the second sweep started the run over instead of resuming it"

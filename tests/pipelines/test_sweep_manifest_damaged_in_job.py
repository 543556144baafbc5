"""A manifest.json damaged after the sweep checked its run folders (e.g. while the job waited for its leader) is found
by the job itself, when it runs generate: its error used to give `fourdfy generate`'s way on (`--resume`, which a sweep
has not). Now the job fails with the sweep's own words, as a job found damaged before submission does."""

from __future__ import annotations

import json

import pytest

from pipelines.generate import DamagedManifest
from pipelines.sweep import ExecutorSpec, GenerateJob, SweepSpec, plan, run_sweep

SLUG = "a_panda_dancing"
SETS = {"preview_frames": "0", "heartbeat_s": "0"}


@pytest.mark.parametrize("last", [True, False])
def test_the_job_itself_says_to_run_the_same_sweep_again(tmp_path, last):
    """The job's callable, as submitit runs it, on a run folder whose manifest was truncated after planning."""
    spec = SweepSpec(methods=("4dfy",), prompts=(SLUG,), runs=tmp_path / "runs", max_steps=1, sets=SETS)
    (j,) = plan(spec)  # planned while the folder is empty
    j.out.mkdir(parents=True)
    (j.out / "manifest.json").write_text('{"method": "4dfy", "pro')
    if last:
        (j.out / "ckpt").mkdir()
        (j.out / "ckpt" / "last.pt").write_bytes(b"only its presence decides the way on")
    job = GenerateJob(spec, j.method, j.prompt, j.out.resolve(), spec.profile_dir / ".stage-cache", j.config_hash)
    with pytest.raises(DamagedManifest) as info:
        job()
    said, path = str(info.value), j.out.resolve() / "manifest.json"
    assert said.startswith(f"{path} is damaged (not valid JSON: ")
    if last:
        assert said.endswith(f"remove {path} and run the same sweep again to continue from ckpt/last.pt; the manifest "
                             "is written again when the run ends (at once if last.pt is the final checkpoint)"), said
    else:
        assert said.endswith(f"there is no ckpt/last.pt beside it to continue from: move {j.out.resolve()} away and "
                             "run the same sweep again to train it"), said
    assert "--resume" not in said and "the command again" not in said
    assert info.value.has_last is last
    assert (j.out / "manifest.json").read_text() == '{"method": "4dfy", "pro'  # nothing changed


def test_a_manifest_damaged_while_its_job_waits_fails_that_job_in_the_sweeps_words(tmp_path):
    """wo_hybrid waits for its leader 4dfy (they share stages). While 4dfy runs, something writes a damaged
    manifest.json into wo_hybrid's (empty) run folder: the sweep had planned it as a run to train, so its job is
    submitted and finds the manifest itself. The summary's error names the file relative to the runs folder and the
    sweep's way on; the damaged file is kept. (The leader fails at once on an unreadable ckpt/last.pt, which
    spares training it: a follower starts after a failed leader as after a finished one.)"""
    runs = tmp_path / "runs"
    spec = SweepSpec(methods=("4dfy", "wo_hybrid"), prompts=(SLUG,), runs=runs, max_steps=1, sets=SETS)
    leader, follower = runs / "tiny" / "4dfy" / SLUG, runs / "tiny" / "wo_hybrid" / SLUG
    (leader / "ckpt").mkdir(parents=True)
    (leader / "ckpt" / "last.pt").write_bytes(b"not a checkpoint")

    def damage_the_follower(job, sj):
        if job.method == "4dfy":  # wo_hybrid is submitted only once 4dfy has ended
            follower.mkdir(parents=True)
            (follower / "manifest.json").write_bytes(b"\xff\xfe{")

    lines: list[str] = []
    summary = run_sweep(spec, ExecutorSpec(kind="local", parallel=2, poll_s=0.2), echo=lines.append,
                        on_submit=damage_the_follower)
    assert [line.split()[1] for line in lines if line.startswith("submitted ")] == [f"4dfy-{SLUG}", f"wo_hybrid-{SLUG}"]
    jobs = {j["name"]: j for j in summary["jobs"]}
    assert jobs[f"4dfy-{SLUG}"]["state"] == "failed" and "last.pt" in jobs[f"4dfy-{SLUG}"]["error"]
    assert jobs[f"wo_hybrid-{SLUG}"]["state"] == "failed"
    assert jobs[f"wo_hybrid-{SLUG}"]["error"] == (
        f"DamagedManifest: wo_hybrid/{SLUG}/manifest.json is damaged (not UTF-8 text); there is no ckpt/last.pt beside "
        f"it to continue from: move wo_hybrid/{SLUG} away and run the same sweep again to train it")
    written = json.loads((runs / "tiny" / "sweep" / "sweep.json").read_text())
    assert {j["name"]: j for j in written["jobs"]}[f"wo_hybrid-{SLUG}"]["error"] == jobs[f"wo_hybrid-{SLUG}"]["error"]
    assert sorted(p.name for p in follower.iterdir()) == ["manifest.json"]
    assert (follower / "manifest.json").read_bytes() == b"\xff\xfe{"

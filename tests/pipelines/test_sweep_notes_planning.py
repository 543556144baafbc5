"""`fourdfy sweep` gives, once at planning time, the notes `fourdfy generate` and the DVC `methods` stage give
before training (its jobs call `pipelines.generate.generate`, which gives none of them): CUDA-only switches of CPU
jobs, a prompt that nearly spells a library prompt or has its slug, a variant that does not take its base's
`overrides:` keys, and one that no generate block lists.
`--dry-run` also marks a finished run whose manifest has odd fields, as the sweep itself does."""

from __future__ import annotations


import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.generate import parse_sets
from pipelines.sweep import SweepSpec, plan
from run_helpers import fake_finished_run

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: variants do not outlive a test
SLUG = "a_panda_dancing"
runner = CliRunner()


def _sweep(tmp_path, *args):
    return runner.invoke(app, ["sweep", "--runs", str(tmp_path / "runs"), *args])


def _notes(res) -> list[str]:
    return [line for line in res.stderr.splitlines() if line.startswith("note: ")]


def _cuda_notes(res) -> list[str]:
    return [line for line in _notes(res) if "effect only on CUDA" in line]


def test_cuda_only_switches_of_local_cpu_jobs_are_noted_once_per_set_of_switches(tmp_path):
    """Two methods x two prompts, tf32 on for all and cuda_graph on wo_hybrid's priors only (its params.yaml entry):
    one line per distinct set of idle switches, naming its methods, not one per job."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"profile": "tiny", "seed": 0,
                                      "generate": {"methods": ["4dfy", "wo_hybrid"],
                                                   "prompts": [SLUG, "a_goat_drinking_beer"]},
                                      "overrides": {"4dfy": {},
                                                    "wo_hybrid": {"guidance.*.frozen.cuda_graph": True}}}))
    res = _sweep(tmp_path, "--params", str(params), "--set", "tf32=true", "--dry-run")
    assert res.exit_code == 0, res.output
    why = "(a local job sees no GPU without --gpus N)"
    assert _cuda_notes(res) == [
        f"note: tf32 takes effect only on CUDA; the jobs of 4dfy train on the CPU {why}, where it does nothing",
        "note: tf32, guidance.*.frozen.cuda_graph take effect only on CUDA; the jobs of wo_hybrid train on the CPU "
        f"{why}, where they do nothing"]
    assert f"wo_hybrid-{SLUG}" in res.stdout  # the plan itself is still printed
    # the same sweep without CUDA-only switches says nothing
    res = _sweep(tmp_path, "--methods", "4dfy,wo_hybrid", "--prompts", SLUG, "--dry-run")
    assert res.exit_code == 0 and _notes(res) == [], res.output


@pytest.mark.parametrize("args, cuda_here, why", [
    (["--executor", "slurm"], False, None),  # a node's GPU is the cluster's affair: no note
    (["--executor", "slurm", "--gpus", "0"], False, None),
    (["--executor", "slurm", "--device", "cpu"], True, "--device cpu"),
    (["--device", "cpu", "--gpus", "1"], True, "--device cpu"),
    (["--gpus", "1"], True, None),  # a local job given a GPU of a machine with CUDA trains on it
    (["--gpus", "1"], False, "no CUDA device on this machine"),
    (["--device", "cuda"], False, None),  # refused by the job itself, not a CPU run
])
def test_where_the_jobs_train_decides_the_cuda_note(tmp_path, monkeypatch, args, cuda_here, why):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_here)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: int(cuda_here))
    res = _sweep(tmp_path, "--methods", "4dfy", "--prompts", SLUG, "--set", "tf32=true", *args, "--dry-run")
    assert res.exit_code == 0, res.output
    expected = [] if why is None else [
        f"note: tf32 takes effect only on CUDA; the jobs of 4dfy train on the CPU ({why}), where it does nothing"]
    assert _cuda_notes(res) == expected


def test_a_prompt_nearly_spelling_a_library_prompt_gets_generates_did_you_mean_once(tmp_path):
    """From --prompts and from --prompts-file, once per prompt whatever the number of methods; a slug, a library
    prompt's own text and a prompt far from every library prompt get no note."""
    own = tmp_path / "mine.txt"
    own.write_text("A goat drinkin beer.\nA cat playing the cello on the moon.\n")
    res = _sweep(tmp_path, "--methods", "4dfy,wo_hybrid", "--prompts", "A panda dancin.", "--prompts", SLUG,
                 "--prompts", "A goat drinking beer.", "--prompts-file", str(own), "--dry-run")
    assert res.exit_code == 0, res.output
    assert _notes(res) == [
        "note: prompt 'A panda dancin.' is not a prompt of the library; did you mean 'A panda dancing.'? (the sweep "
        "trains it as given)",
        "note: prompt 'A goat drinkin beer.' is not a prompt of the library; did you mean 'A goat drinking beer.'? "
        "(the sweep trains it as given)"]


def test_a_prompt_with_a_library_prompts_slug_is_noted_before_the_jobs_whose_folders_it_takes(tmp_path):
    """'A panda dancing' (no full stop) trains into a_panda_dancing's run folders: generate's note after its run,
    here once at planning, whatever the number of methods; the library prompt itself gets none."""
    res = _sweep(tmp_path, "--methods", "4dfy,wo_hybrid", "--prompts", "A panda dancing", "--dry-run")
    assert res.exit_code == 0, res.output
    assert _notes(res) == [
        f"note: prompt 'A panda dancing' has the slug {SLUG} of the library prompt 'A panda dancing.'; its runs take "
        f"that prompt's run folders (<method>/{SLUG}) and are paired with its runs by slug in the survey and CLIP "
        f"tables (--prompts {SLUG} trains the library prompt itself)"]
    assert f"4dfy-{SLUG}" in res.stdout
    for prompt in ("A panda dancing.", SLUG):
        res = _sweep(tmp_path, "--methods", "4dfy", "--prompts", prompt, "--dry-run")
        assert res.exit_code == 0 and _notes(res) == [], res.output


def test_with_params_and_no_methods_an_unlisted_variant_is_noted_as_the_methods_stage_does(tmp_path):
    """The sweep then trains exactly the DVC generate stages' runs, so a variant no generate block lists is not
    trained, as in `dvc repro`; given --methods, the sweep trains what they name and says nothing of it."""
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"profile": "tiny", "seed": 0,
                                    "generate": {"methods": ["4dfy"], "prompts": [SLUG]},
                                    "overrides": {"4dfy": {}, "fast_video": {"base": "4dfy", "weights.sds_video": 0.3}}}))
    res = _sweep(tmp_path, "--params", str(path), "--dry-run")
    assert res.exit_code == 0, res.output
    assert _notes(res) == [
        "note: overrides: defines the variant 'fast_video', which no generate block lists, so it is neither trained "
        "nor reported; add it to generate.methods (or generate.extra.methods) to train it, or remove the entry"]
    assert "fast_video" not in res.stdout
    res = _sweep(tmp_path, "--params", str(path), "--methods", "4dfy,fast_video", "--dry-run")
    assert res.exit_code == 0 and _notes(res) == [], res.output
    assert f"fast_video-{SLUG}" in res.stdout


def _variant_params(tmp_path, base_entry: dict):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"profile": "tiny", "seed": 0,
                                    "generate": {"methods": ["4dfy", "fast_video"], "prompts": [SLUG]},
                                    "overrides": {"4dfy": base_entry,
                                                  "fast_video": {"base": "4dfy", "weights.sds_video": 0.3}}}))
    return path


def test_with_params_a_variant_not_taking_its_bases_keys_is_noted_as_the_methods_stage_does(tmp_path):
    res = _sweep(tmp_path, "--params", str(_variant_params(tmp_path, {"stages.stage1.steps": 3})), "--dry-run")
    assert res.exit_code == 0, res.output
    assert _notes(res) == [
        "note: overrides.fast_video (a variant of 4dfy) does not take the keys of overrides.4dfy "
        "(stages.stage1.steps=3): they change 4dfy's own runs only; to train fast_video with them too, add them to "
        "overrides.fast_video"]
    # only for variants the sweep trains, and not where the base's entry has no config key
    res = _sweep(tmp_path, "--params", str(_variant_params(tmp_path, {"stages.stage1.steps": 3})), "--methods",
                 "4dfy", "--dry-run")
    assert res.exit_code == 0 and _notes(res) == [], res.output
    res = _sweep(tmp_path, "--params", str(_variant_params(tmp_path, {"label": "4D-fy"})), "--dry-run")
    assert res.exit_code == 0 and _notes(res) == [], res.output


def _finished_runs(tmp_path, sets: list[str], manifest_extra: dict | None = None):
    """Finished runs of the sweep's configs (not submitted again: the sweep plans and checks without training)."""
    runs = tmp_path / "runs"
    jobs = plan(SweepSpec(methods=("4dfy", "wo_hybrid"), prompts=(SLUG,), runs=runs, max_steps=1,
                          sets=parse_sets(sets)))
    for j in jobs:
        j.out.mkdir(parents=True)
        fake_finished_run(j.out, {"config_hash": j.config_hash, "prompt": j.prompt, **(manifest_extra or {})})
    return runs


def test_a_real_sweep_gives_the_notes_once_before_it_submits_and_not_with_a_refusal(tmp_path):
    runs = _finished_runs(tmp_path, ["tf32=true"])
    args = ["--methods", "4dfy,wo_hybrid", "--prompts", SLUG, "--max-steps", "1", "--set", "tf32=true"]
    res = _sweep(tmp_path, *args)
    assert res.exit_code == 0, res.output
    note = ("note: tf32 takes effect only on CUDA; the jobs of 4dfy, wo_hybrid train on the CPU (a local job sees no "
            "GPU without --gpus N), where it does nothing")
    assert _notes(res) == [note]
    lines = res.output.splitlines()
    assert lines.index(note) < next(i for i, line in enumerate(lines) if line.startswith("sweep: 2 runs"))
    # runs of another config in the run folders (fewer steps): the sweep refuses, in its one line, without the note
    res = runner.invoke(app, ["sweep", "--runs", str(runs), "--methods", "4dfy,wo_hybrid", "--prompts", SLUG,
                              "--max-steps", "2", "--set", "tf32=true"])
    assert res.exit_code == 2, res.output
    assert [line for line in res.output.splitlines() if line.strip()][0].startswith("error: 2 run folder(s) hold")
    assert _notes(res) == []


def test_dry_run_marks_a_finished_run_with_an_odd_manifest(tmp_path):
    _finished_runs(tmp_path, [], {"resumes": 3, "timings_s": {"stage1": 1}})
    res = _sweep(tmp_path, "--methods", "4dfy,wo_hybrid", "--prompts", SLUG, "--max-steps", "1", "--dry-run")
    assert res.exit_code == 0, res.output
    rows = {line.split()[0]: line for line in res.stdout.splitlines()[1:]}
    for name in (f"4dfy-{SLUG}", f"wo_hybrid-{SLUG}"):
        assert rows[name].endswith("finished (skipped); odd manifest.json: resumes is a number, not a list: shown as "
                                   "unknown"), rows[name]
    # a manifest as the trainer writes it: the status alone
    _finished_runs(tmp_path / "good", [], {"resumes": [], "timings_s": {"stage1": 1}})
    res = runner.invoke(app, ["sweep", "--runs", str(tmp_path / "good" / "runs"), "--methods", "4dfy", "--prompts",
                              SLUG, "--max-steps", "1", "--dry-run"])
    assert res.exit_code == 0 and res.stdout.splitlines()[1].endswith("finished (skipped)"), res.output

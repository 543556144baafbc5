"""Variants of params.yaml's `overrides:` through the pipeline: the `methods` stage writes their configs and labels,
the design and tables name them, `fourdfy generate --set-from FILE:overrides.NAME` trains one (its keys applied
once), `fourdfy sweep --params` plans them with their base, and a sweep job's own process resolves them."""

import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from baselines import METHODS
from pipelines import stages
from pipelines.cli import app
from pipelines.generate import build_config, read_set_from
from userstudy.design import load_design

REPO = Path(__file__).resolve().parents[2]
SLUG = "a_panda_dancing"
QUIET = {"preview_frames": "0", "heartbeat_s": "0"}
runner = CliRunner()


pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: variants do not outlive a test


def _params(tmp_path, methods=("4dfy", "video03"), **overrides):
    entries = {"4dfy": {}, "video03": {"base": "4dfy", "label": "4D-fy, video 0.3", "weights.sds_video": 0.3},
               **overrides}
    params = {"seed": 0, "profile": "tiny", "generate": {"methods": list(methods), "prompts": [SLUG]},
              "overrides": entries, "videos": {"mav3d": {"folder": "data/videos/mav3d", "trajectory": "orbit"}},
              "study": {"design": "userstudy/designs/paper.yaml"}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_the_methods_stage_writes_a_variants_config_and_label_and_the_tables_name_it(tmp_path):
    params = _params(tmp_path, **{"4dfy": {"label": "Ours"}})
    out = stages.write_methods(params, tmp_path / "methods")
    assert sorted(p.name for p in (out / "config").iterdir()) == ["4dfy.json", "video03.json"]
    mine = json.loads((out / "config" / "video03.json").read_text())
    base = json.loads((out / "config" / "4dfy.json").read_text())
    assert (mine["method"], mine["weights"]["sds_video"], base["weights"]["sds_video"]) == ("video03", 0.3, 0.1)
    assert {k: v for k, v in mine.items() if k not in ("method", "weights")} == {
        k: v for k, v in base.items() if k not in ("method", "weights")}
    # mav3d (under videos:) keeps its registered label, the paper's
    assert json.loads((out / "labels.json").read_text()) == {"4dfy": "Ours", "video03": "4D-fy, video 0.3",
                                                             "mav3d": "MAV3D"}
    design = load_design(stages.write_design(params, tmp_path / "design.yaml", out / "labels.json"))
    assert design.label("video03") == "4D-fy, video 0.3" and "video03" in design.comparisons
    assert design.label("4dfy") == "Ours"  # params.yaml's label wins over the paper design's "4D-fy"
    assert design.label("wo_hybrid") == load_design("userstudy/designs/paper.yaml").label("wo_hybrid")


def test_the_methods_stage_reports_a_bad_variant_in_one_line_and_keeps_its_output(tmp_path, capsys):
    good = _params(tmp_path)
    out = stages.write_methods(good, tmp_path / "methods")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    params = _params(tmp_path, methods=("4dfy", "video03", "strong_video"),
                     video03={"base": "4dfyy", "weights.sds_video": 0.3}, strong_video={"weights.sds_video": 0.3})
    with pytest.raises(SystemExit) as exit_:
        stages.main(["methods", "--params", str(params), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {params}: overrides.video03: base: unknown method '4dfyy' (did you mean "
                             "'4dfy'?); known methods: 4dfy"), err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    params = _params(tmp_path, methods=("4dfy", "strong_video"), strong_video={"weights.sds_video": 0.3})
    with pytest.raises(SystemExit):
        stages.main(["methods", "--params", str(params), "--out", str(out)])
    line = capsys.readouterr().err.strip()
    assert ("unknown method 'strong_video' (overrides.strong_video has no base:; add e.g. base: 4dfy to define it "
            "as a variant)") in line and line.endswith("a variant of a registered method is an entry of overrides: "
                                                       "with base: (docs/pipeline.md)")


def test_generate_set_from_trains_a_variant_whose_manifest_names_it(tmp_path, monkeypatch):
    """What dvc.yaml's generate stage runs, in the params file's folder: the variant trains (1 step a stage), its
    manifest names it and its base, and its config is the one `fourdfy sweep --params` plans for it."""
    params = _params(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "videos" / "mav3d").mkdir(parents=True)  # read_params below checks `videos:` folders exist
    out = tmp_path / "runs" / "tiny" / "video03" / SLUG
    res = runner.invoke(app, ["generate", "--method", "video03", "--prompt", SLUG, "--profile", "tiny",
                              "--max-steps", "1", "--out", str(out), "--auto-resume", "--no-progress", "--quiet",
                              "--set-from", "params.yaml:overrides.video03", "--set", "preview_frames=0"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == manifest["config"]["method"] == "video03"
    assert manifest["config"]["weights"]["sds_video"] == 0.3
    assert manifest["request"]["variant"] == {"base": "4dfy", "set": {"weights.sds_video": "0.3"},
                                              "from": "params.yaml:overrides.video03"}
    assert manifest["request"]["set"] == {"preview_frames": "0"}  # the variant's keys are not --set values

    from pipelines.sweep import SweepSpec, plan, read_params

    p = read_params(params)
    METHODS.pop("video03")  # the sweep registers it itself
    spec = SweepSpec(methods=("video03",), prompts=(SLUG,), runs=tmp_path / "runs", max_steps=1,
                     sets={"preview_frames": "0"}, method_sets=p["overrides"], variants=p["variants"])
    assert plan(spec)[0].config_hash == manifest["config_hash"]


def test_a_variants_keys_are_the_methods_and_hold_over_its_bases_transform(tmp_path):
    """The entry's keys are the variant's own (no --set values), and the value it sets is the value trained:
    single_grid doubles the 4D grid's table in its transform, yet the variant's 2^15 rows stay 2^15, as its
    manifest says."""
    params = _params(tmp_path, big_grid={"base": "single_grid", "field.dynamic_grid.log2_hashmap_size": 15})
    sets, note = read_set_from(f"{params}:overrides.big_grid", "big_grid")
    assert sets == {} and note["base"] == "single_grid"
    assert build_config("tiny", "big_grid", sets=sets).field.dynamic_grid.log2_hashmap_size == 15
    # an entry of a registered method gives --set values; its label is no config key
    sets, note = read_set_from(f"{params}:overrides.4dfy", "4dfy")
    assert (sets, note) == ({}, {})
    params = _params(tmp_path, **{"4dfy": {"label": "Ours", "weights.sds_video": 0.2}})
    assert read_set_from(f"{params}:overrides.4dfy", "4dfy") == ({"weights.sds_video": "0.2"}, {})


def test_a_variant_of_a_variant_resolves_in_a_fresh_registry_as_the_generate_stage_reads_it(tmp_path, registry):
    """The generate stage's process knows only the registered methods: `--set-from FILE:overrides.v2` with
    v2's base a variant of the same file registers the chain first, and v2 resolves as the methods stage has it."""
    from baselines import register_variants, resolve_config

    params = _params(tmp_path, v2={"base": "video03", "weights.sparsity": 5.0})
    sets, note = read_set_from(f"{params}:overrides.v2", "v2")
    assert sets == {} and note["base"] == "video03" and "video03" in registry
    got = build_config("tiny", "v2", sets=sets)
    assert got.weights.sds_video == 0.3 and got.weights.sparsity == 5.0
    registry.pop("v2"), registry.pop("video03")
    register_variants(yaml.safe_load(params.read_text())["overrides"], source=str(params))
    assert resolve_config("tiny", "v2").config_hash() == got.config_hash()


def test_generate_refuses_a_variants_entry_for_another_method_and_base_on_a_builtin(tmp_path):
    params = _params(tmp_path, wo_hybrid={"base": "4dfy", "weights.sds_video": 0.3})
    res = runner.invoke(app, ["generate", "--method", "4dfy", "--prompt", SLUG, "--out", str(tmp_path / "a"),
                              "--set-from", f"{params}:overrides.video03"])
    assert res.exit_code == 2 and "defines the variant 'video03' (base: 4dfy); train it with --method video03" \
        in res.output, res.output
    res = runner.invoke(app, ["generate", "--method", "wo_hybrid", "--prompt", SLUG, "--out", str(tmp_path / "b"),
                              "--set-from", f"{params}:overrides.wo_hybrid"])
    assert res.exit_code == 2 and "but 'wo_hybrid' is already registered (built-in" in res.output, res.output
    res = runner.invoke(app, ["generate", "--method", "video03", "--prompt", SLUG, "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "--set-from params.yaml:overrides.video03" in res.output, res.output
    assert not any((tmp_path / d).exists() for d in "abc")


def test_sweep_params_plans_variants_sharing_stages_with_their_base_and_methods_lists_them(tmp_path):
    params = _params(tmp_path, methods=("video03", "4dfy", "video1"),
                     video1={"base": "4dfy", "description": "video weight 1", "weights.sds_video": 1.0})
    res = runner.invoke(app, ["sweep", "--params", str(params), "--runs", str(tmp_path / "runs"), "--dry-run"])
    assert res.exit_code == 0, res.output
    rows = [line.split() for line in res.output.strip().splitlines()[1:]]
    # the three share stages 1-2 (the method's name is no part of the stage cache's key): the first listed leads
    assert [r[:3] for r in rows] == [[f"video03-{SLUG}", "to", "train"], [f"4dfy-{SLUG}", f"video03-{SLUG}", "2"],
                                     [f"video1-{SLUG}", f"video03-{SLUG}", "2"]]
    res = runner.invoke(app, ["methods", "--params", str(params)])
    assert res.exit_code == 0, res.output
    lines = {line.split()[0]: line for line in res.output.splitlines()}
    assert re.search(r"variant of 4dfy: weights.sds_video=0.3 +\[label '4D-fy, video 0.3'\]", lines["video03"])
    assert lines["video1"].endswith(f"[variant of 4dfy: weights.sds_video=1.0; {params}]")


def test_a_sweep_job_registers_the_variant_in_its_own_process(tmp_path):
    """A submitit job is the pickled GenerateJob, called in a fresh process whose registry has no variant."""
    from pipelines.sweep import STAGE_CACHE, GenerateJob, SweepSpec, plan, read_params

    params = _params(tmp_path)
    p = read_params(params)
    spec = SweepSpec(methods=("video03",), prompts=(SLUG,), runs=tmp_path / "runs", max_steps=1, sets=QUIET,
                     device="cpu", method_sets=p["overrides"], variants=p["variants"], variants_from=str(params))
    job = plan(spec)[0]
    (tmp_path / "job.pkl").write_bytes(pickle.dumps(GenerateJob(spec, job.method, job.prompt, job.out,
                                                                spec.profile_dir / STAGE_CACHE, job.config_hash)))
    code = "import pickle, sys; print(pickle.load(open(sys.argv[1], 'rb'))()['config_hash'])"
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "job.pkl")], cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.split()[-1] == job.config_hash
    manifest = json.loads((job.out / "manifest.json").read_text())
    assert manifest["method"] == "video03" and manifest["request"]["variant"] == {
        "base": "4dfy", "set": {"weights.sds_video": "0.3"}, "from": f"{params}:overrides.video03"}


def test_the_documented_sweep_recipe_defines_variants_sharing_stages_1_2_with_4dfy():
    """docs/pipeline.md's three values of the video SDS weight: each a variant of 4dfy with its value and label,
    and each loading 4dfy's stages 1-2 from the cache (the sweep's plan)."""
    from pipelines.sweep import SweepSpec, plan

    text = (REPO / "docs" / "pipeline.md").read_text()
    section = text.split("## Your own variants and parameter sweeps", 1)[1].split("\n## ", 1)[0]
    doc = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    variants = {m: e for m, e in doc["overrides"].items() if e and "base" in e}
    assert len(variants) == 3 and all(e["label"] for e in variants.values())
    spec = SweepSpec(methods=tuple(doc["generate"]["methods"]), prompts=tuple(doc["generate"]["prompts"]),
                     variants=variants)
    jobs = {j.method: j for j in plan(spec)}
    assert {m: (jobs[m].after, jobs[m].shared_stages) for m in variants} == {
        m: (f"4dfy-{SLUG}", 2) for m in variants}
    assert sorted(build_config("tiny", m).weights.sds_video for m in variants) == [0.05, 0.3, 1.0]

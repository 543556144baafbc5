"""The `fourdfy` CLI as a user sees it: one-line errors (exit 2), --verbose tracebacks, --set/--max-steps,
the resume rules of `generate`, and quiet logs with a heartbeat when the output is not a terminal."""

import json
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def fourdfy(*args, env=None, timeout=600):
    """Run the real console entry point in a subprocess (what a user or DVC sees)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", "from pipelines.cli import main; main()", *args],
                          capture_output=True, text=True, env=full_env, timeout=timeout)


def test_info_reports_versions_device_and_backends():
    res = runner.invoke(app, ["info"])
    assert res.exit_code == 0, res.output
    for key in ("torch", "diffusers", "nerfacc", "device", "tinycudann", "nerfacc CUDA", "hash grid"):
        assert key in res.output
    assert "cpu" in res.output or "cuda" in res.output


def test_methods_lists_the_registry():
    res = runner.invoke(app, ["methods"])
    assert res.exit_code == 0
    for name in ("4dfy", "wo_3d_img", "wo_3d", "wo_img", "wo_hybrid", "hexplane", "single_stage", "single_grid"):
        assert name in res.output
    assert "videos only" in res.output  # mav3d
    # the built-ins register the paper's table labels (userstudy/designs/paper.yaml)
    assert "[label '4D-fy']" in next(ln for ln in res.output.splitlines() if ln.startswith("4dfy "))


def test_generate_unknown_method_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["generate", "--prompt", "A panda dancing.", "--method", "4dfy_v9",
                              "--out", str(tmp_path / "run")])
    assert res.exit_code == 2
    assert "unknown method" in res.output and "wo_hybrid" in res.output
    assert not (tmp_path / "run").exists()  # nothing created


def test_generate_unknown_profile_and_prompt_slug(tmp_path):
    res = runner.invoke(app, ["generate", "--prompt", "x", "--profile", "huge", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown profile" in res.output
    res = runner.invoke(app, ["generate", "--prompt", "a_missing_slug", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "no prompt with slug" in res.output


def test_errors_are_one_line_and_the_traceback_needs_verbose(tmp_path):
    res = fourdfy("generate", "--prompt", "A panda dancing.", "--set", "weights.sds_vide=1", "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "weights.sds_vide" in lines[0] and "weights.sds_video" in lines[0]  # lists the valid keys
    assert "Traceback" not in res.stderr
    res = fourdfy("--verbose", "generate", "--prompt", "A panda dancing.", "--set", "weights.sds_vide=1",
                  "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and "Traceback" in res.stderr and res.stderr.strip().splitlines()[-1].startswith("error: ")


def test_a_videos_only_method_and_an_unwritable_out_are_one_line_errors(tmp_path):
    res = runner.invoke(app, ["generate", "--prompt", "A panda dancing.", "--method", "mav3d", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "import-videos" in res.output
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    res = fourdfy("generate", "--prompt", "A panda dancing.", "--max-steps", "1", "--out", str(blocker / "run"))
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ") and "a_file" in res.stderr


def test_set_reaches_nested_and_prior_fields_and_rejects_bad_values():
    from method.configs import ConfigKeyError
    from pipelines.generate import build_config, parse_sets

    cfg = build_config("tiny", "4dfy", sets=parse_sets(["stages.stage3.steps=20", "guidance.video.guidance_scale=50",
                                                         "weights.sds_video=0.3", "render.video_size=[8, 12]"]))
    assert cfg.stage("stage3").steps == 20 and cfg.guidance["video"].guidance_scale == 50.0
    assert cfg.weights.sds_video == 0.3 and cfg.render.video_size == (8, 12)
    with pytest.raises(ConfigKeyError, match="expected an integer"):
        build_config("tiny", "4dfy", sets={"stages.stage3.steps": "many"})
    with pytest.raises(ConfigKeyError, match="expected an integer"):
        build_config("tiny", "4dfy", sets={"stages.stage3.steps": "2.5"})
    with pytest.raises(ValueError, match="stage names must differ"):  # they name checkpoints and logs
        build_config("tiny", "4dfy", sets={"stages.stage3.name": "stage2"})
    # an integral float is an integer: the release's YAML writes train_max_nums as 2e6
    budget = build_config("tiny", "4dfy", sets={"stages.stage1.grad_max_samples": "2e6"})
    assert budget.stage("stage1").grad_max_samples == 2_000_000
    assert isinstance(budget.stage("stage1").grad_max_samples, int)
    with pytest.raises(ConfigKeyError, match="KEY=VALUE"):
        parse_sets(["stages.stage3.steps"])
    capped = build_config("tiny", "4dfy", max_steps=3)
    assert [s.steps for s in capped.stages] == [3, 3, 3]
    assert capped.config_hash() != build_config("tiny", "4dfy").config_hash()


@pytest.mark.parametrize("key, value, says", [
    ("stages.stage3.steps", "-5", "stages.stage3.steps must be an integer >= 0"),
    ("stages.stage2.p_3d", "1.5", "stages.stage2.p_3d is a probability, from 0 to 1; got 1.5"),
    ("stages.stage3.p_img", "-0.1", "stages.stage3.p_img is a probability"),
    ("stages.stage1.dynamic_time", "later", "stages.stage1.dynamic_time must be 'zero' or 'frame'"),
    ("stages.stage1.mv_resolution", "[[100, 64]]", "the first from step 0"),
    ("stages.stage1.mv_groups", "[[0, 0]]", "values >= 1"),
])
def test_impossible_stage_values_are_refused_before_a_run_folder_is_made(tmp_path, key, value, says):
    """A negative step count used to train with a negative ETA, a probability of 1.5 trained as if it were 1:
    the stage config refuses them, naming the `--set` key, and no run folder is made."""
    out = tmp_path / "run"
    res = runner.invoke(app, ["generate", "--method", "4dfy", "--prompt", "a_panda_dancing", "--set",
                              f"{key}={value}", "--out", str(out)])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and res.output.startswith("error: "), res.output
    assert says in res.output and not out.exists()


def test_set_with_a_star_sets_every_entry_of_a_group():
    """`*` stands for every prior / stage: the same as setting each by name, and each must have the key."""
    from method.configs import ConfigKeyError
    from pipelines.generate import build_config, parse_sets

    star = build_config("tiny", "4dfy", sets=parse_sets(["guidance.*.frozen.half_dtype=bfloat16", "stages.*.steps=4"]))
    named = build_config("tiny", "4dfy", sets=parse_sets(
        [f"guidance.{u}.frozen.half_dtype=bfloat16" for u in ("3d", "img", "video")]
        + [f"stages.{s}.steps=4" for s in ("stage1", "stage2", "stage3")]))
    assert star == named and star.config_hash() == named.config_hash()
    assert {g.frozen.half_dtype for g in star.guidance.values()} == {"bfloat16"}
    assert star.guidance["3d"].guidance_scale == build_config("tiny", "4dfy").guidance["3d"].guidance_scale
    with pytest.raises(ConfigKeyError, match="guidance.3d.frozen.half_dtpye"):  # the first entry's key named
        build_config("tiny", "4dfy", sets=parse_sets(["guidance.*.frozen.half_dtpye=bfloat16"]))
    with pytest.raises(ValueError, match="half_dtype must be one of"):
        build_config("tiny", "4dfy", sets=parse_sets(["guidance.*.frozen.half_dtype=float8"]))
    with pytest.raises(ConfigKeyError, match="needs a key after it"):
        build_config("tiny", "4dfy", sets=parse_sets(["stages.*=3"]))
    for key, where in (("*.steps=3", "the config"), ("guidance.3d.*.x=1", "guidance.3d")):  # fields, not entries
        with pytest.raises(ConfigKeyError, match=f"{where} is not a group of named entries"):
            build_config("tiny", "4dfy", sets=parse_sets([key]))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One real `fourdfy generate --profile tiny` with 2 steps per stage, run as a user would (subprocess)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    res = fourdfy("generate", "--prompt", "a_panda_dancing", "--max-steps", "2", "--set", "heartbeat_s=0",
                  "--set", "weights.sds_video=0.2", "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    return out, res


def test_generate_logs_a_heartbeat_and_no_library_bars_when_not_a_terminal(tiny_run):
    out, res = tiny_run
    text = res.stdout + res.stderr
    assert "\r" not in text  # no progress bar redraws in a log file
    for noise in ("Loading weights", "Writing model shards", "Loading pipeline components"):
        assert noise not in text
    beats = [line for line in res.stderr.splitlines() if line.startswith("[")]
    assert len(beats) == 6 and "stage3 step 2/2" in beats[-1] and "eta" in beats[-1]
    assert res.stdout.strip().splitlines()[-1].startswith("done: ")


def test_set_and_max_steps_are_recorded_in_the_manifest(tiny_run):
    out, _ = tiny_run
    m = json.loads((out / "manifest.json").read_text())
    assert m["request"] == {"set": {"heartbeat_s": "0", "weights.sds_video": "0.2"}, "max_steps": 2}
    assert m["config"]["weights"]["sds_video"] == 0.2
    assert [s["steps"] for s in m["config"]["stages"]] == [2, 2, 2]


def test_recompute_is_execution_only_and_the_field_in_one_region_is_exact(tiny_run, tmp_path, monkeypatch):
    """The field recomputed in one region: the tiny run through all three stages really recomputes it and
    ends with bit-identical weights. `--recompute` recomputes the VAE encoders as well, under the same config
    hash, and a run stopped without it resumes with it."""
    import torch
    import torch.utils.checkpoint as tuc

    import method.render.renderer as renderer

    regions = []
    plain_checkpoint = tuc.checkpoint

    def counting(fn, *args, **kwargs):
        regions.append(type(getattr(fn, "__self__", fn)).__name__)  # a VAE block's bound __call__, or the field
        return plain_checkpoint(fn, *args, **kwargs)

    monkeypatch.setattr(tuc, "checkpoint", counting)  # what diffusers' checkpointing calls
    monkeypatch.setattr(renderer, "checkpoint", counting)
    args = ["generate", "--prompt", "a_panda_dancing", "--max-steps", "2", "--set", "heartbeat_s=0",
            "--set", "weights.sds_video=0.2", "--no-progress"]
    exact = ["--set", "renderer.recompute_field=true", "--set", "renderer.recompute_chunk=1000000000"]
    res = runner.invoke(app, [*args, *exact, "--out", str(tmp_path / "exact")])
    assert res.exit_code == 0, res.output
    assert set(regions) == {"function"} and len(regions) >= 6  # the field, in each of the 6 training renders
    plain, lean = (json.loads((d / "manifest.json").read_text()) for d in (tiny_run[0], tmp_path / "exact"))
    assert lean["config"]["renderer"]["recompute_field"] is True
    assert plain["config"]["renderer"]["recompute_field"] is False
    assert lean["config_hash"] == plain["config_hash"]
    a, b = (torch.load(d / "ckpt" / "last.pt", map_location="cpu", weights_only=False)["field"]
            for d in (tiny_run[0], tmp_path / "exact"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # stopped after stage 2 without the option (its last checkpoint), resumed with --recompute
    out = tmp_path / "lean"
    (out / "ckpt").mkdir(parents=True)
    stage2 = torch.load(tiny_run[0] / "ckpt" / "stage2.pt", map_location="cpu", weights_only=False)
    torch.save(stage2, out / "ckpt" / "last.pt")
    regions.clear()
    res = runner.invoke(app, [*args, "--recompute", "--resume", "--out", str(out)])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["config_hash"] == plain["config_hash"]
    assert all(g["frozen"]["vae_gradient_checkpointing"] for g in m["config"]["guidance"].values())
    # the manifest says the resume switched them (the config shows only the last values)
    assert m["resumes"][-1]["execution_changed"] == {
        "renderer.recompute_field": [False, True],
        **{f"guidance.{u}.frozen.vae_gradient_checkpointing": [False, True] for u in ("3d", "img", "video")}}
    assert regions.count("function") >= 2  # stage 3's two renders
    assert any(name.endswith(("DownBlock2D", "UNetMidBlock2D")) for name in regions), set(regions)


def test_a_resume_that_switches_recompute_shares_no_stage(tiny_run, tmp_path):
    """Stages computed partly without and partly with --recompute are never put in the stage cache under
    either key; the same resume without the switch does share its stage 2 (so the check can fail)."""
    import shutil

    args = ["generate", "--prompt", "a_panda_dancing", "--max-steps", "2", "--set", "heartbeat_s=0",
            "--set", "weights.sds_video=0.2", "--no-progress", "--resume"]
    for name, extra in (("switched", ["--recompute"]), ("same", [])):
        out, cache = tmp_path / name, tmp_path / f"cache-{name}"
        (out / "ckpt").mkdir(parents=True)
        shutil.copy(tiny_run[0] / "ckpt" / "stage1.pt", out / "ckpt" / "last.pt")  # stopped after stage 1
        res = runner.invoke(app, [*args, *extra, "--out", str(out), "--stage-cache", str(cache)])
        assert res.exit_code == 0, res.output
        shared = sorted(p.name for p in cache.rglob("*.pt")) if cache.exists() else []
        assert (shared == []) if extra else ("stage2.pt" in shared), (name, shared)


def test_the_done_line_marks_stages_loaded_from_the_stage_cache(tmp_path):
    """A run that loads stages 1-2 from another method's cached stages says so, rather than list their times
    as if it had trained them."""
    cache = tmp_path / "cache"
    args = ["generate", "--prompt", "a_panda_dancing", "--max-steps", "2", "--set", "heartbeat_s=0", "--no-progress",
            "--stage-cache", str(cache)]
    first = runner.invoke(app, [*args, "--method", "4dfy", "--out", str(tmp_path / "a")])
    assert first.exit_code == 0 and "shared" not in first.output, first.output
    second = runner.invoke(app, [*args, "--method", "wo_hybrid", "--out", str(tmp_path / "b")])
    assert second.exit_code == 0, second.output
    done = next(line for line in second.output.splitlines() if line.startswith("done: "))
    assert re.search(r"stage1 \d+s \(shared from 4dfy\), stage2 \d+s \(shared from 4dfy\), stage3 \d+s\)$", done), done


def test_resume_rules_never_delete_a_run_the_pipeline_did_not_make(tiny_run, tmp_path):
    import shutil

    from pipelines.generate import PIPELINE_MARKER, build_config, generate

    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)  # a run the user trained by hand
    cfg = build_config("tiny", "4dfy", max_steps=2, sets={"heartbeat_s": "0", "weights.sds_video": "0.2"})
    before = (out / "ckpt" / "last.pt").read_bytes()
    m = generate(cfg, "a_panda_dancing", out, resume="auto", quiet=True)  # same config: nothing to do
    assert m["config_hash"] == cfg.config_hash() and (out / "ckpt" / "last.pt").read_bytes() == before
    other = build_config("tiny", "4dfy", max_steps=1)
    from method.training.checkpoint import CheckpointMismatch
    with pytest.raises(CheckpointMismatch, match="not made by the pipeline"):
        generate(other, "a_panda_dancing", out, resume="auto", quiet=True)
    assert (out / "ckpt" / "last.pt").read_bytes() == before  # kept
    with pytest.raises(CheckpointMismatch) as refused:  # --resume never replaces: no word on who made it
        generate(other, "a_panda_dancing", out, resume="yes", quiet=True)
    assert "another config" in str(refused.value) and "pipeline" not in str(refused.value)
    (out / PIPELINE_MARKER).write_text("made by the pipeline\n")
    m = generate(other, "a_panda_dancing", out, resume="auto", quiet=True)  # the pipeline's own: replaced
    assert m["config_hash"] == other.config_hash()
    with pytest.raises(Exception) as refused:  # no "pass --resume": resuming a finished run trains nothing
        generate(other, "a_panda_dancing", out, resume="no", quiet=True)
    assert str(refused.value) == (f"{out} already holds a finished run (render it: `fourdfy render {out} --out "
                                  "ARTIFACTS`); choose another --out, or move it away to train it again")


def test_near_misses_and_a_library_prompt_in_other_words_are_named(tmp_path):
    """A mistyped method or slug gets a "did you mean"; free text whose slug is a library prompt's with other words
    (no full stop) trains, with a note: runs are paired by slug, so it would be compared with that prompt's runs."""
    res = runner.invoke(app, ["generate", "--method", "4dyf", "--prompt", "a_panda_dancing", "--out",
                              str(tmp_path / "a")])
    assert res.exit_code == 2 and "unknown method '4dyf' (did you mean '4dfy'?); known methods:" in res.output
    res = runner.invoke(app, ["generate", "--prompt", "a_panda_dancin", "--out", str(tmp_path / "b")])
    assert res.exit_code == 2
    assert "no prompt with slug 'a_panda_dancin' (did you mean 'a_panda_dancing'?) in" in res.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    from prompts import library_twin

    assert library_twin("A panda dancing") == "A panda dancing."
    assert library_twin("A panda dancing.") is None and library_twin("a_panda_dancing") is None
    assert library_twin("A cat juggling knives.") is None  # no library prompt has its slug
    res = runner.invoke(app, ["generate", "--prompt", "A panda dancing", "--max-steps", "1", "--no-progress",
                              "--set", "preview_frames=0", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert ("note: --prompt 'A panda dancing' has the slug a_panda_dancing of the library prompt 'A panda dancing.'; "
            "runs are paired by slug") in res.stderr


def test_missing_real_weights_is_one_line_naming_the_model_and_the_fix(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "FOURDFY_CACHE": str(tmp_path / "cache")}
    res = fourdfy("generate", "--prompt", "a_panda_dancing", "--profile", "paper", "--max-steps", "1",
                  "--device", "cpu", "--out", str(tmp_path / "run"), env=env)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.stderr
    assert "MVDream/MVDream" in lines[0] and "--set guidance.3d.model=" in lines[0]
    # the command a user copies stays delimited in the one line
    assert "`hf download MVDream/MVDream sd-v2.1-base-4view.pt --local-dir /path/to/MVDream`; then" in lines[0]


def test_the_missing_weights_hint_names_the_field_that_is_missing(tmp_path):
    """MVDream's own weights found (a tiny one), its text encoder not: the hint names `text_model`."""
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "FOURDFY_CACHE": str(tmp_path / "cache")}
    res = fourdfy("generate", "--prompt", "a_panda_dancing", "--profile", "release-lowvram", "--max-steps", "1",
                  "--device", "cpu", "--set", "guidance.3d.model=fourdfy-tiny:mvdream", "--out", str(tmp_path / "run"),
                  env=env)
    assert res.returncode == 2, res.stderr[-2000:]
    line = res.stderr.strip()
    assert "--set guidance.3d.text_model=PATH" in line and "--set guidance.3d.model=" not in line, line


def test_a_typo_in_a_methods_override_fails_when_registered_listing_valid_keys():
    from baselines import METHODS, Method, register

    with pytest.raises(ValueError) as err:
        register(Method("typo_method", "a typo", overrides={"weights.sds_vide": 0.3}))
    assert "weights.sds_vide" in str(err.value) and "weights.sds_video" in str(err.value)
    assert "typo_method" not in METHODS
    m = register(Method("cfg_method", "a prior option", overrides={"guidance.video.guidance_scale": 50.0}))
    try:
        from pipelines.generate import build_config

        assert build_config("tiny", "cfg_method").guidance["video"].guidance_scale == 50.0
    finally:
        METHODS.pop(m.name)


def test_library_warnings_print_as_one_line_without_a_source_echo():
    code = ("import pipelines.cli\nfrom method import backends\n"
            "backends.warn_once('k', 'tinycudann is not installed: using the PyTorch hash grid')\n"
            "backends.warn_once('k', 'tinycudann is not installed: using the PyTorch hash grid')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stderr == "warning: tinycudann is not installed: using the PyTorch hash grid\n"


def test_set_from_reads_a_methods_overrides_from_params_and_set_wins(tmp_path):
    from pipelines.generate import build_config, read_sets

    params = tmp_path / "params.yaml"
    params.write_text("overrides:\n  4dfy: {}\n  wo_hybrid: {weights.sds_video: 0.3, stages.stage3.steps: 7}\n")
    assert read_sets(f"{params}:overrides.4dfy") == {}
    sets = read_sets(f"{params}:overrides.wo_hybrid")
    cfg = build_config("tiny", "wo_hybrid", sets=sets)
    assert cfg.weights.sds_video == 0.3 and cfg.stage("stage3").steps == 7
    with pytest.raises(ValueError, match="has no key 'overrides.nope'"):
        read_sets(f"{params}:overrides.nope")
    res = runner.invoke(app, ["generate", "--prompt", "a_panda_dancing", "--method", "wo_hybrid", "--set-from",
                              f"{params}:overrides.wo_hybrid", "--set", "stages.stage3.steps=oops",
                              "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "stages.stage3.steps" in res.output  # --set wins, and is type-checked


def test_a_closed_stdout_ends_quietly():
    """`fourdfy info | head -2`: the reader is gone, so the command stops without an error line (click's exit 1)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # a reader that closed before the first line: every write fails with EPIPE
    try:
        res = subprocess.run([sys.executable, "-c", "from pipelines.cli import main; main()", "info"],
                             stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=600)
    finally:
        os.close(write_end)
    assert res.returncode == 1, res.stderr
    assert res.stderr == ""  # no `error: [Errno 32] Broken pipe`, no "Exception ignored" at exit


@pytest.mark.parametrize("value", ["library", "own", "yaml", "missing"])
def test_generate_refuses_a_prompt_file_given_as_the_prompt(tmp_path, value):
    from prompts import PROMPT_DIR

    own = tmp_path / "my_prompts.txt"
    own.write_text("A red fox jumping.\nA blue whale singing.\n")
    params = tmp_path / "params.yaml"
    params.write_text("profile: tiny\n")
    path = {"library": str(PROMPT_DIR / "ablation_5.txt"), "own": str(own), "yaml": str(params),
            "missing": "prompts/ablation_6.txt"}[value]
    res = runner.invoke(app, ["generate", "--prompt", path, "--out", str(tmp_path / "run")])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --prompt takes one prompt"), res.output
    assert f"not a file: {path}" in lines[0]
    hint = {"library": "--prompt 3d_rendering_of_a_fox_playing_videogame, or all of them with `fourdfy sweep "
                       f"--prompts-file {path}`",
            "own": '--prompt "A red fox jumping."', "yaml": "a slug such as a_panda_dancing",
            "missing": "a slug such as a_panda_dancing"}[value]
    assert hint in lines[0]
    assert not (tmp_path / "run").exists()  # nothing trained on the file name


def test_prompt_texts_and_slugs_are_not_taken_for_files(tmp_path, monkeypatch):
    from pipelines.commands.generate import refuse_a_prompt_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_panda_dancing").write_text("a file named like a slug\n")
    for prompt in ("a_panda_dancing", "A panda dancing.", "A cat reading notes.txt on a sofa.", "3D.", "dancing"):
        refuse_a_prompt_file(prompt)  # no error


def test_resume_of_a_finished_run_checks_the_checkpoint_render_reads(tiny_run, tmp_path):
    """A finished run with a damaged ckpt/last.pt is not `done`: one line names the stage checkpoint to
    rewrite it from, nothing is changed, and `--resume-from` that checkpoint repairs the run."""
    import hashlib
    import shutil

    import torch

    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    last = out / "ckpt" / "last.pt"
    intact = torch.load(last, map_location="cpu", weights_only=False)["field"]
    last.write_bytes(last.read_bytes()[:1000])

    def digest():
        return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*")) if p.is_file()}

    before = digest()
    args = ["generate", "--prompt", "a_panda_dancing", "--max-steps", "2", "--set", "heartbeat_s=0",
            "--set", "weights.sds_video=0.2", "--out", str(out), "--no-progress"]
    for mode in ("--resume", "--auto-resume"):
        res = runner.invoke(app, [*args, mode])
        assert res.exit_code == 2, res.output
        lines = [line for line in res.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and "finished run" in lines[0], res.output
        assert str(last) in lines[0] and f"--resume-from {out / 'ckpt' / 'stage3.pt'}" in lines[0]
        assert digest() == before  # nothing deleted or rewritten
    last.unlink()  # a deleted last.pt: the same advice
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 2 and f"--resume-from {out / 'ckpt' / 'stage3.pt'}" in res.output, res.output
    res = runner.invoke(app, [*args, "--resume-from", str(out / "ckpt" / "stage3.pt")])  # the suggested repair
    assert res.exit_code == 0, res.output
    repaired = torch.load(last, map_location="cpu", weights_only=False)["field"]
    assert all(torch.equal(intact[k], repaired[k]) for k in intact)
    # once repaired, the run is finished and intact: --resume-from would train it again and replace it
    before = digest()
    stage2 = out / "ckpt" / "stage2.pt"
    res = runner.invoke(app, [*args, "--resume-from", str(stage2)])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and lines == [
        f"error: {out} already holds a finished run, and its final checkpoint is intact: --resume-from {stage2} "
        f"would train it again and replace it; to train from that checkpoint with other settings, start a new "
        f"run: --init-from {stage2} --out ANOTHER_FOLDER"], res.output
    assert digest() == before
    res = runner.invoke(app, [*args, "--resume"])
    assert res.exit_code == 0 and "nothing to resume" not in res.output, res.output


def test_resume_where_there_is_no_run_starts_one_and_says_so(tmp_path):
    """`--resume` on an empty or missing folder trains (a resubmitted job's first try), but a mistyped --out
    should not pass unnoticed: one note names the folder."""
    out = tmp_path / "run-typo"
    res = runner.invoke(app, ["generate", "--prompt", "a_panda_dancing", "--max-steps", "1", "--set", "heartbeat_s=0",
                              "--out", str(out), "--no-progress", "--quiet", "--resume"])
    assert res.exit_code == 0, res.output
    assert f"note: nothing to resume in {out}; starting a new run there" in res.output
    assert (out / "manifest.json").is_file()


def test_help_wraps_long_words_instead_of_cutting_them():
    import re

    res = runner.invoke(app, ["generate", "--help"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    text = re.sub(r"\x1b\[[0-9;]*m", "", res.output)
    assert "…" not in text
    letters = re.sub(r"[\s│]", "", text)  # the help column's lines, joined
    for word in ("guidance.video.guidance_scale=50", "params.yaml:overrides.wo_hybrid"):
        assert word in letters
    res = runner.invoke(app, ["--help"], env={"COLUMNS": "60"})
    assert res.exit_code == 0 and "…" not in res.output
    # long option names too (a bool flag's two names take two columns): whole at 80 columns, never cut
    res = runner.invoke(app, ["analyze", "--help"], env={"COLUMNS": "80"})
    text = re.sub(r"\x1b\[[0-9;]*m", "", res.output)
    assert res.exit_code == 0 and "…" not in text
    assert "--max-failed-checks" in text and "--unanswered-missing" in text and "--exclude-unfinished" in text
    res = runner.invoke(app, ["analyze", "--help"], env={"COLUMNS": "120"})
    assert "--max-failed-checks" in res.output and "--unanswered-missing" in res.output


def test_verbose_shows_where_a_commands_own_error_was_raised(tmp_path):
    args = ["render", str(tmp_path / "nope"), "--out", str(tmp_path / "art")]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    res = runner.invoke(app, ["--verbose", *args])
    assert res.exit_code == 2 and res.stderr.startswith("error: "), res.stderr
    assert "Traceback (most recent call last)" in res.stderr and "RunError" in res.stderr


@pytest.mark.parametrize("args, says", [
    (["generate", "--prompt", "x"], "Missing option '--out'"),
    (["generate", "--prompt", "x", "--out", "unused", "--max-steps", "abc"], "'--max-steps'"),
    (["generat"], "Did you mean 'generate'"),
    (["--bogus"], "No such option: --bogus"),  # the root's own options are parsed before any command
    (["survey", "buld"], "Did you mean 'build'"),
])
def test_usage_errors_are_one_line_naming_the_help(args, says):
    res = fourdfy(*args)
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], res.stderr
    assert lines[0].endswith("--help`)")


def test_a_refused_resume_says_which_settings_differ(tmp_path, monkeypatch):
    """The refusal names the differing keys, from the manifest of a finished run and from the checkpoint of
    an unfinished one (nothing is changed in either)."""
    from method.training import checkpoint as ckpt_mod
    from method.training.trainer import Trainer
    from pipelines.generate import build_config, generate

    monkeypatch.setenv("FOURDFY_CACHE", str(tmp_path / "cache"))
    base = build_config("tiny", "4dfy", max_steps=1, device="cpu")
    # --recompute's four keys are not hashed, so they are no reason and must not crowd out the real one
    other = build_config("tiny", "4dfy", max_steps=1, device="cpu", sets={"weights.sds_video": "0.3"},
                         recompute=True)
    finished = tmp_path / "finished"
    generate(base, "a_panda_dancing", finished, quiet=True)
    with pytest.raises(ckpt_mod.CheckpointMismatch) as err:
        generate(other, "a_panda_dancing", finished, resume="yes", quiet=True)
    assert "(weights.sds_video 0.1 there, 0.3 here)" in str(err.value), str(err.value)
    unfinished = tmp_path / "unfinished"
    assert Trainer(base, "A panda dancing.", unfinished, progress=False, quiet=True).run(stop_after=1)["stopped"]
    before = (unfinished / "ckpt" / "last.pt").read_bytes()
    with pytest.raises(ckpt_mod.CheckpointMismatch) as err:
        generate(other, "a_cat_singing", unfinished, resume="yes", quiet=True)
    assert "weights.sds_video 0.1 there, 0.3 here" in str(err.value)
    assert "prompt 'A panda dancing.' there, 'A cat singing.' here" in str(err.value)
    assert (unfinished / "ckpt" / "last.pt").read_bytes() == before


def test_a_bare_group_shows_its_help_and_no_error():
    res = fourdfy("survey")
    assert "build" in res.stdout and res.stderr.strip() == ""


def test_a_run_folder_another_process_trains_is_refused_at_once_and_left_untouched(tmp_path):
    """Two `generate`s on one --out (one resuming the other's run, say) would both write its checkpoints: the
    second fails before reading or writing anything. The lock is flock on the folder itself, so it leaves no file
    behind and ends with its holder (a killed run's --resume works: tests/training/test_resume_kill.py)."""
    from pipelines.generate import run_folder_lock

    out = tmp_path / "run"
    out.mkdir()
    (out / "ckpt.pt").write_bytes(b"another run's checkpoint")
    with run_folder_lock(out):  # as the training process holds it
        res = runner.invoke(app, ["generate", "--profile", "tiny", "--prompt", "a panda dancing", "--device", "cpu",
                                  "--out", str(out), "--resume"])
    assert res.exit_code == 2 and "is being trained by another process" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["ckpt.pt"] and (out / "ckpt.pt").read_bytes().startswith(b"another")
    with run_folder_lock(out):  # released by its holder: free again
        pass


def test_ctrl_c_says_how_to_continue_and_bad_flag_pairs_fail_before_training(tmp_path):
    """Ctrl-C and SIGTERM used to end `generate` with no word: they now name the checkpoint `--resume` continues
    from. A --stage-cache that is a file (found only when stage 1 ended) and --resume with --auto-resume are
    refused before anything is trained."""
    import signal
    import subprocess
    import sys
    import time

    import torch

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pipelines.cli", "generate", "--method", "4dfy", "--prompt", "a_panda_dancing",
           "--out", str(out), "--no-progress", "--set", "checkpoint_every=1", "--set", "preview_frames=0"]
    # SIGTERM (`kill`, a scheduler's limit) ended it without a word, as Ctrl-C once did; the second stop is of the
    # run the first left, resumed
    for sig, code, stopped, extra in ((signal.SIGINT, 130, "interrupted", []),
                                      (signal.SIGTERM, 143, "terminated (SIGTERM)", ["--resume"])):
        last = out / "ckpt" / "last.pt"
        before = last.stat().st_mtime_ns if last.exists() else None
        # Ctrl-C as on a terminal: a test run started in the background (`cmd &` in a script) ignores SIGINT, and
        # the child would inherit that
        proc = subprocess.Popen(cmd + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            end = time.monotonic() + 300
            while not last.exists() or last.stat().st_mtime_ns == before:  # this process's own checkpoint
                assert proc.poll() is None and time.monotonic() < end, proc.communicate()
                time.sleep(0.2)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == code, err
        # the checkpoint the second run wrote records that it continued the first's
        assert len(torch.load(last, map_location="cpu", weights_only=False)["resumes"]) == len(extra)
        assert err.strip().splitlines()[-1] == (f"error: {stopped}; the same command with --resume continues from "
                                                 f"{out / 'ckpt' / 'last.pt'}")
    cache = tmp_path / "cache-file"
    cache.write_text("not a folder")
    for extra, says in ((["--stage-cache", str(cache)], "--stage-cache"), (["--resume", "--auto-resume"], "give one")):
        res = runner.invoke(app, ["generate", "--method", "4dfy", "--prompt", "a_panda_dancing", "--out",
                                  str(tmp_path / "other"), *extra])
        assert res.exit_code == 2 and says in res.output and not (tmp_path / "other").exists(), res.output


def test_renderer_and_clip_settings_are_named_as_the_user_gives_them(tmp_path):
    """`--set renderer.num_samples=0` and `clipscore --batch-size 0` used to say `num_samples must be >= 1 and
    box_radius > 0` and `batch_size must be >= 1`: the errors name the key and option the user typed."""
    res = runner.invoke(app, ["generate", "--method", "4dfy", "--prompt", "a_panda_dancing", "--set",
                              "renderer.num_samples=0", "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and res.output.strip() == "error: renderer.num_samples must be >= 1, got 0"
    res = runner.invoke(app, ["clipscore", str(tmp_path), "--batch-size", "0", "--out", str(tmp_path / "clip")])
    assert res.exit_code == 2 and "error: --batch-size must be >= 1, got 0" in res.output
    assert not (tmp_path / "clip").exists()

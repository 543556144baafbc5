"""What `fourdfy generate` refuses before a run folder is made, naming the key: a `--set`, `--set-from` or override
key that only names the run (`method`, `profile`), a value of the right type that the run cannot use (0 frames,
`log_every=0`), a `--set-from FILE` without `:key`; and what it says of a damaged manifest.json."""

import json

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
SLUG = "a_panda_dancing"


def _one_error_line(res) -> str:
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


# --- keys that name the run ---------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, says", [("method", "wo_hybrid", "--method"), ("profile", "paper", "--profile")])
def test_set_refuses_the_keys_that_only_relabel_the_run(tmp_path, key, value, says):
    """`--set method=wo_hybrid` used to train 4dfy and file it under wo_hybrid (the manifest and the artifact
    folder said wo_hybrid); `--set profile=paper` labelled tiny sizes as the paper's."""
    from method.configs import ConfigKeyError
    from pipelines.generate import build_config

    with pytest.raises(ConfigKeyError, match=f"'{key}' cannot be set by key.*{says}"):
        build_config("tiny", "4dfy", sets={key: value})
    out = tmp_path / "run"
    line = _one_error_line(runner.invoke(app, ["generate", "--prompt", SLUG, "--max-steps", "1", "--set",
                                               f"{key}={value}", "--out", str(out)]))
    assert f"'{key}'" in line and says in line
    assert not out.exists()


def test_the_method_and_profile_flags_still_name_the_run():
    from pipelines.generate import build_config

    cfg = build_config("paper", "wo_hybrid")
    assert (cfg.method, cfg.profile) == ("wo_hybrid", "paper")


def test_a_params_entry_that_sets_method_is_refused_naming_the_entry(tmp_path):
    """An `overrides:` entry without base: (its keys are --set values) and a variant (base:) alike."""
    params = tmp_path / "params.yaml"
    params.write_text("overrides:\n  4dfy: {method: wo_hybrid}\n  mine: {base: 4dfy, profile: paper}\n")
    out = tmp_path / "run"
    line = _one_error_line(runner.invoke(app, ["generate", "--prompt", SLUG, "--set-from",
                                               f"{params}:overrides.4dfy", "--out", str(out)]))
    assert f"{params}:overrides.4dfy" in line and "'method' cannot be set by key" in line and "base:" in line
    line = _one_error_line(runner.invoke(app, ["generate", "--prompt", SLUG, "--method", "mine", "--set-from",
                                               f"{params}:overrides.mine", "--out", str(out)]))
    assert "overrides.mine" in line and "'profile' cannot be set by key" in line and "--profile" in line
    assert not out.exists()


def test_a_plugin_method_whose_overrides_set_the_method_is_refused(registry):
    from baselines import Method, register

    with pytest.raises(ValueError, match="method 'relabel': 'method' cannot be set by key"):
        register(Method("relabel", "a plug-in that renames its runs", overrides={"method": "4dfy"}))
    assert "relabel" not in registry


# --- values the run cannot use --------------------------------------------------------------------------

BAD_VALUES = [
    # the trainer's cadence
    ("log_every", "0"), ("checkpoint_every", "0"), ("preview_every", "-1"), ("preview_frames", "-1"),
    ("checkpoint_every_s", "-1"), ("heartbeat_s", "-1"),
    # render sizes and batches
    ("render.img_resolution", "0"), ("render.img_batch", "0"), ("render.video_frames", "0"),
    ("render.eval_size", "0"), ("render.video_size", "[0, 4]"),
    # optimizer
    ("lrs.static", "-1"), ("lrs.dynamic", "-0.1"), ("lrs.mlp", "-1"), ("lrs.background", "-1"), ("lrs.guidance", "-1"),
    ("betas", "[1.0, 0.99]"), ("betas", "[-0.1, 0.99]"), ("eps", "-1"), ("weight_decay", "-0.5"),
    ("weights.opacity_entropy_from", "-5"),
    # loss weights (a negative one maximises its loss) and the trained groups (an unknown one failed mid-run)
    ("weights.sds", "-1"), ("weights.sparsity", "-0.5"), ("stages.stage1.weights", '{"sds": -1}'),
    ("static_groups", '["static", "mlps"]'), ("video_groups", '["colour"]'),
    ("blob_sigma.stage3.start", "0"), ("blob_sigma.stage3.end", "-1"), ("blob_sigma.stage3.steps", "-1"),
    # the field and its encodings
    ("field.static_grid.n_levels", "0"), ("field.dynamic_grid.n_features_per_level", "0"),
    ("field.static_grid.log2_hashmap_size", "0"), ("field.dynamic_grid.base_resolution", "0"),
    ("field.static_grid.per_level_scale", "0"), ("field.hexplane.spatial_resolutions", "[0, 8, 16, 32]"),
    ("field.hexplane.time_resolutions", "[4, 0, 16, 16]"), ("field.hexplane.n_features_per_scale", "0"),
    ("field.mlp_hidden", "0"),
    # background and cameras
    ("background.hidden", "0"), ("background.n_hidden_layers", "-1"), ("background.sh_degree", "4"),
    ("background.random_color_prob", "1.5"), ("cameras.distance", "[0, 3]"), ("cameras.fovy_deg", "[0, 60]"),
    ("cameras.fovy_deg", "[15, 180]"),
    # the renderer
    ("renderer.eval_chunk_rays", "0"), ("renderer.train_chunk_rays", "0"), ("renderer.alpha_thre", "-0.1"),
    ("renderer.early_stop_eps", "-1"), ("renderer.occupancy.resolution", "0"), ("renderer.occupancy.levels", "0"),
    ("renderer.occupancy.update_every", "0"), ("renderer.occupancy.warmup_steps", "-1"),
    ("renderer.occupancy.occ_thre", "-1"), ("renderer.occupancy.ema_decay", "1.5"),
    ("renderer.occupancy.static_time", "2"), ("renderer.grad_max_samples", "0"), ("renderer.recompute_chunk", "0"),
    # the priors' sizes and schedules
    ("guidance.3d.num_views", "0"), ("guidance.3d.image_size", "0"), ("guidance.3d.num_head_channels", "0"),
    ("guidance.3d.anneal_steps", "-1"), ("guidance.img.resolution", "0"), ("guidance.img.lora_rank", "0"),
    ("guidance.img.t_anneal_steps", "-1"), ("guidance.img.camera_dropout", "1.5"), ("guidance.video.height", "0"),
    ("guidance.video.width", "0"), ("guidance.video.grad_frames", "0"),
]


@pytest.mark.parametrize("key, value", BAD_VALUES)
def test_a_value_the_run_cannot_use_is_refused_naming_its_key(key, value):
    from pipelines.generate import build_config

    with pytest.raises(ValueError) as err:
        build_config("tiny", "4dfy", sets={key: value})
    assert str(err.value).startswith(key), str(err.value)  # the key as --set writes it, first


def test_the_oracle_priors_quadrature_is_checked_too():
    from method.configs import set_key
    from method.oracle.check import oracle_config

    with pytest.raises(ValueError, match="guidance.3d.quadrature_nodes must be >= 1"):
        set_key(oracle_config(), "guidance.3d.quadrature_nodes", 0)


@pytest.mark.parametrize("key, value", [("log_every", "0"), ("checkpoint_every", "0"), ("render.img_resolution", "0"),
                                        ("render.video_frames", "0")])
def test_values_that_crashed_mid_run_are_one_line_before_the_run_folder(tmp_path, key, value):
    """These failed in the first steps, after log.jsonl (and ckpt/) were written, with a raw message: an internal
    ZeroDivisionError, torch's "Input and output sizes should be greater than 0", "random_ expects 'from' ..."."""
    out = tmp_path / "run"
    line = _one_error_line(runner.invoke(app, ["generate", "--prompt", SLUG, "--max-steps", "2", "--set",
                                               f"{key}={value}", "--out", str(out)]))
    assert line.startswith(f"error: {key} must be >= 1"), line
    assert not out.exists()


@pytest.mark.parametrize("key, value, says", [
    ("weights.sparsity", "-1", "weights.sparsity must be >= 0 (0: off), got -1.0"),
    ("static_groups", '["static", "mlps"]',
     "static_groups names unknown parameter groups ['mlps']; known: static, dynamic, mlp, background"),
])
def test_a_negative_loss_weight_or_an_unknown_group_is_one_line_before_the_run_folder(tmp_path, key, value, says):
    """Both were accepted: a negative weight trained the run to maximise its loss; an unknown group failed at the
    first update that trained it, after the run folder was made."""
    out = tmp_path / "run"
    line = _one_error_line(runner.invoke(app, ["generate", "--prompt", SLUG, "--max-steps", "2", "--set",
                                               f"{key}={value}", "--out", str(out)]))
    assert line == f"error: {says}", line
    assert not out.exists()


@pytest.mark.parametrize("key, value", [
    ("preview_every", "0"), ("preview_frames", "0"), ("checkpoint_every_s", "0"), ("heartbeat_s", "0"),
    ("lrs.guidance", "0"), ("weights.sds", "0"), ("weights.opacity_entropy_from", "0"), ("eps", "0"),
    ("weight_decay", "0"), ("betas", "[0, 0]"), ("background.n_hidden_layers", "0"),
    ("background.random_color_prob", "0"), ("blob_sigma.stage3.steps", "0"), ("renderer.alpha_thre", "0"),
    ("renderer.occupancy.warmup_steps", "0"), ("guidance.img.t_anneal_steps", "0"),
    ("guidance.img.camera_dropout", "1"), ("guidance.video.grad_frames", "null"), ("stages.stage1.steps", "0"),
    ("weights.sparsity", "0"), ("stages.stage1.weights", '{"sds": 0}'), ("video_groups", '["dynamic"]'),
])
def test_zeros_that_mean_off_or_none_stay_allowed(key, value):
    from method.configs import get_key, parse_value, to_dict
    from pipelines.generate import build_config

    assert to_dict(get_key(build_config("tiny", "4dfy", sets={key: value}), key)) == parse_value(value)


def test_every_profile_and_method_still_validates():
    """The defaults of every profile, with every trainable method applied, pass the checks, also when read back
    from a manifest (`from_dict` builds the config again)."""
    from baselines import METHODS, resolve_config
    from method.oracle.check import oracle_config
    from method.training.config import TrainConfig
    from method.training.profiles import PROFILES

    assert {"tiny", "paper", "release", "release-lowvram"} <= set(PROFILES)
    configs = [resolve_config(p, name) for p in PROFILES for name, m in METHODS.items() if m.trainable]
    for cfg in [*configs, oracle_config()]:
        assert TrainConfig.from_dict(cfg.to_dict()) == cfg


# --- --set-from without a key -------------------------------------------------------------------------

def test_set_from_a_file_without_a_key_asks_for_one(tmp_path):
    """`--set-from params.yaml` read the whole file as config keys: "unknown config key 'generate'"."""
    from pipelines.generate import read_sets

    params = tmp_path / "params.yaml"
    params.write_text("profile: tiny\ngenerate: {methods: [4dfy]}\noverrides:\n  4dfy: {weights.sds_video: 0.2}\n")
    for spec in (str(params), f"{params}:"):
        with pytest.raises(ValueError, match="names no key: give FILE:dotted.key"):
            read_sets(spec)
    out = tmp_path / "run"
    line = _one_error_line(runner.invoke(app, ["generate", "--prompt", SLUG, "--set-from", str(params),
                                               "--out", str(out)]))
    assert "FILE:dotted.key" in line and "profile, generate, overrides" in line and "overrides.4dfy" in line
    assert "unknown config key" not in line and not out.exists()
    assert read_sets(f"{params}:overrides.4dfy") == {"weights.sds_video": "0.2"}  # with a key, as before


# --- a damaged manifest.json --------------------------------------------------------------------------

def test_a_damaged_manifest_is_named_with_what_to_do(tmp_path):
    """A truncated manifest.json was a bare JSONDecodeError ("Unterminated string ..."), naming no file."""
    out = tmp_path / "run"
    (out / "ckpt").mkdir(parents=True)
    (out / "ckpt" / "last.pt").write_bytes(b"a checkpoint")  # only its presence decides the remedy
    (out / "manifest.json").write_text('{\n  "method": "4dfy",\n  "prompt": "A pan')
    line = _one_error_line(runner.invoke(app, ["generate", "--prompt", SLUG, "--out", str(out), "--auto-resume"]))
    assert f"{out / 'manifest.json'} is damaged (not valid JSON" in line
    assert "remove" in line and "--resume" in line and "ckpt/last.pt" in line
    (out / "manifest.json").write_text("[1, 2]")  # JSON, but not a manifest
    line = _one_error_line(runner.invoke(app, ["generate", "--prompt", SLUG, "--out", str(out), "--resume"]))
    assert "manifest.json is damaged (a JSON list, not an object)" in line
    (out / "ckpt" / "last.pt").unlink()
    line = _one_error_line(runner.invoke(app, ["generate", "--prompt", SLUG, "--out", str(out), "--resume"]))
    assert "no ckpt/last.pt beside it" in line and f"move {out} away" in line


def test_the_remedy_for_a_damaged_manifest_writes_it_again_without_training(tmp_path):
    """What the message says to do works: with the manifest removed, --resume continues from the final last.pt,
    trains nothing and writes the same run's manifest."""
    out = tmp_path / "run"
    quick = ["generate", "--prompt", SLUG, "--max-steps", "1", "--set", "preview_frames=0", "--no-progress",
             "--out", str(out)]
    assert runner.invoke(app, quick).exit_code == 0
    before = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text((out / "manifest.json").read_text()[:100])
    line = _one_error_line(runner.invoke(app, [*quick, "--auto-resume"]))
    assert "is damaged" in line
    (out / "manifest.json").unlink()
    res = runner.invoke(app, [*quick, "--resume"])
    assert res.exit_code == 0, res.output
    after = json.loads((out / "manifest.json").read_text())
    assert after["config_hash"] == before["config_hash"] and after["timings_s"] == before["timings_s"]
    assert after["update_counts"] == before["update_counts"]  # nothing trained
    assert after["resumes"] == [{"stage_index": 3, "step": 0, "from": "last.pt"}]  # from the final checkpoint

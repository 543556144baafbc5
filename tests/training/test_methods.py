"""Every registered method trains a few steps per stage on CPU with the tiny random-weight priors,
through the same code path as a real run (configs -> priors built from saved folders -> trainer)."""

import dataclasses
import json

import pytest
import torch

from baselines import METHODS, resolve_config
from method.training.config import replace
from method.training.trainer import Trainer

TRAINABLE = [name for name, m in METHODS.items() if m.trainable]
NEWER_FROZEN = ("vae_gradient_checkpointing", "half_dtype", "channels_last", "compile", "compile_vae_encoder",
                "compile_regional", "cuda_graph")
"""FrozenModelOptions fields added after CONFIG_SCHEMA 2: a config saved before them has none."""


@pytest.fixture(scope="module")
def priors(tmp_path_factory):
    """The tiny priors, built once through the real path (saved folders -> loaders) and shared."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FOURDFY_CACHE", str(tmp_path_factory.mktemp("fourdfy-cache")))
    cfg = resolve_config("tiny", "4dfy")
    built = {u: cfg.guidance[u].build("cpu") for u in ("3d", "img", "video")}
    yield built
    mp.undo()


def few_steps(cfg, steps=2):
    stages = tuple(dataclasses.replace(s, steps=min(s.steps, steps), mv_resolution=((0, 8),), mv_groups=((0, 1),))
                   for s in cfg.stages)
    return replace(cfg, stages=stages, preview_every=0, preview_frames=0, checkpoint_every=100,
                   **{"render.img_resolution": 8, "render.video_size": (6, 8), "render.eval_size": 8,
                      "renderer.num_samples": 6})


@pytest.mark.parametrize("name", TRAINABLE)
def test_method_trains_each_stage_with_tiny_priors(name, tmp_path, priors):
    cfg = few_steps(resolve_config("tiny", name))
    # the shared priors fit every method: only wo_3d changes a prior option (its stage-1 VSD anneal, MVDream's)
    base = resolve_config("tiny", "4dfy").guidance
    anneal = {"t_anneal_start", "t_anneal_steps", "t_anneal_stages"}
    for u, spec in cfg.guidance.items():
        diff = {k for k, v in dataclasses.asdict(spec).items() if v != dataclasses.asdict(base[u])[k]}
        assert diff <= anneal and bool(diff) == ((name, u) == ("wo_3d", "img")), (u, diff)
    tr = Trainer(cfg, "A panda dancing.", tmp_path, priors=priors, progress=False)
    before = {k: v.clone() for k, v in tr.field.state_dict().items()}
    manifest = tr.run()
    for stage in cfg.stages:
        assert sum(manifest["update_counts"][stage.name].values()) == stage.steps
        if stage.steps:
            assert (tmp_path / "ckpt" / f"{stage.name}.pt").is_file()
    after = tr.field.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    for line in (tmp_path / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        assert all(v == v for k, v in rec.items() if k.startswith("loss_"))  # no NaN losses


@pytest.mark.parametrize("update", ["3d", "img", "video"])
def test_each_update_type_runs_through_its_real_prior(update, tmp_path, priors):
    cfg = few_steps(resolve_config("tiny", "4dfy"))
    probs = {"3d": (1.0, 0.0), "img": (0.0, 1.0), "video": (0.0, 0.0)}[update]
    stage3 = dataclasses.replace(cfg.stage("stage3"), p_3d=probs[0], p_img=probs[1])
    # stage 3 alone: MVDream's timestep ramp (stage 1 only) names no stage of this run, and is refused unless cleared
    cfg = replace(cfg, stages=(stage3,), **{"guidance.3d.anneal_stages": ()})
    tr = Trainer(cfg, "A panda dancing.", tmp_path, priors=priors, progress=False)
    tr._build_optimizer(0)
    groups = tr.field.param_groups()
    dyn = groups["dynamic"][0].detach().clone()
    rec = tr.train_step(0, 0)
    assert rec["update"] == update
    expected = {"3d": {"loss_sds"}, "img": {"loss_vsd", "loss_lora"}, "video": {"loss_sds_video"}}[update]
    assert expected <= set(rec)
    # the dynamic grid moves only with video updates
    assert torch.equal(groups["dynamic"][0], dyn) == (update != "video")
    if update == "img":
        lora = tr.prior("img").trainable_parameters()
        assert lora and any(g["name"] == "guidance" for g in tr.optimizer.param_groups)


def test_an_option_at_its_neutral_value_leaves_the_config_hash_alone():
    """HASH_NEUTRAL: a run made before `renderer.grad_max_samples` and the stages' `grad_max_samples`,
    `trainable`, `weights` and `video_lr_scale` existed keeps its hash (and resumes): the hash of the dict without
    the keys equals the hash with them at their neutral values; set, each option changes the hash."""
    import dataclasses

    import hashlib
    import json

    from method.training.config import CONFIG_SCHEMA, HASH_NEUTRAL
    from pipelines.generate import build_config, parse_sets

    cfg = build_config("tiny", "4dfy")
    d = cfg.to_dict()
    assert d["renderer"]["grad_max_samples"] is None and ("renderer", "grad_max_samples") in HASH_NEUTRAL
    # the execution-only options (next test) are left out at any value
    old = {**d, "renderer": {k: v for k, v in d["renderer"].items() if k not in ("grad_max_samples", "recompute_field", "recompute_chunk")},
           "stages": [{k: v for k, v in s.items()
                       if k not in ("grad_max_samples", "trainable", "weights", "video_lr_scale")}
                      for s in d["stages"]],
           "guidance": {u: {**g, "frozen": {k: v for k, v in g["frozen"].items() if k not in NEWER_FROZEN}}
                        for u, g in d["guidance"].items()}}
    assert all(s["grad_max_samples"] is None and s["trainable"] is None and s["weights"] == {}
               and s["video_lr_scale"] == 1.0 for s in d["stages"])
    old.pop("device")  # config_hash leaves the device out
    old.pop("tf32")  # and the execution-only TF32 choice
    # the hash formula of the version before the option, written out here (not the code's _hash)
    before = hashlib.sha256(json.dumps({"schema": CONFIG_SCHEMA, **old}, sort_keys=True, default=str).encode())
    assert before.hexdigest()[:16] == cfg.config_hash()
    capped = build_config("tiny", "4dfy", sets=parse_sets(["renderer.grad_max_samples=1000"]))
    assert capped.config_hash() != cfg.config_hash()
    assert capped.stage_prefix_hash(1) != cfg.stage_prefix_hash(1)
    for key, value in (("grad_max_samples", "1000"), ("trainable", '["dynamic"]'), ("weights", '{"sparsity": 0}'),
                       ("video_lr_scale", "0.1")):
        staged = build_config("tiny", "4dfy", sets=parse_sets([f"stages.stage3.{key}={value}"]))
        assert staged.config_hash() != cfg.config_hash(), key
        assert staged.stage_prefix_hash(2) == cfg.stage_prefix_hash(2), key  # stages 1-2 still shared
    assert dataclasses.replace(cfg, device="cpu").config_hash() == cfg.config_hash()
    # the half type: left out at the release's float16, counted when it is bfloat16 (it changes the numbers)
    assert all(g["frozen"]["half_dtype"] == "float16" for g in d["guidance"].values())
    bf16 = build_config("tiny", "4dfy", sets=parse_sets(["guidance.3d.frozen.half_dtype=bfloat16"]))
    assert bf16.config_hash() != cfg.config_hash() and bf16.stage_prefix_hash(1) != cfg.stage_prefix_hash(1)
    # the video prior's: counted from stage 3 on, the first stage that draws it
    bf16 = build_config("tiny", "4dfy", sets=parse_sets(["guidance.video.frozen.half_dtype=bfloat16"]))
    assert bf16.config_hash() != cfg.config_hash()
    assert [bf16.stage_prefix_hash(n) == cfg.stage_prefix_hash(n) for n in (1, 2, 3)] == [True, True, False]


def test_execution_only_options_never_change_the_config_hash():
    """Activation checkpointing (the field's recompute, the VAE's) changes how an update is computed, like the
    device: the hashes stay at any value, so a run can resume with it switched; an option next to them in the
    same dicts still counts."""
    from method.training import profiles
    from pipelines.generate import build_config, parse_sets

    cfg = build_config("tiny", "4dfy")
    lean = build_config("tiny", "4dfy", sets=parse_sets(["renderer.recompute_chunk=1000"]), recompute=True)
    assert lean.renderer.recompute_field and lean.renderer.recompute_chunk == 1000
    assert all(g.frozen.vae_gradient_checkpointing for g in lean.guidance.values())
    assert profiles.recompute(cfg) != cfg
    assert lean.config_hash() == cfg.config_hash()
    # stages are shared only between runs that compute them alike; a plain config keeps its prefix hashes
    assert all(lean.stage_prefix_hash(n) != cfg.stage_prefix_hash(n) for n in (1, 2, 3))
    sharing = build_config("tiny", "wo_hybrid", recompute=True)
    assert sharing.stage_prefix_hash(2) == profiles.recompute(build_config("tiny", "4dfy")).stage_prefix_hash(2)
    assert build_config("tiny", "wo_hybrid").stage_prefix_hash(2) == cfg.stage_prefix_hash(2)
    for key in ("renderer.dense_pruning=true", "guidance.video.frozen.vae_slicing=true"):
        assert build_config("tiny", "4dfy", sets=parse_sets([key])).config_hash() != cfg.config_hash(), key
    # TF32 matrix products (off by default, as every run before the option): hashed for stages only
    fast = build_config("tiny", "4dfy", sets=parse_sets(["tf32=true"]))
    assert not cfg.tf32 and fast.config_hash() == cfg.config_hash()
    assert fast.stage_prefix_hash(1) != cfg.stage_prefix_hash(1)
    # the frozen parts' memory format, compilation and CUDA graphs likewise
    for option in ("channels_last", "compile", "compile_vae_encoder", "compile_regional", "cuda_graph"):
        set_ = build_config("tiny", "4dfy", sets=parse_sets([f"guidance.*.frozen.{option}=true"]))
        assert all(getattr(g.frozen, option) for g in set_.guidance.values()), option
        assert set_.config_hash() == cfg.config_hash(), option
        assert set_.stage_prefix_hash(1) != cfg.stage_prefix_hash(1), option


def test_execution_changes_name_what_a_resume_switched_and_nothing_else():
    """A checkpoint saved before the options existed has none of their keys: they held their defaults, so
    resuming it plainly changes nothing, and resuming with --recompute records exactly the switched ones."""
    from method.training import profiles
    from method.training.config import execution_changes, execution_options
    from pipelines.generate import build_config

    cfg = build_config("tiny", "4dfy")
    old = cfg.to_dict()
    del old["renderer"]["recompute_field"], old["renderer"]["recompute_chunk"]
    for g in old["guidance"].values():
        for key in NEWER_FROZEN:
            del g["frozen"][key]
    del old["tf32"]
    assert execution_options(old) == {}
    assert execution_changes(old, cfg.to_dict()) == {}
    assert execution_changes(cfg.to_dict(), cfg.to_dict()) == {}
    lean = profiles.recompute(cfg).to_dict()
    expected = {"renderer.recompute_field": [False, True],
                **{f"guidance.{u}.frozen.vae_gradient_checkpointing": [False, True] for u in ("3d", "img", "video")}}
    assert execution_changes(old, lean) == expected == execution_changes(cfg.to_dict(), lean)
    assert execution_options(lean, set_only=True) == {k: True for k in expected}


@pytest.mark.parametrize("key,value,shared", [
    # read by video updates only, which stage 3 is the first to draw
    ("weights.sds_video", "0.3", [True, True, False]),
    ("guidance.video.guidance_scale", "50", [True, True, False]),
    ("render.video_size", "[8,12]", [True, True, False]),
    # the IMG prior and its losses: drawn from stage 2 on
    ("guidance.img.guidance_scale", "5", [True, False, False]),
    ("weights.lora", "0.5", [True, False, False]),
    # read from stage 1 on: the 3D prior, its loss, the regularisers, the frame count (kept: it samples times)
    ("weights.sds", "2", [False, False, False]),
    ("weights.sparsity", "1", [False, False, False]),
    ("render.video_frames", "8", [False, False, False]),
])
def test_the_stage_prefix_hash_leaves_out_what_only_undrawn_updates_read(key, value, shared):
    from pipelines.generate import build_config, parse_sets

    cfg = build_config("tiny", "4dfy")
    other = build_config("tiny", "4dfy", sets=parse_sets([f"{key}={value}"]))
    assert other.config_hash() != cfg.config_hash()
    assert [other.stage_prefix_hash(n) == cfg.stage_prefix_hash(n) for n in (1, 2, 3)] == shared


def test_a_weight_an_earlier_prior_also_reads_stays_in_the_prefix_hash():
    """A loss weight is left out only when no drawn prior returns that loss (here the stage-2 prior does)."""
    from method.training.config import replace
    from oracle_setup import small_oracle_config

    cfg = small_oracle_config(**{"guidance.img.loss_name": "sds_video"})
    assert cfg.guidance["video"].loss_weights == ("sds_video",)
    heavier = replace(cfg, **{"weights.sds_video": 5.0})
    assert [heavier.stage_prefix_hash(n) == cfg.stage_prefix_hash(n) for n in (1, 2, 3)] == [True, False, False]

"""The method registry: every table row is there, and each method changes exactly what it claims."""

import pytest

from baselines import METHODS, Method, get_method, register, resolve_config
from method.configs import get_key, valid_keys
from method.training import load_profile

TABLE_METHODS = {"4dfy", "mav3d", "wo_3d_img", "wo_3d", "wo_img", "wo_hybrid", "hexplane", "single_stage",
                 "single_grid"}
MISSING = "<missing>"

# What each method changes in the `paper` profile, field by field (dotted keys), from the paper's
# ablation table and S1 (Table 3 rows), besides its own name in `method`.
CLAIMED_CHANGES = {
    "4dfy": {},
    # stages 1-2 skipped, video SDS only; the static LR stays 1e-2 without stage 1-2 geometry to protect
    "wo_3d_img": {"stages.stage1.steps": 0, "stages.stage2.steps": 0, "stages.stage3.p_3d": 0.0,
                  "stages.stage3.p_img": 0.0, "stages.stage3.static_lr_scale": 1.0},
    # P_3D = 0 everywhere: stage 1 trains with VSD from scratch, with S1's stage-1 timestep anneal
    "wo_3d": {"stages.stage1.p_3d": 0.0, "stages.stage1.p_img": 1.0, "stages.stage2.p_3d": 0.0,
              "stages.stage3.p_3d": 0.0, "guidance.img.t_anneal_start": (0.02, 0.98),
              "guidance.img.t_anneal_steps": 5000},
    # P_IMG = 0: stage 2 is MVDream only, stage 3 MVDream or video
    "wo_img": {"stages.stage2.p_3d": 1.0, "stages.stage2.p_img": 0.0, "stages.stage3.p_img": 0.0},
    # stage 3 draws video updates only
    "wo_hybrid": {"stages.stage3.p_3d": 0.0, "stages.stage3.p_img": 0.0},
    # the default HexPlane planes are already capacity-matched to the paper's two hash grids
    "hexplane": {"field.representation": "hexplane"},
    "single_stage": {"stages.stage1.steps": 0, "stages.stage2.steps": 0, "stages.stage3.static_lr_scale": 1.0},
    # one 4D grid with twice the table, trained by every update
    "single_grid": {"field.representation": "single_grid", "field.dynamic_grid.log2_hashmap_size": 20,
                    "static_groups": ("dynamic", "mlp", "background")},
}

# Where the `release` profile differs from `paper` (method/training/profiles.py, docs/fidelity.md).
RELEASE_CHANGES = {
    "stages.stage2.steps": (10_000, 25_000),
    "guidance.3d.anneal": ("paper", "release"),  # stage-1 MVDream t ramp
    "guidance.video.cfg_form": ("paper", "release"),  # u + s(c - u) vs c + s(c - u)
    "cameras.elevation_sampler": ("sphere_band", "release"),
}


def flat(cfg) -> dict:
    return {k: get_key(cfg, k) for k in valid_keys(cfg)}


def diff(a, b) -> dict:
    fa, fb = flat(a), flat(b)
    return {k: (fa.get(k, MISSING), fb.get(k, MISSING)) for k in sorted(set(fa) | set(fb))
            if fa.get(k, MISSING) != fb.get(k, MISSING)}


def test_every_table_row_is_registered_with_a_description():
    assert TABLE_METHODS <= set(METHODS)
    assert all(m.description for m in METHODS.values())


def test_unknown_method_lists_known_ones():
    with pytest.raises(ValueError) as err:
        get_method("4dfy_v2")
    assert "4dfy" in str(err.value) and "wo_hybrid" in str(err.value)


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="paper, release, release-lowvram, tiny"):
        load_profile("huge")


def test_mav3d_is_videos_only():
    with pytest.raises(ValueError, match="cannot be trained"):
        resolve_config("paper", "mav3d")


@pytest.mark.parametrize("name", sorted(CLAIMED_CHANGES))
def test_each_method_changes_exactly_the_documented_fields(name):
    base = resolve_config("paper", "4dfy")
    got = diff(base, resolve_config("paper", name))
    expected = {k: (flat(base)[k], v) for k, v in CLAIMED_CHANGES[name].items()}
    if name != "4dfy":
        expected["method"] = ("4dfy", name)
    assert got == expected


@pytest.mark.parametrize("name", sorted(set(CLAIMED_CHANGES) - {"hexplane", "single_grid"}))
def test_methods_change_the_same_fields_in_every_profile(name):
    # size-dependent methods (hexplane, single_grid) derive their values from the profile's grids
    for profile in ("release", "tiny"):
        base = resolve_config(profile, "4dfy")
        assert set(diff(base, resolve_config(profile, name))) == set(CLAIMED_CHANGES[name]) | (
            {"method"} if name != "4dfy" else set()), profile


def test_profiles_differ_exactly_where_paper_and_release_differ():
    paper, release = load_profile("paper"), load_profile("release")
    assert diff(paper, release) == {"profile": ("paper", "release"), **RELEASE_CHANGES}
    # the fifth documented difference, the stage-3 draw: the paper's (P, P*P_IMG, 1 - P*P_IMG) does not
    # sum to 1, so both profiles use the release's sequential draw
    for cfg in (paper, release):
        assert cfg.stage("stage3").update_probabilities() == {"3d": 0.5, "img": 0.25, "video": 0.25}
    # stage-3 static LR 1e-2 -> 1e-4 (S1) in both
    assert paper.stage("stage3").static_lr_scale * paper.lrs.static == pytest.approx(1e-4)


# Where `release-lowvram` differs from `release`: the authors' fourdfy_stage_*_low_vram.yaml configs as of the
# release's HEAD (13abf47; d5dba8a changed them from the first version, 7e09c67).
LOWVRAM_CHANGES = {
    "stages.stage1.grad_max_samples": (None, 2_000_000),  # train_max_nums
    "stages.stage2.grad_max_samples": (None, 2_000_000),
    "stages.stage3.grad_max_samples": (None, 100_000),
    # stage 1: lambda_sparsity 0, lambda_opaque 0 (stages 2-3 keep 10 and the entropy schedule)
    "stages.stage1.weights": ({}, MISSING),
    "stages.stage1.weights.sparsity": (MISSING, 0.0),
    "stages.stage1.weights.opacity_entropy": (MISSING, 0.0),
    "stages.stage3.steps": (100_000, 200_000),  # max_steps
    "stages.stage3.p_3d": (0.5, 0.75),  # prob_multi_view
    "stages.stage3.p_img": (0.5, 0.0),  # prob_single_view_video 1: 3D or video, no VSD
    "stages.stage3.trainable": (None, ("dynamic",)),  # freeze_static_modules
    "blob_sigma.stage3.end": (5.0, 0.5),  # sigma stays 0.5 (the anneal's end_val is its start)
    "blob_sigma.stage3.steps": (50_000, 0),
    "background.random_color_prob": (0.5, 0.0),  # random_aug false
    "guidance.video.grad_frames": (None, 4),  # low_ram_vae
}


def test_lowvram_profile_differs_from_release_exactly_where_the_low_vram_configs_do():
    release, low = load_profile("release"), load_profile("release-lowvram")
    assert diff(release, low) == {"profile": ("release", "release-lowvram"), **LOWVRAM_CHANGES}
    assert low.stage("stage3").update_probabilities() == {"3d": 0.75, "img": 0.0, "video": 0.25}
    assert low.sigma("stage3", 50_000) == 0.5
    # the loss weights each stage trains with: stage 1 without the regularisers, stages 2-3 with the release's
    s1, s2, s3 = (low.loss_weights(s) for s in low.stages)
    assert (s1.sparsity, s1.opacity_entropy) == (0.0, 0.0)
    assert s2 == s3 == low.weights == release.weights and (s2.sparsity, s2.opacity_entropy) == (10.0, 1000.0)



def test_methods_that_train_from_scratch_lift_the_lowvram_freeze():
    """Under release-lowvram a method whose stages 1-2 are skipped trains every group in stage 3 (the freeze
    applies only after an earlier stage trained; else the heads and background stay at their random start)."""
    from_scratch = []
    for name, method in METHODS.items():
        if not method.trainable:
            continue
        cfg = resolve_config("release-lowvram", name)
        s3 = cfg.stage("stage3")
        got = {u: cfg.trainable_groups(s3, u) for u in ("3d", "video")}
        if all(s.steps == 0 for s in cfg.stages[:2]):
            from_scratch.append(name)
            assert got == {"3d": cfg.static_groups, "video": cfg.video_groups}, name
        else:
            assert got == {"3d": ("dynamic",), "video": ("dynamic",)}, name
    assert {"single_stage", "wo_3d_img"} <= set(from_scratch)


def test_plugin_registration_and_collision():
    m = Method("my_method", "a test method", overrides={"weights.sds_video": 0.3})
    try:
        register(m)
        assert resolve_config("paper", "my_method").weights.sds_video == 0.3
        with pytest.raises(ValueError, match="already registered"):
            register(m)
    finally:
        METHODS.pop("my_method", None)


class _EntryPoint:
    """What importlib.metadata gives for one `fourdfy.methods` entry point (load() -> its object)."""

    def __init__(self, name, obj):
        self.name, self.value, self.dist, self._obj = name, f"pkg:{name}", None, obj
        self.loads = 0

    def load(self):
        self.loads += 1
        return self._obj


def test_a_plugin_registers_all_its_methods_or_none_and_is_imported_once(monkeypatch):
    """One of two methods clashing with a built-in: neither is registered (half a plug-in would train), the
    built-ins still resolve, the error is kept and given again in strict mode without importing it again."""
    from baselines import registry

    broken = _EntryPoint("pair", [Method("fine_one", "ok"), Method("4dfy", "clashes with the built-in")])
    good = _EntryPoint("good", Method("good_one", "ok", label="Good"))
    monkeypatch.setattr(registry.md, "entry_points", lambda group: [broken, good])
    monkeypatch.setattr(registry, "_LOADED", set())
    monkeypatch.setattr(registry, "_ERRORS", {})
    monkeypatch.setattr(registry, "METHODS", dict(registry.METHODS))
    assert registry.get_method("4dfy").source == "built-in"  # needs no plug-in at all
    assert broken.loads == 0
    # its good method is named as a refused plug-in's, not as unknown (its package is installed)
    with pytest.raises(ValueError, match="^method 'fine_one' is a plug-in that cannot be registered: entry point "
                                         "'pair' .*'4dfy' is already registered") as err:
        registry.get_method("fine_one")
    assert not isinstance(err.value, registry.UnknownMethodError)
    with pytest.raises(registry.UnknownMethodError, match="unknown method 'nope'.*'4dfy' is already registered"
                       ) as err:
        registry.get_method("nope")
    # the name and the list of known methods apart, for callers naming several unknown methods at once
    assert err.value.head == "unknown method 'nope'" and err.value.tail.startswith("; known methods: 4dfy")
    assert isinstance(err.value, ValueError)
    assert "fine_one" not in registry.METHODS and registry.get_method("good_one").label == "Good"
    with pytest.raises(ValueError, match="entry point 'pair'.*already registered"):
        registry.load_entry_points()  # strict: the kept error
    assert broken.loads == 1 and good.loads == 1


def test_every_broken_plugin_is_named_at_once_and_a_broken_plugins_own_name_is_not_unknown(monkeypatch):
    """Three broken entry points: the strict error names all three (one fix per run was slow), the good one is
    registered all the same; asking for a broken plug-in's method says it is broken, not unknown."""
    from baselines import registry

    eps = [_EntryPoint("typo", Method("typo", "bad key", overrides={"weights.sds_vide": 0.5})),
           _EntryPoint("dup", Method("hexplane", "clashes with the built-in")),
           _EntryPoint("good", Method("good_one", "ok")),
           _EntryPoint("missing", 42)]
    monkeypatch.setattr(registry.md, "entry_points", lambda group: eps)
    monkeypatch.setattr(registry, "_LOADED", set())
    monkeypatch.setattr(registry, "_ERRORS", {})
    monkeypatch.setattr(registry, "METHODS", dict(registry.METHODS))
    with pytest.raises(ValueError) as err:
        registry.load_entry_points()
    text = str(err.value)
    assert text.startswith("3 plug-in entry points cannot be loaded: ")
    assert all(f"entry point {n!r}" in text for n in ("typo", "dup", "missing")), text
    assert "good_one" in registry.METHODS
    with pytest.raises(ValueError, match="method 'typo' is a plug-in that cannot be registered: entry point 'typo'"
                       ) as err:
        registry.get_method("typo")
    assert not isinstance(err.value, registry.UnknownMethodError) and "sds_vide" in str(err.value)


def _fidelity_sets(topic: str) -> dict:
    """The `--set` values docs/fidelity.md gives for the other reading of `topic` (a bullet's bold heading)."""
    import re
    import shlex
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "fidelity.md").read_text()
    bullet = text.split(f"**{topic}**", 1)[1].split("\n- **", 1)[0]
    code = " ".join(re.findall(r"`([^`]*--set[^`]*)`", bullet.replace("\n", " ")))
    words = shlex.split(code)
    return dict(w.split("=", 1) for a, w in zip(words, words[1:]) if a == "--set")


def test_fidelity_docs_other_readings_are_the_sets_they_claim():
    """docs/fidelity.md's `--set` lines for the paper-literal MVDream resolution and for `single_stage` with the
    first stage's anneals parse and change what the page says: 256x256 in one group from the first step, and
    MVDream and VSD starting stage 3 at [0.02, 0.98], annealed to [0.02, 0.5] by step 5000."""
    from pipelines.generate import build_config

    sets = _fidelity_sets("MVDream's warm-up resolution.")
    base, cfg = build_config("paper", "4dfy"), build_config("paper", "4dfy", sets=sets)
    assert base.stages[0].mv_resolution[0] == (0, 64) and base.stages[1].mv_resolution[0] == (0, 64)
    assert cfg.stages[0].mv_resolution == ((0, 256),) and cfg.stages[0].mv_groups == ((0, 1),)
    assert cfg.stages[1].mv_resolution == ((0, 256),) and cfg.stages[2] == base.stages[2]

    sets = _fidelity_sets("`single_stage` and the anneal.")
    base, cfg = build_config("paper", "single_stage"), build_config("paper", "single_stage", sets=sets)
    for prior in ("3d", "img"):
        plain = base.guidance[prior].timestep_range("stage3")
        annealed = cfg.guidance[prior].timestep_range("stage3")
        assert plain.fractions(0) == pytest.approx((0.02, 0.5))
        assert annealed.fractions(0) == pytest.approx((0.02, 0.98)) and annealed.fractions(5000) == pytest.approx((0.02, 0.5))


def test_fidelity_docs_sets_for_the_entropy_start_the_video_lr_and_the_first_lowvram_configs():
    """The `--set` lines of docs/fidelity.md for the paper profile's stage-2 entropy term, S1's learning-rate
    reading of the video weight and the first version of the low-VRAM configs change what the page says."""
    from pipelines.generate import build_config

    sets = _fidelity_sets("The opacity-entropy start.")
    base, cfg = build_config("paper", "4dfy"), build_config("paper", "4dfy", sets=sets)
    stage2 = cfg.loss_weights(cfg.stage("stage2"))
    assert base.loss_weights(base.stage("stage2")).opacity_entropy_from == 10_000 == base.stage("stage2").steps
    assert stage2.opacity_entropy_from == 5000 and stage2.opacity_entropy == 1000.0
    assert cfg.loss_weights(cfg.stage("stage3")) == base.weights  # stage 3 as before

    sets = _fidelity_sets("The video update's \"total learning rate 0.1\".")
    cfg = build_config("paper", "4dfy", sets=sets)
    assert base.weights.sds_video == 0.1 and base.stage("stage3").video_lr_scale == 1.0
    assert cfg.weights.sds_video == 1.0 and cfg.stage("stage3").video_lr_scale == 0.1
    assert diff(base, cfg).keys() == {"weights.sds_video", "stages.stage3.video_lr_scale"}

    sets = _fidelity_sets("The first version of the configs.")
    first = build_config("release-lowvram", "4dfy", sets=sets)
    assert [s.grad_max_samples for s in first.stages] == [100_000, 100_000, 100_000]
    assert first.loss_weights(first.stages[0]) == first.weights and first.weights.sparsity == 10.0
    assert first.stage("stage3").update_probabilities() == {"3d": 0.5, "img": 0.0, "video": 0.5}
    assert first.stage("stage3").steps == 300_000


@pytest.mark.parametrize("profile", ["paper", "release", "release-lowvram", "tiny"])
def test_wo_3d_gives_vsd_the_stage_1_ramp_the_profile_gives_mvdream(profile):
    """wo_3d differs from 4dfy by its prior, not by its schedule: in every profile, stage 1's VSD draws t from the
    ranges 4dfy's MVDream draws from at each step (a fixed 5k-step ramp never left its start in tiny's 40 steps)."""
    first = load_profile(profile).stages[0]
    vsd = resolve_config(profile, "wo_3d").guidance["img"].timestep_range(first.name)
    mv = resolve_config(profile, "4dfy").guidance["3d"].timestep_range(first.name)
    for step in (0, first.steps // 3, first.steps - 1, first.steps):
        assert vsd.fractions(step) == pytest.approx(mv.fractions(step)), step
    assert vsd.fractions(first.steps) == pytest.approx((0.02, 0.5))  # the ramp ends within the stage
    # stage 2 of wo_3d: VSD's own range, as in every method
    assert resolve_config(profile, "wo_3d").guidance["img"].timestep_range("stage2").start is None

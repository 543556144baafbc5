"""An `overrides:` entry's keys are applied together, as a method's overrides are applied to a run: keys that only
hold as a whole (both box radii, a renamed stage with its `blob_sigma` key or its priors' anneal stages) make a
valid variant, and a bad value or an incomplete combination is still an error naming the entry."""

import pytest
import yaml

from baselines import METHODS, Method, check_entry_keys, register, register_variants, resolve_config
from pipelines.generate import build_config, read_set_from

SRC = "my/params.yaml"
ANNEAL = {"anneal": {"start": 0.5, "end": 2.0, "steps": 40}}

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: variants do not outlive a test


def test_a_variant_setting_both_box_radii_is_accepted_and_its_runs_get_both():
    """Each key was typed alone, and one radius alone is refused ("set both"), so the entry could never be valid."""
    register_variants({"big_box": {"base": "4dfy", "renderer.box_radius": 2, "field.box_radius": "2"}}, source=SRC)
    assert METHODS["big_box"].overrides == {"renderer.box_radius": 2.0, "field.box_radius": 2.0}
    for profile in ("tiny", "paper"):
        cfg = resolve_config(profile, "big_box")
        assert cfg.renderer.box_radius == cfg.field.box_radius == 2.0


def test_an_entry_without_base_may_set_both_box_radii_and_is_checked_together():
    check_entry_keys("4dfy", {"field.box_radius": 2, "renderer.box_radius": 2, "label": "big box"}, SRC)
    with pytest.raises(ValueError) as err:
        check_entry_keys("wo_hybrid", {"field.box_radius": 2}, SRC)
    assert str(err.value) == (f"{SRC}: overrides.wo_hybrid: renderer.box_radius 1.0 differs from field.box_radius "
                              "2.0: set both")


@pytest.mark.parametrize("order", ["rename first", "blob_sigma first"])
def test_a_variant_renaming_a_stage_with_its_blob_sigma_is_accepted(order):
    rename, sigma = {"stages.stage3.name": "anneal"}, {"blob_sigma": ANNEAL}
    keys = {**rename, **sigma} if order == "rename first" else {**sigma, **rename}
    register_variants({"renamed": {"base": "wo_hybrid", **keys, "stages.anneal.steps": 12}}, source=SRC)
    cfg = resolve_config("tiny", "renamed")
    assert [(s.name, s.steps) for s in cfg.stages] == [("stage1", 40), ("stage2", 40), ("anneal", 12)]
    assert cfg.sigma("anneal", 0) == 0.5 and cfg.sigma("anneal", 40) == 2.0
    assert cfg.stage("anneal").p_3d == cfg.stage("anneal").p_img == 0.0  # wo_hybrid's changes, made before the rename


def test_a_variant_renaming_stage1_with_its_priors_anneal_stages_is_accepted():
    """wo_3d gives VSD MVDream's stage-1 ramp, in the stages MVDream ramps in under their names after a rename."""
    register_variants({"warm": {"base": "wo_3d", "stages.stage1.name": "warmup", "guidance.3d.anneal_stages": ["warmup"],
                                "guidance.img.t_anneal_stages": '["warmup"]'}}, source=SRC)
    cfg = resolve_config("paper", "warm")
    assert cfg.guidance["3d"].anneal_stages == cfg.guidance["img"].t_anneal_stages == ("warmup",)
    assert cfg.guidance["img"].timestep_range("warmup").start == (0.02, 0.98)
    # naming MVDream's stages alone is enough: VSD follows them
    register_variants({"cold": {"base": "wo_3d", "stages.stage1.name": "warmup",
                                "guidance.3d.anneal_stages": ["warmup"]}}, source=SRC)
    cold = resolve_config("paper", "cold").guidance["img"]
    assert cold.t_anneal_stages == ("warmup",) and cold.timestep_range("warmup").start == (0.02, 0.98)
    # a stage MVDream's ramp names that the run lacks is still refused, naming the key
    with pytest.raises(ValueError) as err:
        register_variants({"lost": {"base": "4dfy", "stages.stage1.name": "warmup"}}, source=SRC)
    assert str(err.value).startswith(f"{SRC}: overrides.lost: guidance.3d.anneal_stages names stage1, but the run "
                                     "has no stage of that name (stages: warmup, stage2, stage3)")
    assert "lost" not in METHODS


def test_a_variant_of_a_variant_may_use_the_stage_name_its_base_gave():
    register_variants({"renamed": {"base": "4dfy", "stages.stage3.name": "anneal", "blob_sigma": ANNEAL},
                       "short": {"base": "renamed", "stages.anneal.steps": 5, "blob_sigma.anneal.end": 3}},
                      source=SRC)
    cfg = resolve_config("tiny", "short")
    assert cfg.stage("anneal").steps == 5 and cfg.blob_sigma["anneal"].end == 3.0


def test_an_entry_without_base_is_checked_on_its_methods_own_stages():
    register(Method("renamed_plugin", "stage 3 renamed", source="entry point 'p' of p",
                    overrides={"stages.stage3.name": "anneal", "blob_sigma": {"anneal": {"start": 0.5, "end": 1.0}}}))
    check_entry_keys("renamed_plugin", {"stages.anneal.steps": 7}, SRC)
    with pytest.raises(ValueError, match=rf"^{SRC}: overrides\.renamed_plugin: unknown config key 'stages\.stage3\."
                                         "steps'"):
        check_entry_keys("renamed_plugin", {"stages.stage3.steps": 7}, SRC)


@pytest.mark.parametrize("entry, says", [
    ({"stages.stage3.steps": -1}, "stages.stage3.steps must be an integer >= 0 (0 skips the stage), got -1"),
    # a bad value beside a valid combination
    ({"renderer.box_radius": 2, "field.box_radius": 2, "lrs.static": "-1e-3"}, "lrs.static must be >= 0 (0 leaves the "
                                                                              "group as it is), got -0.001"),
    ({"renderer.box_radius": 2}, "renderer.box_radius 2.0 differs from field.box_radius 1.0: set both"),
    ({"stages.stage3.name": "anneal"}, "blob_sigma.stage3 names no stage of the run (stages: stage1, stage2, anneal)"),
    # keys apply in order, as `--set` applies them: after the rename, stage 3 has its new name
    ({"stages.stage3.name": "anneal", "blob_sigma": ANNEAL, "stages.stage3.steps": 5}, "unknown config key "
                                                                                      "'stages.stage3.steps'"),
])
def test_a_bad_value_or_combination_is_still_refused_naming_the_entry(entry, says):
    with pytest.raises(ValueError) as err:
        register_variants({"v": {"base": "4dfy", **entry}}, source=SRC)
    assert str(err.value).startswith(f"{SRC}: overrides.v: {says}"), err.value
    assert "v" not in METHODS
    with pytest.raises(ValueError) as err:
        check_entry_keys("4dfy", entry, SRC)
    assert str(err.value).startswith(f"{SRC}: overrides.4dfy: {says}"), err.value


def test_a_star_key_keeps_its_own_value_beside_later_keys():
    register_variants({"w": {"base": "4dfy", "stages.*.steps": 7, "stages.stage1.steps": 3,
                             "stages.stage3.name": "anneal", "blob_sigma": ANNEAL}}, source=SRC)
    assert METHODS["w"].overrides["stages.*.steps"] == 7
    assert [(s.name, s.steps) for s in resolve_config("tiny", "w").stages] == [("stage1", 3), ("stage2", 7),
                                                                               ("anneal", 7)]


def test_set_from_trains_such_a_variant_and_such_an_entry(tmp_path):
    """`fourdfy generate --set-from params.yaml:overrides.<name>`: a variant registers there; an entry without base:
    gives its keys to `build_config` as `--set` values, applied in one batch."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"overrides": {
        "big_box": {"base": "4dfy", "renderer.box_radius": 2, "field.box_radius": 2},
        "4dfy": {"stages.stage3.name": "anneal", "blob_sigma": ANNEAL}}}))
    sets, note = read_set_from(f"{params}:overrides.big_box", "big_box")
    cfg = build_config("tiny", "big_box", sets=sets)
    assert (sets, note["base"]) == ({}, "4dfy") and cfg.renderer.box_radius == cfg.field.box_radius == 2.0
    sets, note = read_set_from(f"{params}:overrides.4dfy", "4dfy")
    cfg = build_config("tiny", "4dfy", sets=sets)
    assert note == {} and cfg.stages[2].name == "anneal" and cfg.sigma("anneal", 40) == 2.0

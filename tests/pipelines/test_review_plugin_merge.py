"""A mapping given by key for a part of the config that is one dataclass is merged into the part as it is, item by
item as its dotted keys would set it (`method.configs.merges`). Before, the part was made from the mapping and the
dataclass defaults: `renderer: {recompute_field: true}` gave tiny the paper's 512 samples instead of 32,
`weights: {sds_video: 0.3}` reset `opacity_entropy_from` 100 -> 10000, `guidance.video={"guidance_scale": 50}` was
"guidance.video.kind = '' is an unknown prior kind", and `stages.stage3={"steps": 10}` an AttributeError. A saved
config (`from_dict`) still reads back as before."""

import dataclasses

import pytest

from baselines import METHODS, register_variants, resolve_config
from method.configs import ConfigKeyError, get_key, set_keys, to_dict
from method.training.config import TrainConfig
from method.training.profiles import PROFILES, load_profile
from pipelines.generate import as_set_values, build_config

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: variants do not outlive a test


# --- the reviewer's cases


def test_a_renderer_mapping_keeps_the_profiles_other_renderer_settings():
    cfg = set_keys(load_profile("tiny"), {"renderer": {"recompute_field": True}})
    assert cfg.renderer == dataclasses.replace(load_profile("tiny").renderer, recompute_field=True)
    assert cfg.renderer.num_samples == 32  # before: 512, the dataclass default


def test_a_weights_mapping_keeps_the_profiles_other_weights():
    cfg = set_keys(load_profile("tiny"), {"weights": {"sds_video": 0.3}})
    assert cfg.weights.sds_video == 0.3 and cfg.weights.opacity_entropy_from == 100  # before: 10000


def test_a_prior_mapping_keeps_its_kind_model_and_other_settings():
    tiny = load_profile("tiny")
    cfg = build_config("tiny", "4dfy", sets={"guidance.video": '{"guidance_scale": 50}'})
    assert cfg.guidance["video"] == dataclasses.replace(tiny.guidance["video"], guidance_scale=50.0)


def test_a_prior_mapping_of_another_kind_is_a_new_prior_of_that_kind():
    cfg = set_keys(load_profile("tiny"), {"guidance.img": '{"kind": "oracle"}'}, parse=True)
    assert type(cfg.guidance["img"]).__name__ == "OracleConfig"


def test_a_stage_mapping_sets_that_stage_only():
    """Item 4 of the review: `stages.stage3={"steps": 10}` was an AttributeError ('dict' has no attribute 'name')."""
    tiny = load_profile("tiny")
    cfg = build_config("tiny", "4dfy", sets={"stages.stage3": '{"steps": 10}'})
    assert cfg.stages == (*tiny.stages[:2], dataclasses.replace(tiny.stages[2], steps=10))
    cfg = set_keys(tiny, {"stages.stage3": {"name": "anneal", "steps": 7}, "blob_sigma": {"anneal": {"start": 0.5,
                                                                                                     "end": 1.0}}})
    assert [s.name for s in cfg.stages] == ["stage1", "stage2", "anneal"] and cfg.stage("anneal").steps == 7


@pytest.mark.parametrize("value, says", [
    ('"fast"', "stages.stage3: expected a mapping for StageConfig, got 'fast'"),
    ("[1, 2]", "stages.stage3: expected a mapping for StageConfig, got [1, 2]"),
    ("5", "stages.stage3: expected a mapping for StageConfig, got 5"),
])
def test_a_stage_given_another_value_is_a_config_error(value, says):
    with pytest.raises(ConfigKeyError) as err:
        set_keys(load_profile("tiny"), {"stages.stage3": value}, parse=True)
    assert str(err.value).startswith(says), err.value
    with pytest.raises(ConfigKeyError, match=r"^'stages\.stage3' is a group of settings; set one of its keys: "):
        set_keys(load_profile("tiny"), {"stages.stage3": 5})


def test_a_misspelt_item_is_named_as_its_dotted_key():
    with pytest.raises(ConfigKeyError, match=r"^unknown config key 'renderer\.recompute_fieldd'; did you mean "
                                             r"'renderer\.recompute_field'"):
        set_keys(load_profile("tiny"), {"renderer": {"recompute_fieldd": True}})
    with pytest.raises(ConfigKeyError, match=r"^unknown config key 'stages\.stage3\.stepz'; did you mean "
                                             r"'stages\.stage3\.steps'"):
        set_keys(load_profile("tiny"), {"stages.stage3": '{"stepz": 1}'}, parse=True)
    # a value out of range is named by its key too
    with pytest.raises(ValueError, match=r"^renderer\.num_samples must be >= 1, got 0"):
        set_keys(load_profile("tiny"), {"renderer": {"num_samples": 0}})


def test_a_nested_mapping_merges_at_every_level():
    tiny = load_profile("tiny")
    cfg = set_keys(tiny, {"guidance.video": {"frozen": {"channels_last": True}}, "field": {"static_grid": {
        "n_levels": 4}}})
    assert cfg.guidance["video"].frozen == dataclasses.replace(tiny.guidance["video"].frozen, channels_last=True)
    assert cfg.field == dataclasses.replace(tiny.field, static_grid=dataclasses.replace(tiny.field.static_grid,
                                                                                        n_levels=4))


def test_a_mapping_for_a_field_that_is_a_mapping_still_replaces_it():
    """`blob_sigma`, `stages.NAME.weights`, `guidance` are mappings of entries: a mapping replaces them (how a stage is
    renamed, docs/generator.md)."""
    cfg = set_keys(load_profile("tiny"), {"stages.stage3.weights": {"sparsity": 0.0}})
    assert cfg.stage("stage3").weights == {"sparsity": 0.0}
    cfg = set_keys(load_profile("tiny"), {"stages.stage3.weights": {"sparsity": 0.0}})
    cfg = set_keys(cfg, {"stages.stage3.weights": {"opacity_entropy": 0.0}})
    assert cfg.stage("stage3").weights == {"opacity_entropy": 0.0}


# --- a variant and a method's entry (params.yaml)


def test_a_variants_mapping_keeps_the_profiles_other_settings():
    """The reviewer's `v10: {base: 4dfy, renderer: {recompute_field: true}}`: num_samples was 512 in tiny."""
    register_variants({"v10": {"base": "4dfy", "renderer": {"recompute_field": True}},
                       "v11": {"base": "wo_hybrid", "weights": {"sds_video": 0.3}, "stages.stage3": {"steps": 5}}})
    tiny_4dfy, tiny_wo = resolve_config("tiny", "4dfy"), resolve_config("tiny", "wo_hybrid")
    v10 = resolve_config("tiny", "v10")
    assert v10.to_dict() == {**tiny_4dfy.to_dict(), "method": "v10",
                             "renderer": {**tiny_4dfy.to_dict()["renderer"], "recompute_field": True}}
    v11 = resolve_config("tiny", "v11")
    assert v11.weights == dataclasses.replace(tiny_wo.weights, sds_video=0.3)
    assert v11.stages == (*tiny_wo.stages[:2], dataclasses.replace(tiny_wo.stages[2], steps=5))
    # the variant's keys are those of the mapping's items: each holds one value, as a dotted key does
    assert METHODS["v10"].variant_keys[-1].keys == {"renderer.recompute_field": True}
    assert METHODS["v11"].variant_keys[-1].keys == {"weights.sds_video": 0.3, "stages.stage3.steps": 5}


def test_a_methods_entry_as_set_values_keeps_the_profiles_other_settings():
    """`wo_hybrid: {weights: {sds_video: 0.3}}` read by `--set-from params.yaml:overrides.wo_hybrid`."""
    cfg = build_config("tiny", "wo_hybrid", sets=as_set_values({"weights": {"sds_video": 0.3}}))
    assert cfg.weights.opacity_entropy_from == 100 and cfg.weights.sds_video == 0.3


def test_a_plugins_mapping_override_keeps_the_profiles_other_settings():
    from baselines import Method, register

    register(Method("mapped_rv", "x", overrides={"renderer": {"recompute_field": True}}))
    assert resolve_config("tiny", "mapped_rv").renderer.num_samples == 32


def test_expand_merges_writes_a_mapping_as_its_items_keys_and_gives_the_same_config():
    from method.configs import expand_merges

    tiny = load_profile("tiny")
    changes = {"stages.stage3.name": "anneal", "stages.anneal": {"steps": 3, "p_3d": 0.25},
               "renderer": '{"recompute_field": true, "occupancy": {"levels": 2}}',
               "blob_sigma": {"anneal": {"start": 0.5, "end": 1.0}}, "guidance.img": {"kind": "oracle"}}
    flat = expand_merges(tiny, changes, parse=True)
    assert list(flat) == ["stages.stage3.name", "stages.anneal.steps", "stages.anneal.p_3d",
                          "renderer.recompute_field", "renderer.occupancy.levels", "blob_sigma", "guidance.img"]
    assert set_keys(tiny, flat, parse=True) == set_keys(tiny, changes, parse=True)


# --- saved configs and full mappings: as before


GROUPS = ("field", "background", "render", "renderer", "lrs", "weights", "cameras")


def _configs():
    for profile in PROFILES:
        for name, method in METHODS.items():
            if method.trainable:
                yield profile, name, resolve_config(profile, name)


def test_saved_configs_round_trip_for_every_profile_and_method():
    for profile, name, cfg in _configs():
        assert TrainConfig.from_dict(cfg.to_dict()) == cfg, (profile, name)
        assert TrainConfig.from_dict(cfg.to_dict()).config_hash() == cfg.config_hash(), (profile, name)


def test_a_full_mapping_by_key_gives_the_part_it_describes_whatever_was_there():
    """Merging a part's full mapping into another profile's part gives that part, as making it from the mapping did
    before (the profile of `other` leaves nothing of its own)."""
    for profile, name, cfg in _configs():
        other = load_profile("tiny" if profile != "tiny" else "paper")
        keys = [*GROUPS, *(f"stages.{s.name}" for s in cfg.stages if s.name in {t.name for t in other.stages}),
                *(f"guidance.{u}" for u in cfg.guidance if u in other.guidance),
                *(f"blob_sigma.{k}" for k in cfg.blob_sigma if k in other.blob_sigma)]
        for key in keys:
            part = get_key(cfg, key)
            assert get_key(set_keys(other, {key: to_dict(part)}), key) == part, (profile, name, key)

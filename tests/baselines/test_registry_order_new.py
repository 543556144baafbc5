"""A variant's keys apply after its base's, in the entry's order, as one `--set` command applies keys: a key the base
sets too comes at the entry's place (it kept the base's place, before the entry's earlier keys, which then undid it);
and which keys of its base's own `overrides:` entry a variant does not take (`untaken_base_keys`)."""

import pytest

from baselines import METHODS, Method, register, register_variants, resolve_config, untaken_base_keys
from method.configs import set_keys
from method.training.profiles import load_profile

SRC = "my/params.yaml"

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: variants do not outlive a test


def _in_order(profile: str, *layers: dict):
    """The reference: the profile with each mapping of keys applied in turn, as `--set` applies them."""
    cfg = load_profile(profile)
    for keys in layers:
        cfg = set_keys(cfg, keys, parse=True)
    return cfg


def _scales(cfg) -> dict:
    return {name: prior.guidance_scale for name, prior in cfg.guidance.items()}


def test_a_star_key_then_one_prior_keeps_that_priors_value_when_the_base_sets_it_too():
    register(Method("loud_vsd", "VSD at scale 10", overrides={"guidance.img.guidance_scale": 10.0}))
    register_variants({"v": {"base": "loud_vsd", "guidance.*.guidance_scale": 20.0,
                             "guidance.img.guidance_scale": 5.0}}, source=SRC)
    assert list(METHODS["v"].overrides) == ["guidance.*.guidance_scale", "guidance.img.guidance_scale"]
    for profile in ("tiny", "paper"):
        want = _in_order(profile, {"guidance.img.guidance_scale": 10.0},
                         {"guidance.*.guidance_scale": 20.0, "guidance.img.guidance_scale": 5.0})
        got = resolve_config(profile, "v")
        assert _scales(got) == _scales(want) == {"3d": 20.0, "img": 5.0, "video": 20.0}, profile


def test_a_prior_replaced_then_one_of_its_keys_keeps_that_value_in_a_variant_of_a_variant():
    """`guidance.img: {kind: vsd}` resets the prior's entry; a key after it sets the new entry. With the key at its
    base's place, the reset undid it."""
    register_variants({"a": {"base": "4dfy", "guidance.img.guidance_scale": 10.0, "weights.sds_video": 0.3},
                       "b": {"base": "a", "guidance.img": {"kind": "vsd"}, "guidance.img.guidance_scale": 5.0}},
                      source=SRC)
    want = _in_order("tiny", {"guidance.img.guidance_scale": 10.0, "weights.sds_video": 0.3},
                     {"guidance.img": '{"kind": "vsd"}', "guidance.img.guidance_scale": 5.0})
    got = resolve_config("tiny", "b")
    assert got.guidance["img"].guidance_scale == want.guidance["img"].guidance_scale == 5.0
    assert got.weights.sds_video == 0.3
    assert got.config_hash() == set_keys(want, {"method": "b"}, labels=True).config_hash()


def test_a_stage_rename_then_a_key_under_the_new_name_that_the_base_set_for_another_stage_is_refused_saying_why():
    """Swapping two stages' names, then a key of the new `stage3`: wo_hybrid set that key for the old stage3, now
    `late`. One mapping sets a key once, so wo_hybrid's value would be lost: an error naming the key to repeat."""
    entry = {"base": "wo_hybrid", "stages.stage3.name": "late", "stages.stage2.name": "stage3",
             "stages.stage3.p_3d": 0.5}
    with pytest.raises(ValueError) as err:
        register_variants({"swap": entry}, source=SRC)
    assert str(err.value).startswith(f"{SRC}: overrides.swap: stages.stage3.p_3d is set by its base 'wo_hybrid' too, "
                                     "but after the entry's earlier keys (a stage renamed) it names another field"), \
        err.value
    assert str(err.value).endswith("set it again in the entry under its new name (stages.late.p_3d: 0.0)")
    assert "swap" not in METHODS
    # as the message says: then the variant is wo_hybrid's keys, then the entry's, in order
    register_variants({"swap": {**entry, "stages.late.p_3d": 0.0}}, source=SRC)
    got = resolve_config("tiny", "swap")
    want = _in_order("tiny", METHODS["wo_hybrid"].overrides, {k: v for k, v in entry.items() if k != "base"})
    assert [(s.name, s.steps, s.p_3d, s.p_img) for s in got.stages] == \
        [(s.name, s.steps, s.p_3d, s.p_img) for s in want.stages]
    assert [(s.name, s.p_3d, s.p_img) for s in got.stages][1:] == [("stage3", 0.5, 1.0), ("late", 0.0, 0.0)]


def test_untaken_base_keys_follows_the_chain_to_the_registered_base():
    overrides = {"4dfy": {"stages.stage1.steps": 10, "tf32": True, "label": "Ours"},
                 "a": {"base": "4dfy", "tf32": True}, "b": {"base": "a", "weights.sds_video": 0.3},
                 "c": {"base": "wo_hybrid"}, "x": {"base": "y"}, "y": {"base": "x"}}
    assert untaken_base_keys("a", overrides) == ("4dfy", {"stages.stage1.steps": 10})
    assert untaken_base_keys("b", overrides) == ("4dfy", {"stages.stage1.steps": 10})
    assert untaken_base_keys("c", overrides) == ("wo_hybrid", {})  # no entry of its base
    assert untaken_base_keys("4dfy", overrides) == ("", {})  # not a variant
    assert untaken_base_keys("x", overrides) == ("", {})  # a cycle, refused where variants are registered

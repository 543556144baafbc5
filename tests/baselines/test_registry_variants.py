"""Variants as data (an entry of params.yaml's `overrides:` with `base:`): what they resolve to, which names and
keys they may use, and the stages they share with their base."""

import pytest

from baselines import METHODS, UnknownMethodError, register_variants, resolve_config
from method.configs import get_key, valid_keys

SRC = "my/params.yaml"


pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: variants do not outlive a test


def diff(a, b) -> dict:
    fa = {k: get_key(a, k) for k in valid_keys(a)}
    fb = {k: get_key(b, k) for k in valid_keys(b)}
    return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}


def test_a_variant_is_its_base_with_its_keys():
    names = register_variants({"4dfy": {}, "hybrid_strong": {"base": "wo_hybrid", "label": "w/o hybrid, video 0.3",
                                                              "weights.sds_video": 0.3, "stages.stage3.steps": 7}},
                              source=SRC)
    assert names == ["hybrid_strong"]
    m = METHODS["hybrid_strong"]
    assert (m.base, m.label, m.source, m.trainable) == ("wo_hybrid", "w/o hybrid, video 0.3", SRC, True)
    assert m.description == "variant of wo_hybrid: weights.sds_video=0.3, stages.stage3.steps=7"
    for profile in ("tiny", "paper"):
        base = resolve_config(profile, "wo_hybrid")
        assert diff(base, resolve_config(profile, "hybrid_strong")) == {
            "method": ("wo_hybrid", "hybrid_strong"), "weights.sds_video": (0.1, 0.3),
            "stages.stage3.steps": (base.stage("stage3").steps, 7)}, profile
    assert "4dfy" in METHODS and METHODS["4dfy"].source == "built-in"  # an entry without base: defines nothing


def test_a_variants_key_holds_over_its_bases_transform():
    """single_grid doubles the 4D grid's table in its transform: a variant that sets the table size gets the size it
    sets, as `--set` on single_grid does, and as its manifest's variant entry says (it once trained 2^16 rows)."""
    register_variants({"big_grid": {"base": "single_grid", "field.dynamic_grid.log2_hashmap_size": 15}}, source=SRC)
    cfg = resolve_config("tiny", "big_grid")
    assert cfg.field.representation == "single_grid" and cfg.field.dynamic_grid.log2_hashmap_size == 15
    assert cfg.static_groups == resolve_config("tiny", "single_grid").static_groups


def test_values_are_read_as_set_from_reads_them():
    """YAML reads `1e-3` as a string and lists as lists: the variant types them as `--set-from` does."""
    register_variants({"slow": {"base": "4dfy", "lrs.static": "1e-3", "guidance.img.t_anneal_start": [0.02, 0.98],
                                "guidance.*.frozen.channels_last": True}}, source=SRC)
    cfg = resolve_config("paper", "slow")
    assert cfg.lrs.static == 0.001 and cfg.guidance["img"].t_anneal_start == (0.02, 0.98)
    assert all(p.frozen.channels_last for p in cfg.guidance.values())


def test_a_variant_may_be_the_base_of_another_listed_before_it():
    register_variants({"b": {"base": "a", "stages.stage3.steps": 5}, "a": {"base": "4dfy", "weights.sds_video": 0.3}},
                      source=SRC)
    cfg = resolve_config("tiny", "b")
    assert (cfg.weights.sds_video, cfg.stage("stage3").steps, METHODS["b"].base) == (0.3, 5, "a")


def test_registering_the_same_file_again_changes_nothing_and_an_edit_replaces_its_own_variant():
    entries = {"v": {"base": "4dfy", "weights.sds_video": 0.3}}
    register_variants(entries, source=SRC)
    first = METHODS["v"]
    register_variants(entries, source=SRC)
    assert METHODS["v"] == first
    register_variants({"v": {"base": "4dfy", "weights.sds_video": 0.5}}, source=SRC)  # the file, edited
    assert resolve_config("tiny", "v").weights.sds_video == 0.5


def test_a_label_relabels_a_registered_method_without_changing_it():
    before = dict(METHODS)
    assert register_variants({"4dfy": {"label": "Ours"}, "wo_hybrid": {"label": "no hybrid"}}, source=SRC) == []
    assert METHODS == before


@pytest.mark.parametrize("entries, says", [
    # base: on the entry of a built-in, or a variant taking a built-in's name: both named
    ({"4dfy": {"base": "wo_hybrid"}}, "overrides.4dfy: base: defines a method '4dfy', but '4dfy' is already "
                                      "registered (built-in: 4D-fy: hybrid SDS"),
    ({"wo_hybrid": {"base": "4dfy", "weights.sds_video": 0.3}},
     "overrides.wo_hybrid: base: defines a method 'wo_hybrid', but 'wo_hybrid' is already registered (built-in: no "
     "hybrid SDS in stage 3"),
    ({"v": {"base": "4dfy", "weights.sds_vide": 0.3}}, "overrides.v: unknown config key 'weights.sds_vide'; did you "
                                                       "mean 'weights.sds_video'? valid keys under 'weights': "
                                                       "weights.sds, "),
    ({"4dfy": {"description": "mine"}}, "overrides.4dfy: description: belongs to a variant (an entry with base:); "
                                        "drop it"),
    ({"v": {"base": "mav3d"}}, "overrides.v: base: 'mav3d' cannot be trained here (videos only)"),
    ({"a": {"base": "b"}, "b": {"base": "a"}}, "the variants 'a', 'b' are each other's base: (a cycle)"),
    ({"v/x": {"base": "4dfy"}}, "'v/x' cannot name a method"),
    # --set-from FILE:overrides.<name> splits on dots, so such a variant could never be trained
    ({"4dfy_v0.3": {"base": "4dfy"}}, "'4dfy_v0.3' cannot name a method"),
    ({"v": {"base": "4dfy", "label": 3}}, "overrides.v: label: must be a non-empty string, got 3"),
])
def test_bad_entries_are_errors_naming_the_file_and_the_entry(entries, says):
    before = dict(METHODS)
    with pytest.raises(ValueError) as err:
        register_variants(entries, source=SRC)
    assert str(err.value).startswith(f"{SRC}: ") and says in str(err.value), err.value
    assert METHODS == before  # the built-in keeps its definition; no half of an entry is registered


def test_an_unknown_base_is_the_registrys_did_you_mean():
    with pytest.raises(UnknownMethodError) as err:
        register_variants({"v": {"base": "4dfyy", "weights.sds_video": 0.3}}, source=SRC)
    assert err.value.head == f"{SRC}: overrides.v: base: unknown method '4dfyy' (did you mean '4dfy'?)"
    assert err.value.tail.startswith("; known methods: 4dfy") and "v" not in METHODS


def test_a_variant_of_another_file_keeps_its_name():
    register_variants({"v": {"base": "4dfy", "weights.sds_video": 0.3}}, source="other/params.yaml")
    with pytest.raises(ValueError, match=r"my/params.yaml: overrides.v: base: defines a method 'v', but 'v' is already "
                                         r"registered \(variant of 4dfy from other/params.yaml"):
        register_variants({"v": {"base": "4dfy", "weights.sds_video": 0.5}}, source=SRC)
    assert resolve_config("tiny", "v").weights.sds_video == 0.3


def test_a_variant_changing_only_stage_3_shares_stages_1_2_with_its_base():
    """The stage cache's key ignores the method's name: a variant changing the video loss (read in stage 3 only)
    has 4dfy's 2-stage prefix hash under the tiny profile; one changing a stage-1 setting shares nothing."""
    register_variants({"video03": {"base": "4dfy", "weights.sds_video": 0.3},
                       "s1": {"base": "4dfy", "stages.stage1.steps": 30}}, source=SRC)
    base, video, s1 = (resolve_config("tiny", m) for m in ("4dfy", "video03", "s1"))
    assert video.stage_prefix_hash(2) == base.stage_prefix_hash(2)
    assert video.config_hash() != base.config_hash() and video.stage_prefix_hash(3) != base.stage_prefix_hash(3)
    assert s1.stage_prefix_hash(1) != base.stage_prefix_hash(1)

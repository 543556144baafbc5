import pytest

from baselines import METHODS, Method, get_method, register, resolve_config
from method.training import load_profile

TABLE_METHODS = {"4dfy", "mav3d", "wo_3d_img", "wo_3d", "wo_img", "wo_hybrid", "hexplane", "single_stage",
                 "single_grid"}


def test_every_table_row_is_registered_with_a_description():
    assert TABLE_METHODS <= set(METHODS)
    assert all(m.description and m.paper_label for m in METHODS.values())


def test_unknown_method_lists_known_ones():
    with pytest.raises(ValueError) as err:
        get_method("4dfy_v2")
    assert "4dfy" in str(err.value) and "wo_hybrid" in str(err.value)


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="paper, release, tiny"):
        load_profile("huge")


def test_mav3d_is_videos_only():
    with pytest.raises(ValueError, match="cannot be trained"):
        resolve_config("paper", "mav3d")


def test_ablations_change_only_what_they_claim():
    base = resolve_config("paper", "4dfy")
    assert [s.steps for s in resolve_config("paper", "wo_3d_img").stages] == [0, 0, 100_000]
    assert resolve_config("paper", "wo_3d_img").stage("stage3").update_probabilities()["video"] == 1.0
    assert resolve_config("paper", "wo_3d").stage("stage1").update_probabilities()["img"] == 1.0
    assert resolve_config("paper", "wo_img").stage("stage3").update_probabilities() == {"3d": 0.5, "img": 0.0,
                                                                                         "video": 0.5}
    assert resolve_config("paper", "wo_hybrid").stage("stage2") == base.stage("stage2")
    assert resolve_config("paper", "wo_hybrid").stage("stage3").update_probabilities()["video"] == 1.0
    single = resolve_config("paper", "single_stage")
    assert [s.steps for s in single.stages] == [0, 0, 100_000]
    assert single.stage("stage3").update_probabilities() == base.stage("stage3").update_probabilities()
    assert resolve_config("paper", "hexplane").field.representation == "hexplane"
    sg = resolve_config("paper", "single_grid")
    assert sg.field.representation == "single_grid" and "dynamic" in sg.static_groups
    # every variant keeps the rest of the config: hashes differ only through the overrides
    assert len({resolve_config("paper", m).config_hash() for m in TABLE_METHODS - {"mav3d"}}) == 8


def test_profiles_differ_where_paper_and_release_differ():
    paper, release = load_profile("paper"), load_profile("release")
    assert paper.stage("stage2").steps == 10_000 and release.stage("stage2").steps == 25_000
    assert paper.stage("stage3").static_lr_scale * paper.lrs.static == pytest.approx(1e-4)


def test_plugin_registration_and_collision():
    m = Method("my_method", "a test method", overrides={"weights.sds_video": 0.3}, paper_label="mine")
    try:
        register(m)
        assert resolve_config("paper", "my_method").weights.sds_video == 0.3
        with pytest.raises(ValueError, match="already registered"):
            register(m)
    finally:
        METHODS.pop("my_method", None)

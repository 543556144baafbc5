"""The `methods` and `design` stages on a reviewer's params.yaml: mappings under `overrides:` (the configs written keep
the profile's other settings), a stage given as a mapping, a misspelt `study.added_prompt_set` (before: found only by
the votes stage, after all the training) and a bad key in the entry of a registered method that no generate block
trains (before: never checked)."""

import json

import pytest
import yaml
from run_helpers import params_file

from pipelines import stages

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: variants do not outlive a test




def test_a_variants_mapping_is_written_with_the_profiles_other_settings(tmp_path):
    """The reviewer's `v10`: build/methods/config/v10.json had `num_samples: 512`, the tiny profile 32."""
    params = params_file(tmp_path, ("4dfy", "v10"), {"4dfy": {}, "v10": {"base": "4dfy", "renderer": {
        "recompute_field": True}}})
    out = stages.write_methods(params, tmp_path / "methods")
    v10 = json.loads((out / "config" / "v10.json").read_text())
    base = json.loads((out / "config" / "4dfy.json").read_text())
    assert v10 == {**base, "method": "v10", "renderer": {**base["renderer"], "recompute_field": True}}
    assert v10["renderer"]["num_samples"] == 32


def test_a_stage_mapping_in_a_methods_entry_passes_the_stage(tmp_path):
    """`4dfy: {stages.stage3: {steps: 10}}` was a raw AttributeError ('dict' object has no attribute 'name')."""
    params = params_file(tmp_path, ("4dfy",), {"4dfy": {"stages.stage3": {"steps": 10}}})
    configs, built, parts = stages.method_configs(yaml.safe_load(params.read_text()), ["4dfy"])
    assert parts == [] and built["4dfy"].stage("stage3").steps == 10 and configs["4dfy"].stage("stage3").steps == 80
    stages.main(["methods", "--params", str(params), "--out", str(tmp_path / "methods")])


def test_an_error_no_config_check_foresaw_is_named_with_the_entry(tmp_path, monkeypatch):
    """Should a value still reach a TypeError or AttributeError in the config code, the part names the entry."""
    import method.configs

    def broken(*args, **kwargs):
        raise AttributeError("'dict' object has no attribute 'name'")

    monkeypatch.setattr(method.configs, "set_keys", broken)
    params = {"profile": "tiny", "overrides": {"4dfy": {"stages.stage3.steps": 10}}}
    _, _, parts = stages.method_configs(params, ["4dfy"])
    assert parts == ["overrides.4dfy: its keys cannot be applied: AttributeError: 'dict' object has no attribute "
                     "'name'"]


def test_a_misspelt_added_prompt_set_stops_the_methods_stage_naming_the_key(tmp_path, methods_stage_error):
    params = params_file(tmp_path, ("4dfy", "v1"), {"4dfy": {}, "v1": {"base": "4dfy", "weights.sds_video": 0.3}},
                     study={"design": "userstudy/designs/paper.yaml", "added_prompt_set": "ablaton_5"})
    line = methods_stage_error(params, tmp_path / "methods")
    assert "study.added_prompt_set: 'ablaton_5' names no prompt set (did you mean 'ablation_5'?): there is no " \
           "prompts/ablaton_5.txt; known: ablation_5, mav3d_28" in line, line


def test_a_misspelt_added_prompt_set_stops_the_design_stage_naming_the_key(tmp_path, capsys):
    params = params_file(tmp_path, ("4dfy",), {"4dfy": {}},
                     study={"design": "userstudy/designs/paper.yaml", "added_prompt_set": "ablaton_5"})
    with pytest.raises(SystemExit) as exit_:
        stages.main(["design", "--params", str(params), "--out", str(tmp_path / "design.yaml")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(f"error: {params}: study.added_prompt_set: 'ablaton_5' names "
                                                    "no prompt set"), err
    assert not (tmp_path / "design.yaml").exists()


@pytest.mark.parametrize("value", [5, "", "../prompts/ablation_5"])
def test_an_added_prompt_set_that_is_no_name_is_refused(value):
    problem = stages.added_prompt_set_problem({"study": {"added_prompt_set": value}})
    assert problem == (f"study.added_prompt_set must name a prompt set (a file prompts/<name>.txt: ablation_5, "
                       f"mav3d_28), got {value!r}")


def test_a_good_or_absent_added_prompt_set_passes(tmp_path):
    assert stages.added_prompt_set_problem({"study": {"added_prompt_set": "mav3d_28"}}) is None
    assert stages.added_prompt_set_problem({"study": {}}) is None and stages.added_prompt_set_problem({}) is None
    params = params_file(tmp_path, ("4dfy", "v1"), {"4dfy": {}, "v1": {"base": "4dfy", "weights.sds_video": 0.3}},
                     study={"design": "userstudy/designs/paper.yaml", "added_prompt_set": "mav3d_28"})
    design = stages.effective_design(yaml.safe_load(params.read_text()))
    assert any(s.get("prompt_set") == "mav3d_28" and "v1" in s["rows"]
               for t in design["tables"].values() for s in t["sections"])


def test_a_bad_key_in_the_entry_of_a_method_no_generate_block_trains_is_named(tmp_path, methods_stage_error):
    """The reviewer's `hexplane: {weights.sds_vide: 0.3}` with hexplane in no generate block passed silently."""
    params = params_file(tmp_path, ("4dfy",), {"4dfy": {}, "hexplane": {"weights.sds_vide": 0.3},
                                          "wo_hybrid": {"weights": {"sds_vide": 0.3}}})
    line = methods_stage_error(params, tmp_path / "methods")
    assert "overrides.hexplane: unknown config key 'weights.sds_vide'; did you mean 'weights.sds_video'?" in line, line
    assert "overrides.wo_hybrid: unknown config key 'weights.sds_vide'" in line, line
    assert f"{params}: {params}" not in line


def test_good_entries_of_untrained_methods_and_labels_of_videos_pass(tmp_path):
    params = params_file(tmp_path, ("4dfy",), {"4dfy": {}, "hexplane": {"weights.sds_video": 0.3, "label": "HP"},
                                          "mav3d": {"label": "MAV3D (videos)"}})
    stages.write_methods(params, tmp_path / "methods")
    assert not (tmp_path / "methods" / "config" / "hexplane.json").exists()  # checked, not trained

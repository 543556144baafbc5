"""The `methods` stage's checks of params.yaml's `overrides:`: each method's config is built once; a bad entry is
named in the same error as the stage's other problems (it was named only once they were fixed, a second round); a
variant of a registered method does not take that method's own entry, and the stage says which keys it leaves out."""

import json

import pytest
from run_helpers import params_file

from pipelines import stages

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: variants do not outlive a test




# --- 1. one build per method

def test_each_trained_methods_config_is_built_once(tmp_path, monkeypatch):
    """A method whose entry has config keys was resolved twice (once to check the keys, once for its file): the
    profile and the method's changes and transform (hexplane sizes its planes) were applied twice."""
    from baselines import Method

    applied = []
    apply = Method.apply
    monkeypatch.setattr(Method, "apply", lambda self, cfg: applied.append(self.name) or apply(self, cfg))
    params = params_file(tmp_path, ("4dfy", "hexplane", "wo_hybrid", "v1"),
                     {"4dfy": {"weights.sds_video": 0.2}, "hexplane": {"stages.stage3.steps": 3}, "wo_hybrid": {},
                      "v1": {"base": "4dfy", "weights.sds_video": 0.3}})
    out = stages.write_methods(params, tmp_path / "methods")
    assert sorted(applied) == ["4dfy", "hexplane", "v1", "wo_hybrid"]
    # the file holds the method's registered config (the entry's keys are its generate stages' --set values)
    assert json.loads((out / "config" / "4dfy.json").read_text())["weights"]["sds_video"] == 0.1
    assert json.loads((out / "config" / "v1.json").read_text())["weights"]["sds_video"] == 0.3


# --- 3. bad entries in the one error

def test_a_bad_entry_is_named_together_with_an_unknown_method_and_a_shared_label(tmp_path, methods_stage_error):
    """Before, the unknown name alone was reported; once it was fixed the bad keys were, and once those were fixed,
    the label: three rounds of `dvc repro`."""
    overrides = {"4dfy": {"weights.sds_vide": 0.3}, "wo_hybrid": {"stages.stage3.p_3d": 1.5},
                 "v1": {"base": "4dfy", "label": "4D-fy"}}
    params = params_file(tmp_path, ("4dfy", "wo_hybrid", "v1", "wo_hybird"), overrides)
    line = methods_stage_error(params, tmp_path / "methods")
    assert "overrides.4dfy: unknown config key 'weights.sds_vide'; did you mean 'weights.sds_video'?" in line, line
    assert "overrides.wo_hybrid: stages.stage3.p_3d is a probability, from 0 to 1; got 1.5" in line, line
    assert "table2 would have two rows labelled '4D-fy'" in line, line
    assert "generate.methods names 1 method the pipeline cannot train: unknown method 'wo_hybird' (did you mean " \
           "'wo_hybrid'?)" in line, line
    # the registry's list of known methods once, at the end, after the unknown name it belongs to
    assert line.count("known methods: ") == 1 and line.index("'wo_hybird'") < line.index("known methods: ")
    assert line.endswith("(docs/pipeline.md)"), line


def test_a_bad_entry_is_named_together_with_a_missing_videos_folder(tmp_path, methods_stage_error):
    params = params_file(tmp_path, ("4dfy", "single_grid"), {"4dfy": {}, "single_grid": {"weights.sds": -1}},
                     videos={"theirs": {"folder": "data/videos/nowhere", "trajectory": "orbit"}})
    line = methods_stage_error(params, tmp_path / "methods")
    assert "overrides.single_grid: weights.sds must be >= 0" in line, line
    assert "videos.theirs.folder: data/videos/nowhere does not exist" in line, line
    assert "known methods" not in line


def test_with_nothing_else_wrong_the_bad_entry_alone_is_named_as_before(tmp_path, methods_stage_error):
    params = params_file(tmp_path, ("4dfy", "wo_hybrid"), {"4dfy": {}, "wo_hybrid": {"weights.sds_vide": 0.3}})
    line = methods_stage_error(params, tmp_path / "methods")
    assert line.startswith(f"error: {params}: overrides.wo_hybrid: unknown config key 'weights.sds_vide'"), line
    assert "cannot train" not in line and "known methods" not in line


# --- 4. a variant and its base's own entry

def test_a_variant_does_not_take_its_bases_entry_and_the_stage_names_the_keys_it_leaves_out(tmp_path, capsys):
    overrides = {"4dfy": {"stages.stage1.steps": 10, "weights.sds_video": 0.2, "label": "Ours"},
                 "myvar": {"base": "4dfy", "weights.sds_video": 0.3},
                 "mine": {"base": "4dfy", "stages.stage1.steps": 10, "weights.sds_video": 0.2},
                 "deeper": {"base": "myvar", "weights.sparsity": 5.0}}
    params = params_file(tmp_path, ("4dfy", "myvar", "mine", "deeper"), overrides)
    out = stages.write_methods(params, tmp_path / "methods")
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "note: overrides.myvar (a variant of 4dfy) does not take the keys of overrides.4dfy (stages.stage1.steps=10): "
        "they change 4dfy's own runs only; to train myvar with them too, add them to overrides.myvar",
        "note: overrides.deeper (a variant of 4dfy) does not take the keys of overrides.4dfy (stages.stage1.steps=10): "
        "they change 4dfy's own runs only; to train deeper with them too, add them to overrides.deeper"], err
    configs = {m: json.loads((out / "config" / f"{m}.json").read_text()) for m in ("4dfy", "myvar", "mine", "deeper")}
    tiny_stage1 = configs["4dfy"]["stages"][0]["steps"]
    assert tiny_stage1 != 10  # the profile's value: 10 is a change of 4dfy's entry
    assert [(c["stages"][0]["steps"], c["weights"]["sds_video"]) for c in configs.values()] == [
        (tiny_stage1, 0.1), (tiny_stage1, 0.3), (10, 0.2), (tiny_stage1, 0.3)]


def test_the_stage_resolves_a_variant_as_its_generate_stage_does(tmp_path, registry):
    """The rule is the same in every process: `--set-from params.yaml:overrides.myvar` (the generate stage, a fresh
    registry) builds the config the methods stage wrote, without 4dfy's entry."""
    from method.training.config import TrainConfig
    from pipelines.generate import build_config, read_set_from

    overrides = {"4dfy": {"stages.stage1.steps": 10}, "myvar": {"base": "4dfy", "weights.sds_video": 0.3}}
    params = params_file(tmp_path, ("4dfy", "myvar"), overrides)
    out = stages.write_methods(params, tmp_path / "methods")
    written = TrainConfig.from_dict(json.loads((out / "config" / "myvar.json").read_text()))
    registry.pop("myvar")
    sets, _note = read_set_from(f"{params}:overrides.myvar", "myvar")
    assert build_config("tiny", "myvar", sets=sets).config_hash() == written.config_hash()


def test_no_note_when_the_base_entry_has_no_config_keys(tmp_path, capsys):
    params = params_file(tmp_path, ("4dfy", "myvar"), {"4dfy": {"label": "Ours"}, "myvar": {"base": "4dfy"}})
    stages.write_methods(params, tmp_path / "methods")
    assert capsys.readouterr().err == ""

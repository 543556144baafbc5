"""`fourdfy survey build` refuses a design whose tables would have two rows alike once a method the design leaves
unlabelled takes the label its registered method (a plug-in) gives itself, as `fourdfy analyze` does: before, the
survey was built (and could be run) and only `analyze` refused the votes."""

import shutil

import pytest
import yaml
from survey_helpers import PROMPTS, write_artifact
from typer.testing import CliRunner

from baselines import METHODS, Method
from pipelines.cli import app

runner = CliRunner()
DESIGN = {"primary": "4dfy", "methods": {"mav3d": "MAV3D"},
          "tables": {"t": {"sections": [{"prompt_set": "set3", "rows": ["4dfy", "mav3d"]},
                                        {"prompt_set": "set1", "rows": ["4dfy", "my_plugin"]}]}}}


@pytest.fixture()
def inputs(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    own = tmp_path / "arts"
    shutil.copytree(arts, own)
    write_artifact(own, "my_plugin", "a_panda_dancing", PROMPTS["a_panda_dancing"], 90)
    design = tmp_path / "own.yaml"
    design.write_text(yaml.safe_dump(DESIGN), encoding="utf-8")
    return design, own, prompts_dir


def _build(inputs, out):
    design, arts, prompts_dir = inputs
    return runner.invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(arts),
                               "--prompts-dir", str(prompts_dir), "--out", str(out)])


def test_a_plugins_label_that_another_row_has_is_refused_before_anything_is_written(inputs, tmp_path, monkeypatch):
    monkeypatch.setitem(METHODS, "my_plugin", Method("my_plugin", "a plug-in", trainable=False, label="MAV3D"))
    res = _build(inputs, tmp_path / "b")
    assert res.exit_code == 2, res.output
    # the line `fourdfy analyze` gives for the same design (tests/userstudy/test_followup_registered_labels.py)
    assert res.stderr.strip().splitlines() == [
        "error: own.yaml: t would have two rows labelled 'MAV3D': 'mav3d' (methods.mav3d.label) and 'my_plugin' "
        "(the label method 'my_plugin' registers); give one of them another label: under methods: in the design "
        "(methods.<name>.label)"]
    assert not (tmp_path / "b").exists()


def test_a_plugins_own_label_builds(inputs, tmp_path, monkeypatch):
    monkeypatch.setitem(METHODS, "my_plugin", Method("my_plugin", "a plug-in", trainable=False, label="Mine"))
    res = _build(inputs, tmp_path / "b")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "b" / "bundle.json").is_file()

"""`fourdfy analyze` labels a method its design leaves unlabelled with the label its registered method gives itself
(a plug-in's); such a label that makes two rows of one table alike is refused as one the design gives twice, in one
line naming the plug-in's label as the source (before, the tables printed two rows that could not be told apart)."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
DESIGN = "primary: 4dfy\ncomparisons: [mav3d, my_plugin]\nmethods:\n  mav3d: MAV3D\n"


@pytest.fixture()
def study(tmp_path):
    design = tmp_path / "own.yaml"
    design.write_text(DESIGN)
    votes = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--rates", "0.6", "--raters", "3",
                              "--out", str(votes)])
    assert res.exit_code == 0, res.output
    return design, votes


def _analyze(design, votes, out):
    return runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out),
                               "--n-boot", "100"])


def test_a_plugins_label_that_another_row_has_is_refused_naming_the_plugin(study, tmp_path, monkeypatch):
    from baselines import METHODS, Method

    design, votes = study
    monkeypatch.setitem(METHODS, "my_plugin", Method("my_plugin", "a plug-in", label="MAV3D"))
    res = _analyze(design, votes, tmp_path / "tables")
    assert res.exit_code == 2, res.output
    assert res.stderr.strip().splitlines() == [
        "error: own.yaml: comparisons would have two rows labelled 'MAV3D': 'mav3d' (methods.mav3d.label) and "
        "'my_plugin' (the label method 'my_plugin' registers); give one of them another label: under methods: in "
        "the design (methods.<name>.label)"]
    assert not (tmp_path / "tables").exists()  # refused before anything is computed or written


def test_a_plugins_own_label_is_printed(study, tmp_path, monkeypatch):
    from baselines import METHODS, Method

    design, votes = study
    monkeypatch.setitem(METHODS, "my_plugin", Method("my_plugin", "a plug-in", label="w/ my loss"))
    res = _analyze(design, votes, tmp_path / "tables")
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "tables" / "comparisons.csv", dtype=str)
    assert dict(zip(table.method, table.label)) == {"4dfy": "4D-fy", "mav3d": "MAV3D", "my_plugin": "w/ my loss"}


def test_simulate_votes_refuses_the_same_clash_before_writing(tmp_path, monkeypatch):
    from baselines import METHODS, Method

    design = tmp_path / "own.yaml"
    design.write_text(DESIGN)
    monkeypatch.setitem(METHODS, "my_plugin", Method("my_plugin", "a plug-in", label="MAV3D"))
    votes = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--rates", "0.6", "--raters", "3",
                              "--out", str(votes)])
    assert res.exit_code == 2, res.output
    assert "would have two rows labelled 'MAV3D'" in res.stderr
    assert not votes.exists()  # votes analyze would refuse are not made

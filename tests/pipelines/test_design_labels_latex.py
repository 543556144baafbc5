"""A design method relabelled with params.yaml's `overrides.<name>.label` gets a LaTeX label made from the new label:
the pipeline's `.tex` tables printed the design's old `latex:` label while its `.md` tables printed the new one."""

import pytest
import yaml
from typer.testing import CliRunner

from pipelines import stages
from pipelines.cli import app
from userstudy.design import load_design

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py


def _design(tmp_path, overrides: dict):
    params = {"seed": 0, "profile": "tiny",
              "generate": {"methods": list(overrides), "prompts": ["a_panda_dancing"]},
              "overrides": overrides, "videos": {"mav3d": {"folder": "data/videos/mav3d", "trajectory": "orbit"}},
              "study": {"design": "userstudy/designs/paper.yaml"}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return stages.write_design(path, tmp_path / "design.yaml")


def test_the_tex_table_prints_the_new_label_escaped_not_the_designs_old_latex(tmp_path):
    design = _design(tmp_path, {"4dfy": {}, "wo_3d": {"label": "w/o 3D & IMG_x"}, "wo_img": {}})
    d = load_design(design)
    assert d.label("wo_3d") == "w/o 3D & IMG_x" and d.label("wo_3d", latex=True) == r"w/o 3D \& IMG\_x"
    # the design's own LaTeX labels of the methods params.yaml does not relabel stay
    assert d.label("wo_img", latex=True) == load_design("userstudy/designs/paper.yaml").label("wo_img", latex=True)
    votes, out = tmp_path / "votes.csv", tmp_path / "tables"
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "2", "--out", str(votes)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out),
                              "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    tex, md = (out / "table2.tex").read_text(), (out / "table2.md").read_text()
    assert "| w/o 3D & IMG_x |" in md
    assert "\nw/o 3D \\& IMG\\_x & " in tex, tex
    assert r"\mathcal{L}_{\mathrm{3D}}" not in tex  # wo_3d's old LaTeX label
    assert r"\mathcal{L}_{\mathrm{IMG}}" in tex  # wo_img's, not relabelled


def test_an_override_that_keeps_the_designs_label_keeps_its_latex(tmp_path):
    paper = load_design("userstudy/designs/paper.yaml")
    d = load_design(_design(tmp_path, {"4dfy": {}, "wo_3d": {"label": paper.label("wo_3d")}}))
    assert d.label("wo_3d", latex=True) == paper.label("wo_3d", latex=True)

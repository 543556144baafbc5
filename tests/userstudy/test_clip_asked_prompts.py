"""A section asking only the first `n_prompts` of its set never shows the set's CLIP mean as its own: clip.csv holds
one mean per set (no per-prompt scores), so a mean over more prompts than the section asks is not shown, with a note;
the paper's design, which asks every prompt of its sets, keeps its tables."""

import copy

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.analysis import AnalysisConfig, analyze
from userstudy.design import PAPER_DESIGN, design_from_dict
from userstudy.simulate import simulate_votes
from userstudy.tables import ClipScore, clip_refused, clip_shown, load_clip, write_outputs
from userstudy.votes import validate_votes
from userstudy_helpers import ideal_panel

runner = CliRunner()
DESIGN17 = {"primary": "4dfy", "methods": {"4dfy": {"label": "4D-fy"}, "mav3d": {"label": "MAV3D"}},
            "tables": {"v1": {"caption": "arXiv v1", "sections": [
                {"heading": "", "prompt_set": "mav3d_28", "n_prompts": 17, "rows": ["mav3d", "4dfy"]}]}}}
WHOLE_SET = ("method,clip,prompt_set,n_prompts,n_set\n"
             "4dfy,33.92857142857143,mav3d_28,28,28\nmav3d,33.92857142857143,mav3d_28,28,28\n")


@pytest.fixture(scope="module")
def analysis17():
    design = design_from_dict(copy.deepcopy(DESIGN17))
    raw = simulate_votes(design, ideal_panel(n_raters=3, default_rate=0.7, seed=1))
    return analyze(validate_votes(raw, design), design, AnalysisConfig(n_boot=100))


def _write(tmp_path, analysis, text, name="res"):
    path = tmp_path / f"{name}.csv"
    path.write_text(text)
    out = tmp_path / name
    write_outputs(analysis, out, source="votes.csv", clip=load_clip(path))
    return out


def test_the_whole_sets_mean_is_not_shown_for_a_section_asking_part_of_it(tmp_path, analysis17):
    """The reproduction: a section on the first 17 of mav3d_28 showed the 28-prompt mean (33.9), unmarked."""
    out = _write(tmp_path, analysis17, WHOLE_SET)
    md = (out / "v1.md").read_text()
    assert "33.9" not in md
    assert "| MAV3D | — |" in md and "| 4D-fy | — |" in md
    assert ("— CLIP not shown: the CLIP file's mean is over more prompts of the set than the section asks" in md
            and "MAV3D (mav3d_28): 28 prompts, 17 asked; 4D-fy (mav3d_28): 28 prompts, 17 asked." in md)
    tex = (out / "v1.tex").read_text()
    assert "33.9" not in tex and "MAV3D (mav3d\\_28): 28 prompts, 17 asked" in tex
    table = pd.read_csv(out / "v1.csv")
    assert table["clip"].isna().all() and table["clip_n_prompts"].isna().all()
    report = (out / "report.md").read_text()
    assert "v1: MAV3D (mav3d_28): 28 prompts, 17 asked" in report and "| 33.93 |" not in report


def test_a_mean_over_no_more_prompts_than_asked_is_shown_and_marked_as_part_of_the_set(tmp_path, analysis17):
    out = _write(tmp_path, analysis17, "method,clip,prompt_set,n_prompts,n_set\nmav3d,30.0,mav3d_28,17,28\n"
                                       "4dfy,31.0,mav3d_28,5,28\n")
    md = (out / "v1.md").read_text()
    assert "| MAV3D | 30.0‡ |" in md and "| 4D-fy | 31.0‡ |" in md
    assert "MAV3D (mav3d_28): 17 of 28" in md and "not shown" not in md


def test_a_value_without_counts_is_shown_as_given(tmp_path, analysis17):
    out = _write(tmp_path, analysis17, "method,clip,prompt_set\nmav3d,30.0,mav3d_28\n4dfy,31.0,mav3d_28\n")
    md = (out / "v1.md").read_text()
    assert "| MAV3D | 30.0 |" in md and "not shown" not in md


def test_only_sections_asking_part_of_the_set_refuse_it():
    clip = {("mav3d", "mav3d_28"): ClipScore(33.9, 28, 28), ("4dfy", "mav3d_28"): ClipScore(31.0, 17, 28)}
    d17 = design_from_dict(copy.deepcopy(DESIGN17))
    assert clip_refused(clip, d17) == [("mav3d", "mav3d_28", 28, 17)]
    assert clip_shown(clip, d17) == [("4dfy", "mav3d_28")]
    for n_prompts in (28, None):  # every prompt of the set: the set's mean is the section's
        whole = copy.deepcopy(DESIGN17)
        section = whole["tables"]["v1"]["sections"][0]
        section.pop("n_prompts") if n_prompts is None else section.update(n_prompts=n_prompts)
        d = design_from_dict(whole)
        assert clip_refused(clip, d) == [] and clip_shown(clip, d) == [("mav3d", "mav3d_28"), ("4dfy", "mav3d_28")]


def test_the_paper_designs_tables_are_those_of_its_sets(tmp_path, paper_design):
    """The paper's design gives each section its set's size (28, 5): its tables are those of a design without
    n_prompts, byte for byte, with every CLIP value shown."""
    data = yaml.safe_load(PAPER_DESIGN.read_text())
    sizes = [s.get("n_prompts") for t in data["tables"].values() for s in t["sections"]]
    assert set(sizes) == {28, 5}
    for t in data["tables"].values():
        for s in t["sections"]:
            s.pop("n_prompts")
    plain = design_from_dict(data)
    raw = simulate_votes(paper_design, ideal_panel(n_raters=3, default_rate=0.7, seed=2))
    clip = ("method,clip,prompt_set,n_prompts,n_set\n" + "".join(
        f"{m},{20 + i / 7},mav3d_28,28,28\n{m},{21 + i / 9},ablation_5,5,5\n"
        for i, m in enumerate(["4dfy", "mav3d", "wo_3d_img", "wo_3d", "wo_img", "wo_hybrid", "hexplane",
                               "single_stage", "single_grid"])))
    paths = {}
    for name, design in (("paper", paper_design), ("plain", plain)):
        a = analyze(validate_votes(raw, design), design, AnalysisConfig(n_boot=100))
        paths[name] = _write(tmp_path, a, clip, name)
    for table in ("table2", "table3"):
        for ext in ("md", "tex", "csv"):
            assert (paths["paper"] / f"{table}.{ext}").read_bytes() == (paths["plain"] / f"{table}.{ext}").read_bytes()
    md = (paths["paper"] / "table2.md").read_text()
    assert "| MAV3D | 20.1 |" in md and "not shown" not in md and "—" in md  # the primary's preference cells
    assert pd.read_csv(paths["paper"] / "table2.csv")["clip"].notna().all()


def test_analyze_says_why_the_cell_is_empty(tmp_path):
    design = tmp_path / "d17.yaml"
    design.write_text(yaml.safe_dump(DESIGN17))
    votes = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "3", "--out", str(votes)])
    assert res.exit_code == 0, res.output
    clip = tmp_path / "clip.csv"
    clip.write_text(WHOLE_SET)
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--clip", str(clip),
                              "--out", str(tmp_path / "out"), "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    assert ("note: no CLIP value in the tables for mav3d, 4dfy (mav3d_28: clip.csv's mean is over 28 prompts, the "
            "section asks the first 17)") in res.stderr

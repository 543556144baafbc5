"""Table 2's CLIP column says when a value is a mean over only part of its prompt set (the
`n_prompts`/`n_set` columns of `fourdfy clipscore`'s clip.csv); older clip.csv files still load."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.analysis import AnalysisConfig, analyze
from userstudy.simulate import simulate_votes
from userstudy.tables import ClipError, ClipScore, load_clip, write_outputs
from userstudy.votes import validate_votes
from userstudy_helpers import ideal_panel

runner = CliRunner()
# 4D-fy rendered 1 of the 28 MAV3D prompts; the ablation values cover their whole set
CLIP = ("method,clip,prompt_set,n_prompts,n_set\n"
        "4dfy,21.268,mav3d_28,1,28\nmav3d,30.5,mav3d_28,28,28\n4dfy,22.0,ablation_5,5,5\nwo_3d,20.9,ablation_5,5,5\n")


@pytest.fixture(scope="module")
def analysis(paper_design):
    raw = simulate_votes(paper_design, ideal_panel(n_raters=3, default_rate=0.7, seed=1))
    return analyze(validate_votes(raw, paper_design), paper_design, AnalysisConfig(n_boot=100))


def test_counts_are_kept_and_old_files_still_load(tmp_path, paper_design):
    path = tmp_path / "clip.csv"
    path.write_text(CLIP)
    clip = load_clip(path)
    assert clip[("4dfy", "mav3d_28")] == ClipScore(21.268, 1, 28) and clip[("4dfy", "mav3d_28")].partial
    assert not clip[("mav3d", "mav3d_28")].partial
    path.write_text("method,clip,prompt_set\n4dfy,21.268,mav3d_28\n")  # before the count columns
    assert load_clip(path) == {("4dfy", "mav3d_28"): ClipScore(21.268, None, None)}
    path.write_text("method,clip,n_prompts,n_set\n4dfy,21.3,,\nmav3d,30,x,28\nwo_3d,20,6,5\n")
    with pytest.raises(ClipError) as info:
        load_clip(path)
    assert "n_prompts is not a whole number" in str(info.value) and "larger than n_set" in str(info.value)


def test_partial_values_are_marked_in_every_table_format(tmp_path, analysis, paper_design):
    path = tmp_path / "clip.csv"
    path.write_text(CLIP)
    out = tmp_path / "res"
    write_outputs(analysis, out, source="votes.csv", clip=load_clip(path))
    md = (out / "table2.md").read_text()
    assert "| 4D-fy | 21.3‡ |" in md and "| MAV3D | 30.5 |" in md  # 30.5 covers all 28: no mark
    assert "| 4D-fy | 22.0 |" in md  # the ablation section's 4D-fy value is complete
    assert "‡ CLIP is the mean over only part of the section's prompts" in md and "4D-fy (mav3d_28): 1 of 28" in md
    tex = (out / "table2.tex").read_text()
    assert r"21.3$^\ddagger$" in tex and "1 of 28" in tex and r"30.5 &" in tex
    table = pd.read_csv(out / "table2.csv")
    row = table[(table.method == "4dfy") & (table.section == 0)].iloc[0]
    assert row["clip"] == pytest.approx(21.268) and row.clip_n_prompts == 1 and row.clip_n_set == 28
    report = (out / "report.md").read_text()
    assert "## CLIP" in report and "| table2 | mav3d_28 | 4D-fy | 21.27 | 1 | 28 | yes |" in report
    assert "‡" not in (out / "table3.md").read_text()  # table3 has no partial value


def test_a_clip_file_without_counts_marks_nothing(tmp_path, analysis, paper_design):
    path = tmp_path / "clip.csv"
    path.write_text("method,clip,prompt_set\n4dfy,21.268,mav3d_28\n")
    out = tmp_path / "res"
    write_outputs(analysis, out, source="votes.csv", clip=load_clip(path))
    md = (out / "table2.md").read_text()
    assert "| 4D-fy | 21.3 |" in md and "‡" not in md
    table = pd.read_csv(out / "table2.csv")
    assert {"clip_n_prompts", "clip_n_set"} <= set(table.columns) and table.clip_n_prompts.isna().all()
    assert "| table2 | mav3d_28 | 4D-fy | 21.27 | n/a | n/a | no |" in (out / "report.md").read_text()


def test_analyze_command_shows_partial_clip(tmp_path):
    votes = tmp_path / "votes.csv"
    assert runner.invoke(app, ["simulate-votes", "--raters", "3", "--out", str(votes)]).exit_code == 0
    clip = tmp_path / "clip.csv"
    clip.write_text(CLIP)
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--clip", str(clip), "--out", str(tmp_path / "r"),
                              "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    assert "1 CLIP value(s) in the tables cover only part of their prompt set (marked ‡" in res.output
    assert "21.3‡" in (tmp_path / "r" / "table2.md").read_text()


def test_a_partial_value_shown_in_two_sections_over_one_prompt_set_is_noted_once(tmp_path):
    """The pipeline appends an 'Added methods' section over ablation_5 that repeats 4D-fy's row: one value, one
    note (not '4D-fy (ablation_5): 1 of 5; 4D-fy (ablation_5): 1 of 5')."""
    import yaml

    from userstudy.design import load_design

    from pathlib import Path

    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "userstudy" / "designs" / "paper.yaml").read_text())
    first = next(iter(data["tables"].values()))
    first["sections"].append({"heading": "Added methods", "prompt_set": "ablation_5", "rows": ["4dfy", "my_plugin"]})
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    design = load_design(path)
    raw = simulate_votes(design, ideal_panel(n_raters=3, default_rate=0.7, seed=1))
    result = analyze(validate_votes(raw, design), design, AnalysisConfig(n_boot=100))
    clip = tmp_path / "clip.csv"
    clip.write_text("method,clip,prompt_set,n_prompts,n_set\n4dfy,22.0,ablation_5,1,5\nmy_plugin,20.9,ablation_5,5,5\n")
    out = tmp_path / "res"
    write_outputs(result, out, source="votes.csv", clip=load_clip(clip))
    md = (out / "table2.md").read_text()
    assert md.count("| 4D-fy | 22.0‡ |") == 2  # the ablation section's row and the added section's
    assert md.count("4D-fy (ablation_5): 1 of 5") == 1

"""A row the CLIP file has no value for says so under the table, in the report and on the console: its "—" looked
like every other "—" (a method added after clipscore ran, MAV3D in the tiny pipeline) with nothing saying why."""

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def votes(tmp_path_factory):
    votes = tmp_path_factory.mktemp("votes") / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--out", str(votes), "--raters", "3", "--comparisons",
                              "mav3d,wo_3d", "--seed", "1"])
    assert res.exit_code == 0, res.output
    return votes


def _analyze(votes, out, *clip):
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--out", str(out), "--n-boot", "100", *clip])
    assert res.exit_code == 0, res.output
    return res


def test_rows_without_a_clip_value_are_named(tmp_path, votes):
    clip = tmp_path / "clip.csv"
    # mav3d: none at all; wo_3d: only for another set than its section's (ablation_5)
    clip.write_text("method,clip,prompt_set,n_prompts,n_set\n4dfy,30.0,mav3d_28,28,28\n4dfy,31.0,ablation_5,5,5\n"
                    "wo_3d,29.0,mav3d_28,28,28\nwo_3d_img,28.0,ablation_5,5,5\nwo_img,28.5,ablation_5,5,5\n"
                    "wo_hybrid,28.5,ablation_5,5,5\nhexplane,28.5,ablation_5,5,5\n")
    res = _analyze(votes, tmp_path / "out", "--clip", str(clip))
    md = (tmp_path / "out" / "table2.md").read_text()
    assert "| MAV3D | — |" in md and "| w/o ∇L_3D | — |" in md
    assert ("— No CLIP value in the CLIP file for the section's prompt set (no video of the method scored there"
            in md)
    assert md.rstrip().splitlines()[-3].endswith(": MAV3D (mav3d_28); w/o ∇L_3D (ablation_5).")
    tex = (tmp_path / "out" / "table2.tex").read_text()
    assert "No CLIP value in the CLIP file" in tex and r"MAV3D (mav3d\_28)" in tex
    # a backtick prints as a quote in LaTeX (the first line is a % comment)
    assert r"\texttt{fourdfy clipscore}" in tex and "`" not in tex.split("\n", 1)[1]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "table2: MAV3D (mav3d_28); table2: w/o ∇L_3D (ablation_5)" in report
    # each table names its own rows; 4D-fy has its values in both
    t3 = (tmp_path / "out" / "table3.md").read_text()
    assert ": w/ single-stage (ablation_5); w/ single hash grid (ablation_5)." in t3 and "4D-fy (ablation_5)" not in t3
    err = " ".join(res.stderr.split())
    assert "has no CLIP value for mav3d, single_stage, single_grid (no video of theirs was scored" in err


def test_without_a_clip_file_nothing_is_noted(tmp_path, votes):
    res = _analyze(votes, tmp_path / "out")
    assert "No CLIP value" not in (tmp_path / "out" / "table2.md").read_text()
    assert "No CLIP value" not in (tmp_path / "out" / "report.md").read_text()
    assert "has no CLIP value" not in res.stderr

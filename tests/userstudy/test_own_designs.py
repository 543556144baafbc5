"""A researcher's own study: a short design whose primary is a plug-in method, prompts outside the library
and no prompt_set. CLIP values come from clip.csv's `all` rows where they are over no more prompts than the votes
ask about (an empty cell says why), simulated cells
without a published rate are named, the console says whose share the percentages are, and a registered
method's own label reaches the tables."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from baselines import METHODS, Method
from evaluation.clip import clip_table
from pipelines.cli import app

runner = CliRunner()
# the tester's design (docs/userstudy.md "Design file", short form): no prompt_set, two prompts of its own
OWN = "name: own\nprimary: mymethod\ncomparisons: [4dfy]\nn_prompts: 2\n"
# per-prompt CLIP of `fourdfy clipscore`: the two own prompts and one MAV3D prompt
PER_PROMPT = pd.DataFrame([{"method": m, "slug": s, "prompt": s, "n_frames": 4, "clip": c} for m, s, c in
                           [("mymethod", "prompt_01", 30.0), ("mymethod", "prompt_02", 32.0),
                            ("4dfy", "prompt_01", 20.0), ("4dfy", "prompt_02", 21.0), ("4dfy", "a_panda_dancing", 25.0)]])


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """(design, votes, clip.csv with `all` rows, clip.csv of the library sets only)."""
    folder = tmp_path_factory.mktemp("own")
    design = folder / "design.yaml"
    design.write_text(OWN)
    votes = folder / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--rates", "0.7", "--raters", "4",
                              "--out", str(votes)])
    assert res.exit_code == 0, res.output
    table = clip_table(PER_PROMPT)
    clip = folder / "clip.csv"
    table.to_csv(clip, index=False)
    old = folder / "clip_sets_only.csv"  # what clipscore wrote before the `all` rows
    table[table.prompt_set != "all"].to_csv(old, index=False)
    return design, votes, clip, old


def _analyze(votes, design, clip, out):
    args = ["analyze", "--votes", str(votes), "--design", str(design), "--out", str(out), "--n-boot", "100"]
    return runner.invoke(app, args + (["--clip", str(clip)] if clip else []))


def test_a_design_without_prompt_set_shows_the_all_rows(own, tmp_path):
    design, votes, clip, _ = own
    res = _analyze(votes, design, clip, tmp_path / "res")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "res" / "comparisons.md").read_text()
    # 31.0 = (30 + 32) / 2 over the two prompts the votes ask about; 4dfy's `all` mean, (20 + 21 + 25) / 3, is over
    # a prompt no rater was asked about, and clip.csv alone cannot give the mean over the asked two: not shown
    assert "| mymethod | 31.0 |" in md and "| 4D-fy | — |" in md
    assert "4D-fy (all): 3 prompts, 2 asked" in md
    report = (tmp_path / "res" / "report.md").read_text()
    assert "## CLIP" in report and "| comparisons | - | mymethod | 31.00 | 2 | 2 | no |" in report
    assert "no CLIP value in the tables for 4dfy (all: clip.csv's mean is over 3 prompts, the votes ask about 2)" \
        in res.output
    # the library rows of the same file are in no table: no partial note about them
    assert "mav3d_28" not in res.output


def test_an_empty_clip_cell_says_which_sets_the_file_has(own, tmp_path):
    design, votes, _, old = own
    out = tmp_path / "res"
    res = _analyze(votes, design, old, out)
    assert res.exit_code == 0, res.output
    # only 4dfy scored a library prompt; mymethod, with no row at all, is named as such
    assert ("note: no CLIP value in the tables for 4dfy: the design's section wants `all` (it names no "
            "prompt_set), clip.csv has ablation_5, mav3d_28. `prompt_set:` in the design chooses") in res.stderr
    err = " ".join(res.stderr.split())
    assert "has no CLIP value for mymethod (no video of theirs was scored" in err
    assert "for mymethod: the design's section wants" not in err
    md = (out / "comparisons.md").read_text()
    assert "| mymethod | — |" in md and "| 4D-fy | — |" in md
    assert "No CLIP value in the CLIP file for the section's prompt set" in md and "mymethod (all)" in md
    report = (out / "report.md").read_text()
    assert "## CLIP" in report and "comparisons: mymethod (all)" in report
    # a section naming a set the file does not have says so too; a set it has is shown without a note
    named = tmp_path / "named.yaml"
    named.write_text(OWN + "prompt_set: my_prompts\n")
    res = _analyze(votes, named, old, tmp_path / "res2")
    assert res.exit_code == 0, res.output
    assert "for 4dfy: the design's section wants prompt set my_prompts, clip.csv has ablation_5, mav3d_28" \
        in res.stderr
    named.write_text(OWN + "prompt_set: mav3d_28\n")
    # a prompt set of the library is checked: its votes are on its prompts (prompt_01 is no MAV3D prompt)
    res = _analyze(votes, named, old, tmp_path / "res3")
    assert res.exit_code == 2 and "prompt_id not in the prompt set mav3d_28 of its comparison 4dfy" in res.stderr
    votes = tmp_path / "votes_mav3d.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(named), "--rates", "0.7", "--raters", "4",
                              "--out", str(votes)])
    assert res.exit_code == 0, res.output
    res = _analyze(votes, named, old, tmp_path / "res3")
    assert res.exit_code == 0, res.output
    assert "no CLIP value in the tables" not in res.output and "| 4D-fy | 25.0‡ |" in (tmp_path / "res3" / "comparisons.md").read_text()


def test_the_paper_tables_do_not_change_with_all_rows(tmp_path):
    """Every section of the paper's design names its prompt set: the `all` rows change no output."""
    votes = tmp_path / "votes.csv"
    assert runner.invoke(app, ["simulate-votes", "--raters", "3", "--out", str(votes)]).exit_code == 0
    per_prompt = pd.DataFrame([{"method": m, "slug": s, "prompt": s, "n_frames": 4, "clip": c} for m, s, c in
                               [("4dfy", "a_panda_dancing", 25.0), ("4dfy", "a_cat_singing", 27.0),
                                ("mav3d", "a_panda_dancing", 29.0), ("wo_3d", "a_panda_dancing", 21.0)]])
    table = clip_table(per_prompt)
    assert (table.prompt_set == "all").sum() == 3
    outputs, logs = [], []
    for name, rows in (("with", table), ("without", table[table.prompt_set != "all"])):
        clip = tmp_path / f"clip_{name}.csv"
        rows.to_csv(clip, index=False)
        res = runner.invoke(app, ["analyze", "--votes", str(votes), "--clip", str(clip), "--out",
                                  str(tmp_path / name), "--n-boot", "100"])
        assert res.exit_code == 0, res.output
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())})
        logs.append(res.output.replace(name, ""))
    assert outputs[0] == outputs[1] and logs[0] == logs[1]
    assert "| MAV3D | 29.0‡ |" in outputs[0]["table2.md"].decode()
    assert "no CLIP value in the tables" not in logs[0]


def test_simulate_names_the_comparisons_without_a_published_rate(own, tmp_path):
    design = own[0]
    votes = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "2", "--out", str(votes)])
    assert res.exit_code == 0, res.output
    assert ("note: no published rate for 4dfy (the paper's rates are preferences for 4D-fy, and this design's "
            "primary is mymethod): simulated at 0.5, no preference; give rates with --rates") in res.output
    assert votes.is_file() and "wrote" in res.output
    # given rates, or the paper's own comparisons: no note
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--rates", "0.6", "--raters", "2",
                              "--out", str(tmp_path / "v2.csv")])
    assert res.exit_code == 0 and "published rate" not in res.output
    res = runner.invoke(app, ["simulate-votes", "--raters", "2", "--out", str(tmp_path / "v3.csv")])
    assert res.exit_code == 0 and "published rate" not in res.output
    # the paper's design with a comparison added that the paper did not publish
    paper_plus = tmp_path / "plus.yaml"
    paper_plus.write_text("primary: 4dfy\ncomparisons: [mav3d, my_plugin, wo_3d]\n")
    res = runner.invoke(app, ["simulate-votes", "--design", str(paper_plus), "--raters", "2",
                              "--out", str(tmp_path / "v4.csv")])
    assert res.exit_code == 0 and "note: no published rate for my_plugin (" in res.output
    # another primary against MAV3D: 4D-fy's published rate against MAV3D is not its rate
    other = tmp_path / "other.yaml"
    other.write_text("primary: wo_3d\ncomparisons: [mav3d]\n")
    res = runner.invoke(app, ["simulate-votes", "--design", str(other), "--raters", "40", "--seed", "1",
                              "--out", str(tmp_path / "v5.csv")])
    assert res.exit_code == 0 and "note: no published rate for mav3d (" in res.output
    votes5 = pd.read_csv(tmp_path / "v5.csv")
    main = votes5[~votes5.is_attention_check.astype(str).str.lower().isin(["true", "1"]) & (votes5.choice != "none")]
    chose = (main.choice == "left") == (main.method_left == "wo_3d")
    assert abs(chose.mean() - 0.5) < 0.05  # no preference, not 4D-fy's published 64-92% against MAV3D


def test_the_console_says_whose_share_the_percentages_are(own, tmp_path):
    design, votes, clip, _ = own
    res = _analyze(votes, design, clip, tmp_path / "res")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    head = [i for i, ln in enumerate(lines) if "preferring" in ln]
    assert len(head) == 1 and lines[head[0]].strip() == \
        "% of answered judgments preferring mymethod over each method [Wilson 95%]:"
    assert lines[head[0] + 1].split()[:2] == ["4dfy", "appearance"]  # the rows follow it


def test_a_registered_method_label_reaches_the_tables(own, tmp_path, monkeypatch):
    design, votes, clip, _ = own
    monkeypatch.setitem(METHODS, "mymethod", Method("mymethod", "a plug-in", label="Ours (plug-in)"))
    res = _analyze(votes, design, clip, tmp_path / "res")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "res" / "comparisons.md").read_text()
    assert "| Ours (plug-in) | 31.0 |" in md and "Human preference for Ours (plug-in)." in md
    assert "| 4D-fy | — |" in md  # built-in 4dfy registers the paper's label
    assert "preferring Ours (plug-in) (mymethod) over each method" in res.output
    assert "## Preference for Ours (plug-in)" in (tmp_path / "res" / "report.md").read_text()
    # a label in the design wins over the registered one
    labelled = tmp_path / "labelled.yaml"
    labelled.write_text(OWN + "methods:\n  mymethod: {label: Mine}\n")
    res = _analyze(votes, labelled, clip, tmp_path / "res2")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "res2" / "comparisons.md").read_text()
    assert "| Mine | 31.0 |" in md and "Ours (plug-in)" not in md

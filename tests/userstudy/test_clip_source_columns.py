"""A clipscore.json of an earlier version records no sha256 of its tables, so nothing proves that the CSV beside it
is one of them: `load_clip_source` then checks that its columns fit one of clipscore's tables with scores
(`evaluation.clip.OUTPUT_COLUMNS`), as `analyze --clip` (clip.csv) and the pipeline's CLIP plot (summary.csv) read
it."""

import json

import matplotlib.axes
import pytest
from typer.testing import CliRunner

from evaluation.clip import META, OUTPUT_COLUMNS
from pipelines import stages
from pipelines.cli import app
from userstudy.tables import ClipError, load_clip_source

runner = CliRunner()
MODEL = "ViT-B-32 / openai (QuickGELU)"


def _folder(tmp_path, name, header, rows=("4dfy",), digests=False):
    """`name` with `header` (one row per method, every other cell 1; an empty file for "") beside a clipscore.json of MODEL, recording
    the sha256 of its table only with `digests` (an earlier version records none)."""
    from evaluation.clip import output_digest

    folder = tmp_path / "clip"
    folder.mkdir(parents=True, exist_ok=True)
    cols = header.split(",")
    body = "".join(",".join(m if c == "method" else "1" for c in cols) + "\n" for m in rows)
    (folder / name).write_text(header and header + "\n" + body, encoding="utf-8")
    meta = {"model": MODEL, "precision": "fp32"}
    if digests:
        meta["sha256"] = {name: output_digest(folder / name)}
    (folder / META).write_text(json.dumps(meta), encoding="utf-8")
    return folder / name


@pytest.mark.parametrize("name", ["clip.csv", "summary.csv", "per_prompt.csv"])
def test_each_scored_table_of_clipscore_and_an_earlier_subset_is_read(tmp_path, name):
    full = ",".join(OUTPUT_COLUMNS[name])
    assert load_clip_source(_folder(tmp_path, name, full)).model == MODEL
    # an earlier version's table has fewer columns (clip.csv without the counts, summary.csv without the diffs)
    assert load_clip_source(_folder(tmp_path, name, "method,clip")).model == MODEL


@pytest.mark.parametrize("header, problem", [
    ("method,slug,prompt,frame,score", "missing column(s) clip"),  # per_frame.csv: no clip column
    ("name,clip", "missing column(s) method"),
    ("", "missing column(s) method, clip"),
    ("method,clip,votes", "column(s) votes that none of its tables has"),
    ("method,clip,prompt_set,ci_low", "columns of more than one of its tables (none has all of method, clip, "
                                      "prompt_set, ci_low)"),
])
def test_a_table_that_fits_none_of_clipscores_is_one_line_naming_it(tmp_path, header, problem):
    path = _folder(tmp_path, "scores.csv", header)
    with pytest.raises(ClipError) as err:
        load_clip_source(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path} fits none of the tables of `fourdfy clipscore` (per_prompt.csv, summary.csv, "
                              f"clip.csv: method, clip and no column of another table): {problem}; clipscore.json "
                              "beside it, of an earlier clipscore that records no sha256 of its tables, need not "
                              "describe it:")
    assert message.endswith("or move clipscore.json away (the CLIP source is then not recorded)")


def test_recorded_digests_still_decide_and_no_record_is_not_recorded(tmp_path):
    # the same foreign table is accepted by its digest (clipscore's own check) ...
    path = _folder(tmp_path, "scores.csv", "method,clip,votes", digests=True)
    assert load_clip_source(path).model == MODEL
    # ... and with no clipscore.json there is nothing to describe it: not recorded, as before
    (path.parent / META).unlink()
    assert load_clip_source(path).model is None


def test_the_pipelines_plot_of_an_earlier_summary_keeps_its_label(tmp_path, monkeypatch):
    """stages.clip_axis_label reads the clipscore.json beside summary.csv: an earlier one still names its model."""
    summary = _folder(tmp_path, "summary.csv", "method,n_prompts,clip,ci_low,ci_high", rows=("4dfy", "mav3d"))
    labels = []
    original = matplotlib.axes.Axes.set_xlabel
    monkeypatch.setattr(matplotlib.axes.Axes, "set_xlabel",
                        lambda self, text, *a, **k: (labels.append(text), original(self, text, *a, **k))[1])
    stages.plot_clip(summary, tmp_path / "a.png")
    assert labels[0].splitlines()[1] == f"CLIP: {MODEL}, fp32."
    with pytest.raises(ClipError, match="missing column\\(s\\) clip;"):
        stages.clip_axis_label(_folder(tmp_path / "b", "summary.csv", "method,mean"))


def test_analyze_reads_an_earlier_clip_csv(tmp_path, mav3d_wo3d_votes):
    clip = _folder(tmp_path, "clip.csv", "method,clip,prompt_set", rows=("4dfy", "mav3d"))
    clip.write_text("method,clip,prompt_set\n4dfy,21.0,mav3d_28\nmav3d,30.5,mav3d_28\n", encoding="utf-8")
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(mav3d_wo3d_votes), "--clip", str(clip), "--out", str(out),
                              "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    assert f"CLIP: {MODEL}, fp32." in (out / "table2.md").read_text()

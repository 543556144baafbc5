"""`analyze --clip` takes only the clip.csv of `fourdfy clipscore` (one mean per method and prompt set). Its
summary.csv, per_prompt.csv and per_frame.csv sit beside it with the same clipscore.json (whose sha256 list covers
them too), and summary.csv's `method` and `clip` columns used to load as rows without a prompt_set: every section
then showed the mean over every prompt, the ablation section's 5-prompt mean and the ‡ marks of partial means lost."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from evaluation.clip import ScoreConfig, write_outputs
from pipelines.cli import app
from userstudy.tables import ClipError, load_clip
from userstudy_helpers import one_error_line

runner = CliRunner()
# a_panda_dancing is in both ablation_5 and mav3d_28, a_cat_singing only in mav3d_28 (scores: these plus the frame
# index 0 or 1): the two sections' 4D-fy means differ, and the mean over every prompt is the mav3d_28 one
SCORES = {"a_panda_dancing": 20.0, "a_cat_singing": 30.0}


@pytest.fixture(scope="module")
def votes(mav3d_wo3d_votes):
    return mav3d_wo3d_votes


@pytest.fixture
def clip_dir(tmp_path):
    """The --out folder of a clipscore run (its writer, without a model) over two frames of each prompt."""
    frames = pd.DataFrame([{"method": "4dfy", "slug": s, "prompt": s.replace("_", " "), "frame": k, "score": c + k}
                           for s, c in SCORES.items() for k in (0, 1)])
    folder = tmp_path / "clip"
    write_outputs(folder, frames, ScoreConfig(n_resamples=50), "ViT-B-32 / openai (QuickGELU)")
    return folder


def analyze(votes, clip, out):
    return runner.invoke(app, ["analyze", "--votes", str(votes), "--clip", str(clip), "--out", str(out),
                               "--n-boot", "100"])


def four_d_fy_rows(table_md: str) -> list[str]:
    return [line.split("|")[2].strip() for line in table_md.splitlines() if line.startswith("| 4D-fy |")]


def test_clip_csv_gives_each_section_its_prompt_sets_mean(votes, clip_dir, tmp_path):
    out = tmp_path / "res"
    res = analyze(votes, clip_dir / "clip.csv", out)
    assert res.exit_code == 0, res.output
    # mav3d_28: 2 of 28 prompts, mean of 20.5 and 30.5; ablation_5: 1 of 5 (a_panda_dancing), 20.5
    assert four_d_fy_rows((out / "table2.md").read_text()) == ["25.5‡", "20.5‡"]


@pytest.mark.parametrize(("table", "what"), [
    ("summary.csv", "means over every prompt, not per prompt set"),
    ("per_prompt.csv", "one score per prompt, not a mean per prompt set"),
    ("per_frame.csv", "one score per video frame, not a mean per prompt set"),
])
def test_the_other_clipscore_tables_are_refused(votes, clip_dir, tmp_path, table, what):
    out = tmp_path / "res"
    line = one_error_line(analyze(votes, clip_dir / table, out))
    assert line == (f"error: {clip_dir / table} is the {table} of `fourdfy clipscore` ({what}), not its clip.csv; "
                    "--clip takes the clip.csv of `fourdfy clipscore` (one mean per method and prompt set): pass "
                    f"{clip_dir / 'clip.csv'}")
    assert not out.exists()


def test_a_renamed_copy_is_known_by_its_columns(votes, clip_dir, tmp_path):
    """Alone in another folder, with no clip.csv beside it to point to."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    copy = elsewhere / "clip_scores.csv"
    shutil.copy(clip_dir / "summary.csv", copy)
    out = tmp_path / "res"
    line = one_error_line(analyze(votes, copy, out))
    assert line.startswith(f"error: {copy} is the summary.csv of `fourdfy clipscore` (means over every prompt")
    assert line.endswith("pass DIR/clip.csv, DIR being the --out of a `fourdfy clipscore` run")
    assert not out.exists()


def test_a_summary_csv_of_an_earlier_version_is_known(tmp_path):
    """Earlier versions wrote fewer columns: a subset of summary.csv's (and not of clip.csv's) still names it."""
    path = tmp_path / "summary.csv"
    path.write_text("method,n_prompts,clip,ci_low,ci_high\n4dfy,2,25.5,20.5,30.5\n")
    with pytest.raises(ClipError, match=r"is the summary\.csv of `fourdfy clipscore` \(means over every prompt"):
        load_clip(path)


def test_a_hand_written_file_with_columns_clip_csv_lacks_is_refused(tmp_path):
    path = tmp_path / "clip.csv"
    path.write_text("method,clip,note\n4dfy,25.5,mean of two prompts\n")
    with pytest.raises(ClipError) as info:
        load_clip(path)
    assert str(info.value) == (f"{path}: column(s) note that clip.csv does not have (clip.csv's columns: "
                               "method,clip,prompt_set,n_prompts,n_set; method and clip required); --clip takes the "
                               "clip.csv of `fourdfy clipscore` (one mean per method and prompt set): pass "
                               "DIR/clip.csv, DIR being the --out of a `fourdfy clipscore` run")


@pytest.mark.parametrize("header", ["method,clip", "method,clip,prompt_set", "method,clip,prompt_set,n_prompts,n_set",
                                    "method,clip,n_prompts,n_set"])
def test_hand_written_files_with_clip_csvs_columns_still_load(tmp_path, header):
    path = tmp_path / "clip.csv"
    values = {"prompt_set": "mav3d_28", "n_prompts": "2", "n_set": "28"}
    path.write_text(header + "\n" + ",".join(["4dfy", "25.5"] + [values[c] for c in header.split(",")[2:]]) + "\n")
    (score,) = load_clip(path).values()
    assert score.value == 25.5

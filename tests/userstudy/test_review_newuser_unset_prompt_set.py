"""A design section without `prompt_set` shows the CLIP mean over the prompts its votes ask about (`survey build`'s
paired prompts), not the `all` row's mean over every prompt scored; `--clip` given clipscore.json or an image names
it; a design naming a near miss of a known method (`mav3dd`) is warned about in simulate-votes and analyze."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner
from userstudy_helpers import one_error_line

from evaluation.clip import ScoreConfig
from evaluation.clip import write_outputs as write_clipscore
from pipelines.cli import app
from userstudy.tables import ClipError, load_clip

runner = CliRunner()
PANDA, DOG = "a_panda_dancing", "a_dog_riding_a_skateboard"
SHORT = "primary: 4dfy\ncomparisons: [mav3d]\n"


def _artifacts(root, pairs):
    """Artifact folders as `survey build` and `simulate-votes --artifacts` find them (by folder names)."""
    for method, slug in pairs:
        (root / method / slug).mkdir(parents=True)
    return root


def _clipscore(folder, scores):
    """A clipscore --out folder as the command writes it (clip.csv, per_prompt.csv, clipscore.json), from
    {method: {slug: frame scores}}."""
    rows = [{"method": m, "slug": slug, "prompt": slug.replace("_", " "), "frame": i, "score": v}
            for m, by_slug in scores.items() for slug, frames in by_slug.items() for i, v in enumerate(frames)]
    write_clipscore(folder, pd.DataFrame(rows), ScoreConfig(n_resamples=200), model="test-model", precision="fp32",
                    random_weights=False)
    return folder / "clip.csv"


def _study(tmp_path, pairs, design=SHORT):
    """The reviewer's steps: a short design, votes simulated on the survey's prompts (`--artifacts`)."""
    (tmp_path / "short.yaml").write_text(design)
    arts = _artifacts(tmp_path / "arts", pairs)
    votes = tmp_path / "vs.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(tmp_path / "short.yaml"), "--artifacts", str(arts),
                              "--raters", "4", "--out", str(votes)])
    assert res.exit_code == 0, res.output
    return tmp_path / "short.yaml", votes


def _analyze(design, votes, clip, out):
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(design), "--clip", str(clip),
                              "--out", str(out), "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    return res, (out / "comparisons.md").read_text(), (out / "report.md").read_text()


SCORES = {"4dfy": {PANDA: [25.0, 26.0]}, "mav3d": {PANDA: [19.3, 19.4], DOG: [0.0, 0.1]}}
"""MAV3D scored on the panda (19.35) and the dog (0.05): its `all` mean is 9.7, though raters saw only the panda."""


def test_the_mean_over_the_prompts_the_votes_ask_about_not_over_every_prompt_scored(tmp_path):
    design, votes = _study(tmp_path, [("4dfy", PANDA), ("mav3d", PANDA), ("mav3d", DOG)])
    assert set(pd.read_csv(votes)["prompt_id"]) == {PANDA}  # the paired prompt only
    clip = _clipscore(tmp_path / "clip", SCORES)
    assert "mav3d,9.7,all,2,2" in clip.read_text()  # what the table showed before
    res, md, report = _analyze(design, votes, clip, tmp_path / "t")
    assert "| MAV3D | 19.4 |" in md and "9.7" not in md  # the panda's mean, unmarked: every asked prompt scored
    assert "| 4D-fy | 25.5 |" in md and "‡" not in md
    assert "| comparisons | - | MAV3D | 19.35 | 1 | 1 | no |" in report
    assert "| comparisons | - | 4D-fy | 25.50 | 1 | 1 | no |" in report
    assert "the prompts the votes ask about" in report
    table = pd.read_csv(tmp_path / "t" / "comparisons.csv").set_index("method")
    assert table.loc["mav3d", "clip"] == pytest.approx(19.35)
    assert (table.loc["mav3d", "clip_n_prompts"], table.loc["mav3d", "clip_n_set"]) == (1, 1)
    assert "‡" not in res.stdout


def test_the_primary_row_averages_the_sections_asked_prompts_and_is_marked_when_part_was_scored(tmp_path):
    design, votes = _study(tmp_path, [("4dfy", PANDA), ("4dfy", DOG), ("mav3d", PANDA), ("mav3d", DOG)])
    assert set(pd.read_csv(votes)["prompt_id"]) == {PANDA, DOG}
    clip = _clipscore(tmp_path / "clip", SCORES)  # 4dfy scored on the panda only
    res, md, report = _analyze(design, votes, clip, tmp_path / "t")
    assert "| 4D-fy | 25.5‡ |" in md and "4D-fy: 1 of 2" in md
    assert "| MAV3D | 9.7 |" in md  # both asked prompts scored: their mean, unmarked
    assert "| comparisons | - | 4D-fy | 25.50 | 1 | 2 | yes |" in report
    assert "4dfy (all, asked in comparisons: 1 of 2)" in res.stdout


def test_without_the_runs_per_prompt_scores_a_mean_over_more_prompts_than_asked_is_not_shown(tmp_path):
    design, votes = _study(tmp_path, [("4dfy", PANDA), ("mav3d", PANDA), ("mav3d", DOG)])
    clip = _clipscore(tmp_path / "clip", SCORES)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(clip, alone / "clip.csv")  # no per_prompt.csv beside it: only the `all` means
    res, md, report = _analyze(design, votes, alone / "clip.csv", tmp_path / "t")
    assert "| MAV3D | — |" in md and "9.7" not in md
    assert "MAV3D (all): 2 prompts, 1 asked" in md and "MAV3D (all): 2 prompts, 1 asked" in report
    assert "| 4D-fy | 25.5 |" in md  # over 1 prompt, 1 asked: shown as clip.csv's values are
    assert "mav3d (all: clip.csv's mean is over 2 prompts, the votes ask about 1)" in " ".join(res.stderr.split())


def test_a_method_scored_on_none_of_the_asked_prompts_shows_no_value(tmp_path):
    design, votes = _study(tmp_path, [("4dfy", PANDA), ("mav3d", PANDA), ("mav3d", DOG)])
    clip = _clipscore(tmp_path / "clip", {"4dfy": {PANDA: [25.0]}, "mav3d": {DOG: [0.0, 0.1]}})
    res, md, _ = _analyze(design, votes, clip, tmp_path / "t")
    assert "| MAV3D | — |" in md and "MAV3D (all): none of the 1 asked prompts scored" in md
    assert "scores none of the 1 prompts the votes ask for them" in " ".join(res.stderr.split())


@pytest.mark.parametrize("name", ["clipscore.json", "record.txt", "plot.png"])
def test_clipscore_json_or_an_image_given_as_clip_is_named_with_the_file_to_pass(tmp_path, name):
    clip = _clipscore(tmp_path / "clip", SCORES)
    path = tmp_path / "clip" / name
    if name == "record.txt":  # clipscore.json renamed: told by its leading {
        path.write_text((tmp_path / "clip" / "clipscore.json").read_text())
    elif name == "plot.png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    with pytest.raises(ClipError) as err:
        load_clip(path)
    message = str(err.value)
    assert "tokenizing" not in message and "codec" not in message
    assert message.endswith(f"pass {clip}")
    said = {"clipscore.json": "is the clipscore.json of `fourdfy clipscore`",
            "record.txt": "is JSON (it starts with {)", "plot.png": "is a binary file"}
    assert said[name] in message
    (tmp_path / "d.yaml").write_text(SHORT)
    votes = tmp_path / "v.csv"
    assert runner.invoke(app, ["simulate-votes", "--design", str(tmp_path / "d.yaml"), "--raters", "2",
                               "--out", str(votes)]).exit_code == 0
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(tmp_path / "d.yaml"), "--clip",
                              str(path), "--out", str(tmp_path / "t"), "--n-boot", "100"])
    assert one_error_line(res) == f"error: {message}"


TYPO = "warning: {design} names method 'mav3dd', which is no registered method (`fourdfy methods` lists them)"


def test_a_near_miss_of_a_known_method_in_a_design_is_warned_about(tmp_path):
    (tmp_path / "typo.yaml").write_text("primary: 4dfy\ncomparisons: [mav3dd]\n")
    arts = _artifacts(tmp_path / "arts", [("4dfy", PANDA), ("mav3d", PANDA)])
    votes = tmp_path / "v.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(tmp_path / "typo.yaml"), "--raters", "2",
                              "--out", str(votes)])
    assert res.exit_code == 0, res.output
    warned = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warned) == 1 and warned[0].startswith(TYPO.format(design="typo.yaml"))
    assert warned[0].endswith("did you mean 'mav3d'? (a new method's name is fine)")
    # with the survey's artifacts, whose mav3d videos the typo leaves out (the command then fails on them)
    res = runner.invoke(app, ["simulate-votes", "--design", str(tmp_path / "typo.yaml"), "--artifacts", str(arts),
                              "--out", str(tmp_path / "v2.csv")])
    assert "no method of the --artifacts; did you mean 'mav3d'?" in res.stderr
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--design", str(tmp_path / "typo.yaml"),
                              "--clip", str(_clipscore(tmp_path / "clip", SCORES)), "--out", str(tmp_path / "t"),
                              "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    warned = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warned) == 1 and "no method of clip.csv; did you mean 'mav3d'?" in warned[0]


def test_a_new_methods_name_far_from_any_or_among_the_artifacts_is_not_warned_about(tmp_path):
    (tmp_path / "own.yaml").write_text("primary: 4dfy\ncomparisons: [my_baseline, mav3d2]\n")
    arts = _artifacts(tmp_path / "arts", [("4dfy", PANDA), ("my_baseline", PANDA), ("mav3d2", PANDA)])
    res = runner.invoke(app, ["simulate-votes", "--design", str(tmp_path / "own.yaml"), "--artifacts", str(arts),
                              "--raters", "2", "--out", str(tmp_path / "v.csv")])
    assert res.exit_code == 0, res.output
    assert "warning:" not in res.stderr  # mav3d2 is close to mav3d, but the artifacts have it: a method of its own
    res = runner.invoke(app, ["simulate-votes", "--design", str(tmp_path / "own.yaml"), "--raters", "2",
                              "--out", str(tmp_path / "v2.csv")])
    warned = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warned) == 1 and "'mav3d2'" in warned[0]  # without them only the near miss is named

"""A section asking the first `n_prompts` of its set shows the CLIP mean over those prompts, taken from the
per_prompt.csv that the same `fourdfy clipscore` run wrote beside clip.csv; without one (a clip.csv copied alone, or
a per_prompt.csv of another run), the cell stays "—" as before."""

import copy
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from evaluation.clip import ScoreConfig
from evaluation.clip import write_outputs as write_clipscore
from pipelines.cli import app
from prompts import library
from userstudy.design import design_from_dict
from userstudy.tables import ClipScore, load_clip, with_asked_means

runner = CliRunner()
DESIGN17 = {"primary": "4dfy", "methods": {"4dfy": {"label": "4D-fy"}, "mav3d": {"label": "MAV3D"}},
            "tables": {"v1": {"caption": "arXiv v1", "sections": [
                {"heading": "", "prompt_set": "mav3d_28", "n_prompts": 17, "rows": ["mav3d", "4dfy"]}]}}}
SLUGS = list(library()["mav3d_28"])


def _clipscore_run(folder, scores: dict[str, dict[str, list[float]]]):
    """A clipscore --out folder as the command writes it, from {method: {slug: frame scores}}."""
    rows = [{"method": m, "slug": slug, "prompt": slug.replace("_", " "), "frame": i, "score": v}
            for m, by_slug in scores.items() for slug, frames in by_slug.items() for i, v in enumerate(frames)]
    write_clipscore(folder, pd.DataFrame(rows), ScoreConfig(n_resamples=200), model="test-model", precision="fp32",
                    random_weights=False)
    return folder / "clip.csv"


@pytest.fixture(scope="module")
def votes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("votes")
    design = tmp / "d17.yaml"
    design.write_text(yaml.safe_dump(DESIGN17))
    votes = tmp / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--design", str(design), "--raters", "3", "--out", str(votes)])
    assert res.exit_code == 0, res.output
    return design, votes


def _frame_scores(rng, n_slugs):
    return {slug: list(rng.uniform(20, 35, size=3)) for slug in SLUGS[:n_slugs]}


def _analyze(votes, clip, out):
    design, path = votes
    res = runner.invoke(app, ["analyze", "--votes", str(path), "--design", str(design), "--clip", str(clip),
                              "--out", str(out), "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    return res


def test_the_asked_prompts_mean_comes_from_the_runs_per_prompt_scores(tmp_path, votes):
    rng = np.random.default_rng(0)
    scores = {"4dfy": _frame_scores(rng, 28), "mav3d": _frame_scores(rng, 28)}
    del scores["mav3d"][SLUGS[3]], scores["mav3d"][SLUGS[9]]  # mav3d: 15 of the 17 asked prompts scored
    clip = _clipscore_run(tmp_path / "clip", scores)
    res = _analyze(votes, clip, tmp_path / "out")
    # an independent mean: frames, then the asked prompts
    expect = {m: np.mean([np.mean(s[slug]) for slug in SLUGS[:17] if slug in s]) for m, s in scores.items()}
    whole = {m: np.mean([np.mean(v) for v in s.values()]) for m, s in scores.items()}
    md = (tmp_path / "out" / "v1.md").read_text()
    assert f"| 4D-fy | {expect['4dfy']:.1f} |" in md  # all 17 asked: unmarked
    assert f"| MAV3D | {expect['mav3d']:.1f}‡ |" in md  # 15 of 17: marked as a mean over part of them
    assert "MAV3D (mav3d_28): 15 of 17" in md and "not shown" not in md
    table = pd.read_csv(tmp_path / "out" / "v1.csv").set_index("method")
    assert table.loc["4dfy", "clip"] == pytest.approx(expect["4dfy"], abs=1e-3)  # CSVs keep 6 digits
    assert table.loc["mav3d", "clip"] == pytest.approx(expect["mav3d"], abs=1e-3)
    assert (table.loc["mav3d", "clip_n_prompts"], table.loc["mav3d", "clip_n_set"]) == (15, 17)
    assert abs(whole["4dfy"] - expect["4dfy"]) > 0.05  # the whole set's mean would have been another number
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"| v1 | mav3d_28 | 4D-fy | {expect['4dfy']:.2f} | 17 | 17 | no |" in report
    assert "no CLIP value in the tables" not in res.stderr


def test_without_the_runs_per_prompt_csv_the_cell_stays_empty(tmp_path, votes):
    rng = np.random.default_rng(1)
    clip = _clipscore_run(tmp_path / "clip", {"4dfy": _frame_scores(rng, 28), "mav3d": _frame_scores(rng, 28)})
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(clip, alone / "clip.csv")  # copied alone: no per_prompt.csv, no clipscore.json
    edited = tmp_path / "edited"
    shutil.copytree(clip.parent, edited)  # per_prompt.csv changed after the run: not the scores of clip.csv
    pp = pd.read_csv(edited / "per_prompt.csv")
    pp.loc[0, "clip"] += 1.0
    pp.to_csv(edited / "per_prompt.csv", index=False)
    for folder in (alone, edited):
        res = _analyze(votes, folder / "clip.csv", tmp_path / f"out_{folder.name}")
        md = (tmp_path / f"out_{folder.name}" / "v1.md").read_text()
        assert "| MAV3D | — |" in md and "| 4D-fy | — |" in md
        assert "MAV3D (mav3d_28): 28 prompts, 17 asked" in md
        assert "no per_prompt.csv of the same `fourdfy clipscore` run is beside it" in " ".join(res.stderr.split())


def test_a_method_scored_on_none_of_the_asked_prompts_gets_no_value(tmp_path, votes):
    rng = np.random.default_rng(2)
    late = {slug: [25.0, 26.0] for slug in SLUGS[17:]}  # mav3d only on prompts 18-28, none of those asked
    clip = _clipscore_run(tmp_path / "clip", {"4dfy": _frame_scores(rng, 28), "mav3d": late})
    res = _analyze(votes, clip, tmp_path / "out")
    md = (tmp_path / "out" / "v1.md").read_text()
    assert "| MAV3D | — |" in md and "MAV3D (mav3d_28): none of the 17 asked prompts scored" in md and "11 of 28" not in md
    assert "| 4D-fy | — |" not in md
    assert "per_prompt.csv beside clip.csv scores none of the first 17 prompts the section asks for them" in " ".join(res.stderr.split())


def test_sections_asking_every_prompt_are_left_as_they_were(tmp_path, paper_design):
    rng = np.random.default_rng(3)
    clip = _clipscore_run(tmp_path / "clip", {"4dfy": _frame_scores(rng, 28), "mav3d": _frame_scores(rng, 28)})
    values = load_clip(clip)
    same, used = with_asked_means(values, clip, paper_design)
    assert same is values and used is None  # nothing over-asked: per_prompt.csv is not even read
    d17 = design_from_dict(copy.deepcopy(DESIGN17))
    more, used = with_asked_means(values, clip, d17)
    assert used == clip.parent / "per_prompt.csv"
    assert set(more) - set(values) == {("4dfy", "mav3d_28, first 17"), ("mav3d", "mav3d_28, first 17")}
    assert all(isinstance(v, ClipScore) and (v.n_prompts, v.n_set) == (17, 17) for k, v in more.items()
               if k not in values)


def test_a_linked_clip_csv_finds_the_per_prompt_scores_beside_its_target(tmp_path, votes):
    """As the model and precision are found beside the file a link points to, so are the per-prompt scores."""
    rng = np.random.default_rng(4)
    clip = _clipscore_run(tmp_path / "run", {"4dfy": _frame_scores(rng, 28), "mav3d": _frame_scores(rng, 28)})
    linked = tmp_path / "elsewhere" / "clip.csv"
    linked.parent.mkdir()
    linked.symlink_to(clip)
    _analyze(votes, clip, tmp_path / "direct")
    _analyze(votes, linked, tmp_path / "linked")
    direct = (tmp_path / "direct" / "v1.md").read_text()
    assert "| MAV3D | — |" not in direct
    assert (tmp_path / "linked" / "v1.md").read_text() == direct

"""clip.csv's `all` rows: per method, the mean over every prompt it was scored on, so that prompts outside
the `prompts` library (and designs without prompt_set) still get a CLIP value in `fourdfy analyze`."""

import numpy as np
import pandas as pd
import pytest

from evaluation.clip import ALL_PROMPTS, ScoreConfig, clip_table, write_outputs
from prompts import library
from userstudy import tables
from userstudy.tables import ClipScore, load_clip

# per-prompt CLIP by hand: 4dfy has three prompts (one of them outside every prompt file), mine two
PER_PROMPT = [("4dfy", "a_panda_dancing", 20.0), ("4dfy", "a_cat_singing", 30.0), ("4dfy", "my_own_prompt", 40.0),
              ("mine", "a_panda_dancing", 10.0), ("mine", "another_own_prompt", 14.0)]


def _per_prompt() -> pd.DataFrame:
    return pd.DataFrame([{"method": m, "slug": s, "prompt": s.replace("_", " "), "n_frames": 2, "clip": c}
                         for m, s, c in PER_PROMPT])


def test_all_row_is_the_mean_over_every_prompt_of_the_method():
    sets = {"two": ["a_panda_dancing", "a_cat_singing"]}
    t = clip_table(_per_prompt(), sets)
    rows = {(r.method, r.prompt_set): (r.clip, r.n_prompts, r.n_set) for r in t.itertuples()}
    # 4 distinct prompts were scored over both methods: a_panda_dancing, a_cat_singing and the two own ones
    assert rows[("4dfy", "all")] == (pytest.approx((20 + 30 + 40) / 3), 3, 4)
    assert rows[("mine", "all")] == (pytest.approx((10 + 14) / 2), 2, 4)
    # the prompt-set rows are as before: only the set's prompts
    assert rows[("4dfy", "two")] == (pytest.approx(25.0), 2, 2) and rows[("mine", "two")] == (10.0, 1, 2)
    assert len(t) == 4 and list(t["prompt_set"]) == ["two", "two", "all", "all"]


def test_a_prompt_file_named_all_keeps_its_name():
    """Two rows (method, all) would make clip.csv unreadable; the file's rows win (a design naming it means it)."""
    t = clip_table(_per_prompt(), {"all": ["a_panda_dancing"]})
    assert list(zip(t.method, t.prompt_set, t.n_prompts, t.n_set)) == [("4dfy", "all", 1, 1), ("mine", "all", 1, 1)]


def test_clipscore_outputs_have_all_rows_that_analyze_reads(tmp_path):
    """write_outputs (what `fourdfy clipscore` calls) with the real prompt library: the `all` rows are in
    clip.csv and `load_clip` takes them (no duplicate key)."""
    frames = pd.DataFrame([{"method": m, "slug": s, "prompt": s.replace("_", " "), "frame": k, "score": c + k}
                           for m, s, c in PER_PROMPT for k in (0, 1)])  # per-prompt means are c + 0.5
    paths = write_outputs(tmp_path / "clip", frames, ScoreConfig(n_resamples=50), model="tiny")
    table = pd.read_csv(paths["clip.csv"], keep_default_na=False)
    assert "all" not in library()  # else the union rows would give way to the file's
    every = table[table.prompt_set == "all"].set_index("method")
    assert every.loc["4dfy", "clip"] == pytest.approx(30.5) and every.loc["4dfy", "n_prompts"] == 3
    assert every.loc["mine", "clip"] == pytest.approx(12.5) and (every["n_set"] == 4).all()
    # the library rows stay: a_panda_dancing and a_cat_singing are MAV3D prompts, the own prompts in no file
    mav = table[table.prompt_set == "mav3d_28"].set_index("method")
    assert mav.loc["4dfy", "clip"] == pytest.approx(25.5) and mav.loc["4dfy", "n_prompts"] == 2
    assert set(table.prompt_set) == {"all", *library()}
    clip = load_clip(paths["clip.csv"])
    assert tables.ALL_PROMPTS == ALL_PROMPTS  # the name analyze looks up for a section without prompt_set
    assert clip[("mine", "all")] == ClipScore(pytest.approx(12.5), 2, 4) and clip[("mine", "all")].partial


def test_clipscore_json_records_the_model_and_analyze_names_it(tmp_path, tiny_clip, monkeypatch):
    """clipscore.json says whether the model has random weights (the tiny CLIP's description, as load_clip gives
    it), and `fourdfy analyze --clip` reads it from beside clip.csv: a banner in the tables for the tiny model."""
    import json

    from typer.testing import CliRunner

    from evaluation.clip_models import TINY_CLIP_ID, ClipConfig
    from evaluation.clip_models import load_clip as load_model
    from pipelines.cli import app

    assert tables.TINY_CLIP_ID == TINY_CLIP_ID  # analyze's fallback for clipscore.json files without the flag
    monkeypatch.setenv("FOURDFY_CACHE", str(tiny_clip.parent.parent))  # the session's tiny model
    tiny = load_model(ClipConfig(model=TINY_CLIP_ID, device="cpu"))
    frames = pd.DataFrame([{"method": m, "slug": s, "prompt": s.replace("_", " "), "frame": k, "score": c + k}
                           for m, s, c in PER_PROMPT for k in (0, 1)])
    write_outputs(tmp_path / "tiny", frames, ScoreConfig(n_resamples=50), tiny.description, tiny.precision)
    meta = json.loads((tmp_path / "tiny" / "clipscore.json").read_text())
    assert meta["random_weights"] is True and meta["model"] == tiny.description
    write_outputs(tmp_path / "vit", frames, ScoreConfig(n_resamples=50), "ViT-B-32 / openai (QuickGELU)")
    assert json.loads((tmp_path / "vit" / "clipscore.json").read_text())["random_weights"] is False
    # a caller that knows better (a tiny model loaded from its folder is described by the folder's name)
    write_outputs(tmp_path / "dir", frames, ScoreConfig(n_resamples=50), "seed0 (QuickGELU)", random_weights=True)
    assert json.loads((tmp_path / "dir" / "clipscore.json").read_text())["random_weights"] is True

    runner = CliRunner()
    votes = tmp_path / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--out", str(votes), "--raters", "3", "--comparisons", "mav3d",
                              "--seed", "2"])
    assert res.exit_code == 0, res.output
    for name, banner in (("tiny", True), ("vit", False)):
        out = tmp_path / f"tables-{name}"
        res = runner.invoke(app, ["analyze", "--votes", str(votes), "--clip", str(tmp_path / name / "clip.csv"),
                                  "--out", str(out), "--n-boot", "100"])
        assert res.exit_code == 0, res.output
        md = (out / "table2.md").read_text()
        model = json.loads((tmp_path / name / "clipscore.json").read_text())["model"]
        assert ("RANDOM-WEIGHT TINY CLIP" in md) == banner and f"CLIP: {model}, fp32." in md
        assert ("RANDOM-WEIGHT TINY CLIP" in (out / "report.md").read_text()) == banner


def test_the_tiny_model_given_by_its_folder_is_recorded_as_random_weights(tmp_path, tiny_clip):
    """By path, the tiny CLIP is described by its folder's name ("seed0 (QuickGELU)"): load_clip recognises it by
    its architecture and clipscore records the flag that makes analyze flag the tables."""
    import json

    from typer.testing import CliRunner

    from evaluation.artifacts import write_artifact
    from evaluation.clip_models import ClipConfig
    from evaluation.clip_models import load_clip as load_model
    from pipelines.cli import app

    assert load_model(ClipConfig(model=str(tiny_clip), device="cpu")).random_weights
    from evaluation.clip_models import _is_tiny

    other = tmp_path / "other"
    other.mkdir()
    config = json.loads((tiny_clip / "open_clip_config.json").read_text())
    config["model_cfg"]["embed_dim"] = 512  # another architecture: real weights as far as the check can tell
    (other / "open_clip_config.json").write_text(json.dumps(config))
    assert _is_tiny(tiny_clip) and not _is_tiny(other) and not _is_tiny(None)
    src = {"kind": "import", "file": "x.mp4", "sha256": "0"}
    rng = np.random.default_rng(0)
    write_artifact(tmp_path / "art", "4dfy", "A panda dancing.", rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8),
                   source=src, trajectory="orbit", fps=15)
    res = CliRunner().invoke(app, ["clipscore", str(tmp_path / "art"), "--clip-model", str(tiny_clip), "--out",
                                   str(tmp_path / "clip"), "--device", "cpu", "--no-progress", "--resamples", "50"])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "clip" / "clipscore.json").read_text())
    assert meta["random_weights"] is True and not meta["model"].startswith("fourdfy-tiny")

"""reports/clip_scores.png names the CLIP model that scored (the one clipscore.json records beside summary.csv), not
always the paper's ViT-B/32: a random-weight model is flagged, and a summary without a record names no model."""

import json

import matplotlib.axes
import pandas as pd
import pytest

from evaluation.clip import META, output_digest
from pipelines import stages

OPENAI = "ViT-B-32 / openai (QuickGELU)"


def _clip_folder(tmp_path, model=None, precision="fp32", random_weights=False, scores=(30.0, 29.0),
                 methods=("4dfy", "wo_hybrid")):
    """summary.csv and clip.csv as clipscore writes them, with a clipscore.json recording `model` (none if None)."""
    folder = tmp_path / "clip"
    folder.mkdir(parents=True, exist_ok=True)
    methods = list(methods)
    pd.DataFrame({"method": methods, "clip": list(scores)}).to_csv(folder / "clip.csv", index=False)
    pd.DataFrame({"method": methods, "clip": list(scores), "ci_low": [scores[0] - 1, None],
                  "ci_high": [scores[0] + 1, None]}).to_csv(folder / "summary.csv", index=False)
    if model is not None:
        meta = {"model": model, "precision": precision, "random_weights": random_weights, "score": "...",
                "sha256": {n: output_digest(folder / n) for n in ("summary.csv", "clip.csv")}}
        (folder / META).write_text(json.dumps(meta))
    return folder / "summary.csv"


@pytest.fixture()
def xlabels(monkeypatch):
    """Every x-axis label a plot sets."""
    seen = []
    original = matplotlib.axes.Axes.set_xlabel
    monkeypatch.setattr(matplotlib.axes.Axes, "set_xlabel",
                        lambda self, text, *a, **k: (seen.append(text), original(self, text, *a, **k))[1])
    return seen


def test_the_axis_names_the_recorded_model_and_precision(tmp_path, xlabels):
    summary = _clip_folder(tmp_path, OPENAI)
    stages.plot_clip(summary, tmp_path / "a.png")
    (label,) = xlabels
    assert label.splitlines() == ["CLIP score (100 x cosine), 95% bootstrap interval over prompts",
                                  f"CLIP: {OPENAI}, fp32."]


def test_another_model_is_named_not_vit_b32(tmp_path, xlabels):
    summary = _clip_folder(tmp_path, "hf-hub:laion/CLIP-ViT-L-14-laion2B-s32B-b82K (GELU), bf16 image tower",
                           precision="bf16")
    stages.plot_clip(summary, tmp_path / "a.png")
    label = " ".join(xlabels[0].split())  # wrapped over lines
    assert "CLIP: hf-hub:laion/CLIP-ViT-L-14-laion2B-s32B-b82K (GELU), bf16 image tower (not to be compared " \
           "with fp32 scores)." in label
    assert "ViT-B/32" not in label and "ViT-B-32" not in label
    first = xlabels[0].splitlines()[0]
    assert all(len(line) <= len(first) for line in xlabels[0].splitlines()[1:])  # no wider than the first line


@pytest.mark.parametrize("model", ["fourdfy-tiny:clip (QuickGELU)",
                                   "hf-hub:laion/CLIP-ViT-L-14-laion2B-s32B-b82K (GELU), bf16 image tower"])
def test_the_label_is_not_cut_at_the_figure_edge(tmp_path, model):
    """The wrapped label lies inside the image: the columns at its left and right edges are background only (a
    label cut by the edge leaves text pixels there; the tiny demo's random-weight line once did)."""
    import numpy as np
    from PIL import Image

    # long row names push the axes, under whose middle the label is centred, to the right (32 bytes: the longest)
    summary = _clip_folder(tmp_path, model, random_weights="tiny" in model, methods=("s" * 32, "4dfy_video03"))
    png = stages.plot_clip(summary, tmp_path / "a.png")
    pixels = np.asarray(Image.open(png).convert("L"))
    assert pixels[:, :2].min() == 255 and pixels[:, -2:].min() == 255


def test_random_weights_are_flagged(tmp_path, xlabels):
    summary = _clip_folder(tmp_path, "fourdfy-tiny:clip (QuickGELU)", random_weights=True)
    stages.plot_clip(summary, tmp_path / "a.png")
    label = " ".join(xlabels[0].split())
    assert "CLIP: fourdfy-tiny:clip (QuickGELU), fp32. RANDOM WEIGHTS: the scores are meaningless." in label


def test_without_a_record_no_model_is_named(tmp_path, xlabels):
    summary = _clip_folder(tmp_path)
    stages.plot_clip(summary, tmp_path / "a.png")
    label = " ".join(xlabels[0].split())
    assert "CLIP source not recorded" in label and "ViT" not in label and "RANDOM" not in label


def test_a_record_of_another_run_is_refused_not_plotted(tmp_path):
    summary = _clip_folder(tmp_path, OPENAI)
    _clip_folder(tmp_path, scores=(10.0, 9.0))  # new tables, the earlier clipscore.json kept (an interrupted run)
    with pytest.raises(ValueError, match="come from different `fourdfy clipscore` runs"):
        stages.plot_clip(summary, tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()


def test_the_plot_is_byte_reproducible_and_differs_by_model(tmp_path):
    one = stages.plot_clip(_clip_folder(tmp_path / "a", OPENAI), tmp_path / "one.png")
    again = stages.plot_clip(_clip_folder(tmp_path / "b", OPENAI), tmp_path / "again.png")
    tiny = stages.plot_clip(_clip_folder(tmp_path / "c", "fourdfy-tiny:clip (QuickGELU)", random_weights=True),
                            tmp_path / "tiny.png")
    assert one.read_bytes() == again.read_bytes()
    assert one.read_bytes() != tiny.read_bytes()


def test_the_summary_stage_labels_its_plot_and_refuses_a_mixed_clip_folder(tmp_path, xlabels):
    import yaml

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"seed": 0, "profile": "tiny",
                                      "generate": {"methods": ["4dfy", "wo_hybrid"], "prompts": ["a_panda_dancing"]},
                                      "study": {"design": "userstudy/designs/paper.yaml", "raters": 2},
                                      "overrides": {"4dfy": {}, "wo_hybrid": {}}}))
    design = stages.write_design(params, tmp_path / "design.yaml")
    summary = _clip_folder(tmp_path, "fourdfy-tiny:clip (QuickGELU)", random_weights=True)
    args = ["summary", "--params", str(params), "--design", str(design), "--artifacts", str(tmp_path / "none"),
            "--clip", str(summary.with_name("clip.csv")), "--votes", str(tmp_path / "votes.csv"),
            "--out", str(tmp_path / "reports" / "summary.md"), "--metrics", str(tmp_path / "pipeline.json")]
    stages.main(args)
    assert (tmp_path / "reports" / "clip_scores.png").is_file()
    assert "fourdfy-tiny:clip" in xlabels[0] and "RANDOM WEIGHTS" in xlabels[0]

    out = tmp_path / "mixed"
    _clip_folder(tmp_path, scores=(10.0, 9.0))  # tables of another run beside the record
    args[args.index("--out") + 1] = str(out / "summary.md")
    with pytest.raises(SystemExit) as exit_:
        stages.main(args)
    assert exit_.value.code == 2
    assert not out.exists()  # stopped before writing the summary

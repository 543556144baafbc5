"""The tables name the CLIP model and precision their CLIP column came from (the clipscore.json that
`fourdfy clipscore` writes beside clip.csv); the random-weight tiny CLIP gets a banner, like synthetic votes,
and a hand-written clip.csv without clipscore.json is still accepted, its source "not recorded"."""

import json

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
CLIP = ("method,clip,prompt_set,n_prompts,n_set\n"
        "4dfy,21.268,mav3d_28,28,28\nmav3d,30.5,mav3d_28,28,28\n4dfy,22.0,ablation_5,5,5\nwo_3d,20.9,ablation_5,5,5\n")
SCORE = "100 * max(cos(image, text), 0) per decoded frame; mean over frames, then over prompts"
BANNER = "RANDOM-WEIGHT TINY CLIP"


@pytest.fixture(scope="module")
def votes(mav3d_wo3d_votes):
    return mav3d_wo3d_votes


def clip_folder(tmp_path, meta: dict | None):
    """clip.csv and, unless meta is None, the clipscore.json clipscore writes beside it."""
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "clip.csv").write_text(CLIP)
    if meta is not None:
        meta = {**meta, "primary": "4dfy", "n_resamples": 10000, "confidence": 0.95, "seed": 0, "score": SCORE}
        (folder / "clipscore.json").write_text(json.dumps(meta, indent=2) + "\n")
    return folder / "clip.csv"


def analyze(votes, clip, out):
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--clip", str(clip), "--out", str(out),
                              "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    return res


def texts(out):
    return {name: (out / name).read_text() for name in ("table2.md", "table2.tex", "report.md")}


def test_the_tiny_clip_is_flagged_in_every_table_and_the_report(tmp_path, votes):
    # as clipscore wrote it before the random_weights key: the description starts with the tiny model's id
    clip = clip_folder(tmp_path, {"model": "fourdfy-tiny:clip (QuickGELU)", "precision": "fp32"})
    out = tmp_path / "res"
    res = analyze(votes, clip, out)
    t = texts(out)
    assert "> **RANDOM-WEIGHT TINY CLIP**: the CLIP scores are meaningless, for demos only." in t["table2.md"]
    assert "CLIP: fourdfy-tiny:clip (QuickGELU), fp32." in t["table2.md"]
    assert "> **RANDOM-WEIGHT TINY CLIP**" in t["report.md"].split("## Data")[0]  # at the top, like SYNTHETIC
    assert "CLIP: fourdfy-tiny:clip (QuickGELU), fp32." in t["report.md"].split("## CLIP")[1]
    assert r"\textbf{RANDOM-WEIGHT TINY CLIP: the CLIP scores are meaningless, for demos only.}" in t["table2.tex"]
    assert "CLIP: fourdfy-tiny:clip (QuickGELU), fp32." in t["table2.tex"]
    assert "RANDOM-WEIGHT TINY CLIP: the CLIP scores are meaningless, for demos only." in res.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["clip"] == {"model": "fourdfy-tiny:clip (QuickGELU)", "precision": "fp32", "random_weights": 1}


def test_the_recorded_flag_marks_a_tiny_model_of_any_name(tmp_path, votes):
    """clipscore records random_weights: a tiny model given by its folder is described by the folder's name."""
    clip = clip_folder(tmp_path, {"model": "seed0 (QuickGELU)", "precision": "fp32", "random_weights": True})
    out = tmp_path / "res"
    analyze(votes, clip, out)
    assert BANNER in texts(out)["table2.md"] and "CLIP: seed0 (QuickGELU), fp32." in texts(out)["table2.md"]


def test_a_real_fp32_model_is_named_without_a_banner(tmp_path, votes):
    clip = clip_folder(tmp_path, {"model": "ViT-B-32 / openai (QuickGELU)", "precision": "fp32",
                                  "random_weights": False})
    out = tmp_path / "res"
    res = analyze(votes, clip, out)
    for name, text in texts(out).items():
        assert "CLIP: ViT-B-32 / openai (QuickGELU), fp32." in text, name
        assert BANNER not in text, name
    assert "CLIP: ViT-B-32 / openai (QuickGELU), fp32." in res.stdout and BANNER not in res.output
    assert "| MAV3D | 30.5 |" in texts(out)["table2.md"]  # the values themselves are as before
    assert json.loads((out / "metrics.json").read_text())["clip"]["random_weights"] == 0


def test_a_bf16_score_is_named_as_such(tmp_path, votes):
    clip = clip_folder(tmp_path, {"model": "ViT-B-32 / openai (QuickGELU), bf16 image tower", "precision": "bf16",
                                  "random_weights": False})
    out = tmp_path / "res"
    analyze(votes, clip, out)
    note = "CLIP: ViT-B-32 / openai (QuickGELU), bf16 image tower (not to be compared with fp32 scores)."
    for name, text in texts(out).items():
        assert note in text and BANNER not in text, name
    assert json.loads((out / "metrics.json").read_text())["clip"]["precision"] == "bf16"


def test_a_hand_written_clip_file_says_its_source_is_not_recorded(tmp_path, votes):
    clip = clip_folder(tmp_path, None)
    out = tmp_path / "res"
    res = analyze(votes, clip, out)
    for name, text in texts(out).items():
        assert "CLIP source not recorded (no clipscore.json beside the CLIP file)." in text, name
        assert BANNER not in text, name
    assert "| MAV3D | 30.5 |" in texts(out)["table2.md"]
    assert "CLIP source not recorded" in res.stdout
    assert json.loads((out / "metrics.json").read_text())["clip"] == {"model": None, "precision": None,
                                                                       "random_weights": None}


def test_without_clip_the_tables_say_nothing_of_a_source(tmp_path, votes):
    out = tmp_path / "res"
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--out", str(out), "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    for name, text in texts(out).items():
        assert "CLIP source" not in text and "CLIP:" not in text, name
    assert "clip" not in json.loads((out / "metrics.json").read_text())


@pytest.mark.parametrize("content, reason", [
    ("{not json", "cannot be read as JSON"),
    ('{"precision": "fp32"}', "names no CLIP model"),
    ('["ViT-B-32"]', "names no CLIP model"),
])
def test_a_broken_clipscore_json_is_one_line_and_keeps_the_earlier_tables(tmp_path, votes, content, reason):
    out = tmp_path / "res"
    analyze(votes, clip_folder(tmp_path, None), out)  # an earlier analysis, to be kept
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (tmp_path / "clip" / "clipscore.json").write_text(content)
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--clip", str(tmp_path / "clip" / "clip.csv"),
                              "--out", str(out), "--n-boot", "100"])
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'clip' / 'clipscore.json'} (beside --clip)")
    assert reason in lines[0] and "move clipscore.json away" in lines[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_analyze_help_points_to_the_docs_that_hold_the_formats():
    import re
    from pathlib import Path

    import typer

    command = typer.main.get_command(app).commands["analyze"]
    helps = {p.name: p.help for p in command.params}
    assert "see README" not in helps["votes"]
    assert 'format: docs/userstudy.md, "Votes format"' in helps["votes"]
    doc = (Path(__file__).parents[2] / "docs" / "userstudy.md").read_text()
    assert re.search(r"^## Votes format$", doc, re.M)  # the section the help names
    assert "clipscore.json" in helps["clip"]
    res = runner.invoke(app, ["analyze", "--help"], env={"COLUMNS": "300"})
    assert res.exit_code == 0 and "docs/userstudy.md" in res.output and "README" not in res.output


def test_a_linked_clip_file_takes_the_clipscore_json_of_its_target(tmp_path, votes):
    clip = clip_folder(tmp_path, {"model": "ViT-B-32 / openai (QuickGELU)", "random_weights": False})
    link = tmp_path / "elsewhere" / "clip.csv"
    link.parent.mkdir()
    link.symlink_to(clip)
    out = tmp_path / "res"
    analyze(votes, link, out)
    # a clipscore.json without precision (none was recorded): said so, not guessed
    assert "CLIP: ViT-B-32 / openai (QuickGELU), precision not recorded." in texts(out)["table2.md"]

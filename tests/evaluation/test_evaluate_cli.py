"""`fourdfy render | import-videos | clipscore | validate-artifacts`, and Table 2's CLIP column end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from evaluation.video import encode_video
from pipelines.cli import app
from prompts import PROMPT_DIR, load_prompts

runner = CliRunner()


def test_commands_are_registered_and_light():
    res = runner.invoke(app, ["--help"])
    for name in ("render", "import-videos", "clipscore", "validate-artifacts"):
        assert name in res.output
    code = ("import sys, pipelines.commands.evaluate; "
            "print(sorted(m for m in ('torch', 'open_clip', 'av', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_render_command(fake_run, tmp_path, monkeypatch):
    import evaluation.render as render_mod

    torch.set_num_threads(1)
    out = tmp_path / "eval"
    args = ["render", str(fake_run), "--out", str(out), "--frames", "2", "--size", "8", "--device", "cpu",
            "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (out / "4dfy" / "a_panda_dancing" / "video.mp4").is_file()
    rendered = []
    monkeypatch.setattr(render_mod, "render_frames", lambda *a, **k: rendered.append(1) / 0)
    res = runner.invoke(app, args)  # exists: refused with one line, before any frame is rendered
    assert res.exit_code == 2 and rendered == []
    assert error_lines(res) == [f"error: {out / '4dfy' / 'a_panda_dancing'} already exists (pass --overwrite to "
                            "replace it)"]
    monkeypatch.undo()
    res = runner.invoke(app, ["validate-artifacts", str(out)])
    assert res.exit_code == 0 and res.output.startswith("ok ")
    res = runner.invoke(app, ["render", str(tmp_path / "nope"), "--out", str(out)])
    assert res.exit_code == 2 and error_lines(res) == [f"error: {tmp_path / 'nope'}: no such run folder"]
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["render", str(tmp_path / "empty"), "--out", str(out)])
    assert res.exit_code == 2 and error_lines(res) == [f"error: {tmp_path / 'empty'}: no manifest.json and no ckpt/: not "
                                                   "a run folder of `fourdfy generate` (a finished run holds both); "
                                                   "give a run folder, e.g. runs/x"]


def test_validate_artifacts_reports_every_artifact_like_folder(tmp_path):
    from evaluation.artifacts import write_artifact

    root = tmp_path / "eval"
    root.mkdir()
    res = runner.invoke(app, ["validate-artifacts", str(root)])  # empty: not a silent success
    nothing = [f"error: no artifacts under {root}; make them with `fourdfy render` or `fourdfy import-videos`"]
    assert res.exit_code == 2 and error_lines(res) == nothing and res.stdout == ""
    encode_video(root / "a_panda_dancing.mp4", make_frames(2, 16, 16))  # plain videos are no artifacts
    res = runner.invoke(app, ["validate-artifacts", str(root)])
    assert res.exit_code == 2 and error_lines(res) == nothing
    src = {"kind": "import", "file": "x", "sha256": "0"}
    write_artifact(root, "4dfy", "A cat singing.", make_frames(2, 16, 16), source=src, trajectory="orbit", fps=15)
    torn = write_artifact(root, "mav3d", "A cat singing.", make_frames(2, 16, 16), source=src, trajectory="orbit",
                          fps=15).folder
    (torn / "manifest.json").write_text("{half")
    loose = root / "wo_3d" / "a_cat_singing"
    loose.mkdir(parents=True)
    encode_video(loose / "video.mp4", make_frames(2, 16, 16))
    res = runner.invoke(app, ["validate-artifacts", str(root)])
    assert res.exit_code == 1, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == f"ok  {root / '4dfy' / 'a_cat_singing'}" and len(lines) == 3
    assert lines[1].startswith(f"BAD {torn}: manifest.json: not valid JSON")  # reported, and the check went on
    assert lines[2] == f"BAD {loose}: video.mp4 without manifest.json (not written by `fourdfy render` or " \
                       "`fourdfy import-videos`)"
    # a copy filed under another prompt's folder, and a cut video with another method's manifest: every folder
    # gets all its own problems, the duplicate's too, and neither copy is taken for the right one
    import shutil

    good = root / "4dfy" / "a_cat_singing"
    copy = root / "4dfy" / "a_dog_riding_a_skateboard"
    shutil.copytree(good, copy)
    cut = root / "single_grid" / "a_cat_singing"
    shutil.copytree(good, cut)
    (cut / "video.mp4").write_bytes((cut / "video.mp4").read_bytes()[:300])
    res = runner.invoke(app, ["validate-artifacts", str(root / "4dfy"), str(root / "single_grid")])
    assert res.exit_code == 1, res.output
    lines = {line.split(":")[0]: line for line in res.stdout.splitlines()}
    assert set(lines) == {f"BAD {good}", f"BAD {copy}", f"BAD {cut}"}
    assert "also the artifact in" in lines[f"BAD {good}"] and str(copy) in lines[f"BAD {good}"]
    assert "folder name 'a_dog_riding_a_skateboard' differs from the slug" in lines[f"BAD {copy}"]
    assert "parent folder 'single_grid' differs from the method '4dfy'" in lines[f"BAD {cut}"]
    assert "video.mp4" in lines[f"BAD {cut}"].split("parent folder")[1]  # its cut video, reported too


def test_clipscore_refuses_incomplete_folders(tmp_path, tiny_clip):
    from evaluation.artifacts import write_artifact

    root = tmp_path / "eval"
    write_artifact(root, "4dfy", "A cat singing.", make_frames(2, 16, 16),
                   source={"kind": "import", "file": "x", "sha256": "0"}, trajectory="orbit", fps=15)
    loose = root / "mav3d" / "a_cat_singing"
    loose.mkdir(parents=True)
    encode_video(loose / "video.mp4", make_frames(2, 16, 16))
    args = ["clipscore", str(root), "--out", str(tmp_path / "s"), "--clip-model", str(tiny_clip), "--resamples",
            "200", "--device", "cpu", "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    (line,) = error_lines(res)
    assert line.startswith("error: 1 artifact folder(s) that cannot be scored") and f"{loose}: video.mp4 without manifest" in line
    assert not (tmp_path / "s").exists()  # nothing written, not a score over the rest
    (loose / "video.mp4").unlink()
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output + res.stderr
    (tmp_path / "none").mkdir()
    res = runner.invoke(app, ["clipscore", str(tmp_path / "none"), "--out", str(tmp_path / "t")])
    assert res.exit_code == 2 and error_lines(res) == [f"error: no artifacts under {tmp_path / 'none'}; make them with "
                                                   "`fourdfy render` or `fourdfy import-videos`"]


def test_import_reports_and_exit_codes(tmp_path):
    src = tmp_path / "v"
    src.mkdir()
    encode_video(src / "Dog_riding_a_skateboard.mp4", make_frames(4, 16, 16))
    (src / "a_panda_dancing.mp4").write_bytes(b"\x00" * 100)
    encode_video(src / "holiday.mp4", make_frames(2, 16, 16))
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "o"),
                              "--prompts", str(PROMPT_DIR / "ablation_5.txt")])
    assert res.exit_code == 2
    assert "matched Dog_riding_a_skateboard.mp4 -> a_dog_riding_a_skateboard" in res.stdout
    assert "unmatched files (1): holiday.mp4" in res.stdout
    # the panda's file failed: named once, by its error line, not among the prompts no file was found for
    line = next(x for x in res.stdout.splitlines() if x.startswith("prompts without a video"))
    assert line.startswith("prompts without a video (3): ") and "a_panda_dancing" not in line
    assert error_lines(res) == ["error: a_panda_dancing.mp4: not a readable video (Invalid data found when processing "
                            "input)"]
    assert (tmp_path / "o" / "mav3d" / "a_dog_riding_a_skateboard" / "manifest.json").is_file()
    res = runner.invoke(app, ["import-videos", str(tmp_path / "none"), "--method", "m", "--out", str(tmp_path)])
    assert res.exit_code == 2 and error_lines(res) == [f"error: source folder {tmp_path / 'none'} not found"]
    # a video file given where its folder belongs is named as such, not as missing
    video = tmp_path / "o" / "mav3d" / "a_dog_riding_a_skateboard" / "video.mp4"
    res = runner.invoke(app, ["import-videos", str(video), "--method", "m", "--out", str(tmp_path / "p")])
    assert res.exit_code == 2 and error_lines(res) == [
        f"error: source folder {video} is a file, not a folder (give the folder that holds the videos)"]
    assert not (tmp_path / "p").exists()


def test_clipscore_offline_without_weights_is_one_clear_line(tmp_path, monkeypatch):
    import huggingface_hub.constants as hfc

    from evaluation.artifacts import write_artifact

    write_artifact(tmp_path / "a", "4dfy", "A cat singing.", make_frames(2, 16, 16),
                   source={"kind": "import", "file": "x", "sha256": "0"}, trajectory="orbit", fps=15)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    res = runner.invoke(app, ["clipscore", str(tmp_path / "a"), "--out", str(tmp_path / "s"), "--no-progress"])
    assert res.exit_code == 2
    (line,) = error_lines(res)
    assert line.startswith("error: CLIP score: the weights of model 'ViT-B-32', pretrained 'openai' were not found")
    assert "hf download timm/vit_base_patch32_clip_224.openai" in line
    res = runner.invoke(app, ["clipscore", str(tmp_path / "empty"), "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and "no such folder" in res.stderr
    res = runner.invoke(app, ["clipscore", str(tmp_path / "a" / "4dfy" / "a_cat_singing" / "video.mp4"),
                              "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and "video.mp4: a file, not a folder of artifacts" in res.stderr


@pytest.mark.slow
def test_table2_clip_column_end_to_end(tmp_path, tiny_clip):
    """videos -> import-videos -> clipscore -> clip.csv -> analyze --clip -> table2.csv CLIP column."""
    ablation = list(load_prompts(PROMPT_DIR / "ablation_5.txt"))
    for method, slugs, seed in (("4dfy", ablation[:3], 0), ("mav3d", ablation[:3], 40), ("wo_3d", ablation[:2], 80)):
        src = tmp_path / "src" / method
        src.mkdir(parents=True)
        for i, slug in enumerate(slugs):
            encode_video(src / f"{slug}.mp4", make_frames(3, 32, 32, seed=seed + 7 * i))
        res = runner.invoke(app, ["import-videos", str(src), "--method", method, "--out", str(tmp_path / "art")])
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["clipscore", str(tmp_path / "art"), "--out", str(tmp_path / "clip"), "--clip-model",
                              str(tiny_clip), "--resamples", "500", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output + res.stderr
    assert str(tiny_clip.parent) not in (tmp_path / "clip" / "clipscore.json").read_text()  # no absolute paths
    per_prompt = pd.read_csv(tmp_path / "clip" / "per_prompt.csv")
    clip = pd.read_csv(tmp_path / "clip" / "clip.csv", keep_default_na=False)
    mav = clip[(clip.method == "mav3d") & (clip.prompt_set == "mav3d_28")]
    assert mav["clip"].iloc[0] == pytest.approx(per_prompt[per_prompt.method == "mav3d"]["clip"].mean(), rel=1e-5)
    assert set(clip.prompt_set) == {"mav3d_28", "ablation_5", "all"}
    votes = tmp_path / "v.csv"
    res = runner.invoke(app, ["simulate-votes", "--rates", "paper", "--raters", "4", "--out", str(votes)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["analyze", "--votes", str(votes), "--clip", str(tmp_path / "clip" / "clip.csv"),
                              "--out", str(tmp_path / "rep"), "--n-boot", "200"])
    assert res.exit_code == 0, res.output + res.stderr
    table = pd.read_csv(tmp_path / "rep" / "table2.csv")
    expected = {(m, s): v for m, s, v in zip(clip.method, clip.prompt_set, clip["clip"])}
    sections = {0: "mav3d_28", 1: "ablation_5"}
    checked = 0
    for row in table.itertuples():
        key = (row.method, sections[row.section])
        if key in expected:
            assert row.clip == pytest.approx(expected[key], abs=0.051)  # the table may round to 0.1
            checked += 1
        else:
            assert pd.isna(row.clip)  # e.g. hexplane: no videos, no CLIP value
    assert checked == 4  # mav3d and 4dfy (MAV3D section); 4dfy and wo_3d (ablation section)
    md = (tmp_path / "rep" / "table2.md").read_text()
    assert f"{expected[('mav3d', 'mav3d_28')]:.1f}" in md


def test_import_of_a_folder_without_videos_is_an_error_unless_allowed(tmp_path):
    src = tmp_path / "empty"
    src.mkdir()
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "no video file in" in error_lines(res)[0]
    assert not (tmp_path / "o").exists()
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "o"),
                              "--allow-empty"])
    assert res.exit_code == 0 and "reported as missing" in res.stdout
    assert (tmp_path / "o" / "mav3d").is_dir() and not any((tmp_path / "o" / "mav3d").iterdir())


def test_clipscore_cache_and_precision_options(tmp_path, tiny_clip):
    src = tmp_path / "src"
    src.mkdir()
    for i, slug in enumerate(list(load_prompts(PROMPT_DIR / "ablation_5.txt"))[:2]):
        encode_video(src / f"{slug}.mp4", make_frames(3, 32, 32, seed=i))
    assert runner.invoke(app, ["import-videos", str(src), "--method", "4dfy", "--out", str(tmp_path / "art")]
                         ).exit_code == 0
    args = ["clipscore", str(tmp_path / "art"), "--clip-model", str(tiny_clip), "--resamples", "200", "--device",
            "cpu", "--no-progress", "--cache", str(tmp_path / "cache")]
    first = runner.invoke(app, args + ["--out", str(tmp_path / "a")])
    second = runner.invoke(app, args + ["--out", str(tmp_path / "b")])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "2 videos (0 from the cache)" in first.stdout and "2 videos (2 from the cache)" in second.stdout
    for name in ("per_frame.csv", "per_prompt.csv", "summary.csv", "clip.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    res = runner.invoke(app, args + ["--out", str(tmp_path / "c"), "--precision", "bf16"])
    assert res.exit_code == 0 and "(0 from the cache)" in res.stdout and "bf16" in res.stdout
    assert '"precision": "bf16"' in (tmp_path / "c" / "clipscore.json").read_text()
    res = runner.invoke(app, args + ["--out", str(tmp_path / "d"), "--precision", "fp16"])
    assert res.exit_code == 2 and "precision must be one of fp32, bf16" in res.stderr


def test_render_and_clipscore_show_no_bar_in_a_log_and_name_the_model_asked_for(fake_run, tmp_path, tiny_clip,
                                                                              monkeypatch):
    """Output not on a terminal (CliRunner's, a DVC or SLURM log): no progress bar, without --no-progress, but
    plain progress lines (every 30 s, and one at the end)."""
    from evaluation.clip_models import TINY_CLIP_ID

    torch.set_num_threads(1)
    res = runner.invoke(app, ["render", str(fake_run), "--out", str(tmp_path / "art"), "--frames", "2", "--size",
                              "8", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "frame/s" not in res.stderr and "\r" not in res.stderr
    assert [ln for ln in res.stderr.splitlines() if ln.startswith("render orbit: ")][-1].startswith(
        "render orbit: 2/2 frame(s), 0m")
    # fourdfy-tiny:clip resolves to the session's tiny model (its cache folder is `seed0`)
    monkeypatch.setenv("FOURDFY_CACHE", str(tiny_clip.parent.parent))
    args = ["clipscore", str(tmp_path / "art"), "--clip-model", TINY_CLIP_ID, "--resamples", "200", "--device", "cpu"]
    res = runner.invoke(app, args + ["--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output + res.stderr
    assert "video/s" not in res.stderr and "\r" not in res.stderr
    assert res.stderr.splitlines()[-1].startswith("clipscore: 1/1 video(s), 0m")
    assert res.stdout.splitlines()[0] == "CLIP score (fourdfy-tiny:clip (QuickGELU)), 1 videos:"
    # and the files record the same name, not the cache folder it resolves to
    assert json.loads((tmp_path / "c" / "clipscore.json").read_text())["model"] == "fourdfy-tiny:clip (QuickGELU)"
    res = runner.invoke(app, args + ["--out", str(tmp_path / "d"), "--precision", "bf16"])
    assert res.exit_code == 0, res.output + res.stderr
    assert res.stdout.splitlines()[0] == "CLIP score (fourdfy-tiny:clip (QuickGELU), bf16 image tower), 1 videos:"


def test_import_warns_about_a_method_name_close_to_a_known_one(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    encode_video(src / "a_panda_dancing.mp4", make_frames(2, 16, 16))
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3dd", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0 and "did you mean 'mav3d'?" in res.stderr
    assert (tmp_path / "o" / "mav3dd" / "a_panda_dancing" / "manifest.json").is_file()  # still imported
    for name in ("mav3d", "my_new_method"):  # a known name, and a new one far from all: no warning
        res = runner.invoke(app, ["import-videos", str(src), "--method", name, "--out", str(tmp_path / name)])
        assert res.exit_code == 0 and "warning" not in res.stderr


def test_import_warns_about_a_mapped_prompt_in_no_prompt_file(tmp_path):
    """A --map row whose prompt is in none of prompts/*.txt is imported as given (a prompt of one's own), with a
    warning naming it and, for a likely typo, the closest known prompt: no table row would ever meet it."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("x.mp4", "y.mp4", "z.mp4"):
        encode_video(src / name, make_frames(2, 16, 16))
    m = tmp_path / "map.csv"
    m.write_text("file,prompt\nx.mp4,a panda dncing\ny.mp4,a_panda_dancing\nz.mp4,My own prompt about a lighthouse.\n")
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "o"),
                              "--map", str(m)])
    assert res.exit_code == 0, res.output
    assert "warning: 2 mapped prompt(s) are in none of prompts/*.txt" in res.stderr
    assert "x.mp4: 'a panda dncing' (closest known prompt: 'A panda dancing.')" in res.stderr
    assert "z.mp4: 'My own prompt about a lighthouse.'\n" in res.stderr and "y.mp4" not in res.stderr
    assert (tmp_path / "o" / "mav3d" / "a_panda_dncing" / "manifest.json").is_file()  # still imported

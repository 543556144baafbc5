"""Checks of `fourdfy render | import-videos | clipscore | validate-artifacts` that come before any costly work, and
inputs that used to pass silently: cut videos, a byte-order mark in a prompt file, an --out of earlier outputs."""

from __future__ import annotations

import json
import re

import av
import pandas as pd
import pytest
from eval_helpers import error_lines, make_frames, write_cut_faststart_video
from typer.testing import CliRunner

from evaluation.artifacts import sha256_file, write_artifact
from evaluation.video import encode_video
from pipelines.cli import app
from prompts import PROMPT_DIR

runner = CliRunner()
SRC = {"kind": "import", "file": "x", "sha256": "0"}
ABLATION = str(PROMPT_DIR / "ablation_5.txt")


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _stored(path) -> int:
    """Samples (non-empty packets) the file holds, as a plain PyAV demux loop finds them."""
    with av.open(str(path)) as c:
        return sum(bool(p.size) for p in c.demux(c.streams.video[0]))


def _decodable(path) -> int:
    """Frames a plain PyAV loop gets out of `path` before the end or an error."""
    n = 0
    with av.open(str(path)) as c:
        try:
            for _ in c.decode(c.streams.video[0]):
                n += 1
        except av.FFmpegError:
            pass
    return n


# --- cut videos ---------------------------------------------------------------------------------------------------

def test_import_refuses_a_cut_video_naming_it_and_both_counts(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    declared = write_cut_faststart_video(src / "a_goat_drinking_beer.mp4")
    out = tmp_path / "art"
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(out), "--prompts", ABLATION])
    assert res.exit_code == 2
    (line,) = error_lines(res)
    m = re.fullmatch(rf"error: a_goat_drinking_beer\.mp4: truncated video: (\d+) of the {declared} frame\(s\) its "
                     rf"container declares are in the file \((\d+) decoded\); .*", line)
    assert m and 0 < int(m.group(2)) <= int(m.group(1)) < declared, line
    assert "imported" not in res.stdout and not (out / "mav3d" / "a_goat_drinking_beer").exists()


def test_validate_and_clipscore_refuse_an_artifact_whose_video_is_cut(tmp_path, tiny_clip, monkeypatch):
    """What the import used to write: the cut file as video.mp4, its manifest counting the frames that decode."""
    import evaluation.clip as clip_mod

    root = tmp_path / "art"
    art = write_artifact(root, "mav3d", "A goat drinking beer.", make_frames(4, 32, 32), source=SRC,
                         trajectory="unknown", fps=15)
    declared = write_cut_faststart_video(art.video_path)
    decodable, stored = _decodable(art.video_path), _stored(art.video_path)
    manifest = json.loads((art.folder / "manifest.json").read_text())
    # the import wrote the cut file, so its digest is the one recorded: the count alone tells it is cut
    (art.folder / "manifest.json").write_text(json.dumps({**manifest, "n_frames": decodable,
                                                          "video_sha256": sha256_file(art.video_path)}))
    res = runner.invoke(app, ["validate-artifacts", str(root)])
    assert res.exit_code == 1
    assert res.stdout.splitlines() == [f"BAD {art.folder}: video.mp4: truncated video: {stored} of the {declared} "
                                       f"frame(s) its container declares are in the file ({decodable} decoded); the "
                                       "file is cut short (copy or export it again)"]
    scored = []
    monkeypatch.setattr(clip_mod, "score_frames", lambda *a, **k: scored.append(1) / 0)
    args = ["clipscore", str(root), "--out", str(tmp_path / "clip"), "--clip-model", str(tiny_clip), "--resamples",
            "200", "--device", "cpu", "--no-progress"]
    expected = [f"error: {art.video_path}: truncated video: {stored} of the {declared} frame(s) its container "
                f"declares are in the file ({decodable} decoded); the file is cut short (copy or export it again)"]
    res = runner.invoke(app, args)
    # the first line is the tiny CLIP's note (random weights), printed before scoring
    assert res.exit_code == 2 and scored == [] and error_lines(res)[1:] == expected
    assert error_lines(res)[0].startswith("note: ") and "random weights" in error_lines(res)[0]
    assert not (tmp_path / "clip").exists()
    # scores a --cache kept from before the count was checked are not taken for it either
    from evaluation.clip_models import ClipConfig, load_clip

    cache = clip_mod.ScoreCache(tmp_path / "cache", load_clip(ClipConfig(model=str(tiny_clip), device="cpu")))
    key = cache.key(art.video_path, art.prompt, 16)
    cache.put(key, [30.0] * decodable)
    assert cache.get(key, decodable) is not None  # the entry is one the scoring would find
    res = runner.invoke(app, args + ["--cache", str(tmp_path / "cache")])
    assert res.exit_code == 2 and scored == [] and error_lines(res)[1:] == expected
    assert not (tmp_path / "clip").exists()


# --- prompt files with a byte-order mark, folders given for files --------------------------------------------------

def test_a_byte_order_mark_stays_out_of_the_imported_prompt(tmp_path):
    prompts = tmp_path / "mine.txt"
    prompts.write_bytes(b"\xef\xbb\xbfA panda dancing.\r\nA goat drinking beer.\r\n")  # as Notepad saves it
    src = tmp_path / "src"
    src.mkdir()
    encode_video(src / "a_panda_dancing.mp4", make_frames(2, 16, 16))
    out = tmp_path / "art"
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(out), "--prompts",
                              str(prompts)])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "mav3d" / "a_panda_dancing" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["prompt"] == "A panda dancing."
    assert "prompts without a video (1): a_goat_drinking_beer" in res.stdout  # CRLF lines still split
    # a mapping CSV saved the same way keeps its `file` column
    mapping = tmp_path / "map.csv"
    mapping.write_bytes(b"\xef\xbb\xbffile,prompt\r\na_panda_dancing.mp4,a_panda_dancing\r\n")
    res = runner.invoke(app, ["import-videos", str(src), "--method", "other", "--out", str(out), "--map",
                              str(mapping)])
    assert res.exit_code == 0, res.output + res.stderr
    assert (out / "other" / "a_panda_dancing" / "manifest.json").is_file()


def test_a_folder_given_as_prompt_file_is_named_as_such(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    encode_video(src / "a_panda_dancing.mp4", make_frames(2, 16, 16))
    res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(tmp_path / "art"),
                              "--prompts", str(PROMPT_DIR)])
    assert res.exit_code == 2
    assert error_lines(res) == [f"error: {PROMPT_DIR} is a folder, not a prompt file; give a prompt file (one prompt per "
                            "line, e.g. prompts/ablation_5.txt)"]
    assert not (tmp_path / "art").exists()


# --- import-videos: --fps, --method, existing artifacts ------------------------------------------------------------

@pytest.fixture()
def three(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i, slug in enumerate(("a_panda_dancing", "a_goat_drinking_beer", "a_dog_riding_a_skateboard")):
        encode_video(src / f"{slug}.mp4", make_frames(2, 16, 16, seed=i))
    return src


@pytest.mark.parametrize("fps", ["0", "-5", "nan"])
def test_import_checks_fps_once_before_decoding(three, tmp_path, fps):
    out = tmp_path / "art"
    res = runner.invoke(app, ["import-videos", str(three), "--method", "mav3d", "--out", str(out), "--fps", fps])
    assert res.exit_code == 2
    assert error_lines(res) == [f"error: --fps must be a positive number, got {float(fps)} (leave it out to keep each "
                            "file's rate)"]
    assert not out.exists()


def test_import_names_a_bad_method_once(three, tmp_path):
    res = runner.invoke(app, ["import-videos", str(three), "--method", "", "--out", str(tmp_path / "art")])
    assert res.exit_code == 2
    assert error_lines(res) == ["error: method '' cannot be a folder name (no '/', no leading '.', not empty)"]
    assert not (tmp_path / "art").exists()


def test_import_into_a_file_is_refused_before_decoding(three, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    res = runner.invoke(app, ["import-videos", str(three), "--method", "mav3d", "--out", str(target)])
    assert res.exit_code == 2
    assert error_lines(res) == [f"error: {target} is a file, not a folder, so {target / 'mav3d'} cannot be made; give "
                            "--out a folder, new or existing"]
    assert target.read_text() == "keep me"


def test_import_reports_existing_artifacts_as_such_not_as_missing_videos(three, tmp_path):
    out = tmp_path / "art"
    args = ["import-videos", str(three), "--method", "mav3d", "--out", str(out), "--prompts", ABLATION]
    assert runner.invoke(app, args).exit_code == 0
    before = _snapshot(out)
    # other settings than those the folders record (the same ones are done: tests/evaluation/test_import_rerun.py)
    res = runner.invoke(app, [*args, "--trajectory", "orbit"])
    assert res.exit_code == 2
    assert (f"already in {out / 'mav3d'}, left as they are (3): a_dog_riding_a_skateboard, a_goat_drinking_beer, "
            "a_panda_dancing") in res.stdout.splitlines()
    without = next(ln for ln in res.stdout.splitlines() if ln.startswith("prompts without a video"))
    assert without == ("prompts without a video (2): 3d_rendering_of_a_fox_playing_videogame, "
                       "a_baby_panda_eating_ice_cream")
    assert error_lines(res) == [f"error: 3 artifact folder(s) of these videos already exist in {out / 'mav3d'}, not "
                                "imported from these files with these settings; pass --overwrite to replace them"]
    assert _snapshot(out) == before


def test_an_aborted_all_or_nothing_import_does_not_count_every_prompt_as_without_video(three, tmp_path):
    """One bad file among three: --all-or-nothing writes nothing, and used to add "28 prompts ... have no video
    here" although the others matched. The sizes it prints are width x height."""
    (three / "a_cat_singing.mp4").write_bytes(b"not a video")
    out = tmp_path / "art"
    res = runner.invoke(app, ["import-videos", str(three), "--method", "mav3d", "--out", str(out), "--all-or-nothing"])
    assert res.exit_code == 2 and "have no video here" not in res.stdout and "without a video" not in res.stdout
    assert error_lines(res)[-1] == "error: --all-or-nothing: nothing was imported" and not out.exists()
    encode_video(three / "a_cat_singing.mp4", make_frames(2, 16, 24))
    res = runner.invoke(app, ["import-videos", str(three), "--method", "mav3d", "--out", str(out), "--all-or-nothing"])
    assert res.exit_code == 0
    assert f"imported a_cat_singing.mp4 -> {out / 'mav3d' / 'a_cat_singing'} (2 frames, 24x16 px)" in res.stdout
    assert "24 prompts of prompts/*.txt have no video here" in res.stdout


# --- render: checks before the checkpoint is loaded or a frame rendered --------------------------------------------

@pytest.fixture()
def no_render(monkeypatch):
    import evaluation.render as render_mod

    calls = []
    monkeypatch.setattr(render_mod, "render_frames", lambda *a, **k: calls.append(1) / 0)
    return calls


def test_render_checks_fps_and_out_before_rendering(fake_run, tmp_path, no_render):
    out = tmp_path / "art"
    res = runner.invoke(app, ["render", str(fake_run), "--out", str(out), "--fps", "0", "--device", "cpu"])
    assert res.exit_code == 2 and error_lines(res) == ["error: --fps must be a positive number, got 0.0"]
    assert not out.exists()
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    res = runner.invoke(app, ["render", str(fake_run), "--out", str(target), "--device", "cpu"])
    assert res.exit_code == 2
    assert error_lines(res) == [f"error: {target} is a file, not a folder, so {target / '4dfy'} cannot be made; give "
                            "--out a folder, new or existing"]
    assert target.read_text() == "keep me" and no_render == []


def test_render_of_a_manifest_file_asks_for_its_run_folder(fake_run, tmp_path, no_render):
    res = runner.invoke(app, ["render", str(fake_run / "manifest.json"), "--out", str(tmp_path / "art")])
    assert res.exit_code == 2
    assert error_lines(res) == [f"error: {fake_run / 'manifest.json'} is a file; give the run folder ({fake_run}), the one "
                            "`fourdfy generate` wrote with manifest.json and ckpt/ in it"]
    assert no_render == [] and not (tmp_path / "art").exists()


# --- clipscore: options, --primary and --out -----------------------------------------------------------------------

@pytest.fixture()
def two_methods(tmp_path):
    roots = {}
    for method, seed in (("4dfy", 0), ("mav3d", 40)):
        roots[method] = tmp_path / f"art_{method}"
        for i, prompt in enumerate(("A panda dancing.", "A goat drinking beer.")):
            write_artifact(roots[method], method, prompt, make_frames(2, 16, 16, seed=seed + i), source=SRC,
                           trajectory="orbit", fps=15)
    return roots


@pytest.fixture()
def no_scoring(monkeypatch):
    """Scoring or loading a model fails the test: the checks must come first."""
    import evaluation.clip as clip_mod
    import evaluation.clip_models as models

    calls = []
    monkeypatch.setattr(clip_mod, "score_artifacts", lambda *a, **k: calls.append("score") / 0)
    monkeypatch.setattr(models, "load_clip", lambda *a, **k: calls.append("load") / 0)
    return calls


@pytest.mark.parametrize("n", ["0", "-5", "1"])
def test_clipscore_checks_resamples_first(two_methods, tmp_path, no_scoring, n):
    out = tmp_path / "clip"
    res = runner.invoke(app, ["clipscore", str(two_methods["4dfy"]), "--out", str(out), "--resamples", n])
    assert res.exit_code == 2 and no_scoring == []
    assert error_lines(res) == [f"error: --resamples must be >= 2 (a bootstrap interval needs resamples; default 10000), "
                            f"got {n}"]
    assert not out.exists()


def test_clipscore_checks_seed_first(two_methods, tmp_path, no_scoring):
    res = runner.invoke(app, ["clipscore", str(two_methods["4dfy"]), "--out", str(tmp_path / "clip"), "--seed", "-1"])
    assert res.exit_code == 2 and no_scoring == [] and not (tmp_path / "clip").exists()
    assert error_lines(res) == ["error: --seed must be >= 0 (numpy's generators take no negative seed), got -1"]


def test_clipscore_primary_must_be_a_method_found(two_methods, tmp_path, no_scoring):
    out = tmp_path / "clip"
    res = runner.invoke(app, ["clipscore", *map(str, two_methods.values()), "--out", str(out), "--primary", "4dfyy"])
    assert res.exit_code == 2 and no_scoring == []
    assert error_lines(res) == ["error: --primary '4dfyy': no artifact has this method; the methods found are 4dfy, mav3d"]
    assert not out.exists()


def test_clipscore_into_a_file_is_refused_before_scoring(two_methods, tmp_path, no_scoring):
    target = tmp_path / "clip.csv"
    target.write_text("keep me")
    res = runner.invoke(app, ["clipscore", str(two_methods["4dfy"]), "--out", str(target)])
    assert res.exit_code == 2 and no_scoring == []
    assert error_lines(res) == [f"error: --out: {target} is a file, not a folder; give --out a folder, new or existing"]
    assert target.read_text() == "keep me"


def test_clipscore_refuses_methods_whose_videos_of_one_prompt_were_made_for_different_texts(two_methods, tmp_path,
                                                                                            no_scoring):
    """An import with a prompt file of one's own wording ('a panda dancing') has the library prompt's slug: its
    video was scored against other words and still compared with 4dfy's; now refused, before any scoring."""
    write_artifact(two_methods["mav3d"], "mav3d", "a panda dancing", make_frames(2, 16, 16, seed=5), source=SRC,
                   trajectory="orbit", fps=15, overwrite=True)
    out = tmp_path / "clip"
    res = runner.invoke(app, ["clipscore", *map(str, two_methods.values()), "--out", str(out)])
    assert res.exit_code == 2 and no_scoring == [] and not out.exists()
    assert error_lines(res) == [
        "error: 1 prompt(s) whose videos were made for different texts; CLIP scores each video against its own text, "
        "so its methods would not be compared on one prompt: a_panda_dancing: 'A panda dancing.' (4dfy), "
        "'a panda dancing' (mav3d). Import the videos with the prompt's text (`import-videos --map` records a "
        "library prompt's own text) or score the methods apart"]
    res = runner.invoke(app, ["clipscore", str(two_methods["mav3d"]), "--out", str(out)])  # one method: no pairing
    assert no_scoring == ["load"]


@pytest.mark.parametrize("cache", ["clip/cache", "clip"])
def test_clipscore_refuses_a_cache_inside_out_before_scoring(two_methods, tmp_path, no_scoring, monkeypatch, cache):
    """A --cache inside --out worked once, then every rerun was refused (the cache is no clipscore output)."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["clipscore", str(two_methods["4dfy"]), "--out", "clip", "--cache", cache])
    assert res.exit_code == 2 and no_scoring == []
    assert error_lines(res) == [f"error: --cache {cache} lies inside --out clip, which holds clipscore's outputs only; "
                                "give the cache a folder of its own (e.g. clip-cache/)"]
    assert not (tmp_path / "clip").exists()


@pytest.mark.parametrize("name,content", [("notes.txt", "mine"), ("summary.csv", "subject,score\n1,2\n"),
                                          ("old", None)])
def test_clipscore_refuses_an_out_holding_files_it_did_not_write(two_methods, tmp_path, no_scoring, name, content):
    out = tmp_path / "clip"
    out.mkdir()
    (out / "clip.csv").write_text("method,clip,prompt_set\n4dfy,30,ablation_5\n")  # an earlier clipscore's
    if content is None:
        (out / name).mkdir()
    else:
        (out / name).write_text(content)
    before = _snapshot(out)
    res = runner.invoke(app, ["clipscore", str(two_methods["4dfy"]), "--out", str(out)])
    assert res.exit_code == 2 and no_scoring == []
    assert error_lines(res) == [f"error: --out {out} holds files `fourdfy clipscore` did not write ({name}); its outputs "
                            "would overwrite or sit among them: give a new or empty folder, or the --out of an earlier "
                            "clipscore run"]
    assert _snapshot(out) == before


def test_clipscore_says_which_earlier_outputs_and_methods_it_replaces(two_methods, tmp_path, tiny_clip):
    out = tmp_path / "clip"
    common = ["--out", str(out), "--clip-model", str(tiny_clip), "--resamples", "200", "--device", "cpu",
              "--no-progress"]
    res = runner.invoke(app, ["clipscore", *map(str, two_methods.values()), *common])
    assert res.exit_code == 0, res.output + res.stderr
    assert "replaced" not in res.stdout and res.stderr.count("warning") == 0
    (out / ".gitignore").write_text("/per_frame.csv\n")  # what DVC leaves beside its outputs
    res = runner.invoke(app, ["clipscore", str(two_methods["4dfy"]), *common])  # the mav3d root left out
    assert res.exit_code == 0, res.output + res.stderr
    assert (f"replaced the earlier outputs in {out}: per_frame.csv, per_prompt.csv, summary.csv, clip.csv, "
            "clipscore.json") in res.stdout.splitlines()
    assert error_lines(res)[-1] == (f"warning: the earlier outputs in {out} held methods these do not: mav3d (their "
                                "scores are gone; give their artifact roots too to keep them)")
    assert set(pd.read_csv(out / "summary.csv")["method"]) == {"4dfy"}
    assert (out / ".gitignore").read_text() == "/per_frame.csv\n"  # left alone
    # the default --primary (4dfy) absent: no error, a note; a DVC-cleaned --out (outputs removed) is fine
    for name in ("per_frame.csv", "per_prompt.csv", "summary.csv", "clip.csv"):
        (out / name).unlink()
    res = runner.invoke(app, ["clipscore", str(two_methods["mav3d"]), *common])
    assert res.exit_code == 0, res.output + res.stderr
    assert "note: no artifact of 4dfy, so no paired differences (--primary names another method)" in res.stdout
    assert f"replaced the earlier outputs in {out}: clipscore.json" in res.stdout.splitlines()
    assert "warning" not in res.stderr  # no earlier scores, so no method disappeared


def test_render_interrupted_says_nothing_was_written(tmp_path, monkeypatch):
    """Ctrl-C during `render` used to exit 130 without a word; the artifact folder is written whole at the end,
    so the line says nothing was written and an earlier artifact is kept."""
    from typer.testing import CliRunner

    import evaluation.render
    from pipelines.cli import app

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation.render, "render_run", interrupted)
    res = CliRunner().invoke(app, ["render", str(tmp_path), "--out", str(tmp_path / "art")])
    assert res.exit_code == 130 and res.output.strip().startswith("error: interrupted; no artifact was written")
    assert not (tmp_path / "art").exists()


# --- the runs folder given where artifacts are expected ------------------------------------------------------------

def test_clipscore_and_validate_name_training_runs_given_for_artifacts(tmp_path, fake_run, tiny_clip):
    """`fourdfy generate`'s folders have a manifest.json too: they are named as runs to render, not as artifacts
    whose manifests lack a dozen keys."""
    import shutil

    runs = tmp_path / "runs"
    for name in ("a", "b"):
        shutil.copytree(fake_run, runs / name)
    res = runner.invoke(app, ["clipscore", str(runs), "--out", str(tmp_path / "clip"), "--clip-model", str(tiny_clip),
                              "--device", "cpu", "--no-progress"])
    assert res.exit_code == 2
    assert error_lines(res) == [f"error: 2 training run(s) given, not evaluation videos ({runs / 'a'}, {runs / 'b'}): "
                                "render each with `fourdfy render RUN --out ARTIFACTS` and give ARTIFACTS"]
    assert not (tmp_path / "clip").exists()
    res = runner.invoke(app, ["validate-artifacts", str(runs)])
    assert res.exit_code == 1
    assert res.stdout.splitlines() == [f"BAD {runs / n}: a training run (`fourdfy generate` wrote it), not an "
                                       "evaluation video: render each with `fourdfy render RUN --out ARTIFACTS` "
                                       "and give ARTIFACTS" for n in ("a", "b")]
    # beside real artifacts, a run is one of the folders that cannot be scored, named as a run
    write_artifact(runs, "mav3d", "A goat drinking beer.", make_frames(2, 16, 16), source=SRC, trajectory="unknown",
                   fps=15)
    res = runner.invoke(app, ["clipscore", str(runs), "--out", str(tmp_path / "clip"), "--clip-model", str(tiny_clip),
                              "--device", "cpu", "--no-progress"])
    assert res.exit_code == 2 and "cannot be scored" in res.stderr and "a training run (`fourdfy generate`" in res.stderr
    assert not (tmp_path / "clip").exists()

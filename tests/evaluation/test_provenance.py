"""What evaluation outputs say about what made them: an artifact's `source` names the run's folder, seed, `--set`
values, `--max-steps` and steps trained; clipscore's per_prompt.csv and clipscore.json name each scored artifact's
config hash, frame size and count; partial prompt sets get one note per set."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from eval_helpers import copy_run, make_frames
from typer.testing import CliRunner

from evaluation.artifacts import write_artifact
from evaluation.render import EvalRenderConfig, render_run
from evaluation.runs import render_source, run_path
from pipelines.cli import app

runner = CliRunner()
TINY = EvalRenderConfig(n_frames=2, size=4, device="cpu", depth=False)
REQUEST = {"set": {"weights.sds_video": "0.3"}, "max_steps": 5}
COUNTS = {"stage1": {"3d": 5, "img": 0, "video": 0}, "stage3": {"3d": 2, "img": 2, "video": 1}}


def test_a_render_source_says_what_made_the_run_and_no_more_than_relative_paths(fake_run, tmp_path):
    torch.set_num_threads(1)
    manifests = []
    for where in ("a", "b/deeper"):  # the same run at two places: the same manifest, byte for byte
        run = copy_run(fake_run, tmp_path / where / "runs", request=REQUEST, update_counts=COUNTS)
        art = render_run(run, tmp_path / where / "art", TINY)
        manifests.append((art.folder / "manifest.json").read_bytes())
    assert manifests[0] == manifests[1]
    assert str(tmp_path) not in manifests[0].decode()
    config_hash = json.loads((fake_run / "manifest.json").read_text())["config_hash"]
    assert art.source == {"kind": "render", "run": "a_panda_dancing", "run_path": "tiny/4dfy/a_panda_dancing",
                          "config_hash": config_hash, "profile": "tiny", "seed": 0,
                          "set": {"weights.sds_video": "0.3"}, "max_steps": 5, "variant": None,
                          "steps": {"stage1": 5, "stage3": 5}}


def test_a_run_that_records_no_request_has_null_set_and_max_steps(fake_run):
    """The fake run's manifest (like `fourdfy oracle`'s or an older run's) has no `request` and no counts."""
    manifest = json.loads((fake_run / "manifest.json").read_text())
    src = render_source(fake_run, manifest)
    assert (src["run"], src["run_path"]) == (fake_run.name, fake_run.name)  # not in the pipeline's layout
    assert (src["set"], src["max_steps"], src["steps"], src["seed"], src["profile"]) == (None, None, None, 0, "tiny")
    none_asked = render_source(fake_run, {**manifest, "request": {"set": {}, "max_steps": None}})
    assert (none_asked["set"], none_asked["max_steps"]) == ({}, None)  # recorded: no change asked for
    variant = {"base": "4dfy", "set": {"weights.sds_video": "0.3"}, "from": "/abs/params.yaml:overrides.v"}
    src = render_source(fake_run, {**manifest, "request": {"set": {}, "max_steps": None, "variant": variant}})
    assert src["variant"] == {"base": "4dfy", "set": {"weights.sds_video": "0.3"}}  # no path, maybe absolute


@pytest.mark.parametrize("parts,expected", [
    (("runs", "tiny", "4dfy", "a_panda_dancing"), "tiny/4dfy/a_panda_dancing"),
    (("tiny", "4dfy", "a_panda_dancing"), "tiny/4dfy/a_panda_dancing"),  # any runs root
    (("runs", "paper", "4dfy", "a_panda_dancing"), "a_panda_dancing"),   # another profile's folder
    (("runs", "tiny", "mav3d", "a_panda_dancing"), "a_panda_dancing"),   # another method's folder
    (("x",), "x"),
])
def test_run_path_takes_three_parts_only_in_the_pipeline_layout(tmp_path, parts, expected):
    assert run_path(tmp_path.joinpath(*parts), {"profile": "tiny", "method": "4dfy"}) == expected


@pytest.fixture()
def four_methods(tmp_path):
    """One prompt (in mav3d_28 and ablation_5) for four methods: one rendered, three imported."""
    root = tmp_path / "art"
    render = {"kind": "render", "run": "a_panda_dancing", "config_hash": "0123456789abcdef"}
    for i, method in enumerate(("4dfy", "hexplane", "mav3d", "wo_3d")):
        src = render if method == "4dfy" else {"kind": "import", "file": "x.mp4", "sha256": "0"}
        size = (16, 24) if method == "mav3d" else (16, 16)
        write_artifact(root, method, "A panda dancing.", make_frames(2 + (method == "mav3d"), *size, seed=9 * i),
                       source=src, trajectory="orbit", fps=15)
    return root


def test_clipscore_outputs_trace_each_score_and_group_the_partial_notes(four_methods, tmp_path, tiny_clip):
    out = tmp_path / "clip"
    res = runner.invoke(app, ["clipscore", str(four_methods), "--out", str(out), "--clip-model", str(tiny_clip),
                              "--resamples", "200", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output + res.stderr
    pp = pd.read_csv(out / "per_prompt.csv", keep_default_na=False)
    assert list(pp.columns) == ["method", "slug", "prompt", "n_frames", "clip", "config_hash", "width", "height"]
    got = {r.method: (r.config_hash, r.width, r.height, r.n_frames) for r in pp.itertuples()}
    assert got == {"4dfy": ("0123456789abcdef", 16, 16, 2), "hexplane": ("", 16, 16, 2),
                   "mav3d": ("", 24, 16, 3), "wo_3d": ("", 16, 16, 2)}
    meta = json.loads((out / "clipscore.json").read_text())
    assert meta["artifacts"][0] == {"method": "4dfy", "slug": "a_panda_dancing", "kind": "render",
                                    "config_hash": "0123456789abcdef", "width": 16, "height": 16, "n_frames": 2}
    assert meta["artifacts"][2] == {"method": "mav3d", "slug": "a_panda_dancing", "kind": "import",
                                    "config_hash": None, "width": 24, "height": 16, "n_frames": 3}
    assert [a["method"] for a in meta["artifacts"]] == ["4dfy", "hexplane", "mav3d", "wo_3d"]
    notes = [ln for ln in res.stdout.splitlines() if ln.startswith("note: ")]
    every = "4dfy, hexplane, mav3d, wo_3d have 1 of the"
    rest = "their clip.csv rows are the means over those only"
    assert sorted(notes) == sorted([f"note: {every} 5 prompts of ablation_5; {rest}",
                                    f"note: {every} 28 prompts of mav3d_28; {rest}"])
    # the new columns still read as clipscore's own: the same --out is taken again, and analyze's reader is fine
    res = runner.invoke(app, ["clipscore", str(four_methods), "--out", str(out), "--clip-model", str(tiny_clip),
                              "--resamples", "200", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0 and "replaced the earlier outputs" in res.stdout, res.output + res.stderr
    from userstudy.tables import load_clip, load_clip_source

    assert load_clip(out / "clip.csv")[("4dfy", "mav3d_28")].n_prompts == 1
    assert load_clip_source(out / "clip.csv").model is not None


def test_partial_notes_name_each_count_in_one_line_per_set():
    from pipelines.commands.evaluate import _partial_notes

    rows = [("4dfy", "ablation_5", 3, 5), ("hexplane", "ablation_5", 1, 5), ("wo_3d", "ablation_5", 1, 5),
            ("mine", "all", 2, 3)]
    partial = pd.DataFrame(rows, columns=["method", "prompt_set", "n_prompts", "n_set"])
    assert _partial_notes(partial, "all") == [
        "note: of the 5 prompts of ablation_5, 4dfy has 3 and hexplane, wo_3d have 1; their clip.csv rows are the "
        "means over those only",
        "note: mine has 2 of the 3 prompts scored (its `all` row); its clip.csv row is the mean over those only"]


def test_a_runs_folder_reached_through_a_symbolic_link_is_described_by_the_links_names(tmp_path, monkeypatch):
    """runs/tiny -> scratch/ (runs kept on another disk): the record is the pipeline layout's, as for a real folder,
    not the link target's names, so the same run gives the same manifest wherever its storage lies."""
    (tmp_path / "scratch" / "4dfy" / "a_panda_dancing").mkdir(parents=True)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "tiny").symlink_to(tmp_path / "scratch", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    manifest = {"profile": "tiny", "method": "4dfy"}
    for given in (Path("runs/tiny/4dfy/a_panda_dancing"), tmp_path / "runs" / "tiny" / "4dfy" / "a_panda_dancing"):
        assert run_path(given, manifest) == "tiny/4dfy/a_panda_dancing"

"""`fourdfy render FOLDER` given the folder that holds many runs (a runs root) or many artifacts (an artifact root)
says which it looks like and names a few, instead of "no manifest.json"."""

from __future__ import annotations

import json

import pytest
from eval_helpers import error_lines, make_frames, write_fake_run
from typer.testing import CliRunner

from evaluation.artifacts import write_artifact
from pipelines.cli import app

runner = CliRunner()
SLUGS = ("a_cat_singing", "a_dog_running", "a_goat_eating", "a_panda_dancing")


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """runs/<profile>/<method>/<slug>, as the pipeline and sweeps lay runs out (plus a hidden temporary)."""
    root = tmp_path_factory.mktemp("runs")
    first = write_fake_run(root / "tiny" / "4dfy" / SLUGS[0])
    for slug in SLUGS[1:]:  # the same run under other names: only the manifest is read
        (root / "tiny" / "4dfy" / slug).mkdir(parents=True)
        (root / "tiny" / "4dfy" / slug / "manifest.json").write_bytes((first / "manifest.json").read_bytes())
    (root / "tiny" / "4dfy" / ".tmp-run").mkdir()
    (root / "tiny" / "4dfy" / ".tmp-run" / "manifest.json").write_bytes((first / "manifest.json").read_bytes())
    return root


def _render(folder, out):
    return runner.invoke(app, ["render", str(folder), "--out", str(out), "--frames", "2", "--size", "8", "--device",
                               "cpu", "--no-progress"])


def test_a_runs_root_names_a_few_runs_to_give(runs_root, tmp_path):
    res = _render(runs_root, tmp_path / "art")
    assert res.exit_code == 2
    assert error_lines(res) == [
        f"error: {runs_root} holds no manifest.json: it looks like a folder of 4 training run(s) "
        "(tiny/4dfy/a_cat_singing, tiny/4dfy/a_dog_running, tiny/4dfy/a_goat_eating and 1 more), not one run; give "
        f"one of them, e.g. `fourdfy render {runs_root / 'tiny' / '4dfy' / 'a_cat_singing'} --out ARTIFACTS`"]
    assert not (tmp_path / "art").exists()
    # one level down, the names are relative to the folder given
    (line,) = error_lines(_render(runs_root / "tiny", tmp_path / "art"))
    assert "a folder of 4 training run(s) (4dfy/a_cat_singing, 4dfy/a_dog_running, 4dfy/a_goat_eating and 1 more)" \
        in line, line
    # the run named in the message renders
    res = _render(runs_root / "tiny" / "4dfy" / "a_cat_singing", tmp_path / "art")
    assert res.exit_code == 0, res.output


def test_an_artifact_root_is_named_as_one(tmp_path):
    root = tmp_path / "artifacts"
    for method in ("4dfy", "mav3d"):
        write_artifact(root, method, "A panda dancing.", make_frames(2, 16, 16),
                       source={"kind": "import", "file": "x.mp4", "sha256": "0" * 64}, trajectory="orbit", fps=15.0)
    res = _render(root, tmp_path / "out")
    assert res.exit_code == 2
    assert error_lines(res) == [
        f"error: {root} holds no manifest.json: it looks like a folder of 2 evaluation artifact(s) "
        "(4dfy/a_panda_dancing, mav3d/a_panda_dancing), not a training run; `fourdfy render` reads one run folder of "
        "`fourdfy generate` (manifest.json + ckpt/last.pt, e.g. runs/x); artifacts are what `fourdfy clipscore`, "
        "`figure` and `survey build` read"]
    assert not (tmp_path / "out").exists()


def test_a_folder_with_nothing_below_still_says_it_is_no_finished_run(tmp_path):
    (tmp_path / "half" / "ckpt").mkdir(parents=True)  # a run stopped before it wrote its manifest
    (tmp_path / "half" / "other").mkdir()
    (tmp_path / "half" / "other" / "manifest.json").write_text(json.dumps({"something": "else"}))
    (line,) = error_lines(_render(tmp_path / "half", tmp_path / "out"))
    half = tmp_path / "half"
    assert line == (f"error: {half} is an unfinished run: it has no manifest.json (`fourdfy generate` writes it when "
                    "the training ends) and no process is training it, so it stopped before the end; continue it with "
                    f"the command that started it plus --resume (`fourdfy generate ... --out {half} --resume`), then "
                    "render it")

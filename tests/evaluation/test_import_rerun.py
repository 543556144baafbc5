"""import-videos run again (after an interruption, or just twice): a folder that already holds what the import would
write is done and left as it is (exit 0); one that differs still needs --overwrite. And the `imported` lines come
as each video is in place, so an interrupted import has named the ones it kept."""

from __future__ import annotations

import itertools
import json
import shutil

import pytest
from eval_helpers import error_lines, make_frames, write_with_codec
from typer.testing import CliRunner

from evaluation.importer import import_videos
from evaluation.video import encode_video
from pipelines.cli import app

runner = CliRunner()
METHOD = "mav3d"


def _write_png_mov(path, frames, fps=12):
    """A PNG-in-MOV video (re-encoded by the import, an odd size padded)."""
    write_with_codec(path, frames, "png", "rgb24", fps=fps)


@pytest.fixture()
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    encode_video(d / "a_panda_dancing.mp4", make_frames(6, 16, 16), fps=15)        # H.264: copied as it is
    _write_png_mov(d / "a_goat_drinking_beer.mov", make_frames(5, 15, 21, seed=3))  # re-encoded, padded
    encode_video(d / "a_dog_riding_a_skateboard.mp4", make_frames(4, 16, 24, seed=5), fps=10)
    return d


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _written(root, slug):
    """(manifest without the writer's package versions, video bytes) of an artifact folder."""
    folder = root / METHOD / slug
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.pop("versions")
    return manifest, (folder / "video.mp4").read_bytes()


SETTINGS = [{}, {"n_frames": 4}, {"n_frames": 6}, {"fps": 15.0}, {"fps": 24.0}, {"n_frames": 4, "fps": 24.0},
            {"trajectory": "orbit"}]
"""Import settings: the defaults, resampling (to 4; to 6, which is the panda's own count: no resampling for it),
a rate given (the panda's own: re-encoded instead of copied; another), both, another camera path."""


def test_done_exactly_when_importing_again_would_write_the_same(src, tmp_path):
    """For every pair of settings (A, B): after importing with A, an import with B counts a folder as done exactly
    when a fresh import with B writes the same manifest (package versions aside) and the same video bytes; every
    other folder is `existing` (needs --overwrite). Nothing is written either way."""
    roots = {}
    for i, settings in enumerate(SETTINGS):
        roots[i] = tmp_path / f"fresh{i}"
        r = import_videos(src, METHOD, roots[i], **settings)
        assert len(r.imported) == 3 and not r.failed and not r.done, r
    slugs = sorted(p.name for p in (roots[0] / METHOD).iterdir())
    assert len(slugs) == 3
    n_done = 0
    for (a, sa), (b, sb) in itertools.product(enumerate(SETTINGS), repeat=2):
        before = _snapshot(roots[a])
        r = import_videos(src, METHOD, roots[a], **sb)
        same = {s for s in slugs if _written(roots[a], s) == _written(roots[b], s)}
        assert set(r.done.values()) == same, (sa, sb)
        assert set(r.existing.values()) == set(slugs) - same, (sa, sb)
        assert not r.imported and not r.failed and set(r.no_video).isdisjoint(slugs)
        assert _snapshot(roots[a]) == before
        n_done += len(same)
        if a == b:
            assert len(same) == 3  # the same settings: every folder is done
    # the pairs differ in at least one folder, except where a setting changes nothing for a file (--frames 6 on
    # the panda's 6 frames), so the check is not trivially all or none
    assert 3 * len(SETTINGS) < n_done < 3 * len(SETTINGS) ** 2


def test_another_file_or_prompt_text_under_the_same_name_is_not_done(src, tmp_path):
    out = tmp_path / "out"
    assert len(import_videos(src, METHOD, out).imported) == 3
    assert set(import_videos(src, METHOD, out).done) == {"a_panda_dancing.mp4", "a_goat_drinking_beer.mov",
                                                         "a_dog_riding_a_skateboard.mp4"}
    # the same name, other bytes (one frame changed)
    frames = make_frames(6, 16, 16)
    frames[3] = 255 - frames[3]
    encode_video(src / "a_panda_dancing.mp4", frames, fps=15)
    r = import_videos(src, METHOD, out)
    assert r.existing == {"a_panda_dancing.mp4": "a_panda_dancing"} and len(r.done) == 2
    # other words for a library prompt (`--map`): the library's text is recorded all the same, so the same import
    mapping = tmp_path / "map.csv"
    mapping.write_text("file,prompt\na_dog_riding_a_skateboard.mp4,a dog riding a skateboard\n")
    r = import_videos(src, METHOD, out, mapping=mapping)
    assert r.done == {"a_dog_riding_a_skateboard.mp4": "a_dog_riding_a_skateboard"} and not r.existing
    # the same slug for another text of one's own: its manifest would hold the other text
    mapping.write_text("file,prompt\na_dog_riding_a_skateboard.mp4,My dog on a skateboard\n")
    assert len(import_videos(src, METHOD, out, mapping=mapping).imported) == 1
    mapping.write_text("file,prompt\na_dog_riding_a_skateboard.mp4,my dog on a skateboard!\n")
    r = import_videos(src, METHOD, out, mapping=mapping)
    assert r.existing == {"a_dog_riding_a_skateboard.mp4": "my_dog_on_a_skateboard"} and not r.done
    # a folder of a file of another name (renamed source) is not this file's
    shutil.move(src / "a_goat_drinking_beer.mov", src / "A goat drinking beer.mov")
    r = import_videos(src, METHOD, out)
    assert r.existing.get("A goat drinking beer.mov") == "a_goat_drinking_beer"


def test_an_interrupted_import_names_what_it_kept_and_the_same_command_finishes_it(src, tmp_path, monkeypatch):
    """Ctrl-C while the last video's folder is written: the `imported` lines of the first two were already printed
    (they used to come only after the last video), the last one's temporary is gone, and the same command run again
    leaves the first two as they are (it used to demand --overwrite for them, exit 2) and imports the last."""
    import evaluation.artifacts

    out = tmp_path / "out"
    args = ["import-videos", str(src), "--method", METHOD, "--out", str(out), "--prompts", str(_prompts(tmp_path))]
    real, calls, inside = evaluation.artifacts.decode_video, [], []

    def stopped_in_the_second(path):  # write_artifact's check of a copy (the goat is re-encoded, not checked so)
        calls.append(path)
        if len(calls) == 2:  # the panda's, inside its temporary folder
            inside.append(sorted(p.name for p in (out / METHOD).iterdir()))
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(evaluation.artifacts, "decode_video", stopped_in_the_second)
    res = runner.invoke(app, args)
    monkeypatch.undo()
    assert res.exit_code == 130, res.output
    dog, goat = out / METHOD / "a_dog_riding_a_skateboard", out / METHOD / "a_goat_drinking_beer"
    assert res.stdout.splitlines() == [f"imported a_dog_riding_a_skateboard.mp4 -> {dog} (4 frames, 24x16 px)",
                                       f"imported a_goat_drinking_beer.mov -> {goat} (5 frames, 22x16 px)"]
    assert error_lines(res) == ["error: interrupted; every artifact folder it wrote is whole (none is left "
                                "half-written) and is kept; run the same command again to finish the import (it "
                                "leaves the folders already imported as they are)"]
    # the second's temporary existed when it was stopped, and is gone
    assert any(n.startswith(".a_panda_dancing.tmp-") for n in inside[0]), inside
    assert sorted(p.name for p in (out / METHOD).iterdir()) == ["a_dog_riding_a_skateboard", "a_goat_drinking_beer"]
    kept = _snapshot(out)

    res = runner.invoke(app, args)
    assert res.exit_code == 0 and error_lines(res) == [], res.output
    assert res.stdout.splitlines() == [
        f"imported a_panda_dancing.mp4 -> {out / METHOD / 'a_panda_dancing'} (6 frames, 16x16 px)",
        "already imported from the same files with the same settings, left as they are (2): "
        "a_dog_riding_a_skateboard, a_goat_drinking_beer"]
    assert {k: v for k, v in _snapshot(out).items() if not k.startswith(f"{METHOD}/a_panda")} == kept
    # all three done now; another --trajectory differs from all three folders: --overwrite, as before
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and res.stdout.splitlines() == [
        "already imported from the same files with the same settings, left as they are (3): "
        "a_dog_riding_a_skateboard, a_goat_drinking_beer, a_panda_dancing"], res.output
    res = runner.invoke(app, [*args, "--trajectory", "orbit"])
    assert res.exit_code == 2 and error_lines(res) == [
        f"error: 3 artifact folder(s) of these videos already exist in {out / METHOD}, not imported from these files "
        "with these settings; pass --overwrite to replace them"]


def test_all_or_nothing_counts_done_folders_as_fine(src, tmp_path):
    out = tmp_path / "out"
    shutil.move(src / "a_goat_drinking_beer.mov", tmp_path / "later.mov")
    assert len(import_videos(src, METHOD, out, all_or_nothing=True).imported) == 2
    shutil.move(tmp_path / "later.mov", src / "a_goat_drinking_beer.mov")
    r = import_videos(src, METHOD, out, all_or_nothing=True)
    assert [a.slug for a in r.imported] == ["a_goat_drinking_beer"] and len(r.done) == 2 and not r.existing


def _prompts(tmp_path):
    """A prompt file of the three prompts (the summary lines then leave out the library's other prompts)."""
    path = tmp_path / "three.txt"
    path.write_text("A dog riding a skateboard.\nA goat drinking beer.\nA panda dancing.\n")
    return path

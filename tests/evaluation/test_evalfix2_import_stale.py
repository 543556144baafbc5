"""import-videos again after a source file was renamed or removed: the import folder of the old file is still in
OUT/METHOD, validated, scored and shown as the method's; the import names it in one `warning:` with the command that
removes it, and removes nothing itself. Only folders an import made count (a render, or a folder that is no
artifact, is left out)."""

from __future__ import annotations

import shutil

import pytest
from eval_helpers import error_lines, make_frames, panda_and_cat_videos
from typer.testing import CliRunner

from evaluation.artifacts import write_artifact
from evaluation.importer import import_videos
from pipelines.cli import app

runner = CliRunner()


@pytest.fixture()
def src(tmp_path):
    return panda_and_cat_videos(tmp_path / "s13", 3)


def _import(src, out, *extra):
    return runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(out), *extra])


def _warnings(res) -> list[str]:
    return [ln for ln in error_lines(res) if ln.startswith("warning:")]


@pytest.mark.parametrize("overwrite", [False, True])
def test_the_folder_of_a_renamed_file_is_named_with_how_to_remove_it(tmp_path, src, overwrite):
    out = tmp_path / "imp13"
    first = _import(src, out)
    assert first.exit_code == 0, first.output
    assert not _warnings(first)  # nothing stale on the first import
    (src / "a_panda_dancing.mp4").rename(src / "a_goat_drinking_beer.mp4")  # the reviewer's repro
    res = _import(src, out, *(["--overwrite"] if overwrite else []))
    assert res.exit_code == 0, res.output
    folder = out / "mav3d"
    (line,) = _warnings(res)
    assert line.startswith(f"warning: 1 folder(s) in {folder} hold videos an earlier import made from files this "
                           "import did not match to their prompt, still validated, scored and shown as mav3d's: "
                           f"a_panda_dancing (a_panda_dancing.mp4 is not in {src})."), line
    assert f"(`rm -r {folder / 'a_panda_dancing'}`)" in line, line
    assert "a_goat_drinking_beer (" not in line and "a_cat_singing (" not in line  # this import's own folders
    assert (folder / "a_panda_dancing" / "video.mp4").is_file()  # warned about, never removed


def test_a_plain_rerun_warns_of_nothing(tmp_path, src):
    out = tmp_path / "out"
    assert _import(src, out).exit_code == 0
    res = _import(src, out)  # every folder done
    assert res.exit_code == 0 and not _warnings(res), res.output


def test_why_each_folder_is_named_and_only_imports_count(tmp_path, src):
    out = tmp_path / "out"
    r = import_videos(src, "mav3d", out)
    assert sorted(a.slug for a in r.imported) == ["a_cat_singing", "a_panda_dancing"] and not r.stale
    # a render and a folder of no artifact in the method's folder: not the importer's, never named
    write_artifact(out, "mav3d", "A goat drinking beer.", make_frames(2, 16, 16),
                   source={"kind": "render", "run": "r", "config_hash": "0"}, trajectory="orbit", fps=15)
    (out / "mav3d" / "notes").mkdir()
    (out / "mav3d" / "notes" / "readme.txt").write_text("mine")
    # the cat file now mapped to another prompt, the panda file still there but left out of the map
    mapping = tmp_path / "map.csv"
    mapping.write_text("file,prompt\na_cat_singing.mp4,a_dog_riding_a_skateboard\n")
    r = import_videos(src, "mav3d", out, mapping=mapping)
    # the panda folder still holds exactly its file: a subset import leaves it, unnamed
    assert r.stale == {
        "a_cat_singing": ("a_cat_singing.mp4", "a_cat_singing.mp4 now matches prompt a_dog_riding_a_skateboard")}
    shutil.copy(src / "a_cat_singing.mp4", src / "a_panda_dancing.mp4")  # the panda file replaced by other frames
    r = import_videos(src, "mav3d", out, mapping=mapping)
    assert r.stale["a_panda_dancing"] == ("a_panda_dancing.mp4",
                                          f"a_panda_dancing.mp4 in {src} has changed since it was imported")
    (src / "a_panda_dancing.mp4").unlink()
    r = import_videos(src, "mav3d", out, mapping=mapping)
    assert r.stale["a_panda_dancing"] == ("a_panda_dancing.mp4", f"a_panda_dancing.mp4 is not in {src}")
    assert set(r.stale) == {"a_cat_singing", "a_panda_dancing"}
    assert (out / "mav3d" / "a_goat_drinking_beer").is_dir() and (out / "mav3d" / "notes").is_dir()


def test_many_stale_folders_are_counted_and_all_in_the_command(tmp_path, src):
    out = tmp_path / "out"
    slugs = ["a_bear_driving_a_car", "a_corgi_playing_with_a_ball", "a_dog_riding_a_skateboard", "a_goat_drinking_beer",
             "a_monkey_eating_a_candy_bar", "a_panda_dancing"]
    for slug in slugs:
        shutil.copy(src / "a_cat_singing.mp4", src / f"{slug}.mp4")
    assert _import(src, out).exit_code == 0
    for slug in slugs:
        (src / f"{slug}.mp4").unlink()
    res = _import(src, out)
    (line,) = _warnings(res)
    assert line.startswith(f"warning: {len(slugs)} folder(s) in {out / 'mav3d'} "), line
    assert "; and 1 more. Remove those that are stale" in line, line
    assert ("`rm -r " + " ".join(str(out / "mav3d" / s) for s in slugs) + "`") in line, line


def test_a_prompts_subset_import_names_none_of_the_other_folders(tmp_path, src):
    """Reviewer's repro: panda imported with one --prompts file, cat with another; the panda folder, whose file is
    still in the source folder unchanged, is not named for removal."""
    out = tmp_path / "out"
    for slug in ("a_panda_dancing", "a_cat_singing"):
        prompts = tmp_path / f"{slug}.txt"
        prompts.write_text(slug.replace("_", " ") + "\n")
        res = runner.invoke(app, ["import-videos", str(src), "--method", "mav3d", "--out", str(out),
                                  "--prompts", str(prompts)])
        assert res.exit_code == 0, res.output
        assert not _warnings(res), res.output
    assert {p.name for p in (out / "mav3d").iterdir()} == {"a_panda_dancing", "a_cat_singing"}

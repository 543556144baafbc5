"""import-videos: matching by slug (and the article rule), copies vs re-encodes, bad files, resampling."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from eval_helpers import make_frames, write_with_codec

from evaluation.artifacts import validate_artifact
from evaluation.importer import VideoImportError, import_videos, match_files
from evaluation.video import decode_video, encode_video
from prompts import load_prompts


@pytest.fixture()
def src(tmp_path):
    d = tmp_path / "videos"
    d.mkdir()
    encode_video(d / "Dog_riding_a_skateboard.mp4", make_frames(6, 16, 16))            # fuzzy (no article)
    encode_video(d / "a_panda_dancing.mp4", make_frames(5, 16, 32, seed=9))              # exact, non-square
    write_with_codec(d / "A goat drinking beer.mov", make_frames(4, 15, 21), "png", "rgb24")  # odd size, png
    write_with_codec(d / "3D_rendering_of_a_fox_playing_videogame.avi", make_frames(6, 16, 16), "mpeg4", "yuv420p")
    (d / "a_cat_singing.mp4").write_bytes(b"")                                           # empty
    (d / "a_bear_driving_a_car.mp4").write_text("hello")                                 # not a video
    encode_video(d / "my_holiday.mp4", make_frames(3, 16, 16))                          # matches no prompt
    (d / "notes.txt").write_text("ignored: not a video extension")
    return d


def test_import_folder(src, tmp_path):
    out = tmp_path / "out"
    r = import_videos(src, "mav3d", out)
    slugs = sorted(a.slug for a in r.imported)
    assert slugs == ["3d_rendering_of_a_fox_playing_videogame", "a_dog_riding_a_skateboard", "a_goat_drinking_beer",
                     "a_panda_dancing"]
    assert r.fuzzy == {"Dog_riding_a_skateboard.mp4": "a_dog_riding_a_skateboard"}
    assert r.unmatched_files == ["my_holiday.mp4"]
    assert set(r.failed) == {"a_cat_singing.mp4", "a_bear_driving_a_car.mp4"}
    assert "empty file" in r.failed["a_cat_singing.mp4"]
    assert "not a readable video" in r.failed["a_bear_driving_a_car.mp4"]
    assert not (out / "mav3d" / "a_cat_singing").exists() and not (out / "mav3d" / "a_bear_driving_a_car").exists()
    arts = {a.slug: a for a in r.imported}
    for a in arts.values():
        assert validate_artifact(a.folder) == []
        assert a.source["kind"] == "import"
        assert a.source["sha256"] == hashlib.sha256((src / a.source["file"]).read_bytes()).hexdigest()
    # H.264/yuv420p files are copied byte for byte
    dog = arts["a_dog_riding_a_skateboard"]
    assert dog.video_path.read_bytes() == (src / "Dog_riding_a_skateboard.mp4").read_bytes()
    assert (dog.n_frames, dog.height, dog.width) == (6, 16, 16) and dog.manifest["extra"]["copied"]
    assert (arts["a_panda_dancing"].height, arts["a_panda_dancing"].width) == (16, 32)
    # png / mpeg4 sources are re-encoded; the odd size is padded by one repeated row and column
    goat = arts["a_goat_drinking_beer"]
    assert not goat.manifest["extra"]["copied"] and (goat.n_frames, goat.height, goat.width) == (4, 16, 22)
    back = decode_video(goat.video_path)
    ref = make_frames(4, 15, 21)
    assert np.abs(back[:, :15, :21].astype(int) - ref).mean() < 4.0
    fox = arts["3d_rendering_of_a_fox_playing_videogame"]
    assert fox.n_frames == 6 and fox.manifest["extra"]["source_codec"] == "mpeg4"
    # prompts with no file at all (the two failed files did match their prompts)
    assert set(r.unmatched_prompts) == set(load_prompts_all()) - set(slugs) - {"a_cat_singing", "a_bear_driving_a_car"}
    assert r.no_video == r.unmatched_prompts  # those two are named by `failed`, with their reasons, not here


def load_prompts_all():
    from prompts import PROMPT_DIR

    table = {}
    for f in sorted(PROMPT_DIR.glob("*.txt")):
        table.update(load_prompts(f))
    return table


def test_all_or_nothing_writes_nothing(src, tmp_path):
    r = import_videos(src, "mav3d", tmp_path / "out", all_or_nothing=True)
    assert r.imported == [] and len(r.failed) == 2
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("manifest.json"))


def test_resample_by_nearest_frame(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    frames = make_frames(10, 16, 16)
    frames[:, :, :, 2] = (np.arange(10) * 25)[:, None, None]  # frame k has blue = 25 k
    encode_video(d / "a_panda_dancing.mp4", frames, fps=20)
    r = import_videos(d, "mav3d", tmp_path / "out", n_frames=4)
    a = r.imported[0]
    assert a.n_frames == 4 and a.fps == pytest.approx(8.0)  # duration kept: 10 frames at 20 fps = 4 at 8
    assert a.manifest["extra"]["resample"]["indices"] == [0, 2, 5, 7]
    blue = decode_video(a.video_path)[:, 4:12, 4:12, 2].mean(axis=(1, 2))
    assert np.allclose(blue, [0, 50, 125, 175], atol=4)


def test_mapping_csv(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    encode_video(d / "clip1.mp4", make_frames(3, 16, 16))
    encode_video(d / "clip2.mp4", make_frames(3, 16, 16))
    encode_video(d / "clip3.mp4", make_frames(3, 16, 16))
    m = tmp_path / "map.csv"
    m.write_text('file,prompt\nclip1.mp4,a_cat_singing\nclip2.mp4,"A ""new"" prompt, not in the lists."\n')
    r = import_videos(d, "other", tmp_path / "out", mapping=m)
    assert sorted(a.prompt for a in r.imported) == ['A "new" prompt, not in the lists.', "A cat singing."]
    assert r.unmatched_files == ["clip3.mp4"]
    m.write_text("name,prompt\nclip1.mp4,a\n")
    with pytest.raises(VideoImportError, match="needs columns file,prompt"):
        import_videos(d, "other", tmp_path / "out2", mapping=m)


def test_two_files_for_one_prompt_are_refused(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    encode_video(d / "A_panda_dancing.mp4", make_frames(3, 16, 16))
    encode_video(d / "panda_dancing.mp4", make_frames(3, 16, 16))
    r = import_videos(d, "m", tmp_path / "out")
    assert r.imported == [] and set(r.failed) == {"A_panda_dancing.mp4", "panda_dancing.mp4"}
    assert "2 files match prompt 'a_panda_dancing'" in r.failed["panda_dancing.mp4"]


def test_article_rule_is_conservative(tmp_path):
    prompts = {"a_dog_running": "A dog running.", "the_dog_running": "The dog running.", "a_cat": "A cat."}
    files = [tmp_path / n for n in ("dog_running.mp4", "cat.mp4", "an_cat.mp4", "cats.mp4")]
    matched, fuzzy, unmatched = match_files(files, prompts)
    assert {f.name: s for f, s in matched.items()} == {"cat.mp4": "a_cat", "an_cat.mp4": "a_cat"}
    assert unmatched == ["dog_running.mp4", "cats.mp4"]  # ambiguous, and no partial-word matching


def test_prompt_file_restricts_and_reports_missing_prompts(src, tmp_path):
    table = load_prompts(next(p for p in load_prompts_files() if p.stem == "ablation_5"))
    r = import_videos(src, "mav3d", tmp_path / "out", prompts=table)
    assert r.unmatched_prompts == ["a_baby_panda_eating_ice_cream"]
    assert "a_cat_singing.mp4" in r.unmatched_files  # not in this prompt list, so never opened


def load_prompts_files():
    from prompts import PROMPT_DIR

    return sorted(PROMPT_DIR.glob("*.txt"))


def test_missing_source_folder(tmp_path):
    with pytest.raises(VideoImportError, match="source folder .* not found"):
        import_videos(tmp_path / "nope", "m", tmp_path / "out")
    with pytest.raises(VideoImportError, match="--frames must be at least 2, got 1"):
        import_videos(tmp_path, "m", tmp_path / "out", n_frames=1)


def test_an_existing_artifact_is_refused_before_decoding(tmp_path, monkeypatch):
    import evaluation.importer as imp

    d = tmp_path / "v"
    d.mkdir()
    encode_video(d / "a_panda_dancing.mp4", make_frames(3, 16, 16))
    assert len(import_videos(d, "mav3d", tmp_path / "out").imported) == 1
    encode_video(d / "a_cat_singing.mp4", make_frames(3, 16, 16))
    decoded = []
    real_load = imp._load
    monkeypatch.setattr(imp, "_load", lambda path, *a: decoded.append(path.name) or real_load(path, *a))
    # another trajectory than the folder records: not what this import writes (the same settings would be done,
    # tests/evaluation/test_import_rerun.py)
    r = import_videos(d, "mav3d", tmp_path / "out", all_or_nothing=True, trajectory="orbit")
    assert r.existing == {"a_panda_dancing.mp4": "a_panda_dancing"} and not r.failed  # kept apart from failures
    assert "a_panda_dancing" not in r.no_video  # it has a video: the one already there
    assert decoded == ["a_cat_singing.mp4"]  # the taken one was not decoded
    assert r.imported == [] and not (tmp_path / "out" / "mav3d" / "a_cat_singing").exists()  # all or nothing
    r = import_videos(d, "mav3d", tmp_path / "out", overwrite=True)
    assert sorted(a.slug for a in r.imported) == ["a_cat_singing", "a_panda_dancing"] and not r.failed


def test_a_still_image_renamed_mp4_is_refused_and_keeps_the_earlier_artifact(tmp_path):
    """A PNG named like a video decodes as one frame: refused as a still image, and with --overwrite the good
    artifact already imported for that prompt stays."""
    from PIL import Image

    good, still, out = tmp_path / "good", tmp_path / "still", tmp_path / "out"
    good.mkdir()
    still.mkdir()
    encode_video(good / "a_panda_dancing.mp4", make_frames(6, 16, 16))
    Image.fromarray(make_frames(1, 16, 16)[0]).save(still / "a_panda_dancing.mp4", format="PNG")
    first = import_videos(good, "mav3d", out)
    assert [a.slug for a in first.imported] == ["a_panda_dancing"]
    before = (out / "mav3d" / "a_panda_dancing" / "video.mp4").read_bytes()
    r = import_videos(still, "mav3d", out, overwrite=True)
    assert r.imported == [] and "a still image, not a video" in r.failed["a_panda_dancing.mp4"], r.failed
    assert "holds 1 frame (png" in r.failed["a_panda_dancing.mp4"], r.failed
    assert (out / "mav3d" / "a_panda_dancing" / "video.mp4").read_bytes() == before


def test_fps_given_with_frames_is_the_rate_recorded(tmp_path):
    """`--frames 4 --fps 15`: 4 frames at 15 fps, as `--fps`'s help says ("frame rate to record"), in the manifest
    and the container alike; without --fps the file's rate is scaled to keep the duration
    (test_resample_by_nearest_frame). A rerun of the same import is done, not refused."""
    d = tmp_path / "v"
    d.mkdir()
    encode_video(d / "a_panda_dancing.mp4", make_frames(10, 16, 16), fps=20)
    r = import_videos(d, "mav3d", tmp_path / "out", n_frames=4, fps=15.0)
    a = r.imported[0]
    assert a.n_frames == 4 and a.fps == pytest.approx(15.0)
    import av

    with av.open(str(a.video_path)) as c:
        assert float(c.streams.video[0].average_rate) == pytest.approx(15.0)
    again = import_videos(d, "mav3d", tmp_path / "out", n_frames=4, fps=15.0)
    assert again.done == {"a_panda_dancing.mp4": "a_panda_dancing"} and not again.existing and not again.imported


def test_mapped_files_of_one_name_in_subfolders_are_reported_and_recorded_by_their_path(tmp_path):
    """panda/out.mp4 and cat/out.mp4 (one folder per prompt, a common layout): the report and the manifest name each
    by its path below the source folder, so a rerun lists both as done and two failures are two lines."""
    d = tmp_path / "v"
    for sub in ("panda", "cat"):
        (d / sub).mkdir(parents=True)
        encode_video(d / sub / "out.mp4", make_frames(3, 16, 16, seed=len(sub)))
    m = tmp_path / "map.csv"
    m.write_text("file,prompt\npanda/out.mp4,a_panda_dancing\ncat/out.mp4,a_cat_singing\n")
    r = import_videos(d, "mav3d", tmp_path / "out", mapping=m)
    assert sorted(a.source["file"] for a in r.imported) == ["cat/out.mp4", "panda/out.mp4"]
    again = import_videos(d, "mav3d", tmp_path / "out", mapping=m)
    assert again.done == {"panda/out.mp4": "a_panda_dancing", "cat/out.mp4": "a_cat_singing"}
    assert not again.no_video and not again.existing
    m.write_text("file,prompt\nx/clip.mp4,a_panda_dancing\ny/clip.mp4,a_cat_singing\n")  # neither exists
    gone = import_videos(d, "mav3d", tmp_path / "out2", mapping=m)
    assert sorted(gone.failed) == ["x/clip.mp4", "y/clip.mp4"]

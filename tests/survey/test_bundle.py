"""Bundle building: questions from the design, opaque video names, one error listing every problem."""

import json
import shutil

import av
import pytest
from survey_helpers import PROMPTS, partial_artifacts, write_artifact

from userstudy.survey import BundleError, build_bundle, load_bundle
from userstudy.survey.bundle import BUNDLE_FILE, MEDIA_DIR


def test_questions_follow_the_design(bundle):
    qs = bundle.questions
    main = [q for q in qs if not q.is_attention_check]
    checks = [q for q in qs if q.is_attention_check]
    assert sorted((q.method_b, q.prompt_id) for q in main) == sorted(
        [("mav3d", s) for s in PROMPTS] + [("wo_3d", "a_panda_dancing")])
    assert all(q.method_a == "4dfy" for q in qs)
    assert [(q.method_b, q.prompt_id) for q in checks] == [("attention_decoy", "a_goat_drinking_beer")]
    assert {q.prompt for q in main} == set(PROMPTS.values())  # prompt text verbatim, unicode included
    assert len({q.question_id for q in qs}) == len(qs)


def test_videos_are_opaque_and_playable(bundle, study_inputs):
    arts = study_inputs[0]
    files = sorted((bundle.root / MEDIA_DIR).iterdir())
    used = {v for q in bundle.questions for v in (q.video_a, q.video_b)}
    assert {f.name for f in files} == used
    forbidden = {"4dfy", "mav3d", "wo_3d", "attention_decoy", "decoy", *PROMPTS, "panda", "goat"}
    for f in files:
        assert f.suffix == ".mp4" and len(f.stem) == 32 and all(c in "0123456789abcdef" for c in f.stem)
        data = f.read_bytes()
        assert not any(word.encode() in data for word in forbidden), f.name  # no metadata leaks
        with av.open(str(f)) as c:
            s = c.streams.video[0]
            assert (s.codec_context.name, s.codec_context.format.name, s.codec_context.width) == ("h264", "yuv420p", 32)
            assert sum(1 for _ in c.decode(s)) == 16
    # the same frames as the artifact it came from
    q = next(q for q in bundle.questions if q.method_b == "mav3d" and q.prompt_id == "a_panda_dancing")
    with av.open(str(arts / "mav3d" / "a_panda_dancing" / "video.mp4")) as a, \
            av.open(str(bundle.video_path(q.video_b))) as b:
        fa = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
        fb = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
    assert len(fa) == len(fb) and all((x == y).all() for x, y in zip(fa, fb))


def test_manifest_maps_ids_to_methods(bundle):
    data = json.loads((bundle.root / BUNDLE_FILE).read_text(encoding="utf-8"))
    assert data["design"]["primary"] == "4dfy"
    again = load_bundle(bundle.root)
    assert again.questions == bundle.questions and again.bundle_id == bundle.bundle_id


def _write_mpeg4(path):
    import numpy as np

    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for k in range(16):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 8 * k, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_every_problem_listed_once(study_inputs, tmp_path):
    arts, prompts_dir, design = study_inputs
    broken = tmp_path / "arts"
    shutil.copytree(arts, broken)
    shutil.rmtree(broken / "mav3d" / "a_panda_dancing")                         # missing
    write_artifact(broken, "mav3d", "a_goat_drinking_beer", "A goat drinking wine.", 7)  # wrong prompt
    m = broken / "wo_3d" / "a_panda_dancing" / "manifest.json"
    m.write_text(json.dumps({**json.loads(m.read_text()), "method": "hexplane", "width": 64}))  # mismatched
    (broken / "4dfy" / "a_goat_drinking_beer" / "video.mp4").write_bytes(b"not a video")   # unreadable
    _write_mpeg4(broken / "4dfy" / "a_panda_dancing" / "video.mp4")                       # wrong codec
    # an interrupted artifact write (hidden folder): not a decoy prompt, so no check question for it
    shutil.copytree(arts / "attention_decoy" / "a_goat_drinking_beer", broken / "attention_decoy" / ".x.tmp")
    with pytest.raises(BundleError) as err:
        build_bundle(design, [broken], tmp_path / "out", prompts_dir=prompts_dir)
    msg = str(err.value)
    assert "mav3d/a_panda_dancing: missing" in msg
    assert "mav3d/a_goat_drinking_beer: manifest prompt 'A goat drinking wine.'" in msg
    assert "wo_3d/a_panda_dancing: manifest method is 'hexplane'" in msg
    assert "wo_3d/a_panda_dancing: manifest width 64 but video.mp4 has 32" in msg
    assert "4dfy/a_goat_drinking_beer: video.mp4 cannot be read" in msg
    assert "4dfy/a_panda_dancing: video.mp4 is mpeg4/yuv420p, the contract is h264/yuv420p" in msg
    assert msg.startswith("6 problem(s)")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_a_video_replaced_since_its_artifact_was_written_is_a_problem(study_inputs, tmp_path):
    """Raters would judge another video than the one imported under that name: an artifact whose manifest records
    `video_sha256` (what `fourdfy import-videos` and `fourdfy render` write) and whose video.mp4 is another file of the
    same size and frame count is refused, naming it; the same file under its recorded digest is fine."""
    from evaluation.artifacts import sha256_file

    arts, prompts_dir, design = study_inputs
    copy = tmp_path / "arts"
    shutil.copytree(arts, copy)
    folder = copy / "mav3d" / "a_panda_dancing"
    m = folder / "manifest.json"
    recorded = {**json.loads(m.read_text()), "video_sha256": sha256_file(folder / "video.mp4"),
                "source": {"kind": "import", "file": "panda.mp4"}}
    m.write_text(json.dumps(recorded))
    build_bundle(design, [copy], tmp_path / "ok", prompts_dir=prompts_dir)  # the digest matches: built
    shutil.copy(arts / "mav3d" / "a_goat_drinking_beer" / "video.mp4", folder / "video.mp4")  # same size, frames
    with pytest.raises(BundleError) as err:
        build_bundle(design, [copy], tmp_path / "out", prompts_dir=prompts_dir)
    assert str(err.value).startswith("1 problem(s)")
    assert (f"mav3d/a_panda_dancing: video.mp4 in {folder} changed since it was written (its SHA-256 differs from "
            "the manifest's video_sha256") in str(err.value)
    assert "import panda.mp4 again with `fourdfy import-videos SRC --method mav3d" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_root_given_twice_is_one_set_of_artifacts_and_a_real_copy_is_a_problem(study_inputs, tmp_path):
    arts, prompts_dir, design = study_inputs
    built = build_bundle(design, [arts, arts], tmp_path / "out", prompts_dir=prompts_dir)  # no false duplicate
    assert len(built.questions) == len(load_bundle(tmp_path / "out").questions)
    twin = tmp_path / "twin"
    shutil.copytree(arts / "mav3d", twin / "mav3d")
    with pytest.raises(BundleError, match="mav3d/a_panda_dancing: found in two artifact folders"):
        build_bundle(design, [arts, twin], tmp_path / "out2", prompts_dir=prompts_dir)


def test_missing_decoy_and_existing_output(study_inputs, tmp_path, bundle):
    arts, prompts_dir, design = study_inputs
    no_decoy = tmp_path / "arts"
    shutil.copytree(arts, no_decoy)
    shutil.rmtree(no_decoy / "attention_decoy")
    with pytest.raises(BundleError, match="no videos of the decoy 'attention_decoy'"):
        build_bundle(design, [no_decoy], tmp_path / "out", prompts_dir=prompts_dir)
    with pytest.raises(BundleError, match="already exists"):
        build_bundle(design, [arts], bundle.root, prompts_dir=prompts_dir)


def test_a_bundle_written_by_another_build_meanwhile_is_kept(study_inputs, tmp_path, monkeypatch):
    """Two builds to one folder: both find it free at the start, and the later to finish used to stop on a raw
    OSError (a rename onto a non-empty folder). It is now a BundleError naming the folder; the other build's bundle
    (and the votes a served one holds) is left as it is, and this build's temporary is gone."""
    import userstudy.survey.bundle as bundle_mod

    arts, prompts_dir, design = study_inputs
    out = tmp_path / "out"
    remux = bundle_mod._remux

    def other_build_finishes(src, dst):  # the first video of this build: the other build's bundle lands
        if not out.exists():
            out.mkdir()
            (out / "bundle.json").write_text("the other build's")
        remux(src, dst)

    monkeypatch.setattr(bundle_mod, "_remux", other_build_finishes)
    with pytest.raises(BundleError, match="was written by another build while this one ran") as err:
        build_bundle(design, [arts], out, prompts_dir=prompts_dir)
    assert str(out) in str(err.value)
    assert [p.name for p in out.iterdir()] == ["bundle.json"] and (out / "bundle.json").read_text() == "the other build's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left beside it


def test_allow_missing_leaves_out_questions_without_both_videos_and_lists_them(study_inputs, tmp_path):
    arts, prompts_dir, design = study_inputs
    partial = partial_artifacts(arts, tmp_path / "arts")
    b = build_bundle(design, [partial], tmp_path / "out", prompts_dir=prompts_dir, allow_missing=True)
    full = build_bundle(design, [arts], tmp_path / "full", prompts_dir=prompts_dir)
    kept = {q.question_id for q in b.questions}
    assert kept == {q.question_id for q in full.questions} - {"mav3d__a_panda_dancing",
                                                                "check__attention_decoy__a_goat_drinking_beer"}
    listed = json.loads((b.root / BUNDLE_FILE).read_text())["missing"]
    assert any(m.startswith("mav3d/a_panda_dancing: missing") for m in listed)
    assert any("decoy 'attention_decoy'" in m for m in listed)
    # a mismatched video is still an error
    (partial / "4dfy" / "a_goat_drinking_beer" / "video.mp4").write_bytes(b"not a video")
    with pytest.raises(BundleError, match="cannot be read"):
        build_bundle(design, [partial], tmp_path / "out2", prompts_dir=prompts_dir, allow_missing=True)

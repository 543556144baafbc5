"""validate_artifact (and `clipscore`, before any scoring) checks video.mp4's bytes against the manifest's `video_sha256`: a video replaced by another of
the same frame count and size decodes and counts like the one written, so only its digest tells them apart (it used
to pass, and `fourdfy validate-artifacts` called it ok). A manifest of an earlier version, without the digest, still
passes."""

from __future__ import annotations

import json

from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from evaluation.artifacts import validate_artifact, write_artifact
from evaluation.video import decode_video, encode_video
from pipelines.cli import app

runner = CliRunner()
IMPORTED = {"kind": "import", "file": "a_panda_dancing.mp4", "sha256": "0" * 64}
RENDERED = {"kind": "render", "run": "4dfy-a_panda_dancing", "config_hash": "0" * 16}


def _write(root, method, source):
    return write_artifact(root, method, "A panda dancing.", make_frames(6, 16, 24), source=source,
                          trajectory="orbit", fps=15)


def _replace(art) -> None:
    """Another video of the same frame count and size in the place of the written one."""
    encode_video(art.video_path, make_frames(6, 16, 24, seed=40), fps=15)
    assert decode_video(art.video_path).shape == (6, 16, 24, 3)


def test_the_untouched_artifact_passes(tmp_path):
    art = _write(tmp_path, "mav3d", IMPORTED)
    assert art.manifest["video_sha256"] and validate_artifact(art.folder) == []


def test_a_replaced_video_of_the_same_frames_and_size_fails(tmp_path):
    imported = _write(tmp_path, "mav3d", IMPORTED)
    rendered = _write(tmp_path, "4dfy", RENDERED)
    for art in (imported, rendered):
        _replace(art)
    changed = (" changed since it was written (its SHA-256 differs from the manifest's video_sha256: truncated, "
               "corrupted or replaced), so it is not the video written there; ")
    assert validate_artifact(imported.folder) == [
        f"video.mp4 in {imported.folder}{changed}import a_panda_dancing.mp4 again with `fourdfy import-videos SRC "
        "--method mav3d --out ROOT --overwrite`"]
    assert validate_artifact(rendered.folder) == [
        f"video.mp4 in {rendered.folder}{changed}render run 4dfy-a_panda_dancing again with `fourdfy render RUN "
        "--out ROOT --overwrite`"]
    # the command names it BAD (exit 1) instead of ok
    res = runner.invoke(app, ["validate-artifacts", str(tmp_path)])
    assert res.exit_code == 1, res.output
    assert sorted(ln.split(":")[0] for ln in res.stdout.splitlines()) == \
        [f"BAD {rendered.folder}", f"BAD {imported.folder}"]


def test_a_manifest_without_the_digest_still_passes(tmp_path):
    art = _write(tmp_path, "mav3d", IMPORTED)
    manifest = json.loads((art.folder / "manifest.json").read_text())
    del manifest["video_sha256"]  # as an earlier version wrote it
    (art.folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _replace(art)  # nothing records the bytes: frames, size and codec are all there is to check
    assert validate_artifact(art.folder) == []


def test_a_truncated_video_names_both_the_decoding_and_the_digest(tmp_path):
    art = _write(tmp_path, "mav3d", IMPORTED)
    data = art.video_path.read_bytes()
    art.video_path.write_bytes(data[:len(data) // 2])
    problems = validate_artifact(art.folder)
    assert len(problems) == 2 and problems[0].startswith("video.mp4")
    assert problems[1].startswith(f"video.mp4 in {art.folder} changed since it was written")
    art.video_path.unlink()  # missing: said once, not as a changed digest too
    assert validate_artifact(art.folder) == ["video.mp4 is missing"]


def test_clipscore_refuses_a_replaced_video_before_scoring(tmp_path, tiny_clip, monkeypatch):
    """A score of the replacement would be reported as the imported video's: refused before the model loads, with
    no output folder, naming the folder and the re-import; the other artifact's being fine changes nothing."""
    import evaluation.clip as clip_mod

    good = _write(tmp_path / "art", "4dfy", RENDERED)
    art = _write(tmp_path / "art", "mav3d", IMPORTED)
    _replace(art)
    scored = []
    monkeypatch.setattr(clip_mod, "score_frames", lambda *a, **k: scored.append(1) / 0)
    args = ["clipscore", str(tmp_path / "art"), "--out", str(tmp_path / "clip"), "--clip-model", str(tiny_clip),
            "--resamples", "200", "--device", "cpu", "--no-progress"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and scored == [] and not (tmp_path / "clip").exists()
    assert error_lines(res) == [
        f"error: 1 artifact(s) whose video changed since it was written; nothing was scored: video.mp4 in "
        f"{art.folder} changed since it was written (its SHA-256 differs from the manifest's video_sha256: "
        "truncated, corrupted or replaced), so it is not the video written there; import a_panda_dancing.mp4 "
        "again with `fourdfy import-videos SRC --method mav3d --out ROOT --overwrite`"]
    assert validate_artifact(good.folder) == []

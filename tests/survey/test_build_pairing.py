"""What `fourdfy survey build` checks about the two videos of a question: their prompt texts must be the
same (an error naming the slug, both methods and both texts, nothing written), and videos that differ in
frame count, size, fps or trajectory are allowed (published videos of another method) but noted, one line
per method pair."""

import shutil

import pytest
import yaml
from survey_helpers import PROMPTS, STUDY, write_artifact, write_video
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.survey import load_bundle

runner = CliRunner()
PANDA, GOAT = "a_panda_dancing", "a_goat_drinking_beer"
NO_PROMPT_SET = {"name": "free", "primary": "4dfy", "tables": {"t": {"sections": [{"rows": ["4dfy", "mav3d"]}]}},
                 "attention_check": {"correct_method": "4dfy", "decoys": ["attention_decoy"]}}


def _build(tmp_path, design, arts, prompts_dir=None):
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(design, allow_unicode=True), encoding="utf-8")
    extra = ["--prompts-dir", str(prompts_dir)] if prompts_dir else []
    return runner.invoke(app, ["survey", "build", "--design", str(path), "--artifacts", str(arts), *extra,
                               "--out", str(tmp_path / "b")])


def _nothing_written(tmp_path):
    return not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.*"))


@pytest.mark.parametrize("design", ["no prompt_set", "prompt_set"])
def test_a_question_whose_videos_have_different_prompt_texts_is_refused(study_inputs, tmp_path, design):
    """The tester's case: one method trained on "A panda dancing", the other on "A panda dancing."."""
    arts, prompts_dir, _ = study_inputs
    copy = tmp_path / "arts"
    shutil.copytree(arts, copy)
    shutil.rmtree(copy / "mav3d" / PANDA)
    write_artifact(copy, "mav3d", PANDA, "A panda dancing", 7)
    res = _build(tmp_path, NO_PROMPT_SET if design == "no prompt_set" else STUDY, copy, prompts_dir)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: 1 problem(s)"), res.output
    if design == "no prompt_set":
        assert (f"- {PANDA}: the prompt texts differ, 4dfy has 'A panda dancing.' and mav3d has 'A panda dancing'"
                in res.output), res.output
    else:  # each video is compared with the prompt file's text
        assert (f"- mav3d/{PANDA}: manifest prompt 'A panda dancing' differs from the prompt file's "
                "'A panda dancing.'" in res.output), res.output
    assert "Traceback" not in res.output and _nothing_written(tmp_path)


def test_an_attention_check_decoy_with_another_prompt_text_is_refused(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    copy = tmp_path / "arts"
    shutil.copytree(arts, copy)
    shutil.rmtree(copy / "attention_decoy" / GOAT)
    write_artifact(copy, "attention_decoy", GOAT, "A goat drinking wine.", 8)
    res = _build(tmp_path, STUDY, copy, prompts_dir)
    assert res.exit_code == 2, res.output
    assert (f"- {GOAT}: the prompt texts differ, 4dfy has 'A goat drinking beer.' and attention_decoy has "
            "'A goat drinking wine.'" in res.output), res.output
    assert _nothing_written(tmp_path)


def test_alike_videos_build_without_a_note(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    res = _build(tmp_path, STUDY, arts, prompts_dir)
    assert res.exit_code == 0, res.output
    assert "note:" not in res.output and load_bundle(tmp_path / "b").questions


def _unlike(root, method, slug, seed, n_frames=24):
    """An artifact like an imported published video: more frames, larger, another fps and trajectory."""
    folder = write_artifact(root, method, slug, PROMPTS[slug], seed, trajectory="motion_smooth", n_frames=n_frames,
                            width=48, height=48, fps=12)
    write_video(folder / "video.mp4", seed, n_frames=n_frames, size=48, fps=12)


def test_unlike_videos_build_with_one_note_per_method_pair(tmp_path):
    arts = tmp_path / "arts"
    slugs = list(PROMPTS)
    for i, slug in enumerate(slugs):
        write_artifact(arts, "4dfy", slug, PROMPTS[slug], i)
        write_artifact(arts, "mav3d", slug, PROMPTS[slug], 10 + i)  # alike: no note
        if i < 2:
            _unlike(arts, "myvid", slug, 20 + i)
        else:
            write_artifact(arts, "myvid", slug, PROMPTS[slug], 20 + i)
    write_artifact(arts, "attention_decoy", GOAT, PROMPTS[GOAT], 30)
    design = {**NO_PROMPT_SET, "tables": {"t": {"sections": [{"rows": ["4dfy", "mav3d", "myvid"]}]}}}
    res = _build(tmp_path, design, arts)
    assert res.exit_code == 0, res.output
    notes = [ln for ln in res.stderr.splitlines() if ln.startswith("note: ")]
    assert notes == ["note: 4dfy vs myvid: frames 16 vs 24, size 32x32 vs 48x48, fps 8 vs 12, trajectory orbit vs "
                     f"motion_smooth (2 of {len(slugs)} questions)"], res.output
    bundle = load_bundle(tmp_path / "b")
    assert len([q for q in bundle.questions if not q.is_attention_check]) == 2 * len(slugs)  # still built

    # every question of a pair unlike, and the values of several questions listed once each
    shutil.rmtree(arts / "myvid" / slugs[2])
    _unlike(arts, "myvid", slugs[2], 40, n_frames=30)
    shutil.rmtree(tmp_path / "b")
    res = _build(tmp_path, design, arts)
    assert res.exit_code == 0, res.output
    notes = [ln for ln in res.stderr.splitlines() if ln.startswith("note: ")]
    assert notes == ["note: 4dfy vs myvid: frames 16 vs 24/30, size 32x32 vs 48x48, fps 8 vs 12, trajectory orbit vs "
                     f"motion_smooth ({len(slugs)} questions)"], res.output


def test_training_runs_given_as_artifacts_are_named_as_runs_to_render(tmp_path):
    """`--artifacts runs` used to list every video as missing and each run's `ckpt/` as a prompt folder. Runs by
    hand lie at runs/<name>/, the pipeline's at runs/<profile>/<method>/<slug>/ (the artifacts' own layout)."""
    import json

    def run(folder):
        (folder / "ckpt").mkdir(parents=True)
        (folder / "ckpt" / "last.pt").write_bytes(b"weights")
        (folder / "manifest.json").write_text(json.dumps({"method": folder.name, "prompt": "A panda dancing.",
                                                          "config_hash": "abc", "config": {}}))

    runs, pipeline = tmp_path / "runs", tmp_path / "pipeline-runs"
    for name in ("4dfy", "mav3d"):
        run(runs / name)
        run(pipeline / "tiny" / name / PANDA)
    render = "not evaluation videos: render each with `fourdfy render RUN --out ARTIFACTS` and give ARTIFACTS"
    cases = ((runs, f"--artifacts {runs} holds training runs (`fourdfy generate` wrote them: 4dfy, mav3d), {render}"),
             (runs / "4dfy", f"--artifacts {runs / '4dfy'} is a training run (`fourdfy generate` wrote it), {render}"),
             (pipeline / "tiny", f"--artifacts {pipeline / 'tiny'} holds training runs (`fourdfy generate` wrote "
                                 f"them: 4dfy/{PANDA}, mav3d/{PANDA}), {render}"),
             (pipeline, f"--artifacts {pipeline} holds training runs (`fourdfy generate` wrote them: "
                        f"tiny/4dfy/{PANDA}, tiny/mav3d/{PANDA}), {render}"))
    for arts, says in cases:
        res = _build(tmp_path, NO_PROMPT_SET, arts)
        assert res.exit_code == 2 and says in res.output, res.output
        assert "ckpt" not in res.output and "manifest" not in res.output and _nothing_written(tmp_path)


def test_the_bundle_keeps_the_design_labels_the_admin_tally_shows(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    design = {**NO_PROMPT_SET, "methods": {"4dfy": {"label": "4D-fy"}, "mav3d": {"label": "MAV3D", "latex": "MAV3D"}}}
    res = _build(tmp_path, design, arts)
    assert res.exit_code == 0, res.output
    d = load_bundle(tmp_path / "b").design
    assert d.label("4dfy") == "4D-fy" and d.label("mav3d") == "MAV3D" and d.label("attention_decoy") == "attention_decoy"

"""`fourdfy survey build` names the artifacts it leaves out because the design lists no question for their
method, and warns about questions whose two videos are byte-identical."""

import shutil

import yaml
from survey_helpers import PROMPTS, STUDY, write_artifact
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def _build(tmp_path, prompts_dir, arts, *extra):
    design = tmp_path / "design.yaml"
    design.write_text(yaml.safe_dump(STUDY, allow_unicode=True), encoding="utf-8")
    return runner.invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(arts),
                               "--prompts-dir", str(prompts_dir), "--out", str(tmp_path / "b"), *extra])


def _lines(res, kind: str) -> list[str]:
    return [ln for ln in res.stderr.splitlines() if ln.startswith(f"{kind}: ")]


def test_artifacts_of_a_method_the_design_does_not_list_are_noted(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    own = tmp_path / "arts"
    shutil.copytree(arts, own)
    write_artifact(own, "swift4d", "a_panda_dancing", PROMPTS["a_panda_dancing"], 70)  # the user's plug-in
    res = _build(tmp_path, prompts_dir, own)
    assert res.exit_code == 0, res.output
    notes = [ln for ln in _lines(res, "note") if "lists no question" in ln]
    assert len(notes) == 1, res.stderr
    assert "swift4d" in notes[0] and "--design" in notes[0] and '"Design file"' in notes[0]
    # the decoy and the compared methods are listed by the design: not named
    assert "attention_decoy" not in notes[0] and "mav3d" not in notes[0] and "wo_3d" not in notes[0]


def test_a_full_design_build_has_no_unlisted_note(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    res = _build(tmp_path, prompts_dir, arts)
    assert res.exit_code == 0, res.output
    assert not [ln for ln in _lines(res, "note") if "lists no question" in ln], res.stderr


def test_many_unlisted_methods_are_named_a_few_then_counted(tmp_path, study_inputs):
    arts, prompts_dir, _ = study_inputs
    own = tmp_path / "arts"
    shutil.copytree(arts, own)
    for k, method in enumerate(("m5", "m1", "m4", "m2", "m3")):
        write_artifact(own, method, "a_panda_dancing", PROMPTS["a_panda_dancing"], 80 + k)
    res = _build(tmp_path, prompts_dir, own)
    assert res.exit_code == 0, res.output
    notes = [ln for ln in _lines(res, "note") if "lists no question" in ln]
    assert len(notes) == 1 and "m1, m2, m3 and 2 more" in notes[0], res.stderr


def test_no_question_error_names_the_unlisted_methods(tmp_path, study_inputs):
    _, prompts_dir, _ = study_inputs
    own = tmp_path / "arts"
    for slug, text in PROMPTS.items():
        write_artifact(own, "swift4d", slug, text, 90)
    res = _build(tmp_path, prompts_dir, own, "--allow-missing")
    assert res.exit_code == 2
    err = " ".join(res.stderr.split())  # the error may be wrapped
    assert "no question has videos of both its methods" in err
    assert "swift4d" in err and "lists no question" in err and "--design" in err
    assert not (tmp_path / "b").exists()


def test_identical_videos_of_a_question_are_warned_about(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    own = tmp_path / "arts"
    shutil.copytree(arts, own)
    # the ablation's run never changed anything: its video is the primary's, byte for byte
    shutil.copyfile(own / "4dfy" / "a_panda_dancing" / "video.mp4", own / "wo_3d" / "a_panda_dancing" / "video.mp4")
    res = _build(tmp_path, prompts_dir, own)
    assert res.exit_code == 0, res.output
    warnings = [ln for ln in _lines(res, "warning") if "identical" in ln]
    assert len(warnings) == 1, res.stderr
    assert "wo_3d__a_panda_dancing" in warnings[0] and "1 question" in warnings[0]
    assert "mav3d__" not in warnings[0]


def test_distinct_videos_get_no_identical_warning(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    res = _build(tmp_path, prompts_dir, arts)
    assert res.exit_code == 0, res.output
    assert not [ln for ln in _lines(res, "warning") if "identical" in ln], res.stderr

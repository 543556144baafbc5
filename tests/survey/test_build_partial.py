"""`fourdfy survey build` says what a partial (--allow-missing) bundle lacks, and a build that fails
for missing videos points at --allow-missing."""

import json
import shutil

import yaml
from survey_helpers import PROMPTS, STUDY, partial_artifacts, write_artifact
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.survey import load_bundle
from userstudy.survey.bundle import BUNDLE_FILE

runner = CliRunner()


def _build(tmp_path, prompts_dir, arts, out, *extra):
    design = tmp_path / "design.yaml"
    design.write_text(yaml.safe_dump(STUDY, allow_unicode=True), encoding="utf-8")
    return runner.invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(arts),
                               "--prompts-dir", str(prompts_dir), "--out", str(out), *extra])


def _warnings(res) -> list[str]:
    return [ln for ln in res.stderr.splitlines() if ln.startswith("warning: ")]


def test_full_build_has_no_warnings(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    res = _build(tmp_path, prompts_dir, arts, tmp_path / "b")
    assert res.exit_code == 0, res.output
    assert _warnings(res) == [] and load_bundle(tmp_path / "b").left_out == ()


def test_allow_missing_says_how_many_questions_and_checks_were_left_out(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    partial = partial_artifacts(arts, tmp_path / "arts")
    out = tmp_path / "b"
    res = _build(tmp_path, prompts_dir, partial, out, "--allow-missing")
    assert res.exit_code == 0, res.output
    assert "3 questions (0 attention checks)" in res.stdout
    warnings = _warnings(res)
    assert len(warnings) == 2, res.stderr
    assert "left out 1 of 4 questions" in warnings[0] and "partial demo bundle" in warnings[0]
    assert str(out / BUNDLE_FILE) in warnings[0] and '"left_out"' in warnings[0]
    assert "NO attention checks" in warnings[1] and "attention_decoy" in warnings[1]
    data = json.loads((out / BUNDLE_FILE).read_text())
    assert data["left_out"] == ["mav3d__a_panda_dancing"]  # the list the warning points to
    assert load_bundle(out).left_out == ("mav3d__a_panda_dancing",)


def test_allow_missing_counts_left_out_attention_checks(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    partial = tmp_path / "arts"
    shutil.copytree(arts, partial)
    write_artifact(partial, "attention_decoy", "a_panda_dancing", PROMPTS["a_panda_dancing"], 61)
    shutil.rmtree(partial / "4dfy" / "a_goat_drinking_beer")  # its mav3d question and check go
    res = _build(tmp_path, prompts_dir, partial, tmp_path / "b", "--allow-missing")
    assert res.exit_code == 0, res.output
    assert "4 questions (1 attention check)" in res.stdout
    warnings = _warnings(res)
    assert len(warnings) == 2, res.stderr
    assert "left out 1 of 4 questions" in warnings[0]
    assert "left out 1 of 2 attention checks" in warnings[1]


def test_missing_videos_error_ends_with_the_allow_missing_hint(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    partial = tmp_path / "arts"
    shutil.copytree(arts, partial)
    shutil.rmtree(partial / "mav3d" / "a_panda_dancing")
    res = _build(tmp_path, prompts_dir, partial, tmp_path / "b")
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    last = res.stderr.strip().splitlines()[-1]
    assert "--allow-missing" in last and "must be fixed" not in last
    assert not (tmp_path / "b").exists()
    # a problem --allow-missing cannot fix (a second root that does not exist) is named as such
    res = _build(tmp_path, prompts_dir, partial, tmp_path / "b", "--artifacts", str(tmp_path / "nowhere"))
    last = res.stderr.strip().splitlines()[-1]
    assert res.exit_code == 2 and "--allow-missing" in last and "other 1 problem(s) must be fixed" in last
    # no root at all: that alone, with no hint (--allow-missing would leave no question)
    res = _build(tmp_path, prompts_dir, tmp_path / "nowhere", tmp_path / "b")
    assert res.exit_code == 2 and "--allow-missing" not in res.stderr and "artifacts folder not found" in res.stderr
    # a mismatched video alone: --allow-missing would not help, so no hint
    (partial / "mav3d" / "a_panda_dancing").mkdir()
    shutil.copytree(arts / "mav3d" / "a_panda_dancing", partial / "mav3d" / "a_panda_dancing", dirs_exist_ok=True)
    (partial / "wo_3d" / "a_panda_dancing" / "video.mp4").write_bytes(b"not a video")
    res = _build(tmp_path, prompts_dir, partial, tmp_path / "b")
    assert res.exit_code == 2 and "cannot be read" in res.stderr and "--allow-missing" not in res.stderr

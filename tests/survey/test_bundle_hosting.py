"""Hosting a bundle safely: `serve` never creates its database inside a DVC stage's output (the pipeline's
build/survey, which `dvc repro` deletes and rebuilds) and warns about one already there; media/ holds only the
videos of the bundle's questions; the bundle folder gets a plain mkdir's permissions; the consent page of a
1-question bundle says "1 question"."""

import os
import shutil
import stat

import pytest
import yaml
from survey_helpers import REPO, STUDY, answer_all, app_run, at, free_port
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.survey import build_bundle, load_bundle, store
from userstudy.survey.hosting import dvc_output_stage

runner = CliRunner()



def _project(root, outs, params=None):
    """A DVC project folder: dvc.yaml with a `survey_bundle` stage writing `outs`, params.yaml, data/study/."""
    root.mkdir(parents=True, exist_ok=True)
    (root / ".dvc").mkdir(exist_ok=True)
    stages = {"design": {"cmd": "true", "outs": ["build/design.yaml"]},
              "survey_bundle": {"cmd": "fourdfy survey build", "deps": ["build/design.yaml"], "outs": outs}}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}), encoding="utf-8")
    (root / "params.yaml").write_text(yaml.safe_dump(params or {"profile": "tiny"}), encoding="utf-8")
    (root / "data" / "study").mkdir(parents=True, exist_ok=True)
    return root


def _error_line(res) -> str:
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


# --- 1. the votes never go where `dvc repro` deletes them --------------------------------------------------------

def test_the_pipelines_bundle_folder_is_a_dvc_output():
    """The repository's own dvc.yaml: build/survey (docs/pipeline.md's suggestion to serve) is survey_bundle's."""
    found = dvc_output_stage(REPO / "build" / "survey")
    assert found is not None and found.stage == "survey_bundle" and found.exact
    assert dvc_output_stage(REPO / "outputs" / "study") is None
    assert dvc_output_stage(REPO / "data" / "study") is None


@pytest.mark.parametrize("outs, params, stage", [
    (["build/survey"], None, "survey_bundle"),
    ([{"build/survey": {"cache": False}}], None, "survey_bundle"),          # the mapping spelling
    (["build/${study.folder}"], {"study": {"folder": "survey"}}, "survey_bundle"),  # resolved from params.yaml
    (["build"], None, "survey_bundle"),                                     # an output holding the folder
    (["build/${item.name}"], None, None),                                   # a matrix variable: not resolved
    (["build/${missing}"], None, None),
    (["build/survey-2"], None, None),
    (["build/survey/media"], None, None),                                   # an output inside the folder
])
def test_dvc_output_stage_reads_outs(tmp_path, outs, params, stage):
    project = _project(tmp_path / "proj", outs, params)
    found = dvc_output_stage(project / "build" / "survey")
    assert (found.stage if found else None) == stage


def test_dvc_output_stage_stops_at_the_project_root(tmp_path):
    """A dvc.yaml above the DVC project's root (`.dvc/`) is another project's: it names none of this one's folders."""
    _project(tmp_path, ["inner/build/survey"])
    inner = tmp_path / "inner"
    (inner / ".dvc").mkdir(parents=True)
    assert dvc_output_stage(inner / "build" / "survey") is None
    shutil.rmtree(inner / ".dvc")
    assert dvc_output_stage(inner / "build" / "survey").stage == "survey_bundle"


def test_serve_refuses_a_new_database_inside_a_dvc_output(study_inputs, tmp_path, monkeypatch, fake_exec):
    """`fourdfy survey serve build/survey` without --db would create build/survey/survey.sqlite, which the next
    `dvc repro` deletes with the folder: refused in one line naming the stage and a database outside it; that
    database then serves."""
    arts, prompts_dir, design = study_inputs
    project = _project(tmp_path / "proj", ["build/survey"])
    build_bundle(design, [arts], project / "build" / "survey", prompts_dir=prompts_dir)
    monkeypatch.chdir(project)
    monkeypatch.delenv(store.DB_ENV, raising=False)
    port = str(free_port())

    res = runner.invoke(app, ["survey", "serve", "build/survey", "--port", port])
    assert res.exit_code == 2, res.output
    line = _error_line(res)
    assert "build/survey/survey.sqlite" in line and "DVC stage survey_bundle (dvc.yaml)" in line, line
    assert "`dvc repro` replaces that folder and would delete the votes" in line, line
    assert line.endswith("e.g. --db sqlite:///data/study/survey.sqlite"), line
    assert str(tmp_path) not in line  # paths as given, relative
    assert not list((project / "build" / "survey").glob("survey.sqlite*")) and fake_exec == []

    # the same through an explicit --db into the folder, or the environment variable
    res = runner.invoke(app, ["survey", "serve", "build/survey", "--port", port,
                              "--db", "sqlite:///build/survey/votes.sqlite"])
    assert res.exit_code == 2 and "(from --db)" in _error_line(res)
    monkeypatch.setenv(store.DB_ENV, "sqlite:///build/survey/votes.sqlite")
    res = runner.invoke(app, ["survey", "serve", "build/survey", "--port", port])
    assert res.exit_code == 2 and "DVC stage survey_bundle" in _error_line(res)
    monkeypatch.delenv(store.DB_ENV)
    assert fake_exec == []

    # the database the message suggests: served, with one warning that the bundle folder itself is rebuilt by dvc
    res = runner.invoke(app, ["survey", "serve", "build/survey", "--port", port,
                              "--db", "sqlite:///data/study/survey.sqlite"])
    assert res.exit_code == 0, res.output
    (warning,) = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert "DVC stage survey_bundle" in warning and "cp -r build/survey outputs/survey" in warning, warning
    assert (project / "data" / "study" / "survey.sqlite").is_file()
    assert fake_exec and fake_exec[-1][store.DB_ENV] == "sqlite:///data/study/survey.sqlite"


def test_serve_outside_dvc_outputs_is_unchanged(study_inputs, tmp_path, monkeypatch, fake_exec):
    """A bundle built by hand (outputs/study, no stage writes it) keeps its default database, without a word."""
    arts, prompts_dir, design = study_inputs
    project = _project(tmp_path / "proj", ["build/survey"])
    build_bundle(design, [arts], project / "outputs" / "study", prompts_dir=prompts_dir)
    monkeypatch.chdir(project)
    monkeypatch.delenv(store.DB_ENV, raising=False)
    res = runner.invoke(app, ["survey", "serve", "outputs/study", "--port", str(free_port())])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output and (project / "outputs" / "study" / "survey.sqlite").is_file()


def test_serve_warns_about_a_database_already_inside_a_dvc_output(study_inputs, tmp_path, monkeypatch, fake_exec):
    """A bundle served before this check holds its raters' votes in build/survey/survey.sqlite: refusing it would
    strand them, so `serve` starts, with one warning line giving the export command (which works)."""
    arts, prompts_dir, design = study_inputs
    project = _project(tmp_path / "proj", ["build/survey"])
    bundle = build_bundle(design, [arts], project / "build" / "survey", prompts_dir=prompts_dir)
    monkeypatch.chdir(project)
    monkeypatch.delenv(store.DB_ENV, raising=False)
    engine = store.make_engine("sqlite:///build/survey/survey.sqlite")
    store.init_db(engine, bundle.bundle_id)
    answer_all(engine, bundle, store.create_rater(engine, bundle.questions, at(0), seed=1), lambda q, p: p, now=at(1))
    engine.dispose()

    res = runner.invoke(app, ["survey", "serve", "build/survey", "--port", str(free_port())])
    assert res.exit_code == 0, res.output
    assert fake_exec and fake_exec[-1][store.DB_ENV] == "sqlite:///build/survey/survey.sqlite"
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1, res.stderr
    line = warnings[0]
    assert "DVC stage survey_bundle (dvc.yaml)" in line and "the next `dvc repro`" in line, line
    assert "e.g. --db sqlite:///data/study/survey.sqlite" in line, line
    command = line.split("Export them first (", 1)[1].split(")", 1)[0]
    assert command == ("fourdfy survey export --db sqlite:///build/survey/survey.sqlite "
                       "--out data/study/votes.csv"), line
    res = runner.invoke(app, command.split()[1:])
    assert res.exit_code == 0, res.output
    assert (project / "data" / "study" / "votes.csv").is_file()


# --- 2. and 5. a partial bundle: only its questions' videos, and "1 question" -------------------------------------

@pytest.fixture()
def one_question_bundle(study_inputs, tmp_path):
    """--allow-missing with only 4dfy's and wo_3d's videos: one question (wo_3d on a_panda_dancing); the three
    mav3d questions are left out, and 4dfy's videos of two of them are used by no question."""
    arts, prompts_dir, _ = study_inputs
    partial = tmp_path / "arts"
    shutil.copytree(arts, partial)
    shutil.rmtree(partial / "mav3d")
    shutil.rmtree(partial / "attention_decoy")
    design = tmp_path / "design.yaml"
    design.write_text(yaml.safe_dump(STUDY, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "study"
    res = runner.invoke(app, ["survey", "build", "--design", str(design), "--artifacts", str(partial),
                              "--prompts-dir", str(prompts_dir), "--out", str(out), "--allow-missing"])
    assert res.exit_code == 0, res.output
    return out, res


def test_media_holds_only_the_videos_of_the_bundles_questions(one_question_bundle):
    out, res = one_question_bundle
    bundle = load_bundle(out)
    assert [q.question_id for q in bundle.questions] == ["wo_3d__a_panda_dancing"]
    used = {v for q in bundle.questions for v in (q.video_a, q.video_b)}
    assert {p.name for p in (out / "media").iterdir()} == used
    assert f", {len(used)} videos -> " in res.stdout  # the count reported is the files written


def test_consent_page_of_a_one_question_bundle(one_question_bundle, tmp_path, monkeypatch):
    out, _ = one_question_bundle
    monkeypatch.setenv("FOURDFY_SURVEY_BUNDLE", str(out))
    monkeypatch.setenv(store.DB_ENV, f"sqlite:///{tmp_path / 'app.sqlite'}")
    monkeypatch.delenv("FOURDFY_SURVEY_ADMIN_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)
    page = app_run()
    text = " ".join(m.value for m in page.markdown)
    assert "You will see **1 question**." in text and "1 questions" not in text


# --- 4. the bundle folder is as readable as a plain mkdir's -------------------------------------------------------

@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002], ids=["022", "027", "002"])
def test_bundle_folder_gets_a_plain_mkdirs_mode(study_inputs, tmp_path, umask):
    """A web server run by another user reads media/ (mode from the umask): it must be able to enter the bundle
    folder too, which tempfile.mkdtemp made 0700."""
    arts, prompts_dir, design = study_inputs
    old = os.umask(umask)
    try:
        (tmp_path / "plain").mkdir()
        bundle = build_bundle(design, [arts], tmp_path / "study", prompts_dir=prompts_dir)
    finally:
        os.umask(old)
    want = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert want == 0o777 & ~umask
    assert stat.S_IMODE(bundle.root.stat().st_mode) == want
    assert stat.S_IMODE((bundle.root / "media").stat().st_mode) == want
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind

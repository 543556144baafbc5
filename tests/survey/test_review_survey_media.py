"""The bundle's videos as served: `serve` refuses media files whose bytes are not the ones their names hash (swapped,
replaced or emptied since `survey build`), warns when the bundle folder is a DVC stage's output (`dvc repro` deletes
its videos under a running server), and the app tells a rater a missing video is unavailable instead of crashing."""

import os
import shutil

import pytest
import yaml
from survey_helpers import app_run, app_start, app_token, free_port, one_error_line
from typer.testing import CliRunner

from pipelines.cli import app
from userstudy.survey import BundleError, build_bundle, load_bundle, store

runner = CliRunner()


@pytest.fixture()
def own_bundle(bundle, tmp_path):
    """A copy of the session's bundle that a test may damage."""
    out = tmp_path / "study"
    shutil.copytree(bundle.root, out)
    return out


def _serve(folder, tmp_path, *more):
    return runner.invoke(app, ["survey", "serve", str(folder), "--port", str(free_port()),
                               "--db", f"sqlite:///{tmp_path / 'votes.sqlite'}", *more])


def _two_videos(folder):
    names = sorted(p.name for p in (folder / "media").iterdir())
    assert len(names) >= 2
    return names[0], names[1]


# --- 1. media files are checked against their names -----------------------------------------------------------------

def test_serve_refuses_swapped_media_files(own_bundle, tmp_path, fake_exec):
    """Two videos swapped under media/: raters' answers would be recorded under the other method."""
    a, b = _two_videos(own_bundle)
    media = own_bundle / "media"
    os.replace(media / a, media / "tmp")
    os.replace(media / b, media / a)
    os.replace(media / "tmp", media / b)
    load_bundle(own_bundle)  # bundle.json still reads; the bytes are what differ
    res = _serve(own_bundle, tmp_path)
    assert res.exit_code == 2, res.output
    line = one_error_line(res)
    assert a in line and b in line and "fourdfy survey build" in line, line
    assert "2 video(s)" in line, line
    assert fake_exec == [] and not (tmp_path / "votes.sqlite").exists()


def test_serve_refuses_an_emptied_video(own_bundle, tmp_path, fake_exec):
    a, b = _two_videos(own_bundle)
    (own_bundle / "media" / a).write_bytes(b"")
    res = _serve(own_bundle, tmp_path)
    assert res.exit_code == 2, res.output
    line = one_error_line(res)
    assert a in line and b not in line and "build the bundle again" in line, line
    assert fake_exec == []


def test_serve_of_an_intact_bundle_passes_the_media_check(own_bundle, tmp_path, fake_exec):
    res = _serve(own_bundle, tmp_path)
    assert res.exit_code == 0, res.output
    assert fake_exec and "error" not in res.output


def test_verify_media_names_every_mismatch(own_bundle):
    from userstudy.survey.bundle import verify_media

    bundle = load_bundle(own_bundle)
    verify_media(bundle)  # as built: nothing to say
    names = sorted(p.name for p in (own_bundle / "media").iterdir())
    for name in names[:2]:
        with open(own_bundle / "media" / name, "ab") as fh:
            fh.write(b"\0")
    with pytest.raises(BundleError) as info:
        verify_media(bundle)
    message = str(info.value)
    assert all(name in message for name in names[:2]) and names[2] not in message
    assert "\n" not in message


# --- 2. a bundle folder that `dvc repro` rebuilds -------------------------------------------------------------------

def _project(root):
    """A DVC project whose `survey_bundle` stage outputs build/survey (as the repository's dvc.yaml)."""
    (root / ".dvc").mkdir(parents=True)
    stages = {"survey_bundle": {"cmd": "fourdfy survey build", "outs": ["build/survey"]}}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}), encoding="utf-8")
    (root / "params.yaml").write_text("profile: tiny\n", encoding="utf-8")
    (root / "data" / "study").mkdir(parents=True)
    return root


def test_serve_warns_when_the_bundle_is_a_dvc_output_and_its_copy_serves(study_inputs, tmp_path, monkeypatch,
                                                                           fake_exec):
    arts, prompts_dir, design = study_inputs
    project = _project(tmp_path / "proj")
    built = build_bundle(design, [arts], project / "build" / "survey", prompts_dir=prompts_dir)
    monkeypatch.chdir(project)
    monkeypatch.delenv(store.DB_ENV, raising=False)
    db = ["--db", "sqlite:///data/study/survey.sqlite"]

    res = runner.invoke(app, ["survey", "serve", "build/survey", "--port", str(free_port()), *db])
    assert res.exit_code == 0, res.output  # warned, not refused: the database is outside the folder
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1, res.stderr
    line = warnings[0]
    assert "build/survey" in line and "DVC stage survey_bundle (dvc.yaml)" in line, line
    assert "`dvc repro`" in line and "cp -r build/survey outputs/survey" in line, line
    assert str(tmp_path) not in line

    # the copy it suggests keeps the bundle id, so it serves on the same database, without a warning
    shutil.copytree(project / "build" / "survey", project / "outputs" / "survey")
    assert load_bundle(project / "outputs" / "survey").bundle_id == built.bundle_id
    res = runner.invoke(app, ["survey", "serve", "outputs/survey", "--port", str(free_port()), *db])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output and len(fake_exec) == 2


def test_a_database_inside_the_dvc_output_bundle_gets_one_warning_line(study_inputs, tmp_path, monkeypatch,
                                                                        fake_exec):
    """A bundle served before from build/survey with its default database: the database warning says the videos go
    with the folder too, in the same one line."""
    arts, prompts_dir, design = study_inputs
    project = _project(tmp_path / "proj")
    built = build_bundle(design, [arts], project / "build" / "survey", prompts_dir=prompts_dir)
    monkeypatch.chdir(project)
    monkeypatch.delenv(store.DB_ENV, raising=False)
    engine = store.make_engine("sqlite:///build/survey/survey.sqlite")
    store.init_db(engine, built.bundle_id)
    engine.dispose()
    res = runner.invoke(app, ["survey", "serve", "build/survey", "--port", str(free_port())])
    assert res.exit_code == 0, res.output
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1, res.stderr
    assert "Export them first" in warnings[0] and "cp -r build/survey outputs/survey" in warnings[0], warnings[0]


def test_a_video_missing_mid_study_is_a_notice_not_an_error_page(own_bundle, tmp_path, monkeypatch, capfd):
    """`dvc repro` (or a hand) removed the bundle's videos under a running server: the rater's page says the video is
    unavailable, with their link to come back, and the server log names the file; once it is back the question
    shows."""
    monkeypatch.setenv("FOURDFY_SURVEY_BUNDLE", str(own_bundle))
    monkeypatch.setenv(store.DB_ENV, f"sqlite:///{tmp_path / 'app.sqlite'}")
    monkeypatch.delenv("FOURDFY_SURVEY_ADMIN_PASSWORD", raising=False)
    monkeypatch.chdir(tmp_path)
    at = app_start()
    assert len(at.get("video")) == 2 and not at.exception
    token = app_token(at)
    shutil.move(own_bundle / "media", tmp_path / "media-away")

    page = app_run({"t": token})
    assert not page.exception, page.exception
    assert any("this video is unavailable" in w.value.lower() for w in page.warning), [w.value for w in page.warning]
    assert not page.get("video") and not page.radio  # nothing to judge: no choices
    assert any(f"?t={token}" in c.value for c in page.code)  # their link, to come back
    err = capfd.readouterr().err
    assert "survey: error: video" in err and "Traceback" not in err, err

    shutil.move(tmp_path / "media-away", own_bundle / "media")
    page = app_run({"t": token})
    assert not page.exception and len(page.get("video")) == 2 and len(page.radio) == 5

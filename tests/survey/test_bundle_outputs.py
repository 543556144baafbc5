"""What `survey build` leaves on disk beyond the bundle: the temporary a `kill -9` leaves is one DVC ignores, and
bundle.json names no path of the machine it was built on."""

import fnmatch
import json
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
from survey_helpers import REPO, STUDY, partial_artifacts

from userstudy.survey import BundleError, build_bundle
from userstudy.survey.bundle import BUNDLE_FILE


def _dvcignore_patterns() -> list[str]:
    lines = (REPO / ".dvcignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_a_build_killed_outright_leaves_a_temporary_that_dvc_ignores(study_inputs, tmp_path):
    """The bundle is built in a hidden sibling; a `survey build` killed with SIGKILL mid-build (while copying the
    videos) leaves it beside build/survey, the pipeline's stage output. Its name must be one .dvcignore keeps out of
    the hashes (`.<name>.<12 hex>.tmp`), not `.<name>.<hex>` that no pattern matches."""
    arts, prompts_dir, _ = study_inputs
    project = tmp_path / "project"
    (project / ".dvc").mkdir(parents=True)
    (project / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
    shutil.copy2(REPO / ".dvcignore", project / ".dvcignore")
    out = project / "build" / "survey"
    script = textwrap.dedent(f"""
        import os, signal
        from userstudy.design import design_from_dict
        from userstudy.survey import bundle
        def killed(src, dst):
            os.kill(os.getpid(), signal.SIGKILL)  # as `kill -9` mid-build: nothing runs after it
        bundle._remux = killed
        bundle.build_bundle(design_from_dict({json.dumps(STUDY)}), [{str(arts)!r}], {str(out)!r},
                            prompts_dir={str(prompts_dir)!r})
        """)
    res = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == -signal.SIGKILL, res.stderr
    left = sorted(p.name for p in out.parent.iterdir())
    assert len(left) == 1 and re.fullmatch(r"\.survey\.[0-9a-f]{12}\.tmp", left[0]), left
    assert any(fnmatch.fnmatchcase(left[0], pattern) for pattern in _dvcignore_patterns()), left
    # and DVC itself agrees (exit code 0: ignored)
    check = subprocess.run([sys.executable, "-m", "dvc", "check-ignore", f"build/{left[0]}"], cwd=project,
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.fixture(scope="module")
def partial(study_inputs, tmp_path_factory):
    return partial_artifacts(study_inputs[0], tmp_path_factory.mktemp("partial") / "arts")


def test_missing_entries_name_the_artifacts_folders_relative_to_the_bundle(study_inputs, partial, tmp_path,
                                                                             monkeypatch):
    """`--allow-missing` lists the missing videos in bundle.json with the folders looked in: relative to the
    bundle however they were typed (absolute, or relative to the working folder), never an absolute path."""
    _, prompts_dir, design = study_inputs
    project = tmp_path / "project"
    shutil.copytree(partial, project / "artifacts" / "tiny")
    monkeypatch.chdir(project)
    listed = []
    for i, root in enumerate([project / "artifacts" / "tiny", "artifacts/tiny", "./artifacts/../artifacts/tiny"]):
        out = project / "build" / f"survey{i}"
        build_bundle(design, [root], out if i % 2 else out.relative_to(project), prompts_dir=prompts_dir,
                     allow_missing=True)
        text = (out / BUNDLE_FILE).read_text(encoding="utf-8")
        assert str(tmp_path) not in text
        listed.append(json.loads(text)["missing"])
    assert listed[0] == listed[1] == listed[2]
    assert "mav3d/a_panda_dancing: missing (looked in ../../artifacts/tiny)" in listed[0], listed[0]


def test_the_error_without_allow_missing_names_the_folder_as_given(study_inputs, partial, tmp_path):
    """A message echoes the path as the user typed it (it is no output)."""
    _, prompts_dir, design = study_inputs
    with pytest.raises(BundleError, match=re.escape(f"mav3d/a_panda_dancing: missing (looked in {partial})")):
        build_bundle(design, [partial], tmp_path / "out", prompts_dir=prompts_dir)
    assert not (tmp_path / "out").exists()

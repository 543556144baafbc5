"""What `survey build` does with the hidden temporary folders beside its bundle: one that a build killed outright
(`kill -9`, power loss) left is removed by the next build of that folder, with a `note:` line, so they never pile
up; one that a build running now is writing is left alone (it holds a lock on it for as long as it lives)."""

import errno
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import yaml
from survey_helpers import REPO, STUDY
from typer.testing import CliRunner

import userstudy.outputs as outputs_mod
import userstudy.survey.bundle as bundle_mod
from pipelines.cli import app
from userstudy.survey import build_bundle, load_bundle

runner = CliRunner()
TEMP = re.compile(r"\.survey\.[0-9a-f]{12}\.tmp")


def _build_script(arts, prompts_dir, out, remux_body: str) -> str:
    """A `survey build` of STUDY to `out` in its own process, with `_remux` (the copying of each video, inside the
    temporary folder) replaced by `remux_body`."""
    head = textwrap.dedent(f"""\
        import os, signal, sys, time
        from pathlib import Path
        from userstudy.design import design_from_dict
        from userstudy.survey import bundle
        remux = bundle._remux
        def patched(src, dst):
        """)
    tail = textwrap.dedent(f"""\
        bundle._remux = patched
        bundle.build_bundle(design_from_dict({json.dumps(STUDY)}), [{str(arts)!r}], {str(out)!r},
                            prompts_dir={str(prompts_dir)!r})
        """)
    return head + textwrap.indent(textwrap.dedent(remux_body).strip() + "\n", "    ") + tail


def _temporaries(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMP.fullmatch(p.name))


def _killed_build(arts, prompts_dir, out) -> str:
    """Run a build killed with SIGKILL while it copies the videos; the name of the temporary it left."""
    before = set(_temporaries(out.parent)) if out.parent.exists() else set()
    script = _build_script(arts, prompts_dir, out, "os.kill(os.getpid(), signal.SIGKILL)  # nothing runs after it")
    res = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == -signal.SIGKILL, res.stderr
    left = sorted(set(_temporaries(out.parent)) - before)
    assert len(left) == 1, left
    assert (out.parent / left[0] / "media").is_dir()  # as the kill left it, mid-copy
    return left[0]


def _design_file(tmp_path):
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(STUDY, allow_unicode=True), encoding="utf-8")
    return path


def test_the_temporaries_of_killed_builds_are_removed_by_the_next_build_with_a_note(study_inputs, tmp_path):
    arts, prompts_dir, _ = study_inputs
    out = tmp_path / "build" / "survey"
    first = _killed_build(arts, prompts_dir, out)
    # killed in turn, the next build had removed the first one's before it made its own: one left, not two
    second = _killed_build(arts, prompts_dir, out)
    assert _temporaries(out.parent) == [second] and second != first
    # and one made as a build makes it, its lock gone with the build (the kernel drops it however the process ends)
    made, lock = bundle_mod._new_folder(out)
    os.close(lock)
    stale = sorted([second, made.name])
    # what is not a temporary of this folder's builds, though named alike, is never touched
    others = [out.parent / ".survey2.0123456789ab.tmp", out.parent / ".survey.0123456789.tmp"]
    for other in others:
        other.mkdir()
        (other / "keep.txt").write_text("not a build's")
    a_file = out.parent / ".survey.abcdefabcdef.tmp"  # method.fileio's temporary of a *file* named survey
    a_file.write_text("not a folder")

    res = runner.invoke(app, ["survey", "build", "--design", str(_design_file(tmp_path)), "--artifacts", str(arts),
                              "--prompts-dir", str(prompts_dir), "--out", str(out)])
    assert res.exit_code == 0, res.output
    notes = [line for line in res.stderr.splitlines() if line.startswith("note: removed")]
    assert notes == [f"note: removed {stale[0]}, {stale[1]} beside {out}: unfinished folders of earlier builds "
                     "killed outright (kill -9, power loss)"], res.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([out.name, a_file.name, *(o.name for o in others)])
    assert all((o / "keep.txt").read_text() == "not a build's" for o in others) and a_file.read_text() == "not a folder"
    assert len(load_bundle(out).questions) == 5


def test_a_build_running_meanwhile_keeps_its_temporary_and_finishes_as_it_would(study_inputs, tmp_path):
    """A second build of the same folder while the first is copying its videos: the first one's temporary is not
    taken for a killed build's (it is locked), so the first goes on and ends as two builds of one folder end, with
    the error that another build wrote the bundle, leaving that bundle and no temporary."""
    arts, prompts_dir, design = study_inputs
    out = tmp_path / "survey"
    ready, go = tmp_path / "ready", tmp_path / "go"
    body = f"""
        Path({str(ready)!r}).write_text("")
        while not Path({str(go)!r}).exists():
            time.sleep(0.02)
        remux(src, dst)
        """
    first = subprocess.Popen([sys.executable, "-c", _build_script(arts, prompts_dir, out, body)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first build never reached its videos"
            time.sleep(0.05)
        running = [p.name for p in tmp_path.iterdir() if TEMP.fullmatch(p.name)]
        assert len(running) == 1
        second = build_bundle(design, [arts], out, prompts_dir=prompts_dir)
        assert not any("removed" in n or running[0] in n for n in second.notes), second.notes
        assert (tmp_path / running[0] / "media").is_dir()  # the first build's, as it was
        go.write_text("")
        _, stderr = first.communicate(timeout=120)
    finally:
        go.write_text("")
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 1 and "was written by another build while this one ran" in stderr, stderr
    assert load_bundle(out).bundle_id == second.bundle_id
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_where_folders_cannot_be_locked_a_leftover_is_kept_and_named(study_inputs, tmp_path, monkeypatch):
    """Without folder locks (some network file systems) a running build cannot be told from a killed one: the
    temporary is kept, and a note names it and says when it may be deleted; the build itself goes on."""
    arts, prompts_dir, design = study_inputs
    out = tmp_path / "survey"
    stale = _killed_build(arts, prompts_dir, out)

    def no_locks(folder):
        raise OSError(errno.ENOLCK, "No locks available", str(folder))

    monkeypatch.setattr(outputs_mod, "lock_folder", no_locks)
    built = build_bundle(design, [arts], out, prompts_dir=prompts_dir)
    assert built.notes[-1] == (f"left {stale} beside {out}: this file system cannot lock folders, so a build still "
                               f"writing it cannot be told from one killed outright; delete it once no `survey "
                               f"build` of {out} runs")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([stale, out.name])

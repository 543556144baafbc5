"""Ctrl-C and `kill` (SIGTERM) on any `fourdfy` command: one `error:` line, exit 130 / 143, and the command's
cleanups run (its hidden temporaries removed). SIGTERM used to end every command but `generate` and `sweep` on the
spot, without a word and leaving its temporaries; Ctrl-C ended most of them with exit 130 and nothing printed.

The signals go to real `python -m pipelines.cli` processes at a deterministic point: `BLOCK` runs the CLI as
`python -m` does, with one function wrapped so that, once its Nth call has returned, the process writes a marker
file and sleeps (interruptibly) until the signal comes."""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evaluation.video import encode_video
from pipelines.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
GENERIC = ("every file it wrote is whole (none is left half-written); run the command again, with --overwrite if it "
           "then refuses a file this run wrote")
IMPORT = ("every artifact folder it wrote is whole (none is left half-written) and is kept; run the same command again "
          "to finish the import (it leaves the folders already imported as they are)")  # its rerun needs no --overwrite
RERUN = "every file it wrote is whole (none is left half-written); run the command again"  # no --overwrite to name

BLOCK = '''
import importlib, runpy, sys, time
from pathlib import Path

mark, target, nth = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
module, _, qualname = target.partition(":")
owner = importlib.import_module(module)
*path, name = qualname.split(".")
for part in path:
    owner = getattr(owner, part)
real, calls = getattr(owner, name), []


def blocking(*args, **kwargs):
    out = real(*args, **kwargs)
    calls.append(1)
    if len(calls) == nth:
        mark.write_text("blocked")
        while True:
            time.sleep(60)
    return out


setattr(owner, name, blocking)
sys.argv = ["fourdfy", *sys.argv[4:]]
runpy.run_module("pipelines.cli", run_name="__main__", alter_sys=True)
'''


def _eval_helpers():
    """tests/evaluation/eval_helpers.py (videos, a fake run), which only that folder has on its path."""
    path = ROOT / "tests" / "evaluation" / "eval_helpers.py"
    spec = importlib.util.spec_from_file_location("eval_helpers_for_interrupts", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stopped_at(tmp_path, target: str, nth: int, args: list[str], sig: int, before_signal=None):
    """Run `fourdfy ARGS` until the `nth` call of `target` (module:qualname) has returned, call `before_signal`
    (what exists at that point), send `sig`; (returncode, stdout, stderr)."""
    script = tmp_path / "block.py"
    script.write_text(BLOCK)
    mark = tmp_path / f"blocked-{sig}"
    mark.unlink(missing_ok=True)
    # Ctrl-C as on a terminal: a test run started in the background ignores SIGINT, which the child would inherit
    proc = subprocess.Popen([sys.executable, str(script), str(mark), target, str(nth), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=_env(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        end = time.monotonic() + 300
        while not mark.exists():
            assert proc.poll() is None and time.monotonic() < end, proc.communicate()
            time.sleep(0.05)
        if before_signal is not None:
            before_signal()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def _env() -> dict[str, str]:
    """This checkout's packages first, whatever the folder the process runs in."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _fourdfy(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=_env())


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []


@pytest.mark.parametrize("sig, code, stopped", [(signal.SIGINT, 130, "interrupted"),
                                                (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_import_videos_stopped_mid_write_cleans_up_says_so_and_the_same_command_finishes(tmp_path, sig, code, stopped):
    """Stopped while the second video's folder is written (inside its hidden temporary): the first one's `imported`
    line is out, the temporary is gone, one error line; the same command then imports the rest, exit 0."""
    helpers = _eval_helpers()
    src, out = tmp_path / "src", tmp_path / "art"
    src.mkdir()
    for i, slug in enumerate(("a_dog_riding_a_skateboard", "a_panda_dancing")):
        encode_video(src / f"{slug}.mp4", helpers.make_frames(4, 16, 16, seed=i))
    prompts = tmp_path / "two.txt"
    prompts.write_text("A dog riding a skateboard.\nA panda dancing.\n")
    args = ["import-videos", str(src), "--method", "mav3d", "--out", str(out), "--prompts", str(prompts)]
    at_signal = []
    # write_artifact decodes each copied video inside its temporary folder: the second such call is the panda's
    code_, stdout, stderr = _stopped_at(tmp_path, "evaluation.artifacts:decode_video", 2, args, sig,
                                        lambda: at_signal.append(_hidden(out / "mav3d")))
    assert code_ == code, stderr
    assert len(at_signal[0]) == 1 and at_signal[0][0].startswith(".a_panda_dancing.tmp-"), at_signal
    dog = out / "mav3d" / "a_dog_riding_a_skateboard"
    assert stdout.splitlines() == [f"imported a_dog_riding_a_skateboard.mp4 -> {dog} (4 frames, 16x16 px)"]
    assert _error_lines(stderr) == [f"error: {stopped}; {IMPORT}"]
    assert sorted(p.name for p in (out / "mav3d").iterdir()) == ["a_dog_riding_a_skateboard"]  # no temporary left
    again = _fourdfy(args, tmp_path)
    assert again.returncode == 0 and again.stderr == "", again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == ("already imported from the same files with the same settings, left as "
                                            "they are (1): a_dog_riding_a_skateboard")


@pytest.mark.parametrize("sig, code, stopped", [(signal.SIGINT, 130, "interrupted"),
                                                (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_simulate_votes_stopped_mid_write_leaves_no_temporary(tmp_path, sig, code, stopped):
    """Stopped with its CSV half-way through its temporary (written, not yet renamed): the temporary is removed, no
    --out appears, one error line."""
    out = tmp_path / "votes" / "v.csv"
    at_signal = []
    code_, stdout, stderr = _stopped_at(tmp_path, "pandas:DataFrame.to_csv", 1, ["simulate-votes", "--out", str(out)],
                                        sig, lambda: at_signal.append(_hidden(out.parent)))
    assert code_ == code, stderr
    assert len(at_signal[0]) == 1 and at_signal[0][0].startswith(".v.csv."), at_signal  # its temporary, then
    assert _error_lines(stderr) == [f"error: {stopped}; {GENERIC}"] and "Traceback" not in stderr
    assert list(out.parent.iterdir()) == []


def test_analyze_terminated_while_writing_removes_its_temporary_folder(tmp_path):
    """`analyze` writes its tables into a hidden folder renamed into place at the end; SIGTERM ended the process
    with that folder left behind and nothing said."""
    votes = tmp_path / "v.csv"
    made = _fourdfy(["simulate-votes", "--out", str(votes)], tmp_path)
    assert made.returncode == 0, made.stderr
    at_signal = []
    code, _, stderr = _stopped_at(tmp_path, "pandas:DataFrame.to_csv", 1,
                                  ["analyze", "--votes", str(votes), "--out", str(tmp_path / "tables"),
                                   "--n-boot", "100"], signal.SIGTERM, lambda: at_signal.append(_hidden(tmp_path)))
    assert code == 143, stderr
    assert any(n.startswith(".tables.") and n.endswith(".tmp") for n in at_signal[0]), at_signal
    assert _error_lines(stderr) == [f"error: terminated (SIGTERM); {RERUN}"]  # analyze has no --overwrite
    assert _hidden(tmp_path) == [] and not (tmp_path / "tables").exists()


def test_render_terminated_keeps_its_own_message_exits_143_and_removes_its_temporary(tmp_path):
    """`render` has its own line for Ctrl-C; SIGTERM ended it silently (143) with its hidden artifact folder left."""
    helpers = _eval_helpers()
    run = helpers.write_fake_run(tmp_path / "run")
    out = tmp_path / "art"
    at_signal = []
    code, _, stderr = _stopped_at(tmp_path, "evaluation.artifacts:encode_video", 1,
                                  ["render", str(run), "--out", str(out), "--frames", "4", "--size", "16",
                                   "--device", "cpu", "--no-progress"], signal.SIGTERM,
                                  lambda: at_signal.append(_hidden(out / "4dfy")))
    assert code == 143, stderr
    assert len(at_signal[0]) == 1 and at_signal[0][0].startswith(".a_panda_dancing.tmp-"), at_signal
    assert _error_lines(stderr)[-1] == ("error: terminated (SIGTERM); no artifact was written (an earlier one is "
                                        "kept); run the command again to render")
    assert list((out / "4dfy").iterdir()) == []


# --- the commands' own messages -------------------------------------------------------------------------------------

def test_generate_under_the_pipeline_says_run_the_same_command_again(tmp_path, monkeypatch):
    """With --auto-resume (the DVC stage's command) the advice was to add --resume, which the stage's command
    cannot take alongside --auto-resume: the same command (`dvc repro`) continues by itself."""
    import pipelines.generate
    from pipelines.interrupts import Terminated

    out = tmp_path / "run"

    def stopped(cfg, prompt, out, **kwargs):
        (out / "ckpt").mkdir(parents=True, exist_ok=True)
        (out / "ckpt" / "last.pt").write_bytes(b"a checkpoint")
        raise stop

    monkeypatch.setattr(pipelines.generate, "generate", stopped)
    base = ["generate", "--prompt", "a_panda_dancing", "--out", str(out), "--device", "cpu", "--no-progress"]
    last = out / "ckpt" / "last.pt"
    for stop, code, stopped_as in ((KeyboardInterrupt(), 130, "interrupted"),
                                   (Terminated(), 143, "terminated (SIGTERM)")):
        res = runner.invoke(app, [*base, "--auto-resume"])
        assert res.exit_code == code and res.stderr.strip() == (
            f"error: {stopped_as}; the same command (--auto-resume; in the pipeline, `dvc repro`) continues from "
            f"{last}"), res.output
        res = runner.invoke(app, base)
        assert res.exit_code == code and res.stderr.strip() == (
            f"error: {stopped_as}; the same command with --resume continues from {last}"), res.output


def test_oracle_interrupted_says_how_to_run_the_check_again(tmp_path, monkeypatch):
    """The oracle refuses an --out holding a run (it always trains from scratch), so "run the command again" would
    be refused: its line says to remove the folder first."""
    import method.oracle.check
    from pipelines.interrupts import Terminated

    out = tmp_path / "oracle"

    def stopped(out, **kwargs):
        (out / "ckpt").mkdir(parents=True)
        (out / "ckpt" / "last.pt").write_bytes(b"a checkpoint")
        raise Terminated()

    monkeypatch.setattr(method.oracle.check, "run_oracle", stopped)
    res = runner.invoke(app, ["oracle", "--out", str(out), "--no-progress"])
    assert res.exit_code == 143 and res.stderr.strip() == (
        f"error: terminated (SIGTERM); the oracle check always trains from scratch; remove {out} (its checkpoints) "
        "or give another --out, then run it again"), res.output
    again = runner.invoke(app, ["oracle", "--out", str(out), "--no-progress"])
    assert again.exit_code == 2 and "already holds a run" in again.output  # why the line says to remove it


def test_an_interrupt_in_process_is_one_line_and_sigterm_is_restored_afterwards(tmp_path, monkeypatch):
    """The generic line for a command without its own (`clipscore` here, stopped while scoring), exit 130; the
    SIGTERM handler is the caller's again once the command has ended."""
    import evaluation.clip

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    helpers = _eval_helpers()
    from evaluation.artifacts import write_artifact

    write_artifact(tmp_path / "art", "4dfy", "A panda dancing.", helpers.make_frames(2, 16, 16),
                   source={"kind": "import", "file": "x.mp4", "sha256": "0"}, trajectory="orbit", fps=15.0)
    monkeypatch.setattr(evaluation.clip, "score_artifacts", stopped)
    monkeypatch.setattr("evaluation.clip_models.load_clip", lambda cfg: object())
    before = signal.getsignal(signal.SIGTERM)
    res = runner.invoke(app, ["clipscore", str(tmp_path / "art"), "--out", str(tmp_path / "clip"), "--no-progress"])
    assert res.exit_code == 130 and res.stderr.strip() == f"error: interrupted; {RERUN}", res.output  # no --overwrite
    assert signal.getsignal(signal.SIGTERM) is before


def test_figure_stopped_between_its_renames_names_the_figures_written_and_the_rerun_that_works(tmp_path, monkeypatch):
    """`figure` renames its figures into place at the end: stopped between two renames, the first figure is there,
    and "run the command again" was refused (the figure exists, no --overwrite). The line names what was written
    and says --overwrite; stopped before any rename, a plain rerun works, and the line says so."""
    import evaluation.figure
    from evaluation.artifacts import write_artifact
    from pipelines.interrupts import Terminated

    helpers = _eval_helpers()
    arts, out = tmp_path / "art", tmp_path / "fig"
    for i, prompt in enumerate(("A cat singing.", "A panda dancing.")):
        write_artifact(arts, "4dfy", prompt, helpers.make_frames(3, 16, 16, seed=i),
                       source={"kind": "import", "file": "x.mp4", "sha256": "0"}, trajectory="orbit", fps=15.0)
    args = ["figure", str(arts), "--out", str(out), "--no-progress"]
    real_replace, real_compose = os.replace, evaluation.figure.compose

    def stopped_at_second(stop):
        renamed = []

        def replace(src, dst, *a, **k):
            if str(dst).endswith(".png"):
                renamed.append(dst)
                if len(renamed) == 2:
                    raise stop
            return real_replace(src, dst, *a, **k)
        return replace

    for stop, code, stopped in ((KeyboardInterrupt(), 130, "interrupted"), (Terminated(), 143, "terminated (SIGTERM)")):
        monkeypatch.setattr(evaluation.figure.os, "replace", stopped_at_second(stop))
        res = runner.invoke(app, args)
        monkeypatch.undo()
        assert res.exit_code == code and _error_lines(res.stderr)[-1] == (  # after the heartbeat's last line
            f"error: {stopped}; 1 of 2 figures were written (a_cat_singing.png), whole; run the command again with "
            "--overwrite to write them all (it replaces only figures `fourdfy figure` wrote)"), res.output
        assert sorted(p.name for p in out.iterdir()) == ["a_cat_singing.png"]  # no temporary of the second left
        refused = runner.invoke(app, args)
        assert refused.exit_code == 2 and "pass --overwrite" in refused.stderr  # why the line says --overwrite
        done = runner.invoke(app, [*args, "--overwrite"])
        assert done.exit_code == 0 and sorted(p.name for p in out.iterdir()) == ["a_cat_singing.png",
                                                                                  "a_panda_dancing.png"]
        for p in out.iterdir():
            p.unlink()

    def compose_stopped(*a, **k):  # before any rename: nothing in --out
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation.figure, "compose", compose_stopped)
    res = runner.invoke(app, args)
    monkeypatch.undo()
    assert evaluation.figure.compose is real_compose
    assert res.exit_code == 130 and res.stderr.strip() == (
        "error: interrupted; no figure was written; run the command again to write them"), res.output
    assert list(out.iterdir()) == []
    assert runner.invoke(app, args).exit_code == 0


# --- the one handler (pipelines.interrupts), as the sweep uses it -----------------------------------------------------

def test_a_signal_inside_held_waits_for_the_block_to_end_and_each_handler_comes_back():
    """What the sweep relies on while it submits and records a job: the signal is noted, the block runs to its end,
    then the interrupt (SIGTERM: `Terminated`) is raised. `sigint_always` takes an ignored SIGINT too (the sweep's
    local jobs would inherit it and could not be stopped); without it an ignored SIGINT stays ignored. Every handler
    is the caller's again afterwards, and the noted signal is forgotten."""
    from pipelines.interrupts import (Terminated, held, raise_pending_interrupt, sigterm_as_interrupt,
                                      sigterm_received)

    before = signal.getsignal(signal.SIGTERM), signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with sigterm_as_interrupt(sigint=True):
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # a background job's Ctrl-C stays ignored
        ran = []
        with pytest.raises(Terminated), sigterm_as_interrupt(sigint_always=True):
            assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
            with held():
                signal.raise_signal(signal.SIGTERM)
                assert sigterm_received()  # what an interrupted sweep reports (exit 143)
                ran.append("after the signal")  # not raised in the block
            ran.append("after the block")
        assert ran == ["after the signal"] and not sigterm_received()
        raise_pending_interrupt()  # forgotten once the outermost block has ended: raises nothing
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == (before[0], signal.SIG_IGN)
    finally:
        signal.signal(signal.SIGINT, before[1])


# --- what a process killed outright leaves: never part of a DVC hash ------------------------------------------------

def _dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, capture_output=True, text=True,
                          timeout=300)


def test_dvcignore_keeps_every_kind_of_hidden_temporary_out_of_the_stage_hashes(tmp_path):
    """`kill -9` of `render` left artifacts/tiny/4dfy/.a_panda_dancing.tmp-<hex>/, which then changed the hash of the
    clipscore stage's dependency (and so reran it, scoring nothing new). Checked with DVC itself on a stage that
    depends on an artifact folder, as clipscore does: a temporary of each writer leaves it up to date, a real file
    does not (nor does a hidden folder that is no temporary, such as the pipeline's `.clip-cache`)."""
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
    shutil.copy2(ROOT / ".dvcignore", tmp_path / ".dvcignore")
    (tmp_path / "dvc.yaml").write_text("stages:\n  scores:\n    cmd: python -c \"print(1)\"\n    deps: [artifacts]\n")
    method = tmp_path / "artifacts" / "tiny" / "4dfy"
    (method / "a_panda_dancing").mkdir(parents=True)
    (method / "a_panda_dancing" / "video.mp4").write_bytes(b"a video")
    made = _dvc(tmp_path, "repro")
    assert made.returncode == 0, made.stdout + made.stderr
    status = _dvc(tmp_path, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout) == {}, status.stdout + status.stderr

    # the temporaries' names as the writers make them (the random parts drawn here as they draw them)
    strays = [method / f".a_cat_singing.tmp-{secrets.token_hex(6)}",               # evaluation/artifacts.py
              Path(tempfile.mkdtemp(prefix=".a_panda_dancing.old-", dir=method)),   # evaluation/artifacts.py
              method / f".a_panda_dancing.{uuid.uuid4().hex[:8]}.tmp",            # userstudy/outputs.py: folders
              method / f".a_panda_dancing.{uuid.uuid4().hex[:8]}.old"]
    for folder in strays:
        folder.mkdir(exist_ok=True)
        (folder / "video.mp4").write_bytes(b"half a video")
    from method.fileio import new_temporary

    fd, tmp = new_temporary(method / "a_panda_dancing" / "manifest.json")  # method/fileio.py: files
    os.write(fd, b"half a manifest")
    os.close(fd)
    assert tmp.name.startswith(".manifest.json.") and tmp.name.endswith(".tmp")
    status = _dvc(tmp_path, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout) == {}, status.stdout

    for other in (method / "a_panda_dancing" / "notes.txt", tmp_path / "artifacts" / ".clip-cache" / "x.json"):
        other.parent.mkdir(parents=True, exist_ok=True)
        other.write_text("a file")
        status = json.loads(_dvc(tmp_path, "status", "--json").stdout)
        assert status["scores"] == [{"changed deps": {"artifacts": "modified"}}], (other, status)
        other.unlink()


@pytest.mark.parametrize("args, name, overwrite", [
    (["clipscore", "art", "--out", "c"], "clipscore", False),
    (["-v", "analyze", "--votes", "v.csv"], "analyze", False),
    (["survey", "export", "--db", "x.sqlite", "--out", "v.csv"], "export", True),
    (["survey", "build", "--out", "s"], "build", False),
    (["import-videos", "src", "--method", "mav3d"], "import-videos", True),
])
def test_the_interrupt_line_names_overwrite_only_to_a_command_that_has_it(args, name, overwrite):
    """`_leaf_command` finds the command the words run, below a group too; the line then says --overwrite only where
    the command has it (clipscore's advice named a flag it does not have)."""
    import typer.main

    from pipelines.cli import _leaf_command

    group = typer.main.get_command(app)
    with group.make_context("fourdfy", list(args), resilient_parsing=True) as ctx:
        command = _leaf_command(ctx, args)
    assert command.name == name
    assert any("--overwrite" in p.opts for p in command.params if hasattr(p, "opts")) is overwrite

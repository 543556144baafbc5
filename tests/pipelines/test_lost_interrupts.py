"""A Ctrl-C or `kill` whose KeyboardInterrupt Python discards still stops the command.

The handler raises the interrupt wherever the main thread is; when that is a finalizer (`__del__`, run whenever an
object is freed, e.g. while a tokenizer loads), Python prints "Exception ignored in ..." and goes on. `generate`
then trained to its end and exited 0, and a sweep kept waiting for its jobs. Here the signal is raised from inside a
finalizer at a fixed point of the command, so the lost raise happens every time."""

from __future__ import annotations

import gc
import signal

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
SLUG = "a_panda_dancing"


class _SignalsWhenFreed:
    """An object whose finalizer sends `sig` to this process: the handler runs inside `__del__`."""

    def __init__(self, sig: int, sent: list):
        self.sig, self.sent = sig, sent

    def __del__(self):
        self.sent.append(self.sig)
        signal.raise_signal(self.sig)


def _free_one_signalling(sig: int, sent: list) -> None:
    _SignalsWhenFreed(sig, sent)  # freed at once: its finalizer runs here
    gc.collect()


@pytest.fixture
def python_sigint(monkeypatch):
    """Python's own Ctrl-C handler, as on a terminal (a test run started in the background ignores SIGINT)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _base(out) -> list[str]:
    return ["generate", "--prompt", SLUG, "--out", str(out), "--device", "cpu", "--no-progress", "--max-steps", "2"]


@pytest.mark.parametrize("sig, code, stopped", [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                                (signal.SIGINT, 130, "interrupted")], ids=["SIGTERM", "SIGINT"])
def test_generate_stops_on_a_signal_whose_raise_a_finalizer_swallowed_while_loading(tmp_path, monkeypatch,
                                                                                  python_sigint, sig, code, stopped):
    """The signal comes while the priors' tokenizer loads, inside a finalizer: no step is trained, no `done:` line,
    the command's own `error:` line (no "Exception ignored" traceback before it) and exit 128 + the signal."""
    import method.guidance.prompts

    real, sent = method.guidance.prompts.load_pretrained, []

    def loading(cls, source, subfolder, **kwargs):
        loaded = real(cls, source, subfolder, **kwargs)
        if subfolder == "tokenizer" and not sent:
            _free_one_signalling(sig, sent)
        return loaded

    monkeypatch.setattr(method.guidance.prompts, "load_pretrained", loading)
    out = tmp_path / "run"
    res = runner.invoke(app, _base(out))
    assert sent == [sig]  # the signal came, from inside the finalizer
    assert res.exit_code == code, res.output
    assert "done:" not in res.stdout
    assert res.stderr.strip() == f"error: {stopped}; no checkpoint was written yet, so the same command starts it again"
    log = out / "log.jsonl"
    assert not log.exists() or log.read_text() == ""  # not one step trained
    assert not (out / "ckpt").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the caller's handlers are back


def test_generate_stops_on_a_signal_swallowed_during_its_start_up_before_anything_is_made(tmp_path, monkeypatch):
    """A lost raise while the config is built (start-up, before the run): the run never starts, the folder is not
    made, and the line says how to go on without the generic line's --overwrite (generate has none)."""
    import pipelines.generate

    real, sent = pipelines.generate.build_config, []

    def building(*args, **kwargs):
        cfg = real(*args, **kwargs)
        _free_one_signalling(signal.SIGTERM, sent)
        return cfg

    monkeypatch.setattr(pipelines.generate, "build_config", building)
    out = tmp_path / "run"
    res = runner.invoke(app, _base(out))
    assert sent == [signal.SIGTERM]
    assert res.exit_code == 143 and res.stderr.strip() == (
        "error: terminated (SIGTERM); it stopped before training began (nothing was written); run the same command "
        "again"), res.output
    assert not out.exists()


@pytest.mark.parametrize("stop, code, stopped", [(KeyboardInterrupt, 130, "interrupted"),
                                                 ("Terminated", 143, "terminated (SIGTERM)")], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_during_generates_start_up_has_generates_own_line(tmp_path, monkeypatch, stop, code, stopped):
    """Ctrl-C or SIGTERM while the prompt is checked (before the run) gave pipelines.cli's generic line, which says
    to rerun "with --overwrite", an option `generate` does not have."""
    import pipelines.commands.generate as command
    from pipelines.interrupts import Terminated

    if stop == "Terminated":
        stop = Terminated

    def checking(value):
        raise stop()

    monkeypatch.setattr(command, "refuse_a_prompt_file", checking)
    res = runner.invoke(app, _base(tmp_path / "run"))
    assert res.exit_code == code, res.output
    assert res.stderr.strip() == (f"error: {stopped}; it stopped before training began (nothing was written); run "
                                  "the same command again")
    assert "--overwrite" not in res.stderr
    monkeypatch.undo()
    again = runner.invoke(app, _base(tmp_path / "run"))  # what the line says works
    assert again.exit_code == 0 and again.stdout.startswith("done: "), again.output


def test_a_sweep_stops_on_a_signal_whose_raise_a_finalizer_swallowed(tmp_path):
    """The sweep's own handler (SIGINT and SIGTERM): a raise lost in a finalizer while it waits for its jobs left it
    waiting until they were done; it now stops them and ends as interrupted (SIGTERM: `terminated`)."""
    from pipelines.sweep import ExecutorSpec, SweepInterrupted, SweepSpec, run_sweep

    sent = []

    def on_submit(job, submitted):  # called by the sweep's loop in the main thread, after the job is recorded
        _free_one_signalling(signal.SIGTERM, sent)

    spec = SweepSpec(methods=("4dfy",), prompts=(SLUG,), profile="tiny", runs=tmp_path / "runs", max_steps=50,
                     sets={"preview_frames": "0", "heartbeat_s": "0"})
    with pytest.raises(SweepInterrupted) as err:
        run_sweep(spec, ExecutorSpec(kind="local", parallel=1, poll_s=0.2), echo=lambda s: None, on_submit=on_submit)
    assert sent == [signal.SIGTERM] and err.value.terminated
    assert not (tmp_path / "runs" / "tiny" / "4dfy" / SLUG / "manifest.json").exists()  # stopped, not finished


def test_oracle_stops_on_a_signal_whose_raise_a_finalizer_swallowed(tmp_path, monkeypatch):
    """`fourdfy oracle` trains too: a lost raise at its first step stops it at the next one, with its own line."""
    from method.training.trainer import Trainer

    real, sent, steps = Trainer.train_step, [], []

    def step(self, *args):
        steps.append(args)
        if not sent:
            _free_one_signalling(signal.SIGTERM, sent)
        return real(self, *args)

    monkeypatch.setattr(Trainer, "train_step", step)
    out = tmp_path / "oracle"
    res = runner.invoke(app, ["oracle", "--out", str(out), "--no-progress"])
    assert sent == [signal.SIGTERM] and len(steps) == 1, res.output
    assert res.exit_code == 143 and res.stderr.strip() == (
        "error: terminated (SIGTERM); the oracle check always trains from scratch; run the command again"), res.output


def test_a_sweep_stops_before_its_first_job_on_a_signal_swallowed_while_it_planned(tmp_path, monkeypatch):
    """A raise lost while the sweep plans (before its loop, under the CLI's handler): the sweep and the CLI share one
    handler and its notes, so the loop stops at its first turn, before submitting anything, reported as a SIGTERM. It
    used to train every job and exit 0."""
    import pipelines.sweep

    real, sent = pipelines.sweep.plan, []

    def planning(spec):
        jobs = real(spec)
        _free_one_signalling(signal.SIGTERM, sent)
        return jobs

    monkeypatch.setattr(pipelines.sweep, "plan", planning)
    runs = tmp_path / "runs"
    res = runner.invoke(app, ["sweep", "--methods", "4dfy", "--prompts", SLUG, "--runs", str(runs), "--max-steps", "1",
                              "--set", "preview_frames=0"])
    assert sent == [signal.SIGTERM]
    assert res.exit_code == 143, res.output
    assert res.stdout.startswith("sweep: 1 run (0 already finished)") and "submitted" not in res.stdout, res.stdout
    assert res.stderr.strip().startswith("error: sweep terminated (SIGTERM): its local jobs were stopped")
    assert "Exception ignored" not in res.stderr
    assert not (runs / "tiny" / "4dfy").exists()

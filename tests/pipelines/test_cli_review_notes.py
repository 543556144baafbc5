"""Notes `fourdfy generate` prints before it trains: CUDA-only switches asked for on a CPU run (they do nothing
there), and free text that nearly spells a library prompt (a typo would otherwise train silently)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.commands.generate import cuda_only_switches, library_near_miss
from pipelines.generate import build_config

runner = CliRunner()
CUDA_NOTE = ("note: tf32, guidance.*.frozen.cuda_graph take effect only on CUDA; this run trains on the CPU, where "
             "they do nothing")
TWIN_NOTE = ("note: --prompt 'A panda dancing' has the slug a_panda_dancing of the library prompt 'A panda dancing.'; "
             "runs are paired by slug in the survey and CLIP tables, so this one would be compared with that prompt's "
             "runs (--prompt a_panda_dancing trains the library prompt itself)")
NEAR_NOTE = ("note: --prompt 'A panda dancin.' is not a prompt of the library; did you mean 'A panda dancing.'? "
             "(training it as given)")


def _refused_after_the_notes(tmp_path, prompt, *args):
    """`generate` up to its notes, then refused at once (a missing --init-from, checked before anything is made):
    the non-blank stderr lines, the last of them the refusal."""
    res = runner.invoke(app, ["generate", "--prompt", prompt, "--device", "cpu", "--out", str(tmp_path / "run"),
                              "--init-from", str(tmp_path / "gone.pt"), *args])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: --init-from: checkpoint not found"), lines
    assert not (tmp_path / "run").exists()
    return lines[:-1]


def test_a_cpu_run_with_cuda_only_switches_and_a_near_miss_prompt_trains_with_two_notes(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["generate", "--prompt", "A panda dancin.", "--device", "cpu", "--max-steps", "1",
                              "--no-progress", "--set", "preview_frames=0", "--set", "tf32=true",
                              "--set", "guidance.*.frozen.cuda_graph=true", "--out", str(out)])
    assert res.exit_code == 0, res.output
    notes = [line for line in res.stderr.splitlines() if line.startswith("note:")]
    assert notes == [NEAR_NOTE, CUDA_NOTE]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["prompt"] == "A panda dancin."  # trained as given
    assert manifest["config"]["tf32"] is True


def test_cuda_only_switches_are_named_only_when_on_and_the_device_is_the_cpu(tmp_path, monkeypatch):
    assert _refused_after_the_notes(tmp_path, "a_panda_dancing") == []
    # every such switch a user may turn on; `*` names a key on for every prior once
    assert _refused_after_the_notes(tmp_path, "a_panda_dancing", "--set", "guidance.img.frozen.cuda_graph=true") == [
        "note: guidance.img.frozen.cuda_graph takes effect only on CUDA; this run trains on the CPU, where it does "
        "nothing"]
    # compile and channels_last act on the CPU too: no note for them
    assert _refused_after_the_notes(tmp_path, "a_panda_dancing", "--set", "guidance.*.frozen.channels_last=true",
                                    "--set", "guidance.*.frozen.compile_regional=true") == []

    def keys(device="cpu", **sets):
        return cuda_only_switches(build_config("tiny", "4dfy", device=device, sets=sets))

    assert keys(tf32=True) == ["tf32"]
    assert keys(**{"guidance.*.frozen.cuda_graph": True, "tf32": True}) == ["tf32", "guidance.*.frozen.cuda_graph"]
    # MVDream keeps float32 weights by default (half_precision false): its half_dtype does nothing anywhere
    assert keys(**{"guidance.*.frozen.half_dtype": "bfloat16"}) == ["guidance.img.frozen.half_dtype",
                                                                     "guidance.video.frozen.half_dtype"]
    assert keys(**{"guidance.*.frozen.half_dtype": "bfloat16", "guidance.3d.frozen.half_precision": True}) == [
        "guidance.*.frozen.half_dtype"]
    # on CUDA they act: nothing to say (auto resolves to cuda where a device is there)
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert keys(device="auto", tf32=True) == []


@pytest.mark.parametrize("prompt", ["A panda dancing.", "a_panda_dancing", "A red panda dancing.",
                                    "A cat juggling knives.", "A panda dancing"])
def test_no_near_miss_note_for_a_library_prompt_a_slug_or_another_prompt(prompt, tmp_path):
    """'A panda dancing' (no full stop) has the library prompt's slug: `library_twin`'s note is the one for it."""
    assert library_near_miss(prompt) is None
    assert _refused_after_the_notes(tmp_path, prompt) == ([TWIN_NOTE] if prompt == "A panda dancing" else [])


def test_the_note_on_a_library_prompts_slug_comes_before_the_training(tmp_path):
    """It used to come after the run (hours on the paper profile), whose video `survey build` then refuses."""
    res = runner.invoke(app, ["generate", "--prompt", "A panda dancing", "--device", "cpu", "--max-steps", "1",
                              "--no-progress", "--set", "preview_frames=0", "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    note = lines.index(next(line for line in lines if line.startswith(TWIN_NOTE[:60])))
    trained = [i for i, line in enumerate(lines) if line.startswith(("[", "done:"))]
    assert trained and note < trained[0], lines


def test_near_misses_of_library_prompts_are_named():
    assert library_near_miss("A panda dancin.") == "A panda dancing."
    assert library_near_miss("a panda DANCIN") == "A panda dancing."  # case and punctuation aside
    assert library_near_miss("A squirel Djing.") == "A squirrel Djing."
    assert library_near_miss("A cat singin.") == "A cat singing."
    assert library_near_miss("A goat singing.") is None  # another animal: another prompt


def test_a_mistyped_slug_keeps_its_one_line_error(tmp_path):
    res = runner.invoke(app, ["generate", "--prompt", "a_panda_dancin", "--out", str(tmp_path / "b")])
    assert res.exit_code == 2
    assert [line for line in res.stderr.splitlines() if line.strip()] == [
        "error: no prompt with slug 'a_panda_dancin' (did you mean 'a_panda_dancing'?) in ablation_5.txt, "
        "mav3d_28.txt (give the prompt text itself, or a slug from these files)"]

"""Damaged and foreign checkpoints, from a review: a torch file that is not a run's checkpoint (a state dict, a list,
a text file) named as such, not `error: state` or an AttributeError; the hint for a damaged last.pt names only stage
checkpoints that read, in the order the run wrote them, renamed stages included; and a sweep does not call a
finished run whose final checkpoint cannot be read "done"."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from method.training import checkpoint as ckpt
from pipelines.cli import app

runner = CliRunner()
SLUG = "a_panda_dancing"
SETS = ["--set", "heartbeat_s=0", "--set", "preview_frames=0"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run of 1-step stages, trained as the sweep below trains it (same runs folder layout)."""
    runs = tmp_path_factory.mktemp("runs")
    out = runs / "tiny" / "4dfy" / SLUG
    res = runner.invoke(app, ["generate", "--method", "4dfy", "--prompt", SLUG, "--profile", "tiny", "--max-steps",
                              "1", *SETS, "--no-progress", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return runs, out


def _copy(finished, tmp_path) -> tuple[Path, Path]:
    runs, out = finished
    shutil.copytree(runs, tmp_path / "runs")
    return tmp_path / "runs", tmp_path / "runs" / out.relative_to(runs)


def test_torch_files_that_are_not_checkpoints_are_named_as_such(tmp_path, finished):
    torch.save({"a": 1, "b": 2}, tmp_path / "dict.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    (tmp_path / "log.pt").write_text('{"step": 1}\n')
    (tmp_path / "empty.pt").write_bytes(b"")
    says = {"dict.pt": "not a checkpoint of a fourdfy run: it holds a dict of a, b, not a run's saved state",
            "list.pt": "not a checkpoint of a fourdfy run: it holds a list, not a run's saved state",
            "log.pt": "not a file torch.save wrote, or one cut short", "empty.pt": "an empty file"}
    for name, why in says.items():
        with pytest.raises(ckpt.CheckpointError) as err:
            ckpt.load(tmp_path / name)
        assert str(err.value) == f"cannot read checkpoint {tmp_path / name} ({why})"
        assert ckpt.unreadable(tmp_path / name) == why
    assert ckpt.unreadable(finished[1] / "ckpt" / "stage1.pt") is None
    # as --init-from: one error line before any run folder is made (was `error: state` / an internal error)
    for name in ("dict.pt", "list.pt"):
        out = tmp_path / f"new-{name}"
        res = runner.invoke(app, ["generate", "--prompt", SLUG, "--max-steps", "1", *SETS, "--out", str(out),
                                  "--init-from", str(tmp_path / name)])
        assert res.exit_code == 2, res.output
        line = res.output.strip().splitlines()[-1]
        assert line.startswith(f"error: --init-from: cannot read checkpoint {tmp_path / name} ({says[name]})"), line
        assert "internal error" not in res.output and not out.exists()


def test_the_hint_names_readable_stage_checkpoints_in_the_order_written(tmp_path, finished):
    _, run = _copy(finished, tmp_path)
    folder = run / "ckpt"
    last = folder / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    # stage3 renamed (a config may name its stages), stage2 damaged: the latest intact one is the renamed stage
    (folder / "stage3.pt").rename(folder / "anneal.pt")
    (folder / "stage2.pt").write_bytes((folder / "stage2.pt").read_bytes()[:1000])
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.load(last)
    assert str(err.value).endswith(f"; intact stage checkpoints beside it: stage1.pt, anneal.pt (stage2.pt damaged "
                                   f"too) — continue from the latest with `fourdfy generate ... --resume-from "
                                   f"{folder / 'anneal.pt'}`"), str(err.value)
    assert ckpt.intact_checkpoints(folder) == ([folder / "stage1.pt", folder / "anneal.pt"], [folder / "stage2.pt"])
    for name in ("stage1.pt", "anneal.pt"):
        (folder / name).write_bytes(b"")
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.load(last)
    assert str(err.value).endswith("; no intact stage checkpoint beside it (anneal.pt, stage1.pt, stage2.pt damaged "
                                   "too): start the run again in a new --out"), str(err.value)


def test_a_sweep_does_not_call_a_run_with_an_unreadable_final_checkpoint_done(tmp_path, finished):
    runs, run = _copy(finished, tmp_path)
    last = run / "ckpt" / "last.pt"
    last.write_bytes(last.read_bytes()[:50000])
    kept = last.read_bytes()
    args = ["sweep", "--methods", "4dfy", "--prompts", SLUG, "--runs", str(runs), "--max-steps", "1", *SETS]
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    row = next(line for line in dry.output.splitlines() if line.startswith(f"4dfy-{SLUG}"))
    assert row.endswith("final checkpoint unreadable: not submitted, reported as failed (the sweep says how to go on)")
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.stdout.splitlines()
    assert lines[0].startswith("sweep: 1 run (0 already finished, 1 with an unreadable final checkpoint, not "
                               "submitted)"), lines[0]
    assert lines[1].startswith(f"not submitted 4dfy-{SLUG}: {run} is a finished run, but `fourdfy render` cannot use "
                               f"its final checkpoint: cannot read checkpoint {last} ("), lines[1]
    # the way on, spelt out for this job: the generate command of its config, from its last stage checkpoint
    assert (f"`fourdfy generate --method 4dfy --prompt {SLUG} --profile tiny --out {run} --set heartbeat_s=0 --set "
            f"preview_frames=0 --max-steps 1 --resume-from {run / 'ckpt' / 'stage3.pt'}`; then run the same sweep "
            "again") in lines[1], lines[1]
    job = {j["name"]: j for j in json.loads((runs / "tiny" / "sweep" / "sweep.json").read_text())["jobs"]}
    assert job[f"4dfy-{SLUG}"]["state"] == "failed" and str(tmp_path) not in job[f"4dfy-{SLUG}"]["error"]
    assert last.read_bytes() == kept  # nothing of the run changed


def test_a_dangling_link_or_an_unreadable_file_is_named_not_a_traceback(tmp_path, monkeypatch, finished):
    folder = tmp_path / "run" / "ckpt"
    folder.mkdir(parents=True)
    (folder / "last.pt").write_text("junk")
    (folder / "stage1.pt").symlink_to(tmp_path / "gone.pt")  # a link whose file was removed
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.load(folder / "last.pt")
    assert str(err.value) == (f"cannot read checkpoint {folder / 'last.pt'} (not a file torch.save wrote, or one cut "
                              "short); no intact stage checkpoint beside it (stage1.pt damaged too): start the run "
                              "again in a new --out")
    out = tmp_path / "new"
    res = runner.invoke(app, ["generate", "--prompt", SLUG, "--max-steps", "1", *SETS, "--out", str(out),
                              "--init-from", str(folder / "last.pt")])
    assert res.exit_code == 2 and res.output.strip().splitlines()[-1].startswith(
        f"error: --init-from: cannot read checkpoint {folder / 'last.pt'} (not a file torch.save wrote"), res.output
    # a file this user may not read (root reads everything, so the permission answer is stood in for)
    import os

    good = finished[1] / "ckpt" / "stage1.pt"
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != good)
    assert ckpt.unreadable(good) == "not readable by this user (its permissions)"


def test_a_sweep_with_no_stage_checkpoint_to_continue_from_says_to_move_the_run_away(tmp_path, finished):
    runs, run = _copy(finished, tmp_path)
    for path in (run / "ckpt").glob("*.pt"):
        path.write_bytes(path.read_bytes()[:1000])
    res = runner.invoke(app, ["sweep", "--methods", "4dfy", "--prompts", SLUG, "--runs", str(runs), "--max-steps",
                              "1", *SETS])
    assert res.exit_code == 2, res.output
    line = res.stdout.splitlines()[1]
    assert line.startswith(f"not submitted 4dfy-{SLUG}: {run} is a finished run, but `fourdfy render` cannot use its "
                           "final checkpoint: cannot read checkpoint "), line
    # a sweep has no --out: the run moved away, the same sweep trains it
    damaged = ", ".join(sorted(p.name for p in (run / "ckpt").glob("*.pt") if p.name != "last.pt"))
    assert line.endswith(f"; no intact stage checkpoint beside it ({damaged} damaged too): move {run} away, then run "
                         "the same sweep again to train it"), line
    assert "--resume-from" not in line  # nothing to continue from

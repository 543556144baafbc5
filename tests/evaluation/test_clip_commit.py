"""clipscore.json is the commit record of a `fourdfy clipscore` run: written last, with the sha256 of each table.
A run killed between two renames leaves new tables beside the earlier clipscore.json; `fourdfy analyze --clip`
then refuses the pair instead of labelling the new scores with the earlier run's model and precision."""

from __future__ import annotations

import hashlib
import json
import shutil

import pandas as pd
import pytest
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

import evaluation.clip as clip_module
from evaluation.artifacts import write_artifact
from evaluation.clip import META, OUTPUT_COLUMNS, check_out_dir, output_digest
from pipelines.cli import app
from prompts import PROMPT_DIR, load_prompts

runner = CliRunner()
TABLES = tuple(OUTPUT_COLUMNS)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_clip):
    """The same artifacts scored twice with the tiny CLIP, fp32 and bf16, each into its own --out folder."""
    root = tmp_path_factory.mktemp("commit")
    prompts = load_prompts(PROMPT_DIR / "mav3d_28.txt")
    # prompts and frames that the tiny model scores above 0 (most pairs clamp to 0 in fp32 and bf16 alike)
    for i, method in enumerate(("4dfy", "mav3d", "wo_3d")):
        for j, slug in enumerate(("a_panda_dancing", "a_squirrel_riding_a_motorcycle")):
            write_artifact(root / "art", method, prompts[slug], make_frames(3, 32, 32, seed=20 * i + 7 * j),
                           source={"kind": "import", "file": "x.mp4", "sha256": "0"}, trajectory="orbit", fps=15)
    for precision in ("fp32", "bf16"):
        res = runner.invoke(app, ["clipscore", str(root / "art"), "--out", str(root / precision), "--clip-model",
                                  str(tiny_clip), "--precision", precision, "--resamples", "50", "--device", "cpu",
                                  "--no-progress"])
        assert res.exit_code == 0, res.output + res.stderr
    # the two runs differ in every table, so a mix of them is a real mix
    for name in TABLES:
        assert (root / "fp32" / name).read_bytes() != (root / "bf16" / name).read_bytes(), name
    votes = root / "votes.csv"
    res = runner.invoke(app, ["simulate-votes", "--out", str(votes), "--raters", "4", "--comparisons", "mav3d,wo_3d",
                              "--seed", "1"])
    assert res.exit_code == 0, res.output
    return root


def killed_after(runs, tmp_path, last: str, meta_of: str = "fp32", new: str = "bf16"):
    """The --out folder of the `meta_of` run after a `new` run over it was killed once `last` was renamed into
    place (tables are written in OUTPUT_COLUMNS' order, clipscore.json after them)."""
    folder = tmp_path / "clip"
    shutil.copytree(runs / meta_of, folder)
    for name in TABLES[:TABLES.index(last) + 1]:
        shutil.copyfile(runs / new / name, folder / name)
    return folder


def analyze(runs, clip, out):
    return runner.invoke(app, ["analyze", "--votes", str(runs / "votes.csv"), "--clip", str(clip), "--out",
                               str(out), "--n-boot", "100"])


def test_clipscore_json_records_the_digest_of_each_table(runs):
    for precision in ("fp32", "bf16"):
        meta = json.loads((runs / precision / META).read_text())
        assert meta["precision"] == precision
        assert meta["sha256"] == {name: output_digest(runs / precision / name) for name in TABLES}
        # a plain sha256 of the bytes (no CRLF in them to read as LF)
        assert meta["sha256"]["clip.csv"] == hashlib.sha256((runs / precision / "clip.csv").read_bytes()).hexdigest()


def record_writes(monkeypatch) -> list[str]:
    """The names of the files evaluation.clip writes (tables and clipscore.json), in order, as they are written."""
    order = []
    write_csv, write_text = clip_module._write_csv, clip_module.write_text_atomic
    monkeypatch.setattr(clip_module, "_write_csv", lambda df, path: (order.append(path.name), write_csv(df, path)))
    monkeypatch.setattr(clip_module, "write_text_atomic", lambda path, text: (order.append(path.name),
                                                                              write_text(path, text)))
    return order


def test_clipscore_json_is_written_after_every_table(runs, tmp_path, monkeypatch):
    from evaluation.clip import ScoreConfig, write_outputs

    order = record_writes(monkeypatch)
    per_frame = pd.read_csv(runs / "fp32" / "per_frame.csv")
    write_outputs(tmp_path, per_frame, ScoreConfig(n_resamples=50), "m")
    assert order == [*TABLES, META]


def test_the_intact_run_is_analyzed_and_named(runs, tmp_path):
    for precision in ("fp32", "bf16"):
        res = analyze(runs, runs / precision / "clip.csv", tmp_path / precision)
        assert res.exit_code == 0, res.output + res.stderr
        model = json.loads((runs / precision / META).read_text())["model"]
        assert f"CLIP: {model}" in (tmp_path / precision / "table2.md").read_text()


@pytest.mark.parametrize("last", TABLES)
def test_analyze_refuses_tables_of_another_run_beside_clipscore_json(runs, tmp_path, last):
    """bf16 tables beside the fp32 run's clipscore.json: the old code labelled bf16 scores fp32, silently."""
    folder = killed_after(runs, tmp_path, last)
    res = analyze(runs, folder / "clip.csv", tmp_path / "res")
    if TABLES.index(last) < TABLES.index("clip.csv"):  # killed before clip.csv: it is still the fp32 run's
        assert res.exit_code == 0, res.output + res.stderr
        assert "fp32" in (tmp_path / "res" / "table2.md").read_text()
        return
    assert res.exit_code == 2, res.output
    (line,) = error_lines(res)
    assert line.startswith(f"error: {folder / 'clip.csv'} and {folder / META} come from different `fourdfy "
                           "clipscore` runs (an interrupted run?)")
    assert f"run `fourdfy clipscore` again with --out {folder}" in line
    assert not (tmp_path / "res").exists()  # nothing written, nothing mislabelled


def test_random_weight_scores_beside_a_real_models_record_are_refused(runs, tmp_path):
    """The worst mix: tiny-CLIP scores beside a clipscore.json of the paper's model would lose the banner."""
    folder = killed_after(runs, tmp_path, "clip.csv")
    meta = json.loads((folder / META).read_text())
    meta.update(model="ViT-B-32 / openai (QuickGELU)", random_weights=False)
    (folder / META).write_text(json.dumps(meta))
    res = analyze(runs, folder / "clip.csv", tmp_path / "res")
    assert res.exit_code == 2 and "different `fourdfy clipscore` runs" in error_lines(res)[0]


def test_a_clipscore_json_of_an_earlier_version_is_read_as_before(runs, tmp_path):
    """No digests to check: the same mix loads as it did (the tables name the recorded model), not refused."""
    folder = killed_after(runs, tmp_path, "clip.csv")
    meta = json.loads((folder / META).read_text())
    meta.pop("sha256", None)  # (none at all before digests were recorded)
    (folder / META).write_text(json.dumps(meta, indent=2) + "\n")
    res = analyze(runs, folder / "clip.csv", tmp_path / "res")
    assert res.exit_code == 0, res.output + res.stderr
    assert f"CLIP: {meta['model']}, fp32." in (tmp_path / "res" / "table2.md").read_text()


def test_a_renamed_copy_of_the_run_clip_csv_is_accepted_by_contents(runs, tmp_path):
    folder = tmp_path / "clip"
    shutil.copytree(runs / "fp32", folder)
    shutil.copyfile(folder / "clip.csv", folder / "clip_fp32.csv")
    assert analyze(runs, folder / "clip_fp32.csv", tmp_path / "a").exit_code == 0
    shutil.copyfile(runs / "bf16" / "clip.csv", folder / "clip_bf16.csv")
    res = analyze(runs, folder / "clip_bf16.csv", tmp_path / "b")
    assert res.exit_code == 2 and "different `fourdfy clipscore` runs" in error_lines(res)[0]


def test_clipscore_over_a_mixed_folder_names_the_unrecorded_tables(runs, tmp_path):
    """A rerun replaces a mixed set; the methods it reports as earlier come from a table the earlier run
    recorded, never from the interrupted run's."""
    folder = killed_after(runs, tmp_path, "per_prompt.csv")
    earlier = check_out_dir(folder)
    assert earlier.unrecorded == ("per_frame.csv", "per_prompt.csv")
    assert earlier.methods == ("4dfy", "mav3d", "wo_3d")  # read from summary.csv, which the fp32 run recorded
    intact = check_out_dir(runs / "fp32")
    assert intact.unrecorded == () and intact.files == (*TABLES, META)


def test_clipscore_over_an_interrupted_run_of_other_methods_reads_the_recorded_ones(runs, tmp_path):
    folder = killed_after(runs, tmp_path, "per_prompt.csv")
    pp = pd.read_csv(folder / "per_prompt.csv")
    pp[pp.method == "4dfy"].to_csv(folder / "per_prompt.csv", index=False)  # the interrupted run scored 4dfy only
    assert check_out_dir(folder).methods == ("4dfy", "mav3d", "wo_3d")


def earlier_version(runs, tmp_path, precision: str = "fp32"):
    """The --out folder of a `precision` run whose clipscore.json is of an earlier version: no digests."""
    folder = tmp_path / "clip"
    shutil.copytree(runs / precision, folder)
    meta = json.loads((folder / META).read_text())
    meta.pop("sha256")
    (folder / META).write_text(json.dumps(meta, indent=2) + "\n")
    return folder, meta


@pytest.mark.parametrize("stop", [KeyboardInterrupt, OSError])
def test_a_run_stopped_over_an_earlier_version_record_keeps_the_tables_named(runs, tmp_path, monkeypatch, stop):
    """The earlier-version clipscore.json is upgraded in place (its digests added) before the first table is
    replaced, not removed: a run stopped at its first table leaves the earlier, still whole tables named by their
    model and precision, and checked from then on."""
    from evaluation.clip import ScoreConfig, write_outputs
    from userstudy.tables import load_clip_source

    folder, meta = earlier_version(runs, tmp_path)
    tables = {name: (folder / name).read_bytes() for name in TABLES}

    def stopped(df, path):
        raise stop()

    monkeypatch.setattr(clip_module, "_write_csv", stopped)
    per_frame = pd.read_csv(runs / "bf16" / "per_frame.csv")
    with pytest.raises(stop):
        write_outputs(folder, per_frame, ScoreConfig(n_resamples=50), "another model", "bf16")
    assert {name: (folder / name).read_bytes() for name in TABLES} == tables  # nothing replaced
    upgraded = json.loads((folder / META).read_text())
    assert upgraded == {**meta, "sha256": {name: output_digest(folder / name) for name in TABLES}}
    source = load_clip_source(folder / "clip.csv")
    assert (source.model, source.precision) == (meta["model"], "fp32")
    # and the record now guards the earlier tables: a bf16 table beside it is refused
    shutil.copyfile(runs / "bf16" / "clip.csv", folder / "clip.csv")
    res = analyze(runs, folder / "clip.csv", tmp_path / "res")
    assert res.exit_code == 2 and "different `fourdfy clipscore` runs" in error_lines(res)[0]


def test_an_earlier_version_record_is_upgraded_before_the_first_table_then_replaced(runs, tmp_path, monkeypatch):
    from evaluation.clip import ScoreConfig, write_outputs

    folder, _ = earlier_version(runs, tmp_path)
    order = record_writes(monkeypatch)
    per_frame = pd.read_csv(runs / "bf16" / "per_frame.csv")
    write_outputs(folder, per_frame, ScoreConfig(n_resamples=50), "m", "bf16")
    assert order == [META, *TABLES, META]
    meta = json.loads((folder / META).read_text())
    assert meta["model"] == "m" and meta["precision"] == "bf16"
    assert meta["sha256"] == {name: output_digest(folder / name) for name in TABLES}


def test_an_earlier_version_record_without_tables_is_removed_as_before(tmp_path, runs, monkeypatch):
    """Nothing to record digests of: the record goes before the first table (else a stopped run would leave it
    naming the new tables, unchecked)."""
    from evaluation.clip import ScoreConfig, upgrade_meta, write_outputs

    folder, meta = earlier_version(runs, tmp_path)
    for name in TABLES:
        (folder / name).unlink()
    assert upgrade_meta(folder, meta) is False
    assert json.loads((folder / META).read_text()) == meta  # nothing written

    def stopped(df, path):
        raise KeyboardInterrupt()

    monkeypatch.setattr(clip_module, "_write_csv", stopped)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(folder, pd.read_csv(runs / "bf16" / "per_frame.csv"), ScoreConfig(n_resamples=50), "m")
    assert not (folder / META).exists()


def test_clipscore_over_a_mixed_folder_notes_the_tables_it_replaces(runs, tmp_path, tiny_clip):
    """The tables an interrupted run left (which clipscore.json does not describe) are named on stderr, once."""
    folder = killed_after(runs, tmp_path, "per_prompt.csv")
    res = runner.invoke(app, ["clipscore", str(runs / "art"), "--out", str(folder), "--clip-model",
                              str(tiny_clip), "--resamples", "50", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output + res.stderr
    notes = [ln for ln in res.stderr.splitlines() if "interrupted" in ln]
    assert notes == [f"note: per_frame.csv, per_prompt.csv in {folder} were left by an interrupted `fourdfy "
                     f"clipscore` run (not the tables its earlier {META} recorded); replaced by this run's"], res.stderr
    assert "interrupted" not in res.stdout
    assert check_out_dir(folder).unrecorded == ()  # this run's record describes every table now

    intact = tmp_path / "intact"
    shutil.copytree(runs / "fp32", intact)
    res = runner.invoke(app, ["clipscore", str(runs / "art"), "--out", str(intact), "--clip-model",
                              str(tiny_clip), "--resamples", "50", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0 and "interrupted" not in res.stderr, res.output + res.stderr


def test_a_run_killed_after_its_tables_over_an_earlier_version_record_is_refused(runs, tmp_path, monkeypatch):
    """Killed once every table is replaced, before its own clipscore.json: the upgraded record names the earlier
    tables, so the new ones beside it are refused as a mix (before: the record was gone, the new tables unnamed)."""
    from evaluation.clip import ScoreConfig, write_outputs

    folder, _ = earlier_version(runs, tmp_path)
    calls = []
    write_text = clip_module.write_text_atomic

    def killed_at_the_commit(path, text):
        calls.append(path.name)
        if len(calls) > 1:  # the first is the upgrade, the second the run's own record
            raise KeyboardInterrupt
        write_text(path, text)

    monkeypatch.setattr(clip_module, "write_text_atomic", killed_at_the_commit)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(folder, pd.read_csv(runs / "bf16" / "per_frame.csv"), ScoreConfig(n_resamples=50), "m", "bf16")
    assert calls == [META, META]
    monkeypatch.undo()
    res = analyze(runs, folder / "clip.csv", tmp_path / "res")
    assert res.exit_code == 2 and "different `fourdfy clipscore` runs" in error_lines(res)[0], res.output

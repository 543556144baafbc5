"""Review findings on 9fd8548: an `--init-from` run stays resumable once its start checkpoint is gone, runs made
before starts were recorded (no `init_from` key: unknown start) resume with either request, a refusal for another
start says so, and a finished run whose weights folder digest was recorded with Hugging Face's bookkeeping files in
it (the digest before they were left out) is the same run, not trained again."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from method.training import checkpoint as ckpt
from pipelines.generate import (
    PIPELINE_MARKER,
    build_config,
    content_digest,
    finished_manifest,
    generate,
    other_run,
)

from run_helpers import no_training

PROMPT = "a_panda_dancing"
TEXT = "A panda dancing."
QUICK = {"preview_frames": "0", "heartbeat_s": "0"}


def _cfg(max_steps: int = 1, **sets):
    return build_config("tiny", "4dfy", max_steps=max_steps, device="cpu", sets={**QUICK, **sets})


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """A finished run of 1-step stages, whose stage checkpoints are the starts of the runs below."""
    root = tmp_path_factory.mktemp("ref")
    generate(_cfg(1), PROMPT, root / "ref", quiet=True)
    return root / "ref"


@pytest.fixture(scope="module")
def init_run(ref, tmp_path_factory):
    """A finished run started with `--init-from start.pt` (a copy of ref's stage1.pt) in the pipeline's way."""
    root = tmp_path_factory.mktemp("init")
    start = root / "start.pt"
    shutil.copy(ref / "ckpt" / "stage1.pt", start)
    m = generate(_cfg(1), PROMPT, root / "run", init_from=start, resume="auto", quiet=True)
    return root, m


def _copy(init_run, tmp_path, finished: bool) -> tuple[Path, Path]:
    """The init run copied into `tmp_path` with its start beside it, the manifest removed for an unfinished one."""
    root, _ = init_run
    shutil.copytree(root, tmp_path / "w")
    out, start = tmp_path / "w" / "run", tmp_path / "w" / "start.pt"
    if not finished:
        (out / "manifest.json").unlink()  # as if stopped after its last checkpoint
    return out, start


def test_an_init_from_checkpoint_is_hashed_again_only_when_it_changed(ref, tmp_path, monkeypatch):
    """Each start of a run with --init-from (every resume of a sweep's runs) records the checkpoint's SHA-256; an
    unchanged file (size, mtime, inode) comes from the digest cache instead of being read whole again."""
    import pipelines.generate as gen

    monkeypatch.setenv("FOURDFY_CACHE", str(tmp_path / "cache"))
    start = tmp_path / "start.pt"
    shutil.copy(ref / "ckpt" / "stage1.pt", start)
    os.utime(start, (1_600_000_000, 1_600_000_000))  # not written just now (a fresh file is hashed each time)
    reads = []
    digest = gen.file_sha256
    monkeypatch.setattr(gen, "file_sha256", lambda path: reads.append(Path(path).name) or digest(path))
    first = gen.init_from_record(start)
    assert first["sha256"] == hashlib.sha256(start.read_bytes()).hexdigest() and reads == ["start.pt"]
    assert gen.init_from_record(start) == first and reads == ["start.pt"]  # from the cache
    data = ckpt.load(start)
    data["state"]["step"] += 1  # other bytes, same file
    ckpt.save_atomic(data, start)
    os.utime(start, (1_600_000_100, 1_600_000_100))
    again = gen.init_from_record(start)
    assert reads == ["start.pt", "start.pt"]
    assert again["sha256"] == hashlib.sha256(start.read_bytes()).hexdigest() != first["sha256"]


# --- A. the start -------------------------------------------------------------------------------------------------
def test_a_run_from_scratch_records_that_it_started_from_scratch(ref):
    m = json.loads((ref / "manifest.json").read_text())
    assert "init_from" in m and m["init_from"] is None and "init_from" not in m["request"]
    for name in ("stage1.pt", "last.pt"):
        data = ckpt.load(ref / "ckpt" / name, mmap=True)
        assert "init_from" in data and data["init_from"] is None


def test_an_unfinished_init_run_resumes_with_its_recorded_start_once_the_checkpoint_is_gone(init_run, tmp_path,
                                                                                            capsys):
    out, start = _copy(init_run, tmp_path, finished=False)
    record = init_run[1]["request"]["init_from"]
    start.unlink()
    capsys.readouterr()
    m = generate(_cfg(1), PROMPT, out, init_from=start, resume="yes", quiet=True)
    assert m["init_from"] == record and m["request"]["init_from"] == record
    err = capsys.readouterr().err
    assert f"note: --init-from {start} is gone" in err and record["sha256"][:12] in err, err


def test_a_finished_init_run_is_done_once_its_checkpoint_is_gone(init_run, tmp_path, monkeypatch):
    out, start = _copy(init_run, tmp_path, finished=True)
    start.unlink()
    no_training(monkeypatch)
    assert generate(_cfg(1), PROMPT, out, init_from=start, resume="auto", quiet=True) == init_run[1]


def test_a_missing_init_from_is_an_error_when_there_is_nothing_to_continue(init_run, tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="--init-from: checkpoint not found"):
        generate(_cfg(1), PROMPT, tmp_path / "new", init_from=tmp_path / "gone.pt", resume="yes", quiet=True)
    assert not (tmp_path / "new").exists()
    # the pipeline's run of another config is not deleted for a new run that could not start
    out, start = _copy(init_run, tmp_path, finished=True)
    start.unlink()
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(ckpt.CheckpointError, match="--init-from: checkpoint not found"):
        generate(_cfg(2), PROMPT, out, init_from=start, resume="auto", quiet=True)
    assert sorted(p.name for p in out.rglob("*")) == before


def test_resume_without_the_init_from_names_the_start_not_the_config(init_run, tmp_path):
    out, start = _copy(init_run, tmp_path, finished=False)
    start.unlink()
    sha = init_run[1]["request"]["init_from"]["sha256"]
    with pytest.raises(ckpt.CheckpointMismatch) as refused:
        generate(_cfg(1), PROMPT, out, resume="yes", quiet=True)
    msg = str(refused.value)
    assert "another config" not in msg, msg
    assert "holds a run started from a checkpoint (--init-from)" in msg, msg
    assert "pass the --init-from it started from" in msg, msg
    assert sha in msg, msg
    # another start: named as such
    other = tmp_path / "other.pt"
    shutil.copy(out / "ckpt" / "stage2.pt", other)
    with pytest.raises(ckpt.CheckpointMismatch, match="holds a run started from another checkpoint"):
        generate(_cfg(1), PROMPT, out, init_from=other, resume="yes", quiet=True)


def _forget_starts(out: Path) -> None:
    """Make `out` look like a run written before runs recorded their start: no `init_from` anywhere."""
    for path in (out / "ckpt").glob("*.pt"):
        data = ckpt.load(path)
        data.pop("init_from", None)
        ckpt.save_atomic(data, path)
    manifest = out / "manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        m.pop("init_from", None)
        m.get("request", {}).pop("init_from", None)
        manifest.write_text(json.dumps(m, indent=2) + "\n")


def test_a_run_made_before_starts_were_recorded_resumes_with_either_request(init_run, tmp_path):
    out, start = _copy(init_run, tmp_path, finished=False)
    _forget_starts(out)
    saved = tmp_path / "saved"
    shutil.copytree(out, saved)
    m = generate(_cfg(1), PROMPT, out, init_from=start, resume="yes", quiet=True)
    assert m["init_from"]["sha256"] == hashlib.sha256(start.read_bytes()).hexdigest()  # the request says it
    assert m["resumes"][-1]["from"] == "last.pt"
    # without --init-from: continued too, and its start stays unknown (not claimed to be from scratch)
    m = generate(_cfg(1), PROMPT, saved, resume="yes", quiet=True)
    assert "init_from" not in m and "init_from" not in m["request"]
    # a finished one: the same run for the pipeline and sweeps, whichever way it is asked for
    assert other_run(saved, _cfg(1).config_hash(), TEXT) is None
    assert finished_manifest(saved, _cfg(1).config_hash(), TEXT) is not None


def test_auto_resume_never_deletes_a_pipeline_run_only_because_its_start_is_unknown(init_run, tmp_path, monkeypatch):
    out, start = _copy(init_run, tmp_path, finished=True)
    assert (out / PIPELINE_MARKER).is_file()
    _forget_starts(out)
    m = json.loads((out / "manifest.json").read_text())
    no_training(monkeypatch)
    assert generate(_cfg(1), PROMPT, out, resume="auto", quiet=True) == m
    assert generate(_cfg(1), PROMPT, out, init_from=start, resume="auto", quiet=True) == m


# --- B. weights digests recorded with bookkeeping files -------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_lora(tmp_path_factory):
    from method.guidance.tiny import build_tiny_priors

    return build_tiny_priors(tmp_path_factory.mktemp("tiny-priors"))["sd-lora"]


def _legacy_digest(folder: Path) -> str:
    """A folder's digest as runs recorded it before 9fd8548: every file, hidden and lock files included."""
    return hashlib.sha256("".join(
        f"{p.relative_to(folder).as_posix()}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n"
        for p in sorted(folder.rglob("*")) if p.is_file()).encode()).hexdigest()


def _record_legacy(out: Path, key: str, digest: str) -> None:
    """Rewrite a run's recorded weights digest (manifest and checkpoints) to `digest`, as an older version wrote."""
    for path in (out / "ckpt").glob("*.pt"):
        data = ckpt.load(path)
        data["model_weights"] = {**data["model_weights"], key: digest}
        ckpt.save_atomic(data, path)
    manifest = out / "manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        m["model_weights"] = {**m["model_weights"], key: digest}
        manifest.write_text(json.dumps(m, indent=2) + "\n")


@pytest.fixture
def legacy_run(tiny_lora, tmp_path, monkeypatch):
    """A finished pipeline run on a local lora folder holding hf download's bookkeeping, whose manifest and
    checkpoints hold the folder's digest as recorded before bookkeeping files were left out."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FOURDFY_CACHE", str(tmp_path / "cache"))
    lora = tmp_path / "my-lora"
    shutil.copytree(tiny_lora, lora)
    meta = lora / ".cache" / "huggingface" / "download" / "adapter_model.safetensors.metadata"
    meta.parent.mkdir(parents=True)
    meta.write_text("0123abcd\n1712345678.123\n")
    (lora / "unet.lock").write_text("")
    legacy = _legacy_digest(lora)
    assert legacy != content_digest(lora)
    cfg = _cfg(1, **{"guidance.img.lora_model": "my-lora"})
    out = tmp_path / "runs" / "L"
    generate(cfg, PROMPT, out, resume="auto", quiet=True)
    key = "guidance.img.lora_model"
    _record_legacy(out, key, legacy)
    return cfg, out, key, legacy, lora


def test_a_finished_run_whose_digest_was_recorded_with_bookkeeping_is_not_trained_again(legacy_run, monkeypatch):
    cfg, out, key, legacy, _ = legacy_run
    m = json.loads((out / "manifest.json").read_text())
    # the sweep's planning (no digests given) and the pipeline's check see the same run
    assert other_run(out, cfg.config_hash(), TEXT) is None
    assert finished_manifest(out, cfg.config_hash(), TEXT) == m
    no_training(monkeypatch)
    assert generate(cfg, PROMPT, out, resume="auto", quiet=True) == m
    assert content_digest(legacy_run[4], legacy=True) == legacy


def test_an_unfinished_run_with_a_legacy_digest_resumes_and_keeps_it(legacy_run):
    cfg, out, key, legacy, _ = legacy_run
    (out / "manifest.json").unlink()
    assert other_run(out, cfg.config_hash(), TEXT) is None
    m = generate(cfg, PROMPT, out, resume="yes", quiet=True)
    assert m["model_weights"][key] == legacy  # what its checkpoints hold


def test_weights_that_really_changed_are_still_another_run(legacy_run):
    cfg, out, key, legacy, lora = legacy_run
    (lora / "notes.txt").write_text("x")
    os.utime(lora / "notes.txt", ns=(1_600_000_000 * 10**9,) * 2)
    assert other_run(out, cfg.config_hash(), TEXT) == "finished"
    with pytest.raises(ckpt.CheckpointMismatch, match="another config, prompt or local weights"):
        generate(cfg, PROMPT, out, resume="yes", quiet=True)

"""`generate`'s side of review findings: Hugging Face's bookkeeping in a weights folder is not part of a run's
identity, `--resume-from` refuses a folder that holds another run, and a run started with `--init-from` records
its start (a digest, no path) and is never taken for a run from scratch of its config, nor the other way round."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from method.training import checkpoint as ckpt
from pipelines.generate import build_config, content_digest, generate, other_run

from run_helpers import no_training, stamp

PROMPT = "a_panda_dancing"
TEXT = "A panda dancing."
PAST = 1_600_000_000
QUICK = {"preview_frames": "0", "heartbeat_s": "0"}


@pytest.fixture(scope="module")
def tiny_lora(tmp_path_factory):
    from method.guidance.tiny import build_tiny_priors

    return build_tiny_priors(tmp_path_factory.mktemp("tiny-priors"))["sd-lora"]


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FOURDFY_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _cfg(max_steps: int = 1, **sets):
    return build_config("tiny", "4dfy", max_steps=max_steps, device="cpu", sets={**QUICK, **sets})


# --- 1. weights folders ----------------------------------------------------------------------------------------
def test_hf_download_bookkeeping_does_not_change_a_weights_folder_or_its_run(here, tiny_lora, monkeypatch):
    lora = here / "my-lora"
    shutil.copytree(tiny_lora, lora)
    stamp(lora, PAST)
    # a folder without bookkeeping keeps the digest it always had: its files' relative paths and SHA-256s
    plain = hashlib.sha256("".join(
        f"{p.relative_to(lora).as_posix()}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n"
        for p in sorted(lora.rglob("*")) if p.is_file()).encode()).hexdigest()
    assert content_digest(lora) == plain
    meta = lora / ".cache" / "huggingface" / "download" / "adapter_model.safetensors.metadata"
    meta.parent.mkdir(parents=True)
    meta.write_text("0123abcd\n1712345678.123\n")  # what `hf download --local-dir` writes: commit, etag, a time
    (meta.parent / "adapter_model.safetensors.lock").write_text("")
    (lora / "unet.lock").write_text("")
    assert content_digest(lora) == plain

    cfg = _cfg(**{"guidance.img.lora_model": "my-lora"})
    out = here / "runs" / "W2"
    first = generate(cfg, PROMPT, out, resume="auto", quiet=True)
    assert first["model_weights"] == {"guidance.img.lora_model": plain}
    # the same weights downloaded again: only the metadata's time changes; the finished run is done, not retrained
    meta.write_text("0123abcd\n1799999999.999\n")
    stamp(lora, PAST + 60)
    no_training(monkeypatch)
    assert generate(cfg, PROMPT, out, resume="auto", quiet=True) == first
    # a real change of content still counts
    (lora / "notes.txt").write_text("x")
    assert content_digest(lora) != plain


# --- 2. --resume-from into a folder of another run -------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """`ref`: a finished run of 1-step stages; `other`: a finished run of 2-step stages (another config)."""
    root = tmp_path_factory.mktemp("runs")
    generate(_cfg(1), PROMPT, root / "ref", quiet=True)
    generate(_cfg(2), PROMPT, root / "other", quiet=True)
    return root


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_from_refuses_a_folder_that_holds_another_run(two_runs, tmp_path):
    out = tmp_path / "A"
    shutil.copytree(two_runs / "other", out)
    (out / "manifest.json").unlink()  # unfinished
    before = _snapshot(out)
    source = two_runs / "ref" / "ckpt" / "stage2.pt"
    with pytest.raises(ckpt.CheckpointMismatch) as refused:
        generate(_cfg(1), PROMPT, out, resume_from=source, quiet=True)
    msg = str(refused.value)
    assert msg.startswith(f"{out} holds another run (its ckpt/"), msg
    assert "stages.stage1.steps 2 there, 1 here" in msg and "give another --out" in msg, msg
    assert _snapshot(out) == before  # nothing written, log and checkpoints of the other run untouched


def test_resume_from_refuses_a_folder_whose_run_cannot_be_told(two_runs, tmp_path):
    out = tmp_path / "B"
    out.mkdir()
    (out / "log.jsonl").write_text((two_runs / "other" / "log.jsonl").read_text())
    with pytest.raises(ckpt.CheckpointError, match=r"holds files of a run \(log.jsonl\) but no readable checkpoint"):
        generate(_cfg(1), PROMPT, out, resume_from=two_runs / "ref" / "ckpt" / "stage2.pt", quiet=True)


def test_resume_from_still_continues_its_own_run_or_starts_in_an_empty_folder(two_runs, tmp_path):
    own = tmp_path / "own"
    shutil.copytree(two_runs / "ref", own)
    (own / "manifest.json").unlink()
    last = own / "ckpt" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])  # the case --resume-from is for: a damaged last.pt
    m = generate(_cfg(1), PROMPT, own, resume_from=own / "ckpt" / "stage2.pt", quiet=True)
    assert m["resumes"][-1]["from"] == "stage2.pt"
    fresh = tmp_path / "fresh"
    m = generate(_cfg(1), PROMPT, fresh, resume_from=two_runs / "ref" / "ckpt" / "stage2.pt", quiet=True)
    assert m["resumes"][-1]["from"] == "stage2.pt" and "redone_to" not in m["resumes"][-1]


# --- 3. --init-from is part of a run's identity ------------------------------------------------------------------
def test_an_init_from_run_records_its_start_and_is_not_a_run_from_scratch(two_runs, tmp_path, monkeypatch):
    cfg = _cfg(1)
    source = two_runs / "ref" / "ckpt" / "stage2.pt"
    out = tmp_path / "init"
    m = generate(cfg, PROMPT, out, init_from=source, quiet=True, resume="auto")
    record = m["request"]["init_from"]
    assert record == {"sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                      "config_hash": cfg.config_hash(), "method": "4dfy", "stages_done": ["stage1", "stage2"]}
    text = (out / "manifest.json").read_text()
    assert str(tmp_path) not in text and str(two_runs) not in text  # a digest, no path
    assert m["outputs"] == ["ckpt/last.pt", "ckpt/stage3.pt", "log.jsonl"]  # only what it wrote
    assert m["update_counts"]["stage1"] == json.loads((two_runs / "ref" / "manifest.json").read_text())[
        "update_counts"]["stage1"]
    # a sweep (which asks without a start) sees another run; --resume without the same --init-from is refused
    assert other_run(out, cfg.config_hash(), TEXT) == "finished"
    with pytest.raises(ckpt.CheckpointMismatch, match="started from checkpoint sha256 .* there, from scratch here"):
        generate(cfg, PROMPT, out, resume="yes", quiet=True)
    # the same command again is done
    with monkeypatch.context() as patch:
        no_training(patch)
        assert generate(cfg, PROMPT, out, init_from=source, resume="auto", quiet=True) == m
    # the pipeline's run from scratch of the same config replaces it, and the other way round
    scratch = generate(cfg, PROMPT, out, resume="auto", quiet=True)
    assert "init_from" not in scratch["request"] and scratch["outputs"][1:3] == ["ckpt/stage1.pt", "ckpt/stage2.pt"]
    again = generate(cfg, PROMPT, out, init_from=source, resume="auto", quiet=True)
    assert again["request"]["init_from"] == record


def test_an_unfinished_init_from_run_resumes_only_with_its_start(two_runs, tmp_path):
    cfg = _cfg(1)
    source = two_runs / "ref" / "ckpt" / "stage1.pt"
    out = tmp_path / "init"
    generate(cfg, PROMPT, out, init_from=source, quiet=True)
    (out / "manifest.json").unlink()
    with pytest.raises(ckpt.CheckpointMismatch, match="from checkpoint sha256 .* there, from scratch here"):
        generate(cfg, PROMPT, out, resume="yes", quiet=True)
    with pytest.raises(ckpt.CheckpointMismatch, match="holds another run"):
        generate(cfg, PROMPT, out, resume_from=out / "ckpt" / "stage2.pt", quiet=True)
    m = generate(cfg, PROMPT, out, init_from=source, resume="yes", quiet=True)
    assert m["request"]["init_from"]["stages_done"] == ["stage1"]

"""A run's identity holds the content of the local weights its priors name (`pipelines.generate.weights_digests`):
replacing a weights file makes another run for `generate`'s resume rules, the stage cache and a sweep's checks,
while runs on hub or `fourdfy-tiny:` ids keep their config hash, stage cache keys and manifest."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from method.training.checkpoint import CheckpointMismatch
from pipelines.generate import PIPELINE_MARKER, build_config, generate, other_run, weights_cache_path

from run_helpers import stamp

PROMPT = "a_panda_dancing"
TEXT = "A panda dancing."  # what the slug resolves to: what manifests record and a sweep asks about
PAST = 1_600_000_000  # a file stamped long ago is trusted by the digest cache (a fresh write is hashed again)


def _folder_sha(folder: Path) -> str:
    """The digest of a folder as the identity defines it, written out here: its files' relative paths and
    SHA-256s, one line each, sorted."""
    lines = "".join(f"{p.relative_to(folder).as_posix()}\t{hashlib.sha256(p.read_bytes()).hexdigest()}\n"
                    for p in sorted(folder.rglob("*")) if p.is_file())
    return hashlib.sha256(lines.encode()).hexdigest()


@pytest.fixture(scope="module")
def tiny_lora(tmp_path_factory):
    """The tiny prior's LoRA folder, built once for the module."""
    from method.guidance.tiny import build_tiny_priors

    return build_tiny_priors(tmp_path_factory.mktemp("tiny-priors"))["sd-lora"]


@pytest.fixture
def local(tmp_path, monkeypatch, tiny_lora):
    """A working folder holding `my-lora`, a local copy of the tiny LoRA model, stamped long ago."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FOURDFY_CACHE", str(tmp_path / "cache"))
    shutil.copytree(tiny_lora, tmp_path / "my-lora")
    stamp(tmp_path / "my-lora", PAST)
    return tmp_path


def _cfg(lora: str = "my-lora"):
    # the img prior (drawn from stage 2 on) loads its LoRA from a folder named by a relative path, as a user writes it
    return build_config("tiny", "4dfy", max_steps=1, device="cpu",
                        sets={"guidance.img.lora_model": lora, "preview_frames": "0", "heartbeat_s": "0"})


def _change_one_byte(folder: Path) -> None:
    """Flip one byte of the model's largest file: same size, and a new (past) stamp, as a real write gives."""
    target = max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    stamp(folder, PAST + 60)


def test_a_changed_weights_file_is_another_run_everywhere(local, monkeypatch):
    lora = local / "my-lora"
    cfg = _cfg()
    out, cache = local / "runs" / "4dfy" / PROMPT, local / "runs" / ".stage-cache"
    first = generate(cfg, PROMPT, out, resume="auto", quiet=True, stage_cache=cache)
    digest = _folder_sha(lora)
    assert first["model_weights"] == {"guidance.img.lora_model": digest}
    assert first["config_hash"] == cfg.config_hash()  # what `fourdfy render` checks the config against: unchanged
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["model_weights"] == {"guidance.img.lora_model": digest}
    assert str(local) not in (out / "manifest.json").read_text()  # the path as written, no absolute one

    # unchanged weights: the same run, done, and the weights (a GB folder in real life) are not read again
    read = []
    file_digest = hashlib.file_digest
    monkeypatch.setattr(hashlib, "file_digest", lambda f, *a: read.append(Path(f.name).name) or file_digest(f, *a))
    last = (out / "ckpt" / "last.pt").read_bytes()
    assert generate(cfg, PROMPT, out, resume="auto", quiet=True, stage_cache=cache) == on_disk
    assert (out / "ckpt" / "last.pt").read_bytes() == last and read == []
    assert weights_cache_path().is_file() and weights_cache_path().parent == local / "cache"
    assert other_run(out, cfg.config_hash(), TEXT) is None  # as a sweep asks: from the manifest's own config

    _change_one_byte(lora)
    new = _folder_sha(lora)
    assert new != digest
    # a sweep's check (it passes no digests) sees another run too
    assert other_run(out, cfg.config_hash(), TEXT) == "finished"
    # --resume refuses, naming the weights that changed; nothing is touched
    with pytest.raises(CheckpointMismatch) as refused:
        generate(cfg, PROMPT, out, resume="yes", quiet=True, stage_cache=cache)
    msg = str(refused.value)
    assert "another config, prompt or local weights" in msg, msg
    assert f"guidance.img.lora_model weights sha256 {digest[:12]} there, sha256 {new[:12]} here" in msg, msg
    assert (out / "ckpt" / "last.pt").read_bytes() == last

    # another folder trained with the new weights: the stage cache serves stage 1 (no LoRA drawn), not stage 2
    other = generate(cfg, PROMPT, local / "other", quiet=True, stage_cache=cache)
    assert other["shared_from"]["stage"] == "stage1" and other["model_weights"] == {"guidance.img.lora_model": new}

    # --auto-resume retrains the pipeline's run with the new weights
    assert (out / PIPELINE_MARKER).is_file()
    again = generate(cfg, PROMPT, out, resume="auto", quiet=True, stage_cache=cache)
    assert again["model_weights"] == {"guidance.img.lora_model": new}
    assert json.loads((out / "manifest.json").read_text())["model_weights"] == {"guidance.img.lora_model": new}
    # ... from stage 2 as `other` stored it, trained with the new weights (under a key of its own)
    from method.training.trainer import stage_cache_key

    assert again["shared_from"]["stage"] == "stage2" and again["shared_from"]["key"] == stage_cache_key(
        cfg, TEXT, 2, {"guidance.img.lora_model": new}) != stage_cache_key(cfg, TEXT, 2)


def test_an_unfinished_run_with_other_weights_is_refused_naming_them(local):
    """The identity travels in the checkpoint header, so an unfinished run is matched as a finished one."""
    from method.training.trainer import Trainer
    from pipelines.generate import weights_digests

    cfg = _cfg()
    out = local / "run"
    weights = weights_digests(cfg.to_dict())
    assert weights == {"guidance.img.lora_model": _folder_sha(local / "my-lora")}
    assert Trainer(cfg, "A panda dancing.", out, progress=False, quiet=True, weights=weights).run(
        stop_after=1)["stopped"]
    assert other_run(out, cfg.config_hash(), "A panda dancing.") is None
    _change_one_byte(local / "my-lora")
    assert other_run(out, cfg.config_hash(), "A panda dancing.") == "unfinished"
    before = (out / "ckpt" / "last.pt").read_bytes()
    with pytest.raises(CheckpointMismatch, match=r"guidance\.img\.lora_model weights sha256 \w+ there, sha256 \w+ here"):
        generate(cfg, PROMPT, out, resume="yes", quiet=True)
    assert (out / "ckpt" / "last.pt").read_bytes() == before


def test_runs_on_hub_or_tiny_ids_keep_their_identity(local):
    """No local weights: nothing is hashed or cached, the stage cache keys are the config's alone (the formula
    before weights counted), and neither manifests nor checkpoints gain a field."""
    from method.training.trainer import stage_cache_key
    from pipelines.generate import weights_digests

    tiny = build_config("tiny", "4dfy", max_steps=1, device="cpu", sets={"preview_frames": "0"})
    assert weights_digests(tiny.to_dict()) == {}
    hub = _cfg("stabilityai/not-a-local-folder")
    assert weights_digests(hub.to_dict()) == {}
    for n in (1, 2):
        plain = hashlib.sha256(f"{tiny.stage_prefix_hash(n)}\n{PROMPT}".encode()).hexdigest()[:16]
        assert stage_cache_key(tiny, PROMPT, n) == stage_cache_key(tiny, PROMPT, n, {}) == plain
    # local weights count in the key of the stages that draw their prior only
    img = {"guidance.img.lora_model": "0" * 64}
    assert stage_cache_key(tiny, PROMPT, 1, img) == stage_cache_key(tiny, PROMPT, 1)
    assert stage_cache_key(tiny, PROMPT, 2, img) != stage_cache_key(tiny, PROMPT, 2)
    m = generate(tiny, PROMPT, local / "run", quiet=True)
    assert "model_weights" not in m and "model_weights" not in json.loads((local / "run" / "manifest.json").read_text())
    import torch

    assert "model_weights" not in torch.load(local / "run" / "ckpt" / "last.pt", weights_only=False, mmap=True)
    assert not weights_cache_path().exists()


def test_a_sweep_plans_the_stage_cache_path_the_trainer_writes(local):
    """A sweep waits for its leader's cached stages at the path the trainer writes them: keyed by the local weights
    of the priors those stages draw (stage 2 draws the img prior, whose LoRA is local here)."""
    from method.training.trainer import cached_stage_path
    from pipelines.generate import weights_digests
    from pipelines.sweep import SweepSpec, plan

    spec = SweepSpec(methods=("4dfy", "wo_hybrid"), prompts=("a_panda_dancing",), sets={"guidance.img.lora_model":
                                                                                         "my-lora"})
    by = {j.method: j for j in plan(spec)}
    job = by["wo_hybrid"]
    assert (job.after, job.shared_stages) == ("4dfy-a_panda_dancing", 2)
    cfg = build_config("tiny", "wo_hybrid", sets={"guidance.img.lora_model": "my-lora"})
    weights = weights_digests(cfg.to_dict())
    assert weights == {"guidance.img.lora_model": _folder_sha(local / "my-lora")}
    assert job.shared_checkpoint.name == "stage2.pt"
    assert job.shared_checkpoint.parent.name == cached_stage_path(cfg, job.prompt, 1, weights).parent.name
    assert job.shared_checkpoint.parent.name != cached_stage_path(cfg, job.prompt, 1).parent.name

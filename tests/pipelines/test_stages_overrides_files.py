"""Weights a run loads from a local file or folder, named by a prior's config key in params.yaml's `overrides:` (or a
variant's, or a plug-in's): DVC tracked only the name, so replacing the weights reran nothing. The `methods` stage
records their SHA-256 in the config file the method's generate stages depend on, as it records the files params.yaml
names for other stages (a CLIP checkpoint)."""

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from pipelines import stages

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: variants do not outlive a test

ROOT = Path(__file__).resolve().parents[2]


def _params(tmp_path, overrides, methods=("4dfy", "wo_hybrid", "v1")):
    params = {"seed": 0, "profile": "tiny", "generate": {"methods": list(methods), "prompts": ["a_panda_dancing"]},
              "overrides": overrides, "videos": {"mav3d": {"folder": "data/videos/mav3d", "trajectory": "orbit"}},
              "study": {"design": str(ROOT / "userstudy/designs/paper.yaml")}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _folder_sha(folder: Path) -> str:
    """A folder's digest as documented: of its files' relative paths and digests, in path order."""
    lines = [f"{p.relative_to(folder).as_posix()}\t{_sha(p.read_bytes())}\n"
             for p in sorted(folder.rglob("*")) if p.is_file()]
    return _sha("".join(lines).encode())


def _configs(out):
    return {p.stem: p.read_bytes() for p in (out / "config").iterdir()}


def test_local_weights_named_by_an_entry_or_a_variant_are_recorded_and_rerun_only_their_methods(tmp_path):
    lora = tmp_path / "weights" / "lora"
    (lora / "unet").mkdir(parents=True)
    (lora / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"lora v1")
    (lora / "scheduler").mkdir()
    (lora / "scheduler" / "scheduler_config.json").write_text("{}")
    ckpt = tmp_path / "weights" / "mvdream.pt"
    ckpt.write_bytes(b"mvdream v1")
    params = _params(tmp_path, {"4dfy": {"guidance.img.lora_model": str(lora)}, "wo_hybrid": {},
                                "v1": {"base": "4dfy", "guidance.3d.model": str(ckpt)}})
    out = stages.write_methods(params, tmp_path / "methods")
    read = {m: json.loads(text) for m, text in _configs(out).items()}
    assert read["4dfy"]["named_files"] == {"guidance.img.lora_model": {"path": str(lora), "sha256": _folder_sha(lora)}}
    # a variant takes its own keys, not 4dfy's entry (docs/pipeline.md): its weights are its model file alone
    assert read["v1"]["named_files"] == {"guidance.3d.model": {"path": str(ckpt), "sha256": _sha(b"mvdream v1")}}
    assert "named_files" not in read["wo_hybrid"]  # fourdfy-tiny: ids name no local file
    # the rest of the file is still the method's registered config
    assert {k: v for k, v in read["4dfy"].items() if k != "named_files"}["guidance"]["img"]["lora_model"] == \
        "fourdfy-tiny:sd-lora"

    first = _configs(out)
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "config").iterdir()}
    stages.write_methods(params, out)  # nothing changed: nothing rewritten, so DVC reruns nothing
    assert _configs(out) == first and {p.name: p.stat().st_mtime_ns for p in (out / "config").iterdir()} == stamps

    (lora / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"lora v2")  # replaced, same size
    stages.write_methods(params, out)
    second = _configs(out)
    assert [m for m in first if first[m] != second[m]] == ["4dfy"]
    assert json.loads(second["4dfy"])["named_files"]["guidance.img.lora_model"]["sha256"] == _folder_sha(lora)

    ckpt.write_bytes(b"mvdream v2")
    stages.write_methods(params, out)
    third = _configs(out)
    assert [m for m in second if second[m] != third[m]] == ["v1"]


def test_a_relative_path_is_read_from_the_current_folder_and_a_folder_named_twice_is_hashed_once(tmp_path, monkeypatch):
    """As DVC runs the stages and the loaders read the weights: from params.yaml's folder. Two methods naming one
    folder (a GB model) read it once per run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "videos" / "mav3d").mkdir(parents=True)  # params.yaml's `videos:` folder, read from here
    (tmp_path / "sd" / "unet").mkdir(parents=True)
    (tmp_path / "sd" / "unet" / "w.bin").write_bytes(b"sd")
    read = []
    import pipelines.generate as generate

    digest = generate.file_sha256  # what the stage's DigestCache reads a file with
    monkeypatch.setattr(generate, "file_sha256", lambda path: read.append(Path(path).name) or digest(path))
    params = _params(tmp_path, {"4dfy": {"guidance.img.model": "sd", "guidance.3d.text_model": "sd"},
                                "wo_hybrid": {"guidance.img.model": "sd"}}, methods=("4dfy", "wo_hybrid"))
    out = stages.write_methods(params, tmp_path / "methods")
    want = {"path": "sd", "sha256": _folder_sha(tmp_path / "sd")}
    assert json.loads((out / "config" / "4dfy.json").read_text())["named_files"] == {
        "guidance.3d.text_model": want, "guidance.img.model": want}
    assert json.loads((out / "config" / "wo_hybrid.json").read_text())["named_files"] == {"guidance.img.model": want}
    assert read.count("w.bin") == 1


def test_the_generate_stages_depend_on_their_methods_config_file():
    """What makes a recorded digest rerun a method's runs: dvc.yaml's generate stages depend on its file."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert "build/methods/config/${item.method}.json" in dvc["generate"]["deps"]
    assert dvc["methods"].get("always_changed") is True

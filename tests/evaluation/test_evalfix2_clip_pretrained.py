"""`--pretrained FILE`: any file that does not load gets the one "not a readable <arch> checkpoint" message (an empty
file says so), not torch's bare `KeyError: 101` / `EOFError`; and OpenAI's original TorchScript archive (`ViT-B-32.pt`
of the `clip` package) loads, its weights the same as from a state-dict checkpoint."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from eval_helpers import error_lines, make_frames
from typer.testing import CliRunner

from evaluation.clip_models import TINY_MODEL_CFG, ClipConfig, load_clip, model_fingerprint
from method.guidance import ModelNotFoundError
from pipelines.cli import app

runner = CliRunner()
TINY_ARCH = "fourdfy-evalfix2-tiny"
"""The tiny CLIP's architecture under an open_clip model name (registered for a test only): --pretrained takes a
checkpoint file for a named architecture."""


@pytest.fixture()
def tiny_arch(monkeypatch):
    import open_clip

    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, TINY_ARCH, copy.deepcopy(TINY_MODEL_CFG))
    return TINY_ARCH


def _tiny_model(seed: int = 0):
    import open_clip

    torch.manual_seed(seed)
    return open_clip.model.CLIP(**TINY_MODEL_CFG).eval()


def _openai_style_archive(path, model) -> None:
    """A TorchScript archive shaped as OpenAI's CLIP files are: a traced CLIP whose state dict holds the weights under
    open_clip's names (open_clip's CLIP follows OpenAI's), the attention mask as a constant (a plain attribute in
    OpenAI's model, not a buffer), `input_resolution`, `context_length` and `vocab_size` as tensors, in fp16."""
    mask = model._buffers.pop("attn_mask")
    model.attn_mask = mask
    for name in ("context_length", "vocab_size"):
        delattr(model, name)
    for name, value in (("input_resolution", 32), ("context_length", 77), ("vocab_size", 49408)):
        model.register_buffer(name, torch.tensor(value))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation warnings
        traced = torch.jit.trace(model, (torch.zeros(1, 3, 32, 32), torch.zeros(1, 77, dtype=torch.long)),
                                 check_trace=False)
        torch.jit.save(traced.half(), str(path))


def test_an_openai_torchscript_file_loads_as_its_weights(tmp_path, tiny_arch):
    from evaluation.clip_models import is_torchscript_archive

    archive = tmp_path / "ViT-tiny.pt"
    _openai_style_archive(archive, _tiny_model())
    assert is_torchscript_archive(archive)
    # the same weights as an ordinary state-dict checkpoint (rounded to fp16, as the archive holds them)
    state = {k: v.half().float() for k, v in _tiny_model().state_dict().items()}
    torch.save(state, tmp_path / "open_clip_pytorch_model.bin")
    assert not is_torchscript_archive(tmp_path / "open_clip_pytorch_model.bin")  # a torch.save zip is no archive
    from_jit = load_clip(ClipConfig(model=tiny_arch, pretrained=str(archive), device="cpu"))
    from_bin = load_clip(ClipConfig(model=tiny_arch, pretrained=str(tmp_path / "open_clip_pytorch_model.bin"),
                                    device="cpu"))
    assert from_jit.description == f"{tiny_arch} / ViT-tiny.pt (QuickGELU)"
    assert model_fingerprint(from_jit) == model_fingerprint(from_bin)  # every weight, the activation, preprocessing
    loaded = from_jit.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_clipscore_scores_with_a_torchscript_file(tmp_path, tiny_arch):
    from evaluation.artifacts import write_artifact

    archive = tmp_path / "ViT-tiny.pt"
    _openai_style_archive(archive, _tiny_model())
    write_artifact(tmp_path / "art", "4dfy", "A cat singing.", make_frames(2, 16, 16),
                   source={"kind": "import", "file": "x", "sha256": "0"}, trajectory="orbit", fps=15)
    res = runner.invoke(app, ["clipscore", str(tmp_path / "art"), "--out", str(tmp_path / "s"), "--clip-model",
                              tiny_arch, "--pretrained", str(archive), "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert f"CLIP score ({tiny_arch} / ViT-tiny.pt (QuickGELU)), 1 videos:" in res.stdout
    assert (tmp_path / "s" / "clip.csv").is_file()


def test_a_torchscript_archive_of_something_else_is_no_readable_checkpoint(tmp_path, tiny_arch):
    from evaluation.clip_models import is_torchscript_archive

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(tmp_path / "linear.pt"))
    assert is_torchscript_archive(tmp_path / "linear.pt")
    with pytest.raises(ModelNotFoundError, match=f"the file {tmp_path / 'linear.pt'} is not a readable {tiny_arch} "
                                                 r"checkpoint \(damaged, cut short or another format: RuntimeError\)"):
        load_clip(ClipConfig(model=tiny_arch, pretrained=str(tmp_path / "linear.pt"), device="cpu"))


@pytest.mark.parametrize("content, reason", [
    (b"hello\n", "is not a readable ViT-B-32 checkpoint (damaged, cut short or another format: KeyError)"),
    (b"junk\n", "is not a readable ViT-B-32 checkpoint (damaged, cut short or another format: KeyError)"),
    (b"", "is not a readable ViT-B-32 checkpoint: it is empty (0 bytes; a copy or download cut short?)"),
])
def test_clipscore_names_any_unloadable_file_as_such(tmp_path, content, reason):
    """The reviewer's repro: `error: 101`, `error: 174812789`, `error: internal error (EOFError)` before."""
    from evaluation.artifacts import write_artifact

    write_artifact(tmp_path / "art", "4dfy", "A cat singing.", make_frames(2, 16, 16),
                   source={"kind": "import", "file": "x", "sha256": "0"}, trajectory="orbit", fps=15)
    weights = tmp_path / "h.bin"
    weights.write_bytes(content)
    res = runner.invoke(app, ["clipscore", str(tmp_path / "art"), "--out", str(tmp_path / "s"), "--pretrained",
                              str(weights), "--device", "cpu", "--no-progress"])
    assert res.exit_code == 2, res.output
    (line,) = [ln for ln in error_lines(res) if ln.startswith("error:")]
    assert line.startswith("error: CLIP score: the weights of model 'ViT-B-32', pretrained ") and \
        f"were not found: the file {weights} {reason}." in line, line
    assert "hf download timm/vit_base_patch32_clip_224.openai" in line  # where the right file comes from
    assert "weights_only" not in line and "internal error" not in line

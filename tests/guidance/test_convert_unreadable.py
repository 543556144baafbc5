"""`fourdfy convert-mvdream FILE OUT` with a file that is no checkpoint names the file and what was expected, not
torch's advice to save it with `_use_new_zipfile_serialization=True` (which the file's owner cannot act on); a
checkpoint in torch's older (non-zip) format still loads."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
EXPECTED = ("expected MVDream's original checkpoint (e.g. sd-v2.1-base-4view.pt), a .pt/.ckpt saved by torch.save or "
            "a .safetensors file")


def _cut_zip(path):
    torch.save({"w": torch.zeros(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("name, write, why", [
    ("random.pt", lambda p: p.write_bytes(bytes(range(256)) * 8),
     "not a readable checkpoint (damaged, or not a PyTorch or safetensors file)"),
    ("notes.ckpt", lambda p: p.write_text("hello world\n"),
     "not a readable checkpoint (damaged, or not a PyTorch or safetensors file)"),
    ("cut.pt", _cut_zip, "not a readable checkpoint (damaged: its zip archive is cut short"),
    ("random.safetensors", lambda p: p.write_bytes(b"\xff" * 64), "not a readable safetensors file"),
], ids=["random-bytes", "text", "cut-zip", "safetensors"])
def test_a_file_that_is_no_checkpoint_is_named_with_what_was_expected(tmp_path, name, write, why):
    ckpt, out = tmp_path / name, tmp_path / "out"
    write(ckpt)
    res = runner.invoke(app, ["convert-mvdream", str(ckpt), str(out)])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {ckpt}: {why}"), res.output
    assert lines[0].endswith(EXPECTED), lines[0]
    assert "_use_new_zipfile_serialization" not in res.output and "mmap" not in res.output
    assert not out.exists()


def test_a_checkpoint_in_torchs_older_format_is_read(tmp_path):
    """torch.save(..., _use_new_zipfile_serialization=False) cannot be memory-mapped: it is read whole instead."""
    from method.guidance import mvdream_convert as mc

    ckpt = tmp_path / "legacy.ckpt"
    weights = {"state_dict": {"model.diffusion_model.out.2.bias": torch.arange(4.0)}}
    torch.save(weights, ckpt, _use_new_zipfile_serialization=False)
    sd = mc.load_state_dict_file(ckpt)
    assert list(sd) == ["model.diffusion_model.out.2.bias"]
    assert torch.equal(sd["model.diffusion_model.out.2.bias"], torch.arange(4.0))

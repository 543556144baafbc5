"""benchmarks/activation_memory.py at a tiny size (so it cannot rot): what it reports holds for what it measures."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import activation_memory  # noqa: E402


@pytest.mark.slow
def test_render_and_field_rows_at_a_tiny_size(capsys):
    res = activation_memory.main(["--frames", "1", "--height", "4", "--width", "4", "--caps", "50,20",
                                  "--chunk", "1000", "--skip-vae"])
    rows = {r["option"]: r for r in res["render"]}
    none, regions, one = rows["none"], rows["recompute_field (regions of 1,000)"], rows["recompute_field, one region"]
    assert none["with_grad"] > 3000  # several regions of 1000
    assert one["rgb_diff"] == 0 and one["grad_diff"] == 0  # one region: bit-identical
    assert regions["rgb_diff"] == 0 and 0 <= regions["grad_diff"] < 1e-5  # regions: summation order only
    assert regions["held"] < none["held"] / 10 and one["held"] < none["held"] / 10
    assert rows["grad_max_samples 5e+01"]["with_grad"] == 50 and rows["grad_max_samples 2e+01"]["with_grad"] == 20
    assert rows["grad_max_samples 5e+01"]["grad_diff"] > 0  # a different estimator
    assert all(r["peak"] > 0 and r["seconds"] > 0 for r in res["render"])
    # per sample: the plain field keeps its activations, the recomputed one x (12 B) and t (4 B) only
    assert all(plain > 100 and lean == 16 for _, _, plain, lean in res["field"])
    assert "| none |" in capsys.readouterr().out


def test_vae_image_with_checkpointing_has_the_same_gradient_and_holds_less():
    plain, lean = (activation_memory.vae_image(32, 48, ckpt, 0) for ckpt in (False, True))
    assert torch.equal(plain["grad"], lean["grad"]) and plain["grad"].abs().sum() > 0
    assert lean["held"] < plain["held"] / 5

"""The per-step update draw: frequencies over many draws match probabilities written down from the
paper's Algorithm 1 and the release (sequential draw), not probabilities computed by the same config."""

import pytest
import torch
from scipy.stats import binom

from baselines import resolve_config
from method.training.config import StageConfig
from method.training.draw import draw_update

N = 2000

# (P(3d), P(img), P(video)) per stage; None: the stage is skipped. Algorithm 1 with P_3D = P_IMG = 0.5,
# read as the release does: 3D with P_3D, else IMG with P_IMG, else video (stages 1-2: never video).
EXPECTED = {
    "4dfy": [(1.0, 0.0, 0.0), (0.5, 0.5, 0.0), (0.5, 0.25, 0.25)],
    "wo_3d": [(0.0, 1.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.5, 0.5)],
    "wo_img": [(1.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.5, 0.0, 0.5)],
    "wo_hybrid": [(1.0, 0.0, 0.0), (0.5, 0.5, 0.0), (0.0, 0.0, 1.0)],
    "wo_3d_img": [None, None, (0.0, 0.0, 1.0)],
    "single_stage": [None, None, (0.5, 0.25, 0.25)],
    "hexplane": [(1.0, 0.0, 0.0), (0.5, 0.5, 0.0), (0.5, 0.25, 0.25)],
    "single_grid": [(1.0, 0.0, 0.0), (0.5, 0.5, 0.0), (0.5, 0.25, 0.25)],
}


@pytest.mark.parametrize("profile", ["paper", "release"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_draw_frequencies_match_the_written_probabilities(name, profile):
    cfg = resolve_config(profile, name)
    g = torch.Generator().manual_seed(123)
    assert len(cfg.stages) == 3
    for stage, row in zip(cfg.stages, EXPECTED[name]):
        assert (stage.steps == 0) == (row is None), (name, stage.name)
        if row is None:
            continue
        counts = {"3d": 0, "img": 0, "video": 0}
        for _ in range(N):
            counts[draw_update(stage, g)] += 1
        for kind, p in zip(("3d", "img", "video"), row):
            if p in (0.0, 1.0):
                assert counts[kind] == N * p, (name, stage.name, kind, counts)
            else:  # within 99.9% binomial bounds
                assert binom.ppf(0.0005, N, p) <= counts[kind] <= binom.ppf(0.9995, N, p), (name, stage.name, counts)


def test_the_config_reports_the_same_probabilities():
    for name, rows in EXPECTED.items():
        for stage, row in zip(resolve_config("paper", name).stages, rows):
            if row is not None:
                probs = stage.update_probabilities()
                assert (probs["3d"], probs["img"], probs["video"]) == pytest.approx(row), (name, stage.name)


def test_draw_uses_two_uniforms_per_step_whatever_the_branch():
    """A resumed run must see the same random stream whichever update the previous step drew."""
    stage = resolve_config("paper", "4dfy").stage("stage3")
    g = torch.Generator().manual_seed(7)
    for _ in range(50):
        before = g.get_state().clone()
        draw_update(stage, g)
        ref = torch.Generator()
        ref.set_state(before)
        torch.rand(2, generator=ref, dtype=torch.float64)
        assert torch.equal(g.get_state(), ref.get_state())


def test_inconsistent_stage_is_rejected():
    with pytest.raises(ValueError, match="only 3D"):
        StageConfig("s", 10, p_3d=0.5, p_img=0.0, allow_video=False).update_probabilities()

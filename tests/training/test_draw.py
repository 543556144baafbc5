"""Update-type frequencies over 2,000 draws per stage lie within 99.9% binomial bounds, every method."""

import pytest
import torch
from scipy.stats import binom

from baselines import METHODS, resolve_config
from method.training.config import StageConfig
from method.training.draw import draw_update

N = 2000


@pytest.mark.parametrize("name", [m for m in METHODS if METHODS[m].trainable])
def test_frequencies_within_binomial_bounds(name):
    cfg = resolve_config("paper", name)
    g = torch.Generator().manual_seed(123)
    for stage in cfg.stages:
        if stage.steps == 0:
            continue
        probs = stage.update_probabilities()
        assert sum(probs.values()) == pytest.approx(1.0)
        counts = {"3d": 0, "img": 0, "video": 0}
        for _ in range(N):
            counts[draw_update(stage, g)] += 1
        for kind, p in probs.items():
            lo, hi = binom.ppf(0.0005, N, p), binom.ppf(0.9995, N, p)
            assert lo <= counts[kind] <= hi, (name, stage.name, kind, counts, probs)


def test_release_sequential_draw_gives_half_quarter_quarter():
    stage = resolve_config("release", "4dfy").stage("stage3")
    assert stage.update_probabilities() == {"3d": 0.5, "img": 0.25, "video": 0.25}


def test_stage_one_is_3d_only_and_stage_two_never_video():
    cfg = resolve_config("paper", "4dfy")
    assert cfg.stage("stage1").update_probabilities() == {"3d": 1.0, "img": 0.0, "video": 0.0}
    assert cfg.stage("stage2").update_probabilities()["video"] == 0.0


def test_inconsistent_stage_is_rejected():
    with pytest.raises(ValueError, match="only 3D"):
        StageConfig("s", 10, p_3d=0.5, p_img=0.0, allow_video=False).update_probabilities()

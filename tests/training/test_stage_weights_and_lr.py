"""A stage's own loss weights (`stages.<name>.weights`) and the learning-rate reading of S1's video weight
(`stages.<name>.video_lr_scale`), through the trainer's real step with oracle priors."""

import pytest
import torch

from method.training.config import StageConfig
from method.training.trainer import Trainer

from oracle_setup import oracle_priors, small_oracle_config


def _one_step(cfg, stage_index: int) -> dict:
    """One training step of stage `stage_index` from the run's start: the update drawn, each field parameter's
    value before, gradient and value after, the groups' LRs when the optimizer stepped and after the step, and
    each parameter's group."""
    tr = Trainer(cfg, "blobs", "unused", priors=oracle_priors(cfg), progress=False)
    tr._build_optimizer(stage_index)
    before = {n: p.detach().clone() for n, p in tr.field.named_parameters()}
    seen = {}
    step = tr.optimizer.step

    def spy():  # what the optimizer reads at the moment it steps
        seen["lr"] = dict(tr.learning_rates())
        seen["grad"] = {n: p.grad.clone() for n, p in tr.field.named_parameters() if p.grad is not None}
        return step()

    tr.optimizer.step = spy
    update = tr.train_step(stage_index, 0)["update"]
    groups = tr.field.param_groups()
    return {"update": update, "lr_at_step": seen["lr"], "lr_after": tr.learning_rates(),
            "params": {n: (before[n], seen["grad"].get(n), p.detach().clone())
                       for n, p in tr.field.named_parameters()},
            "group": {n: next(k for k, ps in groups.items() if any(q is p for q in ps))
                      for n, p in tr.field.named_parameters()}}


def _video_cfg(scale: float):
    # S1's other reading: the video loss at weight 1, its "total learning rate 0.1" on the optimizer step
    return small_oracle_config(**{"stages.stage3.p_3d": 0.0, "stages.stage3.p_img": 0.0, "weights.sds_video": 1.0,
                                  "stages.stage3.video_lr_scale": scale})


def test_a_video_lr_scale_moves_parameters_that_fraction_as_far_on_a_video_step():
    """Weight 1, scale 0.1: every group steps with 0.1 x its LR (put back afterwards), and the parameters move
    0.1 x as far as at scale 1, as AdamW's first step computed here by hand says:
    p <- p (1 - lr wd) - lr g / (|g| + eps), with lr the group's configured rate x 0.1."""
    full, tenth = _one_step(_video_cfg(1.0), 2), _one_step(_video_cfg(0.1), 2)
    assert full["update"] == tenth["update"] == "video"
    configured = full["lr_after"]
    assert configured["static"] == pytest.approx(1e-4) and configured["dynamic"] == pytest.approx(1e-2)
    assert full["lr_at_step"] == configured and tenth["lr_after"] == configured  # put back after the step
    assert tenth["lr_at_step"] == pytest.approx({k: 0.1 * v for k, v in configured.items()})
    cfg = _video_cfg(0.1)
    moved = set()
    for name, (p0, g, p1) in tenth["params"].items():
        b0, bg, b1 = full["params"][name]
        assert torch.equal(p0, b0), name  # the same start and, one step in, the same gradient
        if g is None:  # a frozen group (none in this stage's video update) would not move
            assert bg is None and torch.equal(p1, p0), name
            continue
        assert torch.equal(g, bg), name
        # float32 parameters of size up to ~1 round a 1e-4 step to about 1e-7
        torch.testing.assert_close(p1 - p0, 0.1 * (b1 - b0), rtol=1e-3, atol=1e-6, msg=name)
        lr = configured[tenth["group"][name]] * 0.1
        expected = p0 * (1 - lr * cfg.weight_decay) - lr * g / (g.abs() + cfg.eps)
        torch.testing.assert_close(p1, expected, rtol=1e-6, atol=1e-9, msg=name)
        if not torch.equal(p1, p0):
            moved.add(tenth["group"][name])
    assert {"dynamic", "mlp"} <= moved


def test_the_video_lr_scale_leaves_other_updates_alone():
    """A 3D update of the same stage steps at the configured LRs and lands where it does at scale 1."""
    a, b = (_one_step(small_oracle_config(**{"stages.stage3.p_3d": 1.0, "stages.stage3.video_lr_scale": s}), 2)
            for s in (1.0, 0.1))
    assert a["update"] == b["update"] == "3d" and a["lr_at_step"] == b["lr_at_step"] == b["lr_after"]
    assert all(torch.equal(a["params"][n][2], b["params"][n][2]) for n in a["params"])


def test_a_stages_weights_replace_the_runs_weights_in_that_stage_only():
    """`stages.stage1.weights` (the release's low-VRAM stage 1 turns the sparsity loss off): a stage-1 step with
    the run's sparsity 10 and the stage's 0 lands exactly where a run with sparsity 0 does, and elsewhere than
    one with 10; stage 2 keeps the run's weights."""
    zero, ten = (small_oracle_config(**{"weights.sparsity": w}) for w in (0.0, 10.0))
    staged = small_oracle_config(**{"weights.sparsity": 10.0, "stages.stage1.weights": {"sparsity": 0}})
    assert staged.loss_weights(staged.stages[0]).sparsity == 0.0
    assert staged.loss_weights(staged.stages[1]) == staged.weights == ten.weights
    a, b, c = (_one_step(cfg, 0)["params"] for cfg in (zero, staged, ten))
    assert all(torch.equal(a[n][2], b[n][2]) for n in a)
    assert not all(torch.equal(b[n][2], c[n][2]) for n in b)
    # and in stage 2 the override is gone: the staged run steps as the run with 10
    b2, c2 = (_one_step(cfg, 1)["params"] for cfg in (staged, ten))
    assert all(torch.equal(b2[n][2], c2[n][2]) for n in b2)


def test_a_stages_opacity_entropy_start_is_its_own():
    """`stages.<name>.weights.opacity_entropy_from` moves the entropy term's start in that stage only (what
    docs/fidelity.md gives for the paper's 10k-step stage 2)."""
    cfg = small_oracle_config(**{"weights.opacity_entropy": 1.0, "stages.stage2.weights": {"opacity_entropy_from": 5}})
    tr = Trainer(cfg, "blobs", "unused", priors=oracle_priors(cfg), progress=False)
    o = torch.full((4,), 0.5)
    on = {name: [("loss_opacity_entropy" in tr._regularisers(o, step, cfg.loss_weights(cfg.stage(name))))
                 for step in (4, 5)] for name in ("stage2", "stage3")}
    assert on == {"stage2": [False, True], "stage3": [False, False]}
    assert isinstance(cfg.loss_weights(cfg.stage("stage2")).opacity_entropy_from, int)


@pytest.mark.parametrize("weights, match", [({"sparsty": 0.0}, r"stages\.s\.weights names no loss weight"),
                                            ({"opacity_entropy_from": 2.5}, "an integer >= 0")])
def test_a_stage_weight_that_is_no_loss_weight_is_refused(weights, match):
    with pytest.raises(ValueError, match=match):
        StageConfig("s", 1, p_3d=1.0, p_img=0.0, allow_video=False, weights=weights)
    with pytest.raises(ValueError, match="video_lr_scale must be >= 0"):
        StageConfig("s", 1, p_3d=1.0, p_img=0.0, allow_video=False, video_lr_scale=-0.1)


def test_stage_weights_read_back_from_a_manifest_keep_the_hash():
    """A config saved in a manifest (`to_dict`) and typed again holds the same stage weights and hash, whether
    the profile wrote them as integers or floats."""
    from method.training.config import TrainConfig
    from method.training.profiles import load_profile

    low = load_profile("release-lowvram")
    again = TrainConfig.from_dict(low.to_dict())
    assert again.stages[0].weights == {"sparsity": 0.0, "opacity_entropy": 0.0}
    assert again.config_hash() == low.config_hash()
    ints = small_oracle_config(**{"stages.stage1.weights": {"sparsity": 0}})
    assert TrainConfig.from_dict(ints.to_dict()).config_hash() == ints.config_hash()


def test_resume_differences_ignore_options_a_saved_config_lacks_at_their_neutral_value():
    """A config saved before StageConfig.weights / video_lr_scale existed lacks those keys: the differences
    named to the user are the real ones, not the new options at their neutral values."""
    from method.training.config import config_differences, replace
    from method.training.profiles import tiny

    here = replace(tiny(), **{"weights.sds_video": 0.3}).to_dict()
    there = tiny().to_dict()
    for s in there["stages"]:  # as a manifest written before the options existed
        del s["weights"], s["video_lr_scale"]
    assert config_differences(there, here) == ["weights.sds_video 0.1 there, 0.3 here"]

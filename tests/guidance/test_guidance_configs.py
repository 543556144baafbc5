"""Typed prior configs: what they build, nested option blocks reachable by dotted keys, saved and
rebuilt by `kind`, checked when made; the `times` argument of the call contract; precision defaults."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest
import torch

from method.configs import ConfigKeyError, get_key, set_key, to_dict, valid_keys
from method.guidance import (FrozenModelOptions, Guidance, MVDreamConfig, MVDreamGuidance, PriorConfig, VSDConfig,
                             VSDGuidance, ViewPromptOptions, ZeroscopeConfig, ZeroscopeGuidance, build_prior)

CONFIGS = (MVDreamConfig, VSDConfig, ZeroscopeConfig)


@pytest.mark.parametrize("cls,kind,guidance", [(MVDreamConfig, "mvdream", MVDreamGuidance),
                                               (VSDConfig, "vsd", VSDGuidance),
                                               (ZeroscopeConfig, "zeroscope", ZeroscopeGuidance)])
def test_config_names_its_kind_and_the_class_it_builds(cls, kind, guidance):
    assert issubclass(cls, PriorConfig) and dataclasses.is_dataclass(cls)
    assert dataclasses.fields(cls)[0].name == "kind" and cls().kind == kind
    module, _, name = cls.target.partition(":")
    assert (module, name) == (guidance.__module__, guidance.__name__)
    assert PriorConfig.config_class(kind) is cls
    with pytest.raises(dataclasses.FrozenInstanceError):
        cls().model = "x"  # type: ignore[misc]
    with pytest.raises(ValueError, match=f"must be '{kind}'"):
        cls(kind="other")


@pytest.mark.parametrize("cls", CONFIGS)
def test_saved_config_comes_back_as_the_same_typed_config(cls):
    cfg = dataclasses.replace(cls(), model="/models/x", frozen=FrozenModelOptions(half_precision=False, sdpa=False,
                                                                                  vae_slicing=True),
                              view_prompt=ViewPromptOptions(enabled=True, front=40.0, back=20.0, overhead=70.0))
    data = json.loads(json.dumps(to_dict(cfg)))  # what a manifest holds
    assert data["kind"] == cls().kind and data["frozen"]["vae_slicing"] is True
    back = PriorConfig.from_config_dict(data)
    assert type(back) is cls and back == cfg
    with pytest.raises(ValueError, match="unknown prior kind"):
        PriorConfig.from_config_dict({**data, "kind": "nope"})
    with pytest.raises(ConfigKeyError, match="unknown field"):
        PriorConfig.from_config_dict({**data, "half_precision": True})  # the old flat field is gone


def test_every_option_is_reachable_by_a_dotted_key():
    priors = {"3d": MVDreamConfig(), "img": VSDConfig(), "video": ZeroscopeConfig()}
    keys = valid_keys(priors)
    for unit in priors:
        for key in ("frozen.half_precision", "frozen.sdpa", "frozen.vae_slicing", "view_prompt.enabled",
                    "view_prompt.front", "view_prompt.back", "view_prompt.overhead", "model", "guidance_scale"):
            assert f"{unit}.{key}" in keys
    assert "img.lora_rank" in keys and "video.grad_frames" in keys and "3d.anneal_stages" in keys
    changed = set_key(priors, "img.frozen.half_precision", "false", parse=True)
    changed = set_key(changed, "video.view_prompt.front", "50", parse=True)
    changed = set_key(changed, "3d.guidance_scale", "7.5", parse=True)
    assert changed["img"].frozen == FrozenModelOptions(half_precision=False)
    assert changed["video"].view_prompt.front == 50.0 and changed["video"].view_prompt.back == 45.0
    assert get_key(changed, "3d.guidance_scale") == 7.5 and priors["3d"].guidance_scale == 50.0  # copies
    with pytest.raises(ConfigKeyError, match="img.frozen.half_precision"):
        set_key(priors, "img.frozen.half_precison", "true", parse=True)  # a typo lists the valid keys
    with pytest.raises(ConfigKeyError):
        set_key(priors, "img.frozen.sdpa", "maybe", parse=True)


@pytest.mark.parametrize("cls,field,value", [(MVDreamConfig, "cfg_form", "other"), (MVDreamConfig, "loss", "l2"),
                                             (MVDreamConfig, "anneal", "slow"), (VSDConfig, "weighting", "nope"),
                                             (ZeroscopeConfig, "cfg_form", "both")])
def test_unknown_choices_fail_when_the_config_is_made(cls, field, value):
    with pytest.raises(ValueError, match=value):
        cls(**{field: value})
    with pytest.raises(ValueError, match=value):
        set_key({"p": cls()}, f"p.{field}", value)


def test_precision_defaults_follow_the_release():
    """The release runs MVDream in fp32 (its guidance never applies `half_precision_weights`, trainer
    precision 32), SD (VSD) with fp16 weights and Zeroscope in fp16. CPU always computes in fp32."""
    from method.guidance.loading import weights_dtype

    assert MVDreamConfig().frozen.half_precision is False
    assert VSDConfig().frozen.half_precision is True and ZeroscopeConfig().frozen.half_precision is True
    assert weights_dtype("cuda", True) == torch.float16 and weights_dtype("cuda", False) == torch.float32
    assert weights_dtype("cpu", True) == torch.float32
    # bfloat16 is asked for by name and used on CUDA only; the default half type stays the release's float16
    assert all(c().frozen.half_dtype == "float16" for c in CONFIGS)
    assert weights_dtype("cuda", True, "bfloat16") == torch.bfloat16
    assert weights_dtype("cuda", False, "bfloat16") == torch.float32 and weights_dtype("cpu", True, "bfloat16") == torch.float32
    with pytest.raises(ValueError, match="half_dtype"):
        FrozenModelOptions(half_dtype="float8")
    with pytest.raises(ValueError, match="half_dtype"):
        weights_dtype("cuda", True, "fp16")


def test_build_prior_builds_what_the_config_names(mvdream):
    from method.guidance import tiny_mvdream_config

    prior = build_prior(tiny_mvdream_config())
    assert type(prior) is MVDreamGuidance and isinstance(prior, Guidance)
    assert prior.cfg == tiny_mvdream_config()
    assert all(torch.equal(a, b) for a, b in zip(prior.unet.state_dict().values(), mvdream.unet.state_dict().values()))
    with pytest.raises(TypeError, match="PriorConfig"):
        build_prior({"kind": "mvdream"})  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [Guidance, MVDreamGuidance, VSDGuidance, ZeroscopeGuidance])
def test_times_is_part_of_the_call_contract(cls):
    params = inspect.signature(cls.__call__).parameters
    assert list(params)[1:] == ["rgb", "cameras", "prompt", "step", "generator", "stage", "times"]
    assert params["times"].default is None and not hasattr(cls, "uses_times")


def test_priors_without_time_ignore_times(mvdream, zeroscope, make_rgb):
    from method.cameras import cameras_from_spherical, sample_multiview_groups

    cams = sample_multiview_groups(1, generator=torch.Generator().manual_seed(0))
    rgb = make_rgb(4, 16, 16)
    a = mvdream(rgb, cams, "a corgi", 3, generator=torch.Generator().manual_seed(1), stage="stage2")["loss_sds"]
    b = mvdream(rgb, cams, "a corgi", 3, generator=torch.Generator().manual_seed(1), stage="stage2",
                times=torch.rand(4))["loss_sds"]
    assert a.item() == b.item()
    vcams = cameras_from_spherical(torch.zeros(4), 0.0, 2.8, 40.0)
    rgb = make_rgb(4, 16, 24)
    a = zeroscope(rgb, vcams, "a corgi", 0, generator=torch.Generator().manual_seed(1))["loss_sds_video"]
    b = zeroscope(rgb, vcams, "a corgi", 0, generator=torch.Generator().manual_seed(1),
                  times=torch.linspace(0, 1, 4))["loss_sds_video"]
    assert a.item() == b.item()


def test_wo_3d_gives_its_stage_1_vsd_the_s1_timestep_anneal_and_only_there():
    """Paper S1: stage 1 anneals t from [0.02, 0.98] to [0.02, 0.5] over 5k steps; wo_3d trains stage 1 with VSD."""
    from baselines import resolve_config

    vsd = resolve_config("paper", "wo_3d").guidance["img"]
    start, mid, end = (vsd.timestep_range("stage1").fractions(s) for s in (0, 2500, 5000))
    assert start == pytest.approx((0.02, 0.98)) and mid == pytest.approx((0.02, 0.74))
    assert end == pytest.approx((0.02, 0.5))
    assert vsd.timestep_range("stage2").fractions(0) == pytest.approx((0.02, 0.5))
    assert resolve_config("paper", "4dfy").guidance["img"].timestep_range("stage1").fractions(0) == pytest.approx((0.02, 0.5))

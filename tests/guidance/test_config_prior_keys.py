"""A prior's config refuses a bad choice or timestep range when it is made, naming the key the user typed: a review
found `VSDConfig.cfg_form = 'both'; known: ...` for `--set guidance.img.cfg_form=both` (a class, not a key), and a
`t_range` with min > max accepted until the first step that drew a timestep from it."""

import dataclasses
import json

import pytest

from method.configs import from_dict, set_key
from method.guidance import MVDreamConfig, VSDConfig, ZeroscopeConfig
from method.guidance.base import PriorConfig
from method.oracle.check import oracle_config
from method.oracle.prior import OracleConfig
from method.ranges import RangeError
from method.training.config import TrainConfig
from pipelines.generate import build_config


def _refusal(key: str, text: str, cfg: TrainConfig | None = None) -> str:
    """The message of `--set KEY=TEXT` on the tiny profile (`cfg`: on that config, by the same dotted-key API)."""
    with pytest.raises(ValueError) as err:
        if cfg is None:
            build_config("tiny", "4dfy", sets={key: text})  # what `fourdfy generate --set` calls
        else:
            set_key(cfg, key, text, parse=True)
    return str(err.value)


# (key, --set text, the whole message): each named a class, or was accepted until used
CHOICES = [
    ("guidance.img.cfg_form", "both", "guidance.img.cfg_form must be one of (paper, release), got 'both'"),
    ("guidance.3d.cfg_form", "other", "guidance.3d.cfg_form must be one of (paper, release), got 'other'"),
    ("guidance.video.weighting", "flat",
     "guidance.video.weighting must be one of (sds, uniform, fantasia3d, recon), got 'flat'"),
    ("guidance.3d.loss", "l2", "guidance.3d.loss must be one of (recon, sds), got 'l2'"),
    ("guidance.3d.anneal", "slow", "guidance.3d.anneal must be one of (none, release, paper), got 'slow'"),
    ("guidance.img.kind", "mvdream", "guidance.img.kind must be 'vsd' (for another prior, set the entry itself to a "
                                     "mapping with that kind, e.g. {\"kind\": \"mvdream\"}), got 'mvdream'"),
]

RANGES = [
    ("guidance.3d.t_range", "[0.5, 0.2]", "guidance.3d.t_range must have low <= high, got [0.5, 0.2]"),
    ("guidance.img.t_range", "[0.1, 1.5]",
     "guidance.img.t_range must be from 0 to 1 each (fractions of the diffusion steps), got [0.1, 1.5]"),
    ("guidance.img.t_anneal_start", "[0.9, 0.8]", "guidance.img.t_anneal_start must have low <= high, got [0.9, 0.8]"),
    ("guidance.img.lora_t_range", "[-0.1, 1]",
     "guidance.img.lora_t_range must be from 0 to 1 each (fractions of the diffusion steps), got [-0.1, 1.0]"),
    ("guidance.video.t_range", "[0.6, 0.3]", "guidance.video.t_range must have low <= high, got [0.6, 0.3]"),
]


@pytest.mark.parametrize("key, text, says", CHOICES + RANGES)
def test_set_names_the_dotted_key_and_what_it_takes(key, text, says):
    assert _refusal(key, text) == says


@pytest.mark.parametrize("key, text, says", [c for c in CHOICES if not c[0].endswith(".kind")] + RANGES)
def test_an_edited_saved_config_names_the_same_key(key, text, says):
    # (a saved entry's kind picks its config class, so an edited kind is read as that prior's entry)
    d = build_config("tiny", "4dfy").to_dict()  # a manifest's config, edited by hand
    _, update, field = key.split(".")
    d["guidance"][update][field] = json.loads(text) if text.startswith("[") else text
    with pytest.raises(ValueError) as err:
        TrainConfig.from_dict(d)
    assert str(err.value) == says


ORACLE = [
    ("guidance.3d.loss_name", "sparsity", "guidance.3d.loss_name must be one of (sds, vsd, lora, sds_video), "
                                          "got 'sparsity'"),
    ("guidance.img.scene", "other", "guidance.img.scene must be one of (base, recolored), got 'other'"),
    ("guidance.3d.t_range", "[0.98, 0.02]", "guidance.3d.t_range must have low <= high, got [0.98, 0.02]"),
    ("guidance.3d.t_anneal_start", "[0.5, 1.5]", "guidance.3d.t_anneal_start must be from 0 to 1 each (fractions of "
                                                 "the diffusion steps), got [0.5, 1.5]"),
]


@pytest.mark.parametrize("key, text, says", ORACLE)
def test_the_oracle_prior_names_its_keys_too(key, text, says):
    assert _refusal(key, text, oracle_config()) == says


def test_an_unknown_kind_in_a_saved_entry_names_its_key():
    with pytest.raises(ValueError) as err:
        set_key(build_config("tiny", "4dfy"), "guidance.3d", '{"kind": "mvdreem"}', parse=True)
    assert str(err.value) == ("guidance.3d.kind = 'mvdreem' is an unknown prior kind; known: mvdream, oracle, vsd, "
                              "zeroscope")


def test_what_the_kind_message_advises_works():
    """Another prior is a whole entry: the mapping with its kind replaces the entry's config."""
    cfg = set_key(build_config("tiny", "4dfy"), "guidance.img", '{"kind": "mvdream"}', parse=True)
    assert type(cfg.guidance["img"]) is MVDreamConfig


@pytest.mark.parametrize("cls, field, value", [
    (VSDConfig, "cfg_form", "both"), (ZeroscopeConfig, "weighting", "flat"), (MVDreamConfig, "loss", "l2"),
    (MVDreamConfig, "anneal", "slow"), (VSDConfig, "kind", "mvdream"), (OracleConfig, "loss_name", "sparsity"),
    (OracleConfig, "scene", "other"), (MVDreamConfig, "t_range", (0.5, 0.2)), (ZeroscopeConfig, "t_range", (0.0, 1.1)),
    (VSDConfig, "t_anneal_start", (0.9, 0.8)), (VSDConfig, "lora_t_range", (-0.5, 1.0)),
    (OracleConfig, "t_range", (0.6, 0.1)), (OracleConfig, "t_anneal_start", (0.2, 1.2)),
])
def test_a_prior_config_alone_names_its_field(cls, field, value):
    with pytest.raises(RangeError) as err:
        cls(**{field: value})
    assert err.value.key == field and str(err.value).startswith(f"{field} must "), str(err.value)
    with pytest.raises(RangeError) as err:  # from a saved entry's mapping, named by where it sits
        from_dict(cls, {**json.loads(json.dumps(dataclasses.asdict(cls()))), field: value}, "guidance.x")
    assert err.value.key == f"guidance.x.{field}"


@pytest.mark.parametrize("cls", [MVDreamConfig, VSDConfig, ZeroscopeConfig, OracleConfig])
@pytest.mark.parametrize("value", [(0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.3, 0.3)])
def test_ranges_with_equal_ends_and_the_bounds_themselves_are_allowed(cls, value):
    assert cls(t_range=value).t_range == value


def test_a_prior_without_stage_names_uses_the_base_stage_refs():
    """`TrainConfig.check_links` calls `stage_refs()` on every prior; Zeroscope's fields name no stage."""
    assert "stage_refs" not in vars(ZeroscopeConfig) and ZeroscopeConfig().stage_refs() == {}
    assert PriorConfig.stage_refs is ZeroscopeConfig.stage_refs
    cfg = build_config("tiny", "4dfy", sets={"guidance.video.t_range": [0.1, 0.9]})  # the links checked after --set
    assert isinstance(cfg.guidance["video"], ZeroscopeConfig) and cfg.guidance["video"].t_range == (0.1, 0.9)
    cfg.check_links()

"""Each part's config checks the ranges of its own fields when it is made, alone (`method.ranges`), naming the field;
built inside a run's config (by a dotted key or from a saved dict) the message names the key as `--set` writes it
(choices and low <= high ranges too). And the loss weights (the run's and a stage's own), the blob-sigma anneal and the
groups of `static_groups` / `video_groups` are checked."""

import dataclasses
import math

import pytest

from method.background import BackgroundConfig
from method.cameras import CameraRanges
from method.configs import from_dict, set_key, set_keys
from method.fields import FieldConfig
from method.fields.config import HashGridConfig, HexPlaneConfig
from method.guidance import MVDreamConfig, VSDConfig, ZeroscopeConfig
from method.guidance.base import FrozenModelOptions
from method.oracle.prior import OracleConfig
from method.ranges import RangeError
from method.render import RenderConfig
from method.render.occupancy import OccupancyConfig
from method.training.config import Anneal, LearningRates, LossWeights, RenderSchedule, StageConfig, TrainConfig
from method.training.profiles import load_profile

# (config class, field, a value the run cannot use): each was accepted when the class was made alone
BAD_PARTS = [
    (HashGridConfig, "n_levels", 0), (HashGridConfig, "n_features_per_level", 0),
    (HashGridConfig, "log2_hashmap_size", 0), (HashGridConfig, "base_resolution", 0),
    (HashGridConfig, "per_level_scale", 0.0), (HashGridConfig, "per_level_scale", math.nan),
    (HexPlaneConfig, "spatial_resolutions", (0, 8, 16, 32)), (HexPlaneConfig, "time_resolutions", (4, 0, 16, 16)),
    (HexPlaneConfig, "n_features_per_scale", 0), (FieldConfig, "mlp_hidden", 0),
    (BackgroundConfig, "hidden", 0), (BackgroundConfig, "n_hidden_layers", -1), (BackgroundConfig, "sh_degree", 4),
    (BackgroundConfig, "sh_degree", 0), (BackgroundConfig, "random_color_prob", 1.5),
    (RenderConfig, "eval_chunk_rays", 0), (RenderConfig, "train_chunk_rays", 0), (RenderConfig, "alpha_thre", -0.1),
    (RenderConfig, "early_stop_eps", -1.0), (RenderConfig, "grad_max_samples", 0), (RenderConfig, "recompute_chunk", 0),
    (OccupancyConfig, "resolution", 0), (OccupancyConfig, "levels", 0), (OccupancyConfig, "update_every", 0),
    (OccupancyConfig, "warmup_steps", -1), (OccupancyConfig, "occ_thre", -1.0), (OccupancyConfig, "ema_decay", 2.0),
    (OccupancyConfig, "static_time", -0.5),
    (CameraRanges, "distance", (-1.0, 3.0)), (CameraRanges, "fovy_deg", (0.0, 60.0)),
    (CameraRanges, "fovy_deg", (15.0, 180.0)), (CameraRanges, "elevation_deg", (-100.0, 30.0)),
    (CameraRanges, "elevation_sampler", "uniform"), (CameraRanges, "sphere_uniform_prob", 1.5),
    (HexPlaneConfig, "form", "kplanes"), (FrozenModelOptions, "half_dtype", "float8"),
    (MVDreamConfig, "num_views", 0), (MVDreamConfig, "image_size", 0), (MVDreamConfig, "num_head_channels", 0),
    (MVDreamConfig, "anneal_steps", -1),
    (VSDConfig, "lora_rank", 0), (VSDConfig, "resolution", 0), (VSDConfig, "t_anneal_steps", -1),
    (VSDConfig, "camera_dropout", 1.5),
    (ZeroscopeConfig, "height", 0), (ZeroscopeConfig, "width", 0), (ZeroscopeConfig, "grad_frames", 0),
    (OracleConfig, "quadrature_nodes", 0), (OracleConfig, "t_anneal_steps", -1),
    (LearningRates, "static", -1.0), (RenderSchedule, "video_size", (0, 4)),
]


@pytest.mark.parametrize("cls, name, value", BAD_PARTS, ids=lambda v: getattr(v, "__name__", repr(v)))
def test_a_part_config_alone_refuses_a_value_out_of_range_naming_its_field(cls, name, value):
    with pytest.raises(RangeError) as err:
        cls(**{name: value})
    assert str(err.value).startswith(f"{name} must be "), str(err.value)
    assert err.value.key == name


def test_the_message_says_the_rule_and_the_value():
    with pytest.raises(ValueError, match=r"^n_levels must be >= 1, got 0$"):
        HashGridConfig(n_levels=0)
    with pytest.raises(ValueError, match=r"^ema_decay must be from 0 to 1, got 2\.0$"):
        OccupancyConfig(ema_decay=2.0)
    with pytest.raises(ValueError, match=r"^distance must be > 0 each, got \[-1\.0, 3\.0\]$"):
        CameraRanges(distance=(-1.0, 3.0))
    with pytest.raises(ValueError, match=r"^sh_degree must be one of \[1, 2, 3\], got 4$"):
        BackgroundConfig(sh_degree=4)


def test_a_range_whose_low_is_above_its_high_is_a_range_error_of_its_field():
    """It was a plain ValueError named by the class ('CameraRanges.elevation_deg: low 30 > high 10'), which the key
    path could not extend."""
    for name in ("distance", "fovy_deg", "elevation_deg", "azimuth_deg"):
        with pytest.raises(RangeError, match=rf"^{name} must have low <= high, got \[30\.0, 10\.0\]$"):
            CameraRanges(**{name: (30.0, 10.0)})
    assert CameraRanges(elevation_deg=(10.0, 10.0)).elevation_deg == (10.0, 10.0)  # a point range stays allowed


def test_the_blob_sigma_anneal_checks_its_own_ends_and_steps():
    """`Anneal`, whose one use is the density bias's sigma (divided by), checks itself; `TrainConfig` did, so an
    `Anneal(0, 1)` made alone passed."""
    for args, says in [((0.0, 1.0), r"^start must be > 0, got 0\.0$"), ((0.5, -1.0), r"^end must be > 0, got -1\.0$"),
                       ((0.5, math.nan), r"^end must be > 0, got nan$"),
                       ((0.5, 1.0, -1), r"^steps must be >= 0 \(0: constant start\), got -1$")]:
        with pytest.raises(RangeError, match=says):
            Anneal(*args)
    assert Anneal(0.5, 1.0, 0)(10) == 0.5  # steps 0: the constant start, as before
    with pytest.raises(ValueError, match=r"^blob_sigma\.stage3\.end must be > 0, got 0\.0$"):  # set whole, by key
        set_key(load_profile("tiny"), "blob_sigma", '{"stage3": {"start": 0.5, "end": 0}}', parse=True)


@pytest.mark.parametrize("cls, changes", [
    (RenderConfig, {"train_chunk_rays": None, "grad_max_samples": None, "alpha_thre": 0.0, "early_stop_eps": 0.0}),
    (ZeroscopeConfig, {"grad_frames": None}), (MVDreamConfig, {"anneal_steps": None}),
    (MVDreamConfig, {"anneal_steps": 0}), (VSDConfig, {"camera_dropout": 0.0, "t_anneal_steps": 0}),
    (VSDConfig, {"camera_dropout": 1.0}), (BackgroundConfig, {"n_hidden_layers": 0, "random_color_prob": 1.0}),
    (OccupancyConfig, {"ema_decay": 0.0, "static_time": 1.0, "warmup_steps": 0, "occ_thre": 0.0}),
    (CameraRanges, {"fovy_deg": (179.0, 179.5)}),
    (CameraRanges, {"elevation_deg": (-90.0, 90.0), "sphere_uniform_prob": 0.0, "elevation_sampler": "release"}),
    (HexPlaneConfig, {"form": "split"}), (FrozenModelOptions, {"half_dtype": "bfloat16"}),
    (LossWeights, {"sds": 0.0, "sparsity": 0.0}),
    (LearningRates, {"guidance": 0.0}),
])
def test_none_and_the_bounds_themselves_stay_allowed(cls, changes):
    cfg = cls(**changes)
    assert {k: getattr(cfg, k) for k in changes} == changes


# --- inside a run's config: the dotted key --------------------------------------------------------------

@pytest.mark.parametrize("key, value", [
    ("field.static_grid.n_levels", 0), ("field.hexplane.time_resolutions", [4, 0]), ("background.hidden", 0),
    ("renderer.train_chunk_rays", 0), ("renderer.occupancy.ema_decay", 2.0), ("cameras.distance", [-1.0, 3.0]),
    ("guidance.img.lora_rank", 0), ("guidance.video.grad_frames", 0), ("guidance.3d.num_views", 0),
    ("lrs.mlp", -1.0), ("render.video_size", [0, 4]), ("weights.vsd", -1.0), ("log_every", 0),
])
def test_built_by_key_or_from_a_saved_config_the_message_names_the_dotted_key(key, value):
    base = load_profile("tiny")
    with pytest.raises(ValueError) as err:
        set_key(base, key, value)
    assert str(err.value).startswith(f"{key} must be "), str(err.value)
    d = base.to_dict()  # a manifest's config, edited
    node = d
    *path, last = key.split(".")
    for part in path:
        node = node[part]
    node[last] = value
    with pytest.raises(ValueError) as err:
        TrainConfig.from_dict(d)
    assert str(err.value).startswith(f"{key} must be "), str(err.value)


def _edited(config: TrainConfig, key: str, value) -> dict:
    """The config's saved form (a manifest's) with the value at dotted `key` replaced; stages by their names."""
    d = config.to_dict()
    node = d
    *path, last = key.split(".")
    for part in path:
        node = next(s for s in node if s["name"] == part) if isinstance(node, list) else node[part]
    node[last] = value
    return d


# the messages that named a class ('CameraRanges.elevation_deg: low 30.0 > high 10.0', 'HexPlaneConfig.form = ...'),
# a part alone ('frozen.half_dtype must be ...') or a stage without its key ('stage3: grad_max_samples must be ...')
NAMED_BY_KEY = [
    ("cameras.elevation_deg", "[30, 10]", "cameras.elevation_deg must have low <= high, got [30.0, 10.0]"),
    ("cameras.azimuth_deg", "[90, -90]", "cameras.azimuth_deg must have low <= high, got [90.0, -90.0]"),
    ("cameras.elevation_deg", "[-100, 30]", "cameras.elevation_deg must be from -90 to 90 each (degrees), "
                                            "got [-100.0, 30.0]"),
    ("cameras.elevation_sampler", "uniform", "cameras.elevation_sampler must be one of (sphere_band, release), "
                                             "got 'uniform'"),
    ("cameras.sphere_uniform_prob", "1.5", "cameras.sphere_uniform_prob must be from 0 to 1, got 1.5"),
    ("field.hexplane.form", "kplanes", "field.hexplane.form must be one of (hexplane, split), got 'kplanes'"),
    ("guidance.img.frozen.half_dtype", "float8",
     "guidance.img.frozen.half_dtype must be one of ['bfloat16', 'float16'], got 'float8'"),
    ("stages.stage3.grad_max_samples", "0",
     "stages.stage3.grad_max_samples must be >= 1 (null: renderer.grad_max_samples), got 0"),
    ("stages.stage2.trainable", '["static", "mlps"]', "stages.stage2.trainable must name some of static, dynamic, "
     "mlp, background (null: the run's static_groups / video_groups), got ['static', 'mlps']"),
    ("stages.stage3.trainable", "[]", "stages.stage3.trainable must name some of static, dynamic, mlp, background "
                                      "(null: the run's static_groups / video_groups), got []"),
]


@pytest.mark.parametrize("key, text, says", NAMED_BY_KEY)
def test_by_set_or_from_a_saved_config_the_message_names_the_full_key(key, text, says):
    """As `--set KEY=TEXT` reads it (`parse`), as a `--set` of the whole part, and from an edited manifest."""
    from method.configs import parse_value

    base = load_profile("tiny")
    with pytest.raises(ValueError) as err:
        set_key(base, key, text, parse=True)
    assert str(err.value) == says
    head, _, last = key.rpartition(".")
    if not head.startswith("stages"):  # a part set whole as a mapping (a stage is set by its own keys)
        with pytest.raises(ValueError) as err:
            set_key(base, head, {last: parse_value(text)})
        assert str(err.value) == says
    with pytest.raises(ValueError) as err:
        TrainConfig.from_dict(_edited(base, key, parse_value(text)))
    assert str(err.value) == says


def test_a_part_set_whole_as_a_mapping_is_named_by_its_key():
    with pytest.raises(ValueError, match=r"^guidance\.3d\.anneal_steps must be >= 0, got -1$"):
        set_keys(load_profile("tiny"), {"guidance.3d": {"kind": "mvdream", "anneal_steps": -1}})
    with pytest.raises(ValueError, match=r"^field\.dynamic_grid\.per_level_scale must be > 0, got 0\.0$"):
        from_dict(TrainConfig, {"field": {"dynamic_grid": {"per_level_scale": 0.0}}})


# --- loss weights ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(LossWeights) if f.name != "opacity_entropy_from"])
def test_a_negative_loss_weight_is_refused(name):
    """A negative weight turned its loss into one the run maximised (sparsity: opacity pushed up), silently."""
    with pytest.raises(RangeError, match=rf"^{name} must be >= 0 \(0: off\), got -0\.5$"):
        LossWeights(**{name: -0.5})
    with pytest.raises(ValueError, match=rf"^weights\.{name} must be >= 0"):
        set_key(load_profile("tiny"), f"weights.{name}", "-0.5", parse=True)


def test_a_negative_weight_of_a_stage_is_refused_naming_the_stage():
    with pytest.raises(ValueError, match=r"^stages\.stage1\.weights\.sparsity must be >= 0 \(0: off\), got -1\.0$"):
        StageConfig("stage1", 10, 1.0, 0.0, False, weights={"sparsity": -1})
    with pytest.raises(ValueError, match=r"^stages\.stage2\.weights\.lora must be >= 0"):
        set_key(load_profile("tiny"), "stages.stage2.weights", '{"lora": -2, "sds": 0}', parse=True)
    assert StageConfig("stage1", 10, 1.0, 0.0, False, weights={"sparsity": 0}).weights == {"sparsity": 0.0}


# --- parameter groups --------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["static_groups", "video_groups"])
def test_an_unknown_group_is_refused_naming_the_known_ones(key):
    """An unknown group ('mlps') used to pass until the first update that trains it, mid-run."""
    with pytest.raises(ValueError) as err:
        set_key(load_profile("tiny"), key, '["static", "mlps"]', parse=True)
    assert str(err.value) == f"{key} names unknown parameter groups ['mlps']; known: static, dynamic, mlp, background"
    with pytest.raises(ValueError, match=f"^{key} names unknown parameter groups"):
        TrainConfig(**{key: ("colour",)})
    cfg = set_key(load_profile("tiny"), key, '["dynamic"]', parse=True)  # a subset of the known ones: as before
    assert getattr(cfg, key) == ("dynamic",)

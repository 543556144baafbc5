"""Three holes in the config checks: stage names (which become file names and key parts) were only checked for being
distinct; a stage whose update probabilities cannot be drawn was refused only when a run first drew from it (so a
method or variant with one was registered, and `generate` failed without naming it); an infinity (`1e400`,
`Infinity`, which JSON reads as inf) passed every one-sided range check."""

import json
import math

import pytest

from baselines.registry import METHODS, Method, register, resolve_config, variant
from method.configs import set_keys
from method.ranges import RangeError, at_least, below, ordered, positive
from method.training.config import StageConfig, TrainConfig
from method.training.profiles import PROFILES, load_profile
from pipelines.generate import build_config

# --- 1. stage names ----------------------------------------------------------------------------------------------

BAD_NAMES = ["../../escape", "a/b", "..", "a.b", "", "-x", "_x", "stage 1", "*", "stage1\n", "last", "Last", "LAST"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_a_stage_name_that_is_no_plain_file_name_or_is_reserved_is_refused_naming_the_key(name):
    with pytest.raises(RangeError) as err:
        set_keys(load_profile("tiny"), {"stages.stage1.name": name}, parse=True)
    assert err.value.key == "stages.stage1.name"  # the key as --set wrote it: the name before the change
    assert str(err.value).startswith("stages.stage1.name must "), str(err.value)
    assert str(err.value).endswith(f"got {name!r}")


def test_the_reviewers_escaping_stage_is_refused_before_any_run_folder():
    """`generate --set 'stages.*.steps=2' --set stages.stage1.name=../../escape ...` wrote esc/escape.pt outside the
    run folder and the stage cache; the config is refused when it is built."""
    sets = {"stages.*.steps": "2", "stages.stage1.name": "../../escape",
            "guidance.3d.anneal_stages": '["../../escape"]'}
    with pytest.raises(ValueError, match=r"^stages\.stage1\.name must be letters, digits, '_' and '-'.*"
                                         r"got '\.\./\.\./escape'$"):
        build_config("tiny", "4dfy", sets=sets, max_steps=2)


def test_a_stage_named_last_would_be_overwritten_by_the_last_checkpoint():
    with pytest.raises(ValueError, match=r"^stages\.stage1\.name must not be 'last' \(ckpt/last\.pt"):
        build_config("tiny", "4dfy", sets={"stages.stage1.name": "last"})


def test_a_saved_config_with_a_bad_stage_name_is_refused_too():
    data = load_profile("tiny").to_dict()
    data["stages"][0]["name"] = "../x"
    data["guidance"]["3d"]["anneal_stages"] = ["../x"]
    with pytest.raises(RangeError, match=r"^stages\[0\]\.name must be letters"):
        TrainConfig.from_dict(data)


def test_stage_names_that_differ_only_in_case_are_refused():
    """`ckpt/Stage1.pt` and `ckpt/stage1.pt` are one file on a case-insensitive file system."""
    with pytest.raises(ValueError, match=r"^stage names must differ \(case ignored"):
        TrainConfig(stages=(StageConfig("stage1", 1, 1.0, 0.0, False), StageConfig("Stage1", 1, 1.0, 0.0, False)))


@pytest.mark.parametrize("name", ["warmup", "anneal", "stage-1", "S_2", "0a"])
def test_plain_names_stay_allowed_and_their_keys_work(name):
    """The names the docs show (warmup, anneal) and the built-ins' (stage1-3); `--max-steps` keys by name."""
    cfg = set_keys(load_profile("tiny"), {"stages.stage1.name": name,
                                          "guidance.3d.anneal_stages": json.dumps([name])}, parse=True)
    assert [s.name for s in cfg.stages] == [name, "stage2", "stage3"]
    capped = set_keys(cfg, {f"stages.{s.name}.steps": 1 for s in cfg.stages})
    assert [s.steps for s in capped.stages] == [1, 1, 1]


# --- 2. a stage whose updates cannot be drawn --------------------------------------------------------------------

def test_a_stage_with_no_drawable_update_is_refused_when_made():
    """Before, only `update_probabilities` (the trainer's first draw) refused it."""
    with pytest.raises(ValueError, match=r"^stages\.s: with no video \(allow_video false\) and p_img 0 the stage "
                                         r"must use only 3D updates \(p_3d 1\), got p_3d 0\.5;"):
        StageConfig("s", 10, p_3d=0.5, p_img=0.0, allow_video=False)


def test_a_variant_with_no_drawable_stage_is_refused_naming_the_entry():
    """The reviewer's `{base: wo_hybrid, stages.stage1.p_3d: 0.25}`: accepted by `fourdfy methods --params`, then
    `generate` failed with `stage1: ... only 3D updates`, naming no entry."""
    with pytest.raises(ValueError, match=r"^params\.yaml: overrides\.mixed: stages\.stage1: with no video .*"
                                         r"got p_3d 0\.25"):
        variant("mixed", {"base": "wo_hybrid", "stages.stage1.p_3d": 0.25})


def test_a_plugin_method_with_no_drawable_stage_is_refused_naming_it():
    try:
        with pytest.raises(ValueError, match=r"^method 'bad_mix_review': stages\.stage2: with no video"):
            register(Method("bad_mix_review", "stage 2 without IMG updates but not all 3D",
                            overrides={"stages.stage2.p_img": 0.0}))
    finally:  # registered (a failure) or not, the registry is left as it was for the other tests
        registered = METHODS.pop("bad_mix_review", None)
    assert registered is None


def test_a_set_with_no_drawable_stage_is_refused_by_build_config():
    with pytest.raises(ValueError, match=r"^stages\.stage1: with no video"):
        build_config("tiny", "4dfy", sets={"stages.stage1.p_3d": "0.25"})


@pytest.mark.parametrize("order", [("p_3d", "p_img"), ("p_img", "p_3d")])
def test_the_probabilities_can_be_set_in_any_order(order):
    """Checked after the last key of a batch, as the other checks between fields: an intermediate config (p_3d
    set, p_img not yet) is no error."""
    values = {"p_3d": 0.25, "p_img": 0.5}
    cfg = set_keys(load_profile("tiny"), {f"stages.stage1.{k}": values[k] for k in order})
    assert cfg.stage("stage1").update_probabilities() == {"3d": 0.25, "img": 0.75, "video": 0.0}
    cfg = set_keys(load_profile("tiny"), {"stages.stage1.p_3d": 0.25, "stages.stage1.allow_video": True})
    assert cfg.stage("stage1").update_probabilities() == {"3d": 0.25, "img": 0.0, "video": 0.75}


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_and_trainable_method_still_builds_with_drawable_stages(profile):
    built = 0
    for name, method in sorted(METHODS.items()):
        if not method.trainable:
            continue
        cfg = resolve_config(profile, name)
        for stage in cfg.stages:
            assert math.isclose(sum(stage.update_probabilities().values()), 1.0), (profile, name, stage.name)
        built += 1
    assert built >= 8  # 4dfy and the ablations of Table 3


# --- 3. infinities -----------------------------------------------------------------------------------------------

INFINITE = [
    ("weights.sds_video", "must be a finite number >= 0 (0: off)"),
    ("checkpoint_every_s", "must be a finite number >= 0 (0: off)"),
    ("heartbeat_s", "must be a finite number >= 0"),
    ("eps", "must be a finite number >= 0"),
    ("weight_decay", "must be a finite number >= 0"),
    ("lrs.static", "must be a finite number >= 0 (0 leaves the group as it is)"),
    ("renderer.alpha_thre", "must be a finite number >= 0"),
    ("renderer.occupancy.occ_thre", "must be a finite number >= 0"),
    ("field.static_grid.per_level_scale", "must be a finite number > 0"),
    ("blob_sigma.stage3.end", "must be a finite number > 0"),
    ("stages.stage1.static_lr_scale", "must be a finite number >= 0"),
    ("stages.stage3.video_lr_scale", "must be a finite number >= 0"),
]


@pytest.mark.parametrize("text", ["1e400", "Infinity"])
@pytest.mark.parametrize("key, rule", INFINITE)
def test_an_infinity_is_refused_by_a_ranged_field(key, rule, text):
    with pytest.raises(ValueError) as err:
        set_keys(load_profile("tiny"), {key: text}, parse=True)
    assert str(err.value) == f"{key} {rule}, got inf"


def test_an_infinity_in_a_stage_weight_or_a_list_is_refused():
    with pytest.raises(ValueError, match=r"^stages\.stage1\.weights\.sparsity must be a finite number >= 0 \(0: off\), "
                                         r"got inf$"):
        set_keys(load_profile("tiny"), {"stages.stage1.weights": '{"sparsity": 1e400}'}, parse=True)
    with pytest.raises(RangeError, match=r"^cameras\.distance must be a finite number > 0 each, got \[1\.0, inf\]$"):
        set_keys(load_profile("tiny"), {"cameras.distance": "[1, Infinity]"}, parse=True)
    # azimuth has no bound of its own but its low <= high: (-inf, inf) passed
    with pytest.raises(RangeError, match=r"^cameras\.azimuth_deg must have finite low and high, got \[-inf, inf\]$"):
        set_keys(load_profile("tiny"), {"cameras.azimuth_deg": "[-Infinity, 1e400]"}, parse=True)


def test_the_range_helpers_refuse_infinities_and_keep_their_other_messages():
    with pytest.raises(RangeError, match=r"^x must be a finite number >= 0, got inf$"):
        at_least("x", math.inf, 0)
    with pytest.raises(RangeError, match=r"^x must be a finite number > 0, got inf$"):
        positive("x", math.inf)
    with pytest.raises(RangeError, match=r"^x must be a finite number below 1, got -inf$"):
        below("x", -math.inf, 1)
    with pytest.raises(RangeError, match=r"^x must be >= 0, got nan$"):  # NaN: as before
        at_least("x", math.nan, 0)
    with pytest.raises(RangeError, match=r"^x must be >= 0, got -1$"):
        at_least("x", -1, 0)
    at_least("x", 1e300, 0)  # large but finite: allowed
    positive("x", 1e-300)
    ordered("x", (-1e300, 1e300))
    assert TrainConfig(checkpoint_every_s=0.0, heartbeat_s=1e9).checkpoint_every_s == 0.0


@pytest.mark.parametrize("seed", [-1, 2**63, 99999999999999999999])
def test_a_seed_out_of_torchs_range_is_refused_naming_the_seed(seed):
    """`--seed 99999999999999999999` failed with "Overflow when unpacking long long", which does not name it."""
    from pipelines.generate import build_config

    with pytest.raises(ValueError, match=rf"^seed must be from 0 to {2**63 - 1}, got {seed}$"):
        build_config("tiny", "4dfy", seed=seed, device="cpu")
    assert build_config("tiny", "4dfy", seed=2**63 - 1, device="cpu").seed == 2**63 - 1


# --- 4. fields without a range refuse infinities and NaN too ---------------------------------------------------

UNRANGED = ["guidance.3d.guidance_scale", "guidance.img.guidance_scale", "guidance.img.lora_alpha",
            "guidance.3d.recon_std_rescale", "guidance.video.guidance_scale", "field.blob_scale"]


@pytest.mark.parametrize("text, shown", [("1e400", "inf"), ("-Infinity", "-inf"), ("NaN", "nan")])
@pytest.mark.parametrize("key", UNRANGED)
def test_a_field_without_a_range_refuses_a_non_finite_number(key, text, shown):
    base = load_profile("tiny")
    with pytest.raises(RangeError) as err:
        set_keys(base, {key: text}, parse=True)
    assert str(err.value) == f"{key} must be a finite number, got {shown}"
    set_keys(base, {key: "1e300"}, parse=True)  # large but finite: taken


def test_a_config_file_with_an_infinity_in_a_field_without_a_range_is_refused_naming_the_key():
    data = load_profile("tiny").to_dict()
    assert TrainConfig.from_dict(json.loads(json.dumps(data))) is not None  # the file as written loads
    data["field"]["blob_scale"] = math.inf
    with pytest.raises(RangeError, match=r"^field\.blob_scale must be a finite number, got inf$"):
        TrainConfig.from_dict(data)
    data = load_profile("tiny").to_dict()
    data["guidance"]["img"]["lora_alpha"] = math.nan
    with pytest.raises(RangeError, match=r"^guidance\.img\.lora_alpha must be a finite number, got nan$"):
        TrainConfig.from_dict(data)

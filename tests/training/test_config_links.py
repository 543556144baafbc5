"""What a run's config refuses between its fields and in its trained groups: a `blob_sigma` key that names no stage
(its anneal was dropped silently when a stage was renamed), a prior's anneal stage that names none while its ramp is
on (the ramp never ran in a renamed stage 1), an empty `static_groups` / `video_groups` (updates that
train nothing); and keys that must change together (a stage's name and its `blob_sigma` key, the two box radii) may
come in any order in one `--set` command, as the checks between fields run after its last key."""

import dataclasses

import pytest
from typer.testing import CliRunner

from method.configs import check_links, set_key, set_keys
from method.training.config import Anneal, StageConfig, TrainConfig
from method.training.profiles import load_profile
from pipelines.cli import app
from pipelines.generate import build_config

runner = CliRunner()
ANNEAL = '{"anneal": {"start": 0.5, "end": 1.0, "steps": 80}}'
"""tiny's stage-3 anneal, keyed by the stage's new name."""


def _error_line(args: list[str], out) -> str:
    res = runner.invoke(app, ["generate", "--prompt", "a_panda_dancing", *args, "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert not out.exists()  # refused before the run folder is made
    return lines[0]


# --- blob_sigma's keys name stages -------------------------------------------------------------------------

def test_renaming_a_stage_alone_is_refused_naming_the_blob_sigma_key_and_the_stages(tmp_path):
    """It was accepted, and stage 3 ran with the constant default sigma 0.5 instead of tiny's 0.5 -> 1.0 anneal."""
    says = ("blob_sigma.stage3 names no stage of the run (stages: stage1, stage2, anneal), so the anneal would be "
            "ignored; key blob_sigma by stage name (renaming a stage by --set, set blob_sigma in the same command)")
    with pytest.raises(ValueError) as err:
        build_config("tiny", "4dfy", sets={"stages.stage3.name": "anneal"})
    assert str(err.value) == says
    assert _error_line(["--set", "stages.stage3.name=anneal"], tmp_path / "run") == f"error: {says}"


def test_a_stray_blob_sigma_key_is_refused_however_the_config_is_made():
    tiny = load_profile("tiny")
    renamed = (*tiny.stages[:2], dataclasses.replace(tiny.stages[2], name="anneal"))
    with pytest.raises(ValueError, match=r"^blob_sigma\.stage3 names no stage of the run \(stages: stage1, stage2, "
                                         r"anneal\)"):
        set_key(tiny, "stages", [dataclasses.asdict(s) for s in renamed])  # the stages set whole
    d = tiny.to_dict()  # a manifest's config, edited
    d["stages"][2]["name"] = "anneal"
    with pytest.raises(ValueError, match=r"^blob_sigma\.stage3 names no stage"):
        TrainConfig.from_dict(d)
    with pytest.raises(ValueError, match=r"^blob_sigma\.stage4, blob_sigma\.Stage3 name no stage of the run "
                                         r"\(stages: stage1\)"):
        TrainConfig(stages=(StageConfig("stage1", 1, 1.0, 0.0, False),),
                    blob_sigma={"stage4": Anneal(0.5, 1.0), "Stage3": Anneal(0.5, 1.0)})
    with pytest.raises(ValueError, match=r"^blob_sigma\.stage3 names no stage of the run \(stages: none\)"):
        TrainConfig(blob_sigma={"stage3": Anneal(0.5, 1.0)})


@pytest.mark.parametrize("order", ["rename first", "blob_sigma first"])
def test_a_stage_renamed_with_its_blob_sigma_in_one_command_keeps_its_anneal(order):
    rename = {"stages.stage3.name": "anneal"}
    sigma = {"blob_sigma": ANNEAL}
    cfg = build_config("tiny", "4dfy", sets={**rename, **sigma} if order == "rename first" else {**sigma, **rename})
    assert [s.name for s in cfg.stages] == ["stage1", "stage2", "anneal"]
    assert cfg.sigma("anneal", 0) == 0.5 and cfg.sigma("anneal", 40) == pytest.approx(0.75)
    assert cfg.sigma("anneal", 80) == 1.0  # tiny's anneal, now under the stage's new name


def test_blob_sigma_may_name_a_stage_that_is_skipped_and_may_leave_stages_out():
    cfg = set_keys(load_profile("tiny"), {"stages.stage3.steps": 0, "blob_sigma": "{}"}, parse=True)
    assert cfg.blob_sigma == {} and cfg.sigma("stage3", 80) == 0.5  # no entry: the constant default
    assert set_key(load_profile("tiny"), "stages.stage3.steps", 0).blob_sigma == load_profile("tiny").blob_sigma


# --- the checks between fields run after the last key of a batch --------------------------------------------

def test_both_box_radii_can_be_set_in_one_command(tmp_path):
    """The message said "set both", but the first of the two keys was refused before the second was read."""
    for sets in ({"renderer.box_radius": "2", "field.box_radius": "2"},
                 {"field.box_radius": "2", "renderer.box_radius": "2"}):
        cfg = build_config("tiny", "4dfy", sets=sets)
        assert cfg.renderer.box_radius == cfg.field.box_radius == 2.0
    with pytest.raises(ValueError, match=r"^renderer\.box_radius 2\.0 differs from field\.box_radius 1\.0: set both$"):
        build_config("tiny", "4dfy", sets={"renderer.box_radius": "2"})  # alone, still refused
    with pytest.raises(ValueError, match=r"differs from field\.box_radius"):
        set_key(load_profile("tiny"), "renderer.box_radius", 2.0)  # one key: checked at once
    line = _error_line(["--set", "field.box_radius=3"], tmp_path / "run")
    assert line == "error: renderer.box_radius 1.0 differs from field.box_radius 3.0: set both"


def test_a_batch_still_checks_the_links_of_its_result_and_leaves_no_deferral_behind():
    tiny = load_profile("tiny")
    with pytest.raises(ValueError, match=r"^blob_sigma\.stage3 names no stage"):
        set_keys(tiny, {"stages.stage3.name": "anneal", "seed": 3})
    with pytest.raises(ValueError, match="unknown config key"):  # an error inside a batch ends the deferral too
        set_keys(tiny, {"stages.stage3.name": "anneal", "no_such_key": 1})
    bad = dataclasses.replace(tiny, blob_sigma={})
    object.__setattr__(bad, "blob_sigma", {"stage4": Anneal(0.5, 0.5)})  # past __post_init__
    with pytest.raises(ValueError, match=r"^blob_sigma\.stage4 names no stage"):
        check_links(bad)  # outside a batch: checked


# --- the trained groups are not empty ---------------------------------------------------------------------

@pytest.mark.parametrize("key, updates", [("static_groups", "3D and IMG"), ("video_groups", "video")])
def test_an_empty_group_list_is_refused_naming_the_field(tmp_path, key, updates):
    """It was accepted: every update of that type trained none of the field's parameters."""
    says = (f"{key} is empty: the {updates} updates of every stage would train none of the field's parameters; name "
            "some of static, dynamic, mlp, background (to freeze groups in one stage: stages.NAME.trainable)")
    with pytest.raises(ValueError) as err:
        set_key(load_profile("tiny"), key, "[]", parse=True)
    assert str(err.value) == says
    with pytest.raises(ValueError, match=f"^{key} is empty"):
        TrainConfig(**{key: ()})
    d = load_profile("tiny").to_dict()
    d[key] = []
    with pytest.raises(ValueError, match=f"^{key} is empty"):
        TrainConfig.from_dict(d)
    assert _error_line(["--set", f"{key}=[]"], tmp_path / "run") == f"error: {says}"
    assert getattr(set_key(load_profile("tiny"), key, '["mlp"]', parse=True), key) == ("mlp",)  # one group: fine


# --- a prior's anneal stages name stages -----------------------------------------------------------------------

RAMP_3D = ("guidance.3d.anneal_stages names stage1, but the run has no stage of that name (stages: warmup, stage2, "
           "stage3), so the prior would ignore it; name stages of the run (renaming a stage by --set, set "
           "guidance.3d.anneal_stages in the same command)")


def _ramps_in(prior, stage: str) -> bool:
    return prior.timestep_range(stage).start is not None


def test_renaming_stage1_alone_is_refused_naming_the_priors_anneal_stages(tmp_path):
    """It was accepted, and MVDream's stage-1 timestep ramp never ran: the prior asks for it by the stage's name."""
    with pytest.raises(ValueError) as err:
        build_config("tiny", "4dfy", sets={"stages.stage1.name": "warmup"})
    assert str(err.value) == RAMP_3D
    with pytest.raises(ValueError) as err:
        set_key(load_profile("paper"), "stages.stage1.name", "warmup")
    assert str(err.value) == RAMP_3D
    assert _error_line(["--set", "stages.stage1.name=warmup"], tmp_path / "run") == f"error: {RAMP_3D}"


def test_every_prior_whose_ramp_names_a_lost_stage_is_named():
    """wo_3d gives VSD the stage-1 ramp too: both keys, one message."""
    with pytest.raises(ValueError) as err:
        build_config("paper", "wo_3d", sets={"stages.stage1.name": "warmup"})
    assert str(err.value) == (
        "guidance.3d.anneal_stages names stage1, guidance.img.t_anneal_stages names stage1, but the run has no stage "
        "of those names (stages: warmup, stage2, stage3), so the prior would ignore them; name stages of the run "
        "(renaming a stage by --set, set guidance.3d.anneal_stages and guidance.img.t_anneal_stages in the same "
        "command)")
    cfg = build_config("paper", "wo_3d", sets={"stages.stage1.name": "warmup", "guidance.3d.anneal_stages": '["warmup"]',
                                               "guidance.img.t_anneal_stages": '["warmup"]'})
    assert _ramps_in(cfg.guidance["3d"], "warmup") and _ramps_in(cfg.guidance["img"], "warmup")


@pytest.mark.parametrize("order", ["rename first", "anneal stages first"])
def test_stage1_renamed_with_its_anneal_stages_in_one_command_keeps_the_ramp(order):
    rename = {"stages.stage1.name": "warmup"}
    stages = {"guidance.3d.anneal_stages": '["warmup"]'}
    sets = {**rename, **stages} if order == "rename first" else {**stages, **rename}
    for cfg in (build_config("tiny", "4dfy", sets=sets), set_keys(load_profile("paper"), sets, parse=True)):
        assert [s.name for s in cfg.stages] == ["warmup", "stage2", "stage3"]
        assert _ramps_in(cfg.guidance["3d"], "warmup") and not _ramps_in(cfg.guidance["3d"], "stage2")


def test_a_prior_without_a_ramp_may_keep_names_of_no_stage():
    """VSD has no ramp in the profiles (its t_anneal_stages select nothing), nor MVDream with anneal none: renaming
    stage 1 does not ask for them."""
    cfg = build_config("tiny", "4dfy", sets={"stages.stage1.name": "warmup", "guidance.3d.anneal": "none"})
    assert cfg.guidance["3d"].anneal_stages == cfg.guidance["img"].t_anneal_stages == ("stage1",)
    # a ramp switched on later is checked then
    with pytest.raises(ValueError, match=r"^guidance\.img\.t_anneal_stages names stage1, but the run has no stage"):
        set_key(cfg, "guidance.img.t_anneal_start", "[0.02, 0.98]", parse=True)


def test_a_stray_anneal_stage_is_refused_however_the_config_is_made():
    from method.guidance import MVDreamConfig
    from method.oracle.check import oracle_config

    stages = (StageConfig("s", 1, 1.0, 0.0, False),)
    with pytest.raises(ValueError, match=r"^guidance\.3d\.anneal_stages names stage1, but the run has no stage of that "
                                         r"name \(stages: s\)"):
        TrainConfig(stages=stages, guidance={"3d": MVDreamConfig()})
    assert TrainConfig(stages=stages, guidance={"3d": MVDreamConfig(anneal_stages=("s",))})
    assert TrainConfig(stages=stages, guidance={"3d": MVDreamConfig(anneal_stages=())})  # no ramp anywhere
    d = load_profile("tiny").to_dict()  # a manifest's config, edited
    d["stages"][0]["name"] = "warmup"
    with pytest.raises(ValueError, match=r"^guidance\.3d\.anneal_stages names stage1"):
        TrainConfig.from_dict(d)
    oracle = oracle_config()  # its 3D prior ramps in stage 1, the others have no ramp
    with pytest.raises(ValueError, match=r"^guidance\.3d\.anneal_stages names stage1, but the run has no stage of "
                                         r"that name \(stages: warmup, stage2, stage3\)"):
        set_key(oracle, "stages.stage1.name", "warmup")
    renamed = set_keys(oracle, {"stages.stage1.name": "warmup", "guidance.3d.anneal_stages": ["warmup"]})
    assert _ramps_in(renamed.guidance["3d"], "warmup")


def test_every_built_in_profile_and_method_still_builds():
    from baselines import METHODS, resolve_config
    from method.oracle.check import oracle_config
    from method.training.profiles import PROFILES

    for profile in PROFILES:
        for name, method in METHODS.items():
            if method.trainable and method.source == "built-in":
                assert resolve_config(profile, name).method == name
    assert oracle_config().guidance["3d"].stage_refs() == {"anneal_stages": ("stage1",)}

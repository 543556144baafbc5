"""An unknown dotted key names the closest valid keys first, then the keys of the level where it fails: a review found
`--set stages.stage3.step=20` listing 39 keys without `stages.stage3.steps`, and `guidance.*.frozen.bf16` a long list
cut with `...`."""

import difflib

import pytest

from method.configs import ConfigKeyError, get_key, set_key, valid_keys
from method.training.profiles import paper


def _message(key: str) -> str:
    with pytest.raises(ConfigKeyError) as err:
        set_key(paper(), key, "1", parse=True)
    return str(err.value)


def test_a_typo_in_a_stage_key_suggests_the_stage_key_and_lists_that_stage_only():
    msg = _message("stages.stage3.step")
    assert msg.startswith("unknown config key 'stages.stage3.step'; did you mean 'stages.stage3.steps'? "
                          "valid keys under 'stages.stage3': "), msg
    listed = msg.split("valid keys under 'stages.stage3': ")[1].split(", ")
    assert listed == valid_keys(paper().stage("stage3"), "stages.stage3.")  # all of them, none of the other stages
    assert "..." not in msg


@pytest.mark.parametrize("key, first", [
    ("weights.sds_vide", "weights.sds_video"),
    ("seedd", "seed"),  # fails at the root: matched against every key
    ("weight.sds_video", "weights.sds_video"),  # the typo in the group's name
    ("guidance.imgg.guidance_scale", "guidance.img.guidance_scale"),
])
def test_the_closest_key_comes_first_and_is_a_valid_key(key, first):
    msg = _message(key)
    named = msg.split("did you mean ")[1].split("?")[0]
    assert named.startswith(repr(first)), msg
    get_key(paper(), first)  # a key that exists


def test_a_key_far_from_every_key_gets_no_guess():
    msg = _message("nope.x.y")
    assert "did you mean" not in msg and msg.startswith("unknown config key 'nope.x.y'; valid keys: ")
    assert not difflib.get_close_matches("nope.x.y", valid_keys(paper()))  # the premise: nothing is close


def test_a_star_key_is_answered_with_star_keys_of_its_level():
    msg = _message("guidance.*.frozen.bf16")
    # the entry it failed on is named, as before; the keys are shown as the user writes them
    assert msg.startswith("unknown config key 'guidance.3d.frozen.bf16' (from 'guidance.*.frozen.bf16'); "
                          "valid keys under 'guidance.*.frozen': guidance.*.frozen.half_precision, "), msg
    frozen = valid_keys(paper().guidance["3d"].frozen, "guidance.*.frozen.")
    assert msg.split("valid keys under 'guidance.*.frozen': ")[1].split(", ") == frozen and "..." not in msg
    msg = _message("stages.*.stepz")
    assert "; did you mean 'stages.*.steps'? valid keys under 'stages.*': stages.*.name, stages.*.steps" in msg


def test_a_key_below_a_single_setting_is_answered_at_the_level_above():
    msg = _message("stages.stage3.steps.x")
    assert "did you mean 'stages.stage3.steps'?" in msg and "valid keys under 'stages.stage3': " in msg


def test_get_key_gives_the_same_hint():
    with pytest.raises(ConfigKeyError, match=r"did you mean 'stages\.stage3\.steps'\?"):
        get_key(paper(), "stages.stage3.step")


def test_the_cli_line_names_the_closest_key(tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    res = CliRunner().invoke(app, ["generate", "--prompt", "a_panda_dancing", "--profile", "tiny", "--set",
                                   "stages.stage3.step=20", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "unknown config key 'stages.stage3.step'; did you mean 'stages.stage3.steps'?" in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()

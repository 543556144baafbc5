"""`field.representation` is checked when the config is made, naming its key: a review found `--set
field.representation=voxels` accepted until the field was built, with a message naming no key. (A prior's `t_range`,
likewise checked late: tests/guidance/test_config_prior_keys.py.)"""

import pytest
from typer.testing import CliRunner

from method.configs import set_key
from method.fields import REPRESENTATIONS, FieldConfig
from method.fields.config import REPRESENTATION_NAMES
from method.ranges import RangeError
from method.training.config import TrainConfig
from pipelines.generate import build_config

SAYS = "field.representation must be one of (hashgrid, hexplane, single_grid), got 'voxels'"


def test_set_names_the_key_and_the_representations():
    with pytest.raises(ValueError) as err:
        build_config("tiny", "4dfy", sets={"field.representation": "voxels"})
    assert str(err.value) == SAYS


def test_an_edited_saved_config_is_refused_when_read():
    d = build_config("tiny", "4dfy").to_dict()
    d["field"]["representation"] = "voxels"
    with pytest.raises(ValueError) as err:
        TrainConfig.from_dict(d)
    assert str(err.value) == SAYS


def test_the_field_config_alone_names_its_field():
    with pytest.raises(RangeError) as err:
        FieldConfig(representation="voxels")
    assert err.value.key == "representation"


@pytest.mark.parametrize("name", sorted(REPRESENTATIONS))
def test_every_buildable_representation_is_allowed(name):
    assert set(REPRESENTATION_NAMES) == set(REPRESENTATIONS)  # the names checked are the ones the field builds
    assert set_key(build_config("tiny", "4dfy"), "field.representation", name).field.representation == name


def test_the_cli_refuses_it_before_a_run_folder_is_made(tmp_path):
    from pipelines.cli import app

    res = CliRunner().invoke(app, ["generate", "--prompt", "a_panda_dancing", "--profile", "tiny", "--set",
                                   "field.representation=voxels", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and SAYS in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()

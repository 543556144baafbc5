"""A mistyped top-level key (`--set seedd=3`) lists the top-level keys, each group once, as a deeper typo lists its own
level's keys: a review found it listing the first 40 of every nested key (cut with '...', `seed` not among them)."""

import dataclasses

import pytest
from typer.testing import CliRunner

from method.configs import ConfigKeyError, set_key
from method.training.config import TrainConfig
from method.training.profiles import load_profile, paper


def _listed(message: str) -> list[str]:
    return message.split("valid keys: ")[1].split(", ")


def _expected(cfg: TrainConfig) -> list[str]:
    """The top-level fields in order; a group with `.KEY`, a group of named entries (stages, priors, blob_sigma's
    anneals by stage) with `.NAME.KEY`, a setting as is."""
    named = {"stages", "guidance", "blob_sigma"}
    groups = {"field", "background", "cameras", "render", "renderer", "lrs", "weights"}
    out = []
    for f in dataclasses.fields(TrainConfig):
        value = getattr(cfg, f.name)
        if f.name in named and value:
            out.append(f"{f.name}.NAME.KEY")
        else:
            out.append(f"{f.name}.KEY" if f.name in groups else f.name)
    return out


@pytest.mark.parametrize("key, guess", [("seedd", "'seed'"), ("weight.sds_video", "'weights.sds_video'"),
                                        ("nope.x.y", None)])
def test_a_top_level_typo_lists_the_top_level_keys_after_the_guess(key, guess):
    cfg = paper()
    with pytest.raises(ConfigKeyError) as err:
        set_key(cfg, key, "3", parse=True)
    msg = str(err.value)
    head = f"unknown config key {key!r}; " + (f"did you mean {guess}" if guess else "valid keys: ")
    assert msg.startswith(head), msg
    assert _listed(msg) == _expected(cfg)
    assert "..." not in msg and "stages.stage3.steps" not in msg.split("valid keys: ")[1]


def test_an_empty_group_is_listed_as_a_setting():
    cfg = load_profile("tiny")
    cfg = dataclasses.replace(cfg, blob_sigma={})  # no anneal: `blob_sigma` is set whole (a mapping)
    with pytest.raises(ConfigKeyError) as err:
        set_key(cfg, "seedd", "3", parse=True)
    assert "blob_sigma" in _listed(str(err.value)) and _listed(str(err.value)) == _expected(cfg)


def test_the_cli_line_lists_the_top_level_keys(tmp_path):
    from pipelines.cli import app

    res = CliRunner().invoke(app, ["generate", "--prompt", "a_panda_dancing", "--profile", "tiny", "--set", "seedd=3",
                                   "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "unknown config key 'seedd'; did you mean 'seed'? valid keys: profile, method, stages.NAME.KEY, " \
           "field.KEY, " in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()

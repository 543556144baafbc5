"""`field.grid_backend` is checked when the config is made, naming its key and the backends: an unknown name used to
pass until the hash grid was built, after the run folder was made. A known backend this machine cannot run (tcnn
without tinycudann, Triton without CUDA) is another matter, still refused when the grid runs."""

import pytest
import torch
from typer.testing import CliRunner

from method import backends
from method.backends import HASH_GRID_BACKENDS
from method.encodings import HashGridEncoding
from method.fields import FieldConfig, SceneField
from method.ranges import RangeError
from method.training.config import TrainConfig
from pipelines.generate import build_config

SAYS = "field.grid_backend must be one of (auto, torch, triton, tcnn), got 'cuda'"


def test_set_names_the_key_and_the_backends():
    with pytest.raises(ValueError) as err:
        build_config("tiny", "4dfy", sets={"field.grid_backend": "cuda"})
    assert str(err.value) == SAYS


def test_an_edited_saved_config_is_refused_when_read():
    d = build_config("tiny", "4dfy").to_dict()
    d["field"]["grid_backend"] = "cuda"
    with pytest.raises(ValueError) as err:
        TrainConfig.from_dict(d)
    assert str(err.value) == SAYS


def test_the_field_config_alone_names_its_field():
    with pytest.raises(RangeError) as err:
        FieldConfig(grid_backend="Torch")  # names are case-sensitive, as the grid reads them
    assert err.value.key == "grid_backend" and err.value.value == "Torch"


@pytest.mark.parametrize("name", HASH_GRID_BACKENDS)
def test_every_backend_the_grid_takes_is_allowed(name):
    assert FieldConfig(grid_backend=name).grid_backend == name
    HashGridEncoding(3, n_levels=2, log2_hashmap_size=4, backend=name)  # the grid takes the same names


def test_the_grid_refuses_what_the_config_refuses():
    with pytest.raises(ValueError, match="backend must be one of auto, torch, triton, tcnn, got 'cuda'"):
        HashGridEncoding(3, n_levels=2, log2_hashmap_size=4, backend="cuda")


@pytest.mark.skipif(backends.tcnn_module() is not None and torch.cuda.is_available(),
                    reason="tinycudann runs here: nothing is unavailable")
def test_a_known_backend_this_machine_cannot_run_is_accepted_and_refused_when_the_grid_runs():
    cfg = FieldConfig(grid_backend="tcnn")  # valid config: it may be made here and run on a GPU machine
    field = SceneField(cfg)
    with pytest.raises(RuntimeError, match="backend='tcnn' needs tinycudann installed and a CUDA device"):
        field.encoder.static(torch.rand(4, 3))


def test_the_cli_refuses_it_before_a_run_folder_is_made(tmp_path):
    from pipelines.cli import app

    res = CliRunner().invoke(app, ["generate", "--prompt", "a_panda_dancing", "--profile", "tiny", "--set",
                                   "field.grid_backend=cuda", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and SAYS in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()

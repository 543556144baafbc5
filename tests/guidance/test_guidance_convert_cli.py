"""`fourdfy convert-mvdream CKPT OUT`: writes a folder the guidance loads; bad input is one `error:` line."""

from __future__ import annotations

import pytest
import torch
import typer
from typer.testing import CliRunner

from pipelines.commands.convert import register


@pytest.fixture()
def run():
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keep the sub-command name on the command line, as in `fourdfy`
        pass

    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["convert-mvdream", *map(str, args)])


def test_converts_the_checkpoint_into_a_loadable_folder(run, tiny_root, tmp_path, mvdream):
    from method.guidance import MVDreamGuidance, tiny_mvdream_config

    out = tmp_path / "mv"
    result = run(tiny_root / "mvdream-ldm" / "sd-v2.1-base-4view.pt", out, "--num-head-channels", 8)
    assert result.exit_code == 0, result.output
    assert str(out) in result.output and (out / "mvdream.json").is_file()
    loaded = MVDreamGuidance(tiny_mvdream_config(model=str(out)))
    a, b = loaded.unet.state_dict(), mvdream.unet.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert [p.name for p in tmp_path.iterdir()] == ["mv"]  # no temporary folder left beside it


@pytest.mark.parametrize("case", ["missing", "not-a-checkpoint", "out-exists", "wrong-layout"])
def test_bad_input_is_one_error_line_and_exit_2(run, tmp_path, case):
    ckpt, out = tmp_path / "model.pt", tmp_path / "out"
    if case == "not-a-checkpoint":
        ckpt.write_text("hello")
    elif case == "wrong-layout":
        torch.save({"model_ema.decay": torch.zeros(())}, ckpt)
    elif case == "out-exists":
        torch.save({}, ckpt)
        out.mkdir()
    result = run(ckpt, out)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert {"missing": "no such checkpoint", "not-a-checkpoint": "not a readable checkpoint",
            "out-exists": "already exists", "wrong-layout": "no known part"}[case] in lines[0]
    assert not out.exists() or case == "out-exists"

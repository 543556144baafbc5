"""The `fourdfy` CLI: info on CPU, the registry listing, and clear errors on bad input."""

from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def test_info_reports_versions_device_and_backends():
    res = runner.invoke(app, ["info"])
    assert res.exit_code == 0, res.output
    for key in ("torch", "diffusers", "nerfacc", "device", "tinycudann", "nerfacc CUDA"):
        assert key in res.output
    assert "cpu" in res.output or "cuda" in res.output


def test_methods_lists_the_registry():
    res = runner.invoke(app, ["methods"])
    assert res.exit_code == 0
    for name in ("4dfy", "wo_3d_img", "wo_3d", "wo_img", "wo_hybrid", "hexplane", "single_stage", "single_grid"):
        assert name in res.output
    assert "videos only" in res.output  # mav3d


def test_generate_unknown_method_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["generate", "--prompt", "A panda dancing.", "--method", "4dfy_v9",
                              "--out", str(tmp_path / "run")])
    assert res.exit_code == 2
    assert "unknown method" in res.output and "wo_hybrid" in res.output
    assert not (tmp_path / "run").exists()  # nothing created


def test_generate_unknown_profile_and_prompt_slug(tmp_path):
    res = runner.invoke(app, ["generate", "--prompt", "x", "--profile", "huge", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown profile" in res.output
    res = runner.invoke(app, ["generate", "--prompt", "a_missing_slug", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "no prompt with slug" in res.output

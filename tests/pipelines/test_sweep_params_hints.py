"""`fourdfy sweep` and params.yaml's `overrides:`: a variant named without `--params` is unknown, and the error says
to pass it (as `generate`'s points to `--set-from`); a bad config key in a built-in method's entry is named with its
`overrides.<name>` entry before any job, not later as a bare unknown key of the run's config."""

import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: variants do not outlive a test
SLUG = "a_panda_dancing"
runner = CliRunner()


def _params(tmp_path, overrides):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"profile": "tiny", "seed": 0,
                                    "generate": {"methods": ["4dfy", "wo_hybrid"], "prompts": [SLUG]},
                                    "overrides": overrides}))
    return path


def test_a_params_variant_named_without_params_says_to_pass_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _params(tmp_path, {"4dfy": {}, "strong_video": {"base": "4dfy", "weights.sds_video": 0.3}})
    res = runner.invoke(app, ["sweep", "--methods", "strong_video", "--prompts", SLUG, "--dry-run"])
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert len(line.splitlines()) == 1 and line.startswith("error: unknown method 'strong_video'"), line
    assert line.endswith("; a variant of params.yaml's overrides: is swept with --params params.yaml"), line
    # with it, the same name is planned
    res = runner.invoke(app, ["sweep", "--params", "params.yaml", "--methods", "strong_video", "--dry-run"])
    assert res.exit_code == 0 and f"strong_video-{SLUG}" in res.output, res.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("entry, says", [
    ({"stages.stage3.p_3dd": 0.0}, "unknown config key 'stages.stage3.p_3dd'"),
    ({"weights.sds_video": "strong"}, "expected a number, got 'strong'"),
])
def test_a_bad_key_of_a_builtin_methods_entry_names_the_entry_before_any_job(tmp_path, entry, says):
    params = _params(tmp_path, {"4dfy": {}, "wo_hybrid": {"label": "w/o hybrid", **entry}})
    res = runner.invoke(app, ["sweep", "--params", str(params), "--runs", str(tmp_path / "runs"), "--dry-run"])
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert line.startswith(f"error: {params}: overrides.wo_hybrid: ") and says in line, line
    assert not (tmp_path / "runs").exists()


def test_read_params_checks_the_keys_of_every_entry_without_base(tmp_path):
    """Also an entry of a method the sweep does not train (it would be found only by the run that uses it)."""
    from pipelines.sweep import read_params

    params = _params(tmp_path, {"4dfy": {}, "hexplane": {"field.hexplane.n_scalez": 3}})
    with pytest.raises(ValueError,
                       match=rf"^{params}: overrides.hexplane: unknown config key 'field.hexplane.n_scalez'"):
        read_params(params)
    good = _params(tmp_path, {"4dfy": {}, "wo_hybrid": {"weights.sds_video": "1e-1", "label": "x"}})
    assert read_params(good)["overrides"]["wo_hybrid"] == {"weights.sds_video": "1e-1"}

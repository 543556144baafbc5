"""What the registry refuses of a plug-in's method beyond its overrides: a transform that raises or returns no config
(named as the plug-in's, not fourdfy's internal error), a name of a folder `runs/<profile>/` already uses (`sweep`,
`.stage-cache`), and a name equal to a registered one but for case (one run folder on macOS or Windows)."""

import pytest
from plugin_helpers import FakeEntryPoint
from typer.testing import CliRunner

from baselines import METHODS, RESERVED_NAMES, Method, MethodTransformError, register, register_variants, resolve_config
from method.training.config import TrainConfig, replace

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: what a test registers does not outlive it
runner = CliRunner()
SLUG = "a_panda_dancing"


def _raises(cfg: TrainConfig) -> TrainConfig:
    return replace(cfg, **{"weights.sds_video": cfg.nonexistent})


def _no_return(cfg: TrainConfig) -> TrainConfig:
    replace(cfg, **{"weights.sds_video": 0.3})  # the forgotten `return` of the reviewer's plug-in


def _from_entry_point(monkeypatch, *methods):
    """Register `methods` as the entry point 'pair' of the distribution my-plugin would (its `source`)."""
    from baselines import registry

    monkeypatch.setattr(registry.md, "entry_points", lambda group: [FakeEntryPoint("pair", list(methods))])
    monkeypatch.setattr(registry, "_LOADED", set())
    monkeypatch.setattr(registry, "_ERRORS", {})
    return registry.load_entry_points()


def test_a_plugins_transform_that_raises_is_named_with_its_entry_point_and_function(monkeypatch):
    assert _from_entry_point(monkeypatch, Method("broken_tf", "raises", transform=_raises)) == ["broken_tf"]
    with pytest.raises(MethodTransformError) as err:
        resolve_config("tiny", "broken_tf")
    text = str(err.value)
    assert text == (f"method 'broken_tf' (entry point 'pair' of my-plugin): its transform {__name__}:_raises failed: "
                    "AttributeError: 'TrainConfig' object has no attribute 'nonexistent' (the transform is that "
                    "package's code, not fourdfy's; --verbose shows its traceback)")
    # a ValueError, which the CLI and the DVC stages' `main` show as one line; the plug-in's own exception is kept
    # for --verbose
    assert isinstance(err.value, ValueError) and isinstance(err.value.__cause__, AttributeError)


def test_a_transform_that_returns_nothing_says_it_must_return_the_config():
    register(Method("no_return", "forgets return", transform=_no_return))
    with pytest.raises(MethodTransformError, match=r"^method 'no_return': its transform "
                       rf"{__name__}:_no_return returned None, not a TrainConfig; a transform must return the config"):
        resolve_config("tiny", "no_return")


@pytest.mark.parametrize("method, says", [
    ("broken_tf", f"error: method 'broken_tf': its transform {__name__}:_raises failed: AttributeError: "),
    ("no_return", f"error: method 'no_return': its transform {__name__}:_no_return returned None, not a TrainConfig"),
])
def test_generate_and_sweep_name_the_plugins_transform_not_an_internal_error(tmp_path, method, says):
    """The reviewer's two commands; before: `internal error (AttributeError)` and `unknown config key 'seed'; valid
    keys:` with no keys."""
    from pipelines.cli import app

    register(Method("broken_tf", "raises", transform=_raises))
    register(Method("no_return", "forgets return", transform=_no_return))
    for args in (["generate", "--method", method, "--prompt", SLUG, "--profile", "tiny", "--out",
                  str(tmp_path / "run")],
                 ["sweep", "--methods", method, "--prompts", SLUG, "--runs", str(tmp_path / "runs"), "--dry-run"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        assert res.output.startswith(says) and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_builtin_transforms_resolve_as_before():
    """The built-ins' transforms are not wrapped and still give their configs."""
    cfg = resolve_config("tiny", "hexplane")
    assert cfg.method == "hexplane" and cfg.field.representation == "hexplane"
    assert resolve_config("tiny", "single_grid").field.representation == "single_grid"


@pytest.mark.parametrize("name", ["sweep", "Sweep", ".stage-cache"])
def test_a_reserved_folder_name_is_refused_as_a_method_and_as_a_variant(monkeypatch, name):
    """Runs of a method `sweep` would land in runs/<profile>/sweep/, the sweep's own logs."""
    from pipelines import sweep

    assert {sweep.SWEEP_DIR, sweep.STAGE_CACHE} == set(RESERVED_NAMES)  # the folders the sweep makes
    with pytest.raises(ValueError, match=rf"method name '{name}' is reserved: runs/<profile>/{name.lower()}/ holds"):
        register(Method(name, "a method"))
    assert name not in METHODS
    # (a variant's name must also start with a letter or digit: `.stage-cache` is refused for that first)
    why = "cannot name a method" if name.startswith(".") else f"method name '{name}' is reserved"
    with pytest.raises(ValueError, match=rf"^params.yaml: overrides.{name}: .*{why}"):
        register_variants({name: {"base": "4dfy"}})
    with pytest.raises(ValueError, match=rf"entry point 'pair' of my-plugin: method name '{name}' is reserved"):
        _from_entry_point(monkeypatch, Method(name, "from a plug-in"))
    assert name not in METHODS


def test_a_name_equal_to_a_registered_one_but_for_case_is_refused_naming_both(monkeypatch):
    with pytest.raises(ValueError, match="method 'Wo_Hybrid' differs from the registered method 'wo_hybrid' "
                       r"\(built-in\) only in case: their run folders runs/<profile>/Wo_Hybrid/ and "
                       "runs/<profile>/wo_hybrid/ are one folder on a case-insensitive file system"):
        register(Method("Wo_Hybrid", "shadows the built-in on macOS"))
    with pytest.raises(ValueError, match=r"^params.yaml: overrides.WO_HYBRID: method 'WO_HYBRID' differs from the "
                       "registered method 'wo_hybrid'"):
        register_variants({"WO_HYBRID": {"base": "4dfy"}})
    with pytest.raises(ValueError, match="entry point 'pair' of my-plugin: method 'Single_Grid' differs from the "
                       "registered method 'single_grid'"):
        _from_entry_point(monkeypatch, Method("Single_Grid", "from a plug-in"))
    # two of one plug-in: neither is registered
    with pytest.raises(ValueError, match="entry point 'pair' of my-plugin: methods 'Mine', 'mine' differ only in case"):
        _from_entry_point(monkeypatch, Method("mine", "one"), Method("Mine", "two"))
    assert not {"Wo_Hybrid", "WO_HYBRID", "Single_Grid", "mine", "Mine"} & set(METHODS)
    # the same name again is still the old collision (or an overwrite), not a case twin
    register(Method("wo_hybrid", "replaced", overrides={"stages.stage3.p_3d": 0.0}), overwrite=True)


def test_a_registered_methods_override_out_of_range_is_named_with_the_method():
    """A value a config part refuses (0 levels) in a plug-in's overrides: refused at registration like an unknown
    key, naming the method, not as a bare range error."""
    with pytest.raises(ValueError, match=r"^method 'plugx': field\.static_grid\.n_levels must be >= 1, got 0$"):
        register(Method("plugx", "a plug-in", overrides={"field.static_grid.n_levels": 0}))
    assert "plugx" not in METHODS

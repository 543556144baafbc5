"""A reviewer's plug-ins, installed for real (a `.dist-info` folder on sys.path): a `Method` with a field of the wrong
type (`overrides` as a list of pairs or `{1: 2}`, `trainable="no"`, `overrides=None`, `description=None`, `label=5`),
an entry point giving no method, and a plug-in's own `4dfy` asked for by `generate` and `sweep`. Before: one bad
`overrides` broke every command that loads plug-ins with `internal error (AttributeError)`; the other fields were
registered as given; the empty entry point said nothing; `generate --method 4dfy` trained the built-in."""

import pytest
import yaml
from plugin_helpers import FakeEntryPoint, install_plugin
from typer.testing import CliRunner

from baselines import METHODS, Method, load_entry_points, resolve_config
from baselines import registry as reg
from baselines.registry import refused_plugins
from pipelines import stages

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: what a test registers does not outlive it
runner = CliRunner()
SLUG = "a_panda_dancing"


@pytest.fixture(autouse=True)
def _no_plugin_loaded_yet(monkeypatch):
    monkeypatch.setattr(reg, "_LOADED", set())
    monkeypatch.setattr(reg, "_ERRORS", {})


def _healthy_and(tmp_path, monkeypatch, module: str, method_args: str) -> None:
    """A healthy plug-in `healthy_rv` (good-rv) and, in another package (bad-rv), the entry point `bad` whose
    module makes `Method(<method_args>)`."""
    install_plugin(tmp_path, monkeypatch, "good-rv", {"healthy": "review_good:M"},
             {"review_good": "from baselines import Method\n"
                             "M = Method('healthy_rv', 'fine', overrides={'weights.sds_video': 0.3})\n"})
    install_plugin(tmp_path, monkeypatch, "bad-rv", {"bad": f"{module}:M"},
             {module: f"from baselines import Method\nM = Method({method_args})\n"})


BAD_FIELDS = [
    ("review_pairs", "'bad_rv', 'x', overrides=[('weights.sds_video', 0.3)]",
     "method 'bad_rv': overrides must be a mapping of dotted config keys to values, got [('weights.sds_video', 0.3)] "
     "(list)"),
    ("review_intkey", "'bad_rv', 'x', overrides={1: 2}",
     "method 'bad_rv': overrides must be a mapping whose keys are dotted config keys (strings), got 1 (int) as a key"),
    ("review_trainable", "'bad_rv', 'x', trainable='no'",
     "method 'bad_rv': trainable must be True or False (False: videos only), got 'no' (str)"),
    ("review_desc", "'bad_rv', None",
     "method 'bad_rv': description must be a string (one line for `fourdfy methods`), got None (NoneType)"),
    ("review_label", "'bad_rv', 'x', label=5",
     "method 'bad_rv': label must be a string (\"\": the name itself), got 5 (int)"),
    ("review_transform", "'bad_rv', 'x', transform='mine:fn'",
     "method 'bad_rv': transform must be a function (TrainConfig) -> TrainConfig, or None, got 'mine:fn' (str)"),
]


@pytest.mark.parametrize("module, args, says", BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_a_field_of_the_wrong_type_refuses_that_plugin_only_named(tmp_path, monkeypatch, module, args, says):
    _healthy_and(tmp_path, monkeypatch, module, args)
    assert load_entry_points(strict=False) == ["healthy_rv"]  # the other plug-in works
    assert "bad_rv" not in METHODS
    (refused,) = refused_plugins()
    assert refused.error.startswith(f"entry point 'bad' of bad-rv ({module}:M): {says}"), refused.error
    assert refused.claims == ("bad_rv",)  # the name it gives is known: the methods stage can judge by it


def test_every_command_that_loads_plugins_names_the_bad_one_and_the_others_work(tmp_path, monkeypatch, capsys):
    """The reviewer's four commands with `overrides=[(key, value)]` installed beside a healthy plug-in."""
    from pipelines.cli import app

    _healthy_and(tmp_path, monkeypatch, "review_cmds", "'bad_rv', 'x', overrides=[('weights.sds_video', 0.3)]")
    named = "entry point 'bad' of bad-rv (review_cmds:M): method 'bad_rv': overrides must be a mapping"
    res = runner.invoke(app, ["methods"])
    assert res.exit_code == 2 and "internal error" not in res.output, res.output
    assert any(ln.startswith("healthy_rv ") for ln in res.output.splitlines()), res.output
    assert res.output.strip().splitlines()[-1].startswith(f"error: {named}"), res.output
    res = runner.invoke(app, ["sweep", "--methods", "healthy_rv", "--prompts", SLUG, "--runs",
                              str(tmp_path / "runs"), "--dry-run"])
    assert res.exit_code == 0 and "healthy_rv-a_panda_dancing" in res.output, res.output
    assert resolve_config("tiny", "healthy_rv").weights.sds_video == 0.3  # what `generate --method healthy_rv` builds
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"profile": "tiny", "generate": {"methods": ["4dfy"], "prompts": [SLUG]},
                                      "overrides": {"4dfy": {}}}))
    stages.main(["methods", "--params", str(params), "--out", str(tmp_path / "methods")])
    assert (tmp_path / "methods" / "config" / "4dfy.json").is_file()
    assert f"warning: {named}" in capsys.readouterr().err


def test_overrides_none_is_no_changes():
    """Before: registered, then `generate` failed with a message naming neither the method nor the plug-in."""
    method = Method("none_rv", "x", overrides=None)
    assert method.overrides == {}
    reg.register(method)
    assert resolve_config("tiny", "none_rv").to_dict() == {**resolve_config("tiny", "4dfy").to_dict(),
                                                           "method": "none_rv"}


def test_a_mapping_of_another_type_is_taken_as_a_dict():
    from types import MappingProxyType

    method = Method("proxy_rv", "x", overrides=MappingProxyType({"weights.sds_video": 0.3}))
    assert method.overrides == {"weights.sds_video": 0.3} and isinstance(method.overrides, dict)


def test_a_field_changed_after_the_method_was_made_is_still_refused(monkeypatch):
    """`object.__setattr__` past the frozen dataclass: the plug-in's methods are made again when loaded."""
    method = Method("later_rv", "x")
    object.__setattr__(method, "overrides", [("weights.sds_video", 0.3)])
    monkeypatch.setattr(reg.md, "entry_points", lambda group: [FakeEntryPoint("later", method)])
    with pytest.raises(ValueError, match=r"^entry point 'later' of my-plugin \(my_plugin:later\): method 'later_rv': "
                                         r"overrides must be a mapping"):
        load_entry_points()
    assert "later_rv" not in METHODS


def test_built_ins_pass_the_checks_and_a_bad_field_is_its_own_error():
    from baselines.registry import MethodFieldError

    assert all(isinstance(m.trainable, bool) and isinstance(m.overrides, dict) for m in METHODS.values())
    with pytest.raises(MethodFieldError) as err:
        Method("x_rv", "x", trainable=1)
    assert isinstance(err.value, ValueError) and err.value.name == "x_rv"


def test_an_entry_point_giving_no_method_is_a_warning(tmp_path, monkeypatch, capsys):
    install_plugin(tmp_path, monkeypatch, "empty-rv", {"empty": "review_empty:all_methods"},
             {"review_empty": "def all_methods():\n    return []\n"})
    assert load_entry_points() == []
    err = capsys.readouterr().err
    assert err == ("warning: entry point 'empty' of empty-rv (review_empty:all_methods) gave no methods (an empty "
                   "list), so it registers none (an entry point names a Method, a list of them or a function returning "
                   "them)\n"), err
    assert load_entry_points() == [] and capsys.readouterr().err == ""  # once per process
    assert refused_plugins() == []  # not refused: nothing of it is used under another name


def test_generate_and_sweep_refuse_a_builtin_name_a_refused_plugin_gives_too(tmp_path, monkeypatch):
    """The docs' promise: a plug-in's own `4dfy` (refused as a duplicate) must not let `generate --method 4dfy` train
    the built-in under the name without a word. Before: get_method loaded plug-ins only for unknown names."""
    from pipelines.cli import app

    install_plugin(tmp_path, monkeypatch, "clash-rv", {"mine": "review_clash:M"},
             {"review_clash": "from baselines import Method\n"
                              "M = Method('4dfy', 'my own 4dfy', overrides={'weights.sds_video': 0.3})\n"})
    says = ("error: method '4dfy' is refused: a plug-in that cannot be registered gives a method of this name too, and "
            "the built-in one would run in its place: entry point 'mine' of clash-rv: method '4dfy' is already "
            "registered (by built-in)")
    res = runner.invoke(app, ["generate", "--method", "4dfy", "--prompt", SLUG, "--profile", "tiny", "--max-steps", "1",
                              "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and says in res.output, res.output
    assert not (tmp_path / "run").exists()
    res = runner.invoke(app, ["sweep", "--methods", "4dfy", "--prompts", SLUG, "--runs", str(tmp_path / "runs"),
                              "--dry-run"])
    assert res.exit_code == 2 and says in res.output, res.output
    # the other built-ins still train
    assert resolve_config("tiny", "wo_hybrid").method == "wo_hybrid"

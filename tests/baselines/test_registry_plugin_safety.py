"""Installed plug-ins (`fourdfy.methods` entry points) that must not quietly change what trains, nor take over
fourdfy's process: two packages with one entry point name, a plug-in's own `4dfy`, method names that cannot name
run folders, a module that exits while it is imported, an entry point value that names no object. Each is a real
distribution (a `.dist-info` folder on sys.path, as `pip install --target` leaves it), read by importlib.metadata as
an installed one is."""

import sys

import pytest
import yaml
from plugin_helpers import install_plugin
from typer.testing import CliRunner

from baselines import METHODS, Method, get_method, load_entry_points, register
from baselines import registry as reg
from pipelines import stages

pytestmark = pytest.mark.usefixtures("registry")  # tests/conftest.py: what a test registers does not outlive it
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_plugin_loaded_yet(monkeypatch):
    """Each test's plug-ins are loaded by that test: none of another test's stays loaded or refused."""
    monkeypatch.setattr(reg, "_LOADED", set())
    monkeypatch.setattr(reg, "_ERRORS", {})


def _method(module: str, name: str, description: str = "x", extra: str = "") -> dict[str, str]:
    return {module: f"from baselines import Method\nM = Method({name!r}, {description!r}{extra})\n"}


# 1. one entry point name in two packages


def test_two_packages_with_one_entry_point_name_both_register_their_methods(tmp_path, monkeypatch):
    """Before: the second package's `methods = ...` was skipped as "already loaded" (its methods missing)."""
    for dist, module, name in (("pkg-one", "safety_one", "one_method"), ("pkg-two", "safety_two", "two_method")):
        install_plugin(tmp_path, monkeypatch, dist, {"methods": f"{module}:all_methods"},
                 {module: f"from baselines import Method\n\ndef all_methods():\n"
                          f"    return [Method({name!r}, 'from {dist}', trainable=False)]\n"})
    assert sorted(load_entry_points()) == ["one_method", "two_method"]
    assert METHODS["one_method"].source == "entry point 'methods' of pkg-one"
    assert METHODS["two_method"].source == "entry point 'methods' of pkg-two"
    assert load_entry_points() == []  # each loaded once


def test_two_packages_giving_one_method_name_is_an_error_naming_both(tmp_path, monkeypatch):
    """The reviewer's `dup = ...` in two packages, each a method 'dup': before, the second was silently dropped and
    the first trained under the name; now it is refused naming both, and asking for 'dup' is refused too (which
    of the two the user means cannot be known)."""
    install_plugin(tmp_path, monkeypatch, "dupa-plugin", {"dup": "safety_dupa:M"},
             _method("safety_dupa", "dup", "from A", ", overrides={'weights.sds_video': 0.2}"))
    install_plugin(tmp_path, monkeypatch, "dupb-plugin", {"dup": "safety_dupb:M"},
             _method("safety_dupb", "dup", "from B", ", overrides={'weights.sds_video': 0.5}"))
    with pytest.raises(ValueError) as err:
        load_entry_points()
    text = str(err.value)
    assert "method 'dup' is already registered" in text, text
    assert "entry point 'dup' of dupa-plugin" in text and "entry point 'dup' of dupb-plugin" in text, text
    with pytest.raises(ValueError, match=r"^method 'dup' is refused: a plug-in that cannot be registered gives a "
                                         r"method of this name too, and the one of entry point 'dup' of dup.-plugin "
                                         r"would run in its place: entry point 'dup' of dup.-plugin: "):
        get_method("dup")


# 2. a plug-in's own built-in name: `get_method` and the `methods` stage


def test_get_method_refuses_a_built_in_name_a_refused_plugin_gives_too(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "clash-plugin", {"fourdfy": "safety_clash:M"},
             _method("safety_clash", "4dfy", "my own 4dfy", ", overrides={'weights.sds_video': 0.3}"))
    assert get_method("4dfy").source == "built-in"  # no plug-in loaded yet: not known (built-ins load none)
    assert load_entry_points(strict=False) == []
    with pytest.raises(ValueError) as err:
        get_method("4dfy")
    assert str(err.value) == (
        "method '4dfy' is refused: a plug-in that cannot be registered gives a method of this name too, and the "
        "built-in one would run in its place: entry point 'fourdfy' of clash-plugin: method '4dfy' is already "
        "registered (by built-in); rename that plug-in's method or uninstall the plug-in")
    assert get_method("wo_hybrid").source == "built-in"  # the other built-ins are untouched


def _params(tmp_path, methods, videos=None, overrides=None):
    params = {"seed": 0, "profile": "tiny",
              "generate": {"methods": list(methods), "prompts": ["a_panda_dancing"],
                           "extra": {"methods": [], "prompts": []}},
              "videos": videos or {},
              "overrides": overrides if overrides is not None else {m: {} for m in methods}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _stage(params, out, capsys) -> tuple[int, list[str]]:
    try:
        stages.main(["methods", "--params", str(params), "--out", str(out)])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err.strip().splitlines()


def test_the_methods_stage_fails_on_a_refused_plugin_that_gives_a_built_in_name(tmp_path, monkeypatch, capsys,
                                                                               earlier_methods_output):
    """The reviewer's repro: a plug-in `4dfy` refused by `fourdfy methods` was ignored by the `methods` stage, and
    the built-in trained while the user thought theirs did."""
    install_plugin(tmp_path, monkeypatch, "clash-plugin", {"fourdfy": "safety_clash2:M"},
             _method("safety_clash2", "4dfy", "my own 4dfy", ", overrides={'weights.sds_video': 0.3}"))
    params = _params(tmp_path, ["4dfy", "wo_hybrid"])
    out, before = earlier_methods_output
    code, err = _stage(params, out, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0] == (
        f"error: {params}: an installed plug-in that gives a method this pipeline uses cannot be registered, so "
        "another method (or none) would run under its name: entry point 'fourdfy' of clash-plugin: method '4dfy' is "
        "already registered (by built-in) (the built-in '4dfy' would be trained and reported in its place); fix or "
        "uninstall it (`fourdfy methods` lists what is registered)")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing lost or rewritten


def test_the_methods_stage_fails_on_a_refused_plugin_giving_a_name_params_yaml_uses(tmp_path, monkeypatch, capsys):
    """Two packages giving 'dup': the second is refused, and params.yaml trains 'dup' (whichever loaded first)."""
    install_plugin(tmp_path, monkeypatch, "dupa-plugin", {"dup": "safety_dupa2:M"},
             _method("safety_dupa2", "dup", "from A", ", overrides={'weights.sds_video': 0.2}"))
    install_plugin(tmp_path, monkeypatch, "dupb-plugin", {"dup": "safety_dupb2:M"},
             _method("safety_dupb2", "dup", "from B", ", overrides={'weights.sds_video': 0.5}"))
    params = _params(tmp_path, ["4dfy", "dup"])
    code, err = _stage(params, tmp_path / "methods", capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {params}: an installed plug-in that gives a method this pipeline uses cannot "
                             "be registered"), err
    assert "method 'dup' is already registered" in err[0] and "(it gives 'dup', which params.yaml names as " \
           "'dup')" in err[0], err
    assert not (tmp_path / "methods").exists()


def test_an_unrelated_broken_plugin_is_a_warning_and_the_stage_goes_on(tmp_path, monkeypatch, capsys):
    """A broken package the pipeline does not use must not stop its repro, but is not silent either."""
    install_plugin(tmp_path, monkeypatch, "raise-plugin", {"boom": "safety_raise:M"},
             {"safety_raise": "raise RuntimeError('plugin is broken at import')\n"})
    install_plugin(tmp_path, monkeypatch, "good-plugin", {"good": "safety_good:M"},
             _method("safety_good", "good_one", "fine", ", overrides={'weights.sds_video': 0.3}"))
    params = _params(tmp_path, ["4dfy", "good_one"])
    code, err = _stage(params, tmp_path / "methods", capsys)
    assert code == 0, err
    # it failed before giving any method: the warning does not claim params.yaml names none of them
    assert err == ["warning: entry point 'boom' of raise-plugin (safety_raise:M) cannot be loaded: RuntimeError: "
                   "plugin is broken at import; the pipeline goes on without it, but it failed before giving any "
                   "method, so which names it gives is unknown: if params.yaml names one of its methods, fix it first"]
    assert sorted(p.name for p in (tmp_path / "methods" / "config").iterdir()) == ["4dfy.json", "good_one.json"]


def test_a_refused_plugin_giving_a_built_in_the_pipeline_does_not_use_is_a_warning(tmp_path, monkeypatch, capsys):
    """Its own `hexplane`, where params.yaml trains 4dfy only: nothing runs in its place, so the repro goes on."""
    install_plugin(tmp_path, monkeypatch, "hex-plugin", {"hexplane": "safety_hex:M"},
             _method("safety_hex", "hexplane", "my own hexplane", ", overrides={'weights.sds_video': 0.3}"))
    params = _params(tmp_path, ["4dfy"])
    code, err = _stage(params, tmp_path / "methods", capsys)
    assert code == 0, err
    assert len(err) == 1 and err[0].startswith("warning: entry point 'hexplane' of hex-plugin"), err
    assert err[0].endswith("the pipeline goes on without it (params.yaml names none of its methods: 'hexplane')")
    assert sorted(p.name for p in (tmp_path / "methods" / "config").iterdir()) == ["4dfy.json"]


def test_a_method_of_a_refused_plugin_is_named_as_such_not_as_unknown(tmp_path, monkeypatch):
    """One entry point gives two methods, one with a mistyped key: the plug-in is refused whole, and asking for its
    good method says why, instead of 'unknown method ... needs its package installed'."""
    install_plugin(tmp_path, monkeypatch, "two-plugin", {"methods": "safety_two:ms"},
             {"safety_two": "from baselines import Method\n\ndef ms():\n"
                            "    return [Method('two_good', 'ok', overrides={'weights.sds_video': 0.3}),\n"
                            "            Method('two_typo', 'typo', overrides={'weights.sds_vide': 0.3})]\n"})
    assert load_entry_points(strict=False) == []
    with pytest.raises(ValueError) as err:
        get_method("two_good")
    assert str(err.value).startswith("method 'two_good' is a plug-in that cannot be registered: entry point "
                                     "'methods' of two-plugin"), err.value
    assert not isinstance(err.value, reg.UnknownMethodError)


def test_a_broken_plugin_named_under_videos_stops_the_stage(tmp_path, monkeypatch, capsys):
    """Known by its entry point's name (it gave no method): a `videos:` entry of that name is its."""
    install_plugin(tmp_path, monkeypatch, "raise-plugin", {"boom": "safety_raise2:M"},
             {"safety_raise2": "raise RuntimeError('plugin is broken at import')\n"})
    (tmp_path / "vids").mkdir()
    params = _params(tmp_path, ["4dfy"], videos={"boom": {"folder": str(tmp_path / "vids"), "trajectory": "orbit"}})
    code, err = _stage(params, tmp_path / "methods", capsys)
    assert code == 2 and len(err) == 1 and "entry point 'boom' of raise-plugin" in err[0], err
    assert "(it gives 'boom', which params.yaml names as 'boom')" in err[0]


# 3. method names that cannot name run folders


@pytest.mark.parametrize("name", ["my/strong", "my strong", "", "my.strong", "-lead", "naïve"])
def test_a_method_name_outside_the_rule_is_refused_at_registration(name):
    """Before: listed by `fourdfy methods`, trained, then `render` failed after the training."""
    with pytest.raises(ValueError, match=r"^method name .* is not allowed: it names run folders, artifact folders "
                                         r"and DVC stages .*; use ASCII letters, digits, '_' and '-', starting with "
                                         r"a letter or digit \(e\.g\. my_method\)$"):
        register(Method(name, "odd"))
    assert name not in METHODS


def test_a_plugin_with_such_a_name_is_refused_whole(tmp_path, monkeypatch):
    """The reviewer's plug-in: four odd names from one function; none is registered (all or none)."""
    install_plugin(tmp_path, monkeypatch, "oddmod-p", {"odd": "safety_odd:ms"},
             {"safety_odd": "from baselines import Method\n\ndef ms():\n"
                            "    return [Method('fine_name', 'ok'), Method('my/strong', 'slash'),\n"
                            "            Method('my strong', 'space', trainable=False)]\n"})
    with pytest.raises(ValueError, match=r"^entry point 'odd' of oddmod-p: method name 'my/strong' is not allowed: "):
        load_entry_points()
    assert not {"fine_name", "my/strong", "my strong"} & set(METHODS)


def test_a_name_that_is_not_a_string_is_refused():
    with pytest.raises(ValueError, match=r"^method name 42 is a int, not a string$"):
        register(Method(42, "a number"))


# 4. a module that exits while it is imported


def test_a_plugin_parsing_the_command_line_at_import_is_refused_not_the_end_of_fourdfy(tmp_path, monkeypatch,
                                                                                       capsys):
    """A training script reused as the plug-in module: its `parse_args()` read `fourdfy methods`' own command line
    and argparse exited fourdfy (`usage: fourdfy [-h] [--steps STEPS]`, `error: unrecognized arguments`)."""
    install_plugin(tmp_path, monkeypatch, "exit-p", {"ex": "safety_exit:M"},
             {"safety_exit": "import argparse\np = argparse.ArgumentParser(prog='fourdfy')\n"
                             "p.add_argument('--steps', type=int, default=10)\nARGS = p.parse_args()\n"
                             "from baselines import Method\nM = Method('ex', 'x', trainable=False)\n"})
    install_plugin(tmp_path, monkeypatch, "good-plugin", {"good": "safety_good2:M"},
             _method("safety_good2", "good_two", "fine", ", trainable=False"))
    monkeypatch.setattr(sys, "argv", ["fourdfy", "methods"])
    assert load_entry_points(strict=False) == ["good_two"]  # no SystemExit: the others are registered
    assert reg.plugin_errors() == {("exit-p", "ex"): (
        "entry point 'ex' of exit-p (safety_exit:M) exited while importing (SystemExit: 2; any usage lines just "
        "above are the plug-in's, not fourdfy's); a plug-in's module must not exit or parse the command line when "
        "it is imported (move that under `if __name__ == \"__main__\":`)")}
    # argparse's own lines are printed as they were (the error above says whose they are)
    assert "error: unrecognized arguments: methods" in capsys.readouterr().err


def test_a_logging_handler_a_plugin_sets_up_at_import_keeps_writing_to_stderr(tmp_path, monkeypatch, capsys):
    """A plug-in module that sets up logging when imported (`logging.basicConfig()` in a training script): its
    handler writes to the stderr of the process for the rest of the run. Stderr held back during the import had left
    every later log line in a buffer nobody read."""
    import logging

    install_plugin(tmp_path, monkeypatch, "log-p", {"logs": "safety_log:M"},
             {"safety_log": "import logging\nlogging.getLogger('safety_log').addHandler(logging.StreamHandler())\n"
                            + _method("x", "logs_one")["x"]})
    try:
        assert load_entry_points() == ["logs_one"]
        logging.getLogger("safety_log").warning("a warning while training")
        assert capsys.readouterr().err == "a warning while training\n"
    finally:
        logging.getLogger("safety_log").handlers.clear()


def test_fourdfy_methods_names_a_plugin_that_calls_sys_exit(tmp_path, monkeypatch):
    from pipelines.cli import app

    install_plugin(tmp_path, monkeypatch, "exit-p", {"ex": "safety_exit2:M"},
             {"safety_exit2": "import sys\nsys.exit('no GPU here')\n"})
    res = runner.invoke(app, ["methods"])
    assert res.exit_code == 2, res.output
    assert "error: entry point 'ex' of exit-p (safety_exit2:M) exited while importing (SystemExit: no GPU here; " \
           in res.output, res.output


def test_a_plugin_function_that_exits_is_refused_too(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, "exit-fn", {"methods": "safety_exit3:all_methods"},
             {"safety_exit3": "import sys\n\ndef all_methods():\n    sys.exit(3)\n"})
    assert load_entry_points(strict=False) == []
    assert reg.plugin_errors() == {("exit-fn", "methods"): (
        "entry point 'methods' of exit-fn (safety_exit3:all_methods) exited while being called (SystemExit: 3); a "
        "plug-in's function must return its methods, not exit")}


def test_ctrl_c_while_a_plugin_imports_still_stops_fourdfy_and_its_stderr_is_kept(tmp_path, monkeypatch, capsys):
    install_plugin(tmp_path, monkeypatch, "slow-p", {"slow": "safety_slow:M"},
             {"safety_slow": "import sys\nprint('loading weights...', file=sys.stderr)\nraise KeyboardInterrupt\n"})
    with pytest.raises(KeyboardInterrupt):
        load_entry_points(strict=False)
    assert capsys.readouterr().err == "loading weights...\n"


def test_what_a_good_plugin_writes_to_stderr_at_import_is_written_out(tmp_path, monkeypatch, capsys):
    install_plugin(tmp_path, monkeypatch, "chatty-p", {"chatty": "safety_chatty:M"},
             {"safety_chatty": "import sys\nprint('chatty: deprecated option', file=sys.stderr)\n"
                               + _method("x", "chatty_one")["x"]})
    assert load_entry_points() == ["chatty_one"]
    assert capsys.readouterr().err == "chatty: deprecated option\n"


# 5. an entry point value that names no object


def test_a_malformed_entry_point_value_says_what_it_must_be(tmp_path, monkeypatch):
    """Before: `AttributeError: 'NoneType' object has no attribute 'group'` (importlib.metadata's own failure)."""
    install_plugin(tmp_path, monkeypatch, "malformed-plugin", {"mal3": "not a valid spec!!", "fine": "safety_mal:M"},
             _method("safety_mal", "malok", "ok"))
    with pytest.raises(ValueError) as err:
        load_entry_points()
    assert str(err.value) == ("entry point 'mal3' of malformed-plugin: its value 'not a valid spec!!' is not an "
                              "object reference; it must be `module:attribute` (or `module`), e.g. "
                              "`my_plugin:STRONG_VIDEO`")
    assert "malok" in METHODS  # the same package's good entry point is registered all the same


def test_fourdfy_methods_lists_what_works_then_names_the_broken_plugin(tmp_path, monkeypatch):
    """One broken plug-in must not hide the list: `fourdfy methods` is where a user looks to see what is registered,
    the good plug-in's method included; the broken one is the error after it (exit 2)."""
    from pipelines.cli import app

    install_plugin(tmp_path, monkeypatch, "good-p", {"good": "safety_good:M"}, _method("safety_good", "works_fine"))
    install_plugin(tmp_path, monkeypatch, "bad-p", {"bad": "safety_bad:M"},
             {"safety_bad": "raise ImportError('needs a GPU build')\n"})
    res = runner.invoke(app, ["methods"])
    assert res.exit_code == 2, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("4dfy ") and any(ln.startswith("works_fine ") and "[entry point 'good' of good-p]"
                                                in ln for ln in lines), res.output
    assert lines[-1].startswith("error: entry point 'bad' of bad-p (safety_bad:M) cannot be loaded: ImportError: "
                                "needs a GPU build"), res.output

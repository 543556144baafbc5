"""docs/adding-a-baseline.md followed literally: pip-install the example plug-in package, `fourdfy methods` lists
its methods with their source, its trainable method resolves and trains, and a plug-in with a typo in an
override key fails with one line naming the key."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def _fourdfy(*args, site: Path, timeout=600):
    """The `fourdfy` console script as a user runs it, with the plug-in's install folder on PYTHONPATH."""
    exe = shutil.which("fourdfy", path=str(BIN))
    cmd = [exe] if exe else [sys.executable, "-c", "from pipelines.cli import main; main()"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=timeout)


def _pip_install(src: Path, target: Path) -> None:
    # a copy, so that the build leaves no build/ or *.egg-info in the source tree; offline: setuptools is in the venv
    copy = target.parent / f"{src.name}-src"
    shutil.copytree(src, copy)
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(target), str(copy)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    target = tmp_path_factory.mktemp("plugin") / "site"
    _pip_install(HERE / "example_plugin", target)
    return target


def test_fourdfy_methods_lists_the_plugin_methods_with_their_source(site):
    res = _fourdfy("methods", site=site)
    assert res.returncode == 0, res.stderr
    lines = {line.split()[0]: line for line in res.stdout.splitlines() if line.strip()}
    assert "weighted 0.3" in lines["strong_video"]
    assert "[entry point 'strong_video' of fourdfy-example-plugin]" in lines["strong_video"]
    assert "[videos only]" in lines["videos_only_example"]
    assert "of fourdfy-example-plugin]" in lines["videos_only_example"]
    assert "4dfy" in lines and "[entry point" not in lines["4dfy"]


def test_without_the_package_the_methods_are_unknown(tmp_path):
    res = _fourdfy("methods", site=tmp_path)
    assert res.returncode == 0 and "strong_video" not in res.stdout


def test_the_plugin_method_resolves_to_4dfy_with_its_override(site):
    code = ("import json; from pipelines.generate import build_config; "
            "a = build_config('tiny', 'strong_video').to_dict(); "
            "b = build_config('tiny', '4dfy', sets={'weights.sds_video': '0.3'}).to_dict(); "
            "print(json.dumps([a, b]))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    plugin, reference = json.loads(res.stdout)
    assert plugin["weights"]["sds_video"] == 0.3 and plugin["method"] == "strong_video"
    assert {k: v for k, v in plugin.items() if k != "method"} == {k: v for k, v in reference.items() if k != "method"}


@pytest.mark.slow
def test_the_plugin_method_trains_through_fourdfy_generate(site, tmp_path):
    out = tmp_path / "run"
    # stage 3 only, one step: the cheapest real run of the plug-in's method through the CLI
    res = _fourdfy("generate", "--method", "strong_video", "--prompt", "a_panda_dancing", "--profile", "tiny",
                   "--max-steps", "1", "--set", "stages.stage1.steps=0", "--set", "stages.stage2.steps=0",
                   "--set", "preview_frames=0", "--out", str(out), "--no-progress", site=site)
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads((out / "manifest.json").read_text())
    assert m["method"] == "strong_video" and m["config"]["weights"]["sds_video"] == 0.3
    assert sum(m["update_counts"]["stage3"].values()) == 1


def test_a_typo_in_a_plugin_override_is_a_one_line_error_naming_the_key(tmp_path):
    src = tmp_path / "bad_plugin"
    (src / "bad_plugin").mkdir(parents=True)
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "fourdfy-bad-plugin"\nversion = "0.1.0"\n'
        '[project.entry-points."fourdfy.methods"]\ntypo = "bad_plugin:TYPO"\n'
        '[tool.setuptools]\npackages = ["bad_plugin"]\n')
    (src / "bad_plugin" / "__init__.py").write_text(
        'from baselines import Method\n'
        'TYPO = Method("typo", "a typo in a key", overrides={"weights.sds_vide": 0.3})\n')
    site = tmp_path / "site"
    _pip_install(src, site)
    res = _fourdfy("methods", site=site)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "'weights.sds_vide'" in lines[0] and "'typo'" in lines[0]
    assert "Traceback" not in res.stderr
    # a broken plug-in stops only what could be it: the built-in methods still resolve; a request for the
    # broken one (an unknown name to the registry) gets the plug-in's own error
    code = ("from baselines import get_method\n"
            "print(get_method('4dfy').name)\n"
            "try:\n    get_method('typo')\nexcept ValueError as err:\n    print(err)\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    first, second = res.stdout.strip().splitlines()
    assert first == "4dfy"
    assert second.startswith("unknown method 'typo'") and "'weights.sds_vide'" in second
    res = _fourdfy("generate", "--method", "typo", "--prompt", "a_panda_dancing", "--out", str(tmp_path / "r"),
                   site=site)
    assert res.returncode == 2 and "'weights.sds_vide'" in res.stderr and not (tmp_path / "r").exists()

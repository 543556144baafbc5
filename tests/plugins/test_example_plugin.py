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
    assert "[label 'w/ video SDS x3']" in lines["strong_video"]  # its row's name in the tables
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
    # broken one is told that it is broken (not unknown) and why
    code = ("from baselines import get_method\n"
            "print(get_method('4dfy').name)\n"
            "try:\n    get_method('typo')\nexcept ValueError as err:\n    print(err)\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    first, second = res.stdout.strip().splitlines()
    assert first == "4dfy"
    assert second.startswith("method 'typo' is a plug-in that cannot be registered: entry point 'typo' of "
                             "fourdfy-bad-plugin") and "'weights.sds_vide'" in second
    res = _fourdfy("generate", "--method", "typo", "--prompt", "a_panda_dancing", "--out", str(tmp_path / "r"),
                   site=site)
    assert res.returncode == 2 and "'weights.sds_vide'" in res.stderr and not (tmp_path / "r").exists()


def test_dvc_reruns_only_the_stages_of_a_plugin_method_whose_definition_changed(tmp_path):
    """An installed plug-in lives outside the repository, where DVC's dependencies cannot point. The `methods`
    stage runs on every repro and writes each method's resolved config and label; editing the plug-in's override
    makes its generate stage out of date and no other, and editing its label makes the design stage out of date."""
    import yaml

    site = tmp_path / "site"  # its own install: the test edits it
    _pip_install(HERE / "example_plugin", site)
    root = Path(__file__).resolve().parents[2]
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dvc.yaml", "method", "prompts", "pipelines", "userstudy/designs", "data/videos"):
        src, dst = root / name, project / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["generate"]["methods"] = ["4dfy", "strong_video"]
    params["overrides"] = {"4dfy": {}, "strong_video": {}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    (project / ".dvc").mkdir()
    (project / ".dvc" / "config").write_text("[core]\n    no_scm = true\n    analytics = false\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
           "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}

    def dvc(*args):
        res = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, capture_output=True, text=True,
                             env=env, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    def out_of_date(*stages):
        status = json.loads(dvc("status", *stages, "--json"))
        return {s for s, changes in status.items() if changes != ["always changed"]}

    dvc("repro", "--single-item", "methods")
    config = json.loads((project / "build/methods/config/strong_video.json").read_text())
    assert config["weights"]["sds_video"] == 0.3
    gen = {m: f"generate@{m}-a_panda_dancing" for m in ("4dfy", "strong_video")}
    for stage in gen.values():  # as if trained: its output there, its dependencies recorded in dvc.lock
        (project / "runs/tiny" / stage.split("@")[1].replace("-", "/", 1)).mkdir(parents=True)
    (project / "build/design.yaml").write_text("# stand-in\n")
    dvc("commit", "--force", *gen.values(), "design")
    assert out_of_date(*gen.values(), "design") == set()

    installed = next(site.glob("fourdfy_example_plugin/__init__.py"))
    installed.write_text(installed.read_text().replace('"weights.sds_video": 0.3', '"weights.sds_video": 0.5'))
    dvc("repro", "--single-item", "methods")
    assert out_of_date(*gen.values(), "design") == {gen["strong_video"]}

    dvc("commit", "--force", gen["strong_video"])
    installed.write_text(installed.read_text().replace('label="w/ video SDS x3"', 'label="w/ video SDS x5"'))
    dvc("repro", "--single-item", "methods")
    assert out_of_date(*gen.values(), "design") == {"design"}

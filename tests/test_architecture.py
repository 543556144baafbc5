"""The layer contract (pyproject.toml [tool.importlinter]) holds: no package imports a layer above it."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports() -> str:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is a dev dependency: pip install -e '.[dev]'"
    return exe


def test_layers_point_one_way():
    res = subprocess.run([_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 kept, 0 broken" in res.stdout


def test_the_contract_catches_a_backwards_import(tmp_path):
    # a copy of the tree with one upward import must break the contract (the check is not vacuous)
    for name in ("method", "baselines", "prompts", "evaluation", "userstudy", "pipelines"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.txt", "*.mp4"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bad = tmp_path / "method" / "_backwards.py"
    bad.write_text("import pipelines.cli  # noqa\n")
    res = subprocess.run([_lint_imports(), "--no-cache"], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": ""})
    assert res.returncode != 0
    assert "method._backwards" in res.stdout and "pipelines.cli" in res.stdout


def test_lazy_module_attr_strings_in_the_generator_stay_in_its_layer():
    """`load_attr("package.module:Attr")` imports by name, which import-linter cannot see: every such string in
    method/ (prior kinds, guidance targets, model-part loaders) names method/ itself or a third-party package."""
    import ast
    import re

    spec = re.compile(r"^([A-Za-z_]\w*)(\.\w+)*:[A-Za-z_]\w*$")
    upper = {"baselines", "prompts", "evaluation", "userstudy", "pipelines"}
    found, bad = [], []
    for path in sorted((ROOT / "method").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and spec.match(node.value):
                found.append(node.value)
                if node.value.split(".")[0].split(":")[0] in upper:
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert "method.guidance.vsd:VSDConfig" in found and "diffusers:UNet3DConditionModel" in found, found
    assert not bad, "upward imports by name:\n" + "\n".join(bad)


def test_pytest_typed_alone_finds_the_packages_not_the_test_folders():
    """`pytest` as a console script does not put the working directory on sys.path (`python -m pytest` does), and
    tests/prompts/ and tests/baselines/ are folders without __init__.py named like the packages: without the
    repository root on pytest's own `pythonpath`, `import prompts` found the test folder. `python -P` drops the
    working directory from sys.path as the console script does."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-P", "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "tests/prompts", "tests/baselines/test_registry_variants.py"],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "tests/prompts/test_prompts.py::" in res.stdout and " error" not in res.stdout.splitlines()[-1]

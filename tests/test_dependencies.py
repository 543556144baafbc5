"""Every third-party package the project's code imports is a declared dependency of pyproject.toml (a plain
`pip install` of the project must run every command), and every declared one is used by something."""

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("method", "baselines", "prompts", "evaluation", "userstudy", "pipelines")
# imported but rightly not declared: an optional accelerator, and a package that ships with torch
NOT_DECLARED = {"tinycudann", "triton"}
# declared but not imported by name: what they are for (pyproject.toml says the same in a comment)
NOT_IMPORTED = {"torchvision": "open_clip's image transforms", "rich": "typer's rich help",
                "psycopg": "SQLAlchemy's postgresql+psycopg driver",
                "dvc": "the pipeline's command (dvc.yaml)"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {_norm(re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0]) for d in deps}


def _imported_top_level() -> dict[str, str]:
    """Top-level module imported -> one file importing it (function-level imports included)."""
    found: dict[str, str] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                         else [])
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in PACKAGES:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_declared():
    dists = metadata.packages_distributions()
    declared = _declared()
    missing = []
    for module, where in sorted(_imported_top_level().items()):
        if module in NOT_DECLARED:
            continue
        owners = {_norm(d) for d in dists.get(module, [])}
        assert owners, f"{module} (imported in {where}) belongs to no installed distribution"
        if not owners & declared:
            missing.append(f"{module} ({where}; distribution {', '.join(sorted(owners))})")
    assert not missing, "imported but not in [project].dependencies: " + "; ".join(missing)


def test_every_declared_package_is_used():
    dists = metadata.packages_distributions()
    imported = {_norm(d) for m in _imported_top_level() for d in dists.get(m, [])}
    unused = sorted(declared for declared in _declared() if declared not in imported and declared not in NOT_IMPORTED)
    assert not unused, f"declared in [project].dependencies but imported nowhere: {', '.join(unused)}"

"""The layout contract of DESIGN.md: the tiers never import each other; the kernel imports none."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIERS = ("edge", "model_server", "index_builder")
KERNEL = "moviemind_core"
# What each package may import of this repository's packages.
ALLOWED = {
    KERNEL: set(),
    "edge": {KERNEL},
    "model_server": {KERNEL},
    "index_builder": {KERNEL},
}
OWN = {*TIERS, KERNEL, "loadtests", "tests", "benchmarks"}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of this repository's packages that a module imports, lazily or not."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OWN


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_layout_allows(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        extra = imported_packages(path) - ALLOWED[package] - {package}
        if extra:
            bad.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(extra))}")
    assert not bad, "layout violations:\n" + "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from edge.service import Recommender\n")
    assert imported_packages(module) == {"edge"}


def test_readme_map_lists_every_module_of_the_tree() -> None:
    """A newcomer's map that matches the tree: regenerate with scripts/module_map.py --write."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("module_map", ROOT / "scripts" / "module_map.py")
    assert spec and spec.loader
    module_map = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module_map)
    readme = (ROOT / "README.md").read_text()
    start = readme.index(module_map.BEGIN)
    end = readme.index(module_map.END) + len(module_map.END)
    assert readme[start:end] == module_map.render(), "run scripts/module_map.py --write"

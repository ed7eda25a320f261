"""Which package may import what (``ALLOWED`` below, the house plan's import directions; the team's
design note on it is not part of this repository), checked by scanning the source."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"cores", "agents", "envs", "configs", "train_agent", "benchmarks", "tests"}
STDLIB = set(sys.stdlib_module_names) | {"__future__"}

# package -> (third-party roots it may import, our packages/modules it may import)
ALLOWED = {
    "cores": ({"torch"}, {"cores"}),
    "agents": ({"torch", "numpy", "ray"}, {"agents", "cores.base", "cores.cache"}),
    "envs": ({"gymnasium", "minigrid", "numpy", "envpool", "popgym"}, {"envs"}),
    "configs": ({"yaml"}, {"configs"}),
}


def imports_of(path: Path, package: str) -> set[str]:
    """Absolute module names imported by ``path``, relative imports resolved within ``package``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = path.relative_to(ROOT).with_suffix("").parts[: -node.level]
                base = ".".join(parts + ((node.module,) if node.module else ()))
                names.update(f"{base}.{a.name}" if not node.module else base for a in node.names)
            else:
                names.add(node.module)
    return names


def allowed(name: str, third_party: set[str], ours: set[str]) -> bool:
    root = name.split(".")[0]
    if root in STDLIB:
        return True
    if root in OURS:
        return any(name == o or name.startswith(o + ".") for o in ours)
    return root in third_party


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_follow_the_plan(package):
    third_party, ours = ALLOWED[package]
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports_of(path, package):
            if not allowed(name, third_party, ours):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_nothing_imports_the_composition_root():
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("cores", "agents", "envs", "configs", "benchmarks", "tests")
        for path in (ROOT / package).rglob("*.py")
        if "train_agent" in imports_of(path, package)
    ]
    assert not offenders


def test_the_scanner_sees_relative_and_absolute_imports():
    package = ROOT / "cores"
    names = imports_of(package / "lstm.py", "cores")
    assert "torch" in names and "cores.fused" in names

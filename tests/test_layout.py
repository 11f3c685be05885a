"""The layout's one-way arrows, enforced: the core imports no backend, no I/O, no pickle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_CORE = {"asyncio", "simpy", "socket", "ssl", "selectors", "sim", "net", "pickle", "cloudpickle",
                     "dill", "marshal"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "ergo").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_no_backend_and_no_io(path):
    assert not _imports(path) & FORBIDDEN_IN_CORE


@pytest.mark.parametrize("package", ["sim", "net"])
def test_backends_never_unpickle(package):
    for path in (ROOT / package).rglob("*.py"):
        assert not _imports(path) & {"pickle", "cloudpickle", "dill", "marshal"}, path

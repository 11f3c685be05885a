"""The package is typed: mypy passes on it, and on a user's program with ``--strict``.

mypy runs in a subprocess (as a user or CI runs it: no sys.path inherited from pytest),
with its incremental cache kept in pytest's cache directory, so only the first run after a
change pays for a full check (a few seconds per run once warm).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import ergo
from ergo.gen import errors, messages

ROOT = Path(__file__).resolve().parent.parent
USER_APP = ROOT / "tests" / "typing" / "user_app.py"

needs_mypy = pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None,
    reason="mypy is not installed (it comes with the [test] extras: pip install -e '.[test]')",
)


def _cache(request: pytest.FixtureRequest, name: str) -> Path:
    """A mypy cache that outlives the test session (one per set of options: a cache
    written with other options is thrown away by mypy, so sharing one would thrash)."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir(f"mypy-{name}"))
    return Path(request.config._tmp_path_factory.mktemp(f"mypy-{name}"))  # type: ignore[attr-defined]


def _mypy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def _editable_here() -> bool:
    """Whether ergonode is installed in editable mode from this checkout."""
    # every copy of the metadata: the checkout's own ergonode.egg-info may be found first
    for dist in metadata.distributions(name="ergonode"):
        text = dist.read_text("direct_url.json")
        if text:
            info = json.loads(text)
            url = info.get("url", "")
            if info.get("dir_info", {}).get("editable") and Path(url.removeprefix("file://")).resolve() == ROOT:
                return True
    return False


@needs_mypy
def test_the_package_passes_mypy(request: pytest.FixtureRequest) -> None:
    """``mypy`` with the project's [tool.mypy] settings (files: ergo, sim, net) is clean."""
    done = _mypy("--cache-dir", str(_cache(request, "package")), cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_mypy
def test_a_user_program_passes_mypy_strict(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """A program using the public API (tests/typing/user_app.py) passes ``mypy --strict``
    with no configuration of its own; errors inside the package are not the user's, so
    they are silenced as they are for any installed package."""
    empty = tmp_path / "mypy.ini"
    empty.write_text("[mypy]\n")
    done = _mypy("--strict", "--follow-imports=silent", "--config-file", str(empty),
                 "--cache-dir", str(_cache(request, "strict")), str(USER_APP), cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_mypy
def test_a_strict_user_program_with_a_type_error_fails(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The check above can fail: the package's types reach the user's code (not Any)."""
    empty = tmp_path / "mypy.ini"
    empty.write_text("[mypy]\n")
    wrong = tmp_path / "wrong.py"
    wrong.write_text("import ergo\n\n\ndef pid() -> int:\n    return ergo.PID('a@b', 1)\n")
    done = _mypy("--strict", "--follow-imports=silent", "--config-file", str(empty),
                 "--cache-dir", str(_cache(request, "strict")), str(wrong), cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert 'Incompatible return value type (got "PID", expected "int")' in done.stdout


@needs_mypy
@pytest.mark.skipif(not _editable_here(), reason="ergonode is not installed in editable mode from this checkout")
def test_an_editable_install_is_visible_to_type_checkers(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """After ``pip install -e .``, mypy run from another directory resolves ``import ergo``
    to this source through the install's .pth file (not an import hook it cannot see)."""
    probe = tmp_path / "probe.py"
    probe.write_text("from ergo import PID, Future\n\n\ndef pid() -> int:\n    return PID('a@b', 1)\n")
    done = _mypy("--strict", "-v", "--cache-dir", str(_cache(request, "editable")), str(probe), cwd=tmp_path)
    out = done.stdout + done.stderr
    assert 'Incompatible return value type (got "PID", expected "int")' in done.stdout, out
    assert str(ROOT / "ergo" / "__init__.py") in done.stderr, "mypy did not read ergo from this checkout"


def test_the_public_names_are_exported_statically() -> None:
    """``ergo.__all__`` is written so type checkers see every export: it must still list
    every error class and message (errors.__all__ is written out, not computed)."""
    assert set(errors.ERRORS) <= set(errors.__all__)
    assert set(errors.__all__) | set(messages.__all__) <= set(ergo.__all__)
    assert all(hasattr(ergo, name) for name in ergo.__all__)

"""The examples of docs/applications.md, run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parent.parent / "docs" / "applications.md"


def recipe(name: str) -> dict[str, Any]:
    """Run the code block that follows ``<!-- recipe: name -->`` in the doc."""
    match = re.search(rf"<!-- recipe: {name} -->\s*```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"docs/applications.md has no recipe {name!r}"
    ns: dict[str, Any] = {"__name__": f"recipe_{name}"}
    exec(compile(match.group(1), f"{DOC}:{name}", "exec"), ns)
    return ns


def test_the_application_example_runs_as_its_comments_say(capsys):
    ns = recipe("application")
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["web started transient", "['db', 'web']", "('stored', 'x', 4)"]
    assert out[3:6] == ["web stopped: shutdown", "web started transient", "web stopped: shutdown"]
    assert not ns["node"].is_alive()


def test_the_pool_example_runs():
    ns = recipe("pool")
    assert len(ns["answers"]) == 16

"""The examples of docs/simulation.md that tell a whole story, run as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "simulation.md"


def test_the_partition_example_runs_as_written_and_both_sides_declare_the_other_down():
    match = re.search(r"<!-- recipe: partition -->\s*```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, "docs/simulation.md has no recipe 'partition'"
    namespace: dict = {}
    exec(compile(match.group(1), "docs/simulation.md (partition)", "exec"), namespace)  # its asserts hold
    s, a, b = namespace["s"], namespace["a"], namespace["b"]
    assert s.now >= 10
    a.wait_for(a.network().get_node("b@host2"))  # repaired: the next dial connects again
    s.run_until(lambda: b.network().nodes() == ["a@host1"], timeout=1)

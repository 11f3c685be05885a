"""The first example of docs/network.md, run as written in a plain script of its own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "network.md"
# the example's host is 127.0.0.1; here it gets a loopback address no other test uses, so
# its registrar (port 4499) and acceptors (11144 on) cannot meet another run's
HOST = "127.0.0.61"


def test_two_nodes_started_in_a_plain_script_find_each_other_and_answer_a_call(tmp_path):
    match = re.search(r"<!-- recipe: two-nodes -->\s*```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, "docs/network.md has no recipe 'two-nodes'"
    code = match.group(1).replace("127.0.0.1", HOST)
    last = 'a.call(ergo.ProcessID("counter", "b@%s"), "incr")   # -> 1' % HOST
    assert code.rstrip().endswith(last)
    script = tmp_path / "two_nodes.py"
    script.write_text(code.rstrip()[: -len(last)] + f"print('answer', {last.split('   #')[0]})\na.stop()\nb.stop()\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "answer 1" in proc.stdout

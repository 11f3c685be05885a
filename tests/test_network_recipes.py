"""The first examples of docs/network.md, run as written: on asyncio in a plain script of its
own, and on simulated hosts."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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


def test_the_same_two_nodes_on_simulated_hosts():
    """The simulated block reuses the first one's imports and Counter, as its text says."""
    text = DOC.read_text()
    first = re.search(r"<!-- recipe: two-nodes -->\s*```python\n(.*?)```", text, re.S)
    second = re.search(r"<!-- recipe: two-nodes-sim -->\s*```python\n(.*?)```", text, re.S)
    assert first and second, "docs/network.md lacks the recipes 'two-nodes' and 'two-nodes-sim'"
    prelude = first.group(1).split("\na = net.start_node")[0]  # imports and the Counter class
    namespace: dict = {}
    exec(compile(prelude + "\n" + second.group(1), "docs/network.md (two-nodes-sim)", "exec"), namespace)
    a, s = namespace["a"], namespace["s"]
    assert "# -> 1, at virtual time 0.01 (s.now)" in second.group(1)
    assert s.now == pytest.approx(0.01)  # as the comment says
    # the block's last line made the first call (its answer is not kept): the next one is 2
    assert a.call(namespace["ergo"].ProcessID("counter", "b@host2"), "incr") == 2
    assert a.network().nodes() == ["b@host2"]


def test_the_tls_recipe_connects_two_nodes_over_tls_with_certificates_made_for_its_host(tmp_path):
    """The TLS block, run as written after the first block (its imports and Counter), with
    node.pem, node.key and ca.pem made by trustme for the host; the call crosses a TLS
    stream, and a node with no client context is refused saying so."""
    trustme = pytest.importorskip("trustme")
    text = DOC.read_text()
    first = re.search(r"<!-- recipe: two-nodes -->\s*```python\n(.*?)```", text, re.S)
    tls = re.search(r"<!-- recipe: tls -->\s*```python\n(.*?)```", text, re.S)
    assert first and tls, "docs/network.md lacks the recipes 'two-nodes' and 'tls'"
    prelude = first.group(1).split("\na = net.start_node")[0]
    host = "127.0.0.63"
    ca = trustme.CA()
    cert = ca.issue_cert(host)
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "node.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "node.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    code = tls.group(1).replace("127.0.0.1", host)
    script = tmp_path / "tls.py"
    script.write_text(prelude + "\n" + code + textwrap.dedent(f"""
        print("answer", c.call(ergo.ProcessID("counter", "d@{host}"), "incr"))
        print("tls", all(link.stream.tls for link in c.network()._connections["d@{host}"].links))
        plain = net.start_node("p@{host}", NodeOptions(network=NetworkOptions(cookie="s3cret")))
        try:
            plain.call(ergo.ProcessID("counter", "d@{host}"), "incr")
        except ergo.NoConnection as e:
            print("plain", e)
        for n in (c, d, plain):
            n.stop()
        """))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "answer 2" in proc.stdout  # the block's own call was the first
    assert "tls True" in proc.stdout
    assert f"plain d@{host} accepts TLS only and NetworkOptions.ssl (a client SSLContext) is not set" in proc.stdout

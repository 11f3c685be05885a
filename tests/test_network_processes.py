"""Nodes in separate OS processes on loopback: what only real processes can show.

Each node runs ``tests/node_process.py`` in a Python process of its own and is driven over
stdin/stdout lines (``NodeProcess``).  Every simulated "host" is a loopback address of its
own (127.0.0.41 and up, used by no other test), so each host has its own registrar, and
the registrar port is a free port chosen per test, not 4499, so that concurrent runs (and
a registrar a developer has running) never meet.  Heartbeats are short (0.2 s, declared
down after 1 s of silence).

Nothing here sleeps to wait: a test reads the lines a node writes until the one it waits
for comes; the time bound on that read (``GUARD``) only makes a broken run fail instead of
hang, and no assertion is about how fast something happened.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "node_process.py"
COOKIE = "processes-test"
HEARTBEAT = (0.2, 1.0)  # interval, timeout (seconds)
#: seconds a read waits for a line before the test fails (a hang guard, never a pass condition)
GUARD = 15.0


class Failed(Exception):
    """A command that failed in the node process: ``kind`` is the error's class name there."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(f"{kind}: {text}")
        self.kind, self.text = kind, text


class NodeProcess:
    """A node in a child process: commands go in as lines, answers and events come out."""

    def __init__(self, name: str, registrar_port: int, stderr: IO[str]) -> None:
        self.name = name
        config = {"name": name, "cookie": COOKIE, "registrar_port": registrar_port, "heartbeat": HEARTBEAT}
        self._stderr = stderr
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), json.dumps(config)], cwd=ROOT, text=True, bufsize=1,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        #: lines read while waiting for another one, kept for a later ``expect``
        self.backlog: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self.ready: dict[str, Any] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(json.loads(line))
        self._lines.put(None)

    def _why(self, what: str) -> str:
        self._stderr.flush()
        with open(self._stderr.name) as f:
            err = f.read()[-3000:]
        return f"{self.name}: {what}; it said {self.backlog[-20:]}; its stderr: {err or '(nothing)'}"

    def expect(self, match: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first line (seen before or still to come) that ``match``es: taken from the backlog."""
        for i, line in enumerate(self.backlog):
            if match(line):
                return self.backlog.pop(i)
        deadline = time.monotonic() + GUARD
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(self._why(f"no {what} within {GUARD} s")) from None
            if line is None:
                self._lines.put(None)  # stays at the end for the next reader
                raise AssertionError(self._why(f"exited (code {self.proc.wait()}) before {what}"))
            if match(line):
                return line
            self.backlog.append(line)

    def wait_ready(self) -> NodeProcess:
        self.ready = self.expect(lambda line: "ready" in line, "ready line")
        return self

    def do(self, verb: str, *args: Any) -> Any:
        """Run a command in the node and return its answer (``Failed`` if it failed there)."""
        n = next(self._ids)
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": n, "do": verb, "args": args}) + "\n")
        self.proc.stdin.flush()
        line = self.expect(lambda line: line.get("id") == n, f"answer to {verb}{args}")
        if "error" in line:
            raise Failed(*line["error"])
        return line["ok"]

    def event(self, tag: str) -> list[Any]:
        """The next event of the watcher tagged ``tag``: [tag, message type, target, reason type, reason]."""
        event: list[Any] = self.expect(lambda line: line.get("event", [None])[0] == tag, f"event {tag}")["event"]
        return event

    def log(self, text: str) -> str:
        line: str = self.expect(lambda line: text in line.get("log", ("", ""))[1], f"log line {text!r}")["log"][1]
        return line

    def kill(self) -> None:
        """``kill -9``: the process ends at once, the OS closes its sockets."""
        self.proc.kill()
        self.proc.wait()

    def freeze(self) -> None:
        """``kill -STOP``: the process stops running; its sockets stay open and silent."""
        self.proc.send_signal(signal.SIGSTOP)

    def stop(self) -> int:
        """Close its stdin (the node stops gracefully) and return the exit code."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            return self.proc.wait(timeout=GUARD)
        except subprocess.TimeoutExpired:
            raise AssertionError(self._why("did not stop gracefully")) from None


def free_port(*hosts: str) -> int:
    """A port free for TCP and UDP on every one of ``hosts`` now: this test's registrar port."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        try:
            for host in hosts:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind((host, port))
        except OSError:
            continue
        return port
    raise AssertionError("no port free on all of " + ", ".join(hosts))


class Cluster:
    """Starts node processes sharing one registrar port; all are gone after the test."""

    def __init__(self, tmp: Path, *hosts: str) -> None:
        self.tmp = tmp
        self.port = free_port(*hosts)
        self.nodes: list[NodeProcess] = []

    def start(self, *names: str) -> list[NodeProcess]:
        """Start nodes at once (their processes start in parallel) and wait until all are ready."""
        started = [NodeProcess(name, self.port, open(self.tmp / f"{name}.stderr", "w")) for name in names]
        self.nodes += started
        return [n.wait_ready() for n in started]

    def close(self) -> None:
        for n in self.nodes:
            if n.proc.poll() is None:
                n.proc.kill()
            n.proc.wait()
            n._reader.join(GUARD)  # it has read to the end: its pipe can be closed under it
            for pipe in (n.proc.stdin, n.proc.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except BrokenPipeError:
                        pass
            n._stderr.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """``cluster(*hosts)``: a ``Cluster`` whose registrar port is free on every one of ``hosts``."""
    made: list[Cluster] = []

    def make(*hosts: str) -> Cluster:
        c = Cluster(tmp_path, *hosts)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_a_call_crosses_processes_to_a_node_found_through_its_hosts_registrar(cluster):
    c = cluster("127.0.0.41", "127.0.0.42")
    a, b = c.start("a@127.0.0.41", "b@127.0.0.42")
    assert a.ready["registrar"] == b.ready["registrar"] == "server"  # each host has a registrar of its own
    b.do("counter", "counter")
    # a has no route to b: it asks the registrar of 127.0.0.42 (b serves it), then dials b
    assert a.do("call", "b@127.0.0.42", "counter", "incr") == 1
    assert a.do("call", "b@127.0.0.42", "counter", "incr") == 2
    with pytest.raises(Failed) as missing:  # b answers at once, the call does not wait for its timeout
        a.do("call", "b@127.0.0.42", "nobody", "incr")
    assert missing.value.kind == "ProcessUnknown" and "nobody" in missing.value.text
    a.log("network: connected to b@127.0.0.42")


def test_a_graceful_stop_exits_0_and_its_peers_are_told_the_node_is_down(cluster):
    c = cluster("127.0.0.41", "127.0.0.42")
    a, b = c.start("a@127.0.0.41", "b@127.0.0.42")
    b.do("counter", "counter")
    a.do("watch", "node", "monitor", "b@127.0.0.42")
    a.do("watch", "counter", "monitor", "b@127.0.0.42", "counter")
    assert b.stop() == 0  # its stdin closed: the node stops gracefully and the process ends
    assert a.event("node")[1:3] == ["MessageDownNode", "b@127.0.0.42"]
    # its processes stopped before its connections closed: a hears the real reason
    down = a.event("counter")
    assert down[1] == "MessageDownPID" and down[3:] == ["TerminateReason", "shutdown"]
    assert a.do("nodes") == []


def test_kill_9_of_a_nodes_process_fires_its_peers_links_and_monitors_with_noconnection(cluster):
    c = cluster("127.0.0.41", "127.0.0.42", "127.0.0.43")
    a, victim, other = c.start("a@127.0.0.41", "v@127.0.0.42", "c@127.0.0.43")
    victim.do("counter", "worker")
    by_pid = a.do("watch", "link", "link", "v@127.0.0.42", "worker")
    by_name = a.do("watch", "monitor", "monitor", "v@127.0.0.42", "worker", "name")
    a.do("watch", "node", "monitor", "v@127.0.0.42")
    assert other.do("watch", "monitor", "monitor", "v@127.0.0.42", "worker") == by_pid
    victim.kill()  # SIGKILL: no goodbye; the OS closes its sockets
    assert a.event("link")[1:4] == ["MessageExitPID", by_pid, "NoConnection"]
    assert a.event("monitor")[1:4] == ["MessageDownProcessID", by_name, "NoConnection"]
    assert a.event("node")[1:3] == ["MessageDownNode", "v@127.0.0.42"]
    assert other.event("monitor")[1:4] == ["MessageDownPID", by_pid, "NoConnection"]
    a.log("network: disconnected from v@127.0.0.42")


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP to freeze a process")
def test_a_frozen_node_is_declared_down_by_heartbeats_while_tcp_says_nothing(cluster):
    c = cluster("127.0.0.44", "127.0.0.45")
    a, frozen = c.start("a@127.0.0.44", "f@127.0.0.45")
    frozen.do("counter", "worker")
    worker = a.do("watch", "monitor", "monitor", "f@127.0.0.45", "worker")
    a.do("watch", "node", "monitor", "f@127.0.0.45")
    frozen.freeze()  # its sockets stay open, it just never answers again
    try:
        event = a.event("monitor")
        assert event[1:4] == ["MessageDownPID", worker, "NoConnection"]
        assert "NetworkOptions.heartbeat_timeout" in event[4]  # the heartbeat noticed, not TCP
        assert a.event("node")[1:3] == ["MessageDownNode", "f@127.0.0.45"]
    finally:
        frozen.kill()  # SIGKILL ends a stopped process too


def test_killing_the_registrars_process_the_survivor_serves_and_a_new_node_is_resolved(cluster):
    host = "127.0.0.46"
    c = cluster(host, "127.0.0.47")
    (first,) = c.start(f"r@{host}")
    assert first.ready["registrar"] == "server"  # the first node of the host serves its registrar
    survivor, remote = c.start(f"s@{host}", "c@127.0.0.47")
    assert survivor.ready["registrar"] == "client"
    survivor.do("counter", "counter")
    assert remote.do("call", f"s@{host}", "counter", "incr") == 1
    first.kill()
    survivor.log(f"registrar: serving the nodes of {host}")  # it won the port
    survivor.log(f"registrar: s@{host} is registered again")
    (newcomer,) = c.start(f"n@{host}")
    assert newcomer.ready["registrar"] == "client"  # it registered with the survivor's registrar
    newcomer.do("counter", "counter")
    # remote has never talked to n: resolving n asks the host's registrar, served by s now
    assert remote.do("call", f"n@{host}", "counter", "incr") == 1
    assert survivor.do("registrar") == "server"
    with pytest.raises(Failed) as gone:  # the killed node's name went with its registrar
        remote.do("call", f"r@{host}", "counter", "incr")
    assert gone.value.kind == "NoRoute", gone.value.text

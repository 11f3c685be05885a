"""Clusters of networked nodes on the two transports, for one behavioural suite over both.

``SimCluster`` runs nodes on simulated hosts (``n1@host1``, ``n2@host2``, ...), each with
its own simulated address; ``AsyncioCluster`` runs them on one asyncio loop over real
sockets on loopback, each listening on an ephemeral port.  Both connect nodes through
static routes unless a test asks for the registrar, and both wait for things with
``run_until(predicate)``: virtual time in simulation, turns of the loop on asyncio (a
bound on wall time only to fail a broken test instead of hanging it, never to pass one).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from support import Collector, ListLogger

import ergo
import net
import sim
from ergo import LogOptions, NetworkOptions, NodeOptions
from ergo.gen.options import AcceptorOptions
from ergo.network import NetworkRoute

COOKIE = "test-cookie"

try:
    import uvloop  # noqa: F401
    HAVE_UVLOOP = True
except ImportError:  # not installed (or not on this platform): the uvloop cases are skipped
    HAVE_UVLOOP = False

#: the transports a network test runs over; uvloop's only where it is installed
TRANSPORTS = ["sim", "asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(not HAVE_UVLOOP,
                                                                                reason="uvloop is not installed"))]


def tls_contexts(*names: str) -> tuple[Any, Any]:
    """A server and a client ``ssl.SSLContext`` for the host ``names`` (127.0.0.1 by
    default), of a certificate authority made here (trustme: the test is skipped without it)."""
    import ssl

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*(names or ("127.0.0.1",))).configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    return server, client


def make_cluster(kind: str) -> Cluster:
    if kind == "sim":
        return SimCluster()
    return AsyncioCluster(uvloop=kind == "uvloop")


def options(**network: Any) -> NodeOptions:
    network.setdefault("cookie", COOKIE)
    network.setdefault("registrar_port", None)
    return NodeOptions(log=LogOptions(default_logger=False), network=NetworkOptions(**network))


class Cluster:
    name: str
    nodes: list[ergo.Node]

    def _captured(self, node: ergo.Node) -> ergo.Node:
        node.captured = ListLogger()  # type: ignore[attr-defined]
        node.logger_add("captured", node.captured)  # type: ignore[attr-defined]
        self.nodes.append(node)
        return node

    def route_all(self) -> None:
        """Static routes from every node to every other."""
        for a in self.nodes:
            for b in self.nodes:
                if a is not b and a.is_alive() and b.is_alive():
                    self.route(a, b)

    def route(self, a: ergo.Node, b: ergo.Node) -> None:
        host, port = b.network()._listeners[0].address
        name = str.__str__(b.name)
        net_ = a.network()
        if any(m == f"^{name}$" for m, _, _ in net_.routes()):
            net_.remove_route(f"^{name}$")
        net_.add_route(f"^{name}$", NetworkRoute(host, port))

    def cluster(self, n: int, **network: Any) -> list[ergo.Node]:
        nodes = [self.start(i, **network) for i in range(1, n + 1)]
        self.route_all()
        return nodes

    def start(self, i: int, **network: Any) -> ergo.Node:
        raise NotImplementedError

    def run_until(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        raise NotImplementedError

    def run_for(self, seconds: float) -> None:
        raise NotImplementedError

    def close(self) -> None:
        for n in self.nodes:
            if n.is_alive():
                n.stop_force()


class SimCluster(Cluster):
    name = "sim"

    def __init__(self, seed: int = 1) -> None:
        self.sim = sim.Sim(seed)
        self.nodes = []

    def start(self, i: int, **network: Any) -> ergo.Node:
        network.setdefault("acceptors", (AcceptorOptions(port=11144),))
        return self._captured(self.sim.start_node(f"n{i}@host{i}", options(**network)))

    def run_until(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        self.sim.run_until(predicate, timeout)

    def run_for(self, seconds: float) -> None:
        self.sim.run_for(seconds)

    @property
    def now(self) -> float:
        return self.sim.now

    def slow_pair(self, max_buffer: int) -> tuple[ergo.Node, ergo.Node, ergo.PID]:
        """n1 and n2 with 0.2 s of latency between their hosts, n1's flow limits at
        512/256 KiB and ``max_buffer``, a window of 64 KiB (a stream drains by this much
        per round trip), and a Collector on n2: (n1, n2, the collector)."""
        from ergo.transport import FlowLimits

        a, b = self.cluster(2)
        self.sim.set_latency("host1", "host2", 0.2)
        a.network().transport.limits = FlowLimits(high=512 * 1024, low=256 * 1024, max_buffer=max_buffer)
        a.network().transport.window = 64 * 1024
        return a, b, b.spawn(Collector)

    def paused_link(self, max_buffer: int) -> tuple[ergo.Node, ergo.Node, ergo.PID, Any, list[bytes]]:
        """``slow_pair``, connected, then 600 kB sent to the collector (past the high-water
        mark in one turn: the stream pauses the link) and nine chunks of 100 kB that the
        link holds: (n1, n2, the collector, the paused link, the ten chunks sent)."""
        a, b, sink = self.slow_pair(max_buffer)
        a.send(sink, "hello")  # connected first: what is held on a pause is the point
        self.run_until(lambda: len(b._processes[sink.id].got) == 1)
        sent = [b"x" * 600_000] + [bytes([i]) * 100_000 for i in range(9)]
        a.send(sink, sent[0])
        self.run_for(0.001)
        link = next(link for link in a.network()._connections["n2@host2"].links if link.paused)
        for chunk in sent[1:]:
            a.send(sink, chunk)
        self.run_for(0.001)
        assert link.paused and link._held_bytes > 0
        return a, b, sink, link, sent


class AsyncioCluster(Cluster):
    name = "asyncio"

    def __init__(self, uvloop: bool = False) -> None:
        if uvloop:
            import uvloop as uv

            self.loop = uv.new_event_loop()
            self.name = "uvloop"
        else:
            self.loop = asyncio.new_event_loop()
        self.nodes = []

    def start(self, i: int, **network: Any) -> ergo.Node:
        network.setdefault("acceptors", (AcceptorOptions(port=0),))

        async def start() -> ergo.Node:
            return net.start_node(f"n{i}@127.0.0.1", options(**network), handle_signals=False)

        return self._captured(self.loop.run_until_complete(start()))

    def run_until(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        async def wait() -> None:
            deadline = time.monotonic() + timeout  # only so that a broken test fails instead of hanging
            while not predicate():
                if time.monotonic() > deadline:
                    raise AssertionError("the condition did not come true")
                await asyncio.sleep(0)

        self.loop.run_until_complete(wait())

    def run_for(self, seconds: float) -> None:
        self.loop.run_until_complete(asyncio.sleep(seconds))

    @property
    def now(self) -> float:
        return self.loop.time()

    def close(self) -> None:
        super().close()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()
        asyncio.set_event_loop(None)


def hold_a_call(cluster: Cluster, a: ergo.Node, name: Any) -> ergo.PID:
    """A process of ``a`` calls ``name`` (a ProcessID that holds its calls: it never answers)
    from an async handler; returns a Collector that gets the name of the error the call
    ends with.  Returns once the call is held there."""
    from support import Collector

    report = a.spawn(Collector)

    class Hold(ergo.Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            try:
                await self.call(name, "later", timeout=60)
            except Exception as e:
                self.send(report, type(e).__name__)

    held = len(_holder(cluster, name).held)
    a.send(a.spawn(Hold), "go")
    cluster.run_until(lambda: len(_holder(cluster, name).held) > held)
    return report


def _holder(cluster: Cluster, name: Any) -> Any:
    node = next(n for n in cluster.nodes if n.name == name.node)
    return node._names[name.name]


class Counter(ergo.Actor):
    """Answers every call with how many calls it has had."""

    def init(self) -> None:
        self.n = 0

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        self.n += 1
        return self.n

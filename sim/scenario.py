"""Helpers for scenario files (``scenarios/*.py``, run by ``python -m sim run``).

A scenario is a module with a function ``scenario(s: sim.Sim) -> None`` (see
docs/simulation.md, "Scenarios and the runner"): it builds its cluster on ``s``, runs its
workload, draws its faults from the seed, checks safety during the run and liveness after
a quiet phase, and raises ``AssertionError`` saying what went wrong.  These helpers build
the usual cluster: nodes ``n1@host1`` ... each on a host of its own, one acceptor on
:data:`PORT`, static routes between all of them (no registrar unless asked).
"""

from __future__ import annotations

from typing import Any, TypeVar

from ergo.gen.ids import PID
from ergo.gen.options import AcceptorOptions, LogOptions, NetworkOptions, NodeOptions
from ergo.network import NetworkRoute
from ergo.node.node import Node
from ergo.node.process import Process

from .sim import Sim

__all__ = ["PORT", "cluster", "node_options", "process", "route", "route_all"]

P = TypeVar("P", bound=Process)

#: the port every scenario node listens on (each host has its own ports)
PORT = 11144


def node_options(**network: Any) -> NodeOptions:
    """Options of a networked scenario node: default logger off, cookie ``"scenario"``, no
    registrar, an acceptor on :data:`PORT`; ``network`` overrides any ``NetworkOptions`` field."""
    network.setdefault("cookie", "scenario")
    network.setdefault("registrar_port", None)
    network.setdefault("acceptors", (AcceptorOptions(port=PORT),))
    return NodeOptions(log=LogOptions(default_logger=False), network=NetworkOptions(**network))


def route(a: Node, b: Node | str, port: int = PORT) -> None:
    """A static route on ``a`` to node ``b`` (a node or its name; at its host, on ``port``),
    replacing one there was."""
    name = b if isinstance(b, str) else str.__str__(b.name)
    net = a.network()
    if any(m == f"^{name}$" for m, _, _ in net.routes()):
        net.remove_route(f"^{name}$")
    net.add_route(f"^{name}$", NetworkRoute(name.split("@", 1)[1], port))


def route_all(nodes: list[Node]) -> None:
    """Static routes from every live node of ``nodes`` to every other."""
    for a in nodes:
        for b in nodes:
            if a is not b and a.is_alive() and b.is_alive():
                route(a, b)


def cluster(s: Sim, n: int, **network: Any) -> list[Node]:
    """Start ``n1@host1`` ... ``nN@hostN`` on ``s`` with :func:`node_options` and route them
    to each other."""
    nodes = [s.start_node(f"n{i}@host{i}", node_options(**network)) for i in range(1, n + 1)]
    route_all(nodes)
    return nodes


def process(node: Node, pid: PID, cls: type[P]) -> P:
    """The process object of ``pid`` on ``node``, to read what it kept in place (no call, no
    clock); it must be a ``cls``.  Kept after the process ends only by whoever holds it: a
    scenario that checks a process after a crash takes it right after spawning it."""
    p = node._processes.get(pid.id)
    if not isinstance(p, cls):
        raise AssertionError(f"{pid} is not a running {cls.__qualname__} on {node.name} (it is {type(p).__name__})")
    return p

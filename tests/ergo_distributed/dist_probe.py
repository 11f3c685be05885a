"""Helpers for the port of Ergo's distributed integration suite (``testing/tests/002_distributed``).

Ergo's cases run their checks inside a process on node1 that talks to node2 (its
``HandleMessage`` dispatches to a test method by name and reports on a channel).  Here, as
in ``tests/ergo_local``, a :class:`Probe` on node1 runs the function a (local) call
carries inside itself, so a test writes the process's side as a plain or ``async``
function and asserts on what it returns; what a process hears goes into a journal.

The two nodes are the ``cluster`` fixture's (``conftest.py``): simulated hosts, or real
sockets on loopback, joined by static routes; node1 and node2 keep Ergo's max message
sizes (567 and 765 bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from types import CoroutineType
from typing import Any

import ergo
from ergo import PID, Actor, Atom


class Failed:
    """What ``run`` gets back when the function raised: the exception, as a value."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Probe(Actor):
    """Runs ``fn(self)`` for a call ``fn`` (awaiting it if it is a coroutine); keeps what it
    hears (messages, events, its own end) in ``journal``."""

    def init(self, journal: list | None = None, trap: bool = False) -> None:
        self.journal = journal if journal is not None else []
        self.trap_exit = trap

    async def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
        try:
            result = request(self)
            if type(result) is CoroutineType:
                result = await result
            return ("ok", result)
        except Exception as e:
            return ("error", Failed(e))

    def handle_message(self, from_: PID, message: Any) -> None:
        self.journal.append(("message", self.pid, from_, message))

    def handle_event(self, message: ergo.MessageEvent) -> None:
        self.journal.append(("event", self.pid, message))

    def terminate(self, reason: BaseException) -> None:
        self.journal.append(("terminate", self.pid, reason))


def run(node: ergo.Node, pid: PID, fn: Callable[[Any], Any]) -> Any:
    """``fn(process)`` run inside ``pid``; re-raises what it raised."""
    status, value = node.call(pid, fn)
    if isinstance(value, Failed):
        raise value.error
    return value


def messages(journal: list, pid: PID) -> list[Any]:
    return [e[3] for e in journal if e[0] == "message" and e[1] == pid]


def events(journal: list, pid: PID) -> list[ergo.MessageEvent]:
    return [e[2] for e in journal if e[0] == "event" and e[1] == pid]


def ends(journal: list, pid: PID) -> list[BaseException]:
    return [e[2] for e in journal if e[0] == "terminate" and e[1] == pid]


def remote(node: ergo.Node, name: Atom) -> Any:
    """Ergo's ``node.Network().GetNode(name)``: the peer, connected if it was not (outside a handler)."""
    return node.wait_for(node.network().connect(name))


def connected(node: ergo.Node, name: Atom) -> Any:
    """Ergo's ``node.Network().Node(name)``: the peer ``node`` is connected to (no dial)."""
    return node.network().node(name)


def remote_spawn(p: Any, node: Atom, name: str, *args: Any, register: str | None = None) -> Any:
    """Ergo's ``process.RemoteSpawn`` / ``RemoteSpawnRegister`` from inside a handler: a
    Future of the new PID (``await`` it).  The connection must be up (as Ergo's
    ``RemoteSpawn`` dials first, these cases connect beforehand)."""
    peer = connected(p.node, node)
    if register is None:
        return peer.spawn(name, *args)
    return peer.spawn_register(register, name, *args)

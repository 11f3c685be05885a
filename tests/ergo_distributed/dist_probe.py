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

from typing import Any

from probe import Failed, Probe, ends, events, messages, run  # noqa: F401  (the suite imports them from here)

import ergo
from ergo import Atom


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

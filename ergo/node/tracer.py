"""What a backend may watch: the protocol of a node's tracer (``sim.trace.Trace`` is one).

A backend that wants to record what happens on its nodes hands each node a tracer
(``Node(..., tracer=...)``); the core calls it at the few places where something a person
would draw happens: a process is spawned or terminates, something lands in a mailbox (a
message, a call, an event, an exit or down signal), a call is answered or times out, a
connection to another node comes up or goes down, the node starts or stops.  With no
tracer (the default, and always on the asyncio backend) each of those places costs one
``is None`` test and nothing else.

The core never imports a tracer's module and never reads anything back from it: a tracer
only watches.  It must not raise, and must not send, spawn or schedule anything itself,
or the run it records would no longer be the run without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..gen.ids import PID, Atom, Ref
    from .node import Node
    from .runner import Runner

__all__ = ["Tracer"]


class Tracer(Protocol):
    def node_started(self, node: Node) -> None:
        """``node`` exists (its name and creation are set; nothing has run on it yet)."""

    def node_stopped(self, node: Node) -> None:
        """``node`` has stopped: every process of it is gone."""

    def spawned(self, node: Node, runner: Runner, parent: Any) -> None:
        """A process (or a meta-process; ``parent`` is then its owner's PID) was made,
        before its ``init`` runs."""

    def delivered(self, runner: Runner, queue: int, item: tuple[Any, ...]) -> None:
        """``item`` (``(kind, from, ref, message[, target])``, see ``runner.py``) was put in
        queue ``queue`` of ``runner``'s mailbox."""

    def replied(self, node: Node, to: PID, ref: Ref, value: Any, error: BaseException | None) -> None:
        """The call ``ref`` made by ``to`` (a local caller) got its answer."""

    def call_expired(self, node: Node, caller: PID, ref: Ref, timeout: float) -> None:
        """The call ``ref`` made by ``caller`` got no answer in time."""

    def terminated(self, node: Node, runner: Runner, reason: BaseException) -> None:
        """A process (or meta-process) terminated with ``reason``; its watchers are told next."""

    def connected(self, node: Node, peer: Atom, creation: int, dialed: bool) -> None:
        """The connection from ``node`` to ``peer`` came up (``dialed``: ``node`` dialed it)."""

    def disconnected(self, node: Node, peer: Atom, error: BaseException, was_up: bool) -> None:
        """The connection to ``peer`` went down (``was_up``), or a dial to it failed."""

"""What the two property-test machines' processes share (``sim.testing.Recorder`` and
``sim.testing_cluster.Peer``): a process that writes down what it hears, does what a call
tells it to, and stops as a message tells it to.  In a module of its own because
``sim.testing`` re-exports ``sim.testing_cluster``, which cannot import it back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from ergo import PID, Actor, ErgoError

__all__ = ["PANIC", "JournalingProcess"]

#: tell such a process ``("stop", PANIC)`` and it raises a plain exception: a panic
PANIC = "panic"


class JournalingProcess(Actor):
    """``handle_message`` writes a message down in ``self.journal.heard[self.pid]``, or for
    ``("stop", reason)`` raises ``reason`` (a plain exception for :data:`PANIC`); a call
    ``(op, *args)`` runs ``OPS[op](self, *args)`` and replies ``("ok", result)`` or
    ``("error", exception)``.  A subclass sets ``OPS`` and ``self.journal``."""

    OPS: ClassVar[dict[str, Callable[..., Any]]] = {}
    journal: Any

    def handle_message(self, from_: PID, message: Any) -> None:
        if type(message) is tuple and len(message) == 2 and message[0] == "stop":
            if message[1] == PANIC:
                raise RuntimeError("told to panic")
            raise message[1]
        self.journal.heard[self.pid].append(message)

    def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
        op, *args = request
        try:
            return ("ok", self.OPS[op](self, *args))
        except ErgoError as e:
            return ("error", e)

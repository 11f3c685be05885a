"""The probe of the ported Ergo suites (``tests/ergo_local``, ``tests/ergo_distributed``).

Ergo's cases run their checks inside a process (its ``HandleMessage`` dispatches to a test
method by name and reports on a channel).  Here a :class:`Probe` runs the function a call
carries inside itself, so a test writes the process's side as a plain (or ``async``)
function and asserts on what it returns; what a process hears or dies of goes into a
journal.
"""

from __future__ import annotations

from collections.abc import Callable
from types import CoroutineType
from typing import Any

import ergo
from ergo import PID, Actor

__all__ = ["Failed", "Probe", "ends", "events", "messages", "run"]


class Failed:
    """What ``run`` gets back when the function raised: the exception, as a value."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Probe(Actor):
    """Runs ``fn(self)`` for a call ``fn``; keeps messages and its end in ``journal``.

    ``init(journal, trap=False, react=None)``: ``react(self, from_, message)``, when given,
    handles each message after it is journaled (a target that panics, unregisters, ...).
    """

    def init(self, journal: list | None = None, trap: bool = False,
             react: Callable[[Any, PID, Any], Any] | None = None) -> None:
        self.journal = journal if journal is not None else []
        self.trap_exit = trap
        self.react = react

    async def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
        try:
            result = request(self)
            if type(result) is CoroutineType:
                result = await result
            return ("ok", result)
        except Exception as e:
            return ("error", Failed(e))

    def handle_message(self, from_: PID, message: Any) -> Any:
        self.journal.append(("message", self.pid, from_, message))
        if self.react is not None:
            return self.react(self, from_, message)
        return None

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

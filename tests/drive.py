"""A process the test drives from outside: ``act(node, driver, fn)`` runs ``fn(process)``
inside the driver's own handler and returns what it returned (or the error it raised).

Running the steps of a scenario inside one handler makes them atomic: no other process
handles anything until the handler returns, on either backend, so a test can fill a
mailbox, or send a message and an exit back to back, and look at the result before the
receiver runs, without depending on timing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ergo
from ergo import PID, Actor


class Driver(Actor):
    """Runs the functions it is called with; records its messages and what it died of."""

    def init(self, journal: list | None = None, trap: bool = False) -> None:
        self.journal = journal if journal is not None else []
        self.trap_exit = trap

    def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
        try:
            return ("ok", request(self))
        except Exception as e:  # the test looks at the error itself
            return ("error", e)

    def handle_message(self, from_: PID, message: Any) -> None:
        self.journal.append(message)

    def handle_event(self, message: Any) -> None:
        self.journal.append(message)

    def terminate(self, reason: BaseException) -> None:
        self.journal.append(("terminate", reason))


def act(node: ergo.Node, pid: PID, fn: Callable[[Any], Any]) -> Any:
    """``fn(process)`` run inside ``pid``'s handler; its result, or raise what it raised."""
    status, value = node.call(pid, fn)
    if status == "error":
        raise value
    return value

"""Helpers for the port of Ergo's local integration suite (``testing/tests/001_local``).

Ergo's cases run their checks inside a process (its ``HandleMessage`` dispatches to a
test method by name and reports on a channel).  Here a :class:`Probe` runs the function a
call carries inside itself, so a test writes the process's side as a plain (or ``async``)
function and asserts on what it returns; what a process hears or dies of goes into a
shared journal, read once the backend has settled.
"""

from __future__ import annotations

from typing import Any

from probe import Failed, Probe, ends, events, messages, run  # noqa: F401  (the suite imports them from here)

import ergo
from ergo import PID, Event, LogOptions, NodeOptions, ProcessID


def node_with_env(backend: Any, name: str, env: dict[str, Any]) -> ergo.Node:
    """A node started with ``NodeOptions(env=env)``, closed with the backend."""
    node = backend._start(name, NodeOptions(env=env, log=LogOptions(default_logger=False)))
    backend.nodes.append(node)
    return node


def target_react(p: Any, from_: PID, message: Any) -> None:
    """What the watched process of the t005/t006 cases does: panic, or drop what was watched."""
    if message == "custom panic":
        raise RuntimeError("custom panic")
    if isinstance(message, tuple) and message[0] == "unregister":
        kind, what = message[1], message[2]
        if kind == "process_id":
            p.unregister_name()
        elif kind == "alias":
            p.delete_alias(what)
        else:
            p.unregister_event(what.name)


def make_target(kind: str, p: Any, node: Any, prefix: str) -> Any:
    """A target of ``kind`` (pid, process_id, alias, event) for process ``p``: names start with ``prefix``."""
    if kind == "pid":
        return p.pid
    if kind == "process_id":
        p.register_name(f"{prefix}target")
        return ProcessID(f"{prefix}target", node.name)
    if kind == "alias":
        return p.create_alias()
    p.register_event(f"{prefix}event", buffer=10)
    return Event(f"{prefix}event", node.name)

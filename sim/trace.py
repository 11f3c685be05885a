"""The trace of a simulation: what happened, when, and where, as canonical JSON lines.

A :class:`Trace` is the tracer the simulated nodes are given (see ``ergo/node/tracer.py``):
every delivery into a mailbox, every exit and down signal, every spawn and termination
(with its reason), every call's answer or timeout, every connection that comes up or goes
down, every node that starts or stops, and every fault the simulation injects is one
event, stamped with the virtual time and the node it happened on.

Each event is a flat dict of JSON values; :meth:`Trace.lines` writes each as canonical
JSON (keys sorted, no spaces, ASCII only), and :meth:`Trace.hash` is the SHA-256 of those
lines, each ending in a newline: the hash of the file :meth:`Trace.write` writes.  Nothing
that goes into an event depends on the process it ran in: identifiers are written by
their node and number (never by ``id()``), messages by :func:`describe`, which orders
sets by their text and names an object it does not know by its class only (its own
``repr`` may show an address or a set's order).  So the same seed gives the same lines,
byte for byte, whatever ``PYTHONHASHSEED`` is (``sim.check_determinism`` checks it).

Tracing is off unless asked for (``Sim(seed, trace=True)`` or ``sim.trace.start()``):
recording a delivery costs more than the delivery (the message benchmark runs 2.5 times
slower traced), and with no tracer a node pays one ``is None`` test per delivery.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ergo.gen.errors import Incorrect, TerminateReason
from ergo.gen.ids import PID, Alias, Atom, Event, ProcessID, Ref
from ergo.gen.messages import (
    MessageDownAlias,
    MessageDownEvent,
    MessageDownNode,
    MessageDownPID,
    MessageDownProcessID,
)
from ergo.node.runner import EVENT, EXIT, INSPECT, LOG, MAIN, MSG, REQUEST, SYSTEM, URGENT

if TYPE_CHECKING:
    from ergo.node.node import Node
    from ergo.node.runner import Runner

    from .world import World

__all__ = ["Trace", "describe", "ident"]

_DOWNS = (MessageDownPID, MessageDownProcessID, MessageDownAlias, MessageDownEvent, MessageDownNode)
_WHAT = {MSG: "message", REQUEST: "call", EVENT: "event", EXIT: "exit", INSPECT: "inspect", LOG: "log"}
_QUEUE = {URGENT: "urgent", SYSTEM: "system", MAIN: "main", LOG: "log"}
#: the keys every event has; a fault's details may not use them
_RESERVED = frozenset({"t", "kind"})

#: an object's address in a default repr (``<Foo object at 0x7f...>``)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

#: how much of a value :func:`describe` writes out
_MAX_TEXT = 200
_MAX_STR = 60
_MAX_ITEMS = 8
_MAX_DEPTH = 4


def ident(value: Any) -> str:
    """An identifier as a trace writes it: ``node/1001`` for a PID, ``node/alias:5.0.0``,
    ``node/ref:7.0.0``, ``node/name:worker``, ``node/event:ticks``; a node's name as itself."""
    t = type(value)
    if t is PID:
        return f"{str.__str__(value.node)}/{value.id}"
    if t is Alias:
        return f"{str.__str__(value.node)}/alias:{'.'.join(map(str, value.id))}"
    if t is Ref:
        return f"{str.__str__(value.node)}/ref:{'.'.join(map(str, value.id))}"
    if t is ProcessID:
        return f"{str.__str__(value.node)}/name:{str.__str__(value.name)}"
    if t is Event:
        return f"{str.__str__(value.node)}/event:{str.__str__(value.name)}"
    if isinstance(value, str):
        return str.__str__(value)
    return describe(value)


def describe(value: Any, limit: int = _MAX_TEXT) -> str:
    """A short text of ``value`` that is the same in every process: what a trace shows of a
    message.  Plain values as ``repr`` writes them (long strings and big containers cut
    short), identifiers as :func:`ident` does, sets in the order of their items' text,
    dataclasses by their fields, exceptions by their arguments, anything else by its
    class's name alone."""
    out: list[str] = []
    _describe(value, out, 0)
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: Any, out: list[str], depth: int) -> None:
    t = type(value)
    if value is None or t is bool or t is float:
        out.append(repr(value))
    elif t is int:
        out.append(repr(value) if value.bit_length() <= 64 else f"<int of {value.bit_length()} bits>")
    elif t is str:
        out.append(repr(value[:_MAX_STR]) + ("..." if len(value) > _MAX_STR else ""))
    elif t is Atom:
        out.append(str(value))
    elif t in (PID, Alias, Ref, ProcessID, Event):
        out.append(ident(value))
    elif t is bytes or t is bytearray:
        out.append(repr(bytes(value[:_MAX_STR])) + ("..." if len(value) > _MAX_STR else ""))
    elif depth >= _MAX_DEPTH:
        out.append(f"<{t.__qualname__}>")
    elif t is tuple or t is list:
        open_, close = ("(", ")") if t is tuple else ("[", "]")
        _items(value, out, depth, open_, close, lambda v, o: _describe(v, o, depth + 1))
        if t is tuple and len(value) == 1:
            out.insert(len(out) - 1, ",")
    elif t is dict:
        def pair(kv: Any, o: list[str]) -> None:
            _describe(kv[0], o, depth + 1)
            o.append(": ")
            _describe(kv[1], o, depth + 1)

        _items(list(value.items()), out, depth, "{", "}", pair)
    elif t is set or t is frozenset:
        if len(value) > 4 * _MAX_ITEMS:  # too many to put in order cheaply: the size only
            out.append(f"<{t.__name__} of {len(value)} items>")
            return
        texts = sorted(describe(v, _MAX_TEXT) for v in value)
        if t is frozenset:
            out.append("frozenset(")
        _items(texts, out, depth, "{", "}", lambda v, o: o.append(v))
        if t is frozenset:
            out.append(")")
    elif isinstance(value, BaseException):
        # the runtime's error texts show a caller's bad argument with its repr, which may
        # hold an address: that part is left out
        out.append(t.__qualname__)
        _items(value.args, out, depth, "(", ")",
               lambda v, o: _describe(_ADDRESS.sub("", v) if type(v) is str else v, o, depth + 1))
    elif isinstance(value, enum.Enum):
        out.append(f"{t.__qualname__}.{value.name}")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        out.append(t.__qualname__)
        fields = [(f.name, getattr(value, f.name, None)) for f in dataclasses.fields(value) if f.repr]

        def field(kv: Any, o: list[str]) -> None:
            o.append(kv[0] + "=")
            _describe(kv[1], o, depth + 1)

        _items(fields, out, depth, "(", ")", field)
    else:
        # its own repr is not to be trusted to be the same in another process (an address,
        # a set's order): its class says what it was
        out.append(f"<{t.__qualname__}>")


def _items(items: Any, out: list[str], depth: int, open_: str, close: str, each: Any) -> None:
    out.append(open_)
    for i, v in enumerate(items):
        if i:
            out.append(", ")
        if i == _MAX_ITEMS:
            out.append(f"... {len(items) - i} more")
            break
        each(v, out)
    out.append(close)


def reason_text(reason: BaseException) -> str:
    """A termination reason as a trace writes it: ``normal``, ``kill``, ``panic``,
    ``shutdown`` for the runtime's own, ``Class: text`` for an error made of text, else
    :func:`describe` of the exception."""
    args = reason.args
    if type(reason) is TerminateReason and len(args) == 1 and type(args[0]) is str:
        return args[0]
    if args and all(type(a) is str for a in args):
        text = f"{type(reason).__qualname__}: {_ADDRESS.sub('', ', '.join(args))}"
        return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."
    return describe(reason)


def _who(runner: Any) -> str:
    pid = getattr(runner, "_pid", None)
    if pid is not None:
        return ident(pid)
    return ident(getattr(runner, "_id", None))  # a meta-process: its alias


def _json_value(value: Any) -> Any:
    """A fault's detail as JSON: plain values as they are, identifiers and anything else as text."""
    t = type(value)
    if value is None or t is bool or t is int or t is str:
        return value
    if t is float:
        return value if math.isfinite(value) else repr(value)
    if t is list or t is tuple:
        return [_json_value(v) for v in value]
    return ident(value)


class Trace:
    """The events of one simulation, in the order they happened (see the module's docstring).

    ``events`` is the list of them (dicts, each with ``t``, the virtual time, and
    ``kind``); ``write(path)`` saves them as JSON lines, ``hash()`` fingerprints them.
    """

    def __init__(self, world: World) -> None:
        self._world = world
        self._env = world.env
        #: the events so far, oldest first
        self.events: list[dict[str, Any]] = []
        self._on = False

    # -- switching it on and off ----------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self._on

    def start(self) -> None:
        """Record from now on (every node of the simulation, and those started later)."""
        self._on = True
        self._install(self)

    def stop(self) -> None:
        """Stop recording; what was recorded stays."""
        self._on = False
        self._install(None)

    def _install(self, tracer: Trace | None) -> None:
        for host in self._world.hosts.values():
            for node in host.nodes.values():
                node._tracer = tracer

    @property
    def tracer(self) -> Trace | None:
        """What a node started now is given: this trace while it records, else None."""
        return self if self._on else None

    # -- reading it ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.events)

    def lines(self) -> Iterator[str]:
        """Each event as one line of canonical JSON (sorted keys, no spaces, ASCII), no newline."""
        dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode
        for event in self.events:
            yield dumps(event)

    def hash(self) -> str:
        """The SHA-256 (hex) of the lines, each followed by a newline: the same for the same
        seed in any process, and equal to the hash of the file :meth:`write` writes."""
        h = hashlib.sha256()
        for line in self.lines():
            h.update(line.encode("ascii"))
            h.update(b"\n")
        return h.hexdigest()

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the events to ``path`` as JSON lines (see :meth:`lines`)."""
        with open(path, "w", encoding="ascii", newline="\n") as f:
            for line in self.lines():
                f.write(line)
                f.write("\n")

    @staticmethod
    def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """The events of a trace file written by :meth:`write`."""
        with open(path, encoding="ascii") as f:
            return [json.loads(line) for line in f if line.strip()]

    # -- recording ---------------------------------------------------------------------------

    def record(self, kind: str, **fields: Any) -> None:
        """Add an event of ``kind`` now (what the tracer methods below use; a fault uses
        :meth:`fault`).  ``fields`` must be JSON values."""
        if self._on:
            fields["t"] = self._env.now
            fields["kind"] = kind
            self.events.append(fields)

    def fault(self, kind: str, details: dict[str, Any]) -> None:
        """A fault the simulation injected (``World.note_fault``): ``{"kind": "fault",
        "fault": kind, ...details}``; identifiers and other values in ``details`` are
        written as text."""
        if not isinstance(kind, str) or not kind:
            raise Incorrect(f"a fault's kind is a non-empty str, not {kind!r}"[:200])
        taken = _RESERVED.intersection(details) | ({"fault"} & details.keys())
        if taken:
            raise Incorrect(f"a fault's details cannot be named {sorted(taken)}: every event has them")
        if self._on:
            self.record("fault", fault=kind, **{k: _json_value(v) for k, v in details.items()})

    # -- the tracer the nodes call (ergo/node/tracer.py) ------------------------------------

    def node_started(self, node: Node) -> None:
        self.record("node_start", node=str.__str__(node._name), creation=node._creation)

    def node_stopped(self, node: Node) -> None:
        self.record("node_stop", node=str.__str__(node._name))

    def spawned(self, node: Node, runner: Runner, parent: Any) -> None:
        pid = getattr(runner, "_pid", None)
        if pid is None:  # a meta-process
            self.record("spawn", node=str.__str__(node._name), pid=_who(runner), parent=ident(parent),
                        behavior=type(getattr(runner, "_behavior", None)).__qualname__, meta=True)
            return
        event: dict[str, Any] = {"node": str.__str__(node._name), "pid": ident(pid), "parent": ident(parent),
                                 "behavior": type(runner).__qualname__}
        name = getattr(runner, "_name", None)
        if name is not None:
            event["name"] = str.__str__(name)
        self.record("spawn", **event)

    def delivered(self, runner: Runner, queue: int, item: tuple[Any, ...]) -> None:
        # the one method called per message: the common case (a plain message from a PID
        # to a process, an int or str) is written out here, a few times cheaper than the
        # general helpers; the text is the same either way
        if not self._on:
            return
        kind, from_, ref, message = item[0], item[1], item[2], item[3]
        pid = getattr(runner, "_pid", None)
        to = f"{str.__str__(pid.node)}/{pid.id}" if pid is not None else _who(runner)
        if type(from_) is PID:
            sender: str | None = f"{str.__str__(from_.node)}/{from_.id}"
        else:
            sender = ident(from_) if from_ is not None else None
        event: dict[str, Any] = {"node": str.__str__(runner._node._name), "to": to, "from": sender}
        signal = False
        if kind == MSG:
            if type(message) in _DOWNS:
                what, signal = "down", True
            else:
                what = "message"
        elif kind == EXIT:
            what, signal = "exit", True
            event["link"] = ref is not None  # a link fired (pub/sub marks it), not send_exit
        else:
            what = _WHAT.get(kind, str(kind))
            if ref is not None:
                event["ref"] = ident(ref)
        if signal:
            reason = getattr(message, "reason", None)
            if isinstance(reason, BaseException):
                event["reason"] = reason_text(reason)
        event["what"] = what
        t = type(message)
        if t is int and -(2**63) <= message < 2**64:
            event["msg"] = repr(message)
        elif t is str and len(message) <= _MAX_STR:
            event["msg"] = repr(message)
        else:
            event["msg"] = describe(message)
        if queue != MAIN:
            event["queue"] = _QUEUE.get(queue, str(queue))
        if len(item) > 4:  # sent by name or alias: that name
            event["via"] = ident(item[4])
        event["t"] = self._env.now
        event["kind"] = "signal" if signal else "deliver"
        self.events.append(event)

    def replied(self, node: Node, to: PID, ref: Ref, value: Any, error: BaseException | None) -> None:
        event: dict[str, Any] = {"node": str.__str__(node._name), "to": ident(to), "ref": ident(ref)}
        current = node._current
        if current is not None:
            event["from"] = _who(current)
        if error is not None:
            event["error"] = describe(error)
        else:
            event["msg"] = describe(value)
        self.record("reply", **event)

    def call_expired(self, node: Node, caller: PID, ref: Ref, timeout: float) -> None:
        self.record("call_timeout", node=str.__str__(node._name), to=ident(caller), ref=ident(ref), timeout=timeout)

    def terminated(self, node: Node, runner: Runner, reason: BaseException) -> None:
        self.record("terminate", node=str.__str__(node._name), pid=_who(runner), reason=reason_text(reason))

    def connected(self, node: Node, peer: Atom, creation: int, dialed: bool) -> None:
        self.record("connect", node=str.__str__(node._name), peer=str.__str__(peer), creation=creation,
                    dialed=dialed)

    def disconnected(self, node: Node, peer: Atom, error: BaseException, was_up: bool) -> None:
        self.record("disconnect" if was_up else "connect_failed", node=str.__str__(node._name),
                    peer=str.__str__(peer), reason=reason_text(error))

"""The messages the runtime itself delivers: exits, downs, events, fallbacks and log records.

These are Ergo's ``gen.Message*`` types.  Exit messages arrive at a process that traps
exits (a link fired, or someone called ``send_exit``); down messages arrive when a monitor
fires; event messages go to ``handle_event``.  All are immutable, and all cross the
network as themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .ids import PID, Alias, Atom, Event, ProcessID

__all__ = [
    "MessageDownAlias",
    "MessageDownEvent",
    "MessageDownNode",
    "MessageDownPID",
    "MessageDownProcessID",
    "MessageEvent",
    "MessageEventStart",
    "MessageEventStop",
    "MessageExitAlias",
    "MessageExitEvent",
    "MessageExitNode",
    "MessageExitPID",
    "MessageExitProcessID",
    "MessageFallback",
    "MessageLog",
    "MessageLogMeta",
    "MessageLogNetwork",
    "MessageLogNode",
    "MessageLogProcess",
]


@dataclass(frozen=True, slots=True)
class MessageDownPID:
    pid: PID
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageDownProcessID:
    process_id: ProcessID
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageDownAlias:
    alias: Alias
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageDownEvent:
    event: Event
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageDownNode:
    name: Atom


@dataclass(frozen=True, slots=True)
class MessageExitPID:
    pid: PID
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageExitProcessID:
    process_id: ProcessID
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageExitAlias:
    alias: Alias
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageExitEvent:
    event: Event
    reason: BaseException


@dataclass(frozen=True, slots=True)
class MessageExitNode:
    name: Atom


@dataclass(frozen=True, slots=True)
class MessageFallback:
    """A message that did not fit a full mailbox, forwarded to the fallback process."""

    pid: PID
    tag: str
    target: Any
    message: Any


@dataclass(frozen=True, slots=True)
class MessageEventStart:
    """To a producer registered with ``notify``: the first subscriber arrived."""

    name: Atom


@dataclass(frozen=True, slots=True)
class MessageEventStop:
    """To a producer registered with ``notify``: the last subscriber left."""

    name: Atom


@dataclass(frozen=True, slots=True)
class MessageEvent:
    event: Event
    timestamp: int  # nanoseconds since the epoch, as Ergo's
    message: Any


@dataclass(frozen=True, slots=True)
class MessageLogNode:
    node: Atom
    creation: int


@dataclass(frozen=True, slots=True)
class MessageLogNetwork:
    node: Atom
    peer: Atom
    creation: int


@dataclass(frozen=True, slots=True)
class MessageLogProcess:
    node: Atom
    pid: PID
    name: Atom
    behavior: str


@dataclass(frozen=True, slots=True)
class MessageLogMeta:
    node: Atom
    parent: PID
    meta: Alias
    behavior: str


@dataclass(frozen=True, slots=True)
class MessageLog:
    """One log record as loggers receive it; ``time`` is in seconds since the epoch."""

    time: float
    level: Any  # LogLevel
    source: Any  # MessageLogNode | MessageLogNetwork | MessageLogProcess | MessageLogMeta
    format: str
    args: tuple[Any, ...] = ()
    fields: tuple[Any, ...] = field(default=())
    #: the formatted traceback of the exception logged with the line (a panic's), or ""
    traceback: str = ""

    def text(self) -> str:
        """The formatted message (``format % args``, as the standard logging module does),
        followed by the traceback on the next lines when there is one."""
        text = self.format
        if self.args:
            try:
                text = self.format % self.args
            except (TypeError, ValueError):
                text = f"{self.format} {self.args!r}"
        if self.traceback:
            return f"{text}\n{self.traceback}"
        return text


_M = TypeVar("_M")


def _pair_maker(cls: type[_M]) -> Callable[[Any, Any], _M]:
    """A maker of ``cls``, a frozen dataclass with slots and two fields, from the two
    values in order, as ``cls(a, b)`` makes it: for the runtime's own exits and downs, on
    the path of every termination.  It sets the slots directly, where the generated
    ``__init__`` goes through ``object.__setattr__`` per field (~0.15 us less a message)."""
    first, second = (cls.__dict__[name].__set__ for name in cls.__dataclass_fields__)  # type: ignore[attr-defined]
    new = object.__new__

    def make(a: Any, b: Any) -> _M:
        obj = new(cls)
        first(obj, a)
        second(obj, b)
        return obj

    return make

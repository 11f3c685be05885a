"""Small enumerations a user sees: process states, message priorities and log levels."""

from __future__ import annotations

import enum

__all__ = ["Compression", "LogLevel", "MessagePriority", "NoReply", "ProcessState"]


class ProcessState(enum.IntEnum):
    """A process's life: init → sleep ⇄ running ⇄ waitresponse → terminated (or zombee on kill)."""

    INIT = 1
    SLEEP = 2
    RUNNING = 4
    WAIT_RESPONSE = 8
    TERMINATED = 16
    ZOMBEE = 32

    def __str__(self) -> str:
        return _STATE_NAMES[self]


_STATE_NAMES = {
    ProcessState.INIT: "init",
    ProcessState.SLEEP: "sleep",
    ProcessState.RUNNING: "running",
    ProcessState.WAIT_RESPONSE: "waitresponse",
    ProcessState.TERMINATED: "terminated",
    ProcessState.ZOMBEE: "zombee",
}


class MessagePriority(enum.IntEnum):
    """Which queue of the receiver a message lands in: normal → main, high → system, max → urgent."""

    NORMAL = 0
    HIGH = 1
    MAX = 2

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: MessagePriority | str | int) -> MessagePriority:
        """A priority from itself, its number (0-2) or its name (``"high"``); ``Incorrect`` otherwise."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            member = cls.__members__.get(value.upper())
            if member is not None:
                return member
        elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2:
            return cls(value)
        from .errors import Incorrect

        raise Incorrect(f"a message priority is MessagePriority.NORMAL, HIGH or MAX (0, 1, 2), not {_shown(value)}")


class LogLevel(enum.IntEnum):
    """Ergo's log levels, numbered to fit the standard ``logging`` module's scale.

    ``DEFAULT`` means "inherit" (a process takes its parent's level, the node the
    configured one); ``DISABLED`` lets nothing through.
    """

    DEFAULT = 0
    TRACE = 5
    DEBUG = 10
    INFO = 20
    WARNING = 30
    ERROR = 40
    PANIC = 50
    DISABLED = 100

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: LogLevel | str | int) -> LogLevel:
        """A level from its name (``"info"``), its number, or itself; a clear error otherwise."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        from .errors import Incorrect

        names = ", ".join(str(v) for v in cls)
        raise Incorrect(f"unknown log level {_shown(value)} (one of: {names})")


class Compression(enum.Enum):
    """Compression algorithms for messages a process sends over the network."""

    LZ4 = "lz4"


def _shown(value: object) -> str:
    """A wrong value for an error message, without calling its repr: a str shortened, a
    small int as it is, anything else by its type (a 5000-digit int or a list nested
    past the recursion limit cannot even be printed)."""
    if isinstance(value, str):
        return repr(value[:40])
    if isinstance(value, int) and not isinstance(value, bool) and -10**9 < value < 10**9:
        return f"int {value}"
    return type(value).__name__ if not isinstance(value, bool) else f"bool {value}"


class _NoReply(enum.Enum):
    """The type of :data:`NoReply` (an enum member, so type checkers know it is one value)."""

    NoReply = "NoReply"

    def __repr__(self) -> str:
        return "NoReply"


#: What ``handle_call`` returns to answer later, with ``send_response`` (Erlang's
#: ``{noreply, State}``).  Anything else it returns is the reply, ``None`` included.
NoReply = _NoReply.NoReply

"""Log lines that anyone can cause, at a bounded rate.

A refused connection, a malformed datagram, a registration connection, a value a peer
sent that does not decode: each makes a log line, and whoever sends them could fill the
log at the rate they can send.  A :class:`Throttle` lets at most ``per_second`` such lines
through in a second and counts the rest, which are told either in one line of their own
once the second is over (``told``), or on the next line let through (:attr:`unlogged`).
And a :class:`PrintableLog` writes what a peer chose (an error's text, a node name, a
registered name) with its control characters escaped, so that it cannot make lines of
its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..gen.types import LogLevel
from ..scheduler import Scheduler
from ..wire._brief import printable

__all__ = ["PrintableLog", "Repeats", "Throttle", "printable_log"]

_TRACE, _DEBUG, _INFO, _WARNING, _ERROR, _PANIC = (
    int(LogLevel.TRACE), int(LogLevel.DEBUG), int(LogLevel.INFO), int(LogLevel.WARNING), int(LogLevel.ERROR),
    int(LogLevel.PANIC))


#: one conversion of a ``%`` format: its flags, width, precision and type (``%%`` included)
_CONVERSION = re.compile(r"%(\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.DOTALL)


def _text_of(arg: Any, conversion: str) -> str:
    try:
        return repr(arg) if conversion in "ra" else str(arg)
    except Exception:  # noqa: BLE001 - a value whose str() fails still makes its line
        return f"<{type(arg).__qualname__}>"


def _printable_call(fmt: str, args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """``fmt % args`` made safe: each argument's text (``%s``: its ``str``, ``%r``/``%a``:
    its ``repr``, the conversion then made a ``%s``) with its control and other unprintable
    characters escaped; numbers for ``%d``, ``%g``, ``%x``... as they are.  A format that
    does not match its arguments (a mapping key, a ``*`` width) has each argument's ``str``
    escaped, and ``fmt`` as it is."""
    conversions = [m for m in _CONVERSION.finditer(fmt) if m.group(4) != "%"]
    if len(conversions) != len(args) or any(m.group(1) or "*" in m.group(0) for m in conversions):
        return fmt, tuple(arg if isinstance(arg, (int, float)) else printable(_text_of(arg, "s")) for arg in args)
    out: list[Any] = []
    parts: list[str] = []
    at = 0
    for m, arg in zip(conversions, args, strict=True):
        kind = m.group(4)
        if kind in "sra":
            out.append(printable(_text_of(arg, kind)))
            if kind != "s":  # its text is the repr already: a %r of it would quote it again
                parts.append(fmt[at:m.end() - 1])
                parts.append("s")
                at = m.end()
        else:
            out.append(arg)  # %d, %g, %x, %c...: a number (or a character) as the format wants it
    parts.append(fmt[at:])
    return "".join(parts), tuple(out)


class PrintableLog:
    """A logger (``trace/debug/info/warning/error/panic(fmt, *args)``, as a node's ``log``)
    whose lines show their arguments with control characters escaped (``\\n``, ``\\r``,
    ``\\x1b``); a ``%r`` shows the argument's repr, escaped and not quoted again.

    The network writes what peers say into its lines: an error's text from a frame, a
    node name (a handshake lets any ``name@host`` in, a newline included), a name given
    to the registrar.  Written as it is, a newline in it forged whole log lines (a
    terminal escape rewrote the one before).  Every line of the network goes through
    this, so a new line cannot forget it; its format strings are the network's own.
    So do the node's own lines of applications and events (``Node._runtime_log``): an
    exit reason or an error they show may be a peer's.  A line below the logger's level
    (a node log's ``level``) costs no conversion."""

    __slots__ = ("_log",)

    def __init__(self, log: Any) -> None:
        self._log = log

    def __getattr__(self, name: str) -> Any:
        # anything else (a node log's ``level``, a test's record of lines) is the logger's own
        return getattr(self._log, name)

    def _enabled(self, level: int) -> bool:
        return bool(getattr(self._log, "_level", 0) <= level)

    def _line(self, name: str, level: int, fmt: str, args: tuple[Any, ...], exc_info: BaseException | None) -> None:
        if self._enabled(level):
            fmt, args = _printable_call(fmt, args)
            if exc_info is None:  # (a logger with no exc_info, as the registrar's, takes the line too)
                getattr(self._log, name)(fmt, *args)
            else:
                getattr(self._log, name)(fmt, *args, exc_info=exc_info)

    def trace(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        self._line("trace", _TRACE, fmt, args, exc_info)

    def debug(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        self._line("debug", _DEBUG, fmt, args, exc_info)

    def info(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        self._line("info", _INFO, fmt, args, exc_info)

    def warning(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        self._line("warning", _WARNING, fmt, args, exc_info)

    def error(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        self._line("error", _ERROR, fmt, args, exc_info)

    def panic(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        self._line("panic", _PANIC, fmt, args, exc_info)


def printable_log(log: Any) -> PrintableLog:
    """``log`` as a :class:`PrintableLog` (itself if it is one already)."""
    return log if isinstance(log, PrintableLog) else PrintableLog(log)


class Throttle:
    """At most ``per_second`` lines a second (on the scheduler's clock, so a simulated run
    logs the same lines every time).

    Call :meth:`allow` before each line: True means log it.  With ``told``, the first line
    held back sets a timer for the end of its second, which calls ``told(count)`` with the
    number held back, and a new second starts then.  Without, nothing is timed: the count
    of the lines held back since the last one let through is :attr:`unlogged`, which the
    caller puts in that line (and which :meth:`allow` sets back to 0 on the next line).
    """

    __slots__ = ("_logged", "_per_second", "_scheduler", "_since", "_told", "unlogged")

    def __init__(self, scheduler: Scheduler, per_second: int, told: Callable[[int], None] | None = None) -> None:
        self._scheduler = scheduler
        self._per_second = per_second
        self._told = told
        self._since = float("-inf")  # when the current second began
        self._logged = 0  # lines let through in it
        #: lines held back and not yet told
        self.unlogged = 0

    def allow(self) -> bool:
        """Whether the next line may be logged (else it is counted)."""
        now = self._scheduler.now()
        if now - self._since >= 1.0 and not (self._told is not None and self.unlogged):
            self._since, self._logged = now, 0
        if self._logged < self._per_second:
            self._logged += 1
            return True
        if self._told is not None and not self.unlogged:
            self._scheduler.call_later(max(0.0, self._since + 1.0 - now), self._tell)
        self.unlogged += 1
        return False

    def held_back(self, what: str = "dropped") -> str:
        """`` (N more dropped since the last line)`` (``what`` for "dropped") for a line let
        through after N were held back (without ``told``), else "": the count starts again."""
        count, self.unlogged = self.unlogged, 0
        return f" ({count} more {what} since the last line)" if count else ""

    def _tell(self) -> None:
        count, self.unlogged = self.unlogged, 0
        self._since, self._logged = self._scheduler.now(), 0
        if count and self._told is not None:
            self._told(count)


class Repeats:
    """The same line over and over (a failed dial to one peer, a refusal of one
    misconfigured node): per key, the first is let through at once, then at most one every
    ``every`` seconds (on the scheduler's clock), and each line let through says how many of
    its key were held back since the one before.  At most ``max_keys`` keys are remembered
    (a key comes from whoever causes the line); one more forgets the key whose last line is
    oldest, which is then let through again at its next line."""

    __slots__ = ("_every", "_keys", "_max_keys", "_scheduler")

    def __init__(self, scheduler: Scheduler, every: float, max_keys: int) -> None:
        self._scheduler = scheduler
        self._every = every
        self._max_keys = max_keys
        #: key -> [when its last line was let through, lines held back since], oldest line first
        self._keys: dict[Any, list[Any]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def allow(self, key: Any) -> tuple[int, float] | None:
        """None: hold this line back (it is counted).  Else log it: ``(held, ago)``, the lines
        of ``key`` held back since its last line, and how many seconds ago that was."""
        now = self._scheduler.now()
        keys = self._keys
        entry = keys.pop(key, None)
        if entry is not None and now - entry[0] < self._every:
            entry[1] += 1
            keys[key] = entry  # (popped and put back: the order stays that of the last lines)
            return None
        if entry is None and len(keys) >= self._max_keys:
            del keys[next(iter(keys))]
        keys[key] = [now, 0]
        return (entry[1], now - entry[0]) if entry is not None else (0, 0.0)

    def forget(self, key: Any) -> int:
        """Forget ``key`` (what it was about is over); the lines held back and never told."""
        entry = self._keys.pop(key, None)
        return entry[1] if entry is not None else 0

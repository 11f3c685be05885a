"""Ergo's logging subsystem, built on the standard ``logging`` module.

A line goes two ways.  It goes into the standard ``logging`` tree, through the named
loggers ``ergo.node``, ``ergo.process.<Behavior>`` and ``ergo.meta.<Behavior>``, so that
``logging.config.dictConfig`` and the application's handlers see it like any library's
lines.  And it goes to the node's own loggers, Ergo's ``LoggerAdd``: each node owns one
private ``logging.Logger`` (outside the registry, so nodes never share them) whose
handlers are those loggers.  A record carries Ergo's :class:`~ergo.gen.messages.MessageLog`
as ``record.ergo``, the node, pid, name and behaviour as plain string attributes, and the
scheduler's time (virtual in simulation), so a simulated run logs the same lines every time.

Loggers in the tree are named by behaviour, not by node or process: node names and PIDs
contain dots (which the tree reads as levels), and the registry never frees a logger, so
one per process would grow without bound.  ``record.node`` and ``record.pid`` tell them
apart.

A node's own logger is any of: a ``logging.Handler``, an object with
``log(message: MessageLog)`` and optionally ``terminate()`` (Ergo's LoggerBehavior), or a
process (its ``handle_log`` receives the messages through its log queue).  Each has a
filter: the set of levels it receives.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..gen.errors import Incorrect, Taken, Unknown
from ..gen.messages import MessageLog, MessageLogMeta, MessageLogNetwork, MessageLogNode, MessageLogProcess
from ..gen.options import LogOptions, _levels
from ..gen.types import LogLevel
from ..wire._brief import printable

# the ``ergo`` tree never falls back to logging's last resort (warnings on stderr) when
# the application configured nothing: the node's default logger covers that case
logging.getLogger("ergo").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from ..gen.ids import PID
    from .node import Node

__all__ = ["DefaultFormatter", "JSONFormatter", "Log", "Logging", "tree_configured"]

_TRACE, _DEBUG, _INFO, _WARNING, _ERROR, _PANIC = (
    LogLevel.TRACE,
    LogLevel.DEBUG,
    LogLevel.INFO,
    LogLevel.WARNING,
    LogLevel.ERROR,
    LogLevel.PANIC,
)


class Log:
    """The logger of a node, process or meta-process: ``log.info("format %s", arg)``."""

    __slots__ = ("_level", "_logging", "_make_source", "_source")

    def __init__(self, logging_: Logging, level: LogLevel | int, source: Any,
                 make_source: Callable[[], Any] | None = None) -> None:
        self._logging = logging_
        self._level = int(level)
        #: who logs (a MessageLog* source); None: made by ``make_source`` when first needed
        self._source = source
        self._make_source = make_source

    @property
    def source(self) -> Any:
        src = self._source
        if src is None and self._make_source is not None:
            src = self._source = self._make_source()
        return src

    @property
    def level(self) -> LogLevel:
        return LogLevel(self._level)

    @level.setter
    def level(self, value: LogLevel | str) -> None:
        level = LogLevel.parse(value)
        if level is LogLevel.DEFAULT:
            raise Incorrect("a logger's level cannot be set to 'default'")
        self._level = int(level)

    def trace(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        if self._level <= _TRACE:
            self._logging.emit(_TRACE, self.source, fmt, args, exc_info)

    def debug(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        if self._level <= _DEBUG:
            self._logging.emit(_DEBUG, self.source, fmt, args, exc_info)

    def info(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        if self._level <= _INFO:
            self._logging.emit(_INFO, self.source, fmt, args, exc_info)

    def warning(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        if self._level <= _WARNING:
            self._logging.emit(_WARNING, self.source, fmt, args, exc_info)

    def error(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        if self._level <= _ERROR:
            self._logging.emit(_ERROR, self.source, fmt, args, exc_info)

    def panic(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        if self._level <= _PANIC:
            self._logging.emit(_PANIC, self.source, fmt, args, exc_info)


def source_text(source: Any) -> str:
    """How the default logger names a source: Ergo's ``<PID>``, ``Alias#<...>`` or node CRC."""
    if isinstance(source, MessageLogProcess):
        return str(source.pid)
    if isinstance(source, MessageLogMeta):
        return str(source.meta)
    if isinstance(source, MessageLogNode):
        return source.node.crc32()
    if isinstance(source, MessageLogNetwork):
        return f"{source.node.crc32()}-{source.peer.crc32()}"
    return repr(source)


class DefaultFormatter(logging.Formatter):
    """``<time> [level] <source>: message`` — the default logger's line, as Ergo prints it."""

    def __init__(self, time_format: str | None = "%Y-%m-%d %H:%M:%S.%f", include_name: bool = False,
                 include_behavior: bool = False) -> None:
        super().__init__()
        self.time_format = time_format
        self.include_name = include_name
        self.include_behavior = include_behavior

    def format_time(self, t: float) -> str:
        if self.time_format is None:
            return str(round(t * 1e9))
        return datetime.fromtimestamp(t, UTC).strftime(self.time_format)

    def format(self, record: logging.LogRecord) -> str:
        m: MessageLog | None = getattr(record, "ergo", None)
        if m is None:
            return super().format(record)
        parts = [self.format_time(m.time), f" [{m.level}] ", source_text(m.source)]
        src = m.source
        if self.include_name and isinstance(src, MessageLogProcess) and src.name:
            parts.append(f" {src.name}")
        if self.include_behavior and isinstance(src, (MessageLogProcess, MessageLogMeta)):
            parts.append(f" {src.behavior}")
        parts.append(": ")
        parts.append(m.text())  # with the traceback, if any: record.exc_info is not printed twice
        return "".join(parts)


class JSONFormatter(DefaultFormatter):
    """One JSON object a line: time, level, source, message (Ergo's ``EnableJSON``)."""

    def format(self, record: logging.LogRecord) -> str:
        m: MessageLog | None = getattr(record, "ergo", None)
        if m is None:
            return json.dumps({"level": record.levelname.lower(), "message": record.getMessage()})
        src = m.source
        if isinstance(src, MessageLogProcess):
            source: dict[str, Any] = {"type": "process", "pid": str(src.pid)}
            if self.include_name and src.name:
                source["name"] = str(src.name)
            if self.include_behavior:
                source["behavior"] = src.behavior
        elif isinstance(src, MessageLogMeta):
            source = {"type": "meta", "meta": str(src.meta)}
            if self.include_behavior:
                source["behavior"] = src.behavior
        elif isinstance(src, MessageLogNetwork):
            source = {"type": "network", "node": src.node.crc32(), "peer": src.peer.crc32()}
        elif isinstance(src, MessageLogNode):
            source = {"type": "node", "node": src.node.crc32()}
        else:
            source = {"type": "unknown", "raw": repr(src)}
        t: Any = self.format_time(m.time)
        if self.time_format is None:
            t = int(t)
        return json.dumps({"time": t, "level": str(m.level), "source": source, "message": m.text()})


class _StreamHandler(logging.StreamHandler):  # type: ignore[type-arg]  # its stream is any text stream
    """Writes to ``sys.stdout`` as it is at the time of writing (so captured output works)."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._follow_stdout = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._follow_stdout:
            self.stream = sys.stdout
        super().emit(record)


class _BehaviorHandler(logging.Handler):
    """Adapts Ergo's LoggerBehavior (``log(message)``, ``terminate()``) to a handler."""

    def __init__(self, behavior: Any) -> None:
        super().__init__()
        self.behavior = behavior

    def emit(self, record: logging.LogRecord) -> None:
        m = getattr(record, "ergo", None)
        if m is not None:
            self.behavior.log(m)

    def close(self) -> None:
        terminate = getattr(self.behavior, "terminate", None)
        if terminate is not None:
            terminate()
        super().close()


class _ProcessHandler(logging.Handler):
    """Delivers log messages to a process's log queue (its ``handle_log``)."""

    def __init__(self, node: Node, pid: PID) -> None:
        super().__init__()
        self.node = node
        self.pid = pid

    def emit(self, record: logging.LogRecord) -> None:
        m = getattr(record, "ergo", None)
        if m is None:
            return
        if isinstance(m.source, MessageLogProcess) and m.source.pid == self.pid:
            return  # a process never logs to itself: that would loop
        self.node._deliver_log(self.pid, m)


class _LevelFilter(logging.Filter):
    def __init__(self, levels: frozenset[LogLevel]) -> None:
        super().__init__()
        self.levels = levels

    def filter(self, record: logging.LogRecord) -> bool:
        m = getattr(record, "ergo", None)
        return m is not None and m.level in self.levels


_LEVEL_NAMES = {5: "TRACE", 10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


def tree_configured(name: str = "ergo") -> bool:
    """True if a line logged to ``name`` reaches a handler the application set up: one on
    that logger or on an ancestor it propagates to, other than a ``NullHandler``."""
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None:
        if any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


_tree_loggers: dict[str, logging.Logger] = {}


def _tree_logger(source: Any) -> logging.Logger:
    """The logger of the ``logging`` tree a source's lines go to."""
    if isinstance(source, MessageLogProcess):
        name = "ergo.process." + source.behavior
    elif isinstance(source, MessageLogMeta):
        name = "ergo.meta." + source.behavior
    elif isinstance(source, MessageLogNetwork):
        name = "ergo.network"
    else:
        name = "ergo.node"
    logger = _tree_loggers.get(name)
    if logger is None:  # getLogger takes the logging module's lock: once per name is enough
        logger = _tree_loggers[name] = logging.getLogger(name)
    return logger


def _record_fields(source: Any) -> dict[str, str]:
    """Who logged, as plain strings a JSON handler can print (``record.node``, ``record.pid``...)."""
    if isinstance(source, MessageLogProcess):
        # (a registered name may be another node's choice, a remote spawn_register's: escaped,
        # as an Atom prints itself, without its quotes)
        return {"node": source.node.value, "pid": str(source.pid), "process_name": printable(source.name.value),
                "behavior": source.behavior}
    if isinstance(source, MessageLogMeta):
        return {"node": source.node.value, "pid": str(source.parent), "meta": str(source.meta),
                "behavior": source.behavior}
    if isinstance(source, MessageLogNetwork):
        return {"node": source.node.value, "peer": source.peer.value}
    if isinstance(source, MessageLogNode):
        return {"node": source.node.value}
    return {}


def _traceback_text(exc: BaseException) -> str:
    """``exc``'s traceback as Python formats it, but for the text of each exception in it
    (those it was raised from or during too), which has its control and other unprintable
    characters escaped.  That text may be another node's: an error a remote call got, an
    exit reason; written as it was, a newline in it made log lines of its own."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    seen: list[BaseException] = []  # (by identity: a chain is short, and may loop)
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if any(e is x for x in seen):
            continue
        seen.append(e)
        todo.extend(x for x in (e.__cause__, e.__context__, *getattr(e, "exceptions", ()))
                    if isinstance(x, BaseException))
        try:
            said = str(e)
        except Exception:  # noqa: BLE001 - Python's own formatting said so already
            continue
        if said.isprintable():
            continue
        kind = type(e).__qualname__
        module = type(e).__module__
        if module not in ("__main__", "builtins"):  # as the traceback module names it
            kind = f"{module}.{kind}"
        text = text.replace(f"{kind}: {said}\n", f"{kind}: {printable(said)}\n")
    return text.rstrip()


class Logging:
    """The node's logging subsystem: its level, its loggers and the fan-out to them."""

    def __init__(self, node: Node, options: LogOptions) -> None:
        self._node = node
        self._logger = logging.Logger(f"ergo.{node._name.value}")
        self._logger.propagate = False
        self._handlers: dict[str, logging.Handler] = {}
        self._process_loggers: set[PID] = set()
        default = options.default_logger
        if default is None:  # auto: a script that configured no logging still sees the node's lines
            default = options.output is not None or not tree_configured()
        if default:
            formatter_cls = JSONFormatter if options.json else DefaultFormatter
            handler = _StreamHandler(options.output)
            handler.setFormatter(formatter_cls(options.time_format, options.include_name, options.include_behavior))
            self.add("default", handler)

    def emit(self, level: LogLevel, source: Any, fmt: str, args: tuple[Any, ...],
             exc: BaseException | None = None) -> None:
        tree = _tree_logger(source)
        to_tree = tree.isEnabledFor(level)
        if not to_tree and not self._handlers:
            return
        tb = ""
        exc_info = None
        if exc is not None:
            exc_info = (type(exc), exc, exc.__traceback__)
            tb = _traceback_text(exc)
        message = MessageLog(self._node._scheduler.time(), LogLevel(level), source, fmt, args, traceback=tb)
        record = logging.LogRecord(tree.name, int(level), "", 0, fmt, args, exc_info)
        record.created = message.time
        record.msecs = (message.time - int(message.time)) * 1000
        record.levelname = _LEVEL_NAMES.get(int(level), str(message.level).upper())
        record.ergo = message
        if tb:  # the tree's formatters print this one, not one of their own with the texts as they are
            record.exc_text = tb
        record.__dict__.update(_record_fields(source))
        if self._handlers:
            self._logger.handle(record)
        if to_tree:
            tree.handle(record)

    def add(self, name: str, logger: Any, filter: Iterable[LogLevel | str] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise Incorrect("a logger needs a non-empty name")
        if name in self._handlers:
            raise Taken(f"a logger named {name!r} is already added")
        if isinstance(logger, logging.Handler):
            handler = logger
        elif callable(getattr(logger, "log", None)):
            handler = _BehaviorHandler(logger)
        else:
            raise Incorrect(
                f"a logger is a logging.Handler or has a log(message) method; {type(logger).__name__} is neither"
            )
        handler.addFilter(_LevelFilter(_levels(filter)))
        self._handlers[name] = handler
        self._logger.addHandler(handler)

    def add_process(self, pid: PID, name: str, filter: Iterable[LogLevel | str] | None = None) -> None:
        self.add(name, _ProcessHandler(self._node, pid), filter)
        self._process_loggers.add(pid)

    def delete(self, name: str) -> None:
        if not isinstance(name, str):
            raise Incorrect(f"a logger's name is a str, not {type(name).__name__}")
        handler = self._handlers.pop(name, None)
        if handler is None:
            raise Unknown(f"no logger named {name!r}")
        self._logger.removeHandler(handler)
        handler.close()

    def delete_process(self, pid: PID) -> None:
        if not self._process_loggers or pid not in self._process_loggers:  # called at every termination
            return
        self._process_loggers.discard(pid)
        for name, h in list(self._handlers.items()):
            if isinstance(h, _ProcessHandler) and h.pid == pid:
                self.delete(name)

    def names(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    def close(self) -> None:
        for name in list(self._handlers):
            self.delete(name)

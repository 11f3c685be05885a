"""ergo: the core of the runtime (no I/O). The public API is listed here and nowhere else."""

from .gen.errors import *  # noqa: F401,F403  (errors are listed in ergo.gen.errors.__all__)
from .gen.errors import __all__ as _errors_all
from .gen.ids import PID, Alias, Atom, Event, ProcessID, Ref
from .gen.messages import *  # noqa: F401,F403
from .gen.messages import __all__ as _messages_all
from .gen.types import Compression, LogLevel, MessagePriority, ProcessState

__all__ = [
    *_errors_all,
    *_messages_all,
    "Atom",
    "PID",
    "ProcessID",
    "Ref",
    "Alias",
    "Event",
    "Compression",
    "LogLevel",
    "MessagePriority",
    "ProcessState",
]

"""ergo: the core of the runtime (no I/O). The public API is listed here and nowhere else."""

from .act.actor import Actor
from .act.pool import Pool, PoolOptions
from .act.supervisor import (
    Supervisor,
    SupervisorChild,
    SupervisorChildSpec,
    SupervisorRestart,
    SupervisorSpec,
    SupervisorStrategy,
    SupervisorType,
)
from .gen import errors as _errors
from .gen import messages as _messages
from .gen.application import (
    Application,
    ApplicationDependencies,
    ApplicationInfo,
    ApplicationMemberSpec,
    ApplicationMode,
    ApplicationOptions,
    ApplicationSpec,
    ApplicationStatus,
)
from .gen.errors import *
from .gen.ids import PID, Alias, Atom, Event, ProcessID, Ref, Target
from .gen.messages import *
from .gen.options import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    AcceptorOptions,
    CompressionLevel,
    CompressionOptions,
    Fallback,
    LogOptions,
    MetaInfo,
    NetworkFlags,
    NetworkOptions,
    NodeInfo,
    NodeOptions,
    ProcessInfo,
    ProcessOptions,
)
from .gen.types import Compression, LogLevel, MessagePriority, NoReply, ProcessState
from .network import NetworkRoute, RemoteNode
from .node.log import DefaultFormatter, JSONFormatter, Log
from .node.meta import MetaBehavior, MetaProcess
from .node.node import Node
from .node.process import Process
from .scheduler import Future, Scheduler, TimerHandle
from .wire.edf import EncodeError, RemoteError, register_type

__all__ = [
    "Actor",
    "Alias",
    "Application",
    "ApplicationDependencies",
    "ApplicationInfo",
    "ApplicationMemberSpec",
    "ApplicationMode",
    "ApplicationOptions",
    "ApplicationSpec",
    "ApplicationStatus",
    "Atom",
    "Compression",
    "CompressionLevel",
    "CompressionOptions",
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DefaultFormatter",
    "EncodeError",
    "Event",
    "Fallback",
    "Future",
    "JSONFormatter",
    "Log",
    "LogLevel",
    "LogOptions",
    "MessagePriority",
    "MetaBehavior",
    "MetaInfo",
    "MetaProcess",
    "NetworkOptions",
    "NetworkFlags",
    "NetworkRoute",
    "AcceptorOptions",
    "Node",
    "NodeInfo",
    "NodeOptions",
    "NoReply",
    "PID",
    "Pool",
    "PoolOptions",
    "Process",
    "ProcessID",
    "ProcessInfo",
    "ProcessOptions",
    "ProcessState",
    "Ref",
    "RemoteError",
    "RemoteNode",
    "Scheduler",
    "Supervisor",
    "SupervisorChild",
    "SupervisorChildSpec",
    "SupervisorRestart",
    "SupervisorSpec",
    "SupervisorStrategy",
    "SupervisorType",
    "Target",
    "TimerHandle",
    "register_type",
]
# in this form (not ``[*errors.__all__, ...]``) type checkers see these names as exported
__all__ += _errors.__all__
__all__ += _messages.__all__

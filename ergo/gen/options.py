"""Options a user passes (node, process, logging) and the info records the node returns."""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .ids import PID, Alias, Atom
from .types import LogLevel, MessagePriority

if TYPE_CHECKING:
    from .application import Application

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_PORT_RANGE",
    "DEFAULT_REGISTRAR_PORT",
    "AcceptorOptions",
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_COMPRESSION_THRESHOLD",
    "CompressionLevel",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "CompressionOptions",
    "Fallback",
    "LogOptions",
    "MetaInfo",
    "NetworkOptions",
    "NodeInfo",
    "NodeOptions",
    "ProcessInfo",
    "ProcessOptions",
]

#: seconds a call waits for its reply unless told otherwise (Ergo's DefaultRequestTimeout)
DEFAULT_CALL_TIMEOUT = 5.0
#: payloads above this many bytes are compressed when compression is enabled
DEFAULT_COMPRESSION_THRESHOLD = 1024
#: the largest network frame (ENP, after decompression) a node accepts unless told otherwise:
#: 1 MiB.  Decoding a frame costs time and memory in proportion to its size, up to about a
#: microsecond and 75 bytes per byte for the worst content (docs/wire.md, "Work per
#: frame"), all of it on the node's one thread, so this limit is what bounds a stall; a
#: peer learns it in the handshake and refuses to send more (``TooLarge``).
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024


@dataclass
class LogOptions:
    """The node's logging: its level, the default logger (stdout) on or off, and its format."""

    level: LogLevel | str = LogLevel.INFO
    #: the node's own stdout logger: True, False, or None (the default) for "on if
    #: ``output`` is set or the application configured no ``logging`` handler (on ``ergo``
    #: or the root) before the node started": a plain script sees the node's lines, an
    #: application that configured logging does not get them twice
    default_logger: bool | None = None
    #: ``strftime`` format of the time in the default logger's line; ``None`` prints
    #: nanoseconds since the epoch, as Ergo does when no format is set
    time_format: str | None = "%Y-%m-%d %H:%M:%S.%f"
    json: bool = False
    include_name: bool = False
    include_behavior: bool = False
    #: where the default logger writes; ``None`` means ``sys.stdout`` at the time of writing
    output: Any = None


#: the port a node's acceptor tries first (Ergo's gen.DefaultPort); the next free one is taken
DEFAULT_PORT = 11144
#: how many ports from ``AcceptorOptions.port`` on an acceptor tries before giving up
DEFAULT_PORT_RANGE = 50
#: the port of every host's registrar (Ergo's ESRD)
DEFAULT_REGISTRAR_PORT = 4499


class NetworkFlags(enum.IntFlag):
    """What a node offers its peers, told in the handshake (Ergo's ``gen.NetworkFlags``,
    the same bits).  A peer that does not offer a feature is asked for it in vain: a
    remote spawn gets ``NotAllowed`` and an important send ``Unsupported`` at once, and a
    node answers a request for what it does not offer with ``NotAllowed``."""

    ENABLE = 1
    REMOTE_SPAWN = 2
    REMOTE_APPLICATION_START = 4
    FRAGMENTATION = 8
    PROXY_TRANSIT = 16
    PROXY_ACCEPT = 32
    IMPORTANT_DELIVERY = 64


#: what a node offers unless told otherwise: remote spawn (of what ``enable_spawn`` names),
#: remote application start (of what ``enable_application_start`` names) and important
#: delivery (no fragmentation or proxies: this runtime has neither)
DEFAULT_NETWORK_FLAGS = (NetworkFlags.ENABLE | NetworkFlags.REMOTE_SPAWN | NetworkFlags.REMOTE_APPLICATION_START
                         | NetworkFlags.IMPORTANT_DELIVERY)


def _flags(value: object, what: str) -> None:
    from .errors import Incorrect

    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise Incorrect(f"{what} is NetworkFlags (an int of 64 bits), not {value!r}"[:200])


def _size(value: object, what: str) -> None:
    from .errors import Incorrect

    if type(value) is not int or not 0 <= value <= 0xFFFFFFFF:  # type: ignore[operator,unused-ignore]
        raise Incorrect(f"{what} must be an int in 0..2**32-1 (0: no limit), not {value!r}"[:200])


def _seconds(value: object, what: str) -> None:
    from .errors import Incorrect

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise Incorrect(f"{what} is a number of seconds > 0, not {value!r}"[:200])


def _ssl_context(value: object, what: str, side: str, make: str) -> None:
    """``value`` is None or an ``ssl.SSLContext``.  The core never imports ``ssl``: a value
    can only be a context if the program imported the module, so it is looked up, not
    imported.  ``ssl=True`` (which asyncio reads as "a default context") and a path to a
    certificate are refused here rather than failing every TLS dial or accept later."""
    from .errors import Incorrect

    if value is None:
        return
    module = sys.modules.get("ssl")
    if module is None or not isinstance(value, module.SSLContext):
        raise Incorrect(f"{what} is an ssl.SSLContext or None (a {side} context: {make}), "
                        f"not {value!r}"[:300])
    wrong = "server" if side == "client" else "client"
    if value.protocol == getattr(module, f"PROTOCOL_TLS_{wrong.upper()}"):
        raise Incorrect(f"{what} is a {wrong} context (PROTOCOL_TLS_{wrong.upper()}); it must be a {side} "
                        f"one: {make} (AcceptorOptions.ssl is the server's, NetworkOptions.ssl the dialer's)")


@dataclass(frozen=True)
class AcceptorOptions:
    """One listening port of a node.

    ``host`` defaults to the host part of the node's name; ``port`` is tried first, then the
    next ones up to ``port_range`` in all (0: an ephemeral port).  ``ssl`` is a server
    ``ssl.SSLContext`` (anything else is ``Incorrect``): every connection it accepts is TLS.  ``max_message_size`` and
    ``flags`` are what the node tells the peers that connect here (the largest frame it
    accepts from them, what it offers them); None: the network's own
    (``NetworkOptions``), which its dials tell.
    """

    host: str | None = None
    port: int = DEFAULT_PORT
    port_range: int = DEFAULT_PORT_RANGE
    ssl: Any = None
    max_message_size: int | None = None
    flags: int | None = None

    def __post_init__(self) -> None:
        from .errors import Incorrect

        if self.host is not None and (not isinstance(self.host, str) or not self.host):
            raise Incorrect(f"AcceptorOptions.host is a non-empty str or None, not {self.host!r}"[:200])
        if type(self.port) is not int or not 0 <= self.port <= 65535:
            raise Incorrect(f"AcceptorOptions.port is an int in 0..65535, not {self.port!r}"[:200])
        if type(self.port_range) is not int or not 1 <= self.port_range <= 65536:
            raise Incorrect(f"AcceptorOptions.port_range is an int >= 1, not {self.port_range!r}"[:200])
        if self.max_message_size is not None:
            _size(self.max_message_size, "AcceptorOptions.max_message_size")
        if self.flags is not None:
            _flags(self.flags, "AcceptorOptions.flags")
        _ssl_context(self.ssl, "AcceptorOptions.ssl", "server",
                     "ssl.create_default_context(ssl.Purpose.CLIENT_AUTH) with load_cert_chain(...)")


@dataclass
class NetworkOptions:
    """A node's network: give these to ``NodeOptions(network=...)`` and the node talks to others.

    ``mode``: "enabled" (listen, register with the host's registrar, dial out), "hidden"
    (dial out only: no acceptor, nothing registered, as Ergo's hidden mode) or
    "disabled".  ``cookie`` is the secret two nodes must share to connect.  None or ""
    (the default) means *none configured*: as Ergo does, the node then makes a random one
    when its network starts and logs a warning (:meth:`with_cookie`), so such a node
    accepts only peers given its cookie, never every peer that also left it empty.
    ``max_message_size`` is the largest frame this node accepts (0: no limit), and
    ``flags`` (:class:`NetworkFlags`) what it offers its peers; an acceptor may tell the
    peers it accepts otherwise (``AcceptorOptions``).
    ``pool_size`` is how many TCP links a connection to a peer has (the smaller wish of
    the two nodes).  ``acceptors``: where to listen (default: one acceptor on the node
    name's host, port 11144 or the next free one).  ``ssl`` is the client
    ``ssl.SSLContext`` used to dial peers whose route says TLS (anything else, ``True`` or
    a server context included, is ``Incorrect``).  A peer silent for
    ``heartbeat_timeout`` seconds is declared down; each link sends a heartbeat every
    ``heartbeat_interval`` seconds when it has nothing else to send (more often to a peer
    whose own timeout, told in the handshake, needs it).  ``registrar_port``:
    the port of the hosts' registrars; None means no registrar at all (static routes only,
    see ``Network.add_route``).  ``connect_timeout`` bounds a dial and its handshake.
    """

    mode: str = "enabled"  # enabled | hidden | disabled
    cookie: str | None = None
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    pool_size: int = 3
    acceptors: tuple[AcceptorOptions, ...] = ()
    flags: int = DEFAULT_NETWORK_FLAGS
    ssl: Any = None
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 5.0
    registrar_port: int | None = DEFAULT_REGISTRAR_PORT
    connect_timeout: float = 5.0

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """``Incorrect`` for an option of the wrong type or out of range (run when made, and
        again when a node starts with them: a dataclass's fields can be changed after it was
        made, and a field changed so reached the handshake or the heartbeats unchecked)."""
        from .errors import Incorrect

        if self.mode not in ("enabled", "hidden", "disabled"):
            raise Incorrect(f"NetworkOptions.mode must be enabled, hidden or disabled, not {self.mode!r}"[:200])
        if self.cookie is not None and not isinstance(self.cookie, str):
            raise Incorrect(f"NetworkOptions.cookie must be a str or None, not {type(self.cookie).__name__}")
        _size(self.max_message_size, "NetworkOptions.max_message_size")
        _flags(self.flags, "NetworkOptions.flags")
        if type(self.pool_size) is not int or not 1 <= self.pool_size <= 255:
            raise Incorrect(f"NetworkOptions.pool_size must be an int in 1..255, not {self.pool_size!r}"[:200])
        _ssl_context(self.ssl, "NetworkOptions.ssl", "client", "ssl.create_default_context()")
        acceptors = self.acceptors
        if isinstance(acceptors, AcceptorOptions):
            acceptors = self.acceptors = (acceptors,)
        if not isinstance(acceptors, (tuple, list)) or not all(isinstance(a, AcceptorOptions) for a in acceptors):
            raise Incorrect("NetworkOptions.acceptors is a tuple of AcceptorOptions")
        self.acceptors = tuple(acceptors)
        for name in ("heartbeat_interval", "heartbeat_timeout", "connect_timeout"):
            _seconds(getattr(self, name), f"NetworkOptions.{name}")
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise Incorrect(
                f"NetworkOptions.heartbeat_timeout ({self.heartbeat_timeout}) must be longer than "
                f"heartbeat_interval ({self.heartbeat_interval}): a live peer would be declared down"
            )
        port = self.registrar_port
        if port is not None and (type(port) is not int or not 1 <= port <= 65535):
            raise Incorrect(f"NetworkOptions.registrar_port is an int in 1..65535 or None, not {port!r}"[:200])

    def with_cookie(self, random: Callable[[int], bytes] = os.urandom) -> tuple[NetworkOptions, str | None]:
        """These options with a cookie the network can use, and the warning to log (or None).

        The network layer calls this when it starts.  Without a configured cookie the copy
        holds a random one (128 bits from ``random``, so a simulation can seed it) and the
        warning says so; the secret itself is never in the warning.  A configured cookie is
        kept and there is nothing to warn about.
        """
        if self.cookie:
            return self, None
        warning = ("cookie is empty (NetworkOptions.cookie): using a random one, which no other node knows, "
                   "so none can connect with this one: give the nodes that talk the same cookie")
        return replace(self, cookie=random(16).hex()), warning


@dataclass
class NodeOptions:
    env: Mapping[str, Any] = field(default_factory=dict)
    log: LogOptions = field(default_factory=LogOptions)
    #: None (the default): a local node, no network, as an Erlang node started without a
    #: name; NetworkOptions(...) makes it a networked one (Ergo enables the network by default)
    network: NetworkOptions | None = None
    #: applications (``ergo.Application`` instances) loaded and started, in this order,
    #: when the node starts; the first that fails stops the node and its start raises that error
    applications: Sequence[Application] = ()


@dataclass(frozen=True)
class Fallback:
    """Where a message goes when the receiver's mailbox is full: ``MessageFallback`` to ``name``."""

    name: Atom | str | PID
    tag: str = ""

    def __post_init__(self) -> None:
        from .errors import Incorrect

        if not (isinstance(self.name, PID) or (isinstance(self.name, str) and self.name)):
            raise Incorrect(f"a fallback is a registered name (non-empty str) or a PID, not {type(self.name).__name__}")
        if not isinstance(self.tag, str):
            raise Incorrect(f"a fallback's tag is a str, not {type(self.tag).__name__}")


class CompressionLevel(enum.IntEnum):
    """Ergo's compression levels (``gen.CompressionDefault``, ``...BestSpeed``, ``...BestSize``)."""

    DEFAULT = 0
    BEST_SPEED = 1
    BEST_SIZE = 2


@dataclass(frozen=True)
class CompressionOptions:
    """Compression of what a process sends over the network (Ergo's ``gen.Compression``).

    As Ergo's ``SetCompressionLevel`` / ``SetCompressionThreshold``: the level is one of
    :class:`CompressionLevel`, and the threshold (bytes) is at least
    ``DEFAULT_COMPRESSION_THRESHOLD``; anything else is ``Incorrect``.
    """

    enable: bool = False
    level: CompressionLevel | int = CompressionLevel.DEFAULT
    threshold: int = DEFAULT_COMPRESSION_THRESHOLD

    def __post_init__(self) -> None:
        from .errors import Incorrect

        if not isinstance(self.enable, bool):
            raise Incorrect(f"CompressionOptions.enable is a bool, not {self.enable!r}")
        if isinstance(self.level, bool) or not isinstance(self.level, int) or self.level not in _LEVELS:
            raise Incorrect(f"compression level {self.level!r} is not one of Ergo's: "
                            f"{', '.join(f'{v.value} ({v.name})' for v in CompressionLevel)}")
        object.__setattr__(self, "level", CompressionLevel(self.level))
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, int) or t < DEFAULT_COMPRESSION_THRESHOLD:
            raise Incorrect(f"compression threshold is an int >= {DEFAULT_COMPRESSION_THRESHOLD} bytes "
                            f"(Ergo's minimum), not {t!r}")


_LEVELS = frozenset(int(v) for v in CompressionLevel)


@dataclass
class ProcessOptions:
    """How to spawn a process (Ergo's gen.ProcessOptions)."""

    #: per-queue limit of the mailbox; 0 is unlimited.  A full queue refuses with
    #: ``MailboxFull``, or forwards to ``fallback`` when one is set.
    mailbox_size: int = 0
    fallback: Fallback | None = None
    #: the group leader; by default the parent's leader
    leader: PID | None = None
    env: Mapping[str, Any] = field(default_factory=dict)
    compression: CompressionOptions = field(default_factory=CompressionOptions)
    send_priority: MessagePriority = MessagePriority.NORMAL
    important_delivery: bool = False
    #: the new process links to its parent (it gets an exit signal when the parent dies)
    link_parent: bool = False
    #: the parent links to the new process
    link_child: bool = False
    log_level: LogLevel | str = LogLevel.DEFAULT

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """``Incorrect`` for a field of the wrong type or out of range (run when made, and
        again by ``spawn``: a dataclass's fields can be changed after it was made)."""
        from .errors import Incorrect

        size = self.mailbox_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            shown = size if isinstance(size, int) and not isinstance(size, bool) else type(size).__name__
            raise Incorrect(f"mailbox_size must be an int >= 0, not {shown}")
        if not isinstance(self.compression, CompressionOptions):
            raise Incorrect(f"compression must be CompressionOptions, not {type(self.compression).__name__}")
        if self.fallback is not None and not isinstance(self.fallback, Fallback):
            raise Incorrect(f"fallback must be a Fallback, not {type(self.fallback).__name__}")
        if self.leader is not None and not isinstance(self.leader, PID):
            raise Incorrect(f"leader must be a PID or None, not {type(self.leader).__name__}")
        if not isinstance(self.env, Mapping):
            raise Incorrect(f"env must be a mapping of names to values, not {type(self.env).__name__}")
        if not isinstance(self.compression, CompressionOptions):
            raise Incorrect(f"compression must be CompressionOptions, not {type(self.compression).__name__}")
        for flag in ("important_delivery", "link_parent", "link_child"):
            if not isinstance(getattr(self, flag), bool):
                raise Incorrect(f"{flag} must be a bool, not {type(getattr(self, flag)).__name__}")
        self.send_priority = MessagePriority.parse(self.send_priority)
        self.log_level = LogLevel.parse(self.log_level)


@dataclass(frozen=True)
class ProcessInfo:
    pid: PID
    name: Atom | None
    behavior: str
    state: Any  # ProcessState
    parent: PID
    leader: PID
    uptime: float
    mailbox_size: int
    #: messages waiting in each queue: urgent, system, main, log
    mailbox_queues: Mapping[str, int]
    messages_in: int
    messages_out: int
    running_time: float
    message_priority: MessagePriority
    trap_exit: bool
    env: Mapping[str, Any]
    aliases: tuple[Alias, ...]
    metas: tuple[Alias, ...]
    log_level: LogLevel
    important_delivery: bool
    compression: CompressionOptions
    fallback: Fallback | None
    links: tuple[Any, ...] = ()
    monitors: tuple[Any, ...] = ()
    events: tuple[Any, ...] = ()
    #: the application the process belongs to (a member, or spawned below one), or None
    application: Atom | None = None


@dataclass(frozen=True)
class MetaInfo:
    id: Alias
    parent: PID
    behavior: str
    state: Any  # ProcessState
    uptime: float
    mailbox_size: int
    mailbox_queues: Mapping[str, int]
    messages_in: int
    messages_out: int
    log_level: LogLevel


@dataclass(frozen=True)
class NodeInfo:
    name: Atom
    creation: int
    uptime: float
    version: str
    env: Mapping[str, Any]
    log_level: LogLevel
    loggers: tuple[str, ...]
    processes_total: int
    processes_running: int
    processes_zombee: int
    registered_names: int
    registered_aliases: int
    registered_events: int
    #: applications loaded (running or not) and running (Ergo's ApplicationsTotal/Running)
    applications_total: int = 0
    applications_running: int = 0


def _levels(filter: Iterable[LogLevel | str] | None) -> frozenset[LogLevel]:
    if filter is None:
        return frozenset(lv for lv in LogLevel if lv not in (LogLevel.DEFAULT, LogLevel.DISABLED))
    return frozenset(LogLevel.parse(lv) for lv in filter)

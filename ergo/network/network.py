"""A node's network stack: acceptors, connections, routes, and everything remote.

One :class:`Network` per node (``node.network()``), the same code on both backends: it sees
sockets only through the node's :class:`~ergo.transport.Transport` and time only through
its scheduler.  It makes messages to a remote process look like local ones: the node's
routing hands it whatever names another node (a PID, ProcessID or Alias of another node,
a link or monitor of one, a call's reply to a remote caller), and it hands the node what
arrives, as if a local process had sent it.

Links, monitors and events across nodes keep Ergo's semantics with one subscription per
watching *node*: the first local process that watches a remote target makes the watching
node subscribe (a Link or Monitor frame), the last one to stop unsubscribes, and the
target's node sends one Terminate frame per watching node, fanned out there to every
local watcher.  On the target's side the watching node is one consumer in the ordinary
pub/sub tables (:class:`RemoteConsumer`), so a remote watcher is told of everything a
local one is told of (a termination, an unregistered name, a deleted alias, an event).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any

from ..gen.application import ApplicationMode, ApplicationOptions
from ..gen.errors import (
    ErgoError,
    Incorrect,
    Malformed,
    NameUnknown,
    NoConnection,
    NoRoute,
    NotAllowed,
    ProcessIncarnation,
    Taken,
    Timeout,
    TooLarge,
    Unsupported,
)
from ..gen.ids import PID, Alias, Atom, Event, ProcessID, Ref
from ..gen.messages import MessageEvent
from ..gen.options import CompressionOptions, Fallback, NetworkFlags, NetworkOptions, ProcessOptions
from ..gen.types import LogLevel, MessagePriority
from ..node.runner import _QUEUE_OF_PRIORITY, MSG, REQUEST, TERMINATED
from ..scheduler import Future, TimerHandle
from ..transport import Stream, Transport
from ..wire import edf, handshake
from ..wire import enp as _enp
from ..wire._brief import brief_error
from ..wire.edf import RemoteError
from ..wire.registrar import Route
from .connection import DIALING, DOWN, UP, Connection, Link
from .registrar import EsrdRegistrar
from .throttle import Repeats, Throttle

if TYPE_CHECKING:
    from ..node.node import Node
    from ..node.process import Process
    from ..node.runner import Runner

__all__ = ["Network", "NetworkRoute", "RemoteConsumer", "RemoteNode"]

#: the ENP module, its frame classes untyped: ``enp._frame`` makes them at import time, in a
#: way mypy cannot follow (it would see no fields to construct them with)
enp: Any = _enp

#: accepted streams whose handshake is in progress that a node keeps; one more drops the oldest
MAX_HANDSHAKES = 128
#: dials (resolve, connect, handshake) a node runs at once; the others wait their turn,
#: in order: each holds a socket (and while resolving, a UDP port of its own), and the
#: names dialed are whatever the node's processes send to, which a peer may choose
MAX_DIALS = 256
#: dials a node keeps waiting for a turn beyond the MAX_DIALS running; one more fails at
#: once with ``TooLarge``: each waiting dial holds its connection and up to 4 MiB of frames
#: queued for it, and the names are whatever the node's processes send to.  A legitimate
#: burst (a node dialing a whole cluster at start) stays far below it
MAX_DIALS_WAITING = 4096
#: refused connections logged one by one each second at most; the others are counted
REFUSALS_LOGGED = 100
#: seconds between two lines about failed dials to one peer: the first failure is logged at
#: once, the next ones at most once in this time, counting those held back.  A dial is made
#: on a send to a peer that is not connected, so a service that keeps sending to a peer that
#: is gone logged a warning per send (36,000 an hour at ten sends a second)
DIAL_FAILURE_LINES_EVERY = 10.0
#: peers whose failed dials are remembered for that at once (the names are whatever the
#: node's processes send to); one more forgets the one logged longest ago
MAX_DIAL_FAILURE_PEERS = 1024
#: lines about failed dials (to any peers) logged one by one each second at most; the
#: others are counted: the names are whatever the node's processes send to, which a peer
#: can choose (the PIDs in its messages), and each new name was a line of its own
DIAL_FAILURES_LOGGED = 100
#: seconds between two lines about the same refusal (one host, one name, one reason): a
#: node given the wrong cookie dials at each of its sends, and each was a line here
REFUSAL_REPEATS_EVERY = 10.0
#: refusals remembered for that at once; one more forgets the one logged longest ago
MAX_REFUSAL_REPEATS = 1024
#: calls from one peer's processes that this node's processes owe an answer at once; one
#: more forgets the oldest (see Network._on_request, _forget_oldest)
MAX_OWED_CALLS = 65536
#: Links/Monitors per peer whose answer nothing waits for any more (see Network.watch):
#: one more forgets the oldest (a peer that never answers them made this node keep each)
MAX_ORPHANS = 1024
#: seconds a request waits for the peer's answer (Ergo's DefaultRequestTimeout): the
#: acknowledgement of an important send, the answer to a Link or Monitor, a remote spawn or
#: a remote application start (see Network._await_answer)
REQUEST_TIMEOUT = 5.0
#: the shortest heartbeat interval a peer's heartbeat_timeout (told in the handshake) can
#: make this node keep on its links: a peer saying a millisecond would have it write
#: heartbeats without pause
MIN_PEER_HEARTBEAT_INTERVAL = 0.1

_PRIORITY = {MessagePriority.NORMAL: 0, MessagePriority.HIGH: 1, MessagePriority.MAX: 2}
_PRIORITY_OF = {v: k for k, v in _PRIORITY.items()}
_NORMAL = MessagePriority.NORMAL
_SEND_PID = enp.SendPID
_SENDS = enp.Sends
_SEND_RUN = enp.SendRun
_REQUEST_PID = enp.RequestPID
_RESPONSE = enp.Response
#: a mailbox queue (what pub/sub hands a consumer) -> the ENP priority it came from
_PRIORITY_OF_QUEUE = {q: _PRIORITY[p] for p, q in _QUEUE_OF_PRIORITY.items()}
_TERMINATE = {PID: enp.TerminatePID, ProcessID: enp.TerminateProcessID, Alias: enp.TerminateAlias,
              Event: enp.TerminateEvent}
_SEND = {PID: enp.SendPID, ProcessID: enp.SendProcessID, Alias: enp.SendAlias}
_REQUEST = {PID: enp.RequestPID, ProcessID: enp.RequestProcessID, Alias: enp.RequestAlias}


@dataclass(frozen=True)
class NetworkRoute:
    """Where to dial a node, given by hand (``Network.add_route``) instead of asked of a registrar."""

    host: str
    port: int
    tls: bool = False
    #: the cookie the dials through this route prove (Ergo's ``NetworkRoute.Cookie``);
    #: None or "": the node's own (``NetworkOptions.cookie``)
    cookie: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise Incorrect(f"NetworkRoute.host is a non-empty str, not {self.host!r}"[:200])
        if type(self.port) is not int or not 1 <= self.port <= 65535:
            raise Incorrect(f"NetworkRoute.port is an int in 1..65535, not {self.port!r}"[:200])
        if type(self.tls) is not bool:
            raise Incorrect(f"NetworkRoute.tls is a bool, not {self.tls!r}"[:200])
        if self.cookie is not None and not isinstance(self.cookie, str):
            raise Incorrect(f"NetworkRoute.cookie is a str or None (the node's own), not {type(self.cookie).__name__}")


class RemoteConsumer:
    """A peer node as a consumer of this node's pub/sub: what a local process is told, it
    is sent (see the module's docstring).  Quacks as much like a process as pub/sub asks."""

    def __init__(self, network: Network, conn: Connection) -> None:
        self.network = network
        self.conn = conn
        self._pid = PID(conn.name, 1, conn.creation)  # the peer's core: it stands for all its processes
        self._linked: dict[Any, None] | None = None
        self._monitored: dict[Any, None] | None = None
        self._state = 0  # below TERMINATED: pub/sub tells it
        #: (link?, target) -> how many Link/Monitor frames the peer sent for it, less its
        #: Unlink/Demonitor frames: they may cross on different links of the pool (the last
        #: watcher there leaves and another comes), so they are counted, not just applied
        self.watches: dict[tuple[bool, Any], int] = {}

    def _describe(self) -> str:
        return f"node {_text(self.conn.name)}"

    def _push_signal(self, queue: int, item: tuple[Any, ...]) -> None:
        message = item[3]
        target, reason = getattr(message, message.__slots__[0]), getattr(message, "reason", None)
        watches = self.watches  # the target is gone, and with it the peer's watches of it
        watches.pop((True, target), None)
        watches.pop((False, target), None)
        frame = _TERMINATE.get(type(target))
        if frame is None or reason is None:
            return
        # on the link of the process that ended (``item[1]``), behind what it sent before
        # (Erlang's order of signals between two processes); order 0 took the pool's first link
        source = item[1]
        order = enp.order_key(source) if type(source) is PID and source.node == self.network._node._name else 0
        # never raises: this runs in the middle of telling every watcher of the target, local
        # ones included, of its end (a reason too large for the peer once stopped it there)
        self.network.send_notice(self.conn, lambda why: frame(target, why), reason, order)

    def _push(self, queue: int, item: tuple[Any, ...]) -> None:
        m: MessageEvent = item[3]
        # the producer's priority travels with the event (it was always sent as normal)
        self.network.send_frame(self.conn, enp.SendEvent(item[1], m.event, m.timestamp, m.message,
                                                         _PRIORITY_OF_QUEUE.get(queue, 0)),
                                enp.order_key(item[1]))

    def _push_main(self, item: tuple[Any, ...]) -> None:  # pragma: no cover - pub/sub never sends it plain messages
        self._push(0, item)


class RemoteNode:
    """A connected peer (Ergo's ``gen.RemoteNode``): ``node.network().node(name)``.

    It stands for one connection, as Ergo's does: once that connection is down (lost,
    disconnected, the peer restarted), the handle stays so even when the node is connected
    again (``is_connected()`` False, ``info()["state"]`` "down", ``creation`` the run it
    reached), its ``spawn`` and ``application_start`` fail with ``NoConnection`` saying so,
    and its ``disconnect()`` does nothing (a newer connection is not this handle's).
    ``network().node(name)`` or ``get_node(name)`` gives the current connection's."""

    def __init__(self, network: Network, conn: Connection) -> None:
        self._network = network
        self._conn = conn

    @property
    def name(self) -> Atom:
        return self._conn.name

    @property
    def creation(self) -> int:
        return self._conn.creation

    @property
    def uptime(self) -> float:
        """Seconds since this connection came up."""
        if self._conn.state is not UP:
            return 0.0
        return self._network.scheduler.now() - self._conn.since

    def is_connected(self) -> bool:
        return self._conn.state is UP

    def info(self) -> dict[str, Any]:
        return self._network.peer_info(self._conn)

    def spawn(self, name: str, *args: Any, options: ProcessOptions | None = None) -> Future[PID]:
        """Spawn the factory the peer enabled as ``name`` (``enable_spawn``) there; the
        future gets its PID, or ``NotAllowed`` if the peer does not offer ``name`` to this node."""
        return self._network.remote_spawn(self._conn, name, None, args, options)

    def spawn_register(self, register: str, name: str, *args: Any,
                       options: ProcessOptions | None = None) -> Future[PID]:
        """``spawn``, and register the new process as ``register`` on the peer."""
        if not isinstance(register, str) or not register:
            raise Incorrect(f"a name to register is a non-empty str, not {register!r}"[:200])
        return self._network.remote_spawn(self._conn, name, register, args, options)

    def application_start(self, name: str, options: ApplicationOptions | None = None) -> Future[None]:
        """Start the application ``name`` loaded on the peer, which enabled it for this node
        (``enable_application_start``), in its spec's mode.  The future completes once it
        runs there, or fails with what the start raised (``NotAllowed`` if not enabled,
        ``ApplicationUnknown``, ``ApplicationRunning``, ``ApplicationDepends``, ...)."""
        return self._network.remote_application_start(self._conn, name, 0, options)

    def application_start_temporary(self, name: str, options: ApplicationOptions | None = None) -> Future[None]:
        """``application_start`` in temporary mode."""
        return self._network.remote_application_start(self._conn, name, 1, options)

    def application_start_transient(self, name: str, options: ApplicationOptions | None = None) -> Future[None]:
        """``application_start`` in transient mode."""
        return self._network.remote_application_start(self._conn, name, 2, options)

    def application_start_permanent(self, name: str, options: ApplicationOptions | None = None) -> Future[None]:
        """``application_start`` in permanent mode."""
        return self._network.remote_application_start(self._conn, name, 3, options)

    def disconnect(self) -> None:
        """Close the connection (everything watching the peer is told ``NoConnection``);
        nothing if it is down already (a newer connection to the node is left alone)."""
        if self._conn.state is UP:
            error = NoConnection(f"the connection to {_text(self._conn.name)} was closed by "
                                 f"{_text(self._network._node._name)} (RemoteNode.disconnect)")
            self._network.connection_down(self._conn, error, graceful=True)

    def __repr__(self) -> str:
        return f"<RemoteNode {_text(self._conn.name)} {self._conn.state}>"


class Network:
    """The network stack of one node; made by the node when its options ask for one."""

    def __init__(self, node: Node, transport: Transport, options: NetworkOptions) -> None:
        self._node = node
        self.transport = transport
        self.scheduler = node._scheduler
        #: whether the scheduler has fault points that may fire (simulation's buggify; see
        #: Scheduler.may_buggify): a link's write asks only when they may (two calls a write saved)
        self.faults = self.scheduler.may_buggify
        #: ``self.deliver``, bound once: a link hands each read's frames to it
        self.deliver_call = self.deliver
        rng = self.scheduler.random
        self.random_bytes: Callable[[int], bytes] = lambda n: rng.getrandbits(8 * n).to_bytes(n, "big")
        options, warning = options.with_cookie(self.random_bytes)
        self.options = options
        self.cookie: str = options.cookie  # type: ignore[assignment]  # with_cookie made one
        self._cookie_made = warning is not None  # none was configured: a wrong-cookie refusal says so
        self.mode = options.mode
        self.registry = edf.DEFAULT
        #: what this node tells the peers it dials (an acceptor may tell its own: _acceptor_info)
        self.hs_info = handshake.NodeInfo(
            name=_text(node._name), creation=node._creation, max_message_size=options.max_message_size,
            pool_size=options.pool_size, flags=int(options.flags),
            heartbeat_timeout=min(int(options.heartbeat_timeout * 1000), handshake._MAX_HEARTBEAT_TIMEOUT),
        )
        #: the node's logger (its lines name the node), what peers say in them escaped
        self.log = node._runtime_log
        if warning:
            self.log.warning("%s", warning)
        self._connections: dict[str, Connection] = {}  # up, by peer name
        self._pending: dict[str, Connection] = {}  # being dialed or accepted, not up yet
        #: peer name -> the latest creation a PID claimed for it that took its connection down
        #: (see _check_creation); checked against the creation of the next connection
        self._claims: dict[str, int] = {}
        #: the live mappings the handshake's Acceptor reads
        self.connection_ids: dict[str, str] = {}
        self.dialing: set[str] = set()
        #: dials running (their resolve or connect started: ``Connection.dial_slot``), at
        #: most MAX_DIALS; the connections waiting for a turn, oldest first
        self._dials = 0
        self._dials_waiting: dict[Connection, None] = {}
        self._dials_next = False
        #: the names whose connection waits for an accepted handshake past its introduction
        self.accepting = _Accepting(self._pending)
        self._listeners: list[Any] = []
        #: what each acceptor tells its peers, in the order of _listeners
        self._acceptor_infos: list[handshake.NodeInfo] = []
        self._routes: list[tuple[str, re.Pattern[str], NetworkRoute, int]] = []
        self._spawnable: dict[str, tuple[Callable[..., Any], frozenset[str] | None]] = {}
        #: applications remote nodes may start here: name -> the nodes allowed (None: all)
        self._startable: dict[str, frozenset[str] | None] = {}
        self._consumers: dict[str, RemoteConsumer] = {}
        #: links whose handshake has not ended yet, in the order they began (a dict, not a
        #: set: a node's stop aborts them in this order, the same in every run of a seed)
        #: (each with the timer that bounds it, cancelled when the handshake ends: a pending
        #: timer held the link, its stream and its codec's buffers for connect_timeout after
        #: the handshake, a peer restarting in a loop made them pile up)
        self._handshaking: dict[Link, TimerHandle] = {}
        #: the accepted ones among them, oldest first: at most MAX_HANDSHAKES (see handshake_started)
        self._accepted_handshakes: dict[Link, None] = {}
        #: the lines about refused accepted connections (_log_refusal)
        self._refusals = Throttle(self.scheduler, REFUSALS_LOGGED, self._refusals_told)
        #: failed dials, by peer name (see _log_dial_failure)
        self._dial_failures = Repeats(self.scheduler, DIAL_FAILURE_LINES_EVERY, MAX_DIAL_FAILURE_PEERS)
        #: and the lines about them, whatever the peer (see _log_dial_failure)
        self._dial_failure_lines = Throttle(self.scheduler, DIAL_FAILURES_LOGGED, self._dial_failures_told)
        #: refusals of accepted connections, by the peer's address, name and reason (see _log_refusal)
        self._refusal_repeats = Repeats(self.scheduler, REFUSAL_REPEATS_EVERY, MAX_REFUSAL_REPEATS)
        #: (sender PID, peer name, its process, connection, link) of the last plain send to a PID (see send)
        self._last_send: tuple[Any, ...] | None = None
        self._registrar: Any = None
        #: the registration with the host's registrar, once started (None: no registrar)
        self.registration: Future[None] | None = None
        self._stopped = False
        #: set by a graceful stop: why the handshakes still in progress are refused (see stop)
        self.stopped_why: str | None = None
        self.started = self.scheduler.now()

    # -- starting and stopping ----------------------------------------------------------

    def start(self) -> None:
        """Listen (mode "enabled") and register with the host's registrar."""
        host = _text(self._node._name).split("@", 1)[1]
        routes: list[Route] = []
        if self.mode == "enabled":
            from ..gen.options import AcceptorOptions

            for acceptor in self.options.acceptors or (AcceptorOptions(),):
                info = self._acceptor_info(acceptor)
                listener = self._listen(acceptor.host or host, acceptor, self._accepts(info))
                self._acceptor_infos.append(info)
                self._listeners.append(listener)
                bound_host, port = listener.address
                routes.append(Route(acceptor.host or host, port, acceptor.ssl is not None))
                self.log.info("network: accepting connections on %s:%d%s", bound_host, port,
                              " (TLS)" if acceptor.ssl is not None else "")
        elif self.options.acceptors:  # hidden: said, rather than ignored without a word (as Ergo does)
            n = len(self.options.acceptors)
            self.log.warning("network: %s is hidden: the %d acceptor%s of NetworkOptions.acceptors %s not started "
                             "(a hidden node only dials out)", _text(self._node._name), n, "" if n == 1 else "s",
                             "is" if n == 1 else "are")
        if self.options.registrar_port is not None:
            self._start_registrar(host, tuple(routes), self.options.registrar_port)

    def _accepts(self, info: handshake.NodeInfo) -> Callable[[], Link]:
        """The protocol factory of an acceptor that tells its peers ``info``."""
        return lambda: Link(self, None, dialer=False, info=info)

    def _acceptor_info(self, acceptor: Any) -> handshake.NodeInfo:
        """What this node tells the peers that connect through ``acceptor``."""
        info = self.hs_info
        if acceptor.max_message_size is not None:
            info = dataclasses.replace(info, max_message_size=acceptor.max_message_size)
        if acceptor.flags is not None:
            info = dataclasses.replace(info, flags=int(acceptor.flags))
        return info

    def _listen(self, host: str, acceptor: Any, factory: Callable[[], Link]) -> Any:
        port, last = acceptor.port, acceptor.port + acceptor.port_range - 1
        while True:
            try:
                listener = self.transport.listen(host, port, factory, ssl=acceptor.ssl)
                listener.on_refused = self._refused_by_transport
                return listener
            except Taken:
                if port == 0 or port >= min(last, 65535):
                    name = _text(self._node._name)
                    raise Taken(f"no free port for {name} in {acceptor.port}..{last} on {host}") from None
                port += 1

    def _start_registrar(self, host: str, routes: tuple[Route, ...], port: int) -> None:
        self._registrar = EsrdRegistrar(self.scheduler, self.transport, host, port=port, log=self.log)
        if not routes:  # hidden: nothing to register (as Ergo), the registrar only resolves
            return
        self.registration = self._registrar.register(_text(self._node._name), routes)
        self.registration._on_done(self._registered)

    def _registered(self, f: Future[None]) -> None:
        if f._exception is not None and not self._stopped:
            self.log.error("network: registration of %s with the registrar failed: %s", self._node._name,
                           f._exception)
            if isinstance(f._exception, Taken):  # the name belongs to another node: this one cannot run
                self._node.stop()

    def stop(self, graceful: bool = True) -> None:
        """Close every connection and listener and unregister (the node is stopping).
        ``graceful``: what is queued for the peers is sent before a FIN; otherwise the
        connections are reset and the peers see them lost (``Node.stop_force``)."""
        if self._stopped:
            return
        self._stopped = True
        for listener in self._listeners:
            listener.close()
        self._listeners = []
        for conn in self._connections.values() if graceful else ():
            # what the processes' ends queued (Terminate frames, failed calls) goes out first,
            # then a FIN: a peer hears the real reasons, not a reset (connection_down spares
            # a closing stream)
            conn.close()
        if graceful:
            # the handshakes in progress (a pool's links, a dial, a peer's dial) are refused
            # in words, HandshakeTruncated saying the node stopped, then closed: a reset left
            # the peer a handshake cut short, which it logs as it does a probe's, as a warning.
            # After the connections' own last frames, which carry the real reasons.
            self.stopped_why = f"node {_text(self._node._name)} stopped"
            for link in list(self._handshaking):
                hs = link.hs
                if not link.dialer and hs is not None and hs.state == "wait_ready":
                    # its ACCEPT went out: the dialer may have answered READY and be done, and
                    # a REFUSE would reach it as a late refusal, taking its connection down
                    # before the frames of the other links came.  Closed as a link of the pool is.
                    link.close()
                else:
                    self._end_handshake(link, self.stopped_why)
        handshaking, self._handshaking = self._handshaking, {}
        self._accepted_handshakes = {}
        for link, timer in handshaking.items():  # not connections yet: nothing depends on them
            timer.cancel()
            if link.stream is not None:
                link.stream.abort()
        for conn in list(self._connections.values()) + list(self._pending.values()):
            self.connection_down(conn, NoConnection(f"node {_text(self._node._name)} stopped"))
        if self._registrar is not None:
            self._registrar.close()

    # -- routes ---------------------------------------------------------------------------

    def add_route(self, match: str, route: NetworkRoute, weight: int = 0) -> None:
        """Dial nodes whose name matches the regular expression ``match`` at ``route``,
        without asking a registrar; of several matching routes the heaviest is taken."""
        if not isinstance(match, str) or not match:
            raise Incorrect(f"a route's match is a non-empty regular expression, not {match!r}"[:200])
        if not isinstance(route, NetworkRoute):
            raise Incorrect(f"a route is a NetworkRoute, not {type(route).__name__}")
        if type(weight) is not int:
            raise Incorrect(f"a route's weight is an int, not {weight!r}"[:200])
        if any(m == match for m, _, _, _ in self._routes):
            raise Taken(f"a route for {match!r} exists already")
        try:
            pattern = re.compile(match)
        except re.error as e:
            raise Incorrect(f"a route's match is a regular expression: {e}") from None
        self._routes.append((match, pattern, route, weight))
        self._routes.sort(key=lambda r: -r[3])

    def remove_route(self, match: str) -> None:
        """Remove the route added for ``match``; ``NoRoute`` if there is none."""
        if not isinstance(match, str) or not match:
            raise Incorrect(f"a route's match is a non-empty regular expression, not {match!r}"[:200])
        for i, r in enumerate(self._routes):
            if r[0] == match:
                del self._routes[i]
                return
        raise NoRoute(f"no route for {match!r}")

    def routes(self) -> list[tuple[str, NetworkRoute, int]]:
        return [(m, r, w) for m, _, r, w in self._routes]

    def _resolve(self, name: str) -> Future[tuple[NetworkRoute, ...]]:
        fut: Future[tuple[NetworkRoute, ...]] = Future()
        for _, pattern, route, _ in self._routes:
            if pattern.search(name):
                fut.set_result((route,))
                return fut
        if self._registrar is None:
            fut.set_exception(NoRoute(f"no route to {name}: no static route matches and there is no registrar"))
            return fut
        resolving = self._registrar.resolve(name)

        def done(f: Future[Any]) -> None:
            if f._exception is not None:
                fut.set_exception(f._exception)
            else:
                fut.set_result(tuple(NetworkRoute(r.host, r.port, r.tls) for r in f._result))

        def given_up(f: Future[Any]) -> None:
            # completed by the dial that gave up on it: so is the registrar's (which frees
            # the query's UDP port if nobody else waits for it)
            if not resolving.done():
                resolving.set_exception(f._exception or NoConnection(f"the resolve of {name} was given up"))

        resolving._on_done(done)
        fut._on_done(given_up)
        return fut

    # -- connections ----------------------------------------------------------------------

    def connection(self, name: Any) -> Connection:
        """The connection to ``name``, dialed if there is none (frames sent meanwhile wait)."""
        if self._stopped:
            raise NoConnection(f"node {_text(self._node._name)} is stopping: its network is closed")
        key = _text(name)
        conn = self._connections.get(key)
        if conn is not None:
            return conn
        conn = self._pending.get(key)
        if conn is not None:
            return conn
        conn = self._dial(key)
        if conn.state is DOWN and conn.error is not None:  # failed before it began (no route, ...)
            raise conn.error
        return conn

    def connect(self, name: Any) -> Future[RemoteNode]:
        """The peer ``name``, connected (dialed if needed)."""
        name = _node_name(name)  # a name that is none raises here, at the call (Incorrect)
        fut: Future[RemoteNode] = Future()
        try:
            conn = self.connection(name)
        except ErgoError as e:
            fut.set_exception(e)
            return fut
        if conn.state is UP:
            fut.set_result(RemoteNode(self, conn))
        else:
            def up(c: Connection | None, err: BaseException | None) -> None:
                if err is not None or c is None:
                    fut.set_exception(err or NoConnection(f"no connection to {name}"))
                else:
                    fut.set_result(RemoteNode(self, c))

            conn.on_up.append(up)
        return fut

    def _dial(self, name: str) -> Connection:
        # a name that is none (a PID's or ProcessID's node is whatever the caller made) is
        # the caller's mistake, raised before anything waits for it: a pending connection
        # left behind had the next call to it wait out connect_timeout for nothing
        _node_name(name)
        if name == _text(self._node._name):
            raise NotAllowed(f"node {name} cannot connect to itself")
        # no registrar and no static route: the failure is known at once, without a turn
        known = self._registrar is None and not any(pattern.search(name) for _, pattern, _, _ in self._routes)
        if not known and self._dials >= MAX_DIALS and len(self._dials_waiting) >= MAX_DIALS_WAITING:
            # refused before anything is made for it: the dials that wait keep their turn
            # and the frames queued for them
            error = TooLarge(f"cannot dial {name}: {MAX_DIALS} dials run and {len(self._dials_waiting)} wait for "
                             f"a turn, the most a node keeps waiting (MAX_DIALS_WAITING); try again once "
                             f"dials end (each ends within connect_timeout)")
            self._log_dial_failure(name, error)
            raise error
        conn = Connection(self, Atom(name))
        self._pending[name] = conn
        self.dialing.add(name)
        if known:  # (connection() raises it, logged as a failed dial)
            self._dial_route(conn, self._resolve(name))
            return conn
        # (the timer counts from the send: a dial that waits for its turn has the rest of it)
        conn.timer = self.scheduler.call_later(self.options.connect_timeout, self._dial_timeout, conn)
        if self._dials < MAX_DIALS:
            self._dial_start(conn)
        else:
            self._dials_waiting[conn] = None
        return conn

    def _dial_start(self, conn: Connection) -> None:
        """``conn``'s dial takes one of the MAX_DIALS turns: resolve, then connect."""
        conn.dial_slot = True
        self._dials += 1
        try:
            routes = self._resolve(_text(conn.name))
        except ErgoError as e:  # the registrar refused the question outright: that is the dial's end
            self._dial_failed(conn, e)
            return
        conn.resolving = routes
        routes._on_done(lambda f: self._dial_route(conn, f) if conn.resolving is f else None)

    def _dial_over(self, conn: Connection) -> None:
        """``conn``'s dial ended (up, failed, or the peer's own dial kept): its turn goes
        to the next waiting one, on the scheduler's next turn (not inside this one's end).
        (Its name leaves ``dialing`` at the caller: only while ``conn`` is the name's dial.)"""
        self._dials_waiting.pop(conn, None)  # (ended while it waited: timed out, the peer dialed us)
        resolving, conn.resolving = conn.resolving, None
        if resolving is not None and not resolving.done():
            # a resolve still in flight is given up (its UDP port freed), as a connect is: a
            # dial that timed out left it waiting out its own timeout, a socket for each
            resolving.set_exception(NoConnection(f"the dial of {_text(conn.name)} ended"))
        if conn.dial_slot:
            conn.dial_slot = False
            self._dials -= 1
            if self._dials_waiting and not self._dials_next:
                self._dials_next = True
                self.scheduler.call_soon(self._next_dials)

    def _next_dials(self) -> None:
        self._dials_next = False
        waiting = self._dials_waiting
        while waiting and self._dials < MAX_DIALS:
            conn = next(iter(waiting))
            del waiting[conn]
            self._dial_start(conn)  # (one that ended while it waited left the queue then: _dial_over)

    def _dial_route(self, conn: Connection, routes: Future[tuple[NetworkRoute, ...]]) -> None:
        if conn.state is not DIALING:
            return
        if routes._exception is not None:
            self._dial_failed(conn, routes._exception)
            return
        route = conn.route = routes._result[0]  # the pool's joins dial it too
        conn.cookie = route.cookie or None  # and prove the same cookie
        ssl = None
        if route.tls:
            ssl = self.options.ssl
            if ssl is None:
                self._dial_failed(conn, NoConnection(
                    f"{_text(conn.name)} accepts TLS only and NetworkOptions.ssl (a client SSLContext) is not set"))
                return
        try:
            attempt = self.transport.connect(route.host, route.port, lambda: Link(self, conn, dialer=True), ssl=ssl)
        except ErgoError as e:
            self._dial_failed(conn, e)
            return
        conn.attempt = attempt

        def done(f: Future[Any]) -> None:
            # an attempt ended on purpose (the peer's connection kept, or ours given up) is
            # no longer the connection's: its failure is not the connection's
            if f._exception is not None and conn.attempt is attempt:
                self._dial_failed(conn, f._exception if isinstance(f._exception, ErgoError)
                                  else NoConnection(str(f._exception)))

        attempt._on_done(done)

    def _dial_timeout(self, conn: Connection) -> None:
        conn.timer = None
        if conn.state is DIALING:
            self._dial_failed(conn, Timeout(f"no connection to {_text(conn.name)} within "
                                            f"{self.options.connect_timeout} s (NetworkOptions.connect_timeout)"))

    def _dial_failed(self, conn: Connection, error: BaseException) -> None:
        if conn.state is not DIALING:
            return
        if not isinstance(error, ErgoError):
            error = NoConnection(str(error))
        self._log_dial_failure(_text(conn.name), error)
        self.connection_down(conn, error)

    def _log_dial_failure(self, name: str, error: BaseException) -> None:
        """Log a failed dial to ``name``, unless one was logged less than
        ``DIAL_FAILURE_LINES_EVERY`` seconds ago: then it is counted, and the next line (or
        the line saying the peer is connected again) tells how many were not logged."""
        allowed = self._dial_failures.allow(name)
        if allowed is not None and self._dial_failure_lines.allow():
            # (and at most DIAL_FAILURES_LOGGED such lines a second whatever the names,
            # the others told in one line: see _dial_failures_told)
            self.log.warning("network: cannot connect to %s: %s%s", name, error,
                             _held_back(allowed, "failed", DIAL_FAILURE_LINES_EVERY))

    def _dial_failures_told(self, count: int) -> None:
        if not self._stopped:
            self.log.warning("network: %d more dials failed (more than %d a second are not logged one by one)",
                             count, DIAL_FAILURES_LOGGED)

    def _join(self, conn: Connection) -> None:
        """Dial one more link of ``conn``'s pool, on the route its first link took (as Ergo
        redials the addresses the acceptor gave: no resolve, so a pool fills while the
        peer's registrar is away, and every link reaches the run the first one did)."""
        route = conn.route
        if route is None:  # (set by the dial of the first link, which this node made)
            return
        ssl = self.options.ssl if route.tls else None
        try:
            conn.joins.append(self.transport.connect(
                route.host, route.port, lambda: Link(self, conn, dialer=True, join=conn.connection_id), ssl=ssl))
        except ErgoError:
            pass

    # -- the handshake's outcome (called by Link) -------------------------------------------

    def handshake_started(self, link: Link) -> None:
        # Every link's handshake is bounded, a dialed one's too: a dial's own timer fails the
        # connection but never closed its stream, and a join has no such timer; a peer (or
        # any port a route names) that accepts and then says nothing kept each for ever,
        # one more at every dial
        self._handshaking[link] = self.scheduler.call_later(
            self.options.connect_timeout, self._handshake_timeout, link, link.hs)
        if not link.dialer:
            accepted = self._accepted_handshakes
            accepted[link] = None
            if len(accepted) > MAX_HANDSHAKES:
                # Anyone who can reach the port can open streams that never finish a
                # handshake, each held until the connect timeout: at most MAX_HANDSHAKES
                # are, and a new one drops the oldest (as a full backlog would, but the
                # flood has to outpace a real peer's round trip, not just fill the backlog)
                oldest = next(iter(accepted))
                self._end_handshake(oldest, f"{MAX_HANDSHAKES} handshakes in progress: the oldest is dropped")

    def _handshake_timeout(self, link: Link, hs: Any) -> None:
        """A stream still handshaking after the connect timeout (a peer that sent half a
        message, or nothing): refused and closed, so it cannot hold the stream for ever."""
        if link.hs is hs:
            self._end_handshake(link, f"no complete handshake within {self.options.connect_timeout} s "
                                      "(NetworkOptions.connect_timeout)")

    def _end_handshake(self, link: Link, why: str) -> None:
        """Refuse and close a stream whose handshake has not ended, saying ``why``."""
        hs = link.hs
        self._accepted_handshakes.pop(link, None)
        if hs is None or link.lost or hs.done:
            return
        events = hs.abort(handshake.HandshakeTruncated(why))
        link._write_handshake()  # the REFUSE saying why
        link.hs = None
        self.handshake_refused(link, hs, events[0] if events else None)

    def handshake_introduced(self, link: Link, hs: Any) -> None:
        """An accepted link's handshake took the peer's introduction (READY is still to
        come).  From now on the peer counts as being connected, as Erlang's net_kernel
        marks it pending: a send to it waits for this handshake instead of dialing (a dial
        now would make a second connection, and frames of one sender could take both), and
        a dial of ours to it, crossed and losing (``hs.crossed``), ends here."""
        name = hs.peer_name
        old = self._connections.get(name)
        if old is not None:  # the handshake let it in: a later run of the peer (see stale)
            self.connection_down(old, NoConnection(
                f"{name} started again (creation {hs.peer_creation}): the connection to its run of "
                f"creation {old.creation} is gone"))
        conn = self._pending.get(name)
        if conn is not None and conn.state is DIALING and conn.accepting is None:
            self._end_own_dial(conn)
        else:  # (a second introduction from one name is refused by the handshake: see accepting)
            conn = self._pending[name] = Connection(self, Atom(name))
        conn.accepting = link

    def stale(self, name: str, creation: int) -> bool:
        """Whether the connection to ``name`` is to a run earlier than one of ``creation``:
        the peer was restarted and this node has not noticed yet (its heartbeats would,
        within their timeout).  Erlang replaces such a connection too."""
        conn = self._connections.get(name)
        return conn is not None and conn.creation < creation

    def _end_own_dial(self, conn: Connection) -> None:
        """Our dial of ``conn`` loses to the peer's: its attempt stops, its links close
        (they never joined the pool, so their loss says nothing), its timer ends; what was
        queued on ``conn`` waits for the peer's connection."""
        self.dialing.discard(_text(conn.name))
        self._dial_over(conn)
        dialing, conn.attempt = conn.attempt, None
        for own in list(conn.links):
            own.close()
        conn.links = []
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        if dialing is not None and not dialing.done():
            dialing.set_exception(NoConnection("ended: the peer's connection to this node is kept"))

    def _handshake_ended(self, link: Link) -> None:
        timer = self._handshaking.pop(link, None)
        if timer is not None:
            timer.cancel()
        self._accepted_handshakes.pop(link, None)

    def handshake_accepted(self, link: Link, hs: Any, accepted: handshake.Accepted) -> None:
        self._handshake_ended(link)
        if self._stopped:
            link.close()
            return
        peer = accepted.peer
        name = peer.name
        if link.dialer:
            conn = link.conn
            assert conn is not None
            if accepted.join:
                if conn.state is UP and conn.connection_id == accepted.connection_id:
                    conn.add_link(link)
                    link.start_enp(accepted)
                else:
                    link.close()
                return
            if conn.state is not DIALING or conn.accepting is not None:  # given up meanwhile (timeout, crossed)
                link.close()
                return
            conn.dialed = True
        else:
            if accepted.join:
                conn = self._connections.get(name)
                if conn is None or conn.connection_id != accepted.connection_id:
                    link.close()
                    return
                if len(conn.links) >= conn.pool_size:
                    # the dialer opens pool_size - 1 joins, once: more is a peer making this
                    # node keep (and heartbeat) links without bound
                    self.log.warning("network: refused a link from %s: its connection has all its %d links",
                                     _text(name), conn.pool_size)
                    link.close()
                    return
                conn.add_link(link)
                link.start_enp(accepted)
                return
            conn = self._pending.get(name)
            if conn is None or conn.state is not DIALING or conn.accepting is not link:
                # taken down since its introduction (the node stopping): nothing waits for it
                link.close()
                return
            conn.accepting = None
            conn.dialed = False
        conn.peer = peer
        conn.offered = link.info.flags
        conn.connection_id = accepted.connection_id
        conn.pool_size = accepted.pool_size
        conn.add_link(link)
        self._pending.pop(name, None)
        self.dialing.discard(name)
        self._dial_over(conn)
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        self._connections[name] = conn
        self.connection_ids[name] = accepted.connection_id
        conn.since = self.scheduler.now()
        if conn.deadlines:
            # the requests made while dialing go out now (conn.up): their REQUEST_TIMEOUT
            # counts from here.  From when they were queued, a slow dial left the peer a
            # fraction of it, and a request it answered in time failed with Timeout
            deadline = conn.since + REQUEST_TIMEOUT
            conn.deadlines = deque((deadline, ref, what, undo) for _, ref, what, undo in conn.deadlines)
        claim = self._claims.pop(name, None)
        if claim is not None and claim > peer.creation:
            # a PID named a later run, which took the last connection down (_check_creation),
            # and the peer is still the run it was: the PID was wrong (made up, of another
            # cluster), so on this connection such PIDs are refused rather than taking it
            # down at every send
            conn.claim_disproved = True
            self.log.warning("network: a PID named creation %d of %s, which is still at creation %d: "
                             "PIDs of a later creation are refused on this connection (ProcessIncarnation)",
                             claim, _text(name), peer.creation)
        link.start_enp(accepted)
        failed = self._dial_failures.forget(_text(name))
        self.log.info("network: connected to %s (creation %d, %d link%s)%s", _text(name), peer.creation,
                      conn.pool_size, "" if conn.pool_size == 1 else "s",
                      f" after {failed} failed dials not logged" if failed else "")
        tracer = self._node._tracer
        if tracer is not None:
            tracer.connected(self._node, conn.name, peer.creation, conn.dialed)
        conn.up()
        conn.heartbeat_interval = self._heartbeat_interval(conn)
        self._heartbeat_later(conn)
        if conn.dialed:
            for _ in range(conn.pool_size - 1):
                self._join(conn)

    def _log_refusal(self, peer: Any, reason: BaseException, source: Any = None) -> None:
        """Log a refused accepted connection: at most REFUSALS_LOGGED lines a second, the
        others counted and told in one line when the second is over (anyone who reaches
        the port makes one refusal per connection, and could fill the log at the rate it
        can connect).  The same refusal again (from one host, of one name, for one
        reason: a node given the wrong cookie, dialing at each of its sends) is logged at
        most once every REFUSAL_REPEATS_EVERY seconds, saying how many it stands for: a
        ``source`` names the node refused, which garbage or silence from an address does
        not (those stay under the limit a second only)."""
        allowed: tuple[int, float] | None = (0, 0.0)
        if source is not None:
            allowed = self._refusal_repeats.allow((source, str(reason)))
        if allowed is None:
            return
        if self._refusals.allow():
            self.log.warning("network: refused a connection from %s: %s%s", peer, reason,
                             _held_back(allowed, "such refusals", REFUSAL_REPEATS_EVERY))

    def _refused_by_transport(self, peer: Any, why: str) -> None:
        """An accepted connection the transport refused before any link was made (a failed
        TLS handshake): logged as every refusal is, under the same limit."""
        if not self._stopped:
            self._log_refusal(f"{peer[0]}:{peer[1]}", NoConnection(why))

    def _refusals_told(self, count: int) -> None:
        if not self._stopped:
            self.log.warning("network: %d more connections were refused (more than %d a second are not logged one "
                             "by one)", count, REFUSALS_LOGGED)

    def handshake_refused(self, link: Link, hs: Any, refused: handshake.Refused | None) -> None:
        self._handshake_ended(link)
        reason = refused.reason if refused is not None else handshake.HandshakeTruncated()
        link.close_stream()
        if self._stopped:
            return
        if not link.dialer:
            name = getattr(hs, "peer_name", None)
            peer = name or (
                "%s:%s" % link.stream.peer if link.stream is not None else "?")  # host:port, as the other lines
            if (refused is not None and refused.by_peer and isinstance(reason, handshake.HandshakeTruncated)
                    and hs.greeted):
                # the dialer gave up and said so (its node stopped, its own timeout): nothing
                # was wrong here.  A close after part of a message still warns, below, and
                # so does a REFUSE before any HELLO, which no dialer sends
                if self._refusals.allow():
                    self.log.info("network: a connection from %s ended in its handshake: the dialer gave up (%s)",
                                  peer, reason)
            elif isinstance(reason, handshake.HandshakeTruncated) and link.lost and link.bytes_in == 0:
                # closed (or reset) by the peer before a byte: no claim to refuse, nothing wrong here.
                # A TCP probe (a load balancer's or Kubernetes' tcpSocket check) does it every
                # few seconds, and so does a dialer that gives up before its first write (a
                # pool's joins at a disconnect): a debug line, as Ergo says nothing on EOF
                self.log.debug("network: a connection from %s closed before its first byte (%s)", peer, reason)
            elif not isinstance(reason, handshake.SimultaneousConnect):
                # a refusal of a node (by the name it gave) repeats when it comes again from
                # its host, whatever the port
                named = name or getattr(hs, "claimed_name", None)
                source = (link.stream.peer[0] if link.stream is not None else "?", named) if named else None
                self._log_refusal(peer, reason, source)
            waiting = self._pending.get(hs.peer_name) if link.introduced else None
            if waiting is not None and waiting.accepting is link:
                # what waited for this handshake (sends, watches, calls) is told it failed
                self.connection_down(waiting, NoConnection(
                    f"the connection from {peer} failed in its handshake: {reason}"))
            return
        conn = link.conn
        if conn is None or link.join is not None or conn.state is not DIALING:
            return
        if isinstance(reason, handshake.SimultaneousConnect):
            return  # the peer's own dial is the one both keep: it arrives as an accepted link
        if conn.accepting is not None or (link not in conn.links and getattr(conn, "attempt", None) is None):
            # our dial, ended on purpose: the peer's own dial is past its introduction here
            # and becomes this connection (its READY may come after this refusal, "already
            # connected"); failing now would tell every watcher NoConnection and drop what
            # waits.  The accepted handshake's own timeout bounds the wait.
            return
        why = str(reason)
        if isinstance(reason, handshake.BadCookie) and conn.cookie is not None:
            why = f"the cookie of the route to it differs from its own (NetworkRoute.cookie): {why}"
        elif isinstance(reason, handshake.BadCookie):  # the commonest mistake: say what to do about it
            why = (f"the two nodes' cookies differ (give both the same NetworkOptions.cookie"
                   f"{'; this node has none, so it made a random one' if self._cookie_made else ''}): {why}")
        self._dial_failed(conn, NoConnection(f"{_text(conn.name)} refused the connection: {why}"))

    # -- losing a connection ----------------------------------------------------------------

    def connection_down(self, conn: Connection, error: ErgoError, graceful: bool = False) -> None:
        """``conn`` is gone for good: everything that depended on it is told ``error``.
        ``graceful``: its links are closed after sending what is pending (else aborted)."""
        was_up = conn.state is UP
        if conn.state is not DIALING and not was_up:
            return
        conn.state = DOWN
        conn.error = error
        name = _text(conn.name)
        if self._connections.get(name) is conn:
            del self._connections[name]
            self.connection_ids.pop(name, None)
        if self._pending.get(name) is conn:
            del self._pending[name]
            self.dialing.discard(name)
        self._dial_over(conn)
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        accepting, conn.accepting = conn.accepting, None
        if accepting is not None and accepting.stream is not None and not accepting.stream.closing:
            accepting.stream.abort()  # the peer's dial this connection waited for
        pool = conn.links
        for link in list(pool):
            link.why = link.why or str(error)
            conn.bytes_in_gone += link.bytes_in
            conn.bytes_out_gone += link.bytes_out
            if graceful:
                link.close()
            elif link.stream is not None and not link.stream.closing and not link._fin_after_held:
                # (a link closed gracefully already, its FIN waiting for what it held, is
                # spared as a closing stream is: node.stop() closes its connections so, then
                # takes them down, and aborting here dropped what the slow peer had not taken)
                link.stream.abort()
        conn.links = []
        # the connection's own dials: the first link's and the pool's JOINs.  A JOIN's
        # connect was left to the OS's SYN timeout and its handshake to its timer, each
        # outliving the connection (one more socket per JOIN at every reconnection)
        attempt, conn.attempt = conn.attempt, None
        joins, conn.joins = conn.joins, []
        for dial in (attempt, *joins):
            if dial is None:
                continue
            if self.stopped_why is not None and not dial.done() and not self.transport.given_up_unseen:
                # a graceful stop lets a pending dial connect, for its handshake to be refused
                # in words (Link.connection_made): the peer may have accepted it already, and
                # a reset then reads there as a probe's.  Given up as a dial is, if it takes long.
                # (Not where a connect given up is never seen by the peer, as in simulation:
                # given up at once, it leaves no timer to fire into the stopped node)
                timer = self.scheduler.call_later(self.options.connect_timeout, _abandon, dial, pool, error)
                dial._on_done(lambda _f, timer=timer: timer.cancel())
            else:
                _abandon(dial, pool, error)
        conn.queue = []
        last = self._last_send
        if last is not None and last[4] is conn:
            self._last_send = None  # (the shortcut of the last plain send held the connection, its link and sender)
        if was_up:
            self.log.info("network: disconnected from %s: %s", _text(name), error)
        node = self._node
        if node._tracer is not None:
            node._tracer.disconnected(node, conn.name, error, was_up)
        waiting, conn.on_up = conn.on_up, []
        for fn in waiting:
            fn(None, error)
        calls, conn._calls_in = conn._calls_in, None
        for ref, caller in (calls or {}).items():
            # a call sent while dialing fails with why the dial failed (NoRoute, Timeout, a
            # refusal), as a call to an unreachable node does at once; one in flight on a live
            # connection with NoConnection.  Each caller gets an exception of its own.
            failure = NoConnection(f"{error} before the reply came") if was_up else type(error)(*error.args)
            node._route_response(caller, ref, None, failure)
        # calls from the peer's processes being handled here: nobody will read their answers
        owed_calls, conn.owed = conn.owed, {}
        for ref, target in owed_calls.items():
            owed = target._calls_in
            if owed:
                owed.pop(ref, None)
        answers, conn.waiting = conn.waiting, {}
        conn.watches = {}
        conn.orphans = {}
        conn.deadlines = deque()
        for answer in answers.values():
            answer(error, None)
        consumer = self._consumers.pop(name, None)
        if consumer is not None:
            node._pubsub.consumer_gone(consumer)  # type: ignore[arg-type]
        node._pubsub.node_down(conn.name, error)

    # -- heartbeats -----------------------------------------------------------------------

    def _heartbeat_interval(self, conn: Connection) -> float:
        """How often ``conn``'s links send a heartbeat when idle: this node's interval, or
        less if the peer said it declares a link down sooner than that (its
        heartbeat_timeout in the handshake), so that a peer configured otherwise does not
        declare every idle connection to this node down, over and over.  A third of the
        peer's timeout: a heartbeat goes out at most two intervals after the last write."""
        own = self.options.heartbeat_interval
        peer = conn.peer
        if peer is None or not peer.heartbeat_timeout:
            return own
        needed = max(peer.heartbeat_timeout / 1000 / 3, MIN_PEER_HEARTBEAT_INTERVAL)
        if needed >= own:
            return own
        self.log.warning(
            "network: %s declares a link down after %g s of silence (its heartbeat_timeout), which this node's "
            "heartbeat_interval (%g s) does not keep up with: heartbeats to it go every %.3g s",
            _text(conn.name), peer.heartbeat_timeout / 1000, own, needed)
        return needed

    def _heartbeat_later(self, conn: Connection) -> None:
        conn.timer = self.scheduler.call_later(conn.heartbeat_interval, self._heartbeat, conn)

    def _heartbeat(self, conn: Connection) -> None:
        conn.timer = None
        if conn.state is not UP:
            return
        now = self.scheduler.now()
        interval, timeout = conn.heartbeat_interval, self.options.heartbeat_timeout
        for link in list(conn.links):
            if link.codec is None:
                continue
            if now - link.last_in >= timeout:
                link.fail(f"nothing heard from {_text(conn.name)} for {timeout} s (NetworkOptions.heartbeat_timeout)")
            elif now - link.last_out >= interval * 0.999:
                link.send(enp.Heartbeat(0))
        if conn.state is UP:
            deadlines = conn.deadlines
            if deadlines and deadlines[0][0] <= now:
                self._expire(conn, now)
            self._heartbeat_later(conn)

    def _await_answer(self, conn: Connection, ref: Ref, answered: Callable[[BaseException | None, Any], None],
                      what: str, undo: Callable[[], None] | None = None) -> None:
        """Wait for the peer's answer to the request ``ref`` (``what`` it asked, for the
        error): ``answered(error, result)`` runs when it comes, when the connection goes
        down, or with ``Timeout`` after REQUEST_TIMEOUT, as Ergo's requests give up.

        Without the deadline a peer that keeps its connection up and never answers left the
        requester waiting (a future pending, watchers believing they watch) and an entry in
        the connection's table for the connection's life.  ``undo``, if given, runs after
        a timeout: what the peer may still do late is taken back (an Unlink for a Link)."""
        conn.waiting[ref] = answered
        deadlines = conn.deadlines
        deadlines.append((self.scheduler.now() + REQUEST_TIMEOUT, ref, what, undo))
        if len(deadlines) > 2 * len(conn.waiting) + 1024:  # mostly answered ones: drop them
            waiting = conn.waiting
            conn.deadlines = deque(e for e in deadlines if e[1] in waiting)

    def _expire(self, conn: Connection, now: float) -> None:
        """Fail the requests to ``conn``'s peer not answered by their deadline (checked at
        each heartbeat, so at most one heartbeat_interval late) if the peer was heard from
        since it was asked: a peer silent since (a partition, a hold) is the heartbeat
        timeout's to judge, and what it says once heard again (the answer, held with the
        rest) still counts."""
        deadlines, waiting = conn.deadlines, conn.waiting
        heard = max((link.last_in for link in conn.links), default=0.0)
        while deadlines and deadlines[0][0] <= now and conn.state is UP:
            if heard <= deadlines[0][0] - REQUEST_TIMEOUT:
                return
            _, ref, what, undo = deadlines.popleft()
            answer = waiting.pop(ref, None)
            if answer is not None:
                answer(Timeout(f"{_text(conn.name)} did not {what} within {REQUEST_TIMEOUT} s"), None)
                if undo is not None:
                    undo()

    # -- sending ---------------------------------------------------------------------------

    def encode(self, msg: Any, peer_limit: int, compression: Any = None) -> bytes:
        if compression is not None:
            frame: bytes = enp.encode(msg, registry=self.registry, max_message_size=peer_limit,
                                      compression=True, threshold=compression.threshold)
        else:
            frame = enp.encode(msg, registry=self.registry, max_message_size=peer_limit)
        return frame

    def _sender(self, from_: PID) -> Any:
        """The local process ``from_`` names (its compression and important-delivery settings), or None."""
        node = self._node
        if from_.node != node._name:
            return None
        p = node._processes.get(from_.id)
        # identity first: a process sends with its own PID object, and PID's __eq__ is Python code
        return p if p is not None and (p._pid is from_ or p._pid == from_) else None

    def send_frame(self, conn: Connection, msg: Any, order: int) -> None:
        conn.send(msg, order)

    def send_notice(self, conn: Connection, make: Callable[[BaseException], Any], reason: BaseException,
                    order: int) -> None:
        """Send ``make(reason)``, a frame the peer's bookkeeping waits for (a Terminate for its
        watchers, the error of a call it made), without raising: it is sent from code that
        must carry on (a process's end telling its other watchers, a handler's answer).  A
        reason that cannot travel (above the peer's max message size, which a peer may set
        as low as it likes) is sent cut short, as ``RemoteError(its class name, the start
        of its text)``; if even that cannot, the peer cannot be told, and its connection
        goes down (logged), so that its side learns ``NoConnection`` instead of nothing."""
        try:
            conn.send(make(reason), order)
            return
        except ErgoError as e:
            error: ErgoError = e
        cut = RemoteError(type(reason).__name__, f"{brief_error(reason, 200)} (cut short: {brief_error(error)})")
        try:
            conn.send(make(cut), order)
            if conn.cut.allow():
                self.log.warning("network: a reason sent to %s was cut short: %s%s", _text(conn.name),
                                 brief_error(error), conn.cut.held_back("cut"))
            return
        except ErgoError as e:
            error = e
        self._cannot_carry(conn, error)

    def _cannot_carry(self, conn: Connection, error: ErgoError) -> None:
        """The peer's limit cannot take a frame its side waits for: its connection goes down."""
        if conn.state is UP:
            self.log.error("network: the connection to %s cannot carry what it must: %s", _text(conn.name),
                           brief_error(error))
            why = NoConnection(f"the connection to {_text(conn.name)} cannot carry what it must: {error}")
            # not now: the caller may be in the middle of pub/sub's tables, which the loss changes
            self.scheduler.call_soon(self.connection_down, conn, why)

    def _check_creation(self, conn: Connection, to: Any) -> Connection:
        """The connection to use for ``to``: ``conn``, or a new one if ``to`` belongs to a
        later run of the peer than ``conn`` (restarted, not noticed yet: ``conn`` is stale
        and goes down).  ``ProcessIncarnation`` for an earlier run's PID."""
        if type(to) is PID and conn.state is UP and to.creation != conn.creation:
            if to.creation > conn.creation:
                if conn.claim_disproved:
                    raise ProcessIncarnation(
                        f"{to} belongs to incarnation {to.creation} of {_text(conn.name)}, which is now "
                        f"{conn.creation} (a later run it has not had: the connection was dialed again to check)")
                self._claims[_text(conn.name)] = max(to.creation, self._claims.get(_text(conn.name), 0))
                self.connection_down(conn, NoConnection(
                    f"{_text(conn.name)} started again (creation {to.creation}): the connection to its run "
                    f"of creation {conn.creation} is gone"))
                return self.connection(to.node)
            raise ProcessIncarnation(f"{to} belongs to an earlier incarnation of {_text(conn.name)} "
                                     f"(creation {to.creation}, now {conn.creation})")
        return conn

    def send(self, from_: PID, to: Any, message: Any, priority: MessagePriority) -> None:
        # a sender sends to one peer many times over: its process, connection and link,
        # found for its last plain send to a PID, serve while all still hold
        last = self._last_send
        if last is not None and last[0] is from_ and (last[1] is to or (last[2] is to.node and type(to) is PID)):
            _f, _t, _n, p, conn, link = last
            if conn.state is UP and not link.lost and not p._important and not p._compression.enable:
                try:
                    out = link.codec.send_plain(from_, to, message, 0 if priority is _NORMAL else _PRIORITY[priority])
                except ProcessIncarnation:
                    if to.creation < conn.creation:
                        raise
                    # a later run's PID: the path below finds the connection stale
                else:
                    if out:
                        link._write(out)
                    if not link._flushing:
                        link._flushing = True
                        self.scheduler.soon(link._flush_call, ())
                    conn.frames_out += 1
                    return
        node = self._node
        p = node._processes.get(from_.id) if from_.node == node._name else None  # _sender inlined
        if p is not None and p._pid is not from_ and p._pid != from_:
            p = None
        if p is not None and p._important:  # every send of this process is important
            self.send_important(from_, to, message, priority)
            return
        # an up connection is found by the name itself (an Atom hashes and compares as its str)
        conn = self._connections.get(to.node) or self.connection(to.node)
        compression = p._compression if p is not None and p._compression.enable else None
        if type(to) is PID and compression is None and conn.state is UP:
            # the hot path: no SendPID object, the link's codec encodes the fields (and checks
            # the recipient's creation, raising ProcessIncarnation for any other).
            # Connection.send's choice of link, inlined (one Python frame less per message):
            # a sender's order key keeps the link it first took while that link lives
            order = 1 + from_.id % 255  # enp.order_key
            link = conn.routes.get(order)
            if link is None or link.lost:
                links = conn.links
                link = conn.routes[order] = links[order % len(links)]
            try:
                out = link.codec.send_plain(from_, to, message, 0 if priority is _NORMAL else _PRIORITY[priority])
            except ProcessIncarnation:
                if to.creation < conn.creation:
                    raise
                # a later run's PID: the connection is stale (see _check_creation)
            else:
                if p is not None:
                    self._last_send = (from_, to, to.node, p, conn, link)
                if out:
                    link._write(out)
                if not link._flushing:
                    link._flushing = True
                    self.scheduler.soon(link._flush_call, ())
                conn.frames_out += 1
                return
        conn = self._check_creation(conn, to)
        conn.send(_SEND[type(to)](from_, to, message, _PRIORITY[priority]), enp.order_key(from_), compression)

    def send_important(self, from_: PID, to: Any, message: Any, priority: MessagePriority) -> Future[None]:
        """Send and learn whether it reached the mailbox: the future completes on the
        peer's acknowledgement or fails with what it said (``ProcessUnknown``,
        ``MailboxFull``, ``NoConnection``...).  A failure nobody looked for is logged."""
        conn = self._check_creation(self.connection(to.node), to)
        if conn.peer is not None and not conn.peer.flags & NetworkFlags.IMPORTANT_DELIVERY:
            raise Unsupported(f"{_text(conn.name)} does not offer important delivery (its NetworkFlags)")
        p = self._sender(from_)
        compression = p._compression if p is not None and p._compression.enable else None
        ref = self._node.make_ref()
        fut: Future[None] = Future()
        conn.send(_SEND[type(to)](from_, to, message, _PRIORITY[priority], True, ref), enp.order_key(from_),
                  compression)

        def answered(error: BaseException | None, _result: Any) -> None:
            if error is not None:
                if not fut._consumed:
                    self.log.warning("network: an important message from %s to %s was not delivered: %s",
                                     from_, to, error)
                fut.set_exception(error)
            else:
                fut.set_result(None)

        self._await_answer(conn, ref, answered, "acknowledge an important message")
        return fut

    def request(self, from_: PID, to: Any, ref: Ref, message: Any, priority: MessagePriority,
                caller: Any = None) -> Connection:
        """Send a call; returns the connection, which owes the caller an answer (or a failure).
        ``caller``: the local process ``from_`` is, if the node's router knows it (else None)."""
        conn = self._connections.get(to.node)  # (an Atom hashes and compares as its str)
        if (
            conn is not None and conn.state is UP and type(to) is PID and priority is _NORMAL
            and caller is not None and not caller._compression.enable
            and to.creation == conn.peer.creation  # type: ignore[union-attr]  # up: the handshake told it
            and not self._stopped
        ):  # fmt: skip
            # The fast lane: a call from a local process that does not compress, to a PID of
            # the peer's current run, on an up connection, at normal priority (most calls).
            # What it skips finds nothing to do in that case: connection() would return
            # ``conn``, _check_creation too (the creations match), _sender would find
            # ``caller``, and Connection.send_call frames it on the link Connection.send
            # would take, without a RequestPID to take apart (the same bytes, the same
            # errors, raised before anything is sent or recorded).
            conn.send_call(_REQUEST_PID, from_, to, ref, message)
            calls = conn._calls_in
            if calls is None:
                calls = conn._calls_in = {}
            calls[ref] = from_
            return conn
        conn = self._check_creation(self.connection(to.node), to)
        p = self._sender(from_)
        compression = p._compression if p is not None and p._compression.enable else None
        conn.send(_REQUEST[type(to)](from_, to, ref, message, _PRIORITY[priority]), enp.order_key(from_),
                  compression)
        calls = conn._calls_in
        if calls is None:
            calls = conn._calls_in = {}
        calls[ref] = from_
        return conn

    @property
    def remote_calls(self) -> dict[Ref, Runner]:
        """The calls from peers' processes that this node's processes owe an answer: ref ->
        the local target owing it (a snapshot, over every connection)."""
        return {ref: target for conn in self._connections.values() for ref, target in conn.owed.items()}

    def pass_call(self, caller: PID, ref: Ref, old: Runner, new: Runner) -> None:
        """The call ``ref`` of the remote ``caller`` that ``old`` owed is now owed by ``new``
        (see ``Node._pass_call``)."""
        conn = self._connections.get(_text(caller.node))
        if conn is not None and conn.owed.get(ref) is old:
            conn.owed[ref] = new

    def _forget_oldest(self, conn: Connection) -> None:
        """``conn``'s peer has more than MAX_OWED_CALLS calls owed here (``conn.owed``, filled
        by _on_request): the oldest is forgotten.

        A peer's caller that times out tells nobody (the frames have no way to: Ergo's
        callee keeps nothing for a call), so a call its target defers and never answers
        was owed for as long as the connection lived: any peer, a well-behaved one
        calling a process that drops some requests included, made this node keep an
        entry per such call without bound.  At most MAX_OWED_CALLS are kept per peer; one
        more forgets the oldest (logged once per connection): its target no longer owes
        it, so a value its handler returns for it later is not sent (``send_response``
        still is), and its end does not fail that caller at once."""
        owed = conn.owed
        old_ref = next(iter(owed))
        old = owed.pop(old_ref)
        calls = old._calls_in
        if calls:
            calls.pop(old_ref, None)
        if not conn.owed_forgotten:
            self.log.warning("network: %s has more than %d calls unanswered here: the oldest are forgotten (their "
                             "callers have timed out, or will)", _text(conn.name), MAX_OWED_CALLS)
        conn.owed_forgotten += 1

    def response(self, from_: PID | None, to: PID, ref: Ref, value: Any, error: BaseException | None,
                 replier: Any = None) -> None:
        """Answer the call ``ref`` of the remote ``to`` with ``value`` or ``error``, from the
        local process ``from_`` (None: the node's core).  ``replier``: the process ``from_``
        is, if the node's router knows it (else None)."""
        sender = from_ if from_ is not None else self._node._core_pid
        conn = self._connections.get(to.node)  # (an Atom hashes and compares as its str)
        if conn is None:
            return  # the caller's node is gone: so is the caller (its connection's end forgot the call)
        target = conn.owed.pop(ref, None)
        if target is not None:
            calls = target._calls_in
            if calls:
                calls.pop(ref, None)
        if error is None:
            try:
                if (
                    replier is not None and conn.state is UP and type(to) is PID and not replier._compression.enable
                    and to.creation == conn.peer.creation  # type: ignore[union-attr]  # up: the handshake told it
                    and not self._stopped
                ):  # fmt: skip
                    # The fast lane: a reply from a local process that does not compress, to
                    # a PID of the peer's current run (the codec has no creation to refuse)
                    # on an up connection.  _sender would find ``replier``; Connection.send_call
                    # frames it on the link Connection.send would take, without a Response to
                    # take apart (the same bytes, the same errors, raised before anything is sent).
                    conn.send_call(_RESPONSE, sender, to, ref, value)
                    return
                p = self._sender(sender)
                compression = p._compression if p is not None and p._compression.enable else None
                conn.send(enp.Response(sender, to, ref, value), enp.order_key(sender), compression)
                return
            except ErgoError as e:  # a reply that cannot travel (too large, unencodable): the caller is told,
                # in words that say it was the reply, not the caller's own request, that failed
                error = type(e)(f"{_text(self._node.name)} could not send the reply of {sender}: {e}")
        self.send_notice(conn, lambda why: enp.ResponseError(sender, to, ref, why), error, enp.order_key(sender))

    def exit(self, from_: PID, to: PID, reason: BaseException) -> None:
        conn = self._check_creation(self.connection(to.node), to)
        conn.send(enp.SendExit(from_, to, reason), enp.order_key(from_))

    def watch(self, target: Any, link: bool, by: PID | None = None) -> None:
        """The first local watcher (``by``) of the remote ``target`` (of this kind): subscribe.
        The frame takes ``by``'s link of the pool, so it arrives before anything ``by``
        sends the target afterwards (a message that ends it must find the watch in place)."""
        node = self._node
        if type(target) is Atom:  # a node: watched through its connection, no frame
            try:
                conn = self.connection(target)
            except ErgoError as e:
                self.scheduler.call_soon(node._pubsub.node_down, target, e)
                return
            if conn.state is not UP:
                conn.on_up.append(lambda c, err: None)  # its loss fires node_down
            return
        ref = node.make_ref()
        frame = enp.Link if link else enp.Monitor
        order = enp.order_key(by) if by is not None else 0
        try:
            conn = self._check_creation(self.connection(target.node), target)
            conn.send(frame(node._core_pid, target, ref), order)
        except ErgoError as e:  # no route, a connection down, an old PID: told as a refusal is
            self.scheduler.call_soon(node._pubsub.remote_refused, target, link, e)
            return

        # Only the answer to the latest subscription of (kind, target) counts: the local
        # watchers now are those of that one.  An earlier one's answer, still to come (its
        # watchers left and others came), said nothing about them: a refusal of it (a
        # name not registered then) took them down though the peer subscribed them, and
        # a peer that never answered kept an entry per subscription for the connection's life.
        # (Its watchers left before this: unwatch made it an orphan already.)
        key = (link, target)
        watches = conn.watches
        earlier = watches.get(key)
        if earlier is not None and conn.waiting.pop(earlier, None) is not None:
            self._orphan(conn, earlier, key)
        watches[key] = ref

        def answered(error: BaseException | None, result: Any) -> None:
            if watches.get(key) is ref:
                del watches[key]
            if error is not None:
                node._pubsub.remote_refused(target, link, error)
            elif result:
                node._pubsub.remote_buffer(target, link, result)

        def undo() -> None:
            # its watchers were told Timeout and are gone: should the peer answer late that
            # it subscribed, that subscription is withdrawn then (an Unlink sent now took
            # a later Link's subscription when the peer had refused this one)
            self._orphan(conn, ref, key)

        self._await_answer(conn, ref, answered, f"answer a {frame.__name__} of {target}", undo)

    def _orphan(self, conn: Connection, ref: Ref, key: tuple[bool, Any]) -> None:
        """Nothing waits for the answer to the Link/Monitor ``ref`` of ``key`` (link?, target)
        any more: when it comes, it is dropped, and if it says the peer subscribed, that
        subscription is withdrawn (:meth:`_on_answer`).

        A node withdraws only a subscription the peer said it made, and only once it said
        so.  A withdrawal sent before the answer could overtake its Link on another link of
        the pool (the last watcher to leave is not the first that came) and leave the peer
        subscribed for ever; and it counted against the peer's next subscription of that
        target when the peer had refused this one (a name registered only since), or when
        a timeout sent a second one: that subscription was taken, and its watchers never
        heard of the target's end.  At most MAX_ORPHANS are kept; one more forgets the
        oldest (its late subscription, if ever made, lasts until the target ends)."""
        orphans = conn.orphans
        orphans[ref] = key
        if len(orphans) > MAX_ORPHANS:
            del orphans[next(iter(orphans))]

    def _withdraw(self, conn: Connection, key: tuple[bool, Any], order: int) -> None:
        """Send the peer an Unlink (Demonitor) of ``key`` (link?, target), on the link of
        ``order``; nothing waits for its answer (an entry for it stayed for the
        connection's life when the peer never gave one: one more at each unsubscription)."""
        link, target = key
        with contextlib.suppress(ErgoError):  # the connection is down, or going: so is the subscription
            conn.send((enp.Unlink if link else enp.Demonitor)(self._node._core_pid, target, self._node.make_ref()),
                      order)

    def unwatch(self, target: Any, link: bool, by: PID | None = None) -> None:
        """The last local watcher (``by``) of the remote ``target`` (of this kind) stopped:
        unsubscribe, on ``by``'s link of the pool (as :meth:`watch`)."""
        if type(target) is Atom:
            return
        conn = self._connections.get(_text(target.node)) or self._pending.get(_text(target.node))
        if conn is None:
            return
        key = (link, target)
        pending = conn.watches.pop(key, None)
        if pending is not None and conn.waiting.pop(pending, None) is not None:
            # not answered yet: withdrawn once the answer says the peer subscribed (see _orphan)
            self._orphan(conn, pending, key)
            return
        self._withdraw(conn, key, enp.order_key(by) if by is not None else 0)

    def remote_spawn(self, conn: Connection, name: str, register: str | None, args: tuple[Any, ...],
                     options: ProcessOptions | None, requester: Process | None = None) -> Future[PID]:
        """Ask the peer to spawn what it enabled as ``name`` (Ergo's ``RemoteSpawn``): every
        option of ``options`` crosses (Ergo's ``ProcessOptionsExtra``), and the new process
        takes the requester's log level unless its options set one.  ``requester`` is the
        process that asks (``Process.remote_spawn``): ``link_parent`` links the new process
        to it, ``link_child`` links it to the new process once the answer comes; None is the
        node (``RemoteNode.spawn``), its log level, and no process to link with (either link
        option is then ``Incorrect``)."""
        fut: Future[PID] = Future()
        _check_spawn_request(name, args, options)
        if options is None:
            options = _NO_OPTIONS
        else:
            options.check()  # a dataclass can be changed after it was made
        node = self._node
        if requester is None and (options.link_parent or options.link_child):
            flag = "link_parent" if options.link_parent else "link_child"
            raise Incorrect(f"{flag} links the new process with the process that spawns it, and RemoteNode.spawn "
                            "spawns for the node: call process.remote_spawn(node, name, ...) from that process")
        level = requester._level() if requester is not None else node._log._level
        fields = _spawn_fields(options, LogLevel(level))
        if conn.state is DOWN:  # a RemoteNode kept after its connection went
            fut.set_exception(self._handle_down(conn))
            return fut
        if conn.peer is not None and not conn.peer.flags & NetworkFlags.REMOTE_SPAWN:
            fut.set_exception(NotAllowed(f"{_text(conn.name)} does not offer remote spawn (its NetworkFlags)"))
            return fut
        ref = node.make_ref()
        if requester is not None:
            from_ = requester._pid
        else:
            current = node._current
            from_ = current._pid if current is not None and hasattr(current, "_pid") else node._core_pid
        try:
            conn.send(enp.Spawn(from_, ref, name, register, fields, tuple(args)), 0)
        except ErgoError as e:  # the connection is down, or the arguments cannot travel: the future says so
            fut.set_exception(e)
            return fut
        link_child = requester if options.link_child else None

        def answered(error: BaseException | None, result: Any) -> None:
            if error is not None:
                fut.set_exception(error)
            elif type(result) is not PID:
                kind = type(result).__name__
                fut.set_exception(Malformed(f"{_text(conn.name)} answered a spawn with {kind}, not a PID"))
            elif result.node != conn.name or result.creation != conn.creation:
                # the spawned process is the peer's own, of the run this connection reaches:
                # a PID of another node would have the caller talk to what the peer does not hold
                fut.set_exception(Malformed(f"{_text(conn.name)} answered a spawn with {result}, of node "
                                            f"{_text(result.node)} (creation {result.creation}), not one of its own"))
            else:
                if link_child is not None:
                    # Ergo's RemoteSpawn links the requester to the child once it is spawned;
                    # a child gone meanwhile is refused as any link is (an exit signal)
                    self._link_spawned(link_child, result, "it spawned")
                fut.set_result(result)

        self._await_answer(conn, ref, answered, f"answer a spawn of {name!r}"[:120])
        return fut

    def _handle_down(self, conn: Connection) -> NoConnection:
        """What a RemoteNode whose connection ``conn`` is down fails its requests with."""
        name = _text(conn.name)
        return NoConnection(f"this RemoteNode's connection to {name} (creation {conn.creation}) is down "
                            f"({conn.error}): a RemoteNode stands for one connection; network().node({name!r}) "
                            f"or get_node({name!r}) gives the current one")

    def _link_spawned(self, process: Process, target: PID, who: str) -> None:
        """Link ``process`` to ``target`` for a remote spawn's ``link_child`` or
        ``link_parent``, unless it ended meanwhile; a refusal is logged (the spawn is
        done all the same: the requester gets its PID)."""
        if process._state >= TERMINATED:
            return
        pubsub = self._node._pubsub
        try:
            pubsub.add(process, target, pubsub._links, "_linked")
        except ErgoError as e:
            self.log.warning("network: %s could not link to %s, %s: %s", process._pid, target, who, e)

    def spawn_on(self, requester: Process, peer: Any, name: str, register: str | None, args: tuple[Any, ...],
                 options: ProcessOptions | None) -> Future[PID]:
        """``Process.remote_spawn``: :meth:`remote_spawn` on ``peer``, dialed if need be
        (Ergo's ``RemoteSpawn`` goes through ``GetConnection``).  ``NotAllowed`` for the
        requester's own node (as Ergo's); a dial that fails fails the future."""
        target = _node_name(peer)
        if target == self._node._name:
            raise NotAllowed(f"{requester._pid} cannot remote_spawn on its own node {target}: use spawn")
        _check_spawn_request(name, args, options)  # bad input is raised, not dialed for
        try:
            conn = self.connection(target)
        except ErgoError as e:
            fut: Future[PID] = Future()
            fut.set_exception(e)
            return fut
        return self.remote_spawn(conn, name, register, args, options, requester)

    def remote_application_start(self, conn: Connection, name: str, mode: int,
                                 options: ApplicationOptions | None) -> Future[None]:
        fut: Future[None] = Future()
        if not isinstance(name, str) or not name:
            raise Incorrect(f"a remote application start names an application, a non-empty str, not {name!r}"[:200])
        if options is None:
            options = ApplicationOptions()
        elif not isinstance(options, ApplicationOptions):
            raise Incorrect(f"options are ApplicationOptions or None, not {type(options).__name__}")
        fields = {"env": dict(options.env), "log_level": str(options.log_level)}
        if conn.state is DOWN:  # a RemoteNode kept after its connection went
            fut.set_exception(self._handle_down(conn))
            return fut
        if conn.peer is not None and not conn.peer.flags & NetworkFlags.REMOTE_APPLICATION_START:
            fut.set_exception(NotAllowed(f"{_text(conn.name)} does not offer remote application start "
                                         "(its NetworkFlags)"))
            return fut
        node = self._node
        ref = node.make_ref()
        current = node._current
        from_ = current._pid if current is not None and hasattr(current, "_pid") else node._core_pid
        try:
            conn.send(enp.ApplicationStart(from_, ref, name, mode, fields), 0)
        except ErgoError as e:  # the connection is down, or the env cannot travel: the future says so
            fut.set_exception(e)
            return fut

        def answered(error: BaseException | None, result: Any) -> None:
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(None)

        self._await_answer(conn, ref, answered, f"answer a start of application {name!r}"[:120])
        return fut

    # -- receiving ----------------------------------------------------------------------------

    def deliver(self, link: Link, conn: Connection, frames: list[Any]) -> None:
        """The frames ``link`` decoded, in order, each as :meth:`dispatch` would; stops once
        the link is lost.  A plain send to this node's incarnation at normal priority (most
        of a batch) goes straight to the node's router: no handler lookup per message, and
        no user code runs meanwhile (it only fills a mailbox).  Sends to the recipient of
        the previous one (the decoder gives one PID object per id) go straight to its
        mailbox: that process cannot have terminated meanwhile, since nothing ran."""
        node = self._node
        route = node._route_send
        creation = node._creation
        processes = node._processes
        dispatch = self.dispatch
        conn.frames_in += len(frames)
        last: Any = None  # the recipient of the last plain send delivered, and its mailbox
        push: Any = None
        for frame in frames:
            # (type(), not ``frame.__class__``: a frame's class changes from one to the next,
            # and an attribute lookup that sees many classes is the slow, generic one)
            kind = type(frame)
            if kind is _SEND_RUN:
                last = None
                self._deliver_run(conn, frame)
                continue
            if kind is _SENDS:
                last = None
                self._deliver_sends(conn, frame)
                continue
            if kind is _SEND_PID and not frame.priority and not frame.important:
                to = frame.to
                try:
                    if to is last:
                        push((MSG, frame.from_, None, frame.message))
                        continue
                    # (every ``to`` is on this node: the link's codec refuses a frame to
                    # another, so a peer cannot have this node pass its messages on)
                    if to.creation == creation:
                        route(frame.from_, to, frame.message, _NORMAL)
                        p = processes.get(to.id)
                        if p is not None and p._pid.creation == creation and to.node == node._name:
                            last, push = to, p._push_main
                        continue
                except ErgoError as e:
                    self.log.debug("network: a message from %s to %s was dropped: %s", frame.from_, to, e)
                    continue
            last = None  # a handler may run code (a remote spawn): forget the mailbox
            if kind is tuple:
                # a call's frame in the codec's form for the common case (see enp.LinkCodec's
                # call_events): (RequestPID or Response, from_, to, ref, value), at normal
                # priority, not important, its value decoded; no frame object is made for it
                cls, from_, to, ref, value = frame
                try:
                    if cls is _RESPONSE:
                        if self._asked(conn, ref, to):  # _on_response, its frame taken apart
                            node._route_response(to, ref, value, None)
                    else:
                        self._request_in(conn, from_, to, ref, value)
                except ErgoError as e:
                    self.log.debug("network: a %s from %s was not delivered: %s", cls.__name__, _text(conn.name), e)
            elif kind is _RESPONSE or kind is _REQUEST_PID:
                # a call's frames, the other common case: dispatch's lookup of the handler left out
                try:
                    if kind is _RESPONSE:
                        self._on_response(conn, frame)
                    else:
                        self._on_request(conn, frame)
                except ErgoError as e:
                    self.log.debug("network: a %s from %s was not delivered: %s", type(frame).__name__,
                                   _text(conn.name), e)
            else:
                dispatch(conn, frame)
            if link.lost:
                return

    def _request_in(self, conn: Connection, from_: PID, to: PID, ref: Ref, value: Any) -> None:
        """A call from ``conn``'s peer at normal priority, as ``deliver`` takes it from the
        codec (see enp.LinkCodec's ``call_events``).  To a live process of this node's run,
        the common request, _on_request and Node._route_request are inlined here, and the
        test that no call with its ref is in flight already is made by the insertion itself
        (one lookup of the ref less: its hash is Python code), undone if the mailbox refuses
        the call.  Anything else takes _on_request, which decides as before."""
        node = self._node
        creation = node._creation
        p = node._processes.get(to.id) if to.creation == creation else None
        if p is None or p._pid.creation != creation or p._state >= TERMINATED or to.node != node._name:
            self._on_request(conn, _REQUEST_PID(from_, to, ref, value))
            return
        owed = conn.owed
        n = len(owed)
        owed.setdefault(ref, p)
        if len(owed) == n:  # in flight already: _on_request refuses it
            self._on_request(conn, _REQUEST_PID(from_, to, ref, value))
            return
        try:
            p._push_main((REQUEST, from_, ref, value))
        except ErgoError as e:  # the caller learns at once, as from _on_request
            del owed[ref]
            conn.send(enp.ResponseError(node._core_pid, from_, ref, e), enp.order_key(from_))
            return
        except BaseException:  # (a tracer's own failure, say) nothing is left owed, as before
            del owed[ref]
            raise
        calls = p._calls_in
        if calls is None:
            calls = p._calls_in = {}
        calls[ref] = from_
        if n >= MAX_OWED_CALLS:
            self._forget_oldest(conn)

    def _deliver_sends(self, conn: Connection, sends: Any) -> None:
        """The plain sends of one batch (an ``enp.Sends``), in order.  The common batch, every
        entry at normal priority to one process that has no mailbox limit and no tracer
        watching, is queued at once; any other at normal priority goes send by send
        through the node's router, as ``deliver`` takes a SendPID (no message object each);
        the rest as their SendPIDs."""
        node = self._node
        tos = sends.to
        count = len(tos)
        conn.frames_in += count - 1  # deliver counted the batch as one
        if sends.priority.count(0) != count:
            for frame in sends.messages():
                self.dispatch(conn, frame)
            return
        to = tos[0]
        if count == 1 or len(set(map(id, tos))) == 1:
            p = node._processes.get(to.id)
            if (
                p is not None and p._pid.creation == to.creation == node._creation and to.node == node._name
                and p._state < TERMINATED and not p._mailbox_size and node._tracer is None
            ):  # fmt: skip
                p._push_main_all(zip(repeat(MSG), sends.from_, repeat(None), sends.message), count)
                return
        # many recipients (or one with a mailbox limit or a tracer): deliver's loop for them
        route = node._route_send
        creation = node._creation
        name = node._name
        processes = node._processes
        last: Any = None
        push: Any = None
        for from_, to, message in zip(sends.from_, tos, sends.message):
            try:
                if to is last:
                    push((MSG, from_, None, message))
                    continue
                if to.creation == creation:
                    route(from_, to, message, _NORMAL)
                    p = processes.get(to.id)
                    if p is not None and p._pid.creation == creation and to.node == name:
                        last, push = to, p._push_main
                    continue
            except ErgoError as e:
                self.log.debug("network: a message from %s to %s was dropped: %s", from_, to, e)
                continue
            self.dispatch(conn, _SEND_PID(from_, to, message))  # another incarnation's: refused there

    def _deliver_run(self, conn: Connection, run: Any) -> None:
        """The sends of one run of a batch (an ``enp.SendRun``: one sender, one recipient,
        one priority), in order: at normal priority to a process with no mailbox limit and
        no tracer watching, queued at once; otherwise send by send, as ``deliver`` does."""
        node = self._node
        values = run.message
        count = len(values)
        conn.frames_in += count - 1  # deliver counted the run as one
        if not run.priority:
            to = run.to
            p = node._processes.get(to.id)
            if (
                p is not None and p._pid.creation == to.creation == node._creation and to.node == node._name
                and p._state < TERMINATED and not p._mailbox_size and node._tracer is None
            ):  # fmt: skip
                p._push_main_all(zip(repeat(MSG), repeat(run.from_), repeat(None), values), count)
                return
            if to.creation == node._creation:  # a mailbox limit or a tracer: send by send
                route = node._route_send
                from_ = run.from_
                for message in values:
                    try:
                        route(from_, to, message, _NORMAL)
                    except ErgoError as e:
                        self.log.debug("network: a message from %s to %s was dropped: %s", from_, to, e)
                return
        for frame in run.messages():
            self.dispatch(conn, frame)

    def dispatch(self, conn: Connection, frame: Any) -> None:
        """One frame from ``conn``'s peer, delivered as if a local process had sent it."""
        handler = _DISPATCH.get(type(frame))
        if handler is None:  # pragma: no cover - the decoder returns only the types above
            return
        try:
            handler(self, conn, frame)
        except ErgoError as e:
            self.log.debug("network: a %s from %s was not delivered: %s", type(frame).__name__, _text(conn.name), e)

    def _consumer(self, conn: Connection) -> RemoteConsumer:
        name = _text(conn.name)
        consumer = self._consumers.get(name)
        if consumer is None or consumer.conn is not conn:
            consumer = self._consumers[name] = RemoteConsumer(self, conn)
        return consumer

    def remote_consumer(self, pid: PID) -> RemoteConsumer | None:
        """The consumer standing for the peer whose core is ``pid`` (pub/sub asks)."""
        consumer = self._consumers.get(_text(pid.node))
        if consumer is None or consumer._pid != pid:
            return None
        return consumer

    def _on_send(self, conn: Connection, f: Any) -> None:
        node = self._node
        to = f.to
        error: BaseException | None = None
        try:
            if type(to) is PID and to.creation != node._creation and to.node == node._name:
                raise ProcessIncarnation(f"{to} is of an earlier incarnation of {_text(node._name)}")
            node._route_send(f.from_, to, f.message, _PRIORITY_OF.get(f.priority, MessagePriority.NORMAL))
        except ErgoError as e:
            error = e
        if f.important and f.ref is not None:
            conn.send(enp.Ack(to if type(to) is PID else node._core_pid, f.from_, f.ref, error), 0)
        elif error is not None:
            self.log.debug("network: a message from %s to %s was dropped: %s", f.from_, to, error)

    def _on_request(self, conn: Connection, f: Any) -> None:
        node = self._node
        owed = conn.owed
        ref = f.ref
        try:
            if ref in owed:
                # a peer's refs are unique (its own counter): a second call under one ref
                # would take the first's place in conn.owed, and the first target would owe
                # an answer nothing could clear (its entry outlived the connection)
                raise Incorrect(f"a call with the ref {ref} is in flight already: refs are unique")
            to = f.to
            if type(to) is PID and to.creation != node._creation and to.node == node._name:
                raise ProcessIncarnation(f"{to} is of an earlier incarnation of {_text(node._name)}")
            priority = _PRIORITY_OF.get(f.priority, _NORMAL) if f.priority else _NORMAL
            target = node._route_request(None, to, ref, f.message, priority, 1, from_=f.from_)
        except ErgoError as e:  # the caller learns at once, instead of at its timeout
            conn.send(enp.ResponseError(node._core_pid, f.from_, ref, e), enp.order_key(f.from_))
            return
        owed[ref] = target
        if len(owed) > MAX_OWED_CALLS:
            self._forget_oldest(conn)

    def _asked(self, conn: Connection, ref: Ref, to: PID) -> bool:
        """Whether a reply from ``conn``'s peer to ``to`` for ``ref`` answers a call ``to``
        made to that peer, which owes it (it is then no longer owed).  Only the node a call
        went to answers it: refs are a counter, and a reply taken by its ref alone (as
        Ergo's) let any connected node answer this node's local calls and the calls it
        made to others.  A late reply (its call timed out) is dropped as well."""
        calls = conn._calls_in
        caller = calls.pop(ref, None) if calls else None  # (one lookup of the ref: its hash is Python code)
        if caller is not None and _same_pid(caller, to):
            return True
        if caller is not None:  # a call of another process of this node: still owed
            calls[ref] = caller  # type: ignore[index]
        self.log.debug("network: a reply from %s to %s for a call not made to it (or timed out): dropped",
                       _text(conn.name), to)
        return False

    def _on_response(self, conn: Connection, f: Any) -> None:
        if self._asked(conn, f.ref, f.to):
            self._node._route_response(f.to, f.ref, f.message, None)

    def _on_response_error(self, conn: Connection, f: Any) -> None:
        if self._asked(conn, f.ref, f.to):
            self._node._route_response(f.to, f.ref, None, f.error)

    def _on_exit(self, conn: Connection, f: Any) -> None:
        self._node._route_exit(f.from_, f.to, f.reason)

    def _on_watch(self, conn: Connection, f: Any) -> None:
        pubsub = self._node._pubsub
        consumer = self._consumer(conn)
        target = f.target
        link = type(f) is enp.Link
        result: Any = None
        error: BaseException | None = None
        try:
            if type(target) is Atom or getattr(target, "node", None) != self._node._name:
                raise NotAllowed(f"{target} is not on {_text(self._node._name)}")
            if type(target) is PID and target.creation != self._node._creation:
                raise ProcessIncarnation(f"{target} is of an earlier incarnation of {_text(self._node._name)}")
            table, attr = (pubsub._links, "_linked") if link else (pubsub._monitors, "_monitored")
            key = (link, target)
            mine = getattr(consumer, attr)
            if mine is not None and target in mine:  # crossed its own withdrawal: still subscribed
                consumer.watches[key] = consumer.watches.get(key, 1) + 1
                buffered = pubsub.buffer_of(target) if type(target) is Event else None
            else:
                buffered = pubsub.add(consumer, target, table, attr)  # type: ignore[arg-type]
                consumer.watches[key] = 1
            if type(target) is Event:  # the buffer and how long it is: the subscriber node keeps it
                result = [pubsub.buffer_size(target), buffered or []]
        except ErgoError as e:
            error = e
        # an event's answer (its buffer) takes the producer's link, ahead of the events it
        # sends from now on; on the pool's first link they could overtake it
        entry = pubsub._events.get(target) if type(target) is Event else None
        order = enp.order_key(entry.producer) if entry else 0
        try:
            conn.send(enp.Result(f.from_, f.ref, error, result), order)
            return
        except ErgoError as e:
            failure: ErgoError = e
        # The answer does not fit the peer's limit: an event's buffer (as many last messages
        # as its producer keeps) may well not.  The peer is subscribed now, and its node
        # waits for this answer: the newest half of the buffer is sent, and so on, down to
        # none; an answer that cannot travel at all takes the connection down.
        events = result[1] if result is not None else []
        while events:
            events = events[len(events) // 2:] if len(events) > 1 else []
            try:
                conn.send(enp.Result(f.from_, f.ref, None, [result[0], events]), order)
                # one line a second per peer: each Monitor of the event, the same one
                # repeated too, is answered with its buffer, and a peer sending them made a
                # line for every 50 bytes or so it sent
                if conn.cut.allow():
                    self.log.warning("network: the buffer of %s sent to %s was cut to its last %d messages: %s%s",
                                     target, _text(conn.name), len(events), brief_error(failure),
                                     conn.cut.held_back("cut"))
                return
            except ErgoError as e:
                failure = e
        self._cannot_carry(conn, failure)

    def _on_unwatch(self, conn: Connection, f: Any) -> None:
        pubsub = self._node._pubsub
        consumer = self._consumer(conn)
        link = type(f) is enp.Unlink
        error: BaseException | None = None
        try:
            table, attr = (pubsub._links, "_linked") if link else (pubsub._monitors, "_monitored")
            key = (link, f.target)
            count = consumer.watches.pop(key, 0)
            mine = getattr(consumer, attr)
            if count > 1 and mine is not None and f.target in mine:  # a later subscription overtook this
                consumer.watches[key] = count - 1
            else:
                pubsub.remove(consumer, f.target, table, attr)  # type: ignore[arg-type]
        except ErgoError as e:
            error = e
        conn.send(enp.Result(f.from_, f.ref, error, None), 0)

    def _on_answer(self, conn: Connection, f: Any) -> None:
        fn = conn.waiting.pop(f.ref, None)
        if fn is not None:
            fn(f.error, getattr(f, "result", None))
        elif conn.orphans:
            key = conn.orphans.pop(f.ref, None)
            if key is not None and f.error is None:
                # a late answer: the peer subscribed this node, whose watchers of then
                # are gone; withdrawn now that it is known to be made (see watch)
                self._withdraw(conn, key, 0)

    def _on_terminate(self, conn: Connection, f: Any) -> None:
        # (the target is the peer's: the link's codec refuses a Terminate or an event of
        # another node's target, as every frame that speaks for another node)
        target = f.target
        source = target if type(target) is PID else PID(conn.name, 1, conn.creation)
        self._node._pubsub.fire(target, f.reason, source)

    def _on_event(self, conn: Connection, f: Any) -> None:
        self._node._pubsub.remote_event(f.from_, MessageEvent(f.event, f.timestamp, f.message),
                                       _PRIORITY_OF.get(f.priority, MessagePriority.NORMAL))

    def _on_spawn(self, conn: Connection, f: Any) -> None:
        node = self._node
        error: BaseException | None = None
        pid: PID | None = None
        entry = self._spawnable.get(f.name)
        try:
            if not conn.offered & NetworkFlags.REMOTE_SPAWN:
                raise NotAllowed(f"{_text(node._name)} does not offer {_text(conn.name)} remote spawn (NetworkFlags)")
            if entry is None or (entry[1] is not None and _text(conn.name) not in entry[1]):
                raise NotAllowed(f"{_text(node._name)} does not let {_text(conn.name)} spawn {f.name!r} (enable_spawn)")
            factory = entry[0]
            options = _spawn_options(f.options)
            if f.register:
                pid = node.spawn_register(f.register, factory, *f.args, options=options)
            else:
                pid = node.spawn(factory, *f.args, options=options)
            child = node._processes.get(pid.id) if options.link_parent else None
            if child is not None:
                # Ergo's LinkParent: the new process is linked to the process that asked
                # (its parent there), so that one's end, or the connection's, takes it down
                self._link_spawned(child, f.from_, "that spawned it")
        except ErgoError as e:
            error = e
        except Exception as e:  # a factory that raised: the requester learns why
            # its text as every process writes it (sets in order, no addresses): it crosses
            error = Incorrect(f"spawning {f.name!r} failed: {brief_error(e, 300)}"[:400])
        conn.send(enp.Result(f.from_, f.ref, error, pid), 0)

    def _on_application_start(self, conn: Connection, f: Any) -> None:
        node = self._node
        error: BaseException | None = None
        try:
            if not conn.offered & NetworkFlags.REMOTE_APPLICATION_START:
                raise NotAllowed(f"{_text(node._name)} does not offer {_text(conn.name)} remote application start "
                                 "(NetworkFlags)")
            if f.name not in self._startable or (
                    (allowed := self._startable[f.name]) is not None and _text(conn.name) not in allowed):
                raise NotAllowed(f"{_text(node._name)} does not let {_text(conn.name)} start the application "
                                 f"{f.name!r} (enable_application_start)")
            opts = f.options
            options = ApplicationOptions(env=dict(opts.get("env") or {}), log_level=opts.get("log_level") or "default")
            node._apps.start(f.name, ApplicationMode(f.mode) if f.mode else None, options)
        except ErgoError as e:
            error = e
        except Exception as e:  # a member's init that raised: the requester learns why
            error = Incorrect(f"starting the application {f.name!r} failed: {brief_error(e, 300)}"[:400])
        conn.send(enp.Result(f.from_, f.ref, error, None), 0)

    def _on_undecodable(self, conn: Connection, f: Any) -> None:
        msg = f.message
        # one line per second per peer at most: a batch frame can hold one undecodable value
        # every few bytes, and a line for each let a peer write 50000 lines per MiB it sent
        if conn.undecodable.allow():
            self.log.warning("network: a %s from %s could not be decoded and was dropped: %s%s",
                             type(msg).__name__, conn.name, f.error, conn.undecodable.held_back())
        ref = getattr(msg, "ref", None)
        if type(msg) in (enp.RequestPID, enp.RequestProcessID, enp.RequestAlias) and ref is not None:
            why = Malformed(f"{_text(self._node._name)} could not decode the request: {f.error}")
            conn.send(enp.ResponseError(self._node._core_pid, msg.from_, ref, why), 0)
        elif type(msg) in (enp.Response, enp.ResponseError) and ref is not None:
            if self._asked(conn, ref, msg.to):
                why = Malformed(f"the reply from {_text(conn.name)} could not be decoded: {f.error}")
                self._node._route_response(msg.to, ref, None, why)
        elif type(msg) in (enp.Result, enp.Ack) and ref is not None:
            # the answer to a link, monitor, spawn, application start or important send of
            # this node: what waits for it (a future, the watchers, a table entry) is told
            # that it came and could not be read, rather than waiting for the connection's end
            answer = conn.waiting.pop(ref, None)
            if answer is not None:
                answer(Malformed(f"the answer from {_text(conn.name)} could not be decoded: {f.error}"), None)
            elif conn.orphans:
                conn.orphans.pop(ref, None)  # whether the peer subscribed cannot be read
        elif getattr(msg, "important", False) and ref is not None:
            conn.send(enp.Ack(self._node._core_pid, msg.from_, ref, Malformed(str(f.error))), 0)

    def _on_heartbeat(self, conn: Connection, f: Any) -> None:
        pass

    # -- what the user sees ---------------------------------------------------------------

    def nodes(self) -> list[Atom]:
        """The names of the connected peers."""
        return [c.name for c in self._connections.values()]

    def node(self, name: Any) -> RemoteNode:
        """The connected peer ``name``; ``NoConnection`` if there is no connection to it (see
        :meth:`get_node`, which makes one)."""
        conn = self._connections.get(_text(_node_name(name)))
        if conn is None:
            raise NoConnection(f"{_text(self.node_name)} is not connected to {name}")
        return RemoteNode(self, conn)

    def get_node(self, name: Any) -> Future[RemoteNode]:
        """The peer ``name``, connected first if need be (Ergo's ``GetNode``): ``await`` the
        future in a handler, or ``node.wait_for(...)`` outside one.  It fails with
        ``NoRoute``, ``NoConnection`` (refused, wrong cookie, unreachable) or ``Timeout``;
        a ``name`` that is no node name (``name@host``) raises ``Incorrect`` at once."""
        return self.connect(name)

    @property
    def node_name(self) -> Atom:
        return self._node._name

    def info(self) -> dict[str, Any]:
        """The network as it is now: mode, acceptors, registrar, routes, what remote nodes
        may spawn here, and each peer (links, messages and bytes in and out)."""
        return {
            "mode": self.mode,
            "acceptors": [{"host": lst.address[0], "port": lst.address[1], "max_message_size": info.max_message_size,
                           "flags": NetworkFlags(info.flags), "handshake_version": handshake.VERSION,
                           "proto_version": info.version}
                          for lst, info in zip(self._listeners, self._acceptor_infos)],
            "registrar": self._registrar.info() if self._registrar is not None else None,
            "max_message_size": self.options.max_message_size,
            "flags": NetworkFlags(self.hs_info.flags),
            "pool_size": self.options.pool_size,
            "routes": [{"match": m, "host": r.host, "port": r.port, "tls": r.tls, "weight": w}
                       for m, _, r, w in self._routes],
            "spawn": sorted(self._spawnable),
            "application_start": sorted(self._startable),
            "peers": {_text(name): self.peer_info(conn) for name, conn in self._connections.items()},
        }

    def peer_info(self, conn: Connection) -> dict[str, Any]:
        consumer = self._consumers.get(_text(conn.name))
        return {
            "name": conn.name,
            "creation": conn.creation,
            "state": conn.state,
            "uptime": self.scheduler.now() - conn.since if conn.state is UP else 0.0,
            "dialed": conn.dialed,
            "flags": NetworkFlags(conn.peer.flags) if conn.peer is not None else NetworkFlags(0),
            "offered": NetworkFlags(conn.offered),
            "max_message_size": conn.peer.max_message_size if conn.peer is not None else 0,
            # what the link speaks (a peer of another version is refused in the handshake)
            "handshake_version": handshake.VERSION,
            "proto_version": conn.peer.version if conn.peer is not None else 0,
            "pool_size": conn.pool_size,
            "links": len(conn.links),
            "messages_in": conn.frames_in,
            "messages_out": conn.frames_out,
            "bytes_in": conn.bytes_in_gone + sum(link.bytes_in for link in conn.links),
            "bytes_out": conn.bytes_out_gone + sum(link.bytes_out for link in conn.links),
            "calls_in_flight": len(conn._calls_in or ()),
            # calls from the peer that this node's processes owe an answer, and how many were forgotten
            "calls_owed": len(conn.owed),
            "calls_forgotten": conn.owed_forgotten,
            "watching_here": len((consumer._linked or {}) if consumer else ()) +
            len((consumer._monitored or {}) if consumer else ()),
        }

    def enable_spawn(self, name: str, factory: Callable[..., Any], nodes: Any = None) -> None:
        if not isinstance(name, str) or not name:
            raise Incorrect(f"a spawnable name is a non-empty str, not {name!r}"[:200])
        if not callable(factory):
            raise Incorrect(f"a spawnable factory is a Process class or a callable, not {type(factory).__name__}")
        self._spawnable[name] = (factory, _allowed_nodes(nodes, "enable_spawn"))

    def disable_spawn(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise Incorrect(f"a spawnable name is a non-empty str, not {name!r}"[:200])
        if self._spawnable.pop(name, None) is None:
            raise NameUnknown(f"{name!r} is not enabled for remote spawn")

    def enable_application_start(self, name: str, nodes: Any = None) -> None:
        """Let peers (all, or the nodes named) start the application ``name`` here (Ergo's
        ``EnableApplicationStart``); it need not be loaded yet, only when a start comes."""
        if not isinstance(name, str) or not name:
            raise Incorrect(f"an application name is a non-empty str, not {name!r}"[:200])
        self._startable[name] = _allowed_nodes(nodes, "enable_application_start")

    def disable_application_start(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise Incorrect(f"an application name is a non-empty str, not {name!r}"[:200])
        if name not in self._startable:
            raise NameUnknown(f"{name!r} is not enabled for remote application start")
        del self._startable[name]


class _Accepting:
    """The names whose pending connection waits for an accepted handshake (a live view of
    ``Network._pending`` for the handshake's ``accepting``)."""

    __slots__ = ("_pending",)

    def __init__(self, pending: dict[str, Connection]) -> None:
        self._pending = pending

    def __contains__(self, name: object) -> bool:
        conn = self._pending.get(name) if isinstance(name, str) else None
        return conn is not None and conn.accepting is not None


def _abandon(dial: Future[Stream], pool: list[Link], error: ErgoError) -> None:
    """A dial of a connection gone down: a connect still pending is given up (the seam's
    way: its future completed, the transport stops dialling and frees the port), a stream
    still in its handshake is aborted (nothing will use it); one that joined the ``pool``
    was closed with the pool."""
    if not dial.done():
        dial.set_exception(error)
    elif dial._exception is None:
        stream = dial._result
        if not stream.closing and not any(link.stream is stream for link in pool):
            stream.abort()


def _held_back(allowed: tuple[int, float], what: str, every: float) -> str:
    """The end of a line let through by ``Repeats``: how many like it were not logged."""
    held, ago = allowed
    if not held:
        return ""
    return f" ({held} more {what} since the last such line, {ago:.0f} s ago; at most one line every {every:g} s)"


def _same_pid(caller: PID, to: Any) -> bool:
    """``caller == to`` for the caller of a call (a PID) and the PID a reply names: the
    fields compared as PID's ``__eq__`` compares them, without its Python frame (``to`` is
    most often the caller's own object, which the link's codec hands back: see
    enp.LinkCodec, Calls)."""
    return caller is to or (
        type(to) is PID and caller.id == to.id and caller.creation == to.creation and caller.node == to.node
    )


def _text(name: Any) -> str:
    """A node name as a plain str (an Atom's ``str()`` is quoted, as Ergo prints atoms)."""
    return str.__str__(name)


def _allowed_nodes(nodes: Any, what: str) -> frozenset[str] | None:
    """The names of ``nodes`` (None: every node), or ``Incorrect``: a single name given
    bare (a str is iterable, letter by letter), something that is no collection, a
    member that is no node name."""
    if nodes is None:
        return None
    if isinstance(nodes, (str, bytes, bytearray)) or not isinstance(nodes, Iterable):
        raise Incorrect(f"{what}'s nodes are None (every node) or a collection of node names such as "
                        f"['b@host'], not {nodes!r}"[:200])
    return frozenset(_text(_node_name(n)) for n in nodes)


def _node_name(name: Any) -> Atom:
    from ..node.node import validate_node_name

    return validate_node_name(name)


#: the options of a spawn that sets none
_NO_OPTIONS = ProcessOptions()


def _check_spawn_request(name: Any, args: tuple[Any, ...], options: Any) -> None:
    """``Incorrect`` for a remote spawn asked wrongly: ``name`` not a non-empty str,
    ``options`` not ProcessOptions, or ProcessOptions among the arguments for ``init``, in
    Ergo's order (``RemoteSpawn(node, name, options, args...)``): encoding them said to
    register ProcessOptions as a type, which would have handed them to ``init``."""
    if not isinstance(name, str) or not name:
        raise Incorrect(f"a remote spawn names what the peer enabled, a non-empty str, not {name!r}"[:200])
    if options is not None and not isinstance(options, ProcessOptions):
        raise Incorrect(f"options must be ProcessOptions, not {type(options).__name__}")
    for a in args:
        if type(a) is ProcessOptions:
            raise Incorrect("ProcessOptions go in options=..., not among init's arguments (Ergo's order): "
                            "remote_spawn(node, name, *args, options=ProcessOptions(...)), and so for "
                            "RemoteNode.spawn(name, *args, options=...)")


def _spawn_fields(options: ProcessOptions, parent_level: LogLevel) -> dict[str, Any]:
    """``options`` as the plain values a Spawn frame carries (docs/wire.md), with the
    requester's log level (Ergo's ``ProcessOptionsExtra.ParentLogLevel``).  Only what
    differs from a default travels.  ``link_child`` does not: the requester links."""
    fields: dict[str, Any] = {"parent_log_level": str(parent_level)}
    if options.mailbox_size:
        fields["mailbox_size"] = options.mailbox_size
    if options.important_delivery:
        fields["important_delivery"] = True
    if options.link_parent:
        fields["link_parent"] = True
    if options.env:
        fields["env"] = dict(options.env)
    if options.log_level is not LogLevel.DEFAULT:
        fields["log_level"] = str(options.log_level)
    if options.send_priority is not MessagePriority.NORMAL:
        fields["send_priority"] = int(options.send_priority)
    c = options.compression
    if c != _NO_OPTIONS.compression:
        fields["compression"] = [c.enable, int(c.level), c.threshold]
    if options.fallback is not None:
        fields["fallback"] = [options.fallback.name, options.fallback.tag]
    if options.leader is not None:
        fields["leader"] = options.leader
    return fields


def _spawn_options(fields: Any) -> ProcessOptions:
    """The ProcessOptions a peer's Spawn frame carries (see ``_spawn_fields``); ``Incorrect``
    for anything a local spawn would refuse, or of the wrong shape."""
    if not isinstance(fields, dict):
        raise Incorrect(f"a spawn's options are a map, not {type(fields).__name__}")
    kw: dict[str, Any] = {}
    for key in ("mailbox_size", "important_delivery", "link_parent", "send_priority", "leader"):
        value = fields.get(key)
        if value is not None:
            kw[key] = value
    env = fields.get("env")
    if env is not None:
        if not isinstance(env, dict) or not all(isinstance(k, str) for k in env):
            raise Incorrect(f"a spawn's env is a map of names (str) to values, not {type(env).__name__}")
        kw["env"] = env
    compression = fields.get("compression")
    if compression is not None:
        if not isinstance(compression, list) or len(compression) != 3:
            raise Incorrect(f"a spawn's compression is [enable, level, threshold], not {type(compression).__name__}")
        kw["compression"] = CompressionOptions(*compression)
    fallback = fields.get("fallback")
    if fallback is not None:
        if not isinstance(fallback, list) or len(fallback) != 2:
            raise Incorrect(f"a spawn's fallback is [name, tag], not {type(fallback).__name__}")
        kw["fallback"] = Fallback(*fallback)
    level = LogLevel.parse(fields.get("log_level") or LogLevel.DEFAULT)
    parent_level = fields.get("parent_log_level")
    if level is LogLevel.DEFAULT and parent_level is not None:
        level = LogLevel.parse(parent_level)  # Ergo: a process's default level is its parent's
    kw["log_level"] = level
    return ProcessOptions(**kw)


_DISPATCH: dict[type, Callable[[Network, Connection, Any], None]] = {
    enp.SendPID: Network._on_send,
    enp.SendProcessID: Network._on_send,
    enp.SendAlias: Network._on_send,
    enp.SendEvent: Network._on_event,
    enp.SendExit: Network._on_exit,
    enp.RequestPID: Network._on_request,
    enp.RequestProcessID: Network._on_request,
    enp.RequestAlias: Network._on_request,
    enp.Response: Network._on_response,
    enp.ResponseError: Network._on_response_error,
    enp.Link: Network._on_watch,
    enp.Monitor: Network._on_watch,
    enp.Unlink: Network._on_unwatch,
    enp.Demonitor: Network._on_unwatch,
    enp.Result: Network._on_answer,
    enp.Ack: Network._on_answer,
    enp.Spawn: Network._on_spawn,
    enp.ApplicationStart: Network._on_application_start,
    enp.TerminatePID: Network._on_terminate,
    enp.TerminateProcessID: Network._on_terminate,
    enp.TerminateAlias: Network._on_terminate,
    enp.TerminateEvent: Network._on_terminate,
    enp.Heartbeat: Network._on_heartbeat,
    enp.Undecodable: Network._on_undecodable,
}

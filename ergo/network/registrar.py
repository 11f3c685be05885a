"""The registrar: where a node registers the routes it accepts connections on, and where a
node dialling ``name@host`` learns that node's routes.

:class:`Registrar` is the small interface the rest of the network layer uses (register,
unregister, resolve), so that a registrar on a cluster store (etcd) can stand in for the
one here without touching connections.  :class:`EsrdRegistrar` is Ergo's ESRD ("Ergo
Service Registration and Discovery") over the transport seam, speaking the protocol of
:mod:`ergo.wire.registrar`:

* **One server per host.**  The first registrar on a host to register a node binds the
  registrar port (4499) twice: a TCP listener for registrations and a UDP endpoint for
  resolves.  Its own nodes are registered in-process.  Every other registrar on that host
  finds the port taken and registers each of its nodes over a TCP connection to it (one
  connection per node); the server keeps the name while that connection lives and drops
  it when the connection closes.  A name already registered refuses the new one with
  ``Taken``.  A connection registers one node, once: after a refused request or its
  ``Unregister`` the server answers and closes it.  Only the host's own nodes register:
  a connection from another machine (neither from a loopback address nor from the
  address it reached) is closed at once, logged, and counted in ``info()["foreign"]``
  (Ergo's server listens for registrations on localhost alone).
* **Failover.**  When the serving registrar goes (closed, or its process died: its
  connections close), every survivor waits a random delay below the retry period (drawn
  from the scheduler's ``random``, so a simulation is determined by its seed) and tries to
  bind the port again: the first one serves, the others find the port taken and register
  with it.  A re-registration that fails is retried every retry period (jittered) until
  the registrar is closed.
* **Resolving** ``name@host`` sends a ``Resolve`` datagram to ``host``'s registrar port
  from an ephemeral UDP port of its own and waits for the ``ResolveReply``, sending again
  a few times on silence (datagrams may be lost) within a bounded total time, then fails
  with ``NoConnection`` saying which registrar did not answer.  Only a reply from the
  address and port the ``Resolve`` went to is taken (see :class:`_Query`).  A name the host's registrar
  does not know fails with ``NoRoute``.  The server resolves its own host's names without
  a datagram.
* **Bad input.**  Malformed bytes on a registration connection close that connection
  (logged; its name, if any, is dropped); a connection that does not register within the
  attempt timeout is closed too.  A malformed datagram is dropped (logged).  Either way the
  server keeps serving everyone else.  What one registration carries is bounded
  (``MAX_ROUTES``, ``MAX_RESOLVE_REPLY``), and so is the answer for an unknown name, so
  that the reply to a ``Resolve``, sent to a source anyone can forge, stays small.

All of it runs on the scheduler's thread, driven by the transport's callbacks and the
scheduler's timers: nothing here blocks, sleeps or reads a clock of its own.
"""

from __future__ import annotations

import ipaddress
import logging
from abc import ABC, abstractmethod
from typing import Any, Protocol

from ..gen.errors import (
    ErgoError,
    Incorrect,
    NameUnknown,
    NetworkStopped,
    NoConnection,
    NoRoute,
    Taken,
    TooLarge,
    Unregistered,
)
from ..gen.ids import node_name_problem
from ..scheduler import Future, Scheduler, TimerHandle, check_delay
from ..transport import (
    Address,
    DatagramEndpoint,
    DatagramProtocol,
    Listener,
    Stream,
    StreamProtocol,
    Transport,
    check_address,
)
from ..wire.registrar import (
    DEFAULT_PORT,
    MessageDecoder,
    Register,
    RegisterReply,
    RegistrarProtocolError,
    Resolve,
    ResolveReply,
    Route,
    Unregister,
    UnregisterReply,
    decode_datagram,
    encode,
)
from .throttle import Throttle, printable_log

__all__ = [
    "DEFAULT_ATTEMPT_TIMEOUT",
    "DEFAULT_PORT",
    "DEFAULT_REGISTER_TIMEOUT",
    "DEFAULT_RESOLVE_TIMEOUT",
    "DEFAULT_RESOLVE_TRIES",
    "DEFAULT_RETRY",
    "EsrdRegistrar",
    "CONN_LINES",
    "MAX_REGISTERED",
    "MAX_RESOLVE_REPLY",
    "MAX_ROUTES",
    "MAX_UNREGISTERED",
    "Registrar",
    "RegistrarLog",
    "Route",
]

#: seconds: survivors of a lost server try to bind within this; failed re-registrations retry every this (jittered)
DEFAULT_RETRY = 1.0
#: seconds one registration attempt (connect, Register, RegisterReply) may take; also how
#: long the server waits for a new connection's Register before closing it
DEFAULT_ATTEMPT_TIMEOUT = 2.0
#: seconds a first ``register`` keeps trying before it fails with ``NoConnection``
DEFAULT_REGISTER_TIMEOUT = 5.0
#: seconds a ``resolve`` waits for the host's registrar in all, and how many datagrams it sends meanwhile
DEFAULT_RESOLVE_TIMEOUT = 3.0
DEFAULT_RESOLVE_TRIES = 3
#: accepted registration connections that have not registered yet that a server keeps; one more closes the oldest
MAX_UNREGISTERED = 64
#: lines about the server's registration connections logged one by one each second at most
CONN_LINES = 100
#: names a serving registrar holds at most (a host runs a few nodes, not thousands)
MAX_REGISTERED = 1024
#: routes one registration may carry (a node registers one per acceptor)
MAX_ROUTES = 16
#: the largest ResolveReply a registration may need (bytes, header included): the routes
#: of one node, a few acceptors (one acceptor on a host name of 40 characters: 57 bytes;
#: eight on 127.0.0.1: 144).  A reply to a UDP question anyone can ask with a forged source
#: is an amplifier: a reply of a whole datagram (64 KiB for a 10-byte Resolve) was a
#: 6500-fold one; at this bound a reply is at most 256 bytes, 25.6 times the smallest
#: Resolve (of ``a@h``: 10 bytes), 7.5 times on the wire (with 28 bytes of IP and UDP
#: headers each)
MAX_RESOLVE_REPLY = 256
#: the text of the NoRoute a server answers for a name it does not hold: anyone may ask
#: for any name, and the name repeated in the reply made it the question's length plus
#: some 60 bytes (the resolver says which name and which registrar itself)
_NOT_REGISTERED = "not registered"


class RegistrarLog(Protocol):
    """Where the registrar's lines go: a node's ``log`` fits (``fmt % args`` formatting)."""

    def debug(self, fmt: str, *args: Any) -> None: ...
    def info(self, fmt: str, *args: Any) -> None: ...
    def warning(self, fmt: str, *args: Any) -> None: ...
    def error(self, fmt: str, *args: Any) -> None: ...


class _TreeLog:
    """The default: the standard ``logging`` tree's ``ergo.registrar`` logger."""

    def __init__(self) -> None:
        self._logger = logging.getLogger("ergo.registrar")

    def debug(self, fmt: str, *args: Any) -> None:
        self._logger.debug(fmt, *args)

    def info(self, fmt: str, *args: Any) -> None:
        self._logger.info(fmt, *args)

    def warning(self, fmt: str, *args: Any) -> None:
        self._logger.warning(fmt, *args)

    def error(self, fmt: str, *args: Any) -> None:
        self._logger.error(fmt, *args)


class Registrar(ABC):
    """What the network layer asks of a registrar (one per node's network).

    Every method runs on the scheduler's thread.  Bad arguments raise ``Incorrect`` at
    once, and so does calling a closed registrar (``NetworkStopped``); what can only be
    learnt later comes through the returned future.
    """

    @abstractmethod
    def register(self, node: str, routes: tuple[Route, ...]) -> Future[None]:
        """Make ``node`` (``name@host``) resolvable to ``routes`` (at least one) for as long
        as this registrar lives or until :meth:`unregister`.

        The future completes with None once registered; it fails with ``Taken`` when the
        name is registered already (by anyone), with ``NoConnection`` when no registrar
        could be reached in time.  After that the registrar keeps the registration alive
        by itself (re-registering after a failover).
        """

    @abstractmethod
    def unregister(self, node: str) -> None:
        """Stop registering ``node``; a pending :meth:`register` of it fails with
        ``Unregistered``.  A name this registrar does not register: nothing happens."""

    @abstractmethod
    def resolve(self, node: str) -> Future[tuple[Route, ...]]:
        """The routes of ``node`` (``name@host``), asked of ``host``'s registrar.

        Fails with ``NoRoute`` when that registrar does not know the name, with
        ``NoConnection`` when it does not answer within the resolve timeout.  A caller
        that no longer wants the answer completes the future itself (``set_exception``,
        as a transport's connect is given up): a resolve nobody waits for any more stops.
        """

    @abstractmethod
    def close(self) -> None:
        """Drop every registration, stop serving (if serving) and fail what is pending with
        ``NetworkStopped``.  Idempotent."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """What the registrar is doing, for ``network().info()`` (plain values only)."""


def _node_host(node: object) -> str:
    """The host part of ``name@host``, or ``Incorrect``."""
    problem = node_name_problem(node)
    if problem is not None:
        raise Incorrect(problem)
    return str.__str__(node).split("@", 1)[1]  # (a str: node_name_problem said so)


def _positive(seconds: object, what: str) -> float:
    """A timing in seconds > 0: zero would make a retry loop spin without time passing."""
    value = check_delay(seconds, what)
    if value == 0:
        raise Incorrect(f"{what} is a number of seconds > 0, not 0")
    return value


def _check_routes(node: str, routes: object) -> tuple[Route, ...]:
    if not isinstance(routes, tuple) or not routes or not all(type(r) is Route for r in routes):
        raise Incorrect(f"{node} registers a non-empty tuple of Route, not {routes!r}"[:200])
    encode(Register(node, routes))  # Incorrect if it cannot be sent
    too_large = _reply_too_large(node, routes)
    if too_large is not None:
        raise too_large
    return routes


def _reply_too_large(node: str, routes: tuple[Route, ...]) -> TooLarge | None:
    """Why ``node`` may not register ``routes`` (checked by the register call and by the
    server alike), or None: at most MAX_ROUTES of them, and their ResolveReply must fit
    MAX_RESOLVE_REPLY bytes, since a Resolve of a few bytes, from any (forgeable) UDP
    source, must not fetch much more."""
    if len(routes) > MAX_ROUTES:
        return TooLarge(f"{node} registers {len(routes)} routes, more than {MAX_ROUTES} (MAX_ROUTES; a node "
                        "registers one per acceptor, NetworkOptions.acceptors)")
    size = len(encode(ResolveReply(routes)))
    if size <= MAX_RESOLVE_REPLY:
        return None
    return TooLarge(f"{node} registers {len(routes)} routes whose resolve reply would be {size} bytes, more than "
                    f"{MAX_RESOLVE_REPLY} (MAX_RESOLVE_REPLY): fewer acceptors or shorter host names fit")


#: failed registration attempts in a row at which the streak is said again (a warning),
#: then every _STILL_FAILING_EVERY attempts (at the default retry of 1 s: about every 10 min)
_STILL_FAILING = frozenset({10, 100})
_STILL_FAILING_EVERY = 600


class _Registration:
    """One node this registrar registers: where it stands, and its first ``register``'s future."""

    __slots__ = ("conn", "deadline", "failures", "future", "last_failure", "local", "node", "routes", "since",
                 "timer")

    def __init__(self, node: str, routes: tuple[Route, ...], future: Future[None]) -> None:
        self.node = node
        self.routes = routes
        #: the first register's future while it is pending; None once it completed
        self.future: Future[None] | None = future
        #: the first register's give-up timer, while it is pending
        self.deadline: TimerHandle | None = None
        #: why the last attempt failed (said when the first register gives up)
        self.last_failure = "no attempt finished"
        #: the registration connection (to another registrar on this host), while there is one
        self.conn: _ClientConn | None = None
        #: registered in this registrar's own server
        self.local = False
        #: the next attempt, while one waits
        self.timer: TimerHandle | None = None
        #: failed attempts in a row (the first of a streak is logged as a warning, and the
        #: streak again at _STILL_FAILING attempts, then every _STILL_FAILING_EVERY)
        self.failures = 0
        #: when the streak began
        self.since = 0.0

    @property
    def state(self) -> str:
        if self.local or (self.conn is not None and self.conn.registered):
            return "registered"
        return "registering" if self.conn is not None else "waiting"


class EsrdRegistrar(Registrar):
    """Ergo's ESRD registrar for the nodes of ``host`` (the part after ``@`` of their names).

    ``transport`` and ``scheduler`` are the node's; ``port`` is the registrar port (TCP and
    UDP) on every host, 4499 unless a test or a deployment picks another.  The timings are
    in seconds (see the module's constants).  ``log`` gets the registrar's lines (a node's
    ``log`` fits; by default the ``ergo.registrar`` logger of the ``logging`` tree).
    """

    def __init__(self, scheduler: Scheduler, transport: Transport, host: str, *, port: int = DEFAULT_PORT,
                 log: RegistrarLog | None = None, retry: float = DEFAULT_RETRY,
                 attempt_timeout: float = DEFAULT_ATTEMPT_TIMEOUT,
                 register_timeout: float = DEFAULT_REGISTER_TIMEOUT,
                 resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT,
                 resolve_tries: int = DEFAULT_RESOLVE_TRIES) -> None:
        check_address(host, port, "the registrar")
        if port == 0:
            raise Incorrect("the registrar's port is a fixed port every host agrees on, not 0")
        if type(resolve_tries) is not int or resolve_tries < 1:
            raise Incorrect(f"resolve_tries is an int >= 1, not {resolve_tries!r}"[:200])
        self._scheduler = scheduler
        self._transport = transport
        self.host = host
        self.port = port
        # (names a Register gives, any program of the host chooses: escaped in its lines)
        self._log: RegistrarLog = printable_log(log if log is not None else _TreeLog())
        self._retry = _positive(retry, "retry")
        self._attempt_timeout = _positive(attempt_timeout, "attempt_timeout")
        self._register_timeout = _positive(register_timeout, "register_timeout")
        self._resolve_timeout = _positive(resolve_timeout, "resolve_timeout")
        self._resolve_tries = resolve_tries
        self._where = f"{host}:{port}"
        self._closed = False
        #: the nodes this registrar registers, in the order they were registered
        self._regs: dict[str, _Registration] = {}
        #: resolves in flight, one per node name (later askers of the same name wait on it)
        self._queries: dict[str, _Query] = {}
        # the server, while this registrar is the one serving its host
        self._listener: Listener | None = None
        self._endpoint: DatagramEndpoint | None = None
        #: name -> (routes, owner): owner is a _Registration of ours or a _ServerConn
        self._table: dict[str, tuple[tuple[Route, ...], _Registration | _ServerConn]] = {}
        self._server_conns: dict[_ServerConn, None] = {}
        #: the accepted connections that have not registered yet, oldest first (see MAX_UNREGISTERED)
        self._unregistered: dict[_ServerConn, None] = {}
        #: malformed datagrams dropped and registration connections closed for bad bytes, while serving
        self._malformed = 0
        #: registration connections from another machine closed at once, while serving (see _from_this_host)
        self._foreign = 0
        #: lines about the server's registration connections (_about_conn), and dropped datagrams
        self._conn_lines = Throttle(self._scheduler, CONN_LINES, self._conn_lines_told)
        self._dropped = Throttle(self._scheduler, 1)
        #: datagrams our resolves dropped (not from the registrar asked, malformed, not a
        #: ResolveReply), and the line a second at most that says so
        self._dropped_replies = 0
        self._dropped_reply_lines = Throttle(self._scheduler, 1)
        #: the address of ``host`` a resolve's UDP port was bound on (see _Query.start)
        self._ask_from: str | None = None

    # -- the interface --------------------------------------------------------------------

    def register(self, node: str, routes: tuple[Route, ...]) -> Future[None]:
        self._check_open()
        host = _node_host(node)
        if host != self.host:
            raise Incorrect(f"{node} is not a node of host {self.host}: its registrar is on {host}")
        routes = _check_routes(node, routes)
        if node in self._regs:
            raise Taken(f"{node} is registered already by this registrar")
        future: Future[None] = Future()
        reg = _Registration(node, routes, future)
        self._regs[node] = reg
        reg.deadline = self._scheduler.call_later(self._register_timeout, self._give_up, reg)
        self._attempt(reg)
        return future

    def unregister(self, node: str) -> None:
        _node_host(node)
        reg = self._regs.pop(node, None)
        if reg is None:
            return
        self._cancel_timer(reg)
        if reg.local:
            reg.local = False
            if self._table.get(node, (None, None))[1] is reg:
                del self._table[node]
        conn, reg.conn = reg.conn, None
        if conn is not None:
            conn.unregister()
        self._settle(reg, Unregistered(f"{node} was unregistered before its registration completed"))
        self._log.info("registrar: unregistered %s", node)

    def resolve(self, node: str) -> Future[tuple[Route, ...]]:
        self._check_open()
        host = _node_host(node)
        future: Future[tuple[Route, ...]] = Future()
        if self._listener is not None and host == self.host:
            entry = self._table.get(node)
            if entry is None:
                future.set_exception(NoRoute(f"no route to {node}: the registrar on {self._where} does not know it"))
            else:
                future.set_result(entry[0])
            return future
        query = self._queries.get(node)
        if query is None:
            query = self._queries[node] = _Query(self, node, host)
            query.waiters.append(future)
            query.start()
        else:
            query.waiters.append(future)
        if not query.done:
            future._on_done(query.given_up)
        return future

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        stopped = NetworkStopped(f"the registrar on {self._where} was closed")
        regs = list(self._regs.values())
        self._regs.clear()
        for reg in regs:
            self._cancel_timer(reg)
            conn, reg.conn = reg.conn, None
            if conn is not None:
                conn.drop()  # the server drops the name when the connection closes
            self._settle(reg, stopped)
        for query in list(self._queries.values()):
            query.finish(stopped)
        if self._listener is not None:
            self._stop_serving()

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "registrar": "ESRD",
            "mode": "closed" if self._closed else "server" if self._listener is not None else "client",
            "host": self.host,
            "port": self.port,
            "nodes": {node: reg.state for node, reg in self._regs.items()},
            "resolving": sorted(self._queries),
            "dropped_replies": self._dropped_replies,
        }
        if self._listener is not None:
            info["registered"] = sorted(self._table)
            info["connections"] = len(self._server_conns)
            info["malformed"] = self._malformed
            info["foreign"] = self._foreign
        return info

    def __repr__(self) -> str:
        mode = "closed" if self._closed else "server" if self._listener is not None else "client"
        return f"<EsrdRegistrar {self._where} {mode} nodes={list(self._regs)}>"

    # -- registering ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise NetworkStopped(f"the registrar on {self._where} is closed")

    def _cancel_timer(self, reg: _Registration) -> None:
        if reg.timer is not None:
            reg.timer.cancel()
            reg.timer = None

    def _settle(self, reg: _Registration, error: ErgoError | None) -> None:
        """Complete the first register of ``reg`` (failed: ``reg`` is forgotten)."""
        future, reg.future = reg.future, None
        if reg.deadline is not None:
            reg.deadline.cancel()
            reg.deadline = None
        if future is None:
            return
        if error is None:
            future.set_result(None)
            return
        if self._regs.get(reg.node) is reg:
            del self._regs[reg.node]
        self._cancel_timer(reg)
        conn, reg.conn = reg.conn, None
        if conn is not None:
            conn.drop()
        future.set_exception(error)

    def _give_up(self, reg: _Registration) -> None:
        reg.deadline = None
        if reg.future is not None:
            self._settle(reg, NoConnection(
                f"cannot register {reg.node}: no registrar on {self._where} took it within "
                f"{self._register_timeout} s (last attempt: {reg.last_failure})"))

    def _current(self, reg: _Registration) -> bool:
        return not self._closed and self._regs.get(reg.node) is reg

    def _attempt(self, reg: _Registration) -> None:
        """Register ``reg`` now: with our own server (binding the port if it is free), else
        over a new connection to the registrar that holds it."""
        reg.timer = None
        if not self._current(reg):
            return
        if self._listener is None and self._try_serve():
            return  # serving now: _try_serve registered every node of ours here, reg included
        if self._listener is not None:
            self._register_here(reg)
            return
        conn = reg.conn = _ClientConn(self, reg)
        try:
            connecting = self._transport.connect(self.host, self.port, lambda: conn)
        except ErgoError as e:
            reg.conn = None
            self._attempt_failed(reg, str(e))
            return
        conn.started(connecting)

    def _try_serve(self) -> bool:
        """Bind the registrar port (TCP, then UDP); True if this registrar serves its host now."""
        try:
            listener = self._transport.listen(self.host, self.port, self._accept)
        except Taken:
            return False
        except ErgoError as e:  # the host cannot bind it at all (a wrong address, a privileged port)
            self._log.debug("registrar: cannot serve on %s: %s", self._where, e)
            return False
        try:
            endpoint = self._transport.datagram(self.host, self.port, _ServerDatagrams(self))
        except ErgoError as e:
            listener.close()
            self._log.debug("registrar: cannot serve on %s: %s", self._where, e)
            return False
        self._listener, self._endpoint = listener, endpoint
        self._log.info("registrar: serving the nodes of %s on %s (registration over TCP, resolve over UDP)",
                       self.host, self._where)
        for reg in list(self._regs.values()):
            self._cancel_timer(reg)
            conn, reg.conn = reg.conn, None
            if conn is not None:  # a connection to a server that is no more (we hold its port)
                conn.drop()
            self._register_here(reg)
        return True

    def _register_here(self, reg: _Registration) -> None:
        entry = self._table.get(reg.node)
        if entry is not None and entry[1] is not reg:
            self._refused(reg, Taken(f"{reg.node} is registered already (registrar on {self._where})"))
            return
        self._table[reg.node] = (reg.routes, reg)
        reg.local = True
        self._registered(reg)

    def _registered(self, reg: _Registration) -> None:
        again = reg.future is None
        reg.failures = 0
        self._settle(reg, None)
        if again:
            self._log.info("registrar: %s is registered again (registrar on %s)", reg.node, self._where)
        else:
            self._log.debug("registrar: registered %s (registrar on %s)", reg.node, self._where)

    def _refused(self, reg: _Registration, error: ErgoError) -> None:
        """The registrar answered no (``Taken``, ``Incorrect``): a first register fails with
        it; a re-registration keeps trying (a stale name goes when its connection does)."""
        if reg.future is not None:
            self._settle(reg, error)
            return
        self._attempt_failed(reg, f"refused: {error}")

    def _lost(self, reg: _Registration, error: ErgoError | None) -> None:
        """A registered node's connection closed: the server went (or dropped us); try again
        within the retry period, jittered so that the survivors do not all bind at once."""
        why = f" ({error})" if error is not None else ""
        self._log.warning("registrar: lost the registration connection of %s to %s%s; registering again",
                          reg.node, self._where, why)
        reg.timer = self._scheduler.call_later(self._scheduler.random.uniform(0, self._retry), self._attempt, reg)

    def _attempt_failed(self, reg: _Registration, reason: str) -> None:
        if not self._current(reg):
            return
        reg.last_failure = reason
        delay = self._retry * self._scheduler.random.uniform(0.5, 1.5)
        reg.failures += 1
        if reg.failures == 1:
            reg.since = self._scheduler.now()
            self._log.warning("registrar: registering %s with %s failed (%s); trying again in %.3f s", reg.node,
                              self._where, reason, delay)
        elif reg.failures in _STILL_FAILING or reg.failures % _STILL_FAILING_EVERY == 0:
            # a streak that goes on is said again, ever more seldom: the first line alone,
            # an hour ago, read as if it had since worked, while peers still get NoRoute
            self._log.warning("registrar: %s is still not registered with %s: %d attempts failed in %.0f s "
                              "(the last: %s); trying again every %g s or so", reg.node, self._where,
                              reg.failures, self._scheduler.now() - reg.since, reason, self._retry)
        else:
            self._log.debug("registrar: registering %s with %s failed (%s); trying again in %.3f s", reg.node,
                            self._where, reason, delay)
        reg.timer = self._scheduler.call_later(delay, self._attempt, reg)

    # -- serving --------------------------------------------------------------------------

    def _accept(self) -> StreamProtocol:
        return _ServerConn(self)

    def _stop_serving(self) -> None:
        listener, endpoint = self._listener, self._endpoint
        self._listener = self._endpoint = None
        if listener is not None:
            listener.close()
        if endpoint is not None:
            endpoint.close()
        conns = list(self._server_conns)
        self._server_conns.clear()
        self._unregistered.clear()
        self._table.clear()
        for conn in conns:
            conn.close()  # a clean close: the nodes behind them fail over
        self._log.info("registrar: stopped serving on %s", self._where)

    def _serve_register(self, conn: _ServerConn, msg: Register) -> ErgoError | None:
        """Whether ``conn`` may register ``msg.node``: None (registered), else why not."""
        if conn.node is not None:
            return Incorrect(f"this connection registers {conn.node} already: one node per registration connection")
        host = _node_host(msg.node)
        if host != self.host and not _same_address(conn, host):
            return Incorrect(f"{msg.node} is not a node of host {self.host}")
        if not msg.routes:
            return Incorrect(f"{msg.node} registers no route")
        too_large = _reply_too_large(msg.node, msg.routes)
        if too_large is not None:
            return too_large
        if msg.node in self._table:
            return Taken(f"{msg.node} is registered already (registrar on {self._where})")
        if len(self._table) >= MAX_REGISTERED:
            # each name holds its connection for as long as it likes: without a bound, anyone
            # who reaches the port could hold every socket the node may open
            return TooLarge(f"{len(self._table)} nodes are registered with the registrar on {self._where}: "
                            "the most it serves (MAX_REGISTERED)")
        self._table[msg.node] = (msg.routes, conn)
        conn.node = msg.node
        self._about_conn(self._log.info, "registrar: registered %s from %s:%d", msg.node, *conn.peer)
        return None

    def _serve_unregister(self, conn: _ServerConn, msg: Unregister) -> ErgoError | None:
        if conn.node != msg.node:
            return NameUnknown(f"{msg.node} is not registered over this connection")
        self._forget(conn)
        return None

    def _forget(self, conn: _ServerConn) -> None:
        node, conn.node = conn.node, None
        if node is not None and self._table.get(node, (None, None))[1] is conn:
            del self._table[node]
            self._about_conn(self._log.info, "registrar: %s is no longer registered (its registration connection "
                             "closed or it unregistered)", node)

    def _about_conn(self, say: Any, fmt: str, *args: Any) -> None:
        """Log a line about one registration connection the server took (registered, gone,
        closed for garbage or silence): at most CONN_LINES a second, the rest counted and
        told in one line once the second is over.  Registering is not authenticated, so
        any program of the host (and, a line per connection closed at once, anyone who
        reaches the port) makes such lines, one or two per connection or per
        Register/Unregister pair it sends, and could fill the log at that rate."""
        if self._conn_lines.allow():
            say(fmt, *args)

    def _conn_lines_told(self, count: int) -> None:
        self._log.warning("registrar: %d more lines about registration connections were not logged (more than "
                          "%d a second)", count, CONN_LINES)

    def _dropped_datagram(self, what: str) -> None:
        """Count a bad datagram; log one line a second at most (a datagram costs its sender
        nothing, and its source may be forged: a line for each let anyone fill the log)."""
        self._malformed += 1
        if self._dropped.allow():
            self._log.warning("registrar: dropped %s%s", what, self._dropped.held_back())

    def _dropped_reply(self, what: str) -> None:
        """Count a datagram a resolve dropped; log one line a second at most (anyone may
        send to a resolve's port, from a forged source too)."""
        self._dropped_replies += 1
        if self._dropped_reply_lines.allow():
            self._log.warning("registrar: dropped %s%s", what, self._dropped_reply_lines.held_back())

    def _serve_resolve(self, data: bytes, addr: Address) -> None:
        if self._endpoint is None:
            return
        try:
            msg = decode_datagram(data)
        except RegistrarProtocolError as e:
            self._dropped_datagram(f"a malformed datagram from {addr[0]}:{addr[1]}: {e}")
            return
        if type(msg) is not Resolve:
            self._dropped_datagram(f"a {type(msg).__name__} datagram from {addr[0]}:{addr[1]} "
                                   "(only Resolve is asked over UDP)")
            return
        entry = self._table.get(msg.node)
        if entry is None:
            reply = ResolveReply(error=NoRoute(_NOT_REGISTERED))
        else:
            reply = ResolveReply(entry[0])
        self._endpoint.sendto(encode(reply), addr)


class _ClientConn(StreamProtocol):
    """A node's registration connection to the registrar serving its host."""

    def __init__(self, registrar: EsrdRegistrar, reg: _Registration) -> None:
        self.registrar = registrar
        self.reg: _Registration | None = reg  # None once detached (unregistered, closed, given up)
        self.stream: Stream | None = None
        self.connecting: Future[Stream] | None = None
        self.registered = False
        self.decoder = MessageDecoder()
        self.timer: TimerHandle | None = None
        #: why this attempt failed, when we decided it (a timeout, bad bytes): said instead of the close
        self.reason: str | None = None

    def started(self, connecting: Future[Stream]) -> None:
        self.connecting = connecting
        r = self.registrar
        self.timer = r._scheduler.call_later(r._attempt_timeout, self._timed_out)
        connecting._on_done(self._connect_done)

    def _connect_done(self, connecting: Future[Stream]) -> None:
        error = connecting.exception()
        if error is not None:
            self._failed(str(error))

    def _timed_out(self) -> None:
        self.timer = None
        if self.registered:
            return
        self.reason = f"no RegisterReply within {self.registrar._attempt_timeout} s"
        if self.stream is None:
            if self.connecting is not None:  # giving up on the connect: the transport stops dialling
                self.connecting.set_exception(NoConnection(f"cannot connect to {self.registrar._where}: timed out"))
        else:
            self.stream.abort()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _failed(self, reason: str) -> None:
        """This attempt is over without a registration (at most once)."""
        self._cancel_timer()
        reg, self.reg = self.reg, None
        if reg is not None and reg.conn is self:
            reg.conn = None
            self.registrar._attempt_failed(reg, self.reason or reason)

    # StreamProtocol

    def connection_made(self, stream: Stream) -> None:
        self.stream = stream
        if self.reg is None:
            stream.close()
            return
        stream.write(encode(Register(self.reg.node, self.reg.routes)))

    def data_received(self, data: memoryview) -> None:
        if self.reg is None:
            return
        r = self.registrar
        bad: RegistrarProtocolError | None = None
        try:
            messages = self.decoder.feed(data)
        except RegistrarProtocolError as e:  # what came before the bad bytes still counts
            messages, bad = e.events, e  # type: ignore[attr-defined]
        for msg in messages:
            reg = self.reg
            if reg is None:  # what a completed register's callback did: unregistered, closed
                return
            if type(msg) is RegisterReply and not self.registered:
                self._cancel_timer()
                if msg.error is None:
                    self.registered = True
                    r._registered(reg)
                else:
                    self.reg = None
                    reg.conn = None
                    assert self.stream is not None
                    self.stream.close()
                    r._refused(reg, msg.error)
                    return
            elif type(msg) is UnregisterReply:
                pass  # the answer to an Unregister we sent before closing
            else:
                r._log.error("registrar: closing the registration connection to %s: unexpected %s",
                             r._where, type(msg).__name__)
                self.reason = f"the registrar sent an unexpected {type(msg).__name__}"
                assert self.stream is not None
                self.stream.abort()
                return
        if bad is not None and self.reg is not None:
            r._log.error("registrar: closing the registration connection to %s: %s", r._where, bad)
            self.reason = f"malformed bytes from the registrar: {bad}"
            assert self.stream is not None
            self.stream.abort()

    def connection_lost(self, error: ErgoError | None) -> None:
        self._cancel_timer()
        reg = self.reg
        if reg is None or reg.conn is not self:
            return
        if self.registered and self.reason is None:
            self.reg = reg.conn = None
            self.registrar._lost(reg, error)
        else:
            self._failed(f"the connection closed{f' ({error})' if error is not None else ''}")

    # the registrar lets go of it

    def drop(self) -> None:
        """Detach and close: the server drops the name when it sees the close."""
        self.reg = None
        self._cancel_timer()
        if self.stream is not None:
            self.stream.close()
        elif self.connecting is not None:
            self.connecting.set_exception(NoConnection(f"the registration with {self.registrar._where} was dropped"))

    def unregister(self) -> None:
        """Say Unregister, then close."""
        if self.stream is not None and self.reg is not None and self.registered:
            self.stream.write(encode(Unregister(self.reg.node)))
        self.drop()


def _from_this_host(stream: Stream) -> bool:
    """Whether an accepted registration connection comes from this machine: from a
    loopback address, or from the very address it reached (a machine's connection to an
    address of its own has that address as its source; a simulated host has one address).
    A packet from another machine cannot carry either source: the kernel drops it as a
    martian, and TCP's handshake needs the answers to reach the real source."""
    peer, here = stream.peer[0], stream.local[0]
    if peer == here:
        return True
    try:
        ip = ipaddress.ip_address(peer.partition("%")[0])  # (an IPv6 address may name its zone)
    except ValueError:  # a simulated host's name, not an IP address
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 from a dual-stack listener
    return ip.is_loopback


def _same_address(conn: _ServerConn, host: str) -> bool:
    """Whether a node of ``host`` registering over ``conn`` lives at this server's own
    address under another spelling of it: ``b@127.0.0.1`` registering with the server of
    ``a@localhost`` on one machine.  Its host is the address the connection reached, or the
    connection comes from that very address (a registrar connects to its own node's host,
    so only a node of this address gets here that way).  A node of another host is still
    refused."""
    stream = conn.stream
    if stream is None:
        return False
    here = stream.local[0]
    return host == here or stream.peer[0] == here


class _ServerConn(StreamProtocol):
    """A registration connection accepted by the serving registrar: one node while it lives."""

    def __init__(self, registrar: EsrdRegistrar) -> None:
        self.registrar = registrar
        self.stream: Stream | None = None
        self.peer: Address = ("?", 0)
        self.node: str | None = None
        self.decoder = MessageDecoder()
        self.timer: TimerHandle | None = None

    def connection_made(self, stream: Stream) -> None:
        r = self.registrar
        self.stream, self.peer = stream, stream.peer
        if r._listener is None:  # accepted as we stopped serving
            stream.close()
            return
        if not _from_this_host(stream):
            # Only the nodes of this host register here (Ergo's server listens on localhost
            # for that): a connection from another machine is closed before it can hold a
            # slot of MAX_UNREGISTERED, squat a name or redirect one
            r._foreign += 1
            r._about_conn(r._log.warning, "registrar: closed the connection from %s:%d: only the nodes of this "
                          "host register here", self.peer[0], self.peer[1])
            stream.close()
            return
        r._server_conns[self] = None
        self.timer = r._scheduler.call_later(r._attempt_timeout, self._idle)
        # Any program of the host may connect and say nothing (or half a message, up
        # to 64 KiB) until the attempt timeout: at most MAX_UNREGISTERED such connections
        # are kept, and one more closes the oldest (a real node registers in one round trip)
        waiting = r._unregistered
        waiting[self] = None
        if len(waiting) > MAX_UNREGISTERED:
            oldest = next(iter(waiting))
            del waiting[oldest]
            r._about_conn(r._log.warning, "registrar: closing the connection from %s:%d: %d connections wait "
                          "to register", oldest.peer[0], oldest.peer[1], MAX_UNREGISTERED)
            oldest.close()

    def _idle(self) -> None:
        self.timer = None
        if self.node is None and self.stream is not None:
            self.registrar._about_conn(self.registrar._log.warning,
                                       "registrar: closing the connection from %s:%d: no Register within %s s",
                                       self.peer[0], self.peer[1], self.registrar._attempt_timeout)
            self.stream.close()

    def data_received(self, data: memoryview) -> None:
        r = self.registrar
        stream = self.stream
        assert stream is not None
        if stream.closing:
            return
        bad: RegistrarProtocolError | None = None
        try:
            messages = self.decoder.feed(data)
        except RegistrarProtocolError as e:  # what came before the bad bytes still counts
            messages, bad = e.events, e  # type: ignore[attr-defined]
        # A connection registers one node, and may unregister it: it gets one answer to
        # each, and is closed after a refused request (as Ergo does for a refused Register:
        # a refused connection has nothing more to say) and after its Unregister.  So
        # whatever it sends, it is answered a few bytes: one that sent requests without
        # reading the answers had them wait in our send buffer, and after a close too,
        # which waits for the peer to take them (registering is not authenticated).
        for msg in messages:
            kind = type(msg)
            if kind is Register:
                error = r._serve_register(self, msg)
                stream.write(encode(RegisterReply(error)))
                if error is not None:
                    self._closing_after_answer()  # its name, if it had one, goes with it
                    return
                if self.timer is not None:
                    self.timer.cancel()
                    self.timer = None
                r._unregistered.pop(self, None)
            elif kind is Unregister:
                stream.write(encode(UnregisterReply(r._serve_unregister(self, msg))))
                self._closing_after_answer()
                return
            else:
                r._malformed += 1
                r._about_conn(r._log.error, "registrar: closing the registration connection from %s:%d: "
                              "unexpected %s", self.peer[0], self.peer[1], kind.__name__)
                stream.abort()
                return
        if bad is not None:
            r._malformed += 1
            r._about_conn(r._log.error, "registrar: closing the registration connection from %s:%d (%s): %s",
                          self.peer[0], self.peer[1], self.node or "not registered", bad)
            stream.abort()

    def _closing_after_answer(self) -> None:
        """Close once the answer just written is sent; the name it holds goes now."""
        r = self.registrar
        r._unregistered.pop(self, None)
        r._forget(self)
        self.close()

    def connection_lost(self, error: ErgoError | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        r = self.registrar
        r._server_conns.pop(self, None)
        r._unregistered.pop(self, None)
        r._forget(self)

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.node = None
        if self.stream is not None:
            self.stream.close()


class _ServerDatagrams(DatagramProtocol):
    def __init__(self, registrar: EsrdRegistrar) -> None:
        self.registrar = registrar

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.registrar._serve_resolve(data, addr)


class _Query(DatagramProtocol):
    """One resolve in flight: a UDP port of its own, a datagram sent up to
    ``resolve_tries`` times within ``resolve_timeout``.

    Its answer is the first ``ResolveReply`` that comes from the very address and port the
    ``Resolve`` went to (``source``: the host's registrar).  Anyone can send a datagram to
    the query's port, and without the check a reply from anywhere was taken as the
    answer: a forged one redirected the dial to the forger's routes.  The protocol has no
    request id (nor has Ergo's), so what a reply is matched by is its source and the
    query's own ephemeral port (Ergo's resolver reads from a UDP socket connected to the
    registrar's address, which the kernel filters the same way).  Anything else is
    dropped, counted and logged a line a second at most (``_dropped_reply``).
    """

    def __init__(self, registrar: EsrdRegistrar, node: str, host: str) -> None:
        self.registrar = registrar
        self.node = node
        self.target: Address = (host, registrar.port)
        #: ``target`` as a datagram from it shows its source, once looked up (None until then)
        self.source: Address | None = None
        self.waiters: list[Future[tuple[Route, ...]]] = []
        self.endpoint: DatagramEndpoint | None = None
        self.timer: TimerHandle | None = None
        self.sent = 0
        self.done = False

    @property
    def where(self) -> str:
        return f"{self.target[0]}:{self.target[1]}"

    def start(self) -> None:
        r = self.registrar
        try:
            # bound on the address the first query's port was (a host name is looked up
            # once, binding, and binding is synchronous: not again at every resolve)
            self.endpoint = r._transport.datagram(r._ask_from or r.host, 0, self)
        except ErgoError as e:
            self.finish(NoConnection(f"cannot resolve {self.node}: no UDP port to ask from on {r.host}: {e}"))
            return
        r._ask_from = self.endpoint.address[0]
        try:
            looking = self.endpoint.lookup(self.target)
        except ErgoError as e:  # an address the transport refuses outright
            self.finish(NoConnection(f"cannot resolve {self.node}: {e}"))
            return
        if looking.done():
            self._looked_up(looking)
            return
        # a host name the transport looks up first (asyncio: its executor asks the hosts
        # file and DNS, without blocking the loop), within the resolve's time in all
        looking._on_done(self._looked_up)
        self.timer = r._scheduler.call_later(r._resolve_timeout, self._lookup_timed_out)

    def _looked_up(self, looking: Future[Address | None]) -> None:
        if self.done:
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.source = looking.result()
        if self.source is None:  # no datagram can go out: said now, not after resolve_timeout
            self.finish(NoConnection(f"cannot resolve {self.node}: the host {self.target[0]} is unknown (its name "
                                     "resolves to no address)"))
            return
        self._send()

    def _lookup_timed_out(self) -> None:
        self.timer = None
        self.finish(NoConnection(f"cannot resolve {self.node}: looking up the address of the host {self.target[0]} "
                                 f"took more than {self.registrar._resolve_timeout} s"))

    def _send(self) -> None:
        self.timer = None
        if self.done:
            return
        r = self.registrar
        if self.sent >= r._resolve_tries:
            self.finish(NoConnection(
                f"cannot resolve {self.node}: the registrar on {self.where} did not answer "
                f"({self.sent} tries in {r._resolve_timeout} s): no node runs on that host, the host is unknown or "
                f"unreachable, or its registrar is on another port (NetworkOptions.registrar_port)"))
            return
        assert self.endpoint is not None
        self.sent += 1
        try:
            # to the address looked up (the reply's source), so no lookup is made again
            self.endpoint.sendto(encode(Resolve(self.node)), self.source or self.target)
        except ErgoError as e:  # an address the transport refuses outright
            self.finish(NoConnection(f"cannot resolve {self.node}: {e}"))
            return
        self.timer = r._scheduler.call_later(r._resolve_timeout / r._resolve_tries, self._send)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if self.done:
            return
        r = self.registrar
        if addr != self.source:
            r._dropped_reply(f"a datagram from {addr[0]}:{addr[1]} resolving {self.node}: only the registrar "
                             f"asked ({self.where}) answers")
            return
        try:
            msg = decode_datagram(data)
        except RegistrarProtocolError as e:
            r._dropped_reply(f"a malformed reply from {addr[0]}:{addr[1]} resolving {self.node}: {e}")
            return
        if type(msg) is not ResolveReply:
            r._dropped_reply(f"a {type(msg).__name__} from {addr[0]}:{addr[1]} resolving {self.node}")
            return
        if msg.error is None and msg.routes:
            self.finish(msg.routes)
        elif msg.error is None or isinstance(msg.error, NoRoute):
            self.finish(NoRoute(f"no route to {self.node}: the registrar on {self.where} does not know it"))
        else:
            self.finish(msg.error)

    def given_up(self, _future: Future[tuple[Route, ...]]) -> None:
        """A waiter's future completed: by its caller, giving up (as a transport's connect
        is given up), unless the query finished it.  Once every waiter gave up, the query
        ends: its UDP port is closed rather than held for the rest of the resolve timeout."""
        if not self.done and all(w.done() for w in self.waiters):
            self.finish(NoConnection(f"the resolve of {self.node} was given up"))

    def finish(self, outcome: tuple[Route, ...] | ErgoError) -> None:
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.endpoint is not None:
            self.endpoint.close()
        queries = self.registrar._queries
        if queries.get(self.node) is self:
            del queries[self.node]
        waiters, self.waiters = self.waiters, []
        for future in waiters:
            if isinstance(outcome, ErgoError):
                future.set_exception(type(outcome)(*outcome.args))  # one each: a raise adds to its traceback
            else:
                future.set_result(outcome)

"""The transport seam on simulated hosts: streams and datagrams carried by links with latency.

Every host of a :class:`~sim.world.World` has its ports (:class:`Ports`, shared by the
nodes on that host as an OS's ports are; each node has a :class:`SimTransport` of its own
on them, the host one more as ``host.transport``) and is addressed by its name
(``"host1"``, ``"127.0.0.2"``: whatever follows the ``@`` of its nodes' names).  Between
two hosts (or a host and itself) lies one :class:`Link`; everything that crosses it (a
stream's connection request, its bytes, its FIN or reset, the receiver's acknowledgements,
datagrams) goes through :meth:`Link.carry`, which delivers it after the link's latency,
in the order it was sent in each direction.  Nothing reads the wall clock or iterates an
unordered collection, so a run is determined by its seed.

The stream model (close to TCP, without loss or bandwidth):

* ``connect`` sends a request across the link; the far host answers after the same latency
  with an accept (a listener is bound to that port) or a refusal.  An unknown host fails
  at once.
* A write goes onto the sender's queue; up to :attr:`SimTransport.window` bytes may be in
  flight or unread at the receiver (the socket buffers of both ends); the rest waits in
  the queue, which is what ``Stream.buffered`` counts and flow control bounds.  The
  receiver acknowledges bytes when it hands them to its protocol; the acknowledgement
  crosses the link back and lets more bytes go.  So a receiver that pauses reading makes
  the sender's queue grow: ``pause_writing`` above the high-water mark, the stream
  aborted past the hard cap (:class:`~ergo.transport.FlowLimits`).  So does a link whose
  latency (or a hold, or a partition) keeps the window in flight while the peer reads
  all it gets; the error says which (``Stream.backlog_cause``).
* ``close`` sends the queue, then a FIN behind the last byte; ``abort`` drops the queue
  and sends a reset, which the peer sees as ``NoConnection``.

Faults (see docs/simulation.md): a :class:`Link` adds jitter to each item's time (never
reordering a direction), and holds a direction (``held``: everything waits until
released) or cuts it (``cut``: a partition; what belongs to a stream waits, as TCP
retransmits, and datagrams are lost).  A :class:`SimTransport` is one program's sockets
(a node's, or the host's own); its ports live in the host's :class:`Ports`.  A node killed
has its streams reset by its host (:meth:`SimTransport._vanish` with ``reset``); a host
that crashes sends nothing at all, and once it is back, answers a stale stream's bytes
with a reset, as a rebooted kernel does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ergo.gen.errors import ErgoError, Incorrect, NoConnection, Taken
from ergo.scheduler import Future
from ergo.transport import (
    BACKLOG_CAUSE,
    Address,
    DatagramEndpoint,
    DatagramProtocol,
    FlowLimits,
    Listener,
    Stream,
    StreamProtocol,
    Transport,
    check_address,
    check_datagram,
    overflow_error,
)

if TYPE_CHECKING:
    from ssl import SSLContext

    from .host import Host
    from .world import World

__all__ = ["DEFAULT_LATENCY", "DEFAULT_WINDOW", "EPHEMERAL_PORTS", "Link", "Ports", "SimTransport"]

#: seconds one way between two hosts (and from a host to itself) unless set per pair
DEFAULT_LATENCY = 0.001
#: bytes a stream may have in flight or unread at the receiver before its writes queue up
DEFAULT_WINDOW = 256 * 1024
#: what crosses a link after a stream's last bytes: a clean close, or a reset
_FIN = "FIN"
_RESET = "RESET"
#: the range ephemeral ports come from (IANA's), in order, skipping ports in use
EPHEMERAL_PORTS = (49152, 65535)


class Link:
    """What lies between hosts ``a`` and ``b`` (``a <= b``; ``a == b`` is a host's loopback).

    :meth:`carry` is the one way across: each direction keeps its own order, which is
    what a later one-way fault needs.  Items due at the same moment in one direction
    travel as one batch (one SimPy event for all of them), so a burst of writes and
    their acknowledgements costs one event, not one each.
    """

    __slots__ = ("a", "b", "latency", "jitter", "cut", "held", "_env", "_world", "_rng", "_in_flight",
                 "_waiting", "_flushing")

    def __init__(self, world: World, a: str, b: str, latency: float) -> None:
        self.a, self.b = a, b
        #: seconds one way (both ways); changing it never reorders what is already in flight
        self.latency = latency
        #: up to this many seconds more for each item, drawn from the seed (never reordering)
        self.jitter = 0.0
        #: the sending ends whose direction is partitioned (a→b is cut when a is in it)
        self.cut: set[str] = set()
        #: the sending ends whose direction is held (everything waits until released)
        self.held: set[str] = set()
        self._env = world.env
        self._world = world
        self._rng: Any = None
        #: per sending end: the batches on their way, oldest first, as [due, [(deliver, args, lossy), ...]]
        self._in_flight: dict[str, deque[list[Any]]] = {a: deque(), b: deque()}
        #: per sending end: what arrived while the direction was held or cut, in order
        self._waiting: dict[str, deque[tuple[Any, ...]]] = {a: deque(), b: deque()}
        self._flushing: set[str] = set()

    def carry(self, source: str, deliver: Callable[..., Any], *args: Any, lossy: bool = False) -> None:
        """Run ``deliver(*args)`` at the far end after the latency (and jitter), after
        everything ``source`` sent on this link before.  ``lossy``: a datagram, lost if it
        arrives while the direction is cut (what belongs to a stream waits instead)."""
        env = self._env
        due = env.now + self.latency
        if self.jitter:
            rng = self._rng
            if rng is None:
                rng = self._rng = self._world.rng(f"link/{self.a}/{self.b}")
            due += rng.uniform(0.0, self.jitter)
        batches = self._in_flight[source]
        if batches:
            last = batches[-1]
            if due <= last[0]:  # due with the last batch (or before it: lower latency, jitter): join it
                last[1].append((deliver, args, lossy))
                return
        batches.append([due, [(deliver, args, lossy)]])
        env.timeout(due - env.now).callbacks.append(lambda _event: self._arrive(source))

    def _arrive(self, source: str) -> None:
        _due, items = self._in_flight[source].popleft()
        if self._waiting[source] or source in self.cut or source in self.held:
            waiting = self._waiting[source]
            cut = source in self.cut
            for item in items:
                if not (cut and item[2]):  # a datagram across a partition is lost
                    waiting.append(item)
            return
        self._hand(source, items)

    def _hand(self, source: str, items: Any) -> None:
        """Deliver at the far host, or keep for it while it is paused (in arrival order)."""
        host = self._world.hosts.get(self.b if source == self.a else self.a)
        m = host.machine if host is not None else None
        if m is not None and (m.paused or m.frozen):
            for deliver, args, _lossy in items:
                m.frozen.append((deliver, args))
            return
        for deliver, args, _lossy in items:
            deliver(*args)

    def block(self, source: str, how: str, on: bool) -> None:
        """Cut (``how="cut"``) or hold (``"held"``) the direction from ``source``, or undo
        it; once neither holds, what waited is delivered in order (at this virtual moment)."""
        states = self.cut if how == "cut" else self.held
        if on:
            states.add(source)
            return
        states.discard(source)
        if source not in self.cut and source not in self.held and self._waiting[source] \
                and source not in self._flushing:
            self._flushing.add(source)
            self._env.timeout(0).callbacks.append(lambda _event: self._flush(source))

    def _flush(self, source: str) -> None:
        self._flushing.discard(source)
        if source in self.cut or source in self.held:
            return
        waiting = self._waiting[source]
        items = list(waiting)
        waiting.clear()
        self._hand(source, items)

    def __repr__(self) -> str:
        return f"<Link {self.a} <-> {self.b} latency={self.latency}>"


class Ports:
    """A host's port tables, shared by the transports of the programs on it (its nodes)."""

    __slots__ = ("datagram", "next", "stream")

    def __init__(self) -> None:
        self.stream: dict[int, _SimListener | _SimStream] = {}
        self.datagram: dict[int, _SimDatagram] = {}
        self.next = {"stream": EPHEMERAL_PORTS[0], "datagram": EPHEMERAL_PORTS[0]}


class SimTransport(Transport):
    """One program's sockets on a simulated host (a node's, or the host's own
    ``host.transport``): its listeners, streams and datagram endpoints; the ports are the host's."""

    given_up_unseen = True  # see _SimStream._accepted: the listener's side opens on the dialer's ACK

    def __init__(self, host: Host, limits: FlowLimits | None = None, window: int = DEFAULT_WINDOW, *,
                 scheduler: Any = None) -> None:
        if type(window) is not int or window < 1:
            raise Incorrect(f"a stream window is an int > 0 (bytes), not {window!r}"[:200])
        self.host = host
        self.world = host.world
        #: where this program's callbacks run (its node's scheduler; the host's own by default)
        self.scheduler = scheduler if scheduler is not None else host.scheduler
        self.limits = limits if limits is not None else FlowLimits()
        #: bytes a stream may have unacknowledged before writes queue (see the module's docstring)
        self.window = window
        ports = host.ports
        self._stream_ports = ports.stream
        self._datagram_ports = ports.datagram
        self._next_port = ports.next
        #: this program's open streams, in the order they opened
        self.streams: dict[_SimStream, None] = {}
        self.listeners: dict[_SimListener, None] = {}
        self.endpoints: dict[_SimDatagram, None] = {}
        #: True once its program was killed or its host crashed
        self.dead = False

    @property
    def name(self) -> str:
        return self.host.name

    # ports

    def _check_local(self, host: str, port: int, what: str) -> None:
        check_address(host, port, what)
        if host != self.name:
            raise Incorrect(f"host {self.name} cannot bind {host}:{port}: {host} is not its address")

    def _ephemeral(self, kind: str, table: dict[int, Any]) -> int:
        low, high = EPHEMERAL_PORTS
        port = self._next_port[kind]
        for _ in range(high - low + 1):
            nxt = port + 1 if port < high else low
            if port not in table:
                self._next_port[kind] = nxt
                return port
            port = nxt
        raise Taken(f"host {self.name} has no free ephemeral port left")

    def _bind(self, kind: str, table: dict[int, Any], port: int, owner: Any) -> int:
        if port == 0:
            port = self._ephemeral(kind, table)
        elif port in table:
            raise Taken(f"{self.name}:{port} is in use ({kind} port)")
        table[port] = owner
        return port

    def _release(self, table: dict[int, Any], port: int, owner: Any) -> None:
        if table.get(port) is owner:
            del table[port]

    def _link_to(self, other: str) -> Link:
        return self.world.link(self.name, other)

    # the seam

    def listen(self, host: str, port: int, factory: Callable[[], StreamProtocol], *,
               ssl: SSLContext | None = None) -> Listener:
        self._check_local(host, port, "a listener")
        if not callable(factory):
            raise Incorrect(f"a listener's factory is a callable making a StreamProtocol, not {factory!r}"[:200])
        listener = _SimListener(self, factory, ssl is not None)
        listener.address = (self.name, self._bind("stream", self._stream_ports, port, listener))
        self.listeners[listener] = None
        return listener

    def connect(self, host: str, port: int, factory: Callable[[], StreamProtocol], *,
                ssl: SSLContext | None = None, server_hostname: str | None = None) -> Future[Stream]:
        check_address(host, port, "a connect")
        if port == 0:
            raise Incorrect(f"cannot connect to {host}:0: port 0 is not a destination")
        if not callable(factory):
            raise Incorrect(f"a connect's factory is a callable making a StreamProtocol, not {factory!r}"[:200])
        future: Future[Stream] = Future()
        target = self.world.hosts.get(host)
        if target is None:
            error = NoConnection(f"cannot connect to {host}:{port}: no host named {host!r} in the simulation")
            self.scheduler.call_soon(future.set_exception, error)
            return future
        link = self._link_to(host)
        stream = _SimStream(self, link, (self.name, 0), (host, port), ssl is not None)
        stream.local = (self.name, self._bind("stream", self._stream_ports, 0, stream))
        stream._connecting = (future, factory)
        future._on_done(stream._gave_up)
        link.carry(self.name, _syn, target, stream)
        return future

    def datagram(self, host: str, port: int, protocol: DatagramProtocol) -> DatagramEndpoint:
        self._check_local(host, port, "a datagram endpoint")
        endpoint = _SimDatagram(self, protocol)
        endpoint.address = (self.name, self._bind("datagram", self._datagram_ports, port, endpoint))
        self.endpoints[endpoint] = None
        return endpoint

    # faults

    def _vanish(self, *, reset: bool) -> None:
        """This program is gone at once: nothing of it is called again, its ports are free.
        ``reset``: its host lives on and resets its streams (a killed process); else the
        host itself went (a crash) and sends nothing."""
        self.dead = True
        bound = [s for s in self._stream_ports.values() if isinstance(s, _SimStream) and s._transport is self]
        for stream in [*self.streams, *bound]:
            stream._vanish(reset)
        for listener in list(self.listeners):
            listener.close()
        for endpoint in list(self.endpoints):
            endpoint.close()

    # the far end of a connect

    def _accept(self, listener: _SimListener, client: _SimStream) -> None:
        """The SYN reached ``listener``: answer it (the SYN-ACK).  The server's end is handed
        to the listener's protocol only once the dialer's ACK comes back (``_established``),
        as a kernel puts a connection in the accept queue only then: a dialer that gave up
        meanwhile resets it instead, and the listener's program never hears of it."""
        link = client._link
        server = _SimStream(self, link, listener.address, client.local, client.tls)
        server._other, client._other = client, server
        server._listener = listener
        link.carry(self.name, client._accepted)


#: the first retransmission timeout of a SYN nobody answered, doubled on each try (Linux's)
SYN_RTO = 1.0


def _syn(host: Host, client: _SimStream) -> None:
    """A connection request arrived at ``host``: accept it (a listener on the port) or
    refuse it.  A host that is down answers nothing: the dialer's kernel sends the SYN
    again after 1 s, 2 s, 4 s ..., as TCP does, until the dialer gives the connect up (its
    own timeout), so a dial begun while a host was down reaches it once it is back."""
    if not host.up:
        if client._connecting is not None and not client._transport.dead:
            rto, client._syn_rto = client._syn_rto, client._syn_rto * 2
            client._transport.scheduler.call_later(rto, _resend_syn, host, client)
        return
    port = client.peer[1]
    listener = host.ports.stream.get(port)
    link = client._link
    if not isinstance(listener, _SimListener):
        error = NoConnection(f"connection refused: nothing listens on {host.name}:{port}")
        link.carry(host.name, client._refused, error)
        return
    if listener.tls != client.tls:
        side = "uses" if listener.tls else "does not use"
        error = NoConnection(f"TLS handshake with {host.name}:{port} failed: the listener {side} TLS")
        link.carry(host.name, client._refused, error)
        if listener.on_refused is not None:  # the listener's side of it, as a socket's TLS would tell
            listener.on_refused(client.local, "TLS handshake failed: the dialer does not use TLS" if listener.tls
                                else "the dialer speaks TLS to a listener that does not")
        return
    listener._transport._accept(listener, client)


def _resend_syn(host: Host, client: _SimStream) -> None:
    if client._connecting is not None and not client._transport.dead:
        client._link.carry(client._source, _syn, host, client)


def _datagram_to(host: Host, port: int, payload: bytes, source: Address) -> None:
    if not host.up:
        return
    endpoint = host.ports.datagram.get(port)
    if endpoint is not None:  # nobody bound there: dropped, as UDP does
        endpoint._protocol.datagram_received(payload, source)


class _SimListener(Listener):
    def __init__(self, transport: SimTransport, factory: Callable[[], StreamProtocol], tls: bool) -> None:
        self._transport = transport
        self.factory = factory
        self.tls = tls
        self.address: Address = (transport.name, 0)

    def close(self) -> None:
        t = self._transport
        t._release(t._stream_ports, self.address[1], self)
        t.listeners.pop(self, None)

    def __repr__(self) -> str:
        return f"<SimListener {self.address[0]}:{self.address[1]}>"


class _SimStream(Stream):
    """One end of a simulated stream; ``_other`` is the far end, reached only across the link."""

    def __init__(self, transport: SimTransport, link: Link, local: Address, peer: Address, tls: bool) -> None:
        self._transport = transport
        self._link = link
        self._source = transport.name  # this end's side of the link
        self.local = local
        self.peer = peer
        self._tls = tls
        self._protocol: StreamProtocol | None = None
        self._other: _SimStream | None = None
        self._connecting: tuple[Future[Stream], Callable[[], StreamProtocol]] | None = None
        #: (the server's end, SYN-ACK sent) the listener whose protocol gets it once the ACK comes
        self._listener: _SimListener | None = None
        self._syn_rto = SYN_RTO  # the wait before the SYN goes again, if nobody answers it
        self._limits = transport.limits
        # sending
        self._queue: deque[bytes] = deque()
        self._buffered = 0
        self._unacked = 0
        self._writing_paused = False
        self._fin_pending = False  # close() was called: a FIN follows the queue
        # receiving
        self._inbox: deque[bytes | str] = deque()  # arrived while reading is paused, with _FIN and _RESET
        self._reading = True
        self._draining = False
        # closing: no more writes or reads; done: connection_lost is queued, nothing more happens
        self._closing = False
        self._done = False
        self._lost_told = False
        #: a reset was sent for a stream that vanished (or is not needed: see _bounce)
        self._bounced = False

    # Stream

    @property
    def tls(self) -> bool:
        return self._tls

    @property
    def buffered(self) -> int:
        return self._buffered

    @property
    def closing(self) -> bool:
        return self._closing

    def backlog_cause(self) -> str:
        """Why bytes wait to be sent, which a simulated link can tell (a socket cannot): the
        peer's host is down or paused, the peer paused reading, a direction of the link is
        cut or held (the bytes, or the acknowledgements that make room for more), or else
        the peer reads all that arrives and the link is slower than the writes: it carries
        at most the window per round trip."""
        other, link = self._other, self._link
        if other is None:
            return BACKLOG_CAUSE
        far = other._transport.host
        if not far.up:
            return f"the peer's host {far.name} is down"
        if far.machine.paused:
            return f"the peer's host {far.name} is paused"
        if not other._reading:
            unread = sum(len(c) for c in other._inbox if type(c) is bytes)
            return f"the peer paused reading ({unread} bytes wait unread there)"
        for source, what in ((self._source, "to the peer"), (other._source, "from the peer (its acknowledgements)")):
            if source in link.cut:
                return f"the link {what} is cut (a partition)"
            if source in link.held:
                return f"the link {what} is held"
        jitter = f" and up to {2 * link.jitter:g} s of jitter" if link.jitter else ""
        return (f"the peer reads all that arrives, and the link is slower than the writes: it carries at most "
                f"the window ({self._transport.window} bytes) per round trip ({2 * link.latency:g} s{jitter})")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise Incorrect(f"a stream writes bytes-like data, not {type(data).__name__}")
        if self._closing or not data:
            return
        chunk = bytes(data)
        self._queue.append(chunk)
        self._buffered += len(chunk)
        self._pump()
        limits = self._limits
        if self._buffered > limits.max_buffer:
            self._end(overflow_error(self.peer, self._buffered, limits, self.backlog_cause()), reset=True)
        elif not self._writing_paused and self._buffered > limits.high:
            self._writing_paused = True
            self._tell("pause_writing")

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._fin_pending = True
        self._pump()

    def abort(self) -> None:
        if self._done:
            return
        self._end(None, reset=True)

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if self._reading:
            return
        self._reading = True
        if self._inbox and not self._draining:
            self._draining = True
            self._transport.scheduler.call_soon(self._drain)

    # sending

    def _pump(self) -> None:
        """Send what the window allows; then the FIN if close() asked for one and the queue is empty."""
        if self._done:
            return
        other = self._other
        queue = self._queue
        room = self._transport.window - self._unacked
        while queue and room > 0 and other is not None:
            chunk = queue.popleft()
            if len(chunk) > room:
                chunk, rest = chunk[:room], chunk[room:]
                queue.appendleft(rest)
            n = len(chunk)
            room -= n
            self._unacked += n
            self._buffered -= n
            self._link.carry(self._source, other._arrive, chunk)
        if self._writing_paused and self._buffered <= self._limits.low:
            self._writing_paused = False
            self._tell("resume_writing")
        if self._fin_pending and not queue and other is not None:
            self._fin_pending = False
            self._link.carry(self._source, other._arrive, _FIN)
            self._end(None, reset=False)

    def _acked(self, n: int) -> None:
        if not self._done:
            self._unacked -= n
            self._pump()

    # receiving

    def _bounce(self) -> None:
        """Bytes for a stream whose program vanished: its host, if up, answers with a reset
        (once), as a kernel does for a connection it does not know; a host that is down
        answers nothing."""
        if not self._bounced and self._other is not None and self._transport.host.up:
            self._bounced = True
            self._link.carry(self._source, self._other._arrive, _RESET)

    def _vanish(self, reset: bool) -> None:
        if self._done:
            return
        self._lost_told = True  # nothing of its program is called again
        self._connecting = None
        self._drop()
        if reset:
            self._bounce()

    def _drop(self) -> SimTransport:
        """Done for good: nothing more is sent or read, the port is free; the transport."""
        self._done = self._closing = True
        self._queue.clear()
        self._inbox.clear()
        self._buffered = 0
        t = self._transport
        t._release(t._stream_ports, self.local[1], self)
        t.streams.pop(self, None)
        return t

    def _gave_up(self, future: Future[Stream]) -> None:
        """The connect's future completed: if by its caller (it gave up), the port is freed;
        an accept that still comes is answered with a reset."""
        if self._connecting is not None:
            self._connecting = None
            self._done = self._closing = True
            t = self._transport
            t._release(t._stream_ports, self.local[1], self)

    def _arrive(self, chunk: bytes | str) -> None:
        """Bytes (or _FIN, _RESET) from the far end, in the order they were sent.  A reader
        that paused learns of the end when it resumes, after the bytes before it (as a
        socket that is not read does not report the peer's FIN or reset either)."""
        if self._transport.dead:
            if chunk is not _RESET:
                self._bounce()
            return
        if self._closing:  # we closed or aborted: what still comes is dropped
            return
        if self._reading and not self._inbox:
            self._deliver(chunk)
        else:
            self._inbox.append(chunk)

    def _deliver(self, chunk: bytes | str) -> None:
        if chunk is _FIN:  # the peer closed: a clean end here too (asyncio closes on EOF as well)
            self._closing = True
            self._end(None, reset=False)
            return
        if chunk is _RESET:
            self._closing = True
            self._end(NoConnection(f"connection reset by peer {self.peer[0]}:{self.peer[1]}"), reset=False)
            return
        assert isinstance(chunk, bytes)
        assert self._protocol is not None and self._other is not None
        self._protocol.data_received(memoryview(chunk))
        self._link.carry(self._source, self._other._acked, len(chunk))

    def _drain(self) -> None:
        self._draining = False
        inbox = self._inbox
        while inbox and self._reading and not self._closing:
            self._deliver(inbox.popleft())

    # the connect's answer (client end)

    def _accepted(self) -> None:
        """The SYN-ACK: the connect succeeded; the ACK goes back (ahead of any byte), so the
        listener's side is established.  A dialer that gave up, or whose program vanished,
        answers it with a reset, as its kernel would: the listener's side never opens."""
        if self._connecting is None:
            self._bounce()
            return
        future, factory = self._connecting
        self._connecting = None
        assert self._other is not None
        self._link.carry(self._source, self._other._established)
        self._attach(factory())
        future.set_result(self)

    def _established(self) -> None:
        """The dialer's ACK, at the server's end: the listener's protocol gets the stream now,
        unless its program vanished (its host, if up, resets the connection) or the listener
        was closed meanwhile (the connection is reset, as a kernel resets those still in a
        closed socket's queues)."""
        listener, self._listener = self._listener, None
        if self._done or listener is None:  # (a guard: the link keeps order, nothing of the dialer's comes first)
            return
        t = self._transport
        if t.dead:
            self._bounce()
            self._drop()
            return
        if t._stream_ports.get(listener.address[1]) is not listener:
            self._end(None, reset=True)
            return
        self._attach(listener.factory())

    def _refused(self, error: NoConnection) -> None:
        if self._connecting is None:
            return
        future, _factory = self._connecting
        self._connecting = None
        self._done = self._closing = True
        t = self._transport
        t._release(t._stream_ports, self.local[1], self)
        future.set_exception(error)

    # both ends

    def _attach(self, protocol: StreamProtocol) -> None:
        self._protocol = protocol
        self._transport.streams[self] = None
        protocol.connection_made(self)

    def _end(self, error: ErgoError | None, *, reset: bool) -> None:
        """Done: drop the queue, free the port, maybe send a reset, and queue ``connection_lost``."""
        if self._done:
            return
        t = self._drop()
        if reset and self._other is not None:
            self._link.carry(self._source, self._other._arrive, _RESET)
        t.scheduler.call_soon(self._lost, error)

    def _tell(self, name: str) -> None:
        self._transport.scheduler.call_soon(self._call, name)

    def _call(self, name: str) -> None:
        if not self._lost_told and self._protocol is not None:
            getattr(self._protocol, name)()

    def _lost(self, error: ErgoError | None) -> None:
        if not self._lost_told and self._protocol is not None:
            self._lost_told = True
            self._protocol.connection_lost(error)

    def __repr__(self) -> str:
        state = "closed" if self._done else "closing" if self._closing else "open"
        return f"<SimStream {self.local[0]}:{self.local[1]} -> {self.peer[0]}:{self.peer[1]} {state}>"


class _SimDatagram(DatagramEndpoint):
    def __init__(self, transport: SimTransport, protocol: DatagramProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self.address: Address = (transport.name, 0)
        self._closed = False

    def sendto(self, data: bytes | bytearray | memoryview, addr: Address) -> None:
        payload = check_datagram(data)
        if not isinstance(addr, tuple) or len(addr) != 2:
            raise Incorrect(f"a datagram's address is a (host, port) tuple, not {addr!r}"[:200])
        host, port = check_address(addr[0], addr[1], "a datagram's destination")
        if self._closed:
            return
        t = self._transport
        target = t.world.hosts.get(host)
        if target is None:  # as UDP does: an unreachable destination is silence, not an error
            return
        if t.scheduler.buggify("sim.datagram_drop"):
            return
        t._link_to(host).carry(t.name, _datagram_to, target, port, payload, self.address, lossy=True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            t = self._transport
            t._release(t._datagram_ports, self.address[1], self)
            t.endpoints.pop(self, None)

    def __repr__(self) -> str:
        return f"<SimDatagram {self.address[0]}:{self.address[1]}>"


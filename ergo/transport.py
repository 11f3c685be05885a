"""The transport seam: the one interface through which the core's network layer sees sockets.

The core never opens a socket.  Its network layer asks a :class:`Transport` (one per node,
made by a backend) to listen on, connect to, or send datagrams from ``(host, port)``, and
it is told what happens through callbacks, in the style of asyncio's protocols: it
implements :class:`StreamProtocol` (and :class:`DatagramProtocol`) and is handed a
:class:`Stream` (a :class:`DatagramEndpoint`) to write to.  ``sim`` implements the seam
on simulated hosts and links (virtual time, latency per host pair, determined by the
seed); ``net`` on asyncio (TCP, TLS through the standard ``ssl`` module, UDP), and it runs
on uvloop too.  The same network layer runs unchanged over both.

The rules every implementation keeps (``tests/test_transport_contract.py`` pins them on the
simulation, asyncio and uvloop):

* **Callbacks come from the scheduler, never from inside a call into the transport.**
  ``write``, ``writelines``, ``close``, ``abort``, ``pause_reading`` and ``resume_reading``
  never call the protocol back before they return: ``pause_writing``, ``resume_writing``
  and ``connection_lost`` caused by them are queued and delivered afterwards, in order.  So
  the network layer never sees a callback in the middle of its own call.
* **``data_received`` gets a** :class:`memoryview` **valid only during the call**: the
  receiver copies what it keeps (``bytes(data)``) or decodes it in place.  This lets the
  asyncio backend receive into one preallocated buffer.
* **``connection_lost`` is called exactly once** per stream whose ``connection_made`` was
  called: with None after a clean close (a FIN from the peer, or our own ``close``/``abort``
  once it is done), with :class:`~ergo.gen.errors.NoConnection` saying why otherwise (reset
  by the peer, the hard cap below, a network error).  After it, nothing more is called.
* **Writes after close are dropped.**  Once ``close``, ``abort`` or a loss happened,
  ``write`` does nothing: the loss is (or will be) reported through ``connection_lost``, so
  every write site need not guard a race the callback already reports.  Once ``write``
  returns, the caller may reuse its buffer (what must wait is copied).
* **A paused reader learns of the end when it resumes**: a FIN or reset that arrives
  while reading is paused is reported after the bytes before it, on ``resume_reading``.
* **Flow control is bounded** (:class:`FlowLimits`).  When the bytes waiting to be sent
  (``Stream.buffered``) rise above ``high``, the protocol's ``pause_writing`` is called;
  when they fall to ``low`` or below, ``resume_writing``.  A write that leaves more than
  ``max_buffer`` bytes waiting aborts the stream: the waiting bytes are dropped and
  ``connection_lost(NoConnection(...))`` says how many bytes waited, over which limit, and
  why as far as the transport can tell (``Stream.backlog_cause``: a socket cannot tell a
  peer that stopped reading from a network slower than the writes; a simulated link can).
  So a peer that stops reading costs at most ``max_buffer`` bytes (plus the write that
  crossed it).
  The network layer is expected to stop writing between ``pause_writing`` and
  ``resume_writing``; the cap is the backstop for a peer that never reads again.
* **Connect resolves after** ``connection_made``: the factory is called and its protocol's
  ``connection_made(stream)`` runs first, then the future completes with the stream.  A
  failed connect never calls the factory; its future fails with ``NoConnection`` whose
  message says why (refused, unknown host, unreachable, TLS failure).  There is no
  connect timeout here, nor a cancel method: **a caller abandons a pending connect by
  completing its future itself** (``set_exception``: its own timer ran out, or it no
  longer needs the stream, as the network layer when the connection a dial was for goes
  down).  The backend then stops dialling at once instead of waiting out the OS's SYN
  timeout (asyncio cancels the attempt, its TLS handshake included; the simulation frees
  the port and sends no more SYNs), and a connection that completes anyway is aborted
  (reset) without calling the factory.
* **Binding is synchronous** (``listen``, ``datagram``): a port in use raises
  :class:`~ergo.gen.errors.Taken`, an address this host cannot bind raises
  :class:`~ergo.gen.errors.Incorrect` (a privileged port without the privilege:
  ``NotAllowed``), all at once; port 0 asks for an ephemeral port,
  which ``address`` then reports.  A node can start before its event loop runs.
* **Callbacks must not raise.**  The network layer catches its own errors; what escapes a
  callback is a bug (simulation lets it propagate out of ``Sim.run``; asyncio logs it
  through the loop's exception handler and aborts that connection alone).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .gen.errors import ErgoError, Incorrect, NoConnection, TooLarge
from .scheduler import Future

__all__ = [
    "BACKLOG_CAUSE",
    "DEFAULT_HIGH_WATER",
    "DEFAULT_LOW_WATER",
    "DEFAULT_MAX_BUFFER",
    "MAX_DATAGRAM",
    "Address",
    "DatagramEndpoint",
    "DatagramProtocol",
    "FlowLimits",
    "Listener",
    "SSLContext",
    "Stream",
    "StreamProtocol",
    "Transport",
    "check_address",
    "check_datagram",
    "over_the_cap",
    "overflow_error",
]

#: ``(host, port)``: a host name or IP address as a str, a port as an int in 0..65535
Address = tuple[str, int]

#: an ``ssl.SSLContext``, passed through to the backend untouched: the core never imports
#: ``ssl`` (the backends do, and type their parameters with it)
SSLContext = Any

#: above this many bytes waiting to be sent, the protocol is told ``pause_writing``
DEFAULT_HIGH_WATER = 256 * 1024
#: at or below this many, ``resume_writing``
DEFAULT_LOW_WATER = 64 * 1024
#: a write that leaves more than this many bytes waiting aborts the stream (16 MiB: well
#: above the default max message size, 1 MiB, so one frame never trips it alone)
DEFAULT_MAX_BUFFER = 16 * 1024 * 1024
#: the largest datagram ``sendto`` takes (the UDP payload limit over IPv4)
MAX_DATAGRAM = 65507


@dataclass(frozen=True, slots=True)
class FlowLimits:
    """The bounds of a stream's send buffer (see the module's docstring).

    ``0 <= low <= high <= max_buffer``; ``max_buffer`` > 0.
    """

    high: int = DEFAULT_HIGH_WATER
    low: int = DEFAULT_LOW_WATER
    max_buffer: int = DEFAULT_MAX_BUFFER

    def __post_init__(self) -> None:
        for name in ("high", "low", "max_buffer"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise Incorrect(f"FlowLimits.{name} is an int >= 0, not {value!r}"[:200])
        if not 0 <= self.low <= self.high <= self.max_buffer or self.max_buffer == 0:
            raise Incorrect(
                f"FlowLimits need 0 <= low <= high <= max_buffer and max_buffer > 0, "
                f"not low={self.low} high={self.high} max_buffer={self.max_buffer}"
            )


def check_address(host: object, port: object, what: str = "an address") -> Address:
    """``(host, port)`` checked, or ``Incorrect`` saying what is wrong with it."""
    if not isinstance(host, str) or not host or len(host) > 253:
        shown = repr(host[:40]) if isinstance(host, str) else type(host).__name__
        raise Incorrect(f"the host of {what} is a non-empty str (a name or an IP address), not {shown}")
    if type(port) is not int or not 0 <= port <= 65535:
        raise Incorrect(f"the port of {what} is an int in 0..65535, not {port!r}"[:200])
    return host, port


def check_datagram(data: object) -> bytes:
    """The payload of a datagram as bytes, or ``Incorrect``/``TooLarge``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise Incorrect(f"a datagram is bytes-like, not {type(data).__name__}")
    payload = bytes(data)
    if len(payload) > MAX_DATAGRAM:
        raise TooLarge(f"a datagram carries at most {MAX_DATAGRAM} bytes, not {len(payload)}")
    return payload


#: why bytes wait to be sent, when the transport cannot tell more (a socket cannot)
BACKLOG_CAUSE = ("the peer or the network is not keeping up (a peer that stopped reading or reads slowly, "
                 "or a network slower than the writes)")


def over_the_cap(waiting: int, limits: FlowLimits, cause: str = BACKLOG_CAUSE) -> str:
    """What is measured when ``waiting`` bytes to be sent passed the hard cap, and why
    (``Stream.backlog_cause``): the text of the errors of the transport and of the
    network layer, which holds bytes of its own while writing is paused."""
    return f"{waiting} bytes wait to be sent, over the limit of {limits.max_buffer} (FlowLimits.max_buffer): {cause}"


def overflow_error(peer: Address, buffered: int, limits: FlowLimits, cause: str = BACKLOG_CAUSE) -> NoConnection:
    """What ``connection_lost`` is told when a write crossed the hard cap (both backends say
    this; ``cause``: the stream's ``backlog_cause()``)."""
    return NoConnection(f"to {peer[0]}:{peer[1]}, {over_the_cap(buffered, limits, cause)}; the stream was aborted")


class StreamProtocol:
    """What the user of a stream (the network layer) implements; every method is a callback.

    ``pause_writing`` and ``resume_writing`` do nothing unless overridden.
    """

    def connection_made(self, stream: Stream) -> None:
        """The stream is open; ``stream`` is where to write."""

    def data_received(self, data: memoryview) -> None:
        """Bytes arrived, in order; ``data`` is valid only during this call (copy what you keep)."""

    def connection_lost(self, error: ErgoError | None) -> None:
        """The stream is gone: None after a clean close (ours or the peer's), else why (``NoConnection``)."""

    def pause_writing(self) -> None:
        """More than ``FlowLimits.high`` bytes are waiting to be sent: stop writing for now."""

    def resume_writing(self) -> None:
        """The waiting bytes fell to ``FlowLimits.low``: writing may go on."""


class Stream(ABC):
    """A byte stream between two hosts (TCP, optionally TLS); handed to ``connection_made``."""

    #: ``(host, port)`` of this end and of the other end
    local: Address
    peer: Address

    @property
    @abstractmethod
    def tls(self) -> bool:
        """Whether the bytes are encrypted (the stream was made with an ``ssl`` context)."""

    @property
    @abstractmethod
    def buffered(self) -> int:
        """Bytes written and not yet sent (what flow control counts)."""

    def backlog_cause(self) -> str:
        """Why bytes wait to be sent, as far as this transport can tell: the end of the
        error when they pass ``FlowLimits.max_buffer``.  A socket cannot tell a peer that
        stopped reading from a network slower than the writes, so by default it says
        either (:data:`BACKLOG_CAUSE`); a transport that can tell says which."""
        return BACKLOG_CAUSE

    @property
    @abstractmethod
    def closing(self) -> bool:
        """True once ``close`` or ``abort`` was called or the stream was lost: writes are dropped."""

    @abstractmethod
    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` to be sent (copied if it must wait; the caller may reuse its buffer).

        Dropped if the stream is closing.  A write that leaves more than
        ``FlowLimits.max_buffer`` bytes waiting aborts the stream (``connection_lost``
        then says so).  ``Incorrect`` if ``data`` is not bytes-like.
        """

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        """Write each of ``chunks`` in order (a backend may do it in one system call)."""
        for chunk in chunks:
            self.write(chunk)

    @abstractmethod
    def close(self) -> None:
        """Send what is waiting, then close (the peer sees a clean end: FIN).

        ``connection_lost(None)`` follows once the waiting bytes are sent.  Idempotent.
        """

    @abstractmethod
    def abort(self) -> None:
        """Close at once, dropping what is waiting; the peer sees a reset (``NoConnection``).

        ``connection_lost(None)`` follows (it was our decision).  Idempotent.
        """

    @abstractmethod
    def pause_reading(self) -> None:
        """Stop calling ``data_received`` until ``resume_reading``; the peer's writes then
        back up into its buffer (and its flow control).  Idempotent."""

    @abstractmethod
    def resume_reading(self) -> None:
        """Deliver again, starting with what arrived meanwhile.  Idempotent."""


class Listener(ABC):
    """A bound, listening stream port; every accepted connection gets a new protocol from its factory."""

    #: ``(host, port)`` actually bound (the ephemeral port if 0 was asked for)
    address: Address
    #: set by the listener's user: called ``(peer address, why)`` when the transport itself
    #: refuses an accepted connection before its protocol is made (a TLS handshake that
    #: failed or timed out), which no protocol hears of, so that the refusal can be logged
    #: on this side too; a connection dropped for a newer one past a bound is not told
    on_refused: Callable[[Address, str], None] | None = None

    @abstractmethod
    def close(self) -> None:
        """Stop accepting (later connects are refused); accepted streams live on.  Idempotent."""


class DatagramProtocol:
    """What the user of a datagram endpoint implements."""

    def datagram_received(self, data: bytes, addr: Address) -> None:
        """A datagram from ``addr`` (``(host, port)``)."""


class DatagramEndpoint(ABC):
    """A bound datagram port (UDP): unreliable, unordered, no connection."""

    #: ``(host, port)`` actually bound
    address: Address

    @abstractmethod
    def sendto(self, data: bytes | bytearray | memoryview, addr: Address) -> None:
        """Send one datagram (at most :data:`MAX_DATAGRAM` bytes, else ``TooLarge``) to
        ``addr``; it may be lost.  Dropped once closed."""

    def lookup(self, addr: Address) -> Future[Address | None]:
        """``addr`` as :meth:`DatagramProtocol.datagram_received` reports a datagram that
        comes from it: its host looked up to the address ``sendto(data, addr)`` sends to,
        spelt as the OS spells a source (an IPv6 address in its short form), or None if the
        name resolves to nothing (``sendto`` drops those).  So a reply can be checked to
        come from where the question went: ``source == endpoint.lookup(target).result()``.
        A future, as a name may take a lookup (the hosts file, DNS) that must not block the
        scheduler's thread; at once for an address.  ``Incorrect`` for a malformed address.
        By default ``addr`` itself, at once (the simulation's host names are their
        addresses)."""
        if not isinstance(addr, tuple) or len(addr) != 2:
            raise Incorrect(f"a datagram's address is a (host, port) tuple, not {addr!r}"[:200])
        future: Future[Address | None] = Future()
        future.set_result(check_address(addr[0], addr[1], "a datagram's address"))
        return future

    @abstractmethod
    def close(self) -> None:
        """Unbind the port.  Idempotent."""


class Transport(ABC):
    """A host's sockets as the core sees them: one per node, made by the backend."""

    #: the send-buffer bounds of every stream this transport makes
    limits: FlowLimits
    #: True if a connect given up before its future completed never reached the listener's
    #: program (the simulation: the listener's side opens on the dialer's ACK, and a dialer
    #: that gave up answers the SYN-ACK with a reset).  False where the OS may complete the
    #: handshake before the loop reports it (asyncio): the peer may hold the stream already.
    given_up_unseen: bool = False

    @abstractmethod
    def listen(self, host: str, port: int, factory: Callable[[], StreamProtocol], *,
               ssl: SSLContext | None = None) -> Listener:
        """Bind and listen on ``(host, port)`` now; ``factory()`` makes each accepted
        connection's protocol.  ``Taken`` if the port is in use, ``Incorrect`` if the
        address cannot be bound here.  With ``ssl`` (a server context) every accepted
        stream is TLS; a client that fails the handshake never reaches the factory."""

    @abstractmethod
    def connect(self, host: str, port: int, factory: Callable[[], StreamProtocol], *,
                ssl: SSLContext | None = None, server_hostname: str | None = None) -> Future[Stream]:
        """Connect to ``(host, port)``; the future gets the stream (after its protocol's
        ``connection_made``) or fails with ``NoConnection`` saying why.  ``Incorrect`` at
        once for a malformed address.  With ``ssl`` (a client context) the stream is TLS,
        checked against ``server_hostname`` (default: ``host``)."""

    @abstractmethod
    def datagram(self, host: str, port: int, protocol: DatagramProtocol) -> DatagramEndpoint:
        """Bind a datagram port on ``(host, port)`` now (0: ephemeral); ``Taken`` if in use."""


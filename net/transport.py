"""The transport seam on asyncio: TCP streams (optionally TLS, through the standard ``ssl``
module) and UDP datagrams, on the running event loop or on uvloop's.

A stream is an :class:`asyncio.BufferedProtocol` receiving into one preallocated buffer
per connection: ``data_received`` gets a :class:`memoryview` of the bytes just read, valid
during the call (asyncio's ``StreamReader`` allocates on every read; this does not).

Binding is synchronous (a socket is made, bound and put to listen at once, so ``Taken`` is
raised where ``listen`` is called, even before the loop runs); the loop starts serving
it as soon as it runs (``loop.create_server(sock=...)``; a TLS listener keeps at most
``MAX_TLS_HANDSHAKES`` connections in their TLS handshake at once, on asyncio through
``_TlsGate``, on uvloop through ``_TlsAccepting``).  asyncio calls a protocol's
``pause_writing`` from inside ``transport.write``; here it is deferred with
``loop.call_soon``, so that the network layer never sees a callback in the middle of its
own call (see :mod:`ergo.transport`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import socket
import ssl as _ssl
import struct
from collections.abc import Callable, Iterable
from typing import Any, cast

from ergo.gen.errors import ErgoError, Incorrect, NoConnection, NotAllowed, Taken, TooLarge
from ergo.scheduler import Future
from ergo.transport import (
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

__all__ = ["DEFAULT_RECEIVE_BUFFER", "AsyncioTransport"]

#: bytes each stream receives into at most per read (one buffer per stream)
DEFAULT_RECEIVE_BUFFER = 256 * 1024
#: the buffer a stream starts with (a handshake message is at most 4101 bytes); a read that
#: fills it doubles it, up to the transport's receive_buffer: a stream costs what it carries,
#: not 256 KiB from its first byte (a flood of streams that never speak held that much each)
_FIRST_RECEIVE = 8 * 1024
#: datagrams kept while the loop has not yet opened the endpoint; more are dropped, as UDP may
_PENDING_DATAGRAMS = 64
_BACKLOG = 128
#: seconds a listener that ran out of descriptors waits before accepting again (asyncio's own)
_ACCEPT_RETRY = 1.0
#: TLS streams a listener keeps in their TLS handshake at once (on asyncio and on uvloop);
#: one more aborts the oldest
MAX_TLS_HANDSHAKES = 128
#: seconds a TLS handshake of an accepted stream may take (asyncio's default is 60)
TLS_HANDSHAKE_TIMEOUT = 10.0
#: host names a datagram endpoint remembers the address of (forgotten all at once past this)
_NAMES_KEPT = 256
#: host names a datagram endpoint looks up at once; a lookup of one more name answers None
_LOOKUPS = 16
#: SO_LINGER on, timeout 0: close() then sends a reset, which is what abort() promises the peer
_LINGER_RESET = struct.pack("ii", 1, 0)


class AsyncioTransport(Transport):
    """The seam on ``loop`` (asyncio's or uvloop's); one per node."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limits: FlowLimits | None = None,
                 receive_buffer: int = DEFAULT_RECEIVE_BUFFER) -> None:
        if type(receive_buffer) is not int or receive_buffer < 1:
            raise Incorrect(f"receive_buffer is an int > 0, not {receive_buffer!r}"[:200])
        self.loop = loop
        self.limits = limits if limits is not None else FlowLimits()
        self.receive_buffer = receive_buffer

    def listen(self, host: str, port: int, factory: Callable[[], StreamProtocol], *,
               ssl: _ssl.SSLContext | None = None) -> Listener:
        check_address(host, port, "a listener")
        if not callable(factory):
            raise Incorrect(f"a listener's factory is a callable making a StreamProtocol, not {factory!r}"[:200])
        if ssl is not None:
            _check_server_context(ssl, host, port)
        sock = _bind(host, port, socket.SOCK_STREAM)
        listener = _AsyncioListener(sock)
        tls = ssl is not None

        def accept() -> _AsyncioStream:
            return _AsyncioStream(self, factory, tls, listener=listener)

        # the serving task is made when the loop runs, not now: a loop closed unrun (a node
        # whose start failed) then leaves no coroutine never awaited behind
        self.loop.call_soon(listener._begin, self.loop, accept, ssl)
        return listener

    def connect(self, host: str, port: int, factory: Callable[[], StreamProtocol], *,
                ssl: _ssl.SSLContext | None = None, server_hostname: str | None = None) -> Future[Stream]:
        check_address(host, port, "a connect")
        if port == 0:
            raise Incorrect(f"cannot connect to {host}:0: port 0 is not a destination")
        if not callable(factory):
            raise Incorrect(f"a connect's factory is a callable making a StreamProtocol, not {factory!r}"[:200])
        future: Future[Stream] = Future()
        stream = _AsyncioStream(self, factory, ssl is not None, future=future)
        task = self.loop.create_task(self._connect(stream, future, host, port, ssl, server_hostname))

        def given_up(_future: Future[Stream]) -> None:
            # completed by the caller (its connect timeout), not by the task: stop dialling
            # rather than wait out the OS's own timeout for an address that never answers
            if not task.done() and not stream._settled:
                task.cancel()

        future._on_done(given_up)
        return future

    async def _connect(self, stream: _AsyncioStream, future: Future[Stream], host: str, port: int,
                       ssl: _ssl.SSLContext | None, server_hostname: str | None) -> None:
        kwargs: dict[str, Any] = {}
        if ssl is not None:
            kwargs["ssl"] = ssl
            kwargs["server_hostname"] = server_hostname if server_hostname is not None else host
        try:
            await self.loop.create_connection(lambda: stream, host, port, **kwargs)
        except asyncio.CancelledError:
            stream._settled = True
            future.set_exception(NoConnection(f"cannot connect to {host}:{port}: the connect was cancelled"))
            raise
        except Exception as exc:
            stream._settled = True
            future.set_exception(_connect_error(exc, host, port, ssl is not None))
            return
        stream._settled = True
        if not future.set_result(stream):  # the caller gave up meanwhile (connection_made aborted it)
            stream.abort()

    def datagram(self, host: str, port: int, protocol: DatagramProtocol) -> DatagramEndpoint:
        check_address(host, port, "a datagram endpoint")
        sock = _bind(host, port, socket.SOCK_DGRAM)
        endpoint = _AsyncioDatagram(sock, protocol, self.loop)
        # opened on the loop's next turn, as a listener is served: closed before that (a node
        # whose start failed, on a loop that never runs again), it leaves no task behind
        self.loop.call_soon(endpoint._begin, self.loop)
        return endpoint


#: what socket() fails with when the process or the system has run out of something
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def _bind(host: str, port: int, kind: socket.SocketKind) -> socket.socket:
    """A socket bound to ``(host, port)`` (listening, for a stream), or the project's error."""
    try:
        infos = socket.getaddrinfo(host, port, type=kind, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise Incorrect(f"cannot bind {host}:{port}: {exc.strerror}") from None
    # a name with both (``localhost``): IPv4, so that a datagram endpoint and a listener
    # named alike end up on the same address whatever order the resolver gives
    family, type_, proto, _, addr = min(infos, key=lambda info: info[0] != socket.AF_INET)
    try:
        sock = socket.socket(family, type_, proto)
    except OSError as exc:  # out of descriptors or buffers: a limit, not the caller's mistake
        if exc.errno in _EXHAUSTED:
            raise TooLarge(f"cannot bind {host}:{port}: {exc.strerror or exc} (no socket can be made now: "
                           "the process's file descriptors or the system's buffers ran out)") from None
        raise Incorrect(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    try:
        if kind == socket.SOCK_STREAM:
            # as asyncio's create_server does: a restarted node can take its port back while
            # old connections linger in TIME_WAIT (Linux still refuses a second listener)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(_BACKLOG)
        else:
            sock.bind(addr)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        what = "stream" if kind == socket.SOCK_STREAM else "datagram"
        if exc.errno == errno.EADDRINUSE:
            raise Taken(f"{host}:{port} is in use ({what} port)") from None
        if exc.errno == errno.EACCES:
            raise NotAllowed(f"cannot bind {host}:{port}: permission denied (ports below 1024 need privileges)"
                             ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise Incorrect(f"cannot bind {host}:{port}: {host} is not an address of this host") from None
        if exc.errno in _EXHAUSTED:
            raise TooLarge(f"cannot bind {host}:{port}: {exc.strerror or exc} (the system's buffers ran out)"
                           ) from None
        raise Incorrect(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    return sock


#: asyncio's own TCP transport (see _AsyncioStream.connection_made)
_SELECTOR_TRANSPORT: Any = getattr(getattr(asyncio, "selector_events", None), "_SelectorSocketTransport", None)


def _address(sockaddr: Any) -> Address:
    """``(host, port)`` of a socket address (IPv6 ones carry two more fields)."""
    return (str(sockaddr[0]), int(sockaddr[1]))


def _as_reported(ip: str) -> str:
    """The IP address ``ip`` spelt as a received datagram's source is (``inet_ntop``'s form:
    ``::1`` for ``0:0::1``, ``::ffff:1.2.3.4`` for an IPv4-mapped one), so that two
    spellings of one address compare equal."""
    base, sep, scope = ip.partition("%")
    family = socket.AF_INET6 if ":" in base else socket.AF_INET
    try:
        return socket.inet_ntop(family, socket.inet_pton(family, base)) + sep + scope
    except (OSError, ValueError):
        return ip


def _check_server_context(ctx: Any, host: str, port: int) -> None:
    """A listener's context must be able to serve: a client context (what
    ``ssl.create_default_context()`` makes, with no argument) failed every handshake it was
    offered, and only the dialers said anything, as a reset."""
    if not isinstance(ctx, _ssl.SSLContext):
        raise Incorrect(f"the TLS context of the listener on {host}:{port} is an ssl.SSLContext, "
                        f"not {type(ctx).__name__}")
    if ctx.protocol == _ssl.PROTOCOL_TLS_CLIENT:
        raise Incorrect(
            f"the TLS context of the listener on {host}:{port} is a client context (PROTOCOL_TLS_CLIENT): "
            "a listener needs a server one, ssl.create_default_context(ssl.Purpose.CLIENT_AUTH) with "
            "load_cert_chain(...) (AcceptorOptions.ssl is the server's; NetworkOptions.ssl the dialer's)")


def _tls_failure(exc: Any) -> str:
    """What an ``ssl.SSLError`` says: its reason, and for a certificate that did not verify,
    why (an unknown issuer, a name that does not match), which the reason alone does not."""
    said = getattr(exc, "reason", None) or str(exc)
    why = getattr(exc, "verify_message", None)
    return f"{said} ({why})" if why else said


def _connect_error(exc: BaseException, host: str, port: int, tls: bool = False) -> NoConnection:
    where = f"{host}:{port}"
    if isinstance(exc, _ssl.SSLError):
        hint = (" (what answered there does not speak TLS: a plain listener, or a route that should not say TLS?)"
                if getattr(exc, "reason", None) == "WRONG_VERSION_NUMBER" else "")
        return NoConnection(f"TLS handshake with {where} failed: {_tls_failure(exc)}{hint}")
    if isinstance(exc, ConnectionRefusedError):
        return NoConnection(f"connection refused: nothing listens on {where}")
    if isinstance(exc, socket.gaierror):
        return NoConnection(f"cannot connect to {where}: unknown host ({exc.strerror})")
    if isinstance(exc, ConnectionResetError):
        if tls:
            return NoConnection(f"cannot connect to {where}: connection reset during the TLS handshake (the "
                                "listener's TLS context refused it: no certificate, or no cipher in common?)")
        return NoConnection(f"cannot connect to {where}: connection reset (a TLS listener refusing plain bytes?)")
    if isinstance(exc, TimeoutError):
        return NoConnection(f"cannot connect to {where}: timed out")
    if isinstance(exc, OSError):
        return NoConnection(f"cannot connect to {where}: {exc.strerror or exc}")
    return NoConnection(f"cannot connect to {where}: {type(exc).__name__}: {exc}")


def _lost_error(exc: BaseException, peer: Address) -> NoConnection:
    where = f"{peer[0]}:{peer[1]}"
    if isinstance(exc, _ssl.SSLError):
        return NoConnection(f"TLS error on the stream with {where}: {_tls_failure(exc)}")
    if isinstance(exc, ConnectionResetError):
        return NoConnection(f"connection reset by peer {where}")
    if isinstance(exc, OSError):
        return NoConnection(f"the stream with {where} was lost: {exc.strerror or exc}")
    return NoConnection(f"the stream with {where} was lost: {type(exc).__name__}: {exc}")


def _close_on_closed_loop(t: asyncio.BaseTransport) -> None:
    """Close transport ``t`` (a stream's, or a datagram endpoint's) whose loop is closed.

    Its ``close``/``abort`` mark it closing, then ask the loop to run its last step
    (``_call_connection_lost``: tell the protocol, close the socket, let go of it), which a
    closed loop refuses.  That step is run here instead: the socket is closed, and the
    transport no longer holds it, so it is not collected as an "unclosed transport"
    (a ``ResourceWarning``, and before that the socket stayed open).  asyncio's TLS
    transport sits on a socket transport of its own, finished the same way.  uvloop's
    transports have no such step to run (``abort`` closes what they hold).
    """
    inner = getattr(getattr(t, "_ssl_protocol", None), "_transport", None)
    with contextlib.suppress(RuntimeError):
        t.abort()  # type: ignore[attr-defined]
    for part in (t, inner):
        finish = getattr(part, "_call_connection_lost", None)
        if finish is not None and getattr(part, "_sock", None) is not None:
            # (what the protocols are told from there needs the loop: refused, and nothing
            # of ours listens any more: the stream is lost already)
            with contextlib.suppress(RuntimeError):
                finish(None)


class _AsyncioListener(Listener):
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.address: Address = _address(sock.getsockname())
        self._server: asyncio.AbstractServer | _TlsAccepting | None = None
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        #: accepted TLS connections still in their TLS handshake, oldest first (see _TlsGate,
        #: and _TlsHandshake on uvloop)
        self._tls_pending: dict[_TlsGate | _TlsHandshake, None] = {}

    def _begin(self, loop: asyncio.AbstractEventLoop, accept: Callable[[], _AsyncioStream],
               ssl: _ssl.SSLContext | None) -> None:
        if not self.closed:
            self._task = loop.create_task(self._serve(loop, accept, ssl))

    async def _serve(self, loop: asyncio.AbstractEventLoop, accept: Callable[[], _AsyncioStream],
                     ssl: _ssl.SSLContext | None) -> None:
        if self.closed:  # closed before the loop ran: never serve
            self._sock.close()
            return
        server: asyncio.AbstractServer | _TlsAccepting
        if ssl is None:
            server = await loop.create_server(accept, sock=self._sock)
        elif type(loop).__module__.startswith("uvloop"):
            # uvloop starts reading a new connection after connection_made whatever the
            # protocol asked, so the gate would lose the client's hello; and its own TLS
            # server bounds each handshake in time only, not how many wait at once.  So
            # the listener accepts each socket itself and hands it to uvloop's TLS, counted
            # as the gates are (see _TlsAccepting)
            server = _TlsAccepting(self, loop, accept, ssl)
        else:
            # not create_server(ssl=...): asyncio would hold each accepted socket through its
            # TLS handshake (60 s, a 256 KiB buffer each) where nothing here can see or bound
            # it; the gate counts them, and the oldest goes when there are too many
            pending = self._tls_pending
            server = await loop.create_server(lambda: _TlsGate(self, loop, accept, ssl, pending), sock=self._sock)
        if self.closed:
            server.close()
        else:
            self._server = server

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for pending in list(self._tls_pending):  # not streams yet: nobody has them
            pending._drop()
        if self._server is not None:
            self._server.close()  # the listening socket only: accepted streams live on
        elif self._task is None or self._task.done():
            # the loop has not run since the listen (a node whose start failed closes the
            # loop it made), or it ended before serving began (asyncio.run cancels the tasks
            # left when its coroutine returns): nothing else will close the socket, which
            # held the port (a registrar's too) for the rest of the process
            self._sock.close()
        # else _serve closes it once create_server returns

    def __repr__(self) -> str:
        return f"<AsyncioListener {self.address[0]}:{self.address[1]}{' closed' if self.closed else ''}>"


class _TlsGate(asyncio.Protocol):
    """An accepted TCP connection of a TLS listener until its TLS handshake is done: then
    its stream (``accept()``) is made on the TLS transport, as a plain listener's is.  At
    most ``MAX_TLS_HANDSHAKES`` are in their handshake at once, each for at most
    ``TLS_HANDSHAKE_TIMEOUT`` seconds: one more aborts the oldest (so a flood of sockets
    that never say hello holds a bounded number of buffers, and a real peer's handshake,
    one round trip, still gets through)."""

    def __init__(self, listener: _AsyncioListener, loop: asyncio.AbstractEventLoop,
                 accept: Callable[[], _AsyncioStream], ssl: _ssl.SSLContext,
                 pending: dict[_TlsGate | _TlsHandshake, None]) -> None:
        self._listener = listener
        self._loop = loop
        self._accept = accept
        self._ssl = ssl
        self._pending = pending
        self._t: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._t = transport = cast(asyncio.Transport, transport)
        transport.pause_reading()  # the client's hello waits for the TLS protocol start_tls puts in
        pending = self._pending
        pending[self] = None
        if len(pending) > MAX_TLS_HANDSHAKES:
            oldest = next(iter(pending))
            oldest._drop()
        if self._t is not None:
            self._task = self._loop.create_task(self._upgrade(transport))

    def _drop(self) -> None:
        self._pending.pop(self, None)
        t, self._t = self._t, None
        if self._loop.is_closed():
            # (its listener closed by a node found stopped: asyncio's abort and cancel are
            # callbacks of the loop, which raised, cutting the rest of the node's stop short)
            if t is not None:
                _close_on_closed_loop(t)
            return
        if t is not None:
            t.abort()
        if self._task is not None:
            self._task.cancel()

    async def _upgrade(self, raw: asyncio.Transport) -> None:
        stream = self._accept()
        try:
            tls = await self._loop.start_tls(raw, stream, self._ssl, server_side=True,
                                             ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        except asyncio.CancelledError:  # dropped for a newer one, or the loop closing
            raw.abort()
            raise
        except Exception as e:  # a failed or abandoned handshake (a timeout): that socket only
            _tls_refused(self._listener, raw.get_extra_info("peername"), e)
            raw.abort()
            return
        finally:
            self._pending.pop(self, None)
            self._t = None
        if tls is None:  # pragma: no cover - start_tls returns None only for a closing transport
            raw.abort()
            return
        stream.connection_made(tls)

    def connection_lost(self, exc: Exception | None) -> None:
        self._pending.pop(self, None)
        self._t = None


def _tls_refused(listener: _AsyncioListener, peer: Any, error: BaseException) -> None:
    """Tell the listener's user that a connection failed its TLS handshake (the dialer
    learns why from its own side; without this the acceptor said nothing at all)."""
    told = listener.on_refused
    if told is None or listener.closed:
        return
    why = _tls_failure(error) if isinstance(error, _ssl.SSLError) else f"{type(error).__name__}: {error}"
    where = _address(peer) if isinstance(peer, tuple) and len(peer) >= 2 else ("?", 0)
    told(where, f"TLS handshake failed: {why[:300]}")


class _TlsAccepting:
    """A TLS listener's accept loop on uvloop: each connection is accepted here (the
    listening socket is watched with ``add_reader``) and handed to uvloop's own TLS with
    ``connect_accepted_socket``, as a :class:`_TlsHandshake`, counted with the others: at
    most ``MAX_TLS_HANDSHAKES`` in their handshake at once, one more aborting the oldest,
    as the gates do on asyncio."""

    def __init__(self, listener: _AsyncioListener, loop: asyncio.AbstractEventLoop,
                 accept: Callable[[], _AsyncioStream], ssl: _ssl.SSLContext) -> None:
        self._listener = listener
        self._loop = loop
        self._accept = accept
        self._ssl = ssl
        self._sock = listener._sock
        self._closed = False
        self._retry: asyncio.TimerHandle | None = None
        loop.add_reader(self._sock.fileno(), self._ready)

    def _ready(self) -> None:
        # at most a backlog's worth in one turn, so that the loop's other work goes on (as asyncio's server)
        for _ in range(_BACKLOG):
            try:
                sock, _addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # reset by its client while in the backlog
                continue
            except OSError:
                # out of descriptors or buffers (EMFILE, ENFILE, ENOBUFS, ENOMEM): accepting
                # again at once would spin; asyncio's server waits a second too
                self._loop.remove_reader(self._sock.fileno())
                self._retry = self._loop.call_later(_ACCEPT_RETRY, self._resume)
                return
            sock.setblocking(False)
            _TlsHandshake(self._listener, self._loop, sock, self._accept, self._ssl)

    def _resume(self) -> None:
        self._retry = None
        if not self._closed:
            self._loop.add_reader(self._sock.fileno(), self._ready)

    def close(self) -> None:
        """Stop accepting and close the listening socket (accepted streams live on)."""
        if self._closed:
            return
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
        elif not self._loop.is_closed():
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()


class _TlsHandshake:
    """An accepted socket of a TLS listener on uvloop until uvloop's TLS handshake on it is
    over (``connect_accepted_socket``, bounded by ``TLS_HANDSHAKE_TIMEOUT``); then its
    stream (``accept()``) has had ``connection_made``, or the socket is closed."""

    def __init__(self, listener: _AsyncioListener, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 accept: Callable[[], _AsyncioStream], ssl: _ssl.SSLContext) -> None:
        self._pending = pending = listener._tls_pending
        self._listener = listener
        self._sock = sock
        try:
            self._peer: Any = sock.getpeername()
        except OSError:  # reset already
            self._peer = None
        self._started = False
        pending[self] = None
        if len(pending) > MAX_TLS_HANDSHAKES:
            next(iter(pending))._drop()
        self._task = loop.create_task(self._run(loop, accept, ssl))
        self._task.add_done_callback(self._done)

    async def _run(self, loop: asyncio.AbstractEventLoop, accept: Callable[[], _AsyncioStream],
                   ssl: _ssl.SSLContext) -> None:
        self._started = True  # from here on the socket is uvloop's to close
        try:
            await loop.connect_accepted_socket(accept, self._sock, ssl=ssl,
                                               ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        except Exception as e:  # a failed or timed-out handshake: uvloop closed that socket
            _tls_refused(self._listener, self._peer, e)
        finally:
            self._pending.pop(self, None)

    def _done(self, _task: asyncio.Task[None]) -> None:
        if not self._started:  # dropped (or the loop closed) before it began: nobody else has the socket
            self._sock.close()

    def _drop(self) -> None:
        self._pending.pop(self, None)
        # the connection ends (a FIN, and EOF to uvloop's TLS) whatever uvloop made of it
        # so far: cancelling closes its TLS transport once the handshake began, but not
        # before (its connection_made still queued).  OSError: uvloop closed it already
        # (the socket object is then detached), or the peer went
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if self._task.get_loop().is_closed():
            # (its listener closed by a node found stopped: cancelling is a callback of the
            # loop, which raised, cutting the rest of the node's stop short.  A socket uvloop
            # took, it closed with its loop; one it never took is closed here, as _done would)
            if not self._started:
                self._sock.close()
            return
        self._task.cancel()


class _AsyncioStream(asyncio.BufferedProtocol, Stream):
    """Both asyncio's protocol (the methods asyncio calls) and the seam's :class:`Stream` (the
    methods the network layer calls): one object, so a read costs one call into the user."""

    def __init__(self, owner: AsyncioTransport, factory: Callable[[], StreamProtocol], tls: bool, *,
                 future: Future[Stream] | None = None, listener: _AsyncioListener | None = None) -> None:
        self._loop = owner.loop
        self._limits = owner.limits
        self._receive_size = owner.receive_buffer
        self._factory = factory
        self._tls = tls
        self._future = future
        self._settled = False  # the connect's own outcome reached the future (see connect)
        self._listener = listener
        self._t: asyncio.Transport | None = None
        self._protocol: StreamProtocol | None = None
        self._view: memoryview | None = None
        self._error: ErgoError | None = None  # what connection_lost says instead of asyncio's reason
        self._closing = False
        self._lost = False
        self._dropped = False  # aborted: nothing waits any more (uvloop still counts it a while)
        self._reading = True
        #: whether a write may skip the check of ``max_buffer`` (see write): only on asyncio's
        #: own TCP transport (see connection_made), and not while it says to pause
        self._cap_unreachable = False
        self._selector = False
        #: bytes read while reading was paused (uvloop starts reading after connection_made,
        #: so a pause made there takes effect a moment late): kept for resume_reading
        self._held: list[bytes] = []
        self.local: Address = ("", 0)
        self.peer: Address = ("", 0)

    # asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # not an isinstance check: uvloop's transports are not subclasses of asyncio's
        self._t = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=self._limits.high, low=self._limits.low)
        if type(transport) is _SELECTOR_TRANSPORT:
            # asyncio's own TCP transport calls pause_writing from inside the write that
            # takes its buffer past ``high`` (<= ``max_buffer``), and resume_writing only
            # once it is back at ``low``: while it has not said pause, no more than ``high``
            # bytes wait, and the cap cannot have been crossed.  uvloop's and TLS
            # transports count and tell differently: every write of theirs is checked
            self._selector = self._cap_unreachable = True
        self.local = _address(transport.get_extra_info("sockname"))
        self.peer = _address(transport.get_extra_info("peername"))
        gone = (self._future is not None and self._future.done()) or (
            self._listener is not None and self._listener.closed)
        if gone:  # a connect the caller gave up on, or a listener closed before it began serving
            self._closing = True
            self._reset()
            return
        self._view = memoryview(bytearray(min(self._receive_size, _FIRST_RECEIVE)))
        try:
            self._protocol = protocol = self._factory()
            protocol.connection_made(self)
        except Exception as exc:
            self._failed(exc, "connection_made")
            raise  # asyncio logs it through the loop's exception handler
        if not self._reading:  # paused in connection_made: make sure it holds on uvloop too
            self._loop.call_soon(self._repause)
        elif self._held:  # read before connection_made (a TLS stream): delivered first, from the loop
            self._loop.call_soon(self._release_held)

    def _repause(self) -> None:
        if not self._reading and not self._lost and self._t is not None:
            self._t.pause_reading()

    def get_buffer(self, sizehint: int) -> memoryview:
        view = self._view
        if view is None:  # read before connection_made: an accepted TLS stream (see _TlsGate)
            view = self._view = memoryview(bytearray(min(self._receive_size, _FIRST_RECEIVE)))
        return view

    def buffer_updated(self, nbytes: int) -> None:
        protocol = self._protocol
        view = self._view
        if protocol is None and view is not None and not self._closing:
            # TLS bytes the peer sent right after its handshake, before start_tls returned
            # and connection_made could run: kept for it, in order
            self._held.append(bytes(view[:nbytes]))
            return
        if protocol is not None and view is not None and not self._closing:
            if self._reading:
                try:
                    protocol.data_received(view[:nbytes])
                except Exception as exc:  # free when nothing is raised (3.11's zero-cost try)
                    self._failed(exc, "data_received")
                    raise
            else:
                self._held.append(bytes(view[:nbytes]))
            size = len(view)
            if nbytes == size and size < self._receive_size and self._view is view:
                # a full read: more is coming than the buffer holds (the view handed to
                # data_received is valid only during the call, so it may be replaced now)
                self._view = memoryview(bytearray(min(2 * size, self._receive_size)))

    def eof_received(self) -> bool:
        return False  # the peer's FIN closes this end too: connection_lost(None)

    def pause_writing(self) -> None:
        self._cap_unreachable = False  # (at once: this is called inside the write that crossed high)
        self._loop.call_soon(self._call, "pause_writing")

    def resume_writing(self) -> None:
        self._cap_unreachable = self._selector
        self._loop.call_soon(self._call, "resume_writing")

    def _call(self, name: str) -> None:
        if not self._lost and self._protocol is not None:
            try:
                getattr(self._protocol, name)()
            except Exception as exc:
                self._failed(exc, name)
                raise

    def _failed(self, exc: Exception, where: str) -> None:
        """A callback raised (a bug in the network layer): drop this connection, as asyncio
        does when ``data_received`` raises, and say why in ``connection_lost``."""
        if not self._lost:
            self._error = NoConnection(f"the stream with {self.peer[0]}:{self.peer[1]} was aborted: "
                                       f"its protocol's {where} raised {type(exc).__name__}: {exc}")
            self._closing = True
            self._reset()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._lost:
            return
        self._lost = self._dropped = True
        self._view = None
        error = self._error
        if error is None and exc is not None:
            error = _lost_error(exc, self.peer)
        if self._protocol is not None:
            self._protocol.connection_lost(error)

    # the seam's side

    @property
    def tls(self) -> bool:
        return self._tls

    @property
    def buffered(self) -> int:
        t = self._t
        return t.get_write_buffer_size() if t is not None and not self._dropped else 0

    @property
    def closing(self) -> bool:
        return self._closing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if type(data) is not bytes:  # (bytes, what the network writes, tested first)
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise Incorrect(f"a stream writes bytes-like data, not {type(data).__name__}")
            if self._closing:
                return
            # bytes as they are now: asyncio (3.12 on) and uvloop may keep a reference to what
            # they cannot send at once, and the caller may reuse its buffer after this call
            data = bytes(data)
        elif self._closing:
            return
        t = self._t
        assert t is not None
        t.write(data)
        # the cap is checked only if it can have been crossed (see connection_made): not
        # while the transport has not said pause, the common case (two calls saved a write)
        if not self._cap_unreachable:
            self._check_cap(t)

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        copied = []
        for data in chunks:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise Incorrect(f"a stream writes bytes-like data, not {type(data).__name__}")
            copied.append(data if type(data) is bytes else bytes(data))  # as write() does
        if self._closing:
            return
        t = self._t
        assert t is not None
        t.writelines(copied)
        self._check_cap(t)  # always: asyncio's writelines (3.12) need not say pause inside the call

    def _check_cap(self, t: asyncio.Transport) -> None:
        size = t.get_write_buffer_size()
        if size > self._limits.max_buffer:
            self._error = overflow_error(self.peer, size, self._limits, self.backlog_cause())
            self._closing = True
            self._reset()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._t is not None:
            if self._loop.is_closed():
                self._close_socket()
                return
            self._t.close()

    def abort(self) -> None:
        if self._lost:
            return
        self._closing = True
        self._reset()

    def _reset(self) -> None:
        """Drop what waits and close with a reset (not a FIN), so the peer learns it was not clean."""
        t = self._t
        self._dropped = True
        if t is None:
            return
        sock = t.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            except OSError:  # already closed by the OS: the abort below is enough
                pass
        if self._loop.is_closed():
            self._close_socket()
            return
        t.abort()

    def _close_socket(self) -> None:
        """Close the stream of a loop that is closed (a node whose loop ended without its
        stop, see ``Node._loop_ended``): the transport's own close is a callback of the loop
        (asyncio's raises "Event loop is closed" and leaves the socket open for the rest
        of the process).  No ``connection_lost`` follows: nothing can run it."""
        self._lost = True
        if self._t is not None:
            _close_on_closed_loop(self._t)

    def pause_reading(self) -> None:
        if self._reading and not self._lost and self._t is not None:
            self._reading = False
            self._t.pause_reading()

    def resume_reading(self) -> None:
        if not self._reading and not self._lost and self._t is not None:
            self._reading = True
            if self._held:  # delivered first, from the loop (never inside this call)
                self._loop.call_soon(self._release_held)
            else:
                self._t.resume_reading()

    def _release_held(self) -> None:
        held = self._held
        protocol = self._protocol
        while held and self._reading and not self._closing and protocol is not None:
            try:
                protocol.data_received(memoryview(held.pop(0)))
            except Exception as exc:
                self._failed(exc, "data_received")
                raise
        # paused again inside data_received: the rest stays held and the transport paused
        if self._reading and not held and not self._lost and self._t is not None:
            self._t.resume_reading()

    def __repr__(self) -> str:
        state = "closed" if self._lost else "closing" if self._closing else "open"
        return f"<AsyncioStream {self.local[0]}:{self.local[1]} -> {self.peer[0]}:{self.peer[1]} {state}>"


class _AsyncioDatagram(asyncio.DatagramProtocol, DatagramEndpoint):
    def __init__(self, sock: socket.socket, protocol: DatagramProtocol, loop: asyncio.AbstractEventLoop) -> None:
        self._sock = sock
        self._protocol = protocol
        self._loop = loop
        self.address: Address = _address(sock.getsockname())
        self._t: asyncio.DatagramTransport | None = None
        self._pending: list[tuple[bytes, Address]] = []
        self._names: dict[str, str] = {}  # host name -> IP address, looked up once
        #: host names being looked up -> what waits for the answer (see _look_up)
        self._lookups: dict[str, tuple[asyncio.Future[Any], list[Callable[[str | None], None]]]] = {}
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    def _begin(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._closed:
            self._task = loop.create_task(self._open(loop))

    async def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._closed:  # closed before the loop ran: never open
            self._sock.close()
            return
        await loop.create_datagram_endpoint(lambda: self, sock=self._sock)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._t = transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is no subclass
        if self._closed:
            transport.close()
            return
        pending, self._pending = self._pending, []
        for payload, addr in pending:
            transport.sendto(payload, addr)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self._closed:
            self._protocol.datagram_received(data, _address(addr))

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error about an earlier datagram: UDP promises nothing, the resolver retries

    def sendto(self, data: bytes | bytearray | memoryview, addr: Address) -> None:
        payload = check_datagram(data)
        if not isinstance(addr, tuple) or len(addr) != 2:
            raise Incorrect(f"a datagram's address is a (host, port) tuple, not {addr!r}"[:200])
        host, port = check_address(addr[0], addr[1], "a datagram's destination")
        if self._closed:
            return
        ip = self._known(host)
        if ip is not None:
            self._send(payload, (ip, port))
        else:  # uvloop's sendto takes no names: sent once the name is looked up (dropped if it has no address)
            self._look_up(host, port, lambda ip: self._send(payload, (ip, port)) if ip is not None else None)

    def _send(self, payload: bytes, addr: Address) -> None:
        if self._closed:
            return
        if self._t is not None:
            self._t.sendto(payload, addr)
        elif len(self._pending) < _PENDING_DATAGRAMS:
            self._pending.append((payload, addr))

    def lookup(self, addr: Address) -> Future[Address | None]:
        if not isinstance(addr, tuple) or len(addr) != 2:
            raise Incorrect(f"a datagram's address is a (host, port) tuple, not {addr!r}"[:200])
        host, port = check_address(addr[0], addr[1], "a datagram's address")
        future: Future[Address | None] = Future()
        ip = self._known(host)
        if ip is not None:
            future.set_result((_as_reported(ip), port))
        else:
            def answer(ip: str | None) -> None:
                future.set_result(None if ip is None else (_as_reported(ip), port))

            self._look_up(host, port, answer)
        return future

    def _known(self, host: str) -> str | None:
        """``host`` if it is an IP address, the address a name was looked up to, else None."""
        try:
            ipaddress.ip_address(host.partition("%")[0])
            return host
        except ValueError:
            return self._names.get(host)

    def _look_up(self, host: str, port: int, then: Callable[[str | None], None]) -> None:
        """Call ``then`` with the IP address of the name ``host`` (None: it has none), looked
        up by the loop's resolver (in its executor: the hosts file, DNS) without blocking
        the loop, once for every caller asking meanwhile, and remembered.  The endpoint's
        family (IPv4 for a name with both, see _bind) is asked for."""
        if self._closed:
            return
        waiting = self._lookups.get(host)
        if waiting is not None:
            if len(waiting[1]) < _PENDING_DATAGRAMS:
                waiting[1].append(then)
            else:
                then(None)  # (as a datagram too many is dropped)
            return
        if len(self._lookups) >= _LOOKUPS:
            then(None)
            return
        # a future of the executor, not a task: one given up (closed) leaves nothing pending
        # behind for a loop closed meanwhile to warn about
        looking = self._loop.run_in_executor(None, functools.partial(
            socket.getaddrinfo, host, port, family=self._sock.family, type=socket.SOCK_DGRAM))
        self._lookups[host] = (looking, [then])
        looking.add_done_callback(functools.partial(self._looked_up, host))

    def _looked_up(self, host: str, looking: asyncio.Future[Any]) -> None:
        entry = self._lookups.get(host)
        if entry is None or entry[0] is not looking:  # closed meanwhile
            return
        del self._lookups[host]
        ip: str | None = None
        if not looking.cancelled() and looking.exception() is None:
            info = looking.result()
            if info:
                ip = str(info[0][4][0])
        # (else no such name, socket.gaierror, or no address of the endpoint's family)
        if ip is not None:
            if len(self._names) >= _NAMES_KEPT:
                self._names.clear()
            self._names[host] = ip
        for then in entry[1]:
            then(ip)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            lookups, self._lookups = self._lookups, {}
            for looking, _ in lookups.values():  # (what waits for them is told nothing: closed)
                looking.cancel()
            if self._t is not None:
                try:
                    self._t.close()
                except RuntimeError:  # its loop is closed: the transport cannot finish closing
                    _close_on_closed_loop(self._t)
                    self._sock.close()
            elif self._task is None or self._task.done():
                # the loop has not run since, or ended before the endpoint opened (see the
                # listener's close): the socket is closed now
                self._sock.close()
            # else _open's endpoint closes it (connection_made sees it closed)

    def __repr__(self) -> str:
        return f"<AsyncioDatagram {self.address[0]}:{self.address[1]}>"

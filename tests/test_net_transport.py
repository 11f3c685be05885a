"""What the asyncio transport adds to the contract: TLS through the standard ssl module (with
certificates made here by trustme), binding before the loop runs, and the same on uvloop.
Loopback only, ephemeral ports."""

from __future__ import annotations

import asyncio
import errno
import importlib.util
import socket
import ssl
from typing import Any

import pytest
from transport_support import AsyncioHarness, Datagrams, Recorder, raw_closed

from ergo.gen.errors import Incorrect, NoConnection, Taken, TooLarge
from net import transport as net_transport
from net.transport import _connect_error

trustme = pytest.importorskip("trustme")

LOOPS = [
    "asyncio",
    pytest.param("uvloop", marks=pytest.mark.skipif(importlib.util.find_spec("uvloop") is None,
                                                    reason="uvloop is not installed")),
]


@pytest.fixture(params=LOOPS)
def h(request: pytest.FixtureRequest):
    harness = AsyncioHarness(request.param)
    yield harness
    harness.close()


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def contexts(ca, name: str = "127.0.0.1") -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(server)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    return server, client


def test_tls_stream_echoes_and_says_it_is_tls(h, ca):
    server_ctx, client_ctx = contexts(ca)
    accepted: list[Recorder] = []
    listener = h.server.listen("127.0.0.1", 0, lambda: accepted.append(Recorder(h, echo=True)) or accepted[-1],
                               ssl=server_ctx)
    made: list[Recorder] = []
    fut = h.client.connect("127.0.0.1", listener.address[1], lambda: made.append(Recorder(h)) or made[-1],
                           ssl=client_ctx)
    fut._on_done(lambda _f: h.poke())
    h.run_until(fut.done, "the TLS connect")
    stream = fut.result()
    assert stream.tls and accepted[0].stream.tls
    payload = bytes(range(256)) * 4000
    made[0].do("write", payload)
    h.run_until(lambda: len(made[0].data) >= len(payload), "the echo")
    assert bytes(made[0].data) == payload
    made[0].do("close")
    h.run_until(lambda: accepted[0].is_lost and made[0].is_lost, "the close")
    assert accepted[0].lost is None and made[0].lost is None


@pytest.mark.parametrize("case", ["untrusted CA", "wrong server name"])
def test_tls_failure_fails_the_connect_with_noconnection(h, ca, case):
    h.allow_errors = True  # asyncio logs the listener's failed handshake
    server_ctx, client_ctx = contexts(ca)
    accepted: list[Recorder] = []
    listener = h.server.listen("127.0.0.1", 0, lambda: accepted.append(Recorder(h)) or accepted[-1], ssl=server_ctx)
    server_hostname = None
    if case == "untrusted CA":
        client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        trustme.CA().configure_trust(client_ctx)
    else:
        server_hostname = "elsewhere.example"
    made: list[Recorder] = []
    fut = h.client.connect("127.0.0.1", listener.address[1], lambda: made.append(Recorder(h)) or made[-1],
                           ssl=client_ctx, server_hostname=server_hostname)
    fut._on_done(lambda _f: h.poke())
    h.run_until(fut.done, "the failed handshake")
    # and why, which the reason alone (CERTIFICATE_VERIFY_FAILED for both) did not say
    why = "unable to get local issuer certificate" if case == "untrusted CA" else "mismatch"
    with pytest.raises(NoConnection, match=f"TLS handshake with .* failed: CERTIFICATE_VERIFY_FAILED .*{why}"):
        fut.result()
    assert made == [] and accepted == []  # neither factory saw it


def test_a_listener_refuses_a_client_tls_context_saying_so(h, ca):
    """``ssl.create_default_context()`` makes a client context; given to a listener it
    failed every handshake, and only the dialers heard of it, as a reset."""
    _server_ctx, client_ctx = contexts(ca)
    with pytest.raises(Incorrect, match="is a client context .*Purpose.CLIENT_AUTH"):
        h.server.listen("127.0.0.1", 0, lambda: Recorder(h), ssl=client_ctx)
    with pytest.raises(Incorrect, match="is an ssl.SSLContext, not str"):
        h.server.listen("127.0.0.1", 0, lambda: Recorder(h), ssl="cert.pem")  # type: ignore[arg-type]


def test_binding_works_before_the_loop_runs_and_taken_is_raised_at_once():
    h = AsyncioHarness()  # its loop has not run yet
    try:
        transport = h.server
        assert not h.loop.is_running()
        accepted: list[Recorder] = []
        listener = transport.listen("127.0.0.1", 0, lambda: accepted.append(Recorder(h)) or accepted[-1])
        with pytest.raises(Taken, match=f"127.0.0.1:{listener.address[1]} is in use"):
            transport.listen("127.0.0.1", listener.address[1], lambda: Recorder(h))
        got = Datagrams(h)
        a = transport.datagram("127.0.0.1", 0, Datagrams(h))
        b = transport.datagram("127.0.0.1", 0, got)
        a.sendto(b"sent before the loop ran", b.address)
        fut = transport.connect("127.0.0.1", listener.address[1], lambda: Recorder(h))
        fut._on_done(lambda _f: h.poke())
        h.run_until(lambda: fut.done() and accepted and got.got, "the connect and the datagram")
        assert fut.result().peer == listener.address
        assert got.got == [(b"sent before the loop ran", a.address)]
    finally:
        h.close()


def test_a_listener_closed_before_the_loop_ran_never_serves(h):
    listener = h.server.listen("127.0.0.1", 0, lambda: Recorder(h))
    listener.close()
    fut = h.client.connect("127.0.0.1", listener.address[1], lambda: Recorder(h))
    fut._on_done(lambda _f: h.poke())
    h.run_until(fut.done, "the refusal")
    with pytest.raises(NoConnection, match="refused"):
        fut.result()


def test_a_datagram_endpoint_closed_before_the_loop_ever_ran_frees_its_port_and_leaves_no_task():
    """A node whose start failed closes its registrar's UDP endpoint and the loop it made,
    which never runs again: the port is free at once and no coroutine is left unawaited."""
    import gc
    import warnings

    h = AsyncioHarness()  # its loop has not run yet
    try:
        endpoint = h.server.datagram("127.0.0.1", 0, Datagrams(h))
        port = endpoint.address[1]
        endpoint.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
            again.bind(("127.0.0.1", port))  # raised "Address already in use" while the socket lived
    finally:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            h.close()
            gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_os_errors_of_a_connect_become_noconnection_saying_why():
    cases = {
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"): "connection refused: nothing listens on h:1",
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"): "unknown host",
        OSError(errno.ENETUNREACH, "Network is unreachable"): "Network is unreachable",
        ssl.SSLCertVerificationError(1, "certificate verify failed"): "TLS handshake with h:1 failed",
        ConnectionResetError(errno.ECONNRESET, "reset"): "a TLS listener refusing plain bytes?",
        TimeoutError(): "timed out",
    }
    for exc, said in cases.items():
        error = _connect_error(exc, "h", 1)
        assert isinstance(error, NoConnection) and said in str(error), (exc, error)
    # a reset of a TLS dial is the listener refusing it, not plain bytes meeting a TLS listener
    error = _connect_error(ConnectionResetError(errno.ECONNRESET, "reset"), "h", 1, tls=True)
    assert "during the TLS handshake (the listener's TLS context refused it" in str(error)
    wrong = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    wrong.reason = "WRONG_VERSION_NUMBER"  # type: ignore[misc]
    assert "does not speak TLS" in str(_connect_error(wrong, "h", 1, tls=True))


def test_a_datagram_to_a_host_name_is_sent_to_its_address(h):
    got = Datagrams(h)
    a = h.client.datagram("127.0.0.1", 0, Datagrams(h))
    b = h.server.datagram("127.0.0.1", 0, got)
    a.sendto(b"by name", ("localhost", b.address[1]))  # uvloop's own sendto takes IP addresses only
    h.run_until(lambda: got.got, "the datagram")
    assert got.got == [(b"by name", a.address)]


def test_a_name_with_both_address_families_binds_ipv4(h, monkeypatch):
    real = socket.getaddrinfo

    def ipv6_first(host, port, *args, **kwargs):  # what many resolvers answer for "localhost"
        infos = real("127.0.0.1", port, *args, **kwargs)
        return [(socket.AF_INET6, info[1], info[2], "", ("::1", port, 0, 0)) for info in infos] + infos

    monkeypatch.setattr(socket, "getaddrinfo", ipv6_first)
    listener = h.server.listen("localhost", 0, lambda: Recorder(h))
    endpoint = h.server.datagram("localhost", 0, Datagrams(h))
    monkeypatch.undo()
    assert listener.address[0] == endpoint.address[0] == "127.0.0.1"


def test_a_connect_given_up_is_cancelled_before_it_dials(h):
    accepted: list[Recorder] = []
    listener = h.server.listen("127.0.0.1", 0, lambda: accepted.append(Recorder(h)) or accepted[-1])
    fut = h.client.connect("127.0.0.1", listener.address[1], lambda: Recorder(h))
    fut.set_exception(NoConnection("gave up"))
    later = h.client.connect("127.0.0.1", listener.address[1], lambda: Recorder(h))
    later._on_done(lambda _f: h.poke())
    h.run_until(lambda: later.done() and accepted, "the later connect")
    assert [a.stream.peer for a in accepted] == [later.result().local]  # the first never dialled


@pytest.mark.parametrize("where", ["connection_made", "data_received", "pause_writing"])
def test_a_callback_that_raises_drops_only_its_connection_and_is_logged(h, where):
    h.allow_errors = True

    class Faulty(Recorder):
        def connection_made(self, stream) -> None:
            super().connection_made(stream)
            if where == "connection_made":
                raise ValueError("bug")

        def data_received(self, data) -> None:
            super().data_received(data)
            if where == "data_received":
                raise ValueError("bug")

        def pause_writing(self) -> None:
            super().pause_writing()
            raise ValueError("bug")

    from ergo.transport import FlowLimits

    h.set_limits(FlowLimits(high=1, low=0, max_buffer=64 * 1024 * 1024))
    accepted: list[Recorder] = []
    listener = h.server.listen("127.0.0.1", 0, lambda: accepted.append(Faulty(h, echo=True)) or accepted[-1])
    made: list[Recorder] = []
    paused = where == "pause_writing"  # a client that does not read: the echo backs up, the server pauses
    fut = h.client.connect("127.0.0.1", listener.address[1],
                           lambda: made.append(Recorder(h, paused=paused)) or made[-1])
    fut._on_done(lambda _f: h.poke())
    h.run_until(lambda: fut.done() and accepted, "the connect")
    made[0].do("write", b"x" * (32_000_000 if paused else 1000))
    h.run_until(lambda: accepted[0].is_lost, "the faulty end dropped")
    made[0].do("resume_reading")
    h.run_until(lambda: made[0].is_lost, "the reset at the other end")
    assert isinstance(accepted[0].lost, NoConnection) and "ValueError" in str(accepted[0].lost)
    assert isinstance(made[0].lost, NoConnection)  # reset
    assert h.errors  # logged by the loop
    other = h.client.connect("127.0.0.1", listener.address[1], lambda: Recorder(h))
    other._on_done(lambda _f: h.poke())
    h.run_until(other.done, "another connect")
    assert other.result().peer == listener.address  # the listener keeps serving


def test_a_stream_receives_into_a_small_buffer_that_grows_with_what_it_carries(h):
    """A stream starts reading into 8 KiB (a stream that never speaks, a flood of them,
    costs little) and a read that fills the buffer doubles it, up to receive_buffer: a
    bulk transfer arrives whole, read in pieces up to that size."""
    accepted: list[Recorder] = []
    listener = h.server.listen("127.0.0.1", 0, lambda: accepted.append(Recorder(h)) or accepted[-1])
    made: list[Recorder] = []
    fut = h.client.connect("127.0.0.1", listener.address[1], lambda: made.append(Recorder(h)) or made[-1])
    fut._on_done(lambda _f: h.poke())
    h.run_until(lambda: fut.done() and accepted, "the connect")
    receiving = accepted[0].stream
    assert len(receiving._view) == 8 * 1024
    payload = bytes(range(256)) * 8192  # 2 MiB
    made[0].do("write", payload)
    h.run_until(lambda: len(accepted[0].data) >= len(payload), "the transfer")
    assert bytes(accepted[0].data) == payload
    assert len(receiving._view) == h.server.receive_buffer == 256 * 1024


def _spin_until(h: AsyncioHarness, predicate, what: str) -> None:
    """Turn the loop until ``predicate()`` (nothing pokes the harness about raw sockets)."""

    async def wait() -> None:
        while not predicate():
            await asyncio.sleep(0)

    try:
        # a deadline against a hang (a failing test), never a wait for something to happen
        h.loop.run_until_complete(asyncio.wait_for(wait(), 5))
    except TimeoutError:
        raise AssertionError(f"{what} did not happen") from None


def _silent(port: int, n: int) -> list[socket.socket]:
    """``n`` raw TCP connections to ``port`` that will never send a ClientHello."""
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        socks.append(sock)
    return socks


def _tls_client(h: AsyncioHarness, port: int, client_ctx: ssl.SSLContext) -> Recorder:
    made: list[Recorder] = []
    fut = h.client.connect("127.0.0.1", port, lambda: made.append(Recorder(h)) or made[-1], ssl=client_ctx)
    fut._on_done(lambda _f: h.poke())
    h.run_until(fut.done, "the TLS connect")
    assert fut.result().tls
    return made[0]


def _tls_echo_listener(h: AsyncioHarness, ca: Any) -> tuple[Any, ssl.SSLContext]:
    """A TLS listener on loopback whose streams echo, and the client context that trusts it."""
    server_ctx, client_ctx = contexts(ca)
    return h.server.listen("127.0.0.1", 0, lambda: Recorder(h, echo=True), ssl=server_ctx), client_ctx


def test_a_burst_of_sockets_that_never_start_tls_keeps_only_the_newest_in_their_handshake(h, ca, monkeypatch):
    """Ten sockets connect to a TLS listener before the loop runs (so all are accepted in
    one turn) and never say hello; at most MAX_TLS_HANDSHAKES (4 here) stay in their
    handshake, the oldest closed, on asyncio and on uvloop (whose own TLS server kept them
    all).  A real client still connects, and its handshake drops the oldest left."""
    monkeypatch.setattr(net_transport, "MAX_TLS_HANDSHAKES", 4)
    listener, client_ctx = _tls_echo_listener(h, ca)
    socks = _silent(listener.address[1], 10)
    try:
        _spin_until(h, lambda: all(map(raw_closed, socks[:6])), "the six oldest closed")
        assert not any(map(raw_closed, socks[6:]))
        client = _tls_client(h, listener.address[1], client_ctx)
        _spin_until(h, lambda: raw_closed(socks[6]), "the oldest left closed")
        assert not any(map(raw_closed, socks[7:]))
        client.do("write", b"hello")
        h.run_until(lambda: bytes(client.data) == b"hello", "the echo")
    finally:
        for sock in socks:
            sock.close()


def test_closing_a_tls_listener_closes_the_sockets_still_in_their_handshake(h, ca):
    """Sockets a TLS listener accepted that never said hello are not streams yet (nobody
    else has them): closing the listener closes them, on asyncio and on uvloop (whose
    own TLS server kept them until its handshake timeout); a stream it accepted lives on."""
    listener, client_ctx = _tls_echo_listener(h, ca)
    socks = _silent(listener.address[1], 3)
    try:
        client = _tls_client(h, listener.address[1], client_ctx)  # accepted after the three (in order)
        assert not any(map(raw_closed, socks))
        listener.close()
        _spin_until(h, lambda: all(map(raw_closed, socks)), "the silent sockets closed")
        client.do("write", b"still here")
        h.run_until(lambda: bytes(client.data) == b"still here", "the echo on the accepted stream")
    finally:
        for sock in socks:
            sock.close()


def test_ports_are_freed_by_close_after_the_loop_ended_before_serving_began():
    """asyncio.run (or a Runner) cancels the tasks left when its coroutine returns: a
    listener or datagram endpoint made just before that never began serving, and its
    close() after the loop ended left its socket open, so the port (a node's acceptor, its
    host's registrar) stayed bound for the rest of the process and the next node there
    could neither serve nor reach a registrar."""
    from net.transport import AsyncioTransport

    with asyncio.Runner() as runner:
        transport = AsyncioTransport(runner.get_loop())

        async def bind() -> tuple[Any, Any]:
            return transport.listen("127.0.0.1", 0, lambda: None), transport.datagram("127.0.0.1", 0, Datagrams(None))

        listener, endpoint = runner.run(bind())
    listener.close()
    endpoint.close()
    assert listener._sock.fileno() == -1 and endpoint._sock.fileno() == -1
    for kind, port in ((socket.SOCK_STREAM, listener.address[1]), (socket.SOCK_DGRAM, endpoint.address[1])):
        with socket.socket(socket.AF_INET, kind) as again:
            again.bind(("127.0.0.1", port))  # free again


@pytest.mark.parametrize("code", [errno.EMFILE, errno.ENFILE, errno.ENOBUFS])
def test_a_socket_the_os_cannot_make_is_the_projects_error_not_an_oserror(h, monkeypatch, code):
    """Out of file descriptors (or buffers), making a listener's or a datagram port's
    socket raised the OSError itself, out of a send that dialed (a resolve's UDP port):
    it is ``TooLarge`` saying what ran out, as the seam's other OS errors are its own."""
    def exhausted(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, "no more")

    monkeypatch.setattr(net_transport.socket, "socket", exhausted)
    with pytest.raises(TooLarge, match=r"cannot bind 127\.0\.0\.1:0: no more"):
        h.server.datagram("127.0.0.1", 0, Datagrams(h))
    with pytest.raises(TooLarge, match=r"cannot bind 127\.0\.0\.1:0: no more"):
        h.server.listen("127.0.0.1", 0, lambda: Recorder(h))

"""The transport seam's contract (ergo/transport.py), one test code on every backend:
simulated hosts, asyncio sockets on loopback, and uvloop's (skipped if it is not installed)."""

from __future__ import annotations

import importlib.util

import pytest
from transport_support import AsyncioHarness, Datagrams, Harness, Recorder, SimHarness

from ergo.gen.errors import Incorrect, NoConnection, Taken, TooLarge
from ergo.transport import BACKLOG_CAUSE, MAX_DATAGRAM, FlowLimits

BACKENDS = [
    "sim",
    "asyncio",
    pytest.param("uvloop", marks=pytest.mark.skipif(importlib.util.find_spec("uvloop") is None,
                                                    reason="uvloop is not installed")),
]


@pytest.fixture(params=BACKENDS)
def h(request: pytest.FixtureRequest):
    harness: Harness = SimHarness() if request.param == "sim" else AsyncioHarness(request.param)
    yield harness
    harness.close()


def serve(h: Harness, **recorder):
    """A listener on the server host (ephemeral port) and the list of its accepted protocols."""
    accepted: list[Recorder] = []

    def factory() -> Recorder:
        accepted.append(Recorder(h, **recorder))
        return accepted[-1]

    return h.server.listen(h.server_host, 0, factory), accepted


def dial(h: Harness, port: int, **recorder):
    """Connect to the server host's ``port``; returns (future, the client's protocols)."""
    made: list[Recorder] = []

    def factory() -> Recorder:
        made.append(Recorder(h, **recorder))
        return made[-1]

    fut = h.client.connect(h.server_host, port, factory)
    fut._on_done(lambda _f: h.poke())
    return fut, made


def connected(h: Harness, **server):
    listener, accepted = serve(h, **server)
    fut, made = dial(h, listener.address[1])
    h.run_until(lambda: fut.done() and accepted and accepted[0].stream is not None, "the connect")
    assert fut.result() is made[0].stream
    return listener, made[0], accepted[0]


def test_listen_on_port_zero_binds_an_ephemeral_port(h):
    listener, _ = serve(h)
    host, port = listener.address
    assert host == h.server_host and 0 < port <= 65535
    listener.close()


def test_connect_echo_delivers_every_byte_in_order(h):
    listener, accepted = serve(h, echo=True)
    fut, made = dial(h, listener.address[1])
    h.run_until(fut.done, "the connect")
    client = made[0]
    stream = fut.result()
    assert client.events == ["made"]  # connection_made ran before the future completed
    assert stream.peer == listener.address and stream.local[0] == h.client_host
    h.run_until(lambda: bool(accepted), "the accepting side")  # (its ACK is still on its way in simulation)
    assert accepted[0].stream.peer == stream.local
    assert not stream.tls and not stream.closing
    sent = b"".join(b"%d:" % i + bytes([i % 256]) * (i * 37 % 5000) for i in range(200))
    for i in range(0, len(sent), 777):
        client.do("write", memoryview(sent)[i:i + 777])
    client.do("writelines", [b"tail-1", bytearray(b"tail-2")])
    sent += b"tail-1tail-2"
    h.run_until(lambda: len(client.data) >= len(sent), "the echo")
    assert bytes(client.data) == sent
    assert bytes(accepted[0].data) == sent


def test_a_writer_may_reuse_its_buffer_once_write_returns(h):
    _listener, client, server = connected(h, paused=True)  # so that the bytes must wait
    buf = bytearray(b"a" * 4_000_000)
    client.do("write", buf)
    client.do("writelines", [memoryview(buf)[:10]])
    buf[:] = b"b" * len(buf)
    server.do("resume_reading")
    h.run_until(lambda: len(server.data) >= 4_000_010, "the bytes")
    assert bytes(server.data) == b"a" * 4_000_010


def test_close_flushes_then_peer_sees_clean_connection_lost(h):
    _listener, client, server = connected(h)
    payload = b"x" * 100_000
    client.do("write", payload)
    client.do("close")
    assert client.stream.closing
    client.do("write", b"dropped")  # after close: dropped, not an error
    h.run_until(lambda: server.is_lost and client.is_lost, "both ends closing")
    assert server.lost is None and client.lost is None
    assert bytes(server.data) == payload


def test_server_close_reaches_the_client(h):
    _listener, client, server = connected(h)
    server.do("write", b"bye")
    server.do("close")
    h.run_until(lambda: client.is_lost, "the client hearing the close")
    assert client.lost is None and bytes(client.data) == b"bye"


def test_connect_to_a_port_nobody_listens_on_is_refused(h):
    listener, _ = serve(h)
    port = listener.address[1]
    listener.close()
    h.run_until(lambda: True)
    fut, made = dial(h, port)
    h.run_until(fut.done, "the refusal")
    with pytest.raises(NoConnection, match="refused"):
        fut.result()
    assert made == []  # the factory is never called for a failed connect


def test_binding_a_taken_port_raises_taken_at_once(h):
    listener, _ = serve(h)
    with pytest.raises(Taken, match=str(listener.address[1])):
        h.server.listen(h.server_host, listener.address[1], lambda: Recorder(h))
    endpoint = h.server.datagram(h.server_host, 0, Datagrams(h))
    with pytest.raises(Taken):
        h.server.datagram(h.server_host, endpoint.address[1], Datagrams(h))
    listener.close()
    endpoint.close()


def test_binding_an_address_of_another_host_is_incorrect(h):
    with pytest.raises(Incorrect, match="cannot bind"):
        h.client.listen(h.foreign_host, 0, lambda: Recorder(h))
    with pytest.raises(Incorrect):
        h.client.listen(h.client_host, 70000, lambda: Recorder(h))
    with pytest.raises(Incorrect):
        h.client.connect(h.server_host, 0, lambda: Recorder(h))


def test_abort_closes_at_once_and_the_peer_sees_a_reset(h):
    _listener, client, server = connected(h)
    client.do("write", b"a" * 10)
    client.do("abort")
    assert client.stream.closing
    client.do("abort")  # idempotent
    client.do("write", b"dropped")
    h.run_until(lambda: client.is_lost and server.is_lost, "both ends losing the stream")
    assert client.lost is None  # our own decision
    assert isinstance(server.lost, NoConnection) and "reset" in str(server.lost)


def test_a_paused_reader_learns_of_a_reset_when_it_resumes(h):
    _listener, client, server = connected(h, paused=True)
    client.do("write", b"a" * 10)
    client.do("abort")
    h.run_until(lambda: client.is_lost, "the abort")
    server.do("resume_reading")
    h.run_until(lambda: server.is_lost, "the reset reaching the reader")
    assert isinstance(server.lost, NoConnection) and "reset" in str(server.lost)


def test_a_paused_reader_gets_the_bytes_before_the_fin(h):
    _listener, client, server = connected(h, paused=True)
    client.do("write", b"last words")
    client.do("close")
    h.run_until(lambda: client.is_lost, "the close")
    server.do("resume_reading")
    h.run_until(lambda: server.is_lost, "the FIN reaching the reader")
    assert server.lost is None and bytes(server.data) == b"last words"


def test_write_takes_bytes_like_data_only(h):
    _listener, client, _server = connected(h)
    with pytest.raises(Incorrect, match="bytes-like"):
        client.do("write", "text")


def test_datagram_round_trip(h):
    a_got, b_got = Datagrams(h), Datagrams(h)
    a = h.client.datagram(h.client_host, 0, a_got)
    b = h.server.datagram(h.server_host, 0, b_got)
    a.sendto(b"resolve?", b.address)
    h.run_until(lambda: b_got.got, "the request")
    data, source = b_got.got[0]
    assert data == b"resolve?" and source == a.address
    b.sendto(bytearray(b"here"), source)
    h.run_until(lambda: a_got.got, "the reply")
    assert a_got.got == [(b"here", b.address)]
    with pytest.raises(TooLarge):
        a.sendto(b"x" * (MAX_DATAGRAM + 1), b.address)
    a.close()
    b.close()
    a.sendto(b"after close", b.address)  # dropped


def test_lookup_spells_an_address_as_a_datagram_from_it_shows_its_source(h):
    """A resolver checks that a reply comes from where its question went: the source a
    datagram shows equals ``lookup`` of the address it was sent to, the host given by
    name (``localhost`` on sockets, looked up without blocking) or in another spelling of
    its address."""
    a_got, b_got = Datagrams(h), Datagrams(h)
    a = h.client.datagram(h.client_host, 0, a_got)
    b = h.server.datagram(h.server_host, 0, b_got)
    port = b.address[1]
    for target in [(name, port) for name in h.server_names]:
        a.sendto(b"?", target)
        h.run_until(lambda: b_got.got, "the request")
        _, asker = b_got.got.pop()
        b.sendto(b"!", asker)
        h.run_until(lambda: a_got.got, "the reply")
        (_, source), = a_got.got
        a_got.got.clear()
        looking = a.lookup(target)
        h.run_until(looking.done, "the lookup")
        assert source == looking.result() == b.address
    looking = a.lookup((h.server_host, port + 1))
    h.run_until(looking.done, "the lookup")
    assert looking.result() != source
    with pytest.raises(Incorrect):
        a.lookup(("", 1))
    a.close()
    b.close()


def test_a_paused_reader_makes_the_writer_pause_and_resume_delivers_everything(h):
    h.set_limits(FlowLimits(high=64 * 1024, low=16 * 1024, max_buffer=64 * 1024 * 1024))
    _listener, client, server = connected(h, paused=True)
    chunk = bytes(range(256)) * 256  # 64 KiB
    written = bytearray()

    def pump() -> None:  # one write per scheduler turn until told to pause
        if not client.writing_paused and len(written) < 256 * 1024 * 1024:
            client.do("write", chunk)
            written.extend(chunk)
            h.call_soon(pump)
        h.poke()

    pump()
    h.run_until(lambda: client.writing_paused, "pause_writing")
    assert client.stream.buffered > 64 * 1024
    before = len(server.data)
    assert before < len(written)  # the reader holds bytes back
    server.do("resume_reading")
    h.run_until(lambda: len(server.data) == len(written) and not client.writing_paused, "delivery")
    assert bytes(server.data) == bytes(written)
    assert client.events[-2:] == ["pause", "resume"]
    assert not client.is_lost


def test_a_reader_that_never_reads_cannot_make_the_writer_buffer_past_the_cap(h):
    cap = 1024 * 1024
    h.set_limits(FlowLimits(high=64 * 1024, low=16 * 1024, max_buffer=cap))
    _listener, client, server = connected(h, paused=True)
    chunk = b"z" * 65536
    most = [0]

    def pump() -> None:  # ignores pause_writing: the cap is the backstop
        if not client.stream.closing and most[0] < 512 * 1024 * 1024:
            client.do("write", chunk)
            most[0] = max(most[0], client.stream.buffered)
            h.call_soon(pump)
        h.poke()

    pump()
    h.run_until(lambda: client.is_lost, "the abort at the cap")
    # what was measured, and why as far as the backend can tell: a socket cannot tell a
    # reader that stopped from a slow network, a simulated link can
    text = str(client.lost)
    assert isinstance(client.lost, NoConnection) and f"over the limit of {cap} (FlowLimits.max_buffer)" in text
    assert ("the peer paused reading" if h.name == "sim" else BACKLOG_CAUSE) in text, text
    assert most[0] <= cap
    assert client.stream.buffered == 0
    server.do("resume_reading")  # the reader learns of the reset once it reads again
    h.run_until(lambda: server.is_lost, "the reset at the reader")
    assert isinstance(server.lost, NoConnection)


def test_one_write_that_crosses_the_cap_aborts_the_stream_though_no_pause_came_before_it(h):
    """The cap holds for the write that first takes the stream past ``high``, not only for
    writes after the writer was told to pause (the asyncio stream checks the cap only
    once its transport said pause, which it does inside that very write)."""
    cap = 1024 * 1024
    h.set_limits(FlowLimits(high=64 * 1024, low=16 * 1024, max_buffer=cap))
    _listener, client, _server = connected(h, paused=True)
    client.do("write", b"x" * 1024)  # far under every limit
    assert not client.stream.closing
    client.do("write", b"z" * (64 * cap))  # more than the kernel's buffers take at once
    assert client.stream.closing  # aborted by the write itself
    h.run_until(lambda: client.is_lost, "the abort at the cap")
    assert isinstance(client.lost, NoConnection) and f"over the limit of {cap}" in str(client.lost)


def test_closing_a_listener_refuses_new_connects_and_keeps_accepted_streams(h):
    listener, client, server = connected(h, echo=True)
    listener.close()
    listener.close()  # idempotent
    fut, _made = dial(h, listener.address[1])
    h.run_until(fut.done, "the refusal")
    assert isinstance(fut.exception(), NoConnection)
    client.do("write", b"still here")
    h.run_until(lambda: bytes(client.data) == b"still here", "the echo on the old stream")
    assert not server.is_lost


def test_pause_and_resume_reading_are_idempotent(h):
    _listener, client, server = connected(h)
    server.do("pause_reading")
    server.do("pause_reading")
    client.do("write", b"held")
    server.do("resume_reading")
    server.do("resume_reading")
    h.run_until(lambda: bytes(server.data) == b"held", "the held bytes")


def test_a_connect_given_up_before_it_completes_never_calls_the_factory(h):
    listener, accepted = serve(h)
    fut, made = dial(h, listener.address[1])
    fut.set_exception(NoConnection("gave up"))  # what a caller's connect timeout does
    later, made_later = dial(h, listener.address[1])

    def settled() -> bool:  # the later connect is up, and whatever the first one reached is reset
        if not later.done() or not accepted:
            return False
        others = [a for a in accepted if a.stream is None or a.stream.peer != later.result().local]
        return all(a.is_lost for a in others)

    h.run_until(settled, "the later connect")
    assert made == [] and len(made_later) == 1
    for a in accepted:
        if a.stream.peer != later.result().local:  # the simulation's listener saw it, then its reset
            assert isinstance(a.lost, NoConnection) and "reset" in str(a.lost)

"""What the simulated transport adds to the contract: latency per host pair on the virtual
clock, the link model (order, window), and runs determined by the seed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from network_support import SimCluster
from support import Collector
from transport_support import Datagrams, Recorder, SimHarness

import ergo
import sim
from ergo.gen.errors import Incorrect, NoConnection, Taken
from ergo.transport import FlowLimits, StreamProtocol
from sim.transport import DEFAULT_LATENCY, DEFAULT_WINDOW


class Timed(Recorder):
    """A recorder that notes the virtual time of each callback."""

    def __init__(self, h: SimHarness, **kw) -> None:
        super().__init__(h, **kw)
        self.times: list[tuple[float, str]] = []

    def connection_made(self, stream) -> None:
        super().connection_made(stream)
        self.times.append((self.h.sim.now, "made"))

    def data_received(self, data) -> None:
        super().data_received(data)
        self.times.append((self.h.sim.now, bytes(data).decode()))


def pair(h: SimHarness, *, client_host: str = "host1", server_host: str = "host2"):
    accepted: list[Timed] = []
    made: list[Timed] = []
    listener = h.sim.host(server_host).transport.listen(server_host, 0,
                                                        lambda: accepted.append(Timed(h)) or accepted[-1])
    fut = h.sim.host(client_host).transport.connect(server_host, listener.address[1],
                                                    lambda: made.append(Timed(h)) or made[-1])
    return listener, fut, made, accepted


def test_default_latency_is_one_millisecond_each_way():
    h = SimHarness()
    _listener, fut, made, accepted = pair(h)
    h.sim.run_until(fut.done)
    assert DEFAULT_LATENCY == 0.001
    assert h.sim.now == pytest.approx(0.002)  # the request crossed, and the accept came back
    assert made[0].times == [(pytest.approx(0.002), "made")]
    start = h.sim.now
    made[0].do("write", b"ping")
    h.sim.run()
    # the listener's side is made when the dialer's ACK arrives (a third crossing), ahead of its bytes
    assert accepted[0].times == [(pytest.approx(0.003), "made"), (pytest.approx(start + 0.001), "ping")]


def test_latency_set_per_host_pair_is_observed_on_the_virtual_clock():
    h = SimHarness()
    h.sim.host("host3")
    h.sim.set_latency("host2", "host1", 0.005)  # either order names the same link
    assert h.sim.link("host1", "host2").latency == 0.005
    assert h.sim.link("host1", "host3").latency == DEFAULT_LATENCY
    _listener, fut, made, accepted = pair(h)
    h.sim.run_until(fut.done)
    assert h.sim.now == pytest.approx(0.010)
    made[0].do("write", b"a")
    h.sim.run()
    assert accepted[0].times[-1] == (pytest.approx(0.015), "a")
    _l3, fut3, _made3, accepted3 = pair(h, server_host="host3")
    start = h.sim.now
    h.sim.run_until(fut3.done)
    assert h.sim.now - start == pytest.approx(0.002)


def test_lowering_the_latency_never_reorders_bytes_in_flight():
    h = SimHarness()
    _listener, fut, made, accepted = pair(h)
    h.sim.run_until(fut.done)
    h.sim.set_latency("host1", "host2", 0.050)
    made[0].do("write", b"first")
    h.sim.set_latency("host1", "host2", 0.001)
    made[0].do("write", b"second")
    h.sim.run()
    assert [text for _, text in accepted[0].times[1:]] == ["first", "second"]
    assert accepted[0].times[1][0] == accepted[0].times[2][0]  # the second waited for the first


def test_a_latency_must_be_a_finite_number_of_seconds():
    s = sim.Sim()
    s.host("host1"), s.host("host2")
    with pytest.raises(Incorrect):
        s.set_latency("host1", "host2", -1)
    with pytest.raises(Incorrect):
        s.set_latency("host1", "host2", float("nan"))
    with pytest.raises(Incorrect):
        s.set_latency("host1", "a@host2", 0.1)


def test_refusal_comes_after_one_round_trip():
    h = SimHarness()
    h.sim.set_latency("host1", "host2", 0.004)
    fut = h.client.connect("host2", 4499, lambda: Recorder(h))
    h.sim.run_until(fut.done)
    assert h.sim.now == pytest.approx(0.008)
    with pytest.raises(NoConnection, match="connection refused: nothing listens on host2:4499"):
        fut.result()


def _connect_across_a_second() -> tuple[SimHarness, Any, list[Recorder], list[Recorder], Any]:
    """A connect from host1 to a listener of host2, 1 s away: the harness, the listener,
    the protocols each side made (none yet) and the connect's future."""
    h = SimHarness()
    h.sim.set_latency("host1", "host2", 1.0)
    accepted: list[Recorder] = []
    listener = h.server.listen("host2", 0, lambda: accepted.append(Recorder(h)) or accepted[-1])
    made: list[Recorder] = []
    fut = h.client.connect("host2", listener.address[1], lambda: made.append(Recorder(h)) or made[-1])
    return h, listener, accepted, made, fut


@pytest.mark.parametrize("when", [0.5, 1.5], ids=["before-the-syn-arrives", "while-the-syn-ack-travels"])
def test_a_connect_given_up_before_its_accept_arrives_never_reaches_the_listeners_program(when):
    # the listener's side was handed to its program when the SYN arrived, so a dialer
    # that had given up (its connect timeout) left the acceptor a connection nobody owned,
    # reset one round trip later (a node logged it as a refusal); a kernel completes the
    # handshake with the dialer's ACK, which a dialer that gave up answers with a reset
    h, listener, accepted, made, fut = _connect_across_a_second()
    h.sim.run_for(when)
    fut.set_exception(NoConnection("gave up"))  # what the caller's connect timeout does
    h.sim.run_for(10)
    assert accepted == [] and made == []
    assert not h.server.streams and not h.client.streams
    assert [p for p in h.sim.host("host1").ports.stream if p != listener.address[1]] == []  # the dialer's port is free
    later = h.client.connect("host2", listener.address[1], lambda: made.append(Recorder(h)) or made[-1])
    h.sim.run_until(lambda: bool(accepted))
    assert later.done() and len(made) == 1 and accepted[0].stream.peer == later.result().local


def test_a_listener_closed_before_the_dialers_ack_arrives_resets_the_connection():
    h, listener, accepted, made, fut = _connect_across_a_second()
    h.sim.run_for(1.5)  # the SYN-ACK is on its way back
    listener.close()
    h.sim.run_until(fut.done)
    client = made[0]
    h.sim.run_until(lambda: client.is_lost)
    assert accepted == []
    assert isinstance(client.lost, NoConnection) and "reset" in str(client.lost)


def test_connecting_to_an_unknown_host_fails_with_noconnection():
    h = SimHarness()
    fut = h.client.connect("nowhere", 80, lambda: Recorder(h))
    h.sim.run_until(fut.done)
    with pytest.raises(NoConnection, match="no host named 'nowhere'"):
        fut.result()


def test_hosts_named_like_loopback_addresses_connect_to_each_other_and_to_themselves():
    h = SimHarness()
    s = h.sim
    a, b = s.host("127.0.0.2"), s.host("127.0.0.3")
    assert a.address == "127.0.0.2"
    got: list[Recorder] = []
    listener = b.transport.listen("127.0.0.3", 4499, lambda: got.append(Recorder(h)) or got[-1])
    fut = a.transport.connect("127.0.0.3", 4499, lambda: Recorder(h))
    own = b.transport.connect("127.0.0.3", 4499, lambda: Recorder(h))  # loopback
    s.run()
    assert fut.result().peer == ("127.0.0.3", 4499) and own.result().local[0] == "127.0.0.3"
    assert len(got) == 2 and listener.address == ("127.0.0.3", 4499)


def test_nodes_of_one_host_share_its_ports():
    s = sim.Sim()
    host = s.host("host1")
    host.transport.listen("host1", 4499, StreamProtocol)
    with pytest.raises(Taken, match="host1:4499 is in use"):
        s.host("host1").transport.listen("host1", 4499, StreamProtocol)
    s.host("host2").transport.listen("host2", 4499, StreamProtocol)  # another host: its own ports


def test_a_paused_reader_holds_at_most_the_window_and_the_rest_waits_at_the_writer():
    h = SimHarness()
    listener, accepted = h.server.listen("host2", 0, lambda: Recorder(h, paused=True)), []
    fut = h.client.connect("host2", listener.address[1], lambda: accepted.append(Recorder(h)) or accepted[-1])
    h.sim.run_until(fut.done)
    client = accepted[0]
    client.do("write", b"x" * (DEFAULT_WINDOW + 300_000))
    assert client.stream.buffered == 300_000  # the window went at once, the rest waits
    h.sim.run()
    assert client.stream.buffered == 300_000  # nobody reads: nothing more moves
    assert client.events == ["made", "pause"]  # above the high-water mark (256 KiB)


def test_tls_on_both_ends_or_neither():
    h = SimHarness()
    tls = object()  # the simulation passes contexts through without reading them
    listener = h.server.listen("host2", 0, lambda: Recorder(h), ssl=tls)
    ok = h.client.connect("host2", listener.address[1], lambda: Recorder(h), ssl=tls)
    plain = h.client.connect("host2", listener.address[1], lambda: Recorder(h))
    h.sim.run()
    assert ok.result().tls
    with pytest.raises(NoConnection, match="TLS handshake with host2:.* failed"):
        plain.result()


def test_datagrams_to_nobody_are_dropped_silently():
    h = SimHarness()
    got = Datagrams(h)
    a = h.client.datagram("host1", 0, got)
    a.sendto(b"lost", ("host2", 4499))
    a.sendto(b"lost", ("nowhere", 4499))
    h.sim.run()
    assert got.got == []


def test_a_closed_stream_frees_its_ephemeral_port():
    h = SimHarness()
    listener = h.server.listen("host2", 0, lambda: Recorder(h))
    made: list[Recorder] = []
    fut = h.client.connect("host2", listener.address[1], lambda: made.append(Recorder(h)) or made[-1])
    h.sim.run_until(fut.done)
    port = fut.result().local[1]
    with pytest.raises(Taken):
        h.client.listen("host1", port, StreamProtocol)
    assert list(h.client.streams) == [fut.result()]  # the hook a host crash will use
    made[0].do("close")
    h.sim.run()
    h.client.listen("host1", port, StreamProtocol).close()
    assert not h.client.streams and not h.server.streams


def _story(seed: int) -> list[tuple[float, str, str]]:
    """Three hosts exchanging bytes and datagrams with random sizes from the seed."""
    h = SimHarness(seed)
    s = h.sim
    rng = s.world.rng("story")
    trace: list[tuple[float, str, str]] = []

    class Echo(StreamProtocol):
        def __init__(self, name: str) -> None:
            self.name = name

        def connection_made(self, stream) -> None:
            self.stream = stream
            trace.append((s.now, self.name, f"made {stream.local} {stream.peer}"))

        def data_received(self, data) -> None:
            trace.append((s.now, self.name, f"{len(data)} bytes"))
            if self.name.startswith("server"):
                self.stream.write(bytes(data))

        def connection_lost(self, error) -> None:
            trace.append((s.now, self.name, f"lost {error!r}"))

    for i, host in enumerate(["host1", "host2", "host3"]):
        s.host(host).transport.listen(host, 7000 + i, lambda host=host: Echo(f"server@{host}"))
    s.set_latency("host1", "host3", rng.uniform(0.001, 0.01))
    clients = []
    for src in ["host1", "host2", "host3"]:
        for i, dst in enumerate(["host1", "host2", "host3"]):
            fut = s.host(src).transport.connect(dst, 7000 + i, lambda src=src, dst=dst: Echo(f"{src}->{dst}"))
            clients.append(fut)
    s.run()
    for fut in clients:
        stream = fut.result()
        stream.write(rng.randbytes(rng.randrange(1, 600_000)))
        if rng.random() < 0.5:
            stream.close()
    s.run()
    return trace


def test_same_seed_gives_the_same_trace():
    first = _story(7)
    assert first == _story(7)
    assert len(first) > 30
    assert first != _story(8)


def test_datagrams_take_the_link_latency():
    h = SimHarness()
    h.sim.set_latency("host1", "host2", 0.003)
    arrived: list[float] = []

    class Clock(Datagrams):
        def datagram_received(self, data, addr) -> None:
            super().datagram_received(data, addr)
            arrived.append(h.sim.now)

    a = h.client.datagram("host1", 0, Datagrams(h))
    b = h.server.datagram("host2", 4499, Clock(h))
    h.sim.run_for(0.010)
    a.sendto(b"resolve", b.address)
    h.sim.run()
    assert arrived == [pytest.approx(0.013)]

#: what stands between a writer and its peer, and what the stream's error then says
_BACKLOGS = {
    "slow link": (lambda h, server: h.sim.set_latency("host1", "host2", 0.2),
                  "the peer reads all that arrives, and the link is slower than the writes: it carries at most "
                  f"the window ({DEFAULT_WINDOW} bytes) per round trip (0.4 s)"),
    "reader paused": (lambda h, server: server.do("pause_reading"),
                      f"the peer paused reading ({DEFAULT_WINDOW} bytes wait unread there)"),
    "held": (lambda h, server: h.sim.hold("host1", "host2"), "the link to the peer is held"),
    "acks cut": (lambda h, server: h.sim.partition_oneway("host2", "host1"),
                 "the link from the peer (its acknowledgements) is cut (a partition)"),
    "host paused": (lambda h, server: h.sim.pause("host2"), "the peer's host host2 is paused"),
}


@pytest.mark.parametrize("backlog", sorted(_BACKLOGS))
def test_a_writer_past_the_cap_is_told_what_keeps_its_bytes_waiting(backlog):
    # every overflow said "stopped reading", also of a peer that reads everything behind a
    # link whose latency keeps the window in flight
    h = SimHarness()
    cap = 1024 * 1024
    h.set_limits(FlowLimits(high=64 * 1024, low=16 * 1024, max_buffer=cap))
    _listener, fut, made, accepted = pair(h)
    h.sim.run_until(lambda: fut.done() and bool(accepted))
    client, server = made[0], accepted[0]
    setup, cause = _BACKLOGS[backlog]
    setup(h, server)
    h.sim.run_for(0.001)
    written = 0
    while not client.stream.closing:  # ignores pause_writing: the cap is the backstop
        client.do("write", b"w" * 65536)
        written += 65536
        h.sim.run_for(0.001)
    h.sim.run_until(lambda: client.lost is not None)
    text = str(client.lost)
    assert isinstance(client.lost, NoConnection) and "stopped reading" not in text
    assert text.startswith("to host2:") and f"bytes wait to be sent, over the limit of {cap}" in text
    assert cause in text, text
    assert written > cap


class Blaster(ergo.Actor):
    """Sends 100 kB to ``to`` every 10 ms, each in a turn of its own."""

    def init(self, to: Any) -> None:
        self.to = to
        self.send(self.pid, "go")

    def handle_message(self, from_: Any, message: Any) -> None:
        self.send(self.to, b"x" * 100_000)
        self.send_after(self.pid, "go", 0.01)


@pytest.mark.parametrize("turns", ["one turn", "turn by turn"])
def test_a_node_sending_faster_than_a_slow_link_loses_the_link_saying_so(turns):
    # behind a link of 200 ms each way the peer reads everything, yet the log said the
    # peer stopped reading: when one turn's writes cross the transport's cap, and when the
    # network layer holds what it writes while the stream is paused, up to the same cap
    c = SimCluster()
    try:
        a, b = c.cluster(2)
        c.sim.set_latency("host1", "host2", 0.2)
        a.network().transport.limits = FlowLimits(high=64 * 1024, low=16 * 1024, max_buffer=1024 * 1024)
        sink = b.spawn(Collector)
        a.send(sink, "hello")  # connected first: this test is about what is held on a pause
        c.run_until(lambda: len(b.call(sink, "messages")) == 1)
        if turns == "one turn":
            for _ in range(40):
                a.send(sink, b"x" * 100_000)
        else:
            a.spawn(Blaster, sink)
        c.run_for(5)
        said = [text for text in a.captured.texts() if "bytes wait to be sent" in text]
        assert said and not any("stopped reading" in text for text in a.captured.texts())
        assert "over the limit of 1048576 (FlowLimits.max_buffer): the peer reads all that arrives, and the " \
               "link is slower than the writes: it carries at most the window (262144 bytes) per round trip " \
               "(0.4 s)" in said[0], said
        assert said[0].startswith("link to n2@host2 closed" if turns == "turn by turn"
                                  else "network: disconnected from n2@host2"), said
    finally:
        c.close()


_steps = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(1, 120_000)),
        st.tuples(st.just("pause"), st.none()),
        st.tuples(st.just("resume"), st.none()),
        st.tuples(st.just("latency"), st.floats(0, 0.02)),
        st.tuples(st.just("run"), st.floats(0, 0.01)),
    ),
    max_size=40,
)


@given(_steps)
def test_any_mix_of_writes_pauses_and_latency_changes_delivers_a_prefix_in_order(steps):
    h = SimHarness()
    h.set_limits(FlowLimits(high=128 * 1024, low=32 * 1024, max_buffer=64 * 1024 * 1024))
    h.client.window = 50_000  # smaller than many writes: chunks are split across acknowledgements
    accepted: list[Recorder] = []
    listener = h.server.listen("host2", 0, lambda: accepted.append(Recorder(h)) or accepted[-1])
    made: list[Recorder] = []
    h.client.connect("host2", listener.address[1], lambda: made.append(Recorder(h)) or made[-1])
    h.sim.run_until(lambda: bool(accepted))  # the dialer's ACK made the listener's side
    client, server = made[0], accepted[0]
    written = bytearray()
    for i, (op, arg) in enumerate(steps):
        if op == "write":
            chunk = bytes([i % 256]) * arg
            client.do("write", chunk)
            written += chunk
        elif op == "pause":
            server.do("pause_reading")
        elif op == "resume":
            server.do("resume_reading")
        elif op == "latency":
            h.sim.set_latency("host1", "host2", arg)
        else:
            h.sim.run_for(arg)
        assert written.startswith(server.data)  # in order, never more than was sent
        assert client.stream.buffered <= max(0, len(written) - len(server.data))
    server.do("resume_reading")
    client.do("close")
    h.sim.run()
    assert bytes(server.data) == bytes(written)
    assert server.lost is None and client.lost is None
    assert not client.writing_paused  # every pause was followed by a resume


def test_a_link_resuming_with_bytes_held_writes_them_within_flow_control():
    # bytes a link held while its stream was paused (up to max_buffer) were all written
    # on resume_writing, on top of what the stream still had waiting (up to low): past the
    # cap, so the transport aborted a link that had done nothing wrong
    c = SimCluster()
    try:
        a, b, sink, link, sent = c.paused_link(max_buffer=1024 * 1024)  # 900 kB held, under the cap
        limits = a.network().transport.limits
        assert link._held_bytes > limits.max_buffer - limits.low
        c.run_until(lambda: len(b._processes[sink.id].got) == 11, timeout=30)
        assert [m for _, m in b._processes[sink.id].got][1:] == sent
        assert a.network()._connections["n2@host2"].links.count(link) == 1
        assert not any("bytes wait to be sent" in text for text in a.captured.texts())
    finally:
        c.close()


def test_frames_queued_for_a_dial_go_out_within_flow_control_once_it_is_up():
    # what waited for the connection (up to 4 MiB) went out in one turn once the link was
    # up, past a max_buffer set below that, so the transport aborted the new connection
    c = SimCluster()
    try:
        a, b, sink = c.slow_pair(max_buffer=1024 * 1024)
        limits = a.network().transport.limits
        sent = [bytes([i]) * 100_000 for i in range(30)]  # 3 MB, under the dial queue's 4 MiB
        for chunk in sent:
            a.send(sink, chunk)
        assert a.network()._pending["n2@host2"].queued_bytes > 3 * limits.max_buffer - limits.low
        c.run_until(lambda: len(b._processes[sink.id].got) == len(sent), timeout=60)
        assert [m for _, m in b._processes[sink.id].got] == sent
        assert not any("bytes wait to be sent" in text for text in a.captured.texts())
        assert not any("disconnected" in text for text in a.captured.texts())  # the connection never went down
        a.send(sink, "after")  # what is sent once it is up follows, on the same connection
        c.run_until(lambda: len(b._processes[sink.id].got) == len(sent) + 1)
    finally:
        c.close()


def test_a_link_closed_gracefully_while_paused_still_sends_what_it_held_before_its_fin():
    # Link.close() left the link not lost: the bytes it held on a pause were written on
    # the next resume_writing into a stream already closed, which drops what it is given,
    # so a graceful disconnect (or node.stop()) lost the frames a slow peer had not taken yet
    c = SimCluster()
    try:
        a, b, sink, link, sent = c.paused_link(max_buffer=4 * 1024 * 1024)
        a.network().node("n2@host2").disconnect()
        c.run_until(lambda: not b.network().nodes(), timeout=60)  # b saw the FIN
        assert [m for _, m in b._processes[sink.id].got][1:] == sent
        assert link.lost and link._held_bytes == 0
        assert not any("closed:" in text for text in a.captured.texts())
    finally:
        c.close()

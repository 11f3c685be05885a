"""A hostile peer, or anyone who reaches a node's ports, attacks it; on both transports.

Past a real handshake with the right cookie (a raw stream, node ``rawN@rawhost``), a peer
is trusted with its own processes only: whatever frames it sends, it cannot have node b
act as if another node's process (or one of b's own) had sent them, answer calls it was
not asked, or pass its messages on to a third node; each attempt closes its link, logged.
Whatever limits it announces, what b owes it never raises into b's own code.  And the
work anyone can cause is bounded: streams that never finish a handshake (accepted or
dialed, plain or TLS), JOINs beyond the pool, undecodable values in the log, calls it
never gets answered (and refs it reuses), answers it never gives or gives undecodable,
the cost of its disconnect.  Nothing of a peer stays once it is gone.  Node a is served
throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import socket
import struct
import weakref
from typing import Any

import pytest
from network_support import COOKIE, TRANSPORTS, AsyncioCluster, Counter, SimCluster, tls_contexts
from support import Collector, ListLogger
from test_network_fuzz import Fixture, RawPeer
from transport_support import raw_closed

import sim
from ergo import (
    PID,
    Actor,
    Alias,
    Application,
    ApplicationMemberSpec,
    ApplicationSpec,
    Event,
    LogOptions,
    Malformed,
    MessageDownEvent,
    MessageDownPID,
    MessageEvent,
    MessageExitPID,
    NetworkFlags,
    NetworkOptions,
    NoConnection,
    NodeOptions,
    NoReply,
    NoRoute,
    ProcessID,
    ProcessOptions,
    ProcessUnknown,
    Ref,
    Timeout,
    TooLarge,
)
from ergo.gen.options import AcceptorOptions
from ergo.network import NetworkRoute
from ergo.network import network as network_module
from ergo.network.network import MAX_HANDSHAKES, REFUSALS_LOGGED
from ergo.transport import FlowLimits
from ergo.wire import edf, enp, handshake
from ergo.wire.edf import RemoteError
from net.transport import MAX_TLS_HANDSHAKES


class Trapper(Actor):
    """Traps exits and keeps every message with its sender."""

    def init(self, journal: list[Any]) -> None:
        self.journal = journal
        self.trap_exit = True

    def handle_message(self, from_: Any, message: Any) -> None:
        self.journal.append((self.pid, from_, message))


class Holder(Actor):
    """Holds every call; the message "answer" answers them all."""

    def init(self) -> None:
        self.held: list[tuple[Any, Any]] = []

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        self.held.append((from_, ref))
        return NoReply

    def handle_message(self, from_: Any, message: Any) -> None:
        for f, r in self.held:
            self.send_response(f, r, "the real answer")
        self.held = []



def _frames(f: Any, codec: Any, peer: Any, n: int, kind: type | None = None) -> list[Any]:
    """The next ``n`` frames b sends the raw ``peer`` (decoded by ``codec``), of ``kind``
    only if given, heartbeats left out."""
    frames: list[Any] = []

    def enough() -> bool:
        frames.extend(x for x in codec.feed(bytes(peer.received))
                      if type(x) is not enp.Heartbeat and (kind is None or type(x) is kind))
        peer.received.clear()
        return len(frames) >= n

    f.cluster.run_until(enough)
    return frames


def test_a_peer_cannot_send_for_another_nodes_process_nor_through_this_node(cluster):
    """Frames from the peer naming a sender of b (a message, an exit signal "from" a
    process of b), of a third node a, or a recipient on a (which b would pass on to a as
    its own) each close that peer's link, logged; no process of a or b hears of them."""
    f = Fixture(cluster)
    a, b = f.a, f.b
    journal: list[Any] = []
    on_a = a.spawn(Trapper, journal)
    on_b = b.spawn(Trapper, journal)
    b_other = b.spawn(Counter)
    forged = [  # each a function of the impostor's own PID
        lambda me: enp.SendPID(b_other, on_b, "from one of b's own processes", 0, False, None),
        lambda me: enp.SendExit(b_other, on_b, ValueError("an exit 'from' one of b's own processes")),
        lambda me: enp.SendPID(on_a, on_b, "from a process of node a", 0, False, None),
        lambda me: enp.SendPID(me, on_a, "passed on by b to node a", 0, False, None),
        lambda me: enp.SendExit(me, on_a, ValueError("passed on by b to node a")),
    ]
    for i, frame in enumerate(forged, start=1):
        before = f.logged("closed", "speaks only")
        impostor = f.handshake()
        assert impostor.stream is not None
        impostor.stream.write(enp.encode(frame(PID(f"raw{i}@rawhost", 5, 1))))
        f.closed_and_logged(impostor, "closed", "speaks only", before=before)
    b.send(on_b, "real")
    f.cluster.run_until(lambda: journal)
    assert journal == [(on_b, b._core_pid, "real")]


def test_only_the_node_a_call_went_to_answers_it(cluster):
    """A peer that answers a call it was not asked (with its own sender and the right
    ref, which is only a counter) is ignored: b's local call and b's call to node a wait
    for their real answers, which still come."""
    f = Fixture(cluster)
    a, b = f.a, f.b
    on_b = b.spawn(Holder)
    on_a = a.spawn(Holder)
    local = b._start_call(on_b, "q", 30)
    remote = b._start_call(on_a, "q", 30)
    f.cluster.run_until(lambda: len(b._core_pending) == 2 and a._processes[on_a.id].held)
    impostor = f.handshake()
    assert impostor.stream is not None
    me = PID("raw1@rawhost", 5, 1)
    for ref in list(b._core_pending):
        impostor.stream.write(enp.encode(enp.Response(me, b._core_pid, ref, "forged", 0, False)))
        impostor.stream.write(enp.encode(enp.ResponseError(me, b._core_pid, ref, ValueError("forged"), 0, False)))
    f.round_trip()
    f.cluster.run_until(lambda: b.network()._connections["raw1@rawhost"].frames_in >= 4)
    assert not local.done() and not remote.done()
    b.send(on_b, "answer")
    a.send(on_a, "answer")
    f.cluster.run_until(lambda: local.done() and remote.done())
    assert local.result() == remote.result() == "the real answer"
    assert not impostor.lost  # a reply to nothing (a late one, say) is no protocol error


def _handshake(f: Fixture, name: str, join: str | None = None) -> tuple[Any, handshake.Accepted]:
    """A raw stream past a real handshake as node ``name`` (a JOIN of ``join`` if given)."""
    return f.dial_as(handshake.NodeInfo(name=name, creation=1), join)


def _connected_raw_peer(f: Fixture, name: str = "raw1@rawhost") -> tuple[Any, Any]:
    """A raw stream past a real handshake as node ``name``, and b's connection to it once up."""
    peer, _ = _handshake(f, name)
    assert peer.stream is not None
    f.cluster.run_until(lambda: name in f.b.network()._connections)
    return peer, f.b.network()._connections[name]


def test_a_peer_cannot_join_more_links_than_its_pool(cluster):
    """The dialer of a connection opens ``pool_size - 1`` more links with JOIN; a peer that
    sends more JOINs has each extra link closed (logged), so b keeps at most the pool."""
    f = Fixture(cluster)
    first, accepted = _handshake(f, "joiner@rawhost")
    pool = accepted.pool_size
    links = [first] + [_handshake(f, "joiner@rawhost", join=accepted.connection_id)[0] for _ in range(pool + 4)]
    f.cluster.run_until(lambda: sum(p.lost for p in links) == 5)
    assert [p.lost for p in links] == [False] * pool + [True] * 5
    assert len(f.b.network()._connections["joiner@rawhost"].links) == pool
    assert f.logged("refused a link from joiner@rawhost") == 5
    f.round_trip()


def test_streams_that_never_finish_a_handshake_are_bounded(cluster):
    """Anyone who reaches the port can open streams and send nothing: b keeps at most
    MAX_HANDSHAKES of them, each new one beyond dropping the oldest (closed, logged),
    and a real node that dials b meanwhile still connects."""
    f = Fixture(cluster, b_timeout=60.0)
    silent = [f.connect() for _ in range(MAX_HANDSHAKES + 10)]
    f.cluster.run_until(lambda: sum(p.lost for p in silent) == 10)
    assert [p.lost for p in silent] == [True] * 10 + [False] * MAX_HANDSHAKES
    assert len(f.b.network()._accepted_handshakes) == MAX_HANDSHAKES
    assert f.logged("refused a connection", "handshakes in progress: the oldest is dropped") == 10
    c = f.cluster.start(3)
    f.cluster.route(c, f.b)
    assert c.call(ProcessID("counter", f.b.name), "incr") == 2
    assert sum(p.lost for p in silent) == 11


class Watcher(Actor):
    """Monitors what it is called with; keeps every message."""

    def init(self, journal: list[Any]) -> None:
        self.journal = journal

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        self.monitor(request)
        return "watching"

    def handle_message(self, from_: Any, message: Any) -> None:
        self.journal.append(message)


def _tiny_peer(f: Fixture, name: str, limit: int) -> Any:
    """A raw stream past a handshake as ``name``, which takes frames of ``limit`` bytes at most."""
    peer, _ = f.dial_as(handshake.NodeInfo(name=name, creation=1, max_message_size=limit))
    f.cluster.run_until(lambda: name in f.b.network()._connections)
    return peer


def test_a_reason_too_large_for_the_watching_peer_is_sent_cut_short(cluster):
    """A process of b ends with a reason larger than a accepts: a's watcher is told of the
    end with the reason cut short (a RemoteError naming its class), and b's own watcher,
    told after a in the same end, with the whole reason (the TooLarge once stopped the end
    there, a panic, and b's watcher never heard)."""
    f = Fixture(cluster)
    a, b = f.a, f.b
    on_a: list[Any] = []
    on_b: list[Any] = []
    target = b.spawn(Counter)
    assert a.call(a.spawn(Watcher, on_a), target) == "watching"
    f.cluster.run_until(lambda: target in b._pubsub._monitors)
    assert b.call(b.spawn(Watcher, on_b), target) == "watching"
    huge = ValueError("x" * (1024 * 1024 + 1))
    b.send_exit(target, huge)
    f.cluster.run_until(lambda: on_a and on_b)
    assert isinstance(on_b[0], MessageDownPID) and on_b[0].reason is huge
    assert isinstance(on_a[0], MessageDownPID) and isinstance(on_a[0].reason, RemoteError)
    assert on_a[0].reason.type_name == "ValueError" and "cut short" in on_a[0].reason.text
    assert f.logged("cut short") == 1
    f.round_trip()


def test_a_peer_whose_limit_cannot_carry_a_notice_loses_its_connection(cluster):
    """Peers that announce a max message size too small for a Terminate (120 bytes) or a
    call's answer (30 bytes): one watches a process of b, which ends; another calls a
    process of b, which answers.  b carries on (the end tells b's own watcher, the
    answering process does not panic) and each such peer's connection goes down, logged;
    a is served throughout."""
    f = Fixture(cluster)
    b = f.b
    watching = _tiny_peer(f, "tiny1@rawhost", 120)
    assert watching.stream is not None
    target = b.spawn(Counter)
    watching.stream.write(enp.encode(enp.Monitor(PID("tiny1@rawhost", 5, 1), target,
                                                 Ref("tiny1@rawhost", 1, (1, 0, 0)))))
    f.cluster.run_until(lambda: target in b._pubsub._monitors)
    journal: list[Any] = []
    assert b.call(b.spawn(Watcher, journal), target) == "watching"
    b.send_exit(target, ValueError("bye" * 100))
    f.cluster.run_until(lambda: watching.lost and journal)
    assert isinstance(journal[0], MessageDownPID) and str(journal[0].reason) == "bye" * 100
    calling = _tiny_peer(f, "tiny2@rawhost", 30)
    assert calling.stream is not None
    answering = b.spawn(Counter)
    calling.stream.write(enp.encode(enp.RequestPID(PID("tiny2@rawhost", 5, 1), answering,
                                                   Ref("tiny2@rawhost", 1, (2, 0, 0)), "incr")))
    f.cluster.run_until(lambda: calling.lost)
    assert b._processes[answering.id].n == 1  # it answered, and did not panic for it
    assert f.logged("network: the connection to tiny", "cannot carry what it must") == 2
    f.round_trip()


class Producer(Actor):
    """Produces the event ``name`` ("news") keeping its last ``buffer`` (100) messages; each
    message it gets, it sends."""

    def init(self, name: str = "news", buffer: int = 100) -> None:
        self.event = name
        self.token = self.register_event(name, buffer=buffer)

    def handle_message(self, from_: Any, message: Any) -> None:
        self.send_event(self.event, self.token, message)


class Subscriber(Actor):
    """Monitors the event it is called with; keeps the events' messages."""

    def init(self, got: list[Any]) -> None:
        self.got = got

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return [m.message for m in self.monitor_event(request)]

    def handle_event(self, message: Any) -> None:
        self.got.append(message.message)


def test_an_event_buffer_larger_than_the_subscribers_limit_arrives_cut_to_its_newest(cluster):
    """The answer to a remote subscription carries the event's buffer; a buffer larger
    than the subscriber node's max message size (100 messages of 2 KB, 64 KiB) was never
    sent (the subscription was in place, its node waited for ever and its later
    subscribers got nothing).  Now the newest messages that fit arrive, in order."""
    a = cluster.start(1, max_message_size=64 * 1024)
    b = cluster.start(2)
    cluster.route_all()
    producer = b.spawn(Producer)
    messages = [f"{i:04d}" + "x" * 2000 for i in range(100)]
    for m in messages:
        b.send(producer, m)
    news = Event("news", b.name)
    got: list[Any] = []
    assert a.call(a.spawn(Subscriber, got), news) == []
    cluster.run_until(lambda: got)
    assert got == messages[-len(got):] and 0 < len(got) < 100
    assert not a.network()._connections[str.__str__(b.name)].waiting
    assert a.call(a.spawn(Subscriber, []), news) == got
    assert sum(1 for t in b.captured.texts() if "was cut to its last" in t) == 1


def test_monitors_of_an_event_repeated_by_a_peer_are_logged_cut_at_most_once_a_second():
    """A peer with a small max message size monitors an event of b whose buffer does not
    fit, 200 times over (the same Monitor, 50 bytes each): b answers each with the newest
    messages that fit, but logs one "cut" line a second for that peer, the next saying
    how many it stands for, not a line per Monitor the peer sends."""
    cluster = SimCluster()
    try:
        f = Fixture(cluster)
        b = f.b
        producer = b.spawn(Producer)
        for i in range(100):
            b.send(producer, f"{i:04d}" + "x" * 200)
        name = "tiny1@rawhost"
        peer = _tiny_peer(f, name, 2048)
        assert peer.stream is not None
        me, news = PID(name, 5, 1), Event("news", b.name)
        for i in range(1, 201):
            peer.stream.write(enp.encode(enp.Monitor(me, news, Ref(name, 1, (i, 0, 0)))))
        reader = enp.LinkCodec(name, 1, str.__str__(b.name), b.creation)
        answers = _frames(f, reader, peer, 200, enp.Result)
        assert [a.ref.id[0] for a in answers] == list(range(1, 201))
        assert all(a.error is None and 0 < len(a.result[1]) < 100 for a in answers)
        assert f.logged("was cut to its last") == 1
        cluster.run_for(1.5)
        peer.stream.write(enp.encode(enp.Monitor(me, news, Ref(name, 1, (201, 0, 0)))))
        cluster.run_until(lambda: f.logged("was cut to its last") == 2)
        assert f.logged("was cut to its last", "(199 more cut since the last line)") == 1
        assert not peer.lost
        f.round_trip()
    finally:
        cluster.close()


def test_events_a_peer_sends_to_a_full_mailbox_are_logged_at_most_once_a_second():
    """A process of b with a mailbox of 1 monitors an event of a peer, which then sends
    500 messages of it (40 bytes each): the full mailbox loses 499, logged in one line a
    second for that event and process, the next (two messages later, the mailbox full
    again) saying how many it stands for, not a line per event the peer sent."""
    cluster = SimCluster()
    try:
        f = Fixture(cluster)
        b = f.b
        name = "raw1@rawhost"
        peer, _ = _connected_raw_peer(f, name)
        assert peer.stream is not None
        got: list[Any] = []
        subscriber = b.spawn(Subscriber, got, options=ProcessOptions(mailbox_size=1))
        news = Event("news", name)
        subscribed = b._start_call(subscriber, news, 5)
        reader = enp.LinkCodec(name, 1, str.__str__(b.name), b.creation)
        (monitor,) = _frames(f, reader, peer, 1, enp.Monitor)
        peer.stream.write(enp.encode(enp.Result(monitor.from_, monitor.ref, None, [0, []])))
        cluster.run_until(subscribed.done)
        me = PID(name, 5, 1)
        peer.stream.write(b"".join(enp.encode(enp.SendEvent(me, news, 1, i, 0)) for i in range(500)))
        cluster.run_until(lambda: f.logged("not delivered to") == 1)
        cluster.run_for(1.5)
        assert got == [0] and f.logged("not delivered to") == 1
        peer.stream.write(b"".join(enp.encode(enp.SendEvent(me, news, 1, i, 0)) for i in (500, 501)))
        cluster.run_until(lambda: f.logged("not delivered to") == 2)
        assert f.logged(f"not delivered to {subscriber}", "(498 more not delivered to it since the last") == 1
        f.round_trip()
    finally:
        cluster.close()


@pytest.mark.parametrize("kind", TRANSPORTS[1:])
def test_sockets_that_never_start_tls_are_bounded(kind):
    """A TLS acceptor on asyncio and on uvloop: sockets that never send a ClientHello are
    kept at most MAX_TLS_HANDSHAKES at once (asyncio alone held each for 60 s with a 256
    KiB buffer; uvloop's own TLS server held any number for 10 s), each one more aborting
    the oldest, and a real node still connects over TLS."""
    server, client = tls_contexts()
    cluster = AsyncioCluster(uvloop=kind == "uvloop")
    socks: list[socket.socket] = []
    try:
        b = cluster.start(2, acceptors=(AcceptorOptions(port=0, ssl=server),))
        b.spawn_register("counter", Counter)
        host, port = b.network()._listeners[0].address
        for _ in range(MAX_TLS_HANDSHAKES + 5):
            sock = socket.create_connection((host, port))
            sock.setblocking(False)
            socks.append(sock)
            cluster.run_for(0)
        cluster.run_until(lambda: sum(map(raw_closed, socks[:5])) == 5)
        assert not any(map(raw_closed, socks[5:]))
        c = cluster.start(3, ssl=client)
        c.network().add_route(f"^{str.__str__(b.name)}$", NetworkRoute(host, port, tls=True))
        assert c.call(ProcessID("counter", b.name), "incr") == 1
        conn = c.network()._connections[str.__str__(b.name)]
        cluster.run_until(lambda: len(conn.links) == conn.pool_size)
    finally:
        for sock in socks:
            sock.close()
        cluster.close()


@dataclasses.dataclass
class Private:
    """A record only the sender registered: the receiver cannot decode it."""

    x: int


def test_undecodable_values_are_logged_at_most_once_a_second_per_peer():
    """A batch can hold an undecodable value every ~20 bytes; b drops each (the peer's
    calls and important sends are still answered) but logs one line a second per peer,
    saying how many it dropped meanwhile, not one line per value."""
    cluster = SimCluster()
    try:
        f = Fixture(cluster)
        b = f.b
        impostor = f.handshake()
        assert impostor.stream is not None
        target = b.spawn(Counter)
        registry = edf.Registry()
        registry.register_type(Private, "private")
        codec = enp.LinkCodec("raw1@rawhost", 1, str.__str__(b.name), b._creation, registry=registry,
                              peer_max_message_size=4096)
        for i in range(200):
            codec.send_pid(PID("raw1@rawhost", 5, 1), target, Private(i))
        impostor.stream.write(bytes(codec.flush()))
        cluster.run_for(0.5)
        assert f.logged("could not be decoded") == 1
        cluster.run_for(1.0)
        codec.send_pid(PID("raw1@rawhost", 5, 1), target, Private(200))
        impostor.stream.write(bytes(codec.flush()))
        cluster.run_until(lambda: f.logged("could not be decoded") == 2)
        assert f.logged("could not be decoded", "(199 more dropped since the last line)") == 1
        f.round_trip()
    finally:
        cluster.close()


class Silent(RawPeer):
    """An acceptor that takes the stream and never says a word (or, as ``first_of``'s first
    stream, completes a real handshake as node ``first_of`` and then says nothing)."""

    def __init__(self, opened: list[Any], first_of: str | None = None) -> None:
        super().__init__()
        opened.append(self)
        self.hs = handshake.Acceptor(handshake.NodeInfo(name=first_of, creation=1), COOKIE) if first_of else None

    def connection_made(self, stream: Any) -> None:
        super().connection_made(stream)
        if self.hs is not None:
            stream.write(self.hs.data_to_send())

    def data_received(self, data: memoryview) -> None:
        if self.hs is not None and not self.hs.done and self.stream is not None:
            self.hs.receive_data(bytes(data))
            self.stream.write(self.hs.data_to_send())


def _silent_acceptor(f: Fixture, name: str, opened: list[Any], first_of: str | None) -> tuple[str, Any]:
    """A listener of Silent streams, routed from node a as ``name``@ its host: the full
    name, and the listener (for the test to close: it is no node's)."""
    host, _ = f.b.network()._listeners[0].address
    sim_port = 12000 + len(f.a.network().routes())
    made = [0]

    def factory() -> Silent:
        made[0] += 1
        return Silent(opened, first_of if made[0] == 1 else None)

    listener = f.b.network().transport.listen(host, 0 if f.cluster.name == "asyncio" else sim_port, factory)
    lhost, lport = listener.address
    full = f"{name}@{lhost}" if f.cluster.name == "asyncio" else f"{name}@host2"
    f.a.network().add_route(f"^{full}$", NetworkRoute(lhost, lport))
    return full, listener


def test_a_dialed_stream_that_never_finishes_its_handshake_is_closed(cluster):
    """Node a dials a port that accepts and says nothing (a wrong route, a hostile
    registrar entry): the dial fails with Timeout after connect_timeout, as before, and
    now its stream is closed too (it was kept for ever, one more socket per dial)."""
    f = Fixture(cluster, a_timeout=0.5)
    opened: list[Any] = []
    name, listener = _silent_acceptor(f, "silent", opened, None)
    for _ in range(3):
        with pytest.raises(Timeout):
            f.a.call(ProcessID("x", name), "hello", timeout=30)
    f.cluster.run_until(lambda: len(opened) == 3 and all(s.lost for s in opened))
    assert not f.a.network()._handshaking
    f.round_trip()
    listener.close()


def test_a_dial_that_times_out_closes_its_stream_still_in_its_handshake_at_once():
    """The first link of a dial to a port that accepts and says nothing: when the dial
    times out, its stream goes with it, not a round trip later when its own handshake
    timer ends (0.4 s here: the connect took a round trip of 0.2 s each way)."""
    cluster = SimCluster()
    try:
        f = Fixture(cluster, a_timeout=1.0)
        opened: list[Any] = []
        name, listener = _silent_acceptor(f, "silent", opened, None)
        cluster.sim.set_latency("host1", "host2", 0.2)
        with pytest.raises(Timeout):
            f.a.call(ProcessID("x", name), "hello", timeout=30)
        assert len(opened) == 1 and f.a.network()._handshaking
        cluster.run_until(lambda: not f.a.network()._handshaking, timeout=0.1)
        cluster.run_until(lambda: opened[0].lost, timeout=0.3)  # the reset crosses the link
        listener.close()
    finally:
        cluster.close()


def _mute_pool(f: Fixture, cluster: Any) -> tuple[str, Any, Any, list[Any]]:
    """a connected to a peer that completes the first link's handshake and never answers
    the pool's JOINs: (its name, its listener, a's connection, every link it accepted)."""
    opened: list[Any] = []
    name, listener = _silent_acceptor(f, "mute", opened,
                                      "mute@" + ("127.0.0.1" if cluster.name == "asyncio" else "host2"))
    f.a.wait_for(f.a.network().connect(name))
    conn = f.a.network()._connections[name]
    f.cluster.run_until(lambda: len(opened) == conn.pool_size)
    return name, listener, conn, opened


def test_join_links_that_never_finish_their_handshake_are_closed(cluster):
    """A peer completes the first link's handshake and never answers the pool's JOINs:
    a closes those links after connect_timeout (they waited for ever, and outlived the
    connection: more sockets at every reconnection)."""
    f = Fixture(cluster, a_timeout=0.5)
    name, listener, conn, opened = _mute_pool(f, cluster)
    f.cluster.run_until(lambda: all(s.lost for s in opened[1:]))
    assert len(conn.links) == 1 and not f.a.network()._handshaking
    f.round_trip()
    listener.close()


def _spy_connects(node: Any, monkeypatch: Any) -> list[tuple[Any, list[Any]]]:
    """Every connect ``node``'s network makes from now on: (its future, the protocols its
    factory made: none unless the connect completed while someone wanted it)."""
    transport = node.network().transport
    real = transport.connect
    dials: list[tuple[Any, list[Any]]] = []

    def connect(host: str, port: int, factory: Any, **kwargs: Any) -> Any:
        made: list[Any] = []

        def counted() -> Any:
            made.append(factory())
            return made[-1]

        future = real(host, port, counted, **kwargs)
        dials.append((future, made))
        return future

    monkeypatch.setattr(transport, "connect", connect)
    return dials


def test_a_connection_going_down_gives_up_its_pools_pending_dials(monkeypatch):
    """The pool's JOINs are dialed once the first link is up.  Node a's connection goes
    down while their connects are still pending (held on the link): each is given up at
    once, and once the link is released none of them becomes a link (they were left to
    the OS's SYN timeout, and on simulated hosts sent their SYN again for ever while the
    peer's host was down: a socket per JOIN outliving every connection)."""
    cluster = SimCluster()
    try:
        a, b = cluster.cluster(2)
        dials = _spy_connects(a, monkeypatch)
        a.network().connect(b.name)
        pool = a.network().options.pool_size
        cluster.run_until(lambda: len(dials) == pool)  # the first link is up, its JOINs dialed
        cluster.sim.hold("host1", "host2")
        a.network().node(b.name).disconnect()
        joins = dials[1:]
        assert all(isinstance(future.exception(), NoConnection) for future, _ in joins)
        assert "(RemoteNode.disconnect)" in str(joins[0][0].exception())
        cluster.sim.release()
        cluster.run_for(1.0)
        assert [made for _, made in joins] == [[]] * (pool - 1)
        assert not a.network()._handshaking and not a.network().transport.streams
        b.spawn_register("counter", Counter)
        assert a.call(ProcessID("counter", b.name), "incr") == 1  # the next send dials a new connection
    finally:
        cluster.close()


def _syn_sent_to(port: int) -> int:
    """How many of this machine's TCP sockets are still sending their SYN to 127.0.0.1:``port``."""
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[2] == f"0100007F:{port:04X}" and row[3] == "02")


class _MuteAcceptor(asyncio.Protocol):
    """Completes a handshake as node ``name``, then says nothing."""

    def __init__(self, name: str) -> None:
        self.hs = handshake.Acceptor(handshake.NodeInfo(name=name, creation=1), COOKIE)

    def connection_made(self, transport: Any) -> None:
        self.t = transport
        transport.write(self.hs.data_to_send())

    def data_received(self, data: bytes) -> None:
        self.hs.receive_data(data)
        self.t.write(self.hs.data_to_send())


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="counts SYN_SENT sockets in Linux's /proc/net/tcp")
@pytest.mark.parametrize("kind", TRANSPORTS[1:])
def test_a_connection_going_down_stops_its_pools_dials_on_real_sockets(kind, monkeypatch):
    """A peer whose accept queue is full once it took the first link (a listen backlog of
    0, and one more client in the queue): the kernel drops the JOINs' SYNs, so their
    connects stay pending.  When a's connection goes down they are given up and their
    sockets closed at once (they kept sending their SYN for the OS's two minutes)."""
    cluster = AsyncioCluster(uvloop=kind == "uvloop")
    listening = socket.socket()
    filler: socket.socket | None = None
    accepted: list[socket.socket] = []
    try:
        listening.bind(("127.0.0.1", 0))
        listening.listen(0)
        listening.setblocking(False)
        port = listening.getsockname()[1]
        a = cluster.start(1, connect_timeout=60.0)
        name = "mute@127.0.0.1"
        a.network().add_route(f"^{name}$", NetworkRoute("127.0.0.1", port))
        dials = _spy_connects(a, monkeypatch)
        connected = a.network().connect(name)

        def first() -> bool:
            with contextlib.suppress(BlockingIOError):
                accepted.append(listening.accept()[0])
            return bool(accepted)

        cluster.run_until(first)
        filler = socket.create_connection(("127.0.0.1", port))  # the queue is full from now on
        cluster.loop.run_until_complete(cluster.loop.connect_accepted_socket(lambda: _MuteAcceptor(name),
                                                                             accepted[0]))
        a.wait_for(connected)
        pool = a.network().options.pool_size
        cluster.run_until(lambda: _syn_sent_to(port) == pool - 1)
        joins = dials[1:]
        assert len(joins) == pool - 1 and not any(future.done() for future, _ in joins)
        a.network().node(name).disconnect()
        assert all(isinstance(future.exception(), NoConnection) for future, _ in joins)
        cluster.run_until(lambda: _syn_sent_to(port) == 0)
        assert [made for _, made in joins] == [[]] * (pool - 1)
    finally:
        for sock in (listening, filler, *accepted):
            if sock is not None:
                sock.close()
        cluster.close()


def test_a_connection_going_down_aborts_its_pool_links_still_in_their_handshake(cluster):
    """A peer completes the first link's handshake and never answers the pool's JOINs;
    node a's connection goes down meanwhile: its JOIN links, still in their handshake,
    are closed at once, not after connect_timeout (60 s here: they outlived the
    connection by that much, one socket each, at every reconnection)."""
    f = Fixture(cluster, a_timeout=60.0)
    name, listener, conn, opened = _mute_pool(f, cluster)
    f.a.network().node(name).disconnect()
    f.cluster.run_until(lambda: all(s.lost for s in opened))  # 10 s at most: far below the 60
    assert not f.a.network()._handshaking
    f.round_trip()
    listener.close()


def test_refused_connections_are_logged_at_most_a_hundred_a_second():
    """Anyone who reaches the port makes one refusal per connection (garbage here): the
    first REFUSALS_LOGGED of a second are logged one by one, the rest in one line once
    the second is over, so a flood of connections cannot fill the log at its own rate."""
    cluster = SimCluster()
    try:
        f = Fixture(cluster)
        peers = [f.connect() for _ in range(REFUSALS_LOGGED + 50)]
        for peer in peers:
            assert peer.stream is not None
            peer.stream.write(b"\xff" * 10)
        cluster.run_until(lambda: all(p.lost for p in peers))
        assert f.logged("refused a connection from") == REFUSALS_LOGGED
        cluster.run_until(lambda: f.logged("50 more connections were refused") == 1)
        f.round_trip()
        late = f.connect()
        assert late.stream is not None
        late.stream.write(b"\xff" * 10)
        cluster.run_until(lambda: f.logged("refused a connection from") == REFUSALS_LOGGED + 1)
    finally:
        cluster.close()


def test_a_spawn_answered_with_a_pid_of_another_node_fails_malformed(cluster):
    """The PID a peer answers a remote spawn with must be one of its own processes (its
    node and its run): a PID of another node (a, or b itself) would have b's caller talk to
    a process the peer does not hold.  Such an answer fails the spawn with Malformed; a
    PID of the peer's own is the spawned process."""
    f = Fixture(cluster)
    b = f.b
    impostor = f.handshake()
    assert impostor.stream is not None
    peer = "raw1@rawhost"
    f.cluster.run_until(lambda: peer in b.network()._connections)
    other_nodes = [PID(f.a.name, 7, f.a.creation), PID(b.name, 7, b.creation), PID(peer, 7, 2)]
    answers = [*other_nodes, PID(peer, 7, 1)]  # the last: the peer's own (creation 1, its handshake's)
    reader = enp.LinkCodec(peer, 1, str.__str__(b.name), b.creation)
    futures = []
    for answer in answers:
        futures.append(b.network().node(peer).spawn("worker"))
        f.cluster.run_until(lambda: impostor.received)
        (spawn,) = reader.feed(bytes(impostor.received))
        impostor.received.clear()
        assert isinstance(spawn, enp.Spawn)
        impostor.stream.write(enp.encode(enp.Result(spawn.from_, spawn.ref, None, answer)))
        f.cluster.run_until(lambda: futures[-1].done())
    for fut, answer in zip(futures[:-1], other_nodes):
        with pytest.raises(Malformed, match="not one of its own") as refused:
            fut.result()
        assert str(answer) in str(refused.value)
    assert futures[-1].result() == answers[-1]
    assert not impostor.lost
    f.round_trip()


def test_calls_a_peer_makes_that_are_never_answered_are_bounded(cluster, monkeypatch):
    """A caller on another node that times out tells nobody, so the calls a process defers
    and never answers were kept (an entry each in b's network and in the process) for as
    long as the connection lived.  At most MAX_OWED_CALLS per peer are: one more forgets
    the oldest, logged once; the newest are still owed and answered."""
    monkeypatch.setattr(network_module, "MAX_OWED_CALLS", 8)
    f = Fixture(cluster)
    a, b = f.a, f.b
    holder = b.spawn_register("holder", Holder)
    for _ in range(20):
        with pytest.raises(Timeout):
            a.call(ProcessID("holder", b.name), "never answered", timeout=0.05)
    f.cluster.run_until(lambda: len(b._processes[holder.id].held) == 20)
    assert len(b.network().remote_calls) == 8
    assert len(b._processes[holder.id]._calls_in) == 8
    assert f.logged("more than 8 calls unanswered here") == 1
    assert b.network().node(a.name).info()["calls_forgotten"] == 12
    late = a._start_call(ProcessID("holder", b.name), "answered", 30)
    f.cluster.run_until(lambda: len(b._processes[holder.id].held) == 21)
    b.send(holder, "answer")
    f.cluster.run_until(lambda: late.done())
    assert late.result() == "the real answer"
    assert len(b.network().remote_calls) == 0 and not b._processes[holder.id]._calls_in


def test_a_cancelled_remote_call_is_over_for_its_caller_and_owed_by_its_target_until_answered(cluster):
    """A call to another node that its caller cancels (as one that times out) is over on
    the caller's node: nothing of it stays there, and a reply that comes later is dropped.
    Its target's node is not told (no frame says so, as in Ergo; Erlang's callee is not
    told either), and need not be: the call stays owed there until its handler answers,
    its target ends, the connection goes or MAX_OWED_CALLS forgets it (above)."""
    f = Fixture(cluster)
    a, b = f.a, f.b
    holder = b.spawn_register("holder", Holder)
    fut = a._start_call(ProcessID("holder", b.name), "given up", 30)
    f.cluster.run_until(lambda: len(b._processes[holder.id].held) == 1)
    peer = a.network().node(b.name)
    assert peer.info()["calls_in_flight"] == 1
    assert fut.cancel()
    assert peer.info()["calls_in_flight"] == 0 and not a._core_pending
    assert b.network().node(a.name).info()["calls_owed"] == 1
    b.send(holder, "answer")  # answered after all: the reply crosses, and a drops it
    f.cluster.run_until(lambda: b.network().node(a.name).info()["calls_owed"] == 0)
    assert not b._processes[holder.id]._calls_in and fut.cancelled()
    f.round_trip()


def test_an_answer_this_node_cannot_decode_fails_what_waited_for_it(cluster):
    """The answer to a subscription (a Result whose event buffer holds a value b cannot
    decode) and to an important send (an Ack whose error is not EDF) were dropped and logged,
    and what waited for them (the watchers, the sender's future, an entry in the
    connection's table) waited for as long as the connection lived.  Each now fails with
    Malformed, saying the answer could not be decoded."""
    f = Fixture(cluster)
    b = f.b
    impostor, _ = _handshake(f, "raw1@rawhost")
    assert impostor.stream is not None
    f.cluster.run_until(lambda: "raw1@rawhost" in b.network()._connections)
    registry = edf.Registry()
    registry.register_type(Private, "private")
    codec = enp.LinkCodec("raw1@rawhost", 1, str.__str__(b.name), b._creation, registry=registry,
                          peer_max_message_size=4096)
    journal: list[Any] = []
    watcher = b.spawn(Trapper, journal)
    event = Event("ev", "raw1@rawhost")
    remote = PID("raw1@rawhost", 5, 1)

    class Sender(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            try:
                await self.send_important(remote, "hello")
            except Exception as e:
                journal.append(("important", e))

    b.send(b.spawn(Sender), "go")
    b._processes[watcher.id].monitor(event)
    conn = b.network()._connections["raw1@rawhost"]
    f.cluster.run_until(lambda: len(conn.waiting) == 2)
    frames: list[Any] = []
    f.cluster.run_until(lambda: len(frames) == 2 or frames.extend(codec.feed(bytes(impostor.received)))
                        or impostor.received.clear())
    monitor = next(x for x in frames if type(x) is enp.Monitor)
    important = next(x for x in frames if type(x) is enp.SendPID)
    codec.send(enp.Result(b._core_pid, monitor.ref, None, [4, [MessageEvent(event, 1, Private(1))]]))
    impostor.stream.write(bytes(codec.flush()))
    # an error always decodes (an unknown class as a RemoteError): the Ack's is bytes that are not EDF
    fields = struct.pack(">QQBQQQ", remote.id, important.from_.id, 0, *important.ref.id) + b"\xc1"
    impostor.stream.write(struct.pack(">BBIBB", enp.MAGIC, enp.VERSION, 8 + len(fields), 0, enp.TYPE_LINK_ACK)
                          + fields)
    f.cluster.run_until(lambda: len(journal) == 2)
    assert not conn.waiting and conn.state == "up"  # answered, not lost with the connection
    down = next(m for _, _, m in (j for j in journal if len(j) == 3))
    assert isinstance(down, MessageDownEvent) and isinstance(down.reason, Malformed), down
    _, failed = next(j for j in journal if len(j) == 2)
    assert isinstance(failed, Malformed) and "could not be decoded" in str(failed)
    f.round_trip()


def test_a_peer_that_never_answers_leaves_nothing_waiting_past_the_important_timeout():
    """A peer that keeps its connection up (heartbeats) and never answers: an important
    send to it failed never (its future pending, an entry in the connection's table for
    the connection's life), and each unsubscription left an entry too.  The important send
    fails with Timeout after IMPORTANT_TIMEOUT, as Ergo's does after its request timeout,
    and an unsubscription waits for nothing."""
    cluster = SimCluster()
    try:
        f = Fixture(cluster)
        b = f.b
        silent, conn = _connected_raw_peer(f)
        remote = PID("raw1@rawhost", 5, 1)
        journal: list[Any] = []

        class Sender(Actor):
            async def handle_message(self, from_: Any, message: Any) -> None:
                try:
                    await self.send_important(remote, "hello")
                except Exception as e:
                    journal.append(e)

        b.send(b.spawn(Sender), "go")
        watcher = b._processes[b.spawn(Trapper, []).id]
        for _ in range(10):
            watcher.monitor(remote)
            watcher.demonitor(remote)
        started = cluster.now
        for _ in range(40):  # 20 s
            silent.stream.write(enp.encode(enp.Heartbeat(0)))
            cluster.run_for(0.5)
            if journal:
                break
        assert journal, "the important send is still pending"
        assert isinstance(journal[0], Timeout) and "did not acknowledge" in str(journal[0])
        assert network_module.REQUEST_TIMEOUT <= cluster.now - started <= network_module.REQUEST_TIMEOUT + 1.5
        assert not conn.waiting and not conn.deadlines  # the last monitor's answer timed out too
        assert conn.state == "up"
        f.round_trip()
    finally:
        cluster.close()


def test_a_link_monitor_or_spawn_a_live_peer_never_answers_fails_with_timeout():
    """A Link, a Monitor, a remote spawn or application start that a peer keeping its
    connection up never answers: the watchers believed they watched (a termination would
    never reach them) and the spawn's future stayed pending, for the connection's life.
    After REQUEST_TIMEOUT each fails with Timeout, as Ergo's requests give up after its
    request timeout: a linked process gets an exit signal, a monitor a down message, the
    futures fail.  A subscription the peer answers late that it made is withdrawn then (an
    Unlink); a refused one is not (nothing to withdraw)."""
    cluster = SimCluster()
    try:
        f = Fixture(cluster)
        b = f.b
        flags = int(handshake.DEFAULT_FLAGS | NetworkFlags.REMOTE_SPAWN | NetworkFlags.REMOTE_APPLICATION_START)
        silent, _ = f.dial_as(handshake.NodeInfo(name="raw1@rawhost", creation=1, flags=flags))
        assert silent.stream is not None
        cluster.run_until(lambda: "raw1@rawhost" in b.network()._connections)
        conn = b.network()._connections["raw1@rawhost"]
        remote = PID("raw1@rawhost", 5, 1)
        journal: list[Any] = []
        linker = b._processes[b.spawn(Trapper, journal).id]
        monitor = b._processes[b.spawn(Trapper, journal).id]
        linker.link(remote)
        monitor.monitor(remote)
        peer = b.network().node("raw1@rawhost")
        spawned, started_app = peer.spawn("worker"), peer.application_start("app")
        started = cluster.now
        for _ in range(40):  # 20 s
            silent.stream.write(enp.encode(enp.Heartbeat(0)))
            cluster.run_for(0.5)
            if len(journal) == 2:
                break
        assert network_module.REQUEST_TIMEOUT <= cluster.now - started <= network_module.REQUEST_TIMEOUT + 1.5
        told = {pid: message for pid, _, message in journal}
        exit_, down = told[linker.pid], told[monitor.pid]
        assert isinstance(exit_, MessageExitPID) and exit_.pid == remote and isinstance(exit_.reason, Timeout)
        assert "did not answer a Link of" in str(exit_.reason)
        assert isinstance(down, MessageDownPID) and down.pid == remote and isinstance(down.reason, Timeout)
        for fut, what in ((spawned, "spawn of 'worker'"), (started_app, "start of application 'app'")):
            assert fut.done() and isinstance(fut.exception(), Timeout) and what in str(fut.exception())
        assert not conn.waiting and not conn.deadlines and conn.state == "up"
        cluster.run_for(0.1)
        codec = enp.LinkCodec("raw1@rawhost", 1, str.__str__(b.name), b.creation)
        frames = codec.feed(bytes(silent.received))
        silent.received.clear()
        # nothing is taken back yet: whether the peer subscribed is not known
        assert not [m for m in frames if type(m) in (enp.Unlink, enp.Demonitor)]
        # its late answers: the Link made (taken back now), the Monitor refused (nothing to take back)
        asked = {type(m): m.ref for m in frames if type(m) in (enp.Link, enp.Monitor)}
        codec.send(enp.Result(b._core_pid, asked[enp.Link], None, None))
        codec.send(enp.Result(b._core_pid, asked[enp.Monitor], ProcessUnknown("no such process"), None))
        silent.stream.write(bytes(codec.flush()))
        cluster.run_for(0.1)  # the frame taking it back, on its way
        frames = codec.feed(bytes(silent.received))
        taken_back = [(type(m), m.target) for m in frames if type(m) in (enp.Unlink, enp.Demonitor)]
        assert taken_back == [(enp.Unlink, remote)] and len(journal) == 2 and not conn.orphans  # nobody told more
        # a later subscription of the same target is a fresh one, sent and awaited again
        linker.link(remote)
        cluster.run_for(0.1)
        assert len(conn.waiting) == 1
        f.round_trip()
    finally:
        cluster.close()


def _on_link(node: Any, cls: Any, *args: Any, first: bool) -> Any:
    """A process of ``cls`` on ``node`` whose frames take the pool's first link (or not)."""
    while True:
        pid = node.spawn(cls, *args)
        if (enp.order_key(pid) % 3 == 0) is first:
            return node._processes[pid.id]


def _behind_a_hog(cluster: SimCluster, kilobytes: int) -> tuple[Any, Any, Any, Any]:
    """n1 and n2 of ``slow_pair`` (a stream drains 64 KiB per 0.4 s round trip), a Counter
    on n2, and ``kilobytes`` kB sent by a process of n1 on the pool's first link: what
    another process on that link sends waits behind them, the other links are free.
    Returns (n1, n2, the counter, a predicate: all of it arrived)."""
    a, b, sink = cluster.slow_pair(16 * 1024 * 1024)
    target = b.spawn(Counter)
    assert a.call(target, "incr") == 1
    cluster.run_until(lambda: len(a.network()._connections[str.__str__(b.name)].links) == 3)

    class Hog(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            for i in range(kilobytes // 8):
                self.send(sink, (i, "x" * 8000))

    a.send(_on_link(a, Hog, first=True).pid, "go")
    cluster.run_for(0.01)
    return a, b, target, lambda: len(b._processes[sink.id].got) == kilobytes // 8


def test_a_watch_withdrawn_before_its_answer_timed_out_is_not_withdrawn_twice():
    """A process monitors a target of a slow peer and demonitors it before the answer
    came (a Demonitor sent); then the Monitor timed out (the peer, heard from, had not
    answered yet), and the node sent the peer a second Demonitor "in case it subscribes
    late": one withdrawal too many.  Another process monitoring the target meanwhile (its
    Monitor on a free link of the pool, ahead of the frames held behind another sender's
    1.6 MB) had its subscription taken by it, and never heard of the target's end.  A
    subscription is withdrawn once the peer said it made it, and once only."""
    cluster = SimCluster()
    try:
        a, b, target, drained = _behind_a_hog(cluster, 1600)
        conn = a.network()._connections[str.__str__(b.name)]
        journal: list[Any] = []
        first = _on_link(a, Trapper, journal, first=True)  # its frames behind the hog's
        second = _on_link(a, Trapper, journal, first=False)
        first.monitor(target)
        first.demonitor(target)
        cluster.run_for(network_module.REQUEST_TIMEOUT + 1.5)
        # the Monitor's time is out, and it still waits behind the hog's messages
        assert not conn.waiting and target not in b._pubsub._monitors
        second.monitor(target)
        cluster.run_until(lambda: target in b._pubsub._monitors)
        cluster.run_until(drained, timeout=30)
        cluster.run_for(1.0)  # what was held behind them has arrived
        assert list(b._pubsub._monitors.get(target, ())) == [a._core_pid]  # still subscribed there
        b.send_exit(target, ValueError("the end"))
        cluster.run_until(lambda: journal, timeout=5)
        ((pid, _, down),) = journal
        assert pid == second.pid and isinstance(down, MessageDownPID) and "the end" in str(down.reason), journal
        assert b.network()._consumers[str.__str__(a.name)].watches == {} and not conn.orphans
    finally:
        cluster.close()


def test_a_withdrawal_cannot_overtake_its_subscription():
    """Two processes monitor a target of a peer, the one whose Monitor went first on a
    busy link of the pool; both leave before the answer.  The Demonitor took the link of
    the last to leave, a free one, reached the peer before the Monitor and withdrew
    nothing, and the Monitor then subscribed this node for good: the peer kept a
    subscription nobody here knew of (a Terminate for nobody, for the target's life).
    The Demonitor waits for the answer saying the subscription was made."""
    cluster = SimCluster()
    try:
        a, b, target, drained = _behind_a_hog(cluster, 480)  # 1.2 s behind: answered within REQUEST_TIMEOUT
        journal: list[Any] = []
        first = _on_link(a, Trapper, journal, first=True)
        last = _on_link(a, Trapper, journal, first=False)
        first.monitor(target)
        last.monitor(target)
        first.demonitor(target)
        last.demonitor(target)
        cluster.run_until(drained, timeout=30)
        cluster.run_for(1.0)
        assert target not in a._pubsub._monitors
        assert target not in b._pubsub._monitors  # no stray subscription there
        assert b.network()._consumers[str.__str__(a.name)].watches == {}
        assert journal == []
    finally:
        cluster.close()


def test_a_timed_out_watch_repeated_leaves_one_subscription_then_none():
    """A Monitor of a live peer times out (its frame behind another sender's 1.6 MB), and
    the process monitors the target again at once, from a free link: the second
    subscription crosses the first.  The peer answers the first late, saying it
    subscribed: that one is withdrawn, the second stays (the target's end reaches the
    watcher, once); after the demonitor the peer holds none."""
    cluster = SimCluster()
    try:
        a, b, target, drained = _behind_a_hog(cluster, 1600)
        consumer_watches = lambda: b.network()._consumers[str.__str__(a.name)].watches  # noqa: E731
        journal: list[Any] = []
        first = _on_link(a, Trapper, journal, first=True)
        second = _on_link(a, Trapper, journal, first=False)
        first.monitor(target)
        cluster.run_until(lambda: journal, timeout=network_module.REQUEST_TIMEOUT + 2)
        ((_, _, timed_out),) = journal
        assert isinstance(timed_out, MessageDownPID) and isinstance(timed_out.reason, Timeout)
        second.monitor(target)
        cluster.run_until(drained, timeout=30)
        cluster.run_for(1.0)
        assert list(b._pubsub._monitors[target]) == [a._core_pid] and consumer_watches() == {(False, target): 1}
        second.demonitor(target)
        cluster.run_for(1.0)
        assert target not in b._pubsub._monitors and consumer_watches() == {}
        second.monitor(target)
        cluster.run_until(lambda: target in b._pubsub._monitors)
        b.send_exit(target, ValueError("the end"))
        cluster.run_until(lambda: len(journal) == 2, timeout=5)
        cluster.run_for(1.0)
        assert len(journal) == 2 and "the end" in str(journal[1][2].reason)
    finally:
        cluster.close()


def test_subscriptions_withdrawn_before_a_silent_peer_answers_are_bounded(cluster, monkeypatch):
    """A Link/Monitor whose watchers left before the answer is kept until the answer says
    whether the peer subscribed (then withdrawn): a peer that never answers made this
    node keep each.  At most MAX_ORPHANS per peer are; one more forgets the oldest, whose
    late answer then withdraws nothing."""
    monkeypatch.setattr(network_module, "MAX_ORPHANS", 4)
    f = Fixture(cluster)
    b = f.b
    silent, conn = _connected_raw_peer(f)
    watcher = b._processes[b.spawn(Trapper, []).id]
    remote = PID("raw1@rawhost", 5, 1)
    for _ in range(10):
        watcher.monitor(remote)
        watcher.demonitor(remote)
    codec = enp.LinkCodec("raw1@rawhost", 1, str.__str__(b.name), b.creation)
    asked = _frames(f, codec, silent, 10, enp.Monitor)
    assert len(conn.orphans) == 4 and not conn.waiting and not conn.watches
    for monitor in asked:  # each answered late: subscribed
        codec.send(enp.Result(b._core_pid, monitor.ref, None, None))
    silent.stream.write(bytes(codec.flush()))
    f.cluster.run_until(lambda: not conn.orphans)
    withdrawn = _frames(f, codec, silent, 4, enp.Demonitor)
    f.round_trip()
    assert len(withdrawn) == 4 + len([m for m in codec.feed(bytes(silent.received)) if type(m) is enp.Demonitor])


def test_a_connection_that_went_down_is_not_kept_alive():
    """Nothing of a peer stays once its connection is down: its Connection and links
    (with whatever bytes they held for a peer that stopped reading) are freed.  The last
    plain send's shortcut kept the last one it used until the next send, and each link's
    handshake timer kept it (with its codec's 128 KiB packer) for connect_timeout after
    its handshake: a peer restarted in a loop made them pile up by the hundred."""
    cluster = SimCluster()
    try:
        f = Fixture(cluster)
        a, b = f.a, f.b
        target = b.spawn(Counter)

        class Sender(Actor):
            def handle_message(self, from_: Any, message: Any) -> None:
                self.send(target, message)

        a.send(a.spawn(Sender), "hello")
        cluster.run_for(0.1)
        conn = weakref.ref(a.network()._connections[str.__str__(b.name)])
        links = [weakref.ref(link) for link in conn().links]  # type: ignore[union-attr]
        a.network().node(b.name).disconnect()
        cluster.run_until(lambda: not a.network().nodes() and not b.network().nodes())
        assert cluster.now < a.network().options.connect_timeout
        gc.collect()
        assert conn() is None and all(link() is None for link in links)
    finally:
        cluster.close()


def _tables(node: Any) -> dict[str, int]:
    """The sizes of every table of ``node`` that a peer's doings fill."""
    net, pubsub, processes = node.network(), node._pubsub, node._processes.values()
    return {
        "connections": len(net._connections), "pending": len(net._pending), "claims": len(net._claims),
        "connection_ids": len(net.connection_ids), "dialing": len(net.dialing), "consumers": len(net._consumers),
        "handshaking": len(net._handshaking), "remote_calls": len(net.remote_calls),
        "links": len(pubsub._links), "monitors": len(pubsub._monitors), "followed": len(pubsub._followed),
        "events": len(pubsub._events), "remote_targets": len(pubsub._remote),
        "processes": len(node._processes), "names": len(node._names),
        "calls_in": sum(len(p._calls_in or ()) for p in processes),
        "linked": sum(len(p._linked or ()) for p in processes),
        "monitored": sum(len(p._monitored or ()) for p in processes),
        "pending_calls": sum(len(p._pending or ()) for p in processes) + len(node._core_pending),
    }


def test_nothing_of_a_peer_stays_after_it_disconnects():
    """A peer connects, does a bit of everything (important sends, calls held and
    answered, links and monitors of processes, names, aliases and events that exist or
    not, a refused spawn; b's processes watch, link to and call it too) and goes, by a
    FIN, a reset or a reset in the middle of a frame; 30 times.  b's tables are back to
    their size each time."""
    cluster = SimCluster()
    try:
        f = Fixture(cluster)
        b = f.b
        holder = b.spawn_register("holder", Holder)
        counter = b._names["counter"]._pid

        class Watcher(Actor):
            def init(self) -> None:
                self.trap_exit = True

            async def handle_message(self, from_: Any, message: Any) -> None:
                if type(message) is PID:
                    self.monitor(message)
                    self.link(message)
                    with contextlib.suppress(Exception):
                        await self.call(message, "hello", timeout=60)

        producer = b.spawn(Producer, "ev", 10)
        for i in range(20):
            b.send(producer, i)
        watcher = b.spawn(Watcher)
        cluster.run_for(0.1)
        before = _tables(b)
        event = Event("ev", b.name)
        for i in range(30):
            name = f"churn{i % 4}@rawhost"
            peer, _ = _handshake(f, name)
            assert peer.stream is not None
            cluster.run_until(lambda: name in b.network()._connections)  # noqa: B023
            conn = b.network()._connections[name]
            me = PID(name, 5, 1)
            ref = [Ref(name, 1, (k, i, 0)) for k in range(16)]
            frames = [
                enp.SendPID(me, counter, "x", 0, True, ref[1]),
                enp.RequestPID(me, holder, ref[2], "held", 0),
                enp.RequestProcessID(me, ProcessID("holder", b.name), ref[3], "held", 0),
                enp.RequestPID(me, counter, ref[4], "incr", 0),
                enp.Link(me, counter, ref[5]), enp.Monitor(me, counter, ref[6]),
                enp.Monitor(me, ProcessID("holder", b.name), ref[7]),
                enp.Link(me, event, ref[8]), enp.Monitor(me, event, ref[9]),
                enp.Monitor(me, Event("nothing", b.name), ref[10]),
                enp.Link(me, Alias(b.name, b._creation, (99, 9, 9)), ref[11]),
                enp.Spawn(me, ref[12], "nothing", None, {}, ()),
                enp.Demonitor(me, counter, ref[13]),
            ]
            peer.stream.write(b"".join(enp.encode(x) for x in frames))
            b.send(watcher, me)
            cluster.run_until(lambda: conn.frames_in >= len(frames) and len(b.network().remote_calls) == 2  # noqa: B023
                              and len(b._pubsub._monitors) == 3)
            if i % 3 == 0:
                peer.stream.close()
            elif i % 3 == 1:
                peer.stream.abort()
            else:
                frame = enp.encode(enp.SendPID(me, counter, "cut short", 0, False, None))
                peer.stream.write(frame[: len(frame) // 2])
                cluster.run_for(0.01)
                peer.stream.abort()
            cluster.run_until(lambda: name not in b.network()._connections)  # noqa: B023
            cluster.run_for(0.01)
            assert _tables(b) == before, i
        assert f.a.call(ProcessID("counter", b.name), "incr") == f.calls + 31  # served throughout (30 peers' incr)
    finally:
        cluster.close()


def test_a_call_reusing_the_ref_of_a_call_in_flight_is_refused(cluster):
    """A peer's refs are its own counter: two requests with one ref, both in flight, made
    the second overwrite the first in b's table of owed calls, and the first target kept
    owing it for ever (past the connection's end: nothing named it any more).  The second
    is refused (Incorrect) and reaches no process."""
    f = Fixture(cluster)
    b = f.b
    first = b._processes[b.spawn(Holder).id]
    second = b._processes[b.spawn(Holder).id]
    peer, _ = _handshake(f, "raw1@rawhost")
    assert peer.stream is not None
    me = PID("raw1@rawhost", 5, 1)
    codec = enp.LinkCodec("raw1@rawhost", 1, str.__str__(b.name), b._creation, peer_max_message_size=4096)
    for i in range(3):
        ref = Ref("raw1@rawhost", 1, (i, 0, 0))
        codec.send(enp.RequestPID(me, first._pid, ref, "first", 0))
        codec.send(enp.RequestPID(me, second._pid, ref, "again", 0))
    peer.stream.write(bytes(codec.flush()))
    f.cluster.run_until(lambda: len(first.held) == 3)
    answers = _frames(f, codec, peer, 3)
    assert all(type(x) is enp.ResponseError and "in flight" in str(x.error) for x in answers), answers
    assert not second.held and len(first._calls_in) == 3
    peer.stream.abort()
    f.cluster.run_until(lambda: "raw1@rawhost" not in b.network()._connections)
    assert not first._calls_in and not second._calls_in
    f.round_trip()


class _Scanned(dict):  # type: ignore[type-arg]
    """A pub/sub table that counts the times it was scanned whole."""

    scans = 0

    def __iter__(self) -> Any:
        _Scanned.scans += 1
        return super().__iter__()


def test_a_lost_connection_touches_only_that_peers_targets():
    """A lost connection scanned every link and monitor target of the node, local ones
    included (2 ms a disconnect with 50000 local monitors, most of the cost of a peer's
    connect and disconnect): a peer that reconnects over and over made the node's work
    grow with its size.  The node keeps the remote targets by node; watchers of the
    peer's targets are still told NoConnection."""
    cluster = SimCluster()
    try:
        f = Fixture(cluster)
        a, b = f.a, f.b
        journal: list[Any] = []
        watcher = b._processes[b.spawn(Trapper, journal).id]
        for _ in range(20):
            watcher.monitor(b.spawn(Counter))  # local targets, which a peer's loss has nothing to do with
        remote = a.spawn(Counter)
        watcher.monitor(remote)
        pubsub = b._pubsub
        pubsub._links, pubsub._monitors = _Scanned(pubsub._links), _Scanned(pubsub._monitors)
        _Scanned.scans = 0
        b.network().node(a.name).disconnect()
        cluster.run_until(lambda: journal)
        assert isinstance(journal[0][2], MessageDownPID) and journal[0][2].pid == remote
        assert isinstance(journal[0][2].reason, NoConnection)
        assert _Scanned.scans == 0
        assert not pubsub._remote and len(pubsub._monitors) == 20
    finally:
        cluster.close()


def test_the_answer_to_an_earlier_subscription_does_not_reach_the_watchers_of_a_later_one(cluster):
    """A process monitors a name the peer has not registered yet and leaves before the
    answer; another monitors it once it is registered.  The peer refuses the first
    Monitor and accepts the second: the refusal took the second watcher down
    (ProcessUnknown) though the peer had subscribed it.  Only the latest subscription's
    answer counts, and a peer that never answers keeps one entry per target, not one per
    subscription."""
    f = Fixture(cluster)
    b = f.b
    peer, conn = _connected_raw_peer(f)
    codec = enp.LinkCodec("raw1@rawhost", 1, str.__str__(b.name), b._creation, peer_max_message_size=4096)
    early: list[Any] = []
    late: list[Any] = []
    first = b._processes[b.spawn(Trapper, early).id]
    second = b._processes[b.spawn(Trapper, late).id]
    target = ProcessID("late", "raw1@rawhost")
    first.monitor(target)
    first.demonitor(target)
    second.monitor(target)
    frames = _frames(f, codec, peer, 2, enp.Monitor)
    assert len(conn.waiting) == 1
    refused = ProcessUnknown("no process is registered as late")
    codec.send(enp.Result(b._core_pid, frames[0].ref, refused, None))
    codec.send(enp.Result(b._core_pid, frames[1].ref, None, None))
    peer.stream.write(bytes(codec.flush()))
    f.cluster.run_until(lambda: not conn.waiting)
    f.round_trip()
    assert early == [] and late == []
    assert b._pubsub._monitors.get(target) == {second._pid: None}


def _holding_link(f: Fixture) -> tuple[RawPeer, Any, Any]:
    """A raw peer past its handshake with b that never reads, and b's link to it holding
    frames on a pause (b's flow limits made small: 64 KiB up to the pause, 1 MiB cap)."""
    b = f.b
    b.network().transport.limits = FlowLimits(high=64 * 1024, low=32 * 1024, max_buffer=1024 * 1024)
    b.network().transport.window = 16 * 1024
    name = "deaf@rawhost"
    peer = f.dial_as(handshake.NodeInfo(name=name, creation=1))[0]
    assert peer.stream is not None
    peer.stream.pause_reading()  # and never again
    f.cluster.run_until(lambda: name in b.network()._connections)
    conn = b.network()._connections[name]
    to = PID(name, 5, 1)
    for i in range(12):
        b.send(to, bytes([i]) * 50_000)  # 600 kB: past the window and the high-water mark
        f.cluster.run_for(0.001)
    link = conn.links[0]
    assert link.paused and link._held_bytes > 0
    return peer, conn, link


def test_a_link_closed_while_its_peer_never_reads_is_aborted_after_the_heartbeat_timeout():
    """A graceful close (``disconnect``) waits for what the link held and its buffer to go
    out before the FIN.  A peer that never reads kept that closed link, its stream and up
    to MAX_QUEUED + max_buffer bytes for ever (one more at every disconnect and redial):
    it is aborted once heartbeat_timeout has passed since the close, logged."""
    c = SimCluster()
    try:
        f = Fixture(c)
        peer, conn, link = _holding_link(f)
        name = str.__str__(conn.name)
        f.b.network().node(name).disconnect()
        assert link.lost and link._fin_after_held  # the close waits for the held bytes
        c.run_for(f.b.network().options.heartbeat_timeout * 3)
        assert link.stream.closing and link._held_bytes == 0 and not link._held
        assert link.stream._done  # the stream is gone, not left waiting for the peer
        assert f.logged("link to", name, "aborted") == 1
        f.round_trip()
    finally:
        c.close()


def test_a_link_closed_while_its_peer_trickles_its_reads_is_aborted_after_at_most_ten_heartbeat_timeouts():
    """A peer that keeps taking a little of what a closed link has left (a chunk a few
    seconds apart, always before heartbeat_timeout) made progress at every check, so the
    close went on for as long as it pleased (600 kB at 16 KiB a read: minutes; a byte a
    read: for ever), holding the link, its stream and its bytes.  Whatever the peer
    takes, a graceful close now lasts at most MAX_CLOSE_TIMEOUTS heartbeat timeouts."""
    from ergo.network.connection import MAX_CLOSE_TIMEOUTS

    c = SimCluster()
    try:
        f = Fixture(c)
        peer, conn, link = _holding_link(f)
        stream = peer.stream
        assert stream is not None

        def one_chunk_a_read(data: memoryview) -> None:
            peer.received += data
            stream.pause_reading()

        peer.data_received = one_chunk_a_read  # type: ignore[method-assign]
        name = str.__str__(conn.name)
        timeout = f.b.network().options.heartbeat_timeout
        f.b.network().node(name).disconnect()
        closed = c.now
        taken = []
        while not link.stream._done and c.now - closed < 2 * MAX_CLOSE_TIMEOUTS * timeout:
            c.run_for(timeout * 0.8)  # less than the timeout: progress at every check
            taken.append(len(peer.received))
            stream.resume_reading()
        assert link.stream._done and not link._held
        assert closed + MAX_CLOSE_TIMEOUTS * timeout <= c.now <= closed + MAX_CLOSE_TIMEOUTS * timeout + timeout
        assert len(set(taken)) > MAX_CLOSE_TIMEOUTS  # the peer took more at every read
        assert f.logged("link to", name, f"at most {MAX_CLOSE_TIMEOUTS} times", "aborted") == 1
        f.round_trip()
    finally:
        c.close()


def test_a_graceful_stop_sends_what_a_link_held_before_its_fin():
    """``node.stop()`` closes each connection gracefully: what a link held on a pause
    goes out before the FIN.  The stop then took the connections down as a reset does,
    which aborted every link still sending what it held, and those frames were lost."""
    c = SimCluster()
    try:
        a, b, sink, _link, sent = c.paused_link(max_buffer=4 * 1024 * 1024)
        a.stop()
        c.run_until(lambda: not b.network().nodes(), timeout=60)  # b saw the FIN, or a reset
        assert [m for _, m in b._processes[sink.id].got][1:] == sent
        assert "network: disconnected from n1@host1: the connection to n1@host1 was lost" in b.captured.texts()
        assert not any("aborted" in text for text in a.captured.texts())
    finally:
        c.close()


def test_failed_dials_to_ever_new_names_are_logged_at_most_a_hundred_a_second():
    """Failed dials are logged once per peer name every DIAL_FAILURE_LINES_EVERY seconds,
    and the names are whatever the node's processes send to: a service that answers the
    PIDs a peer puts in its messages dials every name the peer makes up.  Each new name
    was a warning of its own, at the rate the node could fail dials; now at most
    DIAL_FAILURES_LOGGED lines a second go out, and one line tells how many more failed."""
    c = SimCluster()
    try:
        (a,) = c.cluster(1)
        limit = network_module.DIAL_FAILURES_LOGGED
        for i in range(limit * 10):
            with pytest.raises(NoRoute):  # (a send from a process raises it too)
                a.send(PID(f"ghost{i}@nowhere", 1, 1), "hello?")
        failed = [t for t in a.captured.texts() if "cannot connect to ghost" in t]
        assert len(failed) == limit
        c.run_for(1.5)
        told = [t for t in a.captured.texts() if "more dials failed" in t]
        assert told == [f"network: {limit * 9} more dials failed (more than {limit} a second are not logged "
                        "one by one)"]
        with pytest.raises(NoRoute):
            a.send(PID("ghost0@nowhere", 1, 1), "again?")  # a name logged less than 10 s ago: counted
        with pytest.raises(NoRoute):
            a.send(PID("ghost-new@nowhere", 1, 1), "hello?")  # a new second: logged
        assert [t for t in a.captured.texts() if "cannot connect to ghost" in t][len(failed):] == [
            "network: cannot connect to ghost-new@nowhere: no route to ghost-new@nowhere: no static route matches "
            "and there is no registrar"]
    finally:
        c.close()


def test_a_request_made_while_dialing_is_given_the_whole_request_timeout_once_sent():
    """A Link, Monitor or spawn made while its connection is being dialed waits in the
    dial's queue; its REQUEST_TIMEOUT counted from then, so a slow dial (0.7 s each way:
    up after 4.2 s) left the peer 0.8 s, and a Monitor the peer answered 1.4 s after it
    was sent failed with Timeout "did not answer within 5.0 s", the watcher told its
    target was down while the peer had subscribed it.  It counts from when it is sent."""
    c = SimCluster()
    try:
        a, b = c.cluster(2)
        c.sim.set_latency("host1", "host2", 0.7)
        target = b.spawn(Counter)
        journal: list[Any] = []
        watcher = a._processes[a.spawn(Trapper, journal).id]
        watcher.monitor(target)  # dials b: the Monitor waits for the connection
        c.run_until(lambda: a.network().nodes())
        up = c.now
        assert up > 4.0  # the dial took most of the request timeout
        c.run_for(network_module.REQUEST_TIMEOUT + 2)
        assert journal == []  # answered: no Timeout
        assert not a.network()._connections["n2@host2"].waiting
        b.send_exit(target, ValueError("bye"))  # and the monitor is real: its down comes
        c.run_until(lambda: journal)
        (_, _, down), = journal
        assert isinstance(down, MessageDownPID) and down.pid == target and not isinstance(down.reason, Timeout)
    finally:
        c.close()


class _Sender(Actor):
    """Does what the test gives it to do, in its own context."""

    def handle_message(self, from_: Any, message: Any) -> None:
        message(self)


def test_what_a_sender_writes_when_told_a_queued_frame_failed_is_held_within_the_cap():
    """Frames queued for a dial go out once it is up, held outside max_buffer (the
    dial's queue bounds them).  One the peer's limit refuses, known only then, fails the
    important send (a future) that waits for it, and its callbacks ran there and then, in
    simulation, while the link still counted what was written as the queue's: whatever
    a callback sent to the peer was held past max_buffer, without bound.  It is told
    once the queue is written, and what it sends counts against the cap as any send."""
    c = SimCluster()
    try:
        a, b = c.start(1), c.start(2, max_message_size=4096)
        c.route_all()
        c.sim.set_latency("host1", "host2", 0.2)
        limits = FlowLimits(high=64 * 1024, low=32 * 1024, max_buffer=256 * 1024)
        a.network().transport.limits = limits
        a.network().transport.window = 16 * 1024
        sink = ProcessID("sink", b.name)
        b.spawn_register("sink", Collector)
        told: list[Any] = []

        def flood(f: Any) -> None:
            told.append(f.exception())
            for i in range(800):  # 3.2 MB (under b's limit each), 12 times max_buffer
                with contextlib.suppress(NoConnection):  # (once the link is closed for the cap)
                    sender.send(sink, bytes([i % 256]) * 4000)

        def start(me: Any) -> None:
            me.send_important(sink, b"y" * 10_000).add_done_callback(flood)  # above b's limit: fails once up

        sender = a._processes[a.spawn(_Sender).id]
        a.send(sender.pid, start)
        c.run_until(lambda: told, timeout=30)
        conn = a.network()._connections["n2@host2"]
        assert max(link._held_bytes for link in conn.links) <= limits.max_buffer
        c.run_until(lambda: conn.state == "down")  # the link was closed for crossing the cap
        assert "over the limit" in str(conn.error)
    finally:
        c.close()


class _Forged(Exception):
    """An exception of a class node b does not know: it arrives as a RemoteError of its text."""


#: an exit reason's text that, written as it is, would make a log line of its own
FORGED_REASON = "boom\n2026-01-01 00:00:00 [critical] all clear\r\x1b[2K"


class _AppMember(Actor):
    def handle_message(self, from_: Any, message: Any) -> None:
        pass


class _PermanentApp(Application):
    def load(self, node: Any, *args: Any) -> ApplicationSpec:
        return ApplicationSpec("app", [ApplicationMemberSpec(_AppMember, name="member")])


def test_a_peers_exit_reason_cannot_make_lines_of_its_own_in_the_nodes_application_lines(cluster):
    """A peer that sends an exit signal (or ends a linked process) chooses its reason's text,
    and a member of a permanent application that it takes down is logged with it three
    times: "will be stopped due to ... with reason", "stopped with reason", "permanent
    application stopped (...)".  Those are the node's own lines, not the network's: its
    reason was written as it was, a newline forging whole lines.  Every line of the
    runtime shows what it prints of others' words escaped, as the network's do."""
    a, b = cluster.cluster(2)
    b.application_load(_PermanentApp())
    b.application_start_permanent("app")
    member = next(p for p in b.process_list() if b.process_info(p).name == "member")

    class Killer(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            self.send_exit(message, _Forged(FORGED_REASON))

    a.send(a.spawn(Killer), member)
    cluster.run_until(lambda: not b.is_alive())
    escaped = "boom\\n2026-01-01 00:00:00 [critical] all clear\\r\\x1b[2K"
    texts = b.captured.texts()
    assert [t for t in texts if "application app" in t and escaped in t] == [
        f"application app (permanent) will be stopped due to termination of {member} with reason: "
        f"_Forged: {escaped}",
        f"application app (permanent) stopped with reason _Forged: {escaped}",
        f"permanent application app stopped (_Forged: {escaped}): the node stops",
    ]
    assert not [t for t in texts if any(c in t for c in "\n\r\x1b")]


def test_a_printable_log_escapes_a_repr_once_and_every_level_it_has():
    """``%r`` in a line of the runtime's logger showed the repr of the escaped text: quoted
    and its backslashes doubled (``'a\\\\nb'``), and ``trace`` and ``panic`` were passed to
    the logger as they were, unescaped.  A ``%r`` shows the argument's repr, escaped once;
    ``%d`` a number as it is; every level escapes."""
    from ergo.network.throttle import PrintableLog

    class Record:
        _level = 0

        def __init__(self) -> None:
            self.lines: list[tuple[str, str]] = []

        def __getattr__(self, level: str) -> Any:
            def line(fmt: str, *args: Any, exc_info: Any = None) -> None:
                self.lines.append((level, fmt % args))
            return line

    record = Record()
    log = PrintableLog(record)
    log.warning("got %r from %s (%d bytes, %.1f s)", "a\nb", "x\x1by", 3, 0.25)
    log.error("failed: %r", ValueError("bad\nline"))
    log.trace("trace %s", "t\nt")
    log.panic("panic %s %%", "p\rp", exc_info=ValueError("x"))
    assert record.lines == [
        ("warning", "got 'a\\nb' from x\\x1by (3 bytes, 0.2 s)"),
        ("error", "failed: ValueError('bad\\nline')"),
        ("trace", "trace t\\nt"),
        ("panic", "panic p\\rp %"),
    ]


class _ErrorServer(Actor):
    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        self.send_response_error(from_, ref, _Forged(FORGED_REASON))
        return NoReply


class _Caller(Actor):
    async def handle_message(self, from_: Any, message: Any) -> None:
        await self.call(message, "hi")  # raises the peer's error: a panic, logged with its traceback


def test_a_peers_error_text_in_a_panics_traceback_cannot_make_lines_of_its_own(cluster):
    """A handler that does not catch the error a remote call got panics, and the panic is
    logged with its traceback, whose last line is the error's text: a peer's words, which
    made log lines of their own there (in the node's loggers and in the ``logging``
    tree's, which formatted the traceback itself).  Each exception's text in a traceback
    is escaped; the traceback's own lines are Python's."""
    import logging

    a, b = cluster.cluster(2)
    lines: list[str] = []

    class Tree(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(logging.Formatter().format(record))

    tree = Tree(level=logging.CRITICAL)
    logging.getLogger("ergo").addHandler(tree)
    try:
        caller = b.spawn(_Caller)
        b.send(caller, a.spawn(_ErrorServer))
        cluster.run_until(lambda: caller.id not in b._processes and lines)
    finally:
        logging.getLogger("ergo").removeHandler(tree)
    escaped = "boom\\n2026-01-01 00:00:00 [critical] all clear\\r\\x1b[2K"
    (panic,) = [t for t in b.captured.texts() if t.startswith("panic in a handler")]
    (tree_line,) = lines
    for text in (panic, tree_line):
        assert text.splitlines()[-1] == f"ergo.wire.edf.RemoteError: _Forged: {escaped}"
        assert not any(c in text for c in "\r\x1b") and "2026-01-01" not in text.replace(escaped, "")


def test_dials_in_progress_are_bounded_and_the_rest_wait_their_turn():
    """Every send to a node that is not connected dials it, and the names a node's
    processes send to may come from a peer (the PIDs in its messages): each dial held a
    socket, and on a host that does not answer a UDP port of its own for the resolve, for
    up to its timeout.  Thousands of them ran out of file descriptors, which then failed
    the node's every other socket (and the send itself with an OSError).  At most
    MAX_DIALS dials run at once; the others wait, queued in order, their sends accepted,
    and each starts when one ends (within its own connect_timeout); what is connected is
    served meanwhile."""
    s = sim.Sim(1)
    o = NodeOptions(network=NetworkOptions(cookie=COOKIE), log=LogOptions(default_logger=False))
    a, b = s.start_node("a@host1", o), s.start_node("b@host2", o)
    b.spawn_register("counter", Counter)
    assert a.call(ProcessID("counter", "b@host2"), "incr") == 1
    s.host("silent")  # a host whose registrar never answers (nobody runs there)
    n = network_module.MAX_DIALS * 3
    for i in range(n):
        a.send(ProcessID("x", f"n{i}@silent"), "hi")
    net_ = a.network()
    most = 0

    def count() -> bool:
        nonlocal most
        most = max(most, len(net_._registrar._queries), sum(c.dial_slot for c in net_._pending.values()))
        return not net_._pending

    assert a.call(ProcessID("counter", "b@host2"), "incr") == 2
    s.run_until(count, timeout=60)
    assert 0 < most <= network_module.MAX_DIALS
    assert net_._dials == 0 and not net_._dials_waiting
    # a dial queued so long that its connect_timeout passed failed with Timeout, as any slow dial
    assert a.call(ProcessID("counter", "b@host2"), "incr") == 3


def test_dials_waiting_for_a_turn_are_bounded_and_one_more_fails_at_once(monkeypatch):
    """Beyond the MAX_DIALS running dials, at most MAX_DIALS_WAITING wait for a turn (each
    holds its connection and up to 4 MiB of queued frames, and the names dialed may come
    from a peer): a send that needs one more dial fails at once with TooLarge saying why,
    while the waiting dials keep their turn and what was queued for them, a send to a
    peer already being dialed is queued as before, and once dials end new ones start."""
    monkeypatch.setattr(network_module, "MAX_DIALS", 2)
    monkeypatch.setattr(network_module, "MAX_DIALS_WAITING", 3)
    s = sim.Sim(1)
    o = NodeOptions(network=NetworkOptions(cookie=COOKIE, connect_timeout=1.0), log=LogOptions(default_logger=False))
    a, b = s.start_node("a@host1", o), s.start_node("b@host2", o)
    captured = ListLogger()
    a.logger_add("captured", captured)
    b.spawn_register("counter", Counter)
    assert a.call(ProcessID("counter", "b@host2"), "incr") == 1
    s.host("silent")  # a host whose registrar never answers
    for i in range(5):  # 2 run, 3 wait
        a.send(ProcessID("x", f"n{i}@silent"), "hi")
    net_ = a.network()
    assert net_._dials == 2 and len(net_._dials_waiting) == 3
    with pytest.raises(TooLarge, match=r"cannot dial n5@silent: 2 dials run and 3 wait for a turn.*MAX_DIALS_WAITING"):
        a.send(ProcessID("x", "n5@silent"), "hi")
    assert "n5@silent" not in net_._pending
    a.send(ProcessID("x", "n4@silent"), "again")  # a dial that waits takes more frames
    assert [len(net_._pending[f"n{i}@silent"].queue) for i in range(5)] == [1, 1, 1, 1, 2]
    assert a.call(ProcessID("counter", "b@host2"), "incr") == 2  # what is connected is served
    s.run_until(lambda: not net_._pending, timeout=30)  # the dials time out, in turn
    a.send(ProcessID("x", "n5@silent"), "hi")  # room again
    assert "n5@silent" in net_._pending
    assert any("cannot connect to n5@silent: cannot dial n5@silent: 2 dials run" in t for t in captured.texts())


def test_a_dial_that_ends_gives_up_its_resolve_in_flight():
    """A dial that times out while its resolve is still waiting for a registrar that does
    not answer gives that resolve up (its UDP port closed at once), as it gives up a
    connect: left to its own timeout, each such dial held a socket longer than itself."""
    s = sim.Sim(1)
    o = NodeOptions(network=NetworkOptions(cookie=COOKIE, connect_timeout=1.0), log=LogOptions(default_logger=False))
    a = s.start_node("a@host1", o)
    s.host("silent")
    a.send(ProcessID("x", "n@silent"), "hi")
    registrar = a.network()._registrar
    assert registrar.info()["resolving"] == ["n@silent"]
    s.run_for(1.01)  # the dial's timeout (1 s), not the resolve's (3 s)
    assert a.network()._pending == {} and registrar.info()["resolving"] == []


def test_a_connection_closed_before_its_first_byte_is_no_warning_and_a_byte_then_a_close_is(cluster):
    """A TCP probe (a load balancer's, Kubernetes' tcpSocket check) connects and closes
    without a byte, every few seconds: no claim was made, nothing is refused, so it is a
    debug line, not a warning (Ergo logs nothing on such an EOF), closed cleanly or reset.
    Part of a message and then a close still warns."""
    from ergo import LogLevel

    f = Fixture(cluster)
    accepted = f.b.network()._accepted_handshakes
    for how in ("close", "abort"):
        peer = f.connect()
        f.cluster.run_until(lambda: len(accepted) == 1)
        getattr(peer.stream, how)()
        f.cluster.run_until(lambda: not accepted)
    assert not [t for t in f.b.captured.texts(LogLevel.WARNING) if "refused a connection" in t]
    f.round_trip()
    peer = f.connect()
    f.cluster.run_until(lambda: len(accepted) == 1)
    peer.stream.write(b"W")  # the first byte of a handshake message
    peer.stream.close()
    f.cluster.run_until(lambda: f.logged("refused a connection", "closed during the handshake") == 1)


def test_a_disconnect_right_after_connecting_leaves_the_peer_without_a_warning(cluster):
    """get_node, then disconnect at once: the pool's joins, still connecting, are given
    up and reset; the peer, which may have accepted them already, logs no refusal."""
    from ergo import LogLevel

    a, b = cluster.cluster(2, pool_size=3)
    got = a.network().get_node(b.name)
    cluster.run_until(got.done)
    got.result().disconnect()
    cluster.run_until(lambda: not b.network().nodes() and not b.network()._accepted_handshakes
                      and not a.network()._handshaking)
    assert not [t for t in b.captured.texts(LogLevel.WARNING) if "refused a connection" in t]

"""Bad input at a live acceptor, on both transports: raw streams connect to node b and
send garbage, truncated or stalled handshakes, and (past a real handshake, made with the
right cookie by ``ergo.wire.handshake.Dialer``) oversized or malformed ENP frames.  Each
bad link is closed by b and logged, and throughout a well-behaved peer (node a) keeps
being served: a call round trip after each.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from network_support import COOKIE, Cluster, Counter

from ergo import PID, Actor, Atom, Event, MessageDownPID, MessageEvent, NoConnection, ProcessID, ProcessUnknown, Timeout
from ergo.network import NetworkRoute
from ergo.transport import Stream, StreamProtocol
from ergo.wire import enp, handshake

#: a few examples, the same every run (each one is a connection to a live node)
FEW = settings(max_examples=12, derandomize=True, deadline=None, database=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class RawPeer(StreamProtocol):
    """A stream that is nobody's node: it writes what the test says and keeps what arrives."""

    def __init__(self) -> None:
        self.stream: Stream | None = None
        self.received = bytearray()
        self.lost = False

    def connection_made(self, stream: Stream) -> None:
        self.stream = stream

    def data_received(self, data: memoryview) -> None:
        self.received += data

    def connection_lost(self, error: Any) -> None:
        self.lost = True


class Fixture:
    """Node a (well-behaved, routed to b), node b (the acceptor under attack, max message
    size 4096), and a counter on b that a calls to show b still serves it."""

    def __init__(self, cluster: Cluster, a_timeout: float = 5.0, b_timeout: float = 2.0) -> None:
        self.cluster = cluster
        self.a = cluster.start(1, connect_timeout=a_timeout)
        self.b = cluster.start(2, max_message_size=4096, connect_timeout=b_timeout)
        cluster.route(self.a, self.b)
        self.b.spawn_register("counter", Counter)
        self.calls = 0
        self.names = itertools.count(1)
        self.round_trip()

    def round_trip(self) -> None:
        self.calls += 1
        assert self.a.call(ProcessID("counter", self.b.name), "incr") == self.calls

    def connect(self) -> RawPeer:
        peer = RawPeer()
        host, port = self.b.network()._listeners[0].address
        self.a.network().transport.connect(host, port, lambda: peer)
        self.cluster.run_until(lambda: peer.stream is not None)
        return peer

    def handshake(self) -> RawPeer:
        """A raw stream past a real handshake: b takes it for node ``rawN@rawhost``."""
        return self.dial_as(handshake.NodeInfo(name=f"raw{next(self.names)}@rawhost", creation=1))[0]

    def dial_as(self, info: handshake.NodeInfo, join: str | None = None) -> tuple[RawPeer, handshake.Accepted]:
        """A raw stream past a real handshake as the node ``info`` says (a JOIN of the
        connection ``join`` if given), and what b accepted."""
        peer = self.connect()
        dialer = handshake.Dialer(info, COOKIE, expect=str.__str__(self.b.name), join=join)
        accepted = None
        while True:
            assert peer.stream is not None
            out = dialer.data_to_send()
            if out:
                peer.stream.write(out)
            if dialer.done:
                assert isinstance(accepted, handshake.Accepted)
                return peer, accepted
            self.cluster.run_until(lambda: peer.received or peer.lost)
            assert not peer.lost, "b closed a good handshake"
            data = bytes(peer.received)
            peer.received.clear()
            for event in dialer.receive_data(data):
                assert isinstance(event, handshake.Accepted), event
                accepted = event

    def logged(self, *words: str) -> int:
        return sum(1 for t in self.b.captured.texts() if all(w in t for w in words))

    def closed_and_logged(self, peer: RawPeer, *words: str, before: int) -> None:
        self.cluster.run_until(lambda: peer.lost)
        self.cluster.run_until(lambda: self.logged(*words) > before)
        self.round_trip()


def test_a_stalled_handshake_is_closed_by_the_acceptor(cluster):
    """A peer that connects and sends half a HELLO, then nothing: the acceptor closes it
    once the connect timeout has passed (it held the stream for ever)."""
    f = Fixture(cluster, b_timeout=0.5)
    before = f.logged("refused a connection")
    peer = f.connect()
    hello = handshake.Dialer(handshake.NodeInfo(name="half@rawhost", creation=1), COOKIE).data_to_send()
    assert peer.stream is not None
    peer.stream.write(hello[: len(hello) // 2])
    f.closed_and_logged(peer, "refused a connection", before=before)
    silent = f.connect()  # and one that sends nothing at all
    f.closed_and_logged(silent, "refused a connection", before=before + 1)


#: bytes no frame or handshake message can start with, more than either may be long: sent
#: after the garbage, they end whatever the garbage began (a frame or message still
#: waiting for its body) with a malformed one, so every example ends with a bad link
TRAILER = b"\xff" * (4096 + handshake.MAX_BODY + 16)


def _hello() -> bytes:
    return handshake.Dialer(handshake.NodeInfo(name="fuzz@rawhost", creation=1), COOKIE).data_to_send()


def test_garbage_before_the_handshake(cluster):
    f = Fixture(cluster)
    hello = _hello()

    @FEW
    @given(st.one_of(
        st.binary(min_size=1, max_size=300),  # anything
        st.tuples(st.integers(0, len(hello)), st.binary(max_size=100)).map(lambda t: hello[:t[0]] + t[1]),
    ))
    def case(garbage: bytes) -> None:
        before = f.logged("refused a connection")
        peer = f.connect()
        assert peer.stream is not None
        peer.stream.write(garbage + TRAILER)
        f.closed_and_logged(peer, "refused a connection", before=before)

    case()


def test_truncated_handshakes_closed_by_the_peer(cluster):
    """A HELLO cut short, then the peer closes: refused as truncated, logged."""
    f = Fixture(cluster)
    hello = _hello()
    for cut in (1, 3, len(hello) // 2, len(hello) - 1):
        before = f.logged("refused a connection")
        peer = f.connect()
        assert peer.stream is not None
        peer.stream.write(hello[:cut])
        peer.stream.close()
        f.closed_and_logged(peer, "refused a connection", before=before)


def test_a_wrong_cookie_past_the_first_message(cluster):
    f = Fixture(cluster)
    before = f.logged("refused a connection")
    peer = f.connect()
    dialer = handshake.Dialer(handshake.NodeInfo(name="intruder@rawhost", creation=1), "not-the-cookie")
    assert peer.stream is not None
    peer.stream.write(dialer.data_to_send())
    f.cluster.run_until(lambda: peer.received)
    dialer.receive_data(bytes(peer.received))
    peer.stream.write(dialer.data_to_send())
    f.closed_and_logged(peer, "refused a connection", before=before)


def test_an_oversized_frame_closes_that_link(cluster):
    f = Fixture(cluster)
    before = f.logged("closed")
    peer = f.handshake()
    to = PID(f.b.name, 1000, f.b.creation)
    frame = enp.encode(enp.SendPID(PID("raw@rawhost", 1, 1), to, "x" * 10_000, 0))
    assert len(frame) > 4096  # b's limit
    assert peer.stream is not None
    peer.stream.write(frame)
    f.closed_and_logged(peer, "closed", "exceeds the limit", before=before)
    peer = f.handshake()  # a header claiming 4 GiB allocates nothing and closes the link too
    assert peer.stream is not None
    peer.stream.write(bytes([enp.MAGIC, enp.VERSION]) + b"\xff\xff\xff\xff" + b"\x00\x01")
    f.closed_and_logged(peer, "closed", "exceeds the limit", before=before + 1)


def test_malformed_frames_after_a_handshake(cluster):
    f = Fixture(cluster)
    types = sorted(enp.FRAME_TYPES)

    def framed(t: tuple[int, int, bytes]) -> bytes:
        ftype, order, body = t
        return bytes([enp.MAGIC, enp.VERSION]) + (8 + len(body)).to_bytes(4, "big") + bytes([order, ftype]) + body

    @FEW
    @given(st.one_of(
        st.binary(min_size=1, max_size=300),  # anything
        st.tuples(st.sampled_from(types), st.integers(0, 255), st.binary(max_size=200)).map(framed),
        st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=200)).map(framed),
    ))
    def case(garbage: bytes) -> None:
        before = f.logged("link to", "closed")
        peer = f.handshake()
        assert peer.stream is not None
        peer.stream.write(garbage + TRAILER)
        f.closed_and_logged(peer, "link to", "closed", before=before)

    case()


def test_a_refusal_that_comes_after_the_handshake_is_logged_as_one(cluster):
    """A peer whose REFUSE went out late (a slow writer: it had given up on a handshake
    this side had already finished) sends it where ENP frames are expected.  The link
    closes as for a bad frame, and the log says what the peer said, not "bad magic byte"."""
    f = Fixture(cluster)
    before = f.logged("refused it after the handshake", "HandshakeTruncated", "aborted in state accepted")
    peer = f.handshake()
    assert peer.stream is not None
    peer.stream.write(handshake._frame(handshake.REFUSE, {"reason": "HandshakeTruncated",
                                                          "text": "handshake aborted in state accepted"}))
    f.closed_and_logged(peer, "refused it after the handshake", "HandshakeTruncated", "aborted in state accepted",
                        before=before)
    assert not f.logged("bad magic byte 87")


def test_late_refusal_reads_only_a_whole_refuse():
    refuse = handshake._frame(handshake.REFUSE, {"reason": "BadCookie", "text": "wrong\ncookie"})
    assert handshake.late_refusal(refuse) == repr("BadCookie: wrong\ncookie")  # quoted: one log line
    assert handshake.late_refusal(memoryview(refuse + b"more")) == repr("BadCookie: wrong\ncookie")
    assert handshake.late_refusal(refuse[:-1]) is None  # cut short
    assert handshake.late_refusal(handshake._frame(handshake.HELLO, {"reason": "x"})) is None
    assert handshake.late_refusal(bytes([enp.MAGIC]) + refuse[1:]) is None
    assert handshake.late_refusal(refuse[:5] + b"\xc1" * (len(refuse) - 5)) is None  # not msgpack
    odd = handshake._frame(handshake.REFUSE, {"reason": 1})
    assert handshake.late_refusal(odd) == repr("HandshakeError: no reason given")


class Liar(RawPeer):
    """An acceptor that answers every dial with the same bytes."""

    def __init__(self, answer: bytes) -> None:
        super().__init__()
        self.answer = answer

    def data_received(self, data: memoryview) -> None:
        super().data_received(data)
        if self.stream is not None and not self.stream.closing:
            self.stream.write(self.answer)


def test_a_dialer_meeting_garbage_fails_that_dial_and_serves_on(cluster):
    """The other way round: node a dials something that answers garbage (or a cut
    CHALLENGE): the dial fails with NoConnection or Timeout, logged, and a keeps working."""
    f = Fixture(cluster, a_timeout=0.5)
    liar_node = cluster.start(3)  # gives the liar a host and a port of its own
    host, _ = liar_node.network()._listeners[0].address
    answers = iter([b"garbage", b"\xff" * 5000, _hello(), _hello()[:5]])
    for i, answer in enumerate(answers):
        listener = liar_node.network().transport.listen(host, 0 if cluster.name == "asyncio" else 12000 + i,
                                                        lambda answer=answer: Liar(answer))
        lhost, lport = listener.address
        name = f"liar{i}@{lhost}" if cluster.name == "asyncio" else f"liar{i}@host3"
        f.a.network().add_route(f"^{name}$", NetworkRoute(lhost, lport))
        with pytest.raises((NoConnection, Timeout)):  # Timeout: a's connect_timeout, for the cut answer
            f.a.call(ProcessID("x", name), "hello", timeout=30)
        listener.close()
        f.round_trip()


def test_a_peer_cannot_speak_for_another_node(cluster):
    """A connected peer sends a Terminate frame and an event about targets of *another*
    node: each closes that peer's link (logged), the local watchers and subscribers of
    those targets hear nothing, and what the other node itself says still arrives."""
    f = Fixture(cluster)
    a, b = f.a, f.b
    journal: list = []

    class Listener(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            journal.append(message)

        def handle_event(self, message: Any) -> None:
            journal.append(message)

        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            return self.monitor(request[1])

    class Producer(Actor):
        def init(self) -> None:
            self.token = self.register_event("news")

        def handle_message(self, from_: Any, message: Any) -> None:
            self.send_event("news", self.token, message)

    target = a.spawn(Counter)
    producer = a.spawn(Producer)
    listener = b.spawn(Listener)
    b.call(listener, ("monitor", target))
    b.call(listener, ("monitor", Event("news", a.name)))
    f.cluster.run_until(lambda: target in a._pubsub._monitors and Event("news", a.name) in a._pubsub._monitors)
    for forged in (enp.TerminatePID(target, ValueError("forged")),
                   enp.SendEvent(producer, Event("news", a.name), 1, "forged", 0)):
        impostor = f.handshake()
        assert impostor.stream is not None
        before = f.logged("closed", "about", "speaks only of its own")
        impostor.stream.write(enp.encode(forged))
        f.closed_and_logged(impostor, "closed", "about", "speaks only of its own", before=before)
    assert journal == []
    a.send(producer, "real")
    f.cluster.run_until(lambda: journal)
    a.send_exit(target, ValueError("real end"))
    f.cluster.run_until(lambda: len(journal) == 2)
    assert isinstance(journal[0], MessageEvent) and journal[0].message == "real"
    assert isinstance(journal[1], MessageDownPID) and "real end" in str(journal[1].reason)


#: a REFUSE text that, written as it is, would make log lines of its own
FORGED = "bye\n2026-01-01 00:00:00 CRITICAL network: connected to admin@host (creation 1)\r\x1b[2K"


def test_a_refusals_text_cannot_make_log_lines_of_its_own(cluster):
    """The text of a peer's REFUSE (anyone's who reaches a port, before any cookie is
    checked) is shown with its control characters escaped, in the acceptor's line about
    a dialer that gave up and in a dialer's failed dial and its error: written as it was,
    a newline in it forged whole log lines, at the rate a prober could connect."""
    f = Fixture(cluster, a_timeout=0.5)
    escaped = FORGED.replace("\n", "\\n").replace("\r", "\\r").replace("\x1b", "\\x1b")
    refuse = handshake._frame(handshake.REFUSE, {"reason": "HandshakeTruncated", "text": FORGED})
    peer = f.connect()
    assert peer.stream is not None
    peer.stream.write(_hello() + refuse)
    f.closed_and_logged(peer, "the dialer gave up", escaped, before=0)
    liar_node = cluster.start(3)
    host, _ = liar_node.network()._listeners[0].address
    listener = liar_node.network().transport.listen(host, 0 if cluster.name != "sim" else 12000, lambda: Liar(refuse))
    lhost, lport = listener.address
    name = f"liar@{lhost}" if cluster.name != "sim" else "liar@host3"
    f.a.network().add_route(f"^{name}$", NetworkRoute(lhost, lport))
    with pytest.raises(NoConnection) as failed:
        f.a.call(ProcessID("x", name), "hello", timeout=30)
    assert escaped in str(failed.value)
    assert any("cannot connect to" in t and escaped in t for t in f.a.captured.texts())
    for node in (f.a, f.b):
        assert not any(c in t for t in node.captured.texts() for c in "\n\r\x1b")
    listener.close()
    f.round_trip()


def test_a_refuse_before_any_hello_is_a_probes_refusal_not_a_dialer_giving_up(cluster):
    """A dialer that gives up says so after its HELLO (it sends HELLO at once, even when
    its node stopped before the stream connected), and is logged at info.  A REFUSE
    before any HELLO is no dialer's: it is a refusal, a warning as a probe's silence is
    (a prober's REFUSE "gave up" passed as a dialer's, at info)."""
    f = Fixture(cluster)
    refuse = handshake._frame(handshake.REFUSE, {"reason": "HandshakeTruncated", "text": "node x@y stopped"})
    before = f.logged("refused a connection", "node x@y stopped")
    peer = f.connect()
    assert peer.stream is not None
    peer.stream.write(refuse)
    f.closed_and_logged(peer, "refused a connection", "node x@y stopped", before=before)
    assert not f.logged("the dialer gave up")
    peer = f.connect()  # after a HELLO it is the dialer's give-up, at info
    assert peer.stream is not None
    peer.stream.write(_hello() + refuse)
    f.closed_and_logged(peer, "the dialer gave up", "node x@y stopped", before=0)


#: a node name that, written as it is, would make log lines of its own (a handshake takes
#: any ``name@host`` past the cookie check)
FORGED_NAME = "evil\n2026-01-01 00:00:00 CRITICAL network: all clear\r\x1b[2K@rawhost"


def _escaped(text: str) -> str:
    return text.replace("\n", "\\n").replace("\r", "\\r").replace("\x1b", "\\x1b")


def test_what_a_peer_says_past_the_cookie_cannot_make_log_lines_of_its_own(cluster):
    """A peer that knows the cookie still chooses words that end up in b's log lines: its
    node name (in "connected to", "disconnected from"), the text of the error its Ack
    gives an important send of b (in "was not delivered").  Written as they were, a
    newline in them forged whole lines and a terminal escape rewrote the one before.  A
    node name with such characters is refused in the handshake, the refusal saying so
    escaped; the rest is shown with its control characters escaped, as a REFUSE's text is."""
    f = Fixture(cluster)
    b = f.b
    forged = handshake.NodeInfo(name="evil@rawhost", creation=1)
    object.__setattr__(forged, "name", FORGED_NAME)  # (NodeInfo refuses it: forged past its check)
    before = f.logged("refused a connection", "unprintable")
    forger = f.connect()
    dialer = handshake.Dialer(forged, COOKIE, expect=str.__str__(b.name))
    while not forger.lost:  # the handshake as far as b lets it go
        assert forger.stream is not None
        out = dialer.data_to_send()
        if out:
            forger.stream.write(out)
        f.cluster.run_until(lambda: forger.received or forger.lost)
        data = bytes(forger.received)
        forger.received.clear()
        events = dialer.receive_data(data)
        assert not [e for e in events if isinstance(e, handshake.Accepted)], "b accepted a forged name"
    f.closed_and_logged(forger, "refused a connection", "unprintable", before=before)
    assert FORGED_NAME not in b.network()._connections

    name = "mallory@rawhost"
    peer, _ = f.dial_as(handshake.NodeInfo(name=name, creation=1))
    assert peer.stream is not None
    f.cluster.run_until(lambda: name in b.network()._connections)
    remote = PID(name, 5, 1)

    class Sender(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            self.send_important(remote, message)  # not awaited: a failure is logged

    b.send(b.spawn(Sender), "hello")
    codec = enp.LinkCodec(name, 1, str.__str__(b.name), b.creation, peer_max_message_size=4096)
    sent: list[Any] = []

    def arrived() -> bool:
        sent.extend(x for x in codec.feed(bytes(peer.received)) if type(x) is enp.SendPID)
        peer.received.clear()
        return bool(sent)

    f.cluster.run_until(arrived)
    (important,) = sent
    codec.send(enp.Ack(remote, important.from_, important.ref, ProcessUnknown(FORGED)))
    peer.stream.write(bytes(codec.flush()))
    f.cluster.run_until(lambda: f.logged("was not delivered"))
    peer.stream.close()
    f.cluster.run_until(lambda: f.logged("disconnected from"))
    assert f.logged("connected to", name) == 1
    assert f.logged("disconnected from", name) == 1
    assert f.logged("was not delivered", _escaped(FORGED)) == 1
    assert not [t for t in b.captured.texts() if any(c in t for c in "\n\r\x1b")]
    f.round_trip()


def test_identifiers_a_peer_sends_cannot_make_log_lines_of_their_own(cluster):
    """A peer's message reaches a process's own lines: an Actor that does not handle it
    logs "unhandled message from ...: <its repr>".  A str in it is shown escaped (its
    repr), but an Atom, a ProcessID or an Event printed its text as it was, so a name
    with a newline in a message forged lines there.  Identifiers show their text with
    control characters escaped."""
    f = Fixture(cluster)
    a, b = f.a, f.b
    b.spawn_register("plain", Actor)  # handles nothing: logs what it gets
    forged = [Atom(FORGED), ProcessID(FORGED, b.name), Event(FORGED, b.name)]
    a.send(ProcessID("plain", b.name), forged)
    f.cluster.run_until(lambda: f.logged("unhandled message from"))
    (line,) = [t for t in b.captured.texts() if "unhandled message from" in t]
    assert line.count(_escaped(FORGED)) == 3, line
    assert not [t for t in b.captured.texts() if any(c in t for c in "\n\r\x1b")]
    f.round_trip()

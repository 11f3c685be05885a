"""Handshake: a successful exchange over in-memory byte pipes, and a clear refusal for each failure."""

from __future__ import annotations

import random
import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ergo.gen import errors as gerrors
from ergo.gen.ids import PID
from ergo.wire import enp
from ergo.wire import handshake as hs

COOKIE = "secret cookie"
NODE_A = hs.NodeInfo("a@localhost", 1700000001, pool_size=3, max_message_size=1 << 20)
NODE_B = hs.NodeInfo("b@localhost", 1700000002, pool_size=2)


def seeded(seed: int):
    rng = random.Random(seed)
    return rng.randbytes


class Pipe:
    """Two handshake objects wired back to back; records every byte that crossed."""

    def __init__(self, dialer: hs.Dialer, acceptor: hs.Acceptor, chunk: int | None = None) -> None:
        self.dialer, self.acceptor, self.chunk = dialer, acceptor, chunk
        self.events_d: list = []
        self.events_a: list = []
        self.wire = b""

    def _deliver(self, data: bytes, to: hs._Handshake, events: list) -> None:
        self.wire += data
        step = self.chunk or max(1, len(data))
        for i in range(0, len(data), step):
            if to.done and isinstance(to.result, hs.Accepted):
                break
            events += to.receive_data(data[i : i + step])

    def run(self, extra_after_ready: bytes = b"") -> Pipe:
        for _ in range(10):
            out_d = self.dialer.data_to_send()
            if out_d and self.dialer.done and isinstance(self.dialer.result, hs.Accepted):
                out_d += extra_after_ready
                extra_after_ready = b""
            if out_d and not self.acceptor.done:
                self._deliver(out_d, self.acceptor, self.events_a)
            out_a = self.acceptor.data_to_send()
            if out_a and not self.dialer.done:
                self._deliver(out_a, self.dialer, self.events_d)
            if not out_d and not out_a:
                break
        return self


def test_successful_exchange_gives_both_sides_the_peers_info():
    pipe = Pipe(hs.Dialer(NODE_A, COOKIE, expect="b@localhost"), hs.Acceptor(NODE_B, COOKIE)).run()
    (acc_d,) = pipe.events_d
    (acc_a,) = pipe.events_a
    assert acc_d.peer == NODE_B and acc_a.peer == NODE_A
    assert acc_d.connection_id == acc_a.connection_id and acc_d.connection_id
    assert acc_d.pool_size == acc_a.pool_size == 2  # the smaller wish
    assert not acc_d.join and not acc_a.join
    assert pipe.dialer.state == pipe.acceptor.state == "established"


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 50])
def test_exchange_succeeds_whatever_the_split(chunk):
    pipe = Pipe(hs.Dialer(NODE_A, COOKIE), hs.Acceptor(NODE_B, COOKIE), chunk=chunk).run()
    assert [type(e) for e in pipe.events_d + pipe.events_a] == [hs.Accepted, hs.Accepted]


def test_cookie_never_crosses_the_wire():
    pipe = Pipe(hs.Dialer(NODE_A, COOKIE), hs.Acceptor(NODE_B, COOKIE)).run()
    assert COOKIE.encode() not in pipe.wire and b"cookie" not in pipe.wire


def test_enp_bytes_sent_right_after_ready_arrive_as_the_tail():
    frame = enp.encode(enp.SendPID(PID("a@localhost", 1001), PID("b@localhost", 1001), "first"))
    pipe = Pipe(hs.Dialer(NODE_A, COOKIE), hs.Acceptor(NODE_B, COOKIE)).run(extra_after_ready=frame)
    (accepted,) = pipe.events_a
    assert accepted.tail == frame
    assert enp.FrameDecoder().feed(accepted.tail)[0].message == "first"


def test_same_seed_gives_the_same_bytes_for_simulation():
    one = Pipe(
        hs.Dialer(NODE_A, COOKIE, random=seeded(1)), hs.Acceptor(NODE_B, COOKIE, random=seeded(2))
    ).run()
    two = Pipe(
        hs.Dialer(NODE_A, COOKIE, random=seeded(1)), hs.Acceptor(NODE_B, COOKIE, random=seeded(2))
    ).run()
    assert one.wire == two.wire


def test_join_adds_a_pool_link_to_a_known_connection():
    first = Pipe(hs.Dialer(NODE_A, COOKIE), hs.Acceptor(NODE_B, COOKIE)).run()
    conn_id = first.events_a[0].connection_id
    peers = {"a@localhost": conn_id}
    pipe = Pipe(hs.Dialer(NODE_A, COOKIE, join=conn_id), hs.Acceptor(NODE_B, COOKIE, peers=peers)).run()
    (acc_d,) = pipe.events_d
    (acc_a,) = pipe.events_a
    assert acc_d.join and acc_a.join and acc_d.connection_id == acc_a.connection_id == conn_id


def refusals(pipe: Pipe) -> tuple[hs.Refused | None, hs.Refused | None]:
    assert not any(isinstance(e, hs.Accepted) for e in pipe.events_d + pipe.events_a)
    d = pipe.events_d[0] if pipe.events_d else None
    a = pipe.events_a[0] if pipe.events_a else None
    return d, a


def test_join_of_an_unknown_connection_is_refused():
    pipe = Pipe(
        hs.Dialer(NODE_A, COOKIE, join="nope"), hs.Acceptor(NODE_B, COOKIE, peers={"a@localhost": "x"})
    ).run()
    d, a = refusals(pipe)
    assert (
        isinstance(a.reason, hs.UnknownConnection)
        and isinstance(d.reason, hs.UnknownConnection)
        and d.by_peer
    )


def test_wrong_cookie_is_refused_on_both_sides():
    pipe = Pipe(hs.Dialer(NODE_A, COOKIE), hs.Acceptor(NODE_B, "another cookie")).run()
    d, a = refusals(pipe)
    assert isinstance(a.reason, hs.BadCookie) and not a.by_peer
    assert isinstance(d.reason, hs.BadCookie) and d.by_peer


def test_acceptor_that_does_not_know_the_cookie_is_refused_by_the_dialer():
    dialer = hs.Dialer(NODE_A, COOKIE)
    dialer.data_to_send()
    nonce_a = b"\x01" * hs.NONCE_SIZE
    dialer.receive_data(hs._frame(hs.CHALLENGE, {"nonce": nonce_a}))
    dialer.data_to_send()  # INTRODUCE, which a fake acceptor cannot check and answers anyway
    info_a = NODE_B._pack(connection_id="c1")
    bad_mac = hs._mac(b"guess", b"ergo-accept", dialer._nonce, nonce_a, dialer._intro, info_a)
    (refused,) = dialer.receive_data(hs._frame(hs.ACCEPT, {"info": info_a, "mac": bad_mac}))
    assert isinstance(refused.reason, hs.BadCookie) and not refused.by_peer


def test_replayed_introduction_is_refused_because_the_nonce_changed():
    first = Pipe(hs.Dialer(NODE_A, COOKIE), hs.Acceptor(NODE_B, COOKIE))
    hello = first.dialer.data_to_send()
    first.acceptor.receive_data(hello)
    first.dialer.receive_data(first.acceptor.data_to_send())
    introduce = first.dialer.data_to_send()
    victim = hs.Acceptor(NODE_B, COOKIE)
    victim.receive_data(hello)
    (refused,) = victim.receive_data(introduce)
    assert isinstance(refused.reason, hs.BadCookie)


def test_wrong_handshake_version_is_refused():
    acceptor = hs.Acceptor(NODE_B, COOKIE)
    (refused,) = acceptor.receive_data(struct.pack(">BBBH", 87, 9, 1, 0))
    assert isinstance(refused.reason, hs.VersionMismatch) and "version 9" in str(refused.reason)
    dialer = hs.Dialer(NODE_A, COOKIE)
    (refused,) = dialer.receive_data(struct.pack(">BBBH", 87, 2, 2, 0))
    assert isinstance(refused.reason, hs.VersionMismatch)


def test_wrong_enp_version_is_refused_after_authentication():
    old = hs.NodeInfo("a@localhost", 1, version=enp.VERSION + 1)
    d, a = refusals(Pipe(hs.Dialer(old, COOKIE), hs.Acceptor(NODE_B, COOKIE)).run())
    assert isinstance(a.reason, hs.VersionMismatch) and isinstance(d.reason, hs.VersionMismatch)
    old_b = hs.NodeInfo("b@localhost", 1, version=enp.VERSION + 1)
    d, a = refusals(Pipe(hs.Dialer(NODE_A, COOKIE), hs.Acceptor(old_b, COOKIE)).run())
    assert isinstance(a.reason, hs.VersionMismatch) and isinstance(d.reason, hs.VersionMismatch) and d.by_peer


def test_duplicate_name_already_connected_is_refused():
    pipe = Pipe(hs.Dialer(NODE_A, COOKIE), hs.Acceptor(NODE_B, COOKIE, peers={"a@localhost": "c1"})).run()
    d, a = refusals(pipe)
    assert isinstance(a.reason, hs.DuplicateName) and isinstance(d.reason, hs.DuplicateName)


def test_a_second_introduction_while_one_from_that_name_is_accepted_is_refused():
    pipe = Pipe(hs.Dialer(NODE_A, COOKIE), hs.Acceptor(NODE_B, COOKIE, accepting={"a@localhost"})).run()
    d, a = refusals(pipe)
    assert isinstance(a.reason, hs.DuplicateName) and "in its handshake" in str(a.reason)
    assert isinstance(d.reason, hs.DuplicateName)


def test_an_introduction_of_a_later_run_than_the_connected_one_is_accepted_when_stale_says_so():
    asked: list[tuple[str, int]] = []

    def stale(name: str, creation: int) -> bool:
        asked.append((name, creation))
        return creation > 1

    later = hs.NodeInfo("a@localhost", 2)
    acceptor = hs.Acceptor(NODE_B, COOKIE, peers={"a@localhost": "c1"}, stale=stale)
    Pipe(hs.Dialer(later, COOKIE), acceptor).run()
    assert acceptor.introduced and acceptor.peer_creation == 2 and asked == [("a@localhost", 2)]
    same = hs.Acceptor(NODE_B, COOKIE, peers={"a@localhost": "c1"}, stale=stale)
    d, a = refusals(Pipe(hs.Dialer(hs.NodeInfo("a@localhost", 1), COOKIE), same).run())
    assert isinstance(a.reason, hs.DuplicateName)


def test_an_acceptor_says_when_it_took_the_introduction_and_whether_it_crossed():
    acceptor = hs.Acceptor(NODE_B, COOKIE, dialing={"a@localhost"})
    assert not acceptor.introduced
    Pipe(hs.Dialer(NODE_A, COOKIE), acceptor).run()
    crossed = hs.keeps_own_dial("a@localhost", "b@localhost")  # b loses when a keeps its own
    assert acceptor.introduced is crossed and acceptor.crossed is crossed


def test_peer_using_our_own_name_is_refused():
    twin = hs.NodeInfo("b@localhost", 5)
    d, a = refusals(Pipe(hs.Dialer(twin, COOKIE), hs.Acceptor(NODE_B, COOKIE)).run())
    assert isinstance(a.reason, hs.DuplicateName) and isinstance(d.reason, hs.DuplicateName) and d.by_peer


def test_dialer_reaching_an_unexpected_node_refuses():
    d, a = refusals(Pipe(hs.Dialer(NODE_A, COOKIE, expect="c@localhost"), hs.Acceptor(NODE_B, COOKIE)).run())
    assert isinstance(d.reason, hs.UnexpectedPeer) and isinstance(a.reason, hs.UnexpectedPeer) and a.by_peer


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x00",
        b"\x16\x03\x01\x02\x00",
        struct.pack(">BBBH", 87, 1, 1, 5) + b"\xc1" * 5,
    ],
)
def test_garbage_is_refused_and_answered_with_a_refuse_message(garbage):
    acceptor = hs.Acceptor(NODE_B, COOKIE)
    (refused,) = acceptor.receive_data(garbage)
    assert isinstance(refused.reason, hs.MalformedHandshake)
    reply = acceptor.data_to_send()
    assert reply[0] == hs.MAGIC and reply[2] == hs.REFUSE
    assert acceptor.receive_data(b"more garbage") == []  # and stays refused


def test_oversized_handshake_message_is_refused_without_waiting_for_it():
    acceptor = hs.Acceptor(NODE_B, COOKIE)
    (refused,) = acceptor.receive_data(struct.pack(">BBBH", 87, 1, 1, 60000))
    assert isinstance(refused.reason, hs.MalformedHandshake) and "max" in str(refused.reason)


def test_message_out_of_turn_is_refused():
    acceptor = hs.Acceptor(NODE_B, COOKIE)
    (refused,) = acceptor.receive_data(hs._frame(hs.READY, {"mac": b"\x00" * 32}))
    assert isinstance(refused.reason, hs.MalformedHandshake) and "expected HELLO" in str(refused.reason)


def test_enp_frames_before_ready_are_refused_not_accepted():
    dialer, acceptor = hs.Dialer(NODE_A, COOKIE), hs.Acceptor(NODE_B, COOKIE)
    acceptor.receive_data(dialer.data_to_send())
    dialer.receive_data(acceptor.data_to_send())
    acceptor.receive_data(dialer.data_to_send())  # INTRODUCE; the acceptor now waits for READY
    frame = enp.encode(enp.Heartbeat(1))
    (refused,) = acceptor.receive_data(frame)
    assert isinstance(refused.reason, hs.MalformedHandshake)


@pytest.mark.parametrize("stop_after", [0, 1, 2, 3])
def test_truncated_exchange_is_refused_when_the_connection_closes(stop_after):
    dialer, acceptor = hs.Dialer(NODE_A, COOKIE), hs.Acceptor(NODE_B, COOKIE)
    steps = [
        lambda: acceptor.receive_data(dialer.data_to_send()),
        lambda: dialer.receive_data(acceptor.data_to_send()),
        lambda: acceptor.receive_data(dialer.data_to_send()),
        lambda: dialer.receive_data(acceptor.data_to_send()[:-3]),  # ACCEPT cut short
    ]
    for step in steps[:stop_after]:
        step()
    (lost_a,) = acceptor.connection_lost()
    (lost_d,) = dialer.connection_lost()
    assert isinstance(lost_a.reason, hs.HandshakeTruncated) and isinstance(
        lost_d.reason, hs.HandshakeTruncated
    )
    assert acceptor.connection_lost() == []  # a second close changes nothing


def test_abort_refuses_with_the_given_reason_for_a_timeout():
    dialer = hs.Dialer(NODE_A, COOKIE)
    (refused,) = dialer.abort(hs.HandshakeTruncated("timed out after 5 s"))
    assert refused.reason == hs.HandshakeTruncated("timed out after 5 s") and dialer.done


def test_feeding_after_success_is_a_usage_error():
    pipe = Pipe(hs.Dialer(NODE_A, COOKIE), hs.Acceptor(NODE_B, COOKIE)).run()
    with pytest.raises(gerrors.Incorrect, match="FrameDecoder"):
        pipe.acceptor.receive_data(b"x")


def test_refuse_from_peer_with_unknown_reason_is_a_plain_handshake_error():
    dialer = hs.Dialer(NODE_A, COOKIE)
    (refused,) = dialer.receive_data(hs._frame(hs.REFUSE, {"reason": "os.system", "text": 5}))
    assert type(refused.reason) is hs.HandshakeError and refused.by_peer


def test_invalid_node_info_is_refused_at_construction():
    with pytest.raises(gerrors.Incorrect):
        hs.NodeInfo("no-at-sign", 1)
    with pytest.raises(gerrors.Incorrect):
        hs.NodeInfo("a@h", 1, pool_size=0)


def test_a_node_tells_its_heartbeat_timeout_and_one_that_does_not_is_read_as_zero():
    """The optional key ``heartbeat_timeout`` (milliseconds): said, the peer learns it; not
    said (0, or a node from before the key), the introduction's bytes are as before."""
    a = hs.NodeInfo("a@localhost", 1700000001, heartbeat_timeout=5000)
    pipe = Pipe(hs.Dialer(a, COOKIE), hs.Acceptor(NODE_B, COOKIE)).run()
    (acc_a,) = pipe.events_a
    (acc_d,) = pipe.events_d
    assert acc_a.peer.heartbeat_timeout == 5000 and acc_d.peer.heartbeat_timeout == 0
    assert "heartbeat_timeout" not in msgpack.unpackb(NODE_A._pack())
    with pytest.raises(gerrors.Incorrect, match="heartbeat_timeout"):
        hs.NodeInfo("a@h", 1, heartbeat_timeout=-1)


@pytest.mark.parametrize("value", [-1, 1 << 32, 2.5, "5000", None])
def test_an_introduction_with_a_bad_heartbeat_timeout_is_refused_as_malformed(value):
    dialer, acceptor = hs.Dialer(NODE_A, COOKIE), hs.Acceptor(NODE_B, COOKIE)
    acceptor.receive_data(dialer.data_to_send())
    nonce_a = msgpack.unpackb(acceptor.data_to_send()[5:])["nonce"]
    info = msgpack.packb({**msgpack.unpackb(NODE_A._pack()), "heartbeat_timeout": value})
    mac = hs._mac(COOKIE.encode(), b"ergo-introduce", dialer._nonce, nonce_a, info)
    (refused,) = acceptor.receive_data(hs._frame(hs.INTRODUCE, {"info": info, "mac": mac}))
    assert isinstance(refused.reason, hs.MalformedHandshake) and "heartbeat_timeout" in str(refused.reason)


@given(st.binary(max_size=64))
def test_introduction_with_bad_fields_is_refused_as_malformed(info):
    dialer, acceptor = hs.Dialer(NODE_A, COOKIE), hs.Acceptor(NODE_B, COOKIE)
    acceptor.receive_data(dialer.data_to_send())
    nonce_a = msgpack.unpackb(acceptor.data_to_send()[5:])["nonce"]
    mac = hs._mac(COOKIE.encode(), b"ergo-introduce", dialer._nonce, nonce_a, info)
    (refused,) = acceptor.receive_data(hs._frame(hs.INTRODUCE, {"info": info, "mac": mac}))
    assert isinstance(refused.reason, hs.MalformedHandshake)


# -- the cookie (issue 10, item 11) -------------------------------------------------------------


@pytest.mark.parametrize("cookie", ["", b"", None, 5])
def test_a_handshake_never_runs_with_an_empty_or_missing_cookie(cookie):
    with pytest.raises(gerrors.Incorrect, match="non-empty cookie"):
        hs.Dialer(NODE_A, cookie)
    with pytest.raises(gerrors.Incorrect, match="non-empty cookie"):
        hs.Acceptor(NODE_B, cookie)


def test_two_nodes_that_configured_no_cookie_do_not_authenticate_each_other():
    from ergo.gen.options import NetworkOptions

    opts_a, warning_a = NetworkOptions().with_cookie(seeded(1))
    opts_b, warning_b = NetworkOptions(cookie="").with_cookie(seeded(2))
    assert warning_a and warning_b and opts_a.cookie != opts_b.cookie
    pipe = Pipe(hs.Dialer(NODE_A, opts_a.cookie), hs.Acceptor(NODE_B, opts_b.cookie)).run()
    assert [type(e.reason) for e in pipe.events_a] == [hs.BadCookie]


# -- crossing handshakes (issue 10, item 12) ------------------------------------------------------


def test_keeps_own_dial_is_erlangs_rule_the_greater_name_keeps_its_dial():
    assert hs.keeps_own_dial("b@h", "a@h") and not hs.keeps_own_dial("a@h", "b@h")
    assert hs.keeps_own_dial("a@host2", "a@host1")


class Layer:
    """The part of a connection layer the handshake needs: who is connected, who is being dialed.

    It follows the contract of ``hs.Acceptor``: it never dials a name that is connected,
    being dialed, or has an acceptor past its introduction.
    """

    def __init__(self, name: str, seed: int) -> None:
        self.info = hs.NodeInfo(name, seed)
        self.random = seeded(seed)
        self.peers: dict[str, str] = {}
        self.dialing: set[str] = set()
        self.dials: dict[str, hs.Dialer] = {}
        self.acceptors: list[hs.Acceptor] = []
        self.kept: list[tuple[str, str]] = []  # (peer, connection id) of every connection established
        self.losses: list[type] = []  # why each of its handshakes that did not end in a connection ended

    def may_dial(self, peer: str) -> bool:
        busy = any(a.peer_name == peer and not a.done for a in self.acceptors)
        return peer not in self.peers and peer not in self.dialing and not busy

    def dial(self, peer: str) -> hs.Dialer:
        dialer = hs.Dialer(self.info, COOKIE, expect=peer, random=self.random)
        self.dialing.add(peer)
        self.dials[peer] = dialer
        return dialer

    def accept(self) -> hs.Acceptor:
        acceptor = hs.Acceptor(self.info, COOKIE, peers=self.peers, dialing=self.dialing, random=self.random)
        self.acceptors.append(acceptor)
        return acceptor

    def on(self, side: hs._Handshake, events: list) -> None:
        for event in events:
            peer = side.expect if isinstance(side, hs.Dialer) else side.peer_name
            if isinstance(side, hs.Dialer):
                self.dialing.discard(peer)
            if isinstance(event, hs.Refused):
                self.losses.append(type(event.reason))
                continue
            self.peers[event.peer.name] = event.connection_id
            self.kept.append((event.peer.name, event.connection_id))
            if event.crossed:  # the peer's dial won: end ours, which tells the peer too
                self.on(self.dials[peer], self.dials[peer].abort(hs.SimultaneousConnect("crossed")))


class Cluster:
    """Two layers and the byte streams between them, delivered in whatever order a test picks."""

    def __init__(self) -> None:
        self.a, self.b = Layer("a@localhost", 1), Layer("b@localhost", 2)
        self.streams: list[tuple[Layer, hs._Handshake, Layer, hs._Handshake, bytearray]] = []

    def dial(self, src: Layer, dst: Layer) -> None:
        dialer, acceptor = src.dial(dst.info.name), dst.accept()
        self.streams.append((src, dialer, dst, acceptor, bytearray()))  # dialer -> acceptor
        self.streams.append((dst, acceptor, src, dialer, bytearray()))  # acceptor -> dialer

    def pending(self) -> list[int]:
        for _, sender, _, _, buf in self.streams:
            buf += sender.data_to_send()
        return [i for i, s in enumerate(self.streams) if s[4]]

    def deliver(self, i: int) -> None:
        _, _, layer, receiver, buf = self.streams[i]
        data = bytes(buf)
        buf.clear()
        if receiver.done:
            return  # a closed connection: bytes after the end are dropped, as a transport would
        layer.on(receiver, receiver.receive_data(data))


def _settle(cluster: Cluster, choose, late_dial_at: int | None) -> None:
    for step in range(200):
        if step == late_dial_at and cluster.b.may_dial("a@localhost"):
            cluster.dial(cluster.b, cluster.a)
        pending = cluster.pending()
        if not pending:
            if late_dial_at is not None and step < late_dial_at:
                continue
            return
        cluster.deliver(pending[choose(len(pending))])
    raise AssertionError("the handshakes never settled")


def _one_shared_connection(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    assert len(a.kept) == 1 and len(b.kept) == 1, (a.kept, b.kept)
    assert a.peers == {"b@localhost": b.peers["a@localhost"]}
    assert set(a.losses) | set(b.losses) <= {hs.SimultaneousConnect, hs.DuplicateName}


def test_crossing_handshakes_in_lockstep_keep_only_the_greater_names_dial():
    cluster = Cluster()
    cluster.dial(cluster.a, cluster.b)
    cluster.dial(cluster.b, cluster.a)
    _settle(cluster, lambda n: 0, None)  # oldest stream first: HELLOs, CHALLENGEs, INTRODUCEs cross
    _one_shared_connection(cluster)
    b_dial = cluster.b.dials["a@localhost"].result
    assert isinstance(b_dial, hs.Accepted) and cluster.a.peers["b@localhost"] == b_dial.connection_id
    a_dial = cluster.a.dials["b@localhost"].result
    assert isinstance(a_dial, hs.Refused) and type(a_dial.reason) is hs.SimultaneousConnect


@given(st.data(), st.none() | st.integers(0, 12))
def test_crossing_handshakes_end_with_one_connection_both_sides_agree_on_whatever_the_timing(data, late):
    cluster = Cluster()
    cluster.dial(cluster.a, cluster.b)
    if late is None:
        cluster.dial(cluster.b, cluster.a)
    _settle(cluster, lambda n: data.draw(st.integers(0, n - 1)), late)
    _one_shared_connection(cluster)

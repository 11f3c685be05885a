"""The handshake at its edges (ergo/wire/handshake.py): what an acceptor may put in ACCEPT,
what a finished handshake keeps, and the NodeInfo it hands over."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import struct

import msgpack
import pytest

from ergo.wire import enp
from ergo.wire import handshake as hs

COOKIE = b"the cookie"
ND, NA = bytes(range(32)), bytes(range(32, 64))


def message(mtype: int, body: dict) -> bytes:
    data = msgpack.packb(body)
    return struct.pack(">BBBH", 87, 1, mtype, len(data)) + data


def mac(label: bytes, *parts: bytes) -> bytes:
    return hmac.new(COOKIE, label + b"".join(parts), hashlib.sha256).digest()


def dialer_waiting_for_accept() -> tuple[hs.Dialer, bytes]:
    """A dialer that said HELLO, got a CHALLENGE built here, and sent INTRODUCE (returned)."""
    d = hs.Dialer(hs.NodeInfo("d@h", 5), COOKIE, random=lambda n: ND[:n])
    d.data_to_send()
    assert d.receive_data(message(hs.CHALLENGE, {"nonce": NA})) == []
    info_d = msgpack.unpackb(d.data_to_send()[5:])["info"]
    return d, info_d


def accept(info_d: bytes, **info) -> bytes:
    info_a = msgpack.packb({"name": "a@h", "creation": 6, "flags": 1, "max_message_size": 0, "pool_size": 3,
                            "version": enp.VERSION, **info})
    return message(hs.ACCEPT, {"info": info_a, "mac": mac(b"ergo-accept", ND, NA, info_d, info_a)})


@pytest.mark.parametrize("connection_id,ok", [
    ("x", True), ("x" * 64, True), ("", False), ("x" * 65, False), (5, False), (None, False),
])
def test_accept_carries_a_connection_id_of_1_to_64_characters(connection_id, ok):
    d, info_d = dialer_waiting_for_accept()
    extra = {} if connection_id is None else {"connection_id": connection_id}
    [result] = d.receive_data(accept(info_d, **extra))
    if ok:
        assert isinstance(result, hs.Accepted) and result.connection_id == connection_id
    else:
        assert isinstance(result, hs.Refused) and isinstance(result.reason, hs.MalformedHandshake)


def test_a_refused_handshake_keeps_none_of_the_peers_bytes():
    a = hs.Acceptor(hs.NodeInfo("a@h", 6), COOKIE, random=lambda n: NA[:n])
    bad_hello = message(hs.HELLO, {"nonce": b"short"})
    following = message(hs.INTRODUCE, {"info": b"x" * 3000, "mac": b"y" * 32})
    [refused] = a.receive_data(bad_hello + following[:2000])
    assert isinstance(refused, hs.Refused)
    assert len(a._in) == 0  # a refused peer's bytes are not held (a leak per hostile connection)
    assert a.receive_data(following[2000:]) == [] and len(a._in) == 0


def test_an_accepted_handshake_hands_over_its_tail_and_keeps_no_copy():
    d, info_d = dialer_waiting_for_accept()
    enp_bytes = b"\x4e\x01" + b"z" * 50
    [accepted] = d.receive_data(accept(info_d, connection_id="c1") + enp_bytes)
    assert accepted.tail == enp_bytes
    assert len(d._in) == 0
    assert d.receive_data(b"") == []


def test_node_info_is_immutable_and_hashable():
    info = hs.NodeInfo("a@h", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.pool_size = 9  # type: ignore[misc]
    assert {info: "peer"}[hs.NodeInfo("a@h", 1)] == "peer"

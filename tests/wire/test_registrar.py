"""Registrar protocol: every message round-trips over a stream and as a datagram; bad bytes are refused."""

from __future__ import annotations

import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ergo.gen import errors as gerrors
from ergo.wire import edf
from ergo.wire import registrar as rg

ROUTE = rg.Route("10.0.0.5", 11144, tls=True, handshake_version=1, proto_version=1)
MESSAGES = [
    rg.Register("a@localhost", (ROUTE, rg.Route("localhost", 11145))),
    rg.RegisterReply(),
    rg.RegisterReply(gerrors.Taken("a@localhost")),
    rg.Unregister("a@localhost"),
    rg.UnregisterReply(),
    rg.UnregisterReply(gerrors.NameUnknown("a@localhost")),
    rg.Resolve("a@localhost"),
    rg.ResolveReply((ROUTE,)),
    rg.ResolveReply((), gerrors.NoRoute("no node a@localhost")),
]

routes = st.builds(
    rg.Route,
    st.text(min_size=1, max_size=20),
    st.integers(1, 65535),
    st.booleans(),
    st.integers(0, 255),
    st.integers(0, 255),
)
names = st.from_regex(r"\A[a-z0-9_]{1,10}@[a-z0-9.]{1,10}\Z")
messages = st.one_of(
    st.builds(rg.Register, names, st.lists(routes, max_size=3).map(tuple)),
    st.builds(rg.RegisterReply, st.none() | st.just(gerrors.Taken("x"))),
    st.builds(rg.Unregister, names),
    st.builds(rg.Resolve, names),
    st.builds(
        rg.ResolveReply, st.lists(routes, max_size=3).map(tuple), st.none() | st.just(gerrors.NoRoute("y"))
    ),
)


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_as_a_datagram(msg):
    assert rg.decode_datagram(rg.encode(msg)) == msg


@given(st.lists(messages, min_size=1, max_size=5), st.integers(1, 9))
def test_stream_decoder_yields_the_same_messages_whatever_the_split(batch, step):
    data = b"".join(map(rg.encode, batch))
    decoder = rg.MessageDecoder()
    got = [m for i in range(0, len(data), step) for m in decoder.feed(data[i : i + step])]
    assert got == batch


def test_taken_comes_back_as_taken():
    reply = rg.decode_datagram(rg.encode(rg.RegisterReply(gerrors.Taken("a@localhost"))))
    assert type(reply.error) is gerrors.Taken and reply.error == gerrors.Taken("a@localhost")


def test_resolve_reply_carries_host_port_tls_and_versions():
    (route,) = rg.decode_datagram(rg.encode(rg.ResolveReply((ROUTE,)))).routes
    assert (route.host, route.port, route.tls, route.handshake_version, route.proto_version) == (
        "10.0.0.5", 11144, True, 1, 1,
    )  # fmt: skip


def test_unknown_error_name_becomes_remote_error():
    body = msgpack.packb([["SomethingNew", "text"]])
    data = struct.pack(">BBBH", rg.MAGIC, rg.VERSION, 45, len(body)) + body
    assert rg.decode_datagram(data).error == edf.RemoteError("SomethingNew", "text")


def _msg(mtype: int, body: bytes, magic: int = rg.MAGIC, version: int = rg.VERSION) -> bytes:
    return struct.pack(">BBBH", magic, version, mtype, len(body)) + body


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x52", "shorter than its 5-byte header"),
        (_msg(44, b"", magic=1), "bad magic byte 1"),
        (_msg(44, b"", version=7), "version 7"),
        (_msg(99, msgpack.packb([])), "unknown registrar message type 99"),
        (_msg(46, b"\xc1"), "not msgpack"),
        (_msg(46, msgpack.packb([])), "array of 1 fields"),
        (_msg(46, msgpack.packb(["nohost"])), "name@host"),
        (_msg(46, msgpack.packb(["a\nforged@h"])), "unprintable"),
        (_msg(44, msgpack.packb(["a@h", [["h", 0, False, 1, 1]]])), "port"),
        (_msg(44, msgpack.packb(["a@h", [["h", 1, 1, 1, 1]]])), "tls"),
        (_msg(44, msgpack.packb(["a@h", 5])), "routes must be an array"),
        (_msg(45, msgpack.packb([["Taken"]])), r"\[name, text\]"),
        (_msg(46, msgpack.packb(["a@h"])) + b"x", "header says"),
    ],
)
def test_bad_datagrams_raise_one_clear_error(data, why):
    with pytest.raises(rg.RegistrarProtocolError, match=why):
        rg.decode_datagram(data)


def test_stream_decoder_stays_failed_after_garbage():
    decoder = rg.MessageDecoder()
    with pytest.raises(rg.RegistrarProtocolError):
        decoder.feed(b"garbage!")
    with pytest.raises(rg.RegistrarProtocolError):
        decoder.feed(rg.encode(rg.Resolve("a@h")))


def test_encoding_refuses_bad_names_and_non_messages():
    with pytest.raises(gerrors.Incorrect):
        rg.encode(rg.Resolve("no-host"))
    with pytest.raises(gerrors.Incorrect):
        rg.encode("resolve")
    with pytest.raises(gerrors.Incorrect):
        rg.Route("h", 70000)

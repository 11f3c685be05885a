"""Hostile values in every field of every wire protocol: each decoder raises only its own error,
with a short message, keeps what it decoded before, and stays failed without piling up.

The values are the ones that broke the decoders (issue 10, items 7 and 9): a list nested a
thousand deep (repr raises RecursionError), an int of more than 4300 digits (repr raises
ValueError), and a megabyte string (a megabyte error message).
"""

from __future__ import annotations

import struct
import tracemalloc

import msgpack
import pytest
from wire_strategies import make_registry, marked

from ergo.gen.ids import PID, Ref
from ergo.wire import edf, enp
from ergo.wire import handshake as hs
from ergo.wire import registrar as rg
from ergo.wire._brief import brief, brief_error

REG = make_registry()
A = PID("a@localhost", 1005, 1)
B = PID("b@localhost", 1010, 2)
REF = Ref("a@localhost", 1, (1, 2, 3))
COOKIE = "cookie"
MAX_MESSAGE = 400  # every error message here must stay this short


def deep_list(depth: int = 1000) -> bytes:
    """msgpack of a list nested ``depth`` deep: 1 KB that repr() cannot print."""
    return b"\x91" * depth + b"\x01"


def huge_int_edf(digits: int = 5000) -> bytes:
    """EDF of an int with ``digits`` decimal digits (str() refuses past 4300)."""
    value = 10**digits
    return msgpack.packb(
        msgpack.ExtType(edf.EXT_BIGINT, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))
    )


LONG_STR = msgpack.packb("x" * 1_000_000)
# raw msgpack snippets that make a field hostile; EDF decoders also get the huge int
PLAIN_HOSTILE = {"deep list": deep_list(), "long str": LONG_STR, "deep map": b"\x81\x01" * 1000 + b"\x01"}
EDF_HOSTILE = {**PLAIN_HOSTILE, "huge int": huge_int_edf()}


def _array(items: list[bytes]) -> bytes:
    return b"\xdc" + struct.pack(">H", len(items)) + b"".join(items)


# -- the bounded description itself -----------------------------------------------------------


def test_brief_describes_hostile_values_in_bounded_space():
    nested: list = []
    for _ in range(5000):
        nested = [nested]
    for value in (nested, 10**5000, -(2**100_000), "y" * 10**6, b"z" * 10**6, {1: 2}, object()):
        assert len(brief(value)) < 100
    assert brief(5) == "5" and brief("ab") == "'ab'" and brief(None) == "None" and brief(2.5) == "2.5"
    assert brief(10**30) == "<int of 100 bits>" and brief([1, 2]) == "<list of 2 items>"


def test_brief_error_survives_an_exception_whose_text_cannot_be_made():
    class Bad(Exception):
        def __str__(self) -> str:
            raise RecursionError

    assert brief_error(Bad()) == "Bad: ?"
    assert len(brief_error(ValueError("v" * 10**6))) < 200


# -- EDF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EDF_HOSTILE))
def test_edf_record_and_error_names_that_are_hostile_are_refused_with_a_short_decode_error(name):
    hostile = EDF_HOSTILE[name]
    for code in (edf.EXT_RECORD, edf.EXT_ERROR):
        data = marked(code, hostile, b"\x90")
        with pytest.raises(edf.DecodeError) as info:
            REG.decode(data)
        assert len(str(info.value)) < MAX_MESSAGE


def test_unknown_error_with_hostile_arguments_arrives_as_a_remote_error_with_short_text():
    data = marked(edf.EXT_ERROR, msgpack.packb("NotHere"), deep_list(), huge_int_edf(), msgpack.packb("why"))
    err = REG.decode(data)
    assert isinstance(err, edf.RemoteError) and err.type_name == "NotHere"
    assert err.text == "<list of 1 items>, <int of 16610 bits>, why"


# -- ENP ----------------------------------------------------------------------------------------

SAMPLES = [
    enp.SendPID(A, B, 1, 0, False, REF),
    enp.SendEvent(A, enp.Event("e", "a@localhost"), 5, 1),
    enp.SendExit(A, B, enp.edf.RemoteError("x", "y")),
    enp.RequestPID(A, B, REF, 1),
    enp.ResponseError(A, B, REF, ValueError("x")),
    enp.Link(A, B, REF),
    enp.Result(A, REF, None, 1),
    enp.Spawn(A, REF, "f", None, {}, ()),
    enp.ApplicationStart(A, REF, "app", 0, {}),
    enp.Ack(A, B, REF, None),
    enp.TerminatePID(A, ValueError("x")),
    enp.Heartbeat(1),
]


def _frame_with(cls: type, fields: list[bytes]) -> bytes:
    body = _array(fields)
    return struct.pack(">BBIBB", enp.MAGIC, enp.VERSION, 8 + len(body), 0, cls.TYPE) + body


def _fields(msg) -> list[bytes]:
    cls = type(msg)
    out = []
    for i, value in enumerate(cls._get(msg)):
        encoded = REG.encode(value)
        out.append(msgpack.packb(encoded) if cls._SPEC[i].blob else encoded)
    return out


@pytest.mark.parametrize("name", sorted(EDF_HOSTILE))
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda m: type(m).__name__)
def test_hostile_value_in_any_enp_field_is_a_short_protocol_error_after_the_good_frames(sample, name):
    good = enp.encode(enp.Heartbeat(7), registry=REG)
    fields = _fields(sample)
    for i in range(len(fields)):
        for hostile in (EDF_HOSTILE[name], msgpack.packb(EDF_HOSTILE[name])):  # in place, or as a blob
            bad = list(fields)
            bad[i] = hostile
            decoder = enp.FrameDecoder(REG, max_message_size=0)
            try:
                events = decoder.feed(good + _frame_with(type(sample), bad) + good)
            except enp.ProtocolError as e:
                assert e.events[0] == enp.Heartbeat(7), "a frame decoded before the bad one was lost"
                assert len(str(e)) < MAX_MESSAGE and decoder.failed
                with pytest.raises(enp.ProtocolError):
                    decoder.feed(good)
            else:  # a hostile *value* in a field that takes any value is that value, or Undecodable
                assert events[0] == enp.Heartbeat(7) and len(events) == 3 and not decoder.failed


def test_priority_holding_a_huge_int_is_refused_with_its_size_not_its_digits():
    fields = _fields(enp.SendPID(A, B, 1))
    fields[3] = huge_int_edf()
    with pytest.raises(enp.ProtocolError, match=r"SendPID.priority must be an int 0..2 .*, not <int of 16610 bits>"):
        enp.FrameDecoder(REG).feed(_frame_with(enp.SendPID, fields))


# -- registrar ------------------------------------------------------------------------------------

REGISTRAR_SAMPLES = [
    rg.Register("a@h", (rg.Route("h", 1),)),
    rg.RegisterReply(None),
    rg.Resolve("a@h"),
    rg.ResolveReply((rg.Route("h", 1),), None),
    rg.Unregister("a@h"),
    rg.UnregisterReply(None),
]


def _registrar_variants(msg) -> list[bytes]:
    """The message's body with each top-level field, and each route field, made hostile."""
    items = msgpack.unpackb(rg.encode(msg)[5:])
    out = []
    for hostile in PLAIN_HOSTILE.values():
        for i in range(len(items)):
            parts = [msgpack.packb(x) for x in items]
            parts[i] = hostile
            out.append(_array(parts))
            if isinstance(items[i], list) and items[i] and isinstance(items[i][0], list):  # routes
                for j in range(len(items[i][0])):
                    route = [msgpack.packb(x) for x in items[i][0]]
                    route[j] = hostile
                    parts = [msgpack.packb(x) for x in items]
                    parts[i] = _array([_array(route)])
                    out.append(_array(parts))
    return out


def _datagram(mtype: int, body: bytes) -> bytes:
    return struct.pack(">BBBH", rg.MAGIC, rg.VERSION, mtype, len(body)) + body


@pytest.mark.parametrize("sample", REGISTRAR_SAMPLES, ids=lambda m: type(m).__name__)
def test_hostile_value_in_any_registrar_field_is_a_short_registrar_protocol_error(sample):
    for body in _registrar_variants(sample):
        if len(body) > rg.MAX_BODY:
            body = body[: rg.MAX_BODY]  # a datagram cannot be longer: truncated garbage is garbage too
        data = _datagram(sample.TYPE, body)
        with pytest.raises(rg.RegistrarProtocolError) as info:
            rg.decode_datagram(data)
        assert len(str(info.value)) < MAX_MESSAGE
        decoder = rg.MessageDecoder()
        good = rg.encode(rg.Resolve("a@h"))
        with pytest.raises(rg.RegistrarProtocolError) as info:
            decoder.feed(good + data)
        assert info.value.events == [rg.Resolve("a@h")] and decoder.failed


# -- handshake -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PLAIN_HOSTILE))
@pytest.mark.parametrize("key", ["name", "creation", "flags", "max_message_size", "pool_size", "version"])
def test_authenticated_introduction_with_a_hostile_field_is_refused_as_malformed(key, name):
    dialer, acceptor = hs.Dialer(hs.NodeInfo("a@h", 1), COOKIE), hs.Acceptor(hs.NodeInfo("b@h", 2), COOKIE)
    acceptor.receive_data(dialer.data_to_send())
    nonce_a = msgpack.unpackb(acceptor.data_to_send()[5:])["nonce"]
    fields = {k: msgpack.packb(v) for k, v in msgpack.unpackb(hs.NodeInfo("a@h", 1)._pack()).items()}
    fields[key] = PLAIN_HOSTILE[name][:3000]  # the whole message must fit hs.MAX_BODY
    info = b"\x86" + b"".join(msgpack.packb(k) + v for k, v in fields.items())
    mac = hs._mac(COOKIE.encode(), b"ergo-introduce", dialer._nonce, nonce_a, info)
    (refused,) = acceptor.receive_data(hs._frame(hs.INTRODUCE, {"info": info, "mac": mac}))
    assert isinstance(refused.reason, hs.MalformedHandshake) and len(str(refused.reason)) < MAX_MESSAGE


# -- a failed decoder stays failed and holds nothing more however often it is called --------------


def _growth(call, times: int = 20_000) -> int:
    for _ in range(100):  # warm up caches before measuring
        call()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(times):
            call()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_failed_frame_decoder_raises_a_fresh_error_each_time_and_memory_stays_flat():
    decoder = enp.FrameDecoder(REG)
    with pytest.raises(enp.ProtocolError):
        decoder.feed(b"\x00" * 8)
    seen = []

    def again() -> None:
        try:
            decoder.feed(b"more")
        except enp.ProtocolError as e:
            assert "bad magic byte 0" in str(e)
            if len(seen) < 2:
                seen.append(e)

    assert _growth(again) < 50_000
    assert seen[0] is not seen[1]


def test_a_failed_registrar_decoder_raises_a_fresh_error_each_time_and_memory_stays_flat():
    decoder = rg.MessageDecoder()
    with pytest.raises(rg.RegistrarProtocolError):
        decoder.feed(b"\x00" * 8)

    def again() -> None:
        try:
            decoder.feed(b"more")
        except rg.RegistrarProtocolError:
            pass

    assert _growth(again) < 50_000


def test_a_join_naming_a_hostile_connection_id_is_refused_as_an_unknown_connection():
    dialer = hs.Dialer(hs.NodeInfo("a@h", 1), COOKIE)
    acceptor = hs.Acceptor(hs.NodeInfo("b@h", 2), COOKIE, peers={"a@h": "c1"})
    acceptor.receive_data(dialer.data_to_send())
    nonce_a = msgpack.unpackb(acceptor.data_to_send()[5:])["nonce"]
    fields = {k: msgpack.packb(v) for k, v in msgpack.unpackb(hs.NodeInfo("a@h", 1)._pack()).items()}
    fields["connection_id"] = deep_list()
    info = bytes([0x80 + len(fields)]) + b"".join(msgpack.packb(k) + v for k, v in fields.items())
    mac = hs._mac(COOKIE.encode(), b"ergo-join", dialer._nonce, nonce_a, info)
    (refused,) = acceptor.receive_data(hs._frame(hs.JOIN, {"info": info, "mac": mac}))
    assert type(refused.reason) is hs.UnknownConnection and "<list of 1 items>" in str(refused.reason)

"""Fuzzing: random and mutated bytes into every decoder raise only the documented errors.

No other exception, no hang, and no allocation driven by a length prefix.
"""

from __future__ import annotations

import os
import struct
import tracemalloc

import lz4.block
import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import frames, make_registry, reasons, values

from ergo.gen.ids import PID, Alias, Event, ProcessID, Ref
from ergo.wire import edf, enp
from ergo.wire import handshake as hs
from ergo.wire import registrar as rg

REG = make_registry()
# fuzzing wants more examples than the round-trip properties; still well inside the time budget.
# WIRE_FUZZ_SCALE=50 makes a long local fuzzing run.
fuzz = settings(max_examples=300 * int(os.environ.get("WIRE_FUZZ_SCALE", "1")))
NODE_A = hs.NodeInfo("a@localhost", 1)
NODE_B = hs.NodeInfo("b@localhost", 2)


@st.composite
def mutated(draw, valid: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding with a few bytes flipped, cut, inserted or deleted."""
    data = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete", "set"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0xC1, 0xC7, 0xD4, 0xDD, 0xDF]))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[pos]
    return bytes(data)


def edf_bytes() -> st.SearchStrategy[bytes]:
    return values.map(REG.encode)


def frame_bytes() -> st.SearchStrategy[bytes]:
    return st.lists(frames, min_size=1, max_size=3).map(
        lambda fs: b"".join(enp.encode(f, registry=REG, compression=True, threshold=32) for f in fs)
    )


def _link() -> enp.LinkCodec:
    return enp.LinkCodec("b@h", 9, "a@h", 7, registry=REG)


_LINK_MESSAGES = st.one_of(
    st.builds(enp.SendPID, st.just(PID("a@h", 5, 7)), st.just(PID("b@h", 6, 9)), values, st.integers(0, 2)),
    st.builds(enp.SendPID, st.just(PID("a@h", 5, 7)), st.just(PID("b@h", 6, 9)), values, st.integers(0, 2),
              st.just(True), st.just(Ref("a@h", 7, (1, 2, 3)))),  # fmt: skip
    st.builds(enp.SendProcessID, st.just(PID("a@h", 5, 7)), st.sampled_from([ProcessID("p", "b@h"),
              ProcessID("q", "b@h")]), values),  # fmt: skip
    st.builds(enp.RequestPID, st.just(PID("a@h", 5, 7)), st.just(PID("b@h", 6, 9)), st.just(Ref("a@h", 7, (1, 2, 3))),
              values),  # fmt: skip
    st.builds(enp.RequestProcessID, st.just(PID("a@h", 5, 7)), st.just(ProcessID("p", "b@h")),
              st.just(Ref("a@h", 7, (1, 2, 3))), values),  # fmt: skip
    st.builds(enp.Ack, st.just(PID("a@h", 5, 7)), st.just(PID("b@h", 6, 9)), st.just(Ref("b@h", 9, (1, 2, 3))),
              st.none() | reasons),  # fmt: skip
)


# a stream of plain sends from one sender to one recipient: one batch entry of many values
# (a run), whose header is a fixarray up to 12 values and an array 32 beyond
_RUN = st.lists(st.integers(-5, 300) | st.text(max_size=3), min_size=2, max_size=16).map(
    lambda vs: [enp.SendPID(PID("a@h", 5, 7), PID("b@h", 6, 9), v) for v in vs]
)


def link_bytes() -> st.SearchStrategy[bytes]:
    def encode(args: tuple[list, int]) -> bytes:
        msgs, entries = args
        sender = enp.LinkCodec("a@h", 7, "b@h", 9, registry=REG, batch_entries=entries)
        for i, msg in enumerate(msgs):
            sender.send(msg, compress=32 if i % 4 == 3 else None)
        return bytes(sender.flush())

    msgs = st.lists(_LINK_MESSAGES, min_size=1, max_size=6) | _RUN
    return st.tuples(msgs, st.sampled_from([3, 1000])).map(encode)


def _decode_link(data: bytes) -> None:
    for batch_events in (False, True):  # (with call_events too: the network's codec)
        decoder = enp.LinkCodec("b@h", 9, "a@h", 7, registry=REG, batch_events=batch_events, call_events=batch_events)
        try:
            for event in decoder.feed(memoryview(data)):
                assert (
                    type(event) in enp.FRAME_TYPES.values()
                    or isinstance(event, enp.Undecodable)
                    or (batch_events and type(event) in (enp.Sends, enp.SendRun))
                    or (batch_events and type(event) is tuple and event[0] in (enp.RequestPID, enp.Response))
                )
        except enp.ProtocolError:
            assert decoder.failed


def _decode_edf(data: bytes) -> None:
    try:
        REG.decode(data)
    except edf.DecodeError:
        pass


def _decode_frames(data: bytes, max_size: int = 0) -> None:
    decoder = enp.FrameDecoder(REG, max_message_size=max_size)
    try:
        for event in decoder.feed(data):
            assert type(event) in enp.FRAME_TYPES.values() or isinstance(event, enp.Undecodable)
    except enp.ProtocolError:
        pass


@fuzz
@given(st.binary(max_size=200))
def test_random_bytes_into_the_codec_raise_only_decode_error(data):
    _decode_edf(data)


@fuzz
@given(mutated(edf_bytes()))
def test_mutated_encodings_into_the_codec_raise_only_decode_error(data):
    _decode_edf(data)


@fuzz
@given(st.binary(max_size=300), st.sampled_from([0, 64, 1 << 20]))
def test_random_bytes_into_the_frame_decoder_raise_only_protocol_error(data, max_size):
    _decode_frames(data, max_size)


@fuzz
@given(mutated(link_bytes()))
def test_mutated_link_streams_raise_only_protocol_error(data):
    _decode_link(data)


@fuzz
@given(st.binary(max_size=200), st.sampled_from(sorted(enp.LINK_TYPES)))
def test_random_bodies_of_link_frames_raise_only_protocol_error(body, ftype):
    _decode_link(struct.pack(">BBIBB", enp.MAGIC, enp.VERSION, 8 + len(body), 0, ftype) + body)


@fuzz
@given(st.binary(max_size=200))
def test_random_bodies_behind_a_valid_header_raise_only_protocol_error(body):
    for ftype in list(enp.FRAME_TYPES) + [enp.TYPE_COMPRESSED]:
        _decode_frames(struct.pack(">BBIBB", enp.MAGIC, enp.VERSION, 8 + len(body), 0, ftype) + body)


@fuzz
@given(mutated(frame_bytes()))
def test_mutated_frames_raise_only_protocol_error(data):
    _decode_frames(data)


@fuzz
@given(
    st.lists(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 15, 16, 17, 18, 19, 20]), max_size=40)
)
def test_random_msgpack_values_in_frame_fields_raise_only_protocol_error(shape):
    # well-formed msgpack of the wrong shapes: exercises the field checks, not the parser
    pool = [None, 1, -1, 2**70, "s", b"b", [], {}, (), 3.5, True, 7]
    items = [pool[i % len(pool)] for i in shape]
    body = REG.encode(items)
    for ftype in enp.FRAME_TYPES:
        _decode_frames(struct.pack(">BBIBB", enp.MAGIC, enp.VERSION, 8 + len(body), 0, ftype) + body)


def test_huge_length_prefix_allocates_nothing():
    header = struct.pack(">BBIBB", enp.MAGIC, enp.VERSION, 0xFFFFFFFF, 0, 101)
    decoder = enp.FrameDecoder(REG, max_message_size=0)  # no limit: memory must still follow the bytes received
    tracemalloc.start()
    try:
        decoder.feed(header + b"\x00" * 1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.buffered == 1008 and peak < 1 << 20


def test_huge_lengths_inside_the_codec_allocate_nothing():
    tracemalloc.start()
    try:
        for data in [
            b"\xdd\xff\xff\xff\xff",
            b"\xdb\xff\xff\xff\xff",
            b"\xc9\xff\xff\xff\xff\x10",
            b"\xc6\xff\xff\xff\xff",
        ]:
            _decode_edf(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_deeply_nested_input_is_refused_without_crashing():
    data = msgpack.packb(1)
    for _ in range(5000):
        data = msgpack.packb(
            msgpack.ExtType(edf.EXT_TUPLE, msgpack.packb([msgpack.ExtType(edf.EXT_SET, data)]))
        )
    _decode_edf(data)
    _decode_edf(b"\x91" * 100_000 + b"\x01")


def _run_acceptor(chunks: list[bytes]) -> None:
    acceptor = hs.Acceptor(NODE_B, "cookie")
    for chunk in chunks:
        for event in acceptor.receive_data(chunk):
            assert isinstance(event, hs.Refused)  # garbage never authenticates
        if acceptor.done:
            break
    acceptor.data_to_send()
    acceptor.connection_lost()


def _run_dialer(chunks: list[bytes]) -> None:
    dialer = hs.Dialer(NODE_A, "cookie")
    for chunk in chunks:
        for event in dialer.receive_data(chunk):
            assert isinstance(event, hs.Refused)
        if dialer.done:
            break
    dialer.connection_lost()


@fuzz
@given(st.lists(st.binary(max_size=80), max_size=5))
def test_random_bytes_into_the_handshake_end_only_in_refusal(chunks):
    _run_acceptor(chunks)
    _run_dialer(chunks)


def _transcript() -> st.SearchStrategy[list[bytes]]:
    """The messages a real dialer sends, captured from a successful exchange."""

    def capture(seed: int) -> list[bytes]:
        import random

        rng = random.Random(seed)
        dialer = hs.Dialer(NODE_A, "cookie", random=rng.randbytes)
        acceptor = hs.Acceptor(NODE_B, "cookie", random=rng.randbytes)
        sent = []
        for _ in range(3):
            out = dialer.data_to_send()
            sent.append(out)
            acceptor.receive_data(out)
            dialer.receive_data(acceptor.data_to_send())
        return sent

    return st.integers(0, 3).map(capture)


@fuzz
@given(_transcript().flatmap(lambda msgs: st.tuples(*[mutated(st.just(m)) for m in msgs])))
def test_mutated_handshake_messages_end_only_in_refusal(chunks):
    _run_acceptor(list(chunks))


@fuzz
@given(st.binary(max_size=100))
def test_random_bytes_into_the_registrar_raise_only_its_protocol_error(data):
    try:
        rg.decode_datagram(data)
    except rg.RegistrarProtocolError:
        pass
    try:
        rg.MessageDecoder().feed(data)
    except rg.RegistrarProtocolError:
        pass


@fuzz
@given(
    mutated(
        st.sampled_from([rg.encode(rg.Register("a@h", (rg.Route("h", 1),))), rg.encode(rg.ResolveReply())])
    )
)
def test_mutated_registrar_messages_raise_only_its_protocol_error(data):
    try:
        rg.decode_datagram(data)
    except rg.RegistrarProtocolError:
        pass


# -- hostile payloads: deep nesting and huge numbers, through every decoder (issue 10) ------------

M61 = (1 << 61) - 1


def _ext(code: int, data: bytes) -> bytes:
    return msgpack.packb(msgpack.ExtType(code, data))


def _bigint(value: int) -> bytes:
    return _ext(edf.EXT_BIGINT, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))


# each wraps a payload one level deeper, in a place a decoder treats differently
WRAPS = {
    "list": lambda p: b"\x91" + p,
    "map value": lambda p: b"\x81\xa1k" + p,
    "map key": lambda p: b"\x81" + p + b"\x01",
    "tuple": lambda p: _ext(edf.EXT_TUPLE, b"\x91" + p),
    "set": lambda p: _ext(edf.EXT_SET, b"\x91" + p),
    "frozenset": lambda p: _ext(edf.EXT_FROZENSET, b"\x92\x01" + p),
    "record": lambda p: _ext(edf.EXT_RECORD, b"\x93" + msgpack.packb("test.Point") + b"\x01" + p),
    "error": lambda p: _ext(edf.EXT_ERROR, b"\x92" + msgpack.packb("Taken") + b"\x91" + p),
    "unknown error": lambda p: _ext(edf.EXT_ERROR, b"\x92" + msgpack.packb("Nope") + b"\x91" + p),
    "blob": lambda p: msgpack.packb(p),
}
LEAVES = {
    "5000-digit int": _bigint(10**5000),
    "negative 20000-digit int": _bigint(-(10**20000) + 1),
    "int just past 64 bits": _bigint(1 << 64),
    "u64 max": msgpack.packb(2**64 - 1),
    "i64 min": msgpack.packb(-(2**63)),
    "nan": msgpack.packb(float("nan")),
    "colliding big ints": b"\xdc\x00\x28" + b"".join(_bigint((1 << 64) + 5 + k * M61) for k in range(40)),
    "long str": msgpack.packb("s" * 100_000),
    "bad utf-8": b"\xa2\xff\xfe",
    "bad timestamp": b"\xd6\xff\xff\xff\xff\xff",
    "claims 4 GiB": b"\xc6\xff\xff\xff\xff",
    "nothing": b"",
}


PLAIN = ["list", "map value", "map key"]


@st.composite
def hostile_payloads(draw) -> bytes:
    """msgpack bytes nesting a repeated pattern of wrappers up to thousands deep around a huge leaf.

    Half the patterns are plain lists and maps, which msgpack nests up to 1024 deep and which
    broke repr() at about a thousand; the depths sit on the edges that matter (MAX_DEPTH,
    Python's recursion limit, msgpack's stack).
    """
    pattern = draw(
        st.one_of(
            st.lists(st.sampled_from(PLAIN), min_size=1, max_size=2),
            st.lists(st.sampled_from(sorted(WRAPS)), min_size=1, max_size=3),
        )
    )
    depth = draw(st.sampled_from([1, 2, 32, 33, 950, 1000, 1023, 1024, 3000]))
    data = LEAVES[draw(st.sampled_from(sorted(LEAVES)))]
    cheap = [w for w in pattern if w in PLAIN] or ["list"]
    for level in range(depth):
        # ext wrappers copy their payload: past a few hundred levels nest plain containers only
        data = WRAPS[pattern[level % len(pattern)] if level < 200 else cheap[level % len(cheap)]](data)
    return data


_PID = PID("a@localhost", 1, 1)
_GOOD_FIELD = {  # a valid value for each kind of field, so the spoiled field is the one checked
    "a PID": _PID,
    "a ProcessID": ProcessID("n", "a@localhost"),
    "an Alias": Alias("a@localhost", 1, (1, 2, 3)),
    "an Event": Event("e", "a@localhost"),
    "a Ref": Ref("a@localhost", 1, (1, 2, 3)),
    "a Ref or nil": None,
    "a bool": False,
    "a str": "f",
    "a str or nil": None,
    "a PID, ProcessID, Alias, Event or Atom": _PID,
    "an int 0..2 (MessagePriority)": 1,
    "an int 0..3 (0: the spec's ApplicationMode)": 2,
    "an int of 64 signed bits": -5,
    "an int of 64 unsigned bits": 5,
    "any value": 1,
    "an error": ValueError("x"),
    "an error or nil": None,
    "a map": {},
    "a tuple": (),
}


def _enp_frames(payload: bytes, ftype: int, field: int, compress: bool) -> bytes:
    """A valid frame of type ``ftype`` whose field ``field`` (or whole body, for -1) is the payload,
    after a good frame."""
    cls = enp.FRAME_TYPES[ftype]
    if field < 0:
        body = payload
    else:
        items = [REG.encode(_GOOD_FIELD[kind.what]) for kind in cls._SPEC]
        items = [msgpack.packb(x) if kind.blob else x for x, kind in zip(items, cls._SPEC)]
        items[field % len(items)] = payload
        body = b"\xdc" + struct.pack(">H", len(items)) + b"".join(items)
    if compress:
        body = struct.pack(">BBI", enp.COMPRESSION_LZ4, ftype, len(body)) + lz4.block.compress(body, store_size=False)
        ftype = enp.TYPE_COMPRESSED
    good = enp.encode(enp.Heartbeat(1))
    return good + struct.pack(">BBIBB", enp.MAGIC, enp.VERSION, 8 + len(body), 0, ftype) + body


def _handshake_with(payload: bytes, mtype: int, key: str, authenticated: bool) -> None:
    """An acceptor given a HELLO, then a message of ``mtype`` whose ``key`` is the payload (inside
    an introduction carrying a valid MAC when ``authenticated``): it may only refuse."""
    dialer, acceptor = hs.Dialer(NODE_A, "cookie"), hs.Acceptor(NODE_B, "cookie")
    acceptor.receive_data(dialer.data_to_send())
    nonce_a = msgpack.unpackb(acceptor.data_to_send()[5:])["nonce"]
    if authenticated:  # a valid introduction but for the one field
        fields = {k: msgpack.packb(v) for k, v in msgpack.unpackb(NODE_A._pack()).items()}
        fields[key] = payload
        info = bytes([0x80 + len(fields)]) + b"".join(msgpack.packb(k) + v for k, v in fields.items())
        mac = hs._mac(b"cookie", b"ergo-introduce", dialer._nonce, nonce_a, info)
        body = msgpack.packb({"info": info, "mac": mac})
    else:
        body = b"\x81" + msgpack.packb(key) + payload
    message = struct.pack(">BBBH", hs.MAGIC, hs.VERSION, mtype, len(body) % 65536) + body
    for event in acceptor.receive_data(message[:5 + hs.MAX_BODY]):
        assert isinstance(event, hs.Refused) and len(str(event.reason)) < 1000


_REGISTRAR_FIELDS = {"node": b"\xa3a@h", "routes": b"\x91\x95\xa1h\x01\xc2\x01\x01", "error": b"\xc0"}


def _registrar_with(payload: bytes, mtype: int, field: int, sub: int) -> None:
    """A registrar message of type ``mtype`` whose ``field`` (or, in a routes field, the route's
    ``sub``-th item) is the payload, as a datagram and on a stream."""
    spec = rg._TYPES[mtype]._SPEC
    items = [_REGISTRAR_FIELDS[kind] for kind in spec]
    field %= len(items)
    if spec[field] == "routes" and sub < 5:
        route = [b"\xa1h", b"\x01", b"\xc2", b"\x01", b"\x01"]
        route[sub] = payload
        items[field] = b"\x91\x95" + b"".join(route)
    else:
        items[field] = payload
    body = (bytes([0x90 + len(items)]) + b"".join(items))[: rg.MAX_BODY]
    data = struct.pack(">BBBH", rg.MAGIC, rg.VERSION, mtype, len(body)) + body
    for decode in (rg.decode_datagram, rg.MessageDecoder().feed):
        try:
            decode(data)
        except rg.RegistrarProtocolError as e:
            assert len(str(e)) < 1000


@fuzz
@given(hostile_payloads())
def test_hostile_payloads_into_the_codec_raise_only_a_short_decode_error(payload):
    try:
        REG.decode(payload)
    except edf.DecodeError as e:
        assert len(str(e)) < 1000


@fuzz
@given(
    hostile_payloads(),
    st.sampled_from(sorted(enp.FRAME_TYPES)),
    st.integers(-1, 6),
    st.booleans(),
)
def test_hostile_payloads_in_any_frame_field_raise_only_protocol_error_and_keep_earlier_frames(
    payload, ftype, field, compress
):
    decoder = enp.FrameDecoder(REG, max_message_size=0)
    try:
        events = decoder.feed(_enp_frames(payload, ftype, field, compress))
    except enp.ProtocolError as e:
        assert e.events == [enp.Heartbeat(1)] and decoder.failed and len(str(e)) < 1000
    else:
        assert events[0] == enp.Heartbeat(1) and len(events) == 2


@fuzz
@given(
    hostile_payloads(),
    st.sampled_from([hs.HELLO, hs.INTRODUCE, hs.JOIN, hs.REFUSE, 99]),
    st.sampled_from(["nonce", "info", "mac", "reason", "text", "name", "creation", "flags", "pool_size"]),
    st.booleans(),
)
def test_hostile_payloads_in_any_handshake_field_end_only_in_refusal(payload, mtype, key, authenticated):
    _handshake_with(payload, mtype, key, authenticated)


@fuzz
@given(hostile_payloads(), st.sampled_from(sorted(rg._TYPES)), st.integers(0, 1), st.integers(0, 5))
def test_hostile_payloads_in_any_registrar_field_raise_only_its_protocol_error(payload, mtype, field, sub):
    _registrar_with(payload, mtype, field, sub)


# -- one property over every decoder: whatever the bytes, only its documented error leaves --------


def _run_handshake(data: bytes) -> None:
    for side in (hs.Acceptor(NODE_B, "cookie"), hs.Dialer(NODE_A, "cookie")):
        for event in side.receive_data(data) + side.connection_lost():
            assert isinstance(event, hs.Refused)


DECODERS = {
    "edf": (REG.decode, edf.DecodeError),
    "enp stream": (lambda data: enp.FrameDecoder(REG).feed(data), enp.ProtocolError),
    "link stream": (lambda data: _link().feed(data), enp.ProtocolError),
    "link frame body": (
        lambda data: [
            _link().feed(struct.pack(">BBIBB", enp.MAGIC, enp.VERSION, 8 + len(data), 0, t) + data)
            for t in enp.LINK_TYPES
        ],
        enp.ProtocolError,
    ),
    "enp frame body": (
        lambda data: [
            enp.FrameDecoder(REG).feed(struct.pack(">BBIBB", enp.MAGIC, enp.VERSION, 8 + len(data), 0, t) + data)
            for t in [*enp.FRAME_TYPES, enp.TYPE_COMPRESSED]
        ],
        enp.ProtocolError,
    ),
    "registrar datagram": (rg.decode_datagram, rg.RegistrarProtocolError),
    "registrar stream": (lambda data: rg.MessageDecoder().feed(data), rg.RegistrarProtocolError),
    "registrar body": (
        lambda data: [
            rg.decode_datagram(struct.pack(">BBBH", rg.MAGIC, rg.VERSION, t, len(data)) + data) for t in rg._TYPES
        ],
        rg.RegistrarProtocolError,
    ),
    "handshake": (_run_handshake, ()),  # it refuses; it never raises
    "handshake body": (
        lambda data: _run_handshake(struct.pack(">BBBH", hs.MAGIC, hs.VERSION, hs.HELLO, len(data)) + data),
        (),
    ),
}


@fuzz
@given(st.sampled_from(sorted(DECODERS)), st.one_of(st.binary(max_size=300), hostile_payloads()))
def test_every_decoder_lets_out_only_its_documented_error_whatever_the_bytes(name, data):
    decode, documented = DECODERS[name]
    if name.startswith("registrar") or name.startswith("handshake"):
        data = data[:4000]  # their bodies have a 16-bit length
    try:
        decode(data)
    except documented as e:  # anything else propagates and fails the test
        assert len(str(e)) < 1000, f"{name}: an error message of {len(str(e))} characters"

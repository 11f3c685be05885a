"""Fuzzing: random and mutated bytes into every decoder raise only the documented errors.

No other exception, no hang, and no allocation driven by a length prefix.
"""

from __future__ import annotations

import os
import struct
import tracemalloc

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import frames, make_registry, values

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

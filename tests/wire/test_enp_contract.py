"""ENP at its edges (ergo/wire/enp.py): the bounds a receiver checks in a frame body, values
nested up to EDF's limit inside a frame, and a decoder that stays failed."""

from __future__ import annotations

import struct

import pytest

from ergo.gen.errors import Incorrect
from ergo.gen.ids import PID
from ergo.wire import edf, enp

A, B = PID("a@h", 1005, 7), PID("b@h", 1010, 9)


def frame(ftype: int, fields: list, order: int = 0) -> bytes:
    body = edf.encode(fields)
    return struct.pack(">BBIBB", enp.MAGIC, enp.VERSION, 8 + len(body), order, ftype) + body


def send_pid(priority: object) -> bytes:
    return frame(101, [A, B, edf.encode("m"), priority, False, None])


@pytest.mark.parametrize("priority", [0, 1, 2])
def test_a_priority_of_0_1_or_2_is_accepted(priority):
    [msg] = enp.FrameDecoder().feed(send_pid(priority))
    assert msg == enp.SendPID(A, B, "m", priority)


@pytest.mark.parametrize("priority", [-1, 3, True, 1.0, "1", None])
def test_any_other_priority_is_a_protocol_error(priority):
    with pytest.raises(enp.ProtocolError, match="priority"):
        enp.FrameDecoder().feed(send_pid(priority))


def test_a_value_nested_to_edfs_limit_travels_inside_a_frame():
    value: object = "deep"
    for _ in range(edf.MAX_DEPTH):
        value = (value,)
    [msg] = enp.FrameDecoder().feed(enp.encode(enp.SendPID(A, B, value)))
    back, depth = msg.message, 0
    while type(back) is tuple:  # unwrapped, not compared: == recurses past Python's limit
        (back,) = back
        depth += 1
    assert (back, depth) == ("deep", edf.MAX_DEPTH)


def test_a_failed_decoder_stays_failed():
    decoder = enp.FrameDecoder()
    with pytest.raises(enp.ProtocolError):
        decoder.feed(b"\x00" * 8)
    with pytest.raises(enp.ProtocolError):
        decoder.receive_data(enp.encode(enp.Heartbeat()))
    with pytest.raises(enp.ProtocolError):
        decoder.next_event()
    assert decoder.buffered == 0


def test_buffered_counts_bytes_not_yet_returned():
    decoder = enp.FrameDecoder()
    data = enp.encode(enp.Heartbeat(1)) + enp.encode(enp.Heartbeat(2))
    decoder.receive_data(data[:-3])
    assert decoder.buffered == len(data) - 3
    assert decoder.next_event() == enp.Heartbeat(1)
    assert decoder.buffered == len(data) // 2 - 3 and decoder.next_event() is None
    decoder.receive_data(data[-3:])
    assert decoder.next_event() == enp.Heartbeat(2) and decoder.buffered == 0
    assert decoder.next_event() is None


@pytest.mark.parametrize("fields", [
    [A, B, edf.encode("m"), 0, False],  # one field short
    [A, B, edf.encode("m"), 0, False, None, None],  # one too many
    {"not": "an array"},
])
def test_a_body_of_the_wrong_shape_is_a_protocol_error(fields):
    with pytest.raises(enp.ProtocolError, match="array of 6 fields"):
        enp.FrameDecoder().feed(frame(101, fields))


def test_a_frame_is_sent_compressed_only_when_that_makes_it_strictly_smaller():
    import random

    import lz4.block

    # find a body whose compressed form plus its 6-byte header is exactly as long as it
    for size in range(1200, 3000, 10):
        msg = enp.SendPID(A, B, random.Random(1).randbytes(size))
        body = enp.encode(msg)[8:]
        if len(lz4.block.compress(body, store_size=False)) + 6 == len(body):
            break
    else:
        raise AssertionError("no body found at the edge")
    sent = enp.encode(msg, compression=True, threshold=16)
    assert sent[7] == 101 and sent[8:] == body


def test_a_decoder_waiting_for_the_rest_of_a_frame_holds_only_that_frame():
    decoder = enp.FrameDecoder()
    whole = [enp.encode(enp.Heartbeat(i)) for i in range(50)]
    partial = enp.encode(enp.SendPID(A, B, "x" * 100))
    events = decoder.feed(b"".join(whole) + partial[:20])
    assert len(events) == 50
    assert len(decoder._buf) == 20  # what was consumed is released, not kept until the next frame
    # and the same while only part of a header has come
    decoder = enp.FrameDecoder()
    assert len(decoder.feed(b"".join(whole) + partial[:5])) == 50
    assert len(decoder._buf) == 5
    assert len(decoder.feed(partial[5:])) == 1 and len(decoder._buf) == 0


def test_a_compressed_frame_must_expand_to_exactly_the_size_it_announced():
    import lz4.block

    body = enp.encode(enp.SendPID(A, B, "x" * 3000))[8:]
    packed = lz4.block.compress(body, store_size=False)

    def compressed(claimed: int) -> bytes:
        inner = struct.pack(">BBI", 1, 101, claimed) + packed
        return struct.pack(">BBIBB", 78, enp.VERSION, 8 + len(inner), 0, 200) + inner

    assert enp.FrameDecoder().feed(compressed(len(body)))[0].message == "x" * 3000
    with pytest.raises(enp.ProtocolError, match="not the"):
        enp.FrameDecoder().feed(compressed(len(body) + 10))


I64 = (-(1 << 63), (1 << 63) - 1)
U64 = (0, (1 << 64) - 1)


def _event_frame(ts: object) -> bytes:
    from ergo.gen.ids import Event

    return frame(105, [A, Event("e", "a@h"), ts, edf.encode("m"), 0])


@pytest.mark.parametrize("build,bounds", [(_event_frame, I64), (lambda seq: frame(190, [seq]), U64)])
def test_int_fields_hold_exactly_their_documented_range(build, bounds):
    # docs/wire.md: SendEvent's timestamp is an i64, Heartbeat's seq a u64
    low, high = bounds
    for ok in (low, high):
        [msg] = enp.FrameDecoder().feed(build(ok))
        assert ok in (getattr(msg, "timestamp", None), getattr(msg, "seq", None))
    for bad in (low - 1, high + 1, True, 1.5, None):
        with pytest.raises(enp.ProtocolError):
            enp.FrameDecoder().feed(build(bad))
    with pytest.raises(Incorrect, match="64 unsigned bits"):  # nothing out of range is sent either
        enp.encode(enp.Heartbeat(U64[1] + 1))


def test_a_compressed_frame_may_expand_to_exactly_the_limit():
    import lz4.block

    body = enp.encode(enp.SendPID(A, B, "x" * 3000))[8:]
    packed = lz4.block.compress(body, store_size=False)
    inner = struct.pack(">BBI", 1, 101, len(body)) + packed
    data = struct.pack(">BBIBB", 78, enp.VERSION, 8 + len(inner), 0, 200) + inner
    assert enp.FrameDecoder(max_message_size=len(body) + 8).feed(data)[0].message == "x" * 3000
    with pytest.raises(enp.ProtocolError, match="over the limit"):
        enp.FrameDecoder(max_message_size=len(body) + 7).feed(data)

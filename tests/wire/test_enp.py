"""ENP: frames round-trip, the decoder is indifferent to how bytes are split, and limits hold."""

from __future__ import annotations

import dataclasses
import struct

import lz4.block
import pytest
from hypothesis import given
from hypothesis import strategies as st
from wire_strategies import frames, make_registry, same

from ergo.gen import errors as gerrors
from ergo.gen.ids import PID, Alias, Atom, Event, ProcessID, Ref
from ergo.wire import edf, enp

REG = make_registry()
A = PID("a@localhost", 1005, 1)
B = PID("b@localhost", 2010, 2)
REF = Ref("a@localhost", 1, (7, 8, 9))


def decode_all(data: bytes, **kw) -> list:
    return enp.FrameDecoder(REG, **kw).feed(data)


def frames_same(got: list, want: list) -> bool:
    return len(got) == len(want) and all(
        type(g) is type(w) and same(dataclasses.astuple(g), dataclasses.astuple(w)) for g, w in zip(got, want)
    )


@given(frames)
def test_every_frame_round_trips(frame):
    assert frames_same(decode_all(enp.encode(frame, registry=REG)), [frame])


@given(st.lists(frames, min_size=1, max_size=4), st.booleans())
def test_decoder_yields_the_same_messages_whatever_the_split(batch, compress):
    data = b"".join(enp.encode(f, registry=REG, compression=compress, threshold=16) for f in batch)
    whole = decode_all(data)
    for cut in range(len(data) + 1):
        decoder = enp.FrameDecoder(REG)
        assert frames_same(decoder.feed(data[:cut]) + decoder.feed(data[cut:]), whole)
    decoder = enp.FrameDecoder(REG)
    one_by_one = [e for i in range(len(data)) for e in decoder.feed(data[i : i + 1])]
    assert frames_same(one_by_one, whole) and frames_same(whole, batch)


def test_every_documented_message_type_has_a_frame():
    names = {cls.__name__ for cls in enp.FRAME_TYPES.values()}
    assert names == {
        "SendPID", "SendProcessID", "SendAlias", "SendEvent", "SendExit",
        "RequestPID", "RequestProcessID", "RequestAlias", "Response", "ResponseError",
        "Link", "Unlink", "Monitor", "Demonitor", "Result", "Spawn", "ApplicationStart", "Ack",
        "TerminatePID", "TerminateProcessID", "TerminateAlias", "TerminateEvent", "Heartbeat",
    }  # fmt: skip


@pytest.mark.parametrize(
    "target",
    [
        B,
        ProcessID("srv", "b@localhost"),
        Alias("b@localhost", 2, (1, 2, 3)),
        Event("ev", "b@localhost"),
        Atom("b@localhost"),
    ],
)
@pytest.mark.parametrize("kind", [enp.Link, enp.Unlink, enp.Monitor, enp.Demonitor])
def test_link_and_monitor_frames_carry_every_target_kind(kind, target):
    (back,) = decode_all(enp.encode(kind(A, target, REF)))
    assert type(back.target) is type(target) and back == kind(A, target, REF)


def test_header_is_magic_version_length_order_type():
    data = enp.encode(enp.SendPID(A, B, "hi"))
    magic, version, length, order, ftype = struct.unpack(">BBIBB", data[:8])
    assert (magic, version, length, order, ftype) == (78, enp.VERSION, len(data), 1 + 1005 % 255, 101)


def test_order_key_follows_the_sender_so_one_senders_frames_share_a_link():
    assert enp.encode(enp.SendPID(A, B, 1))[6] == enp.order_key(A)
    assert enp.encode(enp.RequestAlias(A, Alias("b@localhost", 1, (1, 2, 3)), REF, 1))[6] == enp.order_key(A)
    assert enp.encode(enp.SendExit(A, B, gerrors.TerminateReasonKill))[6] == enp.order_key(A)
    # a process's termination notice takes the link its messages took
    assert enp.encode(enp.TerminatePID(A, gerrors.TerminateReasonNormal))[6] == enp.order_key(A)
    assert enp.encode(enp.Heartbeat(1))[6] == 0
    assert enp.encode(enp.SendPID(A, B, 1), order=0)[6] == 0
    assert all(1 <= enp.order_key(PID("a@h", i)) <= 255 for i in range(600))


def test_compression_applies_only_above_the_threshold_and_only_when_it_helps():
    big = enp.SendPID(A, B, "x" * 4000)
    plain = enp.encode(big)
    packed = enp.encode(big, compression=True)
    assert plain[7] == 101 and packed[7] == enp.TYPE_COMPRESSED and len(packed) < len(plain) / 10
    assert packed[6] == plain[6]  # the order key survives compression
    assert enp.encode(big, compression=True, threshold=10_000) == plain
    assert enp.encode(enp.SendPID(A, B, "small"), compression=True) == enp.encode(enp.SendPID(A, B, "small"))
    noise = bytes(range(256)) * 2 + bytes(reversed(range(256))) * 4  # lz4 cannot shrink this much
    incompressible = enp.SendPID(A, B, lz4.block.compress(noise * 3, store_size=False))
    assert enp.encode(incompressible, compression=True, threshold=0)[7] in (101, enp.TYPE_COMPRESSED)


def test_receiver_needs_no_setting_to_read_compressed_frames():
    big = enp.Response(B, A, REF, {"rows": [("row", i) for i in range(500)]})
    (back,) = enp.FrameDecoder(REG).feed(enp.encode(big, compression=True))
    assert same(back.message, big.message)


def test_frame_over_the_max_size_is_a_protocol_error_from_its_header_alone():
    decoder = enp.FrameDecoder(REG, max_message_size=1024)
    header = struct.pack(">BBIBB", 78, enp.VERSION, 0xFFFFFFFF, 0, 101)
    with pytest.raises(enp.ProtocolError, match="exceeds the limit of 1024"):
        decoder.feed(header)
    with pytest.raises(enp.ProtocolError):  # and it stays failed
        decoder.feed(b"")


def test_frame_exactly_at_the_max_size_is_accepted():
    data = enp.encode(enp.SendPID(A, B, "x" * 100))
    assert len(decode_all(data, max_message_size=len(data))) == 1
    with pytest.raises(enp.ProtocolError):
        decode_all(data, max_message_size=len(data) - 1)


def test_outgoing_frame_over_the_peers_limit_is_too_large():
    with pytest.raises(gerrors.TooLarge):
        enp.encode(enp.SendPID(A, B, "x" * 2000), max_message_size=1000)
    # compression does not make it fit: the peer bounds the decompressed size by the same
    # limit, and would close the link over a frame the sender let through
    with pytest.raises(gerrors.TooLarge, match="before compression"):
        enp.encode(enp.SendPID(A, B, "x" * 2000), max_message_size=1000, compression=True)
    # under the limit, compression applies
    small = enp.encode(enp.SendPID(A, B, "x" * 1500), max_message_size=2000, compression=True, threshold=1024)
    assert len(small) < 500
    assert [m.message for m in decode_all(small, max_message_size=2000)] == ["x" * 1500]


def test_compressed_frame_expanding_past_the_limit_is_refused_before_decompressing():
    body = struct.pack(">BBI", 1, 101, 50_000_000) + b"\x00" * 16
    frame = struct.pack(">BBIBB", 78, enp.VERSION, 8 + len(body), 0, 200) + body
    with pytest.raises(enp.ProtocolError, match="more than lz4 can expand"):
        decode_all(frame, max_message_size=0)  # no limit: the ratio bound still holds
    with pytest.raises(enp.ProtocolError, match="over the limit of 1048576"):
        decode_all(frame)  # the default limit
    with pytest.raises(enp.ProtocolError, match="over the limit"):
        decode_all(frame, max_message_size=1 << 20)


def test_unregistered_payload_drops_one_message_and_keeps_the_connection():
    @dataclasses.dataclass
    class Private:
        x: int

    sender = make_registry()
    sender.register_type(Private, "private")
    data = enp.encode(enp.RequestPID(A, B, REF, Private(1)), registry=sender) + enp.encode(
        enp.SendPID(A, B, "next")
    )
    first, second = enp.FrameDecoder(REG).feed(data)
    assert isinstance(first, enp.Undecodable)
    assert first.message == enp.RequestPID(A, B, REF, None) and "unknown record type 'private'" in str(
        first.error
    )
    assert second == enp.SendPID(A, B, "next")


def _frame(ftype: int, body: bytes, magic: int = 78, version: int = enp.VERSION) -> bytes:
    return struct.pack(">BBIBB", magic, version, 8 + len(body), 0, ftype) + body


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (_frame(101, b"", magic=77), "bad magic byte 77"),
        (_frame(101, b"", version=9), "ENP version 9"),
        (struct.pack(">BBIBB", 78, enp.VERSION, 3, 0, 101), "shorter than its header"),
        (_frame(99, REG.encode([])), "unknown frame type 99"),
        (_frame(101, b"\xc1"), "starts no msgpack value"),
        (_frame(101, REG.encode([A, B])), "array of 6 fields"),
        (_frame(101, REG.encode([A, "b", REG.encode(1), 0, False, None])), "SendPID.to must be a PID, not 'b'"),
        (_frame(101, REG.encode([A, B, REG.encode(1), 7, False, None])), "SendPID.priority must be an int 0..2"),
        (_frame(101, REG.encode([A, B, 1, 0, False, None])), "SendPID.message must be an EDF value in a bin, not 1"),
        (_frame(200, b"\x01"), "shorter than its header"),
        (_frame(200, struct.pack(">BBI", 9, 101, 4) + b"abcd"), "unknown compression algorithm 9"),
        (_frame(200, struct.pack(">BBI", 1, 200, 4) + b"abcd"), "compressed frame inside"),
        (_frame(200, struct.pack(">BBI", 1, 101, 40) + b"\xff" * 8), "corrupt lz4|expanded to"),
    ],
)
def test_broken_framing_is_a_protocol_error_that_says_what(data, why):
    with pytest.raises(enp.ProtocolError, match=why):
        decode_all(data)


def test_messages_before_a_broken_frame_are_kept_on_the_error():
    good = enp.encode(enp.SendPID(A, B, 1))
    with pytest.raises(enp.ProtocolError) as info:
        enp.FrameDecoder(REG).feed(good + good + b"\x00" * 8)
    assert info.value.events == [enp.SendPID(A, B, 1)] * 2


def test_next_event_returns_none_until_a_frame_is_complete():
    data = enp.encode(enp.Heartbeat(5))
    decoder = enp.FrameDecoder(REG)
    decoder.receive_data(data[:-1])
    assert decoder.next_event() is None and decoder.buffered == len(data) - 1
    decoder.receive_data(data[-1:])
    assert decoder.next_event() == enp.Heartbeat(5) and decoder.next_event() is None and decoder.buffered == 0


def test_encoding_something_that_is_not_a_frame_is_refused():
    with pytest.raises(edf.EncodeError, match="not an ENP message"):
        enp.encode("hello")


def test_unencodable_payload_is_an_encode_error_and_nothing_is_sent():
    with pytest.raises(edf.EncodeError):
        enp.encode(enp.SendPID(A, B, object()))


def test_documented_examples_match_the_encoder_byte_for_byte():
    # docs/wire.md shows these bytes; if this fails, fix the document with the code
    pid_a, pid_b = PID("a@h", 1005, 7), PID("b@h", 1010, 9)
    assert edf.encode(pid_a).hex(" ") == "c7 13 02 00 00 00 00 00 00 03 ed 00 00 00 00 00 00 00 07 61 40 68"
    assert edf.encode((1, "x")).hex(" ") == "93 c7 00 10 01 a1 78"
    assert edf.encode(gerrors.Taken("no")).hex(" ") == "93 c7 00 20 a5 54 61 6b 65 6e a2 6e 6f"
    frame = enp.encode(enp.SendPID(pid_a, pid_b, "hi"))
    assert frame[:8].hex(" ") == "4e 03 00 00 00 3d f1 65"
    assert frame[8:9] == b"\x96" and frame[-8:].hex(" ") == "c4 03 a2 68 69 00 c2 c0"
    # 2.3: two plain sends (one run of a batch), then an important one in a compact frame
    link = enp.LinkCodec("a@h", 7, "b@h", 9)
    link.send_pid(pid_a, pid_b, "hi")
    link.send_pid(pid_a, pid_b, "ho")
    link.send_pid(pid_a, pid_b, "hi", important=True, ref=Ref("a@h", 7, (1, 2, 3)))
    data = link.flush()
    assert data[:28].hex(" ") == (
        "4e 03 00 00 00 1c 00 6e 00 dd 00 00 00 01 95 cd 03 ed cd 03 f2 00 a2 68 69 a2 68 6f"
    )
    ids = "".join(f" 00 00 00 00 00 00 00 0{i}" for i in (1, 2, 3))
    assert data[28:].hex(" ") == (
        "4e 03 00 00 00 34 f1 6f 00 00 00 00 00 00 03 ed 00 00 00 00 00 00 03 f2 04" + ids + " a2 68 69"
    )
    # a send to another recipient is an entry of its own: [from, to, kind, value]
    link.send_pid(pid_a, pid_b, "hi")
    link.send_pid(pid_a, PID("b@h", 5, 9), "ho")
    assert link.flush().hex(" ") == (
        "4e 03 00 00 00 22 00 6e 00 dd 00 00 00 02 94 cd 03 ed cd 03 f2 00 a2 68 69 94 cd 03 ed 05 00 a2 68 6f"
    )


def test_wire_modules_import_no_io_backend_and_no_pickle():
    import ast
    import pathlib

    import ergo.wire

    forbidden = {"asyncio", "socket", "simpy", "sim", "net", "pickle", "marshal", "ssl", "time", "threading"}
    for path in pathlib.Path(ergo.wire.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


# -- every field is checked against its frame's spec, on both ends (issue 10, item 10) ----------


def _blob(value) -> bytes:
    return REG.encode(value)


WRONG_VALUE_FIELDS = [
    (enp.SendExit, [A, B, _blob(5)], "SendExit.reason must be an error, not 5"),
    (enp.TerminatePID, [A, _blob("normal")], "TerminatePID.reason must be an error, not 'normal'"),
    (enp.TerminateProcessID, [ProcessID("n", "a@h"), _blob(None)], "TerminateProcessID.reason must be an error"),
    (enp.Spawn, [A, REF, "f", None, _blob(5), _blob(())], "Spawn.options must be a map, not 5"),
    (enp.Spawn, [A, REF, "f", None, _blob({}), _blob("args")], "Spawn.args must be a tuple, not 'args'"),
    (enp.Ack, [A, B, REF, _blob([1])], r"Ack.error must be an error or nil, not <list of 1 items>"),
    (enp.Result, [A, REF, _blob(5), _blob(None)], "Result.error must be an error or nil, not 5"),
    (enp.ResponseError, [A, B, REF, _blob("x"), 0, False], "ResponseError.error must be an error, not 'x'"),
    (enp.SendEvent, [A, Event("e", "a@h"), 2**64, _blob(1), 0], "SendEvent.timestamp must be an int of 64"),
    (enp.SendPID, [A, B, _blob(1), True, False, None], "SendPID.priority must be an int 0..2"),
    (enp.Heartbeat, [-1], "Heartbeat.seq must be an int of 64 unsigned bits, not -1"),
    (enp.Spawn, [A, REF, 5, None, _blob({}), _blob(())], "Spawn.name must be a str, not 5"),
]


@pytest.mark.parametrize(("cls", "items", "why"), WRONG_VALUE_FIELDS, ids=lambda x: getattr(x, "__name__", ""))
def test_a_field_of_the_wrong_type_is_refused_as_docs_wire_md_says(cls, items, why):
    decoder = enp.FrameDecoder(REG)
    with pytest.raises(enp.ProtocolError, match=why):
        decoder.feed(_frame(cls.TYPE, REG.encode(items)))
    assert decoder.failed


@pytest.mark.parametrize(("cls", "items", "why"), WRONG_VALUE_FIELDS, ids=lambda x: getattr(x, "__name__", ""))
def test_the_encoder_refuses_what_the_peer_would_refuse(cls, items, why):
    values = [REG.decode(x) if cls._SPEC[i].blob else x for i, x in enumerate(items)]
    with pytest.raises(gerrors.Incorrect, match=why):
        enp.encode(cls(*values), registry=REG)


def test_an_undecodable_value_is_not_mistaken_for_a_value_of_the_wrong_type():
    @dataclasses.dataclass
    class Private:
        x: int

    sender = make_registry()
    sender.register_type(Private, "private.Reason")
    data = enp.encode(enp.Spawn(A, REF, "f", None, {"x": Private(1)}, ()), registry=sender)
    (event,) = enp.FrameDecoder(REG).feed(data)
    assert isinstance(event, enp.Undecodable) and event.message == enp.Spawn(A, REF, "f", None, None, ())


@pytest.mark.parametrize("sender", [ProcessID("srv", "a@h"), None, 5], ids=["ProcessID", "None", "int"])
def test_encode_refuses_a_sender_that_is_no_pid_as_incorrect(sender):
    # the default order key is the sender's: it is taken once the fields are checked
    with pytest.raises(gerrors.Incorrect, match="RequestPID.from_ must be a PID"):
        enp.encode(enp.RequestPID(sender, B, REF, 1), registry=REG)


@pytest.mark.parametrize("order", [256, -1, "1", 1.0, True])
def test_encode_with_an_order_key_out_of_range_is_incorrect(order):
    with pytest.raises(gerrors.Incorrect, match="order must be an int 0..255"):
        enp.encode(enp.Heartbeat(1), order=order)
    assert enp.encode(enp.Heartbeat(1), order=255)[6] == 255

"""docs/wire.md is the contract another implementation is written from: every number it
gives (ext codes, frame types and their fields, header layouts, handshake message types,
network flag bits, the bounds of the introduced fields, the nesting limit) is read from
the document here and checked against what the code puts on the wire, byte by byte."""

from __future__ import annotations

import hashlib
import hmac
import pathlib
import re
import struct

import msgpack
import pytest

from ergo.gen import errors as gerrors
from ergo.gen.ids import PID, Alias, Atom, Event, ProcessID, Ref
from ergo.gen.messages import MessageEventStart
from ergo.wire import edf, enp
from ergo.wire import handshake as hs

DOC = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "wire.md").read_text()


def section(title: str) -> str:
    """The text of the ``## <title>`` section, up to the next one."""
    start = DOC.index(f"## {title}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end != -1 else len(DOC)]


def table(text: str, header: str) -> list[list[str]]:
    """The rows of the markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


EDF, ENP, HANDSHAKE = section("1. EDF"), section("2. ENP"), section("3. Handshake")


# -- EDF ----------------------------------------------------------------------------------------


def test_ext_codes_are_the_documented_ones():
    documented = {int(code): name for code, name, _data in table(EDF, "| code | name |")}
    assert edf.EXT_CODES == documented


def test_the_codes_the_decoders_fast_path_writes_as_numbers_are_the_constants():
    # edf's ext hook compares 1, 2, 4 and 16 (a literal costs less than a global's lookup):
    # were a constant to change, those values would take the slow path unnoticed
    assert (edf.EXT_ATOM, edf.EXT_PID, edf.EXT_REF, edf.EXT_TUPLE) == (1, 2, 4, 16)


def _sample(name: str) -> object:
    return {
        "Atom": Atom("a@h"),
        "PID": PID("a@h", 1005, 7),
        "ProcessID": ProcessID("p", "a@h"),
        "Ref": Ref("a@h", 7, (1, 2, 3)),
        "Alias": Alias("a@h", 7, (1, 2, 3)),
        "Event": Event("e", "a@h"),
        "tuple": (1, "x"),
        "set": {1},
        "frozenset": frozenset({1}),
        "big int": 1 << 70,
        "error": gerrors.Taken("no"),
        "record": MessageEventStart("e"),
    }[name]


@pytest.mark.parametrize("code,name,data", [(int(c), n, d) for c, n, d in table(EDF, "| code | name |")])
def test_each_ext_value_carries_its_documented_code(code, name, data):
    ext = msgpack.unpackb(edf.encode(_sample(name)), ext_hook=lambda c, d: (c, d))
    if data.startswith("none: the marker of"):  # a marked array: [(code, no data), items...]
        assert type(ext) is list and ext[0] == (code, b"")
    else:
        assert ext[0] == code
    assert edf.decode(edf.encode(_sample(name))) == _sample(name)


def test_a_marker_is_packed_as_the_documented_three_bytes():
    assert re.search(r"packed as\s+`c7 00 <code>`", EDF)
    for code in (16, 17, 18, 32, 48):
        assert msgpack.packb(msgpack.ExtType(code, b"")) == bytes([0xC7, 0, code])
        assert edf.MARK_BYTES + bytes([code]) == bytes([0xC7, 0, code])


def test_identifier_layouts_are_the_documented_ones():
    unpack = lambda v: msgpack.unpackb(edf.encode(v), ext_hook=lambda c, d: d)  # noqa: E731
    assert unpack(PID("a@h", 1005, 7)) == struct.pack(">Qq", 1005, 7) + b"a@h"
    assert unpack(Ref("a@h", -7, (1, 2, 3))) == struct.pack(">qQQQ", -7, 1, 2, 3) + b"a@h"
    assert unpack(Alias("a@h", 7, (4, 5, 6))) == struct.pack(">qQQQ", 7, 4, 5, 6) + b"a@h"
    assert unpack(ProcessID("name", "a@h")) == b"\x04name" + b"a@h"
    assert unpack(Event("ev", "a@h")) == b"\x02ev" + b"a@h"
    assert unpack(Atom("x@y")) == b"x@y"
    # the minimum length that keeps the sign: (bit_length + 8) // 8 bytes
    assert unpack(1 << 64) == (1 << 64).to_bytes(9, "big", signed=True)
    assert unpack(-(1 << 63) - 1) == (-(1 << 63) - 1).to_bytes(9, "big", signed=True)
    assert unpack((1 << 71) - 1) == ((1 << 71) - 1).to_bytes(9, "big", signed=True)


def test_plain_int_range_is_the_documented_one():
    for inside in (-(1 << 63), (1 << 64) - 1):
        assert edf.encode(inside) == msgpack.packb(inside)
    for outside in (-(1 << 63) - 1, 1 << 64):
        assert msgpack.unpackb(edf.encode(outside), ext_hook=lambda c, d: c) == edf.EXT_BIGINT
        assert edf.decode(edf.encode(outside)) == outside


def test_an_atom_is_at_most_255_bytes():
    data = lambda n: msgpack.packb(msgpack.ExtType(edf.EXT_ATOM, b"a" * n))  # noqa: E731
    assert edf.decode(data(255)) == "a" * 255
    with pytest.raises(edf.DecodeError, match="^atom of 256 bytes"):  # the length, said first
        edf.decode(data(256))
    too_long_and_bad = msgpack.packb(msgpack.ExtType(edf.EXT_ATOM, b"\xff" * 256))
    with pytest.raises(edf.DecodeError, match="^atom of 256 bytes"):  # checked before its UTF-8
        edf.decode(too_long_and_bad)


DEPTH = int(re.search(r"nest at most (\d+)\s+deep", EDF).group(1))


def _nested_tuples(n: int) -> object:
    value: object = 1
    for _ in range(n):
        value = (value,)
    return value


def _nested_tuple_bytes(n: int) -> bytes:
    data = msgpack.packb(1)
    for _ in range(n):
        data = b"\x92\xc7\x00\x10" + data  # [tuple marker, data]
    return data


def _depth(value: object) -> int:
    # == of tuples nested a thousand deep hits Python's recursion limit: unwrap instead
    n = 0
    while type(value) is tuple:
        (value,) = value
        n += 1
    return n if value == 1 else -1


def test_the_nesting_limit_holds_exactly_at_its_documented_depth():
    assert DEPTH == edf.MAX_DEPTH == 1024
    assert _depth(edf.decode(edf.encode(_nested_tuples(DEPTH)))) == DEPTH
    with pytest.raises(edf.EncodeError):  # msgpack's packer: at most one level more
        edf.encode(_nested_tuples(DEPTH + 2))
    # and a hostile peer's bytes, built by hand, are refused one level past the limit
    assert _depth(edf.decode(_nested_tuple_bytes(DEPTH))) == DEPTH
    with pytest.raises(edf.DecodeError):
        edf.decode(_nested_tuple_bytes(DEPTH + 1))


SHARED = int(re.search(r"more than (\d+) distinct keyable values sharing one hash", EDF).group(1))


def test_at_most_the_documented_number_of_values_may_share_a_hash():
    # big ints that differ by multiples of 2**61 - 1 all hash alike in Python
    alike = [(1 << 70) + k * ((1 << 61) - 1) for k in range(SHARED + 1)]
    assert len({hash(n) for n in alike}) == 1
    assert SHARED == edf.MAX_SHARED_HASH
    assert edf.decode(edf.encode(set(alike[:SHARED]))) == set(alike[:SHARED])
    with pytest.raises(edf.DecodeError):
        edf.decode(edf.encode(set(alike)))
    # a value repeated is not another value sharing the hash: only distinct ones count
    repeated = [alike[0]] * 100 + [alike[1]] * 100 + alike[:SHARED]
    assert edf.decode(edf.encode(repeated)) == repeated


# -- ENP ----------------------------------------------------------------------------------------


def test_enp_header_is_the_documented_one():
    rows = {name: (off, size, value) for off, size, name, value in table(ENP, "| offset | size | field |")}
    assert rows["magic"][2].startswith(str(enp.MAGIC)) and rows["version"][2] == str(enp.VERSION)
    assert int(rows["body"][0]) == enp.HEADER_SIZE == 8
    frame = enp.encode(enp.Heartbeat(5), order=9)
    assert frame[0] == 78 and frame[1] == enp.VERSION == 3
    assert struct.unpack(">I", frame[2:6])[0] == len(frame)
    assert frame[6] == 9 and frame[7] == 190


FRAME_ROWS = [(int(t), name, fields) for t, name, fields in table(ENP, "| type | name | fields |") if t != "200"]


def _fields(doc: str) -> list[str]:
    """The comma-separated fields of a table cell; commas inside parentheses are not separators."""
    return [f.strip() for f in re.split(r",(?![^(]*\))", doc)]


@pytest.mark.parametrize("code,name,fields", FRAME_ROWS)
def test_each_frame_type_has_its_documented_code_and_fields(code, name, fields):
    cls = enp.FRAME_TYPES[code]
    assert cls.__name__ == name and cls.TYPE == code
    documented = _fields(fields)
    assert len(cls.__dataclass_fields__) == len(documented)
    values = [i for i, f in enumerate(documented) if "*value*" in f]
    assert [i for i, _types in cls._blobs] == values


def test_no_frame_type_is_undocumented():
    assert sorted(enp.FRAME_TYPES) == sorted(code for code, _, _ in FRAME_ROWS)
    assert re.search(r"\| 200 \| compressed \|", ENP) and enp.TYPE_COMPRESSED == 200


def test_link_frame_types_and_limits_are_the_documented_ones():
    rows = table(ENP, "| type | name | body |")
    assert {int(t): name for t, name, _ in rows} == enp.LINK_TYPES
    assert not set(enp.LINK_TYPES) & set(enp.FRAME_TYPES)
    assert re.search(r"a table of (\d+) names", ENP).group(1) == str(enp.NAME_TABLE_SIZE) == "1024"
    assert re.search(r"reach (\d+) KiB \(`BATCH_BYTES`", ENP).group(1) == str(enp.BATCH_BYTES >> 10) == "64"
    assert re.search(r"or (\d+) sends \(`BATCH_ENTRIES`\)", ENP).group(1) == str(enp.BATCH_ENTRIES) == "1000"
    assert "bit 2 (4) important" in ENP and enp._FLAG_IMPORTANT == 4
    assert "as a fixarray up to 12 values" in ENP.replace("\n", " ") and enp._RUN_FIX == 12
    assert "bit 3 (8) the value may hold marked arrays" in ENP.replace("\n", " ") and enp._FLAG_MARKED == 8


A, B = PID("a@h", 1005, 7), PID("b@h", 1010, 9)
REF = Ref("a@h", 7, (1, 2, 3))


def _body(frame: bytes) -> list:
    return msgpack.unpackb(frame[8:], ext_hook=lambda c, d: (c, d))


@pytest.mark.parametrize("frame,defaults", [
    (enp.SendPID(A, B, "m"), [0, False, None]),
    (enp.SendProcessID(A, ProcessID("p", "b@h"), "m"), [0, False, None]),
    (enp.SendAlias(A, Alias("b@h", 9, (1, 2, 3)), "m"), [0, False, None]),
    (enp.RequestPID(A, B, REF, "m"), [0, False]),
    (enp.RequestProcessID(A, ProcessID("p", "b@h"), REF, "m"), [0, False]),
    (enp.RequestAlias(A, Alias("b@h", 9, (1, 2, 3)), REF, "m"), [0, False]),
    (enp.Response(A, B, REF, "m"), [0, False]),
    (enp.ResponseError(A, B, REF, gerrors.Timeout()), [0, False]),
    (enp.SendEvent(A, Event("e", "a@h"), 1, "m"), [0]),
    (enp.Heartbeat(), [0]),
])
def test_fields_left_out_go_on_the_wire_as_normal_priority_not_important_no_ref(frame, defaults):
    assert _body(enp.encode(frame))[-len(defaults):] == defaults


def test_result_and_ack_default_to_no_error_and_no_result():
    result = _body(enp.encode(enp.Result(A, REF, None)))
    assert result[2:] == [edf.encode(None), edf.encode(None)]
    ack = _body(enp.encode(enp.Ack(A, B, REF)))
    assert ack[3] == edf.encode(None)


def test_the_order_key_is_one_plus_the_sender_id_mod_255():
    for ident in (1000, 1005, 254, 255, 509, 510):
        p = PID("a@h", ident, 1)
        assert enp.order_key(p) == 1 + ident % 255
        assert enp.encode(enp.SendPID(p, B, "m"))[6] == 1 + ident % 255
        assert enp.encode(enp.TerminatePID(p, gerrors.Timeout()))[6] == 1 + ident % 255
    assert enp.encode(enp.Heartbeat())[6] == 0
    assert enp.encode(enp.TerminateProcessID(ProcessID("p", "a@h"), gerrors.Timeout()))[6] == 0


def test_compressed_frame_layout_is_the_documented_one():
    big = "x" * 5000
    plain = enp.encode(enp.SendPID(A, B, big))
    packed = enp.encode(enp.SendPID(A, B, big), compression=True)
    assert packed[6] == plain[6] and packed[7] == 200
    algorithm, inner, size = struct.unpack(">BBI", packed[8:14])
    assert (algorithm, inner, size) == (1, 101, len(plain) - 8)
    import lz4.block

    assert lz4.block.decompress(packed[14:], uncompressed_size=size) == plain[8:]
    assert enp.COMPRESSION_LZ4 == 1 and enp.DEFAULT_COMPRESSION_THRESHOLD == 1024


def test_the_compression_threshold_is_strict():
    body_len = len(enp.encode(enp.SendPID(A, B, "x" * 3000))) - 8
    at = enp.encode(enp.SendPID(A, B, "x" * 3000), compression=True, threshold=body_len)
    over = enp.encode(enp.SendPID(A, B, "x" * 3000), compression=True, threshold=body_len - 1)
    assert at[7] == 101 and over[7] == 200


def test_the_decompression_bomb_bound_is_255_times_plus_64():
    import lz4.block

    body = msgpack.packb(["x" * 40])  # not a frame body: the bound is checked first
    packed = lz4.block.compress(body, store_size=False)
    bound = len(packed) * 255 + 64

    def frame(claimed: int) -> bytes:
        inner = struct.pack(">BBI", 1, 190, claimed) + packed
        return struct.pack(">BBIBB", 78, enp.VERSION, 8 + len(inner), 0, 200) + inner

    with pytest.raises(enp.ProtocolError, match="more than lz4 can expand"):
        enp.FrameDecoder().feed(frame(bound + 1))
    with pytest.raises(enp.ProtocolError) as at_bound:
        enp.FrameDecoder().feed(frame(bound))
    assert "more than lz4 can expand" not in str(at_bound.value)


# -- handshake ------------------------------------------------------------------------------------


def test_handshake_header_and_body_limit_are_the_documented_ones():
    rows = {name: (off, size, value) for off, size, name, value in table(HANDSHAKE, "| offset | size | field |")}
    assert rows["magic"][2].startswith(str(hs.MAGIC)) and hs.MAGIC == 87
    assert rows["version"][2] == str(hs.VERSION) == "1"
    limit = int(re.search(r"at most (\d+)", rows["length"][2]).group(1))
    assert limit == hs.MAX_BODY == 4096
    hello = hs.Dialer(hs.NodeInfo("a@h", 1), "c", random=lambda n: b"\x01" * n).data_to_send()
    assert hello[:3] == bytes([87, 1, 1])
    assert struct.unpack(">H", hello[3:5])[0] == len(hello) - 5
    assert msgpack.unpackb(hello[5:]) == {"nonce": b"\x01" * 32}


def test_a_handshake_body_of_exactly_the_limit_is_read_and_one_byte_more_is_refused():
    def hello(size: int) -> bytes:
        body = {"nonce": b"n" * 32, "pad": b""}
        pad = size - len(msgpack.packb(body))
        body["pad"] = b"p" * (pad - 1)  # past 255 bytes, a bin header takes one byte more
        data = msgpack.packb(body)
        assert len(data) == size
        return struct.pack(">BBBH", 87, 1, 1, size) + data

    ok = hs.Acceptor(hs.NodeInfo("a@h", 1), "c")
    assert ok.receive_data(hello(hs.MAX_BODY)) == [] and ok.state == "wait_introduce"
    [refused] = hs.Acceptor(hs.NodeInfo("a@h", 1), "c").receive_data(hello(hs.MAX_BODY + 1))
    assert isinstance(refused.reason, hs.MalformedHandshake)


def test_handshake_message_types_are_the_documented_ones():
    rows = table(HANDSHAKE, "| type | name | sent by |")
    documented = {name: int(t) for t, name, *_ in rows}
    assert documented == {"HELLO": hs.HELLO, "CHALLENGE": hs.CHALLENGE, "INTRODUCE": hs.INTRODUCE,
                          "JOIN": hs.JOIN, "ACCEPT": hs.ACCEPT, "READY": hs.READY, "REFUSE": hs.REFUSE}
    assert list(documented.values()) == list(range(1, 8))


def test_network_flag_bits_are_ergos_as_documented():
    text = dict(table(HANDSHAKE, "| key | type | meaning |")[i][::2] for i in range(6))["`flags`"]
    documented = dict(re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", text.split(": ", 1)[1]))
    assert {int(bit): name.strip().upper().replace(" ", "_") for bit, name in documented.items()} == {
        int(f): f.name for f in hs.NetworkFlags}
    assert hs.DEFAULT_FLAGS == hs.NetworkFlags.ENABLE | hs.NetworkFlags.REMOTE_SPAWN | \
        hs.NetworkFlags.REMOTE_APPLICATION_START | hs.NetworkFlags.IMPORTANT_DELIVERY
    assert hs.NodeInfo("a@h", 1).flags == 1 | 2 | 4 | 64


BOUNDS = {
    "creation": (-(1 << 63), (1 << 63) - 1),
    "flags": (0, (1 << 64) - 1),
    "max_message_size": (0, (1 << 32) - 1),
    "pool_size": (1, 255),
    "version": (0, 255),
}


def test_the_documented_bounds_of_the_introduced_fields():
    rows = {key.strip("`"): kind for key, kind, _ in table(HANDSHAKE, "| key | type | meaning |")}
    assert "i64" in rows["creation"] and "u64" in rows["flags"] and "u32" in rows["max_message_size"]
    assert "1..255" in rows["pool_size"] and "0..255" in rows["version"]


@pytest.mark.parametrize("key", sorted(BOUNDS))
def test_each_numeric_field_is_accepted_at_its_bounds_and_refused_past_them(key):
    low, high = BOUNDS[key]
    base = {"name": "a@h", "creation": 1, "flags": 1, "max_message_size": 0, "pool_size": 3, "version": 1}
    for ok in (low, high):
        assert hs._check_info({**base, key: ok}) is None
    for bad in (low - 1, high + 1, True, 1.0, "1", None):
        assert hs._check_info({**base, key: bad}) is not None, bad
        with pytest.raises(gerrors.Incorrect):
            hs.NodeInfo(**{**base, key: bad})


@pytest.mark.parametrize("name,ok", [
    ("a@h", True), ("a" * 251 + "@h", True), ("a" * 253 + "@hx", False), ("ah", False), ("a@h@h", False),
    ("@h", False), ("a@", False), (5, False), ("a b@h", True), ("a\n@h", False), ("a@h\x1b", False),
])
def test_a_node_name_is_name_at_host_of_at_most_255_bytes(name, ok):
    info = {"name": name, "creation": 1, "flags": 1, "max_message_size": 0, "pool_size": 3, "version": 1}
    assert (hs._check_info(info) is None) is ok
    assert hs._check_info([info]) == "not a map"


_MIB = re.search(r"\| `max_message_size` \|[^|]*\|[^|]*\(default (\d+) MiB\)", HANDSHAKE)
DEFAULT_MAX = int(_MIB.group(1)) << 20


def test_the_default_max_message_size_is_the_documented_one():
    assert hs.NodeInfo("a@h", 1).max_message_size == DEFAULT_MAX == 1 << 20
    assert enp.FrameDecoder().max_message_size == DEFAULT_MAX


def test_the_documented_macs_and_bodies_byte_by_byte():
    """One whole exchange, rebuilt from the document's table of MAC inputs."""
    cookie = b"the cookie"
    nd, na = bytes(range(32)), bytes(range(32, 64))
    dialer = hs.Dialer(hs.NodeInfo("d@h", 5, pool_size=4), cookie, random=lambda n: nd[:n])
    ids = iter([na, b"\xab" * 16])
    acceptor = hs.Acceptor(hs.NodeInfo("a@h", 6, pool_size=2), cookie, random=lambda n: next(ids)[:n])

    def message(data: bytes) -> tuple[int, dict]:
        assert data[0] == 87 and data[1] == 1 and struct.unpack(">H", data[3:5])[0] == len(data) - 5
        return data[2], msgpack.unpackb(data[5:])

    mac = lambda label, *parts: hmac.new(cookie, label + b"".join(parts), hashlib.sha256).digest()  # noqa: E731
    hello = dialer.data_to_send()
    assert message(hello) == (1, {"nonce": nd})
    acceptor.receive_data(hello)
    challenge = acceptor.data_to_send()
    assert message(challenge) == (2, {"nonce": na})
    dialer.receive_data(challenge)
    introduce = dialer.data_to_send()
    kind, body = message(introduce)
    info_d = body["info"]
    assert kind == 3 and body["mac"] == mac(b"ergo-introduce", nd, na, info_d)
    assert msgpack.unpackb(info_d) == {"name": "d@h", "creation": 5, "flags": 71,
                                       "max_message_size": DEFAULT_MAX, "pool_size": 4, "version": enp.VERSION}
    acceptor.receive_data(introduce)
    accept = acceptor.data_to_send()
    kind, body = message(accept)
    info_a = body["info"]
    assert kind == 5 and body["mac"] == mac(b"ergo-accept", nd, na, info_d, info_a)
    assert msgpack.unpackb(info_a)["connection_id"] == (b"\xab" * 16).hex()
    [done_d] = dialer.receive_data(accept)
    ready = dialer.data_to_send()
    assert message(ready) == (6, {"mac": mac(b"ergo-ready", nd, na, info_a)})
    [done_a] = acceptor.receive_data(ready)
    assert done_d.pool_size == done_a.pool_size == 2  # the smaller wish
    assert done_d.connection_id == done_a.connection_id == (b"\xab" * 16).hex()
    assert (done_d.join, done_a.join) == (False, False)
    assert done_d.peer == hs.NodeInfo("a@h", 6, pool_size=2) and done_a.peer.name == "d@h"

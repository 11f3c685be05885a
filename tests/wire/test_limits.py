"""The work one frame can cost is bounded (issue 10, item 8): values sharing one hash, the
default max message size, decompressed size and nesting.

No test here measures time: each asserts the bound's observable outcome (refused or not).
"""

from __future__ import annotations

import dataclasses
import struct

import lz4.block
import pytest
from wire_strategies import make_registry, marked

from ergo.gen import errors as gerrors
from ergo.gen.ids import PID, Alias, Ref
from ergo.gen.options import DEFAULT_MAX_MESSAGE_SIZE, NetworkOptions
from ergo.wire import edf, enp
from ergo.wire import handshake as hs

REG = make_registry()
M = (1 << 61) - 1  # CPython hashes an int as the int modulo this prime


def colliding_ints(n: int) -> list[int]:
    """``n`` distinct ints beyond 64 bits (so EDF big ints) that all have the same hash."""
    values = [(1 << 64) + 5 + k * M for k in range(10, 10 + n)]
    assert len({hash(v) for v in values}) == 1
    return values


@dataclasses.dataclass(frozen=True)
class Key:
    a: int


# each carrier puts n colliding values where a set or map would hash them
CARRIERS = {
    "set of big ints": lambda vs: set(vs),
    "frozenset of big ints": lambda vs: frozenset(vs),
    "map keyed by big ints": lambda vs: dict.fromkeys(vs, 0),
    "set of tuples": lambda vs: {(v,) for v in vs},
    "map keyed by tuples of tuples": lambda vs: {((v, 1),): 0 for v in vs},
    "set of frozensets": lambda vs: {frozenset([v]) for v in vs},
    "set of records": lambda vs: {Key(v) for v in vs},
    "set of errors": lambda vs: {gerrors.Taken(v) for v in vs},
    "list of big ints": lambda vs: list(vs),  # never hashed, but refused alike: see docs/wire.md
}
REG.register_type(Key, "test.Key")


def test_the_issues_example_a_415_kb_set_of_colliding_big_ints_is_refused():
    # built as bytes: making the set here would itself take quadratic time
    data = marked(edf.EXT_SET, *(REG.encode(n) for n in colliding_ints(35_000)))
    assert len(data) > 415_000
    with pytest.raises(edf.DecodeError, match=f"more than {edf.MAX_SHARED_HASH} distinct values share one hash"):
        REG.decode(data)


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
def test_values_sharing_one_hash_are_refused_past_the_limit_wherever_they_sit(carrier):
    make = CARRIERS[carrier]
    limit = edf.MAX_SHARED_HASH
    assert REG.decode(REG.encode(make(colliding_ints(limit)))) == make(colliding_ints(limit))
    with pytest.raises(edf.DecodeError, match="hash-flooding"):
        REG.decode(REG.encode(make(colliding_ints(limit + 1))))


def test_the_limit_counts_across_the_whole_value_not_per_container():
    half = edf.MAX_SHARED_HASH // 2 + 1
    values = colliding_ints(2 * half)
    with pytest.raises(edf.DecodeError, match="hash-flooding"):
        REG.decode(REG.encode([set(values[:half]), set(values[half:])]))


def test_many_distinct_hashes_and_repeated_equal_values_are_not_refused():
    distinct = {(1 << 64) + k * (M + 1) for k in range(20_000)}
    assert REG.decode(REG.encode(distinct)) == distinct
    same = [(1 << 70, "x")] * 10_000  # one value, sent many times
    assert REG.decode(REG.encode(same)) == same
    plain = {k: k for k in range(-(2**63), -(2**63) + 5000)} | {k * M: 1 for k in range(1, 9)}  # native ints
    assert REG.decode(REG.encode(plain)) == plain


def test_each_frame_value_is_counted_on_its_own():
    # two blobs of one frame, each under the limit, are two values
    values = colliding_ints(edf.MAX_SHARED_HASH)
    msg = enp.Result(enp.PID("a@h", 1, 1), enp.Ref("a@h", 1, (1, 2, 3)), None, set(values))
    assert enp.FrameDecoder(REG).feed(enp.encode(msg, registry=REG)) == [msg]


def test_a_frame_with_a_hash_flood_in_its_value_is_undecodable_and_spares_the_connection():
    msg = enp.SendPID(enp.PID("a@h", 1, 1), enp.PID("b@h", 2, 2), set(colliding_ints(100)))
    (event,) = enp.FrameDecoder(REG).feed(enp.encode(msg, registry=REG))
    assert isinstance(event, enp.Undecodable) and "hash-flooding" in str(event.error)


_MASK = (1 << 64) - 1
_P1, _P2, _P5 = 11400714785074694791, 14029467366897019727, 2870177450012600261


def _lane_round(acc: int, lane: int) -> int:
    acc = (acc + lane * _P2) & _MASK
    acc = ((acc << 31) | (acc >> 33)) & _MASK
    return (acc * _P1) & _MASK


def colliding_ref_ids(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct ref ids (three u64s each) whose tuple hashes are all equal: CPython's
    tuple hash (xxHash's round over the items' hashes) is inverted for the third item."""
    target = _lane_round(_lane_round(_lane_round(_P5, 1), 2), 3)  # the state (1, 2, 3) leaves
    back = pow(_P1, -1, 1 << 64)
    want = (target * back) & _MASK
    want = ((want >> 31) | (want << 33)) & _MASK  # before the rotation
    ids = [(1, 2, 3)]
    a = 1
    while len(ids) < n:
        a += 1
        acc = _lane_round(_lane_round(_P5, a), 2)
        c = ((want - acc) * pow(_P2, -1, 1 << 64)) & _MASK
        if c < M:  # an int below 2**61 - 1 hashes as itself
            ids.append((a, 2, c))
    assert len({hash(i) for i in ids}) == 1
    return ids


@pytest.mark.parametrize("kind", [Ref, Alias])
def test_refs_of_one_node_with_colliding_ids_are_counted_and_refused_past_the_limit(kind):
    # a ref's id is three ints, whose tuple hash a peer can make collide: its refs and
    # aliases count as tuples do (a set or map of 30,000 of them took minutes before)
    refs = [kind("a@h", 1, i) for i in colliding_ref_ids(edf.MAX_SHARED_HASH + 1)]
    assert len({hash(r) for r in refs}) == 1
    fine = set(refs[:-1])
    assert REG.decode(REG.encode(fine)) == fine
    with pytest.raises(edf.DecodeError, match="hash-flooding"):
        REG.decode(REG.encode(set(refs)))
    with pytest.raises(edf.DecodeError, match="hash-flooding"):
        REG.decode(REG.encode({r: 0 for r in refs}))


@pytest.mark.parametrize("kind", [PID, Ref, Alias])
def test_identifiers_a_peer_invents_with_one_id_and_new_node_names_do_not_share_a_hash(kind):
    # the id alone was the hash: 16,000 PIDs of one id and made-up nodes in a 420 KB message
    # took 30 s of the node's CPU to decode as a set, and a set of 8,000 a user built 10 s
    ident = 7 if kind is PID else (1, 2, 3)
    ids = [kind(f"n{i}@h", ident, 1) if kind is PID else kind(f"n{i}@h", 1, ident) for i in range(5000)]
    assert len({hash(p) for p in ids}) > 4990  # as the salted hashes of their node names
    many = set(ids)
    assert REG.decode(REG.encode(many)) == many
    # distinct PIDs of one node never share a hash
    one = [PID("a@h", i, 1) for i in range(0, 1 << 64, 1 << 52)]
    assert len({hash(p) for p in one}) == len(one)


# -- the default max message size ------------------------------------------------------------------


def test_default_max_message_size_is_a_finite_1_mib_everywhere():
    assert DEFAULT_MAX_MESSAGE_SIZE == 1024 * 1024 == enp.DEFAULT_MAX_MESSAGE_SIZE
    assert NetworkOptions().max_message_size == DEFAULT_MAX_MESSAGE_SIZE
    assert enp.FrameDecoder().max_message_size == DEFAULT_MAX_MESSAGE_SIZE
    assert hs.NodeInfo("a@h", 1).max_message_size == DEFAULT_MAX_MESSAGE_SIZE


def _header(length: int, ftype: int = 101) -> bytes:
    return struct.pack(">BBIBB", enp.MAGIC, enp.VERSION, length, 0, ftype)


def test_default_decoder_refuses_a_frame_one_byte_over_the_limit_at_its_header():
    decoder = enp.FrameDecoder(REG)
    assert decoder.feed(_header(DEFAULT_MAX_MESSAGE_SIZE)) == []  # at the limit: waits for the body
    with pytest.raises(enp.ProtocolError, match="exceeds the limit of 1048576"):
        enp.FrameDecoder(REG).feed(_header(DEFAULT_MAX_MESSAGE_SIZE + 1))


def test_default_decoder_refuses_a_compressed_frame_expanding_past_the_limit():
    inner = REG.encode([None] * (DEFAULT_MAX_MESSAGE_SIZE - enp.HEADER_SIZE))  # > limit once expanded
    packed = lz4.block.compress(inner, store_size=False)
    body = struct.pack(">BBI", enp.COMPRESSION_LZ4, 101, len(inner)) + packed
    with pytest.raises(enp.ProtocolError, match="expands to .* over the limit of 1048576"):
        enp.FrameDecoder(REG).feed(_header(8 + len(body), enp.TYPE_COMPRESSED) + body)


@pytest.mark.parametrize("size", [-1, 2**32, 1.5, "big", None])
def test_max_message_size_out_of_range_is_incorrect(size):
    with pytest.raises(gerrors.Incorrect):
        NetworkOptions(max_message_size=size)
    if size != 2**32:  # the decoder takes any limit >= 0; the option must fit the handshake's u32
        with pytest.raises(gerrors.Incorrect):
            enp.FrameDecoder(max_message_size=size)


# -- nesting -------------------------------------------------------------------------------------


def test_values_nest_to_max_depth_and_no_further():
    value: object = 1
    for _ in range(edf.MAX_DEPTH - 1):
        value = (value,)
    data = REG.encode(value)
    back = REG.decode(data)
    for _ in range(edf.MAX_DEPTH - 1):  # compared level by level: == recurses
        assert type(back) is tuple and len(back) == 1
        (back,) = back
    assert back == 1
    with pytest.raises(edf.EncodeError):  # msgpack's packer refuses two more levels
        REG.encode(((value,),))
    one_deeper = b"\x91" + marked(edf.EXT_TUPLE, data)  # a hostile peer's bytes: [(value,)]
    with pytest.raises(edf.DecodeError, match=f"nests deeper than {edf.MAX_DEPTH}"):
        REG.decode(one_deeper)

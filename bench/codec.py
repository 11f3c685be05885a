"""EDF and ENP speed against bare msgpack, measured in the same run.

Prints one JSON object per line: {"name", "value", "unit", "baseline", "ratio"}, where
``value`` is our operations per second, ``baseline`` bare msgpack's on the same data and
``ratio`` value / baseline (SPEC 10 asks for >= 0.45 on the small message carrying
identifiers and >= 0.6 on the small SendPID frame).  One operation is an encode followed by
a decode (for the batch, one message of a batch of 100).  Ours and the baseline are timed
in alternating batches and each keeps its best, so a noisy neighbour on the machine
disturbs both alike.  Run: ``python bench/codec.py [--quick]``.

The two ``floor:`` lines are no part of the codec: they time the least pure Python can do
for the two targeted cases, the same bytes and the same values as ours (checked before
timing), to show how far above that least each target sits (see bench/README.md).
"""

from __future__ import annotations

import json
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgpack

from ergo.gen.ids import PID, Atom, Ref
from ergo.wire import edf, enp
from ergo.wire.edf import EXT_ATOM, EXT_PID, EXT_REF, EXT_TUPLE

SMALL = {"op": "put", "key": "user:42", "value": [1, 2.5, "x"], "ok": True}
TEN_KB = {
    "rows": [
        {"id": i, "name": f"user-{i:05d}", "score": i * 1.5, "tags": ["a", "b"], "active": bool(i % 2)}
        for i in range(190)
    ]
}
NODE = "node_local_11@localhost"
FROM = PID(NODE, 1005, 1700000000)
TO = PID("node_network_11_n2@localhost", 1010, 1700000001)
REF = Ref(NODE, 1700000000, (1, 2, 3))
# a message as actors send it: a tag atom, a PID to answer, a ref, a tuple
WITH_IDS = (Atom("get"), FROM, REF, ("user", 42))
WITH_IDS_PLAIN = ["get", [NODE, 1005, 1700000000], [NODE, 1700000000, [1, 2, 3]], ["user", 42]]


def _size(op: Callable[[], object], seconds: float) -> int:
    n = 1
    while True:  # find a batch size that takes about a fiftieth of the budget
        start = time.perf_counter()
        for _ in range(n):
            op()
        if time.perf_counter() - start > seconds / 50:
            return n
        n *= 2


def _best(op: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        op()
    return (time.perf_counter() - start) / n


def rates(ours: Callable[[], object], bare: Callable[[], object], seconds: float, per: int = 1) -> tuple[float, float]:
    """Operations per second of each: the best of twenty timed batches, the two alternating."""
    n, m = _size(ours, seconds), _size(bare, seconds)
    a = b = float("inf")
    for _ in range(20):
        a = min(a, _best(ours, n))
        b = min(b, _best(bare, m))
    return per / a, 1 / b


def line(name: str, ours: Callable[[], object], bare: Callable[[], object], seconds: float, per: int = 1) -> None:
    value, baseline = rates(ours, bare, seconds, per)
    print(
        json.dumps(
            {
                "name": name,
                "value": round(value),
                "unit": "ops/s",
                "baseline": round(baseline),
                "ratio": round(value / baseline, 3),
            }
        ),
        flush=True,
    )


def main() -> None:
    seconds = 0.2 if "--quick" in sys.argv else 1.0
    reg = edf.DEFAULT
    assert 10_000 <= len(msgpack.packb(TEN_KB)) <= 10_500

    def bare(value: object) -> Callable[[], object]:
        return lambda: msgpack.unpackb(msgpack.packb(value))

    def ours(value: object) -> Callable[[], object]:
        return lambda: reg.decode(reg.encode(value))

    line("edf small message encode+decode", ours(SMALL), bare(SMALL), seconds)
    line("edf 10KB message encode+decode", ours(TEN_KB), bare(TEN_KB), seconds)
    line(
        "edf small message with PID/Ref/Atom/tuple vs plain lists",
        ours(WITH_IDS),
        bare(WITH_IDS_PLAIN),
        seconds,
    )

    # one link between the two nodes of FROM and TO, as the network layer makes it after
    # the handshake: the sender's side and the receiver's side
    sender = enp.LinkCodec(FROM.node, FROM.creation, TO.node, TO.creation, batch_entries=0)
    receiver = enp.LinkCodec(TO.node, TO.creation, FROM.node, FROM.creation)

    def link_frame(value: object, **kw: object) -> Callable[[], object]:
        send_pid, flush, feed = sender.send_pid, sender.flush, receiver.feed

        def op() -> object:
            send_pid(FROM, TO, value, **kw)
            return feed(flush())

        return op

    line("enp SendPID frame via LinkCodec (compact header), small message", link_frame(SMALL), bare(SMALL), seconds)
    line("enp SendPID frame via LinkCodec, 10KB message", link_frame(TEN_KB), bare(TEN_KB), seconds)
    line(
        "enp SendPID frame via LinkCodec, 10KB message, lz4",
        link_frame(TEN_KB, compress=enp.DEFAULT_COMPRESSION_THRESHOLD),
        bare(TEN_KB),
        seconds,
    )

    batcher = enp.LinkCodec(FROM.node, FROM.creation, TO.node, TO.creation)

    def batch(value: object, count: int) -> Callable[[], object]:
        send_pid, flush, feed = batcher.send_pid, batcher.flush, receiver.feed

        def op() -> object:
            for _ in range(count):
                send_pid(FROM, TO, value)
            return feed(flush())

        return op

    line("enp batch frame of 100 small sends via LinkCodec, per message", batch(SMALL, 100), bare(SMALL), seconds, 100)
    line(
        "enp batch frame of 100 sends with identifiers via LinkCodec, per message",
        batch(WITH_IDS, 100),
        bare(WITH_IDS_PLAIN),
        seconds,
        100,
    )

    decoder = enp.FrameDecoder()

    def frame(value: object, **kw: object) -> Callable[[], object]:
        msg = enp.SendPID(FROM, TO, value)
        return lambda: decoder.feed(enp.encode(msg, **kw))

    line("enp SendPID frame, full identifiers (enp.encode), small message", frame(SMALL), bare(SMALL), seconds)
    line("enp SendPID frame, full identifiers (enp.encode), 10KB message", frame(TEN_KB), bare(TEN_KB), seconds)

    line("floor: small message with PID/Ref/Atom/tuple, bare hooks", _floor_ids(), bare(WITH_IDS_PLAIN), seconds)
    line("floor: SendPID frame, one struct and one msgpack call each way", _floor_frame(), bare(SMALL), seconds)


def _floor_ids() -> Callable[[], object]:
    """EDF's bytes for WITH_IDS, encoded and decoded by msgpack with the fewest, emptiest
    hooks that can: no pool, no error wrapping, no check that a marker heads its array, no
    count of the values a set or map could key (hash flooding), only the identifiers and
    tuples that WITH_IDS holds."""
    reg = edf.DEFAULT
    expected = reg.encode(WITH_IDS)
    tuple_head = msgpack.ExtType(EXT_TUPLE, b"")
    atom_ext = msgpack.unpackb(reg.encode(Atom("get")))  # the message's one atom, as an ExtType

    def default(obj: object) -> object:
        t = obj.__class__
        if t is tuple:
            return [tuple_head, *obj]  # type: ignore[misc]
        if t is Atom:
            return atom_ext
        return obj._wire  # type: ignore[attr-defined]  # a PID's or Ref's cached ext

    pack = msgpack.Packer(default=default, use_bin_type=True, strict_types=True, datetime=True).pack
    assert pack(WITH_IDS) == expected
    pids, refs, atoms = reg._ids[EXT_PID], reg._ids[EXT_REF], reg._atoms
    reg.decode(expected)  # fills the identifier caches the hooks read
    mark = object()

    def ext_hook(code: int, data: bytes) -> object:
        if data:
            if code == EXT_PID:
                return pids[data]
            if code == EXT_ATOM:
                return atoms[data]
            return refs[data]
        return mark

    def list_hook(items: list[object]) -> object:
        if items and items[0] is mark:
            del items[0]
            return tuple(items)
        return items

    unpackb = msgpack.unpackb

    def op() -> object:
        return unpackb(pack(WITH_IDS), ext_hook=ext_hook, list_hook=list_hook, strict_map_key=False, timestamp=3)

    assert op() == WITH_IDS
    return op


def _floor_frame() -> Callable[[], object]:
    """The compact SendPID frame of SMALL (LinkCodec's bytes), made and read in one
    function: one msgpack pack and one struct pack, one struct unpack and one msgpack
    unpack, one SendPID.  No codec object, no checks of the identifiers, flags or lengths,
    no output buffer, no frame loop."""
    codec = enp.LinkCodec(FROM.node, FROM.creation, TO.node, TO.creation, batch_entries=0)
    codec.send_pid(FROM, TO, SMALL)
    expected = bytes(codec.flush())
    head = struct.Struct(">BBIBBQQB")  # header, from id, to id, flags (docs/wire.md)
    pack = edf.DEFAULT._encoder()
    decode = edf.DEFAULT._decoder()
    send_pid = enp.SendPID
    order = 1 + FROM.id % 255

    def encode() -> bytes:
        value = pack(SMALL)
        return head.pack(enp.MAGIC, enp.VERSION, head.size + len(value), order, enp.TYPE_LINK_SEND_PID,
                         FROM.id, TO.id, 0) + value

    assert encode() == expected

    def op() -> object:
        data = memoryview(encode())
        _, _, length, _, _, _, _, flags = head.unpack_from(data)
        return send_pid(FROM, TO, decode(data[head.size : length], "value", flags), 0, False, None)

    assert op() == enp.SendPID(FROM, TO, SMALL)
    return op


if __name__ == "__main__":
    main()

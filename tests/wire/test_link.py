"""enp.LinkCodec: the codec of one link, with compact headers, a name table and batch frames.

Every message a link carries arrives whole and in order on the other end, whichever frame
carried it and however the bytes were split; what the sender refuses (TooLarge,
ProcessIncarnation, a value EDF cannot carry) is refused at the call, with nothing
appended; malformed link frames close the link and an undecodable value costs one message.
"""

from __future__ import annotations

import dataclasses
import struct

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from wire_strategies import make_registry, reasons, same, values

from ergo.gen import errors as gerrors
from ergo.gen.ids import PID, Alias, Atom, Event, ProcessID, Ref
from ergo.wire import edf, enp
from ergo.wire import handshake as hs

REG = make_registry()
A, B = "a@h", "b@h"
CA, CB = 7, 9
FROM = PID(A, 1005, CA)
TO = PID(B, 1010, CB)
MY_REF = Ref(A, CA, (1, 2, 3))
THEIR_REF = Ref(B, CB, (4, 5, 6))


def link(**kw) -> tuple[enp.LinkCodec, enp.LinkCodec]:
    """The two ends of one link from a@h (creation 7) to b@h (creation 9)."""
    sender = enp.LinkCodec(A, CA, B, CB, registry=REG, **kw)
    receiver = enp.LinkCodec(B, CB, A, CA, registry=REG)
    return sender, receiver


def frames_same(got: list, want: list) -> bool:
    def fields(m):
        if isinstance(m, enp.Undecodable):
            return ("undecodable", *dataclasses.astuple(m.message))
        return dataclasses.astuple(m)

    return len(got) == len(want) and all(
        type(g) is type(w) and same(fields(g), fields(w)) for g, w in zip(got, want)
    )


def frame_types(data: bytes) -> list[int]:
    types, pos = [], 0
    while pos < len(data):
        _m, _v, length, _o, ftype = struct.unpack_from(">BBIBB", data, pos)
        types.append(ftype)
        pos += length
    return types


# what one process of a@h sends to b@h, in every form the link has a frame for
priorities = st.integers(0, 2)
targets_b = st.sampled_from([TO, PID(B, 7, CB), PID(B, 2**64 - 1, CB)])
names_b = st.sampled_from([ProcessID("srv", B), ProcessID("other", B), ProcessID("ü" * 60, B)])
senders = st.sampled_from([FROM, PID(A, 0, CA), PID(A, 2**64 - 1, CA)])
messages = st.one_of(
    st.builds(enp.SendPID, senders, targets_b, values, priorities),
    st.builds(enp.SendPID, senders, targets_b, values, priorities, st.just(True), st.just(MY_REF)),
    st.builds(enp.SendProcessID, senders, names_b, values, priorities),
    st.builds(enp.SendProcessID, senders, names_b, values, priorities, st.just(True), st.just(MY_REF)),
    st.builds(enp.RequestPID, senders, targets_b, st.just(MY_REF), values, priorities, st.booleans()),
    st.builds(enp.Response, senders, targets_b, st.just(THEIR_REF), values, priorities, st.booleans()),
    st.builds(enp.RequestProcessID, senders, names_b, st.just(MY_REF), values, priorities, st.booleans()),
    st.builds(enp.Ack, senders, targets_b, st.just(THEIR_REF), st.none() | reasons),
    # frames that keep their identifiers whole on a link too
    st.builds(enp.SendAlias, senders, st.just(Alias(B, CB, (1, 2, 3))), values),
    st.builds(enp.SendExit, senders, targets_b, reasons),
    st.builds(enp.Link, senders, targets_b, st.just(MY_REF)),
    st.builds(enp.SendEvent, senders, st.just(Event("ev", A)), st.integers(0, 2**40), values),
    st.builds(enp.Heartbeat, st.integers(0, 2**64 - 1)),
)


@given(st.lists(messages, min_size=1, max_size=12), st.integers(0, 3), st.sampled_from([None, 0, 64]))
def test_every_message_arrives_whole_and_in_order_whatever_the_split(batch, cut_seed, compress):
    sender, receiver = link(batch_entries=3)
    data = b""
    for msg in batch:
        data += sender.send(msg, compress=compress) or b""
    data += sender.flush()
    assert frames_same(receiver.feed(data), batch)
    for cut in sorted({0, len(data) // 2, len(data) - 1, cut_seed * len(data) // 4}):
        _, split = link()
        assert frames_same(split.feed(memoryview(data[:cut])) + split.feed(memoryview(data[cut:])), batch)


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = (value,)
    return value


@dataclasses.dataclass
class _Unregistered:
    x: int


# runs of sends from one sender to one recipient (the pair the codec checked last is
# where send_plain leaves checks out), now and then another pair or a bad target
plain_sends = st.tuples(
    st.sampled_from([(FROM, TO)] * 4 + [(FROM, PID(B, 7, CB)), (FROM, PID(B, 7, CB + 1)), (FROM, PID("c@h", 7, CB))]),
    st.one_of(
        st.integers(), values, st.tuples(st.integers(), st.text()), st.just(_Unregistered(1)),
        st.just(_nested(edf.MAX_DEPTH)), st.binary(min_size=250, max_size=400),
    ),
    priorities,
    st.integers(1, 6),
)


@given(st.lists(plain_sends, min_size=1, max_size=20), st.sampled_from([0, 1, 3, 1000]))
def test_send_plain_makes_the_bytes_and_raises_the_errors_of_send_pid(runs, entries):
    # the network's hot path leaves out the checks a plain send cannot fail; what it
    # appends and what it raises must be send_pid's, call after call
    fast, _ = link(batch_entries=entries, batch_bytes=700, peer_max_message_size=2000)
    slow, receiver = link(batch_entries=entries, batch_bytes=700, peer_max_message_size=2000)
    out_fast, out_slow = bytearray(), bytearray()
    sends = [(from_, to, value, priority) for (from_, to), value, priority, times in runs for _ in range(times)]
    for from_, to, value, priority in sends:
        results = []
        for out, send in ((out_fast, fast.send_plain), (out_slow, slow.send_pid)):
            try:
                out += send(from_, to, value, priority) or b""
                results.append(None)
            except Exception as e:  # noqa: BLE001 - compared below
                results.append((type(e), str(e)))
        assert results[0] == results[1]
        assert out_fast == out_slow
    out_fast += fast.flush()
    out_slow += slow.flush()
    assert out_fast == out_slow
    receiver.feed(bytes(out_fast))
    assert not receiver.failed


def test_plain_sends_share_one_batch_frame_and_the_rest_take_compact_frames():
    sender, receiver = link()
    sender.send_pid(FROM, TO, "a")
    sender.send(enp.SendProcessID(FROM, ProcessID("srv", B), "b"))
    sender.send_pid(FROM, TO, "c", 2)
    sender.send_pid(FROM, TO, "d", important=True, ref=MY_REF)
    sender.send(enp.RequestPID(FROM, TO, MY_REF, "e"))
    sender.send(enp.Response(FROM, TO, THEIR_REF, "f"))
    sender.send(enp.SendProcessID(FROM, ProcessID("srv", B), "g", important=True, ref=MY_REF))
    sender.send(enp.RequestProcessID(FROM, ProcessID("srv", B), MY_REF, "h", 1, True))
    sender.send(enp.Ack(FROM, TO, THEIR_REF, gerrors.MailboxFull()))
    sender.send(enp.Ack(FROM, TO, THEIR_REF))
    data = bytes(sender.flush())
    assert frame_types(data) == [enp.TYPE_BATCH, 111, 131, 139, 112, 132, 171, 171]
    got = receiver.feed(data)
    assert [m.message for m in got[:8]] == ["a", "b", "c", "d", "e", "f", "g", "h"]
    assert got[7] == enp.RequestProcessID(FROM, ProcessID("srv", B), MY_REF, "h", 1, True)
    assert got[8].ref == THEIR_REF and isinstance(got[8].error, gerrors.MailboxFull) and got[9].error is None
    assert got[2] == enp.SendPID(FROM, TO, "c", 2) and got[1].to == ProcessID("srv", B)
    assert got[3] == enp.SendPID(FROM, TO, "d", 0, True, MY_REF)
    assert got[5] == enp.Response(FROM, TO, THEIR_REF, "f")


def test_with_call_events_a_plain_call_frame_arrives_as_a_tuple_and_any_other_as_its_frame():
    """The network's codec (``call_events=True``) hands a compact RequestPID or Response at
    normal priority, not important, whose value decoded, as ``(cls, from_, to, ref,
    value)``: the same fields as the frame, no frame object.  A priority, an important
    flag, a value that does not decode, and the Ack still arrive as frames."""
    sender, _ = link()
    receiver = enp.LinkCodec(B, CB, A, CA, registry=REG, call_events=True)
    sender.send(enp.RequestPID(FROM, TO, MY_REF, "e"))
    sender.send(enp.Response(FROM, TO, THEIR_REF, "f"))
    sender.send(enp.RequestPID(FROM, TO, MY_REF, "g", 1))
    sender.send(enp.Response(FROM, TO, THEIR_REF, "h", 0, True))
    sender.send(enp.Ack(FROM, TO, THEIR_REF))
    got = receiver.feed(bytes(sender.flush()))
    assert got[0] == (enp.RequestPID, FROM, TO, MY_REF, "e")
    assert got[1] == (enp.Response, FROM, TO, THEIR_REF, "f")
    assert got[2] == enp.RequestPID(FROM, TO, MY_REF, "g", 1)
    assert got[3] == enp.Response(FROM, TO, THEIR_REF, "h", 0, True)
    assert got[4] == enp.Ack(FROM, TO, THEIR_REF)
    plain = enp.LinkCodec(B, CB, A, CA, registry=REG)  # without: every one a frame
    sender.send(enp.RequestPID(FROM, TO, MY_REF, "e"))
    assert plain.feed(bytes(sender.flush())) == [enp.RequestPID(FROM, TO, MY_REF, "e")]


def test_compact_frames_leave_the_node_names_out():
    sender, _ = link(batch_entries=0)
    sender.send_pid(FROM, TO, "hi")
    compact = sender.flush()
    full = enp.encode(enp.SendPID(FROM, TO, "hi"))
    assert len(compact) == 8 + 8 + 8 + 1 + 3 < len(full) and A.encode() not in compact


def test_a_batch_closes_at_its_entry_limit_its_byte_limit_and_before_any_other_frame():
    sender, _ = link(batch_entries=3, batch_bytes=1000)
    for i in range(7):
        assert sender.send_pid(FROM, TO, i) is None
    assert frame_types(sender.flush()) == [enp.TYPE_BATCH] * 3  # 3 + 3 + 1
    for _ in range(3):
        assert sender.send_pid(FROM, TO, "x" * 300) is None
    out = sender.send_pid(FROM, TO, "x" * 300)  # the output reached batch_bytes: write it now
    assert out is not None and frame_types(bytes(out)) == [enp.TYPE_BATCH] * 2
    sender.send_pid(FROM, TO, 1)
    sender.send(enp.Heartbeat(1))
    sender.send_pid(FROM, TO, 2)
    assert frame_types(sender.flush()) == [enp.TYPE_BATCH, 190, enp.TYPE_BATCH]
    assert sender.flush() == b"" and sender.pending == 0


def test_one_sender_to_one_recipient_keeps_its_order_across_frame_kinds():
    sender, receiver = link(batch_entries=2)
    want = []
    for i in range(20):
        if i % 3 == 0:
            sender.send_pid(FROM, TO, i, important=True, ref=MY_REF)
        else:
            sender.send_pid(FROM, TO, i)
        want.append(i)
    assert [m.message for m in receiver.feed(sender.flush())] == want


def test_a_pid_of_another_incarnation_of_the_peer_is_refused_before_anything_is_sent():
    sender, _ = link()
    old = PID(B, 1010, CB - 1)
    for send in (
        lambda: sender.send_pid(FROM, old, "x"),
        lambda: sender.send(enp.RequestPID(FROM, old, MY_REF, "x")),
        lambda: sender.send(enp.SendAlias(FROM, Alias(B, CB - 1, (1, 2, 3)), "x")),
        lambda: sender.send(enp.Link(FROM, old, MY_REF)),
    ):
        with pytest.raises(gerrors.ProcessIncarnation, match="incarnation 8 of 'b@h', which is now 9"):
            send()
    assert sender.pending == 0
    for send in (
        lambda: sender.send_pid(FROM, PID("c@h", 1, CB), "x"),
        lambda: sender.send(enp.SendProcessID(FROM, ProcessID("srv", "c@h"), "x")),
        lambda: sender.send(enp.Monitor(FROM, PID("c@h", 1, CB), MY_REF)),
        lambda: sender.send(enp.SendPID(PID("c@h", 1, 1), PID("c@h", 2, 1), "x")),
    ):
        with pytest.raises(gerrors.Incorrect, match="not on this link's peer"):
            send()
    sender.send(enp.TerminatePID(FROM, gerrors.TerminateReasonNormal))  # about a process of this node
    sender.send(enp.Monitor(FROM, Atom(B), MY_REF))  # a node, by name
    sender.check_target(TO)
    sender.check_target(ProcessID("srv", B))


C = "c@h"
#: frames from a@h on its link to b@h that speak for another node (c@h, or b@h itself)
SPEAKING_FOR_ANOTHER = [
    enp.SendPID(PID(C, 1, 1), TO, "a message 'from' a third node's process"),
    enp.SendPID(PID(B, 7, CB), TO, "a message 'from' one of the receiver's own processes"),
    enp.SendProcessID(PID(C, 1, 1), ProcessID("srv", B), "x"),
    enp.SendAlias(PID(C, 1, 1), Alias(B, CB, (1, 2, 3)), "x"),
    enp.SendExit(PID(B, 7, CB), TO, gerrors.TerminateReasonKill),
    enp.RequestPID(PID(C, 1, 1), TO, Ref(C, 1, (1, 2, 3)), "x"),
    enp.RequestPID(FROM, TO, Ref(C, 1, (1, 2, 3)), "a call with another node's ref"),
    enp.Response(PID(C, 1, 1), TO, THEIR_REF, "an answer 'from' a third node"),
    enp.Response(FROM, TO, Ref(C, 1, (1, 2, 3)), "an answer to a third node's call"),
    enp.ResponseError(FROM, TO, MY_REF, gerrors.Timeout("an answer to a's own ref")),
    enp.Ack(PID(B, 7, CB), TO, THEIR_REF, None),
    enp.Link(PID(C, 1, 1), TO, MY_REF),
    enp.Demonitor(FROM, TO, Ref(C, 1, (1, 2, 3))),
    enp.Spawn(PID(C, 1, 1), MY_REF, "name", None, {}, ()),
    enp.ApplicationStart(PID(C, 1, 1), MY_REF, "app", 0, {}),
    enp.Result(FROM, THEIR_REF, None, None),  # to a's own process
    enp.TerminatePID(PID(C, 1, 1), gerrors.TerminateReasonNormal),
    enp.TerminateEvent(Event("ev", C), gerrors.TerminateReasonNormal),
    enp.SendEvent(FROM, Event("ev", C), 1, "x"),
    enp.SendEvent(PID(C, 1, 1), Event("ev", A), 1, "x"),
]


@pytest.mark.parametrize("msg", SPEAKING_FOR_ANOTHER, ids=lambda m: type(m).__name__)
def test_a_frame_that_speaks_for_another_node_is_refused_both_ways(msg):
    """A frame on a link from a@h to b@h speaks only for a@h's processes, to b@h's: a
    sender, a ref or a target of another node is ``Incorrect`` at the sender (nothing
    appended), and a ProtocolError that closes the link at the receiver (whose node would
    otherwise act on it as if that node's process had sent it)."""
    sender, receiver = link()
    with pytest.raises(gerrors.Incorrect):
        sender.send(msg)
    assert sender.pending == 0
    receiver.feed(enp.encode(enp.Heartbeat(1)))
    with pytest.raises(enp.ProtocolError, match="speaks only") as caught:
        receiver.feed(enp.encode(msg))
    assert caught.value.events == []
    assert receiver.failed


def test_the_frames_a_node_sends_for_itself_pass():
    """What a node's network sends with every identifier in full is never refused: its
    core's and processes' frames, answers to the peer's refs, ends of its own targets."""
    sender, receiver = link()
    ok = [
        enp.SendExit(FROM, TO, gerrors.TerminateReasonKill),
        enp.SendAlias(FROM, Alias(B, CB, (1, 2, 3)), "x", 0, True, MY_REF),
        enp.ResponseError(PID(A, 1, CA), TO, THEIR_REF, gerrors.Timeout("t")),
        enp.Ack(PID(A, 1010, CA - 1), TO, THEIR_REF, gerrors.ProcessIncarnation("old")),  # an old PID's
        enp.Result(TO, THEIR_REF, None, None),
        enp.Monitor(PID(A, 1, CA), Event("ev", B), MY_REF),
        enp.Spawn(FROM, MY_REF, "name", "reg", {}, (1,)),
        enp.TerminateAlias(Alias(A, CA, (1, 2, 3)), gerrors.TerminateReasonNormal),
        enp.SendEvent(FROM, Event("ev", A), 1, "x"),
    ]
    for msg in ok:
        sender.send(msg)
    assert frames_same(receiver.feed(sender.flush()), ok)


# the fields of a call frame, good and bad: another node's or incarnation's PID, a PID or
# ref id outside 64 bits, a ref of the wrong node, a priority or important of the wrong type
call_kinds = st.sampled_from([enp.RequestPID, enp.Response, enp.Ack])
call_froms = st.sampled_from([FROM, FROM, PID(A, 0, CA), PID(A, 5, CA - 1), PID(C, 1, 1), PID(A, -1, CA),
                              PID(A, 2**64, CA), ProcessID("srv", A)])
call_tos = st.sampled_from([TO, TO, PID(B, 7, CB), PID(B, 7, CB + 1), PID(C, 7, CB), PID(B, -1, CB),
                            PID(B, 2**64, CB), ProcessID("srv", B)])
call_refs = st.sampled_from([MY_REF, THEIR_REF, Ref(C, 1, (1, 2, 3)), Ref(A, CA, (2**64, 0, 0)),
                             Ref(B, CB, (-1, 0, 0)), Ref(A, CA + 1, (1, 2, 3)), None])
call_values = st.one_of(values, st.none(), reasons, st.just(_Unregistered(1)), st.just(_nested(edf.MAX_DEPTH)))


@given(
    st.lists(
        st.tuples(call_kinds, call_froms, call_tos, call_refs, call_values, st.sampled_from([0, 1, 2, 3, -1, True]),
                  st.sampled_from([False, True, 0]), st.sampled_from([None, 0, 64])),
        min_size=1, max_size=8,
    )
)
def test_a_call_frame_arrives_as_sent_or_its_send_raises_a_documented_error(calls):
    """Whatever its fields, ``send_call`` (the network's way to send a call frame without
    making the message) either appends the frame of that message, which arrives whole
    as ``send`` of it would, or raises Incorrect, ProcessIncarnation, EncodeError or
    TooLarge with nothing appended: never struct's error for an id outside 64 bits."""
    sender, receiver = link(peer_max_message_size=4000)
    twin, _ = link(peer_max_message_size=4000)
    sent = []
    for kind, from_, to, ref, value, priority, important, compress in calls:
        if kind is enp.Ack:
            msg = enp.Ack(from_, to, ref, value)
            fields = (from_, to, ref, value)
        else:
            msg = kind(from_, to, ref, value, priority, important)
            fields = (from_, to, ref, value, priority, important)
        before = sender.pending
        try:
            sender.send_call(kind, *fields, compress=compress)
        except (gerrors.Incorrect, gerrors.ProcessIncarnation, edf.EncodeError, gerrors.TooLarge) as e:
            assert sender.pending == before
            with pytest.raises(type(e)) as again:
                twin.send(msg, compress=compress)
            assert str(again.value) == str(e)
            continue
        twin.send(msg, compress=compress)
        sent.append(msg)
    data = bytes(sender.flush())
    assert data == bytes(twin.flush())
    assert frames_same(receiver.feed(data), sent)


def test_a_call_frame_is_the_bytes_docs_wire_md_gives():
    sender, _ = link()
    sender.send_call(enp.RequestPID, FROM, TO, MY_REF, "hi", 1, True)
    sender.send_call(enp.Response, FROM, TO, THEIR_REF, (1,))
    assert bytes(sender.flush()) == bytes.fromhex(
        "4e03 00000034 f1 83"  # length 52, order 1 + 1005 % 255, type 131 (LinkRequestPID)
        "00000000000003ed 00000000000003f2 05"  # from 1005, to 1010, priority 1 | important
        "0000000000000001 0000000000000002 0000000000000003"  # the ref's ids
        "a26869"  # "hi"
        "4e03 00000036 f1 8b"  # length 54, type 139 (LinkResponse)
        "00000000000003ed 00000000000003f2 08"  # priority 0, may hold marked arrays
        "0000000000000004 0000000000000005 0000000000000006"
        "92c7001001"  # (1,)
    )


def test_send_call_refuses_what_no_call_frame_carries():
    sender, _ = link()
    with pytest.raises(gerrors.Incorrect, match="RequestPID, Response or Ack"):
        sender.send_call(enp.SendPID, FROM, TO, MY_REF, "x")  # type: ignore[arg-type]
    with pytest.raises(gerrors.Incorrect, match="an Ack has no priority"):
        sender.send_call(enp.Ack, FROM, TO, THEIR_REF, None, 1)
    assert sender.pending == 0


def _answer(caller: enp.LinkCodec, callee: enp.LinkCodec, request_bytes: bytes) -> list:
    """The callee's answer to every request in ``request_bytes``, fed to ``caller``."""
    for request in callee.feed(request_bytes):
        callee.send_call(enp.Response, request.to, request.from_, request.ref, request.message)
    return caller.feed(bytes(callee.flush()))


def test_the_answer_to_a_call_carries_the_very_ref_and_caller_the_call_was_sent_with():
    # the caller keys its call by the ref; the answer's ref found by identity spares
    # Ref's __eq__ (Python code) in every table the answer is looked up in
    caller, callee = link()
    ref = Ref(A, CA, (11, 0, 0))
    me = PID(A, 1005, CA)
    callee.send_pid(TO, PID(A, 1005, CA), "a copy of me, decoded before the call")
    assert caller.feed(bytes(callee.flush()))[0].to is not me
    caller.send_call(enp.RequestPID, me, TO, ref, "ping")
    (answer,) = _answer(caller, callee, bytes(caller.flush()))
    assert answer.ref is ref and answer.message == "ping"
    assert answer.to is me  # and its caller, the PID it sent it from
    # one the caller never sent on this codec (nor its pool's) arrives as an equal copy
    callee.send_call(enp.Response, TO, FROM, Ref(A, CA, (12, 0, 0)), "late")
    (late,) = caller.feed(bytes(callee.flush()))
    assert late.ref == Ref(A, CA, (12, 0, 0)) and hash(late.ref) == hash(Ref(A, CA, (12, 0, 0)))


def test_the_links_of_one_pool_sharing_their_calls_answer_on_any_of_them():
    asked: dict = {}
    first = enp.LinkCodec(A, CA, B, CB, registry=REG, asked=asked)
    second = enp.LinkCodec(A, CA, B, CB, registry=REG, asked=asked)
    _, callee = link()
    ref = Ref(A, CA, (21, 0, 0))
    first.send_call(enp.RequestPID, FROM, TO, ref, 1)
    (answer,) = _answer(second, callee, bytes(first.flush()))
    assert answer.ref is ref and asked == {}
    with pytest.raises(gerrors.Incorrect, match="asked must be a dict"):
        enp.LinkCodec(A, CA, B, CB, asked=[])  # type: ignore[arg-type]


def test_the_refs_of_calls_never_answered_are_kept_only_up_to_a_bound():
    caller, callee = link()
    refs = [Ref(A, CA, (i, 0, 0)) for i in range(enp._ASKED_MAX + 10)]
    for ref in refs:
        caller.send_call(enp.RequestPID, FROM, TO, ref, 1)
        caller.flush()
    assert 0 < len(caller._asked) <= enp._ASKED_MAX
    callee.send_call(enp.Response, TO, FROM, refs[-1], "answer")  # the last one, kept
    (answer,) = caller.feed(bytes(callee.flush()))
    assert answer.ref is refs[-1]
    callee.send_call(enp.Response, TO, FROM, Ref(A, CA, (0, 0, 0)), "forgotten")
    (forgotten,) = caller.feed(bytes(callee.flush()))
    assert forgotten.ref == Ref(A, CA, (0, 0, 0))


def test_a_frame_above_the_peers_limit_is_too_large_and_the_link_goes_on():
    sender, receiver = link(peer_max_message_size=200)
    sender.send_pid(FROM, TO, "before")
    for send in (
        lambda: sender.send_pid(FROM, TO, "x" * 300),
        lambda: sender.send_pid(FROM, TO, "x" * 300, important=True, ref=MY_REF),
        lambda: sender.send(enp.SendProcessID(FROM, ProcessID("new", B), "x" * 300)),
        lambda: sender.send(enp.SendAlias(FROM, Alias(B, CB, (1, 2, 3)), "x" * 300)),
    ):
        with pytest.raises(gerrors.TooLarge, match="exceeds the peer's limit of 200"):
            send()
    sender.send(enp.SendProcessID(FROM, ProcessID("new", B), "after"))  # "new" was never defined
    data = bytes(sender.flush())
    assert [m.message for m in receiver.feed(data)] == ["before", "after"]
    assert all(length <= 200 for length in _lengths(data))


def _lengths(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        out.append(struct.unpack_from(">I", data, pos + 2)[0])
        pos += out[-1]
    return out


@pytest.mark.parametrize("to", [[TO], [TO, PID(B, 5, CB)]], ids=["one run", "entry by entry"])
def test_a_batch_never_grows_past_the_peers_limit(to):
    sender, receiver = link(peer_max_message_size=300)
    for i in range(50):
        sender.send_pid(FROM, to[i % len(to)], f"message {i:04}")
    data = bytes(sender.flush())
    assert max(_lengths(data)) <= 300 and len(_lengths(data)) > 1
    assert [m.message for m in receiver.feed(data)] == [f"message {i:04}" for i in range(50)]


def test_an_unencodable_value_raises_at_send_and_leaves_nothing_behind():
    @dataclasses.dataclass
    class Secret:
        x: int

    sender, receiver = link()
    for send in (
        lambda: sender.send_pid(FROM, TO, Secret(1)),
        lambda: sender.send_pid(FROM, TO, Secret(1), important=True, ref=MY_REF),
        lambda: sender.send(enp.SendProcessID(FROM, ProcessID("fresh", B), Secret(1))),
    ):
        with pytest.raises(edf.EncodeError, match="unregistered dataclass"):
            send()
    assert sender.pending == 0
    # the failed send defined no name: the next use of it must define it again
    sender.send(enp.SendProcessID(FROM, ProcessID("fresh", B), "ok"))
    assert [m.to for m in receiver.feed(sender.flush())] == [ProcessID("fresh", B)]


def test_names_are_defined_once_then_referred_to_and_redefined_when_the_table_wraps():
    sender, receiver = link(batch_entries=0)
    sender.send(enp.SendProcessID(FROM, ProcessID("srv", B), 1))
    first = bytes(sender.flush())
    sender.send(enp.SendProcessID(FROM, ProcessID("srv", B), 2))
    second = bytes(sender.flush())
    assert b"srv" in first and b"srv" not in second and len(second) == len(first) - 4
    assert [m.to for m in receiver.feed(first + second)] == [ProcessID("srv", B)] * 2
    # more names than the table holds: every one still arrives as itself
    sender, receiver = link(batch_entries=7)
    names = [f"p{i}" for i in range(enp.NAME_TABLE_SIZE + 300)] + ["p0", "p5", "p1299"]
    for name in names:
        sender.send(enp.SendProcessID(FROM, ProcessID(name, B), name))
    got = receiver.feed(sender.flush())
    assert [m.to.name for m in got] == names == [m.message for m in got]


def test_decoded_messages_hold_no_view_of_the_buffer_they_came_from():
    sender, receiver = link()
    sender.send_pid(FROM, TO, {"k": [b"bytes", "text", (1, 2)]})
    sender.send_pid(FROM, TO, b"raw", important=True, ref=MY_REF)
    data = bytes(sender.flush())
    buf = bytearray(data) + bytearray(5)  # a transport's buffer, with an unfinished frame's start
    got = receiver.feed(memoryview(buf)[: len(data) + 3])
    buf[:] = b"\x00" * len(buf)  # the transport reuses its buffer after the callback
    buf += b"grow"  # and may resize it: no view of it was kept
    assert got == [enp.SendPID(FROM, TO, {"k": [b"bytes", "text", (1, 2)]}),
                   enp.SendPID(FROM, TO, b"raw", 0, True, MY_REF)]  # fmt: skip
    assert receiver.buffered == 3


def test_a_protocol_error_keeps_no_view_of_the_callers_buffer():
    _, receiver = link()
    buf = bytearray(struct.pack(">BBIBB", 78, enp.VERSION, 12, 0, 111) + b"\x00" * 4)
    with pytest.raises(enp.ProtocolError, match="shorter than its fields") as info:
        receiver.feed(memoryview(buf))
    buf += b"grow"  # would raise BufferError if the error's traceback held a view
    assert receiver.failed and info.value.events == []


@dataclasses.dataclass
class Private:
    """Registered on the sender's node only: the receiver cannot decode it."""

    x: int


def _private_link(**receiver_options) -> tuple[enp.LinkCodec, enp.LinkCodec]:
    other = make_registry()
    other.register_type(Private, "private")
    return (enp.LinkCodec(A, CA, B, CB, registry=other),
            enp.LinkCodec(B, CB, A, CA, registry=REG, **receiver_options))


def test_an_undecodable_value_in_a_batch_costs_only_its_own_send():
    sender, receiver = _private_link()
    sender.send_pid(FROM, TO, "first")
    sender.send_pid(FROM, TO, Private(1))
    sender.send(enp.SendProcessID(FROM, ProcessID("srv", B), [Private(2)]))
    sender.send_pid(FROM, TO, ("last",))
    sender.send_pid(FROM, TO, Private(3), important=True, ref=MY_REF)
    got = receiver.feed(sender.flush())
    assert got[0] == enp.SendPID(FROM, TO, "first") and got[3] == enp.SendPID(FROM, TO, ("last",))
    for i, want in ((1, enp.SendPID(FROM, TO, None)), (2, enp.SendProcessID(FROM, ProcessID("srv", B), None)),
                    (4, enp.SendPID(FROM, TO, None, 0, True, MY_REF))):  # fmt: skip
        assert isinstance(got[i], enp.Undecodable) and got[i].message == want
        assert "unknown record type 'private'" in str(got[i].error)
    assert not receiver.failed


def test_a_value_nested_to_the_limit_in_a_batch_still_arrives():
    value: object = 1
    for _ in range(edf.MAX_DEPTH):
        value = (value,)
    sender, receiver = link()
    sender.send_pid(FROM, TO, "a")
    sender.send_pid(FROM, TO, value)  # two levels deeper inside the batch than on its own
    got = receiver.feed(sender.flush())
    assert got[0].message == "a" and type(got[1].message) is tuple


def test_a_sender_that_leaves_the_marked_flag_off_wrongly_costs_only_time():
    sender, receiver = link(batch_entries=0)
    sender.send_pid(FROM, TO, ("t", {1}))
    data = bytearray(sender.flush())
    assert data[24] == enp._FLAG_MARKED
    data[24] = 0
    assert receiver.feed(data) == [enp.SendPID(FROM, TO, ("t", {1}))]


def _raw(ftype: int, body: bytes) -> bytes:
    return struct.pack(">BBIBB", 78, enp.VERSION, 8 + len(body), 0, ftype) + body


def _entry(*items: object) -> bytes:
    return msgpack.packb(list(items))


def _batch(*entries: bytes, flags: int = 0) -> bytes:
    return _raw(enp.TYPE_BATCH, bytes([flags]) + b"\xdd" + struct.pack(">I", len(entries)) + b"".join(entries))


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (_raw(111, b"\x00" * 16), "shorter than its fields"),
        (_raw(111, struct.pack(">QQB", 1, 2, 3)), "priority 3"),
        (_raw(111, struct.pack(">QQB", 1, 2, 0x10)), "unknown bits"),
        (_raw(111, struct.pack(">QQB", 1, 2, 4) + b"\x00" * 23), "shorter than its fields"),
        (_raw(131, struct.pack(">QQB", 1, 2, 0)), "shorter than its fields"),
        (_raw(132, struct.pack(">QB", 1, 0)), "shorter than its fields"),
        (_raw(171, struct.pack(">QQBQQQ", 1, 2, 1, 0, 0, 0) + b"\xc0"), "an acknowledgement has no priority"),
        (_raw(171, struct.pack(">QQBQQQ", 1, 2, 0, 0, 0, 0) + b"\x05"), "Ack.error must be an error or nil"),
        (_raw(112, struct.pack(">QBH", 1, 0, 5) + b"\xc0"), "entry never defined"),
        (_raw(112, struct.pack(">QBH", 1, 0, 5000) + b"\xc0"), "past the table of 1024"),
        (_raw(112, struct.pack(">QBH", 1, 0, 0x8000 | 5000) + b"\x01a\xc0"), "past the table"),
        (_raw(112, struct.pack(">QBH", 1, 0, 0x8000) + b"\x05ab"), "shorter than its name"),
        (_raw(112, struct.pack(">QBH", 1, 0, 0x8000) + b"\x01\xff\xc0"), "UTF-8"),
        (_raw(112, struct.pack(">QB", 1, 0)), "shorter than its name"),
        (_raw(enp.TYPE_BATCH, b""), "without its flags"),
        (_batch(_entry(1, 2, 0, "x"), flags=1), "unknown bits"),
        (_batch(_entry(1, 2, 0)), "entry must be"),
        (_batch(_entry(-1, 2, 0, "x")), "from id must be a u64"),
        (_batch(_entry("1", 2, 0, "x")), "from id must be a u64"),
        (_batch(_entry(1, -2, 0, "x")), "needs a u64 id"),
        (_batch(_entry(1, 2, 3, "x")), "kind 3"),
        (_batch(_entry(1, 2, 7, "x")), "kind 7"),
        (_batch(_entry(1, 5, 4, "x")), "no such target"),
        (_batch(_entry(1, [2000, "n"], 4, "x")), "past the table"),
        (_batch(_entry(1, [0, 5], 4, "x")), "no such target"),
        (_batch(_entry(1, 5, 4, "x", "y")), "more than one value must be of kind 0..2"),
        (_batch(_entry(1, 2, 3, "x", "y")), "more than one value must be of kind 0..2, not 3"),
        (_batch(_entry(1, 2, True, "x", "y")), "more than one value must be of kind 0..2"),
        (_batch(_entry(-1, 2, 0, "x", "y")), "from id must be a u64"),
        (_batch(_entry(1, "2", 0, "x", "y")), "needs a u64 id"),
        (_batch(_entry(1, 2.5, 0, *range(20))), "needs a u64 id"),
        (_batch(_entry(1, 2, 0, "x"), _entry(1, -2, 0, "x", "y")), "needs a u64 id"),
        (_batch(b"\x96" + _entry(1, 2, 0, "x", "y")[1:]), "malformed batch"),  # an item short
        (_batch(b"\xdd\x00\x00\x00\x10" + _entry(*range(15))[1:]), "malformed batch"),
        (_batch(b"\xdd\x00\x00\x00\x02" + _entry(1, 2)[1:]), "entry must be"),
        (_raw(enp.TYPE_BATCH, b"\x00\xdd\x00\x00\x00\x02" + _entry(1, 2, 0, "x")), "malformed batch"),
        (_raw(enp.TYPE_BATCH, b"\x00\xdd\x00\x00\x00\x01" + _entry(1, 2, 0, "x") + b"\x01"), "extra bytes"),
    ],
)
@pytest.mark.parametrize("batch_events", [False, True])
def test_malformed_link_frames_close_the_link_with_a_reason(data, why, batch_events):
    receiver = enp.LinkCodec(B, CB, A, CA, registry=REG, batch_events=batch_events)
    good = enp.encode(enp.Heartbeat(1))
    with pytest.raises(enp.ProtocolError, match=why) as info:
        receiver.feed(good + data)
    assert info.value.events == [enp.Heartbeat(1)] and receiver.failed


def test_a_name_defined_in_a_batch_serves_the_frames_after_it():
    _, receiver = link()
    data = _batch(_entry(1, [3, "srv"], 5, "x")) + _raw(112, struct.pack(">QBH", 1, 0, 3) + b"\xa1y")
    got = receiver.feed(data)
    srv = ProcessID("srv", B)
    assert [(m.to, m.message, m.priority) for m in got] == [(srv, "x", 1), (srv, "y", 0)]


def test_a_plain_frame_decoder_knows_no_link_frames():
    sender, _ = link()
    sender.send_pid(FROM, TO, 1)
    with pytest.raises(enp.ProtocolError, match="unknown frame type 110"):
        enp.FrameDecoder(REG).feed(sender.flush())


def test_a_codec_is_made_from_the_two_introductions_of_the_handshake():
    ours = hs.NodeInfo(A, CA, max_message_size=5000)
    theirs = hs.NodeInfo(B, CB, max_message_size=300)
    codec = enp.LinkCodec.for_link(ours, theirs, REG)
    assert (codec.local, codec.local_creation, codec.peer, codec.peer_creation) == (A, CA, B, CB)
    assert codec.peer_max_message_size == 300 and codec._decoder.max_message_size == 5000
    with pytest.raises(gerrors.TooLarge):
        codec.send_pid(FROM, TO, "x" * 400)


@pytest.mark.parametrize("bad", [dict(local=""), dict(peer=5), dict(local_creation="1"), dict(batch_bytes=-1)])
def test_a_codec_refuses_arguments_that_are_not_a_link(bad):
    args = dict(local=A, local_creation=CA, peer=B, peer_creation=CB) | bad
    with pytest.raises(gerrors.Incorrect):
        enp.LinkCodec(args.pop("local"), args.pop("local_creation"), args.pop("peer"), args.pop("peer_creation"),
                      **args)  # fmt: skip


def test_a_view_of_wider_items_is_read_as_its_bytes():
    import array

    sender, receiver = link()
    sender.send_pid(FROM, TO, "hi")
    data = bytes(sender.flush())
    data += bytes(-len(data) % 4)  # whole 4-byte items; the padding starts an unfinished frame
    got = receiver.feed(memoryview(array.array("I", data)))
    assert got == [enp.SendPID(FROM, TO, "hi")] and receiver.buffered == len(data) - 25 == 3


def test_a_batch_of_plain_sends_to_pids_arrives_as_one_sends_event_when_asked():
    sender, plain = link()
    columns = enp.LinkCodec(B, CB, A, CA, registry=REG, batch_events=True)
    sent = [enp.SendPID(FROM, TO, "a"), enp.SendPID(PID(A, 0, CA), PID(B, 2**64 - 1, CB), ("b",), 2),
            enp.SendPID(FROM, TO, {"c": [1]}, 1)]
    for msg in sent:
        sender.send(msg)
    data = bytes(sender.flush())
    assert frame_types(data) == [enp.TYPE_BATCH]
    (sends,) = columns.feed(data)
    assert type(sends) is enp.Sends and len(sends) == 3
    assert sends.messages() == sent == plain.feed(data)
    # a batch that also holds a send to a name arrives send by send, in order
    sender.send(sent[0])
    sender.send(enp.SendProcessID(FROM, ProcessID("srv", B), "d"))
    got = columns.feed(sender.flush())
    assert got == [sent[0], enp.SendProcessID(FROM, ProcessID("srv", B), "d")]


@pytest.mark.parametrize("batch_events", [False, True])
def test_a_batch_from_more_senders_than_the_pid_cache_holds_arrives_whole(batch_events):
    sender, _ = link(batch_entries=10_000, batch_bytes=1 << 20)
    receiver = enp.LinkCodec(B, CB, A, CA, registry=REG, batch_events=batch_events)
    sent = [enp.SendPID(PID(A, i, CA), PID(B, i + 1, CB), i) for i in range(enp._PID_CACHE + 100)]
    for msg in sent:
        sender.send(msg)
    data = bytes(sender.flush())
    assert frame_types(data) == [enp.TYPE_BATCH]
    got = receiver.feed(data)  # too many ids for the columns' caches: send by send
    assert got == sent
    sender.send(sent[0])
    sender.send(sent[1])
    got = receiver.feed(sender.flush())
    assert (got[0].messages() if batch_events else got) == sent[:2]


# -- runs: a batch entry of many values --------------------------------------------------------


def _batch_entries(data: bytes) -> list[list]:
    """The entries of every batch frame in ``data``, decoded as plain msgpack."""
    entries, pos = [], 0
    while pos < len(data):
        _m, _v, length, _o, ftype = struct.unpack_from(">BBIBB", data, pos)
        if ftype == enp.TYPE_BATCH:
            entries += msgpack.unpackb(data[pos + 9 : pos + length], ext_hook=lambda c, d: (c, d))
        pos += length
    return entries


def _sends(events: list) -> list:
    """The events of a batch_events codec with its Sends and SendRuns as their SendPIDs."""
    out = []
    for event in events:
        out += event.messages() if type(event) in (enp.Sends, enp.SendRun) else [event]
    return out


@pytest.mark.parametrize("count", [2, 12, 13, 14, 1000])
def test_a_stream_of_sends_to_one_recipient_is_one_entry_carrying_each_value(count):
    sender, receiver = link()
    for i in range(count):
        assert sender.send_plain(FROM, TO, i * 1000, 0) is None
    data = bytes(sender.flush())
    # one entry, its ids and kind once: [1005, 1010, 0, 0, 1000, 2000, ...]
    assert _batch_entries(data) == [[1005, 1010, 0, *(i * 1000 for i in range(count))]]
    assert data[14] == (0x90 + 3 + count if count <= 12 else 0xDD)
    assert receiver.feed(data) == [enp.SendPID(FROM, TO, i * 1000) for i in range(count)]
    columns = enp.LinkCodec(B, CB, A, CA, registry=REG, batch_events=True)
    (run,) = columns.feed(data)
    assert type(run) is enp.SendRun and len(run) == count and run.from_ == FROM and run.to == TO
    assert run.priority == 0 and run.message == [i * 1000 for i in range(count)]
    assert run.messages() == [enp.SendPID(FROM, TO, i * 1000) for i in range(count)]


def test_an_entry_ends_at_another_sender_recipient_or_priority():
    sender, receiver = link()
    other_to, other_from = PID(B, 5, CB), PID(A, 6, CA)
    sent = [(FROM, TO, 0, "a"), (FROM, TO, 0, "b"), (FROM, other_to, 0, "c"), (FROM, TO, 0, "d"),
            (FROM, TO, 1, "e"), (FROM, TO, 1, "f"), (other_from, TO, 1, "g"), (FROM, TO, 1, "h")]  # fmt: skip
    for from_, to, priority, value in sent:
        sender.send_plain(from_, to, value, priority)
    data = bytes(sender.flush())
    assert _batch_entries(data) == [[1005, 1010, 0, "a", "b"], [1005, 5, 0, "c"], [1005, 1010, 0, "d"],
                                    [1005, 1010, 1, "e", "f"], [6, 1010, 1, "g"], [1005, 1010, 1, "h"]]  # fmt: skip
    want = [enp.SendPID(f, t, v, p) for f, t, p, v in sent]
    assert receiver.feed(data) == want
    columns = enp.LinkCodec(B, CB, A, CA, registry=REG, batch_events=True)
    got = columns.feed(data)
    assert [type(e) for e in got] == [enp.SendRun, enp.SendPID, enp.SendPID, enp.SendRun, enp.SendPID, enp.SendPID]
    assert _sends(got) == want


def test_a_send_to_a_name_or_a_frame_between_two_sends_ends_the_entry():
    sender, receiver = link()
    sender.send_pid(FROM, TO, 1)
    sender.send(enp.SendProcessID(FROM, ProcessID("srv", B), 2))
    sender.send_pid(FROM, TO, 3)
    sender.send_pid(FROM, TO, 4)
    sender.send(enp.Heartbeat(7))
    sender.send_pid(FROM, TO, 5)
    data = bytes(sender.flush())
    assert frame_types(data) == [enp.TYPE_BATCH, 190, enp.TYPE_BATCH]
    assert [e[3:] for e in _batch_entries(data)] == [[1], [2], [3, 4], [5]]
    assert [getattr(m, "message", None) for m in receiver.feed(data)] == [1, 2, 3, 4, None, 5]


runs = st.lists(
    st.tuples(st.sampled_from([(FROM, TO), (FROM, PID(B, 7, CB)), (PID(A, 0, CA), TO)]), priorities,
              st.integers(1, 30), st.sampled_from([0, "x" * 40, (1, "t")])),  # fmt: skip
    min_size=1, max_size=8,
)


@given(runs, st.sampled_from([1, 2, 5, 12, 13, 1000]), st.sampled_from([80, 300, 64 * 1024]),
       st.sampled_from([0, 200, 400]))  # fmt: skip
def test_runs_arrive_whole_and_in_order_within_every_limit(sends, entries, batch_bytes, peer_limit):
    sender, receiver = link(batch_entries=entries, batch_bytes=batch_bytes, peer_max_message_size=peer_limit)
    columns = enp.LinkCodec(B, CB, A, CA, registry=REG, batch_events=True)
    want, data = [], bytearray()
    for (from_, to), priority, times, value in sends:
        for i in range(times):
            message = [value, i]
            data += sender.send_plain(from_, to, message, priority) or b""
            want.append(enp.SendPID(from_, to, message, priority))
    data += sender.flush()
    data = bytes(data)
    assert receiver.feed(data) == want
    assert _sends(columns.feed(data)) == want
    pos = 0
    while pos < len(data):  # every batch frame within the byte limits, its sends within the entry limit
        _m, _v, length, _o, ftype = struct.unpack_from(">BBIBB", data, pos)
        assert ftype == enp.TYPE_BATCH and (not peer_limit or length <= peer_limit)
        entries_of = msgpack.unpackb(data[pos + 9 : pos + length], ext_hook=lambda c, d: (c, d))
        assert sum(len(e) - 3 for e in entries_of) <= entries
        if len(entries_of) > 1:
            assert length - 14 <= batch_bytes
        pos += length


def test_a_later_value_with_marked_arrays_sets_the_batchs_flag():
    sender, receiver = link()
    sender.send_pid(FROM, TO, 1)
    sender.send_pid(FROM, TO, 2)
    data = bytes(sender.flush())
    assert data[8] == 0
    sender.send_pid(FROM, TO, 1)
    for i in range(20):  # past the fixarray header too
        sender.send_plain(FROM, TO, i, 0)
    sender.send_plain(FROM, TO, (1, 2), 0)
    data = bytes(sender.flush())
    assert data[8] == 8 and receiver.feed(data)[-1].message == (1, 2)


@pytest.mark.parametrize("batch_events", [False, True])
def test_an_undecodable_value_in_a_run_costs_only_its_own_send(batch_events):
    sender, receiver = _private_link(batch_events=batch_events)
    values_sent = ["first", *range(14), Private(1), "last"]
    for value in values_sent:
        sender.send_plain(FROM, TO, value, 1)
    data = bytes(sender.flush())
    assert len(_batch_entries_raw(data)) == 1
    got = receiver.feed(data)
    assert len(got) == len(values_sent) and not receiver.failed
    assert got[:15] == [enp.SendPID(FROM, TO, v, 1) for v in values_sent[:15]]
    assert isinstance(got[15], enp.Undecodable) and got[15].message == enp.SendPID(FROM, TO, None, 1)
    assert got[16] == enp.SendPID(FROM, TO, "last", 1)


def _batch_entries_raw(data: bytes) -> list:
    # entries of the first batch frame, undecoded values left as they are (ext as tuples)
    return msgpack.unpackb(data[9 : struct.unpack_from(">I", data, 2)[0]], ext_hook=lambda c, d: (c, d))


def test_a_value_nested_to_the_limit_in_a_long_run_still_arrives():
    deep = _nested(edf.MAX_DEPTH)
    sender, receiver = link()
    for i in range(15):
        sender.send_plain(FROM, TO, deep if i == 13 else i, 0)
    got = receiver.feed(sender.flush())
    assert [m.message for m in got[:13]] == list(range(13)) and got[14].message == 14
    assert type(got[13].message) is tuple and not receiver.failed


def test_a_run_that_fills_the_batch_goes_on_in_the_next_one():
    sender, receiver = link(batch_entries=5)
    for i in range(12):
        sender.send_plain(FROM, TO, i, 0)
    data = bytes(sender.flush())
    assert frame_types(data) == [enp.TYPE_BATCH] * 3
    assert [e[3:] for e in _batch_entries(data)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]
    assert [m.message for m in receiver.feed(data)] == list(range(12))


def test_a_value_too_big_for_the_peer_is_too_large_and_leaves_the_run_as_it_was():
    sender, receiver = link(peer_max_message_size=300)
    sender.send_plain(FROM, TO, 1, 0)
    sender.send_plain(FROM, TO, 2, 0)
    with pytest.raises(gerrors.TooLarge):
        sender.send_plain(FROM, TO, "x" * 400, 0)
    with pytest.raises(edf.EncodeError):
        sender.send_plain(FROM, TO, object(), 0)
    sender.send_plain(FROM, TO, 3, 0)
    data = bytes(sender.flush())
    assert [m.message for m in receiver.feed(data)] == [1, 2, 3]

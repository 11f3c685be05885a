"""Hypothesis strategies for every value EDF carries and every ENP frame, shared by the wire tests."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from hypothesis import strategies as st

from ergo.gen import errors as gerrors
from ergo.gen import messages as gmessages
from ergo.gen.ids import PID, Alias, Atom, Event, ProcessID, Ref
from ergo.wire import edf, enp


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: Any


@dataclasses.dataclass
class Box:
    label: str
    items: list
    inner: Point | None = None


def make_registry() -> edf.Registry:
    reg = edf.Registry()
    reg.register_type(Point, "test.Point")
    reg.register_type(Box, "test.Box")
    return reg


u64 = st.integers(0, 2**64 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
node_names = st.sampled_from(["a@localhost", "node_local_11@localhost", "mem@localhost", "ü@hôst"])
atoms = st.text(max_size=40).map(Atom)
pids = st.builds(PID, node_names, u64, i64)
process_ids = st.builds(ProcessID, atoms, node_names)
events = st.builds(Event, atoms, node_names)
refs = st.builds(Ref, node_names, i64, st.tuples(u64, u64, u64))
aliases = st.builds(Alias, node_names, i64, st.tuples(u64, u64, u64))
identifiers = st.one_of(pids, process_ids, events, refs, aliases, atoms)

error_classes = st.sampled_from(sorted(gerrors.ERRORS.values(), key=lambda c: c.__name__))
ergo_errors = st.builds(lambda cls, text: cls(text), error_classes, st.text(max_size=20))
terminate_reasons = st.sampled_from(
    [
        gerrors.TerminateReasonNormal,
        gerrors.TerminateReasonKill,
        gerrors.TerminateReasonPanic,
        gerrors.TerminateReasonShutdown,
    ]
)
reasons = st.one_of(ergo_errors, terminate_reasons)

datetimes = st.datetimes(
    min_value=datetime.datetime(1970, 1, 1),
    max_value=datetime.datetime(2400, 1, 1),
    timezones=st.just(datetime.UTC),
).map(lambda d: d.replace(fold=0))  # fold means nothing in UTC and is not sent

hashable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
    identifiers,
    datetimes,
)
leaves = st.one_of(hashable_leaves, reasons)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.one_of(st.tuples(inner, inner), st.frozensets(inner, max_size=3)),
    max_leaves=6,
)


def _containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(hashables, inner, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.builds(Point, st.integers(), inner),
        st.builds(
            Box,
            st.text(max_size=8),
            st.lists(inner, max_size=3),
            st.none() | st.builds(Point, st.integers(), inner),
        ),
        st.builds(gmessages.MessageExitPID, pids, reasons),
        st.builds(gmessages.MessageDownProcessID, process_ids, reasons),
        st.builds(gmessages.MessageEvent, events, st.integers(0, 2**63), inner),
    )


values = st.recursive(leaves, _containers, max_leaves=20)
priorities = st.integers(0, 2)
targets = st.one_of(pids, process_ids, aliases, events, node_names.map(Atom))

frames = st.one_of(
    st.builds(enp.SendPID, pids, pids, values, priorities, st.booleans(), st.none() | refs),
    st.builds(enp.SendProcessID, pids, process_ids, values, priorities, st.booleans(), st.none() | refs),
    st.builds(enp.SendAlias, pids, aliases, values, priorities, st.booleans(), st.none() | refs),
    st.builds(enp.SendEvent, pids, events, i64, values, priorities),
    st.builds(enp.SendExit, pids, pids, reasons),
    st.builds(enp.RequestPID, pids, pids, refs, values, priorities, st.booleans()),
    st.builds(enp.RequestProcessID, pids, process_ids, refs, values, priorities, st.booleans()),
    st.builds(enp.RequestAlias, pids, aliases, refs, values, priorities, st.booleans()),
    st.builds(enp.Response, pids, pids, refs, values, priorities, st.booleans()),
    st.builds(enp.ResponseError, pids, pids, refs, reasons, priorities, st.booleans()),
    st.builds(enp.Link, pids, targets, refs),
    st.builds(enp.Unlink, pids, targets, refs),
    st.builds(enp.Monitor, pids, targets, refs),
    st.builds(enp.Demonitor, pids, targets, refs),
    st.builds(enp.Result, pids, refs, st.none() | reasons, values),
    st.builds(
        enp.Spawn,
        pids,
        refs,
        atoms,
        st.none() | atoms,
        st.dictionaries(st.text(max_size=8), values, max_size=3),
        st.lists(values, max_size=3).map(tuple),
    ),
    st.builds(
        enp.ApplicationStart,
        pids,
        refs,
        atoms,
        st.integers(0, 3),
        st.dictionaries(st.text(max_size=8), values, max_size=3),
    ),
    st.builds(enp.Ack, pids, pids, refs, st.none() | reasons),
    st.builds(enp.TerminatePID, pids, reasons),
    st.builds(enp.TerminateProcessID, process_ids, reasons),
    st.builds(enp.TerminateAlias, aliases, reasons),
    st.builds(enp.TerminateEvent, events, reasons),
    st.builds(enp.Heartbeat, u64),
)


def same(a: Any, b: Any) -> bool:
    """Equal *and* of the same types all the way down (1 == True == 1.0 and 'a' == Atom('a') are not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        keys_b = {_key(k): k for k in b}
        return all(
            _key(k) in keys_b and same(k, keys_b[_key(k)]) and same(v, b[keys_b[_key(k)]])
            for k, v in a.items()
        )
    if isinstance(a, (set, frozenset)):
        return {_key(x) for x in a} == {_key(x) for x in b}
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, float) and a == 0.0:
        return str(a) == str(b)  # keep -0.0 apart from 0.0
    return a == b


def _key(x: Any) -> Any:
    """A hashable key that keeps types apart, for comparing sets and dict keys strictly."""
    if isinstance(x, (tuple, frozenset)):
        return (
            type(x),
            tuple(sorted(map(repr, map(_key, x)))) if isinstance(x, frozenset) else tuple(map(_key, x)),
        )
    return (type(x), repr(x))


def marked(code: int, *items: bytes) -> bytes:
    """The msgpack bytes of an EDF marked array: ``[marker of code, *items]``, each item
    given as its own msgpack bytes (so a test can put anything, even garbage, in it)."""
    n = len(items) + 1
    head = bytes([0x90 | n]) if n < 16 else b"\xdd" + n.to_bytes(4, "big")
    return head + bytes([0xC7, 0, code]) + b"".join(items)

"""EDF: every value comes back as itself, with its type; bad bytes raise one DecodeError."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
import sys

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from wire_strategies import Box, Point, identifiers, make_registry, marked, reasons, same, values

from ergo.gen import errors as gerrors
from ergo.gen import messages as gmessages
from ergo.gen.ids import PID, Alias, Atom, Event, ProcessID, Ref
from ergo.wire import edf

REG = make_registry()
NODE = "node_local_11@localhost"


def round_trip(value, reg=REG):
    return reg.decode(reg.encode(value))


@given(values)
def test_every_value_round_trips_with_its_type(value):
    assert same(round_trip(value), value)


@given(identifiers)
def test_identifiers_round_trip(value):
    back = round_trip(value)
    assert type(back) is type(value) and back == value and str(back) == str(value)


@pytest.mark.parametrize(
    "value",
    [0, 1, -1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 2**1000, -(2**1000), 255, -256],
)
def test_ints_of_any_size_round_trip(value):
    assert same(round_trip(value), value)


def test_tuples_and_lists_stay_distinct():
    value = [(1, [2, (3,)]), [(), []]]
    assert same(round_trip(value), value)
    assert type(round_trip((1, 2))) is tuple and type(round_trip([1, 2])) is list


def test_atom_stays_atom_and_str_stays_str():
    back = round_trip([Atom("a"), "a", {Atom("k"): "v"}])
    assert type(back[0]) is Atom and type(back[1]) is str
    assert type(next(iter(back[2]))) is Atom


def test_sets_and_frozensets_round_trip():
    assert same(round_trip({1, (2, 3)}), {1, (2, 3)})
    assert same(round_trip(frozenset({Atom("x")})), frozenset({Atom("x")}))
    assert same(round_trip({frozenset({1}): {2}}), {frozenset({1}): {2}})


def test_dict_with_non_string_keys_round_trips():
    value = {1: "a", (1, 2): "b", PID(NODE, 1005): "c", None: 1, b"x": 2}
    assert same(round_trip(value), value)


def test_floats_keep_their_edges():
    for value in [0.0, -0.0, float("inf"), float("-inf"), 1e-308, 1.7976931348623157e308]:
        assert same(round_trip(value), value)
    assert math.isnan(round_trip(float("nan")))


def test_aware_datetime_round_trips_and_naive_is_refused():
    when = datetime.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=datetime.UTC)
    assert round_trip(when) == when
    with pytest.raises(edf.EncodeError, match="tzinfo"):
        REG.encode(datetime.datetime(2024, 5, 1))


@pytest.mark.parametrize("cls", sorted(gerrors.ERRORS.values(), key=lambda c: c.__name__))
def test_every_ergo_error_comes_back_as_the_same_class(cls):
    err = cls("what went wrong")
    back = round_trip(err)
    assert type(back) is cls and back == err
    assert round_trip(cls()) == cls()


@given(reasons)
def test_exit_reasons_round_trip(reason):
    assert round_trip(reason) == reason


def test_terminate_reasons_come_back_equal_to_the_constants():
    for reason in [
        gerrors.TerminateReasonNormal,
        gerrors.TerminateReasonKill,
        gerrors.TerminateReasonPanic,
        gerrors.TerminateReasonShutdown,
    ]:
        assert round_trip(reason) == reason


def test_foreign_exception_arrives_as_remote_error_with_its_name_and_text():
    back = round_trip(KeyError("missing"))
    assert back == edf.RemoteError("KeyError", "'missing'")
    assert back.type_name == "KeyError" and isinstance(back, gerrors.ErgoError)
    assert round_trip(back) == back


class Opaque:
    """A value with Python's default repr, which holds its address."""


def test_a_foreign_exceptions_text_is_the_same_in_every_process():
    # its text was str(): a set in its arguments in the order the sending process iterates
    # it (a set of strings: by PYTHONHASHSEED; {8, 1} iterates as 8, 1 everywhere), an
    # object by its address, so one seed's run sent another exit reason in another process
    assert round_trip(KeyError(frozenset({8, 1}))) == edf.RemoteError("KeyError", "frozenset({1, 8})")
    assert round_trip(ValueError({8, 1}, ["x", {8, 1}], {"k": {8, 1}})) == edf.RemoteError(
        "ValueError", "({1, 8}, ['x', {1, 8}], {'k': {1, 8}})")
    assert round_trip(ValueError(Opaque())) == edf.RemoteError("ValueError", f"<{__name__}.Opaque object>")
    assert round_trip(ValueError(set())) == edf.RemoteError("ValueError", "set()")
    assert round_trip(KeyError("missing")) == edf.RemoteError("KeyError", "'missing'")  # as str() where stable


def test_a_registered_errors_argument_that_cannot_travel_goes_as_the_same_text_everywhere():
    class Custom(gerrors.ErgoError):
        pass

    reg = edf.Registry()
    reg.register_type(Custom, "app.Custom2")
    back = reg.decode(reg.encode(Custom(frozenset({8, Opaque()}) - {8} | {8, 1})))
    assert back == Custom(f"frozenset({{1, 8, <{__name__}.Opaque object>}})")


def test_error_class_unknown_to_the_receiver_arrives_as_remote_error():
    class Custom(gerrors.ErgoError):
        pass

    sender = edf.Registry()
    sender.register_type(Custom, "app.Custom")
    back = edf.Registry().decode(sender.encode(Custom("boom")))
    assert back == edf.RemoteError("app.Custom", "boom")


def test_registered_error_class_comes_back_as_itself():
    class Custom(gerrors.ErgoError):
        pass

    reg = edf.Registry()
    reg.register_type(Custom, "app.Custom")
    assert reg.decode(reg.encode(Custom("boom"))) == Custom("boom")


def test_error_with_unencodable_args_still_travels_as_text():
    err = gerrors.Internal(object())
    back = round_trip(err)
    assert type(back) is gerrors.Internal and isinstance(back.args[0], str)


def test_runtime_messages_round_trip():
    pid = PID(NODE, 1005, 7)
    for message in [
        gmessages.MessageExitPID(pid, gerrors.TerminateReasonShutdown),
        gmessages.MessageExitProcessID(ProcessID("srv", NODE), gerrors.Unregistered()),
        gmessages.MessageExitAlias(Alias(NODE, 7, (1, 2, 3)), gerrors.NoConnection()),
        gmessages.MessageExitEvent(Event("ev", NODE), gerrors.TerminateReasonNormal),
        gmessages.MessageExitNode(Atom(NODE)),
        gmessages.MessageDownPID(pid, gerrors.TerminateReasonKill),
        gmessages.MessageDownProcessID(ProcessID("srv", NODE), gerrors.Unregistered()),
        gmessages.MessageDownAlias(Alias(NODE, 7, (1, 2, 3)), gerrors.TerminateReasonPanic),
        gmessages.MessageDownEvent(Event("ev", NODE), gerrors.Unregistered()),
        gmessages.MessageDownNode(Atom(NODE)),
        gmessages.MessageEvent(Event("ev", NODE), 1_700_000_000_000_000_000, {"k": (1,)}),
        gmessages.MessageEventStart(Atom("ev")),
        gmessages.MessageEventStop(Atom("ev")),
        gmessages.MessageFallback(pid, "tag", pid, "msg"),
    ]:
        assert same(round_trip(message), message)


def test_nested_registered_dataclasses_round_trip():
    value = Box("outer", [Point(1, Box("inner", [Point(2, (3,))])), 4], Point(5, None))
    assert same(round_trip(value), value)


def test_unregistered_dataclass_is_refused_on_encode_naming_it():
    @dataclasses.dataclass
    class Secret:
        x: int

    with pytest.raises(edf.EncodeError, match="unregistered dataclass .*Secret"):
        REG.encode([Secret(1)])


def test_unregistered_record_name_is_a_decode_error_not_a_class():
    data = REG.encode(Point(1, 2))
    with pytest.raises(edf.DecodeError, match="unknown record type 'test.Point'"):
        edf.Registry().decode(data)


def test_decoding_never_builds_a_class_by_its_import_path():
    data = marked(edf.EXT_RECORD, msgpack.packb("os.system"), msgpack.packb("echo hacked"))
    with pytest.raises(edf.DecodeError, match="unknown record type 'os.system'"):
        REG.decode(data)


def test_registries_are_independent():
    @dataclasses.dataclass
    class Only:
        x: int

    a, b = edf.Registry(), edf.Registry()
    a.register_type(Only, "only")
    assert a.decode(a.encode(Only(1))) == Only(1)
    with pytest.raises(edf.EncodeError):
        b.encode(Only(1))


def test_registering_a_taken_name_or_class_is_refused_and_repeating_is_harmless():
    reg = make_registry()
    assert reg.register_type(Point, "test.Point") == "test.Point"
    with pytest.raises(gerrors.Taken):
        reg.register_type(Box, "test.Point")
    with pytest.raises(gerrors.Taken):
        reg.register_type(Point, "test.Other")
    with pytest.raises(gerrors.Incorrect):
        reg.register_type(int)


def test_default_name_is_module_and_qualname():
    @dataclasses.dataclass
    class Named:
        x: int

    reg = edf.Registry()
    assert reg.register_type(Named) == f"{__name__}.test_default_name_is_module_and_qualname.<locals>.Named"


def test_module_level_functions_use_the_default_registry():
    @dataclasses.dataclass
    class Global:
        x: int

    edf.register_type(Global, "tests.wire.Global")
    assert edf.decode(edf.encode(Global(3))) == Global(3)


def test_init_false_fields_are_recomputed_not_sent():
    @dataclasses.dataclass
    class Derived:
        a: int
        b: int = dataclasses.field(init=False)

        def __post_init__(self):
            self.b = self.a * 2

    reg = edf.Registry()
    reg.register_type(Derived, "derived")
    assert reg.decode(reg.encode(Derived(4))).b == 8


def test_int_and_str_enums_travel_as_their_values():
    class Color(enum.IntEnum):
        RED = 1

    class Mode(enum.StrEnum):
        FAST = "fast"

    assert same(round_trip([Color.RED, Mode.FAST]), [1, "fast"])


def test_unsupported_object_is_an_encode_error_naming_its_type():
    with pytest.raises(edf.EncodeError, match="builtins.object"):
        REG.encode({"x": object()})


@pytest.mark.parametrize("value", [lambda: 1, object(), open])
def test_an_unencodable_value_says_what_can_cross_instead_and_is_ergos_own_encode_error(value):
    import ergo

    with pytest.raises(ergo.EncodeError, match=r"what is sent to another node holds only None.*ergo\.register_type"):
        REG.encode([value])
    assert issubclass(ergo.EncodeError, ergo.Unsupported)


def test_identifier_out_of_64_bits_is_an_encode_error():
    with pytest.raises(edf.EncodeError, match="64"):
        REG.encode(PID(NODE, 2**64))


def _depth(value: object) -> int:
    """How many tuples wrap the innermost value (compared without recursion: == of a tuple
    nested a thousand deep would hit Python's recursion limit)."""
    n = 0
    while type(value) is tuple:
        (value,) = value
        n += 1
    return n


def test_nesting_deeper_than_the_limit_is_refused_both_ways():
    value: object = 1
    for _ in range(edf.MAX_DEPTH + 2):
        value = (value,)
    with pytest.raises(edf.EncodeError, match="nests deeper"):
        REG.encode(value)
    data = marked(edf.EXT_TUPLE, msgpack.packb(1))
    for _ in range(edf.MAX_DEPTH):
        data = marked(edf.EXT_TUPLE, data)
    with pytest.raises(edf.DecodeError, match="nests deeper"):
        REG.decode(data)


def test_nesting_up_to_the_limit_round_trips():
    value: object = 1
    for _ in range(edf.MAX_DEPTH):
        value = (value,)
    assert _depth(REG.decode(REG.encode(value))) == edf.MAX_DEPTH


def _ext(code: int, data: bytes) -> bytes:
    return msgpack.packb(msgpack.ExtType(code, data))


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "truncated"),
        (b"\x92\x01", "truncated"),
        (b"\x01\x02", "extra bytes"),
        (b"\xc1", "starts no msgpack value"),
        (b"\xa2\xff\xfe", "UTF-8"),
        (b"\x81\x91\x01\x02", "unhashable"),
        (_ext(99, b"x"), "unknown EDF ext type 99"),
        (_ext(edf.EXT_PID, b"\x00" * 3), "truncated PID"),
        (_ext(edf.EXT_REF, b"\x00" * 8), "truncated Ref"),
        (_ext(edf.EXT_ATOM, b"a" * 300), "atom of 300 bytes"),
        (_ext(edf.EXT_ATOM, b"\xff"), "UTF-8"),
        (_ext(edf.EXT_PROCESS_ID, b"\x09ab"), "truncated ProcessID"),
        (_ext(edf.EXT_TUPLE, msgpack.packb(3)), "tuple marker carries 1 bytes"),
        (_ext(edf.EXT_TUPLE, b""), "marker that heads no array"),
        (b"\x92\x01" + _ext(edf.EXT_TUPLE, b""), "marker that heads no array"),
        (msgpack.packb({"k": msgpack.ExtType(edf.EXT_SET, b"")}), "marker that heads no array"),
        (marked(edf.EXT_TUPLE, _ext(edf.EXT_TUPLE, b"")), "marker that heads no array"),
        (marked(edf.EXT_SET, msgpack.packb([1])), "unhashable item in a set"),
        (marked(edf.EXT_FROZENSET, msgpack.packb({})), "unhashable item in a frozenset"),
        (_ext(edf.EXT_BIGINT, b""), "empty big int"),
        (marked(edf.EXT_ERROR), r"\[marker, name, args...\]"),
        (marked(edf.EXT_ERROR, msgpack.packb(5)), r"\[marker, name, args...\]"),
        (marked(edf.EXT_RECORD), "start with its type name"),
        (marked(edf.EXT_RECORD, msgpack.packb("test.Point"), msgpack.packb(1)), "has 1 fields, expected 2"),
    ],
)
def test_malformed_bytes_raise_one_decode_error_that_says_what(data, why):
    with pytest.raises(edf.DecodeError, match=why):
        REG.decode(data)


def test_decode_error_is_a_malformed_ergo_error():
    assert issubclass(edf.DecodeError, gerrors.Malformed)
    assert issubclass(edf.EncodeError, gerrors.ErgoError)


@given(
    st.lists(st.integers(-(2**63), 2**64 - 1) | st.text(max_size=5) | st.floats(allow_nan=False), max_size=50)
)
def test_plain_values_encode_exactly_as_msgpack(value):
    # the common case costs nothing extra on the wire: EDF of plain data *is* msgpack
    assert REG.encode(value) == msgpack.packb(value)


def test_identifier_encodings_are_compact():
    pid = PID(NODE, 1005, 1)
    assert len(REG.encode(pid)) == 3 + 16 + len(NODE)  # ext8 header + id + creation + node
    assert len(REG.encode(Ref(NODE, 1, (1, 2, 3)))) == 3 + 32 + len(NODE)


def test_the_well_known_terminate_reasons_decode_as_the_very_objects():
    from ergo import TerminateReasonKill, TerminateReasonNormal, TerminateReasonPanic, TerminateReasonShutdown
    from ergo.gen.errors import TerminateReason

    for reason in (TerminateReasonNormal, TerminateReasonKill, TerminateReasonPanic, TerminateReasonShutdown):
        assert edf.decode(edf.encode(reason)) is reason
    other = edf.decode(edf.encode(TerminateReason("custom")))
    assert other == TerminateReason("custom")


def test_a_decode_within_a_decode_and_an_encode_within_an_encode_use_state_of_their_own():
    # a registered class's __post_init__ runs inside the registry's decode (and here encodes
    # and decodes with the same registry): the inner calls must not share the outer's
    # packer or decoding state, whose counts and buffer they would overwrite
    reg = edf.Registry()
    inner = reg.encode(("inner", 1))

    @dataclasses.dataclass
    class Nested:
        a: int
        got: object = dataclasses.field(init=False)

        def __post_init__(self):
            self.got = (reg.decode(inner), reg.encode(self.a))

    reg.register_type(Nested, "nested")
    # a set's items are ordered by their own encodings: encodes within the encode
    value = [("t", i) for i in range(3)] + [Nested(7), {("s", 1), ("s", 2)}] + [("u", i) for i in range(40)]
    out = reg.decode(reg.encode(value))
    assert out == value
    assert out[3].got == (("inner", 1), reg.encode(7))  # (and > 32 keyable values: decoded twice)
    with pytest.raises(edf.DecodeError, match="heads no array"):  # the state is whole again after
        reg.decode(b"\x92\x01\xc7\x00\x10")


def test_threads_encoding_and_decoding_with_one_registry_at_once_each_get_their_own_values():
    import threading

    reg = edf.Registry()
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(300):
                value = [(k, i, j) for j in range(k % 40)] + [Atom("x"), PID("a@h", i, 1)]
                assert reg.decode(reg.encode(value)) == value
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []


def test_a_value_with_more_keyable_values_than_are_only_counted_decodes_whole():
    # past the 32nd tuple the decode starts again with every one tabled: the value is the same
    for n in (edf.MAX_SHARED_HASH, edf.MAX_SHARED_HASH + 1, 500):
        value = {"rows": [(i, str(i)) for i in range(n)], "refs": [Ref("a@h", 1, (i, 0, 0)) for i in range(3)]}
        assert REG.decode(REG.encode(value)) == value

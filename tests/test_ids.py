"""Identifiers print exactly as Ergo prints them, and behave as immutable values."""

import dataclasses

import pytest

from ergo import PID, Alias, Atom, AtomTooLong, Event, Incorrect, ProcessID, Ref
from ergo.gen.ids import node_crc


@pytest.mark.parametrize(
    "node,crc",
    [
        ("node_local_11@localhost", "A3D4BDDA"),
        ("mem@localhost", "A061485D"),
        ("node_network_11_n2@localhost", "B620D814"),
    ],
)
def test_node_crc_matches_ergo_vectors(node, crc):
    assert node_crc(node) == crc


def test_printed_forms_match_ergo():
    node = "node_local_11@localhost"
    assert str(Atom("name")) == "'name'"
    assert str(PID(node, 1005, 1)) == "<A3D4BDDA.0.1005>"
    assert str(PID(node, (1 << 32) + 7, 1)) == "<A3D4BDDA.1.7>"
    assert str(PID(node, 0xFFFFFFFF, 1)) == "<A3D4BDDA.0.-1>"
    assert str(ProcessID("worker", node)) == "<A3D4BDDA.worker>"
    assert str(Ref(node, 1, (1, 2, 3))) == "Ref#<A3D4BDDA.1.2.3>"
    assert str(Alias(node, 1, (4, 5, 6))) == "Alias#<A3D4BDDA.4.5.6>"
    assert str(Event("ev", node)) == "Event#<A3D4BDDA:ev>"


def test_identifiers_are_immutable_hashable_and_ordered():
    a, b = PID("n@h", 1001, 5), PID("n@h", 1002, 5)
    assert a < b and a == PID("n@h", 1001, 5)
    assert len({a, b, PID("n@h", 1001, 5)}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.id = 3
    # an alias and a ref with the same fields are different things
    assert Alias("n@h", 1, (1, 2, 3)) != Ref("n@h", 1, (1, 2, 3))


def test_equal_refs_hash_alike_however_they_were_made(backend):
    # a ref's hash is made once (by make_ref, the codec, the constructor) or at its first
    # hash (a copy, trusted()): every way gives the same, so tables find a ref's reply
    import copy
    import pickle

    from ergo.gen.ids import trusted
    from ergo.wire import edf, enp

    made = backend.node("refs@localhost").make_ref()
    fields = (made.node, made.creation, made.id)
    for other in (Ref(*fields), trusted(Ref, *fields), copy.copy(made), pickle.loads(pickle.dumps(made)),
                  dataclasses.replace(made), edf.decode(edf.encode(made)), enp._ref(*fields)):
        assert other == made and hash(other) == hash(made)
        assert {made: 1}[other] == 1


def test_atom_is_a_str_of_at_most_255_bytes():
    assert Atom("x") == "x" and {"x": 1}[Atom("x")] == 1
    assert f"{Atom('x')}" == "'x'" and Atom("x").value == "x"
    Atom("é" * 127)  # 254 bytes
    with pytest.raises(AtomTooLong):
        Atom("é" * 128)
    with pytest.raises(Incorrect):
        Atom(5)


def test_wrong_field_types_are_refused_with_a_clear_error():
    with pytest.raises(Incorrect, match="PID.id must be an int"):
        PID("n@h", "1")
    with pytest.raises(Incorrect, match="three ints"):
        Ref("n@h", 1, (1, 2))

"""Identifiers: Atom, PID, ProcessID, Ref, Alias and Event, printed exactly as Ergo prints them.

Every identifier is immutable, hashable and ordered.  The node part of each one is printed
as Ergo's CRC-32 of the node name (polynomial 0xD5828281 in reflected form, init and final
xor 0xFFFFFFFF): this is *not* zlib's CRC, so it is computed here from its own table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from ..wire._brief import printable  # (a module of plain text helpers: it imports nothing of ergo)
from .errors import AtomTooLong, Incorrect

__all__ = ["Atom", "PID", "ProcessID", "Ref", "Alias", "Event", "Target", "crc32", "node_crc", "node_name_problem",
           "trusted"]

_POLY = 0xD5828281


def _make_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_TABLE = _make_table()


def crc32(data: bytes) -> int:
    """Ergo's CRC-32 of ``data`` (Go's ``crc32.Checksum(data, crc32.MakeTable(0xD5828281))``)."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def node_name_problem(name: object) -> str | None:
    """What is wrong with ``name`` as a node name, or None: ``name@host``, one ``@``, both
    parts non-empty, at most 255 bytes of UTF-8, every character printable (a name goes
    into log lines, where a newline would make lines of its own).  The one rule for a
    node's own name, a peer's in its handshake and a registrar's ``Register``."""
    if not isinstance(name, str):
        return f"a node name is a str like 'demo@localhost', not {type(name).__name__}"
    text = str.__str__(name)
    if text.count("@") != 1:
        return f"a node name has exactly one '@' (name@host): {text[:60]!r}"
    local, host = text.split("@")
    if not local or not host:
        return f"both parts of a node name must be non-empty (name@host): {text[:60]!r}"
    size = len(text.encode("utf-8"))
    if size > 255:
        return f"a node name is at most 255 bytes, this one has {size}"
    if not text.isprintable():
        return f"a node name has no control or other unprintable characters: {text[:60]!r}"
    return None


@lru_cache(maxsize=4096)
def node_crc(node: str) -> str:
    """The ``%08X`` CRC that stands for a node name in printed identifiers."""
    return "%08X" % crc32(node.encode("utf-8"))


class Atom(str):
    """An Erlang/Ergo atom: a name of at most 255 bytes (UTF-8).

    It is a ``str``, so it compares equal to the plain string and can be used wherever a
    name is expected; on the wire it stays an atom.  It prints as ``'name'``.
    """

    __slots__ = ()

    def __new__(cls, value: str = "") -> Atom:
        if isinstance(value, Atom):
            return value
        if not isinstance(value, str):
            raise Incorrect(f"an Atom is made from a str, not {type(value).__name__}")
        if len(value) > 63 and len(value.encode("utf-8")) > 255:
            raise AtomTooLong(f"atom of {len(value.encode('utf-8'))} bytes (max 255): {value[:32]!r}...")
        return str.__new__(cls, value)

    def __str__(self) -> str:
        # its text with control characters escaped: an atom from the wire (a peer's name,
        # a value in its message) goes into log lines, where a newline forged lines
        return "'" + printable(str.__str__(self)) + "'"

    __repr__ = __str__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    @property
    def value(self) -> str:
        """The atom's text without the quotes."""
        return str.__str__(self)

    def crc32(self) -> str:
        return node_crc(self)


def _atom(value: object, what: str) -> Atom:
    if isinstance(value, str):
        return Atom(value)
    raise Incorrect(f"{what} must be a str or Atom, not {type(value).__name__}")


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Incorrect(f"{what} must be an int, not {type(value).__name__}")
    return value


_new = object.__new__
_set = object.__setattr__


_T = TypeVar("_T")


class _Wire:
    """The one slot every identifier but Atom has: its encoded form, filled by the codec.

    Identifiers are immutable and the same few are sent over and over, so the wire codec
    (``ergo.wire.edf``) keeps each one's encoding on the object the first time it sends it.
    The slot is no dataclass field: it takes no part in equality, hashing, ordering,
    printing or copying, and an identifier whose slot was never filled simply has none.
    """

    __slots__ = ("_wire",)


class _Keyed(_Wire):
    """A slot for the hash of a Ref or an Alias: made when the ref is (``make_ref``, the
    codec, the checked constructor) or at its first hash, as a copy has none.

    A call keys several tables by its ref, and its hash mixes the node name's with the
    id's (see ``Ref.__hash__``): computed once, read five to ten times.
    """

    __slots__ = ("_hash",)
    _hash: int  # (no dataclass field: _Keyed is no dataclass)


def _keep_hash(ref: Ref | Alias) -> int:
    h = hash((ref.node, ref.id))
    _set(ref, "_hash", h)
    return h


def _keyed_hash(self: Ref | Alias) -> int:
    """A Ref's or an Alias's hash: the node name's hash (salted) mixed with the id's, made
    once (see _Keyed): a call keys several tables by its ref.  Not the id alone: refs a
    peer invents with one id and ever new node names shared one hash.  The id is three
    ints, whose tuple hash a peer can make collide at will: the decoder counts the refs
    and aliases of a value (see edf.MAX_SHARED_HASH)."""
    try:
        return self._hash
    except AttributeError:  # a copy, or made by trusted()
        return _keep_hash(self)


#: sets a Ref's or Alias's ``_hash`` slot: ``set_hash(ref, hash((node, id)))``, by who
#: makes one without its constructor (the node's make_ref, the codec)
set_hash = _Keyed.__dict__["_hash"].__set__


def trusted(cls: type[_T], *values: object) -> _T:
    """Make an identifier without checking its fields: for values the node itself built
    from checked parts (its own name and creation, its counters), on hot paths."""
    obj: _T = _new(cls)
    for name, value in zip(cls.__dataclass_fields__, values):  # type: ignore[attr-defined]
        _set(obj, name, value)
    return obj


def _int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - 0x100000000 if v & 0x80000000 else v


@dataclass(frozen=True, slots=True, order=True)
class PID(_Wire):
    """A process identifier: node name, a 64-bit id and the node's creation."""

    node: Atom
    id: int
    creation: int = 0

    if TYPE_CHECKING:  # a name may be given as a plain str: __post_init__ makes it an Atom
        def __init__(self, node: str, id: int, creation: int = 0) -> None: ...

    def __post_init__(self) -> None:
        object.__setattr__(self, "node", _atom(self.node, "PID.node"))
        _int(self.id, "PID.id")
        _int(self.creation, "PID.creation")

    def __hash__(self) -> int:
        # The node's name (its str hash: salted, and kept on the str) mixed with the id,
        # without the creation (equal PIDs have equal ids): cheaper than the generated hash
        # of all three fields, and a spawn, monitor and exit key a PID in several tables.
        # Not the id alone: PIDs a peer invents with one id and ever new node names then
        # shared one hash, and a set or map of them took quadratic time (16,000 in a 420 KB
        # message: 30 s of one node's CPU).  Ids of one node share a hash only as their int
        # hashes do (a multiple of 2**61 - 1 apart: at most nine in 64 bits); PIDs of
        # different nodes collide as the salt decides, not a peer.
        return hash((self.node, self.id))

    def __str__(self) -> str:
        return "<%s.%d.%d>" % (node_crc(self.node), _int32(self.id >> 32), _int32(self.id))

    __repr__ = __str__


@dataclass(frozen=True, slots=True, order=True)
class ProcessID(_Wire):
    """A registered name on a node: ``{name, node}``."""

    name: Atom
    node: Atom

    if TYPE_CHECKING:  # a name may be given as a plain str: __post_init__ makes it an Atom
        def __init__(self, name: str, node: str) -> None: ...

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _atom(self.name, "ProcessID.name"))
        object.__setattr__(self, "node", _atom(self.node, "ProcessID.node"))

    def __str__(self) -> str:
        return "<%s.%s>" % (node_crc(self.node), printable(str.__str__(self.name)))  # (see Atom.__str__)

    __repr__ = __str__


def _ref_id(value: object, what: str) -> tuple[int, int, int]:
    if not isinstance(value, tuple) or len(value) != 3:
        raise Incorrect(f"{what} must be a tuple of three ints")
    for v in value:
        _int(v, what)
    return value


@dataclass(frozen=True, slots=True, order=True)
class Ref(_Keyed):
    """A unique reference made by ``make_ref``; also the token of a registered event."""

    node: Atom
    creation: int
    id: tuple[int, int, int]

    if TYPE_CHECKING:  # a name may be given as a plain str: __post_init__ makes it an Atom
        def __init__(self, node: str, creation: int, id: tuple[int, int, int]) -> None: ...

    def __post_init__(self) -> None:
        object.__setattr__(self, "node", _atom(self.node, "Ref.node"))
        _int(self.creation, "Ref.creation")
        _ref_id(self.id, "Ref.id")
        _set(self, "_hash", hash((self.node, self.id)))

    __hash__ = _keyed_hash  # (in the class's body: a frozen dataclass would make its own)

    def __str__(self) -> str:
        return "Ref#<%s.%d.%d.%d>" % (node_crc(self.node), *self.id)

    __repr__ = __str__


@dataclass(frozen=True, slots=True, order=True)
class Alias(_Keyed):
    """A temporary identifier of a process, or the identity of a meta-process."""

    node: Atom
    creation: int
    id: tuple[int, int, int]

    if TYPE_CHECKING:  # a name may be given as a plain str: __post_init__ makes it an Atom
        def __init__(self, node: str, creation: int, id: tuple[int, int, int]) -> None: ...

    def __post_init__(self) -> None:
        object.__setattr__(self, "node", _atom(self.node, "Alias.node"))
        _int(self.creation, "Alias.creation")
        _ref_id(self.id, "Alias.id")
        _set(self, "_hash", hash((self.node, self.id)))

    __hash__ = _keyed_hash  # (in the class's body: a frozen dataclass would make its own)

    def __str__(self) -> str:
        return "Alias#<%s.%d.%d.%d>" % (node_crc(self.node), *self.id)

    __repr__ = __str__


@dataclass(frozen=True, slots=True, order=True)
class Event(_Wire):
    """A registered event: ``{name, node}``."""

    name: Atom
    node: Atom

    if TYPE_CHECKING:  # a name may be given as a plain str: __post_init__ makes it an Atom
        def __init__(self, name: str, node: str) -> None: ...

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _atom(self.name, "Event.name"))
        object.__setattr__(self, "node", _atom(self.node, "Event.node"))

    def __str__(self) -> str:
        return "Event#<%s:%s>" % (node_crc(self.node), printable(str.__str__(self.name)))  # (see Atom.__str__)

    __repr__ = __str__


#: What a message or call can be sent to (and what a link or monitor can watch, with Event):
#: a process by PID, a registered name (a ProcessID, or a plain str / Atom for a local one)
#: or an alias.
Target: TypeAlias = PID | ProcessID | Alias | Atom | str

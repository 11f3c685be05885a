"""EDF, the Ergo Data Format, on msgpack: how values cross the network between two nodes.

Plain values (None, bool, int, float, str, bytes, list, dict) are msgpack's own types, so
the common case runs entirely inside msgpack's C code.  Everything msgpack cannot say is a
msgpack *ext* value whose type code is listed in :data:`EXT_CODES` and whose layout is in
``docs/wire.md``: atoms and the other identifiers, tuples (kept distinct from lists), sets,
ints beyond 64 bits, errors, and dataclasses registered by name on both nodes.

Decoding is a closed world.  It only ever builds the types above, the runtime's messages
and errors, and classes registered with :meth:`Registry.register_type`; there is no pickle
and no import by name.  Any bad input, whatever it is, raises :class:`DecodeError` naming
what was wrong.  A :class:`Registry` holds the registrations, so two simulated nodes in one
process can each have their own; the module-level functions use :data:`DEFAULT`.
"""

from __future__ import annotations

import dataclasses
import datetime
import operator
import struct
from collections.abc import Callable
from typing import Any

import msgpack

from ergo.gen import messages as _messages
from ergo.gen.errors import ERRORS, ErgoError, Incorrect, Malformed, Taken, Unsupported
from ergo.gen.ids import PID, Alias, Atom, Event, ProcessID, Ref

from ._brief import brief, brief_error

__all__ = [
    "DEFAULT",
    "EXT_ALIAS",
    "EXT_ATOM",
    "EXT_BIGINT",
    "EXT_CODES",
    "EXT_ERROR",
    "EXT_EVENT",
    "EXT_FROZENSET",
    "EXT_PID",
    "EXT_PROCESS_ID",
    "EXT_RECORD",
    "EXT_REF",
    "EXT_SET",
    "EXT_TUPLE",
    "MAX_DEPTH",
    "MAX_SHARED_HASH",
    "DecodeError",
    "EncodeError",
    "Registry",
    "RemoteError",
    "decode",
    "encode",
    "register_type",
]


class DecodeError(Malformed):
    """Bytes that are not a valid EDF value; the message says what was wrong."""

    default = "malformed EDF value"


class EncodeError(Unsupported):
    """A value EDF cannot carry (an unregistered class, an id out of range, nesting too deep)."""

    default = "value cannot be encoded"


class RemoteError(ErgoError):
    """An exception whose class the receiving node does not know, rebuilt as its name and text.

    Exit reasons are exceptions and must always arrive, so an exception of a class that is
    neither one of the runtime's errors nor registered on both nodes travels as its class
    name and ``str()`` and is delivered as ``RemoteError(type_name, text)``.
    """

    default = "remote error"

    @property
    def type_name(self) -> str:
        return str(self.args[0]) if self.args else ""

    @property
    def text(self) -> str:
        return str(self.args[1]) if len(self.args) > 1 else ""

    def __str__(self) -> str:
        if len(self.args) == 2:
            return f"{self.args[0]}: {self.args[1]}"
        return super().__str__()


EXT_ATOM = 1
EXT_PID = 2
EXT_PROCESS_ID = 3
EXT_REF = 4
EXT_ALIAS = 5
EXT_EVENT = 6
EXT_TUPLE = 16
EXT_SET = 17
EXT_FROZENSET = 18
EXT_BIGINT = 19
EXT_ERROR = 32
EXT_RECORD = 48

EXT_CODES: dict[int, str] = {
    EXT_ATOM: "Atom",
    EXT_PID: "PID",
    EXT_PROCESS_ID: "ProcessID",
    EXT_REF: "Ref",
    EXT_ALIAS: "Alias",
    EXT_EVENT: "Event",
    EXT_TUPLE: "tuple",
    EXT_SET: "set",
    EXT_FROZENSET: "frozenset",
    EXT_BIGINT: "big int",
    EXT_ERROR: "error",
    EXT_RECORD: "record",
}

#: How many tuples, sets, errors and records may nest inside each other.  Each level is a
#: nested msgpack call with its own C stack frame, so the bound is what keeps a hostile
#: payload from exhausting the stack.  Lists and dicts nest natively and are bounded by
#: msgpack itself.
MAX_DEPTH = 32

#: How many *distinct* tuples, frozensets, big ints, records and errors of one decoded value
#: may share one hash.  Python's hash of an int is the int modulo 2**61 - 1 and a tuple's
#: hash is an invertible mix of its items' hashes, so a peer can craft any number of distinct
#: values with equal hashes; a set or map of them costs quadratic time to build (the issue's
#: 415 KB set of such big ints took 5.6 s).  Strings, bytes, atoms and identifiers hash with
#: Python's salted SipHash and plain 64-bit ints and floats can only share a hash a handful
#: of times, so the ext values above are the only keys a peer controls, and all of them are
#: made by the decoder's ext hook, which counts them: with at most this many per hash,
#: building any set or map of one value costs at most this many comparisons per key.  See
#: ``docs/wire.md``.
MAX_SHARED_HASH = 32
# The first _UNCOUNTED such values of a decode are only remembered (at most this many can
# collide, which is harmless); the table is built from them when one more arrives, so small
# messages never pay for hashing their tuples.
_UNCOUNTED = MAX_SHARED_HASH

_ExtType = msgpack.ExtType
_PID_HEAD = struct.Struct(">Qq")  # id (u64), creation (i64), then the node name
_REF_HEAD = struct.Struct(">qQQQ")  # creation (i64), id[0..2] (u64), then the node name
_CACHE_MAX = 4096
_INT64_MIN = -(1 << 63)
_UINT64_MAX = (1 << 64) - 1

# The runtime's own messages travel as records under their Ergo names.
_BUILTIN_RECORDS = [
    _messages.MessageDownPID,
    _messages.MessageDownProcessID,
    _messages.MessageDownAlias,
    _messages.MessageDownEvent,
    _messages.MessageDownNode,
    _messages.MessageExitPID,
    _messages.MessageExitProcessID,
    _messages.MessageExitAlias,
    _messages.MessageExitEvent,
    _messages.MessageExitNode,
    _messages.MessageFallback,
    _messages.MessageEventStart,
    _messages.MessageEventStop,
    _messages.MessageEvent,
]


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError(f"invalid UTF-8 in {what}") from None


class Registry:
    """The types one node can send and rebuild: built-ins plus its registered dataclasses and errors.

    Encoding and decoding are safe to call from several threads and re-entrantly (a
    registered class's ``__post_init__`` may itself encode).
    """

    def __init__(self) -> None:
        self._records: dict[str, tuple[type, int]] = {}  # name -> (class, number of fields)
        self._record_names: dict[type, tuple[str, Callable[[Any], Any], int]] = {}
        self._errors: dict[str, type[BaseException]] = {}
        self._error_names: dict[type, str] = {}
        self._atoms: dict[bytes, Atom] = {}
        self._ids: dict[int, dict[bytes, Any]] = {
            c: {} for c in (EXT_PID, EXT_REF, EXT_ALIAS, EXT_PROCESS_ID, EXT_EVENT)
        }
        self._encoders: dict[type, Callable[[Any, int], msgpack.ExtType]] = {
            Atom: _enc_atom,
            PID: _enc_pid,
            ProcessID: _enc_process_id,
            Event: _enc_event,
            Ref: _enc_ref,
            Alias: _enc_alias,
            int: _enc_bigint,
            tuple: self._enc_tuple,
            set: self._enc_set,
            frozenset: self._enc_frozenset,
        }
        # one encoder hook and packer pool per nesting depth (see MAX_DEPTH), and a pool of
        # decoding states (see _unpack)
        self._pools: list[list[msgpack.Packer]] = [[] for _ in range(MAX_DEPTH + 1)]
        self._defaults = [self._make_default(d) for d in range(MAX_DEPTH + 1)]
        self._cells: list[list[Any]] = []
        for name, cls in ERRORS.items():
            self._add_error(cls, name)
        for cls in (DecodeError, EncodeError, RemoteError):
            self._add_error(cls, cls.__name__)
        for cls in _BUILTIN_RECORDS:
            self.register_type(cls, cls.__name__)

    # -- registration ---------------------------------------------------------------------

    def register_type(self, cls: type, name: str | None = None) -> str:
        """Let ``cls`` cross the network under ``name`` (default ``module.QualName``).

        ``cls`` is a dataclass (its ``init`` fields travel, in order) or an exception class
        (its ``args`` travel).  Both nodes must register the same name.  Registering the
        same class under the same name again is a no-op; a name or class already taken by
        another registration raises ``Taken``.  Returns the name.
        """
        if not isinstance(cls, type):
            raise Incorrect(f"register_type needs a class, not {type(cls).__name__}")
        if name is None:
            name = f"{cls.__module__}.{cls.__qualname__}"
        if not isinstance(name, str) or not name or len(name.encode("utf-8")) > 255:
            raise Incorrect(f"type name must be a non-empty str of at most 255 bytes: {name!r}")
        if issubclass(cls, BaseException):
            if self._errors.get(name, cls) is not cls or self._error_names.get(cls, name) != name:
                raise Taken(f"error name {name!r} or class {cls.__qualname__} is already registered")
            self._add_error(cls, name)
            return name
        if not dataclasses.is_dataclass(cls):
            raise Incorrect(
                f"{cls.__qualname__} is not a dataclass (only dataclasses and exceptions register)"
            )
        known = self._records.get(name)
        if known is not None or cls in self._record_names:
            if known is not None and known[0] is cls and self._record_names[cls][0] == name:
                return name
            raise Taken(f"type name {name!r} or class {cls.__qualname__} is already registered")
        names = [f.name for f in dataclasses.fields(cls) if f.init]
        if names:
            getter = operator.attrgetter(*names)
            get: Callable[..., tuple[Any, ...]] = getter if len(names) > 1 else (lambda obj, _g=getter: (_g(obj),))
        else:
            get = _no_fields
        self._records[name] = (cls, len(names))
        self._record_names[cls] = (name, get, len(names))
        self._encoders[cls] = self._enc_record
        return name

    def registered(self) -> list[str]:
        """The names of every registered dataclass and error, sorted (handy in a handshake log)."""
        return sorted([*self._records, *self._errors])

    def _add_error(self, cls: type[BaseException], name: str) -> None:
        self._errors[name] = cls
        self._error_names[cls] = name

    # -- encoding -------------------------------------------------------------------------

    def encode(self, value: Any) -> bytes:
        """The EDF bytes of ``value``; raises :class:`EncodeError` for anything EDF cannot carry."""
        return self._pack(value, 0)

    def _pack(self, value: Any, depth: int) -> bytes:
        if depth > MAX_DEPTH:
            raise EncodeError(f"tuples, sets, errors and records nest deeper than {MAX_DEPTH}")
        pool = self._pools[depth]
        try:
            packer = pool.pop()
        except IndexError:
            packer = msgpack.Packer(
                default=self._defaults[depth], use_bin_type=True, strict_types=True, datetime=True
            )
        try:
            return packer.pack(value)
        except EncodeError:
            raise
        except Exception as e:  # noqa: BLE001 - e.g. a registered class whose fields fail to read
            raise EncodeError(f"cannot encode {type(value).__name__}: {type(e).__name__}: {e}") from None
        finally:
            pool.append(packer)

    def _make_default(self, depth: int) -> Callable[[Any], Any]:
        encoders = self._encoders

        def default(obj: Any) -> Any:
            enc = encoders.get(type(obj))
            if enc is not None:
                return enc(obj, depth)
            return self._fallback(obj, depth)

        return default

    def _fallback(self, obj: Any, depth: int) -> Any:
        """Values whose exact type has no encoder: exceptions, and subclasses of plain types."""
        if isinstance(obj, BaseException):
            return self._enc_error(obj, depth)
        if isinstance(obj, bool):
            return bool(obj)
        if isinstance(obj, int):  # IntEnum and friends travel as their number
            value = int(obj)
            return value if _INT64_MIN <= value <= _UINT64_MAX else _enc_bigint(value, depth)
        if isinstance(obj, Atom):
            return _enc_atom(obj, depth)
        if isinstance(obj, str):
            return str.__str__(obj)
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, dict):
            return dict(obj)
        if isinstance(obj, list):
            return list(obj)
        if isinstance(obj, tuple):
            return self._enc_tuple(tuple(obj), depth)
        if isinstance(obj, (bytes, memoryview)):
            return bytes(obj)
        if isinstance(obj, datetime.datetime):
            raise EncodeError("a datetime must carry a tzinfo to be encoded")
        if dataclasses.is_dataclass(obj):
            cls = type(obj)
            raise EncodeError(
                f"unregistered dataclass {cls.__module__}.{cls.__qualname__}: register_type it on both nodes"
            )
        raise EncodeError(f"cannot encode a {type(obj).__module__}.{type(obj).__qualname__}")

    def _enc_tuple(self, obj: tuple[Any, ...], depth: int) -> msgpack.ExtType:
        return _tuple_new(_ExtType, (EXT_TUPLE, self._pack(list(obj), depth + 1)))

    def _enc_set(self, obj: set[Any], depth: int) -> msgpack.ExtType:
        return _tuple_new(_ExtType, (EXT_SET, self._pack(list(obj), depth + 1)))

    def _enc_frozenset(self, obj: frozenset[Any], depth: int) -> msgpack.ExtType:
        return _tuple_new(_ExtType, (EXT_FROZENSET, self._pack(list(obj), depth + 1)))

    def _enc_record(self, obj: Any, depth: int) -> msgpack.ExtType:
        name, get, _ = self._record_names[type(obj)]
        return _tuple_new(_ExtType, (EXT_RECORD, self._pack([name, *get(obj)], depth + 1)))

    def _enc_error(self, err: BaseException, depth: int) -> msgpack.ExtType:
        name = self._error_names.get(type(err))
        if name is None:
            args: list[Any] = [type(err).__name__, str(err)]
            name = "RemoteError"
        else:
            args = list(err.args)
        try:
            data = self._pack([name, args], depth + 1)
        except EncodeError:
            # an exit reason must always travel: keep the class, give up on odd arguments
            data = self._pack([name, [str(a) for a in args]], depth + 1)
        return _tuple_new(_ExtType, (EXT_ERROR, data))

    # -- decoding -------------------------------------------------------------------------

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """The value in ``data``, which must hold exactly one EDF value; else :class:`DecodeError`."""
        return self._unpack(data, "value")

    def _unpack(self, data: Any, what: str, cell: Any = None) -> Any:  # cell: a list, see below
        # One decode's state is a cell [count, hook, depth]: ``count`` the values a set or
        # map could use as keys (see MAX_SHARED_HASH: None, then a list, then a dict),
        # ``hook`` the ext hook closed over the cell, ``depth`` how many tuples, sets,
        # errors and records enclose the bytes being decoded.  A new decode takes a cell
        # from a pool (cheaper than making a hook per decode; one per thread or re-entrant
        # decode at a time), and nested levels share it.
        top = cell is None
        if top:
            pool = self._cells
            try:
                cell = pool.pop()
            except IndexError:
                cell = [None, None, 0]
                cell[1] = self._make_ext_hook(cell)
        elif cell[2] >= MAX_DEPTH:
            raise DecodeError(f"tuples, sets, errors and records nest deeper than {MAX_DEPTH}")
        else:
            cell[2] += 1
        try:
            return msgpack.unpackb(data, ext_hook=cell[1], strict_map_key=False, timestamp=3, raw=False)
        except DecodeError:
            raise
        except msgpack.ExtraData:
            raise DecodeError(f"extra bytes after the {what}") from None
        except UnicodeDecodeError:
            raise DecodeError(f"invalid UTF-8 in a string in the {what}") from None
        except msgpack.StackError:
            raise DecodeError(f"lists and maps nest too deep in the {what}") from None
        except msgpack.FormatError:
            raise DecodeError(f"a byte that starts no msgpack value in the {what}") from None
        except TypeError as e:
            raise DecodeError(f"unhashable map key in the {what} ({brief_error(e)})") from None
        except RecursionError:  # a subclass of RuntimeError, named for what it means here
            raise DecodeError(f"the {what} nests too deep for this thread's stack") from None
        except ValueError as e:
            if "incomplete" in str(e):
                raise DecodeError(f"truncated {what}") from None
            if "exceeds max_" in str(e):  # a length longer than the bytes that are left
                raise DecodeError(f"truncated {what} ({brief_error(e)})") from None
            raise DecodeError(f"malformed {what}: {brief_error(e)}") from None
        except Exception as e:  # noqa: BLE001 - hostile bytes must only ever raise DecodeError
            raise DecodeError(f"malformed {what}: {brief_error(e)}") from None
        finally:
            if top:
                cell[0] = None  # hold on to no decoded value while pooled
                pool.append(cell)
            else:
                cell[2] -= 1

    def _make_ext_hook(self, keyed: list[Any]) -> Callable[[int, bytes], Any]:
        def ext_hook(code: int, data: bytes) -> Any:
            try:
                if code == EXT_PID or code == EXT_REF or code == EXT_ALIAS:
                    return self._dec_id(code, data)
                if code == EXT_ATOM:
                    return self._atom(data)
                if code == EXT_TUPLE:
                    return _count(keyed, tuple(self._container(data, "tuple", keyed)))
                if code == EXT_PROCESS_ID or code == EXT_EVENT:
                    return self._dec_id(code, data)
                if code == EXT_RECORD:
                    return _count(keyed, self._dec_record(data, keyed))
                if code == EXT_ERROR:
                    return _count(keyed, self._dec_error(data, keyed))
                if code == EXT_SET:
                    return set(self._container(data, "set", keyed))
                if code == EXT_FROZENSET:
                    return _count(keyed, frozenset(self._container(data, "frozenset", keyed)))
                if code == EXT_BIGINT:
                    if not data:
                        raise DecodeError("empty big int")
                    return _count(keyed, int.from_bytes(data, "big", signed=True))
            except DecodeError:
                raise
            except Exception as e:  # noqa: BLE001
                raise DecodeError(f"malformed {EXT_CODES[code]}: {brief_error(e)}") from None
            raise DecodeError(f"unknown EDF ext type {code}")

        return ext_hook

    def _container(self, data: bytes, what: str, cell: list[Any]) -> list[Any]:
        items = self._unpack(data, what, cell)
        if type(items) is not list:
            raise DecodeError(f"a {what} must hold a msgpack array, not {brief(items)}")
        return items

    def _atom(self, data: bytes) -> Atom:
        atom = self._atoms.get(data)
        if atom is None:
            if len(data) > 255:
                raise DecodeError(f"atom of {len(data)} bytes (max 255)")
            atom = Atom(_utf8(data, "an atom"))
            if len(self._atoms) >= _CACHE_MAX:
                self._atoms.clear()
            self._atoms[data] = atom
        return atom

    def _dec_id(self, code: int, data: bytes) -> Any:
        # Identifiers repeat (the same PIDs talk all the time), so each distinct encoding is
        # validated and built once and then served from a bounded cache.
        cache = self._ids[code]
        value = cache.get(data)
        if value is not None:
            return value
        if code == EXT_PID:
            if len(data) < 16:
                raise DecodeError("truncated PID")
            ident, creation = _PID_HEAD.unpack_from(data)
            value = PID(self._atom(data[16:]), ident, creation)
        elif code == EXT_REF or code == EXT_ALIAS:
            if len(data) < 32:
                raise DecodeError(f"truncated {EXT_CODES[code]}")
            creation, a, b, c = _REF_HEAD.unpack_from(data)
            value = (Ref if code == EXT_REF else Alias)(self._atom(data[32:]), creation, (a, b, c))
        else:
            if not data or len(data) < 1 + data[0]:
                raise DecodeError(f"truncated {EXT_CODES[code]}")
            n = data[0] + 1
            value = (ProcessID if code == EXT_PROCESS_ID else Event)(
                self._atom(data[1:n]), self._atom(data[n:])
            )
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[data] = value
        return value

    def _dec_record(self, data: bytes, cell: list[Any]) -> Any:
        items = self._container(data, "record", cell)
        if not items or type(items[0]) is not str:
            raise DecodeError("a record must start with its type name")
        name = items[0]
        known = self._records.get(name)
        if known is None:
            raise DecodeError(f"unknown record type {brief(name)} (not registered on this node)")
        cls, nfields = known
        if len(items) - 1 != nfields:
            raise DecodeError(f"record {name!r} has {len(items) - 1} fields, expected {nfields}")
        try:
            return cls(*items[1:])
        except Exception as e:  # noqa: BLE001
            raise DecodeError(f"record {name!r} refused its fields: {brief_error(e)}") from None

    def _dec_error(self, data: bytes, cell: list[Any]) -> BaseException:
        items = self._container(data, "error", cell)
        if len(items) != 2 or type(items[0]) is not str or type(items[1]) is not list:
            raise DecodeError("an error must be [name, [args...]]")
        name, args = items
        cls = self._errors.get(name)
        if cls is None:
            if len(name) > 63 and len(name.encode("utf-8")) > 255:  # as register_type refuses
                raise DecodeError(f"error name {brief(name)} is longer than 255 bytes")
            # an error class this node does not know: keep its name and text (exit reasons
            # must always arrive), never import or build it
            return RemoteError(name, ", ".join(map(_arg_text, args)))
        try:
            return cls(*args)
        except Exception as e:  # noqa: BLE001
            raise DecodeError(f"error {brief(name)} refused its arguments: {brief_error(e)}") from None


def _arg_text(arg: Any) -> str:
    # str() of a plain scalar is what the sender meant; anything else may be hostile (a
    # deep list, a 5000-digit int) and is described, never printed
    if type(arg) is str:
        return arg
    return brief(arg, 200)


def _count(keyed: list[Any], value: Any) -> Any:
    """Note a decoded value a set or map could use as a key; refuse one hash shared too often.

    ``keyed[0]`` holds what the decode has seen: None, then a list of the first
    _UNCOUNTED such values, then a dict from each hash to the distinct values that have it.
    """
    seen = keyed[0]
    if type(seen) is dict:
        _enter(seen, value)
    elif seen is None:
        keyed[0] = [value]
    else:
        seen.append(value)
        if len(seen) > _UNCOUNTED:
            table: dict[int, Any] = {}
            keyed[0] = table
            for v in seen:
                _enter(table, v)
    return value


def _enter(table: dict[int, Any], value: Any) -> None:
    # table maps a hash to the one value that has it, or to a list of the distinct values
    # that share it (a hashable value is never exactly a list, so the two cannot be confused)
    try:
        h = hash(value)
    except TypeError:  # holds a list or a dict: it can never be a key
        return
    same = table.setdefault(h, value)
    if same is value:
        return
    if type(same) is not list:
        if same != value:  # a repeated value costs a set or map nothing
            table[h] = [same, value]
        return
    for other in same:
        if other == value:
            return
    if len(same) >= MAX_SHARED_HASH:
        raise DecodeError(
            f"more than {MAX_SHARED_HASH} distinct values share one hash "
            f"(the last a {type(value).__name__}): a hash-flooding attempt"
        )
    same.append(value)


def _node_bytes(node: str) -> bytes:
    return str.__str__(node).encode("utf-8")


# msgpack.ExtType validates its arguments in Python on every construction, which costs more
# than packing the value; ours are valid by construction, so build the tuple directly.
_tuple_new = tuple.__new__

# Identifiers are immutable and the same few are sent over and over, so each one's ext value
# is cached, keyed by the object's id() *with* the object kept alive next to it (an id is
# only reused after its object dies, and a cached object cannot die).
_enc_cache: dict[int, tuple[Any, msgpack.ExtType]] = {}


def _cached(obj: Any, code: int, data: bytes) -> msgpack.ExtType:
    ext = _tuple_new(_ExtType, (code, data))
    if len(_enc_cache) >= _CACHE_MAX:
        _enc_cache.clear()
    _enc_cache[id(obj)] = (obj, ext)
    return ext


def _enc_atom(obj: Atom, depth: int) -> msgpack.ExtType:
    hit = _enc_cache.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    return _cached(obj, EXT_ATOM, str.__str__(obj).encode("utf-8"))


def _enc_pid(obj: PID, depth: int) -> msgpack.ExtType:
    hit = _enc_cache.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    try:
        head = _PID_HEAD.pack(obj.id, obj.creation)
    except struct.error:
        raise EncodeError(f"PID {obj}: id must fit 64 unsigned bits and creation 64 signed bits") from None
    return _cached(obj, EXT_PID, head + _node_bytes(obj.node))


def _enc_ref_like(code: int, obj: Ref | Alias) -> msgpack.ExtType:
    hit = _enc_cache.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    try:
        head = _REF_HEAD.pack(obj.creation, *obj.id)
    except struct.error:
        raise EncodeError(f"{obj}: creation must fit 64 signed bits and each id 64 unsigned bits") from None
    return _cached(obj, code, head + _node_bytes(obj.node))


def _enc_ref(obj: Ref, depth: int) -> msgpack.ExtType:
    return _enc_ref_like(EXT_REF, obj)


def _enc_alias(obj: Alias, depth: int) -> msgpack.ExtType:
    return _enc_ref_like(EXT_ALIAS, obj)


def _enc_named(code: int, obj: ProcessID | Event) -> msgpack.ExtType:
    hit = _enc_cache.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    raw = _node_bytes(obj.name)
    return _cached(obj, code, bytes((len(raw),)) + raw + _node_bytes(obj.node))


def _enc_process_id(obj: ProcessID, depth: int) -> msgpack.ExtType:
    return _enc_named(EXT_PROCESS_ID, obj)


def _enc_event(obj: Event, depth: int) -> msgpack.ExtType:
    return _enc_named(EXT_EVENT, obj)


def _enc_bigint(obj: int, depth: int) -> msgpack.ExtType:
    # only reached for ints msgpack cannot hold in 64 bits
    return _tuple_new(_ExtType, (EXT_BIGINT, obj.to_bytes((obj.bit_length() + 8) // 8, "big", signed=True)))


#: The registry the module-level functions use; a node that needs its own makes a Registry.
DEFAULT = Registry()


def register_type(cls: type, name: str | None = None) -> str:
    """Register ``cls`` in :data:`DEFAULT` (see :meth:`Registry.register_type`)."""
    return DEFAULT.register_type(cls, name)


def encode(value: Any) -> bytes:
    """``value`` as EDF bytes, using :data:`DEFAULT`."""
    return DEFAULT._pack(value, 0)


def decode(data: bytes | bytearray | memoryview) -> Any:
    """The one EDF value in ``data``, using :data:`DEFAULT`; :class:`DecodeError` on bad input."""
    return DEFAULT._unpack(data, "value")


def _no_fields(obj: object) -> tuple[Any, ...]:
    return ()

"""EDF, the Ergo Data Format, on msgpack: how values cross the network between two nodes.

Plain values (None, bool, int, float, str, bytes, list, dict) are msgpack's own types, so
the common case runs entirely inside msgpack's C code.  Identifiers (atoms, PIDs, ...) and
ints beyond 64 bits are msgpack *ext* values whose type code is listed in
:data:`EXT_CODES` and whose layout is in ``docs/wire.md``.  Tuples (kept distinct from
lists), sets, errors and dataclasses registered by name on both nodes are *marked arrays*:
a msgpack array whose first item is an empty ext value naming what the array is.  A marked
array is packed by the same msgpack packer as everything around it (the encoder's hook
only returns the list to pack) and rebuilt by the decoder's list hook, bottom up, inside
the one C unpacker call: no nested packer or unpacker, no recursion in Python per object.
An identifier keeps its encoded ext value on itself (the ``_wire`` slot of
``ergo.gen.ids``), so sending the same PID again costs one attribute read.

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
import re
import struct
from collections.abc import Callable
from typing import Any

import msgpack

from ergo.gen import messages as _messages
from ergo.gen.errors import (
    ERRORS,
    ErgoError,
    Incorrect,
    Malformed,
    Taken,
    TerminateReason,
    TerminateReasonKill,
    TerminateReasonNormal,
    TerminateReasonPanic,
    TerminateReasonShutdown,
    Unsupported,
)
from ergo.gen.ids import PID, Alias, Atom, Event, ProcessID, Ref

from ._brief import brief, brief_error, error_text, stable_text

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
    "has_marks",
    "register_type",
]


class DecodeError(Malformed):
    """Bytes that are not a valid EDF value; the message says what was wrong."""

    default = "malformed EDF value"


#: what the message of an EncodeError for a value of no known type says can cross instead
_CARRIES = ("what is sent to another node holds only None, bool, int, float, str, bytes, list, tuple, dict, "
            "set, aware datetimes, the identifiers (PID, ProcessID, Alias, Event, Ref, Atom), exceptions, and "
            "dataclasses registered on both nodes with ergo.register_type (docs/network.md, "
            "\"What a message may carry\")")


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

#: How deep lists, maps, tuples, sets, errors and records may nest inside each other in a
#: value a decoder accepts: msgpack's own stack (the one C unpacker call builds the whole
#: value, bottom up, with no recursion in Python).  msgpack's packer refuses a value more
#: than 1025 levels deep, so the encoder's bound is the same to one level.
MAX_DEPTH = 1024

#: How many *distinct* tuples, frozensets, big ints, records, errors, refs and aliases of
#: one decoded value may share one hash.  Python's hash of an int is the int modulo
#: 2**61 - 1 and a tuple's hash is an invertible mix of its items' hashes, so a peer can
#: craft any number of distinct values with equal hashes; a set or map of them costs
#: quadratic time to build (the issue's 415 KB set of such big ints took 5.6 s).  A ref's
#: or alias's hash mixes its node name's with its id's, three ints: a peer can make the
#: refs of one node collide.  Strings, bytes and atoms hash with Python's salted SipHash, a
#: PID, process name or event with its node name's, and plain 64-bit ints and floats can
#: only share a hash a handful of times, so the values above are the only keys a peer
#: controls, and all of them are made by the decoder's hooks, which count them: with at
#: most this many per hash, building any set or map of one value costs at most this many
#: comparisons per key.  See ``docs/wire.md``.
MAX_SHARED_HASH = 32
# The first _UNCOUNTED such values of a decode are only counted (at most this many can
# collide, which is harmless); at one more the decode starts again from the first byte with
# every one entered in the table, so small messages never pay for hashing their tuples.
_UNCOUNTED = MAX_SHARED_HASH

_ExtType = msgpack.ExtType
_unpackb = msgpack.unpackb
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

    ``encode(value)`` returns the EDF bytes of ``value`` and raises :class:`EncodeError`
    for anything EDF cannot carry.  ``decode(data, what="value")`` returns the value in
    ``data``, which must hold exactly one EDF value, and raises :class:`DecodeError`
    (whose message calls it ``what``) otherwise.  Both are safe to call from several
    threads and re-entrantly (a registered class's ``__post_init__`` may itself encode).
    """

    #: ``encode(value) -> bytes`` (see the class)
    encode: Callable[[Any], bytes]
    #: ``decode(data, what="value") -> value`` (see the class)
    decode: Callable[..., Any]

    def __init__(self) -> None:
        self._records: dict[str, tuple[type, int]] = {}  # name -> (class, number of fields)
        self._record_names: dict[type, tuple[str, Callable[[Any], Any], int]] = {}
        self._errors: dict[str, type[BaseException]] = {}
        self._error_names: dict[type, str] = {}
        self._atoms: dict[bytes, Atom] = {}
        self._ids: dict[int, dict[bytes, Any]] = {
            c: {} for c in (EXT_PID, EXT_REF, EXT_ALIAS, EXT_PROCESS_ID, EXT_EVENT)
        }
        # what the encoder's hook does with a value msgpack cannot pack by itself, by exact
        # type (identifiers and tuples are tested first, in the hook itself)
        self._encoders: dict[type, Callable[[Any], Any]] = {
            Atom: _enc_atom,
            int: _enc_bigint,
            set: self._enc_set,
            frozenset: self._enc_frozenset,
        }
        # encode and decode each own a packer or a decoding state, and take a pool's while
        # theirs is in use (by another thread, or a decode within a decode)
        self._packers: list[msgpack.Packer] = []
        self._default = self._make_default()
        self._decoders: list[Callable[..., Any]] = []
        self.encode = self._shared_encoder()
        self.decode = self._make_decoder(shared=True)
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
        return name

    def registered(self) -> list[str]:
        """The names of every registered dataclass and error, sorted (handy in a handshake log)."""
        return sorted([*self._records, *self._errors])

    def _add_error(self, cls: type[BaseException], name: str) -> None:
        self._errors[name] = cls
        self._error_names[cls] = name

    # -- encoding -------------------------------------------------------------------------

    def _shared_encoder(self) -> Callable[[Any], bytes]:
        # encode: one packer of its own, taken with a token (an atomic list pop, so two
        # threads never share it); while it is busy, a packer of the pool's
        pack = self._new_packer().pack
        free = [True]
        spare = self._encode_spare

        def encode(value: Any) -> bytes:
            try:
                free.pop()
            except IndexError:  # in use: by another thread, or an encode within this one
                return spare(value)
            try:
                return pack(value)
            except Exception as e:  # noqa: BLE001 - e.g. a registered class whose fields fail to read
                raise _encode_failure(value, e) from None  # (a failed pack leaves the packer empty)
            finally:
                free.append(True)

        encode.__doc__ = "The EDF bytes of ``value``; raises :class:`EncodeError` for anything EDF cannot carry."
        return encode

    def _encode_spare(self, value: Any) -> bytes:
        pool = self._packers
        try:
            packer = pool.pop()
        except IndexError:
            packer = self._new_packer()
        try:
            data = packer.pack(value)
        except Exception as e:  # noqa: BLE001 - e.g. a registered class whose fields fail to read
            pool.append(packer)  # msgpack's packer empties its buffer when a pack fails
            raise _encode_failure(value, e) from None
        pool.append(packer)
        return data

    def _new_packer(self) -> msgpack.Packer:
        return msgpack.Packer(default=self._default, use_bin_type=True, strict_types=True, datetime=True)

    def _encoder(self) -> Callable[[Any], bytes]:
        """An encode function with a packer of its own, for one user at a time (one link's
        sending side): the same bytes and errors as :meth:`encode`, without the pool."""
        pack = self._new_packer().pack

        def encode(value: Any) -> bytes:
            try:
                return pack(value)
            except Exception as e:  # noqa: BLE001
                raise _encode_failure(value, e) from None

        return encode

    def _decoder(self) -> Callable[..., Any]:
        """A decode function with a state of its own, for one user at a time (one link's
        receiving side): the same values and errors as :meth:`decode`, without the pool.

        Its third argument says whether the bytes may hold marked arrays; when the sender
        said they do not (see :func:`has_marks`), msgpack is not asked to call the list
        hook for every array.  A sender that was wrong only costs a second decode.
        """
        return self._make_decoder()

    def _make_default(self) -> Callable[[Any], Any]:
        # The hook runs once per identifier and tuple of every message: the common types
        # are tested first, and it reads module globals rather than closure cells (a
        # function copies every cell it reads into its frame at each call).  A PID's and a
        # Ref's ``_wire`` are read in two places: an attribute lookup that sees one class
        # stays specialized, one that sees several falls back to the generic lookup.
        encoders = self._encoders
        records = self._record_names
        fallback = self._fallback

        def other(obj: Any, t: type) -> Any:
            known = records.get(t)
            if known is not None:
                return [_RECORD_HEAD, known[0], *known[1](obj)]
            enc = encoders.get(t)
            if enc is not None:
                return enc(obj)
            return fallback(obj)

        def default(obj: Any) -> Any:
            # what msgpack packs in place of ``obj``: an ext value, or a marked array (a list
            # whose head is a marker) that the same packer then packs, items and all
            t = type(obj)  # (not obj.__class__: a lookup that sees many classes is the slow one)
            if t is tuple:
                return [_TUPLE_HEAD, *obj]
            if t is PID:
                try:
                    return obj._wire
                except AttributeError:  # never sent before: encode it once, keep it on it
                    return _enc_pid(obj)
            if t is Ref:
                try:
                    return obj._wire
                except AttributeError:
                    return _enc_ref(obj)
            if t is Atom:
                try:
                    return _atom_cache[obj]
                except KeyError:
                    return _enc_atom(obj)
            if t in _ID_TYPES:
                try:
                    return obj._wire
                except AttributeError:
                    return _ID_ENCODERS[t](obj)
            return other(obj, t)

        return default

    def _fallback(self, obj: Any) -> Any:
        """Values whose exact type has no encoder: exceptions, and subclasses of plain types."""
        if isinstance(obj, BaseException):
            return self._enc_error(obj)
        if isinstance(obj, bool):
            return bool(obj)
        if isinstance(obj, int):  # IntEnum and friends travel as their number
            value = int(obj)
            return value if _INT64_MIN <= value <= _UINT64_MAX else _enc_bigint(value)
        if isinstance(obj, Atom):
            return _enc_atom(obj)
        if isinstance(obj, str):
            return str.__str__(obj)
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, dict):
            return dict(obj)
        if isinstance(obj, list):
            return list(obj)
        if isinstance(obj, tuple):
            return [_TUPLE_HEAD, *obj]
        if isinstance(obj, (bytes, memoryview)):
            return bytes(obj)
        if isinstance(obj, datetime.datetime):
            raise EncodeError("a datetime must carry a tzinfo to be encoded")
        if dataclasses.is_dataclass(obj):
            cls = type(obj)
            raise EncodeError(
                f"unregistered dataclass {cls.__module__}.{cls.__qualname__}: "
                f"ergo.register_type({cls.__qualname__}) on both nodes lets it cross"
            )
        raise EncodeError(f"cannot encode a {type(obj).__module__}.{type(obj).__qualname__}: {_CARRIES}")

    def _enc_set(self, obj: set[Any]) -> list[Any]:
        return [_SET_HEAD, *self._in_order(obj)]

    def _enc_frozenset(self, obj: frozenset[Any]) -> list[Any]:
        return [_FROZENSET_HEAD, *self._in_order(obj)]

    def _in_order(self, items: set[Any] | frozenset[Any]) -> list[Any]:
        """A set's items in the order of their own encodings' bytes: a set of strings
        iterates in an order ``PYTHONHASHSEED`` chooses, and its bytes (their compressed
        size, a simulated run's timing) must be the same in every process."""
        return sorted(items, key=self.encode)

    def _enc_error(self, err: BaseException) -> list[Any]:
        name = self._error_names.get(type(err))
        if name is None:
            # its text as every process writes it (sets in order, no addresses): an exit
            # reason is data the receiver may act on, and a seed's run must not vary by process
            args: list[Any] = [type(err).__name__, error_text(err)]
            name = "RemoteError"
        else:
            args = list(err.args)
            try:
                # an exit reason must always travel: arguments that cannot be encoded are
                # sent as their str().  Errors are rare, so checking costs a nested pack.
                self.encode(args)
            except EncodeError:
                args = [stable_text(a) for a in args]
        return [_ERROR_HEAD, name, *args]

    # -- decoding -------------------------------------------------------------------------

    def _decode_spare(self, data: bytes | bytearray | memoryview, what: str) -> Any:
        # decode's state is in use (by another thread, or a decode within a decode): a
        # decoder from the pool, made when the pool is empty (cheaper than hooks per decode)
        pool = self._decoders
        try:
            dec = pool.pop()
        except IndexError:
            dec = self._make_decoder()
        try:
            return dec(data, what, _may_mark(data))
        finally:
            pool.append(dec)

    def _make_decoder(self, shared: bool = False) -> Callable[..., Any]:
        # A decoder is closures over one decode's state: ``opened``, how many markers the
        # ext hook made that no list hook consumed yet (a marker anywhere but at the head of
        # an array is refused); ``room``, how many more values a set or map could use as
        # keys are only counted; ``tabling``, whether each such value is entered in
        # ``table``, the distinct values per hash (see MAX_SHARED_HASH).  A decode counts
        # the first _UNCOUNTED; at one more it starts again from the first byte with every
        # one tabled (_Recount), so a small message never pays for hashing its tuples, nor
        # for remembering them.  The hooks run once per identifier and marked array of
        # every message, so they are written for speed: identity tests, the caches read
        # inline, the state in the closure's own cells, constants read as module globals
        # (a function copies every cell it reads into its frame at each call).
        #
        # ``shared``: the decoder is the Registry's ``decode``, which threads and a decode
        # within a decode may call at once: it takes a token (an atomic list pop) and, when
        # the token is out, hands the bytes to a decoder of the pool's.  Unshared ones (a
        # link's, the pool's) have one user at a time.
        dec_id = self._dec_id
        atom = self._atom
        atoms = self._atoms
        pids = self._ids[EXT_PID]
        refs = self._ids[EXT_REF]
        records = self._records
        dec_error = self._dec_error
        record_mark = _MARKS[EXT_RECORD]
        set_mark = _MARKS[EXT_SET]
        frozenset_mark = _MARKS[EXT_FROZENSET]
        opened = 0
        room = _UNCOUNTED
        tabling = False
        table: dict[int, Any] = {}
        free = [True]
        spare = self._decode_spare

        def ext_hook(code: int, data: bytes) -> Any:
            nonlocal opened, room
            # the cached identifiers by subscript (a miss costs an exception, once per value);
            # the codes written as numbers, which cost less than a module global's lookup
            # (EXT_PID 2, EXT_ATOM 1, EXT_REF 4, EXT_TUPLE 16: docs/wire.md; test_wire_constants pins them)
            try:
                if data:
                    if code == 2:  # EXT_PID
                        return pids[data]
                    if code == 1:  # EXT_ATOM
                        return atoms[data]
                    if code == 4:  # EXT_REF
                        value = refs[data]
                        if room:  # note()'s common case inline: a ref's id is three ints
                            room -= 1
                            return value
                        return note(value)
                elif code == 16:  # EXT_TUPLE
                    opened += 1
                    return _TUPLE_MARK
                else:
                    mark = _MARKS.get(code)
                    if mark is not None:
                        opened += 1
                        return mark
            except KeyError:
                pass
            return slow_ext(code, data)

        def slow_ext(code: int, data: bytes) -> Any:
            try:
                if code <= EXT_EVENT:
                    if code == EXT_ATOM:
                        return atom(data)
                    if code >= EXT_PID:
                        value = dec_id(code, data)
                        # a ref's or alias's hash is its id's (three ints a peer can make
                        # collide) mixed with its node's: counted as a tuple is
                        return note(value) if code == EXT_REF or code == EXT_ALIAS else value
                if code in _MARKS:
                    raise DecodeError(f"a {EXT_CODES[code]} marker carries {len(data)} bytes (it has none)")
                if code == EXT_BIGINT:
                    if not data:
                        raise DecodeError("empty big int")
                    return note(int.from_bytes(data, "big", signed=True))
            except DecodeError:
                raise
            except Exception as e:  # noqa: BLE001
                raise DecodeError(f"malformed {EXT_CODES.get(code, code)}: {brief_error(e)}") from None
            raise DecodeError(f"unknown EDF ext type {code}")

        def note(value: Any) -> Any:
            # a decoded value a set or map could use as a key: the first few are only
            # counted; one more, and the decode starts again with every one tabled
            nonlocal room
            if room:
                room -= 1
            elif tabling:
                _enter(table, value)
            else:
                raise _Recount
            return value

        def list_hook(items: list[Any]) -> Any:
            # called by msgpack for every array once its items are decoded (innermost first)
            nonlocal opened, room
            if items:
                if items[0] is _TUPLE_MARK:  # the most common marked array, on the shortest path
                    opened -= 1
                    del items[0]
                    if room:  # note()'s common case inline
                        room -= 1
                        return tuple(items)
                    return note(tuple(items))
                head = items[0]
                if type(head) is _Mark:
                    return marked(items, head)
            return items

        def marked(items: list[Any], head: _Mark) -> Any:
            nonlocal opened
            opened -= 1
            if head is record_mark:
                if len(items) < 2 or type(items[1]) is not str:
                    raise DecodeError("a record must start with its type name")
                name = items[1]
                known = records.get(name)
                if known is None:
                    raise DecodeError(f"unknown record type {brief(name)} (not registered on this node)")
                cls, nfields = known
                if len(items) - 2 != nfields:
                    raise DecodeError(f"record {name!r} has {len(items) - 2} fields, expected {nfields}")
                try:
                    value = cls(*items[2:])
                except Exception as e:  # noqa: BLE001
                    raise DecodeError(f"record {name!r} refused its fields: {brief_error(e)}") from None
                return note(value)
            if head is set_mark:
                try:
                    return set(items[1:])
                except TypeError as e:
                    raise DecodeError(f"unhashable item in a set ({brief_error(e)})") from None
            if head is frozenset_mark:
                try:
                    value = frozenset(items[1:])
                except TypeError as e:
                    raise DecodeError(f"unhashable item in a frozenset ({brief_error(e)})") from None
                return note(value)
            return note(dec_error(items))

        def decode(data: Any, what: str = "value", marked: Any = 1) -> Any:
            # ``marked``: whether the bytes may hold marked arrays; when the sender said they
            # do not (see has_marks), msgpack is not asked to call the list hook for every
            # array (a sender that was wrong only costs a second decode)
            nonlocal opened, room, tabling
            if shared:
                try:
                    free.pop()
                except IndexError:
                    return spare(data, what)
                marked = data.__class__ is not bytes or 0xC7 in data  # _may_mark's test, inline
            try:
                value = _unpackb(
                    data, ext_hook=ext_hook, list_hook=list_hook if marked else None,
                    strict_map_key=False, timestamp=3,
                )  # fmt: skip
            except _Recount:  # more values a set or map could key than are only counted
                opened = room = 0
                tabling = True
                try:
                    value = _unpackb(
                        data, ext_hook=ext_hook, list_hook=list_hook if marked else None,
                        strict_map_key=False, timestamp=3,
                    )  # fmt: skip
                except Exception as e:  # noqa: BLE001
                    opened = 0
                    raise _decode_failure(e, what) from None
                finally:
                    tabling = False
                    table.clear()  # hold on to no decoded value between decodes
            except Exception as e:  # noqa: BLE001 - hostile bytes must only ever raise DecodeError
                opened = 0
                raise _decode_failure(e, what) from None
            finally:
                room = _UNCOUNTED
                if shared:
                    free.append(True)
            if opened:
                opened = 0
                if not marked:  # the bytes had markers after all: decode them as such
                    return decode(data, what, 1)
                raise DecodeError(f"a tuple, set, error or record marker that heads no array in the {what}")
            return value

        return decode

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

    def _dec_error(self, items: list[Any]) -> BaseException:
        if len(items) < 2 or type(items[1]) is not str:
            raise DecodeError("an error must be [marker, name, args...]")
        name = items[1]
        args = items[2:]
        cls = self._errors.get(name)
        if cls is None:
            if len(name) > 63 and len(name.encode("utf-8")) > 255:  # as register_type refuses
                raise DecodeError(f"error name {brief(name)} is longer than 255 bytes")
            # an error class this node does not know: keep its name and text (exit reasons
            # must always arrive), never import or build it
            return RemoteError(name, ", ".join(map(_arg_text, args)))
        if cls is TerminateReason and len(args) == 1:
            # the well-known reasons arrive as the very objects, so ``reason is
            # TerminateReasonNormal`` holds for a remote reason as for a local one
            known = _KNOWN_REASONS.get(args[0]) if type(args[0]) is str else None
            if known is not None:
                return known
        try:
            return cls(*args)
        except Exception as e:  # noqa: BLE001
            raise DecodeError(f"error {brief(name)} refused its arguments: {brief_error(e)}") from None

_KNOWN_REASONS = {r.args[0]: r for r in (TerminateReasonNormal, TerminateReasonKill, TerminateReasonPanic,
                                         TerminateReasonShutdown)}


def _arg_text(arg: Any) -> str:
    # str() of a plain scalar is what the sender meant; anything else may be hostile (a
    # deep list, a 5000-digit int) and is described, never printed
    if type(arg) is str:
        return arg
    return brief(arg, 200)


def _decode_failure(e: Exception, what: str) -> DecodeError:
    """The DecodeError for what unpacking the bytes of ``what`` raised."""
    if isinstance(e, DecodeError):
        return e
    if isinstance(e, msgpack.ExtraData):
        return DecodeError(f"extra bytes after the {what}")
    if isinstance(e, UnicodeDecodeError):
        return DecodeError(f"invalid UTF-8 in a string in the {what}")
    if isinstance(e, msgpack.StackError):
        return DecodeError(f"the {what} nests deeper than {MAX_DEPTH} levels")
    if isinstance(e, msgpack.FormatError):
        return DecodeError(f"a byte that starts no msgpack value in the {what}")
    if isinstance(e, TypeError):
        return DecodeError(f"unhashable map key in the {what} ({brief_error(e)})")
    if isinstance(e, RecursionError):  # a subclass of RuntimeError, named for what it means here
        return DecodeError(f"the {what} nests too deep for this thread's stack")
    if isinstance(e, ValueError):
        if "incomplete" in str(e):
            return DecodeError(f"truncated {what}")
        if "exceeds max_" in str(e):  # a length longer than the bytes that are left
            return DecodeError(f"truncated {what} ({brief_error(e)})")
        return DecodeError(f"malformed {what}: {brief_error(e)}")
    return DecodeError(f"malformed {what}: {brief_error(e)}")


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


#: Every marker is packed as these two bytes and its code (an ext 8 of no data), so bytes
#: without them hold no marked array.  (They may also occur inside a string or a number.)
MARK_BYTES = b"\xc7\x00"
_find_mark = re.compile(re.escape(MARK_BYTES)).search


def has_marks(data: bytes) -> bool:
    """Whether EDF bytes may hold a marked array (False: they certainly do not)."""
    # ``MARK_BYTES in data`` costs ~200 ns here (the buffer protocol on the needle); the one
    # byte is found with memchr, and only then are the two looked for, by a compiled pattern
    return 0xC7 in data and _find_mark(data) is not None


def _may_mark(data: Any) -> bool:
    # whether EDF bytes may hold a marked array: bytes without the byte every marker starts
    # with hold none (found with memchr; a view is not searched, it may)
    return data.__class__ is not bytes or 0xC7 in data


class _Recount(DecodeError):
    """Raised by a decoder's hooks at the first value past the ones only counted: the
    decode starts again with every value tabled (never leaves the decoder)."""


def _encode_failure(value: Any, e: Exception) -> EncodeError:
    """The EncodeError for what packing ``value`` raised."""
    if isinstance(e, EncodeError):
        return e
    if isinstance(e, ValueError) and "recursion limit" in str(e):
        return EncodeError(f"the value nests deeper than msgpack packs (about {MAX_DEPTH} levels)")
    return EncodeError(f"cannot encode {type(value).__name__}: {type(e).__name__}: {e}")


def _node_bytes(node: str) -> bytes:
    return str.__str__(node).encode("utf-8")


# msgpack.ExtType validates its arguments in Python on every construction, which costs more
# than packing the value; ours are valid by construction, so build the tuple directly.
_tuple_new = tuple.__new__
_set_slot = object.__setattr__


class _Mark:
    """What the decoder's ext hook returns for a marker; the list hook turns its array into the value."""

    __slots__ = ("code",)

    def __init__(self, code: int) -> None:
        self.code = code


_MARKS = {code: _Mark(code) for code in (EXT_TUPLE, EXT_SET, EXT_FROZENSET, EXT_ERROR, EXT_RECORD)}
_TUPLE_MARK = _MARKS[EXT_TUPLE]
_TUPLE_HEAD = _tuple_new(_ExtType, (EXT_TUPLE, b""))
_SET_HEAD = _tuple_new(_ExtType, (EXT_SET, b""))
_FROZENSET_HEAD = _tuple_new(_ExtType, (EXT_FROZENSET, b""))
_ERROR_HEAD = _tuple_new(_ExtType, (EXT_ERROR, b""))
_RECORD_HEAD = _tuple_new(_ExtType, (EXT_RECORD, b""))

# Atoms are str subclasses and can have no slot: their ext values are cached by value.
# (Every identifier type has a ``_wire`` slot: see _keep.)
_atom_cache: dict[str, msgpack.ExtType] = {}


def _enc_atom(obj: Atom) -> msgpack.ExtType:
    ext = _atom_cache.get(obj)
    if ext is None:
        ext = _tuple_new(_ExtType, (EXT_ATOM, str.__str__(obj).encode("utf-8")))
        if len(_atom_cache) >= _CACHE_MAX:
            _atom_cache.clear()
        # an Atom itself is the key (its lookups then match by identity); a subclass's text,
        # which its own __eq__ or __hash__ cannot change
        _atom_cache[obj if type(obj) is Atom else str.__str__(obj)] = ext
    return ext


def _keep(obj: Any, code: int, data: bytes) -> msgpack.ExtType:
    # identifiers are immutable: the ext value is computed once and kept on the object
    ext = _tuple_new(_ExtType, (code, data))
    _set_slot(obj, "_wire", ext)
    return ext


def _enc_pid(obj: PID) -> msgpack.ExtType:
    try:
        head = _PID_HEAD.pack(obj.id, obj.creation)
    except struct.error:
        raise EncodeError(f"PID {obj}: id must fit 64 unsigned bits and creation 64 signed bits") from None
    return _keep(obj, EXT_PID, head + _node_bytes(obj.node))


def _enc_ref_like(code: int, obj: Ref | Alias) -> msgpack.ExtType:
    try:
        head = _REF_HEAD.pack(obj.creation, *obj.id)
    except struct.error:
        raise EncodeError(f"{obj}: creation must fit 64 signed bits and each id 64 unsigned bits") from None
    return _keep(obj, code, head + _node_bytes(obj.node))


def _enc_ref(obj: Ref) -> msgpack.ExtType:
    return _enc_ref_like(EXT_REF, obj)


def _enc_alias(obj: Alias) -> msgpack.ExtType:
    return _enc_ref_like(EXT_ALIAS, obj)


def _enc_named(code: int, obj: ProcessID | Event) -> msgpack.ExtType:
    raw = _node_bytes(obj.name)
    return _keep(obj, code, bytes((len(raw),)) + raw + _node_bytes(obj.node))


def _enc_process_id(obj: ProcessID) -> msgpack.ExtType:
    return _enc_named(EXT_PROCESS_ID, obj)


def _enc_event(obj: Event) -> msgpack.ExtType:
    return _enc_named(EXT_EVENT, obj)


_ID_ENCODERS: dict[type, Callable[[Any], msgpack.ExtType]] = {
    PID: _enc_pid,
    Ref: _enc_ref,
    Alias: _enc_alias,
    ProcessID: _enc_process_id,
    Event: _enc_event,
}


_ID_TYPES = frozenset(_ID_ENCODERS)


def _enc_bigint(obj: int) -> msgpack.ExtType:
    # only reached for ints msgpack cannot hold in 64 bits
    return _tuple_new(_ExtType, (EXT_BIGINT, obj.to_bytes((obj.bit_length() + 8) // 8, "big", signed=True)))


#: The registry the module-level functions use; a node that needs its own makes a Registry.
DEFAULT = Registry()


def register_type(cls: type, name: str | None = None) -> str:
    """Register ``cls`` in :data:`DEFAULT` (see :meth:`Registry.register_type`)."""
    return DEFAULT.register_type(cls, name)


def encode(value: Any) -> bytes:
    """``value`` as EDF bytes, using :data:`DEFAULT`."""
    return DEFAULT.encode(value)


def decode(data: bytes | bytearray | memoryview) -> Any:
    """The one EDF value in ``data``, using :data:`DEFAULT`; :class:`DecodeError` on bad input."""
    return DEFAULT.decode(data)


def _no_fields(obj: object) -> tuple[Any, ...]:
    return ()

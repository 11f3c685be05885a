"""ENP, the Ergo Network Protocol: the frames two connected nodes exchange, and their decoder.

Every frame starts with an 8-byte header (magic, version, length, order key, type) and
carries one message: a send, a call and its answer, a link or monitor request, a
termination notice, a spawn, an important-delivery acknowledgement or a heartbeat.  The
order key is in the header so a connection pool can pick the link for a frame without
decoding it; every frame with the same non-zero key must take the same link, which is how
messages from one sender keep their order.

The body is one EDF array of the message's fields.  The user's value (the message, the
reason, the result) sits in it as a nested EDF blob, so a value this node cannot decode
(a type it never registered) loses only that message: the decoder reports it as
:class:`Undecodable` with the routing fields intact and the connection stays up.  Anything
wrong with the framing itself is a :class:`ProtocolError`, after which the connection must
be closed.  Frames above the sender's threshold may be lz4-compressed; the receiver
decompresses whatever it gets.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter, itemgetter
from typing import Any, ClassVar, NoReturn

import lz4.block

from ergo.gen.errors import Incorrect, Malformed, TooLarge
from ergo.gen.ids import PID, Alias, Atom, Event, ProcessID, Ref
from ergo.gen.options import DEFAULT_MAX_MESSAGE_SIZE

from . import edf
from ._brief import brief, brief_error
from .edf import DecodeError, Registry

__all__ = [
    "COMPRESSION_LZ4",
    "DEFAULT_COMPRESSION_THRESHOLD",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "FRAME_TYPES",
    "HEADER_SIZE",
    "MAGIC",
    "VERSION",
    "Ack",
    "Demonitor",
    "FrameDecoder",
    "Heartbeat",
    "Link",
    "Monitor",
    "ProtocolError",
    "RequestAlias",
    "RequestPID",
    "RequestProcessID",
    "Response",
    "ResponseError",
    "Result",
    "SendAlias",
    "SendEvent",
    "SendExit",
    "SendPID",
    "SendProcessID",
    "Spawn",
    "TerminateAlias",
    "TerminateEvent",
    "TerminatePID",
    "TerminateProcessID",
    "Undecodable",
    "Unlink",
    "encode",
    "order_key",
]

MAGIC = 78  # "N"
VERSION = 1
HEADER_SIZE = 8
DEFAULT_COMPRESSION_THRESHOLD = 1024
COMPRESSION_LZ4 = 1
TYPE_COMPRESSED = 200

_HEADER = struct.Struct(">BBIBB")  # magic, version, length (whole frame), order, type
_ZHEAD = struct.Struct(">BBI")  # algorithm, inner type, inner body length
_LZ4_MAX_RATIO = 255  # lz4 cannot expand more than this: a bound checked before allocating
_MAX_LENGTH = (1 << 32) - 1  # the header's length field


class ProtocolError(Malformed):
    """The peer broke the framing (bad magic, version, length, type or body); close the connection."""

    default = "ENP protocol error"


@dataclass(frozen=True, slots=True)
class _Kind:
    """What one field of a frame must hold: the single spec both the encoder and decoder check.

    ``types`` is checked with isinstance (None: anything); an int field (``low`` set) must
    be exactly an int in ``low..high`` (not a bool); a ``blob`` field travels as its own
    EDF value in a msgpack bin, so a value this node cannot decode spares the connection.
    """

    what: str
    types: tuple[type, ...] | None
    blob: bool = False
    low: int | None = None
    high: int | None = None


_NONE = type(None)
_I64 = (-(1 << 63), (1 << 63) - 1)
_A_PID = _Kind("a PID", (PID,))
_A_PROCESS_ID = _Kind("a ProcessID", (ProcessID,))
_AN_ALIAS = _Kind("an Alias", (Alias,))
_AN_EVENT = _Kind("an Event", (Event,))
_A_REF = _Kind("a Ref", (Ref,))
_A_REF_OR_NIL = _Kind("a Ref or nil", (Ref, _NONE))
_A_BOOL = _Kind("a bool", (bool,))
_A_STR = _Kind("a str", (str,))
_A_STR_OR_NIL = _Kind("a str or nil", (str, _NONE))
# link / monitor targets (an Atom is a node's name)
_A_TARGET = _Kind("a PID, ProcessID, Alias, Event or Atom", (PID, ProcessID, Alias, Event, Atom))
_PRIORITY = _Kind("an int 0..2 (MessagePriority)", None, low=0, high=2)
_AN_I64 = _Kind("an int of 64 signed bits", None, low=_I64[0], high=_I64[1])
_A_U64 = _Kind("an int of 64 unsigned bits", None, low=0, high=(1 << 64) - 1)
_ANY_VALUE = _Kind("any value", None, blob=True)
_AN_ERROR = _Kind("an error", (BaseException,), blob=True)
_AN_ERROR_OR_NIL = _Kind("an error or nil", (BaseException, _NONE), blob=True)
_A_MAP = _Kind("a map", (dict,), blob=True)
_A_TUPLE = _Kind("a tuple", (tuple,), blob=True)


class _Frame:
    """What every message class shares: its type byte and its field spec, in wire order."""

    __slots__ = ()
    TYPE: ClassVar[int]
    _SPEC: ClassVar[tuple[_Kind, ...]]
    _NAMES: ClassVar[tuple[str, ...]]
    _get: ClassVar[attrgetter[Any]]
    _typed_get: ClassVar[Any]
    _typed_types: ClassVar[tuple[tuple[type, ...], ...]]
    _ints: ClassVar[tuple[tuple[int, int, int], ...]]
    _blobs: ClassVar[tuple[tuple[int, tuple[type, ...] | None], ...]]
    _what: ClassVar[str]


def _frame(type_code: int, *spec: _Kind) -> Callable[[Any], Any]:
    """Declare a frame: a slotted dataclass whose fields, in order, are its wire fields."""

    def wrap(cls: Any) -> Any:
        cls = dataclass(slots=True)(cls)
        names = tuple(f.name for f in fields(cls))
        assert len(names) == len(spec), cls
        cls.TYPE = type_code
        cls._SPEC = spec
        cls._NAMES = names
        cls._get = attrgetter(*names) if len(names) > 1 else (lambda m, _n=names[0]: (getattr(m, _n),))
        # the spec compiled for speed: the fields checked with isinstance (fetched with one
        # itemgetter, checked with one map), the int fields with their ranges, the blobs
        typed = [i for i, k in enumerate(spec) if k.types is not None]
        cls._typed_get = _getter(typed)
        cls._typed_types = tuple(spec[i].types for i in typed)
        cls._ints = tuple((i, k.low, k.high) for i, k in enumerate(spec) if k.low is not None)
        cls._blobs = tuple((i, k.types) for i, k in enumerate(spec) if k.blob)
        cls._what = f"{cls.__name__} value"
        FRAME_TYPES[type_code] = cls
        return cls

    return wrap


def _getter(indices: list[int]) -> Any:
    """A function returning the items at ``indices`` of a sequence, always as a tuple."""
    if len(indices) > 1:
        return itemgetter(*indices)
    if indices:
        return lambda items, _i=indices[0]: (items[_i],)
    return lambda items: ()


def _wrong(cls: Any, items: list[Any] | tuple[Any, ...]) -> str | None:
    """What is wrong with the fields of a frame of class ``cls`` (blobs already decoded), or None.

    The one check of a frame's body against its spec, used by the encoder before it sends
    and by the decoder before it returns; a blob that failed to decode (reported as
    :class:`Undecodable`) is not checked.
    """
    if all(map(isinstance, cls._typed_get(items), cls._typed_types)):
        return _wrong_ints(cls, items)
    # something is off: find the first field that is, in wire order, for the message
    for i, kind in enumerate(cls._SPEC):
        value = items[i]
        if kind.types is not None and not isinstance(value, kind.types) and value is not _UNDECODED:
            return _field_problem(cls, i, value)
    return _wrong_ints(cls, items)


def _wrong_ints(cls: Any, items: list[Any] | tuple[Any, ...]) -> str | None:
    for i, low, high in cls._ints:
        value = items[i]
        if type(value) is not int or not low <= value <= high:
            return _field_problem(cls, i, value)
    return None


def _field_problem(cls: Any, i: int, value: Any) -> str:
    return f"{cls.__name__}.{cls._NAMES[i]} must be {cls._SPEC[i].what}, not {brief(value)}"


#: Every message class by its type byte.
FRAME_TYPES: dict[int, type[Any]] = {}  # the classes _frame made, with TYPE, _SPEC, ...


# --- sends (Ergo's Send* methods) --------------------------------------------------------


@_frame(101, _A_PID, _A_PID, _ANY_VALUE, _PRIORITY, _A_BOOL, _A_REF_OR_NIL)
class SendPID(_Frame):
    """A message to a process by PID.  With ``important`` the receiver answers with an :class:`Ack`
    carrying ``ref``."""

    from_: PID
    to: PID
    message: Any
    priority: int = 0
    important: bool = False
    ref: Ref | None = None


@_frame(102, _A_PID, _A_PROCESS_ID, _ANY_VALUE, _PRIORITY, _A_BOOL, _A_REF_OR_NIL)
class SendProcessID(_Frame):
    """A message to a process by registered name."""

    from_: PID
    to: ProcessID
    message: Any
    priority: int = 0
    important: bool = False
    ref: Ref | None = None


@_frame(104, _A_PID, _AN_ALIAS, _ANY_VALUE, _PRIORITY, _A_BOOL, _A_REF_OR_NIL)
class SendAlias(_Frame):
    """A message to a process (or meta-process) by alias."""

    from_: PID
    to: Alias
    message: Any
    priority: int = 0
    important: bool = False
    ref: Ref | None = None


@_frame(105, _A_PID, _AN_EVENT, _AN_I64, _ANY_VALUE, _PRIORITY)
class SendEvent(_Frame):
    """One published event, sent once per subscribing node and fanned out there."""

    from_: PID
    event: Event
    timestamp: int  # nanoseconds since the epoch, as MessageEvent's
    message: Any
    priority: int = 0


@_frame(107, _A_PID, _A_PID, _AN_ERROR)
class SendExit(_Frame):
    """An exit signal (``send_exit``) from one process to another; always max priority."""

    from_: PID
    to: PID
    reason: BaseException


# --- calls --------------------------------------------------------------------------------


@_frame(121, _A_PID, _A_PID, _A_REF, _ANY_VALUE, _PRIORITY, _A_BOOL)
class RequestPID(_Frame):
    """A call to a process by PID; answered by :class:`Response` or :class:`ResponseError` with ``ref``."""

    from_: PID
    to: PID
    ref: Ref
    message: Any
    priority: int = 0
    important: bool = False


@_frame(122, _A_PID, _A_PROCESS_ID, _A_REF, _ANY_VALUE, _PRIORITY, _A_BOOL)
class RequestProcessID(_Frame):
    """A call to a process by registered name."""

    from_: PID
    to: ProcessID
    ref: Ref
    message: Any
    priority: int = 0
    important: bool = False


@_frame(124, _A_PID, _AN_ALIAS, _A_REF, _ANY_VALUE, _PRIORITY, _A_BOOL)
class RequestAlias(_Frame):
    """A call to a process by alias."""

    from_: PID
    to: Alias
    ref: Ref
    message: Any
    priority: int = 0
    important: bool = False


@_frame(129, _A_PID, _A_PID, _A_REF, _ANY_VALUE, _PRIORITY, _A_BOOL)
class Response(_Frame):
    """The answer to a call, to the caller's PID, carrying the request's ref."""

    from_: PID
    to: PID
    ref: Ref
    message: Any
    priority: int = 0
    important: bool = False


@_frame(130, _A_PID, _A_PID, _A_REF, _AN_ERROR, _PRIORITY, _A_BOOL)
class ResponseError(_Frame):
    """A call that failed: the error the caller's ``call`` raises."""

    from_: PID
    to: PID
    ref: Ref
    error: BaseException
    priority: int = 0
    important: bool = False


# --- links and monitors (target: PID, ProcessID, Alias, Event, or a node's name as Atom) ---


@_frame(140, _A_PID, _A_TARGET, _A_REF)
class Link(_Frame):
    """``from_`` links to ``target`` on the receiving node; answered by :class:`Result` with ``ref``."""

    from_: PID
    target: PID | ProcessID | Alias | Event | Atom
    ref: Ref


@_frame(141, _A_PID, _A_TARGET, _A_REF)
class Unlink(_Frame):
    """``from_`` removes its link to ``target``; answered by :class:`Result`."""

    from_: PID
    target: PID | ProcessID | Alias | Event | Atom
    ref: Ref


@_frame(142, _A_PID, _A_TARGET, _A_REF)
class Monitor(_Frame):
    """``from_`` monitors ``target``; answered by :class:`Result`."""

    from_: PID
    target: PID | ProcessID | Alias | Event | Atom
    ref: Ref


@_frame(143, _A_PID, _A_TARGET, _A_REF)
class Demonitor(_Frame):
    """``from_`` removes its monitor of ``target``; answered by :class:`Result`."""

    from_: PID
    target: PID | ProcessID | Alias | Event | Atom
    ref: Ref


@_frame(150, _A_PID, _A_REF, _AN_ERROR_OR_NIL, _ANY_VALUE)
class Result(_Frame):
    """The answer to a Link/Unlink/Monitor/Demonitor/Spawn request with the same ``ref``.

    ``error`` is None on success; ``result`` is the spawned PID for a spawn, the buffered
    events for a link or monitor of an event, and None otherwise.
    """

    to: PID
    ref: Ref
    error: BaseException | None
    result: Any = None


@_frame(160, _A_PID, _A_REF, _A_STR, _A_STR_OR_NIL, _A_MAP, _A_TUPLE)
class Spawn(_Frame):
    """A remote spawn request: start the factory enabled as ``name`` on the receiving node.

    ``from_`` becomes the parent; ``register`` names the new process; ``options`` holds the
    process options as plain values; ``args`` go to ``init``.  Answered by :class:`Result`.
    """

    from_: PID
    ref: Ref
    name: str
    register: str | None
    options: dict[Any, Any]
    args: tuple[Any, ...]


@_frame(170, _A_PID, _A_PID, _A_REF, _AN_ERROR_OR_NIL)
class Ack(_Frame):
    """Important delivery: the message with ``ref`` reached ``from_``'s mailbox (``error`` None) or not."""

    from_: PID
    to: PID
    ref: Ref
    error: BaseException | None = None


# --- termination notices: the target is gone, fire links and monitors on it --------------


@_frame(181, _A_PID, _AN_ERROR)
class TerminatePID(_Frame):
    """The process ``target`` terminated with ``reason``."""

    target: PID
    reason: BaseException


@_frame(182, _A_PROCESS_ID, _AN_ERROR)
class TerminateProcessID(_Frame):
    """The name ``target`` went away (its process terminated, or it was unregistered)."""

    target: ProcessID
    reason: BaseException


@_frame(184, _AN_ALIAS, _AN_ERROR)
class TerminateAlias(_Frame):
    """The alias ``target`` was deleted or its process terminated."""

    target: Alias
    reason: BaseException


@_frame(185, _AN_EVENT, _AN_ERROR)
class TerminateEvent(_Frame):
    """The event ``target`` was unregistered or its producer terminated."""

    target: Event
    reason: BaseException


@_frame(190, _A_U64)
class Heartbeat(_Frame):
    """Proof of life on an idle link; ``seq`` lets the sender match echoes if it wants to."""

    seq: int = 0


@dataclass(slots=True)
class Undecodable:
    """A frame whose routing fields decoded but whose value did not (e.g. an unregistered type).

    ``message`` is the frame with its value fields set to None.  The connection stays up;
    the node logs this and, for a request, may answer the caller with ``error``.
    """

    message: Any
    error: DecodeError


def order_key(pid: PID) -> int:
    """The header order key for frames from (or about) ``pid``: 1..255, never 0 ("any link")."""
    return 1 + pid.id % 255


def _default_order(msg: Any) -> int:
    sender = getattr(msg, "from_", None)
    if sender is not None:
        return 1 + sender.id % 255
    if type(msg) is TerminatePID:  # after the process's own messages, on their link
        return 1 + msg.target.id % 255
    return 0


def encode(
    msg: Any,
    *,
    registry: Registry | None = None,
    order: int | None = None,
    compression: bool = False,
    threshold: int = DEFAULT_COMPRESSION_THRESHOLD,
    max_message_size: int = 0,
) -> bytes:
    """One frame, ready for the wire.

    ``order`` (0..255) defaults to :func:`order_key` of the sender (for a
    :class:`TerminatePID`, of the target), else 0.  With ``compression`` a body longer than
    ``threshold`` bytes is lz4-compressed when that makes it smaller.  ``max_message_size``
    is the *peer's* limit, as it announced in the handshake (0: none); a larger frame raises
    ``TooLarge`` and nothing is sent.  A field that does not hold what the frame's spec says
    (``docs/wire.md``), or an ``order`` out of range, raises ``Incorrect``: the peer would
    refuse the frame and close the connection.  A value EDF cannot carry raises
    ``EncodeError``.
    """
    cls = type(msg)
    if FRAME_TYPES.get(getattr(cls, "TYPE", None)) is not cls:  # type: ignore[arg-type]
        raise edf.EncodeError(f"{cls.__qualname__} is not an ENP message")
    if order is None:
        order = _default_order(msg)
    elif type(order) is not int or not 0 <= order <= 255:
        raise Incorrect(f"order must be an int 0..255, not {brief(order)}")
    items = list(cls._get(msg))
    wrong = _wrong(cls, items)
    if wrong:
        raise Incorrect(wrong)
    pack = (registry or edf.DEFAULT)._pack
    for i, _ in cls._blobs:
        items[i] = pack(items[i], 0)
    body = pack(items, 0)
    ftype = cls.TYPE
    if compression and len(body) > threshold:
        packed = lz4.block.compress(body, store_size=False)
        if len(packed) + _ZHEAD.size < len(body):
            body = _ZHEAD.pack(COMPRESSION_LZ4, ftype, len(body)) + packed
            ftype = TYPE_COMPRESSED
    length = HEADER_SIZE + len(body)
    if max_message_size and length > max_message_size:
        raise TooLarge(
            f"{cls.__name__} frame of {length} bytes exceeds the peer's limit of {max_message_size}"
        )
    if length > _MAX_LENGTH:
        raise TooLarge(f"{cls.__name__} frame of {length} bytes does not fit ENP's 32-bit length")
    return _HEADER.pack(MAGIC, VERSION, length, order, ftype) + body


class FrameDecoder:
    """Turns the byte stream of one connection into messages, whatever way it was split.

    ``receive_data`` buffers bytes and ``next_event`` returns the next message (or
    :class:`Undecodable`), or None when it needs more bytes; :meth:`feed` does both.  A
    frame longer than ``max_message_size`` (default :data:`DEFAULT_MAX_MESSAGE_SIZE`; 0: no
    limit beyond the 4 GiB length field) is a :class:`ProtocolError` as soon as its header
    arrives, so a huge length prefix never allocates anything; a compressed frame counts
    with its decompressed size.

    Whatever the bytes, the only exception that leaves is :class:`ProtocolError`.  After one
    the decoder has failed for good: the connection must be closed, and every later call
    raises a new ProtocolError with the same text (a fresh exception each time, so a caller
    that keeps calling holds nothing but one string).
    """

    def __init__(self, registry: Registry | None = None, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if type(max_message_size) is not int or max_message_size < 0:
            raise Incorrect(f"max_message_size must be an int >= 0, not {brief(max_message_size)}")
        self._reg = registry or edf.DEFAULT
        self.max_message_size = max_message_size
        self._buf = bytearray()
        self._pos = 0
        self._failure: str | None = None

    @property
    def failed(self) -> bool:
        """True once a ProtocolError was raised: close the connection."""
        return self._failure is not None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as messages."""
        return len(self._buf) - self._pos

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes received from the peer."""
        if self._failure is not None:
            raise ProtocolError(self._failure)
        self._buf += data

    def next_event(self) -> Any:
        """The next complete message, or None if more bytes are needed; raises ProtocolError."""
        if self._failure is not None:
            raise ProtocolError(self._failure)
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < HEADER_SIZE:
            return self._compact()
        magic, version, length, _order, ftype = _HEADER.unpack_from(buf, pos)
        if magic != MAGIC:
            self._fail(f"bad magic byte {magic} (expected {MAGIC})")
        if version != VERSION:
            self._fail(f"ENP version {version} (this node speaks {VERSION})")
        if length < HEADER_SIZE:
            self._fail(f"frame length {length} is shorter than its header")
        if self.max_message_size and length > self.max_message_size:
            self._fail(f"frame of {length} bytes exceeds the limit of {self.max_message_size}")
        if avail < length:
            return self._compact()
        body = buf[pos + HEADER_SIZE : pos + length]
        self._pos = pos + length
        try:
            return self._decode(ftype, body)
        except ProtocolError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever the bytes, only ProtocolError leaves
            self._fail(f"frame of type {ftype}: {brief_error(e)}")

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """``receive_data`` then every complete message.  On a ProtocolError, the messages
        decoded before the bad frame in this call are on the error's ``events`` attribute:
        deliver them, then close the connection."""
        self.receive_data(data)
        events: list[Any] = []
        next_event = self.next_event
        try:
            while (event := next_event()) is not None:
                events.append(event)
        except ProtocolError as e:
            e.events = events  # type: ignore[attr-defined]
            raise
        return events

    def _compact(self) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0

    def _fail(self, why: str) -> NoReturn:
        self._failure = why
        self._buf = bytearray()
        self._pos = 0
        raise ProtocolError(why) from None

    def _decode(self, ftype: int, body: bytes | bytearray) -> Any:
        if ftype == TYPE_COMPRESSED:
            ftype, body = self._decompress(body)
        cls = FRAME_TYPES.get(ftype)
        if cls is None:
            self._fail(f"unknown frame type {ftype}")
        reg = self._reg
        try:
            items = reg._unpack(body, f"{cls.__name__} frame")
        except DecodeError as e:
            self._fail(str(e))
        if type(items) is not list or len(items) != len(cls._SPEC):
            self._fail(f"{cls.__name__} frame must be an array of {len(cls._SPEC)} fields, not {brief(items)}")
        error = None
        for i, _ in cls._blobs:
            value = items[i]
            if type(value) is not bytes:
                self._fail(f"{cls.__name__}.{cls._NAMES[i]} must be an EDF value in a bin, not {brief(value)}")
            try:
                items[i] = reg._unpack(value, cls._what)
            except DecodeError as e:
                error = e
                items[i] = _UNDECODED
        wrong = _wrong(cls, items)
        if wrong:
            self._fail(wrong)
        if error is None:
            return cls(*items)
        return Undecodable(cls(*[None if v is _UNDECODED else v for v in items]), error)

    def _decompress(self, body: bytes | bytearray) -> tuple[int, bytes]:
        if len(body) < _ZHEAD.size:
            self._fail("compressed frame shorter than its header")
        algorithm, ftype, size = _ZHEAD.unpack_from(body)
        if algorithm != COMPRESSION_LZ4:
            self._fail(f"unknown compression algorithm {algorithm}")
        if ftype == TYPE_COMPRESSED:
            self._fail("a compressed frame inside a compressed frame")
        packed = body[_ZHEAD.size :]
        if self.max_message_size and size + HEADER_SIZE > self.max_message_size:
            self._fail(f"compressed frame expands to {size} bytes, over the limit of {self.max_message_size}")
        if size > len(packed) * _LZ4_MAX_RATIO + 64:
            self._fail(f"compressed frame claims {size} bytes from {len(packed)}: more than lz4 can expand")
        try:
            data = lz4.block.decompress(packed, uncompressed_size=size)
        except Exception as e:  # noqa: BLE001 - lz4 raises its own error types for bad input
            self._fail(f"corrupt lz4 data: {brief_error(e)}")
        if len(data) != size:
            self._fail(f"compressed frame expanded to {len(data)} bytes, not the {size} it announced")
        return ftype, data


class _Undecoded:
    """Stands in a blob field that failed to decode, so the spec check skips it."""

    __slots__ = ()


_UNDECODED: Any = _Undecoded()

"""ENP, the Ergo Network Protocol: the frames two connected nodes exchange, and their decoders.

Every frame starts with an 8-byte header (magic, version, length, order key, type) and
carries one message: a send, a call and its answer, a link or monitor request, a
termination notice, a spawn, an important-delivery acknowledgement or a heartbeat.  The
order key is in the header so a connection pool can pick the link for a frame without
decoding it; every frame with the same non-zero key must take the same link, which is how
messages from one sender keep their order.

Two ways to use it (byte layouts in ``docs/wire.md``):

- :class:`LinkCodec`, the codec of one established link (what the network layer uses).
  Made from the two nodes' handshake introductions (``LinkCodec.for_link(ours, peer,
  registry)``), it leaves the node names and creations out of the frames of the hot path,
  sends names of processes through a per-link table, and packs plain sends into batch
  frames.  Sending: ``send(msg, compress=None)`` / ``send_pid(from_, to, message,
  priority, important, ref, compress=None)`` / ``send_call(kind, from_, to, ref, message,
  priority, important, compress)`` append to its output and return the bytes to write now
  once 64 KiB are pending (else None); ``flush()`` returns the rest when the
  node's run ends.  ``TooLarge``, ``ProcessIncarnation``, ``Incorrect`` and ``EncodeError``
  are raised at the call, with nothing appended.  Receiving: ``feed(memoryview)`` returns
  the messages, identifiers whole; it decodes in place and copies only an unfinished
  frame, so the transport may reuse its buffer after the call.
- :func:`encode` and :class:`FrameDecoder`, which carry every identifier whole and need no
  link (tests, tools, and the frames a link codec falls back on).

The body of the full frames is one EDF array of the message's fields, the user's value
(the message, the reason, the result) sitting in it as a nested EDF blob; in the link
frames the value is the rest of the frame.  Either way a value this node cannot decode (a
type it never registered) loses only that message: the decoder reports it as
:class:`Undecodable` with the routing fields intact and the connection stays up.
Anything wrong with the framing itself is a :class:`ProtocolError`, after which the
connection must be closed.  Frames above the sender's threshold may be lz4-compressed; the
receiver decompresses whatever it gets.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, fields
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any, ClassVar, NoReturn

import lz4.block
import msgpack

from ergo.gen.errors import Incorrect, Malformed, ProcessIncarnation, TooLarge
from ergo.gen.ids import PID, Alias, Atom, Event, ProcessID, Ref, set_hash
from ergo.gen.options import DEFAULT_MAX_MESSAGE_SIZE

from . import edf
from ._brief import brief, brief_error
from .edf import DecodeError, Registry, has_marks

__all__ = [
    "COMPRESSION_LZ4",
    "DEFAULT_COMPRESSION_THRESHOLD",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "BATCH_BYTES",
    "BATCH_ENTRIES",
    "FRAME_TYPES",
    "HEADER_SIZE",
    "LINK_TYPES",
    "NAME_TABLE_SIZE",
    "TYPE_BATCH",
    "MAGIC",
    "VERSION",
    "Ack",
    "ApplicationStart",
    "Demonitor",
    "FrameDecoder",
    "Heartbeat",
    "Link",
    "LinkCodec",
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
    "SendRun",
    "Sends",
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
    "speaks_for",
]

MAGIC = 78  # "N"
VERSION = 3
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
_APP_MODE = _Kind("an int 0..3 (0: the spec's ApplicationMode)", None, low=0, high=3)
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

    ``from_`` is the requester (``link_parent`` links the new process to it); ``register``
    names the new process; ``options`` holds the process options as plain values
    (docs/wire.md); ``args`` go to ``init``.  Answered by :class:`Result`.
    """

    from_: PID
    ref: Ref
    name: str
    register: str | None
    options: dict[Any, Any]
    args: tuple[Any, ...]


@_frame(161, _A_PID, _A_REF, _A_STR, _APP_MODE, _A_MAP)
class ApplicationStart(_Frame):
    """A remote application start: start the application ``name`` loaded on the receiving
    node, which enabled it for the sender (``enable_application_start``).

    ``mode`` is 1 temporary, 2 transient, 3 permanent, or 0 for the mode of its spec;
    ``options`` holds ``env`` (a map) and ``log_level`` (its name) of the start.  Answered
    by :class:`Result` (``result`` nil).
    """

    from_: PID
    ref: Ref
    name: str
    mode: int
    options: dict[Any, Any]


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


class Sends:
    """The plain sends of one batch frame to processes of this node by PID, as columns:
    entry ``i`` is ``SendPID(from_[i], to[i], message[i], priority[i])``.

    What :meth:`LinkCodec.feed` returns for such a batch (every entry one value, see
    :class:`SendRun` for the others) when the codec was made with ``batch_events=True``
    (the network layer's, which delivers them without a message object each); otherwise
    the batch arrives as its SendPID messages.  Like them, it is
    only returned once the whole batch decoded and every entry was checked.
    """

    __slots__ = ("from_", "message", "priority", "to")

    def __init__(self, from_: list[PID], to: list[PID], message: tuple[Any, ...], priority: tuple[int, ...]) -> None:
        self.from_ = from_
        self.to = to
        self.message = message
        self.priority = priority

    def __len__(self) -> int:
        return len(self.to)

    def messages(self) -> list[SendPID]:
        """The sends as SendPID messages, in order."""
        return list(map(_SendPID, self.from_, self.to, self.message, self.priority))

    def __repr__(self) -> str:
        return f"Sends({len(self.to)} messages)"


class SendRun:
    """Consecutive plain sends of one batch frame from one process to one process of this
    node by PID, at one priority (a run, ``docs/wire.md`` 2.3): send ``i`` is
    ``SendPID(from_, to, message[i], priority)``.

    What :meth:`LinkCodec.feed` returns for each batch entry of more than one value when
    the codec was made with ``batch_events=True`` (the network layer's, which hands the run
    to the recipient's mailbox at once; the batch's entries of one value then arrive as
    SendPIDs); otherwise the run arrives as its SendPID messages.  Like them, it is only
    returned once the whole batch decoded and every entry was checked.
    """

    __slots__ = ("from_", "message", "priority", "to")

    def __init__(self, from_: PID, to: PID, message: list[Any], priority: int) -> None:
        self.from_ = from_
        self.to = to
        self.message = message
        self.priority = priority

    def __len__(self) -> int:
        return len(self.message)

    def messages(self) -> list[SendPID]:
        """The sends as SendPID messages, in order."""
        return list(map(_SendPID, repeat(self.from_), repeat(self.to), self.message, repeat(self.priority)))

    def __repr__(self) -> str:
        return f"SendRun({len(self.message)} messages)"


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
    if order is not None and (type(order) is not int or not 0 <= order <= 255):
        raise Incorrect(f"order must be an int 0..255, not {brief(order)}")
    items = list(cls._get(msg))
    wrong = _wrong(cls, items)
    if wrong:
        raise Incorrect(wrong)
    if order is None:  # (once the fields are checked: a sender is a PID)
        order = _default_order(msg)
    pack = (registry or edf.DEFAULT).encode
    for i, _ in cls._blobs:
        items[i] = pack(items[i])
    return _assemble(cls.__name__, cls.TYPE, order, pack(items), compression, threshold, max_message_size)


def _assemble(
    name: str, ftype: int, order: int, body: bytes, compression: bool, threshold: int, max_message_size: int
) -> bytes:
    """Header and body of one frame, compressed if asked and worth it; TooLarge over the peer's limit.

    The limit bounds a compressed frame's decompressed size too (the receiver refuses to
    expand past it, see FrameDecoder), so it is checked before compressing: a frame the
    peer would take for hostile and close the link over is refused here, to the sender."""
    if max_message_size and HEADER_SIZE + len(body) > max_message_size:
        raise TooLarge(f"{name} frame of {HEADER_SIZE + len(body)} bytes (before compression) exceeds the "
                       f"peer's limit of {max_message_size}")
    if compression and len(body) > threshold:
        packed = lz4.block.compress(body, store_size=False)
        if len(packed) + _ZHEAD.size < len(body):
            body = _ZHEAD.pack(COMPRESSION_LZ4, ftype, len(body)) + packed
            ftype = TYPE_COMPRESSED
    length = HEADER_SIZE + len(body)
    if max_message_size and length > max_message_size:
        raise TooLarge(f"{name} frame of {length} bytes exceeds the peer's limit of {max_message_size}")
    if length > _MAX_LENGTH:
        raise TooLarge(f"{name} frame of {length} bytes does not fit ENP's 32-bit length")
    return _HEADER.pack(MAGIC, VERSION, length, order, ftype) + body


class FrameDecoder:
    """Turns the byte stream of one connection into messages, whatever way it was split.

    :meth:`feed` takes the bytes just received (``bytes``, ``bytearray`` or a
    ``memoryview`` that is only valid during the call: complete frames are decoded in
    place, and only the tail of an unfinished frame is copied) and returns every message
    they completed, in order.  ``receive_data`` buffers bytes and ``next_event`` returns
    the next message (or :class:`Undecodable`), or None when it needs more bytes.  A frame
    longer than ``max_message_size`` (default :data:`DEFAULT_MAX_MESSAGE_SIZE`; 0: no limit
    beyond the 4 GiB length field) is a :class:`ProtocolError` as soon as its header
    arrives, so a huge length prefix never allocates anything; a compressed frame counts
    with its decompressed size.  Nothing a returned message holds refers to the bytes fed.

    A plain FrameDecoder reads the frames that carry every identifier in full (what
    :func:`encode` makes); the frames that only mean something on one link (compact
    headers, batches: see :class:`LinkCodec`) are unknown types to it.

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
        self._buf = bytearray()  # the start of a frame not complete yet (and receive_data's bytes)
        self._ready: list[Any] = []  # decoded, not yet returned by next_event
        self._failure: str | None = None
        # the frame types this decoder reads beyond FRAME_TYPES, by type byte
        self._handlers: dict[int, Callable[[memoryview, int, int, list[Any]], None]] = {}
        # what else a frame with every identifier in full must be (a LinkCodec's: that it
        # speaks only for the peer's node, to this one), or None: the frame is refused
        self._vet: Callable[[Any], str | None] | None = None

    @property
    def failed(self) -> bool:
        """True once a ProtocolError was raised: close the connection."""
        return self._failure is not None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as messages."""
        return len(self._buf)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes received from the peer (copied)."""
        if self._failure is not None:
            raise ProtocolError(self._failure)
        self._buf += data

    def next_event(self) -> Any:
        """The next complete message, or None if more bytes are needed; raises ProtocolError."""
        if self._failure is not None:
            raise ProtocolError(self._failure)
        if not self._ready and self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            self._checked(self._run, memoryview(data), self._ready)
        if self._ready:
            return self._ready.pop(0)
        return None

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """Every message completed by ``data``, in order.  On a ProtocolError, the messages
        decoded before the bad frame in this call are on the error's ``events`` attribute:
        deliver them, then close the connection."""
        if self._failure is not None:
            raise ProtocolError(self._failure)
        if self._ready:
            events = self._ready
            self._ready = []
        else:
            events = []
        view = data if data.__class__ is memoryview else memoryview(data)
        if view.itemsize != 1:  # a view of anything but bytes: read its bytes
            view = view.cast("B")
        try:
            if self._buf:
                view = self._complete(view, events)
            if view:
                self._run(view, events)
            return events
        except ProtocolError as e:
            why = str(e)
        except Exception as e:  # noqa: BLE001 - whatever the bytes, only ProtocolError leaves
            why = f"frame decoder: {brief_error(e)}"
        data = view = None  # type: ignore[assignment]  # the error's traceback holds this frame
        raise self._failed(why, events)

    def _checked(self, run: Callable[[memoryview, list[Any]], None], view: memoryview, events: list[Any]) -> None:
        try:
            run(view, events)
            return
        except ProtocolError as e:
            why = str(e)
        except Exception as e:  # noqa: BLE001 - whatever the bytes, only ProtocolError leaves
            why = f"frame decoder: {brief_error(e)}"
        view = None  # type: ignore[assignment]  # the error's traceback holds this frame
        raise self._failed(why, events)

    def _failed(self, why: str, events: list[Any]) -> ProtocolError:
        # The error is made fresh here, outside the except clause: the one raised deeper
        # holds frames whose locals are views of the caller's buffer, which must not
        # outlive the call.
        self._failure = why
        self._buf = bytearray()
        self._ready = []
        error = ProtocolError(why)
        error.events = events  # type: ignore[attr-defined]
        return error

    def _complete(self, view: memoryview, events: list[Any]) -> memoryview:
        """Add to the unfinished frame from ``view``; decode it once whole.  Returns what is left."""
        buf = self._buf
        if len(buf) < HEADER_SIZE:
            take = HEADER_SIZE - len(buf)
            buf += view[:take]
            view = view[take:]
            if len(buf) < HEADER_SIZE:
                return view[:0]
        length = self._checked_header(buf, 0)[0]
        take = length - len(buf)
        if take > 0:
            buf += view[:take]
            view = view[take:]
            if len(buf) < length:
                return view[:0]
        frame = memoryview(bytes(buf))  # a frame split over receives: copied once, whole
        buf.clear()
        self._run(frame, events)
        return view

    def _checked_header(self, data: Any, pos: int) -> tuple[int, int]:
        magic, version, length, _order, ftype = _HEADER.unpack_from(data, pos)
        if magic != MAGIC:
            self._fail(f"bad magic byte {magic} (expected {MAGIC})")
        if version != VERSION:
            self._fail(f"ENP version {version} (this node speaks {VERSION})")
        if length < HEADER_SIZE:
            self._fail(f"frame length {length} is shorter than its header")
        if self.max_message_size and length > self.max_message_size:
            self._fail(f"frame of {length} bytes exceeds the limit of {self.max_message_size}")
        return length, ftype

    def _run(self, view: memoryview, events: list[Any]) -> None:
        """Decode every whole frame of ``view`` in place; keep a copy of an unfinished one."""
        pos = 0
        end = len(view)
        unpack = _HEADER.unpack_from
        limit = self.max_message_size
        handlers = self._handlers
        while end - pos >= HEADER_SIZE:
            magic, version, length, _order, ftype = unpack(view, pos)
            if magic != MAGIC or version != VERSION or length < HEADER_SIZE or (limit and length > limit):
                self._checked_header(view, pos)
            if end - pos < length:
                break
            handler = handlers.get(ftype)
            if handler is None:
                self._decode(ftype, view[pos + HEADER_SIZE : pos + length], events)
            else:
                handler(view, pos + HEADER_SIZE, pos + length, events)
            pos += length
        if pos < end:
            self._buf += view[pos:]

    def _fail(self, why: str) -> NoReturn:
        raise ProtocolError(why) from None

    def _decode(self, ftype: int, body: memoryview, events: list[Any]) -> None:
        if ftype == TYPE_COMPRESSED:
            ftype, raw = self._decompress(body)
            body = memoryview(raw)
        cls = FRAME_TYPES.get(ftype)
        if cls is None:
            link = self._handlers.get(ftype)
            if link is None:
                self._fail(f"unknown frame type {ftype}")
            link(body, 0, len(body), events)
            return
        reg = self._reg
        try:
            items = reg.decode(body, f"{cls.__name__} frame")
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
                items[i] = reg.decode(value, cls._what)
            except DecodeError as e:
                error = DecodeError(str(e))
                items[i] = _UNDECODED
        wrong = _wrong(cls, items)
        if wrong:
            self._fail(wrong)
        msg = cls(*items) if error is None else cls(*[None if v is _UNDECODED else v for v in items])
        if self._vet is not None:
            wrong = self._vet(msg)
            if wrong:
                self._fail(wrong)
        events.append(msg if error is None else Undecodable(msg, error))

    def _decompress(self, body: memoryview) -> tuple[int, bytes]:
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


# --- one link: compact headers, a table of names, batches ------------------------------------

#: The frame types that only mean something on one link, between two nodes that agreed on
#: their names and creations in the handshake (see :class:`LinkCodec` and ``docs/wire.md``).
TYPE_BATCH = 110
TYPE_LINK_SEND_PID = 111
TYPE_LINK_SEND_PROCESS_ID = 112
TYPE_LINK_REQUEST_PID = 131
TYPE_LINK_REQUEST_PROCESS_ID = 132
TYPE_LINK_RESPONSE = 139
TYPE_LINK_ACK = 171
LINK_TYPES: dict[int, str] = {
    TYPE_BATCH: "Batch",
    TYPE_LINK_SEND_PID: "LinkSendPID",
    TYPE_LINK_SEND_PROCESS_ID: "LinkSendProcessID",
    TYPE_LINK_REQUEST_PID: "LinkRequestPID",
    TYPE_LINK_REQUEST_PROCESS_ID: "LinkRequestProcessID",
    TYPE_LINK_RESPONSE: "LinkResponse",
    TYPE_LINK_ACK: "LinkAck",
}

#: How many names (of the ProcessIDs sent to) one direction of a link keeps in its table.
NAME_TABLE_SIZE = 1024
#: A batch frame is closed when its entries reach this many bytes or ...
BATCH_BYTES = 64 * 1024
#: ... this many entries (or when the caller flushes).
BATCH_ENTRIES = 1000

_FLAG_PRIORITY = 0x03
_FLAG_IMPORTANT = 0x04
_FLAG_MARKED = 0x08  # the value may hold marked arrays (edf.has_marks); else none
_DEFINE = 0x8000  # a name reference with this bit set defines the entry; the name follows
_U64 = (1 << 64) - 1
_REF_IDS = struct.Struct(">QQQ")
_NAME_REF = struct.Struct(">H")
# header and fixed fields of each compact frame, packed at once
_H_SEND_PID = struct.Struct(">BBIBBQQB")  # header, from id, to id, flags
_H_SEND_PID_REF = struct.Struct(">BBIBBQQBQQQ")  # ... and the ref's ids (important)
_H_SEND_NAME = struct.Struct(">BBIBBQB")  # header, from id, flags
_H_SEND_NAME_REF = struct.Struct(">BBIBBQBQQQ")
_H_CALL = struct.Struct(">BBIBBQQBQQQ")  # header, from id, to id, flags, ref ids
_F_PID = struct.Struct(">QQB")
_F_PID_REF = struct.Struct(">QQBQQQ")
_F_NAME = struct.Struct(">QB")
_F_NAME_REF = struct.Struct(">QBQQQ")
_BATCH_HEAD = struct.Struct(">BBIBBBBI")  # header, flags, then a msgpack array 32 header (0xdd, count)
_ARRAY32 = 0xDD
_FIXARRAY = 0x90  # a msgpack array of up to 15 items: this + its count, one byte
_RUN_FIX = 12  # the most values an entry holds with a fixarray header (3 + 12 items); the
# hot path writes it (and _RUN_FIX - 1) as literals
_RUN_WIDE = b"\xdd\x00\x00\x00\x00"  # the array 32 header of a longer one, its count set at its end
_U32 = struct.Struct(">I")
_PID_CACHE = 4096
_ASKED_MAX = 4096  # refs of calls in flight a codec keeps (LinkCodec._asked)
_ONLY_LIST = {list}
_ONLY_FOUR = {4}
_ONLY_INT = {int}
_NEVER = 1 << 32  # a compression threshold no frame passes
# the message classes, typed for what the decorator made of them (a dataclass's __init__)
_SendPID: Any = SendPID
_SendProcessID: Any = SendProcessID
_RequestProcessID: Any = RequestProcessID
_Ack: Any = Ack
_trusted_new = object.__new__
# the call frames (a request, its response, an acknowledgement): type byte, names for errors
_CALL_TYPES = {RequestPID: TYPE_LINK_REQUEST_PID, Response: TYPE_LINK_RESPONSE, Ack: TYPE_LINK_ACK}
_CALL_NAMES = {RequestPID: "LinkRequestPID", Response: "LinkResponse", Ack: "LinkAck"}
_CALL_VALUES = {cls: f"{cls.__name__} value" for cls in _CALL_NAMES}
_H_CALL_SIZE = _H_CALL.size
_pack_call = _H_CALL.pack
_F_PID_REF_SIZE = _F_PID_REF.size
_unpack_call = _F_PID_REF.unpack_from
_set_field = object.__setattr__


#: Frames with every identifier in full, by what their fields must name on a link (see
#: ``LinkCodec._vet`` and docs/wire.md, 2.3): a sender on the peer's node ...
_FROM_PEER: frozenset[type] = frozenset({
    SendPID, SendProcessID, SendAlias, SendEvent, SendExit, RequestPID, RequestProcessID, RequestAlias, Response,
    ResponseError, Link, Unlink, Monitor, Demonitor, Spawn, ApplicationStart, Ack,
})
#: ... a recipient on this node ...
_TO_LOCAL: frozenset[type] = frozenset({
    SendPID, SendProcessID, SendAlias, SendExit, RequestPID, RequestProcessID, RequestAlias, Response,
    ResponseError, Ack, Result,
})
#: ... a ref the peer made (a send's, a request's) or this node made (the answer to its own)
_PEER_REF: frozenset[type] = frozenset({
    SendPID, SendProcessID, SendAlias, RequestPID, RequestProcessID, RequestAlias, Link, Unlink, Monitor,
    Demonitor, Spawn, ApplicationStart,
})
_LOCAL_REF: frozenset[type] = frozenset({Response, ResponseError, Ack, Result})
#: ... and the target whose end it tells of, the peer's
_OF_PEER: frozenset[type] = frozenset({TerminatePID, TerminateProcessID, TerminateAlias, TerminateEvent})


def speaks_for(msg: Any, sender: Atom, receiver: Atom) -> str | None:
    """What is wrong with the message ``msg`` (a frame with every identifier in full) on a
    link from node ``sender`` to node ``receiver``, or None.  A node speaks only for
    itself: a sender (``from_``), the ref of a send or a request, and the target a
    termination or an event is about are ``sender``'s; a recipient (``to``) and the ref
    of an answer (to the receiver's own call, important send or request) ``receiver``'s.
    A frame that names anything else would have the receiver act as if another node's
    process had sent it (an exit signal "from" one of its own processes, a reply to
    someone else's call, a message passed on to a third node).  The receiving
    :class:`LinkCodec` refuses it (``ProtocolError``: the link closes), the sending one
    raises ``Incorrect`` with the same text."""
    kind = type(msg)
    about = msg.target if kind in _OF_PEER else msg.event if kind is SendEvent else None
    if about is not None and about.node != sender:  # only a target's own node speaks of its end, its events
        return (f"{kind.__name__} about {about} of node {about.node.value!r}: node {sender.value!r} "
                "speaks only of its own processes and events")
    if kind in _FROM_PEER and msg.from_.node != sender:
        return (f"{kind.__name__} from {msg.from_} of node {msg.from_.node.value!r}: node {sender.value!r} "
                "speaks only for its own processes")
    if kind in _TO_LOCAL and msg.to.node != receiver:
        return (f"{kind.__name__} to {msg.to} of node {msg.to.node.value!r}: node {sender.value!r} speaks only "
                f"to {receiver.value!r} on this link (nothing is passed on to a third node)")
    ref = getattr(msg, "ref", None)
    if ref is not None:
        owner = sender if kind in _PEER_REF else receiver if kind in _LOCAL_REF else None
        if owner is not None and ref.node != owner:
            return (f"{kind.__name__} with a ref of node {ref.node.value!r}, not of {owner.value!r}: node "
                    f"{sender.value!r} speaks only of its own refs and answers only this node's")
    return None


def _call_message(
    kind: Any, from_: Any, to: Any, ref: Any, message: Any, priority: Any, important: Any
) -> RequestPID | Response | Ack:
    # the message send_call stands for, when it takes the slow way
    if kind is Ack:
        if priority != 0 or important is not False:
            raise Incorrect(f"an Ack has no priority and is not important (priority {brief(priority)}, "
                            f"important {brief(important)})")
        return _Ack(from_, to, ref, message)
    return kind(from_, to, ref, message, priority, important)


def _pid(node: Atom, ident: int, creation: int) -> PID:
    # a PID from checked parts (a link's names and creations, a u64 from the wire)
    pid = _trusted_new(PID)
    _set_field(pid, "node", node)
    _set_field(pid, "id", ident)
    _set_field(pid, "creation", creation)
    return pid


def _ref(node: Atom, creation: int, ids: tuple[int, int, int]) -> Ref:
    ref = _trusted_new(Ref)
    _set_field(ref, "node", node)
    _set_field(ref, "creation", creation)
    _set_field(ref, "id", ids)
    set_hash(ref, hash((node, ids)))  # as Ref.__hash__ makes it: the call's tables hash it
    return ref


class LinkCodec:
    """The codec of one link (one connection of a pool) between this node and a peer.

    Made once the handshake accepted the link, from the two nodes' names and creations
    (:meth:`for_link` takes the two ``NodeInfo``), it encodes what this node sends on the
    link and decodes what the peer sends.  Because both ends know the two names and
    creations, the frames for the hot path leave them out (``docs/wire.md``, 2.3):

    - a send to a PID carries only the two ids, the flags and, when important, the ref's
      ids; a call (:class:`RequestPID`), its :class:`Response` and the :class:`Ack` of an
      important message the same with the ref;
    - a send or a call to a ProcessID carries the name through a table of
      :data:`NAME_TABLE_SIZE` names per direction, defined inline the first time a name
      is used;
    - plain sends (to a PID or a ProcessID, not important, not compressed) are packed at
      once, when :meth:`send` is called (so an encoding error is raised to the sender
      there), into the open **batch** frame: one msgpack array of
      ``[from id, to, kind, value]`` entries, decoded on the other end with one unpack call
      and delivered only once the whole batch decoded.  A send to a PID from the sender,
      to the recipient and at the priority of the batch's last entry only adds its value
      to that entry (``[from id, to, kind, value, value, ...]``, a **run**): a process
      streaming to another costs one packed value per message.

    Everything else (and a send whose sender is not of this node, or whose ref is not this
    node's) travels as the frames :func:`encode` makes, with every identifier in full.

    **Sending.**  :meth:`send` (any ENP message), :meth:`send_pid` (the same for a
    :class:`SendPID`, without making one) and :meth:`send_call` (for a :class:`RequestPID`,
    :class:`Response` or :class:`Ack`, without making one) append the frame to the codec's
    output, in call order.  They return the bytes to write *now* once the output reached
    ``batch_bytes`` (64 KiB by default), else None; :meth:`flush` returns everything
    pending (b"" if nothing), closing the open batch: call it when the runner's batch
    ends.  The order of the calls is the order on the wire, so messages from one sender to
    one recipient keep their order as long as they take the same link.  Raised
    synchronously, with nothing appended: ``TooLarge`` for a frame above the peer's max
    message size (the link stays up), ``ProcessIncarnation`` for a PID or Alias of the
    peer's node from another creation than the peer's, ``Incorrect`` for a message that
    does not hold what its frame's spec says or a target on another node, ``EncodeError``
    for a value EDF cannot carry.  ``compress`` (an int) asks for lz4 when the frame's body
    is longer than that many bytes; such a send is never batched.  A batch closes at
    ``batch_bytes`` of entries (or the peer's limit) or ``batch_entries`` sends (default
    1000; 0 turns batching off, every send then a frame of its own).

    **Receiving.**  :meth:`feed` as :meth:`FrameDecoder.feed` (it accepts a ``memoryview``
    valid only during the call and copies only an unfinished frame), returning the
    messages with every identifier whole (a batch as its sends, in order; with
    ``batch_events=True``, a batch of plain sends to PIDs, one value each, as one
    :class:`Sends`, and in any other batch each run as one :class:`SendRun`; with
    ``call_events=True``, a compact RequestPID or Response at normal priority, not
    important, whose value decoded, as the tuple ``(RequestPID or Response, from_, to,
    ref, value)``).  Malformed bytes raise :class:`ProtocolError` (with ``events``) and the link must close; a value
    that does not decode arrives as :class:`Undecodable` with its routing fields.

    **Calls.**  The answer to a call this codec sent (a LinkResponse or LinkAck with the
    ids of a LinkRequestPID's ref) carries the very Ref object the call was sent with, and
    its ``to`` is the very PID the caller sent it from, as long as the codec holds them
    (at most 4096 of each), so the caller's tables find them by identity (else they are
    equal copies).  An answer may come back on another link of the pool than its request
    took: the codecs of one connection's links may share the table of calls in flight,
    given as ``asked`` (a dict the codecs fill and empty, one per connection of this
    node); the PIDs are the link's own.

    One codec serves one link, used from one thread at a time (the node's).
    """

    # slots: more attributes than an instance dict shares its keys for (30 in CPython 3.11),
    # past which every attribute access of the hot path takes the slow, generic way
    __slots__ = (
        "_asked", "_batch", "_batch_folded", "_batch_last", "_batch_marked", "_batch_n", "_by_index", "_checked_from",
        "_checked_to", "_decode", "_decoder", "_encode", "_limit", "_local_pids", "_names", "_next_name", "_out",
        "_pack_entry", "_peer_names", "_peer_pids", "_reg", "_room", "_run_base", "_run_from", "_run_limit",
        "_run_prio", "_run_start", "_run_to", "batch_bytes", "batch_entries", "batch_events", "call_events", "feed",
        "local",
        "local_creation", "peer", "peer_creation", "peer_max_message_size",
    )

    def __init__(
        self,
        local: str,
        local_creation: int,
        peer: str,
        peer_creation: int,
        *,
        registry: Registry | None = None,
        peer_max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        batch_bytes: int = BATCH_BYTES,
        batch_entries: int = BATCH_ENTRIES,
        batch_events: bool = False,
        asked: dict[tuple[int, int, int], Ref] | None = None,
        call_events: bool = False,
    ) -> None:
        for what, value in (("local", local), ("peer", peer)):
            if not isinstance(value, str) or not value:
                raise Incorrect(f"LinkCodec {what} must be a node name, not {brief(value)}")
        numbers: tuple[tuple[str, Any], ...] = (
            ("local_creation", local_creation),
            ("peer_creation", peer_creation),
            ("peer_max_message_size", peer_max_message_size),
            ("batch_bytes", batch_bytes),
            ("batch_entries", batch_entries),
        )
        for what, value in numbers:
            if type(value) is not int or (value < 0 and not what.endswith("creation")):
                raise Incorrect(f"LinkCodec {what} must be an int, not {brief(value)}")
        self.local = Atom(local)
        self.local_creation = local_creation
        self.peer = Atom(peer)
        self.peer_creation = peer_creation
        self.peer_max_message_size = peer_max_message_size
        self.batch_bytes = batch_bytes
        self.batch_entries = batch_entries
        self._batch_last = batch_entries - 1  # an entry at this count goes through _entry
        #: a batch of plain sends to PIDs arrives as one Sends event (True) or as its SendPIDs
        self.batch_events = bool(batch_events)
        #: a LinkRequestPID or LinkResponse at normal priority, not important, whose value
        #: decoded, arrives as the tuple ``(RequestPID or Response, from_, to, ref, value)``
        #: (True) or as its frame; fixed when the codec is made
        self.call_events = bool(call_events)
        # the most entry bytes one batch frame may hold (this side's setting, the peer's limit)
        self._room = batch_bytes
        if peer_max_message_size and peer_max_message_size - _BATCH_HEAD.size < batch_bytes:
            self._room = max(peer_max_message_size - _BATCH_HEAD.size, 0)
        self._reg = registry or edf.DEFAULT
        self._encode = self._reg._encoder()
        # raw (its errors are re-raised as _encode does): batch entries, and the values of the call frames
        self._pack_entry = self._reg._new_packer().pack
        self._checked_from: Any = None  # the last (sender, recipient) send_pid or send_call found fit
        self._checked_to: Any = None
        # the largest frame the fast paths append without the checks of _frame
        self._limit = min(peer_max_message_size or _MAX_LENGTH, _MAX_LENGTH)
        self._decode = self._reg._decoder()
        # what this node sends
        self._out = bytearray()
        self._batch = bytearray()
        self._batch_n = 0
        self._batch_marked = 0  # _FLAG_MARKED once an entry of the open batch may hold marked arrays
        # The open batch's last entry, when it is a plain send to a PID: the next send of the
        # same sender to the same recipient at the same priority adds its value to that entry
        # (a run).  The pair and priority (None: the last entry is anything else) and the
        # entry's offset.  ``_run_limit`` is the batch count from which a send that continues
        # the entry takes the slow way (_more): while the entry's header is a fixarray, its
        # first send's count + _RUN_FIX - 1 (so it is _batch_n + _RUN_FIX - 1 exactly when
        # the last entry holds one value, or is no such entry: nothing to patch), and
        # _NEVER once the header is an array 32 (then ``_run_base`` is that first count).
        self._run_from: Any = None
        self._run_to: Any = None
        self._run_prio = 0
        self._run_start = 0
        self._run_limit = _RUN_FIX - 1
        self._run_base = 0
        self._batch_folded = 0  # sends of the open batch that are values of a run after its first
        self._names: dict[str, int] = {}  # the names this side defined, by index
        self._by_index: list[str | None] = [None] * NAME_TABLE_SIZE
        self._next_name = 0
        # what the peer sends
        self._decoder = FrameDecoder(self._reg, max_message_size)
        self._decoder._handlers.update(
            {
                TYPE_BATCH: self._dec_batch,
                TYPE_LINK_SEND_PID: self._dec_send_pid,
                TYPE_LINK_SEND_PROCESS_ID: self._dec_send_name,
                TYPE_LINK_REQUEST_PID: self._call_decoder(RequestPID),
                TYPE_LINK_REQUEST_PROCESS_ID: self._dec_request_name,
                TYPE_LINK_RESPONSE: self._call_decoder(Response),
                TYPE_LINK_ACK: self._call_decoder(Ack),
            }
        )
        #: Every message completed by ``data``, in order (see the class and
        #: :meth:`FrameDecoder.feed`; it is that method of the link's decoder).
        self.feed: Callable[[bytes | bytearray | memoryview], list[Any]] = self._decoder.feed
        self._decoder._vet = self._vet
        self._peer_pids: dict[int, PID] = {}
        self._local_pids: dict[int, PID] = {}
        self._peer_names: list[ProcessID | None] = [None] * NAME_TABLE_SIZE
        # The refs of this node's calls sent in a LinkRequestPID, by their ids, until the
        # LinkResponse (or LinkAck) with those ids takes its ref from here: the very object
        # the caller keyed its call by (a dict finds it by identity, without Ref's __eq__,
        # which is Python code), not a copy to build.  It never holds a wrong ref: a ref of
        # this node and creation (send_call checks both) is equal to any ref with its ids
        # that the peer's answer could stand for.  At most _ASKED_MAX entries (a call never
        # answered leaves one): full, it is emptied, which costs only the next answers a
        # copy each.  The codecs of one connection's links may share it (``asked``): an
        # answer need not come back on the link its request took.
        if asked is not None and type(asked) is not dict:
            raise Incorrect(f"LinkCodec asked must be a dict, not {brief(asked)}")
        self._asked: dict[tuple[int, int, int], Ref] = {} if asked is None else asked

    @classmethod
    def for_link(cls, local: Any, peer: Any, registry: Registry | None = None, **options: Any) -> LinkCodec:
        """The codec for a link between ``local`` and ``peer``, two ``handshake.NodeInfo``
        (this node's own and ``Accepted.peer``): names, creations and both size limits."""
        return cls(
            local.name,
            local.creation,
            peer.name,
            peer.creation,
            registry=registry,
            peer_max_message_size=peer.max_message_size,
            max_message_size=local.max_message_size,
            **options,
        )

    # -- sending -------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Bytes encoded and not yet returned (the open batch included)."""
        return len(self._out) + len(self._batch) + (_BATCH_HEAD.size if self._batch_n else 0)

    def flush(self) -> bytearray:
        """Everything encoded so far, the open batch closed (empty if nothing is pending).

        The bytearray returned is the caller's: the codec starts a new one.
        """
        if self._batch_n:
            self._close_batch()
        out = self._out
        self._out = bytearray()
        return out

    def check_target(self, target: Any) -> None:
        """Raise ``ProcessIncarnation`` for a PID or Alias of the peer's node from another
        creation than the peer's (a process of an older incarnation of that node), and
        ``Incorrect`` for a PID, ProcessID or Alias of another node than the peer."""
        kind = type(target)
        if kind is PID or kind is Alias or kind is ProcessID:
            if target.node != self.peer:
                raise Incorrect(
                    f"{target} is on node {target.node.value!r}, not on this link's peer {self.peer.value!r}"
                )
            if kind is not ProcessID and target.creation != self.peer_creation:
                raise ProcessIncarnation(
                    f"{target} belongs to incarnation {target.creation} of {self.peer.value!r}, "
                    f"which is now {self.peer_creation}"
                )

    def send_pid(
        self,
        from_: PID,
        to: PID,
        message: Any,
        priority: int = 0,
        important: bool = False,
        ref: Ref | None = None,
        *,
        compress: int | None = None,
    ) -> bytearray | None:
        """Encode ``SendPID(from_, to, message, priority, important, ref)`` (see the class)."""
        # the hot path, written out: a plain send from a process of this node.  A sender
        # sends to one recipient many times over: the pair of the batch's last entry, or the
        # pair checked last for a send of another kind, is not checked again (identifiers are
        # immutable)
        run = from_ is self._run_from and to is self._run_to
        if not run and (from_ is not self._checked_from or to is not self._checked_to):
            if not self._compact_pair(from_, to):
                return self._full(_SendPID(from_, to, message, priority, important, ref), compress)
        if important is False and ref is None and compress is None and self.batch_entries:
            # a plain send: an entry of the open batch
            if priority.__class__ is not int or not 0 <= priority <= 2:
                return self._full(_SendPID(from_, to, message, priority, important, ref), compress)
            if run and priority == self._run_prio:  # send_plain's run path: the value alone
                return self.send_plain(from_, to, message, priority)
            try:
                entry = self._pack_entry([from_.id, to.id, priority, message])
            except Exception:  # noqa: BLE001
                # a value nested to the limit does not fit an entry (one level deeper):
                # it goes on its own; anything else raises its EncodeError from there
                return self.send_pid(from_, to, message, priority, compress=_NEVER)
            batch = self._batch
            n = self._batch_n
            size = len(batch)
            if n >= self._batch_last or size + len(entry) > self._room:
                return self._entry(entry)
            if n + 11 != self._run_limit:  # the last entry holds more than one value (11: _RUN_FIX - 1)
                self._end_run()
            if 0xC7 in entry and not self._batch_marked and has_marks(entry):  # memchr first: no call
                self._batch_marked = _FLAG_MARKED
            batch += entry  # in place: the same bytearray
            self._batch_n = n + 1
            self._run_start = size
            self._run_limit = n + 12  # _RUN_FIX
            self._run_from = from_
            self._run_to = to
            self._run_prio = priority
            if self._out and len(batch) + len(self._out) >= self.batch_bytes:
                return self.flush()
            return None
        self._checked_from = from_  # fit: not checked again for the next send of this kind
        self._checked_to = to
        if priority.__class__ is not int or not 0 <= priority <= 2 or important.__class__ is not bool:
            return self._full(_SendPID(from_, to, message, priority, important, ref), compress)
        if not important:
            if ref is not None:
                return self._full(_SendPID(from_, to, message, priority, important, ref), compress)
            value = self._encode(message)
            length = _H_SEND_PID.size + len(value)
            head = _H_SEND_PID.pack(
                MAGIC, VERSION, length, 1 + from_.id % 255, TYPE_LINK_SEND_PID,
                from_.id, to.id, priority | _FLAG_MARKED if has_marks(value) else priority,
            )  # fmt: skip
            if compress is not None or self._batch_n or length > self._limit:
                return self._frame("SendPID", head, value, compress)
            out = self._out
            out += head
            out += value
            return None if len(out) < self.batch_bytes else self.flush()
        if ref.__class__ is not Ref or ref.node != self.local or ref.creation != self.local_creation:
            return self._full(_SendPID(from_, to, message, priority, important, ref), compress)
        value = self._encode(message)
        flags = priority | _FLAG_IMPORTANT | (_FLAG_MARKED if has_marks(value) else 0)
        head = _H_SEND_PID_REF.pack(
            MAGIC, VERSION, _H_SEND_PID_REF.size + len(value), 1 + from_.id % 255, TYPE_LINK_SEND_PID,
            from_.id, to.id, flags, *ref.id,
        )  # fmt: skip
        return self._frame("SendPID", head, value, compress)

    def send_plain(self, from_: PID, to: PID, message: Any, priority: int) -> bytearray | None:
        """``send_pid(from_, to, message, priority)`` for a caller that knows ``priority`` is
        an int from 0 to 2 (the network's hot path): the same bytes, results and errors,
        with the checks of a plain send that cannot fail left out."""
        if from_ is self._run_from and to is self._run_to and priority == self._run_prio:
            # the stream of one sender to one recipient: only the value is packed, onto the
            # run the batch's last entry is (send_pid comes here for such a send too)
            try:
                value = self._pack_entry(message)
            except Exception:  # noqa: BLE001 - as send_pid: on its own, or its EncodeError from there
                return self.send_pid(from_, to, message, priority, compress=_NEVER)
            batch = self._batch
            n = self._batch_n
            if n >= self._run_limit or n >= self._batch_last or len(batch) + len(value) > self._room:
                return self._more(value)
            if 0xC7 in value and not self._batch_marked and has_marks(value):
                self._batch_marked = _FLAG_MARKED
            batch += value
            self._batch_n = n + 1
            if self._out and len(batch) + len(self._out) >= self.batch_bytes:
                return self.flush()
            return None
        return self.send_pid(from_, to, message, priority)

    def _more(self, value: bytes) -> bytearray | None:
        """The packed value of a send that continues the batch's last entry, when that entry's
        fixarray header is full or the batch is: the header becomes an array 32, or the value
        starts the next batch (in an entry of its own, which the stream's next sends continue)."""
        batch = self._batch
        n = self._batch_n
        start = self._run_start
        wide = self._run_limit == _NEVER
        base = self._run_base if wide else self._run_limit - _RUN_FIX + 1
        widen = not wide and n - base + 2 > _RUN_FIX  # the values the entry would hold
        if n < self.batch_entries and len(batch) + len(value) + (4 if widen else 0) <= self._room:
            if widen:
                batch[start : start + 1] = _RUN_WIDE  # once per run: later sends take the fast way
                self._run_base = base
                self._run_limit = _NEVER
            if 0xC7 in value and not self._batch_marked and has_marks(value):
                self._batch_marked = _FLAG_MARKED
            batch += value
            self._batch_n = n + 1
            if n + 1 >= self.batch_entries:
                self._close_batch()
            return self._ready()
        from_, to, priority = self._run_from, self._run_to, self._run_prio
        entry = b"\x94" + self._pack_entry([from_.id, to.id, priority])[1:] + value
        self._close_batch()
        if len(entry) > self._room or self.batch_entries == 1:
            return self._entry(entry)  # a batch of its own, or TooLarge
        if has_marks(value):
            self._batch_marked = _FLAG_MARKED
        batch += entry
        self._batch_n = 1
        self._run_start = 0
        self._run_limit = _RUN_FIX
        self._run_from, self._run_to, self._run_prio = from_, to, priority
        return self._ready()

    def _end_run(self) -> None:
        # the count of the last entry's array, now that its values are all in
        n = self._batch_n
        limit = self._run_limit
        if limit != _NEVER:  # a fixarray
            values = n - limit + _RUN_FIX
            self._batch[self._run_start] = _FIXARRAY + 3 + values
        else:
            values = n - self._run_base + 1
            _U32.pack_into(self._batch, self._run_start + 1, 3 + values)
        self._batch_folded += values - 1
        self._run_limit = n + _RUN_FIX - 1

    def send(self, msg: Any, *, compress: int | None = None) -> bytearray | None:
        """Encode any ENP message (see the class); a compact or batched frame where one applies."""
        kind = type(msg)
        if kind is SendPID:
            return self.send_pid(
                msg.from_, msg.to, msg.message, msg.priority, msg.important, msg.ref, compress=compress
            )
        if kind is RequestPID or kind is Response:
            return self.send_call(kind, msg.from_, msg.to, msg.ref, msg.message, msg.priority, msg.important, compress)
        if kind is Ack:
            return self.send_call(Ack, msg.from_, msg.to, msg.ref, msg.error, 0, False, compress)
        if (kind is SendProcessID or kind is RequestProcessID) and self._ours(msg.from_) and type(msg.to) is ProcessID:
            return self._send_name(msg, compress)
        return self._full(msg, compress)

    def _compact_pair(self, from_: Any, to: Any) -> bool:
        """Whether a frame from ``from_`` to ``to`` may name them by their ids alone (a PID of
        this node's run, a PID of the peer's, ids within 64 bits); ``to`` of another node
        or run raises what is wrong with it (``check_target``).  False: the full frame."""
        if (
            from_.__class__ is not PID
            or from_.creation != self.local_creation
            or from_.node != self.local
            or not 0 <= from_.id <= _U64
            or to.__class__ is not PID
            or not 0 <= to.id <= _U64
        ):
            return False
        if to.creation != self.peer_creation or to.node != self.peer:
            self.check_target(to)
        return True

    def _ours(self, pid: Any) -> bool:
        return type(pid) is PID and pid.node == self.local and pid.creation == self.local_creation and pid.id <= _U64

    def _send_name(self, msg: SendProcessID | RequestProcessID, compress: int | None) -> bytearray | None:
        priority, important, ref = msg.priority, msg.important, msg.ref
        request = type(msg) is RequestProcessID
        if (
            priority.__class__ is not int
            or not 0 <= priority <= 2
            or important.__class__ is not bool
            or (ref is not None and not important and not request)
            or ((important or request) and (type(ref) is not Ref or ref.node != self.local
                                            or ref.creation != self.local_creation))
        ):  # fmt: skip
            return self._full(msg, compress)
        to = msg.to
        self.check_target(to)
        index, define = self._name_ref(to.name)
        if not important and not request and compress is None and self.batch_entries:
            name_ref: Any = [index, str.__str__(to.name)] if define else index
            try:
                entry = self._encode([msg.from_.id, name_ref, 4 | priority, msg.message])
            except edf.EncodeError:
                entry = None  # too deep for an entry: on its own, which raises what is wrong
            if entry is not None:
                out = self._entry(entry)
                if define:  # only now: the entry that defines it is on its way
                    self._define(index, to.name)
                return out
        value = self._encode(msg.message)
        name = _NAME_REF.pack(index | _DEFINE) + _name_bytes(to.name) if define else _NAME_REF.pack(index)
        order = 1 + msg.from_.id % 255
        flags = priority | (_FLAG_MARKED if has_marks(value) else 0)
        if request:
            ftype = TYPE_LINK_REQUEST_PROCESS_ID
            if important:
                flags |= _FLAG_IMPORTANT
        else:
            ftype = TYPE_LINK_SEND_PROCESS_ID
        if important or request:
            size = _H_SEND_NAME_REF.size + len(name) + len(value)
            head = _H_SEND_NAME_REF.pack(
                MAGIC, VERSION, size, order, ftype, msg.from_.id, flags | _FLAG_IMPORTANT if important else flags,
                *ref.id,  # type: ignore[union-attr]
            )  # fmt: skip
        else:
            size = _H_SEND_NAME.size + len(name) + len(value)
            head = _H_SEND_NAME.pack(MAGIC, VERSION, size, order, ftype, msg.from_.id, flags)
        out = self._frame(type(msg).__name__, head + name, value, compress)
        if define:
            self._define(index, to.name)
        return out

    def send_call(
        self,
        kind: type[RequestPID] | type[Response] | type[Ack],
        from_: PID,
        to: PID,
        ref: Ref,
        message: Any,
        priority: int = 0,
        important: bool = False,
        compress: int | None = None,
    ) -> bytearray | None:
        """Encode ``kind(from_, to, ref, message, priority, important)`` without making it:
        ``kind`` is :class:`RequestPID` or :class:`Response`, or :class:`Ack` (``message``
        is then its ``error``, and ``priority`` and ``important`` must be 0 and False).
        The same bytes, results and errors as :meth:`send` of that message."""
        ftype = _CALL_TYPES.get(kind)
        if ftype is None:
            raise Incorrect(f"send_call sends a RequestPID, Response or Ack, not a {brief(kind)}")
        # The hot path of a remote call, written out: the call frames of processes of the two
        # nodes, not compressed, appended to the output as they are.  The pair of PIDs last
        # found fit (here or by send_pid: the same checks) is not checked again, since
        # identifiers are immutable and the link's names and creations fixed.
        if from_ is not self._checked_from or to is not self._checked_to:
            if not self._compact_pair(from_, to):
                return self._full(_call_message(kind, from_, to, ref, message, priority, important), compress)
            self._checked_from = from_
            self._checked_to = to
            # the caller's own PID object serves the answer's ``to`` (see _local_pid): the
            # network then finds its call's caller by identity, not with PID's __eq__
            local_pids = self._local_pids
            if len(local_pids) >= _PID_CACHE:
                local_pids.clear()
            local_pids[from_.id] = from_  # (in place of a copy made before)
        # a request's ref is made by the caller (this node); the ref of a response or an
        # acknowledgement by the peer (the caller, the sender of the important message)
        if ftype == TYPE_LINK_REQUEST_PID:
            node, creation = self.local, self.local_creation
        else:
            node, creation = self.peer, self.peer_creation
        if (
            ref.__class__ is not Ref
            or ref.creation != creation
            or ref.node != node
            or priority.__class__ is not int
            or not 0 <= priority <= 2
            or important.__class__ is not bool
        ):
            return self._full(_call_message(kind, from_, to, ref, message, priority, important), compress)
        if ftype == TYPE_LINK_ACK and (
            priority or important or (message is not None and not isinstance(message, BaseException))
        ):
            return self._full(_call_message(kind, from_, to, ref, message, priority, important), compress)
        try:
            value = self._pack_entry(message)
        except Exception as e:  # noqa: BLE001 - what _encode raises for it
            raise edf._encode_failure(message, e) from None
        flags = priority | _FLAG_IMPORTANT if important else priority
        if 0xC7 in value and has_marks(value):  # memchr first: no call for most values
            flags |= _FLAG_MARKED
        from_id = from_.id
        length = _H_CALL_SIZE + len(value)
        try:
            head = _pack_call(MAGIC, VERSION, length, 1 + from_id % 255, ftype, from_id, to.id, flags, *ref.id)
        except struct.error:  # a ref id outside 64 bits: encode says so
            return self._full(_call_message(kind, from_, to, ref, message, priority, important), compress)
        if ftype == TYPE_LINK_REQUEST_PID:
            asked = self._asked
            if len(asked) >= _ASKED_MAX:
                asked.clear()
            asked[ref.id] = ref
        if compress is None and length <= self._limit and not self._batch_n:
            out = self._out  # (no open batch: nothing to close, and it holds no bytes)
            out += head
            out += value
            return None if len(out) < self.batch_bytes else self.flush()
        return self._frame(kind.__name__, head, value, compress)

    def _full(self, msg: Any, compress: int | None) -> bytearray | None:
        """A frame with every identifier in full (what :func:`encode` makes)."""
        # every ``to`` is on the peer, and so is the target of a link or monitor (that of a
        # termination notice is on this node)
        kind = type(msg)
        target = msg.target if kind in (Link, Unlink, Monitor, Demonitor) else getattr(msg, "to", None)
        if type(target) in (PID, Alias, ProcessID):
            self.check_target(target)
        wrong = speaks_for(msg, self.local, self.peer)
        if wrong:
            raise Incorrect(wrong)
        frame = encode(
            msg,
            registry=self._reg,
            compression=compress is not None,
            threshold=compress or 0,
            max_message_size=self.peer_max_message_size,
        )
        if self._batch_n:
            self._close_batch()
        self._out += frame
        return self._ready()

    def _frame(self, name: str, head: bytes, value: bytes, compress: int | None) -> bytearray | None:
        """Append a compact frame (``head`` holds its header, ``value`` ends it)."""
        length = len(head) + len(value)
        if compress is not None and length - HEADER_SIZE > compress:
            frame = _assemble(
                name, head[7], head[6], head[HEADER_SIZE:] + value, True, compress, self.peer_max_message_size
            )
            if self._batch_n:
                self._close_batch()
            self._out += frame
            return self._ready()
        limit = self.peer_max_message_size
        if limit and length > limit:
            raise TooLarge(f"{name} frame of {length} bytes exceeds the peer's limit of {limit}")
        if length > _MAX_LENGTH:
            raise TooLarge(f"{name} frame of {length} bytes does not fit ENP's 32-bit length")
        if self._batch_n:
            self._close_batch()
        out = self._out
        out += head
        out += value
        return self._ready()

    def _entry(self, entry: bytes) -> bytearray | None:
        """Add one packed plain send to the open batch (or as a batch of its own, if it is too big for one)."""
        if self._batch_n + _RUN_FIX - 1 != self._run_limit:
            self._end_run()
        self._run_from = None
        room = self._room
        size = len(entry)
        if size > room:
            # too big to share a frame: a batch of one, checked against the peer's limit
            length = _BATCH_HEAD.size + size
            limit = self.peer_max_message_size
            if limit and length > limit:
                raise TooLarge(f"SendPID frame of {length} bytes exceeds the peer's limit of {limit}")
            if length > _MAX_LENGTH:
                raise TooLarge(f"SendPID frame of {length} bytes does not fit ENP's 32-bit length")
            if self._batch_n:
                self._close_batch()
            flags = _FLAG_MARKED if has_marks(entry) else 0
            self._out += _BATCH_HEAD.pack(MAGIC, VERSION, length, 0, TYPE_BATCH, flags, _ARRAY32, 1)
            self._out += entry
        else:
            if self._batch_n and len(self._batch) + size > room:
                self._close_batch()
            if has_marks(entry):
                self._batch_marked = _FLAG_MARKED
            self._batch += entry
            self._batch_n += 1
            self._run_limit = self._batch_n + _RUN_FIX - 1
            if self._batch_n >= self.batch_entries:
                self._close_batch()
        return self._ready()

    def _close_batch(self) -> None:
        if self._batch_n + _RUN_FIX - 1 != self._run_limit:
            self._end_run()
        self._run_from = None
        batch = self._batch
        self._out += _BATCH_HEAD.pack(
            MAGIC, VERSION, _BATCH_HEAD.size + len(batch), 0, TYPE_BATCH, self._batch_marked, _ARRAY32,
            self._batch_n - self._batch_folded,
        )  # fmt: skip
        self._batch_marked = 0
        self._batch_folded = 0
        self._out += batch
        batch.clear()
        self._batch_n = 0
        self._run_limit = _RUN_FIX - 1

    def _ready(self) -> bytearray | None:
        if len(self._out) + len(self._batch) < self.batch_bytes:
            return None
        return self.flush()

    def _name_ref(self, name: str) -> tuple[int, bool]:
        """The table index of ``name`` and whether this use must define it."""
        index = self._names.get(name)
        if index is not None:
            return index, False
        return self._next_name % NAME_TABLE_SIZE, True

    def _define(self, index: int, name: str) -> None:
        # committed only once the frame defining it was appended: a send that failed to
        # encode must not leave the table believing the peer knows the name
        old = self._by_index[index]
        if old is not None:
            del self._names[old]
        self._by_index[index] = name
        self._names[name] = index
        self._next_name += 1

    # -- receiving -----------------------------------------------------------------------------

    @property
    def failed(self) -> bool:
        """True once :meth:`feed` raised a ProtocolError: close the link."""
        return self._decoder.failed

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as messages."""
        return self._decoder.buffered

    def _vet(self, msg: Any) -> str | None:
        """What is wrong with a frame with every identifier in full that the peer sent on
        this link (see :func:`speaks_for`), or None: the decoder refuses it."""
        return speaks_for(msg, self.peer, self.local)

    def _peer_pid(self, ident: int) -> PID:
        pid = self._peer_pids.get(ident)
        if pid is None:
            if len(self._peer_pids) >= _PID_CACHE:
                self._peer_pids.clear()
            pid = self._peer_pids[ident] = _pid(self.peer, ident, self.peer_creation)
        return pid

    def _local_pid(self, ident: int) -> PID:
        # The PIDs of this node by id: made here, or the very objects this node's processes
        # sent calls from (send_call checked them: this node's name and creation, a u64),
        # equal to what would be made; at most _PID_CACHE, emptied when full.
        pid = self._local_pids.get(ident)
        if pid is None:
            if len(self._local_pids) >= _PID_CACHE:
                self._local_pids.clear()
            pid = self._local_pids[ident] = _pid(self.local, ident, self.local_creation)
        return pid

    def _value(self, data: Any, what: str, marked: int = _FLAG_MARKED) -> tuple[Any, DecodeError | None]:
        try:
            return self._decode(data, what, marked), None
        except DecodeError as e:
            return None, DecodeError(str(e))  # fresh: no traceback holding the caller's buffer

    @staticmethod
    def _flags(flags: int, what: str) -> int:
        if flags & ~(_FLAG_PRIORITY | _FLAG_IMPORTANT | _FLAG_MARKED) or flags & _FLAG_PRIORITY == 3:
            raise ProtocolError(f"{what} flags {flags:#04x}: unknown bits or priority 3")
        return flags & _FLAG_PRIORITY

    def _dec_send_pid(self, view: memoryview, start: int, end: int, events: list[Any]) -> None:
        if end - start < _F_PID.size:
            raise ProtocolError("LinkSendPID frame shorter than its fields")
        from_id, to_id, flags = _F_PID.unpack_from(view, start)
        ref = None
        priority = 0
        if flags:
            priority = self._flags(flags, "LinkSendPID")
            if flags & _FLAG_IMPORTANT:
                if end - start < _F_PID_REF.size:
                    raise ProtocolError("LinkSendPID frame shorter than its fields")
                ref = _ref(self.peer, self.peer_creation, _REF_IDS.unpack_from(view, start + _F_PID.size))
                start += _F_PID_REF.size - _F_PID.size
        from_ = self._peer_pids.get(from_id) or self._peer_pid(from_id)
        to = self._local_pids.get(to_id) or self._local_pid(to_id)
        try:
            value = self._decode(view[start + _F_PID.size : end], "SendPID value", flags & _FLAG_MARKED)
        except DecodeError as e:
            events.append(Undecodable(_SendPID(from_, to, None, priority, ref is not None, ref), DecodeError(str(e))))
            return
        events.append(_SendPID(from_, to, value, priority, ref is not None, ref))

    def _dec_send_name(self, view: memoryview, start: int, end: int, events: list[Any]) -> None:
        self._dec_name(view[start:end], events, SendProcessID)

    def _dec_request_name(self, view: memoryview, start: int, end: int, events: list[Any]) -> None:
        self._dec_name(view[start:end], events, RequestProcessID)

    def _dec_name(self, body: memoryview, events: list[Any], cls: Any) -> None:
        request = cls is RequestProcessID
        what = "LinkRequestProcessID" if request else "LinkSendProcessID"
        if len(body) < _F_NAME.size:
            raise ProtocolError(f"{what} frame shorter than its fields")
        from_id, flags = _F_NAME.unpack_from(body)
        priority = self._flags(flags, what)
        ref = None
        start = _F_NAME.size
        if request or flags & _FLAG_IMPORTANT:
            if len(body) < _F_NAME_REF.size:
                raise ProtocolError(f"{what} frame shorter than its fields")
            ref = _ref(self.peer, self.peer_creation, _REF_IDS.unpack_from(body, start))
            start = _F_NAME_REF.size
        if len(body) < start + 2:
            raise ProtocolError(f"{what} frame shorter than its name")
        (index,) = _NAME_REF.unpack_from(body, start)
        start += 2
        if index & _DEFINE:
            index &= ~_DEFINE
            if start >= len(body) or start + 1 + body[start] > len(body):
                raise ProtocolError(f"{what} frame shorter than its name")
            size = body[start]
            to = self._define_peer_name(index, bytes(body[start + 1 : start + 1 + size]))
            start += 1 + size
        else:
            to = self._peer_name(index)
        value, error = self._value(body[start:], f"{cls.__name__} value", flags & _FLAG_MARKED)
        important = bool(flags & _FLAG_IMPORTANT)
        if request:
            msg = _RequestProcessID(self._peer_pid(from_id), to, ref, value, priority, important)
        else:
            msg = _SendProcessID(self._peer_pid(from_id), to, value, priority, important, ref)
        events.append(msg if error is None else Undecodable(msg, error))

    def _define_peer_name(self, index: int, raw: bytes | str) -> ProcessID:
        if not 0 <= index < NAME_TABLE_SIZE:
            raise ProtocolError(f"name definition at index {index}, past the table of {NAME_TABLE_SIZE}")
        if type(raw) is bytes:
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError("invalid UTF-8 in a name definition") from None
        if type(raw) is not str or len(raw.encode("utf-8")) > 255:
            raise ProtocolError(f"a name definition must be a str of at most 255 bytes, not {brief(raw)}")
        pid = _trusted_new(ProcessID)
        _set_field(pid, "name", Atom(raw))
        _set_field(pid, "node", self.local)
        self._peer_names[index] = pid
        return pid

    def _peer_name(self, index: int) -> ProcessID:
        if not 0 <= index < NAME_TABLE_SIZE:
            raise ProtocolError(f"name reference {index} past the table of {NAME_TABLE_SIZE}")
        to = self._peer_names[index]
        if to is None:
            raise ProtocolError(f"name reference {index} to an entry never defined")
        return to

    def _call_decoder(self, cls: Any) -> Callable[[memoryview, int, int, list[Any]], None]:
        """The decoder of the call frames of type ``cls`` (RequestPID, Response or Ack): a
        closure over the class, so that the frame loop calls it directly (the hot path of a
        remote call: a method taking the class would cost a call more per frame)."""
        codec = self
        what = _CALL_NAMES[cls]
        value_what = _CALL_VALUES[cls]
        request = cls is RequestPID
        # the network's form of the common call frame (see call_events): a tuple costs a
        # fraction of a frame object, whose dataclass __init__ is Python code
        as_tuple = codec.call_events and cls is not Ack

        def dec_call(view: memoryview, start: int, end: int, events: list[Any]) -> None:
            # a call frame in ``view[start:end]`` (the body after the header)
            if end - start < _F_PID_REF_SIZE:
                raise ProtocolError(f"{what} frame shorter than its fields")
            from_id, to_id, flags, a, b, c = _unpack_call(view, start)
            if flags & ~(_FLAG_PRIORITY | _FLAG_IMPORTANT | _FLAG_MARKED) or flags & _FLAG_PRIORITY == 3:
                codec._flags(flags, what)  # which raises what is wrong
            # the ref: a request's is the peer's; the answer
            # to a call, or to an important message, of this node carries this node's own
            ids = (a, b, c)
            ref = None if request else codec._asked.pop(ids, None)  # (see __init__)
            if ref is None:
                if request:
                    ref = _ref(codec.peer, codec.peer_creation, ids)
                else:
                    ref = _ref(codec.local, codec.local_creation, ids)
            error = None
            try:
                value = codec._decode(view[start + _F_PID_REF_SIZE : end], value_what, flags & _FLAG_MARKED)
            except DecodeError as e:
                value, error = None, DecodeError(str(e))  # fresh: no traceback holding the caller's buffer
            from_ = codec._peer_pids.get(from_id) or codec._peer_pid(from_id)
            to = codec._local_pids.get(to_id) or codec._local_pid(to_id)
            msg: Any
            if as_tuple and error is None and not flags & (_FLAG_PRIORITY | _FLAG_IMPORTANT):
                events.append((cls, from_, to, ref, value))
                return
            if cls is Ack:
                if flags & (_FLAG_PRIORITY | _FLAG_IMPORTANT):
                    raise ProtocolError(f"LinkAck flags {flags:#04x}: an acknowledgement has no priority")
                msg = _Ack(from_, to, ref, value)
                if error is None and value is not None and not isinstance(value, BaseException):
                    raise ProtocolError(f"Ack.error must be an error or nil, not {brief(value)}")
            else:
                msg = cls(from_, to, ref, value, flags & _FLAG_PRIORITY, flags & _FLAG_IMPORTANT != 0)
            events.append(msg if error is None else Undecodable(msg, error))

        return dec_call

    def _dec_batch(self, view: memoryview, start: int, end: int, events: list[Any]) -> None:
        # One unpack call for the whole batch; if it fails (a value that does not decode,
        # or a malformed batch), the entries are read one by one to tell the two apart.
        if start == end:
            raise ProtocolError("batch frame without its flags")
        flags = view[start]
        if flags & ~_FLAG_MARKED:
            raise ProtocolError(f"batch flags {flags:#04x}: unknown bits")
        body = view[start + 1 : end]
        try:
            entries = self._decode(body, "batch", flags)
        except DecodeError:
            entries = None
        if entries.__class__ is not list or not self._batch_entries(entries, events):
            self._batch_slowly(body, events)

    def _batch_entries(self, entries: list[Any], events: list[Any]) -> bool:
        """The sends of a decoded batch, appended to ``events``; False if an entry is malformed.

        With ``batch_events``, the common batch (plain sends to PIDs: every entry four
        items, three of them ints, the kind a priority) is checked column by column with
        C-level passes and returned as one :class:`Sends`: no Python code per entry.  Any
        other batch (one with a run among its entries, for one), and every batch without
        ``batch_events``, goes entry by entry (which makes the SendPIDs faster than the
        columns and then a SendPID each would; a run is checked once, see _batch_run)."""
        if (
            not self.batch_events
            or set(map(type, entries)) != _ONLY_LIST
            or set(map(len, entries)) != _ONLY_FOUR
        ):
            return self._batch_each(entries, events)
        froms, tos, kinds, values = zip(*entries)
        if (
            set(map(type, froms)) != _ONLY_INT or set(map(type, tos)) != _ONLY_INT
            or set(map(type, kinds)) != _ONLY_INT or min(kinds) < 0 or max(kinds) > 2
        ):  # fmt: skip
            return self._batch_each(entries, events)
        # the PID of each id from the caches (which only ever hold ids in range); a miss
        # is checked and cached, then the column is read again
        from_pids = list(map(self._peer_pids.get, froms))
        if not all(from_pids):
            for ident in dict.fromkeys(froms):  # each id once, in order
                if not 0 <= ident <= _U64:
                    return False
                self._peer_pid(ident)
            from_pids = list(map(self._peer_pids.get, froms))
            if not all(from_pids):  # more distinct ids than the cache holds
                return self._batch_each(entries, events)
        to_pids = list(map(self._local_pids.get, tos))
        if not all(to_pids):
            for ident in dict.fromkeys(tos):
                if not 0 <= ident <= _U64:
                    return False
                self._local_pid(ident)
            to_pids = list(map(self._local_pids.get, tos))
            if not all(to_pids):  # more distinct ids than the cache holds
                return self._batch_each(entries, events)
        events.append(Sends(from_pids, to_pids, values, kinds))  # type: ignore[arg-type]  # all() held
        return True

    def _batch_each(self, entries: list[Any], events: list[Any]) -> bool:
        """:meth:`_batch_entries` for a batch of any entries, one by one."""
        out: list[Any] = []
        append = out.append
        peer_pids = self._peer_pids
        local_pids = self._local_pids
        for entry in entries:
            if entry.__class__ is not list:
                return False
            if len(entry) != 4:
                if len(entry) < 4 or not self._batch_run(entry, out):
                    return False
                continue
            from_id, to, kind, value = entry
            if from_id.__class__ is not int:
                return False
            from_ = peer_pids.get(from_id)
            if from_ is None:
                if not 0 <= from_id <= _U64:
                    return False
                from_ = self._peer_pid(from_id)
            if kind.__class__ is int and 0 <= kind <= 2:
                if to.__class__ is not int:
                    return False
                to_pid = local_pids.get(to)
                if to_pid is None:
                    if not 0 <= to <= _U64:
                        return False
                    to_pid = self._local_pid(to)
                append(_SendPID(from_, to_pid, value, kind, False, None))
            else:
                target = self._batch_target(to, kind)
                if target is None:
                    return False
                append(_SendProcessID(from_, target, value, kind & 3, False, None))
        events += out
        return True

    def _batch_run(self, entry: list[Any], out: list[Any]) -> bool:
        """The sends of an entry of more than one value (a run), appended to ``out``; False if malformed."""
        from_id, to, kind = entry[0], entry[1], entry[2]
        if (
            from_id.__class__ is not int or to.__class__ is not int or kind.__class__ is not int
            or not 0 <= kind <= 2 or not 0 <= from_id <= _U64 or not 0 <= to <= _U64
        ):  # fmt: skip
            return False
        from_ = self._peer_pids.get(from_id) or self._peer_pid(from_id)
        to_pid = self._local_pids.get(to) or self._local_pid(to)
        if self.batch_events:
            out.append(SendRun(from_, to_pid, entry[3:], kind))
        else:
            out += map(_SendPID, repeat(from_), repeat(to_pid), entry[3:], repeat(kind))
        return True

    def _batch_target(self, to: Any, kind: Any) -> ProcessID | None:
        if type(kind) is not int or not 4 <= kind <= 6:
            return None
        if type(to) is int:
            if not 0 <= to < NAME_TABLE_SIZE or self._peer_names[to] is None:
                return None
            return self._peer_names[to]
        if type(to) is list and len(to) == 2 and type(to[0]) is int and type(to[1]) is str:
            return self._define_peer_name(to[0], to[1])
        return None

    def _batch_slowly(self, body: memoryview, events: list[Any]) -> None:
        """Read a batch entry by entry: a value that does not decode spares the others."""
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(body), 1))
        data = bytes(body)
        unpacker.feed(data)
        out: list[Any] = []
        try:
            count = unpacker.read_array_header()
            for _ in range(count):
                items = unpacker.read_array_header()
                if items < 4:
                    raise ProtocolError("a batch entry must be [from id, to, kind, value, ...]")
                from_id, to, kind = unpacker.unpack(), unpacker.unpack(), unpacker.unpack()
                if items > 4:
                    self._run_slowly(unpacker, data, from_id, to, kind, items - 3, out)
                    continue
                start = unpacker.tell()
                unpacker.skip()
                value, error = self._value(data[start : unpacker.tell()], "batch value")
                if type(from_id) is not int or not 0 <= from_id <= _U64:
                    raise ProtocolError(f"a batch entry's from id must be a u64, not {brief(from_id)}")
                msg: Any
                if kind == 0 or kind == 1 or kind == 2:
                    if type(to) is not int or not 0 <= to <= _U64 or type(kind) is not int:
                        raise ProtocolError(f"a batch entry to a PID needs a u64 id, not {brief(to)}")
                    msg = _SendPID(self._peer_pid(from_id), self._local_pid(to), value, kind, False, None)
                else:
                    target = self._batch_target(to, kind)
                    if target is None:
                        raise ProtocolError(f"a batch entry of kind {brief(kind)} to {brief(to)}: no such target")
                    msg = _SendProcessID(self._peer_pid(from_id), target, value, kind & 3, False, None)
                out.append(msg if error is None else Undecodable(msg, error))
            if unpacker.tell() != len(data):
                raise ProtocolError("extra bytes after the batch's entries")
            events += out  # only a whole batch is delivered
        except ProtocolError:
            raise
        except Exception as e:  # noqa: BLE001 - msgpack's errors for a malformed batch
            raise ProtocolError(f"malformed batch: {brief_error(e)}") from None


    def _run_slowly(
        self, unpacker: Any, data: bytes, from_id: Any, to: Any, kind: Any, count: int, out: list[Any]
    ) -> None:
        # an entry of more than one value (a run) read value by value (see _batch_slowly)
        if type(from_id) is not int or not 0 <= from_id <= _U64:
            raise ProtocolError(f"a batch entry's from id must be a u64, not {brief(from_id)}")
        if type(kind) is not int or not 0 <= kind <= 2:
            raise ProtocolError(f"a batch entry of more than one value must be of kind 0..2, not {brief(kind)}")
        if type(to) is not int or not 0 <= to <= _U64:
            raise ProtocolError(f"a batch entry to a PID needs a u64 id, not {brief(to)}")
        from_, to_pid, priority = self._peer_pid(from_id), self._local_pid(to), kind
        for _ in range(count):
            start = unpacker.tell()
            unpacker.skip()
            value, error = self._value(data[start : unpacker.tell()], "batch value")
            msg = _SendPID(from_, to_pid, value, priority, False, None)
            out.append(msg if error is None else Undecodable(msg, error))


def _name_bytes(name: str) -> bytes:
    raw = str.__str__(name).encode("utf-8")
    return bytes((len(raw),)) + raw

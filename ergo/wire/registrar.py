"""The registrar protocol: how a node registers its routes with its host's registrar and how
others resolve a node's name to a route.

Registration (and unregistration) runs over a TCP connection that stays open while the
node is registered, so its messages go through the streaming :class:`MessageDecoder`;
a resolve is one UDP datagram each way, read with :func:`decode_datagram`.  Every message
is a 5-byte header (magic, version, type, length) and a msgpack array of plain values; it
carries no identifiers or user types, so it needs no EDF registry.  Bad bytes raise
:class:`RegistrarProtocolError`; a refusal (a name already registered: ``Taken``, an
unknown name: ``NoRoute``) is a reply carrying the error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, dataclass_transform

import msgpack

from ergo.gen.errors import ERRORS, ErgoError, Incorrect, Malformed
from ergo.gen.ids import node_name_problem

from ._brief import brief, brief_error
from .edf import RemoteError

__all__ = [
    "DEFAULT_PORT",
    "MAGIC",
    "MAX_BODY",
    "VERSION",
    "MessageDecoder",
    "Register",
    "RegisterReply",
    "RegistrarProtocolError",
    "Resolve",
    "ResolveReply",
    "Route",
    "Unregister",
    "UnregisterReply",
    "decode_datagram",
    "encode",
]

MAGIC = 82  # "R"
VERSION = 1
DEFAULT_PORT = 4499
MAX_BODY = 65535  # fits one UDP datagram and the 16-bit length

_HEADER = struct.Struct(">BBBH")  # magic, version, type, body length


class RegistrarProtocolError(Malformed):
    """Bytes that are not a registrar message; close the registration connection (or drop the datagram)."""

    default = "malformed registrar message"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a node accepts connections: host, port, TLS, and the protocol versions it speaks."""

    host: str
    port: int
    tls: bool = False
    handshake_version: int = 1
    proto_version: int = 1

    def __post_init__(self) -> None:
        problem = _route_problem([self.host, self.port, self.tls, self.handshake_version, self.proto_version])
        if problem:
            raise Incorrect(f"Route: {problem}")


def _route_problem(item: Any) -> str | None:
    if type(item) is not list or len(item) != 5:
        return "a route is [host, port, tls, handshake_version, proto_version]"
    host, port, tls, hs, proto = item
    if not isinstance(host, str) or not host or len(host) > 255:
        return f"host must be a non-empty string of at most 255 characters, not {brief(host)}"
    if type(port) is not int or not 0 < port < 65536:
        return f"port must be an int in 1..65535, not {brief(port)}"
    if type(tls) is not bool:
        return f"tls must be a bool, not {brief(tls)}"
    for v in (hs, proto):
        if type(v) is not int or not 0 <= v <= 255:
            return f"a version must be an int in 0..255, not {brief(v)}"
    return None


# Field kinds: "node" is a node name, "routes" a list of routes, "error" None or an error.


class _Message:
    __slots__ = ()
    TYPE: ClassVar[int]
    _SPEC: ClassVar[tuple[str, ...]]


_TYPES: dict[int, type[Any]] = {}  # the classes _message made, with TYPE and _SPEC


@dataclass_transform(frozen_default=True)  # so that type checkers know the messages' fields
def _message(type_code: int, *spec: str) -> Callable[[Any], Any]:
    def wrap(cls: Any) -> Any:
        cls = dataclass(frozen=True, slots=True)(cls)
        cls.TYPE = type_code
        cls._SPEC = spec
        _TYPES[type_code] = cls
        return cls

    return wrap


@_message(44, "node", "routes")
class Register(_Message):
    """Node ``node`` can be reached at ``routes``; answered by :class:`RegisterReply`."""

    node: str
    routes: tuple[Route, ...]


@_message(45, "error")
class RegisterReply(_Message):
    """``error`` is None when registered, ``Taken`` when the name is already registered."""

    error: ErgoError | None = None


@_message(48, "node")
class Unregister(_Message):
    """Remove ``node``'s registration (closing the connection does the same)."""

    node: str


@_message(49, "error")
class UnregisterReply(_Message):
    """``error`` is None when removed, ``NameUnknown`` when ``node`` was not registered."""

    error: ErgoError | None = None


@_message(46, "node")
class Resolve(_Message):
    """Where is ``node``?  Sent as one UDP datagram; answered by :class:`ResolveReply`."""

    node: str


@_message(47, "routes", "error")
class ResolveReply(_Message):
    """The routes of the node asked for; ``error`` is ``NoRoute`` when it is not registered."""

    routes: tuple[Route, ...] = ()
    error: ErgoError | None = None


def encode(msg: Any) -> bytes:
    """One registrar message as bytes (a whole UDP datagram, or a piece of the TCP stream)."""
    cls = type(msg)
    if _TYPES.get(getattr(cls, "TYPE", None)) is not cls:  # type: ignore[arg-type]
        raise Incorrect(f"{cls.__qualname__} is not a registrar message")
    items: list[Any] = []
    for kind, value in zip(cls._SPEC, (getattr(msg, f) for f in cls.__slots__)):
        if kind == "node":
            problem = node_name_problem(value)
            if problem:
                raise Incorrect(problem)
            items.append(str.__str__(value))
        elif kind == "routes":
            items.append([[r.host, r.port, r.tls, r.handshake_version, r.proto_version] for r in value])
        elif value is None:
            items.append(None)
        else:
            items.append([type(value).__name__, str(value)])
    body = msgpack.packb(items)
    if len(body) > MAX_BODY:
        raise Incorrect(f"registrar message of {len(body)} bytes (max {MAX_BODY})")
    return _HEADER.pack(MAGIC, VERSION, cls.TYPE, len(body)) + body


def _decode_body(mtype: int, raw: bytes) -> Any:
    cls = _TYPES.get(mtype)
    if cls is None:
        raise RegistrarProtocolError(f"unknown registrar message type {mtype}")
    try:
        items = msgpack.unpackb(raw)
    except Exception:  # noqa: BLE001 - any garbage is the same error
        raise RegistrarProtocolError(f"{cls.__name__} body is not msgpack") from None
    spec = cls._SPEC
    if type(items) is not list or len(items) != len(spec):
        raise RegistrarProtocolError(f"{cls.__name__} must be an array of {len(spec)} fields")
    values: list[Any] = []
    for kind, item in zip(spec, items):
        if kind == "node":
            problem = node_name_problem(item)
            if problem:
                raise RegistrarProtocolError(f"{cls.__name__}: {problem}")
            values.append(item)
        elif kind == "routes":
            if type(item) is not list:
                raise RegistrarProtocolError(f"{cls.__name__}: routes must be an array")
            for route in item:
                problem = _route_problem(route)
                if problem:
                    raise RegistrarProtocolError(f"{cls.__name__}: {problem}")
            values.append(tuple(Route(*route) for route in item))
        elif item is None:
            values.append(None)
        else:
            if type(item) is not list or len(item) != 2 or not all(type(x) is str for x in item):
                raise RegistrarProtocolError(f"{cls.__name__}: an error must be [name, text]")
            err_cls = ERRORS.get(item[0])
            values.append(err_cls(item[1]) if err_cls is not None else RemoteError(item[0], item[1]))
    return cls(*values)


def decode_datagram(data: bytes | bytearray | memoryview) -> Any:
    """The one message in a UDP datagram; anything else (short, long, garbage) raises
    :class:`RegistrarProtocolError`, and nothing else ever leaves."""
    data = bytes(data)
    mtype, length = _check_header(data)
    if len(data) != _HEADER.size + length:
        raise RegistrarProtocolError(
            f"datagram of {len(data)} bytes, its header says {_HEADER.size + length}"
        )
    return _decode_body_safely(mtype, data[_HEADER.size :])


def _decode_body_safely(mtype: int, raw: bytes) -> Any:
    try:
        return _decode_body(mtype, raw)
    except RegistrarProtocolError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the bytes, only the protocol error leaves
        raise RegistrarProtocolError(f"registrar message of type {mtype}: {brief_error(e)}") from None


def _check_header(data: bytes | bytearray) -> tuple[int, int]:
    if len(data) < _HEADER.size:
        raise RegistrarProtocolError(f"registrar message shorter than its {_HEADER.size}-byte header")
    magic, version, mtype, length = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise RegistrarProtocolError(f"bad magic byte {magic} (expected {MAGIC})")
    if version != VERSION:
        raise RegistrarProtocolError(f"registrar protocol version {version} (this node speaks {VERSION})")
    return mtype, length


class MessageDecoder:
    """The registration connection's byte stream, split any way, turned into messages.

    Only :class:`RegistrarProtocolError` ever leaves it.  The messages a :meth:`feed`
    completed before the bad one are on the error's ``events`` attribute.  After the error
    the decoder stays failed (close the connection): every later call raises a new error
    with the same text, so nothing piles up however often it is called.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._failure: str | None = None

    @property
    def failed(self) -> bool:
        """True once a RegistrarProtocolError was raised."""
        return self._failure is not None

    def feed(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """Add received bytes; return every message they complete."""
        if self._failure is not None:
            raise RegistrarProtocolError(self._failure)
        buf = self._buf
        buf += data
        out: list[Any] = []
        try:
            while len(buf) >= _HEADER.size:
                mtype, length = _check_header(buf)
                end = _HEADER.size + length
                if len(buf) < end:
                    break
                raw = bytes(buf[_HEADER.size : end])
                del buf[:end]
                out.append(_decode_body_safely(mtype, raw))
        except RegistrarProtocolError as e:
            self._failure = str(e)
            self._buf = bytearray()
            e.events = out  # type: ignore[attr-defined]
            raise
        return out

"""The handshake: two nodes prove to each other that they share the cookie, then introduce themselves.

It is a state machine per side, :class:`Dialer` and :class:`Acceptor`: the transport hands
it the bytes it received (:meth:`receive_data`, which returns events) and writes whatever
:meth:`data_to_send` returns.  It ends in exactly one :class:`Accepted` (with the peer's
:class:`NodeInfo` and any bytes that already belong to ENP) or one :class:`Refused`.

The exchange (byte layouts in ``docs/wire.md``)::

    dialer                                   acceptor
    HELLO      nonce_d                  ->
                                        <-   CHALLENGE  nonce_a
    INTRODUCE  info_d, mac_d            ->                       (JOIN for a pool link)
                                        <-   ACCEPT     info_a, mac_a   (or REFUSE)
    READY      mac_r                    ->   (or REFUSE)

Each ``mac`` is HMAC-SHA256 keyed by the cookie over a label, both nonces and everything
introduced so far, so each side proves it knows the cookie for *this* exchange and the
cookie itself never crosses the wire.  Neither side accepts an ENP frame before the
exchange is complete: the acceptor waits for READY, so the dialer can still refuse what
the acceptor introduced.  Nonces come from the ``random`` callable so a simulation can
seed them.  There are no clocks here: a transport that gives up waiting calls
:meth:`abort`, and one whose peer closed calls :meth:`connection_lost`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from ergo.gen.errors import ErgoError, Incorrect, Malformed
from ergo.gen.ids import Atom, node_name_problem
from ergo.gen.options import DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_NETWORK_FLAGS, NetworkFlags

from . import enp
from ._brief import brief, brief_error, printable

__all__ = [
    "MAGIC",
    "MAX_BODY",
    "VERSION",
    "Accepted",
    "Acceptor",
    "BadCookie",
    "Dialer",
    "DuplicateName",
    "HandshakeError",
    "HandshakeTruncated",
    "MalformedHandshake",
    "NetworkFlags",
    "NodeInfo",
    "Refused",
    "SimultaneousConnect",
    "UnexpectedPeer",
    "UnknownConnection",
    "VersionMismatch",
    "keeps_own_dial",
    "late_refusal",
]

MAGIC = 87  # "W", as Ergo's handshake
VERSION = 1
MAX_BODY = 4096  # a handshake message is small; anything longer is garbage
NONCE_SIZE = 32

HELLO, CHALLENGE, INTRODUCE, JOIN, ACCEPT, READY, REFUSE = range(1, 8)
_NAMES = {
    HELLO: "HELLO",
    CHALLENGE: "CHALLENGE",
    INTRODUCE: "INTRODUCE",
    JOIN: "JOIN",
    ACCEPT: "ACCEPT",
    READY: "READY",
    REFUSE: "REFUSE",
}
_HEADER = struct.Struct(">BBBH")  # magic, version, type, body length


#: what a node offers its peers (Ergo's ``gen.NetworkFlags``, same bits), and its default
DEFAULT_FLAGS = DEFAULT_NETWORK_FLAGS


class HandshakeError(ErgoError):
    """Why a handshake was refused."""

    default = "handshake refused"


class BadCookie(HandshakeError):
    """A digest did not match: the two nodes do not share the cookie."""

    default = "incorrect cookie digest"


class VersionMismatch(HandshakeError):
    """The peer speaks another handshake or ENP version."""

    default = "unsupported protocol version"


class DuplicateName(HandshakeError):
    """The peer's name is this node's own, or a node of that name is already connected."""

    default = "duplicate node name"


class UnknownConnection(HandshakeError):
    """A JOIN for a connection this node does not have (or no longer has)."""

    default = "unknown connection to join"


class UnexpectedPeer(HandshakeError):
    """The dialer reached a node other than the one it dialed."""

    default = "unexpected peer"


class MalformedHandshake(HandshakeError, Malformed):
    """Bytes that are not a handshake message, or one out of turn."""

    default = "malformed handshake"


class HandshakeTruncated(HandshakeError):
    """The connection closed (or the transport gave up) before the exchange completed."""

    default = "handshake truncated"


class SimultaneousConnect(HandshakeError):
    """Both nodes dialed each other at once; this connection lost (see :func:`keeps_own_dial`).

    Not a failure: the other connection between the same two nodes is the one both keep.
    A dialer refused with it should wait for (or use) the connection its peer dialed.
    """

    default = "simultaneous connect: the other connection is kept"


_REFUSALS: dict[str, type[HandshakeError]] = {
    c.__name__: c
    for c in (
        HandshakeError,
        BadCookie,
        VersionMismatch,
        DuplicateName,
        UnknownConnection,
        UnexpectedPeer,
        MalformedHandshake,
        HandshakeTruncated,
        SimultaneousConnect,
    )
}


def keeps_own_dial(this_node: str, peer: str) -> bool:
    """Whether ``this_node`` keeps its own dial to ``peer`` when their handshakes cross.

    Erlang's rule (``dist_util``): the node with the greater name keeps the connection it
    dialed and refuses the one it is offered; the other accepts the offered one and drops
    its own dial.  Both sides compute the same answer from the same two names, so they
    always keep the same single connection.
    """
    return str.__str__(this_node) > str.__str__(peer)


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a node tells its peer about itself.

    ``version`` is the ENP version it speaks; ``max_message_size`` the largest frame it
    accepts (0: no limit; default ``DEFAULT_MAX_MESSAGE_SIZE``); ``pool_size`` how many
    links it wants per peer; ``heartbeat_timeout`` the milliseconds of silence after which
    it declares a link down (0: not said), so that the peer sends heartbeats often enough.
    """

    name: str
    creation: int
    flags: int = int(DEFAULT_FLAGS)
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    pool_size: int = 3
    version: int = enp.VERSION
    heartbeat_timeout: int = 0

    def __post_init__(self) -> None:
        problem = _check_info(
            {
                "name": self.name,
                "creation": self.creation,
                "flags": self.flags,
                "max_message_size": self.max_message_size,
                "pool_size": self.pool_size,
                "version": self.version,
                "heartbeat_timeout": self.heartbeat_timeout,
            }
        )
        if problem:
            raise Incorrect(f"NodeInfo: {problem}")

    def _pack(self, **extra: Any) -> bytes:
        if self.heartbeat_timeout:  # an optional key: a node that does not say it sends the same bytes as before
            extra["heartbeat_timeout"] = self.heartbeat_timeout
        return msgpack.packb(
            {
                "name": str.__str__(self.name),
                "creation": self.creation,
                "flags": int(self.flags),
                "max_message_size": self.max_message_size,
                "pool_size": self.pool_size,
                "version": self.version,
                **extra,
            }
        )


#: the largest heartbeat_timeout an introduction may say (milliseconds, u32)
_MAX_HEARTBEAT_TIMEOUT = (1 << 32) - 1

_INT_RANGES = {
    "creation": (-(1 << 63), (1 << 63) - 1),
    "flags": (0, (1 << 64) - 1),
    "max_message_size": (0, (1 << 32) - 1),
    "pool_size": (1, 255),
    "version": (0, 255),
}


def _check_info(info: Any) -> str | None:
    """What is wrong with an introduced node description, or None."""
    if not isinstance(info, dict):
        return "not a map"
    problem = node_name_problem(info.get("name"))
    if problem is not None:
        return problem
    for key, (low, high) in _INT_RANGES.items():
        value = info.get(key)
        if type(value) is not int or not low <= value <= high:
            return f"{key} must be an int in [{low}, {high}], not {brief(value)}"
    value = info.get("heartbeat_timeout", 0)  # optional
    if type(value) is not int or not 0 <= value <= _MAX_HEARTBEAT_TIMEOUT:
        return f"heartbeat_timeout must be an int in [0, {_MAX_HEARTBEAT_TIMEOUT}], not {brief(value)}"
    return None


def _info_from(info: dict[Any, Any]) -> NodeInfo:
    return NodeInfo(
        name=Atom(info["name"]),
        creation=info["creation"],
        flags=info["flags"],
        max_message_size=info["max_message_size"],
        pool_size=info["pool_size"],
        version=info["version"],
        heartbeat_timeout=info.get("heartbeat_timeout", 0),
    )


@dataclass(frozen=True, slots=True)
class Accepted:
    """The handshake succeeded: start ENP on this connection.

    ``tail`` holds bytes that arrived after the handshake and belong to the first
    ENP frames; feed them to the connection's FrameDecoder first.  ``pool_size`` is the
    number of links both sides agreed on (the smaller wish); the dialer opens the others
    with ``Dialer(..., join=connection_id)``.  ``crossed`` is True on an acceptor that took
    this connection while its own node was dialing the same peer: the connection layer
    ends that dial with ``dialer.abort(SimultaneousConnect())`` and keeps this one.
    """

    peer: NodeInfo
    connection_id: str
    join: bool
    pool_size: int
    tail: bytes = b""
    crossed: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    """The handshake failed; close the connection after writing ``data_to_send()``.

    ``by_peer`` is True when the peer refused (its reason arrived in a REFUSE message).
    """

    reason: HandshakeError
    by_peer: bool = False


def _frame(mtype: int, body: dict[Any, Any]) -> bytes:
    data = msgpack.packb(body)
    return _HEADER.pack(MAGIC, VERSION, mtype, len(data)) + data


def late_refusal(data: bytes | bytearray | memoryview) -> str | None:
    """What a REFUSE message at the start of ``data`` says (its reason and text), or None.

    A peer that gave up on a handshake this side had already finished (its REFUSE held
    back by a slow writer) sends it where this side now expects ENP frames; the link
    closes either way, and this names why instead of a bad frame's magic byte.
    """
    head = bytes(data[: _HEADER.size])
    if len(head) < _HEADER.size:
        return None
    magic, version, mtype, length = _HEADER.unpack(head)
    if magic != MAGIC or version != VERSION or mtype != REFUSE or length > MAX_BODY:
        return None
    try:
        body = msgpack.unpackb(bytes(data[_HEADER.size : _HEADER.size + length]))
    except Exception:  # noqa: BLE001 - not a whole REFUSE after all
        return None
    if not isinstance(body, dict):
        return None
    reason, text = body.get("reason"), body.get("text")
    reason = reason if isinstance(reason, str) else "HandshakeError"
    text = text if isinstance(text, str) else "no reason given"
    return brief(f"{reason}: {text}", 300)


def _mac(cookie: bytes, label: bytes, *parts: bytes) -> bytes:
    return hmac.new(cookie, label + b"".join(parts), hashlib.sha256).digest()


class _Handshake:
    """What both sides share: buffering, message parsing, refusing and the outgoing bytes."""

    _expect: tuple[int, ...] = ()

    def __init__(self, node: NodeInfo, cookie: str | bytes, random: Callable[[int], bytes]) -> None:
        if not isinstance(node, NodeInfo):
            raise Incorrect("node must be a NodeInfo")
        if not isinstance(cookie, (str, bytes)) or not cookie:
            # an empty cookie is one every peer that left its own empty shares: it would
            # authenticate anyone.  NetworkOptions.with_cookie makes a random one instead.
            raise Incorrect("the handshake needs a non-empty cookie (see NetworkOptions.with_cookie)")
        self.node = node
        self._cookie = cookie.encode("utf-8") if isinstance(cookie, str) else bytes(cookie)
        self._random = random
        self._in = bytearray()
        self._out = bytearray()
        self._result: Accepted | Refused | None = None
        self.state = "start"

    @property
    def done(self) -> bool:
        """True once the handshake ended, either way."""
        return self._result is not None

    @property
    def result(self) -> Accepted | Refused | None:
        """The event it ended with, or None while it is running."""
        return self._result

    def data_to_send(self) -> bytes:
        """The bytes to write to the peer now (and empties the outgoing buffer)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Accepted | Refused]:
        """Bytes from the peer; returns [] while the exchange runs, then [Accepted] or [Refused].

        Bytes that arrive after a refusal are ignored; bytes after success belong to ENP.
        """
        if self._result is not None:
            if isinstance(self._result, Refused) or not data:
                return []
            raise Incorrect("the handshake has finished: give further bytes to the ENP FrameDecoder")
        self._in += data
        events: list[Accepted | Refused] = []
        while self._result is None:
            try:
                message = self._next_message()
                if message is None:
                    break
                self._handle(*message)
            except HandshakeError as e:
                self._refuse(e)
            except Exception as e:  # noqa: BLE001 - whatever the bytes, the outcome is a refusal
                self._refuse(MalformedHandshake(f"in state {self.state}: {brief_error(e)}"))
        if self._result is not None:
            events.append(self._result)
        return events

    def connection_lost(self, why: str | None = None) -> list[Refused]:
        """The peer closed the connection (EOF) before the exchange ended; ``why``, the
        transport's word on it (a reset), ends the reason's text."""
        said = f": {why}" if why else ""
        return self.abort(
            HandshakeTruncated(f"connection closed during the handshake (in state {self.state}){said}")
        )

    def abort(self, reason: HandshakeError | None = None) -> list[Refused]:
        """Give up (a timeout, a shutdown): refuse with ``reason`` and tell the peer why."""
        if self._result is not None:
            return []
        self._refuse(reason or HandshakeTruncated(f"handshake aborted in state {self.state}"))
        return [self._result]  # type: ignore[list-item]

    # -- internals -----------------------------------------------------------------------

    def _next_message(self) -> tuple[int, dict[Any, Any]] | None:
        buf = self._in
        if not buf:
            return None
        if buf[0] != MAGIC:
            self._refuse(
                MalformedHandshake(f"not a handshake message (first byte {buf[0]}, expected {MAGIC})")
            )
            return None
        if len(buf) < _HEADER.size:
            return None
        _magic, version, mtype, length = _HEADER.unpack_from(buf)
        if version != VERSION:
            self._refuse(VersionMismatch(f"handshake version {version} (this node speaks {VERSION})"))
            return None
        if length > MAX_BODY:
            self._refuse(MalformedHandshake(f"handshake message of {length} bytes (max {MAX_BODY})"))
            return None
        end = _HEADER.size + length
        if len(buf) < end:
            return None
        raw = bytes(buf[_HEADER.size : end])
        del buf[:end]
        try:
            body = msgpack.unpackb(raw)
        except Exception:  # noqa: BLE001 - any garbage is the same refusal
            body = None
        if not isinstance(body, dict):
            self._refuse(MalformedHandshake(f"{_NAMES.get(mtype, mtype)} body is not a msgpack map"))
            return None
        return mtype, body

    def _handle(self, mtype: int, body: dict[Any, Any]) -> None:
        if mtype == REFUSE:
            reason, text = body.get("reason"), body.get("text")
            cls = _REFUSALS.get(reason, HandshakeError) if isinstance(reason, str) else HandshakeError
            text = printable(text[:512]) if isinstance(text, str) else "no reason given"
            self._result = Refused(cls(f"peer refused: {text}"), by_peer=True)
            self.state = "refused"
            return
        if mtype not in self._expect:
            wanted = " or ".join(_NAMES[t] for t in self._expect)
            raise MalformedHandshake(
                f"expected {wanted} in state {self.state}, got {_NAMES.get(mtype, mtype)}"
            )
        self._on(mtype, body)

    def _on(self, mtype: int, body: dict[Any, Any]) -> None:
        raise NotImplementedError

    def _refuse(self, reason: HandshakeError) -> None:
        self._out += _frame(REFUSE, {"reason": type(reason).__name__, "text": str(reason)})
        self._result = Refused(reason)
        self._in.clear()
        self.state = "refused"

    def _send(self, mtype: int, body: dict[Any, Any]) -> None:
        self._out += _frame(mtype, body)

    @staticmethod
    def _bin(body: dict[Any, Any], key: str, size: int | None = None) -> bytes:
        value = body.get(key)
        if type(value) is not bytes or (size is not None and len(value) != size):
            want = f"{size} bytes" if size else "bytes"
            raise MalformedHandshake(f"field {key!r} must be {want}")
        return value

    def _peer_info(self, raw: bytes) -> dict[Any, Any]:
        try:
            info = msgpack.unpackb(raw)
        except Exception:  # noqa: BLE001
            info = None
        problem = _check_info(info)
        if problem:
            raise MalformedHandshake(f"peer's introduction: {problem}")
        if info["version"] != self.node.version:
            raise VersionMismatch(f"peer speaks ENP version {info['version']}, this node {self.node.version}")
        return info

    def _accepted(self, peer: NodeInfo, connection_id: str, join: bool, crossed: bool = False) -> None:
        tail = bytes(self._in)
        self._in.clear()
        pool = min(self.node.pool_size, peer.pool_size)
        self._result = Accepted(peer, connection_id, join, pool, tail, crossed)
        self.state = "established"


def _claimed(raw: bytes) -> str | None:
    """Who an introduction that failed the cookie says it is, for the refusal's line: an
    operator with a node given the wrong cookie learns which one (the source port of its
    connection does not say).  Unproven, and said so; None if it cannot be read."""
    try:
        info = msgpack.unpackb(raw)
    except Exception:  # noqa: BLE001 - whatever the bytes are, the refusal stands
        return None
    name = info.get("name") if isinstance(info, dict) else None
    return name[:255] if isinstance(name, str) and name else None


class Dialer(_Handshake):
    """The side that opened the connection.  Its HELLO is ready in :meth:`data_to_send` at once.

    ``expect`` is the node name it meant to reach (refused if another answers); ``join``
    is the connection id from a first handshake's :class:`Accepted`, to add a pool link.
    """

    def __init__(
        self,
        node: NodeInfo,
        cookie: str | bytes,
        *,
        expect: str | None = None,
        join: str | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__(node, cookie, random)
        self.expect = expect
        self.join = join
        self._nonce = random(NONCE_SIZE)
        self._nonce_a = b""
        self._intro = b""
        self._send(HELLO, {"nonce": self._nonce})
        self.state = "wait_challenge"
        self._expect = (CHALLENGE,)

    def _on(self, mtype: int, body: dict[Any, Any]) -> None:
        if mtype == CHALLENGE:
            self._nonce_a = self._bin(body, "nonce", NONCE_SIZE)
            if self.join is None:
                kind, label, self._intro = INTRODUCE, b"ergo-introduce", self.node._pack()
            else:
                kind, label, self._intro = JOIN, b"ergo-join", self.node._pack(connection_id=self.join)
            mac = _mac(self._cookie, label, self._nonce, self._nonce_a, self._intro)
            self._send(kind, {"info": self._intro, "mac": mac})
            self.state = "wait_accept"
            self._expect = (ACCEPT,)
            return
        # ACCEPT
        raw = self._bin(body, "info")
        mac = _mac(self._cookie, b"ergo-accept", self._nonce, self._nonce_a, self._intro, raw)
        if not hmac.compare_digest(mac, self._bin(body, "mac", 32)):
            raise BadCookie("the acceptor's digest does not match our cookie")
        info = self._peer_info(raw)
        connection_id = info.get("connection_id")
        if not isinstance(connection_id, str) or not 0 < len(connection_id) <= 64:
            raise MalformedHandshake("ACCEPT carries no connection id")
        if self.join is not None and connection_id != self.join:
            raise UnknownConnection(f"joined {connection_id!r}, asked for {self.join!r}")
        if info["name"] == self.node.name:
            raise DuplicateName(f"the peer calls itself {info['name']!r}, this node's own name")
        if self.expect is not None and info["name"] != self.expect:
            raise UnexpectedPeer(f"dialed {self.expect!r} but reached {info['name']!r}")
        self._send(READY, {"mac": _mac(self._cookie, b"ergo-ready", self._nonce, self._nonce_a, raw)})
        self._accepted(_info_from(info), connection_id, self.join is not None)


class Acceptor(_Handshake):
    """The side that accepted the connection.

    ``peers`` maps the name of every node this one is connected to, to that connection's
    id (it is read during the handshake, so pass the node's live mapping): a full
    introduction from a connected name is a :class:`DuplicateName`, and a JOIN must name a
    connection in it.

    ``stale(name, creation)``, if given, says whether the connection to ``name`` is to an
    earlier run than one introducing itself with ``creation`` (a restart this node has not
    noticed yet): such an introduction is accepted, and the connection layer drops the
    stale connection (see ``Network.handshake_introduced``).

    ``accepting`` holds the names whose introduction another acceptor of this node took,
    its handshake not yet ended (pass a live view): a second introduction from one of them
    is a :class:`DuplicateName` too.

    ``dialing`` holds the names this node is dialing right now (its own handshakes not yet
    ended; pass the live set).  An introduction from one of them means the two handshakes
    crossed: by :func:`keeps_own_dial`, this node either refuses it with
    :class:`SimultaneousConnect` (its own dial wins) or accepts it with
    ``Accepted.crossed`` set (the peer's dial wins; end our own).  The connection layer
    keeps one rule for this to hold: never dial a name that is connected, being dialed, or
    has an acceptor past its introduction (:attr:`peer_name` set, not yet ended).
    """

    def __init__(
        self,
        node: NodeInfo,
        cookie: str | bytes,
        *,
        peers: Mapping[str, str] | None = None,
        dialing: Container[str] = (),
        accepting: Container[str] = (),
        stale: Callable[[str, int], bool] | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__(node, cookie, random)
        self.peers: Mapping[str, str] = peers if peers is not None else {}
        self.dialing = dialing
        self.accepting = accepting
        self.stale = stale
        #: the authenticated peer's name once its introduction (or JOIN) was accepted, else None
        self.peer_name: str | None = None
        #: the name an introduction refused for a wrong cookie gave (unproven): see _claimed
        self.claimed_name: str | None = None
        self._crossed = False
        self._nonce = random(NONCE_SIZE)
        self._nonce_d = b""
        self._info_a = b""
        self._peer: NodeInfo | None = None
        self._connection_id = ""
        self._joining = False
        self.state = "wait_hello"
        self._expect = (HELLO,)

    @property
    def introduced(self) -> bool:
        """True once the peer's full introduction (an INTRODUCE, not a JOIN) was accepted:
        from then on the connection layer takes the peer as being connected to it (the
        rule above), until this handshake ends."""
        return self.peer_name is not None and not self._joining

    @property
    def greeted(self) -> bool:
        """A HELLO came (a dialer sends it first, always: a REFUSE before it is not a
        dialer giving up, whatever it says)."""
        return bool(self._nonce_d)

    @property
    def peer_creation(self) -> int | None:
        """The creation the peer introduced itself with (None before its introduction)."""
        return self._peer.creation if self._peer is not None else None

    @property
    def crossed(self) -> bool:
        """The introduction came while this node was dialing the peer, and the peer's dial
        wins (see :func:`keeps_own_dial`): the connection layer ends its own."""
        return self._crossed

    def _on(self, mtype: int, body: dict[Any, Any]) -> None:
        if mtype == HELLO:
            self._nonce_d = self._bin(body, "nonce", NONCE_SIZE)
            self._send(CHALLENGE, {"nonce": self._nonce})
            self.state = "wait_introduce"
            self._expect = (INTRODUCE, JOIN)
            return
        if mtype in (INTRODUCE, JOIN):
            raw = self._bin(body, "info")
            label = b"ergo-introduce" if mtype == INTRODUCE else b"ergo-join"
            mac = _mac(self._cookie, label, self._nonce_d, self._nonce, raw)
            if not hmac.compare_digest(mac, self._bin(body, "mac", 32)):
                self.claimed_name = _claimed(raw)
                claimed = self.claimed_name
                said = f" (it says it is {brief(claimed)}: that node's cookie differs)" if claimed else ""
                raise BadCookie(f"the dialer's digest does not match our cookie{said}")
            info = self._peer_info(raw)
            name = info["name"]
            if name == self.node.name:
                raise DuplicateName(f"the peer calls itself {name!r}, this node's own name")
            if mtype == INTRODUCE:
                if name in self.peers and not (self.stale is not None and self.stale(name, info["creation"])):
                    raise DuplicateName(f"a node named {name!r} is already connected")
                if name in self.accepting:
                    raise DuplicateName(f"a connection from a node named {name!r} is already in its handshake")
                if name in self.dialing:
                    if keeps_own_dial(self.node.name, name):
                        raise SimultaneousConnect(
                            f"{self.node.name!r} and {name!r} dialed each other: "
                            f"the connection {self.node.name!r} dialed is kept"
                        )
                    self._crossed = True
                self._connection_id = self._random(16).hex()
            else:
                wanted = info.get("connection_id")
                if not isinstance(wanted, str) or self.peers.get(name) != wanted:
                    raise UnknownConnection(f"no connection {brief(wanted)} with {name!r} to join")
                self._connection_id = wanted
                self._joining = True
            self._peer = _info_from(info)
            self.peer_name = name
            self._info_a = self.node._pack(connection_id=self._connection_id)
            mac = _mac(self._cookie, b"ergo-accept", self._nonce_d, self._nonce, raw, self._info_a)
            self._send(ACCEPT, {"info": self._info_a, "mac": mac})
            self.state = "wait_ready"
            self._expect = (READY,)
            return
        # READY
        mac = _mac(self._cookie, b"ergo-ready", self._nonce_d, self._nonce, self._info_a)
        if not hmac.compare_digest(mac, self._bin(body, "mac", 32)):
            raise BadCookie("the dialer's READY digest does not match our cookie")
        assert self._peer is not None
        self._accepted(self._peer, self._connection_id, self._joining, self._crossed)

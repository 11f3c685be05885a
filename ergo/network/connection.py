"""A connection to one peer node: a pool of links (streams), each a handshake and then ENP.

A :class:`Link` is the :class:`~ergo.transport.StreamProtocol` of one stream.  It drives the
sans-IO handshake (``ergo.wire.handshake``) until it ends, then frames (``ergo.wire.enp``)
in both directions: outgoing frames are coalesced into one write per turn of the
scheduler, incoming bytes are decoded and handed to the :class:`Connection`.

A :class:`Connection` is the peer as the node sees it: created when the node first needs
the peer (a dial) or when the peer's first link is accepted, *up* once a handshake has
succeeded, and *down* for good once any of its links breaks (see ``link_lost``).  While
it is being dialed the frames sent to it wait in a bounded queue; if the dial fails they
are dropped and what waited for an answer is failed with the reason.  A frame takes the
link its order key chooses, so the frames of one sender keep their order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..gen.errors import ErgoError, NoConnection, TooLarge
from ..gen.ids import PID, Atom, Ref
from ..transport import Stream, StreamProtocol, over_the_cap
from ..wire import enp as _enp
from ..wire import handshake
from ..wire._brief import brief_error
from .throttle import Throttle

if TYPE_CHECKING:
    from .network import Network, NetworkRoute

__all__ = ["Connection", "Link"]

enp: Any = _enp  # its frame classes are made in a way mypy cannot follow (see network.py)

#: frames (in bytes) a connection being dialed keeps for its peer; more are refused
MAX_QUEUED = 4 * 1024 * 1024
#: a graceful close of a link lasts at most this many heartbeat timeouts, however much the
#: peer keeps taking (see Link._close_overdue)
MAX_CLOSE_TIMEOUTS = 10

DIALING, UP, DOWN = "dialing", "up", "down"


def _text(name: Any) -> str:
    return str.__str__(name)


class Link(StreamProtocol):
    """One stream to a peer."""

    def __init__(self, network: Network, conn: Connection | None, *, dialer: bool, join: str | None = None,
                 info: handshake.NodeInfo | None = None) -> None:
        self.network = network
        self.conn = conn
        #: what this node tells the peer on this link (its acceptor's, or the network's for a dial)
        self.info = info if info is not None else network.hs_info
        self.dialer = dialer
        self.join = join
        self.stream: Stream | None = None
        self.hs: handshake.Dialer | handshake.Acceptor | None = None
        #: the link's codec (enp.LinkCodec) once the handshake succeeded; None before and once closing
        self.decoder: Any = None
        self.codec: Any = None
        #: bytes encoded while the transport asked us to stop writing (pause_writing)
        self._held: deque[bytes | bytearray] = deque()
        self._held_bytes = 0
        #: of ``_held_bytes``, those at its front that waited for the dial (see
        #: ``write_backlog``): bounded by the dial's queue, not by ``max_buffer``
        self._held_backlog = 0
        #: the frames queued while dialing are being written (see ``write_backlog``)
        self._backlog = False
        self._flushing = False
        #: ``self._flush``, bound once: a turn with output queues it (a bound method made
        #: per turn is an allocation the garbage collector counts)
        self._flush_call = self._flush
        self.paused = False
        self.lost = False
        self.last_in = 0.0
        self.last_out = 0.0
        self.bytes_in = 0
        self.bytes_out = 0
        #: why this node closed the link itself (a bad frame, a silent peer), for the log and the loss
        self.why: str | None = None
        #: bytes held back behind a handshake message that goes out late (buggify), in order
        self._late: list[bytes] | None = None
        #: (an accepted link) the peer's introduction was accepted: see Network.handshake_introduced
        self.introduced = False
        #: close the stream once the late bytes are written (see close_stream)
        self._close_late = False
        #: closed (``close``) while bytes were held: the FIN waits for them (see resume_writing)
        self._fin_after_held = False
        #: the transport said the stream ended (connection_lost)
        self._ended = False
        #: bounds a graceful close that waits for the peer to take what is left (see close)
        self._close_timer: Any = None

    # -- the stream's callbacks -------------------------------------------------------

    def connection_made(self, stream: Stream) -> None:
        self.stream = stream
        net = self.network
        now = net.scheduler.now()
        self.last_in = self.last_out = now
        if self.dialer:
            assert self.conn is not None
            self.hs = handshake.Dialer(self.info, self.conn.cookie or net.cookie, expect=_text(self.conn.name),
                                       join=self.join,
                                       random=net.random_bytes)
        else:
            self.hs = handshake.Acceptor(self.info, net.cookie, peers=net.connection_ids, dialing=net.dialing,
                                         accepting=net.accepting, stale=net.stale,
                                         random=net.random_bytes)
        if net.stopped_why is not None:
            # a dial that connected after its node stopped gracefully (Network.stop): its
            # handshake is refused in words and the stream closed, not reset
            self.hs.abort(handshake.HandshakeTruncated(net.stopped_why))
            self._write_handshake()
            self.hs = None
            self.lost = True
            self.close_stream()
            return
        self._write_handshake()
        net.handshake_started(self)

    def data_received(self, data: memoryview) -> None:
        if self.lost:
            return
        self.bytes_in += len(data)
        net = self.network
        self.last_in = net.scheduler.now()
        hs = self.hs
        if hs is not None:
            events = hs.receive_data(data)
            self._write_handshake()
            if not self.dialer and not self.introduced and isinstance(hs, handshake.Acceptor) and hs.introduced:
                # from now on the peer counts as being connected: no dial of ours may begin
                self.introduced = True
                self.network.handshake_introduced(self, hs)
            for event in events:
                self.hs = None
                if isinstance(event, handshake.Accepted):
                    self.network.handshake_accepted(self, hs, event)
                else:
                    self.network.handshake_refused(self, hs, event)
                    return
            return
        decoder = self.decoder
        if decoder is None:  # refused or closing: nothing more is read
            return
        try:
            frames = decoder.feed(data)
        except enp.ProtocolError as e:
            decoded: list[Any] = getattr(e, "events", None) or []  # decoded before the bad one: delivered
            if decoded and self.conn is not None:
                self.network.deliver(self, self.conn, decoded)
                if self.lost:
                    return
            # not a frame but the peer's REFUSE, sent late (a slow writer) for a handshake
            # this side had finished: the link closes all the same, for what the peer said
            late = handshake.late_refusal(data) if not decoded else None
            self.fail(f"the peer refused it after the handshake: {late}" if late is not None
                      else f"malformed frame: {brief_error(e)}")
            return
        conn = self.conn
        if frames and conn is not None:
            net.scheduler.run_io(net.deliver_call, self, conn, frames)

    def connection_lost(self, error: ErgoError | None) -> None:
        self._ended = True
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if self.lost:  # closed or failed by this side: nothing to report
            self._held.clear()
            self._held_bytes = self._held_backlog = 0
            return
        self.lost = True
        hs, self.hs = self.hs, None
        if hs is not None and not hs.done:
            why = str(error) if error is not None else ""
            if self.dialer and hs.state == "wait_challenge" and self.stream is not None and not self.stream.tls:
                # nothing answered the HELLO before the close: what a TLS listener does with
                # plain bytes (a route that should say TLS), or a port that is no node's
                why += f"{'; ' if why else ''}nothing answered the HELLO: a TLS listener, or not an ergo node?"
            events = hs.connection_lost(why or None)
            self.network.handshake_refused(self, hs, events[0] if events else None)
            return
        if self.conn is not None:
            if error is None and self.why is not None:
                error = NoConnection(self.why)
            self.conn.link_lost(self, error)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        """The stream drained to its low-water mark: what was held goes out, as far as the
        high-water mark.  The transport tells ``pause_writing`` a turn later (see
        ``ergo.transport``), so the stream's own count is what stops this: writing all
        that was held (up to ``max_buffer``) on top of what still waited (up to ``low``)
        crossed the cap, and the transport aborted a link that had done nothing wrong.
        The rest stays held, in order, for the next ``resume_writing``."""
        self.paused = False
        held = self._held
        stream = self.stream
        high = self.network.transport.limits.high
        closing = self._fin_after_held
        if self.lost and not closing:
            return
        write = self._write if not closing else self._write_closing
        while held and not self.paused:
            data = held.popleft()
            self._held_bytes -= len(data)
            if self._held_backlog:
                self._held_backlog = max(0, self._held_backlog - len(data))
            write(data)
            if self.lost and not closing:
                return
            if held and stream is not None and stream.buffered > high:
                self.paused = True  # as the transport is about to say
        if closing and not held:
            self._fin_after_held = False
            self.close_stream()

    # -- writing ----------------------------------------------------------------------

    def _write_handshake(self) -> None:
        hs = self.hs
        if hs is not None and self.stream is not None:
            out = hs.data_to_send()
            if out:
                self.bytes_out += len(out)
                if self._late is not None:
                    self._late.append(bytes(out))
                    return
                sched = self.network.scheduler
                if sched.buggify("network.slow_handshake"):
                    # a slow peer: this message and everything after it go out later, in order
                    self._late = [bytes(out)]
                    delay = sched.random.uniform(0.0, self.network.options.connect_timeout / 2)
                    sched.call_later(delay, self._write_late)
                    return
                self.stream.write(out)

    def _write_late(self) -> None:
        late, self._late = self._late, None
        if late and self.stream is not None:
            for out in late:
                self.stream.write(out)
            if self._close_late:
                self.stream.close()

    def close_stream(self) -> None:
        """Close the stream once what waits behind a late handshake message went out (a
        slow writer still sends its REFUSE before its FIN; closing at once lost it, and the
        peer could not tell a crossed dial from a broken one)."""
        if self.stream is None:
            return
        if self._late is not None:
            self._close_late = True
            return
        self.stream.close()

    def start_enp(self, accepted: handshake.Accepted) -> None:
        """The handshake succeeded: frames from now on (``accepted.tail`` holds the first bytes)."""
        net = self.network
        # the links of one connection share its table of calls in flight (see enp.LinkCodec):
        # a call's answer may come back on another link of the pool than the call took
        asked = self.conn.asked if self.conn is not None else None
        self.codec = self.decoder = enp.LinkCodec.for_link(self.info, accepted.peer, net.registry,
                                                           batch_events=True, asked=asked, call_events=True)
        if accepted.tail:
            self.data_received(memoryview(accepted.tail))

    def send(self, msg: Any, compress: int | None = None) -> None:
        """Encode a frame (errors raised here, nothing sent); the frames of one turn of the
        scheduler go out in one write, or sooner once 64 KiB are pending."""
        out = self.codec.send(msg, compress=compress)
        if out:
            self._write(out)
        if not self._flushing:
            self._flushing = True
            self.network.scheduler.soon(self._flush_call, ())

    def _write(self, data: bytes | bytearray) -> None:
        if self.lost or self.stream is None:
            return
        if self.paused:  # the peer or the link takes bytes slower than we write: hold, up to the transport's cap
            self._held.append(data)
            self._held_bytes += len(data)
            if self._backlog:  # what waited for the dial: bounded by its queue (MAX_QUEUED)
                self._held_backlog += len(data)
                return
            limits = self.network.transport.limits
            if self._held_bytes - self._held_backlog > limits.max_buffer:
                self.fail(over_the_cap(self._held_bytes - self._held_backlog, limits, self.stream.backlog_cause()))
            return
        self.bytes_out += len(data)
        net = self.network
        sched = net.scheduler
        self.last_out = sched.now()
        if self._late is not None:  # behind a late handshake message
            self._late.append(bytes(data))
            return
        faults = net.faults
        if faults and sched.buggify("network.split_write") and len(data) > 1:
            cuts = sorted({sched.random.randrange(1, len(data)) for _ in range(3)})
            start = 0
            for cut in (*cuts, len(data)):
                self.stream.write(memoryview(data)[start:cut])
                start = cut
        else:
            self.stream.write(data)
        if self._backlog and self.stream.buffered > net.transport.limits.high:
            self.paused = True  # as the transport is about to say: the rest of the backlog is held
        if faults and sched.buggify("network.link_drop"):
            self.fail("buggify: the link dropped at a frame boundary")

    def write_backlog(self, send: Callable[[], None]) -> None:
        """Run ``send``, which sends the frames that waited for the connection to come up
        (``Connection.up``), and write them within flow control: as far as the high-water
        mark, the rest held, in order, for ``resume_writing``.  They went out in one turn
        before, up to ``MAX_QUEUED`` bytes past a ``max_buffer`` set below that, and the
        transport aborted the new connection.  Held so, they do not count against
        ``max_buffer`` (the dial's queue bounds them); what is sent after them does."""
        self._backlog = True
        try:
            send()
            if self.codec is not None and not self.lost:
                self._flush()  # the last frames' bytes too, while they count as the backlog
        finally:
            self._backlog = False

    def _flush(self) -> None:
        self._flushing = False
        codec = self.codec
        if codec is None or self.lost:
            return
        out = codec.flush()
        if out:
            net = self.network
            stream = self.stream
            if self.paused or self._late is not None or self._backlog or net.faults or stream is None:
                self._write(out)
                return
            # _write inlined for its common case (one write a turn, most of a round trip's):
            # nothing held, no late handshake bytes, no backlog, no fault points
            self.bytes_out += len(out)
            self.last_out = net.scheduler.now()
            stream.write(out)

    def fail(self, why: str) -> None:
        """Close this link for a reason of its own (bad bytes, a dead peer): logged, aborted."""
        if self.lost:
            return
        conn = self.conn
        peer = _text(conn.name) if conn is not None else (self.stream.peer if self.stream is not None else "?")
        self.network.log.warning("link to %s closed: %s", peer, why)
        self.why = why
        self.decoder = self.codec = None
        if self.stream is not None:
            self.stream.abort()
        # lost now, not when the transport's connection_lost comes: a send in between would
        # find a link without a codec; the connection goes down with it (see link_lost)
        self.lost = True
        if conn is not None:
            conn.link_lost(self, NoConnection(why))

    def _write_closing(self, data: bytes | bytearray) -> None:
        """Write what a closed link held (see ``close``)."""
        if self.stream is not None:
            self.bytes_out += len(data)
            self.stream.write(data)

    def close(self) -> None:
        """Close gracefully: what is pending goes out, then a FIN (once what was held on a
        pause went out, within flow control, on the next ``resume_writing``s).

        From now on the link is lost to everything else: nothing more is sent or read on
        it, no route or shortcut takes it, no failure of it is reported and its end tells
        its connection nothing (it was this side's decision).  It stayed live before: the
        bytes it held were written on the next ``resume_writing`` into the closed stream,
        which drops what it is given, so a graceful stop or disconnect lost the frames a
        slow peer had not taken yet.

        The close is bounded: if the peer takes none of what is left (held, and in the
        stream's buffer) for ``NetworkOptions.heartbeat_timeout``, the stream is aborted,
        logged (``_close_overdue``).  A peer that never reads kept the closed link, its
        stream and up to ``MAX_QUEUED`` + ``max_buffer`` bytes for ever.  So does one that
        keeps taking a little (a byte per check did): whatever it takes, the close lasts
        at most ``MAX_CLOSE_TIMEOUTS`` heartbeat timeouts.  A live link has no such bound,
        nor needs one: what a slow reader leaves it is capped, and it serves the node.

        Closing a link closed already does nothing more (a FIN waiting for held bytes
        keeps waiting: closing the stream now would drop them)."""
        if self.lost:
            if not self._fin_after_held:  # its FIN waits for what it held: closing now dropped that
                self.close_stream()
            return
        if self.codec is not None:
            self._flush()
        self.decoder = self.codec = None
        if self.hs is not None:  # in its handshake still: its timer and bookkeeping end
            self.hs = None
            self.network._handshake_ended(self)
        self.lost = True
        if self._held:
            self._fin_after_held = True
        else:
            self.close_stream()
        stream = self.stream
        if stream is not None and not self._ended and (self._held or stream.buffered):
            self._close_overdue(None)

    def _close_overdue(self, before: int | None, checks: int = 0) -> None:
        """Bound a graceful close that waits for the peer (``before``: the bytes left at
        the last check, None at the close; ``checks``: how many were made): checked every
        heartbeat_timeout, and once the peer took none of them since the last check (it
        stopped reading, or the link carries nothing), or at the ``MAX_CLOSE_TIMEOUTS``-th
        check whatever it took, the stream is aborted, what it still had dropped."""
        self._close_timer = None
        stream = self.stream
        if self._ended or stream is None:
            return
        left = self._held_bytes + stream.buffered
        timeout = self.network.options.heartbeat_timeout
        if before is None or (left < before and checks < MAX_CLOSE_TIMEOUTS):
            self._close_timer = self.network.scheduler.call_later(timeout, self._close_overdue, left, checks + 1)
            return
        peer = _text(self.conn.name) if self.conn is not None else "%s:%s" % stream.peer
        if left < before:
            self.network.log.warning(
                "link to %s closed: %d bytes were still to be sent %g s after the close (a graceful close "
                "lasts at most %d times NetworkOptions.heartbeat_timeout): aborted",
                peer, left, timeout * checks, MAX_CLOSE_TIMEOUTS)
        else:
            self.network.log.warning(
                "link to %s closed: the peer took none of the %d bytes still to be sent for %g s after the "
                "close (NetworkOptions.heartbeat_timeout): aborted", peer, left, timeout)
        self._held.clear()
        self._held_bytes = self._held_backlog = 0
        self._fin_after_held = False
        stream.abort()


class Connection:
    """The node's connection to one peer (see the module's docstring)."""

    def __init__(self, network: Network, name: Atom) -> None:
        self.network = network
        self.name = name
        self.state = DIALING
        self.links: list[Link] = []
        #: while not up: the accepted link whose handshake this connection waits for (the
        #: peer's dial), instead of a dial of our own
        self.accepting: Link | None = None
        #: what this node offered the peer in the handshake (NetworkFlags), once up
        self.offered = 0
        self.peer: handshake.NodeInfo | None = None
        #: how often its idle links send a heartbeat (see Network._heartbeat_interval)
        self.heartbeat_interval = network.options.heartbeat_interval
        self.connection_id = ""
        self.pool_size = 1
        self.dialed = False  # this node dialed the first link (and so the pool's others)
        self.since = 0.0
        #: the cookie its dials prove, the route's (NetworkRoute.cookie); None: the node's own
        self.cookie: str | None = None
        #: the route its first link was dialed on: the pool's joins dial the same one
        self.route: NetworkRoute | None = None
        #: its dial holds one of the node's MAX_DIALS turns (see Network._dial), and the
        #: resolve it waits for, given up if the dial ends first
        self.dial_slot = False
        self.resolving: Any = None
        self.queue: list[Any] = []  # frames (messages) waiting while dialing
        #: order key (1..255) -> the link its frames take (see send)
        self.routes: dict[int, Link] = {}
        self.queued_bytes = 0
        self.frames_in = 0
        self.frames_out = 0
        #: the bytes of the links the connection lost when it went down, so that ``info()``
        #: of a RemoteNode whose connection is down still counts them with its messages
        self.bytes_in_gone = 0
        self.bytes_out_gone = 0
        #: calls made to processes on the peer, not answered yet: ref -> caller (see Node._fail_calls)
        self._calls_in: dict[Ref, PID] | None = None
        #: the codecs' table of this node's calls in flight, shared by the links of the pool
        #: (see enp.LinkCodec: an answer hands back the very Ref its call was made with)
        self.asked: dict[tuple[int, int, int], Ref] = {}
        #: calls from the peer's processes that local processes owe an answer: ref -> the
        #: target owing it, oldest first (at most network.MAX_OWED_CALLS: see Network._on_request, _forget_oldest)
        self.owed: dict[Ref, Any] = {}
        self.owed_forgotten = 0
        #: important sends and link/monitor/spawn requests waiting for the peer's answer: ref -> callback
        self.waiting: dict[Ref, Callable[[BaseException | None, Any], None]] = {}
        #: (link?, target) -> the ref of this node's latest Link/Monitor of it still unanswered (Network.watch)
        self.watches: dict[tuple[bool, Any], Ref] = {}
        #: Links/Monitors whose answer nothing waits for any more (their watchers left, a
        #: later one took their place, they timed out): ref -> (link?, target), oldest first,
        #: at most network.MAX_ORPHANS.  An answer saying the peer subscribed is withdrawn
        #: then, and only then (see Network.watch)
        self.orphans: dict[Ref, tuple[bool, Any]] = {}
        #: (deadline, ref, what was asked, undo) of the requests in ``waiting``, oldest first
        #: (Network._await_answer, _expire)
        self.deadlines: deque[tuple[float, Ref, str, Callable[[], None] | None]] = deque()
        self.timer: Any = None
        #: the transport's connect future while the first link is being dialed
        self.attempt: Any = None
        #: the transport's connect futures of the pool's other links (the dialer's JOINs, at
        #: most pool_size - 1, once): given up, or their streams aborted in their handshake,
        #: when the connection goes down (Network.connection_down)
        self.joins: list[Any] = []
        self.on_up: list[Callable[[Connection | None, BaseException | None], None]] = []
        #: why it went down (set once it is down)
        self.error: ErgoError | None = None
        #: it came up after a PID of a later run of the peer took the last one down, and the
        #: peer turned out not to have that run (Network._check_creation)
        self.claim_disproved = False
        #: the lines about values from the peer that could not be decoded: one a second
        self.undecodable = Throttle(network.scheduler, 1)
        #: the lines about what this node sent the peer cut to fit its max message size (an
        #: event's buffer, a reason): one a second, since the peer asks for them (a Monitor
        #: of an event, repeated, is answered with the buffer each time)
        self.cut = Throttle(network.scheduler, 1)

    # what Node._fail_calls asks of a target
    def _describe(self) -> str:
        return f"node {_text(self.name)}"

    @property
    def creation(self) -> int:
        return self.peer.creation if self.peer is not None else 0

    # -- sending ------------------------------------------------------------------------

    def send(self, msg: Any, order: int, compression: Any = None) -> None:
        """Frame ``msg`` for the link ``order`` picks (0: any), lz4-compressed above the
        threshold of ``compression`` (a sender's ``CompressionOptions``) if given.
        Encoding errors and ``TooLarge`` are raised here, before anything is sent."""
        if self.state is UP:
            link = self.link_for(order) if order else self.links[0]
            link.send(msg, compression.threshold if compression is not None else None)
            self.frames_out += 1
        elif self.state is DIALING:
            # encoded now so that a value that cannot travel fails the sender here, at once
            # (above the peer's limit too once it is known: an accepted link's first frames
            # are answered before the connection is up)
            limit = self.peer.max_message_size if self.peer is not None else 0
            frame = self.network.encode(msg, limit, compression)
            if self.queued_bytes + len(frame) > MAX_QUEUED:
                raise TooLarge(f"{self.queued_bytes} bytes already wait for the connection to {_text(self.name)}")
            self.queue.append((msg, order, compression))
            self.queued_bytes += len(frame)
        else:
            raise NoConnection(f"the connection to {_text(self.name)} is down")

    def send_call(self, kind: Any, from_: PID, to: PID, ref: Ref, message: Any) -> None:
        """:meth:`send` of ``kind(from_, to, ref, message)``, a RequestPID or Response from a
        local process to a PID of the peer's current run, at normal priority, not compressed,
        on an up connection (the caller checked all that: the fast lane of a remote call).
        It frames it with ``LinkCodec.send_call``, without making it; link_for and the link's
        write are inlined (one Python frame per call instead of three)."""
        order = 1 + from_.id % 255  # enp.order_key
        link = self.routes.get(order)
        if link is None or link.lost:
            link = self.link_for(order)
        out = link.codec.send_call(kind, from_, to, ref, message)
        if out:
            link._write(out)
        if not link._flushing:
            link._flushing = True
            self.network.scheduler.soon(link._flush_call, ())
        self.frames_out += 1

    def link_for(self, order: int) -> Link:
        """The link of the pool the frames of order key ``order`` (1..255) take, while it lives."""
        # a key keeps the link it first took while that link lives: picking by
        # ``order % len(links)`` alone moved a sender to another link whenever the pool grew
        # or shrank, and its new frames overtook those still on the old one
        link = self.routes.get(order)
        if link is None or link.lost:
            links = self.links
            link = self.routes[order] = links[order % len(links)]
        return link

    # -- receiving ------------------------------------------------------------------------

    def dispatch(self, frame: Any) -> None:
        self.network.dispatch(self, frame)

    # -- state ----------------------------------------------------------------------------

    def add_link(self, link: Link) -> None:
        link.conn = self
        self.links.append(link)

    def up(self) -> None:
        """The first handshake succeeded: flush what waited, then tell who waited."""
        self.state = UP
        queued, self.queue = self.queue, []
        self.queued_bytes = 0
        failed: list[tuple[Any, ErgoError]] = []

        def send() -> None:
            for msg, order, compression in queued:
                try:
                    self.send(msg, order, compression)
                except ErgoError as e:  # too large for the peer's limit, known only now
                    self.network.log.warning("a message queued for %s was not sent: %s", self.name, e)
                    failed.append((msg, e))

        if queued:
            # the first link is the only one yet: the pool's others join later
            self.links[0].write_backlog(send)
        # who waited for a frame that was not sent is told once the queue is written: told
        # inside write_backlog, a future's callbacks (run there in simulation) sent frames
        # that the link counted as the queue's, held past max_buffer without bound
        for msg, e in failed:
            self._not_sent(msg, e)
        waiting, self.on_up = self.on_up, []
        for fn in waiting:
            fn(self, None)

    def _not_sent(self, msg: Any, error: ErgoError) -> None:
        """A queued frame could not be sent after all: whoever waits for its answer (a
        caller, an important send, a link or monitor) is told ``error`` now, instead of
        waiting for an answer that cannot come."""
        ref = getattr(msg, "ref", None)
        if ref is None:
            return
        calls = self._calls_in
        caller = calls.pop(ref, None) if calls else None
        if caller is not None:
            self.network._node._route_response(caller, ref, None, error)
        answer = self.waiting.pop(ref, None)
        if answer is not None:
            answer(error, None)
        elif self.orphans:
            self.orphans.pop(ref, None)  # a Link or Monitor never sent: nothing to withdraw

    def link_lost(self, link: Link, error: ErgoError | None) -> None:
        if link not in self.links:
            # never part of this connection's pool: our own dial that lost to the peer's
            # connection (refused as a duplicate, or closed when it came too late), or a join
            # that was turned away.  Its loss says nothing about the links that carry traffic.
            return
        self.links.remove(link)
        if self.state is not UP:
            return
        # One broken link takes the whole connection down, as Erlang's one connection does.
        # What was in flight on it (a message, a Terminate, a Monitor, an acknowledgement)
        # is lost, and the rest of the pool cannot say what: carrying on would leave a
        # watch that never fires or a future that never completes, silently.  Down, every
        # watcher and waiter is told NoConnection, and the next send dials again.
        why = f"the connection to {_text(self.name)} was lost"
        if error is not None:
            why += f": {error}"
        self.network.connection_down(self, NoConnection(why))

    def close(self) -> None:
        for link in list(self.links):
            link.close()

"""Pub/sub: links, monitors and events (Ergo's target manager and event registry).

One structure serves all three.  A *target* is a PID, ProcessID, Alias or Event; its
*consumers* are the processes that linked to it or monitor it.  Links and monitors are
one-way: the consumer is told, the target is not affected.  When a target goes away
(terminated, name unregistered, alias deleted, event unregistered) every consumer gets
one notice and the entry is removed, so a link or monitor fires at most once.

Bookkeeping is O(1) per operation: ``target → {consumer: None}`` here, and on each
consumer ``target → None`` for what it watches, so either side going away releases the
entries that concern it.  Dicts keep insertion order: notices go out in the order the
links and monitors were made, which keeps simulated runs deterministic.

Notices are queued, never handled at once: exits go to the consumer's urgent queue (an
exit signal), downs to its system queue (a message).  Both ignore the mailbox limit: a
notice about a link must not be lost to a full mailbox.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from ..gen.errors import (
    AliasUnknown,
    EventOwner,
    EventUnknown,
    Incorrect,
    NotAllowed,
    ProcessTerminated,
    ProcessUnknown,
    Taken,
    TargetExist,
    TargetUnknown,
    Unregistered,
)
from ..gen.ids import PID, Alias, Atom, Event, ProcessID, Ref, node_name_problem, trusted
from ..gen.messages import (
    MessageDownAlias,
    MessageDownEvent,
    MessageDownNode,
    MessageDownPID,
    MessageDownProcessID,
    MessageEvent,
    MessageEventStart,
    MessageEventStop,
    MessageExitAlias,
    MessageExitEvent,
    MessageExitNode,
    MessageExitPID,
    MessageExitProcessID,
    _pair_maker,
)
from ..gen.types import MessagePriority
from ..network.throttle import Repeats
from .runner import EVENT, EXIT, MSG, SYSTEM, TERMINATED, URGENT, Runner, show

if TYPE_CHECKING:
    from .node import Node
    from .process import Process

__all__ = ["PubSub", "UNREGISTERED", "LINK"]

#: the reason consumers get when a name is unregistered, an alias deleted, an event unregistered
UNREGISTERED = Unregistered()
#: marks an exit item that a link produced (an exit signal from ``send_exit`` has None there)
LINK = "link"

#: what can be linked to or monitored: the exact types (a node is an Atom)
_TARGETS = (PID, ProcessID, Alias, Event, Atom)

#: the largest event buffer: a deque's own limit (no buffer that long would fit in memory anyway)
_MAX_BUFFER = 2**63 - 1

_EXIT = {PID: MessageExitPID, ProcessID: MessageExitProcessID, Alias: MessageExitAlias, Event: MessageExitEvent}
_DOWN = {PID: MessageDownPID, ProcessID: MessageDownProcessID, Alias: MessageDownAlias, Event: MessageDownEvent}
#: the same, made as the classes make them, a little faster: a target's end makes one of each kind
_MAKE_EXIT: dict[type, Any] = {t: _pair_maker(cls) for t, cls in _EXIT.items()}
_MAKE_DOWN: dict[type, Any] = {t: _pair_maker(cls) for t, cls in _DOWN.items()}


class _EventEntry:
    __slots__ = ("event", "producer", "token", "notify", "last", "consumers")

    def __init__(self, event: Event, producer: PID, token: Ref, notify: bool, buffer: int) -> None:
        self.event = event
        self.producer = producer
        self.token = token
        self.notify = notify
        self.last: deque[MessageEvent] | None = deque(maxlen=buffer) if buffer > 0 else None
        self.consumers = 0


#: The lines about messages of an event lost to a full mailbox: at most one every this many
#: seconds per event and consumer, for at most this many pairs remembered (see PubSub._lost)
LOST_EVENT_LINES_EVERY = 1.0
MAX_LOST_EVENT_KEYS = 1024

#: The most last messages of a remote event this node keeps for its later subscribers,
#: whatever buffer the producer's node announces.
MAX_FOLLOWED_BUFFER = 4096


class _Followed:
    """What this node knows of a remote event its processes follow: the producer's buffer
    (its last messages, as many as the producer keeps), kept up to date by the events that
    arrive, and which kinds of subscription (link True, monitor False) the producer answered."""

    __slots__ = ("last", "answered")

    def __init__(self) -> None:
        self.last: deque[MessageEvent] | None = None
        self.answered: set[bool] = set()


class PubSub:
    def __init__(self, node: Node) -> None:
        self._node = node
        self._links: dict[Any, dict[PID, None]] = {}
        self._monitors: dict[Any, dict[PID, None]] = {}
        self._events: dict[Event, _EventEntry] = {}
        self._produced: dict[PID, dict[Event, None]] = {}  # producer -> its events
        self._followed: dict[Event, _Followed] = {}  # remote events subscribed to, and their buffers
        #: the lines about events a full mailbox lost: per event and consumer, one a second
        self._lost_lines = Repeats(node._scheduler, LOST_EVENT_LINES_EVERY, MAX_LOST_EVENT_KEYS)
        #: node name -> the targets of that node linked to or monitored here (a node's own
        #: Atom aside): a lost connection fires them without scanning every link and monitor
        #: of this node (see node_down)
        self._remote: dict[Any, dict[Any, None]] = {}

    # -- making and removing links and monitors ----------------------------------------

    def _check_target(self, consumer: Process, target: Any) -> None:
        """Raise the error Ergo raises for a target that cannot be watched (local targets
        other than a PID, which ``add`` checks itself)."""
        node = self._node
        t = type(target)
        if t is ProcessID:
            p = node._names.get(target.name)
            if p is None:
                raise ProcessUnknown(f"no process is registered as {target.name} on {node._name}")
            if p is consumer:
                raise NotAllowed(f"{consumer._pid} cannot link to or monitor itself")
            if p._state >= TERMINATED:
                raise ProcessTerminated(f"{target} is terminating")
        elif t is Alias:
            owner = node._aliases.get(target)
            if owner is None:
                raise AliasUnknown(f"no alias {target} on {node._name}")
            if owner is consumer:
                raise NotAllowed(f"{consumer._pid} cannot link to or monitor its own alias")
        elif t is Event:
            if target not in self._events:
                raise EventUnknown(f"no event {target} on {node._name}")
        else:
            raise Incorrect(f"cannot link to or monitor {show(target)}: a PID, ProcessID, Alias or Event is needed")

    def _local(self, target: Any) -> Any:
        """An Event or ProcessID with an empty node names the local node (Ergo's ``LinkEvent``
        and ``MonitorEvent`` fill it in the same way)."""
        t = type(target)
        if (t is Event or t is ProcessID) and not target.node:
            return t(target.name, self._node._name)
        return target

    def add(self, consumer: Process, target: Any, table: dict[Any, Any], mine_attr: str) -> list[MessageEvent] | None:
        """Add a link (``table`` is the links) or a monitor; return buffered events for an event."""
        t = type(target)
        remote = False
        node = self._node
        if t is PID and target.node == node._name:
            # the common case, a local PID, checked here (the ids first: __eq__ is Python code)
            if target.id == consumer._pid.id and target == consumer._pid:
                raise NotAllowed(f"{consumer._pid} cannot link to or monitor itself")
            p = node._processes.get(target.id)
            if p is None or p._pid.creation != target.creation:
                raise ProcessUnknown(f"no process {target} on {node._name}")
            if p._state >= TERMINATED:
                raise ProcessTerminated(f"{target} is terminating")
        else:
            if (t is Event or t is ProcessID) and not target.node:
                target = self._local(target)
                t = type(target)
            elif t is Atom:  # a node name, as in Ergo's Link(target any)
                if target == node._name:
                    raise NotAllowed(f"{consumer._pid} cannot link to or monitor its own node")
                _check_node_name(target)
                node._net(target)
                remote = True
            elif t is str:
                raise Incorrect(f"cannot link to or monitor the str {show(target)}: use ProcessID(name, node) for a "
                                "registered process, or Atom('name@host') for a node")
            elif t in (PID, ProcessID, Alias, Event) and target.node != node._name:
                _check_node_name(target.node)
                node._net(target)
                if consumer._pid.node != node._name:
                    raise NotAllowed(f"{target} is not on {node._name}")
                remote = True
            if not remote:
                self._check_target(consumer, target)
        mine = getattr(consumer, mine_attr)
        if mine is None:
            mine = {}
            setattr(consumer, mine_attr, mine)
        # one lookup each, not a test and a store: hashing a PID is a call of Python code
        n = len(mine)
        mine[target] = None
        if len(mine) == n:
            raise TargetExist(f"{consumer._pid} already watches {target}")
        consumers = table.setdefault(target, {})
        consumers[consumer._pid] = None
        if remote:
            link = table is self._links
            if len(consumers) == 1:  # the first local watcher of this kind: subscribe there
                if t is not Atom:
                    self._remote.setdefault(target.node, {})[target] = None
                if t is Event:
                    self._subscribing(target, link)
                self._node._net(target).watch(target, link, consumer._pid)
                return [] if t is Event else None  # a remote event's buffer arrives as messages
            if t is Event:  # subscribed already: the buffer as this node has it, if answered
                followed = self._followed.get(target)
                if followed is not None and link in followed.answered and followed.last is not None:
                    return list(followed.last)
                return []  # the answer, when it comes, brings the buffer as messages
            return None
        if type(target) is Event:
            return self._subscribed(target)
        return None

    def remove(self, consumer: Process, target: Any, table: dict[Any, Any], mine_attr: str) -> None:
        if type(target) not in _TARGETS:  # (an unhashable one could not even be looked up)
            raise Incorrect(f"cannot unlink or demonitor {show(target)}: a PID, ProcessID, Alias, Event "
                            "or node name is needed")
        target = self._local(target)
        mine = getattr(consumer, mine_attr)
        if not mine or target not in mine:
            raise TargetUnknown(f"{consumer._pid} does not watch {target}")
        del mine[target]
        self._drop(table, target, consumer._pid)

    def _drop(self, table: dict[Any, Any], target: Any, pid: PID) -> None:
        consumers = table.get(target)
        if consumers is not None:
            consumers.pop(pid, None)
            if not consumers:
                del table[target]
                if self._is_remote(target):  # the last local watcher of this kind: unsubscribe there
                    self._unfollowed(target)
                    self._unindexed(target)
                    net = self._node._network
                    if net is not None:
                        net.unwatch(target, table is self._links, pid)
                    return
        if type(target) is Event and target in self._events:
            self._unsubscribed(target)

    def _unindexed(self, target: Any) -> None:
        """The remote ``target`` leaves ``_remote`` if no local process links to or monitors it any more."""
        if type(target) is Atom or target in self._links or target in self._monitors:
            return
        targets = self._remote.get(target.node)
        if targets is not None:
            targets.pop(target, None)
            if not targets:
                del self._remote[target.node]

    def _is_remote(self, target: Any) -> bool:
        t = type(target)
        if t is Atom:
            return True
        return t in _TARGETS and bool(target.node) and target.node != self._node._name

    @overload
    def link(self, consumer: Process, target: Event) -> list[MessageEvent]: ...
    @overload
    def link(self, consumer: Process, target: Any) -> list[MessageEvent] | None: ...
    def link(self, consumer: Process, target: Any) -> list[MessageEvent] | None:
        return self.add(consumer, target, self._links, "_linked")

    def unlink(self, consumer: Process, target: Any) -> None:
        self.remove(consumer, target, self._links, "_linked")

    @overload
    def monitor(self, consumer: Process, target: Event) -> list[MessageEvent]: ...
    @overload
    def monitor(self, consumer: Process, target: Any) -> list[MessageEvent] | None: ...
    def monitor(self, consumer: Process, target: Any) -> list[MessageEvent] | None:
        return self.add(consumer, target, self._monitors, "_monitored")

    def demonitor(self, consumer: Process, target: Any) -> None:
        self.remove(consumer, target, self._monitors, "_monitored")

    def add_link_quietly(self, consumer: Process, target: PID) -> None:
        """The spawn options link_parent / link_child: no checks, both sides are alive."""
        linked = consumer._linked
        if linked is None:
            linked = consumer._linked = {}
        n = len(linked)
        linked[target] = None
        if len(linked) != n:  # a new one (one lookup, not a test and a store)
            self._links.setdefault(target, {})[consumer._pid] = None

    # -- a target went away ------------------------------------------------------------

    def fire(self, target: Any, reason: BaseException, from_: PID) -> None:
        """Tell every consumer of ``target`` that it is gone, once, and forget them."""
        links = self._links.pop(target, None)
        monitors = self._monitors.pop(target, None)
        if self._followed:
            self._followed.pop(target, None)
        if self._remote and (links or monitors) and type(target) is not Atom and target.node != self._node._name:
            self._unindexed(target)
        node_target = type(target) is Atom
        told: set[Any] | None = None  # peer nodes told already: one Terminate each, links and monitors alike
        if links:
            message = MessageExitNode(target) if node_target else _MAKE_EXIT[type(target)](target, reason)
            item: tuple[Any, ...] = (EXIT, from_, LINK, message)
            told = self._tell(links, target, "_linked", URGENT, item, told)
        if monitors:
            message = MessageDownNode(target) if node_target else _MAKE_DOWN[type(target)](target, reason)
            item = (MSG, from_, None, message)
            self._tell(monitors, target, "_monitored", SYSTEM, item, told)

    def _tell(self, consumers: dict[PID, None], target: Any, mine_attr: str, queue: int, item: tuple[Any, ...],
              told: set[Any] | None) -> set[Any] | None:
        """Queue ``item`` at each consumer; returns ``told`` (made when a peer node is
        told first), for the next call of the same ``fire``."""
        node = self._node
        processes = node._processes
        local = node._name
        for pid in consumers:
            c: Any
            if pid.node != local:  # a peer node watching a target here
                c = node._network.remote_consumer(pid) if node._network is not None else None
                if c is None:
                    continue
                if told is None:
                    told = set()
                elif c in told:  # one Terminate per node, though links and monitors both fire
                    mine = getattr(c, mine_attr)
                    if mine is not None:
                        mine.pop(target, None)
                    continue
                told.add(c)
            else:
                c = processes.get(pid.id)
            if c is None or (c._pid is not pid and c._pid != pid):  # the table holds the consumer's own PID
                continue
            mine = getattr(c, mine_attr)
            if mine is not None:
                mine.pop(target, None)
            if c._state < TERMINATED:
                c._push_signal(queue, item)
        return told

    # -- targets on other nodes ---------------------------------------------------------

    def node_down(self, name: Atom, error: BaseException) -> None:
        """The connection to node ``name`` is gone: every local watcher of a target there is
        told ``error`` (``NoConnection``), and every watcher of the node itself
        ``MessageDownNode`` / ``MessageExitNode``."""
        source = PID(name, 1, 0)
        for target in list(self._remote.pop(name, ())):
            self.fire(target, error, target if type(target) is PID else source)
        self.fire(Atom(name), error, source)

    def remote_refused(self, target: Any, link: bool, error: BaseException) -> None:
        """The target's node refused a link or monitor (no such process, ...): its local
        watchers of that kind are told at once with that reason, as Erlang's ``noproc``."""
        table = self._links if link else self._monitors
        consumers = table.pop(target, None)
        self._unfollowed(target)
        self._unindexed(target)
        if not consumers:
            return
        if link:
            item: tuple[Any, ...] = (EXIT, target if type(target) is PID else self._node._core_pid, LINK,
                                     _EXIT[type(target)](target, error))
            self._tell(consumers, target, "_linked", URGENT, item, set())
        else:
            item = (MSG, target if type(target) is PID else self._node._core_pid, None,
                    _DOWN[type(target)](target, error))
            self._tell(consumers, target, "_monitored", SYSTEM, item, set())

    def remote_buffer(self, target: Any, link: bool, answer: Any) -> None:
        """The producer's answer to this node's subscription (of kind ``link``) to a remote
        event: ``[buffer size, its buffered messages]``.  The messages go to the local
        watchers of that kind that subscribed before the answer came; the buffer is kept,
        and updated by the events that arrive, for those that subscribe later (they get it
        at once, as ``link_event`` / ``monitor_event`` return a local event's buffer)."""
        if type(target) is not Event:
            return
        consumers = (self._links if link else self._monitors).get(target)
        if not consumers:  # all gone meanwhile: nothing to deliver or keep
            return
        size, events = 0, answer
        if type(answer) is list and len(answer) == 2 and type(answer[0]) is int and type(answer[1]) is list:
            size, events = answer
        if type(events) is not list:
            events = []
        messages = [m for m in events if type(m) is MessageEvent and m.event == target]
        for m in messages:
            self._deliver_event(consumers, (EVENT, self._node._core_pid, None, m), SYSTEM)
        followed = self._followed.get(target)
        if followed is None:
            followed = self._followed[target] = _Followed()
        followed.answered.add(link)
        if followed.last is None and size > 0:
            # the peer says how many; what it says is bounded (each kept message is memory here)
            followed.last = deque(messages, maxlen=min(size, MAX_FOLLOWED_BUFFER))

    def _subscribing(self, event: Event, link: bool) -> None:
        """This node subscribes to the remote ``event`` (kind ``link``) anew: until the
        answer comes, a later local subscriber of that kind gets no buffer from here."""
        followed = self._followed.get(event)
        if followed is not None:
            followed.answered.discard(link)

    def _unfollowed(self, target: Any) -> None:
        """No local process watches the remote ``target`` by this kind any more: if none
        watches it by the other either, what this node kept of its buffer goes."""
        if self._followed and target not in self._links and target not in self._monitors:
            self._followed.pop(target, None)

    def remote_event(self, from_: PID, m: MessageEvent, priority: MessagePriority) -> None:
        """An event from another node: fanned out to this node's subscribers."""
        consumers = dict(self._links.get(m.event, ()))
        consumers.update(self._monitors.get(m.event, ()))
        if self._followed:
            followed = self._followed.get(m.event)
            if followed is not None and followed.last is not None:
                followed.last.append(m)
        self._deliver_event(consumers, (EVENT, from_, None, m), Runner._queue_of(priority))

    def _deliver_event(self, consumers: dict[PID, None], item: tuple[Any, ...], queue: int) -> None:
        node = self._node
        for pid in consumers:
            c = node._processes.get(pid.id) if pid.node == node._name else None
            if c is None or c._state >= TERMINATED:
                continue
            try:
                c._push(queue, item)
            except Exception as e:  # a full mailbox loses this event for that consumer only
                self._lost(item[3].event, pid, e)

    def consumer_gone(self, p: Process) -> None:
        """A terminated process stops watching: release its side of every link and monitor."""
        linked, monitored = p._linked, p._monitored
        p._linked = p._monitored = None
        for target in linked or ():
            self._drop(self._links, target, p._pid)
        for target in monitored or ():
            self._drop(self._monitors, target, p._pid)

    def process_terminated(self, p: Process, reason: BaseException, name: Atom | None,
                           aliases: Sequence[Alias]) -> None:
        """Fire everything a terminated process was: its PID, its name, aliases and events.

        The caller has already released the name and aliases, so a watcher that hears of
        the termination can take the name at once.
        """
        if p._linked or p._monitored:
            self.consumer_gone(p)
        else:
            p._linked = p._monitored = None  # as consumer_gone leaves them
        pid = p._pid
        self.fire(pid, reason, pid)
        if name is not None:
            self.fire(trusted(ProcessID, name, self._node._name), reason, pid)  # both parts are Atoms already
        for alias in aliases:
            self.fire(alias, reason, pid)
        for event in self._produced.pop(pid, ()) if self._produced else ():
            del self._events[event]
            self.fire(event, reason, pid)

    # -- events ------------------------------------------------------------------------

    def register_event(self, producer: PID, name: str, notify: bool, buffer: int) -> Ref:
        if not isinstance(name, str) or not name:
            raise Incorrect(f"an event name is a non-empty str, not {show(name)}")
        if isinstance(buffer, bool) or not isinstance(buffer, int) or not 0 <= buffer <= _MAX_BUFFER:
            raise Incorrect(f"an event buffer is an int from 0 to {_MAX_BUFFER}, not {show(buffer)}")
        event = Event(name, self._node._name)
        if event in self._events:
            raise Taken(f"the event {event} is registered by {self._events[event].producer}")
        token = self._node.make_ref()
        self._events[event] = _EventEntry(event, producer, token, bool(notify), buffer)
        self._produced.setdefault(producer, {})[event] = None
        return token

    def unregister_event(self, producer: PID, name: str) -> None:
        event = Event(name, self._node._name)
        entry = self._events.get(event)
        if entry is None:
            raise EventUnknown(f"no event {event} on {self._node._name}")
        if entry.producer != producer:
            raise EventOwner(f"{producer} is not the producer of {event}")
        del self._events[event]
        produced = self._produced[producer]
        del produced[event]
        if not produced:
            del self._produced[producer]
        self.fire(event, UNREGISTERED, producer)

    def send_event(self, from_: PID, name: str, token: Ref, message: Any, priority: MessagePriority) -> None:
        node = self._node
        event = Event(name, node._name)
        entry = self._events.get(event)
        if entry is None:
            raise EventUnknown(f"no event {event} on {node._name}")
        if token != entry.token:
            raise EventOwner(f"the token does not match the one {event} was registered with")
        m = MessageEvent(event, int(node._scheduler.time() * 1e9), message)
        if entry.last is not None:
            entry.last.append(m)
        queue = Runner._queue_of(priority)
        item = (EVENT, from_, None, m)
        # a process that both links to and monitors the event gets each message once
        consumers = dict(self._links.get(event, ()))
        consumers.update(self._monitors.get(event, ()))
        for pid in consumers:
            c: Any
            if pid.node != node._name:  # a subscribing node: one frame, fanned out there
                c = node._network.remote_consumer(pid) if node._network is not None else None
            else:
                c = node._processes.get(pid.id)
            if c is None or c._state >= TERMINATED:
                continue
            try:
                c._push(queue, item)
            except Exception as e:  # a full mailbox loses this event for that consumer only
                self._lost(event, pid, e)

    def _lost(self, event: Event, pid: PID, error: Exception) -> None:
        """Log that ``pid`` lost a message of ``event`` (its mailbox is full): at most one line
        a second per event and consumer, saying how many it stands for.  A line each let a
        producer, a peer node's among them, write a line per event it sent (40 bytes each)
        for as long as a consumer's mailbox stayed full."""
        allowed = self._lost_lines.allow((event, pid))
        if allowed is None:
            return
        held, ago = allowed
        more = f" ({held} more not delivered to it since the last such line, {ago:.0f} s ago)" if held else ""
        self._node._runtime_log.error("event %s not delivered to %s: %s%s", event, pid, error, more)

    def _subscribed(self, event: Event) -> list[MessageEvent]:
        entry = self._events[event]
        entry.consumers += 1
        if entry.notify and entry.consumers == 1:
            self._notify(entry, MessageEventStart(event.name))
        return list(entry.last) if entry.last is not None else []

    def buffer_size(self, event: Event) -> int:
        """How many last messages a local event keeps (0: none, or no such event)."""
        entry = self._events.get(event)
        return entry.last.maxlen or 0 if entry is not None and entry.last is not None else 0

    def buffer_of(self, event: Event) -> list[MessageEvent]:
        """The buffered last messages of a local event (``[]`` if it has none or is gone)."""
        entry = self._events.get(event)
        return list(entry.last) if entry is not None and entry.last is not None else []

    def _unsubscribed(self, event: Event) -> None:
        entry = self._events.get(event)
        if entry is None:
            return
        entry.consumers -= 1
        if entry.notify and entry.consumers == 0:
            self._notify(entry, MessageEventStop(event.name))

    def _notify(self, entry: _EventEntry, message: Any) -> None:
        node = self._node
        p = node._processes.get(entry.producer.id)
        if p is not None and p._pid == entry.producer and p._state < TERMINATED:
            p._push_signal(SYSTEM, (MSG, node._core_pid, None, message))

    def events_of(self, pid: PID) -> tuple[Event, ...]:
        return tuple(self._produced.get(pid, ()))

    def size(self) -> tuple[int, int, int]:
        """How many targets have links, monitors, and how many events exist (for leak tests)."""
        return len(self._links), len(self._monitors), len(self._events)


def _check_node_name(name: Any) -> None:
    """``Incorrect`` for a remote target whose node is no node name (``"noat"``, ``"a@"``):
    the caller's mistake, known at once (a node monitor's down message has no reason to
    say it with, and nothing is dialed for it)."""
    problem = node_name_problem(name)
    if problem is not None:
        raise Incorrect(problem)

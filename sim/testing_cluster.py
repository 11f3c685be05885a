"""A Hypothesis state machine over a simulated cluster of three hosts, against a model.

:class:`ClusterMachine` drives one node on each of three simulated hosts (``n1@host1`` ..
``n3@host3``, static routes, fast heartbeats) through spawns, links, monitors, unlinks,
demonitors, calls, sends, events, names and aliases (registered, let go, watched), exits,
partitions both ways and one way, repairs, host crashes, restarts (a new creation) and
the passing of time, and checks what the processes heard against :class:`ClusterModel`,
a model of what Ergo guarantees across nodes:

* **Order and no duplicates** (checked after every step): the messages of one sender to
  one recipient arrive in the order sent, each at most once, and only to the process they
  were addressed to (a PID of an earlier creation of a node never reaches its new run);
  a message whose send raised never arrives.
* **Notices** (after every step): a link or monitor fires at most once, and with a reason
  the model allows: the target's own reason once it ended; ``NoConnection`` or ``Timeout``
  only if a fault touched the two hosts (a partition, a crash) from ``BOUND`` seconds
  before the watch was made until now; ``ProcessIncarnation`` for a target of an earlier
  run; ``ProcessUnknown`` for a remote target that ended before (or about when) it was
  watched.  A released watch (unlink, demonitor) is never told afterwards.
* **Calls** (after every step): a call ends once, with its own reply or an error the
  model allows (see :meth:`ClusterModel.heard_call`).
* **Events, names, aliases** (after every step): an event's messages reach only its
  subscribers, each once and in the order published; a watch of an event, a name or an
  alias is told its end with a reason the model allows (see
  :meth:`ClusterModel._registration_disallowed`).
* **Settled states** (after :meth:`ClusterMachine.settle_and_check`, which runs the clock
  ``BOUND`` seconds with no fault changing meanwhile): a watch of an ended target has
  fired; so has every watch across a cut (``NoConnection`` once the heartbeats find it,
  or the dial's ``Timeout``); a message sent while its two hosts were calm (no fault from
  ``BOUND`` seconds before the send until now) to a process still alive has arrived; and
  every node's link and monitor tables hold exactly the model's watches (of local
  consumers, and of peers subscribed to local targets); every call older than its
  timeout has ended, unless its caller's host crashed; a subscriber of an event, calm
  with its producer since it subscribed, got every message published from a second after.

The model says nothing about exact instants: when a cut is found depends on where the
heartbeat timers stand, so timing-dependent outcomes are allowed sets, checked once the
clock has run past the heartbeat timeout.  Every process traps exits, so a link is told
as a message and never ends its consumer (``PubSubMachine`` covers exit cascades on one
node).

Hypothesis is a test dependency: import this module (or ``sim.testing``) from tests only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ergo import (
    PID,
    Actor,
    Alias,
    AliasUnknown,
    ErgoError,
    Event,
    EventUnknown,
    MessageDownAlias,
    MessageDownEvent,
    MessageDownPID,
    MessageDownProcessID,
    MessageEvent,
    MessageExitAlias,
    MessageExitEvent,
    MessageExitPID,
    MessageExitProcessID,
    NoConnection,
    Node,
    NotAllowed,
    ProcessID,
    ProcessIncarnation,
    ProcessTerminated,
    ProcessUnknown,
    Taken,
    TargetExist,
    TargetUnknown,
    TerminateReason,
    TerminateReasonKill,
    TerminateReasonNormal,
    TerminateReasonPanic,
    TerminateReasonShutdown,
    Timeout,
    Unregistered,
)

from ._journaling import PANIC, JournalingProcess
from .host import Host
from .scenario import node_options, route
from .sim import Sim

__all__ = ["ClusterJournal", "ClusterMachine", "ClusterModel", "Peer"]

#: the reasons of a cut-off: the connection was lost, or the dial to the peer gave up
_CUT = (NoConnection, Timeout)


class ClusterJournal:
    """What each process heard, in the order it handled it (every run of every host)."""

    def __init__(self) -> None:
        self.heard: dict[PID, list[Any]] = {}
        #: the outcomes of the callers' calls, in the order they came: (seq, outcome), the
        #: outcome ``("ok", reply)`` or ``("error", exception)``
        self.calls: list[tuple[int, tuple[str, Any]]] = []


def _send_all(p: Peer, items: list[tuple[PID, int]]) -> list[ErgoError | None]:
    """Send ``("m", sender, to, seq)`` to each ``to`` in one turn; what each send raised."""
    out: list[ErgoError | None] = []
    for to, seq in items:
        try:
            p.send(to, ("m", p.pid, to, seq))
            out.append(None)
        except ErgoError as e:
            out.append(e)
    return out


def _publish(p: Peer, name: str, token: Any, items: list[tuple[Event, int]]) -> None:
    """Publish ``("e", event, seq)`` for each item, in one turn."""
    for event, seq in items:
        p.send_event(name, token, ("e", event, seq))


_OPS: dict[str, Any] = {
    "link": lambda p, t: p.link(t),
    "monitor": lambda p, t: p.monitor(t),
    "unlink": lambda p, t: p.unlink(t),
    "demonitor": lambda p, t: p.demonitor(t),
    "send": _send_all,
    "echo": lambda p, seq: seq,
    "register_event": lambda p, name: p.register_event(name),
    "unregister_event": lambda p, name: p.unregister_event(name),
    "register_name": lambda p, name: p.register_name(name),
    "unregister_name": lambda p: p.unregister_name(),
    "create_alias": lambda p: p.create_alias(),
    "delete_alias": lambda p, alias: p.delete_alias(alias),
    "publish": _publish,
}


class Peer(JournalingProcess):
    """A process of the cluster machine: traps exits and writes down what it hears.

    ``init(journal)``.  A call ``(op, *args)`` makes it do ``op`` itself (``("link", t)``,
    ``("monitor", t)``, ``("unlink", t)``, ``("demonitor", t)``, ``("send", [(to, seq),
    ...])``, ``("echo", seq)``) and replies ``("ok", result)`` or ``("error", exception)``;
    the message ``("stop", reason)`` makes it stop with ``reason`` (raised; :data:`PANIC`: a plain exception)."""

    OPS = _OPS

    def init(self, journal: ClusterJournal) -> None:
        self.journal = journal
        self.trap_exit = True
        journal.heard[self.pid] = []

    def handle_event(self, message: MessageEvent) -> None:
        self.journal.heard[self.pid].append(message)


class Caller(Actor):
    """Makes one call and writes its outcome down: ``init(journal)``, then the message
    ``(to, seq, timeout)`` makes it call ``to`` with ``("echo", seq)`` (a :class:`Peer`
    replies ``("ok", seq)``), append ``(seq, outcome)`` to ``journal.calls`` and end.  A
    process of its own per call, so that a call never waits behind another."""

    def init(self, journal: ClusterJournal) -> None:
        self.journal = journal

    async def handle_message(self, from_: PID, message: Any) -> None:
        to, seq, timeout = message
        try:
            outcome: tuple[str, Any] = ("ok", await self.call(to, ("echo", seq), timeout))
        except ErgoError as e:
            outcome = ("error", e)
        self.journal.calls.append((seq, outcome))
        raise TerminateReasonNormal


# -- the model ---------------------------------------------------------------------------


@dataclass
class _Proc:
    pid: PID
    host: str
    alive: bool = True
    died_at: float | None = None
    #: what its watchers are told it ended with; None: it vanished with its host (a crash)
    reason: BaseException | None = None


@dataclass
class _Registration:
    """One registration of an event, a name or an alias (``target``), from its
    ``register_event`` (``register_name``, ``create_alias``) until it ends."""

    target: Any  # Event | ProcessID | Alias
    owner: PID
    host: str
    token: Any  # an event's
    since: float
    ended_at: float | None = None
    #: what its watchers are told it ended with (Unregistered, its owner's reason);
    #: None: it vanished with its host (a crash)
    reason: BaseException | None = None
    #: an event's sequence numbers published, and when
    published: dict[int, float] | None = None


@dataclass
class _Watch:
    consumer: PID
    target: Any  # PID | Event | ProcessID | Alias
    kind: str  # "link" | "monitor"
    created: float


@dataclass
class _Sent:
    seq: int
    at: float
    error: ErgoError | None


@dataclass
class _Call:
    seq: int
    host: str  # the caller's
    to: PID
    at: float
    timeout: float
    outcome: tuple[str, Any] | None = None
    #: the caller's host crashed before it had an outcome: there will be none
    abandoned: bool = False


class ClusterModel:
    """Who exists, who watches whom, what was sent, and which faults touched which hosts.

    Faults are kept as intervals of virtual time per pair of hosts (a partition either way)
    and per host (down from its crash until it is up again), so that the model can say
    whether two hosts were *calm* over a window: the runtime's guarantees that depend on
    timing (a loss, a ``NoConnection``) are allowed exactly when they were not.
    """

    def __init__(self, hosts: list[str], bound: float) -> None:
        self.hosts = hosts
        self.bound = bound
        self.now = 0.0
        self.up = dict.fromkeys(hosts, True)
        #: the creation of each host's node (its latest run)
        self.creation = dict.fromkeys(hosts, 0)
        #: directed cuts in force: (from host, to host), in the order they were made (a dict:
        #: nothing here iterates a set, so a program replays exactly)
        self.cuts: dict[tuple[str, str], None] = {}
        self._cut_since: dict[tuple[str, str], float] = {}
        self._cut_spans: dict[tuple[str, str], list[tuple[float, float]]] = {}
        self._down_since: dict[str, float] = {}
        self._down_spans: dict[str, list[tuple[float, float]]] = {h: [] for h in hosts}
        self.procs: dict[PID, _Proc] = {}
        #: the watches in force: (consumer, target, kind) -> watch
        self.watches: dict[tuple[PID, PID, str], _Watch] = {}
        #: the watches released (unlink, demonitor) in the step being run: the one notice
        #: already on its way to the consumer when it let go may still be heard
        self.released: dict[tuple[PID, PID, str], _Watch] = {}
        self.sent: dict[tuple[PID, PID], list[_Sent]] = {}
        self.last_seq: dict[tuple[PID, PID], int] = {}
        self.delivered: set[tuple[PID, PID, int]] = set()
        self.calls: dict[int, _Call] = {}
        #: the events, names and aliases registered now, and every registration ever (in order)
        self.events: dict[Event, _Registration] = {}
        self.names: dict[ProcessID, _Registration] = {}
        self.aliases: dict[Alias, _Registration] = {}
        self.registrations: list[_Registration] = []
        #: for each sequence number published: the registration it was published on
        self.published: dict[int, _Registration] = {}
        #: the last event seq each (subscriber, event) heard
        self.last_event: dict[tuple[PID, Event], int] = {}
        #: the watches of events each consumer was told the end of, and when
        self.told: dict[tuple[PID, Event, str], list[tuple[_Watch, float]]] = {}

    @staticmethod
    def _pair(a: str, b: str) -> tuple[str, str]:
        return (a, b) if a <= b else (b, a)

    def alive(self, pid: PID) -> bool:
        p = self.procs.get(pid)
        return p is not None and p.alive

    def live(self) -> list[PID]:
        return [pid for pid, p in self.procs.items() if p.alive]

    def cut_pairs(self) -> list[tuple[str, str]]:
        """The pairs of hosts with a cut in force (either way), sorted."""
        return sorted(dict.fromkeys(self._pair(a, b) for a, b in self.cuts))

    def cut_between(self, a: str, b: str) -> bool:
        return (a, b) in self.cuts or (b, a) in self.cuts

    def disturbed(self, a: str, b: str, since: float) -> bool:
        """Whether a fault touched hosts ``a`` and ``b`` (a partition between them, either
        of them down) at any time from ``since`` until now."""
        spans = list(self._down_spans[a]) + list(self._down_spans[b])
        spans += [(t, self.now) for h, t in self._down_since.items() if h in (a, b)]
        if a != b:
            pair = self._pair(a, b)
            spans += self._cut_spans.get(pair, [])
            if pair in self._cut_since:
                spans.append((self._cut_since[pair], self.now))
        return any(end >= since and start <= self.now for start, end in spans)

    # -- faults ----------------------------------------------------------------------------

    def partition(self, a: str, b: str, oneway: bool) -> None:
        self.cuts[(a, b)] = None
        if not oneway:
            self.cuts[(b, a)] = None
        self._cut_since.setdefault(self._pair(a, b), self.now)

    def repair(self, a: str, b: str) -> None:
        self.cuts.pop((a, b), None)
        self.cuts.pop((b, a), None)
        pair = self._pair(a, b)
        if pair in self._cut_since:
            self._cut_spans.setdefault(pair, []).append((self._cut_since.pop(pair), self.now))

    def crash(self, host: str) -> None:
        self.up[host] = False
        self._down_since[host] = self.now
        for p in self.procs.values():
            if p.host == host and p.alive:
                p.alive, p.died_at, p.reason = False, self.now, None
        for key in [k for k in self.watches if self.procs[k[0]].host == host]:
            del self.watches[key]
        for c in self.calls.values():
            if c.host == host and c.outcome is None:
                c.abandoned = True
        for table in (self.events, self.names, self.aliases):
            for target in [t for t, r in table.items() if r.host == host]:
                self._ended(target, None)

    def restarted(self, host: str, creation: int) -> None:
        self.up[host] = True
        self.creation[host] = creation
        self._down_spans[host].append((self._down_since.pop(host), self.now))

    # -- operations ------------------------------------------------------------------------

    def spawn(self, pid: PID, host: str) -> None:
        self.procs[pid] = _Proc(pid, host)

    def watch(self, consumer: PID, target: Any, kind: str) -> tuple[type[ErgoError], ...]:
        """The errors the node may raise for the watch (empty: it must succeed); if it
        succeeds the caller records it with :meth:`watched`."""
        if (consumer, target, kind) in self.watches:
            return (TargetExist,)
        if target.node == consumer.node:  # local: checked at once
            t = type(target)
            if t is not PID:
                r = self._table(target).get(target)
                if r is None:  # (an alias of an earlier run may be told so)
                    old = t is Alias and target.creation != consumer.creation
                    return (_UNKNOWN[t], ProcessIncarnation) if old else (_UNKNOWN[t],)
                return (NotAllowed,) if r.owner == consumer and t is not Event else ()
            if target == consumer:
                return (NotAllowed,)
            if not self.alive(target):
                return (ProcessUnknown, ProcessIncarnation) if target.creation != consumer.creation \
                    else (ProcessUnknown,)
        return ()  # a remote watch returns at once; a refusal arrives as its notice

    def watched(self, consumer: PID, target: Any, kind: str) -> None:
        self.watches[(consumer, target, kind)] = _Watch(consumer, target, kind, self.now)

    def in_force(self, target: Any) -> bool:
        """Whether ``target`` (a PID, an event, a name, an alias) is there to be watched now."""
        return self.alive(target) if type(target) is PID else target in self._table(target)

    def _table(self, target: Any) -> dict[Any, _Registration]:
        t = type(target)
        return self.events if t is Event else self.names if t is ProcessID else self.aliases

    def release(self, consumer: PID, target: PID, kind: str) -> None:
        """``consumer`` let go of its watch (unlink, demonitor), which the node accepted."""
        self.released[(consumer, target, kind)] = self.watches.pop((consumer, target, kind))

    def end(self, pid: PID, reason: BaseException) -> None:
        p = self.procs[pid]
        p.alive, p.died_at, p.reason = False, self.now, reason
        for key in [k for k in self.watches if k[0] == pid]:
            del self.watches[key]
        for table in (self.events, self.names, self.aliases):
            for target in [t for t, r in table.items() if r.owner == pid]:
                self._ended(target, reason)
        # watches of it on its own node fire at once; remote ones when the Terminate arrives

    # -- events, names, aliases ------------------------------------------------------------

    def register(self, target: Any, owner: PID) -> tuple[type[ErgoError], ...]:
        """The errors registering ``target`` (an event, a name) may raise (empty: it must
        succeed, and the caller records it with :meth:`registered`)."""
        if target in self._table(target):
            return (Taken,)
        if type(target) is ProcessID and any(r.owner == owner for r in self.names.values()):
            return (Taken,)  # a process has one name at most
        return ()

    def registered(self, target: Any, owner: PID, token: Any = None) -> None:
        r = _Registration(target, owner, self.procs[owner].host, token, self.now,
                          published={} if type(target) is Event else None)
        self._table(target)[target] = r
        self.registrations.append(r)

    def _ended(self, target: Any, reason: BaseException | None) -> None:
        r = self._table(target).pop(target)
        r.ended_at, r.reason = self.now, reason

    def unregister(self, target: Any) -> None:
        """Its owner unregistered ``target`` (an event, a name, an alias)."""
        self._ended(target, Unregistered())

    def publish(self, event: Event, seq: int) -> None:
        r = self.events[event]
        assert r.published is not None
        r.published[seq] = self.now
        self.published[seq] = r

    def heard_event(self, subscriber: PID, message: MessageEvent) -> None:
        """``subscriber`` got ``message``, published as ``("e", event, seq)``."""
        tag, event, seq = message.message
        assert tag == "e" and message.event == event, f"{subscriber} got {message!r}, not as published"
        r = self.published.get(seq)
        assert r is not None and r.target == event, f"{subscriber} got seq {seq} of {event}, never published on it"
        assert r.published is not None
        at = r.published[seq]
        watches = [w for k in ("link", "monitor") for w in (self.watches.get((subscriber, event, k)),
                                                             self.released.get((subscriber, event, k)))
                   if w is not None]
        # or one it was told the end of since: the notice goes ahead of the messages in its
        # mailbox (an exit signal is urgent, a down message a system one; events are main)
        watches += [w for k in ("link", "monitor") for w, told in self.told.get((subscriber, event, k), ())
                    if at <= told]
        assert watches, f"{subscriber} got seq {seq} of {event} without subscribing to it"
        assert any(at >= w.created - self.bound for w in watches), (
            f"{subscriber} got seq {seq} of {event}, published at {at:.3f}, long before it subscribed")
        key = (subscriber, event)
        last = self.last_event.get(key, -1)
        assert seq != last, f"{subscriber} got seq {seq} of {event} twice (a duplicate)"
        assert seq > last, f"{subscriber} got seq {seq} of {event} after seq {last}: reordered"
        self.last_event[key] = seq

    def runs(self, w: _Watch) -> list[_Registration]:
        """The registrations of ``w``'s target (an event, a name, an alias) its subscription
        may have found: those in force at some time from when it was made until its request
        must have landed (``bound`` later: a remote name may be unregistered and registered
        again meanwhile)."""
        return [r for r in self.registrations if r.target == w.target and r.since <= w.created + self.bound
                and (r.ended_at is None or r.ended_at >= w.created)]

    def _registration_disallowed(self, w: _Watch, reason: BaseException) -> str | None:
        runs = self.runs(w)
        th = w.target.node.split("@", 1)[1]
        cut_off = self.disturbed(self.procs[w.consumer].host, th, w.created - self.bound)
        if isinstance(reason, _CUT):
            return None if cut_off else "no fault touched the two hosts, so nothing was cut off"
        if isinstance(reason, _UNKNOWN[type(w.target)]):
            # no registration when it was made, or one that ended about then
            registered = [r for r in runs if r.since <= w.created]
            early = not registered or any(r.ended_at is not None and r.ended_at <= w.created + self.bound
                                          for r in registered)
            return None if early or cut_off else "it was registered when it was watched"
        if isinstance(reason, ProcessIncarnation):  # an alias has its node's creation
            old = type(w.target) is Alias and w.target.creation < self.creation[th]
            return None if old or cut_off else "it is not of an earlier run of its node"
        if any(r.reason is not None and reason == r.reason for r in runs):
            return None
        return f"no registration it watched ended so ({[(r.since, r.ended_at, r.reason) for r in runs]})"

    def send(self, sender: PID, to: PID, seq: int, error: ErgoError | None) -> None:
        self.sent.setdefault((sender, to), []).append(_Sent(seq, self.now, error))

    def call(self, seq: int, host: str, to: PID, timeout: float) -> None:
        self.calls[seq] = _Call(seq, host, to, self.now, timeout)

    # -- what the nodes say ----------------------------------------------------------------

    def heard_message(self, recipient: PID, message: Any) -> None:
        """``recipient`` handled ``("m", sender, to, seq)``: check and record it."""
        _, sender, to, seq = message
        assert to == recipient, (
            f"{recipient} got a message sent to {to}: an old creation's PID reached a new run ({message})")
        key = (sender, recipient)
        sent = {s.seq: s for s in self.sent.get(key, ())}
        assert seq in sent, f"{recipient} got seq {seq} from {sender}, which was never sent to it"
        assert sent[seq].error is None, (
            f"{recipient} got seq {seq} from {sender}, whose send raised {sent[seq].error!r}")
        last = self.last_seq.get(key, -1)
        assert seq != last and (sender, recipient, seq) not in self.delivered, (
            f"{recipient} got seq {seq} from {sender} twice (a duplicate)")
        assert seq > last, f"{recipient} got seq {seq} from {sender} after seq {last}: reordered"
        self.last_seq[key] = seq
        self.delivered.add((sender, recipient, seq))

    def heard_notice(self, consumer: PID, kind: str, target: Any, reason: BaseException) -> None:
        """``consumer`` was told that ``target`` is gone (by a link or a monitor): it must
        watch it in the model, and ``reason`` must be one the model allows."""
        w = self.watches.pop((consumer, target, kind), None)
        if w is None:  # told in the very step it let go: the notice was already queued to it
            w = self.released.pop((consumer, target, kind), None)
        assert w is not None, (
            f"{consumer} was told {target} is gone ({kind}, {reason!r}) with no such {kind} in force: "
            "a duplicate notice, or one of a watch that should have been released")
        why = self._disallowed(w, reason)
        assert why is None, f"{consumer} was told {target} is gone ({kind}) with {reason!r}: {why}"
        if type(target) is Event:
            self.told.setdefault((consumer, target, kind), []).append((w, self.now))

    def heard_call(self, seq: int, outcome: tuple[str, Any]) -> None:
        """The call ``seq`` ended with ``outcome``: its own reply, or an error the model allows."""
        c = self.calls[seq]
        assert c.outcome is None and not c.abandoned, f"call {seq} to {c.to} ended twice"
        c.outcome = outcome
        status, value = outcome
        t = self.procs[c.to]
        alive_then = t.alive or (t.died_at is not None and t.died_at > c.at)
        th = t.host
        cut_off = self.disturbed(c.host, th, c.at - self.bound)
        if status == "ok":
            assert value == ("ok", seq), f"call {seq} to {c.to} got {value!r}: not its own reply"
            assert alive_then, f"call {seq} to {c.to} got a reply, but {c.to} had ended before it was made"
            return
        why: str | None = None
        if isinstance(value, NoConnection):
            why = None if cut_off else "no fault touched the two hosts"
        elif isinstance(value, Timeout):
            # no reply: only when cut off (a target that ends first is told at once)
            why = None if cut_off else "no fault touched the two hosts"
        elif isinstance(value, ProcessTerminated):
            # the request reached it, and it ended before it replied (Erlang's rule)
            why = None if t.died_at is not None and t.died_at >= c.at else "the target did not end after the call"
        elif isinstance(value, ProcessUnknown):
            early = t.died_at is not None and t.died_at <= c.at + self.bound
            why = None if early or (not t.alive and cut_off) else "the target was alive"
        elif isinstance(value, ProcessIncarnation):
            why = None if c.to.creation < self.creation[th] or cut_off else "its node was not restarted"
        else:
            why = "an error the model never allows"
        assert why is None, f"call {seq} from {c.host} to {c.to} (at {c.at:.3f}) failed with {value!r}: {why}"

    def _disallowed(self, w: _Watch, reason: BaseException) -> str | None:
        if type(w.target) is not PID:
            return self._registration_disallowed(w, reason)
        t = self.procs.get(w.target)
        c = self.procs[w.consumer]
        dead = t is not None and not t.alive
        if dead and t is not None and t.reason is not None and reason == t.reason:
            return None
        th = t.host if t is not None else w.target.node.split("@", 1)[1]
        cut_off = self.disturbed(c.host, th, w.created - self.bound)
        if isinstance(reason, _CUT):
            return None if cut_off else "no fault touched the two hosts, so nothing was cut off"
        if isinstance(reason, ProcessIncarnation):
            # of an earlier run; or (today) of the new run, told over the old run's connection
            # before this node found that its host restarted (see tests/test_cluster_model.py)
            old = w.target.creation < self.creation[th]
            return None if old or cut_off else "its node was not restarted"
        if isinstance(reason, ProcessUnknown):
            assert t is not None
            early = dead and t.died_at is not None and t.died_at <= w.created + self.bound
            return None if early or (dead and cut_off) else "the target was alive when it was watched"
        if not dead:
            return "the target is alive"
        return f"it ended with {t.reason!r}" if t is not None else "unknown target"


# -- the machine --------------------------------------------------------------------------


def _from(strategy: Any) -> st.SearchStrategy[Any]:
    return st.runner().flatmap(strategy)


def _live(machine: ClusterMachine) -> st.SearchStrategy[PID]:
    return st.sampled_from(machine.model.live())


def _any(machine: ClusterMachine) -> st.SearchStrategy[PID]:
    """Mostly a live process (on any host), sometimes one that is gone (or of an old run)."""
    m = machine.model
    return st.one_of(st.sampled_from(m.live()), st.sampled_from(m.live()), st.sampled_from(list(m.procs)))


def _burst(machine: ClusterMachine) -> st.SearchStrategy[list[PID]]:
    """Recipients of a burst: up to four processes, each sent one to four messages in a row."""
    runs = st.lists(st.tuples(_any(machine), st.integers(1, 4)), min_size=1, max_size=4)
    return runs.map(lambda rs: [to for to, n in rs for _ in range(n)])


def _watching(kind: str) -> Any:
    def pairs(machine: ClusterMachine) -> st.SearchStrategy[tuple[PID, PID]]:
        return st.sampled_from([(c, t) for (c, t, k) in machine.model.watches if k == kind])
    return pairs


_EVENTS = ["e1", "e2"]
_NAMES = ["r1", "r2"]
#: the error a watch of a registered target that is not there gets
_UNKNOWN: dict[type, type[ErgoError]] = {Event: EventUnknown, ProcessID: ProcessUnknown, Alias: AliasUnknown}


def _event(machine: ClusterMachine) -> st.SearchStrategy[Event]:
    """Mostly an event registered now, else a name of the few on any node (registered
    once, or never)."""
    m = machine.model
    some = st.builds(lambda n, h: Event(n, machine.node_name(h)), st.sampled_from(_EVENTS),
                     st.sampled_from(machine.hosts))
    return st.one_of(st.sampled_from(list(m.events)), some) if m.events else some


def _name_or_alias(machine: ClusterMachine) -> st.SearchStrategy[Any]:
    """Mostly a name or an alias registered now, else one of the few process names on any
    node, or an alias that was (registered once, or never)."""
    m = machine.model
    some = st.builds(lambda n, h: ProcessID(n, machine.node_name(h)), st.sampled_from(_NAMES),
                     st.sampled_from(machine.hosts))
    now = [*m.names, *m.aliases]
    gone = [r.target for r in m.registrations if type(r.target) is Alias and r.ended_at is not None]
    choices = [some]
    if now:
        choices += [st.sampled_from(now)] * 2
    if gone:
        choices.append(st.sampled_from(gone))
    return st.one_of(choices)


def _registered_target(machine: ClusterMachine) -> st.SearchStrategy[Any]:
    return st.one_of(_event(machine), _event(machine), _name_or_alias(machine))


def _registry(machine: ClusterMachine) -> st.SearchStrategy[tuple[str, tuple[Any, ...]]]:
    """A step of the registry the state allows: (method, arguments)."""
    m = machine.model
    live = st.sampled_from(m.live())
    step = tuple[str, tuple[Any, ...]]
    event: st.SearchStrategy[step] = st.builds(lambda p, n: ("register_event", (p, n)), live, st.sampled_from(_EVENTS))
    # events twice as likely as names: their messages have the most to check
    choices = [event, event, st.builds(lambda p, n: ("register_name", (p, n)), live, st.sampled_from(_NAMES))]
    if len(m.aliases) < 6:
        choices.append(st.builds(lambda p: ("create_alias", (p,)), live))
    held = [*m.events.values(), *m.names.values(), *m.aliases.values()]
    if held:  # as likely as a registration: registrations do not pile up
        choices += [st.builds(lambda r: ("unregister", (r,)), st.sampled_from(held))] * 3
    return st.one_of(choices)


def _event_registration(machine: ClusterMachine) -> st.SearchStrategy[_Registration]:
    return st.sampled_from(list(machine.model.events.values()))


def _up_host(machine: ClusterMachine) -> st.SearchStrategy[str]:
    return st.sampled_from([h for h in machine.hosts if machine.model.up[h]])


def _faults(machine: ClusterMachine) -> st.SearchStrategy[tuple[str, tuple[Any, ...]]]:
    """A fault the state allows: (method, arguments)."""
    m = machine.model
    hs = machine.hosts
    pairs = [(a, b) for a in hs for b in hs if a != b]
    # mostly two hosts whose nodes are connected: a cut between idle hosts shows little
    talking = [(a, b) for a, b in pairs if m.up[a] and m.up[b] and machine.connected(a, b)]
    cuts = st.one_of(st.sampled_from(talking), st.sampled_from(pairs)) if talking else st.sampled_from(pairs)
    partition: st.SearchStrategy[tuple[str, tuple[Any, ...]]] = st.builds(
        lambda p, oneway, wait: ("partition", (p[0], p[1], oneway, wait)), cuts, st.booleans(), st.booleans())
    choices = [partition, partition]  # twice as likely as a crash, which ends every process of a host
    cut = m.cut_pairs()
    if cut:  # as likely as a new partition: cuts do not pile up, and reconnections follow
        choices.append(st.sampled_from(cut).map(lambda p: ("heal", p)))
        choices.append(st.just(("heal_all", ())))
    up = [h for h in hs if m.up[h]]
    if len(up) >= 2:
        choices.append(st.builds(lambda h, wait: ("crash", (h, wait)), st.sampled_from(up), st.booleans()))
    down = [h for h in hs if not m.up[h]]
    if down:
        choices.append(st.sampled_from(down).map(lambda h: ("restart", (h,))))
    return st.one_of(choices)


#: the notices a watch gives: message type -> (the watch's kind, the field naming its target)
_NOTICES: dict[type, tuple[str, str]] = {
    MessageDownPID: ("monitor", "pid"), MessageExitPID: ("link", "pid"),
    MessageDownEvent: ("monitor", "event"), MessageExitEvent: ("link", "event"),
    MessageDownProcessID: ("monitor", "process_id"), MessageExitProcessID: ("link", "process_id"),
    MessageDownAlias: ("monitor", "alias"), MessageExitAlias: ("link", "alias"),
}
_STOPS = [TerminateReasonNormal, TerminateReasonShutdown, TerminateReason("custom"), PANIC, "kill"]
_MAX_PROCESSES = 9


class ClusterMachine(RuleBasedStateMachine):
    """Spawns, links, monitors, sends, exits and faults on three simulated hosts, against
    :class:`ClusterModel` (see the module's docstring for what is checked, and when).

    Run it as a test with ``TestCluster = ClusterMachine.TestCase`` (set its ``settings``)
    or ``hypothesis.stateful.run_state_machine_as_test(ClusterMachine)``.  Subclass to
    change ``seed`` or the heartbeat settings, or to plant a bug: ``plant(node)`` is called
    on every node as it starts (a host's restart starts a new one).
    """

    seed = 1
    hosts = ["host1", "host2", "host3"]
    heartbeat_interval = 1.0
    heartbeat_timeout = 3.0
    connect_timeout = 2.0

    def __init__(self) -> None:
        super().__init__()
        #: how long after a fault its effects may still show: a cut is found within the
        #: heartbeat timeout plus an interval, a dial gives up after connect_timeout
        self.bound = self.heartbeat_timeout + 2 * self.heartbeat_interval + self.connect_timeout + 1.0
        self.sim = Sim(self.seed)
        self.journal = ClusterJournal()
        self.model = ClusterModel(list(self.hosts), self.bound)
        self.nodes: dict[str, Node] = {}
        self._seen: dict[PID, int] = {}
        self._seq: dict[PID, int] = {}
        self._calls_seen = 0
        self._event_seq = 0
        self.options = node_options(heartbeat_interval=self.heartbeat_interval,
                                    heartbeat_timeout=self.heartbeat_timeout,
                                    connect_timeout=self.connect_timeout)
        for h in self.hosts:
            self.sim.on_start(h, self._start)
            self.model.creation[h] = self.nodes[h].creation

    def node_name(self, host: str) -> str:
        return f"n{self.hosts.index(host) + 1}@{host}"

    def _start(self, host: Host) -> None:
        node = host.start_node(self.node_name(host.name), self.options)
        self.plant(node)
        self.nodes[host.name] = node
        for other in self.hosts:
            if other != host.name:
                route(node, self.node_name(other))

    def connected(self, a: str, b: str) -> bool:
        """Whether the node of host ``a`` holds a connection to that of ``b``."""
        return any(str.__str__(n) == self.node_name(b) for n in self.nodes[a].network().nodes())

    def plant(self, node: Node) -> None:
        """Change a node as it starts (a test plants a bug here); nothing by default."""

    # -- driving ---------------------------------------------------------------------------

    def settle(self) -> None:
        """Run everything due now, and nothing later."""
        env = self.sim.world.env
        while env.peek() <= env.now:
            env.step()
        self.model.now = self.sim.now

    def node_of(self, pid: PID) -> Node:
        return self.nodes[self.model.procs[pid].host]

    def ask(self, pid: PID, op: str, *args: Any) -> tuple[str, Any]:
        """Make ``pid`` do ``op`` itself: ``("ok", result)`` or ``("error", exception)``."""
        try:
            answer: tuple[str, Any] = self.node_of(pid).call(pid, (op, *args))
        except ErgoError as e:
            answer = ("error", e)
        self.settle()
        return answer

    # -- rules -----------------------------------------------------------------------------

    @initialize(counts=st.lists(st.integers(1, 2), min_size=3, max_size=3))
    def first_processes(self, counts: list[int]) -> None:
        """``counts`` processes on each host; the first of each registers event ``e1``
        (events are there from the start: a program spends its steps on their messages)."""
        for host, n in zip(self.hosts, counts, strict=False):
            for _ in range(n):
                self.spawn(host)
            first = next(pid for pid, p in self.model.procs.items() if p.host == host)
            self.register_event(first, _EVENTS[0])

    @precondition(lambda self: len(self.model.live()) < _MAX_PROCESSES and any(self.model.up.values()))
    @rule(host=_from(_up_host))
    def spawn(self, host: str) -> None:
        pid = self.nodes[host].spawn(Peer, self.journal)
        self.model.spawn(pid, host)
        self.settle()

    def _watch(self, consumer: PID, target: Any, kind: str) -> None:
        self.model.now = self.sim.now
        may_fail = self.model.watch(consumer, target, kind)
        status, result = self.ask(consumer, kind, target)
        if status == "ok":
            assert not may_fail, f"{kind} {consumer} -> {target} succeeded; the model expects {may_fail}"
            self.model.watched(consumer, target, kind)
        else:
            assert isinstance(result, may_fail), f"{kind} {consumer} -> {target} raised {result!r}; " \
                f"the model expects {'success' if not may_fail else may_fail}"

    @precondition(lambda self: self.model.live())
    @rule(consumer=_from(_live), watched=_from(_any))
    def link(self, consumer: PID, watched: PID) -> None:
        self._watch(consumer, watched, "link")

    @precondition(lambda self: self.model.live())
    @rule(consumer=_from(_live), watched=_from(_any))
    def monitor(self, consumer: PID, watched: PID) -> None:
        self._watch(consumer, watched, "monitor")

    @precondition(lambda self: self.model.live())
    @rule(consumer=_from(_live), watched=_from(_registered_target), kind=st.sampled_from(["link", "monitor"]))
    def watch_registered(self, consumer: PID, watched: Any, kind: str) -> None:
        """Link to or monitor an event (two times in three), a registered name or an alias
        of any node (mostly one registered now)."""
        self._watch(consumer, watched, kind)

    @precondition(lambda self: self.model.live())
    @rule(what=_from(_registry))
    def registry(self, what: tuple[str, tuple[Any, ...]]) -> None:
        """One rule for registering events and names, making aliases and letting them go,
        so that these are not most of what happens."""
        how, args = what
        getattr(self, how)(*args)

    def _register(self, pid: PID, target: Any, op: str, *args: Any) -> None:
        m = self.model
        m.now = self.sim.now
        may_fail = m.register(target, pid)
        status, result = self.ask(pid, op, *args)
        if status == "ok":
            assert not may_fail, f"{op} {target} succeeded; the model expects {may_fail}"
            m.registered(target, pid, result)
        else:
            assert isinstance(result, may_fail), f"{op} {target} raised {result!r}; " \
                f"the model expects {'success' if not may_fail else may_fail}"

    def register_event(self, pid: PID, name: str) -> None:
        self._register(pid, Event(name, self.node_of(pid).name), "register_event", name)

    def register_name(self, pid: PID, name: str) -> None:
        self._register(pid, ProcessID(name, self.node_of(pid).name), "register_name", name)

    def create_alias(self, pid: PID) -> None:
        self.model.now = self.sim.now
        status, alias = self.ask(pid, "create_alias")
        assert status == "ok" and type(alias) is Alias, f"create_alias raised {alias!r}"
        self.model.registered(alias, pid)

    def unregister(self, r: _Registration) -> None:
        """Its owner unregisters an event or its name, or deletes an alias."""
        self.model.now = self.sim.now
        t = type(r.target)
        if t is Event:
            status, result = self.ask(r.owner, "unregister_event", r.target.name)
        elif t is ProcessID:
            status, result = self.ask(r.owner, "unregister_name")
        else:
            status, result = self.ask(r.owner, "delete_alias", r.target)
        assert status == "ok", f"unregistering {r.target} by its owner raised {result!r}"
        self.model.unregister(r.target)

    @precondition(lambda self: self.model.events)
    @rule(r=_from(_event_registration), n=st.integers(1, 3))
    def publish(self, r: _Registration, n: int) -> None:
        """The producer publishes ``n`` messages in one turn, each ``("e", event, seq)``."""
        m = self.model
        m.now = self.sim.now
        items = []
        for _ in range(n):
            self._event_seq += 1
            items.append((r.target, self._event_seq))
            m.publish(r.target, self._event_seq)
        status, result = self.ask(r.owner, "publish", r.target.name, r.token, items)
        assert status == "ok", f"publishing on {r.target} by its producer raised {result!r}"

    def _unwatch(self, consumer: PID, target: PID, kind: str) -> None:
        """Let go of a watch the model holds; unless the node told the consumer of it in
        this same step (``TargetUnknown``: the notice was on its way), the node accepts."""
        self.observe()
        status, result = self.ask(consumer, "unlink" if kind == "link" else "demonitor", target)
        key = (consumer, target, kind)
        if status == "ok":
            self.model.release(consumer, target, kind)
            self.observe()
            self.model.released.clear()
            return
        assert isinstance(result, TargetUnknown), f"{'un' if kind == 'link' else 'de'}{kind} {consumer} -> " \
            f"{target} raised {result!r}"
        self.observe()
        assert key not in self.model.watches, (
            f"{consumer} could not let go of its {kind} of {target} (TargetUnknown) and was never told of it")

    @precondition(lambda self: any(k == "link" for (_, _, k) in self.model.watches))
    @rule(pair=_from(_watching("link")))
    def unlink(self, pair: tuple[PID, PID]) -> None:
        self._unwatch(*pair, "link")

    @precondition(lambda self: any(k == "monitor" for (_, _, k) in self.model.watches))
    @rule(pair=_from(_watching("monitor")))
    def demonitor(self, pair: tuple[PID, PID]) -> None:
        self._unwatch(*pair, "monitor")

    @precondition(lambda self: self.model.live())
    @rule(sender=_from(_live), recipients=_from(_burst))
    def send(self, sender: PID, recipients: list[PID]) -> None:
        """A burst in one turn of the sender, a message to each of ``recipients`` in order:
        the frames of one turn go out together, where one that took the wrong link of the
        pool would overtake another."""
        items = []
        for to in recipients:
            self._seq[sender] = self._seq.get(sender, 0) + 1
            items.append((to, self._seq[sender]))
        self.model.now = self.sim.now
        status, errors = self.ask(sender, "send", items)
        assert status == "ok", errors
        m = self.model
        for (to, seq), error in zip(items, errors, strict=True):
            m.send(sender, to, seq, error)
            if error is not None:
                th = to.node.split("@", 1)[1]
                calm = not m.disturbed(m.procs[sender].host, th, m.now - m.bound)
                assert not (calm and m.alive(to)), f"a send to live {to} raised {error!r} with no fault about"

    @precondition(lambda self: self.model.live() and any(self.model.up.values()))
    @rule(host=_from(_up_host), to=_from(_any), timeout=st.sampled_from([0.5, 2.0]))
    def call(self, host: str, to: PID, timeout: float) -> None:
        """A process of ``host`` calls ``to`` (a :class:`Caller` of its own, which ends with
        the call): its own reply, or an error the model allows, within ``timeout``."""
        node = self.nodes[host]
        caller = node.spawn(Caller, self.journal)
        seq = len(self.model.calls) + 1
        self.model.now = self.sim.now
        self.model.call(seq, host, to, timeout)
        node.send(caller, (to, seq, timeout))
        self.settle()

    @precondition(lambda self: self.model.live())
    @rule(pid=_from(_live), how=st.sampled_from(_STOPS))
    def exit(self, pid: PID, how: Any) -> None:
        node = self.node_of(pid)
        self.model.now = self.sim.now
        if how == "kill":
            node.kill(pid)
            reason: BaseException = TerminateReasonKill
        else:
            node.send(pid, ("stop", how))
            reason = TerminateReasonPanic if how == PANIC else how
        self.model.end(pid, reason)
        self.settle()

    @rule(what=_from(_faults))
    def fault(self, what: tuple[str, Any]) -> None:
        """One rule for every fault, so that faults are not most of what happens."""
        how, arg = what
        getattr(self, how)(*arg)

    def partition(self, a: str, b: str, oneway: bool, wait: bool = False) -> None:
        """Cut ``a`` -> ``b`` (and ``b`` -> ``a`` unless ``oneway``); ``wait``: then run the
        clock until the cut must have been found (``bound`` seconds)."""
        if oneway:
            self.sim.partition_oneway(a, b)
        else:
            self.sim.partition(a, b)
        self.model.now = self.sim.now
        self.model.partition(a, b, oneway)
        self.settle()
        if wait:
            self.advance_time(self.bound)

    def heal(self, a: str, b: str) -> None:
        """Repair the cuts between ``a`` and ``b``, both ways."""
        self.sim.repair(a, b)
        self.model.now = self.sim.now
        self.model.repair(a, b)
        self.settle()

    def heal_all(self) -> None:
        """Repair every cut."""
        for a, b in self.model.cut_pairs():
            self.heal(a, b)

    def crash(self, host: str, wait: bool = False) -> None:
        """Crash ``host``: its node vanishes without a word; ``wait``: then run the clock
        until its peers must have found out (``bound`` seconds)."""
        self.sim.crash(host)
        self.model.now = self.sim.now
        self.model.crash(host)
        self.settle()
        if wait:
            self.advance_time(self.bound)

    def restart(self, host: str) -> None:
        """Boot a crashed host again: its node starts with a new creation (no processes)."""
        before = self.nodes[host].creation
        self.sim.restart(host)
        h = self.sim.host(host)
        self.sim.run_until(lambda: h.up, timeout=5.0)
        self.settle()
        assert self.nodes[host].creation > before, f"{host} restarted with creation {self.nodes[host].creation}"
        self.model.restarted(host, self.nodes[host].creation)

    @rule(seconds=st.sampled_from([0.001, 0.003, 0.01, 0.3, 1.5]))
    def advance_time(self, seconds: float) -> None:
        self.sim.run_for(seconds)
        self.settle()

    @rule(seconds=st.sampled_from([0.002, 0.05, 3.0]))
    def advance_more_time(self, seconds: float) -> None:
        """Time passing is the commonest thing of all: twice the chance of any other rule
        (without it most connections would still be dialing when a fault comes)."""
        self.advance_time(seconds)

    @rule()
    def settle_and_check(self) -> None:
        """Run the clock ``bound`` seconds with no fault changing, then check the settled state."""
        self.sim.run_for(self.bound)
        self.settle()
        self.observe()
        self.check_settled()

    # -- checks ----------------------------------------------------------------------------

    @invariant()
    def observe(self) -> None:
        """What the processes heard since the last look agrees with the model."""
        m = self.model
        m.now = self.sim.now
        for pid, heard in self.journal.heard.items():
            start = self._seen.get(pid, 0)
            for message in heard[start:]:
                t = type(message)
                if t is tuple and len(message) == 4 and message[0] == "m":
                    m.heard_message(pid, message)
                elif t is MessageEvent:
                    m.heard_event(pid, message)
                elif t in _NOTICES:
                    kind, field = _NOTICES[t]
                    m.heard_notice(pid, kind, getattr(message, field), message.reason)
                else:
                    raise AssertionError(f"{pid} heard something the model never sends: {message!r}")
            self._seen[pid] = len(heard)
        calls = self.journal.calls
        for seq, outcome in calls[self._calls_seen:]:
            m.heard_call(seq, outcome)
        self._calls_seen = len(calls)

    def check_settled(self) -> None:
        """After ``bound`` quiet seconds: what must have happened has, and the tables agree."""
        m = self.model
        for w in m.watches.values():
            if type(w.target) is not PID:
                self._check_settled_registered(w)
                continue
            t = m.procs.get(w.target)
            ch = m.procs[w.consumer].host
            th = t.host if t is not None else w.target.node.split("@", 1)[1]
            assert t is not None and t.alive, (
                f"{w.consumer} still {w.kind}s {w.target}, which ended at {t.died_at if t else '?'}: never told")
            assert not m.cut_between(ch, th), (
                f"{w.consumer} still {w.kind}s {w.target} across the cut {ch} / {th}: no NoConnection "
                f"{self.bound} s after")
        for (sender, to), sent in m.sent.items():
            if not m.alive(to):
                continue
            sh, th = m.procs[sender].host, m.procs[to].host
            for s in sent:
                if s.error is None and (sender, to, s.seq) not in m.delivered:
                    assert m.disturbed(sh, th, s.at - m.bound), (
                        f"seq {s.seq} from {sender} to {to} (sent at {s.at:.3f}) is lost with no fault about")
        for c in m.calls.values():
            assert c.outcome is not None or c.abandoned or m.now < c.at + c.timeout, (
                f"call {c.seq} from {c.host} to {c.to} (at {c.at:.3f}, timeout {c.timeout} s) never ended")
        for host in self.hosts:
            if m.up[host]:
                self.check_tables(host)

    def _check_settled_registered(self, w: _Watch) -> None:
        """A watch of an event, a name or an alias: it fired if the target ended or a cut is
        in force; and for an event, the consumer heard every message published on it, since
        the subscription took hold, while the two hosts were calm."""
        m = self.model
        ch = m.procs[w.consumer].host
        eh = w.target.node.split("@", 1)[1]
        r = m._table(w.target).get(w.target)
        assert r is not None and r.since <= w.created + m.bound, (
            f"{w.consumer} still {w.kind}s {w.target}, which ended (or was never registered): never told")
        assert not m.cut_between(ch, eh), (
            f"{w.consumer} still {w.kind}s {w.target} across the cut {ch} / {eh}: no NoConnection "
            f"{self.bound} s after")
        if r.published is None or m.disturbed(ch, eh, w.created - m.bound):
            return
        last = m.last_event.get((w.consumer, w.target), -1)
        missed = [seq for seq, at in r.published.items() if at >= max(w.created, r.since) + 1.0 and seq > last]
        assert not missed, f"{w.consumer} {w.kind}s {w.target} and never got seq {missed} of it, with no fault about"

    def check_tables(self, host: str) -> None:
        """The node's link and monitor tables hold the model's watches, and nothing else."""
        m = self.model
        node = self.nodes[host]
        name = node.name
        for pid, p in m.procs.items():
            if p.host != host or not p.alive:
                continue
            proc = node._processes.get(pid.id)
            assert proc is not None and proc._pid == pid, f"{pid} is not running on {name}"
            for kind, attr in (("link", "_linked"), ("monitor", "_monitored")):
                got = set(getattr(proc, attr) or ())
                want = {t for (c, t, k) in m.watches if c == pid and k == kind}
                assert got == want, f"{pid} {kind}s {sorted(got)}, the model says {sorted(want)}"
        pubsub = node._pubsub
        for kind, table in (("link", pubsub._links), ("monitor", pubsub._monitors)):
            local: dict[Any, set[PID]] = {}
            remote: dict[Any, set[str]] = {}
            for target, consumers in table.items():
                for c in consumers:
                    if c.node == name:
                        local.setdefault(target, set()).add(c)
                    else:
                        remote.setdefault(target, set()).add(str.__str__(c.node))
            want_local: dict[Any, set[PID]] = {}
            want_remote: dict[Any, set[str]] = {}
            for (c, t, k) in m.watches:
                if k != kind:
                    continue
                if m.procs[c].host == host:
                    want_local.setdefault(t, set()).add(c)
                elif t.node == name and m.in_force(t):
                    want_remote.setdefault(t, set()).add(str.__str__(c.node))
            assert local == want_local, f"{name} {kind}s of its processes: {local}, the model says {want_local}"
            assert remote == want_remote, f"{name} {kind}s by peers: {remote}, the model says {want_remote}"

    def teardown(self) -> None:
        """A last settled check, unless the run already failed."""
        if sys.exc_info()[1] is not None:
            return
        self.settle_and_check()

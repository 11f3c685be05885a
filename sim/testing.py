"""Hypothesis strategies and a state-machine harness over the simulated node, offered to users.

:class:`PubSubMachine` is a Hypothesis ``RuleBasedStateMachine`` that drives one simulated
node through links, monitors, names, aliases, events, exit signals, kills and the passing
of time, and checks after every step that the node agrees with :class:`PubSubModel`, an
explicit model of who must hear what.  The processes are :class:`Recorder` actors that
write every message they get, and the reason they die of, into a :class:`Journal` the
machine owns; operations are made *by* the process that owns them (a link is made by its
consumer) through ``node.call(pid, (op, *args))``.

The model runs the node's delivery discipline, not just its rules: a notice is queued in
the watcher's mailbox (exits urgent, downs system) and the watcher handles its queue when
its turn comes in a first-in first-out ready queue, as both backends do.  That is what
decides a cascade: a process that is told of two deaths dies of the first exit it
handles.  What a process heard is compared as a multiset, so the check does not depend on
the order of notices of different kinds.

:class:`ClusterMachine` (from ``sim.testing_cluster``) is the same idea across three
simulated hosts with partitions, crashes and restarts (docs/simulation.md, "Property
tests across nodes").

This module (and ``sim.testing_cluster``) imports Hypothesis, a test dependency: nothing
else in ``sim`` imports it, so import ``sim.testing`` from tests only.  ``docs/testing.md`` shows how to use it.
"""

from __future__ import annotations

import sys
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ergo import (
    PID,
    Alias,
    AliasOwner,
    AliasUnknown,
    Atom,
    ErgoError,
    Event,
    EventOwner,
    EventUnknown,
    ExitSignal,
    LinkExit,
    LogOptions,
    MessageDownAlias,
    MessageDownEvent,
    MessageDownPID,
    MessageDownProcessID,
    MessageEvent,
    MessageEventStart,
    MessageEventStop,
    MessageExitAlias,
    MessageExitEvent,
    MessageExitPID,
    MessageExitProcessID,
    NameUnknown,
    Node,
    NodeOptions,
    NotAllowed,
    ProcessID,
    ProcessOptions,
    ProcessState,
    ProcessUnknown,
    Taken,
    TargetExist,
    TargetUnknown,
    TerminateReason,
    TerminateReasonKill,
    TerminateReasonNormal,
    TerminateReasonPanic,
    TerminateReasonShutdown,
    Unregistered,
    unwrap_reason,
)

from ._journaling import PANIC, JournalingProcess
from .sim import Sim

__all__ = [
    "OPS",
    "ClusterJournal",
    "ClusterMachine",
    "ClusterModel",
    "Peer",
    "PANIC",
    "Journal",
    "PubSubMachine",
    "PubSubModel",
    "Recorder",
    "check_node",
    "exit_reasons",
    "stop_reasons",
]

#: ask a :class:`Recorder` to stop with this and it raises a plain exception: a panic

_EXIT = {PID: MessageExitPID, ProcessID: MessageExitProcessID, Alias: MessageExitAlias, Event: MessageExitEvent}
_DOWN = {PID: MessageDownPID, ProcessID: MessageDownProcessID, Alias: MessageDownAlias, Event: MessageDownEvent}


def exit_reasons() -> st.SearchStrategy[BaseException]:
    """Reasons for ``send_exit``: Ergo's four and one of the user's own."""
    return st.sampled_from([TerminateReasonNormal, TerminateReasonShutdown, TerminateReasonKill,
                            TerminateReasonPanic, TerminateReason("custom")])


def stop_reasons() -> st.SearchStrategy[Any]:
    """What a :class:`Recorder` is told to stop with: a reason it raises, or :data:`PANIC`."""
    return st.sampled_from([TerminateReasonNormal, TerminateReasonShutdown, TerminateReason("custom"), PANIC])


# -- the processes -----------------------------------------------------------------------


class Journal:
    """What each process heard (in arrival order) and what it terminated with."""

    def __init__(self) -> None:
        self.heard: dict[PID, list[Any]] = {}
        self.reasons: dict[PID, BaseException] = {}


def _spawn_child(p: Recorder, trap: bool, link_parent: bool, link_child: bool) -> PID:
    options = ProcessOptions(link_parent=link_parent, link_child=link_child)
    return p.spawn(Recorder, p.journal, trap, options=options)


def _stop_after(p: Recorder, reason: Any, delay: float) -> None:
    p.send_after(p.pid, ("stop", reason), delay)


def _set_trap(p: Recorder, trap: bool) -> None:
    p.trap_exit = trap


#: what a Recorder does when called with ``(op, *args)``: each is made by the process itself
OPS: dict[str, Callable[..., Any]] = {
    "link": lambda p, t: p.link(t),
    "unlink": lambda p, t: p.unlink(t),
    "monitor": lambda p, t: p.monitor(t),
    "demonitor": lambda p, t: p.demonitor(t),
    "register_name": lambda p, name: p.register_name(name),
    "unregister_name": lambda p: p.unregister_name(),
    "create_alias": lambda p: p.create_alias(),
    "delete_alias": lambda p, alias: p.delete_alias(alias),
    "register_event": lambda p, name, notify: p.register_event(name, notify),
    "unregister_event": lambda p, name: p.unregister_event(name),
    "send_exit": lambda p, to, reason: p.send_exit(to, reason),
    "spawn": _spawn_child,
    "stop_after": _stop_after,
    "trap": _set_trap,
}


class Recorder(JournalingProcess):
    """A process that writes down everything it hears and what it dies of.

    ``init(journal, trap)``.  A call ``(op, *args)`` makes the process do ``op`` itself
    (``("link", target)`` links *this* process to ``target``) and replies
    ``("ok", result)`` or ``("error", exception)``.  The message ``("stop", reason)`` makes
    it stop with ``reason`` (raised), or panic for :data:`PANIC`.
    """

    OPS = OPS

    def init(self, journal: Journal, trap: bool = False) -> None:
        self.journal = journal
        self.trap_exit = trap
        journal.heard[self.pid] = []

    def handle_event(self, message: MessageEvent) -> None:
        self.journal.heard[self.pid].append(message)

    def terminate(self, reason: BaseException) -> None:
        self.journal.reasons[self.pid] = reason


# -- the model -----------------------------------------------------------------------------

_URGENT, _SYSTEM, _MAIN = range(3)


class _Proc:
    """The model of one process: what it holds, what it watches, what waits in its mailbox."""

    def __init__(self, pid: PID, parent: PID, trap: bool) -> None:
        self.pid = pid
        self.parent = parent
        self.trap = trap
        self.alive = True
        self.state = "sleep"  # sleep | ready (in the ready queue) | running | dead
        self.queues: tuple[deque[Any], deque[Any], deque[Any]] = (deque(), deque(), deque())
        self.name: Atom | None = None
        self.aliases: list[Alias] = []
        self.linked: dict[Any, None] = {}
        self.monitored: dict[Any, None] = {}
        self.heard: list[Any] = []
        self.reason: BaseException | None = None


class _Event:
    def __init__(self, producer: PID, notify: bool) -> None:
        self.producer = producer
        self.notify = notify
        self.subscriptions = 0


class PubSubModel:
    """Who watches what on one node, and who must hear what when something goes away.

    Ergo's rules: links and monitors are one-way and fire once; a target goes away when its
    process terminates (its reason) or when its name is unregistered, its alias deleted or
    its event unregistered (``Unregistered``).  A link queues an exit signal (urgent), a
    monitor a down message (system).  A process that traps exits hears exit signals as
    messages, except an exit signal from its parent about its parent; one that does not
    dies of the first it handles: ``LinkExit(target, reason)`` for a link,
    ``ExitSignal(sender, reason)`` for ``send_exit``; its own watchers are told ``reason``
    itself.  ``kill`` is immediate and untrappable.

    Methods named for an operation return the error class the node must raise for it
    (None: it must succeed) and, if it succeeds, apply it and run the node until quiet.
    """

    def __init__(self, node: Atom, core: PID) -> None:
        self.node = node
        self.core = core
        self.now = 0.0
        self.procs: dict[PID, _Proc] = {}
        self.names: dict[Atom, PID] = {}
        self.aliases: dict[Alias, PID] = {}
        self.events: dict[Event, _Event] = {}
        self.links: dict[Any, dict[PID, None]] = {}
        self.monitors: dict[Any, dict[PID, None]] = {}
        self.timers: list[tuple[float, PID, Any]] = []
        self._ready: deque[PID] = deque()

    def alive(self, pid: PID) -> bool:
        p = self.procs.get(pid)
        return p is not None and p.alive

    def live(self) -> list[PID]:
        return [pid for pid, p in self.procs.items() if p.alive]

    # -- operations ------------------------------------------------------------------------

    def spawn(self, pid: PID, parent: PID, trap: bool, link_parent: bool = False, link_child: bool = False) -> None:
        self.procs[pid] = _Proc(pid, parent, trap)
        if link_parent:
            self._watch(pid, parent, self.links, "linked")
        if link_child:
            self._watch(parent, pid, self.links, "linked")

    def watch(self, consumer: PID, target: Any, how: str) -> type[ErgoError] | None:
        """``how`` is ``link`` or ``monitor``."""
        error = self._target_error(consumer, target)
        mine = "linked" if how == "link" else "monitored"
        if error is None and target in getattr(self.procs[consumer], mine):
            error = TargetExist
        if error is None:
            self._as(consumer, self._watch, consumer, target, self.links if how == "link" else self.monitors, mine)
        return error

    def unwatch(self, consumer: PID, target: Any, how: str) -> type[ErgoError] | None:
        """``how`` is ``link`` or ``monitor``: unlink or demonitor."""
        mine = getattr(self.procs[consumer], "linked" if how == "link" else "monitored")
        if target not in mine:
            return TargetUnknown

        def undo() -> None:
            del mine[target]
            self._drop(self.links if how == "link" else self.monitors, target, consumer)

        self._as(consumer, undo)
        return None

    def register_name(self, pid: PID, name: Atom) -> type[ErgoError] | None:
        if name in self.names or self.procs[pid].name is not None:
            return Taken
        self.names[name] = pid
        self.procs[pid].name = name
        return None

    def unregister_name(self, pid: PID) -> type[ErgoError] | None:
        p = self.procs[pid]
        if p.name is None:
            return NameUnknown
        name, p.name = p.name, None
        del self.names[name]
        self._as(pid, self._fire, ProcessID(name, self.node), Unregistered(), pid)
        return None

    def create_alias(self, pid: PID, alias: Alias) -> None:
        self.aliases[alias] = pid
        self.procs[pid].aliases.append(alias)

    def delete_alias(self, pid: PID, alias: Alias) -> type[ErgoError] | None:
        p = self.procs[pid]
        if alias not in p.aliases:
            return AliasOwner
        p.aliases.remove(alias)
        del self.aliases[alias]
        self._as(pid, self._fire, alias, Unregistered(), pid)
        return None

    def register_event(self, pid: PID, event: Event, notify: bool) -> type[ErgoError] | None:
        if event in self.events:
            return Taken
        self.events[event] = _Event(pid, notify)
        return None

    def unregister_event(self, pid: PID, event: Event) -> type[ErgoError] | None:
        entry = self.events.get(event)
        if entry is None:
            return EventUnknown
        if entry.producer != pid:
            return EventOwner
        del self.events[event]
        self._as(pid, self._fire, event, Unregistered(), pid)
        return None

    def send_exit(self, from_: PID, to: PID, reason: BaseException) -> type[ErgoError] | None:
        """An exit signal from a process, or from the node's core (``from_`` is its PID)."""
        if not self.alive(to):
            return ProcessUnknown
        item = ("exit", from_, None, MessageExitPID(from_, reason))
        if from_ == self.core:
            self._push(to, _URGENT, item, from_)
            self._run()
        else:
            self._as(from_, self._push, to, _URGENT, item, from_)
        return None

    def kill(self, pid: PID) -> type[ErgoError] | None:
        if not self.alive(pid):
            return ProcessUnknown
        self._terminate(self.procs[pid], TerminateReasonKill)
        self._run()
        return None

    def stop(self, pid: PID, reason: Any) -> type[ErgoError] | None:
        """A ``("stop", reason)`` message: the process raises the reason (or panics)."""
        if not self.alive(pid):
            return ProcessUnknown
        self._push(pid, _MAIN, ("stop", reason), self.core)
        self._run()
        return None

    def set_trap(self, pid: PID, trap: bool) -> None:
        self.procs[pid].trap = trap

    def stop_after(self, pid: PID, reason: Any, due: float) -> None:
        self.timers.append((due, pid, reason))

    def free_time(self, due: float) -> float:
        """The first time at or after ``due`` when no timer is due: two timers that fire at
        the same instant would interleave their cascades, which this model does not do."""
        taken = {t for t, _, _ in self.timers}
        while due in taken:
            due += 0.25
        return due

    def advance(self, until: float) -> None:
        """Let the clock reach ``until``: due timers deliver their stops, one at a time."""
        due = sorted(t for t in self.timers if t[0] <= until)
        self.timers = [t for t in self.timers if t[0] > until]
        for when, pid, reason in due:
            self.now = when
            if self.alive(pid):
                self._push(pid, _MAIN, ("stop", reason), pid)  # send_after to itself
                self._run()
        self.now = until

    # -- the rules of watching -------------------------------------------------------------

    def _target_error(self, consumer: PID, target: Any) -> type[ErgoError] | None:
        t = type(target)
        if t is PID:
            if target == consumer:
                return NotAllowed
            return None if self.alive(target) else ProcessUnknown
        if t is ProcessID:
            holder = self.names.get(target.name)
            if holder is None:
                return ProcessUnknown
            return NotAllowed if holder == consumer else None
        if t is Alias:
            owner = self.aliases.get(target)
            if owner is None:
                return AliasUnknown
            return NotAllowed if owner == consumer else None
        return None if target in self.events else EventUnknown

    def _watch(self, consumer: PID, target: Any, table: dict[Any, Any], mine: str) -> None:
        getattr(self.procs[consumer], mine)[target] = None
        table.setdefault(target, {})[consumer] = None
        entry = self.events.get(target) if type(target) is Event else None
        if entry is not None:
            entry.subscriptions += 1
            if entry.notify and entry.subscriptions == 1:
                self._push(entry.producer, _SYSTEM, ("notice", MessageEventStart(target.name)), self.core)

    def _drop(self, table: dict[Any, Any], target: Any, consumer: PID) -> None:
        consumers = table[target]
        del consumers[consumer]
        if not consumers:
            del table[target]
        entry = self.events.get(target) if type(target) is Event else None
        if entry is not None:
            entry.subscriptions -= 1
            if entry.notify and entry.subscriptions == 0:
                self._push(entry.producer, _SYSTEM, ("notice", MessageEventStop(target.name)), self.core)

    def _fire(self, target: Any, reason: BaseException, from_: PID) -> None:
        """``target`` went away: each consumer hears of it once, and forgets it."""
        for consumer in self.links.pop(target, {}):
            del self.procs[consumer].linked[target]
            self._push(consumer, _URGENT, ("exit", from_, target, _EXIT[type(target)](target, reason)), from_)
        for consumer in self.monitors.pop(target, {}):
            del self.procs[consumer].monitored[target]
            self._push(consumer, _SYSTEM, ("notice", _DOWN[type(target)](target, reason)), from_)

    def _terminate(self, p: _Proc, reason: BaseException) -> None:
        p.alive = False
        p.state = "dead"
        p.reason = reason
        for queue in p.queues:
            queue.clear()
        # it stops watching, then everything it was goes away: PID, name, aliases, events
        for target in p.linked:
            self._drop(self.links, target, p.pid)
        for target in p.monitored:
            self._drop(self.monitors, target, p.pid)
        p.linked, p.monitored = {}, {}
        name, p.name = p.name, None
        if name is not None:
            del self.names[name]
        aliases, p.aliases = p.aliases, []
        for alias in aliases:
            del self.aliases[alias]
        events = [e for e, entry in self.events.items() if entry.producer == p.pid]
        for event in events:
            del self.events[event]
        reason = unwrap_reason(reason)  # terminate() was told how it died; watchers hear why
        self._fire(p.pid, reason, p.pid)
        if name is not None:
            self._fire(ProcessID(name, self.node), reason, p.pid)
        for target in [*aliases, *events]:
            self._fire(target, reason, p.pid)

    # -- delivery: mailboxes and the ready queue ------------------------------------------

    def _push(self, pid: PID, queue: int, item: tuple[Any, ...], sender: PID | None = None) -> None:
        """Queue ``item`` from ``sender``; a signal (urgent or system) never overtakes what
        the same sender queued before it in a lower queue, as the node's ``_push_signal``."""
        p = self.procs.get(pid)
        if p is None or not p.alive:
            return
        if sender is not None:
            for lower in (_MAIN, _SYSTEM):
                if lower > queue and any(s == sender for s, _ in p.queues[lower]):
                    queue = lower
                    break
        p.queues[queue].append((sender, item))
        if p.state == "sleep":
            p.state = "ready"
            self._ready.append(pid)

    def _as(self, pid: PID, fn: Callable[..., Any], *args: Any) -> None:
        """Do ``fn`` inside a handler of ``pid`` (a call it got), then run until quiet."""
        p = self.procs[pid]
        p.state = "running"
        fn(*args)
        self._handle_batch(p, _BATCH - 1)  # the call was the first item of its batch
        self._run()

    def _run(self) -> None:
        while self._ready:
            p = self.procs[self._ready.popleft()]
            if p.state == "ready":
                p.state = "running"
                self._handle_batch(p, _BATCH)

    def _handle_batch(self, p: _Proc, n: int) -> None:
        while n and p.alive:
            queue = next((q for q in p.queues if q), None)
            if queue is None:
                break
            self._handle(p, queue.popleft()[1])
            n -= 1
        if p.alive:
            if any(p.queues):
                p.state = "ready"
                self._ready.append(p.pid)
            else:
                p.state = "sleep"

    def _handle(self, p: _Proc, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "notice":
            p.heard.append(item[1])
        elif kind == "stop":
            self._terminate(p, TerminateReasonPanic if item[1] == PANIC else item[1])
        else:
            _, from_, target, message = item
            if p.trap and not (from_ == p.parent and type(message) is MessageExitPID):
                p.heard.append(message)
            elif target is None:
                self._terminate(p, ExitSignal(from_, message.reason))
            else:
                self._terminate(p, LinkExit(target, message.reason))


#: how many mailbox items a process handles in one run before it goes to the back of the line
_BATCH = 100


# -- the state machine ---------------------------------------------------------------------

_NAMES = ["a", "b", "c"]
_EVENTS = ["e1", "e2"]
_DELAYS = [0.5, 1.0, 2.0, 3.0]
_MAX_PROCESSES = 8
_MAX_ALIASES = 4


def _live(machine: PubSubMachine) -> st.SearchStrategy[PID]:
    return st.sampled_from(machine.model.live())


def _any_pid(machine: PubSubMachine) -> st.SearchStrategy[PID]:
    """Mostly a live process, sometimes one that is gone."""
    return st.one_of(st.sampled_from(machine.model.live()), st.sampled_from(list(machine.model.procs)))


def _target(machine: PubSubMachine) -> st.SearchStrategy[Any]:
    """Half the time something that can be watched now, else anything ever seen (gone ones too)."""
    m = machine.model
    node = m.node
    now = [*m.live(), *(ProcessID(n, node) for n in m.names), *m.aliases, *m.events]
    ever = [*m.procs, *(ProcessID(n, node) for n in _NAMES), *machine.every_alias, *(Event(e, node) for e in _EVENTS)]
    return st.one_of(st.sampled_from(now), st.sampled_from(ever)) if now else st.sampled_from(ever)


def _watching(how: str) -> Callable[[PubSubMachine], st.SearchStrategy[tuple[PID, Any]]]:
    """Mostly a (consumer, target) that is linked (monitored) now, else any live consumer and target."""

    def pairs(machine: PubSubMachine) -> st.SearchStrategy[tuple[PID, Any]]:
        m = machine.model
        table = m.links if how == "link" else m.monitors
        now = [(c, t) for t, consumers in table.items() for c in consumers]
        anything = st.tuples(_live(machine), _target(machine))
        return st.one_of(st.sampled_from(now), st.sampled_from(now), anything) if now else anything

    return pairs


def _own_alias(machine: PubSubMachine) -> st.SearchStrategy[tuple[PID, Alias]]:
    """Mostly an alias and its owner, sometimes an alias and someone else (or a deleted one)."""
    m = machine.model
    own = [(owner, a) for a, owner in m.aliases.items()]
    anyone = st.tuples(_live(machine), st.sampled_from(machine.every_alias))
    return st.one_of(st.sampled_from(own), anyone) if own else anyone


def _holder(what: str) -> Callable[[PubSubMachine], st.SearchStrategy[PID]]:
    """Mostly a process that holds a name (``names``) or produces an event (``events``), else any."""

    def holders(machine: PubSubMachine) -> st.SearchStrategy[PID]:
        m = machine.model
        have = list(m.names.values()) if what == "names" else [e.producer for e in m.events.values()]
        have = [pid for pid in have if m.alive(pid)]
        return st.one_of(st.sampled_from(have), _live(machine)) if have else _live(machine)

    return holders


def _from(strategy: Callable[[PubSubMachine], st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """A strategy built from the machine's state when the rule runs."""
    return st.runner().flatmap(strategy)


_EXITS = ["kill", "stop", "stop_later", "send_exit", "node_send_exit"]


class PubSubMachine(RuleBasedStateMachine):
    """Links, monitors, names, aliases, events and exits on one simulated node, against the model.

    Run it as a test with ``TestPubSub = PubSubMachine.TestCase`` (set
    ``TestPubSub.settings``), or with ``hypothesis.stateful.run_state_machine_as_test``.
    Subclass to change ``seed`` or ``node_name``, or to plant a bug: ``plant(node)`` is
    called on each new node before the first step.
    """

    seed = 1
    node_name = "model@localhost"

    def __init__(self) -> None:
        super().__init__()
        self.sim = Sim(self.seed)
        self.node: Node = self.sim.start_node(self.node_name, NodeOptions(log=LogOptions(default_logger=False)))
        self.plant(self.node)
        self.journal = Journal()
        self.model = PubSubModel(self.node.name, self.node.pid)
        self.every_alias: list[Alias] = []

    def plant(self, node: Node) -> None:
        """Change the node before the run (a test plants a bug here); nothing by default."""

    # -- driving the node ------------------------------------------------------------------

    def settle(self) -> None:
        """Run everything due now, and nothing later (``Sim.run`` would also run the clock)."""
        world = self.sim.world
        env = world.env
        while env.peek() <= env.now:
            env.step()
            world.steps[0] += 1

    def ask(self, pid: PID, op: str, *args: Any) -> Any:
        """Make ``pid`` do ``op`` itself; its result, or the error it raised as :class:`_Failed`."""
        try:
            status, result = self.node.call(pid, (op, *args))
        except ErgoError as e:
            status, result = "error", e
        self.settle()
        return result if status == "ok" else _Failed(result)

    def outside(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Do ``fn(*args)`` from outside any process; None, or the error it raised as :class:`_Failed`."""
        try:
            fn(*args)
        except ErgoError as e:
            return _Failed(e)
        finally:
            self.settle()
        return None

    def expect(self, what: str, result: Any, error: type[ErgoError] | None) -> Any:
        """The node raised ``error`` for ``what`` (None: it succeeded), as the model says."""
        got = type(result.error) if isinstance(result, _Failed) else None
        assert got is error, f"{what}: the model expects {_name(error)}, the node gave {_name(got)} ({result!r})"
        return result

    # -- rules -----------------------------------------------------------------------------

    @initialize(traps=st.lists(st.booleans(), min_size=1, max_size=4))
    def first_processes(self, traps: list[bool]) -> None:
        for trap in traps:
            self.spawn(trap)

    @precondition(lambda self: len(self.model.live()) < _MAX_PROCESSES)
    @rule(trap=st.booleans())
    def spawn(self, trap: bool) -> None:
        pid = self.node.spawn(Recorder, self.journal, trap)
        self.model.spawn(pid, self.node.pid, trap)

    @precondition(lambda self: 0 < len(self.model.live()) < _MAX_PROCESSES)
    @rule(parent=_from(_live), trap=st.booleans(), link_parent=st.booleans(), link_child=st.booleans())
    def spawn_child(self, parent: PID, trap: bool, link_parent: bool, link_child: bool) -> None:
        pid = self.expect("spawn", self.ask(parent, "spawn", trap, link_parent, link_child), None)
        self.model.spawn(pid, parent, trap, link_parent, link_child)

    @precondition(lambda self: self.model.live())
    @rule(consumer=_from(_live), watched=_from(_target))
    def link(self, consumer: PID, watched: Any) -> None:
        self.expect(f"link {watched}", self.ask(consumer, "link", watched), self.model.watch(consumer, watched, "link"))

    @precondition(lambda self: self.model.live())
    @rule(consumer=_from(_live), watched=_from(_target))
    def monitor(self, consumer: PID, watched: Any) -> None:
        self.expect(f"monitor {watched}", self.ask(consumer, "monitor", watched),
                    self.model.watch(consumer, watched, "monitor"))

    @precondition(lambda self: self.model.live())
    @rule(pair=_from(_watching("link")))
    def unlink(self, pair: tuple[PID, Any]) -> None:
        consumer, watched = pair
        self.expect(f"unlink {watched}", self.ask(consumer, "unlink", watched),
                    self.model.unwatch(consumer, watched, "link"))

    @precondition(lambda self: self.model.live())
    @rule(pair=_from(_watching("monitor")))
    def demonitor(self, pair: tuple[PID, Any]) -> None:
        consumer, watched = pair
        self.expect(f"demonitor {watched}", self.ask(consumer, "demonitor", watched),
                    self.model.unwatch(consumer, watched, "monitor"))

    @precondition(lambda self: self.model.live())
    @rule(pid=_from(_live), name=st.sampled_from(_NAMES))
    def register_name(self, pid: PID, name: str) -> None:
        self.expect(f"register_name {name}", self.ask(pid, "register_name", name),
                    self.model.register_name(pid, Atom(name)))

    @precondition(lambda self: self.model.live())
    @rule(pid=_from(_holder("names")))
    def unregister_name(self, pid: PID) -> None:
        self.expect("unregister_name", self.ask(pid, "unregister_name"), self.model.unregister_name(pid))

    @precondition(lambda self: self.model.live() and len(self.model.aliases) < _MAX_ALIASES)
    @rule(pid=_from(_live))
    def create_alias(self, pid: PID) -> None:
        alias = self.expect("create_alias", self.ask(pid, "create_alias"), None)
        self.every_alias.append(alias)
        self.model.create_alias(pid, alias)

    @precondition(lambda self: self.every_alias and self.model.live())
    @rule(pair=_from(_own_alias))
    def delete_alias(self, pair: tuple[PID, Alias]) -> None:
        pid, alias = pair
        self.expect(f"delete_alias {alias}", self.ask(pid, "delete_alias", alias), self.model.delete_alias(pid, alias))

    @precondition(lambda self: self.model.live())
    @rule(pid=_from(_live), name=st.sampled_from(_EVENTS), notify=st.booleans())
    def register_event(self, pid: PID, name: str, notify: bool) -> None:
        event = Event(name, self.node.name)
        self.expect(f"register_event {name}", self.ask(pid, "register_event", name, notify),
                    self.model.register_event(pid, event, notify))

    @precondition(lambda self: self.model.live())
    @rule(pid=_from(_holder("events")), name=st.sampled_from(_EVENTS))
    def unregister_event(self, pid: PID, name: str) -> None:
        event = Event(name, self.node.name)
        self.expect(f"unregister_event {name}", self.ask(pid, "unregister_event", name),
                    self.model.unregister_event(pid, event))

    @precondition(lambda self: self.model.live())
    @rule(pid=_from(_live), trap=st.booleans())
    def set_trap(self, pid: PID, trap: bool) -> None:
        self.expect("trap", self.ask(pid, "trap", trap), None)
        self.model.set_trap(pid, trap)

    @precondition(lambda self: self.model.live())
    @rule(how=st.sampled_from(_EXITS), sender=_from(_live), to=_from(_any_pid), exit_reason=exit_reasons(),
          stop_reason=stop_reasons(), delay=st.sampled_from(_DELAYS))
    def end(self, how: str, sender: PID, to: PID, exit_reason: BaseException, stop_reason: Any,
            delay: float) -> None:
        """One rule for every way to end a process, so that ending is not most of what happens."""
        if how == "kill":
            self.expect(f"kill {to}", self.outside(self.node.kill, to), self.model.kill(to))
        elif how == "stop":
            self.expect(f"stop {to}", self.outside(self.node.send, to, ("stop", stop_reason)),
                        self.model.stop(to, stop_reason))
        elif how == "stop_later":
            due = self.model.free_time(self.sim.now + delay)
            self.expect("stop_after", self.ask(sender, "stop_after", stop_reason, due - self.sim.now), None)
            self.model.stop_after(sender, stop_reason, due)
        elif how == "send_exit":
            self.expect(f"send_exit {to}", self.ask(sender, "send_exit", to, exit_reason),
                        self.model.send_exit(sender, to, exit_reason))
        else:  # from the node's core: the parent of every process it spawned, so untrappable for them
            self.expect(f"node.send_exit {to}", self.outside(self.node.send_exit, to, exit_reason),
                        self.model.send_exit(self.node.pid, to, exit_reason))

    @rule(seconds=st.sampled_from(_DELAYS))
    def advance_time(self, seconds: float) -> None:
        self.sim.run_for(seconds)
        self.settle()
        self.model.advance(self.sim.now)

    # -- checks ----------------------------------------------------------------------------

    @invariant()
    def node_agrees_with_model(self) -> None:
        check_node(self.node, self.model, self.journal)

    def teardown(self) -> None:
        """The final check: kill the survivors one by one; each death must tell exactly whom the
        model says, and in the end nothing is left watched, named, aliased or registered."""
        if sys.exc_info()[1] is not None:
            return  # the run failed or was cut short: that is the report
        for pid in self.model.live():
            if self.model.alive(pid):
                self.expect(f"kill {pid}", self.outside(self.node.kill, pid), self.model.kill(pid))
                check_node(self.node, self.model, self.journal)
        assert self.node._pubsub.size() == (0, 0, 0), f"left behind: {self.node._pubsub.size()}"
        assert not self.node._names and not self.node._aliases and not self.node._processes


class _Failed:
    """A failed operation's error, kept apart from results that are exceptions."""

    def __init__(self, error: ErgoError) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"raised {self.error!r}"


def _name(error: type[ErgoError] | None) -> str:
    return "success" if error is None else error.__name__


def check_node(node: Node, model: PubSubModel, journal: Journal) -> None:
    """Assert that ``node`` is in the state ``model`` describes, and that every process heard
    (as a multiset) and died of exactly what the model says."""
    live = {p._pid: p for p in node._processes.values()}
    assert set(live) == set(model.live()), f"live processes: node {sorted(live)}, model {sorted(model.live())}"
    for pid, m in model.procs.items():
        heard = Counter(journal.heard.get(pid, ()))
        assert heard == Counter(m.heard), (
            f"{pid} heard {_diff(heard, Counter(m.heard))}; all it heard: {journal.heard.get(pid)}")
        assert journal.reasons.get(pid) == m.reason, (
            f"{pid} terminated with {journal.reasons.get(pid)!r}, the model says {m.reason!r}")
        p = live.get(pid)
        if p is None:
            continue
        assert p._state is ProcessState.SLEEP and not p._has_items(), f"{pid} is not quiet: {p._state}"
        assert set(p._linked or ()) == set(m.linked), f"{pid} links to {set(p._linked or ())}, model {set(m.linked)}"
        assert set(p._monitored or ()) == set(m.monitored), (
            f"{pid} monitors {set(p._monitored or ())}, model {set(m.monitored)}")
        assert p._trap_exit == m.trap and p._name == m.name and list(p._aliases or ()) == m.aliases, pid
    pubsub = node._pubsub
    for what, table, expected in (("links", pubsub._links, model.links), ("monitors", pubsub._monitors,
                                                                              model.monitors)):
        got = {t: set(c) for t, c in table.items()}
        want = {t: set(c) for t, c in expected.items()}
        assert got == want, f"{what}: node {got}, model {want}"
    events = {e: (x.producer, x.notify, x.consumers) for e, x in pubsub._events.items()}
    want_events = {e: (x.producer, x.notify, x.subscriptions) for e, x in model.events.items()}
    assert events == want_events, f"events: node {events}, model {want_events}"
    assert {n: p._pid for n, p in node._names.items()} == model.names, "names"
    # the model makes no meta-processes: every alias belongs to a Process
    assert {a: r._pid for a, r in node._aliases.items()} == model.aliases, "aliases"  # type: ignore[attr-defined]


def _diff(got: Counter[Any], want: Counter[Any]) -> str:
    return f"{dict(got - want) or 'nothing'} the model does not expect, and missed {dict(want - got) or 'nothing'}"


# the same harness across a simulated cluster of three hosts (sim/testing_cluster.py)
from .testing_cluster import ClusterJournal, ClusterMachine, ClusterModel, Peer  # noqa: E402

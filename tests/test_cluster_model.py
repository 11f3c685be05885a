"""Links, monitors and messages across three simulated hosts with faults, against a model.

``sim.testing.ClusterMachine`` spawns processes on three nodes (one per host), links,
monitors, sends bursts, ends processes, partitions hosts (both ways and one way), repairs,
crashes and restarts hosts (a new creation) and lets time pass; after every step it
checks per sender-recipient order, no duplicates, no message to an old creation's PID
in a new run and the reasons of notices, and after each quiet phase longer than the
heartbeat timeout that every watch cut off was told (``NoConnection``), that nothing sent
between calm hosts was lost, and that every node's tables hold the model's watches.  The
planted-bug tests show it would notice a runtime that broke each of those.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

import sim
from ergo import (
    Actor,
    ErgoError,
    Event,
    MessageDownPID,
    MessageEvent,
    MessageExitAlias,
    MessageExitEvent,
    Node,
    ProcessIncarnation,
)
from ergo.network.connection import UP
from ergo.wire import enp
from sim.scenario import cluster, route
from sim.testing import ClusterMachine

#: the programs the tests here run: derandomized (the same programs every run), no example
#: database, no shrinking (a planted bug's report is the whole program; shrinking would
#: cost seconds a bug).  The real runtime runs 120 programs of up to 50 steps (~10 s); a
#: planted bug may take up to 300, and each is found within the first few dozen.
PROGRAMS = settings(derandomize=True, database=None, max_examples=120, stateful_step_count=50, deadline=None,
                    report_multiple_bugs=False, phases=[Phase.explicit, Phase.generate])
HUNT = settings(PROGRAMS, max_examples=300)


def test_the_real_runtime_passes():
    run_state_machine_as_test(ClusterMachine, settings=PROGRAMS)


# -- found by the machine ----------------------------------------------------------------


class _Watcher(Actor):
    def init(self) -> None:
        self.heard: list[Any] = []

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        self.monitor(request)
        return "ok"

    def handle_message(self, from_: Any, message: Any) -> None:
        self.heard.append(message)


@pytest.mark.parametrize("gap", [0.001, 0.003, 0.005])
def test_two_nodes_dialing_each_other_keep_one_connection_and_every_monitor(gap: float):
    """n3 dials n1 (a monitor); ``gap`` later, before that connection is up on n1's side,
    n1 dials n3 (a monitor the other way).  n3's dial wins; n1's own dial is refused
    ("already connected"), and its end used to take the connection that won down with
    it: both monitors fired NoConnection with no fault at all (first found by the
    machine: monitor, advance 0.001 s, monitor the other way)."""
    s = sim.Sim(1)
    n1, _n2, n3 = cluster(s, 3)
    a, b, c = n1.spawn(_Watcher), n1.spawn(_Watcher), n3.spawn(_Watcher)
    n3.call(c, a)
    s.run_for(gap)
    n1.call(b, c)
    s.run_for(10.0)
    heard = [n1._processes[b.id].heard, n3._processes[c.id].heard]  # type: ignore[attr-defined]
    assert heard == [[], []], f"monitors fired with no fault: {heard}"
    assert [str.__str__(n) for n in n1.network().nodes()] == ["n3@host3"]
    assert n1.network().node("n3@host3").is_connected()


def test_a_dial_refused_as_already_connected_waits_for_the_peers_dial_being_accepted():
    """n2 dials n1; 1 ms later n1 dials n2.  n2's dial wins: n2 refuses n1's dial ("a node
    named n1 is already connected") as soon as its own side is up, but its READY to n1 is
    slow (a slow handshake; on a real network another stream's retransmit), so the refusal
    reaches n1 first.  n1 used to give up its dial then, telling its waiting monitor
    NoConnection, though the peer's dial was past its introduction on n1 and became the
    connection a moment later (found by the machine under buggify ``slow_handshake``)."""
    s = sim.Sim(7)
    n1, n2 = cluster(s, 2)
    s.buggify("network.slow_handshake", probability=0.5)
    a, b = n1.spawn(_Watcher), n2.spawn(_Watcher)
    n2.call(b, a)
    s.run_for(0.001)
    n1.call(a, b)
    s.run_for(6.0)
    heard = [n1._processes[a.id].heard, n2._processes[b.id].heard]  # type: ignore[attr-defined]
    assert heard == [[], []], f"monitors fired with no fault: {heard}"
    assert n1.network().node("n2@host2").is_connected()


def test_a_slow_refusal_still_goes_out_before_the_close():
    """n2 dials n1; 3 ms later n1 dials n2, and n2 refuses that dial (SimultaneousConnect:
    its own wins).  With ``slow_handshake`` the REFUSE waited to go out late, and the close
    right after it sent the FIN at once and dropped it: n1 saw "connection closed during
    the handshake", could not tell a crossed dial from a broken one, gave up its dial and
    told its monitor NoConnection.  The close now waits behind the late bytes (found by
    the machine under buggify)."""
    s = sim.Sim(5)
    n1, n2 = cluster(s, 2)
    s.buggify("network.slow_handshake", probability=0.5)
    a, b = n1.spawn(_Watcher), n2.spawn(_Watcher)
    n2.call(b, a)
    s.run_for(0.003)
    n1.call(a, b)
    s.run_for(6.0)
    heard = [n1._processes[a.id].heard, n2._processes[b.id].heard]  # type: ignore[attr-defined]
    assert heard == [[], []], f"monitors fired with no fault: {heard}"


# -- planted bugs: the machine must catch each ---------------------------------------------


def _partition_unnoticed(node: Node) -> None:
    """No NoConnection on a partition: the heartbeat check never declares a silent peer
    down (heartbeats are still sent), so a black-holed connection lives on."""
    net = node.network()

    def planted(self: Any, conn: Any) -> None:
        conn.timer = None
        if conn.state is not UP:
            return
        for link in list(conn.links):
            if link.codec is not None:
                link.send(enp.Heartbeat(0))
        self._heartbeat_later(conn)

    net._heartbeat = types.MethodType(planted, net)  # type: ignore[method-assign]


def _monitor_leaks_after_node_down(node: Node) -> None:
    """A lost connection tells the monitors of targets there, but keeps them in the
    tables (the watcher's and the node's): a leak, and a second notice waiting to happen."""
    pubsub = node._pubsub
    down = pubsub.node_down

    def planted(name: Any, error: BaseException) -> None:
        kept = {t: dict(cs) for t, cs in pubsub._monitors.items() if type(t) is not str and
                getattr(t, "node", None) == name}
        down(name, error)
        for target, consumers in kept.items():
            pubsub._monitors.setdefault(target, {}).update(consumers)
            for pid in consumers:
                p = node._processes.get(pid.id)
                if p is not None:
                    if p._monitored is None:
                        p._monitored = {}
                    p._monitored[target] = None

    pubsub.node_down = planted  # type: ignore[method-assign]


def _duplicate_after_reconnect(node: Node) -> None:
    """A new connection to a peer this node was connected to before sends again what
    went to that peer before (as a naive "retransmit on reconnect" would): duplicates."""
    net = node.network()
    send, accepted = net.send, net.handshake_accepted
    sent: dict[str, list[tuple[Any, ...]]] = {}
    known: set[str] = set()

    def planted_send(from_: Any, to: Any, message: Any, priority: Any) -> None:
        send(from_, to, message, priority)
        sent.setdefault(str.__str__(to.node), []).append((from_, to, message, priority))

    def planted_accepted(link: Any, hs: Any, accepted_: Any) -> None:
        accepted(link, hs, accepted_)
        name = str.__str__(accepted_.peer.name)
        conn = net._connections.get(name)
        if accepted_.join or conn is None or conn.state is not UP:
            return
        if name in known:
            for args in sent.get(name, ()):
                try:
                    send(*args)
                except ErgoError:
                    pass
        known.add(name)

    net.send = planted_send  # type: ignore[method-assign]
    net.handshake_accepted = planted_accepted  # type: ignore[method-assign]


def _overtaking_across_the_pool(node: Node) -> None:
    """A sender's frames do not keep their link: each plain send moves the sender's order
    key to the next link of the pool, so a frame can leave before an earlier one of its
    pair (the flushes of one turn go link by link)."""
    net = node.network()
    send = net.send
    turn = [0]

    def planted(from_: Any, to: Any, message: Any, priority: Any) -> None:
        conn = net._connections.get(str.__str__(to.node))
        if conn is not None and conn.state is UP and len(conn.links) > 1:
            turn[0] += 1
            conn.routes[1 + from_.id % 255] = conn.links[turn[0] % len(conn.links)]
            net._last_send = None  # nor does the send remember the link it took last
        send(from_, to, message, priority)

    net.send = planted  # type: ignore[method-assign]


def _unwatch_not_told(node: Node) -> None:
    """An unlink or demonitor of a remote target is only local: the peer is never sent
    the Unlink (Demonitor), so it keeps the subscription and tells of an end no one awaits."""
    net = node.network()
    net.unwatch = lambda target, link, by=None: None  # type: ignore[method-assign]


def _every_other_reply_lost(node: Node) -> None:
    """Every second reply to a ``Caller``'s call a node receives is dropped: its call
    waits out its timeout."""
    route = node._route_response
    count = [0]

    def planted(to: Any, ref: Any, value: Any, error: Any) -> Any:
        if type(value) is tuple and value[0] == "ok" and type(value[1]) is int:  # ("echo", seq)'s
            count[0] += 1
            if count[0] % 2 == 0:
                return None
        return route(to, ref, value, error)

    node._route_response = planted  # type: ignore[method-assign]


def _remote_events_fanned_out_twice(node: Node) -> None:
    """An event message from another node reaches its local subscribers twice (a fan-out
    that walks the links and the monitors of the event without merging them)."""
    pubsub = node._pubsub
    remote_event = pubsub.remote_event

    def planted(from_: Any, message: Any, priority: Any) -> None:
        remote_event(from_, message, priority)
        remote_event(from_, message, priority)

    pubsub.remote_event = planted  # type: ignore[method-assign]


def _remote_events_lost_after_a_while(node: Node) -> None:
    """Event messages from another node stop reaching local subscribers after the third."""
    pubsub = node._pubsub
    remote_event = pubsub.remote_event
    count = [0]

    def planted(from_: Any, message: Any, priority: Any) -> None:
        count[0] += 1
        if count[0] <= 3:
            remote_event(from_, message, priority)

    pubsub.remote_event = planted  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("bug", "complaint"),
    [
        (_partition_unnoticed, r"no NoConnection|never told|by peers"),
        (_monitor_leaks_after_node_down, r"monitor"),
        (_duplicate_after_reconnect, r"twice \(a duplicate\)"),
        (_overtaking_across_the_pool, r"reordered"),
        (_unwatch_not_told, r"by peers"),
        (_every_other_reply_lost, r"call .* failed with Timeout"),
        (_remote_events_fanned_out_twice, r"twice \(a duplicate\)"),
        (_remote_events_lost_after_a_while, r"never got seq"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_the_machine_catches_a_planted_bug(bug: Callable[[Node], None], complaint: str):
    planted = type(f"Planted{bug.__name__}", (ClusterMachine,), {"plant": staticmethod(bug)})
    with pytest.raises(AssertionError, match=complaint):
        run_state_machine_as_test(planted, settings=HUNT)


# -- found by the machine, open --------------------------------------------------------------


class _Asker(Actor):
    def init(self) -> None:
        self.heard: list[Any] = []

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        how, pid = request
        if how == "monitor":
            self.monitor(pid)
            return "ok"
        try:
            self.send(pid, "hello")
        except ErgoError as e:
            return e
        return "ok"

    def handle_message(self, from_: Any, message: Any) -> None:
        self.heard.append(message)


def test_a_new_runs_pid_over_the_old_runs_connection_is_not_an_earlier_incarnation():
    """Found by the machine (crash a host, restart it at once, monitor a process of its
    new run from a peer): for about one heartbeat interval the peer still holds the
    connection to the old run.  A PID of a later run proves that connection stale: it goes
    down (its watchers told NoConnection) and the send or watch dials the new run."""
    s = sim.Sim(1)
    n1, n2 = cluster(s, 2)
    asker = n2.spawn(_Asker)
    n2.call(asker, ("monitor", n1.spawn(_Asker)))
    s.run_for(0.5)
    s.crash("host1")
    s.restart("host1")
    s.run_until(lambda: s.host("host1").up, timeout=5)
    new = s.node("n1@host1")
    target = new.spawn(_Asker)
    assert target.creation > n2.network().node("n1@host1").creation  # the old run's connection, still up
    sent = n2.call(asker, ("send", target))
    n2.call(asker, ("monitor", target))
    s.run_for(1.0)
    told = [m.reason for m in n2._processes[asker.id].heard  # type: ignore[attr-defined]
            if isinstance(m, MessageDownPID) and m.pid == target]
    assert sent == "ok", f"the send to the new run raised {sent!r}"
    assert not [r for r in told if type(r).__name__ == "ProcessIncarnation"], f"the monitor was told {told}"


def test_a_restarted_nodes_first_dial_is_not_refused_as_already_connected():
    """The same stale connection seen from the restarted side (found with the test
    above): the new run dials its peer at once, before the peer found the crash.  Its
    introduction carries a later creation than the connected run's, so the peer drops the
    stale connection and accepts the new one (as Erlang replaces a connection to an earlier
    incarnation), instead of refusing it as "already connected"."""
    s = sim.Sim(1)
    n1, n2 = cluster(s, 2)
    peer = n2.spawn(_Asker)
    n2.call(peer, ("monitor", n1.spawn(_Asker)))
    s.run_for(0.5)
    s.crash("host1")
    s.restart("host1")
    s.run_until(lambda: s.host("host1").up, timeout=5)
    new = s.node("n1@host1")
    route(new, n2)
    asker = new.spawn(_Asker)
    new.call(asker, ("monitor", peer))
    s.run_for(6.0)
    told = new._processes[asker.id].heard  # type: ignore[attr-defined]
    assert told == [], f"the new run's monitor of a live peer process was told {told}"


def test_an_events_end_is_told_ahead_of_its_last_messages_and_the_model_allows_it():
    """Found by the machine: an event published and then unregistered at once reaches a
    linked subscriber on another node as the exit signal first, then the message: both
    arrive in order, and the exit signal, urgent, goes ahead of the message in its
    mailbox (as Ergo's Urgent queue does).  The model allows a message after its watch's
    notice, if it was published before that notice."""
    m = ClusterMachine()
    m.first_processes(counts=[1, 1, 1])  # the first process of each host registers e1
    consumer, producer = m.model.live()[:2]
    event = Event("e1", producer.node)
    m.watch_registered(consumer=consumer, watched=event, kind="link")
    m.advance_time(0.01)
    registration = m.model.events[event]
    m.publish(r=registration, n=1)
    m.unregister(registration)
    m.settle_and_check()
    heard = m.journal.heard[consumer]
    assert [type(x) for x in heard] == [MessageExitEvent, MessageEvent], heard
    m.teardown()


def test_a_remote_watch_of_an_alias_of_an_earlier_run_is_told_process_incarnation():
    """Found by the machine: an alias carries its node's creation, so a link to an alias
    of a run that crashed, made once the host runs again, is refused with
    ``ProcessIncarnation`` (as a PID of that run is), not ``AliasUnknown``."""
    m = ClusterMachine()
    m.first_processes(counts=[1, 1, 1])
    owner = next(pid for pid in m.model.live() if pid.node == "n3@host3")
    consumer = next(pid for pid in m.model.live() if pid.node == "n2@host2")
    m.registry(("create_alias", (owner,)))
    (alias,) = m.model.aliases
    m.crash("host3")
    m.restart("host3")
    m.watch_registered(consumer=consumer, watched=alias, kind="link")
    m.settle_and_check()
    (told,) = m.journal.heard[consumer]
    assert type(told) is MessageExitAlias and isinstance(told.reason, ProcessIncarnation), told
    m.teardown()

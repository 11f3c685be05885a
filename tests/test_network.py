"""Nodes that talk: one behavioural suite, run over the simulated transport and over real
sockets on loopback (the same test code, as the local suite does for schedulers)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from network_support import TRANSPORTS, Cluster, SimCluster, hold_a_call, make_cluster, tls_contexts
from support import Collector

from ergo import (
    PID,
    Actor,
    Alias,
    Atom,
    Event,
    Incorrect,
    MessageDownNode,
    MessageDownPID,
    MessageDownProcessID,
    MessageEvent,
    MessageExitPID,
    MessagePriority,
    NoConnection,
    NoReply,
    NoRoute,
    NotAllowed,
    ProcessID,
    ProcessIncarnation,
    ProcessOptions,
    ProcessUnknown,
    TerminateReasonPanic,
    TerminateReasonShutdown,
    TooLarge,
)
from ergo.gen.options import AcceptorOptions
from ergo.network import NetworkRoute


@pytest.fixture(params=TRANSPORTS)  # the simulated transport, asyncio, and uvloop where installed
def cluster(request: pytest.FixtureRequest):
    c: Cluster = make_cluster(request.param)
    yield c
    c.close()


class Counter(Actor):
    def init(self) -> None:
        self.n = 0
        self.held: list = []

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        if request == "incr":
            self.n += 1
            return self.n
        if request == "none":
            return None
        if request == "fail":
            self.send_response_error(from_, ref, ValueError("refused here"))
            return NoReply
        if request == "later":
            self.held.append((from_, ref))
            return NoReply
        if request == "alias":
            return self.create_alias()
        if request == "pid":
            return self.pid
        raise ValueError(f"unknown request {request!r}")

    def handle_message(self, from_: Any, message: Any) -> None:
        if message == "answer":
            for f, r in self.held:
                self.send_response(f, r, "answered later")


class Watcher(Collector):
    """Links to or monitors what it is told to; keeps everything it hears (exits trapped)."""

    def init(self, *args: Any) -> None:
        super().init()
        self.trap_exit = True

    def handle_event(self, message: Any) -> None:
        self.handle_message(None, message)

    async def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        if isinstance(request, tuple) and request[0] == "link":
            return self.link(request[1])
        if isinstance(request, tuple) and request[0] == "monitor":
            return self.monitor(request[1])
        if isinstance(request, tuple) and request[0] == "demonitor":
            return self.demonitor(request[1])
        if isinstance(request, tuple) and request[0] == "call":
            try:
                return ("ok", await self.call(request[1], request[2], timeout=request[3] if len(request) > 3 else 5))
            except Exception as e:
                return ("error", type(e).__name__, str(e))
        if isinstance(request, tuple) and request[0] == "send_exit":
            self.send_exit(request[1], request[2])
            return "sent"
        return super().handle_call(from_, ref, request)


def test_a_remote_call_by_name_pid_and_alias(cluster):
    a, b = cluster.cluster(2)
    pid = b.spawn_register("counter", Counter)
    counter = ProcessID("counter", b.name)
    assert a.call(counter, "incr") == 1
    assert a.call(pid, "incr") == 2
    alias = a.call(counter, "alias")
    assert type(alias) is Alias and alias.node == b.name
    assert a.call(alias, "incr") == 3
    assert a.call(counter, "pid") == pid
    assert a.network().nodes() == [b.name] and b.network().nodes() == [a.name]


def test_a_remote_call_and_its_reply_write_the_same_frames_on_the_fast_lane_as_on_the_general_path():
    # Network.request/response take a fast lane when the router hands them the local
    # process (a PID target on an up connection, normal priority, no compression); without
    # it they take the general path.  Both must frame the same bytes and leave the same debt.
    cluster = SimCluster()
    try:
        a, b = cluster.cluster(2)
        counter = b.spawn_register("counter", Counter)
        assert a.call(counter, "pid") == counter  # connected both ways
        caller = a.spawn(Watcher)
        p = a._processes[caller.id]
        conn_a = a.network()._connections[b.name]
        link_a = conn_a.routes.get(1 + caller.id % 255) or conn_a.links[0]
        ref = a.make_ref()

        def request(fast: bool) -> tuple[bytes, Any]:
            a.network().request(caller, counter, ref, ("x", 1), MessagePriority.NORMAL, p if fast else None)
            link = conn_a.routes[1 + caller.id % 255]
            assert link is link_a or link_a.lost
            return bytes(link.codec.flush()), conn_a._calls_in.pop(ref)

        assert request(True) == request(False) and request(True)[0]
        q = b._processes[counter.id]
        conn_b = b.network()._connections[a.name]

        def reply(fast: bool) -> bytes:
            b.network().response(counter, caller, ref, ["y", 2], None, q if fast else None)
            return bytes(conn_b.routes[1 + counter.id % 255].codec.flush())

        assert reply(True) == reply(False) and reply(True)
        # and the fast lane still refuses a PID of another run of the peer, sending nothing
        with pytest.raises(ProcessIncarnation):
            a.network().request(caller, PID(b.name, counter.id, counter.creation - 1), ref, "x",
                                MessagePriority.NORMAL, p)
        assert not conn_a._calls_in and not bytes(link_a.codec.flush())
    finally:
        cluster.close()


def test_the_links_of_a_pool_share_their_connection_s_table_of_calls_in_flight():
    # a call's answer may come back on another link of the pool than the call took: the
    # codec that decodes it must know the call's Ref all the same (enp.LinkCodec's asked)
    cluster = SimCluster()
    try:
        a, b = cluster.cluster(2)
        counter = b.spawn_register("counter", Counter)
        assert a.call(counter, "pid") == counter
        cluster.run_for(1.0)  # the pool's other links joined
        for here, there in ((a, b), (b, a)):
            conn = here.network()._connections[there.name]
            assert len(conn.links) == 3
            assert all(link.codec._asked is conn.asked for link in conn.links)
    finally:
        cluster.close()


def test_remote_replies_none_errors_and_deferred(cluster):
    a, b = cluster.cluster(2)
    b.spawn_register("counter", Counter)
    counter = ProcessID("counter", b.name)
    assert a.call(counter, "none") is None
    with pytest.raises(Exception, match="refused here"):
        a.call(counter, "fail")
    caller = a.spawn(Watcher)

    class Later(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            self.send(caller, await self.call(counter, "later"))

    a.send(a.spawn(Later), "go")
    cluster.run_until(lambda: b._names["counter"].held)
    b.send(counter, "answer")
    assert a.call(caller, ("wait", 1)) == ["answered later"]


def test_messages_from_one_sender_keep_their_order(cluster):
    a, b = cluster.cluster(2)
    collector = b.spawn_register("collector", Collector)

    class Sender(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            for i in range(200):
                self.send(ProcessID("collector", b.name), i)

    a.send(a.spawn(Sender), "go")
    assert b.call(collector, ("wait", 200)) == list(range(200))


def test_a_call_to_a_missing_remote_process_fails_at_once(cluster):
    a, b = cluster.cluster(2)
    watcher = a.spawn(Watcher)
    assert a.call(b.spawn(Counter), "incr") == 1  # connected
    started = cluster.now
    result = a.call(watcher, ("call", ProcessID("nobody", b.name), "q", 60))
    assert result[0:2] == ("error", "ProcessUnknown")
    assert cluster.now - started < 5  # not the call's 60 s timeout


def test_a_remote_monitor_and_link_are_told_the_reason(cluster):
    a, b = cluster.cluster(2)
    target = b.spawn(Counter)
    other = b.spawn(Counter)
    watcher = a.spawn(Watcher)
    a.call(watcher, ("monitor", target))
    a.call(watcher, ("link", other))
    a.call(watcher, ("call", target, "incr"))  # the Monitor frame went before this call's request
    b.send_exit(target, ValueError("gone"))
    b.send_exit(other, ValueError("also gone"))
    got = a.call(watcher, ("wait", 2))
    downs = [m for m in got if isinstance(m, MessageDownPID)]
    exits = [m for m in got if isinstance(m, MessageExitPID)]
    assert [d.pid for d in downs] == [target] and "gone" in str(downs[0].reason)
    assert [e.pid for e in exits] == [other] and "also gone" in str(exits[0].reason)


def test_watching_a_remote_process_that_does_not_exist_is_told_at_once(cluster):
    a, b = cluster.cluster(2)
    a.call(b.spawn(Counter), "incr")
    watcher = a.spawn(Watcher)
    ghost = ProcessID("ghost", b.name)
    assert a.call(watcher, ("monitor", ghost)) is None  # made at once; the peer's answer comes later
    got = a.call(watcher, ("wait", 1))
    assert type(got[0]).__name__ == "MessageDownProcessID" and isinstance(got[0].reason, ProcessUnknown)


def test_a_lost_connection_fires_links_monitors_node_watchers_and_calls(cluster):
    a, b = cluster.cluster(2)
    target = b.spawn_register("counter", Counter)
    b.spawn_register("slow", Counter)
    watcher = a.spawn(Watcher)
    a.call(watcher, ("monitor", target))
    a.call(watcher, ("monitor", Atom(str.__str__(b.name))))
    caller = hold_a_call(cluster, a, ProcessID("slow", b.name))
    a.network().node(b.name).disconnect()  # the connection goes; the processes there live on
    got = a.call(watcher, ("wait", 2))
    assert any(isinstance(m, MessageDownPID) and isinstance(m.reason, NoConnection) for m in got)
    assert any(isinstance(m, MessageDownNode) and m.name == b.name for m in got)
    assert a.call(caller, ("wait", 1)) == ["NoConnection"]
    assert a.network().nodes() == []


def test_send_exit_to_a_remote_process(cluster):
    a, b = cluster.cluster(2)
    target = b.spawn(Counter)
    watcher = b.spawn(Watcher)
    b.call(watcher, ("monitor", target))
    a.send_exit(target, ValueError("from afar"))
    got = b.call(watcher, ("wait", 1))
    assert isinstance(got[0], MessageDownPID) and "from afar" in str(got[0].reason)


def test_remote_spawn_only_what_was_enabled(cluster):
    a, b = cluster.cluster(2)
    b.network().enable_spawn("counter", Counter)
    remote = a.network().connect(b.name)
    node = a.wait_for(remote)
    pid = a.wait_for(node.spawn("counter"))
    assert pid.node == b.name and a.call(pid, "incr") == 1
    named = a.wait_for(node.spawn_register("registered", "counter", options=ProcessOptions()))
    assert a.call(ProcessID("registered", b.name), "incr") == 1 and named.node == b.name
    with pytest.raises(NotAllowed, match="enable_spawn"):
        a.wait_for(node.spawn("worker"))
    b.network().disable_spawn("counter")
    with pytest.raises(NotAllowed):
        a.wait_for(node.spawn("counter"))


def _refuses_with_a_set() -> Any:
    raise ValueError({8, 1})


def test_a_remote_spawn_whose_factory_raised_tells_the_same_text_in_every_process(cluster):
    # the requester learned str() of what the factory raised: a set in it in the spawning
    # process's iteration order ({8, 1} iterates as 8, 1; a set of strings by PYTHONHASHSEED)
    a, b = cluster.cluster(2)
    b.network().enable_spawn("refuses", _refuses_with_a_set)
    node = a.wait_for(a.network().connect(b.name))
    with pytest.raises(Incorrect) as refused:
        a.wait_for(node.spawn("refuses"))
    assert str(refused.value) == "spawning 'refuses' failed: ValueError: {1, 8}"


def test_a_wrong_cookie_is_refused_and_the_acceptor_keeps_serving(cluster):
    a, b = cluster.cluster(2)
    intruder = cluster.start(3, cookie="wrong")
    cluster.route(intruder, b)
    b.spawn_register("counter", Counter)
    with pytest.raises(NoConnection, match="refused"):
        intruder.call(ProcessID("counter", b.name), "incr")
    (line,) = [t for t in b.captured.texts() if "refused a connection" in t]
    # the dialer's address as host:port (its name is not trusted before the digest is
    # checked), then the name it claims, unproven and said so: the address's port is an
    # ephemeral one, which does not tell an operator which node has the wrong cookie
    host = intruder.network().info()["acceptors"][0]["host"]
    assert re.fullmatch(rf"network: refused a connection from {re.escape(host)}:\d+: "
                        r"the dialer's digest does not match our cookie "
                        rf"\(it says it is '{re.escape(str.__str__(intruder.name))}': that node's cookie differs\)",
                        line), line
    assert a.call(ProcessID("counter", b.name), "incr") == 1


def test_nodes_that_dial_each_other_at_once_end_with_one_connection(cluster):
    a, b = cluster.cluster(2)
    ca = a.spawn_register("c", Collector)
    cb = b.spawn_register("c", Collector)
    a.send(ProcessID("c", b.name), "from a")
    b.send(ProcessID("c", a.name), "from b")
    assert a.call(ca, ("wait", 1)) == ["from b"]
    assert b.call(cb, ("wait", 1)) == ["from a"]
    assert a.network().nodes() == [b.name] and b.network().nodes() == [a.name]
    assert not [t for t in a.captured.texts() + b.captured.texts() if "cannot connect" in t]


def test_too_large_for_the_peer_fails_the_sender_and_the_connection_stays(cluster):
    a, b = cluster.cluster(2, max_message_size=4096)
    collector = b.spawn_register("c", Collector)
    a.send(collector, "small")
    assert b.call(collector, ("wait", 1)) == ["small"]
    with pytest.raises(TooLarge):
        a.send(collector, "x" * 10_000)
    a.send(collector, "small again")
    assert b.call(collector, ("wait", 2)) == ["small", "small again"]


def test_remote_events_one_subscription_per_node(cluster):
    a, b = cluster.cluster(2)

    class Producer(Actor):
        def init(self) -> None:
            self.token = self.register_event("ticks")

        def handle_message(self, from_: Any, message: Any) -> None:
            self.send_event("ticks", self.token, message)

    producer = b.spawn(Producer)
    event = Event("ticks", b.name)
    subscribers = [a.spawn(Watcher) for _ in range(3)]
    for s in subscribers:
        assert a.call(s, ("link", event)) == []
    b.call(b.spawn(Counter), "incr")  # settles nothing, but keeps the clocks comparable
    cluster.run_until(lambda: len(b._pubsub._links.get(event, {})) == 1)
    b.send(producer, "tick 1")
    for s in subscribers:
        got = a.call(s, ("wait", 1))
        assert isinstance(got[0], MessageEvent) and got[0].message == "tick 1"
    assert len(b._pubsub._links[event]) == 1  # one subscription: the node, not each process


def test_no_route_fails_connect_send_and_watch_with_no_route(cluster):
    (a,) = cluster.cluster(1)
    nowhere = Atom("nowhere@nohost")
    with pytest.raises(NoRoute):  # the future completes (it did not wait forever)
        a.wait_for(a.network().connect(nowhere), timeout=30)
    with pytest.raises(NoRoute):
        a.send(ProcessID("x", nowhere), "hi")
    watcher = a.spawn(Watcher)
    target = PID(nowhere, 7, 1)
    assert a.call(watcher, ("monitor", target)) is None  # made at once: the failure comes as a message
    assert a.call(watcher, ("link", ProcessID("y", nowhere))) is None
    got = a.call(watcher, ("wait", 2))
    assert {type(m).__name__ for m in got} == {"MessageDownPID", "MessageExitProcessID"}
    assert all(isinstance(m.reason, NoRoute) for m in got)
    info = a.process_info(watcher)
    assert info.links == () and info.monitors == ()  # nothing is left behind
    assert not a._pubsub._links and not a._pubsub._monitors


def test_a_pid_of_an_earlier_incarnation_gets_process_incarnation(cluster):
    """Node b stops and starts again at once (well within the second: a creation counted
    in whole seconds would be the same): a PID of its first run is refused with
    ``ProcessIncarnation``, and never reaches the process of the new run that happens to
    have the same id."""
    a, b = cluster.cluster(2)
    old = b.spawn(Counter)
    assert a.call(old, "incr") == 1
    b.stop()
    cluster.run_until(lambda: not b.is_alive() and a.network().nodes() == [])
    b2 = cluster.start(2)
    cluster.route(a, b2)
    assert b2.creation != old.creation
    new = b2.spawn(Collector)
    assert new.id == old.id  # the same id in the new run: only the creation tells them apart
    early = a.spawn(Watcher)
    a.call(early, ("monitor", old))  # while dialing: the new run refuses it
    (down,) = a.call(early, ("wait", 1))
    assert isinstance(down, MessageDownPID) and isinstance(down.reason, ProcessIncarnation)
    assert a.call(b2.spawn(Counter), "incr") == 1  # connected to the new run
    with pytest.raises(ProcessIncarnation):
        a.send(old, "to the old run")
    with pytest.raises(ProcessIncarnation):
        a.call(old, "incr")
    watcher = a.spawn(Watcher)
    a.call(watcher, ("monitor", old))  # connected: refused before anything is sent
    (down,) = a.call(watcher, ("wait", 1))
    assert isinstance(down, MessageDownPID) and isinstance(down.reason, ProcessIncarnation)
    a.send(new, "to the new run")
    assert b2.call(new, ("wait", 1)) == ["to the new run"]  # nothing of the old run's came first


def test_a_pid_of_a_run_the_peer_never_had_takes_its_connection_down_once_not_at_every_send(cluster):
    """A PID with a later creation than the connected peer's proves the connection stale
    when the peer was restarted; when it was not (a PID made up, or of another cluster's
    node of that name), the connection dialed again finds the same run, and from then on
    such PIDs are ``ProcessIncarnation``: a process that keeps sending to one no longer
    takes the connection, and every watch and call on it, down at each send."""
    a, b = cluster.cluster(2)
    target = b.spawn(Counter)
    assert a.call(target, "incr") == 1  # connected
    bogus = PID(b.name, 5555, b.creation + 7)
    a.send(bogus, "to nowhere")  # (documented: taken for a restart not noticed yet)
    cluster.run_until(lambda: a.network().nodes() == [b.name] and a.network().node(b.name).is_connected()
                      and any("still at creation" in t for t in a.captured.texts()))
    watcher = a.spawn(Watcher)
    a.call(watcher, ("monitor", target))
    assert a.call(target, "incr") == 2
    for _ in range(3):
        with pytest.raises(ProcessIncarnation, match="a later run it has not had"):
            a.send(bogus, "to nowhere")
    assert a.call(target, "incr") == 3  # the same connection all along: nothing went down
    assert a.call(watcher, "messages") == []
    assert sum("disconnected from" in t for t in a.captured.texts()) == 1


def test_a_silent_peer_is_declared_down_within_the_heartbeat_timeout():
    """(sim.)  Nothing arrives from b any more (a black hole between them: TCP says
    nothing): a declares it down within its own timeout (plus one check).  (A b that
    merely sends its heartbeats too seldom for a's timeout is told a's timeout in the
    handshake and keeps up: tests/test_production.py.)"""
    cluster = SimCluster()
    try:
        a = cluster.start(1, heartbeat_interval=1.0, heartbeat_timeout=3.0)
        b = cluster.start(2, heartbeat_interval=10.0, heartbeat_timeout=30.0)
        cluster.route_all()
        target = b.spawn(Counter)
        watcher = a.spawn(Watcher)
        a.call(watcher, ("monitor", target))
        a.call(watcher, ("monitor", Atom(str.__str__(b.name))))
        assert a.call(target, "incr") == 1  # the last thing heard from b: this reply
        cluster.sim.partition_oneway("host2", "host1")
        heard = cluster.now
        cluster.run_until(lambda: a.network().nodes() == [], timeout=60)
        assert cluster.now - heard <= 3.0 + 1.0 + 0.01  # the timeout, and the check's period at most
        got = a.call(watcher, ("wait", 2))
        assert any(isinstance(m, MessageDownPID) and isinstance(m.reason, NoConnection) for m in got)
        assert any(isinstance(m, MessageDownNode) and m.name == b.name for m in got)
        assert any("nothing heard from" in t for t in a.captured.texts())
    finally:
        cluster.close()


def _introduced(cluster: SimCluster, a: Any, b: Any) -> Any:
    """a dials b; run until b's acceptor has taken a's INTRODUCE (READY still to come)."""
    dialing = a.network().connect(b.name)
    cluster.run_until(lambda: any(link.hs is not None and link.hs.state == "wait_ready"
                                  for link in b.network()._handshaking))
    return dialing


def test_a_peer_past_its_introduction_counts_as_connected_and_no_second_dial_begins():
    """(sim.)  Once b has taken a's INTRODUCE, a send or connect of b's to a waits for that
    handshake instead of dialing: a second connection would let frames of one sender take
    both and overtake each other (the swarm scenario found both: seeds 50, 83 dropped the
    connection every 50 ms for ever, seed 574 delivered a sender's 169 after its 192)."""
    cluster = SimCluster()
    try:
        a, b = cluster.cluster(2)
        collector = a.spawn_register("c", Collector)
        dialing_a = _introduced(cluster, a, b)
        dialing_b = b.network().connect(a.name)
        b.send(ProcessID("c", a.name), "queued before READY")
        assert not b.network().dialing  # no dial of b's began
        cluster.run_for(3.0)
        assert dialing_a.result().is_connected() and dialing_b.result().is_connected()
        assert a.network().nodes() == [b.name] and b.network().nodes() == [a.name]
        kept = a.network()._connections[b.name.value], b.network()._connections[a.name.value]
        assert not kept[0].accepting and not kept[1].accepting
        assert all(len(c.links) == 3 for c in kept)  # the pool grew on the one connection
        assert a.call(collector, ("wait", 1)) == ["queued before READY"]
        cluster.run_for(3.0)
        assert (a.network()._connections[b.name.value], b.network()._connections[a.name.value]) == kept
        assert not [t for t in a.captured.texts() + b.captured.texts() if "disconnected" in t]
    finally:
        cluster.close()


def test_what_waited_for_an_accepted_handshake_that_fails_is_told_no_connection():
    """(sim.)  b took a's INTRODUCE and b's watcher monitors a process of a's meanwhile; a
    dies before READY: the watch is told NoConnection, and a later send dials afresh."""
    cluster = SimCluster()
    try:
        a, b = cluster.cluster(2)
        a.spawn_register("c", Collector)
        _introduced(cluster, a, b)
        watcher = b.spawn(Watcher)
        b.call(watcher, ("monitor", ProcessID("c", a.name)))  # a local call: no virtual time passes
        assert b.network()._pending[a.name.value].accepting is not None  # still before READY
        cluster.sim.kill_node(str.__str__(a.name))
        (down,) = b.call(watcher, ("wait", 1))
        assert isinstance(down, MessageDownProcessID) and isinstance(down.reason, NoConnection)
        assert "handshake" in str(down.reason)
        assert not b.network()._pending and not b.network().nodes()
    finally:
        cluster.close()


def test_an_idle_live_peer_is_never_declared_down():
    """(sim.)  Two idle nodes with the default heartbeats stay connected over many timeouts:
    one connection, the same links, nobody told anything."""
    cluster = SimCluster()
    try:
        a, b = cluster.cluster(2)
        watcher = a.spawn(Watcher)
        a.call(watcher, ("monitor", Atom(str.__str__(b.name))))
        target = b.spawn(Counter)
        a.call(watcher, ("monitor", target))
        assert a.call(target, "incr") == 1
        cluster.run_for(1.0)  # the pool is complete
        conn = a.network()._connections[str.__str__(b.name)]
        links = list(conn.links)
        assert len(links) == 3
        cluster.run_for(20 * a.network().options.heartbeat_timeout)
        assert a.network()._connections[str.__str__(b.name)] is conn and conn.links == links
        assert b.network().nodes() == [a.name]
        assert a.call(watcher, "messages") == []
        assert a.call(target, "incr") == 2
    finally:
        cluster.close()


@pytest.mark.parametrize("side", ["accepting", "dialing"])
def test_a_broken_pool_link_takes_the_connection_down_and_the_next_send_dials_again(cluster, side):
    """One link of the pool is aborted, on either side: the whole connection goes down (what
    was in flight on that link cannot be known), watchers are told NoConnection, and the
    next send dials a new connection; a sender's messages arrive in order, none twice."""
    a, b = cluster.cluster(2)
    collector = b.spawn_register("collector", Collector)
    assert a.call(b.spawn(Counter), "incr") == 1  # a dialed b
    cluster.run_until(lambda: len(a.network()._connections[str.__str__(b.name)].links) == 3
                      and len(b.network()._connections[str.__str__(a.name)].links) == 3)
    a_conn = a.network()._connections[str.__str__(b.name)]
    b_conn = b.network()._connections[str.__str__(a.name)]
    watcher = a.spawn(Watcher)
    a.call(watcher, ("monitor", Atom(str.__str__(b.name))))

    class Sender(Actor):
        def init(self) -> None:
            self.n = 0

        def handle_message(self, from_: Any, message: Any) -> None:
            for _ in range(message):
                self.send(ProcessID("collector", b.name), self.n)
                self.n += 1

    sender = a.spawn(Sender)
    a.send(sender, 50)
    assert b.call(collector, ("wait", 50)) == list(range(50))
    victim = (a_conn if side == "dialing" else b_conn).links[1]
    victim.stream.abort()
    got = a.call(watcher, ("wait", 1))
    assert isinstance(got[0], MessageDownNode) and got[0].name == b.name
    assert a_conn.state == "down" and b.name not in a.network().nodes()
    a.send(sender, 50)  # dials again
    received = b.call(collector, ("wait", 100))
    assert received == list(range(100))
    assert a.network().nodes() == [b.name]
    cluster.run_until(lambda: len(a.network()._connections[str.__str__(b.name)].links) == 3)
    a.send(sender, 50)
    assert b.call(collector, ("wait", 150)) == list(range(150))
    assert b.call(collector, "messages") == list(range(150))  # nothing twice


def enp_order(pid: Any) -> int:
    from ergo.wire import enp

    return enp.order_key(pid)


class PlainWatcher(Collector):
    """Links or monitors from a plain (not async) handler: the answer cannot be waited for
    there, so a refusal comes as the exit or down message."""

    def init(self, *args: Any) -> None:
        super().init()
        self.trap_exit = True

    def handle_message(self, from_: Any, message: Any) -> None:
        if isinstance(message, tuple) and message[0] == "link":
            self.link(message[1])
        elif isinstance(message, tuple) and message[0] == "monitor":
            self.monitor(message[1])
        else:
            super().handle_message(from_, message)


@pytest.mark.parametrize("handler", ["plain", "async"])
def test_watching_a_missing_remote_process_from_either_handler_kind(cluster, handler):
    a, b = cluster.cluster(2)
    existing = b.spawn(Counter)
    assert a.call(existing, "incr") == 1
    missing = [PID(b.name, existing.id + 1000, existing.creation), ProcessID("nobody", b.name)]
    watcher = a.spawn(PlainWatcher if handler == "plain" else Watcher)
    for target in missing:
        for kind in ("link", "monitor"):
            if handler == "plain":
                a.send(watcher, (kind, target))
            else:
                assert a.call(watcher, (kind, target)) is None
    got = a.call(watcher, ("wait", 4))
    assert sorted(type(m).__name__ for m in got) == ["MessageDownPID", "MessageDownProcessID",
                                                     "MessageExitPID", "MessageExitProcessID"]
    assert all(isinstance(m.reason, ProcessUnknown) for m in got)
    assert a.is_alive() and a.process_info(watcher).links == () and a.process_info(watcher).monitors == ()


def test_two_local_watchers_of_one_remote_target_are_one_consumer_there(cluster):
    """Two monitors and a link from node a to one process of b: b holds one consumer (the
    node a), sends one Terminate frame, and a fans it out to all three."""
    a, b = cluster.cluster(2)
    target = b.spawn(Counter)
    watchers = [a.spawn(Watcher) for _ in range(3)]
    a.call(watchers[0], ("monitor", target))
    a.call(watchers[1], ("monitor", target))
    a.call(watchers[2], ("link", target))
    assert a.call(watchers[0], ("call", target, "incr")) == ("ok", 1)  # the Monitor/Link frames arrived before
    assert list(b._pubsub._monitors[target]) == [a.pid] and list(b._pubsub._links[target]) == [a.pid]
    conn = b.network()._connections[str.__str__(a.name)]
    before = conn.frames_out
    b.send_exit(target, ValueError("gone"))
    got = [a.call(w, ("wait", 1))[0] for w in watchers]
    assert [type(m).__name__ for m in got] == ["MessageDownPID", "MessageDownPID", "MessageExitPID"]
    assert all(m.pid == target and "gone" in str(m.reason) for m in got)
    assert conn.frames_out - before == 1  # one Terminate frame for the node a
    assert target not in b._pubsub._monitors and target not in b._pubsub._links


class NewsProducer(Actor):
    """Registers the event "news" with a buffer of 3 and sends "old 0".."old 4" at once;
    then sends every message it gets as an event."""

    def init(self) -> None:
        self.token = self.register_event("news", buffer=3)
        for i in range(5):
            self.send_event("news", self.token, f"old {i}")

    def handle_message(self, from_: Any, message: Any) -> None:
        self.send_event("news", self.token, message)


def test_a_remote_event_buffer_reaches_the_first_subscriber_as_events(cluster):
    a, b = cluster.cluster(2)

    producer = b.spawn(NewsProducer)
    event = Event("news", b.name)
    first = a.spawn(Watcher)
    assert a.call(first, ("monitor", event)) == []  # (locally: the buffer; remotely it comes as events)
    got = a.call(first, ("wait", 3))
    assert [m.message for m in got] == ["old 2", "old 3", "old 4"]
    assert all(isinstance(m, MessageEvent) and m.event == event for m in got)
    b.send(producer, "fresh")
    assert [m.message for m in a.call(first, ("wait", 4))][3] == "fresh"


def test_a_later_subscriber_to_a_followed_remote_event_gets_its_buffer_at_once(cluster):
    """As Ergo's MonitorEvent returns the buffer to every subscriber: this node keeps the
    buffer the producer's answer brought, up to date with the events that arrive (as many
    as the producer keeps), and a process that subscribes once the node follows the event
    gets it from there at once; then every later event, none twice, none missed."""
    a, b = cluster.cluster(2)

    producer = b.spawn(NewsProducer)
    event = Event("news", b.name)
    first = a.spawn(Watcher)
    assert a.call(first, ("monitor", event)) == []  # the node subscribes: the buffer comes as events
    assert [m.message for m in a.call(first, ("wait", 3))] == ["old 2", "old 3", "old 4"]
    b.send(producer, "new 5")
    assert a.call(first, ("wait", 4))[3].message == "new 5"
    later = a.spawn(Watcher)
    got = a.call(later, ("monitor", event))  # followed already: the buffer as this node has it
    assert [m.message for m in got] == ["old 3", "old 4", "new 5"]
    assert all(type(m) is MessageEvent and m.event == event for m in got)
    linked = a.spawn(Watcher)  # the first link: a subscription of its own, its buffer as events
    assert a.call(linked, ("link", event)) == []
    assert [m.message for m in a.call(linked, ("wait", 3))] == ["old 3", "old 4", "new 5"]
    b.send(producer, "new 6")
    for w, seen in ((first, 5), (later, 1), (linked, 4)):
        msgs = [m.message for m in a.call(w, ("wait", seen))]
        assert msgs[-1] == "new 6" and len(msgs) == len(set(msgs))  # once each
    # every local subscriber gone: the node forgets the buffer with the subscription
    for w in (first, later, linked):
        a.kill(w)
    cluster.run_until(lambda: event not in a._pubsub._followed and event not in b._pubsub._monitors)
    again = a.spawn(Watcher)
    assert a.call(again, ("monitor", event)) == []
    assert [m.message for m in a.call(again, ("wait", 3))] == ["old 4", "new 5", "new 6"]


def test_a_peer_announcing_a_huge_event_buffer_gets_a_bounded_one_kept(cluster):
    from ergo.node.pubsub import MAX_FOLLOWED_BUFFER

    a, b = cluster.cluster(2)
    b.spawn(NewsProducer)
    event = Event("news", b.name)
    b._pubsub.buffer_size = lambda _event: 10**12  # what a hostile or broken peer could say
    first = a.spawn(Watcher)
    assert a.call(first, ("monitor", event)) == []
    assert [m.message for m in a.call(first, ("wait", 3))] == ["old 2", "old 3", "old 4"]
    assert a._pubsub._followed[event].last.maxlen == MAX_FOLLOWED_BUFFER


def test_send_exit_to_a_remote_process_that_traps_exits(cluster):
    a, b = cluster.cluster(2)
    trapping = b.spawn(Watcher)  # traps exits: the signal becomes a message
    sender = a.spawn(Watcher)
    assert a.call(sender, ("send_exit", trapping, ValueError("please stop"))) == "sent"
    (got,) = b.call(trapping, ("wait", 1))
    assert isinstance(got, MessageExitPID) and got.pid == sender and "please stop" in str(got.reason)
    assert b.process_info(trapping).pid == trapping  # still alive


def test_tls_with_certificates_made_here(cluster):
    """b accepts TLS only (certificates from a throwaway CA); a dials it with a client
    context and works as over TCP; c, without a client context, gets a clear NoConnection."""
    server, client = tls_contexts("127.0.0.1", "host2")  # the host each transport dials
    port = 11144 if cluster.name == "sim" else 0
    a = cluster.start(1, ssl=client)
    b = cluster.start(2, acceptors=(AcceptorOptions(port=port, ssl=server),))
    c = cluster.start(3)
    for dialer in (a, c):
        host, bport = b.network()._listeners[0].address
        dialer.network().add_route(f"^{b.name.value}$", NetworkRoute(host, bport, tls=True))
    b.spawn_register("counter", Counter)
    counter = ProcessID("counter", b.name)
    assert a.call(counter, "incr") == 1
    assert a.call(counter, "incr") == 2
    conn = a.network()._connections[str.__str__(b.name)]
    assert all(link.stream.tls for link in conn.links)
    with pytest.raises(NoConnection, match="NetworkOptions.ssl"):
        c.call(counter, "incr")
    assert a.call(counter, "incr") == 3  # b serves on


def test_tls_acceptor_refuses_a_plain_dialer(cluster):
    """A route that forgets tls=True to a TLS-only acceptor: the dial fails with
    NoConnection saying TLS may be why (on asyncio it said only "connection closed during
    the handshake (in state wait_challenge)"), and the acceptor keeps serving TLS peers."""
    server, client = tls_contexts("127.0.0.1", "host2")  # the host each transport dials
    port = 11144 if cluster.name == "sim" else 0
    a = cluster.start(1, ssl=client)
    b = cluster.start(2, acceptors=(AcceptorOptions(port=port, ssl=server),))
    c = cluster.start(3, ssl=client, connect_timeout=2.0)
    host, bport = b.network()._listeners[0].address
    a.network().add_route(f"^{b.name.value}$", NetworkRoute(host, bport, tls=True))
    c.network().add_route(f"^{b.name.value}$", NetworkRoute(host, bport))
    b.spawn_register("counter", Counter)
    counter = ProcessID("counter", b.name)
    with pytest.raises(NoConnection, match="TLS"):
        c.call(counter, "incr")
    # the acceptor says so too (on asyncio it said nothing: the TLS layer refused the
    # connection before any link was made)
    refused = [t for t in b.captured.texts() if "refused a connection from" in t]
    assert refused and "TLS handshake failed" in refused[0], refused
    assert a.call(counter, "incr") == 1


def test_a_process_s_messages_arrive_before_its_exit_or_down(cluster):
    """As in Erlang: what a process sent before it ended reaches a watcher on another node
    before the exit or down it causes there, even when its link of the pool is congested
    (simulation: 200 ms each way, so 800 KB wait behind the window)."""
    a, b = cluster.cluster(2)
    if cluster.name == "sim":
        cluster.sim.set_latency("host1", "host2", 0.2)
    watcher = a.spawn(Watcher)

    class Chatty(Actor):
        def init(self, to: Any) -> None:
            self.to = to

        def handle_message(self, from_: Any, message: Any) -> None:
            for i in range(100):
                self.send(self.to, (i, "x" * 8000))
            raise RuntimeError("done talking")

    chatty = b.spawn(Chatty, watcher)
    while enp_order(chatty) % 3 == 0:  # one whose link is not the first of the pool
        chatty = b.spawn(Chatty, watcher)
    a.call(watcher, ("monitor", chatty))
    a.call(watcher, ("call", chatty, "hello"))  # the Monitor frame arrived before this (Chatty refuses calls)
    cluster.run_until(lambda: len(b.network()._connections[str.__str__(a.name)].links) == 3)
    b.send(chatty, "go")
    got = a.call(watcher, ("wait", 101), timeout=60)
    assert [m[0] for m in got[:100]] == list(range(100))
    assert got[100] == MessageDownPID(chatty, TerminateReasonPanic)


def test_one_sender_keeps_its_order_while_the_pool_grows(cluster):
    """The first messages go out while the connection has one link (the others are still
    joining); those sent once the pool is complete must not overtake them, however busy
    that first link is (simulation: 200 ms each way, 1.6 MB behind the window)."""
    a, b = cluster.cluster(2)
    if cluster.name == "sim":
        cluster.sim.set_latency("host1", "host2", 0.2)
    collector = b.spawn_register("collector", Collector)

    class Sender(Actor):
        def init(self) -> None:
            self.n = 0

        def handle_message(self, from_: Any, message: Any) -> None:
            for _ in range(message):
                self.send(ProcessID("collector", b.name), (self.n, "x" * 8000))
                self.n += 1

    sender = a.spawn(Sender)
    while enp_order(sender) % 3 == 0:  # one whose link is not the first of the pool
        sender = a.spawn(Sender)
    a.send(sender, 200)  # dials; these wait for the connection, then all take its first link
    peer = str.__str__(b.name)
    cluster.run_until(lambda: peer in a.network()._connections and len(a.network()._connections[peer].links) == 3)
    a.send(sender, 10)
    got = b.call(collector, ("wait", 210), timeout=60)
    assert [m[0] for m in got] == list(range(210))


def test_a_monitor_made_before_a_message_is_in_place_when_the_message_arrives(cluster):
    """A process monitors a remote process and then sends it a message that ends it: the
    down carries the real reason (the Monitor frame got there first, as Erlang orders the
    signals of one process), not ProcessUnknown, even when the pool's first link is busy
    (simulation: 200 ms each way, another sender's 1.6 MB on it)."""
    a, b = cluster.cluster(2)
    if cluster.name == "sim":
        cluster.sim.set_latency("host1", "host2", 0.2)
    b.spawn_register("collector", Collector)

    class Victim(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            raise RuntimeError("told to die")

    class Hog(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            for i in range(200):
                self.send(ProcessID("collector", b.name), (i, "x" * 8000))

    class MonitorThenSend(PlainWatcher):
        def handle_message(self, from_: Any, message: Any) -> None:
            if isinstance(message, tuple) and message[0] == "kill":
                self.monitor(message[1])
                self.send(message[1], "die")
            else:
                super().handle_message(from_, message)

    victim = b.spawn(Victim)
    assert a.call(b.spawn(Counter), "incr") == 1
    peer = str.__str__(b.name)
    cluster.run_until(lambda: len(a.network()._connections[peer].links) == 3)
    hog = a.spawn(Hog)
    while enp_order(hog) % 3 != 0:  # a hog on the pool's first link
        hog = a.spawn(Hog)
    watcher = a.spawn(MonitorThenSend)
    while enp_order(watcher) % 3 == 0:  # a watcher on another one
        watcher = a.spawn(MonitorThenSend)
    a.send(hog, "go")
    a.send(watcher, ("kill", victim))
    (down,) = a.call(watcher, ("wait", 1), timeout=60)
    assert down == MessageDownPID(victim, TerminateReasonPanic)


def test_a_remote_event_buffer_comes_before_later_events(cluster):
    """The buffer returned to a remote subscriber reaches it before the events the producer
    sends once subscribed (here: at once, on MessageEventStart), even when the pool's first
    link is busy (simulation: 200 ms each way, another sender's 1.6 MB on it)."""
    a, b = cluster.cluster(2)
    if cluster.name == "sim":
        cluster.sim.set_latency("host1", "host2", 0.2)
    a.spawn_register("collector", Collector)

    class Producer(Actor):
        def init(self) -> None:
            self.token = self.register_event("news", notify=True, buffer=2)
            self.send_event("news", self.token, "old 1")
            self.send_event("news", self.token, "old 2")

        def handle_message(self, from_: Any, message: Any) -> None:
            if type(message).__name__ == "MessageEventStart":
                self.send_event("news", self.token, "new")

    class Hog(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            for i in range(200):
                self.send(ProcessID("collector", a.name), (i, "x" * 8000))

    assert a.call(b.spawn(Counter), "incr") == 1
    peer = str.__str__(a.name)
    cluster.run_until(lambda: peer in b.network()._connections and len(b.network()._connections[peer].links) == 3)
    producer = b.spawn(Producer)
    while enp_order(producer) % 3 == 0:  # a producer off the pool's first link
        producer = b.spawn(Producer)
    hog = b.spawn(Hog)
    while enp_order(hog) % 3 != 0:  # a hog on it
        hog = b.spawn(Hog)
    b.send(hog, "go")
    subscriber = a.spawn(Watcher)
    assert a.call(subscriber, ("monitor", Event("news", b.name))) == []
    got = a.call(subscriber, ("wait", 3), timeout=60)
    assert [m.message for m in got] == ["old 1", "old 2", "new"]


def test_demonitor_then_monitor_from_another_process_keeps_the_subscription(cluster):
    """The last local monitor of a remote target goes and another process monitors it at
    once: the Demonitor and the Monitor frame may take different links of the pool and
    arrive the other way round; the new monitor must neither be refused (TargetExist) nor
    lose its subscription: it hears the target's real end (simulation: 200 ms each way,
    another sender's 1.6 MB on the link the Demonitor takes)."""
    a, b = cluster.cluster(2)
    if cluster.name == "sim":
        cluster.sim.set_latency("host1", "host2", 0.2)
    b.spawn_register("collector", Collector)

    class Hog(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            for i in range(200):
                self.send(ProcessID("collector", b.name), (i, "x" * 8000))

    class Handover(PlainWatcher):
        def handle_message(self, from_: Any, message: Any) -> None:
            if isinstance(message, tuple) and message[0] == "handover":
                _, target, successor = message
                self.demonitor(target)
                self.send(successor, ("monitor", target))  # a local message: the successor monitors at once
            else:
                super().handle_message(from_, message)

    target = b.spawn(Counter)
    assert a.call(target, "incr") == 1
    peer = str.__str__(b.name)
    cluster.run_until(lambda: len(a.network()._connections[peer].links) == 3)
    hog = a.spawn(Hog)
    while enp_order(hog) % 3 != 0:  # a hog on the pool's first link
        hog = a.spawn(Hog)
    first = a.spawn(Handover)
    while enp_order(first) % 3 != 0:  # its Demonitor behind the hog's
        first = a.spawn(Handover)
    successor = a.spawn(PlainWatcher)
    while enp_order(successor) % 3 == 0:  # its Monitor on a free link
        successor = a.spawn(PlainWatcher)
    a.send(first, ("monitor", target))
    cluster.run_until(lambda: target in b._pubsub._monitors)
    a.send(hog, "go")
    a.send(first, ("handover", target, successor))
    cluster.run_until(lambda: a.process_info(successor).monitors == (target,))  # both frames are out
    conn = a.network()._connections[peer]
    cluster.run_until(lambda: not conn.waiting, timeout=60)  # and b has answered both
    assert a.call(successor, "messages") == []  # not told anything: the target lives
    assert list(b._pubsub._monitors.get(target, ())) == [a.pid]  # still subscribed there
    b.send_exit(target, ValueError("the end"))
    (down,) = a.call(successor, ("wait", 1), timeout=60)
    assert isinstance(down, MessageDownPID) and "the end" in str(down.reason)


def test_a_peer_s_watches_are_forgotten_with_their_targets(cluster):
    """What a node keeps for a peer's links and monitors goes when the targets go (no
    Demonitor follows a down), and when the peer withdraws them."""
    a, b = cluster.cluster(2)
    watcher = a.spawn(Watcher)
    targets = [b.spawn(Counter) for _ in range(5)]
    for t in targets:
        a.call(watcher, ("monitor", t))
        a.call(watcher, ("link", t))
    assert a.call(watcher, ("call", targets[0], "incr")) == ("ok", 1)
    consumer = b.network()._consumers[str.__str__(a.name)]
    assert len(consumer.watches) == 10
    for t in targets:
        b.send_exit(t, ValueError("bye"))
    a.call(watcher, ("wait", 10))
    assert consumer.watches == {} and consumer._monitored == {} and consumer._linked == {}
    alive = b.spawn(Counter)
    a.call(watcher, ("monitor", alive))
    a.call(watcher, ("demonitor", alive))
    assert a.call(watcher, ("call", alive, "incr")) == ("ok", 1)
    # (the Demonitor goes once the Monitor is answered: see test_a_withdrawal_cannot_overtake_its_subscription)
    cluster.run_until(lambda: consumer.watches == {} and consumer._monitored == {})


def test_a_call_queued_while_dialing_and_too_large_for_the_peer_fails_at_once(cluster):
    """The peer's limit is known only once connected: a request that waited for the
    connection and is above it fails the caller with TooLarge then, not at its timeout."""
    a = cluster.start(1)
    b = cluster.start(2, max_message_size=4096)
    cluster.route_all()
    b.spawn_register("counter", Counter)
    watcher = a.spawn(Watcher)
    started = cluster.now
    result = a.call(watcher, ("call", ProcessID("counter", b.name), "x" * 10_000, 30), timeout=60)
    assert result[:2] == ("error", "TooLarge")
    assert cluster.now - started < 5
    assert a.call(ProcessID("counter", b.name), "incr") == 1  # the connection serves on


def test_a_graceful_stop_tells_remote_watchers_the_real_reasons(cluster):
    """node.stop() ends every process with ``shutdown`` and then closes its connections:
    what the processes' ends sent (Terminate frames, failed calls) reaches the peers
    before the close, instead of being thrown away with a reset."""
    a, b = cluster.cluster(2)
    target = b.spawn_register("counter", Counter)
    b.spawn_register("slow", Counter)
    watcher = a.spawn(Watcher)
    a.call(watcher, ("monitor", target))
    a.call(watcher, ("monitor", Atom(str.__str__(b.name))))
    assert a.call(watcher, ("call", target, "incr")) == ("ok", 1)
    caller = hold_a_call(cluster, a, ProcessID("slow", b.name))
    b.stop()
    got = a.call(watcher, ("wait", 2))
    assert got[0] == MessageDownPID(target, TerminateReasonShutdown)
    assert got[1] == MessageDownNode(b.name)
    assert a.call(caller, ("wait", 1)) == ["NodeTerminated"]  # the slow process ended with its node
    assert not [t for t in a.captured.texts() if "reset" in t]


def test_a_watcher_is_told_even_when_the_terminate_frame_is_lost_with_its_link():
    """(sim.)  The target's end is queued on its pool link, which then breaks: the Terminate
    frame is lost, so the connection goes down and the remote watcher is told NoConnection
    rather than keeping its monitor for ever; the next call dials again."""
    cluster = SimCluster()
    try:
        a, b = cluster.cluster(2)
        target = b.spawn(Counter)
        watcher = a.spawn(Watcher)
        a.call(watcher, ("monitor", target))
        assert a.call(watcher, ("call", target, "incr")) == ("ok", 1)
        peer = str.__str__(a.name)
        cluster.run_until(lambda: len(b.network()._connections[peer].links) == 3)
        conn = b.network()._connections[peer]
        b.send_exit(target, ValueError("bye"))
        conn.routes[enp_order(target)].stream.abort()  # before the queued Terminate frame is written
        got = a.call(watcher, ("wait", 1))
        assert [type(m) for m in got] == [MessageDownPID] and isinstance(got[0].reason, NoConnection)
        assert a.call(b.spawn(Counter), "incr") == 1  # connected again
    finally:
        cluster.close()


def test_a_remote_event_keeps_its_producer_s_priority(cluster):
    """An event sent with high priority reaches a busy remote subscriber ahead of the
    ordinary messages already waiting in its mailbox, as it does a local one."""
    a, b = cluster.cluster(2)
    order: list = []
    gate = a.spawn_register("gate", Counter)  # holds a call ("later") until told to answer

    class Busy(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            order.append(message)
            if message == "block":
                await self.call(gate, "later", timeout=60)

        def handle_event(self, message: Any) -> None:
            order.append(("event", message.message))

        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            return self.monitor(request)

    class Urgent(Actor):
        def init(self) -> None:
            self.send_priority = MessagePriority.HIGH
            self.token = self.register_event("alarm")

        def handle_message(self, from_: Any, message: Any) -> None:
            self.send_event("alarm", self.token, message)

    producer = b.spawn(Urgent)
    busy = a.spawn(Busy)
    assert a.call(busy, Event("alarm", b.name)) == []
    cluster.run_until(lambda: Event("alarm", b.name) in b._pubsub._monitors)
    a.send(busy, "block")
    cluster.run_until(lambda: a._names["gate"].held)  # busy waits for the gate
    a.send(busy, "m1")
    a.send(busy, "m2")
    b.send(producer, "fire")
    cluster.run_until(lambda: sum(a.process_info(busy).mailbox_queues.values()) == 3)
    a.send(gate, "answer")
    cluster.run_until(lambda: len(order) == 4)
    assert order == ["block", ("event", "fire"), "m1", "m2"]


def _joining_pool(c: SimCluster) -> tuple[Any, Any]:
    """n1 and n2 of ``c`` with pools of three links, 50 ms apart: n1's first send to n2
    made its connection, which is up, and its two joins are being dialed."""
    a, b = c.cluster(2, pool_size=3)
    c.sim.set_latency("host1", "host2", 0.05)
    a.send(b.spawn(Collector), "hello")
    c.run_until(lambda: "n2@host2" in a.network()._connections)
    return a, b


@pytest.mark.parametrize("stage", ["connecting", "handshake"])
def test_a_graceful_stop_with_pool_links_in_their_handshake_does_not_warn_the_peer(stage):
    # the stopping node reset the pool's links still in their handshake, and the peer
    # logged each as an attack would be: "refused a connection from host1:...: connection
    # closed during the handshake (in state wait_hello): connection reset by peer"
    from ergo import LogLevel

    c = SimCluster()
    try:
        a, b = _joining_pool(c)
        joins = a.network()._connections["n2@host2"].joins
        if stage == "connecting":  # a's connects have not completed yet (b accepts them on a's ACK)
            c.run_until(lambda: len(joins) == 2)
            assert not a.network()._handshaking and not [j for j in joins if j.done()]
        else:  # a's links are in their handshake
            c.run_until(lambda: len(a.network()._handshaking) == 2)
        assert len(a.network()._connections["n2@host2"].links) == 1
        a.stop()
        c.run_for(1)
        assert not b.network().nodes()
        assert not [t for t in b.captured.texts(LogLevel.WARNING) if "refused" in t or "closed" in t]
        assert not [t for t in b.captured.texts(LogLevel.ERROR)]
        said = [t for t in b.captured.texts(LogLevel.INFO) if "ended in its handshake" in t]
        if stage == "connecting":  # given up before they connected: b never had them
            assert said == [] and not b.network()._handshaking
        else:
            assert len(said) == 2 and all("the dialer gave up" in t and "node n1@host1 stopped" in t
                                          for t in said), said
    finally:
        c.close()


@pytest.mark.parametrize("why", ["partition", "latency"])
def test_a_graceful_stop_gives_up_a_pending_dial_at_once_leaving_no_timer(why):
    # the stop let a pending dial go on for connect_timeout, to refuse its handshake in
    # words: its timer outlived the node (the clock ran on for it; it fired into a stopped
    # node). In simulation a dial given up never reaches the peer's program (its side opens
    # on the dialer's ACK), so there is nothing to refuse: it is given up at once.
    from ergo import LogLevel

    c = SimCluster()
    try:
        a, b = c.cluster(2)
        if why == "partition":
            c.sim.partition("host1", "host2")
        else:
            c.sim.set_latency("host1", "host2", 1.0)
        dial = a.network().connect(b.name)
        c.run_for(0.5 if why == "partition" else 1.5)  # the SYN waits, or its SYN-ACK is on its way back
        assert not dial.done()
        b.stop()
        a.stop()
        stopped = c.now
        c.sim.run()  # nothing is left to happen but what is on the wire: no timer of the stopped nodes
        # (across the partition nothing moves; with latency, the SYN-ACK lands at 2 s and the
        # dialer's reset answering it at 3 s)
        assert c.now == (stopped if why == "partition" else pytest.approx(3.0))
        with pytest.raises(NoConnection, match="stopped"):
            dial.result()
        if why == "partition":
            c.sim.repair()
        c.sim.run()
        assert [p for p in c.sim.host("host1").ports.stream] == []  # the dial's port is free
        assert not [t for t in b.captured.texts(LogLevel.INFO) if "n1@host1" in t and "stopp" not in t]
    finally:
        c.close()


def test_a_close_in_the_handshake_from_an_unknown_party_still_warns():
    from ergo import LogLevel
    from ergo.transport import StreamProtocol

    class Hangs(StreamProtocol):
        def connection_made(self, stream: Any) -> None:
            stream.write(b"W")  # the start of a handshake message, then nothing but a close
            stream.close()

    c = SimCluster()
    try:
        (b,) = [c.start(2)]
        host, port = b.network()._listeners[0].address
        c.sim.host("host1").transport.connect(host, port, Hangs)
        c.run_for(1)
        said = b.captured.texts(LogLevel.WARNING)
        assert any("refused a connection from host1:" in t and "closed during the handshake" in t
                   for t in said), said
    finally:
        c.close()


@pytest.mark.parametrize("stage", ["connecting", "handshake"])
def test_a_graceful_stop_of_the_acceptor_with_pool_links_in_their_handshake_does_not_warn_the_dialer(stage):
    # the other side of the test above: a REFUSE for a JOIN the stopping acceptor had
    # answered reached a dialer done with it as a late refusal ("link to ... closed: the
    # peer refused it after the handshake", a warning); such a link is closed as the pool's are
    from ergo import LogLevel

    c = SimCluster()
    try:
        a, b = _joining_pool(c)
        if stage == "connecting":
            c.run_until(lambda: len(b.network()._accepted_handshakes) == 2)
        else:  # b has answered their JOINs: a may finish them before b's close arrives
            c.run_until(lambda: sum(link.hs is not None and link.hs.state == "wait_ready"
                                    for link in b.network()._handshaking) == 2)
        b.stop()
        c.run_for(1)
        assert not a.network().nodes()
        assert not [t for t in a.captured.texts(LogLevel.WARNING) if "refused" in t or "closed" in t]
        assert not [t for t in a.captured.texts(LogLevel.ERROR)]
    finally:
        c.close()

"""What a service meets over hours and days of running: peers that restart or vanish,
network errors that repeat for an hour, callers that give up.  Each test pins a bound
that a short test would never reach (log lines per hour, memory per reconnect, entries
per cancelled call), on the simulated clock where it can be."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from network_support import AsyncioCluster, SimCluster
from support import ListLogger

import sim
from ergo import Actor, LogOptions, NetworkOptions, NodeOptions, NodeTerminated, NoReply, ProcessID, ProcessTerminated
from ergo.network import network as network_module


class Sink(Actor):
    def handle_message(self, from_: Any, message: Any) -> None:
        pass


def test_failed_dials_to_a_gone_peer_are_logged_at_a_bounded_rate() -> None:
    """A service that keeps sending to a peer that is gone dials it at every send, and
    each failed dial was a warning: ten sends a second made 36,000 lines an hour.  Now the
    first failure is logged at once and then at most one line per
    DIAL_FAILURE_LINES_EVERY seconds, which says how many it stands for, and the line
    saying the peer is connected again tells how many were not logged."""
    cluster = SimCluster()
    try:
        a, b = cluster.cluster(2)
        b.spawn_register("sink", Sink)
        target = ProcessID("sink", b.name)
        a.send(target, "hello")
        cluster.run_until(lambda: a.network().nodes())
        cluster.sim.kill_node(str.__str__(b.name))
        cluster.run_until(lambda: not a.network().nodes())
        seconds = 120
        for _ in range(seconds * 10):
            a.send(target, "anyone?")
            cluster.run_for(0.1)
        failed = [t for t in a.captured.texts() if "cannot connect to n2@host2" in t]  # type: ignore[attr-defined]
        every = network_module.DIAL_FAILURE_LINES_EVERY
        assert 2 <= len(failed) <= seconds / every + 1
        assert "connection refused" in failed[0] and "more failed since the last such line" in failed[-1]
        b2 = cluster.start(2)
        b2.spawn_register("sink", Sink)
        a.send(target, "back?")
        cluster.run_until(lambda: a.network().nodes())
        connected = [t for t in a.captured.texts() if t.startswith("network: connected to n2@host2")]  # type: ignore[attr-defined]
        assert "failed dials not logged" in connected[-1]
        assert not a.network()._dial_failures
    finally:
        cluster.close()


def test_the_table_of_failed_dials_is_bounded() -> None:
    """Failed dials are remembered per peer name, and the names are whatever the node's
    processes send to: the table keeps at most MAX_DIAL_FAILURE_PEERS, forgetting the
    peer logged longest ago, which is logged again at its next failure."""
    cluster = SimCluster()
    try:
        (a,) = cluster.cluster(1)
        network = a.network()
        limit = network_module.MAX_DIAL_FAILURE_PEERS
        for i in range(limit + 10):
            network._log_dial_failure(f"x{i}@nowhere", RuntimeError("refused"))
        assert len(network._dial_failures) == limit
        kept = network._dial_failures._keys
        assert "x0@nowhere" not in kept and f"x{limit + 9}@nowhere" in kept
        cluster.run_for(1.0)  # (a new second: at most DIAL_FAILURES_LOGGED lines a second, whatever the names)
        before = len(a.captured.texts())  # type: ignore[attr-defined]
        network._log_dial_failure("x0@nowhere", RuntimeError("refused"))  # forgotten: logged again
        network._log_dial_failure(f"x{limit + 9}@nowhere", RuntimeError("refused"))  # remembered: counted
        assert len(a.captured.texts()) == before + 1  # type: ignore[attr-defined]
    finally:
        cluster.close()


class Holder(Actor):
    """Never answers a call (``NoReply``); ``cancel-own`` makes it call ``target`` itself and
    cancel that call's future, answering how many calls it still has pending."""

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return NoReply

    async def handle_message(self, from_: Any, message: Any) -> None:
        target, report = message
        calls = [self.call(target, "hold", timeout=60) for _ in range(10)]
        for fut in calls:
            fut.cancel()
        self.send(report, len(self._pending or ()))


def _owed(node: Any) -> int:
    """The calls the node's processes owe, and the calls it made that are still outstanding."""
    owed = sum(len(p._calls_in or ()) for p in node._processes.values())
    conns = node.network()._connections.values() if node._network is not None else ()
    return owed + len(node._core_pending) + len(node._timeouts) + sum(len(c._calls_in or ()) for c in conns)


def test_a_cancelled_call_lets_go_of_what_it_held() -> None:
    """An asyncio task cancelled while it awaits ``node.call_async`` (a web handler whose
    client went away), a ``wait_for`` that gives up, a handler that cancels its
    ``self.call``: the call ends then, as an answered one does.  It held its entry, its
    deadline and its target's debt until its timeout, so cancelled calls with a long
    timeout piled up in the caller's tables (1000 cancelled calls: 1000 entries)."""
    cluster = AsyncioCluster()
    try:
        a, b = cluster.cluster(2)
        local, remote = a.spawn(Holder), b.spawn(Holder)
        loop = cluster.loop

        async def cancel_calls(to: Any) -> None:
            tasks = [loop.create_task(a.call_async(to, "hold", timeout=60)) for _ in range(100)]
            await asyncio.sleep(0)  # the calls are made
            assert _owed(a) + _owed(b) >= 100
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            assert all(t.cancelled() for t in tasks)

        loop.run_until_complete(cancel_calls(local))
        assert _owed(a) == 0
        loop.run_until_complete(cancel_calls(remote))
        assert _owed(a) == 0
        cluster.run_until(lambda: _owed(b) == 100)  # b still owes them: nothing tells it (Ergo has no frame for it)
        answers: list[Any] = []

        class Report(Actor):
            def handle_message(self, from_: Any, message: Any) -> None:
                answers.append(message)

        report = a.spawn(Report)
        a.send(a.spawn(Holder), (local, report))
        cluster.run_until(lambda: answers)
        assert answers == [0] and _owed(a) == 0
    finally:
        cluster.close()


def test_a_remote_caller_is_told_which_node_ended_its_call() -> None:
    """A call in flight to a process of a node that stops fails at once with
    NodeTerminated, and a caller on another node read "<0022F931.0.1001> terminated
    (shutdown) before it replied": its own node's end, by the error's name, and a PID
    whose node only a CRC says.  It now names the node, and that it is that node which
    stops; a local caller's text is unchanged."""
    cluster = SimCluster()
    try:
        a, b = cluster.cluster(2)
        held, killed = b.spawn_register("held", Holder), b.spawn_register("killed", Holder)
        calls: dict[Any, BaseException] = {}

        class Caller(Actor):
            async def handle_message(self, from_: Any, message: Any) -> None:
                try:
                    await self.call(message, "hold", timeout=60)
                except Exception as e:
                    calls[message] = e

        for target in (held, killed):
            a.send(a.spawn(Caller), target)
        cluster.run_until(lambda: sum(len(p._calls_in or ()) for p in b._processes.values()) == 2)
        b.kill(killed)
        cluster.run_until(lambda: killed in calls)
        assert isinstance(calls[killed], ProcessTerminated)
        assert f"{killed} of node n2@host2 terminated (kill) before it replied" == str(calls[killed])
        b.stop()
        cluster.run_until(lambda: held in calls)
        assert isinstance(calls[held], NodeTerminated)
        assert str(calls[held]) == (f"{held} of node n2@host2 terminated (shutdown; node n2@host2 is stopping) "
                                    "before it replied")
    finally:
        cluster.close()


def test_a_node_with_the_wrong_cookie_is_refused_in_a_bounded_number_of_lines() -> None:
    """A node given the wrong cookie dials at each of its sends, and the acceptor logged
    each refusal (up to 100 a second): ten sends a second made 36,000 lines an hour on
    the node it dials.  The same refusal of the same node (its host and the name it
    gives) is now logged at most once every REFUSAL_REPEATS_EVERY seconds, saying how
    many it stands for; another node's refusal is still logged at once."""
    cluster = SimCluster()
    try:
        a, b = cluster.cluster(2)
        b.spawn_register("sink", Sink)
        wrong = [cluster.start(3, cookie="wrong"), cluster.start(4, cookie="wrong too")]
        for node in wrong:
            cluster.route(node, b)
        seconds = 120
        for _ in range(seconds * 10):
            for node in wrong:
                node.send(ProcessID("sink", b.name), "let me in")
            cluster.run_for(0.1)
        refused = [t for t in b.captured.texts() if "refused a connection" in t]  # type: ignore[attr-defined]
        every = network_module.REFUSAL_REPEATS_EVERY
        for name in ("n3@host3", "n4@host4"):
            lines = [t for t in refused if f"it says it is '{name}'" in t]
            assert 2 <= len(lines) <= seconds / every + 1
            assert "more such refusals since the last such line" in lines[-1]
    finally:
        cluster.close()


def test_a_peer_with_a_shorter_heartbeat_timeout_is_sent_heartbeats_often_enough() -> None:
    """Two nodes configured apart: b declares a link down after 5 s of silence, a sends a
    heartbeat on an idle link only every 10 s.  b declared every idle connection to a down
    ("nothing heard from a for 5.0 s", as if a were gone), every monitor across it fired
    NoConnection, and the next send connected again: for ever, every few seconds.  A node
    now says its heartbeat_timeout in the handshake, and a peer whose interval would not
    keep up sends its heartbeats to it more often (a third of that timeout), saying so."""
    cluster = SimCluster()
    try:
        a = cluster.start(1, heartbeat_interval=10.0, heartbeat_timeout=30.0)
        b = cluster.start(2, heartbeat_interval=1.0, heartbeat_timeout=5.0)
        cluster.route_all()
        b.spawn_register("sink", Sink)
        a.send(ProcessID("sink", b.name), "hello")
        cluster.run_until(lambda: a.network().nodes() and b.network().nodes())
        conn = a.network()._connections["n2@host2"]
        cluster.run_for(120)  # idle
        assert a.network()._connections.get("n2@host2") is conn and conn.state == "up"
        for node in (a, b):
            assert not [t for t in node.captured.texts() if "disconnected" in t]  # type: ignore[attr-defined]
        (said,) = [t for t in a.captured.texts() if "declares a link down after 5 s" in t]  # type: ignore[attr-defined]
        assert "heartbeats to it go every 1.67 s" in said
        # the other way round nothing changes: b's own interval is short enough for a
        assert b.network()._connections["n1@host1"].heartbeat_interval == 1.0
    finally:
        cluster.close()


def test_a_peer_cannot_make_a_node_send_heartbeats_without_pause() -> None:
    """A peer saying a heartbeat_timeout of a few milliseconds gets heartbeats no more often
    than MIN_PEER_HEARTBEAT_INTERVAL: a third of its word would have this node write one
    every millisecond on each of its links."""
    cluster = SimCluster()
    try:
        a = cluster.start(1)
        b = cluster.start(2)
        cluster.route_all()
        a.spawn_register("sink", Sink)
        # b says 3 ms in the introduction of the connection it dials
        b.network().hs_info = dataclasses.replace(b.network().hs_info, heartbeat_timeout=3)
        b.send(ProcessID("sink", a.name), "hello")
        cluster.run_until(lambda: "n2@host2" in a.network()._connections)
        conn = a.network()._connections["n2@host2"]
        assert conn.peer is not None and conn.peer.heartbeat_timeout == 3
        assert conn.heartbeat_interval == network_module.MIN_PEER_HEARTBEAT_INTERVAL
    finally:
        cluster.close()


class _Silent:
    """A program that took the registrar's port: it accepts and never answers."""

    def connection_made(self, stream: Any) -> None:
        self.stream = stream

    def data_received(self, data: Any) -> None:
        pass

    def connection_lost(self, error: Any) -> None:
        pass

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass


def test_a_registration_that_keeps_failing_is_said_again_ever_more_seldom() -> None:
    """The node serving a host's registrar dies and another program takes its port: the
    node left keeps trying to register, and only its first failure was a warning (the rest
    debug), so an hour later nothing said it was still unregistered (its peers get
    NoRoute).  The streak is now said again at 10 and 100 attempts, then every 600."""
    s = sim.Sim(seed=1)
    opts = NodeOptions(network=NetworkOptions(cookie="c"), log=LogOptions(default_logger=False))
    s.start_node("a@host1", opts)
    c = s.start_node("c@host1", opts)
    captured = ListLogger()
    c.logger_add("captured", captured)
    s.run_for(1)
    s.kill_node("a@host1")
    s.host("host1").transport.listen("host1", 4499, _Silent)
    s.run_for(3600)
    texts = captured.texts()
    assert len([t for t in texts if "registering c@host1 with host1:4499 failed" in t]) == 1
    still = [t for t in texts if t.startswith("registrar: c@host1 is still not registered with host1:4499")]
    assert 3 <= len(still) <= 5
    assert "10 attempts failed in" in still[0] and "(the last: no RegisterReply within 2.0 s)" in still[0]
    assert c.network().info()["registrar"]["nodes"] == {"c@host1": "registering"}

"""What a service meets over hours and days of running: peers that restart or vanish,
network errors that repeat for an hour, callers that give up.  Each test pins a bound
that a short test would never reach (log lines per hour, memory per reconnect, entries
per cancelled call), on the simulated clock where it can be."""

from __future__ import annotations

from typing import Any

from network_support import SimCluster

from ergo import Actor, ProcessID
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
        assert "x0@nowhere" not in network._dial_failures and f"x{limit + 9}@nowhere" in network._dial_failures
        before = len(a.captured.texts())  # type: ignore[attr-defined]
        network._log_dial_failure("x0@nowhere", RuntimeError("refused"))  # forgotten: logged again
        network._log_dial_failure(f"x{limit + 9}@nowhere", RuntimeError("refused"))  # remembered: counted
        assert len(a.captured.texts()) == before + 1  # type: ignore[attr-defined]
    finally:
        cluster.close()

"""The simulated clock: what `Sim.run` and friends do with virtual time."""

from __future__ import annotations

import pytest
from support import Collector, SimBackend

from ergo import Actor, Incorrect


def test_run_stops_at_the_last_real_event_not_at_cancelled_timeouts():
    b = SimBackend()
    node = b.node()
    pid = node.spawn(Collector)
    for _ in range(3):
        node.call(pid, "messages")  # each leaves a cancelled 5 s timeout behind
    b.sim.run()
    assert b.sim.now == 0


def test_run_still_reaches_live_timers_and_run_for_advances_exactly():
    b = SimBackend()
    node = b.node()
    sink = node.spawn(Collector)

    class Later(Actor):
        def init(self) -> None:
            self.send_after(sink, "at 7", 7)
            self.send_after(sink, "cancelled at 9", 9).cancel()

    node.spawn(Later)
    b.sim.run()
    assert b.sim.now == 7 and node.call(sink, "messages") == ["at 7"]
    b.sim.run_for(2.5)
    assert b.sim.now == 9.5
    b.sim.run(until=3)  # the past: nothing happens
    assert b.sim.now == 9.5
    with pytest.raises(Incorrect):
        b.sim.run_for(-1)


def test_hosts_and_node_names_must_agree():
    b = SimBackend()
    with pytest.raises(Incorrect, match="names host"):
        b.sim.host("alpha").start_node("n@beta")
    b.sim.host("alpha").start_node("n@alpha")
    with pytest.raises(Exception, match="already runs"):
        b.sim.host("alpha").start_node("n@alpha")
    with pytest.raises(Incorrect):
        b.sim.host("a@b")

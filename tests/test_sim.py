"""The simulated clock: what `Sim.run` and friends do with virtual time."""

from __future__ import annotations

from typing import Any

import pytest
from support import Collector

import sim
from ergo import Actor, Incorrect, Node


def test_run_stops_at_the_last_real_event_not_at_cancelled_timeouts(simulation: sim.Sim, sim_node: Node):
    node = sim_node
    pid = node.spawn(Collector)
    for _ in range(3):
        node.call(pid, "messages")  # each leaves a cancelled 5 s timeout behind
    simulation.run()
    assert simulation.now == 0


def test_run_still_reaches_live_timers_and_run_for_advances_exactly(simulation: sim.Sim, sim_node: Node):
    node = sim_node
    sink = node.spawn(Collector)

    class Later(Actor):
        def init(self) -> None:
            self.send_after(sink, "at 7", 7)
            self.send_after(sink, "cancelled at 9", 9).cancel()

    node.spawn(Later)
    simulation.run()
    assert simulation.now == 7 and node.call(sink, "messages") == ["at 7"]
    simulation.run_for(2.5)
    assert simulation.now == 9.5
    simulation.run(until=3)  # the past: nothing happens
    assert simulation.now == 9.5
    with pytest.raises(Incorrect):
        simulation.run_for(-1)


def test_hosts_and_node_names_must_agree(simulation: sim.Sim):
    with pytest.raises(Incorrect, match="names host"):
        simulation.host("alpha").start_node("n@beta")
    simulation.host("alpha").start_node("n@alpha")
    with pytest.raises(Exception, match="already runs"):
        simulation.host("alpha").start_node("n@alpha")
    with pytest.raises(Incorrect):
        simulation.host("a@b")


def test_events_counts_what_ran_and_a_seed_gives_the_same_count():
    def run() -> int:
        s = sim.Sim(7)
        node = s.start_node("n@localhost")
        pid = node.spawn(Collector)
        before = s.events
        for i in range(10):
            node.send(pid, i)
        s.run_for(1.0)
        assert s.events > before  # the drain that delivered them ran
        sent = s.events
        assert node.call(pid, "messages") == list(range(10))
        assert s.events > sent  # a blocking call steps the clock too, and counts
        return s.events

    assert run() == run()


def test_run_until_quiet_counts_the_events_it_ran_as_run_for_does():
    # run() stepped the environment without counting: Sim.events (and the runner's
    # events line) left out everything a scenario ran with s.run()
    def delivered(run: Any) -> sim.Sim:
        s = sim.Sim(7)
        node = s.start_node("n@localhost")
        pid = node.spawn(Collector)
        for i in range(10):
            node.send(pid, i)
        run(s)
        return s

    quiet = delivered(lambda s: s.run())
    timed = delivered(lambda s: s.run(until=quiet.now))
    assert timed.events > 0
    assert quiet.events == timed.events

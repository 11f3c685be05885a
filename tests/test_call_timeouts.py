"""A call's timeout: each call ends exactly at its own deadline, whatever timeouts other
calls use, while the node keeps one timer for all of them (ergo/node/calls.py)."""

from __future__ import annotations

from typing import Any

from test_calls_fail_fast import Holder

from ergo import Actor, Timeout
from ergo.node.calls import DEADLINE, CallTimeouts
from ergo.scheduler import Scheduler


class TimedCaller(Actor):
    """Calls ``target`` once with ``timeout`` and writes what happened into ``outcomes``
    (read by the test directly: a process awaiting a call answers no call itself)."""

    def init(self, target: Any, timeout: float, outcomes: dict[Any, str]) -> None:
        self.target, self.timeout, self.outcomes = target, timeout, outcomes

    async def handle_message(self, from_: Any, message: Any) -> None:
        try:
            await self.call(self.target, "q", timeout=self.timeout)
            self.outcomes[message] = "answered"
        except Timeout:
            self.outcomes[message] = "timeout"


def test_calls_with_different_timeouts_each_end_at_their_own_deadline(simulation, sim_node):
    holder = sim_node.spawn(Holder)
    outcomes: dict[Any, str] = {}
    for name, timeout in (("3", 3.0), ("1a", 1.0), ("2.5", 2.5), ("1b", 1.0)):
        sim_node.send(sim_node.spawn(TimedCaller, holder, timeout, outcomes), name)
    simulation.run_for(0.999)
    assert outcomes == {}
    simulation.run_for(0.001)  # t = 1.0: both one-second calls, no other
    assert outcomes == {"1a": "timeout", "1b": "timeout"}
    simulation.run_until(lambda: "2.5" in outcomes)
    assert simulation.now == 2.5 and "3" not in outcomes
    simulation.run_until(lambda: "3" in outcomes)
    assert simulation.now == 3.0 and len(outcomes) == 4


def test_a_shorter_timeout_started_later_ends_before_a_longer_one(simulation, sim_node):
    holder = sim_node.spawn(Holder)
    outcomes: dict[Any, str] = {}
    sim_node.send(sim_node.spawn(TimedCaller, holder, 10.0, outcomes), "slow")
    simulation.run_for(2.0)
    # its deadline, t = 3, is before the one the timer is armed for, t = 10
    sim_node.send(sim_node.spawn(TimedCaller, holder, 1.0, outcomes), "quick")
    simulation.run_until(lambda: "quick" in outcomes)
    assert simulation.now == 3.0 and outcomes == {"quick": "timeout"}
    simulation.run_until(lambda: "slow" in outcomes)
    assert simulation.now == 10.0


def test_answered_calls_leave_no_timer_behind_in_simulation(simulation, sim_node):
    holder = sim_node.spawn(Holder)
    outcomes: dict[Any, str] = {}
    sim_node.send(sim_node.spawn(TimedCaller, holder, 5.0, outcomes), "c")
    simulation.run_for(0.5)
    sim_node.send(holder, "answer all")
    simulation.run()  # runs until nothing is left to happen: no timer waits for t = 5
    assert outcomes == {"c": "answered"} and simulation.now == 0.5


class _Clock(Scheduler):
    """Just enough of a scheduler to drive CallTimeouts by hand."""

    def __init__(self, idle_timers_free: bool) -> None:
        self.t = 0.0
        self.idle_timers_free = idle_timers_free
        self.timers: list[list[Any]] = []

    def now(self) -> float:
        return self.t

    def time(self) -> float:
        return self.t

    def call_soon(self, fn: Any, *args: Any) -> None:
        fn(*args)

    def pending(self) -> int:
        return 0

    def call_later(self, delay: float, fn: Any, *args: Any) -> Any:
        timer = [self.t + delay, fn, args, False]

        class Handle:
            def cancel(self) -> None:
                timer[3] = True

        self.timers.append(timer)
        return Handle()

    def advance(self, to: float) -> None:
        self.t = to
        for timer in list(self.timers):
            if not timer[3] and timer[0] <= to:
                timer[3] = True
                timer[1](*timer[2])

    def armed(self) -> list[float]:
        return [t[0] for t in self.timers if not t[3]]

    def run_until(self, future: Any, timeout: float | None = None) -> bool:  # pragma: no cover
        raise NotImplementedError


def _entry(name: str) -> list[Any]:
    return [name, None, None, name, None, name]


def test_memory_stays_proportional_to_the_calls_outstanding():
    clock = _Clock(idle_timers_free=True)
    timeouts = CallTimeouts(clock, lambda e, t: None)
    live = []
    for i in range(20_000):
        entry = _entry(f"c{i}")
        timeouts.add(entry, 5.0)
        live.append(entry)
        if len(live) > 3:  # a few calls outstanding at any time, the rest answered
            timeouts.end(live.pop(0))
        # at most 4 outstanding: the FIFO holds at most twice that plus the slack, never all 20,000
        assert timeouts._queued <= 2 * 4 + 1024 + 1
    assert len(timeouts) == 3
    assert clock.armed() == [5.0]  # one timer for all of them, armed once


def test_expiry_order_and_rearming():
    clock = _Clock(idle_timers_free=False)
    expired: list[tuple[str, float]] = []
    timeouts = CallTimeouts(clock, lambda e, t: expired.append((e[0], t)))
    a, b, c, d = _entry("a"), _entry("b"), _entry("c"), _entry("d")
    timeouts.add(a, 2.0)
    timeouts.add(b, 2.0)
    timeouts.add(c, 1.0)
    timeouts.add(d, 2.0)
    assert a[DEADLINE] == 2.0 and clock.armed() == [1.0]
    timeouts.end(b)
    assert b == []  # an ended entry lets go of the future and its result at once
    clock.advance(1.0)
    assert expired == [("c", 1.0)] and clock.armed() == [2.0]
    clock.advance(2.0)
    assert expired == [("c", 1.0), ("a", 2.0), ("d", 2.0)]
    assert len(timeouts) == 0 and clock.armed() == []


def test_in_simulation_the_timer_goes_when_no_call_is_outstanding():
    clock = _Clock(idle_timers_free=False)
    timeouts = CallTimeouts(clock, lambda e, t: None)
    a = _entry("a")
    timeouts.add(a, 5.0)
    assert clock.armed() == [5.0]
    timeouts.end(a)
    assert clock.armed() == [] and timeouts._queued == 0

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

from typing import Any

import pytest

import sim
from ergo import Actor
from sim.scenario import cluster

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

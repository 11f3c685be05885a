"""One-way partition with monitors both ways.

Cluster: three nodes (``n1@host1`` .. ``n3@host3``), static routes, heartbeats every 1 s,
timeout 5 s.  Each of n1 and n2 runs a ``Watcher`` that monitors a process on the other
and the other node itself; n3 is a bystander both talk to.

Faults (from the seed): which direction is cut (n1 -> n2 or n2 -> n1), when, and for how
long (past the heartbeat timeout, so it is noticed).

Safety: no down arrives before the cut; after it, both watchers hear of it (the side that
hears nothing by its heartbeat check, the other by the reset that crosses back), each
with ``NoConnection``, within the heartbeat timeout plus an interval and a little; the
bystander n3 is never declared down by anyone.

Liveness: after the repair and a quiet phase, calls across succeed both ways and new
monitors hold (no down for them).
"""

from __future__ import annotations

from typing import Any

import sim
from ergo import Actor, Atom, MessageDownNode, MessageDownPID, NoConnection
from sim.scenario import cluster, process

HB_INTERVAL, HB_TIMEOUT = 1.0, 5.0


class Counter(Actor):
    def init(self) -> None:
        self.n = 0

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        self.n += 1
        return self.n


class Watcher(Actor):
    """Monitors what it is told to; keeps (virtual time, message) of what it hears."""

    def init(self) -> None:
        self.heard: list[tuple[float, Any]] = []

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        self.monitor(request)
        return "ok"

    def handle_message(self, from_: Any, message: Any) -> None:
        self.heard.append((self.node.scheduler.now(), message))


def heard(node: Any, pid: Any) -> list[tuple[float, Any]]:
    return list(process(node, pid, Watcher).heard)


def scenario(s: sim.Sim) -> None:
    rng = s.world.rng("scenario/one_way_partition")
    n1, n2, n3 = cluster(s, 3, heartbeat_interval=HB_INTERVAL, heartbeat_timeout=HB_TIMEOUT)
    watchers = {}
    for here, there in ((n1, n2), (n2, n1)):
        target = there.spawn(Counter)
        w = here.spawn(Watcher)
        here.call(w, target)
        here.call(w, Atom(there.name.value))
        here.call(w, Atom(n3.name.value))
        assert here.call(there.spawn(Counter), "hello") == 1
        watchers[here.name.value] = (here, w, target)

    s.run_for(rng.uniform(0.5, 3.0))
    for _, (node, w, _) in watchers.items():
        assert heard(node, w) == [], f"a down before any fault on {node.name}: {heard(node, w)}"

    src, dst = (("host1", "host2") if rng.random() < 0.5 else ("host2", "host1"))
    cut = s.now
    s.partition_oneway(src, dst)
    s.run_for(rng.uniform(HB_TIMEOUT + 2 * HB_INTERVAL, 3 * HB_TIMEOUT))

    # safety: both sides told, with NoConnection, in time; the bystander never
    bound = HB_TIMEOUT + HB_INTERVAL + 0.5
    for name, (node, w, target) in watchers.items():
        other = "n2@host2" if name == "n1@host1" else "n1@host1"
        got = heard(node, w)
        downs_pid = [(t, m) for t, m in got if isinstance(m, MessageDownPID)]
        downs_node = [(t, m) for t, m in got if isinstance(m, MessageDownNode)]
        assert len(downs_pid) == 1 and downs_pid[0][1].pid == target, \
            f"{name} after the cut {src}->{dst}: expected one down of {target}, heard {got}"
        assert isinstance(downs_pid[0][1].reason, NoConnection), \
            f"{name}: the down of {target} says {downs_pid[0][1].reason!r}, not NoConnection"
        assert [str.__str__(m.name) for _, m in downs_node] == [other], \
            f"{name}: expected {other} down (and not n3@host3), heard {[str.__str__(m.name) for _, m in downs_node]}"
        for t, _ in downs_pid + downs_node:
            assert cut <= t <= cut + bound, f"{name} heard of the cut at {t:.3f}, cut at {cut:.3f} (bound {bound})"

    # liveness: repaired and quiet, the two talk again and new monitors hold
    s.repair()
    s.run_for(2 * HB_INTERVAL)
    before = {name: len(heard(node, w)) for name, (node, w, _) in watchers.items()}
    for here, there in ((n1, n2), (n2, n1)):
        target = there.spawn(Counter)
        _, w, _ = watchers[here.name.value]
        here.call(w, target)
        assert here.call(target, "again", timeout=10) == 1, f"{here.name} cannot call {there.name} after repair"
    s.run_for(3 * HB_TIMEOUT)
    for name, (node, w, _) in watchers.items():
        assert len(heard(node, w)) == before[name], f"{name}: a down after the repair: {heard(node, w)[before[name]:]}"

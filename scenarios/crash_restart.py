"""Crash and restart with a new creation: old PIDs never reach the new process.

Cluster: ``n1@host1`` (the client) and ``n2@host2`` (the server, started by a start
function so that every boot spawns the same processes: a ``Collector`` as its first
process, registered ``"inbox"``).  Heartbeats every 1 s, timeout 5 s.

Workload: a ``Sender`` on n1 sends a numbered message every 0.1 s both to the first
run's inbox PID (kept from before the crash) and to the inbox by name.

Faults (from the seed): host2 crashes at a drawn time and restarts after a drawn delay
(0 to 8 s: before or after n1's heartbeat check finds it).

Safety: the new run's inbox has the same id as the old one, a new creation, and never
receives a message sent to the old PID (``ProcessIncarnation`` for the sender); what
each run's inbox got is in order, without duplicates; n1 hears of the crash as the
down of the old inbox with ``NoConnection``.

Liveness: after the restart and a quiet phase, messages by name reach the new inbox,
and a call to it succeeds.
"""

from __future__ import annotations

from typing import Any

import sim
from ergo import Actor, MessageDownPID, NoConnection, ProcessID, ProcessIncarnation
from sim.scenario import node_options, process, route

HB_INTERVAL, HB_TIMEOUT = 1.0, 5.0


class Collector(Actor):
    def init(self) -> None:
        self.got: list[Any] = []

    def handle_message(self, from_: Any, message: Any) -> None:
        self.got.append(message)

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return len(self.got)


class Sender(Actor):
    """Every 0.1 s sends ``("old", i)`` to the old PID and ``("name", i)`` to the name."""

    def init(self, old: Any, name: Any) -> None:
        self.old, self.by_name = old, name
        self.i = 0
        self.refused: list[tuple[int, str]] = []
        self.downs: list[Any] = []
        self.monitor(old)
        self.send_after(self.pid, "tick", 0.1)

    def handle_message(self, from_: Any, message: Any) -> None:
        if message != "tick":
            self.downs.append(message)
            return
        for target, tag in ((self.old, "old"), (self.by_name, "name")):
            try:
                self.send(target, (tag, self.i))
            except Exception as e:  # no connection yet, or the old incarnation
                self.refused.append((self.i, type(e).__name__))
        self.i += 1
        self.send_after(self.pid, "tick", 0.1)


def scenario(s: sim.Sim) -> None:
    rng = s.world.rng("scenario/crash_restart")
    opts = node_options(heartbeat_interval=HB_INTERVAL, heartbeat_timeout=HB_TIMEOUT)
    n1 = s.start_node("n1@host1", opts)
    runs: list[Any] = []

    def start(host: sim.Host) -> None:
        node = host.start_node("n2@host2", opts)
        route(node, n1)
        inbox = node.spawn_register("inbox", Collector)
        runs.append((node, inbox))

    s.on_start("host2", start)
    route(n1, runs[0][0])
    old_node, old_inbox = runs[0]
    sender = n1.spawn(Sender, old_inbox, ProcessID("inbox", "n2@host2"))
    proc = process(n1, sender, Sender)
    old = process(old_node, old_inbox, Collector)  # kept: the crash takes it out of its node
    s.run_for(rng.uniform(1.0, 4.0))
    assert proc.refused == [], "sends refused before any fault"

    s.crash("host2")
    crashed = s.now
    s.run_for(rng.uniform(0.0, 8.0))
    s.restart("host2")
    s.run_until(lambda: len(runs) == 2, timeout=5)
    new_node, new_inbox = runs[1]
    assert new_inbox.id == old_inbox.id, "the scenario needs the new inbox to reuse the old id"
    assert new_node.creation > old_node.creation, \
        f"restarted with creation {new_node.creation}, not newer than {old_node.creation}"

    s.run_for(HB_TIMEOUT + 3 * HB_INTERVAL)  # quiet: no more faults

    new_got = process(new_node, new_inbox, Collector).got
    # safety
    stray = [m for m in new_got if m[0] == "old"]
    assert not stray, f"messages for the old PID reached the new run's process: {stray[:5]}"
    for label, got in (("old run", old.got), ("new run", new_got)):
        for tag in ("old", "name"):
            seq = [i for t, i in got if t == tag]
            assert seq == sorted(set(seq)), f"{label} got {tag} messages out of order or twice: {seq}"
    downs = [m for m in proc.downs if isinstance(m, MessageDownPID) and m.pid == old_inbox]
    assert len(downs) == 1 and isinstance(downs[0].reason, NoConnection), \
        f"the sender should hear the old inbox down once with NoConnection, heard {proc.downs}"
    incarnation = [i for i, e in proc.refused if e == ProcessIncarnation.__name__]
    assert incarnation, f"sends to the old PID after the restart were not refused: {proc.refused[-5:]}"
    # liveness
    named = [i for t, i in new_got if t == "name"]
    assert named and named[-1] >= proc.i - 3, \
        f"messages by name do not reach the new run: last {named[-1:] or None} of {proc.i} sent"
    before = len(new_got)  # the sender goes on meanwhile: the count is between before and after
    count = n1.call(ProcessID("inbox", "n2@host2"), "count", timeout=10)
    assert before <= count <= len(new_got), f"the new inbox counts {count}, it had {before} then {len(new_got)}"
    assert s.now - crashed > 0

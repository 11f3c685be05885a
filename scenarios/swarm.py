"""Swarm: each seed draws its own mix of faults (TigerBeetle's VOPR, FoundationDB's BUGGIFY).

Cluster: four nodes ``n1@host1`` .. ``n4@host4``, static routes, heartbeats every 1 s,
timeout 3 s.  Every node, at each boot, starts an ``Inbox`` registered ``"inbox"`` and a
``Sender`` that every 0.05 s sends its next numbered message to every other node's inbox
by name, while a monitor of that name is in place (a down ends it; the next tick monitors
again).

Faults: the seed draws which kinds this run may use, each with chance 1/2 (at least one):
partitions (both ways and one way), holds, pauses, host crashes and restarts, killed
nodes started again, clock skew, jitter, and the runtime's buggify points.  Then, at
drawn moments, it injects one of them on drawn hosts or undoes one in place.  The mix is
recorded in the trace as a fault ``swarm_mix``.

Safety: a node started again has a new creation.  Per sender run (its node and
creation) and receiver: each receiver run got that sender's messages strictly increasing
(in order, no duplicates) and only what was sent, and no message reached two runs of one
receiver; for a sender run alive at the end, every message that never arrived was
announced by a down of the inbox heard after it was sent.

Liveness: the faults stop (every partition repaired, hold released, host resumed and
restarted, node started again, clock rate 1, buggify off); after a quiet phase, every
message each sender sends in its last 2 seconds reaches every other node's inbox.
"""

from __future__ import annotations

from typing import Any

import sim
from ergo import Actor, MessageDownProcessID, ProcessID
from sim.scenario import node_options, process, route

HB_INTERVAL, HB_TIMEOUT = 1.0, 3.0
N = 4
TICK = 0.05
FAULT_PHASE = 15.0
QUIET = 2 * HB_TIMEOUT + 4.0
KINDS = ("partition", "partition_oneway", "hold", "pause", "crash", "kill", "skew", "jitter", "buggify")


class Inbox(Actor):
    def init(self) -> None:
        #: (sender node, its creation) -> the numbers received
        self.got: dict[tuple[str, int], list[int]] = {}

    def handle_message(self, from_: Any, message: Any) -> None:
        name, creation, i = message
        self.got.setdefault((name, creation), []).append(i)


class Sender(Actor):
    def init(self, me: str, others: list[str]) -> None:
        self.me = me
        self.targets = {name: ProcessID("inbox", name) for name in others}
        self.i = 0
        self.stopped = False
        self.sent: dict[str, list[int]] = {n: [] for n in others}
        self.watching = {n: False for n in others}
        #: per receiver: how many had been sent to it when each down came
        self.downs: dict[str, list[int]] = {n: [] for n in others}
        self.send_after(self.pid, "tick", TICK)

    def handle_message(self, from_: Any, message: Any) -> None:
        if isinstance(message, MessageDownProcessID):
            name = str.__str__(message.process_id.node)
            self.watching[name] = False
            self.downs[name].append(len(self.sent[name]))
            return
        if message == "stop":
            self.stopped = True
            return
        if self.stopped:
            return
        for name, target in self.targets.items():
            if not self.watching[name]:
                self.monitor(target)
                self.watching[name] = True
            try:
                self.send(target, (self.me, self.node.creation, self.i))
            except Exception:  # refused at once: not sent
                continue
            self.sent[name].append(self.i)
        self.i += 1
        self.send_after(self.pid, "tick", TICK)


def scenario(s: sim.Sim) -> None:
    """Four nodes, 15 s of faults, then the quiet phase: about 26 virtual seconds."""
    swarm(s)


def five_nodes(s: sim.Sim) -> None:
    """Five nodes, 19 s of faults: 30 virtual seconds (bench/sim.py runs it)."""
    swarm(s, nodes=5, fault_phase=19.0)


def swarm(s: sim.Sim, nodes: int = N, fault_phase: float = FAULT_PHASE) -> None:
    """The swarm of ``nodes`` nodes with ``fault_phase`` seconds of faults (see the module)."""
    rng = s.world.rng("scenario/swarm")
    names = [f"n{i}@host{i}" for i in range(1, nodes + 1)]
    hosts = [n.split("@")[1] for n in names]
    opts = node_options(heartbeat_interval=HB_INTERVAL, heartbeat_timeout=HB_TIMEOUT)
    runs: list[tuple[str, Any, Inbox, Sender]] = []  # (name, node, inbox, sender) of every boot

    def boot(host: sim.Host) -> None:
        name = next(n for n in names if n.endswith("@" + host.name))
        node = host.start_node(name, opts)
        before = [n.creation for other, n, _, _ in runs if other == name]
        assert not before or node.creation > before[-1], \
            f"{name} started again at {s.now:.3f} with creation {node.creation}, not newer than its last run's " \
            f"{before[-1]}: PIDs of the old run would reach the new one"
        others = [n for n in names if n != name]
        for other in others:
            route(node, other)
        inbox = node.spawn_register("inbox", Inbox)
        sender = node.spawn(Sender, name, others)
        # the processes themselves: a crash takes them out of their node's table
        runs.append((name, node, process(node, inbox, Inbox), process(node, sender, Sender)))

    for h in hosts:
        s.on_start(h, boot)

    mix = [k for k in KINDS if rng.random() < 0.5] or [rng.choice(KINDS)]
    s.world.note_fault("swarm_mix", kinds=mix)
    if "jitter" in mix:
        for a in hosts:
            for b in hosts:
                if a < b:
                    s.set_jitter(a, b, rng.uniform(0.0, 0.03))
    if "buggify" in mix:
        s.buggify()
    undo: list[tuple[str, Any]] = []  # what can be undone: (kind, its hosts or node)
    crashed: set[str] = set()
    end = s.now + fault_phase
    while True:
        s.run_for(rng.uniform(0.2, 1.5))
        if s.now >= end:
            break
        if undo and rng.random() < 0.4:
            kind, what = undo.pop(rng.randrange(len(undo)))
            if kind in ("partition", "partition_oneway"):
                s.repair(*what)
            elif kind == "hold":
                s.release(*what)
            elif kind == "pause":
                s.resume(what)
            elif kind == "crash":
                s.restart(what)
                crashed.discard(what)
            elif kind == "kill":
                boot(s.host(what.split("@")[1]))
            continue
        kind = rng.choice([k for k in mix if k not in ("jitter", "buggify")] or ["none"])
        a, b = rng.sample(hosts, 2)
        busy = {w for k, w in undo if k in ("pause", "crash")} | {w.split("@")[1] for k, w in undo if k == "kill"}
        if kind in ("partition", "partition_oneway", "hold"):
            getattr(s, kind)(a, b)
            undo.append((kind, (a, b)))
        elif kind in ("pause", "crash", "kill") and a not in busy and len(crashed) < nodes // 2:
            if kind == "pause":
                s.pause(a)
                undo.append((kind, a))
            elif kind == "crash":
                s.crash(a)
                crashed.add(a)
                undo.append((kind, a))
            else:
                name = names[hosts.index(a)]
                s.kill_node(name)
                undo.append((kind, name))
        elif kind == "skew":
            s.set_clock_skew(a, rate=rng.uniform(0.5, 2.0))

    # quiet: every fault stops
    s.repair()
    s.release()
    s.buggify(enable=False)
    for kind, what in undo:
        if kind == "pause":
            s.resume(what)
        elif kind == "crash":
            s.restart(what)
        elif kind == "kill":
            boot(s.host(what.split("@")[1]))
    for h in hosts:
        s.set_clock_skew(h, rate=1.0)
    s.run_for(QUIET - 2.0)
    # what the senders send from now on (virtual time: a host's clock may have been skewed) must arrive
    tail_from = {(id_, dst): len(sent) for id_, (_, _, _, proc) in enumerate(runs) for dst, sent in proc.sent.items()}
    s.run_for(2.0)
    for _, node, _, sender in runs:
        if node.is_alive():
            node.send(sender.pid, "stop")
    s.run_for(1.0)

    current = {name: (node, inbox) for name, node, inbox, _ in runs}  # the last boot of each
    for id_, (name, node, _, proc) in enumerate(runs):
        key = (name, node.creation)
        for dst, sent in proc.sent.items():
            seen: set[int] = set()
            for rname, rnode, inbox, _ in runs:
                if rname != dst:
                    continue
                got = inbox.got.get(key, [])
                assert all(x < y for x, y in zip(got, got[1:])), \
                    f"{name} (creation {key[1]}) -> {dst} (creation {rnode.creation}): out of order or twice: {got}"
                assert not seen.intersection(got), f"{name} -> {dst}: a message reached two runs of {dst}"
                seen.update(got)
            numbers = sent
            assert seen <= set(numbers), f"{name} -> {dst}: received what was not sent: {sorted(seen - set(numbers))}"
            if not node.is_alive() or node is not current[name][0]:
                continue  # a run that died: what it had in flight died with it, unannounced
            downs = proc.downs[dst]
            for k, i in enumerate(numbers):
                if i not in seen and not any(count > k for count in downs):
                    raise AssertionError(f"{name} -> {dst}: message {i} was lost without a NoConnection "
                                         f"(downs after sends: {downs}; faults: {mix})")
            tail = numbers[tail_from[id_, dst]:]
            assert tail and all(i in seen for i in tail), \
                f"{name} -> {dst}: the last messages after the quiet phase did not all arrive (faults: {mix})"

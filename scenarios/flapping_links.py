"""Five nodes, 1000 messages per pair, while links flap.

Cluster: ``n1@host1`` .. ``n5@host5``, static routes, heartbeats every 1 s, timeout 3 s.
Each node runs an ``Inbox`` (keeps what it gets) and a ``Sender`` that, every 0.02 s,
sends the next numbered message to every other node's inbox (:data:`PER_PAIR` in all,
per pair).  A sender monitors each inbox it sends to and sends only while that monitor is
in place; a down ends it (noted with how many messages had been sent to that inbox), and
the next tick monitors again.

Faults (from the seed): during the fault phase, at drawn moments, a drawn pair of hosts
is partitioned (both ways or one way) or a partition is repaired; some cuts are shorter
than the heartbeat timeout (nothing may be lost), some longer (the link is declared down).

Safety, for every sender and receiver: what the receiver got is strictly increasing (in
order, no duplicates) and a subsequence of what was sent; every message that was sent
and never arrived is announced: the sender heard a down of that inbox (``NoConnection``,
or the failed dial's error) after sending it.

Liveness: after the faults stop (every partition repaired) and a quiet phase, every pair
is connected again: the last messages each sender sends reach every inbox.
"""

from __future__ import annotations

from typing import Any

import sim
from ergo import Actor, MessageDownPID, NoConnection, Timeout
from sim.scenario import cluster, process

HB_INTERVAL, HB_TIMEOUT = 1.0, 3.0
N = 5
#: messages sent per (sender, receiver) pair over the run
PER_PAIR = 1000
TICK = 0.02
#: the last messages of each pair, sent after the quiet phase, must all arrive
TAIL = 20


class Inbox(Actor):
    def init(self) -> None:
        self.got: dict[str, list[int]] = {}

    def handle_message(self, from_: Any, message: Any) -> None:
        sender, i = message
        self.got.setdefault(sender, []).append(i)


class Sender(Actor):
    def init(self, me: str, inboxes: dict[str, Any], limit: int) -> None:
        self.me = me
        self.inboxes = inboxes
        self.limit = limit
        self.next = {n: 0 for n in inboxes}
        self.sent: dict[str, list[int]] = {n: [] for n in inboxes}
        self.watching: dict[str, bool] = {n: False for n in inboxes}
        #: per receiver: (how many had been sent, the down's reason) for each down heard
        self.downs: dict[str, list[tuple[int, BaseException]]] = {n: [] for n in inboxes}
        self.send_after(self.pid, "tick", TICK)

    def handle_message(self, from_: Any, message: Any) -> None:
        if isinstance(message, MessageDownPID):
            for name, pid in self.inboxes.items():
                if pid == message.pid:
                    self.watching[name] = False
                    self.downs[name].append((len(self.sent[name]), message.reason))
            return
        for name, pid in self.inboxes.items():
            if not self.watching[name]:
                self.monitor(pid)
                self.watching[name] = True
            i = self.next[name]
            if i >= self.limit:
                continue
            self.next[name] = i + 1
            try:
                self.send(pid, (self.me, i))
            except Exception:  # refused at once: not sent
                continue
            self.sent[name].append(i)
        if any(i < self.limit for i in self.next.values()):
            self.send_after(self.pid, "tick", TICK)


def is_subsequence(got: list[int], sent: list[int]) -> bool:
    it = iter(sent)
    return all(any(x == y for y in it) for x in got)


def scenario(s: sim.Sim) -> None:
    rng = s.world.rng("scenario/flapping_links")
    nodes = cluster(s, N, heartbeat_interval=HB_INTERVAL, heartbeat_timeout=HB_TIMEOUT)
    names = [n.name.value for n in nodes]
    inboxes = {n.name.value: n.spawn(Inbox) for n in nodes}
    senders = {}
    for n in nodes:
        others = {k: v for k, v in inboxes.items() if k != n.name.value}
        senders[n.name.value] = n.spawn(Sender, n.name.value, others, PER_PAIR)
    hosts = [name.split("@")[1] for name in names]

    fault_phase = (PER_PAIR - TAIL) * TICK - 2 * HB_TIMEOUT - 2 * HB_INTERVAL
    end = s.now + fault_phase
    cut: list[tuple[str, str]] = []  # the pairs cut now, in the order they were cut
    while True:
        s.run_for(rng.uniform(0.2, 2.0))
        if s.now >= end:
            break
        if cut and rng.random() < 0.35:
            a, b = cut.pop(rng.randrange(len(cut)))
            s.repair(a, b)
            continue
        a, b = rng.sample(hosts, 2)
        if rng.random() < 0.6:
            s.partition(a, b)
        else:
            s.partition_oneway(a, b)
        cut.append((a, b))
    s.repair()
    # quiet phase: the senders go on until they have sent PER_PAIR each
    s.run_for(PER_PAIR * TICK - fault_phase + 2 * HB_TIMEOUT)

    node_of = {n.name.value: n for n in nodes}
    for src, pid in senders.items():
        proc = process(node_of[src], pid, Sender)
        assert all(i == PER_PAIR for i in proc.next.values()), f"{src} did not finish sending: {proc.next}"
        for dst, inbox in inboxes.items():
            if dst == src:
                continue
            sent = proc.sent[dst]
            got = process(node_of[dst], inbox, Inbox).got.get(src, [])
            # safety: in order, no duplicates, nothing that was not sent
            assert all(x < y for x, y in zip(got, got[1:])), f"{src} -> {dst}: out of order or twice: {got}"
            assert is_subsequence(got, sent), f"{src} -> {dst}: received what was not sent"
            # every loss announced by a down heard after the lost message was sent
            received = set(got)
            downs = proc.downs[dst]
            for _, reason in downs:
                assert isinstance(reason, (NoConnection, Timeout)), \
                    f"{src} -> {dst}: a down with {reason!r}: the inbox never ends, only connections do"
            for k, i in enumerate(sent):
                if i not in received and not any(count > k for count, _ in downs):
                    raise AssertionError(f"{src} -> {dst}: message {i} was lost without a NoConnection "
                                         f"(downs after sends: {[c for c, _ in downs]})")
            # liveness: the tail, sent after the quiet phase began, all arrived
            tail = list(range(PER_PAIR - TAIL, PER_PAIR))
            assert got[-TAIL:] == tail, f"{src} -> {dst}: the last messages did not all arrive: {got[-TAIL:]}"

"""Remote events fanned out under partition.

Cluster: five nodes, static routes, heartbeats every 1 s, timeout 3 s.  A producer on n1
registers the event ``ticks`` and publishes the next number every 0.05 s.  Two
subscribers on each of n2 .. n5 monitor the event (one subscription per node: the node
fans each event out to its subscribers); a subscriber that hears the event is down
monitors it again at its next 0.2 s tick.

Faults (from the seed): at drawn moments a drawn subscriber host is cut from host1 (both
ways or one way) or a cut is repaired; some cuts are shorter than the heartbeat timeout
(nothing may be lost), some longer.

Safety, per subscriber: the numbers it got are strictly increasing (in order, no
duplicate), each was published; the two subscribers of one node got the same numbers
from the moment both were subscribed; every gap (numbers published while it was
subscribed and never received) is announced: a ``MessageDownEvent`` with
``NoConnection`` (or the failed dial's error) came after the last number before the gap.

Liveness: after every cut is repaired and a quiet phase, every subscriber is subscribed
again and gets the last numbers published.
"""

from __future__ import annotations

from typing import Any

import sim
from ergo import Actor, Event, MessageDownEvent, MessageEvent, NoConnection, Timeout
from sim.scenario import cluster, process

HB_INTERVAL, HB_TIMEOUT = 1.0, 3.0
TICK = 0.05
FAULT_PHASE = 12.0
QUIET = 2 * HB_TIMEOUT + 3.0
#: the numbers published in the last this many seconds must reach every subscriber
TAIL = 1.0


class Producer(Actor):
    def init(self) -> None:
        self.token = self.register_event("ticks")
        self.i = 0
        self.stopped = False
        self.send_after(self.pid, "tick", TICK)

    def handle_message(self, from_: Any, message: Any) -> None:
        if message == "stop":
            self.stopped = True
        if self.stopped:
            return
        self.send_event("ticks", self.token, self.i)
        self.i += 1
        self.send_after(self.pid, "tick", TICK)


class Subscriber(Actor):
    def init(self, event: Event) -> None:
        self.event = event
        self.got: list[int] = []
        #: (the last number got before it, the reason) of every down of the event
        self.downs: list[tuple[int, BaseException]] = []
        self.subscribed = False
        self.send(self.pid, "tick")

    def handle_event(self, message: MessageEvent) -> None:
        self.got.append(message.message)

    def handle_message(self, from_: Any, message: Any) -> None:
        if isinstance(message, MessageDownEvent):
            self.downs.append((self.got[-1] if self.got else -1, message.reason))
            self.subscribed = False
        elif message == "tick":
            if not self.subscribed:
                self.subscribed = True
                self.monitor(self.event)
            self.send_after(self.pid, "tick", 0.2)


def scenario(s: sim.Sim) -> None:
    rng = s.world.rng("scenario/events_fanout")
    nodes = cluster(s, 5, heartbeat_interval=HB_INTERVAL, heartbeat_timeout=HB_TIMEOUT)
    n1 = nodes[0]
    producer = n1.spawn(Producer)
    event = Event("ticks", n1.name.value)
    subs = [(n, n.spawn(Subscriber, event)) for n in nodes[1:] for _ in range(2)]
    s.run_for(1.0)

    hosts = [str.__str__(n.name).split("@")[1] for n in nodes[1:]]
    cut: list[str] = []
    end = s.now + FAULT_PHASE
    while True:
        s.run_for(rng.uniform(0.2, 2.0))
        if s.now >= end:
            break
        if cut and rng.random() < 0.4:
            h = cut.pop(rng.randrange(len(cut)))
            s.repair("host1", h)
            continue
        h = rng.choice(hosts)
        if rng.random() < 0.6:
            s.partition("host1", h)
        else:
            s.partition_oneway(*rng.sample(["host1", h], 2))
        cut.append(h)
    s.repair()
    s.run_for(QUIET - TAIL)
    tail_from = process(n1, producer, Producer).i
    s.run_for(TAIL)
    n1.send(producer, "stop")
    s.run_for(1.0)
    published = process(n1, producer, Producer).i

    by_node: dict[str, list[list[int]]] = {}
    for node, pid in subs:
        me = f"{str.__str__(node.name)}/{pid.id}"
        sub = process(node, pid, Subscriber)
        got = sub.got
        # safety
        assert all(x < y for x, y in zip(got, got[1:])), f"{me}: events out of order or twice: {got[:50]}"
        assert all(0 <= x < published for x in got), f"{me}: got a number never published"
        for _, reason in sub.downs:
            assert isinstance(reason, (NoConnection, Timeout)), f"{me}: the event went down with {reason!r}"
        for a, b in zip(got, got[1:]):
            if b != a + 1:
                assert any(last >= a for last, _ in sub.downs), \
                    f"{me}: numbers {a + 1}..{b - 1} were lost without a down of the event (downs after: " \
                    f"{[last for last, _ in sub.downs]})"
        # liveness
        assert all(i in got for i in range(tail_from, published)), \
            f"{me}: the last events ({tail_from}..{published - 1}) did not all arrive after the quiet phase"
        by_node.setdefault(str.__str__(node.name), []).append(got)
    for name, (first, second) in by_node.items():
        start = max(first[0], second[0]) if first and second else 0
        assert [x for x in first if x >= start] == [x for x in second if x >= start], \
            f"{name}: its two subscribers got different events (the fan-out differs)"

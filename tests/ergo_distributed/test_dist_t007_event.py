"""Ergo's t007_event_test.go (TestT7EventRemote), translated: a process of node1 spawns
"pong" on node2, which registers an event with a buffer of 1 and sends "testevent1" before
anyone subscribes; node1's process monitors the event and gets "testevent1" as the
buffered message, then asks pong to send "testevent2" and hears it in ``handle_event``.

Difference pinned here: a node's first subscription to a remote event returns ``[]`` at
once; the buffer arrives afterwards as events (``handle_event``); Ergo's ``MonitorEvent``
waits for the answer and returns the buffered list.  (A later subscriber on the same node
gets the buffer at once, as in Ergo: tests/test_network.py.)
"""

from __future__ import annotations

from dist_probe import Probe, events, remote, remote_spawn, run

from ergo import Actor, Event


class Pong(Actor):
    def handle_call(self, from_, ref, request):
        if request == "createEvent":
            self.ev = f"ev{self.pid.id}"
            self.token = self.register_event(self.ev, buffer=1)
            self.send_event(self.ev, self.token, "testevent1")
            return Event(self.ev, self.node.name)
        if request == "sendEvent":
            self.send_event(self.ev, self.token, "testevent2")
            return True
        return None


def test_remote_event(cluster, nodes):
    node1, node2 = nodes
    node2.network().enable_spawn("pong", Pong)
    remote(node1, node2.name)
    journal: list = []
    probe = node1.spawn(Probe, journal)

    async def subscribe(p):
        pid = await remote_spawn(p, node2.name, "pong")
        ev = await p.call(pid, "createEvent")
        return pid, ev, p.monitor_event(ev)

    pid, ev, returned = run(node1, probe, subscribe)
    assert returned == []  # (Ergo: [testevent1]) - the buffer comes as an event
    assert node1.process_info(probe).monitors == (ev,)
    cluster.run_until(lambda: events(journal, probe))
    assert [m.message for m in events(journal, probe)] == ["testevent1"]
    assert events(journal, probe)[0].event == ev

    async def send(p):
        return await p.call(pid, "sendEvent")

    assert run(node1, probe, send) is True
    cluster.run_until(lambda: len(events(journal, probe)) == 2)
    assert [m.message for m in events(journal, probe)] == ["testevent1", "testevent2"]

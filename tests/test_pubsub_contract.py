"""Links, monitors and events (ergo/node/pubsub.py) at their edges: argument checks, the
notices a producer gets, buffers, and what a consumer that is gone leaves behind."""

from __future__ import annotations

from typing import Any

import pytest
from drive import Driver, act

from ergo import (
    PID,
    Event,
    Incorrect,
    LogLevel,
    MessageDownPID,
    MessageEventStart,
    MessageEventStop,
    ProcessOptions,
    TerminateReasonKill,
    TerminateReasonNormal,
)


@pytest.mark.parametrize("bad", ["", 5, None])
def test_an_event_name_is_a_non_empty_str(backend, bad):
    node = backend.node()
    p = node.spawn(Driver)
    with pytest.raises(Incorrect):
        act(node, p, lambda p: p.register_event(bad))
    with pytest.raises(Incorrect):
        node.register_event(bad)
    assert node.info().registered_events == 0


@pytest.mark.parametrize("bad", [-1, True, 1.5, "2"])
def test_an_event_buffer_is_an_int_not_below_zero(backend, bad):
    node = backend.node()
    with pytest.raises(Incorrect):
        node.register_event("e", buffer=bad)
    node.register_event("e", buffer=0)


def test_a_terminating_consumer_is_sent_no_more_events(backend):
    node = backend.node()
    token = node.register_event("news")
    seen: list = []

    class Consumer(Driver):
        def handle_message(self, from_: PID, message: Any) -> None:
            raise TerminateReasonNormal

        def terminate(self, reason: BaseException) -> None:
            self.node.send_event("news", token, "while terminating")
            seen.append(self.info().mailbox_queues)

    c = node.spawn(Consumer)
    act(node, c, lambda p: p.monitor_event(Event("news", node.name)))
    node.send(c, "stop")
    backend.settle()
    assert seen == [{"urgent": 0, "system": 0, "main": 0, "log": 0}]


def test_the_node_itself_may_produce_an_event_with_notify(backend):
    node = backend.node()
    token = node.register_event("by-node", notify=True)
    journal: list = []
    c = node.spawn(Driver, journal)
    ev = Event("by-node", node.name)
    act(node, c, lambda p: p.link_event(ev))  # the core has no mailbox to be told in
    node.send_event("by-node", token, "hello")
    act(node, c, lambda p: p.unlink(ev))
    backend.settle()
    assert [m.message for m in journal] == ["hello"]


def test_a_producer_with_notify_hears_first_subscriber_and_last_leaving(backend):
    node = backend.node()
    journal: list = []
    producer = node.spawn(Driver, journal)
    act(node, producer, lambda p: p.register_event("e", notify=True))
    c1, c2 = node.spawn(Driver), node.spawn(Driver)
    ev = Event("e", node.name)
    act(node, c1, lambda p: p.monitor(ev))
    backend.settle()
    assert journal == [MessageEventStart("e")]  # at the first subscriber, not a later one
    act(node, c2, lambda p: p.link(ev))
    act(node, c1, lambda p: p.demonitor(ev))
    backend.settle()
    assert journal == [MessageEventStart("e")]
    node.kill(c2)
    backend.settle()
    assert journal == [MessageEventStart("e"), MessageEventStop("e")]


def test_a_terminating_producer_is_not_told_its_last_subscriber_left(backend):
    node = backend.node()
    seen: list = []

    class Producer(Driver):
        def handle_message(self, from_: PID, message: Any) -> None:
            if message == "stop":
                raise TerminateReasonNormal

        def terminate(self, reason: BaseException) -> None:
            self.node.kill(self.consumer)  # its subscription ends while this process terminates
            seen.append(self.info().mailbox_queues["system"])

    producer = node.spawn(Producer)
    act(node, producer, lambda p: p.register_event("e", notify=True))
    consumer = node.spawn(Driver)
    act(node, consumer, lambda p: p.monitor(Event("e", node.name)))
    act(node, producer, lambda p: setattr(p, "consumer", consumer))
    backend.settle()
    node.send(producer, "stop")
    backend.settle()
    assert seen == [0]


def test_one_watcher_leaving_keeps_the_others(backend):
    node = backend.node()
    target = node.spawn(Driver)
    journals: list = [[], [], []]
    watchers = [node.spawn(Driver, j) for j in journals]
    for w in watchers:
        act(node, w, lambda p: (p.monitor(target), p.link(target)) and None)
    act(node, watchers[0], lambda p: (p.demonitor(target), p.unlink(target)) and None)
    act(node, watchers[1], lambda p: p.unlink(target))
    node.kill(target)
    backend.settle()
    assert journals[0] == []
    assert journals[1] == [MessageDownPID(target, TerminateReasonKill)]
    # its link ended it (it does not trap exits) before it handled the down
    assert len(journals[2]) == 1 and journals[2][0][0] == "terminate"


def test_an_event_a_full_consumer_cannot_take_is_lost_for_it_alone_and_logged(backend):
    node = backend.node()
    small_journal: list = []
    big_journal: list = []
    producer = node.spawn(Driver)
    token = act(node, producer, lambda p: p.register_event("e"))
    small = node.spawn(Driver, small_journal, options=ProcessOptions(mailbox_size=1))
    big = node.spawn(Driver, big_journal)
    for c in (small, big):
        act(node, c, lambda p: p.monitor(Event("e", node.name)))
    act(node, producer, lambda p: (p.send_event("e", token, 1), p.send_event("e", token, 2)))
    backend.settle()
    assert [m.message for m in small_journal] == [1]
    assert [m.message for m in big_journal] == [1, 2]
    errors = node.captured.texts(LogLevel.ERROR)
    assert sum(f"not delivered to {small}" in t for t in errors) == 1

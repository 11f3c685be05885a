"""Ergo's t007_actor_event_test.go (TestT7ActorEvent), translated: a producer with
``notify`` and a buffer of 10, a consumer that links to the event, a second that monitors
it (and gets the buffered last message), the producer's start and stop notices."""

from __future__ import annotations

from ergo_probe import Probe, messages, run

from ergo import Event, MessageEvent, MessageEventStart, MessageEventStop


def _events(journal: list, pid) -> list[MessageEvent]:
    return [e[2] for e in journal if e[0] == "event" and e[1] == pid]


def test_event(backend):
    node = backend.node("t7node@localhost")
    journal: list = []
    driver = node.spawn(Probe, journal)
    producer = run(node, driver, lambda p: p.spawn(Probe, journal))
    token = run(node, producer, lambda p: p.register_event("t7event", notify=True, buffer=10))
    event = Event("t7event", node.name)

    consumer1 = run(node, driver, lambda p: p.spawn(Probe, journal))
    assert run(node, consumer1, lambda p: p.link_event(event)) == []
    backend.settle()
    assert messages(journal, producer) == [MessageEventStart("t7event")]

    run(node, producer, lambda p: p.send_event("t7event", token, 123))
    backend.settle()
    (mev,) = _events(journal, consumer1)
    assert mev.event == event and mev.message == 123 and mev.timestamp != 0

    consumer2 = run(node, driver, lambda p: p.spawn(Probe, journal))
    assert run(node, consumer2, lambda p: p.monitor_event(event)) == [mev]  # the buffered last one

    run(node, producer, lambda p: p.send_event("t7event", token, 1234))
    backend.settle()
    for consumer in (consumer1, consumer2):
        last = _events(journal, consumer)[-1]
        assert last.event == event and last.message == 1234

    run(node, consumer1, lambda p: p.unlink(event))
    run(node, consumer2, lambda p: p.demonitor(event))
    backend.settle()
    # no consumer left: the producer is told so
    assert messages(journal, producer) == [MessageEventStart("t7event"), MessageEventStop("t7event")]

"""Links, monitors and events on both schedulers: every rule of SPEC §7, by example."""

from __future__ import annotations

from typing import Any

import pytest
from support import Collector

from ergo import (
    PID,
    Actor,
    Alias,
    AliasUnknown,
    Atom,
    Event,
    EventOwner,
    EventUnknown,
    ExitSignal,
    Incorrect,
    LinkExit,
    MessageDownAlias,
    MessageDownEvent,
    MessageDownPID,
    MessageDownProcessID,
    MessageEvent,
    MessageEventStart,
    MessageEventStop,
    MessageExitAlias,
    MessageExitEvent,
    MessageExitPID,
    MessageExitProcessID,
    NetworkStopped,
    NotAllowed,
    ProcessID,
    ProcessOptions,
    ProcessUnknown,
    Taken,
    TargetExist,
    TargetUnknown,
    TerminateReason,
    TerminateReasonKill,
    TerminateReasonNormal,
    TerminateReasonShutdown,
    Unregistered,
)


class Watcher(Collector):
    """Does what it is asked through calls (on itself), records what it receives and how it ends."""

    def init(self, trap: bool = False, ends: list | None = None) -> None:
        super().init()
        self.trap_exit = trap
        self.ends = ends if ends is not None else []

    def handle_event(self, message: MessageEvent) -> None:
        self.handle_message(None, message)

    def handle_message(self, from_: PID, message: Any) -> None:
        if message == "stop":
            raise TerminateReasonNormal
        super().handle_message(from_, message)

    def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
        if isinstance(request, tuple) and request[0] in {
            "link", "unlink", "monitor", "demonitor", "link_event", "monitor_event", "register_event",
            "unregister_event", "send_event", "register_name", "unregister_name", "create_alias",
            "delete_alias", "send_exit", "spawn",
        }:
            try:
                return ("ok", getattr(self, request[0])(*request[1:]))
            except Exception as e:
                return ("error", e)
        return super().handle_call(from_, ref, request)

    def terminate(self, reason: BaseException) -> None:
        self.ends.append((self.pid, reason))


def do(node, pid, *request):
    status, value = node.call(pid, request)
    if status == "error":
        raise value
    return value


# -- monitors ----------------------------------------------------------------------------


def test_monitor_pid_fires_once_with_the_reason(backend):
    node = backend.node()
    target = node.spawn(Watcher)
    watcher = node.spawn(Watcher)
    do(node, watcher, "monitor", target)
    assert node.process_info(watcher).monitors == (target,)
    node.send_exit(target, TerminateReason("gone"))
    assert node.call(watcher, ("wait", 1)) == [MessageDownPID(target, TerminateReason("gone"))]
    backend.settle()
    assert node.call(watcher, "messages") == [MessageDownPID(target, TerminateReason("gone"))]
    assert node.process_info(watcher).monitors == ()
    assert node.call(watcher, "senders") == [target]


def test_monitor_processid_fires_on_unregister_and_on_termination(backend):
    node = backend.node()
    target = node.spawn_register("svc", Watcher)
    watcher = node.spawn(Watcher)
    do(node, watcher, "monitor", ProcessID("svc", node.name))
    assert node.unregister_name("svc") == target
    assert node.call(watcher, ("wait", 1)) == [MessageDownProcessID(ProcessID("svc", node.name), Unregistered())]
    node.register_name("svc", target)
    do(node, watcher, "monitor", ProcessID("svc", node.name))
    node.kill(target)
    assert node.call(watcher, ("wait", 2))[1] == MessageDownProcessID(ProcessID("svc", node.name), TerminateReasonKill)


def test_name_is_released_before_the_watcher_hears(backend):
    node = backend.node()
    journal: list = []

    class Restarter(Actor):
        def init(self) -> None:
            self.monitor(ProcessID("svc", node.name))

        def handle_message(self, from_, message):
            # the down arrives after the name was released: it can be taken again at once
            journal.append(node.whereis("svc"))
            journal.append(node.spawn_register("svc", Watcher))

    old = node.spawn_register("svc", Watcher)
    node.spawn(Restarter)
    node.send_exit(old, TerminateReasonNormal)
    backend.settle()
    assert journal[0] is None and node.whereis("svc") == journal[1] != old


def test_monitor_alias_fires_on_delete_and_on_owner_termination(backend):
    node = backend.node()
    owner = node.spawn(Watcher)
    a1 = do(node, owner, "create_alias")
    a2 = do(node, owner, "create_alias")
    watcher = node.spawn(Watcher)
    do(node, watcher, "monitor", a1)
    do(node, watcher, "monitor", a2)
    do(node, owner, "delete_alias", a1)
    assert node.call(watcher, ("wait", 1)) == [MessageDownAlias(a1, Unregistered())]
    node.send_exit(owner, TerminateReason("bye"))
    assert node.call(watcher, ("wait", 2))[1] == MessageDownAlias(a2, TerminateReason("bye"))


def test_demonitor_and_unlink_mean_no_notice(backend):
    node = backend.node()
    target = node.spawn(Watcher)
    watcher = node.spawn(Watcher)
    do(node, watcher, "monitor", target)
    do(node, watcher, "link", target)
    do(node, watcher, "demonitor", target)
    do(node, watcher, "unlink", target)
    node.kill(target)
    backend.settle()
    assert node.call(watcher, "messages") == []
    assert node._pubsub.size() == (0, 0, 0)


# -- links -------------------------------------------------------------------------------


def test_link_exit_kills_a_non_trapping_process_even_for_normal(backend):
    node = backend.node()
    ends: list = []
    target = node.spawn(Watcher)
    linked = node.spawn(Watcher, False, ends)
    do(node, linked, "link", target)
    node.send(target, "stop")  # terminates normally
    backend.settle()
    assert ends == [(linked, LinkExit(target, TerminateReasonNormal))]
    assert str(ends[0][1]) == f"{target}: normal"
    assert ends[0][1].target == target and ends[0][1].cause == TerminateReasonNormal


def test_link_exit_cascades_with_the_original_reason(backend):
    """Ergo and Erlang agree: a process that died of a link exit is reported to its own
    watchers with the reason it received, so the root cause travels down a chain;
    only terminate() is told the wrapper that names the source."""
    node = backend.node()
    ends: list = []
    a = node.spawn(Watcher, False, ends)
    b = node.spawn(Watcher, False, ends)
    c = node.spawn(Watcher, False, ends)
    watcher = node.spawn(Watcher)
    do(node, b, "link", a)
    do(node, c, "link", b)
    do(node, watcher, "monitor", b)
    do(node, watcher, "monitor", c)
    root = TerminateReason("root cause")
    node.send_exit(a, root)
    backend.settle()
    assert ends == [
        (a, ExitSignal(node.pid, root)),
        (b, LinkExit(a, root)),
        (c, LinkExit(b, root)),
    ]
    assert node.call(watcher, ("wait", 2)) == [MessageDownPID(b, root), MessageDownPID(c, root)]


def test_trapped_link_exit_arrives_as_a_message_for_every_target_kind(backend):
    node = backend.node()
    owner = node.spawn_register("named", Watcher)
    alias = do(node, owner, "create_alias")
    token = do(node, owner, "register_event", "ev")
    trapper = node.spawn(Watcher, True)
    event = Event("ev", node.name)
    do(node, trapper, "link", owner)
    do(node, trapper, "link", ProcessID("named", node.name))
    do(node, trapper, "link", alias)
    assert do(node, trapper, "link_event", event) == []
    assert token is not None
    node.send_exit(owner, TerminateReason("why"))
    got = node.call(trapper, ("wait", 4))
    reason = TerminateReason("why")
    assert sorted(map(repr, got)) == sorted(map(repr, [
        MessageExitPID(owner, reason),
        MessageExitProcessID(ProcessID("named", node.name), reason),
        MessageExitAlias(alias, reason),
        MessageExitEvent(event, reason),
    ]))
    assert node.process_info(trapper).links == ()


def test_link_parent_exit_cannot_be_trapped(backend):
    node = backend.node()
    ends: list = []

    class Parent(Watcher):
        def init(self) -> None:
            super().init()
            self.child = self.spawn(Watcher, True, ends, options=ProcessOptions(link_parent=True))

        def handle_call(self, from_, ref, request):
            if request == "child":
                return self.child
            return super().handle_call(from_, ref, request)

    parent = node.spawn(Parent)
    child = node.call(parent, "child")
    assert node.process_info(child).links == (parent,)
    node.send_exit(parent, TerminateReason("parent died"))
    backend.settle()
    assert ends == [(child, LinkExit(parent, TerminateReason("parent died")))]


def test_link_child_makes_the_parent_hear_of_the_child(backend):
    node = backend.node()

    class Parent(Watcher):
        def handle_call(self, from_, ref, request):
            if request == "spawn child":
                self.trap_exit = True
                return self.spawn(Watcher, options=ProcessOptions(link_child=True))
            return super().handle_call(from_, ref, request)

    parent = node.spawn(Parent)
    child = node.call(parent, "spawn child")
    assert node.process_info(parent).links == (child,)
    node.kill(child)
    assert node.call(parent, ("wait", 1)) == [MessageExitPID(child, TerminateReasonKill)]


def test_link_to_a_meta_process_alias_fires_when_it_ends(backend):
    from ergo import MetaBehavior

    node = backend.node()

    class Owner(Watcher):
        def handle_call(self, from_, ref, request):
            if request == "meta":
                return self.spawn_meta(MetaBehavior())
            return super().handle_call(from_, ref, request)

    owner = node.spawn(Owner)
    meta = node.call(owner, "meta")
    watcher = node.spawn(Watcher)
    do(node, watcher, "monitor", meta)
    node.send_exit(owner, TerminateReason("done"))
    assert node.call(watcher, ("wait", 1)) == [MessageDownAlias(meta, TerminateReason("done"))]


# -- creation errors -------------------------------------------------------------------


def test_creation_errors(backend):
    node = backend.node()
    w = node.spawn(Watcher)
    t = node.spawn(Watcher)
    with pytest.raises(ProcessUnknown):
        do(node, w, "link", PID(node.name, 9999, node.creation))
    with pytest.raises(ProcessUnknown):
        do(node, w, "monitor", ProcessID("nobody", node.name))
    with pytest.raises(AliasUnknown):
        do(node, w, "monitor", Alias(node.name, node.creation, (9999, 0, 0)))
    with pytest.raises(EventUnknown):
        do(node, w, "link", Event("nothing", node.name))
    with pytest.raises(NotAllowed):
        do(node, w, "link", w)
    with pytest.raises(NotAllowed):
        do(node, w, "monitor", w)
    do(node, w, "monitor", t)
    with pytest.raises(TargetExist):
        do(node, w, "monitor", t)
    do(node, w, "link", t)  # a link and a monitor of the same target are two things
    with pytest.raises(TargetUnknown):
        do(node, w, "demonitor", node.pid)
    with pytest.raises(TargetUnknown):
        do(node, w, "unlink", ProcessID("x", node.name))
    with pytest.raises(Incorrect):
        do(node, w, "link", "just a str")
    with pytest.raises(NotAllowed):
        do(node, w, "monitor", node.name)
    with pytest.raises(NetworkStopped):
        do(node, w, "monitor", PID("other@host", 1001, 1))
    with pytest.raises(NetworkStopped):
        do(node, w, "link", Atom("other@host"))


def test_link_to_a_terminating_process_is_process_terminated(backend):
    node = backend.node()
    errors: list = []

    class Dying(Actor):
        def terminate(self, reason):
            other = node._processes[self.watcher.id]
            try:
                other.link(self.pid)
            except Exception as e:
                errors.append(type(e).__name__)

    watcher = node.spawn(Watcher)
    dying = node.spawn(Dying)
    node._processes[dying.id].watcher = watcher
    node.send_exit(dying, TerminateReasonNormal)  # terminate() runs before the process is released
    backend.settle()
    assert errors == ["ProcessTerminated"]


# -- events -----------------------------------------------------------------------------


def test_events_reach_every_subscriber_with_buffer_and_token(backend):
    node = backend.node()
    producer = node.spawn(Watcher)
    token = do(node, producer, "register_event", "prices", False, 2)
    event = Event("prices", node.name)
    with pytest.raises(Taken):
        do(node, node.spawn(Watcher), "register_event", "prices")
    for v in (1, 2, 3):
        do(node, producer, "send_event", "prices", token, v)
    sub1, sub2 = node.spawn(Watcher), node.spawn(Watcher)
    buffered = do(node, sub1, "link_event", event)
    assert [m.message for m in buffered] == [2, 3] and all(m.event == event for m in buffered)
    do(node, sub2, "monitor_event", event)
    do(node, producer, "send_event", "prices", token, 4)
    for sub in (sub1, sub2):
        [m] = node.call(sub, ("wait", 1))
        assert isinstance(m, MessageEvent) and m.message == 4 and m.event == event and m.timestamp > 0
    with pytest.raises(EventOwner):
        do(node, producer, "send_event", "prices", node.make_ref(), 5)
    with pytest.raises(EventOwner):
        do(node, sub1, "unregister_event", "prices")
    # anyone holding the token may publish
    do(node, sub1, "send_event", "prices", token, 6)
    assert node.call(sub2, ("wait", 2))[1].message == 6
    assert node.process_info(producer).events == (event,)


def test_notify_tells_the_producer_of_first_and_last_subscriber(backend):
    node = backend.node()
    producer = node.spawn(Watcher)
    do(node, producer, "register_event", "feed", True)
    event = Event("feed", node.name)
    a, b = node.spawn(Watcher), node.spawn(Watcher)
    do(node, a, "monitor_event", event)
    do(node, b, "link_event", event)
    assert node.call(producer, ("wait", 1)) == [MessageEventStart(Atom("feed"))]
    do(node, a, "demonitor", event)
    backend.settle()
    assert node.call(producer, "messages") == [MessageEventStart(Atom("feed"))]
    node.kill(b)  # the last subscriber leaves by terminating
    assert node.call(producer, ("wait", 2))[1] == MessageEventStop(Atom("feed"))


def test_unregistering_or_dying_producer_tells_subscribers(backend):
    node = backend.node()
    producer = node.spawn(Watcher)
    do(node, producer, "register_event", "a")
    do(node, producer, "register_event", "b")
    sub = node.spawn(Watcher)
    do(node, sub, "monitor_event", Event("a", node.name))
    do(node, sub, "monitor_event", Event("b", node.name))
    do(node, producer, "unregister_event", "a")
    assert node.call(sub, ("wait", 1)) == [MessageDownEvent(Event("a", node.name), Unregistered())]
    node.send_exit(producer, TerminateReason("crashed"))
    assert node.call(sub, ("wait", 2))[1] == MessageDownEvent(Event("b", node.name), TerminateReason("crashed"))
    assert node.info().registered_events == 0


def test_node_level_events(backend):
    node = backend.node()
    token = node.register_event("sys", buffer=1)
    node.send_event("sys", token, "first")
    sub = node.spawn(Watcher)
    assert [m.message for m in do(node, sub, "monitor_event", Event("sys", node.name))] == ["first"]
    node.send_event("sys", token, "second")
    assert node.call(sub, ("wait", 1))[0].message == "second"
    node.unregister_event("sys")
    assert node.call(sub, ("wait", 2))[1] == MessageDownEvent(Event("sys", node.name), Unregistered())


# -- cost -----------------------------------------------------------------------------------


def test_bookkeeping_does_not_grow_over_spawn_monitor_exit_cycles(backend):
    node = backend.node()
    watcher = node.spawn(Watcher)
    wp = node._processes[watcher.id]
    for i in range(300):
        target = node.spawn_register(f"t{i % 3}", Watcher)
        do(node, watcher, "monitor", target)
        other = node.spawn(Watcher)
        do(node, other, "link", target)
        do(node, target, "monitor", other)  # the target watches too: released when it dies
        node.kill(target if i % 2 else other)
        node.kill(other if i % 2 else target)
    backend.settle()
    assert node._pubsub.size() == (0, 0, 0)
    assert not wp._monitored and not wp._linked
    assert len(node.call(watcher, "messages")) == 300
    assert node.process_list() == [watcher]


def test_shutdown_reason_reaches_monitors(backend):
    node = backend.node()
    downs: list = []

    class Spy(Actor):
        def init(self, target: PID) -> None:
            self.monitor(target)

        def handle_message(self, from_, message):
            downs.append(message)

    target = node.spawn(Watcher)
    node.spawn(Spy, target)
    node.send_exit(target, TerminateReasonShutdown)
    backend.settle()
    assert downs == [MessageDownPID(target, TerminateReasonShutdown)]


def test_a_process_linked_and_monitoring_an_event_gets_each_message_once(backend):
    node = backend.node()
    token = node.register_event("once")
    sub = node.spawn(Watcher)
    event = Event("once", node.name)
    do(node, sub, "link_event", event)
    do(node, sub, "monitor_event", event)
    node.send_event("once", token, 1)
    node.send_event("once", token, 2)
    assert [m.message for m in node.call(sub, ("wait", 2))] == [1, 2]
    backend.settle()
    assert [m.message for m in node.call(sub, "messages")] == [1, 2]


def test_a_signal_never_overtakes_what_its_sender_sent_before(backend):
    node = backend.node()
    watcher = node.spawn(Watcher, True)  # traps exits: they arrive as messages

    class Chatter(Actor):
        def handle_message(self, from_, message):
            for i in range(3):
                self.send(watcher, i)
            if message == "exit":
                self.send_exit(watcher, TerminateReason("bye"))
                self.send(watcher, "after the exit")
            else:
                raise TerminateReasonNormal  # its down and link exit follow its messages

    other = node.spawn(Watcher)
    chatter = node.spawn(Chatter)
    do(node, watcher, "monitor", chatter)
    do(node, watcher, "link", chatter)
    node.send(chatter, "exit")
    node.send(other, "first from someone else")  # unrelated: may be overtaken, is not checked
    assert node.call(watcher, ("wait", 5)) == [0, 1, 2, MessageExitPID(chatter, TerminateReason("bye")),
                                               "after the exit"]
    node.send(chatter, "die")
    got = node.call(watcher, ("wait", 10))[5:]
    assert got[:3] == [0, 1, 2]
    assert sorted(map(type, got[3:]), key=str) == sorted([MessageDownPID, MessageExitPID], key=str)


def test_an_empty_node_in_an_event_or_processid_names_the_local_node(backend):
    """Ergo fills an empty node with the local one (LinkEvent, MonitorEvent, sends by
    ProcessID): an unknown event is then EventUnknown, not a network error."""
    node = backend.node()
    producer = node.spawn_register("producer", Watcher)
    consumer = node.spawn(Watcher)
    with pytest.raises(EventUnknown):
        do(node, consumer, "monitor_event", Event("nope", ""))
    with pytest.raises(EventUnknown):
        do(node, consumer, "link", Event("nope", ""))
    do(node, producer, "register_event", "ev")
    assert do(node, consumer, "monitor_event", Event("ev", "")) == []
    assert do(node, consumer, "link_event", Event("ev", "")) == []
    assert node.process_info(consumer).monitors == (Event("ev", node.name),)
    do(node, consumer, "demonitor", Event("ev", ""))
    do(node, consumer, "unlink", Event("ev", ""))
    assert node.process_info(consumer).monitors == () and node.process_info(consumer).links == ()
    do(node, consumer, "monitor", ProcessID("producer", ""))
    assert node.process_info(consumer).monitors == (ProcessID("producer", node.name),)
    node.send(ProcessID("producer", ""), "hello")
    assert node.call(producer, ("wait", 1)) == ["hello"]

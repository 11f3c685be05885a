"""What a handler sees of its own process (ergo/node/process.py): every property, setting,
name and alias operation, timer and termination path, read back through the public API."""

from __future__ import annotations

from typing import Any

import pytest
from drive import Driver, act
from support import Collector

import ergo
from ergo import (
    PID,
    AliasOwner,
    CompressionOptions,
    Event,
    Fallback,
    Incorrect,
    LinkExit,
    Log,
    MessageDownPID,
    MessageFallback,
    MessagePriority,
    NameUnknown,
    NotAllowed,
    ProcessOptions,
    ProcessState,
    ProcessUnknown,
    TerminateReasonKill,
    TerminateReasonNormal,
    Timeout,
)


def test_identity_properties_read_back_what_the_node_assigned(backend):
    node = backend.node()
    pid = node.spawn(Driver)
    seen = act(node, pid, lambda p: (p.pid, p.name, p.node, p.parent, p.leader, p.state))
    assert seen == (pid, None, node, node.pid, node.pid, ProcessState.RUNNING)
    child = act(node, pid, lambda p: p.spawn(Driver))
    named = act(node, pid, lambda p: p.spawn_register("named child", Driver))
    assert node.whereis("named child") == named and node.process_info(named).parent == pid
    assert act(node, child, lambda p: (p.parent, p.leader)) == (pid, node.pid)
    led = act(node, pid, lambda p: p.spawn(Driver, options=ProcessOptions(leader=child)))
    assert act(node, led, lambda p: (p.parent, p.leader)) == (pid, child)
    own = act(node, pid, lambda p: p.info())
    assert (own.pid, own.parent, own.state) == (pid, node.pid, ProcessState.RUNNING)
    assert isinstance(act(node, pid, lambda p: p.log), Log)
    assert act(node, pid, lambda p: repr(p)) == f"<Driver {pid} {ProcessState.RUNNING}>"
    assert repr(Driver()) == "<Driver (not spawned)>"


def test_uptime_counts_from_the_spawn():
    from support import SimBackend

    b = SimBackend()
    try:
        node = b.node()
        b.sim.run_for(3)
        pid = node.spawn(Driver)
        b.sim.run_for(2)
        assert act(node, pid, lambda p: p.uptime) == pytest.approx(2)
        assert node.process_info(pid).uptime == pytest.approx(2)
    finally:
        b.close()


def test_settings_default_and_read_back(backend):
    node = backend.node()
    pid = node.spawn(Driver)
    assert act(node, pid, lambda p: (p.trap_exit, p.send_priority, p.important_delivery, p.compression)) == (
        False, MessagePriority.NORMAL, False, CompressionOptions())

    def change(p):
        p.trap_exit = 1
        p.send_priority = 1
        p.important_delivery = 1
        p.compression = CompressionOptions(enable=True)
        return p.trap_exit, p.send_priority, p.important_delivery, p.compression

    got = act(node, pid, change)
    assert got == (True, MessagePriority.HIGH, True, CompressionOptions(enable=True))
    assert type(got[0]) is bool and type(got[2]) is bool
    info = node.process_info(pid)
    assert (info.trap_exit, info.message_priority, info.important_delivery, info.compression) == got
    with pytest.raises(Incorrect):
        act(node, pid, lambda p: setattr(p, "compression", {"enable": True}))


def test_send_priority_decides_the_queue_of_plain_sends(backend):
    node = backend.node()
    journal: list = []
    r = node.spawn(Driver, journal)
    s = node.spawn(Driver)

    def sends(p):
        p.send(r, "normal")
        p.send_priority = MessagePriority.MAX
        p.send(r, "max")  # the urgent queue: handled before the normal one sent first

    act(node, s, sends)
    backend.settle()
    assert journal == ["max", "normal"]


def test_names_of_a_process(backend):
    node = backend.node()
    pid = node.spawn(Driver)
    with pytest.raises(NameUnknown):
        act(node, pid, lambda p: p.unregister_name())
    act(node, pid, lambda p: p.register_name("named"))
    assert act(node, pid, lambda p: p.name) == "named"
    assert node.whereis("named") == pid
    assert act(node, pid, lambda p: p.unregister_name()) == pid
    assert act(node, pid, lambda p: p.name) is None and node.whereis("named") is None


def test_aliases_of_a_process(backend):
    node = backend.node()
    journal: list = []
    pid = node.spawn(Driver, journal)
    other = node.spawn(Driver)
    assert act(node, pid, lambda p: p.aliases()) == []
    a1 = act(node, pid, lambda p: p.create_alias())
    a2 = act(node, pid, lambda p: p.create_alias())
    assert a1 != a2 and act(node, pid, lambda p: p.aliases()) == [a1, a2]
    assert node.process_info(pid).aliases == (a1, a2)
    node.send(a1, "by alias")
    backend.settle()
    assert journal == ["by alias"]
    with pytest.raises(AliasOwner):
        act(node, other, lambda p: p.delete_alias(a1))
    act(node, pid, lambda p: p.delete_alias(a1))
    assert act(node, pid, lambda p: p.aliases()) == [a2]
    with pytest.raises(AliasOwner):
        act(node, pid, lambda p: p.delete_alias(a1))
    with pytest.raises(ProcessUnknown):
        node.send(a1, "gone")


def test_messages_out_counts_every_send_call_and_reply(backend):
    node = backend.node()
    r = node.spawn(Collector)
    s = node.spawn(Driver)

    def sends(p):
        p.send(r, 1)
        p.send_with_priority(r, 2, MessagePriority.HIGH)
        p.send_important(r, 3)
        token = p.register_event("ticks")
        p.send_event("ticks", token, 4)

    act(node, s, sends)
    assert node.process_info(s).messages_out == 4
    backend.settle()
    assert node.call(r, "messages") == [2, 1, 3]


def test_send_after_delivers_after_the_delay_and_cancel_stops_it():
    from support import SimBackend

    b = SimBackend()
    try:
        node = b.node(level="debug")
        journal: list = []
        r = node.spawn(Driver, journal)
        s = node.spawn(Driver)
        act(node, s, lambda p: p.send_after(r, "later", 2))
        handle = act(node, s, lambda p: p.send_after(r, "never", 1))
        handle.cancel()
        b.sim.run_for(1.5)
        assert journal == []
        b.sim.run_for(1)
        assert journal == ["later"]
        # a target gone by then costs the sender nothing
        act(node, s, lambda p: p.send_after(r, "too late", 1))
        node.kill(r)
        b.sim.run_for(2)
        assert s in node.process_list()
        debug = node.captured.texts(ergo.LogLevel.DEBUG)
        assert any("send_after" in t and f"to {r} failed" in t for t in debug)
    finally:
        b.close()


@pytest.mark.parametrize("bad", [-1, True, "1", None])
def test_a_delay_is_a_number_of_seconds_not_below_zero(backend, bad):
    node = backend.node()
    s = node.spawn(Driver)
    with pytest.raises(Incorrect):
        act(node, s, lambda p: p.send_after(s, "x", bad))
    with pytest.raises(Incorrect):
        act(node, s, lambda p: p.sleep(bad))
    act(node, s, lambda p: p.send_after(s, "now", 0))  # zero is a delay


class Caller(Driver):
    """``("call", to, request, timeout)`` from an async handler; the outcome goes to the journal."""

    async def handle_message(self, from_: PID, message: Any) -> None:
        _, to, request, timeout = message
        try:
            self.journal.append(("reply", await self.call(to, request, timeout)))
        except Exception as e:
            self.journal.append(("error", e))


class Silent(Driver):
    def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
        if callable(request):  # the test driving it
            return super().handle_call(from_, ref, request)
        self.journal.append((from_, ref))
        return ergo.NoReply  # answered later, or never


def test_a_call_without_reply_times_out_and_a_late_reply_is_dropped():
    from support import SimBackend

    b = SimBackend()
    try:
        node = b.node()
        journal: list = []
        asked: list = []
        caller = node.spawn(Caller, journal)
        silent = node.spawn(Silent, asked)
        node.send(caller, ("call", silent, "anyone?", 3))
        b.sim.run_for(2.9)
        assert journal == []
        b.sim.run_for(0.2)
        assert len(journal) == 1 and isinstance(journal[0][1], Timeout)
        from_, ref = asked[0]
        act(node, silent, lambda p: p.send_response(from_, ref, "too late"))
        b.sim.run()
        assert len(journal) == 1 and caller in node.process_list()
    finally:
        b.close()


def test_a_reply_later_reaches_the_caller_and_an_error_reply_raises_there(backend):
    from test_runner_contract import settle_now

    node = backend.node()
    journal: list = []
    asked: list = []
    caller = node.spawn(Caller, journal)
    silent = node.spawn(Silent, asked)
    node.send(caller, ("call", silent, "one", 1000))
    settle_now(backend)
    (f1, ref1), = asked
    act(node, silent, lambda p: p.send_response(f1, ref1, "answer"))
    settle_now(backend)
    assert journal == [("reply", "answer")]
    node.send(caller, ("call", silent, "two", 1000))
    settle_now(backend)
    f2, ref2 = asked[1]
    with pytest.raises(Incorrect):
        act(node, silent, lambda p: p.send_response_error(f2, ref2, "not an exception"))
    act(node, silent, lambda p: p.send_response_error(f2, ref2, NameUnknown("no such thing")))
    settle_now(backend)
    assert journal[1][0] == "error" and isinstance(journal[1][1], NameUnknown)
    assert node.process_info(silent).messages_out == 2
    # a handler that caught its call's error ended normally: the caller goes on with its mail
    node.send(caller, ("call", silent, "three", 1000))
    settle_now(backend)
    f3, ref3 = asked[2]
    act(node, silent, lambda p: p.send_response(f3, ref3, "third"))
    settle_now(backend)
    assert journal[2] == ("reply", "third")


def test_calls_and_inspects_need_an_async_handler(backend):
    node = backend.node()
    s, r = node.spawn(Driver), node.spawn(Driver)
    with pytest.raises(NotAllowed):
        act(node, s, lambda p: p.call(r, "x"))
    with pytest.raises(NotAllowed):
        act(node, s, lambda p: p.inspect(r))


def test_link_event_and_monitor_event_take_an_event(backend):
    node = backend.node()
    producer, consumer = node.spawn(Driver), node.spawn(Driver)
    act(node, producer, lambda p: p.register_event("news", buffer=2))
    for subscribe in ("link_event", "monitor_event"):
        with pytest.raises(Incorrect):
            act(node, consumer, lambda p, s=subscribe: getattr(p, s)("news"))
    assert act(node, consumer, lambda p: p.monitor_event(Event("news", node.name))) == []


def test_a_terminate_callback_that_raises_is_logged_and_the_process_still_goes(backend):
    node = backend.node()
    journal: list = []

    class BadEnd(Driver):
        def terminate(self, reason: BaseException) -> None:
            raise RuntimeError("terminate failed")

    victim = node.spawn(BadEnd)
    killed = node.spawn(BadEnd)
    watcher = node.spawn(Driver, journal)
    act(node, watcher, lambda p: (p.monitor(victim), p.monitor(killed)))
    node.send(victim, "anything")  # Driver.handle_message records it, so stop it another way
    act(node, node.spawn(Driver), lambda p: p.send_exit(victim, TerminateReasonNormal))
    node.kill(killed)
    backend.settle()
    assert MessageDownPID(victim, TerminateReasonNormal) in journal
    assert MessageDownPID(killed, TerminateReasonKill) in journal
    assert victim not in node.process_list() and killed not in node.process_list()
    panics = node.captured.texts(ergo.LogLevel.PANIC)
    assert sum("terminate callback" in t for t in panics) == 2


def test_a_killed_idle_process_gets_its_terminate_callback_a_busy_one_does_not(backend):
    node = backend.node()
    idle_journal: list = []
    busy_journal: list = []
    idle = node.spawn(Driver, idle_journal)
    node.kill(idle)
    assert idle_journal == [("terminate", TerminateReasonKill)]
    gate = node.spawn(Collector)

    class Busy(Driver):
        async def handle_message(self, from_: PID, message: Any) -> None:
            try:
                await self.call(gate, ("wait", 1), timeout=1000)
            finally:
                self.journal.append("finally ran")

    busy = node.spawn(Busy, busy_journal)
    node.send(busy, "go")
    from test_runner_contract import settle_now

    settle_now(backend)
    node.kill(busy)
    settle_now(backend)
    assert busy_journal == ["finally ran"]
    assert busy not in node.process_list()


def test_a_full_mailbox_with_a_fallback_forwards_the_message(backend):
    node = backend.node()
    spare_journal: list = []
    spare = node.spawn(Driver, spare_journal)
    node.register_name("spare", spare)
    from test_runner_contract import settle_now

    small = node.spawn(Driver, options=ProcessOptions(mailbox_size=1, fallback=Fallback("spare", "overflow")))
    s = node.spawn(Driver)

    def fill(p):
        p.send(small, "fits")
        p.send(small, "overflows")

    act(node, s, fill)
    settle_now(backend)
    assert spare_journal == [MessageFallback(small, "overflow", small, "overflows")]


def test_events_keep_no_messages_for_new_subscribers_unless_asked(backend):
    node = backend.node()
    producer, consumer = node.spawn(Driver), node.spawn(Driver)
    plain = act(node, producer, lambda p: p.register_event("plain"))
    kept = act(node, producer, lambda p: p.register_event("kept", buffer=1))
    act(node, producer, lambda p: (p.send_event("plain", plain, 1), p.send_event("kept", kept, 2)))
    assert act(node, consumer, lambda p: p.monitor_event(Event("plain", node.name))) == []
    got = act(node, consumer, lambda p: p.link_event(Event("kept", node.name)))
    assert [m.message for m in got] == [2]
    assert node.process_info(producer).events == (Event("plain", node.name), Event("kept", node.name))
    act(node, producer, lambda p: p.unregister_event("plain"))
    assert node.process_info(producer).events == (Event("kept", node.name),)


def test_a_meta_process_mailbox_is_unlimited_by_default(backend):
    node = backend.node()
    owner = node.spawn(Driver)
    alias = act(node, owner, lambda p: p.spawn_meta(ergo.MetaBehavior()))
    assert node.meta_info(alias).mailbox_size == 0
    assert node.process_info(owner).metas == (alias,)


def test_events_lists_the_names_a_process_registered(backend):
    node = backend.node()
    p = node.spawn(Driver)
    assert act(node, p, lambda p: p.events()) == []
    act(node, p, lambda p: (p.register_event("one"), p.register_event("two")))
    assert act(node, p, lambda p: p.events()) == ["one", "two"]
    act(node, p, lambda p: p.unregister_event("one"))
    assert act(node, p, lambda p: p.events()) == ["two"]


def test_children_linked_during_a_failing_init_hear_its_error(backend):
    node = backend.node()
    journal: list = []
    error = ValueError("init failed")

    class Parent(Driver):
        def init(self) -> None:
            self.spawn(Driver, journal, options=ProcessOptions(link_parent=True))
            raise error

    with pytest.raises(ValueError):
        node.spawn(Parent)
    backend.settle()
    # the link from its parent ends it (a parent's exit cannot be trapped), with the error
    [(what, reason)] = journal
    assert what == "terminate" and type(reason) is LinkExit and reason.args[1] is error


def test_a_call_counts_as_a_message_out(backend):
    from test_runner_contract import settle_now

    node = backend.node()
    journal: list = []
    caller = node.spawn(Caller, journal)
    node.send(caller, ("call", node.spawn(Collector), "messages", 1000))
    settle_now(backend)
    assert journal == [("reply", [])]
    assert node.process_info(caller).messages_out == 1


class Sleeper(Driver):
    async def handle_message(self, from_: PID, message: Any) -> None:
        try:
            await self.sleep(100)
            self.journal.append("woke")
        finally:
            self.journal.append("finally")


def test_a_sleeping_process_is_shut_down_at_once_when_the_node_stops():
    from support import SimBackend

    b = SimBackend()
    try:
        node = b.node()
        journal: list = []
        node.send(node.spawn(Sleeper, journal), "nap")
        b.sim.run_for(1)
        node.stop()
        assert b.sim.now == pytest.approx(1)  # the sleep does not hold the stop
        assert journal[0] == "finally" and journal[1][0] == "terminate"
    finally:
        b.close()


def test_a_call_to_a_local_process_does_not_hold_the_stop():
    from support import SimBackend

    b = SimBackend()
    try:
        node = b.node()
        journal: list = []
        caller = node.spawn(Caller, journal)
        node.send(caller, ("call", node.spawn(Silent, []), "anyone?", 3))
        b.sim.run_for(1)
        node.stop()
        # its target is stopped too, so the call fails at once (docs/node.md, Shutdown)
        assert b.sim.now == pytest.approx(1)
        assert isinstance(journal[0][1], ergo.NodeTerminated) and journal[1][0] == "terminate"
    finally:
        b.close()


def test_a_process_killed_in_a_sleep_is_released_at_once():
    import gc
    import weakref

    from support import SimBackend

    b = SimBackend()
    try:
        node = b.node()
        pid = node.spawn(Sleeper, [])
        ref = weakref.ref(act(node, pid, lambda p: p))
        node.send(pid, "nap")
        b.sim.run_for(1)
        node.kill(pid)
        gc.collect()
        assert ref() is None  # not kept until the sleep would have ended
        b.sim.run()
        assert b.sim.now == pytest.approx(1)  # its timer was cancelled, not left to fire
    finally:
        b.close()


def test_a_fallback_that_is_terminating_takes_nothing(backend):
    node = backend.node()
    seen: list = []

    class Spare(Driver):
        def handle_message(self, from_: PID, message: Any) -> None:
            if message == "stop":
                raise TerminateReasonNormal

        def terminate(self, reason: BaseException) -> None:
            self.send(self.small, "fills it")  # small runs only after this callback
            try:
                self.send(self.small, "overflow")  # small is full and falls back to this process
            except Exception as e:
                seen.append(e)

    spare = node.spawn_register("spare", Spare)
    small = node.spawn(Driver, options=ProcessOptions(mailbox_size=1, fallback=Fallback("spare", "t")))
    act(node, spare, lambda p: setattr(p, "small", small))
    node.send(spare, "stop")
    backend.settle()
    assert len(seen) == 1 and type(seen[0]).__name__ == "MailboxFull" and "terminating" in str(seen[0])


def test_a_replied_call_and_a_cancelled_sleep_leave_no_timer_behind():
    from support import SimBackend

    b = SimBackend()
    try:
        node = b.node()
        journal: list = []
        caller = node.spawn(Caller, journal)
        node.send(caller, ("call", node.spawn(Collector), "messages", 50))
        b.sim.run()
        assert journal == [("reply", [])]
        assert b.sim.now < 50  # the call's timeout timer went with its reply
        sleeper = node.spawn(Driver)
        cancelled = act(node, sleeper, lambda p: (lambda f: (f.cancel(), f.cancel(), f.cancelled()))(p.sleep(30)))
        assert cancelled == (True, False, True)
        b.sim.run()
        assert b.sim.now < 30  # nor the sleep's, once cancelled
    finally:
        b.close()


def test_a_behaviour_class_takes_no_class_keywords():
    with pytest.raises(TypeError):

        class Odd(Driver, flavour="strange"):  # type: ignore[call-arg]
            pass

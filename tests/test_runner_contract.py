"""The mailbox and run loop every process shares (ergo/node/runner.py), on both schedulers:
priorities, per-queue limits that runtime notices ignore, per-sender order of signals,
the batch a run handles, and async handlers that end their process."""

from __future__ import annotations

from typing import Any

import pytest
from drive import Driver, act
from support import Collector

import ergo
from ergo import (
    PID,
    LogLevel,
    MailboxFull,
    MessageDownPID,
    MessageExitPID,
    MessagePriority,
    ProcessOptions,
    ProcessState,
    ProcessUnknown,
    TerminateReason,
    TerminateReasonKill,
    TerminateReasonNormal,
    TerminateReasonPanic,
)

HIGH, MAX = MessagePriority.HIGH, MessagePriority.MAX


class Waiter(Driver):
    """A Driver whose messages are async: ``("block", gate)`` suspends it in a call to the
    Collector ``gate`` until the gate gets a message, so its mailbox fills meanwhile."""

    async def handle_message(self, from_: PID, message: Any) -> None:
        self.journal.append(message)
        if isinstance(message, tuple) and message[0] == "block":
            await self.call(message[1], ("wait", 1), timeout=1000)
            self.journal.append("unblocked")


def settle_now(backend) -> None:
    """Run everything due now without moving the clock on to the blocked call's timeout."""
    if backend.name == "sim":
        backend.sim.run_for(0.001)
    else:
        backend.settle()


def blocked(backend, node, mailbox_size: int = 0, trap: bool = True):
    """A Waiter suspended in a call (state waitresponse), its journal, and the gate that frees it."""
    journal: list = []
    gate = node.spawn(Collector)
    w = node.spawn(Waiter, journal, trap, options=ProcessOptions(mailbox_size=mailbox_size))
    node.send(w, ("block", gate))
    settle_now(backend)
    assert node.process_info(w).state is ProcessState.WAIT_RESPONSE
    return w, journal, gate


# -- async handlers end their process like plain ones -------------------------------------


class AsyncFailer(Driver):
    async def handle_message(self, from_: PID, message: Any) -> None:
        how, when, helper = message
        if when == "after-await":
            await self.call(helper, "messages")
        if how == "panic":
            raise RuntimeError("boom in an async handler")
        raise TerminateReason("custom stop")


@pytest.mark.parametrize("when", ["before-await", "after-await"])
@pytest.mark.parametrize("how,reason", [("panic", TerminateReasonPanic), ("stop", TerminateReason("custom stop"))])
def test_an_async_handler_that_raises_terminates_its_process(backend, when, how, reason):
    node = backend.node()
    journal: list = []
    victim = node.spawn(AsyncFailer)
    watcher = node.spawn(Driver, journal)
    act(node, watcher, lambda p: p.monitor(victim))
    node.send(victim, (how, when, node.spawn(Collector)))
    backend.settle()
    assert journal == [MessageDownPID(victim, reason)]
    with pytest.raises(ProcessUnknown):
        node.process_info(victim)


# -- exits: trapped only when asked --------------------------------------------------------


def test_a_process_does_not_trap_exits_until_it_asks(backend):
    node = backend.node()
    plain_journal: list = []
    plain = node.spawn(Driver, plain_journal)
    trapping = node.spawn(Driver, [])
    sender = node.spawn(Driver)
    assert node.process_info(plain).trap_exit is False
    assert act(node, plain, lambda p: p.trap_exit) is False
    act(node, trapping, lambda p: setattr(p, "trap_exit", True))
    assert node.process_info(trapping).trap_exit is True
    reason = TerminateReason("go away")
    act(node, sender, lambda p: (p.send_exit(plain, reason), p.send_exit(trapping, reason)))
    backend.settle()
    assert plain not in node.process_list()
    assert len(plain_journal) == 1 and plain_journal[0][0] == "terminate"
    assert trapping in node.process_list()
    trapped = act(node, trapping, lambda p: list(p.journal))
    assert trapped == [MessageExitPID(sender, reason)]


def test_a_behaviour_that_never_mentions_trap_exit_dies_of_an_exit_signal(backend):
    node = backend.node()
    journal: list = []
    plain = node.spawn(Collector)  # its init does not touch trap_exit
    assert node.process_info(plain).trap_exit is False
    watcher = node.spawn(Driver, journal)
    act(node, watcher, lambda p: (p.monitor(plain), p.send_exit(plain, TerminateReason("bye"))))
    backend.settle()
    assert plain not in node.process_list()
    assert len(journal) == 1 and type(journal[0]) is MessageDownPID


# -- priorities and the order of one sender ------------------------------------------------


def test_queues_are_drained_urgent_then_system_then_main(backend):
    node = backend.node()
    w, journal, gate = blocked(backend, node)
    s = node.spawn(Driver)
    act(node, s, lambda p: (p.send(w, "normal"), p.send_with_priority(w, "high", HIGH),
                            p.send_with_priority(w, "max", MAX)))
    node.send(gate, "go")
    settle_now(backend)
    assert journal[-4:] == ["unblocked", "max", "high", "normal"]


@pytest.mark.parametrize("priority", [MessagePriority.NORMAL, HIGH])
def test_an_exit_signal_never_overtakes_an_earlier_message_of_the_same_sender(backend, priority):
    node = backend.node()
    journal: list = []
    r = node.spawn(Driver, journal, True)
    s = node.spawn(Driver)
    reason = TerminateReason("after the message")
    act(node, s, lambda p: (p.send_with_priority(r, "first", priority), p.send_exit(r, reason)))
    backend.settle()
    assert journal == ["first", MessageExitPID(s, reason)]


def test_an_exit_signal_overtakes_other_senders_messages(backend):
    node = backend.node()
    w, journal, gate = blocked(backend, node)
    s1, s2 = node.spawn(Driver), node.spawn(Driver)
    reason = TerminateReason("urgent")
    act(node, s1, lambda p: (p.send(w, "normal"), p.send_with_priority(w, "high", HIGH)))
    act(node, s2, lambda p: p.send_exit(w, reason))
    node.send(gate, "go")
    settle_now(backend)
    assert journal[-4:] == ["unblocked", MessageExitPID(s2, reason), "high", "normal"]


class Speaker(Driver):
    """Says its last words to someone, then stops, in one handler."""

    def handle_message(self, from_: PID, message: Any) -> None:
        to, words = message
        self.send(to, words)
        raise TerminateReasonNormal


def test_a_down_never_overtakes_an_earlier_message_of_the_same_sender(backend):
    node = backend.node()
    journal: list = []
    watcher = node.spawn(Driver, journal)
    speaker = node.spawn(Speaker)
    act(node, watcher, lambda p: p.monitor(speaker))
    node.send(speaker, (watcher, "last words"))
    backend.settle()
    assert journal == ["last words", MessageDownPID(speaker, TerminateReasonNormal)]


# -- mailbox limits: per queue, and never for the runtime's own notices --------------------


def test_each_queue_holds_at_most_mailbox_size_items(backend):
    node = backend.node()
    w, journal, gate = blocked(backend, node, mailbox_size=1)
    s = node.spawn(Driver)
    for priority, label in [(MAX, "urgent"), (HIGH, "system"), (MessagePriority.NORMAL, "main")]:
        act(node, s, lambda p, pr=priority, lb=label: p.send_with_priority(w, lb, pr))
        with pytest.raises(MailboxFull):
            act(node, s, lambda p, pr=priority, lb=label: p.send_with_priority(w, lb + " again", pr))
    with pytest.raises(MailboxFull):
        node.send(w, "from outside")
    info = node.process_info(w)
    assert info.mailbox_size == 1
    assert info.mailbox_queues == {"urgent": 1, "system": 1, "main": 1, "log": 0}
    node.send(gate, "go")
    settle_now(backend)
    assert journal[-4:] == ["unblocked", "urgent", "system", "main"]


def test_exits_and_downs_are_queued_past_a_full_mailbox(backend):
    node = backend.node()
    gone1, gone2 = node.spawn(Driver), node.spawn(Driver)
    w, journal, gate = blocked(backend, node, mailbox_size=1)
    # the Waiter watches both before it blocks again
    node.send(gate, "go")
    settle_now(backend)
    act(node, w, lambda p: (p.monitor(gone1), p.monitor(gone2)))
    gate2 = node.spawn(Collector)
    node.send(w, ("block", gate2))
    settle_now(backend)
    s1, s2 = node.spawn(Driver), node.spawn(Driver)
    r1, r2 = TerminateReason("one"), TerminateReason("two")
    act(node, s1, lambda p: p.send_exit(w, r1))
    act(node, s2, lambda p: p.send_exit(w, r2))  # the urgent queue already holds one item
    node.kill(gone1)
    node.kill(gone2)  # the system queue already holds the first down
    settle_now(backend)
    queues = node.process_info(w).mailbox_queues
    assert queues["urgent"] == 2 and queues["system"] == 2
    before = len(journal)
    node.send(gate2, "go")
    settle_now(backend)
    assert journal[before:] == ["unblocked", MessageExitPID(s1, r1), MessageExitPID(s2, r2),
                                MessageDownPID(gone1, TerminateReasonKill), MessageDownPID(gone2, TerminateReasonKill)]


# -- a run is a bounded batch ---------------------------------------------------------------


def test_a_run_handles_at_most_100_items_then_lets_others_run(backend):
    # 100 is the batch docs/testing.md gives the model ("up to 100 items a run")
    node = backend.node()
    journal: list = []
    busy = node.spawn(Driver, journal)
    other = node.spawn(Driver, journal)
    s = node.spawn(Driver)
    act(node, s, lambda p: ([p.send(busy, i) for i in range(150)], p.send(other, "other")))
    backend.settle()
    assert journal == [*range(100), "other", *range(100, 150)]


def test_messages_sent_during_init_are_handled_once_spawn_returns(backend):
    node = backend.node()
    journal: list = []

    class Early(Driver):
        def init(self, journal: list) -> None:
            super().init(journal)
            self.send(self.pid, "to myself, from init")

    node.spawn(Early, journal)
    backend.settle()
    assert journal == ["to myself, from init"]


def test_counters_of_a_process(backend):
    node = backend.node()
    r = node.spawn(Driver)
    s = node.spawn(Driver)
    act(node, s, lambda p: (p.send(r, 1), p.send(r, 2), p.send_with_priority(r, 3, HIGH)))
    backend.settle()
    assert node.process_info(r).messages_in == 3 + 0
    assert node.process_info(s).messages_out == 3
    assert node.process_info(r).mailbox_queues == {"urgent": 0, "system": 0, "main": 0, "log": 0}


def test_running_time_grows_with_the_work_handlers_do():
    # on asyncio the clock is real, so a handler's work shows in running_time; in simulation
    # a handler takes no virtual time
    from support import AsyncioBackend, SimBackend

    b = AsyncioBackend()
    try:
        node = b.node()
        r = node.spawn(Driver)
        act(node, r, lambda p: sum(i * i for i in range(20000)))
        assert node.process_info(r).running_time > 0
    finally:
        b.close()
    s = SimBackend()
    try:
        node = s.node()
        r = node.spawn(Driver)
        act(node, r, lambda p: sum(i * i for i in range(2000)))
        assert node.process_info(r).running_time == 0
    finally:
        s.close()


@pytest.mark.parametrize("priority,order", [
    (MessagePriority.NORMAL, ["message", "call"]),
    (HIGH, ["call", "message"]),
    (MAX, ["call", "message"]),
])
def test_a_call_is_queued_by_the_callers_priority(backend, priority, order):
    from test_process_contract import Caller

    node = backend.node()
    w, journal, gate = blocked(backend, node)
    s = node.spawn(Driver)
    caller = node.spawn(Caller)
    act(node, caller, lambda p: setattr(p, "send_priority", priority))
    act(node, s, lambda p: p.send(w, "message"))
    node.send(caller, ("call", w, lambda p: p.journal.append("call"), 1000))
    settle_now(backend)
    node.send(gate, "go")
    settle_now(backend)
    assert journal[-2:] == order


# -- what a handler returns, and ending while busy ----------------------------------------------


def test_a_plain_handler_may_return_any_value(backend):
    node = backend.node()
    journal: list = []

    class Returns(Driver):
        def handle_message(self, from_: PID, message: Any) -> Any:
            self.journal.append(message)
            return message  # a value, not a coroutine: nothing to drive

    pid = node.spawn(Returns, journal)
    for m in (5, "text", [1]):
        node.send(pid, m)
    backend.settle()
    assert journal == [5, "text", [1]]
    assert pid in node.process_list()


def test_a_failing_finally_of_a_killed_handler_is_logged(backend):
    node = backend.node()
    gate = node.spawn(Collector)

    class BadFinally(Driver):
        async def handle_message(self, from_: PID, message: Any) -> None:
            try:
                await self.call(gate, ("wait", 1), timeout=1000)
            finally:
                self.journal.append("finally ran")
                raise RuntimeError("the finally block failed")

    journal: list = []
    pid = node.spawn(BadFinally, journal)
    node.send(pid, "go")
    settle_now(backend)
    node.kill(pid)
    settle_now(backend)
    assert journal == ["finally ran"]  # at the kill, not whenever the coroutine is collected
    panics = node.captured.texts(LogLevel.PANIC)
    assert sum("closing the handler" in t and "the finally block failed" in t for t in panics) == 1
    assert pid not in node.process_list()


def test_a_handler_that_kills_its_own_process_then_raises_is_terminated_once(backend):
    node = backend.node()
    journal: list = []
    watcher_journal: list = []

    class KillThenFail(Driver):
        def handle_message(self, from_: PID, message: Any) -> None:
            self.node.kill(self.pid)
            raise RuntimeError("after the kill")

    pid = node.spawn(KillThenFail, journal)
    watcher = node.spawn(Driver, watcher_journal)
    act(node, watcher, lambda p: p.monitor(pid))
    node.send(pid, "go")
    backend.settle()
    assert journal == []  # killed while busy: terminate is not called, and not later either
    assert watcher_journal == [MessageDownPID(pid, TerminateReasonKill)]


def test_an_argument_shown_in_an_error_is_cut_past_80_characters():
    from ergo.node.runner import show

    assert show("x" * 78) == repr("x" * 78)  # 80 characters with its quotes: shown whole
    long = show("x" * 79)
    assert len(long) == 80 and long.endswith("...")

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert show(Broken()) == "<Broken>"


def test_a_process_killed_with_messages_waiting_handles_none_of_them(backend):
    node = backend.node()
    journal: list = []
    victim = node.spawn(Driver, journal)
    s = node.spawn(Driver)
    act(node, s, lambda p: ([p.send(victim, i) for i in range(3)], p.node.kill(victim)))
    backend.settle()
    assert journal == [("terminate", TerminateReasonKill)]


@pytest.mark.parametrize("message", ["at once", "after an await"])
def test_an_async_handler_that_kills_its_own_process_is_closed_at_its_next_await(backend, message):
    node = backend.node()
    journal: list = []

    helper = node.spawn(Collector)

    class KillsItself(Driver):
        async def handle_message(self, from_: PID, message: Any) -> None:
            try:
                if message == "after an await":  # the kill then happens in a resumed step
                    await self.call(helper, "messages")
                self.node.kill(self.pid)
                await self.sleep(5)
                self.journal.append("after the sleep")
            finally:
                self.journal.append("finally")

    import gc

    pid = node.spawn(KillsItself, journal)
    gc.disable()  # the finally must run at the kill, not whenever the collector finds the coroutine
    try:
        node.send(pid, message)
        settle_now(backend)
        assert journal == ["finally"]
    finally:
        gc.enable()
    assert pid not in node.process_list()


def test_an_interrupt_from_a_terminate_callback_stops_the_node():
    from support import SimBackend

    b = SimBackend()
    try:
        node = b.node()

        class Interrupts(Driver):
            def terminate(self, reason: BaseException) -> None:
                raise KeyboardInterrupt

        journal: list = []
        pid = node.spawn(Interrupts)
        node.spawn(Driver, journal)
        node.kill(pid)
        with pytest.raises(KeyboardInterrupt):  # out of the loop, as asyncio raises it
            b.sim.run()
        node.wait(10)
        assert not node.is_alive()
        assert len(journal) == 1 and journal[0][0] == "terminate"  # the others were stopped
    finally:
        b.close()


def test_a_process_an_async_handler_stopped_stays_terminated(backend):
    node = backend.node()
    helper = node.spawn(Collector)

    class StopsAfterAwait(Driver):
        async def handle_message(self, from_: PID, message: Any) -> None:
            await self.call(helper, "messages")
            raise TerminateReasonNormal

    pid = node.spawn(StopsAfterAwait)
    behaviour = act(node, pid, lambda p: p)
    node.send(pid, "go")
    node.send(pid, "never handled")
    settle_now(backend)
    assert pid not in node.process_list()
    assert behaviour.state is ProcessState.TERMINATED  # not put back to sleep with mail waiting


def test_a_handler_that_stops_the_node_then_sleeps_is_stopped_where_it_waits(backend):
    node = backend.node()
    journal: list = []

    class StopsThenSleeps(Driver):
        async def handle_message(self, from_: PID, message: Any) -> None:
            try:
                self.node.stop()  # from a handler: returns at once, the stop goes on
                await self.sleep(100)
                self.journal.append("woke")
            finally:
                self.journal.append("finally")

    node.send(node.spawn(StopsThenSleeps, journal), "go")
    assert node.wait(5) is True  # a sleep never holds a stop
    assert journal[0] == "finally" and journal[1][0] == "terminate"


def test_a_caller_learns_the_panic_of_its_target_shown_up_to_400_characters(backend):
    node = backend.node()

    class Panics(Driver):
        def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
            raise RuntimeError("x" * 1000)

    with pytest.raises(ergo.ProcessTerminated) as e:
        node.call(node.spawn(Panics), "anything", timeout=5)
    shown = str(e.value)
    assert "RuntimeError('" + "x" * 383 + "..." in shown  # repr cut to 400 characters
    assert "x" * 384 not in shown


@pytest.mark.parametrize("fails", [False, True])
def test_the_cleanup_of_a_killed_task_handler_is_logged_only_when_it_fails(fails):
    import asyncio as aio

    from support import AsyncioBackend

    b = AsyncioBackend()
    try:
        node = b.node()
        journal: list = []
        gate = node.spawn(Collector)

        class Cleans(Driver):
            async def handle_message(self, from_: PID, message: Any) -> None:
                try:
                    await self.call(gate, ("wait", 1), timeout=1000)
                finally:
                    await aio.sleep(0)  # a cleanup that awaits: the task drives it on
                    self.journal.append("cleaned")
                    if fails:
                        raise RuntimeError("cleanup failed")

        pid = node.spawn(Cleans, journal)
        node.send(pid, "go")
        b.settle()
        node.kill(pid)
        b.settle()
        assert journal == ["cleaned"]
        logged = [t for t in node.captured.texts(LogLevel.PANIC) if "cleanup of the cancelled handler" in t]
        assert len(logged) == (1 if fails else 0)
    finally:
        b.close()

"""Issue 10, the node: what odd handlers and careless callers do to it.

A handler that raises a ``BaseException`` that is not an ``Exception``, a call from outside
pending when the node stops, non-finite delays, fallbacks that point at full mailboxes,
sleepers killed or stopped, and arguments of the wrong type or range: each ends in the
project's own error or in a clean termination, never in a wedged process, a hung stop or a
leaked object.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import weakref
from typing import Any

import pytest
from support import AsyncioBackend, Collector, SimBackend

import net
import sim
from ergo import (
    PID,
    Actor,
    AliasOwner,
    AtomTooLong,
    CompressionOptions,
    ErgoError,
    Event,
    ExitSignal,
    Fallback,
    Incorrect,
    LogLevel,
    LogOptions,
    MailboxFull,
    MessageDownPID,
    MessageFallback,
    MetaBehavior,
    NameUnknown,
    NodeOptions,
    NodeTerminated,
    NoReply,
    ProcessOptions,
    ProcessState,
    ProcessUnknown,
    TerminateReasonNormal,
    TerminateReasonPanic,
    TerminateReasonShutdown,
    unwrap_reason,
)


def unwrapped(journal: list) -> list:
    """What a journal of terminate reasons says once the runtime's ExitSignal wrapper is off."""
    return [unwrap_reason(r) if isinstance(r, BaseException) else r for r in journal]


class Watcher(Collector):
    """A Collector that monitors ``target``: ``call(("wait", 1))`` returns once it is down."""

    def init(self, target: PID) -> None:
        super().init()
        self.monitor(target)


class Silent(Actor):
    """Never answers a call; on "stop the node" it stops the node from inside its handler."""

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        if request == "stop the node":
            self.node.stop()  # returns at once inside a handler
        return NoReply


class Raiser(Actor):
    """Raises what it is sent: from a plain handler, after an await, or from terminate."""

    def init(self, journal: list) -> None:
        self.journal = journal
        self.raise_in_terminate: BaseException | None = None

    def handle_message(self, from_: Any, message: Any) -> Any:
        how, exc = message
        if how == "plain":
            raise exc
        if how == "terminate":
            self.raise_in_terminate = exc
            raise TerminateReasonNormal
        return self._after_a_sleep(exc)

    async def _after_a_sleep(self, exc: BaseException) -> None:
        await self.sleep(0.001)
        raise exc

    def terminate(self, reason: BaseException) -> None:
        self.journal.append(reason)
        if self.raise_in_terminate is not None:
            raise self.raise_in_terminate


class MyBaseException(BaseException):
    pass


def down_reason(node: Any, watcher: PID) -> BaseException:
    [down] = node.call(watcher, ("wait", 1))
    assert isinstance(down, MessageDownPID)
    return down.reason


def panics(node: Any) -> str:
    return "\n".join(node.captured.texts(LogLevel.PANIC))


# -- 1. BaseExceptions out of handlers --------------------------------------------------------


@pytest.mark.parametrize("how", ["plain", "async", "terminate"])
@pytest.mark.parametrize("exc", [asyncio.CancelledError, GeneratorExit, MyBaseException], ids=lambda c: c.__name__)
def test_a_base_exception_out_of_a_handler_is_a_panic_of_that_process_only(backend, exc, how):
    node = backend.node()
    journal: list = []
    pid = node.spawn(Raiser, journal)
    watcher = node.spawn(Watcher, pid)
    bystander = node.spawn(Collector)
    node.send(pid, (how, exc("odd")))
    reason = down_reason(node, watcher)
    if how == "terminate":  # it was already terminating: the callback's error is logged, nothing more
        assert reason == TerminateReasonNormal and journal == [TerminateReasonNormal]
    else:
        assert reason == TerminateReasonPanic and journal == [TerminateReasonPanic]
    assert exc.__name__ in panics(node)
    with pytest.raises(ProcessUnknown):  # gone for good: a call fails at once instead of timing out
        node.call(pid, "anyone there?")
    assert node.call(bystander, "messages") == []
    node.stop()
    assert not node.is_alive()


def test_an_awaited_asyncio_future_that_is_cancelled_panics_its_process():
    backend = AsyncioBackend()
    try:
        node = backend.node()
        fut = backend.loop.create_future()

        class Awaiter(Actor):
            async def handle_message(self, from_: Any, message: Any) -> None:
                await fut

        pid = node.spawn(Awaiter)
        watcher = node.spawn(Watcher, pid)
        node.send(pid, "go")
        backend.settle()
        assert node.process_info(pid).state is ProcessState.WAIT_RESPONSE
        fut.cancel()
        assert down_reason(node, watcher) == TerminateReasonPanic
        assert "CancelledError" in panics(node)
        node.stop()
        assert not node.is_alive()
    finally:
        backend.close()


@pytest.mark.parametrize("how", ["plain", "async", "terminate"])
@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_or_system_exit_stops_the_node_and_is_raised_out_of_its_loop(backend, exc, how):
    node = backend.node()
    journal: list = []
    others: list = []
    pid = node.spawn(Raiser, journal)
    node.spawn(Raiser, others)
    node.send(pid, (how, exc()))
    with pytest.raises(exc):  # not swallowed: it comes out of whatever runs the loop
        node.wait()
    assert node.wait()  # the graceful stop it began completes
    assert not node.is_alive()
    assert journal == [TerminateReasonNormal if how == "terminate" else TerminateReasonShutdown]
    assert isinstance(others[0], ExitSignal) and unwrapped(others) == [TerminateReasonShutdown]
    assert exc.__name__ in "\n".join(node.captured.texts())


def test_a_base_exception_out_of_init_fails_the_spawn_and_leaves_nothing(backend):
    node = backend.node()

    class Cancelled(Actor):
        def init(self) -> None:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        node.spawn(Cancelled)
    assert node.process_list() == []
    node.stop()
    assert not node.is_alive()


class StartRaises(MetaBehavior):
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def start(self) -> None:
        raise self.exc


class MetaOwner(Actor):
    def init(self, exc: BaseException) -> None:
        self.meta = self.spawn_meta(StartRaises(exc))

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return list(self.info().metas)


@pytest.mark.parametrize("exc", [asyncio.CancelledError, GeneratorExit], ids=lambda c: c.__name__)
def test_a_base_exception_out_of_a_meta_process_start_is_its_panic(backend, exc):
    node = backend.node()
    owner = node.spawn(MetaOwner, exc())
    backend.settle()
    assert node.call(owner, "metas") == []  # the meta-process is gone, its owner is not
    assert exc.__name__ in panics(node)
    node.stop()
    assert not node.is_alive()


# -- 2. calls pending when the node stops -------------------------------------------------------


def test_a_call_from_outside_fails_at_once_when_the_node_stops(backend):
    node = backend.node()
    pid = node.spawn(Silent)
    with pytest.raises(NodeTerminated):
        node.call(pid, "stop the node", timeout=3600)
    assert not node.is_alive()
    if isinstance(backend, SimBackend):
        assert backend.sim.now == 0  # it did not wait for its timeout


def test_call_async_pending_when_the_node_stops_fails_with_node_terminated():
    backend = AsyncioBackend()
    try:
        node = backend.node()
        pid = node.spawn(Silent)

        async def main() -> None:
            call = asyncio.ensure_future(node.call_async(pid, "no reply", timeout=3600))
            await asyncio.sleep(0)  # the call is made
            node.stop()
            await node.wait_async()
            await asyncio.sleep(0)
            assert call.done()
            with pytest.raises(NodeTerminated):
                call.result()

        backend.loop.run_until_complete(main())
    finally:
        backend.close()


# -- 3. delays and timeouts ---------------------------------------------------------------------

BAD_DELAYS = [math.nan, math.inf, -math.inf, -1, -0.5, 10**400, "1", [1], True]


class Prober(Actor):
    """Runs ``request(self)`` inside an async handler and answers with the error class it raised."""

    async def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        try:
            result = request(self)
        except Exception as e:
            return type(e)
        if hasattr(result, "cancel"):
            result.cancel()
        return "no error"


def probe(node: Any, fn: Any) -> Any:
    return node.call(node.spawn(Prober), fn)


@pytest.mark.parametrize("bad", BAD_DELAYS, ids=repr)
def test_a_delay_or_timeout_that_is_not_a_finite_number_of_seconds_is_incorrect(backend, bad):
    node = backend.node()
    other = node.spawn(Collector)
    assert probe(node, lambda p: p.sleep(bad)) is Incorrect
    assert probe(node, lambda p: p.send_after(other, "m", bad)) is Incorrect
    assert probe(node, lambda p: p.call(other, "messages", timeout=bad)) is Incorrect
    with pytest.raises(Incorrect):
        node.call(other, "messages", timeout=bad)
    with pytest.raises(Incorrect):
        node.call_async(other, "messages", timeout=bad).send(None)
    with pytest.raises(Incorrect):
        node.wait(bad)
    if isinstance(backend, SimBackend):
        now = backend.sim.now
        with pytest.raises(Incorrect):
            backend.sim.run_for(bad)
        with pytest.raises(Incorrect):
            backend.sim.run(bad)
        assert backend.sim.now == now  # the clock is untouched (NaN would have stuck to it)
    assert node.call(other, "messages") == []  # nothing was sent, the node goes on


# -- 4. mailbox fallbacks -------------------------------------------------------------------------


def full(node: Any, name: str, fallback: str | None, **kw: Any) -> PID:
    """A registered Collector whose one-slot mailbox is already full (it has not run yet)."""
    options = ProcessOptions(mailbox_size=1, fallback=Fallback(fallback, "t") if fallback else None, **kw)
    pid = node.spawn_register(name, Collector, options=options)
    node.send(pid, "first")
    return pid


def test_a_process_that_falls_back_to_itself_refuses_with_mailbox_full(backend):
    node = backend.node()
    pid = full(node, "a", "a")
    with pytest.raises(MailboxFull, match="is this process"):
        node.send(pid, "second")
    backend.settle()
    assert node.call(pid, "messages") == ["first"]


def test_a_fallback_is_one_hop(backend):
    node = backend.node()
    a = full(node, "a", "b")
    b = full(node, "b", "a")  # each falls back to the other: no ping-pong
    with pytest.raises(MailboxFull, match="full too"):
        node.send(a, "second")
    c = node.spawn_register("c", Collector)
    d = full(node, "d", "e")
    e = full(node, "e", "c")  # d's fallback is full and would fall back further: it does not
    with pytest.raises(MailboxFull):
        node.send(d, "second")
    backend.settle()
    assert node.call(a, "messages") == ["first"] and node.call(b, "messages") == ["first"]
    assert node.call(c, "messages") == [] and node.call(e, "messages") == ["first"]


def test_a_fallback_that_cannot_take_the_message_is_mailbox_full(backend):
    node = backend.node()
    pid = full(node, "a", "nobody")
    with pytest.raises(MailboxFull, match="nobody"):
        node.send(pid, "second")


def test_a_fallback_on_another_node_is_refused_at_spawn(backend):
    """A full mailbox passes a message on to a process of its own node only (Ergo's
    fallback is a name there).  A fallback PID of another node was taken, and every
    message it should have taken was refused with a MailboxFull saying the node had no
    network, even on a node that had one: the spawn refuses it (as it does for a remote
    spawn's options, which a peer chose)."""
    node = backend.node()
    elsewhere = PID("other@host", 7, 1)
    with pytest.raises(Incorrect, match="a fallback is a process of this node .* of node other@host"):
        node.spawn(Collector, options=ProcessOptions(mailbox_size=1, fallback=Fallback(elsewhere, "t")))
    assert probe(node, lambda p: p.spawn(Collector, options=ProcessOptions(fallback=Fallback(elsewhere)))) is Incorrect
    here = node.spawn(Collector)
    node.spawn(Collector, options=ProcessOptions(mailbox_size=1, fallback=Fallback(here, "t")))  # its own: fine


def test_a_call_into_a_full_mailbox_is_refused_at_once_never_forwarded(backend):
    node = backend.node()
    spare = node.spawn_register("spare", Collector)
    pid = full(node, "a", "spare")
    with pytest.raises(MailboxFull):
        node.call(pid, "messages", timeout=3600)
    pid2 = full(node, "a2", "spare")

    def fill_then_call(p: Any) -> Any:
        p.send(pid2, "fills it")  # it has handled "first" by now; it cannot run while this handler does
        return p.call(pid2, "messages", timeout=3600)

    assert probe(node, fill_then_call) is MailboxFull
    node.send(pid, "fills it")  # a message still falls back
    node.send(pid, "second")
    assert node.call(spare, ("wait", 1)) == [MessageFallback(pid, "t", pid, "second")]
    if isinstance(backend, SimBackend):
        assert backend.sim.now == 0  # no caller waited for its timeout


def test_an_event_for_a_full_mailbox_does_not_fall_back(backend):
    node = backend.node()
    token = node.register_event("ev")
    spare = node.spawn_register("spare", Collector)

    class Subscriber(Collector):
        def init(self) -> None:
            super().init()
            self.monitor_event(Event("ev", node.name))

    sub = node.spawn(Subscriber, options=ProcessOptions(mailbox_size=1, fallback=Fallback("spare")))
    node.send(sub, "first")
    node.send_event("ev", token, "news")  # lost for this subscriber only, and logged
    backend.settle()
    assert node.call(spare, "messages") == []
    assert node.call(sub, "messages") == ["first"]
    assert any("not delivered" in t for t in node.captured.texts())


# -- 5. kill and shutdown release a sleeper at once -------------------------------------------


class Sleeper(Actor):
    def init(self, journal: list) -> None:
        self.journal = journal

    async def handle_message(self, from_: Any, message: Any) -> None:
        try:
            await self.sleep(message)
            self.journal.append("woke")
        finally:
            self.journal.append("finally")

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return request

    def terminate(self, reason: BaseException) -> None:
        self.journal.append(reason)


def sleeping(node: Any, journal: list, seconds: float = 3600) -> PID:
    pid = node.spawn(Sleeper, journal)
    node.send(pid, seconds)
    node.call(node.spawn(Collector), "messages")  # FIFO: by now it has started its sleep
    assert node.process_info(pid).state is ProcessState.WAIT_RESPONSE
    return pid


def test_a_process_killed_while_sleeping_is_released_at_once(backend):
    node = backend.node()
    journal: list = []
    pid = sleeping(node, journal)
    ref = weakref.ref(node._processes[pid.id])
    node.kill(pid)
    assert journal == ["finally"]  # its coroutine is closed; killed while suspended: a zombee, no terminate
    gc.collect()
    assert ref() is None  # no timer or future keeps it
    if isinstance(backend, SimBackend):
        backend.settle()
        assert backend.sim.now == 0  # its sleep's timer is cancelled, not merely orphaned


def test_a_process_killed_while_in_a_call_is_released_at_once(backend):
    node = backend.node()
    silent = node.spawn(Silent)

    class Caller(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            await self.call(silent, "no reply", timeout=3600)

    pid = node.spawn(Caller)
    ref = weakref.ref(node._processes[pid.id])
    node.send(pid, "go")
    node.call(node.spawn(Collector), "messages")
    assert node.process_info(pid).state is ProcessState.WAIT_RESPONSE
    node.kill(pid)
    gc.collect()
    assert ref() is None
    if isinstance(backend, SimBackend):
        backend.settle()
        assert backend.sim.now == 0  # the call's timer went with it


class Quits(Actor):
    """Stops on its first message, as a handler returning its process's end does."""

    def handle_message(self, from_: Any, message: Any) -> None:
        raise TerminateReasonNormal


def _ended_and_freed(backend: Any, behavior: type, end: str) -> PID:
    """Spawn ``behavior``, end it by ``end`` (watched), and assert that reference counting
    alone freed it (the cyclic GC off meanwhile).  Returns its PID."""
    node = backend.node()
    gc.collect()
    gc.disable()
    try:
        pid = node.spawn(behavior)
        ref = weakref.ref(node._processes[pid.id])
        watcher = node.spawn(Watcher, pid)
        if end == "exit signal":
            node.send_exit(pid, TerminateReasonNormal)
        elif end == "kill":
            node.kill(pid)
        else:
            node.send(pid, "quit")
        assert [type(m) for m in node.call(watcher, ("wait", 1))] == [MessageDownPID]
        backend.settle()
        assert ref() is None
        return pid
    finally:
        gc.enable()


ENDS = ["exit signal", "kill", "handler's reason"]


@pytest.mark.parametrize("end", ENDS)
def test_a_terminated_process_that_never_logged_is_freed_without_the_cycle_collector(backend, end):
    """Most processes never log: their end releases them at once, by reference counting.
    In a reference cycle (a Log made at spawn held a bound method of its process), every
    terminated process stayed in memory until the collector's next pass, which then
    spent its time finding them: a spawn-heavy node (supervision, short-lived workers)
    pays for that on every spawn."""
    _ended_and_freed(backend, Quits, end)


class LogsThenQuits(Quits):
    """Logs in init, keeps its Log where the test sees it, stops on its first message."""

    kept: list[Any] = []

    def init(self) -> None:
        self.log.info("about to be told to quit")
        LogsThenQuits.kept.append(self.log)


@pytest.mark.parametrize("end", ENDS)
def test_a_terminated_process_that_logged_is_freed_too_and_its_kept_log_still_names_it(backend, end):
    """A process's Log makes its source (who logs) with a bound method of the process: a
    reference cycle.  The end of the process breaks it (the source made then), so a process
    that logged is freed by reference counting as well, and a Log kept past its process's
    end still says whose it was."""
    LogsThenQuits.kept.clear()
    try:
        pid = _ended_and_freed(backend, LogsThenQuits, end)
        (log,) = LogsThenQuits.kept
        assert log.source.pid == pid and log.source.behavior == "LogsThenQuits"
        log.info("logged by a Log whose process is gone")  # still works: no error
    finally:
        LogsThenQuits.kept.clear()


def test_a_pending_send_after_does_not_keep_its_terminated_sender_but_is_still_sent(backend):
    node = backend.node()
    other = node.spawn(Collector)

    class Later(Actor):
        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            self.send_after(other, "late", 0.001)
            return "set"

    pid = node.spawn(Later)
    assert node.call(pid, "go") == "set"
    ref = weakref.ref(node._processes[pid.id])
    node.kill(pid)
    gc.collect()
    assert ref() is None
    assert node.call(other, ("wait", 1)) == ["late"]  # as in Ergo, the timer outlives its sender
    assert node.call(other, "senders") == [pid]


@pytest.mark.parametrize("from_", ["outside", "a handler"])
def test_stop_ends_a_sleep_at_once(backend, from_):
    node = backend.node()
    journal: list = []
    sleeping(node, journal)
    if from_ == "outside":
        node.stop()
    else:
        # stop() from a handler returns at once: on asyncio, a stop held by the sleep would
        # leave the node alive after settle() instead of hanging the test for an hour
        node.send(node.spawn(Silent), "m")
        with contextlib.suppress(NodeTerminated):
            node.call(node.spawn(Silent), "stop the node", timeout=3600)
        backend.settle()
    assert not node.is_alive()
    # stopped where it slept, gracefully, as if its parent's shutdown exit had arrived
    assert isinstance(journal[-1], ExitSignal) and unwrapped(journal) == ["finally", TerminateReasonShutdown]
    if isinstance(backend, SimBackend):
        assert backend.sim.now == 0


def test_a_sleep_that_has_just_ended_is_not_cut_short_by_the_stop():
    backend = SimBackend()
    node = backend.node()
    journal: list = []
    pid = sleeping(node, journal, 7)
    s = backend.sim
    while s.world.env.peek() < 7:
        s.step()
    s.step()  # the sleep's timer fires: the process's resume is queued, it has not run yet
    assert s.now == 7 and node.process_info(pid).state is ProcessState.WAIT_RESPONSE
    node.stop()
    assert unwrapped(journal) == ["woke", "finally", TerminateReasonShutdown]
    backend.close()


def test_a_local_call_in_flight_does_not_hold_a_stop_its_target_ends_it():
    backend = SimBackend()
    node = backend.node()
    journal: list = []
    silent = node.spawn(Silent)

    class CallThenSleep(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            try:
                with contextlib.suppress(NodeTerminated):  # the stop ended ``silent``: the call fails at once
                    await self.call(silent, "no reply", timeout=10)
                journal.append(("call over", backend.sim.now))
                await self.sleep(3600)  # the stop has begun: this does not hold it
            finally:
                journal.append("finally")

        def terminate(self, reason: BaseException) -> None:
            journal.append(reason)

    pid = node.spawn(CallThenSleep)
    node.send(pid, "go")
    node.call(node.spawn(Collector), "messages")
    assert node.process_info(pid).state is ProcessState.WAIT_RESPONSE
    node.stop()
    assert not node.is_alive()
    assert backend.sim.now == 0  # not the call's 10 s timeout
    assert unwrapped(journal) == [("call over", 0), "finally", TerminateReasonShutdown]
    backend.close()


# -- 6. argument checks ------------------------------------------------------------------------


class Meta(MetaBehavior):
    pass


LONG = "x" * 300

NODE_CASES: list[tuple[str, Any, type[ErgoError]]] = [
    ("spawn factory", lambda n, p: n.spawn(5), Incorrect),
    ("spawn options", lambda n, p: n.spawn(Collector, options=5), Incorrect),
    ("spawn_register None", lambda n, p: n.spawn_register(None, Collector), Incorrect),
    ("spawn_register int", lambda n, p: n.spawn_register(5, Collector), Incorrect),
    ("spawn_register empty", lambda n, p: n.spawn_register("", Collector), Incorrect),
    ("spawn_register too long", lambda n, p: n.spawn_register(LONG, Collector), AtomTooLong),
    ("spawn mutated options", lambda n, p: n.spawn(Collector, options=_mutated(mailbox_size=-1)), Incorrect),
    ("spawn mutated priority", lambda n, p: n.spawn(Collector, options=_mutated(send_priority=9)), Incorrect),
    ("register_name int", lambda n, p: n.register_name(5, p), Incorrect),
    ("register_name too long", lambda n, p: n.register_name(LONG, p), AtomTooLong),
    ("register_name pid", lambda n, p: n.register_name("n", "pid"), Incorrect),
    ("unregister_name int", lambda n, p: n.unregister_name(5), Incorrect),
    ("unregister_name too long", lambda n, p: n.unregister_name(LONG), NameUnknown),
    ("whereis int", lambda n, p: n.whereis(5), Incorrect),
    ("kill str", lambda n, p: n.kill("pid"), Incorrect),
    ("send_exit to", lambda n, p: n.send_exit(5, TerminateReasonNormal), Incorrect),
    ("send_exit reason", lambda n, p: n.send_exit(p, "why"), Incorrect),
    ("process_info", lambda n, p: n.process_info(5), Incorrect),
    ("meta_info list", lambda n, p: n.meta_info([]), Incorrect),
    ("meta_info pid", lambda n, p: n.meta_info(p), Incorrect),
    ("send to int", lambda n, p: n.send(5, "m"), Incorrect),
    ("send to too long", lambda n, p: n.send(LONG, "m"), ProcessUnknown),
    ("call to int", lambda n, p: n.call(5, "m"), Incorrect),
    ("call to too long", lambda n, p: n.call(LONG, "m"), ProcessUnknown),
    ("call timeout str", lambda n, p: n.call(p, "m", "5"), Incorrect),
    ("inspect", lambda n, p: n.inspect(5), Incorrect),
    ("logger_add_process", lambda n, p: n.logger_add_process(5), Incorrect),
    ("logger_delete_process", lambda n, p: n.logger_delete_process([]), Incorrect),
    ("register_event name", lambda n, p: n.register_event(5), Incorrect),
    ("register_event buffer", lambda n, p: n.register_event("e", False, -1), Incorrect),
    ("register_event huge buffer", lambda n, p: n.register_event("e", False, 10**400), Incorrect),
    ("wait timeout", lambda n, p: n.wait("1"), Incorrect),
    ("set_env", lambda n, p: n.set_env(5, 1), Incorrect),
    ("log level", lambda n, p: setattr(n.log, "level", "loud"), Incorrect),
    ("options priority", lambda n, p: ProcessOptions(send_priority=5), Incorrect),
    ("options priority name", lambda n, p: ProcessOptions(send_priority="urgent"), Incorrect),
    ("options mailbox", lambda n, p: ProcessOptions(mailbox_size="8"), Incorrect),
    ("options leader", lambda n, p: ProcessOptions(leader="boss"), Incorrect),
    ("options env", lambda n, p: ProcessOptions(env=5), Incorrect),
    ("options compression", lambda n, p: ProcessOptions(compression=True), Incorrect),
    ("options flag", lambda n, p: ProcessOptions(link_parent="yes"), Incorrect),
    ("options log level", lambda n, p: ProcessOptions(log_level="loud"), Incorrect),
    ("options fallback", lambda n, p: ProcessOptions(fallback="spare"), Incorrect),
    ("fallback name", lambda n, p: Fallback(None), Incorrect),
    ("fallback empty name", lambda n, p: Fallback(""), Incorrect),
    ("fallback tag", lambda n, p: Fallback("spare", 5), Incorrect),
]

PROCESS_CASES: list[tuple[str, Any, type[ErgoError]]] = [
    ("send to int", lambda p, o: p.send(5, "m"), Incorrect),
    ("send to too long", lambda p, o: p.send(LONG, "m"), ProcessUnknown),
    ("priority out of range", lambda p, o: p.send_with_priority(o, "m", 3), Incorrect),
    ("priority negative", lambda p, o: p.send_with_priority(o, "m", -1), Incorrect),
    ("priority None", lambda p, o: p.send_with_priority(o, "m", None), Incorrect),
    ("priority bool", lambda p, o: p.send_with_priority(o, "m", True), Incorrect),
    ("priority setter", lambda p, o: setattr(p, "send_priority", 7), Incorrect),
    ("send_after to", lambda p, o: p.send_after(5, "m", 1), Incorrect),
    ("send_exit to", lambda p, o: p.send_exit(5, TerminateReasonNormal), Incorrect),
    ("send_exit reason", lambda p, o: p.send_exit(o, "why"), Incorrect),
    ("call to int", lambda p, o: p.call(5, "m"), Incorrect),
    ("call to too long", lambda p, o: p.call(LONG, "m"), ProcessUnknown),
    ("call timeout None", lambda p, o: p.call(o, "m", None), Incorrect),
    ("inspect", lambda p, o: p.inspect(5), Incorrect),
    ("send_response to", lambda p, o: p.send_response(5, p.node.make_ref(), 1), Incorrect),
    ("send_response ref", lambda p, o: p.send_response(o, 5, 1), Incorrect),
    ("send_response_error", lambda p, o: p.send_response_error(o, p.node.make_ref(), "err"), Incorrect),
    ("sleep", lambda p, o: p.sleep("1"), Incorrect),
    ("spawn", lambda p, o: p.spawn(5), Incorrect),
    ("spawn_register None", lambda p, o: p.spawn_register(None, Collector), Incorrect),
    ("spawn_register too long", lambda p, o: p.spawn_register(LONG, Collector), AtomTooLong),
    ("spawn_meta behaviour", lambda p, o: p.spawn_meta(5), Incorrect),
    ("spawn_meta mailbox negative", lambda p, o: p.spawn_meta(Meta(), -1), Incorrect),
    ("spawn_meta mailbox str", lambda p, o: p.spawn_meta(Meta(), "8"), Incorrect),
    ("spawn_meta mailbox float", lambda p, o: p.spawn_meta(Meta(), 1.5), Incorrect),
    ("spawn_meta mailbox bool", lambda p, o: p.spawn_meta(Meta(), True), Incorrect),
    ("link", lambda p, o: p.link(5), Incorrect),
    ("monitor", lambda p, o: p.monitor(5), Incorrect),
    ("link_event", lambda p, o: p.link_event("ev"), Incorrect),
    ("register_event buffer", lambda p, o: p.register_event("e", False, "1"), Incorrect),
    ("register_name", lambda p, o: p.register_name(None), Incorrect),
    ("delete_alias", lambda p, o: p.delete_alias(5), AliasOwner),
    ("compression", lambda p, o: setattr(p, "compression", 5), Incorrect),
    ("log level", lambda p, o: setattr(p.log, "level", "loud"), Incorrect),
    ("set_env", lambda p, o: p.set_env(5, 1), Incorrect),
]


def _mutated(**fields: Any) -> ProcessOptions:
    options = ProcessOptions()
    for k, v in fields.items():
        setattr(options, k, v)
    return options


@pytest.mark.parametrize("fn, error", [c[1:] for c in NODE_CASES], ids=[c[0] for c in NODE_CASES])
def test_node_methods_refuse_wrong_arguments_with_an_ergo_error(backend, fn, error):
    node = backend.node()
    pid = node.spawn(Collector)
    with pytest.raises(error):
        fn(node, pid)
    assert node.process_list() == [pid]  # nothing was spawned or lost on the way
    assert node.call(pid, "messages") == []


@pytest.mark.parametrize("fn, error", [c[1:] for c in PROCESS_CASES], ids=[c[0] for c in PROCESS_CASES])
def test_process_methods_refuse_wrong_arguments_with_an_ergo_error(backend, fn, error):
    node = backend.node()
    other = node.spawn(Collector)
    assert probe(node, lambda p: fn(p, other)) is error
    assert node.call(other, "messages") == []
    assert len(node.process_list()) == 2  # the prober and the other: nothing spawned


def test_a_name_no_process_can_have_is_looked_up_like_any_unknown_name(backend):
    node = backend.node()
    assert node.whereis(LONG) is None and node.whereis("") is None
    with pytest.raises(ProcessUnknown):
        node.send("", "m")


def test_valid_priorities_and_options_still_work(backend):
    node = backend.node()
    pid = node.spawn(Collector, options=ProcessOptions(send_priority="high", compression=CompressionOptions(),
                                               leader=node.pid, env={"k": 1}, link_parent=False))
    assert probe(node, lambda p: p.send_with_priority(pid, "m", 2)) == "no error"
    assert node.call(pid, ("wait", 1)) == ["m"]
    assert node.process_info(pid).message_priority == 1


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


#: values of every wrong kind, and two whose repr() itself raises (too many digits, too deep)
GARBAGE = [None, 5, -1, 3.5, math.nan, LONG, "", [], object(), b"x", True, 10**5000, _nested(5000)]

NODE_SWEEP: dict[str, Any] = {
    "spawn": lambda n, p, b: n.spawn(b),
    "spawn options": lambda n, p, b: n.spawn(Collector, options=b),
    "spawn_register": lambda n, p, b: n.spawn_register(b, Collector),
    "register_name": lambda n, p, b: n.register_name(b, p),
    "register_name pid": lambda n, p, b: n.register_name("n", b),
    "unregister_name": lambda n, p, b: n.unregister_name(b),
    "whereis": lambda n, p, b: n.whereis(b),
    "kill": lambda n, p, b: n.kill(b),
    "send_exit": lambda n, p, b: n.send_exit(b, TerminateReasonNormal),
    "send_exit reason": lambda n, p, b: n.send_exit(p, b),
    "process_info": lambda n, p, b: n.process_info(b),
    "meta_info": lambda n, p, b: n.meta_info(b),
    "send": lambda n, p, b: n.send(b, "m"),
    "call": lambda n, p, b: n.call(b, "m"),
    "inspect": lambda n, p, b: n.inspect(b),
    "logger_add name": lambda n, p, b: n.logger_add(b, lambda m: None),
    "logger_add logger": lambda n, p, b: n.logger_add("l", b),
    "logger_add filter": lambda n, p, b: n.logger_add("f", lambda m: None, b),
    "logger_add_process": lambda n, p, b: n.logger_add_process(b),
    "logger_delete": lambda n, p, b: n.logger_delete(b),
    "logger_delete_process": lambda n, p, b: n.logger_delete_process(b),
    "register_event": lambda n, p, b: n.register_event(b),
    "register_event buffer": lambda n, p, b: n.register_event("e", False, b),
    "unregister_event": lambda n, p, b: n.unregister_event(b),
    "send_event": lambda n, p, b: n.send_event(b, n.make_ref(), "m"),
    "send_event token": lambda n, p, b: n.send_event("e", b, "m"),
    "env": lambda n, p, b: n.env(b),
    "set_env": lambda n, p, b: n.set_env(b, 1),
    "log level": lambda n, p, b: setattr(n.log, "level", b),
    "ProcessOptions mailbox_size": lambda n, p, b: ProcessOptions(mailbox_size=b),
    "ProcessOptions fallback": lambda n, p, b: ProcessOptions(fallback=b),
    "ProcessOptions leader": lambda n, p, b: ProcessOptions(leader=b),
    "ProcessOptions env": lambda n, p, b: ProcessOptions(env=b),
    "ProcessOptions compression": lambda n, p, b: ProcessOptions(compression=b),
    "ProcessOptions send_priority": lambda n, p, b: ProcessOptions(send_priority=b),
    "ProcessOptions flag": lambda n, p, b: ProcessOptions(important_delivery=b),
    "ProcessOptions log_level": lambda n, p, b: ProcessOptions(log_level=b),
    "Fallback name": lambda n, p, b: Fallback(b),
    "Fallback tag": lambda n, p, b: Fallback("spare", b),
}

PROCESS_SWEEP: dict[str, Any] = {
    "send": lambda p, o, b: p.send(b, "m"),
    "send_with_priority": lambda p, o, b: p.send_with_priority(o, "m", b),
    "send_after to": lambda p, o, b: p.send_after(b, "m", 1),
    "send_after delay": lambda p, o, b: p.send_after(o, "m", b),
    "send_exit": lambda p, o, b: p.send_exit(b, TerminateReasonNormal),
    "send_exit reason": lambda p, o, b: p.send_exit(o, b),
    "call to": lambda p, o, b: p.call(b, "m"),
    # a value that happens to be a valid timeout makes a real call: look at its future, so
    # that dropping it is not reported as a call never awaited
    "call timeout": lambda p, o, b: p.call(o, "m", b).add_done_callback(lambda f: None),
    "inspect": lambda p, o, b: p.inspect(b),
    "send_response to": lambda p, o, b: p.send_response(b, p.node.make_ref(), 1),
    "send_response ref": lambda p, o, b: p.send_response(o, b, 1),
    "send_response_error": lambda p, o, b: p.send_response_error(o, p.node.make_ref(), b),
    "sleep": lambda p, o, b: p.sleep(b),
    "spawn": lambda p, o, b: p.spawn(b),
    "spawn options": lambda p, o, b: p.spawn(Collector, options=b),
    "spawn_register": lambda p, o, b: p.spawn_register(b, Collector),
    "spawn_meta": lambda p, o, b: p.spawn_meta(b),
    "spawn_meta mailbox": lambda p, o, b: p.spawn_meta(Meta(), b),
    "link": lambda p, o, b: p.link(b),
    "unlink": lambda p, o, b: p.unlink(b),
    "monitor": lambda p, o, b: p.monitor(b),
    "demonitor": lambda p, o, b: p.demonitor(b),
    "link_event": lambda p, o, b: p.link_event(b),
    "monitor_event": lambda p, o, b: p.monitor_event(b),
    "register_event": lambda p, o, b: p.register_event(b),
    "register_event buffer": lambda p, o, b: p.register_event("e", False, b),
    "unregister_event": lambda p, o, b: p.unregister_event(b),
    "send_event": lambda p, o, b: p.send_event(b, p.node.make_ref(), "m"),
    "send_event token": lambda p, o, b: p.send_event("e", b, "m"),
    "register_name": lambda p, o, b: p.register_name(b),
    "delete_alias": lambda p, o, b: p.delete_alias(b),
    "env": lambda p, o, b: p.env(b),
    "set_env": lambda p, o, b: p.set_env(b, 1),
    "send_priority": lambda p, o, b: setattr(p, "send_priority", b),
    "compression": lambda p, o, b: setattr(p, "compression", b),
    "log level": lambda p, o, b: setattr(p.log, "level", b),
}


class Sweeper(Actor):
    """Calls ``fn(self, other, value)`` for each garbage value inside an async handler and
    answers with what escaped that is not an ErgoError."""

    async def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        fn, other = request
        escaped = []
        for value in GARBAGE:
            try:
                fn(self, other, value)
            except ErgoError:
                pass
            except Exception as e:
                escaped.append((type(value).__name__, type(e).__name__))
        return escaped


@pytest.mark.parametrize("fn", list(NODE_SWEEP.values()), ids=list(NODE_SWEEP))
def test_no_node_method_lets_anything_but_an_ergo_error_out_on_garbage(backend, fn):
    node = backend.node()
    pid = node.spawn(Collector)
    escaped = []
    for value in GARBAGE:
        try:
            fn(node, pid, value)
        except ErgoError:
            pass
        except Exception as e:
            escaped.append((type(value).__name__, type(e).__name__))
    assert escaped == []
    assert isinstance(node.call(pid, "messages"), list)  # the node still answers


@pytest.mark.parametrize("fn", list(PROCESS_SWEEP.values()), ids=list(PROCESS_SWEEP))
def test_no_process_method_lets_anything_but_an_ergo_error_out_on_garbage(backend, fn):
    node = backend.node()
    other = node.spawn(Collector)
    assert node.call(node.spawn(Sweeper), (fn, other)) == []


START_SWEEP: dict[str, Any] = {
    "name": lambda b: (b, NodeOptions(log=LogOptions(default_logger=False))),
    "options": lambda b: ("g@localhost", b),
    "env": lambda b: ("g@localhost", NodeOptions(env=b, log=LogOptions(default_logger=False))),
    "log": lambda b: ("g@localhost", NodeOptions(log=b)),
    "log level": lambda b: ("g@localhost", NodeOptions(log=LogOptions(level=b, default_logger=False))),
}


@pytest.mark.parametrize("args", list(START_SWEEP.values()), ids=list(START_SWEEP))
def test_starting_a_node_lets_only_ergo_errors_out_on_garbage(backend, args):
    escaped = []
    for value in GARBAGE:
        try:
            backend.nodes.append(backend._start(*args(value)))  # a level like 5 (trace) is valid
        except ErgoError:
            pass
        except Exception as e:
            escaped.append((type(value).__name__, type(e).__name__))
        for n in backend.nodes:
            n.stop_force()
    assert escaped == []


def test_the_simulation_lets_only_ergo_errors_out_on_garbage():
    s = sim.Sim(1)
    escaped = []
    for fn in (sim.Sim, s.host, s.start_node, s.run_for, s.run):
        for value in GARBAGE:
            if value is None and fn == s.run:
                continue  # run(None): until nothing is left, valid
            try:
                fn(value)
            except ErgoError:
                pass
            except Exception as e:
                escaped.append((getattr(fn, "__name__", fn), type(value).__name__, type(e).__name__))
    assert escaped == []


def test_a_refused_asyncio_start_leaves_no_event_loop_behind(monkeypatch):
    made: list[asyncio.AbstractEventLoop] = []
    new_event_loop = asyncio.new_event_loop

    def recording() -> asyncio.AbstractEventLoop:
        made.append(new_event_loop())
        return made[-1]

    monkeypatch.setattr(asyncio, "new_event_loop", recording)
    with pytest.raises(Incorrect):
        net.start_node("no at sign", handle_signals=False)
    assert len(made) == 1 and made[0].is_closed()

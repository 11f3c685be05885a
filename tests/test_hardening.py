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
import weakref
from typing import Any

import pytest
from support import AsyncioBackend, Collector, SimBackend

from ergo import (
    PID,
    Actor,
    LogLevel,
    MessageDownPID,
    MetaBehavior,
    NodeTerminated,
    ProcessState,
    ProcessUnknown,
    TerminateReasonNormal,
    TerminateReasonPanic,
    TerminateReasonShutdown,
    Timeout,
)


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
        return None


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
    pid = node.spawn(Raiser, None, journal)
    watcher = node.spawn(Watcher, None, pid)
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
        watcher = node.spawn(Watcher, None, pid)
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
    pid = node.spawn(Raiser, None, journal)
    node.spawn(Raiser, None, others)
    node.send(pid, (how, exc()))
    with pytest.raises(exc):  # not swallowed: it comes out of whatever runs the loop
        node.wait()
    assert node.wait()  # the graceful stop it began completes
    assert not node.is_alive()
    assert journal == [TerminateReasonNormal if how == "terminate" else TerminateReasonShutdown]
    assert others == [TerminateReasonShutdown]
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
    owner = node.spawn(MetaOwner, None, exc())
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
    pid = node.spawn(Sleeper, None, journal)
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
    assert journal == ["finally", TerminateReasonShutdown]  # stopped where it slept, gracefully
    if isinstance(backend, SimBackend):
        assert backend.sim.now == 0


def test_only_a_call_in_flight_holds_a_stop_and_only_up_to_its_timeout():
    backend = SimBackend()
    node = backend.node()
    journal: list = []
    silent = node.spawn(Silent)

    class CallThenSleep(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            try:
                with contextlib.suppress(Timeout):
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
    assert backend.sim.now == 10
    assert journal == [("call over", 10), "finally", TerminateReasonShutdown]
    backend.close()

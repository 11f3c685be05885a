"""The scheduler seam on an asyncio event loop (real time)."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from ergo.gen.errors import NotAllowed
from ergo.scheduler import Future, ReadyQueue, Scheduler, TimerHandle

__all__ = ["AsyncioScheduler"]


class AsyncioScheduler(Scheduler):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.random = random.Random()
        self._ready = ReadyQueue(self._arm)
        #: the thread that runs the loop: the one that started the node (see net.start_node)
        self.thread = threading.get_ident()
        # the core reads the clock several times per handler run: asyncio's own loop.time()
        # is time.monotonic() behind a Python method, so call the C function directly then
        if type(loop).time is asyncio.BaseEventLoop.time:
            self.now = time.monotonic  # type: ignore[method-assign]

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def _arm(self) -> None:
        self._loop.call_soon(self._ready.drain)

    def now(self) -> float:
        return self._loop.time()

    def time(self) -> float:
        return time.time()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self._ready.push(fn, args)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        return self._loop.call_later(delay, fn, *args)  # asyncio's handle has cancel()

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.in_thread():
            self.call_soon(fn, *args)
        else:  # wakes the loop at once, even if it sleeps in select()
            self._loop.call_soon_threadsafe(fn, *args)

    def _bridge(self, fut: Future) -> asyncio.Future:
        af = self._loop.create_future()

        def done(_f: Future) -> None:
            if not af.done():
                af.set_result(None)

        fut.add_done_callback(done)
        return af

    def run_until(self, future: Future, timeout: float | None = None) -> bool:
        if self._loop.is_running():
            raise NotAllowed("the asyncio loop is running here, so this cannot block: await the *_async form")
        if future.done():
            return True
        # a bare asyncio future, no task: if a handler's KeyboardInterrupt or SystemExit
        # comes out of the loop, nothing is left half-run behind it
        af = self._bridge(future)
        timer = None
        if timeout is not None:
            timer = self._loop.call_later(timeout, _set_if_pending, af)
        try:
            self._loop.run_until_complete(af)
        finally:
            if timer is not None:
                timer.cancel()
        return future.done()

    def adapt(self, awaitable: Any, wake: Callable[[Any, BaseException | None], None]) -> Callable[[], None] | None:
        # a bare yield (asyncio.sleep(0)): resume on the next loop iteration, as a Task does
        if awaitable is None:
            handle = self._loop.call_soon(wake, None, None)
            return handle.cancel
        # an asyncio future yielded by `await fut` inside a handler: resume when it completes;
        # the coroutine then reads the result (or the exception) from the future itself
        if not asyncio.isfuture(awaitable) or not getattr(awaitable, "_asyncio_future_blocking", False):
            return None
        awaitable._asyncio_future_blocking = False

        def done(_f: asyncio.Future) -> None:
            wake(None, None)

        awaitable.add_done_callback(done)
        # forgetting the waiter does not cancel the future: it may be shared, and closing
        # the handler's coroutine already runs the cleanup of whatever made it
        return lambda: awaitable.remove_done_callback(done)  # type: ignore[return-value]  # its count is unused

    async def wait_for(self, future: Future) -> Any:
        if not future.done():
            await self._bridge(future)
        return future.result()


def _set_if_pending(af: asyncio.Future) -> None:
    if not af.done():
        af.set_result(None)

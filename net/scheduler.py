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
        af = self._bridge(future)
        try:
            self._loop.run_until_complete(asyncio.wait_for(af, timeout))
        except TimeoutError:
            return False
        return True

    def adapt(self, awaitable: Any, wake: Callable[[Any, BaseException | None], None]) -> bool:
        # a bare yield (asyncio.sleep(0)): resume on the next loop iteration, as a Task does
        if awaitable is None:
            self._loop.call_soon(wake, None, None)
            return True
        # an asyncio future yielded by `await fut` inside a handler: resume when it completes;
        # the coroutine then reads the result (or the exception) from the future itself
        if not asyncio.isfuture(awaitable) or not getattr(awaitable, "_asyncio_future_blocking", False):
            return False
        awaitable._asyncio_future_blocking = False
        awaitable.add_done_callback(lambda _f: wake(None, None))
        return True

    async def wait_for(self, future: Future) -> Any:
        if not future.done():
            await self._bridge(future)
        return future.result()

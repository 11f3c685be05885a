"""The scheduler seam on an asyncio event loop (real time).

A handler's coroutine runs as an ``asyncio.Task`` of the loop (:meth:`AsyncioScheduler.start_task`),
and the runtime's :class:`~ergo.scheduler.Future` is a future asyncio's tasks can await
(:class:`_AsyncioBridge`): a task woken by a reply is stepped from the node's ready queue,
in the same drain as the reply, as a hand-driven coroutine was.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from ergo.gen.errors import NodeTerminated, NotAllowed
from ergo.scheduler import Future, LoopBridge, ReadyQueue, Scheduler, TimerHandle, set_loop_bridge

__all__ = ["AsyncioScheduler"]

#: the ready queue of each loop that runs a node: a task awaiting a runtime future is woken
#: through it (the latest node started on a loop serves them all)
_ready_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReadyQueue] = weakref.WeakKeyDictionary()
_running_loop = asyncio._get_running_loop


class _AsyncioBridge(LoopBridge):
    def __init__(self) -> None:
        self._last: tuple[Any, ReadyQueue | None] = (None, None)  # the loop looked up last, its queue

    # asyncio's C functions themselves: a task asks for the loop (Future.get_loop) at every await
    running_loop = staticmethod(_running_loop)
    get_loop = staticmethod(asyncio.get_running_loop)

    def waker(self, fn: Callable[[Future], Any], fut: Future, context: Any) -> tuple[Any, ...] | None:
        # on the node's ready queue, a task woken by a reply runs in the same drain as the
        # reply; anything else (gather's callbacks, a user's) is asyncio's own callback,
        # run by the loop, where its failure is logged without touching the queue's drain
        loop = _running_loop()
        if loop is None:
            return None
        if context is None:
            return loop.call_soon, (fn, fut), fn
        last_loop, ready = self._last
        if loop is not last_loop:
            ready = _ready_queues.get(loop)
            if ready is not None:  # a loop without a node is not remembered: one may start there
                self._last = (loop, ready)
        if ready is None:  # a loop without a node: asyncio's own queue
            return functools.partial(loop.call_soon, context=context), (fn, fut), fn
        return ready.push, (context.run, (fn, fut)), fn

    def cancelled_error(self, msg: Any = None) -> BaseException:
        return asyncio.CancelledError() if msg is None else asyncio.CancelledError(msg)

    def is_cancelled_error(self, exc: BaseException) -> bool:
        return isinstance(exc, asyncio.CancelledError)


_BRIDGE = _AsyncioBridge()
set_loop_bridge(_BRIDGE)


class AsyncioScheduler(Scheduler):
    tasks = True
    idle_timers_free = True
    may_buggify = False  # fault points are simulation's (buggify is Scheduler's: always False)

    def __init__(self, loop: asyncio.AbstractEventLoop, owner: str = "the node") -> None:
        self._loop = loop
        #: who runs on it, for errors ("node app@localhost")
        self.owner = owner
        #: its loop is closed and its node stopped: what is scheduled is dropped (see end)
        self._dropping = False
        #: called (a weak reference to it) if its loop is closed with a drain asked for (see _dropped)
        self.on_dropped: weakref.WeakMethod[Callable[[], Any]] | None = None
        self.random = random.Random()
        self._ready = ReadyQueue(self._arm)
        self._ready.token = _Token(self)
        self.soon = self._ready.push  # type: ignore[method-assign]  # call_soon, one call less
        # a read callback's work goes straight to the queue's run_io: one call less per read
        self.run_io = self._ready.run_io  # type: ignore[method-assign]
        try:
            _ready_queues[loop] = self._ready
        except TypeError:  # a loop that cannot be weakly referenced: its tasks wake through its own queue
            pass
        _BRIDGE._last = (None, None)
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
        # the token goes with the drain asked for and comes back when it runs: while a drain
        # is asked for, only the loop's queue holds it, and a closed loop lets go of it
        ready = self._ready
        token, ready.token = ready.token, None
        try:
            self._loop.call_soon(ready.drain, token)
        except RuntimeError:
            ready.token = token
            if self._dropping:
                return  # (see end: its queue drops what it is given)
            self._check_open()
            raise

    def ended(self) -> bool:
        return self._loop.is_closed()

    def _dropped(self) -> None:
        """The loop was closed with a drain of ours asked for and not run (work queued in its
        last turns, or while it did not run): the queue would stay "armed" for ever, and
        what came next (a send from outside, a remote frame behind a flush asked for) was
        queued without a word and never run.  Whoever wants to know is told now
        (``on_dropped``: the node, which then reads as stopped); the queue asks again on
        its next push, which the closed loop refuses with ``NodeTerminated``."""
        self._ready._armed = False
        told, self.on_dropped = self.on_dropped, None
        if told is not None:
            fn = told()
            if fn is not None:
                fn()

    def end(self) -> None:
        if self._loop.is_closed():
            # the node ended with its loop: what it is asked from now on is dropped, by a
            # queue that holds nothing (a cleared one kept all that came after the next
            # push, which the closed loop refuses to arm and which still marks it armed)
            self._dropping = True
            self._ready._queue = deque(maxlen=0)

    def _check_open(self) -> None:
        """Raise ``NodeTerminated`` saying why if the loop is closed: asyncio's own
        RuntimeError ("Event loop is closed") does not say which node, nor what to do."""
        if self._loop.is_closed():
            raise NodeTerminated(f"{self.owner}: its asyncio event loop is closed (it ended without node.stop(), "
                                 "as when asyncio.run returns), so nothing on it can run any more; stop a node "
                                 "before its loop ends") from None

    def now(self) -> float:
        return self._loop.time()

    def time(self) -> float:
        return time.time()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        # ReadyQueue.push inlined (the network's flush of every frame it sends comes here)
        ready = self._ready
        ready._queue.append((fn, args))
        if not ready._armed:
            self._arm()
            ready._armed = True

    def pending(self) -> int:
        return len(self._ready)

    def run_io(self, fn: Callable[..., Any], *args: Any) -> None:
        # a process woken by bytes just read runs in this read callback, not one turn of
        # the loop (a poll of the selector) later: a remote call's round trip is a turn
        # shorter on each side.  (Replaced on each instance by the queue's own run_io.)
        self._ready.run_io(fn, *args)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        try:
            return self._loop.call_later(delay, fn, *args)  # asyncio's handle has cancel()
        except RuntimeError:
            if self._dropping:
                return _NO_TIMER
            self._check_open()
            raise

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.in_thread():
            self.call_soon(fn, *args)
            return
        try:  # wakes the loop at once, even if it sleeps in select()
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            self._check_open()
            raise

    def _bridge(self, fut: Future) -> asyncio.Future:
        af = self._loop.create_future()

        def done(_f: Future) -> None:
            if not af.done():
                af.set_result(None)

        fut._on_done(done)
        return af

    def start_task(self, coro: Any) -> asyncio.Task:
        # a fresh context for each handler, as for any task: a handler's context variables
        # are its own, not those of whatever code sent the message that started it
        return self._loop.create_task(coro, context=contextvars.Context())

    def run_until(self, future: Future, timeout: float | None = None) -> bool:
        if self._loop.is_running():
            raise NotAllowed("cannot block: the asyncio loop is running here")
        if future.done():
            return True
        self._check_open()
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

    async def wait_for(self, future: Future) -> Any:
        if not future.done():
            await self._bridge(future)
        return future.result()


class _Token:
    """Goes with each drain asked of the loop and comes back with it (``ReadyQueue.token``):
    held by the loop's queue alone while a drain is asked for, so that it is let go only
    if the loop never runs that drain, which is what ``close()`` does with what is queued.
    One per scheduler, for its life: nothing is made per drain."""

    __slots__ = ("_scheduler",)

    def __init__(self, scheduler: AsyncioScheduler) -> None:
        self._scheduler = weakref.ref(scheduler)  # (no cycle: the scheduler's queue holds it)

    def __del__(self) -> None:
        scheduler = self._scheduler()
        if scheduler is not None and scheduler._loop.is_closed():
            try:
                scheduler._dropped()
            except Exception:  # noqa: BLE001 - inside the loop's close: nothing can be raised to anyone
                pass


class _NoTimer:
    """The timer of a loop that is closed: it never fires."""

    def cancel(self) -> None:
        pass


_NO_TIMER = _NoTimer()


def _set_if_pending(af: asyncio.Future) -> None:
    if not af.done():
        af.set_result(None)

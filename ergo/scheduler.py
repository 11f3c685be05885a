"""The scheduler seam: the one interface through which the core sees time and runs work.

The core never reads a clock, sleeps or creates a task.  It asks its scheduler for the time
(``now`` for intervals, ``time`` for timestamps), to run a function soon or later, and for
randomness.  ``sim`` implements this on a SimPy environment (virtual time, seeded RNG) and
``net`` on an asyncio loop; everything above the seam is shared.

:class:`Future` is the core's only awaitable.  A process's ``async def`` handler awaits
futures made by the runtime (a call's reply, a sleep); the process runner sees the future
the coroutine yields and resumes the coroutine through the scheduler when it completes.
"""

from __future__ import annotations

import math
import random
import threading
import warnings
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Generator
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["CallFuture", "Future", "ReadyQueue", "Scheduler", "TimerHandle", "check_delay"]

_PENDING: Any = object()

T = TypeVar("T")


def check_delay(delay: object, what: str = "a delay or timeout") -> float:
    """``delay`` as seconds for a timer, or ``Incorrect``: every delay and timeout the
    runtime takes (sleep, send_after, call timeouts, waits, the simulation's clock) goes
    through here, so they all accept and refuse the same values.

    A finite number >= 0 (int or float, not bool).  NaN and infinity are refused: NaN would
    make the simulated clock NaN for the rest of the run (and fire at once on asyncio), and
    an infinite timeout would let a call hold a node's stop forever; Ergo's timeouts are
    finite too.  An int too big for a float is refused rather than overflowing later.
    """
    from .gen.errors import Incorrect

    if isinstance(delay, bool) or not isinstance(delay, (int, float)):
        raise Incorrect(f"{what} is a number of seconds, not {type(delay).__name__}")
    try:
        seconds = float(delay)
    except OverflowError:  # an int past the float range: say so without printing its digits
        bits = delay.bit_length()  # type: ignore[union-attr]  # only an int overflows a float
        raise Incorrect(f"{what} is a finite number of seconds >= 0, not an int of {bits} bits") from None
    if not 0 <= seconds < math.inf:  # NaN fails both comparisons
        raise Incorrect(f"{what} is a finite number of seconds >= 0, not {seconds!r}")
    return seconds


class Future(Generic[T]):
    """A result that arrives later; awaitable from a handler (``await fut``) and waitable by a backend.

    ``Future[T]`` for type checkers: ``await fut`` gives a ``T`` (``call`` gives ``Future[Any]``,
    ``sleep`` a ``Future[None]``)."""

    __slots__ = ("_callbacks", "_exception", "_result")

    def __init__(self) -> None:
        self._result: T = _PENDING
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[Future[T]], None]] | None = None

    def done(self) -> bool:
        return self._result is not _PENDING or self._exception is not None

    def result(self) -> T:
        """The value, or raise the exception; a clear error if it is not there yet."""
        if self._exception is not None:
            raise self._exception
        if self._result is _PENDING:
            from .gen.errors import NotAllowed

            raise NotAllowed("the result is not ready yet")
        return self._result

    def exception(self) -> BaseException | None:
        return self._exception

    def set_result(self, value: T) -> bool:
        """Complete with ``value``; False (and nothing changes) if it was already complete."""
        if self.done():
            return False
        self._result = value
        self._fire()
        return True

    def set_exception(self, exc: BaseException) -> bool:
        if self.done():
            return False
        self._exception = exc
        self._fire()
        return True

    def add_done_callback(self, fn: Callable[[Future[T]], None]) -> None:
        """Call ``fn(self)`` when complete: at once if it already is."""
        if self.done():
            fn(self)
        elif self._callbacks is None:
            self._callbacks = [fn]
        else:
            self._callbacks.append(fn)

    def _detach(self, fn: Callable[[Future[T]], None]) -> None:
        """Forget the callback ``fn`` of a waiter that is gone (a killed process), so that
        this future no longer keeps it alive."""
        callbacks = self._callbacks
        if callbacks:
            try:
                callbacks.remove(fn)
            except ValueError:
                pass

    def _fire(self) -> None:
        callbacks, self._callbacks = self._callbacks, None
        if callbacks:
            for fn in callbacks:
                fn(self)

    def __await__(self) -> Generator[Future[T], None, T]:
        if not self.done():
            yield self
        return self.result()

    def __repr__(self) -> str:
        if self._exception is not None:
            return f"<Future exception={self._exception!r}>"
        if self._result is _PENDING:
            return "<Future pending>"
        return f"<Future result={self._result!r}>"


class CallFuture(Future[T]):
    """A call's reply (``Process.call``): reported when it is dropped without anyone having
    looked at it, as Python reports a coroutine that was never awaited, because a call
    whose ``await`` was forgotten fails silently otherwise."""

    __slots__ = ("_consumed", "_to")

    def __init__(self, to: Any) -> None:
        super().__init__()
        self._to = to
        self._consumed = False

    def __await__(self) -> Generator[Future[T], None, T]:
        self._consumed = True
        return super().__await__()

    def result(self) -> T:
        self._consumed = True
        return super().result()

    def exception(self) -> BaseException | None:
        self._consumed = True
        return super().exception()

    def add_done_callback(self, fn: Callable[[Future[T]], None]) -> None:
        self._consumed = True
        super().add_done_callback(fn)

    def __del__(self) -> None:
        if not self._consumed:
            warnings.warn(f"the call to {self._to} was never awaited", RuntimeWarning, stacklevel=1, source=self)


class TimerHandle(Protocol):
    """What ``call_later`` returns: cancel it and the function does not run.

    A protocol, not a base class: the asyncio backend returns asyncio's own handle."""

    def cancel(self) -> None: ...


class Scheduler(ABC):
    """What a backend gives the core: time, deferred calls, randomness and a way to wait."""

    #: the source of every random choice the core makes (seeded in simulation)
    random: random.Random

    @abstractmethod
    def now(self) -> float:
        """Monotonic seconds, for intervals and timeouts (virtual in simulation)."""

    @abstractmethod
    def time(self) -> float:
        """Seconds since the epoch, for timestamps and creation (virtual in simulation)."""

    @abstractmethod
    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` after the current callback, in FIFO order with other soon-calls."""

    @abstractmethod
    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``fn(*args)`` once ``delay`` seconds have passed."""

    #: the thread that owns this scheduler: the node's API may be used from it alone
    thread: int

    def in_thread(self) -> bool:
        """True when the caller runs on the scheduler's own thread."""
        return threading.get_ident() == self.thread

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the scheduler's thread, called from any thread."""
        from .gen.errors import NotAllowed

        if not self.in_thread():
            raise NotAllowed(f"{type(self).__name__} runs on one thread: call it from that thread")
        self.call_soon(fn, *args)

    @abstractmethod
    def run_until(self, future: Future[Any], timeout: float | None = None) -> bool:
        """Drive the clock until ``future`` is done (True) or ``timeout`` passed (False).

        A backend that cannot block where it is called (a running asyncio loop) raises
        ``NotAllowed`` saying what to do instead.
        """

    def adapt(self, awaitable: Any, wake: Callable[[Any, BaseException | None], None]) -> Callable[[], None] | None:
        """Take over an object a handler's coroutine yielded that is not a :class:`Future`.

        If this backend will call ``wake(value, exception)`` once it completes (the asyncio
        backend accepts asyncio futures), return a function that forgets ``wake`` again
        (the process was killed meanwhile: nothing may keep it alive); None makes it a clear
        error in the handler (simulation accepts only the runtime's own awaitables).
        """
        return None

    async def wait_for(self, future: Future[T]) -> T:
        """Await ``future`` from code running on this backend's own loop (asyncio programs)."""
        from .gen.errors import NotAllowed

        raise NotAllowed(f"{type(self).__name__} has no event loop to await on")


class ReadyQueue:
    """FIFO of soon-calls drained in batches, shared by both backends.

    Scheduling one backend callback per drain instead of one per ``call_soon`` is what
    makes a message send cheap.  A drain runs the calls that were queued when it started
    and then keeps going with calls queued meanwhile, up to :attr:`BUDGET` calls in all:
    a call's request and its reply (or a ping and its pong) then take one backend
    callback instead of one each, while work that keeps scheduling more work still
    cannot starve the backend's I/O.
    """

    __slots__ = ("_arm", "_armed", "_queue")

    #: the most calls one drain runs when more keep arriving (all queued ones run anyway)
    BUDGET = 256

    def __init__(self, arm: Callable[[], None]) -> None:
        self._queue: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._armed = False
        self._arm = arm  # asks the backend to call drain() soon

    def push(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._queue.append((fn, args))
        if not self._armed:
            # armed only once the backend took the request: if it raised (a closed loop,
            # asyncio's debug check of the calling thread), the call stays queued and the
            # next push arms again, instead of the queue never draining
            self._arm()
            self._armed = True

    def __len__(self) -> int:
        return len(self._queue)

    def drain(self) -> None:
        queue = self._queue
        popleft = queue.popleft
        n = len(queue)
        if n < self.BUDGET:
            n = self.BUDGET
        try:
            while n and queue:
                fn, args = popleft()
                fn(*args)
                n -= 1
        finally:
            if queue:
                self._arm()
            else:
                self._armed = False

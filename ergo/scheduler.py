"""The scheduler seam: the one interface through which the core sees time and runs work.

The core never reads a clock, sleeps or creates a task.  It asks its scheduler for the time
(``now`` for intervals, ``time`` for timestamps), to run a function soon or later, and for
randomness.  ``sim`` implements this on a SimPy environment (virtual time, seeded RNG) and
``net`` on an asyncio loop; everything above the seam is shared.

:class:`Future` is the core's only awaitable.  A process's ``async def`` handler awaits
futures made by the runtime (a call's reply, a sleep).  In simulation the process runner
drives the coroutine by hand: it sees the future the coroutine yields and resumes the
coroutine through the scheduler when it completes.  On an event loop the handler runs as a
real task of that loop (see :meth:`Scheduler.start_task`), so :class:`Future` also speaks
the protocol asyncio's tasks and ``asyncio.gather`` / ``wait_for`` expect of a future; the
loop-specific parts (which loop runs, how a callback is scheduled, what a cancellation
raises) come from the :class:`LoopBridge` the backend installs, so the core imports no
event loop.
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

__all__ = [
    "CallFuture", "Future", "LoopBridge", "ReadyQueue", "Scheduler", "TimerHandle", "check_delay", "set_loop_bridge",
]

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
    if type(delay) is float and 0.0 <= delay < math.inf:  # the common case (every call's timeout)
        return delay
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


class LoopBridge(ABC):
    """What an event-loop backend tells :class:`Future` so that an asyncio task can await
    it (installed with :func:`set_loop_bridge`; simulation installs none)."""

    @abstractmethod
    def running_loop(self) -> Any:
        """The event loop running in this thread, or None."""

    @abstractmethod
    def waker(self, fn: Callable[[Future[Any]], Any], fut: Future[Any], context: Any) -> tuple[Any, ...] | None:
        """``(push, args, fn)``: when ``fut`` completes, ``push(*args)`` runs ``fn(fut)`` in
        ``context`` soon on the running loop (how a future completed by the runtime wakes
        the task waiting for it, never from inside ``set_result``); None if no loop runs
        here.  A tuple, not a closure: this is on the path of every await of a call."""

    #: a function of no arguments giving the running loop, or raising the backend's own
    #: error if none runs (``asyncio.get_running_loop``), installed as ``Future.get_loop``;
    #: None keeps the method.  A task calls ``get_loop`` at every await: a C function costs
    #: it less than a Python method would
    get_loop: Callable[[], Any] | None = None

    @abstractmethod
    def cancelled_error(self, msg: Any = None) -> BaseException:
        """The exception a cancelled future raises (``asyncio.CancelledError``)."""

    @abstractmethod
    def is_cancelled_error(self, exc: BaseException) -> bool: ...


_bridge: LoopBridge | None = None
# the bridge's two functions a task uses at every await, looked up once
_running_loop: Callable[[], Any] | None = None
_waker: Callable[[Callable[[Future[Any]], Any], Future[Any], Any], tuple[Any, ...] | None] | None = None


def set_loop_bridge(bridge: LoopBridge) -> None:
    """Install the event-loop side of :class:`Future` (done once by the asyncio backend)."""
    global _bridge, _running_loop, _waker
    _bridge = bridge
    _running_loop = bridge.running_loop
    _waker = bridge.waker
    if bridge.get_loop is not None:
        Future.get_loop = staticmethod(bridge.get_loop)  # type: ignore[method-assign,assignment]


class Future(Generic[T]):
    """A result that arrives later; awaitable from a handler (``await fut``) and waitable by a backend.

    On an event loop it is also a future in asyncio's sense: an asyncio task awaits it, and
    ``asyncio.gather``, ``asyncio.wait_for`` and ``asyncio.timeout`` take it as they take
    an ``asyncio.Future`` (cancelling it completes it with ``asyncio.CancelledError``).

    ``Future[T]`` for type checkers: ``await fut`` gives a ``T`` (``call`` gives ``Future[Any]``,
    ``sleep`` a ``Future[None]``).
    """

    __slots__ = ("_asyncio_future_blocking", "_callbacks", "_consumed", "_exception", "_result")

    def __init__(self) -> None:
        self._result: T = _PENDING
        self._exception: BaseException | None = None
        # the runtime's callbacks, and asyncio waiters' wakers (tuples, see add_done_callback)
        self._callbacks: list[Callable[[Future[T]], None] | tuple[Any, ...]] | None = None
        #: asyncio's marker of a future (``asyncio.isfuture``): True while a task's ``await`` yields it
        self._asyncio_future_blocking = False
        #: whether anyone looked for the outcome (awaited it, asked for it, or asked to be
        #: told): a :class:`CallFuture` dropped unconsumed is reported.  Kept here, not by
        #: overrides in CallFuture, because those would add a frame to every await of a call
        self._consumed = False

    def done(self) -> bool:
        return self._result is not _PENDING or self._exception is not None

    def result(self) -> T:
        """The value, or raise the exception; a clear error if it is not there yet."""
        self._consumed = True
        if self._exception is not None:
            raise self._exception
        if self._result is _PENDING:
            from .gen.errors import NotAllowed

            raise NotAllowed("the result is not ready yet")
        return self._result

    def exception(self) -> BaseException | None:
        self._consumed = True
        return self._exception

    def set_result(self, value: T) -> bool:
        """Complete with ``value``; False (and nothing changes) if it was already complete."""
        if self._result is not _PENDING or self._exception is not None:  # done(), inlined
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

    def _on_done(self, fn: Callable[[Future[T]], None]) -> None:
        """The runtime's own callback: call ``fn(self)`` when complete, at once if it already is."""
        if self.done():
            fn(self)
        elif self._callbacks is None:
            self._callbacks = [fn]
        else:
            self._callbacks.append(fn)

    def add_done_callback(self, fn: Callable[[Future[T]], Any], *, context: Any = None) -> None:
        """Call ``fn(self)`` when complete.  On an event loop, as asyncio does, ``fn`` is
        scheduled on the loop (in ``context``), even if the future is already done; without
        one (simulation) it is called when the future completes, at once if it is done."""
        self._consumed = True
        waker = _waker(fn, self, context) if _waker is not None else None
        if waker is None:
            self._on_done(fn)
        elif self.done():
            waker[0](*waker[1])
        elif self._callbacks is None:
            self._callbacks = [waker]
        else:
            self._callbacks.append(waker)

    def remove_done_callback(self, fn: Callable[[Future[T]], Any]) -> int:
        """Forget ``fn`` (added with ``add_done_callback``); how many were removed."""
        callbacks = self._callbacks
        if not callbacks:
            return 0
        kept = [c for c in callbacks if c is not fn and not (type(c) is tuple and c[2] is fn)]
        removed = len(callbacks) - len(kept)
        self._callbacks = kept or None
        return removed

    def get_loop(self) -> Any:
        """The running event loop (asyncio asks this of what a task awaits).  An event-loop
        backend replaces this with its own function (``LoopBridge.get_loop``; on asyncio,
        ``asyncio.get_running_loop``, which raises RuntimeError where no loop runs)."""
        loop = _running_loop() if _running_loop is not None else None
        if loop is None:
            from .gen.errors import NotAllowed

            raise NotAllowed("no event loop runs here: a runtime Future is awaited from a handler")
        return loop

    def cancel(self, msg: Any = None) -> bool:
        """Complete with ``asyncio.CancelledError`` (on an event loop), as an asyncio future
        does; False if it was already complete.  What made the future lets go of it when
        it completes (a call's reply is then dropped, a sleep's timer cancelled)."""
        if self.done():
            return False
        if _bridge is None:
            from .gen.errors import NotAllowed

            raise NotAllowed("a runtime Future can be cancelled only on an event loop")
        return self.set_exception(_bridge.cancelled_error(msg))

    def cancelled(self) -> bool:
        exc = self._exception
        return exc is not None and _bridge is not None and _bridge.is_cancelled_error(exc)

    # what asyncio.gather reads of a cancelled child future
    @property
    def _cancel_message(self) -> Any:
        exc = self._exception
        return exc.args[0] if self.cancelled() and exc is not None and exc.args else None

    def _make_cancelled_error(self) -> BaseException:
        exc = self._exception
        if self.cancelled() and exc is not None:
            return exc.with_traceback(None)
        return _bridge.cancelled_error() if _bridge is not None else RuntimeError("not cancelled")

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
                if type(fn) is tuple:  # an asyncio waiter's (see add_done_callback): queue it
                    fn[0](*fn[1])
                else:
                    fn(self)  # type: ignore[operator]  # not a waker: a runtime callback

    def __await__(self) -> Generator[Future[T], None, T]:
        self._consumed = True
        if self._result is _PENDING and self._exception is None:  # not done(), inlined
            self._asyncio_future_blocking = True
            yield self
        return self.result()

    def __repr__(self) -> str:
        if self._exception is not None:
            return f"<Future exception={self._exception!r}>"
        if self._result is _PENDING:
            return "<Future pending>"
        return f"<Future result={self._result!r}>"


class CallFuture(Future[T]):
    """A call's reply (``Process.call``, ``Node.call_async``): reported when it is dropped
    without anyone having looked at it, as Python reports a coroutine that was never
    awaited, because a call whose ``await`` was forgotten fails silently otherwise.

    Cancelling it (an asyncio task cancelled while it awaits the call, ``asyncio.wait_for``
    giving up) ends the call at once: ``owner._call_cancelled(entry)`` lets go of what the
    call held until its timeout (its entry, its deadline, the debt of its target), as an
    answered call does.  A reply that comes later is dropped, as a late one is."""

    __slots__ = ("_entry", "_owner", "_to")

    def __init__(self, to: Any, owner: Any = None) -> None:
        # Future.__init__ inlined: a call makes one of these every time
        self._result = _PENDING
        self._exception = None
        self._callbacks = None
        self._asyncio_future_blocking = False
        self._consumed = False
        self._to = to
        #: the node that made the call, and the call's entry there (set by the node)
        self._owner = owner
        self._entry: list[Any] | None = None

    def cancel(self, msg: Any = None) -> bool:
        self._consumed = True  # given up on purpose, not forgotten
        if not Future.cancel(self, msg):
            return False
        owner, entry = self._owner, self._entry
        if owner is not None and entry:
            owner._call_cancelled(entry)
        return True

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

    def soon(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """``call_soon(fn, *args)``, the arguments given as a tuple: how a process is woken.
        A backend that queues soon-calls in a :class:`ReadyQueue` makes this an attribute,
        the queue's own ``push`` (one Python call per wake-up instead of two)."""
        self.call_soon(fn, *args)

    @abstractmethod
    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``fn(*args)`` once ``delay`` seconds have passed."""

    @abstractmethod
    def pending(self) -> int:
        """How many soon-calls are queued and have not run yet (``Node.is_idle`` asks)."""

    #: the thread that owns this scheduler: the node's API may be used from it alone
    thread: int

    #: whether handlers' coroutines run as tasks of an event loop (:meth:`start_task`)
    tasks: bool = False

    #: whether a timer left armed with nothing to do is free (an event loop: it fires and
    #: does nothing), so the runtime may keep one armed between calls instead of making one
    #: per call; in simulation an armed timer keeps the clock going (``Sim.run()`` runs until
    #: nothing is left to happen), so there a timer is cancelled once it has nothing to do
    idle_timers_free: bool = False

    #: a context manager around each step of a hand-driven handler coroutine, or None
    #: (simulation uses it to make asyncio's calls a clear error there)
    step_guard: Any = None

    #: False where :meth:`buggify` never fires (an event loop), so that a hot path may skip
    #: the call: ``if sched.may_buggify and sched.buggify(name)``.  True unless a backend
    #: says otherwise (simulation: its points are activated while it runs)
    may_buggify: bool = True

    def buggify(self, name: str) -> bool:
        """Whether the fault point ``name`` fires now (``"network.split_write"``, ...).

        The core calls this where a simulation may inject a fault (FoundationDB's BUGGIFY):
        always False outside simulation; in simulation only for the points a run
        activated (``Sim.buggify``), with probabilities drawn from the seed."""
        return False

    def run_io(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)``, work of an I/O callback (a link delivering what it read); a
        backend may then run the soon-calls it queued at once, in order and none inside
        another, instead of on their own turn.  Simulation leaves them to their turn."""
        fn(*args)

    def ended(self) -> bool:
        """True once the backend's loop has ended for good (an asyncio loop closed, as
        ``asyncio.run`` leaves it): nothing scheduled will ever run.  A simulation never
        ends so."""
        return False

    def end(self) -> None:
        """The node this scheduler serves stopped because its loop ended (``ended``): what
        its stop schedules (a process told of a peer gone, a timer) is dropped from now on,
        as nothing could run it, instead of raising and cutting the stop short.
        ``call_soon_threadsafe`` from another thread still raises: a caller there waits.
        Nothing to do where the loop never ends (a simulation)."""
        return None

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

    def start_task(self, coro: Any) -> Any:
        """Run ``coro`` (a handler's coroutine, wrapped by the runner) as a task of this
        backend's event loop and return the task (it has ``cancel()``), or None: then the
        runner drives the coroutine by hand, awaiting only the runtime's own futures
        (simulation)."""
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

    __slots__ = ("_arm", "_armed", "_queue", "_running", "token")

    #: the most calls one drain runs when more keep arriving (all queued ones run anyway)
    BUDGET = 256

    def __init__(self, arm: Callable[[], None]) -> None:
        self._queue: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._armed = False
        self._running = False  # a drain is running (run_io then only runs its callback)
        self._arm = arm  # asks the backend to call drain() soon
        #: the backend's token while no drain is asked for (see drain); None where unused
        self.token: object = None

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

    def _run_queued(self) -> None:
        """Run the queued calls in order: those queued now, or ``BUDGET`` if more come
        meanwhile (what is left waits for the next drain)."""
        queue = self._queue
        popleft = queue.popleft
        n = len(queue)
        if n < self.BUDGET:
            n = self.BUDGET
        self._running = True
        try:
            while n and queue:
                fn, args = popleft()
                fn(*args)
                n -= 1
        finally:
            self._running = False

    def drain(self, token: object = None) -> None:
        """Run the queued calls (see :meth:`_run_queued`), then ask for another drain if
        calls are left.  ``token``: what the backend passed with this drain, kept in
        :attr:`token` for it to pass with the next one (asyncio's scheduler learns from
        its token that a closed loop dropped a drain unrun: see net/scheduler.py)."""
        if token is not None:
            self.token = token
        try:
            self._run_queued()
        finally:
            if self._queue:
                self._arm()
            else:
                self._armed = False

    def run_io(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)``, work of a backend's I/O callback (bytes from a socket that
        wake a process), then at once the calls it queued, unless a drain is running.

        The work then runs in this callback instead of one turn of the event loop later,
        and no drain is asked of the backend for it (one asked for earlier stays asked
        for, and runs what is left).  Order and the budget are those of :meth:`drain`."""
        if self._running:
            fn(*args)
            return
        armed = self._armed
        self._armed = True  # what fn queues is run here: do not ask the backend for a drain
        try:
            fn(*args)
            self._run_queued()
        finally:
            if not armed:
                if self._queue:
                    self._arm()
                else:
                    self._armed = False

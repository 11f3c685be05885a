"""The scheduler seam on a SimPy environment: virtual time, seeded randomness, no wall clock."""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import simpy

from ergo.gen.errors import NotAllowed, Timeout
from ergo.scheduler import Future, ReadyQueue, Scheduler, TimerHandle

__all__ = ["Machine", "SimScheduler"]


class Machine:
    """What the schedulers of one simulated host share: its clock (skew) and whether it is
    paused.  A paused machine runs nothing: what falls due meanwhile (a drain of soon-calls,
    a timer, bytes or a datagram arriving) waits in ``frozen``, in the order it fell due,
    and runs in that order when the machine resumes."""

    __slots__ = ("base_local", "base_virtual", "frozen", "offset", "paused", "rate", "skewed")

    def __init__(self) -> None:
        self.paused = False
        self.frozen: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self.skewed = False
        self.rate = 1.0
        #: the host's clock reads base_local + rate * (virtual now - base_virtual)
        self.base_local = 0.0
        self.base_virtual = 0.0

    def local(self, virtual: float) -> float:
        return self.base_local + self.rate * (virtual - self.base_virtual)

    def thaw(self) -> None:
        """Run what fell due while paused, in order (stops if paused again meanwhile)."""
        frozen = self.frozen
        while frozen and not self.paused:
            fn, args = frozen.popleft()
            fn(*args)


class _SimTimer(TimerHandle):
    """A SimPy timeout cannot be taken back, so a cancelled timer stays queued until its
    time; the world counts those, so that "run until nothing is left" can stop early.
    A timer that falls due while its host is paused waits (frozen) until it resumes."""

    __slots__ = ("_fn", "_args", "_counts", "_sched", "_frozen")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], counts: list[int],
                 sched: SimScheduler) -> None:
        self._fn: Callable[..., Any] | None = fn
        self._args = args
        self._counts = counts
        self._sched = sched
        self._frozen = False

    def cancel(self) -> None:
        if self._fn is not None:
            self._fn = None
            self._args = ()
            if not self._frozen:  # a frozen timer is no longer queued in the environment
                self._counts[0] += 1

    def _fire(self, _event: simpy.Event) -> None:
        fn = self._fn
        if fn is None:
            self._counts[0] -= 1
            return
        s = self._sched
        if s.dead:
            self._fn = None
            return
        m = s.machine
        if m is not None and (m.paused or m.frozen):
            self._frozen = True
            m.frozen.append((self._thaw, ()))
            return
        self._fn = None
        fn(*self._args)

    def _thaw(self) -> None:
        fn = self._fn
        if fn is not None and not self._sched.dead:
            self._fn = None
            fn(*self._args)


class _NoLoop:
    """The "running event loop" a handler sees in simulation: asyncio's own awaitables
    (``asyncio.sleep(1)``, ``wait_for``, ``gather``, ...) ask for the running loop, and then
    raise ``NotAllowed`` saying why, instead of asyncio's "no running event loop"."""

    def __getattr__(self, name: str) -> Any:
        raise NotAllowed(
            f"a handler used asyncio (loop.{name}) in simulation: only the runtime's own awaitables "
            "(self.call, self.sleep, self.inspect, ...) can be awaited in simulation, not asyncio's "
            "or another library's"
        )

    def __repr__(self) -> str:
        return "<no event loop: simulation>"


_NO_LOOP = _NoLoop()


class _StepGuard:
    """Around each step of a handler's coroutine: the stand-in loop is the running one,
    unless a real loop runs (a simulation driven from an asyncio program: the runner then
    refuses asyncio's futures itself)."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set: list[bool] = []

    def __enter__(self) -> None:
        take = asyncio._get_running_loop() is None
        if take:
            asyncio._set_running_loop(_NO_LOOP)  # type: ignore[arg-type]
        self._set.append(take)

    def __exit__(self, *exc: object) -> None:
        if self._set.pop():
            asyncio._set_running_loop(None)


class SimScheduler(Scheduler):
    """Runs the core on ``env``.  Soon-calls of one scheduler are drained by one SimPy event
    per batch, in FIFO order, so the order of everything follows from the seed alone."""

    def __init__(self, env: simpy.Environment, rng: random.Random, epoch: float,
                 cancelled: list[int] | None = None, *, machine: Machine | None = None,
                 buggify: Any = None, blocking: list[int] | None = None, steps: list[int] | None = None) -> None:
        self._env = env
        #: [events run so far], shared with the world (see World.steps)
        self._steps = steps if steps is not None else [0]
        #: the host's clock and pause state (None: a bare scheduler on virtual time)
        self.machine = machine
        #: the world's buggify switchboard (see sim.faults), or None
        self._buggify = buggify
        #: [n]: n > 0 while the world runs a callback of its own in which nothing may block
        self._blocking = blocking
        #: True once its node (or host) was killed: it runs nothing more
        self.dead = False
        #: [number of cancelled timers still queued in env], shared by the world's schedulers
        self._cancelled = cancelled if cancelled is not None else [0]
        self.random = rng
        self._epoch = epoch
        self._ready = ReadyQueue(self._arm)
        self.soon = self._ready.push  # type: ignore[method-assign]  # call_soon, one call less
        self.thread = threading.get_ident()  # a simulation runs on the thread that built it
        self.step_guard = _StepGuard()

    def _arm(self) -> None:
        self._env.timeout(0).callbacks.append(self._drain)

    def _drain(self, _event: simpy.Event) -> None:
        if self.dead:
            return
        m = self.machine
        if m is not None and (m.paused or m.frozen):
            m.frozen.append((self._drain_thawed, ()))
            return
        self._ready.drain()

    def _drain_thawed(self) -> None:
        if not self.dead:
            self._ready.drain()

    def kill(self) -> None:
        """Run nothing more: queued soon-calls are dropped, timers do nothing when due."""
        self.dead = True
        self._ready = ReadyQueue(lambda: None)
        self.soon = self._ready.push  # type: ignore[method-assign]

    def now(self) -> float:
        m = self.machine
        if m is None or not m.skewed:
            return self._env.now
        return m.local(self._env.now)

    def time(self) -> float:
        return self._epoch + self.now()

    def buggify(self, name: str) -> bool:
        b = self._buggify
        return False if b is None or not b.points else bool(b.fire(name, self))

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self._ready.push(fn, args)

    def pending(self) -> int:
        return len(self._ready)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        timer = _SimTimer(fn, args, self._cancelled, self)
        if self.dead:  # a dead node's timer never fires: nothing to queue
            timer._fn = None
            timer._frozen = True
            return timer
        m = self.machine
        if m is not None and m.skewed:
            delay = delay / m.rate  # the host's clock runs at its rate: so do its timers
        b = self._buggify
        if b is not None and b.points and b.fire("timer.late", self):
            delay += self.random.uniform(0.0, b.LATE_TIMER)
        self._env.timeout(delay).callbacks.append(timer._fire)
        return timer

    def run_until(self, future: Future[Any], timeout: float | None = None) -> bool:
        """Step the simulation until ``future`` is done; every host's clock moves with it."""
        if self._blocking is not None and self._blocking[0]:
            raise NotAllowed("the simulation is running one of its own callbacks (a host booting): "
                             "nothing can wait for the clock here")
        env = self._env
        deadline = math.inf if timeout is None else env.now + timeout
        while not future.done():
            t = env.peek()
            if t > deadline:
                if deadline > env.now:
                    env.run(until=deadline)
                return False
            if t == math.inf:
                raise Timeout("the simulation has nothing left to run, so this would wait forever")
            env.step()
            self._steps[0] += 1
        return True

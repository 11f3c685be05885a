"""The scheduler seam on a SimPy environment: virtual time, seeded randomness, no wall clock."""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections.abc import Callable
from typing import Any

import simpy

from ergo.gen.errors import NotAllowed, Timeout
from ergo.scheduler import Future, ReadyQueue, Scheduler, TimerHandle

__all__ = ["SimScheduler"]


class _SimTimer(TimerHandle):
    """A SimPy timeout cannot be taken back, so a cancelled timer stays queued until its
    time; the world counts those, so that "run until nothing is left" can stop early."""

    __slots__ = ("_fn", "_args", "_counts")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], counts: list[int]) -> None:
        self._fn: Callable[..., Any] | None = fn
        self._args = args
        self._counts = counts

    def cancel(self) -> None:
        if self._fn is not None:
            self._fn = None
            self._args = ()
            self._counts[0] += 1

    def _fire(self, _event: simpy.Event) -> None:
        fn = self._fn
        if fn is not None:
            self._fn = None
            fn(*self._args)
        else:
            self._counts[0] -= 1


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
                 cancelled: list[int] | None = None) -> None:
        self._env = env
        #: [number of cancelled timers still queued in env], shared by the world's schedulers
        self._cancelled = cancelled if cancelled is not None else [0]
        self.random = rng
        self._epoch = epoch
        self._ready = ReadyQueue(self._arm)
        self.thread = threading.get_ident()  # a simulation runs on the thread that built it
        self.step_guard = _StepGuard()

    def _arm(self) -> None:
        self._env.timeout(0).callbacks.append(self._drain)

    def _drain(self, _event: simpy.Event) -> None:
        self._ready.drain()

    def now(self) -> float:
        return self._env.now

    def time(self) -> float:
        return self._epoch + self._env.now

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self._ready.push(fn, args)

    def pending(self) -> int:
        return len(self._ready)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> TimerHandle:
        timer = _SimTimer(fn, args, self._cancelled)
        self._env.timeout(delay).callbacks.append(timer._fire)
        return timer

    def run_until(self, future: Future[Any], timeout: float | None = None) -> bool:
        """Step the simulation until ``future`` is done; every host's clock moves with it."""
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
        return True

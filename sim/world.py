"""The simulated world: one SimPy environment, its seed, and the hosts in it."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import simpy

from .faults import Buggify
from .trace import Trace
from .transport import DEFAULT_LATENCY, Link

if TYPE_CHECKING:
    from .host import Host
    from .scheduler import SimScheduler

__all__ = ["EPOCH", "World"]

#: virtual time 0 is this moment (2026-01-01T00:00:00Z): timestamps and creations are stable
EPOCH = 1767225600.0


class World:
    def __init__(self, seed: int, epoch: float = EPOCH) -> None:
        self.seed = seed
        self.epoch = epoch
        self.env = simpy.Environment()
        #: [events run so far]: every loop that steps ``env`` counts its steps here
        self.steps = [0]
        self.hosts: dict[str, Host] = {}
        #: cancelled timers still queued in ``env`` (one counter for every host's scheduler)
        self.cancelled_timers = [0]
        #: the link between each pair of host names (sorted), made on first use
        self.links: dict[tuple[str, str], Link] = {}
        #: the latency of links made from now on, unless set per pair
        self.default_latency = DEFAULT_LATENCY
        #: the fault points of the runtime this run activated (``Sim.buggify``)
        self.buggify = Buggify(self)
        #: [n]: n > 0 while the world runs a callback of its own (a host booting) in which
        #: nothing may wait for the clock
        self.blocking = [0]
        #: what happens in this world, while it records (``Sim(trace=True)``, ``trace.start()``)
        self.trace = Trace(self)

    def link(self, a: str, b: str) -> Link:
        """The link between hosts ``a`` and ``b`` (the same object both ways; ``a == b`` is loopback)."""
        key = (a, b) if a <= b else (b, a)
        link = self.links.get(key)
        if link is None:
            link = self.links[key] = Link(self, key[0], key[1], self.default_latency)
        return link

    def quiet(self) -> bool:
        """True when nothing but cancelled timers is left to happen."""
        queue = getattr(self.env, "_queue", None)  # SimPy's event heap; no public size
        if queue is None:
            return self.env.peek() == float("inf")
        return len(queue) <= self.cancelled_timers[0]

    def note_fault(self, kind: str, **details: Any) -> None:
        """Record that a fault was injected now (``partition``, ``crash``, ...) with what it
        concerns (``a="host1", b="host2"``); the trace shows it, if it records."""
        self.trace.fault(kind, details)

    def rng(self, purpose: str) -> random.Random:
        """A generator of its own for each purpose, derived from the seed alone."""
        return random.Random(f"{self.seed}/{purpose}")

    def forget_timers(self, dead: set[SimScheduler]) -> None:
        """The timers of schedulers that were killed will never run: count them as
        cancelled, so that a run without a limit does not wait for them."""
        from .scheduler import _SimTimer

        for entry in getattr(self.env, "_queue", ()):
            callbacks = entry[-1].callbacks
            for cb in callbacks or ():
                timer = getattr(cb, "__self__", None)
                if type(timer) is _SimTimer and timer._sched in dead and timer._fn is not None:
                    timer.cancel()

"""The simulated world: one SimPy environment, its seed, and the hosts in it."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import simpy

from .trace import Trace
from .transport import DEFAULT_LATENCY, Link

if TYPE_CHECKING:
    from .host import Host

__all__ = ["EPOCH", "World"]

#: virtual time 0 is this moment (2026-01-01T00:00:00Z): timestamps and creations are stable
EPOCH = 1767225600.0


class World:
    def __init__(self, seed: int, epoch: float = EPOCH) -> None:
        self.seed = seed
        self.epoch = epoch
        self.env = simpy.Environment()
        self.hosts: dict[str, Host] = {}
        #: cancelled timers still queued in ``env`` (one counter for every host's scheduler)
        self.cancelled_timers = [0]
        #: the link between each pair of host names (sorted), made on first use
        self.links: dict[tuple[str, str], Link] = {}
        #: the latency of links made from now on, unless set per pair
        self.default_latency = DEFAULT_LATENCY
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

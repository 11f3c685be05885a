"""Buggify: named fault points inside the runtime, activated per run, fired from the seed.

The core asks its scheduler ``scheduler.buggify(name)`` where a fault may be injected
(FoundationDB's BUGGIFY); outside simulation the answer is always False.  In a
simulation a point fires only if the run activated it (``Sim.buggify``), and then with
its probability, drawn from a generator of the seed's own, so a seed replays the same
fires.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ergo.gen.errors import Incorrect

if TYPE_CHECKING:
    from .world import World

__all__ = ["POINTS", "Buggify"]

#: every fault point: its name -> (default probability of firing once active, what it does)
POINTS: dict[str, tuple[float, str]] = {
    "network.link_drop": (0.01, "a link breaks right after writing whole frames (its connection goes down)"),
    "network.slow_handshake": (0.25, "a link's handshake messages go out late (up to half the connect timeout)"),
    "network.split_write": (0.25, "a write goes to the stream in several small pieces"),
    "timer.late": (0.05, "a timer fires late (up to Buggify.LATE_TIMER seconds)"),
    "sim.datagram_drop": (0.05, "a datagram is lost before it leaves its host"),
}


class Buggify:
    """The world's switchboard of fault points (``World.buggify``)."""

    #: the most a late timer is late by, in seconds
    LATE_TIMER = 0.5

    def __init__(self, world: World) -> None:
        self._world = world
        #: the active points and their probabilities (empty: buggify is off)
        self.points: dict[str, float] = {}
        #: how many times each point fired in this run
        self.fired: dict[str, int] = {}
        self._rng: Any = None  # made on first use: a run without buggify draws nothing

    def enable(self, names: Iterable[str] | None, probability: float | None) -> None:
        """Activate ``names`` (every point if None: each one is active in this run with
        chance 1/2, drawn from the seed) with ``probability`` (else the point's default)."""
        if names is None:
            chosen = [n for n in POINTS if self._world.rng(f"buggify/{n}/active").random() < 0.5]
        else:
            chosen = list(names)
        for name in chosen:
            self.points[name] = POINTS[name][0] if probability is None else probability
            self.fired.setdefault(name, 0)

    def disable(self, names: Iterable[str] | None) -> None:
        if names is None:
            self.points.clear()
        else:
            for name in names:
                self.points.pop(name, None)

    @staticmethod
    def check(name: object) -> str:
        if not isinstance(name, str) or name not in POINTS:
            raise Incorrect(f"no buggify point named {name!r}: the points are {', '.join(POINTS)}"[:300])
        return name

    def fire(self, name: str, scheduler: Any) -> bool:
        p = self.points.get(name)
        if p is None:
            return False
        rng = self._rng
        if rng is None:
            rng = self._rng = self._world.rng("buggify")
        if rng.random() >= p:
            return False
        self.fired[name] += 1
        self._world.note_fault("buggify_fired", point=name)
        return True

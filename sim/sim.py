"""``Sim``: the one object a simulation test holds.

It owns the world (SimPy environment, seed, hosts) and drives the clock.  A test reads as
a story: make hosts, start nodes on them, send, run the clock, look at what happened.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ergo.gen.errors import Incorrect, Timeout
from ergo.gen.options import NodeOptions
from ergo.node.node import Node, validate_node_name
from ergo.scheduler import check_delay

from .host import Host
from .trace import Trace
from .transport import Link
from .world import EPOCH, World

__all__ = ["DEFAULT_RUN_LIMIT", "Sim"]

#: how many virtual seconds ``Sim.run()`` goes on without going quiet before it gives up
DEFAULT_RUN_LIMIT = 3600.0


class Sim:
    def __init__(self, seed: int = 0, epoch: float = EPOCH, *, trace: bool = False) -> None:
        """A simulation determined by ``seed``.  ``trace``: record what happens from the
        start (``self.trace``; see ``sim.trace``); it can also be started later."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise Incorrect(f"a seed is an int, not {type(seed).__name__}")
        self.world = World(seed, epoch)
        if trace:
            self.world.trace.start()

    @property
    def trace(self) -> Trace:
        """What happened: deliveries, signals, spawns, terminations, connections, faults
        (empty unless recording: ``Sim(seed, trace=True)`` or ``sim.trace.start()``)."""
        return self.world.trace

    @property
    def seed(self) -> int:
        return self.world.seed

    @property
    def now(self) -> float:
        """Virtual seconds since the simulation began."""
        return self.world.env.now

    @staticmethod
    def _host_name(name: object) -> str:
        if not isinstance(name, str) or not name or "@" in name:
            shown = repr(name[:40]) if isinstance(name, str) else type(name).__name__
            raise Incorrect(f"a host name is a non-empty str without '@', not {shown}")
        return name

    def host(self, name: str = "localhost") -> Host:
        """The host called ``name``, made on first use."""
        self._host_name(name)
        host = self.world.hosts.get(name)
        if host is None:
            host = self.world.hosts[name] = Host(self.world, name)
        return host

    def link(self, a: str, b: str) -> Link:
        """The link between hosts ``a`` and ``b`` (either order; ``a == b``: a host's loopback)."""
        return self.world.link(self._host_name(a), self._host_name(b))

    def set_latency(self, a: str, b: str, seconds: float) -> None:
        """Bytes and datagrams between hosts ``a`` and ``b`` take ``seconds`` each way from now
        on (what is already in flight keeps its time and order).  The default is
        ``sim.transport.DEFAULT_LATENCY`` (1 ms), loopback included."""
        self.link(a, b).latency = check_delay(seconds, "a latency")

    def start_node(self, name: str, options: NodeOptions | None = None) -> Node:
        """Start ``name@host`` on its host (made on first use)."""
        atom = validate_node_name(name)  # says what is wrong with the name ("app": no @host) first
        return self.host(atom.value.split("@", 1)[1]).start_node(name, options)

    def run(self, until: float | None = None, *, limit: float = DEFAULT_RUN_LIMIT) -> None:
        """Run the clock until virtual time ``until``, or until nothing is left to happen.

        With ``until``, everything due at or before it runs (a timer due exactly then
        included) and the clock then reads ``until``.  Without it the clock stops at the
        last thing that happened: timers that were cancelled (a call's timeout once its
        reply came) do not drag it forward.  A simulation that never goes quiet (a periodic
        timer, an endless exchange) raises ``Timeout`` once ``limit`` virtual seconds have
        passed, instead of hanging: use ``run_for`` or ``run_until`` for those.
        """
        env = self.world.env
        if until is not None:
            self._run_to(check_delay(until, "a time to run until"))
            return
        deadline = env.now + check_delay(limit, "a run limit")
        quiet = self.world.quiet
        while not quiet():
            if env.peek() > deadline:
                raise Timeout(
                    f"the simulation is still busy after {limit} virtual seconds (a periodic timer or "
                    "an endless exchange keeps it going): use run_for(seconds) or run_until(predicate), "
                    "or pass a larger limit"
                )
            env.step()

    def run_for(self, seconds: float) -> None:
        """Advance the clock by ``seconds``, running everything due meanwhile, a timer due
        exactly at the end included."""
        self._run_to(self.world.env.now + check_delay(seconds, "a time to run for"))

    def run_until(self, predicate: Callable[[], object], timeout: float | None = None) -> None:
        """Run the clock until ``predicate()`` is true (it is checked before each event).

        Raises ``Timeout`` if nothing is left to run while it is still false (it never will
        be), or once ``timeout`` virtual seconds have passed.
        """
        if not callable(predicate):
            raise Incorrect(f"run_until takes a function returning a truth value, not {predicate!r}")
        env = self.world.env
        deadline = math.inf if timeout is None else env.now + check_delay(timeout, "a timeout")
        quiet = self.world.quiet
        while not predicate():
            if quiet():
                raise Timeout(f"the condition is still false and nothing is left to run (at {env.now} s)")
            if env.peek() > deadline:
                self._run_to(deadline)
                raise Timeout(f"the condition is still false after {timeout} virtual seconds")
            env.step()

    def _run_to(self, t: float) -> None:
        env = self.world.env
        while env.peek() <= t:
            env.step()
        if t > env.now:
            env.run(until=t)  # nothing is due before t: this only moves the clock

    def step(self) -> bool:
        """Run one event; False if there was none."""
        env = self.world.env
        if env.peek() == float("inf"):
            return False
        env.step()
        return True

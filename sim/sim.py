"""``Sim``: the one object a simulation test holds.

It owns the world (SimPy environment, seed, hosts) and drives the clock.  A test reads as
a story: make hosts, start nodes on them, send, run the clock, look at what happened.
"""

from __future__ import annotations

from ergo.gen.errors import Incorrect
from ergo.scheduler import check_delay

from .host import Host
from .world import EPOCH, World

__all__ = ["Sim"]


class Sim:
    def __init__(self, seed: int = 0, epoch: float = EPOCH) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise Incorrect(f"a seed is an int, not {type(seed).__name__}")
        self.world = World(seed, epoch)

    @property
    def seed(self) -> int:
        return self.world.seed

    @property
    def now(self) -> float:
        """Virtual seconds since the simulation began."""
        return self.world.env.now

    def host(self, name: str = "localhost") -> Host:
        """The host called ``name``, made on first use."""
        if not isinstance(name, str) or not name or "@" in name:
            shown = repr(name[:40]) if isinstance(name, str) else type(name).__name__
            raise Incorrect(f"a host name is a non-empty str without '@', not {shown}")
        host = self.world.hosts.get(name)
        if host is None:
            host = self.world.hosts[name] = Host(self.world, name)
        return host

    def start_node(self, name: str, options=None):
        """Start ``name@host`` on its host (made on first use)."""
        host = name.split("@", 1)[1] if isinstance(name, str) and "@" in name else ""
        return self.host(host).start_node(name, options)

    def run(self, until: float | None = None) -> None:
        """Run the clock until virtual time ``until``, or until nothing is left to happen.

        Without ``until`` the clock stops at the last thing that happened: timers that were
        cancelled (a call's timeout once its reply came) do not drag it forward.
        """
        env = self.world.env
        if until is None:
            quiet = self.world.quiet
            while not quiet():
                env.step()
            return
        until = check_delay(until, "a time to run until")
        if until > env.now:
            env.run(until=until)

    def run_for(self, seconds: float) -> None:
        """Advance the clock by ``seconds``, running everything due meanwhile."""
        self.run(self.world.env.now + check_delay(seconds, "a time to run for"))

    def step(self) -> bool:
        """Run one event; False if there was none."""
        env = self.world.env
        if env.peek() == float("inf"):
            return False
        env.step()
        return True

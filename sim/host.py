"""A simulated host: a name (its address), its clock, its ports, and the nodes running on it.

Each node runs on a scheduler of its own (a program with its own event loop), on the
host's clock; the host also has a scheduler and a transport of its own (``host.scheduler``,
``host.transport``) for programs that are not nodes (a raw registrar, a test's sockets).
A host can crash (everything on it vanishes, nothing is sent) and restart (a boot: its
nodes start again, with a new creation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ergo.gen.errors import Incorrect, NotAllowed, Taken
from ergo.gen.options import NodeOptions
from ergo.node.node import Node, validate_node_name

from .scheduler import Machine, SimScheduler
from .transport import Ports, SimTransport

if TYPE_CHECKING:
    from .world import World

__all__ = ["Host"]


class Host:
    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.name = name
        #: the host's clock (skew) and pause state, shared by every scheduler on it
        self.machine = Machine()
        #: the source of every random choice made on this host (shared by its nodes)
        self.random = world.rng(f"host/{name}")
        #: False between a crash and the end of the next boot
        self.up = True
        #: how many times it booted again after a crash
        self.boots = 0
        self.nodes: dict[str, Node] = {}
        #: how its nodes start at each boot (``Sim.on_start``); None: the nodes that ran before
        self.start: Callable[[Host], Any] | None = None
        #: the highest creation of a node that ran here: a boot waits until the clock is past it
        self.last_creation = 0
        self._runs: dict[str, tuple[NodeOptions | None, SimScheduler, SimTransport]] = {}
        #: the nodes that ran when it crashed (name, options): what a restart starts without a start function
        self._before_crash: list[tuple[str, NodeOptions | None]] = []
        self._power_on()

    def _power_on(self) -> None:
        self.ports = Ports()
        self.scheduler = self._new_scheduler()
        #: the host's own sockets (a node has a transport of its own, on the same ports)
        self.transport = SimTransport(self)
        self._runs = {}

    def _new_scheduler(self) -> SimScheduler:
        w = self.world
        return SimScheduler(w.env, self.random, w.epoch, w.cancelled_timers, machine=self.machine,
                            buggify=w.buggify, blocking=w.blocking, steps=w.steps)

    @property
    def address(self) -> str:
        """What other hosts connect to: the host's name (the part after ``@`` in its nodes' names)."""
        return self.name

    def now(self) -> float:
        """The host's clock (virtual time, unless skewed)."""
        return self.scheduler.now()

    def start_node(self, name: str, options: NodeOptions | None = None) -> Node:
        """Start a node ``name`` (``something@<this host>``) on this host's clock."""
        atom = validate_node_name(name)
        if atom.value.split("@")[1] != self.name:
            raise Incorrect(f"node {atom.value} names host {atom.value.split('@')[1]!r}, not {self.name!r}")
        if not self.up:
            raise NotAllowed(f"host {self.name} is down (it crashed): restart it first")
        running = self.nodes.get(atom.value)
        if running is not None and running.is_alive():
            raise Taken(f"a node named {atom.value} already runs on host {self.name}")
        scheduler = self._new_scheduler()
        transport = SimTransport(self, scheduler=scheduler)
        creation = None
        if running is not None and int(scheduler.time()) <= running.creation:
            # started again within the second its last run started (or was killed): a later
            # creation all the same, or the old run's PIDs and messages would reach this one
            creation = running.creation + 1
        node = Node(atom, scheduler, options, transport, tracer=self.world.trace.tracer, creation=creation)
        self.nodes[atom.value] = node
        self._runs[atom.value] = (options, scheduler, transport)
        self.last_creation = max(self.last_creation, node.creation)
        node._finish_start()
        return node

    # faults (the verbs are Sim's)

    def _kill(self, name: str) -> None:
        """Node ``name`` is killed at once (kill -9): it runs nothing more and sends nothing;
        the host resets its connections and frees its ports."""
        node = self.nodes.get(name)
        if node is None or not node.is_alive() or name not in self._runs:
            raise NotAllowed(f"no node {name} runs on host {self.name}")
        _options, scheduler, transport = self._runs[name]
        scheduler.kill()
        transport._vanish(reset=True)
        node._vanish()
        self.world.forget_timers({scheduler})

    def _crash(self) -> None:
        if not self.up:
            raise NotAllowed(f"host {self.name} is down already")
        dead = {self.scheduler}
        survivors = []
        for name, (options, scheduler, transport) in self._runs.items():
            node = self.nodes[name]
            if node.is_alive():
                survivors.append((name, options))
            scheduler.kill()
            transport._vanish(reset=False)
            node._vanish()
            dead.add(scheduler)
        self.scheduler.kill()
        self.transport._vanish(reset=False)
        self.up = False
        self.machine.paused = False
        self.machine.frozen.clear()
        self._before_crash = survivors
        self.world.forget_timers(dead)

    def _restart(self, start: Callable[[Host], Any] | None) -> None:
        if self.up:
            raise NotAllowed(f"host {self.name} is up: crash it before restarting it")
        if start is not None:
            if not callable(start):
                raise Incorrect(f"a host's start function is a callable taking the host, not {start!r}"[:200])
            self.start = start
        self.world.env.timeout(0).callbacks.append(lambda _event: self._boot())

    def _boot(self) -> None:
        """Start again once the host's wall clock is past every earlier creation here, so
        that the nodes' creation (whole seconds, as Ergo's) is new."""
        if self.up:
            return
        env = self.world.env
        m = self.machine
        wall = self.world.epoch + (m.local(env.now) if m.skewed else env.now)
        if int(wall) <= self.last_creation:
            wait = (self.last_creation + 1 - wall) / (m.rate if m.skewed else 1.0) + 1e-6
            env.timeout(wait).callbacks.append(lambda _event: self._boot())
            return
        self.boots += 1
        self.up = True
        self._power_on()
        self.world.note_fault("boot", host=self.name)
        self.world.blocking[0] += 1  # a node's start cannot wait for the clock inside an event
        try:
            if self.start is not None:
                self.start(self)
            else:
                for name, options in self._before_crash:
                    self.start_node(name, options)
        finally:
            self.world.blocking[0] -= 1

    def __repr__(self) -> str:
        state = "" if self.up else " down"
        return f"<Host {self.name}{state} nodes={list(self.nodes)}>"

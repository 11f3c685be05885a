"""A simulated host: a name (its address), a scheduler view of the world's clock, its ports, and its nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ergo.gen.errors import Incorrect, Taken
from ergo.gen.options import NodeOptions
from ergo.node.node import Node, validate_node_name

from .scheduler import SimScheduler
from .transport import SimTransport

if TYPE_CHECKING:
    from .world import World

__all__ = ["Host"]


class Host:
    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.name = name
        self.scheduler = SimScheduler(world.env, world.rng(f"host/{name}"), world.epoch, world.cancelled_timers)
        self.nodes: dict[str, Node] = {}
        #: this host's ports (listeners, streams, datagram endpoints), shared by its nodes
        self.transport = SimTransport(self)

    @property
    def address(self) -> str:
        """What other hosts connect to: the host's name (the part after ``@`` in its nodes' names)."""
        return self.name

    def start_node(self, name: str, options: NodeOptions | None = None) -> Node:
        """Start a node ``name`` (``something@<this host>``) on this host's clock."""
        atom = validate_node_name(name)
        if atom.value.split("@")[1] != self.name:
            raise Incorrect(f"node {atom.value} names host {atom.value.split('@')[1]!r}, not {self.name!r}")
        running = self.nodes.get(atom.value)
        if running is not None and running.is_alive():
            raise Taken(f"a node named {atom.value} already runs on host {self.name}")
        node = Node(atom, self.scheduler, options, self.transport, tracer=self.world.trace.tracer)
        self.nodes[atom.value] = node
        node._finish_start()
        return node

    def __repr__(self) -> str:
        return f"<Host {self.name} nodes={list(self.nodes)}>"

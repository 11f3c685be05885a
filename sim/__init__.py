"""The SimPy backend: simulated hosts on a deterministic, seeded, virtual clock."""

from .host import Host
from .scheduler import SimScheduler
from .sim import Sim
from .transport import Link, SimTransport
from .world import EPOCH, World

__all__ = ["EPOCH", "Host", "Link", "Sim", "SimScheduler", "SimTransport", "World"]

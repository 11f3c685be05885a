"""The SimPy backend: simulated hosts on a deterministic, seeded, virtual clock."""

from .host import Host
from .scheduler import SimScheduler
from .sim import Sim
from .world import EPOCH, World

__all__ = ["EPOCH", "Host", "Sim", "SimScheduler", "World"]

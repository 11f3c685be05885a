"""The SimPy backend: simulated hosts on a deterministic, seeded, virtual clock."""

from .chart import render as render_chart
from .determinism import NotDeterministic, ScenarioFailed, check_determinism
from .host import Host
from .scheduler import SimScheduler
from .sim import Sim
from .trace import Trace
from .transport import Link, SimTransport
from .world import EPOCH, World

__all__ = ["EPOCH", "Host", "Link", "NotDeterministic", "ScenarioFailed", "Sim", "SimScheduler", "SimTransport",
           "Trace", "World", "check_determinism",
           "render_chart"]

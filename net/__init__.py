"""The asyncio backend: the node on a real event loop."""

from .node import start_node
from .scheduler import AsyncioScheduler

__all__ = ["AsyncioScheduler", "start_node"]

"""The asyncio backend: the node on a real event loop."""

from .node import settle, start_node
from .scheduler import AsyncioScheduler

__all__ = ["AsyncioScheduler", "settle", "start_node"]

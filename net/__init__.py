"""The asyncio backend: the node on a real event loop."""

from .node import settle, start_node
from .scheduler import AsyncioScheduler
from .transport import AsyncioTransport

__all__ = ["AsyncioScheduler", "AsyncioTransport", "settle", "start_node"]

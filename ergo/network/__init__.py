"""The network stack: a node's connections to other nodes, over the transport seam.

``Network`` is what ``node.network()`` returns; ``RemoteNode`` a connected peer;
``NetworkRoute`` a route given by hand.  See ``docs/network.md``.
"""

from .network import Network, NetworkRoute, RemoteNode

__all__ = ["Network", "NetworkRoute", "RemoteNode"]

"""The network stack: a node's connections to other nodes, over the transport seam.

``Network`` is what ``node.network()`` returns; ``RemoteNode`` a connected peer;
``NetworkRoute`` a route given by hand; ``Registrar`` the interface through which the
network registers its node and resolves others, ``EsrdRegistrar`` Ergo's registrar
behind it.  See ``docs/network.md``.
"""

from .network import Network, NetworkRoute, RemoteNode
from .registrar import EsrdRegistrar, Registrar, RegistrarLog, Route

__all__ = ["EsrdRegistrar", "Network", "NetworkRoute", "Registrar", "RegistrarLog", "RemoteNode", "Route"]

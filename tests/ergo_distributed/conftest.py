"""The two nodes of Ergo's distributed cases, on both transports (see ``dist_probe.py``).

Ported from ``testing/tests/002_distributed``: t000 connect, t001 remote spawn, t002
remote application start, t003 send, t004 call, t005 link, t006 monitor, t007 event.
Each file's docstring lists the differences from Ergo its tests pin.
"""

from __future__ import annotations

import pytest
from network_support import Cluster


@pytest.fixture
def nodes(cluster: Cluster):
    """node1 and node2 as Ergo's cases start them (max message sizes 567 and 765), routed to each other."""
    node1 = cluster.start(1, max_message_size=567)
    node2 = cluster.start(2, max_message_size=765)
    cluster.route_all()
    return node1, node2

"""Ergo's t000_connect_test.go (TestT0NodeBasic), translated: a node with no route to a
peer gets ``NoRoute``; ``GetNode`` connects; the peer then knows the connection too;
each side's view of the other names it and carries its creation, the flags the other's
acceptor tells, and the handshake and protocol versions of the other's acceptor; each node
keeps its own max message size, and each side learned the other's.

Differences pinned here: a node is networked only with ``NodeOptions(network=...)``
(Ergo's nodes always are); ``GetNode`` is ``network().connect(name)``, a Future (a
handler awaits it, ``node.wait_for`` outside); the peers are found through static routes
here (the registrar is tested elsewhere); the handshake carries no software version (Ergo's
``RemoteNodeInfo.Version``, the framework's name and release): a peer's ``info()`` has
none.
"""

from __future__ import annotations

import pytest
from dist_probe import connected, remote

from ergo import Atom, NetworkStopped, NodeOptions, NoRoute, ProcessID


def test_connect_to_an_unknown_node_is_no_route(nodes):
    node1, _ = nodes
    with pytest.raises(NoRoute):
        remote(node1, Atom("unknown@node"))


def test_connect_and_both_sides_see_each_other(cluster, nodes):
    node1, node2 = nodes
    remote1 = remote(node1, node2.name)
    # Ergo sleeps 100 ms for node2 to register the connection; here it is waited for
    cluster.run_until(lambda: node2.network().nodes() == [node1.name])
    remote2 = connected(node2, node1.name)
    assert remote1.name == node2.name and remote2.name == node1.name
    assert remote1.creation == node2.creation and remote2.creation == node1.creation
    info1, info2 = remote1.info(), remote2.info()
    assert info1["name"] == node2.name and info2["name"] == node1.name
    # each side sees the flags the other's acceptor tells
    acceptor1 = node1.network().info()["acceptors"][0]
    acceptor2 = node2.network().info()["acceptors"][0]
    assert info2["flags"] == acceptor1["flags"] and info1["flags"] == acceptor2["flags"]
    # each node keeps its own limit (the option is not ignored) ...
    assert node1.network().options.max_message_size == 567
    assert node2.network().options.max_message_size == 765
    assert node1.network().info()["max_message_size"] == 567 and node2.network().info()["max_message_size"] == 765
    # ... and each side learned the other's in the handshake (the limit it sends to)
    assert info2["max_message_size"] == 567 and info1["max_message_size"] == 765
    # the versions the link speaks are those of the peer's acceptor
    assert info1["handshake_version"] == acceptor2["handshake_version"]
    assert info1["proto_version"] == acceptor2["proto_version"]
    assert info2["handshake_version"] == acceptor1["handshake_version"]
    assert info2["proto_version"] == acceptor1["proto_version"]
    # (Ergo: remote1.Info().Version == node2.Version(); the handshake here carries no
    # software version, the node's own is node.info().version)
    assert "version" not in info1 and node2.info().version
    assert node1.network().nodes() == [node2.name]


def test_a_node_without_network_options_is_not_networked(cluster):
    """Differs from Ergo (whose nodes are networked by default): without
    ``NodeOptions(network=...)`` a node is local only, as an Erlang node started without a name."""
    node = cluster._captured(_local_node(cluster))
    with pytest.raises(NetworkStopped):
        node.network()
    with pytest.raises(NetworkStopped):
        node.send(ProcessID("x", "other@host"), "hi")


def _local_node(cluster):
    from ergo import LogOptions

    options = NodeOptions(log=LogOptions(default_logger=False))
    if cluster.name == "sim":
        return cluster.sim.start_node("local@host9", options)
    import net

    async def start():
        return net.start_node("local@127.0.0.1", options, handle_signals=False)

    return cluster.loop.run_until_complete(start())

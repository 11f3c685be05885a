"""Where the network deliberately differs from Ergo, pinned (docs/network.md, *Differences
from Ergo*); the rest of the audit against Ergo's ``node/`` and ``net/proto`` is in the
ported suite (``tests/ergo_distributed``) and the network suites.  On both transports."""

from __future__ import annotations

import pytest
from probe import Probe, run
from support import Collector

from ergo import NetworkFlags, NotAllowed, ProcessID
from ergo.network import NetworkRoute


def test_a_send_to_a_node_that_cannot_be_dialed_is_logged_not_raised(cluster):
    """Ergo's ``Send`` dials first and returns the dial's error (``ErrNoConnection``...):
    here the send is queued while the connection is dialed and returns at once; a dial
    that fails drops it, logged.  (A send to a node with no route at all, known at once,
    raises ``NoRoute``; an important send or a call learns the dial's failure.)"""
    node1 = cluster.start(1)
    node2 = cluster.start(2)
    cluster.route_all()
    host, _ = node2.network()._listeners[0].address
    node1.network().add_route("^ghost@", NetworkRoute(host, 1))  # nobody listens there
    probe = node1.spawn(Probe)
    assert run(node1, probe, lambda p: p.send(ProcessID("x", "ghost@nowhere"), "hi")) is None
    cluster.run_until(lambda: any("cannot connect to ghost@nowhere" in t for t in node1.captured.texts()))

    async def important(p):
        try:
            await p.send_important(ProcessID("x", "ghost@nowhere"), "hi")
        except Exception as e:
            return type(e).__name__
        return "delivered?"

    assert run(node1, probe, important) == "NoConnection"


def test_network_flags_are_taken_as_given_without_enable(cluster):
    """Ergo replaces flags without ``Enable`` by its defaults (a Go zero value means "not
    set"); here the flags a node is given are what it offers: without REMOTE_SPAWN it
    offers no remote spawn, ENABLE or not."""
    node1 = cluster.start(1)
    node2 = cluster.start(2, flags=NetworkFlags.IMPORTANT_DELIVERY)
    cluster.route_all()
    node2.network().enable_spawn("c", Collector)
    remote2 = node1.wait_for(node1.network().get_node(node2.name))
    assert remote2.info()["flags"] == NetworkFlags.IMPORTANT_DELIVERY
    with pytest.raises(NotAllowed, match="does not offer remote spawn"):
        node1.wait_for(remote2.spawn("c"))


def test_remote_node_uptime_is_the_connections(cluster):
    """Ergo's ``RemoteNode.Uptime`` is the peer node's (from its creation) and
    ``ConnectionUptime`` the connection's; here ``uptime`` is the connection's, and a
    peer's uptime has no counterpart (its creation counts seconds in simulation and
    milliseconds on asyncio, not a time a peer can read the same way)."""
    node1, node2 = cluster.cluster(2)
    cluster.run_for(3.0)
    remote2 = node1.wait_for(node1.network().get_node(node2.name))
    assert remote2.uptime < 3.0 <= node2.uptime
    assert not hasattr(remote2, "connection_uptime")


def test_the_network_is_configured_by_its_options_only(cluster):
    """Ergo's ``Network`` has setters (``SetCookie``, ``SetNetworkFlags``,
    ``SetMaxMessageSize``), ``GetNodeWithRoute``, ``Route(name)``, ``RegisterHandshake``
    and ``RegisterProto``; here ``NetworkOptions`` decide at the start, and routes are
    added with ``add_route`` and listed by ``routes()``."""
    node1, node2 = cluster.cluster(2)
    network = node1.network()
    for ergo_only in ("set_cookie", "set_network_flags", "set_max_message_size", "get_node_with_route",
                      "route", "register_handshake", "register_proto", "add_proxy_route"):
        assert not hasattr(network, ergo_only), ergo_only
    assert [m for m, _, _ in network.routes()] == [f"^{str.__str__(node2.name)}$"]

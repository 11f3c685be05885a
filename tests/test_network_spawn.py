"""Remote spawn with ``ProcessOptions``, as Ergo's ``ProcessOptionsExtra`` carries them:
every option a local spawn takes reaches the new process on the other node, and
``link_parent`` / ``link_child`` link it with the process that asked for it (Ergo's
``RemoteSpawn``).  On both transports."""

from __future__ import annotations

from typing import Any

import pytest
from probe import Probe, ends, messages, run

from ergo import (
    Actor,
    CompressionOptions,
    Fallback,
    Incorrect,
    LogLevel,
    MessageExitPID,
    MessagePriority,
    ProcessOptions,
    TerminateReasonShutdown,
)
from ergo.gen.options import CompressionLevel


class Idle(Actor):
    def init(self, *args: Any) -> None:
        self.args = args

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return self.args


def _watching(node, peer) -> int:
    """How many targets of ``node`` the connected ``peer`` watches."""
    return node.network().info()["peers"][str.__str__(peer.name)]["watching_here"]


@pytest.fixture
def pair(cluster):
    node1, node2 = cluster.cluster(2)
    node2.network().enable_spawn("idle", Idle)
    node1.wait_for(node1.network().connect(node2.name))
    return node1, node2


def test_remote_spawn_carries_every_process_option(pair):
    """Ergo's ProcessOptionsExtra.ProcessOptions: mailbox size, fallback, leader, env,
    compression, send priority, important delivery and log level all reach the new
    process (they were dropped but for the mailbox size and important delivery)."""
    node1, node2 = pair
    leader = node1.spawn(Probe)
    options = ProcessOptions(
        mailbox_size=7, fallback=Fallback("spare", "full"), leader=leader, env={"colour": "blue", "n": 3},
        compression=CompressionOptions(enable=True, level=CompressionLevel.BEST_SIZE, threshold=2048),
        send_priority=MessagePriority.HIGH, important_delivery=True, log_level=LogLevel.ERROR)
    remote2 = node1.network().node(node2.name)
    pid = node1.wait_for(remote2.spawn("idle", "a", 1, options=options))
    info = node2.process_info(pid)
    assert info.mailbox_size == 7
    assert info.fallback == Fallback("spare", "full")
    assert info.leader == leader
    assert info.env["COLOUR"] == "blue" and info.env["N"] == 3
    assert info.compression == CompressionOptions(enable=True, level=CompressionLevel.BEST_SIZE, threshold=2048)
    assert info.message_priority == MessagePriority.HIGH
    assert info.important_delivery is True
    assert info.log_level == LogLevel.ERROR  # its own level wins over the requester's
    assert node1.call(pid, "args") == ("a", 1)


def test_remote_spawn_with_link_child_links_the_requesting_process_to_the_child(cluster, pair):
    """Ergo's RemoteSpawn with LinkChild: the process that asked is linked to the new
    process, and hears of its end as of any linked process's."""
    node1, node2 = pair
    journal: list = []
    requester = node1.spawn(Probe, journal, True)  # traps exits

    async def spawn(p):
        return await p.remote_spawn(node2.name, "idle", options=ProcessOptions(link_child=True))

    child = run(node1, requester, spawn)
    assert node1.process_info(requester).links == (child,)  # linked once the answer came
    # (the Link frame reaches node2 a moment later: a link returns at once, docs/network.md)
    cluster.run_until(lambda: _watching(node2, node1) == 1)
    node2.send_exit(child, TerminateReasonShutdown)
    cluster.run_until(lambda: messages(journal, requester))
    assert messages(journal, requester) == [MessageExitPID(child, TerminateReasonShutdown)]


def test_remote_spawn_with_link_parent_links_the_child_to_the_requesting_process(cluster, pair):
    """Ergo's LinkParent: the new process is linked to the process that asked for it (its
    parent in Ergo), so the requester's end takes it down."""
    node1, node2 = pair
    journal: list = []
    requester = node1.spawn(Probe, journal)

    async def spawn(p):
        return await p.remote_spawn(node2.name, "idle", options=ProcessOptions(link_parent=True))

    child = run(node1, requester, spawn)
    cluster.run_until(lambda: node2.process_info(child).links == (requester,))
    node1.send_exit(requester, TerminateReasonShutdown)
    cluster.run_until(lambda: child.id not in node2._processes)
    assert ends(journal, requester)


@pytest.mark.parametrize("flag", ["link_parent", "link_child"])
def test_remote_node_spawn_with_a_link_option_is_incorrect(pair, flag):
    """``RemoteNode.spawn`` spawns for the node (Ergo's ``RemoteNode.Spawn``), which has
    no process to link with: the option is refused, not dropped."""
    node1, node2 = pair
    remote2 = node1.network().node(node2.name)
    with pytest.raises(Incorrect, match=flag):
        remote2.spawn("idle", options=ProcessOptions(**{flag: True}))


@pytest.mark.parametrize("options", [{"compression": "yes"}, {"env": ["a"]}, {"log_level": "loud"},
                                     {"fallback": [1, 2, 3]}, {"leader": "me"}, {"link_parent": 1}])
def test_a_spawn_request_with_malformed_options_is_answered_incorrect(cluster, pair, options):
    """Options a peer sends that are not what a spawn takes are refused, and the
    requester is told why: nothing is spawned."""
    import ergo.network.network as network_module

    node1, node2 = pair
    conn = node1.network().connection(node2.name)
    before = set(node2._processes)
    ref = node1.make_ref()
    answers: list = []
    conn.waiting[ref] = lambda error, result: answers.append((error, result))
    conn.send(network_module.enp.Spawn(node1.pid, ref, "idle", None, options, ()), 0)
    cluster.run_until(lambda: answers)
    ((error, result),) = answers
    assert isinstance(error, Incorrect) and result is None
    assert set(node2._processes) == before


def test_process_remote_spawn_to_a_node_without_a_route_fails_its_future_with_no_route(pair):
    """Ergo's ``RemoteSpawn`` returns the connection's error: here the future fails with
    it (a name that is not a node's is raised at once, as bad input)."""
    from ergo import NoRoute

    node1, _ = pair
    probe = node1.spawn(Probe)

    async def spawn(p):
        try:
            await p.remote_spawn("nobody@nowhere", "idle")
        except NoRoute:
            return "no route"
        return "spawned?"

    assert run(node1, probe, spawn) == "no route"
    with pytest.raises(Incorrect):
        run(node1, probe, lambda p: p.remote_spawn("not a node name", "idle"))
    with pytest.raises(Incorrect):
        run(node1, probe, lambda p: p.remote_spawn_register("nobody@nowhere", "", "idle"))


def test_a_remote_spawn_whose_fallback_is_a_process_of_another_node_is_answered_incorrect(pair):
    """The fallback of a remote spawn is a process of the node that spawns (a full mailbox
    passes messages on there only).  A requester's own PID (or a third node's) was taken,
    and the new process then refused every message it should have passed on, saying its
    node had no network: the spawn is answered ``Incorrect``, and nothing is spawned."""
    node1, node2 = pair
    before = set(node2._processes)
    remote2 = node1.network().node(node2.name)
    fut = remote2.spawn("idle", options=ProcessOptions(mailbox_size=1, fallback=Fallback(node1.spawn(Idle), "t")))
    with pytest.raises(Incorrect, match="a fallback is a process of this node"):
        node1.wait_for(fut)
    assert set(node2._processes) == before

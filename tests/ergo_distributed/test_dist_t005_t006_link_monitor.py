"""Ergo's t005_link_test.go (TestT5LinkRemote) and t006_monitor_test.go
(TestT6MonitorRemote), translated: a process of node1 (trapping exits, for links) spawns
"pong" on node2 and links to / monitors it by PID, registered name, alias or one of its
events; then either pong gets an exit signal with ``shutdown`` from the watcher, or node1
disconnects from node2.  The watcher hears ``MessageExit*`` / ``MessageDown*`` naming the
target with ``shutdown``, or with ``NoConnection``.  Linking to / monitoring node2 itself
and disconnecting gives ``MessageExitNode`` / ``MessageDownNode`` naming it.

Differences pinned here:
- ``link`` / ``monitor`` of a remote target return at once; the target's node answers
  later, and a refusal arrives as an exit/down message with the reason (Erlang's
  ``noproc``), where Ergo's ``LinkPID`` waits for the answer and returns its error.
- The reason after a lost connection is a ``NoConnection`` saying why (Ergo compares with
  its bare ``ErrNoConnection``).
- A remote event's buffered messages are delivered as events (``handle_event``), not
  returned by ``link`` / ``monitor`` (see t007).
"""

from __future__ import annotations

import pytest
from dist_probe import Probe, connected, messages, remote, remote_spawn, run

from ergo import (
    Actor,
    Event,
    MessageDownAlias,
    MessageDownEvent,
    MessageDownNode,
    MessageDownPID,
    MessageDownProcessID,
    MessageExitAlias,
    MessageExitEvent,
    MessageExitNode,
    MessageExitPID,
    MessageExitProcessID,
    NoConnection,
    ProcessID,
    TerminateReasonShutdown,
)

EXIT = {"pid": MessageExitPID, "process_id": MessageExitProcessID, "alias": MessageExitAlias,
        "event": MessageExitEvent}
DOWN = {"pid": MessageDownPID, "process_id": MessageDownProcessID, "alias": MessageDownAlias,
        "event": MessageDownEvent}


class Pong(Actor):
    """Ergo's t5pong / t6pong: makes an alias or registers an event when asked."""

    def handle_call(self, from_, ref, request):
        if request == "alias":
            return self.create_alias()
        if request == "event":
            name = f"ev{self.pid.id}"
            self.register_event(name)
            return Event(name, self.node.name)
        return None


@pytest.fixture
def pair(nodes):
    node1, node2 = nodes
    node2.network().enable_spawn("pong", Pong)
    remote(node1, node2.name)
    return node1, node2


def _watch(node1, node2, kind: str, link: bool):
    """Spawn a watcher on node1 and a pong on node2; the watcher links to / monitors the
    pong by ``kind``.  Returns the journal, the watcher, pong's PID and the target."""
    journal: list = []
    watcher = node1.spawn(Probe, journal, link)  # a linking watcher traps exits, as Ergo's t5 does

    async def case(p):
        register = "regpong" if kind == "process_id" else None
        pid = await remote_spawn(p, node2.name, "pong", register=register)
        if kind == "pid":
            target = pid
        elif kind == "process_id":
            target = ProcessID("regpong", node2.name)
        else:
            target = await p.call(pid, kind)
        if link:
            p.link(target)
        else:
            p.monitor(target)
        return pid, target

    pid, target = run(node1, watcher, case)
    info = node1.process_info(watcher)
    assert (info.links if link else info.monitors) == (target,)
    return journal, watcher, pid, target


@pytest.mark.parametrize("link", [True, False], ids=["link", "monitor"])
@pytest.mark.parametrize("kind", ["pid", "process_id", "alias", "event"])
def test_remote_target_terminated(cluster, pair, kind, link):
    node1, node2 = pair
    journal, watcher, pid, target = _watch(node1, node2, kind, link)
    run(node1, watcher, lambda p: p.send_exit(pid, TerminateReasonShutdown))
    cluster.run_until(lambda: messages(journal, watcher))
    expected = (EXIT if link else DOWN)[kind]
    assert messages(journal, watcher) == [expected(target, TerminateReasonShutdown)]
    assert node1.process_info(watcher).links == () and node1.process_info(watcher).monitors == ()


@pytest.mark.parametrize("link", [True, False], ids=["link", "monitor"])
@pytest.mark.parametrize("kind", ["pid", "process_id", "alias", "event"])
def test_remote_target_node_down(cluster, pair, kind, link):
    node1, node2 = pair
    journal, watcher, pid, target = _watch(node1, node2, kind, link)
    run(node1, watcher, lambda p: connected(p.node, node2.name).disconnect())
    cluster.run_until(lambda: messages(journal, watcher))
    (got,) = messages(journal, watcher)
    assert type(got) is (EXIT if link else DOWN)[kind]
    assert getattr(got, got.__slots__[0]) == target  # the first field names the target, whatever its kind
    assert isinstance(got.reason, NoConnection)  # (Ergo: exactly ErrNoConnection)


@pytest.mark.parametrize("link", [True, False], ids=["link", "monitor"])
def test_remote_node_down(cluster, pair, link):
    node1, node2 = pair
    journal: list = []
    watcher = node1.spawn(Probe, journal, link)
    run(node1, watcher, (lambda p: p.link(node2.name)) if link else (lambda p: p.monitor(node2.name)))
    info = node1.process_info(watcher)
    assert (info.links if link else info.monitors) == (node2.name,)
    run(node1, watcher, lambda p: connected(p.node, node2.name).disconnect())
    cluster.run_until(lambda: messages(journal, watcher))
    assert messages(journal, watcher) == [MessageExitNode(node2.name) if link else MessageDownNode(node2.name)]

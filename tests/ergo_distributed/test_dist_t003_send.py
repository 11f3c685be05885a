"""Ergo's t003_send_test.go (TestT3SendRemote), translated: a process of node1 spawns
"pong" on node2 and sends to it by PID, by registered name and by alias (the values
arrive equal); a message above node2's max message size is ``TooLarge`` to the sender;
an exit signal with ``Taken`` as its reason terminates pong with that reason.

Ergo's pong reports on a global channel; here it sends what it got back to the sender.

Not ported yet: the ``SendImportant`` cases (``Process.send_important`` is not wired to
the network's acknowledgements yet) and ``TestSendRemoteCompress`` (per-process
compression over the network is not wired yet either).
"""

from __future__ import annotations

import pytest
from dist_probe import Probe, messages, remote, remote_spawn, run

from ergo import Actor, ExitSignal, ProcessID, Taken, TooLarge


class Pong(Actor):
    """Sends back ``("pong", message, alias)``; tells ``reporter`` (a PID) how it ended."""

    def init(self, reporter=None) -> None:
        self.reporter = reporter

    def handle_message(self, from_, message) -> None:
        self.send(from_, ("pong", message, self.create_alias()))

    def terminate(self, reason: BaseException) -> None:
        if self.reporter is not None:
            cause = reason.cause if isinstance(reason, ExitSignal) else reason
            self.send(self.reporter, ("ended", type(reason).__name__, cause))


@pytest.fixture
def t3(cluster, nodes):
    node1, node2 = nodes
    node2.network().enable_spawn("pong", Pong)
    remote(node1, node2.name)
    journal: list = []
    probe = node1.spawn(Probe, journal)
    return cluster, node1, node2, journal, probe


def _pongs(cluster, journal, probe, n):
    cluster.run_until(lambda: len(messages(journal, probe)) >= n)
    return messages(journal, probe)


def test_send_remote_pid(t3):
    cluster, node1, node2, journal, probe = t3

    async def case(p):
        pid = await remote_spawn(p, node2.name, "pong")
        p.send(pid, 123)

    run(node1, probe, case)
    assert _pongs(cluster, journal, probe, 1)[0][:2] == ("pong", 123)


def test_send_remote_process_id(t3):
    cluster, node1, node2, journal, probe = t3

    async def case(p):
        await remote_spawn(p, node2.name, "pong", register="regpong")
        p.send(ProcessID("regpong", node2.name), 123.456)

    run(node1, probe, case)
    assert _pongs(cluster, journal, probe, 1)[0][:2] == ("pong", 123.456)


def test_send_remote_alias(t3):
    cluster, node1, node2, journal, probe = t3

    async def case(p):
        pid = await remote_spawn(p, node2.name, "pong")
        p.send(pid, "test value")

    run(node1, probe, case)
    _, value, alias = _pongs(cluster, journal, probe, 1)[0]
    assert value == "test value" and alias.node == node2.name
    run(node1, probe, lambda p: p.send(alias, "test value"))
    assert _pongs(cluster, journal, probe, 2)[1][:2] == ("pong", "test value")


def test_send_remote_too_large(t3):
    cluster, node1, node2, journal, probe = t3
    limit = node2.network().options.max_message_size  # 765, what node1 learned in the handshake
    with pytest.raises(TooLarge):
        run(node1, probe, lambda p: p.send(ProcessID("whatever", node2.name), "x" * (limit + 1)))

    async def still_up(p):  # the connection stays up
        pid = await remote_spawn(p, node2.name, "pong")
        p.send(pid, "small")

    run(node1, probe, still_up)
    assert _pongs(cluster, journal, probe, 1)[0][:2] == ("pong", "small")


def test_send_remote_exit(t3):
    cluster, node1, node2, journal, probe = t3

    async def case(p):
        pid = await remote_spawn(p, node2.name, "pong", p.pid)
        p.send_exit(pid, Taken())  # Ergo's sample reason: an error the wire knows
        return pid

    pid = run(node1, probe, case)
    ((_, kind, cause),) = _pongs(cluster, journal, probe, 1)
    # pong's terminate is told the exit signal; its cause is the sender's reason (Ergo: errors.Unwrap)
    assert kind == "ExitSignal" and cause == Taken()
    cluster.run_until(lambda: pid.id not in node2._processes)

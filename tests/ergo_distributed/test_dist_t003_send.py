"""Ergo's t003_send_test.go (TestT3SendRemote), translated: a process of node1 spawns
"pong" on node2 and sends to it by PID, by registered name and by alias (the values
arrive equal); a message above node2's max message size is ``TooLarge`` to the sender;
an exit signal with ``Taken`` as its reason terminates pong with that reason.

Ergo's pong reports on a global channel; here it sends what it got back to the sender.

The ``SendImportant`` cases: ``send_important`` returns a Future here (a plain handler
cannot wait for the acknowledgement, an async one awaits it), which fails with
``ProcessUnknown`` for a process the peer does not have, as Ergo's returns the error.
``TestSendRemoteCompress``: a deliberate difference, pinned there (the limit bounds a
frame's size before compression too).
"""

from __future__ import annotations

import pytest
from dist_probe import Probe, connected, messages, remote, remote_spawn, run

from ergo import (
    Actor,
    Alias,
    CompressionOptions,
    ExitSignal,
    ProcessID,
    ProcessUnknown,
    Taken,
    TooLarge,
)
from ergo.gen.options import DEFAULT_COMPRESSION_THRESHOLD


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
    limit = connected(node1, node2.name).info()["max_message_size"]  # what node1 learned in the handshake
    assert limit == node2.network().options.max_message_size == 765
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


def _unknown(pid):
    from ergo import PID

    return PID(pid.node, 100000, pid.creation)  # Ergo's "pid.ID = 100000 // unknown pid"


def test_send_important_remote_pid(t3):
    cluster, node1, node2, journal, probe = t3

    async def case(p):
        pid = await remote_spawn(p, node2.name, "pong")
        await p.send_important(pid, 123)  # acknowledged: it is in pong's mailbox
        try:
            await p.send_important(_unknown(pid), 123)
        except ProcessUnknown:
            return "unknown"
        return "delivered?"

    assert run(node1, probe, case) == "unknown"
    assert _pongs(cluster, journal, probe, 1)[0][:2] == ("pong", 123)


def test_send_important_remote_process_id(t3):
    cluster, node1, node2, journal, probe = t3

    async def case(p):
        await remote_spawn(p, node2.name, "pong", register="regpong")
        await p.send_important(ProcessID("regpong", node2.name), 123.456)
        try:
            await p.send_important(ProcessID("nobody", node2.name), 1)
        except ProcessUnknown:
            return "unknown"
        return "delivered?"

    assert run(node1, probe, case) == "unknown"
    assert _pongs(cluster, journal, probe, 1)[0][:2] == ("pong", 123.456)


def test_send_important_remote_alias(t3):
    cluster, node1, node2, journal, probe = t3

    async def case(p):
        pid = await remote_spawn(p, node2.name, "pong")
        await p.send_important(pid, "test value")

    run(node1, probe, case)
    _, value, alias = _pongs(cluster, journal, probe, 1)[0]
    assert value == "test value"

    async def by_alias(p):
        await p.send_important(alias, "test value")
        try:
            await p.send_important(Alias(alias.node, alias.creation, (alias.id[0], 0, 1)), "x")  # unknown alias
        except ProcessUnknown:
            return "unknown"
        return "delivered?"

    assert run(node1, probe, by_alias) == "unknown"
    assert _pongs(cluster, journal, probe, 2)[1][:2] == ("pong", "test value")


def test_send_remote_compress(t3):
    """Ergo's case sends a message 1.5 times the peer's limit, TooLarge plain and delivered
    compressed.  Here the limit bounds the size *before* compression as well (the receiver
    refuses to expand a frame past it: a decompression bomb must not cost more than an
    ordinary frame), so it is TooLarge either way, said to the sender, and the link stays
    up; compression still shrinks what travels below the limit (test_network_api)."""
    cluster, node1, node2, journal, probe = t3
    limit = connected(node1, node2.name).info()["max_message_size"]  # 765, node2's
    value = "abcdefgh" * ((limit + limit // 2) // 8)  # above the peer's limit, and above the threshold
    assert len(value) > max(limit, DEFAULT_COMPRESSION_THRESHOLD)

    async def spawn(p):
        return await remote_spawn(p, node2.name, "pong")

    pid = run(node1, probe, spawn)
    with pytest.raises(TooLarge):
        run(node1, probe, lambda p: p.send(pid, value))

    def compressed(p):
        p.compression = CompressionOptions(enable=True)
        p.send(pid, value)

    with pytest.raises(TooLarge, match="before compression"):
        run(node1, probe, compressed)
    run(node1, probe, lambda p: p.send(pid, "small"))  # the link is still up
    assert _pongs(cluster, journal, probe, 1)[0][:2] == ("pong", "small")

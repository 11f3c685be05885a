"""Ergo's t013_meta_process_test.go (TestT13Meta), translated: calls, messages and
inspection of a meta-process, a meta-process spawning another, exit signals to a
meta-process (``send_exit_meta``) seen through a link and a monitor, and a meta-process
ending with its owner's reason."""

from __future__ import annotations

from typing import Any

import pytest
from ergo_probe import Probe, messages, run

from ergo import (
    PID,
    Alias,
    AliasUnknown,
    MessageDownAlias,
    MessageExitAlias,
    MetaBehavior,
    MetaUnknown,
    Ref,
)


class TestMeta(MetaBehavior):
    """Ergo's testMeta: echoes calls, spawns a child meta-process on a call with True,
    forwards "forward" to a PID it is sent, and journals how it ends."""

    __test__ = False  # not a pytest class

    def __init__(self, journal: list) -> None:
        self.journal = journal

    def handle_message(self, from_: PID, message: Any) -> None:
        self.journal.append(("meta message", self.process.id, message))
        if isinstance(message, PID):
            self.process.send(message, "forward")

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        if request is True:
            return self.process.spawn(TestMeta(self.journal))
        return request

    def handle_inspect(self, from_: PID, *items: str) -> dict[str, str]:
        return {str(from_): "ok"}

    def terminate(self, reason: BaseException) -> None:
        self.journal.append(("meta terminate", self.process.id, reason))


def _meta_ends(journal: list, alias: Alias) -> list[BaseException]:
    return [e[2] for e in journal if e[0] == "meta terminate" and e[1] == alias]


def test_basic(backend):
    node = backend.node("t13node@localhost")
    journal: list = []
    pid = node.spawn(Probe, journal)
    meta = run(node, pid, lambda p: p.spawn_meta(TestMeta(journal)))

    async def call(p, request):
        return await p.call(meta, request)

    assert run(node, pid, lambda p: call(p, "ping-pong")) == "ping-pong"
    run(node, pid, lambda p: p.send(meta, "x"))
    backend.settle()
    assert ("meta message", meta, "x") in journal

    async def inspect(p):
        return await p.inspect(meta)

    assert run(node, pid, inspect) == {str(pid): "ok"}

    child = run(node, pid, lambda p: call(p, True))  # the meta-process spawns another
    assert isinstance(child, Alias) and node.meta_info(child).parent == pid

    xterm = RuntimeError("test meta exit")
    run(node, pid, lambda p: p.send_exit_meta(meta, xterm))
    backend.settle()
    assert _meta_ends(journal, meta) == [xterm]
    assert node.meta_info(child).parent == pid  # the child belongs to the process, not to meta


def test_send_exit_meta_errors(backend):
    node = backend.node("t13node@localhost")
    pid = node.spawn(Probe)
    alias = run(node, pid, lambda p: p.create_alias())
    with pytest.raises(AliasUnknown):
        run(node, pid, lambda p: p.send_exit_meta(Alias(node.name, node.creation, (0, 0, 0)), RuntimeError()))
    with pytest.raises(MetaUnknown):  # a process's alias is not a meta-process
        run(node, pid, lambda p: p.send_exit_meta(alias, RuntimeError()))


def test_link_monitor(backend):
    node = backend.node("t13node@localhost")
    journal: list = []
    driver = node.spawn(Probe, journal)
    owner = run(node, driver, lambda p: p.spawn(Probe, journal, True))  # traps exits

    meta = run(node, owner, lambda p: p.spawn_meta(TestMeta(journal)))
    run(node, driver, lambda p: p.send(meta, owner))  # the meta-process sends "forward" to it
    backend.settle()
    assert messages(journal, owner)[-1] == "forward"

    idterm = RuntimeError("term meta")
    run(node, owner, lambda p: p.link(meta))
    run(node, driver, lambda p: p.send_exit_meta(meta, idterm))
    backend.settle()
    assert messages(journal, owner)[-1] == MessageExitAlias(meta, idterm)

    meta = run(node, owner, lambda p: p.spawn_meta(TestMeta(journal)))
    run(node, owner, lambda p: p.monitor(meta))
    run(node, driver, lambda p: p.send_exit_meta(meta, idterm))
    backend.settle()
    assert messages(journal, owner)[-1] == MessageDownAlias(meta, idterm)

    # the owner dies of its parent's exit signal: the meta-process ends with that reason
    meta = run(node, owner, lambda p: p.spawn_meta(TestMeta(journal)))
    pidterm = RuntimeError("blabla")
    run(node, driver, lambda p: p.send_exit(owner, pidterm))
    backend.settle()
    assert _meta_ends(journal, meta) == [pidterm]

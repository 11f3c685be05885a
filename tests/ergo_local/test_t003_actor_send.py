"""Ergo's t003_actor_send_test.go (TestT3ActorSend), translated: sends by PID, by
registered name (ProcessID), by alias, and to an unknown name."""

from __future__ import annotations

import pytest
from ergo_probe import Probe, messages, run

from ergo import Atom, ProcessID, ProcessUnknown


def _pong(backend, address, value):
    node = backend.node("t3node@localhost")
    journal: list = []
    sender = node.spawn(Probe, journal)
    target = run(node, sender, lambda p: p.spawn(Probe, journal))
    to = address(node, target)
    run(node, sender, lambda p: p.send(to, value))
    backend.settle()
    assert messages(journal, target) == [value]
    assert journal[-1][2] == sender  # the sender is the sending process


def test_send_pid(backend):
    _pong(backend, lambda node, pid: pid, 1.234)


def test_send_process_id(backend):
    def by_name(node, pid):
        run(node, pid, lambda p: p.register_name("pong"))
        return ProcessID("pong", node.name)

    _pong(backend, by_name, 1234)


def test_send_alias(backend):
    _pong(backend, lambda node, pid: run(node, pid, lambda p: p.create_alias()), "hello")


def test_send_unknown(backend):
    node = backend.node("t3node@localhost")
    pid = node.spawn(Probe)
    with pytest.raises(ProcessUnknown):
        run(node, pid, lambda p: p.send(Atom("unknown process"), 1))

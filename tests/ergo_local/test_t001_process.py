"""Ergo's t001_process_test.go (TestT1ProcessBasic), translated: a process's own API,
each of Ergo's twelve subtests run inside a process registered as "a"."""

from __future__ import annotations

import dataclasses

import pytest
from ergo_probe import Probe, node_with_env, run

from ergo import (
    CompressionLevel,
    Incorrect,
    MessagePriority,
    NameUnknown,
    ProcessOptions,
    ProcessState,
    Taken,
)
from ergo.gen.options import DEFAULT_COMPRESSION_THRESHOLD

NODE_ENV = {"A": 1, "B": 1.23, "C": "d"}
PROCESS_ENV = {"B": 1.23, "D": "d"}


@pytest.fixture
def t1(backend):
    node = node_with_env(backend, "t1node@localhost", NODE_ENV)
    pid = node.spawn_register("a", Probe, options=ProcessOptions(env=PROCESS_ENV))
    return node, pid


def test_node_interface(t1):
    node, pid = t1
    assert run(node, pid, lambda p: p.node) is node


def test_env(t1):
    node, pid = t1

    def check(p):
        assert p.env_list() == {**NODE_ENV, **PROCESS_ENV}
        p.set_env("k", 123)
        assert p.env("k") == 123
        p.set_env("a", None)
        assert p.env("a") is None
        # the process's env is its own copy
        assert p.env_list() != p.node.env_list()

    run(node, pid, check)


def test_name(t1):
    node, pid = t1

    def check(p):
        assert p.name == "a"
        with pytest.raises(Taken):  # a process has one name
            p.register_name("newname")
        p.unregister_name()
        with pytest.raises(NameUnknown):
            p.unregister_name()
        p.register_name("newname")
        assert p.name == "newname"

    run(node, pid, check)


def test_pid(t1):
    node, pid = t1
    assert run(node, pid, lambda p: p.pid) == pid


def test_parent_leader(t1):
    node, pid = t1
    assert run(node, pid, lambda p: (p.parent, p.leader)) == (node.pid, node.pid)


def test_uptime(t1):
    node, pid = t1
    # Ergo's Uptime is whole seconds (0 just after spawning); here it is a float of seconds
    assert 0 <= run(node, pid, lambda p: p.uptime) < 1


def test_state(t1):
    node, pid = t1
    assert run(node, pid, lambda p: p.state) is ProcessState.RUNNING


def test_compression(t1):
    """Ergo's SetCompression/SetCompressionLevel/SetCompressionThreshold are one
    ``compression`` property taking CompressionOptions here (documented difference)."""
    node, pid = t1

    def check(p):
        assert p.compression.enable is False
        p.compression = dataclasses.replace(p.compression, enable=True)
        assert p.compression.enable is True
        assert p.compression.level == CompressionLevel.DEFAULT
        with pytest.raises(Incorrect):
            p.compression = dataclasses.replace(p.compression, level=100)
        p.compression = dataclasses.replace(p.compression, level=CompressionLevel.BEST_SIZE)
        assert p.compression.level == CompressionLevel.BEST_SIZE
        assert p.compression.threshold == DEFAULT_COMPRESSION_THRESHOLD
        with pytest.raises(Incorrect):
            p.compression = dataclasses.replace(p.compression, threshold=1)
        p.compression = dataclasses.replace(p.compression, threshold=DEFAULT_COMPRESSION_THRESHOLD + 100)
        assert p.compression.threshold == DEFAULT_COMPRESSION_THRESHOLD + 100
        assert p.compression.enable is True  # a refused change changed nothing

    run(node, pid, check)


def test_send_priority(t1):
    node, pid = t1

    def check(p):
        assert p.send_priority is MessagePriority.NORMAL
        p.send_priority = MessagePriority.MAX
        assert p.send_priority is MessagePriority.MAX
        try:
            p.send_priority = 12345
        except Incorrect:
            pass
        except ValueError as e:
            raise AssertionError(f"ValueError instead of Incorrect: {e!r}") from None
        else:
            raise AssertionError("priority 12345 accepted")

    run(node, pid, check)


def test_aliases(t1):
    node, pid = t1

    def check(p):
        assert p.aliases() == []
        a1, a2 = p.create_alias(), p.create_alias()
        assert p.aliases() == [a1, a2]
        p.delete_alias(a1)
        assert p.aliases() == [a2]

    run(node, pid, check)


def test_events(t1):
    node, pid = t1

    def check(p):
        assert p.events() == []
        p.register_event("e1", notify=True, buffer=10)
        p.register_event("e2", notify=True, buffer=10)
        assert set(p.events()) == {"e1", "e2"}
        p.unregister_event("e1")
        assert p.events() == ["e2"]

    run(node, pid, check)


def test_spawn(t1):
    node, pid = t1

    def check(p):
        child = p.spawn(Probe)
        assert p.node.process_info(child).parent == p.pid
        reg = p.spawn_register("reg", Probe)
        info = p.node.process_info(reg)
        assert info.parent == p.pid and info.name == "reg"

    run(node, pid, check)

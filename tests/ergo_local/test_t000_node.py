"""Ergo's t000_node_test.go (TestT0NodeBasic), translated: the node's own API."""

from __future__ import annotations

import pytest
from ergo_probe import Probe, node_with_env

from ergo import (
    PID,
    Atom,
    Incorrect,
    NameUnknown,
    NodeTerminated,
    ProcessState,
    ProcessUnknown,
    Taken,
    TerminateReasonNormal,
)


def test_t0_node_basic(backend):
    env = {"A": 1, "B": 1.23, "C": "d"}
    node = node_with_env(backend, "t0node@localhost", env)
    assert node.name == "t0node@localhost" and node.is_alive()
    info = node.info()
    assert info.name == "t0node@localhost"
    assert (info.processes_total, info.processes_running, info.processes_zombee) == (0, 0, 0)
    assert (info.registered_aliases, info.registered_names) == (0, 0)

    # env: case-insensitive names, None deletes
    assert node.env_list() == env
    assert node.env("a") == 1
    node.set_env("a", None)
    assert node.env("a") is None
    node.set_env("a", "v")
    assert node.env("a") == "v"

    pid = node.spawn(Probe)
    node.register_name("test", pid)
    with pytest.raises(Taken):
        node.register_name("test", pid)
    with pytest.raises(ProcessUnknown):
        node.register_name("test", PID("", 0))  # Ergo's zero gen.PID{}

    pinfo = node.process_info(pid)
    assert pinfo.pid == pid and pinfo.name == "test"
    assert pinfo.state in (ProcessState.SLEEP, ProcessState.RUNNING)
    assert pinfo.parent == node.pid and pinfo.leader == node.pid

    info = node.info()
    assert info.processes_total == 1 and info.processes_running <= 1 and info.registered_names == 1

    assert node.unregister_name("test") == pid
    with pytest.raises(NameUnknown):
        node.unregister_name("test")
    assert node.process_list() == [pid]

    # a sleeping process is killed at once
    node.kill(pid)
    assert node.process_list() == []
    with pytest.raises(ProcessUnknown):
        node.process_info(pid)
    assert node.info().processes_total == 0

    pid = node.spawn_register("test2", Probe)
    assert node.info().registered_names == 1
    assert node.process_info(pid).name == "test2"
    node.send(pid, 1)
    node.send(Atom("test2"), 1)
    with pytest.raises(ProcessUnknown):
        node.send(Atom("unknown"), 1)

    assert node.unregister_name("test2") == pid
    # Ergo reports an empty name as ""; here it is None (documented difference)
    assert node.process_info(pid).name is None

    with pytest.raises(Incorrect):  # nil cannot be a reason
        node.send_exit(pid, None)
    node.send_exit(pid, TerminateReasonNormal)

    # Ergo's WaitWithTimeout(0) returns ErrTimeout; here wait() answers False (documented)
    assert node.wait(timeout=0) is False
    node.stop()
    assert not node.is_alive()
    with pytest.raises(NodeTerminated):
        node.info()
    # Ergo's WaitWithTimeout on a stopped node returns ErrNodeTerminated; wait() answers
    # True: the node has stopped, which is what the caller waits for (documented)
    assert node.wait(timeout=0) is True

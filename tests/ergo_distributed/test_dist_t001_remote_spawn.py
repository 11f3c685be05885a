"""Ergo's t001_remote_spawn_test.go (TestT1RemoteNodeSpawn, TestT1ProcessRemoteSpawn),
translated: node2 enables spawning "tst"; node1 (and a process of node1) spawns it there,
plainly and registered; the PIDs are node2's processes; registering a taken name fails
with ``Taken``.

Differences pinned here (the project's, documented in docs/network.md):
- ``RemoteNode.spawn`` / ``spawn_register`` return a Future (``node.wait_for`` it, or
  ``await`` it in a handler) instead of blocking.
- A name the peer did not enable is ``NotAllowed`` (Ergo: ``ErrNameUnknown``): enabled for
  nobody and enabled for other nodes read the same from outside.
- The spawned process's parent and leader are node2's core (Ergo: the requesting PID,
  which lives on another node), and it does not inherit the requester's log level or env
  (Ergo's ``ExposeEnvRemoteSpawn`` has no counterpart).
"""

from __future__ import annotations

import pytest
from dist_probe import Probe, remote, remote_spawn, run

from ergo import Actor, LogLevel, NotAllowed, Taken


class Tst(Actor):
    pass


def test_node_remote_spawn(nodes):
    node1, node2 = nodes
    node2.network().enable_spawn("tst", Tst)
    node1.set_env("env1", 123)  # Ergo's node1 has env1 and env2, exposed to what it spawns remotely
    node1.set_env("env2", "example")
    node1.log.level = LogLevel.TRACE
    remote1 = remote(node1, node2.name)
    with pytest.raises(NotAllowed):
        node1.wait_for(remote1.spawn("unknown"))
    pid = node1.wait_for(remote1.spawn("tst"))
    info = node2.process_info(pid)
    assert pid.node == node2.name and info.behavior.endswith("Tst")
    assert info.parent == node2.pid and info.leader == node2.pid  # (Ergo: node1's core)
    # (Ergo: node1's log level and env; here node2's own)
    assert info.log_level == node2.log.level != LogLevel.TRACE
    assert "ENV1" not in info.env and "ENV2" not in info.env

    pid = node1.wait_for(remote1.spawn_register("regtst", "tst"))
    info = node2.process_info(pid)
    assert info.name == "regtst"
    assert info.parent == node2.pid and info.leader == node2.pid


def test_process_remote_spawn(nodes):
    node1, node2 = nodes
    node2.network().enable_spawn("tst", Tst)
    remote(node1, node2.name)
    probe = node1.spawn(Probe)

    async def spawn(p):
        p.log.level = LogLevel.WARNING  # as Ergo's TestSpawn, which expects the new process to inherit these
        p.set_env("penv", "pval")
        with pytest.raises(NotAllowed):
            await remote_spawn(p, node2.name, "unknown")
        return await remote_spawn(p, node2.name, "tst")

    pid = run(node1, probe, spawn)
    info = node2.process_info(pid)
    assert info.pid == pid
    assert info.parent == node2.pid and info.leader == node2.pid  # (Ergo: the requesting process and its leader)
    # (Ergo: the requester's log level and env; here node2's own, nothing of node1's crosses)
    assert info.log_level == node2.log.level != LogLevel.WARNING
    assert "PENV" not in info.env and "PENV" in node1.process_info(probe).env  # (names are upper-cased)

    async def spawn_register(p):
        pid = await remote_spawn(p, node2.name, "tst", register="regname")
        try:
            await remote_spawn(p, node2.name, "tst", register="regname")
        except Taken as e:
            return pid, e
        return pid, None

    pid, error = run(node1, probe, spawn_register)
    assert node2.process_info(pid).name == "regname"
    assert isinstance(error, Taken)  # the name is taken on node2: the requester learns it

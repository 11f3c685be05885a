"""Ergo's t001_remote_spawn_test.go (TestT1RemoteNodeSpawn, TestT1ProcessRemoteSpawn),
translated: node2 enables spawning "tst"; node1 (``RemoteNode.spawn``) and a process of
node1 (``Process.remote_spawn``, Ergo's ``RemoteSpawn``) spawn it there, plainly and
registered; the PIDs are node2's processes; the new process takes the requester's log
level (node1's for ``RemoteNode.spawn``, the process's for ``remote_spawn``), as Ergo's
``ProcessOptionsExtra.ParentLogLevel``; registering a taken name fails with ``Taken``.

Differences pinned here (the project's, documented in docs/network.md):
- ``RemoteNode.spawn`` / ``spawn_register`` and ``Process.remote_spawn`` /
  ``remote_spawn_register`` return a Future (``node.wait_for`` it, or ``await`` it in a
  handler) instead of blocking; ``remote_spawn_register`` takes the name to register
  first, as every ``spawn_register`` here (Ergo's ``RemoteSpawnRegister(node, name,
  register)`` puts it after the spawnable name).
- A name the peer did not enable is ``NotAllowed`` (Ergo: ``ErrNameUnknown``): enabled for
  nobody and enabled for other nodes read the same from outside.
- The spawned process's parent and leader are node2's core (Ergo: the requesting PID,
  which lives on another node); and the requester's env never crosses (Ergo's
  ``SecurityOptions.ExposeEnvRemoteSpawn`` has no counterpart: what the new process needs
  goes in ``ProcessOptions(env=...)``, which crosses).
"""

from __future__ import annotations

import pytest
from dist_probe import Probe, remote, run

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
    assert info.log_level == node1.log.level == LogLevel.TRACE != node2.log.level  # Ergo's ParentLogLevel
    assert info.parent == node2.pid and info.leader == node2.pid  # (Ergo: node1's core)
    assert "ENV1" not in info.env and "ENV2" not in info.env  # (Ergo: with ExposeEnvRemoteSpawn, node1's env)

    pid = node1.wait_for(remote1.spawn_register("regtst", "tst"))
    info = node2.process_info(pid)
    assert info.name == "regtst" and info.log_level == LogLevel.TRACE
    assert info.parent == node2.pid and info.leader == node2.pid


def test_process_remote_spawn(nodes):
    node1, node2 = nodes
    node2.network().enable_spawn("tst", Tst)
    remote(node1, node2.name)
    probe = node1.spawn(Probe)

    async def spawn(p):
        p.log.level = LogLevel.WARNING  # Ergo's TestSpawn: the new process inherits it
        p.set_env("penv", "pval")
        with pytest.raises(NotAllowed):
            await p.remote_spawn(node2.name, "unknown")
        return await p.remote_spawn(node2.name, "tst")

    pid = run(node1, probe, spawn)
    info = node2.process_info(pid)
    assert info.pid == pid
    assert info.log_level == LogLevel.WARNING != node2.log.level  # the requesting process's level
    assert info.parent == node2.pid and info.leader == node2.pid  # (Ergo: the requesting process and its leader)
    assert "PENV" not in info.env and "PENV" in node1.process_info(probe).env  # (names are upper-cased)

    async def spawn_register(p):
        p.log.level = LogLevel.DEBUG  # Ergo's TestSpawnRegister
        pid = await p.remote_spawn_register(node2.name, "regname", "tst")
        try:
            await p.remote_spawn_register(node2.name, "regname", "tst")
        except Taken as e:
            return pid, e
        return pid, None

    pid, error = run(node1, probe, spawn_register)
    info = node2.process_info(pid)
    assert info.name == "regname" and info.log_level == LogLevel.DEBUG
    assert isinstance(error, Taken)  # the name is taken on node2: the requester learns it


def test_process_remote_spawn_on_its_own_node_is_not_allowed(nodes):
    """Ergo's ``RemoteSpawn`` to the process's own node: ``ErrNotAllowed``."""
    node1, _ = nodes
    probe = node1.spawn(Probe)
    with pytest.raises(NotAllowed):
        run(node1, probe, lambda p: p.remote_spawn(node1.name, "tst"))


def test_process_remote_spawn_connects_first(cluster, nodes):
    """Ergo's ``RemoteSpawn`` goes through ``GetConnection``: a peer not connected yet is
    dialed, and the spawn is sent once the connection is up."""
    node1, node2 = nodes
    node2.network().enable_spawn("tst", Tst)
    assert node1.network().nodes() == []
    probe = node1.spawn(Probe)

    async def spawn(p):
        return await p.remote_spawn(node2.name, "tst")

    pid = run(node1, probe, spawn)
    assert pid.node == node2.name and node2.process_info(pid).behavior.endswith("Tst")

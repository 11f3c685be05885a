"""Ergo's t004_call_test.go (TestT4CallRemote), translated: a process of node1 spawns
"pong" on node2 and calls it by PID, by registered name and by alias; pong answers with
the request, which comes back equal.

Difference pinned here: Ergo's ``CallImportant`` cases (a call to a missing process fails
with ``ErrProcessUnknown`` instead of timing out) are how *every* remote call behaves
here: the target's node answers a request it cannot deliver with the error at once.
"""

from __future__ import annotations

from dist_probe import Probe, remote, remote_spawn, run

from ergo import PID, Actor, Alias, ProcessID, ProcessUnknown


class Pong(Actor):
    def handle_call(self, from_, ref, request):
        if request == "alias":
            return self.create_alias()
        return request  # the request back, as the answer


def _t4(nodes):
    node1, node2 = nodes
    node2.network().enable_spawn("pong", Pong)
    remote(node1, node2.name)
    return node1, node2, node1.spawn(Probe)


def test_call_remote_pid(nodes):
    node1, node2, probe = _t4(nodes)

    async def case(p):
        pid = await remote_spawn(p, node2.name, "pong")
        return await p.call(pid, 123)

    assert run(node1, probe, case) == 123


def test_call_remote_process_id(nodes):
    node1, node2, probe = _t4(nodes)

    async def case(p):
        await remote_spawn(p, node2.name, "pong", register="regpong")
        return await p.call(ProcessID("regpong", node2.name), 123.456)

    assert run(node1, probe, case) == 123.456


def test_call_remote_alias(nodes):
    node1, node2, probe = _t4(nodes)

    async def case(p):
        pid = await remote_spawn(p, node2.name, "pong")
        alias = await p.call(pid, "alias")
        assert type(alias) is Alias and alias.node == node2.name
        return await p.call(alias, "test value")

    assert run(node1, probe, case) == "test value"


def test_call_unknown_remote_targets_fails_at_once(cluster, nodes):
    """Ergo's CallImportant to an unknown PID, name and alias: ``ProcessUnknown``; here a
    plain call does the same, well before its timeout."""
    node1, node2, probe = _t4(nodes)

    async def case(p):
        pid = await remote_spawn(p, node2.name, "pong")
        alias = await p.call(pid, "alias")
        targets = [PID(pid.node, 100000, pid.creation), ProcessID("unknown_process", node2.name),
                   Alias(alias.node, alias.creation, (alias.id[0] + 100000, *alias.id[1:]))]
        errors = []
        for target in targets:
            try:
                await p.call(target, "ping", timeout=60)
            except ProcessUnknown as e:
                errors.append(e)
        return errors

    started = cluster.now
    assert len(run(node1, probe, case)) == 3
    assert cluster.now - started < 5

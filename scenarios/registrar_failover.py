"""Registrar failover under load.

Cluster: three nodes on ``host1`` (``a``, ``b``, ``c``), which share the host's registrar
(port 4499: the first to start serves it, the others register with it), and two client
nodes on ``host2`` and ``host3``.  No static routes: every dial resolves the name
through ``host1``'s registrar.  Each ``host1`` node runs a ``Counter`` registered
``"counter"``.

Workload: a ``Caller`` on each client calls ``counter`` on every ``host1`` node it knows,
one call after another, round after round (each call answers ``(creation, n, time)``).

Faults (from the seed): the node serving ``host1``'s registrar is killed (the others fail
over: one of them serves); maybe a second time, the new server; a new node
``late@host1`` starts at a drawn moment after the first kill (perhaps while no one
serves), and the first killed node starts again (a new creation) at another; the clients
add both to what they call.

Safety: a client's calls to a node that was never killed never fail (the connection made
before the faults needs no registrar); the answers of each node's run to each client are
strictly increasing (no call is executed twice); no answer comes from a killed run after
it was killed.

Liveness: after a quiet phase, exactly one node of ``host1`` serves its registrar and
holds the name of every live node there, and every client's calls to every live node
succeed.
"""

from __future__ import annotations

from typing import Any

import sim
from ergo import Actor, ProcessID
from sim.scenario import node_options, process

REGISTRAR = 4499
ROUND = 0.1


class Counter(Actor):
    def init(self) -> None:
        self.n = 0

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        self.n += 1
        # when it answered, by its host's clock (never skewed here): a reply may still be in
        # flight when its node is killed
        return (self.node.creation, self.n, self.node.scheduler.now())


class Caller(Actor):
    """Calls ``counter`` on each target in turn; keeps (time, target, answer or error)."""

    def init(self, targets: list[str]) -> None:
        self.targets = list(targets)
        self.answers: list[tuple[float, str, Any]] = []
        self.send(self.pid, "round")

    async def handle_message(self, from_: Any, message: Any) -> None:
        if isinstance(message, tuple) and message[0] == "add":
            self.targets.append(message[1])
            return
        for target in list(self.targets):
            try:
                answer = await self.call(ProcessID("counter", target), "n", timeout=2)
            except Exception as e:
                answer = e
            self.answers.append((self.node.scheduler.now(), target, answer))
        self.send_after(self.pid, "round", ROUND)


def start_server_node(s: sim.Sim, name: str) -> Any:
    node = s.start_node(name, node_options(registrar_port=REGISTRAR))
    node.spawn_register("counter", Counter)
    return node


def scenario(s: sim.Sim) -> None:
    rng = s.world.rng("scenario/registrar_failover")
    servers = ["a@host1", "b@host1", "c@host1"]
    for name in servers:
        start_server_node(s, name)
    clients = [s.start_node(name, node_options(registrar_port=REGISTRAR)) for name in ("x@host2", "y@host3")]
    callers = [c.spawn(Caller, servers) for c in clients]
    s.run_for(rng.uniform(1.0, 2.0))

    killed: dict[str, tuple[float, int]] = {}  # name -> (when, the creation of the run killed)
    first = s.kill_registrar("host1")
    killed[first] = (s.now, s.node(first).creation)
    late_at = s.now + rng.uniform(0.0, 2.0)
    back_at = s.now + rng.uniform(0.5, 3.0)
    second_at = s.now + rng.uniform(1.5, 4.0) if rng.random() < 0.5 else None
    events = sorted([(late_at, "late"), (back_at, "back")] + ([(second_at, "second")] if second_at else []))
    for at, what in events:
        s.run_for(max(0.0, at - s.now))
        if what == "late":
            start_server_node(s, "late@host1")
            for c, pid in zip(clients, callers):
                c.send(pid, ("add", "late@host1"))
        elif what == "back":
            start_server_node(s, first)
        else:
            name = s.kill_registrar("host1")
            killed.setdefault(name, (s.now, s.node(name).creation))
    quiet = s.now
    s.run_for(8.0)  # quiet: failover retries (1 s), resolves (3 s), call timeouts (2 s) all settle

    host1 = s.world.hosts["host1"]
    live = sorted(name for name, node in host1.nodes.items() if node.is_alive())
    never_killed = [n for n in servers if n not in killed]
    for client, pid in zip(clients, callers):
        me = str.__str__(client.name)
        log = process(client, pid, Caller).answers
        # safety
        for t, target, answer in log:
            if target in never_killed:
                assert not isinstance(answer, BaseException), \
                    f"{me}: a call to {target}, never killed, failed at {t:.3f}: {answer!r}"
            elif target in killed and not isinstance(answer, BaseException) and answer[0] == killed[target][1]:
                assert answer[2] <= killed[target][0], \
                    f"{me}: {target} answered at {answer[2]:.3f} from the run killed at {killed[target][0]:.3f}"
        runs: dict[tuple[str, int], list[int]] = {}
        for _, target, answer in log:
            if not isinstance(answer, BaseException):
                runs.setdefault((target, answer[0]), []).append(answer[1])
        for (target, creation), ns in runs.items():
            assert all(x < y for x, y in zip(ns, ns[1:])), \
                f"{me}: {target} (creation {creation}) answered out of order or twice: {ns}"
        # liveness: the last round after the quiet phase reached every live node
        last: dict[str, Any] = {}
        for t, target, answer in log:
            if t > quiet + 6.0:
                last[target] = answer
        for name in live:
            answer = last.get(name)
            assert answer is not None and not isinstance(answer, BaseException), \
                f"{me}: no answer from {name} after the quiet phase (last: {answer!r})"
            assert answer[0] == host1.nodes[name].creation, f"{me}: {name} answered from an old run"
    modes = {name: host1.nodes[name].network()._registrar.info() for name in live}
    serving = [name for name, info in modes.items() if info["mode"] == "server"]
    assert len(serving) == 1, f"after the failover, host1's registrar is served by {serving}"
    registered = set(modes[serving[0]]["registered"])
    assert set(live) <= registered, f"the registrar of host1 lacks {sorted(set(live) - registered)}"

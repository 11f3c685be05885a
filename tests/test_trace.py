"""The trace of a simulation, and the determinism of a seed across processes and hash seeds.

The scenarios are top-level functions taking a ``Sim``: ``sim.check_determinism`` runs them
again in child processes under other ``PYTHONHASHSEED`` values.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from network_support import options
from support import Collector

import ergo
import sim
from ergo.gen.errors import Incorrect
from ergo.gen.options import AcceptorOptions
from ergo.network import NetworkRoute
from sim.trace import describe, reason_text

# -- behaviours of the workloads --------------------------------------------------------


class Echo(ergo.Actor):
    """Answers a call with what it got, a set of strings and a dict; never answers "hold"."""

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        if request == "hold":
            return ergo.NoReply
        return (request, {"alpha", "beta", "gamma", "delta", "epsilon"}, {"k": [1, 2.5, None]})

    def handle_message(self, from_: Any, message: Any) -> None:
        if message == "boom":
            raise ValueError("boom")


class Caller(ergo.Actor):
    """Calls each target it is sent, reports each answer (or the error's class) to ``report``."""

    def init(self, report: Any) -> None:
        self.report = report

    async def handle_message(self, from_: Any, message: Any) -> None:
        target, request, timeout = message
        try:
            answer = await self.call(target, request, timeout=timeout)
        except Exception as e:
            answer = type(e).__name__
        self.send(self.report, (request, answer))


class Watcher(ergo.Actor):
    """Links to or monitors what ``init`` is given; traps exits so that it lives on."""

    def init(self, links: list[Any], monitors: list[Any]) -> None:
        self.trap_exit = True
        for t in links:
            self.link(t)
        for t in monitors:
            self.monitor(t)

    def handle_message(self, from_: Any, message: Any) -> None:
        pass


class Producer(ergo.Actor):
    """Registers the event "ticks" and sends one each 0.25 s, five times."""

    def init(self) -> None:
        self.token = self.register_event("ticks")
        self.n = 0
        self.send_after(self.pid, "tick", 0.25)

    def handle_message(self, from_: Any, message: Any) -> None:
        self.n += 1
        self.send_event("ticks", self.token, {"n": self.n, "tags": frozenset({"x", "y", "z"})})
        if self.n < 5:
            self.send_after(self.pid, "tick", 0.25)


class Subscriber(ergo.Actor):
    def init(self, event: Any) -> None:
        self.monitor_event(event)

    def handle_event(self, message: Any) -> None:
        pass


class Idle(ergo.MetaBehavior):
    """A meta-process that waits until its owner ends."""


class Owner(ergo.Actor):
    def init(self) -> None:
        self.spawn_meta(Idle())


# -- the workloads -------------------------------------------------------------------------


def _cluster(s: sim.Sim, n: int) -> list[ergo.Node]:
    """``n`` networked nodes on hosts of their own, with static routes between all of them
    and a latency of its own for each pair."""
    nodes = [s.start_node(f"n{i}@host{i}", options(acceptors=(AcceptorOptions(port=11144),)))
             for i in range(1, n + 1)]
    for a in nodes:
        for b in nodes:
            if a is not b:
                name = str.__str__(b.name)
                a.network().add_route(f"^{name}$", NetworkRoute(name.split("@")[1], 11144))
    for i in range(1, n + 1):
        for j in range(i + 1, n + 1):
            s.set_latency(f"host{i}", f"host{j}", 0.001 * (i + j))
    return nodes


def networked_workload(s: sim.Sim) -> list[Any]:
    """Four nodes on four hosts: calls by name across nodes (answered, held until they time
    out), messages carrying sets, links and monitors of processes and of nodes, events
    fanned out to two nodes, a meta-process, a panic; then a node stops gracefully and
    another is forced down.  Returns what the callers reported."""
    n1, n2, n3, n4 = _cluster(s, 4)
    echoes = {n.name: n.spawn_register("echo", Echo) for n in (n1, n2, n3, n4)}
    report = n1.spawn_register("report", Collector)
    producer = n3.spawn_register("producer", Producer)
    n1.spawn(Subscriber, ergo.Event("ticks", n3.name))
    n2.spawn(Subscriber, ergo.Event("ticks", n3.name))
    n2.spawn(Owner)
    n2.spawn(Watcher, [echoes[n3.name]], [ergo.ProcessID("echo", n4.name), n4.name])
    n1.spawn(Watcher, [ergo.ProcessID("echo", n2.name)], [echoes[n4.name], producer])
    callers = [n1.spawn(Caller, report), n2.spawn(Caller, report)]
    for round_ in range(3):
        for caller in callers:
            for node in (n1, n2, n3, n4):
                if node.name != caller.node:
                    caller_node = n1 if caller.node == n1.name else n2
                    caller_node.send(caller, (ergo.ProcessID("echo", node.name), f"r{round_}", 5.0))
    n1.send(callers[0], (ergo.ProcessID("echo", n3.name), "hold", 0.5))
    for name, pid in echoes.items():
        n1.send(pid, {"from": "n1", "names": {"one", "two", "three", "four"}, "to": str.__str__(name)})
    s.run_for(1.0)
    n2.send(echoes[n2.name], "boom")  # a panic: the watcher on n1 linked to it by name gets the exit
    s.run_for(0.5)
    n4.stop()
    s.run_for(0.5)
    n3.stop_force()
    s.run_for(2.0)
    answers: list[Any] = n1.call(report, "messages")
    for n in (n1, n2):
        n.stop()
    return answers


def unstable_workload(s: sim.Sim) -> None:
    """Sends in the order a set of strings iterates: what the determinism check must catch."""
    node = s.start_node("solo@host1")
    inbox = node.spawn(Collector)
    for word in {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}:
        node.send(inbox, word)
    s.run()


# -- what the trace records ----------------------------------------------------------------


def test_tracing_is_off_by_default_and_nodes_then_have_no_tracer():
    s = sim.Sim(1)
    node = s.start_node("a@host1")
    node.send(node.spawn(Collector), "hi")
    s.run()
    assert not s.trace.enabled
    assert s.trace.events == []
    assert node._tracer is None


def test_the_trace_records_each_kind_of_event_with_time_and_node():
    s = sim.Sim(3, trace=True)
    n1, n2 = _cluster(s, 2)
    report = n1.spawn(Collector)
    echo = n2.spawn_register("echo", Echo)
    caller = n1.spawn(Caller, report)
    n1.spawn(Watcher, [echo], [echo])
    n1.send(caller, (ergo.ProcessID("echo", n2.name), "ping", 5.0))
    s.run_for(1.0)
    n2.send(echo, "boom")
    s.run_for(1.0)
    n2.stop_force()
    s.run_for(1.0)
    events = s.trace.events
    kinds = [e["kind"] for e in events]
    for kind in ("node_start", "spawn", "deliver", "connect", "reply", "signal", "terminate", "disconnect",
                 "node_stop"):
        assert kind in kinds, kind
    assert all(type(e["t"]) in (int, float) for e in events)
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    call = next(e for e in events if e["kind"] == "deliver" and e["what"] == "call")
    assert call["node"] == "n2@host2" and call["to"] == "n2@host2/1001" and call["from"] == "n1@host1/1002"
    assert call["msg"] == "'ping'" and call["via"] == "echo"
    reply = next(e for e in events if e["kind"] == "reply")
    assert reply["ref"] == call["ref"] and reply["to"] == "n1@host1/1002" and reply["t"] > call["t"]
    assert reply["msg"].startswith("('ping', {'alpha', 'beta', 'delta', 'epsilon', 'gamma'}")
    panic = next(e for e in events if e["kind"] == "terminate" and e["pid"] == "n2@host2/1001")
    assert panic["reason"] == "panic" and panic["node"] == "n2@host2" and panic["t"] == 1.0
    signals = [e for e in events if e["kind"] == "signal" and e["to"] == "n1@host1/1003"]
    assert sorted(e["what"] for e in signals) == ["down", "exit"]
    assert all(e["reason"] == "panic" and e["from"] == "n2@host2/1001" for e in signals)
    assert next(e for e in signals if e["what"] == "exit")["link"] is True
    up = [e for e in events if e["kind"] == "connect"]
    assert {(e["node"], e["peer"], e["dialed"]) for e in up} == {("n1@host1", "n2@host2", True),
                                                                  ("n2@host2", "n1@host1", False)}
    down = next(e for e in events if e["kind"] == "disconnect" and e["node"] == "n1@host1")
    assert down["peer"] == "n2@host2" and down["reason"].startswith("NoConnection: ") and down["t"] > 2.0


def test_a_call_that_times_out_is_recorded():
    s = sim.Sim(1, trace=True)
    node = s.start_node("a@host1")
    report = node.spawn(Collector)
    node.spawn_register("echo", Echo)
    node.send(node.spawn(Caller, report), ("echo", "hold", 0.5))
    s.run_for(1.0)
    (expired,) = [e for e in s.trace.events if e["kind"] == "call_timeout"]
    assert expired["t"] == 0.5 and expired["timeout"] == 0.5 and expired["to"] == "a@host1/1003"


def test_tracing_started_later_covers_running_nodes_and_stopping_ends_it():
    s = sim.Sim(1)
    node = s.start_node("a@host1")
    inbox = node.spawn(Collector)
    node.send(inbox, "before")
    s.run()
    s.trace.start()
    node.send(inbox, "during")
    later = s.start_node("b@host1")
    s.run()
    s.trace.stop()
    node.send(inbox, "after")
    s.run()
    assert [e.get("msg") for e in s.trace.events if e["kind"] == "deliver"] == ["'during'"]
    assert [e["node"] for e in s.trace.events if e["kind"] == "node_start"] == ["b@host1"]
    assert node._tracer is None and later._tracer is None


def test_a_meta_process_is_traced_from_spawn_to_termination():
    s = sim.Sim(1, trace=True)
    node = s.start_node("a@host1")
    owner = node.spawn(Owner)
    s.run()
    node.kill(owner)
    s.run()
    metas = [e for e in s.trace.events if e.get("meta")]
    assert len(metas) == 1 and metas[0]["parent"] == "a@host1/1001" and metas[0]["behavior"] == "Idle"
    ended = [e["pid"] for e in s.trace.events if e["kind"] == "terminate"]
    assert ended == ["a@host1/1001", metas[0]["pid"]]


def test_a_fault_is_recorded_with_its_time_and_details():
    s = sim.Sim(1, trace=True)
    s.host("host1")
    s.run_for(2.5)
    s.world.note_fault("partition", a="host1", b="host2", one_way=True, latency=float("inf"))
    (fault,) = s.trace.events
    assert fault == {"t": 2.5, "kind": "fault", "fault": "partition", "a": "host1", "b": "host2", "one_way": True,
                     "latency": "inf"}
    with pytest.raises(Incorrect, match="cannot be named"):
        s.world.note_fault("crash", t=1)
    with pytest.raises(Incorrect, match="non-empty str"):
        s.world.note_fault("")


def test_a_fault_is_not_recorded_while_tracing_is_off():
    s = sim.Sim(1)
    s.world.note_fault("crash", host="host1")
    assert s.trace.events == []


def test_the_written_file_hashes_as_the_trace_and_reads_back(tmp_path):
    s = sim.Sim(5, trace=True)
    networked_workload(s)
    path = tmp_path / "trace.jsonl"
    s.trace.write(path)
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == s.trace.hash()
    assert data.count(b"\n") == len(s.trace) > 150
    assert sim.Trace.read(path) == s.trace.events
    assert all(line.startswith(b'{"') and b", " not in line.split(b'"msg"')[0] for line in data.splitlines())


def test_the_same_seed_gives_the_same_trace_in_one_process():
    first, second = sim.Sim(7, trace=True), sim.Sim(7, trace=True)
    networked_workload(first)
    networked_workload(second)
    assert first.trace.hash() == second.trace.hash()
    assert len(first.trace) > 150


def test_tracing_does_not_change_the_run():
    """The tracer only watches: the same seed with and without it ends the same way."""
    traced, untraced = sim.Sim(9, trace=True), sim.Sim(9)
    outcome = networked_workload(traced)
    assert networked_workload(untraced) == outcome
    assert traced.now == untraced.now
    assert len(outcome) == 19 and ("hold", "Timeout") in outcome


# -- describing values the same way in every process ---------------------------------------


class Opaque:
    pass


def test_a_value_is_described_without_its_address_or_its_set_order():
    assert describe({"b", "a", "c"}) == "{'a', 'b', 'c'}"
    assert describe(frozenset({3, 1, 2})) == "frozenset({1, 2, 3})"
    assert describe(Opaque()) == "<Opaque>"
    assert describe((1,)) == "(1,)"
    assert describe(ergo.PID(ergo.Atom("a@h"), 1005, 1)) == "a@h/1005"
    assert describe(list(range(20))) == "[0, 1, 2, 3, 4, 5, 6, 7, ... 12 more]"
    assert describe("x" * 100).endswith("...") and len(describe("x" * 100)) < 70
    assert describe(ValueError(f"bad {Opaque()!r}")) == "ValueError('bad <test_trace.Opaque object>')"
    assert reason_text(ergo.TerminateReasonNormal) == "normal"
    assert reason_text(ergo.NoConnection("lost")) == "NoConnection: lost"


# -- determinism across processes and hash seeds --------------------------------------------


def test_a_networked_workload_gives_the_same_trace_under_other_hash_seeds_in_other_processes():
    """The whole runtime on a multi-node workload: two child processes, two hash seeds, one hash."""
    digest = sim.check_determinism(networked_workload, 11, hash_seeds=(1, 2))
    here = sim.Sim(11, trace=True)
    networked_workload(here)
    assert digest == here.trace.hash()


def test_the_determinism_check_names_the_event_where_two_runs_part():
    with pytest.raises(sim.NotDeterministic, match=r"part at event \d+:\n  PYTHONHASHSEED=1: .*\n  PYTHONHASHSEED=2:"):
        sim.check_determinism(unstable_workload, 1, hash_seeds=(1, 2))


class Trapper(ergo.Actor):
    def init(self) -> None:
        self.trap_exit = True

    def handle_message(self, from_: Any, message: Any) -> None:
        pass


class SetExiter(ergo.Actor):
    def handle_message(self, from_: Any, message: Any) -> None:
        self.send_exit(message, KeyError(frozenset({"k1", "k2", "k3", "k4", "k5", "k6"})))


def exit_reason_with_a_set(s: sim.Sim) -> None:
    """An exit reason of a class no node registered, with a set of strings, sent to another node."""
    a, b = _cluster(s, 2)
    a.send(a.spawn(SetExiter), b.spawn(Trapper))
    s.run_for(0.1)


def test_an_exit_reason_crossing_as_text_is_the_same_under_other_hash_seeds():
    # it travelled as str() of the exception: its set in the sending process's hash order
    digest = sim.check_determinism(exit_reason_with_a_set, 1, hash_seeds=(1, 2))
    here = sim.Sim(1, trace=True)
    exit_reason_with_a_set(here)
    assert digest == here.trace.hash()
    (exit_,) = [e for e in here.trace.events if e["kind"] == "signal"]
    assert exit_["reason"] == "RemoteError: KeyError, frozenset({'k1', 'k2', 'k3', 'k4', 'k5', 'k6'})"


def test_the_determinism_check_refuses_what_another_process_cannot_find():
    with pytest.raises(Incorrect, match="top level"):
        sim.check_determinism(lambda s: None, 1)
    with pytest.raises(Incorrect, match="at least two"):
        sim.check_determinism(networked_workload, 1, hash_seeds=(1, 1))


def test_a_set_encodes_to_the_same_bytes_under_any_hash_seed():
    """A set of strings iterates in an order PYTHONHASHSEED picks; its EDF bytes must not."""
    code = ("from ergo.wire import edf; "
            "print(edf.encode({'alpha','beta','gamma','delta','epsilon', frozenset({'x','y','z'})}).hex())")
    outputs = set()
    for hash_seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        outputs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                   check=True).stdout)
    assert len(outputs) == 1



def test_the_determinism_check_runs_a_scenario_named_by_its_file(tmp_path):
    script = tmp_path / "my_scenario.py"
    script.write_text(
        "import ergo\n"
        "class Ping(ergo.Actor):\n"
        "    def handle_message(self, from_, message):\n"
        "        if message:\n"
        "            self.send(self.pid, message - 1)\n"
        "def scenario(s):\n"
        "    node = s.start_node('a@host1')\n"
        "    node.send(node.spawn(Ping), 10)\n"
        "    s.run()\n"
    )
    digest = sim.check_determinism(f"{script}:scenario", 3)
    assert len(digest) == 64


def test_the_determinism_check_catches_state_one_run_leaves_for_the_next_in_its_process(tmp_path):
    # `python -m sim run` runs seed after seed in one worker process and a replay runs one
    # alone: a scenario whose class keeps what a run did passes in fresh processes, yet a
    # seed that failed in the runner does not fail when replayed
    script = tmp_path / "leaky.py"
    script.write_text(
        "import ergo\n"
        "class Count(ergo.Actor):\n"
        "    seen = []  # outlives its Sim\n"
        "    def handle_message(self, from_, message):\n"
        "        Count.seen.append(message)\n"
        "        if len(Count.seen) < 5:\n"
        "            self.send(self.pid, len(Count.seen))\n"
        "def scenario(s):\n"
        "    node = s.start_node('a@host1')\n"
        "    node.send(node.spawn(Count), 0)\n"
        "    s.run()\n"
    )
    with pytest.raises(sim.NotDeterministic,
                       match=r"(?s)second run of it in the same process.*7 events: first run, 3: second run"):
        sim.check_determinism(f"{script}:scenario", 3)


def test_a_scenario_that_fails_the_same_way_in_every_run_is_reported_as_failing_not_as_not_deterministic(tmp_path):
    # it was NotDeterministic ("failed under PYTHONHASHSEED=1"): a deterministic scenario
    # that fails sent its reader looking for a set's order instead of the bug
    script = tmp_path / "broken.py"
    script.write_text(
        "def scenario(s):\n"
        "    s.start_node('a@host1')\n"
        "    s.run_for(1)\n"
        "    raise RuntimeError(f'the workload broke at {s.now} near {object()!r}')\n"  # an address: every run its own
    )
    with pytest.raises(sim.ScenarioFailed) as e:
        sim.check_determinism(f"{script}:scenario", 3)
    assert not isinstance(e.value, sim.NotDeterministic)
    assert e.value.seed == 3 and e.value.error == "RuntimeError: the workload broke at 1.0 near <object object>"
    assert e.value.replay == f"python -m sim replay {script}:scenario --seed 3"
    text = str(e.value)
    assert text.startswith(f"the scenario {script}:scenario failed at seed 3, the same way in every run")
    assert "Traceback" in text and "line 4, in scenario" in text and text.endswith(e.value.replay)


#: a scenario's first line: 'beta' under hash seed 1, 'delta' under 2
_HASH_ORDERED = "    first = list({'alpha', 'beta', 'gamma', 'delta'})[0]\n"


@pytest.mark.parametrize("body, parted", [
    ("    if first == 'beta':\n        raise RuntimeError('bad luck')\n",
     "PYTHONHASHSEED=1 raised RuntimeError: bad luck, but PYTHONHASHSEED=2 passed"),
    ("    raise RuntimeError(first)\n",
     "PYTHONHASHSEED=1 raised RuntimeError: beta, but PYTHONHASHSEED=2 raised RuntimeError: delta"),
    ("    if first == 'delta':\n        raise RuntimeError('bad luck')\n",
     "PYTHONHASHSEED=1 passed, but PYTHONHASHSEED=2 raised RuntimeError: bad luck"),
], ids=["fails-under-one", "fails-differently", "passes-under-one"])
def test_runs_of_a_seed_that_end_differently_are_not_deterministic(tmp_path, body, parted):
    script = tmp_path / "lucky.py"
    script.write_text("def scenario(s):\n" + _HASH_ORDERED + body)
    with pytest.raises(sim.NotDeterministic, match=re.escape(parted) + "; their traces are the same, up to the error"):
        sim.check_determinism(f"{script}:scenario", 3, hash_seeds=(1, 2))


def test_a_scenario_failing_only_when_run_again_in_its_process_is_not_deterministic(tmp_path):
    script = tmp_path / "second.py"
    script.write_text(
        "runs = []\n"
        "def scenario(s):\n"
        "    runs.append(s)\n"
        "    s.start_node('a@host1')\n"
        "    if len(runs) > 1:\n"
        "        raise RuntimeError('left behind')\n"
    )
    with pytest.raises(sim.NotDeterministic, match=r"(?s)second run of it in the same process.*"
                       r"first run passed, but second run raised RuntimeError: left behind"):
        sim.check_determinism(f"{script}:scenario", 3)


def test_a_child_process_that_dies_is_reported_as_such(tmp_path):
    script = tmp_path / "dies.py"
    script.write_text("import os\ndef scenario(s):\n    os._exit(7)\n")
    with pytest.raises(RuntimeError, match="PYTHONHASHSEED=1 ended with status 7") as e:
        sim.check_determinism(f"{script}:scenario", 3)
    assert not isinstance(e.value, (sim.NotDeterministic, sim.ScenarioFailed))


def test_a_scenario_that_cannot_be_loaded_is_incorrect(tmp_path):
    script = tmp_path / "typo.py"
    script.write_text("def scenario(s):\n    pass\n")
    with pytest.raises(Incorrect, match="(?s)cannot be loaded.*scenari0"):
        sim.check_determinism(f"{script}:scenari0", 3)

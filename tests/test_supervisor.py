"""Supervisors by example: every rule of act/supervisor.py, on both backends unless it is
about the clock (restart intensity, shutdown timeouts, keep_order), which runs on the
simulated one, where time is exact.

A test's children are :class:`Child` actors that write what happens to them into a shared
journal (``("start", tag, pid)``, ``("term", tag, reason)``); the supervisor is a
:class:`Sup` whose spec the test gives, and ``on(node, sup, fn)`` runs ``fn(supervisor)``
inside the supervisor's own handler, where ``start_child`` and the rest are called.
"""

from __future__ import annotations

from typing import Any

import pytest
from drive import Driver, act
from support import SimBackend

from ergo import (
    PID,
    Actor,
    ExitSignal,
    Incorrect,
    MessageDownPID,
    NotAllowed,
    ProcessOptions,
    Supervisor,
    SupervisorChild,
    SupervisorChildDisabled,
    SupervisorChildDuplicate,
    SupervisorChildRunning,
    SupervisorChildSpec,
    SupervisorChildUnknown,
    SupervisorRestart,
    SupervisorRestartsExceeded,
    SupervisorSpec,
    SupervisorStrategy,
    SupervisorType,
    TerminateReason,
    TerminateReasonKill,
    TerminateReasonNormal,
    TerminateReasonPanic,
    TerminateReasonShutdown,
)


class Child(Actor):
    """``init(journal, tag)``; the message ``"crash"`` panics, ``("stop", reason)`` raises it,
    ``("sleep", s)`` suspends it in an async handler for ``s`` seconds."""

    def init(self, journal: list, tag: str, fail: Any = False) -> None:
        if fail is True or (isinstance(fail, list) and fail[0]):  # a list: fails once the test says so
            raise RuntimeError(f"{tag} cannot start")
        self.journal, self.tag = journal, tag
        journal.append(("start", tag, self.pid))

    def handle_message(self, from_: PID, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("crash")
        if message[0] == "stop":
            raise message[1]
        if message[0] == "sleep":
            return self._nap(message[1])
        return None

    async def _nap(self, seconds: float) -> None:
        await self.sleep(seconds)

    def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
        return (self.tag, request)

    def terminate(self, reason: BaseException) -> None:
        self.journal.append(("term", self.tag, reason))


class Sup(Supervisor):
    """``init(journal, spec, tag="sup")``: returns ``spec``; calls run functions in its handler."""

    def init(self, journal: list, spec: SupervisorSpec, tag: str = "sup") -> SupervisorSpec:
        self.journal, self.tag = journal, tag
        journal.append(("start", tag, self.pid))
        return spec

    def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
        try:
            return ("ok", request(self))
        except Exception as e:
            return ("error", e)

    def handle_message(self, from_: PID, message: Any) -> None:
        if message[0] == "stop":
            raise message[1]
        if message == ("async",):
            return self._later()  # type: ignore[return-value]
        return None

    async def _later(self) -> None:
        pass

    def handle_child_start(self, name: Any, pid: PID) -> None:
        self.journal.append(("child_start", name, pid))

    def handle_child_terminate(self, name: Any, pid: PID, reason: BaseException) -> None:
        self.journal.append(("child_terminate", name, pid, reason))

    def terminate(self, reason: BaseException) -> None:
        self.journal.append(("term", self.tag, reason))


def on(node, sup: PID, fn) -> Any:
    status, value = node.call(sup, fn)
    if status == "error":
        raise value
    return value


def spec(journal: list, names: str = "abc", type: str = "one_for_one", strategy: str = "transient",
         intensity: int = 5, period: float = 5.0, keep_order: bool = False, **kw: Any) -> SupervisorSpec:
    return SupervisorSpec(
        children=[SupervisorChildSpec(n, Child, (journal, n)) for n in names],
        type=type,
        restart=SupervisorRestart(strategy=strategy, intensity=intensity, period=period, keep_order=keep_order),
        **kw,
    )


def events(journal: list, kind: str) -> list[str]:
    return [e[1] for e in journal if e[0] == kind]


def watch(node, target: PID) -> tuple[PID, list]:
    """A driver that monitors ``target``; its journal gets the down message."""
    journal: list = []
    d = node.spawn(Driver, journal)
    act(node, d, lambda p: p.monitor(target))
    return d, journal


def down_reason(journal: list) -> BaseException:
    (down,) = [m for m in journal if isinstance(m, MessageDownPID)]
    return down.reason


# -- strategies -----------------------------------------------------------------------------


def test_children_start_in_spec_order_registered_under_their_names(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j))
    assert events(j, "start") == ["sup", "a", "b", "c"]
    children = on(node, sup, lambda s: s.children())
    assert [c.spec for c in children] == ["a", "b", "c"]
    assert [node.whereis(c.name) for c in children] == [c.pid for c in children]
    assert all(node.process_info(c.pid).parent == sup for c in children)
    assert children[0] == SupervisorChild("a", "a", children[0].pid, False, False)


def test_one_for_one_restarts_only_the_child_that_died(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j))
    before = {c.spec: c.pid for c in on(node, sup, lambda s: s.children())}
    j.clear()
    node.send("b", "crash")
    backend.settle()
    assert j == [("term", "b", TerminateReasonPanic), ("start", "b", node.whereis("b"))]
    after = {c.spec: c.pid for c in on(node, sup, lambda s: s.children())}
    assert after["a"] == before["a"] and after["c"] == before["c"] and after["b"] != before["b"]
    assert node.call("b", "ping") == ("b", "ping")  # the new one serves under the name


def test_all_for_one_stops_the_others_last_first_then_starts_all_in_order(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j, type="all_for_one"))
    j.clear()
    node.send("b", "crash")
    backend.settle()
    shutdown = ExitSignal(sup, TerminateReasonShutdown)
    assert [e[:2] for e in j] == [("term", "b"), ("term", "c"), ("term", "a"),
                                  ("start", "a"), ("start", "b"), ("start", "c")]
    assert j[1][2] == shutdown and j[2][2] == shutdown
    assert on(node, sup, lambda s: [c.pid is not None for c in s.children()]) == [True, True, True]


def test_rest_for_one_restarts_the_child_and_those_started_after_it(backend):
    node, j = backend.node(), []
    node.spawn(Sup, j, spec(j, names="abcd", type="rest_for_one"))
    a = node.whereis("a")
    j.clear()
    node.send("b", "crash")
    backend.settle()
    assert [e[:2] for e in j] == [("term", "b"), ("term", "d"), ("term", "c"),
                                  ("start", "b"), ("start", "c"), ("start", "d")]
    assert node.whereis("a") == a


def test_all_for_one_does_not_restart_a_temporary_sibling(backend):
    node, j = backend.node(), []
    s = spec(j, type="all_for_one")
    s.children[2].restart = "temporary"
    sup = node.spawn(Sup, j, s)
    j.clear()
    node.send("a", "crash")
    backend.settle()
    assert [e[:2] for e in j] == [("term", "a"), ("term", "c"), ("term", "b"), ("start", "a"), ("start", "b")]
    assert on(node, sup, lambda s: [c.pid is None for c in s.children()]) == [False, False, True]


def test_simple_one_for_one_starts_instances_on_demand_and_restarts_them_with_their_args(backend):
    node, j = backend.node(), []
    s = SupervisorSpec(children=[SupervisorChildSpec("w", Child, (j, "default"))], type="simple_one_for_one")
    sup = node.spawn(Sup, j, s)
    assert events(j, "start") == ["sup"]  # nothing started with it
    one = on(node, sup, lambda s: s.start_child("w", j, "one"))
    two = on(node, sup, lambda s: s.start_child("w"))
    assert events(j, "start") == ["sup", "one", "default"]
    assert node.process_info(one).name is None  # instances are not registered
    assert [(c.spec, c.name, c.pid) for c in on(node, sup, lambda s: s.children())] == [("w", None, one),
                                                                                       ("w", None, two)]
    node.send(one, "crash")
    backend.settle()
    assert events(j, "start")[-1] == "one"  # restarted with the args it was started with
    assert len(on(node, sup, lambda s: s.children())) == 2


# -- restart strategies ------------------------------------------------------------------------


@pytest.mark.parametrize(("strategy", "reason", "restarted"), [
    ("permanent", TerminateReasonNormal, True),
    ("permanent", TerminateReasonShutdown, True),
    ("transient", TerminateReasonNormal, False),
    ("transient", TerminateReasonShutdown, False),
    ("transient", TerminateReason("custom"), True),
    ("transient", "crash", True),
    ("transient", "kill", True),
    ("temporary", "crash", False),
    ("temporary", "kill", False),
])
def test_restart_strategy_decides_by_the_exit_reason(backend, strategy, reason, restarted):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j, names="ab", strategy=strategy, disable_auto_shutdown=True))
    old = node.whereis("a")
    if reason == "kill":
        node.kill(old)
    elif reason == "crash":
        node.send(old, "crash")
    else:
        node.send(old, ("stop", reason))
    backend.settle()
    new = node.whereis("a")
    assert (new is not None and new != old) is restarted
    assert on(node, sup, lambda s: s.children()[0].pid) == new


def test_a_child_spec_can_override_the_supervisor_strategy(backend):
    node, j = backend.node(), []
    s = spec(j, names="ab", strategy="transient")
    s.children[0].restart = SupervisorStrategy.PERMANENT
    node.spawn(Sup, j, s)
    node.send("a", ("stop", TerminateReasonNormal))
    node.send("b", ("stop", TerminateReasonNormal))
    backend.settle()
    assert node.whereis("a") is not None and node.whereis("b") is None


# -- significant children and auto shutdown ----------------------------------------------------


def test_a_significant_child_that_ends_stops_the_others_and_the_supervisor_with_its_reason(backend):
    node, j = backend.node(), []
    s = spec(j, names="abc")
    s.children[0].significant = True
    sup = node.spawn(Sup, j, s)
    _, seen = watch(node, sup)
    j.clear()
    node.send("a", ("stop", TerminateReasonNormal))
    backend.settle()
    assert [e[:2] for e in j] == [("term", "a"), ("term", "c"), ("term", "b"), ("term", "sup")]
    assert j[-1][2] == TerminateReasonNormal and down_reason(seen) == TerminateReasonNormal


def test_a_significant_transient_child_that_crashes_is_restarted(backend):
    node, j = backend.node(), []
    s = spec(j, names="ab")
    s.children[0].significant = True
    sup = node.spawn(Sup, j, s)
    node.send("a", "crash")
    backend.settle()
    assert node.process_info(sup) and node.whereis("a") is not None


def test_auto_shutdown_when_no_child_is_left_running(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j, names="ab"))
    _, seen = watch(node, sup)
    node.send("a", ("stop", TerminateReasonNormal))
    backend.settle()
    assert node.process_info(sup)  # b still runs
    node.send("b", ("stop", TerminateReasonShutdown))
    backend.settle()
    assert down_reason(seen) == TerminateReasonShutdown  # the last child's reason, as Ergo


def test_disable_auto_shutdown_keeps_a_childless_supervisor(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j, names="a", disable_auto_shutdown=True))
    node.send("a", ("stop", TerminateReasonNormal))
    backend.settle()
    assert on(node, sup, lambda s: s.children()[0].pid) is None
    assert on(node, sup, lambda s: s.start_child("a")) == node.whereis("a")


# -- intensity (the simulated clock) ------------------------------------------------------------


def _crash_every(interval: float, crashes: int) -> tuple[list, BaseException | None]:
    """A supervisor with the default intensity (5 in 5 s) whose child crashes every ``interval``
    seconds of virtual time; what its monitor heard (None: it still runs)."""
    b = SimBackend()
    try:
        node, j = b.node(), []
        sup = node.spawn(Sup, j, spec(j, names="a"))
        assert node.process_info(sup)  # default restart: 5 in 5 s
        _, seen = watch(node, sup)
        for _ in range(crashes):
            b.sim.run_for(interval)
            if node.whereis("a") is not None:
                node.send("a", "crash")
            b.sim.run_for(0)
            b.settle()
        downs = [m for m in seen if isinstance(m, MessageDownPID)]
        return j, downs[0].reason if downs else None
    finally:
        b.close()


def test_a_crash_every_0_9_s_exceeds_the_default_intensity_at_the_sixth():
    j, reason = _crash_every(0.9, 10)
    assert reason == SupervisorRestartsExceeded()
    assert events(j, "start").count("a") == 6  # the first and five restarts
    assert j[-1] == ("term", "sup", SupervisorRestartsExceeded())


def test_a_crash_every_1_1_s_stays_within_the_default_intensity_forever():
    j, reason = _crash_every(1.1, 30)
    assert reason is None
    assert events(j, "start").count("a") == 31


def test_intensity_and_period_are_the_spec_s():
    b = SimBackend()
    node, j = b.node(), []
    sup = node.spawn(Sup, j, spec(j, names="a", intensity=2, period=10.0))
    _, seen = watch(node, sup)
    node.send("a", "crash")  # restarts at 0 s
    b.sim.run_for(5.0)
    node.send("a", "crash")  # and 5 s
    b.sim.run_for(5.5)
    node.send("a", "crash")  # at 10.5 s the first has left the 10 s window: two within it
    b.settle()
    assert not seen
    node.send("a", "crash")
    b.settle()
    assert down_reason(seen) == SupervisorRestartsExceeded()
    b.close()


def test_restarts_exceeded_stops_the_children_last_first_before_the_supervisor(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j, names="abc", intensity=0))
    _, seen = watch(node, sup)
    j.clear()
    node.send("a", "crash")
    backend.settle()
    assert [e[:2] for e in j] == [("term", "a"), ("term", "c"), ("term", "b"), ("term", "sup")]
    assert down_reason(seen) == SupervisorRestartsExceeded()


# -- the API -------------------------------------------------------------------------------------


def test_start_child_errors_say_why(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j, names="ab", disable_auto_shutdown=True))
    with pytest.raises(SupervisorChildUnknown):
        on(node, sup, lambda s: s.start_child("zz"))
    with pytest.raises(SupervisorChildRunning):
        on(node, sup, lambda s: s.start_child("a"))
    node.send("a", ("stop", TerminateReasonNormal))
    backend.settle()
    pid = on(node, sup, lambda s: s.start_child("a", j, "a2"))
    assert node.whereis("a") == pid and events(j, "start")[-1] == "a2"
    node.send("a", "crash")
    backend.settle()
    assert events(j, "start")[-1] == "a2"  # the args given to start_child are kept for restarts
    on(node, sup, lambda s: s.disable_child("b"))
    with pytest.raises(SupervisorChildDisabled):
        on(node, sup, lambda s: s.start_child("b"))


def test_add_child_starts_it_last_and_refuses_a_duplicate_name(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j, names="ab"))
    pid = on(node, sup, lambda s: s.add_child(SupervisorChildSpec("z", Child, (j, "z"))))
    assert node.whereis("z") == pid
    assert [c.spec for c in on(node, sup, lambda s: s.children())] == ["a", "b", "z"]
    with pytest.raises(SupervisorChildDuplicate):
        on(node, sup, lambda s: s.add_child(SupervisorChildSpec("a", Child, (j, "a"))))
    with pytest.raises(Incorrect):
        on(node, sup, lambda s: s.add_child("z"))


def test_disable_child_stops_it_for_good_and_enable_child_starts_it_again(backend):
    node, j = backend.node(), []
    s = spec(j, names="ab", strategy="permanent")
    sup = node.spawn(Sup, j, s)
    b = node.whereis("b")
    on(node, sup, lambda s: s.disable_child("b"))
    backend.settle()
    assert ("term", "b", ExitSignal(sup, TerminateReasonShutdown)) in j
    assert node.whereis("b") is None
    assert on(node, sup, lambda s: [(c.spec, c.disabled, c.pid) for c in s.children()])[1] == ("b", True, None)
    pid = on(node, sup, lambda s: s.enable_child("b"))
    assert pid != b and node.whereis("b") == pid
    assert on(node, sup, lambda s: s.enable_child("b")) is None  # already enabled: nothing
    with pytest.raises(SupervisorChildUnknown):
        on(node, sup, lambda s: s.disable_child("zz"))


def test_simple_one_for_one_disable_child_stops_every_instance(backend):
    node, j = backend.node(), []
    s = SupervisorSpec(children=[SupervisorChildSpec("w", Child, (j, "w"), restart="permanent")],
                       type=SupervisorType.SIMPLE_ONE_FOR_ONE)
    sup = node.spawn(Sup, j, s)
    for _ in range(3):
        on(node, sup, lambda s: s.start_child("w"))
    on(node, sup, lambda s: s.disable_child("w"))
    backend.settle()
    assert events(j, "term") == ["w", "w", "w"]
    assert on(node, sup, lambda s: s.children()) == []
    assert node.process_info(sup)  # simple one for one never shuts down by itself
    on(node, sup, lambda s: s.enable_child("w"))
    assert on(node, sup, lambda s: s.start_child("w"))


def test_handle_child_callbacks_run_after_the_strategy(backend):
    node, j = backend.node(), []
    node.spawn(Sup, j, spec(j, names="ab", enable_handle_child=True))
    backend.settle()
    a = node.whereis("a")
    j.clear()
    node.send("a", "crash")
    backend.settle()
    new = node.whereis("a")
    assert j == [("term", "a", TerminateReasonPanic), ("start", "a", new),
                 ("child_terminate", "a", a, TerminateReasonPanic), ("child_start", "a", new)]


# -- the supervisor's own end --------------------------------------------------------------------


def test_the_parent_s_exit_stops_the_children_last_first_then_the_supervisor(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j))
    j.clear()
    node.send_exit(sup, TerminateReasonShutdown)  # from the node's core, its parent
    backend.settle()
    assert [e[:2] for e in j] == [("term", "c"), ("term", "b"), ("term", "a"), ("term", "sup")]
    assert j[-1][2] == ExitSignal(node.pid, TerminateReasonShutdown)


def test_a_handler_that_raises_stops_the_children_first(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j, names="ab"))
    _, seen = watch(node, sup)
    j.clear()
    node.send(sup, ("stop", TerminateReason("enough")))
    backend.settle()
    assert [e[:2] for e in j] == [("term", "b"), ("term", "a"), ("term", "sup")]
    assert down_reason(seen) == TerminateReason("enough")


def test_an_async_handler_is_refused_and_ends_the_supervisor_as_a_panic(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j, names="a"))
    _, seen = watch(node, sup)
    node.send(sup, ("async",))
    backend.settle()
    assert down_reason(seen) == TerminateReasonPanic
    assert any("must be a plain method" in t for t in node.captured.texts())


def test_killing_the_supervisor_takes_its_children(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j, names="ab"))
    node.kill(sup)
    backend.settle()
    assert node.process_list() == []
    assert ("term", "sup", TerminateReasonKill) in j


def test_a_child_that_fails_to_start_fails_the_supervisor_spawn(backend):
    node, j = backend.node(), []
    s = spec(j, names="ab")
    s.children[1].args = (j, "b", True)
    with pytest.raises(RuntimeError, match="b cannot start"):
        node.spawn(Sup, j, s)
    backend.settle()
    assert node.process_list() == []  # a, started, went with it (linked)


def test_a_child_that_fails_to_restart_ends_the_supervisor_with_its_error(backend):
    node, j, fail = backend.node(), [], [False]
    s = spec(j, names="ab")
    s.children[0].args = (j, "a", fail)
    sup = node.spawn(Sup, j, s)
    _, seen = watch(node, sup)
    fail[0] = True
    node.send("a", "crash")
    backend.settle()
    assert isinstance(down_reason(seen), RuntimeError)
    assert node.whereis("b") is None


def test_a_child_spawned_by_a_supervisor_s_handler_is_not_supervised(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j, names="a"))
    loose = on(node, sup, lambda s: s.spawn(Child, j, "loose"))
    node.send(loose, "crash")
    backend.settle()
    assert events(j, "start").count("loose") == 1 and node.process_info(sup)


# -- node.stop --------------------------------------------------------------------------------------


def test_node_stop_stops_a_tree_children_before_parents_in_reverse_start_order(backend):
    node, j = backend.node(), []
    inner = SupervisorSpec(children=[SupervisorChildSpec(n, Child, (j, n)) for n in ("x", "y")])
    top = SupervisorSpec(children=[
        SupervisorChildSpec("a", Child, (j, "a")),
        SupervisorChildSpec("inner", Sup, (j, inner, "inner")),
        SupervisorChildSpec("b", Child, (j, "b")),
    ])
    node.spawn(Sup, j, top, "top")
    node.spawn(Child, j, "loose")
    assert events(j, "start") == ["top", "a", "inner", "x", "y", "b", "loose"]
    j.clear()
    node.stop()
    assert not node.is_alive()
    tree = [e[1] for e in j if e[0] == "term" and e[1] != "loose"]
    assert tree == ["b", "y", "x", "inner", "a", "top"]
    assert ("term", "loose", ExitSignal(node.pid, TerminateReasonShutdown)) in j
    assert all(e[2] == ExitSignal(e[2].source, TerminateReasonShutdown) for e in j)


def test_node_stop_does_not_wait_for_a_sleeping_child():
    b = SimBackend()
    node, j = b.node(), []
    node.spawn(Sup, j, spec(j, names="ab"))
    node.send("a", ("sleep", 1000.0))
    b.sim.run_for(0.1)
    node.stop()
    assert not node.is_alive() and b.sim.now < 1.0
    assert [e[1] for e in j if e[0] == "term"] == ["b", "a", "sup"]


# -- the clock: keep_order and shutdown timeouts ------------------------------------------------------


def _terminations(keep_order: bool) -> list[tuple[str, float]]:
    b = SimBackend()
    node, j = b.node(), []

    class Timed(Child):
        def terminate(self, reason: BaseException) -> None:
            j.append(("term", self.tag, b.sim.now))

    s = SupervisorSpec(children=[SupervisorChildSpec(n, Timed, (j, n)) for n in "abc"],
                       type="all_for_one", restart=SupervisorRestart(keep_order=keep_order))
    node.spawn(Sup, j, s)
    node.send("c", ("sleep", 2.0))  # c is busy for 2 s: it stops after its handler returns
    b.sim.run_for(0.5)
    node.send("a", "crash")
    b.sim.run_for(5.0)
    assert events(j, "start")[-3:] == ["a", "b", "c"]
    b.close()
    return [(e[1], e[2]) for e in j if e[0] == "term" and e[1] != "sup"][:3]


def test_keep_order_stops_one_child_at_a_time_last_first():
    assert _terminations(keep_order=True) == [("a", 0.5), ("c", 2.0), ("b", 2.0)]


def test_without_keep_order_the_children_are_told_all_at_once():
    assert _terminations(keep_order=False) == [("a", 0.5), ("b", 0.5), ("c", 2.0)]


def test_a_child_slower_than_its_shutdown_timeout_is_killed():
    b = SimBackend()
    node, j = b.node(), []
    s = spec(j, names="ab", type="all_for_one")
    s.children[1].shutdown_timeout = 1.0
    sup = node.spawn(Sup, j, s)
    node.send("b", ("sleep", 100.0))
    node.send("a", "crash")
    b.sim.run_for(0.5)
    assert node.whereis("a") is None  # waiting for b
    b.sim.run_for(1.0)
    assert ("term", "b", TerminateReasonKill) not in j  # killed while busy: no terminate callback
    assert events(j, "start")[-2:] == ["a", "b"] and b.sim.now == 1.5
    assert node.process_info(sup)
    assert any("shutdown timeout" in t for t in node.captured.texts())
    b.close()


def test_a_zero_shutdown_timeout_kills_at_once(backend):
    node, j = backend.node(), []
    s = spec(j, names="ab")
    s.children[1].shutdown_timeout = 0
    sup = node.spawn(Sup, j, s)
    j.clear()
    node.send_exit(sup, TerminateReasonShutdown)
    backend.settle()
    assert j[:2] == [("term", "b", TerminateReasonKill), ("term", "a", ExitSignal(sup, TerminateReasonShutdown))]


# -- bad specs -----------------------------------------------------------------------------------


class _Returns(Supervisor):
    def init(self, value: Any) -> Any:
        return value


@pytest.mark.parametrize(("bad", "error", "text"), [
    (None, Incorrect, "must return a SupervisorSpec"),
    (SupervisorSpec(children=[]), Incorrect, "at least one child"),
    (SupervisorSpec(children=[SupervisorChildSpec("a", Child)], type="one_for_all"), Incorrect, "supervisor type"),
    (SupervisorSpec(children=[SupervisorChildSpec("a", Child, restart="sometimes")]), Incorrect, "restart strategy"),
    (SupervisorSpec(children=[SupervisorChildSpec("", Child)]), Incorrect, "non-empty"),
    (SupervisorSpec(children=[SupervisorChildSpec("a", 42)]), Incorrect, "factory"),  # type: ignore[arg-type]
    (SupervisorSpec(children=[SupervisorChildSpec("a", Child, args=5)]), Incorrect, "args"),  # type: ignore[arg-type]
    (SupervisorSpec(children=[SupervisorChildSpec("a", Child), SupervisorChildSpec("a", Child)]),
     SupervisorChildDuplicate, "'a'"),
    (SupervisorSpec(children=[SupervisorChildSpec("a", Child, significant=True)],
                    restart=SupervisorRestart(strategy="permanent")), Incorrect, "significant and permanent"),
    (SupervisorSpec(children=[SupervisorChildSpec("a", Child, significant=True)], type="simple_one_for_one"),
     Incorrect, "significant"),
    (SupervisorSpec(children=[SupervisorChildSpec("a", Child)], restart=SupervisorRestart(intensity=-1)),
     Incorrect, "intensity"),
    (SupervisorSpec(children=[SupervisorChildSpec("a", Child)], restart=SupervisorRestart(period=0)),
     Incorrect, "period"),
    (SupervisorSpec(children=[SupervisorChildSpec("a", Child, shutdown_timeout=-1)]), Incorrect, "shutdown_timeout"),
    (SupervisorSpec(children=[SupervisorChildSpec("a", Child, options="fast")]), Incorrect,  # type: ignore[arg-type]
     "ProcessOptions"),
])
def test_a_bad_spec_fails_the_spawn_with_a_clear_error(backend, bad, error, text):
    node = backend.node()
    with pytest.raises(error, match=text):
        node.spawn(_Returns, bad)
    assert node.process_list() == []


def test_a_supervisor_without_init_says_so(backend):
    node = backend.node()
    with pytest.raises(NotAllowed, match="must override init"):
        node.spawn(Supervisor)


def test_the_api_is_refused_while_the_strategy_works():
    b = SimBackend()
    node, j = b.node(), []
    sup = node.spawn(Sup, j, spec(j, names="ab", type="all_for_one", keep_order=True))
    node.send("b", ("sleep", 1.0))
    node.send("a", "crash")
    b.sim.run_for(0.5)  # b is asleep: the restart waits for it
    from ergo import SupervisorStrategyActive

    with pytest.raises(SupervisorStrategyActive):
        on(node, sup, lambda s: s.start_child("a"))
    b.sim.run_for(1.0)
    assert node.whereis("a") is not None and node.whereis("b") is not None
    b.close()


def test_child_options_are_kept_and_the_links_are_added(backend):
    node, j = backend.node(), []
    s = spec(j, names="a")
    s.children[0].options = ProcessOptions(mailbox_size=7, env={"colour": "blue"})
    node.spawn(Sup, j, s)
    info = node.process_info(node.whereis("a"))
    assert info.mailbox_size == 7 and info.env["COLOUR"] == "blue"
    assert info.links  # linked to its supervisor (link_parent)


def test_a_killed_supervisor_takes_its_tree_at_once_so_its_restart_finds_the_names_free():
    """Its children are killed with it, not left to their link: one busy in a handler
    would otherwise hold its registered name until it returned, and the restart of the
    supervisor by its own would fail with Taken."""
    b = SimBackend()
    node, j = b.node(), []
    inner = SupervisorSpec(children=[SupervisorChildSpec(n, Child, (j, n)) for n in ("x", "y")])
    top = SupervisorSpec(children=[SupervisorChildSpec("inner", Sup, (j, inner, "inner"))],
                         restart=SupervisorRestart(strategy="permanent"))
    sup = node.spawn(Sup, j, top, "top")
    node.send("x", ("sleep", 100.0))
    b.sim.run_for(1.0)
    old = node.whereis("x")
    node.kill(on(node, sup, lambda s: s.children()[0].pid))
    b.sim.run_for(1.0)
    assert events(j, "start") == ["top", "inner", "x", "y", "inner", "x", "y"]
    assert node.whereis("x") not in (None, old) and node.process_info(sup)
    b.close()


def test_the_examples_of_docs_supervisors_md_run_as_written(backend):
    import pathlib
    import re

    text = (pathlib.Path(__file__).parent.parent / "docs" / "supervisors.md").read_text()
    first, second = re.findall(r"```python\n(.*?)```", text, re.S)
    node = backend.node()
    scope: dict[str, Any] = {"node": node}
    exec(first, scope)
    assert node.whereis("cache") is not None and node.whereis("api") is not None
    assert node.process_info(node.whereis("api")).parent == scope["root"]

    class Worker(Actor):
        def init(self, *args: Any) -> None:
            self.args = args

    scope = {"Worker": Worker, "Supervisor": Supervisor, "SupervisorSpec": SupervisorSpec,
             "SupervisorChildSpec": SupervisorChildSpec}
    exec(second, scope)
    pool = node.spawn(scope["Pool"])
    worker = node.call(pool, ("start", 1, 2))
    assert node.process_info(worker).parent == pool


def test_node_stop_during_a_restart_does_not_wait_for_a_sleeping_child_already_told():
    b = SimBackend()
    node, j = b.node(), []
    node.spawn(Sup, j, spec(j, names="abc", type="all_for_one", keep_order=True))
    node.send("c", ("sleep", 100.0))
    node.send("a", "crash")
    b.sim.run_for(1.0)  # c was told to stop and sleeps on: the restart waits for it
    assert node.whereis("a") is None
    node.stop()
    assert not node.is_alive() and b.sim.now < 1.5  # neither the sleep nor the 5 s shutdown timeout
    assert [e[1] for e in j if e[0] == "term"] == ["a", "c", "b", "sup"]


def test_node_stop_while_the_supervisor_shuts_down_does_not_wait_for_a_sleeping_child():
    b = SimBackend()
    node, j = b.node(), []
    sup = node.spawn(Sup, j, spec(j, names="ab"))
    node.send("b", ("sleep", 100.0))
    node.send(sup, ("stop", TerminateReason("enough")))
    b.sim.run_for(1.0)  # b was told to stop and sleeps on
    assert node.process_info(sup)
    node.stop()
    assert not node.is_alive() and b.sim.now < 1.5
    assert [e[1] for e in j if e[0] == "term"] == ["b", "a", "sup"]
    assert j[-1][2] == TerminateReason("enough")


def test_a_call_to_a_supervisor_whose_handler_panics_fails_at_once_with_the_panic(backend):
    node, j = backend.node(), []
    sup = node.spawn(Sup, j, spec(j, names="a"))

    def boom(s: Any) -> None:
        raise RuntimeError("boom")

    class Panicky(Sup):
        def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
            return request(self)

    panicky = node.spawn(Panicky, j, spec(j, names="b"), "panicky")
    from ergo import ProcessTerminated

    with pytest.raises(ProcessTerminated, match="boom"):
        node.call(panicky, boom)
    backend.settle()
    assert ("term", "panicky", TerminateReasonPanic) in j and node.process_info(sup)


def test_an_application_s_supervision_tree_stops_in_order_and_restarts_within_it(backend):
    """A supervisor as an application's member: a crash is restarted inside the tree (the
    application sees nothing), and the node's stop, which stops applications first,
    stops the tree children before parents, last started first."""
    from ergo import Application, ApplicationMemberSpec, ApplicationSpec

    j: list = []

    class Service(Application):
        def load(self, node: Any, *args: Any) -> ApplicationSpec:
            return ApplicationSpec("service", group=[ApplicationMemberSpec(Sup, name="root",
                                                                           args=(j, spec(j, names="ab"), "root"))])

    node = backend.node()
    node.application_load(Service())
    node.application_start("service")
    node.send("a", "crash")
    backend.settle()
    assert events(j, "start") == ["root", "a", "b", "a"]
    assert node.applications_running() == ["service"]
    j.clear()
    node.stop()
    assert [e[1] for e in j if e[0] == "term"] == ["b", "a", "root"]

"""A supervision tree against an explicit model of restart strategies and intensity.

Hypothesis draws a tree (a top supervisor of any type, its children workers and at most
one nested supervisor, each child with its own restart type, some significant; intensity
0-3 within 1-3 s; auto shutdown on or off), then a program of steps: a worker crashes,
exits normally, with ``shutdown`` or with a reason of its own, is killed; a supervisor is
killed or told to stop by its parent; ``start_child``, ``disable_child``,
``enable_child``; the virtual clock moves on by 0.4 to 2.1 s.  After every step the node
must agree with :class:`Model`: how many times each child was started, which are running,
and every reason each terminated with (as its watchers are told it).

The model is written from the rules, not from the code: a child that ends is restarted or
not by its restart type and reason; a restart is allowed if at most ``intensity`` restarts
fall within the last ``period`` seconds, the ends included, else the supervisor stops its
children (last started first) and terminates with ``SupervisorRestartsExceeded``; all/rest
for one stop the others (the rest) and start them again in spec order, the temporary ones
excepted; a significant child that is not restarted ends its supervisor with its reason;
without running children (and without ``disable_auto_shutdown``) a supervisor ends with
the reason of the last.  Every cascade is instantaneous here (no child sleeps), so a step's
outcome does not depend on timing.

The planted-bug tests break one rule each in a subclass of the supervisor and show that
the machine notices.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from test_supervisor import Child, Sup

from ergo import (
    ErgoError,
    LogOptions,
    NodeOptions,
    SupervisorChildDisabled,
    SupervisorChildRunning,
    SupervisorChildSpec,
    SupervisorRestart,
    SupervisorRestartsExceeded,
    SupervisorSpec,
    SupervisorStrategy,
    TerminateReason,
    TerminateReasonKill,
    TerminateReasonNormal,
    TerminateReasonPanic,
    TerminateReasonShutdown,
    unwrap_reason,
)
from sim import Sim

_TYPES = ["one_for_one", "all_for_one", "rest_for_one", "simple_one_for_one"]
_RESTARTS = ["permanent", "transient", "temporary"]
_ENDS = ["crash", "normal", "shutdown", "custom", "kill"]
_REASON = {"crash": TerminateReasonPanic, "normal": TerminateReasonNormal, "shutdown": TerminateReasonShutdown,
           "custom": TerminateReason("custom"), "kill": TerminateReasonKill}
_STEPS = [0.4, 0.9, 1.1, 2.1]


# -- the shape of a tree ----------------------------------------------------------------------


@st.composite
def _sup_shape(draw: Any, nested: bool) -> dict[str, Any]:
    kind = draw(st.sampled_from(_TYPES if not nested else _TYPES[:3]))
    default = draw(st.sampled_from(_RESTARTS))
    children = []
    # registered names are per node: the nested supervisor's children are named apart
    names = "xyz"[: draw(st.integers(1, 3))] if nested else "abcd"[: draw(st.integers(1, 4))]
    has_nested = False
    for name in names:
        restart = draw(st.sampled_from([None, *_RESTARTS]))
        effective = restart or default
        significant = kind != "simple_one_for_one" and effective != "permanent" and draw(st.booleans())
        inner = None
        if not nested and not has_nested and kind != "simple_one_for_one" and draw(st.integers(0, 3)) == 0:
            inner = draw(_sup_shape(True))
            has_nested = True
        children.append({"name": name, "restart": restart, "significant": significant, "inner": inner})
    return {"type": kind, "default": default, "intensity": draw(st.integers(0, 3)),
            "period": draw(st.sampled_from([1.0, 2.0])), "auto": draw(st.booleans()),
            "keep_order": draw(st.booleans()), "children": children}


def _spec(journal: list, shape: dict[str, Any], tag: str) -> SupervisorSpec:
    children = []
    for c in shape["children"]:
        if c["inner"] is None:
            factory, args = Child, (journal, f"{tag}/{c['name']}")
        else:
            inner_tag = f"{tag}/{c['name']}"
            factory, args = Sup, (journal, _spec(journal, c["inner"], inner_tag), inner_tag)
        children.append(SupervisorChildSpec(c["name"], factory, args, significant=c["significant"],
                                            restart=c["restart"]))
    return SupervisorSpec(children=children, type=shape["type"],
                          restart=SupervisorRestart(strategy=shape["default"], intensity=shape["intensity"],
                                                    period=shape["period"], keep_order=shape["keep_order"]),
                          disable_auto_shutdown=not shape["auto"])


# -- the model ------------------------------------------------------------------------------------


class _MChild:
    """A child spec in the model; for simple one for one, one running instance of a spec."""

    def __init__(self, sup: _MSup, shape: dict[str, Any], index: int, tag: str) -> None:
        self.sup, self.shape, self.index, self.tag = sup, shape, index, tag
        self.name = shape["name"]
        self.restart = shape["restart"] or sup.shape["default"]
        self.significant = shape["significant"]
        self.disabled = False
        self.running = False
        self.inner: _MSup | None = None  # the running nested supervisor


class _MSup:
    def __init__(self, model: Model, shape: dict[str, Any], tag: str, parent: _MSup | None) -> None:
        self.model, self.shape, self.tag, self.parent = model, shape, tag, parent
        self.sofo = shape["type"] == "simple_one_for_one"
        self.specs = [_MChild(self, c, i, f"{tag}/{c['name']}") for i, c in enumerate(shape["children"])]
        self.instances: list[_MChild] = []  # simple one for one, in start order
        self.restarts: list[float] = []
        self.alive = True
        self.model.start(tag)
        if not self.sofo:
            for child in self.specs:
                self.start(child)

    def running(self) -> list[_MChild]:
        """The running children in start order (spec order, then start order)."""
        if self.sofo:
            return sorted(self.instances, key=lambda c: c.index)  # stable: start order within a spec
        return [c for c in self.specs if c.running]

    def start(self, child: _MChild) -> None:
        child.running = True
        if self.sofo:
            self.instances.append(child)
        if child.shape["inner"] is not None:
            child.inner = _MSup(self.model, child.shape["inner"], child.tag, self)
        else:
            self.model.start(child.tag)

    def stop(self, child: _MChild) -> None:
        """The supervisor stops a child (shutdown, from its parent)."""
        if child.inner is not None:
            child.inner.shut(TerminateReasonShutdown, stopped=True)
        else:
            self.model.end(child.tag, TerminateReasonShutdown)
        self.gone(child)

    def gone(self, child: _MChild) -> None:
        child.running = False
        child.inner = None
        if self.sofo:
            self.instances.remove(child)

    def shut(self, reason: BaseException, stopped: bool = False) -> None:
        """Stop every child, last first, then end with ``reason``; the parent is told unless it
        stopped this one itself."""
        for child in reversed(self.running()):
            self.stop(child)
        self.alive = False
        self.model.end(self.tag, reason)
        if self.parent is not None and not stopped:
            self.parent.child_ended(self._slot(), reason)

    def _slot(self) -> _MChild:
        return next(c for c in self.parent.running() if c.inner is self)  # type: ignore[union-attr]

    def child_ended(self, child: _MChild, reason: BaseException) -> None:
        """A child ended on its own (not stopped by this supervisor)."""
        self.gone(child)
        if self.spec_named(child.name).disabled:
            self.auto_shutdown(reason)
            return
        restart = child.restart == "permanent" or (
            child.restart == "transient" and reason not in (TerminateReasonNormal, TerminateReasonShutdown))
        if not restart:
            if child.significant:
                self.shut(reason)
            else:
                self.auto_shutdown(reason)
            return
        now = self.model.now
        self.restarts.append(now)
        if len([t for t in self.restarts if now - t <= self.shape["period"]]) > self.shape["intensity"]:
            self.shut(SupervisorRestartsExceeded())
            return
        kind = self.shape["type"]
        if kind in ("one_for_one", "simple_one_for_one"):
            self.start(child)
            return
        again = [child]
        for other in reversed(self.running()):
            if kind == "all_for_one" or other.index > child.index:
                self.stop(other)
                if other.restart != "temporary":
                    again.append(other)
        for c in sorted(again, key=lambda c: c.index):
            self.start(c)

    def auto_shutdown(self, reason: BaseException) -> None:
        if not self.sofo and self.shape["auto"] and not self.running():
            self.shut(reason)

    def killed(self, by_parent: bool = False) -> None:
        """``node.kill``: its children are killed first (a nested supervisor's own first),
        last started first; then its parent is told ``kill``."""
        for child in reversed(self.running()):
            if child.inner is not None:
                child.inner.killed(by_parent=True)
            else:
                self.model.end(child.tag, TerminateReasonKill)
            child.running = False
        self.instances = []
        self.alive = False
        self.model.end(self.tag, TerminateReasonKill)
        if self.parent is not None and not by_parent:
            self.parent.child_ended(self._slot(), TerminateReasonKill)

    # -- the API --

    def spec_named(self, name: str) -> _MChild:
        return next(c for c in self.specs if c.name == name)

    def start_child(self, name: str, tag: str) -> type[ErgoError] | None:
        spec = self.spec_named(name)
        if spec.disabled:
            return SupervisorChildDisabled
        if self.sofo:
            self.start(_MChild(self, spec.shape, spec.index, tag))
            return None
        if spec.running:
            return SupervisorChildRunning
        self.start(spec)
        return None

    def disable_child(self, name: str) -> None:
        spec = self.spec_named(name)
        if spec.disabled:
            return
        spec.disabled = True
        for child in [c for c in self.running() if c.name == name]:
            self.stop(child)
            self.auto_shutdown(TerminateReasonShutdown)

    def enable_child(self, name: str) -> None:
        spec = self.spec_named(name)
        if not spec.disabled:
            return
        spec.disabled = False
        if not self.sofo:
            self.start(spec)


class Model:
    """What must have happened: starts per tag, and every reason each tag ended with."""

    def __init__(self) -> None:
        self.now = 0.0
        self.starts: Counter[str] = Counter()
        self.ends: dict[str, list[BaseException]] = {}
        self.live: set[str] = set()
        self.top: _MSup | None = None

    def start(self, tag: str) -> None:
        self.starts[tag] += 1
        self.live.add(tag)

    def end(self, tag: str, reason: BaseException) -> None:
        self.ends.setdefault(tag, []).append(reason)
        self.live.discard(tag)

    def supervisors(self) -> list[_MSup]:
        top = self.top
        if top is None or not top.alive:
            return []
        return [top, *(c.inner for c in top.running() if c.inner is not None and c.inner.alive)]

    def workers(self) -> list[tuple[_MSup, _MChild]]:
        return [(s, c) for s in self.supervisors() for c in s.running() if c.inner is None]


# -- the machine --------------------------------------------------------------------------------


class SupervisorMachine(RuleBasedStateMachine):
    """One simulated node, one supervision tree, against :class:`Model`.  ``sup_class`` is
    the supervisor the tree is built of (a planted bug subclasses it)."""

    sup_class: type[Sup] = Sup

    def __init__(self) -> None:
        super().__init__()
        self.sim = Sim(1)
        self.node = self.sim.start_node("model@localhost", NodeOptions(log=LogOptions(default_logger=False)))
        self.journal: list[Any] = []
        self.model = Model()
        self.serial = 0

    def settle(self) -> None:
        env = self.sim.world.env
        while env.peek() <= env.now:
            env.step()

    def pid(self, tag: str) -> Any:
        """The PID the tag was last started as."""
        return next(e[2] for e in reversed(self.journal) if e[0] == "start" and e[1] == tag)

    def on(self, tag: str, fn: Any) -> Any:
        status, value = self.node.call(self.pid(tag), fn)
        self.settle()
        return value if status == "ok" else _Failed(value)

    @initialize(shape=_sup_shape(False))
    def tree(self, shape: dict[str, Any]) -> None:
        self.shape = shape
        spec = _spec(self.journal, shape, "top")
        _swap_nested(spec, self.sup_class)  # the nested supervisor is of the same (perhaps planted) class
        self.node.spawn(self.sup_class, self.journal, spec, "top")
        self.settle()
        self.model.top = _MSup(self.model, shape, "top", None)

    @precondition(lambda self: self.model.workers())
    @rule(data=st.data(), how=st.sampled_from(_ENDS))
    def end_worker(self, data: st.DataObject, how: str) -> None:
        sup, child = data.draw(st.sampled_from(self.model.workers()))
        pid = self.pid(child.tag)
        if how == "kill":
            self.node.kill(pid)
        elif how == "crash":
            self.node.send(pid, "crash")
        else:
            self.node.send(pid, ("stop", _REASON[how]))
        self.settle()
        self.model.end(child.tag, _REASON[how])
        sup.child_ended(child, _REASON[how])

    @precondition(lambda self: self.model.workers())
    @rule(data=st.data())
    def crash_worker(self, data: st.DataObject) -> None:
        """A crash again: restarts, and their intensity, are what the machine is most about."""
        self.end_worker(data, "crash")

    @precondition(lambda self: self.model.supervisors())
    @rule(data=st.data(), how=st.sampled_from(["kill", "kill", "stop"]))
    def end_supervisor(self, data: st.DataObject, how: str) -> None:
        """``node.kill`` of a supervisor (its children die of the link), or the top's parent
        (the node's core) telling it to stop (it stops its tree, last started first)."""
        if how == "stop":
            self.node.send_exit(self.pid("top"), TerminateReasonShutdown)
            self.settle()
            self.model.top.shut(TerminateReasonShutdown)  # type: ignore[union-attr]
            return
        sup = data.draw(st.sampled_from(self.model.supervisors()))
        self.node.kill(self.pid(sup.tag))
        self.settle()
        sup.killed()

    @precondition(lambda self: self.model.supervisors())
    @rule(data=st.data(), op=st.sampled_from(["start_child", "disable_child", "enable_child"]))
    def api(self, data: st.DataObject, op: str) -> None:
        sup = data.draw(st.sampled_from(self.model.supervisors()))
        name = data.draw(st.sampled_from([c.name for c in sup.specs]))
        if op == "start_child":
            self.serial += 1
            tag = f"{sup.tag}/{name}#{self.serial}"
            spec = sup.spec_named(name)
            if sup.sofo and spec.shape["inner"] is None:
                got = self.on(sup.tag, lambda s: s.start_child(name, self.journal, tag))
            else:
                got = self.on(sup.tag, lambda s: s.start_child(name))
            want = sup.start_child(name, tag)
            _expect(op, got, want)
        elif op == "disable_child":
            _expect(op, self.on(sup.tag, lambda s: s.disable_child(name)), None)
            sup.disable_child(name)
        else:
            _expect(op, self.on(sup.tag, lambda s: s.enable_child(name)), None)
            sup.enable_child(name)

    @rule(seconds=st.sampled_from(_STEPS))
    def advance_time(self, seconds: float) -> None:
        self.sim.run_for(seconds)
        self.settle()
        self.model.now = self.sim.now

    @invariant()
    def node_agrees_with_model(self) -> None:
        check(self.node, self.journal, self.model)

    def teardown(self) -> None:
        if sys.exc_info()[1] is None:
            self.node.stop_force()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _expect(what: str, got: Any, want: type[ErgoError] | None) -> None:
    error = type(got.error) if isinstance(got, _Failed) else None
    assert error is want, f"{what}: the model expects {want}, the node gave {got!r}"


def _swap_nested(spec: SupervisorSpec, cls: type[Sup]) -> None:
    for c in spec.children:
        if c.factory is Sup:
            c.factory = cls


def check(node: Any, journal: list[Any], model: Model) -> None:
    starts = Counter(e[1] for e in journal if e[0] == "start")
    assert starts == model.starts, f"starts: node {dict(starts)}, model {dict(model.starts)}"
    ends: dict[str, list[BaseException]] = {}
    for e in journal:
        if e[0] == "term":
            ends.setdefault(e[1], []).append(unwrap_reason(e[2]))
    assert ends == model.ends, f"terminations: node {ends}, model {model.ends}"
    last = {}
    for e in journal:
        if e[0] == "start":
            last[e[1]] = e[2]
    live = {tag for tag, pid in last.items() if pid.id in node._processes}
    assert live == model.live, f"running: node {sorted(live)}, model {sorted(model.live)}"
    assert len(node._processes) == len(model.live), "processes the model does not know of"


TestSupervisionTree = SupervisorMachine.TestCase
TestSupervisionTree.settings = settings(max_examples=400, stateful_step_count=30, deadline=None)


# -- planted bugs ---------------------------------------------------------------------------------


class _NeverForgets(Sup):
    """Restarts never leave the intensity window."""

    def _exceeded(self) -> bool:
        self._restarts.append(self._node._scheduler.now())
        return len(self._restarts) > self._spec.restart.intensity


class _OneTooFew(Sup):
    """One restart fewer than the intensity allows (``>=`` for ``>``)."""

    def _exceeded(self) -> bool:
        exceeded = Sup._exceeded(self)
        return exceeded or len(self._restarts) == self._spec.restart.intensity


class _TransientAfterNormal(Sup):
    """A transient child is restarted after a normal exit too."""

    def _restarts_it(self, child: Any, reason: BaseException) -> bool:
        return child.restart is not SupervisorStrategy.TEMPORARY


class _RestIsAll(Sup):
    """Rest for one restarts the children before the one that died, too."""

    def _widen_restart(self, child: Any) -> None:
        from ergo import SupervisorType

        kind, self._spec.type = self._spec.type, SupervisorType.ALL_FOR_ONE
        try:
            Sup._widen_restart(self, child)
        finally:
            self._spec.type = kind


class _SignificantIgnored(Sup):
    """A significant child's end does not end the supervisor."""

    def _init(self, args: tuple[Any, ...]) -> Any:
        Sup._init(self, args)
        for child in self._specs:
            child.significant = False


@pytest.mark.parametrize(
    ("planted", "complaint"),
    [
        (_NeverForgets, r"RestartsExceeded|starts"),
        (_OneTooFew, r"RestartsExceeded|starts"),
        (_TransientAfterNormal, r"starts"),
        (_RestIsAll, r"starts"),
        (_SignificantIgnored, r"terminations|running"),
    ],
    ids=lambda v: v.__name__.strip("_") if isinstance(v, type) else "",
)
def test_the_machine_catches_a_planted_bug(planted: type[Sup], complaint: str) -> None:
    machine = type(f"Planted{planted.__name__}", (SupervisorMachine,), {"sup_class": planted})
    found = settings(derandomize=True, database=None, max_examples=400, stateful_step_count=30,
                     report_multiple_bugs=False, phases=[Phase.explicit, Phase.generate], deadline=None)
    with pytest.raises(AssertionError, match=complaint):
        run_state_machine_as_test(machine, settings=found)


def test_the_unplanted_machine_passes_the_same_programs() -> None:
    run_state_machine_as_test(SupervisorMachine, settings=settings(
        derandomize=True, database=None, max_examples=150, stateful_step_count=30, deadline=None))

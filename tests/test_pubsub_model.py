"""Links, monitors, names, aliases and events against an explicit model (sim.testing).

The state machine spawns processes (trapping or not, children linked or not), links,
monitors, unlinks, demonitors, registers names, aliases and events, sends exits with
every reason, kills, stops and lets time pass, and after every step checks the node
against the model of who must hear what.  The planted-bug tests show that it would notice
a runtime that got these wrong.  CI=1 runs the derandomized "ci" profile (conftest.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from ergo import (
    Alias,
    ExitSignal,
    LinkExit,
    MessageDownAlias,
    MessageDownPID,
    MessageEventStop,
    MessageExitPID,
    MessageExitProcessID,
    Node,
    ProcessID,
    TerminateReasonKill,
    TerminateReasonNormal,
    TerminateReasonShutdown,
    Unregistered,
)
from sim.testing import PubSubMachine

#: ~1,000 programs of up to 50 steps, every step checked: about 20 s on one core
TestPubSub = PubSubMachine.TestCase
TestPubSub.settings = settings(max_examples=1000, stateful_step_count=50)


def test_the_harness_replays_a_cascade_step_by_step():
    """The rules are plain methods: a failing program can be replayed by hand, as here."""
    m = PubSubMachine()
    m.first_processes(traps=[False, False, True])
    a, b, c = m.model.live()
    m.link(consumer=b, watched=a)  # b dies with a
    m.monitor(consumer=c, watched=b)  # c hears that b died of a's exit
    m.register_name(pid=a, name="a")
    m.link(consumer=c, watched=ProcessID("a", m.node.name))  # c traps: an exit message
    m.create_alias(pid=b)
    m.monitor(consumer=c, watched=m.every_alias[0])
    m.end(how="node_send_exit", sender=c, to=a, exit_reason=TerminateReasonShutdown,
          stop_reason=TerminateReasonNormal, delay=1.0)
    m.node_agrees_with_model()
    # terminate() is told how each died; watchers of b hear a's reason, not the wrapper
    assert m.journal.reasons == {a: ExitSignal(m.node.pid, TerminateReasonShutdown),
                                 b: LinkExit(a, TerminateReasonShutdown)}
    b_died = TerminateReasonShutdown
    assert Counter(m.journal.heard[c]) == Counter([
        MessageExitProcessID(ProcessID("a", m.node.name), TerminateReasonShutdown),
        MessageDownPID(b, b_died),
        MessageDownAlias(m.every_alias[0], b_died),
    ])
    m.teardown()
    assert m.journal.reasons[c] == TerminateReasonKill


def test_a_parent_exit_is_not_trapped_but_a_sibling_exit_is():
    m = PubSubMachine()
    m.first_processes(traps=[False])
    (parent,) = m.model.live()
    m.spawn_child(parent=parent, trap=True, link_parent=False, link_child=False)
    m.spawn_child(parent=parent, trap=True, link_parent=False, link_child=False)
    _, child, sibling = m.model.live()
    m.end(how="send_exit", sender=sibling, to=child, exit_reason=TerminateReasonNormal,
          stop_reason=TerminateReasonNormal, delay=1.0)
    assert m.journal.heard[child] == [MessageExitPID(sibling, TerminateReasonNormal)]
    m.end(how="send_exit", sender=parent, to=child, exit_reason=TerminateReasonNormal,
          stop_reason=TerminateReasonNormal, delay=1.0)
    assert m.journal.reasons[child] == ExitSignal(parent, TerminateReasonNormal)
    m.node_agrees_with_model()
    m.teardown()


# -- planted bugs: the machine must catch each -------------------------------------------


def _quiet_name_monitors(node: Node) -> None:
    """A name going away forgets to tell its monitors (it does release them)."""
    pubsub, fire = node._pubsub, node._pubsub.fire

    def planted(target, reason, from_):
        if type(target) is ProcessID:
            for pid in pubsub._monitors.pop(target, {}):
                p = node._processes.get(pid.id)
                if p is not None and p._monitored:
                    p._monitored.pop(target, None)
        fire(target, reason, from_)

    pubsub.fire = planted


def _alias_deleted_reads_normal(node: Node) -> None:
    """A deleted alias is reported with reason normal instead of Unregistered."""
    pubsub, fire = node._pubsub, node._pubsub.fire

    def planted(target, reason, from_):
        if type(target) is Alias and reason == Unregistered():
            reason = TerminateReasonNormal
        fire(target, reason, from_)

    pubsub.fire = planted


def _dead_monitors_kept(node: Node) -> None:
    """A terminated process's monitors are not released (a leak in the target table)."""
    pubsub, gone = node._pubsub, node._pubsub.consumer_gone

    def planted(p):
        p._monitored = None
        gone(p)

    pubsub.consumer_gone = planted


def _no_event_stop(node: Node) -> None:
    """A producer registered with notify is never told that its last subscriber left."""
    pubsub, notify = node._pubsub, node._pubsub._notify

    def planted(entry, message):
        if type(message) is not MessageEventStop:
            notify(entry, message)

    pubsub._notify = planted


@pytest.mark.parametrize(
    ("bug", "complaint"),
    [
        (_quiet_name_monitors, r"missed \{MessageDownProcessID"),
        (_alias_deleted_reads_normal, r"Alias.*normal|normal.*Alias"),
        (_dead_monitors_kept, r"^monitors: node"),
        (_no_event_stop, r"MessageEventStop"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_the_machine_catches_a_planted_bug(bug: Callable[[Node], None], complaint: str):
    planted = type(f"Planted{bug.__name__}", (PubSubMachine,), {"plant": staticmethod(bug)})
    # derandomized and without the example database: the same programs every run; no
    # shrinking, which would cost ~20 s a bug (the report is a full program instead)
    found = settings(derandomize=True, database=None, max_examples=500, stateful_step_count=50,
                     report_multiple_bugs=False, phases=[Phase.explicit, Phase.generate], deadline=None)
    with pytest.raises(AssertionError, match=complaint):
        run_state_machine_as_test(planted, settings=found)


def test_the_unplanted_machine_passes_the_same_programs():
    """The control for the planted bugs: the same settings find nothing in the real runtime."""
    clean = type("Planted_nothing", (PubSubMachine,), {})
    run_state_machine_as_test(clean, settings=settings(derandomize=True, database=None, max_examples=100,
                                                       stateful_step_count=50, deadline=None))


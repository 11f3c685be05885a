"""Ergo's t005_actor_monitor_test.go (TestT5ActorMonitor), translated: a process monitors
a PID, a registered name, an alias and an event of a process it spawned; the target then
panics, is killed, gets an exit signal (``shutdown`` or the user's own reason) from its
parent, or unregisters what was monitored.  The monitor hears ``MessageDown*`` with the
target's reason; the target's ``terminate`` is told Ergo's ``"<parent>: reason"``."""

from __future__ import annotations

import pytest
from ergo_probe import Probe, ends, make_target, messages, run, target_react

from ergo import (
    PID,
    Alias,
    AliasUnknown,
    Event,
    EventUnknown,
    ExitSignal,
    MessageDownAlias,
    MessageDownEvent,
    MessageDownPID,
    MessageDownProcessID,
    ProcessID,
    ProcessUnknown,
    TerminateReasonKill,
    TerminateReasonPanic,
    TerminateReasonShutdown,
    Unregistered,
)

CUSTOM = RuntimeError("custom")  # Ergo's errors.New("custom"): any exception is a reason
UNREGISTERED = Unregistered()

DOWN = {"pid": MessageDownPID, "process_id": MessageDownProcessID, "alias": MessageDownAlias,
        "event": MessageDownEvent}




def _monitor_case(backend, kind: str, reason: BaseException) -> None:
    node = backend.node("t5node@localhost")
    journal: list = []
    monitoring = node.spawn(Probe, journal)
    target_pid = run(node, monitoring, lambda p: p.spawn(Probe, journal, False, target_react))
    target = run(node, target_pid, lambda p: make_target(kind, p, node, "t5"))
    assert node.process_info(monitoring).monitors == ()
    if kind == "event":
        assert run(node, monitoring, lambda p: p.monitor_event(target)) == []
    else:
        run(node, monitoring, lambda p: p.monitor(target))
    assert node.process_info(monitoring).monitors == (target,)

    if reason is TerminateReasonPanic:
        run(node, monitoring, lambda p: p.send(target_pid, "custom panic"))
    elif reason is TerminateReasonKill:
        node.kill(target_pid)
    elif reason is UNREGISTERED:
        run(node, monitoring, lambda p: p.send(target_pid, ("unregister", kind, target)))
    else:
        run(node, monitoring, lambda p: p.send_exit(target_pid, reason))
    backend.settle()

    assert messages(journal, monitoring) == [DOWN[kind](target, reason)]
    if reason is UNREGISTERED:
        assert node.process_info(target_pid).state is not None  # still alive
        return
    with pytest.raises(ProcessUnknown):
        node.process_info(target_pid)
    (ended,) = ends(journal, target_pid)
    if reason in (TerminateReasonPanic, TerminateReasonKill):
        assert ended is reason
    else:
        assert ended == ExitSignal(monitoring, reason) and ended.cause is reason


TERMINATIONS = [TerminateReasonKill, CUSTOM, TerminateReasonShutdown, TerminateReasonPanic]


@pytest.mark.parametrize("reason", TERMINATIONS, ids=str)
def test_monitor_pid(backend, reason):
    _monitor_case(backend, "pid", reason)


@pytest.mark.parametrize("reason", [*TERMINATIONS, UNREGISTERED], ids=str)
def test_monitor_process_id(backend, reason):
    _monitor_case(backend, "process_id", reason)


@pytest.mark.parametrize("reason", [*TERMINATIONS, UNREGISTERED], ids=str)
def test_monitor_alias(backend, reason):
    _monitor_case(backend, "alias", reason)


@pytest.mark.parametrize("reason", [*TERMINATIONS, UNREGISTERED], ids=str)
def test_monitor_event(backend, reason):
    _monitor_case(backend, "event", reason)


def test_monitor_unknown(backend):
    node = backend.node("t5node@localhost")
    pid = node.spawn(Probe)
    unknown_pid = PID(pid.node, pid.id + 10000, pid.creation)
    with pytest.raises(ProcessUnknown):
        run(node, pid, lambda p: p.monitor(unknown_pid))
    with pytest.raises(ProcessUnknown):
        run(node, pid, lambda p: p.monitor(ProcessID("test", node.name)))
    with pytest.raises(AliasUnknown):
        run(node, pid, lambda p: p.monitor(Alias(node.name, node.creation, (0, 0, 0))))
    with pytest.raises(EventUnknown):  # an empty node is the local one
        run(node, pid, lambda p: p.monitor_event(Event("test", "")))

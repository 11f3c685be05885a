"""Ergo's t006_actor_link_test.go (TestT6ActorLink), translated: a process, trapping exits
or not, links to a PID, a registered name, an alias or an event of a child it spawned;
the child is killed, gets an exit signal from it (``shutdown`` or the user's own reason),
or unregisters what was linked.  A trapping process hears ``MessageExit*`` with the
child's reason; one that does not trap terminates, its ``terminate`` told
``LinkExit(target, reason)`` (Ergo's ``"<target>: reason"``, ``errors.Unwrap`` → reason)."""

from __future__ import annotations

import pytest
from ergo_probe import Probe, ends, make_target, messages, run, target_react

from ergo import (
    PID,
    Alias,
    AliasUnknown,
    Event,
    EventUnknown,
    LinkExit,
    MessageExitAlias,
    MessageExitEvent,
    MessageExitPID,
    MessageExitProcessID,
    ProcessID,
    ProcessUnknown,
    TerminateReasonKill,
    TerminateReasonShutdown,
    Unregistered,
    unwrap_reason,
)

CUSTOM = RuntimeError("custom")
UNREGISTERED = Unregistered()
EXIT = {"pid": MessageExitPID, "process_id": MessageExitProcessID, "alias": MessageExitAlias,
        "event": MessageExitEvent}




def _link_case(backend, kind: str, trap: bool, reason: BaseException) -> None:
    node = backend.node("t6node@localhost")
    journal: list = []
    linking = node.spawn(Probe, journal, trap)
    child = run(node, linking, lambda p: p.spawn(Probe, journal, False, target_react))
    target = run(node, child, lambda p: make_target(kind, p, node, "t6"))
    if kind == "event":
        assert run(node, linking, lambda p: p.link_event(target)) == []
    else:
        run(node, linking, lambda p: p.link(target))
    assert node.process_info(linking).links == (target,)

    if reason is TerminateReasonKill:
        node.kill(child)
    elif reason is UNREGISTERED:
        run(node, linking, lambda p: p.send(child, ("unregister", kind, target)))
    else:
        run(node, linking, lambda p: p.send_exit(child, reason))
    backend.settle()

    if trap:
        assert messages(journal, linking)[-1] == EXIT[kind](target, reason)
        assert node.process_info(linking).links == ()
    else:
        (ended,) = ends(journal, linking)
        assert ended == LinkExit(target, reason) and unwrap_reason(ended) == reason
        with pytest.raises(ProcessUnknown):
            node.process_info(linking)


TERMINATIONS = [TerminateReasonKill, CUSTOM, TerminateReasonShutdown]


@pytest.mark.parametrize("trap", [False, True])
@pytest.mark.parametrize("reason", TERMINATIONS, ids=str)
def test_link_pid(backend, trap, reason):
    _link_case(backend, "pid", trap, reason)


@pytest.mark.parametrize("trap", [False, True])
@pytest.mark.parametrize("reason", [*TERMINATIONS, UNREGISTERED], ids=str)
def test_link_process_id(backend, trap, reason):
    _link_case(backend, "process_id", trap, reason)


@pytest.mark.parametrize("trap", [False, True])
@pytest.mark.parametrize("reason", [*TERMINATIONS, UNREGISTERED], ids=str)
def test_link_alias(backend, trap, reason):
    _link_case(backend, "alias", trap, reason)


@pytest.mark.parametrize("trap", [False, True])
@pytest.mark.parametrize("reason", [*TERMINATIONS, UNREGISTERED], ids=str)
def test_link_event(backend, trap, reason):
    _link_case(backend, "event", trap, reason)


def test_link_unknown(backend):
    node = backend.node("t6node@localhost")
    pid = node.spawn(Probe)
    unknown_pid = PID(pid.node, pid.id + 10000, pid.creation)
    with pytest.raises(ProcessUnknown):
        run(node, pid, lambda p: p.link(unknown_pid))
    with pytest.raises(ProcessUnknown):
        run(node, pid, lambda p: p.link(ProcessID("test", node.name)))
    with pytest.raises(AliasUnknown):
        run(node, pid, lambda p: p.link(Alias(node.name, node.creation, (0, 0, 0))))
    with pytest.raises(EventUnknown):  # an empty node is the local one
        run(node, pid, lambda p: p.link_event(Event("test", "")))

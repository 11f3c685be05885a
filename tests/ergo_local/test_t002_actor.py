"""Ergo's t002_actor_test.go (TestT2Actor/TestTrapExit), translated."""

from __future__ import annotations

from ergo_probe import Probe, ends, messages, run

from ergo import ExitSignal, MessageExitPID, TerminateReasonShutdown, unwrap_reason


def test_trap_exit(backend):
    node = backend.node("t2node@localhost")
    journal: list = []
    pid = node.spawn(Probe, journal)

    def toggle(p):
        assert p.trap_exit is False
        p.trap_exit = True
        assert p.trap_exit is True
        p.trap_exit = False
        return p.trap_exit

    assert run(node, pid, toggle) is False

    target = run(node, pid, lambda p: p.spawn(Probe, journal, True))  # a child that traps
    alien = run(node, pid, lambda p: p.spawn(Probe, journal))
    # a sibling's exit signal is trapped: a message
    run(node, alien, lambda p: p.send_exit(target, TerminateReasonShutdown))
    backend.settle()
    assert messages(journal, target) == [MessageExitPID(alien, TerminateReasonShutdown)]
    assert node.process_info(target).state is not None  # still alive

    # the parent's cannot be trapped: the child terminates, told "<parent>: shutdown"
    run(node, pid, lambda p: p.send_exit(target, TerminateReasonShutdown))
    backend.settle()
    (reason,) = ends(journal, target)
    assert reason == ExitSignal(pid, TerminateReasonShutdown)
    assert unwrap_reason(reason) == TerminateReasonShutdown  # Ergo: errors.Unwrap(reason)
    assert str(reason) == f"{pid}: shutdown"

"""Ergo's t004_actor_call_test.go (TestT4ActorCall), translated: calls by PID, name and
alias to a process that replies and stops, a call answered by another process, and a
call to an unknown name.

Ergo's HandleCall returns ``(result, TerminateReasonNormal)`` to reply and stop; here the
handler replies with ``send_response`` and raises the reason (documented difference)."""

from __future__ import annotations

from typing import Any

import pytest
from ergo_probe import Probe, run

from ergo import PID, Actor, Atom, ProcessID, ProcessTerminated, ProcessUnknown, TerminateReasonNormal


class Replier(Actor):
    """Replies with the request and stops normally, or forwards the call to ``forward_to``
    (which answers it) and stops without replying."""

    def init(self, forward_to: PID | None = None, aliases: list | None = None) -> None:
        self.forward_to = forward_to
        if aliases is not None:
            aliases.append(self.create_alias())

    def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
        if self.forward_to is not None:
            self.send(self.forward_to, ("forward", from_, ref, request))
        else:
            self.send_response(from_, ref, request)
        raise TerminateReasonNormal


class Answerer(Actor):
    def handle_message(self, from_: PID, message: Any) -> None:
        _, caller, ref, request = message
        self.send_response(caller, ref, request)


def _call_and_stop(backend, address, value):
    node = backend.node("t4node@localhost")
    caller = node.spawn(Probe)
    aliases: list = []
    target = run(node, caller, lambda p: p.spawn(Replier, None, aliases))
    to = address(node, target, aliases)

    async def call(p):
        return await p.call(to, value)

    assert run(node, caller, call) == value
    backend.settle()
    with pytest.raises(ProcessUnknown):  # it stopped after replying
        node.process_info(target)


def test_call_pid(backend):
    _call_and_stop(backend, lambda node, pid, aliases: pid, 1234)


def test_call_process_id(backend):
    def by_name(node, pid, aliases):
        node.register_name("replier", pid)
        return ProcessID("replier", node.name)

    _call_and_stop(backend, by_name, 1.234)


def test_call_alias(backend):
    _call_and_stop(backend, lambda node, pid, aliases: aliases[0], "hello")


def test_call_forward(backend):
    """A documented difference: Ergo's forwarder hands the call to another process and
    stops, and the other's answer still arrives.  Here, as with Erlang's gen_server:call,
    a call fails at once when its target terminates before answering, so a forwarder must
    outlive the answer (the forward without the stop is test_deferred_reply_from_another_process)."""
    node = backend.node("t4node@localhost")
    caller = node.spawn(Probe)
    answerer = node.spawn(Answerer)
    target = run(node, caller, lambda p: p.spawn(Replier, answerer))

    async def call(p):
        return await p.call(target, 12.34)

    with pytest.raises(ProcessTerminated, match=r"terminated \(normal\) before it replied"):
        run(node, caller, call)
    backend.settle()
    with pytest.raises(ProcessUnknown):
        node.process_info(target)


def test_call_unknown(backend):
    node = backend.node("t4node@localhost")
    caller = node.spawn(Probe)

    async def call(p):
        return await p.call(Atom("unknown process"), 1)

    with pytest.raises(ProcessUnknown):
        run(node, caller, call)

"""Calls fail fast and say why: a target that ends before answering fails its callers at
once with its reason; ``None`` is a reply and ``NoReply`` defers; a call never awaited is
reported; and nothing is kept for a call nobody waits for any more."""

from __future__ import annotations

import gc
import warnings
from typing import Any

import pytest
from support import Collector

from ergo import (
    Actor,
    MetaBehavior,
    NodeTerminated,
    NoReply,
    ProcessTerminated,
    TerminateReasonNormal,
    Timeout,
)


class Holder(Actor):
    """Takes calls and answers none of them until told; dies on "die", panics on "panic"."""

    def init(self) -> None:
        self.held: list = []

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        self.held.append((from_, ref))
        return NoReply

    def handle_message(self, from_: Any, message: Any) -> None:
        if message == "panic":
            raise RuntimeError("holder broke")
        if message == "stop":
            raise TerminateReasonNormal
        if message == "answer all":
            for f, r in self.held:
                self.send_response(f, r, "answered")


class AsyncCaller(Collector):
    """Calls ``target`` from an async handler and keeps what the call gave or raised."""

    async def handle_message(self, from_: Any, message: Any) -> None:
        if isinstance(message, tuple) and message[0] == "call":
            try:
                self.got.append((None, ("ok", await self.call(message[1], "q", timeout=3600))))
            except Exception as e:
                self.got.append((None, ("error", type(e).__name__, str(e))))
        else:
            super().handle_message(from_, message)


def test_a_call_fails_at_once_when_its_target_panics_later(backend):
    node = backend.node()
    holder = node.spawn(Holder)
    caller = node.spawn(AsyncCaller)
    node.send(caller, ("call", holder))
    node.call(node.spawn(Collector), "messages")  # the caller's call is made by now
    node.send(holder, "panic")  # it deferred the reply, then broke on something else
    [(kind, cls, text)] = node.call(caller, ("wait", 1))
    assert (kind, cls) == ("error", "ProcessTerminated")
    assert "terminated (panic: RuntimeError('holder broke')) before it replied" in text
    if backend.name == "sim":
        assert backend.sim.now == 0  # not the call's hour-long timeout


@pytest.mark.parametrize("how", ["kill", "normal", "exit"])
def test_a_call_fails_at_once_with_its_targets_reason(backend, how):
    node = backend.node()
    holder = node.spawn(Holder)
    caller = node.spawn(AsyncCaller)
    node.send(caller, ("call", holder))
    node.call(node.spawn(Collector), "messages")  # the caller's call is made by now
    if how == "kill":
        node.kill(holder)
    elif how == "normal":
        node.send(holder, "stop")
    else:
        node.send_exit(holder, RuntimeError("told to go"))
    [(kind, cls, text)] = node.call(caller, ("wait", 1))
    assert (kind, cls) == ("error", "ProcessTerminated")
    assert {"kill": "(kill)", "normal": "(normal)", "exit": "told to go"}[how] in text


def test_a_call_from_outside_fails_at_once_too(backend):
    node = backend.node()

    class Killer(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            self.node.kill(message)

    killer = node.spawn(Killer)

    class Doomed(Actor):
        async def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            self.send(killer, self.pid)
            await self.sleep(3600)
            return "never"

    with pytest.raises(ProcessTerminated, match=r"\(kill\)"):
        node.call(node.spawn(Doomed), "q", timeout=7200)
    if backend.name == "sim":
        assert backend.sim.now == 0


def test_a_meta_processs_callers_fail_when_it_ends(backend):
    node = backend.node()

    class Deaf(MetaBehavior):
        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            return NoReply

    class Owner(Actor):
        def init(self) -> None:
            self.meta = self.spawn_meta(Deaf())

        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            return self.meta

        def handle_message(self, from_: Any, message: Any) -> None:
            raise TerminateReasonNormal  # the meta-process dies with its owner

    owner = node.spawn(Owner)
    meta = node.call(owner, "alias?")
    caller = node.spawn(AsyncCaller)
    node.send(caller, ("call", meta))
    node.call(node.spawn(Collector), "messages")  # the caller's call is made by now
    node.send(owner, "go")
    [(kind, cls, text)] = node.call(caller, ("wait", 1))
    assert (kind, cls) == ("error", "ProcessTerminated") and "meta-process" in text


def test_a_call_pending_at_a_stop_fails_with_node_terminated(backend):
    node = backend.node()

    class Stopper(Actor):
        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            self.node.stop()  # from a handler: the stop proceeds once this returns
            return NoReply

    with pytest.raises(NodeTerminated, match="before it replied"):
        node.call(node.spawn(Stopper), "stop", timeout=3600)
    backend.settle()
    assert not node.is_alive()


def test_none_is_a_reply_and_no_reply_defers(backend):
    node = backend.node()

    class Replies(Actor):
        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            if request == "none":
                return None
            if request == "dict miss":
                return {}.get("absent")
            if request == "implicit":
                self.log.debug("a handler that forgot its return")
                return None
            return NoReply  # "defer": nobody answers

    class AsyncReplies(Actor):
        async def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            await self.sleep(0.001)
            if request == "defer":
                return NoReply
            return None

    r, a = node.spawn(Replies), node.spawn(AsyncReplies)
    assert node.call(r, "none") is None and node.call(r, "dict miss") is None
    assert node.call(r, "implicit") is None
    assert node.call(a, "none") is None
    with pytest.raises(Timeout):
        node.call(r, "defer", timeout=0.01)
    with pytest.raises(Timeout):
        node.call(a, "defer", timeout=0.01)


def test_a_handler_that_answered_itself_is_not_answered_twice(backend):
    node = backend.node()

    class Explicit(Actor):
        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            self.send_response(from_, ref, "explicit")
            # falls off the end: None, which must not overtake or replace the answer

    class AsyncExplicit(Actor):
        async def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            self.send_response(from_, ref, "explicit")
            await self.sleep(0.001)

    assert node.call(node.spawn(Explicit), "q") == "explicit"
    assert node.call(node.spawn(AsyncExplicit), "q") == "explicit"


def test_a_call_from_a_plain_handler_says_why_to_the_caller(backend):
    node = backend.node()
    other = node.spawn(Holder)

    class Plain(Actor):
        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            return self.call(other, "q")  # not awaited, not async: refused here

    with pytest.raises(ProcessTerminated, match="NotAllowed.*make the handler `async def`"):
        node.call(node.spawn(Plain), "go")


def test_a_call_never_awaited_is_reported(backend):
    node = backend.node()

    class Echo(Actor):
        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            return request

    echo = node.spawn(Echo)

    class Forgetful(Actor):
        async def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            self.call(echo, "forgotten")  # the await is forgotten: its reply comes, nobody looks
            return await self.call(echo, "awaited")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert node.call(node.spawn(Forgetful), "go") == "awaited"
        gc.collect()
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert messages == [f"the call to {echo} was never awaited"]


def test_calls_nobody_waits_for_leave_nothing_behind(backend):
    node = backend.node()
    holder = node.spawn(Holder)

    class Impatient(Actor):
        async def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            for _ in range(50):
                try:
                    await self.call(holder, "q", timeout=0.001)
                except Timeout:
                    pass
            return "gave up 50 times"

    assert node.call(node.spawn(Impatient), "go") == "gave up 50 times"
    caller = node.spawn(AsyncCaller)
    node.send(caller, ("call", holder))
    node.call(node.spawn(Collector), "messages")  # the caller's call is made by now
    # only the one call still waited for is in flight: the timed-out ones were forgotten
    assert len(node._timeouts) == 1 and len(node._processes[holder.id]._calls_in) == 1
    node.kill(caller)  # the caller that still waited is gone: its call is forgotten too
    assert len(node._timeouts) == 0 and not node._processes[holder.id]._calls_in

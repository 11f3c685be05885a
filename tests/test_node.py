"""The local node on both schedulers: identity, env, names, routing, calls, kill/exit, info."""

from __future__ import annotations

from typing import Any

import pytest
from support import Collector, ListLogger

import ergo
from ergo import (
    PID,
    Actor,
    Alias,
    Atom,
    ExitSignal,
    Fallback,
    Incorrect,
    MailboxFull,
    MessageExitPID,
    MessageFallback,
    MessagePriority,
    NameUnknown,
    NodeTerminated,
    NoReply,
    NotAllowed,
    ProcessID,
    ProcessOptions,
    ProcessState,
    ProcessTerminated,
    ProcessUnknown,
    Taken,
    TerminateReason,
    TerminateReasonKill,
    TerminateReasonNormal,
    TerminateReasonPanic,
    Timeout,
)


class Recorder(Actor):
    """Records what happens to it in a shared list (the test keeps the list)."""

    def init(self, journal: list, trap: bool = False) -> None:
        self.journal = journal
        self.trap_exit = trap

    def handle_message(self, from_: PID, message: Any) -> None:
        self.journal.append(("message", from_, message))
        if message == "stop":
            raise TerminateReasonNormal
        if message == "crash":
            raise RuntimeError("boom")
        if message == "stop-node":
            self.node.stop()
            self.journal.append(("stop returned",))

    def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
        if request == "ignore":
            return NoReply
        if request == "crash":
            raise RuntimeError("boom in call")
        return ("reply", request)

    def terminate(self, reason: BaseException) -> None:
        self.journal.append(("terminate", reason))


# -- the node ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["noat", "a@b@c", "@host", "name@", "x" * 250 + "@" + "y" * 10, 5,
                                 "a\nforged@localhost", "a@local\x1b[2Khost"])
def test_node_name_must_be_name_at_host(backend, bad):
    with pytest.raises(Incorrect):
        backend.node(bad)


def test_node_identity_and_info(backend):
    node = backend.node("demo@localhost")
    assert node.name == "demo@localhost" and isinstance(node.name, Atom)
    assert node.is_alive()
    assert node.pid == PID("demo@localhost", 1, node.creation)
    assert node.uptime >= 0
    pid = node.spawn(Collector)
    assert pid.id == 1001 and pid.creation == node.creation
    assert node.spawn(Collector).id == 1002
    info = node.info()
    assert info.name == node.name and info.processes_total == 2 and info.registered_names == 0
    assert "captured" in info.loggers
    r1, r2 = node.make_ref(), node.make_ref()
    assert r1 != r2 and r1.node == node.name


def test_env_is_case_insensitive_and_inherited_by_later_spawns_only(backend):
    node = backend.node()
    node.set_env("Color", "red")
    assert node.env("COLOR") == "red" and node.env("color") == "red"
    before = node.spawn(Collector)
    node.set_env("size", 3)
    after = node.spawn(Collector, options=ProcessOptions(env={"own": 1}))
    assert node.process_info(before).env == {"COLOR": "red"}
    assert node.process_info(after).env == {"COLOR": "red", "SIZE": 3, "OWN": 1}
    node.set_env("color", None)
    assert node.env("color") is None and node.env_list() == {"SIZE": 3}
    assert node.process_info(after).env["COLOR"] == "red"


def test_child_inherits_parent_env(backend):
    node = backend.node()

    class Parent(Actor):
        def init(self) -> None:
            self.set_env("from_parent", "yes")
            self.child = self.spawn(Collector)

        def handle_call(self, from_, ref, request):
            return self.child

    parent = node.spawn(Parent)
    child = node.call(parent, "child")
    info = node.process_info(child)
    assert info.env["FROM_PARENT"] == "yes" and info.parent == parent and info.leader == node.pid


def test_each_process_keeps_its_own_env_though_spawn_shares_equal_ones(backend):
    """A child's env starts equal to its parent's (the node's is empty), a process spawned
    by the node has the node's: what any of them sets later is its own alone."""
    from drive import Driver, act

    node = backend.node()

    def env(pid: Any) -> dict:
        return node.process_info(pid).env

    parent = node.spawn(Driver)
    act(node, parent, lambda p: p.set_env("shared", 1))
    first = act(node, parent, lambda p: p.spawn(Driver))
    plain = node.spawn(Driver)  # the node's env, empty
    act(node, first, lambda p: p.set_env("child_only", 5))
    assert env(parent) == {"SHARED": 1} and env(first) == {"SHARED": 1, "CHILD_ONLY": 5}
    act(node, parent, lambda p: p.set_env("shared", 2))
    assert env(first) == {"SHARED": 1, "CHILD_ONLY": 5}
    second = act(node, parent, lambda p: p.spawn(Driver))
    assert env(second) == {"SHARED": 2}
    act(node, plain, lambda p: p.set_env("plain", 6))
    assert node.env_list() == {} and env(node.spawn(Driver)) == {}
    node.set_env("from_node", 4)
    assert env(plain) == {"PLAIN": 6} and env(parent) == {"SHARED": 2} and env(second) == {"SHARED": 2}
    assert env(act(node, parent, lambda p: p.spawn(Driver))) == {"FROM_NODE": 4, "SHARED": 2}


# -- names and spawn ------------------------------------------------------------------------


def test_spawn_register_and_names(backend):
    node = backend.node()
    pid = node.spawn_register("main", Collector)
    assert node.process_info(pid).name == "main" and node.whereis("main") == pid
    with pytest.raises(Taken):
        node.spawn_register("main", Collector)
    other = node.spawn(Collector)
    with pytest.raises(Taken):
        node.register_name("main", other)
    with pytest.raises(Taken):
        node.register_name("second", pid)  # a process has one name at most
    assert node.unregister_name("main") == pid
    with pytest.raises(NameUnknown):
        node.unregister_name("main")
    node.register_name("main", other)
    assert node.whereis("main") == other


def test_spawn_rejects_bad_arguments(backend):
    node = backend.node()
    with pytest.raises(Incorrect):
        node.spawn(42)
    with pytest.raises(Incorrect):
        node.spawn(dict)
    with pytest.raises(Incorrect):
        node.spawn(Collector, options={"mailbox_size": 1})
    with pytest.raises(Incorrect):
        ProcessOptions(mailbox_size=-1)


def test_failed_init_raises_from_spawn_and_frees_the_name(backend):
    node = backend.node()

    class Bad(Actor):
        def init(self) -> None:
            raise ValueError("no config")

    with pytest.raises(ValueError, match="no config"):
        node.spawn_register("bad", Bad)
    assert node.whereis("bad") is None and node.process_list() == []


def test_async_init_is_refused(backend):
    node = backend.node()

    class AsyncInit(Actor):
        async def init(self) -> None:
            pass

    with pytest.raises(NotAllowed):
        node.spawn(AsyncInit)
    assert node.process_list() == []


def test_message_sent_to_self_during_init_is_handled_after_init(backend):
    node = backend.node()
    journal: list = []

    class SelfSender(Recorder):
        def init(self, journal: list) -> None:
            super().init(journal)
            self.send(self.pid, "hello me")
            journal.append(("init done",))

    node.spawn(SelfSender, journal)
    backend.settle()
    assert journal[0] == ("init done",) and journal[1][2] == "hello me"


# -- routing -------------------------------------------------------------------------------


def test_send_to_pid_name_processid_and_alias(backend):
    node = backend.node()

    class AliasMaker(Collector):
        def handle_call(self, from_, ref, request):
            if request == "alias":
                return self.create_alias()
            return super().handle_call(from_, ref, request)

    pid = node.spawn_register("c", AliasMaker)
    alias = node.call(pid, "alias")
    assert isinstance(alias, Alias)
    node.send(pid, 1)
    node.send("c", 2)
    node.send(Atom("c"), 3)
    node.send(ProcessID("c", node.name), 4)
    node.send(alias, 5)
    assert node.call(pid, ("wait", 5)) == [1, 2, 3, 4, 5]
    assert node.call(pid, "senders") == [node.pid] * 5


def test_send_errors_say_what_was_wrong(backend):
    node = backend.node()
    with pytest.raises(ProcessUnknown, match="1234"):
        node.send(PID(node.name, 1234, node.creation), "x")
    with pytest.raises(ProcessUnknown, match="nobody"):
        node.send("nobody", "x")
    with pytest.raises(ProcessUnknown):
        node.send(Alias(node.name, node.creation, (999, 0, 0)), "x")
    with pytest.raises(Incorrect, match="cannot send to"):
        node.send(3.5, "x")
    pid = node.spawn(Collector)
    with pytest.raises(ProcessUnknown):  # an older incarnation of the node
        node.send(PID(node.name, pid.id, node.creation - 1), "x")


def test_messages_from_one_sender_arrive_in_order(backend):
    node = backend.node()
    sink = node.spawn(Collector)

    class Burst(Actor):
        def handle_message(self, from_, message):
            for i in range(500):
                self.send(sink, i)

    node.send(node.spawn(Burst), "go")
    assert node.call(sink, ("wait", 500)) == list(range(500))


def test_priorities_drain_urgent_then_system_then_main(backend):
    node = backend.node()
    sink = node.spawn(Collector)

    class Sender(Actor):
        def handle_message(self, from_, message):
            # the sink is asleep while this handler runs: all three are queued before it runs
            self.send(sink, "normal")
            self.send_with_priority(sink, "high", MessagePriority.HIGH)
            self.send_with_priority(sink, "max", MessagePriority.MAX)

    node.send(node.spawn(Sender), "go")
    assert node.call(sink, ("wait", 3)) == ["max", "high", "normal"]


def test_mailbox_full_refuses_with_a_clear_error(backend):
    node = backend.node()
    errors = []

    class Flood(Actor):
        def handle_message(self, from_, message):
            for i in range(3):
                try:
                    self.send(message, i)
                except MailboxFull as e:
                    errors.append(str(e))

    small = node.spawn(Collector, options=ProcessOptions(mailbox_size=2))
    node.send(node.spawn(Flood), small)
    backend.settle()
    assert node.call(small, "messages") == [0, 1]
    assert len(errors) == 1 and str(small) in errors[0]


def test_full_mailbox_forwards_to_the_fallback(backend):
    node = backend.node()
    spare = node.spawn_register("spare", Collector)

    class Flood(Actor):
        def handle_message(self, from_, message):
            for i in range(3):
                self.send(message, i)

    small = node.spawn(Collector, options=ProcessOptions(mailbox_size=2, fallback=Fallback("spare", tag="overflow")))
    node.send(node.spawn(Flood), small)
    [fallback] = node.call(spare, ("wait", 1))
    assert fallback == MessageFallback(small, "overflow", small, 2)


def test_send_after_delivers_later_and_can_be_cancelled(backend):
    node = backend.node()
    sink = node.spawn(Collector)

    class Timer(Actor):
        def handle_message(self, from_, message):
            self.send_after(sink, "late", 0.02)
            handle = self.send_after(sink, "cancelled", 0.01)
            handle.cancel()
            self.send(sink, "now")

    node.send(node.spawn(Timer), "go")
    assert node.call(sink, ("wait", 2)) == ["now", "late"]
    backend.settle()
    assert node.call(sink, "messages") == ["now", "late"]


def test_aliases_route_until_deleted(backend):
    node = backend.node()

    class Owner(Collector):
        def handle_call(self, from_, ref, request):
            if request == "make":
                self.alias = self.create_alias()
                return self.alias
            if request == "delete":
                self.delete_alias(self.alias)
                return "deleted"
            if request == "delete-foreign":
                try:
                    self.delete_alias(Alias(node.name, node.creation, (77, 0, 0)))
                except ergo.AliasOwner:
                    return "not mine"
            return super().handle_call(from_, ref, request)

    pid = node.spawn(Owner)
    alias = node.call(pid, "make")
    assert node.process_info(pid).aliases == (alias,)
    node.send(alias, "via alias")
    assert node.call(pid, ("wait", 1)) == ["via alias"]
    assert node.call(pid, "delete-foreign") == "not mine"
    assert node.call(pid, "delete") == "deleted"
    with pytest.raises(ProcessUnknown):
        node.send(alias, "gone")


# -- calls ---------------------------------------------------------------------------------


def test_call_from_outside_gets_the_reply(backend):
    node = backend.node()
    pid = node.spawn(Recorder, [])
    assert node.call(pid, 7) == ("reply", 7)


def test_call_times_out_when_no_reply_comes(backend):
    node = backend.node()
    pid = node.spawn(Recorder, [])
    with pytest.raises(Timeout, match="no reply"):
        node.call(pid, "ignore", timeout=0.01)
    assert node.call(pid, 1) == ("reply", 1)  # the process is fine


def test_call_to_unknown_process_raises_at_once(backend):
    node = backend.node()
    with pytest.raises(ProcessUnknown):
        node.call("nobody", 1)


def test_handler_exception_is_a_panic_that_hurts_nobody_else(backend):
    node = backend.node()
    journal: list = []
    victim = node.spawn(Recorder, journal)
    bystander = node.spawn(Recorder, [])
    # the caller learns at once, and why (as Erlang's gen_server:call does; Ergo times out)
    with pytest.raises(ProcessTerminated, match=r"terminated \(panic: RuntimeError\('boom in call'\)\)"):
        node.call(victim, "crash", timeout=60)
    assert journal[-1] == ("terminate", TerminateReasonPanic)
    assert victim not in node.process_list()
    panics = node.captured.texts(ergo.LogLevel.PANIC)
    assert any("RuntimeError: boom in call" in t and "Traceback" in t for t in panics)
    assert node.call(bystander, 1) == ("reply", 1) and node.is_alive()


def test_async_handler_calls_another_process_and_replies(backend):
    node = backend.node()
    echo = node.spawn(Recorder, [])

    class Proxy(Actor):
        async def handle_call(self, from_, ref, request):
            answer = await self.call(echo, request)
            await self.sleep(0.001)
            return ("proxied", answer)

    proxy = node.spawn(Proxy)
    assert node.call(proxy, 5) == ("proxied", ("reply", 5))


def test_waiting_process_keeps_its_mailbox_filling(backend):
    node = backend.node()
    slow = node.spawn(Recorder, [])
    observed: dict = {}

    class Waiter(Collector):
        async def handle_call(self, from_, ref, request):
            if request == "block":
                try:
                    await self.call(slow, "ignore", timeout=0.05)
                except Timeout:
                    return "timed out"
            return super().handle_call(from_, ref, request)

    class Prober(Actor):
        async def handle_message(self, from_, message):
            waiter = message
            result_future = self.call(waiter, "block", timeout=1)
            await self.sleep(0.001)
            for i in range(3):
                self.send(waiter, i)
            info = node.process_info(waiter)
            observed["state"] = info.state
            observed["main"] = info.mailbox_queues["main"]
            observed["result"] = await result_future

    waiter = node.spawn(Waiter)
    prober = node.spawn(Prober)
    node.send(prober, waiter)
    assert node.call(waiter, ("wait", 3)) == [0, 1, 2]
    backend.settle()
    assert observed == {"state": ProcessState.WAIT_RESPONSE, "main": 3, "result": "timed out"}


def test_deferred_reply_from_another_process(backend):
    node = backend.node()

    class Worker(Actor):
        def handle_message(self, from_, message):
            caller, ref, request = message
            if request == "fail":
                self.send_response_error(caller, ref, Taken("busy"))
            else:
                self.send_response(caller, ref, request * 2)

    worker = node.spawn(Worker)

    class Front(Actor):
        def handle_call(self, from_, ref, request):
            self.send(worker, (from_, ref, request))
            return NoReply  # the worker replies

    front = node.spawn(Front)
    assert node.call(front, 21) == 42
    with pytest.raises(Taken, match="busy"):
        node.call(front, "fail")


def test_late_reply_is_dropped(backend):
    node = backend.node()

    class Late(Actor):
        def handle_call(self, from_, ref, request):
            self.pending = (from_, ref)
            return NoReply

        def handle_message(self, from_, message):
            self.send_response(*self.pending, "too late")

    late = node.spawn(Late)

    class Caller(Collector):
        async def handle_message(self, from_, message):
            if message == "go":
                try:
                    await self.call(late, "q", timeout=0.01)
                except Timeout:
                    self.got.append((None, "timeout"))
                    self.send(late, "now reply")
                    await self.sleep(0.01)
                    self.got.append((None, "still alive"))

    caller = node.spawn(Caller)
    node.send(caller, "go")
    backend.settle()
    assert node.call(caller, "messages") == ["timeout", "still alive"]


def test_calling_yourself_is_not_allowed(backend):
    node = backend.node()

    class Narcissus(Actor):
        async def handle_call(self, from_, ref, request):
            try:
                await self.call(self.pid, "me")
            except NotAllowed as e:
                return str(e)

    pid = node.spawn(Narcissus)
    assert "cannot call itself" in node.call(pid, "go")


def test_call_from_a_plain_handler_says_to_use_async(backend):
    node = backend.node()
    other = node.spawn(Collector)

    class Plain(Actor):
        def handle_call(self, from_, ref, request):
            try:
                self.call(other, "messages")
            except NotAllowed as e:
                return str(e)

    assert "async def" in node.call(node.spawn(Plain), "go")


def test_node_call_inside_a_handler_is_refused(backend):
    node = backend.node()

    class Blocker(Actor):
        def handle_call(self, from_, ref, request):
            try:
                node.call(from_, "x")
            except NotAllowed as e:
                return str(e)

    assert "cannot block inside a handler" in node.call(node.spawn(Blocker), "go")


# -- exit signals and kill --------------------------------------------------------------


def test_send_exit_terminates_with_the_reason(backend):
    node = backend.node()
    journal: list = []
    pid = node.spawn(Recorder, journal)
    node.send_exit(pid, TerminateReason("enough"))
    backend.settle()
    # Ergo's "<sender>: reason": terminate() is told who sent the signal
    assert journal == [("terminate", ExitSignal(node.pid, TerminateReason("enough")))]
    assert str(journal[0][1]) == f"{node.pid}: enough"
    with pytest.raises(ProcessUnknown):
        node.process_info(pid)
    with pytest.raises(Incorrect):
        node.send_exit(node.spawn(Collector), "not an exception")


def test_trapped_exit_arrives_as_a_message_but_not_from_the_parent(backend):
    node = backend.node()
    journal: list = []

    class Parent(Actor):
        def init(self) -> None:
            self.child = self.spawn(Recorder, journal, True)

        def handle_call(self, from_, ref, request):
            if request == "child":
                return self.child
            self.send_exit(self.child, TerminateReason("from parent"))
            return "sent"

    parent = node.spawn(Parent)
    child = node.call(parent, "child")
    node.send_exit(child, TerminateReason("from core"))
    backend.settle()
    assert journal == [("message", node.pid, MessageExitPID(node.pid, TerminateReason("from core")))]
    assert node.call(parent, "exit") == "sent"
    backend.settle()
    assert journal[-1] == ("terminate", ExitSignal(parent, TerminateReason("from parent")))


def test_kill_a_sleeping_process(backend):
    node = backend.node()
    journal: list = []
    pid = node.spawn_register("k", Recorder, journal, True)
    node.kill(pid)
    assert pid not in node.process_list() and node.whereis("k") is None
    assert journal == [("terminate", TerminateReasonKill)]
    with pytest.raises(ProcessUnknown):
        node.kill(pid)


def test_kill_a_waiting_process_closes_its_coroutine(backend):
    node = backend.node()
    silent = node.spawn(Recorder, [])
    journal: list = []

    class Waiter(Actor):
        async def handle_message(self, from_, message):
            try:
                await self.call(silent, "ignore", timeout=100)
            finally:
                journal.append("coroutine closed")

        def terminate(self, reason):
            journal.append(("terminate", reason))

    waiter = node.spawn(Waiter)
    node.send(waiter, "go")
    node.call(silent, 0)  # by now the waiter waits
    assert node.process_info(waiter).state == ProcessState.WAIT_RESPONSE
    node.kill(waiter)
    assert journal == ["coroutine closed"]
    assert waiter not in node.process_list()


def test_a_process_killed_while_running_finishes_as_a_zombee(backend):
    node = backend.node()
    journal: list = []

    class Suicidal(Actor):
        def handle_message(self, from_, message):
            node.kill(self.pid)
            journal.append(("after kill", self.state))

    pid = node.spawn(Suicidal)
    node.send(pid, "go")
    backend.settle()
    assert journal == [("after kill", ProcessState.ZOMBEE)]
    assert pid not in node.process_list()


def test_process_info_and_list(backend):
    node = backend.node()
    pid = node.spawn_register("p", Collector,
                              options=ProcessOptions(mailbox_size=10, send_priority=MessagePriority.HIGH))
    node.send(pid, "m")
    node.call(pid, ("wait", 1))
    info = node.process_info(pid)
    assert info.pid == pid and info.name == "p" and info.behavior == "Collector"
    assert info.state == ProcessState.SLEEP and info.mailbox_size == 10
    assert info.message_priority == MessagePriority.HIGH and info.messages_in == 2
    assert info.parent == node.pid and info.mailbox_queues == {"urgent": 0, "system": 0, "main": 0, "log": 0}
    assert node.process_list() == [pid]


def test_inspect_reports_what_the_process_says(backend):
    node = backend.node()

    class Inspectable(Actor):
        def handle_inspect(self, from_, *items):
            return {"items": ",".join(items)}

    assert node.inspect(node.spawn(Inspectable), "a", "b") == {"items": "a,b"}


def test_awaiting_a_foreign_awaitable_in_simulation_is_a_clear_error():
    from support import SimBackend

    b = SimBackend()
    node = b.node()

    class Foreign:
        def __await__(self):
            yield "not a runtime future"

    class Bad(Actor):
        async def handle_call(self, from_, ref, request):
            try:
                await Foreign()
            except NotAllowed as e:
                return str(e)

    assert "only the runtime's own awaitables" in node.call(node.spawn(Bad), "go")


def test_stopped_node_refuses_work(backend):
    node = backend.node()
    node.stop()
    assert not node.is_alive()
    with pytest.raises(NodeTerminated):
        node.spawn(Collector)
    with pytest.raises(NodeTerminated):
        node.send("x", 1)


def test_a_stopped_node_raises_node_terminated_where_ergo_does(backend):
    """Ergo's Info, ProcessInfo, ProcessList, MetaInfo, Kill, SendExit, RegisterName,
    UnregisterName, RegisterEvent, UnregisterEvent, LoggerAdd(PID) and calls all fail with
    ErrNodeTerminated once the node has stopped; its name, env and loggers still answer."""
    node = backend.node()
    pid = node.spawn(Collector)
    node.stop()
    for attempt in [
        node.info, node.process_list, lambda: node.process_info(pid), lambda: node.kill(pid),
        lambda: node.send_exit(pid, TerminateReason("x")), lambda: node.register_name("n", pid),
        lambda: node.unregister_name("n"), lambda: node.register_event("e"), lambda: node.unregister_event("e"),
        lambda: node.meta_info(node._new_alias()), lambda: node.logger_add("l", ListLogger()),
        lambda: node.logger_add_process(pid), lambda: node.call(pid, 1),
    ]:
        with pytest.raises(NodeTerminated):
            attempt()
    assert node.name == "test@localhost" and node.env_list() == {} and node.loggers() == ()
    node.set_env("still", 1)
    assert node.env("still") == 1


def test_a_process_that_kills_itself_then_awaits_never_resumes(backend):
    node = backend.node()
    journal: list = []

    class Suicidal(Actor):
        async def handle_message(self, from_, message):
            node.kill(self.pid)
            try:
                await self.sleep(0.001)
                journal.append("resumed after death")
            finally:
                journal.append("coroutine closed")

    pid = node.spawn(Suicidal)
    node.send(pid, "go")
    backend.settle()
    node.spawn(Collector)  # the clock goes on; a wrongly parked coroutine would resume by now
    backend.settle()
    assert journal == ["coroutine closed"]
    assert pid not in node.process_list()


def test_split_handle_routes_by_how_a_message_or_call_was_addressed(backend):
    """Ergo's SetSplitHandle: by registered name (a str, an Atom or a ProcessID) or by
    alias, messages and calls reach their own callbacks; by PID, the usual ones."""
    node = backend.node()
    seen: list = []

    class Split(Actor):
        def init(self) -> None:
            self.split_handle = True

        def handle_message(self, from_, message):
            seen.append(("pid", message))

        def handle_message_name(self, name, from_, message):
            seen.append(("name", name, message))

        def handle_message_alias(self, alias, from_, message):
            seen.append(("alias", alias, message))

        def handle_call(self, from_, ref, request):
            if request == "alias":
                return self.create_alias()
            return ("pid", request)

        async def handle_call_name(self, name, from_, ref, request):
            return ("name", name, request)  # an async one replies with its return value

    pid = node.spawn_register("split", Split)
    alias = node.call(pid, "alias")
    for to in (pid, "split", ergo.Atom("split"), ProcessID("split", node.name), alias):
        node.send(to, 1)
    backend.settle()
    assert seen == [("pid", 1), ("name", "split", 1), ("name", "split", 1), ("name", "split", 1),
                    ("alias", alias, 1)]
    assert type(seen[1][1]) is ergo.Atom
    assert node.call(pid, 2) == ("pid", 2)
    assert node.call(ProcessID("split", node.name), 2) == ("name", "split", 2)
    # the default handle_call_alias answers as handle_call does: Unsupported
    with pytest.raises(ergo.Unsupported):
        node.call(alias, 2)


@pytest.mark.parametrize("bad", [
    dict(level=100), dict(level=-1), dict(level=True), dict(level="2"),
    dict(threshold=1023), dict(threshold=1), dict(threshold=2048.0), dict(enable="yes"),
])
def test_compression_options_take_ergos_levels_and_minimum_threshold(bad):
    with pytest.raises(Incorrect):
        ergo.CompressionOptions(**bad)


def test_compression_options_are_checked_on_spawn_and_on_set(backend):
    node = backend.node()
    with pytest.raises(Incorrect):
        ProcessOptions(compression="fast")
    good = ergo.CompressionOptions(enable=True, level=ergo.CompressionLevel.BEST_SPEED, threshold=4096)
    pid = node.spawn(Collector, options=ProcessOptions(compression=good))
    assert node.process_info(pid).compression == good
    assert ergo.CompressionOptions(level=2).level is ergo.CompressionLevel.BEST_SIZE

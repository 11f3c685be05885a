"""The node's own contract (ergo/node/node.py) on both schedulers: stopping, what a stopped
node refuses, its info, spawn's checks, name and target resolution, and responses."""

from __future__ import annotations

from typing import Any

import pytest
from drive import Driver, act
from support import Collector

import ergo
from ergo import (
    PID,
    Alias,
    Atom,
    ExitSignal,
    Incorrect,
    MessageDownPID,
    MessageDownProcessID,
    MetaUnknown,
    NetworkStopped,
    NodeTerminated,
    NotAllowed,
    ProcessID,
    ProcessOptions,
    ProcessTerminated,
    ProcessUnknown,
    Ref,
    Taken,
    TerminateReasonKill,
    TerminateReasonNormal,
    TerminateReasonShutdown,
)

# -- stopping ---------------------------------------------------------------------------------


def test_stop_returns_once_every_process_has_terminated(backend):
    node = backend.node()
    journal: list = []
    parent = node.spawn(Driver, journal)
    act(node, parent, lambda p: p.spawn(Driver, p.journal))
    node.stop()
    assert not node.is_alive()
    with pytest.raises(NodeTerminated):  # Ergo's rule: a stopped node describes no processes
        node.process_list()
    # each from its parent, wrapped as Ergo's "<parent>: shutdown" (docs/node.md)
    assert journal == [("terminate", ExitSignal(node.pid, TerminateReasonShutdown)),
                       ("terminate", ExitSignal(parent, TerminateReasonShutdown))]
    assert node.wait(0) is True
    assert node.uptime == 0.0
    node.stop()  # a second stop is a no-op
    node.stop_force()
    assert not node.is_alive()


def test_stop_from_a_handler_returns_at_once_and_the_node_stops_after(backend):
    node = backend.node()
    journal: list = []

    class Stopper(Driver):
        def handle_message(self, from_: PID, message: Any) -> None:
            self.node.stop()
            self.journal.append(("stop returned", self.node.is_alive()))

    pid = node.spawn(Stopper, journal)
    node.send(pid, "stop")
    assert node.wait(10) is True
    assert journal == [("stop returned", True), ("terminate", ExitSignal(node.pid, TerminateReasonShutdown))]


def test_stop_force_kills_without_asking(backend):
    node = backend.node()
    journal: list = []
    node.spawn(Driver, journal)
    node.stop_force()
    assert not node.is_alive()
    assert journal == [("terminate", TerminateReasonKill)]


def test_a_stopped_node_refuses_new_work(backend):
    node = backend.node()
    pid = node.spawn(Driver)
    node.stop()
    with pytest.raises(NodeTerminated):
        node.spawn(Driver)
    with pytest.raises(NodeTerminated):
        node.send(pid, "late")
    with pytest.raises(NodeTerminated):
        node.register_event("late")
    with pytest.raises(NodeTerminated):
        node.send_event("late", node.make_ref(), "news")
    with pytest.raises(NodeTerminated):
        node.call(pid, "late")


def test_a_stopping_node_refuses_to_spawn(backend):
    node = backend.node()
    seen: list = []

    class Stopper(Driver):
        def handle_message(self, from_: PID, message: Any) -> None:
            self.node.stop()
            try:
                self.spawn(Driver)
            except NodeTerminated as e:
                seen.append(e)

    node.send(node.spawn(Stopper), "stop")
    node.wait(10)
    assert len(seen) == 1


def test_uptime_runs_on_the_scheduler_clock():
    from support import SimBackend

    b = SimBackend()
    try:
        b.sim.run_for(4)
        node = b.node()
        b.sim.run_for(3)
        assert node.uptime == pytest.approx(3)
        assert node.info().uptime == pytest.approx(3)
    finally:
        b.close()


# -- info -----------------------------------------------------------------------------------


def test_node_info_counts_what_the_node_holds(backend):
    node = backend.node()
    node.set_env("k", 1)
    a = node.spawn(Driver)
    node.spawn_register("named", Driver)
    act(node, a, lambda p: (p.create_alias(), p.register_event("ev")))
    info = node.info()
    assert info.version == ergo.node.node.VERSION
    assert info.env == {"K": 1}
    assert (info.processes_total, info.registered_names, info.registered_aliases, info.registered_events) == (
        2, 1, 1, 1)
    assert info.processes_running == 0 and info.processes_zombee == 0
    assert info.creation == node.creation and info.log_level == node.log.level


def test_node_info_counts_running_and_zombee_processes(backend):
    from test_runner_contract import settle_now

    node = backend.node()
    gate = node.spawn(Collector)

    class Blocked(Driver):
        async def handle_message(self, from_: PID, message: Any) -> None:
            await self.call(gate, ("wait", 1), timeout=1000)

    b1, b2 = node.spawn(Blocked), node.spawn(Blocked)
    node.send(b1, "go")
    node.send(b2, "go")
    settle_now(backend)
    assert node.info().processes_running == 2
    node.kill(b2)  # killed while suspended: it leaves the table at once
    info = node.info()
    assert (info.processes_total, info.processes_running, info.processes_zombee) == (2, 1, 0)


# -- spawning -------------------------------------------------------------------------------


def test_spawn_checks_its_arguments(backend):
    node = backend.node()
    with pytest.raises(Incorrect):
        node.spawn(Driver, options={"mailbox_size": 1})
    with pytest.raises(Incorrect):
        node.spawn("not callable")
    with pytest.raises(Incorrect):
        node.spawn(lambda: object())
    bound = node.spawn(Driver)
    process = act(node, bound, lambda p: p)
    with pytest.raises(Incorrect):
        node.spawn(lambda: process)

    class Singleton(Driver):  # a class whose construction runs code of its own is checked too
        def __new__(cls) -> Any:
            return process

    class Cached(type):
        def __call__(cls) -> Any:
            return process

    class ByMetaclass(Driver, metaclass=Cached):
        pass

    with pytest.raises(Incorrect):
        node.spawn(Singleton)
    with pytest.raises(Incorrect):
        node.spawn(ByMetaclass)
    with pytest.raises(Incorrect):
        node.spawn_register("", Driver)
    node.spawn_register("taken", Driver)
    with pytest.raises(Taken):
        node.spawn_register("taken", Driver)
    assert len(node.process_list()) == 2


def test_a_failing_init_spawns_nothing_and_raises_its_error(backend):
    node = backend.node()

    class Fails(Driver):
        def init(self) -> None:
            raise ValueError("init failed")

    class AsyncInit(Driver):
        async def init(self) -> None:  # type: ignore[override]
            pass

    with pytest.raises(ValueError):
        node.spawn_register("failing", Fails)
    with pytest.raises(NotAllowed):
        node.spawn(AsyncInit)
    assert node.process_list() == [] and node.whereis("failing") is None


def test_spawn_options_set_env_log_level_and_links(backend):
    node = backend.node()
    node.set_env("from_node", 1)
    parent = node.spawn(Driver, options=ProcessOptions(env={"from_parent": 2}))
    opts = ProcessOptions(env={"own": 3}, log_level="debug", link_parent=True, link_child=True)
    child = act(node, parent, lambda p: p.spawn(Driver, options=opts))
    info = node.process_info(child)
    assert info.env == {"FROM_NODE": 1, "FROM_PARENT": 2, "OWN": 3}
    assert info.log_level == ergo.LogLevel.DEBUG
    assert info.links == (parent,)
    assert node.process_info(parent).links == (child,)
    inherited = act(node, parent, lambda p: (setattr(p.log, "level", "warning"), p.spawn(Driver))[1])
    assert node.process_info(inherited).log_level == ergo.LogLevel.WARNING
    assert node.process_info(node.spawn(Driver)).log_level == node.log.level


# -- names and targets ----------------------------------------------------------------------


def test_register_name_rules(backend):
    node = backend.node()
    a, b = node.spawn(Driver), node.spawn(Driver)
    node.register_name("a", a)
    with pytest.raises(Taken):
        node.register_name("a", b)
    with pytest.raises(Taken):
        node.register_name("other", a)
    with pytest.raises(Incorrect):
        node.register_name("", b)
    assert node.whereis("a") == a and node.whereis("b") is None
    assert node.unregister_name("a") == a
    assert node.whereis("a") is None


def test_unregistering_a_name_tells_its_watchers(backend):
    node = backend.node()
    journal: list = []
    target = node.spawn_register("watched", Driver)
    watcher = node.spawn(Driver, journal)
    act(node, watcher, lambda p: p.monitor(ProcessID("watched", node.name)))
    node.unregister_name("watched")
    backend.settle()
    assert len(journal) == 1 and type(journal[0]) is MessageDownProcessID
    assert target in node.process_list()


def test_a_terminated_process_frees_its_name_and_aliases_before_its_watchers_hear(backend):
    node = backend.node()
    journal: list = []

    class Taker(Driver):
        def handle_message(self, from_: PID, message: Any) -> None:
            # the name is free by the time the down arrives
            self.register_name("reused")
            self.journal.append(message)

    owner = node.spawn_register("reused", Driver)
    alias = act(node, owner, lambda p: p.create_alias())
    taker = node.spawn(Taker, journal)
    act(node, taker, lambda p: p.monitor(owner))
    node.kill(owner)
    backend.settle()
    assert journal == [MessageDownPID(owner, TerminateReasonKill)]
    assert node.whereis("reused") == taker
    with pytest.raises(ProcessUnknown):
        node.send(alias, "gone")
    assert node.info().registered_aliases == 0


def test_targets_resolve_by_pid_name_process_id_and_alias(backend):
    node = backend.node()
    journal: list = []
    pid = node.spawn_register("target", Driver, journal)
    alias = act(node, pid, lambda p: p.create_alias())
    for to in (pid, "target", Atom("target"), ProcessID("target", node.name), alias):
        node.send(to, str(type(to).__name__))
    backend.settle()
    assert journal == ["PID", "str", "Atom", "ProcessID", "Alias"]
    gone = node.spawn(Driver)
    node.kill(gone)
    elsewhere = "other@host"
    for bad, error in [
        (gone, ProcessUnknown),
        (PID(node.name, pid.id, pid.creation + 1), ProcessUnknown),
        ("nobody", ProcessUnknown),
        (ProcessID("nobody", node.name), ProcessUnknown),
        (Alias(node.name, node.creation, (999999, 0, 0)), ProcessUnknown),
        (PID(elsewhere, 1001, 1), NetworkStopped),
        (ProcessID("x", elsewhere), NetworkStopped),
        (Alias(elsewhere, 1, (1, 0, 0)), NetworkStopped),
        (3.5, Incorrect),
    ]:
        with pytest.raises(error):
            node.send(bad, "x")
        with pytest.raises(error):
            node.call(bad, "x")


def test_process_info_and_kill_need_a_local_pid(backend):
    node = backend.node()
    pid = node.spawn(Driver)
    with pytest.raises(Incorrect):
        node.process_info("not a pid")
    with pytest.raises(ProcessUnknown):
        node.process_info(PID("other@host", pid.id, pid.creation))
    with pytest.raises(ProcessUnknown):
        node.kill(PID(node.name, pid.id, pid.creation + 1))
    with pytest.raises(MetaUnknown):
        node.meta_info(Alias(node.name, node.creation, (1, 2, 3)))


def test_exit_signals_go_to_a_local_pid(backend):
    node = backend.node()
    pid = node.spawn(Driver)
    with pytest.raises(Incorrect):
        node.send_exit("name", TerminateReasonKill)
    with pytest.raises(Incorrect):
        node.send_exit(pid, "not an exception")
    with pytest.raises(NetworkStopped):
        node.send_exit(PID("other@host", 1001, 1), TerminateReasonKill)


def test_responses_need_a_pid_and_a_ref(backend):
    node = backend.node()
    pid = node.spawn(Driver)
    ref = node.make_ref()
    with pytest.raises(Incorrect):
        act(node, pid, lambda p: p.send_response("someone", ref, 1))
    with pytest.raises(Incorrect):
        act(node, pid, lambda p: p.send_response(pid, "ref", 1))
    with pytest.raises(NetworkStopped):
        act(node, pid, lambda p: p.send_response(PID("other@host", 1001, 1), ref, 1))
    # a reply to a caller that is gone, or to no call, is dropped
    act(node, pid, lambda p: p.send_response(node.pid, ref, 1))
    gone = node.spawn(Driver)
    node.kill(gone)
    act(node, pid, lambda p: p.send_response(gone, ref, 1))
    assert isinstance(ref, Ref)


def test_calling_yourself_is_not_allowed(backend):
    from test_process_contract import Caller

    node = backend.node()
    journal: list = []
    caller = node.spawn(Caller, journal)
    node.send(caller, ("call", caller, "me?", 5))
    backend.settle()
    assert len(journal) == 1 and isinstance(journal[0][1], NotAllowed)


def test_node_calls_from_outside(backend):
    node = backend.node()
    pid = node.spawn(Collector)
    node.send(pid, "m")
    assert node.call(pid, "messages") == ["m"]
    assert node.inspect(pid) == {}

    class Inside(Driver):
        def handle_message(self, from_: PID, message: Any) -> None:
            for blocking in (lambda: self.node.call(pid, "messages"), lambda: self.node.wait(1),
                             lambda: self.node.inspect(pid)):
                try:
                    blocking()
                except NotAllowed:
                    self.journal.append("refused")

    journal: list = []
    node.send(node.spawn(Inside, journal), "go")
    backend.settle()
    assert journal == ["refused"] * 3


def test_a_logger_process_gets_log_lines_until_it_goes(backend):
    node = backend.node()
    lines: list = []

    class LogSink(Driver):
        def handle_log(self, message: Any) -> None:
            lines.append(message.text())

    sink = node.spawn(LogSink)
    node.logger_add_process(sink, "sink")
    assert "sink" in node.loggers()
    node.log.info("hello %s", "sink")
    backend.settle()
    assert "hello sink" in lines
    node.logger_delete_process(sink)
    node.log.info("not for the sink")
    backend.settle()
    assert "not for the sink" not in lines


def test_a_node_name_may_have_255_bytes_and_no_more(backend):
    assert backend.node("n" * 251 + "@h.x").name == "n" * 251 + "@h.x"
    with pytest.raises(Incorrect):
        backend.node("n" * 252 + "@h.x")


def test_a_terminating_process_takes_no_more_messages_or_exits(backend):
    node = backend.node()
    seen: list = []

    class Last(Driver):
        def handle_message(self, from_: PID, message: Any) -> None:
            raise TerminateReasonNormal

        def terminate(self, reason: BaseException) -> None:
            # call_async's first step routes the request at once: the one way to call a
            # process from inside its own terminate callback
            for attempt in (lambda: self.send(self.pid, "to myself"),
                            lambda: self.node.send_exit(self.pid, TerminateReasonKill),
                            lambda: self.node.call_async(self.pid, "late call").send(None)):
                try:
                    attempt()
                except Exception as e:
                    seen.append(type(e))

    node.send(node.spawn(Last), "stop")
    backend.settle()
    assert seen == [ProcessTerminated, ProcessTerminated, ProcessTerminated]


def test_killing_a_process_that_is_already_terminating_changes_nothing(backend):
    node = backend.node()
    journal: list = []

    class KillsItself(Driver):
        def handle_message(self, from_: PID, message: Any) -> None:
            raise TerminateReasonNormal

        def terminate(self, reason: BaseException) -> None:
            self.node.kill(self.pid)  # too late: it is terminating with its own reason

    victim = node.spawn(KillsItself)
    watcher = node.spawn(Driver, journal)
    act(node, watcher, lambda p: p.monitor(victim))
    node.send(victim, "stop")
    backend.settle()
    assert journal == [MessageDownPID(victim, TerminateReasonNormal)]


def test_stop_from_another_thread_is_refused(backend):
    import threading

    node = backend.node()
    errors: list = []

    def elsewhere() -> None:
        for stop in (node.stop, node.stop_force):
            try:
                stop()
            except Exception as e:
                errors.append(type(e))

    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()
    assert errors == [NotAllowed, NotAllowed]
    assert node.is_alive()


def test_a_node_used_as_a_context_manager_stops_at_the_end(backend):
    journal: list = []
    with backend.node() as node:
        node.spawn(Driver, journal)
        assert node.is_alive()
    assert not node.is_alive()
    assert journal == [("terminate", ExitSignal(node.pid, TerminateReasonShutdown))]


def test_node_options_are_checked_when_the_node_starts():
    import sim
    from ergo import NodeOptions

    for bad in (NodeOptions(log={"level": "info"}), NodeOptions(env=[("a", 1)]), {"log": None}):
        with pytest.raises(Incorrect):
            sim.Sim(1).start_node("n@h", bad)


def test_the_node_exposes_its_scheduler_and_numbers_its_refs_from_one(backend):
    node = backend.node()
    assert node.scheduler is act(node, node.spawn(Driver), lambda p: p.node.scheduler)
    assert node.scheduler.now() >= 0
    # the counter is shared with aliases; the first ones already went to the test's calls
    refs = [node.make_ref() for _ in range(2)]
    assert refs[1].id[0] == refs[0].id[0] + 1
    fresh = backend.node("fresh@localhost")
    assert fresh.make_ref().id == (1, 0, 0)


def test_a_stopped_node_describes_no_meta_process_and_closes_its_loggers(backend):
    node = backend.node()
    closed: list = []

    class Closing:
        def log(self, message: Any) -> None:
            pass

        def terminate(self) -> None:
            closed.append("closed")

    node.logger_add("closing", Closing())
    owner = node.spawn(Driver)
    alias = act(node, owner, lambda p: p.spawn_meta(ergo.MetaBehavior()))
    assert node.meta_info(alias).id == alias
    node.stop()
    assert closed == ["closed"]
    with pytest.raises(NodeTerminated):
        node.meta_info(alias)


def test_a_process_logger_is_named_by_its_pid(backend):
    node = backend.node()
    with pytest.raises(Incorrect):
        node.logger_delete_process("sink")


def test_stop_force_stops_a_node_without_processes(backend):
    node = backend.node()
    node.stop_force()
    assert not node.is_alive() and node.wait(0) is True


def test_a_reply_to_an_old_incarnation_of_the_core_is_not_taken_for_a_call_of_this_one():
    from support import SimBackend

    b = SimBackend()
    try:
        node = b.node()

        class Forger(Driver):
            def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
                old_core = PID(node.name, 1, node.creation + 1)
                self.send_response(old_core, ref, "forged")  # same id 1, another creation
                return ergo.NoReply

        with pytest.raises(ergo.Timeout):
            node.call(node.spawn(Forger), "anything", timeout=1)
    finally:
        b.close()

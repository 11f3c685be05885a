"""Applications on both schedulers: load, start with dependencies, modes, stop, the node's
own applications at its start and its stop."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import ListLogger

import net
import sim
from ergo import (
    Actor,
    Application,
    ApplicationDependencies,
    ApplicationDepends,
    ApplicationEmpty,
    ApplicationLoadPanic,
    ApplicationMemberSpec,
    ApplicationMode,
    ApplicationName,
    ApplicationOptions,
    ApplicationRunning,
    ApplicationSpec,
    ApplicationState,
    ApplicationStatus,
    ApplicationStopping,
    ApplicationUnknown,
    Incorrect,
    LogLevel,
    LogOptions,
    NetworkOptions,
    NodeOptions,
    NodeTerminated,
    ProcessOptions,
    Taken,
    TerminateReasonKill,
    TerminateReasonNormal,
    TerminateReasonPanic,
    TerminateReasonShutdown,
)
from ergo.gen.options import AcceptorOptions

# -- behaviours ----------------------------------------------------------------------------


class Member(Actor):
    """Records its start and end in ``journal``; obeys a few requests."""

    def init(self, journal: list[Any], tag: str, trap: bool = False) -> None:
        self.journal, self.tag = journal, tag
        self.trap_exit = trap
        journal.append(("init", tag))

    def handle_message(self, from_: Any, message: Any) -> None:
        if message == "crash":
            raise ValueError("crash on request")
        if message == "exit":
            raise TerminateReasonNormal
        if message == "spawn":
            self.spawn(Member, self.journal, self.tag + "/child")

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        if request == "env":
            return self.env_list()
        if request == "info":
            return self.info()
        if request == "stop app":
            self.node.application_stop("app")
            return self.node.application_info("app").state
        return request

    def terminate(self, reason: BaseException) -> None:
        self.journal.append(("terminate", self.tag, reason))


class Stuck(Member):
    """An async handler awaiting a call nobody answers: its exit waits behind it."""

    async def handle_message(self, from_: Any, message: Any) -> None:
        if message == "hang":
            await self.call(self.pid_to_wait, "never", timeout=100.0)

    def init(self, journal: list[Any], tag: str, trap: bool = False) -> None:
        super().init(journal, tag)
        self.pid_to_wait = self.spawn(Silent)


class Silent(Actor):
    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        from ergo import NoReply

        return NoReply


class Failing(Actor):
    def init(self, journal: list[Any]) -> None:
        journal.append(("init", "failing"))
        raise ValueError("cannot start")


class App(Application):
    """An application of ``members`` (tags) of kind ``Member``, recording its callbacks."""

    def __init__(self, name: str, journal: list[Any], members: tuple[str, ...] = ("m1", "m2"),
                 depends: tuple[str, ...] = (), mode: Any = ApplicationMode.TEMPORARY,
                 factory: Any = Member, **spec: Any) -> None:
        self.name, self.journal, self.members, self.depends = name, journal, members, depends
        self.mode, self.factory, self.spec = mode, factory, spec

    def load(self, node: Any, *args: Any) -> ApplicationSpec:
        self.journal.append(("load", self.name, args))
        group = [ApplicationMemberSpec(Failing if tag == "failing" else self.factory,
                                       name=f"{self.name}.{tag}",
                                       args=(self.journal,) if tag == "failing" else (self.journal, tag))
                 for tag in self.members]
        return ApplicationSpec(self.name, group, depends=ApplicationDependencies(self.depends),
                               mode=self.mode, **self.spec)

    def start(self, mode: ApplicationMode) -> None:
        self.journal.append(("start", self.name, mode))

    def terminate(self, reason: BaseException) -> None:
        self.journal.append(("stopped", self.name, reason))


def _starts(journal: list[Any]) -> list[str]:
    return [e[1] for e in journal if e[0] == "start"]


def _stops(journal: list[Any]) -> list[Any]:
    return [(e[1], e[2]) for e in journal if e[0] == "stopped"]


# -- load and unload --------------------------------------------------------------------------


def test_load_returns_the_name_and_the_application_is_loaded_not_running(backend):
    node = backend.node()
    journal: list[Any] = []
    assert node.application_load(App("app", journal), 1, 2) == "app"
    assert journal == [("load", "app", (1, 2))]
    assert node.applications() == ["app"] and node.applications_running() == []
    info = node.application_info("app")
    assert info.state is ApplicationStatus.LOADED and info.group == () and info.uptime == 0
    assert str(info.state) == "loaded" and info.parent is None
    assert node.info().applications_total == 1 and node.info().applications_running == 0
    node.application_unload("app")
    assert node.applications() == []
    with pytest.raises(ApplicationUnknown):
        node.application_info("app")


class Broken(Application):
    def __init__(self, result: Any) -> None:
        self.result = result

    def load(self, node: Any, *args: Any) -> Any:
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


@pytest.mark.parametrize("result, error", [
    (ApplicationSpec("", [ApplicationMemberSpec(Member)]), ApplicationName),
    (ApplicationSpec("x", []), ApplicationEmpty),
    (ValueError("bug"), ApplicationLoadPanic),
    (Taken("its own refusal"), Taken),
    ("not a spec", Incorrect),
    (ApplicationSpec("x", [ApplicationMemberSpec(Member)], depends=ApplicationDependencies(network=True)),
     ApplicationDepends),
])
def test_load_refuses_a_spec_that_cannot_run_with_ergos_errors(backend, result, error):
    node = backend.node()
    with pytest.raises(error):
        node.application_load(Broken(result))
    assert node.applications() == []


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_a_load_panic_says_the_same_in_every_process_and_survives_an_unprintable_error(backend):
    """The panic's text may cross the network (a remote application start's answer): a set
    among the error's arguments is written in order, not in the order PYTHONHASHSEED gives
    it, and an error whose ``__str__`` fails is still named (the f-string raised instead)."""
    node = backend.node()
    names = {f"name{i:02}" for i in range(24)}
    with pytest.raises(ApplicationLoadPanic) as info:
        node.application_load(Broken(ValueError(names)))
    assert "Broken.load raised ValueError: {" + ", ".join(repr(n) for n in sorted(names)) in str(info.value)
    with pytest.raises(ApplicationLoadPanic, match="Broken.load raised _Unprintable"):
        node.application_load(Broken(_Unprintable()))
    assert node.applications() == []


def test_loading_a_name_twice_is_taken_and_unknown_names_are_unknown(backend):
    node = backend.node()
    node.application_load(App("app", []))
    with pytest.raises(Taken):
        node.application_load(App("app", []))
    for call in (node.application_start, node.application_stop, node.application_stop_force,
                 node.application_unload, node.application_info):
        with pytest.raises(ApplicationUnknown):
            call("nope")


def test_a_member_spec_and_modes_check_their_fields():
    with pytest.raises(Incorrect):
        ApplicationMemberSpec("not callable")  # type: ignore[arg-type]
    with pytest.raises(Incorrect):
        ApplicationMemberSpec(Member, name="")
    with pytest.raises(Incorrect):
        ApplicationDependencies("db")  # a str, not a sequence of names
    assert ApplicationMode.parse("permanent") is ApplicationMode.PERMANENT
    assert ApplicationMode.parse(2) is ApplicationMode.TRANSIENT
    with pytest.raises(Incorrect):
        ApplicationMode.parse("eternal")


# -- start ------------------------------------------------------------------------------------


def test_start_spawns_the_members_in_order_registered_with_the_applications_env(backend):
    node = backend.node()
    node.set_env("level", "node")
    node.set_env("node_only", 1)
    journal: list[Any] = []
    node.application_load(App("app", journal, members=("m1", "m2"), env={"level": "spec", "spec_only": 2},
                              log_level="debug"))
    node.application_start("app", ApplicationOptions(env={"start_only": 3}))
    assert [e for e in journal if e[0] == "init"] == [("init", "m1"), ("init", "m2")]
    assert journal[-1] == ("start", "app", ApplicationMode.TEMPORARY)
    info = node.application_info("app")
    assert info.state is ApplicationStatus.RUNNING and info.parent == node.name
    assert info.group == (node.whereis("app.m1"), node.whereis("app.m2"))
    assert node.applications_running() == ["app"]
    env = node.call("app.m1", "env")
    assert env["LEVEL"] == "spec" and env["NODE_ONLY"] == 1 and env["SPEC_ONLY"] == 2 and env["START_ONLY"] == 3
    pinfo = node.process_info(node.whereis("app.m1"))
    assert pinfo.parent == node.pid and pinfo.leader == node.pid and pinfo.application == "app"
    assert pinfo.log_level is LogLevel.DEBUG


def test_start_again_is_running_and_unload_of_a_running_one_is_refused(backend):
    node = backend.node()
    node.application_load(App("app", []))
    node.application_start("app")
    with pytest.raises(ApplicationRunning):
        node.application_start("app")
    with pytest.raises(ApplicationRunning):
        node.application_unload("app")


def test_the_mode_variants_override_the_specs_mode(backend):
    node = backend.node()
    journal: list[Any] = []
    for name, start, mode in [("a", node.application_start_temporary, ApplicationMode.TEMPORARY),
                              ("b", node.application_start_transient, ApplicationMode.TRANSIENT),
                              ("c", node.application_start_permanent, ApplicationMode.PERMANENT)]:
        node.application_load(App(name, journal, mode=ApplicationMode.TRANSIENT if mode is not
                                  ApplicationMode.TRANSIENT else ApplicationMode.TEMPORARY))
        start(name)
        assert node.application_info(name).mode is mode
        assert journal[-1] == ("start", name, mode)


def test_dependencies_start_first_each_in_its_own_mode(backend):
    node = backend.node()
    journal: list[Any] = []
    node.application_load(App("web", journal, depends=("db", "cache")))
    node.application_load(App("db", journal, depends=("log",), mode=ApplicationMode.PERMANENT))
    node.application_load(App("cache", journal))
    node.application_load(App("log", journal))
    node.application_start("log")  # running already: no error, not started twice
    node.application_start("web")
    assert _starts(journal) == ["log", "db", "cache", "web"]
    assert node.applications_running() == ["log", "db", "cache", "web"]
    assert node.info().applications_total == node.info().applications_running == 4
    assert node.application_info("db").mode is ApplicationMode.PERMANENT


def test_a_missing_or_circular_dependency_is_application_depends_and_starts_nothing(backend):
    node = backend.node()
    journal: list[Any] = []
    node.application_load(App("web", journal, depends=("db",)))
    with pytest.raises(ApplicationDepends, match="not loaded"):
        node.application_start("web")
    node.application_load(App("db", journal, depends=("web",)))
    with pytest.raises(ApplicationDepends, match="web -> db"):
        node.application_start("web")
    assert _starts(journal) == [] and node.applications_running() == []
    assert [e for e in journal if e[0] == "init"] == []


def test_a_dependency_that_fails_to_start_is_application_depends(backend):
    node = backend.node()
    journal: list[Any] = []
    node.application_load(App("web", journal, depends=("db",)))
    node.application_load(App("db", journal, members=("failing",)))
    with pytest.raises(ApplicationDepends, match="cannot start"):
        node.application_start("web")
    assert node.applications_running() == []


def test_a_member_that_fails_to_start_takes_the_earlier_ones_down(backend):
    node = backend.node()
    journal: list[Any] = []
    node.application_load(App("app", journal, members=("m1", "m2", "failing", "m3")))
    with pytest.raises(ValueError, match="cannot start"):
        node.application_start("app")
    backend.settle()
    assert ("init", "m3") not in journal
    assert ("terminate", "m1", TerminateReasonKill) in journal and ("terminate", "m2", TerminateReasonKill) in journal
    assert node.process_list() == [] and node.application_info("app").state is ApplicationStatus.LOADED
    assert _stops(journal) == []  # it never started, so it never stopped


# -- modes ------------------------------------------------------------------------------------


def test_temporary_ignores_a_members_crash_and_stops_normally_when_all_are_gone(backend):
    node = backend.node()
    journal: list[Any] = []
    node.application_load(App("app", journal))
    node.application_start("app")
    node.send("app.m1", "crash")
    backend.settle()
    assert node.application_info("app").state is ApplicationStatus.RUNNING
    assert node.application_info("app").group == (node.whereis("app.m2"),)
    node.send("app.m2", "exit")
    backend.settle()
    assert node.application_info("app").state is ApplicationStatus.LOADED
    assert _stops(journal) == [("app", TerminateReasonNormal)] and node.is_alive()


def test_transient_ignores_a_normal_exit_and_stops_every_member_on_a_crash(backend):
    node = backend.node()
    journal: list[Any] = []
    node.application_load(App("app", journal, members=("m1", "m2", "m3"), mode="transient"))
    node.application_start("app")
    node.send("app.m1", "exit")
    backend.settle()
    assert node.application_info("app").state is ApplicationStatus.RUNNING
    node.send("app.m2", "crash")
    backend.settle()
    assert ("terminate", "m3", _shutdown_from(node)) in [(e[0], e[1], e[2]) for e in journal if e[0] == "terminate"]
    assert node.application_info("app").state is ApplicationStatus.LOADED
    assert _stops(journal) == [("app", TerminateReasonPanic)]
    assert node.is_alive()  # a transient application's end leaves the node running


def _until_idle(backend: Any) -> None:
    """Until every handler has run or waits (a call's 100 s timeout is not run out)."""
    if backend.name == "sim":
        backend.sim.run_for(1.0)
    else:
        backend.settle()


def _shutdown_from(node: Any) -> Any:
    from ergo import ExitSignal

    return ExitSignal(node.pid, TerminateReasonShutdown)


def test_permanent_stops_every_member_on_any_exit_and_then_the_node(backend):
    node = backend.node()
    journal: list[Any] = []
    other = node.spawn(Member, journal, "outsider")
    node.application_load(App("app", journal, mode=ApplicationMode.PERMANENT))
    node.application_start("app")
    node.send("app.m1", "exit")  # a normal exit counts too
    node.wait(30)
    assert not node.is_alive()
    assert _stops(journal) == [("app", TerminateReasonNormal)]
    assert ("terminate", "m2", _shutdown_from(node)) in journal
    assert any(e[:2] == ("terminate", "outsider") for e in journal) and other is not None
    assert "permanent application app stopped (normal): the node stops" in node.captured.texts()


def test_a_permanent_application_stopped_on_request_leaves_the_node_running(backend):
    node = backend.node()
    node.application_load(App("app", [], mode=ApplicationMode.PERMANENT))
    node.application_start("app")
    node.application_stop("app")
    backend.settle()
    assert node.is_alive() and node.application_info("app").state is ApplicationStatus.LOADED


def test_what_a_member_spawns_belongs_to_the_application_but_is_no_member(backend):
    node = backend.node()
    journal: list[Any] = []
    node.application_load(App("app", journal, mode="permanent"))
    node.application_start("app")
    node.send("app.m1", "spawn")
    backend.settle()
    members = node.application_info("app").group
    everything = node.application_process_list("app")
    assert everything[:2] == list(members) and len(everything) == 3
    child = everything[2]
    assert node.process_info(child).application == "app" and node.process_info(child).parent == members[0]
    assert node.application_process_list("app", limit=2) == list(members)
    node.kill(child)  # not a member: a permanent application does not mind
    backend.settle()
    assert node.application_info("app").state is ApplicationStatus.RUNNING
    with pytest.raises(Incorrect):
        node.application_process_list("app", limit=-1)
    node.application_stop("app")
    with pytest.raises(ApplicationState):
        node.application_process_list("app")


# -- stop -------------------------------------------------------------------------------------


def test_stop_shuts_down_every_member_even_one_that_traps_exits(backend):
    node = backend.node()
    journal: list[Any] = []

    class Trapping(App):
        def load(self, node: Any, *args: Any) -> ApplicationSpec:
            spec = super().load(node, *args)
            spec.group = [ApplicationMemberSpec(Member, name="t", args=(self.journal, "t", True))]
            return spec

    node.application_load(Trapping("app", journal))
    node.application_start("app")
    node.application_stop("app")  # returns once stopped
    assert ("terminate", "t", _shutdown_from(node)) in journal
    assert _stops(journal) == [("app", TerminateReasonShutdown)]
    info = node.application_info("app")
    assert info.state is ApplicationStatus.LOADED and info.group == () and node.applications_running() == []
    node.application_stop("app")  # stopped already: nothing to do, no error
    node.application_start("app")  # and it can start again
    assert node.application_info("app").state is ApplicationStatus.RUNNING


def test_stop_from_a_handler_returns_at_once_and_the_stop_goes_on(backend):
    node = backend.node()
    journal: list[Any] = []
    node.application_load(App("app", journal))
    node.application_start("app")
    outsider = node.spawn(Member, journal, "outsider")
    assert node.call(outsider, "stop app") is ApplicationStatus.STOPPING
    backend.settle()
    assert node.application_info("app").state is ApplicationStatus.LOADED
    assert _stops(journal) == [("app", TerminateReasonShutdown)]


def test_stop_times_out_with_application_stopping_and_stop_force_ends_it(backend):
    node = backend.node()
    journal: list[Any] = []
    node.application_load(App("app", journal, members=("busy",), factory=Stuck))
    node.application_start("app")
    node.send("app.busy", "hang")
    _until_idle(backend)
    with pytest.raises(ApplicationStopping):
        node.application_stop("app", timeout=1.0)
    assert node.application_info("app").state is ApplicationStatus.STOPPING
    with pytest.raises(ApplicationStopping):
        node.application_stop("app")
    with pytest.raises(ApplicationState):
        node.application_start("app")
    node.application_stop_force("app")
    assert node.application_info("app").state is ApplicationStatus.LOADED
    assert _stops(journal) == [("app", TerminateReasonKill)]
    with pytest.raises(Incorrect):
        node.application_stop("app", timeout=-1)


def test_a_crash_in_start_or_terminate_is_logged_and_changes_nothing(backend):
    node = backend.node()

    class Clumsy(App):
        def start(self, mode: ApplicationMode) -> None:
            raise ValueError("start bug")

        def terminate(self, reason: BaseException) -> None:
            raise ValueError("terminate bug")

    node.application_load(Clumsy("app", []))
    node.application_start("app")
    assert node.application_info("app").state is ApplicationStatus.RUNNING
    node.application_stop("app")
    assert node.application_info("app").state is ApplicationStatus.LOADED
    texts = node.captured.texts(LogLevel.PANIC)
    assert any("start bug" in t for t in texts) and any("terminate bug" in t for t in texts)


# -- the node's own applications ------------------------------------------------------------------


def _start(backend: Any, name: str, options: NodeOptions) -> Any:
    node = backend._start(name, options)
    backend.nodes.append(node)
    node.captured = ListLogger()
    node.logger_add("captured", node.captured)
    return node


def test_node_options_applications_start_in_order_and_stop_last_first_before_other_processes(backend):
    journal: list[Any] = []
    apps = [App("db", journal), App("web", journal, depends=("db",)), App("cache", journal)]
    node = _start(backend, "apps@localhost", NodeOptions(applications=apps, log=LogOptions(default_logger=False)))
    assert node.applications_running() == ["db", "web", "cache"]
    outsider = node.spawn(Member, journal, "outsider")
    assert outsider is not None
    journal.clear()
    node.stop()
    assert _stops(journal) == [("cache", TerminateReasonShutdown), ("web", TerminateReasonShutdown),
                               ("db", TerminateReasonShutdown)]
    order = [e[1] if e[0] == "stopped" else e[1] for e in journal if e[0] in ("stopped", "terminate")]
    assert order.index("db") < order.index("outsider")  # applications first, then the rest
    assert not node.is_alive()


def test_node_stop_moves_on_from_an_application_that_does_not_stop_in_time(backend):
    journal: list[Any] = []
    apps = [App("first", journal), App("stuck", journal, members=("busy",), factory=Stuck)]
    node = _start(backend, "apps@localhost", NodeOptions(applications=apps, log=LogOptions(default_logger=False)))
    node.send("stuck.busy", "hang")
    _until_idle(backend)
    begun = node.scheduler.now()
    node.stop()  # 'stuck' holds for its 5 s, then 'first' stops, then the node kills the rest
    assert not node.is_alive()
    if backend.name == "sim":
        assert node.scheduler.now() - begun >= 5.0
    assert _stops(journal)[0] == ("first", TerminateReasonShutdown)
    assert any("still stopping after 5.0 s" in t for t in node.captured.texts())


class Ticking(Member):
    """Starts a timer in its init."""

    def init(self, journal: list[Any], tag: str, trap: bool = False) -> None:
        super().init(journal, tag)
        self.send_after(self.pid, "tick", 30.0)


def test_a_failing_application_fails_the_nodes_start_and_leaves_nothing_running_sim():
    journal: list[Any] = []
    world = sim.Sim(3)
    options = NodeOptions(applications=[App("good", journal, factory=Ticking),
                                        App("bad", journal, members=("m3", "failing"))],
                          log=LogOptions(default_logger=False),
                          network=NetworkOptions(cookie="c", registrar_port=None,
                                                 acceptors=(AcceptorOptions(port=15000),)))
    with pytest.raises(ValueError, match="cannot start"):
        world.start_node("n@host", options)
    node = world.host("host").nodes["n@host"]
    assert not node.is_alive() and node._processes == {}
    assert {e[1] for e in journal if e[0] == "terminate"} == {"m1", "m2", "m3"}
    world.run()  # nothing is left to run: no process, and no timer (the members' were cancelled)
    assert world.now < 30.0
    with pytest.raises(NodeTerminated):
        node.process_list()
    # its port is free: the same node starts again without the bad application
    again = world.start_node("n@host", NodeOptions(log=LogOptions(default_logger=False),
                                                  network=NetworkOptions(cookie="c", registrar_port=None,
                                                                         acceptors=(AcceptorOptions(port=15000),))))
    assert again.network().info()["acceptors"][0]["port"] == 15000
    again.stop()


class PortSpy(Member):
    """Notes the port its node listens on."""

    def init(self, journal: list[Any], tag: str, trap: bool = False) -> None:
        super().init(journal, tag)
        journal.append(("port", self.node.network().info()["acceptors"][0]["port"]))
        journal.append(("node", self.node))
        self.send_after(self.pid, "tick", 30.0)


def test_a_failing_application_fails_the_nodes_start_and_leaves_nothing_running_asyncio():
    journal: list[Any] = []
    options = NodeOptions(applications=[App("good", journal, factory=PortSpy),
                                        App("bad", journal, members=("failing",))],
                          log=LogOptions(default_logger=False),
                          network=NetworkOptions(cookie="c", registrar_port=None,
                                                 acceptors=(AcceptorOptions(host="127.0.0.1", port=0),)))
    with pytest.raises(ValueError, match="cannot start"):
        net.start_node("n@127.0.0.1", options, handle_signals=False)
    assert {e[1] for e in journal if e[0] == "terminate"} == {"m1", "m2"}
    node = next(e[1] for e in journal if e[0] == "node")
    assert not node.is_alive() and node._processes == {} and node._timers == {}
    port = next(e[1] for e in journal if e[0] == "port")
    with socket.socket() as s:  # the acceptor's socket is closed: its port can be bound again
        s.bind(("127.0.0.1", port))


def test_an_application_that_fails_to_load_fails_the_nodes_start(backend):
    with pytest.raises(ApplicationEmpty):
        _start(backend, "apps@localhost", NodeOptions(applications=[Broken(ApplicationSpec("x", []))],
                                                      log=LogOptions(default_logger=False)))
    with pytest.raises(Incorrect):
        _start(backend, "apps2@localhost", NodeOptions(applications=["not an app"],  # type: ignore[list-item]
                                                       log=LogOptions(default_logger=False)))


def test_application_calls_on_a_stopped_node_are_node_terminated(backend):
    node = backend.node()
    node.application_load(App("app", []))
    node.stop()
    with pytest.raises(NodeTerminated):
        node.application_start("app")
    with pytest.raises(NodeTerminated):
        node.applications()


def test_member_options_are_used(backend):
    node = backend.node()

    class Sized(Application):
        def load(self, node: Any, *args: Any) -> ApplicationSpec:
            return ApplicationSpec("app", [ApplicationMemberSpec(
                Member, ProcessOptions(mailbox_size=7, env={"own": 1}), "m", ([], "m"))], env={"own": 0})

    node.application_load(Sized())
    node.application_start("app")
    info = node.process_info(node.whereis("m"))
    assert info.mailbox_size == 7 and info.env["OWN"] == 1


# -- remote application start -------------------------------------------------------------------


def test_a_remote_node_starts_an_application_only_once_enabled(cluster):
    from ergo import NotAllowed

    a, b = cluster.cluster(3)[:2]
    c = cluster.nodes[2]
    journal: list[Any] = []
    b.application_load(App("app", journal, env={"from": "spec"}))
    b.application_load(App("other", journal))
    peer = a.wait_for(a.network().connect(b.name))
    with pytest.raises(NotAllowed, match="enable_application_start"):  # disabled unless enabled
        a.wait_for(peer.application_start("app"))
    assert b.applications_running() == []
    b.network().enable_application_start("app", nodes=[a.name])
    assert b.network().info()["application_start"] == ["app"]
    with pytest.raises(NotAllowed):  # enabled for a, not for c
        c.wait_for(c.wait_for(c.network().connect(b.name)).application_start("app"))
    a.wait_for(peer.application_start_permanent("app", ApplicationOptions(env={"by": "a"})))
    info = b.application_info("app")
    assert info.state is ApplicationStatus.RUNNING and info.mode is ApplicationMode.PERMANENT
    assert b.call("app.m1", "env")["BY"] == "a"
    with pytest.raises(ApplicationRunning):  # the start's own error travels back
        a.wait_for(peer.application_start("app"))
    with pytest.raises(NotAllowed):
        a.wait_for(peer.application_start("other"))
    b.network().disable_application_start("app")
    b.application_stop("app")
    with pytest.raises(NotAllowed):
        a.wait_for(peer.application_start("app"))
    b.network().enable_application_start("ghost")
    with pytest.raises(ApplicationUnknown):
        a.wait_for(peer.application_start_transient("ghost"))


def test_uptime_counts_from_the_start_and_the_starts_log_level_wins(backend):
    node = backend.node()
    node.application_load(App("app", [], log_level="info"))
    node.application_start("app", ApplicationOptions(log_level="trace"))
    assert node.process_info(node.whereis("app.m1")).log_level is LogLevel.TRACE
    if backend.name == "sim":
        backend.sim.run_for(2.5)
        assert node.application_info("app").uptime == 2.5
    node.application_stop("app")
    assert node.application_info("app").uptime == 0


def test_stop_force_of_the_node_stops_its_applications_with_kill(backend):
    journal: list[Any] = []
    node = _start(backend, "apps@localhost", NodeOptions(applications=[App("a", journal), App("b", journal)],
                                                         log=LogOptions(default_logger=False)))
    node.stop_force()
    assert sorted(_stops(journal)) == [("a", TerminateReasonKill), ("b", TerminateReasonKill)]
    assert not node.is_alive()


def test_a_restart_uses_the_specs_mode_not_the_last_starts(backend):
    node = backend.node()
    node.application_load(App("app", [], mode="transient"))
    node.application_start_permanent("app")
    node.application_stop("app")
    node.application_start("app")
    assert node.application_info("app").mode is ApplicationMode.TRANSIENT


# -- the modes against a model -------------------------------------------------------------------

_HOW = {"exit": TerminateReasonNormal, "crash": TerminateReasonPanic, "kill": TerminateReasonKill}


@settings(max_examples=40, deadline=None)
@given(mode=st.sampled_from(list(ApplicationMode)),
       events=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(sorted(_HOW))), max_size=6))
def test_modes_match_a_model_of_what_a_members_end_does(mode, events):
    """Members end one by one (a normal exit, a crash, a kill); after each, the members
    alive, the application's state and reason, and the node's life are as the mode says."""
    journal: list[Any] = []
    world = sim.Sim(0)
    node = world.start_node("m@localhost", NodeOptions(log=LogOptions(default_logger=False)))
    node.application_load(App("app", journal, members=("m0", "m1", "m2", "m3"), mode=mode))
    node.application_start("app")
    alive, reason = ["m0", "m1", "m2", "m3"], None
    for index, how in events:
        if reason is not None:
            break  # the application has stopped
        tag = f"m{index}"
        if tag not in alive:
            continue
        if how == "kill":
            node.kill(node.whereis(f"app.{tag}"))
        else:
            node.send(f"app.{tag}", how)
        world.run()
        alive.remove(tag)
        ends_all = mode is ApplicationMode.PERMANENT or (mode is ApplicationMode.TRANSIENT and how != "exit")
        if ends_all or not alive:
            alive, reason = [], _HOW[how] if ends_all else TerminateReasonNormal
        if mode is ApplicationMode.PERMANENT:
            assert not node.is_alive()
            break
        assert node.is_alive()
        info = node.application_info("app")
        assert info.group == tuple(node.whereis(f"app.{t}") for t in alive)
        assert info.state is (ApplicationStatus.LOADED if reason is not None else ApplicationStatus.RUNNING)
    assert _stops(journal) == ([] if reason is None else [("app", reason)])
    node.stop_force()

"""Logging, meta-processes and shutdown, on both schedulers; determinism of the simulated clock."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from support import Collector, ListLogger, SimBackend

import ergo
from ergo import (
    Actor,
    ExitSignal,
    LogLevel,
    LogOptions,
    MessageLogProcess,
    MetaBehavior,
    MetaUnknown,
    NodeOptions,
    NotAllowed,
    ProcessOptions,
    Taken,
    TerminateReasonShutdown,
)
from ergo.scheduler import Future

# -- logging -----------------------------------------------------------------------------


class Chatty(Actor):
    def handle_message(self, from_, message):
        self.log.trace("trace %s", message)
        self.log.debug("debug %s", message)
        self.log.info("info %s", message)
        self.log.warning("warning %s", message)
        self.log.error("error %s", message)


def test_node_and_process_levels_filter_messages(backend):
    node = backend.node(level="warning")
    quiet = node.spawn(Chatty)
    loud = node.spawn(Chatty, options=ProcessOptions(log_level="trace"))
    node.captured.messages.clear()
    node.send(quiet, "q")
    node.send(loud, "l")
    backend.settle()
    texts = node.captured.texts()
    assert texts[:2] == ["warning q", "error q"]
    assert texts[2:] == ["trace l", "debug l", "info l", "warning l", "error l"]
    node.log.level = "debug"
    assert node.log.level == LogLevel.DEBUG
    with pytest.raises(ergo.Incorrect):
        node.log.level = "loud"


def test_default_logger_line_format(backend):
    out = io.StringIO()
    node = backend.node("fmt@localhost", default_logger=True, output=out)
    pid = node.spawn(Chatty)
    node.send(pid, "x")
    backend.settle()
    lines = out.getvalue().splitlines()
    line = next(ln for ln in lines if ln.endswith(": info x"))
    date, clock, level, source = line.split(" ")[:4]
    assert len(date) == 10 and len(clock) == 15 and level == "[info]" and source == f"{pid}:"
    node_line = lines[0]
    assert f"[info] {node.name.crc32()}: node fmt@localhost started" in node_line


def test_default_logger_json(backend):
    out = io.StringIO()
    node = backend.node("json@localhost", default_logger=True, output=out, json=True, include_name=True)
    pid = node.spawn_register("chatty", Chatty)
    node.send(pid, "y")
    backend.settle()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    rec = next(r for r in records if r["message"] == "warning y")
    assert rec["level"] == "warning" and rec["source"] == {"type": "process", "pid": str(pid), "name": "'chatty'"}


def test_loggers_can_be_added_filtered_and_deleted(backend):
    node = backend.node()
    errors_only = ListLogger()
    node.logger_add("errors", errors_only, filter=["error", "panic"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ergo.DefaultFormatter(time_format=None))
    node.logger_add("std", handler)
    with pytest.raises(Taken):
        node.logger_add("std", ListLogger())
    with pytest.raises(ergo.Incorrect):
        node.logger_add("bad", object())
    pid = node.spawn(Chatty)
    node.send(pid, 1)
    backend.settle()
    assert errors_only.texts() == ["error 1"]
    assert "[warning] " + str(pid) + ": warning 1" in stream.getvalue()
    node.logger_delete("errors")
    assert "errors" not in node.loggers()
    node.send(pid, 2)
    backend.settle()
    assert errors_only.texts() == ["error 1"]
    with pytest.raises(ergo.Unknown):
        node.logger_delete("errors")


def test_a_process_can_be_a_logger(backend):
    node = backend.node()

    class LogSink(Collector):
        def handle_log(self, message):
            self.handle_message(None, (message.level, message.text()))

    sink = node.spawn(LogSink)
    node.logger_add_process(sink, filter=["warning"])
    chatty = node.spawn(Chatty)
    node.send(chatty, "z")
    assert node.call(sink, ("wait", 1)) == [(LogLevel.WARNING, "warning z")]
    node.kill(sink)
    assert str(sink) not in node.loggers()  # a terminated process stops being a logger


def test_log_source_follows_the_registered_name(backend):
    node = backend.node()
    pid = node.spawn(Chatty)
    node.register_name("named", pid)
    node.send(pid, "n")
    backend.settle()
    src = node.captured.messages[-1].source
    assert isinstance(src, MessageLogProcess) and src.name == "named" and src.pid == pid


# -- meta-processes ---------------------------------------------------------------------


class Relay(MetaBehavior):
    """Forwards what it receives to its owner, tagged."""

    def __init__(self, journal: list) -> None:
        self.journal = journal

    def handle_message(self, from_, message):
        self.process.send(self.process.parent, ("via meta", message))

    def handle_call(self, from_, ref, request):
        return ("meta reply", request)

    def terminate(self, reason):
        self.journal.append(("meta terminate", reason))


def test_meta_process_is_an_alias_owned_by_its_parent(backend):
    node = backend.node()
    journal: list = []

    class Owner(Collector):
        def handle_call(self, from_, ref, request):
            if request == "start meta":
                return self.spawn_meta(Relay(journal))
            return super().handle_call(from_, ref, request)

    owner = node.spawn(Owner)
    meta = node.call(owner, "start meta")
    assert isinstance(meta, ergo.Alias)
    info = node.meta_info(meta)
    assert info.parent == owner and info.behavior == "Relay"
    assert node.process_info(owner).metas == (meta,)
    node.send(meta, "ping")
    assert node.call(owner, ("wait", 1)) == [("via meta", "ping")]
    assert node.call(meta, 5) == ("meta reply", 5)
    node.send_exit(owner, ergo.TerminateReason("bye"))
    backend.settle()
    assert journal == [("meta terminate", ergo.TerminateReason("bye"))]
    with pytest.raises(MetaUnknown):
        node.meta_info(meta)
    with pytest.raises(ergo.ProcessUnknown):
        node.send(meta, "gone")


def test_meta_process_ends_when_its_start_returns(backend):
    node = backend.node()
    journal: list = []

    class OneShot(Relay):
        async def start(self):
            self.process.send(self.process.parent, "started")

    class Owner(Collector):
        def handle_call(self, from_, ref, request):
            if request == "go":
                return self.spawn_meta(OneShot(journal))
            return super().handle_call(from_, ref, request)

    owner = node.spawn(Owner)
    meta = node.call(owner, "go")
    assert node.call(owner, ("wait", 1)) == ["started"]
    backend.settle()
    assert journal == [("meta terminate", ergo.TerminateReasonNormal)]
    with pytest.raises(MetaUnknown):
        node.meta_info(meta)


class Blocked(Relay):
    """Handles one message and then waits forever: what is sent after stays queued."""

    async def handle_message(self, from_, message):
        self.journal.append(("meta got", message))
        await Future()


class MetaOwner(Collector):
    """Does in a handler what a call asks: ``node.call(owner, fn)`` returns ``fn(self)``."""

    def handle_call(self, from_, ref, request):
        if callable(request):
            try:
                return ("ok", request(self))
            except Exception as e:
                return ("error", e)
        return super().handle_call(from_, ref, request)


def test_a_meta_process_spawns_another_owned_by_the_same_process(backend):
    node = backend.node()
    journal: list = []

    class Spawner(Relay):
        def handle_call(self, from_, ref, request):
            return self.process.spawn(Relay(journal))

    owner = node.spawn(MetaOwner)
    _, first = node.call(owner, lambda p: p.spawn_meta(Spawner(journal)))
    second = node.call(first, "spawn")
    assert node.meta_info(second).parent == owner
    assert set(node.process_info(owner).metas) == {first, second}
    # it belongs to the process: it outlives the meta-process that started it
    assert node.call(owner, lambda p: p.send_exit_meta(first, ergo.TerminateReason("first"))) == ("ok", None)
    backend.settle()
    assert node.process_info(owner).metas == (second,)
    node.send_exit(owner, ergo.TerminateReason("owner"))
    backend.settle()
    assert journal == [("meta terminate", ergo.TerminateReason("first")),
                       ("meta terminate", ergo.TerminateReason("owner"))]


def test_send_exit_meta_terminates_it_after_what_the_sender_sent_before(backend):
    """The exit goes to the meta-process's system queue (Ergo), but never overtakes the
    sender's own earlier messages; the meta-process ends with the reason itself."""
    node = backend.node()
    journal: list = []
    owner = node.spawn(MetaOwner)
    _, meta = node.call(owner, lambda p: p.spawn_meta(Relay(journal)))

    def send_then_exit(p):
        p.send(meta, "first")
        p.send_exit_meta(meta, ergo.TerminateReason("then exit"))

    node.call(owner, send_then_exit)
    assert node.call(owner, ("wait", 1)) == [("via meta", "first")]
    backend.settle()
    assert journal == [("meta terminate", ergo.TerminateReason("then exit"))]
    with pytest.raises(MetaUnknown):
        node.meta_info(meta)


def test_send_exit_meta_says_why_it_cannot_be_sent(backend):
    node = backend.node()
    journal: list = []
    owner = node.spawn(MetaOwner)
    _, alias = node.call(owner, lambda p: p.create_alias())
    _, meta = node.call(owner, lambda p: p.spawn_meta(Blocked(journal), 1))
    unknown = ergo.Alias(node.name, node.creation, (0, 0, 0))
    cases = [
        (unknown, ergo.TerminateReason("x"), ergo.AliasUnknown),
        (alias, ergo.TerminateReason("x"), MetaUnknown),  # a process's alias
        (meta, "not an exception", ergo.Incorrect),
        (owner, ergo.TerminateReason("x"), ergo.Incorrect),  # a PID is not a meta-process
    ]
    for target, reason, error in cases:
        status, e = node.call(owner, lambda p, t=target, r=reason: p.send_exit_meta(t, r))
        assert status == "error" and type(e) is error, (target, e)
    # a full system queue refuses it: the meta-process waits in its first handler
    node.send(meta, "block")
    backend.settle()
    node.call(owner, lambda p: p.send_with_priority(meta, "queued", ergo.MessagePriority.HIGH))
    status, e = node.call(owner, lambda p: p.send_exit_meta(meta, ergo.TerminateReason("x")))
    assert status == "error" and type(e) is ergo.MetaMailboxFull
    assert journal == [("meta got", "block")]


def test_a_terminated_process_cannot_spawn_a_meta_process(backend):
    node = backend.node()
    journal: list = []

    class Late(Actor):
        def terminate(self, reason):
            try:
                self.spawn_meta(Relay(journal))
            except ergo.NotAllowed as e:
                journal.append(e)

    node.send_exit(node.spawn(Late), ergo.TerminateReasonNormal)
    backend.settle()
    assert len(journal) == 1 and isinstance(journal[0], ergo.NotAllowed)


# -- shutdown -----------------------------------------------------------------------------


class Trapper(Actor):
    def init(self, journal: list) -> None:
        self.journal = journal
        self.trap_exit = True

    def handle_message(self, from_, message):
        self.journal.append(("trapped", message))

    def terminate(self, reason):
        self.journal.append(("terminate", self.pid, reason))


def test_stop_sends_untrappable_shutdown_to_every_process_and_releases_wait(backend):
    node = backend.node()
    journal: list = []

    class Parent(Trapper):
        def init(self, journal):
            super().init(journal)
            self.spawn(Trapper, journal)

    parent = node.spawn(Parent, journal)
    node.spawn(Trapper, journal)
    node.stop()
    assert node.wait() is True and not node.is_alive()
    terminations = [e for e in journal if e[0] == "terminate"]
    # each is told the parent sent it: the core for the top two, the parent for its child
    assert len(terminations) == 3 and all(type(e[2]) is ExitSignal and e[2].cause == TerminateReasonShutdown
                                          for e in terminations)
    assert sorted(str(e[2].source) for e in terminations) == sorted(map(str, [node.pid, node.pid, parent]))
    assert not [e for e in journal if e[0] == "trapped"]
    assert parent in [e[1] for e in terminations]
    assert node.captured.texts()[-1] == "node test@localhost stopped"


def test_stop_from_inside_a_handler_does_not_deadlock(backend):
    node = backend.node()
    journal: list = []

    class Stopper(Actor):
        def handle_message(self, from_, message):
            node.stop()
            journal.append("stop returned inside the handler")

        def terminate(self, reason):
            journal.append(("terminate", reason))

    node.send(node.spawn(Stopper), "stop")
    assert node.wait() is True
    assert journal == ["stop returned inside the handler", ("terminate", ExitSignal(node.pid, TerminateReasonShutdown))]


def test_stop_force_kills_without_waiting(backend):
    node = backend.node()
    slow = node.spawn(Collector)

    class Waiter(Actor):
        async def handle_message(self, from_, message):
            await self.call(slow, ("wait", 99), timeout=100)

    waiter = node.spawn(Waiter)
    node.send(waiter, "go")
    node.call(slow, "messages")
    node.stop_force()
    assert not node.is_alive() and node._processes == {}
    assert node.wait(timeout=0) is True


def test_wait_with_timeout_returns_false_while_running():
    b = SimBackend()
    node = b.node()
    node.spawn(Collector)
    assert node.wait(timeout=3) is False
    assert b.sim.now == 3
    node.stop()
    assert node.wait() is True


def test_wait_inside_a_handler_is_refused(backend):
    node = backend.node()

    class Waiter(Actor):
        def handle_call(self, from_, ref, request):
            try:
                node.wait()
            except NotAllowed as e:
                return str(e)

    assert "cannot block inside a handler" in node.call(node.spawn(Waiter), "go")


# -- determinism ----------------------------------------------------------------------------


def _scenario(seed: int) -> list[str]:
    out = io.StringIO()
    b = SimBackend(seed)
    node = b.sim.start_node("det@localhost", NodeOptions(log=LogOptions(level="debug", output=out)))

    class Worker(Actor):
        def init(self, peers: list) -> None:
            self.peers = peers

        async def handle_message(self, from_, message: Any):
            jitter = self.node.scheduler.random.random() / 10
            await self.sleep(jitter)
            self.log.info("%s got %r after %.6f", self.pid, message, jitter)
            if message < 100:
                self.send(self.node.scheduler.random.choice(self.peers), message + 1)

    peers: list = []
    for _ in range(4):
        peers.append(node.spawn(Worker, peers))
    node.send(peers[0], 0)
    b.sim.run()
    node.stop()
    return out.getvalue().splitlines()


def test_same_seed_same_log_lines():
    first, second = _scenario(7), _scenario(7)
    assert len(first) > 50 and first == second
    assert _scenario(8) != first


def test_no_process_can_be_spawned_while_the_node_stops(backend):
    node = backend.node()
    refused: list = []

    class Respawner(Actor):
        def terminate(self, reason):
            try:
                node.spawn(Collector)  # e.g. a naive restart during shutdown
            except ergo.NodeTerminated as e:
                refused.append(str(e))

    node.spawn(Respawner)
    node.stop()
    assert node.wait() is True and refused and "stopping" in refused[0]

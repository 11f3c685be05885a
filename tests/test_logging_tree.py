"""The node's lines in the standard ``logging`` tree: dictConfig, record fields, panics with
exc_info, levels, and when the node's own default logger prints."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest

import sim
from ergo import Actor, LogLevel, LogOptions, NodeOptions, ProcessOptions


class Keep(logging.Handler):
    """A handler that keeps the records it is given (what an application's handler sees)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, logger: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name == logger]


@pytest.fixture
def tree() -> Iterator[Keep]:
    """Configure ``ergo`` with dictConfig, as an application would; undo it afterwards."""
    ergo_logger = logging.getLogger("ergo")
    saved = (list(ergo_logger.handlers), ergo_logger.level, ergo_logger.propagate)
    keep = Keep()
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"keep": {"()": lambda: keep}},
        "loggers": {"ergo": {"level": "DEBUG", "handlers": ["keep"], "propagate": False}},
    })
    yield keep
    ergo_logger.handlers[:] = saved[0]
    ergo_logger.setLevel(saved[1])
    ergo_logger.propagate = saved[2]


@contextlib.contextmanager
def unconfigured() -> Iterator[None]:
    """A script that configured no logging: no handler on the root.  Entered inside the
    test's body, because pytest adds its capturing handlers to the root for each phase."""
    root = logging.getLogger()
    saved, root.handlers = root.handlers, []
    try:
        yield
    finally:
        root.handlers = saved


class Talker(Actor):
    def handle_message(self, from_: Any, message: Any) -> None:
        if message == "boom":
            raise RuntimeError("boom in a handler")
        self.log.info("heard %r", message)
        self.log.debug("debug %r", message)


def _node(s: sim.Sim, name: str = "tree@localhost", **log: Any):
    return s.start_node(name, NodeOptions(log=LogOptions(**log)))


def test_dictconfig_captures_the_nodes_first_lines(simulation: sim.Sim, tree: Keep):
    s = simulation
    node = _node(s, default_logger=False)
    started = tree.of("ergo.node")
    assert started and "started" in started[0].getMessage()
    r = started[0]
    assert r.levelname == "INFO" and r.levelno == logging.INFO
    assert r.node == "tree@localhost"
    node.stop()
    assert any("stopped" in r.getMessage() for r in tree.of("ergo.node"))


def test_process_lines_go_to_a_logger_named_by_behaviour_with_fields(simulation: sim.Sim, tree: Keep):
    s = simulation
    node = _node(s, default_logger=False)
    pid = node.spawn(Talker)
    node.register_name("talker", pid)
    node.send(pid, "hello")
    s.run()
    records = tree.of(f"ergo.process.{Talker.__qualname__}")
    assert [r.getMessage() for r in records] == ["heard 'hello'"]
    r = records[0]
    assert (r.node, r.pid, r.process_name, r.behavior) == ("tree@localhost", str(pid), "talker", Talker.__qualname__)
    assert r.created == node.scheduler.time()  # the virtual clock's time, not the wall clock's
    node.stop()


def test_a_process_name_in_a_records_fields_has_its_control_characters_escaped(simulation: sim.Sim, tree: Keep):
    """A registered name may be another node's choice (its remote ``spawn_register``, which
    any name passes), and ``record.process_name`` gave it as it was: a handler's format
    with ``%(process_name)s`` wrote a newline in it as a line of its own.  It is escaped,
    as an Atom prints itself."""
    s = simulation
    node = _node(s, default_logger=False)
    pid = node.spawn_register("w\n2026-01-01 [critical] forged\x1b[2K", Talker)
    node.send(pid, "hello")
    s.run()
    (r,) = tree.of(f"ergo.process.{Talker.__qualname__}")
    assert r.process_name == "w\\n2026-01-01 [critical] forged\\x1b[2K"
    node.stop()


def test_fields_reach_a_json_formatter(simulation: sim.Sim, tree: Keep):
    s = simulation
    node = _node(s, default_logger=False)
    pid = node.spawn(Talker)
    node.send(pid, 1)
    s.run()

    class Fields(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return json.dumps({k: getattr(record, k, None) for k in ("levelname", "node", "pid", "behavior")}
                              | {"message": record.getMessage()})

    line = json.loads(Fields().format(tree.of(f"ergo.process.{Talker.__qualname__}")[0]))
    assert line == {"levelname": "INFO", "node": "tree@localhost", "pid": str(pid),
                    "behavior": Talker.__qualname__, "message": "heard 1"}
    node.stop()


def test_a_panic_is_logged_critical_with_exc_info_and_its_traceback_once(simulation: sim.Sim, tree: Keep):
    s = simulation
    node = _node(s, default_logger=False)
    pid = node.spawn(Talker)
    node.send(pid, "boom")
    s.run()
    panics = [r for r in tree.of(f"ergo.process.{Talker.__qualname__}") if r.levelno == logging.CRITICAL]
    assert len(panics) == 1
    r = panics[0]
    assert r.levelname == "CRITICAL"
    assert r.exc_info is not None and isinstance(r.exc_info[1], RuntimeError)
    assert "Traceback" not in r.getMessage()  # the traceback comes from exc_info, not the text
    text = logging.Formatter("%(message)s").format(r)
    assert text.count("Traceback") == 1 and "RuntimeError: boom in a handler" in text
    node.stop()


def test_per_process_levels_still_decide_before_the_tree(simulation: sim.Sim, tree: Keep):
    s = simulation
    node = _node(s, default_logger=False, level="debug")
    quiet = node.spawn(Talker, options=ProcessOptions(log_level=LogLevel.WARNING))
    loud = node.spawn(Talker)
    node.send(quiet, "q")
    node.send(loud, "l")
    s.run()
    texts = [r.getMessage() for r in tree.of(f"ergo.process.{Talker.__qualname__}")]
    assert texts == ["heard 'l'", "debug 'l'"]
    node.stop()


def test_the_tree_level_filters_only_the_tree(simulation: sim.Sim, tree: Keep):
    logging.getLogger("ergo.process").setLevel(logging.WARNING)
    try:
        s = simulation
        node = _node(s, default_logger=False)
        own: list[str] = []

        class Own:
            def log(self, m: Any) -> None:
                own.append(m.text())

        node.logger_add("own", Own())
        pid = node.spawn(Talker)
        node.send(pid, "x")
        s.run()
        assert tree.of(f"ergo.process.{Talker.__qualname__}") == []
        assert "heard 'x'" in own  # the node's own loggers follow the node's levels only
        node.stop()
    finally:
        logging.getLogger("ergo.process").setLevel(logging.NOTSET)


def test_default_logger_is_on_when_no_logging_is_configured(simulation: sim.Sim, capsys: pytest.CaptureFixture):
    with unconfigured():
        s = simulation
        node = _node(s)
        assert "default" in node.loggers()
        node.stop()
    out, err = capsys.readouterr()
    assert "[info]" in out and "started" in out
    assert err == ""


def test_default_logger_steps_aside_when_the_application_configured_logging(simulation: sim.Sim, tree: Keep):
    s = simulation
    node = _node(s)
    assert "default" not in node.loggers()
    node.stop()
    assert tree.of("ergo.node")  # the lines went to the application's handler instead


def test_default_logger_is_on_when_given_an_output_or_asked_for(simulation: sim.Sim, tree: Keep):
    s = simulation
    out = io.StringIO()
    a = _node(s, "a@localhost", output=out)
    b = _node(s, "b@localhost", default_logger=True, output=io.StringIO())
    assert "default" in a.loggers() and "default" in b.loggers()
    a.stop()
    b.stop()
    assert "started" in out.getvalue()


def test_nothing_reaches_logging_last_resort_when_the_default_logger_is_off(
    simulation: sim.Sim, capsys: pytest.CaptureFixture
):
    with unconfigured():
        s = simulation
        node = _node(s, default_logger=False)
        pid = node.spawn(Talker)
        node.send(pid, "boom")  # a panic: logged at CRITICAL, which the last resort would print
        s.run()
        node.stop()
    out, err = capsys.readouterr()
    assert out == "" and err == ""

"""The registrar service (Ergo's ESRD) over the transport seam: who serves a host, how nodes
register with it, how other hosts resolve names, failover, and what bad bytes cost.

Most tests run on simulated hosts (several registrars on one host, as several nodes of one
machine, and resolves from another host); the last ones run the same service on asyncio
over loopback, with addresses and a port of their own.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import net
import sim
from ergo import Actor, LogOptions, NetworkOptions, NodeOptions, ProcessID
from ergo.gen.errors import (
    Incorrect,
    NameUnknown,
    NetworkStopped,
    NoConnection,
    NoRoute,
    Taken,
    TooLarge,
    Unregistered,
)
from ergo.gen.options import AcceptorOptions
from ergo.network import EsrdRegistrar, Registrar, Route
from ergo.network.registrar import CONN_LINES, MAX_RESOLVE_REPLY, MAX_ROUTES, MAX_UNREGISTERED
from ergo.scheduler import Future
from ergo.transport import DatagramProtocol, StreamProtocol
from ergo.wire.registrar import (
    DEFAULT_PORT,
    MessageDecoder,
    Register,
    RegisterReply,
    Resolve,
    ResolveReply,
    Unregister,
    UnregisterReply,
    decode_datagram,
    encode,
)
from net.scheduler import AsyncioScheduler
from net.transport import AsyncioTransport


class Lines:
    """A registrar's log kept as (level, text) lines; ``poke`` is called on every line."""

    def __init__(self, poke: Callable[[], None] | None = None) -> None:
        self.lines: list[tuple[str, str]] = []
        self._poke = poke

    def _add(self, level: str, fmt: str, args: tuple[Any, ...]) -> None:
        self.lines.append((level, fmt % args))
        if self._poke is not None:
            self._poke()

    def debug(self, fmt: str, *args: Any) -> None:
        self._add("debug", fmt, args)

    def info(self, fmt: str, *args: Any) -> None:
        self._add("info", fmt, args)

    def warning(self, fmt: str, *args: Any) -> None:
        self._add("warning", fmt, args)

    def error(self, fmt: str, *args: Any) -> None:
        self._add("error", fmt, args)

    def has(self, level: str, text: str) -> bool:
        return any(lv == level and text in line for lv, line in self.lines)


def routes(host: str, port: int = 11144) -> tuple[Route, ...]:
    return (Route(host, port),)


def make(s: sim.Sim, host: str, **kwargs: Any) -> EsrdRegistrar:
    h = s.host(host)
    kwargs.setdefault("log", Lines())
    return EsrdRegistrar(h.scheduler, h.transport, host, **kwargs)


def done(s: sim.Sim, fut: Future[Any], timeout: float = 60) -> Future[Any]:
    s.run_until(fut.done, timeout=timeout)
    return fut


def outcome(s: sim.Sim, fut: Future[Any], timeout: float = 60) -> Any:
    """The future's result, or its exception (not raised)."""
    done(s, fut, timeout)
    return fut.exception() or fut.result()


class Raw(StreamProtocol):
    """A hand-driven client of the registrar port: what a foreign or broken peer does."""

    def __init__(self) -> None:
        self.stream: Any = None
        self.decoder = MessageDecoder()
        self.messages: list[Any] = []
        self.lost: Any = "open"

    def connection_made(self, stream: Any) -> None:
        self.stream = stream

    def data_received(self, data: memoryview) -> None:
        self.messages += self.decoder.feed(data)

    def connection_lost(self, error: Any) -> None:
        self.lost = error


class Datagrams(DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[bytes, Any]] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append((data, addr))


def raw_connect(s: sim.Sim, from_host: str, to_host: str, port: int = DEFAULT_PORT) -> Raw:
    raw = Raw()
    fut = s.host(from_host).transport.connect(to_host, port, lambda: raw)
    done(s, fut)
    fut.result()
    return raw


@pytest.fixture
def s() -> sim.Sim:
    return sim.Sim(seed=3)


@pytest.fixture
def host1(s: sim.Sim) -> tuple[EsrdRegistrar, EsrdRegistrar]:
    """Two registrars on host1: the first serves (with a@host1), the second registered b@host1 with it."""
    r1, r2 = make(s, "host1"), make(s, "host1")
    a, b = r1.register("a@host1", routes("host1", 1001)), r2.register("b@host1", routes("host1", 1002))
    done(s, b)
    assert a.result() is None and b.result() is None
    return r1, r2


# -- serving and registering --------------------------------------------------------------


def test_the_first_registrar_on_a_host_serves_and_registers_its_node_in_process(s):
    r1 = make(s, "host1")
    fut = r1.register("a@host1", routes("host1"))
    assert fut.done() and fut.result() is None  # no connection, no waiting
    info = r1.info()
    assert info["mode"] == "server" and info["registered"] == ["a@host1"]
    assert info["nodes"] == {"a@host1": "registered"}
    assert isinstance(r1, Registrar)


def test_the_other_registrars_of_the_host_register_over_a_connection_to_it(s, host1):
    r1, r2 = host1
    assert r1.info()["registered"] == ["a@host1", "b@host1"] and r1.info()["connections"] == 1
    assert r2.info()["mode"] == "client" and r2.info()["nodes"] == {"b@host1": "registered"}
    assert r1.info()["malformed"] == 0


def test_a_registration_takes_one_round_trip_on_the_hosts_loopback(s):
    s.host("host1")
    s.set_latency("host1", "host1", 0.01)
    r1, r2 = make(s, "host1"), make(s, "host1")
    r1.register("a@host1", routes("host1"))
    start = s.now
    done(s, r2.register("b@host1", routes("host1")))
    assert s.now - start == pytest.approx(0.04)  # connect (2 x 10 ms), Register, RegisterReply


def test_resolve_from_another_host_asks_that_hosts_registrar_over_udp(s, host1):
    s.host("host2")
    s.set_latency("host1", "host2", 0.005)
    r3 = make(s, "host2")
    start = s.now
    a, b = r3.resolve("a@host1"), r3.resolve("b@host1")
    assert outcome(s, a) == routes("host1", 1001)
    assert outcome(s, b) == routes("host1", 1002)
    assert s.now - start == pytest.approx(0.01)  # one datagram each way


def test_the_server_resolves_its_own_hosts_names_at_once(s, host1):
    r1, _ = host1
    fut = r1.resolve("b@host1")
    assert fut.done() and fut.result() == routes("host1", 1002)


def test_a_client_on_the_same_host_resolves_through_the_server(s, host1):
    _, r2 = host1
    assert outcome(s, r2.resolve("a@host1")) == routes("host1", 1001)


def test_resolves_of_one_name_in_flight_share_one_query(s, host1):
    r3 = make(s, "host2")
    one, two = r3.resolve("a@host1"), r3.resolve("a@host1")
    assert r3.info()["resolving"] == ["a@host1"]
    done(s, two)
    assert one.result() == two.result() == routes("host1", 1001)
    assert r3.info()["resolving"] == []


def test_a_duplicate_name_fails_register_with_taken_and_the_first_keeps_it(s, host1):
    r1, r2 = host1
    r3 = make(s, "host1")
    err = outcome(s, r3.register("a@host1", routes("host1", 9999)))
    assert isinstance(err, Taken) and "a@host1" in str(err)
    err = outcome(s, r3.register("b@host1", routes("host1", 9999)))
    assert isinstance(err, Taken)
    err = outcome(s, r1.register("b@host1", routes("host1", 9999)))  # on the server itself
    assert isinstance(err, Taken)
    assert r3.info()["nodes"] == {}
    r4 = make(s, "host2")
    assert outcome(s, r4.resolve("a@host1")) == routes("host1", 1001)
    assert outcome(s, r4.resolve("b@host1")) == routes("host1", 1002)
    assert r1.info()["connections"] == 1  # the refused connection was closed


def test_register_checks_its_arguments_at_once(s):
    r = make(s, "host1")
    with pytest.raises(Incorrect):
        r.register("nohost", routes("host1"))
    with pytest.raises(Incorrect):
        r.register("a@host2", routes("host2"))  # not this registrar's host
    with pytest.raises(Incorrect):
        r.register("a@host1", ())
    with pytest.raises(Incorrect):
        r.register("a@host1", [Route("host1", 1)])  # type: ignore[arg-type]
    with pytest.raises(Incorrect):
        r.resolve("nohost")
    for timing in ("retry", "attempt_timeout", "register_timeout", "resolve_timeout"):
        with pytest.raises(Incorrect, match=timing):
            make(s, "host1", **{timing: 0})
    with pytest.raises(Incorrect):
        make(s, "host1", resolve_tries=0)
    with pytest.raises(Incorrect):
        make(s, "host1", port=0)
    r.register("a@host1", routes("host1"))
    with pytest.raises(Taken):
        r.register("a@host1", routes("host1"))


def test_unregister_drops_the_name_on_a_client_and_on_the_server(s, host1):
    r1, r2 = host1
    r3 = make(s, "host2")
    r2.unregister("b@host1")
    s.run_until(lambda: r1.info()["registered"] == ["a@host1"], timeout=10)
    assert isinstance(outcome(s, r3.resolve("b@host1")), NoRoute)
    r1.unregister("a@host1")
    assert r1.info()["registered"] == []
    assert isinstance(outcome(s, r3.resolve("a@host1")), NoRoute)
    r1.unregister("a@host1")  # again: nothing happens
    assert r2.info()["nodes"] == {}


def test_unregister_before_registration_completes_fails_that_register(s, host1):
    r3 = make(s, "host1")
    fut = r3.register("c@host1", routes("host1"))
    r3.unregister("c@host1")
    assert isinstance(fut.exception(), Unregistered)
    s.run_for(1)
    assert "c@host1" not in host1[0].info()["registered"]


def test_closing_the_registration_connection_drops_the_name(s, host1):
    r1, r2 = host1
    r2.close()
    s.run_until(lambda: r1.info()["registered"] == ["a@host1"], timeout=10)
    assert isinstance(outcome(s, make(s, "host2").resolve("b@host1")), NoRoute)
    assert r1.info()["connections"] == 0


def test_the_server_keeps_a_name_exactly_while_its_connection_lives(s, host1):
    r1, _ = host1
    raw = raw_connect(s, "host1", "host1")
    raw.stream.write(encode(Register("c@host1", routes("host1", 1003))))
    s.run_until(lambda: raw.messages, timeout=10)
    assert raw.messages == [RegisterReply(None)]
    s.run_for(30)  # long after any timeout: a registered connection stays
    assert "c@host1" in r1.info()["registered"]
    raw.stream.close()
    s.run_until(lambda: "c@host1" not in r1.info()["registered"], timeout=10)


def test_register_refuses_routes_whose_resolve_reply_would_exceed_its_bound(s, host1):
    """A Resolve is a UDP datagram of a few bytes from any (forgeable) source: the reply
    must stay small (MAX_RESOLVE_REPLY, 256 bytes), so what a node registers is bounded in
    number (MAX_ROUTES) and in encoded size, at the register call and at the server alike;
    two routes on long host names are already too much."""
    r1, _ = host1
    fits = tuple(Route("host1", 1000 + i) for i in range(MAX_ROUTES))
    assert len(encode(ResolveReply(fits))) <= MAX_RESOLVE_REPLY == 256
    too_many = tuple(Route("h", 1000 + i) for i in range(MAX_ROUTES + 1))
    too_long = (Route("h" * 150, 1000), Route("h" * 150, 1001))
    for routes_, why in [(too_many, "MAX_ROUTES"), (too_long, "MAX_RESOLVE_REPLY")]:
        with pytest.raises(TooLarge, match=why):
            make(s, "host1").register("c@host1", routes_)
        raw = raw_connect(s, "host1", "host1")
        raw.stream.write(encode(Register("c@host1", routes_)))
        s.run_until(lambda: raw.messages, timeout=10)  # noqa: B023 - run within the iteration
        assert isinstance(raw.messages[0], RegisterReply) and isinstance(raw.messages[0].error, TooLarge)
        assert why in str(raw.messages[0].error)
    assert "c@host1" not in r1.info()["registered"]
    assert outcome(s, make(s, "host1").register("c@host1", fits)) is None
    assert outcome(s, make(s, "host2").resolve("c@host1")) == fits


def test_the_answer_for_a_name_nobody_holds_is_shorter_than_the_question(s, host1):
    """Anyone may ask for any name, registered or not: the NoRoute answer does not repeat
    the name (it was the question's length plus some 60 bytes); the resolver still says
    which name and which registrar."""
    got = Datagrams()
    ep = s.host("host2").transport.datagram("host2", 0, got)
    question = encode(Resolve("n" * 200 + "@host1"))
    ep.sendto(question, ("host1", DEFAULT_PORT))
    s.run_until(lambda: got.got, timeout=10)
    (answer, _), = got.got
    assert isinstance(decode_datagram(answer).error, NoRoute)
    assert len(answer) < 40 < len(question)
    error = outcome(s, make(s, "host2").resolve("zz@host1"))
    assert isinstance(error, NoRoute) and str(error) == ("no route to zz@host1: the registrar on host1:4499 does "
                                                         "not know it")


def test_the_server_refuses_a_second_name_on_one_connection(s, host1):
    """(A name of another host from another machine: see
    test_another_machine_cannot_register_and_its_connections_take_no_waiting_slot.)"""
    r1, _ = host1
    # a second name on a registered connection is refused, and the connection closed
    # with its first name (a refused request ends a connection, whatever it holds)
    raw = raw_connect(s, "host1", "host1")
    raw.stream.write(encode(Register("c@host1", routes("host1"))))
    raw.stream.write(encode(Register("d@host1", routes("host1"))))
    s.run_until(lambda: raw.lost != "open", timeout=10)
    assert raw.messages[0] == RegisterReply(None) and isinstance(raw.messages[1].error, Incorrect)
    assert r1.info()["registered"] == ["a@host1", "b@host1"]
    # so is an Unregister of a name that is not this connection's, and its own ends it too
    raw = raw_connect(s, "host1", "host1")
    raw.stream.write(encode(Register("c@host1", routes("host1"))))
    raw.stream.write(encode(Unregister("a@host1")))  # not this connection's name
    s.run_until(lambda: raw.lost != "open", timeout=10)
    assert raw.messages[0] == RegisterReply(None) and isinstance(raw.messages[1].error, NameUnknown)
    assert r1.info()["registered"] == ["a@host1", "b@host1"]
    raw = raw_connect(s, "host1", "host1")
    raw.stream.write(encode(Register("c@host1", routes("host1"))))
    raw.stream.write(encode(Unregister("c@host1")))
    raw.stream.write(encode(Register("c@host1", routes("host1"))))  # after its Unregister: not read
    s.run_until(lambda: raw.lost != "open", timeout=10)
    assert raw.messages == [RegisterReply(None), UnregisterReply(None)]
    assert r1.info()["registered"] == ["a@host1", "b@host1"] and r1.info()["connections"] == 1


def test_settled_registrars_leave_no_timer_running(s, host1):
    assert outcome(s, make(s, "host2").resolve("a@host1")) == routes("host1", 1001)
    settled = s.now
    s.run()  # returns once nothing is left to happen: no attempt, deadline, idle or resolve timer
    assert s.now == settled


# -- failover -------------------------------------------------------------------------------


def _failover(seed: int) -> tuple[str, float, list[Any]]:
    """Three registrars on host1 (a serving, b and c with it), the server closed: who serves
    next, how long until both survivors are registered, and what host2 resolves then."""
    s = sim.Sim(seed=seed)
    regs = {name: make(s, "host1") for name in "abc"}
    for name, r in regs.items():
        done(s, r.register(f"{name}@host1", routes("host1", ord(name))))
    resolver = make(s, "host2")
    start = s.now
    regs["a"].close()

    def recovered() -> bool:
        servers = [r for r in (regs["b"], regs["c"]) if r.info()["mode"] == "server"]
        return len(servers) == 1 and servers[0].info()["registered"] == ["b@host1", "c@host1"]

    s.run_until(recovered, timeout=10)
    took = s.now - start
    winner = "b" if regs["b"].info()["mode"] == "server" else "c"
    found = [outcome(s, resolver.resolve(f"{n}@host1")) for n in "abc"]
    return winner, took, found


def test_when_the_server_closes_one_survivor_serves_and_the_others_register_again():
    winner, took, found = _failover(seed=1)
    assert took < 1.0 + 0.01  # within the retry period (plus a few loopback hops)
    assert found[1] == routes("host1", ord("b")) and found[2] == routes("host1", ord("c"))
    assert isinstance(found[0], NoRoute)  # the closed registrar's node is gone


def test_failover_is_determined_by_the_seed_and_the_winner_varies_with_it():
    runs = {seed: _failover(seed) for seed in range(8)}
    assert _failover(5) == runs[5]
    assert {winner for winner, _, _ in runs.values()} == {"b", "c"}


def test_a_resolve_in_flight_across_a_failover_gets_its_answer_from_the_new_server(s, host1):
    r1, r2 = host1
    resolver = make(s, "host2")
    r1.close()
    fut = resolver.resolve("b@host1")  # its first datagram finds nobody: the port is between servers
    assert outcome(s, fut) == routes("host1", 1002)
    assert r2.info()["mode"] == "server"


def test_failover_logs_the_loss_and_the_new_server(s, host1):
    r1, r2 = host1
    r1.close()
    s.run_until(lambda: r2.info()["mode"] == "server", timeout=10)
    log = r2._log._log  # (behind the PrintableLog that escapes what peers chose)
    assert isinstance(log, Lines)
    assert log.has("warning", "lost the registration connection of b@host1")
    assert log.has("info", "serving the nodes of host1")
    assert log.has("info", "b@host1 is registered again")


def test_a_survivor_that_cannot_reach_a_registrar_keeps_trying_until_one_serves(s, host1):
    r1, r2 = host1
    r1.close()  # frees both ports at once; a foreign program takes the UDP one before r2 notices
    blocker = s.host("host1").transport.datagram("host1", DEFAULT_PORT, Datagrams())
    s.run_for(5)  # r2 cannot serve (UDP taken) and nobody listens on TCP: it keeps trying
    assert r2.info()["mode"] == "client" and r2.info()["nodes"] == {"b@host1": "waiting"}
    assert r2._log.has("warning", "registering b@host1 with host1:4499 failed")  # type: ignore[attr-defined]
    blocker.close()
    s.run_until(lambda: r2.info()["mode"] == "server", timeout=3)
    assert r2.info()["registered"] == ["b@host1"]


# -- resolve failures -----------------------------------------------------------------------


def test_resolving_a_name_the_host_does_not_know_fails_with_noroute(s, host1):
    err = outcome(s, make(s, "host2").resolve("zed@host1"))
    assert isinstance(err, NoRoute) and "zed@host1" in str(err) and "host1:4499" in str(err)


def test_resolving_on_a_host_without_a_registrar_fails_cleanly_within_its_bound(s):
    s.host("host2")
    r = make(s, "host1", resolve_timeout=3.0, resolve_tries=3)
    start = s.now
    err = outcome(s, r.resolve("a@host2"))
    assert isinstance(err, NoConnection)
    assert "host2:4499 did not answer" in str(err) and "a@host2" in str(err)
    assert "no node runs on that host" in str(err) and "NetworkOptions.registrar_port" in str(err)  # what to check
    assert s.now - start == pytest.approx(3.0)
    assert r.info()["resolving"] == []
    err = outcome(s, r.resolve("a@nowhere"))  # no such host at all: the same, datagrams vanish
    assert isinstance(err, NoConnection)


def test_resolve_sends_again_when_a_datagram_goes_unanswered(s):
    s.host("host2")
    r = make(s, "host2")
    fut = r.resolve("a@host1")
    s.run_for(0.5)  # the first datagram found nobody on host1
    server = make(s, "host1")
    server.register("a@host1", routes("host1"))
    assert outcome(s, fut) == routes("host1")
    assert s.now == pytest.approx(1.0 + 0.002)  # answered by the second try


def test_first_register_fails_with_noconnection_when_no_registrar_can_be_reached(s):
    # a foreign program holds the UDP port: nobody can serve, and nothing listens on TCP
    s.host("host1").transport.datagram("host1", DEFAULT_PORT, Datagrams())
    r = make(s, "host1", register_timeout=4.0)
    start = s.now
    err = outcome(s, r.register("a@host1", routes("host1")))
    assert isinstance(err, NoConnection) and "cannot register a@host1" in str(err)
    assert "refused" in str(err)
    assert s.now - start == pytest.approx(4.0)
    assert r.info()["nodes"] == {}


def test_first_register_gives_up_on_a_registrar_that_never_replies(s):
    silent: list[Raw] = []
    s.host("host1").transport.listen("host1", DEFAULT_PORT, lambda: silent.append(Raw()) or silent[-1])
    r = make(s, "host1", attempt_timeout=1.0, register_timeout=3.0)
    err = outcome(s, r.register("a@host1", routes("host1")))
    assert isinstance(err, NoConnection) and "no RegisterReply within 1.0 s" in str(err)
    assert len(silent) >= 2  # it tried more than once


def test_close_fails_what_is_pending_and_later_calls_raise(s, host1):
    r3 = make(s, "host2")
    r4 = make(s, "host1")
    resolving = r3.resolve("a@host1")
    registering = r4.register("c@host1", routes("host1"))
    r3.close()
    r4.close()
    assert isinstance(resolving.exception(), NetworkStopped)
    assert isinstance(registering.exception(), NetworkStopped)
    with pytest.raises(NetworkStopped):
        r3.resolve("a@host1")
    with pytest.raises(NetworkStopped):
        r4.register("d@host1", routes("host1"))
    assert r3.info()["mode"] == "closed"
    r3.close()  # idempotent
    s.run_for(5)
    assert "c@host1" not in host1[0].info()["registered"]


# -- bad bytes ----------------------------------------------------------------------------


def test_garbage_on_the_registration_port_closes_that_connection_only(s, host1):
    r1, r2 = host1
    raw = raw_connect(s, "host1", "host1")
    raw.stream.write(b"\x00GET / HTTP/1.1\r\n\r\n")
    s.run_until(lambda: raw.lost != "open", timeout=10)
    assert r1.info()["malformed"] == 1
    assert r1._log.has("error", "closing the registration connection from host1")  # type: ignore[attr-defined]
    # everyone else is served as before
    assert r2.info()["nodes"] == {"b@host1": "registered"}
    assert outcome(s, make(s, "host1").register("c@host1", routes("host1"))) is None
    assert outcome(s, make(s, "host2").resolve("b@host1")) == routes("host1", 1002)


def test_garbage_after_a_registration_drops_that_name(s, host1):
    r1, _ = host1
    raw = raw_connect(s, "host1", "host1")
    raw.stream.write(encode(Register("c@host1", routes("host1"))))
    s.run_until(lambda: raw.messages, timeout=10)
    raw.stream.write(encode(Resolve("a@host1")))  # a datagram's message on the stream: a violation
    s.run_until(lambda: raw.lost != "open", timeout=10)
    assert r1.info()["registered"] == ["a@host1", "b@host1"]


def test_a_connection_that_never_registers_is_closed(s, host1):
    r1, _ = host1
    raw = raw_connect(s, "host1", "host1")
    s.run_until(lambda: raw.lost != "open", timeout=10)
    assert r1.info()["connections"] == 1
    assert r1._log.has("warning", "no Register within")  # type: ignore[attr-defined]


def test_connections_waiting_to_register_are_bounded_and_the_oldest_goes(s, host1):
    """Connections that say nothing (or half a message) are kept at most MAX_UNREGISTERED
    at once: each one more closes the oldest (logged), before its attempt timeout, and a
    real node still registers meanwhile, as do the registered ones stay."""
    r1, _ = host1
    silent = [raw_connect(s, "host1", "host1") for _ in range(MAX_UNREGISTERED + 5)]
    s.run_until(lambda: sum(r.lost != "open" for r in silent) == 5, timeout=1)
    assert [r.lost != "open" for r in silent] == [True] * 5 + [False] * MAX_UNREGISTERED
    assert r1._log.has("warning", f"{MAX_UNREGISTERED} connections wait to register")  # type: ignore[attr-defined]
    assert outcome(s, make(s, "host1").register("c@host1", routes("host1")), timeout=1) is None
    # (the registering connection, one more, closed the oldest silent one: its FIN may still
    # be on its way when the registration's answer is in)
    s.run_until(lambda: sum(r.lost != "open" for r in silent) == 6, timeout=1)
    assert [r.lost != "open" for r in silent] == [True] * 6 + [False] * (MAX_UNREGISTERED - 1)
    assert r1.info()["registered"] == ["a@host1", "b@host1", "c@host1"]


def test_a_server_holds_at_most_max_registered_names(s, host1, monkeypatch):
    """Each registered name keeps its connection open as long as it likes: a server holds
    at most MAX_REGISTERED names and refuses more with TooLarge (closing that connection),
    so that registrations cannot take every socket its node may open."""
    import ergo.network.registrar as registrar

    monkeypatch.setattr(registrar, "MAX_REGISTERED", 4)
    r1, _ = host1
    raws = [raw_connect(s, "host1", "host1") for _ in range(3)]
    for i, raw in enumerate(raws):
        raw.stream.write(encode(Register(f"x{i}@host1", routes("host1"))))
    s.run_until(lambda: all(raw.messages for raw in raws), timeout=10)
    assert [type(raw.messages[0].error).__name__ for raw in raws] == ["NoneType", "NoneType", "TooLarge"]
    s.run_until(lambda: raws[2].lost != "open", timeout=10)
    assert r1.info()["registered"] == ["a@host1", "b@host1", "x0@host1", "x1@host1"]


class FakeServer(StreamProtocol):
    """Holds the registration port and answers every connection's first bytes with ``answer``."""

    def __init__(self, answer: bytes, accepted: list[Any]) -> None:
        self.answer = answer
        self.stream: Any = None
        accepted.append(self)

    def connection_made(self, stream: Any) -> None:
        self.stream = stream

    def data_received(self, data: memoryview) -> None:
        self.stream.write(self.answer)


def test_malformed_bytes_from_the_registrar_close_the_connection_and_the_node_registers_again(s):
    accepted: list[FakeServer] = []
    s.host("host1").transport.listen("host1", DEFAULT_PORT,
                                     lambda: FakeServer(encode(RegisterReply(None)) + b"garbage", accepted))
    r = make(s, "host1")
    assert outcome(s, r.register("a@host1", routes("host1"))) is None  # the reply came before the garbage
    s.run_until(lambda: len(accepted) == 2, timeout=5)  # then it closed and tried again
    assert r._log.has("error", "closing the registration connection to host1:4499")  # type: ignore[attr-defined]
    assert accepted[0].stream.closing


def test_a_register_callback_that_closes_the_registrar_ends_the_reading_of_that_connection(s):
    accepted: list[FakeServer] = []
    twice = encode(RegisterReply(None)) * 2  # a second reply is a violation, if it were still read
    s.host("host1").transport.listen("host1", DEFAULT_PORT, lambda: FakeServer(twice, accepted))
    r = make(s, "host1")
    fut = r.register("a@host1", routes("host1"))
    fut._on_done(lambda _f: r.close())
    assert outcome(s, fut) is None
    s.run_for(5)
    assert r.info()["mode"] == "closed" and len(accepted) == 1
    assert not any(level == "error" for level, _ in r._log.lines)  # type: ignore[attr-defined]


def test_malformed_datagrams_are_dropped_and_resolving_goes_on(s, host1):
    r1, _ = host1
    listener = Datagrams()
    ep = s.host("host2").transport.datagram("host2", 0, listener)
    bad = [b"", b"\xff" * 40, encode(Resolve("a@host1"))[:-1], encode(Register("x@host1", routes("host1")))]
    for payload in bad:
        ep.sendto(payload, ("host1", DEFAULT_PORT))
    ep.sendto(encode(Resolve("a@host1")), ("host1", DEFAULT_PORT))
    s.run_until(lambda: listener.got, timeout=10)
    s.run_for(1)
    assert [decode_datagram(d) for d, _ in listener.got] == [ResolveReply(routes("host1", 1001))]
    assert r1.info()["malformed"] == len(bad)
    assert outcome(s, make(s, "host2").resolve("b@host1")) == routes("host1", 1002)


def test_a_flood_of_bad_datagrams_is_logged_once_a_second(s, host1):
    """A datagram costs its sender nothing and its source may be forged: 1000 bad ones
    are all counted, logged in one line, and the next line a second later says how many
    were dropped meanwhile; resolving goes on."""
    r1, _ = host1
    ep = s.host("host2").transport.datagram("host2", 0, Datagrams())

    def dropped() -> list[str]:
        return [text for level, text in r1._log.lines if "registrar: dropped" in text]  # type: ignore[attr-defined]

    for _ in range(1000):
        ep.sendto(b"\xff" * 40, ("host1", DEFAULT_PORT))
    s.run_for(0.5)
    assert r1.info()["malformed"] == 1000
    assert len(dropped()) == 1
    s.run_for(1)
    ep.sendto(b"\xff", ("host1", DEFAULT_PORT))
    s.run_until(lambda: len(dropped()) == 2, timeout=10)
    assert "(999 more dropped since the last line)" in dropped()[1]
    assert outcome(s, make(s, "host2").resolve("b@host1")) == routes("host1", 1002)


def test_a_resolver_takes_a_reply_only_from_the_registrar_it_asked(s, host1):
    """Anyone can send a datagram to a resolve's UDP port: a well-formed ResolveReply
    from the registrar port of another host (or from another port of the right host),
    arriving before the real one, is dropped and counted, never taken as the answer (it
    redirected the dial to the forger's routes)."""
    s.host("host2")
    s.set_latency("host1", "host2", 0.01)
    r3 = make(s, "host2")
    fut = r3.resolve("a@host1")
    query = r3._queries["a@host1"]
    assert query.endpoint is not None
    port = query.endpoint.address[1]
    forged = encode(ResolveReply(routes("evil")))
    stranger = s.host("host3").transport.datagram("host3", DEFAULT_PORT, Datagrams())
    stranger.sendto(forged, ("host2", port))
    other_port = s.host("host1").transport.datagram("host1", 0, Datagrams())
    other_port.sendto(forged, ("host2", port))
    assert outcome(s, fut) == routes("host1", 1001)
    assert r3.info()["dropped_replies"] == 2
    log = r3._log._log  # (behind the PrintableLog that escapes what peers chose)
    assert isinstance(log, Lines)
    assert log.has("warning", "dropped a datagram from host3:4499 resolving a@host1: only the registrar asked "
                   "(host1:4499) answers")


def test_a_resolver_drops_garbage_from_the_registrar_and_logs_a_line_a_second(s):
    """What comes from the registrar's address but is not a ResolveReply (garbage, a
    Resolve) is dropped too and the resolve waits on; the lines about dropped datagrams
    are one a second, the rest counted (a datagram costs its sender nothing)."""
    s.host("host2")
    registrar_port = Datagrams()
    fake = s.host("host1").transport.datagram("host1", DEFAULT_PORT, registrar_port)  # host1's registrar
    r3 = make(s, "host2")
    fut = r3.resolve("a@host1")
    s.run_until(lambda: registrar_port.got, timeout=10)
    asker = registrar_port.got[0][1]
    for _ in range(100):
        fake.sendto(b"junk", asker)
    fake.sendto(encode(Resolve("a@host1")), asker)
    s.run_for(0.5)
    assert not fut.done() and r3.info()["dropped_replies"] == 101
    log = r3._log._log
    assert isinstance(log, Lines)
    dropped = [text for level, text in log.lines if "dropped" in text]
    assert len(dropped) == 1 and dropped[0].startswith("registrar: dropped a malformed reply from host1:4499")
    fake.sendto(encode(ResolveReply(routes("host1", 1001))), asker)
    assert outcome(s, fut) == routes("host1", 1001)


@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.binary(max_size=80), min_size=1, max_size=5),
       datagrams=st.lists(st.binary(max_size=80), max_size=5),
       prefix=st.sampled_from([b"", encode(Register("z@host1", routes("host1")))]))
def test_any_bytes_on_either_port_leave_the_server_serving_everyone_else(chunks, datagrams, prefix):
    s = sim.Sim(seed=11)
    r1, r2 = make(s, "host1"), make(s, "host1")
    r1.register("a@host1", routes("host1", 1001))
    done(s, r2.register("b@host1", routes("host1", 1002)))
    raw = raw_connect(s, "host1", "host1")  # (another host's connection is closed unread: see below)
    raw.stream.write(prefix)
    for chunk in chunks:
        raw.stream.write(chunk)
    ep = s.host("host2").transport.datagram("host2", 0, Datagrams())
    for payload in datagrams:
        ep.sendto(payload, ("host1", DEFAULT_PORT))
    s.run_for(5)  # long enough for the idle timeout of a connection that never registered
    assert raw.lost != "open" or r1.info()["registered"] == ["a@host1", "b@host1", "z@host1"]
    assert {"a@host1", "b@host1"} <= set(r1.info()["registered"])
    assert r2.info()["nodes"] == {"b@host1": "registered"}
    assert outcome(s, make(s, "host1").register("c@host1", routes("host1", 1003))) is None
    resolver = make(s, "host2")
    for name, port in (("a", 1001), ("b", 1002), ("c", 1003)):
        assert outcome(s, resolver.resolve(f"{name}@host1")) == routes("host1", port)


class Echo(Actor):
    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return ("echo", request)


def _networked() -> NodeOptions:
    """A node with the registrar on (the default port) and an acceptor on 11144 and up."""
    return NodeOptions(log=LogOptions(default_logger=False),
                       network=NetworkOptions(cookie="registrar-test", acceptors=(AcceptorOptions(port=11144),)))


def test_nodes_find_each_other_through_their_hosts_registrars_and_after_a_failover():
    s = sim.Sim(seed=4)
    a, b = s.start_node("a@host1", _networked()), s.start_node("b@host1", _networked())
    b.spawn_register("echo", Echo)
    c = s.start_node("c@host2", _networked())
    assert c.call(ProcessID("echo", "b@host1"), 1) == ("echo", 1)  # resolved through host1's registrar
    a.stop()  # the node whose registrar served host1
    s.run_for(2)
    d = s.start_node("d@host3", _networked())
    assert d.call(ProcessID("echo", "b@host1"), 2) == ("echo", 2)  # b's registrar serves now


def test_a_node_with_several_acceptors_fits_the_bound_and_one_past_it_fails_its_start():
    """What a node registers is one route per acceptor: eight acceptors fit the resolve
    reply's bound and are resolved as registered; a node with more routes than a
    registration may carry fails its start with TooLarge saying why, its ports freed."""
    s = sim.Sim(seed=4)
    log = LogOptions(default_logger=False)

    def acceptors(n: int) -> NodeOptions:
        ports = tuple(AcceptorOptions(port=11144 + 10 * i, port_range=10) for i in range(n))
        return NodeOptions(log=log, network=NetworkOptions(cookie="registrar-test", acceptors=ports))

    b = s.start_node("b@host1", acceptors(8))
    b.spawn_register("echo", Echo)
    c = s.start_node("c@host2", _networked())
    assert c.call(ProcessID("echo", "b@host1"), 1) == ("echo", 1)
    assert outcome(s, make(s, "host2").resolve("b@host1")) == tuple(Route("host1", 11144 + 10 * i) for i in range(8))
    with pytest.raises(TooLarge, match=r"d@host1 registers 17 routes, more than 16 \(MAX_ROUTES; a node registers "
                                        r"one per acceptor, NetworkOptions.acceptors\)"):
        s.start_node("d@host1", acceptors(MAX_ROUTES + 1))
    assert sorted(s.host("host1").ports.stream) == [4499, *(11144 + 10 * i for i in range(8))]


def test_a_hidden_node_resolves_through_the_registrar_but_is_not_registered(caplog):
    s = sim.Sim(seed=4)
    b = s.start_node("b@host1", _networked())
    b.spawn_register("echo", Echo)
    options = _networked()
    assert options.network is not None
    hidden = s.start_node("h@host2", NodeOptions(log=options.log, network=replace(options.network, mode="hidden")))
    assert hidden.call(ProcessID("echo", "b@host1"), 3) == ("echo", 3)
    assert isinstance(outcome(s, make(s, "host1").resolve("h@host2")), NoConnection)  # host2 serves nobody
    # the acceptor it was given is not started, and it says so (Ergo ignores it silently)
    assert 11144 not in s.host("host2").ports.stream
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "network: h@host2 is hidden: the 1 acceptor of NetworkOptions.acceptors is not started (a hidden node "
        "only dials out)"]


def test_the_links_of_a_pool_join_on_the_first_links_route_without_resolving_again():
    """One resolve per connection: the pool's other links dial the route the first took
    (as Ergo's pool redials the acceptor's addresses), so the pool fills when the peer's
    registrar is away the moment after, and no join reaches another address."""
    s = sim.Sim(seed=4)
    b = s.start_node("b@host1", _networked())
    b.spawn_register("echo", Echo)
    c = s.start_node("c@host2", _networked())
    registrar = c.network()._registrar
    asked: list[str] = []
    resolve = registrar.resolve

    def counted(name: str) -> Any:
        asked.append(name)
        if len(asked) > 1:  # the registrar is gone (or would answer elsewhere) for any later one
            raise AssertionError(f"resolved {name} again")
        return resolve(name)

    registrar.resolve = counted  # type: ignore[method-assign]
    assert c.call(ProcessID("echo", "b@host1"), 1) == ("echo", 1)
    s.run_until(lambda: len(c.network()._connections["b@host1"].links) == 3
                == len(b.network()._connections["c@host2"].links), timeout=5)
    assert asked == ["b@host1"]


def test_a_call_to_a_name_its_hosts_registrar_does_not_know_fails_with_noroute():
    s = sim.Sim(seed=4)
    s.start_node("b@host1", _networked())
    c = s.start_node("c@host2", _networked())
    with pytest.raises(NoRoute, match="ghost@host1"):  # the dial's own reason, not a NoConnection
        c.call(ProcessID("echo", "ghost@host1"), 1)
    with pytest.raises(NoRoute, match="ghost@host1"):  # and again, once more through the registrar
        c.call(ProcessID("echo", "ghost@host1"), 2)


# -- on asyncio, over loopback ---------------------------------------------------------------


def _free_port(host: str) -> int:
    """A port free for both TCP and UDP on ``host`` now (the test's own, not 4499)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((host, 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                except OSError:
                    continue
            return int(port)
    raise AssertionError("no free port")


class Loop:
    """Registrars on one asyncio loop; ``run_until`` runs the loop until a log line or a
    future makes the condition true (a deadline against a hang, never a wait)."""

    def __init__(self, kind: str) -> None:
        if kind == "uvloop":
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self.scheduler = AsyncioScheduler(self.loop)
        self.transport = AsyncioTransport(self.loop)
        self.event: asyncio.Event | None = None
        self.registrars: list[EsrdRegistrar] = []

    def poke(self) -> None:
        if self.event is not None:
            self.event.set()

    def make(self, host: str, port: int, **kwargs: Any) -> EsrdRegistrar:
        r = EsrdRegistrar(self.scheduler, self.transport, host, port=port, log=Lines(self.poke), **kwargs)
        self.registrars.append(r)
        return r

    def run_until(self, predicate: Callable[[], object]) -> None:
        async def wait() -> None:
            self.event = event = asyncio.Event()
            while not predicate():
                event.clear()
                await event.wait()

        self.loop.run_until_complete(asyncio.wait_for(wait(), 30))

    def result(self, fut: Future[Any]) -> Any:
        fut._on_done(lambda _f: self.poke())
        self.run_until(fut.done)
        return fut.exception() or fut.result()

    def close(self) -> None:
        for r in self.registrars:
            r.close()
        for _ in range(5):
            self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()


@pytest.fixture(params=["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"))])
def aio(request: pytest.FixtureRequest):
    loop = Loop(request.param)
    yield loop
    loop.close()


def test_on_asyncio_nodes_register_resolve_and_fail_over_over_loopback(aio):
    host, other = "127.0.0.23", "127.0.0.24"
    port = _free_port(host)
    r1, r2 = aio.make(host, port), aio.make(host, port, retry=0.05)
    resolver = aio.make(other, port)
    assert aio.result(r1.register(f"a@{host}", routes(host, 1001))) is None
    assert aio.result(r2.register(f"b@{host}", routes(host, 1002))) is None
    assert r1.info()["mode"] == "server" and r2.info()["mode"] == "client"
    assert aio.result(resolver.resolve(f"b@{host}")) == routes(host, 1002)
    assert isinstance(aio.result(resolver.resolve(f"zed@{host}")), NoRoute)
    assert isinstance(aio.result(aio.make(host, port).register(f"b@{host}", routes(host))), Taken)
    r1.close()  # the server goes: r2 takes the port over
    aio.run_until(lambda: r2.info()["mode"] == "server")
    assert r2.info()["registered"] == [f"b@{host}"]
    assert aio.result(resolver.resolve(f"b@{host}")) == routes(host, 1002)
    assert isinstance(aio.result(resolver.resolve(f"a@{host}")), NoRoute)


def test_on_asyncio_garbage_on_both_ports_does_not_stop_the_service(aio):
    host = "127.0.0.23"
    port = _free_port(host)
    r1 = aio.make(host, port)
    r1.register(f"a@{host}", routes(host, 1001))
    with socket.create_connection((host, port)) as garbage:
        garbage.sendall(b"\xde\xad\xbe\xef" * 8)
        aio.run_until(lambda: r1.info()["malformed"] == 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"\x52\x01\x2e\xff\xff", (host, port))
        aio.run_until(lambda: r1.info()["malformed"] == 2)
    resolver = aio.make("127.0.0.24", port, resolve_timeout=10)
    assert aio.result(resolver.resolve(f"a@{host}")) == routes(host, 1001)


def test_on_asyncio_resolving_a_host_without_a_registrar_fails_within_its_bound(aio):
    port = _free_port("127.0.0.25")
    r = aio.make("127.0.0.24", port, resolve_timeout=0.3, resolve_tries=3)
    err = aio.result(r.resolve("a@127.0.0.25"))
    assert isinstance(err, NoConnection) and f"127.0.0.25:{port} did not answer" in str(err)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Any:
    """asyncio's resolver (which runs socket.getaddrinfo in the loop's executor) with two
    names made up, so that no DNS is asked: "nohost" has no address, "slowhost" answers
    only when the test says (``resolver.answer()``); the names it was asked, in order."""
    import threading

    real = socket.getaddrinfo
    asked: list[str] = []
    release = threading.Event()

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("nohost", "slowhost"):
            asked.append(host)
            if host == "slowhost":
                release.wait(30)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    class Resolver:
        names = asked
        answer = release.set

    yield Resolver
    release.set()


def test_on_asyncio_resolving_a_host_nobody_knows_fails_at_once_naming_it(resolver):
    """A name with no address cannot be sent a datagram: said at once, not after the
    resolve timeout (asyncio's loop; uvloop asks the system's resolver without Python)."""
    aio = Loop("asyncio")
    try:
        r = aio.make("127.0.0.24", _free_port("127.0.0.24"), resolve_timeout=60.0, resolve_tries=3)
        started = aio.loop.time()
        err = aio.result(r.resolve("a@nohost"))
        assert resolver.names == ["nohost"]
        assert isinstance(err, NoConnection)
        assert str(err) == "cannot resolve a@nohost: the host nohost is unknown (its name resolves to no address)"
        assert aio.loop.time() - started < 30  # (not the resolve timeout of 60 s)
        assert r.info()["resolving"] == []
    finally:
        aio.close()


def test_on_asyncio_a_slow_lookup_of_a_host_name_does_not_block_the_loop(resolver):
    """A host name is looked up in the loop's executor: while the resolver takes its time
    (a slow DNS), the loop goes on (another resolve is answered meanwhile), and the
    resolve gives up after its resolve_timeout in all, saying so."""
    aio = Loop("asyncio")
    try:
        host = "127.0.0.26"
        port = _free_port(host)
        server = aio.make(host, port)
        aio.result(server.register(f"a@{host}", routes(host, 1001)))
        r = aio.make("127.0.0.27", port, resolve_timeout=30.0, resolve_tries=3)
        slow = r.resolve("b@slowhost")
        assert aio.result(r.resolve(f"a@{host}")) == routes(host, 1001)  # answered meanwhile
        assert resolver.names == ["slowhost"] and not slow.done()
        resolver.answer()  # (no address after all)
        err = aio.result(slow)
        assert isinstance(err, NoConnection) and "the host slowhost is unknown" in str(err)
    finally:
        resolver.answer()
        aio.close()


def test_on_asyncio_a_lookup_that_outlasts_the_resolve_timeout_fails_the_resolve(resolver):
    aio = Loop("asyncio")
    try:
        r = aio.make("127.0.0.27", _free_port("127.0.0.27"), resolve_timeout=0.2, resolve_tries=3)
        err = aio.result(r.resolve("b@slowhost"))  # (the resolver answers only at the test's end)
        assert isinstance(err, NoConnection)
        assert str(err) == ("cannot resolve b@slowhost: looking up the address of the host slowhost took more "
                            "than 0.2 s")
        assert r.info()["resolving"] == []
    finally:
        resolver.answer()
        aio.close()


_SERVER_PROCESS = """
import asyncio, sys
from ergo.network import EsrdRegistrar, Route
from net.scheduler import AsyncioScheduler
from net.transport import AsyncioTransport
host, port = sys.argv[1], int(sys.argv[2])
loop = asyncio.new_event_loop()
r = EsrdRegistrar(AsyncioScheduler(loop), AsyncioTransport(loop), host, port=port)
r.register("a@" + host, (Route(host, 1001),))
print(r.info()["mode"], flush=True)
loop.run_forever()
"""


def test_on_asyncio_killing_the_serving_process_makes_a_survivor_serve(aio):
    host = "127.0.0.23"
    port = _free_port(host)
    proc = subprocess.Popen([sys.executable, "-c", _SERVER_PROCESS, host, str(port)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "server"  # it holds both ports now
        r2 = aio.make(host, port, retry=0.05)
        resolver = aio.make("127.0.0.24", port)
        assert aio.result(r2.register(f"b@{host}", routes(host, 1002))) is None
        assert r2.info()["mode"] == "client"
        assert aio.result(resolver.resolve(f"a@{host}")) == routes(host, 1001)
        proc.kill()  # no goodbye: the OS closes its sockets
        proc.wait()
        aio.run_until(lambda: r2.info()["mode"] == "server")
        assert r2.info()["registered"] == [f"b@{host}"]
        assert aio.result(resolver.resolve(f"b@{host}")) == routes(host, 1002)
        assert isinstance(aio.result(resolver.resolve(f"a@{host}")), NoRoute)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("first", ["a@localhost", "b@127.0.0.1"])
def test_on_asyncio_two_spellings_of_one_address_share_its_registrar(first):
    """The README names a node ``…@localhost``, docs/network.md ``…@127.0.0.1``: on one
    machine those are one address and one registrar port, whichever node serves it, so
    the other one registers there (instead of failing to start with "is not a node of host
    …") and each resolves the other."""
    port = _free_port("127.0.0.1")
    options = NodeOptions(log=LogOptions(default_logger=False),
                          network=NetworkOptions(cookie="c", registrar_port=port,
                                                 acceptors=(AcceptorOptions(port=0),)))

    class Echo(Actor):
        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            return (self.node.name, request)

    async def main() -> list[Any]:
        names = [first, next(n for n in ("a@localhost", "b@127.0.0.1") if n != first)]
        async with net.start_node(names[0], options) as x, net.start_node(names[1], options) as y:
            x.spawn_register("echo", Echo)
            y.spawn_register("echo", Echo)
            return [await x.call_async(ProcessID("echo", names[1]), 1),
                    await y.call_async(ProcessID("echo", names[0]), 2)]

    second = "b@127.0.0.1" if first == "a@localhost" else "a@localhost"
    assert asyncio.run(main()) == [(second, 1), (first, 2)]


@pytest.mark.parametrize("name", ["x@host1", "x@host2", "x@host3"])
def test_another_machine_cannot_register_and_its_connections_take_no_waiting_slot(s, host1, name):
    """Only the host's own nodes register (Ergo's server listens on localhost for that): a
    registration connection from another machine is closed at once, unanswered, whatever
    name it would register (its host's, ours, a third's), logged and counted, and a flood
    of them pushes out none of the host's own connections waiting to register.  Another
    machine still resolves (over UDP), as before."""
    r1, _ = host1
    waiting = raw_connect(s, "host1", "host1")  # a local program's connection, not registered yet
    raw = raw_connect(s, "host2", "host1")
    raw.stream.write(encode(Register(name, routes(name.split("@")[1]))))
    s.run_until(lambda: raw.lost != "open", timeout=10)
    assert raw.messages == [] and raw.lost is None  # a clean close (FIN), nothing answered
    assert r1.info()["registered"] == ["a@host1", "b@host1"]
    assert r1.info()["foreign"] == 1 and r1.info()["connections"] == 2  # (b's and the waiting one)
    assert r1._log.has("warning", "registrar: closed the connection from host2:")  # type: ignore[attr-defined]
    assert r1._log.has("warning", "only the nodes of this host register here")  # type: ignore[attr-defined]
    flood = [raw_connect(s, "host2", "host1") for _ in range(MAX_UNREGISTERED + 5)]
    s.run_until(lambda: all(r.lost != "open" for r in flood), timeout=1)
    assert waiting.lost == "open" and r1.info()["foreign"] == MAX_UNREGISTERED + 6
    waiting.stream.write(encode(Register("c@host1", routes("host1"))))
    s.run_until(lambda: waiting.messages, timeout=1)
    assert waiting.messages == [RegisterReply(None)]
    assert outcome(s, make(s, "host2").resolve("c@host1")) == routes("host1")


@pytest.mark.parametrize(("peer", "local", "same"), [
    ("127.0.0.1", "127.0.0.2", True),  # a node of 127.0.0.2 dials its registrar from 127.0.0.1
    ("127.0.0.5", "10.0.0.5", True),
    ("::1", "::1", True),
    ("::ffff:127.0.0.1", "::ffff:10.0.0.5", True),  # a dual-stack listener's loopback peer
    ("10.0.0.5", "10.0.0.5", True),  # a node of 10.0.0.5 dials 10.0.0.5 from that address
    ("fe80::1%eth0", "fe80::1%eth0", True),
    ("10.0.0.7", "10.0.0.5", False),  # another machine
    ("::ffff:10.0.0.7", "::ffff:10.0.0.5", False),
    ("2001:db8::7", "2001:db8::5", False),
    ("fe80::7%eth0", "fe80::1%eth0", False),
    ("host2", "host1", False),  # simulated hosts
    ("host1", "host1", True),
])
def test_a_connection_is_from_this_host_from_a_loopback_address_or_the_address_it_reached(peer, local, same):
    from ergo.network.registrar import _from_this_host

    class Stream:
        pass

    stream = Stream()
    stream.peer, stream.local = (peer, 40000), (local, DEFAULT_PORT)  # type: ignore[attr-defined]
    assert _from_this_host(stream) is same  # type: ignore[arg-type]


def test_lines_about_registration_connections_are_logged_at_most_a_hundred_a_second(s, host1):
    """Registering is not authenticated: anyone who reaches the port makes a line per
    connection (here connections that each register and unregister a name, two lines
    each).  The first CONN_LINES of a second are logged, the rest in one line when the
    second is over; the names are served all the same."""
    r1, _ = host1
    pairs = CONN_LINES
    batch = MAX_UNREGISTERED // 2  # connections open at once (more would close the oldest, with a line)
    for first in range(0, pairs, batch):
        raws = [Raw() for _ in range(first, min(pairs, first + batch))]
        connects = [s.host("host1").transport.connect("host1", DEFAULT_PORT, lambda raw=raw: raw) for raw in raws]
        s.run_until(lambda connects=connects: all(c.done() for c in connects), timeout=1)
        for i, raw in enumerate(raws, first):
            raw.stream.write(encode(Register(f"x{i}@host1", routes("host1"))) + encode(Unregister(f"x{i}@host1")))
        s.run_until(lambda raws=raws: all(len(raw.messages) == 2 for raw in raws), timeout=1)
        assert all(m.error is None for raw in raws for m in raw.messages)
    assert s.now < 1  # all within the second the lines are counted in

    def about(text: str) -> int:
        return sum(1 for _, line in r1._log.lines if text in line)  # type: ignore[attr-defined]

    # b@host1's registration (the fixture's) made one line of that second too
    logged = about("registered b@host1 from") + about("registered x") + about("is no longer registered")
    assert logged == CONN_LINES
    more = 2 * pairs + 1 - CONN_LINES
    s.run_until(lambda: about(f"{more} more lines about registration connections") == 1, timeout=10)
    assert outcome(s, make(s, "host1").register("c@host1", routes("host1"))) is None


def test_a_registration_connection_that_never_reads_cannot_make_the_server_hold_its_answers(s, host1):
    """Registering is not authenticated, and a connection may send requests without ever
    reading the answers: each answer the server wrote for it waited in the server's send
    buffer (a 10-byte Unregister of another's name fetched a 60-byte NameUnknown), and a
    close did not free them (a graceful close waits for the peer to take them): twenty
    such connections held 260 MB for good.  A connection gets one answer to a refused
    request and is closed with it, and one to its Unregister, so whatever it sends, the
    server holds a few bytes for it, and only while it lives."""
    r1, r2 = host1
    flood = encode(Unregister("x@host1")) * 20_000  # 200 KB of requests the server would answer
    raws = []
    for i in range(10):
        raw = raw_connect(s, "host2", "host1")
        raw.stream.pause_reading()
        if i % 2:  # a registered one asks again and again
            raw.stream.write(encode(Register(f"c{i}@host1", routes("host1"))))
            for _ in range(5):
                raw.stream.write(encode(Register(f"d{i}@host1", routes("host1"))) * 5_000)
        for _ in range(5):
            raw.stream.write(flood)
        raws.append(raw)
    s.run_for(1.0)
    assert sum(c.stream.buffered for c in r1._server_conns if c.stream is not None) < 4096
    s.run_for(5.0)
    assert r1.info()["connections"] == 1  # b@host1's registration alone: every flooding one is closed
    assert r1.info()["registered"] == ["a@host1", "b@host1"]
    assert outcome(s, make(s, "host1").register("e@host1", routes("host1")), timeout=5) is None
    assert r2.info()["nodes"] == {"b@host1": "registered"}


def test_a_resolve_every_asker_gave_up_on_stops_and_frees_its_port(s, host1):
    """A caller gives up on a resolve by completing its future itself (as on a transport's
    connect): once every asker of the name did, the query ends, its UDP port closed, rather
    than held for the rest of the resolve timeout (a dial that timed out left one behind,
    and dials to many silent hosts ran the process out of descriptors); one still asked
    for goes on, and its asker gets the answer."""
    r = make(s, "host2")
    s.host("silent")
    first, second = r.resolve("x@silent"), r.resolve("x@silent")
    other = r.resolve("a@host1")
    assert sorted(r.info()["resolving"]) == ["a@host1", "x@silent"]
    query = r._queries["x@silent"]
    first.set_exception(NoConnection("given up"))
    assert not query.done  # the second asker still waits
    second.set_exception(NoConnection("given up"))
    assert query.done and r.info()["resolving"] == ["a@host1"]
    assert query.endpoint is not None and query.endpoint not in s.host("host2").transport.endpoints
    assert outcome(s, other) == routes("host1", 1001)

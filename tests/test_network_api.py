"""What ``node.network()`` offers a user, on both transports: peers, info, routes, important
delivery, compression, and the errors of a node without a network."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pytest
from network_support import COOKIE, TRANSPORTS, Cluster, Counter, hold_a_call, make_cluster, options
from support import Collector
from test_calls_fail_fast import Holder

import ergo
import net as ergo_net
import sim
from ergo import (
    Actor,
    CompressionOptions,
    Incorrect,
    LogOptions,
    MessageDownNode,
    MessageDownPID,
    NameUnknown,
    NetworkOptions,
    NetworkStopped,
    NoConnection,
    NodeOptions,
    NoReply,
    NoRoute,
    ProcessID,
    ProcessOptions,
    ProcessState,
    ProcessUnknown,
    Taken,
    TerminateReasonShutdown,
    Unsupported,
    unwrap_reason,
)
from ergo.network import NetworkRoute


@pytest.fixture(params=TRANSPORTS)
def cluster(request: pytest.FixtureRequest):
    c: Cluster = make_cluster(request.param)
    yield c
    c.close()


class Important(Collector):
    """Sends important messages from a plain or an async handler and keeps the outcomes."""

    async def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        if isinstance(request, tuple) and request[0] == "important":
            try:
                await self.send_important(request[1], request[2])
                return "delivered"
            except Exception as e:
                return type(e).__name__
        return super().handle_call(from_, ref, request)


def test_important_delivery_says_whether_the_message_reached_the_mailbox(cluster):
    a, b = cluster.cluster(2)
    collector = b.spawn_register("c", Collector)
    sender = a.spawn(Important)
    assert a.call(sender, ("important", ProcessID("c", b.name), "hello")) == "delivered"
    assert b.call(collector, "messages") == ["hello"]  # delivered before the acknowledgement
    assert a.call(sender, ("important", ProcessID("nobody", b.name), "lost")) == "ProcessUnknown"

    class Blocker(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            await self.sleep(3600)

    blocked = b.spawn(Blocker, options=ProcessOptions(mailbox_size=1))
    b.send(blocked, "occupy")  # busy in its handler for an hour
    cluster.run_until(lambda: b.process_info(blocked).state == ProcessState.WAIT_RESPONSE)
    b.send(blocked, "fill")  # its one mailbox slot
    assert a.call(sender, ("important", blocked, "one too many")) == "MailboxFull"


def test_a_remote_call_to_a_full_mailbox_fails_at_once_and_leaves_nothing_owed(cluster):
    """A call from another node to a process whose mailbox is full is refused with
    ``MailboxFull`` at once (not at its timeout); the node keeps no debt for it (neither
    the connection nor the target), so the next call, once there is room, is answered."""
    a, b = cluster.cluster(2)
    holder = b.spawn(Holder)

    class Blocker(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            if message == "occupy":
                await self.call(holder, "wait", timeout=60)  # until the holder answers

        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            return ("answered", request)

    blocked = b.spawn(Blocker, options=ProcessOptions(mailbox_size=1))
    b.send(blocked, "occupy")
    cluster.run_until(lambda: b.process_info(blocked).state == ProcessState.WAIT_RESPONSE)
    b.send(blocked, "fill")  # its one mailbox slot
    with pytest.raises(ergo.MailboxFull):
        a.call(blocked, "one too many", timeout=60)
    assert not b.network()._connections[a.name].owed
    assert not b._processes[blocked.id]._calls_in
    b.send(holder, "answer all")  # the blocker goes on and empties its mailbox
    cluster.run_until(lambda: b.process_info(blocked).state == ProcessState.SLEEP)
    assert a.call(blocked, "later", timeout=60) == ("answered", "later")


def test_a_process_with_important_delivery_logs_what_was_not_delivered(cluster):
    a, b = cluster.cluster(2)

    class Plain(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            self.send(ProcessID("nobody", b.name), message)  # important: the peer acknowledges

    pid = a.spawn(Plain, options=ProcessOptions(important_delivery=True))
    a.send(pid, "lost")
    cluster.run_until(lambda: any("was not delivered" in t for t in a.captured.texts()))
    assert any("ProcessUnknown" in t or "no process" in t for t in a.captured.texts()
               if "was not delivered" in t)


def test_compression_per_process_carries_big_messages_in_fewer_bytes(cluster):
    a, b = cluster.cluster(2)
    collector = b.spawn_register("c", Collector)
    big = "abc" * 20_000

    class Sender(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            self.send(ProcessID("c", b.name), big)

    plain = a.spawn(Sender)
    packed = a.spawn(Sender, options=ProcessOptions(compression=CompressionOptions(enable=True)))
    a.send(plain, "go")
    assert b.call(collector, ("wait", 1)) == [big]
    before = a.network().info()["peers"][str.__str__(b.name)]["bytes_out"]
    a.send(packed, "go")
    assert b.call(collector, ("wait", 2)) == [big, big]
    sent = a.network().info()["peers"][str.__str__(b.name)]["bytes_out"] - before
    assert sent < len(big) // 10  # lz4 made 60 kB of repetition a few hundred bytes


def test_network_info_nodes_and_get_node(cluster):
    a, b = cluster.cluster(2)
    assert a.network().nodes() == []
    with pytest.raises(NoConnection):
        a.network().node(b.name)
    remote = a.wait_for(a.network().get_node(b.name))
    assert remote.name == b.name and remote.creation == b.creation and remote.is_connected()
    assert a.network().node(b.name).name == b.name
    name = str.__str__(b.name)
    # the pool's other links join after the first handshake
    cluster.run_until(lambda: a.network().info()["peers"][name]["links"] == 3)
    info = a.network().info()
    assert info["mode"] == "enabled" and len(info["acceptors"]) == 1 and info["registrar"] is None
    peer = info["peers"][name]
    assert peer["pool_size"] == 3 and peer["dialed"]
    assert set(peer) >= {"messages_in", "messages_out", "bytes_in", "bytes_out", "uptime"}
    remote.disconnect()
    assert a.network().nodes() == []


def test_routes_are_checked_and_listed(cluster):
    (a,) = cluster.cluster(1)
    net = a.network()
    net.add_route("^x@", NetworkRoute("127.0.0.1", 1), weight=5)
    with pytest.raises(Taken):
        net.add_route("^x@", NetworkRoute("127.0.0.1", 2))
    with pytest.raises(Incorrect):
        net.add_route("(", NetworkRoute("127.0.0.1", 2))
    with pytest.raises(Incorrect):
        NetworkRoute("", 5)
    assert [(m, r.port, w) for m, r, w in net.routes()] == [("^x@", 1, 5)]
    net.remove_route("^x@")
    with pytest.raises(NoRoute, match=r"^no route for '\^x@'$"):
        net.remove_route("^x@")
    for wrong in (None, 5, ""):  # said as add_route says it (was NoRoute "no route for None")
        with pytest.raises(Incorrect, match="a route's match is a non-empty regular expression"):
            net.remove_route(wrong)
    with pytest.raises(NoRoute):
        a.wait_for(net.get_node("nowhere@host9"))  # no static route, no registrar
    for wrong in ("badname", "", 7, "a@b\nforged"):  # no node name: said at the call, not in a future
        with pytest.raises(Incorrect):
            net.get_node(wrong)


@dataclasses.dataclass
class _Order:
    item: str
    qty: int


@dataclasses.dataclass
class _Unregistered:
    item: str


def test_a_dataclass_registered_with_ergo_register_type_crosses_and_an_unregistered_one_says_how(cluster):
    a, b = cluster.cluster(2)

    class MyError(Exception):
        pass

    class Echo(Actor):
        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            if request == "fail":
                self.send_response_error(from_, ref, MyError("bad input"))
                return NoReply
            return request

    b.spawn_register("echo", Echo)
    with pytest.raises(ergo.RemoteError, match="^MyError: bad input$"):  # an unregistered exception class
        a.call(ProcessID("echo", b.name), "fail")
    assert ergo.register_type(_Order, "test_network_api.Order") == "test_network_api.Order"  # both nodes: one process
    assert a.call(ProcessID("echo", b.name), _Order("tea", 2)) == _Order("tea", 2)
    with pytest.raises(Unsupported, match=r"unregistered dataclass .*_Unregistered: "
                                          r"ergo\.register_type\(_Unregistered\) on both nodes"):
        a.send(ProcessID("echo", b.name), _Unregistered("x"))


def test_disabling_what_was_never_enabled_is_name_unknown(cluster):
    """The project's own ``NameUnknown`` (Ergo's ``ErrNameUnknown``), which a user catches
    as ``ergo.NameUnknown``, saying which name."""
    (a,) = cluster.cluster(1)
    net = a.network()
    with pytest.raises(NameUnknown, match="'never' is not enabled for remote spawn"):
        net.disable_spawn("never")
    with pytest.raises(NameUnknown, match="'never' is not enabled for remote application start"):
        net.disable_application_start("never")
    net.enable_spawn("once", Collector)
    net.disable_spawn("once")
    with pytest.raises(NameUnknown):
        net.disable_spawn("once")


def test_a_node_without_a_network_says_so():
    s = sim.Sim(1)
    node = s.start_node("alone@host1", NodeOptions())
    with pytest.raises(NetworkStopped, match="no network"):
        node.network()
    with pytest.raises(NetworkStopped):
        node.send(ProcessID("x", "other@host2"), 1)


def test_a_node_whose_network_mode_is_disabled_says_that_is_why():
    s = sim.Sim(1)
    node = s.start_node("off@host1", NodeOptions(network=NetworkOptions(cookie="c", mode="disabled")))
    with pytest.raises(NetworkStopped, match="mode is 'disabled'"):
        node.network()
    with pytest.raises(NetworkStopped, match="mode is 'disabled'"):
        node.send(ProcessID("x", "other@host2"), 1)


def test_network_options_of_the_wrong_type_fail_the_start_before_it_is_logged():
    s = sim.Sim(1)
    out = io.StringIO()
    with pytest.raises(Incorrect, match="NodeOptions.network must be NetworkOptions or None, not bool"):
        s.start_node("wrong@host1", NodeOptions(network=True, log=LogOptions(output=out)))  # type: ignore[arg-type]
    assert out.getvalue() == ""  # no "node ... started" for a node that never ran
    s.start_node("wrong@host1", NodeOptions())  # and nothing of it is left: the name is free


def test_a_call_to_an_unreachable_node_fails_with_the_reason(cluster):
    (a,) = cluster.cluster(1)
    a.network().add_route("^ghost@", NetworkRoute("host1" if cluster.name == "sim" else "127.0.0.1", 1))
    with pytest.raises((NoConnection, ProcessUnknown)):
        a.call(ProcessID("x", "ghost@nowhere"), "q", timeout=30)


def test_a_graceful_stop_tells_remote_watchers_the_real_reason_before_the_connection_goes(cluster):
    a, b = cluster.cluster(2)
    target = b.spawn(Collector)
    watcher = a.spawn(Collector)

    class Watch(Actor):
        def init(self, target: Any, report: Any) -> None:
            self.report = report
            self.monitor(target)
            self.monitor(b.name)

        def handle_message(self, from_: Any, message: Any) -> None:
            self.send(self.report, message)

    a.spawn(Watch, target, watcher)
    a.call(target, "messages")  # the monitor went before this call's request
    b.stop()
    got = a.call(watcher, ("wait", 2))
    down_pid = next(m for m in got if isinstance(m, MessageDownPID))
    assert unwrap_reason(down_pid.reason) is TerminateReasonShutdown, down_pid.reason  # not NoConnection
    assert any(isinstance(m, MessageDownNode) for m in got)


def test_calls_from_a_node_that_went_away_are_forgotten_and_a_spawn_over_a_dead_connection_fails_its_future(cluster):
    a, b = cluster.cluster(2)

    holder = b.spawn_register("holder", Holder)
    caller = hold_a_call(cluster, a, ProcessID("holder", b.name))
    assert len(b.network().remote_calls) == 1 and b._names["holder"]._calls_in
    remote = a.network().node(b.name)
    remote.disconnect()
    assert a.call(caller, ("wait", 1)) == ["NoConnection"]
    cluster.run_until(lambda: not b.network().nodes())
    assert b.network().remote_calls == {} and not b._names["holder"]._calls_in  # nothing kept for them
    spawn = remote.spawn("anything")
    assert spawn.done() and isinstance(spawn.exception(), NoConnection)
    assert holder is not None


def test_a_send_right_after_a_link_failed_dials_again_instead_of_crashing(cluster):
    a, b = cluster.cluster(2)
    collector = b.spawn_register("c", Collector)
    assert a.call(collector, "messages") == []  # connected
    conn = a.network()._connections[str.__str__(b.name)]
    conn.links[0].fail("a test broke it")  # before the transport reports the loss
    a.send(collector, "after")  # a new connection is dialed for it
    assert b.call(collector, ("wait", 1)) == ["after"]
    assert any("a test broke it" in t for t in a.captured.texts())


class Burst(Actor):
    """On ``(to, n)``: sends 0..n-1 to ``to`` in one handler run (one batch frame on a link)."""

    def handle_message(self, from_: Any, message: Any) -> None:
        to, n = message
        for i in range(n):
            self.send(to, i)


def test_a_batch_of_plain_sends_keeps_order_and_the_recipients_mailbox_limit(cluster):
    a, b = cluster.cluster(2)
    roomy = b.spawn(Collector)
    narrow = b.spawn(Collector, options=ProcessOptions(mailbox_size=3))
    burst = a.spawn(Burst)
    a.send(burst, (roomy, 50))
    assert a.call(roomy, ("wait", 50)) == list(range(50))
    # the whole batch reaches b before the recipient runs: its mailbox takes the first 3
    a.send(burst, (narrow, 10))
    a.send(burst, (roomy, 1))  # after the batch to narrow, on the same link
    assert a.call(roomy, ("wait", 51))[-1] == 0
    assert a.call(narrow, "messages") == [0, 1, 2]


class Spread(Actor):
    """On ``(tos, n, priority)``: sends 0..n-1 round-robin to ``tos`` in one handler run, at ``priority``."""

    def handle_message(self, from_: Any, message: Any) -> None:
        tos, n, priority = message
        for i in range(n):
            self.send_with_priority(tos[i % len(tos)], i, priority)


@pytest.mark.parametrize("priority", ["normal", "high"])
def test_a_batch_to_many_recipients_or_at_high_priority_keeps_each_ones_order_and_limit(cluster, priority):
    a, b = cluster.cluster(2)
    roomy = [b.spawn(Collector) for _ in range(3)]
    narrow = b.spawn(Collector, options=ProcessOptions(mailbox_size=3))
    spread = a.spawn(Spread)
    a.send(spread, (roomy, 30, priority))  # one entry per send: the recipient changes every time
    for i, pid in enumerate(roomy):
        assert a.call(pid, ("wait", 10)) == list(range(i, 30, 3))
    a.send(spread, ([roomy[0]], 20, priority))  # one entry of 20 values (a run)
    a.send(spread, ([narrow, narrow, roomy[1]], 12, priority))  # runs of 2 into a mailbox of 3
    a.send(spread, ([roomy[2]], 1, "normal"))  # after those, on the same link
    assert a.call(roomy[0], ("wait", 30))[10:] == list(range(20))
    assert a.call(roomy[2], ("wait", 11))[-1] == 0
    assert a.call(narrow, "messages") == [0, 1, 3]
    assert a.call(roomy[1], ("wait", 14))[10:] == [2, 5, 8, 11]


def test_a_sender_that_turns_on_important_delivery_is_acknowledged_from_its_next_send(cluster):
    a, b = cluster.cluster(2)
    gone = b.spawn(Collector)
    b.kill(gone)
    a.network().get_node(b.name)  # up before the first send: the sends below take the hot path
    cluster.run_until(lambda: gone not in b.process_list() and b.name in a.network().nodes())

    class Switch(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            if message == "important":
                self.important_delivery = True
            else:
                self.send(gone, message)

    pid = a.spawn(Switch)
    for message in ("plain", "plain again", "important", "lost"):  # the plain ones vanish unsaid
        a.send(pid, message)
    cluster.run_until(lambda: any("was not delivered" in t for t in a.captured.texts()))
    said = [t for t in a.captured.texts() if "was not delivered" in t]
    assert len(said) == 1


def test_a_sender_that_turns_on_compression_compresses_from_its_next_send(cluster):
    a, b = cluster.cluster(2)
    collector = b.spawn(Collector)
    big = "abc" * 20_000

    class Switch(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            if message == "compress":
                self.compression = CompressionOptions(enable=True)
            else:
                self.send(collector, big)  # to the PID: the hot path, once the connection is up

    a.network().get_node(b.name)
    cluster.run_until(lambda: b.name in a.network().nodes())
    pid = a.spawn(Switch)
    a.send(pid, "go")
    a.send(pid, "go")
    assert b.call(collector, ("wait", 2)) == [big, big]
    before = a.network().info()["peers"][str.__str__(b.name)]["bytes_out"]
    a.send(pid, "compress")
    a.send(pid, "go")
    assert b.call(collector, ("wait", 3)) == [big, big, big]
    sent = a.network().info()["peers"][str.__str__(b.name)]["bytes_out"] - before
    assert sent < len(big) // 10


def _acceptor(cluster: Cluster, port: int, **options: Any) -> Any:
    from ergo import AcceptorOptions

    return AcceptorOptions(port=port if cluster.name == "sim" else 0, **options)


def test_an_acceptor_tells_its_peers_its_own_limit_and_flags(cluster):
    """b listens twice: peers of its first acceptor may send at most 1000 bytes and may not
    spawn; peers of its second get the network's own limit and flags."""
    from ergo import NetworkFlags, NotAllowed, TooLarge

    a = cluster.start(1)
    strict = NetworkFlags.ENABLE | NetworkFlags.IMPORTANT_DELIVERY
    b = cluster.start(2, acceptors=(_acceptor(cluster, 11144, max_message_size=1000, flags=strict),
                                    _acceptor(cluster, 11200)))
    c = cluster.start(3)
    first, second = (lst.address for lst in b.network()._listeners)
    name = str.__str__(b.name)
    a.network().add_route(f"^{name}$", NetworkRoute(*first))
    c.network().add_route(f"^{name}$", NetworkRoute(*second))
    b.network().enable_spawn("collector", Collector)
    collector = b.spawn_register("c", Collector)

    a.send(collector, "small")
    assert b.call(collector, ("wait", 1)) == ["small"]
    with pytest.raises(TooLarge):
        a.send(collector, "x" * 2000)
    with pytest.raises(NotAllowed, match="does not offer remote spawn"):
        a.wait_for(a.wait_for(a.network().get_node(b.name)).spawn("collector"))

    c.send(collector, "x" * 2000)  # the second acceptor's limit is the network's (1 MiB)
    assert len(b.call(collector, ("wait", 2))[1]) == 2000
    spawned = c.wait_for(c.wait_for(c.network().get_node(b.name)).spawn("collector"))
    assert spawned.node == b.name

    acceptors = b.network().info()["acceptors"]
    assert [x["max_message_size"] for x in acceptors] == [1000, 1024 * 1024]
    assert acceptors[0]["flags"] == strict and NetworkFlags.REMOTE_SPAWN in acceptors[1]["flags"]
    peers = b.network().info()["peers"]
    assert peers[str.__str__(a.name)]["offered"] == strict
    assert NetworkFlags.REMOTE_SPAWN in peers[str.__str__(c.name)]["offered"]


def test_an_important_send_to_a_node_without_important_delivery_is_unsupported(cluster):
    from ergo import NetworkFlags, Unsupported

    a = cluster.start(1)
    b = cluster.start(2, flags=NetworkFlags.ENABLE | NetworkFlags.REMOTE_SPAWN)
    cluster.route_all()
    collector = b.spawn_register("c", Collector)
    sender = a.spawn(Important)
    a.send(collector, "plain")  # connects; plain sends are not concerned
    assert b.call(collector, ("wait", 1)) == ["plain"]
    assert a.call(sender, ("important", collector, "hello")) == Unsupported.__name__
    assert a.network().info()["peers"][str.__str__(b.name)]["flags"] == NetworkFlags.ENABLE | NetworkFlags.REMOTE_SPAWN


def test_a_spawn_request_a_node_does_not_offer_is_answered_not_allowed():
    """A peer that asks anyway (here: a's view of b's flags forged) is refused by b itself."""
    from network_support import SimCluster

    from ergo import NetworkFlags, NotAllowed

    cluster = SimCluster()
    try:
        a = cluster.start(1)
        b = cluster.start(2, flags=NetworkFlags.ENABLE)
        cluster.route_all()
        b.network().enable_spawn("collector", Collector)
        remote = a.wait_for(a.network().get_node(b.name))
        conn = a.network()._connections[b.name.value]
        conn.peer = dataclasses.replace(conn.peer, flags=int(NetworkFlags.ENABLE | NetworkFlags.REMOTE_SPAWN))
        with pytest.raises(NotAllowed, match="does not offer"):
            a.wait_for(remote.spawn("collector"))
    finally:
        cluster.close()


def test_a_remote_application_start_to_a_node_that_does_not_offer_it_is_not_allowed(cluster):
    from ergo import NetworkFlags, NotAllowed

    a = cluster.start(1)
    b = cluster.start(2, flags=NetworkFlags.ENABLE | NetworkFlags.REMOTE_SPAWN)
    cluster.route_all()
    b.network().enable_application_start("app")  # enabled, but the node offers no application start at all
    remote = a.wait_for(a.network().get_node(b.name))
    with pytest.raises(NotAllowed, match="does not offer remote application start"):
        a.wait_for(remote.application_start("app"))


@pytest.mark.parametrize("registrar", [True, False])
@pytest.mark.parametrize("name", ["noat", "a@", "@host2", "x\ny@host2", "a@b@host2"])
def test_a_call_or_send_to_a_process_of_no_node_name_is_incorrect_at_once_and_dials_nothing(registrar, name):
    """A ProcessID (or Alias, PID) whose node is no node name (``name@host``) is the
    caller's mistake, known at once: a send and a call raise ``Incorrect`` saying what is
    wrong with it, every time, and nothing is dialed for it (no connection waits, so a
    call after a send does not wait out ``connect_timeout`` for a dial that never was,
    and no "cannot connect" line), with a registrar or with a static route matching it."""
    s = sim.Sim(1)
    lines = io.StringIO()
    network = NetworkOptions(cookie="c") if registrar else NetworkOptions(cookie="c", registrar_port=None)
    a = s.start_node("a@host1", NodeOptions(network=network, log=LogOptions(output=lines)))
    if not registrar:
        a.network().add_route(".*", NetworkRoute("host2", 11144))
    target = ProcessID("counter", name)
    for _ in range(2):
        with pytest.raises(Incorrect, match="node name"):
            a.send(target, "hi")
        with pytest.raises(Incorrect, match="node name"):
            a.call(target, "hi", timeout=30)
    assert s.now == 0
    assert a.network()._pending == {} and a.network().nodes() == []
    s.run_for(10)
    assert "cannot connect" not in lines.getvalue()
    with pytest.raises(Incorrect, match="node name"):
        a.network().get_node(name)


@pytest.mark.parametrize("nodes", [5, 1.5, True, object(), "n2@host2", b"n2@host2", ["n2@host2", 7], ["nohost"]])
def test_enabling_for_nodes_that_are_no_collection_of_node_names_is_incorrect_saying_so(nodes):
    """``nodes`` is None or a collection of node names: anything else (a number, a single
    name given bare, which would be taken letter by letter, a member that is no node name)
    is ``Incorrect`` saying so, and nothing is enabled."""
    net = _lone_node().network()
    with pytest.raises(Incorrect, match=r"nodes|node name"):
        net.enable_spawn("counter", Collector, nodes)
    with pytest.raises(Incorrect, match=r"nodes|node name"):
        net.enable_application_start("app", nodes)
    assert net.info()["spawn"] == [] and net.info()["application_start"] == []
    net.enable_spawn("counter", Collector, ("n2@host2", ergo.Atom("n3@host3")))  # any iterable of names
    net.enable_application_start("app", {"n2@host2"})
    assert net.info()["spawn"] == ["counter"] and net.info()["application_start"] == ["app"]


@pytest.mark.parametrize("name", [[], {}, ["x"], None, 5])
def test_disabling_a_name_of_the_wrong_type_is_incorrect_not_a_type_error(name):
    net = _lone_node().network()
    with pytest.raises(Incorrect, match="is a non-empty str"):
        net.disable_spawn(name)
    with pytest.raises(Incorrect, match="is a non-empty str"):
        net.disable_application_start(name)


def _lone_node() -> ergo.Node:
    """A networked node on a simulated host, for what its network() checks before any I/O."""
    return sim.Sim(1).start_node("a@host1", NodeOptions(network=NetworkOptions(cookie="c", registrar_port=None),
                                                        log=LogOptions(default_logger=False)))


def test_a_routes_cookie_is_the_one_its_dials_prove(cluster):
    """``NetworkRoute.cookie`` (Ergo's ``NetworkRoute.Cookie``) overrides the node's own
    cookie for the connections dialed through that route, its pool's links included; a
    wrong one is refused as a wrong node cookie is, the message naming the route's."""
    a = cluster.start(1, cookie="mine")
    b = cluster.start(2)
    b.spawn_register("counter", Counter)
    host, port = b.network()._listeners[0].address
    a.network().add_route("^n2@", NetworkRoute(host, port, cookie="not b's"))
    with pytest.raises(NoConnection, match="NetworkRoute.cookie"):
        a.call(ProcessID("counter", b.name), "incr")
    a.network().remove_route("^n2@")
    a.network().add_route("^n2@", NetworkRoute(host, port))
    with pytest.raises(NoConnection, match="NetworkOptions.cookie"):  # the node's own cookie: not b's either
        a.call(ProcessID("counter", b.name), "incr")
    a.network().remove_route("^n2@")
    a.network().add_route("^n2@", NetworkRoute(host, port, cookie=COOKIE))
    assert a.call(ProcessID("counter", b.name), "incr") == 1
    cluster.run_until(lambda: a.network().info()["peers"][str.__str__(b.name)]["links"] == 3)


@pytest.mark.parametrize("fields", [{"tls": 1}, {"tls": "yes"}, {"cookie": 5}, {"cookie": b"c"}])
def test_a_network_route_of_the_wrong_type_is_incorrect_when_made(fields):
    with pytest.raises(Incorrect, match=f"NetworkRoute.{next(iter(fields))}"):
        NetworkRoute("host2", 11144, **fields)


@pytest.mark.parametrize("name", ["noat", "a@", "x\ny@host2"])
@pytest.mark.parametrize("verb", ["link", "monitor"])
def test_watching_a_node_or_a_process_of_no_node_name_is_incorrect_at_once(verb, name):
    """``link`` / ``monitor`` of ``Atom(name)`` or of a remote target whose node is no node
    name raise ``Incorrect`` in the caller, as a send or call does (a node's down message
    has no reason: it said only that the "node" was down), and nothing is dialed; a real
    name that cannot be reached is still told as a down."""
    s = sim.Sim(1)
    a = s.start_node("a@host1", NodeOptions(network=NetworkOptions(cookie="c", registrar_port=None),
                                            log=LogOptions(default_logger=False)))
    outcomes: list[Any] = []

    class Watcher(Actor):
        def init(self) -> None:
            self.trap_exit = True

        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            try:
                getattr(self, verb)(request)
            except Incorrect as e:
                return str(e)
            return "watching"

        def handle_message(self, from_: Any, message: Any) -> None:
            outcomes.append(message)

    w = a.spawn(Watcher)
    for target in (ergo.Atom(name), ProcessID("counter", name)):
        assert "node name" in a.call(w, target)
    s.run_for(10)
    assert outcomes == [] and a.network()._pending == {}
    assert a.call(w, ergo.Atom("b@host2")) == "watching"  # no route to it: told as a down
    s.run_for(1)
    assert [type(m).__name__ for m in outcomes] == ["MessageExitNode" if verb == "link" else "MessageDownNode"]


def test_the_network_classes_the_docs_name_are_in_ergo():
    """docs/network.md writes ``NetworkRoute(host, port)`` and ``RemoteNode``; a newcomer
    looks for them where NetworkOptions is (``ergo.NetworkRoute`` was an AttributeError)."""
    from ergo.network import NetworkRoute as Route_
    from ergo.network import RemoteNode as Remote_

    assert ergo.NetworkRoute is Route_ and ergo.RemoteNode is Remote_
    assert {"NetworkRoute", "RemoteNode", "AcceptorOptions", "NetworkOptions", "NetworkFlags"} <= set(ergo.__all__)


def _start_alone(cluster: Cluster, opts: NodeOptions) -> ergo.Node:
    """A node named n9 on ``cluster``'s transport, started with ``opts`` as they are."""
    if cluster.name == "sim":
        return cluster.sim.start_node("n9@host9", opts)  # type: ignore[attr-defined]

    async def start() -> ergo.Node:
        return ergo_net.start_node("n9@127.0.0.1", opts, handle_signals=False)

    return cluster.loop.run_until_complete(start())  # type: ignore[attr-defined]


@pytest.mark.parametrize(("field", "value", "said"), [
    ("mode", "on", "NetworkOptions.mode must be enabled, hidden or disabled, not 'on'"),
    ("cookie", 5, "NetworkOptions.cookie must be a str or None, not int"),
    ("heartbeat_interval", 0, "NetworkOptions.heartbeat_interval is a number of seconds > 0, not 0"),
    ("heartbeat_timeout", 0.5, "NetworkOptions.heartbeat_timeout (0.5) must be longer than heartbeat_interval"),
    ("pool_size", 0, "NetworkOptions.pool_size must be an int in 1..255, not 0"),
    ("max_message_size", -5, "NetworkOptions.max_message_size must be an int in 0..2**32-1"),
    ("flags", "all", "NetworkOptions.flags is NetworkFlags"),
    ("acceptors", None, "NetworkOptions.acceptors is a tuple of AcceptorOptions"),
])
def test_network_options_changed_after_they_were_made_are_checked_when_the_node_starts(cluster, field, value, said):
    """``NetworkOptions`` is a dataclass a user may change after making it (as
    ``ProcessOptions``, which spawn checks again).  A field changed to a wrong value was
    taken as it was: a mode of 'on' ran as enabled, a heartbeat interval of 0 ran, and
    others failed deep inside ("NodeInfo: pool_size must be ...", a ValueError of int()).
    The node's start checks them again, with the words of ``NetworkOptions(...)``, before
    anything runs; the name stays free."""
    opts = options(acceptors=(ergo.AcceptorOptions(port=0),))
    assert opts.network is not None
    setattr(opts.network, field, value)
    with pytest.raises(Incorrect) as err:
        _start_alone(cluster, opts)
    assert str(err.value).startswith(said)
    node = _start_alone(cluster, options(acceptors=(ergo.AcceptorOptions(port=0),)))
    cluster.nodes.append(node)  # stopped by the fixture
    assert node.is_alive()


def test_a_remote_node_handle_stands_for_its_connection_and_says_so_once_it_is_down(cluster):
    """A ``RemoteNode`` is one connection, as Ergo's: kept after that connection went down
    and the node was dialed again, it stays the old one (not connected, its counters and
    the creation it reached kept), its requests fail with ``NoConnection`` saying the
    handle is stale and how to get the current one (they said only "the connection to ...
    is down", with the node connected), and its ``disconnect()`` leaves the new connection
    alone.  ``network().node(name)`` gives the new connection's handle, which works."""
    a, b = cluster.cluster(2)
    b.spawn_register("counter", Counter)
    b.network().enable_spawn("counter", Counter)
    old = a.wait_for(a.network().get_node(b.name))
    assert a.call(ProcessID("counter", b.name), "incr") == 1
    name = str.__str__(b.name)
    cluster.run_until(lambda: old.info()["links"] == 3)
    old.disconnect()
    assert a.call(ProcessID("counter", b.name), "incr") == 2  # dialed again: a new connection
    assert a.network().nodes() == [b.name]

    assert not old.is_connected() and old.uptime == 0.0
    assert old.name == b.name and old.creation == b.creation
    info = old.info()
    assert info["state"] == "down" and info["links"] == 0
    assert info["messages_out"] >= 1 and info["bytes_out"] > 0 and info["bytes_in"] > 0  # what it carried
    said = (rf"^this RemoteNode's connection to {name} \(creation {b.creation}\) is down \(the connection "
            rf"to {name} was closed by {str.__str__(a.name)} \(RemoteNode\.disconnect\)\): a RemoteNode stands "
            rf"for one connection; network\(\)\.node\('{name}'\) or "
            rf"get_node\('{name}'\) gives the current one$")
    for request in (old.spawn("counter"), old.spawn_register("c2", "counter"), old.application_start("app")):
        assert request.done()
        with pytest.raises(NoConnection, match=said):
            request.result()
    with pytest.raises(Incorrect):  # a wrong argument is still said first
        old.spawn(None)  # type: ignore[arg-type]
    old.disconnect()  # its connection is gone already: the new one stays
    assert a.network().nodes() == [b.name]

    current = a.network().node(b.name)
    assert current.is_connected() and current.info()["state"] == "up"
    pid = a.wait_for(current.spawn("counter"))
    assert a.call(pid, "incr") == 1

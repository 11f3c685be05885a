"""A node's lifecycle inside asyncio programs and scripts: signals, ``async with``,
``stop_async``, and the node's API from other threads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from network_support import HAVE_UVLOOP, tls_contexts

import net
import sim
from ergo import (
    Actor,
    Incorrect,
    LogOptions,
    NetworkOptions,
    NodeOptions,
    NodeTerminated,
    NoReply,
    NotAllowed,
    ProcessID,
    ProcessUnknown,
    Taken,
)
from ergo.gen.options import AcceptorOptions
from ergo.network import NetworkRoute
from ergo.scheduler import ReadyQueue

ROOT = Path(__file__).resolve().parent.parent
QUIET = NodeOptions(log=LogOptions(default_logger=False))


class Echo(Actor):
    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return ("echo", request)


class StopOn(Actor):
    """Stops the node when it gets the message it waits for; keeps what it got."""

    def init(self, wanted: Any, got: list) -> None:
        self.wanted, self.got = wanted, got

    def handle_message(self, from_: Any, message: Any) -> None:
        self.got.append(message)
        if message == self.wanted:
            self.node.stop()


@pytest.fixture
def own_handlers():
    """SIGINT/SIGTERM handlers of the test's own, put back afterwards whatever happens."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    seen: list[int] = []

    def mine(signum: int, frame: Any) -> None:
        seen.append(signum)

    for sig in saved:
        signal.signal(sig, mine)
    yield mine, seen
    for sig, h in saved.items():
        signal.signal(sig, h)


def _close(node: Any) -> None:
    if node.is_alive():
        node.stop_force()
    node.scheduler.loop.close()
    asyncio.set_event_loop(None)


# -- signals ---------------------------------------------------------------------------------


def test_a_node_inside_a_running_loop_leaves_signals_to_the_application(own_handlers):
    mine, _ = own_handlers

    async def main() -> None:
        async with net.start_node("web@localhost", QUIET) as node:
            assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGINT) is mine
            assert node.is_alive()
        assert not node.is_alive()

    asyncio.run(main())


def test_the_previous_handlers_come_back_when_the_node_stops(own_handlers):
    mine, _ = own_handlers
    node = net.start_node("script@localhost", QUIET)  # a plain script: the node takes the signals
    try:
        assert signal.getsignal(signal.SIGTERM) is not mine
        node.stop()
        assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGINT) is mine
    finally:
        _close(node)


def test_a_signal_before_wait_is_not_lost_and_a_second_one_forces_the_stop(own_handlers):
    node = net.start_node("script@localhost", QUIET)
    try:
        got: list = []

        class Stubborn(Actor):
            """Suspended in a long call, so a graceful stop waits for it."""

            async def handle_message(self, from_: Any, message: Any) -> None:
                got.append("calling")
                await self.call(blackhole, "never answered", 3600)

        class Blackhole(Actor):
            def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
                return NoReply  # replies later, i.e. never

        blackhole = node.spawn(Blackhole)
        node.send(node.spawn(Stubborn), "go")
        os.kill(os.getpid(), signal.SIGTERM)  # before the loop runs at all
        loop = node.scheduler.loop
        loop.call_soon(os.kill, os.getpid(), signal.SIGINT)  # the impatient second Ctrl-C
        assert node.wait(timeout=60) is True
        assert got == ["calling"] and not node.is_alive()
    finally:
        _close(node)


def _networked() -> NodeOptions:
    # a port of the OS's choosing and no registrar: nothing fixed that another run could hold
    return NodeOptions(log=LogOptions(default_logger=False),
                       network=NetworkOptions(cookie="c", registrar_port=None, acceptors=(AcceptorOptions(port=0),)))


def test_the_nodes_of_a_plain_script_share_its_loop_and_serve_each_other(own_handlers):
    # docs/network.md's first example: two nodes started one after the other in a script,
    # then a blocking call from one to the other.  Each on a loop of its own, the callee's
    # loop never ran while the caller blocked, and the call timed out.
    a = net.start_node("a@127.0.0.1", _networked())
    b = net.start_node("b@127.0.0.1", _networked())
    try:
        assert a.scheduler.loop is b.scheduler.loop
        port = b.network().info()["acceptors"][0]["port"]
        a.network().add_route("^b@127.0.0.1$", NetworkRoute("127.0.0.1", port))
        b.spawn_register("echo", Echo)
        assert a.call(ProcessID("echo", "b@127.0.0.1"), 1, timeout=10) == ("echo", 1)
        assert b.call(a.spawn(Echo), 2, timeout=10) == ("echo", 2)  # the connection serves both ways
    finally:
        for node in (a, b):
            if node.is_alive():
                node.stop_force()
        _close(a)
    # once the script's loop is closed, the next node makes a new one
    c = net.start_node("c@localhost", QUIET)
    try:
        assert c.scheduler.loop is not a.scheduler.loop
    finally:
        _close(c)


def test_one_signal_stops_every_node_of_a_script_and_the_handlers_come_back_after_the_last(own_handlers):
    mine, _ = own_handlers
    a = net.start_node("a@localhost", QUIET)
    b = net.start_node("b@localhost", QUIET)
    try:
        a.stop()
        assert signal.getsignal(signal.SIGTERM) is not mine  # b still takes them
        c = net.start_node("c@localhost", QUIET)
        os.kill(os.getpid(), signal.SIGTERM)
        assert b.wait(timeout=60) is True and c.wait(timeout=60) is True
        assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGINT) is mine
    finally:
        for node in (a, b, c):
            if node.is_alive():
                node.stop_force()
        _close(a)


def test_handle_signals_true_off_the_main_thread_is_refused():
    errors: list = []

    def other() -> None:
        try:
            net.start_node("t@localhost", QUIET, handle_signals=True)
        except NotAllowed as e:
            errors.append(e)
        finally:
            asyncio.set_event_loop(None)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert len(errors) == 1 and "main thread" in str(errors[0])


SCRIPT = textwrap.dedent(
    """
    import os, signal
    import net
    from ergo import Actor

    class Worker(Actor):
        def terminate(self, reason):
            print("worker terminated:", reason, flush=True)

    node = net.start_node("script@localhost")
    node.spawn(Worker)
    os.kill(os.getpid(), signal.SIGTERM)   # arrives before wait() runs the loop
    print("wait returned", node.wait(timeout=60), flush=True)
    """
)


def test_a_script_that_gets_a_signal_before_wait_stops_gracefully(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "got SIGTERM: stopping gracefully" in proc.stdout
    assert "worker terminated: <" in proc.stdout and ">: shutdown" in proc.stdout  # ExitSignal(parent, shutdown)
    assert "wait returned True" in proc.stdout


SLEEPER = textwrap.dedent(
    """
    import os, signal, threading, time
    import net
    from ergo import LogOptions, NodeOptions

    node = net.start_node("sleeper@localhost", NodeOptions(log=LogOptions(default_logger=False)))

    def later():
        time.sleep(0.3)  # (the main thread is asleep in select() by then; if not, it is handled anyway)
        os.kill(os.getpid(), signal.SIGTERM)  # taken by this thread: Python's C-level handler runs here

    threading.Thread(target=later, daemon=True).start()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # the main thread's sleep is never cut short
    print("wait returned", node.wait(), flush=True)
    """
)


def test_a_signal_that_comes_while_the_loop_sleeps_wakes_it(tmp_path):
    """The node's Python handler runs on the main thread between bytecodes; a signal that
    came while the loop slept in select() (here: taken by another thread, as one that comes
    just before the select() call is) left the loop asleep, and a script whose node had no
    timer ignored it for good.  The C-level handler's wakeup fd wakes the loop."""
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    try:
        proc = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True,
                              env={"PYTHONPATH": str(ROOT)}, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the node never handled the signal: its loop slept on")
    assert proc.returncode == 0, proc.stderr
    assert "wait returned True" in proc.stdout


# -- async with, stop_async ------------------------------------------------------------------


def test_async_with_and_stop_async():
    async def main() -> list:
        stopped = []
        async with net.start_node("a@localhost", QUIET) as node:
            pid = node.spawn(Echo)
            assert await node.call_async(pid, 1) == ("echo", 1)
        stopped.append(node.is_alive())
        other = net.start_node("b@localhost", QUIET)
        await other.stop_async()
        stopped.append(other.is_alive())
        return stopped

    assert asyncio.run(main()) == [False, False]


def test_with_on_a_simulated_node_stops_it():
    s = sim.Sim(seed=1)
    with s.start_node("w@localhost", QUIET) as node:
        assert node.call(node.spawn(Echo), 2) == ("echo", 2)
    assert not node.is_alive()


# -- threads ---------------------------------------------------------------------------------


def _in_thread(fn: Any) -> threading.Thread:
    t = threading.Thread(target=fn)
    t.start()
    return t


def test_send_threadsafe_wakes_a_sleeping_loop():
    node = net.start_node("th@localhost", QUIET, handle_signals=False)
    try:
        got: list = []
        pid = node.spawn(StopOn, "from a thread", got)
        t = _in_thread(lambda: node.send_threadsafe(pid, "from a thread"))
        assert node.wait(timeout=60) is True  # the loop sleeps in select() until the thread's send
        t.join()
        assert got == ["from a thread"]
    finally:
        _close(node)


def test_call_threadsafe_returns_a_concurrent_future():
    node = net.start_node("th@localhost", QUIET, handle_signals=False)
    try:
        echo = node.spawn(Echo)
        got: list = []
        stopper = node.spawn(StopOn, "done", got)
        results: list = []

        def worker() -> None:
            fut = node.call_threadsafe(echo, "hi")
            assert isinstance(fut, concurrent.futures.Future)
            results.append(fut.result(timeout=60))
            bad = node.call_threadsafe(node.pid.__class__(node.name, 999_999, node.creation), "x")
            results.append(type(bad.exception(timeout=60)))
            node.send_threadsafe(stopper, "done")

        t = _in_thread(worker)
        assert node.wait(timeout=60) is True
        t.join()
        assert results == [("echo", "hi"), ProcessUnknown]
    finally:
        _close(node)


class Holds(Actor):
    """Answers a call only when told to ("reply"), after noting what the node still holds of
    calls made from outside any process and what this process owes; then stops the node."""

    def init(self, asked: threading.Event, seen: list) -> None:
        self.asked, self.seen, self.owed = asked, seen, None

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        self.owed = (from_, ref)
        self.asked.set()
        return NoReply

    def handle_message(self, from_: Any, message: Any) -> None:
        node = self.node
        self.seen.append((len(node._core_pending), len(node._timeouts), len(self._calls_in or ())))
        self.send_response(*self.owed, "too late")
        self.node.stop()


def test_cancelling_a_call_threadsafe_future_ends_the_call_on_the_node():
    # cancel() on the concurrent future returned False once the call had started (the
    # future was marked running) and the call held its entry, its deadline and its
    # target's debt until its timeout, its late reply then set on a future nobody wanted
    node = net.start_node("th@localhost", QUIET, handle_signals=False)
    try:
        asked = threading.Event()
        seen: list = []
        holder = node.spawn(Holds, asked, seen)
        outcome: list = []

        def worker() -> None:
            fut = node.call_threadsafe(holder, "hold", timeout=3600)
            assert asked.wait(60)
            outcome.append(fut.cancel())
            outcome.append(fut.cancelled())
            node.send_threadsafe(holder, "reply")  # queued after the cancel: the reply comes late

        t = _in_thread(worker)
        assert node.wait(timeout=60) is True
        t.join()
        assert outcome == [True, True]
        assert seen == [(0, 0, 0)]  # the call had ended: nothing held, nothing owed
    finally:
        _close(node)


@pytest.mark.parametrize("debug", [False, True])
def test_the_wrong_thread_gets_a_clear_error_and_the_node_goes_on(debug):
    node = net.start_node("th@localhost", QUIET, handle_signals=False)
    node.scheduler.loop.set_debug(debug)
    try:
        got: list = []
        pid = node.spawn(StopOn, "last", got)
        errors: list = []

        def worker() -> None:
            for fn in (lambda: node.send(pid, "wrong"), lambda: node.spawn(Echo), lambda: node.kill(pid),
                       lambda: node.call(pid, 1)):
                try:
                    fn()
                except NotAllowed as e:
                    errors.append(str(e))
            node.send_threadsafe(pid, "last")

        t = _in_thread(worker)
        assert node.wait(timeout=60) is True
        t.join()
        assert len(errors) == 4 and all("send_threadsafe" in e for e in errors)
        assert got == ["last"]
    finally:
        _close(node)


def test_a_simulation_refuses_other_threads():
    s = sim.Sim(seed=1)
    node = s.start_node("s@localhost", QUIET)
    got: list = []
    pid = node.spawn(StopOn, "never", got)
    node.send_threadsafe(pid, "same thread")  # from the simulation's own thread: fine
    s.run()
    errors: list = []

    def worker() -> None:
        for fn in (lambda: node.send_threadsafe(pid, "x"), lambda: node.send(pid, "x")):
            try:
                fn()
            except NotAllowed as e:
                errors.append(e)

    _in_thread(worker).join()
    assert got == ["same thread"] and len(errors) == 2
    node.stop()


def test_a_ready_queue_whose_arming_failed_arms_again_on_the_next_push():
    ran: list = []
    armed: list = []

    def arm() -> None:
        armed.append(1)
        if len(armed) == 1:
            raise RuntimeError("the backend refused")

    q = ReadyQueue(arm)
    with pytest.raises(RuntimeError):
        q.push(ran.append, ("first",))
    q.push(ran.append, ("second",))  # arms again: the queue is not wedged
    q.drain()
    assert ran == ["first", "second"] and len(armed) == 2


def test_run_io_runs_what_an_io_callback_queued_at_once_in_order_without_asking_for_a_drain():
    ran: list = []
    armed: list = []
    q = ReadyQueue(lambda: armed.append(1))

    def read() -> None:  # bytes that woke two processes
        q.push(ran.append, ("a",))
        q.push(lambda: (ran.append("b"), q.push(ran.append, ("c",))), ())

    q.run_io(read)
    assert ran == ["a", "b", "c"] and armed == [] and len(q) == 0
    q.push(ran.append, ("d",))  # the queue asks for a drain again when work comes later
    assert armed == [1]


def test_run_io_inside_a_drain_leaves_the_queued_calls_to_that_drain():
    ran: list = []
    q = ReadyQueue(lambda: None)
    q.push(lambda: q.run_io(q.push, ran.append, ("queued in io",)), ())
    q.push(ran.append, ("queued before",))
    q.drain()  # nothing runs inside another: the io's call waits its turn
    assert ran == ["queued before", "queued in io"]


def test_run_io_after_a_drain_was_asked_for_keeps_it_and_leaves_work_past_the_budget_to_it():
    ran: list = []
    armed: list = []
    q = ReadyQueue(lambda: armed.append(1))
    q.push(ran.append, (0,))  # a drain is asked for
    left = [ReadyQueue.BUDGET + 10]

    def again(queue: ReadyQueue) -> None:  # work that keeps queueing more
        ran.append(len(ran))
        left[0] -= 1
        if left[0]:
            queue.push(again, (queue,))

    q.run_io(q.push, again, (q,))
    assert armed == [1] and len(q) == 1 and ran == list(range(ReadyQueue.BUDGET))
    q2 = ReadyQueue(lambda: armed.append(2))
    left[0] = ReadyQueue.BUDGET + 10
    q2.run_io(q2.push, again, (q2,))  # no drain was asked for: the rest needs one
    assert armed == [1, 2] and len(q2) == 1


RUN_AT = textwrap.dedent(
    """
    import sys, time
    time.time = lambda: float(sys.argv[1])  # the wall clock this run starts at
    import net
    from ergo import LogOptions, NodeOptions

    node = net.start_node("again@localhost", NodeOptions(log=LogOptions(default_logger=False)),
                          handle_signals=False)
    print(node.creation, flush=True)
    node.stop()
    """
)


def test_a_node_started_again_in_a_new_process_within_the_same_second_has_a_later_creation(tmp_path):
    """A node killed and restarted at once (by a supervisor) runs in a new OS process, which
    knows nothing of the earlier run: the creation alone must tell their PIDs apart, so two
    runs a fraction of a second apart get different creations, the later one greater."""
    script = tmp_path / "run_at.py"
    script.write_text(RUN_AT)

    def creation_at(wall: float) -> int:
        proc = subprocess.run([sys.executable, str(script), repr(wall)], cwd=ROOT, capture_output=True, text=True,
                              env={"PYTHONPATH": str(ROOT)}, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout.strip())

    first, second = creation_at(1_800_000_000.25), creation_at(1_800_000_000.75)
    assert second > first


def test_a_node_started_again_in_one_process_has_a_later_creation_even_in_the_same_millisecond(monkeypatch):
    monkeypatch.setattr("time.time", lambda: 1_800_000_000.5)  # a frozen wall clock
    loop = asyncio.new_event_loop()
    try:
        creations = []
        for _ in range(3):
            async def run() -> int:
                node = net.start_node("again@localhost", NodeOptions(log=LogOptions(default_logger=False)))
                await node.stop_async()
                return node.creation

            creations.append(loop.run_until_complete(run()))
        assert creations[0] < creations[1] < creations[2]
    finally:
        loop.close()


def test_async_with_enters_once_the_node_is_registered_so_a_peer_finds_it_at_once():
    """Inside a running loop ``start_node`` cannot wait for the registrar; ``async with``
    can, so the block's first call finds the other node through the registrar instead of
    ``NoRoute`` (the peer not registered yet); a name taken fails the ``async with``."""
    from test_network_processes import free_port

    host = "127.0.0.71"  # a loopback host of this test's own: its registrar, its ports
    options = NodeOptions(log=LogOptions(default_logger=False),
                          network=NetworkOptions(cookie="c", registrar_port=free_port(host)))

    class Counter(Actor):
        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            return "counted"

    async def main() -> tuple[Any, str, bool]:
        async with net.start_node(f"a@{host}", options) as a, net.start_node(f"b@{host}", options) as b:
            b.spawn_register("counter", Counter)
            answer = await a.call_async(ProcessID("counter", f"b@{host}"), "incr")
            again = net.start_node(f"b@{host}", options)
            try:
                async with again:
                    refused = "entered"
            except Taken as e:
                refused = str(e)
            return answer, refused, again.is_alive()

    answer, refused, alive = asyncio.run(main())
    assert answer == "counted"
    assert refused == f"b@{host} is registered already (registrar on {host}:{options.network.registrar_port})"
    assert not alive  # the refused node is stopped


def test_a_blocking_call_on_the_running_loop_says_what_to_await_instead():
    """Inside an asyncio program the blocking forms cannot run the loop; each says what to
    await there (``wait_for`` has no ``_async`` twin: the future itself is awaited)."""

    class Echo(Actor):
        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            return request

    async def main() -> list[str]:
        async with net.start_node("blocking@localhost", NodeOptions(log=LogOptions(default_logger=False))) as node:
            pid = node.spawn(Echo)
            from ergo import Future

            pending: Future[int] = Future()
            said = []
            for block in (lambda: node.wait_for(pending), lambda: node.call(pid, 1), lambda: node.wait()):
                try:
                    block()
                except NotAllowed as e:
                    said.append(str(e))
            pending.set_result(1)
            assert await pending == 1  # as the message says
            return said

    assert asyncio.run(main()) == [
        "node.wait_for() cannot block: the asyncio loop is running here: "
        "await the future itself instead (a runtime Future is awaitable)",
        "node.call() cannot block: the asyncio loop is running here: await node.call_async(...) instead",
        "node.wait() cannot block: the asyncio loop is running here: await node.wait_async() instead",
    ]


def test_a_node_whose_loop_ended_without_stop_reads_as_stopped_and_says_why():
    # asyncio.run returned with the node still running: is_alive() said True, and every
    # call raised asyncio's "Event loop is closed" (a RuntimeError naming no node), spawn
    # made a process that could never run, and stop() raised half way, never stopping
    holder: dict = {}

    async def main() -> None:
        node = holder["node"] = net.start_node("ended@localhost", QUIET, handle_signals=False)
        holder["pid"] = node.spawn(Echo)

    asyncio.run(main())
    node, pid = holder["node"], holder["pid"]
    with pytest.raises(NodeTerminated, match="node ended@localhost: its asyncio event loop is closed"):
        node.send(pid, "x")  # before anything asked whether it is alive
    assert not node.is_alive()
    calls = {
        "send": lambda: node.send(pid, "x"),
        "spawn": lambda: node.spawn(Echo),
        "call": lambda: node.call(pid, "x", timeout=1),
        "send_threadsafe": lambda: node.send_threadsafe(pid, "x"),
        "call_threadsafe": lambda: node.call_threadsafe(pid, "x"),
    }
    for what, call in calls.items():
        with pytest.raises(NodeTerminated, match="node ended@localhost") as e:
            call()
        assert "loop" in str(e.value) and "without node.stop()" in str(e.value), (what, e.value)
    assert node.wait(timeout=1) is True  # at once: nothing can run to stop it further
    node.stop()
    node.stop_force()
    assert not node.is_alive()


def test_networked_nodes_whose_loop_ended_close_their_connections_when_found_stopped():
    # found stopped (is_alive), a node stopped its network without the loop: closing a
    # stream raised asyncio's "Event loop is closed" half way (its socket left open), and
    # telling a monitor of the peer or a caller in flight raised too, cutting the rest short
    from ergo.gen.options import AcceptorOptions
    from ergo.network import NetworkRoute

    def options() -> NodeOptions:
        return NodeOptions(log=LogOptions(default_logger=False),
                           network=NetworkOptions(cookie="c", registrar_port=None,
                                                  acceptors=(AcceptorOptions(host="127.0.0.1", port=0),)))

    class Watches(Actor):
        def init(self, name: Any) -> None:
            self.monitor(name)

    class Holds(Actor):
        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            return NoReply

    holder: dict = {}

    async def main() -> None:
        a = net.start_node("a@127.0.0.1", options(), handle_signals=False)
        b = net.start_node("b@127.0.0.1", options(), handle_signals=False)
        holder["nodes"] = (a, b)
        a.network().add_route("^b@127.0.0.1$", NetworkRoute(*b.network()._listeners[0].address))
        target = b.spawn(Holds)
        a.spawn(Watches, b.name)
        b.spawn(Watches, a.name)
        holder["call"] = asyncio.ensure_future(a.call_async(target, "hold", timeout=100))
        await a.network().get_node(b.name)
        await net.settle(a, b)

    asyncio.run(main())
    nodes = holder["nodes"]
    streams = [link.stream for n in nodes for conn in n.network()._connections.values() for link in conn.links]
    assert streams
    assert [n.is_alive() for n in nodes] == [False, False]
    for stream in streams:
        sock = stream._t.get_extra_info("socket")
        assert sock is None or sock.fileno() == -1, stream
    assert all(not n.network()._connections for n in nodes)


class _Datagrams:
    def datagram_received(self, data: bytes, addr: Any) -> None:
        pass


def _one_link_options(server_ctx: Any, client_ctx: Any) -> NodeOptions:
    """A node on 127.0.0.1 (TLS if given contexts) with one link per connection: when the
    dial's handshake is done, no other connect is in flight (asyncio itself leaks a socket
    accepted in the loop's last turn)."""
    return NodeOptions(log=LogOptions(default_logger=False),
                       network=NetworkOptions(cookie="c", registrar_port=None, pool_size=1, ssl=client_ctx,
                                              acceptors=(AcceptorOptions(host="127.0.0.1", port=0, ssl=server_ctx),)))


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.parametrize("kind", ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    not HAVE_UVLOOP, reason="uvloop is not installed"))])
def test_the_transports_of_a_loop_that_ended_are_closed_not_collected_unclosed(kind, tls):
    # found stopped, a node closed the sockets of its streams, but asyncio's transports
    # still held them: each warned "unclosed transport" (a ResourceWarning) when collected
    import gc
    import warnings

    server_ctx, client_ctx = tls_contexts() if tls else (None, None)

    def options() -> NodeOptions:
        return _one_link_options(server_ctx, client_ctx)

    holder: dict = {}

    async def main() -> None:
        a = net.start_node("a@127.0.0.1", options(), handle_signals=False)
        b = net.start_node("b@127.0.0.1", options(), handle_signals=False)
        holder["nodes"] = (a, b)
        a.network().add_route("^b@127.0.0.1$", NetworkRoute(*b.network()._listeners[0].address, tls=tls))
        holder["endpoint"] = a.network().transport.datagram("127.0.0.1", 0, _Datagrams())  # as a registrar's
        await a.network().get_node(b.name)
        await net.settle(a, b)

    gc.collect()  # what earlier tests left (asyncio's own leaks among it) is not this test's
    with warnings.catch_warnings(record=True) as at_close:
        warnings.simplefilter("always", ResourceWarning)
        if kind == "uvloop":
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(main())
        else:
            asyncio.run(main())
    # (uvloop closes the handles still open when its loop closes, warning about each: the
    # node cannot know the loop is closing, and finds it closed only afterwards)
    assert kind == "uvloop" or [str(w.message) for w in at_close] == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        nodes = holder.pop("nodes")
        assert [n.is_alive() for n in nodes] == [False, False]  # found stopped: their streams closed
        assert nodes[0].network()._connections == {}
        holder.pop("endpoint").close()  # as a registrar's is, by its node found stopped
        del nodes
        gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == []


@pytest.mark.parametrize("where", ["local", "remote"])
@pytest.mark.parametrize("kind", ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    not HAVE_UVLOOP, reason="uvloop is not installed"))])
def test_a_send_after_the_loop_closed_with_work_queued_raises_instead_of_queueing_silently(kind, where):
    # a loop closed while a drain of the node's was asked for (work queued while it did
    # not run, or in its last turns) left the ready queue armed for ever: the next sends
    # were queued, a remote one behind a flush asked for, and never run nor reported
    if kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()

    def options() -> NodeOptions:
        return NodeOptions(log=LogOptions(default_logger=False),
                           network=NetworkOptions(cookie="c", registrar_port=None, pool_size=1,
                                                  acceptors=(AcceptorOptions(host="127.0.0.1", port=0),)))

    async def setup() -> tuple[Any, ...]:
        a = net.start_node("a@127.0.0.1", options(), handle_signals=False)
        b = net.start_node("b@127.0.0.1", options(), handle_signals=False)
        a.network().add_route("^b@127.0.0.1$", NetworkRoute(*b.network()._listeners[0].address))
        target = b.spawn(Echo) if where == "remote" else a.spawn(Echo)
        await a.network().get_node(b.name)
        await net.settle(a, b)
        return a, b, target

    a, b, target = loop.run_until_complete(setup())
    a.send(target, "queued")  # the loop does not run now: a drain is asked for
    loop.close()
    with pytest.raises(NodeTerminated, match="node a@127.0.0.1 is stopped: its event loop ended without"):
        a.send(target, "after")
    assert not a.is_alive() and not b.is_alive()


@pytest.mark.parametrize("kind", ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    not HAVE_UVLOOP, reason="uvloop is not installed"))])
def test_a_node_found_stopped_with_a_tls_handshake_pending_at_its_acceptor_closes_everything(kind):
    # closing the TLS listener dropped the socket still in its TLS handshake with asyncio's
    # abort and cancel, callbacks of the closed loop: they raised, and the rest of the
    # node's stop (its connections' sockets) was skipped
    import socket

    server_ctx, client_ctx = tls_contexts()

    def options() -> NodeOptions:
        return _one_link_options(server_ctx, client_ctx)

    if kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()

    async def setup() -> tuple[Any, ...]:
        a = net.start_node("a@127.0.0.1", options(), handle_signals=False)
        b = net.start_node("b@127.0.0.1", options(), handle_signals=False)
        listener = b.network()._listeners[0]
        a.network().add_route("^b@127.0.0.1$", NetworkRoute(*listener.address, tls=True))
        await a.network().get_node(b.name)
        await net.settle(a, b)
        silent = socket.create_connection(listener.address)  # never says hello
        for _ in range(100_000):  # turns of the loop (no sleep): until b accepted it
            if listener._tls_pending:
                break
            await asyncio.sleep(0)
        assert listener._tls_pending
        return a, b, silent

    a, b, silent = loop.run_until_complete(setup())
    try:
        streams = [link.stream for n in (a, b) for conn in n.network()._connections.values() for link in conn.links]
        assert streams
        loop.close()
        assert [n.is_alive() for n in (a, b)] == [False, False]
        assert b.network()._connections == {} and b.network()._listeners == []
        for stream in streams:
            sock = stream._t.get_extra_info("socket")
            assert sock is None or sock.fileno() == -1, stream
    finally:
        silent.close()


def test_work_queued_after_a_closed_loop_ended_its_scheduler_is_dropped_not_kept():
    # once the node ended with its loop closed (Scheduler.end), what is queued is dropped:
    # the first push found the loop closed and cleared the queue, and every later one was
    # kept for ever (the queue read as armed, so nothing asked the loop again)
    from net.scheduler import AsyncioScheduler

    loop = asyncio.new_event_loop()
    sched = AsyncioScheduler(loop)
    loop.close()
    sched.end()
    ran: list[int] = []
    for i in range(100):
        sched.call_soon(ran.append, i)
        sched.soon(ran.append, (i,))
    assert sched.pending() == 0 and ran == []


@pytest.mark.parametrize("wrong", ["yes", 1, 0])
def test_handle_signals_of_the_wrong_type_is_incorrect_and_starts_nothing(wrong):
    """``handle_signals`` is True, False or None: "yes" (or 0, 1) was taken for its truth
    and the node started; it is refused saying what the argument takes, before anything
    is bound."""
    with pytest.raises(Incorrect, match="handle_signals is True, False or None"):
        net.start_node("signals@127.0.0.1", handle_signals=wrong)

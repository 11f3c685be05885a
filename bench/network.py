"""Network benchmarks: nodes in two (or more) OS processes on loopback, against raw asyncio
baselines run in the same invocation (SPEC §10, issue 7 §5).

Run from the repository root::

    python bench/network.py            # the full run (about a minute on 2 cores)
    python bench/network.py --quick    # a smoke run (small sizes, one repeat)
    python bench/network.py --only send,call --repeat 5

One JSON object per line on stdout, as ``bench/local.py`` prints them (``name, value,
unit, baseline, baseline_name, ratio`` and, where a target is set, ``target, target_on,
target_op, met``), and a readable summary on stderr.  Every figure is the best of
``--repeat`` runs.

The ``floor:`` line of the call is no part of the runtime: a minimal actor call (the same
frames, a process by id, a mailbox, a ref table; no checks, timers or scheduler), timed the
same way, says how much of a call's time is the runtime's own work per call.

The measuring side runs in this process; the other side (a receiver, an echo server,
subscriber nodes) in child processes started with ``multiprocessing`` (spawn), each an
asyncio program of its own.  Every run ends with an answer from the far side (a call's
reply, a count), so a figure counts messages *delivered*, not merely written.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import struct
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

if __package__ in (None, ""):  # run as a script: import the repository's packages
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import msgpack  # noqa: E402

import ergo  # noqa: E402
import net  # noqa: E402
import sim  # noqa: E402
from bench import local  # noqa: E402
from bench.local import result  # noqa: E402
from ergo import LogOptions, NetworkOptions, NodeOptions  # noqa: E402
from ergo.gen.options import AcceptorOptions  # noqa: E402
from ergo.network import NetworkRoute  # noqa: E402
from ergo.wire import enp  # noqa: E402

__all__ = ["BENCHES", "QUICK_SIZES", "SIZES", "main"]

SIZES = {
    "send": 300_000,
    "call": 20_000,
    "fanout_subscribers": 10_000,
    "fanout_events": 20,
    "sim": 200_000,
    "call_async": 40_000,
}
QUICK_SIZES = {
    "send": 30_000,
    "call": 2_000,
    "fanout_subscribers": 10_000,
    "fanout_events": 2,
    "sim": 20_000,
    "call_async": 4_000,
}

#: a sender hands the loop back after this many messages (every sender here does the same)
CHUNK = 1000
COOKIE = "bench-cookie"
HOST = "127.0.0.1"
_LEN = struct.Struct(">I")


def _options(**network: Any) -> NodeOptions:
    network.setdefault("cookie", COOKIE)
    network.setdefault("registrar_port", None)
    network.setdefault("acceptors", (AcceptorOptions(port=0),))
    return NodeOptions(log=LogOptions(default_logger=False), network=NetworkOptions(**network))


def _start(name: str) -> tuple[ergo.Node, asyncio.AbstractEventLoop, int]:
    """A networked node on a new loop, listening on an ephemeral port of loopback."""
    node = net.start_node(name, _options(), handle_signals=False)
    return node, node.scheduler.loop, node.network()._listeners[0].address[1]


def _route(node: ergo.Node, peer: str, port: int) -> None:
    node.network().add_route(f"^{peer}$", NetworkRoute(HOST, port))


# -- child processes -------------------------------------------------------------------------


class _Child:
    """A child process running ``target(pipe, *args)``; it sends its port (or "ready") first."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipe, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(theirs, *args), daemon=True)
        self.proc.start()
        theirs.close()

    def recv(self, timeout: float = 60.0) -> Any:
        if not self.pipe.poll(timeout):
            raise RuntimeError(f"the child {self.proc.name} did not answer within {timeout} s")
        return self.pipe.recv()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.join(10)
        self.pipe.close()


# -- 1. one-way send ---------------------------------------------------------------------------


class _Sink(ergo.Actor):
    """Counts what it receives; a call with "take" returns the count and starts again from 0."""

    def init(self) -> None:
        self.count = 0

    def handle_message(self, from_: Any, message: Any) -> None:
        self.count += 1

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        if request == "take":  # the count, and this process's CPU seconds so far
            n, self.count = self.count, 0
            return n, time.process_time()
        return self._pid  # "pid": the sender sends to the PID itself


def _ergo_sink_child(pipe: Any) -> None:
    node, _, port = _start("sink@127.0.0.1")
    node.spawn_register("sink", _Sink)
    pipe.send(port)
    node.wait()


class _RemoteSender(ergo.Actor):
    """On ``(n, done)``: sends ``n`` ints to the sink, ``CHUNK`` per handler run, then asks
    the sink how many it received (the call's reply comes after every message was handled)."""

    def init(self, sink: ergo.ProcessID) -> None:
        self.sink = sink
        self.to: Any = None

    def handle_message(self, from_: Any, message: Any) -> Any:
        if type(message) is tuple:
            self.left, self.total, self.done = message
            return self._start()
        send, to = self.send, self.to
        k = min(CHUNK, self.left)
        self.left -= k
        for i in range(k):
            send(to, i)
        if self.left:
            self.send(self._pid, "more")
            return None
        return self._finish()

    async def _start(self) -> None:
        if self.to is None:
            self.to = await self.call(self.sink, "pid")
        self.t0 = time.perf_counter()
        self.send(self._pid, "more")

    async def _finish(self) -> None:
        got, cpu = await self.call(self.to, "take", timeout=120)
        elapsed = time.perf_counter() - self.t0
        if got != self.total:
            raise RuntimeError(f"the sink counted {got} messages of {self.total}")
        self.done((elapsed, cpu))


class _ErgoSend:
    """The sending node, in this process; the sink node in a child."""

    def __init__(self) -> None:
        self.child = _Child(_ergo_sink_child)
        port = self.child.recv()
        self.node, self.loop, _ = _start("source@127.0.0.1")
        _route(self.node, "sink@127.0.0.1", port)
        self.tx = self.node.spawn(_RemoteSender, ergo.ProcessID("sink", "sink@127.0.0.1"))

    def run(self, n: int) -> tuple[float, float, float]:
        done = self.loop.create_future()
        c0 = time.process_time()
        self.node.send(self.tx, (n, n, done.set_result))
        elapsed, their_cpu = self.loop.run_until_complete(asyncio.wait_for(done, 300))
        return _cpu(self, elapsed, time.process_time() - c0, their_cpu)

    def close(self) -> None:
        self.node.stop_force()
        local._close_loop(self.loop)
        self.child.stop()


def _raw_sink_child(pipe: Any, coalesced: bool) -> None:
    """Length-prefixed msgpack frames: count them; an empty frame asks for the count."""
    loop = asyncio.new_event_loop()
    unpackb, unpack_len, size = msgpack.unpackb, _LEN.unpack, _LEN.size

    async def serve_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # as a user writes it: one readexactly for the length, one for the body
        count = 0
        readexactly = reader.readexactly
        try:
            while True:
                (n,) = unpack_len(await readexactly(size))
                if n:
                    unpackb(await readexactly(n))
                    count += 1
                else:
                    writer.write(msgpack.packb([count, time.process_time()]))
                    count = 0
        except asyncio.IncompleteReadError:
            writer.close()

    class Coalesced(asyncio.Protocol):
        # the receiving half of the ceiling: whatever arrived, split into frames in a loop
        def connection_made(self, transport: Any) -> None:
            self.t = transport
            self.buf = bytearray()
            self.count = 0

        def data_received(self, data: bytes) -> None:
            buf = self.buf
            buf += data
            pos, end, count = 0, len(buf), self.count
            view = memoryview(buf)
            unpack_from = _LEN.unpack_from
            while end - pos >= 4:
                (n,) = unpack_from(view, pos)
                if end - pos - 4 < n:
                    break
                pos += 4
                if n:
                    unpackb(view[pos:pos + n])
                    count += 1
                    pos += n
                else:
                    self.t.write(msgpack.packb([count, time.process_time()]))
                    count = 0
            view.release()
            del buf[:pos]
            self.count = count

    async def start() -> Any:
        if coalesced:
            return await loop.create_server(Coalesced, HOST, 0)
        return await asyncio.start_server(serve_stream, HOST, 0)

    _serve_forever(loop, pipe, start())


class _RawSend:
    """The sending half of a raw baseline, in this process."""

    def __init__(self, coalesced: bool) -> None:
        self.coalesced = coalesced
        self.child = _Child(_raw_sink_child, coalesced)
        port = self.child.recv()
        self.loop = local._fresh_loop()
        self.reader, self.writer = self.loop.run_until_complete(asyncio.open_connection(HOST, port))

    def run(self, n: int) -> tuple[float, float, float]:
        c0 = time.process_time()
        elapsed, their_cpu = self.loop.run_until_complete(self._run(n))
        return _cpu(self, elapsed, time.process_time() - c0, their_cpu)

    async def _run(self, n: int) -> tuple[float, float]:
        reader, writer = self.reader, self.writer
        packb, pack_len = msgpack.packb, _LEN.pack
        write, drain = writer.write, writer.drain
        t0 = time.perf_counter()
        sent = 0
        if self.coalesced:
            while sent < n:  # one write per chunk of frames
                k = min(CHUNK, n - sent)
                buf = bytearray()
                for i in range(sent, sent + k):
                    body = packb(i)
                    buf += pack_len(len(body))
                    buf += body
                write(buf)
                sent += k
                await drain()
        else:
            while sent < n:  # one write per message, as a user writes it
                k = min(CHUNK, n - sent)
                for i in range(sent, sent + k):
                    body = packb(i)
                    write(pack_len(len(body)) + body)
                sent += k
                await drain()
        write(pack_len(0))
        unpacker = msgpack.Unpacker()
        while True:
            data = await reader.read(64)
            if not data:
                raise RuntimeError("the raw sink closed the connection")
            unpacker.feed(data)
            for got, cpu in unpacker:
                elapsed = time.perf_counter() - t0
                if got != n:
                    raise RuntimeError(f"the raw sink counted {got} messages of {n}")
                return elapsed, cpu

    def close(self) -> None:
        self.writer.close()
        local._close_loop(self.loop)
        self.child.stop()


def _cpu(runner: Any, elapsed: float, ours: float, theirs: float) -> tuple[float, float, float]:
    """(elapsed, this process's CPU seconds, the far process's) of one run; the far side
    reports its CPU clock, the difference from its previous report is this run's."""
    last = getattr(runner, "their_cpu", None)
    runner.their_cpu = theirs
    return elapsed, ours, theirs - last if last is not None else float("nan")


def _best(make: Callable[[], Any], n: int, repeats: int) -> tuple[float, float, float]:
    """Set up with ``make()``, one warm-up run, the best of ``repeats``: n per second, and
    the CPU microseconds per message of that run on this side and on the far side."""
    runner = make()
    try:
        runner.run(max(n // 10, 100))
        best = (float("inf"), 0.0, 0.0)
        for _ in range(repeats):
            gc.collect()
            best = min(best, runner.run(n))
        elapsed, ours, theirs = best
        return n / elapsed, ours * 1e6 / n, theirs * 1e6 / n
    finally:
        runner.close()


def _with_cpu(line: dict[str, Any], ours: tuple[float, float, float], base: tuple[float, float, float],
              here: str, there: str) -> dict[str, Any]:
    """``line`` with the CPU microseconds per message of both sides, ours and the baseline's
    (the machine may be shared: CPU time says where the time goes when wall time wobbles)."""
    line[f"cpu_us_{here}"], line[f"cpu_us_{there}"] = round(ours[1], 3), round(ours[2], 3)
    line[f"baseline_cpu_us_{here}"], line[f"baseline_cpu_us_{there}"] = round(base[1], 3), round(base[2], 3)
    return line


def bench_send(sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    n = sizes["send"]
    ours = _best(_ErgoSend, n, repeats)
    naive = _best(lambda: _RawSend(False), n, repeats)
    ceiling = _best(lambda: _RawSend(True), n, repeats)
    return [
        _with_cpu(result("send.network.asyncio", ours[0], "msgs/s", naive[0],
                         "raw: length-prefixed msgpack over asyncio streams, one write per message", 1.5),
                  ours, naive, "sender", "receiver"),
        _with_cpu(result("send.network.asyncio.vs_coalesced", ours[0], "msgs/s", ceiling[0],
                         f"raw: length-prefixed msgpack, one write per {CHUNK} frames, frames split in "
                         "data_received", 0.5),
                  ours, ceiling, "sender", "receiver"),
    ]


# -- 2. call round trip ------------------------------------------------------------------------


class _Echo(ergo.Actor):
    """Answers a call with its request; "pid" with its own PID."""

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        if request == "pid":
            return self._pid
        return time.process_time() if request == "cpu" else request


class _RemoteCaller(ergo.Actor):
    """On ``(n, done)``: ``n`` calls to the echo, one after the other, from an async handler."""

    def init(self, echo: ergo.ProcessID) -> None:
        self.echo: Any = echo

    async def handle_message(self, from_: Any, message: Any) -> None:
        n, done = message
        call = self.call
        if type(self.echo) is not ergo.PID:  # calls go to the PID, as a user's usually do
            self.echo = await call(self.echo, "pid")
        to = self.echo
        t0 = time.perf_counter()
        for i in range(n):
            await call(to, i)
        elapsed = time.perf_counter() - t0
        done((elapsed, await call(to, "cpu")))


def _ergo_echo_child(pipe: Any) -> None:
    node, _, port = _start("echo@127.0.0.1")
    node.spawn_register("echo", _Echo)
    pipe.send(port)
    node.wait()


class _ErgoCall:
    def __init__(self) -> None:
        self.child = _Child(_ergo_echo_child)
        port = self.child.recv()
        self.node, self.loop, _ = _start("caller@127.0.0.1")
        _route(self.node, "echo@127.0.0.1", port)
        self.caller = self.node.spawn(_RemoteCaller, ergo.ProcessID("echo", "echo@127.0.0.1"))

    def run(self, n: int) -> tuple[float, float, float]:
        done = self.loop.create_future()
        c0 = time.process_time()
        self.node.send(self.caller, (n, done.set_result))
        elapsed, their_cpu = self.loop.run_until_complete(asyncio.wait_for(done, 300))
        return _cpu(self, elapsed, time.process_time() - c0, their_cpu)

    def close(self) -> None:
        self.node.stop_force()
        local._close_loop(self.loop)
        self.child.stop()


def _serve_forever(loop: asyncio.AbstractEventLoop, pipe: Any, starting: Any) -> None:
    """A child's last step: start its server, tell the parent its port, serve until killed."""
    server = loop.run_until_complete(starting)
    pipe.send(server.sockets[0].getsockname()[1])
    loop.run_forever()


def _raw_echo_child(pipe: Any) -> None:
    loop = asyncio.new_event_loop()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        readexactly, write, unpack_len, pack_len = reader.readexactly, writer.write, _LEN.unpack, _LEN.pack
        try:
            while True:
                head = await readexactly(4)
                value = msgpack.unpackb(await readexactly(unpack_len(head)[0]))
                if value == "cpu":  # the end of a run: this process's CPU seconds so far
                    value = time.process_time()
                body = msgpack.packb(value)
                write(pack_len(len(body)) + body)
        except asyncio.IncompleteReadError:
            writer.close()

    _serve_forever(loop, pipe, asyncio.start_server(serve, HOST, 0))


class _RawCall:
    def __init__(self) -> None:
        self.child = _Child(_raw_echo_child)
        port = self.child.recv()
        self.loop = local._fresh_loop()
        self.reader, self.writer = self.loop.run_until_complete(asyncio.open_connection(HOST, port))

    def run(self, n: int) -> tuple[float, float, float]:
        c0 = time.process_time()
        elapsed, their_cpu = self.loop.run_until_complete(self._run(n))
        return _cpu(self, elapsed, time.process_time() - c0, their_cpu)

    async def _run(self, n: int) -> tuple[float, float]:
        readexactly, write = self.reader.readexactly, self.writer.write
        packb, unpackb, pack_len, unpack_len = msgpack.packb, msgpack.unpackb, _LEN.pack, _LEN.unpack
        t0 = time.perf_counter()
        for i in range(n):
            body = packb(i)
            write(pack_len(len(body)) + body)
            (size,) = unpack_len(await readexactly(4))
            if unpackb(await readexactly(size)) != i:
                raise RuntimeError("the raw echo answered something else")
        elapsed = time.perf_counter() - t0
        body = packb("cpu")
        write(pack_len(len(body)) + body)
        (size,) = unpack_len(await readexactly(4))
        return elapsed, unpackb(await readexactly(size))

    def close(self) -> None:
        self.writer.close()
        local._close_loop(self.loop)
        self.child.stop()


# The floor of a remote call: what an actor runtime in pure Python cannot do with less.  No
# part of ours; it says how far the runtime's own work per call is from the syscalls'.
# The compact frames of RequestPID and Response (the header struct and a msgpack value,
# docs/wire.md), one write per frame, a process looked up by id with a mailbox, a ref per
# call and a table of the waiting callers; no checks, no timers, no scheduler, no pool
# of links, no statistics, and the caller's coroutine driven by hand (coro.send).
_FLOOR_FRAME = struct.Struct(">BBIBBQQBQQQ")  # header, from id, to id, flags, ref ids


def _floor_frames_are_ours(pack: Callable[..., bytes], size: int) -> None:
    """The floor's frames are byte for byte what a link's codec makes (a call from id 1 to id 2)."""
    a, b = "caller@127.0.0.1", "echo@127.0.0.1"
    caller, echo, ref = ergo.PID(a, 1, 1), ergo.PID(b, 2, 1), ergo.Ref(a, 1, (1, 0, 7))
    body = msgpack.packb(42)
    for codec, msg, frame in (
        (enp.LinkCodec(a, 1, b, 1, batch_entries=0), enp.RequestPID(caller, echo, ref, 42, 0, False),
         pack(enp.MAGIC, enp.VERSION, size + len(body), 2, enp.TYPE_LINK_REQUEST_PID, 1, 2, 0, 1, 0, 7) + body),
        (enp.LinkCodec(b, 1, a, 1, batch_entries=0), enp.Response(echo, caller, ref, 42),
         pack(enp.MAGIC, enp.VERSION, size + len(body), 3, enp.TYPE_LINK_RESPONSE, 2, 1, 0, 1, 0, 7) + body),
    ):
        codec.send(msg)
        if bytes(codec.flush()) != frame:
            raise RuntimeError(f"the floor's {type(msg).__name__} frame is not the codec's")


class _FloorEcho:
    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return time.process_time() if request == "cpu" else request


def _floor_frames(data: bytes, handle: Callable[..., None]) -> bytes:
    """Each whole frame of ``data`` to ``handle(order, from id, to id, ref, value)``; returns the rest."""
    pos, end, size, unpack = 0, len(data), _FLOOR_FRAME.size, _FLOOR_FRAME.unpack_from
    while end - pos >= size:
        _, _, length, order, _, from_id, to_id, _, a, b, c = unpack(data, pos)
        if end - pos < length:
            break
        handle(order, from_id, to_id, (a, b, c), msgpack.unpackb(data[pos + size : pos + length]))
        pos += length
    return data[pos:]


def _floor_echo_child(pipe: Any) -> None:
    loop = asyncio.new_event_loop()
    processes = {2: _FloorEcho()}
    pack, size = _FLOOR_FRAME.pack, _FLOOR_FRAME.size

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.write = transport.write
            self.rest = b""
            self.mailbox: deque[tuple[int, Any, Any]] = deque()

        def data_received(self, data: bytes) -> None:
            self.rest = _floor_frames(self.rest + data if self.rest else data, self.handle)

        def handle(self, order: int, from_id: int, to_id: int, ref: Any, value: Any) -> None:
            process, mailbox = processes[to_id], self.mailbox
            mailbox.append((from_id, ref, value))
            while mailbox:  # the process's turn, run at once (as the runtime's run_io does)
                caller, r, request = mailbox.popleft()
                body = msgpack.packb(process.handle_call(caller, r, request))
                self.write(pack(enp.MAGIC, enp.VERSION, size + len(body), 1 + to_id % 255, enp.TYPE_LINK_RESPONSE,
                                to_id, caller, 0, *r) + body)

    _serve_forever(loop, pipe, loop.create_server(Echo, HOST, 0))


class _FloorCall:
    def __init__(self) -> None:
        self.child = _Child(_floor_echo_child)
        port = self.child.recv()
        self.loop = local._fresh_loop()
        waiting: dict[Any, Any] = {}
        self.waiting = waiting

        class Caller(asyncio.Protocol):
            rest = b""

            def data_received(self, data: bytes) -> None:
                self.rest = _floor_frames(self.rest + data if self.rest else data, self.handle)

            def handle(self, order: int, from_id: int, to_id: int, ref: Any, value: Any) -> None:
                coro = waiting.pop(ref)
                try:
                    waiting[coro.send(value)] = coro  # it awaits its next call, under that ref
                except StopIteration:
                    pass

        self.transport, _ = self.loop.run_until_complete(self.loop.create_connection(Caller, HOST, port))
        self.refs = 0

    def run(self, n: int) -> tuple[float, float, float]:
        done = self.loop.create_future()
        write, pack, size = self.transport.write, _FLOOR_FRAME.pack, _FLOOR_FRAME.size

        class Call:  # awaited, it hands its ref to whatever drives the coroutine
            __slots__ = ("ref",)

            def __init__(self, ref: Any) -> None:
                self.ref = ref

            def __await__(self) -> Any:
                return (yield self.ref)

        def call(to_id: int, request: Any) -> Call:
            self.refs += 1
            ref = (1, 0, self.refs)
            body = msgpack.packb(request)
            write(pack(enp.MAGIC, enp.VERSION, size + len(body), 2, enp.TYPE_LINK_REQUEST_PID, 1, to_id, 0, *ref)
                  + body)
            return Call(ref)

        _floor_frames_are_ours(pack, size)

        async def handler() -> None:
            t0 = time.perf_counter()
            for i in range(n):
                if await call(2, i) != i:
                    raise RuntimeError("the floor's echo answered something else")
            elapsed = time.perf_counter() - t0
            done.set_result((elapsed, await call(2, "cpu")))

        c0 = time.process_time()
        coro = handler()
        self.waiting[coro.send(None)] = coro
        elapsed, their_cpu = self.loop.run_until_complete(asyncio.wait_for(done, 300))
        return _cpu(self, elapsed, time.process_time() - c0, their_cpu)

    def close(self) -> None:
        self.transport.close()
        local._close_loop(self.loop)
        self.child.stop()


def bench_call(sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    n = sizes["call"]
    ours = _best(_ErgoCall, n, repeats)
    raw = _best(_RawCall, n, repeats)
    floor = _best(_FloorCall, n, repeats)
    return [
        _with_cpu(result("call.network.asyncio", ours[0], "calls/s", raw[0],
                         "raw: asyncio streams ping-pong, length-prefixed msgpack", 0.8),
                  ours, raw, "caller", "callee"),
        _with_cpu(result("floor: call.network.asyncio, a minimal actor call", floor[0], "calls/s", raw[0],
                         "raw: asyncio streams ping-pong, length-prefixed msgpack"),
                  floor, raw, "caller", "callee"),
    ]


# -- 3. event fan-out to subscribers on 3 nodes -----------------------------------------------------


class _Collector(ergo.Actor):
    """Gathers one "done" per subscribing node, then calls ``finished``."""

    def init(self) -> None:
        self.waiting: tuple[int, Callable[[float], None]] | None = None
        self.got = 0

    def handle_message(self, from_: Any, message: Any) -> None:
        if type(message) is tuple:  # (nodes, finished): a new run
            self.waiting, self.got = message, 0
            return
        self.got += 1
        if self.waiting is not None and self.got == self.waiting[0]:
            self.waiting[1](time.perf_counter())


class _CountingSubscriber(ergo.Actor):
    def init(self, event: ergo.Event, counter: list, collector: ergo.ProcessID) -> None:
        self.monitor_event(event)
        self.counter, self.collector = counter, collector

    def handle_event(self, message: Any) -> None:
        counter = self.counter
        counter[0] += 1
        if counter[0] == counter[1]:  # this node got every delivery of the run
            counter[0] = 0
            self.send(self.collector, "done")


class _Expect(ergo.Actor):
    """Sets how many deliveries the node's subscribers expect in the next run."""

    def init(self, counter: list) -> None:
        self.counter = counter

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        self.counter[0], self.counter[1] = 0, request
        return True


def _subscriber_child(pipe: Any, name: str, pub_port: int, subscribers: int) -> None:
    node, _, _ = _start(name)
    _route(node, "pub@127.0.0.1", pub_port)
    event = ergo.Event("ticks", "pub@127.0.0.1")
    collector = ergo.ProcessID("collector", "pub@127.0.0.1")
    counter = [0, -1]
    node.spawn_register("expect", _Expect, counter)
    for _ in range(subscribers):
        node.spawn(_CountingSubscriber, event, counter, collector)
    pipe.send(node.network()._listeners[0].address[1])
    node.wait()


class _ErgoFanout:
    NODES = 3

    def __init__(self, subscribers: int) -> None:
        self.node, self.loop, port = _start("pub@127.0.0.1")
        self.token = self.node.register_event("ticks")
        self.collector = self.node.spawn_register("collector", _Collector)
        share = [subscribers // self.NODES + (i < subscribers % self.NODES) for i in range(self.NODES)]
        self.shares = share
        self.children = [_Child(_subscriber_child, f"sub{i}@127.0.0.1", port, share[i]) for i in range(self.NODES)]
        for i, child in enumerate(self.children):
            _route(self.node, f"sub{i}@127.0.0.1", child.recv())
        peers = [f"sub{i}@127.0.0.1" for i in range(self.NODES)]

        def subscribed() -> bool:  # every subscribing node watches the event through its consumer
            info = self.node.network().info()["peers"]
            return all(p in info and info[p]["watching_here"] for p in peers)

        async def wait() -> None:
            deadline = time.monotonic() + 120
            while not subscribed():
                if time.monotonic() > deadline:
                    raise RuntimeError("the subscribing nodes did not subscribe")
                await asyncio.sleep(0.01)

        self.loop.run_until_complete(wait())

    def run(self, events: int) -> float:
        node = self.node
        for i, share in enumerate(self.shares):  # what each node's subscribers expect
            self.loop.run_until_complete(node.call_async(ergo.ProcessID("expect", f"sub{i}@127.0.0.1"), share * events))
        finished = self.loop.create_future()
        node.send(self.collector, (self.NODES, finished.set_result))
        t0 = time.perf_counter()
        for i in range(events):
            node.send_event("ticks", self.token, i)
        t1 = self.loop.run_until_complete(asyncio.wait_for(finished, 300))
        return t1 - t0

    def close(self) -> None:
        self.node.stop_force()
        local._close_loop(self.loop)
        for child in self.children:
            child.stop()


def bench_fanout(sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    subs, events = sizes["fanout_subscribers"], sizes["fanout_events"]
    deliveries = subs * events
    runner = _ErgoFanout(subs)
    try:
        runner.run(1)
        best = float("inf")
        for _ in range(repeats):
            gc.collect()
            best = min(best, runner.run(events))
    finally:
        runner.close()
    ours = deliveries / best
    alone = local.best_rate(lambda _n: local.ergo_fanout(subs, events), deliveries, repeats)
    return [result(f"event_fanout.network.{subs}_subscribers_3_nodes", ours, "deliveries/s", alone,
                   f"the same fan-out on one node ({subs} local subscribers)")]


# -- 4. simulated cluster -------------------------------------------------------------------------


#: ping-pong pairs across the two simulated nodes
SIM_PAIRS = 100


def ergo_sim_network(n: int) -> tuple[float, float, int]:
    """Remote ping-pong between nodes on two simulated hosts: (wall s, CPU s, messages)."""
    s = sim.Sim(1)
    a = s.start_node("a@host1", _options(acceptors=(AcceptorOptions(port=11144),)))
    b = s.start_node("b@host2", _options(acceptors=(AcceptorOptions(port=11144),)))
    for x, y in ((a, b), (b, a)):
        host, port = y.network()._listeners[0].address
        x.network().add_route(f"^{str.__str__(y.name)}$", NetworkRoute(host, port))
    a.network().get_node(b.name)
    s.run_until(lambda: a.network().nodes() and b.network().nodes(), 60)
    counter = [0]
    per_pair = n // SIM_PAIRS
    for _ in range(SIM_PAIRS):
        ping = a.spawn(local._Ping, counter)
        pong = b.spawn(local._Ping, counter)
        a.send(ping, ("serve", pong, per_pair - 1))
    total = (per_pair + 1) * SIM_PAIRS
    w0, c0 = time.perf_counter(), time.process_time()
    s.run_until(lambda: counter[0] >= total, 1e6)  # heartbeats never let the simulation run dry
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    if counter[0] != total:
        raise RuntimeError(f"{counter[0]} messages handled, not {total}")
    a.stop_force()
    b.stop_force()
    return wall, cpu, per_pair * SIM_PAIRS  # the serve message is local: not counted


def bench_sim(sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    n = sizes["sim"]
    best_wall = best_cpu = 0.0
    for _ in range(repeats):
        gc.collect()
        wall, cpu, msgs = ergo_sim_network(n)
        best_wall, best_cpu = max(best_wall, msgs / wall), max(best_cpu, msgs / cpu)
    raw = local.best_rate(local.raw_simpy_timeouts, n, repeats)
    name = f"simpy: {local.SIM_PAIRS} processes yielding env.timeout(0)"
    return [
        result("sim.network.messages_per_wall_s", best_wall, "msgs/s", raw, name, 150_000, "value"),
        result("sim.network.messages_per_cpu_s", best_cpu, "msgs/s", raw, name),
    ]


# -- 5. node.call_async from asyncio code (local; the line bench/local.py prints too) ---------------


def bench_call_async(sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    n = sizes["call_async"]
    via_node = local.best_rate(local.ergo_call_async, n, repeats)
    raw = local.best_rate(local.raw_queue_pingpong, n, repeats)
    return [result("call.local.asyncio.node_call_async", via_node, "calls/s", raw,
                   "asyncio.Queue ping-pong, 2 tasks", 0.7)]


BENCHES = {
    "send": bench_send,
    "call": bench_call,
    "fanout": bench_fanout,
    "sim": bench_sim,
    "call_async": bench_call_async,
}


def main(argv: list[str] | None = None) -> int:
    return local.run_cli(argv, __doc__ or "", BENCHES, SIZES, QUICK_SIZES, "ergonode network benchmarks")


if __name__ == "__main__":
    sys.exit(main())

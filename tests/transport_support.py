"""Harnesses for the transport contract: the same test code on simulated hosts, on asyncio and on uvloop.

A harness gives two transports (a client side and a server side), the host names to use,
a way to run until something is true (the simulated clock, or the event loop until a
callback pokes it: never a sleep) and ``call_soon`` on the backend's scheduler.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import sim
from ergo.gen.errors import ErgoError
from ergo.transport import DatagramProtocol, FlowLimits, StreamProtocol, Transport
from net.transport import AsyncioTransport

_NOT_YET: Any = object()


class Harness:
    name: str
    client: Transport
    server: Transport
    client_host: str
    server_host: str
    #: an address the client's host cannot bind (not one of its own)
    foreign_host: str
    #: ways to address the server's host, each spelt otherwise than its sockets show it
    #: where the backend has more than one (a name, a long form of its address)
    server_names: tuple[str, ...]

    def poke(self) -> None:
        pass

    def run_until(self, predicate: Callable[[], object], what: str = "the condition") -> None:
        raise NotImplementedError

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        raise NotImplementedError

    def set_limits(self, limits: FlowLimits) -> None:
        self.client.limits = limits
        self.server.limits = limits

    def close(self) -> None:
        pass


class SimHarness(Harness):
    name = "sim"

    def __init__(self, seed: int = 1) -> None:
        self.sim = sim.Sim(seed)
        self.client_host, self.server_host, self.foreign_host = "host1", "host2", "host2"
        self.server_names = ("host2",)  # a simulated host's name is its address
        self.client = self.sim.host("host1").transport
        self.server = self.sim.host("host2").transport

    def run_until(self, predicate: Callable[[], object], what: str = "the condition") -> None:
        self.sim.run_until(predicate, timeout=600)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self.sim.host("host1").scheduler.call_soon(fn, *args)


class _Tracking(AsyncioTransport):
    """Remembers what it opened, so the harness can close it all before closing the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, opened: list[Any]) -> None:
        super().__init__(loop)
        self.opened = opened

    def listen(self, *args: Any, **kwargs: Any) -> Any:
        self.opened.append(super().listen(*args, **kwargs))
        return self.opened[-1]

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        fut = super().connect(*args, **kwargs)
        fut._on_done(lambda f: f.exception() is None and self.opened.append(f.result()))
        return fut

    def datagram(self, *args: Any, **kwargs: Any) -> Any:
        self.opened.append(super().datagram(*args, **kwargs))
        return self.opened[-1]


class AsyncioHarness(Harness):
    def __init__(self, name: str = "asyncio") -> None:
        self.name = name
        if name == "uvloop":
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self.client_host = self.server_host = "127.0.0.1"
        self.foreign_host = "192.0.2.1"  # TEST-NET-1: never an address of this machine
        self.server_names = ("127.0.0.1", "localhost", "127.1")
        self.opened: list[Any] = []
        self.client: AsyncioTransport = _Tracking(self.loop, self.opened)
        self.server: AsyncioTransport = _Tracking(self.loop, self.opened)
        self._event: asyncio.Event | None = None
        #: what the loop's exception handler got: a callback that raised fails the test
        self.errors: list[dict[str, Any]] = []
        #: set by a test in which asyncio logs an expected error (a refused TLS handshake)
        self.allow_errors = False
        self.loop.set_exception_handler(lambda _loop, context: self.errors.append(context))

    def poke(self) -> None:
        if self._event is not None:
            self._event.set()

    def run_until(self, predicate: Callable[[], object], what: str = "the condition") -> None:
        async def wait() -> None:
            self._event = event = asyncio.Event()
            while not predicate():
                event.clear()
                await event.wait()

        try:
            # a deadline against a hang (a failing test), never a wait for something to happen
            self.loop.run_until_complete(asyncio.wait_for(wait(), 30))
        except TimeoutError:
            raise AssertionError(f"{what} did not happen") from None
        finally:
            self._event = None

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon(fn, *args)

    def track(self, stream: Any) -> None:
        self.opened.append(stream)

    def close(self) -> None:
        # close what the test opened and let the loop finish closing it, then close the loop
        for thing in self.opened:
            if hasattr(thing, "abort"):
                thing.abort()
            else:
                thing.close()
        for _ in range(5):
            self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()
        if not self.allow_errors:
            assert not self.errors, [c.get("message") for c in self.errors]


class Recorder(StreamProtocol):
    """Keeps everything it is told, and fails a test that sees a callback inside its own call."""

    def __init__(self, h: Harness, *, paused: bool = False, echo: bool = False) -> None:
        self.h = h
        self.stream: Any = None
        self.data = bytearray()
        self.events: list[Any] = []
        self.lost: Any = _NOT_YET
        self.paused_at_start = paused
        self.echo = echo
        self.writing_paused = False
        self.in_call = False

    def _check(self, what: str) -> None:
        assert not self.in_call, f"{what} was called from inside a call into the stream"
        self.h.poke()

    # calls into the stream, marked so that a re-entrant callback is caught

    def do(self, method: str, *args: Any) -> Any:
        self.in_call = True
        try:
            return getattr(self.stream, method)(*args)
        finally:
            self.in_call = False

    # callbacks

    def connection_made(self, stream: Any) -> None:
        self._check("connection_made")
        self.stream = stream
        if isinstance(self.h, AsyncioHarness):
            self.h.track(stream)
        self.events.append("made")
        if self.paused_at_start:
            stream.pause_reading()

    def data_received(self, data: memoryview) -> None:
        self._check("data_received")
        assert type(data) is memoryview
        assert self.lost is _NOT_YET, "data after connection_lost"
        self.data += data
        if self.echo:
            self.do("write", bytes(data))

    def connection_lost(self, error: ErgoError | None) -> None:
        self._check("connection_lost")
        assert self.lost is _NOT_YET, "connection_lost twice"
        self.lost = error
        self.events.append(("lost", error))

    def pause_writing(self) -> None:
        self._check("pause_writing")
        assert not self.writing_paused, "pause_writing twice in a row"
        self.writing_paused = True
        self.events.append("pause")

    def resume_writing(self) -> None:
        self._check("resume_writing")
        assert self.writing_paused, "resume_writing without pause_writing"
        self.writing_paused = False
        self.events.append("resume")

    @property
    def is_lost(self) -> bool:
        return self.lost is not _NOT_YET


class Datagrams(DatagramProtocol):
    def __init__(self, h: Harness) -> None:
        self.h = h
        self.got: list[tuple[bytes, tuple[str, int]]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.append((data, addr))
        self.h.poke()


def raw_closed(sock: socket.socket) -> bool:
    """Whether the other end closed or reset the (non-blocking) raw socket ``sock``."""
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True

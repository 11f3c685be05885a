"""Test helpers: the two backends every behavioural test runs on, a collector actor, a list logger.

Tests synchronise on events, never on time: ``settle()`` runs the backend until no process
has work left (on asyncio it spins the loop with zero-length yields, it never sleeps), and
a :class:`Collector` defers a call's reply until the messages it waits for have arrived.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ergo
import net
import sim
from ergo import LogOptions, NodeOptions


class ListLogger:
    """An Ergo-style logger behaviour that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[ergo.MessageLog] = []

    def log(self, message: ergo.MessageLog) -> None:
        self.messages.append(message)

    def texts(self, level: ergo.LogLevel | None = None) -> list[str]:
        return [m.text() for m in self.messages if level is None or m.level == level]


class Backend:
    name: str

    def node(self, name: str = "test@localhost", **log: Any) -> ergo.Node:
        log.setdefault("default_logger", False)
        n = self._start(name, NodeOptions(log=LogOptions(**log)))
        self.nodes.append(n)
        n.captured = ListLogger()
        n.logger_add("captured", n.captured)
        return n

    def close(self) -> None:
        for n in self.nodes:
            if n.is_alive():
                n.stop_force()


class SimBackend(Backend):
    name = "sim"

    def __init__(self, seed: int = 1) -> None:
        self.sim = sim.Sim(seed)
        self.nodes: list[ergo.Node] = []

    def _start(self, name: str, options: NodeOptions) -> ergo.Node:
        return self.sim.start_node(name, options)

    def settle(self) -> None:
        self.sim.run()


class AsyncioBackend(Backend):
    name = "asyncio"

    def __init__(self) -> None:
        self.nodes = []
        self.loop: asyncio.AbstractEventLoop | None = None

    def _start(self, name: str, options: NodeOptions) -> ergo.Node:
        n = net.start_node(name, options, handle_signals=False)
        self.loop = n.scheduler.loop
        return n

    def settle(self) -> None:
        self.loop.run_until_complete(net.settle(*self.nodes))

    def close(self) -> None:
        super().close()
        if self.loop is not None:
            self.loop.close()
            asyncio.set_event_loop(None)




class Collector(ergo.Actor):
    """Keeps every message; ``call(("wait", n))`` replies with the first n once they are in."""

    def init(self, *args: Any) -> None:
        self.got: list[tuple[Any, Any]] = []
        self.waiting: list[tuple[Any, Any, int]] = []

    def handle_message(self, from_: Any, message: Any) -> None:
        self.got.append((from_, message))
        still = []
        for f, r, n in self.waiting:
            if len(self.got) >= n:
                self.send_response(f, r, [m for _, m in self.got[:n]])
            else:
                still.append((f, r, n))
        self.waiting = still

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        if request == "messages":
            return [m for _, m in self.got]
        if request == "senders":
            return [f for f, _ in self.got]
        if isinstance(request, tuple) and request[0] == "wait":
            n = request[1]
            if len(self.got) >= n:
                return [m for _, m in self.got[:n]]
            self.waiting.append((from_, ref, n))
            return ergo.NoReply
        raise ValueError(f"Collector does not know {request!r}")

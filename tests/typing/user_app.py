"""A user's program, type-checked with ``mypy --strict`` by tests/test_typing.py.

It is not run: it exists to prove that the public API is typed well enough for a strict
project (handlers, spawn, send, calls, links, monitors, events, both backends, futures,
options).  A change that makes the API harder to type breaks that test.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, assert_type

import ergo
import net
import sim
from ergo import (
    PID,
    Actor,
    Alias,
    Atom,
    Event,
    Future,
    MessageDownPID,
    MessageEvent,
    MessageExitPID,
    MetaBehavior,
    Node,
    NodeOptions,
    ProcessID,
    ProcessOptions,
    Ref,
    Target,
    TerminateReasonNormal,
    Timeout,
)


@dataclass(frozen=True)
class Add:
    n: int


class Counter(Actor):
    """A plain actor with typed state and handlers."""

    total: int

    def init(self, start: int = 0) -> None:
        self.total = start

    def handle_message(self, from_: PID, message: Any) -> None:
        if isinstance(message, Add):
            self.total += message.n
        elif isinstance(message, MessageExitPID):
            self.log.info("linked %s exited: %s", message.pid, message.reason)
        elif isinstance(message, MessageDownPID):
            self.log.warning("monitored %s went down", message.pid)

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> int:
        return self.total


class Ticker(MetaBehavior):
    """A meta-process: sends its owner's counter a tick for every message it gets."""

    def handle_message(self, from_: PID, message: Any) -> None:
        self.process.send(from_, Add(1))


class Client(Actor):
    """An actor that calls, sleeps, links, monitors and subscribes, with typed results."""

    counter: PID
    token: Ref

    def init(self, counter: PID) -> None:
        self.counter = counter
        self.trap_exit = True
        self.link(counter)
        self.monitor(counter)
        self.token = self.register_event("ticks", notify=True, buffer=2)
        assert_type(self.events(), list[Atom])

    async def handle_message(self, from_: PID, message: Any) -> None:
        fut = self.call(self.counter, "total", timeout=1.0)
        assert_type(fut, Future[Any])
        total: int = await fut
        pause = self.sleep(0.5)
        assert_type(pause, Future[None])
        await pause
        report = await self.inspect(self.counter)
        assert_type(report, dict[str, str])
        self.send(self.counter, Add(total))
        self.send(ProcessID("counter", self.node.name), Add(1))
        self.send("counter", Add(1))
        self.send_with_priority(self.counter, Add(1), ergo.MessagePriority.HIGH)
        self.send_event("ticks", self.token, total)
        timer = self.send_after(self.counter, Add(2), 1.5)
        timer.cancel()
        alias: Alias = self.create_alias()
        self.delete_alias(alias)
        try:
            await self.call("nobody", None, timeout=0.1)
        except Timeout:
            pass
        except ergo.ProcessUnknown:
            raise TerminateReasonNormal from None

    def handle_event(self, message: MessageEvent) -> None:
        event: Event = message.event
        self.log.debug("event %s at %d: %r", event, message.timestamp, message.message)

    def terminate(self, reason: BaseException) -> None:
        self.unlink(self.counter)


class Watcher(Actor):
    def init(self, event: Event) -> None:
        buffered: list[MessageEvent] = self.monitor_event(event)
        for m in buffered:
            self.handle_event(m)
        self.spawn_meta(Ticker())

    def handle_event(self, message: MessageEvent) -> None:
        pass


def targets(pid: PID, alias: Alias, node: Node) -> list[Target]:
    """Every kind of target a send accepts."""
    return [pid, ProcessID("counter", node.name), alias, Atom("counter"), "counter"]


def simulated() -> int:
    s = sim.Sim(seed=7)
    node = s.start_node("app@localhost", NodeOptions(log=ergo.LogOptions(default_logger=False)))
    assert_type(node, Node)
    counter = node.spawn_register("counter", Counter, 10, options=ProcessOptions(mailbox_size=100))
    client = node.spawn(Client, counter)
    node.send(client, "go")
    node.send(counter, Add(5))
    s.run_for(5)
    total = node.call(counter, "total")
    assert_type(total, Any)
    info: ergo.ProcessInfo = node.process_info(counter)
    where: PID | None = node.whereis("counter")
    node.stop()
    return int(total) + info.messages_in + (where.id if where else 0)


class Tree(ergo.Supervisor):
    """A typed supervisor: its init returns the spec; the API is used from a handler."""

    def init(self, size: int) -> ergo.SupervisorSpec:
        return ergo.SupervisorSpec(
            children=[ergo.SupervisorChildSpec("counter", Counter, (size,), restart=ergo.SupervisorStrategy.PERMANENT)],
            type=ergo.SupervisorType.REST_FOR_ONE,
            restart=ergo.SupervisorRestart(intensity=3, period=1.0, keep_order=True),
        )

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> list[ergo.SupervisorChild]:
        pid: PID | None = self.add_child(ergo.SupervisorChildSpec("extra", Counter))
        if pid is None:
            self.disable_child("extra")
        return self.children()

    def handle_child_terminate(self, name: Atom, pid: PID, reason: BaseException) -> None:
        self.log.info("%s %s ended: %s", name, pid, reason)


def supervised() -> int:
    s = sim.Sim(seed=2)
    node = s.start_node("tree@localhost", NodeOptions(log=ergo.LogOptions(default_logger=False)))
    tree = node.spawn(Tree, 5)
    children = node.call(tree, "children")
    node.stop()
    return len(children)


async def on_asyncio() -> int:
    node = net.start_node("web@localhost", handle_signals=False)
    assert_type(node, Node)
    async with node:
        counter = node.spawn(Counter)
        node.send(counter, Add(3))
        total = await node.call_async(counter, "total", timeout=2.0)
        conc = node.call_threadsafe(counter, "total")
        node.send_threadsafe(counter, Add(1))
        await asyncio.wrap_future(conc)
        return int(total)


if __name__ == "__main__":
    print(simulated(), asyncio.run(on_asyncio()))

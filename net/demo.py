"""The main job: a small application on the asyncio backend, narrated as it runs.

``python -m net.demo`` starts a node, spawns a few processes that exchange messages and
calls, lets one of them crash (nobody else notices), and stops the node gracefully from
inside a handler.  Every line it prints comes from the node's default logger.
"""

from __future__ import annotations

import sys
from typing import Any

import ergo
from ergo import PID, Actor, LogOptions, NodeOptions, TerminateReasonNormal

from .node import start_node


class Counter(Actor):
    """A registered server: ``call("counter", "incr")`` adds one and returns the total."""

    def init(self) -> None:
        self.total = 0

    def handle_call(self, from_: PID, ref: ergo.Ref, request: Any) -> Any:
        if request == "incr":
            self.total += 1
            return self.total
        if request == "get":
            return self.total
        raise ValueError(f"the counter does not understand {request!r}")


class Ponger(Actor):
    def handle_message(self, from_: PID, message: Any) -> None:
        kind, n = message
        self.send(from_, ("pong", n))


class Pinger(Actor):
    """Plays ``rounds`` of ping-pong, then tells whoever asked (a deferred reply)."""

    def init(self, ponger: PID, rounds: int) -> None:
        self.ponger, self.rounds = ponger, rounds
        self.waiting: tuple[PID, ergo.Ref] | None = None

    def handle_call(self, from_: PID, ref: ergo.Ref, request: Any) -> Any:
        self.waiting = (from_, ref)
        self.send(self.ponger, ("ping", 1))
        return ergo.NoReply  # the reply comes later, from handle_message

    def handle_message(self, from_: PID, message: Any) -> None:
        _, n = message
        if n < self.rounds:
            self.send(self.ponger, ("ping", n + 1))
        else:
            self.log.info("played %d rounds of ping-pong with %s", n, from_)
            assert self.waiting is not None  # the call came first
            self.send_response(*self.waiting, n)
            raise TerminateReasonNormal  # done: stop this process normally


class Flaky(Actor):
    def handle_message(self, from_: PID, message: Any) -> None:
        raise RuntimeError(f"cannot handle {message!r}")


class Coordinator(Actor):
    """Runs the story: each step awaits a call, which suspends this process only."""

    async def handle_message(self, from_: PID, message: Any) -> None:
        self.log.info("step 1: three calls to the registered counter")
        for _ in range(3):
            total = await self.call("counter", "incr")
        self.log.info("the counter says %d", total)

        self.log.info("step 2: a pinger and a ponger exchange messages")
        ponger = self.spawn(Ponger)
        pinger = self.spawn(Pinger, ponger, 1000)
        rounds = await self.call(pinger, "play")
        self.log.info("the pinger reported %d rounds; it has terminated normally", rounds)

        self.log.info("step 3: a process crashes; the others carry on")
        flaky = self.spawn(Flaky)
        self.send(flaky, "a bad request")
        await self.sleep(0.01)
        alive = flaky in self.node.process_list()
        self.log.info("the flaky process is %s; the counter still answers: %d",
                      "alive" if alive else "gone", await self.call("counter", "get"))

        self.log.info("step 4: stop the node from inside this handler (no deadlock)")
        self.node.stop()


def main() -> int:
    node = start_node("demo@localhost", NodeOptions(log=LogOptions(level="info")))
    node.spawn_register("counter", Counter)
    node.send(node.spawn(Coordinator), "go")
    stopped = node.wait(timeout=30)
    return 0 if stopped else 1


if __name__ == "__main__":
    sys.exit(main())

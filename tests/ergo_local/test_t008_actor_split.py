"""Ergo's t008_actor_split_test.go (TestT8ActorSplit), translated: with ``split_handle``
on, messages and calls that arrive by registered name or by alias reach
``handle_message_name`` / ``handle_message_alias`` / ``handle_call_name`` /
``handle_call_alias``; by PID, or with it off, ``handle_message`` / ``handle_call``."""

from __future__ import annotations

from typing import Any

import pytest
from ergo_probe import Probe, run

from ergo import PID, Actor, Alias, Atom


class Split(Actor):
    def init(self, split: bool, seen: list, aliases: list) -> None:
        self.split_handle = split
        self.seen = seen
        aliases.append(self.create_alias())

    def handle_message(self, from_: PID, message: Any) -> None:
        self.seen.append(self.pid)

    def handle_message_name(self, name: Atom, from_: PID, message: Any) -> None:
        self.seen.append(name)

    def handle_message_alias(self, alias: Alias, from_: PID, message: Any) -> None:
        self.seen.append(alias)

    def handle_call(self, from_: PID, ref: Any, request: Any) -> Any:
        return self.pid

    def handle_call_name(self, name: Atom, from_: PID, ref: Any, request: Any) -> Any:
        return name

    def handle_call_alias(self, alias: Alias, from_: PID, ref: Any, request: Any) -> Any:
        return alias


def test_split_handle_toggles(backend):
    node = backend.node("t8node@localhost")

    def toggle(p):
        states = [p.split_handle]
        p.split_handle = True
        states.append(p.split_handle)
        p.split_handle = False
        return [*states, p.split_handle]

    assert run(node, node.spawn(Probe), toggle) == [False, True, False]


@pytest.mark.parametrize("split", [False, True])
def test_split_handle(backend, split):
    node = backend.node("t8node@localhost")
    driver = node.spawn(Probe)
    seen: list = []
    aliases: list = []
    pid = run(node, driver, lambda p: p.spawn_register("splitter", Split, split, seen, aliases))
    for to in (pid, Atom("splitter"), aliases[0]):
        expected = to if split else pid

        async def send_and_call(p, to=to):
            p.send(to, "test")
            return await p.call(to, "test")

        assert run(node, driver, send_and_call) == expected
        assert seen[-1] == expected

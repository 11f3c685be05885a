"""What a newcomer trips on: spawn's Python signature, names the runtime owns, a process
used before it is spawned, a node name without a host, and sends that do not copy."""

from __future__ import annotations

from typing import Any

import pytest
from support import Collector

import sim
from ergo import Actor, Atom, Incorrect, ProcessOptions, ProcessUnknown


class Keeper(Actor):
    def init(self, *args: Any) -> None:
        self.args = args

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return self.args


def test_spawn_takes_init_args_then_options_by_keyword(backend):
    node = backend.node()
    pid = node.spawn(Keeper, 1, "two", options=ProcessOptions(mailbox_size=5))
    assert node.call(pid, "args?") == (1, "two")
    assert node.process_info(pid).mailbox_size == 5
    named = node.spawn_register("k", Keeper, None, options=ProcessOptions(mailbox_size=3))
    assert node.call("k", "args?") == (None,) and node.whereis("k") == named


def test_options_in_ergos_position_are_refused_with_the_python_form(backend):
    node = backend.node()
    with pytest.raises(Incorrect, match=r"options=\.\.\., not among init's arguments"):
        node.spawn(Keeper, ProcessOptions(mailbox_size=5), 1)
    assert node.process_list() == []


@pytest.mark.parametrize("attr", ["state", "name", "log", "node", "pid"])
def test_assigning_a_name_the_runtime_owns_fails_when_the_class_is_defined(attr):
    with pytest.raises(Incorrect, match=rf"Bad.init assigns self.{attr}, but '{attr}' is the runtime's"):
        exec(f"class Bad(Actor):\n    def init(self):\n        self.{attr} = 1\n", {"Actor": Actor})


def test_a_class_attribute_or_a_nested_assignment_is_caught_too():
    with pytest.raises(Incorrect, match="defines 'name'"):
        class Named(Actor):
            name = "worker"

    with pytest.raises(Incorrect, match="assigns self.log"):
        class Nested(Actor):
            def handle_message(self, from_: Any, message: Any) -> None:
                def later() -> None:
                    self.log = None

                later()


def test_settable_properties_and_other_names_stay_free():
    class Fine(Actor):
        def init(self) -> None:
            self.trap_exit = True  # a setting, meant to be assigned
            self.state_ = "mine"
            self.names = ["x"]

    assert Fine.__qualname__.endswith("Fine")


def test_a_process_used_before_spawn_says_so():
    k = Keeper()
    with pytest.raises(AttributeError, match="Keeper is not spawned yet: 'pid'"):
        k.pid  # noqa: B018
    assert not hasattr(k, "node") and getattr(k, "_node", "default") == "default"


def test_a_node_name_without_a_host_is_said_to_be_one():
    with pytest.raises(Incorrect, match=r"name@host.*'app'"):
        sim.Sim().start_node("app")


def test_a_local_send_does_not_copy_the_message(backend):
    node = backend.node()
    pid = node.spawn(Collector)
    message = {"items": [1, 2]}
    node.send(pid, message)
    [received] = node.call(pid, ("wait", 1))
    assert received is message  # shared, not copied: see docs/node.md, "Messages are not copied"


def test_sending_to_a_node_name_says_a_process_of_that_node_is_a_process_id(backend):
    """``send("b@host", ...)`` (or ``call``) reads as "to node b" to a newcomer, and was
    "no process is registered as 'b@host'" (a local name, as in Ergo): the error now says
    what reaches a process there.  A plain name that is not registered is told as before."""
    node = backend.node()
    said = (r"^no process is registered as 'b@host2' on '.+' \('b@host2' reads as a node name: "
            r"a process of node b@host2 is ProcessID\(name, 'b@host2'\) or its PID\)$")
    with pytest.raises(ProcessUnknown, match=said):
        node.send("b@host2", "hello")
    with pytest.raises(ProcessUnknown, match=said):
        node.call(Atom("b@host2"), "hello")
    with pytest.raises(ProcessUnknown, match=r"^no process is registered as 'worker' on '[^']+'$"):
        node.send("worker", "hello")

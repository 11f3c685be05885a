"""What a newcomer's mistakes across nodes say: each error names what went wrong, where,
and what to do about it (on simulated hosts; the words are the same on asyncio)."""

from __future__ import annotations

from typing import Any

import pytest
from network_support import SimCluster

from ergo import (
    PID,
    Actor,
    EncodeError,
    Incorrect,
    NoConnection,
    NoReply,
    ProcessID,
    ProcessOptions,
    ProcessUnknown,
    Ref,
    TerminateReasonKill,
    Timeout,
)


class Replies(Actor):
    def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        if request == "lambda":
            return lambda: 1  # a reply no other node can decode
        if request == "never":
            return NoReply
        return request


@pytest.fixture
def cluster() -> Any:
    c = SimCluster()
    yield c
    c.close()


def test_a_reply_that_cannot_be_encoded_tells_the_caller_it_was_the_reply(cluster: SimCluster) -> None:
    a, b = cluster.cluster(2)
    pid = b.spawn_register("replies", Replies)
    with pytest.raises(EncodeError) as err:
        a.call(ProcessID("replies", b.name), "lambda")
    # not the caller's request: the callee's node and process, and what can cross instead
    assert str(err.value).startswith(f"n2@host2 could not send the reply of {pid}: cannot encode a builtins.function")
    assert "ergo.register_type" in str(err.value)
    assert a.call(ProcessID("replies", b.name), "again") == "again"  # the callee lives on


def test_a_remote_call_that_times_out_names_the_node_it_went_to(cluster: SimCluster) -> None:
    a, b = cluster.cluster(2)
    b.spawn_register("replies", Replies)
    with pytest.raises(Timeout, match=r"^call to <[0-9A-F]{8}\.replies> of node n2@host2 got no reply within 0\.5 s$"):
        a.call(ProcessID("replies", b.name), "never", timeout=0.5)


@pytest.mark.parametrize(("cookie", "made"), [("wrong", False), ("", True)])
def test_a_wrong_cookie_is_refused_saying_the_cookies_differ_and_what_to_do(
        cluster: SimCluster, cookie: str, made: bool) -> None:
    a = cluster.start(1, cookie=cookie)
    b = cluster.start(2)
    cluster.route_all()
    b.spawn_register("replies", Replies)
    with pytest.raises(NoConnection) as err:
        a.call(ProcessID("replies", b.name), "hello")
    text = str(err.value)
    assert text.startswith("n2@host2 refused the connection: the two nodes' cookies differ "
                           "(give both the same NetworkOptions.cookie")
    assert ("this node has none, so it made a random one" in text) is made
    assert "it says it is 'n1@host1'" in text  # the peer's own words follow


def test_killing_a_process_of_another_node_says_whose_it_is_and_what_reaches_it(cluster: SimCluster) -> None:
    a, b = cluster.cluster(2)
    pid = b.spawn(Replies)
    with pytest.raises(ProcessUnknown, match=r"it is a process of node n2@host2, and this takes a local one "
                                             r"\(send_exit\(pid, TerminateReasonKill\) reaches another node's\)"):
        a.kill(pid)
    with pytest.raises(ProcessUnknown, match=r"it is a process of node n2@host2, and this takes a local one$"):
        a.process_info(pid)
    a.send_exit(pid, TerminateReasonKill)  # what the error says does reach it
    cluster.run_until(lambda: not b.process_list())


class Idle(Actor):
    def init(self, *args: Any) -> None:
        self.args = args


def test_process_options_among_a_remote_spawns_arguments_are_refused_saying_where_they_go(
        cluster: SimCluster) -> None:
    """Ergo's RemoteSpawn takes its options before the arguments; passed so here they were
    arguments for ``init``, and the spawn failed with an EncodeError telling the newcomer
    to register ProcessOptions as a type on both nodes (which would have handed them to
    ``init``).  As a local spawn, it says they go in ``options=``; nothing is sent."""
    a, b = cluster.cluster(2)
    b.network().enable_spawn("idle", Idle)
    a.wait_for(a.network().connect(b.name))
    remote = a.network().node(b.name)
    before = set(b._processes)
    with pytest.raises(Incorrect, match=r"ProcessOptions go in options=\.\.\., not among init's arguments"):
        remote.spawn("idle", ProcessOptions(mailbox_size=3))
    with pytest.raises(Incorrect, match=r"ProcessOptions go in options=\.\.\."):
        remote.spawn_register("worker", "idle", 1, ProcessOptions())
    raised: list[BaseException] = []

    class Spawner(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            try:
                self.remote_spawn(b.name, "idle", ProcessOptions(mailbox_size=3))
            except Incorrect as e:
                raised.append(e)

    a.send(a.spawn(Spawner), "go")
    cluster.run_until(lambda: raised)
    cluster.run_for(1)
    assert set(b._processes) == before

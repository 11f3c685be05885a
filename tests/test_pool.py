"""The pool (Ergo's act.Pool) on both schedulers: round robin, direct replies, replaced
workers, full mailboxes, resizing."""

from __future__ import annotations

from typing import Any

import pytest

from ergo import (
    Actor,
    ErgoError,
    Event,
    Incorrect,
    MailboxFull,
    MessagePriority,
    NoReply,
    NotAllowed,
    Pool,
    PoolEmpty,
    PoolOptions,
    ProcessState,
    ProcessTerminated,
    ProcessUnknown,
    Timeout,
)


class Worker(Actor):
    """Answers a call with its own PID and what the caller was; keeps its messages."""

    def init(self, journal: list[Any]) -> None:
        self.journal = journal

    def handle_message(self, from_: Any, message: Any) -> None:
        self.journal.append((self.pid, from_, message))

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        if request == "crash":
            raise ValueError("worker crash")
        if request == "hold":
            return NoReply
        return (self.pid, from_, request)


class Workers(Pool):
    def init(self, journal: list[Any], size: int = 3, mailbox: int = 0) -> PoolOptions:
        self.journal = journal
        return PoolOptions(Worker, pool_size=size, worker_mailbox_size=mailbox, worker_args=(journal,))

    def handle_message(self, from_: Any, message: Any) -> None:
        self.journal.append(("pool", message))

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        # the pool's own calls: only those sent with high priority reach here
        try:
            if request[0] == "add":
                return self.add_workers(request[1])
            if request[0] == "remove":
                return self.remove_workers(request[1])
        except ErgoError as e:
            return e
        if request[0] == "workers":
            return self.workers()
        return ("pool", request)


class Caller(Actor):
    """Makes a high-priority call to the pool on request (to reach the pool's own handle_call)."""

    async def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        to, what = request
        self.send_priority = MessagePriority.HIGH
        try:
            return await self.call(to, what)
        except Exception as e:
            return e


def test_messages_and_calls_go_to_the_workers_round_robin_and_workers_answer_the_caller(backend):
    node = backend.node()
    journal: list[Any] = []
    pool = node.spawn(Workers, journal)
    workers = node.process_list()[1:]
    assert len(workers) == 3
    answers = [node.call(pool, i) for i in range(6)]
    assert [a[0] for a in answers] == workers + workers
    assert all(a[1] == node.pid for a in answers)  # the worker saw the caller, not the pool
    for i in range(3):
        node.send(pool, ("m", i))
    backend.settle()
    assert [(w, f, m) for w, f, m in journal] == [(workers[i], node.pid, ("m", i)) for i in range(3)]
    for w in workers:
        assert node.process_info(w).parent == pool


def test_high_priority_messages_and_calls_are_the_pools_own(backend):
    node = backend.node()
    journal: list[Any] = []
    pool = node.spawn(Workers, journal)
    caller = node.spawn(Caller)
    assert node.call(caller, (pool, ("hello",))) == ("pool", ("hello",))
    node.send(caller, None)  # (the caller's default handler just logs it)
    inspected = node.inspect(pool)
    assert inspected["pool_size"] == "3" and inspected["worker_behavior"] == "Worker"
    assert inspected["messages_forwarded"] == "0"


def test_a_dead_worker_is_replaced_when_its_turn_comes(backend):
    node = backend.node()
    journal: list[Any] = []
    pool = node.spawn(Workers, journal)
    first, second, third = node.process_list()[1:]
    with pytest.raises(ProcessTerminated, match="worker crash"):  # the caller is told at once
        node.call(pool, "crash")
    assert node.call(pool, "x")[0] == second and node.call(pool, "x")[0] == third
    replacement = node.call(pool, "x")[0]
    assert replacement not in (first, second, third)
    assert node.call(pool, "x")[0] == second
    assert node.inspect(pool)["worker_restarts"] == "1"
    assert node.process_info(replacement).parent == pool


def test_when_every_worker_is_full_the_message_is_dropped_and_logged(backend):
    node = backend.node()
    journal: list[Any] = []

    class Holding(Worker):
        async def handle_message(self, from_: Any, message: Any) -> None:
            await self.sleep(10.0)

    class Busy(Workers):
        def init(self, journal: list[Any], size: int = 3, mailbox: int = 0) -> PoolOptions:
            self.journal = journal
            return PoolOptions(Holding, pool_size=2, worker_mailbox_size=1, worker_args=(journal,))

    pool = node.spawn(Busy, journal)
    for i in range(4):  # two are being handled (they sleep), two wait in the mailboxes
        node.send(pool, i)
        _run_a_little(backend)
    node.send(pool, "too many")
    _run_a_little(backend)
    with pytest.raises(MailboxFull, match="no worker could take the request"):
        node.call(pool, "a call too many")
    info = node.inspect(pool)
    assert info["messages_unhandled"] == "2" and info["messages_forwarded"] == "4"
    assert any("no available worker process. ignored message" in t for t in node.captured.texts())
    assert node.process_info(pool).state is not ProcessState.TERMINATED


def _run_a_little(backend: Any) -> None:
    if backend.name == "sim":
        backend.sim.run_for(0.1)
    else:
        backend.settle()


def test_add_and_remove_workers_from_the_pools_own_handler(backend):
    node = backend.node()
    journal: list[Any] = []
    pool = node.spawn(Workers, journal, 2)
    caller = node.spawn(Caller)
    assert node.call(caller, (pool, ("add", 2))) == 4
    workers = node.call(caller, (pool, ("workers",)))
    assert len(workers) == 4
    assert node.call(caller, (pool, ("remove", 3))) == 1
    backend.settle()
    assert all(w not in node.process_list() for w in workers[:3]) and workers[3] in node.process_list()
    assert isinstance(node.call(caller, (pool, ("remove", 2))), PoolEmpty)
    assert isinstance(node.call(caller, (pool, ("add", 0))), Incorrect)
    assert [node.call(pool, "x")[0] for _ in range(2)] == [workers[3]] * 2


def test_resizing_from_outside_the_pool_is_not_allowed(backend):
    node = backend.node()
    pool_pid = node.spawn(Workers, [])
    behaviour = node._processes[pool_pid.id]
    with pytest.raises(NotAllowed):
        behaviour.add_workers(1)
    with pytest.raises(NotAllowed):
        behaviour.remove_workers(1)


def test_the_workers_go_with_the_pool(backend):
    node = backend.node()
    pool = node.spawn(Workers, [])
    workers = node.process_list()[1:]
    node.kill(pool)
    backend.settle()
    assert node.process_list() == []
    with pytest.raises(ProcessUnknown):
        node.process_info(workers[0])


def test_a_forwarded_call_that_times_out_leaves_no_debt_behind(backend):
    node = backend.node()
    pool = node.spawn(Workers, [], 1)
    (worker,) = node.process_list()[1:]
    with pytest.raises(Timeout):
        node.call(pool, "hold", timeout=0.5)
    w = node._processes[worker.id]
    assert not w._calls_in and not node._processes[pool.id]._calls_in and not node._core_pending


def test_init_must_return_pool_options(backend):
    node = backend.node()

    class Wrong(Pool):
        def init(self, *args: Any) -> Any:
            return None

    with pytest.raises(Incorrect, match="not PoolOptions"):
        node.spawn(Wrong)
    with pytest.raises(Incorrect):
        PoolOptions("not callable")  # type: ignore[arg-type]
    assert PoolOptions(Worker, pool_size=0).pool_size == 3  # Ergo's default for a size below 1


class EventWorker(Worker):
    def handle_event(self, message: Any) -> None:
        self.journal.append((self.pid, "event", message.message))


def test_a_pool_registered_by_name_forwards_calls_and_its_events(backend):
    node = backend.node()
    journal: list[Any] = []
    token = node.register_event("news")

    class Listening(Pool):
        def init(self) -> PoolOptions:
            self.monitor_event(Event("news", node.name))
            return PoolOptions(EventWorker, pool_size=2, worker_args=(journal,))

    pool = node.spawn_register("pool", Listening)
    workers = node.process_list()[1:]
    assert [node.call("pool", i)[0] for i in range(2)] == workers
    node.send_event("news", token, "first")
    node.send_event("news", token, "second")
    backend.settle()
    assert journal == [(workers[0], "event", "first"), (workers[1], "event", "second")]
    assert node.inspect(pool)["messages_forwarded"] == "4"


def test_a_remote_caller_is_answered_by_the_worker_and_told_if_it_dies(cluster):
    from ergo import ProcessID

    a, b = cluster.cluster(2)
    b.spawn_register("pool", Workers, [], 2)
    workers = b.process_list()[1:]
    pool = ProcessID("pool", b.name)
    answers = [a.call(pool, i) for i in range(3)]
    assert [x[0] for x in answers] == [workers[0], workers[1], workers[0]]
    assert all(x[1] == a.pid for x in answers)  # the worker saw the remote caller
    with pytest.raises(ProcessTerminated, match="worker crash"):
        a.call(pool, "crash")
    assert not b.network().remote_calls  # nothing is owed any more
    with pytest.raises(Timeout):
        a.call(pool, "hold", timeout=0.5)  # a worker holds it, owing the remote caller an answer
    holder = next(p for p in (b._processes.get(w.id) for w in b.process_list()) if p is not None and p._calls_in)
    b.network().node(a.name).disconnect()  # the caller's node is gone: nothing is owed any more
    cluster.run_until(lambda: not holder._calls_in)
    assert not b.network().remote_calls


def test_resizing_from_init_is_not_allowed(backend):
    node = backend.node()

    class Eager(Pool):
        def init(self) -> PoolOptions:
            self.add_workers(1)
            return PoolOptions(Worker, worker_args=([],))

    with pytest.raises(NotAllowed, match="nor from init"):
        node.spawn(Eager)

"""Async handlers are asyncio code on the asyncio backend, and a clear error in simulation.

On asyncio an ``async def`` handler (and a meta-process's async ``start``) runs as a task
of the loop: whatever works inside an asyncio task works there (``asyncio.timeout``,
``wait_for``, ``gather``, ``current_task``, aiohttp's client), while the process keeps its
semantics (busy in ``waitresponse`` until the handler returns, released at once when
killed).  In simulation only the runtime's own awaitables can be awaited: anything of
asyncio's is ``NotAllowed`` in that process, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from support import AsyncioBackend, Collector, SimBackend
from test_asyncio_recipes import recipe

from ergo import Actor, MetaBehavior, NotAllowed, ProcessState, ProcessUnknown, Timeout


class Echo(Actor):
    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return request


class Gate(Actor):
    """On "block", waits on an asyncio future nobody completes: calls to it meanwhile get no reply."""

    async def handle_message(self, from_: Any, message: Any) -> None:
        await asyncio.get_running_loop().create_future()


class Probe(Actor):
    """Runs the coroutine function it is called with inside its own async handle_call; a
    message ``(body, to)`` runs ``body`` in handle_message and sends ``to`` what it returned."""

    async def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return await request(self)

    async def handle_message(self, from_: Any, message: Any) -> None:
        body, to = message
        self.send(to, await body(self))


@pytest.fixture
def aio():
    b = AsyncioBackend()
    yield b
    b.close()


def ask(backend: AsyncioBackend, node: Any, body: Any) -> Any:  # noqa: ARG001
    """Call a fresh Probe with ``body`` from outside any process and return the reply."""
    return node.call(node.spawn(Probe), body, timeout=60)


class Held(Actor):
    """Handles nothing until the asyncio future it was sent first is done; answers calls."""

    async def handle_message(self, from_: Any, message: Any) -> None:
        await message

    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return request


def held(node: Any, loop: asyncio.AbstractEventLoop) -> tuple[Any, asyncio.Future]:
    """A process whose replies come only once the returned gate is opened."""
    gate = loop.create_future()
    pid = node.spawn(Held)
    node.send(pid, gate)
    return pid, gate


async def open_later(gate: asyncio.Future) -> None:
    """Open ``gate`` after every task already scheduled has taken its next step."""
    for _ in range(3):
        await asyncio.sleep(0)
    gate.set_result(None)


def spin_until(backend: AsyncioBackend, done: Any, turns: int = 1000) -> bool:
    """Run the loop a turn at a time until ``done()`` (settle() stops at a process that
    waits on an asyncio future, such as a gather's, as it would at one waiting for I/O)."""

    async def spin() -> bool:
        for _ in range(turns):
            if done():
                return True
            await asyncio.sleep(0)
        return done()

    return backend.loop.run_until_complete(spin())


def blocked(node: Any) -> Any:
    """A process that will never answer a call: it sits in a handler that never returns."""
    pid = node.spawn(Gate)
    node.send(pid, "block")
    return pid


# -- asyncio code inside a handler --------------------------------------------------------------


def test_a_handler_runs_as_its_own_asyncio_task(aio):
    node = aio.node()

    async def body(p: Actor) -> Any:
        task = asyncio.current_task()
        await asyncio.sleep(0)
        return isinstance(task, asyncio.Task), task is asyncio.current_task(), id(task)

    first = ask(aio, node, body)
    second = ask(aio, node, body)
    assert first[:2] == (True, True)
    assert first[2] != second[2]  # one task per handler run


def test_asyncio_timeout_around_a_call_that_answers_and_one_that_does_not(aio):
    node = aio.node()
    echo, gate = node.spawn(Echo), blocked(node)

    async def body(p: Actor) -> Any:
        async with asyncio.timeout(60):
            answered = await p.call(echo, "hi")
        try:
            async with asyncio.timeout(0):
                await p.call(gate, "never answered", timeout=3600)
        except TimeoutError:
            return answered, "timed out"
        return answered, "no timeout"

    assert ask(aio, node, body) == ("hi", "timed out")


def test_asyncio_wait_for_takes_a_runtime_call(aio):
    node = aio.node()
    (later, opened), gate = held(node, aio.loop), blocked(node)

    async def body(p: Actor) -> Any:
        opener = asyncio.ensure_future(open_later(opened))
        answered = await asyncio.wait_for(p.call(later, 7), 60)  # still pending when wait_for takes it
        await opener
        try:
            await asyncio.wait_for(p.call(gate, "never answered", timeout=3600), 0)
        except TimeoutError:
            return answered, "timed out"
        return answered, "no timeout"

    assert ask(aio, node, body) == (7, "timed out")


def test_asyncio_gather_of_runtime_calls_and_asyncio_awaitables(aio):
    node = aio.node()
    echos = [node.spawn(Echo) for _ in range(2)]
    later, opened = held(node, aio.loop)

    async def body(p: Actor) -> Any:
        async def nine() -> int:
            await open_later(opened)
            return 9

        calls = [p.call(e, i) for i, e in enumerate(echos)]
        return await asyncio.gather(*calls, p.call(later, "held"), nine())

    assert ask(aio, node, body) == [0, 1, "held", 9]


def test_a_timeout_around_a_gather_of_runtime_calls_cancels_them_cleanly(aio, caplog):
    node = aio.node()
    echo, gate = node.spawn(Echo), blocked(node)

    async def body(p: Actor) -> Any:
        try:
            async with asyncio.timeout(0):
                await asyncio.gather(p.call(echo, 1), p.call(gate, "never answered", timeout=3600))
        except TimeoutError:
            return "timed out", await p.call(echo, "after")
        return "no timeout", None

    assert ask(aio, node, body) == ("timed out", "after")
    aio.settle()
    assert not [r for r in caplog.records if r.name == "asyncio"]  # e.g. "Exception in callback"


def test_tasks_a_handler_starts_and_waits_for_may_call_for_its_process(aio):
    node = aio.node()
    echo = node.spawn(Echo)
    later, opened = held(node, aio.loop)

    async def body(p: Actor) -> Any:
        async def fetch(to: Any, v: Any) -> Any:
            return await p.call(to, v)  # in a task of its own, not the handler's

        async with asyncio.TaskGroup() as group:
            first = group.create_task(fetch(echo, 1))
            group.create_task(open_later(opened))
        both = await asyncio.gather(fetch(echo, 2), fetch(later, 3))
        return first.result(), both

    assert ask(aio, node, body) == (1, [2, 3])


def test_a_calls_own_timeout_still_raises_timeout_inside_a_task(aio):
    node = aio.node()
    gate = blocked(node)

    async def body(p: Actor) -> Any:
        try:
            await p.call(gate, "never answered", timeout=0)
        except Timeout as e:
            return type(e).__name__
        return "answered"

    assert ask(aio, node, body) == "Timeout"


def test_the_handler_is_its_process_at_every_step(aio):
    node = aio.node()
    echo = node.spawn(Echo)

    async def body(p: Actor) -> Any:
        await asyncio.sleep(0)  # an asyncio await: the task, not the runtime, resumed it
        try:
            node.call(echo, "blocking")  # only outside any process
        except NotAllowed:
            refused = True
        else:
            refused = False
        return refused, await p.call(echo, "after an asyncio await")

    assert ask(aio, node, body) == (True, "after an asyncio await")


def test_a_process_in_an_asyncio_await_is_busy_and_handles_the_rest_afterwards(aio):
    node = aio.node()
    loop = aio.loop
    gate = loop.create_future()
    journal: list = []

    class Worker(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            if message == "wait":
                await gate
            journal.append(message)

    pid = node.spawn(Worker)
    node.send(pid, "wait")
    for m in ("a", "b"):
        node.send(pid, m)
    aio.settle()
    info = node.process_info(pid)
    assert info.state is ProcessState.WAIT_RESPONSE and info.mailbox_queues["main"] == 2 and journal == []
    gate.set_result(None)
    aio.settle()
    assert journal == ["wait", "a", "b"]
    assert node.process_info(pid).state is ProcessState.SLEEP


def test_an_async_meta_process_start_runs_as_an_asyncio_task(aio):
    node = aio.node()
    collector = node.spawn(Collector)

    class Meta(MetaBehavior):
        async def start(self) -> None:
            async with asyncio.timeout(60):
                await asyncio.sleep(0)
            self.process.send(collector, isinstance(asyncio.current_task(), asyncio.Task))

    class Owner(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            self.spawn_meta(Meta())

    node.send(node.spawn(Owner), "go")
    assert node.call(collector, ("wait", 1)) == [True]


@contextlib.contextmanager
def hello_server(loop: asyncio.AbstractEventLoop) -> Iterator[str]:
    """An aiohttp server on loopback answering ``/hello?who=x`` with ``hello x``; yields its URL."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.query['who']}")

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hello"
    finally:
        loop.run_until_complete(runner.cleanup())


def test_a_handler_fetches_from_an_aiohttp_server_on_loopback(aio):
    node = aio.node()
    with hello_server(aio.loop) as url:
        async def body(p: Actor) -> Any:
            async with aiohttp.ClientSession() as session:
                async with asyncio.timeout(30):
                    async with session.get(url, params={"who": "actor"}) as r:
                        return r.status, await r.text()

        assert ask(aio, node, body) == (200, "hello actor")


def test_the_fetcher_recipe_of_the_asyncio_doc_runs_as_written(aio):
    ns = recipe("fetcher")
    node = aio.node()
    with hello_server(aio.loop) as url:
        fetcher = node.spawn(ns["Fetcher"])
        assert node.call(fetcher, f"{url}?who=doc", timeout=60) == (200, "hello doc")
        echo = node.spawn(Echo)
        node.send(fetcher, (echo, echo))
        assert spin_until(aio, lambda: any("replies ['ping', 'ping']" in t for t in node.captured.texts()))


# -- what a handler raises, and how it ends -------------------------------------------------------


def test_a_cancelled_error_of_the_handler_itself_is_a_panic_of_its_process(aio):
    node = aio.node()
    echo = node.spawn(Echo)

    class Canceller(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            asyncio.current_task().cancel()
            await asyncio.sleep(0)

    pid = node.spawn(Canceller)
    node.send(pid, "go")
    aio.settle()
    with pytest.raises(ProcessUnknown):
        node.process_info(pid)
    assert any("CancelledError" in t for t in node.captured.texts())
    assert node.call(echo, "still here") == "still here"


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_a_handler_suspended_in_asyncio_sleep_is_released_at_once(aio, how, caplog):
    node = aio.node()
    journal: list = []

    class Sleeper(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            try:
                await asyncio.sleep(3600)
                journal.append("woke")
            finally:
                journal.append("finally")

        def terminate(self, reason: BaseException) -> None:
            journal.append("terminate")

    pid = node.spawn(Sleeper)
    node.send(pid, "go")
    aio.settle()
    assert node.process_info(pid).state is ProcessState.WAIT_RESPONSE
    ref = weakref.ref(node._processes[pid.id])
    if how == "kill":
        node.kill(pid)
        assert journal == ["finally"]  # at once, inside kill; a zombee gets no terminate
    else:
        node.stop()
        assert journal == ["finally", "terminate"]  # its finally blocks first, as a sleep's
    gc.collect()
    assert ref() is None
    aio.settle()
    loop = aio.loop
    loop.run_until_complete(asyncio.sleep(0))
    assert not [t for t in asyncio.all_tasks(loop) if not t.done()]  # the task ended too
    assert "woke" not in journal
    assert not [r for r in caplog.records if r.name == "asyncio"]


def test_a_killed_handler_whose_cleanup_awaits_finishes_it_in_its_task(aio, caplog):
    node = aio.node()
    journal: list = []

    class Sleeper(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                journal.append("cancelled")
                raise
            finally:
                await asyncio.sleep(0)  # asyncio cleanup awaits (an `async with` exit does)
                journal.append("cleanup done")

    pid = node.spawn(Sleeper)
    node.send(pid, "go")
    aio.settle()
    node.kill(pid)
    assert journal == ["cancelled"]
    assert pid.id not in node._processes  # the process is gone at once
    aio.loop.run_until_complete(asyncio.sleep(0))
    aio.settle()
    assert journal == ["cancelled", "cleanup done"]
    assert not [t for t in asyncio.all_tasks(aio.loop) if not t.done()]
    assert not [r for r in caplog.records if r.name == "asyncio"]


def test_a_handler_that_kills_its_own_process_is_cancelled_at_its_next_await(aio):
    node = aio.node()
    journal: list = []

    class Suicidal(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            try:
                self.node.kill(self.pid)
                journal.append("went on to the await")
                await asyncio.sleep(3600)
                journal.append("woke")
            finally:
                journal.append("finally")

    pid = node.spawn(Suicidal)
    node.send(pid, "go")
    aio.settle()
    assert journal == ["went on to the await", "finally"]
    assert pid.id not in node._processes


def test_a_handler_killed_before_its_task_started_never_runs(aio, caplog):
    node = aio.node()
    journal: list = []

    class Worker(Actor):
        async def handle_message(self, from_: Any, message: Any) -> None:
            journal.append("ran")

    pid = node.spawn(Worker)
    node.send(pid, "go")
    node.scheduler._ready.drain()  # the message is dispatched: its task is made, not run yet
    assert node.process_info(pid).state is ProcessState.WAIT_RESPONSE
    node.kill(pid)
    aio.settle()
    aio.loop.run_until_complete(asyncio.sleep(0))
    assert journal == []
    assert not [t for t in asyncio.all_tasks(aio.loop) if not t.done()]
    assert not [r for r in caplog.records if r.name == "asyncio"]


def test_a_meta_process_killed_in_an_asyncio_await_of_its_start_is_released_at_once(aio):
    node = aio.node()
    journal: list = []

    class Meta(MetaBehavior):
        async def start(self) -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                journal.append("start's finally")

        def terminate(self, reason: BaseException) -> None:
            journal.append("terminate")

    class Owner(Actor):
        def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
            return self.spawn_meta(Meta())

    owner = node.spawn(Owner)
    alias = node.call(owner, "spawn")
    aio.settle()
    aio.loop.run_until_complete(asyncio.sleep(0))  # start() is in its sleep
    assert node.meta_info(alias) is not None
    node.kill(owner)  # a meta-process dies with its owner
    assert journal == ["start's finally", "terminate"]


def test_each_handler_task_starts_with_a_context_of_its_own(aio):
    import contextvars

    node = aio.node()
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    collector = node.spawn(Collector)

    async def body(p: Actor) -> Any:
        seen = var.get()
        var.set("set by the handler")
        return seen

    async def sender() -> None:
        var.set("set by the sender")
        node.send(node.spawn(Probe), (body, collector))
        node.send(node.spawn(Probe), (body, collector))

    aio.loop.run_until_complete(sender())
    assert node.call(collector, ("wait", 2)) == ["unset", "unset"]


def test_no_asyncio_warning_when_the_loop_closes_with_a_killed_handler(caplog):
    backend = AsyncioBackend()
    node = backend.node()
    pid = node.spawn(Gate)
    node.send(pid, "block")
    backend.settle()
    node.kill(pid)  # its task's wake-up is queued; the loop closes before it runs
    backend.close()
    gc.collect()
    assert not [r for r in caplog.records if r.name == "asyncio"]


# -- simulation: only the runtime's own awaitables -------------------------------------------------


@pytest.mark.parametrize("what", ["asyncio.sleep(1)", "asyncio.sleep(0)", "an asyncio future", "wait_for"])
@pytest.mark.filterwarnings("ignore:the call to .* was never awaited:RuntimeWarning")  # wait_for never got to it
def test_in_simulation_awaiting_asyncio_is_not_allowed_in_that_process(what):
    backend = SimBackend()
    node = backend.node()
    echo = node.spawn(Echo)

    async def body(p: Actor) -> Any:
        if what == "asyncio.sleep(1)":
            await asyncio.sleep(1)
        elif what == "asyncio.sleep(0)":
            await asyncio.sleep(0)
        elif what == "an asyncio future":
            await asyncio.get_running_loop().create_future()
        else:
            await asyncio.wait_for(p.call(echo, 1), 1)
        return "awaited"

    collector = node.spawn(Collector)
    node.send(node.spawn(Probe), (body, collector))
    backend.settle()
    assert node.call(collector, "messages") == []  # the handler panicked where it awaited
    panics = node.captured.texts()
    assert any("NotAllowed" in t and "only the runtime's own awaitables" in t and "in simulation" in t
               for t in panics), panics
    assert node.call(echo, "still here") == "still here"
    backend.close()


def test_in_simulation_an_async_meta_start_awaiting_asyncio_is_not_allowed():
    backend = SimBackend()
    node = backend.node()

    class Meta(MetaBehavior):
        async def start(self) -> None:
            await asyncio.sleep(1)

    class Owner(Actor):
        def handle_message(self, from_: Any, message: Any) -> None:
            self.spawn_meta(Meta())

    node.send(node.spawn(Owner), "go")
    backend.settle()
    texts = node.captured.texts()
    assert any("NotAllowed" in t and "in simulation" in t for t in texts), texts
    backend.close()


def test_simulation_leaves_no_stand_in_loop_behind():
    backend = SimBackend()
    node = backend.node()

    async def body(p: Actor) -> Any:
        await p.sleep(1)
        return "slept"

    assert node.call(node.spawn(Probe), body) == "slept"
    with pytest.raises(RuntimeError, match="no running event loop"):
        asyncio.get_running_loop()
    backend.close()


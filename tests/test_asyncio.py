"""The two ways to run a node on asyncio: inside an asyncio program, and as a plain script."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import net
from ergo import (
    Actor,
    LogOptions,
    NodeOptions,
    NoReply,
    NotAllowed,
    TerminateReasonShutdown,
    Timeout,
    unwrap_reason,
)

ROOT = Path(__file__).resolve().parent.parent


def test_node_inside_a_running_asyncio_program():
    journal: list = []

    class Worker(Actor):
        async def handle_call(self, from_, ref, request):
            fut = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(fut.set_result, request * 2)
            value = await fut  # an asyncio future: allowed on this backend
            await asyncio.sleep(0)
            return value

        def terminate(self, reason):
            journal.append(reason)

    async def main() -> None:
        node = net.start_node("inner@localhost", NodeOptions(log=LogOptions(default_logger=False)))
        pid = node.spawn(Worker)
        assert await node.call_async(pid, 21) == 42
        with pytest.raises(NotAllowed, match="await"):
            node.call(pid, 1)  # blocking on a running loop is refused with a hint
        node.stop()  # returns at once on a running loop
        await node.wait_async()
        assert not node.is_alive()

    asyncio.run(main())
    assert [unwrap_reason(r) for r in journal] == [TerminateReasonShutdown]


def test_call_async_in_asyncio_gather_wait_for_and_cancellation():
    class Holder(Actor):
        def init(self) -> None:
            self.held: list = []

        def handle_call(self, from_, ref, request):
            if request == "hold":
                self.held.append((from_, ref))
                return NoReply
            return request

        def handle_message(self, from_, message):
            for f, r in self.held:
                self.send_response(f, r, "late")

    async def main() -> None:
        node = net.start_node("gather@localhost", NodeOptions(log=LogOptions(default_logger=False)))
        pid = node.spawn(Holder)
        assert await asyncio.gather(*(node.call_async(pid, i) for i in range(50))) == list(range(50))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(node.call_async(pid, "hold", timeout=3600), 0.001)
        task = asyncio.ensure_future(node.call_async(pid, "hold", timeout=3600))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        node.send(pid, "answer the held ones")  # the late replies find nobody: dropped
        assert await node.call_async(pid, "still serving") == "still serving"
        node.stop()
        await node.wait_async()

    asyncio.run(main())


def test_settle_waits_for_queued_work_and_its_consequences_not_for_timers():
    got: list = []

    class Relay(Actor):
        def init(self, to) -> None:
            self.to = to

        async def handle_message(self, from_, message):
            await asyncio.sleep(0)  # a handler step queued on the loop is work too
            if self.to is None:
                got.append(message)
            else:
                self.send(self.to, message + 1)

    class Sleeper(Actor):
        async def handle_message(self, from_, message):
            await self.sleep(3600)

    class Spinner(Actor):
        def handle_message(self, from_, message):
            self.send(self.pid, message)  # always has work: never idle

    async def main() -> None:
        node = net.start_node("settle@localhost", NodeOptions(log=LogOptions(default_logger=False)))
        last = node.spawn(Relay, None)
        first = node.spawn(Relay, node.spawn(Relay, last))
        node.send(first, 1)
        assert not node.is_idle()
        await net.settle(node)
        assert got == [3] and node.is_idle()
        node.send(node.spawn(Sleeper), "sleep")  # a timer is not work: settle does not wait for it
        await net.settle(node)
        assert node.is_idle() and got == [3]
        node.send(node.spawn(Spinner), "spin")
        with pytest.raises(Timeout, match="still busy after 50 turns"):
            await net.settle(node, turns=50)
        node.stop_force()

    asyncio.run(main())


SCRIPT = textwrap.dedent(
    """
    import sys
    import net
    from ergo import Actor

    class Worker(Actor):
        def terminate(self, reason):
            print("worker terminated:", reason, flush=True)

    node = net.start_node("script@localhost")
    node.spawn(Worker)
    print("ready", flush=True)
    stopped = node.wait()
    print("wait returned", stopped, flush=True)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_plain_script_waits_and_stops_gracefully_on_a_signal(tmp_path, sig):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={"PYTHONPATH": str(ROOT)})
    try:
        while (line := proc.stdout.readline()) and line.strip() != "ready":
            pass  # the default logger's lines come first
        assert line.strip() == "ready", proc.stderr.read()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"got {sig.name}: stopping gracefully" in out
    assert "worker terminated: <" in out and ">: shutdown" in out  # ExitSignal(parent, shutdown)
    assert "wait returned True" in out


def test_no_fault_point_fires_on_asyncio_and_its_scheduler_says_so_up_front():
    """``Scheduler.may_buggify`` lets a hot path skip ``buggify`` altogether: an asyncio
    scheduler says False and answers False for every point; simulation's says True (its
    points are switched on while it runs)."""
    from sim.faults import POINTS
    from sim.scheduler import SimScheduler

    async def main() -> None:
        node = net.start_node("faults@localhost", handle_signals=False)
        try:
            sched = node._scheduler
            assert sched.may_buggify is False
            assert not any(sched.buggify(point) for point in POINTS)
        finally:
            node.stop()

    asyncio.run(main())
    assert SimScheduler.may_buggify is True


def test_a_runtime_future_tells_an_asyncio_task_the_running_loop_and_raises_where_none_runs():
    """asyncio's own ``get_running_loop`` answers ``Future.get_loop`` (a task asks it at
    every await of a call): the running loop inside one, asyncio's RuntimeError outside."""
    from ergo.scheduler import Future

    fut: Future[int] = Future()

    async def main() -> None:
        assert fut.get_loop() is asyncio.get_running_loop()
        asyncio.get_running_loop().call_soon(fut.set_result, 7)
        assert await fut == 7  # a task awaits it

    asyncio.run(main())
    with pytest.raises(RuntimeError, match="no running event loop"):
        fut.get_loop()

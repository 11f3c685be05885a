"""Local benchmarks: the node against raw baselines run in the same process (SPEC §10).

Run from the repository root::

    python bench/local.py            # the full run (well under a minute on 2 cores)
    python bench/local.py --quick    # a few-second smoke run (small sizes, one repeat)
    python bench/local.py --only send,call

Each result is one JSON object per line on stdout::

    {"name": ..., "value": ..., "unit": ..., "baseline": ..., "baseline_name": ...,
     "ratio": value / baseline, "target": ..., "target_on": "ratio" | "value",
     "target_op": ">=" | "<=", "met": true | false}

and a human-readable summary goes to stderr.  Every figure is the best of a few runs.
These are benchmarks, never tests: tests/test_bench_smoke.py only checks that they run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

if __package__ in (None, ""):  # run as a script: import the repository's packages
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import simpy  # noqa: E402

import ergo  # noqa: E402
import net  # noqa: E402
import sim  # noqa: E402
from ergo import LogOptions, NodeOptions  # noqa: E402

try:
    import pykka
except ImportError:  # pragma: no cover - pykka is the optional "bench" extra
    pykka = None

__all__ = [
    "SIZES",
    "QUICK_SIZES",
    "bench_call",
    "bench_memory",
    "bench_send",
    "bench_sim",
    "bench_spawn",
    "main",
    "result",
]

#: messages / calls / processes per measurement
SIZES = {
    "send": 300_000,
    "send_pykka": 60_000,
    "call": 40_000,
    "call_pykka": 6_000,
    "spawn": 100_000,
    "memory": 100_000,
    "sim": 300_000,
    "monitor_rounds": 100_000,
    "fanout_subscribers": 10_000,
    "fanout_events": 20,
    "restarts": 50_000,
}
QUICK_SIZES = {
    "send": 30_000,
    "send_pykka": 5_000,
    "call": 4_000,
    "call_pykka": 1_000,
    "spawn": 10_000,
    "memory": 10_000,
    "sim": 30_000,
    "monitor_rounds": 10_000,
    "fanout_subscribers": 10_000,
    "fanout_events": 2,
    "restarts": 5_000,
}

#: a sender yields to the loop after this many messages (the raw producer does the same)
CHUNK = 1000

OPTIONS = NodeOptions(log=LogOptions(default_logger=False))


def result(name: str, value: float, unit: str, baseline: float, baseline_name: str,
           target: float | None = None, target_on: str = "ratio", target_op: str = ">=") -> dict[str, Any]:
    """One JSON line; ``ratio`` is value / baseline, the target applies to ``target_on``."""
    ratio = value / baseline if baseline else float("nan")
    r: dict[str, Any] = {
        "name": name,
        "value": round(value, 1),
        "unit": unit,
        "baseline": round(baseline, 1),
        "baseline_name": baseline_name,
        "ratio": round(ratio, 3),
    }
    if target is not None:
        got = ratio if target_on == "ratio" else value
        r.update(target=target, target_on=target_on, target_op=target_op,
                 met=bool(got >= target if target_op == ">=" else got <= target))
    return r


def best_rate(fn: Callable[[int], float], n: int, repeats: int) -> float:
    """Best of ``repeats`` runs of ``fn(n)`` (which returns the seconds it took), as n per second."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        best = min(best, fn(n))
    return n / best


# -- asyncio helpers ------------------------------------------------------------------------


def _fresh_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    loop.close()
    asyncio.set_event_loop(None)


def _node(name: str = "bench@localhost") -> tuple[ergo.Node, asyncio.AbstractEventLoop]:
    node = net.start_node(name, OPTIONS, handle_signals=False)  # on a new loop: none is running
    return node, node.scheduler.loop


def _done_node(node: ergo.Node, loop: asyncio.AbstractEventLoop) -> None:
    node.stop_force()
    _close_loop(loop)


# -- 1. one-way send ------------------------------------------------------------------------


class _Countdown(ergo.Actor):
    """An actor that counts ``n`` down and calls ``done`` at the end (its subclass says when)."""

    def init(self, n: int, done: Callable[[], None]) -> None:
        self.left = n
        self.done = done


class _Receiver(_Countdown):
    def handle_message(self, from_: Any, message: Any) -> None:
        self.left -= 1
        if not self.left:
            self.done()


class _Sender(ergo.Actor):
    """Sends ``n`` messages to ``to``, ``CHUNK`` per handler run (it sends itself 'more')."""

    def init(self, to: ergo.PID, n: int) -> None:
        self.to = to
        self.left = n

    def handle_message(self, from_: Any, message: Any) -> None:
        send, to = self.send, self.to
        k = min(CHUNK, self.left)
        self.left -= k
        for i in range(k):
            send(to, i)
        if self.left:
            send(self._pid, "more")


def ergo_send(n: int) -> float:
    node, loop = _node()
    try:
        done = loop.create_future()
        rx = node.spawn(_Receiver, n, lambda: done.set_result(None))
        tx = node.spawn(_Sender, rx, n)
        t0 = time.perf_counter()
        node.send(tx, "go")
        loop.run_until_complete(done)
        return time.perf_counter() - t0
    finally:
        _done_node(node, loop)


def raw_queue_send(n: int) -> float:
    loop = _fresh_loop()
    try:
        async def run() -> float:
            q: asyncio.Queue = asyncio.Queue()

            async def producer() -> None:
                put = q.put
                sent = 0
                while sent < n:
                    k = min(CHUNK, n - sent)
                    for i in range(k):
                        await put(i)
                    sent += k
                    await asyncio.sleep(0)

            async def consumer() -> None:
                get = q.get
                for _ in range(n):
                    await get()

            t0 = time.perf_counter()
            await asyncio.gather(producer(), consumer())
            return time.perf_counter() - t0

        return loop.run_until_complete(run())
    finally:
        _close_loop(loop)


def pykka_tell(n: int) -> float:
    class Counter(pykka.ThreadingActor):
        def __init__(self, n: int, event: threading.Event) -> None:
            super().__init__()
            self.left = n
            self.event = event

        def on_receive(self, message: Any) -> None:
            self.left -= 1
            if not self.left:
                self.event.set()

    event = threading.Event()
    ref = Counter.start(n, event)
    try:
        tell = ref.tell
        t0 = time.perf_counter()
        for i in range(n):
            tell(i)
        event.wait()
        return time.perf_counter() - t0
    finally:
        ref.stop()


def bench_send(sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    n = sizes["send"]
    ours = best_rate(ergo_send, n, repeats)
    raw = best_rate(raw_queue_send, n, repeats)
    out = [result("send.local.asyncio", ours, "msgs/s", raw, "asyncio.Queue await put/get, 2 tasks", 0.5)]
    if pykka is not None:
        theirs = best_rate(pykka_tell, sizes["send_pykka"], repeats)
        out.append(result("send.local.asyncio.vs_pykka", ours, "msgs/s", theirs, "pykka ThreadingActor tell", 5.0))
    return out


# -- 2. call round trip ----------------------------------------------------------------------


class _Echo(ergo.Actor):
    def handle_call(self, from_: Any, ref: Any, request: Any) -> Any:
        return request


class _Caller(ergo.Actor):
    """On 'go', makes ``n`` calls to ``to`` one after the other from an async handler."""

    def init(self, to: ergo.PID, n: int, done: Callable[[], None]) -> None:
        self.to = to
        self.n = n
        self.done = done

    async def handle_message(self, from_: Any, message: Any) -> None:
        call, to = self.call, self.to
        for i in range(self.n):
            await call(to, i)
        self.done()


def ergo_call(n: int) -> float:
    node, loop = _node()
    try:
        done = loop.create_future()
        echo = node.spawn(_Echo)
        caller = node.spawn(_Caller, echo, n, lambda: done.set_result(None))
        t0 = time.perf_counter()
        node.send(caller, "go")
        loop.run_until_complete(done)
        return time.perf_counter() - t0
    finally:
        _done_node(node, loop)


def ergo_call_async(n: int) -> float:
    node, loop = _node()
    try:
        echo = node.spawn(_Echo)

        async def run() -> float:
            call = node.call_async
            t0 = time.perf_counter()
            for i in range(n):
                await call(echo, i)
            return time.perf_counter() - t0

        return loop.run_until_complete(run())
    finally:
        _done_node(node, loop)


def raw_queue_pingpong(n: int) -> float:
    loop = _fresh_loop()
    try:
        async def run() -> float:
            req: asyncio.Queue = asyncio.Queue()
            rep: asyncio.Queue = asyncio.Queue()

            async def server() -> None:
                for _ in range(n):
                    await rep.put(await req.get())

            async def client() -> None:
                for i in range(n):
                    await req.put(i)
                    await rep.get()

            t0 = time.perf_counter()
            await asyncio.gather(server(), client())
            return time.perf_counter() - t0

        return loop.run_until_complete(run())
    finally:
        _close_loop(loop)


def pykka_ask(n: int) -> float:
    class Echo(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> Any:
            return message

    ref = Echo.start()
    try:
        ask = ref.ask
        t0 = time.perf_counter()
        for i in range(n):
            ask(i)
        return time.perf_counter() - t0
    finally:
        ref.stop()


def bench_call(sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    n = sizes["call"]
    ours = best_rate(ergo_call, n, repeats)
    raw = best_rate(raw_queue_pingpong, n, repeats)
    via_node = best_rate(ergo_call_async, n, repeats)
    out = [
        result("call.local.asyncio", ours, "calls/s", raw, "asyncio.Queue ping-pong, 2 tasks", 0.7),
        result("call.local.asyncio.node_call_async", via_node, "calls/s", raw,
               "asyncio.Queue ping-pong, 2 tasks", 0.7),
    ]
    if pykka is not None:
        theirs = best_rate(pykka_ask, sizes["call_pykka"], repeats)
        out.append(result("call.local.asyncio.vs_pykka", ours, "calls/s", theirs, "pykka ThreadingActor ask", 5.0))
    return out


# -- 3. spawn + terminate --------------------------------------------------------------------


class _Idle(ergo.Actor):
    pass


def ergo_spawn_kill(n: int) -> float:
    node, loop = _node()
    try:
        spawn, kill = node.spawn, node.kill
        t0 = time.perf_counter()
        for _ in range(n):
            kill(spawn(_Idle))
        return time.perf_counter() - t0
    finally:
        _done_node(node, loop)


def raw_task_spawn(n: int) -> float:
    loop = _fresh_loop()
    try:
        async def noop() -> None:
            pass

        async def run() -> float:
            create = loop.create_task
            t0 = time.perf_counter()
            last = None
            for _ in range(n):
                last = create(noop())
            await last  # tasks run in creation order: the last done means all are
            return time.perf_counter() - t0

        return loop.run_until_complete(run())
    finally:
        _close_loop(loop)


def bench_spawn(sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    n = sizes["spawn"]
    ours = best_rate(ergo_spawn_kill, n, repeats)
    raw = best_rate(raw_task_spawn, n, repeats)
    return [result("spawn_kill.local", ours, "processes/s", raw,
                   "asyncio create_task(noop()) run to completion", 100_000, "value")]


# -- 4. memory per idle process ----------------------------------------------------------------


def _traced(make: Callable[[], Any]) -> int:
    """Bytes still allocated after ``make()`` (what it returns is kept alive meanwhile)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = make()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del keep
    return after - before


def ergo_idle_bytes(n: int) -> float:
    node, loop = _node()
    try:
        node.spawn(_Idle)  # the first spawn warms caches (code objects, interned strings)

        def make() -> None:
            spawn = node.spawn
            for _ in range(n):
                spawn(_Idle)

        return _traced(make) / n
    finally:
        _done_node(node, loop)


def raw_task_idle_bytes(n: int) -> float:
    loop = _fresh_loop()
    try:
        fut = loop.create_future()

        async def idle() -> None:
            await fut

        async def start(n: int) -> list:
            tasks = [loop.create_task(idle()) for _ in range(n)]
            await asyncio.sleep(0)  # every task now sits in its await
            return tasks

        loop.run_until_complete(start(1))

        def make() -> list:
            return loop.run_until_complete(start(n))

        size = _traced(make) / n
        fut.set_result(None)
        loop.run_until_complete(asyncio.sleep(0))
        return size
    finally:
        _close_loop(loop)


def bench_memory(sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    n = sizes["memory"]
    ours = ergo_idle_bytes(n)
    raw = raw_task_idle_bytes(n)
    return [result(f"memory.idle_process.{n}", ours, "bytes/process", raw,
                   "idle asyncio.Task awaiting a future", 1536, "value", "<=")]


# -- 5. simulation throughput ------------------------------------------------------------------


class _Ping(ergo.Actor):
    """Bounces a counter with its peer until it reaches zero."""

    def init(self, counter: list) -> None:
        self.counter = counter

    def handle_message(self, from_: Any, message: Any) -> None:
        self.counter[0] += 1
        if type(message) is tuple:  # ("serve", peer, count): start the rally
            self.send(message[1], message[2])
        elif message:
            self.send(from_, message - 1)


#: ping-pong pairs running at once in the simulation
SIM_PAIRS = 100


def ergo_sim(n: int) -> float:
    s = sim.Sim(1)
    node = s.start_node("bench@localhost", OPTIONS)
    counter = [0]
    per_pair = n // SIM_PAIRS
    for _ in range(SIM_PAIRS):
        a = node.spawn(_Ping, counter)
        b = node.spawn(_Ping, counter)
        node.send(a, ("serve", b, per_pair - 1))
    t0 = time.perf_counter()
    s.run()
    elapsed = time.perf_counter() - t0
    assert counter[0] == (per_pair + 1) * SIM_PAIRS, counter
    node.stop_force()
    return elapsed * n / counter[0]  # seconds per n messages


def raw_simpy_timeouts(n: int) -> float:
    env = simpy.Environment()
    per = n // SIM_PAIRS

    def proc() -> Any:
        timeout = env.timeout
        for _ in range(per):
            yield timeout(0)

    for _ in range(SIM_PAIRS):
        env.process(proc())
    t0 = time.perf_counter()
    env.run()
    return (time.perf_counter() - t0) * n / (per * SIM_PAIRS)


def bench_sim(sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    n = sizes["sim"]
    ours = best_rate(ergo_sim, n, repeats)
    raw = best_rate(raw_simpy_timeouts, n, repeats)
    return [result("sim.messages_per_wall_s", ours, "msgs/s", raw,
                   f"simpy: {SIM_PAIRS} processes yielding env.timeout(0)", 200_000, "value")]


# -- main --------------------------------------------------------------------------------------

# -- 6. pub/sub: spawn + monitor + exit + down, and event fan-out ------------------------------


class _MonitorLooper(_Countdown):
    """One round: spawn a process, monitor it, send it an exit, receive its down; repeat."""

    def handle_message(self, from_: Any, message: Any) -> None:
        if not self.left:
            self.done()
            return
        self.left -= 1
        target = self.spawn(_Idle)
        self.monitor(target)
        self.send_exit(target, ergo.TerminateReasonNormal)


def ergo_monitor_rounds(n: int) -> float:
    node, loop = _node()
    try:
        finished = loop.create_future()
        looper = node.spawn(_MonitorLooper, n, lambda: finished.set_result(None))
        t0 = time.perf_counter()
        node.send(looper, "go")
        loop.run_until_complete(finished)
        return time.perf_counter() - t0
    finally:
        _done_node(node, loop)


def raw_task_watch_rounds(n: int) -> float:
    """The asyncio analogue: create a task, watch it with a done callback, cancel it, next."""
    loop = _fresh_loop()
    try:
        async def idle(fut: asyncio.Future) -> None:
            await fut

        async def run() -> float:
            finished = loop.create_future()
            left = [n]

            def round_(_task: Any = None) -> None:
                if not left[0]:
                    finished.set_result(None)
                    return
                left[0] -= 1
                task = loop.create_task(idle(loop.create_future()))
                task.add_done_callback(round_)
                task.cancel()

            t0 = time.perf_counter()
            round_()
            await finished
            return time.perf_counter() - t0

        return loop.run_until_complete(run())
    finally:
        _close_loop(loop)


class _Subscriber(ergo.Actor):
    def init(self, event: ergo.Event, counter: list, total: int, done: Callable[[], None]) -> None:
        self.monitor_event(event)
        self.counter, self.total, self.done = counter, total, done

    def handle_event(self, message: Any) -> None:
        self.counter[0] += 1
        if self.counter[0] == self.total:
            self.done()


def ergo_fanout(subscribers: int, events: int) -> float:
    node, loop = _node()
    try:
        token = node.register_event("ticks")
        event = ergo.Event("ticks", node.name)
        finished = loop.create_future()
        counter = [0]
        for _ in range(subscribers):
            node.spawn(_Subscriber, event, counter, subscribers * events, lambda: finished.set_result(None))
        t0 = time.perf_counter()
        for i in range(events):
            node.send_event("ticks", token, i)
        loop.run_until_complete(finished)
        return time.perf_counter() - t0
    finally:
        _done_node(node, loop)


def raw_queue_fanout(subscribers: int, events: int) -> float:
    """The asyncio analogue: one queue and one consumer task per subscriber."""
    loop = _fresh_loop()
    try:
        async def run() -> float:
            total = subscribers * events
            count = [0]
            finished = loop.create_future()

            async def consume(q: asyncio.Queue) -> None:
                while True:
                    await q.get()
                    count[0] += 1
                    if count[0] == total:
                        finished.set_result(None)

            queues = [asyncio.Queue() for _ in range(subscribers)]
            tasks = [loop.create_task(consume(q)) for q in queues]
            await asyncio.sleep(0)
            t0 = time.perf_counter()
            for i in range(events):
                for q in queues:
                    q.put_nowait(i)
            await finished
            elapsed = time.perf_counter() - t0
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return elapsed

        return loop.run_until_complete(run())
    finally:
        _close_loop(loop)


def bench_pubsub(sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    n = sizes["monitor_rounds"]
    ours = best_rate(ergo_monitor_rounds, n, repeats)
    raw = best_rate(raw_task_watch_rounds, n, repeats)
    subs, events = sizes["fanout_subscribers"], sizes["fanout_events"]
    deliveries = subs * events
    fan = best_rate(lambda _n: ergo_fanout(subs, events), deliveries, repeats)
    raw_fan = best_rate(lambda _n: raw_queue_fanout(subs, events), deliveries, repeats)
    return [
        result("spawn_monitor_exit_down.local", ours, "rounds/s", raw,
               "asyncio create_task + add_done_callback + cancel", 100_000, "value"),
        result(f"event_fanout.local.{subs}_subscribers", fan, "deliveries/s", raw_fan,
               "asyncio: one Queue + consumer task per subscriber, put_nowait to each"),
    ]


# -- 7. supervision: a crashed child restarted and serving again ---------------------------------


class _Serving(ergo.Actor):
    """A supervised child: once (re)started it tells the looper it serves; told to, it
    crashes (an abnormal exit, which its supervisor restarts; a panic would also time the
    logging of its traceback)."""

    def init(self, looper: ergo.PID) -> None:
        self.send(looper, "serving")

    def handle_message(self, from_: Any, message: Any) -> None:
        raise _CRASH


_CRASH = ergo.TerminateReason("crash")


class _RestartLooper(_Countdown):
    """One round: a child says it serves; the looper tells it to crash; its supervisor restarts it."""

    def handle_message(self, from_: Any, message: Any) -> None:
        if not self.left:
            self.done()
            return
        self.left -= 1
        self.send(from_, "crash")


class _OneChild(ergo.Supervisor):
    def init(self, looper: ergo.PID, n: int) -> ergo.SupervisorSpec:
        return ergo.SupervisorSpec(
            children=[ergo.SupervisorChildSpec("serving", _Serving, (looper,))],
            restart=ergo.SupervisorRestart(strategy="permanent", intensity=n + 1, period=3600.0),
        )


def ergo_restart_rounds(n: int) -> float:
    node, loop = _node()
    try:
        finished = loop.create_future()
        looper = node.spawn(_RestartLooper, n, lambda: finished.set_result(None))
        t0 = time.perf_counter()
        node.spawn(_OneChild, looper, n)
        loop.run_until_complete(finished)
        return time.perf_counter() - t0
    finally:
        _done_node(node, loop)


def raw_task_restart_rounds(n: int) -> float:
    """The asyncio analogue: a task that raises; its done callback (the "supervisor") sees
    the exception and creates the next one."""
    loop = _fresh_loop()
    try:
        async def crash() -> None:
            raise RuntimeError("crash")

        async def run() -> float:
            finished = loop.create_future()
            left = [n]

            def restart(task: Any = None) -> None:
                if task is not None:
                    task.exception()  # retrieved, as a supervisor would
                if not left[0]:
                    finished.set_result(None)
                    return
                left[0] -= 1
                loop.create_task(crash()).add_done_callback(restart)

            t0 = time.perf_counter()
            restart()
            await finished
            return time.perf_counter() - t0

        return loop.run_until_complete(run())
    finally:
        _close_loop(loop)


def bench_supervisor(sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    n = sizes["restarts"]
    ours = best_rate(ergo_restart_rounds, n, repeats)
    raw = best_rate(raw_task_restart_rounds, n, repeats)
    return [result("supervisor_restart.local", ours, "restarts/s", raw,
                   "asyncio create_task of a raising coroutine + done callback that starts the next")]


BENCHES = {
    "send": bench_send,
    "call": bench_call,
    "spawn": bench_spawn,
    "memory": bench_memory,
    "sim": bench_sim,
    "pubsub": bench_pubsub,
    "supervisor": bench_supervisor,
}


def _summary(results: list[dict[str, Any]], elapsed: float) -> str:
    lines = [f"ergonode local benchmarks ({elapsed:.1f} s, Python {sys.version.split()[0]}, "
             f"{os.cpu_count()} cpus)"]
    for r in results:
        status = ""
        if "target" in r:
            status = "MET   " if r["met"] else "MISSED"
            goal = f"{r['target_on']} {r['target_op']} {r['target']}"
        else:
            goal = ""
        lines.append(f"  {status:6} {r['name']:<40} {r['value']:>14,.0f} {r['unit']:<14} "
                     f"x{r['ratio']:<7.3f} vs {r['baseline_name']} ({r['baseline']:,.0f}) {goal}")
    return "\n".join(lines)


def run_cli(argv: list[str] | None, doc: str, benches: dict[str, Any], sizes: Any, quick_sizes: Any,
            title: str, before: Callable[[], None] | None = None) -> int:
    """The command line every bench/ script has: ``--quick``, ``--repeat``, ``--only``; JSON
    lines on stdout, a summary headed ``title`` on stderr."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat: a few-second smoke run")
    parser.add_argument("--repeat", type=int, default=None, help="runs per measurement (best is kept)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(benches)}")
    args = parser.parse_args(argv)
    chosen_sizes = quick_sizes if args.quick else sizes
    repeats = args.repeat or (1 if args.quick else 3)
    chosen = [b.strip() for b in args.only.split(",") if b.strip()] or list(benches)
    unknown = set(chosen) - set(benches)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {list(benches)}")
    if before is not None:
        before()
    results = []
    t0 = time.perf_counter()
    for name in chosen:
        for r in benches[name](chosen_sizes, repeats):
            print(json.dumps(r), flush=True)
            results.append(r)
    summary = _summary(results, time.perf_counter() - t0)
    print(summary.replace("ergonode local benchmarks", title, 1), file=sys.stderr)
    return 0


def _say_pykka_missing() -> None:
    if pykka is None:
        print("pykka is not installed (pip install '.[bench]'): the Pykka comparisons are skipped", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, __doc__ or "", BENCHES, SIZES, QUICK_SIZES, "ergonode local benchmarks", _say_pykka_missing)


if __name__ == "__main__":
    sys.exit(main())

"""The scenario runner behind ``python -m sim`` (docs/simulation.md, "Scenarios and the runner").

``python -m sim run SCENARIO --seed N | --seeds A..B | --random N [--jobs J]`` runs the
scenario once per seed, untraced, in worker processes, with a progress bar on stderr;
it prints a summary table and, for every failing seed, the failure and the one-line
command that replays it; the exit status is 1 if any seed failed.

``python -m sim replay SCENARIO --seed N [--trace PATH] [--chart PATH]`` runs one seed
traced in this process, writes the trace (JSON lines) and its sequence chart
(``sim.chart``), and prints the failure with its traceback.

SCENARIO is a file (``scenarios/x.py``, its function ``scenario``), ``file.py:function``
or ``module:function``.  The runner itself reads the wall clock (to report wall time) and
draws random seeds from the OS: neither reaches a simulation, which sees only its seed.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .determinism import _load
from .sim import Sim

__all__ = ["Outcome", "main", "parse_seeds", "replay_command", "run_seed", "scenario_target"]

#: the largest seed --random draws (seeds are any int; these print short)
RANDOM_SEED_BOUND = 2**32


@dataclass(frozen=True)
class Outcome:
    """What one seed of a scenario did."""

    seed: int
    passed: bool
    #: the failure: its exception's class and message (empty if it passed)
    error: str
    #: the traceback of the failure (empty if it passed)
    details: str
    wall: float
    virtual: float
    #: simulation events run (``Sim.events``)
    events: int = 0


def _wall() -> float:
    """Wall seconds, for the report only: a simulation never sees them."""
    return time.perf_counter()


def _random_seeds(n: int) -> list[int]:
    """``n`` new seeds from the OS (``--random``): printed, so that any run can be repeated."""
    draw = random.SystemRandom()
    return [draw.randrange(RANDOM_SEED_BOUND) for _ in range(n)]


def scenario_target(spec: str) -> str:
    """The ``where:function`` name of a scenario given as ``file.py``, ``file.py:function`` or
    ``module:function`` (a file alone names its function ``scenario``)."""
    if ":" in spec:
        where, _, fn = spec.rpartition(":")
        if not where or not fn:
            raise ValueError(f"a scenario is file.py, file.py:function or module:function, not {spec!r}")
        if where.endswith(".py") and not Path(where).is_file():
            raise ValueError(f"no scenario file {where}")
        return spec
    if spec.endswith(".py"):
        if not Path(spec).is_file():
            raise ValueError(f"no scenario file {spec}")
        return f"{spec}:scenario"
    raise ValueError(f"a scenario is file.py, file.py:function or module:function, not {spec!r}")


def parse_seeds(text: str) -> list[int]:
    """``A..B`` (both included) as a list of seeds."""
    first, sep, last = text.partition("..")
    try:
        a, b = int(first), int(last)
    except ValueError:
        raise ValueError(f"a seed range is A..B with integers A <= B, not {text!r}") from None
    if not sep or a > b:
        raise ValueError(f"a seed range is A..B with integers A <= B, not {text!r}")
    return list(range(a, b + 1))


def replay_command(spec: str, seed: int) -> str:
    """The one-line command that replays ``seed`` of the scenario ``spec`` (as the user gave it)."""
    return f"python -m sim replay {shlex.quote(spec)} --seed {seed}"


_loaded: dict[str, Callable[[Sim], Any]] = {}


def _scenario(target: str) -> Callable[[Sim], Any]:
    fn = _loaded.get(target)
    if fn is None:
        fn = _loaded[target] = _load(target)
        if not callable(fn):
            raise TypeError(f"{target} is not a function taking a Sim")
    return fn


def run_seed(target: str, seed: int, trace: bool = False) -> tuple[Outcome, Sim | None]:
    """Run the scenario ``target`` (``where:function``) on a new ``Sim(seed)``; any exception
    it raises is the seed's failure."""
    started = _wall()
    s: Sim | None = None
    try:
        fn = _scenario(target)
        s = Sim(seed, trace=trace)
        fn(s)
    except BaseException as e:  # noqa: BLE001 - every failure of a seed is reported, not raised
        if isinstance(e, KeyboardInterrupt):
            raise
        error = f"{type(e).__name__}: {e}".strip()
        return Outcome(seed, False, error, traceback.format_exc(), _wall() - started,
                       s.now if s is not None else 0.0, s.events if s is not None else 0), s
    return Outcome(seed, True, "", "", _wall() - started, s.now, s.events), s


def _work(target: str, seed: int) -> Outcome:
    """What a worker process runs (no trace: the Sim is not sent back)."""
    return run_seed(target, seed)[0]


class Progress:
    """A plain-text progress bar on a stream: redrawn in place on a terminal, else a line
    at every tenth of the way."""

    WIDTH = 30

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out = total, out
        self.done = self.failed = 0
        self.tty = out.isatty()
        self._last_tenth = -1

    def update(self, passed: bool) -> None:
        self.done += 1
        self.failed += not passed
        filled = self.WIDTH * self.done // self.total
        line = (f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total} seeds"
                f", {self.failed} failed")
        if self.tty:
            self.out.write("\r" + line + ("\n" if self.done == self.total else ""))
        else:
            tenth = 10 * self.done // self.total
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.out.write(line + "\n")
        self.out.flush()


def run_seeds(target: str, seeds: Sequence[int], jobs: int, progress: Progress | None = None) -> list[Outcome]:
    """Run every seed, ``jobs`` at a time in worker processes (in this process if 1); the
    outcomes in the order of ``seeds``."""
    outcomes: dict[int, Outcome] = {}
    if jobs <= 1 or len(seeds) == 1:
        for seed in seeds:
            outcome = run_seed(target, seed)[0]
            outcomes[seed] = outcome
            if progress is not None:
                progress.update(outcome.passed)
        return [outcomes[s] for s in seeds]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        todo = iter(seeds)
        running: set[Future[Outcome]] = set()
        # a bounded number in flight, so that a large --random does not queue them all at once
        for seed in todo:
            running.add(pool.submit(_work, target, seed))
            if len(running) >= 2 * jobs:
                break
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: f.result().seed):
                outcome = fut.result()
                outcomes[outcome.seed] = outcome
                if progress is not None:
                    progress.update(outcome.passed)
                nxt = next(todo, None)
                if nxt is not None:
                    running.add(pool.submit(_work, target, nxt))
    return [outcomes[s] for s in seeds]


def _summary(spec: str, outcomes: list[Outcome], wall: float, jobs: int, out: TextIO) -> None:
    failed = [o for o in outcomes if not o.passed]
    virtual = sum(o.virtual for o in outcomes)
    events = sum(o.events for o in outcomes)
    rows = [
        ("scenario", spec),
        ("seeds run", str(len(outcomes))),
        ("passed", str(len(outcomes) - len(failed))),
        ("failed", str(len(failed))),
        ("wall time", f"{wall:.2f} s ({jobs} worker{'s' if jobs != 1 else ''})"),
        ("virtual time", f"{virtual:.1f} s" + (f" ({virtual / wall:.0f}x wall)" if wall > 0 else "")),
        ("events", f"{events}" + (f" ({events / wall:,.0f} per wall second)" if wall > 0 else "")),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        out.write(f"{key:<{width}}  {value}\n")
    if failed:
        out.write("\nfailing seeds:\n")
        for o in failed:
            first = o.error.splitlines()[0] if o.error else "failed"
            out.write(f"  seed {o.seed}: {first[:300]}\n")
            out.write(f"    replay: {replay_command(spec, o.seed)}\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim", description="Run simulation scenarios over seeds, or "
                                "replay one seed with its trace (docs/simulation.md).")
    sub = p.add_subparsers(dest="command", required=True, metavar="{run,replay}")
    run = sub.add_parser("run", help="run a scenario over seeds, in parallel")
    run.set_defaults(parser=run)
    run.add_argument("scenario", help="scenarios/x.py, file.py:function or module:function")
    which = run.add_mutually_exclusive_group(required=True)
    which.add_argument("--seed", type=int, help="one seed")
    which.add_argument("--seeds", metavar="A..B", help="every seed from A to B, both included")
    which.add_argument("--random", type=int, metavar="N", help="N random seeds (printed)")
    run.add_argument("--jobs", type=int, default=None, metavar="J",
                     help="worker processes (default: min(2, number of CPUs))")
    replay = sub.add_parser("replay", help="run one seed traced; write its trace and its chart")
    replay.set_defaults(parser=replay)
    replay.add_argument("scenario", help="scenarios/x.py, file.py:function or module:function")
    replay.add_argument("--seed", type=int, required=True, help="the seed to replay")
    replay.add_argument("--trace", metavar="PATH", help="where the trace goes (default: <scenario>-<seed>.jsonl)")
    replay.add_argument("--chart", metavar="PATH", help="where the chart goes (default: <scenario>-<seed>.html)")
    return p


def _cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        target = scenario_target(args.scenario)
        if args.seed is not None:
            seeds = [args.seed]
        elif args.seeds is not None:
            seeds = parse_seeds(args.seeds)
        else:
            if args.random < 1:
                raise ValueError(f"--random takes a count of seeds >= 1, not {args.random}")
            seeds = _random_seeds(args.random)
        jobs = args.jobs if args.jobs is not None else min(2, os.cpu_count() or 1)
        if jobs < 1:
            raise ValueError(f"--jobs takes a number of workers >= 1, not {jobs}")
        _scenario(target)  # a scenario that does not load is a usage error, not a failing seed
    except (ValueError, TypeError, ImportError, OSError, KeyError, AttributeError, SyntaxError) as e:
        args.parser.error(str(e) or type(e).__name__)
    if args.random is not None:
        out.write(f"seeds: {' '.join(map(str, seeds))}\n")
        out.flush()
    started = _wall()
    outcomes = run_seeds(target, seeds, min(jobs, len(seeds)), Progress(len(seeds), err))
    _summary(args.scenario, outcomes, _wall() - started, min(jobs, len(seeds)), out)
    return 1 if any(not o.passed for o in outcomes) else 0


def _default_path(spec: str, seed: int, suffix: str) -> str:
    where = spec.rpartition(":")[0] if ":" in spec and not spec.endswith(".py") else spec
    stem = Path(where).stem if where.endswith(".py") else where.replace(".", "_")
    return f"{stem}-{seed}{suffix}"


def _cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    try:
        target = scenario_target(args.scenario)
        _scenario(target)
    except (ValueError, TypeError, ImportError, OSError, KeyError, AttributeError, SyntaxError) as e:
        args.parser.error(str(e) or type(e).__name__)
    outcome, s = run_seed(target, args.seed, trace=True)
    trace_path = args.trace or _default_path(args.scenario, args.seed, ".jsonl")
    if s is not None:
        s.trace.write(trace_path)
        out.write(f"trace: {trace_path} ({len(s.trace)} events, sha256 {s.trace.hash()})\n")
        from .chart import render  # here: only a replay draws, a run of many seeds need not load it

        chart_path = args.chart or _default_path(args.scenario, args.seed, ".html")
        render(s.trace.events, path=chart_path, title=f"{args.scenario}, seed {args.seed}")
        out.write(f"chart: {chart_path}\n")
    out.write(f"virtual time {outcome.virtual:.3f} s, wall time {outcome.wall:.2f} s, {outcome.events} events\n")
    if outcome.passed:
        out.write(f"seed {args.seed} passed\n")
        return 0
    out.write(f"seed {args.seed} failed: {outcome.error}\n\n{outcome.details}")
    return 1


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The command line (``python -m sim``); returns the exit status (2 for a usage error)."""
    out = out or sys.stdout
    err = err or sys.stderr
    p = _parser()
    try:
        args = p.parse_args(argv)
        if args.command == "run":
            return _cmd_run(args, out, err)
        return _cmd_replay(args, out)
    except SystemExit as e:  # argparse's usage errors (2) and --help (0)
        return e.code if isinstance(e.code, int) else 2

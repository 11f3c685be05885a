"""Simulation benchmarks: seeds of a five-node fault scenario per minute (SPEC §10, issue 8 §6).

Run from the repository root::

    python bench/sim.py             # the full run (under a minute on 2 cores)
    python bench/sim.py --quick     # a few-second smoke run
    python bench/sim.py --only swarm

The scenario is ``scenarios/swarm.py:five_nodes``: five nodes on five hosts, each sending
to every other every 50 ms, 19 virtual seconds of faults the seed draws (partitions,
holds, pauses, crashes, kills, clock skew, jitter, buggify), then the quiet phase and the
checks: 30 virtual seconds a seed.  The seeds run as ``python -m sim run`` runs them,
in worker processes.  Each line is JSON, as bench/local.py's:

* ``sim.swarm5.seeds_per_minute``: seeds run a minute with ``min(2, CPUs)`` workers
  (target: at least 100 on the 2-core machine); the baseline is the same seeds on one
  worker in this process, so the ratio is the workers' speed-up.
* ``sim.swarm5.events_per_wall_second``: simulation events run (``Sim.events``: a hop on
  a link, a timer, a drain of a scheduler's ready queue ...) per wall second and worker,
  against bare SimPy processes yielding ``env.timeout(0)`` (one event each).
* ``sim.swarm5.virtual_per_wall_second``: virtual seconds simulated per wall second and
  worker (the baseline is real time, 1).

A failing seed is reported on stderr (with its replay command) and the figures still
stand: a benchmark measures speed, the suite and ``python -m sim run`` correctness.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

if __package__ in (None, ""):  # run as a script: import the repository's packages
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.local import best_rate, raw_simpy_timeouts, result, run_cli  # noqa: E402
from sim.runner import Outcome, replay_command, run_seeds  # noqa: E402

__all__ = ["QUICK_SIZES", "SCENARIO", "SIZES", "bench_swarm", "main"]

SCENARIO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "scenarios", "swarm.py") + ":five_nodes"
#: seeds per measurement, and bare SimPy events for the baseline
SIZES = {"swarm_seeds": 24, "simpy_events": 300_000}
QUICK_SIZES = {"swarm_seeds": 2, "simpy_events": 30_000}


def _timed(seeds: list[int], jobs: int) -> tuple[float, list[Outcome]]:
    t0 = time.perf_counter()
    outcomes = run_seeds(SCENARIO, seeds, jobs)
    return time.perf_counter() - t0, outcomes


def bench_swarm(sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    n = sizes["swarm_seeds"]
    jobs = min(2, os.cpu_count() or 1)
    seeds = list(range(n))
    # best of the repeats, each kind measured right after the other (a shared machine's load moves)
    parallel = single = float("inf")
    outcomes: list[Outcome] = []
    for _ in range(repeats):
        wall, outcomes = _timed(seeds, jobs)
        parallel = min(parallel, wall)
        single = min(single, _timed(seeds, 1)[0])
    for o in outcomes:
        if not o.passed:
            print(f"bench/sim.py: seed {o.seed} failed: {o.error.splitlines()[0][:200]}\n"
                  f"    replay: {replay_command(SCENARIO, o.seed)}", file=sys.stderr)
    events = sum(o.events for o in outcomes)
    virtual = sum(o.virtual for o in outcomes)
    busy = sum(o.wall for o in outcomes)  # what the workers spent on the seeds themselves
    simpy_rate = best_rate(raw_simpy_timeouts, sizes["simpy_events"], repeats)
    return [
        result("sim.swarm5.seeds_per_minute", n * 60 / parallel, "seeds/min", n * 60 / single,
               f"the same seeds on 1 worker (these on {jobs}; {virtual / n:.0f} virtual s each)", 100, "value"),
        result("sim.swarm5.events_per_wall_second", events / busy, "events/s", simpy_rate,
               "bare simpy: processes yielding env.timeout(0)"),
        result("sim.swarm5.virtual_per_wall_second", virtual / busy, "virtual s/s", 1.0, "real time"),
    ]


BENCHES = {"swarm": bench_swarm}


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, __doc__ or "", BENCHES, SIZES, QUICK_SIZES, "ergonode simulation benchmarks")


if __name__ == "__main__":
    sys.exit(main())

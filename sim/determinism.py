"""The determinism check: one seed, run in fresh processes with different hash seeds, must
give the same trace, byte for byte (FoundationDB's ``Unseed`` check, madsim's
``CHECK_DETERMINISM``).

:func:`check_determinism` runs a scenario (a function taking a :class:`~sim.Sim`) once per
``PYTHONHASHSEED`` in ``hash_seeds``, each in a new Python process, with tracing on, and
compares the hashes of the traces.  A difference means something in the run depended on
what a seed does not fix: the order of a set of strings, an ``id()``, the wall clock, the
global ``random``.  The error says at which event the runs parted, which is where to look.

Each child process runs :func:`_main` with ``SCENARIO SEED OUT [AGAIN]``; it imports the
scenario by ``module:function`` (or ``path/to/file.py:function``) with the parent's
``sys.path``, runs it on ``Sim(SEED, trace=True)``, writes the trace to ``OUT`` and prints
its hash.  With ``AGAIN`` (the first child) it then runs the same function on a second
``Sim(SEED)`` in the same process, writes that trace to ``AGAIN`` and prints its hash too:
state a run leaves behind in its process (a module or class attribute, a cache) makes the
second run differ, as it would make a seed of ``python -m sim run`` (many seeds per
worker process) differ from its replay (one seed alone).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import runpy
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ergo.gen.errors import Incorrect

from .sim import Sim
from .trace import Trace

__all__ = ["NotDeterministic", "check_determinism", "scenario_name"]

#: what a child process runs (not ``-m sim.determinism``: the package imports this module first)
_CHILD = "import sys; from sim.determinism import _main; sys.exit(_main(sys.argv[1:]))"

#: the hash seeds the two runs use unless told otherwise (any two different values do)
HASH_SEEDS = (1, 2)


class NotDeterministic(AssertionError):
    """Two runs of one seed gave different traces."""


def scenario_name(scenario: Callable[[Sim], Any] | str) -> str:
    """How a child process finds ``scenario``: ``module:qualname`` of a function defined at
    the top level of a module (or ``file.py:qualname`` for one in the script being run)."""
    if isinstance(scenario, str):
        if ":" not in scenario:
            raise Incorrect(f"a scenario is named 'module:function' or 'file.py:function', not {scenario!r}"[:200])
        return scenario
    if not callable(scenario):
        raise Incorrect(f"a scenario is a function taking a Sim, or its 'module:function' name, not {scenario!r}"[:200])
    module = getattr(scenario, "__module__", None)
    qualname = getattr(scenario, "__qualname__", "")
    if not module or "<" in qualname:
        raise Incorrect(f"the scenario {qualname or scenario!r} must be defined at the top level of a module "
                        "(a lambda or a nested function cannot be found by another process)")
    if module == "__main__":
        main = getattr(sys.modules["__main__"], "__file__", None)
        if main is None:
            raise Incorrect("a scenario defined in an interactive session cannot be run in another process")
        return f"{os.path.abspath(main)}:{qualname}"
    return f"{module}:{qualname}"


def _load(name: str) -> Callable[[Sim], Any]:
    where, _, qualname = name.rpartition(":")
    if where.endswith(".py"):
        namespace: Any = runpy.run_path(where, run_name="__sim_scenario__")
        obj: Any = namespace[qualname.split(".")[0]]
        rest = qualname.split(".")[1:]
    else:
        obj = importlib.import_module(where)
        rest = qualname.split(".")
    for part in rest:
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def run_scenario(scenario: Callable[[Sim], Any] | str, seed: int) -> Sim:
    """Run ``scenario`` on a new ``Sim(seed, trace=True)`` in this process; return the Sim."""
    fn = _load(scenario) if isinstance(scenario, str) else scenario
    s = Sim(seed, trace=True)
    fn(s)
    return s


def check_determinism(scenario: Callable[[Sim], Any] | str, seed: int, *,
                      hash_seeds: Sequence[int] = HASH_SEEDS, timeout: float = 600.0) -> str:
    """Run ``scenario`` with ``seed`` in a new process per ``PYTHONHASHSEED`` of
    ``hash_seeds`` and return the trace hash they agree on; raise :class:`NotDeterministic`
    naming the first event where two runs differ.

    ``scenario`` is a function defined at the top level of a module, taking the ``Sim``
    (made with tracing on) and doing whatever the run is, or its ``module:function`` name.
    ``timeout`` is in wall seconds per run.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise Incorrect(f"a seed is an int, not {type(seed).__name__}")
    seeds = list(hash_seeds)
    if len(seeds) < 2 or len(set(seeds)) != len(seeds) or not all(type(h) is int and h >= 0 for h in seeds):
        raise Incorrect(f"hash_seeds are at least two different ints >= 0, not {hash_seeds!r}"[:200])
    name = scenario_name(scenario)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    with tempfile.TemporaryDirectory(prefix="sim-determinism-") as tmp:
        runs: list[tuple[int, str, Path]] = []
        for hash_seed in seeds:
            out = Path(tmp) / f"trace-{hash_seed}.jsonl"
            again = Path(tmp) / f"trace-{hash_seed}-again.jsonl"
            env["PYTHONHASHSEED"] = str(hash_seed)
            argv = [name, str(seed), str(out)] + ([str(again)] if not runs else [])
            proc = subprocess.run([sys.executable, "-c", _CHILD, *argv],
                                  env=env, capture_output=True, text=True, timeout=timeout)
            if proc.returncode != 0:
                raise NotDeterministic(f"the scenario {name} with seed {seed} failed under PYTHONHASHSEED="
                                       f"{hash_seed}:\n{proc.stderr[-3000:]}")
            # the hashes of the files written (a trace's hash is that of its file): what the
            # scenario printed (its nodes' default loggers write to stdout) is no part of it
            digest = _file_hash(out)
            if not runs and _file_hash(again) != digest:
                raise NotDeterministic(
                    f"seed {seed} of {name} is not deterministic: a second run of it in the same process "
                    "differs from the first, so something a run leaves behind in its process (a module or "
                    "class attribute, a cache) reaches the next run (python -m sim run runs many seeds in "
                    "one process, a replay runs one alone): "
                    + _first_difference(out, "first run", again, "second run"))
            runs.append((hash_seed, digest, out))
        first_seed, first_hash, first_out = runs[0]
        for hash_seed, digest, out in runs[1:]:
            if digest != first_hash:
                raise NotDeterministic(f"seed {seed} of {name} is not deterministic: "
                                       + _first_difference(first_out, f"PYTHONHASHSEED={first_seed}",
                                                           out, f"PYTHONHASHSEED={hash_seed}"))
        return first_hash


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _first_difference(a: Path, run_a: str, b: Path, run_b: str) -> str:
    lines_a = a.read_text(encoding="ascii").splitlines()
    lines_b = b.read_text(encoding="ascii").splitlines()
    for i, (x, y) in enumerate(zip(lines_a, lines_b, strict=False)):
        if x != y:
            return f"the traces part at event {i + 1}:\n  {run_a}: {x}\n  {run_b}: {y}"
    return f"one trace is a prefix of the other ({len(lines_a)} events: {run_a}, {len(lines_b)}: {run_b})"


def _main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print("usage: SCENARIO SEED OUT [AGAIN]", file=sys.stderr)
        return 2
    name, seed = argv[:2]
    fn = _load(name)  # loaded once, as the runner does for all the seeds of a worker
    for path in argv[2:]:
        s = run_scenario(fn, int(seed))
        trace: Trace = s.trace
        trace.write(path)
        print(trace.hash())
    return 0


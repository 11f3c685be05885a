"""The determinism check: one seed, run in fresh processes with different hash seeds, must
give the same trace, byte for byte, and the same outcome (FoundationDB's ``Unseed`` check,
madsim's ``CHECK_DETERMINISM``).

:func:`check_determinism` runs a scenario (a function taking a :class:`~sim.Sim`) once per
``PYTHONHASHSEED`` in ``hash_seeds``, each in a new Python process, with tracing on, and
compares the runs: their outcomes (passed, or the error raised) and the hashes of their
traces.  A difference means something in the run depended on what a seed does not fix:
the order of a set of strings, an ``id()``, the wall clock, the global ``random``.  The
error says at which event the runs parted, which is where to look.  A scenario that fails
the same way in every run is deterministic, and failing: that is :class:`ScenarioFailed`,
not :class:`NotDeterministic`.

Each child process runs :func:`_main` with ``SCENARIO SEED OUT [AGAIN]``; it imports the
scenario by ``module:function`` (or ``path/to/file.py:function``) with the parent's
``sys.path``, runs it on ``Sim(SEED, trace=True)``, writes the trace (so far, if the
scenario raised) to ``OUT``, and the scenario's error, if it raised one, to ``OUT.error``
(JSON: ``error``, ``details``).  With ``AGAIN`` (the first child) it then runs the same
function on a second ``Sim(SEED)`` in the same process and writes the same for it to
``AGAIN``: state a run leaves behind in its process (a module or class attribute, a
cache) makes the second run differ, as it would make a seed of ``python -m sim run`` (many
seeds per worker process) differ from its replay (one seed alone).  A child exits 0 when
it ran the scenario (whatever its outcome), 3 when it could not load it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import runpy
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ergo.gen.errors import Incorrect

from .sim import Sim
from .trace import _ADDRESS, Trace

__all__ = ["NotDeterministic", "ScenarioFailed", "check_determinism", "scenario_name"]

#: what a child process runs (not ``-m sim.determinism``: the package imports this module first)
_CHILD = "import sys; from sim.determinism import _main; sys.exit(_main(sys.argv[1:]))"

#: the hash seeds the two runs use unless told otherwise (any two different values do)
HASH_SEEDS = (1, 2)


#: the exit status of a child that could not load the scenario
_CANNOT_LOAD = 3


class NotDeterministic(AssertionError):
    """Two runs of one seed differ: in their traces, or in their outcomes (one raised and
    the other did not, or they raised different errors)."""


class ScenarioFailed(AssertionError):
    """The scenario raised the same error at the same point in every run: it is
    deterministic, and failing.  ``error`` is the error (``Class: message``), ``details``
    the first run's traceback, ``replay`` the command that runs the seed alone, traced."""

    def __init__(self, scenario: str, seed: int, error: str, details: str) -> None:
        from .runner import replay_command  # the runner imports this module

        self.scenario, self.seed, self.error, self.details = scenario, seed, error, details
        self.replay = replay_command(scenario, seed)
        super().__init__(f"the scenario {scenario} failed at seed {seed}, the same way in every run "
                         f"(it is deterministic): {error}\n\n{details[-3000:]}\nreplay it: {self.replay}")


class _Run(NamedTuple):
    """One run of the seed: what it is called in an error, its trace, and how it ended."""

    label: str
    digest: str
    trace: Path
    #: the scenario's error, ``Class: message`` without object addresses; None if it passed
    error: str | None
    details: str

    def outcome(self) -> str:
        return f"{self.label} passed" if self.error is None else f"{self.label} raised {self.error}"


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
    ``hash_seeds`` (and twice in the first process) and return the trace hash they agree on.

    Raises :class:`NotDeterministic` if two runs differ: in their outcome (one raised and
    another did not, or they raised different errors) or in their traces, naming the first
    event where the traces part.  Raises :class:`ScenarioFailed` if every run raised the
    same error with the same trace: the scenario is deterministic and fails (its error,
    the first run's traceback and the replay command).  ``Incorrect`` if the scenario
    cannot be loaded in a child process.

    ``scenario`` is a function defined at the top level of a module, taking the ``Sim``
    (made with tracing on) and doing whatever the run is, or its ``module:function`` name.
    ``timeout`` is in wall seconds per process.
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
        runs: list[_Run] = []
        for hash_seed in seeds:
            out = Path(tmp) / f"trace-{hash_seed}.jsonl"
            again = Path(tmp) / f"trace-{hash_seed}-again.jsonl"
            env["PYTHONHASHSEED"] = str(hash_seed)
            argv = [name, str(seed), str(out)] + ([str(again)] if not runs else [])
            proc = subprocess.run([sys.executable, "-c", _CHILD, *argv],
                                  env=env, capture_output=True, text=True, timeout=timeout)
            if proc.returncode == _CANNOT_LOAD:
                raise Incorrect(f"the scenario {name} cannot be loaded:\n{proc.stderr[-3000:]}")
            if proc.returncode != 0:  # the scenario's own errors are written down: this is the process's
                raise RuntimeError(f"the process running seed {seed} of {name} under PYTHONHASHSEED={hash_seed} "
                                   f"ended with status {proc.returncode}:\n{proc.stderr[-3000:]}")
            label = f"PYTHONHASHSEED={hash_seed}"
            if not runs:
                first, second = _read_run("first run", out), _read_run("second run", again)
                _compare(name, seed, first, second,
                         "a second run of it in the same process differs from the first, so something a "
                         "run leaves behind in its process (a module or class attribute, a cache) reaches "
                         "the next run (python -m sim run runs many seeds in one process, a replay runs one "
                         "alone): ")
                runs.append(first._replace(label=label))
            else:
                run = _read_run(label, out)
                _compare(name, seed, runs[0], run, "")
                runs.append(run)
        if runs[0].error is not None:
            raise ScenarioFailed(name, seed, runs[0].error, runs[0].details)
        return runs[0].digest


def _read_run(label: str, trace: Path) -> _Run:
    """What a child wrote of one run: the hash of its trace file (a trace's hash is that of
    its file; what the scenario printed is no part of it) and its error, if any."""
    failure = trace.with_name(trace.name + ".error")
    error, details = None, ""
    if failure.exists():
        written = json.loads(failure.read_text(encoding="utf-8"))
        error, details = written["error"], written["details"]
    return _Run(label, _file_hash(trace), trace, error, details)


def _compare(name: str, seed: int, a: _Run, b: _Run, why: str) -> None:
    """Raise :class:`NotDeterministic` if runs ``a`` and ``b`` ended differently or left
    different traces."""
    if a.error != b.error:
        parted = _first_difference(a.trace, a.label, b.trace, b.label) if a.digest != b.digest else \
            "their traces are the same, up to the error"
        raise NotDeterministic(f"seed {seed} of {name} is not deterministic: {why}{a.outcome()}, "
                               f"but {b.outcome()}; {parted}")
    if a.digest != b.digest:
        raise NotDeterministic(f"seed {seed} of {name} is not deterministic: {why}"
                               + _first_difference(a.trace, a.label, b.trace, b.label))


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
    try:
        fn = _load(name)  # loaded once, as the runner does for all the seeds of a worker
    except Exception:  # noqa: BLE001 - whatever stops it loading is the parent's Incorrect
        traceback.print_exc()
        return _CANNOT_LOAD
    for path in argv[2:]:
        s = Sim(int(seed), trace=True)
        try:
            fn(s)
        except BaseException as e:  # noqa: BLE001 - the scenario's failure is an outcome to compare, as the runner's
            if isinstance(e, KeyboardInterrupt):
                raise
            # an object's address differs from process to process: it is no part of the outcome
            error = _ADDRESS.sub("", f"{type(e).__name__}: {e}".strip())[:2000]
            failure = {"error": error, "details": traceback.format_exc()}
            Path(path + ".error").write_text(json.dumps(failure), encoding="utf-8")
        trace: Trace = s.trace
        trace.write(path)
        print(trace.hash())
    return 0

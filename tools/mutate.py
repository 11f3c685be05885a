"""Mutation testing of the core modules: would the tests notice if the code were wrong?

For each module this samples ``--n`` mutants (a fixed ``--seed``) from every place one of
the operators below applies, writes each one over the module in a temporary copy of the
tree (the working files are never touched), runs that module's tests (the map in
``MODULES``, also in ``docs/testing.md``) with ``-x``, and counts the mutant *killed* when
the tests fail or time out, *survived* when they pass.  Mutants that change no behaviour
are listed by hand, each with its reason, in ``tools/mutants_equivalent.txt`` and left out
of the score; an "equivalent" mutant that a test kills is reported, since its reason is
then wrong.

Operators: a comparison flipped (``==``/``!=``, ``<``/``<=``, ``>``/``>=``, ``is``/``is
not``, ``in``/``not in``), ``and``/``or`` swapped, a ``not`` dropped, a condition negated
(``if``, ``while``, ``x if c else y``), a boolean flipped, a number changed (0 -> 1,
1 -> 0, n -> n + 1), ``+``/``-`` swapped, a statement-level call removed (-> ``pass``),
``return x`` -> ``return None`` (not for ``return False``).  Strings, annotations, ``__all__``/``__slots__``,
``if TYPE_CHECKING`` blocks and functions marked ``# pragma: no cover`` (abstract stubs
every subclass overrides) are left alone.

    python tools/mutate.py                      # every module, 40 mutants each
    python tools/mutate.py runner enp --n 60    # some modules, more mutants
    python tools/mutate.py runner --survivors   # only the last run's survivors, again
    python tools/mutate.py runner --list        # the sampled mutants, without running

Results of the last run of a module are kept in ``.mutate/<module>.json`` (ignored by git).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = ROOT / "tools" / "mutants_equivalent.txt"
RESULTS = ROOT / ".mutate"

# the contract tests first: they are fast, and -x stops at the first test that notices
_NODE_TESTS = [
    "tests/test_runner_contract.py",
    "tests/test_process_contract.py",
    "tests/test_node_contract.py",
    "tests/test_hardening.py",
    "tests/test_calls_fail_fast.py",
    "tests/test_newcomer_traps.py",
    "tests/ergo_local",
    "tests/test_node.py",
    "tests/test_lifecycle.py",
    "tests/test_pubsub.py",
    "tests/test_asyncio.py",
    "tests/test_sim.py",
]

#: module -> (file, the fast tests that should notice a change in it)
MODULES: dict[str, tuple[str, list[str]]] = {
    "node": ("ergo/node/node.py", _NODE_TESTS),
    "process": ("ergo/node/process.py", _NODE_TESTS),
    "runner": ("ergo/node/runner.py", _NODE_TESTS),
    "pubsub": ("ergo/node/pubsub.py", ["tests/test_pubsub_contract.py", "tests/test_pubsub.py", "tests/ergo_local",
                                       "tests/test_node.py", "tests/test_lifecycle.py"]),
    "enp": ("ergo/wire/enp.py", ["tests/wire/test_wire_constants.py", "tests/wire/test_enp_contract.py",
                                 "tests/wire/test_limits.py", "tests/wire/test_hostile.py", "tests/wire/test_enp.py"]),
    "handshake": ("ergo/wire/handshake.py", ["tests/wire/test_wire_constants.py",
                                             "tests/wire/test_handshake_contract.py", "tests/wire/test_limits.py",
                                             "tests/wire/test_hostile.py", "tests/wire/test_handshake.py"]),
    "edf": ("ergo/wire/edf.py", ["tests/wire/test_wire_constants.py", "tests/wire/test_edf_contract.py",
                                 "tests/wire/test_limits.py", "tests/wire/test_hostile.py", "tests/wire/test_edf.py"]),
}

_COPY = ["ergo", "sim", "net", "tests", "pyproject.toml", "docs"]


# -- finding mutants ---------------------------------------------------------------------


@dataclass
class Mutant:
    module: str
    where: str  # the enclosing function or class, or "<module>"
    line: int
    start: tuple[int, int]  # (line, col) of the replaced source span
    end: tuple[int, int]
    original: str  # the span's source, unparsed on one line
    replacement: str
    nth: int = 1  # the same change in the same function a second time, a third time...
    status: str = ""  # killed, timeout, survived, equivalent, equivalent-killed

    @property
    def key(self) -> str:
        """Stable across edits elsewhere in the file: where it is and what it changes."""
        again = f" #{self.nth}" if self.nth > 1 else ""
        return f"{self.module} :: {self.where} :: `{self.original}` -> `{self.replacement}`{again}"


_COMPARE_FLIP = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}


class _Finder(ast.NodeVisitor):
    def __init__(self, module: str, source: str) -> None:
        self.module = module
        self.lines = source.splitlines()
        self.scope: list[str] = []
        self.found: list[Mutant] = []

    # -- what is never mutated -------------------------------------------------------------

    def _skipped_def(self, node: ast.AST) -> bool:
        line = self.lines[node.lineno - 1]
        return "pragma: no cover" in line

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self._skipped_def(node):
            return
        for d in node.decorator_list:
            self.visit(d)
        self.scope.append(node.name)  # a default argument belongs to its function
        for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(d)
        for stmt in node.body:
            self.visit(stmt)
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for d in node.decorator_list:
            self.visit(d)
        self.scope.append(node.name)
        for stmt in node.body:
            self.visit(stmt)
        self.scope.pop()

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        self._negate(node.test)
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(isinstance(t, ast.Name) and t.id in ("__all__", "__slots__") for t in node.targets):
            return
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name) and node.target.id == "__all__":
            return
        swap = {ast.Add: ast.Sub, ast.Sub: ast.Add}.get(type(node.op))
        if swap is not None:
            self._add(node, ast.AugAssign(target=node.target, op=swap(), value=node.value), statement=True)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:  # the annotation itself is a string at run time
            self.visit(node.value)

    def visit_arg(self, node: ast.arg) -> None:
        pass  # annotations only

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        pass  # f-strings only make messages (and 3.11 misplaces the nodes inside them)

    # -- the operators -----------------------------------------------------------------------

    def visit_Compare(self, node: ast.Compare) -> None:
        for i, op in enumerate(node.ops):
            flipped = _COMPARE_FLIP.get(type(op))
            if flipped is not None:
                ops = list(node.ops)
                ops[i] = flipped()
                self._add(node, ast.Compare(left=node.left, ops=ops, comparators=node.comparators))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self._add(node, ast.BoolOp(op=other, values=node.values))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self._add(node, node.operand)
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        self._negate(node.test)
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._negate(node.test)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        v = node.value
        if isinstance(v, bool):
            self._add(node, ast.Constant(not v))
        elif isinstance(v, int):
            self._add(node, ast.Constant({0: 1, 1: 0}.get(v, v + 1)))
        elif isinstance(v, float):
            self._add(node, ast.Constant(v + 1.0))

    def visit_BinOp(self, node: ast.BinOp) -> None:
        swap = {ast.Add: ast.Sub, ast.Sub: ast.Add}.get(type(node.op))
        if swap is not None:
            self._add(node, ast.BinOp(left=node.left, op=swap(), right=node.right))
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        value = node.value
        if isinstance(value, ast.Await):
            value = value.value
        if isinstance(value, ast.Call):
            self._add(node, ast.Pass(), statement=True)
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        # `return None` for `return False` (or None) would only matter to a caller that tells
        # the two falsy values apart: not a mutant worth its run
        if node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value in (None, False)):
            self._add(node, ast.Return(value=ast.Constant(None)), statement=True)
        self.generic_visit(node)

    def _negate(self, test: ast.expr) -> None:
        # the same mutant as dropping the `not`, or as flipping the one comparison: not twice
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(
                test.ops[0], (ast.Eq, ast.NotEq, ast.Is, ast.IsNot, ast.In, ast.NotIn)):
            return
        self._add(test, ast.UnaryOp(op=ast.Not(), operand=test))

    def _add(self, node: ast.AST, new: ast.AST, statement: bool = False) -> None:
        original = ast.unparse(node)
        replacement = ast.unparse(new)
        if not statement:
            replacement = f"({replacement})"  # an expression keeps its meaning in any context
        self.found.append(
            Mutant(
                module=self.module,
                where=".".join(self.scope) or "<module>",
                line=node.lineno,
                start=(node.lineno, node.col_offset),
                end=(node.end_lineno, node.end_col_offset),
                original=original,
                replacement=replacement,
            )
        )


def find_mutants(module: str, source: str) -> list[Mutant]:
    finder = _Finder(module, source)
    finder.visit(ast.parse(source))
    found = sorted(finder.found, key=lambda m: (m.start, m.end, m.replacement))
    seen: dict[str, int] = {}
    for m in found:
        base = m.key
        seen[base] = m.nth = seen.get(base, 0) + 1
    return found


def apply(source: str, m: Mutant) -> str:
    lines = source.splitlines(keepends=True)
    (l1, c1), (l2, c2) = m.start, m.end
    # ast columns are utf-8 byte offsets
    head = lines[l1 - 1].encode()[:c1].decode()
    tail = lines[l2 - 1].encode()[c2:].decode()
    return "".join(lines[: l1 - 1]) + head + m.replacement + tail + "".join(lines[l2:])


def sample(mutants: list[Mutant], n: int, seed: int, module: str) -> list[Mutant]:
    rng = random.Random(f"{seed}:{module}")
    if n >= len(mutants):
        return list(mutants)
    return sorted(rng.sample(mutants, n), key=lambda m: (m.start, m.end, m.replacement))


# -- equivalence annotations ---------------------------------------------------------------


def load_equivalent() -> dict[str, str]:
    """``module :: where :: `original` -> `replacement` :: why no behaviour changes`` per line."""
    known: dict[str, str] = {}
    if not EQUIVALENT_FILE.exists():
        return known
    for raw in EQUIVALENT_FILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, reason = line.rpartition(" :: ")
        if not sep or not reason.strip():
            raise SystemExit(f"{EQUIVALENT_FILE.name}: every entry needs a reason: {raw!r}")
        known[key] = reason.strip()
    return known


# -- running ---------------------------------------------------------------------------------


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
    for name in _COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)  # the copy, never the editable install of the working tree
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a stale .pyc of an earlier mutant must never be used
    env["HYPOTHESIS_PROFILE"] = "ci"  # derandomized: the same examples for every mutant
    return env


def _pytest(tree: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=tree, env=_env(tree), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "timeout", time.monotonic() - started
    except BaseException:  # interrupted: take the test run down with us, then clean up
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    took = time.monotonic() - started
    if rc == 0:
        return "survived", took
    if rc == 5:  # no tests collected: the test map is wrong, not the mutant
        raise SystemExit(f"no tests ran for {tests}")
    return "killed", took


def run_module(name: str, n: int, seed: int, only: set[str] | None, listing: bool) -> dict:
    path, tests = MODULES[name]
    tests = [t for t in tests if (ROOT / t).exists()]
    source = (ROOT / path).read_text()
    everything = find_mutants(path, source)
    chosen = sample(everything, n, seed, name)
    if only is not None:
        chosen = [m for m in everything if m.key in only]
    equivalent = load_equivalent()
    print(f"\n== {name} ({path}): {len(chosen)} of {len(everything)} mutants; tests: {' '.join(tests)}", flush=True)
    if listing:
        for m in chosen:
            mark = "  [equivalent]" if m.key in equivalent else ""
            print(f"  {path}:{m.line}  {m.where}: `{m.original}` -> `{m.replacement}`{mark}")
        return {}
    with tempfile.TemporaryDirectory(prefix=f"mutate-{name}-") as tmp:
        tree = Path(tmp)
        _copy_tree(tree)
        check = subprocess.run([sys.executable, "-c", "import ergo; print(ergo.__file__)"], cwd=tree,
                               env=_env(tree), capture_output=True, text=True)
        if not check.stdout.strip().startswith(str(tree)):
            raise SystemExit(f"the copy is not what gets imported: {check.stdout or check.stderr}")
        status, baseline = _pytest(tree, tests, 900)
        if status != "survived":
            raise SystemExit(f"the tests of {name} do not pass on the unmutated tree ({status})")
        timeout = 3 * baseline + 20
        print(f"   baseline {baseline:.1f} s; a mutant times out after {timeout:.0f} s", flush=True)
        target = tree / path
        for i, m in enumerate(chosen, 1):
            mutated = apply(source, m)
            try:
                compile(mutated, path, "exec")
            except SyntaxError as e:
                raise SystemExit(f"bug in the mutator: {m.key}: {e}") from None
            target.write_text(mutated)
            try:
                result, took = _pytest(tree, tests, timeout)
            finally:
                target.write_text(source)
            if m.key in equivalent:
                m.status = "equivalent" if result == "survived" else "equivalent-killed"
            else:
                m.status = result
            print(f"   [{i:>3}/{len(chosen)}] {m.status:<17} {took:5.1f}s  {path}:{m.line} "
                  f"`{m.original[:60]}` -> `{m.replacement[:60]}`", flush=True)
    return report(name, path, source, chosen, equivalent)


def report(name: str, path: str, source: str, chosen: list[Mutant], equivalent: dict[str, str]) -> dict:
    killed = sum(m.status in ("killed", "timeout", "equivalent-killed") for m in chosen)
    survived = [m for m in chosen if m.status == "survived"]
    excluded = [m for m in chosen if m.status == "equivalent"]
    wrong = [m for m in chosen if m.status == "equivalent-killed"]
    changing = len(chosen) - len(excluded)
    score = killed / changing if changing else 1.0
    print(f"-- {name}: killed {killed} / {changing} behaviour-changing = {score:.0%} "
          f"({len(excluded)} equivalent excluded, {len(survived)} survived)")
    for m in excluded:
        print(f"   equivalent {path}:{m.line} `{m.original}` -> `{m.replacement}`: {equivalent[m.key]}")
    for m in wrong:
        print(f"   WRONG ANNOTATION (a test kills it, so it is not equivalent): {m.key}")
    for m in survived:
        print(f"   SURVIVED {path}:{m.line} in {m.where}\n     key: {m.key}")
        diff = difflib.unified_diff(source.splitlines(), apply(source, m).splitlines(), path, path + " (mutant)",
                                    n=1, lineterm="")
        print("\n".join("     " + d for d in list(diff)[2:]))
    RESULTS.mkdir(exist_ok=True)
    result = {"module": name, "killed": killed, "changing": changing, "score": score,
              "equivalent": len(excluded), "mutants": [asdict(m) | {"key": m.key} for m in chosen]}
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="default: all of " + ", ".join(MODULES))
    parser.add_argument("--n", type=int, default=40, help="mutants sampled per module (default 40)")
    parser.add_argument("--seed", type=int, default=10, help="the sampling seed (default 10)")
    parser.add_argument("--survivors", action="store_true", help="run only the last run's survivors of each module")
    parser.add_argument("--list", action="store_true", help="print the sampled mutants, run nothing")
    args = parser.parse_args()
    # a plain kill still removes the temporary tree and the test run it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    unknown = set(args.modules) - set(MODULES)
    if unknown:
        parser.error(f"unknown modules {sorted(unknown)}: choose from {', '.join(MODULES)}")
    results = []
    for name in args.modules or list(MODULES):
        only = None
        if args.survivors:
            last = json.loads((RESULTS / f"{name}.json").read_text())
            only = {m["key"] for m in last["mutants"] if m["status"] == "survived"}
        r = run_module(name, args.n, args.seed, only, args.list)
        if r:
            results.append(r)
    if len(results) > 1:
        print("\n== scores (killed / behaviour-changing; equivalents excluded)")
        for r in results:
            print(f"   {r['module']:<10} {r['killed']:>3} / {r['changing']:<3} {r['score']:.0%}"
                  f"   ({r['equivalent']} equivalent)")


if __name__ == "__main__":
    main()

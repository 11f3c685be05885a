"""No source of nondeterminism in the runtime: a static scan of ``ergo/`` and ``sim/``.

A simulated run is determined by its seed only if nothing on its path reads the wall
clock, the global ``random`` generator, an object's address (``id()``, the default
``hash()``), or the order of a set (a set of strings is ordered by ``PYTHONHASHSEED``, a
set of objects by their addresses).  The dynamic check (tests/test_trace.py) runs a
workload under two hash seeds; this one reads every module, so a new place that does one
of these things fails here even if no workload reaches it.  A place that is allowed says
why in ``ALLOWED``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ergo", "sim")

#: calls that read the wall clock or an entropy source: module -> functions
CLOCKS = {
    "time": {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "process_time"},
    "datetime": {"now", "utcnow", "today"},
    "date": {"today"},
    "os": {"urandom", "getrandom"},
    "uuid": {"uuid1", "uuid4"},
    "secrets": None,  # everything in it
}

#: (file, rule, enclosing function) -> why it is not a source of nondeterminism
ALLOWED: dict[tuple[str, str, str], str] = {
    ("ergo/gen/ids.py", "hash", "__hash__"):
        "an identifier hashes as its fields do: only dict lookups use it, never an order",
    ("ergo/gen/ids.py", "hash", "__post_init__"):
        "a ref's or alias's hash, kept on it for the lookups of __hash__: never an order",
    ("ergo/gen/ids.py", "hash", "_keep_hash"):
        "a ref's or alias's hash, kept on it for the lookups of __hash__: never an order",
    ("ergo/node/node.py", "hash", "make_ref"):
        "the hash Ref.__hash__ would make, kept on the ref for its lookups: never an order",
    ("ergo/wire/enp.py", "hash", "_ref"):
        "the hash Ref.__hash__ would make, kept on the ref for its lookups: never an order",
    ("ergo/gen/errors.py", "hash", "__hash__"):
        "an error hashes as its class name and args: only dict lookups use it",
    ("ergo/wire/edf.py", "hash", "_enter"):
        "the decoder counts values sharing a hash (its defence against hash flooding): a "
        "lookup, and whether a value is refused does not depend on the hash's value",
    ("ergo/gen/options.py", "clock:os.urandom", "with_cookie"):
        "the default entropy for a cookie on the asyncio backend; a node passes its "
        "scheduler's random (seeded in simulation)",
    ("ergo/wire/handshake.py", "clock:os.urandom", "__init__"):
        "the default entropy for a nonce when the caller gives none; the network layer "
        "always passes its scheduler's random (seeded in simulation)",
    ("sim/runner.py", "clock:time.perf_counter", "_wall"):
        "the runner (python -m sim) reports how long seeds took; no simulation reads it",
    ("sim/runner.py", "random", "_random_seeds"):
        "the runner's --random draws new seeds from the OS and prints them; each run is "
        "determined by the seed it is given",
}


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


#: methods whose result is a new set
_SET_METHODS = ("union", "intersection", "difference", "symmetric_difference")


def _keys_view(v: ast.AST) -> bool:
    """``d.keys()`` or ``d.items()``: with ``&``, ``|``, ``-``, ``^`` they make a set."""
    return (isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr in ("keys", "items")
            and not v.args)


def _scope_of(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST | None:
    """The function ``node`` is in (None: the module)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return node
    return None


def _set_names(tree: ast.AST, parents: dict[ast.AST, ast.AST]) -> tuple[set[str], set[tuple[ast.AST | None, str]]]:
    """What the module makes or annotates as a set: attributes (``self.x``: ``x``, for the
    whole module) and plain names (with the function they belong to)."""
    attrs: set[str] = set()
    names: set[tuple[ast.AST | None, str]] = set()

    def is_set_value(v: ast.AST | None) -> bool:
        if isinstance(v, (ast.Set, ast.SetComp)):
            return True
        if isinstance(v, ast.Call):  # set(...), frozenset(...), a.union(b), a.keys() - b ...
            f = v.func
            return (isinstance(f, ast.Name) and f.id in ("set", "frozenset")) or (
                isinstance(f, ast.Attribute) and f.attr in _SET_METHODS)
        if isinstance(v, ast.BinOp) and isinstance(v.op, (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor)):
            return is_set_value(v.left) or is_set_value(v.right) or _keys_view(v.left) or _keys_view(v.right)
        return False

    def is_set_type(a: ast.AST | None) -> bool:
        if isinstance(a, ast.Subscript):
            a = a.value
        if isinstance(a, ast.Constant) and isinstance(a.value, str):
            return a.value.split("[")[0] in ("set", "frozenset", "Set", "AbstractSet")
        return isinstance(a, ast.Name) and a.id in ("set", "frozenset", "Set", "AbstractSet")

    def add(t: ast.AST) -> None:
        if isinstance(t, ast.Name):
            names.add((_scope_of(t, parents), t.id))
        elif isinstance(t, ast.Attribute):
            attrs.add(t.attr)

    def known(v: ast.AST) -> bool:
        if isinstance(v, ast.Name):
            return (_scope_of(v, parents), v.id) in names
        return isinstance(v, ast.Attribute) and v.attr in attrs

    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and (is_set_type(node.annotation) or is_set_value(node.value)):
            add(node.target)
        elif isinstance(node, ast.Assign) and is_set_value(node.value):
            for t in node.targets:
                add(t)
        elif isinstance(node, ast.arg) and is_set_type(node.annotation):
            names.add((parents.get(parents.get(node)), node.arg))  # arg -> arguments -> function
    # a set handed on (``pending, self.pending = self.pending, set()``) is a set still
    for _ in range(3):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assign):
                continue
            for t in node.targets:
                if isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    for te, ve in zip(t.elts, node.value.elts):
                        if known(ve) or is_set_value(ve):
                            add(te)
                elif known(node.value):
                    add(t)
    return attrs, names


def _findings(path: Path) -> list[tuple[str, str, int, str]]:
    """(rule, enclosing function, line, what) for each suspicious place in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, str, int, str]] = []
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    set_attrs, set_names = _set_names(tree, parents)

    def function_of(node: ast.AST) -> str:
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node.name
        return "<module>"

    def note(rule: str, node: ast.AST, what: str) -> None:
        found.append((rule, function_of(node), getattr(node, "lineno", 0), what))

    def a_set(node: ast.AST) -> bool:
        if isinstance(node, (ast.Set, ast.SetComp)):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("set", "frozenset"):
            return True
        if isinstance(node, ast.Name):
            return (_scope_of(node, parents), node.id) in set_names
        return isinstance(node, ast.Attribute) and node.attr in set_attrs

    for node in ast.walk(tree):
        # the global random generator (random.Random, a generator of one's own, is fine)
        if isinstance(node, ast.ImportFrom) and node.module == "random":
            for alias in node.names:
                if alias.name != "Random":
                    note("random", node, f"from random import {alias.name}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module, attr = node.value.id, node.attr
            if module == "random" and attr not in ("Random",):
                note("random", node, f"random.{attr}")
            elif module in CLOCKS and (CLOCKS[module] is None or attr in CLOCKS[module]):  # type: ignore[operator]
                note(f"clock:{module}.{attr}", node, f"{module}.{attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("id", "hash"):
            note(node.func.id, node, f"{node.func.id}(...)")
        elif isinstance(node, ast.keyword) and isinstance(node.value, ast.Name) and node.value.id in ("id", "hash"):
            note(node.value.id, node.value, f"{node.arg}={node.value.id}")  # sorted(xs, key=id)
        # iterating a set: its order is the hash seed's (strings) or the addresses' (objects)
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and a_set(node.iter):
            note("set order", node if not isinstance(node, ast.comprehension) else node.iter,
                 f"iterates {ast.unparse(node.iter)}")
        elif isinstance(node, ast.Starred) and a_set(node.value):
            note("set order", node, f"unpacks *{ast.unparse(node.value)}")
        elif (isinstance(node, ast.Call) and node.args and a_set(node.args[0])
              and ((isinstance(node.func, ast.Name) and node.func.id in ("list", "tuple", "enumerate", "iter", "next"))
                   or (isinstance(node.func, ast.Attribute) and node.func.attr in ("fromkeys", "join", "extend")))):
            note("set order", node, f"{ast.unparse(node.func)}({ast.unparse(node.args[0])})")
    return found


def test_the_scan_finds_each_kind_of_source(tmp_path):
    """The scanner itself: each rule fires on a sample (else a clean result proves nothing)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import random, time, os\n"
        "from random import choice\n"
        "class A:\n"
        "    def __init__(self):\n"
        "        self.peers: set[str] = set()\n"
        "    def f(self, names: frozenset[str]):\n"
        "        random.shuffle([1])\n"
        "        time.time()\n"
        "        os.urandom(4)\n"
        "        id(self)\n"
        "        for p in self.peers: pass\n"
        "        xs = [n for n in names]\n"
        "        ys = [*self.peers]\n"
        "        rng = random.Random(1)\n"
        "        ok = sorted(self.peers)\n"
        "        taken, self.peers = self.peers, set()\n"
        "        for p in taken: pass\n"
        "        by_address = sorted([self], key=id)\n"
        "        both = {'a': 1}.keys() & {'b': 2}.keys()\n"
        "        print(*both)\n"
    )
    rules = sorted({f[0] for f in _findings(sample)})
    assert rules == ["clock:os.urandom", "clock:time.time", "id", "random", "set order"]
    assert sum(1 for f in _findings(sample) if f[0] == "set order") == 5
    assert sum(1 for f in _findings(sample) if f[0] == "random") == 2
    assert sum(1 for f in _findings(sample) if f[0] == "id") == 2


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_wall_clock_global_random_address_or_set_order_in_the_runtime(path):
    rel = str(path.relative_to(ROOT))
    bad = [f"{rel}:{line} in {fn}: {what} ({rule})" for rule, fn, line, what in _findings(path)
           if (rel, rule, fn) not in ALLOWED]
    assert not bad, "a source of nondeterminism on the simulation's path:\n" + "\n".join(bad)


def test_every_allowed_place_still_exists():
    """An exception that no longer matches anything is dropped, so the list stays true."""
    seen = {(str(p.relative_to(ROOT)), rule, fn) for p in _sources() for rule, fn, _, _ in _findings(p)}
    assert set(ALLOWED) <= seen, set(ALLOWED) - seen

"""The pytest plugin: fixtures for simulated and asyncio nodes, and tests run over many seeds.

Installed with the package and registered through the ``pytest11`` entry point, so a
project that depends on ergonode gets it without a ``conftest.py``:

- ``simulation``: a fresh :class:`sim.Sim` with the test's seed.
- ``sim_node``: a node ``test@localhost`` on it (default logger off).
- ``sim_cluster``: ``sim_cluster(3)`` starts ``n1@host1`` … ``n3@host3`` on it.
- ``asyncio_node``: a node on a fresh asyncio event loop of its own.
- ``sim_seed``: the seed (``--sim-seed N``, default 0).

Every node a fixture started is force-stopped at teardown, and an asyncio loop is closed.

``@pytest.mark.sim_seeds(20)`` (or ``sim_seeds([3, 7])``) runs a test once per seed, as
does ``--sim-seeds N`` for every test that uses the seed; a failing case is named
``test_x[seed=7]``, and its report says the command that replays it alone.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Generator, Iterator
from typing import cast

import pytest

from ergo.gen.errors import Incorrect
from ergo.gen.options import LogOptions, NodeOptions
from ergo.node.node import Node

from .sim import Sim

__all__ = ["asyncio_node", "sim_cluster", "sim_node", "sim_seed", "simulation"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ergonode", "ergonode simulation")
    group.addoption("--sim-seed", type=int, default=None, metavar="N",
                    help="the seed of every simulation fixture (default 0)")
    group.addoption("--sim-seeds", type=int, default=None, metavar="N",
                    help="run every test that uses a simulation fixture once per seed 0..N-1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sim_seeds(seeds): run this test once per seed: an int n (seeds 0..n-1) or a list of seeds")


def _seeds(spec: object) -> list[int]:
    if isinstance(spec, int) and not isinstance(spec, bool):
        if spec < 1:
            raise Incorrect(f"sim_seeds needs at least one seed, not {spec}")
        return list(range(spec))
    if isinstance(spec, (list, tuple, range)) and spec and all(
            isinstance(s, int) and not isinstance(s, bool) for s in spec):
        return list(spec)
    raise Incorrect(f"sim_seeds takes a count or a non-empty list of int seeds, not {spec!r}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sim_seed" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("sim_seeds")
    count = metafunc.config.getoption("--sim-seeds")
    if marker is not None:
        seeds = _seeds(marker.args[0] if marker.args else marker.kwargs.get("seeds"))
    elif count is not None:
        seeds = _seeds(count)
    else:
        return
    metafunc.parametrize("sim_seed", seeds, ids=[f"seed={s}" for s in seeds])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                                         pytest.TestReport]:
    report = yield
    if report.failed and "sim_seed" in getattr(item, "fixturenames", ()):
        report.sections.append(("simulation", _replay_line(item)))
    return report


def _replay_line(item: pytest.Item) -> str:
    """The seed a failing test ran with and the command that runs it alone with that seed.

    A case ``[seed=N]`` exists only where it was made: by the test's ``sim_seeds`` marker
    (its node id is enough), or by ``--sim-seeds`` (the command must say it again, or
    pytest finds no such case); a test that took its seed from ``--sim-seed`` runs it
    again only with that option."""
    config = item.config
    callspec = getattr(item, "callspec", None)
    options: list[str] = []
    if callspec is not None and "sim_seed" in callspec.params:
        seed = callspec.params["sim_seed"]
        if item.get_closest_marker("sim_seeds") is None:
            options = ["--sim-seeds", str(config.getoption("--sim-seeds"))]
    else:
        given = config.getoption("--sim-seed")
        seed = 0 if given is None else given
        if given is not None:
            options = ["--sim-seed", str(given)]
    command = shlex.join(["pytest", item.nodeid, *options])
    return f"the simulation's seed was {seed}; replay this seed alone: {command}"


@pytest.fixture
def sim_seed(request: pytest.FixtureRequest) -> int:
    """The seed of this test's simulation: ``--sim-seed N``, or 0."""
    seed = request.config.getoption("--sim-seed")
    return 0 if seed is None else seed


_QUIET = NodeOptions(log=LogOptions(default_logger=False))


def _stop_all(nodes: list[Node]) -> None:
    for node in nodes:
        if node.is_alive():
            node.stop_force()


@pytest.fixture
def simulation(sim_seed: int) -> Iterator[Sim]:
    """A fresh simulated world with the test's seed; its nodes are force-stopped afterwards."""
    s = Sim(sim_seed)
    yield s
    _stop_all([n for h in s.world.hosts.values() for n in h.nodes.values()])


@pytest.fixture
def sim_node(simulation: Sim) -> Node:
    """A node ``test@localhost`` on the test's simulation, its default logger off."""
    return simulation.start_node("test@localhost", _QUIET)


@pytest.fixture
def sim_cluster(simulation: Sim) -> Callable[..., list[Node]]:
    """``sim_cluster(n)`` starts nodes ``n1@host1`` … ``nN@hostN``, one per simulated host."""

    def start(n: int, options: NodeOptions | None = None) -> list[Node]:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise Incorrect(f"a cluster has at least one node, not {n!r}")
        return [simulation.start_node(f"n{i}@host{i}", options or _QUIET) for i in range(1, n + 1)]

    return start


@pytest.fixture
def asyncio_node() -> Iterator[Node]:
    """A node ``test@localhost`` on a fresh asyncio loop of its own (no signal handlers).

    Drive it from the test with the node's blocking calls (``node.call``, ``node.wait``),
    which run that loop until they complete.
    """
    import asyncio

    import net  # here, not at the top: a project that only simulates need not import asyncio code

    node = net.start_node("test@localhost", _QUIET, handle_signals=False)  # on a new loop of its own
    loop = cast(net.AsyncioScheduler, node.scheduler).loop
    try:
        yield node
    finally:
        if node.is_alive():
            node.stop_force()
        loop.close()
        asyncio.set_event_loop(None)

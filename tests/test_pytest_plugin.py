"""The pytest plugin the package registers: its fixtures, seeds, and Sim's run rules."""

from __future__ import annotations

import shlex

import pytest

import sim
from ergo import Actor, Node, ProcessState, Timeout

pytest_plugins = ["pytester"]


class Ticker(Actor):
    """Sends itself a tick every second, forever: a simulation that never goes quiet."""

    def init(self) -> None:
        self.ticks = 0
        self.send_after(self.pid, "tick", 1)

    def handle_message(self, from_, message) -> None:
        self.ticks += 1
        self.send_after(self.pid, "tick", 1)


def _ticks(node: Node, pid) -> int:
    return node._processes[pid.id].ticks


def test_the_plugin_is_registered_by_the_package(pytestconfig: pytest.Config):
    assert pytestconfig.pluginmanager.has_plugin("ergonode")


def test_sim_node_runs_on_the_simulation_fixture(simulation: sim.Sim, sim_node: Node):
    # each node runs on a scheduler of its own (killable alone), on its host's clock
    assert simulation.host("localhost").nodes[sim_node.name.value] is sim_node
    assert sim_node.scheduler.now() == simulation.now
    assert sim_node.is_alive() and "default" not in sim_node.loggers()


def test_sim_cluster_starts_one_node_per_host(sim_cluster):
    nodes = sim_cluster(3)
    assert [n.name for n in nodes] == ["n1@host1", "n2@host2", "n3@host3"]


def test_run_for_includes_a_timer_due_exactly_at_the_end(simulation: sim.Sim, sim_node: Node):
    pid = sim_node.spawn(Ticker)
    simulation.run_for(10)
    assert simulation.now == 10 and _ticks(sim_node, pid) == 10
    simulation.run(until=12)
    assert simulation.now == 12 and _ticks(sim_node, pid) == 12


def test_run_gives_up_on_a_simulation_that_never_goes_quiet(simulation: sim.Sim, sim_node: Node):
    sim_node.spawn(Ticker)
    with pytest.raises(Timeout, match="still busy after 100 virtual seconds"):
        simulation.run(limit=100)
    assert simulation.now <= 100


def test_run_until_stops_when_the_predicate_holds(simulation: sim.Sim, sim_node: Node):
    pid = sim_node.spawn(Ticker)
    simulation.run_until(lambda: _ticks(sim_node, pid) >= 5)
    assert _ticks(sim_node, pid) == 5 and simulation.now == 5


def test_run_until_raises_when_it_can_never_hold(simulation: sim.Sim, sim_node: Node):
    with pytest.raises(Timeout, match="nothing is left to run"):
        simulation.run_until(lambda: False)
    sim_node.spawn(Ticker)
    with pytest.raises(Timeout, match="after 3 virtual seconds"):
        simulation.run_until(lambda: False, timeout=3)
    assert simulation.now == 3


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1, "1", None, True])
def test_run_times_must_be_finite_non_negative_numbers(simulation: sim.Sim, bad):
    from ergo import Incorrect

    with pytest.raises(Incorrect):
        simulation.run_for(bad)
    if bad is not None:
        with pytest.raises(Incorrect):
            simulation.run(until=bad)


def test_asyncio_node_answers_calls_and_is_stopped_after(asyncio_node: Node):
    class Echo(Actor):
        def handle_call(self, from_, ref, request):
            return request

    pid = asyncio_node.spawn(Echo)
    assert asyncio_node.call(pid, "hi") == "hi"
    assert asyncio_node.process_info(pid).state in (ProcessState.SLEEP, ProcessState.RUNNING)


def test_sim_seeds_runs_a_test_per_seed_and_names_the_replay(pytester: pytest.Pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.sim_seeds(4)
        def test_seeded(simulation, sim_seed):
            assert simulation.seed == sim_seed
            assert sim_seed != 2
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_seeded?seed=2?*", "*replay this seed alone: pytest '*test_seeded[[]seed=2[]]'*"])


def _replay(pytester: pytest.Pytester, result: pytest.RunResult) -> pytest.RunResult:
    """Run the replay command a failing seeded test's report printed, as printed."""
    lines = [line for line in result.outlines if "replay this seed alone: " in line]
    assert len(lines) == 1, result.outlines
    command = shlex.split(lines[0].split("replay this seed alone: ", 1)[1])
    assert command[0] == "pytest"
    return pytester.runpytest("-p", "no:cacheprovider", "-s", *command[1:])


_FAILS_AT_SEED_2 = """
def test_seeded(simulation, sim_seed):
    print("RAN WITH SEED", simulation.seed)
    assert sim_seed != 2
"""


@pytest.mark.parametrize(
    ("head", "options"),
    [
        ("import pytest\n\n@pytest.mark.sim_seeds(4)", ()),  # seeds marked on the test
        # the cases exist only under --sim-seeds: a bare node id of one is "not found"
        ("", ("--sim-seeds", "4")),
    ],
    ids=["marked", "sim-seeds option"],
)
def test_the_replay_command_of_a_seeded_failure_runs_that_seed_alone(pytester: pytest.Pytester, head, options):
    pytester.makepyfile(head + _FAILS_AT_SEED_2)
    result = pytester.runpytest("-p", "no:cacheprovider", *options)
    result.assert_outcomes(passed=3, failed=1)
    again = _replay(pytester, result)
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*RAN WITH SEED 2*"])


def test_a_failure_under_the_sim_seed_option_names_its_seed_and_replay(pytester: pytest.Pytester):
    pytester.makepyfile(_FAILS_AT_SEED_2)
    result = pytester.runpytest("-p", "no:cacheprovider", "--sim-seed", "2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*seed 2*"])
    again = _replay(pytester, result)
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*RAN WITH SEED 2*"])


def test_sim_seed_option_sets_the_seed_and_sim_seeds_option_multiplies(pytester: pytest.Pytester):
    pytester.makepyfile("""
        def test_seed(simulation, sim_seed):
            assert simulation.seed == sim_seed
            print("SEED", sim_seed)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s", "--sim-seed", "41")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SEED 41*"])
    result = pytester.runpytest("-p", "no:cacheprovider", "--sim-seeds", "5")
    result.assert_outcomes(passed=5)


def test_fixture_nodes_are_stopped_at_teardown(pytester: pytest.Pytester):
    pytester.makepyfile("""
        import pytest
        kept = []

        def test_a(sim_node, sim_cluster):
            kept.append(sim_node)
            kept.extend(sim_cluster(2))

        def test_b():
            assert kept and not any(n.is_alive() for n in kept)
    """)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)

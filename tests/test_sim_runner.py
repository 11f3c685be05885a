"""``python -m sim``: running a scenario over seeds in worker processes, the summary, the
replay command of every failing seed, and replay writing the trace (and the chart)."""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest

import sim
from sim.runner import main, parse_seeds, replay_command, scenario_target

ROOT = Path(__file__).resolve().parent.parent

#: fails on the seeds whose draw is 3 or 7 (which ones is up to the seed alone)
FLAKY = '''
import sim
from ergo import Actor


class Echo(Actor):
    def handle_call(self, from_, ref, request):
        return request


def draw(seed):
    return sim.Sim(seed).world.rng("flaky").randrange(10)


def scenario(s):
    node = s.start_node("a@h1")
    pid = node.spawn(Echo)
    x = s.world.rng("flaky").randrange(10)
    s.run_for(2.5)
    assert node.call(pid, x) not in (3, 7), f"the echo answered {x}, a bad number"
'''


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def flaky(tmp_path: Path) -> Path:
    path = tmp_path / "flaky.py"
    path.write_text(FLAKY)
    return path


def _failing_seeds(path: Path, seeds: range) -> list[int]:
    import runpy

    draw = runpy.run_path(str(path))["draw"]
    return [s for s in seeds if draw(s) in (3, 7)]


def test_run_over_a_range_in_workers_prints_progress_and_a_summary_and_exits_0():
    proc = run_cli("run", "scenarios/one_way_partition.py", "--seeds", "0..3", "--jobs", "2", cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4/4 seeds, 0 failed" in proc.stderr  # the progress bar
    for row in ("seeds run +4", "passed +4", "failed +0", r"wall time +[0-9.]+ s \(2 workers\)",
                r"virtual time +[0-9.]+ s \([0-9]+x wall\)"):
        assert re.search(f"^{row}$", proc.stdout, re.MULTILINE), (row, proc.stdout)
    assert "replay" not in proc.stdout


def test_failing_seeds_exit_1_and_each_names_the_command_that_replays_it(flaky: Path):
    expected = _failing_seeds(flaky, range(0, 20))
    assert expected  # the scenario does fail on some of these seeds
    proc = run_cli("run", "flaky.py", "--seeds", "0..19", "--jobs", "2", cwd=flaky.parent)
    assert proc.returncode == 1
    failing = [int(line.split()[1].rstrip(":")) for line in proc.stdout.splitlines() if line.startswith("  seed ")]
    assert failing == expected
    for seed in expected:
        assert f"    replay: python -m sim replay flaky.py --seed {seed}\n" in proc.stdout
    assert "AssertionError: the echo answered" in proc.stdout
    assert f"failed        {len(expected)}" in proc.stdout


def test_the_printed_replay_command_reproduces_the_failure_and_writes_the_trace(flaky: Path):
    proc = run_cli("run", "flaky.py", "--seeds", "0..19", "--jobs", "1", cwd=flaky.parent)
    command = next(line.split("replay: ", 1)[1] for line in proc.stdout.splitlines() if "replay: " in line)
    seed = int(command.split()[-1])
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "sim"]
    replay = subprocess.run([sys.executable, *argv[1:], "--trace", "out.jsonl"], cwd=flaky.parent,
                            capture_output=True, text=True, timeout=120)
    assert replay.returncode == 1
    assert f"seed {seed} failed: AssertionError: the echo answered" in replay.stdout
    assert 'flaky.py", line' in replay.stdout  # the traceback
    events = sim.Trace.read(flaky.parent / "out.jsonl")
    answered = [e for e in events if e["kind"] == "reply"]
    assert answered and answered[-1]["msg"] in ("3", "7") and answered[-1]["t"] == 2.5
    digest = next(line for line in replay.stdout.splitlines() if line.startswith("trace: ")).split("sha256 ")[1]
    again = run_cli("replay", "flaky.py", "--seed", str(seed), "--trace", "again.jsonl", cwd=flaky.parent)
    assert again.returncode == 1 and f"sha256 {digest.rstrip(')')}" in again.stdout  # exactly the same run


def test_replay_of_a_passing_seed_exits_0_and_writes_the_trace_by_default_next_to_you(flaky: Path):
    seed = next(s for s in range(20) if s not in _failing_seeds(flaky, range(20)))
    proc = run_cli("replay", "flaky.py", "--seed", str(seed), cwd=flaky.parent)
    assert proc.returncode == 0 and f"seed {seed} passed" in proc.stdout
    lines = (flaky.parent / f"flaky-{seed}.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "node_start"


def test_replay_draws_the_chart_titled_with_the_scenario_and_seed(flaky: Path, monkeypatch, capsys):
    drawn = []

    def render(events, path=None, *, title=None):
        drawn.append((len(events), path, title))
        Path(path).write_text("<html></html>")
        return "<html></html>"

    monkeypatch.setitem(sys.modules, "sim.chart", types.SimpleNamespace(render=render))
    monkeypatch.chdir(flaky.parent)
    out = io.StringIO()
    assert main(["replay", "flaky.py", "--seed", "0", "--trace", "t.jsonl", "--chart", "c.html"], out=out) in (0, 1)
    assert drawn == [(len(sim.Trace.read("t.jsonl")), "c.html", "flaky.py, seed 0")]
    assert "chart: c.html" in out.getvalue()


def test_replay_writes_a_real_chart(flaky: Path):
    proc = run_cli("replay", "flaky.py", "--seed", "0", "--chart", "c.html", cwd=flaky.parent)
    assert proc.returncode in (0, 1) and "chart: c.html" in proc.stdout, proc.stdout + proc.stderr
    html = (flaky.parent / "c.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "<svg" in html and "a@h1" in html


def test_random_seeds_are_printed_so_that_the_run_can_be_repeated(flaky: Path, monkeypatch):
    monkeypatch.chdir(flaky.parent)
    out, err = io.StringIO(), io.StringIO()
    code = main(["run", "flaky.py", "--random", "5", "--jobs", "1"], out=out, err=err)
    text = out.getvalue()
    seeds = [int(s) for s in text.splitlines()[0].removeprefix("seeds: ").split()]
    assert len(seeds) == 5 and "seeds run     5" in text
    assert code == (1 if _failing_seeds(flaky, seeds) else 0)


def test_a_scenario_can_be_named_as_module_and_function(tmp_path: Path, monkeypatch):
    (tmp_path / "mymod.py").write_text("def quick(s):\n    s.run_for(1)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = io.StringIO()
    assert main(["run", "mymod:quick", "--seed", "3"], out=out, err=io.StringIO()) == 0
    assert "passed        1" in out.getvalue()


@pytest.mark.parametrize(("args", "message"), [
    ([], "required"),
    (["run", "scenarios/one_way_partition.py"], "one of the arguments --seed --seeds --random is required"),
    (["run", "scenarios/nope.py", "--seed", "1"], "no scenario file scenarios/nope.py"),
    (["run", "scenarios/one_way_partition.py", "--seeds", "5..1"], "A..B with integers A <= B"),
    (["run", "scenarios/one_way_partition.py", "--seeds", "x"], "A..B with integers A <= B"),
    (["run", "scenarios/one_way_partition.py", "--random", "0"], "--random takes a count"),
    (["run", "scenarios/one_way_partition.py", "--seed", "1", "--jobs", "0"], "--jobs takes a number"),
    (["run", "scenarios/one_way_partition.py", "--seed", "1", "--seeds", "1..2"], "not allowed with"),
    (["run", "scenarios/one_way_partition.py:nothing", "--seed", "1"], "nothing"),
    (["run", "README.md", "--seed", "1"], "file.py, file.py:function or module:function"),
    (["replay", "scenarios/one_way_partition.py"], "--seed"),
    (["fly", "x"], "invalid choice"),
])
def test_bad_arguments_are_a_usage_error(args, message, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(args, out=io.StringIO(), err=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "usage: python -m sim" in err and message in err, err


def test_seed_ranges_targets_and_commands():
    assert parse_seeds("3..5") == [3, 4, 5] and parse_seeds("-1..0") == [-1, 0] and parse_seeds("7..7") == [7]
    assert scenario_target(str(ROOT / "scenarios" / "crash_restart.py")).endswith("crash_restart.py:scenario")
    assert scenario_target("pkg.mod:fn") == "pkg.mod:fn"
    assert replay_command("my scenarios/x.py", 4) == "python -m sim replay 'my scenarios/x.py' --seed 4"

"""The benchmarks run and print well-formed lines (their timing is never checked here)."""

from __future__ import annotations

import json
import math

import pytest

from bench import codec, local, network

TINY = {"send": 300, "send_pykka": 100, "call": 50, "call_pykka": 20, "spawn": 200, "memory": 200, "sim": 400,
        "monitor_rounds": 200, "fanout_subscribers": 50, "fanout_events": 2, "restarts": 200}


def _check(line: dict) -> None:
    assert set(line) >= {"name", "value", "unit", "baseline", "ratio"}
    assert isinstance(line["name"], str) and isinstance(line["unit"], str)
    for key in ("value", "baseline", "ratio"):
        assert isinstance(line[key], (int, float)) and math.isfinite(line[key]) and line[key] > 0
    assert isinstance(line.get("baseline_name", ""), str)
    if "target" in line:
        assert line["target_on"] in ("ratio", "value") and line["target_op"] in (">=", "<=")
        assert isinstance(line["met"], bool)
    assert json.loads(json.dumps(line)) == line


@pytest.mark.parametrize("name", list(local.BENCHES))
def test_bench_function_yields_json_lines(name):
    lines = local.BENCHES[name](TINY, 1)
    assert lines
    for line in lines:
        _check(line)


def test_main_prints_one_json_object_per_line(capsys, monkeypatch):
    monkeypatch.setattr(local, "QUICK_SIZES", TINY)
    assert local.main(["--quick", "--only", "send,spawn"]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(s) for s in out.splitlines()]
    expected = ["send.local.asyncio", "send.local.asyncio.vs_pykka", "spawn_kill.local"]
    if local.pykka is None:  # the Pykka comparison is skipped, not failed, without Pykka
        expected.remove("send.local.asyncio.vs_pykka")
    assert [line["name"] for line in lines] == expected
    for line in lines:
        _check(line)
    assert "ergonode local benchmarks" in err


NETWORK_TINY = {"send": 300, "call": 30, "fanout_subscribers": 30, "fanout_events": 2, "sim": 400, "call_async": 50}


@pytest.mark.parametrize("name", list(network.BENCHES))
def test_network_bench_yields_json_lines(name):
    # the measuring side runs here, the far side in child processes on loopback
    lines = network.BENCHES[name](NETWORK_TINY, 1)
    assert lines
    for line in lines:
        _check(line)


def test_network_call_bench_times_the_runtime_and_a_floor_of_the_same_frames():
    # (the floor checks, before timing, that its frames are byte for byte the codec's)
    lines = network.BENCHES["call"](NETWORK_TINY, 1)
    assert [line["name"] for line in lines] == ["call.network.asyncio",
                                                "floor: call.network.asyncio, a minimal actor call"]
    assert "target" in lines[0] and "target" not in lines[1]


def test_sim_bench_yields_json_lines():
    from bench import sim as sim_bench  # (bench/sim.py: named so by issue 8; the package sim is another)

    lines = sim_bench.BENCHES["swarm"]({"swarm_seeds": 1, "simpy_events": 400}, 1)
    assert [line["name"] for line in lines] == ["sim.swarm5.seeds_per_minute", "sim.swarm5.events_per_wall_second",
                                                "sim.swarm5.virtual_per_wall_second"]
    for line in lines:
        _check(line)
    assert lines[0]["target"] == 100 and lines[0]["target_on"] == "value"
    assert lines[2]["value"] > 1  # 30 virtual seconds take less than 30 wall seconds


def test_codec_bench_prints_every_line_and_its_floors_make_the_codecs_bytes(capsys, monkeypatch):
    # batches of two operations: every case (and the floors' own checks that they make the
    # codec's bytes and values) runs, nothing is timed for long
    monkeypatch.setattr(codec, "_size", lambda op, seconds: 2)
    monkeypatch.setattr("sys.argv", ["codec.py", "--quick"])
    codec.main()
    lines = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
    for line in lines:
        _check(line)
    names = [line["name"] for line in lines]
    assert len(names) == len(set(names)) == 12
    assert [n for n in names if n.startswith("floor:")] == [
        "floor: small message with PID/Ref/Atom/tuple, bare hooks",
        "floor: SendPID frame, one struct and one msgpack call each way",
    ]

"""The README's first command's main job, ``python -m net.demo``: a cluster of three nodes in
three OS processes.  It is run as a user runs it (a subprocess, from the project directory)
and its story and exit code are checked; its failure path runs in this process with a
member that never becomes ready."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import net.demo

ROOT = Path(__file__).resolve().parent.parent

#: the story's milestones, in the order they must be told
STORY = [
    "[alice] I am alice@127.0.0.1",
    "I serve the registrar on 127.0.0.1:",
    "[bob] I registered with the registrar on 127.0.0.1:",
    "[carol] I registered with the registrar on 127.0.0.1:",
    "[alice] my registrar knows: alice@127.0.0.1, bob@127.0.0.1, carol@127.0.0.1.",
    "Step 1: a remote call",
    "[alice] bob's counter answered 1, 2, 3",
    "Step 2: supervision",
    "[bob] my counter <",
    "ended (crash); my supervisor restarts it.",
    "[bob] restarted: counter is <",
    "[alice] bob's counter answered 1: a fresh one, restarted by its supervisor",
    "Step 3: remote monitors",
    "[alice] connected to carol@127.0.0.1",
    "[bob] connected to carol@127.0.0.1; I monitor that node too.",
    "Step 4: carol's process is killed",
    "[alice] told: carol's worker is down, reason NoConnection:",
    "[alice]   the connection to carol@127.0.0.1 was lost",
    "[alice] told: node carol@127.0.0.1 is down.",
    "[bob] told: node carol@127.0.0.1 is down.",
    "Step 5: a graceful stop",
    "[bob] asked to stop: stopping gracefully",
    "[alice] told: node bob@127.0.0.1 is down.",
    "[alice] bob's process exited with code 0.",
    "[alice] stopped.",
    "The end:",
]


@contextmanager
def held(host: str, port: int) -> Iterator[bool]:
    """Hold ``port`` on ``host`` (TCP listening, UDP bound) as a registrar or node already
    running there would.  If something holds it already, that serves the test as well, but
    only for as long as that something does: the context's value says whether we hold TCP."""
    with ExitStack() as stack:
        holding = False
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = stack.enter_context(socket.socket(socket.AF_INET, kind))
            try:
                s.bind((host, port))
            except OSError:
                continue
            if kind == socket.SOCK_STREAM:
                s.listen()
                holding = True
        yield holding


def test_the_demo_tells_its_story_in_order_and_exits_0_beside_a_registrar_on_4499():
    with held("127.0.0.1", 4499), held("127.0.0.1", 11144) as holding_11144:
        done = subprocess.run([sys.executable, "-m", "net.demo"], cwd=ROOT, capture_output=True, text=True,
                              timeout=net.demo.TOTAL + 30)  # the demo bounds itself; this is a hang guard
    out = done.stdout
    assert done.returncode == 0, f"exit code {done.returncode}\n{out}\n{done.stderr}"
    at = 0
    for milestone in STORY:
        found = out.find(milestone, at)
        assert found >= 0, f"{milestone!r} is missing or out of order in:\n{out}"
        at = found + len(milestone)
    assert ":4499" not in out  # it chose a free registrar port instead of meeting the one there
    if holding_11144:  # (a concurrent run may have had it, and let it go meanwhile)
        assert "listening on port 11144" not in out  # the node took the next free acceptor port
    for trouble in ("[warning]", "[error]", "[panic]", "Traceback"):
        assert trouble not in out + done.stderr, f"{trouble} in:\n{out}\n{done.stderr}"


def test_a_member_that_never_becomes_ready_fails_the_demo_in_bounded_time_with_a_clear_message(
        monkeypatch, capsys):
    async def silent_member(who: str, port: int, cookie: str) -> net.demo.Member:
        # a process that says nothing and waits for its stdin to close (it never does)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import sys; sys.stdin.read()",
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        return net.demo.Member(who, proc)

    monkeypatch.setattr(net.demo, "start_member", silent_member)
    monkeypatch.setattr(net.demo, "GUARD", 0.5)
    assert asyncio.run(net.demo.run()) == 1
    err = capsys.readouterr().err
    assert "demo failed: bob did not say 'Ready.' within 0.5 s" in err


def test_a_member_that_exits_early_fails_the_demo_saying_which_and_how(monkeypatch, capsys):
    async def crashing_member(who: str, port: int, cookie: str) -> net.demo.Member:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "raise SystemExit(3)",
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        return net.demo.Member(who, proc)

    monkeypatch.setattr(net.demo, "start_member", crashing_member)
    assert asyncio.run(net.demo.run()) == 1
    assert "demo failed: bob exited (code 3) before saying 'Ready.'" in capsys.readouterr().err


def test_the_demo_refuses_arguments_it_does_not_know():
    done = subprocess.run([sys.executable, "-m", "net.demo", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "usage: python -m net.demo" in done.stderr


def test_a_member_stops_when_the_main_process_goes_away():
    """A member whose stdin closes (its main process died) stops instead of running on."""
    who = "bob"
    port = net.demo.free_port("127.0.0.1")
    proc = subprocess.Popen([sys.executable, "-m", "net.demo", "member", who, str(port)], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, net.demo.COOKIE_VARIABLE: "c"})
    try:
        assert proc.stdout is not None and proc.stdin is not None
        while "Ready." not in (line := proc.stdout.readline()):
            assert line, proc.stderr.read() if proc.stderr else "no output"
        proc.stdin.close()  # what the OS does when the main process dies
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert f"[{who}] the demo's main process is gone: stopping." in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_a_registrar_port_taken_before_alice_binds_it_fails_the_demo_saying_so(monkeypatch, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with held("127.0.0.1", port) as holding:
        assert holding
        monkeypatch.setattr(net.demo, "free_port", lambda host: port)  # as if another program won the race
        assert asyncio.run(net.demo.run()) == 1
    assert f"demo failed: alice could not serve the registrar on 127.0.0.1:{port}" in capsys.readouterr().err

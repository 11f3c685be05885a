"""The main job: a cluster of three nodes, each in an OS process of its own, narrated as it runs.

``python -m net.demo`` is alice, a node on asyncio in this process.  She starts bob and carol
as two more Python processes (``python -m net.demo member NAME PORT``), which find each
other through the registrar; then a remote call, a crash that bob's supervisor repairs (his
counter runs in an application, under a supervisor), a remote monitor, carol killed with
``kill -9`` (alice and bob are told), and a graceful stop of everything.

Ports: every node is on 127.0.0.1 (any machine has it).  The registrar (Ergo's ESRD) is
on a port that was free when the demo started, not on the standard 4499, so that the demo
never meets a registrar (or a node) already running on this machine; the nodes accept
connections on the default port, 11144 or the next free one.  The cookie is random for
each run and reaches bob and carol through their environment.

Exit code 0 once the story is told; 1, with a line on stderr saying what went wrong, if a
step did not happen within its bound (``GUARD`` seconds, ``TOTAL`` for the whole).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
import threading
from typing import Any, TextIO

from ergo import (
    PID,
    Actor,
    Application,
    ApplicationMemberSpec,
    ApplicationSpec,
    Atom,
    LogOptions,
    MessageDownNode,
    MessageDownProcessID,
    NetworkOptions,
    NodeOptions,
    ProcessID,
    Ref,
    Supervisor,
    SupervisorChildSpec,
    SupervisorSpec,
    TerminateReason,
)
from ergo.node.node import Node

from .node import start_node

HOST = "127.0.0.1"
#: seconds one step may take before the demo gives up (a guard against a hang, not a pace)
GUARD = 15.0
#: seconds the whole demo may take; a member process gives up after as long
TOTAL = 60.0
COOKIE_VARIABLE = "ERGONODE_DEMO_COOKIE"


def node_name(who: str) -> str:
    return f"{who}@{HOST}"


def say(who: str, text: str, file: TextIO | None = None) -> None:
    try:
        print(f"[{who}] {text}", file=file or sys.stdout, flush=True)
    except BrokenPipeError:  # whoever read our output is gone: go on without it
        _mute_stdout()


# -- bob and carol: the members, each in a process of its own -----------------------------


class Counter(Actor):
    """bob's registered server: ``incr`` adds one and answers the total."""

    def init(self) -> None:
        self.total = 0

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        if request != "incr":
            raise ValueError(f"the counter does not understand {request!r}")
        self.total += 1
        return self.total

    def handle_message(self, from_: PID, message: Any) -> None:
        if message == "crash":
            raise TerminateReason("crash")  # an abnormal end: its supervisor restarts it


class CounterSupervisor(Supervisor):
    """bob's supervisor: it starts the counter, registered as "counter", and restarts it
    (a new process, a fresh count, the same name) whenever it ends abnormally."""

    def init(self) -> SupervisorSpec:
        self.starts = 0
        return SupervisorSpec(children=[SupervisorChildSpec("counter", Counter)], enable_handle_child=True)

    def handle_child_terminate(self, name: Atom, pid: PID, reason: BaseException) -> None:
        say("bob", f"my {name.value} {pid} ended ({reason}); my supervisor restarts it.")

    def handle_child_start(self, name: Atom, pid: PID) -> None:
        self.starts += 1
        if self.starts > 1:
            say("bob", f"restarted: {name.value} is {pid} now, a new process under the same name.")


class Counting(Application):
    """bob's application: one member, the counter's supervisor."""

    def load(self, node: Node, *args: Any) -> ApplicationSpec:
        return ApplicationSpec("counting", group=[ApplicationMemberSpec(CounterSupervisor, name="counting_sup")])


class Worker(Actor):
    """carol's registered process: it only has to exist (alice monitors it)."""


class Control(Actor):
    """Each member's ``control`` process: alice steers the member through it, over the network."""

    def init(self, who: str) -> None:
        self.who = who

    async def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        kind, name = request
        if kind != "monitor node":
            raise ValueError(f"control does not understand {request!r}")
        await self.node.network().get_node(name)  # connected (through the registrar) first
        self.monitor(Atom(name))
        say(self.who, f"connected to {name}; I monitor that node too.")
        return "monitoring"

    def handle_message(self, from_: PID, message: Any) -> None:
        if isinstance(message, MessageDownNode):
            say(self.who, f"told: node {str.__str__(message.name)} is down.")
        elif message == "stop":
            say(self.who, "asked to stop: stopping gracefully (my processes first, then my connections).")
            self.node.stop()
        elif message == "orphaned":
            say(self.who, "the demo's main process is gone: stopping.", sys.stderr)  # stdout has no reader
            self.node.stop()


def member(who: str, port: int) -> int:
    """Run bob or carol until alice asks it to stop (or goes away): the child processes' main."""
    orphan = _Orphan()
    name = node_name(who)
    options = NodeOptions(log=LogOptions(level="warning"),
                          network=NetworkOptions(cookie=os.environ[COOKIE_VARIABLE], registrar_port=port),
                          applications=[Counting()] if who == "bob" else [])
    node = start_node(name, options)  # returns once registered with the registrar
    if who == "bob":  # the application "counting" started with the node: its supervisor runs the counter
        serves = 'a "counter" process, under a supervisor, in the application "counting"'
    else:
        node.spawn_register("worker", Worker)
        serves = 'a "worker" process'
    orphan.control = node.spawn_register("control", Control, who)
    orphan.node = node
    say(who, f"I am {name}, process {os.getpid()}, listening on port {_port(node)}.")
    say(who, f"I registered with the registrar on {HOST}:{port}; I run {serves}. Ready.")
    stopped = node.wait(timeout=TOTAL)
    orphan.done.set()
    if stopped:
        return 0
    say(who, f"nobody stopped me within {TOTAL} s: stopping by force.")
    node.stop_force()
    return 1


def _port(node: Node) -> int:
    port: int = node.network().info()["acceptors"][0]["port"]
    return port


class _Orphan:
    """Ends a member whose main process is gone (its stdin closed, the OS does that when
    the main process dies): nobody would ask it to stop, and it must not outlive the demo.
    A running node is asked to stop gracefully; one not started yet, or one that did not
    stop within ``GUARD`` seconds, ends the process at once."""

    def __init__(self) -> None:
        self.node: Node | None = None
        self.control: PID | None = None
        self.done = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        sys.stdin.read()
        _mute_stdout()  # nobody reads it any more
        node, control = self.node, self.control
        if node is not None and control is not None:
            try:
                node.send_threadsafe(control, "orphaned")
            except RuntimeError:  # the node has stopped and its loop is closed: nothing to do
                return
            if self.done.wait(GUARD):
                return
        os._exit(1)


def _mute_stdout() -> None:
    """Send what is still written to stdout nowhere: the reader of the pipe is gone."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


# -- alice: the main process --------------------------------------------------------------


class DemoFailed(Exception):
    """A step of the story did not happen; the message says which."""


class Member:
    """bob or carol as alice's process sees it: an OS process whose lines she relays.

    A member's lines are printed when alice waits for them, so the story keeps its order."""

    def __init__(self, who: str, proc: asyncio.subprocess.Process) -> None:
        self.who = who
        self.proc = proc

    async def expect(self, text: str) -> None:
        """Relay the member's lines up to the first one containing ``text``."""
        assert self.proc.stdout is not None
        while True:
            try:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), GUARD)
            except TimeoutError:
                raise DemoFailed(f"{self.who} did not say {text!r} within {GUARD} s") from None
            if not raw:
                code = await self.proc.wait()
                raise DemoFailed(f"{self.who} exited (code {code}) before saying {text!r}")
            line = raw.decode(errors="replace").rstrip("\n")
            print(line, flush=True)
            if text in line:
                return

    async def exited(self) -> int:
        """The exit code, once the process ended (its remaining lines relayed)."""
        assert self.proc.stdout is not None
        try:
            rest = await asyncio.wait_for(self.proc.stdout.read(), GUARD)
            code = await asyncio.wait_for(self.proc.wait(), GUARD)
        except TimeoutError:
            raise DemoFailed(f"{self.who}'s process did not end within {GUARD} s") from None
        for line in rest.decode(errors="replace").splitlines():
            print(line, flush=True)
        return code

    def kill(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:  # it ended on its own, just now
                pass


async def start_member(who: str, port: int, cookie: str) -> Member:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "net.demo", "member", who, str(port),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, COOKIE_VARIABLE: cookie},
    )
    return Member(who, proc)


class Watcher(Actor):
    """alice's monitoring process: what it is told goes to the story's queue."""

    def init(self, told: asyncio.Queue[Any]) -> None:
        self.told = told

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        self.monitor(request)
        return "monitoring"

    def handle_message(self, from_: PID, message: Any) -> None:
        self.told.put_nowait(message)


async def told(queue: asyncio.Queue[Any], what: str) -> Any:
    try:
        return await asyncio.wait_for(queue.get(), GUARD)
    except TimeoutError:
        raise DemoFailed(f"alice was not told {what} within {GUARD} s") from None


def free_port(host: str) -> int:
    """A port free for both TCP and UDP on ``host`` now (the registrar needs both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
            return port
    raise DemoFailed(f"no port free for both TCP and UDP on {host}")


def step(text: str) -> None:
    print(f"\n{text}", flush=True)


def code(text: str) -> None:
    """A line of the API the step uses, as a user would write it."""
    print(f"    {text}", flush=True)


class Cast:
    """Who is on stage: alice's node once started, and the member processes (for the cleanup)."""

    def __init__(self) -> None:
        self.alice: Node | None = None
        self.members: dict[str, Member] = {}

    async def clear(self) -> None:
        """After a failure: kill the members' processes and stop alice without waiting."""
        for m in self.members.values():
            m.kill()
            await m.proc.wait()
        if self.alice is not None and self.alice.is_alive():
            self.alice.stop_force()
            await asyncio.sleep(0)  # a turn of the loop: the closed sockets' transports finish


async def story(cast: Cast) -> None:
    port = free_port(HOST)
    cookie = secrets.token_hex(16)
    print("ergonode demo: three nodes, each in an OS process of its own, on this machine's loopback.")
    print("A node is a runtime for processes (actors); nodes that share a cookie talk over TCP.")

    step("Start: each node registers with its host's registrar, which tells others where it listens:")
    code(f"net.start_node(\"alice@{HOST}\", NodeOptions(network=NetworkOptions(cookie=..., registrar_port={port})))")
    options = NodeOptions(log=LogOptions(level="warning"),
                          network=NetworkOptions(cookie=cookie, registrar_port=port))
    alice = cast.alice = start_node(node_name("alice"), options)
    say("alice", f"I am {alice.name.value}, process {os.getpid()}, listening on port {_port(alice)}.")
    if alice.network().info()["registrar"]["mode"] != "server":  # another program took the port meanwhile
        raise DemoFailed(f"alice could not serve the registrar on {HOST}:{port}; run the demo again")
    say("alice", f"I am the first node here, so I serve the registrar on {HOST}:{port} (TCP and UDP).")
    say("alice", "(Not the usual 4499: this demo must not meet a registrar already running there.)")
    say("alice", "starting bob and carol, two more Python processes...")
    members = cast.members
    for who in ("bob", "carol"):
        members[who] = await start_member(who, port, cookie)
    for who in ("bob", "carol"):
        await members[who].expect("Ready.")
    registered = alice.network().info()["registrar"]["registered"]
    say("alice", f"my registrar knows: {', '.join(registered)}.")

    step("Step 1: a remote call. alice calls the process registered as \"counter\" on bob:")
    code(f"await alice.call_async(ProcessID(\"counter\", \"{node_name('bob')}\"), \"incr\")")
    counter = ProcessID("counter", node_name("bob"))
    say("alice", "I have no address for bob: my registrar tells me where he listens, and I connect.")
    totals = [await alice.call_async(counter, "incr") for _ in range(3)]
    bob = alice.network().node(node_name("bob"))
    say("alice", f"bob's counter answered {', '.join(map(str, totals))}: three calls over one connection "
                 f"(a pool of {bob.info()['pool_size']} TCP links).")

    step("Step 2: supervision. bob's counter runs under a supervisor, in bob's application \"counting\";")
    print("alice makes it crash (an abnormal end), and calls it again:")
    code(f"alice.send(ProcessID(\"counter\", \"{node_name('bob')}\"), \"crash\")")
    alice.send(counter, "crash")
    await members["bob"].expect("a new process under the same name")
    again = await alice.call_async(counter, "incr")
    say("alice", f"bob's counter answered {again}: a fresh one, restarted by its supervisor; "
                 "callers only ever used its name.")

    step("Step 3: remote monitors. A watcher is told when what it watches goes away:")
    code(f"self.monitor(ProcessID(\"worker\", \"{node_name('carol')}\"))  # a process there")
    code(f"self.monitor(Atom(\"{node_name('carol')}\"))  # the node itself")
    carol_node = await alice.network().get_node(node_name("carol"))
    say("alice", f"connected to {str.__str__(carol_node.name)} (the registrar told me where, again).")
    queue: asyncio.Queue[Any] = asyncio.Queue()
    watcher = alice.spawn(Watcher, queue)
    worker = ProcessID("worker", node_name("carol"))
    await alice.call_async(watcher, worker)
    say("alice", f"I monitor carol's process {worker.name!r}, and the node carol itself.")
    await alice.call_async(watcher, Atom(node_name("carol")))
    await alice.call_async(ProcessID("control", node_name("bob")), ("monitor node", node_name("carol")))
    await members["bob"].expect("monitor that node too.")

    step("Step 4: carol's process is killed (kill -9: no goodbye, no time to warn anyone).")
    carol = members["carol"]
    carol.kill()
    say("alice", f"killed carol's process {carol.proc.pid}; its exit code: {await carol.exited()}.")
    seen: dict[type, Any] = {}
    while len(seen) < 2:
        message = await told(queue, "that carol is down")
        seen[type(message)] = message
    down = seen.get(MessageDownProcessID)
    if down is None or MessageDownNode not in seen:
        raise DemoFailed(f"alice was told {list(seen.values())}, not that carol's worker and node are down")
    say("alice", f"told: carol's worker is down, reason {type(down.reason).__name__}:")
    say("alice", f"  {down.reason}")
    say("alice", f"told: node {str.__str__(seen[MessageDownNode].name)} is down.")
    await members["bob"].expect("is down.")
    timeout = NetworkOptions().heartbeat_timeout
    print("The OS closed carol's sockets, so both survivors knew at once. Had her machine died")
    print(f"instead, heartbeats would have told them within {timeout:g} s (NetworkOptions.heartbeat_timeout).")

    step("Step 5: a graceful stop. alice asks bob to stop, then stops herself:")
    code("self.node.stop()  # in bob's control process; alice: await alice.stop_async()")
    await alice.call_async(watcher, Atom(node_name("bob")))
    alice.send(ProcessID("control", node_name("bob")), "stop")
    await members["bob"].expect("stopping gracefully")
    bob_down = await told(queue, "that bob is down")
    if not isinstance(bob_down, MessageDownNode):
        raise DemoFailed(f"alice was told {bob_down!r}, not that bob is down")
    say("alice", f"told: node {str.__str__(bob_down.name)} is down.")
    exit_code = await members["bob"].exited()
    if exit_code != 0:
        raise DemoFailed(f"bob's process exited with code {exit_code} after a graceful stop, not 0")
    say("alice", "bob's process exited with code 0.")
    await alice.stop_async()
    say("alice", "stopped.")
    print("\nThe end: three nodes found through the registrar, a remote call, a crash repaired by a")
    print("supervisor, remote monitors, a killed node noticed by every survivor, and a graceful stop.")


async def run() -> int:
    """Tell the story; 0 once told, 1 (with a line on stderr) if it could not be."""
    cast = Cast()
    finished = False
    try:
        await asyncio.wait_for(story(cast), TOTAL)
        finished = True
    except TimeoutError:
        print(f"demo failed: it did not finish within {TOTAL} s", file=sys.stderr)
    except DemoFailed as e:
        print(f"demo failed: {e}", file=sys.stderr)
    except Exception as e:  # a call or a start that failed: say what, briefly
        print(f"demo failed: {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        if not finished:  # failed, or interrupted (Ctrl-C): no process of the demo outlives it
            await cast.clear()
    return 0 if finished else 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["member"] and len(argv) == 3:
        return member(argv[1], int(argv[2]))
    if argv:
        print("usage: python -m net.demo", file=sys.stderr)
        return 2
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""One networked node in an OS process of its own, driven over its stdin and stdout by
``tests/test_network_processes.py`` (``NodeProcess`` there).

    python tests/node_process.py '{"name": "a@127.0.0.41", "registrar_port": 40123, ...}'

Everything it writes on stdout is one JSON object a line:

- ``{"ready": name, "pid": os pid, "registrar": "server" | "client", "acceptor": [host, port]}``
  once the node has started (and registered with its host's registrar);
- ``{"id": n, "ok": value}`` or ``{"id": n, "error": [type, text]}``: the answer to command n;
- ``{"event": [watcher tag, message type, target, reason type]}``: a watcher heard something;
- ``{"log": [level, text]}``: a log line of the node (info and above).

Each stdin line is a command ``{"id": n, "do": verb, "args": [...]}`` (see ``Driver``).  It
is executed by the ``Driver`` process on the node's own thread (``call_threadsafe``), so a
command that awaits something (a remote call) holds up only the commands after it.  End of
stdin stops the node gracefully, and the process exits.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

import net
from ergo import (
    PID,
    Actor,
    Atom,
    LogOptions,
    NetworkOptions,
    NodeOptions,
    ProcessID,
    Ref,
)
from ergo.gen.options import AcceptorOptions

_out = threading.Lock()


def say(**line: Any) -> None:
    with _out:
        sys.stdout.write(json.dumps(line, default=str) + "\n")
        sys.stdout.flush()


class LineLogger:
    """The node's log lines (info and above) as ``{"log": [level, text]}`` lines."""

    def log(self, message: Any) -> None:
        say(log=[message.level.name.lower(), message.text()])


class Counter(Actor):
    """``incr`` counts; ``pid`` answers this process's PID (for a watcher to link to it)."""

    def init(self) -> None:
        self.n = 0

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        if request == "incr":
            self.n += 1
            return self.n
        if request == "pid":
            return self.pid
        raise ValueError(f"unknown request {request!r}")


class Watcher(Actor):
    """Links to or monitors one target (trapping exits) and reports what it hears."""

    def init(self, tag: str) -> None:
        self.tag = tag
        self.trap_exit = True

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        how, target = request
        if how == "link":
            self.link(target)
        else:
            self.monitor(target)
        return "watching"

    def handle_message(self, from_: PID, message: Any) -> None:
        target = getattr(message, message.__slots__[0]) if hasattr(message, "__slots__") else None
        reason = getattr(message, "reason", None)
        say(event=[self.tag, type(message).__name__, str.__str__(target) if isinstance(target, Atom) else str(target),
                   type(reason).__name__ if reason is not None else None, str(reason) if reason is not None else None])


class Driver(Actor):
    """Executes the commands read from stdin; every verb is a method ``do_<verb>``."""

    async def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        """``("ok", value)`` or ``("error", class name, text)``: a failing command leaves the driver running."""
        verb, args = request
        try:
            method = getattr(self, f"do_{verb}", None)
            if method is None:
                raise ValueError(f"no such command {verb!r}")
            return ("ok", await method(*args))
        except Exception as e:
            return ("error", type(e).__name__, str(e))

    async def do_counter(self, name: str) -> str:
        """Spawn a ``Counter`` registered as ``name`` here."""
        return str(self.node.spawn_register(name, Counter))

    async def do_call(self, node: str, name: str, request: Any) -> Any:
        """Call the process registered as ``name`` on ``node``."""
        result = await self.call(ProcessID(name, node), request, timeout=10)
        return str(result) if isinstance(result, PID) else result

    async def do_watch(self, tag: str, how: str, node: str, name: str | None = None, by: str = "pid") -> str:
        """A new ``Watcher`` (its events tagged ``tag``) links to (``how`` "link") or monitors
        (``how`` "monitor") the process registered as ``name`` on ``node``, by its PID (``by``
        "pid", asked of the process) or by its ProcessID (``by`` "name"), or the node
        itself if ``name`` is None."""
        target: Any
        if name is None:
            target = Atom(node)
        elif by == "name":
            target = ProcessID(name, node)
        else:
            target = await self.call(ProcessID(name, node), "pid", timeout=10)
        watcher = self.spawn(Watcher, tag)
        await self.call(watcher, (how, target))
        return str.__str__(target) if isinstance(target, Atom) else str(target)

    async def do_registrar(self) -> str:
        """The mode of this node's registrar: "server" (it serves the host) or "client"."""
        return str(self.node.network().info()["registrar"]["mode"])

    async def do_nodes(self) -> list[str]:
        """The names of the peers this node is connected to."""
        return sorted(str.__str__(name) for name in self.node.network().nodes())

    async def do_stop(self) -> str:
        self.node.stop()
        return "stopping"


def main() -> int:
    config = json.loads(sys.argv[1])
    interval, timeout = config.get("heartbeat", (1.0, 5.0))
    options = NodeOptions(
        log=LogOptions(default_logger=False),
        network=NetworkOptions(cookie=config["cookie"], registrar_port=config["registrar_port"],
                               heartbeat_interval=interval, heartbeat_timeout=timeout,
                               acceptors=(AcceptorOptions(port=0),)),
    )
    node = net.start_node(config["name"], options)
    node.logger_add("lines", LineLogger(), filter=("info", "warning", "error", "panic"))
    driver = node.spawn(Driver)
    info = node.network().info()
    acceptor = info["acceptors"][0]
    say(ready=config["name"], pid=os.getpid(), registrar=info["registrar"]["mode"],
        acceptor=[acceptor["host"], acceptor["port"]])

    def answer(n: Any, fut: Any) -> None:
        error = fut.exception()
        if error is not None:  # the driver itself did not answer
            say(id=n, error=[type(error).__name__, str(error)])
        elif fut.result()[0] == "ok":
            say(id=n, ok=fut.result()[1])
        else:
            say(id=n, error=list(fut.result()[1:]))

    def read() -> None:
        for line in sys.stdin:
            command = json.loads(line)
            n = command["id"]
            fut = node.call_threadsafe(driver, (command["do"], tuple(command.get("args", ()))), timeout=30)
            fut.add_done_callback(lambda f, n=n: answer(n, f))
        node.call_threadsafe(driver, ("stop", ()))  # stdin closed: the test is done with this node

    threading.Thread(target=read, daemon=True).start()
    node.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

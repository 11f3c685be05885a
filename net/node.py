"""Starting a node on asyncio: from a plain script, or inside a running asyncio program."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import weakref
from types import FrameType
from typing import Any

from ergo.gen.errors import Incorrect, NotAllowed, Timeout
from ergo.gen.options import NodeOptions
from ergo.node.node import Node, validate_node_name

from .scheduler import AsyncioScheduler
from .transport import AsyncioTransport

__all__ = ["settle", "start_node"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def start_node(name: str, options: NodeOptions | None = None, handle_signals: bool | None = None) -> Node:
    """Start a node on the running asyncio loop, or, in a plain script, on the script's loop.

    In a plain script (no loop running), the first node makes a loop for the thread and
    the nodes started after it share that loop (until it is closed), so they serve each
    other: a blocking call on one (``node.call``, ``node.wait()``) runs the loop for all of
    them.  ``node.wait()`` runs the loop until that node stops; inside an asyncio program,
    ``await node.wait_async()`` (or ``async with start_node(...)``).

    ``handle_signals``: SIGINT and SIGTERM stop the node gracefully (a second one forces
    the stop), and the handlers that were there before come back when the node stops.
    The default, None, does so in a plain script only: inside a running loop the signals
    belong to the application (an aiohttp or uvicorn server has its own).  Nodes that
    handle signals on one loop share the handlers: a signal stops every one of them, and
    the previous handlers come back when the last one stops.  Signals can be handled on
    the main thread only.
    """
    created = False
    try:
        loop = asyncio.get_running_loop()
        script = False
    except RuntimeError:
        script = True
        earlier: asyncio.AbstractEventLoop | None = getattr(_script, "loop", None)
        if earlier is not None and not earlier.is_closed():
            loop = earlier
        else:
            loop = asyncio.new_event_loop()
            created = True
    on_main = threading.current_thread() is threading.main_thread()
    try:
        if handle_signals is not None and type(handle_signals) is not bool:
            raise Incorrect(f"handle_signals is True, False or None (in a plain script only), not {handle_signals!r}"
                            [:200])
        if handle_signals and not on_main:
            raise NotAllowed("signal handlers can be installed on the main thread only: start the node there, "
                             "or pass handle_signals=False")
        scheduler = AsyncioScheduler(loop)
        node = Node(name, scheduler, options, AsyncioTransport(loop), creation=_new_creation(name, scheduler))
        scheduler.owner = f"node {node.name.value}"  # (a name known to be one by now)
        # a loop closed with work of the node's still queued: the node reads as stopped at once
        scheduler.on_dropped = weakref.WeakMethod(node._loop_gone)
        node._finish_start()
    except BaseException:
        if created:  # a start refused for a bad name or options leaves no loop behind
            loop.close()
        raise
    if created:
        _script.loop = loop
        asyncio.set_event_loop(loop)
    if handle_signals or (handle_signals is None and script and on_main):
        _install_signals(loop, node)
    return node


#: the loop a plain script's first start_node made, per thread (its later nodes share it)
_script = threading.local()

#: the latest creation given to each node name in this OS process
_creations: dict[str, int] = {}
_creations_lock = threading.Lock()


def _new_creation(name: str, scheduler: AsyncioScheduler) -> int:
    """The creation of a new run of node ``name``: milliseconds since the epoch (Ergo counts
    seconds), and later than any earlier run of that name in this process.

    A creation is what tells a PID of an earlier run from one of this run with the same id,
    so two runs of one name must never share it.  In whole seconds they would whenever a
    node is started again within the second its last run started: stopped and started in
    one script, or killed (``kill -9``) and restarted at once by a supervisor in a new OS
    process, where nothing of the earlier run is left to compare with.  Milliseconds
    separate runs of separate processes (starting Python takes longer than that); within
    one process the last creation of each name is kept, so that even two runs in one
    millisecond, or a wall clock set back, give a later creation.
    """
    wall = int(scheduler.time() * 1000)
    key = str.__str__(validate_node_name(name))
    with _creations_lock:
        creation = max(wall, _creations.get(key, 0) + 1)
        _creations[key] = creation
    return creation


class _SignalGroup:
    """The nodes of one loop that handle SIGINT and SIGTERM, and the handlers they replaced."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.nodes: list[Node] = []
        self.previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
        self.active = True

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            try:
                loop.call_soon_threadsafe(self.deliver, signum)
            except RuntimeError:  # the loop is closed: the nodes are gone, nothing to stop
                pass

        self.handler = on_signal
        for sig in _SIGNALS:
            signal.signal(sig, on_signal)
        # A Python handler runs between bytecodes: a signal that comes just as the loop goes
        # to sleep in select() left it asleep until something else woke it (a plain script
        # whose node had no timer then ignored the signal for good).  Python's C-level
        # handler also writes to a wakeup fd, which the loop watches: asyncio's own
        # add_signal_handler does the same with its self-pipe.
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        loop.add_reader(self._rsock.fileno(), self._drain)
        self._old_wakeup = signal.set_wakeup_fd(self._wsock.fileno(), warn_on_full_buffer=False)

    def _drain(self) -> None:
        try:
            while self._rsock.recv(4096):
                pass
        except OSError:  # empty (BlockingIOError) or closed: woken, which was the point
            pass

    def deliver(self, signum: int) -> None:
        for node in list(self.nodes):
            _on_signal(node, signum)

    def stopped(self, node: Node) -> None:
        if node in self.nodes:
            self.nodes.remove(node)
        if self.nodes or not self.active:
            return
        self.active = False
        if _groups.get(self.loop) is self:
            del _groups[self.loop]
        for sig, handler in self.previous.items():
            if signal.getsignal(sig) is self.handler:  # unless the application replaced ours since
                signal.signal(sig, _handler(handler))
        try:
            current = signal.set_wakeup_fd(self._old_wakeup)
            if current != self._wsock.fileno():  # the application set one of its own since: keep it
                signal.set_wakeup_fd(current)
        except (ValueError, OSError):  # the old fd is closed by now: none, rather than a stale one
            signal.set_wakeup_fd(-1)
        if not self.loop.is_closed():
            self.loop.remove_reader(self._rsock.fileno())
        self._rsock.close()
        self._wsock.close()


_groups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SignalGroup] = weakref.WeakKeyDictionary()


def _install_signals(loop: asyncio.AbstractEventLoop, node: Node) -> None:
    """Plain ``signal.signal`` handlers, not ``loop.add_signal_handler``: they run whether or
    not the loop runs yet, so a signal that arrives before ``wait()`` is not lost (uvloop
    loses it), and the previous handlers can be put back exactly."""
    group = _groups.get(loop)
    if group is None:
        group = _groups[loop] = _SignalGroup(loop)
    group.nodes.append(node)
    node._on_stopped.append(lambda: group.stopped(node))


def _handler(handler: Any) -> Any:
    # getsignal gives None for a handler not installed from Python: the default then
    return signal.SIG_DFL if handler is None else handler


def _on_signal(node: Node, sig: int) -> None:
    name = signal.Signals(sig).name
    if not node.is_alive():
        return
    if node._state == "stopping":  # the first signal's stop is still waiting for processes
        node.log.warning("got %s again: forcing the stop", name)
        node.stop_force()
        return
    node.log.info("got %s: stopping gracefully", name)
    node.stop()


async def settle(*nodes: Node, turns: int = 100_000) -> None:
    """Let the running loop turn until every node in ``nodes`` is idle (``Node.is_idle``):
    for tests of asyncio code, which synchronise on events, never on time.

    It never sleeps, so it does not wait for timers, sleeps or I/O, only for the work
    already queued (messages, replies, handler steps) and whatever that work queues in
    turn.  ``Timeout`` if the nodes are still busy after ``turns`` turns of the loop.
    """
    for _ in range(turns):
        if all(n.is_idle() for n in nodes):
            return
        await asyncio.sleep(0)
    raise Timeout(f"the nodes were still busy after {turns} turns of the loop")

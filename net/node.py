"""Starting a node on asyncio: from a plain script, or inside a running asyncio program."""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType
from typing import Any

from ergo.gen.errors import NotAllowed, Timeout
from ergo.gen.options import NodeOptions
from ergo.node.node import Node

from .scheduler import AsyncioScheduler
from .transport import AsyncioTransport

__all__ = ["settle", "start_node"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def start_node(name: str, options: NodeOptions | None = None, handle_signals: bool | None = None) -> Node:
    """Start a node on the running asyncio loop, or on a new one if none is running.

    In a plain script, ``node.wait()`` then runs the loop until the node stops; inside an
    asyncio program, ``await node.wait_async()`` (or ``async with start_node(...)``).

    ``handle_signals``: SIGINT and SIGTERM stop the node gracefully (a second one forces
    the stop), and the handlers that were there before come back when the node stops.
    The default, None, does so in a plain script only: inside a running loop the signals
    belong to the application (an aiohttp or uvicorn server has its own).  Signals can be
    handled on the main thread only.
    """
    created = False
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        created = True
    on_main = threading.current_thread() is threading.main_thread()
    try:
        if handle_signals and not on_main:
            raise NotAllowed("signal handlers can be installed on the main thread only: start the node there, "
                             "or pass handle_signals=False")
        node = Node(name, AsyncioScheduler(loop), options, AsyncioTransport(loop))
        node._finish_start()
    except BaseException:
        if created:  # a start refused for a bad name or options leaves no loop behind
            loop.close()
        raise
    if created:
        asyncio.set_event_loop(loop)
    if handle_signals or (handle_signals is None and created and on_main):
        _install_signals(loop, node)
    return node


def _install_signals(loop: asyncio.AbstractEventLoop, node: Node) -> None:
    """Plain ``signal.signal`` handlers, not ``loop.add_signal_handler``: they run whether or
    not the loop runs yet, so a signal that arrives before ``wait()`` is not lost (uvloop
    loses it), and the previous handlers can be put back exactly."""
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        try:
            loop.call_soon_threadsafe(_on_signal, node, signum)
        except RuntimeError:  # the loop is closed: the node is gone, nothing to stop
            pass

    for sig in _SIGNALS:
        signal.signal(sig, on_signal)

    def restore() -> None:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is on_signal:  # unless the application replaced ours since
                signal.signal(sig, _handler(handler))

    node._on_stopped.append(restore)


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

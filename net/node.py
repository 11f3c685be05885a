"""Starting a node on asyncio: from a plain script, or inside a running asyncio program."""

from __future__ import annotations

import asyncio
import signal
import threading

from ergo.gen.options import NodeOptions
from ergo.node.node import Node

from .scheduler import AsyncioScheduler

__all__ = ["start_node"]


def start_node(name: str, options: NodeOptions | None = None, handle_signals: bool = True) -> Node:
    """Start a node on the running asyncio loop, or on a new one if none is running.

    In a plain script, ``node.wait()`` then runs the loop until the node stops; inside an
    asyncio program, ``await node.wait_async()``.  With ``handle_signals`` (and on the
    main thread), SIGINT and SIGTERM stop the node gracefully.
    """
    created = False
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        created = True
    try:
        node = Node(name, AsyncioScheduler(loop), options)
    except BaseException:
        if created:  # a start refused for a bad name or options leaves no loop behind
            loop.close()
        raise
    if created:
        asyncio.set_event_loop(loop)
    if handle_signals and threading.current_thread() is threading.main_thread():
        _install_signals(loop, node)
    return node


def _install_signals(loop: asyncio.AbstractEventLoop, node: Node) -> None:
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, _on_signal, node, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not on this platform / thread
            pass

    def remove() -> None:
        for sig in installed:
            try:
                loop.remove_signal_handler(sig)
            except (RuntimeError, ValueError):
                pass

    node._on_stopped.append(remove)


def _on_signal(node: Node, sig: signal.Signals) -> None:
    node.log.info("got %s: stopping gracefully", signal.Signals(sig).name)
    node.stop()

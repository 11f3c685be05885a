"""Pool: a process that spreads its work over N workers (Ergo's act.Pool).

Subclass :class:`Pool` and return :class:`PoolOptions` from ``init``.  The pool spawns
``pool_size`` workers (its children, linked to it: they go when it goes).  Every message
and call sent to the pool at normal priority is forwarded to the next worker, round
robin, with its sender and ref unchanged: the worker's ``handle_call`` answers the caller
directly, and if the worker terminates before answering, the caller is told at once, as
for any call.  Messages sent to the pool with high or max priority, inspections and exit
signals are the pool's own (``handle_message``, ``handle_call``, ... as an ``Actor``).

A dead worker is replaced when its turn comes: the message goes to the new one.  A worker
whose mailbox is full is passed over; when every worker's is, the message is dropped and
logged (a call is answered with ``MailboxFull`` at once rather than left to time out).
``add_workers`` and ``remove_workers``, called from the pool's own handlers, resize it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..gen.errors import ErgoError, Incorrect, MailboxFull, NotAllowed, PoolEmpty, TerminateReasonNormal
from ..gen.ids import PID
from ..gen.options import ProcessOptions
from ..node.process import Process
from ..node.runner import EVENT, INIT, MAIN, REQUEST, TERMINATED, Runner, show
from .actor import Actor

__all__ = ["DEFAULT_POOL_SIZE", "Pool", "PoolOptions"]

#: workers a pool has when ``PoolOptions.pool_size`` is not set (Ergo's defaultPoolSize)
DEFAULT_POOL_SIZE = 3


@dataclass
class PoolOptions:
    """What ``Pool.init`` returns (Ergo's ``act.PoolOptions``): each worker is
    ``worker_factory`` spawned with ``worker_args`` and a mailbox of
    ``worker_mailbox_size`` per queue (0: unlimited); ``pool_size`` below 1 means
    ``DEFAULT_POOL_SIZE``."""

    worker_factory: Callable[[], Process]
    pool_size: int = DEFAULT_POOL_SIZE
    worker_mailbox_size: int = 0
    worker_args: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if not callable(self.worker_factory):
            raise Incorrect(f"PoolOptions.worker_factory is a callable returning a process behaviour, "
                            f"not {show(self.worker_factory)}")
        for name in ("pool_size", "worker_mailbox_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise Incorrect(f"PoolOptions.{name} is an int, not {show(value)}")
        if self.worker_mailbox_size < 0:
            raise Incorrect(f"PoolOptions.worker_mailbox_size is >= 0, not {self.worker_mailbox_size}")
        if self.pool_size < 1:
            self.pool_size = DEFAULT_POOL_SIZE
        if not isinstance(self.worker_args, (tuple, list)):
            raise Incorrect(f"PoolOptions.worker_args is a tuple, not {show(self.worker_args)}")
        self.worker_args = tuple(self.worker_args)


class _Forward(tuple):  # type: ignore[type-arg]
    """A mailbox item the pool forwards: it arrived in the main queue (normal priority).
    The same fields as the item, so what reads mailboxes (traces, order checks) sees no
    difference; the type alone marks it."""

    __slots__ = ()


class Pool(Actor):
    """Base class of pools; ``init(*args)`` returns the :class:`PoolOptions`."""

    def init(self, *args: Any) -> PoolOptions:  # Ergo's Pool.Init returns its options
        """Return the pool's options (called once, inside ``spawn``, before any worker exists)."""
        raise NotImplementedError(f"{type(self).__qualname__} must define init(*args) -> PoolOptions")

    # -- what a handler of the pool may call ------------------------------------------

    def add_workers(self, n: int) -> int:
        """Spawn ``n`` more workers; returns the pool's size now."""
        self._check_own("add_workers", n)
        for _ in range(n):
            self._workers.append(self._spawn_worker())
        return len(self._workers)

    def remove_workers(self, n: int) -> int:
        """Stop ``n`` workers (the next ones in turn, with an exit ``normal`` from the pool,
        their parent); returns the pool's size now.  ``PoolEmpty`` if it has fewer."""
        self._check_own("remove_workers", n)
        if n > len(self._workers):
            raise PoolEmpty(f"the pool has {len(self._workers)} worker(s), not {n} to remove")
        for _ in range(n):
            pid = self._workers.popleft()
            try:
                self.send_exit(pid, TerminateReasonNormal)
            except ErgoError:
                pass  # it is gone already
        return len(self._workers)

    def workers(self) -> list[PID]:
        """The workers, in the order they take the next messages."""
        return list(self._workers)

    def handle_inspect(self, from_: PID, *items: str) -> dict[str, str]:
        """Ergo's report: pool size, worker behaviour and mailbox size, restarts, messages
        forwarded and unhandled."""
        return {
            "pool_size": str(len(self._workers)),
            "worker_behavior": self._worker_behavior,
            "worker_mailbox_size": str(self._pool_options.worker_mailbox_size),
            "worker_restarts": str(self._restarts),
            "messages_forwarded": str(self._forwarded),
            "messages_unhandled": str(self._unhandled),
        }

    # -- the runtime's side ------------------------------------------------------------

    def _init(self, args: tuple[Any, ...]) -> Any:
        options = self.init(*args)
        if not isinstance(options, PoolOptions):
            raise Incorrect(f"{type(self).__qualname__}.init returned {show(options)}, not PoolOptions")
        self._pool_options = options
        self._workers: deque[PID] = deque()
        self._forwarded = self._restarts = self._unhandled = 0
        self._worker_behavior = ""
        for _ in range(options.pool_size):
            self._workers.append(self._spawn_worker())
        first = self._node._processes.get(self._workers[0].id)
        self._worker_behavior = first._behavior if first is not None else ""
        return None

    def _spawn_worker(self) -> PID:
        o = self._pool_options
        return self.spawn(o.worker_factory, *o.worker_args,
                          options=ProcessOptions(mailbox_size=o.worker_mailbox_size, link_parent=True))

    def _check_own(self, what: str, n: object) -> None:
        if self._node._current is not self or self._state is TERMINATED or self._state is INIT:
            raise NotAllowed(f"{what} is called from the pool's own handlers, not from outside (nor from init)")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise Incorrect(f"{what} takes a number of workers >= 1, not {show(n)}")

    def _push_main(self, item: tuple[Any, ...]) -> None:
        if item[0] <= EVENT:  # a message, a call or an event: the workers'
            item = _Forward(item)
        Runner._push_main(self, item)

    def _push(self, queue: int, item: tuple[Any, ...], limit: bool = True) -> None:
        if queue == MAIN and item[0] <= EVENT:
            item = _Forward(item)
        Runner._push(self, queue, item, limit)

    def _dispatch(self, item: tuple[Any, ...]) -> Any:
        if type(item) is _Forward:
            self._forward(tuple(item))
            return None
        return Actor._dispatch(self, item)

    def _forward(self, item: tuple[Any, ...]) -> None:
        node = self._node
        workers = self._workers
        for _ in range(len(workers)):
            pid = workers.popleft()
            worker = node._processes.get(pid.id)
            if worker is None or worker._state >= TERMINATED:
                try:
                    pid = self._spawn_worker()
                except Exception as e:  # the dead one leaves the pool; the next may take it
                    self._log.error("unable to spawn a new worker process: %r", e)
                    continue
                worker = node._processes[pid.id]
                self._restarts += 1
            workers.append(pid)
            try:
                worker._push_main(item)
            except MailboxFull:
                continue  # full: the next one
            if item[0] == REQUEST:
                node._pass_call(item[2], self, worker)
            self._forwarded += 1
            return
        self._unhandled += 1
        self._log.error("no available worker process. ignored %s from %s",
                        "request" if item[0] == REQUEST else "message", item[1])
        if item[0] == REQUEST:
            self.send_response_error(item[1], item[2], MailboxFull(
                f"pool {self._pid}: no worker could take the request (every mailbox is full)"))

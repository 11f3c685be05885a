"""The deadlines of a node's outstanding calls: one timer for the node, not one per call.

Almost every call is answered long before its timeout, so a timer per call is made and
cancelled for nothing, and on both backends that is the dearest part of a local call
(an asyncio ``TimerHandle`` and a heap entry; a SimPy event).  Here a call's deadline is
one ``append``: calls with the same timeout value end in the order they started, so each
timeout value keeps a FIFO of its calls, and the node keeps a single timer, armed for the
earliest deadline at the head of any FIFO.  An answered call is only marked; the FIFOs
are compacted when marked entries outnumber live ones, so memory stays proportional to the
calls outstanding, as it was with one timer each.

On an event loop the timer stays armed while no call is outstanding (it costs nothing
there), so back-to-back calls make no timer at all.  In simulation an armed timer keeps
``Sim.run()`` going until it fires, so there the timer is cancelled as soon as no call is
outstanding, and a busy period of calls costs one timer.

A call's entry is a list shared by the caller's table of pending calls and its FIFO:
``[future, target, deadline, ref, caller, to]``.  It is emptied when the call ends
(answered, failed, or its caller gone), which is all the FIFO needs to skip it, and lets
go of the future and its result at once rather than at the deadline.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from ergo.scheduler import Scheduler, TimerHandle

__all__ = ["DEADLINE", "CallTimeouts"]

#: where a call's entry keeps its deadline
DEADLINE = 2

_INF = float("inf")
#: compaction waits until this many ended entries are queued, whatever the live count
_SLACK = 1024


class CallTimeouts:
    __slots__ = ("_at", "_expire", "_fifos", "_keep_timer", "_live", "_queued", "_scheduler", "_timer")

    def __init__(self, scheduler: Scheduler, expire: Callable[[list[Any], float], None]) -> None:
        self._scheduler = scheduler
        #: called with (entry, timeout) for each call whose deadline passed
        self._expire = expire
        self._fifos: dict[float, deque[list[Any]]] = {}
        self._timer: TimerHandle | None = None
        self._at = _INF  # when the timer fires
        self._live = 0  # calls started and not ended
        self._queued = 0  # entries in the FIFOs, ended ones included
        #: keep the timer armed when no call is outstanding (see Scheduler.idle_timers_free)
        self._keep_timer = scheduler.idle_timers_free

    def __len__(self) -> int:
        """How many calls are outstanding."""
        return self._live

    def add(self, entry: list[Any], timeout: float) -> None:
        """Start the clock of a call: it expires ``timeout`` seconds from now unless
        :meth:`end` is called first."""
        deadline = self._scheduler.now() + timeout
        entry[DEADLINE] = deadline
        fifo = self._fifos.get(timeout)
        if fifo is None:
            fifo = self._fifos[timeout] = deque()
        fifo.append(entry)
        self._live += 1
        self._queued += 1
        if deadline < self._at:
            self._arm(deadline)
        elif self._queued > 2 * self._live + _SLACK:
            self._compact()

    def end(self, entry: list[Any]) -> None:
        """The call ended before its deadline (a no-op if it already had); its entry is
        emptied, so read what you need of it first."""
        if entry:
            entry.clear()
            self._live -= 1
            if not self._live and not self._keep_timer:
                self.cancel()

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._at = at
        delay = at - self._scheduler.now()
        self._timer = self._scheduler.call_later(delay if delay > 0.0 else 0.0, self._fire)

    def _compact(self) -> None:
        queued = 0
        for timeout, fifo in list(self._fifos.items()):
            kept = deque(e for e in fifo if e)
            if kept:
                self._fifos[timeout] = kept
                queued += len(kept)
            else:
                del self._fifos[timeout]
        self._queued = queued

    def _fire(self) -> None:
        self._timer = None
        self._at = _INF
        now = self._scheduler.now()
        expired: list[tuple[list[Any], float]] = []
        earliest = _INF
        for timeout, fifo in list(self._fifos.items()):
            while fifo:
                entry = fifo[0]
                if entry:
                    deadline = entry[DEADLINE]
                    if deadline > now:
                        if deadline < earliest:
                            earliest = deadline
                        break
                    expired.append((entry[:], timeout))
                    entry.clear()
                    self._live -= 1
                fifo.popleft()
                self._queued -= 1
            if not fifo:
                del self._fifos[timeout]
        if earliest < _INF:
            self._arm(earliest)
        # after re-arming: an expiry callback may start calls of its own
        expire = self._expire
        for entry, timeout in expired:
            expire(entry, timeout)

    def cancel(self) -> None:
        """Stop the timer and forget the FIFOs: no call is outstanding (or the node stopped,
        and the entries are left to their owners)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._at = _INF
        self._fifos.clear()
        self._queued = 0

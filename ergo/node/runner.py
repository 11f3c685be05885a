"""What processes and meta-processes share: a four-queue mailbox and the loop that drains it.

A runner is not a task.  Sending appends to a queue and, if the runner sleeps, schedules
one run with ``call_soon``; a run handles a bounded batch and reschedules itself if more is
waiting.  When a handler returns a coroutine (an ``async def`` handler), the runner parks in
``waitresponse`` (the mailbox keeps filling, nothing else is handled) until the coroutine
returns.  On an event loop the coroutine runs as a task of that loop (:class:`Steps` wraps
it, so the runtime's bookkeeping happens at each of its steps), which makes it asyncio code
like any other: ``asyncio.timeout``, ``current_task()``, aiohttp, httpx.  In simulation the
runner drives it by hand: the coroutine yields the runtime's :class:`~ergo.scheduler.Future`
and the runner resumes it through the scheduler once the future completes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from .. import scheduler as _scheduler
from ..gen.errors import (
    Incorrect,
    MailboxFull,
    NotAllowed,
    TerminateReason,
    TerminateReasonPanic,
    TerminateReasonShutdown,
)
from ..gen.types import MessagePriority, NoReply, ProcessState
from ..scheduler import Future, Scheduler

if TYPE_CHECKING:
    from ..gen.ids import PID, Ref
    from .node import Node

__all__ = ["Runner", "Steps"]

# mailbox item kinds: an item is (kind, from, ref, message)
MSG, REQUEST, EVENT, EXIT, INSPECT, LOG = range(6)

# queue indexes, in the order a run drains them
URGENT, SYSTEM, MAIN, LOGQ = range(4)
_QUEUE_OF_PRIORITY = {MessagePriority.NORMAL: MAIN, MessagePriority.HIGH: SYSTEM, MessagePriority.MAX: URGENT}

#: mailbox items one run handles before yielding to others
BATCH = 100

#: the node's state while it runs (node.py's ``_RUNNING``: here so a step can test it inline)
NODE_RUNNING = "running"

#: what a handler raises to stop the whole program rather than itself (see Runner._uncaught)
INTERRUPTS = (KeyboardInterrupt, SystemExit)

INIT = ProcessState.INIT
SLEEP = ProcessState.SLEEP
RUNNING = ProcessState.RUNNING
WAIT_RESPONSE = ProcessState.WAIT_RESPONSE
TERMINATED = ProcessState.TERMINATED
ZOMBEE = ProcessState.ZOMBEE


class Runner:
    """A mailbox with a run loop; :class:`Process` and :class:`MetaProcess` build on it."""

    __slots__ = (
        "_calls_in",
        "_coro",
        "_coro_done",
        "_in_coro",
        "_mailbox_size",
        "_messages_in",
        "_messages_out",
        "_node",
        "_q_log",
        "_q_main",
        "_q_system",
        "_q_urgent",
        "_running_time",
        "_start_time",
        "_state",
        "_waiting",
    )

    def _setup(self, node: Node, mailbox_size: int = 0) -> None:
        self._node = node
        self._state = INIT
        # queues are made on first use: an idle process then costs no deque at all
        self._q_urgent: deque | None = None
        self._q_system: deque | None = None
        self._q_main: deque | None = None
        self._q_log: deque | None = None
        #: calls made to this runner and not answered yet: ref -> caller
        self._calls_in: dict[Ref, PID] | None = None
        self._mailbox_size = mailbox_size
        self._coro: Any = None
        self._coro_done: Callable[[Any], None] | None = None
        self._in_coro = False
        #: (what the suspended coroutine awaits, a function that forgets this runner there)
        self._waiting: tuple[Any, Callable[[], None]] | None = None
        self._messages_in = 0
        self._messages_out = 0
        self._running_time = 0.0
        self._start_time = node._scheduler.now()

    # -- mailbox -----------------------------------------------------------------------

    def _push(self, queue: int, item: tuple, limit: bool = True) -> None:
        """Append to a queue; wake the runner if it sleeps.

        Raise MailboxFull if the queue is full, unless ``limit`` is False (the runtime's own
        notices: an exit or down must not be lost to a full mailbox).
        """
        if queue == MAIN:
            q = self._q_main
            if q is None:
                q = self._q_main = deque()
        elif queue == URGENT:
            q = self._q_urgent
            if q is None:
                q = self._q_urgent = deque()
        elif queue == SYSTEM:
            q = self._q_system
            if q is None:
                q = self._q_system = deque()
        else:
            q = self._q_log
            if q is None:
                q = self._q_log = deque()
        if limit and self._mailbox_size and len(q) >= self._mailbox_size:
            self._mailbox_full(queue, item)
            return
        q.append(item)
        self._messages_in += 1
        node = self._node
        if node._tracer is not None:
            node._tracer.delivered(self, queue, item)
        if self._state is SLEEP:
            self._state = RUNNING
            node._scheduler.soon(self._run, ())

    def _push_signal(self, queue: int, item: tuple) -> None:
        """Queue a signal (an exit, a down, an event notice) where it cannot overtake what
        its sender sent before it: in ``queue`` (urgent or system), unless a queue of lower
        priority still holds an item from the same sender; then behind that item.

        Priorities let signals overtake *other* senders' messages; order from one sender to
        one receiver holds for signals and messages alike, as in Erlang.  The scan only
        happens when a lower queue is not empty, and signals are rare next to messages.
        """
        q = self._q_main
        if q and _holds_from(q, item[1]):  # every signal queue (urgent, system) is above main
            queue = MAIN
        elif queue == URGENT:
            q = self._q_system
            if q and _holds_from(q, item[1]):
                queue = SYSTEM
                q = None
            else:  # the common case, _push inlined (a signal is never refused: no limit)
                q = self._q_urgent
                if q is None:
                    q = self._q_urgent = deque()
        else:
            q = self._q_system
            if q is None:
                q = self._q_system = deque()
        if queue == MAIN or q is None:
            self._push(queue, item, False)
            return
        q.append(item)
        self._messages_in += 1
        node = self._node
        if node._tracer is not None:
            node._tracer.delivered(self, queue, item)
        if self._state is SLEEP:
            self._state = RUNNING
            node._scheduler.soon(self._run, ())

    def _push_main(self, item: tuple) -> None:
        """The hot path of ``send``: ``_push(MAIN, item)`` without the dispatch on the queue."""
        q = self._q_main
        if q is None:
            q = self._q_main = deque()
        elif self._mailbox_size and len(q) >= self._mailbox_size:
            self._mailbox_full(MAIN, item)
            return
        q.append(item)
        self._messages_in += 1
        node = self._node
        if node._tracer is not None:
            node._tracer.delivered(self, MAIN, item)
        if self._state is SLEEP:
            self._state = RUNNING
            node._scheduler.soon(self._run, ())

    def _push_main_all(self, items: Iterable[tuple], count: int) -> None:
        """``count`` items pushed as by ``_push_main``, in order, with one wake-up: for a
        caller that found no mailbox limit and no tracer to honour per item."""
        q = self._q_main
        if q is None:
            q = self._q_main = deque()
        q.extend(items)
        self._messages_in += count
        if self._state is SLEEP:
            self._state = RUNNING
            self._node._scheduler.soon(self._run, ())

    def _mailbox_full(self, queue: int, item: tuple) -> None:
        raise MailboxFull(f"the mailbox of {self._describe()} is full ({self._mailbox_size} in a queue)")

    def _full(self, queue: int) -> bool:
        """Whether ``queue`` is at the mailbox limit (a send there would be refused)."""
        if not self._mailbox_size:
            return False
        q = (self._q_urgent, self._q_system, self._q_main, self._q_log)[queue]
        return q is not None and len(q) >= self._mailbox_size

    def _has_items(self) -> bool:
        return bool(self._q_urgent or self._q_system or self._q_main or self._q_log)

    def _queue_sizes(self) -> dict[str, int]:
        return {
            "urgent": len(self._q_urgent or ()),
            "system": len(self._q_system or ()),
            "main": len(self._q_main or ()),
            "log": len(self._q_log or ()),
        }

    # -- running -----------------------------------------------------------------------

    def _activate(self) -> None:
        """Leave init: sleep, or run at once if messages arrived during init."""
        if self._state is INIT:
            if self._q_urgent or self._q_system or self._q_main or self._q_log:  # _has_items inlined: per spawn
                self._state = RUNNING
                self._node._scheduler.soon(self._run, ())
            else:
                self._state = SLEEP

    def _run(self) -> None:
        if self._state is not RUNNING or self._coro is not None:
            return
        node = self._node
        previous = node._current
        node._current = self
        now = node._scheduler.now
        started = now()
        dispatch = self._dispatch
        try:
            n = BATCH
            while n:
                # the queues in priority order, inlined: this loop runs once per message
                q = self._q_urgent
                if not q:
                    q = self._q_system
                    if not q:
                        q = self._q_main
                        if not q:
                            q = self._q_log
                            if not q:
                                break
                item = q.popleft()
                try:
                    result = dispatch(item)
                    if result is not None and type(result) is CoroutineType:
                        self._start_coroutine(result, self._after(item))
                except TerminateReason as reason:
                    self._terminate(reason.with_traceback(None))
                except Exception as exc:
                    self._panic(exc)
                except BaseException as exc:
                    self._uncaught(exc)
                if self._state is not RUNNING or self._coro is not None:
                    break
                n -= 1
        finally:
            node._current = previous
            self._running_time += now() - started
        state = self._state
        if state is RUNNING:
            if self._coro is not None:
                return
            if self._q_urgent or self._q_system or self._q_main or self._q_log:  # _has_items inlined
                node._scheduler.soon(self._run, ())
            else:
                self._state = SLEEP
        elif state is ZOMBEE:
            self._finish_zombee()

    def _dispatch(self, item: tuple) -> Any:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def _after(self, item: tuple) -> Callable[[Any], None] | None:
        """What to do with an async handler's return value (a call replies with it)."""
        return None

    def _reply(self, to: PID, ref: Ref, value: Any) -> None:
        """Answer a call with what its handler returned: ``NoReply`` answers later, and a call
        the handler already answered (``send_response``) is not answered twice."""
        calls = self._calls_in  # it owes ``ref`` an answer until answered (or the call ended)
        if value is not NoReply and calls and ref in calls:
            self._node._route_response(to, ref, value, None)

    # -- coroutines --------------------------------------------------------------------

    def _start_coroutine(self, coro: Any, done: Callable[[Any], None] | None) -> None:
        self._coro_done = done
        scheduler = self._node._scheduler
        if scheduler.tasks:
            # a task of the loop: its first step runs on the loop's next turn; meanwhile the
            # process is busy, and its resume counts as queued (it holds a stop, see _holds_stop)
            steps = Steps(self, coro, self._task_step)
            self._coro = steps
            self._state = WAIT_RESPONSE
            self._waiting = _QUEUED
            steps._task = scheduler.start_task(steps)
            return
        self._coro = coro
        self._step(None, None)

    def _task_step(self, coro: Any, value: Any, exc: BaseException | None) -> Any:
        """One step of a handler's coroutine run as a task (see :class:`Steps`): the same
        bookkeeping as :meth:`_step`, but the task, not the runner, waits for what the
        coroutine awaits.  Returns what it yielded, or ``ENDED`` once it has returned."""
        node = self._node
        previous = node._current
        node._current = self
        self._in_coro = True
        self._state = RUNNING
        self._waiting = None
        started = node._scheduler.now()
        yielded: Any = ENDED
        try:
            yielded = coro.throw(exc) if exc is not None else coro.send(value)
        except BaseException as e:  # returned, stopped, panicked (a CancelledError of its own included)
            self._coroutine_ended(e)
        else:
            if self._state is RUNNING:
                self._state = WAIT_RESPONSE
                self._waiting = (yielded, _nothing)
        finally:
            self._in_coro = False
            node._current = previous
            self._running_time += node._scheduler.now() - started
        state = self._state
        if self._coro is None:
            if state is RUNNING:
                if self._has_items():
                    node._scheduler.soon(self._run, ())
                else:
                    self._state = SLEEP
            elif state is ZOMBEE:
                self._finish_zombee()
            return ENDED
        if state is ZOMBEE:
            self._finish_zombee()  # killed from inside its own step: cancelled below, in its task
        elif state is TERMINATED:
            self._close_coroutine()
        elif state is WAIT_RESPONSE and node._state is not NODE_RUNNING and node._stopping() and not self._holds_stop():
            self._terminate(self._shutdown_reason())  # as in _step
        return yielded

    def _step(self, value: Any, exc: BaseException | None) -> None:
        coro = self._coro
        if coro is None or self._state is TERMINATED or self._state is ZOMBEE:
            return
        self._waiting = None
        node = self._node
        previous = node._current
        node._current = self
        self._in_coro = True
        self._state = RUNNING
        started = node._scheduler.now()
        guard = node._scheduler.step_guard
        try:
            if guard is None:
                yielded = coro.throw(exc) if exc is not None else coro.send(value)
            else:
                with guard:
                    yielded = coro.throw(exc) if exc is not None else coro.send(value)
        except BaseException as e:  # returned, stopped, panicked (a CancelledError of its own included)
            self._coroutine_ended(e)
        else:
            if self._state is not RUNNING:
                pass  # killed while it ran: never park it, it is closed below
            elif (detach := resume_when(node._scheduler, yielded, self._step)) is not None:
                self._state = WAIT_RESPONSE
                self._waiting = (yielded, detach)
            else:
                node._scheduler.call_soon(self._step, None, foreign(self._describe(), yielded))
        finally:
            self._in_coro = False
            node._current = previous
            self._running_time += node._scheduler.now() - started
        if self._coro is None and self._state is RUNNING:
            # the handler finished: go on with the mailbox
            if self._has_items():
                node._scheduler.soon(self._run, ())
            else:
                self._state = SLEEP
        elif self._state is ZOMBEE:
            self._finish_zombee()
        elif self._state is TERMINATED:
            self._close_coroutine()  # terminated from inside its own handler (its owner killed)
        elif self._state is WAIT_RESPONSE and node._stopping() and not self._holds_stop():
            # it suspended in a sleep (or on anything but a call) after the node began to
            # stop: only calls may hold a stop, so the shutdown takes it now
            self._terminate(self._shutdown_reason())

    def _coroutine_ended(self, exc: BaseException) -> None:
        """What a step of the handler's coroutine raised: ``StopIteration`` (it returned: a
        call replies with the value), a ``TerminateReason``, a panic, or a ``BaseException``."""
        self._coro = None
        if type(exc) is StopIteration:
            done, self._coro_done = self._coro_done, None
            if done is not None:
                try:
                    done(exc.value)
                except Exception as e:  # a reply that cannot be routed must not kill the process
                    self._log_error("failed to deliver the result of the async handler: %r", e)
        else:
            self._raised(exc)

    def _raised(self, exc: BaseException) -> None:
        """A handler (or a meta-process's start) raised: a ``TerminateReason`` stops the
        runner with it, any other ``Exception`` is a panic, anything else see ``_uncaught``."""
        if isinstance(exc, TerminateReason):
            self._terminate(exc.with_traceback(None))
        elif isinstance(exc, Exception):
            self._panic(exc)
        else:
            self._uncaught(exc)

    def _shutdown_reason(self) -> BaseException:
        """What a runner stopped where it waits at a node's stop dies of: what the shutdown
        exit it cannot handle would have made of it."""
        return TerminateReasonShutdown

    def _in_handler_task(self) -> bool:
        """Whether code of this runner's async handler runs now outside the handler's own
        steps: a task the handler started and waits for (``asyncio.gather`` of coroutines,
        a ``TaskGroup``), on the event loop.  Such code may call on the process's behalf, as
        the handler itself may; a plain handler (of this or another process) may not."""
        return type(self._coro) is Steps and self._node._current is None

    def _busy(self) -> bool:
        """Whether it can make progress now: running (a message or signal queued counts, as
        a sleeping runner with one is made running), or suspended in a handler whose resume
        is already queued (a handler's task before its first step, or whose awaited future
        is done)."""
        state = self._state
        if state is RUNNING:
            return True
        if state is WAIT_RESPONSE:
            waiting = self._waiting
            if waiting is None:
                return False
            if waiting[0] is None:  # a task's bare yield (asyncio.sleep(0)): it runs again soon
                return True
            done = getattr(waiting[0], "done", None)  # a runtime Future, or an asyncio one
            return done is not None and bool(done())
        return False

    def _holds_stop(self) -> bool:
        """Whether the suspended coroutine awaits something that may hold the node's stop:
        a call of its own (up to its timeout, see Process), or anything that is already
        done (its resume is queued: it goes on at once).  A sleep or anything else still
        pending does not."""
        waiting = self._waiting
        if waiting is None:
            return False
        done = getattr(waiting[0], "done", None)  # a runtime Future or an asyncio future
        return done is not None and done()

    def _release_wait(self) -> None:
        """Forget what the suspended coroutine awaited: a killed runner is not kept alive by
        a sleep's timer or another's future, and a sleep's timer is cancelled."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting[1]()

    def _close_coroutine(self) -> None:
        self._release_wait()
        coro, self._coro = self._coro, None
        self._coro_done = None
        if type(coro) is Steps:
            coro._cancel(self)  # a task: cancelled where it waits, its finally blocks run now
        elif coro is not None:
            try:
                coro.close()
            except BaseException as e:  # a finally block that raised: log, the process is gone anyway
                self._callback_failed("closing the handler of a terminated process", e)

    # -- ending ------------------------------------------------------------------------

    def _panic(self, exc: BaseException) -> None:
        self._log_panic("panic in a handler: %r", exc, exc_info=exc)
        if self._calls_in:  # its callers learn why, not only the log: the exception is part of the error
            self._node._fail_calls(self, TerminateReasonPanic, show(exc, 400))
        exc.__traceback__ = None  # the frames (and this process) are not kept alive by the error
        self._terminate(TerminateReasonPanic)

    def _uncaught(self, exc: BaseException) -> None:
        """A handler raised a BaseException that is not an Exception.

        ``KeyboardInterrupt`` and ``SystemExit`` ask to stop the program, not one process:
        the process terminates with reason ``shutdown``, the node begins a graceful stop
        and the exception is raised again out of the backend's loop (``sim.run()``,
        ``node.wait()``, ``run_until_complete``), never from the middle of the runtime's
        bookkeeping.  Anything else (asyncio's ``CancelledError`` when an awaited future was
        cancelled, ``GeneratorExit``, a user's own) is a panic of this process.
        """
        if isinstance(exc, INTERRUPTS):
            self._log_error("a handler raised %r: %s terminates and the node stops", exc, self._describe())
            self._terminate(TerminateReasonShutdown)
            self._node._interrupted(exc)
        else:
            self._panic(exc)

    def _callback_failed(self, what: str, exc: BaseException) -> None:
        """A callback run outside the mailbox loop (``terminate``, a coroutine's ``finally``)
        raised: the runner is ending anyway, so log it; an interrupt still stops the node."""
        self._log_panic("%s of %s raised %r", what, self._describe(), exc, exc_info=exc)
        if isinstance(exc, INTERRUPTS):
            self._node._interrupted(exc)

    def _terminate(self, reason: BaseException) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _finish_zombee(self) -> None:
        """A killed runner's handler has returned: nothing more to do but let it go."""

    def _describe(self) -> str:  # pragma: no cover - overridden
        return "runner"

    def _log_error(self, fmt: str, *args: Any) -> None:  # pragma: no cover - overridden
        pass

    def _log_panic(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:  # pragma: no cover
        pass

    @staticmethod
    def _queue_of(priority: MessagePriority) -> int:
        return _QUEUE_OF_PRIORITY[priority]

    @staticmethod
    def _reason(reason: object) -> BaseException:
        if isinstance(reason, BaseException):
            return reason
        raise Incorrect(
            f"an exit reason is an exception (e.g. TerminateReasonNormal), not {type(reason).__name__}"
        )


#: what a step returns once the coroutine has returned (see Runner._task_step)
ENDED: Any = object()
_GIVEN: Any = object()  # Steps: the cleanup's awaitable has been handed to the task


class _Queued:
    """What a runner whose task has not taken its first step yet waits for: a resume that
    is already queued (``done()``), so a node's stop lets it start (as in _holds_stop)."""

    __slots__ = ()

    def done(self) -> bool:
        return True


_QUEUED = (_Queued(), lambda: None)


def _nothing() -> None:
    """The task waits for what its coroutine awaits: the runner has nothing to let go of."""


def foreign(who: str, yielded: object) -> NotAllowed:
    """The error a hand-driven coroutine (simulation) gets for awaiting something else than
    the runtime's own awaitables."""
    return NotAllowed(
        f"a handler of {who} awaited {show(yielded)}: in simulation only the runtime's own awaitables "
        "(self.call, self.sleep, self.inspect, ...) can be awaited, not asyncio's or another library's"
    )


class Steps(Coroutine):
    """A handler's coroutine as the event loop's task runs it.

    The task sends to and throws into this wrapper; each step goes through ``step`` (the
    runner's bookkeeping: ``node._current``, the process state, what a handler's return or
    exception means).  The runtime cancels it with :meth:`_cancel` when its process is
    killed or terminated: the cancellation is raised in the coroutine at once, where it
    waits, so its ``finally`` blocks run before the process's ``terminate``; if that
    cleanup awaits (``async with`` exits do), the task drives the rest of it, with no more
    bookkeeping: the process is gone.
    """

    __slots__ = ("_coro", "_handoff", "_inside", "_later", "_log_to", "_runner", "_step", "_task")

    def __init__(self, runner: Any, coro: Any, step: Callable[[Any, Any, BaseException | None], Any]) -> None:
        self._runner = runner
        self._coro = coro
        self._step: Callable[[Any, Any, BaseException | None], Any] | None = step
        self._task: Any = None
        self._inside = False
        self._handoff: Any = ENDED
        #: where a failure of the cleanup is logged (not the process: it must not be kept alive)
        self._log_to: tuple[Any, str, Any] | None = None
        self._later: Any = None  # the runner, while a cancellation waits for the running step to end

    def send(self, value: Any) -> Any:
        if self._runner is None:
            return self._cleanup(value, None)
        # _go inlined: this is the step of every await
        self._inside = True
        try:
            yielded = self._step(self._coro, value, None)  # type: ignore[misc]
        finally:
            self._inside = False
        if yielded is ENDED or self._runner is None:
            return self._ended(yielded)
        return yielded

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if val is None:
            val = typ() if isinstance(typ, type) else typ
        return self._go(None, val)

    def close(self) -> None:
        """The task is discarded unfinished (its loop closed): close the coroutine."""
        coro, self._coro = self._coro, None
        self._runner = None
        if coro is not None:
            coro.close()

    def __await__(self) -> Any:  # pragma: no cover - a task never awaits its own coroutine
        raise NotAllowed("a handler's task is run by the runtime, not awaited")

    def _go(self, value: Any, exc: BaseException | None) -> Any:
        if self._runner is None:
            return self._cleanup(value, exc)
        self._inside = True
        try:
            yielded = self._step(self._coro, value, exc)  # type: ignore[misc]
        finally:
            self._inside = False
        if yielded is ENDED or self._runner is None:
            return self._ended(yielded)
        return yielded

    def _ended(self, yielded: Any) -> Any:
        if yielded is ENDED:
            self._runner = self._coro = self._later = self._step = None
            raise StopIteration
        # cancelled in this step (it ended its own process, or the node's stop took it)
        later, self._later = self._later, None
        if later is not None:
            self._throw_cancel(later)
        return self._cleanup(None, None)

    def _cleanup(self, value: Any, exc: BaseException | None) -> Any:
        """A step after the process is gone: hand the task what the cancelled coroutine's
        cleanup awaits, then drive that cleanup to its end and finish quietly."""
        handoff = self._handoff
        if handoff is not _GIVEN:
            if handoff is ENDED:
                raise StopIteration  # the cancellation that woke the task has done its work
            self._handoff = _GIVEN
            return handoff  # the task's own cancellation is spent on getting here
        coro = self._coro
        if coro is None:  # pragma: no cover - defensive: the cleanup has ended
            raise StopIteration
        try:
            return coro.throw(exc) if exc is not None else coro.send(value)
        except BaseException as e:
            self._coro = None
            self._handoff = ENDED
            if not isinstance(e, StopIteration) and not _is_cancel(e):
                self._log_cleanup_failed(e)
            raise StopIteration from None

    def _cancel(self, runner: Any) -> None:
        """Cancel the coroutine now: raise asyncio's CancelledError where it waits (its
        ``finally`` blocks run before this returns) and let go of the process.  Called while
        the coroutine itself runs (it ended its own process), at the end of that step."""
        self._runner = self._step = None  # the task must not keep the process alive
        if self._inside and getattr(self._coro, "cr_running", False):
            self._later = runner
            return
        self._throw_cancel(runner)
        if not self._inside:
            # wake the task where it waits, so that it ends (or goes on with the cleanup);
            # if the loop never runs again, its discarded task is no leak worth a warning
            task = self._task
            if task is not None:
                task.cancel()
                task._log_destroy_pending = False

    def _throw_cancel(self, runner: Any) -> None:
        coro = self._coro
        if coro is None:
            self._handoff = ENDED
            return
        node = runner._node
        previous = node._current
        node._current = runner
        try:
            self._handoff = coro.throw(_scheduler._bridge.cancelled_error())  # type: ignore[union-attr]
            self._log_to = (runner._log, runner._describe(), node)  # its cleanup goes on in the task
        except BaseException as e:  # it ended: returned, re-raised the cancellation, or a finally raised
            self._coro = None
            self._handoff = ENDED
            if not isinstance(e, StopIteration) and not _is_cancel(e):
                runner._callback_failed("closing the handler of a terminated process", e)
        finally:
            node._current = previous

    def _log_cleanup_failed(self, exc: BaseException) -> None:
        if self._log_to is None:  # pragma: no cover - set whenever a cleanup goes on in the task
            return
        log, who, node = self._log_to
        log.panic("the cleanup of the cancelled handler of %s raised %r", who, exc, exc_info=exc)
        if isinstance(exc, INTERRUPTS):
            node._interrupted(exc)


def _is_cancel(exc: BaseException) -> bool:
    bridge = _scheduler._bridge
    return bridge is not None and bridge.is_cancelled_error(exc)


def resume_when(scheduler: Scheduler, yielded: Any,
                resume: Callable[[Any, BaseException | None], None]) -> Callable[[], None] | None:
    """Have ``scheduler`` call ``resume(value, exception)`` once what a hand-driven
    coroutine yielded completes (simulation: a runtime :class:`Future`).  Returns a
    function that undoes this (the runner was killed and must not be kept alive by what it
    awaited), or None if ``yielded`` is anything else: awaiting it is an error the caller
    reports (see :func:`foreign`)."""
    if isinstance(yielded, Future):
        def wake(f: Future) -> None:
            scheduler.call_soon(resume, f._result, f._exception)

        yielded._on_done(wake)
        return lambda: yielded._detach(wake)
    return None


def show(value: object, limit: int = 80) -> str:
    """``repr(value)`` for an error message about a caller's argument: shortened, and never
    raising itself (an int too long to print, a list nested past the recursion limit, a
    broken ``__repr__``), so the error the caller gets is the one that says what was wrong."""
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _holds_from(q: deque, sender: object) -> bool:
    for item in reversed(q):
        f = item[1]
        if f is sender or f == sender:
            return True
    return False


__all__ += ["show", "foreign", "ENDED"]
__all__ += ["BATCH", "EVENT", "EXIT", "INSPECT", "LOG", "LOGQ", "MAIN", "MSG", "REQUEST", "SYSTEM", "URGENT"]

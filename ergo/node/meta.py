"""Meta-processes: helpers owned by a process, identified by an alias (Ergo's gen.MetaProcess).

A meta-process has a mailbox and handlers like a process, plus ``start``: the activity it
exists for (reading a socket, polling a device).  ``start`` may be ``async def``; when it
returns, the meta-process terminates with reason ``normal``.  The default ``start`` waits
until the meta-process is stopped.  A meta-process dies with its owner.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from ..gen.errors import (
    Incorrect,
    NotAllowed,
    TerminateReason,
    TerminateReasonKill,
    TerminateReasonNormal,
    Unsupported,
)
from ..gen.ids import PID, Alias, Ref, Target
from ..gen.messages import MessageLogMeta
from ..gen.options import MetaInfo
from ..gen.types import NoReply
from ..scheduler import Future
from .log import Log
from .runner import ENDED, EXIT, INSPECT, MSG, REQUEST, TERMINATED, ZOMBEE, Runner, Steps, foreign, resume_when, show

if TYPE_CHECKING:
    from .process import Process

__all__ = ["MetaBehavior", "MetaProcess"]


class MetaBehavior:
    """Base class of meta-process behaviours; ``self.process`` is the :class:`MetaProcess`."""

    process: MetaProcess

    def init(self, process: MetaProcess) -> None:
        self.process = process

    async def start(self) -> None:
        """The meta-process's own activity; by default, wait until it is stopped."""
        await process_forever(self.process)

    def handle_message(self, from_: PID, message: Any) -> Any:
        self.process.log.warning("unhandled message from %s: %r", from_, message)

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        """A call: return the reply (``None`` included), or ``NoReply`` and answer later
        with ``self.process.send_response``."""
        self.process.log.warning("unhandled call from %s: %r", from_, request)
        self.process._node._route_response(
            from_, ref, None, Unsupported(f"{type(self).__qualname__} does not handle calls"))
        return NoReply

    def handle_inspect(self, from_: PID, *items: str) -> dict[str, str]:
        return {}

    def terminate(self, reason: BaseException) -> None:
        pass


def process_forever(meta: MetaProcess) -> Future[Any]:
    return meta._forever


class MetaProcess(Runner):
    """The runtime side of a meta-process and the API its behaviour uses."""

    __slots__ = ("_behavior", "_forever", "_id", "_log", "_owner", "_start_coro", "_start_detach")

    # the slots, for type checkers: _start sets them all before the meta-process is used
    _behavior: MetaBehavior
    _forever: Future[Any]
    _id: Alias
    _log: Log
    _owner: Process
    _start_coro: Coroutine[Any, Any, Any] | None
    _start_detach: Callable[[], None] | None

    @classmethod
    def _start(cls, owner: Process, behavior: MetaBehavior, mailbox_size: int) -> Alias:
        if not isinstance(behavior, MetaBehavior):
            raise Incorrect(f"a meta-process behaviour subclasses MetaBehavior, not {type(behavior).__name__}")
        if isinstance(mailbox_size, bool) or not isinstance(mailbox_size, int) or mailbox_size < 0:
            raise Incorrect(f"a meta-process's mailbox_size is an int >= 0 (0: unlimited), not {show(mailbox_size)}")
        if owner._state >= TERMINATED:
            # Ergo: any live process (or its meta-processes) may spawn one, a dead one not
            raise NotAllowed(f"{owner._pid} is terminated: it cannot spawn a meta-process")
        node = owner._node
        m = cls()
        m._setup(node, mailbox_size)
        m._id = node._new_alias()
        m._owner = owner
        m._behavior = behavior
        m._forever = Future()
        m._start_coro = None
        m._start_detach = None
        m._log = Log(node._logging, owner._level(),
                     MessageLogMeta(node._name, owner._pid, m._id, type(behavior).__qualname__))
        previous = node._current
        node._current = m
        try:
            result: object = behavior.init(m)  # type: ignore[func-returns-value]  # an override may be async by mistake
            if type(result) is CoroutineType:
                result.close()
                raise NotAllowed("MetaBehavior.init must be a plain method")
        finally:
            node._current = previous
        node._aliases[m._id] = m
        if node._tracer is not None:
            node._tracer.spawned(node, m, owner._pid)
        if owner._metas is None:
            owner._metas = {}
        owner._metas[m._id] = m
        m._activate()
        node._scheduler.call_soon(m._run_start)
        return m._id

    # -- API for the behaviour ---------------------------------------------------------

    @property
    def id(self) -> Alias:
        return self._id

    @property
    def parent(self) -> PID:
        return self._owner._pid

    @property
    def log(self) -> Log:
        return self._log

    def send(self, to: Target, message: Any) -> None:
        """Send on behalf of the owner (the receiver sees the owner's PID as the sender)."""
        self._node._route_send(self._owner._pid, to, message, self._owner._priority)
        self._messages_out += 1

    def send_response(self, to: PID, ref: Ref, value: Any) -> None:
        self._node._route_response(to, ref, value, None)

    def spawn(self, behavior: MetaBehavior, mailbox_size: int = 0) -> Alias:
        """Start another meta-process owned by the same process (Ergo's ``MetaProcess.Spawn``):
        it lives and dies with that process, not with this meta-process."""
        return MetaProcess._start(self._owner, behavior, mailbox_size)

    def env(self, name: str) -> Any:
        return self._owner.env(name)

    def info(self) -> MetaInfo:
        return MetaInfo(
            id=self._id,
            parent=self._owner._pid,
            behavior=type(self._behavior).__qualname__,
            state=self._state,
            uptime=self._node._scheduler.now() - self._start_time,
            mailbox_size=self._mailbox_size,
            mailbox_queues=self._queue_sizes(),
            messages_in=self._messages_in,
            messages_out=self._messages_out,
            log_level=self._log.level,
        )

    # -- the start activity ------------------------------------------------------------

    def _run_start(self) -> None:
        if self._state is TERMINATED:
            return
        try:
            result = self._behavior.start()
        except TerminateReason as r:
            self._terminate(r.with_traceback(None))
            return
        except Exception as e:
            self._panic(e)
            return
        except BaseException as e:
            self._uncaught(e)
            return
        if type(result) is CoroutineType:
            scheduler = self._node._scheduler
            if scheduler.tasks:  # a task of the event loop, as an async handler (see Runner)
                steps = Steps(self, result, self._start_task_step)
                self._start_coro = steps
                steps._task = scheduler.start_task(steps)
                return
            self._start_coro = result
            self._step_start(None, None)
        else:
            self._terminate(TerminateReasonNormal)

    def _start_task_step(self, coro: Any, value: Any, exc: BaseException | None) -> Any:
        """One step of ``start()`` run as a task (see :class:`~ergo.node.runner.Steps`)."""
        node = self._node
        previous = node._current
        node._current = self
        try:
            return coro.throw(exc) if exc is not None else coro.send(value)
        except BaseException as e:  # start() returned, stopped or panicked
            self._start_ended(e)
        finally:
            node._current = previous
        return ENDED

    def _start_ended(self, exc: BaseException) -> None:
        """What a step of ``start()`` raised: it returned (the meta-process ends normally),
        a ``TerminateReason``, a panic, or another ``BaseException``."""
        self._start_coro = None
        if type(exc) is StopIteration:
            self._terminate(TerminateReasonNormal)
        else:
            self._raised(exc)

    def _step_start(self, value: Any, exc: BaseException | None) -> None:
        coro = self._start_coro
        if coro is None or self._state is TERMINATED:
            return
        self._start_detach = None
        guard = self._node._scheduler.step_guard
        try:
            if guard is None:
                yielded = coro.throw(exc) if exc is not None else coro.send(value)
            else:
                with guard:
                    yielded = coro.throw(exc) if exc is not None else coro.send(value)
        except BaseException as e:  # start() returned, stopped or panicked
            self._start_ended(e)
        else:
            sched = self._node._scheduler
            self._start_detach = resume_when(sched, yielded, self._step_start)
            if self._start_detach is None:
                sched.call_soon(self._step_start, None, foreign(self._describe(), yielded))

    # -- mailbox -------------------------------------------------------------------------

    def _dispatch(self, item: tuple[Any, ...]) -> Any:
        kind, from_, ref, message = item[0], item[1], item[2], item[3]  # a fifth: how it was addressed
        b = self._behavior
        if kind == MSG:
            return b.handle_message(from_, message)
        if kind == REQUEST:
            result = b.handle_call(from_, ref, message)
            if type(result) is CoroutineType:
                return result
            self._reply(from_, ref, result)
            return None
        if kind == INSPECT:
            self._node._route_response(from_, ref, b.handle_inspect(from_, *message), None)
            return None
        if kind == EXIT:
            self._terminate(message.reason)
        return None

    def _after(self, item: tuple[Any, ...]) -> Any:
        if item[0] != REQUEST:
            return None
        to, ref = item[1], item[2]
        return lambda value: self._reply(to, ref, value)

    # -- ending --------------------------------------------------------------------------

    def _owner_terminated(self, reason: BaseException) -> None:
        self._terminate(reason)

    def _terminate(self, reason: BaseException) -> None:
        if self._state is TERMINATED or self._state is ZOMBEE:
            return
        self._state = TERMINATED
        if not self._in_coro:
            self._close_coroutine()
        detach, self._start_detach = self._start_detach, None
        if detach is not None:
            detach()  # what start() awaited must not keep the meta-process alive
        coro, self._start_coro = self._start_coro, None
        if type(coro) is Steps:
            coro._cancel(self)  # a task: cancelled where it waits, its finally blocks run now
        elif coro is not None:
            try:
                coro.close()
            except BaseException as e:
                self._callback_failed("closing start()", e)
        self._forever.set_result(None)
        node = self._node
        if node._tracer is not None:
            node._tracer.terminated(node, self, reason)
        if self._calls_in:
            node._fail_calls(self, reason)
        node._aliases.pop(self._id, None)
        if self._owner._metas:
            self._owner._metas.pop(self._id, None)
        node._pubsub.fire(self._id, reason, self._owner._pid)
        try:
            self._behavior.terminate(reason)
        except BaseException as e:  # it must not break its owner's termination, which may have called this
            self._callback_failed("terminate", e)

    def _kill(self) -> None:
        self._terminate(TerminateReasonKill)

    def _describe(self) -> str:
        return f"meta-process {self._id}"

    def _log_error(self, fmt: str, *args: Any) -> None:
        self._log.error(fmt, *args)

    def _log_panic(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        self._log.panic(fmt, *args, exc_info=exc_info)


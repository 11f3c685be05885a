"""Supervisor: a process that starts children and restarts them when they die (Ergo's act.Supervisor).

Subclass :class:`Supervisor` and return a :class:`SupervisorSpec` from ``init``: the
children to start (in order), how to restart them (:class:`SupervisorType`: one for one,
all for one, rest for one, simple one for one) and when (:class:`SupervisorStrategy`:
permanent, transient, temporary), and how many restarts it allows (``intensity`` within
``period`` seconds, measured on the scheduler's clock, so virtual time in simulation).
More restarts than that and the supervisor stops every child and terminates with
``SupervisorRestartsExceeded``, which its own supervisor sees, as in OTP.

The children are linked both ways (``link_parent`` and ``link_child``): a child's
termination reaches the supervisor as an exit signal, which it handles itself, and the
supervisor's death takes its children with it.  A supervisor stops its children one at a
time, last started first, waiting for each: when it shuts down (its parent's exit, a
significant child, too many restarts, or the node's ``stop``) and, with ``keep_order``,
when it restarts several.  So a supervision tree stops children before parents, in
reverse start order.  Handlers of a supervisor are plain methods: a supervisor never
waits, or it could not restart anything meanwhile.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from ..gen.errors import (
    Incorrect,
    NotAllowed,
    SupervisorChildDisabled,
    SupervisorChildDuplicate,
    SupervisorChildRunning,
    SupervisorChildUnknown,
    SupervisorRestartsExceeded,
    SupervisorStrategyActive,
    TerminateReason,
    TerminateReasonNormal,
    TerminateReasonPanic,
    TerminateReasonShutdown,
)
from ..gen.ids import PID, Atom
from ..gen.messages import MessageExitPID
from ..gen.options import ProcessOptions
from ..node.runner import EXIT, MAIN, MSG, TERMINATED, WAIT_RESPONSE, show
from .actor import Actor, _exit_reason

if TYPE_CHECKING:
    from ..node.process import Process
    from ..scheduler import TimerHandle

__all__ = [
    "Supervisor",
    "SupervisorChild",
    "SupervisorChildSpec",
    "SupervisorRestart",
    "SupervisorSpec",
    "SupervisorStrategy",
    "SupervisorType",
]


class SupervisorType(enum.Enum):
    """Which children a restart concerns (Ergo's ``SupervisorType``, OTP's strategy)."""

    #: only the child that died is restarted
    ONE_FOR_ONE = "one_for_one"
    #: every other child is stopped (last started first), then all are started again in order
    ALL_FOR_ONE = "all_for_one"
    #: the children started after the one that died are stopped, then it and they are started again
    REST_FOR_ONE = "rest_for_one"
    #: one spec (or a few) started on demand, many times (``start_child``); restarts as one for one
    SIMPLE_ONE_FOR_ONE = "simple_one_for_one"

    @classmethod
    def parse(cls, value: SupervisorType | str) -> SupervisorType:
        parsed: SupervisorType = _parse(cls, value, "a supervisor type")
        return parsed


class SupervisorStrategy(enum.Enum):
    """When a child is restarted (Ergo's ``SupervisorStrategy``, OTP's ``restart``)."""

    #: always
    PERMANENT = "permanent"
    #: only after an abnormal exit: any reason but ``normal`` and ``shutdown`` (Ergo's default)
    TRANSIENT = "transient"
    #: never (not even when the strategy stopped it because a sibling died)
    TEMPORARY = "temporary"

    @classmethod
    def parse(cls, value: SupervisorStrategy | str) -> SupervisorStrategy:
        parsed: SupervisorStrategy = _parse(cls, value, "a restart strategy")
        return parsed


@dataclass
class SupervisorChildSpec:
    """One child: registered under ``name`` (unless the supervisor is simple one for one),
    made by ``factory`` and started with ``init(*args)``, spawned with ``options`` (the
    supervisor adds ``link_parent`` and ``link_child``).

    ``significant``: when it terminates and is not restarted, the supervisor stops the other
    children and terminates with its reason (auto shutdown).  ``restart``: overrides the
    supervisor's strategy for this child, as OTP's per-child ``restart``.
    ``shutdown_timeout``: seconds a stopped child may take before it is killed; ``None``
    waits as long as it takes, ``0`` kills it at once (OTP's ``brutal_kill``).
    """

    name: str
    factory: Callable[[], Process]
    args: Sequence[Any] = ()
    options: ProcessOptions | None = None
    significant: bool = False
    restart: SupervisorStrategy | str | None = None
    shutdown_timeout: float | None = 5.0

    def check(self) -> None:
        """``Incorrect`` for a field that cannot work."""
        if not isinstance(self.name, str) or not self.name:
            raise Incorrect(f"a child spec's name is a non-empty str, not {show(self.name)}")
        Atom(self.name)  # AtomTooLong beyond 255 bytes
        if not callable(self.factory):
            raise Incorrect(f"the child spec {self.name!r} needs a factory (e.g. an Actor subclass), "
                            f"not {show(self.factory)}")
        if isinstance(self.args, (str, bytes)) or not isinstance(self.args, Iterable):
            raise Incorrect(f"the child spec {self.name!r} takes its args as a sequence, not {show(self.args)}")
        if self.options is not None:
            if not isinstance(self.options, ProcessOptions):
                raise Incorrect(f"the child spec {self.name!r} takes ProcessOptions, not {show(self.options)}")
            self.options.check()
        if not isinstance(self.significant, bool):
            raise Incorrect(f"significant must be a bool, not {show(self.significant)}")
        if self.restart is not None:
            self.restart = SupervisorStrategy.parse(self.restart)
        t = self.shutdown_timeout
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < float("inf")):
            raise Incorrect(f"shutdown_timeout is seconds >= 0 or None, not {show(t)}")


@dataclass
class SupervisorRestart:
    """How restarts go (Ergo's ``SupervisorRestart``): the default ``strategy`` of the
    children, at most ``intensity`` restarts within ``period`` seconds, and ``keep_order``
    (all/rest for one: stop the children one at a time, each after the previous has
    terminated, rather than all at once)."""

    strategy: SupervisorStrategy | str = SupervisorStrategy.TRANSIENT
    intensity: int = 5
    period: float = 5.0
    keep_order: bool = False

    def check(self) -> None:
        self.strategy = SupervisorStrategy.parse(self.strategy)
        if isinstance(self.intensity, bool) or not isinstance(self.intensity, int) or self.intensity < 0:
            raise Incorrect(f"intensity is an int >= 0 (restarts allowed in the period), not {show(self.intensity)}")
        p = self.period
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p < float("inf"):
            raise Incorrect(f"period is seconds > 0, not {show(p)}")
        if not isinstance(self.keep_order, bool):
            raise Incorrect(f"keep_order must be a bool, not {show(self.keep_order)}")


@dataclass
class SupervisorSpec:
    """What ``Supervisor.init`` returns (Ergo's ``SupervisorSpec``).

    ``enable_handle_child``: call ``handle_child_start`` / ``handle_child_terminate``
    (after the strategy has done its work).  ``disable_auto_shutdown``: keep running when
    no child is left running (by default a supervisor whose children have all ended and
    will not be restarted terminates; never one of type simple one for one).
    """

    children: Sequence[SupervisorChildSpec]
    type: SupervisorType | str = SupervisorType.ONE_FOR_ONE
    restart: SupervisorRestart = field(default_factory=SupervisorRestart)
    enable_handle_child: bool = False
    disable_auto_shutdown: bool = False

    def check(self) -> None:
        self.type = SupervisorType.parse(self.type)
        if not isinstance(self.restart, SupervisorRestart):
            raise Incorrect(f"restart takes a SupervisorRestart, not {show(self.restart)}")
        self.restart.check()
        if isinstance(self.children, (str, bytes)) or not isinstance(self.children, Iterable):
            raise Incorrect(f"children is a list of SupervisorChildSpec, not {show(self.children)}")
        self.children = list(self.children)
        if not self.children:
            raise Incorrect("a supervisor needs at least one child spec")
        seen: set[str] = set()
        for c in self.children:
            _check_child(c, self)
            if c.name in seen:
                raise SupervisorChildDuplicate(f"two child specs are named {c.name!r}")
            seen.add(c.name)


@dataclass(frozen=True)
class SupervisorChild:
    """One entry of ``Supervisor.children()`` (Ergo's ``SupervisorChild``): the spec's name,
    the registered name (None for simple one for one), the PID (None when not running)."""

    spec: Atom
    name: Atom | None
    pid: PID | None
    significant: bool
    disabled: bool


# -- the supervisor -------------------------------------------------------------------------

_NORMAL, _RESTARTING, _SHUTDOWN = "normal", "restarting", "shutdown"


class _Child:
    """A spec as the supervisor keeps it."""

    __slots__ = ("args", "disabled", "factory", "index", "name", "options", "pid", "restart", "shutdown_timeout",
                 "significant")

    def __init__(self, spec: SupervisorChildSpec, index: int, default: SupervisorStrategy) -> None:
        self.name = Atom(spec.name)
        self.factory = spec.factory
        self.args = tuple(spec.args)
        options = spec.options or ProcessOptions()
        self.options = dataclasses.replace(options, link_parent=True, link_child=True)
        self.significant = spec.significant
        self.restart: SupervisorStrategy = spec.restart or default  # type: ignore[assignment]  # check() parsed it
        self.shutdown_timeout = spec.shutdown_timeout
        self.index = index
        self.disabled = False
        self.pid: PID | None = None  # static types: the running instance


class _ChildNotice:
    """A self-sent message: ``handle_child_start`` / ``handle_child_terminate`` to call."""

    __slots__ = ("name", "pid", "reason")

    def __init__(self, name: Atom, pid: PID, reason: BaseException | None) -> None:
        self.name, self.pid, self.reason = name, pid, reason


class Supervisor(Actor):
    """Base class of supervisors: override ``init`` to return a :class:`SupervisorSpec`.

    ``handle_message``, ``handle_call``, ``handle_event``, ``handle_inspect`` and
    ``terminate`` work as an :class:`Actor`'s, but must be plain methods.  A handler that
    raises (a ``TerminateReason`` or a panic) makes the supervisor stop its children, then
    terminate with that reason.
    """

    def init(self, *args: Any) -> SupervisorSpec:
        """Called once with the spawn's ``args``; returns the spec.  The children are
        started, in order, before ``spawn`` returns; if one fails to start, so does the
        supervisor (with that child's error)."""
        raise NotAllowed(f"{type(self).__qualname__} must override init() to return a SupervisorSpec")

    def handle_child_start(self, name: Atom, pid: PID) -> Any:
        """With ``enable_handle_child``: the child of spec ``name`` started as ``pid``."""

    def handle_child_terminate(self, name: Atom, pid: PID, reason: BaseException) -> Any:
        """With ``enable_handle_child``: the child ``pid`` of spec ``name`` terminated with ``reason``."""

    # -- the API handlers use -------------------------------------------------------------

    def children(self) -> list[SupervisorChild]:
        """Every child: one entry per spec (simple one for one: per running instance), in
        spec order (then start order)."""
        out = []
        if self._sofo:
            for pid, child in sorted(self._running.items(), key=lambda kv: kv[1].index):  # stable: start order
                out.append(SupervisorChild(child.name, None, pid, child.significant, child.disabled))
            return out
        for child in self._specs:
            out.append(SupervisorChild(child.name, child.name, child.pid, child.significant, child.disabled))
        return out

    def start_child(self, name: str, *args: Any) -> PID:
        """Start the child of spec ``name`` (with ``args`` if given, kept for its restarts).
        Simple one for one: a new instance each time.  Otherwise the child must not be
        running (``SupervisorChildRunning``): this starts again one that ended and was not
        restarted.  ``SupervisorChildUnknown``, ``SupervisorChildDisabled``,
        ``SupervisorStrategyActive`` (restarting or stopping) say why not."""
        self._check_idle("start_child")
        child = self._spec_named(name)
        if child.disabled:
            raise SupervisorChildDisabled(f"the child spec {child.name} is disabled")
        if self._sofo:
            return self._start(child, args if args else child.args)
        if child.pid is not None:
            raise SupervisorChildRunning(f"the child {child.name} is running as {child.pid}")
        if args:
            child.args = args
        return self._start(child, child.args)

    def add_child(self, spec: SupervisorChildSpec) -> PID | None:
        """Add a child spec, last in the order, and start it (not for simple one for one,
        which starts children with ``start_child``); returns its PID, or None."""
        self._check_idle("add_child")
        if not isinstance(spec, SupervisorChildSpec):
            raise Incorrect(f"add_child takes a SupervisorChildSpec, not {show(spec)}")
        _check_child(spec, self._spec)
        if spec.name in self._by_name:
            raise SupervisorChildDuplicate(f"a child spec is already named {spec.name!r}")
        child = _Child(spec, next(self._index), self._spec.restart.strategy)  # type: ignore[arg-type]
        self._specs.append(child)
        self._by_name[child.name] = child
        if self._sofo:
            return None
        return self._start(child, child.args)

    def enable_child(self, name: str) -> PID | None:
        """Enable a disabled child spec and start it (simple one for one: only enable it);
        returns its PID, or None.  Enabling an enabled spec does nothing."""
        self._check_idle("enable_child")
        child = self._spec_named(name)
        if not child.disabled:
            return None
        child.disabled = False
        if self._sofo:
            return None
        return self._start(child, child.args)

    def disable_child(self, name: str) -> None:
        """Disable a child spec and stop its process (every instance, for simple one for
        one) with ``shutdown``; it is not restarted until enabled again."""
        self._check_idle("disable_child")
        child = self._spec_named(name)
        if child.disabled:
            return
        child.disabled = True
        for pid in [pid for pid, c in self._running.items() if c is child]:
            self._stop_child(pid)

    # -- the runtime's side ---------------------------------------------------------------

    def _init(self, args: tuple[Any, ...]) -> Any:
        spec = self.init(*args)
        if type(spec) is CoroutineType:  # type: ignore[comparison-overlap]  # an async init by mistake
            spec.close()
            raise NotAllowed(f"init of {type(self).__qualname__} must be a plain method, not async def")
        if not isinstance(spec, SupervisorSpec):
            raise Incorrect(f"{type(self).__qualname__}.init must return a SupervisorSpec, not {show(spec)}")
        spec = dataclasses.replace(spec, restart=dataclasses.replace(spec.restart))  # checked and owned here
        spec.check()
        self._spec = spec
        self._sofo = spec.type is SupervisorType.SIMPLE_ONE_FOR_ONE
        self._index = itertools.count()
        strategy: SupervisorStrategy = spec.restart.strategy  # type: ignore[assignment]  # check() parsed it
        self._specs = [_Child(c, next(self._index), strategy) for c in spec.children]
        self._by_name: dict[str, _Child] = {c.name: c for c in self._specs}
        self._running: dict[PID, _Child] = {}  # in start order
        self._instance_args: dict[PID, tuple[Any, ...]] = {}  # simple one for one: each instance's args
        self._restarts: deque[float] = deque()
        self._mode = _NORMAL
        self._end_reason: BaseException = TerminateReasonShutdown  # what a shutdown ends with
        self._to_start: list[_Child] = []  # a restart's children, in spec order
        self._to_stop: list[PID] = []  # a restart's or shutdown's children still to tell, first to tell last
        self._awaiting: dict[PID, None] = {}  # told to stop, not gone yet (a dict: in the order told)
        self._timers: dict[PID, TimerHandle] = {}
        if not self._sofo:
            for child in self._specs:
                self._start(child, child.args)  # an error fails the spawn; the links take the started ones
        return None

    def _start(self, child: _Child, args: tuple[Any, ...]) -> PID:
        node = self._node
        register = None if self._sofo else child.name
        # the options are this supervisor's own copy, checked with its spec: not again per restart
        pid = node._spawn(child.factory, child.options, args, self, register, checked=True)
        self._running[pid] = child
        if self._sofo:
            self._instance_args[pid] = args
        else:
            child.pid = pid
        if self._spec.enable_handle_child:
            self._notify(_ChildNotice(child.name, pid, None))
        return pid

    def _notify(self, notice: _ChildNotice) -> None:
        # behind what is queued already: the callbacks run after the strategy's work
        self._push(MAIN, (MSG, self._pid, None, notice), False)

    def _stops_child(self, pid: PID) -> bool:
        return pid in self._running

    def _check_idle(self, what: str) -> None:
        if self._state >= TERMINATED:
            raise NotAllowed(f"{what}: the supervisor {self._pid} has terminated")
        if self._mode is not _NORMAL:
            raise SupervisorStrategyActive(f"{what}: the supervisor {self._pid} is {self._mode}")

    def _spec_named(self, name: str) -> _Child:
        if not isinstance(name, str):
            raise Incorrect(f"a child spec is named by a str, not {show(name)}")
        child = self._by_name.get(name)
        if child is None:
            raise SupervisorChildUnknown(f"the supervisor {self._pid} has no child spec {name!r}")
        return child

    def _dispatch(self, item: tuple[Any, ...]) -> Any:
        kind = item[0]
        if kind == EXIT:
            return self._on_exit(item)
        try:
            if kind == MSG and type(item[3]) is _ChildNotice and item[1] == self._pid:
                n = item[3]
                if n.reason is None:
                    result = self.handle_child_start(n.name, n.pid)
                else:
                    result = self.handle_child_terminate(n.name, n.pid, n.reason)
            else:
                result = Actor._dispatch(self, item)
            if type(result) is CoroutineType:
                result.close()
                raise NotAllowed(f"a handler of the supervisor {type(self).__qualname__} must be a plain method, "
                                 "not async def: a supervisor that waits restarts nothing meanwhile")
        except TerminateReason as reason:
            self._shutdown(reason.with_traceback(None))
        except Exception as exc:
            self._log_panic("panic in a handler: %r", exc, exc_info=exc)
            if self._calls_in:  # its callers learn why now, as an Actor's do, not once the children are stopped
                self._node._fail_calls(self, TerminateReasonPanic, show(exc, 400))
            exc.__traceback__ = None
            self._shutdown(TerminateReasonPanic)
        return None

    def _on_exit(self, item: tuple[Any, ...]) -> None:
        message = item[3]
        if item[2] is not None and type(message) is MessageExitPID:
            child = self._running.pop(message.pid, None)
            if child is not None:
                self._child_gone(message.pid, child, message.reason)
                return
        from_parent = item[1] == self._parent and type(message) is MessageExitPID
        if self._trap_exit and not from_parent:
            Supervisor._dispatch(self, (MSG, item[1], None, message))  # as a message, as an Actor's
            return
        # its parent's exit (the node's stop among them), or anything else's: stop the children first
        self._shutdown(_exit_reason(message, item[2] is not None))

    def _child_gone(self, pid: PID, child: _Child, reason: BaseException) -> None:
        """The child ``pid`` (of spec ``child``, out of ``_running`` now) terminated."""
        # each table is looked at only when it holds something: a PID's hash is Python code
        if self._sofo:
            args = self._instance_args.pop(pid)
        else:
            args = child.args
            child.pid = None
        if self._timers:
            timer = self._timers.pop(pid, None)
            if timer is not None:
                timer.cancel()
        if self._spec.enable_handle_child:
            self._notify(_ChildNotice(child.name, pid, reason))
        told = False
        if self._awaiting:
            told = self._awaiting.pop(pid, False) is None
        if self._mode is _SHUTDOWN:
            self._go_on_stopping()
            return
        if self._mode is _RESTARTING:
            if not told and self._restarts_it(child, reason):
                if self._exceeded():
                    self._shutdown(SupervisorRestartsExceeded())
                    return
                self._widen_restart(child)
            self._go_on_stopping()
            return
        if child.disabled:
            self._maybe_auto_shutdown(reason)
            return
        if not self._restarts_it(child, reason):
            if child.significant:
                self._shutdown(reason)
            else:
                self._maybe_auto_shutdown(reason)
            return
        if self._node._stopping():
            self._shutdown(TerminateReasonShutdown)  # no new processes now: its parent's exit is coming
            return
        if self._exceeded():
            self._shutdown(SupervisorRestartsExceeded())
            return
        kind = self._spec.type
        if kind is SupervisorType.ONE_FOR_ONE or kind is SupervisorType.SIMPLE_ONE_FOR_ONE:
            self._restart([(child, args)])
            return
        self._mode = _RESTARTING
        self._to_start = []
        self._widen_restart(child)
        self._go_on_stopping()

    def _restarts_it(self, child: _Child, reason: BaseException) -> bool:
        restart = child.restart
        if restart is SupervisorStrategy.PERMANENT:
            return True
        if restart is SupervisorStrategy.TEMPORARY:
            return False
        return reason != TerminateReasonNormal and reason != TerminateReasonShutdown

    def _exceeded(self) -> bool:
        """Count a restart now; whether it is one too many (Ergo's and OTP's rule: more than
        ``intensity`` restarts within ``period`` seconds, the ends included)."""
        now = self._node._scheduler.now()
        restarts = self._restarts
        restarts.append(now)
        period = self._spec.restart.period
        while restarts and now - restarts[0] > period:
            restarts.popleft()
        return len(restarts) > self._spec.restart.intensity

    def _widen_restart(self, child: _Child) -> None:
        """All/rest for one: ``child`` died and is restarted; so are the others the type
        names (the running ones but the temporary), once they are stopped."""
        all_ = self._spec.type is SupervisorType.ALL_FOR_ONE
        chosen = {c.index: c for c in self._to_start}
        chosen[child.index] = child
        stop = []
        for pid, c in self._running.items():
            if all_ or c.index > child.index:
                if c.restart is not SupervisorStrategy.TEMPORARY:
                    chosen[c.index] = c
                if pid not in self._awaiting and pid not in self._to_stop:
                    stop.append(pid)
        self._to_start = [chosen[i] for i in sorted(chosen)]
        # told last-started first: _to_stop is popped from its end
        self._to_stop = self._order([*stop, *self._to_stop])

    def _order(self, pids: Iterable[PID]) -> list[PID]:
        """Those of ``pids`` that run, in start order (spec order, then start order: the
        running table is in start order and the sort is stable), so that popping from the
        end tells the last started first."""
        chosen = set(pids)
        running = self._running
        return [pid for pid in sorted(running, key=lambda pid: running[pid].index) if pid in chosen]

    def _go_on_stopping(self) -> None:
        """Tell the next children to stop (one at a time with keep_order or when shutting
        down, else all); once every one told is gone, restart or terminate."""
        one_at_a_time = self._mode is _SHUTDOWN or self._spec.restart.keep_order
        while self._to_stop and not (one_at_a_time and self._awaiting):
            pid = self._to_stop.pop()
            if pid in self._running:
                self._stop_child(pid)
        if self._awaiting or self._to_stop:
            return
        if self._mode is _SHUTDOWN:
            self._terminate(self._end_reason)
            return
        starts, self._to_start = self._to_start, []
        self._mode = _NORMAL
        self._restart([(c, c.args) for c in starts if not c.disabled])

    def _restart(self, children: list[tuple[_Child, tuple[Any, ...]]]) -> None:
        for child, args in children:
            try:
                self._start(child, args)
            except Exception as e:  # Ergo's rule: a child that cannot be started again ends the supervisor
                self._log.error("supervisor %s could not restart %s: %r", self._pid, child.name, e)
                self._shutdown(e)
                return

    def _stop_child(self, pid: PID) -> None:
        """Tell a child to stop (``shutdown``, from its parent: untrappable) and wait for it;
        kill it if it takes longer than its ``shutdown_timeout``."""
        node = self._node
        self._awaiting[pid] = None
        p = node._processes.get(pid.id)
        if p is None or p._state >= TERMINATED:
            return  # its exit is on its way
        timeout = self._running[pid].shutdown_timeout
        if timeout == 0:
            p._kill()
            return
        node._stop_process(p, self._pid)
        if timeout is not None and pid in self._running and p._state < TERMINATED:
            self._timers[pid] = node._scheduler.call_later(timeout, self._too_slow, pid)

    def _too_slow(self, pid: PID) -> None:
        self._timers.pop(pid, None)
        p = self._node._processes.get(pid.id)
        if p is not None and p._pid == pid and self._state < TERMINATED:
            self._log.warning("supervisor %s: child %s did not stop within its shutdown timeout: killed",
                              self._pid, pid)
            p._kill()

    def _shutdown(self, reason: BaseException) -> None:
        """Stop every child, last started first, one at a time; then terminate with ``reason``."""
        if self._state >= TERMINATED:
            return
        if self._awaiting and self._node._stopping():
            # told to stop before the node's stop began (a restart, a shutdown): one that
            # sleeps in a handler is stopped where it waits now, as the node's stop does
            processes = self._node._processes
            for pid in list(self._awaiting):
                p = processes.get(pid.id)
                if p is not None and p._state is WAIT_RESPONSE and not p._holds_stop():
                    p._terminate(p._shutdown_reason())
        if self._mode is _SHUTDOWN:
            return  # already on its way; the first reason stands
        self._mode = _SHUTDOWN
        self._end_reason = reason
        self._to_start = []
        self._to_stop = self._order(pid for pid in self._running if pid not in self._awaiting)
        self._go_on_stopping()

    def _maybe_auto_shutdown(self, reason: BaseException) -> None:
        if not self._running and not self._sofo and not self._spec.disable_auto_shutdown:
            self._shutdown(reason)

    def _kill(self) -> None:
        """Killed (at once, untrappable): its children are killed first, last started first.
        Their link from it would end them only when each runs next (a busy one much later),
        and meanwhile they would hold their registered names against this supervisor's
        restart by its own supervisor."""
        if self._state < TERMINATED and hasattr(self, "_running"):  # (none if its init failed early)
            processes = self._node._processes
            for pid in reversed(self._order(self._running)):
                p = processes.get(pid.id)
                if p is not None:
                    p._kill()
        Actor._kill(self)

    def _on_terminate(self, reason: BaseException) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self.terminate(reason)


def _check_child(spec: object, sup: SupervisorSpec) -> None:
    if not isinstance(spec, SupervisorChildSpec):
        raise Incorrect(f"a child spec is a SupervisorChildSpec, not {show(spec)}")
    spec.check()
    if spec.significant:
        if sup.type is SupervisorType.SIMPLE_ONE_FOR_ONE:
            raise Incorrect(f"the child spec {spec.name!r} is significant, which a simple one for one "
                            "supervisor does not support")
        if (spec.restart or sup.restart.strategy) is SupervisorStrategy.PERMANENT:
            raise Incorrect(f"the child spec {spec.name!r} is significant and permanent: a permanent child "
                            "is always restarted, so it can never end its supervisor")


def _parse(cls: Any, value: Any, what: str) -> Any:
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        try:
            return cls(value.lower())
        except ValueError:
            pass
    names = ", ".join(m.value for m in cls)
    raise Incorrect(f"{what} is {cls.__name__} or one of {names}, not {show(value)}")


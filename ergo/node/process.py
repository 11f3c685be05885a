"""A process: its identity and everything a handler can do through it (Ergo's gen.Process).

A behaviour (``Actor`` and the ones to come) *is* a process: it subclasses
:class:`Process`, so a handler writes ``self.send(...)`` as an Ergo actor writes
``a.Send(...)``.  The runtime's own fields live in slots whose names start with ``_``; the
public names below (``pid``, ``name``, ``node``, ``log``, ...) are reserved.  A behaviour's
``__init__`` is free: the node binds the process after the factory made it.
"""

from __future__ import annotations

import dis
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..gen.errors import (
    AliasOwner,
    ErgoError,
    ExitSignal,
    Incorrect,
    MailboxFull,
    NotAllowed,
    TerminateReasonKill,
    TerminateReasonShutdown,
)
from ..gen.ids import PID, Alias, Atom, ProcessID, Ref, Target
from ..gen.options import DEFAULT_CALL_TIMEOUT, CompressionOptions, ProcessOptions
from ..gen.types import LogLevel, MessagePriority, ProcessState
from ..scheduler import CallFuture, Future, TimerHandle, check_delay
from .env import Env
from .log import Log
from .runner import INSPECT, MSG, REQUEST, TERMINATED, WAIT_RESPONSE, ZOMBEE, Runner, show

_INF = float("inf")

if TYPE_CHECKING:
    from ..gen.ids import Event
    from ..gen.messages import MessageEvent
    from .meta import MetaBehavior
    from .node import Node

__all__ = ["Process"]


class Process(Runner, Env):
    """The runtime side of a process, and the API its handlers use."""

    __slots__ = (
        "__weakref__",
        "_aliases",
        "_application",
        "_behavior",
        "_linked",
        "_monitored",
        "_compression",
        "_env",
        "_fallback",
        "_important",
        "_leader",
        "_log_level",
        "_logger",
        "_metas",
        "_name",
        "_parent",
        "_pending",
        "_pid",
        "_priority",
        "_trap_exit",
    )

    #: the application this process belongs to (set by the node's spawn), or None
    _application: Atom | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _check_reserved(cls)

    def _bind(self, node: Node, pid: PID, parent: PID, leader: PID, env: dict[Any, Any], options: ProcessOptions,
              log_level: LogLevel | int) -> None:
        self._setup(node, options.mailbox_size)
        self._pid = pid
        self._name: Atom | None = None
        self._parent = parent
        self._leader = leader
        self._env = env
        #: this process's calls not answered yet: ref -> entry (see calls.py)
        self._pending: dict[Ref, list[Any]] | None = None
        self._aliases: list[Alias] | None = None
        self._metas: dict[Alias, Any] | None = None
        self._priority = options.send_priority
        self._important = options.important_delivery
        self._trap_exit = False
        self._compression = options.compression
        self._fallback = options.fallback
        self._behavior = type(self).__qualname__
        self._linked: dict[Any, None] | None = None  # what this process links to
        self._monitored: dict[Any, None] | None = None  # what it monitors
        # the Log is made when first used (most processes never log): made here, it would
        # also tie the process into a reference cycle (its make_source is a bound method of
        # the process), so that every terminated process waited for the cyclic GC to go
        self._logger: Log | None = None
        self._log_level: int = log_level  # an int or a LogLevel (an int too): Log() makes it an int

    @property
    def _log(self) -> Log:
        """This process's Log, made on first use (see _bind)."""
        log = self._logger
        if log is None:
            log = self._logger = Log(self._node._logging, self._log_level, None, self._log_source)
        return log

    def _level(self) -> int:
        """The log level as an int, without making the Log."""
        log = self._logger
        return self._log_level if log is None else log._level

    def _log_source(self) -> Any:
        from ..gen.messages import MessageLogProcess

        return MessageLogProcess(self._node._name, self._pid, self._name or Atom(""), self._behavior)

    # -- identity ----------------------------------------------------------------------

    @property
    def pid(self) -> PID:
        try:
            return self._pid
        except AttributeError:
            raise _not_spawned(self, "pid") from None

    @property
    def name(self) -> Atom | None:
        """The registered name, or None."""
        try:
            return self._name
        except AttributeError:
            raise _not_spawned(self, "name") from None

    @property
    def node(self) -> Node:
        try:
            return self._node
        except AttributeError:
            raise _not_spawned(self, "node") from None

    @property
    def parent(self) -> PID:
        try:
            return self._parent
        except AttributeError:
            raise _not_spawned(self, "parent") from None

    @property
    def leader(self) -> PID:
        try:
            return self._leader
        except AttributeError:
            raise _not_spawned(self, "leader") from None

    @property
    def state(self) -> ProcessState:
        try:
            return self._state
        except AttributeError:
            raise _not_spawned(self, "state") from None

    @property
    def uptime(self) -> float:
        """Seconds since the process was spawned."""
        try:
            return self._node._scheduler.now() - self._start_time
        except AttributeError:
            raise _not_spawned(self, "uptime") from None

    @property
    def log(self) -> Log:
        """This process's logger: ``self.log.info("got %s", msg)``; its ``level`` is settable."""
        try:
            return self._log
        except AttributeError:
            raise _not_spawned(self, "log") from None

    def info(self) -> Any:
        return self._node.process_info(self._pid)

    # -- settings ----------------------------------------------------------------------

    @property
    def trap_exit(self) -> bool:
        """True turns exit signals into ``MessageExit*`` messages (except from the parent, and kill)."""
        return self._trap_exit

    @trap_exit.setter
    def trap_exit(self, value: bool) -> None:
        self._trap_exit = bool(value)

    @property
    def send_priority(self) -> MessagePriority:
        return self._priority

    @send_priority.setter
    def send_priority(self, value: MessagePriority) -> None:
        self._priority = MessagePriority.parse(value)

    @property
    def important_delivery(self) -> bool:
        return self._important

    @important_delivery.setter
    def important_delivery(self, value: bool) -> None:
        self._important = bool(value)

    @property
    def compression(self) -> CompressionOptions:
        return self._compression

    @compression.setter
    def compression(self, value: CompressionOptions) -> None:
        if not isinstance(value, CompressionOptions):
            raise Incorrect(f"compression takes CompressionOptions, not {type(value).__name__}")
        self._compression = value

    # -- names and aliases -------------------------------------------------------------

    def register_name(self, name: str) -> None:
        self._node.register_name(name, self._pid)

    def unregister_name(self) -> PID:
        if self._name is None:
            from ..gen.errors import NameUnknown

            raise NameUnknown(f"{self._pid} has no registered name")
        return self._node.unregister_name(self._name)

    def create_alias(self) -> Alias:
        """A new alias of this process: messages sent to it arrive here, until deleted."""
        alias = self._node._new_alias()
        if self._aliases is None:
            self._aliases = []
        self._aliases.append(alias)
        self._node._aliases[alias] = self
        return alias

    def delete_alias(self, alias: Alias) -> None:
        if not self._aliases or alias not in self._aliases or alias in (self._metas or ()):
            raise AliasOwner(f"{show(alias)} is not an alias of {self._pid}")
        self._aliases.remove(alias)
        self._node._delete_alias(alias, self._pid)

    def aliases(self) -> list[Alias]:
        return list(self._aliases or ())

    # -- messages ------------------------------------------------------------------------

    def send(self, to: Target, message: Any) -> None:
        """Send ``message`` to a PID, ProcessID, Alias or local name, with this process's priority."""
        self._node._route_send(self._pid, to, message, self._priority)
        self._messages_out += 1

    def send_with_priority(self, to: Target, message: Any, priority: MessagePriority | str | int) -> None:
        self._node._route_send(self._pid, to, message, MessagePriority.parse(priority))
        self._messages_out += 1

    def send_important(self, to: Target, message: Any) -> Future[None]:
        """Send and learn whether the message reached the mailbox.

        Locally the send itself tells: an error (``ProcessUnknown``, ``MailboxFull``...) is
        raised here and the returned future is already done.  To a process of another node
        the future completes when the peer acknowledges delivery, or fails with what the
        peer said (or ``NoConnection``): ``await`` it in an ``async def`` handler.  A plain
        handler cannot wait; a failure nobody awaited is logged.
        """
        node = self._node
        if node._is_remote(to):
            fut = node._net(to).send_important(self._pid, to, message, self._priority)
            self._messages_out += 1
            return fut
        self.send(to, message)
        done: Future[None] = Future()
        done.set_result(None)
        return done

    def send_after(self, to: Target, message: Any, delay: float) -> TimerHandle:
        """Send ``message`` after ``delay`` seconds; ``cancel()`` the returned handle to stop it."""
        delay = check_delay(delay)
        _check_target(to)  # whether it exists is known only then, but what it is can be checked now
        node = self._node
        key = next(node._timer_keys)
        handle = node._scheduler.call_later(delay, _send_later, node, self._pid, to, message, self._priority, key)
        node._timers[key] = handle  # cancelled if the node stops first
        return handle

    def send_exit(self, to: PID, reason: BaseException) -> None:
        """Send an exit signal; it terminates ``to`` unless it traps exits."""
        if not isinstance(reason, BaseException):
            self._reason(reason)  # raises Incorrect, saying why
        self._node._route_exit(self._pid, to, reason)

    def send_exit_meta(self, alias: Alias, reason: BaseException) -> None:
        """Send an exit signal to a meta-process (Ergo's ``SendExitMeta``): it terminates with
        ``reason``.  ``AliasUnknown``, ``MetaUnknown`` (a process's alias),
        ``ProcessTerminated`` or ``MetaMailboxFull`` say why it could not be sent."""
        self._node._route_exit_meta(self._pid, alias, self._reason(reason))
        self._messages_out += 1

    def call(self, to: Target, request: Any, timeout: float = DEFAULT_CALL_TIMEOUT) -> Future[Any]:
        """Make a synchronous request; ``await`` it from an ``async def`` handler.

        Raises ``Timeout`` when no reply comes within ``timeout`` seconds, or the error the
        other side replied with (``send_response_error``).
        """
        return self._request(to, request, timeout, REQUEST)

    def inspect(self, to: PID, *items: str) -> Future[dict[str, str]]:
        """Ask a local process for its ``handle_inspect`` report (a dict of strings)."""
        return self._request(to, items, DEFAULT_CALL_TIMEOUT, INSPECT)

    def _request(self, to: Any, request: Any, timeout: float, kind: int) -> Future[Any]:
        if not self._in_coro and not self._in_handler_task():
            raise NotAllowed(
                f"{self._pid} called {to} from a plain handler: "
                "make the handler `async def` and `await` the call"
            )
        if type(timeout) is not float or not 0.0 <= timeout < _INF:  # the default is a valid float
            timeout = check_delay(timeout, "a call's timeout")
        node = self._node
        ref = node.make_ref()
        net = node._network
        if type(to) is PID and net is not None and to.node != node._name and to.node and kind == REQUEST:
            # a call to a PID of another node (Node._route_request's remote branch, one
            # Python frame less): the network sends it and returns the connection, which
            # owes the answer
            target: Any = net.request(self._pid, to, ref, request, self._priority, self)
        else:
            target = node._route_request(self, to, ref, request, self._priority, kind)
        fut: CallFuture[Any] = CallFuture(to, node)
        entry = fut._entry = [fut, target, None, ref, self, to]  # see calls.py
        node._timeouts.add(entry, timeout)
        pending = self._pending
        if pending is None:
            pending = self._pending = {}
        pending[ref] = entry
        self._messages_out += 1
        return fut

    def send_response(self, to: PID, ref: Ref, value: Any) -> None:
        """Reply to a call later, from any process: ``to`` and ``ref`` come from ``handle_call``."""
        self._node._route_response(to, ref, value, None)
        self._messages_out += 1

    def send_response_error(self, to: PID, ref: Ref, error: BaseException) -> None:
        """Reply to a call with an error: the caller's ``await`` raises it."""
        if not isinstance(error, BaseException):
            raise Incorrect(f"send_response_error takes an exception, not {type(error).__name__}")
        self._node._route_response(to, ref, None, error)
        self._messages_out += 1

    def sleep(self, delay: float) -> Future[None]:
        """``await self.sleep(s)`` suspends this process only; its mailbox keeps filling.

        Killing the process, or the node's stop, ends the sleep at once (the handler's
        ``finally`` blocks run): a sleep never holds a process in memory or a stop."""
        fut = _Sleep()
        fut._timer = self._node._scheduler.call_later(check_delay(delay), fut.set_result, None)
        return fut

    # -- spawning ------------------------------------------------------------------------

    def spawn(self, factory: Callable[[], Process], *args: Any, options: ProcessOptions | None = None) -> PID:
        """Spawn a child of this process; its leader is this process's leader unless set."""
        return self._node._spawn(factory, options, args, self, None)

    def spawn_register(self, name: str, factory: Callable[[], Process], *args: Any,
                       options: ProcessOptions | None = None) -> PID:
        from .node import _name

        return self._node._spawn(factory, options, args, self, _name(name))

    def remote_spawn(self, node: str, name: str, *args: Any, options: ProcessOptions | None = None) -> Future[PID]:
        """Spawn on the node ``node`` what it enabled as ``name`` (``enable_spawn``), for
        this process (Ergo's ``RemoteSpawn``); ``await`` the future for the new PID.

        The connection is dialed if need be.  Every option of ``options`` crosses; the new
        process takes this process's log level unless ``options.log_level`` sets one;
        ``link_parent`` links it to this process, ``link_child`` this process to it (once
        spawned).  Its parent and leader there are that node's core (or ``options.leader``).
        The future fails with ``NotAllowed`` if the peer does not offer ``name`` to this
        node, with ``Taken``, ``NoRoute``, ``NoConnection``, ``Timeout``, or what its
        ``init`` raised (``Incorrect``).  ``NotAllowed`` is raised for this node's own name.
        """
        return self._node._net(node).spawn_on(self, node, name, None, args, options)

    def remote_spawn_register(self, node: str, register: str, name: str, *args: Any,
                              options: ProcessOptions | None = None) -> Future[PID]:
        """``remote_spawn``, and register the new process as ``register`` there (Ergo's
        ``RemoteSpawnRegister``; the name to register comes first, as in every
        ``spawn_register`` here).  ``Taken`` if the name is in use there."""
        if not isinstance(register, str) or not register:
            raise Incorrect(f"a name to register is a non-empty str, not {register!r}"[:200])
        return self._node._net(node).spawn_on(self, node, name, register, args, options)

    def spawn_meta(self, behavior: MetaBehavior, mailbox_size: int = 0) -> Alias:
        """Start a meta-process owned by this process; it is identified by the returned alias."""
        from .meta import MetaProcess

        return MetaProcess._start(self, behavior, mailbox_size)

    # -- links, monitors, events ---------------------------------------------------------

    def link(self, target: Target | Event) -> list[MessageEvent] | None:
        """Link to a PID, ProcessID, Alias or Event: when it goes away, this process gets an
        exit signal (terminating it unless it traps exits).  For an Event, returns its
        buffered last messages, as ``link_event`` does."""
        pubsub = self._node._pubsub
        return pubsub.add(self, target, pubsub._links, "_linked")  # pubsub.link, one call less

    def unlink(self, target: Target | Event) -> None:
        self._node._pubsub.unlink(self, target)

    def monitor(self, target: Target | Event) -> list[MessageEvent] | None:
        """Monitor a PID, ProcessID, Alias or Event: when it goes away, this process gets a
        ``MessageDown*`` message.  For an Event, returns its buffered last messages."""
        pubsub = self._node._pubsub
        return pubsub.add(self, target, pubsub._monitors, "_monitored")  # pubsub.monitor, one call less

    def demonitor(self, target: Target | Event) -> None:
        self._node._pubsub.demonitor(self, target)

    def link_event(self, event: Event) -> list[MessageEvent]:
        """Subscribe to ``event`` with a link; returns the buffered last ``MessageEvent``s."""
        return self._node._pubsub.link(self, _event(event))

    def monitor_event(self, event: Event) -> list[MessageEvent]:
        """Subscribe to ``event`` with a monitor; returns the buffered last ``MessageEvent``s."""
        return self._node._pubsub.monitor(self, _event(event))

    def register_event(self, name: str, notify: bool = False, buffer: int = 0) -> Ref:
        """Become the producer of event ``name``; ``send_event`` needs the returned token.

        With ``notify`` this process gets ``MessageEventStart`` when the first subscriber
        arrives and ``MessageEventStop`` when the last leaves; ``buffer`` keeps that many
        last messages for new subscribers."""
        return self._node._pubsub.register_event(self._pid, name, notify, buffer)

    def unregister_event(self, name: str) -> None:
        self._node._pubsub.unregister_event(self._pid, name)

    def events(self) -> list[Atom]:
        """The names of the events this process registered (and has not unregistered)."""
        return [event.name for event in self._node._pubsub.events_of(self._pid)]

    def send_event(self, name: str, token: Ref, message: Any) -> None:
        """Publish ``message`` to every subscriber of event ``name`` (``EventOwner`` without its token)."""
        self._node._pubsub.send_event(self._pid, name, token, message, self._priority)
        self._messages_out += 1

    # -- behaviour hooks (the runtime calls these; a behaviour overrides them) ----------

    def _init(self, args: tuple[Any, ...]) -> Any:  # pragma: no cover - every behaviour overrides
        return None

    def _on_terminate(self, reason: BaseException) -> None:
        """Call the behaviour's terminate callback."""

    def _stops_child(self, pid: PID) -> bool:
        """Whether this process stops its child ``pid`` itself when the node stops (a
        supervisor does, in reverse start order): the node then leaves the child to it."""
        return False

    # -- termination ---------------------------------------------------------------------

    def _terminate(self, reason: BaseException) -> None:
        state = self._state
        if state is TERMINATED or state is ZOMBEE:
            return
        self._state = TERMINATED
        if not self._in_coro and (self._coro is not None or self._waiting is not None):
            self._close_coroutine()
        node = self._node
        previous = node._current
        node._current = self
        try:
            self._on_terminate(reason)
        except BaseException as e:  # whatever it raised, the process is gone: never left half-unregistered
            self._callback_failed("the terminate callback", e)
        finally:
            node._current = previous
        # terminate() was told how the process died; who watched it is told why
        if isinstance(reason, ExitSignal) and len(reason.args) == 2:  # unwrap_reason inlined
            reason = reason.args[1]
        node._unregister(self, reason)

    def _kill(self) -> None:
        """Terminate at once with reason ``kill``: untrappable, whatever the process is doing."""
        state = self._state
        if state is TERMINATED or state is ZOMBEE:
            return
        node = self._node
        busy = node._current is self or state is WAIT_RESPONSE or self._coro is not None
        self._state = ZOMBEE if busy else TERMINATED
        if not self._in_coro:
            self._close_coroutine()
        node._unregister(self, TerminateReasonKill)
        if not busy:
            previous = node._current
            node._current = self
            try:
                self._on_terminate(TerminateReasonKill)
            except BaseException as e:
                self._callback_failed("the terminate callback", e)
            finally:
                node._current = previous

    def _holds_stop(self) -> bool:
        if Runner._holds_stop(self):
            return True
        waiting, pending = self._waiting, self._pending
        if waiting is None or not pending:
            return False
        awaited = waiting[0]
        return any(entry[0] is awaited for entry in pending.values())

    def _finish_zombee(self) -> None:
        self._close_coroutine()
        self._q_urgent = self._q_system = self._q_main = self._q_log = None

    def _mailbox_full(self, queue: int, item: tuple[Any, ...]) -> None:
        """A queue is full: a message goes to the fallback, if there is one, for one hop.

        Only a plain message falls back, as in Ergo: a call is refused with ``MailboxFull``
        at once (forwarded, its ref would be lost and its caller would wait its whole
        timeout), and so are events and inspections.  The fallback takes it only if its
        own queue has room: its own fallback is never followed, so two full processes
        that fall back to each other (or one that falls back to itself) refuse the message
        with ``MailboxFull`` instead of passing it round.
        """
        fallback = self._fallback
        if fallback is None or item[0] != MSG:
            Runner._mailbox_full(self, queue, item)
            return  # not reached: it raised MailboxFull
        node = self._node
        try:
            spare = node._resolve(fallback.name)
        except ErgoError as e:
            raise MailboxFull(f"the mailbox of {self._pid} is full and its fallback {fallback.name} "
                              f"cannot take the message: {e}") from None
        if spare is self:
            why = "is this process"
        elif spare._state >= TERMINATED:
            why = "is terminating"
        elif spare._full(queue):
            why = "is full too"
        else:
            why = None
        if why is not None:
            raise MailboxFull(f"the mailbox of {self._pid} is full and its fallback {fallback.name} {why}")
        from ..gen.messages import MessageFallback

        msg = MessageFallback(self._pid, fallback.tag, self._pid, item[3])
        spare._push(queue, (MSG, item[1], None, msg), False)

    def _describe(self) -> str:
        return str(self._pid)

    def _shutdown_reason(self) -> BaseException:
        return ExitSignal(self._parent, TerminateReasonShutdown)  # the parent's exit, as it arrives

    def _log_error(self, fmt: str, *args: Any) -> None:
        self._log.error(fmt, *args)

    def _log_panic(self, fmt: str, *args: Any, exc_info: BaseException | None = None) -> None:
        self._log.panic(fmt, *args, exc_info=exc_info)

    def __repr__(self) -> str:
        try:
            return f"<{type(self).__qualname__} {self._pid} {self._state}>"
        except AttributeError:
            return f"<{type(self).__qualname__} (not spawned)>"



class _Sleep(Future[None]):
    """What ``sleep`` returns: a future its own timer completes.  When its sleeper goes
    away (killed, or stopped by the node's shutdown), the timer is cancelled with it."""

    __slots__ = ("_timer",)

    _timer: TimerHandle

    def _detach(self, fn: Callable[[Future[None]], None]) -> None:
        Future._detach(self, fn)
        if not self._callbacks:
            self._timer.cancel()

    def cancel(self, msg: Any = None) -> bool:
        if not Future.cancel(self, msg):
            return False
        self._timer.cancel()  # cancelled by asyncio (a timeout, the task's cancel): its timer goes too
        return True


def _send_later(node: Node, sender: PID, to: Any, message: Any, priority: MessagePriority, key: int) -> None:
    """The send of a ``send_after`` timer.  The timer holds the sender's PID, not the
    process: the message goes even if the sender has terminated meanwhile (as in Ergo),
    and a pending timer never keeps a terminated process in memory.  A node's stop
    cancels the timers still pending (``Node._timers``): a stopped node leaves none."""
    node._timers.pop(key, None)
    try:
        node._route_send(sender, to, message, priority)
    except Exception as e:  # the target may be gone by now: that is not the sender's crash
        node._log.debug("send_after from %s to %s failed: %r", sender, to, e)


def _check_target(to: object) -> None:
    if not isinstance(to, (PID, ProcessID, Alias, str)):
        raise Incorrect(f"cannot send to {show(to)}: a PID, ProcessID, Alias or registered name is needed")


def _event(event: object) -> Event:
    from ..gen.ids import Event

    if not isinstance(event, Event):
        raise Incorrect(f"an event is an Event(name, node), not {show(event)}")
    return event


def _reserved_names() -> frozenset[str]:
    """What a behaviour must not assign or redefine: the process's read-only properties."""
    return frozenset(k for k, v in vars(Process).items()
                     if isinstance(v, property) and v.fset is None and not k.startswith("_"))


def _check_reserved(cls: type) -> None:
    """Refuse, when the class is defined, a behaviour that redefines or assigns a name the
    runtime owns (``self.state = ...`` would fail much later with "property has no setter")."""
    reserved = _RESERVED or _reserved_names()
    for key, value in vars(cls).items():
        if key in reserved:
            raise Incorrect(f"{cls.__qualname__} defines {key!r}, which is the runtime's "
                            f"(Process.{key}, read-only): give yours another name")
        code = getattr(getattr(value, "__func__", value), "__code__", None)
        if code is not None:
            bad = _assigned_on_self(code, reserved)
            if bad is not None:
                raise Incorrect(f"{cls.__qualname__}.{key} assigns self.{bad}, but {bad!r} is the runtime's "
                                f"(Process.{bad}, read-only): give yours another name, e.g. self.{bad}_")


def _assigned_on_self(code: types.CodeType, reserved: frozenset[str], me: str | None = None) -> str | None:
    """The first reserved name a method stores on its first argument, ``me`` (also from a
    function nested in it, where ``me`` is a closure variable)."""
    if me is None:
        if not code.co_argcount:
            return None
        me = code.co_varnames[0]
    previous = None
    for ins in dis.get_instructions(code):
        if (ins.opname == "STORE_ATTR" and ins.argval in reserved and previous is not None
                and previous.opname in ("LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE") and previous.argval == me):
            return str(ins.argval)
        previous = ins
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found = _assigned_on_self(const, reserved, me)
            if found is not None:
                return found
    return None


_RESERVED: frozenset[str] = _reserved_names()


def _not_spawned(p: Process, what: str) -> AttributeError:
    """``self.pid`` (and the like) read before ``spawn`` bound the process: say so.  Not a
    ``__getattr__``: a class with one loses CPython's fast attribute access on every read."""
    return AttributeError(f"{type(p).__qualname__} is not spawned yet: {what!r} exists once node.spawn() has "
                          "made it a process (set up state in init(), which runs after that, not in __init__)")

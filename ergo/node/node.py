"""The node: process table, names, aliases, message routing, env, logging and shutdown.

A node is built by a backend (``sim`` or ``net``) on that backend's scheduler; nothing here
knows which one.  Routing is synchronous: a send resolves its target, appends to the
target's mailbox and wakes it, or raises the error that says why it could not
(``ProcessUnknown``, ``MailboxFull``, ...).  Only one handler runs at a time, so the
tables need no locks.
"""

from __future__ import annotations

import concurrent.futures
import itertools
from collections.abc import Callable, Iterable, Mapping
from threading import get_ident as _get_ident
from types import CoroutineType
from typing import Any, TypeVar

from ..gen.application import Application, ApplicationInfo, ApplicationMode, ApplicationOptions, ApplicationStatus
from ..gen.errors import (
    AliasUnknown,
    Incorrect,
    MailboxFull,
    MetaMailboxFull,
    MetaUnknown,
    NameUnknown,
    NetworkStopped,
    NodeTerminated,
    NotAllowed,
    ProcessTerminated,
    ProcessUnknown,
    Taken,
    TerminateReasonPanic,
    TerminateReasonShutdown,
    Timeout,
)
from ..gen.ids import PID, Alias, Atom, ProcessID, Ref, Target, node_name_problem, set_hash, trusted
from ..gen.messages import MessageExitPID, MessageLogNode, _pair_maker
from ..gen.options import (
    DEFAULT_CALL_TIMEOUT,
    LogOptions,
    MetaInfo,
    NetworkOptions,
    NodeInfo,
    NodeOptions,
    ProcessInfo,
    ProcessOptions,
)
from ..gen.types import LogLevel, MessagePriority, ProcessState
from ..network.network import Network
from ..network.throttle import printable_log
from ..scheduler import CallFuture, Future, Scheduler, TimerHandle, check_delay
from ..transport import Transport
from ..wire._brief import printable
from .application import DEFAULT_STOP_TIMEOUT, Applications
from .calls import CallTimeouts
from .env import Env, _env_name
from .log import Log, Logging
from .process import Process
from .pubsub import UNREGISTERED, PubSub
from .runner import (
    EXIT,
    INSPECT,
    LOG,
    LOGQ,
    MAIN,
    MSG,
    NODE_RUNNING,
    REQUEST,
    SYSTEM,
    TERMINATED,
    URGENT,
    WAIT_RESPONSE,
    Runner,
    _holds_from,
    show,
)
from .tracer import Tracer

T = TypeVar("T")
_new = object.__new__
_object_init = object.__init__
# the slots of a PID and a Ref the node makes itself (trusted() inlined): set directly,
# not through object.__setattr__, which looks each one up first
_pid_node, _pid_id, _pid_creation = (PID.__dict__[f].__set__ for f in ("node", "id", "creation"))
_ref_node, _ref_creation, _ref_id = (Ref.__dict__[f].__set__ for f in ("node", "creation", "id"))

__all__ = ["VERSION", "Node"]

VERSION = "0.1.0"

_STOPPING, _STOPPED = "stopping", "stopped"
_RUNNING = NODE_RUNNING
_NORMAL = MessagePriority.NORMAL
_DEFAULT_LEVEL = LogLevel.DEFAULT  # an enum member read from its class costs ~0.1 µs: once per spawn
_QUEUE_OF = Runner._queue_of
_DEFAULT_PROCESS_OPTIONS = ProcessOptions()
_exit_pid = _pair_maker(MessageExitPID)  # MessageExitPID(pid, reason), per send_exit


def validate_node_name(name: object) -> Atom:
    """``name`` as a node name's Atom, or ``Incorrect`` saying what is wrong with it (see
    ``node_name_problem``)."""
    problem = node_name_problem(name)
    if problem is not None:
        raise Incorrect(problem)
    return Atom(name)  # type: ignore[arg-type]  # a str: node_name_problem said so


def _node_name_hint(name: str) -> str:
    """What to add to "no process is registered as ``name``" when ``name`` reads as a node
    name: a newcomer sending to "b@host" meant a process of that node."""
    if node_name_problem(name) is not None:
        return ""
    shown = str.__str__(name)
    return (f" ('{shown}' reads as a node name: a process of node {shown} is "
            f"ProcessID(name, '{shown}') or its PID)")


class Node(Env):
    """A running node.  Made by a backend: ``sim.Sim().host(...).start_node(...)`` or ``net.start_node(...)``."""

    def __init__(self, name: str, scheduler: Scheduler, options: NodeOptions | None = None,
                 transport: Transport | None = None, tracer: Tracer | None = None,
                 creation: int | None = None) -> None:
        self._name = validate_node_name(name)
        if options is None:
            options = NodeOptions()
        if not isinstance(options, NodeOptions):
            raise Incorrect(f"options must be NodeOptions, not {type(options).__name__}")
        if not isinstance(options.env, Mapping):
            raise Incorrect(f"NodeOptions.env must be a mapping of names to values, not {type(options.env).__name__}")
        if not isinstance(options.log, LogOptions):
            raise Incorrect(f"NodeOptions.log must be LogOptions, not {type(options.log).__name__}")
        if options.network is not None and not isinstance(options.network, NetworkOptions):
            raise Incorrect(f"NodeOptions.network must be NetworkOptions or None, not {type(options.network).__name__}")
        if options.network is not None:
            options.network.check()  # a dataclass can be changed after it was made: check what is used
        self._scheduler = scheduler
        self._options = options
        self._started = scheduler.now()
        # by default the seconds of the start, as Ergo; a backend passes its own so that two
        # runs of one name never share one (their PIDs would match): the simulation a later
        # second, asyncio the milliseconds of the start (net/node.py, _new_creation)
        self._creation = int(scheduler.time()) if creation is None else creation
        self._state = _RUNNING
        #: what the backend watches this node with (see tracer.py); None: nothing is recorded
        self._tracer = tracer
        self._stopped: Future[bool] = Future()
        self._on_stopped: list[Callable[[], None]] = []
        #: why the node stopped, when not by ``stop()`` (its loop ended: see ``_loop_ended``)
        self._ended_why = ""
        env: dict[str, Any] = {}
        for k, v in dict(options.env).items():  # as set_env one by one (None deletes), without a copy each
            key = _env_name(k)
            if v is None:
                env.pop(key, None)
            else:
                env[key] = v
        self._env = env
        self._processes: dict[int, Process] = {}
        self._names: dict[str, Process] = {}  # Atom keys, looked up by any str
        self._aliases: dict[Alias, Runner] = {}
        self._ids = itertools.count(1001)
        self._refs = itertools.count(1)
        #: the pending ``send_after`` timers of its processes, cancelled when the node stops
        self._timers: dict[int, TimerHandle] = {}
        self._timer_keys = itertools.count()
        self._core_pid = PID(self._name, 1, self._creation)
        #: calls made from outside any process, not answered yet: ref -> entry (see calls.py)
        self._core_pending: dict[Ref, list[Any]] = {}
        #: the deadlines of every call made here
        self._timeouts = CallTimeouts(scheduler, self._expire_call)
        self._pubsub = PubSub(self)
        self._apps = Applications(self)
        apps = options.applications
        if isinstance(apps, (str, bytes)) or not isinstance(apps, (list, tuple)) or not all(
                isinstance(a, Application) for a in apps):
            raise Incorrect(f"NodeOptions.applications is a list of Application instances, not {show(apps)}")
        #: the process or meta-process whose handler is running now, if any
        self._current: Runner | None = None
        level = LogLevel.parse(options.log.level)
        if level is LogLevel.DEFAULT:
            level = LogLevel.INFO
        self._logging = Logging(self, options.log)
        self._log = Log(self._logging, level, MessageLogNode(self._name, self._creation))
        #: the same logger for the runtime's own lines (applications, events, the network):
        #: what they show of others' words (an exit reason or an error's text a peer sent)
        #: has its control characters escaped, so that it cannot make lines of its own
        self._runtime_log = printable_log(self._log)
        self._log.info("node %s started (creation %d)", self._name.value, self._creation)
        if tracer is not None:
            tracer.node_started(self)
        #: the network stack, when the options ask for one (see ergo/network)
        self._network: Network | None = None
        network = options.network
        if network is not None:
            if network.mode != "disabled":
                if transport is None:
                    raise Incorrect("this backend gave the node no transport: it cannot have a network")
                self._network = Network(self, transport, network)
                try:
                    self._network.start()
                except BaseException:
                    self._network.stop()
                    self._state = _STOPPED
                    self._logging.close()
                    raise

    def _finish_start(self) -> None:
        """Called by the backend once the node exists: wait for the registrar's answer where
        blocking is possible, so that a name another node holds fails the start with ``Taken``
        (inside a running event loop the registration goes on in the background, and a
        refusal stops the node)."""
        net = self._network
        fut = net.registration if net is not None else None
        if fut is not None:
            waited = True
            if not fut.done() and self._current is None:
                try:
                    self._scheduler.run_until(fut, net.options.connect_timeout)  # type: ignore[union-attr]
                except NotAllowed:
                    waited = False
            if waited and fut.done() and fut._exception is not None:
                self.stop_force()
                raise fut._exception
        self._start_applications()

    def _start_applications(self) -> None:
        """Load ``NodeOptions.applications``, then start them in order (each one's
        dependencies first, wherever they are in the list; Ergo loads and starts them one
        by one, so a dependency listed later is unknown there).  The first that fails stops
        the node by force (nothing it started is left running) and its error is what
        starting the node raises."""
        apps = self._options.applications
        names: list[Atom] = []
        try:
            for app in apps:
                what = type(app).__qualname__
                names.append(self._apps.load(app, ()))
            for name in names:
                what = name.value
                if self._apps.info(name).state is not ApplicationStatus.RUNNING:  # a dependency started it
                    self._apps.start(name, None, None)
        except BaseException as e:
            self._runtime_log.error("unable to start application %s: %r", what, e)
            self.stop_force()
            raise

    def wait_for(self, future: Future[T], timeout: float | None = None) -> T:
        """Block until ``future`` (a remote spawn, ``network().connect``, ...) completes and
        return its result, or raise what it failed with; ``Timeout`` after ``timeout``
        seconds.  Outside handlers only: a handler ``await``s the future instead."""
        if timeout is not None:
            timeout = check_delay(timeout, "a wait's timeout")
        if not isinstance(future, Future):
            raise Incorrect(f"wait_for takes a runtime Future, not {type(future).__name__}")
        if not future.done() and not self._block(future, timeout, "wait_for"):
            raise Timeout(f"the future was not done within {timeout} s")
        return future.result()

    def network(self) -> Network:
        """The node's network stack (Ergo's ``node.Network()``); ``NetworkStopped`` if it has
        none (``NodeOptions(network=NetworkOptions(...))`` gives it one)."""
        if self._network is None:
            raise NetworkStopped(f"node {self._name} has no network ({self._no_network_why()})")
        return self._network

    # -- identity ----------------------------------------------------------------------

    @property
    def name(self) -> Atom:
        return self._name

    @property
    def creation(self) -> int:
        return self._creation

    @property
    def pid(self) -> PID:
        """The PID of the node's core (id 1): the sender of messages sent by ``node.send``."""
        return self._core_pid

    @property
    def uptime(self) -> float:
        """Seconds since the node started (virtual in simulation); 0 once stopped."""
        if self._state == _STOPPED:
            return 0.0
        return self._scheduler.now() - self._started

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    def is_alive(self) -> bool:
        """False once the node has stopped, or once its backend's loop has ended for good
        without ``stop()`` (an asyncio loop closed: ``asyncio.run`` returned): such a node
        can never run again, and reads as stopped from then on."""
        return self._state != _STOPPED and not self._loop_gone()

    def _loop_gone(self) -> bool:
        """Whether the backend's loop ended for good under a node not stopped: the node is
        then stopped at once, without it (see ``_loop_ended``)."""
        if self._scheduler.ended():
            self._loop_ended()
            return True
        return False

    def _loop_ended(self) -> None:
        """Stop a node whose loop ended without ``stop()``.  Nothing can be scheduled any
        more, so no process is told anything: the node reads as stopped, its ports are
        freed (its acceptors, a registrar it served), and who waits for its stop is told."""
        if self._state == _STOPPED:
            return
        self._state = _STOPPED
        self._ended_why = "its event loop ended without node.stop()"
        self._scheduler.end()
        if self._network is not None:
            try:
                self._network.stop(graceful=False)
            except Exception:  # noqa: BLE001 - a socket of a closed loop: freed as far as it can be
                pass
        timers, self._timers = self._timers, {}
        for handle in timers.values():
            handle.cancel()
        if self._tracer is not None:
            self._tracer.node_stopped(self)
        self._logging.close()
        for fn in self._on_stopped:
            fn()
        try:
            self._stopped.set_result(True)
        except (NodeTerminated, RuntimeError):  # an awaiter's wake-up on the closed loop: nobody waits there
            pass

    def is_idle(self) -> bool:
        """True when nothing on this node can make progress right now: no process or
        meta-process has a message or signal waiting or a handler ready to resume, and no
        work is queued on the node's scheduler.

        Timers and what handlers await (a sleep, a call's reply, I/O) do not count: an idle
        node may wake later.  Tests of asyncio code wait for it with :func:`net.settle`; in
        simulation ``Sim.run()`` goes further, until the clock has nothing left either.
        """
        if self._scheduler.pending():
            return False
        for p in self._processes.values():
            if p._busy() or (p._metas and any(m._busy() for m in p._metas.values())):
                return False
        return True

    def make_ref(self) -> Ref:
        """A reference unique on this node (and, with the creation, across its restarts)."""
        # every call makes one: skip Ref's argument checks, the node's name and creation
        # were checked when the node started and the counter yields ints
        ref = _new(Ref)  # trusted() inlined: one per call
        ids = (next(self._refs), 0, 0)
        _ref_node(ref, self._name)
        _ref_creation(ref, self._creation)
        _ref_id(ref, ids)
        set_hash(ref, hash((self._name, ids)))  # as Ref.__hash__ makes it: a call hashes its ref often
        return ref

    def _new_alias(self) -> Alias:
        return trusted(Alias, self._name, self._creation, (next(self._refs), 0, 0))

    def info(self) -> NodeInfo:
        self._check_running()
        procs = self._processes.values()
        return NodeInfo(
            name=self._name,
            creation=self._creation,
            uptime=self.uptime,
            version=VERSION,
            env=dict(self._env),
            log_level=self._log.level,
            loggers=self._logging.names(),
            processes_total=len(self._processes),
            processes_running=sum(1 for p in procs if p._state in (ProcessState.RUNNING, ProcessState.WAIT_RESPONSE)),
            processes_zombee=sum(1 for p in procs if p._state is ProcessState.ZOMBEE),
            registered_names=len(self._names),
            registered_aliases=len(self._aliases),
            registered_events=self._pubsub.size()[2],
            applications_total=len(self._apps.names()),
            applications_running=len(self._apps.names(running=True)),
        )

    # -- processes -----------------------------------------------------------------------

    def spawn(self, factory: Callable[[], Process], *args: Any, options: ProcessOptions | None = None) -> PID:
        """Spawn a process: ``factory()`` makes the behaviour, ``init(*args)`` runs before this returns."""
        return self._spawn(factory, options, args, None, None)

    def spawn_register(self, name: str, factory: Callable[[], Process], *args: Any,
                       options: ProcessOptions | None = None) -> PID:
        """Spawn a process registered under ``name`` (``Taken`` if the name is in use)."""
        return self._spawn(factory, options, args, None, _name(name))

    def _spawn(self, factory: Callable[[], Process], options: ProcessOptions | None, args: tuple[Any, ...],
               parent: Process | None, register: Atom | None, app: Any = None, checked: bool = False) -> PID:
        """``app`` (an application's record, see application.py) spawns one of its members:
        the node's core is its parent, its env and log level are the application's.
        ``checked``: ``options`` are the caller's own, checked already and not changed since."""
        if _get_ident() != self._scheduler.thread:  # _check_thread inlined: one per spawn
            self._check_thread("spawn")
        if self._state != _RUNNING or self._scheduler.ended():
            if self._state == _RUNNING:  # its loop ended: nothing could ever run the process
                self._loop_ended()
            # a process spawned now would miss the shutdown signal and the stop would wait for it
            raise NodeTerminated(f"node {self._name.value} is {self._state}: no new processes"
                                 + (f" ({self._ended_why})" if self._ended_why else ""))
        if options is None:
            options = _DEFAULT_PROCESS_OPTIONS  # never mutated: _bind only reads it
        elif not isinstance(options, ProcessOptions):
            raise Incorrect(f"options must be ProcessOptions or None, not {type(options).__name__}")
        elif not checked:
            options.check()  # a dataclass can be changed after it was made: check what is used
        fallback = options.fallback
        if fallback is not None and isinstance(fallback.name, PID) and fallback.name.node != self._name:
            # a full mailbox passes a message on to a local process only (as Ergo's, a name
            # here): one of another node never took it, and said this node had no network
            raise Incorrect(f"a fallback is a process of this node ({self._name}), not {fallback.name} of node "
                            f"{printable(str.__str__(fallback.name.node))}")
        for a in args:
            if type(a) is ProcessOptions:  # Ergo's order, spawn(factory, options, *args): say so
                raise Incorrect("ProcessOptions go in options=..., not among init's arguments: "
                                "spawn(factory, *args, options=ProcessOptions(...))")
        if not callable(factory):
            raise Incorrect(f"a factory is a callable returning a process behaviour (e.g. an Actor subclass), "
                            f"not {show(factory)}")
        name = register  # an Atom from spawn_register, or None
        if name is not None:
            if name in self._names:
                raise Taken(f"the name {name} is taken by {self._names[name]._pid}")
        behavior = factory()
        if not isinstance(behavior, Process):
            raise Incorrect(f"the factory {show(factory)} returned {type(behavior).__name__}, not a process behaviour "
                            "(subclass ergo.Actor)")
        if (type(factory) is not type or factory.__init__ is not _object_init  # type: ignore[misc]  # a class here
                or factory.__new__ is not _new):  # type: ignore[comparison-overlap]
            # code of the factory's own ran: it may have returned a process already spawned.
            # (A class with neither makes a new object and runs nothing else, so the test,
            # ~0.25 us for the AttributeError an unset slot raises inside, is spared there)
            if getattr(behavior, "_node", None) is not None:
                raise Incorrect(f"the factory {show(factory)} returned a behaviour that is already a process")
        # a process's env is shared, never copied, where it equals another's: every writer
        # copies the dict first (Env.set_env), so a shared one is never changed in place
        if parent is None:
            parent_pid = leader = self._core_pid
            env = self._env
            log_level: LogLevel | int = self._log._level  # the int: the property makes an enum member
            application = None
            if app is not None:
                env = dict(env)
                env.update(app.env)
                if app.log_level is not _DEFAULT_LEVEL:
                    log_level = app.log_level
                application = app.name
        else:
            parent_pid, leader = parent._pid, parent._leader
            env = parent._env  # the node's env, then the parent's over it
            node_env = self._env
            if node_env and node_env is not env:
                if env:
                    env = dict(node_env)
                    env.update(parent._env)
                else:
                    env = node_env
            logger = parent._logger  # Process._level inlined: one per spawn
            log_level = parent._log_level if logger is None else logger._level
            application = parent._application  # what a member spawns belongs to its application
        if options.leader is not None:
            leader = options.leader
        if options.env:
            env = dict(env)
            for k, v in dict(options.env).items():
                env[_env_name(k)] = v
        if options.log_level is not _DEFAULT_LEVEL:
            log_level = options.log_level  # type: ignore[assignment]  # check() made it a LogLevel
        pid = _new(PID)  # trusted() inlined, as in make_ref: one per spawn
        _pid_node(pid, self._name)
        _pid_id(pid, next(self._ids))
        _pid_creation(pid, self._creation)
        behavior._bind(self, pid, parent_pid, leader, env, options, log_level)
        behavior._application = application
        self._processes[pid.id] = behavior
        if name is not None:
            self._set_name(behavior, name)
        if self._tracer is not None:
            self._tracer.spawned(self, behavior, parent_pid)
        previous = self._current
        self._current = behavior
        try:
            result = behavior._init(args)
            if type(result) is CoroutineType:
                result.close()
                raise NotAllowed(f"init of {type(behavior).__qualname__} must be a plain method, not async def")
        except BaseException as e:
            # children spawned by init with link_parent must hear of it: fire with the error
            behavior._state = TERMINATED
            self._unregister(behavior, e if isinstance(e, Exception) else TerminateReasonPanic)
            raise
        finally:
            self._current = previous
        if parent is not None:
            if options.link_parent:
                self._pubsub.add_link_quietly(behavior, parent._pid)
            if options.link_child:
                self._pubsub.add_link_quietly(parent, pid)
        behavior._activate()
        return pid

    def register_name(self, name: str, pid: PID) -> None:
        """Register ``name`` for a local process; a process has at most one name."""
        self._check_running()
        atom = _name(name)
        p = self._local_process(pid)
        if atom in self._names:
            raise Taken(f"the name {atom} is taken by {self._names[atom]._pid}")
        if p._name is not None:
            raise Taken(f"{pid} is already registered as {p._name}")
        self._set_name(p, atom)

    def _set_name(self, p: Process, name: Atom) -> None:
        self._names[name] = p
        p._name = name
        if p._logger is not None:
            p._logger._source = None

    def unregister_name(self, name: str) -> PID:
        """Release ``name``; returns the PID that had it."""
        self._check_running()
        p = self._names.pop(_lookup_name(name), None)
        if p is None:
            raise NameUnknown(f"no process is registered as '{str.__str__(name)}'")
        atom: Atom = p._name  # type: ignore[assignment]  # found by its name: it has one
        p._name = None
        if p._logger is not None:
            p._logger._source = None  # made again, with the new name, when next needed
        self._pubsub.fire(ProcessID(atom, self._name), UNREGISTERED, p._pid)
        return p._pid

    def whereis(self, name: str) -> PID | None:
        """The PID registered as ``name`` on this node, or None."""
        p = self._names.get(_lookup_name(name))
        return None if p is None else p._pid

    def kill(self, pid: PID) -> None:
        """Terminate a local process at once with reason ``kill``; it cannot trap this."""
        self._check_thread("kill")
        self._check_running()
        self._local_process(pid, " (send_exit(pid, TerminateReasonKill) reaches another node's)")._kill()

    def send_exit(self, pid: PID, reason: BaseException) -> None:
        """Send an exit signal from the node's core; it terminates ``pid`` unless it traps exits."""
        self._check_thread("send_exit")
        self._check_running()
        self._route_exit(self._core_pid, pid, Runner._reason(reason))

    def process_info(self, pid: PID) -> ProcessInfo:
        self._check_running()
        p = self._local_process(pid)
        return ProcessInfo(
            pid=p._pid,
            name=p._name,
            behavior=p._behavior,
            state=p._state,
            parent=p._parent,
            leader=p._leader,
            uptime=p.uptime,
            mailbox_size=p._mailbox_size,
            mailbox_queues=p._queue_sizes(),
            messages_in=p._messages_in,
            messages_out=p._messages_out,
            running_time=p._running_time,
            message_priority=p._priority,
            trap_exit=p._trap_exit,
            env=dict(p._env),
            aliases=tuple(p._aliases or ()),
            metas=tuple(p._metas or ()),
            log_level=LogLevel(p._level()),
            important_delivery=p._important,
            compression=p._compression,
            fallback=p._fallback,
            links=tuple(p._linked or ()),
            monitors=tuple(p._monitored or ()),
            events=self._pubsub.events_of(p._pid),
            application=p._application,
        )

    def process_list(self) -> list[PID]:
        self._check_running()
        return [p._pid for p in self._processes.values()]

    # -- applications (Ergo's gen.Node Application* methods; see ergo/node/application.py) --

    def application_load(self, app: Application, *args: Any) -> Atom:
        """Load ``app``: its ``load(node, *args)`` returns the spec; returns the
        application's name.  ``Taken`` if one of that name is loaded; ``ApplicationEmpty``,
        ``ApplicationName``, ``ApplicationDepends`` (on the network, which this node lacks)
        for a spec that cannot run; ``ApplicationLoadPanic`` if ``load`` raised."""
        self._check_thread("application_load")
        self._check_running()
        return self._apps.load(app, args)

    def application_unload(self, name: str) -> None:
        """Forget a loaded application; ``ApplicationRunning`` unless it is stopped."""
        self._check_running()
        self._apps.unload(name)

    def application_start(self, name: str, options: ApplicationOptions | None = None) -> None:
        """Start ``name`` in its spec's mode, its dependencies first (each in its own
        mode).  ``ApplicationUnknown``, ``ApplicationRunning``, ``ApplicationState``
        (stopping), ``ApplicationDepends`` (a dependency is not loaded, failed, or depends
        back), or what spawning a member raised (the members spawned before it are killed)."""
        self._check_thread("application_start")
        self._apps.start(name, None, options)

    def application_start_temporary(self, name: str, options: ApplicationOptions | None = None) -> None:
        """``application_start`` in temporary mode, whatever the spec says."""
        self._check_thread("application_start")
        self._apps.start(name, ApplicationMode.TEMPORARY, options)

    def application_start_transient(self, name: str, options: ApplicationOptions | None = None) -> None:
        """``application_start`` in transient mode, whatever the spec says."""
        self._check_thread("application_start")
        self._apps.start(name, ApplicationMode.TRANSIENT, options)

    def application_start_permanent(self, name: str, options: ApplicationOptions | None = None) -> None:
        """``application_start`` in permanent mode, whatever the spec says."""
        self._check_thread("application_start")
        self._apps.start(name, ApplicationMode.PERMANENT, options)

    def application_stop(self, name: str, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop ``name``: every member gets an exit ``shutdown`` from its parent (the
        node's core, so it cannot trap it).  Outside a handler this returns once the last
        member has terminated and ``terminate`` has run, or raises ``ApplicationStopping``
        after ``timeout`` seconds (the stop goes on); from a handler (or on a running event
        loop) it returns at once.  A stopped application is no error; one stopping
        already is ``ApplicationStopping``."""
        self._check_thread("application_stop")
        self._check_running()
        self._apps.stop(name, False, timeout)

    def application_stop_force(self, name: str) -> None:
        """Kill every member of ``name`` now; it is stopped when this returns."""
        self._check_thread("application_stop_force")
        self._check_running()
        self._apps.stop(name, True, DEFAULT_STOP_TIMEOUT)

    def application_info(self, name: str) -> ApplicationInfo:
        self._check_running()
        return self._apps.info(name)

    def application_process_list(self, name: str, limit: int = 0) -> list[PID]:
        """The PIDs of a running application: its members first, then every process they
        (and theirs) spawned; at most ``limit`` (0: all).  ``ApplicationState`` unless running."""
        self._check_running()
        return self._apps.process_list(name, limit)

    def applications(self) -> list[Atom]:
        """The names of the loaded applications (running or not), in load order."""
        self._check_running()
        return self._apps.names()

    def applications_running(self) -> list[Atom]:
        """The names of the running applications, in the order they started."""
        self._check_running()
        return self._apps.names(running=True)

    def meta_info(self, alias: Alias) -> MetaInfo:
        from .meta import MetaProcess

        if not isinstance(alias, Alias):
            raise Incorrect(f"a meta-process is named by its Alias, not {show(alias)}")
        self._check_running()
        m = self._aliases.get(alias)
        if not isinstance(m, MetaProcess):
            raise MetaUnknown(f"no meta-process {alias} on {self._name}")
        return m.info()

    def _local_process(self, pid: PID, remote_hint: str = "") -> Process:
        if not isinstance(pid, PID):
            raise Incorrect(f"a PID is needed, not {show(pid)}")
        if pid.node != self._name:  # a PID's CRC does not say whose it is: say so, and what works
            raise ProcessUnknown(f"no process {pid} on {self._name}: it is a process of node "
                                 f"{str.__str__(pid.node)}, and this takes a local one{remote_hint}")
        p = self._processes.get(pid.id)
        if p is None or p._pid.creation != pid.creation:
            raise ProcessUnknown(f"no process {pid} on {self._name}")
        return p

    # -- routing ---------------------------------------------------------------------------

    def send(self, to: Target, message: Any) -> None:
        """Send from outside any process (the sender is the node's core PID)."""
        self._check_thread("send")
        self._check_running()
        self._route_send(self._core_pid, to, message, _NORMAL)

    def send_threadsafe(self, to: Target, message: Any) -> None:
        """``send`` from any thread: the message is sent on the node's own thread, soon.

        Nothing is raised here for a target that is unknown by then: such a send is logged
        at warning level (use ``call_threadsafe`` to learn the outcome).
        """
        if self._ended_why:  # its loop ended: nothing will ever run the send
            self._check_running()
        self._scheduler.call_soon_threadsafe(self._send_later, to, message)

    def _send_later(self, to: Any, message: Any) -> None:
        try:
            self._check_running()
            self._route_send(self._core_pid, to, message, _NORMAL)
        except Exception as e:
            self._runtime_log.warning("send_threadsafe to %s failed: %r", to, e)

    def call_threadsafe(self, to: Target, request: Any,
                        timeout: float = DEFAULT_CALL_TIMEOUT) -> concurrent.futures.Future[Any]:
        """``call`` from any thread: returns a ``concurrent.futures.Future`` of the reply
        (``.result()`` waits for it; it raises what the call raises).

        ``cancel()`` on it, from any thread, gives the call up as cancelling ``call_async``
        does: the call ends on the node's thread soon after (its entry, deadline and the
        target's debt let go), and a reply that comes later is dropped."""
        if self._ended_why:  # its loop ended: nothing will ever start the call
            self._check_running()
        result: concurrent.futures.Future[Any] = concurrent.futures.Future()
        scheduler = self._scheduler

        def settle(f: Future[Any]) -> None:
            try:
                if f._exception is not None:
                    result.set_exception(f._exception)
                else:
                    result.set_result(f._result)
            except concurrent.futures.InvalidStateError:
                pass  # cancelled in its thread meanwhile: the cancel ends the call, soon

        def start() -> None:
            # not set_running_or_notify_cancel: a running concurrent future cannot be
            # cancelled, and a caller's cancel() must be able to end the call
            if result.cancelled():
                return
            try:
                fut = self._start_call(to, request, timeout)
            except Exception as e:
                try:
                    result.set_exception(e)
                except concurrent.futures.InvalidStateError:
                    pass
                return
            fut.add_done_callback(settle)

            def given_up(r: concurrent.futures.Future[Any]) -> None:
                if r.cancelled() and not fut.done():
                    scheduler.call_soon_threadsafe(fut.cancel)  # CallFuture.cancel ends the call

            result.add_done_callback(given_up)  # (at once if it was cancelled already)

        scheduler.call_soon_threadsafe(start)
        return result

    def _check_thread(self, what: str) -> None:
        if not self._scheduler.in_thread():
            raise NotAllowed(f"node.{what} was called from another thread than node {self._name.value}'s: "
                             "use node.send_threadsafe / node.call_threadsafe there")

    def _resolve(self, to: Any) -> Runner:
        """The local process (or meta-process) ``to`` names, or the error that says why not."""
        t = type(to)
        if t is PID:
            if to.node != self._name:
                return self._remote(to)
            p = self._processes.get(to.id)
            if p is None or p._pid.creation != to.creation:
                raise ProcessUnknown(f"no process {to} on {self._name}")
            return p
        if t is ProcessID:
            if to.node != self._name and to.node:  # an empty node is this one, as in Ergo
                return self._remote(to)
            to = to.name
            t = Atom
        if t is Atom or t is str:
            # looked up as it is: a name that could never be registered (too long) is as
            # unknown as any other, never an AtomTooLong
            p = self._names.get(to)
            if p is None:
                raise ProcessUnknown(f"no process is registered as '{str.__str__(to)}' on {self._name}"
                                     + _node_name_hint(to))
            return p
        if t is Alias:
            if to.node != self._name:
                return self._remote(to)
            r = self._aliases.get(to)
            if r is None:
                raise ProcessUnknown(f"no process has the alias {to}")
            return r
        raise Incorrect(f"cannot send to {show(to)}: a PID, ProcessID, Alias or registered name is needed")

    def _remote(self, to: Any) -> Runner:
        raise NetworkStopped(f"{to} is on another node and node {self._name} has no network "
                             f"({self._no_network_why()})")

    def _no_network_why(self) -> str:
        if self._options.network is None:
            return "NodeOptions.network is not set"
        return "its NetworkOptions.mode is 'disabled'"

    def _net(self, to: Any) -> Network:
        net = self._network
        if net is None:
            self._remote(to)
        return net  # type: ignore[return-value]

    def _is_remote(self, to: Any) -> bool:
        """Whether ``to`` (a PID, ProcessID or Alias) names a process of another node."""
        t = type(to)
        return (t is PID or t is ProcessID or t is Alias) and to.node != self._name and bool(to.node)

    def _route_send(self, from_: PID, to: Any, message: Any, priority: MessagePriority) -> None:
        if type(to) is PID and to.node == self._name:  # the hot path, inlined
            p: Runner | None = self._processes.get(to.id)
            if p is None or p._pid.creation != to.creation:  # type: ignore[attr-defined]  # a Process
                raise ProcessUnknown(f"no process {to} on {self._name}")
            item = (MSG, from_, None, message)
        else:
            net = self._network
            if type(to) is PID and net is not None and to.node:  # a remote PID: _is_remote and _net inlined
                net.send(from_, to, message, priority)
                return
            if self._is_remote(to):
                self._net(to).send(from_, to, message, priority)
                return
            p = self._resolve(to)
            item = _addressed((MSG, from_, None, message), to, p)
        if p._state >= TERMINATED:
            raise ProcessTerminated(f"{to} is terminating")
        if priority is _NORMAL:
            p._push_main(item)
        else:
            p._push(_QUEUE_OF(priority), item)

    def _route_request(self, caller: Runner | None, to: Any, ref: Ref, request: Any,
                       priority: MessagePriority, kind: int, from_: PID | None = None) -> Any:
        """Queue a request at its target and return the target, which owes the caller an
        answer from now on (see :meth:`_fail_calls`): a local process, or the connection
        to the target's node.  ``from_`` is a remote caller (``caller`` is then None)."""
        if type(to) is PID and to.node == self._name:  # the hot path: _resolve inlined
            p: Runner | None = self._processes.get(to.id)
            if p is None or p._pid.creation != to.creation:  # type: ignore[attr-defined]  # a Process
                raise ProcessUnknown(f"no process {to} on {self._name}")
        else:
            net = self._network
            if type(to) is PID and net is not None and to.node and kind != INSPECT:
                # a remote PID (to.node is not this node's): _is_remote and _net inlined
                if isinstance(caller, Process):
                    return net.request(caller._pid, to, ref, request, priority, caller)
                return net.request(self._core_pid, to, ref, request, priority)
            if self._is_remote(to):
                if kind == INSPECT:
                    raise NotAllowed(f"inspect works on local processes only, not {to}")
                sender = caller._pid if isinstance(caller, Process) else self._core_pid
                return self._net(to).request(sender, to, ref, request, priority)
            p = self._resolve(to)
        if p is caller:
            raise NotAllowed(f"{caller._describe()} cannot call itself")
        if p._state >= TERMINATED:
            raise ProcessTerminated(f"{to} is terminating")
        if from_ is None:
            from_ = caller._pid if isinstance(caller, Process) else self._core_pid
        if kind == INSPECT:
            p._push(URGENT, (kind, from_, ref, request))
        else:
            item = (kind, from_, ref, request) if type(to) is PID else _addressed((kind, from_, ref, request), to, p)
            if priority is _NORMAL:
                p._push_main(item)
            else:
                p._push(_QUEUE_OF(priority), item)
        # in flight until answered: if ``p`` terminates first, the caller is told at once
        calls = p._calls_in
        if calls is None:
            calls = p._calls_in = {}
        calls[ref] = from_
        return p

    def _pass_call(self, ref: Ref, old: Runner, new: Runner) -> None:
        """The call ``ref`` that ``old`` owes an answer is now owed by ``new`` (a pool
        forwarded it to a worker): the answer ``new`` gives reaches the caller, and if
        ``new`` terminates first, the caller is told at once."""
        calls = old._calls_in
        caller = calls.pop(ref, None) if calls else None
        if caller is None:
            return  # nobody waits for it any more (the call timed out)
        owed = new._calls_in
        if owed is None:
            owed = new._calls_in = {}
        owed[ref] = caller
        # the caller's record of the call names its target: where a timeout clears the debt
        if caller.node != self._name:
            net = self._network
            if net is not None:
                net.pass_call(caller, ref, old, new)
            return
        if caller.id == 1 and caller == self._core_pid:
            entry = self._core_pending.get(ref)
        else:
            p = self._processes.get(caller.id)
            entry = p._pending.get(ref) if p is not None and p._pending else None
        if entry is not None and entry[1] is old:
            entry[1] = new

    def _fail_calls(self, p: Runner, reason: BaseException, detail: str = "") -> None:
        """``p`` terminates with calls it has not answered: fail each caller at once with
        the reason (Erlang's ``gen_server:call`` monitors its target; Ergo lets the caller
        time out)."""
        calls, p._calls_in = p._calls_in, None
        if not calls:
            return
        why = f"{reason}: {detail}" if detail else str(reason)
        # while the node stops, that is the news: its processes end because it does
        stopping = self._state != _RUNNING
        error = NodeTerminated if stopping else ProcessTerminated
        name = str.__str__(self._name)
        # a caller on another node is told which node (a PID's CRC does not say) and, if it
        # is this node that stops, that it is: NodeTerminated alone reads as its own node's end
        remote = (f"{p._describe()} of node {name} terminated ({why}"
                  f"{f'; node {name} is stopping' if stopping else ''}) before it replied")
        for ref, caller in calls.items():
            local = caller.node == name
            err = error(f"{p._describe()} terminated ({why}) before it replied" if local else remote)
            err.__cause__ = reason
            self._route_response(caller, ref, None, err)

    def _forget_call(self, entry: list[Any]) -> None:
        """The call ``entry`` (see calls.py) ended without an answer (its caller timed out or
        terminated): its target no longer owes one, and a long-lived target that never
        answers holds nothing for it."""
        calls, ref = entry[1]._calls_in, entry[3]
        self._timeouts.end(entry)
        if calls:
            calls.pop(ref, None)

    def _call_cancelled(self, entry: list[Any]) -> None:
        """A caller cancelled the future of its call ``entry`` (see ``CallFuture.cancel``):
        the call ends now, as an answered one does.  It held its entry, its deadline and its
        target's debt until its timeout, so a web handler whose clients give up (each
        cancelling a call with a long timeout) made them pile up."""
        ref, caller = entry[3], entry[4]
        pending = self._core_pending if caller is None else caller._pending
        if pending:
            pending.pop(ref, None)
        self._forget_call(entry)

    def _expire_call(self, entry: list[Any], timeout: float) -> None:
        fut, target, _, ref, caller, to = entry
        pending = self._core_pending if caller is None else caller._pending
        if pending:
            pending.pop(ref, None)
        calls = target._calls_in
        if calls:
            calls.pop(ref, None)
        if self._tracer is not None:
            self._tracer.call_expired(self, self._core_pid if caller is None else caller._pid, ref, timeout)
        node = getattr(to, "node", None)  # a remote target's CRC does not say which node it is on
        where = f" of node {str.__str__(node)}" if node and node != self._name else ""
        fut.set_exception(Timeout(f"call to {to}{where} got no reply within {timeout} s"))

    def _route_response(self, to: PID, ref: Ref, value: Any, error: BaseException | None) -> None:
        if type(to) is not PID and not isinstance(to, PID):
            raise Incorrect(f"a response goes to the caller's PID, not {show(to)}")
        if type(ref) is not Ref and not isinstance(ref, Ref):
            raise Incorrect(f"a response needs the call's Ref, not {show(ref)}")
        if to.node != self._name:
            current = self._current
            net = self._network  # _net inlined
            if net is None:
                self._remote(to)
            if isinstance(current, Process):
                net.response(current._pid, to, ref, value, error, current)  # type: ignore[union-attr]
            else:
                net.response(None, to, ref, value, error)  # type: ignore[union-attr]
            return
        if to.id == 1 and to == self._core_pid:  # the id first: PID's __eq__ is Python code
            entry = self._core_pending.pop(ref, None)
        else:
            p = self._processes.get(to.id)
            pending = p._pending if p is not None and p._pid.creation == to.creation else None
            entry = pending.pop(ref, None) if pending else None
        if entry is None:
            # the caller is gone, or its call timed out: the call was forgotten then, and
            # the reply is dropped, as a late one is
            return
        if self._tracer is not None:
            self._tracer.replied(self, to, ref, value, error)
        # _forget_call inlined, as its call's answer: the target owes nothing any more
        fut, calls = entry[0], entry[1]._calls_in
        self._timeouts.end(entry)
        if calls:
            calls.pop(ref, None)
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)

    def _route_exit(self, from_: PID, to: PID, reason: BaseException) -> None:
        if not isinstance(to, PID):
            raise Incorrect(f"an exit signal goes to a PID, not {show(to)}")
        if to.node != self._name:
            self._net(to).exit(from_, to, reason)
            return
        p = self._processes.get(to.id)  # _local_process inlined
        if p is None or p._pid.creation != to.creation:
            raise ProcessUnknown(f"no process {to} on {self._name}")
        if p._state >= TERMINATED:
            raise ProcessTerminated(f"{to} is terminating")
        p._push_signal(URGENT, (EXIT, from_, None, _exit_pid(from_, reason)))

    def _route_exit_meta(self, from_: PID, alias: Alias, reason: BaseException) -> None:
        """Ergo's ``SendExitMeta``: an exit signal to a meta-process, which terminates it
        with ``reason`` (a meta-process never traps exits)."""
        from .meta import MetaProcess

        if not isinstance(alias, Alias):
            raise Incorrect(f"an exit signal to a meta-process goes to its Alias, not {alias!r}")
        m = self._aliases.get(alias)
        if m is None:
            raise AliasUnknown(f"no alias {alias} on {self._name}")
        if not isinstance(m, MetaProcess):
            raise MetaUnknown(f"{alias} is an alias of {m._describe()}, not a meta-process")
        if m._state >= TERMINATED or m._owner._state >= TERMINATED:
            raise ProcessTerminated(f"meta-process {alias} is terminating")
        item = (EXIT, from_, None, MessageExitPID(from_, reason))
        # the system queue, as Ergo; behind the sender's earlier messages, as every signal
        q = m._q_main
        try:
            m._push(MAIN if q and _holds_from(q, from_) else SYSTEM, item)
        except MailboxFull:
            raise MetaMailboxFull(f"the mailbox of meta-process {alias} is full") from None

    def _deliver_log(self, pid: PID, message: Any) -> None:
        p = self._processes.get(pid.id)
        if p is None or p._state >= TERMINATED:
            return
        try:
            p._push(LOGQ, (LOG, None, None, message))
        except MailboxFull:
            pass  # a logger that cannot keep up loses lines, never blocks the node

    # -- calls from outside any process --------------------------------------------------

    def _start_call(self, to: Any, request: Any, timeout: float, kind: int = REQUEST) -> Future[Any]:
        self._check_thread("call")
        self._check_running()
        timeout = check_delay(timeout, "a call's timeout")
        ref = self.make_ref()
        target = self._route_request(None, to, ref, request, _NORMAL, kind)
        fut: CallFuture[Any] = CallFuture(to, self)
        fut._consumed = True  # the node's own API waits for it: never a forgotten await
        entry = fut._entry = [fut, target, None, ref, None, to]  # see calls.py
        self._timeouts.add(entry, timeout)
        self._core_pending[ref] = entry
        return fut

    def _check_can_block(self, what: str) -> None:
        if self._current is not None:
            raise NotAllowed(f"node.{what} cannot block inside a handler; in an async def handler use "
                             f"`await self.{what}(...)`")

    def _block(self, fut: Future[Any], timeout: float | None, what: str) -> bool:
        self._check_can_block(what)
        try:
            return self._scheduler.run_until(fut, timeout)
        except NotAllowed as e:  # a running event loop: say what to await instead of this
            instead = _AWAIT_INSTEAD.get(what)
            raise NotAllowed(f"node.{what}() {e}" + (f": {instead}" if instead else "")) from None

    def call(self, to: Target, request: Any, timeout: float = DEFAULT_CALL_TIMEOUT) -> Any:
        """Make a call from outside any process and wait for the reply (the clock runs meanwhile)."""
        self._check_can_block("call")
        fut = self._start_call(to, request, timeout)
        self._block(fut, None, "call")
        return fut.result()

    async def call_async(self, to: Target, request: Any, timeout: float = DEFAULT_CALL_TIMEOUT) -> Any:
        """``call`` for code running on the backend's event loop (an asyncio program)."""
        fut = self._start_call(to, request, timeout)
        if self._scheduler.tasks:  # an event loop's task awaits the runtime's Future itself
            return await fut
        return await self._scheduler.wait_for(fut)

    def inspect(self, pid: PID, *items: str) -> dict[str, str]:
        """A process's ``handle_inspect`` report."""
        self._check_can_block("inspect")
        fut: Future[dict[str, str]] = self._start_call(pid, items, DEFAULT_CALL_TIMEOUT, INSPECT)
        self._block(fut, None, "inspect")
        return fut.result()

    # -- logging -----------------------------------------------------------------------------

    @property
    def log(self) -> Log:
        """The node's own logger; its ``level`` is the node's log level."""
        return self._log

    def logger_add(self, name: str, logger: Any, filter: Iterable[LogLevel | str] | None = None) -> None:
        """Add a logger: a ``logging.Handler`` or an object with ``log(MessageLog)``.

        ``filter`` is the levels it receives (all by default).
        """
        self._check_running()
        self._logging.add(name, logger, filter)

    def logger_add_process(self, pid: PID, name: str | None = None,
                           filter: Iterable[LogLevel | str] | None = None) -> None:
        """Make a local process a logger: its ``handle_log`` gets each message through its log queue."""
        self._check_running()
        self._local_process(pid)
        self._logging.add_process(pid, name or str(pid), filter)

    def logger_delete(self, name: str) -> None:
        self._logging.delete(name)

    def logger_delete_process(self, pid: PID) -> None:
        if not isinstance(pid, PID):
            raise Incorrect(f"a process logger is named by its PID, not {show(pid)}")
        self._logging.delete_process(pid)

    def loggers(self) -> tuple[str, ...]:
        return self._logging.names()

    # -- termination ---------------------------------------------------------------------

    def _unregister(self, p: Process, reason: BaseException) -> None:
        """Release everything a terminated process held, then tell who watched it.

        The name and aliases are free before any notice is queued, so a watcher that hears
        of the termination can take the name at once.
        """
        if self._tracer is not None:
            self._tracer.terminated(self, p, reason)
        self._processes.pop(p._pid.id, None)
        log = p._logger
        if log is not None and log._make_source is not None:
            # its Log holds a bound method of the process (a reference cycle, left to the
            # cyclic GC): the source is made now, with the process's name, and the method
            # let go, so the process is freed by reference counting like one that never logged
            log._source = log.source
            log._make_source = None
        name = p._name
        if name is not None and self._names.get(name) is p:
            del self._names[name]
        else:
            name = None
        aliases = p._aliases or ()
        for alias in aliases:
            self._aliases.pop(alias, None)
        p._aliases = None
        if p._metas:
            for meta in list(p._metas.values()):
                meta._owner_terminated(reason)
        if p._pending:
            for entry in p._pending.values():
                self._forget_call(entry)
            p._pending = None
        if p._calls_in:
            self._fail_calls(p, reason)
        if self._logging._process_loggers:  # rare: spare every termination the call
            self._logging.delete_process(p._pid)
        self._pubsub.process_terminated(p, reason, name, aliases)
        if p._application is not None:
            self._apps.member_terminated(p, reason)
        if self._state == _STOPPING and not self._processes and not self._apps.stopping:
            self._finish_stop()

    def _delete_alias(self, alias: Alias, owner: PID) -> None:
        if self._aliases.pop(alias, None) is None:
            raise AliasUnknown(f"no alias {alias} on {self._name}")
        self._pubsub.fire(alias, UNREGISTERED, owner)

    # -- events of the node itself (the producer is the core PID) --------------------------

    def register_event(self, name: str, notify: bool = False, buffer: int = 0) -> Ref:
        """Register an event produced by the node itself; returns the token ``send_event`` needs."""
        self._check_running()
        return self._pubsub.register_event(self._core_pid, name, notify, buffer)

    def unregister_event(self, name: str) -> None:
        self._check_running()
        self._pubsub.unregister_event(self._core_pid, name)

    def send_event(self, name: str, token: Ref, message: Any) -> None:
        """Publish to every subscriber of event ``name`` (anyone holding its token may)."""
        self._check_running()
        self._pubsub.send_event(self._core_pid, name, token, message, _NORMAL)

    def _stopping(self) -> bool:
        return self._state == _STOPPING

    def _check_running(self) -> None:
        # Ergo's rule: what asks the node to act or to describe its processes fails once it
        # has stopped; its identity, env, loggers and stop/wait still answer
        if self._state == _STOPPED:
            raise NodeTerminated(f"node {self._name.value} is stopped"
                                 + (f": {self._ended_why}" if self._ended_why else ""))

    def stop(self) -> None:
        """Stop gracefully: every process gets an untrappable exit ``shutdown`` from its parent.

        Called from outside any handler it returns once the node has stopped; called from a
        handler (or on a running asyncio loop) it returns at once and the stop proceeds
        when the handler returns (``wait`` / ``wait_async`` for the end).
        """
        if self._state == _STOPPED:
            return
        self._check_thread("stop")
        if self._loop_gone():
            return
        self._begin_stop()
        if self._current is None and self._state != _STOPPED:
            try:
                self._scheduler.run_until(self._stopped, None)
            except NotAllowed:
                pass  # a running event loop: the stop goes on, await node.wait_async() for its end

    def _begin_stop(self) -> None:
        if self._state != _RUNNING:
            return
        self._state = _STOPPING
        self._log.info("node %s is stopping", self._name.value)
        # applications first, the last started first (SPEC §5), then every process left
        if not self._apps.stop_all(self._stop_processes):
            self._stop_processes()

    def _stop_processes(self) -> None:
        if self._state != _STOPPING:
            return
        processes = self._processes
        for p in list(processes.values()):
            parent = processes.get(p._parent.id)
            if parent is not None and parent._pid == p._parent and parent._stops_child(p._pid):
                continue  # its supervisor stops it, in order, before it stops itself
            self._stop_process(p, p._parent)
        if not self._processes:
            self._finish_stop()

    def _stop_process(self, p: Process, from_: PID) -> None:
        """Tell ``p`` to stop (an exit ``shutdown`` from ``from_``, its parent, so untrappable),
        as the node's stop does for every process and a supervisor for each child."""
        if p._state >= TERMINATED:
            return
        if self._state != _RUNNING and p._state is WAIT_RESPONSE and not p._holds_stop():
            # suspended in a sleep (or on an asyncio future) while the node stops: only calls
            # in flight may hold a stop, so it is stopped where it waits (its finally blocks run)
            p._terminate(p._shutdown_reason())
            return
        try:
            self._route_exit(from_, p._pid, TerminateReasonShutdown)
        except (MailboxFull, ProcessUnknown, ProcessTerminated):
            p._kill()  # it could not be told: no choice left

    def _interrupted(self, exc: BaseException) -> None:
        """A handler (or terminate callback) raised KeyboardInterrupt or SystemExit: begin a
        graceful stop and raise it again out of the backend's loop, as asyncio does with
        these two.  Deferred to a soon-call of its own, so that it leaves no bookkeeping
        half done and is raised from a clean stack; a later ``stop()`` or ``wait()``
        finishes the stop."""
        self._scheduler.call_soon(self._raise_interrupt, exc)

    def _raise_interrupt(self, exc: BaseException) -> None:
        self._begin_stop()
        raise exc

    def stop_force(self) -> None:
        """Kill every process without waiting for them, then stop; connections to other
        nodes are reset, not closed, so the peers see them lost (``NoConnection``)."""
        if self._state == _STOPPED:
            return
        self._check_thread("stop_force")
        if self._loop_gone():
            return
        self._state = _STOPPING
        self._log.info("node %s is stopping (forced)", self._name.value)
        if self._network is not None:
            self._network.stop(graceful=False)
        self._apps.kill_all()
        for p in list(self._processes.values()):
            p._kill()
        if self._state != _STOPPED:
            self._finish_stop()

    def _vanish(self) -> None:
        """The backend's word that this node is gone at once, as a process killed with
        ``kill -9`` or on a host that crashed: nothing of it runs any more (no exit
        signals, no frames, no log line; its scheduler runs nothing more); it only reads
        as stopped from now on (a trace sees it stop)."""
        if self._state == _STOPPED:
            return
        self._state = _STOPPED
        if self._tracer is not None:
            self._tracer.node_stopped(self)
        self._stopped.set_result(True)

    def _finish_stop(self) -> None:
        if self._state == _STOPPED:
            return
        # calls from outside any process fail now rather than at their timeout: nothing
        # can answer them any more
        pending = list(self._core_pending.values())
        self._core_pending.clear()
        for entry in pending:
            fut = entry[0]
            self._forget_call(entry)
            fut.set_exception(NodeTerminated(f"node {self._name.value} stopped before the reply came"))
        self._timeouts.cancel()
        timers, self._timers = self._timers, {}
        for handle in timers.values():
            handle.cancel()
        self._apps.abandon()
        if self._network is not None:
            self._network.stop()
        self._log.info("node %s stopped", self._name.value)
        self._state = _STOPPED
        if self._tracer is not None:
            self._tracer.node_stopped(self)
        self._logging.close()
        for fn in self._on_stopped:
            fn()
        self._stopped.set_result(True)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the node stops (True), or ``timeout`` seconds pass (False)."""
        if timeout is not None:
            timeout = check_delay(timeout, "a wait's timeout")
        if self._state == _STOPPED or self._loop_gone():
            return True
        return self._block(self._stopped, timeout, "wait")

    async def wait_async(self) -> None:
        """Await the node's stop from code running on the backend's event loop."""
        await self._scheduler.wait_for(self._stopped)

    async def stop_async(self) -> None:
        """Stop gracefully and await the end, from code running on the node's event loop."""
        self.stop()  # on a running loop this only begins the stop
        await self.wait_async()

    async def __aenter__(self) -> Node:
        """``async with net.start_node(...) as node:`` enters once the node has started: a
        networked node is registered with its host's registrar by then (``start_node`` on a
        running loop cannot wait for it), so peers resolve it from the block's first line.
        A refusal (``Taken``, ``NoConnection``) is raised here, the node stopped, as
        ``start_node`` raises it in a plain script."""
        net = self._network
        fut = net.registration if net is not None else None
        if fut is not None:
            try:
                await self._scheduler.wait_for(fut)  # at once when it is done; raises its error
            except BaseException:  # refused, or the block was cancelled while it waited
                if self.is_alive():
                    self.stop_force()
                await self.wait_async()
                raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """``async with net.start_node(...) as node:`` stops the node gracefully at the end."""
        await self.stop_async()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """``with sim.start_node(...) as node:`` (or a plain script's node) stops it at the end."""
        self.stop()

    def __repr__(self) -> str:
        return f"<Node {self._name.value} {self._state}>"


#: what code on a running event loop awaits instead of a blocking call (see Node._block)
_AWAIT_INSTEAD = {
    "call": "await node.call_async(...) instead",
    "wait_for": "await the future itself instead (a runtime Future is awaitable)",
    "wait": "await node.wait_async() instead",
}


def _addressed(item: tuple[Any, ...], to: Any, p: Runner) -> tuple[Any, ...]:
    """A message or call sent by name or by alias carries that name (an Atom) or alias as
    a fifth field, for split handling (Ergo's ``MailboxMessage.Target``).  A send to a PID
    keeps the four-field item: the hot path pays nothing for it."""
    t = type(to)
    if t is PID:
        return item
    if t is Alias:
        return (*item, to)
    return (*item, p._name)  # type: ignore[attr-defined]  # str, Atom or ProcessID: the name the Process ``p`` holds


def _name(name: object) -> Atom:
    """A name to register: a non-empty str of at most 255 bytes (``AtomTooLong`` beyond)."""
    if not isinstance(name, str) or not name:
        raise Incorrect(f"a process name is a non-empty str, not {show(name)}")
    return Atom(name)


def _lookup_name(name: object) -> str:
    """A name to look up: any str.  One that no process can have (empty, too long) is
    simply not found, as every unknown name is."""
    if not isinstance(name, str):
        raise Incorrect(f"a process name is a str, not {type(name).__name__}")
    return name


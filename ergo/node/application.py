"""The node's applications (Ergo's node/application.go): load, start, stop, and what a
member's termination does to its application.

Each loaded application is an :class:`_App` with a state (loaded, running, stopping), a
group of live member PIDs, and a future that completes when its last member has gone.
The node calls :meth:`Applications.member_terminated` from its process bookkeeping for
every process that belongs to an application (members and whatever they spawned), so a
mode acts at once, on either scheduler.  Nothing here blocks except ``stop`` outside any
handler, which runs the node's clock until the members have gone or the timeout passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..gen.application import (
    Application,
    ApplicationDependencies,
    ApplicationInfo,
    ApplicationMemberSpec,
    ApplicationMode,
    ApplicationOptions,
    ApplicationSpec,
    ApplicationStatus,
)
from ..gen.errors import (
    ApplicationDepends,
    ApplicationEmpty,
    ApplicationLoadPanic,
    ApplicationName,
    ApplicationRunning,
    ApplicationState,
    ApplicationStopping,
    ApplicationUnknown,
    ErgoError,
    Incorrect,
    NotAllowed,
    Taken,
    TerminateReasonKill,
    TerminateReasonNormal,
    TerminateReasonShutdown,
)
from ..gen.ids import PID, Atom
from ..gen.types import LogLevel
from ..scheduler import Future, TimerHandle, check_delay
from ..wire._brief import brief_error
from .env import _env_name
from .runner import show

if TYPE_CHECKING:
    from .node import Node
    from .process import Process

__all__ = ["Applications", "DEFAULT_STOP_TIMEOUT"]

LOADED, RUNNING, STOPPING = ApplicationStatus.LOADED, ApplicationStatus.RUNNING, ApplicationStatus.STOPPING

#: seconds ``application_stop`` (and the node's stop, per application) waits for the
#: members to terminate, as Ergo's ``ApplicationStop``
DEFAULT_STOP_TIMEOUT = 5.0


class _App:
    """One loaded application."""

    __slots__ = ("behavior", "env", "group", "log_level", "mode", "parent", "reason", "requested", "spec",
                 "started", "state", "stopped")

    def __init__(self, behavior: Application, spec: ApplicationSpec) -> None:
        self.behavior = behavior
        self.spec = spec
        self.state = LOADED
        self.mode: ApplicationMode = spec.mode  # type: ignore[assignment]  # parsed at load
        self.group: dict[PID, None] = {}  # live members, in spawn order
        self.env: dict[str, Any] = {}
        self.log_level = LogLevel.DEFAULT
        self.started = 0.0
        self.parent: Atom | None = None
        self.reason: BaseException | None = None
        #: the stop was asked for (application_stop, the node's stop): a permanent
        #: application then leaves the node alone
        self.requested = False
        self.stopped: Future[None] = Future()

    @property
    def name(self) -> Atom:
        return self.spec.name  # type: ignore[return-value]  # made an Atom at load


class Applications:
    """The applications of one node; the node's ``application_*`` methods call these."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._apps: dict[Atom, _App] = {}
        #: names of the running applications, in the order they started
        self._order: list[Atom] = []
        #: the node's stop is stopping applications (see stop_all)
        self.stopping = False
        self._stop_timer: TimerHandle | None = None
        self._then: Callable[[], None] | None = None
        #: the application the node's stop waits for now
        self._target: _App | None = None

    def _get(self, name: object) -> _App:
        if not isinstance(name, str):
            raise Incorrect(f"an application is named by a str, not {show(name)}")
        app: _App | None = self._apps.get(name)  # type: ignore[call-overload]  # Atom keys, looked up by any str
        if app is None:
            raise ApplicationUnknown(f"no application {str.__str__(name)!r} is loaded on {self._node._name}")
        return app

    # -- load and unload ---------------------------------------------------------------

    def load(self, behavior: Application, args: tuple[Any, ...]) -> Atom:
        node = self._node
        if not isinstance(behavior, Application):
            raise Incorrect(f"application_load takes an Application (a subclass's instance), not {show(behavior)}")
        try:
            spec = behavior.load(node, *args)
        except ErgoError:
            raise  # the behaviour's own refusal, as Ergo returns Load's error
        except Exception as e:
            node._runtime_log.panic("application %s: load raised %r", type(behavior).__qualname__, e, exc_info=e)
            # the text as every process writes it (a set in the error's args is written in
            # order, not in PYTHONHASHSEED's), bounded, and made even if e's __str__ fails:
            # it may cross the network, as the answer to a remote application start
            raise ApplicationLoadPanic(f"{type(behavior).__qualname__}.load raised {brief_error(e, 300)}") from e
        if not isinstance(spec, ApplicationSpec):
            raise Incorrect(f"{type(behavior).__qualname__}.load returned {show(spec)}, not an ApplicationSpec")
        spec = _checked(spec)
        if not spec.name:
            raise ApplicationName(f"{type(behavior).__qualname__}.load returned a spec without a name")
        name = Atom(spec.name)
        if not spec.group:
            raise ApplicationEmpty(f"application {name.value} has no members (ApplicationSpec.group)")
        if spec.depends.network and node._network is None:
            raise ApplicationDepends(f"application {name.value} depends on the network and node "
                                     f"{node._name.value} has none (NodeOptions.network)")
        if name in self._apps:
            raise Taken(f"an application named {name.value} is loaded already")
        self._apps[name] = _App(behavior, spec)
        return name

    def unload(self, name: str) -> None:
        app = self._get(name)
        if app.state is not LOADED:
            raise ApplicationRunning(f"application {app.name.value} is {app.state}: stop it first")
        del self._apps[app.name]

    # -- start -----------------------------------------------------------------------

    def start(self, name: str, mode: ApplicationMode | None, options: ApplicationOptions | None,
              starting: tuple[Atom, ...] = ()) -> None:
        """Start ``name`` (its dependencies first, in the mode of each one's spec), in
        ``mode`` or its spec's.  ``starting`` is the chain of dependents being started:
        a dependency on one of them is a cycle."""
        node = self._node
        if options is None:
            options = ApplicationOptions()
        elif not isinstance(options, ApplicationOptions):
            raise Incorrect(f"options are ApplicationOptions or None, not {show(options)}")
        app = self._get(name)
        node._check_running()
        me = app.name.value
        chain = (*starting, app.name)
        for dep in app.spec.depends.applications:
            it = str.__str__(dep)
            if dep in chain:
                cycle = " -> ".join(a.value for a in chain)
                raise ApplicationDepends(f"application {me} depends on {it} and {it} on it: {cycle}")
            try:
                self.start(dep, None, options, chain)
            except ApplicationRunning:
                continue
            except ApplicationUnknown:
                node._runtime_log.error("unable to start %s: unknown dependent application %s", me, it)
                raise ApplicationDepends(f"application {me} depends on {it}, which is not loaded") from None
            except ApplicationDepends:
                raise
            except Exception as e:
                node._runtime_log.error("unable to start %s: start dependent application %s failed: %s", me, it, e)
                why = f"application {me}: its dependency {it} failed to start: {brief_error(e, 300)}"
                raise ApplicationDepends(why) from e
        # in the spec's mode unless told (Ergo's ApplicationStart): not the last start's
        self._start(app, app.spec.mode if mode is None else mode, options)  # type: ignore[arg-type]

    def _start(self, app: _App, mode: ApplicationMode, options: ApplicationOptions) -> None:
        node = self._node
        if app.state is RUNNING:
            raise ApplicationRunning(f"application {app.name.value} is running already")
        if app.state is not LOADED:
            raise ApplicationState(f"application {app.name.value} is {app.state}")
        env = {_env_name(k): v for k, v in app.spec.env.items()}
        env.update((_env_name(k), v) for k, v in options.env.items())
        level = options.log_level
        if level is LogLevel.DEFAULT:
            level = app.spec.log_level
        app.env, app.log_level = env, level  # type: ignore[assignment]
        app.state = RUNNING  # before the spawns: a member's init may ask for the info
        app.reason = None
        app.requested = False
        app.mode = mode
        app.stopped = Future()
        try:
            for member in app.spec.group:
                register = Atom(member.name) if member.name else None
                pid = node._spawn(member.factory, member.options, member.args, None, register, app)
                app.group[pid] = None
        except BaseException:
            # Ergo's rule: a member that fails to start takes the ones started before it down
            spawned, app.group = list(app.group), {}
            app.state = LOADED
            for pid in spawned:
                p = node._processes.get(pid.id)
                if p is not None:
                    p._kill()
            raise
        app.started = node._scheduler.now()
        app.parent = node._name
        self._order.append(app.name)
        node._runtime_log.info("application %s (%s) started", app.name.value, mode)
        try:
            app.behavior.start(mode)
        except Exception as e:  # the application runs all the same, as in Ergo
            node._runtime_log.panic("application %s: start raised %r", app.name.value, e, exc_info=e)

    # -- stop ------------------------------------------------------------------------

    def stop(self, name: str, force: bool, timeout: float) -> None:
        node = self._node
        timeout = check_delay(timeout, "an application stop's timeout")
        app = self._get(name)
        if app.state is LOADED:
            return  # stopped already, as Ergo
        if app.state is STOPPING and not force:
            raise ApplicationStopping(f"application {app.name.value} is stopping already")
        self._begin_stop(app, force)
        if force or app.state is LOADED or node._current is not None:
            return  # from a handler: the stop goes on once it returns (its application_info says how far)
        try:
            done = node._scheduler.run_until(app.stopped, timeout)
        except NotAllowed:
            return  # on a running event loop: nothing may block it
        if not done:
            raise ApplicationStopping(f"application {app.name.value}: {len(app.group)} member(s) still "
                                      f"running after {timeout} s")

    def _begin_stop(self, app: _App, force: bool) -> None:
        node = self._node
        app.state = STOPPING
        app.requested = True
        app.reason = TerminateReasonKill if force else TerminateReasonShutdown
        for pid in list(app.group):
            if force:
                p = node._processes.get(pid.id)
                if p is not None:
                    p._kill()
                else:
                    self._member_gone(app, pid, TerminateReasonKill)
            else:
                self._shutdown(pid)
        if not app.group and app.state is STOPPING:
            self._finish(app)

    def _shutdown(self, pid: PID) -> None:
        """A member's shutdown: an exit from its parent, the node's core (untrappable)."""
        node = self._node
        try:
            node._route_exit(node._core_pid, pid, TerminateReasonShutdown)
        except ErgoError:
            pass  # terminating already: its termination will be reported all the same

    def stop_all(self, then: Callable[[], None]) -> bool:
        """The node's graceful stop: stop the running applications one by one, the last
        started first, each given ``DEFAULT_STOP_TIMEOUT`` seconds, then call ``then``.
        Returns False (and does not call ``then``) when none runs."""
        if not any(self._apps[n].state is RUNNING for n in self._order):
            return False
        self.stopping = True
        self._then = then
        self._stop_next()
        return True

    def _stop_next(self) -> None:
        node = self._node
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None
        for name in reversed(list(self._order)):  # a copy: an application that stops at once leaves it
            app = self._apps[name]
            if app.state is not RUNNING:
                continue
            node._runtime_log.debug("stopping application %s", name.value)
            self._begin_stop(app, False)
            if app.state is LOADED:
                continue
            self._target = app
            self._stop_timer = node._scheduler.call_later(DEFAULT_STOP_TIMEOUT, self._stop_late, app)
            return  # the next one once this one has stopped (_finish) or its time is up
        self.stopping = False
        self._target = None
        then, self._then = self._then, None
        if then is not None:
            then()

    def kill_all(self) -> None:
        """The node's forced stop is about to kill every process: each running application
        then stops with reason ``kill``, as ``application_stop_force`` does, and a
        permanent one does not ask the node to stop again."""
        for app in self._apps.values():
            if app.state is not LOADED:
                app.state = STOPPING
                app.requested = True
                app.reason = TerminateReasonKill

    def abandon(self) -> None:
        """The node has stopped: no application stop is waited for any more."""
        self.stopping = False
        self._target = self._then = None
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None

    def _stop_late(self, app: _App) -> None:
        self._stop_timer = None
        if self.stopping:
            self._node._runtime_log.warning("application %s is still stopping after %s s: the node's stop goes on",
                                    app.name.value, DEFAULT_STOP_TIMEOUT)
            self._stop_next()

    # -- members ---------------------------------------------------------------------

    def member_terminated(self, p: Process, reason: BaseException) -> None:
        """A process of an application terminated (the node's bookkeeping calls this);
        only a member (not what it spawned) counts."""
        app = self._apps.get(p._application)  # type: ignore[arg-type]  # not None: the node calls only then
        if app is not None and p._pid in app.group:
            self._member_gone(app, p._pid, reason)

    def _member_gone(self, app: _App, pid: PID, reason: BaseException) -> None:
        node = self._node
        del app.group[pid]
        if app.state is RUNNING:
            mode = app.mode
            if mode is ApplicationMode.PERMANENT or (
                    mode is ApplicationMode.TRANSIENT and reason != TerminateReasonNormal
                    and reason != TerminateReasonShutdown):
                node._runtime_log.info("application %s (%s) will be stopped due to termination of %s with reason: %s",
                               app.name.value, mode, pid, reason)
                app.state = STOPPING
                app.reason = reason
                for other in list(app.group):
                    self._shutdown(other)
        if not app.group:
            self._finish(app)

    def _finish(self, app: _App) -> None:
        """The last member has gone: the application is loaded again."""
        node = self._node
        if app.state is LOADED:
            return
        reason = app.reason if app.reason is not None else TerminateReasonNormal
        mode, requested = app.mode, app.requested
        app.state = LOADED
        app.started = 0.0
        app.parent = None
        if app.name in self._order:
            self._order.remove(app.name)
        node._runtime_log.info("application %s (%s) stopped with reason %s", app.name.value, mode, reason)
        try:
            app.behavior.terminate(reason)
        except Exception as e:
            node._runtime_log.panic("application %s: terminate raised %r", app.name.value, e, exc_info=e)
        app.stopped.set_result(None)
        if mode is ApplicationMode.PERMANENT and not requested and node.is_alive() and not node._stopping():
            # a permanent application is one the node cannot run without (OTP's rule)
            node._runtime_log.error("permanent application %s stopped (%s): the node stops", app.name.value, reason)
            node._scheduler.call_soon(node._begin_stop)
        if self.stopping and app is self._target:
            self._stop_next()

    # -- what the user reads -----------------------------------------------------------

    def info(self, name: str) -> ApplicationInfo:
        app = self._get(name)
        running = app.state is not LOADED
        return ApplicationInfo(
            name=app.name,
            weight=app.spec.weight,
            description=app.spec.description,
            version=app.spec.version,
            env=dict(app.spec.env),
            depends=app.spec.depends,
            mode=app.mode,
            state=app.state,
            parent=app.parent,
            uptime=self._node._scheduler.now() - app.started if running else 0.0,
            group=tuple(app.group),
        )

    def process_list(self, name: str, limit: int) -> list[PID]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise Incorrect(f"limit is an int >= 0 (0: all), not {show(limit)}")
        app = self._get(name)
        if app.state is not RUNNING:
            raise ApplicationState(f"application {app.name.value} is {app.state}, not running")
        pids = list(app.group)
        members = set(pids)
        pids.extend(p._pid for p in self._node._processes.values()
                    if p._application == app.name and p._pid not in members)
        return pids[:limit] if limit else pids

    def names(self, running: bool = False) -> list[Atom]:
        if running:
            return list(self._order)
        return list(self._apps)


def _checked(spec: ApplicationSpec) -> ApplicationSpec:
    """The spec with its fields checked and normalised (``Incorrect`` for a wrong one)."""
    if not isinstance(spec.name, str):
        raise Incorrect(f"ApplicationSpec.name is a str, not {show(spec.name)}")
    if not isinstance(spec.depends, ApplicationDependencies):
        raise Incorrect(f"ApplicationSpec.depends is ApplicationDependencies, not {show(spec.depends)}")
    group = spec.group
    if isinstance(group, (str, bytes)) or not isinstance(group, (list, tuple)):
        raise Incorrect(f"ApplicationSpec.group is a list of ApplicationMemberSpec, not {show(group)}")
    for m in group:
        if not isinstance(m, ApplicationMemberSpec):
            raise Incorrect(f"ApplicationSpec.group holds ApplicationMemberSpec, not {show(m)}")
    for field_ in ("description", "version"):
        if not isinstance(getattr(spec, field_), str):
            raise Incorrect(f"ApplicationSpec.{field_} is a str, not {show(getattr(spec, field_))}")
    if isinstance(spec.weight, bool) or not isinstance(spec.weight, int):
        raise Incorrect(f"ApplicationSpec.weight is an int, not {show(spec.weight)}")
    if not isinstance(spec.env, dict) and not hasattr(spec.env, "items"):
        raise Incorrect(f"ApplicationSpec.env is a mapping, not {show(spec.env)}")
    return ApplicationSpec(
        name=Atom(spec.name) if spec.name else "",
        group=tuple(group),
        description=spec.description,
        version=spec.version,
        depends=spec.depends,
        env=dict(spec.env),
        mode=ApplicationMode.parse(spec.mode),
        weight=spec.weight,
        log_level=LogLevel.parse(spec.log_level),
    )

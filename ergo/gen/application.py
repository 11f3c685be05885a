"""Applications as a user declares them (Ergo's gen/application.go): the behaviour, its spec,
the options of a start and the info record the node returns.

An application is a named group of processes started and stopped together, with
dependencies on other applications.  ``load`` returns its :class:`ApplicationSpec`; the
node (ergo/node/application.py) spawns its members at ``application_start`` and stops
them at ``application_stop`` or when its mode says a member's termination ends them all.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .ids import PID, Atom
from .options import ProcessOptions
from .types import LogLevel

if TYPE_CHECKING:
    from ..node.node import Node

__all__ = [
    "Application",
    "ApplicationDependencies",
    "ApplicationInfo",
    "ApplicationMemberSpec",
    "ApplicationMode",
    "ApplicationOptions",
    "ApplicationSpec",
    "ApplicationStatus",
]


class ApplicationMode(enum.IntEnum):
    """What a member's termination does to a running application (Ergo's numbers).

    ``TEMPORARY``: nothing (the application stops once its last member is gone).
    ``TRANSIENT``: a member's abnormal termination (not ``normal``, not ``shutdown``)
    stops every member.  ``PERMANENT``: any member's termination stops every member, and
    then the node (as OTP; Ergo 3.1 leaves the node running): see docs/applications.md.
    """

    TEMPORARY = 1
    TRANSIENT = 2
    PERMANENT = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: ApplicationMode | str | int) -> ApplicationMode:
        """A mode from itself, its number (1-3) or its name (``"permanent"``); ``Incorrect`` otherwise."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 3:
            return cls(value)
        from .errors import Incorrect

        raise Incorrect(f"an application mode is ApplicationMode.TEMPORARY, TRANSIENT or PERMANENT "
                        f"(1, 2, 3), not {value!r}"[:200])


class ApplicationStatus(enum.IntEnum):
    """Ergo's ``gen.ApplicationState``: loaded (not running), running, stopping.

    Named *Status* here because ``ApplicationState`` is Ergo's error
    ``ErrApplicationState`` (a start or stop in the wrong state), which keeps its name.
    """

    LOADED = 1
    RUNNING = 2
    STOPPING = 3

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class ApplicationDependencies:
    """What an application needs before it starts: other applications (started first, by
    name), and the network (``NodeOptions.network``; checked at load, as Ergo)."""

    applications: Sequence[str] = ()
    network: bool = False

    def __post_init__(self) -> None:
        from .errors import Incorrect

        apps = self.applications
        if isinstance(apps, str) or not isinstance(apps, Sequence) or not all(
                isinstance(a, str) and a for a in apps):
            raise Incorrect(f"ApplicationDependencies.applications is a sequence of names, not {apps!r}"[:200])
        object.__setattr__(self, "applications", tuple(Atom(a) for a in apps))
        if not isinstance(self.network, bool):
            raise Incorrect(f"ApplicationDependencies.network is a bool, not {self.network!r}"[:200])


@dataclass(frozen=True)
class ApplicationMemberSpec:
    """One member of an application: spawned by the node (its parent and leader are the
    node's core) as ``factory`` with ``args``, ``options``, and registered as ``name`` if
    one is given.  A supervisor is a member like any other."""

    factory: Callable[[], Any]
    options: ProcessOptions | None = None
    name: str | None = None
    args: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        from .errors import Incorrect

        if not callable(self.factory):
            raise Incorrect(f"an application member's factory is a callable returning a process behaviour, "
                            f"not {type(self.factory).__name__}")
        if self.options is not None and not isinstance(self.options, ProcessOptions):
            raise Incorrect(f"an application member's options are ProcessOptions or None, "
                            f"not {type(self.options).__name__}")
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise Incorrect(f"an application member's name is a non-empty str or None, not {self.name!r}"[:200])
        if not isinstance(self.args, (tuple, list)):
            raise Incorrect(f"an application member's args are a tuple, not {type(self.args).__name__}")
        object.__setattr__(self, "args", tuple(self.args))


@dataclass
class ApplicationSpec:
    """What ``Application.load`` returns (Ergo's ``gen.ApplicationSpec``).

    ``group`` holds the members, spawned in this order at the start.  ``mode`` is the
    mode ``application_start`` uses (the ``_temporary`` / ``_transient`` / ``_permanent``
    variants override it).  ``env`` is given to every member (over the node's env, under
    the start's ``ApplicationOptions.env`` and each member's own).  ``weight`` is
    informational (Ergo uses it for application routes).  ``log_level`` is the members'
    (``DEFAULT``: the node's).
    """

    name: str
    group: Sequence[ApplicationMemberSpec] = ()
    description: str = ""
    version: str = ""
    depends: ApplicationDependencies = field(default_factory=ApplicationDependencies)
    env: Mapping[str, Any] = field(default_factory=dict)
    mode: ApplicationMode | str | int = ApplicationMode.TEMPORARY
    weight: int = 0
    log_level: LogLevel | str = LogLevel.DEFAULT


@dataclass(frozen=True)
class ApplicationOptions:
    """Options of one start: ``env`` over the spec's env, and the members' log level
    (``DEFAULT``: the spec's)."""

    env: Mapping[str, Any] = field(default_factory=dict)
    log_level: LogLevel | str = LogLevel.DEFAULT

    def __post_init__(self) -> None:
        from .errors import Incorrect

        if not isinstance(self.env, Mapping):
            raise Incorrect(f"ApplicationOptions.env is a mapping, not {type(self.env).__name__}")
        object.__setattr__(self, "log_level", LogLevel.parse(self.log_level))


@dataclass(frozen=True)
class ApplicationInfo:
    """``node.application_info(name)`` (Ergo's ``gen.ApplicationInfo``).  ``group`` is the
    members alive now; ``uptime`` is in seconds (0 unless running); ``parent`` is the
    node that started it (None unless running)."""

    name: Atom
    weight: int
    description: str
    version: str
    env: Mapping[str, Any]
    depends: ApplicationDependencies
    mode: ApplicationMode
    state: ApplicationStatus
    parent: Atom | None
    uptime: float
    group: tuple[PID, ...]


class Application:
    """The application behaviour (Ergo's ``gen.ApplicationBehavior``): subclass it.

    ``load`` runs in ``node.application_load(app, *args)`` and returns the spec;
    ``start`` runs once every member has been spawned; ``terminate`` once the last member
    has terminated, with the reason the application stopped (``shutdown`` for
    ``application_stop``, ``kill`` for ``application_stop_force``, the member's reason when
    its mode stopped it, ``normal`` when its members all ended by themselves).  An exception
    in ``start`` or ``terminate`` is logged and changes nothing.
    """

    def load(self, node: Node, *args: Any) -> ApplicationSpec:
        """Return the application's spec (an exception here fails the load with ``ApplicationLoadPanic``)."""
        raise NotImplementedError(f"{type(self).__qualname__} must define load(node, *args) -> ApplicationSpec")

    def start(self, mode: ApplicationMode) -> None:
        """The application started in ``mode``: its members run."""

    def terminate(self, reason: BaseException) -> None:
        """The application stopped: its last member has terminated."""

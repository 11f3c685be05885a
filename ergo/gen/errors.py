"""Errors and termination reasons, with Ergo's names (``gen.ErrProcessUnknown`` is ``ProcessUnknown``).

Every error is an exception class; its default message is Ergo's text and callers add what
was wrong (``ProcessUnknown("no process <A3D4BDDA.0.1005> on node_local_11@localhost")``).
Errors compare equal by class and message, so a reason that crossed the network equals
the one that was sent.

Termination reasons are errors too, as in Ergo: ``TerminateReasonNormal``,
``TerminateReasonKill``, ``TerminateReasonPanic`` and ``TerminateReasonShutdown`` are
instances of :class:`TerminateReason`; a handler stops its process by raising one (or any
``TerminateReason``), and any other exception is a panic.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ERRORS",
    "ErgoError",
    "TerminateReason",
    "TerminateReasonKill",
    "TerminateReasonNormal",
    "TerminateReasonPanic",
    "TerminateReasonShutdown",
    "unwrap_reason",
]


class ErgoError(Exception):
    """Base class of every error the runtime raises or delivers."""

    default = "error"

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or (self.default,)))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.args == self.args

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.args))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.args))})"

    def __reduce__(self) -> tuple[type[ErgoError], tuple[Any, ...]]:  # args, for copy/deepcopy (not the wire)
        return (type(self), self.args)


# Ergo's gen/errors.go, in its order; the default message is Ergo's text.


class NameUnknown(ErgoError):
    """Ergo's ``ErrNameUnknown``."""

    default = "unknown name"


class ParentUnknown(ErgoError):
    """Ergo's ``ErrParentUnknown``."""

    default = "parent/leader is not set"


class NodeTerminated(ErgoError):
    """Ergo's ``ErrNodeTerminated``."""

    default = "node terminated"


class MailboxFull(ErgoError):
    """Ergo's ``ErrMailboxFull``."""

    default = "process mailbox is full"


class ProcessUnknown(ErgoError):
    """Ergo's ``ErrProcessUnknown``."""

    default = "unknown process"


class ProcessIncarnation(ErgoError):
    """Ergo's ``ErrProcessIncarnation``."""

    default = "process ID belongs to the previous incarnation"


class ProcessTerminated(ErgoError):
    """Ergo's ``ErrProcessTerminated``."""

    default = "process terminated"


class MetaUnknown(ErgoError):
    """Ergo's ``ErrMetaUnknown``."""

    default = "unknown meta process"


class MetaMailboxFull(ErgoError):
    """Ergo's ``ErrMetaMailboxFull``."""

    default = "meta process mailbox is full"


class ApplicationUnknown(ErgoError):
    """Ergo's ``ErrApplicationUnknown``."""

    default = "unknown application"


class TargetUnknown(ErgoError):
    """Ergo's ``ErrTargetUnknown``."""

    default = "unknown target"


class TargetExist(ErgoError):
    """Ergo's ``ErrTargetExist``."""

    default = "target is already exist"


class AliasUnknown(ErgoError):
    """Ergo's ``ErrAliasUnknown``."""

    default = "unknown alias"


class AliasOwner(ErgoError):
    """Ergo's ``ErrAliasOwner``."""

    default = "not an owner"


class EventUnknown(ErgoError):
    """Ergo's ``ErrEventUnknown``."""

    default = "unknown event"


class EventOwner(ErgoError):
    """Ergo's ``ErrEventOwner``."""

    default = "not an owner"


class Taken(ErgoError):
    """Ergo's ``ErrTaken``."""

    default = "resource is taken"


class AtomTooLong(ErgoError, ValueError):
    """Ergo's ``ErrAtomTooLong``."""

    default = "too long Atom (max: 255)"


class Timeout(ErgoError, TimeoutError):
    """Ergo's ``ErrTimeout``."""

    default = "timed out"


class Unsupported(ErgoError):
    """Ergo's ``ErrUnsupported``."""

    default = "not supported"


class Unknown(ErgoError):
    """Ergo's ``ErrUnknown``."""

    default = "unknown"


class NotAllowed(ErgoError):
    """Ergo's ``ErrNotAllowed``."""

    default = "not allowed"


class Incorrect(ErgoError, ValueError):
    """Ergo's ``ErrIncorrect``."""

    default = "incorrect value or argument"


class Malformed(ErgoError, ValueError):
    """Ergo's ``ErrMalformed``."""

    default = "malformed value"


class ResponseIgnored(ErgoError):
    """Ergo's ``ErrResponseIgnored``."""

    default = "response ignored"


class Unregistered(ErgoError):
    """Ergo's ``ErrUnregistered``."""

    default = "unregistered"


class TooLarge(ErgoError):
    """Ergo's ``ErrTooLarge``."""

    default = "too large"


class NetworkStopped(ErgoError):
    """Ergo's ``ErrNetworkStopped``."""

    default = "network stack is stopped"


class NoConnection(ErgoError):
    """Ergo's ``ErrNoConnection``."""

    default = "no connection"


class NoRoute(ErgoError):
    """Ergo's ``ErrNoRoute``."""

    default = "no route"


class Internal(ErgoError):
    """Ergo's ``ErrInternal``."""

    default = "internal error"


class TerminateReason(ErgoError):
    """Why a process terminated. Raise one from a handler to stop the process with it."""

    default = "normal"


class ExitSignal(TerminateReason):
    """What a non-trapping process dies of when an exit signal ends it: ``ExitSignal(source, cause)``.

    As Ergo's ``fmt.Errorf("%s: %w", ...)``, it names both parts and prints
    ``<A3D4BDDA.0.1005>: shutdown``: ``source`` is the PID that sent the signal
    (``send_exit``, and the parent's ``shutdown`` when the node stops), ``cause`` its
    reason.  Only ``terminate`` sees the wrapper: links, monitors and meta-processes of the
    dead process are told ``cause`` itself (Ergo unwraps it there, and Erlang's watchers see
    the reason too), so a chain of links reports the original reason all the way down.
    """

    default = "exit signal"

    @property
    def source(self) -> object:
        return self.args[0]

    @property
    def cause(self) -> BaseException:
        return self.args[1]  # type: ignore[no-any-return]  # made as (source, cause)

    def __str__(self) -> str:
        if len(self.args) != 2:
            return super().__str__()
        return f"{self.args[0]}: {self.args[1]}"


class LinkExit(ExitSignal):
    """The reason of a process that a link exit terminated: ``LinkExit(target, cause)``.

    As in Ergo, a non-trapping process dies of a link exit whatever the cause (``normal``
    included), and its ``terminate`` is told both: it prints ``<A3D4BDDA.0.1005>: normal``.
    ``target`` (also ``source``) is what the link pointed at, ``cause`` that target's reason.
    """

    default = "link exit"

    @property
    def target(self) -> object:
        return self.args[0]


def unwrap_reason(reason: BaseException) -> BaseException:
    """The reason watchers of a dead process are told: an :class:`ExitSignal`'s cause, or
    the reason itself (Ergo's one ``errors.Unwrap``, for the wrapper the runtime made)."""
    if isinstance(reason, ExitSignal) and len(reason.args) == 2:
        return reason.args[1]  # type: ignore[no-any-return]  # made as (source, cause)
    return reason


TerminateReasonNormal = TerminateReason("normal")
TerminateReasonKill = TerminateReason("kill")
TerminateReasonPanic = TerminateReason("panic")
TerminateReasonShutdown = TerminateReason("shutdown")

#: Every error class by name: what the codec may rebuild from the wire, and nothing else.
ERRORS: dict[str, type[ErgoError]] = {
    c.__name__: c
    for c in [ErgoError, TerminateReason, ExitSignal, LinkExit,
              *(v for v in list(globals().values()) if isinstance(v, type))]
    if issubclass(c, ErgoError)
}

# every error class, written out (not computed from ERRORS) so that type checkers see
# ``from ergo import Timeout``; tests/test_typing.py checks it lists all of ERRORS
__all__ += [
    "ExitSignal", "LinkExit", "NameUnknown", "ParentUnknown", "NodeTerminated", "MailboxFull",
    "ProcessUnknown", "ProcessIncarnation", "ProcessTerminated", "MetaUnknown", "MetaMailboxFull",
    "ApplicationUnknown", "TargetUnknown", "TargetExist", "AliasUnknown", "AliasOwner", "EventUnknown",
    "EventOwner", "Taken", "AtomTooLong", "Timeout", "Unsupported", "Unknown", "NotAllowed", "Incorrect",
    "Malformed", "ResponseIgnored", "Unregistered", "TooLarge", "NetworkStopped", "NoConnection", "NoRoute",
    "Internal",
]


# applications (Ergo's gen/errors.go) and pools (Ergo's act/errors.go)


class ApplicationDepends(ErgoError):
    """Ergo's ``ErrApplicationDepends``: a dependency is unknown or failed to start."""

    default = "dependency fail"


class ApplicationState(ErgoError):
    """Ergo's ``ErrApplicationState``."""

    default = "application is in running/stopping state"


class ApplicationLoadPanic(ErgoError):
    """Ergo's ``ErrApplicationLoadPanic``: the behaviour's ``load`` raised."""

    default = "panic in application loading"


class ApplicationEmpty(ErgoError):
    """Ergo's ``ErrApplicationEmpty``."""

    default = "application has no items"


class ApplicationName(ErgoError):
    """Ergo's ``ErrApplicationName``."""

    default = "application has no name"


class ApplicationStopping(ErgoError):
    """Ergo's ``ErrApplicationStopping``."""

    default = "application stopping is in progress"


class ApplicationRunning(ErgoError):
    """Ergo's ``ErrApplicationRunning``."""

    default = "application is still running"


class PoolEmpty(ErgoError):
    """Ergo's ``act.ErrPoolEmpty``."""

    default = "no worker process in the pool"


_APPLICATION_ERRORS: list[type[ErgoError]] = [
    ApplicationDepends, ApplicationState, ApplicationLoadPanic, ApplicationEmpty, ApplicationName,
    ApplicationStopping, ApplicationRunning, PoolEmpty,
]
ERRORS.update((c.__name__, c) for c in _APPLICATION_ERRORS)
__all__ += [
    "ApplicationDepends", "ApplicationState", "ApplicationLoadPanic", "ApplicationEmpty", "ApplicationName",
    "ApplicationStopping", "ApplicationRunning", "PoolEmpty",
]


# supervisors (Ergo's act/errors.go: ``act.ErrSupervisorRestartsExceeded`` is ``SupervisorRestartsExceeded``)


class SupervisorStrategyActive(ErgoError):
    """Ergo's ``ErrSupervisorStrategyActive``: the supervisor is restarting or stopping children."""

    default = "supervisor strategy is active"


class SupervisorChildUnknown(ErgoError):
    """Ergo's ``ErrSupervisorChildUnknown``."""

    default = "unknown child"


class SupervisorChildRunning(ErgoError):
    """Ergo's ``ErrSupervisorChildRunning``."""

    default = "child process is already running"


class SupervisorChildDisabled(ErgoError):
    """Ergo's ``ErrSupervisorChildDisabled``."""

    default = "child is disabled"


class SupervisorRestartsExceeded(ErgoError):
    """Ergo's ``ErrSupervisorRestartsExceeded``: what a supervisor terminates with when its
    children needed more restarts than its intensity allows within its period."""

    default = "restart intensity is exceeded"


class SupervisorChildDuplicate(ErgoError):
    """Ergo's ``ErrSupervisorChildDuplicate``."""

    default = "duplicate child spec Name"


_SUPERVISOR_ERRORS = [SupervisorStrategyActive, SupervisorChildUnknown, SupervisorChildRunning,
                      SupervisorChildDisabled, SupervisorRestartsExceeded, SupervisorChildDuplicate]
ERRORS.update((c.__name__, c) for c in _SUPERVISOR_ERRORS)
__all__ += [
    "SupervisorStrategyActive", "SupervisorChildUnknown", "SupervisorChildRunning", "SupervisorChildDisabled",
    "SupervisorRestartsExceeded", "SupervisorChildDuplicate",
]

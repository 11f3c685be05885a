"""Actor: the general-purpose behaviour (Ergo's act.Actor).

Subclass it and override the callbacks you need.  Any handler may be ``async def``: inside
it, ``await self.call(...)`` and ``await self.sleep(...)`` suspend this process only.
To stop, raise a ``TerminateReason`` (``raise TerminateReasonNormal``); any other exception
is a panic: the process terminates with reason ``panic`` and the traceback is logged.
"""

from __future__ import annotations

from collections.abc import Callable
from types import CoroutineType
from typing import Any

from ..gen.errors import ExitSignal, LinkExit, NoConnection, NotAllowed, Unsupported
from ..gen.ids import PID, Alias, Atom, Ref
from ..gen.messages import (
    MessageEvent,
    MessageExitAlias,
    MessageExitEvent,
    MessageExitNode,
    MessageExitPID,
    MessageExitProcessID,
    MessageLog,
)
from ..gen.types import NoReply
from ..node.process import Process
from ..node.runner import EVENT, EXIT, INSPECT, LOG, MSG, REQUEST

__all__ = ["Actor"]


class Actor(Process):
    """Base class of actors.  ``init`` runs inside ``spawn``; handlers run one message at a time."""

    #: split handling (Ergo's ``SetSplitHandle``); a class default, set per process
    _split = False

    @property
    def split_handle(self) -> bool:
        """True sends messages and calls that arrived by registered name or by alias to
        ``handle_message_name`` / ``handle_message_alias`` / ``handle_call_name`` /
        ``handle_call_alias`` instead of ``handle_message`` / ``handle_call``."""
        return self._split

    @split_handle.setter
    def split_handle(self, value: bool) -> None:
        self._split = bool(value)

    def init(self, *args: Any) -> Any:
        """Called once with the spawn's ``args``, before ``spawn`` returns. Must not be async.
        What it returns is ignored (typed ``Any`` so that a ``Supervisor``'s or ``Pool``'s
        ``init``, which returns its spec, overrides it cleanly)."""

    def handle_message(self, from_: PID, message: Any) -> Any:
        """A message from ``from_``; also trapped exits (``MessageExit*``) and downs (``MessageDown*``)."""
        self.log.warning("unhandled message from %s: %r", from_, message)

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        """A call: return the reply (``None`` included), or return ``NoReply`` and answer later
        with ``send_response(from_, ref, v)`` from this or any process."""
        self.log.warning("unhandled call from %s: %r", from_, request)
        self.send_response_error(from_, ref, Unsupported(f"{type(self).__qualname__} does not handle calls"))
        return NoReply

    def handle_message_name(self, name: Atom, from_: PID, message: Any) -> Any:
        """With ``split_handle``: a message sent to this process's registered ``name``."""
        self.log.warning("unhandled message to the name %s from %s: %r", name, from_, message)

    def handle_message_alias(self, alias: Alias, from_: PID, message: Any) -> Any:
        """With ``split_handle``: a message sent to one of this process's aliases."""
        self.log.warning("unhandled message to the alias %s from %s: %r", alias, from_, message)

    def handle_call_name(self, name: Atom, from_: PID, ref: Ref, request: Any) -> Any:
        """With ``split_handle``: a call to this process's registered ``name``; replies as ``handle_call``."""
        self.log.warning("unhandled call to the name %s from %s: %r", name, from_, request)
        self.send_response_error(from_, ref, Unsupported(f"{type(self).__qualname__} does not handle calls by name"))
        return NoReply

    def handle_call_alias(self, alias: Alias, from_: PID, ref: Ref, request: Any) -> Any:
        """With ``split_handle``: a call to one of this process's aliases; replies as ``handle_call``."""
        self.log.warning("unhandled call to the alias %s from %s: %r", alias, from_, request)
        self.send_response_error(from_, ref, Unsupported(f"{type(self).__qualname__} does not handle calls by alias"))
        return NoReply

    def handle_event(self, message: MessageEvent) -> Any:
        """An event this process subscribed to."""
        self.log.warning("unhandled event %s: %r", message.event, message.message)

    def handle_inspect(self, from_: PID, *items: str) -> dict[str, str]:
        """What ``inspect`` reports about this process."""
        return {}

    def handle_log(self, message: MessageLog) -> Any:
        """A log message, when this process was added as a logger (``node.logger_add_process``)."""

    def terminate(self, reason: BaseException) -> None:
        """Called once when the process terminates (not when it is killed while busy)."""

    # -- the runtime's side ----------------------------------------------------------------

    def _init(self, args: tuple[Any, ...]) -> Any:
        return self.init(*args)

    def _on_terminate(self, reason: BaseException) -> None:
        self.terminate(reason)

    def _dispatch(self, item: tuple[Any, ...]) -> Any:
        kind = item[0]
        if kind == MSG:
            if self._split and len(item) == 5:
                target = item[4]
                if type(target) is Alias:
                    return self.handle_message_alias(target, item[1], item[3])
                return self.handle_message_name(target, item[1], item[3])
            return self.handle_message(item[1], item[3])
        if kind == REQUEST:
            if self._split and len(item) == 5:
                target = item[4]
                if type(target) is Alias:
                    result = self.handle_call_alias(target, item[1], item[2], item[3])
                else:
                    result = self.handle_call_name(target, item[1], item[2], item[3])
            else:
                result = self.handle_call(item[1], item[2], item[3])
            if type(result) is CoroutineType:
                return result  # async: _after replies with what it returns
            # Runner._reply inlined (once per call handled): NoReply answers later, and a
            # call already answered (send_response) or ended is not answered again
            calls = self._calls_in
            # (popped here, not only tested: the reply's routing then finds it gone, one
            # lookup of the ref less, whose hash is Python code)
            if result is not NoReply and calls and calls.pop(item[2], None) is not None:
                to, node = item[1], self._node
                net = node._network
                if net is not None and to.node != node._name:
                    # a remote caller: Node._route_response's remote branch (one Python frame
                    # less); its checks of ``to`` and the ref hold, the runtime queued them
                    net.response(self._pid, to, item[2], result, None, self)
                else:
                    node._route_response(to, item[2], result, None)
            return None
        if kind == EXIT:
            message = item[3]
            # an exit from the parent cannot be trapped (that is why shutdown always works)
            if self._trap_exit and not (item[1] == self._parent and type(message) is MessageExitPID):
                return self.handle_message(item[1], message)
            self._terminate(_exit_reason(message, item[2] is not None))
            return None
        if kind == EVENT:
            return self.handle_event(item[3])
        if kind == INSPECT:
            result = self.handle_inspect(item[1], *item[3])
            if type(result) is CoroutineType:  # type: ignore[comparison-overlap]  # an async override by mistake
                result.close()
                raise NotAllowed("handle_inspect must be a plain method")
            self._node._route_response(item[1], item[2], result, None)
            return None
        if kind == LOG:
            return self.handle_log(item[3])
        raise NotAllowed(f"unknown mailbox item kind {kind}")  # pragma: no cover

    def _after(self, item: tuple[Any, ...]) -> Callable[[Any], None] | None:
        if item[0] != REQUEST:
            return None
        to, ref = item[1], item[2]
        return lambda value: self._reply(to, ref, value)


_TARGET_OF_EXIT = {
    MessageExitPID: "pid",
    MessageExitProcessID: "process_id",
    MessageExitAlias: "alias",
    MessageExitEvent: "event",
}


#: makes an exception with its args, as ``cls(*args)`` does for an ErgoError given any
#: (ErgoError.__init__ only fills in a default message when there are none)
_new_error = BaseException.__new__


def _exit_reason(message: Any, from_link: bool) -> BaseException:
    """What a non-trapping process dies of: the signal's source and reason together, as
    Ergo's ``fmt.Errorf("%s: %w", exit.PID, exit.Reason)``; the source is the sender of a
    ``send_exit`` and the target of a link.  Its watchers are told the reason alone
    (``unwrap_reason``)."""
    if type(message) is MessageExitNode:
        return LinkExit(message.name, NoConnection())
    if not from_link:
        return _new_error(ExitSignal, message.pid, message.reason)
    return _new_error(LinkExit, getattr(message, _TARGET_OF_EXIT[type(message)]), message.reason)

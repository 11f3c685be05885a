"""A bounded description of a value that came off the wire, for error messages and logs.

A hostile peer chooses the values a decoder complains about, so an error message must never
be built with plain ``repr()``: a list nested a thousand deep makes ``repr`` raise
``RecursionError``, an int of more than 4300 digits makes it raise ``ValueError``, and a
megabyte string makes a megabyte message.  :func:`brief` never recurses, never converts a
big int to decimal, never calls a method of the value, and never returns more than about
``limit`` characters, so every decoder builds its messages with it and can only ever raise
its own error class.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["brief", "brief_error", "error_text", "printable", "stable_text"]

#: an object's address in a default repr (``<Foo object at 0x7f...>``): another process's
#: address means nothing, and it differs from run to run
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
#: containers nested deeper than this are written by their own repr
_STABLE_DEPTH = 16

_SMALL_INT_BITS = 64


def brief(value: Any, limit: int = 60) -> str:
    """A short, safe description of ``value``: its repr if that is small and cheap, else its shape."""
    kind = type(value)
    if value is None or kind is bool:
        return repr(value)
    if kind is int:
        if value.bit_length() <= _SMALL_INT_BITS:
            return repr(value)
        return f"<int of {value.bit_length()} bits>"
    if kind is float:
        return repr(value)
    if isinstance(value, (str, bytes, bytearray)):  # an Atom too: a slice of it is a plain str
        head = (str if isinstance(value, str) else bytes)(value[:limit])  # type: ignore[arg-type]
        if len(value) <= limit:
            return repr(head)
        return f"{repr(head)[:-1]}...{repr(head)[-1]} ({len(value)} long)"
    if kind in (list, tuple, dict, set, frozenset):
        return f"<{kind.__name__} of {len(value)} items>"
    # Anything else (an identifier, a record, an error, a subclass of a plain type) is named
    # by its class only: its own __repr__ is not ours to trust with hostile content.
    return f"<{kind.__qualname__}>"[: limit + 2]


def printable(text: str) -> str:
    """``text`` with its control and other unprintable characters escaped (``\\n``,
    ``\\x1b``): a peer's words (a REFUSE's text, an error's, a node name) end up in log
    lines and errors, where a newline would forge lines of its own."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _has_set(value: Any, depth: int = 0) -> bool:
    if isinstance(value, (set, frozenset)):
        return True
    if depth < _STABLE_DEPTH and type(value) in (list, tuple, dict):
        items = value.items() if type(value) is dict else value
        return any(_has_set(v, depth + 1) for v in items)
    return False


def _stable_repr(value: Any, depth: int = 0) -> str:
    """``repr(value)``, but a set's items in the order of their own text (a set iterates in
    an order ``PYTHONHASHSEED`` or its items' addresses decide)."""
    kind = type(value)
    if depth >= _STABLE_DEPTH:
        return repr(value)
    if isinstance(value, (set, frozenset)):
        items = sorted(_stable_repr(v, depth + 1) for v in value)
        if not items:
            return f"{kind.__name__}()"
        inner = "{" + ", ".join(items) + "}"
        return inner if kind is set else f"{kind.__name__}({inner})"
    if kind is list:
        return "[" + ", ".join(_stable_repr(v, depth + 1) for v in value) + "]"
    if kind is tuple:
        return "(" + ", ".join(_stable_repr(v, depth + 1) for v in value) + ("," if len(value) == 1 else "") + ")"
    if kind is dict:
        return "{" + ", ".join(f"{_stable_repr(k, depth + 1)}: {_stable_repr(v, depth + 1)}"
                               for k, v in value.items()) + "}"
    return repr(value)


def stable_text(value: Any) -> str:
    """``str(value)`` as every process writes it: a set's items in the order of their text,
    an object's address (`` at 0x...``) left out.  What a node sends as text of a value that
    cannot travel itself (an exit reason's argument) must not depend on the process."""
    text = _stable_repr(value) if _has_set(value) else str(value)
    return _ADDRESS.sub("", text)


def error_text(error: BaseException) -> str:
    """``str(error)`` as every process writes it (see :func:`stable_text`), for the
    exceptions whose text is made of their arguments (Python's own ``__str__``); a class's
    own ``__str__`` is kept, addresses left out."""
    method = type(error).__str__
    args = error.args
    if _has_set(args) and (method is BaseException.__str__ or method is KeyError.__str__):
        # (args hold a set, so they are not empty, and one argument is not a bare str:
        # Python writes the tuple of several, and the repr of one)
        text = _stable_repr(args if len(args) > 1 else args[0])
    else:
        text = str(error)
    return _ADDRESS.sub("", text)


def brief_error(error: BaseException, limit: int = 120) -> str:
    """``ClassName: text`` of an exception raised while decoding, bounded like :func:`brief`.

    The text of an exception from a registered class's constructor (or from Python itself)
    may hold a hostile value, and ``str()`` of it may itself fail; neither escapes here.
    The text is :func:`error_text`'s: the same in every process.
    """
    try:
        text = error_text(error)
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails still gets named
        text = "?"
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"{type(error).__name__}: {text}"

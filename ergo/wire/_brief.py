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

from typing import Any

__all__ = ["brief", "brief_error"]

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


def brief_error(error: BaseException, limit: int = 120) -> str:
    """``ClassName: text`` of an exception raised while decoding, bounded like :func:`brief`.

    The text of an exception from a registered class's constructor (or from Python itself)
    may hold a hostile value, and ``str()`` of it may itself fail; neither escapes here.
    """
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails still gets named
        text = "?"
    if len(text) > limit:
        text = text[:limit] + "..."
    return f"{type(error).__name__}: {text}"

"""Environment variables, as the node and every process have them: names are case-insensitive."""

from __future__ import annotations

from typing import Any

from ..gen.errors import Incorrect

__all__ = ["Env"]


def _env_name(name: object) -> str:
    if not isinstance(name, str):
        raise Incorrect(f"an environment variable name is a str, not {type(name).__name__}")
    return str.__str__(name).upper()


class Env:
    """``env`` / ``set_env`` / ``env_list`` over ``self._env`` (upper-cased names)."""

    __slots__ = ()
    _env: dict[str, Any]

    def env(self, name: str) -> Any:
        """The value of an environment variable (the name is case-insensitive), or None."""
        return self._env.get(_env_name(name))

    def set_env(self, name: str, value: Any) -> None:
        """Set a variable; ``None`` deletes it.  On the node, processes spawned from now on
        inherit it; a running process keeps the copy it was spawned with."""
        key = _env_name(name)
        # copied, never changed in place: processes share one dict while their envs are
        # equal (the node's spawn passes it on), so a copy is made only when one is set
        env = dict(self._env)
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
        self._env = env  # type: ignore[misc]  # a slot of Process, an attribute of Node

    def env_list(self) -> dict[str, Any]:
        return dict(self._env)

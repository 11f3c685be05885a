"""The recipes of docs/asyncio.md, run as written: an aiohttp server on loopback, and a
FastAPI/Starlette lifespan."""

from __future__ import annotations

import asyncio
import re
import types
from pathlib import Path
from typing import Any

import pytest

aiohttp = pytest.importorskip("aiohttp")

DOC = Path(__file__).resolve().parent.parent / "docs" / "asyncio.md"


def recipe(name: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the code block that follows ``<!-- recipe: name -->`` in the doc."""
    match = re.search(rf"<!-- recipe: {name} -->\s*```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"docs/asyncio.md has no recipe {name!r}"
    ns = namespace if namespace is not None else {"__name__": f"recipe_{name}"}
    exec(compile(match.group(1), f"{DOC}:{name}", "exec"), ns)
    return ns


def test_the_aiohttp_recipe_serves_calls_on_loopback_and_stops_the_node():
    ns = recipe("aiohttp")
    web = ns["web"]

    async def main() -> tuple[list[int], Any]:
        app = ns["make_app"]()
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        node = app[ns["NODE"]]
        try:
            async with aiohttp.ClientSession() as session:

                async def hit() -> int:
                    async with session.get(f"http://{host}:{port}/hit") as resp:
                        assert resp.status == 200
                        return (await resp.json())["count"]

                counts = await asyncio.gather(*(hit() for _ in range(20)))
        finally:
            await runner.cleanup()  # the cleanup context stops the node
        return sorted(counts), node

    counts, node = asyncio.run(main())
    assert counts == list(range(1, 21))  # every request reached the one actor, one at a time
    assert not node.is_alive()


def test_the_lifespan_recipe_starts_and_stops_the_node():
    ns = recipe("lifespan", recipe("aiohttp"))
    app = types.SimpleNamespace(state=types.SimpleNamespace())

    async def main() -> Any:
        async with ns["lifespan"](app):
            node = app.state.node
            assert await node.call_async(app.state.counter, "hit") == 1
            assert node.is_alive()
        return node

    assert not asyncio.run(main()).is_alive()

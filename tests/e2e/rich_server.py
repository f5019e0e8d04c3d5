"""A stdio MCP server (mcp 2.3, both eras) whose answers use every optional field the schema has (rich_data.py).

Used by test_fidelity.py where server-everything is silent: audio content, icons, `_meta` on results, content
blocks, resources and list items, annotations with `lastModified`, `size`, titles, cache hints, a JSON-RPC error
with a server-defined code and data, and a tool that reports the non-protocol `_meta` it was sent.

Run: `python tests/e2e/rich_server.py [SCHEME]` (stdio; resources under `SCHEME://`, default `rich`).
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import rich_data as rich
from mcp.server import Server
from mcp.server.caching import CacheHint
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError


def done(result: dict[str, Any]) -> dict[str, Any]:
    """A complete result (the modern wire requires `resultType`; the SDK drops it on the legacy wire)."""
    return {**result, "resultType": "complete"}


async def answer(make: Any, *args: Any) -> Any:
    try:
        return done(make(*args))
    except rich.RichError as exc:
        raise MCPError(code=exc.code, message=exc.message, data=exc.data) from None


async def list_tools(ctx: Any, params: Any) -> Any:
    return await answer(rich.list_tools)


async def call_tool(ctx: Any, params: Any) -> Any:
    return await answer(rich.call_tool, params.name, params.arguments or {}, dict(params.meta or {}))


async def list_prompts(ctx: Any, params: Any) -> Any:
    return await answer(rich.list_prompts)


async def get_prompt(ctx: Any, params: Any) -> Any:
    return await answer(rich.get_prompt, params.name, params.arguments or {})


async def list_resources(ctx: Any, params: Any) -> Any:
    return await answer(rich.list_resources)


async def list_templates(ctx: Any, params: Any) -> Any:
    return await answer(rich.list_templates)


async def read_resource(ctx: Any, params: Any) -> Any:
    return await answer(rich.read_resource, str(params.uri))


async def complete(ctx: Any, params: Any) -> Any:
    return await answer(rich.complete, params.argument.value)


server: Server[Any] = Server(
    "rich",
    version="3.1.4",
    title="Rich fixture",
    icons=rich.ICONS,  # type: ignore[arg-type]
    # Deliberately cacheable: the gateway must not pass an upstream's cache hints on as its own.
    cache_hints={
        "tools/list": CacheHint(ttl_ms=30_000, scope="public"),
        "prompts/list": CacheHint(ttl_ms=30_000, scope="public"),
        "resources/list": CacheHint(ttl_ms=30_000, scope="public"),
        "resources/templates/list": CacheHint(ttl_ms=30_000, scope="public"),
        "resources/read": CacheHint(ttl_ms=60_000, scope="public"),
    },
    on_list_tools=list_tools,
    on_call_tool=call_tool,
    on_list_prompts=list_prompts,
    on_get_prompt=get_prompt,
    on_list_resources=list_resources,
    on_list_resource_templates=list_templates,
    on_read_resource=read_resource,
    on_completion=complete,
)


async def main() -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    if len(sys.argv) > 1:
        rich.SCHEME = sys.argv[1]
    anyio.run(main)

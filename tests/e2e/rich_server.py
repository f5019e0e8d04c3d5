"""A stdio MCP server (mcp 2.3, both eras) whose answers use every optional field the schema has.

Used by test_fidelity.py where server-everything is silent: audio content, icons, `_meta` on results, content
blocks, resources and list items, annotations with `lastModified`, `size`, titles, cache hints, a JSON-RPC error
with a server-defined code and data, and a tool that reports the non-protocol `_meta` it was sent. Every answer
is fixed (no clock, no randomness), so two copies of this server answer identically.

Run: `python tests/e2e/rich_server.py` (stdio).
"""

from __future__ import annotations

import base64
from typing import Any

import anyio
from mcp.server import Server
from mcp.server.caching import CacheHint
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")).decode()
WAV = base64.b64encode(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(24)).decode()
ICONS = [
    {"src": f"data:image/png;base64,{PNG}", "mimeType": "image/png", "sizes": ["16x16", "32x32"]},
    {"src": "https://example.com/icon.svg", "mimeType": "image/svg+xml", "sizes": ["any"], "theme": "dark"},
]
ANNOTATIONS = {"audience": ["user", "assistant"], "priority": 0.25, "lastModified": "2026-01-02T03:04:05Z"}
CUSTOM_ERROR = 4242


def done(result: dict[str, Any]) -> dict[str, Any]:
    """A complete result (the modern wire requires `resultType`; the SDK drops it on the legacy wire)."""
    return {**result, "resultType": "complete"}


def meta(where: str) -> dict[str, Any]:
    return {"example.com/where": where, "example.com/nested": {"list": [1, 2.5, None, True], "text": "\u00e9"}}


TOOLS: list[dict[str, Any]] = [
    {
        "name": "media",
        "title": "Every content type",
        "description": "Returns one content block of every type, structured content and result _meta.",
        "inputSchema": {
            "type": "object",
            "properties": {"note": {"type": "string", "description": "echoed in the text block"}},
            "required": ["note"],
            "additionalProperties": False,
        },
        "outputSchema": {
            "type": "object",
            "properties": {"note": {"type": "string"}, "count": {"type": "integer"}},
            "required": ["note", "count"],
        },
        "annotations": {"title": "Media", "readOnlyHint": True, "openWorldHint": False},
        "icons": ICONS,
        "_meta": meta("tool"),
    },
    {
        "name": "fails",
        "description": "A tool error: isError with content and _meta.",
        "inputSchema": {"type": "object"},
        "annotations": {"destructiveHint": True},
    },
    {
        "name": "raises",
        "description": "A JSON-RPC error with a server-defined code and data.",
        "inputSchema": {"type": "object"},
    },
    {
        "name": "echo_meta",
        "description": "Returns the request's _meta keys that are not protocol keys, as structured content.",
        "inputSchema": {"type": "object"},
    },
]


def media_result(note: str) -> dict[str, Any]:
    return {
        "content": [
            {"type": "text", "text": f"note: {note}", "annotations": ANNOTATIONS, "_meta": meta("text")},
            {"type": "image", "data": PNG, "mimeType": "image/png", "annotations": ANNOTATIONS, "_meta": meta("image")},
            {"type": "audio", "data": WAV, "mimeType": "audio/wav", "annotations": ANNOTATIONS, "_meta": meta("audio")},
            {
                "type": "resource_link",
                "uri": "rich://docs/readme",
                "name": "readme",
                "title": "The readme",
                "description": "A linked resource",
                "mimeType": "text/plain",
                "size": 21,
                "icons": ICONS,
                "annotations": ANNOTATIONS,
                "_meta": meta("link"),
            },
            {
                "type": "resource",
                "resource": {
                    "uri": "rich://docs/readme",
                    "mimeType": "text/plain",
                    "text": "embedded",
                    "_meta": meta("c"),
                },
                "annotations": ANNOTATIONS,
                "_meta": meta("embedded-text"),
            },
            {
                "type": "resource",
                "resource": {"uri": "rich://docs/logo", "mimeType": "image/png", "blob": PNG},
                "_meta": meta("embedded-blob"),
            },
        ],
        "structuredContent": {"note": note, "count": 6},
        "isError": False,
        "_meta": meta("result"),
    }


async def list_tools(ctx: Any, params: Any) -> Any:
    return done({"tools": TOOLS, "_meta": meta("tools/list")})


async def call_tool(ctx: Any, params: Any) -> Any:
    arguments = params.arguments or {}
    if params.name == "media":
        return done(media_result(str(arguments.get("note", ""))))
    if params.name == "fails":
        return done(
            {"content": [{"type": "text", "text": "it failed, as asked"}], "isError": True, "_meta": meta("error")}
        )
    if params.name == "raises":
        raise MCPError(code=CUSTOM_ERROR, message="a server-defined error", data={"why": "asked to", "n": 1})
    if params.name == "echo_meta":
        sent: dict[str, Any] = dict(params.meta or {})
        kept = {
            k: v
            for k, v in sent.items()
            if k not in ("progressToken", "progress_token") and not k.startswith("io.modelcontextprotocol/")
        }
        return done(
            {"content": [{"type": "text", "text": "see structuredContent"}], "structuredContent": {"meta": kept}}
        )
    raise MCPError(code=-32602, message=f"Unknown tool: {params.name}")


PROMPTS = [
    {
        "name": "rich_prompt",
        "title": "A rich prompt",
        "description": "Messages of every content type.",
        "arguments": [
            {"name": "topic", "title": "Topic", "description": "What about", "required": True},
            {"name": "tone", "required": False},
        ],
        "icons": ICONS,
        "_meta": meta("prompt"),
    }
]


async def list_prompts(ctx: Any, params: Any) -> Any:
    return done({"prompts": PROMPTS})


async def get_prompt(ctx: Any, params: Any) -> Any:
    if params.name != "rich_prompt":
        raise MCPError(code=-32602, message=f"Unknown prompt: {params.name}")
    arguments = params.arguments or {}
    content = media_result(arguments.get("topic", ""))["content"]
    return done(
        {
            "description": f"about {arguments.get('topic')} ({arguments.get('tone', 'plain')})",
            "messages": [
                {"role": "user" if i % 2 == 0 else "assistant", "content": block} for i, block in enumerate(content)
            ],
            "_meta": meta("prompts/get"),
        }
    )


RESOURCES = [
    {
        "uri": "rich://docs/readme",
        "name": "readme",
        "title": "The readme",
        "description": "Text, with every optional field",
        "mimeType": "text/plain",
        "size": 21,
        "icons": ICONS,
        "annotations": ANNOTATIONS,
        "_meta": meta("resource"),
    },
    {"uri": "rich://docs/logo", "name": "logo", "mimeType": "image/png"},
]
TEMPLATES = [
    {
        "uriTemplate": "rich://items/{id}",
        "name": "item",
        "title": "An item",
        "description": "Any item by id",
        "mimeType": "application/json",
        "icons": ICONS,
        "annotations": ANNOTATIONS,
        "_meta": meta("template"),
    }
]


async def list_resources(ctx: Any, params: Any) -> Any:
    return done({"resources": RESOURCES})


async def list_templates(ctx: Any, params: Any) -> Any:
    return done({"resourceTemplates": TEMPLATES})


async def read_resource(ctx: Any, params: Any) -> Any:
    uri = str(params.uri)
    if uri == "rich://docs/readme":
        contents = [{"uri": uri, "mimeType": "text/plain", "text": "the rich server readme", "_meta": meta("content")}]
    elif uri == "rich://docs/logo":
        contents = [{"uri": uri, "mimeType": "image/png", "blob": PNG}]
    elif uri.startswith("rich://items/"):
        contents = [{"uri": uri, "mimeType": "application/json", "text": f'{{"id": "{uri.rsplit("/", 1)[1]}"}}'}]
    else:
        raise MCPError(code=-32602, message=f"Resource not found: {uri}", data={"uri": uri})
    return done({"contents": contents, "_meta": meta("resources/read")})


async def complete(ctx: Any, params: Any) -> Any:
    values = [v for v in ("alpha", "alpine", "beta") if v.startswith(params.argument.value)]
    return done({"completion": {"values": values, "total": len(values) + 10, "hasMore": True}})


server: Server[Any] = Server(
    "rich",
    version="3.1.4",
    title="Rich fixture",
    icons=ICONS,  # type: ignore[arg-type]
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
    anyio.run(main)

"""The answers of the rich fixture servers (stdlib only): every optional field the MCP schema has.

Shared by rich_server.py (mcp 2.3, both eras) and rich_legacy_server.py (a handshake-era server written
against the wire, no SDK), so the same content is checked through the gateway from an upstream of either era.
Everything is fixed (no clock, no randomness): two copies answer identically. Functions return result dicts
without `resultType` and raise `RichError` for a JSON-RPC error.
"""

from __future__ import annotations

import base64
from typing import Any


class RichError(Exception):
    """A JSON-RPC error the server answers with."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")).decode()
WAV = base64.b64encode(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(24)).decode()
ICONS = [
    {"src": f"data:image/png;base64,{PNG}", "mimeType": "image/png", "sizes": ["16x16", "32x32"]},
    {"src": "https://example.com/icon.svg", "mimeType": "image/svg+xml", "sizes": ["any"], "theme": "dark"},
]
ANNOTATIONS = {"audience": ["user", "assistant"], "priority": 0.25, "lastModified": "2026-01-02T03:04:05Z"}
CUSTOM_ERROR = 4242


SCHEME = "rich"
"""The URI scheme of every resource (a second copy of the content on another server needs its own)."""

SERVER_INFO = {"name": "rich", "title": "Rich fixture", "version": "3.1.4", "icons": ICONS}


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
                "uri": f"{SCHEME}://docs/readme",
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
                    "uri": f"{SCHEME}://docs/readme",
                    "mimeType": "text/plain",
                    "text": "embedded",
                    "_meta": meta("c"),
                },
                "annotations": ANNOTATIONS,
                "_meta": meta("embedded-text"),
            },
            {
                "type": "resource",
                "resource": {"uri": f"{SCHEME}://docs/logo", "mimeType": "image/png", "blob": PNG},
                "_meta": meta("embedded-blob"),
            },
        ],
        "structuredContent": {"note": note, "count": 6},
        "isError": False,
        "_meta": meta("result"),
    }


def list_tools() -> dict[str, Any]:
    return {"tools": TOOLS, "_meta": meta("tools/list")}


def call_tool(name: str, arguments: dict[str, Any], request_meta: dict[str, Any]) -> dict[str, Any]:
    if name == "media":
        return media_result(str(arguments.get("note", "")))
    if name == "fails":
        return {"content": [{"type": "text", "text": "it failed, as asked"}], "isError": True, "_meta": meta("error")}
    if name == "raises":
        raise RichError(CUSTOM_ERROR, "a server-defined error", {"why": "asked to", "n": 1})
    if name == "echo_meta":
        kept = {
            k: v
            for k, v in request_meta.items()
            if k not in ("progressToken", "progress_token") and not k.startswith("io.modelcontextprotocol/")
        }
        return {"content": [{"type": "text", "text": "see structuredContent"}], "structuredContent": {"meta": kept}}
    raise RichError(-32602, f"Unknown tool: {name}")


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


def list_prompts() -> dict[str, Any]:
    return {"prompts": PROMPTS}


def get_prompt(name: str, arguments: dict[str, str]) -> dict[str, Any]:
    if name != "rich_prompt":
        raise RichError(-32602, f"Unknown prompt: {name}")
    content = media_result(arguments.get("topic", ""))["content"]
    return {
        "description": f"about {arguments.get('topic')} ({arguments.get('tone', 'plain')})",
        "messages": [
            {"role": "user" if i % 2 == 0 else "assistant", "content": block} for i, block in enumerate(content)
        ],
        "_meta": meta("prompts/get"),
    }


def _resources() -> list[dict[str, Any]]:
    return [
        {
            "uri": f"{SCHEME}://docs/readme",
            "name": "readme",
            "title": "The readme",
            "description": "Text, with every optional field",
            "mimeType": "text/plain",
            "size": 21,
            "icons": ICONS,
            "annotations": ANNOTATIONS,
            "_meta": meta("resource"),
        },
        {"uri": f"{SCHEME}://docs/logo", "name": "logo", "mimeType": "image/png"},
    ]


def _templates() -> list[dict[str, Any]]:
    return [
        {
            "uriTemplate": f"{SCHEME}://items/{{id}}",
            "name": "item",
            "title": "An item",
            "description": "Any item by id",
            "mimeType": "application/json",
            "icons": ICONS,
            "annotations": ANNOTATIONS,
            "_meta": meta("template"),
        }
    ]


def list_resources() -> dict[str, Any]:
    return {"resources": _resources()}


def list_templates() -> dict[str, Any]:
    return {"resourceTemplates": _templates()}


def read_resource(uri: str) -> dict[str, Any]:
    if uri == f"{SCHEME}://docs/readme":
        contents = [{"uri": uri, "mimeType": "text/plain", "text": "the rich server readme", "_meta": meta("content")}]
    elif uri == f"{SCHEME}://docs/logo":
        contents = [{"uri": uri, "mimeType": "image/png", "blob": PNG}]
    elif uri.startswith(f"{SCHEME}://items/"):
        contents = [{"uri": uri, "mimeType": "application/json", "text": f'{{"id": "{uri.rsplit("/", 1)[1]}"}}'}]
    else:
        raise RichError(-32602, f"Resource not found: {uri}", {"uri": uri})
    return {"contents": contents, "_meta": meta("resources/read")}


def complete(value: str) -> dict[str, Any]:
    values = [v for v in ("alpha", "alpine", "beta") if v.startswith(value)]
    return {"completion": {"values": values, "total": len(values) + 10, "hasMore": True}}

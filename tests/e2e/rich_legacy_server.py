"""A handshake-era (2025-11-25) MCP server on stdio written against the wire, without any SDK (stdlib only).

It answers with rich_data.py's content, exactly as written: no SDK model in between adds, drops or reorders a
field, so what the gateway receives from a legacy upstream is known to the byte. It knows nothing of
`server/discover` (method not found, as any legacy server), negotiates `initialize`, and never sends
`resultType`, cache hints or a `serverInfo` stamp.

Run: `python tests/e2e/rich_legacy_server.py [SCHEME]` (any Python 3.11+; resources under `SCHEME://`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import rich_data as rich

VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
CAPABILITIES = {"tools": {}, "prompts": {}, "resources": {}, "completions": {}}


def _params(message: dict[str, Any]) -> dict[str, Any]:
    params = message.get("params")
    return params if isinstance(params, dict) else {}


def _initialize(p: dict[str, Any]) -> dict[str, Any]:
    asked = p.get("protocolVersion")
    return {
        "protocolVersion": asked if asked in VERSIONS else VERSIONS[0],
        "capabilities": CAPABILITIES,
        "serverInfo": rich.SERVER_INFO,
        "instructions": "A rich legacy fixture.",
    }


HANDLERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "initialize": _initialize,
    "ping": lambda p: {},
    "tools/list": lambda p: rich.list_tools(),
    "tools/call": lambda p: rich.call_tool(p["name"], p.get("arguments") or {}, p.get("_meta") or {}),
    "prompts/list": lambda p: rich.list_prompts(),
    "prompts/get": lambda p: rich.get_prompt(p["name"], p.get("arguments") or {}),
    "resources/list": lambda p: rich.list_resources(),
    "resources/templates/list": lambda p: rich.list_templates(),
    "resources/read": lambda p: rich.read_resource(p["uri"]),
    "completion/complete": lambda p: rich.complete(p["argument"]["value"]),
}


def answer(message: dict[str, Any]) -> dict[str, Any] | None:
    """The response to one message, or None for a notification."""
    if "id" not in message or "method" not in message:
        return None  # a notification, or a response to a request we never send
    reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
    handler = HANDLERS.get(message["method"])
    if handler is None:
        reply["error"] = {"code": -32601, "message": f"Method not found: {message['method']}"}
        return reply
    try:
        reply["result"] = handler(_params(message))
    except rich.RichError as exc:
        reply["error"] = {"code": exc.code, "message": exc.message, **({"data": exc.data} if exc.data else {})}
    except (KeyError, TypeError) as exc:
        reply["error"] = {"code": -32602, "message": f"Invalid params: {exc}"}
    return reply


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            reply: dict[str, Any] | None = {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32700, "message": "Parse error"},
            }
        else:
            reply = answer(message) if isinstance(message, dict) else None
        if reply is not None:
            sys.stdout.write(json.dumps(reply, ensure_ascii=False) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        rich.SCHEME = sys.argv[1]
    main()

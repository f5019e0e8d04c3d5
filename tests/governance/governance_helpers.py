"""Shared pieces of the governance tests: in-memory servers, a fake clock, a list audit sink, and a gateway
whose stage chain is built from settings exactly as in production."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

from switchyard.config import GatewayConfig, parse_config
from switchyard.gateway import Gateway
from switchyard.stages import build_stages
from switchyard.store.audit import AuditRow, PendingRow
from switchyard.testing.harness import memory_gateway


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ListSink:
    """An audit sink that builds rows immediately and keeps them."""

    def __init__(self) -> None:
        self.rows: list[AuditRow] = []

    def submit(self, row: PendingRow) -> bool:
        self.rows.append(row.to_row())
        return True


def servers(gate: anyio.Event | None = None) -> dict[str, MCPServer]:
    alpha = MCPServer("alpha")

    @alpha.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @alpha.tool()
    def admin_reset(confirm: bool = False) -> str:
        """A dangerous tool."""
        return "reset"

    @alpha.tool()
    async def wait() -> str:
        """Waits until the test opens the gate."""
        if gate is not None:
            await gate.wait()
        return "done"

    @alpha.prompt()
    def greet(name: str) -> str:
        """Greets."""
        return f"Hello, {name}!"

    @alpha.resource("alpha://secret")
    def secret() -> str:
        """A sensitive resource."""
        return "classified"

    @alpha.resource("alpha://public")
    def public() -> str:
        """A public resource."""
        return "hello"

    beta = MCPServer("beta")

    @beta.tool()
    def lookup(key: str, api_token: str = "") -> str:
        """Looks something up."""
        return f"value of {key}"

    return {"alpha": alpha, "beta": beta}


def config(settings: Mapping[str, Any]) -> GatewayConfig:
    doc = {"mcpServers": {name: {"command": "in-memory"} for name in ("alpha", "beta")}, "switchyard": dict(settings)}
    return parse_config(doc, env={})


@asynccontextmanager
async def governed(
    settings: Mapping[str, Any], *, clock: FakeClock | None = None, sink: ListSink | None = None, **kw: Any
) -> AsyncGenerator[Gateway, None]:
    """An in-memory gateway over `servers()` with the production stage chain built from `settings`."""
    built = build_stages(config(settings), clock=clock or FakeClock(), audit_sink=sink or ListSink())
    async with memory_gateway(servers(**kw), settings=settings, stages=built.stages) as gateway:
        yield gateway

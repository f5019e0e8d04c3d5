"""`MemoryUpstream`: an in-process MCP server, for tests and embedding.

Owns nothing but the choice of transport: the SDK's in-memory transport over a `Server` or `MCPServer`.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from mcp.client._memory import InMemoryTransport  # pyright: ignore[reportPrivateUsage]
from mcp.server import Server
from mcp.server.mcpserver import MCPServer

from switchyard.upstream.client import ClientUpstream

__all__ = ["MemoryUpstream"]


class MemoryUpstream(ClientUpstream):
    """An MCP server object running in this process."""

    def __init__(self, name: str, server: Server[Any] | MCPServer, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.server = server

    def _target(self, stack: AsyncExitStack) -> Any:
        return InMemoryTransport(self.server)

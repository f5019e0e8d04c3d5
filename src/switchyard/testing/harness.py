"""An in-process harness: a gateway over in-memory MCP servers, and an SDK client connected to its front.

Owns nothing the product runs; it lets tests (ours and plugin authors') exercise the whole request path
without processes or sockets.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from mcp import Client
from mcp.server import Server
from mcp.server.mcpserver import MCPServer

from switchyard.config import GatewayConfig, parse_config
from switchyard.gateway import Gateway
from switchyard.pipeline.chain import Stage
from switchyard.server.mcp import FrontServer
from switchyard.upstream.base import Upstream
from switchyard.upstream.memory import MemoryUpstream

__all__ = ["gateway_client", "memory_gateway"]


def _config(servers: Mapping[str, Any], settings: Mapping[str, Any] | None) -> GatewayConfig:
    # In-memory servers have no command; the config lists them as placeholders so naming order is known.
    doc = {"mcpServers": {name: {"command": "in-memory"} for name in servers}, "switchyard": dict(settings or {})}
    return parse_config(doc, env={})


@asynccontextmanager
async def memory_gateway(
    servers: Mapping[str, Server[Any] | MCPServer],
    *,
    settings: Mapping[str, Any] | None = None,
    stages: tuple[Stage, ...] = (),
    upstream_type: type[MemoryUpstream] = MemoryUpstream,
) -> AsyncGenerator[Gateway, None]:
    """A running gateway whose upstreams are the given in-process servers (each had its first connection
    attempt before this yields). `upstream_type` may be a `MemoryUpstream` subclass, such as
    `switchyard.testing.faults.CrashableUpstream`."""
    config = _config(servers, settings)
    gateway = Gateway(config, upstreams={}, stages=stages)
    upstreams: dict[str, Upstream] = {}
    for name, server in servers.items():
        upstreams[name] = upstream_type(
            name,
            server,
            connect_timeout=config.switchyard.timeouts.connect,
            restart=config.switchyard.restart,
            listener=gateway._on_upstream_change,  # pyright: ignore[reportPrivateUsage]
            resource_listener=gateway._on_resource_updated,  # pyright: ignore[reportPrivateUsage]
        )
    gateway.upstreams = upstreams
    async with gateway.running(wait=True):
        yield gateway


@asynccontextmanager
async def gateway_client(
    servers: Mapping[str, Server[Any] | MCPServer],
    *,
    mode: str = "auto",
    settings: Mapping[str, Any] | None = None,
    upstream_type: type[MemoryUpstream] = MemoryUpstream,
    **client_kwargs: Any,
) -> AsyncGenerator[tuple[Gateway, Client], None]:
    """A running in-memory gateway and an SDK client connected to its front in `mode`."""
    async with memory_gateway(servers, settings=settings, upstream_type=upstream_type) as gateway:
        front = FrontServer(gateway)
        async with Client(front.server, mode=mode, **client_kwargs) as client:  # pyright: ignore[reportArgumentType]
            yield gateway, client

"""The stdio front: one desktop client on stdin/stdout, either protocol era.

Owns: wiring the SDK's stdio server transport to the front `Server` while the gateway runs. Does not own
handlers (mcp.py) or upstream start-up (gateway.py).
"""

from __future__ import annotations

from mcp.server.stdio import stdio_server

from switchyard.gateway import Gateway
from switchyard.server.mcp import FrontServer

__all__ = ["serve_stdio"]


async def serve_stdio(gateway: Gateway) -> None:
    """Serve one client on this process's stdin/stdout until it disconnects; upstreams stop on return."""
    front = FrontServer(gateway)
    async with gateway.running(), stdio_server() as (read, write):
        await front.server.run(read, write, front.initialization_options())

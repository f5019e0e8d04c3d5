"""Front subscriptions of legacy connections: a connection that goes away still subscribed gives its hold on
the upstream subscription back (a legacy HTTP session that expired, a client that never unsubscribed)."""

from __future__ import annotations

import gc
import warnings

import anyio
import pytest
from mcp import Client
from mcp.server import MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning

from switchyard.server.mcp import FrontServer
from switchyard.testing.harness import memory_gateway

pytestmark = pytest.mark.anyio

URI = "docs://a"


def docs() -> MCPServer:
    server = MCPServer("docs")

    @server.resource(URI)
    def a() -> str:
        """A document."""
        return "a"

    return server


async def holders(front: FrontServer, expected: int) -> int:
    """The front's count of holds on URI once the garbage collector ran (bounded wait)."""
    with anyio.move_on_after(5):
        while front._holders[URI] != expected:  # pyright: ignore[reportPrivateUsage]
            gc.collect()
            await anyio.sleep(0.05)
    return front._holders[URI]  # pyright: ignore[reportPrivateUsage]


async def test_a_connection_that_leaves_subscribed_gives_its_hold_back() -> None:
    async with memory_gateway({"docs": docs()}) as gateway:
        front = FrontServer(gateway)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)  # resources/subscribe is legacy-era
            async with Client(front.server, mode="legacy") as stays:  # pyright: ignore[reportArgumentType]
                await stays.subscribe_resource(URI)
                async with Client(front.server, mode="legacy") as leaves:  # pyright: ignore[reportArgumentType]
                    await leaves.subscribe_resource(URI)
                    assert await holders(front, 2) == 2
                # `leaves` closed without unsubscribing: its hold is given back once it is collected.
                assert await holders(front, 1) == 1
                await stays.unsubscribe_resource(URI)
                assert await holders(front, 0) == 0  # released once, not twice (its finalizer was detached)
            gc.collect()
            await anyio.sleep(0.1)
            assert front._holders[URI] == 0  # pyright: ignore[reportPrivateUsage]

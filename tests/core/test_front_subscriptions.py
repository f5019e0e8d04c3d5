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


def test_only_an_event_a_live_change_stream_took_is_left_to_it() -> None:
    # The SDK hands a change-stream event to the stream whose subscription id is live, and tees it to the message
    # handler either way: the handler skips what a live stream took, and handles an event of a closed stream
    # (frames in flight while the gateway re-listens), which went nowhere else.
    from types import SimpleNamespace  # noqa: PLC0415

    import mcp_types as types  # noqa: PLC0415

    from switchyard.upstream.client import ClientUpstream  # noqa: PLC0415

    def update(subscription: int | None) -> types.ResourceUpdatedNotification:
        meta = {"io.modelcontextprotocol/subscriptionId": subscription} if subscription is not None else None
        params: dict[str, object] = {"uri": "res://a", **({"_meta": meta} if meta else {})}
        return types.ResourceUpdatedNotification.model_validate(
            {"method": "notifications/resources/updated", "params": params}
        )

    upstream = object.__new__(ClientUpstream)  # only the routing rule is under test: no streams, no process
    streamed = upstream._streamed  # pyright: ignore[reportPrivateUsage]
    upstream._client = None  # pyright: ignore[reportPrivateUsage]
    assert not streamed(update(7))  # no session: nothing was streamed
    upstream._client = SimpleNamespace(session=SimpleNamespace(_listen_routes={7: object()}))  # type: ignore[assignment]  # pyright: ignore[reportPrivateUsage]
    assert streamed(update(7))  # the live stream took it
    assert not streamed(update(8))  # a stream already closed: nobody else has it
    assert not streamed(update(None))  # a plain notification (a handshake-era server's)

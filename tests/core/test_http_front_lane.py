"""`QuietLane` (server/http_lane.py) against the SDK's own streaming branch, on a real HTTP server.

A real `MCPServer` behind the SDK's session manager, behind `http._BodyChecks` and the lane, served by uvicorn
on 127.0.0.1. Each request is sent raw (httpx2) once with the lane switched off (the SDK's streaming branch:
the oracle) and once with it on; status, content type and body must be equal. Cases: a quick answer, a tool
error, an unknown tool, a call that outlives the keep-alive interval (shortened here: the SDK's pings, then
the answer as the final event), a request that asks for progress (not the lane's: streamed by the SDK). A client
that goes away cancels the handler on both paths.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, MutableMapping
from typing import Any

import anyio
import httpx2
import pytest
from mcp.server import MCPServer
from mcp.server import _streamable_http_modern as modern
from mcp.server.mcpserver import Context
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager

from switchyard.server.http import _BodyChecks  # pyright: ignore[reportPrivateUsage] - the layer in front of the lane
from switchyard.server.http_lane import QuietLane, quiet
from switchyard.testing.peers import serving_asgi

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "lane-test", "version": "1.0"},
}
LOG_LEVEL = "io.modelcontextprotocol/logLevel"
server = MCPServer("quiet", version="1.0.0")
cancelled: list[str] = []


@server.tool()
def quick(text: str) -> str:
    """Echo."""
    return text


@server.tool()
def fails() -> str:
    """Raise."""
    raise ValueError("it failed")


@server.tool()
async def slow(seconds: float, tag: str = "") -> str:
    """Sleep, recording a cancellation."""
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        cancelled.append(tag)
        raise
    return f"slept {seconds}"


@server.tool()
async def counts(ctx: Context) -> str:
    """Report progress twice."""
    await ctx.report_progress(1, 2)
    await ctx.report_progress(2, 2)
    return "counted"


class App:
    """Lifespan runs the session manager; HTTP goes through `_BodyChecks` and the lane."""

    def __init__(self) -> None:
        self.manager = StreamableHTTPSessionManager(app=server._lowlevel_server)  # pyright: ignore[reportPrivateUsage]
        self.lane = QuietLane(StreamableHTTPASGIApp(self.manager), self.manager)
        self.http = _BodyChecks(self.lane, 1 << 20)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            async with self.manager.run():
                await send({"type": "lifespan.startup.complete"})
                await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.http(scope, receive, send)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, App]]:
    app = App()
    with serving_asgi(app, lifespan="on") as port:
        yield f"http://127.0.0.1:{port}/mcp", app


def _post(name: str, arguments: dict[str, Any], **meta: Any) -> tuple[dict[str, str], bytes]:
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": {**ENVELOPE, **meta}},
    }
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": MODERN,
        "mcp-method": "tools/call",
        "mcp-name": name,
    }
    return headers, json.dumps(body).encode()


async def _exchange(url: str, name: str, arguments: dict[str, Any], **meta: Any) -> tuple[int, str, str]:
    headers, body = _post(name, arguments, **meta)
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(url, content=body, headers=headers)
    text = re.sub(r"(: ping\r\n\r\n)+", ": ping\r\n\r\n", response.text)  # the count depends on timing
    return response.status_code, response.headers.get("content-type", ""), text


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("quick", {"text": "hi"}, {}),
    ("fails", {}, {}),
    ("missing", {}, {}),
    ("slow", {"seconds": 1.0}, {}),
    ("counts", {}, {"progressToken": "p1"}),
]


async def test_the_lane_answers_as_the_sdks_streaming_branch_does(
    served: tuple[str, App], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, app = served
    monkeypatch.setattr(modern, "_SSE_PING_INTERVAL", 0.3)
    out: dict[bool, list[tuple[int, str, str]]] = {}
    for enabled in (False, True):
        app.lane.enabled = enabled
        out[enabled] = [await _exchange(url, name, args, **meta) for name, args, meta in CASES]
    assert out[True] == out[False]
    by_name = dict(zip([c[0] for c in CASES], out[True], strict=True))
    assert by_name["quick"][1].startswith("application/json")
    assert '"text":"hi"' in by_name["quick"][2]
    assert by_name["slow"][1].startswith("text/event-stream")
    assert by_name["slow"][2].startswith(": ping\r\n\r\nevent: message\r\ndata: ")
    assert "slept 1.0" in by_name["slow"][2]
    assert "notifications/progress" in by_name["counts"][2]


@pytest.mark.parametrize("enabled", [False, True])
async def test_a_client_that_goes_away_cancels_the_call(served: tuple[str, App], enabled: bool) -> None:
    url, app = served
    app.lane.enabled = enabled
    tag = f"gone-{enabled}"
    headers, body = _post("slow", {"seconds": 30, "tag": tag})
    async with httpx2.AsyncClient(timeout=30) as http:
        with anyio.move_on_after(0.5):
            await http.post(url, content=body, headers=headers)
    with anyio.fail_after(10):
        while tag not in cancelled:  # noqa: ASYNC110 - the tool's own record is the signal
            await anyio.sleep(0.05)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x", "_meta": ENVELOPE}}, True),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, True),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"_meta": {"progressToken": 3}}}, False),
        (
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "x",
                "params": {"_meta": {"io.modelcontextprotocol/logLevel": "info"}},
            },
            False,
        ),
        ({"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen", "params": {}}, False),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, False),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ["x"]}, False),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"_meta": "x"}}, False),
        ([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}], False),
    ],
)
def test_only_requests_that_can_get_nothing_but_their_answer_are_quiet(message: Any, expected: bool) -> None:
    assert quiet(json.dumps(message).encode()) is expected


def test_an_unreadable_or_large_body_is_not_quiet() -> None:
    assert quiet(b"{nope") is False
    small = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x", "arguments": {"t": "a"}}}
    large = {**small, "params": {"name": "x", "arguments": {"t": "a" * 70_000}}}
    assert quiet(json.dumps(small).encode()) is True
    assert quiet(json.dumps(large).encode()) is False

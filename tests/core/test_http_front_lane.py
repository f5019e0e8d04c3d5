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
def measures(text: str) -> dict[str, Any]:
    """Structured output with a null and a NaN (the SDK's JSON dump writes null for NaN)."""
    return {"text": text, "none": None, "ratio": float("nan")}


@server.tool()
def plain(count: int) -> dict[str, Any]:
    """Structured output without NaN."""
    return {"count": count, "none": None, "half": count / 2}


@server.tool()
async def counts(ctx: Context) -> str:
    """Report progress twice."""
    await ctx.report_progress(1, 2)
    await ctx.report_progress(2, 2)
    return "counted"


async def _raw_answer(ctx: Any, call_next: Any) -> Any:
    """Middleware answering the `raw` tool itself with values that are not JSON (bytes, a set), as middleware
    may: the SDK's dump turns them into JSON, so the lane's must too."""
    if ctx.method == "tools/call" and (ctx.params or {}).get("name") == "raw":
        return {"content": [], "resultType": "x-extension", "blob": b"ab", "tags": {"t"}}
    return await call_next(ctx)


server._lowlevel_server.middleware.append(_raw_answer)  # pyright: ignore[reportPrivateUsage]


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


def _post(name: str, arguments: dict[str, Any], ident: Any = 7, **meta: Any) -> tuple[dict[str, str], bytes]:
    body = {
        "jsonrpc": "2.0",
        "id": ident,
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


async def _exchange(
    url: str, name: str, arguments: dict[str, Any], change: dict[str, str] | None = None, ident: Any = 7, **meta: Any
) -> tuple[int, str, str]:
    headers, body = _post(name, arguments, ident, **meta)
    raw = [(k, v) for k, v in {**headers, **(change or {})}.items() if v]
    if change and change.get("mcp-method") == "twice":  # the routing header sent twice, same value
        raw = [(k, v) for k, v in raw if k != "mcp-method"] + [("mcp-method", "tools/call")] * 2
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(url, content=body, headers=raw)
    text = re.sub(r"(: ping\r\n\r\n)+", ": ping\r\n\r\n", response.text)  # the count depends on timing
    return response.status_code, response.headers.get("content-type", ""), text


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("quick", {"text": "hi"}, {}),
    ("fails", {}, {}),
    ("missing", {}, {}),
    ("slow", {"seconds": 1.0}, {}),
    ("counts", {}, {"progressToken": "p1"}),
    ("quick", {"text": "h\u00e9llo \u2713 \U0001f600"}, {}),
    ("measures", {"text": "x"}, {}),
    ("plain", {"count": 3}, {}),
    ("quick", {"text": 5}, {}),  # invalid arguments: the tool's validation error
    ("raw", {"x": 1}, {}),
]
LANE_CASES = 9
"""The cases above the modern lane answers itself (all but the one asking for progress)."""
REJECTED: list[tuple[str, dict[str, Any], dict[str, str], dict[str, Any]]] = [
    ("quick", {"text": "hi"}, {"mcp-name": "other"}, {}),  # header and body disagree
    ("quick", {"text": "hi"}, {"mcp-method": ""}, {}),  # a routing header missing
    ("quick", {"text": "hi"}, {"mcp-method": "twice"}, {}),  # a routing header sent twice
    ("quick", {"text": "hi"}, {"accept": "text/html"}, {}),  # cannot take JSON
    ("quick", {"text": "hi"}, {"content-type": "text/plain"}, {}),
]
BAD_ENVELOPES: list[dict[str, Any]] = [
    {"io.modelcontextprotocol/clientCapabilities": None},
    {"io.modelcontextprotocol/clientCapabilities": {"elicitation": "yes"}},
    {"io.modelcontextprotocol/clientInfo": None},
    {"io.modelcontextprotocol/clientInfo": {"name": 5}},
]
"""Envelopes the inbound ladder lets through; the kernel's request validation rejects all but the third."""


async def test_the_lane_answers_as_the_sdks_streaming_branch_does(
    served: tuple[str, App], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, app = served
    monkeypatch.setattr(modern, "_SSE_PING_INTERVAL", 0.3)
    out: dict[bool, list[tuple[int, str, str]]] = {}
    for enabled in (False, True):
        app.lane.enabled = enabled
        before = app.lane.modern.served
        out[enabled] = [await _exchange(url, name, args, **meta) for name, args, meta in CASES]
        served = app.lane.modern.served - before
        assert served == (LANE_CASES if enabled else 0)
    assert out[True] == out[False]
    by_name = dict(zip([c[0] for c in CASES[:5]], out[True], strict=False))
    assert by_name["quick"][1].startswith("application/json")
    assert '"text":"hi"' in by_name["quick"][2]
    assert by_name["slow"][1].startswith("text/event-stream")
    assert by_name["slow"][2].startswith(": ping\r\n\r\nevent: message\r\ndata: ")
    assert "slept 1.0" in by_name["slow"][2]
    assert "notifications/progress" in by_name["counts"][2]
    assert '"ratio":null' in out[True][6][2]
    assert "\\u00e9" in out[True][5][2]
    assert out[True][9][:2] == (200, "application/json"), out[True][9]
    assert '"blob":"ab"' in out[True][9][2]


async def test_what_a_check_rejects_is_answered_by_the_sdk(served: tuple[str, App]) -> None:
    url, app = served
    out: dict[bool, list[tuple[int, str, str]]] = {}
    for enabled in (False, True):
        app.lane.enabled = enabled
        before = app.lane.modern.served
        out[enabled] = [await _exchange(url, name, args, change, **meta) for name, args, change, meta in REJECTED]
        assert app.lane.modern.served == before
    assert out[True] == out[False]
    assert all(status >= 400 for status, _, _ in out[True]), out[True]


async def test_an_envelope_the_kernel_rejects_is_rejected_as_the_sdk_does(served: tuple[str, App]) -> None:
    # The lane serves these through the whole kernel (its validation answers), never the shortcut.
    url, app = served
    out: dict[bool, list[tuple[int, str, str]]] = {}
    for enabled in (False, True):
        app.lane.enabled = enabled
        out[enabled] = [await _exchange(url, "quick", {"text": "hi"}, **meta) for meta in BAD_ENVELOPES]
    assert out[True] == out[False]
    # The SDK takes a null client info as "not supplied"; the other three are -32602.
    assert [status for status, _, _ in out[True]] == [400, 400, 200, 400], out[True]
    assert all('"code":-32602' in out[True][i][2] for i in (0, 1, 3))


async def test_a_string_id_and_another_client_are_served_alike(served: tuple[str, App]) -> None:
    url, app = served
    other = {"io.modelcontextprotocol/clientInfo": {"name": "other", "version": "2"}}
    out: dict[bool, list[tuple[int, str, str]]] = {}
    for enabled in (False, True):
        app.lane.enabled = enabled
        out[enabled] = [
            await _exchange(url, "quick", {"text": "a"}, ident="abc"),
            await _exchange(url, "quick", {"text": "b"}, **other),
            await _exchange(url, "quick", {"text": "c"}),
        ]
    assert out[True] == out[False]
    assert '"id":"abc"' in out[True][0][2]


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

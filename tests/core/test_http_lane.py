"""`HttpLane` against a real HTTP server on 127.0.0.1: every outcome equals the SDK transport's.

The server is a real `MCPServer` (stateless 2026-07-28 and sessions, served by uvicorn in a thread) behind a
small ASGI layer that records each POST and answers chosen `tools/call` names itself with crafted HTTP
responses (202, 404, 500, a JSON-RPC error body, an off-origin redirect, a wrong content type, a malformed body,
SSE streams with progress, a list change and a log message before the answer, an SSE stream that ends without
one, a slow answer). Each case runs through `HttpUpstream.request` twice, once with `SWITCHYARD_LANES=off` (the
SDK's client session and transport: the oracle) and once with the lane, and the two outcomes must be equal:
the same result, or the same error type and message. The lane against the gateway end to end is
tests/e2e/test_lanes.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import anyio
import mcp_types as types
import pytest
from mcp.server import MCPServer
from mcp.shared.exceptions import MCPError
from pydantic import Field

from switchyard.config import HttpServerConfig
from switchyard.testing.peers import serving_asgi
from switchyard.upstream.base import Upstream
from switchyard.upstream.bridge import INPUT_BRIDGE
from switchyard.upstream.http import HttpUpstream
from switchyard.upstream.http_lane import HttpLane, proxied

pytestmark = pytest.mark.anyio

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

server = MCPServer("crafted", version="1.0.0")


@server.tool()
def echo(text: str) -> str:
    """Return the text."""
    return text


@server.tool()
def regional(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})], text: str) -> str:
    """Echo with the region (mirrored into an `Mcp-Param-Region` header by a modern client)."""
    return f"{region}:{text}"


def _sse(*messages: dict[str, Any]) -> bytes:
    return b"".join(b"event: message\ndata: " + json.dumps(m).encode() + b"\n\n" for m in messages)


def _progress(token: Any, value: int) -> dict[str, Any]:
    params = {"progressToken": token, "progress": value, "total": 2, "message": f"step {value}"}
    return {"jsonrpc": "2.0", "method": "notifications/progress", "params": params}


def _answer(ident: Any, text: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "result": {"content": [{"type": "text", "text": text}]}}


def _complete(answer: dict[str, Any]) -> dict[str, Any]:
    """`answer` as a 2026-07-28 result must be (with its result type)."""
    return {**answer, "result": {**answer["result"], "resultType": "complete"}}


LOG = {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "working"}}
LIST_CHANGED = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
RPC_ERROR = {"jsonrpc": "2.0", "id": None, "error": {"code": -32602, "message": "bad args", "data": {"field": "x"}}}


def _crafted(name: str, request: dict[str, Any]) -> tuple[int, dict[str, str], bytes] | None:
    """The HTTP answer for a crafted tool name, or None to let the real server answer."""
    ident = request.get("id")
    token = ((request.get("params") or {}).get("_meta") or {}).get("progressToken")
    json_type = {"content-type": "application/json"}
    sse_type = {"content-type": "text/event-stream"}
    table: dict[str, tuple[int, dict[str, str], bytes]] = {
        "accepted": (202, {}, b""),
        "not-found": (404, {"content-type": "text/plain"}, b"no such thing"),
        "server-error": (500, {"content-type": "text/plain"}, b"boom"),
        "error-body": (400, json_type, json.dumps(RPC_ERROR).encode()),
        "error-200": (200, json_type, json.dumps({**RPC_ERROR, "id": ident}).encode()),
        "redirect-away": (307, {"location": "http://127.0.0.2:9/elsewhere"}, b""),
        "wrong-type": (200, {"content-type": "text/plain"}, b"hello"),
        "progress": (200, sse_type, _sse(_progress(token, 1), LOG, _progress(token, 2), _answer(ident, "done"))),
        "list-changed": (200, sse_type, _sse(LIST_CHANGED, _answer(ident, "changed"))),
        "no-answer": (200, sse_type, _sse(LOG)),
        "stray-first": (200, sse_type, _sse(_answer(f"not-{ident}", "stray"), _complete(_answer(ident, "mine")))),
        "wrong-id-json": (200, json_type, json.dumps(_answer(12345, "someone else's")).encode()),
        "null-id-error": (200, json_type, json.dumps(RPC_ERROR).encode()),  # refused before its id was read
    }
    return table.get(name)


class Recorder:
    """The ASGI layer in front of the real server: records POSTs, answers crafted names."""

    def __init__(self) -> None:
        self.inner = server.streamable_http_app()
        self.posts: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.inner(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.posts.append((headers, request))
        name = (request.get("params") or {}).get("name") if request.get("method") == "tools/call" else None
        if name == "slow":
            await asyncio.sleep(3)
        crafted = _crafted(name, request) if isinstance(name, str) else None
        if crafted is None:
            replayed = False

            async def replay() -> MutableMapping[str, Any]:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.inner(scope, replay, send)
            return
        status, extra, content = crafted
        raw = [(k.encode(), v.encode()) for k, v in extra.items()] + [(b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": content})


@pytest.fixture(scope="module")
def crafted_url() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    with serving_asgi(recorder, lifespan="on") as port:
        yield f"http://127.0.0.1:{port}/mcp", recorder


class Bridge:
    """The calling client's side of the input bridge: records the log messages routed to it."""

    def __init__(self) -> None:
        self.logs: list[Any] = []

    def can(self, method: str) -> bool:
        return False

    async def ask(self, method: str, params: Any) -> dict[str, Any]:
        raise AssertionError("no request is expected")

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params.data)


async def _outcomes(url: str, names: list[str], *, lanes: bool, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Each name's outcome through a fresh `HttpUpstream`: its result, or (error type, message); plus what the
    progress callback, the log bridge and the change listener saw."""
    monkeypatch.setenv("SWITCHYARD_LANES", "on" if lanes else "off")
    changes: list[frozenset[str]] = []
    relisted = anyio.Event()

    async def listener(_: Upstream, what: frozenset[str]) -> None:
        changes.append(what)
        if len(changes) > 1 and "tools" in what:
            relisted.set()

    upstream = HttpUpstream("crafted", HttpServerConfig(url=url), connect_timeout=10, listener=listener)
    out: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        tg.start_soon(upstream.run)
        assert await upstream.wait_ready(15), upstream.last_error
        assert isinstance(upstream.lane, HttpLane) == lanes
        for name in names:
            progress: list[tuple[float, float | None, str | None]] = []

            async def on_progress(p: float, t: float | None, m: str | None, seen: list[Any] = progress) -> None:
                seen.append((p, t, m))

            bridge = Bridge()
            token = INPUT_BRIDGE.set(bridge)
            arguments = {"region": "eu-west", "text": "hi"} if name == "regional" else {"text": "hi"}
            try:
                result: Any = await upstream.request(
                    "tools/call",
                    {"name": name, "arguments": arguments},
                    timeout=0.5 if name == "slow" else 10,
                    on_progress=on_progress if name == "progress" else None,
                )
            except Exception as exc:
                result = (type(exc).__name__, str(exc))
            finally:
                INPUT_BRIDGE.reset(token)
            if isinstance(result, dict):
                result = {k: v for k, v in result.items() if k != "_meta"}
            out[name] = {"outcome": result, "progress": progress, "logs": bridge.logs}
        if "list-changed" in names:
            with anyio.fail_after(10):
                await relisted.wait()
        out["changes after start"] = [sorted(c) for c in changes[1:]]
        tg.cancel_scope.cancel()
    return out


CASES = [
    "echo",
    "regional",
    "accepted",
    "not-found",
    "server-error",
    "error-body",
    "error-200",
    "redirect-away",
    "wrong-type",
    "progress",
    "list-changed",
    "no-answer",
    "slow",
    "missing-tool",
]


async def test_every_outcome_of_the_lane_equals_the_sdk_transports(
    crafted_url: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, recorder = crafted_url
    sdk = await _outcomes(url, CASES, lanes=False, monkeypatch=monkeypatch)
    sdk_posts = list(recorder.posts)
    recorder.posts.clear()
    lane = await _outcomes(url, CASES, lanes=True, monkeypatch=monkeypatch)

    for name in CASES:
        assert lane[name] == sdk[name], name
    assert lane["changes after start"] == sdk["changes after start"]
    # Real outcomes, not two identical failures.
    assert lane["echo"]["outcome"]["content"][0]["text"] == "hi"
    assert lane["regional"]["outcome"]["content"][0]["text"] == "eu-west:hi"
    assert lane["progress"]["progress"] == [(1.0, 2.0, "step 1"), (2.0, 2.0, "step 2")]
    assert lane["progress"]["logs"] == ["working"]
    assert lane["error-body"]["outcome"] == ("UpstreamError", "crafted: bad args (-32602)")
    assert lane["slow"]["outcome"][0] == "UpstreamTimeout"
    assert "SSE stream ended without a response" in lane["no-answer"]["outcome"][1]
    assert ["tools"] in [c for c in lane["changes after start"] if c == ["tools"]]

    # On the wire: the same headers and the same body (ids and progress tokens aside) for every call.
    def calls(posts: list[tuple[dict[str, str], dict[str, Any]]]) -> list[Any]:
        kept = ("accept", "accept-encoding", "content-type", "user-agent")
        kept += ("mcp-protocol-version", "mcp-method", "mcp-name", "mcp-param-region")
        out: list[Any] = []
        for headers, body in posts:
            if body.get("method") != "tools/call":
                continue
            meta = dict(body["params"].get("_meta") or {})
            meta.pop("progressToken", None)
            params = {**body["params"], "_meta": meta}
            out.append(({k: headers.get(k) for k in kept}, body["method"], params))
        return out

    # A redirect is the one answer the lane hands back to the SDK's path (which owns the rule for following
    # one): that call is POSTed twice, once by each.
    lane_calls = calls(recorder.posts)
    declined = [c for c in lane_calls if c[2]["name"] == "redirect-away"]
    assert len(declined) == 2
    assert declined[0] == declined[1]
    lane_calls.remove(declined[0])
    assert lane_calls == calls(sdk_posts)
    assert len(lane_calls) == len(CASES)
    regional = next(c for c in lane_calls if c[2]["name"] == "regional")
    assert regional[0]["mcp-param-region"] == "eu-west"
    assert regional[0]["mcp-name"] == "regional"


async def test_the_lane_takes_only_the_answer_with_its_requests_id(
    crafted_url: tuple[str, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    # JSON-RPC matches an answer to its request by id. (The SDK's SSE reader takes the first answer it sees and
    # its JSON reader waits out the timeout for a wrong id, so these are compared with the rule, not with it.)
    url, _ = crafted_url
    lane = await _outcomes(url, ["stray-first", "wrong-id-json", "null-id-error"], lanes=True, monkeypatch=monkeypatch)
    assert lane["stray-first"]["outcome"]["content"][0]["text"] == "mine"
    assert lane["null-id-error"]["outcome"] == ("UpstreamError", "crafted: bad args (-32602)")  # the server's own
    kind, message = lane["wrong-id-json"]["outcome"]
    assert kind == "UpstreamError"
    assert "answers another request" in message


async def test_a_transport_failure_reports_the_connection_broken() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    broken: list[str] = []

    async def notify(method: str, params: Any) -> None:
        raise AssertionError("no notification expected")

    lane = HttpLane("gone", f"http://127.0.0.1:{port}/mcp", {}, max_event_bytes=None)
    lane.attach(notify, broken.append)
    with pytest.raises(MCPError) as caught:
        await lane.request("tools/call", {"name": "x"}, stamp=lambda d, o: None, version="2026-07-28", timeout=5)
    assert caught.value.error.code == types.CONNECTION_CLOSED
    assert caught.value.error.message == "Connection closed"
    assert len(broken) == 1
    assert f"127.0.0.1:{port}" in broken[0]
    await lane.aclose()
    assert not lane.open
    with pytest.raises(MCPError):
        await lane.request("tools/call", {"name": "x"}, stamp=lambda d, o: None, version="2026-07-28", timeout=5)


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({}, "http://127.0.0.1:1/mcp", False),
        ({"HTTP_PROXY": "http://proxy:3128"}, "http://mcp.example/mcp", True),
        ({"HTTP_PROXY": "http://proxy:3128"}, "https://mcp.example/mcp", False),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "https://mcp.example/mcp", True),
        ({"ALL_PROXY": "http://proxy:3128"}, "https://mcp.example/mcp", True),
        ({"HTTP_PROXY": "http://proxy:3128", "NO_PROXY": "mcp.example"}, "http://mcp.example/mcp", False),
    ],
)
def test_the_lane_is_not_used_where_the_environment_names_a_proxy(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, expected: bool
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert proxied(url) is expected


def _says(path: Path, text: str) -> bool:
    return path.exists() and path.read_text(encoding="utf-8") == text


async def _file_says(path: Path, text: str) -> None:
    with anyio.fail_after(20):
        while not _says(path, text):  # noqa: ASYNC110 - the server's only signal is a file
            await anyio.sleep(0.05)


@pytest.mark.parametrize("lanes", ["on", "off"])
async def test_cancelling_a_lane_call_cancels_it_on_the_server(
    peers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lanes: str
) -> None:
    """Abandoning the POST is the 2026-07-28 cancellation: the real server's handler sees it, on both paths."""
    monkeypatch.setenv("SWITCHYARD_LANES", lanes)
    marker = tmp_path / "marker"
    with peers.http_fixture_server("progress") as url:
        upstream = HttpUpstream("progress", HttpServerConfig(url=url), connect_timeout=20)
        async with anyio.create_task_group() as tg:
            tg.start_soon(upstream.run)
            assert await upstream.wait_ready(30), upstream.last_error
            assert isinstance(upstream.lane, HttpLane) == (lanes == "on")
            async with anyio.create_task_group() as calls:
                params = {"name": "wait_for_cancel", "arguments": {"marker": str(marker)}}
                calls.start_soon(partial(upstream.request, "tools/call", params, timeout=60))
                await _file_says(marker, "started")
                calls.cancel_scope.cancel()
            await _file_says(marker, "cancelled")
            # The connection is still good after the cancellation.
            result = await upstream.request("tools/call", {"name": "ok", "arguments": {}}, timeout=20)
            assert result["content"][0]["text"] == "ok"
            tg.cancel_scope.cancel()

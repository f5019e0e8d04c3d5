"""`SessionLane` (server/session_lane.py) against the SDK's own legacy session transport, on a real HTTP server.

A real `MCPServer` behind the front's session manager (with its per-session event store), behind
`http._BodyChecks` and the lane, served by uvicorn on 127.0.0.1. Each exchange runs on a fresh 2025-11-25
session, sent raw (httpx2), once with the lane switched off (the SDK's transport: the oracle) and once with it
on; status, headers and the event stream must be equal, event ids and ping timestamps aside. Cases: answers,
tool errors, an unknown tool, progress, log messages, a keep-alive ping, a question to the client
(elicitation) answered by a second POST, the client's cancellation, `Last-Event-ID` replay, the session deleted
during a call, and a call that outlives the session's idle timeout. The lane's own counter says which path served.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import anyio
import httpx2
import pytest
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from pydantic import BaseModel
from sse_starlette import EventSourceResponse

from switchyard.identity import Principal
from switchyard.server.auth import session_owner
from switchyard.server.http import (
    MemoryEventStore,
    _BodyChecks,  # pyright: ignore[reportPrivateUsage] - the layer in front of the lane
    _SessionManager,  # pyright: ignore[reportPrivateUsage] - the front's manager (per-session event stores)
)
from switchyard.server.session_lane import SessionLane, _Stream  # pyright: ignore[reportPrivateUsage]
from switchyard.testing.peers import serving_asgi

pytestmark = pytest.mark.anyio

VERSION = "2025-11-25"
IDLE = 1.5
server = MCPServer("sessions", version="1.0.0")
cancelled: list[str] = []


class Person(BaseModel):
    name: str


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
    """Report progress twice and log once."""
    await ctx.report_progress(1, 2)
    await ctx.info("halfway")
    await ctx.report_progress(2, 2, "done")
    return "counted"


@server.tool()
async def ask(ctx: Context) -> str:
    """Ask the client for a name."""
    answer = await ctx.elicit("Who are you?", Person)
    return f"hello {answer.data.name}" if answer.action == "accept" else answer.action


class App:
    """Lifespan runs the session manager; HTTP goes through `_BodyChecks` and the lane."""

    def __init__(self) -> None:
        self.manager = _SessionManager(
            app=server._lowlevel_server,  # pyright: ignore[reportPrivateUsage]
            event_store=MemoryEventStore(),
            session_idle_timeout=IDLE,
        )
        self.lane = SessionLane(StreamableHTTPASGIApp(self.manager), self.manager)
        self.http = _BodyChecks(self.lane, 1 << 20)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            async with self.manager.run():
                await send({"type": "lifespan.startup.complete"})
                await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        # Stands in for the front's authentication: `x-test-user` names the principal (as `protect` would).
        user = next((v.decode() for k, v in scope["headers"] if k == b"x-test-user"), None)
        if user is not None:
            scope = {**scope, "user": session_owner(Principal(user, "api_key"))}
        await self.http(scope, receive, send)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, App]]:
    app = App()
    with serving_asgi(app, lifespan="on") as port:
        yield f"http://127.0.0.1:{port}/mcp", app


def _normal(text: str) -> str:
    """The stream with event ids and ping times replaced (they differ between any two runs)."""
    text = re.sub(r"(?m)^id: [^\r\n]*", "id: <id>", text)
    return re.sub(r"(: ping - [^\r\n]*\r\n\r\n)+", ": ping\r\n\r\n", text)


def _event_data(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in re.split(r"\r\n|\n", text) if line.startswith("data: {")]


class Session:
    """One raw legacy session: `initialize`, `notifications/initialized` and a `tools/list` (the lane learns a
    session's connection from its first requests)."""

    def __init__(self, http: httpx2.AsyncClient, url: str, user: str | None = None) -> None:
        self.http = http
        self.url = url
        self.id = ""
        self.user = user

    def headers(self) -> dict[str, str]:
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
            "mcp-session-id": self.id,
            "mcp-protocol-version": VERSION,
        }
        if self.user is not None:
            headers["x-test-user"] = self.user
        return headers

    async def open(self, capabilities: dict[str, Any] | None = None) -> Session:
        init = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": VERSION,
                "capabilities": capabilities or {},
                "clientInfo": {"name": "session-lane-test", "version": "1.0"},
            },
        }
        headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        if self.user is not None:
            headers["x-test-user"] = self.user
        response = await self.http.post(self.url, json=init, headers=headers)
        assert response.status_code == 200, response.text
        self.id = response.headers["mcp-session-id"]
        note = await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert note.status_code == 202
        listed = await self.post({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert '"quick"' in listed.text
        return self

    async def post(self, message: dict[str, Any]) -> httpx2.Response:
        return await self.http.post(self.url, content=json.dumps(message).encode(), headers=self.headers())

    async def streamed(self, message: dict[str, Any], once_running: Callable[[], Awaitable[None]]) -> str:
        """POST `message` and read its stream to the end; `once_running()` runs when the first chunk (the priming
        event: the call is running) has arrived."""
        text = ""
        body = json.dumps(message).encode()
        with anyio.fail_after(10):
            async with self.http.stream("POST", self.url, content=body, headers=self.headers()) as response:
                async for chunk in response.aiter_text():
                    if not text:
                        await once_running()
                    text += chunk
        return text

    def call_body(self, rid: int, name: str, arguments: dict[str, Any], **meta: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if meta:
            params["_meta"] = meta
        return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}


async def _owner_and_intruder(http: httpx2.AsyncClient, url: str) -> tuple[Session, Session]:
    """alice's open session, and mallory (another principal) holding its id."""
    alice = await Session(http, url, "alice").open()
    mallory = Session(http, url, "mallory")
    mallory.id = alice.id
    return alice, mallory


def _shape(response: httpx2.Response) -> tuple[int, dict[str, str], str]:
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "mcp-session-id")}
    assert response.headers.get("mcp-session-id")
    return response.status_code, headers, _normal(response.text)


CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("quick", {"text": "hi"}, {}),
    ("quick", {"text": "ünï ☃ \u2028"}, {}),
    ("fails", {}, {}),
    ("missing", {}, {}),
    ("quick", {}, {}),
    ("counts", {}, {"progressToken": "p1"}),
    ("counts", {}, {}),
    ("slow", {"seconds": 0.7}, {}),
]


async def _both(app: App, run: Any) -> dict[bool, Any]:
    """`run()` with the lane off (the SDK) and on; the lane must have served exactly when it was on."""
    out: dict[bool, Any] = {}
    for enabled in (False, True):
        app.lane.enabled = enabled
        before = app.lane.served
        out[enabled] = await run()
        assert (app.lane.served > before) is enabled
    return out


async def test_the_lane_answers_as_the_sdks_session_transport_does(
    served: tuple[str, App], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, app = served
    monkeypatch.setattr(EventSourceResponse, "DEFAULT_PING_INTERVAL", 0.3)
    monkeypatch.setattr(_Stream, "ping_interval", 0.3)

    async def run() -> list[tuple[int, dict[str, str], str]]:
        async with httpx2.AsyncClient(timeout=30) as http:
            session = await Session(http, url).open()
            await session.post({"jsonrpc": "2.0", "id": 2, "method": "logging/setLevel", "params": {"level": "info"}})
            return [
                _shape(await session.post(session.call_body(10 + i, name, args, **meta)))
                for i, (name, args, meta) in enumerate(CASES)
            ]

    out = await _both(app, run)
    assert out[True] == out[False]
    quick_hi, unicode, failed, missing, invalid, progress, no_token, slept = out[True]
    assert quick_hi[1]["content-type"].startswith("text/event-stream")
    assert quick_hi[2].startswith("id: <id>\r\ndata: \r\n\r\nid: <id>\r\nevent: message\r\ndata: {")
    assert _event_data(quick_hi[2])[0]["result"]["content"][0]["text"] == "hi"
    assert _event_data(unicode[2])[0]["result"]["content"][0]["text"] == "ünï ☃ \u2028"
    assert _event_data(failed[2])[0]["result"]["isError"] is True
    assert "error" in _event_data(missing[2])[0] or _event_data(missing[2])[0]["result"]["isError"] is True
    assert "error" in _event_data(invalid[2])[0] or _event_data(invalid[2])[0]["result"]["isError"] is True
    methods = [m.get("method") for m in _event_data(progress[2])]
    assert methods == ["notifications/progress", "notifications/message", "notifications/progress", None]
    assert [m.get("method") for m in _event_data(no_token[2])] == ["notifications/message", None]
    assert slept[2].count(": ping\r\n\r\n") == 1
    assert "slept 0.7" in slept[2]


async def test_a_question_to_the_client_rides_the_calls_stream(served: tuple[str, App]) -> None:
    url, app = served

    async def run() -> tuple[str, int]:
        async with httpx2.AsyncClient(timeout=30) as http:
            session = await Session(http, url).open({"elicitation": {"form": {}}})
            text = ""
            answered = 0
            body = json.dumps(session.call_body(5, "ask", {})).encode()
            async with http.stream("POST", url, content=body, headers=session.headers()) as response:
                async for chunk in response.aiter_text():
                    text += chunk
                    complete = text[: text.rfind("\r\n\r\n") + 1]  # whole events only
                    for message in _event_data(complete):
                        if message.get("method") == "elicitation/create" and not answered:
                            reply = {"jsonrpc": "2.0", "id": message["id"], "result": {"action": "accept"}}
                            reply["result"]["content"] = {"name": "Ada"}
                            answered = (await session.post(reply)).status_code
            return _normal(text), answered

    out = await _both(app, run)
    assert out[True] == out[False]
    text, status = out[True]
    assert status == 202
    messages = _event_data(text)
    assert messages[0]["method"] == "elicitation/create"
    assert messages[0]["params"]["message"] == "Who are you?"
    assert messages[-1]["result"]["content"][0]["text"] == "hello Ada"


async def test_the_clients_cancellation_ends_the_call_with_the_eras_answer(served: tuple[str, App]) -> None:
    url, app = served

    async def run() -> str:
        tag = f"cancel-{app.lane.enabled}"
        async with httpx2.AsyncClient(timeout=30) as http:
            session = await Session(http, url).open()

            async def cancel() -> None:
                note = {"jsonrpc": "2.0", "method": "notifications/cancelled"}
                note["params"] = {"requestId": "6", "reason": "tools/call"}  # ids correlate as "7" ~ 7
                assert (await session.post(note)).status_code == 202

            text = await session.streamed(session.call_body(6, "slow", {"seconds": 30, "tag": tag}), cancel)
        assert tag in cancelled
        return _normal(text)

    out = await _both(app, run)
    assert out[True] == out[False]
    (answer,) = _event_data(out[True])
    assert answer == {"jsonrpc": "2.0", "id": 6, "error": {"code": -32800, "message": "Request cancelled"}}


async def test_a_resuming_client_gets_the_answer_replayed(served: tuple[str, App]) -> None:
    url, app = served

    async def run() -> list[dict[str, Any]]:
        async with httpx2.AsyncClient(timeout=30) as http:
            session = await Session(http, url).open()
            first = await session.post(session.call_body(8, "counts", {}, progressToken=3))
            priming = re.search(r"(?m)^id: ([^\r\n]*)", first.text)
            assert priming is not None
            headers = {**session.headers(), "last-event-id": priming.group(1)}
            text = ""
            with anyio.move_on_after(1.0):
                async with http.stream("GET", url, headers=headers) as response:
                    async for chunk in response.aiter_text():
                        text += chunk
            return _event_data(text)

    out = await _both(app, run)
    assert out[True] == out[False]
    assert out[True][-1]["result"]["content"][0]["text"] == "counted"
    assert len(out[True]) == 4


async def test_deleting_the_session_ends_a_call_in_flight(served: tuple[str, App]) -> None:
    url, app = served

    async def run() -> tuple[str, int]:
        tag = f"delete-{app.lane.enabled}"
        async with httpx2.AsyncClient(timeout=30) as http:
            session = await Session(http, url).open()
            deleted: list[int] = []

            async def delete() -> None:
                deleted.append((await http.delete(url, headers=session.headers())).status_code)

            text = await session.streamed(session.call_body(7, "slow", {"seconds": 30, "tag": tag}), delete)
            with anyio.fail_after(10):
                while tag not in cancelled:  # noqa: ASYNC110 - the tool's own record is the signal
                    await anyio.sleep(0.05)
            after = await session.post(session.call_body(9, "quick", {"text": "x"}))
            assert after.status_code == 404
        return _normal(text), deleted[0]

    out = await _both(app, run)
    assert out[True] == out[False]
    text, deleted = out[True]
    assert deleted == 200
    assert _event_data(text) == []


async def test_a_call_holds_its_session_past_the_idle_timeout(served: tuple[str, App]) -> None:
    url, app = served

    async def run() -> tuple[str, int]:
        async with httpx2.AsyncClient(timeout=30) as http:
            session = await Session(http, url).open()
            answered = await session.post(session.call_body(4, "slow", {"seconds": IDLE * 1.5}))
            await anyio.sleep(IDLE * 1.6)
            expired = await session.post(session.call_body(5, "quick", {"text": "x"}))
            return _normal(answered.text), expired.status_code

    out = await _both(app, run)
    assert out[True] == out[False]
    text, expired = out[True]
    assert f"slept {IDLE * 1.5}" in text
    assert expired == 404


async def test_another_credential_on_the_session_is_told_it_does_not_exist(served: tuple[str, App]) -> None:
    """The lane knows the session, but a call with another principal's credential is the SDK's to refuse."""
    url, app = served
    async with httpx2.AsyncClient(timeout=30) as http:
        alice, mallory = await _owner_and_intruder(http, url)
        served_before = app.lane.served
        refused = await mallory.post(mallory.call_body(3, "quick", {"text": "theirs"}))
        assert refused.status_code == 404
        assert "theirs" not in refused.text
        assert app.lane.served == served_before
        mine = await alice.post(alice.call_body(4, "quick", {"text": "mine"}))
        assert _event_data(mine.text)[0]["result"]["content"][0]["text"] == "mine"
        assert app.lane.served == served_before + 1


async def test_a_client_resuming_while_the_call_runs_gets_the_answer(served: tuple[str, App]) -> None:
    """The client drops the call's stream and resumes it (`GET` + `Last-Event-ID`) before the answer: the answer
    arrives on the resumed stream."""
    url, app = served

    async def run() -> list[dict[str, Any]]:
        async with httpx2.AsyncClient(timeout=30) as http:
            session = await Session(http, url).open()
            body = json.dumps(session.call_body(12, "slow", {"seconds": 1.0})).encode()
            priming = ""
            with anyio.fail_after(10):
                async with http.stream("POST", url, content=body, headers=session.headers()) as response:
                    async for chunk in response.aiter_text():
                        found = re.search(r"(?m)^id: ([^\r\n]*)", chunk)
                        if found is not None:
                            priming = found.group(1)
                            break  # the client goes away, the call runs on
            text = ""
            headers = {**session.headers(), "last-event-id": priming}
            with anyio.move_on_after(5.0):
                async with http.stream("GET", url, headers=headers) as resumed:
                    async for chunk in resumed.aiter_text():
                        text += chunk
                        if "slept" in text:
                            break
            return _event_data(text)

    out = await _both(app, run)
    assert out[True] == out[False]
    assert out[True][-1]["result"]["content"][0]["text"] == "slept 1.0"


async def test_another_credential_cannot_cancel_the_owners_call(served: tuple[str, App]) -> None:
    url, _app = served
    async with httpx2.AsyncClient(timeout=30) as http:
        alice, mallory = await _owner_and_intruder(http, url)

        async def cancel_as_mallory() -> None:
            note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 13}}
            assert (await mallory.post(note)).status_code == 404

        text = await alice.streamed(alice.call_body(13, "slow", {"seconds": 1.0}), cancel_as_mallory)
        assert _event_data(text)[-1]["result"]["content"][0]["text"] == "slept 1.0"

"""`QuietLane`: a 2026-07-28 POST that cannot stream anything to its caller takes the SDK's JSON-answer branch.

Owns one ASGI layer of the HTTP front, in front of the SDK's session manager. For a modern request the SDK's
`handle_modern_request` runs the handler in a task group with a second task watching for the client's
disconnect, a memory stream for notifications and a deferral window: about a sixth of the gateway's
instructions per forwarded call, spent so that progress and log messages can be streamed (as SSE) before the
answer. A request that carries no progress token and no log-level opt-in, and is not `subscriptions/listen`,
can receive neither (the front relays progress only to a token and log messages only to an opted-in request),
so this layer runs the same SDK function with `json_response=True`: the same checks (headers, envelope,
`Mcp-Param-*`), the same handler, the same JSON answer and status. Two things of the streaming branch are kept
here: a client that disconnects cancels the handler (the revision's cancellation), and a call still running
after the SDK's keep-alive interval commits `text/event-stream` and sends the SDK's pings, its answer then
being the stream's final event, as the streaming branch would send it. Inside that, a quiet `tools/call` is
first offered to `ModernLane` (modern_lane.py), which runs the SDK's checks and the request kernel without the
SDK's entry; what it declines runs `handle_modern_request` as above.

Every other request (legacy sessions, other versions, progress or logging requested, unreadable bodies) goes
to the SDK unchanged. `SWITCHYARD_LANES=off` turns the layer off. Does not own the checks or the answer (the
SDK) or the body limit and batch refusal (`http.py`, which hands the body over in the scope).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, cast

import anyio
import mcp_types as types
from mcp.server import _streamable_http_modern as _modern
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchyard.server.modern_lane import ModernLane
from switchyard.upstream.lane import lanes_enabled

__all__ = ["BODY_SCOPE_KEY", "QuietLane", "quiet", "quiet_message"]

logger = logging.getLogger("switchyard.http")

BODY_SCOPE_KEY = "switchyard.body"
"""The request body, put in the scope by the layer that read it (`http._BodyChecks`)."""
_VERSION_HEADER = b"mcp-protocol-version"
_PING = b": ping\r\n\r\n"
_DISCONNECT: Message = {"type": "http.disconnect"}
_QUIET_MAX = 64 * 1024


def quiet(body: bytes) -> bool:
    """Whether the request in `body` can get nothing but its answer (see `quiet_message`)."""
    return quiet_message(body) is not None


def quiet_message(body: bytes) -> dict[str, Any] | None:
    """The request in `body` when it can get nothing but its answer: a JSON-RPC request (not
    `subscriptions/listen`) whose `_meta` asks for no progress and opts in to no log messages; else None. A body
    over `_QUIET_MAX` is not read a second time here: it takes the SDK's branch."""
    if len(body) > _QUIET_MAX:
        return None
    try:
        message: Any = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict):
        return None
    msg = cast(dict[str, Any], message)
    if "id" not in msg or not isinstance(msg.get("method"), str) or msg["method"] == "subscriptions/listen":
        return None
    params: Any = msg.get("params")
    if params is None:
        return msg
    if not isinstance(params, dict):
        return None
    meta: Any = cast(dict[str, Any], params).get("_meta")
    if meta is None:
        return msg
    if not isinstance(meta, dict):
        return None
    return msg if "progressToken" not in meta and types.LOG_LEVEL_META_KEY not in meta else None


class _Answer:
    """The `send` the SDK's JSON branch writes to: passed through, unless the keep-alive committed SSE first."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.sse = False
        self.finished = False
        self._body = bytearray()

    async def __call__(self, message: Message) -> None:
        if not self.sse:
            self.started = True
            await self._send(message)
            return
        if message["type"] != "http.response.body":
            return  # the JSON answer's status and headers: the stream already answered 200
        self._body += message.get("body", b"")
        if not message.get("more_body", False):
            self.finished = True
            event = b"event: message\r\ndata: " + bytes(self._body) + b"\r\n\r\n"
            await self._send({"type": "http.response.body", "body": event, "more_body": False})

    async def keep_alive(self, interval: float) -> None:
        """Commit `text/event-stream` (if nothing was sent yet) and ping every `interval` until cancelled."""
        if self.started:
            return
        self.started = self.sse = True
        headers = _modern._SSE_HEADERS  # pyright: ignore[reportPrivateUsage] - the SDK's own stream headers
        try:
            await self._send({"type": "http.response.start", "status": 200, "headers": headers})
            while not self.finished:
                await self._send({"type": "http.response.body", "body": _PING, "more_body": True})
                await anyio.sleep(interval)
        except Exception:  # the client went away: the watcher cancels the call
            logger.debug("HTTP lane: keep-alive ping not delivered", exc_info=True)


class QuietLane:
    """The ASGI layer (see the module docstring); `manager` is the SDK's session manager behind `app`."""

    def __init__(self, app: ASGIApp, manager: StreamableHTTPSessionManager) -> None:
        self.app = app
        self.manager = manager
        self.modern = ModernLane(manager)
        """Serves the quiet `tools/call` requests itself (modern_lane.py); the rest take the SDK's JSON branch."""
        self.enabled = lanes_enabled()
        self._logged = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = scope.get(BODY_SCOPE_KEY)
        if not isinstance(body, bytes):
            body = b""
        message = quiet_message(body) if self.enabled and body and self._modern(scope) else None
        if message is None:
            await self.app(scope, receive, send)
            return
        if not self._logged:
            self._logged = True
            logger.debug("HTTP lane: requests that can only get their answer take the SDK's JSON branch")
        await self._serve(scope, receive, send, body, message)

    @staticmethod
    def _modern(scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST":
            return False
        version = next((v for k, v in scope["headers"] if k == _VERSION_HEADER), None)
        return version is not None and version.decode("latin-1") in MODERN_PROTOCOL_VERSIONS

    async def _serve(self, scope: Scope, receive: Receive, send: Send, body: bytes, message: dict[str, Any]) -> None:
        manager = self.manager
        answer = _Answer(send)
        disconnected = asyncio.Event()
        handed = False

        async def inner_receive() -> Message:
            # The body once (already read), then only the disconnect the watcher sees.
            nonlocal handed
            if not handed:
                handed = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return _DISCONNECT

        loop = asyncio.get_running_loop()
        interval: float = _modern._SSE_PING_INTERVAL  # pyright: ignore[reportPrivateUsage] - the SDK's keep-alive
        pinger: list[asyncio.Task[None]] = []
        with anyio.CancelScope() as handler_scope:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                disconnected.set()
                handler_scope.cancel()

            watcher = loop.create_task(watch())
            timer = loop.call_later(interval, lambda: pinger.append(loop.create_task(answer.keep_alive(interval))))
            try:
                if await self.modern.serve(scope, inner_receive, answer, message):
                    return
                await _modern.handle_modern_request(
                    manager.app,
                    manager.security_settings,
                    True,
                    manager._lifespan_state,  # pyright: ignore[reportPrivateUsage] - what the manager passes itself
                    scope,
                    inner_receive,
                    answer,
                )
            finally:
                timer.cancel()
                watcher.cancel()
                for task in pinger:
                    task.cancel()

"""`SessionLane`: `tools/call` on a legacy (2025-11-25 and older) HTTP session, without the SDK's per-request
stream machinery.

Owns one ASGI layer of the HTTP front, in front of the SDK's session manager. On a legacy session the SDK runs
every POST through its transport (a pydantic parse of the body, a request stream, an `EventSourceResponse` with
its own task group, ping task and disconnect listener, an SSE writer task), the session's JSON-RPC dispatcher
(memory streams and a task per request) and the transport's message router, then dumps the answer through
pydantic again: about 1.4 M instructions per call more than a 2026-07-28 request costs. For a `tools/call` on a
session the SDK already opened, this layer instead runs the same request kernel the stdio lane runs
(`lane.LaneKernel.legacy`: `ServerRunner.on_request` on the session's own `Connection`, so validation,
middleware, the front's handler, result shaping and error mapping are the SDK's and the front's code) and
writes the SSE answer itself, with the SDK's headers and event framing.

What the lane keeps of the SDK's path:
- the checks: the session exists, is not terminated or expiring, and belongs to the same credential (else the
  SDK answers, with its 404); the SDK's own Host/Origin/Content-Type check; an `Accept` of both JSON and SSE;
- resumability: the priming event (2025-11-25 clients, with the retry interval) and every event stored in the
  session's event store before it is written, under the same stream name, so `Last-Event-ID` replays it;
- the session's idle clock (a call in flight holds the session open);
- notifications of the call (progress, log messages) as events on its stream;
- requests to the client (elicitation, sampling, roots): they ride the session's dispatcher, related to the
  call, so the SDK's router stores them and hands them to this call's stream; the answers come back as POSTs
  the SDK routes to the dispatcher;
- `notifications/cancelled` for the call cancels it and ends its stream with `REQUEST_CANCELLED`, as the SDK's
  legacy wire does (the POST goes on to the SDK, which answers 202);
- a client that drops the stream does not cancel the call (on this era disconnection is not cancellation): the
  answer is still stored for a resuming client; the end of the session (DELETE, idle timeout, shutdown) cancels
  it and ends the stream without an answer, as the SDK's does;
- a keep-alive comment every 15 s (`sse_starlette`'s interval and form).

What it does not keep: `ctx.close_sse_stream` and `ctx.close_standalone_sse_stream` are None on the lane (the
front calls neither). It does not watch for the client's disconnect: the call holds the session's idle clock
until it ends (the SDK's path releases it at the disconnect). A client that resumes the stream while the call
runs gets the call's later events on the resumed stream (the lane feeds the replay's live tail, as the SDK's
router would). Requests to the client reach the stream through the router, so their event ids may be stored
in another order than a concurrent notification's; and the dispatcher's own `notifications/cancelled` for a
question still pending when the client cancels the call may come after the `REQUEST_CANCELLED` answer. Every other POST,
GET and DELETE, any request before the session's `Connection` was seen by the lane's middleware (the first
requests of a session), and anything the checks above refuse go to the SDK unchanged. `SWITCHYARD_LANES=off`
turns the layer off. Does not own the body limit (`http.py`, which hands the body over in the scope), the
kernel (`lane.py`) or the handlers (`mcp.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

import anyio
import mcp_types as types
import pydantic_core
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.runner import _has_modern_envelope  # pyright: ignore[reportPrivateUsage] - the SDK's own era rule
from mcp.server.streamable_http import (
    CONTENT_TYPE_SSE,
    MCP_SESSION_ID_HEADER,
    REQUEST_CANCELLED,
    REQUEST_STREAM_BUFFER_SIZE,
    EventMessage,
    StreamableHTTPServerTransport,
    check_accept_headers,
)
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.dispatcher import CallOptions, coerce_request_id
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher, handler_exception_to_error_data
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS, is_version_at_least
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from switchyard.server.http_lane import BODY_SCOPE_KEY
from switchyard.server.lane import LaneKernel, progress_params, progress_token
from switchyard.upstream.lane import lanes_enabled

__all__ = ["SessionLane"]

logger = logging.getLogger("switchyard.http")

_TOOLS_CALL = b'"tools/call"'
_CANCELLED = b'"notifications/cancelled"'
_SESSION_HEADER = MCP_SESSION_ID_HEADER.encode("latin-1")
_VERSION_HEADER = b"mcp-protocol-version"
_TRANSPORT = TransportContext(kind="jsonrpc", can_send_request=True)
"""What the SDK's dispatcher stamps on a legacy SSE session's requests."""
_HEADERS: Final = (
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"content-type", CONTENT_TYPE_SSE.encode()),
)
"""The SDK's SSE answer headers as `EventSourceResponse` sends them (then `mcp-session-id`, then
`x-accel-buffering`); tests/core/test_session_lane.py compares them with the SDK's."""
_SEP = "\r\n"


def _event(event_id: str | None, data: str) -> bytes:
    """One `message` event in `sse_starlette`'s framing (id, event, data); JSON text holds no line breaks."""
    head = f"id: {event_id}{_SEP}" if event_id is not None else ""
    return f"{head}event: message{_SEP}data: {data}{_SEP}{_SEP}".encode("utf-8", errors="replace")


def _dumps(message: Mapping[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class _Stream:
    """The SSE answer of one lane call: every event stored in the session's event store, then written."""

    ping_interval: float = 15.0
    """`sse_starlette`'s default keep-alive interval (tests shorten it)."""

    def __init__(self, send: Send, transport: StreamableHTTPServerTransport, stream_id: str) -> None:
        self._send = send
        self._transport = transport
        self._store = transport._event_store  # pyright: ignore[reportPrivateUsage] - the session's store view
        self.stream_id = stream_id
        self.finished = False
        self._tasks: list[asyncio.Task[None]] = []
        self._routed: MemoryObjectReceiveStream[EventMessage] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def start(self, session_id: str, version: str) -> None:
        """Send the headers and, for a client that can resume (2025-11-25), the priming event."""
        headers = [*_HEADERS, (_SESSION_HEADER, session_id.encode("latin-1")), (b"x-accel-buffering", b"no")]
        await self._send({"type": "http.response.start", "status": 200, "headers": headers})
        if self._store is not None and is_version_at_least(version, "2025-11-25"):
            event_id = await self._store.store_event(self.stream_id, None)
            retry: Any = self._transport._retry_interval  # pyright: ignore[reportPrivateUsage]
            tail = f"retry: {retry}{_SEP}" if retry is not None else ""
            await self._write(f"id: {event_id}{_SEP}data: {_SEP}{tail}{_SEP}".encode())
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.ping_interval, lambda: self._spawn(self._ping()))

    def _spawn(self, work: Any) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(work))

    async def _write(self, body: bytes, *, more: bool = True) -> None:
        # uvicorn drops what is sent after the client went away: the call goes on, its events stay stored.
        await self._send({"type": "http.response.body", "body": body, "more_body": more})

    async def _ping(self) -> None:
        while not self.finished:
            await self._write(f": ping - {datetime.now(UTC)}{_SEP}{_SEP}".encode())
            await anyio.sleep(self.ping_interval)

    async def message(self, wire: dict[str, Any], model: types.JSONRPCMessage) -> None:
        """Store and write one message of the call (dropped once the call's answer was written)."""
        if self.finished:
            return
        event_id = await self._store.store_event(self.stream_id, model) if self._store is not None else None
        await self._tail(model, event_id)
        await self._write(_event(event_id, _dumps(wire)))

    async def _tail(self, model: types.JSONRPCMessage, event_id: str | None) -> None:
        """Hand the message to a client that resumed this stream (`GET` with `Last-Event-ID`) while the call
        runs: the SDK's replay registers a live tail under the stream's name, which its router would feed."""
        pair = self._transport._request_streams.get(self.stream_id)  # pyright: ignore[reportPrivateUsage]
        if pair is not None and pair[1] is not self._routed:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await pair[0].send(EventMessage(model, event_id))

    def route(self) -> None:
        """Have the SDK's message router hand this call's related messages (requests to the client, and their
        cancellations) to this stream, as it does for the SDK's own request streams."""
        streams = self._transport._request_streams  # pyright: ignore[reportPrivateUsage] - the router's map
        if self._routed is not None or self.stream_id in streams:
            return  # routed already, or a resumed client's live tail takes the router's messages
        pair = anyio.create_memory_object_stream[EventMessage](REQUEST_STREAM_BUFFER_SIZE)
        streams[self.stream_id] = pair
        self._routed = pair[1]
        self._spawn(self._forward(pair[1]))

    async def _forward(self, reader: MemoryObjectReceiveStream[EventMessage]) -> None:
        try:
            async for item in reader:
                await self._forwarded(item)
        except (anyio.ClosedResourceError, anyio.EndOfStream):
            pass

    async def _forwarded(self, item: EventMessage) -> None:
        if not self.finished:
            data = item.message.model_dump_json(by_alias=True, exclude_unset=True)
            await self._write(_event(item.event_id, data))

    async def finish(self, wire: dict[str, Any] | None, model: types.JSONRPCMessage | None) -> None:
        """Write the call's last event (its answer; none when the session ended) and end the response."""
        self._stop()
        if self._routed is not None:  # what the router already queued goes out before the answer
            while True:
                try:
                    item = self._routed.receive_nowait()
                except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.EndOfStream):
                    break
                await self._forwarded(item)
        self.finished = True
        if wire is None or model is None:
            await self._write(b"", more=False)
            return
        event_id = await self._store.store_event(self.stream_id, model) if self._store is not None else None
        await self._tail(model, event_id)
        await self._write(_event(event_id, _dumps(wire)), more=False)

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in self._tasks:
            task.cancel()

    def close(self) -> None:
        """Release what the stream holds (idempotent): its timer, tasks and its entry in the router's map."""
        self.finished = True
        self._stop()
        if self._routed is not None:
            streams = self._transport._request_streams  # pyright: ignore[reportPrivateUsage]
            pair = streams.get(self.stream_id)
            if pair is not None and pair[1] is self._routed:
                del streams[self.stream_id]
                pair[0].close()
                pair[1].close()
            self._routed = None


@dataclass(eq=False)
class _Call:
    """The `DispatchContext` of one lane call: its notifications are written to its stream; its requests to
    the client ride the session's dispatcher, related to the call (so the router brings them to the stream)."""

    stream: _Stream
    request_id: types.RequestId
    progress_token: types.ProgressToken | None
    connection: Connection
    message_metadata: ServerMessageMetadata
    scope: anyio.CancelScope
    closed: bool = False
    cancelled: bool = False
    """The client cancelled the call (`notifications/cancelled`)."""
    ended: bool = False
    """The session ended while the call ran."""
    _cancel_event: anyio.Event | None = None

    @property
    def cancel_requested(self) -> anyio.Event:
        """Set once the client cancels (made when first asked for)."""
        if self._cancel_event is None:
            self._cancel_event = anyio.Event()
            if self.cancelled:
                self._cancel_event.set()
        return self._cancel_event

    def cancel(self, *, session_ended: bool = False) -> None:
        """Stop the call: the client cancelled it, or its session ended."""
        if session_ended:
            self.ended = True
        else:
            self.cancelled = True
        if self._cancel_event is not None:
            self._cancel_event.set()
        self.scope.cancel()

    @property
    def transport(self) -> TransportContext:
        """A legacy SSE session can carry requests to the client."""
        return _TRANSPORT

    @property
    def can_send_request(self) -> bool:
        """While the call runs."""
        return not self.closed

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        """Ask the client, on the session's dispatcher (which matches the answer the client POSTs back)."""
        dispatcher = self.connection.outbound
        if self.closed or not isinstance(dispatcher, JSONRPCDispatcher):
            raise NoBackChannelError(method)
        self.stream.route()
        return await cast(JSONRPCDispatcher[Any], dispatcher).send_raw_request(
            method, params, opts, _related_request_id=self.request_id
        )

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None) -> None:
        """Write a notification of the call to its stream (dropped once the call finished)."""
        if self.closed:
            return
        wire: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            wire["params"] = dict(params)
        await self.stream.message(wire, types.JSONRPCNotification.model_construct(**wire))

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress when the client asked for it."""
        if self.progress_token is not None:
            await self.notify("notifications/progress", progress_params(self.progress_token, progress, total, message))


def _error(request_id: types.RequestId, error: types.ErrorData) -> tuple[dict[str, Any], types.JSONRPCMessage]:
    wire = {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": error.model_dump(by_alias=True, mode="json", exclude_unset=True),
    }
    return wire, types.JSONRPCError.model_construct(jsonrpc="2.0", id=request_id, error=error)


class SessionLane:
    """The ASGI layer (see the module docstring); `manager` is the SDK's session manager behind `app`.

    Adds one middleware to the manager's server, which tells the lane each legacy session's `Connection`.
    """

    def __init__(self, app: ASGIApp, manager: StreamableHTTPSessionManager) -> None:
        self.app = app
        self.manager = manager
        self.enabled = lanes_enabled()
        self._kernel = LaneKernel(manager.app, "HTTP session lane")
        self._connections: dict[str, Connection] = {}
        """Session id -> the session's connection, from its first request through the middleware until the
        session ends (the connection's exit stack removes it)."""
        self._lifespan: Any = {}
        self._calls: dict[str, dict[types.RequestId, _Call]] = {}
        """Session id -> its lane calls in flight, by request id (cancellation and the session's end)."""
        self._announced = False
        self.served = 0
        """Calls the lane answered (tests and benchmarks read it)."""
        if self.enabled:
            manager.app.middleware.append(self._track)

    # --- sessions --------------------------------------------------------------------------------------------

    async def _track(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            connection: Any = getattr(ctx.session, "_connection", None)
            if isinstance(connection, Connection) and connection.session_id is not None:
                session_id = connection.session_id
                if session_id not in self._connections:
                    self._lifespan = ctx.lifespan_context
                    self._connections[session_id] = connection
                    connection.exit_stack.callback(self._session_ended, session_id)
        return await call_next(ctx)

    def _session_ended(self, session_id: str) -> None:
        self._connections.pop(session_id, None)
        for call in list(self._calls.pop(session_id, {}).values()):
            call.cancel(session_ended=True)

    # --- requests ----------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = scope.get(BODY_SCOPE_KEY)
        if self.enabled and isinstance(body, bytes) and scope["type"] == "http" and scope["method"] == "POST":
            if _TOOLS_CALL in body and await self._take(scope, send, body):
                return
            if self._calls and _CANCELLED in body:
                self._cancel(scope, body)
        await self.app(scope, receive, send)

    def _session(self, scope: Scope) -> tuple[str, str | None] | None:
        """(session id, protocol version header) of a request on a legacy session, else None."""
        session_id: str | None = None
        version: str | None = None
        for key, value in scope["headers"]:
            if key == _SESSION_HEADER and session_id is None:  # the first, as the SDK reads headers
                session_id = value.decode("latin-1")
            elif key == _VERSION_HEADER and version is None:
                version = value.decode("latin-1")
        if session_id is None or (version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS):
            return None
        return session_id, version

    def _owned(self, scope: Scope, session_id: str) -> bool:
        """The request carries the credential that opened the session (the SDK's rule, else its 404)."""
        user = scope.get("user")
        requestor = authorization_context(user) if isinstance(user, AuthenticatedUser) else None
        return requestor == self.manager._session_owners.get(session_id)  # pyright: ignore[reportPrivateUsage]

    def _cancel(self, scope: Scope, body: bytes) -> None:
        """A client's `notifications/cancelled` for one of the session's lane calls cancels it (only a
        cancellation, from the session's owner; the POST then goes on to the SDK, which answers it)."""
        found = self._session(scope)
        calls = self._calls.get(found[0]) if found is not None else None
        if not calls or found is None or not self._owned(scope, found[0]):
            return
        try:
            message: Any = pydantic_core.from_json(body)
        except ValueError:
            return
        if not isinstance(message, dict) or cast(dict[str, Any], message).get("method") != "notifications/cancelled":
            return
        params: Any = cast(dict[str, Any], message).get("params")
        rid: Any = cast(Mapping[str, Any], params).get("requestId") if isinstance(params, Mapping) else None
        if isinstance(rid, str | int) and not isinstance(rid, bool):
            call = calls.get(coerce_request_id(rid))
            if call is not None:
                call.cancel()

    async def _take(self, scope: Scope, send: Send, body: bytes) -> bool:
        """Serve the request when every check of the module docstring passes; False leaves it to the SDK."""
        found = self._session(scope)
        if found is None:
            return False
        session_id, version = found
        manager = self.manager
        transport = manager._server_instances.get(session_id)  # pyright: ignore[reportPrivateUsage]
        connection = self._connections.get(session_id)
        if (
            transport is None
            or connection is None
            or transport.is_terminated
            or transport.is_json_response_enabled
            or (transport.idle_scope is not None and transport.idle_scope.cancel_called)
            or not connection.initialize_accepted
            or connection.protocol_version in MODERN_PROTOCOL_VERSIONS
        ):
            return False
        if not self._owned(scope, session_id):
            return False  # the SDK answers as if the session did not exist
        request = Request(scope)
        if await transport._security.validate_request(request, is_post=True) is not None:  # pyright: ignore[reportPrivateUsage]
            return False
        if check_accept_headers(request) != (True, True) or not transport._check_content_type(request):  # pyright: ignore[reportPrivateUsage]
            return False
        try:
            parsed: Any = pydantic_core.from_json(body)  # the SDK's parser: the same bodies refused
        except ValueError:
            return False
        if not isinstance(parsed, dict):
            return False
        msg = cast(dict[str, Any], parsed)
        ident: Any = msg.get("id")
        raw_params: Any = msg.get("params")
        if (
            msg.get("jsonrpc") != "2.0"
            or msg.get("method") != "tools/call"
            or not isinstance(ident, str | int)
            or isinstance(ident, bool)
            or not isinstance(raw_params, dict)
            or "result" in msg
            or "error" in msg
        ):
            return False
        params = cast(dict[str, Any], raw_params)
        calls = self._calls.get(session_id, {})
        stream_id = str(ident)
        if _has_modern_envelope(params) or coerce_request_id(ident) in calls or stream_id in transport._request_streams:  # pyright: ignore[reportPrivateUsage]
            return False  # the SDK answers these (a modern envelope on a session is its error to give)
        if not self._announced:
            self._announced = True
            logger.debug("HTTP session lane: serving tools/call on legacy sessions")
        await self._serve(
            transport=transport,
            connection=connection,
            session_id=session_id,
            version=version,
            request=request,
            ident=ident,
            params=params,
            send=send,
        )
        return True

    async def _serve(
        self,
        *,
        transport: StreamableHTTPServerTransport,
        connection: Connection,
        session_id: str,
        version: str | None,
        request: Request,
        ident: types.RequestId,
        params: dict[str, Any],
        send: Send,
    ) -> None:
        stream = _Stream(send, transport, str(ident))
        metadata = ServerMessageMetadata(request_context=request, can_send_request=True)
        scope = anyio.CancelScope()  # entered below; a cancellation before that still takes effect
        call = _Call(stream, ident, progress_token(params), connection, metadata, scope)
        key = coerce_request_id(ident)
        self._calls.setdefault(session_id, {})[key] = call
        idle = _hold(transport)
        try:
            answer: tuple[dict[str, Any], types.JSONRPCMessage] | None = None
            with scope:
                await stream.start(session_id, version or types.DEFAULT_NEGOTIATED_VERSION)
                try:
                    result = await self._kernel.legacy(connection, self._lifespan, call, params)
                    wire = {"jsonrpc": "2.0", "id": ident, "result": result}
                    answer = wire, types.JSONRPCResponse.model_construct(jsonrpc="2.0", id=ident, result=result)
                except Exception as exc:
                    error = handler_exception_to_error_data(exc) or types.ErrorData(
                        code=types.INTERNAL_ERROR, message=""
                    )
                    answer = _error(ident, error)
                finally:
                    call.closed = True
            if call.ended or transport.is_terminated:
                answer = None  # the session ended: no answer, as the SDK's stream ends
            elif call.cancelled:  # the client cancelled: the era's answer, whatever the handler returned
                answer = _error(ident, types.ErrorData(code=REQUEST_CANCELLED, message="Request cancelled"))
            self.served += 1
            await stream.finish(*(answer if answer is not None else (None, None)))
        finally:
            stream.close()
            calls = self._calls.get(session_id)
            if calls is not None and calls.get(key) is call:
                del calls[key]
                if not calls:
                    del self._calls[session_id]
            if idle:
                _release(transport)


def _hold(transport: StreamableHTTPServerTransport) -> bool:
    """Count a call in flight on the session's idle clock, as the transport's `handle_request` does."""
    idle = transport.idle_scope
    if idle is None or transport._idle_timeout is None:  # pyright: ignore[reportPrivateUsage]
        return False
    transport._requests_in_flight += 1  # pyright: ignore[reportPrivateUsage]
    idle.deadline = math.inf
    return True


def _release(transport: StreamableHTTPServerTransport) -> None:
    transport._requests_in_flight -= 1  # pyright: ignore[reportPrivateUsage]
    idle, timeout = transport.idle_scope, transport._idle_timeout  # pyright: ignore[reportPrivateUsage]
    if not transport._requests_in_flight and idle is not None and timeout is not None:  # pyright: ignore[reportPrivateUsage]
        idle.deadline = anyio.current_time() + timeout

"""`FrontLane`: `tools/call` on the stdio connection, run by the SDK's request kernel without its dispatcher.

Owns the hot path of a tool call on the stdio front. The SDK's JSON-RPC dispatcher parses every line into
pydantic message models, hands it through memory streams and a task per request, and serialises the answer
the same way back through a writer task: for a gateway, whose handler only forwards, that machinery costs more
CPU than the call itself. The lane takes a `tools/call` line off the reader, and runs it through the very
kernel the dispatcher would have called (`ServerRunner.on_request` for a handshake-era connection, `serve_one`
with a per-request `Connection` for a 2026-07-28 one, exactly as `mcp.server.runner` does), with a small
dispatch context of its own, then writes the answer line itself. So validation, middleware, the front's
handler, result shaping and error mapping are the SDK's and the front's own code; only the transport plumbing
is skipped (and, for plain params, the two checks and the span named in the last paragraph).

What the lane leaves to the SDK (the line goes on to the dispatcher unchanged): every other method, any
request before the connection's era is settled, and the request that settles it (the SDK's dispatcher picks
its serving loop from the first request it sees, so it must see the same one), a request
the modern validation ladder rejects (the SDK answers it with the spec's error), an enveloped request on a
handshake connection, ids that are not strings or integers, and all answers to the gateway's own requests.
Cancellation is honoured for lane requests (`notifications/cancelled` interrupts the call and silences its
answer; the notification still reaches the SDK). Requests a handshake-era call pushes to the client
(elicitation, sampling, roots) ride the connection's own dispatcher, so their answers are matched there.
`SWITCHYARD_LANES=off` turns the lane off. Does not own the streams (stdio.py) or the handlers (mcp.py).

The kernel's two request validations and its OpenTelemetry span are the one part the lane may leave out, for
a `tools/call` whose params are *plain* (`name` a string, `arguments` an object, `_meta` holding only the
modern envelope and a progress token; nothing else) while no tracer provider is configured. Plain params are
the ones the SDK's validation accepts as they are (checked against it in tests/core/test_front_lane.py), and
without a provider the span records nothing and carries no context the call could propagate. Every other
request, and every request while tracing is configured, runs the whole kernel. The handler, the front's own
middleware, result shaping (`_serialize`) and error mapping are the kernel's in both cases.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import anyio
import anyio.abc
import mcp_types as types
from mcp.server._otel import OpenTelemetryMiddleware  # pyright: ignore[reportPrivateUsage] - the SDK's span
from mcp.server.connection import Connection, NotifyOnlyOutbound
from mcp.server.context import HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import HandlerEntry
from mcp.server.runner import (
    ServerRunner,
    _apply_middleware,  # pyright: ignore[reportPrivateUsage] - the SDK's own chain step
    _dump_result,  # pyright: ignore[reportPrivateUsage]
    _extract_meta,  # pyright: ignore[reportPrivateUsage] - the SDK's own reading of `_meta`, reused exactly
    _has_modern_envelope,  # pyright: ignore[reportPrivateUsage] - the SDK's own era rule, reused exactly
    _NoServerRequestsDispatchContext,  # pyright: ignore[reportPrivateUsage]
    aclose_shielded,
    modern_error_data,
    serve_one,
)
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.shared.inbound import InboundLadderRejection, classify_inbound_request
from mcp.shared.jsonrpc_dispatcher import handler_exception_to_error_data
from mcp.shared.transport_context import TransportContext
from mcp_types import ClientCapabilities, InitializeRequestParams
from mcp_types import methods as _methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from switchyard.upstream.lane import tracing_active

__all__ = ["EnvelopeCache", "FrontLane", "LaneKernel", "progress_params", "progress_token"]

logger = logging.getLogger("switchyard.front")

_TOOLS_CALL = b'"tools/call"'
_CANCELLED = b'"notifications/cancelled"'
_SHUTDOWN_WRITE_TIMEOUT = 2.0
_TRANSPORT = TransportContext(kind="jsonrpc", can_send_request=True)
_GONE = (ConnectionError, OSError, RuntimeError)
"""What writing to a client that went away raises (a closed pipe, a closed transport)."""


_ENVELOPE_KEYS = frozenset(
    {types.PROTOCOL_VERSION_META_KEY, types.CLIENT_INFO_META_KEY, types.CLIENT_CAPABILITIES_META_KEY}
)
"""The modern envelope's `_meta` keys: the SDK's inbound ladder and `Connection.from_envelope` vetted them."""
_PLAIN_KEYS = frozenset({"name", "arguments", "_meta"})
_KEPT_ENVELOPES = 8
"""Distinct modern envelopes each memo keeps: `LaneKernel`'s verdicts, `EnvelopeCache`'s typed forms."""

Call = Callable[[ServerRequestContext[Any, Any]], Awaitable[HandlerResult]]


def plain_call_params(params: Mapping[str, Any], *, modern: bool) -> bool:
    """True when `tools/call` params hold nothing the SDK's request validation could reject or change: a string
    `name`, an object `arguments` (optional), and a `_meta` object (optional) with only a string or integer
    `progressToken` and, on a modern request, the envelope keys the inbound ladder already checked."""
    if not isinstance(params.get("name"), str) or not _PLAIN_KEYS.issuperset(params):
        return False
    arguments: Any = params.get("arguments", {})
    if not isinstance(arguments, dict):
        return False
    meta: Any = params.get("_meta", {})
    if not isinstance(meta, dict):
        return False
    for key, value in cast(dict[str, Any], meta).items():
        if key == "progressToken":
            if not isinstance(value, str | int) or isinstance(value, bool):
                return False
        elif not (modern and key in _ENVELOPE_KEYS):
            return False
    return True


def _dumps(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8", errors="replace") + b"\n"


@dataclass(eq=False)
class _LaneContext:
    """The `DispatchContext` of one lane request: notifications and progress are written by the lane; a
    server-to-client request rides the connection's dispatcher (handshake era only)."""

    lane: FrontLane
    request_id: types.RequestId
    progress_token: types.ProgressToken | None
    connection: Connection | None
    closed: bool = False
    cancelled: bool = False
    """The client cancelled the request (`notifications/cancelled`): its answer is not written."""
    _cancel_event: anyio.Event | None = None

    @property
    def cancel_requested(self) -> anyio.Event:
        """Set once the client cancels; made when first asked for (most requests never are: one event less
        per call)."""
        if self._cancel_event is None:
            self._cancel_event = anyio.Event()
            if self.cancelled:
                self._cancel_event.set()
        return self._cancel_event

    def cancel(self) -> None:
        """The client cancelled the request."""
        self.cancelled = True
        if self._cancel_event is not None:
            self._cancel_event.set()

    @property
    def transport(self) -> TransportContext:
        """A full-duplex pipe."""
        return _TRANSPORT

    @property
    def can_send_request(self) -> bool:
        """While the request runs, on a handshake-era connection."""
        return self.connection is not None and not self.closed

    @property
    def message_metadata(self) -> None:
        """stdio attaches no metadata."""
        return None

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None
    ) -> dict[str, Any]:
        """Send a request to the client on the connection's dispatcher (which matches its answer)."""
        if self.connection is None or self.closed:
            raise NoBackChannelError(method)
        return await self.connection.outbound.send_raw_request(method, params, opts)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None) -> None:
        """Write a notification line (dropped once the request finished)."""
        if self.closed:
            return
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = dict(params)
        await self.lane.write(message)

    async def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress when the client asked for it."""
        if self.progress_token is not None:
            await self.notify("notifications/progress", progress_params(self.progress_token, progress, total, message))


@dataclass(eq=False)
class _InFlight:
    task: anyio.TaskHandle[None]
    """Cancelled by the client's `notifications/cancelled` (each anyio task runs in a cancel scope of its own)."""
    dctx: _LaneContext


def progress_params(
    token: types.ProgressToken, progress: float, total: float | None, message: str | None
) -> dict[str, Any]:
    """The params of a `notifications/progress` (as the SDK's dispatch context builds them)."""
    params: dict[str, Any] = {"progressToken": token, "progress": progress}
    if total is not None:
        params["total"] = total
    if message is not None:
        params["message"] = message
    return params


def progress_token(params: Mapping[str, Any]) -> types.ProgressToken | None:
    """The request's progress token (a string or integer in `_meta`), else None."""
    meta: Any = params.get("_meta")
    token: Any = cast(Mapping[str, Any], meta).get("progressToken") if isinstance(meta, Mapping) else None
    return token if isinstance(token, str | int) and not isinstance(token, bool) else None


class LaneKernel:
    """The SDK's request kernel for one lane's `tools/call` (module docstring): the whole of
    `ServerRunner.on_request`, or for plain params the same chain without its validations and span. Shared by
    the stdio lane and the HTTP session lane (`session_lane.py`); `label` names the lane in debug logs."""

    def __init__(self, server: Any, label: str) -> None:
        self._server = server
        self._label = label
        self._plain_seen = False
        self._valid_envelopes: list[dict[str, Any]] = []
        self._middleware: tuple[list[Any], list[Any]] = ([], [])
        """The server's middleware as last seen, and that list without OpenTelemetry's (rebuilt on a change)."""

    def plain(self, params: dict[str, Any], *, modern: bool) -> HandlerEntry[Any] | None:
        """The `tools/call` handler when this request may skip the kernel's validations and span (module
        docstring), else None."""
        if not plain_call_params(params, modern=modern) or tracing_active():
            return None
        if modern and not self._valid_envelope(params.get("_meta")):
            return None
        return self._server.get_request_handler("tools/call")

    def _valid_envelope(self, meta: Any) -> bool:
        """Whether the modern envelope in `meta` passes the SDK's request validation. The inbound ladder checks
        the version but lets a `null` or mis-shaped `clientCapabilities` or `clientInfo` through, which the
        kernel's validation then rejects with -32602. The verdict for the last few valid envelopes is kept (the
        raw values compared, so an absent key and a `null` one differ); an invalid one runs the whole kernel."""
        if not isinstance(meta, dict):
            return False
        envelope = {k: v for k, v in cast(dict[str, Any], meta).items() if k in _ENVELOPE_KEYS}
        if envelope in self._valid_envelopes:
            return True
        version = envelope.get(types.PROTOCOL_VERSION_META_KEY)
        if not isinstance(version, str):
            return False
        try:
            _methods.validate_client_request("tools/call", version, {"name": "-", "_meta": envelope})
        except (ValueError, KeyError, TypeError):  # pydantic's ValidationError is a ValueError
            return False
        # A copy: the request's own dicts may be changed by later stages.
        self._valid_envelopes = [copy.deepcopy(envelope), *self._valid_envelopes[: _KEPT_ENVELOPES - 1]]
        return True

    def _lane_middleware(self) -> list[Any]:
        """The server's middleware minus OpenTelemetry's (the lane opens no span), recomputed only when the
        server's list changed (a list compare is one C loop; the filter's `isinstance` on a protocol is not)."""
        seen, kept = self._middleware
        current = self._server.middleware
        if current != seen:
            kept = [m for m in current if not isinstance(m, OpenTelemetryMiddleware)]
            self._middleware = (list(current), kept)
        return kept

    async def run(
        self, runner: ServerRunner[Any], dctx: Any, params: dict[str, Any], entry: HandlerEntry[Any]
    ) -> dict[str, Any]:
        """`runner.on_request(dctx, "tools/call", params)` for params `plain` accepted, without the validations
        they pass anyway and the span that would record nothing."""
        if not self._plain_seen:
            self._plain_seen = True
            logger.debug("%s: plain tools/call params skip the kernel's validation and span", self._label)
        version = runner.connection.protocol_version
        middleware = self._lane_middleware()
        # The SDK's `_extract_meta` validates the whole params as `RequestParams` to read `_meta`; the other keys
        # are extras it keeps and drops again, so `_meta` alone gives the same meta (or the same None).
        meta = _extract_meta({"_meta": params["_meta"]}) if "_meta" in params else None
        # The handler's typed params (the front reads `ctx.params`); pydantic-core builds them faster than
        # `model_construct`.
        typed = types.CallToolRequestParams.model_validate(
            {"name": params["name"], "arguments": params.get("arguments")}
        )

        async def inner(ctx: ServerRequestContext[Any, Any]) -> HandlerResult:
            result = await entry.handler(ctx, typed)
            if isinstance(result, types.ErrorData):
                raise MCPError.from_error_data(result)
            return runner._serialize(ctx.method, version, result)  # pyright: ignore[reportPrivateUsage]

        call: Call = inner
        for step in reversed(middleware):
            call = partial(_apply_middleware, step, call)
        ctx = runner._make_context(dctx, "tools/call", params, meta, version)  # pyright: ignore[reportPrivateUsage]
        return _dump_result(await call(ctx))

    async def legacy(self, connection: Connection, lifespan: Any, dctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        """`tools/call` on a handshake-era connection, errors mapped as the SDK dispatcher maps them."""
        runner = ServerRunner(self._server, connection, lifespan)
        try:
            entry = self.plain(params, modern=False)
            if entry is None:
                return await runner.on_request(dctx, "tools/call", params)
            return await self.run(runner, dctx, params, entry)
        except Exception as exc:
            error = handler_exception_to_error_data(exc)
            if error is None:
                logger.exception("handler for 'tools/call' raised")
                error = types.ErrorData(code=0, message=str(exc))  # the SDK dispatcher's catch-all, kept
            raise MCPError.from_error_data(error) from None

    async def modern(self, connection: Connection, lifespan: Any, dctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        """`tools/call` on a 2026-07-28 per-request `connection`, as `serve_one` runs it; raises what the kernel
        raises (each lane maps errors as its SDK entry does)."""
        entry = self.plain(params, modern=True)
        if entry is None:
            return await serve_one(
                self._server, dctx, "tools/call", params, connection=connection, lifespan_state=lifespan
            )
        runner = ServerRunner(self._server, connection, lifespan)
        try:
            return await self.run(runner, dctx, params, entry)
        finally:
            # As `serve_one` does; a per-request connection's exit stack is almost always empty, and the
            # shielded, bounded scope around closing it costs more than the call's own bookkeeping.
            if getattr(connection.exit_stack, "_exit_callbacks", True):
                await aclose_shielded(connection)


class EnvelopeCache:
    """`Connection.from_envelope(...)` for each modern request, keeping the typed forms of recent envelopes.

    A client sends the same envelope with every call: its typed client info and capabilities (two pydantic
    validations) are kept for the last `size` distinct envelopes and reused while the raw values are equal;
    each request still gets a connection of its own. Equal is Python's `==`, for which 1, 1.0 and true are the
    same: two envelopes that differ only so share typed forms. The SDK's validation accepts all three where it
    wants a boolean, so only a free-form value (under `experimental`) can show the other one's spelling.
    """

    def __init__(self, outbound: Any, *, size: int = _KEPT_ENVELOPES) -> None:
        self._outbound = outbound
        self._size = max(1, size)
        self._kept: list[tuple[str, Any, Any, InitializeRequestParams | None, ClientCapabilities | None]] = []
        """(version, raw client info, raw capabilities, and their typed forms), most recent first."""

    def connection(self, version: str, client_info: Any, capabilities: Any) -> Connection:
        """The connection `Connection.from_envelope(version, client_info, capabilities)` would build."""
        for kept in self._kept:
            if kept[0] == version and kept[1] == client_info and kept[2] == capabilities:
                connection = Connection(self._outbound, protocol_version=version, client_params=kept[3])
                connection.client_capabilities = kept[4]
                connection.initialized.set()  # as `from_envelope` does: a modern request's connection is born ready
                return connection
        connection = Connection.from_envelope(version, client_info, capabilities, outbound=self._outbound)
        # Copies: the raw values are the request's own dicts, which later stages may change.
        entry = (
            version,
            copy.deepcopy(client_info),
            copy.deepcopy(capabilities),
            connection.client_params,
            connection.client_capabilities,
        )
        self._kept = [entry, *self._kept[: self._size - 1]]
        return connection


class FrontLane:
    """The lane of one stdio connection; `take` is called with every line the client sends."""

    def __init__(self, server: Any, writer: asyncio.StreamWriter, task_group: anyio.abc.TaskGroup) -> None:
        self._server = server
        self._writer = writer
        self._tg = task_group
        self._era: str | None = None
        """"legacy" or "modern" once the connection's first request decided it, as the SDK decides."""
        self._connection: Connection | None = None
        self._lifespan: Any = {}
        self._in_flight: dict[types.RequestId, _InFlight] = {}
        self._outbound = NotifyOnlyOutbound(cast(Any, self))
        self._announced = False
        self._kernel = LaneKernel(server, "stdio lane")
        self._envelopes = EnvelopeCache(self._outbound, size=1)
        self.served = 0
        """Requests the lane answered (tests and benchmarks read it)."""

    def adopt(self, connection: Connection, lifespan_state: Any) -> None:
        """The SDK's connection for this handshake-era client (seen by the front's middleware)."""
        self._connection = connection
        self._lifespan = lifespan_state

    async def write(self, message: Mapping[str, Any]) -> None:
        """Write one message line; waits only when the pipe is full."""
        self._writer.write(_dumps(message))
        await self._writer.drain()

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: CallOptions | None = None) -> None:
        """`NotifyOnlyOutbound`'s channel for modern per-request connections."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = dict(params)
        await self.write(message)

    def take(self, line: bytes) -> bool:
        """Serve `line` on the lane when it can; False hands it to the SDK unchanged."""
        if self._era is not None and _TOOLS_CALL not in line and not (self._in_flight and _CANCELLED in line):
            return False
        try:
            parsed: Any = json.loads(line)
        except ValueError:
            return False
        if not isinstance(parsed, dict):
            return False
        msg = cast(dict[str, Any], parsed)
        method, ident = msg.get("method"), msg.get("id")
        if self._era is None:
            if not isinstance(method, str) or "id" not in msg:
                return False  # a notification or an answer before the first request: not evidence
            params_any: Any = msg.get("params")
            opens_modern = method != "initialize" and _has_modern_envelope(
                cast(Mapping[str, Any], params_any) if isinstance(params_any, Mapping) else None
            )
            self._era = "modern" if opens_modern else "legacy"
            # The SDK decides the era from the first request it sees: it must see this one.
            return False
        if method == "notifications/cancelled":
            self._cancel(msg.get("params"))
            return False  # the SDK sees it too, as its dispatcher tees cancellations to the handlers
        if method != "tools/call" or msg.get("jsonrpc") != "2.0":
            return False
        if not isinstance(ident, str | int) or isinstance(ident, bool):
            return False
        raw_params: Any = msg.get("params")
        if not isinstance(raw_params, dict):
            return False
        params = cast(dict[str, Any], raw_params)
        if self._era == "legacy":
            connection = self._connection
            if (
                connection is None
                or not connection.initialize_accepted
                or connection.protocol_version in MODERN_PROTOCOL_VERSIONS
                or _has_modern_envelope(params)
            ):
                return False
            dctx = _LaneContext(self, ident, progress_token(params), connection)
            self._start(dctx, self._kernel.legacy(connection, self._lifespan, dctx, params))
            return True
        route = classify_inbound_request({"method": method, "params": params})
        if isinstance(route, InboundLadderRejection):
            return False  # the SDK answers with the spec's error
        connection = self._envelopes.connection(route.protocol_version, route.client_info, route.client_capabilities)
        dctx = _LaneContext(self, ident, progress_token(params), None)
        self._start(dctx, self._modern(connection, dctx, params))
        return True

    def _cancel(self, params: Any) -> None:
        if not isinstance(params, Mapping):
            return
        rid: Any = cast(Mapping[str, Any], params).get("requestId")
        entry = self._in_flight.get(rid) if isinstance(rid, str | int) and not isinstance(rid, bool) else None
        if entry is not None:
            entry.dctx.cancel()
            entry.task.cancel()

    def _start(self, dctx: _LaneContext, work: Any) -> None:
        if not self._announced:
            self._announced = True
            logger.debug("stdio lane: serving tools/call")
        task = self._tg.start_soon(self._handle, dctx, work)
        self._in_flight[dctx.request_id] = _InFlight(task, dctx)

    async def _modern(self, connection: Connection, dctx: _LaneContext, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self._kernel.modern(connection, self._lifespan, _NoServerRequestsDispatchContext(dctx), params)
        except (MCPError, ValidationError):
            raise
        except Exception as exc:
            error = modern_error_data(exc)
            raise MCPError(code=error.code, message=error.message, data=error.data) from exc

    async def _handle(self, dctx: _LaneContext, work: Any) -> None:
        """Run one request and write its answer, as the SDK dispatcher's `_handle_request` does. A client's
        cancellation cancels this task (its own scope ends it quietly); the gateway's shutdown answers first."""
        answered = False
        try:
            try:
                result = await work
            finally:
                dctx.closed = True
                entry = self._in_flight.get(dctx.request_id)
                if entry is not None and entry.dctx is dctx:
                    del self._in_flight[dctx.request_id]
            if not dctx.cancelled:
                answered = True
                self.served += 1
                await self.write({"jsonrpc": "2.0", "id": dctx.request_id, "result": result})
        except anyio.get_cancelled_exc_class():
            if not answered and not dctx.cancelled:
                # Shutting down: answer so the client is not left waiting (shielded, bounded).
                with anyio.move_on_after(_SHUTDOWN_WRITE_TIMEOUT, shield=True), contextlib.suppress(*_GONE):
                    await self.write(
                        self._error(
                            dctx.request_id, types.ErrorData(code=types.CONNECTION_CLOSED, message="Connection closed")
                        )
                    )
            raise
        except Exception as exc:
            error = handler_exception_to_error_data(exc) or types.ErrorData(code=types.INTERNAL_ERROR, message="")
            if not dctx.cancelled:
                with contextlib.suppress(*_GONE):
                    await self.write(self._error(dctx.request_id, error))

    @staticmethod
    def _error(request_id: types.RequestId, error: types.ErrorData) -> dict[str, Any]:
        return {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": error.model_dump(by_alias=True, mode="json", exclude_unset=True),
        }

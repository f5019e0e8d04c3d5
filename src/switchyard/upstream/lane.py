"""`UpstreamLane`: forwarded requests written to a stdio server as JSON lines, answered before the SDK parses.

Owns the hot path of a forwarded request on a stdio upstream. The SDK client session puts every request
through a pydantic request model, its dispatcher's memory streams and tasks, and the transport's writer task,
and every answer through a pydantic message parse and two more stream hops: about half the gateway's CPU per
call. The lane writes the request line itself (after the session's own per-request stamp, so a modern server
gets exactly the `_meta` envelope the session would send) and picks the answer out of the stdout reader by
its id, so a call costs one `json.dumps`, one write, one `json.loads` and one wake-up.

What stays the session's: the connection (discovery, handshake, era), listings, change notifications, requests
the server pushes (elicitation, sampling, roots, logs are routed by `bridge.InFlight` whichever path sent the
call), and everything on a line that is not an answer or progress for a lane request. Lane ids are strings
with a prefix no SDK client mints (`sy-`), so the two never collide on one connection.

The result is checked as the session checks it (`validate_server_result` for the negotiated version, a negative
`ttlMs` clamped, a later revision's fields dropped), errors are the SDK's (`MCPError` with the server's code,
message and data; `REQUEST_TIMEOUT` "timed out"; `CONNECTION_CLOSED`), and a call abandoned by timeout or
cancellation is cancelled upstream with `notifications/cancelled`, as the SDK does.
While an OpenTelemetry tracer provider is configured the lane steps aside (`tracing_active`): the SDK's
dispatcher opens a client span per request and injects its trace context into `_meta`, which the lane does not.
Does not own the process or framing (`pipes.py`) or error translation (`client.py`).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import math
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import anyio
import anyio.abc
import mcp_types as types
from mcp.client.session import (
    _clamp_inbound_ttl,  # pyright: ignore[reportPrivateUsage] - the session's own result rules, reused exactly
    _later_revision_fields,  # pyright: ignore[reportPrivateUsage]
)
from mcp.shared.exceptions import MCPError
from mcp_types import methods as _methods
from mcp_types.version import KNOWN_PROTOCOL_VERSIONS
from opentelemetry import trace as _otel_trace
from opentelemetry.environment_variables import OTEL_PYTHON_TRACER_PROVIDER
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, get_tracer_provider
from pydantic import TypeAdapter

from switchyard.upstream.base import JsonObject, ProgressCallback

__all__ = [
    "LANE_ID_PREFIX",
    "ForwardLane",
    "LaneDeclined",
    "UpstreamLane",
    "checked_result",
    "deliver_progress",
    "error_of",
    "lanes_enabled",
    "number",
    "stamped_request",
    "tracing_active",
]

logger = logging.getLogger("switchyard.upstream")

LANE_ID_PREFIX = "sy-"
_MARK = f'"{LANE_ID_PREFIX}'.encode()
"""Every line the lane must see contains its id (an answer) or its id as progress token (progress)."""
_LOG = b'"notifications/message"'
"""A log message: taken only while one lane call is pending (`UpstreamLane._log`)."""
LogCallback = Callable[[types.LoggingMessageNotificationParams], Awaitable[None]]
_CANCEL_WRITE_TIMEOUT = 2.0
_CLOSED = types.ErrorData(code=types.CONNECTION_CLOSED, message="Connection closed")


def lanes_enabled() -> bool:
    """False when `SWITCHYARD_LANES=off`: every request takes the SDK's own path (an escape hatch, and the
    baseline `bench/overhead.py --compare no-lanes` measures against)."""
    return os.environ.get("SWITCHYARD_LANES", "").lower() not in ("off", "0", "false", "no")


_PROVIDER_FROM_ENV = OTEL_PYTHON_TRACER_PROVIDER in os.environ
"""OpenTelemetry loads a provider named by this variable on the first `get_tracer_provider()` call."""


def tracing_active() -> bool:
    """True once an OpenTelemetry tracer provider is configured. The SDK's paths open a span per request and
    propagate its trace context (the client's `_meta.traceparent`); the lanes do neither, so while tracing is
    on every request takes the SDK's path. Read per request (a provider may be set after start-up) from the
    global `set_tracer_provider` fills: `get_tracer_provider()` reads the environment on every call."""
    provider: object = _otel_trace._TRACER_PROVIDER  # pyright: ignore[reportPrivateUsage]
    if provider is None:
        if not _PROVIDER_FROM_ENV:
            return False
        provider = get_tracer_provider()
    return not isinstance(provider, ProxyTracerProvider | NoOpTracerProvider)


Stamp = Callable[[dict[str, Any], Any], None]
"""The session's per-request stamp: `stamp(request_dict, options)` fills the modern `_meta` envelope and, in
`options["headers"]`, the HTTP headers of the request."""
Send = Callable[[bytes, float], Awaitable[None]]
"""Writes one line; `send(data, deadline)` waits (for a full pipe) at most until `deadline` (anyio's clock),
then raises `TimeoutError`."""


class LaneDeclined(Exception):
    """Raised by a lane, before anything reached the server's tools, for a request the SDK's path must make
    instead (an HTTP redirect: the SDK transport owns the rule for following one)."""


class ForwardLane(Protocol):
    """A transport's fast path for forwarded requests (this module's stdio lane, `http_lane.HttpLane`)."""

    @property
    def open(self) -> bool:
        """Whether the lane can take a request now."""
        ...

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        *,
        stamp: Stamp,
        version: str,
        timeout: float,
        on_progress: ProgressCallback | None = None,
    ) -> JsonObject:
        """Send one request with the session's `stamp` and return its result (`MCPError` as the SDK raises)."""
        ...


_EXPIRED = types.ErrorData(code=types.REQUEST_TIMEOUT, message="timed out")
"""The outcome the deadline timer leaves on a call that got no answer in time."""


@dataclass(eq=False)
class _Pending:
    """One call waiting for its answer. `done` is a bare future of the running loop (this lane writes to an
    asyncio stream anyway): an `anyio.Event` costs a backend lookup to make, once per call."""

    done: asyncio.Future[None]
    outcome: JsonObject | types.ErrorData | None = None
    on_progress: ProgressCallback | None = None
    delivered: asyncio.Future[None] | None = None
    """Done when the last progress notification taken for this call has reached `on_progress` (None: none)."""

    def settle(self, outcome: JsonObject | types.ErrorData) -> None:
        """Record the call's outcome and wake its waiter; the first outcome wins (a cancelled wait ignores it)."""
        if not self.done.done():
            self.outcome = outcome
            self.done.set_result(None)

    def expire(self) -> None:
        """The deadline passed without an answer (a loop timer's callback)."""
        self.settle(_EXPIRED)


def _dumps(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8", errors="replace") + b"\n"


class UpstreamLane:
    """The lane of one stdio connection: attached while the process runs, closed when it stops."""

    def __init__(self, server: str, on_log: LogCallback | None = None) -> None:
        self._server = server
        self._send: Send | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._on_log = on_log
        """Where a log message goes (the upstream's `InFlight.log`) when the lane delivers it itself: during
        its only call, so it reaches the caller before that call's answer, as the call's progress does."""

    @property
    def open(self) -> bool:
        """Whether requests can be sent (the process is running)."""
        return self._send is not None

    def attach(self, send: Send, task_group: anyio.abc.TaskGroup) -> None:
        """Start using a freshly started process: `send` writes bytes to its stdin."""
        self._send = send
        self._tg = task_group

    def close(self) -> None:
        """The process stopped: every call still waiting gets `CONNECTION_CLOSED`."""
        self._send = None
        self._tg = None
        for pending in self._pending.values():
            pending.settle(_CLOSED)
        self._pending.clear()

    def offer(self, line: bytes) -> bool:
        """Take `line` if it answers (or reports progress for) a lane request, or is a log message during the
        lane's only call; False leaves it to the session."""
        if _MARK not in line:
            if self._on_log is not None and len(self._pending) == 1 and _LOG in line:
                return self._log(line)
            return False
        try:
            message: Any = json.loads(line)
        except ValueError:
            return False
        if not isinstance(message, dict):
            return False
        msg = cast(JsonObject, message)
        ident = msg.get("id")
        if isinstance(ident, str) and "method" not in msg:
            pending = self._pending.get(ident)
            if pending is None:
                return ident.startswith(LANE_ID_PREFIX)  # a late answer to an abandoned call: dropped
            if "result" in msg and isinstance(msg["result"], dict) and "error" not in msg:
                pending.settle(cast(JsonObject, msg["result"]))  # with both, the error counts (as the SDK reads it)
            else:
                pending.settle(error_of(msg.get("error")))
            return True
        if msg.get("method") == "notifications/progress":
            return self._progress(msg.get("params"))
        return False

    def _log(self, line: bytes) -> bool:
        """A `notifications/message` while exactly one lane call is pending (the routing rule `InFlight.log`
        applies anyway): delivered in turn with that call's progress, so the answer waits for it. The SDK's path
        hands notifications to a task each, so the answer could overtake the log and find the call gone."""
        try:
            message: Any = json.loads(line)
        except ValueError:
            return False
        if not isinstance(message, dict) or cast(JsonObject, message).get("method") != "notifications/message":
            return False
        try:
            params = types.LoggingMessageNotificationParams.model_validate(
                cast(JsonObject, message).get("params"), by_name=False
            )
        except ValueError:  # pydantic's ValidationError: the session reports it as it does
            return False
        on_log = self._on_log
        assert on_log is not None
        [pending] = self._pending.values()
        return self._in_turn(pending, lambda: on_log(params))

    def _in_turn(self, pending: _Pending, deliver: Callable[[], Awaitable[None]]) -> bool:
        """Deliver a notification for `pending` by a task (the reader must not wait on a caller), after the one
        before it; the call's answer waits for all of them (`request`)."""
        if self._tg is None:
            return False
        after = pending.delivered
        pending.delivered = done = asyncio.get_running_loop().create_future()
        try:
            self._tg.start_soon(_deliver_in_turn, after, done, deliver)
        except RuntimeError:  # the task group is closing: nothing will be delivered
            done.set_result(None)
        return True

    def _progress(self, params: Any) -> bool:
        if not isinstance(params, dict):
            return False
        p = cast(JsonObject, params)
        token, progress = p.get("progressToken"), p.get("progress")
        pending = self._pending.get(token) if isinstance(token, str) else None
        if pending is None:
            return False
        on_progress = pending.on_progress
        if on_progress is not None and number(progress) is not None:
            # In turn, as the SDK's session delivers progress: each after the one before it, the answer last.
            self._in_turn(pending, lambda: deliver_progress(on_progress, p))
        return True

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        *,
        stamp: Stamp,
        version: str,
        timeout: float,
        on_progress: ProgressCallback | None = None,
    ) -> JsonObject:
        """Send one request and wait for its result.

        Raises:
            MCPError: the server's error, `REQUEST_TIMEOUT` after `timeout`, or `CONNECTION_CLOSED`.
            pydantic.ValidationError: the result does not conform to the negotiated version (as the SDK raises).
        """
        send = self._send
        if send is None:
            raise MCPError.from_error_data(_CLOSED)
        number = next(self._ids)
        if number == 1:
            logger.debug("server %s: forwarded requests take the stdio lane", self._server)
        ident = f"{LANE_ID_PREFIX}{number}"
        message, _ = stamped_request(ident, method, params, stamp, progress=on_progress is not None)
        # The deadline is a loop timer that ends the wait, not a cancel scope around it: a scope costs about
        # as much as the rest of the lane's work per call. The write is bounded by the same deadline.
        loop = asyncio.get_running_loop()
        pending = _Pending(loop.create_future(), on_progress=on_progress)
        self._pending[ident] = pending
        written = False
        deadline = loop.time() + timeout
        timer = loop.call_at(deadline, pending.expire)
        try:
            written = True
            await send(_dumps(message), deadline)
            await pending.done
            if pending.outcome is _EXPIRED:
                raise TimeoutError
            if pending.delivered is not None and not pending.delivered.done():
                # The call's progress reaches its caller before the answer does (bounded by the deadline).
                await asyncio.wait((pending.delivered,), timeout=max(0.0, deadline - loop.time()))
        except TimeoutError:
            await self._cancel(ident, f"timed out after {timeout}s", shield=False)
            raise MCPError(code=types.REQUEST_TIMEOUT, message=f"Request {method!r} timed out") from None
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            raise MCPError.from_error_data(_CLOSED) from None
        except anyio.get_cancelled_exc_class():
            if written:
                await self._cancel(ident, "caller cancelled", shield=True)
            raise
        finally:
            timer.cancel()
            self._pending.pop(ident, None)
        outcome = pending.outcome
        if not isinstance(outcome, dict):
            raise MCPError.from_error_data(outcome or _CLOSED)
        return checked_result(method, version, outcome)

    async def _cancel(self, ident: str, reason: str, *, shield: bool) -> None:
        """The courtesy `notifications/cancelled` for an abandoned call (bounded; a dead pipe is ignored)."""
        send = self._send
        if send is None:
            return
        line = _dumps(
            {
                "jsonrpc": "2.0",
                "method": "notifications/cancelled",
                "params": {"requestId": ident, "reason": reason},
            }
        )
        with anyio.move_on_after(_CANCEL_WRITE_TIMEOUT, shield=shield):
            try:
                await send(line, math.inf)  # bounded by the scope
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                logger.debug("server %s: cancel for %s not delivered", self._server, ident)


def stamped_request(
    ident: str, method: str, params: Mapping[str, Any] | None, stamp: Stamp, *, progress: bool
) -> tuple[JsonObject, dict[str, Any]]:
    """The JSON-RPC request a lane sends, stamped by the session, and the stamp's options (HTTP headers);
    with `progress`, the request's own id is its progress token."""
    data: dict[str, Any] = {"method": method, "params": dict(params) if params is not None else {}}
    opts: dict[str, Any] = {}
    stamp(data, opts)
    out_params: dict[str, Any] = data["params"]
    if progress:
        out_params["_meta"] = {**cast(Mapping[str, Any], out_params.get("_meta") or {}), "progressToken": ident}
    message: JsonObject = {"jsonrpc": "2.0", "id": ident, "method": method}
    if out_params:
        message["params"] = out_params
    return message, opts


@functools.cache
def _result_adapter(method: str, version: str) -> TypeAdapter[Any] | None:
    """The SDK's surface model for `method`'s result in `version` (None: the version does not define it)."""
    if version not in KNOWN_PROTOCOL_VERSIONS:
        raise ValueError(f"version must be a known protocol version, got {version!r}")
    target: Any = _methods.SERVER_RESULTS.get((method, version))
    return None if target is None else TypeAdapter[Any](target)


def checked_result(method: str, version: str, raw: JsonObject) -> JsonObject:
    """The result as the SDK session would return it (its own checks, in its order).

    The check is `mcp_types.methods.validate_server_result` without the dump that function makes and drops
    (a dump of what validated from JSON cannot fail): the same validation, a fifth of the lane's pydantic work.
    """
    _clamp_inbound_ttl(raw)
    if (adapter := _result_adapter(method, version)) is not None:
        adapter.validate_python(raw, by_name=False)
    if not (foreign := _later_revision_fields(method, version)).isdisjoint(raw):
        raw = {key: value for key, value in raw.items() if key not in foreign}
    return raw


def error_of(error: Any) -> types.ErrorData:
    if isinstance(error, dict):
        try:
            return types.ErrorData.model_validate(error, by_name=False)
        except ValueError:
            pass
    return types.ErrorData(code=types.INTERNAL_ERROR, message="the server sent a malformed response")


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


async def _deliver_in_turn(
    after: asyncio.Future[None] | None, done: asyncio.Future[None], deliver: Callable[[], Awaitable[None]]
) -> None:
    """`deliver()` once the notification before it (`after`) is delivered; then mark `done`."""
    try:
        if after is not None:
            await asyncio.shield(after)  # a cancelled wait must not cancel the previous delivery's future
        try:
            await deliver()
        except Exception:  # a notification never fails the call it reports on
            logger.exception("server notification delivery raised")
    finally:
        if not done.done():
            done.set_result(None)


async def deliver_progress(fn: ProgressCallback | None, params: Mapping[str, Any]) -> None:
    """Call `fn` with a `notifications/progress`'s numbers and message (nothing without a numeric `progress`);
    a callback that raises is logged, never passed on to the call it reports on."""
    value = number(params.get("progress"))
    if fn is None or value is None:
        return
    text = params.get("message")
    try:
        await fn(value, number(params.get("total")), text if isinstance(text, str) else None)
    except Exception:
        logger.exception("progress callback raised")

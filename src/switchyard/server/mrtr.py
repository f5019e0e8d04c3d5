"""Input-required (MRTR) bridging for legacy front clients.

Owns: running the multi-round-trip loop on behalf of a 2025-11-25 client, which cannot receive an
`input_required` result: each embedded input request (elicitation, sampling, roots) is pushed to the client's
session as a real server-to-client request, and the original request is retried upstream with the answers and
the (sealed) request state, until the upstream completes or the round limit is reached. Also the reverse
bridges for legacy upstreams that push requests mid-call: to a legacy client they are pushed on
(`LegacyClientBridge`); for a modern client the upstream call is parked (`Suspensions`, held by this process,
bounded in count and time) and the question becomes an `input_required` result whose sealed state names the
parked call. Does not own sealing (sealing.py) or the modern pass-through (the gateway forwards those results
as they are).
"""

from __future__ import annotations

import contextlib
import math
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, cast

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from pydantic import BaseModel, TypeAdapter, ValidationError

from switchyard.errors import InvalidRequest
from switchyard.upstream.base import JsonObject
from switchyard.upstream.bridge import INPUT_BRIDGE, declares

__all__ = ["LegacyClientBridge", "ModernClientBridge", "Suspensions", "drive_for_legacy_client", "is_input_required"]

_INPUT_REQUEST: TypeAdapter[types.InputRequest] = TypeAdapter(types.InputRequest)
_RESULT_TYPES: dict[str, type[BaseModel]] = {
    "elicitation/create": types.ElicitResult,
    "sampling/createMessage": types.CreateMessageResult,
    "roots/list": types.ListRootsResult,
}


def is_input_required(result: Mapping[str, Any]) -> bool:
    """Whether an upstream result asks the client for input."""
    return result.get("resultType") == "input_required"


async def _ask(ctx: ServerRequestContext[Any, Any], raw: Mapping[str, Any]) -> JsonObject:
    method = str(raw.get("method", ""))
    if method not in _RESULT_TYPES:
        raise InvalidRequest(f"the upstream asked for unsupported input {method!r}")
    given: Any = raw.get("params")
    params = cast(Mapping[str, Any], given) if isinstance(given, Mapping) else None
    if not declares(ctx.session.client_capabilities, method, params):
        mode = params.get("mode") if params is not None else None
        what = f"{method} in {mode} mode" if mode else method
        raise InvalidRequest(f"the upstream asked for {what}, which this client did not declare it supports")
    try:
        request = _INPUT_REQUEST.validate_python(raw, by_name=False)
    except ValidationError:
        raise InvalidRequest(f"the upstream sent a malformed {method} request") from None
    metadata = ServerMessageMetadata(related_request_id=ctx.request_id) if ctx.request_id is not None else None
    result = await ctx.session.send_request(
        cast(types.ServerRequest, request), _RESULT_TYPES[method], metadata=metadata
    )
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


async def drive_for_legacy_client(
    ctx: ServerRequestContext[Any, Any],
    params: Mapping[str, Any],
    result: JsonObject,
    retry: Callable[[JsonObject], Awaitable[JsonObject]],
    *,
    max_rounds: int,
) -> JsonObject:
    """Resolve `input_required` results by asking the legacy client, then retry, until complete.

    Raises:
        InvalidRequest: the loop did not finish within `max_rounds`, or the client cannot answer.
    """
    for _ in range(max_rounds):
        if not is_input_required(result):
            return result
        requests = cast(Mapping[str, Any], result.get("inputRequests") or {})
        answers: JsonObject = {}
        for key, raw in requests.items():
            try:
                answers[key] = await _ask(ctx, cast(Mapping[str, Any], raw))
            except MCPError as exc:
                raise InvalidRequest(f"the client could not answer the upstream's request: {exc.message}") from None
        again: JsonObject = {**params, "inputResponses": answers}
        if "requestState" in result:
            again["requestState"] = result["requestState"]
        else:
            again.pop("requestState", None)
        result = await retry(again)
    if is_input_required(result):
        raise InvalidRequest(f"the upstream still needed input after {max_rounds} rounds")
    return result


_LOG_ORDER = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")


class LegacyClientBridge:
    """Answers a legacy upstream's pushed request by pushing it on to a legacy front client."""

    def __init__(self, ctx: ServerRequestContext[Any, Any], log_level: str | None = None) -> None:
        self._ctx = ctx
        self._min_log = _LOG_ORDER.index(log_level) if log_level in _LOG_ORDER else 0

    def can(self, method: str, params: Mapping[str, Any] | None = None) -> bool:
        """Whether the front client declared the capability (and elicitation mode) at `initialize`."""
        return declares(self._ctx.session.client_capabilities, method, params)

    async def ask(self, method: str, params: Mapping[str, Any] | None) -> JsonObject:
        """Send the request to the client and return its answer."""
        return await _ask(self._ctx, {"method": method, "params": dict(params or {})})

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """Relay a log message at or above the level the client set with `logging/setLevel`."""
        if _LOG_ORDER.index(params.level) >= self._min_log:
            await relay_log(self._ctx, params)


async def relay_log(ctx: ServerRequestContext[Any, Any], params: types.LoggingMessageNotificationParams) -> None:
    """Send an upstream's log message to the calling client, related to its request."""
    related = str(ctx.request_id) if ctx.request_id is not None else None
    with contextlib.suppress(Exception):  # advisory: a log line never fails a call
        # Deprecated with the logging capability (2026-07-28); still how a handshake-era client gets logs.
        await ctx.session.send_log_message(  # pyright: ignore[reportDeprecated]
            params.level, params.data, params.logger, related_request_id=related
        )


class ModernClientBridge:
    """For a modern client whose request goes to a modern upstream: only log messages cross this way."""

    def __init__(self, ctx: ServerRequestContext[Any, Any]) -> None:
        self._ctx = ctx

    def can(self, method: str, params: Mapping[str, Any] | None = None) -> bool:
        """Modern upstreams ask with input_required results, never by push."""
        return False

    async def ask(self, method: str, params: Mapping[str, Any] | None) -> JsonObject:
        """Never called (`can` is False)."""
        raise MCPError(code=types.INVALID_REQUEST, message=f"{method} cannot be pushed to this client")

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """Relay a log message (delivered only if this request opted in)."""
        await relay_log(self._ctx, params)


_QUESTION = "q"


class Suspension:
    """An upstream call parked on a question for a modern client, resumed when the client retries."""

    def __init__(self, ident: str, capabilities: Mapping[str, Any] | None, ttl: float) -> None:
        self.id = ident
        self._caps = capabilities
        self._ttl = ttl
        self.events_send, self.events_recv = anyio.create_memory_object_stream[tuple[str, Any]](4)
        self.answer_send, self.answer_recv = anyio.create_memory_object_stream[JsonObject](1)
        self.expired = False
        self.deadline = math.inf
        """When a parked call stops waiting for its client (set each time it is parked)."""

    def can(self, method: str, params: Mapping[str, Any] | None = None) -> bool:
        """Whether the modern client declared the capability (and elicitation mode) on this request."""
        return declares(self._caps, method, params)

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """Log messages of a parked call have no open request to ride on: dropped."""

    async def ask(self, method: str, params: Mapping[str, Any] | None) -> JsonObject:
        """Hand the question to the client (as an input_required result) and wait for its retry."""
        await self.events_send.send(("input", {"method": method, "params": dict(params or {})}))
        with anyio.move_on_after(self._ttl):
            return await self.answer_recv.receive()
        self.expired = True
        raise MCPError(code=types.INVALID_REQUEST, message="the client did not answer in time")

    def close(self) -> None:
        """Release the streams."""
        for stream in (self.events_send, self.events_recv, self.answer_send, self.answer_recv):
            stream.close()


class Suspensions:
    """Upstream calls parked on client questions, held by this process: bounded in count and time."""

    def __init__(self, *, max_count: int = 256, ttl: float = 600.0) -> None:
        self.max_count = max_count
        self.ttl = ttl
        self._table: dict[str, Suspension] = {}

    def __len__(self) -> int:
        return len(self._table)

    async def start(
        self,
        spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], None],
        run: Callable[[], Awaitable[JsonObject]],
        capabilities: Mapping[str, Any] | None,
        seal: Callable[[str], str],
    ) -> JsonObject:
        """Run `run` in the background with a suspending bridge; answer with its result or its first question."""
        self._purge()
        if len(self._table) >= self.max_count:
            raise InvalidRequest("too many requests are waiting for client input; try again later")
        suspension = Suspension(secrets.token_hex(12), capabilities, self.ttl)

        async def body() -> None:
            token = INPUT_BRIDGE.set(suspension)
            try:
                event: tuple[str, Any] = ("result", await run())
            except Exception as exc:  # delivered to whoever waits on this call
                event = ("error", exc)
            except BaseException:  # cancelled (the gateway is stopping): nobody will resume it
                self._drop(suspension)
                raise
            finally:
                INPUT_BRIDGE.reset(token)
            if suspension.expired:  # its client never came back: nobody will ever read the outcome
                self._drop(suspension)
                return
            with contextlib.suppress(anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
                suspension.events_send.send_nowait(event)

        spawn(body)
        return await self._next(suspension, seal)

    def _drop(self, suspension: Suspension) -> None:
        if self._table.get(suspension.id) is suspension:
            del self._table[suspension.id]
        suspension.close()

    def _purge(self) -> None:
        """Forget parked calls past their deadline (the client never retried, whatever the call did since)."""
        now = anyio.current_time()
        for suspension in [s for s in self._table.values() if s.expired or s.deadline < now]:
            self._drop(suspension)

    async def resume(self, ident: str, responses: Mapping[str, Any], seal: Callable[[str], str]) -> JsonObject:
        """Give a parked call the client's answer and wait for what it does next."""
        self._purge()
        suspension = self._table.pop(ident, None)
        if suspension is None or suspension.expired:
            raise InvalidRequest("this request is no longer waiting for input (expired); start it again")
        answer = responses.get(_QUESTION)
        if not isinstance(answer, Mapping):
            self._table[ident] = suspension
            raise InvalidRequest(f"inputResponses must answer '{_QUESTION}'")
        await suspension.answer_send.send(dict(cast(Mapping[str, Any], answer)))
        return await self._next(suspension, seal)

    async def _next(self, suspension: Suspension, seal: Callable[[str], str]) -> JsonObject:
        kind, value = await suspension.events_recv.receive()
        if kind == "input":
            suspension.deadline = anyio.current_time() + self.ttl
            self._table[suspension.id] = suspension
            return {
                "resultType": "input_required",
                "inputRequests": {_QUESTION: value},
                "requestState": seal(suspension.id),
            }
        suspension.close()
        if kind == "error":
            raise value
        return cast(JsonObject, value)

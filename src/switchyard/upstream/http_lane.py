"""`HttpLane`: forwarded requests POSTed to a modern (2026-07-28) Streamable HTTP server, answered before the SDK.

Owns the hot path of a forwarded request on an HTTP upstream that negotiated the stateless revision. The SDK
client puts every request through a pydantic request model, the dispatcher's memory streams and tasks, the
transport's writer task (a task group and a spawned task per POST), a `model_dump` of the message and a pydantic
parse of the answer, and `httpx2` spends about three times aiohttp's CPU on the POST itself (measured on one
keep-alive connection: 0.85-0.90 against 0.25-0.31 ms). At 2026-07-28 each request is its own POST with its
own answer stream and no session, so the lane sends the POST itself, with aiohttp, carrying the session's own
per-request stamp (the `_meta` envelope and the `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` and
`Mcp-Param-*` headers the SDK would send) and the SDK path's client headers (configured ones, `user-agent`,
`accept-encoding`), and reads the answer from the response: JSON, or an SSE stream (parsed by `httpx2`'s own
parser) carrying progress and other notifications before it.

What stays the session's: discovery and the era, listings (where the session learns each tool's
`x-mcp-header` mapping the stamp reads), `subscriptions/listen`, every notification on an answer stream that is
not progress for the lane's own request (handed to the session's own notification routing, so logging and list
changes behave as on the SDK path), and any request the server answers with a redirect (`LaneDeclined`: the
SDK's path sends it again and applies its same-origin rule). Legacy (2025-11-25) HTTP connections never use
the lane: their sessions, GET stream, resumption and mid-call server requests are the SDK's. Nor does an
upstream the environment routes through a proxy (`proxied`).

Outcomes match the SDK transport's (tests/core/test_http_lane.py checks each against it): a JSON-RPC error in a
body (at any status) is the server's error; 404 without one is `METHOD_NOT_FOUND` "Not Found", any other
status >= 400 `INTERNAL_ERROR` "Server returned an error response"; 202 or an unexpected content type
`INVALID_REQUEST`; an answer stream that ends without an answer `CONNECTION_CLOSED` "SSE stream ended without a
response" (the revision has no resumption); a timeout `REQUEST_TIMEOUT` (the POST is abandoned, which is the
revision's cancellation); a transport failure `CONNECTION_CLOSED` "Connection closed", and the connection is
reported broken (`on_broken`), as the SDK's transport task dies with it and the upstream reconnects. The result
is checked as the session checks it. Does not own the SDK path's HTTP client (`http.py`) or error translation
(`client.py`).
"""

from __future__ import annotations

import codecs
import itertools
import json
import logging
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import anyio
import httpx2
import mcp_types as types
from httpx2._sse import _SSEParser  # pyright: ignore[reportPrivateUsage] - the SDK transport's own SSE parser
from mcp.shared.exceptions import MCPError

from switchyard.upstream.base import JsonObject, ProgressCallback
from switchyard.upstream.lane import (
    LANE_ID_PREFIX,
    LaneDeclined,
    Stamp,
    checked_result,
    deliver_progress,
    error_of,
    stamped_request,
)

__all__ = ["HttpLane", "proxied"]

logger = logging.getLogger("switchyard.upstream")

Notify = Callable[[str, Mapping[str, Any] | None], Awaitable[None]]
"""The session's routing of a server notification: `notify(method, params)`."""
_BASE_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
_CLOSED = types.ErrorData(code=types.CONNECTION_CLOSED, message="Connection closed")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CONNECT_TIMEOUT = 30.0
"""As the SDK path's `httpx2` client (http.py); reads are bounded by the call's timeout."""


class HttpLane:
    """The lane of one modern HTTP connection: attached once the session is up, closed when it ends.

    `headers` are the SDK path's client headers (the configured ones, and `httpx2`'s `user-agent`,
    `accept-encoding`), so a server sees the same request from either path."""

    def __init__(self, server: str, url: str, headers: Mapping[str, str], *, max_event_bytes: int | None) -> None:
        self._server = server
        self._url = url
        self._headers = dict(headers)
        self._max_event_bytes = max_event_bytes
        self._http: aiohttp.ClientSession | None = None
        self._notify: Notify | None = None
        self._on_broken: Callable[[str], None] | None = None
        self._ids = itertools.count(1)

    @property
    def open(self) -> bool:
        """Whether requests can be sent (the session is up at 2026-07-28)."""
        return self._notify is not None

    def attach(self, notify: Notify, on_broken: Callable[[str], None]) -> None:
        """Start serving a connection (in its event loop): `notify` routes other notifications, `on_broken`
        ends the connection."""
        ssl = httpx2.create_ssl_context() if self._url.startswith("https:") else False  # httpx2's trust store
        self._http = aiohttp.ClientSession(
            headers=self._headers,
            skip_auto_headers=("user-agent", "accept-encoding"),  # given in `headers` when the SDK path sends them
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=_CONNECT_TIMEOUT),
            connector=aiohttp.TCPConnector(ssl=ssl),
        )
        self._notify = notify
        self._on_broken = on_broken

    async def aclose(self) -> None:
        """The connection ended: later requests take the SDK's path (which reports it down)."""
        self._notify = None
        self._on_broken = None
        http, self._http = self._http, None
        if http is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await http.close()

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
        """POST one request and return its result.

        Raises:
            MCPError: the server's error, a transport outcome (see the module docstring), `REQUEST_TIMEOUT`.
            LaneDeclined: the server answered with a redirect; the SDK's path applies its redirect rule.
            pydantic.ValidationError: the result does not conform to the negotiated version (as the SDK raises).
        """
        notify, http = self._notify, self._http
        if notify is None or http is None:
            raise MCPError.from_error_data(_CLOSED)
        number_ = next(self._ids)
        if number_ == 1:
            logger.debug("server %s: forwarded requests take the HTTP lane", self._server)
        ident = f"{LANE_ID_PREFIX}{number_}"
        message, opts = stamped_request(ident, method, params, stamp, progress=on_progress is not None)
        headers = {**_BASE_HEADERS, **cast(Mapping[str, str], opts.get("headers") or {})}
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8", errors="replace")
        outcome: JsonObject | types.ErrorData | None = None
        with anyio.move_on_after(timeout):
            try:
                outcome = await self._post(http, body, headers, ident=ident, notify=notify, on_progress=on_progress)
            except (aiohttp.ClientError, OSError) as exc:
                reason = f"HTTP request failed: {type(exc).__name__}: {exc}".rstrip(": ")
                logger.info("server %s: %s", self._server, reason)
                if self._on_broken is not None:
                    self._on_broken(reason)
                outcome = _CLOSED
        if outcome is None:
            raise MCPError(code=types.REQUEST_TIMEOUT, message=f"Request {method!r} timed out")
        if not isinstance(outcome, dict):
            raise MCPError.from_error_data(outcome)
        return checked_result(method, version, outcome)

    async def _post(
        self,
        http: aiohttp.ClientSession,
        body: bytes,
        headers: dict[str, str],
        *,
        ident: str,
        notify: Notify,
        on_progress: ProgressCallback | None,
    ) -> JsonObject | types.ErrorData:
        async with http.post(self._url, data=body, headers=headers, allow_redirects=False) as response:
            status = response.status
            if status == 202:
                return _invalid("server answered a request with 202 Accepted")
            if status in _REDIRECTS and "location" in response.headers:
                raise LaneDeclined("a redirect: the SDK's path decides whether to follow it")
            content_type = response.headers.get("content-type", "").lower()
            if status >= 400:
                if content_type.startswith("application/json") and (error := _error_body(await response.read())):
                    return error
                if status == 404:
                    return types.ErrorData(code=types.METHOD_NOT_FOUND, message="Not Found")
                return types.ErrorData(code=types.INTERNAL_ERROR, message="Server returned an error response")
            if content_type.startswith("application/json"):
                return _answer(await response.read(), ident)
            if content_type.startswith("text/event-stream"):
                return await self._events(response, ident, notify, on_progress)
            logger.warning("server %s: unexpected content type %r", self._server, content_type)
            return _invalid(f"Unexpected content type: {content_type}")

    async def _events(
        self, response: aiohttp.ClientResponse, ident: str, notify: Notify, on_progress: ProgressCallback | None
    ) -> JsonObject | types.ErrorData:
        """Read an answer stream up to the answer, passing notifications on as they arrive."""
        parser = _SSEParser(self._max_event_bytes)
        decoder = codecs.getincrementaldecoder(response.charset or "utf-8")(errors="replace")
        try:
            async for chunk in response.content.iter_any():
                for event in parser.decode(decoder.decode(chunk)):
                    if (outcome := await self._event(event, ident, notify, on_progress)) is not None:
                        return outcome
            for event in parser.flush():
                if (outcome := await self._event(event, ident, notify, on_progress)) is not None:
                    return outcome
        except httpx2.SSEError as exc:
            return types.ErrorData(code=types.CONNECTION_CLOSED, message=f"SSE stream failed: {exc}")
        return types.ErrorData(code=types.CONNECTION_CLOSED, message="SSE stream ended without a response")

    async def _event(
        self, event: httpx2.ServerSentEvent, ident: str, notify: Notify, on_progress: ProgressCallback | None
    ) -> JsonObject | types.ErrorData | None:
        """One event: the answer (returned), or a notification passed on (None)."""
        if event.event != "message" or not event.data:
            return None  # keep-alives, priming events (no resumption at this revision), unknown event types
        try:
            message: Any = json.loads(event.data)
        except ValueError as exc:
            return types.ErrorData(code=types.PARSE_ERROR, message=f"Failed to parse SSE message: {exc}")
        if not isinstance(message, dict):
            return None
        msg = cast(JsonObject, message)
        method = msg.get("method")
        if not isinstance(method, str):
            if "id" not in msg:
                return None
            if not _answers(msg, ident):  # an answer to another request: not this call's (JSON-RPC matches by id)
                logger.warning(
                    "server %s: sent an answer for another request on an answer stream; ignored", self._server
                )
                return None
            return _outcome(msg)
        if "id" in msg:
            logger.warning("server %s: sent a %s request on an answer stream; ignored", self._server, method)
            return None
        raw_params = msg.get("params")
        params = cast(JsonObject, raw_params) if isinstance(raw_params, dict) else None
        if method == "notifications/progress" and params is not None and params.get("progressToken") == ident:
            await deliver_progress(on_progress, params)
        else:
            await notify(method, params)
        return None


def proxied(url: str) -> bool:
    """Whether the environment names a proxy for `url` (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, minus
    `NO_PROXY`). The SDK path's `httpx2` client sends through it; the lane does not attach then (asking the
    environment per request would cost more than the lane saves)."""
    proxies = urllib.request.getproxies()
    parts = urlsplit(url)
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not (parts.hostname and urllib.request.proxy_bypass(parts.hostname))


def _invalid(message: str) -> types.ErrorData:
    return types.ErrorData(code=types.INVALID_REQUEST, message=message)


def _answer(content: bytes, ident: str) -> JsonObject | types.ErrorData:
    """The outcome in a JSON body: the answer to request `ident` (an answer with another id is none)."""
    try:
        message: Any = json.loads(content)
    except ValueError as exc:
        return types.ErrorData(code=types.PARSE_ERROR, message=f"Failed to parse JSON response: {exc}")
    if not isinstance(message, dict) or "id" not in message or "method" in message:
        return types.ErrorData(code=types.PARSE_ERROR, message="Failed to parse JSON response: not a JSON-RPC answer")
    if not _answers(cast(JsonObject, message), ident):
        return types.ErrorData(code=types.PARSE_ERROR, message="Failed to parse JSON response: answers another request")
    return _outcome(cast(JsonObject, message))


def _answers(message: JsonObject, ident: str) -> bool:
    """Whether `message` answers request `ident`: its id, or an error with a null id (a server that refused the
    request before reading its id; each POST carries one request, so it is this one's)."""
    return message["id"] == ident or (message["id"] is None and "error" in message)


def _error_body(content: bytes) -> types.ErrorData | None:
    """The JSON-RPC error a server may put in a non-2xx body, if that is what the body is."""
    try:
        message: Any = json.loads(content)
    except ValueError:
        return None
    if isinstance(message, dict) and isinstance(error := cast(JsonObject, message).get("error"), dict):
        return error_of(error)
    return None


def _outcome(message: JsonObject) -> JsonObject | types.ErrorData:
    result = message.get("result")
    if isinstance(result, dict) and "error" not in message:
        return cast(JsonObject, result)
    return error_of(message.get("error"))

"""The HTTP front: one Streamable HTTP endpoint (`/mcp`) serving both protocol eras, plus health probes.

Owns: the Starlette application that `switchyard serve --http` runs: the SDK's Streamable HTTP session manager
fed by the same `FrontServer` as stdio (2026-07-28 stateless requests and 2025-11-25-and-older sessions on one
endpoint; the SDK validates the MCP headers, answers -32020/-32022, owns `Mcp-Session-Id`, GET and DELETE),
Host and Origin validation against DNS rebinding on every path, the request body limit, `/healthz` and
`/readyz`, the gateway's lifetime (its upstreams run for the lifespan of the app; SIGTERM, SIGINT and SIGHUP stop
uvicorn through server/signals.py instead of uvicorn's own handlers), and the correction of the
SDK's -32022 `data.supported` list so it names every version Switchyard serves. Does not own: handlers
(mcp.py), authentication (none yet: binding beyond loopback is the CLI's explicit choice), or MRTR bridging.

Request flow: `_HostOriginGuard` (403 on a bad Host or Origin, any path) → Starlette routing → for `/mcp`,
`_BodyChecks` (413 over the size limit, 400 for a JSON-RPC batch) → `_SupportedVersions` (rewrites a -32022
body on the way out) → `QuietLane` (http_lane.py: modern requests that can only get their answer) →
`SessionLane` (session_lane.py: `tools/call` on an open legacy session) → the SDK's session manager (modern
entry or legacy session).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Any, Final, cast

import anyio
import mcp_types as types
import uvicorn
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.streamable_http import (
    EventCallback,
    EventId,
    EventMessage,
    EventStore,
    StreamableHTTPServerTransport,
    StreamId,
)
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import INVALID_REQUEST, UNSUPPORTED_PROTOCOL_VERSION, JSONRPCMessage
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchyard.config import HttpFrontSettings
from switchyard.gateway import Gateway
from switchyard.server.auth import is_loopback, protect
from switchyard.server.http_lane import BODY_SCOPE_KEY, QuietLane
from switchyard.server.mcp import FrontServer
from switchyard.server.session_lane import SessionLane
from switchyard.server.signals import stop_on_signal
from switchyard.upstream.base import UpstreamState

__all__ = [
    "MCP_PATH",
    "SERVED_VERSIONS",
    "HttpFront",
    "MemoryEventStore",
    "allowed_hosts",
    "allowed_origins",
    "is_loopback",
    "serve_http",
]

logger = logging.getLogger("switchyard.http")

MCP_PATH: Final = "/mcp"
SERVED_VERSIONS: Final[tuple[str, ...]] = (*reversed(MODERN_PROTOCOL_VERSIONS), *reversed(HANDSHAKE_PROTOCOL_VERSIONS))
"""Every protocol version the front serves, newest first: the modern ones per request, the rest by handshake."""

_LOOPBACK_NAMES: Final = ("127.0.0.1", "localhost", "[::1]")


# --- Host / Origin policy ----------------------------------------------------------------------------------


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def allowed_hosts(bind_host: str, bind_port: int, settings: HttpFrontSettings) -> list[str]:
    """`Host` values accepted: the loopback names (any port), the bound address, and the configured extras.

    A pattern `name:*` accepts `name` with any port; an entry without a port accepts only that exact value.
    """
    hosts: list[str] = []
    for name in (*_LOOPBACK_NAMES, _bracketed(bind_host)):
        for value in (name, f"{name}:*"):
            if value not in hosts:
                hosts.append(value)
    hosts.extend(h for h in settings.allowed_hosts if h not in hosts)
    del bind_port  # any port: a proxy on the same machine may forward from another one
    return hosts


def allowed_origins(bind_host: str, settings: HttpFrontSettings) -> list[str]:
    """`Origin` values accepted: http(s) on the loopback names and the bound address (any port), plus extras."""
    origins: list[str] = []
    for name in (*_LOOPBACK_NAMES, _bracketed(bind_host)):
        for scheme in ("http", "https"):
            for value in (f"{scheme}://{name}", f"{scheme}://{name}:*"):
                if value not in origins:
                    origins.append(value)
    origins.extend(o for o in settings.allowed_origins if o not in origins)
    return origins


def _matches(value: str, allowed: Sequence[str]) -> bool:
    """Exact match, or `prefix:*` matching `prefix:<port digits>` (case-insensitive: hosts are)."""
    value = value.lower()
    for allowed_pattern in allowed:
        pattern = allowed_pattern.lower()
        if value == pattern:
            return True
        if pattern.endswith(":*"):
            base = pattern[:-2]
            port = value[len(base) + 1 :]
            if value.startswith(base + ":") and port.isdigit():
                return True
    return False


def _jsonrpc_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A JSON-RPC error response without an id (the spec's form for transport-level refusals)."""
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


class _HostOriginGuard:
    """Refuse any request whose `Host` or (present) `Origin` is not allowed: 403, on every path.

    DNS rebinding makes a hostile page's requests arrive at a loopback socket with the attacker's host name;
    checking `Host` stops them even when the browser sends no `Origin`, and checking `Origin` stops a page
    on another site. Health probes are guarded too: `/readyz` names the configured servers.
    """

    def __init__(self, app: ASGIApp, hosts: Sequence[str], origins: Sequence[str]) -> None:
        self.app = app
        self.hosts = tuple(hosts)
        self.origins = tuple(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        origin = headers.get("origin")
        if not host or not _matches(host, self.hosts):
            logger.warning("refused a request with Host %r (DNS rebinding protection)", (host or "")[:200])
            await _jsonrpc_error(403, INVALID_REQUEST, "Forbidden: Host not allowed")(scope, receive, send)
            return
        if origin is not None and not _matches(origin, self.origins):
            logger.warning("refused a request with Origin %r (DNS rebinding protection)", origin[:200])
            await _jsonrpc_error(403, INVALID_REQUEST, "Forbidden: Origin not allowed")(scope, receive, send)
            return
        await self.app(scope, receive, send)


# --- -32022 lists every served version ---------------------------------------------------------------------


def _with_served_versions(body: bytes) -> bytes | None:
    """The body with `error.data.supported` replaced by `SERVED_VERSIONS` if it is a -32022 error; else None."""
    try:
        decoded: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(decoded, dict):
        return None
    message = cast(dict[str, Any], decoded)
    error = message.get("error")
    if not isinstance(error, dict) or cast(dict[str, Any], error).get("code") != UNSUPPORTED_PROTOCOL_VERSION:
        return None
    err = cast(dict[str, Any], error)
    data = err.get("data")
    fixed: dict[str, Any] = dict(cast(dict[str, Any], data)) if isinstance(data, dict) else {}
    fixed["supported"] = list(SERVED_VERSIONS)
    err["data"] = fixed
    return json.dumps(message, separators=(",", ":")).encode()


class _SupportedVersions:
    """Rewrite the SDK's -32022 `data.supported` (only 2026-07-28) to every version the front serves.

    The SDK builds that error deep inside its modern entry with the modern list only, but this endpoint also
    serves every handshake version through `initialize`, and the spec says the error lists the versions the
    server supports. Only a 400 `application/json` response is buffered and inspected (errors are small);
    every other response streams through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def intercept(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
                if message["status"] == 400 and content_type.startswith("application/json"):
                    held = message
                    return
                await send(message)
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            rewritten = _with_served_versions(body)
            if rewritten is not None:
                body = rewritten
                headers = [(k, v) for k, v in held.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                held = {**held, "headers": headers}
            await send(held)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, intercept)


# --- body size and shape ---------------------------------------------------------------------------------


class _BodyChecks:
    """Read a POST body up to the limit (413 beyond it) and refuse JSON-RPC batches (400, -32600), then replay.

    Both checks are on the wire before any era is known: 2025-11-25 removed batching and 2026-07-28 never had
    it, and the SDK's legacy transport would otherwise answer a batch with a long validation dump. The SDK
    still applies its own limit behind this one (same number), so the endpoint stays bounded if mounted alone.
    """

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await self._too_large(scope, receive, send)
            return
        body = bytearray()
        trailing: list[Message] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                trailing.append(message)
                break
            body.extend(message.get("body", b""))
            if len(body) > self.max_body:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        if bytes(body.lstrip()[:1]) == b"[":
            response = _jsonrpc_error(
                400, INVALID_REQUEST, "Batch requests are not supported: send one message per POST"
            )
            await response(scope, receive, send)
            return
        data = bytes(body)
        replay: list[Message] = [{"type": "http.request", "body": data, "more_body": False}, *trailing]

        async def replayed() -> Message:
            return replay.pop(0) if replay else await receive()

        await self.app({**scope, BODY_SCOPE_KEY: data}, replayed, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"Request body too large (limit {self.max_body} bytes)"
        await _jsonrpc_error(413, INVALID_REQUEST, message)(scope, receive, send)


# --- resumability (legacy sessions) -------------------------------------------------------------------------


class MemoryEventStore(EventStore):
    """Bounded in-memory event log so a legacy client can resume a broken SSE stream with `Last-Event-ID`.

    Keeps the last `per_stream` events of each stream and at most `max_streams` streams (the least recently
    written stream is forgotten first), so memory stays bounded however long sessions live. Event ids are
    `<stream>/<sequence within the stream>`: replay finds the stream from the id alone, and a cursor older than
    the oldest kept event is refused (None) rather than replayed with a hole. Only legacy (2025-11-25 and
    older) sessions use it; the 2026-07-28 wire has no resumption. State lives in this process, like sessions.
    """

    def __init__(self, *, per_stream: int = 256, max_streams: int = 1024) -> None:
        self.per_stream = per_stream
        self.max_streams = max_streams
        self._streams: OrderedDict[StreamId, deque[tuple[int, JSONRPCMessage | None]]] = OrderedDict()
        self._counters: dict[StreamId, int] = {}

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        """Record one event (None = the priming event) and return its id."""
        events = self._streams.get(stream_id)
        if events is None:
            events = self._streams[stream_id] = deque(maxlen=self.per_stream)
            while len(self._streams) > self.max_streams:
                forgotten, _ = self._streams.popitem(last=False)
                self._counters.pop(forgotten, None)
        else:
            self._streams.move_to_end(stream_id)
        number = self._counters.get(stream_id, 0) + 1
        self._counters[stream_id] = number
        events.append((number, message))
        return f"{stream_id}/{number}"

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        """Send every kept event of the stream after `last_event_id`; None when the id is unknown or expired."""
        stream_id, _, number_text = last_event_id.rpartition("/")
        events = self._streams.get(stream_id)
        if events is None or not number_text.isdigit():
            return None
        after = int(number_text)
        if events and events[0][0] > after + 1:
            return None  # events the client has not seen were already dropped
        for number, message in list(events):
            if number > after and message is not None:
                await send_callback(EventMessage(message, f"{stream_id}/{number}"))
        return stream_id


class _SessionEvents(EventStore):
    """One legacy session's view of the shared `MemoryEventStore`: its streams, and only its, are replayed.

    The SDK hands every session's transport the same store and names streams by JSON-RPC request id, which
    every session starts at 1; this view prefixes them with the session id (random, 128 bits), and refuses a
    `Last-Event-ID` from another session. Without it a client could replay other sessions' results.
    """

    def __init__(self, shared: EventStore, session_id: str) -> None:
        self._shared = shared
        self._prefix = f"{session_id}:"

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        """Record the event under this session's name of the stream."""
        return await self._shared.store_event(f"{self._prefix}{stream_id}", message)

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        """Replay one of this session's streams; None for an id from any other session."""
        if not last_event_id.startswith(self._prefix):
            return None
        stream_id = await self._shared.replay_events_after(last_event_id, send_callback)
        return None if stream_id is None else stream_id.removeprefix(self._prefix)


class _SessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, giving each legacy session its own view of the event store."""

    def _admit_session(self, requestor: Any) -> StreamableHTTPServerTransport | None:
        transport = super()._admit_session(requestor)
        shared = self.event_store
        if transport is not None and shared is not None and transport.mcp_session_id is not None:
            # The transport keeps its store in `_event_store` (mcp 2.3; tests/e2e/test_http_front.py replays).
            transport._event_store = _SessionEvents(shared, transport.mcp_session_id)  # pyright: ignore[reportPrivateUsage]
        return transport


# --- probes ------------------------------------------------------------------------------------------------


async def _healthz(request: Request) -> Response:
    """The process is alive and serving HTTP."""
    return JSONResponse({"status": "ok"})


def _readyz(gateway: Gateway) -> Any:
    async def readyz(request: Request) -> Response:
        """200 once every enabled server had its first attempt and all are up; else 503 naming the rest."""
        down = [
            {"server": name, "state": u.state.value, "error": u.last_error}
            for name, u in gateway.upstreams.items()
            if u.state is not UpstreamState.UP
        ]
        started = gateway.started.is_set()
        ready = started and not down
        body = {"ready": ready, "started": started, "servers": len(gateway.upstreams), "down": down}
        return JSONResponse(body, status_code=200 if ready else 503)

    return readyz


# --- the application ---------------------------------------------------------------------------------------


async def _discover_lists_served_versions(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """`server/discover` names every served version, so it agrees with the -32022 list (clients must be able
    to pick from either; the conformance suite checks that one is a subset of the other)."""
    result = await call_next(ctx)
    if ctx.method != "server/discover":
        return result
    if isinstance(result, types.DiscoverResult):
        return result.model_copy(update={"supported_versions": list(SERVED_VERSIONS)})
    if isinstance(result, dict) and "supportedVersions" in result:
        return {**result, "supportedVersions": list(SERVED_VERSIONS)}
    return result


def _legacy_capabilities(server: Server[Any]) -> None:
    """Make legacy HTTP sessions advertise `listChanged` for every list, as the stdio front does.

    The session manager starts each session without initialization options, so the SDK falls back to
    `server.create_initialization_options()` with no notification options: every `listChanged` would be
    false and clients would ignore the gateway's change notifications. The override is per instance.
    """
    plain = server.create_initialization_options
    notify = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)

    def with_changes(
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return plain(notification_options or notify, experimental_capabilities, extensions)

    setattr(server, "create_initialization_options", with_changes)  # noqa: B010 - an instance override


class _ProbesOpen:
    """`/healthz` and `/readyz` go straight to the app (load balancers carry no credentials); the rest is
    authenticated."""

    def __init__(self, protected: ASGIApp, open_app: ASGIApp) -> None:
        self.protected = protected
        self.open_app = open_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") in ("/healthz", "/readyz"):
            await self.open_app(scope, receive, send)
        else:
            await self.protected(scope, receive, send)


class HttpFront:
    """The HTTP front of one gateway: an ASGI app whose lifespan runs the gateway's upstreams.

    Args:
        gateway: The gateway to serve (not yet running: the app's lifespan runs it).
        host: The address the server binds (allowed as `Host`/`Origin` besides the loopback names).
        port: The port it binds (informational; `Host` is accepted with any port).
    """

    def __init__(self, gateway: Gateway, *, host: str = "127.0.0.1", port: int = 8765) -> None:
        settings = gateway.config.switchyard.http
        self.gateway = gateway
        self.front = FrontServer(gateway)
        _legacy_capabilities(self.front.server)
        self.front.server.middleware.append(_discover_lists_served_versions)
        hosts = allowed_hosts(host, port, settings)
        origins = allowed_origins(host, settings)
        # The SDK checks Host/Origin again inside /mcp with the same lists (harmless, and it keeps the
        # endpoint protected if it is ever mounted without the guard).
        self.manager = _SessionManager(
            app=self.front.server,
            security_settings=TransportSecuritySettings(
                enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
            ),
            max_request_body_size=settings.max_body_bytes,
            session_idle_timeout=settings.session_idle_timeout,
            max_sessions=settings.max_sessions,
            event_store=MemoryEventStore(),
        )
        self.session_lane = SessionLane(StreamableHTTPASGIApp(self.manager), self.manager)
        sdk_endpoint = QuietLane(self.session_lane, self.manager)
        mcp_endpoint = _BodyChecks(_SupportedVersions(sdk_endpoint), settings.max_body_bytes)
        starlette = Starlette(
            routes=[
                Route(MCP_PATH, endpoint=mcp_endpoint),
                Route("/healthz", endpoint=_healthz, methods=["GET"]),
                Route("/readyz", endpoint=_readyz(gateway), methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )
        # Authentication (server/auth.py) guards everything but the probes; Host/Origin checks run first.
        protected = protect(starlette, gateway, host=host, port=port, path=MCP_PATH)
        self.app: ASGIApp = _HostOriginGuard(_ProbesOpen(protected, starlette), hosts, origins)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncGenerator[None]:
        # Upstreams start in the background: the socket listens at once, /readyz says when all are up, and
        # list requests wait (bounded) for the first attempts, as on stdio.
        async with self.gateway.running(), self.manager.run():
            yield
        logger.info("HTTP front stopped")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        await self.app(scope, receive, send)


# uvicorn settings shared by the one-process and the multi-worker server: our own logging, no Server header.
_UVICORN: Final[dict[str, Any]] = {
    "lifespan": "on",
    "log_level": "warning",
    "access_log": False,
    "server_header": False,
}


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: `serve_http` stops it on SIGTERM, SIGINT and SIGHUP itself.

    uvicorn's own handlers would replace ours, ignore SIGHUP, and re-raise the signal once shut down, so the
    process would end by the signal (exit 143 or 130) instead of exiting 0 after a graceful stop.
    """

    @contextmanager
    def capture_signals(self) -> Generator[None]:
        yield


async def serve_http(gateway: Gateway, host: str, port: int, *, graceful_shutdown: float | None = None) -> None:
    """Serve the gateway on `http://host:port/mcp` until SIGTERM, SIGINT or SIGHUP; upstreams stop after.

    On the first signal uvicorn stops accepting connections and waits (bounded) for open requests, then the
    app's lifespan ends, stopping the upstreams and flushing the audit log; a second signal stops at once.

    Args:
        gateway: The gateway to serve.
        host: The bind address. The caller decides whether a non-loopback address is allowed.
        port: The TCP port.
        graceful_shutdown: Seconds open requests and streams (legacy GET streams, `subscriptions/listen`) get to
            finish; default `timeouts.drain`.
    """
    drain = gateway.config.switchyard.timeouts.drain if graceful_shutdown is None else graceful_shutdown
    front = HttpFront(gateway, host=host, port=port)
    # uvicorn types the timeout as int; it is only ever used as an asyncio timeout, where a float is exact.
    config = uvicorn.Config(front, host=host, port=port, timeout_graceful_shutdown=cast(int, drain), **_UVICORN)
    server = _Server(config)

    async def stop() -> None:
        server.should_exit = True

    def hurry() -> None:
        server.force_exit = True

    logger.info("serving MCP on http://%s:%d%s", _bracketed(host), port, MCP_PATH)
    async with anyio.create_task_group() as tg:
        await tg.start(partial(stop_on_signal, stop, hurry, drain=drain))
        await server.serve()
        tg.cancel_scope.cancel()


WORKER_CONFIG_ENV = "SWITCHYARD_WORKER_CONFIG"
WORKER_LISTEN_ENV = "SWITCHYARD_WORKER_LISTEN"


def worker_app() -> HttpFront:
    """The app of one worker process (uvicorn factory): reads the configuration named by the parent.

    Each worker runs its own upstream connections. Modern (2026-07-28) requests can land on any worker because
    sealed `requestState` verifies with the shared keys; legacy sessions and calls parked on client input live
    in one worker, so put workers behind sticky routing (by `Mcp-Session-Id`) when legacy clients use them.
    """
    from switchyard.config import load_config  # noqa: PLC0415 - only worker processes need it

    host, _, port = os.environ[WORKER_LISTEN_ENV].rpartition(":")
    return HttpFront(Gateway(load_config(os.environ[WORKER_CONFIG_ENV])), host=host.strip("[]"), port=int(port))


def serve_http_workers(config_path: str, host: str, port: int, workers: int) -> None:
    """Serve with `workers` processes on one port (uvicorn's supervisor); blocks until interrupted.

    Workers must share the sealing keys: when none are configured, one is made here and handed to every worker
    through `SWITCHYARD_SEALING_KEYS`. Signals are uvicorn's here: SIGINT and SIGTERM stop every worker
    gracefully (open requests get `timeouts.drain`), SIGHUP restarts them.
    """
    from switchyard.config import load_config  # noqa: PLC0415

    settings = load_config(config_path).switchyard
    if not os.environ.get("SWITCHYARD_SEALING_KEYS") and not settings.mrtr.keys:
        os.environ["SWITCHYARD_SEALING_KEYS"] = secrets.token_hex(32)
    os.environ[WORKER_CONFIG_ENV] = os.path.abspath(config_path)
    os.environ[WORKER_LISTEN_ENV] = f"{_bracketed(host)}:{port}"
    logger.info("serving MCP on http://%s:%d%s with %d workers", _bracketed(host), port, MCP_PATH, workers)
    uvicorn.run(
        "switchyard.server.http:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=cast(int, settings.timeouts.drain),  # used as an asyncio timeout: floats work
        **_UVICORN,
    )
